/*
 * test_replica.c - the replication state machine, driven by hand through the
 * fixture (src/sim/fixture.h). Two or three real regions, each a node with its
 * in-memory store; the links are in manual mode, so the test moves every
 * message itself and can hold, drop, duplicate and reorder them; commits are
 * synchronous, so every input's effects are persisted, sent and answered
 * before the input returns; and the fixture checks every region's invariants
 * after every step (a broken one fails the test with the step that broke it).
 * Every test runs twice: with messages copied, and as wire frames encoded at
 * the sender and decoded at delivery.
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

#include "core/codec.h"
#include "core/replica.h"
#include "core/session.h"
#include "sim/fixture.h"

/* ------------------------------------------------------------ harness */

#define NR 3
#define OUTBOX_SHADOW_MAX 64
#define HB_US 1000000u   /* heartbeat period */
#define WAIT_US 5000000u /* read wait */
#define VALUE_MAX 1024u  /* max_value_bytes */
#define T0 1000000000ull /* the fixture's clock starts here (1000 s) */
/* A context entry a little in the future: plausible, but never applied here in
 * tests that do not deliver the heartbeats that would cover it. */
#define AHEAD_US 10000000u

enum { A = 0, B = 1, C = 2 };

/* How this run of the tests carries messages (main runs both). */
static enum cw_fixture_frames g_frames = CW_FIXTURE_COPIED;

/* A thin layer over the fixture: the regions' configuration before they start,
 * and what the test observes of the effects. */
struct harness {
    unsigned n;
    struct cw_fixture *f; /* NULL until h_start */
    struct cw_bucket_policy buckets[4];
    struct cw_replica_config cfg[NR];
    /* The join of every applied vector a region received from each peer. */
    struct cw_vclock acked[NR][NR];
    /* The largest stamp each region issued: dots and heartbeat clocks. */
    uint64_t issued_max[NR];
    /* The stamps of each region's persisted outbox, to check the order of its
     * OUTBOX records (the store itself accepts any order). */
    uint64_t outbox[NR][OUTBOX_SHADOW_MAX];
    size_t n_outbox[NR];
    uint64_t next_req;
};

static const char *const BUCKET_POSTS = "posts"; /* causal, lww */
static const char *const BUCKET_SIB = "sib";     /* causal, siblings, max 3 */
static const char *const BUCKET_EV = "ev";       /* eventual, lww */
static const char *const BUCKET_STRONG = "strong";

/* The harness of the running test, freed by the group teardown when a failed
 * assertion left the test before h_free. */
static struct harness *g_live;

static struct harness *h_new(unsigned n)
{
    struct harness *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    if (g_live != NULL) { /* left over by a failed test */
        cw_fixture_destroy(&g_live->f);
        free(g_live);
    }
    g_live = h;
    h->n = n;
    h->next_req = 1;
    struct cw_bucket_policy *b = h->buckets;
    snprintf(b[0].name, sizeof(b[0].name), "%s", BUCKET_POSTS);
    b[0].consistency = CW_CAUSAL;
    b[0].conflict = CW_CONFLICT_LWW;
    snprintf(b[1].name, sizeof(b[1].name), "%s", BUCKET_SIB);
    b[1].consistency = CW_CAUSAL;
    b[1].conflict = CW_CONFLICT_SIBLINGS;
    b[1].max_siblings = 3;
    snprintf(b[2].name, sizeof(b[2].name), "%s", BUCKET_EV);
    b[2].consistency = CW_EVENTUAL;
    b[2].conflict = CW_CONFLICT_LWW;
    snprintf(b[3].name, sizeof(b[3].name), "%s", BUCKET_STRONG);
    b[3].consistency = CW_STRONG;
    b[3].conflict = CW_CONFLICT_LWW;
    for (unsigned i = 0; i < n; i++) {
        struct cw_replica_config *c = &h->cfg[i];
        c->region = i;
        c->n_regions = n;
        c->buckets = h->buckets;
        c->n_buckets = 4;
        c->max_value_bytes = VALUE_MAX;
        c->heartbeat_us = HB_US;
        c->wait_us = WAIT_US;
        c->nack_retry_us = 1;
    }
    return h;
}

/* Fails the test when the fixture stopped: which step broke what. */
static void fx_ok(struct harness *h)
{
    const struct cw_fixture_failure *x = cw_fixture_failure(h->f);
    if (x != NULL)
        fail_msg("the fixture stopped: %s", x->text);
}

static const struct cw_replica *rep_of(const struct harness *h, unsigned i)
{
    const struct cw_replica *r = cw_fixture_replica(h->f, i);
    assert_non_null(r);
    return r;
}

static const struct cw_fixture_store *disk_of(const struct harness *h, unsigned i)
{
    return cw_fixture_store(h->f, i);
}

/* The effects of region i's last input, counted by kind. */
static const struct cw_fixture_effects *last_of(const struct harness *h, unsigned i)
{
    return cw_fixture_effects(h->f, i);
}

static uint64_t now_us(const struct harness *h)
{
    return cw_fixture_now(h->f);
}

static void advance(struct harness *h, uint64_t us)
{
    assert_true(cw_fixture_advance(h->f, us));
}

static void set_now(struct harness *h, uint64_t t)
{
    assert_true(t >= now_us(h)); /* the monotonic clock never goes back */
    assert_true(cw_fixture_run_until(h->f, t));
}

/* Every ready set a region produces, before the fixture persists it. */
static void on_ready(void *ctx, struct cw_fixture *f, unsigned i, const struct cw_ready *rd)
{
    struct harness *h = ctx;
    (void)f;
    for (size_t k = 0; k < rd->n_persist; k++) {
        const struct cw_persist *p = &rd->persist[k];
        uint64_t *ob = h->outbox[i];
        size_t *n = &h->n_outbox[i];
        if (p->kind == CW_PERSIST_OUTBOX_PUT) {
            assert_true(*n < OUTBOX_SHADOW_MAX);
            assert_true(p->data_len > 0);
            /* The outbox is appended in stamp order. */
            if (*n && ob[*n - 1] >= p->ts)
                fail_msg("outbox record %llu persisted after %llu: a region's stamps went back",
                         (unsigned long long)p->ts, (unsigned long long)ob[*n - 1]);
            ob[(*n)++] = p->ts;
        } else if (p->kind == CW_PERSIST_OUTBOX_DEL) {
            size_t j = 0;
            while (j < *n && ob[j] != p->ts)
                j++;
            if (j == *n)
                fail_msg("OUTBOX_DEL of a record never put (ts %llu)", (unsigned long long)p->ts);
            memmove(&ob[j], &ob[j + 1], (*n - j - 1) * sizeof(*ob));
            (*n)--;
        }
    }
    for (size_t k = 0; k < rd->n_msgs; k++) {
        const struct cw_msg *m = &rd->msgs[k];
        if (m->type == CW_MSG_HEARTBEAT && m->clock > h->issued_max[i])
            h->issued_max[i] = m->clock;
    }
    for (size_t k = 0; k < rd->n_replies; k++) {
        const struct cw_reply *p = &rd->replies[k];
        if (p->kind == CW_REPLY_PUT && p->err == CW_OK && p->dot.ts > h->issued_max[i])
            h->issued_max[i] = p->dot.ts;
    }
}

static void on_deliver(void *ctx, struct cw_fixture *f, unsigned from, unsigned to,
                       const struct cw_msg *m)
{
    struct harness *h = ctx;
    (void)f;
    cw_vc_join(&h->acked[to][from], &m->applied);
}

/* Creates the fixture from the configuration set so far and starts region i
 * (regions not started stay down). */
static void h_create(struct harness *h)
{
    struct cw_fixture_config fc = {
        .seed = 1,
        .n_regions = h->n,
        .replica = h->cfg[0],
        .frames = g_frames,
        .start_us = T0,
        .manual_delivery = true,
        .keep_replies = true,
        .hooks = {.ctx = h, .ready = on_ready, .deliver = on_deliver},
    };
    h->f = cw_fixture_create(&fc);
    assert_non_null(h->f);
    for (unsigned i = 0; i < h->n; i++) {
        struct cw_replica_config *c = cw_fixture_replica_config(h->f, i);
        *c = h->cfg[i];
        c->buckets = cw_fixture_buckets(h->f);
    }
}

static void h_start_one(struct harness *h, unsigned i)
{
    if (h->f == NULL)
        h_create(h);
    assert_true(cw_fixture_start(h->f, i));
}

static void h_free(struct harness *h)
{
    if (h->f != NULL)
        fx_ok(h);
    cw_fixture_destroy(&h->f);
    assert_null(h->f);
    if (g_live == h)
        g_live = NULL;
    free(h);
}

/* Direct inputs at the current time. */
static void fx_put(struct harness *h, unsigned i, const struct cw_put_req *req)
{
    cw_fixture_put(h->f, i, req);
    fx_ok(h);
}

static void fx_get(struct harness *h, unsigned i, const struct cw_get_req *req)
{
    cw_fixture_get(h->f, i, req);
    fx_ok(h);
}

static void fx_recv(struct harness *h, unsigned i, const struct cw_msg *m)
{
    cw_fixture_recv(h->f, i, m);
    fx_ok(h);
}

static void fx_tick(struct harness *h, unsigned i)
{
    cw_fixture_tick(h->f, i);
    fx_ok(h);
}

static const struct cw_reply *reply_of(const struct harness *h, unsigned i, uint64_t req_id)
{
    return cw_fixture_reply(h->f, i, req_id);
}

static size_t link_len(const struct harness *h, unsigned from, unsigned to)
{
    return cw_fixture_link_len(h->f, from, to);
}

/* The i-th message on a link (decoded, when frames are encoded). */
static const struct cw_msg *link_at(const struct harness *h, unsigned from, unsigned to, size_t i)
{
    const struct cw_msg *m = cw_fixture_link_peek(h->f, from, to, i);
    assert_non_null(m);
    return m;
}

static const struct cw_msg *link_head(const struct harness *h, unsigned from, unsigned to)
{
    return link_len(h, from, to) ? link_at(h, from, to, 0) : NULL;
}

/* Delivers the head of a link; returns its type. */
static enum cw_msg_type deliver(struct harness *h, unsigned from, unsigned to)
{
    assert_true(link_len(h, from, to) > 0);
    advance(h, 10);
    int type = cw_fixture_deliver(h->f, from, to);
    fx_ok(h);
    assert_true(type != 0);
    return (enum cw_msg_type)type;
}

static void drop(struct harness *h, unsigned from, unsigned to)
{
    assert_true(cw_fixture_drop(h->f, from, to));
}

/* Puts a copy of the head right behind it (a transport that duplicates). */
static void duplicate_head(struct harness *h, unsigned from, unsigned to)
{
    assert_true(cw_fixture_duplicate(h->f, from, to));
}

static void deliver_link(struct harness *h, unsigned from, unsigned to)
{
    while (link_len(h, from, to))
        deliver(h, from, to);
}

static bool deliver_all(struct harness *h)
{
    bool any = false, progress = true;
    while (progress) {
        progress = false;
        for (unsigned f = 0; f < h->n; f++)
            for (unsigned t = 0; t < h->n; t++)
                if (f != t && link_len(h, f, t)) {
                    deliver(h, f, t);
                    progress = any = true;
                }
    }
    return any;
}

/* Ticks one region at the current time: within a heartbeat period this only
 * flushes its streams. */
static void flush(struct harness *h, unsigned i)
{
    advance(h, 10);
    fx_tick(h, i);
}

static void flush_all(struct harness *h)
{
    for (unsigned i = 0; i < h->n; i++)
        flush(h, i);
}

/* One heartbeat period passes: every region ticks (and sends heartbeats). */
static void heartbeat_round(struct harness *h)
{
    advance(h, HB_US);
    for (unsigned i = 0; i < h->n; i++)
        fx_tick(h, i);
}

/* Everything flushed and delivered, until the network is quiet. */
static void settle(struct harness *h)
{
    do
        flush_all(h);
    while (deliver_all(h));
}

/* Starts every region and exchanges a first round of heartbeats, so every
 * region has heard from every peer (streams start flowing only then). */
static void h_start(struct harness *h)
{
    for (unsigned i = 0; i < h->n; i++)
        h_start_one(h, i);
    for (unsigned i = 0; i < h->n; i++)
        fx_tick(h, i);
    deliver_all(h);
}

static uint64_t put_full(struct harness *h, unsigned i, const char *bucket, const char *key,
                         const char *value, bool tombstone, const struct cw_vclock *ctx,
                         const struct cw_vclock *kctx)
{
    struct cw_put_req req;
    memset(&req, 0, sizeof(req));
    req.req_id = h->next_req++;
    req.bucket = bucket;
    req.key = (const uint8_t *)key;
    req.key_len = (uint32_t)strlen(key);
    req.value = (const uint8_t *)value;
    req.value_len = value ? (uint32_t)strlen(value) : 0;
    req.tombstone = tombstone;
    if (ctx)
        req.context = *ctx;
    if (kctx)
        req.kctx = *kctx;
    advance(h, 10);
    fx_put(h, i, &req);
    return req.req_id;
}

/* A put that must succeed; returns its reply. */
static const struct cw_reply *put_ok(struct harness *h, unsigned i, const char *bucket,
                                     const char *key, const char *value,
                                     const struct cw_vclock *ctx, const struct cw_vclock *kctx)
{
    uint64_t id = put_full(h, i, bucket, key, value, false, ctx, kctx);
    const struct cw_reply *rep = reply_of(h, i, id);
    assert_non_null(rep);
    assert_int_equal(rep->kind, CW_REPLY_PUT);
    assert_int_equal(rep->err, CW_OK);
    assert_int_equal(rep->dot.origin, i);
    assert_true(rep->dot.ts > 0);
    return rep;
}

static uint64_t get_req(struct harness *h, unsigned i, const char *bucket, const char *key,
                        const struct cw_vclock *ctx)
{
    struct cw_get_req req;
    memset(&req, 0, sizeof(req));
    req.req_id = h->next_req++;
    req.bucket = bucket;
    req.key = (const uint8_t *)key;
    req.key_len = (uint32_t)strlen(key);
    if (ctx)
        req.context = *ctx;
    advance(h, 10);
    fx_get(h, i, &req);
    return req.req_id;
}

/* A read served at once; returns its reply. */
static const struct cw_reply *get_now(struct harness *h, unsigned i, const char *bucket,
                                      const char *key, const struct cw_vclock *ctx)
{
    uint64_t id = get_req(h, i, bucket, key, ctx);
    const struct cw_reply *rep = reply_of(h, i, id);
    assert_non_null(rep);
    assert_int_equal(rep->kind, CW_REPLY_GET);
    assert_int_equal(rep->err, CW_OK);
    return rep;
}

/* The only live value of a read, or NULL when it found nothing live. */
static bool reply_has_value(const struct cw_reply *rep, const char *value)
{
    size_t len = strlen(value);
    for (uint32_t k = 0; k < rep->state.n; k++) {
        const struct cw_version *v = &rep->state.v[k];
        if (!v->tombstone && v->value_len == len && (len == 0 || memcmp(v->value, value, len) == 0))
            return true;
    }
    return false;
}

static void assert_reads(struct harness *h, unsigned i, const char *bucket, const char *key,
                         const char *value)
{
    const struct cw_reply *rep = get_now(h, i, bucket, key, NULL);
    if (value == NULL) {
        assert_int_equal(cw_keystate_live(&rep->state), 0);
        return;
    }
    assert_int_equal(cw_keystate_live(&rep->state), 1);
    if (!reply_has_value(rep, value))
        fail_msg("region %u: %s/%s does not read \"%s\"", i, bucket, key, value);
}

static struct cw_vclock vc_of_dot(struct cw_dot d)
{
    struct cw_vclock v;
    cw_vc_zero(&v);
    v.ts[d.origin] = d.ts;
    return v;
}

/* ------------------------------------------------------------ lifecycle */

static void test_create_rejects_bad_config(void **state)
{
    (void)state;
    struct cw_replica_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.n_regions = 0;
    assert_null(cw_replica_create(&cfg));
    cfg.n_regions = CW_REGIONS_MAX + 1;
    assert_null(cw_replica_create(&cfg));
    cfg.n_regions = 3;
    cfg.region = 3;
    assert_null(cw_replica_create(&cfg));
    cfg.region = 2;
    struct cw_replica *r = cw_replica_create(&cfg);
    assert_non_null(r);
    assert_null(cw_replica_bucket(r, "posts")); /* no buckets configured */
    cw_replica_destroy(&r);
    assert_null(r);
    cw_replica_destroy(&r); /* destroying NULL is harmless */

    cfg.n_regions = CW_REGIONS_MAX;
    cfg.region = CW_REGIONS_MAX - 1;
    r = cw_replica_create(&cfg);
    assert_non_null(r);
    cw_replica_destroy(&r);
}

static void test_config_defaults(void **state)
{
    (void)state;
    struct cw_replica_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.heartbeat_us = 7; /* set fields are kept */
    cw_replica_config_defaults(&cfg);
    assert_int_equal(cfg.heartbeat_us, 7);
    assert_int_equal(cfg.max_value_bytes, 1u << 20);
    assert_true(cfg.dep_buffer_max > 0);
    assert_true(cfg.outbox_max > 0);
    assert_true(cfg.batch_records_max > 0);
    assert_true(cfg.window_records > 0);
    assert_true(cfg.waiting_max > 0);
    assert_true(cfg.nack_retry_us > 0);
    assert_true(cfg.wait_us > 0);
}

static void test_buckets_copied(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    /* The replica copied the policies: changing the array it was created from
     * (the fixture's copy) has no effect. */
    cw_fixture_buckets(h->f)[0].conflict = CW_CONFLICT_SIBLINGS;
    const struct cw_bucket_policy *p = cw_replica_bucket(rep_of(h, A), "posts");
    assert_non_null(p);
    assert_int_equal(p->conflict, CW_CONFLICT_LWW);
    assert_int_equal(cw_replica_bucket(rep_of(h, A), "sib")->max_siblings, 3);
    assert_null(cw_replica_bucket(rep_of(h, A), "nosuch"));
    h_free(h);
}

/* ------------------------------------------------------------ validation */

static void test_validate_helpers(void **state)
{
    (void)state;
    char name[CW_BUCKET_NAME_MAX + 2];
    memset(name, 'a', sizeof(name));
    name[CW_BUCKET_NAME_MAX] = '\0';
    assert_int_equal(cw_validate_bucket(name), CW_OK); /* 64 characters */
    name[CW_BUCKET_NAME_MAX] = 'a';
    name[CW_BUCKET_NAME_MAX + 1] = '\0';
    assert_int_equal(cw_validate_bucket(name), CW_EBUCKET); /* 65 */
    assert_int_equal(cw_validate_bucket(""), CW_EBUCKET);
    assert_int_equal(cw_validate_bucket("a-z_0-9"), CW_OK);
    const char *bad[] = {"Posts", "a/b", "a b", "a.b", "caf\xc3\xa9", "x\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cw_validate_bucket(bad[i]), CW_EBUCKET);
    uint8_t key[CW_KEY_BYTES_MAX + 1];
    memset(key, 0, sizeof(key)); /* NUL bytes are fine in keys */
    assert_int_equal(cw_validate_key(key, 0), CW_EKEY);
    assert_int_equal(cw_validate_key(key, 1), CW_OK);
    assert_int_equal(cw_validate_key(key, CW_KEY_BYTES_MAX), CW_OK);
    assert_int_equal(cw_validate_key(key, CW_KEY_BYTES_MAX + 1), CW_EKEY);
}

/* Sends a put that must fail with want, and checks nothing happened but a reply. */
static void put_fails(struct harness *h, const char *bucket, const uint8_t *key, uint32_t key_len,
                      uint32_t value_len, int want)
{
    static uint8_t value[VALUE_MAX + 16];
    struct cw_put_req req;
    memset(&req, 0, sizeof(req));
    req.req_id = h->next_req++;
    req.bucket = bucket;
    req.key = key;
    req.key_len = key_len;
    req.value = value;
    req.value_len = value_len;
    uint64_t errors = cw_replica_stats(rep_of(h, A))->errors;
    advance(h, 10);
    fx_put(h, A, &req);
    const struct cw_reply *rep = reply_of(h, A, req.req_id);
    assert_non_null(rep);
    assert_int_equal(rep->kind, CW_REPLY_PUT);
    if (rep->err != want)
        fail_msg("put to \"%s\" (key %u bytes, value %u bytes): got %d, want %d", bucket, key_len,
                 value_len, rep->err, want);
    /* Nothing stored, nothing persisted (not even metadata), nothing sent. */
    assert_int_equal(last_of(h, A)->key + last_of(h, A)->outbox_put + last_of(h, A)->meta, 0);
    assert_int_equal(last_of(h, A)->msgs, 0);
    assert_int_equal(last_of(h, A)->replies, 1);
    assert_int_equal(cw_replica_keys(rep_of(h, A))->count, 0);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 0);
    /* The node answers a bucket it cannot route (invalid, unknown, strong) without
     * the replica; the replica counts the refusals it makes itself. */
    bool routed = want != CW_EBUCKET && want != CW_EUNKNOWNBUCKET && want != CW_ESTRONG;
    assert_int_equal(cw_replica_stats(rep_of(h, A))->errors, errors + (routed ? 1 : 0));
    assert_int_equal(cw_replica_stats(rep_of(h, A))->puts, 0);

    struct cw_get_req g;
    memset(&g, 0, sizeof(g));
    g.req_id = h->next_req++;
    g.bucket = bucket;
    g.key = key;
    g.key_len = key_len;
    fx_get(h, A, &g);
    rep = reply_of(h, A, g.req_id);
    assert_non_null(rep);
    assert_int_equal(rep->kind, CW_REPLY_GET);
    /* A get validates bucket and key the same way (values do not apply). */
    assert_int_equal(rep->err, want == CW_EVALUE ? CW_OK : want);
    assert_int_equal(last_of(h, A)->key + last_of(h, A)->outbox_put + last_of(h, A)->meta, 0);
}

static void test_validation(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    const uint8_t *k = (const uint8_t *)"k";
    static char longname[CW_BUCKET_NAME_MAX + 2];
    memset(longname, 'a', CW_BUCKET_NAME_MAX + 1);
    put_fails(h, "Posts", k, 1, 1, CW_EBUCKET);
    put_fails(h, "", k, 1, 1, CW_EBUCKET);
    put_fails(h, "po/sts", k, 1, 1, CW_EBUCKET);
    put_fails(h, longname, k, 1, 1, CW_EBUCKET);
    longname[CW_BUCKET_NAME_MAX] = '\0'; /* 64 characters: valid, but not configured */
    put_fails(h, longname, k, 1, 1, CW_EUNKNOWNBUCKET);
    put_fails(h, "nosuch", k, 1, 1, CW_EUNKNOWNBUCKET);
    put_fails(h, BUCKET_POSTS, k, 0, 1, CW_EKEY);
    static uint8_t bigkey[CW_KEY_BYTES_MAX + 1];
    memset(bigkey, 'x', sizeof(bigkey));
    put_fails(h, BUCKET_POSTS, bigkey, CW_KEY_BYTES_MAX + 1, 1, CW_EKEY);
    put_fails(h, BUCKET_POSTS, k, 1, VALUE_MAX + 1, CW_EVALUE);
    put_fails(h, BUCKET_SIB, k, 1, VALUE_MAX + 1, CW_EVALUE);

    /* The limits themselves are allowed. */
    static uint8_t value[VALUE_MAX];
    memset(value, 'v', sizeof(value));
    struct cw_put_req req;
    memset(&req, 0, sizeof(req));
    req.req_id = h->next_req++;
    req.bucket = BUCKET_POSTS;
    req.key = bigkey;
    req.key_len = CW_KEY_BYTES_MAX;
    req.value = value;
    req.value_len = VALUE_MAX;
    fx_put(h, A, &req);
    assert_int_equal(reply_of(h, A, req.req_id)->err, CW_OK);
    /* A delete ignores the value, whatever its length. */
    req.req_id = h->next_req++;
    req.key = k;
    req.key_len = 1;
    req.value_len = VALUE_MAX + 1;
    req.tombstone = true;
    fx_put(h, A, &req);
    assert_int_equal(reply_of(h, A, req.req_id)->err, CW_OK);
    assert_int_equal(cw_replica_stats(rep_of(h, A))->deletes, 1);
    h_free(h);
}

/* ------------------------------------------------------------ local writes */

static void test_local_put_effects(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    const struct cw_reply *rep = put_ok(h, A, BUCKET_POSTS, "k", "hello", NULL, NULL);
    struct cw_dot dot = rep->dot;
    assert_int_equal(dot.origin, A);
    /* The reply's seen carries the new dot, for the session context. */
    assert_int_equal(rep->seen.ts[A], dot.ts);
    assert_int_equal(rep->conflict, CW_CONFLICT_LWW);
    /* One ready: the key, the outbox record and the metadata. */
    assert_int_equal(last_of(h, A)->key, 1);
    assert_int_equal(last_of(h, A)->outbox_put, 1);
    assert_int_equal(last_of(h, A)->meta, 1);
    assert_int_equal(last_of(h, A)->outbox_del, 0);
    assert_int_equal(last_of(h, A)->replies, 1);

    /* The persisted bytes decode to what was written. */
    const struct cw_fixture_store *d = disk_of(h, A);
    assert_int_equal(d->n_keys, 1);
    assert_int_equal(d->keys[0].key_len, strlen("posts/k"));
    assert_memory_equal(d->keys[0].key, "posts/k", strlen("posts/k"));
    struct cw_keystate ks;
    assert_int_equal(cw_decode_keystate(&ks, d->keys[0].data, d->keys[0].len, VALUE_MAX), CW_OK);
    assert_int_equal(ks.n, 1);
    assert_int_equal(cw_dot_cmp(ks.v[0].dot, dot), 0);
    assert_memory_equal(ks.v[0].value, "hello", 5);
    cw_keystate_free(&ks);
    assert_int_equal(d->n_outbox, 1);
    assert_int_equal(d->outbox[0].ts, dot.ts);
    struct cw_record rec;
    assert_int_equal(cw_decode_record(&rec, d->outbox[0].data, d->outbox[0].len, VALUE_MAX), CW_OK);
    assert_int_equal(rec.prev_ts, 0); /* the first record of the stream */
    assert_int_equal(rec.consistency, CW_CAUSAL);
    assert_int_equal(rec.key_len, strlen("posts/k"));
    assert_int_equal(cw_dot_cmp(rec.version.dot, dot), 0);
    cw_record_free(&rec);
    struct cw_meta meta;
    assert_int_equal(cw_decode_meta(&meta, d->meta, d->meta_len), CW_OK);
    assert_int_equal(meta.stream_end, dot.ts);
    assert_int_equal(meta.applied.ts[A], dot.ts);
    assert_true(meta.hlc >= dot.ts);

    /* Applied at once: visible, and the applied vector moved. */
    assert_int_equal(cw_replica_applied(rep_of(h, A))->ts[A], dot.ts);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 1);
    assert_int_equal(cw_replica_stats(rep_of(h, A))->puts, 1);
    const struct cw_reply *g = get_now(h, A, BUCKET_POSTS, "k", NULL);
    assert_int_equal(g->state.n, 1);
    assert_int_equal(cw_dot_cmp(g->state.v[0].dot, dot), 0);
    assert_true(reply_has_value(g, "hello"));
    assert_int_equal(g->seen.ts[A], dot.ts);
    assert_int_equal(cw_replica_stats(rep_of(h, A))->gets, 1);
    /* A read persists nothing. */
    assert_int_equal(last_of(h, A)->key + last_of(h, A)->outbox_put + last_of(h, A)->meta, 0);

    /* A second put chains to the first and gets a greater stamp. */
    const struct cw_reply *rep2 = put_ok(h, A, BUCKET_POSTS, "k", "again", NULL, NULL);
    assert_true(rep2->dot.ts > dot.ts);
    assert_int_equal(d->n_outbox, 2);
    assert_int_equal(cw_decode_record(&rec, d->outbox[1].data, d->outbox[1].len, VALUE_MAX), CW_OK);
    assert_int_equal(rec.prev_ts, dot.ts);
    cw_record_free(&rec);
    assert_reads(h, A, BUCKET_POSTS, "k", "again");
    /* A key not written reads as not found. */
    const struct cw_reply *none = get_now(h, A, BUCKET_POSTS, "other", NULL);
    assert_int_equal(none->state.n, 0);
    h_free(h);
}

static void test_single_region_drops_outbox_at_once(void **state)
{
    (void)state;
    struct harness *h = h_new(1);
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k", "v", NULL, NULL);
    assert_int_equal(last_of(h, A)->outbox_put, 1);
    assert_int_equal(last_of(h, A)->outbox_del, 1);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 0);
    assert_int_equal(disk_of(h, A)->n_outbox, 0);
    assert_reads(h, A, BUCKET_POSTS, "k", "v");
    h_free(h);
}

static void test_stream_and_duplicates(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h->cfg[A].flush_on_tick = true; /* two puts, one batch */
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k1", "v1", NULL, NULL);
    put_ok(h, A, BUCKET_POSTS, "k2", "v2", NULL, NULL);
    /* Nothing leaves before a flush: puts only queue the record. */
    assert_int_equal(link_len(h, A, B), 0);
    flush(h, A);
    assert_int_equal(link_len(h, A, B), 1);
    const struct cw_msg *m = link_head(h, A, B);
    assert_int_equal(m->type, CW_MSG_RECORDS);
    assert_int_equal(m->n_records, 2);
    duplicate_head(h, A, B);
    deliver(h, A, B);
    assert_reads(h, B, BUCKET_POSTS, "k1", "v1");
    assert_reads(h, B, BUCKET_POSTS, "k2", "v2");
    assert_int_equal(cw_replica_stats(rep_of(h, B))->remote_applied, 2);
    /* The duplicate is ignored record by record. */
    deliver(h, A, B);
    assert_int_equal(cw_replica_stats(rep_of(h, B))->remote_duplicates, 2);
    assert_int_equal(cw_replica_stats(rep_of(h, B))->remote_applied, 2);
    assert_int_equal(last_of(h, B)->key, 0); /* nothing re-persisted */
    assert_reads(h, B, BUCKET_POSTS, "k2", "v2");
    /* The remote apply persisted the keys and moved B's applied vector. */
    assert_int_equal(disk_of(h, B)->n_keys, 2);
    assert_int_equal(disk_of(h, B)->n_outbox, 0); /* remote records are not in B's outbox */
    assert_int_equal(cw_replica_applied(rep_of(h, B))->ts[A],
                     cw_replica_applied(rep_of(h, A))->ts[A]);
    h_free(h);
}

/* Replication on commit: a put's record leaves in the put's own round, with no
 * tick, and the window still bounds what is in flight. */
static void test_put_ships_on_commit(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h->cfg[A].window_records = 2;
    h->cfg[A].flush_gap_us = 1; /* every round ships (the harness's clock moves 10 us) */
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k1", "v1", NULL, NULL);
    assert_int_equal(link_len(h, A, B), 1);
    assert_int_equal(link_head(h, A, B)->type, CW_MSG_RECORDS);
    assert_int_equal(link_head(h, A, B)->n_records, 1);
    put_ok(h, A, BUCKET_POSTS, "k2", "v2", NULL, NULL);
    put_ok(h, A, BUCKET_POSTS, "k3", "v3", NULL, NULL); /* the window is full */
    assert_int_equal(link_len(h, A, B), 2);
    deliver_link(h, A, B);
    assert_reads(h, B, BUCKET_POSTS, "k1", "v1");
    assert_reads(h, B, BUCKET_POSTS, "k2", "v2");
    /* B's heartbeat acknowledges; the held record follows. */
    heartbeat_round(h);
    deliver_all(h);
    settle(h);
    assert_reads(h, B, BUCKET_POSTS, "k3", "v3");
    h_free(h);
}

/* The flush gap: a round that commits within flush_gap_us of the last flush
 * leaves its writes for the first round after the gap, and says when that is. */
static void test_flush_gap_batches_close_rounds(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h->cfg[A].flush_gap_us = 1000;
    h_start(h); /* its tick flushed A's streams just now */
    assert_int_equal(cw_replica_flush_due_us(rep_of(h, A)), 0);
    put_ok(h, A, BUCKET_POSTS, "k1", "v1", NULL, NULL);
    assert_int_equal(link_len(h, A, B), 0); /* within the gap: held */
    assert_true(cw_replica_flush_due_us(rep_of(h, A)) != 0);
    advance(h, 1000);
    put_ok(h, A, BUCKET_POSTS, "k2", "v2", NULL, NULL); /* after the gap: both go */
    assert_int_equal(link_len(h, A, B), 1);
    assert_int_equal(link_head(h, A, B)->n_records, 2);
    assert_int_equal(cw_replica_flush_due_us(rep_of(h, A)), 0);
    put_ok(h, A, BUCKET_POSTS, "k3", "v3", NULL, NULL); /* held again; a tick ships it */
    assert_int_equal(link_len(h, A, B), 1);
    flush(h, A);
    assert_int_equal(link_len(h, A, B), 2);
    assert_int_equal(cw_replica_flush_due_us(rep_of(h, A)), 0);
    deliver_link(h, A, B);
    assert_reads(h, B, BUCKET_POSTS, "k3", "v3");
    h_free(h);
}

static void test_malformed_messages_ignored(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k", "v", NULL, NULL);
    flush(h, A);
    struct cw_msg m;
    assert_int_equal(cw_msg_copy(&m, link_head(h, A, B)), CW_OK);
    uint64_t errors = cw_replica_stats(rep_of(h, B))->errors;
    m.to = A; /* not addressed to B */
    fx_recv(h, B, &m);
    m.to = B;
    m.from = B; /* from itself */
    fx_recv(h, B, &m);
    m.from = 7; /* an unknown region */
    fx_recv(h, B, &m);
    m.from = A;
    m.records[0].version.dot.origin = B; /* a record that is not the sender's own */
    fx_recv(h, B, &m);
    m.records[0].version.dot.origin = A;
    m.records[0].key[0] = 'P'; /* a key whose bucket part is invalid */
    fx_recv(h, B, &m);
    m.records[0].key[0] = 'p';
    m.records[0].deps.ts[5] = 1; /* a dependency on a region that does not exist */
    fx_recv(h, B, &m);
    m.records[0].deps.ts[5] = 0;
    m.records[0].consistency = CW_STRONG; /* strong writes are not streamed */
    fx_recv(h, B, &m);
    m.records[0].consistency = CW_CAUSAL;
    assert_int_equal(cw_replica_stats(rep_of(h, B))->errors, errors + 7);
    assert_int_equal(cw_replica_stats(rep_of(h, B))->remote_applied, 0);
    assert_int_equal(cw_replica_keys(rep_of(h, B))->count, 0);
    /* The intact message still applies. */
    fx_recv(h, B, &m);
    cw_msg_free(&m);
    assert_reads(h, B, BUCKET_POSTS, "k", "v");
    h_free(h);
}

/* A crafted stream from A whose key contexts run ahead of their own stamps: an
 * honest writer's never do (it stamps after observing its context). The old
 * replica applied them: the first leaves a tombstone (the key joins the
 * tombstone list), the next two replace everything including themselves, the
 * fourth changes nothing and the key was freed while the tombstone list still
 * pointed to it; the next heartbeat's collection read freed memory. Such records
 * are refused and counted now. */
static void test_crafted_contexts_ahead_of_stamp_refused(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    uint64_t base = cw_hlc_from_us(now_us(h));
    uint64_t ts[4] = {base + 10, base + 20, base + 30, base + 40};
    struct cw_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CW_MSG_RECORDS;
    m.from = A;
    m.to = B;
    m.n_records = 4;
    m.records = calloc(4, sizeof(*m.records));
    assert_non_null(m.records);
    for (unsigned i = 0; i < 4; i++) {
        struct cw_record *rec = &m.records[i];
        rec->prev_ts = i ? ts[i - 1] : 0;
        rec->consistency = CW_CAUSAL;
        rec->conflict = CW_CONFLICT_SIBLINGS;
        rec->key = (uint8_t *)strdup("sib/x");
        assert_non_null(rec->key);
        rec->key_len = 5;
        rec->version.dot.origin = A;
        rec->version.dot.ts = ts[i];
        rec->version.tombstone = i == 0;
        if (i == 1)
            rec->version.kctx.ts[A] = ts[2]; /* covers a later record */
        if (i >= 2)
            rec->version.kctx.ts[A] = base + 1000; /* covers itself and what follows */
    }
    uint64_t errors = cw_replica_stats(rep_of(h, B))->errors;
    fx_recv(h, B, &m);
    /* The tombstone applies; the first record whose context names a stamp at or
     * past its own is refused, and the rest of the batch with it. */
    assert_int_equal(cw_replica_stats(rep_of(h, B))->remote_applied, 1);
    assert_int_equal(cw_replica_stats(rep_of(h, B))->errors, errors + 1);
    /* A dependency at or past the record's own stamp is refused the same way. */
    m.records[1].version.kctx.ts[A] = 0;
    m.records[1].deps.ts[A] = ts[1];
    fx_recv(h, B, &m);
    assert_int_equal(cw_replica_stats(rep_of(h, B))->remote_applied, 1);
    assert_int_equal(cw_replica_stats(rep_of(h, B))->errors, errors + 2);
    cw_msg_free(&m);
    /* Tombstone collection runs over a consistent list (ASan would see a freed
     * entry here). */
    for (int i = 0; i < 3; i++) {
        heartbeat_round(h);
        deliver_all(h);
    }
    assert_true(cw_replica_keys(rep_of(h, B))->count <= 1);
    h_free(h);
}

/* ------------------------------------------------------------ causality */

/* A writes a post; B reads it and writes a reply that depends on it. Returns the
 * post's and the reply's dots; the records wait in the links to C. */
static void post_and_reply(struct harness *h, const char *reply_bucket, struct cw_dot *post,
                           struct cw_dot *reply)
{
    *post = put_ok(h, A, BUCKET_POSTS, "post", "hello", NULL, NULL)->dot;
    flush(h, A);
    deliver_link(h, A, B); /* A -> C is held */
    const struct cw_reply *g = get_now(h, B, BUCKET_POSTS, "post", NULL);
    assert_true(reply_has_value(g, "hello"));
    struct cw_vclock ctx = g->seen; /* the session context after the read */
    assert_int_equal(ctx.ts[A], post->ts);
    *reply = put_ok(h, B, reply_bucket, "reply", "hi back", &ctx, NULL)->dot;
    /* The reply's stamp exceeds what its writer had seen. */
    assert_true(reply->ts > post->ts);
    flush(h, B);
}

static void test_causal_delivery_buffers_until_dependency(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_dot post, reply;
    post_and_reply(h, BUCKET_POSTS, &post, &reply);
    assert_int_equal(link_len(h, A, C), 1);
    assert_int_equal(link_len(h, B, C), 1);
    /* The record carries the session context as its dependencies. */
    assert_int_equal(link_head(h, B, C)->records[0].deps.ts[A], post.ts);

    deliver_link(h, B, C); /* the reply before the post */
    assert_int_equal(cw_replica_buffered(rep_of(h, C)), 1);
    assert_int_equal(cw_replica_stats(rep_of(h, C))->remote_applied, 0);
    assert_reads(h, C, BUCKET_POSTS, "reply", NULL);
    assert_reads(h, C, BUCKET_POSTS, "post", NULL);
    assert_true(cw_replica_applied(rep_of(h, C))->ts[B] < reply.ts);
    assert_int_equal(last_of(h, C)->key, 0);

    deliver_link(h, A, C);
    assert_int_equal(cw_replica_buffered(rep_of(h, C)), 0);
    assert_int_equal(cw_replica_stats(rep_of(h, C))->remote_applied, 2);
    assert_reads(h, C, BUCKET_POSTS, "post", "hello");
    assert_reads(h, C, BUCKET_POSTS, "reply", "hi back");
    assert_true(cw_replica_applied(rep_of(h, C))->ts[A] >= post.ts);
    assert_true(cw_replica_applied(rep_of(h, C))->ts[B] >= reply.ts);
    h_free(h);
}

static void test_eventual_bucket_skips_dependencies(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_dot post, note;
    post_and_reply(h, BUCKET_EV, &post, &note);
    /* Eventual: applied at once, although the post it depends on is missing. */
    deliver_link(h, B, C);
    assert_int_equal(cw_replica_buffered(rep_of(h, C)), 0);
    assert_reads(h, C, BUCKET_EV, "reply", "hi back");
    assert_reads(h, C, BUCKET_POSTS, "post", NULL);

    /* But FIFO per origin: an eventual record behind a waiting causal one waits. */
    const struct cw_reply *g = get_now(h, B, BUCKET_POSTS, "post", NULL);
    struct cw_vclock ctx = g->seen;
    put_ok(h, B, BUCKET_POSTS, "reply2", "causal", &ctx, NULL);
    put_ok(h, B, BUCKET_EV, "note2", "eventual", &ctx, NULL);
    flush(h, B);
    deliver_link(h, B, C);
    assert_int_equal(cw_replica_buffered(rep_of(h, C)), 2);
    assert_reads(h, C, BUCKET_EV, "note2", NULL);
    assert_reads(h, C, BUCKET_POSTS, "reply2", NULL);
    deliver_link(h, A, C);
    assert_int_equal(cw_replica_buffered(rep_of(h, C)), 0);
    assert_reads(h, C, BUCKET_EV, "note2", "eventual");
    assert_reads(h, C, BUCKET_POSTS, "reply2", "causal");
    assert_reads(h, C, BUCKET_POSTS, "post", "hello");
    h_free(h);
}

static void test_force_eventual_applies_out_of_causal_order(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h->cfg[C].force_eventual = true;
    h_start(h);
    struct cw_dot post, reply;
    post_and_reply(h, BUCKET_POSTS, &post, &reply);
    deliver_link(h, B, C);
    /* The knob turns the dependency check off: the anomaly causality prevents. */
    assert_int_equal(cw_replica_buffered(rep_of(h, C)), 0);
    assert_reads(h, C, BUCKET_POSTS, "reply", "hi back");
    assert_reads(h, C, BUCKET_POSTS, "post", NULL);
    deliver_link(h, A, C);
    assert_reads(h, C, BUCKET_POSTS, "post", "hello");
    h_free(h);
}

/*
 * Writes-follow-reads across regions: a session that read the post at A moves to
 * C, which has not applied the post yet, and writes a reply there. The write
 * waits until C has applied the session's context; otherwise readers at C could
 * see the reply without the post.
 */
static void test_put_waits_for_context(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_dot post = put_ok(h, A, BUCKET_POSTS, "post", "hello", NULL, NULL)->dot;
    flush(h, A); /* the record to C is held in the link */
    struct cw_vclock session = vc_of_dot(post);

    uint64_t id = put_full(h, C, BUCKET_POSTS, "reply", "hi back", false, &session, NULL);
    assert_null(reply_of(h, C, id));
    assert_int_equal(cw_replica_waiting(rep_of(h, C)), 1);
    assert_int_equal(last_of(h, C)->key + last_of(h, C)->outbox_put, 0);
    assert_reads(h, C, BUCKET_POSTS, "reply", NULL);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, C)), 0);

    deliver_link(h, A, C);
    const struct cw_reply *rep = reply_of(h, C, id);
    assert_non_null(rep);
    assert_int_equal(rep->kind, CW_REPLY_PUT);
    assert_int_equal(rep->err, CW_OK);
    assert_true(rep->dot.ts > post.ts);
    assert_int_equal(cw_replica_waiting(rep_of(h, C)), 0);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, C)), 1);
    /* Whoever sees the reply at C can see the post. */
    const struct cw_reply *g = get_now(h, C, BUCKET_POSTS, "reply", NULL);
    assert_true(reply_has_value(g, "hi back"));
    struct cw_vclock other = g->seen;
    const struct cw_reply *gp = get_now(h, C, BUCKET_POSTS, "post", &other);
    assert_true(reply_has_value(gp, "hello"));
    h_free(h);
}

static void test_waiting_put_times_out(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_vclock session;
    cw_vc_zero(&session);
    session.ts[A] = cw_hlc_from_us(now_us(h) + AHEAD_US); /* never arrives */
    uint64_t id = put_full(h, C, BUCKET_SIB, "k", "v", false, &session, NULL);
    uint64_t asked_at = now_us(h);
    assert_null(reply_of(h, C, id));
    set_now(h, asked_at + WAIT_US);
    fx_tick(h, C);
    const struct cw_reply *rep = reply_of(h, C, id);
    assert_non_null(rep);
    assert_int_equal(rep->kind, CW_REPLY_PUT);
    assert_int_equal(rep->err, CW_ENOTREADY);
    assert_int_equal(cw_replica_waiting(rep_of(h, C)), 0);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, C)), 0);
    assert_reads(h, C, BUCKET_SIB, "k", NULL);
    h_free(h);
}

static void test_eventual_requests_do_not_wait(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_vclock session;
    cw_vc_zero(&session);
    session.ts[A] = cw_hlc_from_us(now_us(h) + AHEAD_US);
    /* An eventual bucket skips the session check: applied and served at once. */
    const struct cw_reply *p = put_ok(h, C, BUCKET_EV, "k", "v", &session, NULL);
    assert_true(p->dot.ts > session.ts[A]); /* still stamped after the context */
    const struct cw_reply *g = get_now(h, C, BUCKET_EV, "k", &session);
    assert_true(reply_has_value(g, "v"));
    assert_int_equal(cw_replica_waiting(rep_of(h, C)), 0);
    h_free(h);
}

/*
 * A client controls the contexts it sends (a --context token can name any of the
 * 16 regions). A context entry for a region that does not exist must not reach
 * the replication stream: peers refuse such records (record_valid), and a refused
 * record blocks every later record of its origin. Either the put is refused at
 * once, or the stream keeps flowing.
 */
static void check_context_out_of_range(const char *bucket, bool in_kctx)
{
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_vclock bad;
    cw_vc_zero(&bad);
    bad.ts[7] = 1; /* region 7 does not exist in a 3-region deployment */
    uint64_t id =
        put_full(h, A, bucket, "bad", "x", false, in_kctx ? NULL : &bad, in_kctx ? &bad : NULL);
    /* Refused up front, as a malformed context, with nothing stored. */
    const struct cw_reply *rep = reply_of(h, A, id);
    assert_non_null(rep);
    assert_int_equal(rep->err, CW_ECONTEXT);
    assert_int_equal(last_of(h, A)->key + last_of(h, A)->outbox_put + last_of(h, A)->meta, 0);
    /* A read with such a context is refused the same way (it could only time out). */
    uint64_t gid = get_req(h, A, bucket, "bad", &bad);
    assert_non_null(reply_of(h, A, gid));
    assert_int_equal(reply_of(h, A, gid)->err, CW_ECONTEXT);
    put_ok(h, A, BUCKET_POSTS, "good", "after", NULL, NULL);
    settle(h);
    heartbeat_round(h);
    deliver_all(h);
    settle(h);
    for (unsigned i = B; i <= C; i++) {
        const struct cw_reply *g = get_now(h, i, BUCKET_POSTS, "good", NULL);
        if (!reply_has_value(g, "after"))
            fail_msg("region %u never received A's later write: a put to \"%s\" with %s entry "
                     "for region 7 was accepted (err %d) and its record is refused by peers "
                     "(errors=%llu), blocking A's stream",
                     i, bucket, in_kctx ? "a key-context" : "a context", rep->err,
                     (unsigned long long)cw_replica_stats(rep_of(h, i))->errors);
    }
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 0);
    h_free(h);
}

static void test_kctx_for_unknown_region_does_not_block_stream(void **state)
{
    (void)state;
    check_context_out_of_range(BUCKET_SIB, true);
}

static void test_eventual_context_for_unknown_region_does_not_block_stream(void **state)
{
    (void)state;
    check_context_out_of_range(BUCKET_EV, false);
}

static void test_causal_context_for_unknown_region_does_not_block_stream(void **state)
{
    (void)state;
    check_context_out_of_range(BUCKET_POSTS, false);
}

/*
 * The clock observes every entry of a client's key context. A context entry at the
 * top of the stamp space (a corrupt or hostile token) must not make the region
 * issue a stamp that is not greater than the ones before it: either the put is
 * refused, or its stamp still increases.
 */
static void test_huge_kctx_entry_keeps_stamps_increasing(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    uint64_t before = put_ok(h, A, BUCKET_SIB, "k1", "v", NULL, NULL)->dot.ts;
    struct cw_vclock huge;
    cw_vc_zero(&huge);
    huge.ts[B] = UINT64_MAX;
    uint64_t id = put_full(h, A, BUCKET_SIB, "k2", "v", false, NULL, &huge);
    const struct cw_reply *rep = reply_of(h, A, id);
    assert_non_null(rep);
    if (rep->err == CW_OK && rep->dot.ts <= before)
        fail_msg("a put whose key context holds UINT64_MAX got stamp %llu, not above the "
                 "previous stamp %llu (the HLC wrapped around)",
                 (unsigned long long)rep->dot.ts, (unsigned long long)before);
    if (rep->err != CW_OK)
        assert_int_equal(rep->err, CW_ECONTEXT);
    uint64_t after = put_ok(h, A, BUCKET_SIB, "k3", "v", NULL, NULL)->dot.ts;
    assert_true(after > before);
    assert_true(after > rep->dot.ts);
    /* The same through the session context, in an eventual bucket (which does not
     * wait for the context, so nothing else stops it). */
    struct cw_vclock far;
    cw_vc_zero(&far);
    far.ts[B] = UINT64_MAX - 1;
    id = put_full(h, A, BUCKET_EV, "k4", "v", false, &far, NULL);
    rep = reply_of(h, A, id);
    assert_non_null(rep);
    if (rep->err == CW_OK && rep->dot.ts <= after)
        fail_msg("a put whose context holds UINT64_MAX - 1 got stamp %llu, not above %llu",
                 (unsigned long long)rep->dot.ts, (unsigned long long)after);
    uint64_t last = put_ok(h, A, BUCKET_SIB, "k5", "v", NULL, NULL)->dot.ts;
    assert_true(last > after);
    /* Whatever happened, replication still works. */
    settle(h);
    assert_reads(h, B, BUCKET_SIB, "k5", "v");
    h_free(h);
}

/*
 * A peer's clock is observed from every heartbeat and record. A message carrying a
 * stamp at the top of the stamp space (corrupt, or a peer with a broken clock)
 * must not make this region issue stamps that go back: "malformed messages are
 * counted and ignored", and in any case stamps strictly increase.
 */
static void check_remote_stamp_at_top(bool in_record)
{
    struct harness *h = h_new(2);
    h_start(h);
    uint64_t before = put_ok(h, B, BUCKET_POSTS, "mine", "v", NULL, NULL)->dot.ts;
    struct cw_msg m;
    if (in_record) {
        put_ok(h, A, BUCKET_EV, "x", "v", NULL, NULL);
        flush(h, A);
        assert_int_equal(cw_msg_copy(&m, link_head(h, A, B)), CW_OK);
        drop(h, A, B);
        m.records[0].version.dot.ts = UINT64_MAX;
    } else {
        heartbeat_round(h);
        assert_int_equal(cw_msg_copy(&m, link_head(h, A, B)), CW_OK);
        drop(h, A, B);
        m.clock = UINT64_MAX;
    }
    advance(h, 10);
    fx_recv(h, B, &m);
    cw_msg_free(&m);
    uint64_t id = put_full(h, B, BUCKET_POSTS, "mine", "v2", false, NULL, NULL);
    const struct cw_reply *rep = reply_of(h, B, id);
    assert_non_null(rep);
    if (rep->err == CW_OK && rep->dot.ts <= before)
        fail_msg("after a %s carrying stamp UINT64_MAX, region B issued stamp %llu, not above "
                 "its previous stamp %llu",
                 in_record ? "record" : "heartbeat", (unsigned long long)rep->dot.ts,
                 (unsigned long long)before);
    h_free(h);
}

static void test_heartbeat_clock_at_top_keeps_stamps_increasing(void **state)
{
    (void)state;
    check_remote_stamp_at_top(false);
}

static void test_record_stamp_at_top_keeps_stamps_increasing(void **state)
{
    (void)state;
    check_remote_stamp_at_top(true);
}

/* ------------------------------------------------------------ chains, gaps */

static void test_gap_nack_resend(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    struct cw_dot d1 = put_ok(h, A, BUCKET_POSTS, "k1", "v1", NULL, NULL)->dot;
    flush(h, A);
    struct cw_dot d2 = put_ok(h, A, BUCKET_POSTS, "k2", "v2", NULL, NULL)->dot;
    flush(h, A);
    assert_int_equal(link_len(h, A, B), 2);
    assert_int_equal(link_head(h, A, B)->n_records, 1);
    drop(h, A, B); /* the first record is lost */
    assert_int_equal(link_head(h, A, B)->records[0].prev_ts, d1.ts);
    deliver(h, A, B);

    /* B saw the gap: nothing applied out of order, nothing buffered, a NACK. */
    const struct cw_replica_stats *sb = cw_replica_stats(rep_of(h, B));
    assert_int_equal(sb->remote_gaps, 1);
    assert_int_equal(sb->nacks_sent, 1);
    assert_int_equal(sb->remote_applied, 0);
    assert_int_equal(cw_replica_buffered(rep_of(h, B)), 0);
    assert_reads(h, B, BUCKET_POSTS, "k2", NULL);
    assert_true(cw_replica_applied(rep_of(h, B))->ts[A] < d1.ts);
    assert_int_equal(link_len(h, B, A), 1);
    const struct cw_msg *nack = link_head(h, B, A);
    assert_int_equal(nack->type, CW_MSG_NACK);
    assert_int_equal(nack->resend_after, 0); /* B holds nothing of A's stream */

    /* A resends from there. */
    assert_int_equal(deliver(h, B, A), CW_MSG_NACK);
    assert_int_equal(cw_replica_stats(rep_of(h, A))->nacks_received, 1);
    assert_int_equal(cw_replica_stats(rep_of(h, A))->resent_records, 2);
    assert_int_equal(link_len(h, A, B), 1);
    const struct cw_msg *m = link_head(h, A, B);
    assert_int_equal(m->type, CW_MSG_RECORDS);
    assert_int_equal(m->n_records, 2);
    assert_int_equal(m->records[0].version.dot.ts, d1.ts);
    assert_int_equal(m->records[1].version.dot.ts, d2.ts);
    duplicate_head(h, A, B);
    deliver(h, A, B);
    assert_int_equal(sb->remote_applied, 2);
    assert_reads(h, B, BUCKET_POSTS, "k1", "v1");
    assert_reads(h, B, BUCKET_POSTS, "k2", "v2");
    assert_int_equal(cw_replica_applied(rep_of(h, B))->ts[A], d2.ts);
    /* The duplicated resend is ignored. */
    deliver(h, A, B);
    assert_int_equal(sb->remote_duplicates, 2);
    assert_int_equal(sb->remote_applied, 2);
    h_free(h);
}

static void test_heartbeat_advances_idle_origin(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    heartbeat_round(h);
    const struct cw_msg *hb = link_head(h, A, B);
    assert_non_null(hb);
    assert_int_equal(hb->type, CW_MSG_HEARTBEAT);
    uint64_t clock = hb->clock;
    assert_true(clock >= cw_hlc_from_us(now_us(h)));
    assert_true(cw_replica_applied(rep_of(h, B))->ts[A] < clock);
    deliver(h, A, B);
    /* A is idle and B holds all of A's stream: B's entry for A moves to the clock. */
    assert_int_equal(cw_replica_applied(rep_of(h, B))->ts[A], clock);
    /* The heartbeat's clock is a promise: A's next stamp exceeds it. */
    struct cw_dot d = put_ok(h, A, BUCKET_POSTS, "k", "v", NULL, NULL)->dot;
    assert_true(d.ts > clock);
    h_free(h);
}

static void test_heartbeat_detects_lost_tail(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    struct cw_dot d = put_ok(h, A, BUCKET_POSTS, "k", "v", NULL, NULL)->dot;
    flush(h, A);
    drop(h, A, B); /* the last record is lost: only a heartbeat can reveal it */
    heartbeat_round(h);
    const struct cw_msg *hb = link_head(h, A, B);
    assert_int_equal(hb->type, CW_MSG_HEARTBEAT);
    assert_int_equal(hb->stream_sent, d.ts);
    assert_int_equal(hb->stream_end, d.ts);
    uint64_t clock = hb->clock;
    deliver_link(h, B, A); /* B's own heartbeat first, so links stay FIFO */
    deliver(h, A, B);
    const struct cw_replica_stats *sb = cw_replica_stats(rep_of(h, B));
    assert_int_equal(sb->nacks_sent, 1);
    /* B must not move its entry for A past the lost record. */
    assert_true(cw_replica_applied(rep_of(h, B))->ts[A] < d.ts);
    assert_true(cw_replica_applied(rep_of(h, B))->ts[A] < clock);
    assert_int_equal(link_len(h, B, A), 1);
    assert_int_equal(link_head(h, B, A)->type, CW_MSG_NACK);
    deliver(h, B, A);
    assert_int_equal(link_head(h, A, B)->type, CW_MSG_RECORDS);
    deliver(h, A, B);
    assert_reads(h, B, BUCKET_POSTS, "k", "v");
    assert_int_equal(cw_replica_applied(rep_of(h, B))->ts[A], d.ts);
    h_free(h);
}

static void test_window_bounds_records_in_flight(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h->cfg[A].window_records = 2;
    h->cfg[A].batch_records_max = 1;
    h_start(h);
    char key[16];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        put_ok(h, A, BUCKET_POSTS, key, "v", NULL, NULL);
    }
    flush(h, A);
    /* At most two records in flight, one per message. */
    assert_int_equal(link_len(h, A, B), 2);
    assert_int_equal(link_head(h, A, B)->n_records, 1);
    deliver_link(h, A, B);
    flush(h, A);
    assert_int_equal(link_len(h, A, B), 0); /* no ack yet: the window is full */
    /* B's heartbeat acknowledges; the next records flow. */
    advance(h, HB_US);
    fx_tick(h, B);
    deliver_link(h, B, A);
    assert_int_equal(link_len(h, A, B), 2);
    settle(h);
    heartbeat_round(h);
    deliver_all(h);
    settle(h);
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_reads(h, B, BUCKET_POSTS, key, "v");
    }
    h_free(h);
}

static void test_batch_bytes_bound(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h->cfg[A].batch_bytes_max = 30;
    h->cfg[A].flush_on_tick = true; /* four puts, batched on the tick */
    h_start(h);
    /* Key bytes ("posts/kN": 8) plus value bytes count against the bound. */
    put_ok(h, A, BUCKET_POSTS, "k1", "0123456789012345678901234567890123456789", NULL, NULL);
    put_ok(h, A, BUCKET_POSTS, "k2", "0123456789", NULL, NULL); /* 18 */
    put_ok(h, A, BUCKET_POSTS, "k3", "", NULL, NULL);           /* 8: fits with k2 */
    put_ok(h, A, BUCKET_POSTS, "k4", "0123456789", NULL, NULL); /* 18: does not */
    flush(h, A);
    assert_int_equal(link_len(h, A, B), 3);
    /* A record larger than the bound still goes, alone. */
    assert_int_equal(link_at(h, A, B, 0)->n_records, 1);
    assert_int_equal(link_at(h, A, B, 1)->n_records, 2);
    assert_int_equal(link_at(h, A, B, 2)->n_records, 1);
    deliver_link(h, A, B);
    assert_reads(h, B, BUCKET_POSTS, "k1", "0123456789012345678901234567890123456789");
    assert_reads(h, B, BUCKET_POSTS, "k3", "");
    assert_reads(h, B, BUCKET_POSTS, "k4", "0123456789");
    h_free(h);
}

static void test_visibility_latency_recorded(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k", "v", NULL, NULL);
    uint64_t written_us = now_us(h);
    flush(h, A);
    advance(h, 12345);
    deliver(h, A, B);
    uint64_t applied_us = now_us(h);
    const struct cw_hist *vis = cw_replica_visibility(rep_of(h, B), A);
    assert_non_null(vis);
    assert_int_equal(vis->count, 1);
    assert_int_equal(vis->max, applied_us - written_us);
    assert_int_equal(vis->sum, applied_us - written_us);
    assert_int_equal(cw_replica_visibility(rep_of(h, A), B)->count, 0);
    assert_null(cw_replica_visibility(rep_of(h, B), CW_REGIONS_MAX));
    h_free(h);
}

/* ------------------------------------------------------------ outbox */

static void test_outbox_dropped_after_every_peer_acked(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_dot d = put_ok(h, A, BUCKET_POSTS, "k", "v", NULL, NULL)->dot;
    flush(h, A);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 1);
    assert_int_equal(cw_replica_outbox_pending(rep_of(h, A), B), 1);
    assert_int_equal(cw_replica_outbox_pending(rep_of(h, A), C), 1);
    assert_int_equal(cw_replica_outbox_pending(rep_of(h, A), A), 0);
    deliver_link(h, A, B);
    deliver_link(h, A, C);
    assert_int_equal(cw_replica_applied(rep_of(h, B))->ts[A], d.ts);
    assert_int_equal(cw_replica_applied(rep_of(h, C))->ts[A], d.ts);

    /* Only B acknowledges: the record stays, C still lacks it. */
    advance(h, HB_US);
    fx_tick(h, B);
    deliver_link(h, B, A);
    assert_int_equal(last_of(h, A)->outbox_del, 0);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 1);
    assert_int_equal(cw_replica_outbox_pending(rep_of(h, A), B), 0);
    assert_int_equal(cw_replica_outbox_pending(rep_of(h, A), C), 1);
    assert_int_equal(disk_of(h, A)->n_outbox, 1);

    /* C acknowledges too: the record is dropped, durably. */
    fx_tick(h, C);
    deliver_link(h, C, A);
    assert_int_equal(last_of(h, A)->outbox_del, 1);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 0);
    assert_int_equal(cw_replica_outbox_pending(rep_of(h, A), C), 0);
    assert_int_equal(disk_of(h, A)->n_outbox, 0);
    h_free(h);
}

static void test_outbox_bound(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h->cfg[A].outbox_max = 2;
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k1", "v", NULL, NULL);
    put_ok(h, A, BUCKET_POSTS, "k2", "v", NULL, NULL);
    uint64_t id = put_full(h, A, BUCKET_POSTS, "k3", "v", false, NULL, NULL);
    assert_int_equal(reply_of(h, A, id)->err, CW_EFULL);
    assert_int_equal(last_of(h, A)->key + last_of(h, A)->outbox_put, 0);
    assert_reads(h, A, BUCKET_POSTS, "k3", NULL);
    /* Once B has applied and acknowledged, there is room again. */
    settle(h);
    heartbeat_round(h);
    deliver_all(h);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 0);
    put_ok(h, A, BUCKET_POSTS, "k3", "v", NULL, NULL);
    h_free(h);
}

/* ------------------------------------------------------------ reads that wait */

static void test_read_waits_for_context(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_dot post = put_ok(h, A, BUCKET_POSTS, "post", "hello", NULL, NULL)->dot;
    flush(h, A);
    struct cw_vclock session = vc_of_dot(post);

    /* The session moves to C, which has not applied its write yet. */
    uint64_t id = get_req(h, C, BUCKET_POSTS, "post", &session);
    assert_null(reply_of(h, C, id));
    assert_int_equal(cw_replica_waiting(rep_of(h, C)), 1);
    assert_int_equal(cw_replica_stats(rep_of(h, C))->reads_waited, 1);
    /* Time passing (short of the bound) does not answer it. */
    advance(h, WAIT_US / 2);
    fx_tick(h, C);
    assert_null(reply_of(h, C, id));

    /* Served the moment the write is applied. */
    deliver_link(h, A, C);
    const struct cw_reply *rep = reply_of(h, C, id);
    assert_non_null(rep);
    assert_int_equal(rep->err, CW_OK);
    assert_true(reply_has_value(rep, "hello"));
    assert_int_equal(cw_replica_waiting(rep_of(h, C)), 0);
    h_free(h);
}

static void test_read_wait_times_out(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_vclock session;
    cw_vc_zero(&session);
    session.ts[A] = cw_hlc_from_us(now_us(h) + AHEAD_US); /* never arrives */
    uint64_t id = get_req(h, C, BUCKET_POSTS, "post", &session);
    uint64_t asked_at = now_us(h);
    assert_null(reply_of(h, C, id));
    assert_int_equal(cw_replica_waiting(rep_of(h, C)), 1);
    set_now(h, asked_at + WAIT_US - 1);
    fx_tick(h, C);
    assert_null(reply_of(h, C, id));
    set_now(h, asked_at + WAIT_US);
    fx_tick(h, C);
    const struct cw_reply *rep = reply_of(h, C, id);
    assert_non_null(rep);
    assert_int_equal(rep->kind, CW_REPLY_GET);
    assert_int_equal(rep->err, CW_ENOTREADY);
    assert_int_equal(rep->state.n, 0);
    assert_int_equal(cw_replica_waiting(rep_of(h, C)), 0);
    assert_int_equal(cw_replica_stats(rep_of(h, C))->reads_timed_out, 1);
    h_free(h);
}

static void test_pending_reads_bound(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h->cfg[B].waiting_max = 2;
    h_start(h);
    struct cw_vclock session;
    cw_vc_zero(&session);
    session.ts[A] = cw_hlc_from_us(now_us(h) + AHEAD_US);
    uint64_t id1 = get_req(h, B, BUCKET_POSTS, "k", &session);
    uint64_t id2 = get_req(h, B, BUCKET_POSTS, "k", &session);
    uint64_t id3 = get_req(h, B, BUCKET_POSTS, "k", &session);
    assert_null(reply_of(h, B, id1));
    assert_null(reply_of(h, B, id2));
    assert_non_null(reply_of(h, B, id3));
    assert_int_equal(reply_of(h, B, id3)->err, CW_EFULL);
    assert_int_equal(cw_replica_waiting(rep_of(h, B)), 2);
    h_free(h);
}

/* ------------------------------------------------------------ dependency buffer */

static void test_dependency_buffer_bound(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h->cfg[B].dep_buffer_max = 2;
    h_start(h);
    /* C writes; only A receives it for now. */
    put_ok(h, C, BUCKET_POSTS, "c1", "from c", NULL, NULL);
    flush(h, C);
    deliver_link(h, C, A);
    const struct cw_reply *g = get_now(h, A, BUCKET_POSTS, "c1", NULL);
    struct cw_vclock ctx = g->seen;
    /* Three writes at A that depend on C's. */
    struct cw_dot a3 = {0, 0};
    put_ok(h, A, BUCKET_POSTS, "a1", "1", &ctx, NULL);
    put_ok(h, A, BUCKET_POSTS, "a2", "2", &ctx, NULL);
    a3 = put_ok(h, A, BUCKET_POSTS, "a3", "3", &ctx, NULL)->dot;
    flush(h, A);
    deliver_link(h, A, B);
    const struct cw_replica_stats *sb = cw_replica_stats(rep_of(h, B));
    assert_int_equal(cw_replica_buffered(rep_of(h, B)), 2);
    assert_int_equal(sb->buffer_full_drops, 1);
    assert_reads(h, B, BUCKET_POSTS, "a1", NULL);

    /* C's write arrives: it applies although the buffer is full, and unblocks. */
    deliver_link(h, C, B);
    assert_int_equal(cw_replica_buffered(rep_of(h, B)), 0);
    assert_reads(h, B, BUCKET_POSTS, "c1", "from c");
    assert_reads(h, B, BUCKET_POSTS, "a1", "1");
    assert_reads(h, B, BUCKET_POSTS, "a2", "2");
    assert_reads(h, B, BUCKET_POSTS, "a3", NULL); /* dropped: must come again */

    /* The dropped record is recovered: A's heartbeat reveals it, B asks again. */
    heartbeat_round(h);
    deliver_all(h);
    settle(h);
    assert_reads(h, B, BUCKET_POSTS, "a3", "3");
    assert_true(cw_replica_applied(rep_of(h, B))->ts[A] >= a3.ts);
    assert_int_equal(cw_replica_buffered(rep_of(h, B)), 0);
    h_free(h);
}

/* ------------------------------------------------------------ siblings */

static void assert_same_state_everywhere(struct harness *h, const char *bucket, const char *key,
                                         uint32_t versions)
{
    const struct cw_reply *first = get_now(h, A, bucket, key, NULL);
    assert_int_equal(first->state.n, versions);
    for (unsigned i = 1; i < h->n; i++) {
        const struct cw_reply *r = get_now(h, i, bucket, key, NULL);
        assert_true(cw_keystate_equal(&r->state, &first->state));
        assert_memory_equal(&r->kctx, &first->kctx, sizeof(r->kctx));
    }
}

static void test_siblings_across_regions(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    /* Concurrent writes in A and B, neither having seen the other. */
    const struct cw_reply *pa = put_ok(h, A, BUCKET_SIB, "k", "from a", NULL, NULL);
    assert_true(pa->kctx_valid); /* alone: its context is exact */
    put_ok(h, B, BUCKET_SIB, "k", "from b", NULL, NULL);
    settle(h);
    assert_same_state_everywhere(h, BUCKET_SIB, "k", 2);
    const struct cw_reply *g = get_now(h, C, BUCKET_SIB, "k", NULL);
    assert_true(reply_has_value(g, "from a"));
    assert_true(reply_has_value(g, "from b"));
    assert_int_equal(g->conflict, CW_CONFLICT_SIBLINGS);
    assert_int_equal(cw_keystate_live(&g->state), 2);

    /* A merging put with the key context read replaces both, in every region. */
    struct cw_vclock kctx = g->kctx, ctx = g->seen;
    const struct cw_reply *m = put_ok(h, C, BUCKET_SIB, "k", "merged", &ctx, &kctx);
    assert_true(m->kctx_valid);
    assert_true(cw_dot_covered(&m->kctx, m->dot));
    settle(h);
    assert_same_state_everywhere(h, BUCKET_SIB, "k", 1);
    for (unsigned i = 0; i < 3; i++)
        assert_reads(h, i, BUCKET_SIB, "k", "merged");
    h_free(h);
}

/* A hand-made key context that names a version but not what that version had
 * replaced is closed by the origin, and the write depends on what it replaces, so
 * every region ends in the same state. */
static void test_partial_key_context_is_closed(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    const struct cw_reply *u = put_ok(h, B, BUCKET_SIB, "k", "u", NULL, NULL);
    struct cw_dot du = u->dot;
    settle(h);
    /* v in A replaces u (its context covers u). */
    const struct cw_reply *g = get_now(h, A, BUCKET_SIB, "k", NULL);
    struct cw_vclock read_ctx = g->kctx, seen = g->seen;
    const struct cw_reply *v = put_ok(h, A, BUCKET_SIB, "k", "v", &seen, &read_ctx);
    struct cw_dot dv = v->dot;
    settle(h);
    /* w in C carries a context naming only v's dot, nothing of B. */
    struct cw_vclock partial = vc_of_dot(dv);
    const struct cw_reply *w = put_ok(h, C, BUCKET_SIB, "k", "w", NULL, &partial);
    assert_true(w->kctx_valid);
    assert_true(cw_dot_covered(&w->kctx, du)); /* closed over v's context */
    settle(h);
    assert_same_state_everywhere(h, BUCKET_SIB, "k", 1);
    for (unsigned i = 0; i < 3; i++)
        assert_reads(h, i, BUCKET_SIB, "k", "w");
    h_free(h);
}

/* A region's own entry of a session context is met by its clock: B never wrote,
 * yet a session whose context holds B's clock (as A learned it from heartbeats)
 * is served at B at once, not parked until B writes. Records from A carrying
 * such an entry do not wait at B either. */
static void test_own_entry_met_by_clock(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    heartbeat_round(h);
    settle(h);
    struct cw_vclock ctx;
    cw_vc_zero(&ctx);
    ctx.ts[B] = cw_replica_applied(rep_of(h, A))->ts[B]; /* B's clock as A knows it */
    assert_true(ctx.ts[B] > 0);
    assert_int_equal(cw_replica_applied(rep_of(h, B))->ts[B], 0); /* B never wrote */
    uint64_t id = get_req(h, B, BUCKET_POSTS, "k", &ctx);
    assert_int_equal(cw_replica_waiting(rep_of(h, B)), 0);
    assert_non_null(reply_of(h, B, id));
    assert_int_equal(reply_of(h, B, id)->err, CW_OK);
    put_ok(h, A, BUCKET_POSTS, "k", "v", &ctx, NULL);
    settle(h);
    assert_int_equal(cw_replica_buffered(rep_of(h, B)), 0);
    assert_reads(h, B, BUCKET_POSTS, "k", "v");
    h_free(h);
}

/* A context entry that is not a real write stamp (here: the origin's own clock)
 * must not make receivers wait for a V entry only a heartbeat could give. */
static void test_unreal_context_entry_does_not_wedge(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "first", "1", NULL, NULL);
    heartbeat_round(h);
    settle(h);
    struct cw_vclock ctx;
    cw_vc_zero(&ctx);
    ctx.ts[A] = cw_replica_clock(rep_of(h, A)); /* above A's last write, below its clock */
    put_ok(h, A, BUCKET_POSTS, "second", "2", &ctx, NULL);
    settle(h);
    for (int round = 0; round < 3; round++) {
        heartbeat_round(h);
        settle(h);
    }
    assert_int_equal(cw_replica_buffered(rep_of(h, B)), 0);
    assert_reads(h, B, BUCKET_POSTS, "second", "2");
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 0);
    h_free(h);
}

/* A region keeps a tombstone until every region has acknowledged it: collected
 * earlier, a reader there would see "not found" and, moving to a region that has
 * not applied the delete, see the deleted value again. */
static void test_tombstone_kept_until_every_region_has_it(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k", "v", NULL, NULL);
    settle(h);
    put_full(h, A, BUCKET_POSTS, "k", NULL, true, NULL, NULL);
    flush(h, A);
    /* Nothing more reaches B from A's stream: drop A's records, keep heartbeats. */
    for (int round = 0; round < 6; round++) {
        heartbeat_round(h);
        while (link_len(h, A, B) > 0) {
            if (link_head(h, A, B)->type == CW_MSG_RECORDS)
                drop(h, A, B);
            else
                deliver(h, A, B);
        }
        deliver_link(h, B, A);
    }
    assert_int_equal(cw_replica_stats(rep_of(h, A))->tombstones_collected, 0);
    const struct cw_reply *g = get_now(h, A, BUCKET_POSTS, "k", NULL);
    assert_int_equal(g->state.n, 1);
    assert_true(g->state.v[0].tombstone); /* still there, so a reader's context sees it */
    h_free(h);
}

static void test_siblings_one_region_no_lost_update(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    const struct cw_reply *v1 = put_ok(h, A, BUCKET_SIB, "k", "v1", NULL, NULL);
    struct cw_vclock seen_v1 = v1->kctx;
    /* Two sessions read v1, then each writes without seeing the other's write. */
    const struct cw_reply *s1 = put_ok(h, A, BUCKET_SIB, "k", "s1", NULL, &seen_v1);
    assert_true(s1->kctx_valid); /* it replaced v1 and nothing else was there */
    const struct cw_reply *s2 = put_ok(h, A, BUCKET_SIB, "k", "s2", NULL, &seen_v1);
    assert_false(s2->kctx_valid); /* s1 is still there */
    const struct cw_reply *g = get_now(h, A, BUCKET_SIB, "k", NULL);
    assert_int_equal(g->state.n, 2);
    assert_true(reply_has_value(g, "s1"));
    assert_true(reply_has_value(g, "s2"));
    assert_false(reply_has_value(g, "v1"));
    settle(h);
    assert_same_state_everywhere(h, BUCKET_SIB, "k", 2);

    /* A blind write (no key context) next to them adds a sibling. */
    put_ok(h, A, BUCKET_SIB, "k", "blind", NULL, NULL);
    g = get_now(h, A, BUCKET_SIB, "k", NULL);
    assert_int_equal(g->state.n, 3);
    /* Writing back with the context read resolves all three. */
    struct cw_vclock kctx = g->kctx;
    const struct cw_reply *res = put_ok(h, A, BUCKET_SIB, "k", "resolved", NULL, &kctx);
    assert_true(res->kctx_valid);
    assert_reads(h, A, BUCKET_SIB, "k", "resolved");
    h_free(h);
}

/*
 * The sibling limit for local writes. These run last in this file: when the
 * admission check and cw_keystate_apply disagree, the replica aborts (the
 * assertion after cw_keystate_apply in do_put), which would hide later tests.
 */
static void test_siblings_limit_refuses_write_at_limit(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    put_ok(h, A, BUCKET_SIB, "k", "s1", NULL, NULL);
    put_ok(h, A, BUCKET_SIB, "k", "s2", NULL, NULL);
    put_ok(h, A, BUCKET_SIB, "k", "s3", NULL, NULL); /* max_siblings is 3 */
    uint64_t id = put_full(h, A, BUCKET_SIB, "k", "one too many", false, NULL, NULL);
    const struct cw_reply *full = reply_of(h, A, id);
    assert_non_null(full);
    assert_int_equal(full->err, CW_ESIBLINGS);
    /* Nothing stored, persisted or queued. */
    assert_int_equal(last_of(h, A)->key + last_of(h, A)->outbox_put + last_of(h, A)->meta, 0);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), 3);
    const struct cw_reply *g = get_now(h, A, BUCKET_SIB, "k", NULL);
    assert_int_equal(g->state.n, 3);
    assert_false(reply_has_value(g, "one too many"));
    /* A write that replaces one of them is within the limit. */
    struct cw_vclock one;
    cw_vc_zero(&one);
    one.ts[A] = g->state.v[0].dot.ts;
    put_ok(h, A, BUCKET_SIB, "k", "replaces s1", NULL, &one);
    g = get_now(h, A, BUCKET_SIB, "k", NULL);
    assert_int_equal(g->state.n, 3);
    h_free(h);
}

static void test_siblings_limit_on_new_key_leaves_nothing(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h->buckets[1].max_siblings = 1;
    h_start(h);
    put_ok(h, A, BUCKET_SIB, "k", "only", NULL, NULL);
    uint64_t id = put_full(h, A, BUCKET_SIB, "k", "second", false, NULL, NULL);
    assert_int_equal(reply_of(h, A, id)->err, CW_ESIBLINGS);
    assert_int_equal(cw_replica_keys(rep_of(h, A))->count, 1);
    /* Remote writes are never refused: they were accepted at their origin. */
    put_ok(h, B, BUCKET_SIB, "k", "from b", NULL, NULL);
    settle(h);
    const struct cw_reply *g = get_now(h, A, BUCKET_SIB, "k", NULL);
    assert_int_equal(g->state.n, 2);
    h_free(h);
}

/* Remote writes are never refused, so a key can hold more siblings than the
 * limit; a merging write that resolves them must still be accepted. */
static void test_siblings_merge_allowed_above_limit(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    put_ok(h, A, BUCKET_SIB, "k", "a1", NULL, NULL);
    put_ok(h, A, BUCKET_SIB, "k", "a2", NULL, NULL);
    put_ok(h, A, BUCKET_SIB, "k", "a3", NULL, NULL);
    put_ok(h, B, BUCKET_SIB, "k", "b1", NULL, NULL);
    settle(h);
    const struct cw_reply *g = get_now(h, A, BUCKET_SIB, "k", NULL);
    assert_int_equal(g->state.n, 4); /* above max_siblings (3) */
    struct cw_vclock kctx = g->kctx, ctx = g->seen;
    uint64_t id = put_full(h, A, BUCKET_SIB, "k", "merged", false, &ctx, &kctx);
    const struct cw_reply *m = reply_of(h, A, id);
    assert_non_null(m);
    if (m->err != CW_OK)
        fail_msg("a put that replaces all 4 siblings was refused with %d (%s)", m->err,
                 cw_strerror(m->err));
    assert_true(m->kctx_valid);
    settle(h);
    assert_same_state_everywhere(h, BUCKET_SIB, "k", 1);
    assert_reads(h, B, BUCKET_SIB, "k", "merged");
    h_free(h);
}

/* ------------------------------------------------------------ tombstones */

static void test_tombstone_collected_when_stable(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k", "v", NULL, NULL);
    uint64_t id = put_full(h, A, BUCKET_POSTS, "k", NULL, true, NULL, NULL);
    assert_int_equal(reply_of(h, A, id)->err, CW_OK);
    struct cw_dot tomb = reply_of(h, A, id)->dot;
    settle(h);
    for (unsigned i = 0; i < 3; i++) {
        const struct cw_reply *g = get_now(h, i, BUCKET_POSTS, "k", NULL);
        assert_int_equal(g->state.n, 1); /* the tombstone is held ... */
        assert_true(g->state.v[0].tombstone);
        assert_int_equal(cw_keystate_live(&g->state), 0); /* ... and reads as not found */
        assert_int_equal(g->seen.ts[A], tomb.ts);
        assert_int_equal(cw_replica_stats(rep_of(h, i))->tombstones_collected, 0);
    }
    /* Heartbeats move every region's applied vector past the tombstone; one more
     * round carries those vectors back as acknowledgements (causal stability),
     * and the tick after that collects. */
    heartbeat_round(h);
    deliver_all(h);
    heartbeat_round(h);
    deliver_all(h);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(cw_replica_stats(rep_of(h, i))->tombstones_collected, 0);
    heartbeat_round(h);
    deliver_all(h);
    for (unsigned i = 0; i < 3; i++) {
        for (unsigned o = 0; o < 3; o++)
            if (o != i) /* a region's own entry moves only with its own writes */
                assert_true(cw_replica_applied(rep_of(h, i))->ts[o] >= tomb.ts);
        assert_int_equal(cw_replica_stats(rep_of(h, i))->tombstones_collected, 1);
        assert_int_equal(cw_replica_keys(rep_of(h, i))->count, 0);
        assert_int_equal(disk_of(h, i)->key_deletes, 1); /* a KEY effect with data_len 0 */
        assert_int_equal(disk_of(h, i)->n_keys, 0);
        const struct cw_reply *g = get_now(h, i, BUCKET_POSTS, "k", NULL);
        assert_int_equal(g->state.n, 0);
    }
    /* The key can be written again afterwards. */
    put_ok(h, B, BUCKET_POSTS, "k", "again", NULL, NULL);
    settle(h);
    for (unsigned i = 0; i < 3; i++)
        assert_reads(h, i, BUCKET_POSTS, "k", "again");
    h_free(h);
}

static void test_live_versions_never_collected(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    put_ok(h, A, BUCKET_SIB, "k", "live", NULL, NULL);
    put_full(h, B, BUCKET_SIB, "k", NULL, true, NULL, NULL); /* a concurrent delete */
    settle(h);
    for (int round = 0; round < 3; round++) {
        heartbeat_round(h);
        deliver_all(h);
    }
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(cw_replica_stats(rep_of(h, i))->tombstones_collected, 1);
        assert_reads(h, i, BUCKET_SIB, "k", "live");
        const struct cw_reply *g = get_now(h, i, BUCKET_SIB, "k", NULL);
        assert_int_equal(g->state.n, 1);
    }
    h_free(h);
}

/* ------------------------------------------------------------ restore */

static void test_restore_from_persisted_effects(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k1", "one", NULL, NULL);
    put_ok(h, B, BUCKET_POSTS, "k2", "two", NULL, NULL);
    put_ok(h, A, BUCKET_SIB, "s", "sa", NULL, NULL);
    put_ok(h, C, BUCKET_SIB, "s", "sc", NULL, NULL);
    put_ok(h, A, BUCKET_EV, "e", "ev", NULL, NULL);
    put_ok(h, A, BUCKET_POSTS, "gone", "x", NULL, NULL);
    put_full(h, A, BUCKET_POSTS, "gone", NULL, true, NULL, NULL);
    settle(h);
    /* More local writes that no peer has acknowledged: they stay in the outbox. */
    put_ok(h, A, BUCKET_POSTS, "k1", "one again", NULL, NULL);
    put_ok(h, A, BUCKET_POSTS, "k3", "three", NULL, NULL);
    flush(h, A);
    assert_true(cw_replica_outbox_len(rep_of(h, A)) >= 2);
    /* A heartbeat promises peers that every later stamp exceeds its clock; that
     * promise must survive the restart too (it is persisted in the metadata). */
    heartbeat_round(h);
    assert_true(h->issued_max[A] > cw_replica_applied(rep_of(h, A))->ts[A]);

    /* What the running region holds and serves, before it is rebuilt from what
     * it persisted (the replies stay the fixture's until the end). */
    size_t outbox_len = cw_replica_outbox_len(rep_of(h, A));
    struct cw_vclock applied = *cw_replica_applied(rep_of(h, A));
    size_t key_count = cw_replica_keys(rep_of(h, A))->count;
    const char *keys[][2] = {{BUCKET_POSTS, "k1"},   {BUCKET_POSTS, "k2"},   {BUCKET_SIB, "s"},
                             {BUCKET_EV, "e"},       {BUCKET_POSTS, "gone"}, {BUCKET_POSTS, "k3"},
                             {BUCKET_POSTS, "never"}};
    enum { N_KEYS = sizeof(keys) / sizeof(keys[0]) };
    const struct cw_reply *before[N_KEYS];
    for (size_t k = 0; k < N_KEYS; k++)
        before[k] = get_now(h, A, keys[k][0], keys[k][1], NULL);

    /* The node is destroyed and a new one restored from the store. */
    assert_true(cw_fixture_crash(h->f, A));
    assert_null(cw_fixture_node(h->f, A));
    assert_true(cw_fixture_start(h->f, A));
    fx_ok(h);
    assert_int_equal(cw_replica_outbox_len(rep_of(h, A)), outbox_len);
    assert_memory_equal(cw_replica_applied(rep_of(h, A)), &applied, sizeof(struct cw_vclock));
    assert_int_equal(cw_replica_keys(rep_of(h, A))->count, key_count);

    /* It serves the same reads. */
    for (size_t k = 0; k < N_KEYS; k++) {
        const struct cw_reply *a = before[k];
        const struct cw_reply *b = get_now(h, A, keys[k][0], keys[k][1], NULL);
        assert_true(cw_keystate_equal(&a->state, &b->state));
        assert_memory_equal(&a->kctx, &b->kctx, sizeof(a->kctx));
        assert_memory_equal(&a->seen, &b->seen, sizeof(a->seen));
    }
    assert_reads(h, A, BUCKET_POSTS, "k1", "one again");
    const struct cw_reply *s = get_now(h, A, BUCKET_SIB, "s", NULL);
    assert_int_equal(s->state.n, 2);

    /* Its next stamp exceeds every stamp the old node issued, even with the
     * physical clock set back (a wall-clock jump: the monotonic clock goes on). */
    uint64_t old_max = h->issued_max[A];
    assert_true(old_max > 0);
    cw_fixture_clock_jump(h->f, A, -(int64_t)(100 * HB_US));
    const struct cw_reply *p = put_ok(h, A, BUCKET_POSTS, "k4", "four", NULL, NULL);
    assert_true(p->dot.ts > old_max);
    cw_fixture_clock_jump(h->f, A, (int64_t)(100 * HB_US));

    /* The restored region keeps replicating: the unacknowledged records and the
     * new one reach the peers (who ask again from where they are). */
    advance(h, 100 * HB_US);
    heartbeat_round(h);
    deliver_all(h);
    settle(h);
    heartbeat_round(h);
    deliver_all(h);
    settle(h);
    for (unsigned i = 0; i < 3; i++) {
        assert_reads(h, i, BUCKET_POSTS, "k1", "one again");
        assert_reads(h, i, BUCKET_POSTS, "k3", "three");
        assert_reads(h, i, BUCKET_POSTS, "k4", "four");
    }
    h_free(h);
}

static void test_restore_rejects_corrupt_bytes(void **state)
{
    (void)state;
    struct harness *h = h_new(2);
    h_start(h);
    put_ok(h, A, BUCKET_POSTS, "k", "v", NULL, NULL);
    put_ok(h, A, BUCKET_POSTS, "k2", "v", NULL, NULL);
    const struct cw_fixture_store *d = disk_of(h, A);
    struct cw_replica *r = cw_replica_create(cw_fixture_replica_config(h->f, A));
    assert_non_null(r);
    assert_int_equal(cw_replica_restore_meta(r, d->meta, d->meta_len - 1), CW_EDECODE);
    assert_int_equal(cw_replica_restore_meta(r, d->keys[0].data, d->keys[0].len), CW_EDECODE);
    assert_int_equal(cw_replica_restore_key(r, d->keys[0].key, d->keys[0].key_len, d->keys[0].data,
                                            d->keys[0].len - 1),
                     CW_EDECODE);
    /* A key without a bucket part, or with an invalid one. */
    assert_int_equal(
        cw_replica_restore_key(r, (const uint8_t *)"nobucket", 8, d->keys[0].data, d->keys[0].len),
        CW_EDECODE);
    assert_int_equal(
        cw_replica_restore_key(r, (const uint8_t *)"Bad/k", 5, d->keys[0].data, d->keys[0].len),
        CW_EDECODE);
    assert_int_equal(cw_replica_keys(r)->count, 0);
    assert_int_equal(cw_replica_restore_outbox(r, d->outbox[0].data, d->outbox[0].len - 1),
                     CW_EDECODE);
    /* Out of stamp order. */
    assert_int_equal(cw_replica_restore_outbox(r, d->outbox[1].data, d->outbox[1].len), CW_OK);
    assert_int_equal(cw_replica_restore_outbox(r, d->outbox[0].data, d->outbox[0].len), CW_EDECODE);
    assert_int_equal(cw_replica_outbox_len(r), 1);
    cw_replica_destroy(&r);
    /* Another region's record is not this region's outbox. */
    struct cw_replica *rb = cw_replica_create(cw_fixture_replica_config(h->f, B));
    assert_non_null(rb);
    assert_int_equal(cw_replica_restore_outbox(rb, d->outbox[0].data, d->outbox[0].len),
                     CW_EDECODE);
    cw_replica_destroy(&rb);
    h_free(h);
}

/* ------------------------------------------------------------ stability */

static void check_stability(struct harness *h, unsigned i)
{
    struct cw_vclock want = *cw_replica_applied(rep_of(h, i));
    for (unsigned p = 0; p < h->n; p++) {
        if (p == i)
            continue;
        for (unsigned o = 0; o < h->n; o++)
            if (h->acked[i][p].ts[o] < want.ts[o])
                want.ts[o] = h->acked[i][p].ts[o];
    }
    struct cw_vclock got;
    memset(&got, 0x55, sizeof(got));
    cw_replica_stability(rep_of(h, i), &got);
    assert_memory_equal(&got, &want, sizeof(got));
}

static void test_stability_is_min_of_acknowledged(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    for (unsigned i = 0; i < 3; i++)
        check_stability(h, i);
    struct cw_dot da = put_ok(h, A, BUCKET_POSTS, "a", "1", NULL, NULL)->dot;
    put_ok(h, B, BUCKET_POSTS, "b", "1", NULL, NULL);
    flush_all(h);
    deliver_link(h, A, B);
    deliver_link(h, B, C);
    for (unsigned i = 0; i < 3; i++)
        check_stability(h, i);
    heartbeat_round(h);
    deliver_link(h, B, A); /* B has A's write; C has not */
    deliver_link(h, C, A);
    struct cw_vclock st;
    cw_replica_stability(rep_of(h, A), &st);
    assert_true(st.ts[A] < cw_replica_applied(rep_of(h, A))->ts[A]);
    for (unsigned i = 0; i < 3; i++)
        check_stability(h, i);
    deliver_all(h);
    settle(h);
    heartbeat_round(h);
    deliver_all(h);
    for (unsigned i = 0; i < 3; i++)
        check_stability(h, i);
    /* Everyone has everything: A's stable entry covers its write. */
    cw_replica_stability(rep_of(h, A), &st);
    assert_true(st.ts[A] >= da.ts);
    for (unsigned k = h->n; k < CW_REGIONS_MAX; k++)
        assert_int_equal(st.ts[k], 0);
    h_free(h);
}

/* ------------------------------------------------------------ sessions end to end */

static void test_session_read_your_writes_across_regions(void **state)
{
    (void)state;
    struct harness *h = h_new(3);
    h_start(h);
    struct cw_session s;
    cw_session_init(&s, 16);
    const struct cw_reply *p = put_ok(h, A, BUCKET_SIB, "k", "mine", &s.context, NULL);
    assert_int_equal(cw_session_observe(&s, (const uint8_t *)"sib/k", 5, p), CW_OK);
    flush(h, A);
    /* The session reads at B before B has the write: the read waits for it. */
    uint64_t id = get_req(h, B, BUCKET_SIB, "k", &s.context);
    assert_null(reply_of(h, B, id));
    deliver_link(h, A, B);
    const struct cw_reply *g = reply_of(h, B, id);
    assert_non_null(g);
    assert_true(reply_has_value(g, "mine"));
    assert_int_equal(cw_session_observe(&s, (const uint8_t *)"sib/k", 5, g), CW_OK);
    const struct cw_vclock *kctx = cw_session_kctx(&s, (const uint8_t *)"sib/k", 5);
    assert_non_null(kctx);
    /* Meanwhile C wrote concurrently; the session's put at B replaces only its own. */
    put_ok(h, C, BUCKET_SIB, "k", "theirs", NULL, NULL);
    struct cw_vclock kc = *kctx;
    put_ok(h, B, BUCKET_SIB, "k", "mine v2", &s.context, &kc);
    settle(h);
    assert_same_state_everywhere(h, BUCKET_SIB, "k", 2);
    const struct cw_reply *fin = get_now(h, C, BUCKET_SIB, "k", NULL);
    assert_true(reply_has_value(fin, "mine v2"));
    assert_true(reply_has_value(fin, "theirs"));
    cw_session_free(&s);
    h_free(h);
}

static int frames_copied(void **state)
{
    (void)state;
    g_frames = CW_FIXTURE_COPIED;
    return 0;
}

static int frames_encoded(void **state)
{
    (void)state;
    g_frames = CW_FIXTURE_ENCODED;
    return 0;
}

static int free_leftover(void **state)
{
    (void)state;
    if (g_live != NULL) {
        cw_fixture_destroy(&g_live->f);
        free(g_live);
        g_live = NULL;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects_bad_config),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_buckets_copied),
        cmocka_unit_test(test_validate_helpers),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_local_put_effects),
        cmocka_unit_test(test_single_region_drops_outbox_at_once),
        cmocka_unit_test(test_stream_and_duplicates),
        cmocka_unit_test(test_put_ships_on_commit),
        cmocka_unit_test(test_flush_gap_batches_close_rounds),
        cmocka_unit_test(test_malformed_messages_ignored),
        cmocka_unit_test(test_crafted_contexts_ahead_of_stamp_refused),
        cmocka_unit_test(test_causal_delivery_buffers_until_dependency),
        cmocka_unit_test(test_eventual_bucket_skips_dependencies),
        cmocka_unit_test(test_force_eventual_applies_out_of_causal_order),
        cmocka_unit_test(test_put_waits_for_context),
        cmocka_unit_test(test_waiting_put_times_out),
        cmocka_unit_test(test_eventual_requests_do_not_wait),
        cmocka_unit_test(test_kctx_for_unknown_region_does_not_block_stream),
        cmocka_unit_test(test_eventual_context_for_unknown_region_does_not_block_stream),
        cmocka_unit_test(test_causal_context_for_unknown_region_does_not_block_stream),
        cmocka_unit_test(test_huge_kctx_entry_keeps_stamps_increasing),
        cmocka_unit_test(test_heartbeat_clock_at_top_keeps_stamps_increasing),
        cmocka_unit_test(test_record_stamp_at_top_keeps_stamps_increasing),
        cmocka_unit_test(test_gap_nack_resend),
        cmocka_unit_test(test_heartbeat_advances_idle_origin),
        cmocka_unit_test(test_heartbeat_detects_lost_tail),
        cmocka_unit_test(test_window_bounds_records_in_flight),
        cmocka_unit_test(test_batch_bytes_bound),
        cmocka_unit_test(test_visibility_latency_recorded),
        cmocka_unit_test(test_outbox_dropped_after_every_peer_acked),
        cmocka_unit_test(test_outbox_bound),
        cmocka_unit_test(test_read_waits_for_context),
        cmocka_unit_test(test_read_wait_times_out),
        cmocka_unit_test(test_pending_reads_bound),
        cmocka_unit_test(test_dependency_buffer_bound),
        cmocka_unit_test(test_siblings_across_regions),
        cmocka_unit_test(test_partial_key_context_is_closed),
        cmocka_unit_test(test_own_entry_met_by_clock),
        cmocka_unit_test(test_unreal_context_entry_does_not_wedge),
        cmocka_unit_test(test_tombstone_kept_until_every_region_has_it),
        cmocka_unit_test(test_siblings_one_region_no_lost_update),
        cmocka_unit_test(test_tombstone_collected_when_stable),
        cmocka_unit_test(test_live_versions_never_collected),
        cmocka_unit_test(test_restore_from_persisted_effects),
        cmocka_unit_test(test_restore_rejects_corrupt_bytes),
        cmocka_unit_test(test_stability_is_min_of_acknowledged),
        cmocka_unit_test(test_session_read_your_writes_across_regions),
        cmocka_unit_test(test_siblings_merge_allowed_above_limit),
        /* Last: a wrong admission check aborts the process (see above). */
        cmocka_unit_test(test_siblings_limit_refuses_write_at_limit),
        cmocka_unit_test(test_siblings_limit_on_new_key_leaves_nothing),
    };
    /* Once with messages copied, once as encoded wire frames. */
    int failed =
        cmocka_run_group_tests_name("copied messages", tests, frames_copied, free_leftover);
    failed += cmocka_run_group_tests_name("encoded frames", tests, frames_encoded, free_leftover);
    return failed;
}
