/*
 * vclock.h - vector clocks over regions.
 *
 * A cw_vclock holds one HLC timestamp per region; entry i is "everything from
 * region i up to this timestamp". Vectors are plain values (no heap), sized for
 * CW_REGIONS_MAX regions; the number of regions in use is passed where it matters
 * and unused entries stay zero, so comparisons over the full width are exact.
 */
#ifndef CW_CORE_VCLOCK_H
#define CW_CORE_VCLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "core/limits.h"

struct cw_vclock {
    uint64_t ts[CW_REGIONS_MAX];
};

enum cw_vc_order {
    CW_VC_EQUAL,
    CW_VC_BEFORE,     /* a < b: a happened before b */
    CW_VC_AFTER,      /* a > b */
    CW_VC_CONCURRENT, /* neither dominates */
};

void cw_vc_zero(struct cw_vclock *v);
enum cw_vc_order cw_vc_compare(const struct cw_vclock *a, const struct cw_vclock *b);
/* a >= b in every entry. */
bool cw_vc_dominates(const struct cw_vclock *a, const struct cw_vclock *b);
/* dst = max(dst, src) entry-wise. */
void cw_vc_join(struct cw_vclock *dst, const struct cw_vclock *src);
/* dst[region] = max(dst[region], ts). */
void cw_vc_join_dot(struct cw_vclock *dst, unsigned region, uint64_t ts);
bool cw_vc_is_zero(const struct cw_vclock *v);
/* Smallest entry among the first n regions. */
uint64_t cw_vc_min(const struct cw_vclock *v, unsigned n);
/*
 * Finds the first region k < n with have[k] < need[k]. Returns true and sets
 * *region and *ts (the entry needed) when one exists; false when have >= need.
 */
bool cw_vc_first_unmet(const struct cw_vclock *have, const struct cw_vclock *need, unsigned n,
                       unsigned *region, uint64_t *ts);

/*
 * Binary encoding: a count byte c (<= CW_REGIONS_MAX) then c LEB128 varints
 * (trailing zero entries are omitted). cw_vc_encode writes at most
 * CW_VC_ENCODED_MAX bytes and returns the length. cw_vc_decode returns the number
 * of bytes consumed, or 0 when the input is truncated, overlong or out of range.
 */
#define CW_VC_ENCODED_MAX (1 + CW_REGIONS_MAX * 10)
size_t cw_vc_encode(const struct cw_vclock *v, uint8_t *out);
size_t cw_vc_decode(struct cw_vclock *v, const uint8_t *in, size_t len);

/* LEB128 helpers shared by the core's encoders. */
size_t cw_varint_put(uint8_t *out, uint64_t x);
/* Returns bytes consumed, 0 on truncation or a varint longer than 10 bytes. */
size_t cw_varint_get(const uint8_t *in, size_t len, uint64_t *x);

/*
 * Printable form: "ts0.ts1.ts2" in lowercase hex, n entries. cw_vc_format writes
 * a NUL-terminated string into buf (at least CW_VC_TEXT_MAX bytes) and returns buf.
 */
#define CW_VC_TEXT_MAX (CW_REGIONS_MAX * 17 + 1)
char *cw_vc_format(const struct cw_vclock *v, unsigned n, char *buf);

#endif
