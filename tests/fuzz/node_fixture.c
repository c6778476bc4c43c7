/*
 * node_fixture.c - one node of region 1 driven as the daemon drives it, every
 * effect checked (see node_fixture.h for the input format and the properties).
 */
#include "node_fixture.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include <lz4frame.h>

#include "core/hlc.h"
#include "core/record.h"
#include "fuzz.h"
#include "wire/causeway.pb-c.h"
#include "wire/wire.h"

const uint64_t fx_adv_us[8] = {0, 1, 1000, 20000, 60000, 350000, 1200000, 15000000};

const char *const fx_bucket_names[5] = {"clww", "csib", "elww", "esib", "strong"};

static const struct cw_bucket_policy fx_buckets[5] = {
    {.name = "clww", .consistency = CW_CAUSAL, .conflict = CW_CONFLICT_LWW},
    {.name = "csib",
     .consistency = CW_CAUSAL,
     .conflict = CW_CONFLICT_SIBLINGS,
     .max_siblings = FX_MAX_SIBLINGS},
    {.name = "elww", .consistency = CW_EVENTUAL, .conflict = CW_CONFLICT_LWW},
    {.name = "esib",
     .consistency = CW_EVENTUAL,
     .conflict = CW_CONFLICT_SIBLINGS,
     .max_siblings = FX_MAX_SIBLINGS},
    {.name = "strong", .consistency = CW_STRONG, .conflict = CW_CONFLICT_LWW},
};

/* A raw batch larger than this is left as it is (it would not decode anyway). */
#define FX_RAW_BATCH_MAX (1u << 20)

/* CAUSEWAY_FUZZ_TRACE set: one line per step and per effect on stderr (to
 * read what a reproducer does). */
static int trace_on = -1;

static bool tracing(void)
{
    if (trace_on < 0)
        trace_on = getenv("CAUSEWAY_FUZZ_TRACE") != NULL;
    return trace_on;
}

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void trace(const char *fmt, ...)
{
    if (!tracing())
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void trace_stats(const struct fx *f)
{
    if (!tracing())
        return;
    const struct cw_replica *r = cw_node_replica(f->node);
    const struct cw_replica_stats *st = cw_replica_stats(r);
    const struct cw_vclock *v = cw_replica_applied(r);
    trace("  stats: applied=[%llx %llx %llx] keys=%zu buffered=%zu outbox=%zu waiting=%zu "
          "remote_applied=%llu dups=%llu gaps=%llu nacks_sent=%llu nacks_recv=%llu "
          "resent=%llu waited=%llu timed_out=%llu full_drops=%llu tombs_collected=%llu "
          "stamps_refused=%llu errors=%llu replies=%llu restarts=%llu",
          (unsigned long long)v->ts[0], (unsigned long long)v->ts[1], (unsigned long long)v->ts[2],
          cw_replica_keys(r)->count, cw_replica_buffered(r), cw_replica_outbox_len(r),
          cw_replica_waiting(r), (unsigned long long)st->remote_applied,
          (unsigned long long)st->remote_duplicates, (unsigned long long)st->remote_gaps,
          (unsigned long long)st->nacks_sent, (unsigned long long)st->nacks_received,
          (unsigned long long)st->resent_records, (unsigned long long)st->reads_waited,
          (unsigned long long)st->reads_timed_out, (unsigned long long)st->buffer_full_drops,
          (unsigned long long)st->tombstones_collected, (unsigned long long)st->stamps_refused,
          (unsigned long long)st->errors, (unsigned long long)f->replies,
          (unsigned long long)f->restarts);
}

_Noreturn void fx_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "node fixture: property failed: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    abort();
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        fx_fail("out of memory");
    return q;
}

static void *xdup(const void *p, size_t n)
{
    void *q = xrealloc(NULL, n);
    if (n)
        memcpy(q, p, n);
    return q;
}

void fx_node_config(struct cw_node_config *cfg, unsigned region)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->replica = (struct cw_replica_config){
        .region = region,
        .n_regions = FX_REGIONS,
        .buckets = fx_buckets,
        .n_buckets = 5,
        .max_value_bytes = FX_MAX_VALUE,
        .dep_buffer_max = 6,
        .outbox_max = 16,
        .batch_records_max = 3,
        .batch_bytes_max = 256,
        /* Larger than dep_buffer_max, so that one peer can overflow it. */
        .window_records = 8,
        .waiting_max = 4,
        .heartbeat_us = FX_HEARTBEAT_US,
        .nack_retry_us = FX_NACK_RETRY_US,
        .wait_us = FX_WAIT_US,
        .context_ahead_max_us = FX_AHEAD_US,
    };
    /* rand.next NULL: the node's fixed sequence (it draws nothing yet). */
}

/* ------------------------------------------------------ the durable image */

static void blob_free(struct fx_blob *b)
{
    free(b->key);
    free(b->data);
}

static void store_free(struct fx_store *s)
{
    for (size_t i = 0; i < s->n_keys; i++)
        blob_free(&s->keys[i]);
    for (size_t i = 0; i < s->n_outbox; i++)
        blob_free(&s->outbox[i]);
    free(s->keys);
    free(s->outbox);
    free(s->meta);
    memset(s, 0, sizeof(*s));
}

static void store_key(struct fx_store *s, const struct cw_persist *p)
{
    if (!cw_full_key_valid(p->key, p->key_len))
        fx_fail("persisted a key state under an invalid key (%u bytes)", p->key_len);
    size_t i = 0;
    while (i < s->n_keys &&
           (s->keys[i].key_len != p->key_len || memcmp(s->keys[i].key, p->key, p->key_len) != 0))
        i++;
    if (p->data_len == 0) { /* a deletion of the key */
        if (i < s->n_keys) {
            blob_free(&s->keys[i]);
            s->keys[i] = s->keys[--s->n_keys];
        }
        return;
    }
    struct cw_keystate st;
    int rc = cw_decode_keystate(&st, p->data, p->data_len, CW_VALUE_HARD_MAX);
    if (rc != CW_OK)
        fx_fail("persisted key state of %.*s does not decode: %d", (int)p->key_len,
                (const char *)p->key, rc);
    uint32_t n = st.n;
    cw_keystate_free(&st);
    if (n == 0)
        fx_fail("persisted an empty key state (not a deletion) for %.*s", (int)p->key_len,
                (const char *)p->key);
    if (i == s->n_keys) {
        if (s->n_keys == s->cap_keys) {
            s->cap_keys = s->cap_keys ? 2 * s->cap_keys : 16;
            s->keys = xrealloc(s->keys, s->cap_keys * sizeof(*s->keys));
        }
        s->keys[s->n_keys++] =
            (struct fx_blob){.key = xdup(p->key, p->key_len), .key_len = p->key_len};
    } else {
        free(s->keys[i].data);
    }
    s->keys[i].data = xdup(p->data, p->data_len);
    s->keys[i].len = p->data_len;
}

static void store_outbox_put(struct fx_store *s, const struct cw_persist *p)
{
    struct cw_record rec;
    int rc = cw_decode_record(&rec, p->data, p->data_len, CW_VALUE_HARD_MAX);
    if (rc != CW_OK)
        fx_fail("persisted outbox record %llu does not decode: %d", (unsigned long long)p->ts, rc);
    const char *bad = cw_record_check(&rec, FX_REGION, FX_REGIONS);
    bool mine = rec.version.dot.origin == FX_REGION && rec.version.dot.ts == p->ts;
    cw_record_free(&rec);
    if (bad != NULL)
        fx_fail("persisted outbox record %llu fails the peers' record check: %s",
                (unsigned long long)p->ts, bad);
    if (!mine)
        fx_fail("persisted outbox record %llu is not this region's record at that stamp",
                (unsigned long long)p->ts);
    size_t i = s->n_outbox;
    while (i > 0 && s->outbox[i - 1].ts > p->ts)
        i--;
    if (i > 0 && s->outbox[i - 1].ts == p->ts)
        fx_fail("outbox record %llu persisted twice", (unsigned long long)p->ts);
    if (s->n_outbox == s->cap_outbox) {
        s->cap_outbox = s->cap_outbox ? 2 * s->cap_outbox : 16;
        s->outbox = xrealloc(s->outbox, s->cap_outbox * sizeof(*s->outbox));
    }
    memmove(&s->outbox[i + 1], &s->outbox[i], (s->n_outbox - i) * sizeof(*s->outbox));
    s->outbox[i] =
        (struct fx_blob){.ts = p->ts, .data = xdup(p->data, p->data_len), .len = p->data_len};
    s->n_outbox++;
}

static void store_outbox_del(struct fx_store *s, const struct cw_persist *p)
{
    size_t i = 0;
    while (i < s->n_outbox && s->outbox[i].ts != p->ts)
        i++;
    if (i == s->n_outbox)
        fx_fail("deleted outbox record %llu, which was never persisted", (unsigned long long)p->ts);
    blob_free(&s->outbox[i]);
    memmove(&s->outbox[i], &s->outbox[i + 1], (s->n_outbox - i - 1) * sizeof(*s->outbox));
    s->n_outbox--;
}

static void store_meta(struct fx_store *s, const struct cw_persist *p)
{
    struct cw_meta m;
    int rc = cw_decode_meta(&m, p->data, p->data_len);
    if (rc != CW_OK)
        fx_fail("persisted metadata does not decode: %d", rc);
    if (s->meta != NULL) {
        /* The clock floor, V and the stream end never go back. */
        if (m.hlc < s->meta_dec.hlc)
            fx_fail("persisted clock went back: %llx after %llx", (unsigned long long)m.hlc,
                    (unsigned long long)s->meta_dec.hlc);
        if (!cw_vc_dominates(&m.applied, &s->meta_dec.applied))
            fx_fail("persisted applied vector went back");
        if (m.stream_end < s->meta_dec.stream_end)
            fx_fail("persisted stream end went back");
    }
    free(s->meta);
    s->meta = xdup(p->data, p->data_len);
    s->meta_len = p->data_len;
    s->meta_dec = m;
}

static void store_apply(struct fx_store *s, const struct cw_persist *p)
{
    switch (p->kind) {
    case CW_PERSIST_KEY:
        store_key(s, p);
        break;
    case CW_PERSIST_OUTBOX_PUT:
        store_outbox_put(s, p);
        break;
    case CW_PERSIST_OUTBOX_DEL:
        store_outbox_del(s, p);
        break;
    case CW_PERSIST_RAFT_HS: /* strong buckets: not stored yet */
    case CW_PERSIST_RAFT_TRUNC:
    case CW_PERSIST_RAFT_ENTRY:
    case CW_PERSIST_RAFT_SNAP:
        abort(); /* strong buckets are not stored yet */
    case CW_PERSIST_META:
        store_meta(s, p);
        break;
    default:
        fx_fail("unknown persist kind %d", (int)p->kind);
    }
}

/* ------------------------------------------------------------ messages */

static bool version_equal(const struct cw_version *a, const struct cw_version *b)
{
    return a->dot.origin == b->dot.origin && a->dot.ts == b->dot.ts &&
           a->tombstone == b->tombstone && memcmp(&a->kctx, &b->kctx, sizeof(a->kctx)) == 0 &&
           a->value_len == b->value_len &&
           (a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0);
}

static bool record_equal(const struct cw_record *a, const struct cw_record *b)
{
    return a->prev_ts == b->prev_ts && a->consistency == b->consistency &&
           a->conflict == b->conflict && memcmp(&a->deps, &b->deps, sizeof(a->deps)) == 0 &&
           a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0 &&
           version_equal(&a->version, &b->version);
}

/* Re-encodes m as the daemon sends it (split into frames) and decodes every
 * frame back: the peer must receive exactly m. */
static void round_trip_msg(struct fx *f, const struct cw_msg *m)
{
    uint32_t first = 0, next = 0;
    do {
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc = cw_wire_encode_peer_part(m, first, &next, &buf, &len);
        if (rc != CW_OK)
            fx_fail("cannot encode a message of type %d to region %u: %d", (int)m->type, m->to, rc);
        struct cw_msg again;
        rc = cw_wire_decode_peer(buf, len, NULL, &again);
        if (rc != CW_OK)
            fx_fail("an encoded message of type %d does not decode: %d", (int)m->type, rc);
        uint32_t n = m->type == CW_MSG_RECORDS ? next - first : 0;
        bool same = again.type == m->type && again.from == m->from && again.to == m->to &&
                    memcmp(&again.applied, &m->applied, sizeof(m->applied)) == 0 &&
                    memcmp(&again.received, &m->received, sizeof(m->received)) == 0 &&
                    again.clock == m->clock && again.stream_end == m->stream_end &&
                    again.stream_sent == m->stream_sent && again.resend_after == m->resend_after &&
                    again.n_records == n;
        for (uint32_t i = 0; same && i < n; i++)
            same = record_equal(&again.records[i], &m->records[first + i]);
        /* State transfer fields (rebuilding a region). */
        same = same && again.flags == m->flags && again.stream_base == m->stream_base &&
               again.n_snapkeys == m->n_snapkeys && again.snap_after_len == m->snap_after_len &&
               again.snap_next_len == m->snap_next_len && again.snap_clock == m->snap_clock &&
               memcmp(&again.snap_applied, &m->snap_applied, sizeof(m->snap_applied)) == 0 &&
               memcmp(&again.snap_chain, &m->snap_chain, sizeof(m->snap_chain)) == 0 &&
               (m->snap_after_len == 0 ||
                memcmp(again.snap_after, m->snap_after, m->snap_after_len) == 0) &&
               (m->snap_next_len == 0 ||
                memcmp(again.snap_next, m->snap_next, m->snap_next_len) == 0);
        for (uint32_t i = 0; same && i < m->n_snapkeys; i++)
            same = again.snapkeys[i].key_len == m->snapkeys[i].key_len &&
                   memcmp(again.snapkeys[i].key, m->snapkeys[i].key, m->snapkeys[i].key_len) == 0 &&
                   cw_keystate_equal(&again.snapkeys[i].state, &m->snapkeys[i].state);
        if (!same)
            fx_fail("a message of type %d changed through the wire codec", (int)m->type);
        cw_msg_free(&again);
        if (f->hooks.frame != NULL)
            f->hooks.frame(f->hooks.ctx, m->to, buf, len);
        free(buf);
        first = next;
    } while (next != 0 && next < m->n_records);
}

/* A message leaves only after the round's records are durable: what it tells
 * a peer (the clock it promises, the acknowledgement, its records) must be in
 * the durable image already. */
static void check_msg(struct fx *f, const struct cw_msg *m)
{
    if (m->from != FX_REGION || m->to >= FX_REGIONS || m->to == FX_REGION)
        fx_fail("message from %u to %u", m->from, m->to);
    if (f->store.meta == NULL)
        fx_fail("a message left before any metadata was persisted");
    const struct cw_meta *dm = &f->store.meta_dec;
    for (unsigned o = 0; o < CW_REGIONS_MAX; o++) {
        if (o >= FX_REGIONS && (m->applied.ts[o] || m->received.ts[o]))
            fx_fail("message to %u names region %u outside the cluster", m->to, o);
        if (o == FX_REGION ? m->applied.ts[o] > dm->hlc : m->applied.ts[o] > dm->applied.ts[o])
            fx_fail("message to %u acknowledges applied[%u] = %llx, persisted %llx", m->to, o,
                    (unsigned long long)m->applied.ts[o],
                    (unsigned long long)(o == FX_REGION ? dm->hlc : dm->applied.ts[o]));
    }
    if (m->received.ts[FX_REGION] > dm->stream_end)
        fx_fail("message to %u names a stream end past the persisted one", m->to);
    switch (m->type) {
    case CW_MSG_HEARTBEAT:
        if (m->clock > dm->hlc)
            fx_fail("heartbeat to %u promises clock %llx, persisted floor is %llx", m->to,
                    (unsigned long long)m->clock, (unsigned long long)dm->hlc);
        if (m->stream_end > dm->stream_end || m->stream_sent > m->stream_end)
            fx_fail("heartbeat to %u: stream end %llx, sent %llx, persisted end %llx", m->to,
                    (unsigned long long)m->stream_end, (unsigned long long)m->stream_sent,
                    (unsigned long long)dm->stream_end);
        /* fall through */
    case CW_MSG_NACK:
        if (m->n_records != 0 || m->records != NULL)
            fx_fail("a message of type %d carries records", (int)m->type);
        break;
    case CW_MSG_RECORDS:
        if (m->n_records == 0)
            fx_fail("an empty RECORDS message to %u", m->to);
        for (uint32_t i = 0; i < m->n_records; i++) {
            const struct cw_record *rec = &m->records[i];
            const char *bad = cw_record_check(rec, FX_REGION, FX_REGIONS);
            if (bad != NULL)
                fx_fail("record %llx sent to %u would be refused: %s",
                        (unsigned long long)rec->version.dot.ts, m->to, bad);
            if (rec->version.dot.ts > dm->stream_end)
                fx_fail("record %llx sent to %u is past the persisted stream end",
                        (unsigned long long)rec->version.dot.ts, m->to);
            if (i > 0 && rec->prev_ts != m->records[i - 1].version.dot.ts)
                fx_fail("records sent to %u do not form a chain", m->to);
        }
        break;
    case CW_MSG_SNAP_CHUNK:
        /* An answer to a snapshot request: persisted key states, and a snapshot
         * of persisted positions. */
        if (m->n_records != 0 || m->records != NULL)
            fx_fail("a snapshot chunk carries records");
        for (uint32_t i = 0; i < m->n_snapkeys; i++)
            if (!cw_full_key_valid(m->snapkeys[i].key, m->snapkeys[i].key_len) ||
                m->snapkeys[i].state.n == 0)
                fx_fail("snapshot chunk to %u holds a bad key or an empty state", m->to);
        for (unsigned o = 0; o < CW_REGIONS_MAX; o++)
            if (o == FX_REGION ? m->snap_applied.ts[o] > dm->hlc
                               : m->snap_applied.ts[o] > dm->applied.ts[o])
                fx_fail("snapshot chunk to %u names applied[%u] past the persisted one", m->to, o);
        break;
    default:
        fx_fail("message of unknown type %d", (int)m->type);
    }
    trace("  sent %s to %u: %u records, clock %llx, stream_end %llx, sent %llx, resend_after %llx",
          m->type == CW_MSG_RECORDS     ? "RECORDS"
          : m->type == CW_MSG_HEARTBEAT ? "HEARTBEAT"
                                        : "NACK",
          m->to, m->n_records, (unsigned long long)m->clock, (unsigned long long)m->stream_end,
          (unsigned long long)m->stream_sent, (unsigned long long)m->resend_after);
    round_trip_msg(f, m);
}

/* ------------------------------------------------------------- replies */

static void track(struct fx *f, uint64_t id, int op)
{
    if (f->n_reqs == f->cap_reqs) {
        f->cap_reqs = f->cap_reqs ? 2 * f->cap_reqs : 16;
        f->reqs = xrealloc(f->reqs, f->cap_reqs * sizeof(*f->reqs));
    }
    f->reqs[f->n_reqs++] = (struct fx_req){.id = id, .op = op};
}

/* The response the daemon would send for r, through the wire codec. */
static void round_trip_response(const struct cw_reply *r, int op)
{
    struct cw_wire_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.op = (enum cw_wire_op)op;
    resp.req_id = r->req_id;
    resp.err = r->err;
    if (r->err != CW_OK)
        snprintf(resp.message, sizeof(resp.message), "%s: %s", cw_strerror(r->err), r->detail);
    resp.origin = r->dot.origin;
    resp.ts = r->dot.ts;
    resp.kctx_valid = r->kctx_valid;
    resp.kctx = r->kctx;
    resp.seen = r->seen;
    resp.conflict = (uint8_t)r->conflict;
    resp.n_versions = r->state.n;
    resp.versions = r->state.v;
    uint8_t *buf;
    size_t len;
    int rc = cw_wire_encode_response(&resp, &buf, &len);
    if (rc != CW_OK)
        fx_fail("cannot encode the response to request %llu: %d", (unsigned long long)r->req_id,
                rc);
    struct cw_wire_limits lim;
    cw_wire_limits_default(&lim);
    lim.frame_bytes_max = CW_WIRE_RESPONSE_BYTES_MAX;
    lim.value_bytes_max = CW_VALUE_HARD_MAX;
    struct cw_wire_response again;
    rc = cw_wire_decode_response(buf, len, &lim, &again);
    if (rc != CW_OK)
        fx_fail("the response to request %llu does not decode: %d", (unsigned long long)r->req_id,
                rc);
    bool same = again.op == resp.op && again.req_id == resp.req_id && again.err == resp.err &&
                strcmp(again.message, resp.message) == 0 && again.n_versions == resp.n_versions &&
                (op == CW_OP_GET || (again.origin == resp.origin && again.ts == resp.ts));
    for (uint32_t i = 0; same && i < again.n_versions; i++)
        same = version_equal(&again.versions[i], &resp.versions[i]);
    if (!same)
        fx_fail("the response to request %llu changed through the wire codec",
                (unsigned long long)r->req_id);
    cw_wire_response_free(&again);
    free(buf);
}

static void check_reply(struct fx *f, const struct cw_reply *r)
{
    size_t i = 0;
    while (i < f->n_reqs && f->reqs[i].id != r->req_id)
        i++;
    if (i == f->n_reqs)
        fx_fail("reply to request %llu, which is not waiting for one",
                (unsigned long long)r->req_id);
    int op = f->reqs[i].op;
    f->reqs[i] = f->reqs[--f->n_reqs];
    trace("  reply %llu (op %d): err %d %s; dot (%u, %llx), %u versions",
          (unsigned long long)r->req_id, op, r->err, r->detail, r->dot.origin,
          (unsigned long long)r->dot.ts, r->state.n);
    f->replies++;
    if (r->kind != (op == CW_OP_GET ? CW_REPLY_GET : CW_REPLY_PUT))
        fx_fail("request %llu (op %d) got a reply of kind %d", (unsigned long long)r->req_id, op,
                (int)r->kind);
    if (r->err < 0 || r->err >= CW_ERR_COUNT_)
        fx_fail("request %llu: unknown error %d", (unsigned long long)r->req_id, r->err);
    if (memchr(r->detail, '\0', sizeof(r->detail)) == NULL)
        fx_fail("request %llu: detail not terminated", (unsigned long long)r->req_id);
    if (r->err != CW_OK) {
        if (r->state.n != 0)
            fx_fail("request %llu failed (%d) but returns versions", (unsigned long long)r->req_id,
                    r->err);
    } else if (r->kind == CW_REPLY_PUT) {
        if (r->dot.origin != FX_REGION || r->dot.ts <= f->last_own_ts)
            fx_fail("put %llu stamped (%u, %llx) after this region's %llx",
                    (unsigned long long)r->req_id, r->dot.origin, (unsigned long long)r->dot.ts,
                    (unsigned long long)f->last_own_ts);
        f->last_own_ts = r->dot.ts;
        if (!cw_dot_covered(&r->seen, r->dot) ||
            (r->kctx_valid && !cw_dot_covered(&r->kctx, r->dot)))
            fx_fail("put %llu: its reply does not cover its own dot",
                    (unsigned long long)r->req_id);
    } else {
        for (uint32_t k = 0; k < r->state.n; k++) {
            const struct cw_version *v = &r->state.v[k];
            if (k > 0 && cw_dot_cmp(r->state.v[k - 1].dot, v->dot) >= 0)
                fx_fail("get %llu: versions out of order", (unsigned long long)r->req_id);
            if (v->dot.origin >= FX_REGIONS || !cw_dot_covered(&r->kctx, v->dot) ||
                !cw_dot_covered(&r->seen, v->dot))
                fx_fail("get %llu: version (%u, %llx) not covered by the reply's contexts",
                        (unsigned long long)r->req_id, v->dot.origin,
                        (unsigned long long)v->dot.ts);
            if (v->tombstone && v->value_len != 0)
                fx_fail("get %llu: a tombstone with a value", (unsigned long long)r->req_id);
        }
    }
    round_trip_response(r, op);
    if (f->hooks.reply != NULL)
        f->hooks.reply(f->hooks.ctx, r);
}

/* ---------------------------------------------------------------- rounds */

static void check_invariants(struct cw_node *n, const char *when)
{
    char why[256];
    if (!cw_node_check_invariants(n, why, sizeof(why)))
        fx_fail("invariant broken %s: %s", when, why);
}

/* The end of a round: the driving contract of node.h, every effect checked. */
static void fx_round(struct fx *f)
{
    if (cw_node_has_ready(f->node)) {
        const struct cw_ready *rd = cw_node_ready(f->node);
        for (size_t i = 0; i < rd->n_persist; i++)
            store_apply(&f->store, &rd->persist[i]);
        const struct fx_store *s = &f->store;
        if (s->meta != NULL) {
            if (s->n_outbox && s->outbox[s->n_outbox - 1].ts > s->meta_dec.stream_end)
                fx_fail("persisted outbox runs past the persisted stream end");
            if (s->meta_dec.stream_end > s->meta_dec.hlc)
                fx_fail("persisted stream end is above the persisted clock");
        }
        for (size_t i = 0; i < rd->n_msgs; i++)
            check_msg(f, &rd->msgs[i]);
        for (size_t i = 0; i < rd->n_replies; i++)
            check_reply(f, &rd->replies[i]);
        cw_node_advance(f->node);
    }
    if (cw_node_has_ready(f->node))
        fx_fail("effects left after advance");
    check_invariants(f->node, "after a round");
}

static void compare_restored(const struct cw_node *old, const struct cw_node *n)
{
    const struct cw_replica *a = cw_node_replica(old), *b = cw_node_replica(n);
    const struct cw_keymap *ka = cw_replica_keys(a), *kb = cw_replica_keys(b);
    if (ka->count != kb->count)
        fx_fail("restart: %zu keys before the crash, %zu restored", ka->count, kb->count);
    size_t slot = 0;
    for (struct cw_keyentry *e = cw_keymap_next(ka, &slot, NULL); e != NULL;
         e = cw_keymap_next(ka, &slot, e)) {
        const struct cw_keyentry *r = cw_keymap_find(kb, e->key, e->key_len);
        if (r == NULL || !cw_keystate_equal(&e->state, &r->state))
            fx_fail("restart: key %.*s %s", (int)e->key_len, (const char *)e->key,
                    r == NULL ? "was not restored" : "was restored to another state");
    }
    if (memcmp(cw_replica_applied(a), cw_replica_applied(b), sizeof(struct cw_vclock)) != 0)
        fx_fail("restart: the applied vector was not restored");
    if (cw_replica_outbox_len(a) != cw_replica_outbox_len(b))
        fx_fail("restart: %zu outbox records before the crash, %zu restored",
                cw_replica_outbox_len(a), cw_replica_outbox_len(b));
}

/* Crash at the end of a round and recover from the durable image alone. */
static void fx_restart(struct fx *f)
{
    fx_round(f);
    struct cw_node_config cfg;
    fx_node_config(&cfg, FX_REGION);
    struct cw_node *n = cw_node_create(&cfg);
    if (n == NULL)
        fx_fail("cw_node_create failed");
    const struct fx_store *s = &f->store;
    int rc;
    if (s->meta != NULL && (rc = cw_node_restore_meta(n, s->meta, s->meta_len)) != CW_OK)
        fx_fail("restart: the persisted metadata does not restore: %d", rc);
    for (size_t i = 0; i < s->n_keys; i++)
        if ((rc = cw_node_restore_key(n, s->keys[i].key, s->keys[i].key_len, s->keys[i].data,
                                      s->keys[i].len)) != CW_OK)
            fx_fail("restart: persisted key %.*s does not restore: %d", (int)s->keys[i].key_len,
                    (const char *)s->keys[i].key, rc);
    for (size_t i = 0; i < s->n_outbox; i++)
        if ((rc = cw_node_restore_outbox(n, s->outbox[i].data, s->outbox[i].len)) != CW_OK)
            fx_fail("restart: persisted outbox record %llx does not restore: %d",
                    (unsigned long long)s->outbox[i].ts, rc);
    trace("  restart from %zu keys, %zu outbox records", s->n_keys, s->n_outbox);
    compare_restored(f->node, n);
    check_invariants(n, "after a restart");
    cw_node_destroy(&f->node);
    f->node = n;
    /* Requests in flight die with the process; their clients time out. */
    f->n_reqs = 0;
    f->restarts++;
}

/* ------------------------------------------------------------- requests */

static void submit(struct fx *f, int op, const char *bucket, const uint8_t *key, uint32_t key_len,
                   const uint8_t *value, uint32_t value_len, const struct cw_vclock *context,
                   const struct cw_vclock *kctx)
{
    uint64_t id = f->next_id++;
    track(f, id, op);
    if (op == CW_OP_GET) {
        struct cw_get_req g = {
            .req_id = id, .bucket = bucket, .key = key, .key_len = key_len, .context = *context};
        cw_node_get(f->node, f->now, &g);
    } else {
        struct cw_put_req p = {.req_id = id,
                               .bucket = bucket,
                               .key = key,
                               .key_len = key_len,
                               .value = value,
                               .value_len = value_len,
                               .tombstone = op == CW_OP_DEL,
                               .context = *context};
        if (kctx != NULL)
            p.kctx = *kctx;
        cw_node_put(f->node, f->now, &p);
    }
}

static void preload_op(struct fx *f, int op, const char *bucket, const char *key, const char *value,
                       const struct cw_vclock *context)
{
    static const struct cw_vclock zero;
    submit(f, op, bucket, (const uint8_t *)key, (uint32_t)strlen(key), (const uint8_t *)value,
           value ? (uint32_t)strlen(value) : 0, context ? context : &zero, NULL);
}

static void fx_time(struct fx *f, uint8_t ctl)
{
    if (ctl & FX_REAL_BACK)
        f->now.real_us -= FX_REAL_BACK_US;
    uint64_t d = fx_adv_us[ctl & FX_ADV_MASK];
    f->now.real_us += d;
    f->now.mono_us += d;
}

static void fx_end_step(struct fx *f, uint8_t ctl)
{
    if (ctl & FX_TICK)
        cw_node_tick(f->node, f->now);
    check_invariants(f->node, "after a step");
    if (tracing()) {
        const struct cw_replica *r = cw_node_replica(f->node);
        trace("  now: buffered %zu, waiting %zu, outbox %zu, keys %zu", cw_replica_buffered(r),
              cw_replica_waiting(r), cw_replica_outbox_len(r), cw_replica_keys(r)->count);
    }
    if (ctl & FX_RESTART)
        fx_restart(f);
    else if (!(ctl & FX_HOLD))
        fx_round(f);
}

void fx_init(struct fx *f, const struct fx_hooks *hooks)
{
    memset(f, 0, sizeof(*f));
    if (hooks != NULL)
        f->hooks = *hooks;
    f->next_id = 1;
    /* The monotonic clock counts from boot, the real one from the epoch. */
    f->now = (struct cw_now){.real_us = FX_T0_US, .mono_us = 5000000};
    struct cw_node_config cfg;
    fx_node_config(&cfg, FX_REGION);
    f->node = cw_node_create(&cfg);
    if (f->node == NULL)
        fx_fail("cw_node_create failed");

    /* Keys in every bucket, siblings, tombstones, an outbox. */
    fx_time(f, FX_ADV_1MS);
    preload_op(f, CW_OP_PUT, "clww", "a", "apple", NULL);
    preload_op(f, CW_OP_PUT, "csib", "a", "sibling one", NULL);
    preload_op(f, CW_OP_PUT, "csib", "a", "sibling two", NULL);
    fx_round(f);
    fx_time(f, FX_ADV_1MS);
    preload_op(f, CW_OP_PUT, "elww", "a", "eventual", NULL);
    preload_op(f, CW_OP_PUT, "esib", "a", "eventual sibling", NULL);
    preload_op(f, CW_OP_PUT, "clww", "b", "to be deleted", NULL);
    fx_round(f);
    fx_time(f, FX_ADV_1MS);
    preload_op(f, CW_OP_DEL, "clww", "b", NULL, NULL);
    preload_op(f, CW_OP_DEL, "csib", "c", NULL, NULL);
    preload_op(f, CW_OP_DEL, "esib", "a", NULL, NULL);
    fx_round(f);
    /* Heartbeats to peers it has not heard from yet. */
    fx_time(f, FX_ADV_1MS);
    cw_node_tick(f->node, f->now);
    fx_round(f);
    /* Requests waiting for region 0 and region 2; a read of an eventual bucket
     * that does not wait. */
    fx_time(f, FX_ADV_1MS);
    struct cw_vclock c0 = {{0}}, c2 = {{0}}, cfar = {{0}};
    c0.ts[0] = cw_hlc_from_us(FX_T0_US + 2000);
    c2.ts[2] = cw_hlc_from_us(FX_T0_US + 3000);
    cfar.ts[0] = cw_hlc_from_us(FX_T0_US + 4000000);
    preload_op(f, CW_OP_GET, "clww", "a", NULL, &c0);
    preload_op(f, CW_OP_PUT, "csib", "w", "waits for region 2", &c2);
    preload_op(f, CW_OP_GET, "esib", "a", NULL, &cfar);
    fx_round(f);
}

void fx_destroy(struct fx *f)
{
    cw_node_destroy(&f->node);
    store_free(&f->store);
    free(f->reqs);
    memset(f, 0, sizeof(*f));
}

void fx_finish(struct fx *f)
{
    fx_round(f);
    /* Past every deadline: each request still waiting must fail now. */
    f->now.real_us += FX_WAIT_US + 1;
    f->now.mono_us += FX_WAIT_US + 1;
    cw_node_tick(f->node, f->now);
    fx_round(f);
    trace_stats(f);
    if (f->n_reqs != 0)
        fx_fail("%zu requests never answered (first: id %llu, op %d)", f->n_reqs,
                (unsigned long long)f->reqs[0].id, f->reqs[0].op);
    fx_restart(f);
}

/* ------------------------------------------------------------ peer steps */

/* FX_ALT in the peer target: the frame's batch is a raw RecordBatch; compress
 * it the way a sender does, so that the decoder sees a well-formed LZ4 frame.
 * Returns NULL (use the frame as it is) when the frame does not parse or has
 * no batch. */
static uint8_t *compress_batch(const uint8_t *frame, size_t len, size_t *out_len)
{
    Causeway__PeerFrame *pf = causeway__peer_frame__unpack(NULL, len, frame);
    if (pf == NULL)
        return NULL;
    uint8_t *out = NULL;
    if (pf->batch.len > 0 && pf->batch.len <= FX_RAW_BATCH_MAX) {
        LZ4F_preferences_t prefs;
        memset(&prefs, 0, sizeof(prefs));
        prefs.frameInfo.contentSize = pf->batch.len;
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
        size_t bound = LZ4F_compressFrameBound(pf->batch.len, &prefs);
        uint8_t *z = xrealloc(NULL, bound);
        size_t zn = LZ4F_compressFrame(z, bound, pf->batch.data, pf->batch.len, &prefs);
        if (!LZ4F_isError(zn)) {
            ProtobufCBinaryData raw = pf->batch;
            pf->batch.data = z;
            pf->batch.len = zn;
            size_t n = causeway__peer_frame__get_packed_size(pf);
            out = xrealloc(NULL, n);
            *out_len = causeway__peer_frame__pack(pf, out);
            pf->batch = raw;
        }
        free(z);
    }
    causeway__peer_frame__free_unpacked(pf, NULL);
    return out;
}

void fx_peer_step(struct fx *f, uint8_t ctl, const uint8_t *frame, size_t len)
{
    fx_time(f, ctl);
    if (len > 0) {
        size_t plen = 0;
        uint8_t *packed = (ctl & FX_ALT) ? compress_batch(frame, len, &plen) : NULL;
        struct cw_msg m;
        int rc = packed ? cw_wire_decode_peer(packed, plen, NULL, &m)
                        : cw_wire_decode_peer(frame, len, NULL, &m);
        FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE || rc == CW_ETOOBIG || rc == CW_EVERSION);
        trace("step ctl %02x real %llu mono %llu: %zu bytes%s -> %d; type %d from %u to %u, "
              "%u records, clock %llx, stream_end %llx, sent %llx, resend_after %llx",
              ctl, (unsigned long long)f->now.real_us, (unsigned long long)f->now.mono_us, len,
              packed ? " (batch compressed)" : "", rc, (int)m.type, m.from, m.to, m.n_records,
              (unsigned long long)m.clock, (unsigned long long)m.stream_end,
              (unsigned long long)m.stream_sent, (unsigned long long)m.resend_after);
        for (uint32_t i = 0; rc == CW_OK && i < m.n_records; i++)
            trace("    record %.*s (%u, %llx) prev %llx deps [%llx %llx %llx]%s",
                  (int)m.records[i].key_len, (const char *)m.records[i].key,
                  m.records[i].version.dot.origin, (unsigned long long)m.records[i].version.dot.ts,
                  (unsigned long long)m.records[i].prev_ts,
                  (unsigned long long)m.records[i].deps.ts[0],
                  (unsigned long long)m.records[i].deps.ts[1],
                  (unsigned long long)m.records[i].deps.ts[2],
                  m.records[i].version.tombstone ? " tombstone" : "");
        if (rc == CW_OK) {
            cw_node_recv(f->node, f->now, &m);
            cw_msg_free(&m);
        }
        free(packed);
    } else {
        trace("step ctl %02x real %llu mono %llu: no frame", ctl,
              (unsigned long long)f->now.real_us, (unsigned long long)f->now.mono_us);
    }
    fx_end_step(f, ctl);
}

/* ---------------------------------------------------------- client steps */

/* Regions 0 and 2, honest and idle: their clocks are the physical time, they
 * have written nothing, and they acknowledge the node's whole stream. */
static void peer_heartbeats(struct fx *f)
{
    uint64_t own = cw_replica_applied(cw_node_replica(f->node))->ts[FX_REGION];
    uint64_t clock = cw_hlc_from_us(f->now.real_us);
    for (unsigned p = 0; p < FX_REGIONS; p++) {
        if (p == FX_REGION)
            continue;
        struct cw_msg m;
        memset(&m, 0, sizeof(m));
        m.type = CW_MSG_HEARTBEAT;
        m.from = (uint8_t)p;
        m.to = FX_REGION;
        for (unsigned o = 0; o < FX_REGIONS; o++)
            m.applied.ts[o] = o == FX_REGION ? own : clock;
        m.received.ts[FX_REGION] = own;
        m.clock = clock;
        cw_node_recv(f->node, f->now, &m);
    }
}

void fx_client_step(struct fx *f, uint8_t ctl, const uint8_t *frame, size_t len)
{
    fx_time(f, ctl);
    if (len > 0) {
        /* The daemon's limits (src/server/server.c, cw_server_open). */
        struct cw_wire_limits lim;
        cw_wire_limits_default(&lim);
        lim.value_bytes_max = (uint32_t)(lim.frame_bytes_max / 2);
        struct cw_wire_request req;
        int rc = cw_wire_decode_request(frame, len, &lim, &req);
        FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE || rc == CW_ETOOBIG || rc == CW_EVERSION);
        trace("step ctl %02x real %llu mono %llu: %zu bytes -> %d; op %d id %llu bucket '%s' "
              "key %u bytes, value %u bytes%s",
              ctl, (unsigned long long)f->now.real_us, (unsigned long long)f->now.mono_us, len, rc,
              (int)req.op, (unsigned long long)f->next_id, rc == CW_OK ? req.bucket : "",
              req.key_len, req.value_len, req.has_kctx ? ", kctx" : "");
        if (rc == CW_OK) {
            /* STATUS and LINK are the daemon's own business, not the node's. */
            if (req.op == CW_OP_PUT || req.op == CW_OP_DEL || req.op == CW_OP_GET)
                submit(f, req.op, req.bucket, req.key, req.key_len, req.value, req.value_len,
                       &req.context, req.has_kctx ? &req.kctx : NULL);
            cw_wire_request_free(&req);
        }
    } else {
        trace("step ctl %02x real %llu mono %llu: no frame", ctl,
              (unsigned long long)f->now.real_us, (unsigned long long)f->now.mono_us);
    }
    if (ctl & FX_ALT)
        peer_heartbeats(f);
    fx_end_step(f, ctl);
}

/* ------------------------------------------------------------- drivers */

static void run(const uint8_t *data, size_t size,
                void (*step)(struct fx *, uint8_t, const uint8_t *, size_t))
{
    struct fx f;
    fx_init(&f, NULL);
    for (unsigned steps = 0; size >= 3 && steps < FX_STEPS_MAX; steps++) {
        uint8_t ctl = data[0];
        size_t len = (size_t)data[1] | (size_t)data[2] << 8;
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        step(&f, ctl, len ? data : NULL, len);
        data += len;
        size -= len;
    }
    fx_finish(&f);
    fx_destroy(&f);
}

void fx_run_peer(const uint8_t *data, size_t size)
{
    run(data, size, fx_peer_step);
}

void fx_run_client(const uint8_t *data, size_t size)
{
    run(data, size, fx_client_step);
}
