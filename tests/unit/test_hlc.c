/*
 * test_hlc.c - the hybrid logical clock: strictly increasing stamps whatever the
 * physical clock does, stamps past every observed one, the floor, and the carry
 * of the logical counter into the physical bits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/hlc.h"

#define LOGICAL_MASK ((UINT64_C(1) << CW_HLC_LOGICAL_BITS) - 1)

static void test_from_to_us_round_trip(void **state)
{
    (void)state;
    const uint64_t us[] = {0, 1, 1700000000000000ull, (UINT64_C(1) << 52) - 1};
    for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++) {
        assert_int_equal(cw_hlc_to_us(cw_hlc_from_us(us[i])), us[i]);
        assert_int_equal(cw_hlc_from_us(us[i]) & LOGICAL_MASK, 0);
    }
    /* The logical bits do not change the physical part. */
    assert_int_equal(cw_hlc_to_us(cw_hlc_from_us(77) + LOGICAL_MASK), 77);
}

static void test_forward_time_gives_physical_stamps(void **state)
{
    (void)state;
    struct cw_hlc c;
    cw_hlc_init(&c, 0);
    uint64_t phys = 1700000000000000ull;
    for (int i = 0; i < 1000; i++) {
        phys += 1 + (uint64_t)(i % 7);
        uint64_t ts = cw_hlc_now(&c, phys);
        assert_int_equal(ts, phys << CW_HLC_LOGICAL_BITS);
        assert_int_equal(ts & LOGICAL_MASK, 0);
    }
}

static void test_constant_time_strictly_increases(void **state)
{
    (void)state;
    struct cw_hlc c;
    cw_hlc_init(&c, 0);
    uint64_t prev = cw_hlc_now(&c, 5000);
    assert_int_equal(prev, cw_hlc_from_us(5000));
    for (int i = 0; i < 100; i++) {
        uint64_t ts = cw_hlc_now(&c, 5000);
        assert_true(ts > prev);
        /* Same microsecond: only the counter moves. */
        assert_int_equal(cw_hlc_to_us(ts), 5000);
        assert_int_equal(ts, prev + 1);
        prev = ts;
    }
}

static void test_backwards_jump_still_increases(void **state)
{
    (void)state;
    struct cw_hlc c;
    cw_hlc_init(&c, 0);
    uint64_t a = cw_hlc_now(&c, 1000000);
    uint64_t b = cw_hlc_now(&c, 10); /* the clock jumped back by almost a second */
    assert_true(b > a);
    uint64_t d = cw_hlc_now(&c, 999999);
    assert_true(d > b);
    /* Once physical time passes the old high-water mark, stamps are physical again. */
    uint64_t e = cw_hlc_now(&c, 1000001);
    assert_true(e > d);
    assert_int_equal(e, cw_hlc_from_us(1000001));
}

static void test_mixed_physical_sequence_strictly_increases(void **state)
{
    (void)state;
    struct cw_hlc c;
    cw_hlc_init(&c, 0);
    /* Forward, constant, backwards (small and large), forward again. */
    const uint64_t phys[] = {100, 200, 200, 200, 150, 10, 0, 201, 201, 5000, 4999, 1, 5001, 5001};
    uint64_t prev = 0;
    for (size_t i = 0; i < sizeof(phys) / sizeof(phys[0]); i++) {
        uint64_t ts = cw_hlc_now(&c, phys[i]);
        assert_true(ts > prev);
        assert_true(ts >= cw_hlc_from_us(phys[i]));
        assert_int_equal(c.last, ts);
        prev = ts;
    }
}

static void test_observe_far_ahead(void **state)
{
    (void)state;
    struct cw_hlc c;
    cw_hlc_init(&c, 0);
    uint64_t mine = cw_hlc_now(&c, 1000);
    uint64_t remote = cw_hlc_from_us(1000000000) + 17; /* far ahead, with a counter */
    cw_hlc_observe(&c, remote);
    uint64_t next = cw_hlc_now(&c, 1001);
    assert_true(next > remote);
    assert_true(next > mine);
    assert_int_equal(next, remote + 1);
    /* Observing something older changes nothing. */
    cw_hlc_observe(&c, mine);
    uint64_t after = cw_hlc_now(&c, 1002);
    assert_int_equal(after, next + 1);
    /* Observing exactly the last stamp still forces a greater one. */
    cw_hlc_observe(&c, after);
    assert_true(cw_hlc_now(&c, 1003) > after);
}

static void test_observe_equal_to_physical(void **state)
{
    (void)state;
    struct cw_hlc c;
    cw_hlc_init(&c, 0);
    cw_hlc_observe(&c, cw_hlc_from_us(500));
    /* A stamp at the same physical time as an observed one must exceed it. */
    uint64_t ts = cw_hlc_now(&c, 500);
    assert_true(ts > cw_hlc_from_us(500));
    /* Physical time passing it gives a physical stamp again. */
    assert_int_equal(cw_hlc_now(&c, 501), cw_hlc_from_us(501));
}

static void test_init_floor_respected(void **state)
{
    (void)state;
    struct cw_hlc c;
    uint64_t floor = cw_hlc_from_us(1000) + 5;
    cw_hlc_init(&c, floor);
    uint64_t a = cw_hlc_now(&c, 500); /* behind the floor */
    assert_true(a > floor);
    uint64_t b = cw_hlc_now(&c, 1000); /* same microsecond as the floor */
    assert_true(b > a);
    assert_true(b > floor);
    uint64_t d = cw_hlc_now(&c, 2000); /* past the floor: physical */
    assert_int_equal(d, cw_hlc_from_us(2000));

    /* A floor of zero: the first stamp is physical. */
    cw_hlc_init(&c, 0);
    assert_int_equal(cw_hlc_now(&c, 3), cw_hlc_from_us(3));
    /* Even at physical time zero the first stamp exceeds the floor 0. */
    cw_hlc_init(&c, 0);
    assert_true(cw_hlc_now(&c, 0) > 0);
}

static void test_logical_overflow_carries(void **state)
{
    (void)state;
    struct cw_hlc c;
    cw_hlc_init(&c, 0);
    const uint64_t phys = 123456;
    uint64_t prev = cw_hlc_now(&c, phys);
    const uint64_t n = (UINT64_C(1) << CW_HLC_LOGICAL_BITS) + 100;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ts = cw_hlc_now(&c, phys);
        assert_true(ts > prev);
        prev = ts;
    }
    /* More than 4096 stamps in one microsecond carried into the physical part. */
    assert_true(cw_hlc_to_us(prev) > phys);
    assert_int_equal(cw_hlc_to_us(prev), phys + 1);
    /* The next microsecond is now behind the clock: still strictly increasing. */
    uint64_t ts = cw_hlc_now(&c, phys + 1);
    assert_true(ts > prev);
    /* And time moving well past it yields a physical stamp again. */
    assert_int_equal(cw_hlc_now(&c, phys + 10), cw_hlc_from_us(phys + 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_to_us_round_trip),
        cmocka_unit_test(test_forward_time_gives_physical_stamps),
        cmocka_unit_test(test_constant_time_strictly_increases),
        cmocka_unit_test(test_backwards_jump_still_increases),
        cmocka_unit_test(test_mixed_physical_sequence_strictly_increases),
        cmocka_unit_test(test_observe_far_ahead),
        cmocka_unit_test(test_observe_equal_to_physical),
        cmocka_unit_test(test_init_floor_respected),
        cmocka_unit_test(test_logical_overflow_carries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
