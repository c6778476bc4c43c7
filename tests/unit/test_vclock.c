/*
 * test_vclock.c - vector clocks: order, join, min, first unmet entry, the compact
 * binary encoding (round trips and every way a decoder must refuse input), LEB128
 * varints and the printable form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/vclock.h"

static struct cw_vclock vc3(uint64_t a, uint64_t b, uint64_t c)
{
    struct cw_vclock v;
    cw_vc_zero(&v);
    v.ts[0] = a;
    v.ts[1] = b;
    v.ts[2] = c;
    return v;
}

static void test_zero_and_is_zero(void **state)
{
    (void)state;
    struct cw_vclock v;
    memset(&v, 0xab, sizeof(v));
    cw_vc_zero(&v);
    assert_true(cw_vc_is_zero(&v));
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        assert_int_equal(v.ts[i], 0);
    v.ts[CW_REGIONS_MAX - 1] = 1; /* the last entry counts too */
    assert_false(cw_vc_is_zero(&v));
}

static void test_compare(void **state)
{
    (void)state;
    struct cw_vclock a = vc3(1, 2, 3), b = vc3(1, 2, 3);
    assert_int_equal(cw_vc_compare(&a, &b), CW_VC_EQUAL);
    b = vc3(1, 3, 3);
    assert_int_equal(cw_vc_compare(&a, &b), CW_VC_BEFORE);
    assert_int_equal(cw_vc_compare(&b, &a), CW_VC_AFTER);
    b = vc3(0, 5, 3);
    assert_int_equal(cw_vc_compare(&a, &b), CW_VC_CONCURRENT);
    assert_int_equal(cw_vc_compare(&b, &a), CW_VC_CONCURRENT);

    /* The comparison covers the full width, also entries beyond those in use. */
    a = vc3(1, 2, 3);
    b = vc3(1, 2, 3);
    b.ts[CW_REGIONS_MAX - 1] = 1;
    assert_int_equal(cw_vc_compare(&a, &b), CW_VC_BEFORE);
    a.ts[CW_REGIONS_MAX - 2] = 9;
    assert_int_equal(cw_vc_compare(&a, &b), CW_VC_CONCURRENT);

    struct cw_vclock z1, z2;
    cw_vc_zero(&z1);
    cw_vc_zero(&z2);
    assert_int_equal(cw_vc_compare(&z1, &z2), CW_VC_EQUAL);
    z2.ts[0] = UINT64_MAX;
    assert_int_equal(cw_vc_compare(&z1, &z2), CW_VC_BEFORE);
}

static void test_dominates(void **state)
{
    (void)state;
    struct cw_vclock a = vc3(5, 5, 5), b = vc3(5, 4, 0);
    assert_true(cw_vc_dominates(&a, &b));
    assert_false(cw_vc_dominates(&b, &a));
    assert_true(cw_vc_dominates(&a, &a)); /* reflexive */
    b = vc3(6, 0, 0);
    assert_false(cw_vc_dominates(&a, &b)); /* concurrent: neither */
    assert_false(cw_vc_dominates(&b, &a));
    b = vc3(0, 0, 0);
    b.ts[CW_REGIONS_MAX - 1] = 1;
    assert_false(cw_vc_dominates(&a, &b));
}

static void test_join_and_join_dot(void **state)
{
    (void)state;
    struct cw_vclock a = vc3(1, 9, 3), b = vc3(4, 2, 3);
    b.ts[7] = UINT64_MAX;
    cw_vc_join(&a, &b);
    assert_int_equal(a.ts[0], 4);
    assert_int_equal(a.ts[1], 9);
    assert_int_equal(a.ts[2], 3);
    assert_int_equal(a.ts[7], UINT64_MAX);
    /* b is unchanged and a now dominates both inputs. */
    assert_int_equal(b.ts[1], 2);
    assert_true(cw_vc_dominates(&a, &b));

    struct cw_vclock c = vc3(10, 0, 0);
    cw_vc_join_dot(&c, 0, 5); /* smaller: no change */
    assert_int_equal(c.ts[0], 10);
    cw_vc_join_dot(&c, 0, 11);
    assert_int_equal(c.ts[0], 11);
    cw_vc_join_dot(&c, 2, 7);
    assert_int_equal(c.ts[2], 7);
    cw_vc_join_dot(&c, CW_REGIONS_MAX - 1, 3);
    assert_int_equal(c.ts[CW_REGIONS_MAX - 1], 3);
    /* An out-of-range region is ignored, not written past the end. */
    struct cw_vclock before = c;
    cw_vc_join_dot(&c, CW_REGIONS_MAX, 99);
    cw_vc_join_dot(&c, 1000, 99);
    assert_memory_equal(&c, &before, sizeof(c));
}

static void test_min(void **state)
{
    (void)state;
    struct cw_vclock v = vc3(7, 3, 9);
    assert_int_equal(cw_vc_min(&v, 3), 3);
    assert_int_equal(cw_vc_min(&v, 1), 7);
    assert_int_equal(cw_vc_min(&v, 0), 0);
    /* Entries past n do not count, even when smaller. */
    v.ts[3] = 1;
    assert_int_equal(cw_vc_min(&v, 3), 3);
    assert_int_equal(cw_vc_min(&v, 4), 1);
    /* n larger than the width is clamped. */
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        v.ts[i] = UINT64_MAX;
    assert_int_equal(cw_vc_min(&v, CW_REGIONS_MAX), UINT64_MAX);
    assert_int_equal(cw_vc_min(&v, CW_REGIONS_MAX + 5), UINT64_MAX);
}

static void test_first_unmet(void **state)
{
    (void)state;
    struct cw_vclock have = vc3(5, 5, 5), need = vc3(5, 5, 5);
    unsigned region = 99;
    uint64_t ts = 99;
    assert_false(cw_vc_first_unmet(&have, &need, 3, &region, &ts));
    need = vc3(1, 6, 8);
    assert_true(cw_vc_first_unmet(&have, &need, 3, &region, &ts));
    assert_int_equal(region, 1);
    assert_int_equal(ts, 6);
    /* Only the first n regions are considered. */
    assert_false(cw_vc_first_unmet(&have, &need, 1, &region, &ts));
    need = vc3(0, 0, 0);
    need.ts[5] = 1;
    assert_false(cw_vc_first_unmet(&have, &need, 3, &region, &ts));
    assert_true(cw_vc_first_unmet(&have, &need, 6, &region, &ts));
    assert_int_equal(region, 5);
    assert_int_equal(ts, 1);
    assert_true(cw_vc_first_unmet(&have, &need, CW_REGIONS_MAX + 3, &region, &ts));
    assert_int_equal(region, 5);
}

static void test_varint_round_trip(void **state)
{
    (void)state;
    const uint64_t xs[] = {0,          1,         127,        128,        255,
                           16383,      16384,     UINT32_MAX, 1ull << 56, (1ull << 63) - 1,
                           1ull << 63, UINT64_MAX};
    const size_t lens[] = {1, 1, 1, 2, 2, 2, 3, 5, 9, 9, 10, 10};
    for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
        uint8_t buf[16];
        size_t n = cw_varint_put(buf, xs[i]);
        assert_int_equal(n, lens[i]);
        uint64_t x = 0;
        assert_int_equal(cw_varint_get(buf, n, &x), n);
        assert_int_equal(x, xs[i]);
        /* Every truncation is refused. */
        for (size_t cut = 0; cut < n; cut++)
            assert_int_equal(cw_varint_get(buf, cut, &x), 0);
    }
}

static void test_varint_rejects_overlong(void **state)
{
    (void)state;
    uint64_t x = 0;
    /* Eleven bytes: ten continuation bytes and a terminator. */
    uint8_t eleven[11];
    memset(eleven, 0x80, 10);
    eleven[10] = 0x00;
    assert_int_equal(cw_varint_get(eleven, sizeof(eleven), &x), 0);
    /* Ten bytes whose last carries more than the 64th bit. */
    uint8_t ten[10];
    memset(ten, 0xff, 9);
    ten[9] = 0x02;
    assert_int_equal(cw_varint_get(ten, sizeof(ten), &x), 0);
    ten[9] = 0x7f;
    assert_int_equal(cw_varint_get(ten, sizeof(ten), &x), 0);
    /* A tenth byte with the continuation bit set is overlong too. */
    ten[9] = 0x81;
    assert_int_equal(cw_varint_get(ten, sizeof(ten), &x), 0);
    /* Exactly the top bit is fine: that is UINT64_MAX. */
    ten[9] = 0x01;
    assert_int_equal(cw_varint_get(ten, sizeof(ten), &x), 10);
    assert_int_equal(x, UINT64_MAX);
}

static void check_round_trip(const struct cw_vclock *v, size_t expect_len)
{
    uint8_t buf[CW_VC_ENCODED_MAX + 8];
    memset(buf, 0xee, sizeof(buf));
    size_t n = cw_vc_encode(v, buf);
    assert_true(n >= 1);
    assert_true(n <= CW_VC_ENCODED_MAX);
    if (expect_len)
        assert_int_equal(n, expect_len);
    /* The encoder does not write past what it reports. */
    assert_int_equal(buf[n], 0xee);
    struct cw_vclock out;
    memset(&out, 0x5a, sizeof(out));
    assert_int_equal(cw_vc_decode(&out, buf, n), n);
    assert_memory_equal(&out, v, sizeof(out));
    assert_int_equal(cw_vc_compare(&out, v), CW_VC_EQUAL);
    /* Decoding from a longer buffer consumes exactly the encoding. */
    assert_int_equal(cw_vc_decode(&out, buf, sizeof(buf)), n);
    /* Every truncation is refused. */
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(cw_vc_decode(&out, buf, cut), 0);
}

static void test_encode_round_trips(void **state)
{
    (void)state;
    struct cw_vclock v;
    cw_vc_zero(&v);
    check_round_trip(&v, 1); /* all zero: just the count byte */

    uint8_t buf[CW_VC_ENCODED_MAX];
    assert_int_equal(cw_vc_encode(&v, buf), 1);
    assert_int_equal(buf[0], 0);

    v = vc3(1, 0, 0);
    check_round_trip(&v, 2);
    v = vc3(0, 0, 300); /* leading zeros stay, trailing ones go */
    check_round_trip(&v, 1 + 1 + 1 + 2);

    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        v.ts[i] = UINT64_MAX;
    check_round_trip(&v, CW_VC_ENCODED_MAX); /* the documented worst case */

    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        v.ts[i] = (uint64_t)i * 0x0123456789abull;
    check_round_trip(&v, 0);

    cw_vc_zero(&v);
    v.ts[CW_REGIONS_MAX - 1] = 5;
    check_round_trip(&v, 1 + CW_REGIONS_MAX);
}

static void test_trailing_zeros_omitted(void **state)
{
    (void)state;
    struct cw_vclock v = vc3(5, 6, 0);
    uint8_t buf[CW_VC_ENCODED_MAX];
    size_t n = cw_vc_encode(&v, buf);
    assert_int_equal(n, 3);
    assert_int_equal(buf[0], 2); /* two entries, not three or sixteen */
    assert_int_equal(buf[1], 5);
    assert_int_equal(buf[2], 6);
}

static void test_decode_rejects_bad_input(void **state)
{
    (void)state;
    struct cw_vclock v;
    uint8_t buf[CW_VC_ENCODED_MAX + 16];
    memset(buf, 0, sizeof(buf));

    assert_int_equal(cw_vc_decode(&v, buf, 0), 0); /* empty */

    /* A count above CW_REGIONS_MAX, even with enough bytes after it. */
    buf[0] = CW_REGIONS_MAX + 1;
    assert_int_equal(cw_vc_decode(&v, buf, sizeof(buf)), 0);
    buf[0] = 0xff;
    assert_int_equal(cw_vc_decode(&v, buf, sizeof(buf)), 0);
    buf[0] = CW_REGIONS_MAX; /* exactly the maximum is fine */
    assert_int_equal(cw_vc_decode(&v, buf, sizeof(buf)), 1 + CW_REGIONS_MAX);

    /* Count says two, one present. */
    const uint8_t short_in[] = {2, 7};
    assert_int_equal(cw_vc_decode(&v, short_in, sizeof(short_in)), 0);

    /* An entry that is an overlong varint: eleven bytes. */
    uint8_t over[1 + 11];
    over[0] = 1;
    memset(over + 1, 0x80, 10);
    over[11] = 0;
    assert_int_equal(cw_vc_decode(&v, over, sizeof(over)), 0);
    /* Ten bytes with a tenth byte above 1. */
    uint8_t ten[1 + 10];
    ten[0] = 1;
    memset(ten + 1, 0xff, 9);
    ten[10] = 0x03;
    assert_int_equal(cw_vc_decode(&v, ten, sizeof(ten)), 0);
    ten[10] = 0x01;
    assert_int_equal(cw_vc_decode(&v, ten, sizeof(ten)), sizeof(ten));
    assert_int_equal(v.ts[0], UINT64_MAX);

    /* An unterminated varint at the end of the input. */
    const uint8_t open[] = {1, 0x80, 0x80};
    assert_int_equal(cw_vc_decode(&v, open, sizeof(open)), 0);
}

static void test_decode_clears_unused_entries(void **state)
{
    (void)state;
    struct cw_vclock v;
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        v.ts[i] = 42;
    const uint8_t in[] = {1, 9};
    assert_int_equal(cw_vc_decode(&v, in, sizeof(in)), 2);
    assert_int_equal(v.ts[0], 9);
    for (unsigned i = 1; i < CW_REGIONS_MAX; i++)
        assert_int_equal(v.ts[i], 0);
}

static void test_format(void **state)
{
    (void)state;
    char buf[CW_VC_TEXT_MAX];
    struct cw_vclock v = vc3(10, 0, 255);
    assert_ptr_equal(cw_vc_format(&v, 3, buf), buf);
    assert_string_equal(buf, "a.0.ff");
    assert_string_equal(cw_vc_format(&v, 1, buf), "a");
    assert_string_equal(cw_vc_format(&v, 0, buf), "");

    /* The widest vector fits the documented buffer exactly. */
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        v.ts[i] = UINT64_MAX;
    char big[CW_VC_TEXT_MAX + 8];
    memset(big, 'x', sizeof(big));
    cw_vc_format(&v, CW_REGIONS_MAX, big);
    assert_int_equal(strlen(big), CW_REGIONS_MAX * 16 + (CW_REGIONS_MAX - 1));
    assert_true(strlen(big) < CW_VC_TEXT_MAX);
    assert_int_equal(big[CW_VC_TEXT_MAX], 'x'); /* nothing written past the bound */
    assert_memory_equal(big, "ffffffffffffffff.ffffffffffffffff", 33);

    /* n above the width is clamped. */
    cw_vc_format(&v, CW_REGIONS_MAX + 10, big);
    assert_int_equal(strlen(big), CW_REGIONS_MAX * 16 + (CW_REGIONS_MAX - 1));

    /* Lowercase hex. */
    v = vc3(0xABCDEFull, 0, 0);
    assert_string_equal(cw_vc_format(&v, 2, buf), "abcdef.0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_and_is_zero),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_dominates),
        cmocka_unit_test(test_join_and_join_dot),
        cmocka_unit_test(test_min),
        cmocka_unit_test(test_first_unmet),
        cmocka_unit_test(test_varint_round_trip),
        cmocka_unit_test(test_varint_rejects_overlong),
        cmocka_unit_test(test_encode_round_trips),
        cmocka_unit_test(test_trailing_zeros_omitted),
        cmocka_unit_test(test_decode_rejects_bad_input),
        cmocka_unit_test(test_decode_clears_unused_entries),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
