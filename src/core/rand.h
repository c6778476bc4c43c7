/*
 * rand.h - randomness as an input. The core calls no libc generator; whatever it
 * draws comes from a generator the driver owns and seeds, so a simulated run
 * replays exactly from its seed and the daemon can log the seed it used.
 */
#ifndef CW_CORE_RAND_H
#define CW_CORE_RAND_H

#include <stdint.h>

struct cw_rand {
    /* Returns 64 uniformly distributed bits. NULL: the node uses a fixed
     * sequence (tests that draw nothing). */
    uint64_t (*next)(void *ctx);
    void *ctx; /* the driver's, borrowed for the node's lifetime */
};

#endif
