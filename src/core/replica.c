/*
 * replica.c - the replica's lifecycle, recovery, effect buffers and
 * observation. See replica_int.h for how the replica is split.
 */
#include "core/replica_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "core/cw_assert.h"
#include "core/hist.h"

int rp_vec_push(struct vec *v, const void *item, size_t size)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *nv = realloc(v->v, cap * size);
        if (nv == NULL)
            return CW_ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    memcpy((char *)v->v + v->n * size, item, size);
    v->n++;
    return CW_OK;
}

/* Grows one of the ready arrays; the three differ only in element type. */
void *rp_grow_array(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *nv = realloc(*arr, ncap * size);
        if (nv == NULL)
            return NULL;
        *arr = nv;
        *cap = ncap;
    }
    return (char *)*arr + n * size;
}

struct cw_record *rp_recq_at(const struct recq *q, size_t i)
{
    return &q->v[q->head + i];
}

struct cw_record *rp_recq_push_slot(struct recq *q)
{
    if (q->head + q->n == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
            q->head = 0;
        } else {
            size_t cap = q->cap ? q->cap * 2 : 16;
            struct cw_record *nv = realloc(q->v, cap * sizeof(*nv));
            if (nv == NULL)
                return NULL;
            q->v = nv;
            q->cap = cap;
        }
    }
    return &q->v[q->head + q->n];
}

uint64_t rp_record_bytes(const struct cw_record *rec)
{
    return sizeof(*rec) + rec->key_len + rec->version.value_len;
}

uint64_t rp_buffered_bytes(const struct cw_replica *r)
{
    uint64_t b = 0;
    for (unsigned o = 0; o < CW_REGIONS_MAX; o++)
        b += r->in[o].q.bytes;
    return b;
}

void rp_recq_commit(struct recq *q)
{
    q->bytes += rp_record_bytes(&q->v[q->head + q->n]);
    q->n++;
}

void rp_recq_pop(struct recq *q)
{
    uint64_t b = rp_record_bytes(&q->v[q->head]);
    CW_ASSERT(q->bytes >= b);
    q->bytes -= b;
    cw_record_free(&q->v[q->head]);
    q->head++;
    q->n--;
    if (q->n == 0)
        q->head = 0;
}

void rp_recq_free(struct recq *q)
{
    while (q->n)
        rp_recq_pop(q);
    free(q->v);
    memset(q, 0, sizeof(*q));
}

/* Index of the first record with ts > after (the queue is in ts order). */
size_t rp_recq_after(const struct recq *q, uint64_t after)
{
    size_t lo = 0, hi = q->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rp_recq_at(q, mid)->version.dot.ts <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* --------------------------------------------------------------- effects */

struct cw_persist *rp_persist_slot(struct cw_replica *r)
{
    struct cw_persist *p =
        rp_grow_array((void **)&r->ready.persist, &r->cap_persist, r->ready.n_persist, sizeof(*p));
    if (p) {
        memset(p, 0, sizeof(*p));
        r->ready.n_persist++;
    }
    return p;
}

/*
 * Out of memory while recording an effect leaves the replica unable to keep its
 * promises (durability before acknowledgement), so it is treated like a failed
 * assertion: the process stops and recovers from the store on restart.
 */
void rp_oom(void)
{
    abort();
}

void rp_emit_key(struct cw_replica *r, const struct cw_keyentry *e)
{
    struct cw_persist *p = rp_persist_slot(r);
    if (p == NULL)
        rp_oom();
    p->kind = CW_PERSIST_KEY;
    p->key = malloc(e->key_len);
    if (p->key == NULL)
        rp_oom();
    memcpy(p->key, e->key, e->key_len);
    p->key_len = e->key_len;
    if (e->state.n > 0 && cw_encode_keystate(&e->state, &p->data, &p->data_len) != CW_OK)
        rp_oom();
}

void rp_emit_outbox(struct cw_replica *r, enum cw_persist_kind kind, const struct cw_record *rec)
{
    struct cw_persist *p = rp_persist_slot(r);
    if (p == NULL)
        rp_oom();
    p->kind = kind;
    p->ts = rec->version.dot.ts;
    if (kind == CW_PERSIST_OUTBOX_PUT && cw_encode_record(rec, &p->data, &p->data_len) != CW_OK)
        rp_oom();
}

/*
 * What this region has made visible: V, except that its own entry is its clock.
 * Every write this region ever stamped is at or below its clock and was applied
 * the moment it was stamped, so a dependency on this region's own entry is met
 * once the clock has passed it (a context entry need not be an exact write stamp,
 * e.g. a hand-made token).
 */
void rp_visible(const struct cw_replica *r, struct cw_vclock *out)
{
    *out = r->applied;
    if (r->hlc.last > out->ts[r->cfg.region])
        out->ts[r->cfg.region] = r->hlc.last;
}

struct cw_msg *rp_msg_slot(struct cw_replica *r, unsigned to, enum cw_msg_type type)
{
    struct cw_msg *m =
        rp_grow_array((void **)&r->ready.msgs, &r->cap_msgs, r->ready.n_msgs, sizeof(*m));
    if (m == NULL)
        rp_oom();
    memset(m, 0, sizeof(*m));
    r->ready.n_msgs++;
    m->type = type;
    m->from = (uint8_t)r->cfg.region;
    m->to = (uint8_t)to;
    /* Own entry: the clock (every write this region stamped is applied here), so
     * peers' stability vectors advance while this region does not write. */
    rp_visible(r, &m->applied);
    for (unsigned o = 0; o < r->cfg.n_regions; o++)
        m->received.ts[o] = r->in[o].received;
    m->received.ts[r->cfg.region] = r->stream_end;
    r->in[to].owed = 0; /* every message carries the acknowledgement */
    /* The acknowledgement's own entry is the clock: persist it with this round
     * (the clock may have moved by observing a peer), so what peers are told
     * survives a crash. */
    r->meta_dirty = true;
    return m;
}

/* A heartbeat to p: the acknowledgement, this region's clock (every record it
 * issues later exceeds it) and where its stream to p stands. The clock goes into
 * the metadata persisted with this round, before the message leaves. */
void rp_send_heartbeat(struct cw_replica *r, unsigned p, uint64_t clock)
{
    struct cw_msg *m = rp_msg_slot(r, p, CW_MSG_HEARTBEAT);
    m->clock = clock;
    m->stream_end = r->stream_end;
    m->stream_sent = r->out[p].known ? r->out[p].sent_upto : 0;
    /* Where this region can still resend from: every peer applied what came
     * before (the outbox keeps what some peer has not). A peer holding less lost
     * it with this region's disk (a rebuilt region, replica_snap.c) and skips. */
    m->stream_base = r->outbox.n ? rp_recq_at(&r->outbox, 0)->prev_ts : r->stream_end;
    r->meta_dirty = true;
}

struct cw_reply *rp_reply_slot(struct cw_replica *r, enum cw_reply_kind kind, uint64_t req_id,
                               int err)
{
    struct cw_reply *p =
        rp_grow_array((void **)&r->ready.replies, &r->cap_replies, r->ready.n_replies, sizeof(*p));
    if (p == NULL)
        rp_oom();
    memset(p, 0, sizeof(*p));
    r->ready.n_replies++;
    p->kind = kind;
    p->req_id = req_id;
    p->err = err;
    cw_keystate_init(&p->state);
    if (err != CW_OK)
        r->stats.errors++;
    return p;
}

void rp_reply_fail(struct cw_replica *r, enum cw_reply_kind kind, uint64_t req_id, int err,
                   const char *fmt, ...)
{
    CW_ASSERT(err != CW_OK);
    struct cw_reply *p = rp_reply_slot(r, kind, req_id, err);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------- lifecycle */

void cw_replica_config_defaults(struct cw_replica_config *cfg)
{
    if (!cfg->max_value_bytes)
        cfg->max_value_bytes = CW_DEFAULT_VALUE_BYTES_MAX;
    if (!cfg->dep_buffer_max)
        cfg->dep_buffer_max = CW_DEFAULT_DEP_BUFFER_MAX;
    if (!cfg->outbox_max)
        cfg->outbox_max = CW_DEFAULT_OUTBOX_MAX;
    if (!cfg->flush_gap_us)
        cfg->flush_gap_us = CW_DEFAULT_FLUSH_GAP_US;
    if (!cfg->batch_records_max)
        cfg->batch_records_max = CW_DEFAULT_BATCH_RECORDS_MAX;
    if (!cfg->batch_bytes_max)
        cfg->batch_bytes_max = CW_DEFAULT_BATCH_BYTES_MAX;
    if (!cfg->window_records)
        cfg->window_records = CW_DEFAULT_WINDOW_RECORDS;
    if (!cfg->waiting_max)
        cfg->waiting_max = CW_DEFAULT_WAITING_MAX;
    if (!cfg->heartbeat_us)
        cfg->heartbeat_us = CW_DEFAULT_HEARTBEAT_MS * 1000ull;
    if (!cfg->nack_retry_us)
        cfg->nack_retry_us = CW_DEFAULT_NACK_RETRY_MS * 1000ull;
    if (!cfg->wait_us)
        cfg->wait_us = CW_DEFAULT_WAIT_MS * 1000ull;
    if (!cfg->outbox_bytes_max)
        cfg->outbox_bytes_max = CW_DEFAULT_OUTBOX_BYTES_MAX;
    if (!cfg->dep_buffer_bytes_max)
        cfg->dep_buffer_bytes_max = CW_DEFAULT_DEP_BUFFER_BYTES_MAX;
    if (!cfg->inflight_bytes_max)
        cfg->inflight_bytes_max = CW_DEFAULT_INFLIGHT_BYTES_MAX;
    if (!cfg->key_cache_bytes_max)
        cfg->key_cache_bytes_max = CW_DEFAULT_KEY_CACHE_BYTES_MAX;
    if (!cfg->outbox_cache_bytes_max)
        cfg->outbox_cache_bytes_max = CW_DEFAULT_OUTBOX_CACHE_BYTES_MAX;
    if (!cfg->snap_keys_max || cfg->snap_keys_max > CW_SNAP_KEYS_HARD_MAX)
        cfg->snap_keys_max = CW_DEFAULT_SNAP_KEYS_MAX;
    if (!cfg->context_ahead_max_us)
        cfg->context_ahead_max_us = CW_DEFAULT_CONTEXT_AHEAD_MAX_MS * 1000ull;
}

struct cw_replica *cw_replica_create(const struct cw_replica_config *cfg)
{
    if (cfg->n_regions == 0 || cfg->n_regions > CW_REGIONS_MAX || cfg->region >= cfg->n_regions)
        return NULL;
    if (cfg->rebuild && (cfg->rebuild_from >= cfg->n_regions || cfg->rebuild_from == cfg->region))
        return NULL;
    struct cw_replica *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = *cfg;
    cw_replica_config_defaults(&r->cfg);
    if (cfg->n_buckets) {
        r->buckets = calloc(cfg->n_buckets, sizeof(*r->buckets));
        if (r->buckets == NULL) {
            free(r);
            return NULL;
        }
        memcpy(r->buckets, cfg->buckets, cfg->n_buckets * sizeof(*r->buckets));
    }
    r->cfg.buckets = r->buckets;
    cw_hlc_init(&r->hlc, 0);
    cw_keymap_init(&r->keys);
    r->rb.phase = cfg->rebuild ? RB_ANNOUNCE : RB_DONE;
    return r;
}

void rp_free_waiting(struct waiting *w)
{
    free(w->key);
    free(w->value);
}

static void ready_clear(struct cw_replica *r)
{
    for (size_t i = 0; i < r->ready.n_persist; i++) {
        free(r->ready.persist[i].key);
        free(r->ready.persist[i].data);
    }
    for (size_t i = 0; i < r->ready.n_msgs; i++)
        cw_msg_free(&r->ready.msgs[i]);
    for (size_t i = 0; i < r->ready.n_replies; i++)
        cw_keystate_free(&r->ready.replies[i].state);
    r->ready.n_persist = r->ready.n_msgs = r->ready.n_replies = 0;
    r->meta_emitted = false;
}

void cw_replica_destroy(struct cw_replica **rp)
{
    struct cw_replica *r = *rp;
    if (r == NULL)
        return;
    ready_clear(r);
    free(r->ready.persist);
    free(r->ready.msgs);
    free(r->ready.replies);
    for (unsigned o = 0; o < CW_REGIONS_MAX; o++)
        rp_recq_free(&r->in[o].q);
    rp_recq_free(&r->outbox);
    rp_snap_free(r);
    cw_keymap_free(&r->keys);
    free(r->tomb_keys.v);
    struct waiting *wv = r->waiting.v;
    for (size_t i = 0; i < r->waiting.n; i++)
        rp_free_waiting(&wv[i]);
    free(r->waiting.v);
    free(r->buckets);
    free(r);
    *rp = NULL;
}

/* -------------------------------------------------------------- recovery */

int cw_replica_restore_meta(struct cw_replica *r, const uint8_t *data, uint32_t len)
{
    RP_INPUT(r);
    struct cw_meta m;
    int rc = cw_decode_meta(&m, data, len);
    if (rc != CW_OK)
        return rc;
    r->applied = m.applied;
    for (unsigned o = 0; o < CW_REGIONS_MAX; o++) {
        r->in[o].received = m.chain.ts[o];
        r->in[o].chain = m.chain.ts[o];
    }
    r->stream_end = m.stream_end;
    cw_hlc_observe(&r->hlc, m.hlc);
    cw_hlc_observe(&r->hlc, m.stream_end);
    rp_snap_advanced(r);
    return CW_OK;
}

void rp_note_tombstones(struct cw_replica *r, struct cw_keyentry *e)
{
    if (e->flags & KE_HAS_TOMB)
        return;
    if (cw_keystate_live(&e->state) == e->state.n)
        return;
    if (rp_vec_push(&r->tomb_keys, &e, sizeof(e)) != CW_OK)
        rp_oom();
    e->flags |= KE_HAS_TOMB;
}

void rp_remove_key(struct cw_replica *r, struct cw_keyentry *e)
{
    if (e->flags & KE_HAS_TOMB) {
        struct cw_keyentry **tk = r->tomb_keys.v;
        size_t i = 0;
        while (i < r->tomb_keys.n && tk[i] != e)
            i++;
        CW_ASSERT(i < r->tomb_keys.n); /* flagged keys are on the list */
        tk[i] = tk[--r->tomb_keys.n];
    }
    uint64_t b = rp_entry_bytes(e);
    CW_ASSERT(r->key_bytes >= b);
    r->key_bytes -= b;
    cw_keymap_remove(&r->keys, e);
}

/* ------------------------------------------------------------- the caches */

uint64_t rp_entry_bytes(const struct cw_keyentry *e)
{
    uint64_t b = sizeof(*e) + e->key_len + (uint64_t)e->state.n * sizeof(struct cw_version);
    for (uint32_t i = 0; i < e->state.n; i++)
        b += e->state.v[i].value_len;
    return b;
}

void rp_key_resized(struct cw_replica *r, uint64_t before, const struct cw_keyentry *e)
{
    CW_ASSERT(r->key_bytes >= before);
    r->key_bytes = r->key_bytes - before + rp_entry_bytes(e);
}

static bool has_reader(const struct cw_replica *r)
{
    return r->cfg.reader.key != NULL;
}

struct cw_keyentry *rp_key_get(struct cw_replica *r, const uint8_t *key, uint32_t key_len,
                               bool create, int *rc)
{
    *rc = CW_OK;
    struct cw_keyentry *e = cw_keymap_find(&r->keys, key, key_len);
    if (e != NULL) {
        e->flags |= KE_REF;
        return e;
    }
    struct cw_keystate s;
    cw_keystate_init(&s);
    if (has_reader(r)) {
        int got = r->cfg.reader.key(r->cfg.reader.ctx, key, key_len, &s);
        if (got != CW_OK && got != CW_ENOTFOUND) {
            r->stats.store_read_errors++;
            *rc = got;
            return NULL;
        }
        if (got == CW_OK && s.n == 0) {
            cw_keystate_free(&s); /* an empty state is never stored */
            got = CW_ENOTFOUND;
        }
        if (got == CW_OK)
            r->stats.keys_loaded++;
        else if (!create) {
            *rc = CW_ENOTFOUND;
            return NULL;
        }
    } else if (!create) {
        *rc = CW_ENOTFOUND;
        return NULL;
    }
    e = cw_keymap_upsert(&r->keys, key, key_len);
    if (e == NULL)
        rp_oom();
    e->state = s; /* moved; empty for a new key */
    e->flags |= KE_REF;
    r->key_bytes += rp_entry_bytes(e);
    for (uint32_t i = 0; i < s.n; i++)
        cw_hlc_observe(&r->hlc, s.v[i].dot.ts);
    rp_note_tombstones(r, e);
    return e;
}

int cw_replica_read_key(const struct cw_replica *r, const uint8_t *key, uint32_t key_len,
                        struct cw_keystate *out)
{
    cw_keystate_init(out);
    const struct cw_keyentry *e = cw_keymap_find(&r->keys, key, key_len);
    if (e != NULL) {
        if (e->state.n == 0)
            return CW_ENOTFOUND;
        return cw_keystate_copy(out, &e->state);
    }
    if (!has_reader(r))
        return CW_ENOTFOUND;
    int rc = r->cfg.reader.key(r->cfg.reader.ctx, key, key_len, out);
    if (rc == CW_OK && out->n == 0) {
        cw_keystate_free(out);
        rc = CW_ENOTFOUND;
    }
    return rc;
}

static void drop_body(struct cw_replica *r, struct cw_record *rec)
{
    if (rec->key == NULL)
        return;
    uint64_t b = rec->key_len + rec->version.value_len;
    CW_ASSERT(r->body_bytes >= b);
    r->body_bytes -= b;
    free(rec->key);
    free(rec->version.value);
    rec->key = NULL; /* a stub: key_len and value_len stay, the body is on disk */
    rec->version.value = NULL;
}

void rp_outbox_pop(struct cw_replica *r)
{
    drop_body(r, rp_recq_at(&r->outbox, 0));
    rp_recq_pop(&r->outbox);
    if (r->body_hand > 0)
        r->body_hand--;
}

int rp_outbox_body(struct cw_replica *r, const struct cw_record *stub, struct cw_record *out)
{
    if (stub->key != NULL)
        return cw_record_copy(out, stub);
    CW_ASSERT(has_reader(r) && r->cfg.reader.outbox != NULL);
    int rc = r->cfg.reader.outbox(r->cfg.reader.ctx, stub->version.dot.ts, out);
    if (rc != CW_OK) {
        r->stats.store_read_errors++;
        return rc == CW_ENOTFOUND ? CW_ESTORE : rc;
    }
    /* What comes back must be the record the stub stands for. */
    if (out->version.dot.ts != stub->version.dot.ts || out->prev_ts != stub->prev_ts ||
        out->key_len != stub->key_len || out->version.value_len != stub->version.value_len) {
        cw_record_free(out);
        r->stats.store_read_errors++;
        return CW_EDECODE;
    }
    r->stats.bodies_loaded++;
    return CW_OK;
}

void rp_cache_trim(struct cw_replica *r)
{
    if (!has_reader(r))
        return;
    /* Outbox bodies, oldest first: the newest are what the next flush sends. */
    /* Only bodies the reader can give back may leave memory. */
    while (r->cfg.reader.outbox != NULL && r->body_bytes > r->cfg.outbox_cache_bytes_max &&
           r->body_hand < r->outbox.n) {
        struct cw_record *rec = rp_recq_at(&r->outbox, r->body_hand++);
        if (rec->key != NULL) {
            drop_body(r, rec);
            r->stats.bodies_evicted++;
        }
    }
    if (r->key_bytes <= r->cfg.key_cache_bytes_max)
        return;
    /* Key states: a CLOCK sweep. A key used since the hand last passed gets a
     * second chance; keys on the tombstone list stay (it points to them). Two
     * passes at most, so a cache pinned by tombstones cannot loop. */
    size_t visits = 2 * r->keys.count + 1;
    size_t slot = r->clock_hand < r->keys.n_slots ? r->clock_hand : 0;
    struct cw_keyentry *e = cw_keymap_next(&r->keys, &slot, NULL);
    while (r->key_bytes > r->cfg.key_cache_bytes_max && visits-- > 0) {
        if (e == NULL) {
            slot = 0;
            e = cw_keymap_next(&r->keys, &slot, NULL);
            if (e == NULL)
                break;
        }
        struct cw_keyentry *nx = cw_keymap_next(&r->keys, &slot, e);
        if (e->flags & KE_HAS_TOMB) {
            /* pinned */
        } else if (e->flags & KE_REF) {
            e->flags &= ~KE_REF;
        } else {
            rp_remove_key(r, e);
            r->stats.keys_evicted++;
        }
        e = nx;
    }
    r->clock_hand = slot;
}

int cw_replica_restore_key(struct cw_replica *r, const uint8_t *key, uint32_t key_len,
                           const uint8_t *data, uint32_t len)
{
    RP_INPUT(r);
    if (!cw_full_key_valid(key, key_len))
        return CW_EDECODE;
    struct cw_keystate s;
    int rc = cw_decode_keystate(&s, data, len, CW_VALUE_HARD_MAX);
    if (rc != CW_OK)
        return rc;
    if (s.n == 0) {
        /* An empty state is persisted as a deletion, never stored. */
        cw_keystate_free(&s);
        return CW_EDECODE;
    }
    size_t count = r->keys.count;
    struct cw_keyentry *e = cw_keymap_upsert(&r->keys, key, key_len);
    if (e == NULL) {
        cw_keystate_free(&s);
        return CW_ENOMEM;
    }
    if (r->keys.count != count)
        r->key_bytes += rp_entry_bytes(e); /* a new, empty entry */
    uint64_t before = rp_entry_bytes(e);
    cw_keystate_free(&e->state);
    e->state = s;
    rp_key_resized(r, before, e);
    for (uint32_t i = 0; i < s.n; i++)
        cw_hlc_observe(&r->hlc, s.v[i].dot.ts);
    rp_note_tombstones(r, e);
    /* With a store of record only keys holding tombstones must stay (the
     * collector walks them); the rest is read back when needed. */
    if (has_reader(r) && !(e->flags & KE_HAS_TOMB))
        rp_remove_key(r, e);
    rp_snap_advanced(r);
    return CW_OK;
}

int cw_replica_restore_outbox(struct cw_replica *r, const uint8_t *data, uint32_t len)
{
    RP_INPUT(r);
    struct cw_record rec;
    int rc = cw_decode_record(&rec, data, len, CW_VALUE_HARD_MAX);
    if (rc != CW_OK)
        return rc;
    if (rec.version.dot.origin != r->cfg.region || !cw_full_key_valid(rec.key, rec.key_len) ||
        (r->outbox.n &&
         rp_recq_at(&r->outbox, r->outbox.n - 1)->version.dot.ts >= rec.version.dot.ts)) {
        cw_record_free(&rec);
        return CW_EDECODE;
    }
    struct cw_record *slot = rp_recq_push_slot(&r->outbox);
    if (slot == NULL) {
        cw_record_free(&rec);
        return CW_ENOMEM;
    }
    *slot = rec;
    rp_recq_commit(&r->outbox);
    r->body_bytes += rec.key_len + rec.version.value_len;
    rp_cache_trim(r);
    cw_hlc_observe(&r->hlc, rec.version.dot.ts);
    if (rec.version.dot.ts > r->stream_end)
        r->stream_end = rec.version.dot.ts;
    rp_snap_advanced(r);
    return CW_OK;
}

/* ------------------------------------------------------------- buckets */

const struct cw_bucket_policy *cw_replica_bucket(const struct cw_replica *r, const char *name)
{
    for (unsigned i = 0; i < r->cfg.n_buckets; i++)
        if (strcmp(r->buckets[i].name, name) == 0)
            return &r->buckets[i];
    return NULL;
}

bool rp_covers(const struct cw_replica *r, const struct cw_vclock *need)
{
    struct cw_vclock v;
    rp_visible(r, &v);
    return cw_vc_dominates(&v, need);
}

/* A stamp from a peer more than context_ahead_max_us ahead of this region's
 * physical time is refused: applying it would drag the HLC (and
 * this origin's entry of V) to the end of time and kill the stream. */
bool rp_stamp_plausible(const struct cw_replica *r, struct cw_now now, uint64_t ts)
{
    /* Measured from physical time only: a bound measured from the clock itself
     * would move with it, and a client could ratchet every region's clock ahead
     * 60 s at a time. */
    return ts <= cw_hlc_from_us(now.real_us + r->cfg.context_ahead_max_us);
}

/* ------------------------------------------------------------- effects */

bool cw_replica_has_ready(const struct cw_replica *r)
{
    return r->meta_dirty || r->ready.n_persist || r->ready.n_msgs || r->ready.n_replies;
}

const struct cw_ready *cw_replica_ready(struct cw_replica *r)
{
    /* Replication on commit: the round's local writes go to the peers in this
     * ready, one batch per peer for everything the round wrote (within the send
     * window), after the store commit that makes them durable and not at the next
     * tick. The driver sends messages only after committing the persist records
     * of the same ready, so no peer sees a write this region could lose. */
    if (r->outbox_fresh && (r->cfg.flush_on_tick || r->rb.phase != RB_DONE))
        r->outbox_fresh = false; /* the tick ships them */
    if (r->outbox_fresh &&
        (r->last_flush_us == 0 || r->now_us >= r->last_flush_us + r->cfg.flush_gap_us)) {
        r->outbox_fresh = false;
        r->last_flush_us = r->now_us ? r->now_us : 1;
        rp_flush_all(r);
    }
    if (r->meta_dirty && !r->meta_emitted) {
        struct cw_meta m = {.hlc = r->hlc.last, .applied = r->applied, .stream_end = r->stream_end};
        for (unsigned o = 0; o < CW_REGIONS_MAX; o++)
            m.chain.ts[o] = r->in[o].chain;
        struct cw_persist *p = rp_persist_slot(r);
        if (p == NULL)
            rp_oom();
        p->kind = CW_PERSIST_META;
        if (cw_encode_meta(&m, &p->data, &p->data_len) != CW_OK)
            rp_oom();
        r->meta_emitted = true;
        r->meta_dirty = false;
    }
    r->in_ready = true;
    return &r->ready;
}

void cw_replica_advance(struct cw_replica *r)
{
    /* Messages built before a later change in the same step carry the older ack;
     * that is safe (acks only ever understate). */
    ready_clear(r);
    r->in_ready = false;
    rp_snap_advanced(r); /* what a donor's snapshot names: persisted state */
    rp_cache_trim(r);    /* everything is persisted now */
}

/* ---------------------------------------------------------- observation */

uint64_t cw_replica_flush_due_us(const struct cw_replica *r)
{
    if (!r->outbox_fresh)
        return 0;
    return r->last_flush_us + r->cfg.flush_gap_us;
}

const struct cw_vclock *cw_replica_applied(const struct cw_replica *r)
{
    return &r->applied;
}

size_t cw_replica_buffered(const struct cw_replica *r)
{
    return r->buffered;
}

uint64_t cw_replica_key_cache_bytes(const struct cw_replica *r)
{
    return r->key_bytes;
}

uint64_t cw_replica_outbox_body_bytes(const struct cw_replica *r)
{
    return r->body_bytes;
}

uint64_t cw_replica_outbox_bytes(const struct cw_replica *r)
{
    return r->outbox.bytes;
}

uint64_t cw_replica_buffered_bytes(const struct cw_replica *r)
{
    return rp_buffered_bytes(r);
}

uint64_t cw_replica_inflight_bytes(const struct cw_replica *r, unsigned peer)
{
    if (peer >= r->cfg.n_regions || peer == r->cfg.region || !r->out[peer].known)
        return 0;
    size_t acked = rp_recq_after(&r->outbox, r->out[peer].received.ts[r->cfg.region]);
    size_t sent = rp_recq_after(&r->outbox, r->out[peer].sent_upto);
    uint64_t b = 0;
    for (size_t i = acked; i < sent; i++)
        b += rp_record_bytes(rp_recq_at(&r->outbox, i));
    return b;
}

size_t cw_replica_outbox_len(const struct cw_replica *r)
{
    return r->outbox.n;
}

size_t cw_replica_outbox_pending(const struct cw_replica *r, unsigned peer)
{
    if (peer >= r->cfg.n_regions || peer == r->cfg.region)
        return 0;
    return r->outbox.n - rp_recq_after(&r->outbox, r->out[peer].applied.ts[r->cfg.region]);
}

size_t cw_replica_waiting(const struct cw_replica *r)
{
    return r->waiting.n;
}

const struct cw_replica_stats *cw_replica_stats(const struct cw_replica *r)
{
    return &r->stats;
}

void cw_replica_stability(const struct cw_replica *r, struct cw_vclock *out)
{
    *out = r->applied;
    for (unsigned p = 0; p < r->cfg.n_regions; p++) {
        if (p == r->cfg.region)
            continue;
        for (unsigned o = 0; o < r->cfg.n_regions; o++)
            if (r->out[p].applied.ts[o] < out->ts[o])
                out->ts[o] = r->out[p].applied.ts[o];
    }
}

const struct cw_keymap *cw_replica_keys(const struct cw_replica *r)
{
    return &r->keys;
}

const struct cw_hist *cw_replica_visibility(const struct cw_replica *r, unsigned origin)
{
    return origin < CW_REGIONS_MAX ? &r->visibility[origin] : NULL;
}

uint64_t cw_replica_clock(const struct cw_replica *r)
{
    return r->hlc.last;
}
