/* hlc.c - hybrid logical clock: max(physical, last + 1). */
#include "core/hlc.h"

#include "core/cw_assert.h"

void cw_hlc_init(struct cw_hlc *c, uint64_t floor)
{
    c->last = floor;
}

uint64_t cw_hlc_now(struct cw_hlc *c, uint64_t phys_us)
{
    uint64_t phys = cw_hlc_from_us(phys_us);
    /* Callers bound what they observe (see stamp_plausible in replica.c), so the
     * clock never reaches the end of its range. */
    CW_ASSERT(c->last < UINT64_MAX);
    /* A counter overflow carries into the physical bits; the clock then runs at
     * most a few microseconds ahead, which is harmless and keeps order strict. */
    c->last = phys > c->last ? phys : c->last + 1;
    return c->last;
}

void cw_hlc_observe(struct cw_hlc *c, uint64_t ts)
{
    if (ts > c->last)
        c->last = ts;
}
