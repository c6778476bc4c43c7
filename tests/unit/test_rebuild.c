/*
 * test_rebuild.c - rebuilding a region whose disk was lost (state transfer),
 * driven by hand: three nodes, every message carried by the test, so chunks can
 * be lost or duplicated and writes can land in the middle of a transfer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <causeway/error.h>

#include "core/node.h"
#include "core/replica.h"

#define NR 3
#define HB_US 100000u
#define T0 1000000000ull

enum { A = 0, B = 1, C = 2 };

struct link {
    struct cw_msg *q;
    size_t n, cap;
};

struct harness {
    struct cw_bucket_policy buckets[2];
    struct cw_node_config cfg[NR];
    struct cw_node *n[NR];
    struct link link[NR][NR];
    uint64_t now;
    uint64_t next_req;
    /* The last reply each node gave. */
    int last_err[NR];
    struct cw_dot last_dot[NR];
    size_t key_persists[NR];
    /* Filters: drop the next SNAP_CHUNK; deliver the next SNAP_CHUNK twice;
     * drop everything C sends (C's stream before the disk loss). */
    int drop_chunks, dup_chunks;
    bool drop_from[NR];
    bool only_to_b_from_c;
};

static struct cw_now h_now(struct harness *h)
{
    return (struct cw_now){.real_us = h->now, .mono_us = h->now};
}

static void check_inv(struct harness *h, unsigned i)
{
    char why[256];
    if (!cw_node_check_invariants(h->n[i], why, sizeof(why)))
        fail_msg("region %u: %s", i, why);
}

static void link_push(struct link *l, const struct cw_msg *m)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->q = realloc(l->q, l->cap * sizeof(*l->q));
        assert_non_null(l->q);
    }
    assert_int_equal(cw_msg_copy(&l->q[l->n], m), CW_OK);
    l->n++;
}

static void step(struct harness *h, unsigned i)
{
    if (!cw_node_has_ready(h->n[i]))
        return;
    const struct cw_ready *rd = cw_node_ready(h->n[i]);
    for (size_t k = 0; k < rd->n_persist; k++)
        if (rd->persist[k].kind == CW_PERSIST_KEY)
            h->key_persists[i]++;
    for (size_t k = 0; k < rd->n_msgs; k++) {
        const struct cw_msg *m = &rd->msgs[k];
        if (h->drop_from[i])
            continue;
        if (h->only_to_b_from_c && i == C && m->to != B)
            continue;
        if (m->type == CW_MSG_SNAP_CHUNK && h->drop_chunks > 0) {
            h->drop_chunks--;
            continue;
        }
        link_push(&h->link[i][m->to], m);
        if (m->type == CW_MSG_SNAP_CHUNK && h->dup_chunks > 0) {
            h->dup_chunks--;
            link_push(&h->link[i][m->to], m);
        }
    }
    for (size_t k = 0; k < rd->n_replies; k++) {
        h->last_err[i] = rd->replies[k].err;
        h->last_dot[i] = rd->replies[k].dot;
    }
    cw_node_advance(h->n[i]);
    check_inv(h, i);
}

/* Delivers one message from every non-empty link, round robin; false when all
 * links are empty. */
static bool deliver_some(struct harness *h)
{
    bool any = false;
    for (unsigned f = 0; f < NR; f++)
        for (unsigned t = 0; t < NR; t++) {
            struct link *l = &h->link[f][t];
            if (l->n == 0)
                continue;
            struct cw_msg m = l->q[0];
            memmove(l->q, l->q + 1, (l->n - 1) * sizeof(*l->q));
            l->n--;
            if (h->n[t] != NULL) {
                cw_node_recv(h->n[t], h_now(h), &m);
                step(h, t);
            }
            cw_msg_free(&m);
            any = true;
        }
    return any;
}

static void deliver_all(struct harness *h)
{
    while (deliver_some(h))
        ;
}

static void tick_all(struct harness *h)
{
    h->now += HB_US;
    for (unsigned i = 0; i < NR; i++) {
        if (h->n[i] == NULL)
            continue;
        cw_node_tick(h->n[i], h_now(h));
        step(h, i);
    }
}

static void settle(struct harness *h, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        tick_all(h);
        deliver_all(h);
    }
}

static void clear_links(struct harness *h, unsigned i)
{
    for (unsigned j = 0; j < NR; j++) {
        struct link *ls[2] = {&h->link[i][j], &h->link[j][i]};
        for (int k = 0; k < 2; k++) {
            for (size_t x = 0; x < ls[k]->n; x++)
                cw_msg_free(&ls[k]->q[x]);
            ls[k]->n = 0;
        }
    }
}

static struct harness *h_new(void)
{
    struct harness *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->now = T0;
    h->next_req = 1;
    snprintf(h->buckets[0].name, sizeof(h->buckets[0].name), "posts");
    h->buckets[0].consistency = CW_CAUSAL;
    h->buckets[0].conflict = CW_CONFLICT_LWW;
    snprintf(h->buckets[1].name, sizeof(h->buckets[1].name), "sib");
    h->buckets[1].consistency = CW_CAUSAL;
    h->buckets[1].conflict = CW_CONFLICT_SIBLINGS;
    h->buckets[1].max_siblings = 1024;
    for (unsigned i = 0; i < NR; i++) {
        struct cw_replica_config *c = &h->cfg[i].replica;
        c->region = i;
        c->n_regions = NR;
        c->buckets = h->buckets;
        c->n_buckets = 2;
        c->heartbeat_us = HB_US;
        c->nack_retry_us = HB_US;
        c->snap_keys_max = 3; /* many chunks */
        h->n[i] = cw_node_create(&h->cfg[i]);
        assert_non_null(h->n[i]);
    }
    return h;
}

static void h_free(struct harness *h)
{
    for (unsigned i = 0; i < NR; i++) {
        clear_links(h, i);
        for (unsigned j = 0; j < NR; j++)
            free(h->link[i][j].q);
        cw_node_destroy(&h->n[i]);
    }
    free(h);
}

static int put(struct harness *h, unsigned i, const char *bucket, const char *key, const char *val,
               bool del)
{
    struct cw_put_req req = {.req_id = h->next_req++,
                             .bucket = bucket,
                             .key = (const uint8_t *)key,
                             .key_len = (uint32_t)strlen(key),
                             .value = (const uint8_t *)val,
                             .value_len = val ? (uint32_t)strlen(val) : 0,
                             .tombstone = del};
    h->last_err[i] = -1;
    h->now += 10;
    cw_node_put(h->n[i], h_now(h), &req);
    step(h, i);
    return h->last_err[i];
}

static int get(struct harness *h, unsigned i, const char *key)
{
    struct cw_get_req req = {.req_id = h->next_req++,
                             .bucket = "posts",
                             .key = (const uint8_t *)key,
                             .key_len = (uint32_t)strlen(key)};
    h->last_err[i] = -1;
    cw_node_get(h->n[i], h_now(h), &req);
    step(h, i);
    return h->last_err[i];
}

static const struct cw_replica *rep(struct harness *h, unsigned i)
{
    return cw_node_replica(h->n[i]);
}

/* Every key of x holds the same state in y, and y has no key x lacks, except
 * keys named in skip. */
static void assert_same_keys(struct harness *h, unsigned x, unsigned y, const char *skip)
{
    const struct cw_keymap *kx = cw_replica_keys(rep(h, x));
    const struct cw_keymap *ky = cw_replica_keys(rep(h, y));
    size_t skipped = 0;
    size_t slot = 0;
    for (struct cw_keyentry *e = cw_keymap_next(kx, &slot, NULL); e != NULL;
         e = cw_keymap_next(kx, &slot, e)) {
        if (skip && e->key_len == strlen(skip) && memcmp(e->key, skip, e->key_len) == 0) {
            skipped++;
            continue;
        }
        struct cw_keystate s;
        int rc = cw_replica_read_key(rep(h, y), e->key, e->key_len, &s);
        if (rc != CW_OK)
            fail_msg("region %u lacks %.*s held by %u", y, (int)e->key_len, e->key, x);
        if (!cw_keystate_equal(&s, &e->state))
            fail_msg("%.*s differs between %u and %u", (int)e->key_len, e->key, x, y);
        cw_keystate_free(&s);
    }
    size_t ny = cw_replica_keys(rep(h, y))->count;
    size_t skipped_y = 0;
    if (skip && cw_keymap_find(ky, (const uint8_t *)skip, (uint32_t)strlen(skip)) != NULL)
        skipped_y = 1;
    assert_int_equal(kx->count - skipped, ny - skipped_y);
}

static void load(struct harness *h, const char *tag, int n)
{
    char key[64], val[64];
    for (int k = 0; k < n; k++) {
        for (unsigned i = 0; i < NR; i++) {
            if (h->n[i] == NULL || cw_replica_rebuilding(rep(h, i)))
                continue;
            snprintf(key, sizeof(key), "%s-%u-%d", tag, i, k);
            snprintf(val, sizeof(val), "v%u-%d", i, k);
            assert_int_equal(put(h, i, "posts", key, val, false), CW_OK);
            /* overwrite a shared key too (LWW across regions) and a sibling */
            snprintf(key, sizeof(key), "%s-shared-%d", tag, k % 4);
            assert_int_equal(put(h, i, "posts", key, val, false), CW_OK);
            snprintf(key, sizeof(key), "%s-sib-%d", tag, k % 3);
            assert_int_equal(put(h, i, "sib", key, val, false), CW_OK);
            if (k % 5 == 4) {
                snprintf(key, sizeof(key), "%s-%u-%d", tag, i, k - 1);
                assert_int_equal(put(h, i, "posts", key, NULL, true), CW_OK);
            }
        }
        deliver_some(h); /* interleave the stream with the writes */
    }
}

/* Replaces region C by an empty one rebuilding from donor. */
static void wipe_and_rebuild(struct harness *h, unsigned donor)
{
    cw_node_destroy(&h->n[C]);
    clear_links(h, C);
    h->drop_from[C] = false;
    h->only_to_b_from_c = false;
    h->cfg[C].replica.rebuild = true;
    h->cfg[C].replica.rebuild_from = donor;
    h->n[C] = cw_node_create(&h->cfg[C]);
    assert_non_null(h->n[C]);
    h->key_persists[C] = 0;
}

static void test_rebuild_copies_and_joins(void **state)
{
    (void)state;
    struct harness *h = h_new();
    load(h, "a", 20);
    settle(h, 5);
    /* C's last writes: one reaches B only, one reaches nobody. Both were
     * acknowledged to their clients; the disk loss loses them where they did not
     * arrive. */
    h->only_to_b_from_c = true;
    assert_int_equal(put(h, C, "posts", "c-half", "x", false), CW_OK);
    uint64_t old_c_max = h->last_dot[C].ts;
    settle(h, 1);
    h->drop_from[C] = true;
    assert_int_equal(put(h, C, "posts", "c-lost", "y", false), CW_OK);
    if (h->last_dot[C].ts > old_c_max)
        old_c_max = h->last_dot[C].ts;
    settle(h, 1);

    wipe_and_rebuild(h, A);
    assert_true(cw_replica_rebuilding(rep(h, C)));
    /* No client is served until the transfer is done. */
    assert_int_equal(put(h, C, "posts", "k", "v", false), CW_EUNAVAILABLE);
    assert_int_equal(get(h, C, "k"), CW_EUNAVAILABLE);

    /* The transfer, with writes from A and B in the middle of it, the first
     * chunk lost and a later one duplicated. */
    h->drop_chunks = 1;
    int rounds = 0;
    int mid = 0, mid_during = 0;
    while (cw_replica_rebuilding(rep(h, C)) && rounds++ < 500) {
        tick_all(h);
        if (rounds == 3)
            h->dup_chunks = 1;
        /* Deliver everything, with a write from A and B every few messages. */
        int delivered = 0;
        while (deliver_some(h))
            if (++delivered % 4 == 0 && mid < 40) {
                char tag[16];
                /* New keys, and keys the copy has already passed. */
                snprintf(tag, sizeof(tag), mid % 2 ? "mid%d" : "a", mid);
                mid++;
                if (cw_replica_rebuilding(rep(h, C)))
                    mid_during++;
                load(h, tag, 1);
            }
    }
    if (getenv("DBG"))
        fprintf(stderr, "phase %s copied %llu served %llu errors C %llu A %llu\n",
                cw_replica_rebuild_phase(rep(h, C)),
                (unsigned long long)cw_replica_stats(rep(h, C))->snap_keys_copied,
                (unsigned long long)cw_replica_stats(rep(h, A))->snap_chunks_served,
                (unsigned long long)cw_replica_stats(rep(h, C))->errors,
                (unsigned long long)cw_replica_stats(rep(h, A))->errors);
    assert_false(cw_replica_rebuilding(rep(h, C)));
    assert_true(mid_during >= 3); /* writes landed in the middle of the copy */
    assert_true(cw_replica_stats(rep(h, A))->snap_chunks_served > 3);
    assert_true(cw_replica_stats(rep(h, C))->snap_keys_copied > 0);
    assert_true(h->key_persists[C] >= cw_replica_stats(rep(h, C))->snap_keys_copied);
    settle(h, 10);

    /* Converged: C holds exactly A's keys and states; B too, except the write
     * of C that only B received (lost with C's disk elsewhere). */
    assert_same_keys(h, A, C, NULL);
    assert_same_keys(h, A, B, "posts/c-half");
    assert_null(cw_keymap_find(cw_replica_keys(rep(h, C)), (const uint8_t *)"posts/c-lost", 12));
    assert_true(cw_replica_stats(rep(h, A))->stream_skips >= 1);

    /* V: after the same heartbeats, every region holds the same entry for every
     * other origin, the rebuilt one included. */
    for (unsigned o = 0; o < NR; o++) {
        unsigned x = o == A ? B : A, y = o == C ? B : C;
        assert_true(cw_replica_applied(rep(h, x))->ts[o] > 0);
        assert_int_equal(cw_replica_applied(rep(h, x))->ts[o],
                         cw_replica_applied(rep(h, y))->ts[o]);
    }

    /* Later writes from every region arrive everywhere exactly once. */
    uint64_t applied_before[NR];
    for (unsigned i = 0; i < NR; i++)
        applied_before[i] = cw_replica_stats(rep(h, i))->remote_applied;
    assert_int_equal(put(h, C, "posts", "after-c", "1", false), CW_OK);
    assert_true(h->last_dot[C].ts > old_c_max); /* new stamps above the old stream */
    assert_int_equal(put(h, A, "posts", "after-a", "1", false), CW_OK);
    assert_int_equal(put(h, B, "posts", "after-b", "1", false), CW_OK);
    settle(h, 10);
    for (unsigned i = 0; i < NR; i++) {
        assert_int_equal(cw_replica_stats(rep(h, i))->remote_applied - applied_before[i], 2);
        assert_int_equal(cw_replica_buffered(rep(h, i)), 0);
    }
    assert_same_keys(h, A, C, NULL);
    assert_same_keys(h, A, B, "posts/c-half");
    /* Outboxes drain: every region acknowledges everything again. */
    settle(h, 10);
    for (unsigned i = 0; i < NR; i++)
        assert_int_equal(cw_replica_outbox_len(rep(h, i)), 0);
    h_free(h);
}

/* The donor keeps its outbox records the rebuilding region will need: once every
 * peer has heard the rebuilding announcement, nobody collects past what the
 * rebuilding region acknowledges (the empty state). */
static void test_rebuild_holds_collection(void **state)
{
    (void)state;
    struct harness *h = h_new();
    load(h, "p", 5);
    settle(h, 5);
    wipe_and_rebuild(h, B);
    /* Announce only (no request answered yet): deliver heartbeats, hold chunks. */
    tick_all(h);
    deliver_all(h);
    assert_true(cw_replica_rebuilding(rep(h, C)));
    assert_int_equal(put(h, A, "posts", "held", "1", false), CW_OK);
    settle(h, 3);
    /* A's write is in A's outbox until C applied it. */
    if (cw_replica_rebuilding(rep(h, C)))
        assert_true(cw_replica_outbox_len(rep(h, A)) >= 1);
    int rounds = 0;
    while (cw_replica_rebuilding(rep(h, C)) && rounds++ < 500)
        settle(h, 1);
    settle(h, 10);
    assert_same_keys(h, A, C, NULL);
    assert_same_keys(h, B, C, NULL);
    for (unsigned i = 0; i < NR; i++)
        assert_int_equal(cw_replica_outbox_len(rep(h, i)), 0);
    h_free(h);
}

/* Two regions lose their disks at once and rebuild from the third. */
static void test_two_rebuilds_at_once(void **state)
{
    (void)state;
    struct harness *h = h_new();
    load(h, "t", 6);
    settle(h, 5);
    wipe_and_rebuild(h, A);
    cw_node_destroy(&h->n[B]);
    clear_links(h, B);
    struct cw_node_config cb = h->cfg[B];
    cb.replica.rebuild = true;
    cb.replica.rebuild_from = A;
    h->n[B] = cw_node_create(&cb);
    assert_non_null(h->n[B]);
    int rounds = 0;
    while ((cw_replica_rebuilding(rep(h, B)) || cw_replica_rebuilding(rep(h, C))) && rounds++ < 500)
        settle(h, 1);
    assert_false(cw_replica_rebuilding(rep(h, B)));
    assert_false(cw_replica_rebuilding(rep(h, C)));
    assert_int_equal(put(h, B, "posts", "after-b", "1", false), CW_OK);
    assert_int_equal(put(h, C, "posts", "after-c", "1", false), CW_OK);
    settle(h, 10);
    assert_same_keys(h, A, B, NULL);
    assert_same_keys(h, A, C, NULL);
    for (unsigned i = 0; i < NR; i++)
        assert_int_equal(cw_replica_outbox_len(rep(h, i)), 0);
    h_free(h);
}

static void test_rebuild_config_checked(void **state)
{
    (void)state;
    struct cw_bucket_policy b = {.name = "posts"};
    struct cw_replica_config c = {.region = 1, .n_regions = 3, .buckets = &b, .n_buckets = 1};
    c.rebuild = true;
    c.rebuild_from = 1; /* itself */
    assert_null(cw_replica_create(&c));
    c.rebuild_from = 3; /* no such region */
    assert_null(cw_replica_create(&c));
    c.rebuild_from = 0;
    struct cw_replica *r = cw_replica_create(&c);
    assert_non_null(r);
    assert_true(cw_replica_rebuilding(r));
    assert_string_equal(cw_replica_rebuild_phase(r), "announcing");
    cw_replica_destroy(&r);
}

/* A chunk the donor did not send (or a forged one) is refused. */
static void test_unsolicited_chunk_refused(void **state)
{
    (void)state;
    struct harness *h = h_new();
    load(h, "u", 2);
    settle(h, 3);
    uint64_t errs = cw_replica_stats(rep(h, A))->errors;
    struct cw_msg m = {.type = CW_MSG_SNAP_CHUNK, .from = B, .to = A, .flags = CW_MSGF_SNAP_DONE};
    cw_node_recv(h->n[A], h_now(h), &m);
    step(h, A);
    assert_int_equal(cw_replica_stats(rep(h, A))->errors, errs + 1);
    h_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rebuild_copies_and_joins),
        cmocka_unit_test(test_rebuild_holds_collection),
        cmocka_unit_test(test_two_rebuilds_at_once),
        cmocka_unit_test(test_rebuild_config_checked),
        cmocka_unit_test(test_unsolicited_chunk_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
