/*
 * test_checker.c - unit tests of the history checker on hand-made histories.
 *
 * Each violation test builds the smallest history that breaks exactly one rule
 * and asserts that only that kind is reported; the clean tests are histories a
 * correct store could produce and must report nothing. Also covers the history
 * array, the report cap, printing and malformed input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "causeway/error.h"
#include "sim/checker.h"
#include "sim/history.h"

/* ---- history builders ---- */

static size_t add_write(struct cw_history *h, uint32_t sess, uint8_t region, uint32_t key,
                        enum cw_history_mode mode, uint64_t ts, uint64_t value_id, bool acked)
{
    struct cw_history_event e;
    memset(&e, 0, sizeof(e));
    e.kind = CW_HISTORY_WRITE;
    e.session = sess;
    e.region = region;
    e.key = key;
    e.mode = mode;
    e.write.origin = region;
    e.write.ts = ts;
    e.write.tombstone = value_id == 0; /* value 0 means a delete */
    e.write.value_id = value_id;
    e.acked = acked;
    size_t i = cw_history_add(h, &e);
    assert_int_not_equal(i, SIZE_MAX);
    return i;
}

/* Adds (origin, ts) to the key context write w was sent with and stored (as a
 * correct region does when nothing it holds needs closing). */
static void add_ctx(struct cw_history *h, size_t w, uint8_t origin, uint64_t ts)
{
    cw_vc_join_dot(&h->events[w].sent_kctx, origin, ts);
    cw_vc_join_dot(&h->events[w].write.kctx, origin, ts);
}

/* Adds (origin, ts) only to the context the region stored for write w: what
 * closing adds, or what a faulty region made up. */
static void add_stored_ctx(struct cw_history *h, size_t w, uint8_t origin, uint64_t ts)
{
    cw_vc_join_dot(&h->events[w].write.kctx, origin, ts);
}

/* A write decided and then lost in a crash before its commit, recorded as the
 * simulator does: unacknowledged, with a dot no region ever issues. */
static size_t add_lost_write(struct cw_history *h, uint32_t sess, uint8_t region, uint32_t key,
                             enum cw_history_mode mode, uint64_t value_id)
{
    static uint64_t next_lost;
    size_t i = add_write(h, sess, region, key, mode, UINT64_MAX - next_lost++, value_id, false);
    h->events[i].lost = true;
    return i;
}

/* A read returning the versions written by the given write events. */
static size_t add_read(struct cw_history *h, uint32_t sess, uint8_t region, uint32_t key,
                       enum cw_history_mode mode, bool final, size_t n, const size_t *writes)
{
    struct cw_history_event e;
    memset(&e, 0, sizeof(e));
    e.kind = CW_HISTORY_READ;
    e.session = sess;
    e.region = region;
    e.key = key;
    e.mode = mode;
    e.final = final;
    e.n_read = (uint32_t)n;
    for (size_t j = 0; j < n; j++)
        e.read[j] = h->events[writes[j]].write;
    size_t i = cw_history_add(h, &e);
    assert_int_not_equal(i, SIZE_MAX);
    return i;
}

#define READ(h, s, r, k, m, ...)                                                                   \
    add_read(h, s, r, k, m, false, sizeof((size_t[]){__VA_ARGS__}) / sizeof(size_t),               \
             (size_t[]){__VA_ARGS__})
#define READ_NONE(h, s, r, k, m) add_read(h, s, r, k, m, false, 0, NULL)
#define FINAL(h, r, k, m, ...)                                                                     \
    add_read(h, 0, r, k, m, true, sizeof((size_t[]){__VA_ARGS__}) / sizeof(size_t),                \
             (size_t[]){__VA_ARGS__})
#define FINAL_NONE(h, r, k, m) add_read(h, 0, r, k, m, true, 0, NULL)

/* Final reads of key at regions 0..2 that all return the given writes. */
#define FINALS(h, k, m, ...)                                                                       \
    do {                                                                                           \
        for (uint8_t reg_ = 0; reg_ < 3; reg_++)                                                   \
            FINAL(h, reg_, k, m, __VA_ARGS__);                                                     \
    } while (0)

static void check(const struct cw_history *h, struct cw_check_report *rep)
{
    assert_int_equal(cw_check_history(h, rep), CW_OK);
}

/* Exactly `count` violations of `kind`, none of any other kind. */
static void assert_only(const struct cw_check_report *rep, enum cw_check_kind kind, size_t count)
{
    for (int k = 0; k < CW_CHECK_KINDS; k++) {
        if (rep->n_by_kind[k] != (k == (int)kind ? count : 0)) {
            cw_check_report_print(rep, NULL, stderr, 8);
            fail_msg("kind %s: %zu reported", cw_check_kind_name((enum cw_check_kind)k),
                     rep->n_by_kind[k]);
        }
    }
    assert_int_equal(rep->total, count);
    assert_int_equal(rep->n, count < CW_CHECK_STORED_MAX ? count : CW_CHECK_STORED_MAX);
    for (size_t i = 0; i < rep->n; i++) {
        assert_int_equal(rep->v[i].kind, kind);
        assert_true(rep->v[i].witness[0] != '\0');
    }
}

static void assert_clean(const struct cw_history *h)
{
    struct cw_check_report rep;
    check(h, &rep);
    if (rep.total != 0)
        cw_check_report_print(&rep, h, stderr, 8);
    assert_int_equal(rep.total, 0);
    assert_int_equal(rep.n, 0);
    cw_check_report_free(&rep);
}

static bool has_event(const struct cw_check_violation *v, size_t e)
{
    for (unsigned i = 0; i < v->n_events; i++)
        if (v->events[i] == e)
            return true;
    return false;
}

enum { K1 = 1, K2 = 2 };
#define LWW CW_HISTORY_LWW
#define SIB CW_HISTORY_SIBLINGS
#define EVT CW_HISTORY_EVENTUAL

/* ---- the history array ---- */

static void test_history_grows(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    assert_int_equal(h.n_regions, 3);
    assert_int_equal(h.n, 0);
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(add_write(&h, 1, 0, K1, LWW, i + 1, i + 1, true), i);
    assert_int_equal(h.n, 1000);
    assert_true(h.cap >= 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(h.events[i].write.value_id, i + 1);
    cw_history_free(&h);
    assert_null(h.events);
    assert_int_equal(h.n, 0);
    cw_history_free(&h); /* idempotent */
}

/* ---- clean histories ---- */

/* Post at region 0, reply at region 1 by a reader of the post, and a third session
 * at region 2 that sees the reply and then the post. */
static void test_clean_causal_chain(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t post = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    READ(&h, 2, 1, K1, LWW, post);
    size_t reply = add_write(&h, 2, 1, K2, LWW, 20, 2, true);
    READ(&h, 3, 2, K2, LWW, reply);
    READ(&h, 3, 2, K1, LWW, post);
    FINALS(&h, K1, LWW, post);
    FINALS(&h, K2, LWW, reply);
    assert_clean(&h);
    cw_history_free(&h);
}

/* Two concurrent writes kept as siblings, then one write replacing both. */
static void test_clean_siblings(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t b = add_write(&h, 2, 1, K1, SIB, 11, 2, true);
    READ(&h, 1, 0, K1, SIB, a, b);
    READ(&h, 3, 2, K1, SIB, b, a);
    size_t c = add_write(&h, 3, 2, K1, SIB, 30, 3, true);
    add_ctx(&h, c, 0, 10);
    add_ctx(&h, c, 1, 11);
    READ(&h, 3, 2, K1, SIB, c);
    READ(&h, 2, 1, K1, SIB, c);
    FINALS(&h, K1, SIB, c);
    assert_clean(&h);
    cw_history_free(&h);
}

/* A delete whose tombstone was collected: not-found is explained by the delete,
 * both in the session's read and in the final state. */
static void test_clean_tombstone_gc(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t v = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    READ(&h, 2, 1, K1, LWW, v);
    size_t del = add_write(&h, 2, 1, K1, LWW, 20, 0, true);
    READ(&h, 2, 1, K1, LWW, del); /* tombstone still there */
    READ_NONE(&h, 2, 2, K1, LWW); /* collected */
    READ_NONE(&h, 1, 0, K1, LWW); /* session 1 saw its write, then the delete won */
    FINAL(&h, 0, K1, LWW, del);   /* one region still holds the tombstone ... */
    FINAL_NONE(&h, 1, K1, LWW);   /* ... the others collected it: not divergence */
    FINAL_NONE(&h, 2, K1, LWW);
    assert_clean(&h);
    cw_history_free(&h);
}

/* LWW with concurrent writes: everyone returns the greater (ts, origin). */
static void test_clean_lww_concurrent(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w1 = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    size_t w2 = add_write(&h, 2, 1, K1, LWW, 10, 2, true); /* same ts: origin 1 wins */
    READ(&h, 1, 0, K1, LWW, w2);
    READ(&h, 2, 1, K1, LWW, w2);
    READ(&h, 3, 2, K1, LWW, w1); /* not yet seen w2, and w2 is not in its past */
    READ(&h, 3, 2, K1, LWW, w2);
    FINALS(&h, K1, LWW, w2);
    assert_clean(&h);
    cw_history_free(&h);
}

/* An unacked write the region never applied: the session cannot demand it. */
static void test_clean_unacked_write(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w = add_write(&h, 1, 0, K1, LWW, 10, 1, false);
    READ_NONE(&h, 1, 0, K1, LWW);
    size_t w2 = add_write(&h, 1, 0, K2, LWW, 20, 2, true);
    READ(&h, 2, 1, K2, LWW, w2);
    READ_NONE(&h, 2, 1, K1, LWW); /* w is not in w2's past either */
    FINALS(&h, K1, LWW, w);       /* it did arrive in the end: fine */
    FINALS(&h, K2, LWW, w2);
    assert_clean(&h);
    cw_history_free(&h);
}

/* Eventual keys only promise convergence: the classic anomaly is not reported. */
static void test_eventual_not_reported(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t post = add_write(&h, 1, 0, K1, EVT, 10, 1, true);
    READ(&h, 2, 1, K1, EVT, post);
    size_t reply = add_write(&h, 2, 1, K2, EVT, 20, 2, true);
    READ(&h, 3, 2, K2, EVT, reply);
    READ_NONE(&h, 3, 2, K1, EVT);
    READ_NONE(&h, 1, 2, K1, EVT); /* not even read-your-writes */
    FINALS(&h, K1, EVT, post);
    FINALS(&h, K2, EVT, reply);
    assert_clean(&h);
    cw_history_free(&h);
}

/* A chain through an eventual key proves nothing: the store neither waits for an
 * eventual write's dependencies nor for the session's context before it. */
static void test_eventual_breaks_no_chain(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t post = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    READ(&h, 2, 0, K1, LWW, post);
    size_t e = add_write(&h, 2, 1, K2, EVT, 20, 2, true);
    READ(&h, 3, 1, K2, EVT, e);
    READ_NONE(&h, 3, 1, K1, LWW);
    FINALS(&h, K1, LWW, post);
    FINALS(&h, K2, EVT, e);
    assert_clean(&h);

    /* The same shape with a causal key in the middle is the classic anomaly. */
    h.events[e].mode = LWW;
    h.events[e + 1].mode = LWW;
    for (size_t i = e + 3; i < h.n; i++)
        if (h.events[i].key == K2)
            h.events[i].mode = LWW;
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_CAUSAL_MISS, 1);
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* ---- one rule broken at a time ---- */

static void test_thin_air(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    size_t r1 = READ(&h, 2, 1, K1, LWW, w);
    h.events[r1].read[0].value_id = 99; /* right dot, wrong value */
    size_t r2 = READ(&h, 3, 2, K1, LWW, w);
    h.events[r2].read[0].ts = 77; /* a dot never written */
    FINALS(&h, K1, LWW, w);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_THIN_AIR, 2);
    assert_true(has_event(&rep.v[0], r1));
    assert_true(has_event(&rep.v[0], w));
    assert_true(has_event(&rep.v[1], r2));
    assert_non_null(strstr(rep.v[1].witness, "never written"));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* Each session reads the write the other issues only afterwards. */
static void test_cycle(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t ra = READ_NONE(&h, 1, 0, K1, LWW);
    size_t wa = add_write(&h, 1, 0, K2, LWW, 10, 1, true);
    size_t rb = READ(&h, 2, 1, K2, LWW, wa);
    size_t wb = add_write(&h, 2, 1, K1, LWW, 11, 2, true);
    h.events[ra].n_read = 1;
    h.events[ra].read[0] = h.events[wb].write;
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_CYCLE, 1);
    const struct cw_check_violation *v = &rep.v[0];
    assert_int_equal(v->n_events, 4);
    assert_true(has_event(v, ra) && has_event(v, wa) && has_event(v, rb) && has_event(v, wb));
    assert_non_null(strstr(v->witness, "-so->"));
    assert_non_null(strstr(v->witness, "-rf->"));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* WriteCOInitRead, the classic: a third session sees the reply, then not the post. */
static void test_write_co_init_read(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t post = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    READ(&h, 2, 1, K1, LWW, post);
    size_t reply = add_write(&h, 2, 1, K2, LWW, 20, 2, true);
    READ(&h, 3, 2, K2, LWW, reply);
    size_t bad = READ_NONE(&h, 3, 2, K1, LWW);
    FINALS(&h, K1, LWW, post);
    FINALS(&h, K2, LWW, reply);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_CAUSAL_MISS, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    assert_int_equal(rep.v[0].events[1], post);
    /* The witness names the shortest CO path post -> ... -> bad read. */
    char path[64];
    snprintf(path, sizeof(path), "#%zu -rf-> #%zu", post, post + 1);
    assert_non_null(strstr(rep.v[0].witness, path));
    snprintf(path, sizeof(path), "-so-> #%zu", bad);
    assert_non_null(strstr(rep.v[0].witness, path));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* WriteCORead (LWW): w1 -> w2 -> read in CO, yet the read returns w1. */
static void test_write_co_read_lww(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w1 = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    READ(&h, 2, 1, K1, LWW, w1);
    size_t w2 = add_write(&h, 2, 1, K1, LWW, 20, 2, true);
    size_t w3 = add_write(&h, 2, 1, K2, LWW, 25, 3, true);
    READ(&h, 3, 2, K2, LWW, w3);
    size_t bad = READ(&h, 3, 2, K1, LWW, w1);
    FINALS(&h, K1, LWW, w2);
    FINALS(&h, K2, LWW, w3);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_CAUSAL_MISS, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    assert_int_equal(rep.v[0].events[1], w2);
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* WriteCORead (SIBLINGS): w2 replaced w1 and is in the read's past; the read
 * returns w1 alongside a concurrent sibling. */
static void test_write_co_read_siblings(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w1 = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t other = add_write(&h, 4, 2, K1, SIB, 12, 4, true);
    READ(&h, 2, 1, K1, SIB, w1);
    size_t w2 = add_write(&h, 2, 1, K1, SIB, 20, 2, true);
    add_ctx(&h, w2, 0, 10);
    size_t w3 = add_write(&h, 2, 1, K2, SIB, 25, 3, true);
    READ(&h, 3, 2, K2, SIB, w3);
    size_t bad = READ(&h, 3, 2, K1, SIB, w1, other);
    FINALS(&h, K1, SIB, w2, other);
    FINALS(&h, K2, SIB, w3);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_CAUSAL_MISS, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    /* w2 is both missing and the write that replaced the returned w1. */
    assert_int_equal(rep.v[0].events[1], w2);
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* WriteCORead (SIBLINGS), the other rule: w2 in the read's past replaced w1 and
 * was itself replaced by w4; a read returns w4 but still w1 as well. */
static void test_write_co_read_siblings_replaced(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w1 = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    READ(&h, 2, 1, K1, SIB, w1);
    size_t w2 = add_write(&h, 2, 1, K1, SIB, 20, 2, true);
    add_ctx(&h, w2, 0, 10);
    READ(&h, 3, 2, K1, SIB, w2);
    size_t w4 = add_write(&h, 3, 2, K1, SIB, 30, 4, true);
    add_ctx(&h, w4, 1, 20);
    /* Another session: session 3 itself would be a monotonic-reads violation. */
    size_t bad = READ(&h, 5, 2, K1, SIB, w1, w4);
    FINALS(&h, K1, SIB, w4);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_CAUSAL_MISS, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    assert_int_equal(rep.v[0].events[1], w2);
    assert_true(has_event(&rep.v[0], w1));
    assert_non_null(strstr(rep.v[0].witness, "replaces the returned"));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* Read-your-writes (SIBLINGS key): the session's own acked write is missing. */
static void test_read_your_writes(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t bad = READ_NONE(&h, 1, 1, K1, SIB);
    FINALS(&h, K1, SIB, w);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_SESSION, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    assert_int_equal(rep.v[0].events[1], w);
    assert_non_null(strstr(rep.v[0].witness, "read-your-writes"));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* Monotonic reads (LWW): a session sees v2, then the older v1, then nothing. */
static void test_monotonic_reads(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t v1 = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    READ(&h, 1, 0, K1, LWW, v1);
    size_t v2 = add_write(&h, 1, 0, K1, LWW, 20, 2, true);
    size_t seen = READ(&h, 2, 0, K1, LWW, v2);
    size_t back = READ(&h, 2, 1, K1, LWW, v1);
    size_t gone = READ_NONE(&h, 2, 2, K1, LWW);
    FINALS(&h, K1, LWW, v2);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_SESSION, 2);
    assert_int_equal(rep.v[0].events[0], back);
    assert_int_equal(rep.v[0].events[1], v2);
    assert_true(has_event(&rep.v[0], seen));
    assert_non_null(strstr(rep.v[0].witness, "monotonic reads"));
    assert_int_equal(rep.v[1].events[0], gone);
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

static void test_lost_write(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    size_t kept = add_write(&h, 1, 0, K2, LWW, 11, 2, true);
    FINALS(&h, K2, LWW, kept);
    for (uint8_t r = 0; r < 3; r++)
        FINAL_NONE(&h, r, K1, LWW); /* agree, but w vanished without a delete */
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_LOST_WRITE, 1); /* once per write, not per region */
    assert_int_equal(rep.v[0].events[0], w);
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* An acked delete lost: the final state shows the older value again. */
static void test_lost_delete(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t v = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    size_t del = add_write(&h, 2, 1, K1, LWW, 20, 0, true);
    FINALS(&h, K1, LWW, v);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_LOST_WRITE, 1);
    assert_int_equal(rep.v[0].events[0], del);
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* Regions disagree; the write is unacked so nothing is lost, only diverged. */
static void test_divergence(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w = add_write(&h, 1, 0, K1, SIB, 10, 1, false);
    size_t f0 = FINAL(&h, 0, K1, SIB, w);
    size_t f1 = FINAL_NONE(&h, 1, K1, SIB);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_DIVERGENCE, 1);
    assert_true(has_event(&rep.v[0], f0) && has_event(&rep.v[0], f1));
    assert_non_null(strstr(rep.v[0].witness, "regions 0 and 1"));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* A sibling set that keeps a version another returned version replaced. */
static void test_siblings_covered(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    READ(&h, 2, 1, K1, SIB, a);
    size_t b = add_write(&h, 2, 1, K1, SIB, 20, 2, true);
    add_ctx(&h, b, 0, 10);
    /* Final reads, so only the sibling rule applies to them (not the causal one). */
    FINALS(&h, K1, SIB, a, b);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_SIBLINGS, 3);
    assert_non_null(strstr(rep.v[0].witness, "is replaced by"));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* Duplicate dots in a sibling set, and two versions for an LWW key. */
static void test_siblings_duplicate_and_lww(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t x = add_write(&h, 1, 0, K2, LWW, 11, 2, true);
    size_t y = add_write(&h, 2, 1, K2, LWW, 12, 3, true);
    FINAL(&h, 0, K1, SIB, a, a);
    FINAL(&h, 1, K1, SIB, a);
    FINAL(&h, 0, K2, LWW, y, x);
    FINAL(&h, 1, K2, LWW, y, x);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_SIBLINGS, 3);
    assert_non_null(strstr(rep.v[0].witness, "returned twice"));
    assert_non_null(strstr(rep.v[1].witness, "last-writer-wins"));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* ---- lost writes replace, excuse and explain nothing (issue 8) ---- */

/* Checks h and asserts exactly `count` violations of `kind`; returns the report. */
static void check_only(const struct cw_history *h, struct cw_check_report *rep,
                       enum cw_check_kind kind, size_t count)
{
    check(h, rep);
    assert_only(rep, kind, count);
}

/* Siblings, final reads: a write lost in a crash had read a and replaced it. The
 * region that held it is gone, so nothing replaced a, yet a is nowhere. */
static void test_lost_write_replaces_nothing(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t x = add_lost_write(&h, 2, 1, K1, SIB, 2);
    add_ctx(&h, x, 0, 10);
    for (uint8_t r = 0; r < 3; r++)
        FINAL_NONE(&h, r, K1, SIB);
    struct cw_check_report rep;
    check_only(&h, &rep, CW_CHECK_LOST_WRITE, 1);
    assert_int_equal(rep.v[0].events[0], a);
    cw_check_report_free(&rep);
    cw_history_free(&h);

    /* Valid twin: the same lost write, and a is still there everywhere. */
    cw_history_init(&h, 3);
    a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    x = add_lost_write(&h, 2, 1, K1, SIB, 2);
    add_ctx(&h, x, 0, 10);
    FINALS(&h, K1, SIB, a);
    assert_clean(&h);
    cw_history_free(&h);
}

/* Siblings, causal rule: the session's own write is missing from its read; only
 * the lost write's context "replaced" it. */
static void test_lost_write_excuses_no_causal_miss(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t x = add_lost_write(&h, 2, 1, K1, SIB, 2);
    add_ctx(&h, x, 0, 10);
    size_t bad = READ_NONE(&h, 1, 1, K1, SIB);
    FINALS(&h, K1, SIB, a);
    struct cw_check_report rep;
    check_only(&h, &rep, CW_CHECK_SESSION, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    assert_int_equal(rep.v[0].events[1], a);
    assert_non_null(strstr(rep.v[0].witness, "read-your-writes"));
    cw_check_report_free(&rep);
    cw_history_free(&h);

    /* Valid twin: a real write that read a replaced it, and the read returns it. */
    cw_history_init(&h, 3);
    a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    READ(&h, 2, 0, K1, SIB, a);
    x = add_lost_write(&h, 2, 0, K1, SIB, 2);
    add_ctx(&h, x, 0, 10);
    size_t y = add_write(&h, 3, 0, K1, SIB, 20, 3, true);
    add_ctx(&h, y, 0, 10);
    READ(&h, 1, 0, K1, SIB, y);
    FINALS(&h, K1, SIB, y);
    assert_clean(&h);
    cw_history_free(&h);
}

/* LWW, final reads: an acked put vanished; only a lost delete, whose (rewritten)
 * stamp exceeds every real one, could have explained it. */
static void test_lost_delete_explains_nothing(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t a = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    add_lost_write(&h, 2, 1, K1, LWW, 0);
    for (uint8_t r = 0; r < 3; r++)
        FINAL_NONE(&h, r, K1, LWW);
    struct cw_check_report rep;
    check_only(&h, &rep, CW_CHECK_LOST_WRITE, 1);
    assert_int_equal(rep.v[0].events[0], a);
    cw_check_report_free(&rep);
    cw_history_free(&h);

    /* Valid twin: a real, greater delete whose tombstone was collected. */
    cw_history_init(&h, 3);
    add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    add_lost_write(&h, 2, 1, K1, LWW, 0);
    add_write(&h, 3, 2, K1, LWW, 20, 0, true);
    for (uint8_t r = 0; r < 3; r++)
        FINAL_NONE(&h, r, K1, LWW);
    assert_clean(&h);
    cw_history_free(&h);
}

/* LWW, causal rule: the session reads nothing after its own put; only a lost
 * delete could have explained the not-found. */
static void test_lost_delete_excuses_no_causal_miss(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t a = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    add_lost_write(&h, 2, 1, K1, LWW, 0);
    size_t bad = READ_NONE(&h, 1, 1, K1, LWW);
    FINALS(&h, K1, LWW, a);
    struct cw_check_report rep;
    check_only(&h, &rep, CW_CHECK_SESSION, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    assert_int_equal(rep.v[0].events[1], a);
    assert_non_null(strstr(rep.v[0].witness, "no greater delete"));
    cw_check_report_free(&rep);
    cw_history_free(&h);

    /* Valid twin: a real greater delete, collected before the read. */
    cw_history_init(&h, 3);
    add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    add_lost_write(&h, 2, 1, K1, LWW, 0);
    add_write(&h, 3, 1, K1, LWW, 20, 0, true);
    READ_NONE(&h, 1, 1, K1, LWW);
    for (uint8_t r = 0; r < 3; r++)
        FINAL_NONE(&h, r, K1, LWW);
    assert_clean(&h);
    cw_history_free(&h);
}

/* A read returning a write that was lost in a crash returned something that never
 * happened (here with the dot the region had given it). */
static void test_read_of_lost_write_is_thin_air(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t x = add_write(&h, 1, 0, K1, SIB, 10, 1, false);
    h.events[x].lost = true;
    size_t bad = READ(&h, 2, 0, K1, SIB, x);
    struct cw_check_report rep;
    check_only(&h, &rep, CW_CHECK_THIN_AIR, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    assert_true(has_event(&rep.v[0], x));
    assert_non_null(strstr(rep.v[0].witness, "lost in a crash"));
    cw_check_report_free(&rep);

    /* Valid twin: the restarted region reissued the dot to a real write. */
    size_t y = add_write(&h, 3, 0, K1, SIB, 10, 2, true);
    h.events[bad].read[0] = h.events[y].write;
    FINALS(&h, K1, SIB, y);
    assert_clean(&h);
    cw_history_free(&h);
}

/* An acknowledged write must survive a crash. */
static void test_acked_write_lost(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w = add_lost_write(&h, 1, 0, K1, LWW, 1);
    h.events[w].acked = true;
    struct cw_check_report rep;
    check_only(&h, &rep, CW_CHECK_LOST_WRITE, 1);
    assert_int_equal(rep.v[0].events[0], w);
    assert_non_null(strstr(rep.v[0].witness, "lost in a crash"));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

/* ---- "replaced" is judged from the key context the client sent ---- */

/* a and b are concurrent; c's client saw only a and sent {0:10}, but the region
 * stored c with a context that also covers b. b is gone: lost, not replaced. */
static void test_replaced_judged_from_sent_context(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t b = add_write(&h, 2, 1, K1, SIB, 11, 2, true);
    size_t c = add_write(&h, 3, 2, K1, SIB, 30, 3, true);
    add_ctx(&h, c, 0, 10);
    add_stored_ctx(&h, c, 1, 11); /* widened by the region */
    FINALS(&h, K1, SIB, c);
    struct cw_check_report rep;
    check_only(&h, &rep, CW_CHECK_LOST_WRITE, 1);
    assert_int_equal(rep.v[0].events[0], b);
    cw_check_report_free(&rep);
    cw_history_free(&h);

    /* Valid twin: c's client passed a token naming b only, and b had replaced a;
     * the region closed c's context with b's. a is replaced by b's sent context,
     * b by c's; c's stored context is the closed one, returned as stored. */
    cw_history_init(&h, 3);
    size_t a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    READ(&h, 2, 1, K1, SIB, a);
    b = add_write(&h, 2, 1, K1, SIB, 11, 2, true);
    add_ctx(&h, b, 0, 10);
    c = add_write(&h, 3, 2, K1, SIB, 30, 3, true);
    add_ctx(&h, c, 1, 11);
    add_stored_ctx(&h, c, 0, 10); /* closed: b had replaced a */
    READ(&h, 3, 2, K1, SIB, c);
    FINALS(&h, K1, SIB, c);
    assert_clean(&h);
    cw_history_free(&h);
}

/* The causal rule, same widening: b's own session reads c alone. */
static void test_replaced_judged_from_sent_context_causal(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t b = add_write(&h, 2, 1, K1, SIB, 11, 2, true);
    size_t c = add_write(&h, 3, 2, K1, SIB, 30, 3, true);
    add_ctx(&h, c, 0, 10);
    add_stored_ctx(&h, c, 1, 11);
    size_t bad = READ(&h, 2, 2, K1, SIB, c);
    struct cw_check_report rep;
    check_only(&h, &rep, CW_CHECK_SESSION, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    assert_int_equal(rep.v[0].events[1], b);
    cw_check_report_free(&rep);
    cw_history_free(&h);

    /* Valid twin: c's client did send a context covering b. */
    cw_history_init(&h, 3);
    add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    add_write(&h, 2, 1, K1, SIB, 11, 2, true);
    c = add_write(&h, 3, 2, K1, SIB, 30, 3, true);
    add_ctx(&h, c, 0, 10);
    add_ctx(&h, c, 1, 11);
    READ(&h, 2, 2, K1, SIB, c);
    assert_clean(&h);
    cw_history_free(&h);
}

/* ---- a returned version carries the key context its write stored ---- */

static void test_returned_context_mismatch(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t bad = READ(&h, 2, 1, K1, SIB, a);
    cw_vc_join_dot(&h.events[bad].read[0].kctx, 2, 5); /* a context a never carried */
    FINALS(&h, K1, SIB, a);
    struct cw_check_report rep;
    check_only(&h, &rep, CW_CHECK_CONTEXT, 1);
    assert_int_equal(rep.v[0].events[0], bad);
    assert_true(has_event(&rep.v[0], a));
    assert_non_null(strstr(rep.v[0].witness, "carries key context 0.0.5"));
    assert_non_null(strstr(rep.v[0].witness, "stored it with key context 0.0.0"));
    cw_check_report_free(&rep);
    cw_history_free(&h);

    /* A region that stored less than its client sent: c's client replaced a, the
     * region kept a beside c, and every read agrees with the region. */
    cw_history_init(&h, 3);
    a = add_write(&h, 1, 0, K1, SIB, 10, 1, true);
    size_t c = add_write(&h, 2, 1, K1, SIB, 20, 2, true);
    cw_vc_join_dot(&h.events[c].sent_kctx, 0, 10);
    FINALS(&h, K1, SIB, a, c);
    check_only(&h, &rep, CW_CHECK_CONTEXT, 1);
    assert_int_equal(rep.v[0].events[0], c);
    assert_non_null(strstr(rep.v[0].witness, "lacks part of the context a.0.0"));
    cw_check_report_free(&rep);
    cw_history_free(&h);

    /* Valid: LWW writes store no key context whatever the client sent. */
    cw_history_init(&h, 3);
    a = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    READ(&h, 2, 0, K1, LWW, a);
    size_t w = add_write(&h, 2, 0, K1, LWW, 20, 2, true);
    cw_vc_join_dot(&h.events[w].sent_kctx, 0, 10);
    READ(&h, 1, 1, K1, LWW, w);
    FINALS(&h, K1, LWW, w);
    assert_clean(&h);
    cw_history_free(&h);
}

/* ---- report plumbing ---- */

static void test_report_cap_and_print(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    for (int i = 0; i < 100; i++) {
        size_t r = READ(&h, 2, 1, K1, LWW, w);
        h.events[r].read[0].value_id = 1000 + (uint64_t)i;
    }
    FINALS(&h, K1, LWW, w);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_int_equal(rep.n_by_kind[CW_CHECK_THIN_AIR], 100);
    assert_int_equal(rep.total, 100);
    assert_int_equal(rep.n, CW_CHECK_STORED_MAX);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cw_check_report_print(&rep, &h, f, 3);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, cw_check_kind_name(CW_CHECK_THIN_AIR)));
    assert_non_null(strstr(text, "100 violations"));
    assert_non_null(strstr(text, "[3]"));
    assert_null(strstr(text, "[4]"));
    assert_non_null(strstr(text, "97 more not shown"));
    assert_non_null(strstr(text, "v1000"));
    free(text);
    cw_check_report_free(&rep);
    assert_null(rep.v);
    cw_check_report_free(&rep); /* safe twice */
    cw_history_free(&h);
}

static void test_print_causal(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    READ_NONE(&h, 1, 1, K1, LWW);
    FINALS(&h, K1, LWW, w);
    struct cw_check_report rep;
    check(&h, &rep);
    assert_only(&rep, CW_CHECK_SESSION, 1);
    char buf[4096];
    memset(buf, 0, sizeof(buf));
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    assert_non_null(f);
    cw_check_report_print(&rep, &h, f, 10);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(buf, "] session:"));
    assert_non_null(strstr(buf, "write #0"));
    cw_check_report_free(&rep);
    cw_history_free(&h);
}

static void test_kind_names(void **state)
{
    (void)state;
    for (int a = 0; a < CW_CHECK_KINDS; a++) {
        const char *na = cw_check_kind_name((enum cw_check_kind)a);
        assert_string_not_equal(na, "unknown");
        for (int b = a + 1; b < CW_CHECK_KINDS; b++)
            assert_string_not_equal(na, cw_check_kind_name((enum cw_check_kind)b));
    }
    assert_string_equal(cw_check_kind_name((enum cw_check_kind)CW_CHECK_KINDS), "unknown");
}

static void test_malformed(void **state)
{
    (void)state;
    struct cw_history h;
    cw_history_init(&h, 3);
    size_t w = add_write(&h, 1, 0, K1, LWW, 10, 1, true);
    h.events[w].write.origin = CW_REGIONS_MAX;
    struct cw_check_report rep;
    assert_int_equal(cw_check_history(&h, &rep), CW_EINVAL);
    assert_int_equal(rep.total, 0);
    assert_null(rep.v);
    h.events[w].write.origin = 0;
    size_t r = READ(&h, 1, 0, K1, LWW, w);
    h.events[r].n_read = CW_HISTORY_READ_MAX + 1;
    assert_int_equal(cw_check_history(&h, &rep), CW_EINVAL);
    cw_check_report_free(&rep);
    cw_history_free(&h);

    /* An empty history is clean. */
    cw_history_init(&h, 3);
    assert_clean(&h);
    cw_history_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_grows),
        cmocka_unit_test(test_clean_causal_chain),
        cmocka_unit_test(test_clean_siblings),
        cmocka_unit_test(test_clean_tombstone_gc),
        cmocka_unit_test(test_clean_lww_concurrent),
        cmocka_unit_test(test_clean_unacked_write),
        cmocka_unit_test(test_eventual_not_reported),
        cmocka_unit_test(test_eventual_breaks_no_chain),
        cmocka_unit_test(test_thin_air),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_write_co_init_read),
        cmocka_unit_test(test_write_co_read_lww),
        cmocka_unit_test(test_write_co_read_siblings),
        cmocka_unit_test(test_write_co_read_siblings_replaced),
        cmocka_unit_test(test_read_your_writes),
        cmocka_unit_test(test_monotonic_reads),
        cmocka_unit_test(test_lost_write),
        cmocka_unit_test(test_lost_delete),
        cmocka_unit_test(test_divergence),
        cmocka_unit_test(test_siblings_covered),
        cmocka_unit_test(test_siblings_duplicate_and_lww),
        cmocka_unit_test(test_lost_write_replaces_nothing),
        cmocka_unit_test(test_lost_write_excuses_no_causal_miss),
        cmocka_unit_test(test_lost_delete_explains_nothing),
        cmocka_unit_test(test_lost_delete_excuses_no_causal_miss),
        cmocka_unit_test(test_read_of_lost_write_is_thin_air),
        cmocka_unit_test(test_acked_write_lost),
        cmocka_unit_test(test_replaced_judged_from_sent_context),
        cmocka_unit_test(test_replaced_judged_from_sent_context_causal),
        cmocka_unit_test(test_returned_context_mismatch),
        cmocka_unit_test(test_report_cap_and_print),
        cmocka_unit_test(test_print_causal),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
