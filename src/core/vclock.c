/* vclock.c - vector clock operations and their compact encoding. */
#include "core/vclock.h"

#include <stdio.h>
#include <string.h>

void cw_vc_zero(struct cw_vclock *v)
{
    memset(v, 0, sizeof(*v));
}

enum cw_vc_order cw_vc_compare(const struct cw_vclock *a, const struct cw_vclock *b)
{
    bool less = false, greater = false;
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++) {
        if (a->ts[i] < b->ts[i])
            less = true;
        else if (a->ts[i] > b->ts[i])
            greater = true;
    }
    if (less && greater)
        return CW_VC_CONCURRENT;
    if (less)
        return CW_VC_BEFORE;
    if (greater)
        return CW_VC_AFTER;
    return CW_VC_EQUAL;
}

bool cw_vc_dominates(const struct cw_vclock *a, const struct cw_vclock *b)
{
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        if (a->ts[i] < b->ts[i])
            return false;
    return true;
}

void cw_vc_join(struct cw_vclock *dst, const struct cw_vclock *src)
{
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        if (src->ts[i] > dst->ts[i])
            dst->ts[i] = src->ts[i];
}

void cw_vc_join_dot(struct cw_vclock *dst, unsigned region, uint64_t ts)
{
    if (region < CW_REGIONS_MAX && ts > dst->ts[region])
        dst->ts[region] = ts;
}

bool cw_vc_is_zero(const struct cw_vclock *v)
{
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        if (v->ts[i] != 0)
            return false;
    return true;
}

uint64_t cw_vc_min(const struct cw_vclock *v, unsigned n)
{
    uint64_t m = UINT64_MAX;
    for (unsigned i = 0; i < n && i < CW_REGIONS_MAX; i++)
        if (v->ts[i] < m)
            m = v->ts[i];
    return n == 0 ? 0 : m;
}

bool cw_vc_first_unmet(const struct cw_vclock *have, const struct cw_vclock *need, unsigned n,
                       unsigned *region, uint64_t *ts)
{
    for (unsigned i = 0; i < n && i < CW_REGIONS_MAX; i++) {
        if (have->ts[i] < need->ts[i]) {
            *region = i;
            *ts = need->ts[i];
            return true;
        }
    }
    return false;
}

size_t cw_varint_put(uint8_t *out, uint64_t x)
{
    size_t n = 0;
    while (x >= 0x80) {
        out[n++] = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    out[n++] = (uint8_t)x;
    return n;
}

size_t cw_varint_get(const uint8_t *in, size_t len, uint64_t *x)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        uint64_t b = in[i] & 0x7f;
        /* The tenth byte may only carry the top bit of a 64-bit value. */
        if (i == 9 && b > 1)
            return 0;
        v |= b << (7 * i);
        if ((in[i] & 0x80) == 0) {
            *x = v;
            return i + 1;
        }
    }
    return 0;
}

size_t cw_vc_encode(const struct cw_vclock *v, uint8_t *out)
{
    unsigned count = CW_REGIONS_MAX;
    while (count > 0 && v->ts[count - 1] == 0)
        count--;
    size_t n = 0;
    out[n++] = (uint8_t)count;
    for (unsigned i = 0; i < count; i++)
        n += cw_varint_put(out + n, v->ts[i]);
    return n;
}

size_t cw_vc_decode(struct cw_vclock *v, const uint8_t *in, size_t len)
{
    if (len < 1 || in[0] > CW_REGIONS_MAX)
        return 0;
    unsigned count = in[0];
    size_t off = 1;
    cw_vc_zero(v);
    for (unsigned i = 0; i < count; i++) {
        size_t used = cw_varint_get(in + off, len - off, &v->ts[i]);
        if (used == 0)
            return 0;
        off += used;
    }
    return off;
}

char *cw_vc_format(const struct cw_vclock *v, unsigned n, char *buf)
{
    size_t off = 0;
    buf[0] = '\0';
    if (n > CW_REGIONS_MAX)
        n = CW_REGIONS_MAX;
    for (unsigned i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, CW_VC_TEXT_MAX - off, "%s%llx", i ? "." : "",
                                (unsigned long long)v->ts[i]);
    return buf;
}
