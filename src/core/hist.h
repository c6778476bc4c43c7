/*
 * hist.h - a fixed-size latency histogram (log-linear buckets: 64 linear
 * sub-buckets per power of two, so a percentile is within 1.6% of the truth:
 * at 40 ms of WAN delay a bucket is 0.5 ms wide, which is what a "delay + 5 ms"
 * target needs; with 8 sub-buckets it was 5 ms). Plain value (16 KiB), no heap;
 * used for remote-visibility latency per origin and by the benchmark tools.
 */
#ifndef CW_CORE_HIST_H
#define CW_CORE_HIST_H

#include <stdint.h>

#define CW_HIST_SUB_BITS 6
#define CW_HIST_SUB (1u << CW_HIST_SUB_BITS)
#define CW_HIST_BUCKETS (64 * CW_HIST_SUB)

struct cw_hist {
    uint64_t count;
    uint64_t max;
    uint64_t sum;
    uint32_t buckets[CW_HIST_BUCKETS];
};

void cw_hist_reset(struct cw_hist *h);
void cw_hist_add(struct cw_hist *h, uint64_t value);
/* The value at quantile q (0..1): an upper bound of its bucket, capped at max.
 * 0 for an empty histogram. */
uint64_t cw_hist_quantile(const struct cw_hist *h, double q);

#endif
