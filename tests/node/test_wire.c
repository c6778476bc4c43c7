/*
 * test_wire.c - the wire codec: round trips of every message type, the LZ4
 * batch framing, protocol version checks, every bound (frame, batch, records,
 * values, keys, names, vectors, region ids) and truncated or corrupted input.
 *
 * Hostile frames are built with the generated protobuf-c types and LZ4 directly,
 * so each test breaks exactly one rule that the public encoders never break.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lz4frame.h>

#include <causeway/error.h>

#include "core/raft.h"
#include "core/replica.h"
#include "wire/causeway.pb-c.h"
#include "wire/wire.h"

/* ------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    /* xorshift64*: deterministic, so a failure replays exactly. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

/* Fills record r as written by origin with stamp ts after prev. */
static void make_record(struct cw_record *r, uint8_t origin, uint64_t prev, uint64_t ts,
                        const char *key, const void *value, uint32_t value_len, bool tombstone)
{
    memset(r, 0, sizeof(*r));
    r->prev_ts = prev;
    r->consistency = CW_CAUSAL;
    r->conflict = CW_CONFLICT_SIBLINGS;
    r->deps.ts[0] = ts - 5;
    r->deps.ts[2] = 77;
    r->key_len = (uint32_t)strlen(key);
    r->key = dup_bytes(key, r->key_len);
    r->version.dot.origin = origin;
    r->version.dot.ts = ts;
    r->version.tombstone = tombstone;
    r->version.kctx.ts[origin] = prev;
    r->version.kctx.ts[15] = 3;
    if (!tombstone && value_len) {
        r->version.value_len = value_len;
        r->version.value = dup_bytes(value, value_len);
    }
}

static void assert_vc_equal(const struct cw_vclock *a, const struct cw_vclock *b)
{
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        assert_int_equal(a->ts[i], b->ts[i]);
}

static void assert_version_equal(const struct cw_version *a, const struct cw_version *b)
{
    assert_int_equal(a->dot.origin, b->dot.origin);
    assert_int_equal(a->dot.ts, b->dot.ts);
    assert_int_equal(a->tombstone, b->tombstone);
    assert_vc_equal(&a->kctx, &b->kctx);
    assert_int_equal(a->value_len, b->value_len);
    if (a->value_len)
        assert_memory_equal(a->value, b->value, a->value_len);
    else
        assert_null(b->value);
}

static void assert_record_equal(const struct cw_record *a, const struct cw_record *b)
{
    assert_int_equal(a->prev_ts, b->prev_ts);
    assert_int_equal(a->consistency, b->consistency);
    assert_int_equal(a->conflict, b->conflict);
    assert_vc_equal(&a->deps, &b->deps);
    assert_int_equal(a->key_len, b->key_len);
    assert_memory_equal(a->key, b->key, a->key_len);
    assert_version_equal(&a->version, &b->version);
}

static void assert_msg_equal(const struct cw_msg *a, const struct cw_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_vc_equal(&a->applied, &b->applied);
    assert_vc_equal(&a->received, &b->received);
    assert_int_equal(a->clock, b->clock);
    assert_int_equal(a->stream_end, b->stream_end);
    assert_int_equal(a->stream_sent, b->stream_sent);
    assert_int_equal(a->resend_after, b->resend_after);
    assert_int_equal(a->n_records, b->n_records);
    for (uint32_t i = 0; i < a->n_records; i++)
        assert_record_equal(&a->records[i], &b->records[i]);
    assert_int_equal(a->raft == NULL, b->raft == NULL);
    if (a->raft != NULL) {
        const struct cw_raft_msg *x = a->raft, *y = b->raft;
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->from, y->from);
        assert_int_equal(x->to, y->to);
        assert_int_equal(x->flags, y->flags);
        assert_int_equal(x->term, y->term);
        assert_int_equal(x->log_term, y->log_term);
        assert_int_equal(x->index, y->index);
        assert_int_equal(x->commit, y->commit);
        assert_int_equal(x->reject, y->reject);
        assert_int_equal(x->reject_hint, y->reject_hint);
        assert_int_equal(x->ctx, y->ctx);
        assert_int_equal(x->n_entries, y->n_entries);
        for (uint32_t i = 0; i < x->n_entries; i++) {
            assert_int_equal(x->entries[i].term, y->entries[i].term);
            assert_int_equal(x->entries[i].index, y->entries[i].index);
            assert_int_equal(x->entries[i].type, y->entries[i].type);
            assert_int_equal(x->entries[i].len, y->entries[i].len);
            if (x->entries[i].len)
                assert_memory_equal(x->entries[i].data, y->entries[i].data, x->entries[i].len);
        }
        assert_int_equal(x->snap_len, y->snap_len);
        if (x->snap_len)
            assert_memory_equal(x->snap, y->snap, x->snap_len);
    }
}

/* A RECORDS message from region 1 to 0 with n records; every third is a
 * tombstone, the others carry value_len bytes (repetitive when fill >= 0,
 * random otherwise). */
static void make_records_msg(struct cw_msg *m, uint32_t n, uint32_t value_len, int fill)
{
    memset(m, 0, sizeof(*m));
    m->type = CW_MSG_RECORDS;
    m->from = 1;
    m->to = 0;
    m->applied.ts[0] = 100;
    m->applied.ts[1] = 200;
    m->received.ts[1] = 250;
    m->records = calloc(n, sizeof(*m->records));
    assert_non_null(m->records);
    uint8_t *value = malloc(value_len ? value_len : 1);
    assert_non_null(value);
    uint64_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < value_len; j++)
            value[j] = fill >= 0 ? (uint8_t)fill : (uint8_t)rng_next();
        char key[64];
        snprintf(key, sizeof(key), "photos/key-%u", i);
        uint64_t ts = 1000 + 10 * (uint64_t)i;
        make_record(&m->records[i], 1, prev, ts, key, value, value_len, i % 3 == 2);
        m->n_records++;
        prev = ts;
    }
    free(value);
}

static void peer_round_trip(const struct cw_msg *m)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_peer(m, &buf, &len), CW_OK);
    assert_true(len > 0);
    struct cw_msg d;
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
    assert_msg_equal(m, &d);
    cw_msg_free(&d);
    free(buf);
}

/* Packs any generated message into a malloc'd buffer. */
static uint8_t *pack_pb(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

static uint8_t *lz4_compress(const void *src, size_t n, size_t declared, size_t *out_len)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.contentSize = declared;
    size_t bound = LZ4F_compressFrameBound(n, &prefs);
    uint8_t *buf = malloc(bound);
    assert_non_null(buf);
    *out_len = LZ4F_compressFrame(buf, bound, src, n, &prefs);
    assert_false(LZ4F_isError(*out_len));
    return buf;
}

/* XXH32 of a short input (< 16 bytes), for the LZ4 frame header checksum. */
static uint32_t xxh32_short(const uint8_t *p, size_t n)
{
    const uint32_t p1 = 2654435761u, p2 = 2246822519u, p3 = 3266489917u, p4 = 668265263u,
                   p5 = 374761393u;
    uint32_t h = p5 + (uint32_t)n;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t w = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 |
                     (uint32_t)p[i + 3] << 24;
        h += w * p3;
        h = ((h << 17) | (h >> 15)) * p4;
    }
    for (; i < n; i++) {
        h += p[i] * p5;
        h = ((h << 11) | (h >> 21)) * p1;
    }
    h ^= h >> 15;
    h *= p2;
    h ^= h >> 13;
    h *= p3;
    h ^= h >> 16;
    return h;
}

/* An LZ4 frame written by hand, so it can lie: it declares `declared` bytes of
 * content and holds data as one uncompressed block. */
static uint8_t *lz4_raw_frame(const void *data, size_t n, uint64_t declared, size_t *out_len)
{
    uint8_t *f = malloc(4 + 11 + 4 + n + 4);
    assert_non_null(f);
    size_t k = 0;
    f[k++] = 0x04, f[k++] = 0x22, f[k++] = 0x4d, f[k++] = 0x18;
    f[k++] = 0x40 | 0x20 | 0x08; /* version 1, independent blocks, content size */
    f[k++] = 0x40;               /* 64 KiB blocks */
    for (int i = 0; i < 8; i++)
        f[k++] = (uint8_t)(declared >> (8 * i));
    f[k] = (uint8_t)(xxh32_short(f + 4, k - 4) >> 8);
    k++;
    uint32_t bsize = (uint32_t)n | 0x80000000u; /* stored, not compressed */
    for (int i = 0; i < 4; i++)
        f[k++] = (uint8_t)(bsize >> (8 * i));
    memcpy(f + k, data, n);
    k += n;
    memset(f + k, 0, 4); /* end mark */
    k += 4;
    *out_len = k;
    return f;
}

/* A PeerFrame envelope around a hand-made batch (borrowed). */
static uint8_t *peer_with_batch(const uint8_t *batch, size_t batch_len, uint32_t n_records,
                                size_t *len)
{
    Causeway__PeerFrame pf = CAUSEWAY__PEER_FRAME__INIT;
    pf.version = CW_WIRE_VERSION;
    pf.type = CAUSEWAY__PEER_TYPE__PEER_RECORDS;
    pf.from_region = 1;
    pf.n_records = n_records;
    pf.batch.len = batch_len;
    pf.batch.data = (uint8_t *)batch;
    return pack_pb(&pf.base, len);
}

/* One valid serialized RecordBatch of n records (key "b/k", value 'v' x vlen). */
static uint8_t *raw_batch(uint32_t n, size_t vlen, size_t *len)
{
    Causeway__Record *recs = calloc(n, sizeof(*recs));
    Causeway__Version *vers = calloc(n, sizeof(*vers));
    Causeway__Record **ptrs = calloc(n, sizeof(*ptrs));
    uint8_t *value = malloc(vlen ? vlen : 1);
    assert_true(recs && vers && ptrs && value);
    memset(value, 'v', vlen);
    for (uint32_t i = 0; i < n; i++) {
        causeway__record__init(&recs[i]);
        causeway__version__init(&vers[i]);
        vers[i].origin = 1;
        vers[i].ts = 10 + i;
        vers[i].value.len = vlen;
        vers[i].value.data = value;
        recs[i].prev_ts = i ? 9 + i : 0;
        recs[i].key.len = 3;
        recs[i].key.data = (uint8_t *)"b/k";
        recs[i].version = &vers[i];
        ptrs[i] = &recs[i];
    }
    Causeway__RecordBatch rb = CAUSEWAY__RECORD_BATCH__INIT;
    rb.n_records = n;
    rb.records = ptrs;
    uint8_t *out = pack_pb(&rb.base, len);
    free(value);
    free(ptrs);
    free(vers);
    free(recs);
    return out;
}

static struct cw_wire_request sample_put(void)
{
    struct cw_wire_request r;
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_PUT;
    r.req_id = 0x1122334455667788ull;
    strcpy(r.bucket, "photos");
    r.key = (uint8_t *)"cat\0with-nul";
    r.key_len = 12;
    r.value = (uint8_t *)"meow";
    r.value_len = 4;
    r.context.ts[0] = 5;
    r.context.ts[3] = UINT64_MAX;
    r.has_kctx = true;
    r.kctx.ts[1] = 9;
    return r;
}

/* ----------------------------------------------------------- peer frames */

static void test_limits_default(void **state)
{
    (void)state;
    struct cw_wire_limits l;
    cw_wire_limits_default(&l);
    assert_int_equal(l.frame_bytes_max, 8u << 20);
    assert_int_equal(l.batch_bytes_max, 64u << 20);
    assert_int_equal(l.records_max, 4096);
    assert_int_equal(l.value_bytes_max, 1u << 20);
}

static void test_peer_heartbeat_and_nack_round_trip(void **state)
{
    (void)state;
    struct cw_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CW_MSG_HEARTBEAT;
    m.from = 15;
    m.to = 3;
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++) {
        m.applied.ts[i] = (uint64_t)i * 1000 + 1;
        m.received.ts[i] = UINT64_MAX - i;
    }
    m.clock = 123456789;
    m.stream_end = 99;
    m.stream_sent = 98;
    peer_round_trip(&m);

    memset(&m, 0, sizeof(m));
    m.type = CW_MSG_NACK;
    m.from = 0;
    m.to = 1;
    m.resend_after = 4242;
    m.applied.ts[1] = 4242;
    peer_round_trip(&m);

    /* An all-zero heartbeat still carries its version and type. */
    memset(&m, 0, sizeof(m));
    m.type = CW_MSG_HEARTBEAT;
    peer_round_trip(&m);
}

static void test_peer_records_round_trip(void **state)
{
    (void)state;
    struct cw_msg m;
    make_records_msg(&m, 7, 300, -1);
    /* Edge cases: an empty value that is not a tombstone, the largest value
     * the default limits take, and a key of the longest allowed size. */
    free(m.records[0].version.value);
    m.records[0].version.value = NULL;
    m.records[0].version.value_len = 0;
    free(m.records[1].version.value);
    m.records[1].version.value_len = CW_WIRE_VALUE_BYTES_MAX;
    m.records[1].version.value = malloc(CW_WIRE_VALUE_BYTES_MAX);
    assert_non_null(m.records[1].version.value);
    memset(m.records[1].version.value, 'x', CW_WIRE_VALUE_BYTES_MAX);
    free(m.records[3].key);
    m.records[3].key_len = CW_WIRE_FULL_KEY_MAX;
    m.records[3].key = malloc(CW_WIRE_FULL_KEY_MAX);
    memset(m.records[3].key, 'k', CW_WIRE_FULL_KEY_MAX);
    assert_true(m.records[2].version.tombstone);
    peer_round_trip(&m);
    cw_msg_free(&m);
}

static void test_peer_records_use_lz4(void **state)
{
    (void)state;
    struct cw_msg m;
    make_records_msg(&m, 100, 1000, 'a');
    size_t raw_values = 0;
    for (uint32_t i = 0; i < m.n_records; i++)
        raw_values += m.records[i].version.value_len;
    assert_true(raw_values >= 60000);
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_OK);
    /* Repetitive values shrink a lot: only a compressed batch gets here. */
    assert_true(len * 10 < raw_values);
    /* The batch is a real LZ4 frame: its magic number is in the frame. */
    static const uint8_t magic[4] = {0x04, 0x22, 0x4d, 0x18};
    bool found = false;
    for (size_t i = 0; i + 4 <= len && !found; i++)
        found = memcmp(buf + i, magic, 4) == 0;
    assert_true(found);
    Causeway__PeerFrame *pf = causeway__peer_frame__unpack(NULL, len, buf);
    assert_non_null(pf);
    assert_int_equal(pf->n_records, 100);
    LZ4F_dctx *dctx;
    assert_false(LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)));
    LZ4F_frameInfo_t info;
    size_t consumed = pf->batch.len;
    assert_false(LZ4F_isError(LZ4F_getFrameInfo(dctx, &info, pf->batch.data, &consumed)));
    /* The header declares the decompressed size, as the protocol requires. */
    assert_true(info.contentSize > raw_values);
    LZ4F_freeDecompressionContext(dctx);
    causeway__peer_frame__free_unpacked(pf, NULL);

    struct cw_msg d;
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
    assert_msg_equal(&m, &d);
    cw_msg_free(&d);
    free(buf);
    cw_msg_free(&m);
}

/* The replication byte accounting (docs/protocol.md, section 5.5). One record
 * worked out by hand: RecordBatch { records: Record { prev_ts 5 (2 bytes),
 * deps [7] (packed: tag, length, 1 byte = 3), key "kv/a" (tag, length, 4 = 6),
 * version (tag, length, 13 = 15: origin 1 (2), ts 300 (tag + 2 = 3), kctx [5]
 * (3), value "xyz" (tag, length, 3 = 5)) = 26 } } = tag, length, 26 = 28
 * bytes, of which 4 key and 3 value: 21 bytes of metadata. */
static void test_peer_records_counted(void **state)
{
    (void)state;
    struct cw_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CW_MSG_RECORDS;
    m.from = 1;
    m.to = 0;
    struct cw_record rec;
    memset(&rec, 0, sizeof(rec));
    rec.prev_ts = 5;
    rec.deps.ts[0] = 7;
    rec.key = (uint8_t *)"kv/a";
    rec.key_len = 4;
    rec.version.dot.origin = 1;
    rec.version.dot.ts = 300;
    rec.version.kctx.ts[0] = 5;
    rec.version.value = (uint8_t *)"xyz";
    rec.version.value_len = 3;
    m.records = &rec;
    m.n_records = 1;
    struct cw_wire_repl_stats acc;
    memset(&acc, 0, sizeof(acc));
    uint8_t *buf;
    size_t len;
    uint32_t next;
    assert_int_equal(cw_wire_encode_peer_counted(&m, 0, &next, &buf, &len, &acc), CW_OK);
    assert_int_equal(next, 1);
    assert_int_equal(acc.records, 1);
    assert_int_equal(acc.frames, 1);
    assert_int_equal(acc.key_bytes, 4);
    assert_int_equal(acc.value_bytes, 3);
    assert_int_equal(acc.batch_bytes, 28);
    assert_int_equal(acc.metadata_bytes, 21);
    assert_int_equal(acc.frame_bytes, len);
    free(buf);

    /* A batch of many records: every figure against the frame itself. */
    struct cw_msg big;
    make_records_msg(&big, 50, 100, 'v');
    uint64_t keys = 0, values = 0;
    for (uint32_t i = 0; i < big.n_records; i++) {
        keys += big.records[i].key_len;
        values += big.records[i].version.value_len;
    }
    struct cw_wire_repl_stats before = acc;
    assert_int_equal(cw_wire_encode_peer_counted(&big, 0, &next, &buf, &len, &acc), CW_OK);
    assert_int_equal(next, 50);
    assert_int_equal(acc.records - before.records, 50);
    assert_int_equal(acc.frames - before.frames, 1);
    assert_int_equal(acc.key_bytes - before.key_bytes, keys);
    assert_int_equal(acc.value_bytes - before.value_bytes, values);
    assert_int_equal(acc.frame_bytes - before.frame_bytes, len);
    Causeway__PeerFrame *pf = causeway__peer_frame__unpack(NULL, len, buf);
    assert_non_null(pf);
    assert_int_equal(acc.batch_lz4_bytes - before.batch_lz4_bytes, pf->batch.len);
    LZ4F_dctx *dctx;
    assert_false(LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)));
    LZ4F_frameInfo_t info;
    size_t consumed = pf->batch.len;
    assert_false(LZ4F_isError(LZ4F_getFrameInfo(dctx, &info, pf->batch.data, &consumed)));
    LZ4F_freeDecompressionContext(dctx);
    /* Before LZ4: the declared (and checked by the decoder) content size. */
    assert_int_equal(acc.batch_bytes - before.batch_bytes, info.contentSize);
    assert_int_equal(acc.metadata_bytes - before.metadata_bytes, info.contentSize - keys - values);
    /* Repeated values compress: the ratio the status reports is above 1. */
    assert_true(acc.batch_lz4_bytes - before.batch_lz4_bytes < info.contentSize);
    causeway__peer_frame__free_unpacked(pf, NULL);
    free(buf);

    /* Other frame types, a failed encoding and a NULL accumulator add nothing. */
    before = acc;
    struct cw_msg hb;
    memset(&hb, 0, sizeof(hb));
    hb.type = CW_MSG_HEARTBEAT;
    hb.from = 1;
    assert_int_equal(cw_wire_encode_peer_counted(&hb, 0, &next, &buf, &len, &acc), CW_OK);
    free(buf);
    assert_int_equal(cw_wire_encode_peer_counted(&big, 50, &next, &buf, &len, &acc), CW_EINVAL);
    assert_int_equal(cw_wire_encode_peer_counted(&big, 0, &next, &buf, &len, NULL), CW_OK);
    free(buf);
    assert_memory_equal(&before, &acc, sizeof(acc));
    cw_msg_free(&big);
}

static void test_peer_split_large_batch(void **state)
{
    (void)state;
    /* Twelve incompressible 1 MiB values cannot share one 8 MiB frame. */
    struct cw_msg m;
    make_records_msg(&m, 12, CW_WIRE_VALUE_BYTES_MAX, -1);
    for (uint32_t i = 0; i < m.n_records; i++) {
        if (m.records[i].version.tombstone) {
            cw_record_free(&m.records[i]);
            make_record(&m.records[i], 1, i ? m.records[i - 1].version.dot.ts : 0,
                        1000 + 10 * (uint64_t)i, "photos/big", "z", 1, false);
        }
    }
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_ETOOBIG);
    assert_null(buf);

    uint32_t first = 0, parts = 0, seen = 0;
    while (first < m.n_records) {
        uint32_t next;
        assert_int_equal(cw_wire_encode_peer_part(&m, first, &next, &buf, &len), CW_OK);
        assert_true(next > first);
        assert_true(len <= CW_WIRE_FRAME_BYTES_MAX);
        struct cw_msg d;
        assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
        assert_int_equal(d.n_records, next - first);
        assert_vc_equal(&d.applied, &m.applied);
        for (uint32_t i = 0; i < d.n_records; i++)
            assert_record_equal(&m.records[first + i], &d.records[i]);
        seen += d.n_records;
        cw_msg_free(&d);
        free(buf);
        first = next;
        parts++;
    }
    assert_int_equal(seen, m.n_records);
    assert_true(parts >= 2);
    cw_msg_free(&m);
}

static void test_peer_encode_rejects(void **state)
{
    (void)state;
    uint8_t *buf = (uint8_t *)1;
    size_t len = 1;
    struct cw_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CW_MSG_RECORDS; /* without records */
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    assert_null(buf);
    assert_int_equal(len, 0);
    m.type = (enum cw_msg_type)9;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.type = CW_MSG_HEARTBEAT;
    m.from = CW_REGIONS_MAX;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.from = 0;
    m.to = CW_REGIONS_MAX;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);

    make_records_msg(&m, 2, 10, 'q');
    m.records[1].version.dot.origin = CW_REGIONS_MAX;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.records[1].version.dot.origin = 1;
    m.records[0].key_len = CW_WIRE_FULL_KEY_MAX + 1;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.records[0].key_len = 3;
    uint32_t next;
    assert_int_equal(cw_wire_encode_peer_part(&m, 2, &next, &buf, &len), CW_EINVAL);
    cw_msg_free(&m);
}

static void test_peer_version_mismatch(void **state)
{
    (void)state;
    struct cw_msg m;
    make_records_msg(&m, 2, 10, 'a');
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_OK);
    /* Field 1 (version) comes first: tag 0x08, then the varint 1. */
    assert_int_equal(buf[0], 0x08);
    assert_int_equal(buf[1], CW_WIRE_VERSION);
    struct cw_msg d;
    buf[1] = 2;
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EVERSION);
    assert_int_equal(d.n_records, 0);
    assert_null(d.records);
    /* No version field at all means version 0. */
    assert_int_equal(cw_wire_decode_peer(buf + 2, len - 2, NULL, &d), CW_EVERSION);
    free(buf);
    cw_msg_free(&m);

    Causeway__PeerFrame pf = CAUSEWAY__PEER_FRAME__INIT;
    pf.version = 7;
    pf.type = CAUSEWAY__PEER_TYPE__PEER_HEARTBEAT;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EVERSION);
    free(buf);
}

static void test_peer_limits(void **state)
{
    (void)state;
    struct cw_msg m, d;
    make_records_msg(&m, 30, 2000, 'b');
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_OK);
    struct cw_wire_limits lim;

    cw_wire_limits_default(&lim);
    assert_int_equal(cw_wire_decode_peer(buf, len, &lim, &d), CW_OK);
    cw_msg_free(&d);

    cw_wire_limits_default(&lim);
    lim.frame_bytes_max = len - 1;
    assert_int_equal(cw_wire_decode_peer(buf, len, &lim, &d), CW_ETOOBIG);
    assert_null(d.records);

    cw_wire_limits_default(&lim);
    lim.records_max = 29;
    assert_int_equal(cw_wire_decode_peer(buf, len, &lim, &d), CW_ETOOBIG);

    cw_wire_limits_default(&lim);
    lim.batch_bytes_max = 20 * 2000; /* the 20 values (10 are tombstones) fill it */
    assert_int_equal(cw_wire_decode_peer(buf, len, &lim, &d), CW_ETOOBIG);

    cw_wire_limits_default(&lim);
    lim.value_bytes_max = 1999;
    assert_int_equal(cw_wire_decode_peer(buf, len, &lim, &d), CW_ETOOBIG);
    assert_int_equal(d.n_records, 0);
    assert_null(d.records);
    lim.value_bytes_max = 2000;
    assert_int_equal(cw_wire_decode_peer(buf, len, &lim, &d), CW_OK);
    cw_msg_free(&d);
    free(buf);
    cw_msg_free(&m);
}

static void test_peer_bad_envelopes(void **state)
{
    (void)state;
    struct cw_msg d;
    size_t len;
    uint8_t *buf;
    uint64_t wide[CW_REGIONS_MAX + 1];
    for (unsigned i = 0; i <= CW_REGIONS_MAX; i++)
        wide[i] = i + 1;

    Causeway__PeerFrame pf = CAUSEWAY__PEER_FRAME__INIT;
    pf.version = CW_WIRE_VERSION;
    pf.type = CAUSEWAY__PEER_TYPE__PEER_HEARTBEAT;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
    free(buf);

    pf.from_region = CW_REGIONS_MAX;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pf.from_region = 0;
    pf.to_region = 200;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pf.to_region = 0;

    pf.n_applied = CW_REGIONS_MAX + 1;
    pf.applied = wide;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pf.n_applied = CW_REGIONS_MAX;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
    assert_int_equal(d.applied.ts[15], 16);
    free(buf);
    pf.n_applied = 0;

    pf.type = (Causeway__PeerType)7; /* past PEER_RAFT */
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pf.type = CAUSEWAY__PEER_TYPE__PEER_TYPE_UNSPECIFIED;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);

    /* A heartbeat carrying a batch, and RECORDS without one. */
    pf.type = CAUSEWAY__PEER_TYPE__PEER_NACK;
    pf.batch.len = 3;
    pf.batch.data = (uint8_t *)"abc";
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pf.batch.len = 0;
    pf.batch.data = NULL;
    pf.type = CAUSEWAY__PEER_TYPE__PEER_RECORDS;
    pf.n_records = 1;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);

    /* Not protobuf at all, and the empty frame. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(cw_wire_decode_peer(junk, sizeof(junk), NULL, &d), CW_EDECODE);
    assert_int_equal(cw_wire_decode_peer(NULL, 0, NULL, &d), CW_EDECODE);

    /* A singular field twice: protobuf would take the last, the protocol
     * forbids it. */
    pf.type = CAUSEWAY__PEER_TYPE__PEER_HEARTBEAT;
    pf.n_records = 0;
    buf = pack_pb(&pf.base, &len); /* clock is 0, so not in buf */
    uint8_t *twice = malloc(len + 4);
    memcpy(twice, buf, len);
    memcpy(twice + len, "\x38\x05\x38\x06", 4); /* field 7 (clock), varint */
    assert_int_equal(cw_wire_decode_peer(twice, len + 2, NULL, &d), CW_OK);
    assert_int_equal(d.clock, 5);
    assert_int_equal(cw_wire_decode_peer(twice, len + 4, NULL, &d), CW_EDECODE);
    free(twice);
    free(buf);

    /* Unknown fields are ignored, up to a bound. */
    buf = pack_pb(&pf.base, &len);
    uint8_t *unk = malloc(len + 3 * 17);
    memcpy(unk, buf, len);
    for (unsigned i = 0; i < 17; i++) {
        unsigned tag = (100 + i) << 3; /* fields 100.., varint: a two-byte tag */
        unk[len + 3 * i] = (uint8_t)(0x80 | (tag & 0x7f));
        unk[len + 3 * i + 1] = (uint8_t)(tag >> 7);
        unk[len + 3 * i + 2] = 1;
    }
    assert_int_equal(cw_wire_decode_peer(unk, len + 3 * 16, NULL, &d), CW_OK);
    assert_int_equal(cw_wire_decode_peer(unk, len + 3 * 17, NULL, &d), CW_EDECODE);
    free(unk);
    free(buf);
}

static void test_peer_bad_batches(void **state)
{
    (void)state;
    struct cw_msg d;
    size_t raw_len, z_len, len;
    uint8_t *raw = raw_batch(3, 100, &raw_len);

    /* The reference: a well-formed hand-made batch decodes. */
    uint8_t *z = lz4_compress(raw, raw_len, raw_len, &z_len);
    uint8_t *buf = peer_with_batch(z, z_len, 3, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
    assert_int_equal(d.n_records, 3);
    assert_int_equal(d.records[2].version.dot.ts, 12);
    cw_msg_free(&d);
    free(buf);

    /* The declared count must match the batch. */
    buf = peer_with_batch(z, z_len, 2, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    buf = peer_with_batch(z, z_len, 4, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    buf = peer_with_batch(z, z_len, 0, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);

    /* Trailing bytes after the frame, and a truncated frame. */
    uint8_t *longer = malloc(z_len + 1);
    memcpy(longer, z, z_len);
    longer[z_len] = 0;
    buf = peer_with_batch(longer, z_len + 1, 3, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    free(longer);
    for (size_t cut = 0; cut < z_len; cut++) {
        buf = peer_with_batch(z, cut, 3, &len);
        assert_int_not_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
        free(buf);
    }
    free(z);

    /* Without a content size in the header. */
    z = lz4_compress(raw, raw_len, 0, &z_len);
    buf = peer_with_batch(z, z_len, 3, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    free(z);

    /* The hand-made frame is accepted when it tells the truth ... */
    z = lz4_raw_frame(raw, raw_len, raw_len, &z_len);
    buf = peer_with_batch(z, z_len, 3, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
    assert_int_equal(d.n_records, 3);
    cw_msg_free(&d);
    free(buf);
    free(z);
    /* ... and refused when its declared size is a lie, either way. */
    z = lz4_raw_frame(raw, raw_len, raw_len + 1, &z_len);
    buf = peer_with_batch(z, z_len, 3, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    free(z);
    z = lz4_raw_frame(raw, raw_len, raw_len - 1, &z_len);
    buf = peer_with_batch(z, z_len, 3, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    free(z);

    /* A declared size over the bound is refused before anything is allocated
     * for it; an honest frame whose content is over the bound likewise. */
    z = lz4_raw_frame(raw, raw_len, 64ull << 30, &z_len);
    buf = peer_with_batch(z, z_len, 3, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_ETOOBIG);
    free(buf);
    free(z);
    struct cw_wire_limits lim;
    cw_wire_limits_default(&lim);
    lim.batch_bytes_max = raw_len - 1;
    z = lz4_compress(raw, raw_len, raw_len, &z_len);
    buf = peer_with_batch(z, z_len, 3, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, &lim, &d), CW_ETOOBIG);
    free(buf);
    free(z);
    free(raw);

    /* More records than records_max inside a batch that declares fewer. */
    raw = raw_batch(5, 0, &raw_len);
    z = lz4_compress(raw, raw_len, raw_len, &z_len);
    cw_wire_limits_default(&lim);
    lim.records_max = 4;
    buf = peer_with_batch(z, z_len, 4, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, &lim, &d), CW_EDECODE);
    free(buf);
    buf = peer_with_batch(z, z_len, 5, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, &lim, &d), CW_ETOOBIG);
    free(buf);
    free(z);
    free(raw);

    /* Not LZ4, and a compressed batch that is not a RecordBatch. */
    buf = peer_with_batch((const uint8_t *)"hello world", 11, 1, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    static const uint8_t notpb[] = {0x0a, 0x50, 0x01};
    z = lz4_compress(notpb, sizeof(notpb), sizeof(notpb), &z_len);
    buf = peer_with_batch(z, z_len, 1, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    free(z);
}

static void test_peer_bad_records(void **state)
{
    (void)state;
    struct cw_msg d;
    uint64_t wide[CW_REGIONS_MAX + 1] = {0};
    uint8_t key[CW_WIRE_FULL_KEY_MAX + 1];
    memset(key, 'k', sizeof(key));
    for (int rule = 0; rule < 7; rule++) {
        Causeway__Record rec = CAUSEWAY__RECORD__INIT;
        Causeway__Version ver = CAUSEWAY__VERSION__INIT;
        Causeway__Record *ptr = &rec;
        ver.origin = 1;
        ver.ts = 10;
        rec.key.len = 3;
        rec.key.data = key;
        rec.version = &ver;
        int want = CW_EDECODE;
        switch (rule) {
        case 0:
            ver.origin = CW_REGIONS_MAX;
            break;
        case 1:
            rec.n_deps = CW_REGIONS_MAX + 1;
            rec.deps = wide;
            break;
        case 2:
            ver.n_kctx = CW_REGIONS_MAX + 1;
            ver.kctx = wide;
            break;
        case 3:
            rec.key.len = CW_WIRE_FULL_KEY_MAX + 1;
            want = CW_ETOOBIG;
            break;
        case 4:
            rec.version = NULL;
            break;
        case 5:
            ver.tombstone = true;
            ver.value.len = 1;
            ver.value.data = key;
            break;
        case 6:
            rec.consistency = 256;
            break;
        }
        Causeway__RecordBatch rb = CAUSEWAY__RECORD_BATCH__INIT;
        rb.n_records = 1;
        rb.records = &ptr;
        size_t raw_len, z_len, len;
        uint8_t *raw = pack_pb(&rb.base, &raw_len);
        uint8_t *z = lz4_compress(raw, raw_len, raw_len, &z_len);
        uint8_t *buf = peer_with_batch(z, z_len, 1, &len);
        assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), want);
        assert_null(d.records);
        free(buf);
        free(z);
        free(raw);
    }
}

static void test_peer_truncated_and_corrupted(void **state)
{
    (void)state;
    struct cw_msg m, d;
    make_records_msg(&m, 5, 64, -1);
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_OK);
    /* The batch is the last field, so every strict prefix is an error. */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = dup_bytes(buf, cut);
        assert_int_not_equal(cw_wire_decode_peer(copy, cut, NULL, &d), CW_OK);
        assert_null(d.records);
        free(copy);
    }
    /* Every single-byte corruption decodes or fails cleanly (ASan watches). */
    for (size_t i = 0; i < len; i++) {
        uint8_t *copy = dup_bytes(buf, len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        if (cw_wire_decode_peer(copy, len, NULL, &d) == CW_OK)
            cw_msg_free(&d);
        free(copy);
    }
    free(buf);
    cw_msg_free(&m);
}

/* ---------------------------------------------------------- Raft frames */

/* A CW_MSG_RAFT message from region 2 to 5 of the given Raft type, with every
 * scalar field set; n_entries entries of entry_len bytes (index after 40, the
 * first a NOOP) and a snapshot of snap_len bytes. */
static void make_raft_msg(struct cw_msg *m, uint8_t type, uint32_t n_entries, uint32_t entry_len,
                          uint32_t snap_len)
{
    memset(m, 0, sizeof(*m));
    m->type = CW_MSG_RAFT;
    m->from = 2;
    m->to = 5;
    struct cw_raft_msg *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    m->raft = r;
    r->type = type;
    r->from = 2;
    r->to = 5;
    r->flags = type == CW_RAFT_VOTE ? CW_RAFT_F_TRANSFER : 0;
    r->term = 7;
    r->log_term = 6;
    r->index = 40;
    r->commit = 39;
    r->reject = type == CW_RAFT_APPEND_RESP;
    r->reject_hint = r->reject ? 33 : 0;
    r->ctx = UINT64_MAX - type;
    if (n_entries) {
        r->entries = calloc(n_entries, sizeof(*r->entries));
        assert_non_null(r->entries);
        for (uint32_t i = 0; i < n_entries; i++) {
            struct cw_raft_entry *e = &r->entries[i];
            e->term = 7;
            e->index = 41 + i;
            e->type = i == 0 ? CW_RAFT_ENTRY_NOOP : CW_RAFT_ENTRY_DATA;
            if (i > 0 && entry_len) {
                e->len = entry_len;
                e->data = malloc(entry_len);
                assert_non_null(e->data);
                for (uint32_t j = 0; j < entry_len; j++)
                    e->data[j] = (uint8_t)rng_next();
            }
            r->n_entries++;
        }
    }
    if (snap_len) {
        r->snap = malloc(snap_len);
        assert_non_null(r->snap);
        for (uint32_t j = 0; j < snap_len; j++)
            r->snap[j] = (uint8_t)(j * 31 + 7);
        r->snap_len = snap_len;
    }
}

static void test_peer_raft_round_trip(void **state)
{
    (void)state;
    struct cw_msg m;
    /* Every type, with only the scalar fields. */
    for (uint8_t t = CW_RAFT_PREVOTE; t <= CW_RAFT_PROPOSE; t++) {
        make_raft_msg(&m, t, 0, 0, 0);
        peer_round_trip(&m);
        cw_msg_free(&m);
    }
    /* APPEND with a NOOP and commands, PROPOSE, an empty heartbeat. */
    make_raft_msg(&m, CW_RAFT_APPEND, 5, 300, 0);
    peer_round_trip(&m);
    cw_msg_free(&m);
    make_raft_msg(&m, CW_RAFT_PROPOSE, 3, 17, 0);
    m.raft->entries[0].type = CW_RAFT_ENTRY_DATA;
    peer_round_trip(&m);
    cw_msg_free(&m);
    /* The most entries a message may carry, and the largest entry. */
    make_raft_msg(&m, CW_RAFT_APPEND, CW_RAFT_MSG_ENTRIES_MAX, 8, 0);
    peer_round_trip(&m);
    cw_msg_free(&m);
    make_raft_msg(&m, CW_RAFT_APPEND, 2, CW_RAFT_ENTRY_BYTES_MAX, 0);
    peer_round_trip(&m);
    cw_msg_free(&m);
    /* Snapshots: small, and the largest one (it fits one frame). */
    make_raft_msg(&m, CW_RAFT_SNAP, 0, 0, 1000);
    peer_round_trip(&m);
    cw_msg_free(&m);
    make_raft_msg(&m, CW_RAFT_SNAP, 0, 0, CW_RAFT_SNAP_BYTES_MAX);
    peer_round_trip(&m);
    cw_msg_free(&m);
    /* Zero and extreme values. */
    make_raft_msg(&m, CW_RAFT_HEARTBEAT, 0, 0, 0);
    m.from = m.raft->from = 15;
    m.to = m.raft->to = 0;
    m.raft->term = UINT64_MAX;
    m.raft->commit = 0;
    peer_round_trip(&m);
    cw_msg_free(&m);
}

static void test_peer_raft_encode_rejects(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    struct cw_msg m;

    memset(&m, 0, sizeof(m));
    m.type = CW_MSG_RAFT; /* no Raft message */
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    assert_null(buf);

    make_raft_msg(&m, CW_RAFT_APPEND, 3, 10, 0);
    m.raft->from = 3; /* disagrees with the envelope */
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.raft->from = 2;
    m.raft->to = 4;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.raft->to = 5;
    m.applied.ts[0] = 1; /* a replication field */
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.applied.ts[0] = 0;
    m.flags = CW_MSGF_REBUILDING;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.flags = 0;
    m.raft->type = 0;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.raft->type = CW_RAFT_PROPOSE + 1;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.raft->type = CW_RAFT_APPEND;
    m.raft->flags = 2;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.raft->flags = 0;
    m.raft->entries[1].type = 2;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.raft->entries[1].type = CW_RAFT_ENTRY_DATA;
    m.raft->entries[1].len = CW_RAFT_ENTRY_BYTES_MAX + 1;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.raft->entries[1].len = 10;
    m.raft->snap_len = 1; /* a length without its bytes */
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    m.raft->snap_len = 0;
    uint32_t next;
    assert_int_equal(cw_wire_encode_peer_part(&m, 1, &next, &buf, &len), CW_EINVAL);
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_OK);
    free(buf);
    /* A Raft message on another frame type. */
    m.type = CW_MSG_HEARTBEAT;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    cw_msg_free(&m);

    /* Too many entries, and entries whose sum passes the frame bound. */
    make_raft_msg(&m, CW_RAFT_APPEND, CW_RAFT_MSG_ENTRIES_MAX + 1, 0, 0);
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_EINVAL);
    cw_msg_free(&m);
    make_raft_msg(&m, CW_RAFT_APPEND, 3, CW_RAFT_ENTRY_BYTES_MAX, 0);
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_ETOOBIG);
    assert_null(buf);
    assert_int_equal(len, 0);
    cw_msg_free(&m);
}

/* A RAFT PeerFrame built by hand around rm (borrowed), regions 1 -> 0. */
static uint8_t *raft_frame(Causeway__RaftMessage *rm, size_t *len)
{
    Causeway__PeerFrame pf = CAUSEWAY__PEER_FRAME__INIT;
    pf.version = CW_WIRE_VERSION;
    pf.type = CAUSEWAY__PEER_TYPE__PEER_RAFT;
    pf.from_region = 1;
    pf.raft = rm;
    return pack_pb(&pf.base, len);
}

static void test_peer_raft_bad_frames(void **state)
{
    (void)state;
    struct cw_msg d;
    size_t len;
    uint8_t *buf;
    enum { N = CW_RAFT_MSG_ENTRIES_MAX + 1 };
    Causeway__RaftEntry *ents = calloc(N, sizeof(*ents));
    Causeway__RaftEntry **ptrs = calloc(N, sizeof(*ptrs));
    assert_true(ents && ptrs);
    for (unsigned i = 0; i < N; i++) {
        causeway__raft_entry__init(&ents[i]);
        ents[i].term = 1;
        ents[i].index = i + 1;
        ents[i].type = CW_RAFT_ENTRY_DATA;
        ents[i].data.len = 1;
        ents[i].data.data = (uint8_t *)"x";
        ptrs[i] = &ents[i];
    }
    Causeway__RaftMessage rm = CAUSEWAY__RAFT_MESSAGE__INIT;
    rm.type = CW_RAFT_APPEND;
    rm.term = 1;
    rm.n_entries = 2;
    rm.entries = ptrs;

    /* The reference: it decodes, regions taken from the envelope. */
    buf = raft_frame(&rm, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
    assert_int_equal(d.type, CW_MSG_RAFT);
    assert_non_null(d.raft);
    assert_int_equal(d.raft->from, 1);
    assert_int_equal(d.raft->to, 0);
    assert_int_equal(d.raft->n_entries, 2);
    assert_memory_equal(d.raft->entries[1].data, "x", 1);
    cw_msg_free(&d);
    free(buf);

    /* Too many entries. */
    rm.n_entries = N;
    buf = raft_frame(&rm, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_ETOOBIG);
    assert_null(d.raft);
    free(buf);
    rm.n_entries = 2;

    /* Unknown message types, flags and entry types. */
    uint32_t bad_types[] = {0, CW_RAFT_PROPOSE + 1, 256, UINT32_MAX};
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        rm.type = bad_types[i];
        buf = raft_frame(&rm, &len);
        assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
        assert_null(d.raft);
        free(buf);
    }
    rm.type = CW_RAFT_APPEND;
    rm.flags = 2;
    buf = raft_frame(&rm, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    rm.flags = 0x101; /* truncation to a byte would read as TRANSFER */
    buf = raft_frame(&rm, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    rm.flags = 0;
    ents[1].type = 2;
    buf = raft_frame(&rm, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    ents[1].type = 0x101;
    buf = raft_frame(&rm, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    ents[1].type = CW_RAFT_ENTRY_DATA;

    /* An oversized entry and an oversized snapshot. */
    uint8_t *big = calloc(1, CW_RAFT_SNAP_BYTES_MAX + 1);
    assert_non_null(big);
    ents[1].data.len = CW_RAFT_ENTRY_BYTES_MAX + 1;
    ents[1].data.data = big;
    buf = raft_frame(&rm, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_ETOOBIG);
    free(buf);
    ents[1].data.len = 1;
    ents[1].data.data = (uint8_t *)"x";
    rm.n_entries = 0;
    rm.type = CW_RAFT_SNAP;
    rm.snap.len = CW_RAFT_SNAP_BYTES_MAX + 1;
    rm.snap.data = big;
    buf = raft_frame(&rm, &len);
    assert_true(len <= CW_WIRE_FRAME_BYTES_MAX);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_ETOOBIG);
    free(buf);
    rm.snap.len = CW_RAFT_SNAP_BYTES_MAX;
    buf = raft_frame(&rm, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_OK);
    assert_int_equal(d.raft->snap_len, CW_RAFT_SNAP_BYTES_MAX);
    cw_msg_free(&d);
    free(buf);
    free(big);
    rm.snap.len = 0;
    rm.snap.data = NULL;

    /* A RAFT frame without its message, or with a replication field; a
     * Raft message in another frame type. */
    Causeway__PeerFrame pf = CAUSEWAY__PEER_FRAME__INIT;
    pf.version = CW_WIRE_VERSION;
    pf.type = CAUSEWAY__PEER_TYPE__PEER_RAFT;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pf.raft = &rm;
    pf.clock = 9;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pf.clock = 0;
    uint64_t one = 1;
    pf.n_applied = 1;
    pf.applied = &one;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pf.n_applied = 0;
    pf.applied = NULL;
    pf.type = CAUSEWAY__PEER_TYPE__PEER_HEARTBEAT;
    buf = pack_pb(&pf.base, &len);
    assert_int_equal(cw_wire_decode_peer(buf, len, NULL, &d), CW_EDECODE);
    free(buf);

    free(ptrs);
    free(ents);
}

static void test_peer_raft_truncated_and_corrupted(void **state)
{
    (void)state;
    struct cw_msg m, d;
    make_raft_msg(&m, CW_RAFT_APPEND, 4, 24, 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_peer(&m, &buf, &len), CW_OK);
    /* The Raft message is the last field: every strict prefix fails. */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = dup_bytes(buf, cut);
        assert_int_not_equal(cw_wire_decode_peer(copy, cut, NULL, &d), CW_OK);
        assert_null(d.raft);
        free(copy);
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t *copy = dup_bytes(buf, len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        if (cw_wire_decode_peer(copy, len, NULL, &d) == CW_OK)
            cw_msg_free(&d);
        free(copy);
    }
    free(buf);
    cw_msg_free(&m);
}

/* ------------------------------------------------------------- requests */

static void request_round_trip(const struct cw_wire_request *r, struct cw_wire_request *d)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_request(r, &buf, &len), CW_OK);
    assert_int_equal(cw_wire_decode_request(buf, len, NULL, d), CW_OK);
    free(buf);
    assert_int_equal(d->op, r->op);
    assert_int_equal(d->req_id, r->req_id);
}

static void test_request_round_trips(void **state)
{
    (void)state;
    struct cw_wire_request r = sample_put(), d;
    request_round_trip(&r, &d);
    assert_string_equal(d.bucket, "photos");
    assert_int_equal(d.key_len, 12);
    assert_memory_equal(d.key, "cat\0with-nul", 12);
    assert_int_equal(d.value_len, 4);
    assert_memory_equal(d.value, "meow", 4);
    assert_vc_equal(&d.context, &r.context);
    assert_true(d.has_kctx);
    assert_vc_equal(&d.kctx, &r.kctx);
    cw_wire_request_free(&d);
    assert_null(d.key);

    /* A put of an empty value, without a key context. */
    r.value_len = 0;
    r.has_kctx = false;
    request_round_trip(&r, &d);
    assert_int_equal(d.value_len, 0);
    assert_null(d.value);
    assert_false(d.has_kctx);
    assert_true(cw_vc_is_zero(&d.kctx));
    cw_wire_request_free(&d);

    /* DEL carries no value even if the struct has one; GET no key context. */
    r = sample_put();
    r.op = CW_OP_DEL;
    request_round_trip(&r, &d);
    assert_int_equal(d.value_len, 0);
    assert_null(d.value);
    assert_true(d.has_kctx);
    assert_int_equal(d.key_len, 12);
    cw_wire_request_free(&d);
    r.op = CW_OP_GET;
    request_round_trip(&r, &d);
    assert_false(d.has_kctx);
    assert_null(d.value);
    assert_vc_equal(&d.context, &r.context);
    assert_string_equal(d.bucket, "photos");
    cw_wire_request_free(&d);

    /* Semantic checks are the server's: a bad bucket and an empty key pass. */
    strcpy(r.bucket, "Not-Valid!");
    r.key_len = 0;
    request_round_trip(&r, &d);
    assert_string_equal(d.bucket, "Not-Valid!");
    assert_int_equal(d.key_len, 0);
    cw_wire_request_free(&d);

    memset(&r, 0, sizeof(r));
    r.op = CW_OP_STATUS;
    r.req_id = 1;
    request_round_trip(&r, &d);
    assert_string_equal(d.bucket, "");
    cw_wire_request_free(&d);

    r.op = CW_OP_LINK;
    r.req_id = 2;
    strcpy(r.link_from, "us-east");
    memset(r.link_to, 'e', CW_WIRE_NAME_MAX);
    r.link_to[CW_WIRE_NAME_MAX] = '\0';
    r.link_action = CW_LINK_DELAY;
    r.delay_ms = 150;
    request_round_trip(&r, &d);
    assert_string_equal(d.link_from, "us-east");
    assert_string_equal(d.link_to, r.link_to);
    assert_int_equal(d.link_action, CW_LINK_DELAY);
    assert_int_equal(d.delay_ms, 150);
    cw_wire_request_free(&d);
    r.link_action = CW_LINK_CUT;
    r.delay_ms = 0;
    request_round_trip(&r, &d);
    assert_int_equal(d.link_action, CW_LINK_CUT);
    cw_wire_request_free(&d);
    cw_wire_request_free(NULL);
}

static void test_request_encode_rejects(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    struct cw_wire_request r = sample_put();
    r.key_len = CW_KEY_BYTES_MAX + 1;
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_EKEY);
    assert_null(buf);
    r = sample_put();
    r.op = (enum cw_wire_op)9;
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_EINVAL);
    r.op = CW_OP_NONE;
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_EINVAL);
    r = sample_put();
    memset(r.bucket, 'b', sizeof(r.bucket)); /* no terminator */
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_EINVAL);
    r = sample_put();
    r.value = NULL;
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_EINVAL);
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_LINK;
    r.link_action = (enum cw_link_action)4;
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_EINVAL);
    r.link_action = CW_LINK_NONE;
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_EINVAL);
    /* Larger than a frame. */
    r = sample_put();
    r.value_len = CW_WIRE_FRAME_BYTES_MAX;
    r.value = calloc(1, r.value_len);
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_ETOOBIG);
    free(r.value);
}

/* Encodes a hand-made Request and decodes it with lim. */
static int decode_pb_request(Causeway__Request *pr, const struct cw_wire_limits *lim,
                             struct cw_wire_request *d)
{
    size_t len;
    uint8_t *buf = pack_pb(&pr->base, &len);
    int rc = cw_wire_decode_request(buf, len, lim, d);
    free(buf);
    return rc;
}

static void test_request_decode_bounds(void **state)
{
    (void)state;
    struct cw_wire_request d;
    uint8_t big[CW_KEY_BYTES_MAX + 1];
    memset(big, 'a', sizeof(big));
    uint64_t wide[CW_REGIONS_MAX + 1] = {1};

    Causeway__Request pr = CAUSEWAY__REQUEST__INIT;
    pr.version = CW_WIRE_VERSION;
    pr.req_id = 77;
    pr.op = CAUSEWAY__OP__OP_PUT;
    pr.bucket.len = CW_BUCKET_NAME_MAX;
    pr.bucket.data = big;
    pr.key.len = CW_KEY_BYTES_MAX;
    pr.key.data = big;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_OK);
    assert_int_equal(strlen(d.bucket), CW_BUCKET_NAME_MAX);
    assert_int_equal(d.key_len, CW_KEY_BYTES_MAX);
    cw_wire_request_free(&d);

    /* Each failure still says which request it was, for the error reply. */
    pr.bucket.len = CW_BUCKET_NAME_MAX + 1;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_ETOOBIG);
    assert_int_equal(d.req_id, 77);
    assert_int_equal(d.op, CW_OP_PUT);
    assert_null(d.key);
    pr.bucket.len = 3;
    pr.bucket.data = (uint8_t *)"a\0b";
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_EDECODE);
    assert_int_equal(d.req_id, 77);
    pr.bucket.data = big;

    pr.key.len = CW_KEY_BYTES_MAX + 1;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_ETOOBIG);
    pr.key.len = 1;

    struct cw_wire_limits lim;
    cw_wire_limits_default(&lim);
    lim.value_bytes_max = 100;
    pr.value.len = 101;
    pr.value.data = calloc(1, 101);
    assert_int_equal(decode_pb_request(&pr, &lim, &d), CW_ETOOBIG);
    assert_int_equal(d.req_id, 77);
    assert_null(d.value);
    pr.value.len = 100;
    assert_int_equal(decode_pb_request(&pr, &lim, &d), CW_OK);
    assert_int_equal(d.value_len, 100);
    cw_wire_request_free(&d);
    free(pr.value.data);
    pr.value.len = 0;
    pr.value.data = NULL;

    pr.n_context = CW_REGIONS_MAX + 1;
    pr.context = wide;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_EDECODE);
    pr.n_context = 0;
    pr.has_kctx = true;
    pr.n_kctx = CW_REGIONS_MAX + 1;
    pr.kctx = wide;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_EDECODE);
    pr.n_kctx = 0;
    pr.has_kctx = false;

    /* Unknown op: rejected, but the id survives. */
    pr.op = (Causeway__Op)42;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_EDECODE);
    assert_int_equal(d.req_id, 77);
    assert_int_equal(d.op, CW_OP_NONE);
    pr.op = CAUSEWAY__OP__OP_UNSPECIFIED;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_EDECODE);

    pr.op = CAUSEWAY__OP__OP_LINK;
    pr.link_from.len = CW_WIRE_NAME_MAX + 1;
    pr.link_from.data = big;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_ETOOBIG);
    pr.link_from.len = CW_WIRE_NAME_MAX;
    pr.link_action = (Causeway__LinkAction)4;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_EDECODE);
    pr.link_action = CAUSEWAY__LINK_ACTION__LINK_ACTION_UNSPECIFIED;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_EDECODE);
    pr.link_action = CAUSEWAY__LINK_ACTION__LINK_HEAL;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_OK);
    assert_int_equal(d.link_action, CW_LINK_HEAL);
    cw_wire_request_free(&d);

    /* Version mismatch, with the address kept. */
    pr.version = 2;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_EVERSION);
    assert_int_equal(d.req_id, 77);
    assert_int_equal(d.op, CW_OP_LINK);
    pr.version = 0;
    assert_int_equal(decode_pb_request(&pr, NULL, &d), CW_EVERSION);

    /* Over the frame bound: refused before anything else, address kept. */
    pr.version = CW_WIRE_VERSION;
    size_t len;
    uint8_t *buf = pack_pb(&pr.base, &len);
    cw_wire_limits_default(&lim);
    lim.frame_bytes_max = len - 1;
    assert_int_equal(cw_wire_decode_request(buf, len, &lim, &d), CW_ETOOBIG);
    assert_int_equal(d.req_id, 77);
    free(buf);
}

static void test_request_truncated(void **state)
{
    (void)state;
    struct cw_wire_request r = sample_put(), d;
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_OK);
    /* A prefix that ends between two fields is a shorter, well-formed request
     * (ZeroMQ delivers whole frames, so only a bug makes one); every other
     * prefix must fail, and none may crash or leak. */
    size_t ok = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = dup_bytes(buf, cut);
        int rc = cw_wire_decode_request(copy, cut, NULL, &d);
        if (rc == CW_OK) {
            ok++;
            assert_true(!d.has_kctx || cw_vc_is_zero(&d.kctx));
            cw_wire_request_free(&d);
        }
        free(copy);
    }
    /* The boundaries after op, bucket, key, value, context and has_kctx. */
    assert_int_equal(ok, 6);
    free(buf);
}

/* ------------------------------------------------------------ responses */

/* A status with every field set to something distinct (zeroed first, so that
 * padding compares equal). */
static void sample_status(struct cw_wire_status *st)
{
    memset(st, 0, sizeof(*st));
    st->region = 1;
    st->n_regions = 3;
    strcpy(st->regions[0], "us-east");
    strcpy(st->regions[1], "eu-west");
    strcpy(st->regions[2], "a234567890123456789012345678901b"); /* the longest name */
    st->durability = CW_WIRE_DURABILITY_SYNC;
    st->uptime_us = 1;
    st->now_us = 2;
    st->clock = UINT64_MAX;
    st->applied.ts[0] = 3;
    st->applied.ts[1] = UINT64_MAX;
    st->applied.ts[2] = 4;
    st->stable.ts[0] = 5;
    st->buffered = 6;
    st->outbox_total = 7;
    st->waiting = 8;
    st->keys = 9;
    st->outbox_bytes = 30;
    st->buffered_bytes = 31;
    st->key_cache_bytes = 32;
    st->outbox_body_bytes = UINT64_MAX;
    st->n_peers = 2;
    st->peers[0] = (struct cw_wire_peer_status){
        .region = 2,
        .link_cut = true,
        .delay_ms = 10,
        .queued = 11,
        .frames_sent = 12,
        .frames_dropped = 13,
        .frames_received = 14,
        .bytes_sent = 15,
        .outbox_pending = 16,
        .visibility = {17, 18, 19, 20, 21},
        .inflight_bytes = 23,
    };
    st->peers[1] = (struct cw_wire_peer_status){.region = 0, .delay_ms = 22, .inflight_bytes = 24};
    /* The replica's counters, all twenty of them. */
    _Static_assert(sizeof(st->replica) == 20 * sizeof(uint64_t), "every counter is set below");
    uint64_t *c = &st->replica.puts;
    for (unsigned i = 0; i < 20; i++)
        c[i] = 100 + i;
    c = &st->node.requests;
    for (unsigned i = 0; i < 6; i++)
        c[i] = 200 + i;
    st->node.connections_refused = 211;
    st->client_connections = 33;
    st->client_connections_max = 34;
}

static void response_round_trip(const struct cw_wire_response *r, struct cw_wire_response *d)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_response(r, &buf, &len), CW_OK);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, d), CW_OK);
    free(buf);
    assert_int_equal(d->op, r->op);
    assert_int_equal(d->req_id, r->req_id);
    assert_int_equal(d->err, r->err);
    assert_string_equal(d->message, r->message);
}

static void test_response_round_trips(void **state)
{
    (void)state;
    struct cw_wire_response r, d;
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_PUT;
    r.req_id = 9;
    r.origin = 2;
    r.ts = 0xabcdef;
    r.kctx_valid = true;
    r.conflict = CW_CONFLICT_SIBLINGS;
    r.kctx.ts[2] = 0xabcdef;
    r.seen.ts[2] = 0xabcdef;
    response_round_trip(&r, &d);
    assert_int_equal(d.origin, 2);
    assert_int_equal(d.ts, 0xabcdef);
    assert_true(d.kctx_valid);
    assert_int_equal(d.conflict, CW_CONFLICT_SIBLINGS);
    assert_vc_equal(&d.kctx, &r.kctx);
    assert_vc_equal(&d.seen, &r.seen);
    cw_wire_response_free(&d);

    /* GET with siblings: a value, an empty value and a tombstone. */
    struct cw_version vs[3];
    memset(vs, 0, sizeof(vs));
    vs[0].dot = (struct cw_dot){0, 100};
    vs[0].value = (uint8_t *)"first";
    vs[0].value_len = 5;
    vs[0].kctx.ts[0] = 50;
    vs[1].dot = (struct cw_dot){1, 101};
    vs[2].dot = (struct cw_dot){15, 102};
    vs[2].tombstone = true;
    vs[2].kctx.ts[15] = 7;
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_GET;
    r.req_id = 10;
    r.conflict = CW_CONFLICT_SIBLINGS;
    r.kctx.ts[0] = 100;
    r.kctx.ts[1] = 101;
    r.seen = r.kctx;
    r.n_versions = 3;
    r.versions = vs;
    response_round_trip(&r, &d);
    assert_int_equal(d.n_versions, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_version_equal(&vs[i], &d.versions[i]);
    assert_vc_equal(&d.seen, &r.seen);
    cw_wire_response_free(&d);
    assert_null(d.versions);

    /* GET of a missing key: no versions at all. */
    r.n_versions = 0;
    r.versions = NULL;
    response_round_trip(&r, &d);
    assert_int_equal(d.n_versions, 0);
    assert_null(d.versions);
    cw_wire_response_free(&d);

    /* STATUS: every field survives (test_status_* below for the rules). */
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_STATUS;
    r.req_id = 11;
    struct cw_wire_status st;
    sample_status(&st);
    r.status = &st;
    response_round_trip(&r, &d);
    assert_non_null(d.status);
    assert_memory_equal(d.status, &st, sizeof(st));
    cw_wire_response_free(&d);
    assert_null(d.status);

    /* Errors carry only the common fields, even when the struct has more. */
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_GET;
    r.req_id = 12;
    r.err = CW_ENOTREADY;
    strcpy(r.message, "not yet");
    r.n_versions = 3;
    r.versions = vs;
    response_round_trip(&r, &d);
    assert_int_equal(d.n_versions, 0);
    cw_wire_response_free(&d);
    /* The reply to a request whose op could not be read. */
    r.op = CW_OP_NONE;
    r.err = CW_EDECODE;
    memset(r.message, 'm', CW_WIRE_MESSAGE_MAX);
    r.message[CW_WIRE_MESSAGE_MAX] = '\0';
    response_round_trip(&r, &d);
    cw_wire_response_free(&d);

    memset(&r, 0, sizeof(r));
    r.op = CW_OP_LINK;
    r.req_id = 13;
    response_round_trip(&r, &d);
    cw_wire_response_free(&d);
    cw_wire_response_free(NULL);
}

static void test_response_large_read(void **state)
{
    (void)state;
    /* Ten siblings of 1 MiB: more than a request frame may hold, which a read
     * response is allowed to be. */
    enum { N = 10 };
    struct cw_version vs[N];
    memset(vs, 0, sizeof(vs));
    uint8_t *value = malloc(CW_WIRE_VALUE_BYTES_MAX);
    assert_non_null(value);
    memset(value, 's', CW_WIRE_VALUE_BYTES_MAX);
    for (unsigned i = 0; i < N; i++) {
        vs[i].dot = (struct cw_dot){(uint8_t)i, 100 + i};
        vs[i].value = value;
        vs[i].value_len = CW_WIRE_VALUE_BYTES_MAX;
    }
    struct cw_wire_response r, d;
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_GET;
    r.req_id = 21;
    r.conflict = CW_CONFLICT_SIBLINGS;
    r.n_versions = N;
    r.versions = vs;
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_OK);
    assert_true(len > CW_WIRE_FRAME_BYTES_MAX);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, &d), CW_ETOOBIG);
    assert_int_equal(d.req_id, 21);
    struct cw_wire_limits lim;
    cw_wire_limits_default(&lim);
    lim.frame_bytes_max = CW_WIRE_RESPONSE_BYTES_MAX;
    assert_int_equal(cw_wire_decode_response(buf, len, &lim, &d), CW_OK);
    assert_int_equal(d.n_versions, N);
    for (unsigned i = 0; i < N; i++)
        assert_version_equal(&vs[i], &d.versions[i]);
    cw_wire_response_free(&d);
    free(buf);
    free(value);
}

static void test_response_rejects(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    struct cw_wire_response r, d;
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_NONE; /* success without an op */
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_EINVAL);
    r.op = CW_OP_PUT;
    r.err = -1;
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_EINVAL);
    r.err = 0;
    r.origin = CW_REGIONS_MAX;
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_EINVAL);
    r.origin = 0;
    memset(r.message, 'x', sizeof(r.message));
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_EINVAL);
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_GET;
    r.n_versions = CW_WIRE_VERSIONS_MAX + 1;
    r.versions = calloc(r.n_versions, sizeof(*r.versions));
    for (uint32_t i = 0; i < r.n_versions; i++)
        r.versions[i].dot.ts = i + 1;
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_ETOOBIG);
    r.versions[0].tombstone = true;
    r.versions[0].value_len = 1;
    r.versions[0].value = (uint8_t *)"x";
    r.n_versions = 1;
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_EINVAL);

    /* Decoding: too many versions, a value over the bound, a long message,
     * an out-of-range error code and conflict mode, a version mismatch. */
    Causeway__Response pr = CAUSEWAY__RESPONSE__INIT;
    pr.version = CW_WIRE_VERSION;
    pr.op = CAUSEWAY__OP__OP_GET;
    pr.req_id = 5;
    Causeway__Version *vers = calloc(CW_WIRE_VERSIONS_MAX + 1, sizeof(*vers));
    Causeway__Version **ptrs = calloc(CW_WIRE_VERSIONS_MAX + 1, sizeof(*ptrs));
    for (uint32_t i = 0; i <= CW_WIRE_VERSIONS_MAX; i++) {
        causeway__version__init(&vers[i]);
        vers[i].ts = i + 1;
        ptrs[i] = &vers[i];
    }
    pr.versions = ptrs;
    pr.n_versions = CW_WIRE_VERSIONS_MAX + 1;
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, &d), CW_ETOOBIG);
    assert_int_equal(d.req_id, 5);
    assert_null(d.versions);
    free(buf);
    pr.n_versions = CW_WIRE_VERSIONS_MAX;
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, &d), CW_OK);
    assert_int_equal(d.n_versions, CW_WIRE_VERSIONS_MAX);
    cw_wire_response_free(&d);
    free(buf);

    struct cw_wire_limits lim;
    cw_wire_limits_default(&lim);
    lim.value_bytes_max = 3;
    pr.n_versions = 2;
    vers[1].value.len = 4;
    vers[1].value.data = (uint8_t *)"four";
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_response(buf, len, &lim, &d), CW_ETOOBIG);
    assert_null(d.versions);
    free(buf);
    vers[1].origin = CW_REGIONS_MAX;
    vers[1].value.len = 0;
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    vers[1].origin = 0;

    char longmsg[CW_WIRE_MESSAGE_MAX + 2];
    memset(longmsg, 'l', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    pr.message = longmsg;
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, &d), CW_ETOOBIG);
    free(buf);
    pr.message = (char *)"";

    pr.err = 0x80000000u;
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pr.err = 0;
    pr.conflict = 2;
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pr.conflict = 0;
    pr.op = CAUSEWAY__OP__OP_UNSPECIFIED; /* success needs an op */
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, &d), CW_EDECODE);
    free(buf);
    pr.op = CAUSEWAY__OP__OP_GET;
    pr.version = 3;
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_response(buf, len, NULL, &d), CW_EVERSION);
    free(buf);

    free(ptrs);
    free(vers);
    free(r.versions);
}

static void test_response_truncated(void **state)
{
    (void)state;
    struct cw_version vs[2];
    memset(vs, 0, sizeof(vs));
    vs[0].dot = (struct cw_dot){0, 100};
    vs[0].value = (uint8_t *)"value-zero";
    vs[0].value_len = 10;
    vs[1].dot = (struct cw_dot){1, 200};
    vs[1].tombstone = true;
    struct cw_wire_response r, d;
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_GET;
    r.req_id = 3;
    r.n_versions = 2;
    r.versions = vs;
    r.seen.ts[0] = 100;
    r.seen.ts[1] = 200;
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_OK);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = dup_bytes(buf, cut);
        if (cw_wire_decode_response(copy, cut, NULL, &d) == CW_OK) {
            /* Only a cut between fields can parse, and it loses a version. */
            assert_true(d.n_versions < 2);
            cw_wire_response_free(&d);
        }
        free(copy);
    }
    free(buf);
}

/* The encoder refuses a status that breaks the rules of struct cw_wire_status. */
static void test_status_encode_rejects(void **state)
{
    (void)state;
    struct cw_wire_status st;
    struct cw_wire_response r;
    uint8_t *buf;
    size_t len;
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_STATUS;
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_EINVAL); /* no status */
    assert_null(buf);
    r.status = &st;
    static const char *const cases[] = {
        "no regions",      "17 regions",
        "region id",       "empty name",
        "name too long",   "peer is me",
        "peer id too big", "duplicate peer",
        "too many peers",  "applied past the regions",
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sample_status(&st);
        switch (i) {
        case 0:
            st.n_regions = 0;
            break;
        case 1:
            st.n_regions = CW_REGIONS_MAX + 1;
            break;
        case 2:
            st.region = 3;
            break;
        case 3:
            st.regions[1][0] = '\0';
            break;
        case 4:
            memset(st.regions[1], 'x', sizeof(st.regions[1]));
            break;
        case 5:
            st.peers[1].region = 1;
            break;
        case 6:
            st.peers[1].region = 3;
            break;
        case 7:
            st.peers[1].region = 2;
            break;
        case 8:
            st.n_peers = 3;
            st.peers[2].region = 0;
            break;
        case 9:
            st.applied.ts[3] = 1;
            break;
        }
        if (cw_wire_encode_response(&r, &buf, &len) != CW_EINVAL)
            fail_msg("encoded a status with %s", cases[i]);
    }
    /* An error reply needs no status. */
    r.status = NULL;
    r.err = CW_ENOMEM;
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_OK);
    free(buf);
}

/* A STATUS response as a node might send it, built field by field. */
struct pb_status {
    Causeway__Response pr;
    Causeway__Status st;
    ProtobufCBinaryData names[CW_REGIONS_MAX + 1];
    Causeway__PeerStatus peers[CW_REGIONS_MAX];
    Causeway__PeerStatus *ptrs[CW_REGIONS_MAX];
    uint64_t applied[CW_REGIONS_MAX];
};

static void pb_status_init(struct pb_status *p)
{
    static char names[CW_REGIONS_MAX + 1][4];
    memset(p, 0, sizeof(*p));
    causeway__response__init(&p->pr);
    p->pr.version = CW_WIRE_VERSION;
    p->pr.op = CAUSEWAY__OP__OP_STATUS;
    p->pr.req_id = 9;
    causeway__status__init(&p->st);
    p->pr.status = &p->st;
    for (unsigned i = 0; i <= CW_REGIONS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "r%u", i);
        p->names[i].data = (uint8_t *)names[i];
        p->names[i].len = strlen(names[i]);
    }
    p->st.regions = p->names;
    p->st.n_regions = 3;
    p->st.region_id = 0;
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++) {
        causeway__peer_status__init(&p->peers[i]);
        p->ptrs[i] = &p->peers[i];
    }
    p->peers[0].region_id = 1;
    p->peers[1].region_id = 2;
    p->st.peers = p->ptrs;
    p->st.n_peers = 2;
    p->st.applied = p->applied;
}

static int decode_pb_status(struct pb_status *p, struct cw_wire_response *d)
{
    size_t len;
    uint8_t *buf = pack_pb(&p->pr.base, &len);
    int rc = cw_wire_decode_response(buf, len, NULL, d);
    free(buf);
    if (rc != CW_OK) {
        assert_null(d->status);
        assert_int_equal(d->req_id, 9);
    }
    return rc;
}

static void test_status_decode(void **state)
{
    (void)state;
    struct pb_status p;
    struct cw_wire_response d;
    /* The minimal status: names, no counters, no visibility, an unknown
     * durability (a later release's) kept as it came. */
    pb_status_init(&p);
    p.st.durability = (Causeway__Durability)9;
    assert_int_equal(decode_pb_status(&p, &d), CW_OK);
    assert_int_equal(d.status->n_regions, 3);
    assert_string_equal(d.status->regions[2], "r2");
    assert_int_equal(d.status->durability, 9);
    assert_int_equal(d.status->n_peers, 2);
    assert_int_equal(d.status->peers[1].region, 2);
    assert_true(d.status->replica.puts == 0 && d.status->node.requests == 0);
    assert_true(d.status->peers[0].visibility.count == 0);
    /* What an older node does not send reads 0. */
    assert_true(d.status->outbox_bytes == 0 && d.status->buffered_bytes == 0);
    assert_true(d.status->key_cache_bytes == 0 && d.status->outbox_body_bytes == 0);
    assert_true(d.status->peers[0].inflight_bytes == 0);
    assert_true(d.status->replica.keys_loaded == 0 && d.status->replica.store_read_errors == 0);
    cw_wire_response_free(&d);

    /* Each figure arrives in its own field. */
    pb_status_init(&p);
    Causeway__ReplicaCounters rc_pb;
    causeway__replica_counters__init(&rc_pb);
    p.st.replica = &rc_pb;
    p.st.waiting = 1;
    p.st.outbox_bytes = 2;
    p.st.buffered_bytes = 3;
    p.st.key_cache_bytes = 4;
    p.st.outbox_body_bytes = 5;
    p.peers[1].inflight_bytes = 6;
    rc_pb.requests_waited = 7;
    rc_pb.requests_timed_out = 8;
    rc_pb.keys_loaded = 9;
    rc_pb.keys_evicted = 10;
    rc_pb.bodies_loaded = 11;
    rc_pb.bodies_evicted = 12;
    rc_pb.store_read_errors = 13;
    assert_int_equal(decode_pb_status(&p, &d), CW_OK);
    const struct cw_wire_status *ds = d.status;
    assert_true(ds->waiting == 1 && ds->outbox_bytes == 2 && ds->buffered_bytes == 3);
    assert_true(ds->key_cache_bytes == 4 && ds->outbox_body_bytes == 5);
    assert_true(ds->peers[0].inflight_bytes == 0 && ds->peers[1].inflight_bytes == 6);
    assert_true(ds->replica.requests_waited == 7 && ds->replica.requests_timed_out == 8);
    assert_true(ds->replica.keys_loaded == 9 && ds->replica.keys_evicted == 10);
    assert_true(ds->replica.bodies_loaded == 11 && ds->replica.bodies_evicted == 12);
    assert_true(ds->replica.store_read_errors == 13);
    cw_wire_response_free(&d);

    /* Every region a cluster may have. */
    pb_status_init(&p);
    p.st.n_regions = CW_REGIONS_MAX;
    p.st.n_peers = CW_REGIONS_MAX - 1;
    for (unsigned i = 0; i < CW_REGIONS_MAX - 1; i++)
        p.peers[i].region_id = i + 1;
    p.st.n_applied = CW_REGIONS_MAX;
    p.applied[CW_REGIONS_MAX - 1] = 77;
    assert_int_equal(decode_pb_status(&p, &d), CW_OK);
    assert_true(d.status->applied.ts[CW_REGIONS_MAX - 1] == 77);
    cw_wire_response_free(&d);

    /* A node of an older release: field 13 (a JSON string), no status. */
    pb_status_init(&p);
    p.pr.status = NULL;
    size_t len;
    uint8_t *buf = pack_pb(&p.pr.base, &len);
    const char *json = "{}";
    uint8_t *old = malloc(len + 4);
    assert_non_null(old);
    memcpy(old, buf, len);
    old[len] = 13 << 3 | 2;
    old[len + 1] = 2;
    memcpy(old + len + 2, json, 2);
    assert_int_equal(cw_wire_decode_response(old, len + 4, NULL, &d), CW_EDECODE);
    assert_null(d.status);
    free(old);
    free(buf);

    static const char *const cases[] = {
        "no regions",
        "17 regions",
        "region id past the names",
        "empty name",
        "33-byte name",
        "NUL in a name",
        "peer is the node",
        "peer id too big",
        "duplicate peer",
        "as many peers as regions",
        "applied wider than the regions",
        "stable wider than the regions",
        "peer id far too big",
    };
    char longname[CW_WIRE_REGION_NAME_MAX + 1];
    memset(longname, 'n', sizeof(longname));
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pb_status_init(&p);
        int want = CW_EDECODE;
        switch (i) {
        case 0:
            p.st.n_regions = 0;
            break;
        case 1:
            p.st.n_regions = CW_REGIONS_MAX + 1;
            break;
        case 2:
            p.st.region_id = 3;
            break;
        case 3:
            p.names[1].len = 0;
            break;
        case 4:
            p.names[1].data = (uint8_t *)longname;
            p.names[1].len = sizeof(longname);
            break;
        case 5:
            p.names[1].data = (uint8_t *)"a\0b";
            p.names[1].len = 3;
            break;
        case 6:
            p.peers[1].region_id = 0;
            break;
        case 7:
            p.peers[1].region_id = 3;
            break;
        case 8:
            p.peers[1].region_id = 1;
            break;
        case 9:
            p.st.n_peers = 3;
            p.peers[2].region_id = 0;
            break;
        case 10:
            p.st.n_applied = 4;
            p.applied[3] = 1;
            break;
        case 11:
            p.st.stable = p.applied;
            p.st.n_stable = 4;
            p.applied[3] = 1;
            break;
        case 12:
            p.peers[1].region_id = 1000;
            break;
        }
        int rc = decode_pb_status(&p, &d);
        if (rc != want)
            fail_msg("a status with %s decoded with %d, expected %d", cases[i], rc, want);
    }
}

/* Renamed fields keep their numbers, so nodes and clients of the releases before
 * and after the rename read each other's status alike; the new fields take new
 * numbers. */
static void test_status_field_numbers(void **state)
{
    (void)state;
    static const struct {
        const ProtobufCMessageDescriptor *d;
        const char *name;
        unsigned id;
    } want[] = {
        {&causeway__status__descriptor, "waiting", 11}, /* was pending_reads */
        {&causeway__status__descriptor, "outbox_bytes", 16},
        {&causeway__status__descriptor, "buffered_bytes", 17},
        {&causeway__status__descriptor, "key_cache_bytes", 18},
        {&causeway__status__descriptor, "outbox_body_bytes", 19},
        {&causeway__status__descriptor, "client_connections", 22},
        {&causeway__status__descriptor, "client_connections_max", 23},
        {&causeway__status__descriptor, "replication", 21},
        {&causeway__node_counters__descriptor, "connections_refused", 11},
        {&causeway__node_counters__descriptor, "checkpoints_failed", 12},
        {&causeway__node_counters__descriptor, "checkpoints_failing", 13},
        {&causeway__peer_status__descriptor, "inflight_bytes", 11},
        {&causeway__replica_counters__descriptor, "requests_waited", 10}, /* was reads_waited */
        {&causeway__replica_counters__descriptor, "requests_timed_out",
         11}, /* was reads_timed_out */
        {&causeway__replica_counters__descriptor, "keys_loaded", 16},
        {&causeway__replica_counters__descriptor, "keys_evicted", 17},
        {&causeway__replica_counters__descriptor, "bodies_loaded", 18},
        {&causeway__replica_counters__descriptor, "bodies_evicted", 19},
        {&causeway__replica_counters__descriptor, "store_read_errors", 20},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(want[i].d, want[i].name);
        if (f == NULL || f->id != want[i].id)
            fail_msg("%s.%s: field %d, expected %u", want[i].d->short_name, want[i].name,
                     f ? (int)f->id : -1, want[i].id);
    }
    /* The bytes an older node sends for pending_reads (field 11 of Status, here
     * appended to a status that lacks it) decode as waiting. */
    struct pb_status p;
    pb_status_init(&p);
    size_t st_len, head_len;
    uint8_t *st_bytes = pack_pb(&p.st.base, &st_len);
    p.pr.status = NULL;
    uint8_t *head = pack_pb(&p.pr.base, &head_len);
    uint8_t frame[512];
    size_t body = st_len + 2;
    assert_true(body < 128 && head_len + 2 + body <= sizeof(frame));
    memcpy(frame, head, head_len);
    size_t n = head_len;
    frame[n++] = 14 << 3 | 2; /* Response.status, length-delimited */
    frame[n++] = (uint8_t)body;
    memcpy(frame + n, st_bytes, st_len);
    n += st_len;
    frame[n++] = 11 << 3; /* Status field 11, a varint */
    frame[n++] = 42;
    free(head);
    free(st_bytes);
    struct cw_wire_response d;
    assert_int_equal(cw_wire_decode_response(frame, n, NULL, &d), CW_OK);
    assert_true(d.status->waiting == 42);
    cw_wire_response_free(&d);
}

static void test_status_truncated(void **state)
{
    (void)state;
    struct cw_wire_status st;
    sample_status(&st);
    struct cw_wire_response r, d;
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_STATUS;
    r.req_id = 4;
    r.status = &st;
    uint8_t *buf;
    size_t len;
    assert_int_equal(cw_wire_encode_response(&r, &buf, &len), CW_OK);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = dup_bytes(buf, cut);
        if (cw_wire_decode_response(copy, cut, NULL, &d) == CW_OK) {
            /* Only a cut between top-level fields can parse: the status (the
             * last field) is then missing, which no successful decode allows. */
            fail_msg("a status response cut to %zu of %zu bytes decoded", cut, len);
        }
        free(copy);
    }
    free(buf);
}

/* ---------------------------------------------------- strong buckets */

/* Conditions travel with PUT and DEL only; cond_version only with
 * CW_COND_VERSION. */
static void test_request_conditions(void **state)
{
    (void)state;
    struct cw_wire_request r = sample_put(), d;
    r.cond = CW_COND_VERSION;
    r.cond_version = UINT64_MAX;
    request_round_trip(&r, &d);
    assert_int_equal(d.cond, CW_COND_VERSION);
    assert_true(d.cond_version == UINT64_MAX);
    cw_wire_request_free(&d);

    r.op = CW_OP_DEL;
    r.cond_version = 7;
    request_round_trip(&r, &d);
    assert_int_equal(d.cond, CW_COND_VERSION);
    assert_int_equal(d.cond_version, 7);
    cw_wire_request_free(&d);

    /* ABSENT carries no version even if the struct has one. */
    r.op = CW_OP_PUT;
    r.cond = CW_COND_ABSENT;
    request_round_trip(&r, &d);
    assert_int_equal(d.cond, CW_COND_ABSENT);
    assert_int_equal(d.cond_version, 0);
    cw_wire_request_free(&d);

    /* A GET has no condition. */
    r.op = CW_OP_GET;
    request_round_trip(&r, &d);
    assert_int_equal(d.cond, CW_COND_NONE);
    assert_int_equal(d.cond_version, 0);
    cw_wire_request_free(&d);

    /* Unconditional is the default and encodes nothing. */
    r = sample_put();
    request_round_trip(&r, &d);
    assert_int_equal(d.cond, CW_COND_NONE);
    cw_wire_request_free(&d);

    /* The encoder refuses a condition it does not know. */
    uint8_t *buf;
    size_t len;
    r.cond = CW_COND_ABSENT + 1;
    assert_int_equal(cw_wire_encode_request(&r, &buf, &len), CW_EINVAL);
    assert_null(buf);

    /* The decoder refuses one too (a later release's condition must not turn
     * into an unconditional write), keeping the address for the error reply. */
    Causeway__Request pr = CAUSEWAY__REQUEST__INIT;
    pr.version = CW_WIRE_VERSION;
    pr.req_id = 77;
    pr.op = CAUSEWAY__OP__OP_PUT;
    pr.bucket.data = (uint8_t *)"b";
    pr.bucket.len = 1;
    pr.key.data = (uint8_t *)"k";
    pr.key.len = 1;
    pr.cond = (Causeway__PutCond)3;
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_request(buf, len, NULL, &d), CW_EDECODE);
    assert_int_equal(d.req_id, 77);
    assert_int_equal(d.op, CW_OP_PUT);
    assert_null(d.key);
    free(buf);
    /* ... but a GET ignores the field (the receiver ignores unused fields). */
    pr.op = CAUSEWAY__OP__OP_GET;
    buf = pack_pb(&pr.base, &len);
    assert_int_equal(cw_wire_decode_request(buf, len, NULL, &d), CW_OK);
    assert_int_equal(d.cond, CW_COND_NONE);
    cw_wire_request_free(&d);
    free(buf);
}

/* key_version: with a successful PUT, DEL or GET and with CW_ECONFLICT, never
 * with another error or another op. */
static void test_response_key_version(void **state)
{
    (void)state;
    struct cw_wire_response r, d;
    static const enum cw_wire_op ops[] = {CW_OP_PUT, CW_OP_DEL, CW_OP_GET};
    for (unsigned i = 0; i < 3; i++) {
        memset(&r, 0, sizeof(r));
        r.op = ops[i];
        r.req_id = 20 + i;
        r.origin = 1;
        r.key_version = UINT64_MAX - i;
        response_round_trip(&r, &d);
        assert_true(d.key_version == UINT64_MAX - i);
        cw_wire_response_free(&d);

        r.err = CW_ECONFLICT;
        r.key_version = 41;
        strcpy(r.message, "conflict");
        response_round_trip(&r, &d);
        assert_int_equal(d.key_version, 41);
        cw_wire_response_free(&d);

        r.err = CW_ETIMEOUT;
        response_round_trip(&r, &d);
        assert_int_equal(d.key_version, 0);
        cw_wire_response_free(&d);
    }
    /* A strong write may carry no stamp; the version travels alone. */
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_PUT;
    r.req_id = 30;
    r.key_version = 5;
    response_round_trip(&r, &d);
    assert_int_equal(d.ts, 0);
    assert_int_equal(d.key_version, 5);
    cw_wire_response_free(&d);

    /* Sent by another node on a STATUS reply, it is ignored. */
    struct pb_status p;
    pb_status_init(&p);
    p.pr.key_version = 9;
    assert_int_equal(decode_pb_status(&p, &d), CW_OK);
    assert_int_equal(d.key_version, 0);
    cw_wire_response_free(&d);
}

static void sample_strong(struct cw_wire_status *st)
{
    struct cw_wire_strong_status *g = &st->strong;
    st->has_strong = true;
    g->role = 3; /* leader */
    g->term = UINT64_MAX;
    g->has_leader = true;
    g->leader = 1;
    g->has_vote = true;
    g->vote = 2;
    g->commit = 40;
    g->applied = 39;
    g->log_first = 11;
    g->log_last = 41;
    g->snap_index = 10;
    g->snap_term = 3;
    g->n_peers = 2;
    g->peers[0] = (struct cw_wire_raft_peer){
        .region = 2, .heard = true, .suspected = true, .last_heard_ms = 1234};
    g->peers[1] = (struct cw_wire_raft_peer){.region = 0};
    _Static_assert(sizeof(g->raft) == 11 * sizeof(uint64_t), "every Raft counter is set below");
    uint64_t *c = &g->raft.elections;
    for (unsigned i = 0; i < 11; i++)
        c[i] = 300 + i;
    _Static_assert(sizeof(g->counters) == 8 * sizeof(uint64_t), "every counter is set below");
    c = &g->counters.puts;
    for (unsigned i = 0; i < 8; i++)
        c[i] = 400 + i;
}

static void test_status_strong(void **state)
{
    (void)state;
    struct cw_wire_response r, d;
    struct cw_wire_status st;
    memset(&r, 0, sizeof(r));
    r.op = CW_OP_STATUS;
    r.req_id = 11;
    r.status = &st;

    /* Every field survives, the peers' and the counters' too. */
    sample_status(&st);
    sample_strong(&st);
    response_round_trip(&r, &d);
    assert_non_null(d.status);
    assert_true(d.status->has_strong);
    assert_memory_equal(d.status, &st, sizeof(st));
    cw_wire_response_free(&d);

    /* No leader, no vote, a follower in term 0, an unknown role. */
    sample_status(&st);
    sample_strong(&st);
    st.strong.role = 0;
    st.strong.term = 0;
    st.strong.has_leader = false;
    st.strong.leader = 0;
    st.strong.has_vote = false;
    st.strong.vote = 0;
    response_round_trip(&r, &d);
    assert_memory_equal(d.status, &st, sizeof(st));
    cw_wire_response_free(&d);
    st.strong.role = 9;
    response_round_trip(&r, &d);
    assert_int_equal(d.status->strong.role, 9);
    cw_wire_response_free(&d);

    /* A node without strong buckets sends no section. */
    sample_status(&st);
    response_round_trip(&r, &d);
    assert_false(d.status->has_strong);
    assert_int_equal(d.status->strong.n_peers, 0);
    cw_wire_response_free(&d);

    /* The encoder refuses a strong section that breaks the rules. */
    static const char *const cases[] = {
        "leader past the regions",
        "vote past the regions",
        "leader without has_leader",
        "peer is me",
        "duplicate peer",
        "peer past the regions",
        "too many peers",
        "last heard, never heard",
        "section without has_strong",
    };
    uint8_t *buf;
    size_t len;
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sample_status(&st);
        sample_strong(&st);
        struct cw_wire_strong_status *g = &st.strong;
        switch (i) {
        case 0:
            g->leader = 3;
            break;
        case 1:
            g->vote = 3;
            break;
        case 2:
            g->has_leader = false;
            break;
        case 3:
            g->peers[1].region = 1;
            break;
        case 4:
            g->peers[1].region = 2;
            break;
        case 5:
            g->peers[1].region = 3;
            break;
        case 6:
            g->n_peers = 3;
            break;
        case 7:
            g->peers[1].last_heard_ms = 5;
            break;
        case 8:
            st.has_strong = false;
            break;
        }
        if (cw_wire_encode_response(&r, &buf, &len) != CW_EINVAL)
            fail_msg("encoded a strong status with %s", cases[i]);
    }

    /* The decoder checks what another node sends: ids against the regions and
     * against their arrays, before anything is copied. */
    struct pb_status p;
    Causeway__StrongStatus ss;
    Causeway__RaftPeerStatus rp[CW_REGIONS_MAX], *rpp[CW_REGIONS_MAX];
    for (unsigned i = 0; i < 6; i++) {
        pb_status_init(&p);
        causeway__strong_status__init(&ss);
        for (unsigned k = 0; k < CW_REGIONS_MAX; k++) {
            causeway__raft_peer_status__init(&rp[k]);
            rp[k].region_id = k + 1;
            rpp[k] = &rp[k];
        }
        ss.peers = rpp;
        ss.n_peers = 2;
        p.st.strong = &ss;
        switch (i) {
        case 0: /* valid: no counters, no leader */
            break;
        case 1:
            ss.has_leader = true;
            ss.leader = 3;
            break;
        case 2:
            ss.has_vote = true;
            ss.vote = 1000;
            break;
        case 3:
            ss.n_peers = CW_REGIONS_MAX;
            break;
        case 4:
            rp[1].region_id = 1u << 30;
            break;
        case 5:
            rp[1].region_id = 0; /* the node itself */
            break;
        }
        int rc = decode_pb_status(&p, &d);
        if (i == 0) {
            assert_int_equal(rc, CW_OK);
            assert_true(d.status->has_strong);
            assert_int_equal(d.status->strong.n_peers, 2);
            assert_false(d.status->strong.has_leader);
            assert_int_equal(d.status->strong.raft.elections, 0);
            cw_wire_response_free(&d);
        } else if (rc != CW_EDECODE) {
            fail_msg("decoded strong case %u: %d", i, rc);
        }
    }
}

static void test_strong_field_numbers(void **state)
{
    (void)state;
    static const struct {
        const ProtobufCMessageDescriptor *d;
        const char *name;
        unsigned id;
    } want[] = {
        {&causeway__request__descriptor, "cond", 14},
        {&causeway__request__descriptor, "cond_version", 15},
        {&causeway__response__descriptor, "key_version", 15},
        {&causeway__status__descriptor, "strong", 20},
        {&causeway__strong_status__descriptor, "peers", 13},
        {&causeway__strong_status__descriptor, "strong", 15},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(want[i].d, want[i].name);
        if (f == NULL || f->id != want[i].id)
            fail_msg("%s.%s: field %d, expected %u", want[i].d->short_name, want[i].name,
                     f ? (int)f->id : -1, want[i].id);
    }
    /* The core's enums and the wire's agree. */
    assert_int_equal(CAUSEWAY__PUT_COND__PUT_COND_VERSION, CW_COND_VERSION);
    assert_int_equal(CAUSEWAY__PUT_COND__PUT_COND_ABSENT, CW_COND_ABSENT);
    assert_int_equal(CAUSEWAY__RAFT_ROLE__RAFT_LEADER, CW_RAFT_LEADER);
    assert_int_equal(CAUSEWAY__RAFT_ROLE__RAFT_PRECANDIDATE, CW_RAFT_PRECANDIDATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_default),
        cmocka_unit_test(test_peer_heartbeat_and_nack_round_trip),
        cmocka_unit_test(test_peer_records_round_trip),
        cmocka_unit_test(test_peer_records_use_lz4),
        cmocka_unit_test(test_peer_records_counted),
        cmocka_unit_test(test_peer_split_large_batch),
        cmocka_unit_test(test_peer_encode_rejects),
        cmocka_unit_test(test_peer_version_mismatch),
        cmocka_unit_test(test_peer_limits),
        cmocka_unit_test(test_peer_bad_envelopes),
        cmocka_unit_test(test_peer_bad_batches),
        cmocka_unit_test(test_peer_bad_records),
        cmocka_unit_test(test_peer_truncated_and_corrupted),
        cmocka_unit_test(test_peer_raft_round_trip),
        cmocka_unit_test(test_peer_raft_encode_rejects),
        cmocka_unit_test(test_peer_raft_bad_frames),
        cmocka_unit_test(test_peer_raft_truncated_and_corrupted),
        cmocka_unit_test(test_request_round_trips),
        cmocka_unit_test(test_request_encode_rejects),
        cmocka_unit_test(test_request_decode_bounds),
        cmocka_unit_test(test_request_truncated),
        cmocka_unit_test(test_response_round_trips),
        cmocka_unit_test(test_response_large_read),
        cmocka_unit_test(test_response_rejects),
        cmocka_unit_test(test_response_truncated),
        cmocka_unit_test(test_status_encode_rejects),
        cmocka_unit_test(test_status_decode),
        cmocka_unit_test(test_status_field_numbers),
        cmocka_unit_test(test_status_truncated),
        cmocka_unit_test(test_request_conditions),
        cmocka_unit_test(test_response_key_version),
        cmocka_unit_test(test_status_strong),
        cmocka_unit_test(test_strong_field_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
