/* test_hist.c - the log-linear latency histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/hist.h"

static void test_empty(void **state)
{
    (void)state;
    struct cw_hist h;
    cw_hist_reset(&h);
    assert_int_equal(h.count, 0);
    assert_int_equal(cw_hist_quantile(&h, 0.5), 0);
    assert_int_equal(cw_hist_quantile(&h, 0.99), 0);
}

static void test_small_values_exact(void **state)
{
    (void)state;
    struct cw_hist h;
    cw_hist_reset(&h);
    for (uint64_t v = 0; v < 8; v++)
        cw_hist_add(&h, v);
    assert_int_equal(h.count, 8);
    assert_int_equal(h.max, 7);
    assert_int_equal(h.sum, 28);
    assert_int_equal(cw_hist_quantile(&h, 0.0), 0);
    assert_int_equal(cw_hist_quantile(&h, 1.0), 7);
}

/* Quantiles of 1..100000 are within the bucket width (1/CW_HIST_SUB, 1.6%) of
 * the truth and never above the maximum. */
static void test_quantiles_within_bucket_error(void **state)
{
    (void)state;
    struct cw_hist h;
    cw_hist_reset(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        cw_hist_add(&h, v);
    const double qs[] = {0.01, 0.25, 0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double truth = qs[i] * 100000.0;
        double got = (double)cw_hist_quantile(&h, qs[i]);
        assert_true(got >= truth * 0.999);
        assert_true(got <= truth * (1.0 + 1.0 / CW_HIST_SUB) + 1.0);
    }
    assert_int_equal(cw_hist_quantile(&h, 1.0), 100000);
    assert_true(cw_hist_quantile(&h, 2.0) == 100000); /* clamped */
    assert_true(cw_hist_quantile(&h, -1.0) <= 2);
}

/* Every value lands in a bucket whose upper bound is at least the value and
 * within 1/CW_HIST_SUB above it, across the magnitudes (bucket mapping and
 * bounds agree, with no gap or overlap between neighbouring buckets). */
static void test_bucket_bounds_across_magnitudes(void **state)
{
    (void)state;
    static struct cw_hist h;
    const uint64_t starts[] = {1, 60, 1000, 65535, 1u << 20, 123456789, 1ull << 40};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
        for (uint64_t v = starts[i]; v < starts[i] + 200; v += 7) {
            cw_hist_reset(&h);
            cw_hist_add(&h, v);
            cw_hist_add(&h, UINT64_MAX); /* so the bound is not capped at max */
            uint64_t up = cw_hist_quantile(&h, 0.0);
            assert_true(up >= v);
            assert_true((double)up <= (double)v * (1.0 + 1.0 / CW_HIST_SUB) + 1.0);
        }
}

static void test_huge_values(void **state)
{
    (void)state;
    struct cw_hist h;
    cw_hist_reset(&h);
    cw_hist_add(&h, UINT64_MAX);
    cw_hist_add(&h, 1ull << 40);
    assert_int_equal(h.count, 2);
    assert_int_equal(cw_hist_quantile(&h, 1.0), UINT64_MAX);
    uint64_t lo = cw_hist_quantile(&h, 0.0);
    assert_true(lo >= 1ull << 40);
    assert_true(lo < (1ull << 40) + (1ull << (40 - CW_HIST_SUB_BITS + 1)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_quantiles_within_bucket_error),
        cmocka_unit_test(test_bucket_bounds_across_magnitudes),
        cmocka_unit_test(test_huge_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
