/*
 * bytes.h - the bounded reader the core's decoders share (disk and network
 * bytes alike): every read checks the remaining length, and the first short or
 * malformed read marks the reader bad, so a decoder reads straight through and
 * checks `bad` once at the end. Header-only; nothing here allocates.
 */
#ifndef CW_CORE_BYTES_H
#define CW_CORE_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/vclock.h"

struct cw_rd {
    const uint8_t *p;
    size_t len, off;
    bool bad;
};

static inline uint64_t cw_rd_varint(struct cw_rd *r)
{
    uint64_t x = 0;
    size_t used = r->bad ? 0 : cw_varint_get(r->p + r->off, r->len - r->off, &x);
    if (used == 0) {
        r->bad = true;
        return 0;
    }
    r->off += used;
    return x;
}

static inline uint8_t cw_rd_byte(struct cw_rd *r)
{
    if (r->bad || r->off >= r->len) {
        r->bad = true;
        return 0;
    }
    return r->p[r->off++];
}

static inline void cw_rd_vc(struct cw_rd *r, struct cw_vclock *v)
{
    size_t used = r->bad ? 0 : cw_vc_decode(v, r->p + r->off, r->len - r->off);
    if (used == 0) {
        r->bad = true;
        cw_vc_zero(v);
        return;
    }
    r->off += used;
}

/* n bytes in place (borrowed from the input), or NULL (and bad) when short. */
static inline const uint8_t *cw_rd_bytes(struct cw_rd *r, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

#endif
