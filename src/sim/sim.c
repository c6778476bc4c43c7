/*
 * sim.c - the deterministic multi-region simulator.
 *
 * The regions, their stores, the links between them and the one timeline
 * (events ordered by time, then by a sequence number that breaks ties) are the
 * fixture's (sim/fixture.h), which also checks every region's invariants after
 * every event. This file adds the workload, the faults, the recorded history
 * and the checker. The same seed gives the same run bit for bit.
 */
#include "sim/sim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/node.h"
#include "core/replica.h"
#include "core/session.h"
#include "sim/fixture.h"
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

/* The simulator's own events, scheduled on the fixture's timeline (deliveries,
 * ticks and group commits are the fixture's). */
enum ev_type {
    EV_OP,         /* session `a` issues its next operation (at `region`) */
    EV_OP_TIMEOUT, /* session `a` gives up on operation `b` (sent to `region`) */
    EV_CRASH,
    EV_RESTART,
    EV_CUT, /* region -> peer, and back when `a` */
    EV_HEAL,
    EV_CLOCK_JUMP, /* region's wall clock moves by `b` */
};

static const char *const ev_names[] = {"op",  "op timeout", "crash",     "restart",
                                       "cut", "heal",       "clock jump"};

struct region {
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
    struct cw_fixture *fx; /* regions, stores, links and the timeline */
    struct cw_rng *rng;    /* the fixture's: one seed decides everything */
    uint64_t now;          /* the fixture's now, as of the event being handled */
    struct region regions[CW_REGIONS_MAX];
    struct session *sessions;
    struct cw_bucket_policy buckets[N_BUCKETS];
    enum cw_history_mode modes[N_BUCKETS];
    bool faults_on;
    unsigned ops_issued;
    uint64_t next_value_id;
    uint32_t next_orphan;
    uint64_t next_lost_dot;
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

/* ---------------------------------------------------------------- regions */

/* The node of region r, or NULL while it is down. */
static struct cw_node *node_of(struct sim *sim, unsigned r)
{
    return cw_fixture_node(sim->fx, r);
}

static void schedule(struct sim *sim, uint64_t at, enum ev_type type, unsigned region,
                     unsigned peer, uint64_t a, int64_t b)
{
    struct cw_fixture_event ev = {
        .name = ev_names[type], .kind = type, .region = region, .peer = peer, .a = a, .b = b};
    if (!cw_fixture_schedule(sim->fx, at, &ev))
        sim->oom = true;
}

/* A key's state at region r as a reader would see it: from the node's memory or,
 * for a state the store-backed core dropped, from its store. An unreadable
 * state is a failure of the run (the fixture's store never fails). */
static void read_state(struct sim *sim, unsigned r, const uint8_t *fk, uint32_t fkl,
                       struct cw_keystate *out)
{
    int rc = cw_replica_read_key(cw_node_replica(node_of(sim, r)), fk, fkl, out);
    if (rc != CW_OK && rc != CW_ENOTFOUND) {
        trace(sim, "region %u: reading a key state failed: %s", r, cw_strerror(rc));
        sim->res->fixture_failed = true;
        snprintf(sim->res->fixture_failure, sizeof(sim->res->fixture_failure),
                 "seed %llu: region %u could not read a key state back: %s",
                 (unsigned long long)sim->cfg.seed, r, cw_strerror(rc));
    }
    if (rc != CW_OK)
        cw_keystate_init(out);
}

static void record_write(struct sim *sim, const struct cw_reply *rep);
static void complete_op(struct sim *sim, unsigned r, const struct cw_reply *rep);

/* The fixture's hooks: every one first brings the simulator's clock along. */
static struct sim *sim_at(void *ctx, struct cw_fixture *f)
{
    struct sim *sim = ctx;
    sim->now = cw_fixture_now(f);
    return sim;
}

/* A region decided: seen before its group commit. */
static void on_ready(void *ctx, struct cw_fixture *f, unsigned r, const struct cw_ready *rd)
{
    struct sim *sim = sim_at(ctx, f);
    (void)r;
    for (size_t i = 0; i < rd->n_replies; i++) {
        const struct cw_reply *p = &rd->replies[i];
        /* The simulator, unlike a client, sees the write the moment the region
         * decides it, so a write whose reply is lost in a crash is still known. */
        if (p->kind == CW_REPLY_PUT && p->err == CW_OK)
            record_write(sim, p);
    }
}

/* A region's group commit completed: what it decided can no longer be lost. */
static void on_committed(void *ctx, struct cw_fixture *f, unsigned r)
{
    struct sim *sim = sim_at(ctx, f);
    sim->regions[r].n_unflushed = 0;
}

/* Durable now: the client hears back. */
static void on_reply(void *ctx, struct cw_fixture *f, unsigned r, const struct cw_reply *rep)
{
    complete_op(sim_at(ctx, f), r, rep);
}

static void on_deliver(void *ctx, struct cw_fixture *f, unsigned from, unsigned to,
                       const struct cw_msg *m)
{
    struct sim *sim = sim_at(ctx, f);
    if (sim->cfg.trace)
        trace(sim,
              "deliver r%u->r%u %s records %u [%" PRIx64 "..%" PRIx64 "] recv[me] %" PRIx64
              " applied[me] %" PRIx64 " sent %" PRIx64 " nack %" PRIx64,
              from, to,
              m->type == CW_MSG_RECORDS     ? "RECORDS"
              : m->type == CW_MSG_HEARTBEAT ? "HEARTBEAT"
                                            : "NACK",
              m->n_records, m->n_records ? m->records[0].version.dot.ts : 0,
              m->n_records ? m->records[m->n_records - 1].version.dot.ts : 0, m->received.ts[to],
              m->applied.ts[to], m->stream_sent, m->resend_after);
}

static void handle(struct sim *sim, const struct cw_fixture_event *e);

static void on_event(void *ctx, struct cw_fixture *f, const struct cw_fixture_event *ev)
{
    handle(sim_at(ctx, f), ev);
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

static void hist_version(struct cw_history_version *h, const struct cw_version *v)
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
    struct cw_history_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = CW_HISTORY_WRITE;
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
    if (ev.mode == CW_HISTORY_SIBLINGS || ev.mode == CW_HISTORY_EVENTUAL_SIBLINGS) {
        /* The version as stored: the region closes the key context it was given. */
        ev.write.kctx = o->kctx;
        uint8_t fk[32];
        uint32_t fkl;
        full_key(sim, o->key, fk, &fkl);
        struct cw_keystate ks;
        read_state(sim, rep->dot.origin, fk, fkl, &ks);
        for (uint32_t i = 0; i < ks.n; i++)
            if (cw_dot_cmp(ks.v[i].dot, rep->dot) == 0)
                ev.write.kctx = ks.v[i].kctx;
        cw_keystate_free(&ks);
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
    schedule(sim, sim->now + delay, EV_OP, sim->sessions[s].region, 0, s, 0);
}

static void move_session(struct sim *sim, struct session *ss)
{
    ss->region = (unsigned)cw_rng_below(sim->rng, sim->cfg.n_regions);
}

static void finish_op(struct sim *sim, unsigned s)
{
    struct session *ss = &sim->sessions[s];
    ss->busy = false;
    ss->done++;
    if (cw_rng_chance(sim->rng, 50000))
        move_session(sim, ss);
    schedule_op(sim, s, cw_rng_range(sim->rng, 0, 20 * MS));
}

static void complete_op(struct sim *sim, unsigned r, const struct cw_reply *rep)
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
        struct cw_history_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = CW_HISTORY_READ;
        ev.session = s;
        ev.region = (uint8_t)r;
        ev.key = ss->key;
        ev.mode = sim->modes[ss->key / sim->cfg.n_keys];
        ev.time_us = sim->now;
        for (uint32_t i = 0; i < rep->state.n && i < CW_HISTORY_READ_MAX; i++)
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
    ss->key = (unsigned)cw_rng_below(sim->rng, n_keys_total);
    uint64_t roll = cw_rng_below(sim->rng, 100);
    ss->is_write = roll < 50;
    bool del = roll >= 40 && roll < 50;
    unsigned r = ss->region;
    schedule(sim, sim->now + OP_TIMEOUT_US, EV_OP_TIMEOUT, ss->region, 0, s, (int64_t)ss->op);
    if (!cw_fixture_up(sim->fx, r)) {
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
        enum cw_history_mode mode = sim->modes[ss->key / sim->cfg.n_keys];
        if ((mode == CW_HISTORY_SIBLINGS || mode == CW_HISTORY_EVENTUAL_SIBLINGS) &&
            cw_rng_chance(sim->rng, 50000)) {
            /* A hand-made context, as a client passing one version's token: it
             * names a single version held here, not what that version replaced. */
            struct cw_keystate ks;
            read_state(sim, r, fk, fkl, &ks);
            if (ks.n) {
                const struct cw_version *v = &ks.v[cw_rng_below(sim->rng, ks.n)];
                cw_vc_zero(&req.kctx);
                cw_vc_join_dot(&req.kctx, v->dot.origin, v->dot.ts);
            }
            cw_keystate_free(&ks);
        }
        orec->kctx = req.kctx;
        trace(sim, "session %u op %" PRIu64 " r%u %s %s/%.*s value %" PRIu64, s, ss->op, r,
              del ? "del" : "put", bucket, (int)kl, (const char *)k, ss->value_id);
        cw_fixture_put(sim->fx, r, &req);
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
        cw_fixture_get(sim->fx, r, &req);
    }
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
    unsigned crashes = (unsigned)cw_rng_range(sim->rng, 0, 3);
    for (unsigned i = 0; i < crashes; i++) {
        uint64_t at = START_US + cw_rng_below(sim->rng, horizon);
        schedule(sim, at, EV_CRASH, (unsigned)cw_rng_below(sim->rng, n), 0, 0, 0);
    }
    /* Partitions: cut links one by one, heal them in random order. */
    unsigned episodes = n >= 2 ? (unsigned)cw_rng_range(sim->rng, 0, 2) : 0;
    for (unsigned ep = 0; ep < episodes; ep++) {
        uint64_t t = START_US + cw_rng_below(sim->rng, horizon);
        unsigned cuts = (unsigned)cw_rng_range(sim->rng, 1, n);
        uint64_t heal_base = t + cw_rng_range(sim->rng, 200 * MS, 3 * SEC);
        for (unsigned c = 0; c < cuts; c++) {
            unsigned a = (unsigned)cw_rng_below(sim->rng, n);
            unsigned b = (unsigned)cw_rng_below(sim->rng, n - 1);
            if (b >= a)
                b++;
            bool both = cw_rng_chance(sim->rng, 700000);
            schedule(sim, t + c * cw_rng_range(sim->rng, 0, 300 * MS), EV_CUT, a, b, both, 0);
            schedule(sim, heal_base + cw_rng_below(sim->rng, 2 * SEC), EV_HEAL, a, b, both, 0);
        }
    }
    /* Clock jumps, forwards and backwards. */
    unsigned jumps = (unsigned)cw_rng_range(sim->rng, 0, 3);
    for (unsigned i = 0; i < jumps; i++) {
        uint64_t at = START_US + cw_rng_below(sim->rng, horizon);
        unsigned r = (unsigned)cw_rng_below(sim->rng, n);
        int64_t jump_us = (int64_t)cw_rng_range(sim->rng, 0, 2 * SEC) - (int64_t)SEC;
        schedule(sim, at, EV_CLOCK_JUMP, r, 0, 0, jump_us);
    }
}

static void crash_region(struct sim *sim, unsigned r)
{
    struct region *g = &sim->regions[r];
    if (!cw_fixture_up(sim->fx, r))
        return;
    trace(sim, "crash r%u (losing %zu unpersisted records)", r, cw_fixture_pending(sim->fx, r));
    /* Writes decided but not committed were seen by nobody (their replies and
     * messages waited for the commit), and the restarted region may stamp a new
     * write with the same dot. Give each a dot no region will ever issue, so the
     * history keeps one write per dot. */
    for (size_t i = 0; i < g->n_unflushed; i++) {
        struct cw_history_event *ev = &sim->res->history.events[g->unflushed[i]];
        ev->write.ts = UINT64_MAX - sim->next_lost_dot++;
        ev->acked = false;
        ev->lost = true; /* checker: it never happened, so it replaces nothing */
    }
    g->n_unflushed = 0;
    cw_fixture_crash(sim->fx, r);
    sim->res->crashes++;
    schedule(sim, sim->now + cw_rng_range(sim->rng, 100 * MS, 2 * SEC), EV_RESTART, r, 0, 0, 0);
}

static void restart_region(struct sim *sim, unsigned r)
{
    if (cw_fixture_up(sim->fx, r))
        return;
    trace(sim, "restart r%u", r);
    cw_fixture_start(sim->fx, r);
}

/* ------------------------------------------------------------- the run */

/* The simulator's own events (the fixture runs deliveries, ticks, commits). */
static void handle(struct sim *sim, const struct cw_fixture_event *e)
{
    unsigned r = e->region;
    switch ((enum ev_type)e->kind) {
    case EV_OP:
        issue_op(sim, (unsigned)e->a);
        break;
    case EV_OP_TIMEOUT:
        op_timeout(sim, (unsigned)e->a, (uint64_t)e->b);
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
            trace(sim, "cut r%u->r%u%s", r, e->peer, e->a ? " and back" : "");
            sim->res->partitions++;
            cw_fixture_cut(sim->fx, r, e->peer);
            if (e->a)
                cw_fixture_cut(sim->fx, e->peer, r);
        }
        break;
    case EV_HEAL:
        trace(sim, "heal r%u->r%u%s", r, e->peer, e->a ? " and back" : "");
        cw_fixture_heal(sim->fx, r, e->peer);
        if (e->a)
            cw_fixture_heal(sim->fx, e->peer, r);
        break;
    case EV_CLOCK_JUMP:
        if (sim->faults_on) {
            trace(sim, "clock jump r%u by %" PRId64 " us", r, e->b);
            cw_fixture_clock_jump(sim->fx, r, e->b);
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

bool cw_sim_frames_encoded(const struct cw_sim_config *c)
{
    switch (c->frames) {
    case CW_SIM_FRAMES_ENCODED:
        return true;
    case CW_SIM_FRAMES_COPIED:
        return false;
    case CW_SIM_FRAMES_MIXED:
        break;
    }
    return c->seed % 3 == 0;
}

static void heal_all(struct sim *sim)
{
    sim->faults_on = false;
    cw_fixture_set_loss(sim->fx, 0, 0);
    for (unsigned a = 0; a < sim->cfg.n_regions; a++) {
        for (unsigned b = 0; b < sim->cfg.n_regions; b++)
            cw_fixture_heal(sim->fx, a, b);
        if (!cw_fixture_up(sim->fx, a))
            restart_region(sim, a);
    }
}

/* Quiet: no region holds a buffered record or an unacknowledged outbox record.
 * When not, why goes to res->not_quiet. */
static bool check_quiet(struct sim *sim, uint64_t healed_at)
{
    struct cw_sim_result *res = sim->res;
    for (unsigned r = 0; r < sim->cfg.n_regions; r++) {
        const struct cw_replica *rp = cw_node_replica(node_of(sim, r));
        if (cw_replica_buffered(rp) || cw_replica_outbox_len(rp)) {
            snprintf(res->not_quiet, sizeof(res->not_quiet),
                     "region r%u still holds %zu buffered and %zu outbox records %.1f s after "
                     "every fault was healed",
                     r, cw_replica_buffered(rp), cw_replica_outbox_len(rp),
                     (double)(sim->now - healed_at) / 1e6);
            return false;
        }
    }
    return true;
}

static void final_reads(struct sim *sim)
{
    for (unsigned r = 0; r < sim->cfg.n_regions; r++) {
        const struct cw_replica_stats *st = cw_replica_stats(cw_node_replica(node_of(sim, r)));
        sim->res->keys_loaded += st->keys_loaded;
        sim->res->bodies_loaded += st->bodies_loaded;
    }
    for (unsigned r = 0; r < sim->cfg.n_regions; r++) {
        for (unsigned key = 0; key < N_BUCKETS * sim->cfg.n_keys; key++) {
            uint8_t fk[32];
            uint32_t fkl;
            full_key(sim, key, fk, &fkl);
            struct cw_history_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.kind = CW_HISTORY_READ;
            ev.final = true;
            ev.region = (uint8_t)r;
            ev.key = key;
            ev.mode = sim->modes[key / sim->cfg.n_keys];
            ev.time_us = sim->now;
            struct cw_keystate ks;
            read_state(sim, r, fk, fkl, &ks);
            for (uint32_t i = 0; i < ks.n && i < CW_HISTORY_READ_MAX; i++)
                hist_version(&ev.read[ev.n_read++], &ks.v[i]);
            cw_keystate_free(&ks);
            if (cw_history_add(&sim->res->history, &ev) == SIZE_MAX)
                sim->oom = true;
        }
    }
}

/* Copies the fixture's failure, if any, into the result; true when there was
 * one. Out of memory is the caller's error, not the run's. */
static bool fixture_failed(struct sim *sim)
{
    const struct cw_fixture_failure *fail = cw_fixture_failure(sim->fx);
    if (fail == NULL)
        return false;
    if (fail->kind == CW_FIXTURE_FAIL_NOMEM) {
        sim->oom = true;
        return true;
    }
    sim->res->fixture_failed = true;
    snprintf(sim->res->fixture_failure, sizeof(sim->res->fixture_failure), "%s", fail->text);
    trace(sim, "stopped: %s", fail->text);
    return true;
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
    sim->now = START_US;
    sim->faults_on = sim->cfg.faults;
    sim->next_orphan = 1u << 30;
    res->encoded = cw_sim_frames_encoded(&sim->cfg);
    /* Half the seeds run with the store as the store of record and caches far
     * smaller than the data, so key states and outbox bodies leave memory and
     * are read back (independent of the frames choice: seed % 3 vs seed % 2). */
    res->store_backed = sim->cfg.seed % 2 == 1;

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
    sim->modes[0] = CW_HISTORY_LWW;
    sim->modes[1] = CW_HISTORY_SIBLINGS;
    sim->modes[2] = CW_HISTORY_EVENTUAL;
    sim->modes[3] = CW_HISTORY_EVENTUAL_SIBLINGS;

    /* The regions, their stores and links, and the timeline: the fixture's. A
     * region's effects wait for a simulated group commit of 0.05-3 ms. */
    struct cw_fixture_config fc = {
        .seed = sim->cfg.seed,
        .n_regions = n,
        .replica = {.n_regions = n, .buckets = sim->buckets, .n_buckets = N_BUCKETS},
        .frames = res->encoded ? CW_FIXTURE_ENCODED : CW_FIXTURE_COPIED,
        .store_of_record = res->store_backed,
        .start_us = START_US,
        .tick_us = TICK_US,
        .commit_min_us = 50,
        .commit_max_us = 3000,
        .check =
            sim->cfg.check_changed_only ? CW_FIXTURE_CHECK_CHANGED : CW_FIXTURE_CHECK_EVERY_REGION,
        .hooks = {.ctx = sim,
                  .event = on_event,
                  .ready = on_ready,
                  .committed = on_committed,
                  .reply = on_reply,
                  .deliver = on_deliver},
    };
    sim->fx = cw_fixture_create(&fc);
    if (sim->fx == NULL) {
        cw_history_free(&res->history);
        free(sim);
        return -1;
    }
    sim->rng = cw_fixture_rng(sim->fx);
    struct cw_replica_config rcfg = {
        .n_regions = n,
        .buckets = cw_fixture_buckets(sim->fx),
        .n_buckets = N_BUCKETS,
        .heartbeat_us = 50 * MS,
        .nack_retry_us = 300 * MS,
        .wait_us = 1000 * MS,
        .force_eventual = sim->cfg.force_eventual,
    };
    rcfg.dep_buffer_max = (uint32_t)cw_rng_range(sim->rng, 8, 256);
    rcfg.batch_records_max = (uint32_t)cw_rng_range(sim->rng, 1, 16);
    rcfg.window_records = (uint32_t)cw_rng_range(sim->rng, 4, 64);
    /* Both ways of shipping local writes: on commit (the default) and on the tick. */
    rcfg.flush_on_tick = cw_rng_range(sim->rng, 0, 3) == 0;
    rcfg.flush_gap_us = (uint32_t)cw_rng_range(sim->rng, 1, 20 * MS);
    if (res->store_backed) {
        /* A few keys' worth: most states and bodies live only in the store. */
        rcfg.key_cache_bytes_max = 2048;
        rcfg.outbox_cache_bytes_max = 512;
    }
    for (unsigned r = 0; r < n; r++) {
        *cw_fixture_replica_config(sim->fx, r) = rcfg;
        cw_fixture_replica_config(sim->fx, r)->region = r;
    }

    /* Links: realistic one-way WAN delays, different per direction pair, and a
     * jitter of up to a tenth of the delay. */
    for (unsigned a = 0; a < n; a++)
        for (unsigned c = 0; c < n; c++) {
            uint64_t delay = a == c ? 0 : cw_rng_range(sim->rng, 2 * MS, 150 * MS);
            cw_fixture_set_link(sim->fx, a, c, delay, delay / 10);
        }
    if (sim->cfg.faults) {
        uint32_t drop_ppm = (uint32_t)cw_rng_range(sim->rng, 0, 50000);
        uint32_t dup_ppm = (uint32_t)cw_rng_range(sim->rng, 0, 50000);
        cw_fixture_set_loss(sim->fx, drop_ppm, dup_ppm);
    }
    int rc = 0;
    for (unsigned r = 0; r < n; r++) {
        cw_fixture_set_clock_offset(
            sim->fx, r,
            sim->cfg.faults ? (int64_t)cw_rng_range(sim->rng, 0, 400 * MS) - 200 * (int64_t)MS : 0);
        if (!cw_fixture_start(sim->fx, r))
            rc = -1;
        if (!cw_fixture_start_ticks(sim->fx, r, START_US + cw_rng_below(sim->rng, TICK_US)))
            rc = -1;
    }
    sim->sessions = calloc(sim->cfg.n_sessions, sizeof(*sim->sessions));
    if (sim->sessions == NULL)
        rc = -1;
    for (unsigned s = 0; rc == 0 && s < sim->cfg.n_sessions; s++) {
        cw_session_init(&sim->sessions[s].s, SESSION_KEYS_MAX);
        sim->sessions[s].region = s % n;
        sim->sessions[s].write_event = SIZE_MAX;
        schedule_op(sim, s, cw_rng_below(sim->rng, 50 * MS));
    }
    /* Without faults a session completes an operation about every 14 ms (think
     * time and replies); faults are spread over that span so they land inside the
     * workload (faults stretch it further). */
    uint64_t horizon = (uint64_t)sim->cfg.n_ops * 14 * MS / sim->cfg.n_sessions + 100 * MS;
    if (sim->cfg.faults)
        schedule_faults(sim, horizon);

    /* After the workload every fault is healed; the run goes on until every region
     * is quiet (at least QUIET_MIN_US, for heartbeats and garbage collection), and
     * a run not quiet within QUIET_MAX_US has stalled. The fixture checks every
     * region's invariants after every event and stops the run at the first
     * failure. */
    uint64_t healed_at = 0;
    bool quiet = false;
    while (rc == 0 && !sim->oom) {
        if (!cw_fixture_step(sim->fx))
            break;
        sim->now = cw_fixture_now(sim->fx);
        const struct cw_fixture_event *e = cw_fixture_last_event(sim->fx);
        if (e->type == CW_FIXTURE_EV_DELIVER && cw_fixture_up(sim->fx, e->region)) {
            size_t buffered = cw_replica_buffered(cw_fixture_replica(sim->fx, e->region));
            if (buffered > res->max_buffered)
                res->max_buffered = buffered;
        }
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
    bool stopped = fixture_failed(sim);
    if (sim->oom)
        rc = -1;
    res->sim_time_us = sim->now - START_US;
    if (rc == 0 && !stopped) {
        heal_all(sim);
        stopped = fixture_failed(sim);
    }
    if (sim->oom)
        rc = -1;
    if (rc == 0 && stopped) {
        snprintf(res->not_quiet, sizeof(res->not_quiet), "the fixture stopped the run");
    } else if (rc == 0) {
        res->quiet = quiet;
        if (healed_at == 0)
            snprintf(res->not_quiet, sizeof(res->not_quiet), "the workload did not finish");
        else if (!quiet)
            check_quiet(sim, healed_at);
        final_reads(sim);
        if (cw_check_history(&res->history, &res->report) != 0)
            rc = -1;
    }
    const struct cw_fixture_stats *st = cw_fixture_stats(sim->fx);
    res->msgs_sent = st->sent;
    res->msgs_dropped = st->dropped;
    res->steps = st->steps;
    res->invariant_checks = st->invariant_checks;

    cw_fixture_destroy(&sim->fx);
    for (unsigned r = 0; r < n; r++)
        free(sim->regions[r].unflushed);
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
