/* codec.c - bounded encoders and decoders for persisted replica state. */
#include "core/codec.h"

#include "core/bytes.h"

#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

enum { TAG_KEYSTATE = 'K', TAG_RECORD = 'R', TAG_META = 'M' };

size_t cw_version_encoded_max(const struct cw_version *v)
{
    return 1 + 10 + 1 + CW_VC_ENCODED_MAX + 10 + v->value_len;
}

size_t cw_encode_version(const struct cw_version *v, uint8_t *out)
{
    size_t n = 0;
    out[n++] = v->dot.origin;
    n += cw_varint_put(out + n, v->dot.ts);
    out[n++] = v->tombstone ? 1 : 0;
    n += cw_vc_encode(&v->kctx, out + n);
    n += cw_varint_put(out + n, v->value_len);
    if (v->value_len) {
        memcpy(out + n, v->value, v->value_len);
        n += v->value_len;
    }
    return n;
}

static void rd_version(struct cw_rd *r, struct cw_version *v, uint32_t max_value_bytes)
{
    memset(v, 0, sizeof(*v));
    uint8_t origin = cw_rd_byte(r);
    v->dot.ts = cw_rd_varint(r);
    uint8_t flags = cw_rd_byte(r);
    cw_rd_vc(r, &v->kctx);
    uint64_t vlen = cw_rd_varint(r);
    if (r->bad || origin >= CW_REGIONS_MAX || flags > 1 || v->dot.ts == 0 ||
        vlen > max_value_bytes || vlen > CW_VALUE_HARD_MAX || (flags && vlen)) {
        r->bad = true;
        return;
    }
    v->dot.origin = origin;
    v->tombstone = flags == 1;
    const uint8_t *p = cw_rd_bytes(r, (size_t)vlen);
    if (p == NULL || vlen == 0)
        return;
    v->value = malloc((size_t)vlen);
    if (v->value == NULL) {
        r->bad = true;
        return;
    }
    memcpy(v->value, p, (size_t)vlen);
    v->value_len = (uint32_t)vlen;
}

size_t cw_decode_version(struct cw_version *v, const uint8_t *in, size_t len,
                         uint32_t max_value_bytes)
{
    struct cw_rd r = {in, len, 0, false};
    rd_version(&r, v, max_value_bytes);
    if (r.bad) {
        free(v->value);
        v->value = NULL;
        v->value_len = 0;
        return 0;
    }
    return r.off;
}

int cw_encode_keystate(const struct cw_keystate *s, uint8_t **out, uint32_t *len)
{
    size_t max = 2 + 10 + CW_VC_ENCODED_MAX;
    for (uint32_t i = 0; i < s->n; i++)
        max += cw_version_encoded_max(&s->v[i]);
    uint8_t *buf = malloc(max);
    if (buf == NULL)
        return CW_ENOMEM;
    size_t n = 0;
    buf[n++] = TAG_KEYSTATE;
    buf[n++] = CW_CODEC_VERSION;
    n += cw_varint_put(buf + n, s->n);
    n += cw_vc_encode(&s->replaced, buf + n);
    for (uint32_t i = 0; i < s->n; i++)
        n += cw_encode_version(&s->v[i], buf + n);
    *out = buf;
    *len = (uint32_t)n;
    return CW_OK;
}

int cw_decode_keystate(struct cw_keystate *s, const uint8_t *in, size_t len,
                       uint32_t max_value_bytes)
{
    struct cw_rd r = {in, len, 0, false};
    cw_keystate_init(s);
    if (cw_rd_byte(&r) != TAG_KEYSTATE || cw_rd_byte(&r) != CW_CODEC_VERSION)
        return CW_EDECODE;
    uint64_t n = cw_rd_varint(&r);
    cw_rd_vc(&r, &s->replaced);
    /* Each version takes at least 5 bytes, so n is also bounded by the input. */
    if (r.bad || n > CW_SIBLINGS_HARD_MAX || n > len / 5)
        return CW_EDECODE;
    s->v = calloc(n ? (size_t)n : 1, sizeof(*s->v));
    if (s->v == NULL)
        return CW_ENOMEM;
    s->cap = (uint32_t)(n ? n : 1);
    for (uint64_t i = 0; i < n; i++) {
        rd_version(&r, &s->v[i], max_value_bytes);
        if (r.bad) {
            free(s->v[i].value);
            cw_keystate_free(s);
            return CW_EDECODE;
        }
        s->n++;
        /* Stored versions are in strictly increasing (ts, origin) order. */
        if (i > 0 && cw_dot_cmp(s->v[i - 1].dot, s->v[i].dot) >= 0) {
            cw_keystate_free(s);
            return CW_EDECODE;
        }
    }
    if (r.off != len) {
        cw_keystate_free(s);
        return CW_EDECODE;
    }
    return CW_OK;
}

int cw_encode_record(const struct cw_record *rec, uint8_t **out, uint32_t *len)
{
    size_t max =
        2 + 10 + 2 + CW_VC_ENCODED_MAX + 10 + rec->key_len + cw_version_encoded_max(&rec->version);
    uint8_t *buf = malloc(max);
    if (buf == NULL)
        return CW_ENOMEM;
    size_t n = 0;
    buf[n++] = TAG_RECORD;
    buf[n++] = CW_CODEC_VERSION;
    n += cw_varint_put(buf + n, rec->prev_ts);
    buf[n++] = rec->consistency;
    buf[n++] = rec->conflict;
    n += cw_vc_encode(&rec->deps, buf + n);
    n += cw_varint_put(buf + n, rec->key_len);
    memcpy(buf + n, rec->key, rec->key_len);
    n += rec->key_len;
    n += cw_encode_version(&rec->version, buf + n);
    *out = buf;
    *len = (uint32_t)n;
    return CW_OK;
}

int cw_decode_record(struct cw_record *rec, const uint8_t *in, size_t len, uint32_t max_value_bytes)
{
    struct cw_rd r = {in, len, 0, false};
    memset(rec, 0, sizeof(*rec));
    if (cw_rd_byte(&r) != TAG_RECORD || cw_rd_byte(&r) != CW_CODEC_VERSION)
        return CW_EDECODE;
    rec->prev_ts = cw_rd_varint(&r);
    rec->consistency = cw_rd_byte(&r);
    rec->conflict = cw_rd_byte(&r);
    cw_rd_vc(&r, &rec->deps);
    uint64_t klen = cw_rd_varint(&r);
    if (r.bad || rec->consistency > CW_STRONG || rec->conflict > CW_CONFLICT_SIBLINGS || klen < 3 ||
        klen > CW_BUCKET_NAME_MAX + 1 + CW_KEY_BYTES_MAX)
        return CW_EDECODE;
    const uint8_t *k = cw_rd_bytes(&r, (size_t)klen);
    if (k == NULL)
        return CW_EDECODE;
    rec->key = malloc((size_t)klen);
    if (rec->key == NULL)
        return CW_ENOMEM;
    memcpy(rec->key, k, (size_t)klen);
    rec->key_len = (uint32_t)klen;
    rd_version(&r, &rec->version, max_value_bytes);
    if (r.bad || r.off != len || rec->prev_ts >= rec->version.dot.ts) {
        cw_record_free(rec);
        return CW_EDECODE;
    }
    return CW_OK;
}

int cw_encode_meta(const struct cw_meta *m, uint8_t **out, uint32_t *len)
{
    uint8_t *buf = malloc(2 + 10 + 2 * CW_VC_ENCODED_MAX + 10);
    if (buf == NULL)
        return CW_ENOMEM;
    size_t n = 0;
    buf[n++] = TAG_META;
    buf[n++] = CW_CODEC_VERSION;
    n += cw_varint_put(buf + n, m->hlc);
    n += cw_vc_encode(&m->applied, buf + n);
    n += cw_vc_encode(&m->chain, buf + n);
    n += cw_varint_put(buf + n, m->stream_end);
    *out = buf;
    *len = (uint32_t)n;
    return CW_OK;
}

int cw_decode_meta(struct cw_meta *m, const uint8_t *in, size_t len)
{
    struct cw_rd r = {in, len, 0, false};
    memset(m, 0, sizeof(*m));
    if (cw_rd_byte(&r) != TAG_META || cw_rd_byte(&r) != CW_CODEC_VERSION)
        return CW_EDECODE;
    m->hlc = cw_rd_varint(&r);
    cw_rd_vc(&r, &m->applied);
    cw_rd_vc(&r, &m->chain);
    m->stream_end = cw_rd_varint(&r);
    if (r.bad || r.off != len)
        return CW_EDECODE;
    return CW_OK;
}
