/*
 * rng.h - the simulator's only source of randomness: a seeded xoshiro256**
 * generator, expanded from the 64-bit seed with splitmix64. One seed decides a
 * whole run, so a failing seed replays exactly.
 */
#ifndef CW_SIM_RNG_H
#define CW_SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct cw_rng {
    uint64_t s[4];
};

void cw_rng_seed(struct cw_rng *r, uint64_t seed);
uint64_t cw_rng_next(struct cw_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t cw_rng_below(struct cw_rng *r, uint64_t n);
/* Uniform in [lo, hi]. */
uint64_t cw_rng_range(struct cw_rng *r, uint64_t lo, uint64_t hi);
/* True with probability per_million / 1e6. */
bool cw_rng_chance(struct cw_rng *r, uint32_t per_million);

#endif
