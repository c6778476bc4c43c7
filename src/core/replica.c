/*
 * replica.c - causal delivery, sessions' read-wait, outbox and acknowledgements
 * for one region. Pure: every input carries the time, every output is an effect.
 */
#include "core/replica.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "core/hist.h"

#define KE_HAS_TOMB 1u

/* A FIFO of records (used for the outbox and the per-origin dependency queues). */
struct recq {
    struct cw_record *v;
    size_t head, n, cap;
};

struct origin_in {
    struct recq q;        /* received in chain order, not yet applied */
    uint64_t received;    /* ts of the last record accepted in chain order */
    uint64_t chain;       /* ts of the last record applied */
    unsigned wait_region; /* the head's first unmet dependency ... */
    uint64_t wait_ts;     /* ... and the entry it needs; 0 when not blocked */
    uint64_t nack_at_us;  /* when we last asked for a resend (0: never) */
    uint32_t owed;        /* records accepted since our last message to this origin */
};

struct peer_out {
    bool known;         /* heard from since start, so sent_upto is meaningful */
    uint64_t sent_upto; /* ts of the last record sent on this link */
    struct cw_vclock applied;
    struct cw_vclock received;
};

/* A request waiting until the region has applied its session's context. */
struct waiting {
    bool is_put;
    bool tombstone;
    uint64_t req_id;
    uint64_t deadline_us;
    struct cw_vclock context;
    struct cw_vclock kctx;
    char bucket[CW_BUCKET_NAME_MAX + 1];
    uint32_t key_len, value_len;
    uint8_t *key, *value; /* owned copies */
};

struct vec {
    void *v;
    size_t n, cap;
};

struct cw_replica {
    struct cw_replica_config cfg;
    struct cw_bucket_policy *buckets;
    struct cw_hlc hlc;
    struct cw_vclock applied;
    uint64_t stream_end;
    struct origin_in in[CW_REGIONS_MAX];
    struct peer_out out[CW_REGIONS_MAX];
    struct recq outbox;
    struct cw_keymap keys;
    struct vec tomb_keys; /* struct cw_keyentry *: keys that hold tombstones */
    struct vec waiting;   /* struct waiting, in arrival order */
    size_t buffered;
    uint64_t last_heartbeat_us;
    bool meta_dirty;
    bool meta_emitted; /* the meta record is in the current ready */
    struct cw_ready ready;
    size_t cap_persist, cap_msgs, cap_replies;
    struct cw_replica_stats stats;
    struct cw_hist visibility[CW_REGIONS_MAX]; /* apply time - origin commit time, us */
};

/* ---------------------------------------------------------------- helpers */

static int vec_push(struct vec *v, const void *item, size_t size)
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
static void *grow_array(void **arr, size_t *cap, size_t n, size_t size)
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

static struct cw_record *recq_at(const struct recq *q, size_t i)
{
    return &q->v[q->head + i];
}

static struct cw_record *recq_push_slot(struct recq *q)
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

static void recq_pop(struct recq *q)
{
    cw_record_free(&q->v[q->head]);
    q->head++;
    q->n--;
    if (q->n == 0)
        q->head = 0;
}

static void recq_free(struct recq *q)
{
    while (q->n)
        recq_pop(q);
    free(q->v);
    memset(q, 0, sizeof(*q));
}

/* Index of the first record with ts > after (the queue is in ts order). */
static size_t recq_after(const struct recq *q, uint64_t after)
{
    size_t lo = 0, hi = q->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (recq_at(q, mid)->version.dot.ts <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void cw_record_free(struct cw_record *r)
{
    free(r->key);
    free(r->version.value);
    r->key = NULL;
    r->version.value = NULL;
}

int cw_record_copy(struct cw_record *dst, const struct cw_record *src)
{
    *dst = *src;
    dst->key = malloc(src->key_len ? src->key_len : 1);
    dst->version.value = NULL;
    if (dst->key == NULL)
        return CW_ENOMEM;
    memcpy(dst->key, src->key, src->key_len);
    if (src->version.value_len) {
        dst->version.value = malloc(src->version.value_len);
        if (dst->version.value == NULL) {
            free(dst->key);
            dst->key = NULL;
            return CW_ENOMEM;
        }
        memcpy(dst->version.value, src->version.value, src->version.value_len);
    }
    return CW_OK;
}

void cw_msg_free(struct cw_msg *m)
{
    for (uint32_t i = 0; i < m->n_records; i++)
        cw_record_free(&m->records[i]);
    free(m->records);
    m->records = NULL;
    m->n_records = 0;
}

int cw_msg_copy(struct cw_msg *dst, const struct cw_msg *src)
{
    *dst = *src;
    dst->records = NULL;
    dst->n_records = 0;
    if (src->n_records == 0)
        return CW_OK;
    dst->records = calloc(src->n_records, sizeof(*dst->records));
    if (dst->records == NULL)
        return CW_ENOMEM;
    for (uint32_t i = 0; i < src->n_records; i++) {
        if (cw_record_copy(&dst->records[i], &src->records[i]) != CW_OK) {
            cw_msg_free(dst);
            return CW_ENOMEM;
        }
        dst->n_records++;
    }
    return CW_OK;
}

int cw_validate_bucket(const char *bucket)
{
    size_t n = 0;
    for (; bucket[n]; n++) {
        char c = bucket[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok || n >= CW_BUCKET_NAME_MAX)
            return CW_EBUCKET;
    }
    return n == 0 ? CW_EBUCKET : CW_OK;
}

int cw_validate_key(const uint8_t *key, uint32_t len)
{
    (void)key;
    return len == 0 || len > CW_KEY_BYTES_MAX ? CW_EKEY : CW_OK;
}

/* Checks a full key "bucket/key" as carried by records. */
static bool full_key_valid(const uint8_t *k, uint32_t len)
{
    uint32_t slash = 0;
    while (slash < len && k[slash] != '/')
        slash++;
    if (slash == 0 || slash > CW_BUCKET_NAME_MAX || slash == len)
        return false;
    for (uint32_t i = 0; i < slash; i++) {
        uint8_t c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return len - slash - 1 <= CW_KEY_BYTES_MAX;
}

static uint8_t *make_full_key(const char *bucket, const uint8_t *key, uint32_t key_len,
                              uint32_t *out_len)
{
    size_t blen = strlen(bucket);
    uint8_t *k = malloc(blen + 1 + key_len);
    if (k == NULL)
        return NULL;
    memcpy(k, bucket, blen);
    k[blen] = '/';
    memcpy(k + blen + 1, key, key_len);
    *out_len = (uint32_t)(blen + 1 + key_len);
    return k;
}

/* --------------------------------------------------------------- effects */

static struct cw_persist *persist_slot(struct cw_replica *r)
{
    struct cw_persist *p =
        grow_array((void **)&r->ready.persist, &r->cap_persist, r->ready.n_persist, sizeof(*p));
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
static void oom(void)
{
    abort();
}

static void emit_key(struct cw_replica *r, const struct cw_keyentry *e)
{
    struct cw_persist *p = persist_slot(r);
    if (p == NULL)
        oom();
    p->kind = CW_PERSIST_KEY;
    p->key = malloc(e->key_len);
    if (p->key == NULL)
        oom();
    memcpy(p->key, e->key, e->key_len);
    p->key_len = e->key_len;
    if (e->state.n > 0 && cw_encode_keystate(&e->state, &p->data, &p->data_len) != CW_OK)
        oom();
}

static void emit_outbox(struct cw_replica *r, enum cw_persist_kind kind,
                        const struct cw_record *rec)
{
    struct cw_persist *p = persist_slot(r);
    if (p == NULL)
        oom();
    p->kind = kind;
    p->ts = rec->version.dot.ts;
    if (kind == CW_PERSIST_OUTBOX_PUT && cw_encode_record(rec, &p->data, &p->data_len) != CW_OK)
        oom();
}

/*
 * What this region has made visible: V, except that its own entry is its clock.
 * Every write this region ever stamped is at or below its clock and was applied
 * the moment it was stamped, so a dependency on this region's own entry is met
 * once the clock has passed it (a context entry need not be an exact write stamp,
 * e.g. a hand-made token).
 */
static void visible(const struct cw_replica *r, struct cw_vclock *out)
{
    *out = r->applied;
    if (r->hlc.last > out->ts[r->cfg.region])
        out->ts[r->cfg.region] = r->hlc.last;
}

static struct cw_msg *msg_slot(struct cw_replica *r, unsigned to, enum cw_msg_type type)
{
    struct cw_msg *m =
        grow_array((void **)&r->ready.msgs, &r->cap_msgs, r->ready.n_msgs, sizeof(*m));
    if (m == NULL)
        oom();
    memset(m, 0, sizeof(*m));
    r->ready.n_msgs++;
    m->type = type;
    m->from = (uint8_t)r->cfg.region;
    m->to = (uint8_t)to;
    /* Own entry: the clock (every write this region stamped is applied here), so
     * peers' stability vectors advance while this region does not write. */
    visible(r, &m->applied);
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
static void send_heartbeat(struct cw_replica *r, unsigned p, uint64_t clock)
{
    struct cw_msg *m = msg_slot(r, p, CW_MSG_HEARTBEAT);
    m->clock = clock;
    m->stream_end = r->stream_end;
    m->stream_sent = r->out[p].known ? r->out[p].sent_upto : 0;
    r->meta_dirty = true;
}

static struct cw_reply *reply_slot(struct cw_replica *r, enum cw_reply_kind kind, uint64_t req_id,
                                   int err)
{
    struct cw_reply *p =
        grow_array((void **)&r->ready.replies, &r->cap_replies, r->ready.n_replies, sizeof(*p));
    if (p == NULL)
        oom();
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

/* ------------------------------------------------------------- lifecycle */

void cw_replica_config_defaults(struct cw_replica_config *cfg)
{
    if (!cfg->max_value_bytes)
        cfg->max_value_bytes = 1u << 20;
    if (!cfg->dep_buffer_max)
        cfg->dep_buffer_max = 100000;
    if (!cfg->outbox_max)
        cfg->outbox_max = 1000000;
    if (!cfg->batch_records_max)
        cfg->batch_records_max = 256;
    if (!cfg->batch_bytes_max)
        cfg->batch_bytes_max = 2u << 20;
    if (!cfg->window_records)
        cfg->window_records = 4096;
    if (!cfg->pending_reads_max)
        cfg->pending_reads_max = 10000;
    if (!cfg->heartbeat_us)
        cfg->heartbeat_us = 200000;
    if (!cfg->nack_retry_us)
        cfg->nack_retry_us = 1000000;
    if (!cfg->read_wait_us)
        cfg->read_wait_us = 5000000;
    if (!cfg->context_ahead_max_us)
        cfg->context_ahead_max_us = 60000000;
}

struct cw_replica *cw_replica_create(const struct cw_replica_config *cfg)
{
    if (cfg->n_regions == 0 || cfg->n_regions > CW_REGIONS_MAX || cfg->region >= cfg->n_regions)
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
    return r;
}

static void free_waiting(struct waiting *w)
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
        recq_free(&r->in[o].q);
    recq_free(&r->outbox);
    cw_keymap_free(&r->keys);
    free(r->tomb_keys.v);
    struct waiting *wv = r->waiting.v;
    for (size_t i = 0; i < r->waiting.n; i++)
        free_waiting(&wv[i]);
    free(r->waiting.v);
    free(r->buckets);
    free(r);
    *rp = NULL;
}

/* -------------------------------------------------------------- recovery */

int cw_replica_restore_meta(struct cw_replica *r, const uint8_t *data, uint32_t len)
{
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
    return CW_OK;
}

static void note_tombstones(struct cw_replica *r, struct cw_keyentry *e)
{
    if (e->flags & KE_HAS_TOMB)
        return;
    if (cw_keystate_live(&e->state) == e->state.n)
        return;
    if (vec_push(&r->tomb_keys, &e, sizeof(e)) != CW_OK)
        oom();
    e->flags |= KE_HAS_TOMB;
}

int cw_replica_restore_key(struct cw_replica *r, const uint8_t *key, uint32_t key_len,
                           const uint8_t *data, uint32_t len)
{
    if (!full_key_valid(key, key_len))
        return CW_EDECODE;
    struct cw_keystate s;
    int rc = cw_decode_keystate(&s, data, len, CW_VALUE_HARD_MAX);
    if (rc != CW_OK)
        return rc;
    struct cw_keyentry *e = cw_keymap_upsert(&r->keys, key, key_len);
    if (e == NULL) {
        cw_keystate_free(&s);
        return CW_ENOMEM;
    }
    cw_keystate_free(&e->state);
    e->state = s;
    for (uint32_t i = 0; i < s.n; i++)
        cw_hlc_observe(&r->hlc, s.v[i].dot.ts);
    note_tombstones(r, e);
    return CW_OK;
}

int cw_replica_restore_outbox(struct cw_replica *r, const uint8_t *data, uint32_t len)
{
    struct cw_record rec;
    int rc = cw_decode_record(&rec, data, len, CW_VALUE_HARD_MAX);
    if (rc != CW_OK)
        return rc;
    if (rec.version.dot.origin != r->cfg.region || !full_key_valid(rec.key, rec.key_len) ||
        (r->outbox.n &&
         recq_at(&r->outbox, r->outbox.n - 1)->version.dot.ts >= rec.version.dot.ts)) {
        cw_record_free(&rec);
        return CW_EDECODE;
    }
    struct cw_record *slot = recq_push_slot(&r->outbox);
    if (slot == NULL) {
        cw_record_free(&rec);
        return CW_ENOMEM;
    }
    *slot = rec;
    r->outbox.n++;
    cw_hlc_observe(&r->hlc, rec.version.dot.ts);
    if (rec.version.dot.ts > r->stream_end)
        r->stream_end = rec.version.dot.ts;
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

static int check_bucket(const struct cw_replica *r, const char *bucket,
                        const struct cw_bucket_policy **out)
{
    int rc = cw_validate_bucket(bucket);
    if (rc != CW_OK)
        return rc;
    *out = cw_replica_bucket(r, bucket);
    if (*out == NULL)
        return CW_EUNKNOWNBUCKET;
    if ((*out)->consistency == CW_STRONG)
        return CW_ESTRONG;
    return CW_OK;
}

static bool covers(const struct cw_replica *r, const struct cw_vclock *need)
{
    struct cw_vclock v;
    visible(r, &v);
    return cw_vc_dominates(&v, need);
}

/* A context naming a region this cluster does not have can never be satisfied,
 * and a record carrying one would be refused by every peer and block the stream:
 * such requests are refused up front. */
static bool context_in_range(const struct cw_replica *r, const struct cw_vclock *v)
{
    for (unsigned k = r->cfg.n_regions; k < CW_REGIONS_MAX; k++)
        if (v->ts[k])
            return false;
    return true;
}

/* A stamp from a peer more than context_ahead_max_us ahead of this region's
 * physical time is refused: applying it would drag the HLC (and
 * this origin's entry of V) to the end of time and kill the stream. */
static bool stamp_plausible(const struct cw_replica *r, uint64_t now_us, uint64_t ts)
{
    /* Measured from physical time only: a bound measured from the clock itself
     * would move with it, and a client could ratchet every region's clock ahead
     * 60 s at a time. */
    return ts <= cw_hlc_from_us(now_us + r->cfg.context_ahead_max_us);
}

/* A write's stamp must exceed every entry of its context. An entry far ahead of
 * this region's clock (a forged or corrupt token) would drag the HLC with it, up
 * to wrapping around, so such a context is refused. */
static bool context_plausible(const struct cw_replica *r, uint64_t now_us,
                              const struct cw_vclock *v)
{
    for (unsigned k = 0; k < CW_REGIONS_MAX; k++)
        if (!stamp_plausible(r, now_us, v->ts[k]))
            return false;
    return true;
}

/* ----------------------------------------------------------------- reads */

static void serve_read(struct cw_replica *r, uint64_t req_id, const uint8_t *key, uint32_t key_len,
                       enum cw_conflict conflict)
{
    struct cw_reply *p = reply_slot(r, CW_REPLY_GET, req_id, CW_OK);
    p->conflict = conflict;
    const struct cw_keyentry *e = cw_keymap_find(&r->keys, key, key_len);
    if (e == NULL)
        return;
    if (cw_keystate_copy(&p->state, &e->state) != CW_OK)
        oom();
    cw_keystate_context(&e->state, &p->kctx);
    for (uint32_t i = 0; i < e->state.n; i++)
        cw_vc_join_dot(&p->seen, e->state.v[i].dot.origin, e->state.v[i].dot.ts);
}

static void do_put(struct cw_replica *r, uint64_t now_us, const struct cw_put_req *req,
                   const struct cw_bucket_policy *b);

/* Does a request of bucket b have to wait until V covers the session context?
 * Causal buckets do, reads and writes alike: a write applied here before its
 * dependencies would be visible here before them. Eventual buckets do not. */
static bool must_wait(const struct cw_replica *r, const struct cw_bucket_policy *b,
                      const struct cw_vclock *context)
{
    if (b->consistency == CW_EVENTUAL || r->cfg.force_eventual)
        return false;
    return !covers(r, context);
}

/* Runs every waiting request whose context is now covered, in arrival order, and
 * fails the rest whose deadline passed (expire false: only run). */
static void check_waiting(struct cw_replica *r, uint64_t now_us, bool expire)
{
    struct waiting *wv = r->waiting.v;
    size_t out = 0;
    for (size_t i = 0; i < r->waiting.n; i++) {
        struct waiting *x = &wv[i];
        const struct cw_bucket_policy *b = cw_replica_bucket(r, x->bucket);
        if (covers(r, &x->context)) {
            if (x->is_put) {
                struct cw_put_req req = {
                    .req_id = x->req_id,
                    .bucket = x->bucket,
                    .key = x->key,
                    .key_len = x->key_len,
                    .value = x->value,
                    .value_len = x->value_len,
                    .tombstone = x->tombstone,
                    .context = x->context,
                    .kctx = x->kctx,
                };
                do_put(r, now_us, &req, b);
            } else {
                uint32_t klen;
                uint8_t *key = make_full_key(x->bucket, x->key, x->key_len, &klen);
                if (key == NULL)
                    oom();
                serve_read(r, x->req_id, key, klen, b->conflict);
                free(key);
            }
            free_waiting(x);
        } else if (expire && now_us >= x->deadline_us) {
            reply_slot(r, x->is_put ? CW_REPLY_PUT : CW_REPLY_GET, x->req_id, CW_ENOTREADY);
            r->stats.reads_timed_out++;
            free_waiting(x);
        } else {
            wv[out++] = *x;
        }
    }
    r->waiting.n = out;
}

/* Parks a request until the region has applied the session's context. The copy
 * owns its key and value. */
static void park(struct cw_replica *r, uint64_t now_us, bool is_put, uint64_t req_id,
                 const char *bucket, const uint8_t *key, uint32_t key_len, const uint8_t *value,
                 uint32_t value_len, bool tombstone, const struct cw_vclock *context,
                 const struct cw_vclock *kctx)
{
    if (r->waiting.n >= r->cfg.pending_reads_max) {
        reply_slot(r, is_put ? CW_REPLY_PUT : CW_REPLY_GET, req_id, CW_EFULL);
        return;
    }
    struct waiting w = {
        .is_put = is_put,
        .req_id = req_id,
        .deadline_us = now_us + r->cfg.read_wait_us,
        .context = *context,
        .key_len = key_len,
        .key = malloc(key_len ? key_len : 1),
        .value_len = value_len,
        .value = value_len ? malloc(value_len) : NULL,
        .tombstone = tombstone,
    };
    if (kctx)
        w.kctx = *kctx;
    if (w.key == NULL || (value_len && w.value == NULL))
        oom();
    memcpy(w.bucket, bucket, strlen(bucket) + 1); /* validated: at most 64 bytes */
    memcpy(w.key, key, key_len);
    if (value_len)
        memcpy(w.value, value, value_len);
    if (vec_push(&r->waiting, &w, sizeof(w)) != CW_OK)
        oom();
    r->stats.reads_waited++;
}

void cw_replica_get(struct cw_replica *r, uint64_t now_us, const struct cw_get_req *req)
{
    const struct cw_bucket_policy *b = NULL;
    int rc = check_bucket(r, req->bucket, &b);
    if (rc == CW_OK)
        rc = cw_validate_key(req->key, req->key_len);
    if (rc == CW_OK && !context_in_range(r, &req->context))
        rc = CW_ECONTEXT;
    if (rc != CW_OK) {
        reply_slot(r, CW_REPLY_GET, req->req_id, rc);
        return;
    }
    r->stats.gets++;
    if (must_wait(r, b, &req->context)) {
        park(r, now_us, false, req->req_id, req->bucket, req->key, req->key_len, NULL, 0, false,
             &req->context, NULL);
        return;
    }
    uint32_t klen;
    uint8_t *key = make_full_key(req->bucket, req->key, req->key_len, &klen);
    if (key == NULL)
        oom();
    serve_read(r, req->req_id, key, klen, b->conflict);
    free(key);
}

/* ---------------------------------------------------------------- writes */

static uint64_t stable_self(const struct cw_replica *r)
{
    uint64_t m = UINT64_MAX;
    for (unsigned p = 0; p < r->cfg.n_regions; p++)
        if (p != r->cfg.region && r->out[p].applied.ts[r->cfg.region] < m)
            m = r->out[p].applied.ts[r->cfg.region];
    return m;
}

void cw_replica_put(struct cw_replica *r, uint64_t now_us, const struct cw_put_req *req)
{
    const struct cw_bucket_policy *b = NULL;
    int rc = check_bucket(r, req->bucket, &b);
    if (rc == CW_OK)
        rc = cw_validate_key(req->key, req->key_len);
    if (rc == CW_OK && !req->tombstone && req->value_len > r->cfg.max_value_bytes)
        rc = CW_EVALUE;
    if (rc == CW_OK &&
        (!context_in_range(r, &req->context) || !context_in_range(r, &req->kctx) ||
         !context_plausible(r, now_us, &req->context) || !context_plausible(r, now_us, &req->kctx)))
        rc = CW_ECONTEXT;
    if (rc != CW_OK) {
        reply_slot(r, CW_REPLY_PUT, req->req_id, rc);
        return;
    }
    /* The write will depend on what its key context names as well (do_put), so it
     * waits for both: a client need not have joined them itself. */
    struct cw_vclock need = req->context;
    cw_vc_join(&need, &req->kctx);
    if (must_wait(r, b, &need)) {
        park(r, now_us, true, req->req_id, req->bucket, req->key, req->key_len, req->value,
             req->tombstone ? 0 : req->value_len, req->tombstone, &need, &req->kctx);
        return;
    }
    do_put(r, now_us, req, b);
}

static void do_put(struct cw_replica *r, uint64_t now_us, const struct cw_put_req *req,
                   const struct cw_bucket_policy *b)
{
    int rc = CW_OK;
    if (r->outbox.n >= r->cfg.outbox_max) {
        reply_slot(r, CW_REPLY_PUT, req->req_id, CW_EFULL);
        return;
    }
    uint32_t klen;
    uint8_t *key = make_full_key(req->bucket, req->key, req->key_len, &klen);
    if (key == NULL)
        oom();

    /* The new stamp must exceed everything the writer has seen, so LWW never lets
     * an older write win over one that causally follows it. */
    for (unsigned o = 0; o < CW_REGIONS_MAX; o++) {
        cw_hlc_observe(&r->hlc, req->context.ts[o]);
        cw_hlc_observe(&r->hlc, req->kctx.ts[o]);
    }
    struct cw_version w = {
        .dot = {(uint8_t)r->cfg.region, 0},
        .kctx = req->kctx,
        .tombstone = req->tombstone,
        .value_len = req->tombstone ? 0 : req->value_len,
        .value = req->tombstone ? NULL : (uint8_t *)req->value,
    };
    if (b->conflict == CW_CONFLICT_LWW)
        cw_vc_zero(&w.kctx);
    struct cw_keyentry *e = cw_keymap_upsert(&r->keys, key, klen);
    if (e == NULL)
        oom();
    /* Close the key context: whatever a covered version had replaced, this write
     * replaces too (a hand-made --context token may name only the version). */
    for (uint32_t i = 0; i < e->state.n; i++)
        if (cw_dot_covered(&w.kctx, e->state.v[i].dot))
            cw_vc_join(&w.kctx, &e->state.v[i].kctx);
    uint32_t limit = b->conflict == CW_CONFLICT_SIBLINGS ? b->max_siblings : 0;
    if (limit && cw_keystate_count_after(&e->state, b->conflict, &w) > limit) {
        reply_slot(r, CW_REPLY_PUT, req->req_id, CW_ESIBLINGS);
        if (e->state.n == 0)
            cw_keymap_remove(&r->keys, e);
        free(key);
        return;
    }
    w.dot.ts = cw_hlc_now(&r->hlc, now_us);
    bool changed;
    rc = cw_keystate_apply(&e->state, b->conflict, &w, limit, &changed);
    assert(rc == CW_OK || rc == CW_ENOMEM);
    if (rc != CW_OK)
        oom();
    assert(changed);
    note_tombstones(r, e);
    emit_key(r, e);

    struct cw_record *rec = recq_push_slot(&r->outbox);
    if (rec == NULL)
        oom();
    *rec = (struct cw_record){
        .prev_ts = r->stream_end,
        .consistency = (uint8_t)b->consistency,
        .conflict = (uint8_t)b->conflict,
        .deps = req->context,
        .key_len = klen,
        .key = key,
        .version = w,
    };
    rec->version.value = NULL;
    if (w.value_len) {
        rec->version.value = malloc(w.value_len);
        if (rec->version.value == NULL)
            oom();
        memcpy(rec->version.value, w.value, w.value_len);
    }
    /* The write replaces what its key context names, so it depends on it too:
     * every region applies the replaced versions before this one. */
    cw_vc_join(&rec->deps, &w.kctx);
    /* Dependencies name real records only: the entry for region k becomes the
     * last record of k applied here. That is exact (this region waited until V
     * covered the context, so every record of k at or below the entry is
     * applied), and it matters: a hand-made entry between two records of k would
     * make receivers wait for a V[k] that only a heartbeat could give, and
     * heartbeats cannot advance V[k] while records wait. */
    for (unsigned k = 0; k < r->cfg.n_regions; k++) {
        uint64_t last = k == r->cfg.region ? r->stream_end : r->in[k].chain;
        if (rec->deps.ts[k] > last)
            rec->deps.ts[k] = last;
    }
    r->outbox.n++;
    emit_outbox(r, CW_PERSIST_OUTBOX_PUT, rec);
    r->stream_end = w.dot.ts;
    r->applied.ts[r->cfg.region] = w.dot.ts;
    r->meta_dirty = true;
    if (req->tombstone)
        r->stats.deletes++;
    else
        r->stats.puts++;

    struct cw_reply *p = reply_slot(r, CW_REPLY_PUT, req->req_id, CW_OK);
    p->dot = w.dot;
    p->conflict = b->conflict;
    p->kctx_valid = e->state.n == 1;
    if (p->kctx_valid)
        cw_keystate_context(&e->state, &p->kctx);
    cw_vc_join_dot(&p->seen, w.dot.origin, w.dot.ts);
    if (r->cfg.n_regions == 1) {
        /* Alone, a record is applied everywhere the moment it is durable. */
        emit_outbox(r, CW_PERSIST_OUTBOX_DEL, rec);
        recq_pop(&r->outbox);
    }
}

/* ------------------------------------------------------- remote records */

static bool head_ready(struct cw_replica *r, unsigned o)
{
    struct origin_in *in = &r->in[o];
    const struct cw_record *h = recq_at(&in->q, 0);
    if (h->consistency == CW_EVENTUAL || r->cfg.force_eventual)
        return true;
    /* Index: only look again once what the head waited for has arrived. */
    struct cw_vclock vis;
    visible(r, &vis);
    if (in->wait_ts && vis.ts[in->wait_region] < in->wait_ts)
        return false;
    unsigned k;
    uint64_t t;
    if (cw_vc_first_unmet(&vis, &h->deps, r->cfg.n_regions, &k, &t)) {
        in->wait_region = k;
        in->wait_ts = t;
        return false;
    }
    in->wait_ts = 0;
    return true;
}

static void apply_head(struct cw_replica *r, unsigned o, uint64_t now_us)
{
    struct origin_in *in = &r->in[o];
    struct cw_record *h = recq_at(&in->q, 0);
    struct cw_keyentry *e = cw_keymap_upsert(&r->keys, h->key, h->key_len);
    if (e == NULL)
        oom();
    bool changed;
    if (cw_keystate_apply(&e->state, (enum cw_conflict)h->conflict, &h->version, 0, &changed) !=
        CW_OK)
        oom();
    if (changed) {
        note_tombstones(r, e);
        emit_key(r, e);
    } else if (e->state.n == 0) {
        cw_keymap_remove(&r->keys, e);
    }
    uint64_t ts = h->version.dot.ts;
    /* V[o] moves past a record only by applying it (a heartbeat advances it only
     * once every record of o is applied), so the head is always ahead of it. */
    assert(ts > r->applied.ts[o]);
    r->applied.ts[o] = ts;
    in->chain = ts;
    cw_hlc_observe(&r->hlc, ts);
    r->meta_dirty = true;
    r->stats.remote_applied++;
    /* Visibility latency: this region's physical time at apply minus the origin's
     * physical time at commit (the stamp's physical part). Skewed clocks can make
     * it negative; it is then counted as 0. */
    uint64_t origin_us = cw_hlc_to_us(ts);
    cw_hist_add(&r->visibility[o], now_us > origin_us ? now_us - origin_us : 0);
    recq_pop(&in->q);
    r->buffered--;
}

/* Applies every buffered record that has become applicable, in any order that
 * respects each origin's chain; cascades until nothing more can go. */
static void drain(struct cw_replica *r, uint64_t now_us)
{
    bool progress = true;
    while (progress) {
        progress = false;
        for (unsigned o = 0; o < r->cfg.n_regions; o++) {
            while (r->in[o].q.n && head_ready(r, o)) {
                apply_head(r, o, now_us);
                progress = true;
            }
        }
    }
}

static void send_nack(struct cw_replica *r, unsigned o, uint64_t now_us)
{
    struct origin_in *in = &r->in[o];
    if (in->nack_at_us && now_us < in->nack_at_us + r->cfg.nack_retry_us)
        return;
    in->nack_at_us = now_us ? now_us : 1;
    struct cw_msg *m = msg_slot(r, o, CW_MSG_NACK);
    m->resend_after = in->received;
    r->stats.nacks_sent++;
}

static bool record_valid(struct cw_replica *r, uint64_t now_us, unsigned from,
                         const struct cw_record *rec)
{
    if (rec->version.dot.origin != from || rec->version.dot.ts <= rec->prev_ts)
        return false;
    if (!stamp_plausible(r, now_us, rec->version.dot.ts)) {
        r->stats.stamps_refused++;
        return false;
    }
    if (rec->consistency > CW_EVENTUAL || rec->conflict > CW_CONFLICT_SIBLINGS)
        return false;
    if (!full_key_valid(rec->key, rec->key_len))
        return false;
    /* max_value_bytes bounds local writes; a peer with another setting must not
     * stall its stream here, so remote values are held to the hard bound only. */
    if (rec->version.value_len > CW_VALUE_HARD_MAX)
        return false;
    for (unsigned k = r->cfg.n_regions; k < CW_REGIONS_MAX; k++)
        if (rec->deps.ts[k] || rec->version.kctx.ts[k])
            return false;
    return true;
}

static void recv_records(struct cw_replica *r, uint64_t now_us, const struct cw_msg *m)
{
    unsigned o = m->from;
    struct origin_in *in = &r->in[o];
    for (uint32_t i = 0; i < m->n_records; i++) {
        const struct cw_record *rec = &m->records[i];
        if (!record_valid(r, now_us, o, rec)) {
            r->stats.errors++;
            return;
        }
        if (rec->version.dot.ts <= in->received) {
            r->stats.remote_duplicates++;
            continue;
        }
        if (rec->prev_ts != in->received) {
            r->stats.remote_gaps++;
            send_nack(r, o, now_us);
            return;
        }
        /* A full buffer still admits a record that applies at once: the causally
         * earliest missing write is always such a record, so a full buffer can
         * never wedge replication. */
        if (r->buffered >= r->cfg.dep_buffer_max) {
            bool direct = in->q.n == 0 && (rec->consistency == CW_EVENTUAL ||
                                           r->cfg.force_eventual || covers(r, &rec->deps));
            if (!direct) {
                r->stats.buffer_full_drops++;
                return;
            }
        }
        struct cw_record *slot = recq_push_slot(&in->q);
        if (slot == NULL || cw_record_copy(slot, rec) != CW_OK)
            oom();
        in->q.n++;
        r->buffered++;
        in->received = rec->version.dot.ts;
        in->nack_at_us = 0;
        in->owed++;
        if (in->q.n == 1)
            in->wait_ts = 0;
        drain(r, now_us);
    }
}

/* A sender may have only window_records records in flight before it hears an
 * acknowledgement. When this region has nothing of its own to send back, waiting
 * for the next periodic heartbeat would cap a one-way stream at one window per
 * heartbeat period, so half a window of new records earns an immediate ack. */
static void ack_if_owed(struct cw_replica *r, unsigned o)
{
    uint32_t threshold = r->cfg.window_records / 2 ? r->cfg.window_records / 2 : 1;
    if (r->in[o].owed >= threshold)
        send_heartbeat(r, o, r->hlc.last);
}

static void recv_heartbeat(struct cw_replica *r, uint64_t now_us, const struct cw_msg *m)
{
    unsigned o = m->from;
    struct origin_in *in = &r->in[o];
    if (!stamp_plausible(r, now_us, m->clock) || !stamp_plausible(r, now_us, m->stream_end)) {
        r->stats.stamps_refused++;
        return;
    }
    cw_hlc_observe(&r->hlc, m->clock);
    if (m->stream_sent > in->received) {
        r->stats.remote_gaps++;
        send_nack(r, o, now_us);
        return;
    }
    /* Everything o issued is here and applied, and o promises every later record
     * exceeds clock: o's entry of V may move up to clock even while o is idle. */
    if (m->stream_end == in->received && in->q.n == 0 && m->clock > r->applied.ts[o]) {
        r->applied.ts[o] = m->clock;
        r->meta_dirty = true;
        drain(r, now_us);
    }
}

static void flush_stream(struct cw_replica *r, unsigned p)
{
    struct peer_out *po = &r->out[p];
    if (!po->known)
        return;
    size_t acked = recq_after(&r->outbox, po->received.ts[r->cfg.region]);
    size_t next = recq_after(&r->outbox, po->sent_upto);
    while (next < r->outbox.n && next - acked < r->cfg.window_records) {
        size_t n = r->outbox.n - next;
        if (n > r->cfg.batch_records_max)
            n = r->cfg.batch_records_max;
        if (n > r->cfg.window_records - (next - acked))
            n = r->cfg.window_records - (next - acked);
        /* Keep a message well inside the transport's frame bound: cut the batch
         * by bytes too, but always carry at least one record. */
        size_t bytes = 0;
        for (size_t i = 0; i < n; i++) {
            const struct cw_record *rec = recq_at(&r->outbox, next + i);
            bytes += rec->key_len + rec->version.value_len;
            if (i > 0 && bytes > r->cfg.batch_bytes_max) {
                n = i;
                break;
            }
        }
        struct cw_msg *m = msg_slot(r, p, CW_MSG_RECORDS);
        m->records = calloc(n, sizeof(*m->records));
        if (m->records == NULL)
            oom();
        for (size_t i = 0; i < n; i++) {
            if (cw_record_copy(&m->records[i], recq_at(&r->outbox, next + i)) != CW_OK)
                oom();
            m->n_records++;
        }
        next += n;
        po->sent_upto = recq_at(&r->outbox, next - 1)->version.dot.ts;
    }
}

static void flush_all(struct cw_replica *r)
{
    for (unsigned p = 0; p < r->cfg.n_regions; p++)
        if (p != r->cfg.region)
            flush_stream(r, p);
}

/* Drops outbox records every peer has applied (and durably: acks carry only
 * persisted state). */
static void collect_outbox(struct cw_replica *r)
{
    uint64_t stable = stable_self(r);
    while (r->outbox.n && recq_at(&r->outbox, 0)->version.dot.ts <= stable) {
        emit_outbox(r, CW_PERSIST_OUTBOX_DEL, recq_at(&r->outbox, 0));
        recq_pop(&r->outbox);
    }
}

void cw_replica_recv(struct cw_replica *r, uint64_t now_us, const struct cw_msg *m)
{
    unsigned p = m->from;
    if (p >= r->cfg.n_regions || p == r->cfg.region || m->to != r->cfg.region) {
        r->stats.errors++;
        return;
    }
    struct peer_out *po = &r->out[p];
    cw_vc_join(&po->applied, &m->applied);
    po->received = m->received;
    uint64_t peer_has = m->received.ts[r->cfg.region];
    if (!po->known || peer_has > po->sent_upto) {
        po->known = true;
        po->sent_upto = peer_has;
    }
    switch (m->type) {
    case CW_MSG_RECORDS:
        recv_records(r, now_us, m);
        ack_if_owed(r, p);
        break;
    case CW_MSG_HEARTBEAT:
        recv_heartbeat(r, now_us, m);
        break;
    case CW_MSG_NACK:
        r->stats.nacks_received++;
        if (m->resend_after < po->sent_upto) {
            size_t from = recq_after(&r->outbox, m->resend_after);
            size_t upto = recq_after(&r->outbox, po->sent_upto);
            r->stats.resent_records += upto - from;
            po->sent_upto = m->resend_after;
        }
        break;
    default:
        r->stats.errors++;
        return;
    }
    collect_outbox(r);
    flush_stream(r, p);
    check_waiting(r, now_us, false);
}

/* ------------------------------------------------------------------ time */

/*
 * Tombstones are collected once every region's writes up to the tombstone's
 * stamp have been applied here (and every later write of this region exceeds
 * it). Then no write that the tombstone could hide, replace, or be compared
 * against can still arrive: any later arrival has a greater stamp, so under LWW
 * it wins anyway, and under siblings the tombstone was never shown to readers.
 */
static uint64_t tombstone_horizon(const struct cw_replica *r)
{
    uint64_t m = r->hlc.last;
    for (unsigned p = 0; p < r->cfg.n_regions; p++)
        if (p != r->cfg.region && r->applied.ts[p] < m)
            m = r->applied.ts[p];
    /* ... and only once it is causally stable: every region has acknowledged
     * applying everything up to it. Otherwise a region that collected it could
     * answer "not found" (leaving no trace in the reader's context) to a session
     * that then moves to a region still showing the deleted version. */
    for (unsigned p = 0; p < r->cfg.n_regions; p++) {
        if (p == r->cfg.region)
            continue;
        for (unsigned o = 0; o < r->cfg.n_regions; o++)
            if (r->out[p].applied.ts[o] < m)
                m = r->out[p].applied.ts[o];
    }
    return m;
}

static void collect_tombstones(struct cw_replica *r)
{
    uint64_t horizon = tombstone_horizon(r);
    struct cw_keyentry **tk = r->tomb_keys.v;
    size_t out = 0;
    for (size_t i = 0; i < r->tomb_keys.n; i++) {
        struct cw_keyentry *e = tk[i];
        uint32_t before = e->state.n;
        if (cw_keystate_collect(&e->state, horizon)) {
            r->stats.tombstones_collected += before - e->state.n;
            emit_key(r, e);
        }
        if (e->state.n == 0) {
            cw_keymap_remove(&r->keys, e);
            continue;
        }
        if (cw_keystate_live(&e->state) == e->state.n) {
            e->flags &= ~KE_HAS_TOMB;
            continue;
        }
        tk[out++] = e;
    }
    r->tomb_keys.n = out;
}

void cw_replica_tick(struct cw_replica *r, uint64_t now_us)
{
    /* A head blocked on this region's own entry is released by the clock moving,
     * which no message announces. */
    if (r->buffered)
        drain(r, now_us);
    check_waiting(r, now_us, true);
    if (r->last_heartbeat_us && now_us < r->last_heartbeat_us + r->cfg.heartbeat_us) {
        flush_all(r);
        return;
    }
    r->last_heartbeat_us = now_us ? now_us : 1;
    /* The heartbeat's clock is persisted (meta) before the message leaves, so a
     * restarted node never issues a stamp at or below one it promised. */
    uint64_t clock = cw_hlc_now(&r->hlc, now_us);
    r->meta_dirty = true;
    for (unsigned p = 0; p < r->cfg.n_regions; p++) {
        if (p == r->cfg.region)
            continue;
        flush_stream(r, p);
        send_heartbeat(r, p, clock);
    }
    collect_tombstones(r);
}

/* ------------------------------------------------------------- effects */

bool cw_replica_has_ready(const struct cw_replica *r)
{
    return r->meta_dirty || r->ready.n_persist || r->ready.n_msgs || r->ready.n_replies;
}

const struct cw_ready *cw_replica_ready(struct cw_replica *r)
{
    if (r->meta_dirty && !r->meta_emitted) {
        struct cw_meta m = {.hlc = r->hlc.last, .applied = r->applied, .stream_end = r->stream_end};
        for (unsigned o = 0; o < CW_REGIONS_MAX; o++)
            m.chain.ts[o] = r->in[o].chain;
        struct cw_persist *p = persist_slot(r);
        if (p == NULL)
            oom();
        p->kind = CW_PERSIST_META;
        if (cw_encode_meta(&m, &p->data, &p->data_len) != CW_OK)
            oom();
        r->meta_emitted = true;
        r->meta_dirty = false;
    }
    return &r->ready;
}

void cw_replica_advance(struct cw_replica *r)
{
    /* Messages built before a later change in the same step carry the older ack;
     * that is safe (acks only ever understate). */
    ready_clear(r);
}

/* ---------------------------------------------------------- observation */

const struct cw_vclock *cw_replica_applied(const struct cw_replica *r)
{
    return &r->applied;
}

size_t cw_replica_buffered(const struct cw_replica *r)
{
    return r->buffered;
}

size_t cw_replica_outbox_len(const struct cw_replica *r)
{
    return r->outbox.n;
}

size_t cw_replica_outbox_pending(const struct cw_replica *r, unsigned peer)
{
    if (peer >= r->cfg.n_regions || peer == r->cfg.region)
        return 0;
    return r->outbox.n - recq_after(&r->outbox, r->out[peer].applied.ts[r->cfg.region]);
}

size_t cw_replica_pending_reads(const struct cw_replica *r)
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
