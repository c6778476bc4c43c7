/*
 * test_lincheck.c - unit tests of the linearizability checker (sim/lincheck.h).
 *
 * Hand-made histories cover each rule of the register model once, as the
 * smallest history that is (or is not) linearizable because of it; then come the
 * per-key split, the budget, the memo on a history whose search is factorial
 * without it, and randomized histories generated from real sequential
 * executions (always linearizable) and mutated (must be violations where the
 * mutation leaves no explanation).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "causeway/error.h"
#include "sim/lincheck.h"
#include "sim/rng.h"

#define BIG_BUDGET 50000000ull

/* ---- history builders ---- */

static struct cw_lin_event mk(const char *key, uint32_t client, enum cw_lin_op op, uint64_t call,
                              uint64_t ret)
{
    struct cw_lin_event e;
    memset(&e, 0, sizeof(e));
    e.key = (const uint8_t *)key;
    e.key_len = (uint32_t)strlen(key);
    e.client = client;
    e.op = op;
    e.call_us = call;
    e.ret_us = ret;
    return e;
}

static void add(struct cw_lin_history *h, const struct cw_lin_event *e)
{
    assert_int_equal(cw_lin_history_add(h, e), CW_OK);
}

/* A write: out_version 0 means timed out (unknown outcome). */
static void put(struct cw_lin_history *h, const char *key, uint64_t call, uint64_t ret,
                uint64_t value, uint64_t version)
{
    struct cw_lin_event e = mk(key, 1, CW_LIN_PUT, call, ret);
    e.value_id = value;
    e.outcome = version ? CW_LIN_OK : CW_LIN_UNKNOWN;
    e.out_version = version;
    add(h, &e);
}

static void del(struct cw_lin_history *h, const char *key, uint64_t call, uint64_t ret,
                uint64_t version)
{
    struct cw_lin_event e = mk(key, 1, CW_LIN_DEL, call, ret);
    e.outcome = version ? CW_LIN_OK : CW_LIN_UNKNOWN;
    e.out_version = version;
    add(h, &e);
}

/* A conditional write with an explicit outcome. */
static void cput(struct cw_lin_history *h, const char *key, enum cw_lin_op op, uint64_t call,
                 uint64_t ret, uint64_t value, uint64_t expected, enum cw_lin_outcome out,
                 uint64_t version)
{
    struct cw_lin_event e = mk(key, 2, op, call, ret);
    e.value_id = value;
    e.expected_version = expected;
    e.outcome = out;
    e.out_version = version;
    add(h, &e);
}

/* A read: value 0 means not found. */
static void get(struct cw_lin_history *h, const char *key, uint64_t call, uint64_t ret,
                uint64_t value, uint64_t version)
{
    struct cw_lin_event e = mk(key, 3, CW_LIN_GET, call, ret);
    e.outcome = value ? CW_LIN_OK : CW_LIN_NOTFOUND;
    e.out_value_id = value;
    e.out_version = version;
    add(h, &e);
}

static enum cw_lin_result check_budget(const struct cw_lin_history *h, uint64_t budget,
                                       struct cw_lin_report *rep)
{
    assert_int_equal(cw_lin_check(h, budget, rep), CW_OK);
    if (rep->result != CW_LIN_LINEARIZABLE)
        assert_true(strlen(rep->desc) > 0);
    return rep->result;
}

/* Checks and frees h; returns the result. */
static enum cw_lin_result check_free(struct cw_lin_history **h)
{
    struct cw_lin_report rep;
    enum cw_lin_result r = check_budget(*h, BIG_BUDGET, &rep);
    cw_lin_history_destroy(h);
    assert_null(*h);
    return r;
}

static struct cw_lin_history *new_hist(void)
{
    struct cw_lin_history *h = cw_lin_history_create();
    assert_non_null(h);
    return h;
}

/* ---- the model, one rule at a time ---- */

static void test_empty(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    struct cw_lin_report rep;
    assert_int_equal(check_budget(h, 0, &rep), CW_LIN_LINEARIZABLE);
    assert_int_equal(rep.n_keys_checked, 0);
    cw_lin_history_destroy(&h);
    cw_lin_history_destroy(&h); /* NULL-safe */
    cw_lin_history_destroy(NULL);
}

static void test_sequential_ok(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    get(h, "k", 0, 1, 0, 0);
    put(h, "k", 2, 3, 100, 1);
    get(h, "k", 4, 5, 100, 1);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 6, 7, 101, 1, CW_LIN_OK, 5);
    get(h, "k", 8, 9, 101, 5);
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 10, 11, 102, 0, CW_LIN_CONFLICT, 5);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 12, 13, 103, 1, CW_LIN_CONFLICT, 5);
    del(h, "k", 14, 15, 7);
    get(h, "k", 16, 17, 0, 0);
    /* Absent: a version condition fails and reports 0, even expecting the
     * delete's index (an absent key has no version to match). */
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 18, 19, 104, 7, CW_LIN_CONFLICT, 0);
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 20, 21, 105, 0, CW_LIN_OK, 9);
    cput(h, "k", CW_LIN_DEL_IF_VERSION, 22, 23, 0, 8, CW_LIN_CONFLICT, 9);
    cput(h, "k", CW_LIN_DEL_IF_VERSION, 24, 25, 0, 9, CW_LIN_OK, 12);
    get(h, "k", 26, 27, 0, 0);
    del(h, "k", 28, 29, 13); /* a delete of an absent key still applies */
    put(h, "k", 30, 31, 106, 20);
    get(h, "k", 32, 33, 106, 20);
    struct cw_lin_report rep;
    assert_int_equal(check_budget(h, BIG_BUDGET, &rep), CW_LIN_LINEARIZABLE);
    assert_int_equal(rep.n_keys_checked, 1);
    assert_int_equal(rep.n_events_used, 17);
    assert_true(rep.steps > 0);
    cw_lin_history_destroy(&h);
}

static void test_concurrent_writes_reads_either_order(void **state)
{
    (void)state;
    /* Two overlapping writes; reads see the lower version first, then the higher. */
    struct cw_lin_history *h = new_hist();
    put(h, "k", 0, 100, 1, 3);
    put(h, "k", 0, 100, 2, 4);
    get(h, "k", 10, 20, 1, 3);
    get(h, "k", 30, 40, 2, 4);
    get(h, "k", 150, 160, 2, 4);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* The other order of the same two writes. */
    h = new_hist();
    put(h, "k", 0, 100, 1, 4);
    put(h, "k", 0, 100, 2, 3);
    get(h, "k", 10, 20, 2, 3);
    get(h, "k", 30, 40, 1, 4);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* Overlapping reads may see the writes in either order among themselves. */
    h = new_hist();
    put(h, "k", 0, 100, 1, 3);
    get(h, "k", 5, 50, 1, 3);
    get(h, "k", 5, 50, 0, 0);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* But sequential reads cannot go back: higher version, then lower. */
    h = new_hist();
    put(h, "k", 0, 100, 1, 3);
    put(h, "k", 0, 100, 2, 4);
    get(h, "k", 10, 20, 2, 4);
    get(h, "k", 30, 40, 1, 3);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);
}

static void test_stale_read(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 30, 2, 2);
    get(h, "k", 40, 50, 1, 1);
    struct cw_lin_report rep;
    assert_int_equal(check_budget(h, BIG_BUDGET, &rep), CW_LIN_VIOLATION);
    assert_int_equal(rep.key_len, 1);
    assert_memory_equal(rep.key, "k", 1);
    assert_int_equal(rep.key_ops, 3);
    assert_int_equal(rep.key_definite, 3);
    assert_int_equal(rep.stuck_event, 2);
    assert_int_equal(rep.key_linearized, 2);
    assert_non_null(strstr(rep.desc, "key \"k\""));
    assert_non_null(strstr(rep.desc, "#2 client 3 GET"));
    cw_lin_history_destroy(&h);

    /* A read that merely overlaps the second write may still see the first. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 30, 2, 2);
    get(h, "k", 25, 50, 1, 1);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* Touching intervals (return == call) count as concurrent. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 30, 2, 2);
    get(h, "k", 30, 50, 1, 1);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* A not-found after a completed write is stale too. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    get(h, "k", 20, 30, 0, 0);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);
}

static void test_conditional_put_against_overwritten_version(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 30, 2, 2);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 40, 50, 3, 1, CW_LIN_OK, 3);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* Concurrent with the overwrite, it may go first. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 30, 2, 4);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 25, 50, 3, 1, CW_LIN_OK, 3);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* ... but not when its version is higher than the overwrite's. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 30, 2, 2);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 25, 50, 3, 1, CW_LIN_OK, 3);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* Versions must grow along the order even for unconditional writes. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 5);
    put(h, "k", 20, 30, 2, 4);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);
}

static void test_two_put_if_absent(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 0, 10, 1, 0, CW_LIN_OK, 1);
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 0, 10, 2, 0, CW_LIN_OK, 2);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* With a delete between them it is fine. */
    h = new_hist();
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 0, 10, 1, 0, CW_LIN_OK, 1);
    del(h, "k", 0, 10, 2);
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 0, 10, 2, 0, CW_LIN_OK, 3);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* A timed-out delete may be that delete. */
    h = new_hist();
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 0, 10, 1, 0, CW_LIN_OK, 1);
    del(h, "k", 5, 0, 0);
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 20, 30, 2, 0, CW_LIN_OK, 3);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* One wins, the other conflicts with the winner's version. */
    h = new_hist();
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 0, 10, 1, 0, CW_LIN_OK, 1);
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 0, 10, 2, 0, CW_LIN_CONFLICT, 1);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);
}

static void test_conflict_wrong_version(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    put(h, "k", 0, 10, 1, 5);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 20, 30, 2, 3, CW_LIN_CONFLICT, 4);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    h = new_hist();
    put(h, "k", 0, 10, 1, 5);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 20, 30, 2, 3, CW_LIN_CONFLICT, 0);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    h = new_hist();
    put(h, "k", 0, 10, 1, 5);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 20, 30, 2, 3, CW_LIN_CONFLICT, 5);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* A conflict although the condition held. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 5);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 20, 30, 2, 5, CW_LIN_CONFLICT, 5);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* PUT_IF_ABSENT conflicting on a key that was never written. */
    h = new_hist();
    cput(h, "k", CW_LIN_PUT_IF_ABSENT, 20, 30, 2, 0, CW_LIN_CONFLICT, 0);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);
}

static void test_timed_out_write_seen(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 0, 2, 0);
    get(h, "k", 100, 110, 2, 7);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 120, 130, 3, 7, CW_LIN_OK, 9);
    get(h, "k", 140, 150, 3, 9);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* Seen, then not seen any more (nothing overwrote it). */
    h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 0, 2, 0);
    get(h, "k", 100, 110, 2, 7);
    get(h, "k", 200, 210, 1, 1);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* The unknown version binds exactly: seen as 7, then as 8. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 0, 2, 0);
    get(h, "k", 100, 110, 2, 7);
    get(h, "k", 200, 210, 2, 8);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* It must exceed the version it overwrote. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 4);
    put(h, "k", 20, 0, 2, 0);
    get(h, "k", 100, 110, 2, 4);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* A conflict may report it, and a later write must exceed it. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 4);
    put(h, "k", 20, 0, 2, 0);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 100, 110, 3, 4, CW_LIN_CONFLICT, 6);
    put(h, "k", 120, 130, 4, 6);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* Two chained timed-out writes leave room for two indices. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 4);
    put(h, "k", 20, 0, 2, 0);
    put(h, "k", 30, 0, 3, 0);
    get(h, "k", 100, 110, 2, 5);
    get(h, "k", 120, 130, 3, 6);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    h = new_hist();
    put(h, "k", 0, 10, 1, 4);
    put(h, "k", 20, 0, 2, 0);
    put(h, "k", 30, 0, 3, 0);
    get(h, "k", 100, 110, 2, 5);
    get(h, "k", 120, 130, 3, 5);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* Not before its call. */
    h = new_hist();
    put(h, "k", 50, 0, 2, 0);
    get(h, "k", 0, 10, 2, 7);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* A timed-out conditional put applies only where its condition holds. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 4);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 20, 0, 2, 3, CW_LIN_UNKNOWN, 0);
    get(h, "k", 100, 110, 2, 9);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    h = new_hist();
    put(h, "k", 0, 10, 1, 4);
    cput(h, "k", CW_LIN_PUT_IF_VERSION, 20, 0, 2, 4, CW_LIN_UNKNOWN, 0);
    get(h, "k", 100, 110, 2, 9);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);
}

static void test_timed_out_write_never_seen(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    put(h, "k", 20, 0, 2, 0);
    get(h, "k", 100, 110, 1, 1);
    put(h, "k", 120, 130, 3, 5);
    get(h, "k", 140, 150, 3, 5);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* A timed-out delete never seen, and one seen. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    del(h, "k", 20, 0, 0);
    get(h, "k", 100, 110, 1, 1);
    get(h, "k", 200, 210, 0, 0);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);

    /* Many timed-out writes, none of them seen. */
    h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    for (uint64_t i = 0; i < 100; i++)
        put(h, "k", 20 + i, 0, 100 + i, 0);
    for (uint64_t i = 0; i < 100; i++)
        get(h, "k", 1000 + 10 * i, 1005 + 10 * i, 1, 1);
    assert_int_equal(check_free(&h), CW_LIN_LINEARIZABLE);
}

static void test_dropped_events(void **state)
{
    (void)state;
    /* A definite failure never applied: reading its value is a violation. */
    struct cw_lin_history *h = new_hist();
    struct cw_lin_event e = mk("k", 1, CW_LIN_PUT, 0, 10);
    e.value_id = 9;
    e.outcome = CW_LIN_FAILED;
    add(h, &e);
    get(h, "k", 20, 30, 9, 1);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* A timed-out read constrains nothing, whatever it holds. */
    h = new_hist();
    e = mk("k", 1, CW_LIN_GET, 0, 10);
    e.outcome = CW_LIN_UNKNOWN;
    e.out_value_id = 12345;
    add(h, &e);
    struct cw_lin_report rep;
    assert_int_equal(check_budget(h, BIG_BUDGET, &rep), CW_LIN_LINEARIZABLE);
    assert_int_equal(rep.n_events_used, 0);
    assert_int_equal(cw_lin_history_len(h), 1);
    cw_lin_history_destroy(&h);
}

static void test_read_never_written(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    put(h, "k", 0, 10, 1, 1);
    get(h, "k", 0, 20, 42, 1);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);

    /* A value written to another key does not count. */
    h = new_hist();
    put(h, "a", 0, 10, 1, 1);
    get(h, "b", 20, 30, 1, 1);
    assert_int_equal(check_free(&h), CW_LIN_VIOLATION);
}

static void test_per_key_independence(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    char keys[50][8];
    for (int k = 0; k < 50; k++)
        snprintf(keys[k], sizeof(keys[k]), "k%02d", k);
    size_t bad = SIZE_MAX;
    for (uint64_t round = 0; round < 10; round++) {
        for (int k = 0; k < 50; k++) {
            uint64_t t = round * 1000 + (uint64_t)k;
            uint64_t v = round * 100 + (uint64_t)k + 1;
            put(h, keys[k], t, t + 100, v, round + 1);
            if (k == 37 && round == 6) {
                /* Stale: the previous round's value after this round's write. */
                bad = cw_lin_history_len(h);
                get(h, keys[k], t + 200, t + 300, v - 100, round);
            } else {
                get(h, keys[k], t + 200, t + 300, v, round + 1);
            }
        }
    }
    struct cw_lin_report rep;
    assert_int_equal(check_budget(h, BIG_BUDGET, &rep), CW_LIN_VIOLATION);
    assert_int_equal(rep.key_len, 3);
    assert_memory_equal(rep.key, "k37", 3);
    assert_int_equal(rep.key_ops, 20);
    assert_int_equal(rep.stuck_event, bad);
    /* Keys are checked in the order of their first event: k00..k36 passed. */
    assert_int_equal(rep.n_keys_checked, 37);
    cw_lin_history_destroy(&h);
}

static void test_invalid_events(void **state)
{
    (void)state;
    struct cw_lin_history *h = new_hist();
    struct cw_lin_event e = mk("k", 1, CW_LIN_PUT, 10, 5); /* returns before its call */
    e.value_id = 1;
    e.outcome = CW_LIN_OK;
    e.out_version = 1;
    assert_int_equal(cw_lin_history_add(h, &e), CW_EINVAL);
    e.ret_us = 20;
    e.value_id = 0; /* a put needs a value */
    assert_int_equal(cw_lin_history_add(h, &e), CW_EINVAL);
    e.value_id = 1;
    e.out_version = 0; /* an applied write has a version */
    assert_int_equal(cw_lin_history_add(h, &e), CW_EINVAL);
    e.out_version = 1;
    e.outcome = CW_LIN_CONFLICT; /* an unconditional put cannot conflict */
    assert_int_equal(cw_lin_history_add(h, &e), CW_EINVAL);
    e.outcome = CW_LIN_NOTFOUND;
    assert_int_equal(cw_lin_history_add(h, &e), CW_EINVAL);
    e.outcome = CW_LIN_OK;
    e.key_len = CW_LIN_KEY_MAX + 1;
    assert_int_equal(cw_lin_history_add(h, &e), CW_EINVAL);
    e.key_len = 1;
    e.op = (enum cw_lin_op)99;
    assert_int_equal(cw_lin_history_add(h, &e), CW_EINVAL);
    e.op = CW_LIN_GET;
    e.out_value_id = 0; /* found needs a value */
    assert_int_equal(cw_lin_history_add(h, &e), CW_EINVAL);
    assert_int_equal(cw_lin_history_len(h), 0);
    e.out_value_id = 1;
    assert_int_equal(cw_lin_history_add(h, &e), CW_OK);
    assert_int_equal(cw_lin_history_len(h), 1);
    assert_int_equal(cw_lin_history_add(NULL, &e), CW_EINVAL);
    assert_string_equal(cw_lin_result_name(CW_LIN_VIOLATION), "violation");
    assert_string_equal(cw_lin_result_name(CW_LIN_BUDGET_EXHAUSTED), "budget-exhausted");
    assert_string_equal(cw_lin_result_name((enum cw_lin_result)42), "unknown");
    cw_lin_history_destroy(&h);
}

/* ---- search cost: the memo and the budget ---- */

/*
 * Rounds of one write and readers that overlap it: `newer` reads of the new
 * value are called first but return last, `older` reads of the old value are
 * called after them and return first. The search places the write and every
 * newer read before it meets an older read's return, then must backtrack
 * through all of them: factorial in `newer` without the memo, 2^newer with it.
 */
static struct cw_lin_history *backtracking_history(unsigned rounds, unsigned newer, unsigned older)
{
    struct cw_lin_history *h = new_hist();
    for (uint64_t r = 0; r < rounds; r++) {
        uint64_t t = r * 10000;
        put(h, "k", t, t + 5000, r + 1, r + 1);
        for (uint64_t i = 0; i < newer; i++)
            get(h, "k", t + 1 + i, t + 4000 + i, r + 1, r + 1);
        for (uint64_t i = 0; i < older; i++) {
            if (r == 0)
                get(h, "k", t + 100 + i, t + 200 + i, 0, 0);
            else
                get(h, "k", t + 100 + i, t + 200 + i, r, r);
        }
    }
    return h;
}

static void test_memo_keeps_concurrent_history_fast(void **state)
{
    (void)state;
    /* 10 rounds of 20 ops: without the memo each round costs over 10! orders. */
    struct cw_lin_history *h = backtracking_history(10, 10, 9);
    assert_int_equal(cw_lin_history_len(h), 200);
    struct cw_lin_report rep;
    clock_t t0 = clock();
    assert_int_equal(check_budget(h, 20000000, &rep), CW_LIN_LINEARIZABLE);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    print_message("memo: 200 ops, %llu budget units, %.3f s\n", (unsigned long long)rep.steps,
                  secs);
    assert_true(secs < 10.0);
    cw_lin_history_destroy(&h);

    /* The same shape with a stale older read is still found. */
    h = backtracking_history(10, 8, 4);
    get(h, "k", 95000, 95001, 3, 3);
    t0 = clock();
    assert_int_equal(check_budget(h, 20000000, &rep), CW_LIN_VIOLATION);
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    print_message("memo: 131 ops, violation, %llu budget units, %.3f s\n",
                  (unsigned long long)rep.steps, secs);
    cw_lin_history_destroy(&h);
}

static void test_budget_exhausted(void **state)
{
    (void)state;
    /* 2^24 sets in one round: far beyond the budget. */
    struct cw_lin_history *h = backtracking_history(3, 24, 4);
    struct cw_lin_report rep;
    assert_int_equal(check_budget(h, 100000, &rep), CW_LIN_BUDGET_EXHAUSTED);
    assert_true(rep.steps >= 100000);
    assert_true(rep.steps < 100000 + 64); /* one step plus one memo entry past it */
    assert_memory_equal(rep.key, "k", 1);
    assert_int_equal(rep.key_ops, 3 * 29);
    assert_non_null(strstr(rep.desc, "budget exhausted"));
    assert_int_equal(rep.stuck_event, SIZE_MAX);

    /* A tiny budget fails even an easy history: it is never a pass. */
    struct cw_lin_history *easy = new_hist();
    put(easy, "k", 0, 10, 1, 1);
    get(easy, "k", 20, 30, 1, 1);
    assert_int_equal(check_budget(easy, 1, &rep), CW_LIN_BUDGET_EXHAUSTED);
    assert_int_equal(check_budget(easy, 1000, &rep), CW_LIN_LINEARIZABLE);
    cw_lin_history_destroy(&easy);
    cw_lin_history_destroy(&h);
}

/* ---- randomized: real sequential executions with overlapping intervals ---- */

struct gen_key {
    bool exists;
    uint64_t value_id, version;
};

struct gen {
    struct cw_lin_event *ev;
    size_t n;
    bool *value_definite; /* by value id: written by a definite OK write */
    uint64_t *value_key;  /* by value id: its key index */
};

static const char *const GEN_KEYS[] = {"alpha", "beta", "gamma"};

/*
 * Runs n random operations on a sequential register per key, each at its own
 * linearization point, and records them with call and return times spread
 * around that point (up to `spread` either way), so neighbours overlap. Writes
 * time out with probability timeout_ppm / 1e6: half of those applied, half
 * never did.
 */
static void generate(struct cw_rng *rng, size_t n, unsigned n_keys, uint64_t spread,
                     uint32_t timeout_ppm, struct gen *g)
{
    g->ev = calloc(n, sizeof(*g->ev));
    g->value_definite = calloc(n + 1, sizeof(*g->value_definite));
    g->value_key = calloc(n + 1, sizeof(*g->value_key));
    assert_non_null(g->ev);
    assert_non_null(g->value_definite);
    assert_non_null(g->value_key);
    g->n = n;
    struct gen_key keys[3];
    memset(keys, 0, sizeof(keys));
    uint64_t raft_index = 0, lp = 1000, next_value = 1;
    for (size_t i = 0; i < n; i++) {
        lp += cw_rng_range(rng, 1, 10);
        unsigned k = (unsigned)cw_rng_below(rng, n_keys);
        struct gen_key *s = &keys[k];
        struct cw_lin_event *e = &g->ev[i];
        e->key = (const uint8_t *)GEN_KEYS[k];
        e->key_len = (uint32_t)strlen(GEN_KEYS[k]);
        e->client = (uint32_t)cw_rng_below(rng, 8);
        e->call_us = lp - cw_rng_below(rng, spread + 1);
        e->ret_us = lp + cw_rng_below(rng, spread + 1);
        unsigned pick = (unsigned)cw_rng_below(rng, 100);
        if (pick < 40) {
            e->op = CW_LIN_GET;
            e->outcome = s->exists ? CW_LIN_OK : CW_LIN_NOTFOUND;
            e->out_value_id = s->value_id;
            e->out_version = s->exists ? s->version : 0;
            continue;
        }
        e->op = pick < 60   ? CW_LIN_PUT
                : pick < 75 ? CW_LIN_PUT_IF_VERSION
                : pick < 85 ? CW_LIN_PUT_IF_ABSENT
                : pick < 95 ? CW_LIN_DEL
                            : CW_LIN_DEL_IF_VERSION;
        if (e->op != CW_LIN_DEL && e->op != CW_LIN_DEL_IF_VERSION) {
            e->value_id = next_value++;
            g->value_key[e->value_id] = k;
        }
        if (e->op == CW_LIN_PUT_IF_VERSION || e->op == CW_LIN_DEL_IF_VERSION)
            e->expected_version = cw_rng_chance(rng, 700000) || s->version == 0
                                      ? s->version
                                      : cw_rng_below(rng, s->version);
        bool timed_out = cw_rng_chance(rng, timeout_ppm);
        if (timed_out && cw_rng_chance(rng, 500000)) {
            e->outcome = CW_LIN_UNKNOWN; /* never applied */
            continue;
        }
        bool holds = e->op == CW_LIN_PUT || e->op == CW_LIN_DEL ||
                     (e->op == CW_LIN_PUT_IF_ABSENT && !s->exists) ||
                     ((e->op == CW_LIN_PUT_IF_VERSION || e->op == CW_LIN_DEL_IF_VERSION) &&
                      s->exists && s->version == e->expected_version);
        if (!holds) {
            e->outcome = timed_out ? CW_LIN_UNKNOWN : CW_LIN_CONFLICT;
            e->out_version = s->exists ? s->version : 0;
            continue;
        }
        raft_index += cw_rng_range(rng, 1, 3);
        bool is_del = e->op == CW_LIN_DEL || e->op == CW_LIN_DEL_IF_VERSION;
        s->exists = !is_del;
        s->value_id = is_del ? 0 : e->value_id;
        s->version = raft_index;
        e->outcome = timed_out ? CW_LIN_UNKNOWN : CW_LIN_OK;
        e->out_version = timed_out ? 0 : raft_index;
        if (!is_del && !timed_out)
            g->value_definite[e->value_id] = true;
    }
}

static void gen_free(struct gen *g)
{
    free(g->ev);
    free(g->value_definite);
    free(g->value_key);
}

static enum cw_lin_result check_events(const struct cw_lin_event *ev, size_t n,
                                       struct cw_lin_report *rep)
{
    struct cw_lin_history *h = new_hist();
    for (size_t i = 0; i < n; i++)
        add(h, &ev[i]);
    enum cw_lin_result r = check_budget(h, BIG_BUDGET, rep);
    cw_lin_history_destroy(&h);
    return r;
}

/* Picks a random GET found that read a value written by a definite write. */
static size_t pick_definite_read(struct cw_rng *rng, const struct gen *g)
{
    for (int tries = 0; tries < 1000; tries++) {
        size_t i = (size_t)cw_rng_below(rng, g->n);
        const struct cw_lin_event *e = &g->ev[i];
        if (e->op == CW_LIN_GET && e->outcome == CW_LIN_OK && g->value_definite[e->out_value_id])
            return i;
    }
    return SIZE_MAX;
}

static void test_random_histories(void **state)
{
    (void)state;
    unsigned stale_tried = 0, stale_found = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        struct cw_rng rng;
        cw_rng_seed(&rng, seed);
        struct gen g;
        size_t n = seed % 3 == 0 ? 400 : 300;
        unsigned n_keys = seed % 2 == 0 ? 1 : 3;
        uint64_t spread = seed % 4 == 0 ? 60 : 25;
        /* One write in ten timed out: must pass. */
        generate(&rng, n, n_keys, spread, 100000, &g);
        struct cw_lin_report rep;
        enum cw_lin_result r = check_events(g.ev, g.n, &rep);
        if (r != CW_LIN_LINEARIZABLE)
            print_message("seed %llu: %s\n", (unsigned long long)seed, rep.desc);
        assert_int_equal(r, CW_LIN_LINEARIZABLE);
        gen_free(&g);

        /* Refuting a history means exhausting its search, and every timed-out
         * write that something might observe multiplies that: the mutations
         * use one write in fifty timed out, three keys and moderate overlap,
         * which keeps them cheap (a single key of 400 operations with wide
         * overlaps can exhaust 50M units; see lincheck.h on the budget). */
        generate(&rng, 300, 3, 25, 20000, &g);
        r = check_events(g.ev, g.n, &rep);
        assert_int_equal(r, CW_LIN_LINEARIZABLE);

        /* A version no write of that value had: must be caught (the value's
         * write was definite, so its version is known exactly). */
        size_t i = pick_definite_read(&rng, &g);
        assert_int_not_equal(i, SIZE_MAX);
        struct cw_lin_event saved = g.ev[i];
        g.ev[i].out_version += 1000000;
        r = check_events(g.ev, g.n, &rep);
        if (r != CW_LIN_VIOLATION)
            print_message("seed %llu: bogus version not caught: %s\n", (unsigned long long)seed,
                          rep.desc);
        assert_int_equal(r, CW_LIN_VIOLATION);
        assert_int_equal(rep.stuck_event != SIZE_MAX, true);
        g.ev[i] = saved;

        /* A value no write produced: must be caught. */
        g.ev[i].out_value_id = 999999999;
        assert_int_equal(check_events(g.ev, g.n, &rep), CW_LIN_VIOLATION);
        g.ev[i] = saved;

        /* The value (and version) of an older definite write to the same key,
         * from well before the read was called: a stale read, caught unless
         * timing or a timed-out write happens to excuse it. */
        for (size_t j = i; j-- > 0;) {
            const struct cw_lin_event *w = &g.ev[j];
            if (w->outcome == CW_LIN_OK && w->op != CW_LIN_GET && w->op != CW_LIN_DEL &&
                w->op != CW_LIN_DEL_IF_VERSION && w->value_id != saved.out_value_id &&
                w->key == saved.key && w->ret_us + 200 < saved.call_us) {
                g.ev[i].out_value_id = w->value_id;
                g.ev[i].out_version = w->out_version;
                stale_tried++;
                if (check_events(g.ev, g.n, &rep) == CW_LIN_VIOLATION)
                    stale_found++;
                g.ev[i] = saved;
                break;
            }
        }
        gen_free(&g);
    }
    print_message("stale reads caught: %u of %u\n", stale_found, stale_tried);
    assert_true(stale_tried >= 30);
    assert_true(stale_found * 10 >= stale_tried * 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_sequential_ok),
        cmocka_unit_test(test_concurrent_writes_reads_either_order),
        cmocka_unit_test(test_stale_read),
        cmocka_unit_test(test_conditional_put_against_overwritten_version),
        cmocka_unit_test(test_two_put_if_absent),
        cmocka_unit_test(test_conflict_wrong_version),
        cmocka_unit_test(test_timed_out_write_seen),
        cmocka_unit_test(test_timed_out_write_never_seen),
        cmocka_unit_test(test_dropped_events),
        cmocka_unit_test(test_read_never_written),
        cmocka_unit_test(test_per_key_independence),
        cmocka_unit_test(test_invalid_events),
        cmocka_unit_test(test_memo_keeps_concurrent_history_fast),
        cmocka_unit_test(test_budget_exhausted),
        cmocka_unit_test(test_random_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
