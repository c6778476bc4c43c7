/* hist.c - log-linear histogram. */
#include "core/hist.h"

#include <string.h>

void cw_hist_reset(struct cw_hist *h)
{
    memset(h, 0, sizeof(*h));
}

static unsigned bucket_of(uint64_t v)
{
    if (v < CW_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    /* The CW_HIST_SUB_BITS bits below the leading one select the sub-bucket. */
    unsigned sub = (unsigned)(v >> (msb - CW_HIST_SUB_BITS)) & (CW_HIST_SUB - 1);
    return (msb - CW_HIST_SUB_BITS + 1) * CW_HIST_SUB + sub;
}

static uint64_t bucket_upper(unsigned b)
{
    if (b < CW_HIST_SUB)
        return b;
    unsigned msb = b / CW_HIST_SUB + CW_HIST_SUB_BITS - 1;
    uint64_t sub = b % CW_HIST_SUB;
    uint64_t base = (1ull << msb) | (sub << (msb - CW_HIST_SUB_BITS));
    return base + (1ull << (msb - CW_HIST_SUB_BITS)) - 1;
}

void cw_hist_add(struct cw_hist *h, uint64_t value)
{
    unsigned b = bucket_of(value);
    if (b >= CW_HIST_BUCKETS)
        b = CW_HIST_BUCKETS - 1;
    h->buckets[b]++;
    h->count++;
    h->sum += value;
    if (value > h->max)
        h->max = value;
}

uint64_t cw_hist_quantile(const struct cw_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)(q * (double)(h->count - 1)) + 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < CW_HIST_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            uint64_t up = bucket_upper(b);
            return up < h->max ? up : h->max;
        }
    }
    return h->max;
}
