/*
 * test_fixture.c - the fixture (src/sim/fixture.h) itself: a broken invariant
 * stops the run with the seed, the event and the invariant's description (and
 * nothing after it runs); so does a frame that does not decode; a seed replays
 * exactly, and copied and encoded links carry the same run; the store follows
 * the Berkeley DB store's rules; a crash loses exactly what was not committed;
 * cut links lose what is sent on them.
 */
#include <inttypes.h>
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
#include "sim/fixture.h"

#define MS 1000ull
#define T0 (1700000000ull * 1000000ull)

enum { A = 0, B = 1, C = 2 };

/* Driver events of these tests. */
enum { EV_PUT, EV_CRASH, EV_RESTART, EV_MARK };

struct world {
    struct cw_fixture *f;
    struct cw_bucket_policy buckets[2];
    uint64_t next_req;
    unsigned replies;
    bool marked; /* EV_MARK ran */
    /* A log of every delivery and reply, to compare runs. */
    char log[1 << 16];
    size_t log_len;
};

static void logf_(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_(struct world *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = sizeof(w->log) - w->log_len;
    int n = vsnprintf(w->log + w->log_len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->log_len += (size_t)n < room ? (size_t)n : room - 1;
}

static void put_at(struct world *w, unsigned r, const char *key, uint64_t value)
{
    struct cw_put_req req = {
        .req_id = w->next_req++,
        .bucket = "posts",
        .key = (const uint8_t *)key,
        .key_len = (uint32_t)strlen(key),
        .value = (const uint8_t *)&value,
        .value_len = sizeof(value),
    };
    cw_fixture_put(w->f, r, &req);
}

static void on_event(void *ctx, struct cw_fixture *f, const struct cw_fixture_event *ev)
{
    struct world *w = ctx;
    char key[16];
    switch (ev->kind) {
    case EV_PUT:
        snprintf(key, sizeof(key), "k%u", (unsigned)(ev->a % 5));
        put_at(w, ev->region, key, ev->a);
        break;
    case EV_CRASH:
        cw_fixture_crash(f, ev->region);
        break;
    case EV_RESTART:
        cw_fixture_start(f, ev->region);
        break;
    case EV_MARK:
        w->marked = true;
        break;
    }
}

static void on_reply(void *ctx, struct cw_fixture *f, unsigned r, const struct cw_reply *rep)
{
    struct world *w = ctx;
    w->replies++;
    logf_(w, "%" PRIu64 " reply r%u req %" PRIu64 " err %d dot %u/%" PRIx64 "\n", cw_fixture_now(f),
          r, rep->req_id, rep->err, rep->dot.origin, rep->dot.ts);
}

static void on_deliver(void *ctx, struct cw_fixture *f, unsigned from, unsigned to,
                       const struct cw_msg *m)
{
    struct world *w = ctx;
    logf_(w, "%" PRIu64 " r%u->r%u type %d records %u applied %" PRIx64 " clock %" PRIx64 "\n",
          cw_fixture_now(f), from, to, (int)m->type, m->n_records, m->applied.ts[from], m->clock);
}

/* Three regions with WAN-like links, ticks and group commit, as the simulator
 * runs them. */
static struct world *world_new_checking(uint64_t seed, enum cw_fixture_frames frames,
                                        enum cw_fixture_check check)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->next_req = 1;
    snprintf(w->buckets[0].name, sizeof(w->buckets[0].name), "posts");
    w->buckets[0].consistency = CW_CAUSAL;
    w->buckets[0].conflict = CW_CONFLICT_LWW;
    snprintf(w->buckets[1].name, sizeof(w->buckets[1].name), "sib");
    w->buckets[1].consistency = CW_CAUSAL;
    w->buckets[1].conflict = CW_CONFLICT_SIBLINGS;
    w->buckets[1].max_siblings = 8;
    struct cw_fixture_config fc = {
        .seed = seed,
        .n_regions = 3,
        .replica = {.n_regions = 3,
                    .buckets = w->buckets,
                    .n_buckets = 2,
                    .heartbeat_us = 50 * MS,
                    .nack_retry_us = 300 * MS,
                    .batch_records_max = 4},
        .frames = frames,
        .start_us = T0,
        .tick_us = 10 * MS,
        .commit_min_us = 50,
        .commit_max_us = 3000,
        .check = check,
        .hooks = {.ctx = w, .event = on_event, .reply = on_reply, .deliver = on_deliver},
    };
    w->f = cw_fixture_create(&fc);
    assert_non_null(w->f);
    struct cw_rng *rng = cw_fixture_rng(w->f);
    for (unsigned a = 0; a < 3; a++)
        for (unsigned b = 0; b < 3; b++) {
            uint64_t d = a == b ? 0 : cw_rng_range(rng, 2 * MS, 80 * MS);
            cw_fixture_set_link(w->f, a, b, d, d / 10);
        }
    cw_fixture_set_loss(w->f, 20000, 20000);
    for (unsigned r = 0; r < 3; r++) {
        assert_true(cw_fixture_start(w->f, r));
        assert_true(cw_fixture_start_ticks(w->f, r, T0 + cw_rng_below(rng, 10 * MS)));
    }
    return w;
}

static struct world *world_new(uint64_t seed, enum cw_fixture_frames frames)
{
    return world_new_checking(seed, frames, CW_FIXTURE_CHECK_EVERY_REGION);
}

static void world_free(struct world *w)
{
    cw_fixture_destroy(&w->f);
    assert_null(w->f);
    free(w);
}

static void schedule(struct world *w, uint64_t at, unsigned kind, const char *name, unsigned r,
                     uint64_t a)
{
    struct cw_fixture_event ev = {.name = name, .kind = kind, .region = r, .a = a};
    assert_true(cw_fixture_schedule(w->f, at, &ev));
}

/* Puts at random regions over the first `span`. */
static void schedule_workload(struct world *w, unsigned n, uint64_t span)
{
    struct cw_rng *rng = cw_fixture_rng(w->f);
    for (unsigned i = 0; i < n; i++) {
        uint64_t at = T0 + cw_rng_below(rng, span);
        schedule(w, at, EV_PUT, "put", (unsigned)cw_rng_below(rng, 3), i + 1);
    }
}

/* A key state whose replaced vector covers its own version: it decodes (the
 * codec checks framing and order, not this), so a store can hold it, and a
 * node restored from it holds a version it says was replaced. */
static void corrupt_key_record(uint8_t **data, uint32_t *len)
{
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version v;
    memset(&v, 0, sizeof(v));
    v.dot.origin = A;
    v.dot.ts = cw_hlc_from_us(T0);
    v.value = (uint8_t *)"x";
    v.value_len = 1;
    s.v = &v;
    s.n = 1;
    s.cap = 1;
    cw_vc_zero(&s.replaced);
    cw_vc_join_dot(&s.replaced, A, v.dot.ts);
    assert_int_equal(cw_encode_keystate(&s, data, len), CW_OK);
}

/* The acceptance test of issue 8: a corrupted persisted record is restored at
 * a restart, and the fixture stops the run right there, naming the seed, the
 * event (type, region, time) and the broken invariant. With a
 * cw_node_check_invariants that checks nothing the run would go on. */
static void test_broken_invariant_stops_the_run(void **state)
{
    (void)state;
    const uint64_t seed = 4242;
    struct world *w = world_new(seed, CW_FIXTURE_COPIED);
    schedule_workload(w, 40, 400 * MS);
    const uint64_t crash_at = T0 + 500 * MS, restart_at = T0 + 700 * MS;
    schedule(w, crash_at, EV_CRASH, "crash", B, 0);
    schedule(w, restart_at, EV_RESTART, "restart", B, 0);
    schedule(w, T0 + 900 * MS, EV_MARK, "mark", A, 0);

    /* A clean run up to the crash: every region checked after every event. */
    assert_true(cw_fixture_run_until(w->f, crash_at + 1));
    assert_null(cw_fixture_failure(w->f));
    assert_false(cw_fixture_up(w->f, B));
    assert_true(w->replies > 0);
    uint64_t checks = cw_fixture_stats(w->f)->invariant_checks;
    assert_true(checks >= 3 * 100);

    /* The disk of B now holds a record no correct node persists. */
    struct cw_persist p = {.kind = CW_PERSIST_KEY, .key = (uint8_t *)"posts/bad", .key_len = 9};
    corrupt_key_record(&p.data, &p.data_len);
    assert_true(cw_fixture_store_inject(w->f, B, &p));
    free(p.data);

    assert_false(cw_fixture_run_until(w->f, T0 + 2000 * MS));
    const struct cw_fixture_failure *x = cw_fixture_failure(w->f);
    assert_non_null(x);
    assert_int_equal(x->kind, CW_FIXTURE_FAIL_INVARIANT);
    assert_int_equal(x->seed, seed);
    assert_int_equal(x->region, B);
    assert_int_equal(x->event.type, CW_FIXTURE_EV_DRIVER);
    assert_string_equal(x->event.name, "restart");
    assert_int_equal(x->event.region, B);
    assert_int_equal(x->event.time, restart_at);
    assert_non_null(strstr(x->why, "key posts/bad: a replaced version is still stored"));
    /* One line with everything needed to replay and understand it. */
    assert_non_null(strstr(x->text, "seed 4242"));
    assert_non_null(strstr(x->text, "'restart r1'"));
    assert_non_null(strstr(x->text, "region r1"));
    assert_non_null(strstr(x->text, x->why));
    /* The run stopped there: nothing later ran, and nothing more will. */
    assert_false(w->marked);
    assert_int_equal(cw_fixture_now(w->f), restart_at);
    assert_false(cw_fixture_step(w->f));
    assert_false(cw_fixture_tick(w->f, A));
    assert_false(w->marked);
    world_free(w);
}

/* The same through a direct input (as the unit tests drive the fixture): the
 * start that restores the corrupt record is the step that fails, and it
 * returns false. */
static void test_direct_start_from_corrupt_store_fails(void **state)
{
    (void)state;
    struct world *w = world_new(7, CW_FIXTURE_ENCODED);
    assert_true(cw_fixture_run_until(w->f, T0 + 100 * MS));
    struct cw_persist p = {.kind = CW_PERSIST_KEY, .key = (uint8_t *)"posts/bad", .key_len = 9};
    corrupt_key_record(&p.data, &p.data_len);
    assert_true(cw_fixture_store_inject(w->f, C, &p));
    free(p.data);
    /* Crash and restart C by hand: the restart is the step that fails. */
    assert_true(cw_fixture_crash(w->f, C));
    assert_false(cw_fixture_start(w->f, C));
    const struct cw_fixture_failure *x = cw_fixture_failure(w->f);
    assert_non_null(x);
    assert_int_equal(x->region, C);
    assert_int_equal(x->event.type, CW_FIXTURE_EV_START);
    assert_non_null(strstr(x->text, "'start r2'"));
    assert_non_null(strstr(x->text, "seed 7"));
    world_free(w);
}

/* Checking only the regions a step changed: fewer checks than every region
 * after every step, the same run, and a restart from a corrupt store is still
 * caught at that restart. */
static void test_checking_changed_regions_only(void **state)
{
    (void)state;
    struct world *every = world_new(21, CW_FIXTURE_COPIED);
    struct world *changed = world_new_checking(21, CW_FIXTURE_COPIED, CW_FIXTURE_CHECK_CHANGED);
    schedule_workload(every, 30, 300 * MS);
    schedule_workload(changed, 30, 300 * MS);
    assert_true(cw_fixture_run_until(every->f, T0 + 1000 * MS));
    assert_true(cw_fixture_run_until(changed->f, T0 + 1000 * MS));
    const struct cw_fixture_stats *se = cw_fixture_stats(every->f);
    const struct cw_fixture_stats *sc = cw_fixture_stats(changed->f);
    assert_int_equal(se->steps, sc->steps);
    assert_true(se->invariant_checks >= 3 * (se->steps - 3)); /* all up from the start */
    assert_true(sc->invariant_checks > 0);
    assert_true(sc->invariant_checks < se->invariant_checks / 2);
    assert_string_equal(every->log, changed->log);

    struct cw_persist p = {.kind = CW_PERSIST_KEY, .key = (uint8_t *)"posts/bad", .key_len = 9};
    corrupt_key_record(&p.data, &p.data_len);
    assert_true(cw_fixture_store_inject(changed->f, B, &p));
    free(p.data);
    assert_true(cw_fixture_crash(changed->f, B));
    assert_false(cw_fixture_start(changed->f, B));
    assert_non_null(strstr(cw_fixture_failure(changed->f)->why, "a replaced version"));
    world_free(every);
    world_free(changed);
}

/* A frame that does not decode on a link is a failure of the run, reported
 * like an invariant. */
static void test_undecodable_frame_stops_the_run(void **state)
{
    (void)state;
    struct world *w = world_new(99, CW_FIXTURE_ENCODED);
    assert_true(cw_fixture_run_until(w->f, T0 + 200 * MS));
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01, 0x02, 0x03};
    /* Only links that carry frames take raw bytes. */
    assert_true(cw_fixture_send_frame(w->f, A, B, junk, sizeof(junk)));
    assert_false(cw_fixture_run_until(w->f, T0 + 2000 * MS));
    const struct cw_fixture_failure *x = cw_fixture_failure(w->f);
    assert_non_null(x);
    assert_int_equal(x->kind, CW_FIXTURE_FAIL_DECODE);
    assert_int_equal(x->event.type, CW_FIXTURE_EV_DELIVER);
    assert_int_equal(x->event.peer, A);
    assert_int_equal(x->event.region, B);
    assert_non_null(strstr(x->text, "seed 99"));
    assert_non_null(strstr(x->text, "'deliver r0->r1'"));
    assert_non_null(strstr(x->why, "6-byte frame on link r0->r1"));
    world_free(w);

    w = world_new(99, CW_FIXTURE_COPIED);
    assert_false(cw_fixture_send_frame(w->f, A, B, junk, sizeof(junk)));
    world_free(w);
}

static void run_log(uint64_t seed, enum cw_fixture_frames frames, char **log, uint64_t *steps)
{
    struct world *w = world_new(seed, frames);
    schedule_workload(w, 60, 600 * MS);
    schedule(w, T0 + 300 * MS, EV_CRASH, "crash", C, 0);
    schedule(w, T0 + 800 * MS, EV_RESTART, "restart", C, 0);
    assert_true(cw_fixture_run_until(w->f, T0 + 3000 * MS));
    assert_null(cw_fixture_failure(w->f));
    assert_true(w->replies > 0);
    *log = strdup(w->log);
    assert_non_null(*log);
    *steps = cw_fixture_stats(w->f)->steps;
    world_free(w);
}

/* One seed, one run: the same seed gives the same deliveries and replies at
 * the same times, whether messages are copied or travel as wire frames; and
 * another seed gives another run. */
static void test_seed_replays_exactly(void **state)
{
    (void)state;
    char *a, *b, *c, *d;
    uint64_t sa, sb, sc, sd;
    run_log(11, CW_FIXTURE_COPIED, &a, &sa);
    run_log(11, CW_FIXTURE_COPIED, &b, &sb);
    run_log(11, CW_FIXTURE_ENCODED, &c, &sc);
    run_log(12, CW_FIXTURE_COPIED, &d, &sd);
    assert_true(strlen(a) > 1000);
    assert_string_equal(a, b);
    assert_int_equal(sa, sb);
    assert_string_equal(a, c);
    assert_int_equal(sa, sc);
    assert_true(strcmp(a, d) != 0);
    free(a);
    free(b);
    free(c);
    free(d);
}

static void persist_key(struct cw_fixture *f, const char *key, const char *data)
{
    struct cw_persist p = {.kind = CW_PERSIST_KEY,
                           .key = (uint8_t *)key,
                           .key_len = (uint32_t)strlen(key),
                           .data = (uint8_t *)data,
                           .data_len = (uint32_t)strlen(data)};
    assert_true(cw_fixture_store_inject(f, A, &p));
}

static void persist_outbox(struct cw_fixture *f, enum cw_persist_kind kind, uint64_t ts,
                           const char *data)
{
    struct cw_persist p = {.kind = kind,
                           .ts = ts,
                           .data = (uint8_t *)data,
                           .data_len = data ? (uint32_t)strlen(data) : 0};
    assert_true(cw_fixture_store_inject(f, A, &p));
}

/* The store applies records as src/store does with Berkeley DB. */
static void test_store_follows_the_daemons_rules(void **state)
{
    (void)state;
    struct cw_fixture_config fc = {.seed = 1, .n_regions = 1};
    struct cw_fixture *f = cw_fixture_create(&fc);
    assert_non_null(f);
    /* Keys in B-tree order: bytewise, a prefix first; a put replaces. */
    persist_key(f, "b/k", "1");
    persist_key(f, "a/kk", "2");
    persist_key(f, "a/k", "3");
    persist_key(f, "b/k", "4");
    const struct cw_fixture_store *s = cw_fixture_store(f, A);
    assert_int_equal(s->n_keys, 3);
    assert_memory_equal(s->keys[0].key, "a/k", 3);
    assert_memory_equal(s->keys[1].key, "a/kk", 4);
    assert_memory_equal(s->keys[2].key, "b/k", 3);
    assert_memory_equal(s->keys[2].data, "4", 1);
    /* A KEY record without data deletes; an absent key is a no-op. */
    persist_key(f, "a/kk", "");
    persist_key(f, "zz/z", "");
    assert_int_equal(s->n_keys, 2);
    assert_int_equal(s->key_deletes, 2);
    /* The outbox by stamp, whatever the order of the puts; a delete of an
     * absent stamp is a no-op. */
    persist_outbox(f, CW_PERSIST_OUTBOX_PUT, 30, "c");
    persist_outbox(f, CW_PERSIST_OUTBOX_PUT, 10, "a");
    persist_outbox(f, CW_PERSIST_OUTBOX_PUT, 20, "b");
    persist_outbox(f, CW_PERSIST_OUTBOX_PUT, 20, "B");
    persist_outbox(f, CW_PERSIST_OUTBOX_DEL, 10, NULL);
    persist_outbox(f, CW_PERSIST_OUTBOX_DEL, 99, NULL);
    assert_int_equal(s->n_outbox, 2);
    assert_int_equal(s->outbox[0].ts, 20);
    assert_memory_equal(s->outbox[0].data, "B", 1);
    assert_int_equal(s->outbox[1].ts, 30);
    /* What the daemon's store refuses. */
    struct cw_persist bad = {.kind = CW_PERSIST_KEY, .key_len = 0};
    assert_false(cw_fixture_store_inject(f, A, &bad));
    bad = (struct cw_persist){.kind = CW_PERSIST_META};
    assert_false(cw_fixture_store_inject(f, A, &bad));
    bad = (struct cw_persist){.kind = CW_PERSIST_OUTBOX_PUT, .ts = 5};
    assert_false(cw_fixture_store_inject(f, A, &bad));
    cw_fixture_destroy(&f);
}

/* A crash loses what the region decided but did not commit: the record, the
 * reply and the messages; what was committed survives the restart. */
static void test_crash_loses_only_what_was_not_committed(void **state)
{
    (void)state;
    struct world *w = world_new(5, CW_FIXTURE_COPIED);
    assert_true(cw_fixture_run_until(w->f, T0 + 200 * MS));
    unsigned replies = w->replies;
    put_at(w, A, "lost", 1);
    assert_true(cw_fixture_pending(w->f, A) > 0);
    const struct cw_fixture_store *s = cw_fixture_store(w->f, A);
    uint64_t commits = s->commits;
    assert_true(cw_fixture_crash(w->f, A));
    assert_int_equal(cw_fixture_pending(w->f, A), 0);
    assert_true(cw_fixture_run_until(w->f, T0 + 300 * MS));
    assert_int_equal(w->replies, replies); /* never answered */
    assert_int_equal(s->commits, commits);
    assert_true(cw_fixture_start(w->f, A));
    uint8_t fk[] = "posts/lost";
    assert_null(cw_keymap_find(cw_replica_keys(cw_fixture_replica(w->f, A)), fk, 10));

    put_at(w, A, "kept", 2);
    assert_true(cw_fixture_commit(w->f, A));
    assert_int_equal(cw_fixture_pending(w->f, A), 0);
    assert_int_equal(w->replies, replies + 1);
    assert_true(cw_fixture_crash(w->f, A));
    assert_true(cw_fixture_start(w->f, A));
    uint8_t fk2[] = "posts/kept";
    assert_non_null(cw_keymap_find(cw_replica_keys(cw_fixture_replica(w->f, A)), fk2, 10));
    assert_true(cw_fixture_run_until(w->f, T0 + 1000 * MS));
    world_free(w);
}

/* A cut link loses everything sent on it (counted), a healed one carries again;
 * the clock of one region jumps without moving the others or the timeline. */
static void test_cut_heal_and_clock_jump(void **state)
{
    (void)state;
    struct world *w = world_new(3, CW_FIXTURE_ENCODED);
    cw_fixture_set_loss(w->f, 0, 0);
    cw_fixture_cut(w->f, A, B);
    assert_true(cw_fixture_is_cut(w->f, A, B));
    uint64_t dropped = cw_fixture_stats(w->f)->dropped;
    assert_true(cw_fixture_run_until(w->f, T0 + 500 * MS));
    assert_true(cw_fixture_stats(w->f)->dropped > dropped);
    assert_int_equal(cw_fixture_link_len(w->f, A, B), 0);
    /* B never heard from A: A's entry of B's applied vector is still zero. */
    assert_int_equal(cw_replica_applied(cw_fixture_replica(w->f, B))->ts[A], 0);
    cw_fixture_heal(w->f, A, B);
    assert_true(cw_fixture_run_until(w->f, T0 + 1000 * MS));
    assert_true(cw_replica_applied(cw_fixture_replica(w->f, B))->ts[A] > 0);
    assert_true(cw_fixture_stats(w->f)->frame_bytes > 0);

    struct cw_now before = cw_fixture_now_of(w->f, C);
    cw_fixture_clock_jump(w->f, C, -250 * (int64_t)MS);
    struct cw_now after = cw_fixture_now_of(w->f, C);
    assert_int_equal(after.mono_us, before.mono_us);
    assert_int_equal(after.real_us, before.real_us - 250 * MS);
    assert_int_equal(cw_fixture_now_of(w->f, A).real_us, before.real_us);
    assert_true(cw_fixture_run_until(w->f, T0 + 2000 * MS));
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broken_invariant_stops_the_run),
        cmocka_unit_test(test_direct_start_from_corrupt_store_fails),
        cmocka_unit_test(test_checking_changed_regions_only),
        cmocka_unit_test(test_undecodable_frame_stops_the_run),
        cmocka_unit_test(test_seed_replays_exactly),
        cmocka_unit_test(test_store_follows_the_daemons_rules),
        cmocka_unit_test(test_crash_loses_only_what_was_not_committed),
        cmocka_unit_test(test_cut_heal_and_clock_jump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
