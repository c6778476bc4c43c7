/*
 * test_session.c - a client session's causal state: the context grows with every
 * reply, key contexts are remembered for siblings buckets (bounded, least
 * recently used forgotten first), and context tokens round-trip and refuse
 * anything malformed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <causeway/error.h>

#include "core/session.h"

#define K(s) (const uint8_t *)(s), (uint32_t)strlen(s)

static struct cw_reply get_reply(enum cw_conflict conflict, uint64_t seen0, uint64_t seen1,
                                 uint64_t kctx0, uint64_t kctx1)
{
    struct cw_reply r;
    memset(&r, 0, sizeof(r));
    r.kind = CW_REPLY_GET;
    r.err = CW_OK;
    r.conflict = conflict;
    r.seen.ts[0] = seen0;
    r.seen.ts[1] = seen1;
    r.kctx.ts[0] = kctx0;
    r.kctx.ts[1] = kctx1;
    cw_keystate_init(&r.state);
    return r;
}

static struct cw_reply put_reply(enum cw_conflict conflict, uint8_t origin, uint64_t ts,
                                 bool kctx_valid, uint64_t kctx0, uint64_t kctx1)
{
    struct cw_reply r;
    memset(&r, 0, sizeof(r));
    r.kind = CW_REPLY_PUT;
    r.err = CW_OK;
    r.conflict = conflict;
    r.dot.origin = origin;
    r.dot.ts = ts;
    r.seen.ts[origin] = ts; /* the replica reports the new dot as seen */
    r.kctx_valid = kctx_valid;
    r.kctx.ts[0] = kctx0;
    r.kctx.ts[1] = kctx1;
    cw_keystate_init(&r.state);
    return r;
}

static void test_init_and_free(void **state)
{
    (void)state;
    struct cw_session s;
    cw_session_init(&s, 4);
    assert_true(cw_vc_is_zero(&s.context));
    assert_int_equal(s.n_keys, 0);
    assert_int_equal(s.max_keys, 4);
    assert_null(cw_session_kctx(&s, K("b/k")));
    cw_session_free(&s);
    cw_session_init(&s, 0); /* zero means at least one key */
    assert_int_equal(s.max_keys, 1);
    cw_session_free(&s);
}

static void test_get_reply_joins_seen(void **state)
{
    (void)state;
    struct cw_session s;
    cw_session_init(&s, 8);
    s.context.ts[0] = 50;
    s.context.ts[2] = 7;
    struct cw_reply r = get_reply(CW_CONFLICT_LWW, 40, 60, 99, 99);
    assert_int_equal(cw_session_observe(&s, K("posts/a"), &r), CW_OK);
    assert_int_equal(s.context.ts[0], 50); /* join never moves an entry back */
    assert_int_equal(s.context.ts[1], 60);
    assert_int_equal(s.context.ts[2], 7);
    /* LWW: no key context is remembered. */
    assert_null(cw_session_kctx(&s, K("posts/a")));
    assert_int_equal(s.n_keys, 0);
    cw_session_free(&s);
}

static void test_get_reply_siblings_remembers_kctx(void **state)
{
    (void)state;
    struct cw_session s;
    cw_session_init(&s, 8);
    struct cw_reply r = get_reply(CW_CONFLICT_SIBLINGS, 10, 20, 11, 21);
    assert_int_equal(cw_session_observe(&s, K("sib/a"), &r), CW_OK);
    const struct cw_vclock *k = cw_session_kctx(&s, K("sib/a"));
    assert_non_null(k);
    assert_int_equal(k->ts[0], 11);
    assert_int_equal(k->ts[1], 21);
    assert_int_equal(s.context.ts[0], 10);
    assert_int_equal(s.context.ts[1], 20);
    /* Another key is separate; a prefix is a different key. */
    assert_null(cw_session_kctx(&s, K("sib/b")));
    assert_null(cw_session_kctx(&s, K("sib/")));
    /* A later read replaces (not joins) the key context: it is what was read. */
    r = get_reply(CW_CONFLICT_SIBLINGS, 5, 5, 3, 0);
    assert_int_equal(cw_session_observe(&s, K("sib/a"), &r), CW_OK);
    k = cw_session_kctx(&s, K("sib/a"));
    assert_int_equal(k->ts[0], 3);
    assert_int_equal(k->ts[1], 0);
    assert_int_equal(s.n_keys, 1);
    /* ... while the session context only grows. */
    assert_int_equal(s.context.ts[0], 10);
    cw_session_free(&s);
}

static void test_put_reply_kctx_valid(void **state)
{
    (void)state;
    struct cw_session s;
    cw_session_init(&s, 8);
    struct cw_reply g = get_reply(CW_CONFLICT_SIBLINGS, 10, 20, 10, 20);
    assert_int_equal(cw_session_observe(&s, K("sib/a"), &g), CW_OK);

    /* The write replaced every version: its context is exact, remember it. */
    struct cw_reply p = put_reply(CW_CONFLICT_SIBLINGS, 0, 30, true, 30, 20);
    assert_int_equal(cw_session_observe(&s, K("sib/a"), &p), CW_OK);
    const struct cw_vclock *k = cw_session_kctx(&s, K("sib/a"));
    assert_non_null(k);
    assert_int_equal(k->ts[0], 30);
    assert_int_equal(k->ts[1], 20);
    assert_int_equal(s.context.ts[0], 30); /* the new dot joins the context */

    /* Siblings remain: the old key context stays, it is not widened. */
    struct cw_reply q = put_reply(CW_CONFLICT_SIBLINGS, 1, 40, false, 77, 77);
    assert_int_equal(cw_session_observe(&s, K("sib/a"), &q), CW_OK);
    k = cw_session_kctx(&s, K("sib/a"));
    assert_int_equal(k->ts[0], 30);
    assert_int_equal(k->ts[1], 20);
    assert_int_equal(s.context.ts[1], 40);

    /* Without a previous read, a put that leaves siblings remembers nothing. */
    struct cw_reply u = put_reply(CW_CONFLICT_SIBLINGS, 1, 41, false, 5, 5);
    assert_int_equal(cw_session_observe(&s, K("sib/other"), &u), CW_OK);
    assert_null(cw_session_kctx(&s, K("sib/other")));
    /* An LWW put remembers nothing either, valid or not. */
    struct cw_reply l = put_reply(CW_CONFLICT_LWW, 2, 50, true, 50, 0);
    assert_int_equal(cw_session_observe(&s, K("posts/x"), &l), CW_OK);
    assert_null(cw_session_kctx(&s, K("posts/x")));
    assert_int_equal(s.context.ts[2], 50);
    cw_session_free(&s);
}

static void test_failed_reply_changes_nothing(void **state)
{
    (void)state;
    struct cw_session s;
    cw_session_init(&s, 8);
    struct cw_reply r = get_reply(CW_CONFLICT_SIBLINGS, 10, 20, 10, 20);
    r.err = CW_ENOTREADY;
    assert_int_equal(cw_session_observe(&s, K("sib/a"), &r), CW_OK);
    assert_true(cw_vc_is_zero(&s.context));
    assert_null(cw_session_kctx(&s, K("sib/a")));
    struct cw_reply p = put_reply(CW_CONFLICT_SIBLINGS, 0, 30, true, 30, 0);
    p.err = CW_ESIBLINGS;
    assert_int_equal(cw_session_observe(&s, K("sib/a"), &p), CW_OK);
    assert_true(cw_vc_is_zero(&s.context));
    assert_null(cw_session_kctx(&s, K("sib/a")));
    cw_session_free(&s);
}

static void test_set_kctx(void **state)
{
    (void)state;
    struct cw_session s;
    cw_session_init(&s, 2);
    struct cw_vclock v;
    cw_vc_zero(&v);
    v.ts[3] = 9;
    const uint8_t bin[] = {'b', '/', 0, 1};
    assert_int_equal(cw_session_set_kctx(&s, bin, sizeof(bin), &v), CW_OK);
    const struct cw_vclock *k = cw_session_kctx(&s, bin, sizeof(bin));
    assert_non_null(k);
    assert_int_equal(k->ts[3], 9);
    assert_null(cw_session_kctx(&s, bin, 3)); /* a prefix with the NUL */
    /* The session keeps its own copy of the key bytes. */
    uint8_t mutable_key[] = {'b', '/', 'q'};
    assert_int_equal(cw_session_set_kctx(&s, mutable_key, 3, &v), CW_OK);
    mutable_key[2] = 'z';
    assert_non_null(cw_session_kctx(&s, K("b/q")));
    assert_null(cw_session_kctx(&s, K("b/z")));
    /* Setting again overwrites without adding an entry. */
    v.ts[3] = 10;
    assert_int_equal(cw_session_set_kctx(&s, K("b/q"), &v), CW_OK);
    assert_int_equal(s.n_keys, 2);
    assert_int_equal(cw_session_kctx(&s, K("b/q"))->ts[3], 10);
    /* The context is untouched by explicit key contexts. */
    assert_true(cw_vc_is_zero(&s.context));
    cw_session_free(&s);
}

static void test_lookup_counts_as_use(void **state)
{
    (void)state;
    struct cw_session s;
    cw_session_init(&s, 2);
    struct cw_vclock v;
    cw_vc_zero(&v);
    v.ts[0] = 1;
    assert_int_equal(cw_session_set_kctx(&s, K("sib/a"), &v), CW_OK);
    assert_int_equal(cw_session_set_kctx(&s, K("sib/b"), &v), CW_OK);
    /* Looking a up (as a put does) makes b the least recently used. */
    assert_non_null(cw_session_kctx(&s, K("sib/a")));
    assert_int_equal(cw_session_set_kctx(&s, K("sib/c"), &v), CW_OK);
    assert_non_null(cw_session_kctx(&s, K("sib/a")));
    assert_null(cw_session_kctx(&s, K("sib/b")));
    assert_non_null(cw_session_kctx(&s, K("sib/c")));
    cw_session_free(&s);
}

static void test_lru_bound(void **state)
{
    (void)state;
    struct cw_session s;
    cw_session_init(&s, 3);
    char key[16];
    struct cw_vclock v;
    cw_vc_zero(&v);
    for (unsigned i = 0; i < 3; i++) {
        v.ts[0] = i + 1;
        snprintf(key, sizeof(key), "sib/k%u", i);
        struct cw_reply r = get_reply(CW_CONFLICT_SIBLINGS, 0, 0, i + 1, 0);
        assert_int_equal(cw_session_observe(&s, K(key), &r), CW_OK);
    }
    assert_int_equal(s.n_keys, 3);
    /* Reading k0 again makes it the most recently used. */
    struct cw_reply again = get_reply(CW_CONFLICT_SIBLINGS, 0, 0, 100, 0);
    assert_int_equal(cw_session_observe(&s, K("sib/k0"), &again), CW_OK);
    /* A fourth key evicts the least recently used: k1. */
    struct cw_reply r3 = get_reply(CW_CONFLICT_SIBLINGS, 0, 0, 4, 0);
    assert_int_equal(cw_session_observe(&s, K("sib/k3"), &r3), CW_OK);
    assert_int_equal(s.n_keys, 3);
    assert_null(cw_session_kctx(&s, K("sib/k1")));
    assert_non_null(cw_session_kctx(&s, K("sib/k0")));
    assert_int_equal(cw_session_kctx(&s, K("sib/k0"))->ts[0], 100);
    assert_non_null(cw_session_kctx(&s, K("sib/k2")));
    assert_non_null(cw_session_kctx(&s, K("sib/k3")));
    /* Many more keys: the bound holds and the newest is always there. */
    for (unsigned i = 10; i < 200; i++) {
        snprintf(key, sizeof(key), "sib/k%u", i);
        v.ts[0] = i;
        assert_int_equal(cw_session_set_kctx(&s, K(key), &v), CW_OK);
        assert_true(s.n_keys <= 3);
        assert_non_null(cw_session_kctx(&s, K(key)));
    }
    assert_int_equal(s.n_keys, 3);
    assert_non_null(cw_session_kctx(&s, K("sib/k199")));
    assert_non_null(cw_session_kctx(&s, K("sib/k198")));
    assert_non_null(cw_session_kctx(&s, K("sib/k197")));
    assert_null(cw_session_kctx(&s, K("sib/k196")));
    cw_session_free(&s);

    /* A bound of one. */
    cw_session_init(&s, 1);
    assert_int_equal(cw_session_set_kctx(&s, K("b/x"), &v), CW_OK);
    assert_int_equal(cw_session_set_kctx(&s, K("b/y"), &v), CW_OK);
    assert_int_equal(s.n_keys, 1);
    assert_null(cw_session_kctx(&s, K("b/x")));
    assert_non_null(cw_session_kctx(&s, K("b/y")));
    cw_session_free(&s);
}

/* ------------------------------------------------------------ tokens */

static void token_round_trip(const struct cw_vclock *v)
{
    char buf[CW_TOKEN_MAX + 8];
    memset(buf, 'x', sizeof(buf));
    cw_token_format(v, buf);
    assert_true(strlen(buf) < CW_TOKEN_MAX);
    assert_int_equal(buf[CW_TOKEN_MAX], 'x'); /* nothing past the bound */
    assert_memory_equal(buf, "cw1-", 4);
    for (const char *p = buf + 4; *p; p++)
        assert_non_null(strchr("0123456789abcdef", *p));
    struct cw_vclock out;
    memset(&out, 0x33, sizeof(out));
    assert_int_equal(cw_token_parse(buf, &out), CW_OK);
    assert_memory_equal(&out, v, sizeof(out));
}

static void test_token_round_trip(void **state)
{
    (void)state;
    struct cw_vclock v;
    cw_vc_zero(&v);
    token_round_trip(&v);
    char buf[CW_TOKEN_MAX];
    cw_token_format(&v, buf);
    assert_string_equal(buf, "cw1-00");
    v.ts[0] = 1;
    v.ts[2] = 0x1234;
    token_round_trip(&v);
    cw_token_format(&v, buf);
    assert_string_equal(buf, "cw1-030100b424"); /* count 3; 1; 0; 0x1234 as LEB128 */
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        v.ts[i] = UINT64_MAX;
    token_round_trip(&v); /* the longest token */
    cw_token_format(&v, buf);
    assert_int_equal(strlen(buf), CW_TOKEN_MAX - 1);
}

static void test_token_parse_rejects(void **state)
{
    (void)state;
    struct cw_vclock v;
    const char *bad[] = {
        "",        /* empty */
        "cw1-",    /* no encoding */
        "cw1-0",   /* odd length */
        "cw1-030", /* odd length */
        "cw2-00",  /* wrong prefix */
        "CW1-00",  /* prefix is case-sensitive */
        "cw1_00",  /* wrong separator */
        "xcw1-00", /* junk before the prefix */
        "00",      /* no prefix */
        "cw1-0A",  /* uppercase hex */
        "cw1-030100B424",
        "cw1-0g",                     /* not hex */
        "cw1- 0",                     /* space */
        "cw1-010500",                 /* trailing garbage: count 1, entry 5, then an extra 00 */
        "cw1-0000",                   /* trailing garbage after an empty vector */
        "cw1-11",                     /* count 17 > CW_REGIONS_MAX */
        "cw1-0280",                   /* truncated varint */
        "cw1-0201",                   /* count 2, one entry */
        "cw1-01ffffffffffffffffff02", /* overlong varint: tenth byte above 1 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cw_token_parse(bad[i], &v) != CW_ECONTEXT)
            fail_msg("token \"%s\" was accepted", bad[i]);
    }
    /* Too long: one byte more than the largest encoding. */
    char longtok[4 + 2 * (CW_VC_ENCODED_MAX + 1) + 1];
    memcpy(longtok, "cw1-", 4);
    memset(longtok + 4, '0', sizeof(longtok) - 5);
    longtok[sizeof(longtok) - 1] = '\0';
    assert_int_equal(cw_token_parse(longtok, &v), CW_ECONTEXT);
    /* Far too long. */
    static char huge[10000];
    memcpy(huge, "cw1-", 4);
    memset(huge + 4, 'a', sizeof(huge) - 5);
    huge[sizeof(huge) - 1] = '\0';
    assert_int_equal(cw_token_parse(huge, &v), CW_ECONTEXT);
    /* A valid token for contrast, with a non-canonical but decodable shape. */
    assert_int_equal(cw_token_parse("cw1-0105", &v), CW_OK);
    assert_int_equal(v.ts[0], 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_free),
        cmocka_unit_test(test_get_reply_joins_seen),
        cmocka_unit_test(test_get_reply_siblings_remembers_kctx),
        cmocka_unit_test(test_put_reply_kctx_valid),
        cmocka_unit_test(test_failed_reply_changes_nothing),
        cmocka_unit_test(test_set_kctx),
        cmocka_unit_test(test_lru_bound),
        cmocka_unit_test(test_lookup_counts_as_use),
        cmocka_unit_test(test_token_round_trip),
        cmocka_unit_test(test_token_parse_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
