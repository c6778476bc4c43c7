/*
 * hlc.h - hybrid logical clock.
 *
 * A timestamp is 64 bits: physical microseconds since the Unix epoch in the high
 * 52 bits and a logical counter in the low 12 (room until the year 2112). The
 * clock never reads time itself: callers pass the physical time in, so the
 * simulator can drive it with skewed and jumping clocks.
 *
 * Guarantees: stamps issued by one clock strictly increase; a stamp issued after
 * cw_hlc_observe(t) exceeds t; while physical time moves forward and no remote
 * stamp is ahead, a stamp equals physical time with a zero counter.
 */
#ifndef CW_CORE_HLC_H
#define CW_CORE_HLC_H

#include <stdint.h>

#define CW_HLC_LOGICAL_BITS 12

struct cw_hlc {
    uint64_t last; /* the greatest stamp issued or observed */
};

static inline uint64_t cw_hlc_from_us(uint64_t phys_us)
{
    return phys_us << CW_HLC_LOGICAL_BITS;
}

static inline uint64_t cw_hlc_to_us(uint64_t ts)
{
    return ts >> CW_HLC_LOGICAL_BITS;
}

/* Starts a clock that will never issue a stamp <= floor (0 for a new node). */
void cw_hlc_init(struct cw_hlc *c, uint64_t floor);
/* Issues a new stamp, strictly greater than every stamp issued or observed. */
uint64_t cw_hlc_now(struct cw_hlc *c, uint64_t phys_us);
/* Moves the clock past a received stamp, so later stamps exceed it. */
void cw_hlc_observe(struct cw_hlc *c, uint64_t ts);

#endif
