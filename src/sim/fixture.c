/*
 * fixture.c - regions, stores, links and a seeded scheduler around the real
 * node; invariants checked after every step. See fixture.h.
 */
#include "sim/fixture.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/codec.h"

#include "wire/wire.h"

/* What the daemon's store refuses (src/store/store.c). */
#define STORE_FULL_KEY_MAX (CW_BUCKET_NAME_MAX + 1 + CW_KEY_BYTES_MAX)

/* One message (copied) or frame (encoded) on a link or waiting for a commit. */
struct entry {
    uint64_t due;
    unsigned to;
    struct cw_msg msg; /* copied; encoded: decoded lazily by cw_fixture_link_peek */
    bool has_msg;
    uint8_t *frame; /* encoded */
    size_t len;
};

struct link {
    struct entry *q; /* q[start .. start+n) */
    size_t start, n, cap;
    uint64_t delay_us, jitter_us;
    uint64_t last_due;
    bool cut;
};

struct region {
    struct cw_replica_config cfg;
    struct cw_node *node;
    struct cw_rng node_rng; /* the node's own generator */
    bool up;
    int64_t clock_offset_us;
    struct cw_fixture_store store;
    /* The round's effects waiting for the group commit (deep copies). */
    struct cw_persist *pending;
    size_t n_pending, cap_pending;
    struct entry *out;
    size_t n_out, cap_out;
    struct cw_reply *replies;
    size_t n_replies, cap_replies;
    bool commit_scheduled;
    bool changed; /* took an input since its last invariant check */
    struct cw_fixture_effects last;
    /* keep_replies: every reply delivered, each allocated alone so pointers stay. */
    struct cw_reply **kept;
    size_t n_kept, cap_kept;
};

struct cw_fixture {
    struct cw_fixture_config cfg;
    struct cw_bucket_policy *buckets;
    struct cw_rng rng;
    uint64_t now;
    uint64_t seq;
    struct cw_fixture_event *heap;
    size_t n_heap, cap_heap;
    struct region regions[CW_REGIONS_MAX];
    struct link links[CW_REGIONS_MAX][CW_REGIONS_MAX];
    uint32_t drop_ppm, dup_ppm;
    struct cw_wire_limits limits;
    /* Steps nest: inputs given by a hook are part of the step that called it. */
    unsigned depth;
    struct cw_fixture_event current;
    bool failed;
    struct cw_fixture_failure failure;
    struct cw_fixture_stats stats;
};

/* ---------------------------------------------------------------- failure */

static void describe(const struct cw_fixture_event *ev, char *buf, size_t len)
{
    switch (ev->type) {
    case CW_FIXTURE_EV_DELIVER:
    case CW_FIXTURE_EV_DROP:
    case CW_FIXTURE_EV_DUPLICATE:
        snprintf(buf, len, "%s r%u->r%u", cw_fixture_event_name(ev), ev->peer, ev->region);
        break;
    default:
        snprintf(buf, len, "%s r%u", cw_fixture_event_name(ev), ev->region);
        break;
    }
}

static const char *fail_kind_name(enum cw_fixture_fail k)
{
    switch (k) {
    case CW_FIXTURE_OK:
        return "no failure";
    case CW_FIXTURE_FAIL_INVARIANT:
        return "invariant broken";
    case CW_FIXTURE_FAIL_DECODE:
        return "frame did not decode";
    case CW_FIXTURE_FAIL_ENCODE:
        return "message could not be encoded";
    case CW_FIXTURE_FAIL_CONTRACT:
        return "driving contract broken";
    case CW_FIXTURE_FAIL_STORE:
        return "store refused a record";
    case CW_FIXTURE_FAIL_RESTORE:
        return "restore refused the store";
    case CW_FIXTURE_FAIL_NOMEM:
        return "out of memory";
    case CW_FIXTURE_FAIL_CHECK:
        return "cross-region check failed";
    }
    return "failure";
}

static void fail(struct cw_fixture *f, enum cw_fixture_fail kind, unsigned region, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));

static void fail(struct cw_fixture *f, enum cw_fixture_fail kind, unsigned region, const char *fmt,
                 ...)
{
    if (f->failed)
        return; /* the first failure is the one reported */
    f->failed = true;
    struct cw_fixture_failure *x = &f->failure;
    x->kind = kind;
    x->seed = f->cfg.seed;
    x->event = f->current;
    x->region = region;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why, sizeof(x->why), fmt, ap);
    va_end(ap);
    char ev[96];
    describe(&x->event, ev, sizeof(ev));
    snprintf(x->text, sizeof(x->text),
             "seed %" PRIu64 ": %s in region r%u after event '%s' at %" PRIu64
             " us (%.6f s after start): %s",
             x->seed, fail_kind_name(kind), region, ev, x->event.time,
             (double)(x->event.time - f->cfg.start_us) / 1e6, x->why);
}

static void *grow(struct cw_fixture *f, void **arr, size_t *cap, size_t n, size_t size)
{
    if (n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void *nv = realloc(*arr, ncap * size);
        if (nv == NULL) {
            fail(f, CW_FIXTURE_FAIL_NOMEM, 0, "out of memory");
            return NULL;
        }
        *arr = nv;
        *cap = ncap;
    }
    return (char *)*arr + n * size;
}

static uint8_t *dup_bytes(struct cw_fixture *f, const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d == NULL) {
        fail(f, CW_FIXTURE_FAIL_NOMEM, 0, "out of memory");
        return NULL;
    }
    if (n)
        memcpy(d, p, n);
    return d;
}

/* ---------------------------------------------------------------- steps */

static void check_all(struct cw_fixture *f)
{
    char why[sizeof(f->failure.why)];
    for (unsigned r = 0; r < f->cfg.n_regions && !f->failed; r++) {
        struct region *g = &f->regions[r];
        if (!g->up)
            continue;
        bool changed = g->changed;
        g->changed = false;
        if (f->cfg.check == CW_FIXTURE_CHECK_CHANGED && !changed)
            continue;
        f->stats.invariant_checks++;
        if (!cw_node_check_invariants(g->node, why, sizeof(why)))
            fail(f, CW_FIXTURE_FAIL_INVARIANT, r, "%s", why);
    }
    if (!f->failed && f->cfg.hooks.check != NULL &&
        !f->cfg.hooks.check(f->cfg.hooks.ctx, f, why, sizeof(why)))
        fail(f, CW_FIXTURE_FAIL_CHECK, 0, "%s", why);
}

/* Every step starts here; a nested one (an input given by a hook) is part of
 * the outer step. */
static bool step_begin(struct cw_fixture *f, const struct cw_fixture_event *ev)
{
    if (f->failed)
        return false;
    if (f->depth++ == 0) {
        f->current = *ev;
        f->current.time = f->now;
        f->stats.steps++;
    }
    return true;
}

static bool step_end(struct cw_fixture *f)
{
    if (--f->depth == 0 && !f->failed)
        check_all(f);
    return !f->failed;
}

static struct cw_fixture_event input_event(enum cw_fixture_event_type type, unsigned region,
                                           unsigned peer)
{
    struct cw_fixture_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.region = region;
    ev.peer = peer;
    return ev;
}

/* ---------------------------------------------------------------- heap */

static bool ev_less(const struct cw_fixture_event *a, const struct cw_fixture_event *b)
{
    return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static bool push_event(struct cw_fixture *f, const struct cw_fixture_event *ev)
{
    struct cw_fixture_event *slot =
        grow(f, (void **)&f->heap, &f->cap_heap, f->n_heap, sizeof(*f->heap));
    if (slot == NULL)
        return false;
    struct cw_fixture_event e = *ev;
    e.seq = f->seq++;
    size_t i = f->n_heap++;
    while (i > 0 && ev_less(&e, &f->heap[(i - 1) / 2])) {
        f->heap[i] = f->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    f->heap[i] = e;
    return true;
}

static void pop_event(struct cw_fixture *f, struct cw_fixture_event *out)
{
    *out = f->heap[0];
    struct cw_fixture_event last = f->heap[--f->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= f->n_heap)
            break;
        if (c + 1 < f->n_heap && ev_less(&f->heap[c + 1], &f->heap[c]))
            c++;
        if (!ev_less(&f->heap[c], &last))
            break;
        f->heap[i] = f->heap[c];
        i = c;
    }
    if (f->n_heap)
        f->heap[i] = last;
}

static bool schedule(struct cw_fixture *f, uint64_t at, enum cw_fixture_event_type type,
                     unsigned region, unsigned peer)
{
    struct cw_fixture_event ev = input_event(type, region, peer);
    ev.time = at;
    return push_event(f, &ev);
}

/* ---------------------------------------------------------------- store */

static void blob_free(struct cw_fixture_blob *b)
{
    free(b->key);
    free(b->data);
}

static void store_free(struct cw_fixture_store *s)
{
    for (size_t i = 0; i < s->n_keys; i++)
        blob_free(&s->keys[i]);
    for (size_t i = 0; i < s->n_outbox; i++)
        blob_free(&s->outbox[i]);
    for (size_t i = 0; i < s->n_raft_log; i++)
        blob_free(&s->raft_log[i]);
    free(s->keys);
    free(s->outbox);
    free(s->meta);
    free(s->raft_log);
    free(s->raft_hs);
    free(s->raft_snap);
    memset(s, 0, sizeof(*s));
}

/* Berkeley DB's default B-tree order: bytewise, and a prefix first. */
static int key_cmp(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* The first index whose key is not below key; *found when equal. */
static size_t key_find(const struct cw_fixture_store *s, const uint8_t *key, uint32_t len,
                       bool *found)
{
    size_t lo = 0, hi = s->n_keys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(s->keys[mid].key, s->keys[mid].key_len, key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->n_keys && key_cmp(s->keys[lo].key, s->keys[lo].key_len, key, len) == 0;
    return lo;
}

static size_t ts_find(const struct cw_fixture_store *s, uint64_t ts, bool *found)
{
    size_t lo = 0, hi = s->n_outbox;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->outbox[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->n_outbox && s->outbox[lo].ts == ts;
    return lo;
}

/* The checks src/store makes before writing anything: NULL when p is fine. */
static const char *store_refuses(const struct cw_persist *p)
{
    switch (p->kind) {
    case CW_PERSIST_KEY:
        if (p->key_len == 0 || p->key == NULL || p->key_len > STORE_FULL_KEY_MAX ||
            (p->data_len > 0 && p->data == NULL))
            return "a KEY record with an empty or oversized key or a missing blob";
        return NULL;
    case CW_PERSIST_OUTBOX_PUT:
        return p->data_len == 0 || p->data == NULL ? "an OUTBOX_PUT record without data" : NULL;
    case CW_PERSIST_OUTBOX_DEL:
        return NULL;
    case CW_PERSIST_RAFT_HS:
    case CW_PERSIST_RAFT_ENTRY:
    case CW_PERSIST_RAFT_SNAP:
        return p->data_len == 0 || p->data == NULL ? "a Raft record without data" : NULL;
    case CW_PERSIST_RAFT_TRUNC:
        return NULL;
    case CW_PERSIST_META:
        return p->data_len == 0 || p->data == NULL ? "a META record without data" : NULL;
    }
    return "a record of unknown kind";
}

/* Applies one checked record (copies its bytes). False when memory ran out. */
static bool store_apply(struct cw_fixture *f, struct cw_fixture_store *s,
                        const struct cw_persist *p)
{
    bool found;
    s->records++;
    switch (p->kind) {
    case CW_PERSIST_KEY: {
        size_t i = key_find(s, p->key, p->key_len, &found);
        if (p->data_len == 0) {
            s->key_deletes++;
            if (found) { /* deleting an absent key is a no-op */
                blob_free(&s->keys[i]);
                memmove(&s->keys[i], &s->keys[i + 1], (s->n_keys - i - 1) * sizeof(*s->keys));
                s->n_keys--;
            }
            return true;
        }
        uint8_t *data = dup_bytes(f, p->data, p->data_len);
        if (data == NULL)
            return false;
        if (!found) {
            uint8_t *key = dup_bytes(f, p->key, p->key_len);
            if (key == NULL ||
                grow(f, (void **)&s->keys, &s->cap_keys, s->n_keys, sizeof(*s->keys)) == NULL) {
                free(key);
                free(data);
                return false;
            }
            memmove(&s->keys[i + 1], &s->keys[i], (s->n_keys - i) * sizeof(*s->keys));
            memset(&s->keys[i], 0, sizeof(s->keys[i]));
            s->keys[i].key = key;
            s->keys[i].key_len = p->key_len;
            s->n_keys++;
        }
        free(s->keys[i].data);
        s->keys[i].data = data;
        s->keys[i].len = p->data_len;
        return true;
    }
    case CW_PERSIST_OUTBOX_PUT: {
        size_t i = ts_find(s, p->ts, &found);
        uint8_t *data = dup_bytes(f, p->data, p->data_len);
        if (data == NULL)
            return false;
        if (!found) {
            if (grow(f, (void **)&s->outbox, &s->cap_outbox, s->n_outbox, sizeof(*s->outbox)) ==
                NULL) {
                free(data);
                return false;
            }
            memmove(&s->outbox[i + 1], &s->outbox[i], (s->n_outbox - i) * sizeof(*s->outbox));
            memset(&s->outbox[i], 0, sizeof(s->outbox[i]));
            s->outbox[i].ts = p->ts;
            s->n_outbox++;
        }
        free(s->outbox[i].data);
        s->outbox[i].data = data;
        s->outbox[i].len = p->data_len;
        return true;
    }
    case CW_PERSIST_OUTBOX_DEL: {
        size_t i = ts_find(s, p->ts, &found);
        if (found) {
            blob_free(&s->outbox[i]);
            memmove(&s->outbox[i], &s->outbox[i + 1], (s->n_outbox - i - 1) * sizeof(*s->outbox));
            s->n_outbox--;
        }
        return true;
    }
    case CW_PERSIST_RAFT_HS:
    case CW_PERSIST_RAFT_SNAP: {
        uint8_t *data = dup_bytes(f, p->data, p->data_len);
        if (data == NULL)
            return false;
        if (p->kind == CW_PERSIST_RAFT_HS) {
            free(s->raft_hs);
            s->raft_hs = data;
            s->raft_hs_len = p->data_len;
            return true;
        }
        free(s->raft_snap);
        s->raft_snap = data;
        s->raft_snap_len = p->data_len;
        /* The snapshot replaces every entry up to its index. */
        size_t cut = 0;
        while (cut < s->n_raft_log && s->raft_log[cut].ts <= p->ts)
            blob_free(&s->raft_log[cut++]);
        if (cut > 0) {
            memmove(s->raft_log, s->raft_log + cut, (s->n_raft_log - cut) * sizeof(*s->raft_log));
            s->n_raft_log -= cut;
        }
        return true;
    }
    case CW_PERSIST_RAFT_TRUNC:
        while (s->n_raft_log > 0 && s->raft_log[s->n_raft_log - 1].ts >= p->ts)
            blob_free(&s->raft_log[--s->n_raft_log]);
        return true;
    case CW_PERSIST_RAFT_ENTRY: {
        /* Entries come in index order after a TRUNC: always at the end. */
        if (s->n_raft_log > 0 && s->raft_log[s->n_raft_log - 1].ts >= p->ts)
            return false;
        uint8_t *data = dup_bytes(f, p->data, p->data_len);
        if (data == NULL || grow(f, (void **)&s->raft_log, &s->cap_raft_log, s->n_raft_log,
                                 sizeof(*s->raft_log)) == NULL) {
            free(data);
            return false;
        }
        struct cw_fixture_blob *b = &s->raft_log[s->n_raft_log++];
        memset(b, 0, sizeof(*b));
        b->ts = p->ts;
        b->data = data;
        b->len = p->data_len;
        return true;
    }
    case CW_PERSIST_META: {
        uint8_t *data = dup_bytes(f, p->data, p->data_len);
        if (data == NULL)
            return false;
        free(s->meta);
        s->meta = data;
        s->meta_len = p->data_len;
        return true;
    }
    }
    return false;
}

/* ---------------------------------------------------------------- entries, links */

static void entry_free(struct entry *e)
{
    if (e->has_msg)
        cw_msg_free(&e->msg);
    free(e->frame);
    memset(e, 0, sizeof(*e));
}

/* A deep copy of src (its frame, or its message when copied). */
static bool entry_copy(struct cw_fixture *f, struct entry *dst, const struct entry *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->due = src->due;
    dst->to = src->to;
    if (src->frame != NULL) {
        dst->frame = dup_bytes(f, src->frame, src->len);
        dst->len = src->len;
        return dst->frame != NULL;
    }
    if (cw_msg_copy(&dst->msg, &src->msg) != CW_OK) {
        fail(f, CW_FIXTURE_FAIL_NOMEM, 0, "out of memory");
        return false;
    }
    dst->has_msg = true;
    return true;
}

static struct entry *link_at(const struct link *l, size_t i)
{
    return i < l->n ? &l->q[l->start + i] : NULL;
}

/* Room for one more entry at the tail. */
static bool link_reserve(struct cw_fixture *f, struct link *l)
{
    if (l->start + l->n < l->cap)
        return true;
    if (l->start > 0) {
        memmove(l->q, l->q + l->start, l->n * sizeof(*l->q));
        l->start = 0;
        return true;
    }
    return grow(f, (void **)&l->q, &l->cap, l->n, sizeof(*l->q)) != NULL;
}

static void link_pop(struct link *l, struct entry *out)
{
    *out = l->q[l->start];
    l->start++;
    l->n--;
    if (l->n == 0)
        l->start = 0;
}

/* Puts e (taken over) on from -> to: the losses, the delay and the FIFO rule. */
static void link_send(struct cw_fixture *f, unsigned from, struct entry *e)
{
    unsigned to = e->to;
    struct link *l = &f->links[from][to];
    f->stats.sent++;
    f->stats.frame_bytes += e->len;
    if (l->cut || (f->drop_ppm && cw_rng_chance(&f->rng, f->drop_ppm))) {
        f->stats.dropped++;
        entry_free(e);
        return;
    }
    int copies = f->dup_ppm && cw_rng_chance(&f->rng, f->dup_ppm) ? 2 : 1;
    uint64_t jitter = cw_rng_below(&f->rng, l->jitter_us + 1);
    uint64_t at = f->now + l->delay_us + jitter;
    /* A link never reorders: a frame arrives no earlier than the one before. */
    if (at < l->last_due)
        at = l->last_due;
    l->last_due = at;
    e->due = at;
    for (int c = 0; c < copies; c++) {
        if (!link_reserve(f, l))
            break;
        struct entry *slot = &l->q[l->start + l->n];
        if (c + 1 < copies) {
            if (!entry_copy(f, slot, e))
                break;
            f->stats.duplicated++;
        } else {
            *slot = *e;
            memset(e, 0, sizeof(*e));
        }
        l->n++;
        if (!f->cfg.manual_delivery)
            schedule(f, at, CW_FIXTURE_EV_DELIVER, to, from);
    }
    entry_free(e);
}

/* ---------------------------------------------------------------- regions */

static uint64_t node_rand(void *ctx)
{
    return cw_rng_next(ctx);
}

static void drop_pending(struct region *g)
{
    for (size_t i = 0; i < g->n_pending; i++) {
        free(g->pending[i].key);
        free(g->pending[i].data);
    }
    for (size_t i = 0; i < g->n_out; i++)
        entry_free(&g->out[i]);
    for (size_t i = 0; i < g->n_replies; i++)
        cw_keystate_free(&g->replies[i].state);
    g->n_pending = g->n_out = g->n_replies = 0;
}

/* Queues m for the commit: as frames (split as the daemon splits) or a copy. */
static void queue_msg(struct cw_fixture *f, unsigned r, const struct cw_msg *m)
{
    struct region *g = &f->regions[r];
    if (f->cfg.frames == CW_FIXTURE_COPIED) {
        struct entry *e = grow(f, (void **)&g->out, &g->cap_out, g->n_out, sizeof(*e));
        if (e == NULL)
            return;
        memset(e, 0, sizeof(*e));
        e->to = m->to;
        if (cw_msg_copy(&e->msg, m) != CW_OK) {
            fail(f, CW_FIXTURE_FAIL_NOMEM, r, "out of memory");
            return;
        }
        e->has_msg = true;
        g->n_out++;
        return;
    }
    uint32_t first = 0, next = 0;
    do {
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc = cw_wire_encode_peer_part(m, first, &next, &buf, &len);
        if (rc != CW_OK) {
            fail(f, CW_FIXTURE_FAIL_ENCODE, r,
                 "message type %d to r%u (%u records, from record %u) does not encode: %s",
                 (int)m->type, m->to, m->n_records, first, cw_strerror(rc));
            return;
        }
        struct entry *e = grow(f, (void **)&g->out, &g->cap_out, g->n_out, sizeof(*e));
        if (e == NULL) {
            free(buf);
            return;
        }
        memset(e, 0, sizeof(*e));
        e->to = m->to;
        e->frame = buf;
        e->len = len;
        g->n_out++;
        first = next;
    } while (next != 0 && next < m->n_records);
}

static void commit_now(struct cw_fixture *f, unsigned r);

/* Takes region r's ready set, if any: the round's effects wait for its commit. */
static void take_ready(struct cw_fixture *f, unsigned r)
{
    struct region *g = &f->regions[r];
    g->changed = true;
    memset(&g->last, 0, sizeof(g->last));
    if (f->failed || !cw_node_has_ready(g->node))
        return;
    const struct cw_ready *rd = cw_node_ready(g->node);
    struct cw_fixture_effects *e = &g->last;
    for (size_t i = 0; i < rd->n_persist; i++) {
        e->key += rd->persist[i].kind == CW_PERSIST_KEY;
        e->outbox_put += rd->persist[i].kind == CW_PERSIST_OUTBOX_PUT;
        e->outbox_del += rd->persist[i].kind == CW_PERSIST_OUTBOX_DEL;
        e->meta += rd->persist[i].kind == CW_PERSIST_META;
    }
    e->msgs = rd->n_msgs;
    e->replies = rd->n_replies;
    if (f->cfg.hooks.ready)
        f->cfg.hooks.ready(f->cfg.hooks.ctx, f, r, rd);
    for (size_t i = 0; i < rd->n_persist && !f->failed; i++) {
        const struct cw_persist *src = &rd->persist[i];
        struct cw_persist *p =
            grow(f, (void **)&g->pending, &g->cap_pending, g->n_pending, sizeof(*p));
        if (p == NULL)
            break;
        *p = *src;
        p->key = src->key_len ? dup_bytes(f, src->key, src->key_len) : NULL;
        p->data = src->data_len ? dup_bytes(f, src->data, src->data_len) : NULL;
        g->n_pending++;
    }
    for (size_t i = 0; i < rd->n_msgs && !f->failed; i++) {
        const struct cw_msg *m = &rd->msgs[i];
        if (m->from != r || m->to >= f->cfg.n_regions || m->to == r) {
            fail(f, CW_FIXTURE_FAIL_CONTRACT, r, "a message from r%u to r%u sent by region r%u",
                 m->from, m->to, r);
            break;
        }
        queue_msg(f, r, m);
    }
    for (size_t i = 0; i < rd->n_replies && !f->failed; i++) {
        struct cw_reply *p =
            grow(f, (void **)&g->replies, &g->cap_replies, g->n_replies, sizeof(*p));
        if (p == NULL)
            break;
        *p = rd->replies[i];
        cw_keystate_init(&p->state);
        g->n_replies++;
        if (cw_keystate_copy(&p->state, &rd->replies[i].state) != CW_OK)
            fail(f, CW_FIXTURE_FAIL_NOMEM, r, "out of memory");
    }
    cw_node_advance(g->node);
    if (f->failed)
        return;
    if (f->cfg.commit_max_us == 0) {
        commit_now(f, r);
    } else if (!g->commit_scheduled) {
        uint64_t delay = cw_rng_range(&f->rng, f->cfg.commit_min_us, f->cfg.commit_max_us);
        if (schedule(f, f->now + delay, CW_FIXTURE_EV_COMMIT, r, r))
            g->commit_scheduled = true;
    }
}

static void keep_reply(struct cw_fixture *f, struct region *g, const struct cw_reply *rep)
{
    struct cw_reply **slot = grow(f, (void **)&g->kept, &g->cap_kept, g->n_kept, sizeof(*slot));
    if (slot == NULL)
        return;
    struct cw_reply *c = malloc(sizeof(*c));
    if (c == NULL) {
        fail(f, CW_FIXTURE_FAIL_NOMEM, 0, "out of memory");
        return;
    }
    *c = *rep;
    cw_keystate_init(&c->state);
    if (cw_keystate_copy(&c->state, &rep->state) != CW_OK) {
        free(c);
        fail(f, CW_FIXTURE_FAIL_NOMEM, 0, "out of memory");
        return;
    }
    *slot = c;
    g->n_kept++;
}

/* The group commit of region r: durable, then send, then reply. */
static void commit_now(struct cw_fixture *f, unsigned r)
{
    struct region *g = &f->regions[r];
    if (!g->up || f->failed)
        return;
    /* All or nothing, as one transaction: check every record first. */
    for (size_t i = 0; i < g->n_pending; i++) {
        const char *why = store_refuses(&g->pending[i]);
        if (why != NULL) {
            fail(f, CW_FIXTURE_FAIL_STORE, r, "persist record %zu of %zu is %s", i, g->n_pending,
                 why);
            return;
        }
    }
    if (g->n_pending)
        g->store.commits++;
    for (size_t i = 0; i < g->n_pending; i++) {
        if (!store_apply(f, &g->store, &g->pending[i]))
            return;
        free(g->pending[i].key);
        free(g->pending[i].data);
    }
    g->n_pending = 0;
    if (f->cfg.hooks.committed)
        f->cfg.hooks.committed(f->cfg.hooks.ctx, f, r);
    /* Durable now: messages may leave and clients may hear back. Hooks may give
     * r new inputs meanwhile, so the lists are taken out first. */
    struct entry *out = g->out;
    size_t n_out = g->n_out, cap_out = g->cap_out;
    struct cw_reply *replies = g->replies;
    size_t n_replies = g->n_replies, cap_replies = g->cap_replies;
    g->out = NULL;
    g->replies = NULL;
    g->n_out = g->cap_out = g->n_replies = g->cap_replies = 0;
    for (size_t i = 0; i < n_out; i++)
        link_send(f, r, &out[i]);
    for (size_t i = 0; i < n_replies; i++) {
        if (!f->failed) {
            if (f->cfg.keep_replies)
                keep_reply(f, g, &replies[i]);
            if (f->cfg.hooks.reply)
                f->cfg.hooks.reply(f->cfg.hooks.ctx, f, r, &replies[i]);
        }
        cw_keystate_free(&replies[i].state);
    }
    /* Give the arrays back when nothing was queued meanwhile. */
    if (g->out == NULL) {
        g->out = out;
        g->cap_out = cap_out;
    } else {
        free(out);
    }
    if (g->replies == NULL) {
        g->replies = replies;
        g->cap_replies = cap_replies;
    } else {
        free(replies);
    }
}

/* ------------------------------------------------ the store of record */

/* The latest pending (decided, not yet committed) KEY record for key, or NULL. */
static const struct cw_persist *pending_key(const struct region *g, const uint8_t *key,
                                            uint32_t len)
{
    for (size_t i = g->n_pending; i-- > 0;) {
        const struct cw_persist *p = &g->pending[i];
        if (p->kind == CW_PERSIST_KEY && key_cmp(p->key, p->key_len, key, len) == 0)
            return p;
    }
    return NULL;
}

static int decode_key_blob(const uint8_t *data, uint32_t len, struct cw_keystate *out)
{
    if (len == 0)
        return CW_ENOTFOUND; /* a KEY record without data deletes the key */
    int rc = cw_decode_keystate(out, data, len, CW_VALUE_HARD_MAX);
    if (rc != CW_OK)
        cw_keystate_free(out);
    return rc;
}

static int fx_read_key(void *ctx, const uint8_t *key, uint32_t key_len, struct cw_keystate *out)
{
    const struct region *g = ctx;
    const struct cw_persist *p = pending_key(g, key, key_len);
    if (p != NULL)
        return decode_key_blob(p->data, p->data_len, out);
    bool found;
    size_t i = key_find(&g->store, key, key_len, &found);
    if (!found)
        return CW_ENOTFOUND;
    return decode_key_blob(g->store.keys[i].data, g->store.keys[i].len, out);
}

static int fx_read_outbox(void *ctx, uint64_t ts, struct cw_record *out)
{
    const struct region *g = ctx;
    for (size_t i = g->n_pending; i-- > 0;) {
        const struct cw_persist *p = &g->pending[i];
        if ((p->kind == CW_PERSIST_OUTBOX_PUT || p->kind == CW_PERSIST_OUTBOX_DEL) && p->ts == ts) {
            if (p->kind == CW_PERSIST_OUTBOX_DEL)
                return CW_ENOTFOUND;
            int rc = cw_decode_record(out, p->data, p->data_len, CW_VALUE_HARD_MAX);
            if (rc != CW_OK)
                cw_record_free(out);
            return rc;
        }
    }
    bool found;
    size_t i = ts_find(&g->store, ts, &found);
    if (!found)
        return CW_ENOTFOUND;
    int rc =
        cw_decode_record(out, g->store.outbox[i].data, g->store.outbox[i].len, CW_VALUE_HARD_MAX);
    if (rc != CW_OK)
        cw_record_free(out);
    return rc;
}

/* The first key after `after` with a state, over the store and the pending
 * records together, in the store's key order. */
static int fx_next_key(void *ctx, const uint8_t *after, uint32_t after_len, uint8_t *key,
                       uint32_t *key_len, struct cw_keystate *out)
{
    const struct region *g = ctx;
    uint8_t cur[CW_FULL_KEY_MAX];
    uint32_t cur_len = after_len <= CW_FULL_KEY_MAX ? after_len : CW_FULL_KEY_MAX;
    memcpy(cur, after, cur_len);
    for (;;) {
        const uint8_t *best = NULL;
        uint32_t best_len = 0;
        bool found;
        size_t i = key_find(&g->store, cur, cur_len, &found);
        if (found)
            i++;
        if (cur_len == 0 && !found)
            i = 0;
        if (i < g->store.n_keys) {
            best = g->store.keys[i].key;
            best_len = g->store.keys[i].key_len;
        }
        for (size_t k = 0; k < g->n_pending; k++) {
            const struct cw_persist *p = &g->pending[k];
            if (p->kind != CW_PERSIST_KEY || key_cmp(p->key, p->key_len, cur, cur_len) <= 0)
                continue;
            if (best == NULL || key_cmp(p->key, p->key_len, best, best_len) < 0) {
                best = p->key;
                best_len = p->key_len;
            }
        }
        if (best == NULL)
            return CW_ENOTFOUND;
        memcpy(cur, best, best_len);
        cur_len = best_len;
        int rc = fx_read_key(ctx, cur, cur_len, out);
        if (rc == CW_ENOTFOUND)
            continue; /* deleted by a pending record: on to the next */
        if (rc != CW_OK)
            return rc;
        memcpy(key, cur, cur_len);
        *key_len = cur_len;
        return CW_OK;
    }
}

static void restore(struct cw_fixture *f, unsigned r)
{
    struct region *g = &f->regions[r];
    struct cw_node_config c = {.replica = g->cfg, .strong = f->cfg.strong};
    c.replica.region = r;
    c.replica.buckets = f->buckets;
    c.replica.n_buckets = f->cfg.replica.n_buckets;
    /* Each region draws from its own generator, derived from the seed, so what
     * one node draws never shifts the fixture's own sequence. */
    cw_rng_seed(&g->node_rng, f->cfg.seed * 1000003u + r + 1);
    c.rand = (struct cw_rand){.next = node_rand, .ctx = &g->node_rng};
    if (f->cfg.store_of_record)
        c.replica.reader = (struct cw_reader){
            .key = fx_read_key, .outbox = fx_read_outbox, .next_key = fx_next_key, .ctx = g};
    g->node = cw_node_create(&c);
    if (g->node == NULL) {
        fail(f, CW_FIXTURE_FAIL_RESTORE, r, "cw_node_create refused region r%u's configuration", r);
        return;
    }
    g->up = true;
    g->changed = true;
    memset(&g->last, 0, sizeof(g->last));
    /* As cw_store_load: metadata, keys in key order, the outbox in stamp order. */
    const struct cw_fixture_store *s = &g->store;
    int rc = CW_OK;
    if (s->meta && (rc = cw_node_restore_meta(g->node, s->meta, s->meta_len)) != CW_OK) {
        fail(f, CW_FIXTURE_FAIL_RESTORE, r, "the metadata record (%u bytes): %s", s->meta_len,
             cw_strerror(rc));
        return;
    }
    for (size_t i = 0; i < s->n_keys; i++) {
        rc = cw_node_restore_key(g->node, s->keys[i].key, s->keys[i].key_len, s->keys[i].data,
                                 s->keys[i].len);
        if (rc != CW_OK) {
            fail(f, CW_FIXTURE_FAIL_RESTORE, r, "the record of key %.*s (%u bytes): %s",
                 (int)s->keys[i].key_len, (const char *)s->keys[i].key, s->keys[i].len,
                 cw_strerror(rc));
            return;
        }
    }
    for (size_t i = 0; i < s->n_outbox; i++) {
        rc = cw_node_restore_outbox(g->node, s->outbox[i].data, s->outbox[i].len);
        if (rc != CW_OK) {
            fail(f, CW_FIXTURE_FAIL_RESTORE, r, "the outbox record of stamp %" PRIu64 ": %s",
                 s->outbox[i].ts, cw_strerror(rc));
            return;
        }
    }
    /* Strong buckets, as the store loads raft.db: snapshot, hard state, log. */
    if (s->raft_snap &&
        (rc = cw_node_restore_raft_snapshot(g->node, s->raft_snap, s->raft_snap_len)) != CW_OK) {
        fail(f, CW_FIXTURE_FAIL_RESTORE, r, "the Raft snapshot: %s", cw_strerror(rc));
        return;
    }
    if (s->raft_hs &&
        (rc = cw_node_restore_raft_hardstate(g->node, s->raft_hs, s->raft_hs_len)) != CW_OK) {
        fail(f, CW_FIXTURE_FAIL_RESTORE, r, "the Raft hard state: %s", cw_strerror(rc));
        return;
    }
    for (size_t i = 0; i < s->n_raft_log; i++) {
        rc = cw_node_restore_raft_entry(g->node, s->raft_log[i].data, s->raft_log[i].len);
        if (rc != CW_OK) {
            fail(f, CW_FIXTURE_FAIL_RESTORE, r, "the Raft entry %" PRIu64 ": %s",
                 s->raft_log[i].ts, cw_strerror(rc));
            return;
        }
    }
}

/* ---------------------------------------------------------------- delivery */

/* Delivers the head of from -> to. Returns the message type, or 0. */
static int deliver_head(struct cw_fixture *f, unsigned from, unsigned to)
{
    struct link *l = &f->links[from][to];
    if (l->n == 0)
        return 0;
    struct entry e;
    link_pop(l, &e);
    struct region *g = &f->regions[to];
    if (!g->up || l->cut) {
        f->stats.dropped++;
        entry_free(&e);
        return 0;
    }
    struct cw_msg m;
    if (e.frame != NULL) {
        /* Decoded from its bytes here, whatever a peek decoded before. */
        int rc = cw_wire_decode_peer(e.frame, e.len, &f->limits, &m);
        if (rc != CW_OK) {
            fail(f, CW_FIXTURE_FAIL_DECODE, to, "a %zu-byte frame on link r%u->r%u: %s", e.len,
                 from, to, cw_strerror(rc));
            entry_free(&e);
            return 0;
        }
        if (m.from != from) {
            fail(f, CW_FIXTURE_FAIL_DECODE, to, "a frame on link r%u->r%u says it is from r%u",
                 from, to, m.from);
            cw_msg_free(&m);
            entry_free(&e);
            return 0;
        }
    } else {
        m = e.msg;
        e.has_msg = false;
    }
    entry_free(&e);
    int type = (int)m.type;
    if (f->cfg.hooks.deliver)
        f->cfg.hooks.deliver(f->cfg.hooks.ctx, f, from, to, &m);
    f->stats.delivered++;
    cw_node_recv(g->node, cw_fixture_now_of(f, to), &m);
    cw_msg_free(&m);
    take_ready(f, to);
    return type;
}

/* ---------------------------------------------------------------- lifecycle */

struct cw_fixture *cw_fixture_create(const struct cw_fixture_config *cfg)
{
    if (cfg->n_regions < 1 || cfg->n_regions > CW_REGIONS_MAX ||
        cfg->commit_min_us > cfg->commit_max_us)
        return NULL;
    struct cw_fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->cfg = *cfg;
    unsigned nb = cfg->replica.n_buckets;
    f->buckets = calloc(nb ? nb : 1, sizeof(*f->buckets));
    if (f->buckets == NULL) {
        free(f);
        return NULL;
    }
    if (nb)
        memcpy(f->buckets, cfg->replica.buckets, nb * sizeof(*f->buckets));
    f->cfg.replica.buckets = f->buckets;
    cw_rng_seed(&f->rng, cfg->seed);
    f->now = cfg->start_us;
    cw_wire_limits_default(&f->limits);
    /* As the daemon: any value that fits in a frame; the replica judges it. */
    f->limits.value_bytes_max = (uint32_t)(f->limits.frame_bytes_max / 2);
    for (unsigned r = 0; r < cfg->n_regions; r++) {
        f->regions[r].cfg = f->cfg.replica;
        f->regions[r].cfg.region = r;
        f->regions[r].cfg.n_regions = cfg->n_regions;
    }
    return f;
}

void cw_fixture_destroy(struct cw_fixture **fp)
{
    struct cw_fixture *f = *fp;
    if (f == NULL)
        return;
    for (unsigned r = 0; r < CW_REGIONS_MAX; r++) {
        struct region *g = &f->regions[r];
        drop_pending(g);
        free(g->pending);
        free(g->out);
        free(g->replies);
        for (size_t i = 0; i < g->n_kept; i++) {
            cw_keystate_free(&g->kept[i]->state);
            free(g->kept[i]);
        }
        free(g->kept);
        cw_node_destroy(&g->node);
        store_free(&g->store);
        for (unsigned t = 0; t < CW_REGIONS_MAX; t++) {
            struct link *l = &f->links[r][t];
            for (size_t i = 0; i < l->n; i++)
                entry_free(link_at(l, i));
            free(l->q);
        }
    }
    free(f->heap);
    free(f->buckets);
    free(f);
    *fp = NULL;
}

/* ---------------------------------------------------------------- setup */

struct cw_replica_config *cw_fixture_replica_config(struct cw_fixture *f, unsigned r)
{
    return r < f->cfg.n_regions ? &f->regions[r].cfg : NULL;
}

struct cw_bucket_policy *cw_fixture_buckets(struct cw_fixture *f)
{
    return f->buckets;
}

struct cw_rng *cw_fixture_rng(struct cw_fixture *f)
{
    return &f->rng;
}

void cw_fixture_set_link(struct cw_fixture *f, unsigned from, unsigned to, uint64_t delay_us,
                         uint64_t jitter_us)
{
    f->links[from][to].delay_us = delay_us;
    f->links[from][to].jitter_us = jitter_us;
}

void cw_fixture_set_loss(struct cw_fixture *f, uint32_t drop_ppm, uint32_t dup_ppm)
{
    f->drop_ppm = drop_ppm;
    f->dup_ppm = dup_ppm;
}

void cw_fixture_set_clock_offset(struct cw_fixture *f, unsigned r, int64_t offset_us)
{
    f->regions[r].clock_offset_us = offset_us;
}

bool cw_fixture_start_ticks(struct cw_fixture *f, unsigned r, uint64_t at)
{
    if (f->failed || f->cfg.tick_us == 0 || r >= f->cfg.n_regions)
        return false;
    return schedule(f, at, CW_FIXTURE_EV_TICK, r, r);
}

/* ---------------------------------------------------------------- running */

bool cw_fixture_schedule(struct cw_fixture *f, uint64_t at, const struct cw_fixture_event *ev)
{
    if (f->failed)
        return false;
    struct cw_fixture_event e = *ev;
    e.type = CW_FIXTURE_EV_DRIVER;
    e.time = at < f->now ? f->now : at;
    return push_event(f, &e);
}

bool cw_fixture_step(struct cw_fixture *f)
{
    if (f->failed || f->n_heap == 0)
        return false;
    struct cw_fixture_event ev;
    pop_event(f, &ev);
    if (ev.time > f->now)
        f->now = ev.time;
    step_begin(f, &ev);
    struct region *g = &f->regions[ev.region];
    switch (ev.type) {
    case CW_FIXTURE_EV_DELIVER: {
        /* Events and queued frames correspond one to one, but a frame dropped
         * or duplicated by hand leaves one event too many or too few: deliver
         * the head only when it is due. */
        struct entry *head = link_at(&f->links[ev.peer][ev.region], 0);
        if (head != NULL && head->due <= f->now)
            deliver_head(f, ev.peer, ev.region);
        break;
    }
    case CW_FIXTURE_EV_TICK:
        if (g->up) {
            cw_node_tick(g->node, cw_fixture_now_of(f, ev.region));
            take_ready(f, ev.region);
        }
        schedule(f, f->now + f->cfg.tick_us, CW_FIXTURE_EV_TICK, ev.region, ev.region);
        break;
    case CW_FIXTURE_EV_COMMIT:
        g->commit_scheduled = false;
        commit_now(f, ev.region);
        break;
    case CW_FIXTURE_EV_DRIVER:
        if (f->cfg.hooks.event)
            f->cfg.hooks.event(f->cfg.hooks.ctx, f, &ev);
        break;
    default:
        break;
    }
    return step_end(f);
}

bool cw_fixture_run_until(struct cw_fixture *f, uint64_t t)
{
    while (!f->failed && f->n_heap > 0 && f->heap[0].time <= t)
        cw_fixture_step(f);
    if (!f->failed && t > f->now)
        f->now = t;
    return !f->failed;
}

bool cw_fixture_advance(struct cw_fixture *f, uint64_t us)
{
    return cw_fixture_run_until(f, f->now + us);
}

uint64_t cw_fixture_now(const struct cw_fixture *f)
{
    return f->now;
}

struct cw_now cw_fixture_now_of(const struct cw_fixture *f, unsigned r)
{
    int64_t t = (int64_t)f->now + f->regions[r].clock_offset_us;
    struct cw_now n = {.real_us = t < 0 ? 0 : (uint64_t)t, .mono_us = f->now};
    return n;
}

const struct cw_fixture_event *cw_fixture_last_event(const struct cw_fixture *f)
{
    return &f->current;
}

const struct cw_fixture_failure *cw_fixture_failure(const struct cw_fixture *f)
{
    return f->failed ? &f->failure : NULL;
}

/* ---------------------------------------------------------------- inputs */

static bool region_input_ok(struct cw_fixture *f, unsigned r)
{
    return !f->failed && r < f->cfg.n_regions && f->regions[r].up;
}

bool cw_fixture_put(struct cw_fixture *f, unsigned r, const struct cw_put_req *req)
{
    if (!region_input_ok(f, r))
        return false;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_PUT, r, r);
    step_begin(f, &ev);
    cw_node_put(f->regions[r].node, cw_fixture_now_of(f, r), req);
    take_ready(f, r);
    return step_end(f);
}

bool cw_fixture_get(struct cw_fixture *f, unsigned r, const struct cw_get_req *req)
{
    if (!region_input_ok(f, r))
        return false;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_GET, r, r);
    step_begin(f, &ev);
    cw_node_get(f->regions[r].node, cw_fixture_now_of(f, r), req);
    take_ready(f, r);
    return step_end(f);
}

bool cw_fixture_recv(struct cw_fixture *f, unsigned r, const struct cw_msg *m)
{
    if (!region_input_ok(f, r))
        return false;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_RECV, r, m->from);
    step_begin(f, &ev);
    cw_node_recv(f->regions[r].node, cw_fixture_now_of(f, r), m);
    take_ready(f, r);
    return step_end(f);
}

bool cw_fixture_tick(struct cw_fixture *f, unsigned r)
{
    if (!region_input_ok(f, r))
        return false;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_TICK, r, r);
    step_begin(f, &ev);
    cw_node_tick(f->regions[r].node, cw_fixture_now_of(f, r));
    take_ready(f, r);
    return step_end(f);
}

bool cw_fixture_commit(struct cw_fixture *f, unsigned r)
{
    if (!region_input_ok(f, r))
        return false;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_COMMIT, r, r);
    step_begin(f, &ev);
    commit_now(f, r);
    return step_end(f);
}

size_t cw_fixture_link_len(const struct cw_fixture *f, unsigned from, unsigned to)
{
    return f->links[from][to].n;
}

const struct cw_msg *cw_fixture_link_peek(struct cw_fixture *f, unsigned from, unsigned to,
                                          size_t i)
{
    struct entry *e = link_at(&f->links[from][to], i);
    if (e == NULL)
        return NULL;
    if (!e->has_msg) {
        if (cw_wire_decode_peer(e->frame, e->len, &f->limits, &e->msg) != CW_OK)
            return NULL;
        e->has_msg = true;
    }
    return &e->msg;
}

int cw_fixture_deliver(struct cw_fixture *f, unsigned from, unsigned to)
{
    if (f->failed || from >= f->cfg.n_regions || to >= f->cfg.n_regions)
        return 0;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_DELIVER, to, from);
    step_begin(f, &ev);
    int type = deliver_head(f, from, to);
    return step_end(f) ? type : 0;
}

bool cw_fixture_drop(struct cw_fixture *f, unsigned from, unsigned to)
{
    struct link *l = &f->links[from][to];
    if (f->failed || l->n == 0)
        return false;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_DROP, to, from);
    step_begin(f, &ev);
    struct entry e;
    link_pop(l, &e);
    entry_free(&e);
    f->stats.dropped++;
    return step_end(f);
}

bool cw_fixture_duplicate(struct cw_fixture *f, unsigned from, unsigned to)
{
    struct link *l = &f->links[from][to];
    if (f->failed || l->n == 0)
        return false;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_DUPLICATE, to, from);
    step_begin(f, &ev);
    struct entry copy;
    if (link_reserve(f, l) && entry_copy(f, &copy, link_at(l, 0))) {
        struct entry *q = l->q + l->start;
        memmove(&q[2], &q[1], (l->n - 1) * sizeof(*q));
        q[1] = copy;
        l->n++;
        f->stats.duplicated++;
        if (!f->cfg.manual_delivery)
            schedule(f, copy.due > f->now ? copy.due : f->now, CW_FIXTURE_EV_DELIVER, to, from);
    }
    return step_end(f);
}

bool cw_fixture_send_frame(struct cw_fixture *f, unsigned from, unsigned to, const uint8_t *frame,
                           size_t len)
{
    if (f->failed || f->cfg.frames != CW_FIXTURE_ENCODED || from >= f->cfg.n_regions ||
        to >= f->cfg.n_regions)
        return false;
    struct entry e;
    memset(&e, 0, sizeof(e));
    e.to = to;
    e.frame = dup_bytes(f, frame, len);
    e.len = len;
    if (e.frame == NULL)
        return false;
    link_send(f, from, &e);
    return !f->failed;
}

/* ---------------------------------------------------------------- faults */

bool cw_fixture_start(struct cw_fixture *f, unsigned r)
{
    if (f->failed || r >= f->cfg.n_regions)
        return false;
    if (f->regions[r].up)
        return true;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_START, r, r);
    step_begin(f, &ev);
    restore(f, r);
    return step_end(f);
}

bool cw_fixture_crash(struct cw_fixture *f, unsigned r)
{
    if (f->failed || r >= f->cfg.n_regions)
        return false;
    struct region *g = &f->regions[r];
    if (!g->up)
        return true;
    struct cw_fixture_event ev = input_event(CW_FIXTURE_EV_CRASH, r, r);
    step_begin(f, &ev);
    /* What was not committed never happened; a scheduled commit stays
     * scheduled (it is the disk's, not the process's). */
    drop_pending(g);
    cw_node_destroy(&g->node);
    g->up = false;
    memset(&g->last, 0, sizeof(g->last));
    return step_end(f);
}

void cw_fixture_cut(struct cw_fixture *f, unsigned from, unsigned to)
{
    f->links[from][to].cut = true;
}

void cw_fixture_heal(struct cw_fixture *f, unsigned from, unsigned to)
{
    f->links[from][to].cut = false;
}

bool cw_fixture_is_cut(const struct cw_fixture *f, unsigned from, unsigned to)
{
    return f->links[from][to].cut;
}

void cw_fixture_clock_jump(struct cw_fixture *f, unsigned r, int64_t delta_us)
{
    f->regions[r].clock_offset_us += delta_us;
}

bool cw_fixture_store_inject(struct cw_fixture *f, unsigned r, const struct cw_persist *p)
{
    if (f->failed || r >= f->cfg.n_regions || store_refuses(p) != NULL)
        return false;
    return store_apply(f, &f->regions[r].store, p);
}

/* ---------------------------------------------------------------- observation */

unsigned cw_fixture_n_regions(const struct cw_fixture *f)
{
    return f->cfg.n_regions;
}

uint64_t cw_fixture_seed(const struct cw_fixture *f)
{
    return f->cfg.seed;
}

enum cw_fixture_frames cw_fixture_frames(const struct cw_fixture *f)
{
    return f->cfg.frames;
}

bool cw_fixture_up(const struct cw_fixture *f, unsigned r)
{
    return r < f->cfg.n_regions && f->regions[r].up;
}

struct cw_node *cw_fixture_node(struct cw_fixture *f, unsigned r)
{
    return cw_fixture_up(f, r) ? f->regions[r].node : NULL;
}

const struct cw_replica *cw_fixture_replica(const struct cw_fixture *f, unsigned r)
{
    return cw_fixture_up(f, r) ? cw_node_replica(f->regions[r].node) : NULL;
}

const struct cw_fixture_store *cw_fixture_store(const struct cw_fixture *f, unsigned r)
{
    return &f->regions[r].store;
}

size_t cw_fixture_pending(const struct cw_fixture *f, unsigned r)
{
    return f->regions[r].n_pending;
}

const struct cw_fixture_effects *cw_fixture_effects(const struct cw_fixture *f, unsigned r)
{
    return &f->regions[r].last;
}

const struct cw_reply *cw_fixture_reply(const struct cw_fixture *f, unsigned r, uint64_t req_id)
{
    const struct region *g = &f->regions[r];
    for (size_t i = 0; i < g->n_kept; i++)
        if (g->kept[i]->req_id == req_id)
            return g->kept[i];
    return NULL;
}

const struct cw_fixture_stats *cw_fixture_stats(const struct cw_fixture *f)
{
    return &f->stats;
}

const char *cw_fixture_event_name(const struct cw_fixture_event *ev)
{
    switch (ev->type) {
    case CW_FIXTURE_EV_DELIVER:
        return "deliver";
    case CW_FIXTURE_EV_TICK:
        return "tick";
    case CW_FIXTURE_EV_COMMIT:
        return "commit";
    case CW_FIXTURE_EV_DRIVER:
        return ev->name ? ev->name : "driver event";
    case CW_FIXTURE_EV_PUT:
        return "put";
    case CW_FIXTURE_EV_GET:
        return "get";
    case CW_FIXTURE_EV_RECV:
        return "recv";
    case CW_FIXTURE_EV_DROP:
        return "drop";
    case CW_FIXTURE_EV_DUPLICATE:
        return "duplicate";
    case CW_FIXTURE_EV_START:
        return "start";
    case CW_FIXTURE_EV_CRASH:
        return "crash";
    }
    return "event";
}
