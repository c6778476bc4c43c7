/*
 * rsim.c - the strong-bucket simulator (see rsim.h).
 */
#include "sim/rsim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/node.h"
#include "core/raft.h"
#include "core/strong.h"
#include "sim/fixture.h"
#include "sim/rng.h"

#define MS 1000ull
#define SEC 1000000ull
#define START_US (1700000000ull * SEC)
#define TICK_US (10 * MS)
#define STRONG_TIMEOUT_US (2 * SEC)
#define CLIENT_TIMEOUT_US (STRONG_TIMEOUT_US + 2 * SEC) /* a reply lost with a crash */
#define QUIET_US (6 * SEC)                             /* after the heal, to converge */
#define MAX_SIM_US (900 * SEC)
#define KEYS_MAX 16

enum ev_kind {
    EV_OP = 1,
    EV_CLIENT_TIMEOUT,
    EV_CRASH,
    EV_RESTART,
    EV_CUT,
    EV_HEAL,
    EV_JUMP,
    EV_CRASH_LEADER, /* crash whichever region leads now (leader churn) */
};

struct client {
    unsigned region;
    bool busy;
    uint64_t op_seq;
    /* The operation in flight. */
    struct cw_lin_event ev;
    uint8_t key[32];
    uint64_t known_version[KEYS_MAX]; /* the last version this client saw per key */
};

/* What is known about one committed index, from the first region that
 * committed it. */
struct committed {
    uint64_t term;       /* the entry's term; 0: not yet seen */
    uint64_t hash;       /* of its type and data */
    uint64_t seen_term;  /* the observing region's term: the commit happened by then */
};

struct rsim {
    struct cw_rsim_config cfg;
    struct cw_rsim_result *res;
    struct cw_fixture *fx;
    struct cw_rng *rng;
    struct cw_bucket_policy buckets[1];
    struct client *clients;
    struct cw_lin_history *hist;
    uint64_t ops_issued;
    bool oom;
    /* Cross-region checks. */
    unsigned *leader_of_term; /* region + 1, 0 none */
    size_t cap_terms;
    struct committed *committed;
    size_t cap_committed;
    uint64_t max_committed;
    uint64_t *digest_at; /* digest + 1 of the state at each applied index; 0 unknown */
    size_t cap_digest;
    uint64_t seen_commit[CW_REGIONS_MAX];
    /* The pre-vote scenario. */
    uint64_t heal_deposed; /* deposed_leaders() when the isolated region was healed */
    bool healed_isolation;
};

void cw_rsim_config_defaults(struct cw_rsim_config *c)
{
    if (c->n_regions == 0)
        c->n_regions = 3;
    if (c->n_clients == 0)
        c->n_clients = 2 * c->n_regions;
    if (c->n_keys == 0)
        c->n_keys = 3;
    if (c->n_keys > KEYS_MAX)
        c->n_keys = KEYS_MAX;
    if (c->n_ops == 0)
        c->n_ops = 200;
    if (c->lin_budget == 0)
        c->lin_budget = 20000000;
}

const char *cw_rsim_broken_name(enum cw_rsim_broken b)
{
    switch (b) {
    case CW_RSIM_CORRECT:
        return "correct";
    case CW_RSIM_LOCAL_READS:
        return "local-reads";
    case CW_RSIM_OLD_TERMS:
        return "old-terms";
    case CW_RSIM_NO_PREVOTE:
        return "no-prevote";
    }
    return "unknown";
}

static void trace(struct rsim *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(struct rsim *sim, const char *fmt, ...)
{
    if (sim->cfg.trace == NULL)
        return;
    fprintf(sim->cfg.trace, "%10.3f ", (double)(cw_fixture_now(sim->fx) - START_US) / 1e6);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(sim->cfg.trace, fmt, ap);
    va_end(ap);
    fputc('\n', sim->cfg.trace);
}

static bool ensure(struct rsim *sim, void **arr, size_t *cap, size_t need, size_t size)
{
    if (need < *cap)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c <= need)
        c *= 2;
    void *p = realloc(*arr, c * size);
    if (p == NULL) {
        sim->oom = true;
        return false;
    }
    memset((char *)p + *cap * size, 0, (c - *cap) * size);
    *arr = p;
    *cap = c;
    return true;
}

static void schedule(struct rsim *sim, uint64_t at, enum ev_kind kind, unsigned region, uint64_t a,
                     int64_t b)
{
    struct cw_fixture_event ev = {.name = "rsim", .kind = kind, .region = region, .a = a, .b = b};
    if (!cw_fixture_schedule(sim->fx, at, &ev))
        sim->oom = sim->oom || cw_fixture_failure(sim->fx) == NULL;
}

static const struct cw_raft *raft_of(struct cw_fixture *f, unsigned r)
{
    struct cw_node *n = cw_fixture_node(f, r);
    if (n == NULL || cw_node_strong(n) == NULL)
        return NULL;
    return cw_strong_raft(cw_node_strong(n));
}

/* ------------------------------------------------------------ the history */

static void record(struct rsim *sim, struct client *c, enum cw_lin_outcome outcome,
                   uint64_t out_value, uint64_t out_version)
{
    c->ev.ret_us = cw_fixture_now(sim->fx);
    c->ev.outcome = outcome;
    c->ev.out_value_id = out_value;
    c->ev.out_version = out_version;
    c->ev.key = c->key;
    int rc = cw_lin_history_add(sim->hist, &c->ev);
    if (rc == CW_ENOMEM)
        sim->oom = true;
    /* CW_EINVAL would mean this driver built a malformed event: a bug here. */
    if (rc == CW_EINVAL && !sim->res->fixture_failed) {
        sim->res->fixture_failed = true;
        snprintf(sim->res->failure, sizeof(sim->res->failure),
                 "seed %" PRIu64 ": the simulator recorded a malformed event (op %d outcome %d)",
                 sim->cfg.seed, (int)c->ev.op, (int)outcome);
    }
    switch (outcome) {
    case CW_LIN_OK:
        sim->res->ok++;
        break;
    case CW_LIN_CONFLICT:
        sim->res->conflicts++;
        break;
    case CW_LIN_NOTFOUND:
        sim->res->not_found++;
        break;
    case CW_LIN_UNKNOWN:
        sim->res->unknown++;
        break;
    case CW_LIN_FAILED:
        sim->res->failed++;
        break;
    }
    unsigned k = (unsigned)(c->ev.key[2] - 'a');
    if (k < KEYS_MAX && (outcome == CW_LIN_OK || outcome == CW_LIN_CONFLICT))
        c->known_version[k] = out_version;
    c->busy = false;
}

static void schedule_next(struct rsim *sim, unsigned ci)
{
    if (sim->ops_issued < sim->cfg.n_ops)
        schedule(sim, cw_fixture_now(sim->fx) + cw_rng_range(sim->rng, 1 * MS, 80 * MS), EV_OP,
                 0, ci, 0);
}

static void on_reply(void *ctx, struct cw_fixture *f, unsigned r, const struct cw_reply *rep)
{
    (void)f, (void)r;
    struct rsim *sim = ctx;
    unsigned ci = (unsigned)(rep->req_id >> 32);
    if (ci >= sim->cfg.n_clients)
        return;
    struct client *c = &sim->clients[ci];
    if (!c->busy || (rep->req_id & 0xffffffffu) != (c->op_seq & 0xffffffffu))
        return; /* a reply after the client gave up on it */
    bool is_get = c->ev.op == CW_LIN_GET;
    if (rep->err == CW_OK) {
        if (is_get && rep->state.n == 1 && rep->state.v[0].value_len == 8) {
            uint64_t id = 0;
            memcpy(&id, rep->state.v[0].value, 8);
            record(sim, c, CW_LIN_OK, id, rep->version);
        } else if (is_get) {
            record(sim, c, CW_LIN_NOTFOUND, 0, 0);
        } else {
            record(sim, c, CW_LIN_OK, 0, rep->version);
        }
    } else if (rep->err == CW_ECONFLICT) {
        record(sim, c, CW_LIN_CONFLICT, 0, rep->version);
    } else if (rep->err == CW_ETIMEOUT || rep->err == CW_ENOQUORUM) {
        trace(sim, "client %u: %s (%s)", ci, cw_strerror(rep->err), rep->detail);
        record(sim, c, CW_LIN_UNKNOWN, 0, 0);
    } else {
        trace(sim, "client %u: refused: %s (%s)", ci, cw_strerror(rep->err), rep->detail);
        record(sim, c, CW_LIN_FAILED, 0, 0);
    }
    schedule_next(sim, ci);
}

static void issue_op(struct rsim *sim, unsigned ci)
{
    struct client *c = &sim->clients[ci];
    if (c->busy || sim->ops_issued >= sim->cfg.n_ops)
        return;
    if (!cw_fixture_up(sim->fx, c->region)) {
        c->region = (unsigned)cw_rng_below(sim->rng, sim->cfg.n_regions);
        schedule_next(sim, ci);
        return;
    }
    unsigned k = (unsigned)cw_rng_below(sim->rng, sim->cfg.n_keys);
    int klen = snprintf((char *)c->key, sizeof(c->key), "k-%c", 'a' + k);
    memset(&c->ev, 0, sizeof(c->ev));
    c->ev.call_us = cw_fixture_now(sim->fx);
    c->ev.client = ci;
    c->ev.key_len = (uint32_t)klen;
    c->op_seq++;
    uint64_t req_id = ((uint64_t)ci << 32) | (c->op_seq & 0xffffffffu);
    uint64_t pick = cw_rng_below(sim->rng, 100);
    c->busy = true;
    sim->ops_issued++;
    sim->res->ops++;
    if (pick < 35) {
        c->ev.op = CW_LIN_GET;
        struct cw_get_req g = {.req_id = req_id, .bucket = "strong", .key = c->key,
                               .key_len = (uint32_t)klen};
        trace(sim, "client %u at r%u: get %s", ci, c->region, (char *)c->key);
        cw_fixture_get(sim->fx, c->region, &g);
    } else {
        uint64_t value_id = ((uint64_t)(ci + 1) << 32) | (c->op_seq & 0xffffffffu);
        uint8_t value[8];
        memcpy(value, &value_id, 8);
        struct cw_put_req p = {.req_id = req_id, .bucket = "strong", .key = c->key,
                               .key_len = (uint32_t)klen, .value = value, .value_len = 8};
        if (pick < 60) {
            c->ev.op = CW_LIN_PUT;
        } else if (pick < 78) {
            c->ev.op = CW_LIN_PUT_IF_VERSION;
            p.cond = CW_COND_VERSION;
        } else if (pick < 88) {
            c->ev.op = CW_LIN_PUT_IF_ABSENT;
            p.cond = CW_COND_ABSENT;
        } else if (pick < 95) {
            c->ev.op = CW_LIN_DEL;
            p.tombstone = true;
        } else {
            c->ev.op = CW_LIN_DEL_IF_VERSION;
            p.tombstone = true;
            p.cond = CW_COND_VERSION;
        }
        if (p.cond == CW_COND_VERSION) {
            /* Usually the version this client last saw; sometimes a stale guess. */
            uint64_t v = c->known_version[k];
            if (v == 0 || cw_rng_chance(sim->rng, 100000))
                v = cw_rng_range(sim->rng, 1, 50);
            p.cond_version = v;
            c->ev.expected_version = v;
        }
        if (!p.tombstone)
            c->ev.value_id = value_id;
        else
            p.value_len = 0;
        trace(sim, "client %u at r%u: %s %s (value %" PRIx64 ", expect %" PRIu64 ")", ci,
              c->region, p.tombstone ? "del" : "put", (char *)c->key, value_id, p.cond_version);
        cw_fixture_put(sim->fx, c->region, &p);
    }
    schedule(sim, cw_fixture_now(sim->fx) + CLIENT_TIMEOUT_US, EV_CLIENT_TIMEOUT, 0, ci,
             (int64_t)c->op_seq);
}

/* The region of a client with a request in flight went down: the request may
 * or may not have been proposed. */
static void crash_clients(struct rsim *sim, unsigned r)
{
    for (unsigned ci = 0; ci < sim->cfg.n_clients; ci++) {
        struct client *c = &sim->clients[ci];
        if (c->busy && c->region == r) {
            record(sim, c, CW_LIN_UNKNOWN, 0, 0);
            schedule_next(sim, ci);
        }
    }
}

/* ------------------------------------------------------------ the checks */

static uint64_t entry_hash(const struct cw_raft_entry *e)
{
    uint64_t h = 0xcbf29ce484222325ull ^ e->type;
    for (uint32_t i = 0; i < e->len; i++) {
        h ^= e->data[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static bool fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return false;
}

static bool check_log_matching(const struct cw_raft *a, const struct cw_raft *b, unsigned ra,
                               unsigned rb, char *why, size_t len)
{
    uint64_t la = cw_raft_last_index(a), lb = cw_raft_last_index(b);
    uint64_t i = la < lb ? la : lb;
    /* The highest index at which both hold an entry of the same term. */
    for (; i > 0; i--) {
        const struct cw_raft_entry *x = cw_raft_entry_at(a, i), *y = cw_raft_entry_at(b, i);
        if (x == NULL || y == NULL)
            return true; /* below one of the snapshots: nothing more to compare */
        if (x->term == y->term)
            break;
    }
    for (; i > 0; i--) {
        const struct cw_raft_entry *x = cw_raft_entry_at(a, i), *y = cw_raft_entry_at(b, i);
        if (x == NULL || y == NULL)
            return true;
        if (x->term != y->term || entry_hash(x) != entry_hash(y))
            return fail(why, len,
                        "log matching: r%u and r%u agree on a later entry but differ at index "
                        "%" PRIu64 " (terms %" PRIu64 " and %" PRIu64 ")",
                        ra, rb, i, x->term, y->term);
    }
    return true;
}

static bool on_check(void *ctx, struct cw_fixture *f, char *why, size_t len)
{
    struct rsim *sim = ctx;
    unsigned n = sim->cfg.n_regions;
    struct cw_now now = cw_fixture_now_of(f, 0);
    for (unsigned r = 0; r < n; r++) {
        const struct cw_raft *raft = raft_of(f, r);
        if (raft == NULL)
            continue;
        struct cw_raft_status st;
        cw_raft_get_status(raft, now, &st);
        if (st.term > sim->res->max_term)
            sim->res->max_term = st.term;
        /* Election safety. */
        if (st.role == CW_RAFT_LEADER) {
            if (!ensure(sim, (void **)&sim->leader_of_term, &sim->cap_terms, st.term,
                        sizeof(*sim->leader_of_term)))
                return fail(why, len, "out of memory");
            unsigned *l = &sim->leader_of_term[st.term];
            if (*l == 0)
                *l = r + 1;
            else if (*l != r + 1)
                return fail(why, len, "election safety: r%u and r%u both lead term %" PRIu64,
                            *l - 1, r, st.term);
        }
        /* State machine safety: one entry per committed index, everywhere. */
        if (st.commit < sim->seen_commit[r])
            sim->seen_commit[r] = st.commit; /* restarted: commit comes back from disk */
        if (!ensure(sim, (void **)&sim->committed, &sim->cap_committed, st.commit,
                    sizeof(*sim->committed)))
            return fail(why, len, "out of memory");
        for (uint64_t i = sim->seen_commit[r] + 1; i <= st.commit; i++) {
            const struct cw_raft_entry *e = cw_raft_entry_at(raft, i);
            if (e == NULL)
                continue; /* compacted into the snapshot */
            struct committed *c = &sim->committed[i];
            uint64_t h = entry_hash(e);
            if (c->term == 0) {
                c->term = e->term;
                c->hash = h;
                c->seen_term = st.term;
            } else if (c->term != e->term || c->hash != h) {
                return fail(why, len,
                            "state machine safety: index %" PRIu64 " committed with term %" PRIu64
                            " elsewhere, with term %" PRIu64 " (or other data) at r%u",
                            i, c->term, e->term, r);
            }
            if (i > sim->max_committed)
                sim->max_committed = i;
        }
        sim->seen_commit[r] = st.commit;
        /* Leader completeness: a leader holds what was committed before its term. */
        if (st.role == CW_RAFT_LEADER) {
            for (uint64_t i = st.snap_index + 1; i <= sim->max_committed; i++) {
                const struct committed *c = &sim->committed[i];
                if (c->term == 0 || c->seen_term >= st.term)
                    continue;
                const struct cw_raft_entry *e = cw_raft_entry_at(raft, i);
                if (e == NULL || e->term != c->term || entry_hash(e) != c->hash)
                    return fail(why, len,
                                "leader completeness: r%u leads term %" PRIu64
                                " without entry %" PRIu64 " (term %" PRIu64
                                ") committed by term %" PRIu64,
                                r, st.term, i, c->term, c->seen_term);
            }
        }
        /* Equal applied index, equal state. */
        const struct cw_strong *s = cw_node_strong(cw_fixture_node(f, r));
        uint64_t applied = cw_strong_applied(s);
        if (applied > 0) {
            if (!ensure(sim, (void **)&sim->digest_at, &sim->cap_digest, applied,
                        sizeof(*sim->digest_at)))
                return fail(why, len, "out of memory");
            uint64_t d = cw_strong_digest(s) + 1;
            if (sim->digest_at[applied] == 0)
                sim->digest_at[applied] = d;
            else if (sim->digest_at[applied] != d)
                return fail(why, len,
                            "state machine safety: r%u's strong state at applied index %" PRIu64
                            " differs from another region's at the same index",
                            r, applied);
        }
    }
    /* Log matching, for the region the step touched against every other. */
    const struct cw_fixture_event *ev = cw_fixture_last_event(f);
    unsigned er = ev->region < n ? ev->region : 0;
    const struct cw_raft *a = raft_of(f, er);
    for (unsigned r = 0; a != NULL && r < n; r++) {
        const struct cw_raft *b = raft_of(f, r);
        if (r != er && b != NULL && !check_log_matching(a, b, er, r, why, len))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------ faults */

static void schedule_faults(struct rsim *sim, uint64_t horizon)
{
    unsigned n = sim->cfg.n_regions;
    unsigned crashes = (unsigned)cw_rng_range(sim->rng, 0, 3);
    for (unsigned i = 0; i < crashes; i++)
        schedule(sim, START_US + cw_rng_below(sim->rng, horizon), EV_CRASH,
                 (unsigned)cw_rng_below(sim->rng, n), 0, 0);
    /* Partitions: a region cut off from all, or links cut one by one (one-way
     * or both ways) and healed in random order. */
    unsigned episodes = (unsigned)cw_rng_range(sim->rng, 0, 2);
    for (unsigned ep = 0; ep < episodes; ep++) {
        uint64_t t = START_US + cw_rng_below(sim->rng, horizon);
        uint64_t heal = t + cw_rng_range(sim->rng, 300 * MS, 5 * SEC);
        if (cw_rng_chance(sim->rng, 400000)) {
            unsigned x = (unsigned)cw_rng_below(sim->rng, n);
            for (unsigned o = 0; o < n; o++)
                if (o != x) {
                    schedule(sim, t, EV_CUT, x, o, 1);
                    schedule(sim, heal, EV_HEAL, x, o, 1);
                }
            continue;
        }
        unsigned cuts = (unsigned)cw_rng_range(sim->rng, 1, n);
        for (unsigned c = 0; c < cuts; c++) {
            unsigned a = (unsigned)cw_rng_below(sim->rng, n);
            unsigned b = (unsigned)cw_rng_below(sim->rng, n - 1);
            if (b >= a)
                b++;
            int64_t both = cw_rng_chance(sim->rng, 700000);
            schedule(sim, t + c * cw_rng_range(sim->rng, 0, 300 * MS), EV_CUT, a, b, both);
            schedule(sim, heal + cw_rng_below(sim->rng, 2 * SEC), EV_HEAL, a, b, both);
        }
    }
    /* Leader churn on half the seeds: crash the leader again and again, soon
     * after it took writes, so entries of earlier terms sit on minorities when
     * the next leader takes over (Raft's figure 8). */
    if (sim->cfg.seed % 2 == 0 || sim->cfg.churn) {
        unsigned churn = sim->cfg.churn ? (unsigned)(horizon / (700 * MS))
                                        : (unsigned)cw_rng_range(sim->rng, 2, 6);
        for (unsigned i = 0; i < churn; i++)
            schedule(sim, START_US + 2 * SEC + cw_rng_below(sim->rng, horizon), EV_CRASH_LEADER, 0,
                     0, 0);
    }
    unsigned jumps = (unsigned)cw_rng_range(sim->rng, 0, 3);
    for (unsigned i = 0; i < jumps; i++)
        schedule(sim, START_US + cw_rng_below(sim->rng, horizon), EV_JUMP,
                 (unsigned)cw_rng_below(sim->rng, n), 0,
                 (int64_t)cw_rng_range(sim->rng, 0, 2 * SEC) - (int64_t)SEC);
}

/* Leaders deposed so far by a higher term from a region that was not leading
 * (Raft's `disruptions`; leadership transfers are not counted). */
static uint64_t deposed_leaders(struct rsim *sim)
{
    uint64_t d = 0;
    for (unsigned o = 0; o < sim->cfg.n_regions; o++) {
        const struct cw_raft *rf = raft_of(sim->fx, o);
        if (rf == NULL)
            continue;
        struct cw_raft_status st;
        cw_raft_get_status(rf, cw_fixture_now_of(sim->fx, o), &st);
        d += st.stats.disruptions;
    }
    return d;
}

static void on_event(void *ctx, struct cw_fixture *f, const struct cw_fixture_event *e)
{
    struct rsim *sim = ctx;
    unsigned r = e->region;
    switch ((enum ev_kind)e->kind) {
    case EV_OP:
        issue_op(sim, (unsigned)e->a);
        break;
    case EV_CLIENT_TIMEOUT: {
        struct client *c = &sim->clients[e->a];
        if (c->busy && c->op_seq == (uint64_t)e->b) {
            trace(sim, "client %u: no reply at all", (unsigned)e->a);
            record(sim, c, CW_LIN_UNKNOWN, 0, 0);
            schedule_next(sim, (unsigned)e->a);
        }
        break;
    }
    case EV_CRASH_LEADER: {
        uint64_t best = 0;
        r = sim->cfg.n_regions;
        for (unsigned o = 0; o < sim->cfg.n_regions; o++) {
            const struct cw_raft *rf = raft_of(f, o);
            struct cw_raft_status st;
            if (rf == NULL)
                continue;
            cw_raft_get_status(rf, cw_fixture_now_of(f, o), &st);
            if (st.role == CW_RAFT_LEADER && st.term > best) {
                best = st.term;
                r = o;
            }
        }
        if (r == sim->cfg.n_regions)
            break;
    }
        __attribute__((fallthrough)); /* crash it */
    case EV_CRASH:
        if (!cw_fixture_up(f, r))
            break;
        trace(sim, "crash r%u", r);
        crash_clients(sim, r);
        cw_fixture_crash(f, r);
        sim->res->crashes++;
        schedule(sim,
                 cw_fixture_now(f) + (e->kind == EV_CRASH_LEADER
                                          ? cw_rng_range(sim->rng, 50 * MS, 800 * MS)
                                          : cw_rng_range(sim->rng, 100 * MS, 3 * SEC)),
                 EV_RESTART, r, 0, 0);
        break;
    case EV_RESTART:
        if (!cw_fixture_up(f, r)) {
            trace(sim, "restart r%u", r);
            cw_fixture_start(f, r);
        }
        break;
    case EV_CUT:
        trace(sim, "cut r%u %s r%u", r, e->b ? "<->" : "->", (unsigned)e->a);
        cw_fixture_cut(f, r, (unsigned)e->a);
        if (e->b)
            cw_fixture_cut(f, (unsigned)e->a, r);
        sim->res->cuts++;
        break;
    case EV_HEAL:
        trace(sim, "heal r%u %s r%u", r, e->b ? "<->" : "->", (unsigned)e->a);
        cw_fixture_heal(f, r, (unsigned)e->a);
        if (e->b)
            cw_fixture_heal(f, (unsigned)e->a, r);
        if (e->b == 2 && !sim->healed_isolation) {
            sim->healed_isolation = true;
            sim->heal_deposed = deposed_leaders(sim);
        }
        break;
    case EV_JUMP:
        trace(sim, "clock jump r%u by %" PRId64 " us", r, e->b);
        cw_fixture_clock_jump(f, r, e->b);
        break;
    }
}

/* The pre-vote scenario: once a leader is settled, cut one follower off from
 * every region for several election timeouts, then heal it (EV_HEAL with
 * b == 2 marks the heal to measure after). */
static void schedule_isolation(struct rsim *sim, uint64_t at)
{
    unsigned n = sim->cfg.n_regions;
    unsigned x = (unsigned)cw_rng_below(sim->rng, n);
    uint64_t heal = at + cw_rng_range(sim->rng, 3 * SEC, 6 * SEC);
    for (unsigned o = 0; o < n; o++)
        if (o != x) {
            schedule(sim, at, EV_CUT, x, o, 1);
            schedule(sim, heal, EV_HEAL, x, o, 2);
        }
    sim->res->had_isolation = true;
}

/* ------------------------------------------------------------ figure 8 */

struct fig8 {
    unsigned phase; /* 0 wait for A, 1 wait for B, 2 wait for A again, 3 B healed */
    unsigned a, b;
    uint64_t index;  /* e's index */
    uint64_t term_b; /* B's term */
    uint64_t since;  /* when the phase began */
};

static bool leader_status(struct rsim *sim, unsigned r, struct cw_raft_status *st)
{
    const struct cw_raft *rf = raft_of(sim->fx, r);
    if (rf == NULL)
        return false;
    cw_raft_get_status(rf, cw_fixture_now_of(sim->fx, r), st);
    return st->role == CW_RAFT_LEADER;
}

static void cut_out(struct rsim *sim, unsigned r, bool cut)
{
    for (unsigned o = 0; o < sim->cfg.n_regions; o++)
        if (o != r) {
            if (cut)
                cw_fixture_cut(sim->fx, r, o);
            else
                cw_fixture_heal(sim->fx, r, o);
        }
}

/* One step of the script, between the fixture's steps. */
static void figure8_step(struct rsim *sim, struct fig8 *g)
{
    struct cw_raft_status st;
    uint64_t now = cw_fixture_now(sim->fx);
    switch (g->phase) {
    case 0: /* a settled leader A with writes committed: cut it off (outgoing) */
        for (unsigned r = 0; r < sim->cfg.n_regions; r++)
            if (now > START_US + 3 * SEC && leader_status(sim, r, &st) && st.commit > 3) {
                g->a = r;
                g->index = st.commit + 1;
                cut_out(sim, r, true);
                trace(sim, "figure 8: leader r%u (term %" PRIu64 ") cut off; its next entry "
                      "%" PRIu64 " reaches no one", r, st.term, g->index);
                g->phase = 1;
                g->since = now;
                return;
            }
        return;
    case 1: /* another leader B: keep its no-op from everyone */
        for (unsigned r = 0; r < sim->cfg.n_regions; r++)
            if (r != g->a && leader_status(sim, r, &st)) {
                g->b = r;
                g->term_b = st.term;
                cut_out(sim, r, true);
                cut_out(sim, g->a, false);
                trace(sim, "figure 8: r%u leads term %" PRIu64 "; its outgoing cut, r%u healed",
                      r, st.term, g->a);
                g->phase = 2;
                g->since = now;
                return;
            }
        return;
    case 2: /* A leads again: once its commit covers e, cut it off and crash it */
        if (leader_status(sim, g->a, &st) && st.term > g->term_b && st.commit >= g->index) {
            cut_out(sim, g->a, true);
            crash_clients(sim, g->a);
            cw_fixture_crash(sim->fx, g->a);
            cut_out(sim, g->b, false);
            trace(sim, "figure 8: r%u leads term %" PRIu64 " with commit %" PRIu64
                  "; crashed; r%u healed", g->a, st.term, st.commit, g->b);
            g->phase = 3;
            g->since = now;
        }
        return;
    case 3: /* let B try; then restart A */
        if (now > g->since + 5 * SEC && !cw_fixture_up(sim->fx, g->a)) {
            cut_out(sim, g->a, false);
            cw_fixture_start(sim->fx, g->a);
            g->phase = 4;
        }
        return;
    }
}

/* ------------------------------------------------------------ the run */

int cw_rsim_run(const struct cw_rsim_config *cfg_in, struct cw_rsim_result *res)
{
    memset(res, 0, sizeof(*res));
    struct rsim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return -1;
    sim->cfg = *cfg_in;
    cw_rsim_config_defaults(&sim->cfg);
    sim->res = res;
    unsigned n = sim->cfg.n_regions;
    int rc = 0;
    sim->hist = cw_lin_history_create();
    sim->clients = calloc(sim->cfg.n_clients, sizeof(*sim->clients));
    if (sim->hist == NULL || sim->clients == NULL || n < 1 || n > CW_REGIONS_MAX) {
        rc = -1;
        goto out;
    }
    sim->buckets[0] = (struct cw_bucket_policy){
        .name = "strong", .consistency = CW_STRONG, .conflict = CW_CONFLICT_LWW};
    struct cw_fixture_config fc = {
        .seed = sim->cfg.seed,
        .n_regions = n,
        .replica = {.n_regions = n, .buckets = sim->buckets, .n_buckets = 1},
        .frames = sim->cfg.encoded ? CW_FIXTURE_ENCODED : CW_FIXTURE_COPIED,
        .start_us = START_US,
        .tick_us = TICK_US,
        .commit_min_us = 50,
        .commit_max_us = 3000,
        .hooks = {.ctx = sim, .event = on_event, .reply = on_reply, .check = on_check},
    };
    /* Timeouts fit the links below: one-way delays up to 60 ms, so the largest
     * round trip (with jitter) is well under election_min_us / 2. */
    fc.strong.raft.election_min_us = 300 * MS;
    fc.strong.raft.election_max_us = 600 * MS;
    fc.strong.raft.heartbeat_us = 50 * MS;
    fc.strong.timeout_us = STRONG_TIMEOUT_US;
    fc.strong.snapshot_entries = 32; /* compaction and snapshot installs happen */
    /* Small appends (one to three entries) leave followers holding an earlier
     * term's entry without the new leader's no-op for a while: the window in
     * which committing by counting replicas goes wrong (Raft's figure 8). */
    fc.strong.raft.max_msg_entries = sim->cfg.figure8 ? 1 : (uint32_t)(1 + sim->cfg.seed % 3);
    /* A quarter of the seeds name a preferred leader (leadership transfers). */
    fc.strong.raft.preferred = sim->cfg.seed % 4 == 1 && !sim->cfg.figure8
                                   ? (unsigned)(sim->cfg.seed / 4 % n)
                                   : CW_RAFT_NONE;
    fc.strong.raft.test_local_reads = sim->cfg.broken == CW_RSIM_LOCAL_READS;
    fc.strong.raft.test_commit_old_terms = sim->cfg.broken == CW_RSIM_OLD_TERMS;
    fc.strong.raft.test_no_prevote = sim->cfg.broken == CW_RSIM_NO_PREVOTE;
    sim->fx = cw_fixture_create(&fc);
    if (sim->fx == NULL) {
        rc = -1;
        goto out;
    }
    sim->rng = cw_fixture_rng(sim->fx);
    struct cw_replica_config rcfg = {
        .n_regions = n,
        .buckets = cw_fixture_buckets(sim->fx),
        .n_buckets = 1,
        .heartbeat_us = 50 * MS,
        .nack_retry_us = 300 * MS,
        .wait_us = 1000 * MS,
    };
    for (unsigned r = 0; r < n; r++) {
        *cw_fixture_replica_config(sim->fx, r) = rcfg;
        cw_fixture_replica_config(sim->fx, r)->region = r;
    }
    for (unsigned a = 0; a < n; a++)
        for (unsigned b = 0; b < n; b++) {
            uint64_t delay = a == b ? 0 : cw_rng_range(sim->rng, 2 * MS, 60 * MS);
            cw_fixture_set_link(sim->fx, a, b, delay, delay / 10);
        }
    if (sim->cfg.churn)
        cw_fixture_set_loss(sim->fx, (uint32_t)cw_rng_range(sim->rng, 100000, 250000), 0);
    else if (sim->cfg.faults)
        cw_fixture_set_loss(sim->fx, (uint32_t)cw_rng_range(sim->rng, 0, 30000),
                            (uint32_t)cw_rng_range(sim->rng, 0, 30000));
    for (unsigned r = 0; r < n && rc == 0; r++) {
        if (!cw_fixture_start(sim->fx, r) ||
            !cw_fixture_start_ticks(sim->fx, r, START_US + cw_rng_below(sim->rng, TICK_US)))
            rc = -1;
    }
    for (unsigned ci = 0; ci < sim->cfg.n_clients; ci++) {
        sim->clients[ci].region = ci % n;
        schedule(sim, START_US + cw_rng_range(sim->rng, 1 * SEC, 2 * SEC), EV_OP, 0, ci, 0);
    }
    /* About one operation per client every 60 ms when all goes well. */
    uint64_t horizon = (uint64_t)sim->cfg.n_ops * 60 * MS / sim->cfg.n_clients + 2 * SEC;
    if (sim->cfg.faults || sim->cfg.churn)
        schedule_faults(sim, horizon);
    if (sim->cfg.isolate || (sim->cfg.faults && sim->cfg.seed % 4 == 0))
        schedule_isolation(sim, START_US + 3 * SEC);

    uint64_t done_at = 0;
    struct fig8 fig = {0};
    while (rc == 0 && !sim->oom) {
        if (!cw_fixture_step(sim->fx))
            break;
        uint64_t now = cw_fixture_now(sim->fx);
        if (sim->cfg.figure8 && fig.phase < 4)
            figure8_step(sim, &fig);
        if (done_at == 0) {
            bool done = sim->ops_issued >= sim->cfg.n_ops &&
                        (!sim->cfg.figure8 || fig.phase >= 4 || now > START_US + 120 * SEC);
            for (unsigned ci = 0; done && ci < sim->cfg.n_clients; ci++)
                done = !sim->clients[ci].busy;
            if (done) {
                done_at = now;
                trace(sim, "workload done; healing and restarting everything");
                for (unsigned a = 0; a < n; a++) {
                    for (unsigned b = 0; b < n; b++)
                        if (a != b)
                            cw_fixture_heal(sim->fx, a, b);
                    if (!cw_fixture_up(sim->fx, a))
                        cw_fixture_start(sim->fx, a);
                }
                cw_fixture_set_loss(sim->fx, 0, 0);
            }
        } else if (now >= done_at + QUIET_US) {
            break;
        }
        if (now > START_US + MAX_SIM_US)
            break;
    }
    if (sim->oom)
        rc = -1;
    res->figure8_phase = fig.phase;
    const struct cw_fixture_failure *ff = cw_fixture_failure(sim->fx);
    res->sim_time_us = cw_fixture_now(sim->fx) - START_US;
    res->steps = cw_fixture_stats(sim->fx)->steps;
    for (unsigned r = 0; r < n; r++) {
        const struct cw_raft *rf = raft_of(sim->fx, r);
        if (rf == NULL)
            continue;
        struct cw_raft_status st;
        cw_raft_get_status(rf, cw_fixture_now_of(sim->fx, r), &st);
        res->elections += st.stats.elections;
        res->leader_changes += st.stats.leader_changes;
        res->disruptions += st.stats.disruptions;
        res->snapshots_installed += st.stats.snapshots_received;
    }
    /* Crashes lose a restarted region's counters, so the figure is a lower
     * bound under faults; the pre-vote tests run without them. */
    uint64_t deposed = deposed_leaders(sim);
    if (sim->healed_isolation && deposed > sim->heal_deposed)
        res->deposed_after_heal = deposed - sim->heal_deposed;
    if (rc == 0 && ff != NULL && !res->fixture_failed) {
        res->fixture_failed = true;
        snprintf(res->failure, sizeof(res->failure), "%s", ff->text);
    }
    if (rc == 0 && !res->fixture_failed && done_at == 0) {
        res->fixture_failed = true;
        snprintf(res->failure, sizeof(res->failure),
                 "seed %" PRIu64 ": the workload did not finish in %llu s of simulated time",
                 sim->cfg.seed, (unsigned long long)(MAX_SIM_US / SEC));
    }
    /* Convergence: after the heal every region applied the same log. */
    if (rc == 0 && !res->fixture_failed) {
        uint64_t applied0 = 0, digest0 = 0;
        for (unsigned r = 0; r < n; r++) {
            const struct cw_strong *s = cw_node_strong(cw_fixture_node(sim->fx, r));
            if (r == 0) {
                applied0 = cw_strong_applied(s);
                digest0 = cw_strong_digest(s);
            } else if (cw_strong_applied(s) != applied0 || cw_strong_digest(s) != digest0) {
                res->fixture_failed = true;
                snprintf(res->failure, sizeof(res->failure),
                         "seed %" PRIu64 ": %llu s after the heal r%u applied %" PRIu64
                         " and r0 %" PRIu64 " (or their states differ)",
                         sim->cfg.seed, (unsigned long long)(QUIET_US / SEC), r,
                         cw_strong_applied(s), applied0);
                break;
            }
        }
    }
    if (rc == 0 && !res->fixture_failed &&
        cw_lin_check(sim->hist, sim->cfg.lin_budget, &res->lin) != CW_OK)
        rc = -1;
out:
    cw_fixture_destroy(&sim->fx);
    cw_lin_history_destroy(&sim->hist);
    free(sim->clients);
    free(sim->leader_of_term);
    free(sim->committed);
    free(sim->digest_at);
    free(sim);
    return rc;
}
