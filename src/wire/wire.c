/*
 * wire.c - the adapters between core structs and the protobuf-c types generated
 * from causeway.proto, plus the LZ4 framing of replication batches.
 *
 * Decoding is done in four passes, so that nothing is allocated for a count or
 * length that has not been checked:
 *   1. the frame length against the limit, and a peek at the version field;
 *   2. a scan of the protobuf wire format, driven by the generated descriptors,
 *      that counts every repeated field and sub-message (protobuf-c allocates
 *      a struct per sub-message and eight bytes per vector entry, so these are
 *      what could make a small frame expensive);
 *   3. protobuf_c_message_unpack;
 *   4. the conversion to core structs, which checks every remaining length and
 *      range and takes ownership of large byte fields instead of copying them.
 * LZ4 and protobuf-c errors never leave this file: they become CW_EDECODE,
 * CW_ETOOBIG or CW_ENOMEM.
 */
#include "wire/wire.h"

#include "core/cw_assert.h"

#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "core/raft.h"
#include "wire/causeway.pb-c.h"

/* Every key state a replica can hold must fit in one read response. */
_Static_assert(CW_WIRE_VERSIONS_MAX >= CW_SIBLINGS_HARD_MAX,
               "a key's versions must fit a response");

/* Bounds of the wire-format scan (pass 2). No message of ours has more fields
 * (ReplicaCounters has 20), and the schema nests at most three deep
 * (RecordBatch, Record, Version; and Response, Status, PeerStatus, Latency). */
#define SCAN_FIELDS_MAX 32
#define SCAN_UNKNOWN_MAX 16
#define SCAN_DEPTH_MAX 4

/* A varint field's tag plus its longest value: what a top-level uint64 adds. */
#define FIELD_VARINT_MAX 15

/*
 * protobuf-c allocates through this allocator while unpacking. It is plain
 * malloc and free on purpose: that is what lets the adapters take ownership of a
 * bytes field (a value of up to a MiB) and release it later with free().
 */
static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

void cw_wire_limits_default(struct cw_wire_limits *l)
{
    l->frame_bytes_max = CW_WIRE_FRAME_BYTES_MAX;
    l->batch_bytes_max = CW_WIRE_BATCH_BYTES_MAX;
    l->records_max = CW_WIRE_RECORDS_MAX;
    l->value_bytes_max = CW_WIRE_VALUE_BYTES_MAX;
}

static const struct cw_wire_limits *limits_or_default(const struct cw_wire_limits *lim,
                                                      struct cw_wire_limits *def)
{
    if (lim != NULL)
        return lim;
    cw_wire_limits_default(def);
    return def;
}

/* ------------------------------------------------ pass 1: length, version */

struct peek {
    bool complete; /* every top-level field was well-formed */
    bool has_version, has_req_id, has_op;
    uint64_t version, req_id, op;
};

/* Reads the first varint fields 1 (version), 2 (req_id) and 3 (op) of a
 * top-level message, stopping at the first malformed field. */
static void peek_header(const uint8_t *in, size_t len, struct peek *pk)
{
    memset(pk, 0, sizeof(*pk));
    size_t off = 0;
    while (off < len) {
        uint64_t key, x;
        size_t used = cw_varint_get(in + off, len - off, &key);
        if (used == 0)
            return;
        off += used;
        switch (key & 7) {
        case 0:
            used = cw_varint_get(in + off, len - off, &x);
            if (used == 0)
                return;
            off += used;
            if ((key >> 3) == 1 && !pk->has_version) {
                pk->has_version = true;
                pk->version = x;
            } else if ((key >> 3) == 2 && !pk->has_req_id) {
                pk->has_req_id = true;
                pk->req_id = x;
            } else if ((key >> 3) == 3 && !pk->has_op) {
                pk->has_op = true;
                pk->op = x;
            }
            break;
        case 1:
            if (len - off < 8)
                return;
            off += 8;
            break;
        case 5:
            if (len - off < 4)
                return;
            off += 4;
            break;
        case 2:
            used = cw_varint_get(in + off, len - off, &x);
            if (used == 0 || x > len - off - used)
                return;
            off += used + (size_t)x;
            break;
        default:
            return;
        }
    }
    pk->complete = true;
}

/*
 * The checks every top-level decoder makes first. The version is checked before
 * the rest of the message, so that a peer speaking another version hears
 * CW_EVERSION rather than CW_EDECODE for a layout this code does not know.
 */
static int check_frame(const uint8_t *in, size_t len, const struct cw_wire_limits *lim,
                       struct peek *pk)
{
    /* Peeked even when the frame is too big, so its error reply can be addressed. */
    peek_header(in, len, pk);
    if (len > lim->frame_bytes_max)
        return CW_ETOOBIG;
    if (len == 0)
        return CW_EDECODE;
    if (pk->has_version)
        return pk->version == CW_WIRE_VERSION ? CW_OK : CW_EVERSION;
    /* proto3 omits a zero field: a well-formed message without one says 0. */
    return pk->complete ? CW_EVERSION : CW_EDECODE;
}

/* ----------------------------------------------- pass 2: wire-format scan */

struct scan_bounds {
    uint32_t repeated_messages_max; /* occurrences of any repeated message field */
};

static bool type_is_varint(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL:
    case PROTOBUF_C_TYPE_ENUM:
        return true;
    default:
        return false;
    }
}

static size_t type_fixed_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 4;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 0;
    }
}

/* Elements in a packed repeated field's payload, or -1 when it is malformed. */
static int64_t packed_count(ProtobufCType t, const uint8_t *p, size_t len)
{
    if (type_is_varint(t)) {
        int64_t n = 0;
        for (size_t i = 0; i < len; i++)
            n += (p[i] & 0x80) == 0;
        /* The last varint must end inside the payload. */
        return len > 0 && (p[len - 1] & 0x80) ? -1 : n;
    }
    size_t size = type_fixed_size(t);
    if (size == 0 || len % size != 0)
        return -1;
    return (int64_t)(len / size);
}

/*
 * Walks one message's encoding: every field well-formed and inside the buffer;
 * a singular field at most once; every repeated scalar or bytes field (vector
 * clocks, and a status's region names) at most CW_REGIONS_MAX entries; every
 * repeated message field at most b->repeated_messages_max occurrences; at most
 * SCAN_UNKNOWN_MAX unknown fields; sub-messages recursively. Returns CW_OK, CW_EDECODE or
 * CW_ETOOBIG.
 */
static int scan_message(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                        unsigned depth, const struct scan_bounds *b)
{
    uint64_t count[SCAN_FIELDS_MAX] = {0};
    unsigned unknown = 0;
    CW_ASSERT(d->n_fields <= SCAN_FIELDS_MAX);
    if (depth > SCAN_DEPTH_MAX)
        return CW_EDECODE;
    size_t off = 0;
    while (off < len) {
        uint64_t key, x;
        size_t used = cw_varint_get(p + off, len - off, &key);
        if (used == 0 || key > UINT32_MAX || (key >> 3) == 0)
            return CW_EDECODE;
        off += used;
        unsigned wire_type = (unsigned)(key & 7);
        const uint8_t *payload = NULL;
        size_t payload_len = 0;
        switch (wire_type) {
        case 0:
            used = cw_varint_get(p + off, len - off, &x);
            if (used == 0)
                return CW_EDECODE;
            off += used;
            break;
        case 1:
            if (len - off < 8)
                return CW_EDECODE;
            off += 8;
            break;
        case 5:
            if (len - off < 4)
                return CW_EDECODE;
            off += 4;
            break;
        case 2:
            used = cw_varint_get(p + off, len - off, &x);
            if (used == 0 || x > len - off - used)
                return CW_EDECODE;
            payload = p + off + used;
            payload_len = (size_t)x;
            off += used + payload_len;
            break;
        default: /* groups (3, 4) are not part of proto3; 6 and 7 do not exist */
            return CW_EDECODE;
        }
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
        if (f == NULL) {
            if (++unknown > SCAN_UNKNOWN_MAX)
                return CW_EDECODE;
            continue;
        }
        size_t idx = (size_t)(f - d->fields);
        int64_t elems = 1;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (wire_type != 2)
                return CW_EDECODE;
            int rc = scan_message(f->descriptor, payload, payload_len, depth + 1, b);
            if (rc != CW_OK)
                return rc;
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED && wire_type == 2 &&
                   f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES) {
            elems = packed_count(f->type, payload, payload_len);
            if (elems < 0)
                return CW_EDECODE;
        }
        count[idx] += (uint64_t)elems;
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            if (count[idx] > 1)
                return CW_EDECODE;
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (count[idx] > b->repeated_messages_max)
                return CW_ETOOBIG;
        } else if (count[idx] > CW_REGIONS_MAX) {
            return CW_EDECODE;
        }
    }
    return CW_OK;
}

/* ------------------------------------------------ pass 4: conversions */

/* The number of entries to send: trailing zero entries are left out. */
static size_t vc_width(const struct cw_vclock *v)
{
    size_t n = CW_REGIONS_MAX;
    while (n > 0 && v->ts[n - 1] == 0)
        n--;
    return n;
}

/* Points a repeated field at v's entries. protobuf-c's packer only reads
 * through the pointer, so the const can be cast away. */
static void vc_to_pb(const struct cw_vclock *v, size_t *n, uint64_t **ts)
{
    *n = vc_width(v);
    *ts = *n ? (uint64_t *)v->ts : NULL;
}

static int vc_from_pb(struct cw_vclock *v, size_t n, const uint64_t *ts)
{
    cw_vc_zero(v);
    if (n > CW_REGIONS_MAX)
        return CW_EDECODE;
    for (size_t i = 0; i < n; i++)
        v->ts[i] = ts[i];
    return CW_OK;
}

/* Takes ownership of a bytes field's buffer (see pb_allocator) and leaves the
 * field empty, so free_unpacked does not free it again. */
static uint8_t *take_bytes(ProtobufCBinaryData *b)
{
    if (b->len == 0)
        return NULL;
    uint8_t *p = b->data;
    b->data = NULL;
    b->len = 0;
    return p;
}

/* Copies a name (bucket, region) into a NUL-terminated array of cap bytes. */
static int name_from_pb(char *dst, size_t cap, const ProtobufCBinaryData *b)
{
    dst[0] = '\0';
    if (b->len > cap - 1)
        return CW_ETOOBIG;
    if (b->len > 0 && memchr(b->data, '\0', b->len) != NULL)
        return CW_EDECODE;
    if (b->len > 0)
        memcpy(dst, b->data, b->len);
    dst[b->len] = '\0';
    return CW_OK;
}

/* A name array must hold its NUL terminator. */
static int name_to_pb(const char *name, size_t cap, ProtobufCBinaryData *b)
{
    size_t n = strnlen(name, cap);
    if (n == cap)
        return CW_EINVAL;
    b->len = n;
    b->data = n ? (uint8_t *)name : NULL;
    return CW_OK;
}

static int version_to_pb(const struct cw_version *v, Causeway__Version *pv)
{
    causeway__version__init(pv);
    if (v->dot.origin >= CW_REGIONS_MAX || (v->value_len && v->value == NULL) ||
        (v->tombstone && v->value_len))
        return CW_EINVAL;
    pv->origin = v->dot.origin;
    pv->ts = v->dot.ts;
    pv->tombstone = v->tombstone;
    vc_to_pb(&v->kctx, &pv->n_kctx, &pv->kctx);
    pv->value.len = v->value_len;
    pv->value.data = v->value_len ? v->value : NULL;
    return CW_OK;
}

/* On failure out owns nothing. */
static int version_from_pb(Causeway__Version *pv, uint32_t value_bytes_max, struct cw_version *out)
{
    memset(out, 0, sizeof(*out));
    if (pv->value.len > value_bytes_max)
        return CW_ETOOBIG;
    if (pv->origin >= CW_REGIONS_MAX || (pv->tombstone && pv->value.len))
        return CW_EDECODE;
    int rc = vc_from_pb(&out->kctx, pv->n_kctx, pv->kctx);
    if (rc != CW_OK)
        return rc;
    out->dot.origin = (uint8_t)pv->origin;
    out->dot.ts = pv->ts;
    out->tombstone = pv->tombstone;
    out->value_len = (uint32_t)pv->value.len;
    out->value = take_bytes(&pv->value);
    return CW_OK;
}

/* -------------------------------------------------------- LZ4 framing */

static void lz4_prefs(LZ4F_preferences_t *prefs, size_t content_size)
{
    memset(prefs, 0, sizeof(*prefs));
    /* The receiver reads the size from the header and checks it against its
     * bound before it allocates; the checksum catches a corrupted batch. */
    prefs->frameInfo.contentSize = content_size;
    prefs->frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
}

static int lz4_frame(const uint8_t *raw, size_t raw_len, uint8_t **out, size_t *out_len)
{
    LZ4F_preferences_t prefs;
    lz4_prefs(&prefs, raw_len);
    size_t bound = LZ4F_compressFrameBound(raw_len, &prefs);
    uint8_t *buf = malloc(bound);
    if (buf == NULL)
        return CW_ENOMEM;
    size_t n = LZ4F_compressFrame(buf, bound, raw, raw_len, &prefs);
    if (LZ4F_isError(n)) {
        /* With a buffer of the bound's size only a failed allocation inside
         * LZ4 can get here. */
        free(buf);
        return CW_ENOMEM;
    }
    *out = buf;
    *out_len = n;
    return CW_OK;
}

/* Decompresses exactly one LZ4 frame that fills all of src and declares its
 * content size, which must be at most max; *out is malloc'd. */
static int lz4_unframe(const uint8_t *src, size_t len, size_t max, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    LZ4F_dctx *dctx = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return CW_ENOMEM;
    int rc = CW_EDECODE;
    LZ4F_frameInfo_t info;
    size_t spos = len;
    size_t hint = LZ4F_getFrameInfo(dctx, &info, src, &spos);
    if (LZ4F_isError(hint) || info.frameType != LZ4F_frame || info.contentSize == 0)
        goto err_after_dctx;
    if (info.contentSize > max) {
        rc = CW_ETOOBIG;
        goto err_after_dctx;
    }
    size_t cap = (size_t)info.contentSize;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        rc = CW_ENOMEM;
        goto err_after_dctx;
    }
    size_t dpos = 0;
    /* Every round consumes input or produces output, or the frame is broken
     * (truncated, or longer than it declared): the loop ends. */
    while (hint != 0) {
        size_t dsize = cap - dpos;
        size_t ssize = len - spos;
        if (ssize == 0)
            goto err_after_buf;
        hint = LZ4F_decompress(dctx, buf + dpos, &dsize, src + spos, &ssize, NULL);
        if (LZ4F_isError(hint) || (ssize == 0 && dsize == 0))
            goto err_after_buf;
        spos += ssize;
        dpos += dsize;
    }
    if (spos != len || dpos != cap)
        goto err_after_buf;
    LZ4F_freeDecompressionContext(dctx);
    *out = buf;
    *out_len = cap;
    return CW_OK;

err_after_buf:
    free(buf);
err_after_dctx:
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

/* --------------------------------------------------------- peer frames */

static int record_to_pb(const struct cw_record *r, Causeway__Record *pr, Causeway__Version *pv)
{
    causeway__record__init(pr);
    if (r->key_len > CW_WIRE_FULL_KEY_MAX || (r->key_len && r->key == NULL))
        return CW_EINVAL;
    int rc = version_to_pb(&r->version, pv);
    if (rc != CW_OK)
        return rc;
    pr->prev_ts = r->prev_ts;
    pr->consistency = r->consistency;
    pr->conflict = r->conflict;
    vc_to_pb(&r->deps, &pr->n_deps, &pr->deps);
    pr->key.len = r->key_len;
    pr->key.data = r->key_len ? r->key : NULL;
    pr->version = pv;
    return CW_OK;
}

/* On failure out owns nothing (the caller's cw_record_free is harmless). */
static int record_from_pb(Causeway__Record *pr, const struct cw_wire_limits *lim,
                          struct cw_record *out)
{
    memset(out, 0, sizeof(*out));
    if (pr->version == NULL || pr->consistency > UINT8_MAX || pr->conflict > UINT8_MAX)
        return CW_EDECODE;
    if (pr->key.len > CW_WIRE_FULL_KEY_MAX)
        return CW_ETOOBIG;
    int rc = vc_from_pb(&out->deps, pr->n_deps, pr->deps);
    if (rc != CW_OK)
        return rc;
    rc = version_from_pb(pr->version, lim->value_bytes_max, &out->version);
    if (rc != CW_OK)
        return rc;
    /* A key is never NULL, even an empty one (which the replica rejects), so
     * that copying the record never hands memcpy a NULL pointer. */
    out->key_len = (uint32_t)pr->key.len;
    out->key = out->key_len ? take_bytes(&pr->key) : malloc(1);
    if (out->key == NULL) {
        cw_record_free(out);
        return CW_ENOMEM;
    }
    out->prev_ts = pr->prev_ts;
    out->consistency = (uint8_t)pr->consistency;
    out->conflict = (uint8_t)pr->conflict;
    return CW_OK;
}

static int peer_type_to_pb(enum cw_msg_type t, Causeway__PeerType *out)
{
    switch (t) {
    case CW_MSG_RECORDS:
        *out = CAUSEWAY__PEER_TYPE__PEER_RECORDS;
        return CW_OK;
    case CW_MSG_HEARTBEAT:
        *out = CAUSEWAY__PEER_TYPE__PEER_HEARTBEAT;
        return CW_OK;
    case CW_MSG_NACK:
        *out = CAUSEWAY__PEER_TYPE__PEER_NACK;
        return CW_OK;
    case CW_MSG_SNAP_REQUEST:
        *out = CAUSEWAY__PEER_TYPE__PEER_SNAPSHOT_REQUEST;
        return CW_OK;
    case CW_MSG_SNAP_CHUNK:
        *out = CAUSEWAY__PEER_TYPE__PEER_SNAPSHOT_CHUNK;
        return CW_OK;
    case CW_MSG_RAFT:
        *out = CAUSEWAY__PEER_TYPE__PEER_RAFT;
        return CW_OK;
    }
    return CW_EINVAL;
}

/* ------------------------------------------------------ Raft messages */

/*
 * The bounds a Raft message must keep on the wire, shared by the encoder and
 * the decoder so that whatever one accepts the other does too: a known message
 * type and flags, known entry types, at most CW_RAFT_MSG_ENTRIES_MAX entries of
 * at most CW_RAFT_ENTRY_BYTES_MAX bytes, a snapshot of at most
 * CW_RAFT_SNAP_BYTES_MAX bytes, and no NULL buffer behind a length. The
 * semantic checks (regions of the cluster, which types carry entries,
 * consecutive indexes, terms) need the cluster's size, which this layer does
 * not know: the node makes them with cw_raft_msg_check. Returns CW_OK,
 * CW_ETOOBIG (over a bound) or CW_EDECODE.
 */
static int raft_bounds(const struct cw_raft_msg *r)
{
    if (r->n_entries > CW_RAFT_MSG_ENTRIES_MAX || r->snap_len > CW_RAFT_SNAP_BYTES_MAX)
        return CW_ETOOBIG;
    if (r->type < CW_RAFT_PREVOTE || r->type > CW_RAFT_PROPOSE ||
        (r->flags & ~CW_RAFT_F_TRANSFER) != 0 || (r->n_entries > 0 && r->entries == NULL) ||
        (r->snap_len > 0 && r->snap == NULL))
        return CW_EDECODE;
    for (uint32_t i = 0; i < r->n_entries; i++) {
        const struct cw_raft_entry *e = &r->entries[i];
        if (e->len > CW_RAFT_ENTRY_BYTES_MAX)
            return CW_ETOOBIG;
        if ((e->type != CW_RAFT_ENTRY_NOOP && e->type != CW_RAFT_ENTRY_DATA) ||
            (e->len > 0 && e->data == NULL))
            return CW_EDECODE;
    }
    return CW_OK;
}

/* A RAFT frame carries the envelope (version, type, regions) and the Raft
 * message, nothing else: the replication fields stay at their defaults. */
static bool raft_envelope_empty(const struct cw_msg *m)
{
    static const struct cw_vclock zero;
    return memcmp(&m->applied, &zero, sizeof(zero)) == 0 &&
           memcmp(&m->received, &zero, sizeof(zero)) == 0 && m->clock == 0 && m->stream_end == 0 &&
           m->stream_sent == 0 && m->resend_after == 0 && m->n_records == 0 && m->flags == 0 &&
           m->stream_base == 0 && m->snap_after_len == 0 && m->snap_next_len == 0 &&
           m->n_snapkeys == 0 && memcmp(&m->snap_applied, &zero, sizeof(zero)) == 0 &&
           memcmp(&m->snap_chain, &zero, sizeof(zero)) == 0 && m->snap_clock == 0;
}

/* Encodes a CW_MSG_RAFT message: CW_EINVAL when it breaks raft_bounds, has
 * no Raft message, names other regions than the envelope or sets another
 * frame type's fields; CW_ETOOBIG over the frame bound. */
static int encode_raft(const struct cw_msg *m, uint8_t **out, size_t *len)
{
    const struct cw_raft_msg *r = m->raft;
    if (m->type != CW_MSG_RAFT || r == NULL || m->from >= CW_REGIONS_MAX ||
        m->to >= CW_REGIONS_MAX || r->from != m->from || r->to != m->to ||
        !raft_envelope_empty(m) || raft_bounds(r) != CW_OK)
        return CW_EINVAL;
    Causeway__PeerFrame pf = CAUSEWAY__PEER_FRAME__INIT;
    Causeway__RaftMessage rm = CAUSEWAY__RAFT_MESSAGE__INIT;
    pf.version = CW_WIRE_VERSION;
    pf.type = CAUSEWAY__PEER_TYPE__PEER_RAFT;
    pf.from_region = m->from;
    pf.to_region = m->to;
    pf.raft = &rm;
    rm.type = r->type;
    rm.flags = r->flags;
    rm.term = r->term;
    rm.log_term = r->log_term;
    rm.index = r->index;
    rm.commit = r->commit;
    rm.reject = r->reject;
    rm.reject_hint = r->reject_hint;
    rm.ctx = r->ctx;
    rm.snap.len = r->snap_len;
    rm.snap.data = r->snap_len ? r->snap : NULL;
    int rc = CW_ENOMEM;
    Causeway__RaftEntry *ents = NULL, **ptrs = NULL;
    if (r->n_entries > 0) {
        ents = calloc(r->n_entries, sizeof(*ents));
        ptrs = calloc(r->n_entries, sizeof(*ptrs));
        if (ents == NULL || ptrs == NULL)
            goto err_after_entries;
        for (uint32_t i = 0; i < r->n_entries; i++) {
            const struct cw_raft_entry *e = &r->entries[i];
            causeway__raft_entry__init(&ents[i]);
            ents[i].term = e->term;
            ents[i].index = e->index;
            ents[i].type = e->type;
            ents[i].data.len = e->len;
            ents[i].data.data = e->len ? e->data : NULL;
            ptrs[i] = &ents[i];
        }
        rm.n_entries = r->n_entries;
        rm.entries = ptrs;
    }
    size_t size = causeway__peer_frame__get_packed_size(&pf);
    if (size > CW_WIRE_FRAME_BYTES_MAX) {
        rc = CW_ETOOBIG;
        goto err_after_entries;
    }
    uint8_t *buf = malloc(size);
    if (buf == NULL)
        goto err_after_entries;
    size_t packed = causeway__peer_frame__pack(&pf, buf);
    CW_ASSERT(packed == size);
    *out = buf;
    *len = packed;
    rc = CW_OK;

err_after_entries:
    free(ptrs);
    free(ents);
    return rc;
}

/* Decodes a RAFT frame's Raft message into out->raft (from and to are the
 * envelope's, already in out). On failure out->raft may be half filled: the
 * caller's cw_msg_free releases it. */
static int raft_from_pb(const Causeway__PeerFrame *pf, struct cw_msg *out)
{
    Causeway__RaftMessage *rm = pf->raft;
    if (rm == NULL || pf->n_applied || pf->n_received || pf->clock || pf->stream_end ||
        pf->stream_sent || pf->resend_after || pf->n_records || pf->batch.len || pf->flags ||
        pf->stream_base || pf->n_snap_keys || pf->snap_after.len || pf->snap_next.len ||
        pf->n_snap_applied || pf->n_snap_chain || pf->snap_clock)
        return CW_EDECODE;
    /* Bounds before anything is allocated for them. */
    if (rm->n_entries > CW_RAFT_MSG_ENTRIES_MAX || rm->snap.len > CW_RAFT_SNAP_BYTES_MAX)
        return CW_ETOOBIG;
    if (rm->type > UINT8_MAX || rm->flags > UINT8_MAX)
        return CW_EDECODE;
    for (size_t i = 0; i < rm->n_entries; i++) {
        if (rm->entries[i]->data.len > CW_RAFT_ENTRY_BYTES_MAX)
            return CW_ETOOBIG;
        if (rm->entries[i]->type > UINT8_MAX)
            return CW_EDECODE;
    }
    struct cw_raft_msg *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return CW_ENOMEM;
    out->raft = r;
    r->type = (uint8_t)rm->type;
    r->from = out->from;
    r->to = out->to;
    r->flags = (uint8_t)rm->flags;
    r->term = rm->term;
    r->log_term = rm->log_term;
    r->index = rm->index;
    r->commit = rm->commit;
    r->reject = rm->reject;
    r->reject_hint = rm->reject_hint;
    r->ctx = rm->ctx;
    if (rm->n_entries > 0) {
        r->entries = calloc(rm->n_entries, sizeof(*r->entries));
        if (r->entries == NULL)
            return CW_ENOMEM;
        for (size_t i = 0; i < rm->n_entries; i++) {
            Causeway__RaftEntry *pe = rm->entries[i];
            struct cw_raft_entry *e = &r->entries[i];
            e->term = pe->term;
            e->index = pe->index;
            e->type = (uint8_t)pe->type;
            e->len = (uint32_t)pe->data.len;
            e->data = take_bytes(&pe->data);
            r->n_entries++; /* counted once it owns its bytes */
        }
    }
    r->snap_len = (uint32_t)rm->snap.len;
    r->snap = take_bytes(&rm->snap);
    return raft_bounds(r);
}

/* Size of a length-delimited field with a payload of n bytes (tag < 16). */
static size_t delimited_size(size_t n)
{
    uint8_t tmp[10];
    return 1 + cw_varint_put(tmp, n) + n;
}

/*
 * Chooses records first..*next-1 so that the frame stays within the protocol
 * bounds whatever LZ4 makes of them (the compression bound is the worst case),
 * and packs and compresses them into *batch.
 */
static int encode_batch(const struct cw_msg *m, uint32_t first, size_t envelope_max, uint32_t *next,
                        uint8_t **batch, size_t *batch_len, struct cw_wire_repl_stats *st)
{
    uint32_t avail = m->n_records - first;
    uint32_t cap = avail < CW_WIRE_RECORDS_MAX ? avail : CW_WIRE_RECORDS_MAX;
    int rc = CW_ENOMEM;
    Causeway__Record *recs = calloc(cap, sizeof(*recs));
    Causeway__Version *vers = calloc(cap, sizeof(*vers));
    Causeway__Record **ptrs = calloc(cap, sizeof(*ptrs));
    if (recs == NULL || vers == NULL || ptrs == NULL)
        goto err_after_arrays;
    LZ4F_preferences_t prefs;
    size_t raw = 0;
    uint32_t n = 0;
    while (n < cap) {
        rc = record_to_pb(&m->records[first + n], &recs[n], &vers[n]);
        if (rc != CW_OK)
            goto err_after_arrays;
        size_t grown = raw + delimited_size(causeway__record__get_packed_size(&recs[n]));
        lz4_prefs(&prefs, grown);
        if (grown > CW_WIRE_BATCH_BYTES_MAX ||
            envelope_max + LZ4F_compressFrameBound(grown, &prefs) > CW_WIRE_FRAME_BYTES_MAX)
            break;
        ptrs[n] = &recs[n];
        raw = grown;
        n++;
    }
    if (n == 0) {
        rc = CW_ETOOBIG;
        goto err_after_arrays;
    }
    Causeway__RecordBatch rb = CAUSEWAY__RECORD_BATCH__INIT;
    rb.n_records = n;
    rb.records = ptrs;
    CW_ASSERT(causeway__record_batch__get_packed_size(&rb) == raw);
    uint8_t *rawbuf = malloc(raw);
    if (rawbuf == NULL) {
        rc = CW_ENOMEM;
        goto err_after_arrays;
    }
    size_t packed = causeway__record_batch__pack(&rb, rawbuf);
    CW_ASSERT(packed == raw);
    rc = lz4_frame(rawbuf, packed, batch, batch_len);
    free(rawbuf);
    if (rc != CW_OK)
        goto err_after_arrays;
    *next = first + n;
    /* The accounting of docs/protocol.md, "Replication bytes": what is not key
     * or value in the serialized batch is metadata. */
    memset(st, 0, sizeof(*st));
    st->records = n;
    for (uint32_t i = 0; i < n; i++) {
        st->key_bytes += m->records[first + i].key_len;
        st->value_bytes += m->records[first + i].version.value_len;
    }
    st->batch_bytes = packed;
    CW_ASSERT(packed >= st->key_bytes + st->value_bytes);
    st->metadata_bytes = packed - st->key_bytes - st->value_bytes;
    st->batch_lz4_bytes = *batch_len;

err_after_arrays:
    free(ptrs);
    free(vers);
    free(recs);
    return rc;
}

int cw_wire_encode_peer_part(const struct cw_msg *m, uint32_t first, uint32_t *next, uint8_t **out,
                             size_t *len)
{
    return cw_wire_encode_peer_counted(m, first, next, out, len, NULL);
}

int cw_wire_encode_peer_counted(const struct cw_msg *m, uint32_t first, uint32_t *next,
                                uint8_t **out, size_t *len, struct cw_wire_repl_stats *acc)
{
    *out = NULL;
    *len = 0;
    *next = 0;
    if (m->type == CW_MSG_RAFT || m->raft != NULL)
        return first == 0 ? encode_raft(m, out, len) : CW_EINVAL;
    Causeway__PeerFrame pf = CAUSEWAY__PEER_FRAME__INIT;
    if (peer_type_to_pb(m->type, &pf.type) != CW_OK || m->from >= CW_REGIONS_MAX ||
        m->to >= CW_REGIONS_MAX)
        return CW_EINVAL;
    if (m->type == CW_MSG_RECORDS ? first >= m->n_records || m->records == NULL
                                  : first != 0 || m->n_records != 0)
        return CW_EINVAL;
    pf.version = CW_WIRE_VERSION;
    pf.from_region = m->from;
    pf.to_region = m->to;
    vc_to_pb(&m->applied, &pf.n_applied, &pf.applied);
    vc_to_pb(&m->received, &pf.n_received, &pf.received);
    pf.clock = m->clock;
    pf.stream_end = m->stream_end;
    pf.stream_sent = m->stream_sent;
    pf.resend_after = m->resend_after;
    pf.flags = m->flags;
    pf.stream_base = m->stream_base;

    uint8_t *batch = NULL;
    struct cw_wire_repl_stats bst = {0};
    int rc;
    /* State transfer: keys and their states (the store's encoding). */
    Causeway__SnapshotKey *sk = NULL, **skp = NULL;
    if (m->n_snapkeys > CW_SNAP_KEYS_HARD_MAX || m->snap_after_len > CW_WIRE_FULL_KEY_MAX ||
        m->snap_next_len > CW_WIRE_FULL_KEY_MAX || (m->n_snapkeys && m->snapkeys == NULL) ||
        (m->snap_after_len && m->snap_after == NULL) || (m->snap_next_len && m->snap_next == NULL))
        return CW_EINVAL;
    if (m->type == CW_MSG_SNAP_REQUEST || m->type == CW_MSG_SNAP_CHUNK) {
        pf.snap_after.len = m->snap_after_len;
        pf.snap_after.data = m->snap_after_len ? m->snap_after : NULL;
        pf.snap_next.len = m->snap_next_len;
        pf.snap_next.data = m->snap_next_len ? m->snap_next : NULL;
        vc_to_pb(&m->snap_applied, &pf.n_snap_applied, &pf.snap_applied);
        vc_to_pb(&m->snap_chain, &pf.n_snap_chain, &pf.snap_chain);
        pf.snap_clock = m->snap_clock;
    } else if (m->n_snapkeys || m->snap_after_len || m->snap_next_len) {
        return CW_EINVAL;
    }
    if (m->n_snapkeys) {
        sk = calloc(m->n_snapkeys, sizeof(*sk));
        skp = calloc(m->n_snapkeys, sizeof(*skp));
        if (sk == NULL || skp == NULL) {
            rc = CW_ENOMEM;
            goto err_after_snap;
        }
        for (uint32_t i = 0; i < m->n_snapkeys; i++) {
            const struct cw_snapkey *k = &m->snapkeys[i];
            causeway__snapshot_key__init(&sk[i]);
            skp[i] = &sk[i];
            if (k->key_len > CW_WIRE_FULL_KEY_MAX || (k->key_len && k->key == NULL)) {
                rc = CW_EINVAL;
                goto err_after_snap;
            }
            sk[i].key.len = k->key_len;
            sk[i].key.data = k->key_len ? k->key : NULL;
            uint8_t *st;
            uint32_t st_len;
            rc = cw_encode_keystate(&k->state, &st, &st_len);
            if (rc != CW_OK)
                goto err_after_snap;
            sk[i].state.len = st_len;
            sk[i].state.data = st;
        }
        pf.n_snap_keys = m->n_snapkeys;
        pf.snap_keys = skp;
    }
    if (m->type == CW_MSG_RECORDS) {
        /* The envelope without its batch, plus the largest n_records field and
         * the batch field's tag and length. */
        size_t envelope_max =
            causeway__peer_frame__get_packed_size(&pf) + FIELD_VARINT_MAX + FIELD_VARINT_MAX;
        size_t batch_len;
        rc = encode_batch(m, first, envelope_max, next, &batch, &batch_len, &bst);
        if (rc != CW_OK)
            goto err_after_snap;
        pf.n_records = *next - first;
        pf.batch.len = batch_len;
        pf.batch.data = batch;
    }
    size_t size = causeway__peer_frame__get_packed_size(&pf);
    if (size > CW_WIRE_FRAME_BYTES_MAX) {
        rc = CW_ETOOBIG;
        goto err_after_batch;
    }
    uint8_t *buf = malloc(size);
    if (buf == NULL) {
        rc = CW_ENOMEM;
        goto err_after_batch;
    }
    size_t packed = causeway__peer_frame__pack(&pf, buf);
    CW_ASSERT(packed == size);
    free(batch);
    *out = buf;
    *len = packed;
    if (acc != NULL && m->type == CW_MSG_RECORDS) {
        acc->records += bst.records;
        acc->frames++;
        acc->metadata_bytes += bst.metadata_bytes;
        acc->key_bytes += bst.key_bytes;
        acc->value_bytes += bst.value_bytes;
        acc->batch_bytes += bst.batch_bytes;
        acc->batch_lz4_bytes += bst.batch_lz4_bytes;
        acc->frame_bytes += packed;
    }
    rc = CW_OK;
    goto out_snap;

err_after_batch:
    free(batch);
    *next = 0;
out_snap:
err_after_snap:
    if (sk != NULL)
        for (uint32_t i = 0; i < m->n_snapkeys; i++)
            free(sk[i].state.data);
    free(sk);
    free(skp);
    return rc;
}

int cw_wire_encode_peer(const struct cw_msg *m, uint8_t **out, size_t *len)
{
    uint32_t next;
    int rc = cw_wire_encode_peer_part(m, 0, &next, out, len);
    if (rc == CW_OK && next != m->n_records) {
        free(*out);
        *out = NULL;
        *len = 0;
        return CW_ETOOBIG;
    }
    return rc;
}

static int decode_batch(const Causeway__PeerFrame *pf, const struct cw_wire_limits *lim,
                        struct cw_msg *out)
{
    if (pf->n_records == 0 || pf->batch.len == 0)
        return CW_EDECODE;
    if (pf->n_records > lim->records_max)
        return CW_ETOOBIG;
    uint8_t *raw;
    size_t raw_len;
    int rc = lz4_unframe(pf->batch.data, pf->batch.len, lim->batch_bytes_max, &raw, &raw_len);
    if (rc != CW_OK)
        return rc;
    struct scan_bounds sb = {.repeated_messages_max = pf->n_records};
    rc = scan_message(&causeway__record_batch__descriptor, raw, raw_len, 0, &sb);
    if (rc != CW_OK) {
        /* More records than declared is a malformed frame, not a big one: the
         * declared count was already within the bound. */
        rc = CW_EDECODE;
        goto err_after_raw;
    }
    Causeway__RecordBatch *rb = causeway__record_batch__unpack(&pb_allocator, raw_len, raw);
    if (rb == NULL) {
        rc = CW_EDECODE;
        goto err_after_raw;
    }
    if (rb->n_records != pf->n_records) {
        rc = CW_EDECODE;
        goto err_after_unpack;
    }
    out->records = calloc(rb->n_records, sizeof(*out->records));
    if (out->records == NULL) {
        rc = CW_ENOMEM;
        goto err_after_unpack;
    }
    for (size_t i = 0; i < rb->n_records; i++) {
        /* Counted before it is filled: a zeroed record is safe to free. */
        out->n_records++;
        rc = record_from_pb(rb->records[i], lim, &out->records[i]);
        if (rc != CW_OK)
            goto err_after_unpack;
    }

err_after_unpack:
    causeway__record_batch__free_unpacked(rb, &pb_allocator);
err_after_raw:
    free(raw);
    return rc;
}

static int peer_from_pb(const Causeway__PeerFrame *pf, const struct cw_wire_limits *lim,
                        struct cw_msg *out)
{
    switch (pf->type) {
    case CAUSEWAY__PEER_TYPE__PEER_RECORDS:
        out->type = CW_MSG_RECORDS;
        break;
    case CAUSEWAY__PEER_TYPE__PEER_HEARTBEAT:
        out->type = CW_MSG_HEARTBEAT;
        break;
    case CAUSEWAY__PEER_TYPE__PEER_NACK:
        out->type = CW_MSG_NACK;
        break;
    case CAUSEWAY__PEER_TYPE__PEER_SNAPSHOT_REQUEST:
        out->type = CW_MSG_SNAP_REQUEST;
        break;
    case CAUSEWAY__PEER_TYPE__PEER_SNAPSHOT_CHUNK:
        out->type = CW_MSG_SNAP_CHUNK;
        break;
    case CAUSEWAY__PEER_TYPE__PEER_RAFT:
        out->type = CW_MSG_RAFT;
        break;
    default:
        return CW_EDECODE;
    }
    if (pf->from_region >= CW_REGIONS_MAX || pf->to_region >= CW_REGIONS_MAX)
        return CW_EDECODE;
    out->from = (uint8_t)pf->from_region;
    out->to = (uint8_t)pf->to_region;
    if (out->type == CW_MSG_RAFT)
        return raft_from_pb(pf, out);
    if (pf->raft != NULL)
        return CW_EDECODE;
    int rc = vc_from_pb(&out->applied, pf->n_applied, pf->applied);
    if (rc == CW_OK)
        rc = vc_from_pb(&out->received, pf->n_received, pf->received);
    if (rc != CW_OK)
        return rc;
    out->clock = pf->clock;
    out->stream_end = pf->stream_end;
    out->stream_sent = pf->stream_sent;
    out->resend_after = pf->resend_after;
    if (pf->flags & ~(uint32_t)CW_MSGF_ALL)
        return CW_EDECODE;
    out->flags = pf->flags;
    out->stream_base = pf->stream_base;
    bool snap = out->type == CW_MSG_SNAP_REQUEST || out->type == CW_MSG_SNAP_CHUNK;
    if (!snap && (pf->n_snap_keys || pf->snap_after.len || pf->snap_next.len ||
                  pf->n_snap_applied || pf->n_snap_chain || pf->snap_clock))
        return CW_EDECODE;
    if (snap) {
        if (pf->n_records != 0 || pf->batch.len != 0 ||
            (out->type == CW_MSG_SNAP_REQUEST && pf->n_snap_keys))
            return CW_EDECODE;
        if (pf->snap_after.len > CW_WIRE_FULL_KEY_MAX || pf->snap_next.len > CW_WIRE_FULL_KEY_MAX ||
            pf->n_snap_keys > CW_SNAP_KEYS_HARD_MAX)
            return CW_ETOOBIG;
        rc = vc_from_pb(&out->snap_applied, pf->n_snap_applied, pf->snap_applied);
        if (rc == CW_OK)
            rc = vc_from_pb(&out->snap_chain, pf->n_snap_chain, pf->snap_chain);
        if (rc != CW_OK)
            return rc;
        out->snap_clock = pf->snap_clock;
        /* Never NULL, even empty, so the core never hands memcpy a NULL. */
        out->snap_after = malloc(pf->snap_after.len ? pf->snap_after.len : 1);
        out->snap_next = malloc(pf->snap_next.len ? pf->snap_next.len : 1);
        if (out->snap_after == NULL || out->snap_next == NULL)
            return CW_ENOMEM;
        if (pf->snap_after.len)
            memcpy(out->snap_after, pf->snap_after.data, pf->snap_after.len);
        if (pf->snap_next.len)
            memcpy(out->snap_next, pf->snap_next.data, pf->snap_next.len);
        out->snap_after_len = (uint32_t)pf->snap_after.len;
        out->snap_next_len = (uint32_t)pf->snap_next.len;
        if (pf->n_snap_keys) {
            out->snapkeys = calloc(pf->n_snap_keys, sizeof(*out->snapkeys));
            if (out->snapkeys == NULL)
                return CW_ENOMEM;
        }
        for (size_t i = 0; i < pf->n_snap_keys; i++) {
            const Causeway__SnapshotKey *k = pf->snap_keys[i];
            struct cw_snapkey *d = &out->snapkeys[i];
            cw_keystate_init(&d->state);
            out->n_snapkeys++; /* counted before it is filled: an empty one frees */
            if (k->key.len > CW_WIRE_FULL_KEY_MAX)
                return CW_ETOOBIG;
            d->key = malloc(k->key.len ? k->key.len : 1);
            if (d->key == NULL)
                return CW_ENOMEM;
            if (k->key.len)
                memcpy(d->key, k->key.data, k->key.len);
            d->key_len = (uint32_t)k->key.len;
            rc = cw_decode_keystate(&d->state, k->state.data, k->state.len, lim->value_bytes_max);
            if (rc != CW_OK)
                return rc;
        }
        return CW_OK;
    }
    if (out->type == CW_MSG_RECORDS)
        return decode_batch(pf, lim, out);
    return pf->n_records == 0 && pf->batch.len == 0 ? CW_OK : CW_EDECODE;
}

int cw_wire_decode_peer(const uint8_t *in, size_t len, const struct cw_wire_limits *lim,
                        struct cw_msg *out)
{
    struct cw_wire_limits def;
    lim = limits_or_default(lim, &def);
    memset(out, 0, sizeof(*out));
    CW_ASSERT(in != NULL || len == 0);
    struct peek pk;
    int rc = check_frame(in, len, lim, &pk);
    if (rc != CW_OK)
        return rc;
    struct scan_bounds sb = {.repeated_messages_max = CW_SNAP_KEYS_HARD_MAX};
    rc = scan_message(&causeway__peer_frame__descriptor, in, len, 0, &sb);
    if (rc != CW_OK)
        return rc;
    Causeway__PeerFrame *pf = causeway__peer_frame__unpack(&pb_allocator, len, in);
    if (pf == NULL)
        return CW_EDECODE;
    rc = peer_from_pb(pf, lim, out);
    causeway__peer_frame__free_unpacked(pf, &pb_allocator);
    if (rc != CW_OK) {
        cw_msg_free(out);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* ------------------------------------------------------------ requests */

static bool op_valid(uint64_t op)
{
    return op >= CW_OP_PUT && op <= CW_OP_LINK;
}

static bool op_writes(enum cw_wire_op op)
{
    return op == CW_OP_PUT || op == CW_OP_DEL;
}

static bool op_on_key(enum cw_wire_op op)
{
    return op == CW_OP_PUT || op == CW_OP_DEL || op == CW_OP_GET;
}

/* Packs a message after checking its size against bytes_max. */
static int pack_message(const ProtobufCMessage *msg, size_t bytes_max, uint8_t **out, size_t *len)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    if (size > bytes_max)
        return CW_ETOOBIG;
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return CW_ENOMEM;
    size_t packed = protobuf_c_message_pack(msg, buf);
    CW_ASSERT(packed == size);
    *out = buf;
    *len = packed;
    return CW_OK;
}

int cw_wire_encode_request(const struct cw_wire_request *r, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    Causeway__Request pr = CAUSEWAY__REQUEST__INIT;
    if (!op_valid(r->op))
        return CW_EINVAL;
    pr.version = CW_WIRE_VERSION;
    pr.req_id = r->req_id;
    pr.op = (Causeway__Op)r->op;
    /* Only the fields the op uses are sent (causeway.proto). */
    if (op_on_key(r->op)) {
        if (name_to_pb(r->bucket, sizeof(r->bucket), &pr.bucket) != CW_OK ||
            (r->key_len && r->key == NULL))
            return CW_EINVAL;
        if (r->key_len > CW_KEY_BYTES_MAX)
            return CW_EKEY;
        pr.key.len = r->key_len;
        pr.key.data = r->key_len ? r->key : NULL;
        vc_to_pb(&r->context, &pr.n_context, &pr.context);
    }
    if (op_writes(r->op) && r->has_kctx) {
        pr.has_kctx = true;
        vc_to_pb(&r->kctx, &pr.n_kctx, &pr.kctx);
    }
    if (op_writes(r->op)) {
        if (r->cond > CW_COND_ABSENT)
            return CW_EINVAL;
        pr.cond = (Causeway__PutCond)r->cond;
        pr.cond_version = r->cond == CW_COND_VERSION ? r->cond_version : 0;
    }
    if (r->op == CW_OP_PUT) {
        if (r->value_len && r->value == NULL)
            return CW_EINVAL;
        pr.value.len = r->value_len;
        pr.value.data = r->value_len ? r->value : NULL;
    }
    if (r->op == CW_OP_LINK) {
        if (name_to_pb(r->link_from, sizeof(r->link_from), &pr.link_from) != CW_OK ||
            name_to_pb(r->link_to, sizeof(r->link_to), &pr.link_to) != CW_OK ||
            r->link_action < CW_LINK_CUT || r->link_action > CW_LINK_DELAY)
            return CW_EINVAL;
        pr.link_action = (Causeway__LinkAction)r->link_action;
        pr.delay_ms = r->delay_ms;
    }
    return pack_message(&pr.base, CW_WIRE_FRAME_BYTES_MAX, out, len);
}

static int request_from_pb(Causeway__Request *pr, const struct cw_wire_limits *lim,
                           struct cw_wire_request *out)
{
    enum cw_wire_op op = out->op;
    int rc = CW_OK;
    if (op_on_key(op)) {
        rc = name_from_pb(out->bucket, sizeof(out->bucket), &pr->bucket);
        if (rc != CW_OK)
            return rc;
        if (pr->key.len > CW_KEY_BYTES_MAX)
            return CW_ETOOBIG;
        rc = vc_from_pb(&out->context, pr->n_context, pr->context);
        if (rc != CW_OK)
            return rc;
    }
    if (op_writes(op) && pr->has_kctx) {
        out->has_kctx = true;
        rc = vc_from_pb(&out->kctx, pr->n_kctx, pr->kctx);
        if (rc != CW_OK)
            return rc;
    }
    if (op_writes(op)) {
        /* A condition this version does not know cannot be honoured: refuse
         * the request rather than write unconditionally. */
        if (pr->cond > CAUSEWAY__PUT_COND__PUT_COND_ABSENT)
            return CW_EDECODE;
        out->cond = (uint8_t)pr->cond;
        out->cond_version = out->cond == CW_COND_VERSION ? pr->cond_version : 0;
    }
    if (op == CW_OP_PUT && pr->value.len > lim->value_bytes_max)
        return CW_ETOOBIG;
    if (op == CW_OP_LINK) {
        rc = name_from_pb(out->link_from, sizeof(out->link_from), &pr->link_from);
        if (rc == CW_OK)
            rc = name_from_pb(out->link_to, sizeof(out->link_to), &pr->link_to);
        if (rc != CW_OK)
            return rc;
        /* A LINK without an action (or with one this version does not know)
         * cannot be carried out. */
        if (pr->link_action < CAUSEWAY__LINK_ACTION__LINK_CUT ||
            pr->link_action > CAUSEWAY__LINK_ACTION__LINK_DELAY)
            return CW_EDECODE;
        out->link_action = (enum cw_link_action)pr->link_action;
        out->delay_ms = pr->delay_ms;
    }
    /* Every check passed: take the buffers last, so a failure owns nothing. */
    if (op_on_key(op)) {
        out->key_len = (uint32_t)pr->key.len;
        out->key = take_bytes(&pr->key);
    }
    if (op == CW_OP_PUT) {
        out->value_len = (uint32_t)pr->value.len;
        out->value = take_bytes(&pr->value);
    }
    return CW_OK;
}

/* What a decoder leaves in a failed request or response: the id and op, when
 * they were readable, so that an error reply can still be addressed. */
static void set_reply_address(const struct peek *pk, uint64_t *req_id, enum cw_wire_op *op)
{
    *req_id = pk->has_req_id ? pk->req_id : 0;
    *op = pk->has_op && op_valid(pk->op) ? (enum cw_wire_op)pk->op : CW_OP_NONE;
}

int cw_wire_decode_request(const uint8_t *in, size_t len, const struct cw_wire_limits *lim,
                           struct cw_wire_request *out)
{
    struct cw_wire_limits def;
    lim = limits_or_default(lim, &def);
    memset(out, 0, sizeof(*out));
    CW_ASSERT(in != NULL || len == 0);
    struct peek pk;
    int rc = check_frame(in, len, lim, &pk);
    if (rc == CW_OK) {
        struct scan_bounds sb = {.repeated_messages_max = 0};
        rc = scan_message(&causeway__request__descriptor, in, len, 0, &sb);
    }
    Causeway__Request *pr = NULL;
    if (rc == CW_OK) {
        pr = causeway__request__unpack(&pb_allocator, len, in);
        if (pr == NULL || !op_valid(pr->op))
            rc = CW_EDECODE;
    }
    if (rc == CW_OK) {
        out->req_id = pr->req_id;
        out->op = (enum cw_wire_op)pr->op;
        rc = request_from_pb(pr, lim, out);
    }
    if (pr != NULL)
        causeway__request__free_unpacked(pr, &pb_allocator);
    if (rc != CW_OK) {
        memset(out, 0, sizeof(*out));
        set_reply_address(&pk, &out->req_id, &out->op);
    }
    return rc;
}

void cw_wire_request_free(struct cw_wire_request *r)
{
    if (r == NULL)
        return;
    free(r->key);
    free(r->value);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------- status */

/* The rules of the strong section (wire.h): ids inside the region list, peers
 * distinct and never the node itself; all zero when the node has none. */
static bool strong_valid(const struct cw_wire_status *st)
{
    const struct cw_wire_strong_status *ss = &st->strong;
    if (!st->has_strong) {
        static const struct cw_wire_strong_status zero;
        return memcmp(ss, &zero, sizeof(zero)) == 0;
    }
    if (ss->n_peers >= st->n_regions || (ss->has_leader && ss->leader >= st->n_regions) ||
        (!ss->has_leader && ss->leader != 0) || (ss->has_vote && ss->vote >= st->n_regions) ||
        (!ss->has_vote && ss->vote != 0))
        return false;
    uint32_t seen = 1u << st->region;
    for (uint32_t i = 0; i < ss->n_peers; i++) {
        const struct cw_wire_raft_peer *p = &ss->peers[i];
        if (p->region >= st->n_regions || (seen & (1u << p->region)) != 0 ||
            (!p->heard && p->last_heard_ms != 0))
            return false;
        seen |= 1u << p->region;
    }
    return true;
}

/* The rules of struct cw_wire_status (wire.h), for the encoder and the decoder. */
static bool status_valid(const struct cw_wire_status *st)
{
    if (st->n_regions == 0 || st->n_regions > CW_REGIONS_MAX || st->region >= st->n_regions ||
        st->n_peers >= st->n_regions)
        return false;
    for (unsigned i = 0; i < st->n_regions; i++) {
        size_t n = strnlen(st->regions[i], sizeof(st->regions[i]));
        if (n == 0 || n == sizeof(st->regions[i]))
            return false;
    }
    for (unsigned i = st->n_regions; i < CW_REGIONS_MAX; i++)
        if (st->applied.ts[i] != 0 || st->stable.ts[i] != 0)
            return false;
    uint32_t seen = 1u << st->region;
    for (uint32_t i = 0; i < st->n_peers; i++) {
        unsigned p = st->peers[i].region;
        if (p >= st->n_regions || (seen & (1u << p)) != 0)
            return false;
        seen |= 1u << p;
    }
    return strong_valid(st);
}

static void latency_to_pb(const struct cw_wire_latency *l, Causeway__Latency *pl)
{
    pl->count = l->count;
    pl->p50_us = l->p50_us;
    pl->p90_us = l->p90_us;
    pl->p99_us = l->p99_us;
    pl->max_us = l->max_us;
}

static void latency_from_pb(const Causeway__Latency *pl, struct cw_wire_latency *l)
{
    memset(l, 0, sizeof(*l));
    if (pl == NULL)
        return;
    l->count = pl->count;
    l->p50_us = pl->p50_us;
    l->p90_us = pl->p90_us;
    l->p99_us = pl->p99_us;
    l->max_us = pl->max_us;
}

/* The protobuf-c form of a status: every part lives in this struct, so an
 * encoder needs no allocation and borrows the names from the status. */
struct status_pb {
    Causeway__Status st;
    ProtobufCBinaryData names[CW_REGIONS_MAX];
    Causeway__PeerStatus peers[CW_REGIONS_MAX - 1];
    Causeway__PeerStatus *peer_ptrs[CW_REGIONS_MAX - 1];
    Causeway__Latency vis[CW_REGIONS_MAX - 1];
    Causeway__ReplicaCounters replica;
    Causeway__NodeCounters node;
    Causeway__StrongStatus strong;
    Causeway__RaftPeerStatus raft_peers[CW_REGIONS_MAX - 1];
    Causeway__RaftPeerStatus *raft_peer_ptrs[CW_REGIONS_MAX - 1];
    Causeway__RaftCounters raft_counters;
    Causeway__StrongCounters strong_counters;
    Causeway__ReplicationCounters replication;
};

static void strong_to_pb(const struct cw_wire_strong_status *ss, struct status_pb *pb)
{
    Causeway__StrongStatus *s = &pb->strong;
    *s = (Causeway__StrongStatus)CAUSEWAY__STRONG_STATUS__INIT;
    s->role = (Causeway__RaftRole)ss->role;
    s->term = ss->term;
    s->has_leader = ss->has_leader;
    s->leader = ss->leader;
    s->has_vote = ss->has_vote;
    s->vote = ss->vote;
    s->commit = ss->commit;
    s->applied = ss->applied;
    s->log_first = ss->log_first;
    s->log_last = ss->log_last;
    s->snap_index = ss->snap_index;
    s->snap_term = ss->snap_term;
    for (uint32_t i = 0; i < ss->n_peers; i++) {
        Causeway__RaftPeerStatus *pp = &pb->raft_peers[i];
        *pp = (Causeway__RaftPeerStatus)CAUSEWAY__RAFT_PEER_STATUS__INIT;
        pp->region_id = ss->peers[i].region;
        pp->heard = ss->peers[i].heard;
        pp->last_heard_ms = ss->peers[i].last_heard_ms;
        pp->suspected = ss->peers[i].suspected;
        pb->raft_peer_ptrs[i] = pp;
    }
    s->n_peers = ss->n_peers;
    s->peers = ss->n_peers ? pb->raft_peer_ptrs : NULL;

    Causeway__RaftCounters *rc = &pb->raft_counters;
    *rc = (Causeway__RaftCounters)CAUSEWAY__RAFT_COUNTERS__INIT;
    rc->elections = ss->raft.elections;
    rc->prevotes = ss->raft.prevotes;
    rc->leader_changes = ss->raft.leader_changes;
    rc->stepdowns_quorum = ss->raft.stepdowns_quorum;
    rc->proposals_forwarded = ss->raft.proposals_forwarded;
    rc->read_index_rounds = ss->raft.read_index_rounds;
    rc->snapshots_sent = ss->raft.snapshots_sent;
    rc->snapshots_received = ss->raft.snapshots_received;
    rc->transfers = ss->raft.transfers;
    rc->msgs_refused = ss->raft.msgs_refused;
    rc->disruptions = ss->raft.disruptions;
    s->raft = rc;

    Causeway__StrongCounters *sc = &pb->strong_counters;
    *sc = (Causeway__StrongCounters)CAUSEWAY__STRONG_COUNTERS__INIT;
    sc->puts = ss->counters.puts;
    sc->gets = ss->counters.gets;
    sc->conflicts = ss->counters.conflicts;
    sc->timeouts = ss->counters.timeouts;
    sc->no_quorum = ss->counters.no_quorum;
    sc->full = ss->counters.full;
    sc->keys = ss->counters.keys;
    sc->bytes = ss->counters.bytes;
    s->strong = sc;
    pb->st.strong = s;
}

/* The strong section of a decoded status; its ids are checked afterwards with
 * the rest (status_valid), but every count against its array first. */
static int strong_from_pb(const Causeway__StrongStatus *s, struct cw_wire_strong_status *ss)
{
    if (s->n_peers > CW_REGIONS_MAX - 1 || s->leader >= CW_REGIONS_MAX || s->vote >= CW_REGIONS_MAX)
        return CW_EDECODE;
    ss->role = (uint32_t)s->role;
    ss->term = s->term;
    ss->has_leader = s->has_leader;
    ss->leader = (uint8_t)s->leader;
    ss->has_vote = s->has_vote;
    ss->vote = (uint8_t)s->vote;
    ss->commit = s->commit;
    ss->applied = s->applied;
    ss->log_first = s->log_first;
    ss->log_last = s->log_last;
    ss->snap_index = s->snap_index;
    ss->snap_term = s->snap_term;
    ss->n_peers = (uint32_t)s->n_peers;
    for (size_t i = 0; i < s->n_peers; i++) {
        const Causeway__RaftPeerStatus *pp = s->peers[i];
        if (pp->region_id >= CW_REGIONS_MAX)
            return CW_EDECODE;
        ss->peers[i].region = (uint8_t)pp->region_id;
        ss->peers[i].heard = pp->heard;
        ss->peers[i].last_heard_ms = pp->last_heard_ms;
        ss->peers[i].suspected = pp->suspected;
    }
    const Causeway__RaftCounters *rc = s->raft;
    if (rc != NULL) {
        ss->raft.elections = rc->elections;
        ss->raft.prevotes = rc->prevotes;
        ss->raft.leader_changes = rc->leader_changes;
        ss->raft.stepdowns_quorum = rc->stepdowns_quorum;
        ss->raft.proposals_forwarded = rc->proposals_forwarded;
        ss->raft.read_index_rounds = rc->read_index_rounds;
        ss->raft.snapshots_sent = rc->snapshots_sent;
        ss->raft.snapshots_received = rc->snapshots_received;
        ss->raft.transfers = rc->transfers;
        ss->raft.msgs_refused = rc->msgs_refused;
        ss->raft.disruptions = rc->disruptions;
    }
    const Causeway__StrongCounters *sc = s->strong;
    if (sc != NULL) {
        ss->counters.puts = sc->puts;
        ss->counters.gets = sc->gets;
        ss->counters.conflicts = sc->conflicts;
        ss->counters.timeouts = sc->timeouts;
        ss->counters.no_quorum = sc->no_quorum;
        ss->counters.full = sc->full;
        ss->counters.keys = sc->keys;
        ss->counters.bytes = sc->bytes;
    }
    return CW_OK;
}

static void status_to_pb(const struct cw_wire_status *st, struct status_pb *pb)
{
    pb->st = (Causeway__Status)CAUSEWAY__STATUS__INIT;
    pb->st.region_id = st->region;
    for (unsigned i = 0; i < st->n_regions; i++) {
        pb->names[i].data = (uint8_t *)st->regions[i];
        pb->names[i].len = strlen(st->regions[i]);
    }
    pb->st.n_regions = st->n_regions;
    pb->st.regions = pb->names;
    pb->st.durability = (Causeway__Durability)st->durability;
    pb->st.uptime_us = st->uptime_us;
    pb->st.now_us = st->now_us;
    pb->st.clock = st->clock;
    vc_to_pb(&st->applied, &pb->st.n_applied, &pb->st.applied);
    vc_to_pb(&st->stable, &pb->st.n_stable, &pb->st.stable);
    pb->st.buffered = st->buffered;
    pb->st.outbox_total = st->outbox_total;
    pb->st.waiting = st->waiting;
    pb->st.keys = st->keys;
    pb->st.outbox_bytes = st->outbox_bytes;
    pb->st.buffered_bytes = st->buffered_bytes;
    pb->st.key_cache_bytes = st->key_cache_bytes;
    pb->st.outbox_body_bytes = st->outbox_body_bytes;
    for (uint32_t i = 0; i < st->n_peers; i++) {
        const struct cw_wire_peer_status *p = &st->peers[i];
        Causeway__PeerStatus *pp = &pb->peers[i];
        *pp = (Causeway__PeerStatus)CAUSEWAY__PEER_STATUS__INIT;
        pp->region_id = p->region;
        pp->link_cut = p->link_cut;
        pp->delay_ms = p->delay_ms;
        pp->queued = p->queued;
        pp->frames_sent = p->frames_sent;
        pp->frames_dropped = p->frames_dropped;
        pp->frames_received = p->frames_received;
        pp->bytes_sent = p->bytes_sent;
        pp->outbox_pending = p->outbox_pending;
        pp->inflight_bytes = p->inflight_bytes;
        pb->vis[i] = (Causeway__Latency)CAUSEWAY__LATENCY__INIT;
        latency_to_pb(&p->visibility, &pb->vis[i]);
        pp->visibility = &pb->vis[i];
        pb->peer_ptrs[i] = pp;
    }
    pb->st.n_peers = st->n_peers;
    pb->st.peers = st->n_peers ? pb->peer_ptrs : NULL;

    Causeway__ReplicaCounters *rc = &pb->replica;
    *rc = (Causeway__ReplicaCounters)CAUSEWAY__REPLICA_COUNTERS__INIT;
    rc->puts = st->replica.puts;
    rc->gets = st->replica.gets;
    rc->deletes = st->replica.deletes;
    rc->remote_applied = st->replica.remote_applied;
    rc->remote_duplicates = st->replica.remote_duplicates;
    rc->remote_gaps = st->replica.remote_gaps;
    rc->nacks_sent = st->replica.nacks_sent;
    rc->nacks_received = st->replica.nacks_received;
    rc->resent_records = st->replica.resent_records;
    rc->requests_waited = st->replica.requests_waited;
    rc->requests_timed_out = st->replica.requests_timed_out;
    rc->buffer_full_drops = st->replica.buffer_full_drops;
    rc->tombstones_collected = st->replica.tombstones_collected;
    rc->stamps_refused = st->replica.stamps_refused;
    rc->errors = st->replica.errors;
    rc->keys_loaded = st->replica.keys_loaded;
    rc->keys_evicted = st->replica.keys_evicted;
    rc->bodies_loaded = st->replica.bodies_loaded;
    rc->bodies_evicted = st->replica.bodies_evicted;
    rc->store_read_errors = st->replica.store_read_errors;
    pb->st.replica = rc;

    Causeway__NodeCounters *nc = &pb->node;
    *nc = (Causeway__NodeCounters)CAUSEWAY__NODE_COUNTERS__INIT;
    nc->requests = st->node.requests;
    nc->bad_requests = st->node.bad_requests;
    nc->bad_peer_frames = st->node.bad_peer_frames;
    nc->replies_dropped = st->node.replies_dropped;
    nc->commits = st->node.commits;
    nc->commit_records = st->node.commit_records;
    nc->auth_refused = st->node.auth_refused;
    nc->handshakes_failed = st->node.handshakes_failed;
    nc->peer_identity_refused = st->node.peer_identity_refused;
    nc->admin_refused = st->node.admin_refused;
    nc->connections_refused = st->node.connections_refused;
    nc->checkpoints_failed = st->node.checkpoints_failed;
    nc->checkpoints_failing = st->node.checkpoints_failing;
    pb->st.node = nc;
    Causeway__ReplicationCounters *rp = &pb->replication;
    *rp = (Causeway__ReplicationCounters)CAUSEWAY__REPLICATION_COUNTERS__INIT;
    rp->records = st->replication.records;
    rp->frames = st->replication.frames;
    rp->metadata_bytes = st->replication.metadata_bytes;
    rp->key_bytes = st->replication.key_bytes;
    rp->value_bytes = st->replication.value_bytes;
    rp->batch_bytes = st->replication.batch_bytes;
    rp->batch_lz4_bytes = st->replication.batch_lz4_bytes;
    rp->frame_bytes = st->replication.frame_bytes;
    pb->st.replication = rp;
    pb->st.client_connections = st->client_connections;
    pb->st.client_connections_max = st->client_connections_max;
    if (st->has_strong)
        strong_to_pb(&st->strong, pb);
}

/* Converts and checks a decoded status into a new struct in *out. */
static int status_from_pb(const Causeway__Status *ps, struct cw_wire_status **out)
{
    if (ps->n_regions == 0 || ps->n_regions > CW_REGIONS_MAX || ps->region_id >= ps->n_regions ||
        ps->n_peers >= ps->n_regions || ps->n_applied > ps->n_regions ||
        ps->n_stable > ps->n_regions)
        return CW_EDECODE;
    struct cw_wire_status *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return CW_ENOMEM;
    int rc = CW_OK;
    st->region = (uint8_t)ps->region_id;
    st->n_regions = (uint8_t)ps->n_regions;
    for (size_t i = 0; i < ps->n_regions && rc == CW_OK; i++) {
        rc = name_from_pb(st->regions[i], sizeof(st->regions[i]), &ps->regions[i]);
        if (rc == CW_OK && st->regions[i][0] == '\0')
            rc = CW_EDECODE;
    }
    if (rc == CW_OK)
        rc = vc_from_pb(&st->applied, ps->n_applied, ps->applied);
    if (rc == CW_OK)
        rc = vc_from_pb(&st->stable, ps->n_stable, ps->stable);
    if (rc != CW_OK) {
        free(st);
        return rc == CW_ENOMEM ? rc : CW_EDECODE;
    }
    st->durability = (uint32_t)ps->durability;
    st->uptime_us = ps->uptime_us;
    st->now_us = ps->now_us;
    st->clock = ps->clock;
    st->buffered = ps->buffered;
    st->outbox_total = ps->outbox_total;
    st->waiting = ps->waiting;
    st->keys = ps->keys;
    st->outbox_bytes = ps->outbox_bytes;
    st->buffered_bytes = ps->buffered_bytes;
    st->key_cache_bytes = ps->key_cache_bytes;
    st->outbox_body_bytes = ps->outbox_body_bytes;
    st->n_peers = (uint32_t)ps->n_peers;
    for (size_t i = 0; i < ps->n_peers; i++) {
        const Causeway__PeerStatus *pp = ps->peers[i];
        struct cw_wire_peer_status *p = &st->peers[i];
        if (pp->region_id >= CW_REGIONS_MAX) {
            free(st);
            return CW_EDECODE;
        }
        p->region = (uint8_t)pp->region_id;
        p->link_cut = pp->link_cut;
        p->delay_ms = pp->delay_ms;
        p->queued = pp->queued;
        p->frames_sent = pp->frames_sent;
        p->frames_dropped = pp->frames_dropped;
        p->frames_received = pp->frames_received;
        p->bytes_sent = pp->bytes_sent;
        p->outbox_pending = pp->outbox_pending;
        p->inflight_bytes = pp->inflight_bytes;
        latency_from_pb(pp->visibility, &p->visibility);
    }
    const Causeway__ReplicaCounters *rc_pb = ps->replica;
    if (rc_pb != NULL) {
        st->replica.puts = rc_pb->puts;
        st->replica.gets = rc_pb->gets;
        st->replica.deletes = rc_pb->deletes;
        st->replica.remote_applied = rc_pb->remote_applied;
        st->replica.remote_duplicates = rc_pb->remote_duplicates;
        st->replica.remote_gaps = rc_pb->remote_gaps;
        st->replica.nacks_sent = rc_pb->nacks_sent;
        st->replica.nacks_received = rc_pb->nacks_received;
        st->replica.resent_records = rc_pb->resent_records;
        st->replica.requests_waited = rc_pb->requests_waited;
        st->replica.requests_timed_out = rc_pb->requests_timed_out;
        st->replica.buffer_full_drops = rc_pb->buffer_full_drops;
        st->replica.tombstones_collected = rc_pb->tombstones_collected;
        st->replica.stamps_refused = rc_pb->stamps_refused;
        st->replica.errors = rc_pb->errors;
        st->replica.keys_loaded = rc_pb->keys_loaded;
        st->replica.keys_evicted = rc_pb->keys_evicted;
        st->replica.bodies_loaded = rc_pb->bodies_loaded;
        st->replica.bodies_evicted = rc_pb->bodies_evicted;
        st->replica.store_read_errors = rc_pb->store_read_errors;
    }
    const Causeway__NodeCounters *nc = ps->node;
    if (nc != NULL) {
        st->node.requests = nc->requests;
        st->node.bad_requests = nc->bad_requests;
        st->node.bad_peer_frames = nc->bad_peer_frames;
        st->node.replies_dropped = nc->replies_dropped;
        st->node.commits = nc->commits;
        st->node.commit_records = nc->commit_records;
        st->node.auth_refused = nc->auth_refused;
        st->node.handshakes_failed = nc->handshakes_failed;
        st->node.peer_identity_refused = nc->peer_identity_refused;
        st->node.admin_refused = nc->admin_refused;
        st->node.connections_refused = nc->connections_refused;
        st->node.checkpoints_failed = nc->checkpoints_failed;
        st->node.checkpoints_failing = nc->checkpoints_failing;
    }
    const Causeway__ReplicationCounters *rp = ps->replication;
    if (rp != NULL) {
        st->replication.records = rp->records;
        st->replication.frames = rp->frames;
        st->replication.metadata_bytes = rp->metadata_bytes;
        st->replication.key_bytes = rp->key_bytes;
        st->replication.value_bytes = rp->value_bytes;
        st->replication.batch_bytes = rp->batch_bytes;
        st->replication.batch_lz4_bytes = rp->batch_lz4_bytes;
        st->replication.frame_bytes = rp->frame_bytes;
    }
    st->client_connections = ps->client_connections;
    st->client_connections_max = ps->client_connections_max;
    if (ps->strong != NULL) {
        st->has_strong = true;
        if (strong_from_pb(ps->strong, &st->strong) != CW_OK) {
            free(st);
            return CW_EDECODE;
        }
    }
    if (!status_valid(st)) {
        free(st);
        return CW_EDECODE;
    }
    *out = st;
    return CW_OK;
}

/* ----------------------------------------------------------- responses */

int cw_wire_encode_response(const struct cw_wire_response *r, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    Causeway__Response pr = CAUSEWAY__RESPONSE__INIT;
    if ((r->op != CW_OP_NONE && !op_valid(r->op)) || (r->op == CW_OP_NONE && r->err == CW_OK) ||
        r->err < 0 || strnlen(r->message, sizeof(r->message)) == sizeof(r->message))
        return CW_EINVAL;
    pr.version = CW_WIRE_VERSION;
    pr.req_id = r->req_id;
    pr.op = (Causeway__Op)r->op;
    pr.err = (uint32_t)r->err;
    pr.message = (char *)r->message;
    if (op_on_key(r->op) && (r->err == CW_OK || r->err == CW_ECONFLICT))
        pr.key_version = r->key_version;
    if (r->err != CW_OK)
        return pack_message(&pr.base, CW_WIRE_RESPONSE_BYTES_MAX, out, len);

    if (op_on_key(r->op)) {
        if (r->conflict > CW_CONFLICT_SIBLINGS)
            return CW_EINVAL;
        pr.conflict = r->conflict;
        vc_to_pb(&r->kctx, &pr.n_kctx, &pr.kctx);
        vc_to_pb(&r->seen, &pr.n_seen, &pr.seen);
    }
    if (op_writes(r->op)) {
        if (r->origin >= CW_REGIONS_MAX)
            return CW_EINVAL;
        pr.origin = r->origin;
        pr.ts = r->ts;
        pr.kctx_valid = r->kctx_valid;
    }
    if (r->op == CW_OP_STATUS) {
        if (r->status == NULL || !status_valid(r->status))
            return CW_EINVAL;
        struct status_pb spb;
        status_to_pb(r->status, &spb);
        pr.status = &spb.st;
        return pack_message(&pr.base, CW_WIRE_RESPONSE_BYTES_MAX, out, len);
    }
    if (r->op != CW_OP_GET || r->n_versions == 0)
        return pack_message(&pr.base, CW_WIRE_RESPONSE_BYTES_MAX, out, len);

    if (r->n_versions > CW_WIRE_VERSIONS_MAX)
        return CW_ETOOBIG;
    if (r->versions == NULL)
        return CW_EINVAL;
    int rc = CW_ENOMEM;
    Causeway__Version *vers = calloc(r->n_versions, sizeof(*vers));
    Causeway__Version **ptrs = calloc(r->n_versions, sizeof(*ptrs));
    if (vers == NULL || ptrs == NULL)
        goto err_after_arrays;
    for (uint32_t i = 0; i < r->n_versions; i++) {
        rc = version_to_pb(&r->versions[i], &vers[i]);
        if (rc != CW_OK)
            goto err_after_arrays;
        ptrs[i] = &vers[i];
    }
    pr.n_versions = r->n_versions;
    pr.versions = ptrs;
    rc = pack_message(&pr.base, CW_WIRE_RESPONSE_BYTES_MAX, out, len);

err_after_arrays:
    free(ptrs);
    free(vers);
    return rc;
}

static int response_from_pb(Causeway__Response *pr, const struct cw_wire_limits *lim,
                            struct cw_wire_response *out)
{
    /* protobuf-c gives an absent string as "", but the bytes are not ours to trust. */
    const char *message = pr->message ? pr->message : "";
    size_t n = strlen(message);
    if (n > CW_WIRE_MESSAGE_MAX)
        return CW_ETOOBIG;
    memcpy(out->message, message, n + 1);
    if (op_on_key(out->op) && (out->err == CW_OK || out->err == CW_ECONFLICT))
        out->key_version = pr->key_version;
    if (out->err != CW_OK)
        return CW_OK;
    if (out->op == CW_OP_NONE)
        return CW_EDECODE;
    int rc;
    if (op_on_key(out->op)) {
        if (pr->conflict > CW_CONFLICT_SIBLINGS)
            return CW_EDECODE;
        out->conflict = (uint8_t)pr->conflict;
        rc = vc_from_pb(&out->kctx, pr->n_kctx, pr->kctx);
        if (rc == CW_OK)
            rc = vc_from_pb(&out->seen, pr->n_seen, pr->seen);
        if (rc != CW_OK)
            return rc;
    }
    if (op_writes(out->op)) {
        if (pr->origin >= CW_REGIONS_MAX)
            return CW_EDECODE;
        out->origin = (uint8_t)pr->origin;
        out->ts = pr->ts;
        out->kctx_valid = pr->kctx_valid;
    }
    if (out->op == CW_OP_STATUS) {
        /* A node that answers STATUS with no status (an older release sent a
         * JSON document in field 13) gave no answer this client can use. */
        if (pr->status == NULL)
            return CW_EDECODE;
        rc = status_from_pb(pr->status, &out->status);
        if (rc != CW_OK)
            return rc;
    }
    if (out->op == CW_OP_GET && pr->n_versions > 0) {
        out->versions = calloc(pr->n_versions, sizeof(*out->versions));
        if (out->versions == NULL)
            return CW_ENOMEM;
        for (size_t i = 0; i < pr->n_versions; i++) {
            /* Counted before it is filled: a zeroed version is safe to free. */
            out->n_versions++;
            rc = version_from_pb(pr->versions[i], lim->value_bytes_max, &out->versions[i]);
            if (rc != CW_OK)
                return rc;
        }
    }
    return CW_OK;
}

int cw_wire_decode_response(const uint8_t *in, size_t len, const struct cw_wire_limits *lim,
                            struct cw_wire_response *out)
{
    struct cw_wire_limits def;
    lim = limits_or_default(lim, &def);
    memset(out, 0, sizeof(*out));
    CW_ASSERT(in != NULL || len == 0);
    struct peek pk;
    int rc = check_frame(in, len, lim, &pk);
    if (rc == CW_OK) {
        struct scan_bounds sb = {.repeated_messages_max = CW_WIRE_VERSIONS_MAX};
        rc = scan_message(&causeway__response__descriptor, in, len, 0, &sb);
    }
    Causeway__Response *pr = NULL;
    if (rc == CW_OK) {
        pr = causeway__response__unpack(&pb_allocator, len, in);
        if (pr == NULL || (pr->op != CAUSEWAY__OP__OP_UNSPECIFIED && !op_valid(pr->op)) ||
            pr->err > INT32_MAX)
            rc = CW_EDECODE;
    }
    if (rc == CW_OK) {
        out->req_id = pr->req_id;
        out->op = (enum cw_wire_op)pr->op;
        out->err = (int)pr->err;
        rc = response_from_pb(pr, lim, out);
    }
    if (pr != NULL)
        causeway__response__free_unpacked(pr, &pb_allocator);
    if (rc != CW_OK) {
        cw_wire_response_free(out);
        set_reply_address(&pk, &out->req_id, &out->op);
    }
    return rc;
}

void cw_wire_response_free(struct cw_wire_response *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->n_versions; i++)
        free(r->versions[i].value);
    free(r->versions);
    free(r->status);
    memset(r, 0, sizeof(*r));
}
