/*
 * version.h - versions of one key and how a new version joins them.
 *
 * A key's state is a small set of versions. Each version has a dot (origin, ts),
 * a key context (the versions of this key its writer had seen: a per-key version
 * vector; dot d is covered by context c when c[d.origin] >= d.ts), and holds a
 * value or a tombstone.
 *
 * LWW keeps exactly one version, the greatest (ts, origin). Siblings keeps every
 * version not covered by the key context of another; the result of applying the
 * same set of versions is the same in any order, which is what makes regions
 * converge.
 *
 * Siblings convergence needs closed key contexts: a context that covers a
 * version also covers that version's own context. Contexts obtained by reading
 * (cw_keystate_context) are closed; the replica closes a client-supplied one
 * against the local state and makes the write depend on it, so causal delivery
 * applies every covered version before the write everywhere.
 *
 * Ownership: a cw_keystate owns its versions and their values. Functions that
 * take a `const struct cw_version *` copy what they keep.
 */
#ifndef CW_CORE_VERSION_H
#define CW_CORE_VERSION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/vclock.h"

enum cw_conflict { CW_CONFLICT_LWW = 0, CW_CONFLICT_SIBLINGS = 1 };

struct cw_dot {
    uint8_t origin;
    uint64_t ts;
};

struct cw_version {
    struct cw_dot dot;
    struct cw_vclock kctx; /* versions of this key the writer had seen */
    bool tombstone;
    uint32_t value_len;
    uint8_t *value; /* owned by the containing state; NULL when value_len == 0 */
};

struct cw_keystate {
    uint32_t n;
    uint32_t cap;
    struct cw_version *v; /* n versions, sorted by (ts, origin) ascending */
    /* Siblings: the join of the key contexts of every version ever applied here,
     * stored or since replaced. A version whose dot it covers was replaced, so
     * the stored set is a function of the applied set alone, whatever the order,
     * even when a context names a replaced version but not what it replaced. */
    struct cw_vclock replaced;
};

/* (ts, origin) order: negative, zero or positive as a is less, equal, greater. */
int cw_dot_cmp(struct cw_dot a, struct cw_dot b);
static inline bool cw_dot_covered(const struct cw_vclock *kctx, struct cw_dot d)
{
    return d.origin < CW_REGIONS_MAX && kctx->ts[d.origin] >= d.ts;
}

void cw_keystate_init(struct cw_keystate *s);
void cw_keystate_free(struct cw_keystate *s);
/* Deep copy; dst must be initialised (its old content is freed). */
int cw_keystate_copy(struct cw_keystate *dst, const struct cw_keystate *src);

/*
 * Applies w to s under mode. limit > 0 refuses (CW_ESIBLINGS, s unchanged) a
 * result with more than limit versions; pass 0 for writes that must be applied
 * (remote writes, already accepted at their origin). *changed tells whether s
 * changed. Returns CW_OK, CW_ESIBLINGS or CW_ENOMEM (s unchanged).
 */
int cw_keystate_apply(struct cw_keystate *s, enum cw_conflict mode, const struct cw_version *w,
                      uint32_t limit, bool *changed);

/* The number of versions s would hold after adding w, a write not yet stored or
 * replaced (a new local write; its dot need not be stamped yet). For admission
 * checks. */
uint32_t cw_keystate_count_after(const struct cw_keystate *s, enum cw_conflict mode,
                                 const struct cw_version *w);

/* The key context a reader of s obtains: the join of every version's dot and kctx. */
void cw_keystate_context(const struct cw_keystate *s, struct cw_vclock *out);

/* Number of versions that are not tombstones. */
uint32_t cw_keystate_live(const struct cw_keystate *s);

/* Drops tombstones with ts <= stable_ts; returns true when s changed. */
bool cw_keystate_collect(struct cw_keystate *s, uint64_t stable_ts);

/* True when both hold the same dots, values, tombstones and replaced vectors. */
bool cw_keystate_equal(const struct cw_keystate *a, const struct cw_keystate *b);

#endif
