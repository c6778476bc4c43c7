/*
 * test_version.c - how a new version joins a key's version set: last-writer-wins
 * and siblings (key contexts decide what a write replaces), the sibling limit,
 * contexts, tombstone collection, equality and deep copies; and, as a property,
 * that every order of applying one causal history gives the same state.
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

#include "core/hlc.h"
#include "core/version.h"

/* ------------------------------------------------------------ helpers */

static struct cw_version ver(uint8_t origin, uint64_t ts, const char *value)
{
    struct cw_version v;
    memset(&v, 0, sizeof(v));
    v.dot.origin = origin;
    v.dot.ts = ts;
    if (value == NULL) {
        v.tombstone = true;
    } else {
        v.value_len = (uint32_t)strlen(value);
        v.value = v.value_len ? (uint8_t *)value : NULL;
    }
    return v;
}

static struct cw_version ver_ctx(uint8_t origin, uint64_t ts, const char *value, uint64_t k0,
                                 uint64_t k1, uint64_t k2)
{
    struct cw_version v = ver(origin, ts, value);
    v.kctx.ts[0] = k0;
    v.kctx.ts[1] = k1;
    v.kctx.ts[2] = k2;
    return v;
}

/* Applies w and checks the result code and whether the state changed. */
static void apply_expect(struct cw_keystate *s, enum cw_conflict mode, const struct cw_version *w,
                         uint32_t limit, int rc_expect, bool changed_expect)
{
    bool changed = !changed_expect;
    assert_int_equal(cw_keystate_apply(s, mode, w, limit, &changed), rc_expect);
    assert_int_equal(changed, changed_expect);
}

static void assert_sorted(const struct cw_keystate *s)
{
    for (uint32_t i = 1; i < s->n; i++)
        assert_true(cw_dot_cmp(s->v[i - 1].dot, s->v[i].dot) < 0);
}

static bool has_dot(const struct cw_keystate *s, uint8_t origin, uint64_t ts)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->v[i].dot.origin == origin && s->v[i].dot.ts == ts)
            return true;
    return false;
}

/* ------------------------------------------------------------ dots */

static void test_dot_cmp(void **state)
{
    (void)state;
    struct cw_dot a = {1, 10}, b = {0, 11}, c = {2, 10}, d = {1, 10};
    assert_true(cw_dot_cmp(a, b) < 0); /* ts decides first */
    assert_true(cw_dot_cmp(b, a) > 0);
    assert_true(cw_dot_cmp(a, c) < 0); /* then origin */
    assert_true(cw_dot_cmp(c, a) > 0);
    assert_int_equal(cw_dot_cmp(a, d), 0);
    struct cw_dot big = {0, UINT64_MAX}, small = {15, UINT64_MAX - 1};
    assert_true(cw_dot_cmp(big, small) > 0);
}

static void test_dot_covered(void **state)
{
    (void)state;
    struct cw_vclock k;
    cw_vc_zero(&k);
    k.ts[1] = 20;
    assert_true(cw_dot_covered(&k, (struct cw_dot){1, 20}));
    assert_true(cw_dot_covered(&k, (struct cw_dot){1, 3}));
    assert_false(cw_dot_covered(&k, (struct cw_dot){1, 21}));
    assert_false(cw_dot_covered(&k, (struct cw_dot){0, 1}));
    assert_false(cw_dot_covered(&k, (struct cw_dot){CW_REGIONS_MAX, 1}));
}

/* ------------------------------------------------------------ LWW */

static void test_lww_keeps_greatest(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version a = ver(1, 10, "a"), b = ver(0, 20, "b"), c = ver(2, 15, "c");
    apply_expect(&s, CW_CONFLICT_LWW, &a, 0, CW_OK, true);
    assert_int_equal(s.n, 1);
    apply_expect(&s, CW_CONFLICT_LWW, &b, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_LWW, &c, 0, CW_OK, false); /* older: loses */
    assert_int_equal(s.n, 1);
    assert_int_equal(s.v[0].dot.ts, 20);
    assert_int_equal(s.v[0].dot.origin, 0);
    assert_int_equal(s.v[0].value_len, 1);
    assert_memory_equal(s.v[0].value, "b", 1);
    /* The state holds its own copy of the value. */
    assert_ptr_not_equal(s.v[0].value, b.value);
    cw_keystate_free(&s);
    assert_int_equal(s.n, 0);
    assert_null(s.v);
}

static void test_lww_tie_broken_by_origin(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version a = ver(1, 10, "one"), b = ver(2, 10, "two"), c = ver(0, 10, "zero");
    apply_expect(&s, CW_CONFLICT_LWW, &a, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_LWW, &b, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_LWW, &c, 0, CW_OK, false);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.v[0].dot.origin, 2);
    assert_memory_equal(s.v[0].value, "two", 3);
    cw_keystate_free(&s);
}

static void test_lww_duplicate_and_tombstone(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version a = ver(0, 10, "a");
    apply_expect(&s, CW_CONFLICT_LWW, &a, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_LWW, &a, 0, CW_OK, false); /* duplicate */
    /* Same dot, other content: still the same write, ignored. */
    struct cw_version a2 = ver(0, 10, "zzz");
    apply_expect(&s, CW_CONFLICT_LWW, &a2, 0, CW_OK, false);
    assert_memory_equal(s.v[0].value, "a", 1);

    struct cw_version del = ver(1, 11, NULL);
    apply_expect(&s, CW_CONFLICT_LWW, &del, 0, CW_OK, true);
    assert_int_equal(s.n, 1);
    assert_true(s.v[0].tombstone);
    assert_int_equal(s.v[0].value_len, 0);
    assert_null(s.v[0].value);
    assert_int_equal(cw_keystate_live(&s), 0);

    /* An empty value is a live version, not a tombstone. */
    struct cw_version empty = ver(0, 12, "");
    apply_expect(&s, CW_CONFLICT_LWW, &empty, 0, CW_OK, true);
    assert_false(s.v[0].tombstone);
    assert_int_equal(s.v[0].value_len, 0);
    assert_int_equal(cw_keystate_live(&s), 1);
    cw_keystate_free(&s);
}

static void test_lww_ignores_key_context(void **state)
{
    (void)state;
    /* LWW is decided by (ts, origin) alone: a context cannot make an older write win. */
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version newer = ver(0, 50, "new");
    struct cw_version older_claims = ver_ctx(1, 40, "old", 50, 0, 0);
    apply_expect(&s, CW_CONFLICT_LWW, &newer, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_LWW, &older_claims, 0, CW_OK, false);
    assert_int_equal(s.v[0].dot.ts, 50);
    /* count_after is 1 for LWW whatever the state. */
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_LWW, &older_claims), 1);
    cw_keystate_free(&s);
}

/* Applies the versions in the order given by perm into a fresh state. */
static void apply_in_order(struct cw_keystate *s, enum cw_conflict mode,
                           const struct cw_version *vs, const unsigned *perm, unsigned n)
{
    cw_keystate_init(s);
    for (unsigned i = 0; i < n; i++) {
        bool changed;
        assert_int_equal(cw_keystate_apply(s, mode, &vs[perm[i]], 0, &changed), CW_OK);
    }
}

/* Calls back for every permutation of 0..n-1 (Heap's algorithm). */
static void permute_all(unsigned *perm, unsigned n, enum cw_conflict mode,
                        const struct cw_version *vs, const struct cw_keystate *expect,
                        unsigned *count)
{
    unsigned c[8] = {0};
    unsigned i = 0;
    struct cw_keystate s;
    apply_in_order(&s, mode, vs, perm, n);
    assert_true(cw_keystate_equal(&s, expect));
    cw_keystate_free(&s);
    (*count)++;
    while (i < n) {
        if (c[i] < i) {
            unsigned j = (i % 2 == 0) ? 0 : c[i];
            unsigned t = perm[j];
            perm[j] = perm[i];
            perm[i] = t;
            apply_in_order(&s, mode, vs, perm, n);
            assert_true(cw_keystate_equal(&s, expect));
            assert_sorted(&s);
            cw_keystate_free(&s);
            (*count)++;
            c[i]++;
            i = 0;
        } else {
            c[i] = 0;
            i++;
        }
    }
}

static void test_lww_order_independent(void **state)
{
    (void)state;
    const struct cw_version vs[] = {
        ver(0, 10, "a"),  ver(1, 30, "b"), ver(2, 30, "c"), /* tie on ts with b */
        ver(1, 20, NULL), ver(0, 29, "e"), ver(2, 5, ""),
    };
    const unsigned n = sizeof(vs) / sizeof(vs[0]);
    unsigned perm[8];
    for (unsigned i = 0; i < n; i++)
        perm[i] = i;
    struct cw_keystate expect;
    apply_in_order(&expect, CW_CONFLICT_LWW, vs, perm, n);
    assert_int_equal(expect.n, 1);
    assert_int_equal(expect.v[0].dot.origin, 2);
    assert_int_equal(expect.v[0].dot.ts, 30);
    unsigned count = 0;
    permute_all(perm, n, CW_CONFLICT_LWW, vs, &expect, &count);
    assert_int_equal(count, 720);
    cw_keystate_free(&expect);
}

/* ------------------------------------------------------------ siblings */

static void test_siblings_blind_write_adds_sibling(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version a = ver(0, 10, "a"), b = ver(1, 5, "b"), c = ver(1, 20, "c");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &b, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &c, 0, CW_OK, true);
    assert_int_equal(s.n, 3);
    assert_sorted(&s);
    assert_int_equal(s.v[0].dot.ts, 5);
    assert_int_equal(s.v[1].dot.ts, 10);
    assert_int_equal(s.v[2].dot.ts, 20);
    assert_int_equal(cw_keystate_live(&s), 3);
    cw_keystate_free(&s);
}

static void test_siblings_context_replaces_exactly_covered(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version a = ver(0, 10, "a"), b = ver(1, 20, "b"), c = ver(2, 30, "c");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &b, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &c, 0, CW_OK, true);
    /* The writer saw a and c but not b. */
    struct cw_version w = ver_ctx(1, 40, "w", 10, 0, 30);
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_SIBLINGS, &w), 2);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &w, 0, CW_OK, true);
    assert_int_equal(s.n, 2);
    assert_true(has_dot(&s, 1, 20));
    assert_true(has_dot(&s, 1, 40));
    assert_false(has_dot(&s, 0, 10));
    assert_false(has_dot(&s, 2, 30));
    assert_sorted(&s);

    /* A context entry below a version's ts does not cover it. */
    struct cw_version x = ver_ctx(0, 50, "x", 0, 19, 0);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &x, 0, CW_OK, true);
    assert_int_equal(s.n, 3);
    /* A context covering everything leaves exactly the new version. */
    struct cw_version all = ver_ctx(2, 60, "all", 50, 40, 0);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &all, 0, CW_OK, true);
    assert_int_equal(s.n, 1);
    assert_true(has_dot(&s, 2, 60));
    cw_keystate_free(&s);
}

static void test_siblings_delete_with_context(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version a = ver(0, 10, "a"), b = ver(1, 11, "b");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &b, 0, CW_OK, true);
    struct cw_version del = ver_ctx(2, 12, NULL, 10, 11, 0);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &del, 0, CW_OK, true);
    assert_int_equal(s.n, 1);
    assert_true(s.v[0].tombstone);
    assert_int_equal(cw_keystate_live(&s), 0);
    cw_keystate_free(&s);
}

/* A state holding several versions (a bucket switched from siblings to LWW)
 * collapses to its greatest version whatever order the writes arrive in. */
static void test_lww_collapses_multi_version_state(void **state)
{
    (void)state;
    struct cw_version a = ver(0, 10, "a"), b = ver(1, 20, "b"), c = ver(2, 15, "c");
    struct cw_keystate s1, s2;
    cw_keystate_init(&s1);
    cw_keystate_init(&s2);
    /* Two siblings first, then an LWW write that is older than one of them. */
    apply_expect(&s1, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, true);
    apply_expect(&s1, CW_CONFLICT_SIBLINGS, &b, 0, CW_OK, true);
    apply_expect(&s1, CW_CONFLICT_LWW, &c, 0, CW_OK, true);
    assert_int_equal(s1.n, 1);
    assert_true(has_dot(&s1, 1, 20));
    /* The other order ends in the same state. */
    apply_expect(&s2, CW_CONFLICT_LWW, &c, 0, CW_OK, true);
    apply_expect(&s2, CW_CONFLICT_LWW, &b, 0, CW_OK, true);
    apply_expect(&s2, CW_CONFLICT_LWW, &a, 0, CW_OK, false);
    assert_true(cw_keystate_equal(&s1, &s2));
    cw_keystate_free(&s1);
    cw_keystate_free(&s2);
}

/* What a version replaced stays replaced even when that version itself arrives
 * already replaced: Z replaced X, W replaced Z (naming only Z). In every order the
 * result is {W}. */
static void test_siblings_transitive_replace_any_order(void **state)
{
    (void)state;
    struct cw_version x = ver(0, 10, "x");
    struct cw_version z = ver_ctx(1, 20, "z", 10, 0, 0); /* covers x */
    struct cw_version w = ver_ctx(2, 30, "w", 0, 20, 0); /* covers z only */
    const struct cw_version *orders[][3] = {{&x, &z, &w}, {&x, &w, &z}, {&w, &x, &z},
                                            {&w, &z, &x}, {&z, &w, &x}, {&z, &x, &w}};
    for (size_t o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
        struct cw_keystate s;
        cw_keystate_init(&s);
        for (int i = 0; i < 3; i++) {
            bool changed;
            assert_int_equal(
                cw_keystate_apply(&s, CW_CONFLICT_SIBLINGS, orders[o][i], 0, &changed), CW_OK);
        }
        assert_int_equal(s.n, 1);
        assert_true(has_dot(&s, 2, 30));
        cw_keystate_free(&s);
    }
}

static void test_siblings_replaced_before_arrival(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    /* w replaced (1,20) somewhere else; (1,20) arrives here only afterwards. */
    struct cw_version w = ver_ctx(0, 30, "w", 0, 20, 0);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &w, 0, CW_OK, true);
    struct cw_version late = ver(1, 20, "late"), older = ver(1, 15, "older");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &late, 0, CW_OK, false);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &older, 0, CW_OK, false);
    /* Even with a tight limit an obsolete write is not an error. */
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &late, 1, CW_OK, false);
    assert_int_equal(s.n, 1);
    assert_true(has_dot(&s, 0, 30));
    /* A version from the same origin but newer than the context is kept. */
    struct cw_version newer = ver(1, 21, "newer");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &newer, 0, CW_OK, true);
    assert_int_equal(s.n, 2);
    cw_keystate_free(&s);
}

static void test_siblings_duplicates_ignored(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version a = ver(0, 10, "a"), b = ver(1, 10, "b");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &b, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, false);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &b, 0, CW_OK, false);
    assert_int_equal(s.n, 2);
    cw_keystate_free(&s);
}

static void test_siblings_limit(void **state)
{
    (void)state;
    struct cw_keystate s, before;
    cw_keystate_init(&s);
    cw_keystate_init(&before);
    struct cw_version a = ver(0, 10, "a"), b = ver(1, 11, "b"), c = ver(2, 12, "c");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &a, 3, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &b, 3, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &c, 3, CW_OK, true);
    assert_int_equal(cw_keystate_copy(&before, &s), CW_OK);

    /* A fourth concurrent version would exceed the limit: refused, s unchanged. */
    struct cw_version d = ver(0, 13, "d");
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_SIBLINGS, &d), 4);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &d, 3, CW_ESIBLINGS, false);
    assert_int_equal(s.n, 3);
    assert_true(cw_keystate_equal(&s, &before));

    /* Limit 0 means no limit (remote writes must apply). */
    struct cw_keystate t;
    cw_keystate_init(&t);
    assert_int_equal(cw_keystate_copy(&t, &s), CW_OK);
    apply_expect(&t, CW_CONFLICT_SIBLINGS, &d, 0, CW_OK, true);
    assert_int_equal(t.n, 4);
    cw_keystate_free(&t);

    /* A write that replaces one of them stays within the limit. */
    struct cw_version e = ver_ctx(0, 14, "e", 10, 0, 0);
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_SIBLINGS, &e), 3);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &e, 3, CW_OK, true);
    assert_int_equal(s.n, 3);
    assert_false(has_dot(&s, 0, 10));
    /* Exactly at the limit is allowed; one over is not. */
    struct cw_version f = ver(1, 15, "f");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &f, 4, CW_OK, true);
    struct cw_version g = ver(2, 16, "g");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &g, 4, CW_ESIBLINGS, false);
    assert_int_equal(s.n, 4);
    cw_keystate_free(&before);
    cw_keystate_free(&s);
}

static void test_count_after(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version a = ver(0, 10, "a");
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_SIBLINGS, &a), 1);
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_LWW, &a), 1);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, true);
    struct cw_version b = ver(1, 11, "b");
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &b, 0, CW_OK, true);
    struct cw_version blind = ver(2, 12, "x");
    struct cw_version one = ver_ctx(2, 12, "x", 10, 0, 0);
    struct cw_version both = ver_ctx(2, 12, "x", 10, 11, 0);
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_SIBLINGS, &blind), 3);
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_SIBLINGS, &one), 2);
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_SIBLINGS, &both), 1);
    /* count_after is a prediction: it agrees with what apply does. */
    struct cw_keystate t;
    cw_keystate_init(&t);
    assert_int_equal(cw_keystate_copy(&t, &s), CW_OK);
    apply_expect(&t, CW_CONFLICT_SIBLINGS, &one, 0, CW_OK, true);
    assert_int_equal(t.n, 2);
    cw_keystate_free(&t);
    cw_keystate_free(&s);
}

static void test_context_is_join_of_dots_and_kctx(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_vclock ctx;
    memset(&ctx, 0x77, sizeof(ctx));
    cw_keystate_context(&s, &ctx);
    assert_true(cw_vc_is_zero(&ctx)); /* empty state: zero */

    struct cw_version a = ver_ctx(0, 10, "a", 0, 7, 3);
    struct cw_version b = ver_ctx(1, 20, "b", 9, 0, 5);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &b, 0, CW_OK, true);
    assert_int_equal(s.n, 2);
    cw_keystate_context(&s, &ctx);
    assert_int_equal(ctx.ts[0], 10); /* a's dot beats b's kctx entry 9 */
    assert_int_equal(ctx.ts[1], 20); /* b's dot beats a's kctx entry 7 */
    assert_int_equal(ctx.ts[2], 5);  /* max of the kctx entries */
    for (unsigned i = 3; i < CW_REGIONS_MAX; i++)
        assert_int_equal(ctx.ts[i], 0);

    /* A write carrying this context replaces both. */
    struct cw_version w = ver(2, 30, "w");
    w.kctx = ctx;
    assert_int_equal(cw_keystate_count_after(&s, CW_CONFLICT_SIBLINGS, &w), 1);
    cw_keystate_free(&s);
}

static void test_collect_tombstones(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    struct cw_version t1 = ver(0, 10, NULL), live = ver(1, 5, "old but live");
    struct cw_version t2 = ver(2, 30, NULL);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &t1, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &live, 0, CW_OK, true);
    apply_expect(&s, CW_CONFLICT_SIBLINGS, &t2, 0, CW_OK, true);
    assert_int_equal(cw_keystate_live(&s), 1);

    assert_false(cw_keystate_collect(&s, 9)); /* nothing stable yet */
    assert_int_equal(s.n, 3);
    assert_true(cw_keystate_collect(&s, 10)); /* <= stable: t1 goes */
    assert_int_equal(s.n, 2);
    assert_false(has_dot(&s, 0, 10));
    assert_true(has_dot(&s, 1, 5)); /* a live version is never collected */
    assert_true(has_dot(&s, 2, 30));
    assert_false(cw_keystate_collect(&s, 29));
    assert_true(cw_keystate_collect(&s, UINT64_MAX));
    assert_int_equal(s.n, 1);
    assert_false(s.v[0].tombstone);
    assert_false(cw_keystate_collect(&s, UINT64_MAX));
    assert_sorted(&s);

    /* Collecting the only version leaves an empty state that still works. */
    struct cw_keystate e;
    cw_keystate_init(&e);
    struct cw_version del = ver(0, 3, NULL);
    apply_expect(&e, CW_CONFLICT_LWW, &del, 0, CW_OK, true);
    assert_true(cw_keystate_collect(&e, 3));
    assert_int_equal(e.n, 0);
    struct cw_version again = ver(0, 4, "again");
    apply_expect(&e, CW_CONFLICT_LWW, &again, 0, CW_OK, true);
    assert_int_equal(e.n, 1);
    cw_keystate_free(&e);
    cw_keystate_free(&s);
}

static void test_equal(void **state)
{
    (void)state;
    struct cw_keystate a, b;
    cw_keystate_init(&a);
    cw_keystate_init(&b);
    assert_true(cw_keystate_equal(&a, &b));
    struct cw_version x = ver(0, 10, "x");
    apply_expect(&a, CW_CONFLICT_SIBLINGS, &x, 0, CW_OK, true);
    assert_false(cw_keystate_equal(&a, &b)); /* different counts */
    apply_expect(&b, CW_CONFLICT_SIBLINGS, &x, 0, CW_OK, true);
    assert_true(cw_keystate_equal(&a, &b));

    struct cw_keystate c;
    cw_keystate_init(&c);
    struct cw_version y = ver(0, 10, "y"); /* same dot, other value */
    apply_expect(&c, CW_CONFLICT_SIBLINGS, &y, 0, CW_OK, true);
    assert_false(cw_keystate_equal(&a, &c));
    cw_keystate_free(&c);

    struct cw_version xl = ver(0, 10, "xx"); /* other length */
    apply_expect(&c, CW_CONFLICT_SIBLINGS, &xl, 0, CW_OK, true);
    assert_false(cw_keystate_equal(&a, &c));
    cw_keystate_free(&c);

    struct cw_version x1 = ver(1, 10, "x"); /* other origin */
    apply_expect(&c, CW_CONFLICT_SIBLINGS, &x1, 0, CW_OK, true);
    assert_false(cw_keystate_equal(&a, &c));
    cw_keystate_free(&c);

    struct cw_version x11 = ver(0, 11, "x"); /* other ts */
    apply_expect(&c, CW_CONFLICT_SIBLINGS, &x11, 0, CW_OK, true);
    assert_false(cw_keystate_equal(&a, &c));
    cw_keystate_free(&c);

    /* A tombstone differs from an empty value. */
    struct cw_keystate t, e;
    cw_keystate_init(&t);
    cw_keystate_init(&e);
    struct cw_version tomb = ver(0, 10, NULL), empty = ver(0, 10, "");
    apply_expect(&t, CW_CONFLICT_SIBLINGS, &tomb, 0, CW_OK, true);
    apply_expect(&e, CW_CONFLICT_SIBLINGS, &empty, 0, CW_OK, true);
    assert_false(cw_keystate_equal(&t, &e));
    cw_keystate_free(&t);
    cw_keystate_free(&e);
    cw_keystate_free(&a);
    cw_keystate_free(&b);
}

static void test_copy_is_deep(void **state)
{
    (void)state;
    struct cw_keystate src, dst;
    cw_keystate_init(&src);
    cw_keystate_init(&dst);
    struct cw_version a = ver_ctx(0, 10, "alpha", 0, 3, 0), b = ver(1, 11, NULL),
                      c = ver(2, 12, "");
    apply_expect(&src, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, true);
    apply_expect(&src, CW_CONFLICT_SIBLINGS, &b, 0, CW_OK, true);
    apply_expect(&src, CW_CONFLICT_SIBLINGS, &c, 0, CW_OK, true);

    /* dst already holds something: the copy frees it (ASan reports a leak if not). */
    struct cw_version old = ver(0, 1, "old content");
    apply_expect(&dst, CW_CONFLICT_SIBLINGS, &old, 0, CW_OK, true);
    assert_int_equal(cw_keystate_copy(&dst, &src), CW_OK);
    assert_true(cw_keystate_equal(&dst, &src));
    assert_int_equal(dst.n, 3);
    assert_int_equal(dst.v[0].kctx.ts[1], 3);
    assert_ptr_not_equal(dst.v[0].value, src.v[0].value);

    /* Changing and freeing the source leaves the copy intact. */
    src.v[0].value[0] = 'X';
    assert_memory_equal(dst.v[0].value, "alpha", 5);
    cw_keystate_free(&src);
    assert_int_equal(dst.n, 3);
    assert_memory_equal(dst.v[0].value, "alpha", 5);
    assert_true(dst.v[1].tombstone);

    /* Copying an empty state empties dst. */
    struct cw_keystate empty;
    cw_keystate_init(&empty);
    assert_int_equal(cw_keystate_copy(&dst, &empty), CW_OK);
    assert_int_equal(dst.n, 0);
    /* And the emptied dst accepts new versions. */
    apply_expect(&dst, CW_CONFLICT_SIBLINGS, &a, 0, CW_OK, true);
    cw_keystate_free(&dst);
}

static void test_siblings_order_independent_permutations(void **state)
{
    (void)state;
    /* A small causal history: a and b concurrent; c read {a, b} and replaced them;
     * d is a blind write; e read {c} and replaced it; f read {a} only. */
    const struct cw_version vs[] = {
        ver_ctx(0, 10, "a", 0, 0, 0),    ver_ctx(1, 11, "b", 0, 0, 0),
        ver_ctx(2, 20, "c", 10, 11, 0),  ver_ctx(0, 21, "d", 0, 0, 0),
        ver_ctx(1, 30, "e", 10, 11, 20), ver_ctx(2, 25, "f", 10, 0, 0),
    };
    const unsigned n = sizeof(vs) / sizeof(vs[0]);
    unsigned perm[8];
    for (unsigned i = 0; i < n; i++)
        perm[i] = i;
    struct cw_keystate expect;
    apply_in_order(&expect, CW_CONFLICT_SIBLINGS, vs, perm, n);
    /* Survivors: d (blind), e (replaced c, a, b) and f (replaced a only). */
    assert_int_equal(expect.n, 3);
    assert_true(has_dot(&expect, 0, 21));
    assert_true(has_dot(&expect, 1, 30));
    assert_true(has_dot(&expect, 2, 25));
    unsigned count = 0;
    permute_all(perm, n, CW_CONFLICT_SIBLINGS, vs, &expect, &count);
    assert_int_equal(count, 720);
    cw_keystate_free(&expect);
}

/* ------------------------------------------------- randomized property test */

/* splitmix64: a tiny PRNG owned by the test, so a seed replays exactly. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) % n);
}

#define P_ORIGINS 3
#define P_WRITES_MAX 48
#define P_SESSIONS 2

struct p_write {
    struct cw_version v;
    unsigned seen[P_ORIGINS]; /* writes of each origin applied at the writer */
    uint8_t value[8];
};

struct p_origin {
    struct cw_hlc hlc;
    uint64_t phys_us;
    struct cw_keystate lww, sib;       /* the region's state in both modes */
    unsigned applied[P_ORIGINS];       /* FIFO delivery position per origin */
    struct cw_vclock kctx[P_SESSIONS]; /* each session's last read */
};

struct p_history {
    struct p_write w[P_WRITES_MAX];
    unsigned n;
    unsigned by_origin[P_ORIGINS][P_WRITES_MAX]; /* index into w, in stamp order */
    unsigned n_by_origin[P_ORIGINS];
};

static void p_apply_local(struct p_origin *o, const struct cw_version *v)
{
    bool changed;
    assert_int_equal(cw_keystate_apply(&o->lww, CW_CONFLICT_LWW, v, 0, &changed), CW_OK);
    assert_int_equal(cw_keystate_apply(&o->sib, CW_CONFLICT_SIBLINGS, v, 0, &changed), CW_OK);
    cw_hlc_observe(&o->hlc, v->dot.ts);
}

/* Origin `to` applies the next write of origin `from` it has not applied (links are
 * FIFO, as the replica's chains are). Returns false when there is none. */
static bool p_deliver(struct p_history *h, struct p_origin *os, unsigned from, unsigned to)
{
    struct p_origin *o = &os[to];
    if (o->applied[from] >= h->n_by_origin[from])
        return false;
    const struct p_write *w = &h->w[h->by_origin[from][o->applied[from]]];
    /* Causal delivery: everything the writer had applied must be here first. */
    for (unsigned k = 0; k < P_ORIGINS; k++)
        if (k != from && o->applied[k] < w->seen[k])
            return false;
    p_apply_local(o, &w->v);
    o->applied[from]++;
    return true;
}

static void p_write(struct p_history *h, struct p_origin *os, unsigned at, uint64_t *rng)
{
    struct p_origin *o = &os[at];
    struct p_write *w = &h->w[h->n];
    memset(w, 0, sizeof(*w));
    unsigned sess = rng_below(rng, P_SESSIONS);
    unsigned how = rng_below(rng, 4);
    if (how == 0)
        cw_vc_zero(&o->kctx[sess]); /* a blind write */
    else if (how <= 2)
        cw_keystate_context(&o->sib, &o->kctx[sess]); /* read, then write */
    /* how == 3: write with the session's earlier, possibly stale, read */
    w->v.kctx = o->kctx[sess];
    /* The stamp exceeds everything in the writer's context, as the replica does. */
    for (unsigned k = 0; k < CW_REGIONS_MAX; k++)
        cw_hlc_observe(&o->hlc, w->v.kctx.ts[k]);
    /* Physical clocks drift and jump back at times. */
    o->phys_us += rng_below(rng, 5);
    if (rng_below(rng, 8) == 0 && o->phys_us > 3)
        o->phys_us -= 3;
    w->v.dot.origin = (uint8_t)at;
    w->v.dot.ts = cw_hlc_now(&o->hlc, o->phys_us);
    w->v.tombstone = rng_below(rng, 6) == 0;
    if (!w->v.tombstone) {
        w->v.value_len = rng_below(rng, sizeof(w->value) + 1);
        for (uint32_t i = 0; i < w->v.value_len; i++)
            w->value[i] = (uint8_t)rng_next(rng);
        w->v.value = w->v.value_len ? w->value : NULL;
    }
    for (unsigned k = 0; k < P_ORIGINS; k++)
        w->seen[k] = o->applied[k];
    h->by_origin[at][h->n_by_origin[at]++] = h->n;
    h->n++;
    p_apply_local(o, &w->v);
    o->applied[at]++;
    /* What the session remembers after its put, as session.c does with the reply:
     * when the write replaced every other version, the key's context is exact;
     * otherwise the context it wrote with. (Joining only the new dot would claim
     * every older dot of this origin, including concurrent ones never seen.) */
    if (o->sib.n == 1)
        cw_keystate_context(&o->sib, &o->kctx[sess]);
}

/* Builds a random causally consistent order of all writes: repeatedly take the
 * next write of a random origin whose dependencies are already in the order. */
static void p_causal_order(const struct p_history *h, uint64_t *rng, unsigned *order)
{
    unsigned pos[P_ORIGINS] = {0};
    for (unsigned i = 0; i < h->n; i++) {
        unsigned start = rng_below(rng, P_ORIGINS);
        bool found = false;
        for (unsigned t = 0; t < P_ORIGINS && !found; t++) {
            unsigned o = (start + t) % P_ORIGINS;
            if (pos[o] >= h->n_by_origin[o])
                continue;
            const struct p_write *w = &h->w[h->by_origin[o][pos[o]]];
            bool ready = true;
            for (unsigned k = 0; k < P_ORIGINS; k++)
                if (k != o && pos[k] < w->seen[k])
                    ready = false;
            if (ready) {
                order[i] = h->by_origin[o][pos[o]++];
                found = true;
            }
        }
        assert_true(found); /* a causal history always has a next write */
    }
}

static void p_shuffle(unsigned *a, unsigned n, uint64_t *rng)
{
    for (unsigned i = 0; i < n; i++)
        a[i] = i;
    for (unsigned i = n; i > 1; i--) {
        unsigned j = rng_below(rng, i);
        unsigned t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static void p_apply_order(const struct p_history *h, const unsigned *order, enum cw_conflict mode,
                          struct cw_keystate *s)
{
    cw_keystate_init(s);
    for (unsigned i = 0; i < h->n; i++) {
        bool changed;
        assert_int_equal(cw_keystate_apply(s, mode, &h->w[order[i]].v, 0, &changed), CW_OK);
    }
    assert_sorted(s);
}

/* The state the design promises: LWW, the greatest dot; siblings, every version
 * not covered by another's key context. */
static void p_expected(const struct p_history *h, enum cw_conflict mode, struct cw_keystate *s)
{
    cw_keystate_init(s);
    for (unsigned i = 0; i < h->n; i++) {
        const struct cw_version *v = &h->w[i].v;
        bool keep = true;
        for (unsigned j = 0; j < h->n && keep; j++) {
            if (mode == CW_CONFLICT_LWW)
                keep = cw_dot_cmp(h->w[j].v.dot, v->dot) <= 0;
            else
                keep = !cw_dot_covered(&h->w[j].v.kctx, v->dot);
        }
        if (keep) {
            bool changed;
            assert_int_equal(cw_keystate_apply(s, CW_CONFLICT_SIBLINGS, v, 0, &changed), CW_OK);
        }
    }
    /* A siblings state remembers the contexts of every version applied, kept or
     * replaced; LWW keeps none. */
    cw_vc_zero(&s->replaced);
    for (unsigned i = 0; i < h->n && mode == CW_CONFLICT_SIBLINGS; i++)
        cw_vc_join(&s->replaced, &h->w[i].v.kctx);
}

static bool p_run(uint64_t seed)
{
    uint64_t rng = seed;
    struct p_history *h = calloc(1, sizeof(*h));
    struct p_origin os[P_ORIGINS];
    assert_non_null(h);
    memset(os, 0, sizeof(os));
    for (unsigned o = 0; o < P_ORIGINS; o++) {
        cw_hlc_init(&os[o].hlc, 0);
        os[o].phys_us = 1000 + rng_below(&rng, 10); /* skewed clocks */
        cw_keystate_init(&os[o].lww);
        cw_keystate_init(&os[o].sib);
    }
    unsigned writes = 8 + rng_below(&rng, P_WRITES_MAX - 8);
    while (h->n < writes) {
        if (rng_below(&rng, 3) == 0) {
            p_write(h, os, rng_below(&rng, P_ORIGINS), &rng);
        } else {
            unsigned from = rng_below(&rng, P_ORIGINS), to = rng_below(&rng, P_ORIGINS);
            if (from != to)
                p_deliver(h, os, from, to);
        }
    }
    /* Finish delivery everywhere. */
    bool progress = true;
    while (progress) {
        progress = false;
        for (unsigned f = 0; f < P_ORIGINS; f++)
            for (unsigned t = 0; t < P_ORIGINS; t++)
                if (f != t && p_deliver(h, os, f, t))
                    progress = true;
    }

    bool ok = true;
    struct cw_keystate expect_lww, expect_sib, s;
    p_expected(h, CW_CONFLICT_LWW, &expect_lww);
    p_expected(h, CW_CONFLICT_SIBLINGS, &expect_sib);
    ok = ok && expect_lww.n == 1;
    for (unsigned o = 0; o < P_ORIGINS; o++) {
        ok = ok && os[o].applied[0] + os[o].applied[1] + os[o].applied[2] == h->n;
        ok = ok && cw_keystate_equal(&os[o].lww, &expect_lww);
        ok = ok && cw_keystate_equal(&os[o].sib, &expect_sib);
    }
    unsigned order[P_WRITES_MAX];
    for (unsigned round = 0; round < 8; round++) {
        p_causal_order(h, &rng, order);
        p_apply_order(h, order, CW_CONFLICT_LWW, &s);
        ok = ok && cw_keystate_equal(&s, &expect_lww);
        cw_keystate_free(&s);
        p_apply_order(h, order, CW_CONFLICT_SIBLINGS, &s);
        ok = ok && cw_keystate_equal(&s, &expect_sib);
        cw_keystate_free(&s);
        /* Any order at all: siblings converge too, and so does LWW. */
        p_shuffle(order, h->n, &rng);
        p_apply_order(h, order, CW_CONFLICT_SIBLINGS, &s);
        ok = ok && cw_keystate_equal(&s, &expect_sib);
        cw_keystate_free(&s);
        p_apply_order(h, order, CW_CONFLICT_LWW, &s);
        ok = ok && cw_keystate_equal(&s, &expect_lww);
        cw_keystate_free(&s);
    }
    cw_keystate_free(&expect_lww);
    cw_keystate_free(&expect_sib);
    for (unsigned o = 0; o < P_ORIGINS; o++) {
        cw_keystate_free(&os[o].lww);
        cw_keystate_free(&os[o].sib);
    }
    free(h);
    return ok;
}

static void test_random_histories_converge(void **state)
{
    (void)state;
    uint64_t base = 0x5eedca05ull;
    const char *env = getenv("CW_TEST_SEED");
    if (env != NULL)
        base = strtoull(env, NULL, 0);
    print_message("version property test: base seed %llu (set CW_TEST_SEED to replay)\n",
                  (unsigned long long)base);
    for (uint64_t i = 0; i < 500; i++) {
        uint64_t seed = base + i;
        if (!p_run(seed)) {
            print_error("version property test failed for seed %llu\n", (unsigned long long)seed);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_cmp),
        cmocka_unit_test(test_dot_covered),
        cmocka_unit_test(test_lww_keeps_greatest),
        cmocka_unit_test(test_lww_tie_broken_by_origin),
        cmocka_unit_test(test_lww_duplicate_and_tombstone),
        cmocka_unit_test(test_lww_ignores_key_context),
        cmocka_unit_test(test_lww_order_independent),
        cmocka_unit_test(test_siblings_blind_write_adds_sibling),
        cmocka_unit_test(test_siblings_context_replaces_exactly_covered),
        cmocka_unit_test(test_siblings_delete_with_context),
        cmocka_unit_test(test_siblings_replaced_before_arrival),
        cmocka_unit_test(test_lww_collapses_multi_version_state),
        cmocka_unit_test(test_siblings_transitive_replace_any_order),
        cmocka_unit_test(test_siblings_duplicates_ignored),
        cmocka_unit_test(test_siblings_limit),
        cmocka_unit_test(test_count_after),
        cmocka_unit_test(test_context_is_join_of_dots_and_kctx),
        cmocka_unit_test(test_collect_tombstones),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_copy_is_deep),
        cmocka_unit_test(test_siblings_order_independent_permutations),
        cmocka_unit_test(test_random_histories_converge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
