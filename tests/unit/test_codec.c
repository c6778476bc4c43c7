/*
 * test_codec.c - the persisted byte formats: key states, outbox records and
 * replica metadata. Round trips, and every way a decoder must refuse bytes:
 * each truncation, a wrong tag or format version, values over the limit,
 * versions out of order, fields out of range and trailing garbage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <causeway/error.h>

#include "core/codec.h"

#define MAXV (1u << 20)

/* ------------------------------------------------------------ helpers */

static void add(struct cw_keystate *s, uint8_t origin, uint64_t ts, const char *value,
                uint64_t kctx1)
{
    struct cw_version v;
    memset(&v, 0, sizeof(v));
    v.dot.origin = origin;
    v.dot.ts = ts;
    v.kctx.ts[1] = kctx1;
    if (value == NULL) {
        v.tombstone = true;
    } else {
        v.value_len = (uint32_t)strlen(value);
        v.value = v.value_len ? (uint8_t *)value : NULL;
    }
    bool changed;
    assert_int_equal(cw_keystate_apply(s, CW_CONFLICT_SIBLINGS, &v, 0, &changed), CW_OK);
    assert_true(changed);
}

/* Full equality, key contexts included (cw_keystate_equal leaves them out). */
static void assert_state_same(const struct cw_keystate *a, const struct cw_keystate *b)
{
    assert_true(cw_keystate_equal(a, b));
    for (uint32_t i = 0; i < a->n; i++) {
        assert_memory_equal(&a->v[i].kctx, &b->v[i].kctx, sizeof(a->v[i].kctx));
        if (a->v[i].value_len == 0)
            assert_null(b->v[i].value);
    }
}

/* Every strict prefix of a valid key-state encoding is refused. */
static void assert_keystate_truncations_fail(const uint8_t *buf, uint32_t len)
{
    for (uint32_t cut = 0; cut < len; cut++) {
        struct cw_keystate s;
        assert_int_equal(cw_decode_keystate(&s, buf, cut, MAXV), CW_EDECODE);
        cw_keystate_free(&s); /* allowed after a failed decode */
    }
}

static void keystate_round_trip(const struct cw_keystate *s)
{
    uint8_t *buf = NULL;
    uint32_t len = 0;
    assert_int_equal(cw_encode_keystate(s, &buf, &len), CW_OK);
    assert_non_null(buf);
    assert_true(len >= 3);
    struct cw_keystate out;
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_OK);
    assert_state_same(s, &out);
    cw_keystate_free(&out);
    assert_keystate_truncations_fail(buf, len);

    /* Trailing garbage is refused. */
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(cw_decode_keystate(&out, longer, len + 1, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(longer);
    free(buf);
}

/* ------------------------------------------------------------ key states */

static void test_keystate_empty(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    keystate_round_trip(&s);
    uint8_t *buf;
    uint32_t len;
    assert_int_equal(cw_encode_keystate(&s, &buf, &len), CW_OK);
    assert_int_equal(len, 4);
    assert_int_equal(buf[0], 'K');
    assert_int_equal(buf[1], CW_CODEC_VERSION);
    assert_int_equal(buf[2], 0); /* no versions */
    assert_int_equal(buf[3], 0); /* an empty "replaced" vector */
    free(buf);
}

static void test_keystate_one(void **state)
{
    (void)state;
    struct cw_keystate s;
    cw_keystate_init(&s);
    add(&s, 2, 12345, "hello", 77);
    keystate_round_trip(&s);
    cw_keystate_free(&s);
}

static void test_keystate_many_with_tombstones_and_empty_values(void **state)
{
    (void)state;
    /* Built by hand (already in (ts, origin) order): the codec stores what it is
     * given, whatever the contexts say. */
    enum { N = 105 };
    struct cw_version *vs = calloc(N, sizeof(*vs));
    assert_non_null(vs);
    static uint8_t big[3000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 31);
    vs[0].dot = (struct cw_dot){0, 10};
    vs[0].value_len = 5;
    vs[0].value = (uint8_t *)"alpha";
    vs[1].dot = (struct cw_dot){1, 11};
    vs[1].tombstone = true; /* a tombstone */
    vs[1].kctx.ts[1] = 3;
    vs[2].dot = (struct cw_dot){2, 11}; /* an empty value, tie on ts */
    for (unsigned i = 0; i < 100; i++) {
        struct cw_version *v = &vs[3 + i];
        v->dot = (struct cw_dot){(uint8_t)(i % 16), 1000 + i};
        v->tombstone = i % 5 == 0;
        if (!v->tombstone) {
            v->value_len = 1 + i % 7;
            v->value = big + i;
        }
        v->kctx.ts[i % 16] = 999 - i;
    }
    vs[103].dot = (struct cw_dot){15, UINT64_MAX - 1};
    vs[103].kctx.ts[1] = UINT64_MAX;
    vs[104].dot = (struct cw_dot){3, UINT64_MAX};
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        vs[104].kctx.ts[i] = UINT64_MAX - i;
    vs[104].value_len = sizeof(big);
    vs[104].value = big;
    struct cw_keystate s = {.n = N, .cap = N, .v = vs};
    keystate_round_trip(&s);
    free(vs);
}

static void test_keystate_wrong_tag_or_version(void **state)
{
    (void)state;
    struct cw_keystate s, out;
    cw_keystate_init(&s);
    add(&s, 0, 10, "v", 0);
    uint8_t *buf;
    uint32_t len;
    assert_int_equal(cw_encode_keystate(&s, &buf, &len), CW_OK);
    buf[0] = 'R'; /* a record's tag */
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    buf[0] = 'K';
    buf[1] = CW_CODEC_VERSION + 1;
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    buf[1] = 0;
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    buf[1] = CW_CODEC_VERSION;
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_OK);
    cw_keystate_free(&out);
    free(buf);
    cw_keystate_free(&s);
}

static void test_keystate_value_over_max(void **state)
{
    (void)state;
    struct cw_keystate s, out;
    cw_keystate_init(&s);
    add(&s, 0, 10, "0123456789", 0);
    uint8_t *buf;
    uint32_t len;
    assert_int_equal(cw_encode_keystate(&s, &buf, &len), CW_OK);
    assert_int_equal(cw_decode_keystate(&out, buf, len, 10), CW_OK); /* exactly the max */
    cw_keystate_free(&out);
    assert_int_equal(cw_decode_keystate(&out, buf, len, 9), CW_EDECODE);
    cw_keystate_free(&out);
    assert_int_equal(cw_decode_keystate(&out, buf, len, 0), CW_EDECODE);
    cw_keystate_free(&out);
    free(buf);
    cw_keystate_free(&s);
}

/* Encodes versions exactly as given (the encoder does not sort). */
static void encode_raw(const struct cw_version *vs, uint32_t n, uint8_t **buf, uint32_t *len)
{
    struct cw_keystate raw = {.n = n, .cap = n, .v = (struct cw_version *)vs};
    assert_int_equal(cw_encode_keystate(&raw, buf, len), CW_OK);
}

static void test_keystate_order_enforced(void **state)
{
    (void)state;
    struct cw_version vs[2];
    memset(vs, 0, sizeof(vs));
    vs[0].dot = (struct cw_dot){0, 20};
    vs[1].dot = (struct cw_dot){1, 10};
    uint8_t *buf;
    uint32_t len;
    struct cw_keystate out;
    encode_raw(vs, 2, &buf, &len); /* descending ts */
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(buf);

    vs[1].dot = (struct cw_dot){0, 20}; /* the same dot twice */
    encode_raw(vs, 2, &buf, &len);
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(buf);

    vs[1].dot = (struct cw_dot){0, 20};
    vs[0].dot = (struct cw_dot){1, 20}; /* same ts, origins descending */
    encode_raw(vs, 2, &buf, &len);
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(buf);

    vs[0].dot = (struct cw_dot){0, 20};
    vs[1].dot = (struct cw_dot){1, 20}; /* ascending: fine */
    encode_raw(vs, 2, &buf, &len);
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_OK);
    assert_int_equal(out.n, 2);
    cw_keystate_free(&out);
    free(buf);
}

static void test_keystate_fields_out_of_range(void **state)
{
    (void)state;
    struct cw_version v;
    memset(&v, 0, sizeof(v));
    uint8_t *buf;
    uint32_t len;
    struct cw_keystate out;

    v.dot = (struct cw_dot){0, 0}; /* ts 0 is never issued */
    encode_raw(&v, 1, &buf, &len);
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(buf);

    v.dot = (struct cw_dot){CW_REGIONS_MAX, 5}; /* origin out of range */
    encode_raw(&v, 1, &buf, &len);
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(buf);

    v.dot = (struct cw_dot){1, 5}; /* a tombstone that carries a value */
    v.tombstone = true;
    v.value_len = 3;
    v.value = (uint8_t *)"abc";
    encode_raw(&v, 1, &buf, &len);
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(buf);

    v.tombstone = false; /* the same bytes with a flags value above 1 */
    encode_raw(&v, 1, &buf, &len);
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_OK);
    cw_keystate_free(&out);
    /* layout: tag, version, count, replaced vector (empty: 1 byte), origin, ts
     * varint (1 byte), flags */
    assert_int_equal(buf[6], 0);
    buf[6] = 2;
    assert_int_equal(cw_decode_keystate(&out, buf, len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(buf);
}

static void test_keystate_count_bounds(void **state)
{
    (void)state;
    struct cw_keystate out;
    /* A count far larger than the input could hold must not allocate or read. */
    uint8_t huge[] = {'K', CW_CODEC_VERSION, 0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(cw_decode_keystate(&out, huge, sizeof(huge), MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    /* A count above CW_SIBLINGS_HARD_MAX is refused even with enough bytes. */
    size_t n = CW_SIBLINGS_HARD_MAX + 1;
    size_t len = 4 + n * 5;
    uint8_t *buf = calloc(1, len);
    assert_non_null(buf);
    buf[0] = 'K';
    buf[1] = CW_CODEC_VERSION;
    size_t off = 2 + cw_varint_put(buf + 2, n);
    for (size_t i = 0; i < n && off + 5 <= len; i++) {
        buf[off++] = 0;                      /* origin */
        buf[off++] = (uint8_t)(i % 100 + 1); /* ts: not ordered, but the count fails first */
        buf[off++] = 0;                      /* flags */
        buf[off++] = 0;                      /* kctx count */
        buf[off++] = 0;                      /* value length */
    }
    assert_int_equal(cw_decode_keystate(&out, buf, off, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(buf);
    /* The count says two versions, one is present. */
    struct cw_version v;
    memset(&v, 0, sizeof(v));
    v.dot = (struct cw_dot){0, 5};
    uint8_t *enc;
    uint32_t enc_len;
    encode_raw(&v, 1, &enc, &enc_len);
    enc[2] = 2;
    assert_int_equal(cw_decode_keystate(&out, enc, enc_len, MAXV), CW_EDECODE);
    cw_keystate_free(&out);
    free(enc);
}

/* ------------------------------------------------------------ versions */

static void test_version_round_trip(void **state)
{
    (void)state;
    struct cw_version v, out;
    memset(&v, 0, sizeof(v));
    v.dot = (struct cw_dot){7, 0x123456789ull};
    v.kctx.ts[0] = 1;
    v.kctx.ts[7] = 0x123456788ull;
    v.value_len = 4;
    v.value = (uint8_t *)"data";
    uint8_t buf[256];
    size_t n = cw_encode_version(&v, buf);
    assert_true(n <= cw_version_encoded_max(&v));
    assert_int_equal(cw_decode_version(&out, buf, n, MAXV), n);
    assert_int_equal(out.dot.origin, 7);
    assert_int_equal(out.dot.ts, v.dot.ts);
    assert_memory_equal(&out.kctx, &v.kctx, sizeof(v.kctx));
    assert_int_equal(out.value_len, 4);
    assert_memory_equal(out.value, "data", 4);
    assert_false(out.tombstone);
    free(out.value);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(cw_decode_version(&out, buf, cut, MAXV), 0);
        assert_null(out.value);
    }
    /* Longer input: only the version is consumed. */
    assert_int_equal(cw_decode_version(&out, buf, sizeof(buf), MAXV), n);
    free(out.value);
    assert_int_equal(cw_decode_version(&out, buf, n, 3), 0); /* over the max */
    assert_null(out.value);
}

/* ------------------------------------------------------------ records */

static void make_record(struct cw_record *r, const char *key, const char *value)
{
    memset(r, 0, sizeof(*r));
    r->prev_ts = 1000;
    r->consistency = CW_EVENTUAL;
    r->conflict = CW_CONFLICT_SIBLINGS;
    r->deps.ts[0] = 999;
    r->deps.ts[2] = 5;
    r->key_len = (uint32_t)strlen(key);
    r->key = (uint8_t *)key;
    r->version.dot = (struct cw_dot){1, 2000};
    r->version.kctx.ts[2] = 5;
    if (value) {
        r->version.value_len = (uint32_t)strlen(value);
        r->version.value = r->version.value_len ? (uint8_t *)value : NULL;
    } else {
        r->version.tombstone = true;
    }
}

static void assert_record_same(const struct cw_record *a, const struct cw_record *b)
{
    assert_int_equal(a->prev_ts, b->prev_ts);
    assert_int_equal(a->consistency, b->consistency);
    assert_int_equal(a->conflict, b->conflict);
    assert_memory_equal(&a->deps, &b->deps, sizeof(a->deps));
    assert_int_equal(a->key_len, b->key_len);
    assert_memory_equal(a->key, b->key, a->key_len);
    assert_int_equal(a->version.dot.origin, b->version.dot.origin);
    assert_int_equal(a->version.dot.ts, b->version.dot.ts);
    assert_memory_equal(&a->version.kctx, &b->version.kctx, sizeof(a->version.kctx));
    assert_int_equal(a->version.tombstone, b->version.tombstone);
    assert_int_equal(a->version.value_len, b->version.value_len);
    if (a->version.value_len)
        assert_memory_equal(a->version.value, b->version.value, a->version.value_len);
}

static void record_round_trip(const struct cw_record *r)
{
    uint8_t *buf;
    uint32_t len;
    assert_int_equal(cw_encode_record(r, &buf, &len), CW_OK);
    struct cw_record out;
    assert_int_equal(cw_decode_record(&out, buf, len, MAXV), CW_OK);
    assert_record_same(r, &out);
    cw_record_free(&out);
    for (uint32_t cut = 0; cut < len; cut++) {
        assert_int_equal(cw_decode_record(&out, buf, cut, MAXV), CW_EDECODE);
        cw_record_free(&out);
    }
    uint8_t *longer = malloc(len + 3);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    memcpy(longer + len, "xyz", 3);
    assert_int_equal(cw_decode_record(&out, longer, len + 3, MAXV), CW_EDECODE);
    cw_record_free(&out);
    free(longer);
    free(buf);
}

static void test_record_round_trips(void **state)
{
    (void)state;
    struct cw_record r;
    make_record(&r, "posts/hello", "world");
    record_round_trip(&r);
    make_record(&r, "posts/gone", NULL); /* a delete */
    record_round_trip(&r);
    make_record(&r, "b/k", ""); /* the shortest key, an empty value */
    r.prev_ts = 0;              /* the origin's first record */
    r.consistency = CW_CAUSAL;
    r.conflict = CW_CONFLICT_LWW;
    record_round_trip(&r);

    /* The longest key: a 64-byte bucket, a slash and 1024 key bytes with NULs. */
    static char key[CW_BUCKET_NAME_MAX + 1 + CW_KEY_BYTES_MAX + 1];
    memset(key, 'b', CW_BUCKET_NAME_MAX);
    key[CW_BUCKET_NAME_MAX] = '/';
    memset(key + CW_BUCKET_NAME_MAX + 1, 'k', CW_KEY_BYTES_MAX);
    key[sizeof(key) - 1] = '\0';
    make_record(&r, key, "v");
    key[CW_BUCKET_NAME_MAX + 5] = '\0'; /* a NUL inside the key bytes */
    r.key_len = CW_BUCKET_NAME_MAX + 1 + CW_KEY_BYTES_MAX;
    record_round_trip(&r);

    make_record(&r, "posts/max", "v");
    r.version.dot.ts = UINT64_MAX;
    r.prev_ts = UINT64_MAX - 1;
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        r.deps.ts[i] = UINT64_MAX;
    record_round_trip(&r);
}

static void test_record_rejects(void **state)
{
    (void)state;
    struct cw_record r, out;
    uint8_t *buf;
    uint32_t len;

    make_record(&r, "posts/hello", "world");
    assert_int_equal(cw_encode_record(&r, &buf, &len), CW_OK);
    buf[0] = 'K';
    assert_int_equal(cw_decode_record(&out, buf, len, MAXV), CW_EDECODE);
    cw_record_free(&out);
    buf[0] = 'R';
    buf[1] = CW_CODEC_VERSION + 1;
    assert_int_equal(cw_decode_record(&out, buf, len, MAXV), CW_EDECODE);
    cw_record_free(&out);
    buf[1] = CW_CODEC_VERSION;
    assert_int_equal(cw_decode_record(&out, buf, len, 5), CW_OK); /* value exactly max */
    cw_record_free(&out);
    assert_int_equal(cw_decode_record(&out, buf, len, 4), CW_EDECODE);
    cw_record_free(&out);
    free(buf);

    /* prev_ts must be below the record's own stamp. */
    make_record(&r, "posts/hello", "world");
    r.prev_ts = r.version.dot.ts;
    assert_int_equal(cw_encode_record(&r, &buf, &len), CW_OK);
    assert_int_equal(cw_decode_record(&out, buf, len, MAXV), CW_EDECODE);
    cw_record_free(&out);
    free(buf);

    /* Keys shorter than "b/k" or longer than bucket + slash + 1024 bytes. */
    make_record(&r, "b/", "v");
    assert_int_equal(cw_encode_record(&r, &buf, &len), CW_OK);
    assert_int_equal(cw_decode_record(&out, buf, len, MAXV), CW_EDECODE);
    cw_record_free(&out);
    free(buf);
    static char key[CW_BUCKET_NAME_MAX + 1 + CW_KEY_BYTES_MAX + 2];
    memset(key, 'k', sizeof(key) - 1);
    key[0] = 'b';
    key[1] = '/';
    key[sizeof(key) - 1] = '\0';
    make_record(&r, key, "v");
    assert_int_equal(cw_encode_record(&r, &buf, &len), CW_OK);
    assert_int_equal(cw_decode_record(&out, buf, len, MAXV), CW_EDECODE);
    cw_record_free(&out);
    free(buf);

    /* Consistency and conflict outside their enums. Layout: tag, version, prev_ts
     * (2 bytes for 1000), consistency, conflict. */
    make_record(&r, "posts/hello", "world");
    assert_int_equal(cw_encode_record(&r, &buf, &len), CW_OK);
    assert_int_equal(buf[4], CW_EVENTUAL);
    assert_int_equal(buf[5], CW_CONFLICT_SIBLINGS);
    buf[4] = CW_STRONG;
    assert_int_equal(cw_decode_record(&out, buf, len, MAXV), CW_OK);
    cw_record_free(&out);
    buf[4] = CW_STRONG + 1;
    assert_int_equal(cw_decode_record(&out, buf, len, MAXV), CW_EDECODE);
    cw_record_free(&out);
    buf[4] = CW_CAUSAL;
    buf[5] = CW_CONFLICT_SIBLINGS + 1;
    assert_int_equal(cw_decode_record(&out, buf, len, MAXV), CW_EDECODE);
    cw_record_free(&out);
    free(buf);
}

/* ------------------------------------------------------------ meta */

static void meta_round_trip(const struct cw_meta *m)
{
    uint8_t *buf;
    uint32_t len;
    assert_int_equal(cw_encode_meta(m, &buf, &len), CW_OK);
    struct cw_meta out;
    assert_int_equal(cw_decode_meta(&out, buf, len), CW_OK);
    assert_int_equal(out.hlc, m->hlc);
    assert_int_equal(out.stream_end, m->stream_end);
    assert_memory_equal(&out.applied, &m->applied, sizeof(out.applied));
    assert_memory_equal(&out.chain, &m->chain, sizeof(out.chain));
    for (uint32_t cut = 0; cut < len; cut++)
        assert_int_equal(cw_decode_meta(&out, buf, cut), CW_EDECODE);
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(cw_decode_meta(&out, longer, len + 1), CW_EDECODE);
    longer[0] = 'K';
    assert_int_equal(cw_decode_meta(&out, longer, len), CW_EDECODE);
    longer[0] = 'M';
    longer[1] = CW_CODEC_VERSION + 1;
    assert_int_equal(cw_decode_meta(&out, longer, len), CW_EDECODE);
    free(longer);
    free(buf);
}

static void test_meta_round_trips(void **state)
{
    (void)state;
    struct cw_meta m;
    memset(&m, 0, sizeof(m));
    meta_round_trip(&m);
    m.hlc = 0x1234567890ull;
    m.applied.ts[0] = 5;
    m.applied.ts[2] = 0x1234567000ull;
    m.chain.ts[2] = 0x1234560000ull;
    m.stream_end = 77;
    meta_round_trip(&m);
    m.hlc = UINT64_MAX;
    m.stream_end = UINT64_MAX;
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++) {
        m.applied.ts[i] = UINT64_MAX;
        m.chain.ts[i] = UINT64_MAX - 1;
    }
    meta_round_trip(&m);
}

static void test_meta_rejects_bad_vector(void **state)
{
    (void)state;
    /* tag, version, hlc 1, applied with a count above CW_REGIONS_MAX. */
    const uint8_t bad[] = {'M', CW_CODEC_VERSION, 1, CW_REGIONS_MAX + 1, 0, 0};
    struct cw_meta out;
    assert_int_equal(cw_decode_meta(&out, bad, sizeof(bad)), CW_EDECODE);
    const uint8_t good[] = {'M', CW_CODEC_VERSION, 1, 0, 0, 0};
    assert_int_equal(cw_decode_meta(&out, good, sizeof(good)), CW_OK);
    assert_int_equal(out.hlc, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keystate_empty),
        cmocka_unit_test(test_keystate_one),
        cmocka_unit_test(test_keystate_many_with_tombstones_and_empty_values),
        cmocka_unit_test(test_keystate_wrong_tag_or_version),
        cmocka_unit_test(test_keystate_value_over_max),
        cmocka_unit_test(test_keystate_order_enforced),
        cmocka_unit_test(test_keystate_fields_out_of_range),
        cmocka_unit_test(test_keystate_count_bounds),
        cmocka_unit_test(test_version_round_trip),
        cmocka_unit_test(test_record_round_trips),
        cmocka_unit_test(test_record_rejects),
        cmocka_unit_test(test_meta_round_trips),
        cmocka_unit_test(test_meta_rejects_bad_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
