/*
 * now.h - the time an input happens at, as the driver read it.
 *
 * The core never reads a clock; every input carries both of these, as the
 * driver read them. real_us is wall-clock time: it feeds the hybrid logical
 * clock, the plausibility bound on peer stamps and the visibility latency.
 * mono_us is a monotonic clock: every timer (heartbeats, waiting requests'
 * deadlines, resend spacing, Raft's election and heartbeat timeouts) runs on it, so a wall clock that jumps, forwards or back,
 * never fires a timer early or holds one back. A driver MUST NOT let mono_us go
 * backwards; real_us may jump (the HLC absorbs that).
 */
#ifndef CW_CORE_NOW_H
#define CW_CORE_NOW_H

#include <stdint.h>

struct cw_now {
    uint64_t real_us;
    uint64_t mono_us;
};

/* Both clocks at one value: tests and tools whose clocks never disagree. */
static inline struct cw_now cw_now_both(uint64_t us)
{
    struct cw_now n = {us, us};
    return n;
}

#endif
