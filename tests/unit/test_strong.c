/*
 * test_strong.c - the strong part (core/strong.h) against bytes it must not
 * trust: snapshots from a peer (CW_RAFT_SNAP) and from the store
 * (cw_strong_restore_snapshot). Regressions of fuzz_node_peer's finding: a
 * peer's snapshot that does not decode reached the Raft core and stopped the
 * process at the CW_ASSERT after sm_decode (tests/fuzz/corpus/node_peer/
 * finding-raft-snapshot-garbage); and of fuzz_strong_store's: a snapshot
 * restored without a hard state (corpus/strong_store/
 * finding-snapshot-without-hardstate).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/strong.h"
#include "core/vclock.h"

#define T0 5000000ull

static struct cw_strong *make(unsigned id, unsigned n, uint64_t bytes_max)
{
    struct cw_strong_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.raft.id = id;
    cfg.raft.n = n;
    cfg.raft.preferred = CW_RAFT_NONE;
    cfg.bytes_max = bytes_max;
    struct cw_strong *s = cw_strong_create(&cfg);
    assert_non_null(s);
    return s;
}

struct buf {
    uint8_t p[4096];
    size_t n;
};

static void put_byte(struct buf *b, uint8_t x)
{
    b->p[b->n++] = x;
}

static void put_varint(struct buf *b, uint64_t x)
{
    b->n += cw_varint_put(b->p + b->n, x);
}

static void put_bytes(struct buf *b, const void *p, size_t n)
{
    put_varint(b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* A state machine snapshot (core/strong.c, sm_encode) of keys k0.. written at
 * `version`. */
static void sm_bytes(struct buf *b, unsigned keys, uint64_t version)
{
    struct cw_vclock zero;
    memset(&zero, 0, sizeof(zero));
    b->n = 0;
    put_byte(b, 'M');
    put_byte(b, 1);
    b->n += cw_vc_encode(&zero, b->p + b->n);
    put_varint(b, keys);
    for (unsigned i = 0; i < keys; i++) {
        char key[32];
        snprintf(key, sizeof(key), "strong/k%u", i);
        put_bytes(b, key, strlen(key));
        put_varint(b, version);
        put_varint(b, 1000);
        put_byte(b, 0);
        b->n += cw_vc_encode(&zero, b->p + b->n);
        put_bytes(b, "value", 5);
    }
}

/* The store's snapshot record (core/strong.c, snaprec_encode). */
static void snaprec_bytes(struct buf *out, uint64_t index, uint64_t term, const struct buf *sm)
{
    out->n = 0;
    put_byte(out, 'P');
    put_byte(out, 1);
    put_varint(out, index);
    put_varint(out, term);
    put_bytes(out, sm->p, sm->n);
}

/* Region 1 of 3 receives a leader's snapshot at index 5, term 2, and runs
 * its ready sets. */
static void deliver_snapshot(struct cw_strong *s, const uint8_t *snap, uint32_t len)
{
    struct cw_raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CW_RAFT_SNAP;
    m.from = 0;
    m.to = 1;
    m.term = 2;
    m.index = 5;
    m.log_term = 2;
    m.snap = (uint8_t *)snap;
    m.snap_len = len;
    assert_null(cw_raft_msg_check(&m, 3));
    struct cw_now now = {.real_us = 1700000000000000ull, .mono_us = T0};
    cw_strong_recv(s, now, &m);
    for (int i = 0; i < 3 && cw_strong_has_ready(s); i++) {
        cw_strong_ready(s);
        cw_strong_advance(s);
    }
    char why[256];
    assert_true(cw_strong_check_invariants(s, why, sizeof(why)));
}

static void test_snapshot_valid_installed(void **state)
{
    (void)state;
    struct cw_strong *s = make(1, 3, 0);
    struct buf sm;
    sm_bytes(&sm, 2, 5);
    deliver_snapshot(s, sm.p, (uint32_t)sm.n);
    struct cw_strong_stats st;
    cw_strong_get_stats(s, &st);
    assert_int_equal(cw_strong_applied(s), 5);
    assert_int_equal(st.keys, 2);
    assert_int_equal(st.snapshots_refused, 0);
    cw_strong_destroy(&s);
}

static void test_snapshot_garbage_refused(void **state)
{
    (void)state;
    struct cw_strong *s = make(1, 3, 0);
    static const uint8_t garbage[] = {'M', 1, 0, 1, 0xff};
    deliver_snapshot(s, garbage, sizeof(garbage));
    struct cw_strong_stats st;
    cw_strong_get_stats(s, &st);
    assert_int_equal(cw_strong_applied(s), 0);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.snapshots_refused, 1);
    cw_strong_destroy(&s);
}

static void test_snapshot_version_past_index_refused(void **state)
{
    (void)state;
    struct cw_strong *s = make(1, 3, 0);
    struct buf sm;
    sm_bytes(&sm, 1, 9); /* written at 9, in a snapshot at 5 */
    deliver_snapshot(s, sm.p, (uint32_t)sm.n);
    struct cw_strong_stats st;
    cw_strong_get_stats(s, &st);
    assert_int_equal(cw_strong_applied(s), 0);
    assert_int_equal(st.snapshots_refused, 1);
    cw_strong_destroy(&s);
}

static void test_snapshot_over_bytes_max_refused(void **state)
{
    (void)state;
    struct cw_strong *s = make(1, 3, 300); /* fewer bytes than two keys take */
    struct buf sm;
    sm_bytes(&sm, 2, 5);
    deliver_snapshot(s, sm.p, (uint32_t)sm.n);
    struct cw_strong_stats st;
    cw_strong_get_stats(s, &st);
    assert_int_equal(cw_strong_applied(s), 0);
    assert_int_equal(st.snapshots_refused, 1);
    cw_strong_destroy(&s);
}

static void test_restore_snapshot_checked(void **state)
{
    (void)state;
    struct buf sm, rec;
    char why[256];

    struct cw_strong *s = make(1, 3, 0);
    sm_bytes(&sm, 1, 9);
    snaprec_bytes(&rec, 5, 2, &sm);
    assert_int_equal(cw_strong_restore_snapshot(s, rec.p, (uint32_t)rec.n), CW_EDECODE);
    cw_strong_destroy(&s);

    s = make(1, 3, 300);
    sm_bytes(&sm, 2, 5);
    snaprec_bytes(&rec, 5, 2, &sm);
    assert_int_equal(cw_strong_restore_snapshot(s, rec.p, (uint32_t)rec.n), CW_EDECODE);
    cw_strong_destroy(&s);

    s = make(1, 3, 0);
    snaprec_bytes(&rec, 5, 2, &sm);
    assert_int_equal(cw_strong_restore_snapshot(s, rec.p, (uint32_t)rec.n), CW_OK);
    assert_int_equal(cw_strong_applied(s), 5);
    assert_true(cw_strong_check_invariants(s, why, sizeof(why)));
    cw_strong_destroy(&s);
}

/* fuzz_strong_store's finding: a snapshot restored without a hard state left
 * the term at 0, below the snapshot's; the next hard state written (term 0)
 * was then refused by the next restart (hs.term < snap_term). */
static void test_restore_snapshot_without_hardstate(void **state)
{
    (void)state;
    struct buf sm, rec;
    sm_bytes(&sm, 1, 5);
    snaprec_bytes(&rec, 5, 3, &sm);
    struct cw_strong *s = make(1, 3, 0);
    assert_int_equal(cw_strong_restore_snapshot(s, rec.p, (uint32_t)rec.n), CW_OK);
    char why[256];
    assert_true(cw_strong_check_invariants(s, why, sizeof(why)));
    struct cw_now now = {.real_us = 1700000000000000ull, .mono_us = T0};
    cw_strong_tick(s, now);
    uint8_t hs[64];
    uint32_t hs_len = 0;
    while (cw_strong_has_ready(s)) {
        const struct cw_ready *rd = cw_strong_ready(s);
        for (size_t i = 0; i < rd->n_persist; i++)
            if (rd->persist[i].kind == CW_PERSIST_RAFT_HS) {
                assert_true(rd->persist[i].data_len <= sizeof(hs));
                memcpy(hs, rd->persist[i].data, rd->persist[i].data_len);
                hs_len = rd->persist[i].data_len;
            }
        cw_strong_advance(s);
    }
    cw_strong_destroy(&s);
    assert_true(hs_len > 0);
    struct cw_raft_hardstate h;
    assert_int_equal(cw_strong_decode_hardstate(hs, hs_len, &h), CW_OK);
    assert_true(h.term >= 3);
    /* The next start restores both. */
    s = make(1, 3, 0);
    assert_int_equal(cw_strong_restore_snapshot(s, rec.p, (uint32_t)rec.n), CW_OK);
    assert_int_equal(cw_strong_restore_hardstate(s, hs, hs_len), CW_OK);
    cw_strong_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_valid_installed),
        cmocka_unit_test(test_snapshot_garbage_refused),
        cmocka_unit_test(test_snapshot_version_past_index_refused),
        cmocka_unit_test(test_snapshot_over_bytes_max_refused),
        cmocka_unit_test(test_restore_snapshot_checked),
        cmocka_unit_test(test_restore_snapshot_without_hardstate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
