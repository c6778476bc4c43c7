/*
 * sim.c - the deterministic multi-region simulator.
 *
 * Everything runs on one simulated timeline (microseconds), ordered by a binary
 * heap of events with a sequence number to break ties, so the same seed gives
 * the same run bit for bit.
 */
#include "sim/sim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/node.h"
#include "core/replica.h"
#include "core/session.h"
#include "sim/rng.h"

#define MS 1000ull
#define SEC 1000000ull
#define START_US (1700000000ull * SEC) /* a realistic epoch time */
#define TICK_US (10 * MS)
#define OP_TIMEOUT_US (1500 * MS)
#define QUIET_MIN_US (5 * SEC)   /* after the heal, at least this long (heartbeats, GC) */
#define QUIET_MAX_US (300 * SEC) /* a run still not quiet by then has stalled */
#define MAX_SIM_US (1800 * SEC)
#define SESSION_KEYS_MAX 64
#define N_BUCKETS 4

enum ev_type {
    EV_DELIVER,    /* a message reaches region `region` */
    EV_TICK,       /* region tick */
    EV_FLUSH,      /* region's group commit completes */
    EV_OP,         /* session issues its next operation */
    EV_OP_TIMEOUT, /* session gives up on an operation */
    EV_CRASH,
    EV_RESTART,
    EV_CUT,
    EV_HEAL,
    EV_CLOCK_JUMP,
};

struct event {
    uint64_t time;
    uint64_t seq;
    enum ev_type type;
    unsigned region, peer, session;
    uint64_t op; /* EV_OP_TIMEOUT: which operation */
    int64_t jump_us;
    struct cw_msg msg; /* EV_DELIVER */
};

struct blob {
    uint64_t ts;
    uint32_t key_len, len;
    uint8_t *key, *data;
};

struct store {
    struct blob *keys;
    size_t n_keys, cap_keys;
    struct blob *outbox;
    size_t n_outbox, cap_outbox;
    uint8_t *meta;
    uint32_t meta_len;
};

struct held_msg {
    struct cw_msg msg;
};

struct region {
    struct cw_node *node;
    struct cw_rng node_rng; /* the node's own generator */
    bool up;
    int64_t clock_offset_us;
    struct store durable;
    /* Effects waiting for the group commit. */
    struct cw_persist *pending;
    size_t n_pending, cap_pending;
    struct cw_msg *held_msgs;
    size_t n_held_msgs, cap_held_msgs;
    struct cw_reply *held_replies;
    size_t n_held_replies, cap_held_replies;
    bool flush_scheduled;
    /* History indices of writes decided since the last group commit: a crash
     * before the commit makes them never have happened. */
    size_t *unflushed;
    size_t n_unflushed, cap_unflushed;
};

struct session {
    struct cw_session s;
    unsigned region;
    uint64_t op; /* current operation number (req ids carry it) */
    bool busy;
    bool is_write;
    unsigned key;       /* history key index */
    size_t write_event; /* history index of the in-flight write, or SIZE_MAX */
    uint64_t value_id;
    unsigned done;
};

/* What an operation was, by its number, so a write the region performs after its
 * client gave up (a parked write, a lost reply) is still recorded. */
struct oprec {
    unsigned key;
    uint64_t value_id; /* 0 for a delete */
    struct cw_vclock kctx;
    size_t event; /* history index once recorded, else SIZE_MAX */
};

struct sim {
    struct cw_sim_config cfg;
    struct oprec *ops;
    size_t n_ops, cap_ops;
    struct cw_rng rng;
    uint64_t now;
    uint64_t seq;
    struct event **heap;
    size_t n_heap, cap_heap;
    struct region regions[CW_REGIONS_MAX];
    struct session *sessions;
    struct cw_bucket_policy buckets[N_BUCKETS];
    enum cw_hist_mode modes[N_BUCKETS];
    uint64_t link_delay_us[CW_REGIONS_MAX][CW_REGIONS_MAX];
    uint64_t link_last_us[CW_REGIONS_MAX][CW_REGIONS_MAX];
    bool link_cut[CW_REGIONS_MAX][CW_REGIONS_MAX];
    uint32_t drop_ppm, dup_ppm;
    bool faults_on;
    unsigned ops_issued;
    uint64_t next_value_id;
    uint32_t next_orphan;
    uint64_t next_lost_dot;
    struct cw_replica_config rcfg;
    struct cw_sim_result *res;
    bool oom;
};

static void trace(struct sim *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void trace(struct sim *sim, const char *fmt, ...)
{
    if (sim->cfg.trace == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(sim->cfg.trace, "%10.3f ", (double)sim->now / 1000.0);
    vfprintf(sim->cfg.trace, fmt, ap);
    fputc('\n', sim->cfg.trace);
    va_end(ap);
}

/* --------------------------------------------------------------- memory */

static void *xgrow(struct sim *sim, void **arr, size_t *cap, size_t n, size_t size)
{
    if (n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *nv = realloc(*arr, ncap * size);
        if (nv == NULL) {
            sim->oom = true;
            return NULL;
        }
        *arr = nv;
        *cap = ncap;
    }
    return (char *)*arr + n * size;
}

static uint8_t *dup_bytes(const uint8_t *p, uint32_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* ---------------------------------------------------------------- heap */

static bool ev_less(const struct event *a, const struct event *b)
{
    return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static struct event *schedule(struct sim *sim, uint64_t at, enum ev_type type)
{
    struct event *e = calloc(1, sizeof(*e));
    struct event **slot =
        e ? xgrow(sim, (void **)&sim->heap, &sim->cap_heap, sim->n_heap, sizeof(*sim->heap)) : NULL;
    if (slot == NULL) {
        free(e);
        sim->oom = true;
        return NULL;
    }
    e->time = at;
    e->seq = sim->seq++;
    e->type = type;
    size_t i = sim->n_heap++;
    while (i > 0 && ev_less(e, sim->heap[(i - 1) / 2])) {
        sim->heap[i] = sim->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    sim->heap[i] = e;
    return e;
}

static struct event *pop_event(struct sim *sim)
{
    if (sim->n_heap == 0)
        return NULL;
    struct event *top = sim->heap[0];
    struct event *last = sim->heap[--sim->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= sim->n_heap)
            break;
        if (c + 1 < sim->n_heap && ev_less(sim->heap[c + 1], sim->heap[c]))
            c++;
        if (!ev_less(sim->heap[c], last))
            break;
        sim->heap[i] = sim->heap[c];
        i = c;
    }
    if (sim->n_heap)
        sim->heap[i] = last;
    return top;
}

static void event_free(struct event *e)
{
    if (e->type == EV_DELIVER)
        cw_msg_free(&e->msg);
    free(e);
}

/* ---------------------------------------------------------------- store */

static void blob_free(struct blob *b)
{
    free(b->key);
    free(b->data);
}

static void store_free(struct store *s)
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

/* Applies one persisted record to the durable image (takes ownership of p's
 * buffers, leaving p empty). */
static void store_apply(struct sim *sim, struct store *s, struct cw_persist *p)
{
    switch (p->kind) {
    case CW_PERSIST_KEY: {
        size_t i = 0;
        while (i < s->n_keys && !(s->keys[i].key_len == p->key_len &&
                                  memcmp(s->keys[i].key, p->key, p->key_len) == 0))
            i++;
        if (p->data_len == 0) {
            if (i < s->n_keys) {
                blob_free(&s->keys[i]);
                s->keys[i] = s->keys[--s->n_keys];
            }
            break;
        }
        if (i == s->n_keys) {
            struct blob *b = xgrow(sim, (void **)&s->keys, &s->cap_keys, s->n_keys, sizeof(*b));
            if (b == NULL)
                return;
            memset(b, 0, sizeof(*b));
            b->key = p->key;
            b->key_len = p->key_len;
            p->key = NULL;
            s->n_keys++;
        }
        free(s->keys[i].data);
        s->keys[i].data = p->data;
        s->keys[i].len = p->data_len;
        p->data = NULL;
        break;
    }
    case CW_PERSIST_OUTBOX_PUT: {
        struct blob *b = xgrow(sim, (void **)&s->outbox, &s->cap_outbox, s->n_outbox, sizeof(*b));
        if (b == NULL)
            return;
        memset(b, 0, sizeof(*b));
        b->ts = p->ts;
        b->data = p->data;
        b->len = p->data_len;
        p->data = NULL;
        s->n_outbox++;
        break;
    }
    case CW_PERSIST_OUTBOX_DEL:
        for (size_t i = 0; i < s->n_outbox; i++) {
            if (s->outbox[i].ts == p->ts) {
                blob_free(&s->outbox[i]);
                memmove(&s->outbox[i], &s->outbox[i + 1],
                        (s->n_outbox - i - 1) * sizeof(*s->outbox));
                s->n_outbox--;
                break;
            }
        }
        break;
    case CW_PERSIST_META:
        free(s->meta);
        s->meta = p->data;
        s->meta_len = p->data_len;
        p->data = NULL;
        break;
    }
}

/* ---------------------------------------------------------------- regions */

static uint64_t phys_us(const struct sim *sim, unsigned r)
{
    int64_t t = (int64_t)sim->now + sim->regions[r].clock_offset_us;
    return t < 0 ? 0 : (uint64_t)t;
}

/* The time an input of region r happens at: its wall clock (which faults may
 * jump) and the simulation's monotonic time. */
static struct cw_now now_of(const struct sim *sim, unsigned r)
{
    struct cw_now n = {.real_us = phys_us(sim, r), .mono_us = sim->now};
    return n;
}

static uint64_t node_rand(void *ctx)
{
    return cw_rng_next(ctx);
}

static void drop_held(struct region *g)
{
    for (size_t i = 0; i < g->n_pending; i++) {
        free(g->pending[i].key);
        free(g->pending[i].data);
    }
    for (size_t i = 0; i < g->n_held_msgs; i++)
        cw_msg_free(&g->held_msgs[i]);
    for (size_t i = 0; i < g->n_held_replies; i++)
        cw_keystate_free(&g->held_replies[i].state);
    g->n_pending = g->n_held_msgs = g->n_held_replies = 0;
}

static void record_write(struct sim *sim, const struct cw_reply *rep);

/* Moves the replica's effects into the region's group-commit batch. */
static void collect_ready(struct sim *sim, unsigned r)
{
    struct region *g = &sim->regions[r];
    if (!cw_node_has_ready(g->node))
        return;
    const struct cw_ready *rd = cw_node_ready(g->node);
    for (size_t i = 0; i < rd->n_persist; i++) {
        struct cw_persist *p =
            xgrow(sim, (void **)&g->pending, &g->cap_pending, g->n_pending, sizeof(*p));
        if (p == NULL)
            return;
        *p = rd->persist[i];
        p->key =
            rd->persist[i].key_len ? dup_bytes(rd->persist[i].key, rd->persist[i].key_len) : NULL;
        p->data = rd->persist[i].data_len ? dup_bytes(rd->persist[i].data, rd->persist[i].data_len)
                                          : NULL;
        g->n_pending++;
    }
    for (size_t i = 0; i < rd->n_msgs; i++) {
        struct cw_msg *m =
            xgrow(sim, (void **)&g->held_msgs, &g->cap_held_msgs, g->n_held_msgs, sizeof(*m));
        if (m == NULL || cw_msg_copy(m, &rd->msgs[i]) != CW_OK) {
            sim->oom = true;
            return;
        }
        g->n_held_msgs++;
    }
    for (size_t i = 0; i < rd->n_replies; i++) {
        struct cw_reply *p = xgrow(sim, (void **)&g->held_replies, &g->cap_held_replies,
                                   g->n_held_replies, sizeof(*p));
        if (p == NULL)
            return;
        *p = rd->replies[i];
        cw_keystate_init(&p->state);
        if (cw_keystate_copy(&p->state, &rd->replies[i].state) != CW_OK) {
            sim->oom = true;
            return;
        }
        g->n_held_replies++;
        /* The simulator, unlike a client, sees the write the moment the region
         * decides it, so a write whose reply is lost in a crash is still known. */
        if (p->kind == CW_REPLY_PUT && p->err == CW_OK)
            record_write(sim, p);
    }
    cw_node_advance(g->node);
    if (!g->flush_scheduled) {
        struct event *e = schedule(sim, sim->now + cw_rng_range(&sim->rng, 50, 3000), EV_FLUSH);
        if (e)
            e->region = r;
        g->flush_scheduled = true;
    }
}

static void send_msg(struct sim *sim, unsigned from, struct cw_msg *m)
{
    unsigned to = m->to;
    sim->res->msgs_sent++;
    if (sim->link_cut[from][to] || (sim->faults_on && cw_rng_chance(&sim->rng, sim->drop_ppm))) {
        sim->res->msgs_dropped++;
        cw_msg_free(m);
        return;
    }
    int copies = sim->faults_on && cw_rng_chance(&sim->rng, sim->dup_ppm) ? 2 : 1;
    uint64_t jitter = cw_rng_below(&sim->rng, sim->link_delay_us[from][to] / 10 + 1);
    uint64_t at = sim->now + sim->link_delay_us[from][to] + jitter;
    /* A link never reorders: a message leaves no earlier than the one before. */
    if (at < sim->link_last_us[from][to])
        at = sim->link_last_us[from][to];
    sim->link_last_us[from][to] = at;
    for (int c = 0; c < copies; c++) {
        struct event *e = schedule(sim, at, EV_DELIVER);
        if (e == NULL)
            break;
        e->region = to;
        e->peer = from;
        if (c + 1 < copies) {
            if (cw_msg_copy(&e->msg, m) != CW_OK)
                sim->oom = true;
        } else {
            e->msg = *m;
            m->records = NULL;
            m->n_records = 0;
        }
    }
    cw_msg_free(m);
}

static void complete_op(struct sim *sim, unsigned r, struct cw_reply *rep);

static void flush_region(struct sim *sim, unsigned r)
{
    struct region *g = &sim->regions[r];
    g->flush_scheduled = false;
    if (!g->up)
        return;
    g->n_unflushed = 0;
    for (size_t i = 0; i < g->n_pending; i++) {
        store_apply(sim, &g->durable, &g->pending[i]);
        free(g->pending[i].key);
        free(g->pending[i].data);
    }
    g->n_pending = 0;
    /* Durable now: messages may leave and clients may hear back. */
    size_t n_msgs = g->n_held_msgs, n_replies = g->n_held_replies;
    g->n_held_msgs = g->n_held_replies = 0;
    for (size_t i = 0; i < n_msgs; i++)
        send_msg(sim, r, &g->held_msgs[i]);
    for (size_t i = 0; i < n_replies; i++) {
        complete_op(sim, r, &g->held_replies[i]);
        cw_keystate_free(&g->held_replies[i].state);
    }
}

static int restore_region(struct sim *sim, unsigned r)
{
    struct region *g = &sim->regions[r];
    struct cw_node_config c = {.replica = sim->rcfg};
    c.replica.region = r;
    /* Each region draws from its own generator, derived from the run's seed, so
     * what one node draws never shifts the simulator's own sequence. */
    cw_rng_seed(&g->node_rng, sim->cfg.seed * 1000003u + r + 1);
    c.rand = (struct cw_rand){.next = node_rand, .ctx = &g->node_rng};
    g->node = cw_node_create(&c);
    if (g->node == NULL)
        return -1;
    struct store *s = &g->durable;
    int rc = CW_OK;
    if (s->meta)
        rc = cw_node_restore_meta(g->node, s->meta, s->meta_len);
    for (size_t i = 0; rc == CW_OK && i < s->n_keys; i++)
        rc = cw_node_restore_key(g->node, s->keys[i].key, s->keys[i].key_len, s->keys[i].data,
                                 s->keys[i].len);
    for (size_t i = 0; rc == CW_OK && i < s->n_outbox; i++)
        rc = cw_node_restore_outbox(g->node, s->outbox[i].data, s->outbox[i].len);
    g->up = true;
    return rc == CW_OK ? 0 : -1;
}

/* -------------------------------------------------------------- sessions */

static const char *const bucket_names[N_BUCKETS] = {"lww", "sib", "ev", "evs"};

static void key_name(const struct sim *sim, unsigned key, const char **bucket, uint8_t *kbuf,
                     uint32_t *klen)
{
    *bucket = bucket_names[key / sim->cfg.n_keys];
    *klen = (uint32_t)snprintf((char *)kbuf, 16, "k%u", key % sim->cfg.n_keys);
}

static void full_key(const struct sim *sim, unsigned key, uint8_t *out, uint32_t *len)
{
    const char *b;
    uint8_t k[16];
    uint32_t kl;
    key_name(sim, key, &b, k, &kl);
    *len = (uint32_t)snprintf((char *)out, 32, "%s/%.*s", b, (int)kl, (const char *)k);
}

static uint64_t req_id(unsigned session, uint64_t op)
{
    return (uint64_t)session << 40 | op;
}

static void hist_version(struct cw_hist_version *h, const struct cw_version *v)
{
    memset(h, 0, sizeof(*h));
    h->origin = v->dot.origin;
    h->ts = v->dot.ts;
    h->tombstone = v->tombstone;
    h->kctx = v->kctx;
    if (!v->tombstone && v->value_len == 8)
        memcpy(&h->value_id, v->value, 8);
    else if (!v->tombstone)
        h->value_id = UINT64_MAX; /* not a value this simulator wrote */
}

static void record_write(struct sim *sim, const struct cw_reply *rep)
{
    unsigned s = (unsigned)(rep->req_id >> 40);
    uint64_t op = rep->req_id & ((1ull << 40) - 1);
    if (s >= sim->cfg.n_sessions || op == 0 || op > sim->n_ops)
        return;
    struct oprec *o = &sim->ops[op - 1];
    if (o->event != SIZE_MAX)
        return;
    struct session *ss = &sim->sessions[s];
    bool current = ss->busy && ss->op == op;
    struct cw_hist_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = CW_HIST_WRITE;
    /* A write whose client already gave up belongs to no session's order. */
    ev.session = current ? s : sim->next_orphan++;
    ev.region = (uint8_t)rep->dot.origin;
    ev.key = o->key;
    ev.mode = sim->modes[o->key / sim->cfg.n_keys];
    ev.time_us = sim->now;
    ev.write.origin = rep->dot.origin;
    ev.write.ts = rep->dot.ts;
    ev.write.tombstone = o->value_id == 0;
    ev.write.value_id = o->value_id;
    ev.sent_kctx = o->kctx; /* checker: what the client sent, before the region closed it */
    if (ev.mode == CW_HIST_SIBLINGS || ev.mode == CW_HIST_EVENTUAL_SIBLINGS) {
        /* The version as stored: the region closes the key context it was given. */
        ev.write.kctx = o->kctx;
        uint8_t fk[32];
        uint32_t fkl;
        full_key(sim, o->key, fk, &fkl);
        const struct cw_keyentry *ke = cw_keymap_find(
            cw_replica_keys(cw_node_replica(sim->regions[rep->dot.origin].node)), fk, fkl);
        for (uint32_t i = 0; ke && i < ke->state.n; i++)
            if (cw_dot_cmp(ke->state.v[i].dot, rep->dot) == 0)
                ev.write.kctx = ke->state.v[i].kctx;
    }
    size_t idx = cw_history_add(&sim->res->history, &ev);
    if (idx == SIZE_MAX)
        sim->oom = true;
    o->event = idx;
    if (current)
        ss->write_event = idx;
    struct region *g = &sim->regions[rep->dot.origin];
    size_t *slot =
        xgrow(sim, (void **)&g->unflushed, &g->cap_unflushed, g->n_unflushed, sizeof(*slot));
    if (slot) {
        *slot = idx;
        g->n_unflushed++;
    }
}

static void schedule_op(struct sim *sim, unsigned s, uint64_t delay)
{
    struct event *e = schedule(sim, sim->now + delay, EV_OP);
    if (e)
        e->session = s;
}

static void move_session(struct sim *sim, struct session *ss)
{
    ss->region = (unsigned)cw_rng_below(&sim->rng, sim->cfg.n_regions);
}

static void finish_op(struct sim *sim, unsigned s)
{
    struct session *ss = &sim->sessions[s];
    ss->busy = false;
    ss->done++;
    if (cw_rng_chance(&sim->rng, 50000))
        move_session(sim, ss);
    schedule_op(sim, s, cw_rng_range(&sim->rng, 0, 20 * MS));
}

static void complete_op(struct sim *sim, unsigned r, struct cw_reply *rep)
{
    unsigned s = (unsigned)(rep->req_id >> 40);
    if (s >= sim->cfg.n_sessions)
        return;
    struct session *ss = &sim->sessions[s];
    if (!ss->busy || req_id(s, ss->op) != rep->req_id)
        return; /* a late reply to an operation the client gave up on */
    uint8_t fk[32];
    uint32_t fkl;
    full_key(sim, ss->key, fk, &fkl);
    if (rep->err != CW_OK) {
        trace(sim, "session %u op %" PRIu64 " at r%u failed: %s", s, ss->op, r,
              cw_strerror(rep->err));
        sim->res->ops_failed++;
        if (rep->err == CW_ENOTREADY)
            move_session(sim, ss);
        finish_op(sim, s);
        return;
    }
    if (cw_session_observe(&ss->s, fk, fkl, rep) != CW_OK)
        sim->oom = true;
    if (rep->kind == CW_REPLY_PUT) {
        if (ss->write_event != SIZE_MAX)
            sim->res->history.events[ss->write_event].acked = true;
    } else {
        struct cw_hist_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = CW_HIST_READ;
        ev.session = s;
        ev.region = (uint8_t)r;
        ev.key = ss->key;
        ev.mode = sim->modes[ss->key / sim->cfg.n_keys];
        ev.time_us = sim->now;
        for (uint32_t i = 0; i < rep->state.n && i < CW_HIST_READ_MAX; i++)
            hist_version(&ev.read[ev.n_read++], &rep->state.v[i]);
        if (cw_history_add(&sim->res->history, &ev) == SIZE_MAX)
            sim->oom = true;
    }
    sim->res->ops_done++;
    finish_op(sim, s);
}

static void issue_op(struct sim *sim, unsigned s)
{
    struct session *ss = &sim->sessions[s];
    if (ss->busy || sim->ops_issued >= sim->cfg.n_ops)
        return;
    sim->ops_issued++;
    ss->busy = true;
    struct oprec *orec = xgrow(sim, (void **)&sim->ops, &sim->cap_ops, sim->n_ops, sizeof(*orec));
    if (orec == NULL)
        return;
    memset(orec, 0, sizeof(*orec));
    orec->event = SIZE_MAX;
    ss->op = ++sim->n_ops; /* numbered across sessions, from 1 */
    ss->write_event = SIZE_MAX;
    unsigned n_keys_total = N_BUCKETS * sim->cfg.n_keys;
    ss->key = (unsigned)cw_rng_below(&sim->rng, n_keys_total);
    uint64_t roll = cw_rng_below(&sim->rng, 100);
    ss->is_write = roll < 50;
    bool del = roll >= 40 && roll < 50;
    unsigned r = ss->region;
    struct event *t = schedule(sim, sim->now + OP_TIMEOUT_US, EV_OP_TIMEOUT);
    if (t) {
        t->session = s;
        t->op = ss->op;
    }
    if (!sim->regions[r].up) {
        /* The client cannot reach the region; it will time out and move. */
        trace(sim, "session %u op %" PRIu64 ": region r%u is down", s, ss->op, r);
        return;
    }
    const char *bucket;
    uint8_t k[16];
    uint32_t kl;
    key_name(sim, ss->key, &bucket, k, &kl);
    uint8_t fk[32];
    uint32_t fkl;
    full_key(sim, ss->key, fk, &fkl);
    struct region *g = &sim->regions[r];
    if (ss->is_write) {
        ss->value_id = del ? 0 : ++sim->next_value_id;
        orec->key = ss->key;
        orec->value_id = ss->value_id;
        struct cw_put_req req = {
            .req_id = req_id(s, ss->op),
            .bucket = bucket,
            .key = k,
            .key_len = kl,
            .value = (const uint8_t *)&ss->value_id,
            .value_len = 8,
            .tombstone = del,
            .context = ss->s.context,
        };
        const struct cw_vclock *kc = cw_session_kctx(&ss->s, fk, fkl);
        if (kc)
            req.kctx = *kc;
        enum cw_hist_mode mode = sim->modes[ss->key / sim->cfg.n_keys];
        if ((mode == CW_HIST_SIBLINGS || mode == CW_HIST_EVENTUAL_SIBLINGS) &&
            cw_rng_chance(&sim->rng, 50000)) {
            /* A hand-made context, as a client passing one version's token: it
             * names a single version held here, not what that version replaced. */
            const struct cw_keyentry *ke =
                cw_keymap_find(cw_replica_keys(cw_node_replica(g->node)), fk, fkl);
            if (ke && ke->state.n) {
                const struct cw_version *v = &ke->state.v[cw_rng_below(&sim->rng, ke->state.n)];
                cw_vc_zero(&req.kctx);
                cw_vc_join_dot(&req.kctx, v->dot.origin, v->dot.ts);
            }
        }
        orec->kctx = req.kctx;
        trace(sim, "session %u op %" PRIu64 " r%u %s %s/%.*s value %" PRIu64, s, ss->op, r,
              del ? "del" : "put", bucket, (int)kl, (const char *)k, ss->value_id);
        cw_node_put(g->node, now_of(sim, r), &req);
    } else {
        struct cw_get_req req = {
            .req_id = req_id(s, ss->op),
            .bucket = bucket,
            .key = k,
            .key_len = kl,
            .context = ss->s.context,
        };
        trace(sim, "session %u op %" PRIu64 " r%u get %s/%.*s", s, ss->op, r, bucket, (int)kl,
              (const char *)k);
        cw_node_get(g->node, now_of(sim, r), &req);
    }
    collect_ready(sim, r);
}

static void op_timeout(struct sim *sim, unsigned s, uint64_t op)
{
    struct session *ss = &sim->sessions[s];
    if (!ss->busy || ss->op != op)
        return;
    trace(sim, "session %u op %" PRIu64 " timed out", s, op);
    /* The client cannot know whether a timed-out write happened, so it is not in
     * the session's order: give it a session of its own. */
    if (ss->write_event != SIZE_MAX)
        sim->res->history.events[ss->write_event].session = sim->next_orphan++;
    sim->res->ops_failed++;
    move_session(sim, ss);
    finish_op(sim, s);
}

/* ---------------------------------------------------------------- faults */

static void schedule_faults(struct sim *sim, uint64_t horizon)
{
    unsigned n = sim->cfg.n_regions;
    /* Crashes. */
    unsigned crashes = (unsigned)cw_rng_range(&sim->rng, 0, 3);
    for (unsigned i = 0; i < crashes; i++) {
        struct event *e = schedule(sim, START_US + cw_rng_below(&sim->rng, horizon), EV_CRASH);
        if (e)
            e->region = (unsigned)cw_rng_below(&sim->rng, n);
    }
    /* Partitions: cut links one by one, heal them in random order. */
    unsigned episodes = n >= 2 ? (unsigned)cw_rng_range(&sim->rng, 0, 2) : 0;
    for (unsigned ep = 0; ep < episodes; ep++) {
        uint64_t t = START_US + cw_rng_below(&sim->rng, horizon);
        unsigned cuts = (unsigned)cw_rng_range(&sim->rng, 1, n);
        uint64_t heal_base = t + cw_rng_range(&sim->rng, 200 * MS, 3 * SEC);
        for (unsigned c = 0; c < cuts; c++) {
            unsigned a = (unsigned)cw_rng_below(&sim->rng, n);
            unsigned b = (unsigned)cw_rng_below(&sim->rng, n - 1);
            if (b >= a)
                b++;
            bool both = cw_rng_chance(&sim->rng, 700000);
            struct event *e = schedule(sim, t + c * cw_rng_range(&sim->rng, 0, 300 * MS), EV_CUT);
            if (e) {
                e->region = a;
                e->peer = b;
                e->op = both;
            }
            e = schedule(sim, heal_base + cw_rng_below(&sim->rng, 2 * SEC), EV_HEAL);
            if (e) {
                e->region = a;
                e->peer = b;
                e->op = both;
            }
        }
    }
    /* Clock jumps, forwards and backwards. */
    unsigned jumps = (unsigned)cw_rng_range(&sim->rng, 0, 3);
    for (unsigned i = 0; i < jumps; i++) {
        struct event *e = schedule(sim, START_US + cw_rng_below(&sim->rng, horizon), EV_CLOCK_JUMP);
        if (e) {
            e->region = (unsigned)cw_rng_below(&sim->rng, n);
            e->jump_us = (int64_t)cw_rng_range(&sim->rng, 0, 2 * SEC) - (int64_t)SEC;
        }
    }
}

static void crash_region(struct sim *sim, unsigned r)
{
    struct region *g = &sim->regions[r];
    if (!g->up)
        return;
    trace(sim, "crash r%u (losing %zu unpersisted records)", r, g->n_pending);
    drop_held(g);
    /* Writes decided but not committed were seen by nobody (their replies and
     * messages waited for the commit), and the restarted region may stamp a new
     * write with the same dot. Give each a dot no region will ever issue, so the
     * history keeps one write per dot. */
    for (size_t i = 0; i < g->n_unflushed; i++) {
        struct cw_hist_event *ev = &sim->res->history.events[g->unflushed[i]];
        ev->write.ts = UINT64_MAX - sim->next_lost_dot++;
        ev->acked = false;
        ev->lost = true; /* checker: it never happened, so it replaces nothing */
    }
    g->n_unflushed = 0;
    cw_node_destroy(&g->node);
    g->up = false;
    sim->res->crashes++;
    struct event *e =
        schedule(sim, sim->now + cw_rng_range(&sim->rng, 100 * MS, 2 * SEC), EV_RESTART);
    if (e)
        e->region = r;
}

static void restart_region(struct sim *sim, unsigned r)
{
    struct region *g = &sim->regions[r];
    if (g->up)
        return;
    trace(sim, "restart r%u", r);
    if (restore_region(sim, r) != 0)
        sim->oom = true;
}

/* ------------------------------------------------------------- the run */

static void handle(struct sim *sim, struct event *e)
{
    unsigned r = e->region;
    struct region *g = &sim->regions[r];
    switch (e->type) {
    case EV_DELIVER:
        if (!g->up || sim->link_cut[e->peer][r]) {
            sim->res->msgs_dropped++;
            break;
        }
        if (sim->cfg.trace)
            trace(sim,
                  "deliver r%u->r%u %s records %u [%" PRIx64 "..%" PRIx64 "] recv[me] %" PRIx64
                  " applied[me] %" PRIx64 " sent %" PRIx64 " nack %" PRIx64,
                  e->peer, r,
                  e->msg.type == CW_MSG_RECORDS     ? "RECORDS"
                  : e->msg.type == CW_MSG_HEARTBEAT ? "HEARTBEAT"
                                                    : "NACK",
                  e->msg.n_records, e->msg.n_records ? e->msg.records[0].version.dot.ts : 0,
                  e->msg.n_records ? e->msg.records[e->msg.n_records - 1].version.dot.ts : 0,
                  e->msg.received.ts[r], e->msg.applied.ts[r], e->msg.stream_sent,
                  e->msg.resend_after);
        cw_node_recv(g->node, now_of(sim, r), &e->msg);
        collect_ready(sim, r);
        if (cw_replica_buffered(cw_node_replica(g->node)) > sim->res->max_buffered)
            sim->res->max_buffered = cw_replica_buffered(cw_node_replica(g->node));
        break;
    case EV_TICK:
        if (g->up) {
            cw_node_tick(g->node, now_of(sim, r));
            collect_ready(sim, r);
        }
        {
            struct event *t = schedule(sim, sim->now + TICK_US, EV_TICK);
            if (t)
                t->region = r;
        }
        break;
    case EV_FLUSH:
        flush_region(sim, r);
        break;
    case EV_OP:
        issue_op(sim, e->session);
        break;
    case EV_OP_TIMEOUT:
        op_timeout(sim, e->session, e->op);
        break;
    case EV_CRASH:
        if (sim->faults_on)
            crash_region(sim, r);
        break;
    case EV_RESTART:
        restart_region(sim, r);
        break;
    case EV_CUT:
        if (sim->faults_on) {
            trace(sim, "cut r%u->r%u%s", r, e->peer, e->op ? " and back" : "");
            sim->res->partitions++;
            sim->link_cut[r][e->peer] = true;
            if (e->op)
                sim->link_cut[e->peer][r] = true;
        }
        break;
    case EV_HEAL:
        trace(sim, "heal r%u->r%u%s", r, e->peer, e->op ? " and back" : "");
        sim->link_cut[r][e->peer] = false;
        if (e->op)
            sim->link_cut[e->peer][r] = false;
        break;
    case EV_CLOCK_JUMP:
        if (sim->faults_on) {
            trace(sim, "clock jump r%u by %" PRId64 " us", r, e->jump_us);
            g->clock_offset_us += e->jump_us;
        }
        break;
    }
}

void cw_sim_config_defaults(struct cw_sim_config *c)
{
    if (!c->n_regions)
        c->n_regions = 3;
    if (!c->n_sessions)
        c->n_sessions = 2 * c->n_regions;
    if (!c->n_keys)
        c->n_keys = 3;
    if (!c->n_ops)
        c->n_ops = 300;
}

static void heal_all(struct sim *sim)
{
    sim->faults_on = false;
    for (unsigned a = 0; a < sim->cfg.n_regions; a++) {
        for (unsigned b = 0; b < sim->cfg.n_regions; b++)
            sim->link_cut[a][b] = false;
        if (!sim->regions[a].up)
            restart_region(sim, a);
    }
}

/* Quiet: no region holds a buffered record or an unacknowledged outbox record.
 * When not, why goes to res->not_quiet. */
static bool check_quiet(struct sim *sim, uint64_t healed_at)
{
    struct cw_sim_result *res = sim->res;
    for (unsigned r = 0; r < sim->cfg.n_regions; r++) {
        struct region *g = &sim->regions[r];
        if (cw_replica_buffered(cw_node_replica(g->node)) ||
            cw_replica_outbox_len(cw_node_replica(g->node))) {
            snprintf(res->not_quiet, sizeof(res->not_quiet),
                     "region r%u still holds %zu buffered and %zu outbox records %.1f s after "
                     "every fault was healed",
                     r, cw_replica_buffered(cw_node_replica(g->node)),
                     cw_replica_outbox_len(cw_node_replica(g->node)),
                     (double)(sim->now - healed_at) / 1e6);
            return false;
        }
    }
    return true;
}

static void final_reads(struct sim *sim)
{
    for (unsigned r = 0; r < sim->cfg.n_regions; r++) {
        const struct cw_keymap *km = cw_replica_keys(cw_node_replica(sim->regions[r].node));
        for (unsigned key = 0; key < N_BUCKETS * sim->cfg.n_keys; key++) {
            uint8_t fk[32];
            uint32_t fkl;
            full_key(sim, key, fk, &fkl);
            struct cw_hist_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.kind = CW_HIST_READ;
            ev.final = true;
            ev.region = (uint8_t)r;
            ev.key = key;
            ev.mode = sim->modes[key / sim->cfg.n_keys];
            ev.time_us = sim->now;
            const struct cw_keyentry *e = cw_keymap_find(km, fk, fkl);
            for (uint32_t i = 0; e && i < e->state.n && i < CW_HIST_READ_MAX; i++)
                hist_version(&ev.read[ev.n_read++], &e->state.v[i]);
            if (cw_history_add(&sim->res->history, &ev) == SIZE_MAX)
                sim->oom = true;
        }
    }
}

int cw_sim_run(const struct cw_sim_config *cfg_in, struct cw_sim_result *res)
{
    struct sim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return -1;
    memset(res, 0, sizeof(*res));
    sim->cfg = *cfg_in;
    cw_sim_config_defaults(&sim->cfg);
    unsigned n = sim->cfg.n_regions;
    if (n < 1 || n > CW_REGIONS_MAX) {
        free(sim);
        return -1;
    }
    sim->res = res;
    cw_history_init(&res->history, n);
    cw_rng_seed(&sim->rng, sim->cfg.seed);
    sim->now = START_US;
    sim->faults_on = sim->cfg.faults;
    sim->next_orphan = 1u << 30;

    struct cw_bucket_policy b[N_BUCKETS] = {
        {.name = "lww", .consistency = CW_CAUSAL, .conflict = CW_CONFLICT_LWW},
        {.name = "sib",
         .consistency = CW_CAUSAL,
         .conflict = CW_CONFLICT_SIBLINGS,
         .max_siblings = 32},
        {.name = "ev", .consistency = CW_EVENTUAL, .conflict = CW_CONFLICT_LWW},
        {.name = "evs",
         .consistency = CW_EVENTUAL,
         .conflict = CW_CONFLICT_SIBLINGS,
         .max_siblings = 32},
    };
    memcpy(sim->buckets, b, sizeof(b));
    sim->modes[0] = CW_HIST_LWW;
    sim->modes[1] = CW_HIST_SIBLINGS;
    sim->modes[2] = CW_HIST_EVENTUAL;
    sim->modes[3] = CW_HIST_EVENTUAL_SIBLINGS;
    sim->rcfg = (struct cw_replica_config){
        .n_regions = n,
        .buckets = sim->buckets,
        .n_buckets = N_BUCKETS,
        .dep_buffer_max = (uint32_t)cw_rng_range(&sim->rng, 8, 256),
        .batch_records_max = (uint32_t)cw_rng_range(&sim->rng, 1, 16),
        .window_records = (uint32_t)cw_rng_range(&sim->rng, 4, 64),
        .heartbeat_us = 50 * MS,
        .nack_retry_us = 300 * MS,
        .wait_us = 1000 * MS,
        .force_eventual = sim->cfg.force_eventual,
    };

    /* Links: realistic one-way WAN delays, different per direction pair. */
    for (unsigned a = 0; a < n; a++)
        for (unsigned c = 0; c < n; c++)
            sim->link_delay_us[a][c] = a == c ? 0 : cw_rng_range(&sim->rng, 2 * MS, 150 * MS);
    if (sim->cfg.faults) {
        sim->drop_ppm = (uint32_t)cw_rng_range(&sim->rng, 0, 50000);
        sim->dup_ppm = (uint32_t)cw_rng_range(&sim->rng, 0, 50000);
    }
    int rc = 0;
    for (unsigned r = 0; r < n; r++) {
        sim->regions[r].clock_offset_us =
            sim->cfg.faults ? (int64_t)cw_rng_range(&sim->rng, 0, 400 * MS) - 200 * (int64_t)MS : 0;
        if (restore_region(sim, r) != 0)
            rc = -1;
        struct event *t = schedule(sim, START_US + cw_rng_below(&sim->rng, TICK_US), EV_TICK);
        if (t)
            t->region = r;
    }
    sim->sessions = calloc(sim->cfg.n_sessions, sizeof(*sim->sessions));
    if (sim->sessions == NULL)
        rc = -1;
    for (unsigned s = 0; rc == 0 && s < sim->cfg.n_sessions; s++) {
        cw_session_init(&sim->sessions[s].s, SESSION_KEYS_MAX);
        sim->sessions[s].region = s % n;
        sim->sessions[s].write_event = SIZE_MAX;
        schedule_op(sim, s, cw_rng_below(&sim->rng, 50 * MS));
    }
    /* Without faults a session completes an operation about every 14 ms (think
     * time and replies); faults are spread over that span so they land inside the
     * workload (faults stretch it further). */
    uint64_t horizon = (uint64_t)sim->cfg.n_ops * 14 * MS / sim->cfg.n_sessions + 100 * MS;
    if (sim->cfg.faults)
        schedule_faults(sim, horizon);

    /* After the workload every fault is healed; the run goes on until every region
     * is quiet (at least QUIET_MIN_US, for heartbeats and garbage collection), and
     * a run not quiet within QUIET_MAX_US has stalled. */
    uint64_t healed_at = 0;
    bool quiet = false;
    while (rc == 0 && !sim->oom) {
        struct event *e = pop_event(sim);
        if (e == NULL)
            break;
        sim->now = e->time;
        handle(sim, e);
        event_free(e);
        if (healed_at == 0) {
            bool workload_done = sim->ops_issued >= sim->cfg.n_ops;
            for (unsigned s = 0; workload_done && s < sim->cfg.n_sessions; s++)
                if (sim->sessions[s].busy)
                    workload_done = false;
            if (workload_done) {
                trace(sim, "workload done; healing everything");
                heal_all(sim);
                healed_at = sim->now;
                res->workload_us = sim->now - START_US;
            }
        } else if (sim->now >= healed_at + QUIET_MIN_US && check_quiet(sim, healed_at)) {
            quiet = true;
            break;
        }
        if ((healed_at && sim->now >= healed_at + QUIET_MAX_US) || sim->now > START_US + MAX_SIM_US)
            break;
    }
    if (sim->oom)
        rc = -1;
    res->sim_time_us = sim->now - START_US;
    if (rc == 0) {
        heal_all(sim);
        res->quiet = quiet;
        if (healed_at == 0)
            snprintf(res->not_quiet, sizeof(res->not_quiet), "the workload did not finish");
        else if (!quiet)
            check_quiet(sim, healed_at);
        final_reads(sim);
        if (cw_check_history(&res->history, &res->report) != 0)
            rc = -1;
    }

    while (sim->n_heap)
        event_free(pop_event(sim));
    free(sim->heap);
    for (unsigned r = 0; r < n; r++) {
        drop_held(&sim->regions[r]);
        free(sim->regions[r].pending);
        free(sim->regions[r].held_msgs);
        free(sim->regions[r].held_replies);
        free(sim->regions[r].unflushed);
        cw_node_destroy(&sim->regions[r].node);
        store_free(&sim->regions[r].durable);
    }
    for (unsigned s = 0; sim->sessions && s < sim->cfg.n_sessions; s++)
        cw_session_free(&sim->sessions[s].s);
    free(sim->ops);
    free(sim->sessions);
    free(sim);
    return rc;
}

void cw_sim_result_free(struct cw_sim_result *r)
{
    cw_history_free(&r->history);
    cw_check_report_free(&r->report);
}
