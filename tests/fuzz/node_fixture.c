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

#include "core/bytes.h"
#include "core/hlc.h"
#include "core/record.h"
#include "core/strong.h"
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
    /* The strong bucket: small bounds too, and timers an input of a few steps
     * crosses (fx_adv_us). A strong request fails within FX_WAIT_US, so that
     * every request is answered by the end of an input (fx_finish). */
    cfg->strong = (struct cw_strong_config){
        .raft =
            {
                .election_min_us = FX_ELECTION_MIN_US,
                .election_max_us = 2 * FX_ELECTION_MIN_US,
                .heartbeat_us = FX_HEARTBEAT_US,
                .preferred = CW_RAFT_NONE,
                .max_msg_entries = 3,
                .max_msg_bytes = 512,
                .max_inflight_msgs = 4,
                .max_uncommitted = 8,
                .max_pending_reads = 4,
            },
        .timeout_us = FX_WAIT_US,
        .pending_max = 6,
        .bytes_max = FX_STRONG_BYTES_MAX,
        .snapshot_entries = FX_SNAPSHOT_ENTRIES,
        .max_value_bytes = FX_MAX_VALUE,
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
    for (size_t i = 0; i < s->n_raft_log; i++)
        free(s->raft_log[i].data);
    free(s->keys);
    free(s->outbox);
    free(s->meta);
    free(s->raft_hs);
    free(s->raft_snap);
    free(s->raft_log);
    memset(s, 0, sizeof(*s));
    s->hs.vote = CW_RAFT_NONE;
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

/* ------------------------------------------------ strong buckets' records */

static void store_raft_hs(struct fx_store *s, const struct cw_persist *p)
{
    struct cw_raft_hardstate hs;
    int rc = cw_strong_decode_hardstate(p->data, p->data_len, &hs);
    if (rc != CW_OK)
        fx_fail("persisted Raft hard state does not decode: %d", rc);
    if (hs.vote != CW_RAFT_NONE && hs.vote >= FX_REGIONS)
        fx_fail("persisted Raft vote for region %u outside the cluster", hs.vote);
    if (hs.term < s->hs.term)
        fx_fail("persisted Raft term went back: %llu after %llu", (unsigned long long)hs.term,
                (unsigned long long)s->hs.term);
    if (hs.term == s->hs.term && s->hs.vote != CW_RAFT_NONE && hs.vote != s->hs.vote)
        fx_fail("persisted Raft vote changed within term %llu: %u, then %u",
                (unsigned long long)hs.term, s->hs.vote, hs.vote);
    if (hs.commit < s->hs.commit)
        fx_fail("persisted Raft commit went back: %llu after %llu", (unsigned long long)hs.commit,
                (unsigned long long)s->hs.commit);
    free(s->raft_hs);
    s->raft_hs = xdup(p->data, p->data_len);
    s->raft_hs_len = p->data_len;
    s->hs = hs;
}

static void log_cut_after(struct fx_store *s, size_t keep)
{
    while (s->n_raft_log > keep)
        free(s->raft_log[--s->n_raft_log].data);
}

static void store_raft_trunc(struct fx_store *s, const struct cw_persist *p)
{
    size_t keep = s->n_raft_log;
    while (keep > 0 && s->raft_log[keep - 1].index >= p->ts)
        keep--;
    /* A committed entry is never cut (the cut after a leader's snapshot drops
     * only what lies past it, which this region had not committed). */
    if (keep < s->n_raft_log && s->raft_log[keep].index <= s->hs.commit)
        fx_fail("persisted a cut of the Raft log from %llu, committed up to %llu",
                (unsigned long long)p->ts, (unsigned long long)s->hs.commit);
    log_cut_after(s, keep);
}

static void store_raft_entry(struct fx_store *s, const struct cw_persist *p)
{
    struct cw_raft_entry e;
    int rc = cw_strong_decode_entry(p->data, p->data_len, &e);
    if (rc != CW_OK)
        fx_fail("persisted Raft entry %llu does not decode: %d", (unsigned long long)p->ts, rc);
    free(e.data);
    if (e.index != p->ts)
        fx_fail("persisted Raft entry %llu holds index %llu", (unsigned long long)p->ts,
                (unsigned long long)e.index);
    uint64_t last = s->n_raft_log ? s->raft_log[s->n_raft_log - 1].index : s->snap_index;
    uint64_t last_term = s->n_raft_log ? s->raft_log[s->n_raft_log - 1].term : s->snap_term;
    if (e.index != last + 1)
        fx_fail("persisted Raft entry %llu after %llu (not the next one)",
                (unsigned long long)e.index, (unsigned long long)last);
    if (e.term < last_term)
        fx_fail("persisted Raft entry %llu of term %llu after one of term %llu",
                (unsigned long long)e.index, (unsigned long long)e.term,
                (unsigned long long)last_term);
    if (s->n_raft_log == s->cap_raft_log) {
        s->cap_raft_log = s->cap_raft_log ? 2 * s->cap_raft_log : 16;
        s->raft_log = xrealloc(s->raft_log, s->cap_raft_log * sizeof(*s->raft_log));
    }
    s->raft_log[s->n_raft_log++] = (struct fx_entry){
        .index = e.index, .term = e.term, .data = xdup(p->data, p->data_len), .len = p->data_len};
}

/* The snapshot record: 'P', format 1, index, term, the state machine's bytes
 * (core/strong.c, snaprec_encode). */
static bool snaprec_decode(const uint8_t *data, uint32_t len, uint64_t *index, uint64_t *term)
{
    struct cw_rd r = {data, len, 0, false};
    if (cw_rd_byte(&r) != 'P' || cw_rd_byte(&r) != 1)
        return false;
    *index = cw_rd_varint(&r);
    *term = cw_rd_varint(&r);
    uint64_t n = cw_rd_varint(&r);
    if (!r.bad && n <= len)
        cw_rd_bytes(&r, n);
    return !r.bad && r.off == len && *index != 0 && *term != 0;
}

static void store_raft_snap(struct fx_store *s, const struct cw_persist *p)
{
    uint64_t index, term;
    if (!snaprec_decode(p->data, p->data_len, &index, &term))
        fx_fail("persisted Raft snapshot %llu does not decode", (unsigned long long)p->ts);
    if (index != p->ts)
        fx_fail("persisted Raft snapshot %llu holds index %llu", (unsigned long long)p->ts,
                (unsigned long long)index);
    if (index < s->snap_index || (index == s->snap_index && term != s->snap_term))
        fx_fail("persisted Raft snapshot %llu (term %llu) after %llu (term %llu)",
                (unsigned long long)index, (unsigned long long)term,
                (unsigned long long)s->snap_index, (unsigned long long)s->snap_term);
    for (size_t i = 0; i < s->n_raft_log; i++)
        if (s->raft_log[i].index == index && s->raft_log[i].term != term)
            fx_fail("persisted Raft snapshot %llu of term %llu over a stored entry of term "
                    "%llu",
                    (unsigned long long)index, (unsigned long long)term,
                    (unsigned long long)s->raft_log[i].term);
    free(s->raft_snap);
    s->raft_snap = xdup(p->data, p->data_len);
    s->raft_snap_len = p->data_len;
    s->snap_index = index;
    s->snap_term = term;
    size_t cut = 0;
    while (cut < s->n_raft_log && s->raft_log[cut].index <= index)
        free(s->raft_log[cut++].data);
    if (cut > 0) {
        memmove(s->raft_log, s->raft_log + cut, (s->n_raft_log - cut) * sizeof(*s->raft_log));
        s->n_raft_log -= cut;
    }
}

/* After a round's records: the durable Raft state fits together. */
static void check_raft_store(const struct fx_store *s)
{
    uint64_t prev = s->snap_index, prev_term = s->snap_term;
    for (size_t i = 0; i < s->n_raft_log; i++) {
        const struct fx_entry *e = &s->raft_log[i];
        if (e->index != prev + 1 || e->term < prev_term)
            fx_fail("persisted Raft log: entry %llu (term %llu) after %llu (term %llu)",
                    (unsigned long long)e->index, (unsigned long long)e->term,
                    (unsigned long long)prev, (unsigned long long)prev_term);
        prev = e->index;
        prev_term = e->term;
    }
    if (prev_term > s->hs.term)
        fx_fail("persisted Raft log holds term %llu past the hard state's %llu",
                (unsigned long long)prev_term, (unsigned long long)s->hs.term);
    if (s->hs.commit > prev)
        fx_fail("persisted Raft commit %llu past the persisted log's end %llu",
                (unsigned long long)s->hs.commit, (unsigned long long)prev);
}

/* The term of the durable entry at index (the snapshot's at its index), or 0. */
static uint64_t stored_term(const struct fx_store *s, uint64_t index)
{
    if (index != 0 && index == s->snap_index)
        return s->snap_term;
    if (s->n_raft_log == 0 || index < s->raft_log[0].index ||
        index > s->raft_log[s->n_raft_log - 1].index)
        return 0;
    return s->raft_log[index - s->raft_log[0].index].term;
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
    case CW_PERSIST_RAFT_HS:
        store_raft_hs(s, p);
        break;
    case CW_PERSIST_RAFT_TRUNC:
        store_raft_trunc(s, p);
        break;
    case CW_PERSIST_RAFT_ENTRY:
        store_raft_entry(s, p);
        break;
    case CW_PERSIST_RAFT_SNAP:
        store_raft_snap(s, p);
        break;
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

static bool raft_msg_equal(const struct cw_raft_msg *a, const struct cw_raft_msg *b)
{
    bool same = a->type == b->type && a->from == b->from && a->to == b->to &&
                a->flags == b->flags && a->term == b->term && a->log_term == b->log_term &&
                a->index == b->index && a->commit == b->commit && a->reject == b->reject &&
                a->reject_hint == b->reject_hint && a->ctx == b->ctx &&
                a->n_entries == b->n_entries && a->snap_len == b->snap_len &&
                (a->snap_len == 0 || memcmp(a->snap, b->snap, a->snap_len) == 0);
    for (uint32_t i = 0; same && i < a->n_entries; i++) {
        const struct cw_raft_entry *x = &a->entries[i], *y = &b->entries[i];
        same = x->term == y->term && x->index == y->index && x->type == y->type &&
               x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
    return same;
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
        same =
            same && again.flags == m->flags && again.stream_base == m->stream_base &&
            again.n_snapkeys == m->n_snapkeys && again.snap_after_len == m->snap_after_len &&
            again.snap_next_len == m->snap_next_len && again.snap_clock == m->snap_clock &&
            memcmp(&again.snap_applied, &m->snap_applied, sizeof(m->snap_applied)) == 0 &&
            memcmp(&again.snap_chain, &m->snap_chain, sizeof(m->snap_chain)) == 0 &&
            (m->snap_after_len == 0 ||
             memcmp(again.snap_after, m->snap_after, m->snap_after_len) == 0) &&
            (m->snap_next_len == 0 || memcmp(again.snap_next, m->snap_next, m->snap_next_len) == 0);
        same = same && (again.raft == NULL) == (m->raft == NULL) &&
               (m->raft == NULL || raft_msg_equal(again.raft, m->raft));
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

static const char *msg_type_name(int type)
{
    switch (type) {
    case CW_MSG_RECORDS:
        return "RECORDS";
    case CW_MSG_HEARTBEAT:
        return "HEARTBEAT";
    case CW_MSG_NACK:
        return "NACK";
    case CW_MSG_SNAP_REQUEST:
        return "SNAP_REQUEST";
    case CW_MSG_SNAP_CHUNK:
        return "SNAP_CHUNK";
    case CW_MSG_RAFT:
        return "RAFT";
    default:
        return "UNKNOWN";
    }
}

/* The client target's idle peers, as Raft followers that never campaign: what
 * they answer to m (fx_client_step delivers it with FX_ALT). */
static void queue_honest_answer(struct fx *f, const struct cw_raft_msg *m)
{
    struct cw_raft_msg a;
    memset(&a, 0, sizeof(a));
    a.from = m->to;
    a.to = m->from;
    a.term = m->term;
    switch (m->type) {
    case CW_RAFT_PREVOTE:
        a.type = CW_RAFT_PREVOTE_RESP;
        break;
    case CW_RAFT_VOTE:
        a.type = CW_RAFT_VOTE_RESP;
        break;
    case CW_RAFT_APPEND:
        a.type = CW_RAFT_APPEND_RESP;
        a.index = m->index + m->n_entries;
        break;
    case CW_RAFT_SNAP:
        a.type = CW_RAFT_APPEND_RESP;
        a.index = m->index;
        break;
    case CW_RAFT_HEARTBEAT:
        a.type = CW_RAFT_HEARTBEAT_RESP;
        a.ctx = m->ctx;
        break;
    default:
        return; /* they never lead: nothing else reaches them from a leader */
    }
    if (f->n_raft_replies < FX_RAFT_REPLIES_MAX)
        f->raft_replies[f->n_raft_replies++] = a;
}

/* A Raft message leaves after the round's records are durable: its term, a
 * vote it grants, the entries and the snapshot it carries are all durable. */
static void check_raft_msg(struct fx *f, const struct cw_msg *m)
{
    const struct cw_raft_msg *r = m->raft;
    if (r == NULL)
        fx_fail("a RAFT message to %u without its Raft message", m->to);
    const char *bad = cw_raft_msg_check(r, FX_REGIONS);
    if (bad != NULL)
        fx_fail("Raft message of type %u to %u would be refused: %s", r->type, m->to, bad);
    if (r->from != m->from || r->to != m->to)
        fx_fail("Raft message from %u to %u in an envelope from %u to %u", r->from, r->to, m->from,
                m->to);
    const struct fx_store *s = &f->store;
    /* A pre-vote names the term the sender would campaign in, one past its
     * own; a granted pre-vote echoes the asker's. */
    bool granted_prevote = r->type == CW_RAFT_PREVOTE_RESP && !r->reject;
    if (!granted_prevote && r->term > s->hs.term + (r->type == CW_RAFT_PREVOTE ? 1 : 0))
        fx_fail("Raft message of type %u to %u at term %llu, persisted term %llu", r->type, m->to,
                (unsigned long long)r->term, (unsigned long long)s->hs.term);
    if (r->type == CW_RAFT_VOTE_RESP && !r->reject &&
        (s->hs.term != r->term || s->hs.vote != r->to))
        fx_fail("Raft vote granted to %u at term %llu, persisted vote %u at term %llu", r->to,
                (unsigned long long)r->term, s->hs.vote, (unsigned long long)s->hs.term);
    if (r->type == CW_RAFT_VOTE && (s->hs.term != r->term || s->hs.vote != FX_REGION))
        fx_fail("Raft vote requested at term %llu without a persisted vote for itself",
                (unsigned long long)r->term);
    if (r->type == CW_RAFT_APPEND) {
        if (r->index > 0 && stored_term(s, r->index) != r->log_term)
            fx_fail("Raft append to %u after entry %llu of term %llu, persisted term %llu", m->to,
                    (unsigned long long)r->index, (unsigned long long)r->log_term,
                    (unsigned long long)stored_term(s, r->index));
        for (uint32_t i = 0; i < r->n_entries; i++)
            if (stored_term(s, r->entries[i].index) != r->entries[i].term)
                fx_fail("Raft append to %u carries entry %llu of term %llu, not durable here",
                        m->to, (unsigned long long)r->entries[i].index,
                        (unsigned long long)r->entries[i].term);
    }
    if (r->type == CW_RAFT_SNAP && (r->index != s->snap_index || r->log_term != s->snap_term))
        fx_fail("Raft snapshot %llu (term %llu) sent to %u, persisted %llu (term %llu)",
                (unsigned long long)r->index, (unsigned long long)r->log_term, m->to,
                (unsigned long long)s->snap_index, (unsigned long long)s->snap_term);
    queue_honest_answer(f, r);
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
    case CW_MSG_RAFT:
        if (m->n_records != 0 || m->records != NULL || m->n_snapkeys != 0)
            fx_fail("a Raft message carries records or snapshot keys");
        check_raft_msg(f, m);
        break;
    default:
        fx_fail("message of unknown type %d", (int)m->type);
    }
    if (m->type != CW_MSG_RAFT && m->raft != NULL)
        fx_fail("a message of type %d carries a Raft message", (int)m->type);
    if (m->type == CW_MSG_RAFT)
        trace("  sent RAFT to %u: type %u term %llu log_term %llu index %llu commit %llu%s "
              "hint %llu ctx %llu, %u entries, snapshot of %u bytes",
              m->to, m->raft->type, (unsigned long long)m->raft->term,
              (unsigned long long)m->raft->log_term, (unsigned long long)m->raft->index,
              (unsigned long long)m->raft->commit, m->raft->reject ? " reject" : "",
              (unsigned long long)m->raft->reject_hint, (unsigned long long)m->raft->ctx,
              m->raft->n_entries, m->raft->snap_len);
    else
        trace("  sent %s to %u: %u records, clock %llx, stream_end %llx, sent %llx, "
              "resend_after %llx",
              msg_type_name(m->type), m->to, m->n_records, (unsigned long long)m->clock,
              (unsigned long long)m->stream_end, (unsigned long long)m->stream_sent,
              (unsigned long long)m->resend_after);
    round_trip_msg(f, m);
}

/* ------------------------------------------------------------- replies */

static void track(struct fx *f, uint64_t id, int op, bool strong)
{
    if (f->n_reqs == f->cap_reqs) {
        f->cap_reqs = f->cap_reqs ? 2 * f->cap_reqs : 16;
        f->reqs = xrealloc(f->reqs, f->cap_reqs * sizeof(*f->reqs));
    }
    f->reqs[f->n_reqs++] = (struct fx_req){.id = id, .op = op, .strong = strong};
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
    resp.key_version = r->version;
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
                again.key_version == resp.key_version &&
                (op == CW_OP_GET || (again.origin == resp.origin && again.ts == resp.ts));
    for (uint32_t i = 0; same && i < again.n_versions; i++)
        same = version_equal(&again.versions[i], &resp.versions[i]);
    if (!same)
        fx_fail("the response to request %llu changed through the wire codec",
                (unsigned long long)r->req_id);
    cw_wire_response_free(&again);
    free(buf);
}

/* A successful reply of the strong bucket: a put's version is the index of
 * the entry that applied it (increasing, within the applied log); a get holds
 * at most one live version, with the key's version. */
static void check_strong_reply(struct fx *f, const struct cw_reply *r)
{
    const struct cw_strong *st = cw_node_strong(f->node);
    uint64_t applied = st ? cw_strong_applied(st) : 0;
    if (r->version > applied)
        fx_fail("strong request %llu: version %llu past the applied index %llu",
                (unsigned long long)r->req_id, (unsigned long long)r->version,
                (unsigned long long)applied);
    if (r->kind == CW_REPLY_PUT) {
        if (r->version == 0 || r->version <= f->last_strong_version)
            fx_fail("strong put %llu: version %llu after %llu", (unsigned long long)r->req_id,
                    (unsigned long long)r->version, (unsigned long long)f->last_strong_version);
        f->last_strong_version = r->version;
        if (r->dot.origin != FX_REGION || r->state.n != 0)
            fx_fail("strong put %llu: origin %u, %u versions", (unsigned long long)r->req_id,
                    r->dot.origin, r->state.n);
        return;
    }
    if (r->state.n > 1 || (r->state.n == 1) != (r->version != 0))
        fx_fail("strong get %llu: %u versions, version %llu", (unsigned long long)r->req_id,
                r->state.n, (unsigned long long)r->version);
    if (r->state.n == 1 && (r->state.v[0].tombstone || r->state.v[0].dot.origin >= FX_REGIONS))
        fx_fail("strong get %llu: a tombstone or a version of region %u",
                (unsigned long long)r->req_id, r->state.v[0].dot.origin);
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
    bool strong = f->reqs[i].strong;
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
    if (!strong && r->version != 0)
        fx_fail("request %llu of a bucket that is not strong got version %llu",
                (unsigned long long)r->req_id, (unsigned long long)r->version);
    if (r->err != CW_OK) {
        if (r->state.n != 0)
            fx_fail("request %llu failed (%d) but returns versions", (unsigned long long)r->req_id,
                    r->err);
        if (r->err == CW_ECONFLICT && !strong)
            fx_fail("request %llu of a bucket that is not strong failed with a conflict",
                    (unsigned long long)r->req_id);
    } else if (strong) {
        check_strong_reply(f, r);
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
    /* The strong part compacts its log at advance: the snapshot is the next
     * ready's to persist. Nothing else may be left. */
    for (int pass = 0; pass < FX_ROUND_PASSES && cw_node_has_ready(f->node); pass++) {
        const struct cw_ready *rd = cw_node_ready(f->node);
        for (size_t i = 0; i < rd->n_persist; i++)
            store_apply(&f->store, &rd->persist[i]);
        const struct fx_store *s = &f->store;
        check_raft_store(s);
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
        fx_fail("effects left after %d passes of advance", FX_ROUND_PASSES);
    check_invariants(f->node, "after a round");
}

/* The Raft state a restart must restore as it was (the state machine comes
 * back only after the first round replays the log: compared then). */
static void compare_restored_raft(const struct cw_node *old, const struct cw_node *n,
                                  struct cw_now now)
{
    const struct cw_strong *a = cw_node_strong(old), *b = cw_node_strong(n);
    if (a == NULL || b == NULL)
        fx_fail("restart: no strong part");
    struct cw_raft_status x, y;
    cw_raft_get_status(cw_strong_raft(a), now, &x);
    cw_raft_get_status(cw_strong_raft(b), now, &y);
    if (x.term != y.term || x.vote != y.vote || x.commit != y.commit ||
        x.last_index != y.last_index || x.snap_index != y.snap_index || x.snap_term != y.snap_term)
        fx_fail("restart: Raft term %llu vote %u commit %llu log %llu snapshot %llu/%llu before "
                "the crash; restored term %llu vote %u commit %llu log %llu snapshot %llu/%llu",
                (unsigned long long)x.term, x.vote, (unsigned long long)x.commit,
                (unsigned long long)x.last_index, (unsigned long long)x.snap_index,
                (unsigned long long)x.snap_term, (unsigned long long)y.term, y.vote,
                (unsigned long long)y.commit, (unsigned long long)y.last_index,
                (unsigned long long)y.snap_index, (unsigned long long)y.snap_term);
    for (uint64_t i = x.snap_index + 1; i <= x.last_index; i++)
        if (cw_raft_term_at(cw_strong_raft(a), i) != cw_raft_term_at(cw_strong_raft(b), i))
            fx_fail("restart: Raft entry %llu restored with another term", (unsigned long long)i);
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
    /* Strong buckets, as the store loads raft.db: snapshot, hard state, log. */
    if (s->raft_snap != NULL &&
        (rc = cw_node_restore_raft_snapshot(n, s->raft_snap, s->raft_snap_len)) != CW_OK)
        fx_fail("restart: the persisted Raft snapshot does not restore: %d", rc);
    if (s->raft_hs != NULL &&
        (rc = cw_node_restore_raft_hardstate(n, s->raft_hs, s->raft_hs_len)) != CW_OK)
        fx_fail("restart: the persisted Raft hard state does not restore: %d", rc);
    for (size_t i = 0; i < s->n_raft_log; i++)
        if ((rc = cw_node_restore_raft_entry(n, s->raft_log[i].data, s->raft_log[i].len)) != CW_OK)
            fx_fail("restart: persisted Raft entry %llu does not restore: %d",
                    (unsigned long long)s->raft_log[i].index, rc);
    trace("  restart from %zu keys, %zu outbox records, Raft snapshot %llu, %zu entries", s->n_keys,
          s->n_outbox, (unsigned long long)s->snap_index, s->n_raft_log);
    compare_restored(f->node, n);
    compare_restored_raft(f->node, n, f->now);
    check_invariants(n, "after a restart");
    const struct cw_strong *old = cw_node_strong(f->node);
    uint64_t applied = cw_strong_applied(old), digest = cw_strong_digest(old);
    cw_node_destroy(&f->node);
    f->node = n;
    /* Requests in flight die with the process; their clients time out. */
    f->n_reqs = 0;
    /* The first round replays the committed log over the snapshot: the strong
     * state must be back where it was. */
    fx_round(f);
    const struct cw_strong *now = cw_node_strong(f->node);
    if (cw_strong_applied(now) != applied || cw_strong_digest(now) != digest)
        fx_fail("restart: strong state applied %llu digest %llx before the crash, %llu %llx "
                "after the replay",
                (unsigned long long)applied, (unsigned long long)digest,
                (unsigned long long)cw_strong_applied(now),
                (unsigned long long)cw_strong_digest(now));
    f->restarts++;
}

/* ------------------------------------------------------------- requests */

static void submit(struct fx *f, int op, const char *bucket, const uint8_t *key, uint32_t key_len,
                   const uint8_t *value, uint32_t value_len, const struct cw_vclock *context,
                   const struct cw_vclock *kctx, uint8_t cond, uint64_t cond_version)
{
    uint64_t id = f->next_id++;
    track(f, id, op, strcmp(bucket, fx_bucket_names[4]) == 0);
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
                               .context = *context,
                               .cond = cond,
                               .cond_version = cond_version};
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
           value ? (uint32_t)strlen(value) : 0, context ? context : &zero, NULL, CW_COND_NONE, 0);
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
    f->store.hs.vote = CW_RAFT_NONE;
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
    /* Only the frames answer here: the client target's honest peers are not. */
    f->n_raft_replies = 0;
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
        if (rc == CW_OK && m.raft != NULL)
            trace("    raft type %u from %u to %u term %llu log_term %llu index %llu commit %llu%s "
                  "ctx %llu, %u entries, snapshot of %u bytes",
                  m.raft->type, m.raft->from, m.raft->to, (unsigned long long)m.raft->term,
                  (unsigned long long)m.raft->log_term, (unsigned long long)m.raft->index,
                  (unsigned long long)m.raft->commit, m.raft->reject ? " reject" : "",
                  (unsigned long long)m.raft->ctx, m.raft->n_entries, m.raft->snap_len);
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
    /* Their answers to the node's Raft messages (queue_honest_answer). */
    for (size_t i = 0; i < f->n_raft_replies; i++) {
        struct cw_msg m;
        memset(&m, 0, sizeof(m));
        m.type = CW_MSG_RAFT;
        m.from = f->raft_replies[i].from;
        m.to = FX_REGION;
        m.raft = &f->raft_replies[i];
        trace("  honest Raft answer from %u: type %u term %llu index %llu", m.from, m.raft->type,
              (unsigned long long)m.raft->term, (unsigned long long)m.raft->index);
        cw_node_recv(f->node, f->now, &m);
    }
    f->n_raft_replies = 0;
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
                       &req.context, req.has_kctx ? &req.kctx : NULL, req.cond, req.cond_version);
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
