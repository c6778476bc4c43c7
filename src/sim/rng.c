/* rng.c - xoshiro256** seeded by splitmix64 (public-domain algorithms by
 * Blackman and Vigna, written here from their description). */
#include "sim/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void cw_rng_seed(struct cw_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t cw_rng_next(struct cw_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t cw_rng_below(struct cw_rng *r, uint64_t n)
{
    /* Rejection sampling keeps the distribution exactly uniform. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = cw_rng_next(r);
    } while (x >= limit);
    return x % n;
}

uint64_t cw_rng_range(struct cw_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + cw_rng_below(r, hi - lo + 1);
}

bool cw_rng_chance(struct cw_rng *r, uint32_t per_million)
{
    return cw_rng_below(r, 1000000) < per_million;
}
