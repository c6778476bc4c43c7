/*
 * checker.c - the history checker: builds the causal order CO over a simulator
 * history and looks for the anomalies listed in checker.h.
 *
 * How it stays fast on thousands of events:
 *  - sessions and keys are mapped to dense indices, writes are indexed by dot;
 *  - CO (session order plus reads-from) is a CSR graph; Kahn's algorithm gives a
 *    topological order, or proves a cycle;
 *  - every event gets a vector over sessions: the highest position of each
 *    session's main chain (reads and acked writes) in its causal past. Session
 *    prefixes are closed under CO, so "w is in past(e)" is one comparison;
 *  - per (key, session) the acked writes are kept in session order with prefix
 *    maxima and prefix context joins, so the writes of a key in a read's causal
 *    past are summarised by one binary search per session instead of a scan.
 * An unacked write has no session-order edge to its session's later events (the
 * client never learned its dot); it is in an event's past only when a read in
 * that past returned it, which is tested through its list of first readers.
 * Operations on EVENTUAL keys are left out of CO altogether: the store neither
 * waits for their dependencies nor makes them wait for the session's context, so
 * a chain through one proves nothing about what a causal read must see.
 * A write lost in a crash before its commit (lost) never happened: it is left
 * out of CO, of the dot index and of every rule, so it replaces nothing, explains
 * no not-found and no read can return it. What a write replaced is judged from
 * the key context its client sent (sent_kctx), never from the one the region
 * stored, so a region that widened a context cannot excuse its own loss.
 *
 * Memory is O(events * sessions) for the vectors plus O(events + edges) for the
 * rest. Ownership: all working memory lives in struct ck and is released by
 * ck_free before cw_check_history returns; only the report outlives the call.
 */
#include "sim/checker.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "causeway/error.h"

#define NONE SIZE_MAX

enum { EDGE_SO = 0, EDGE_RF = 1 };

/* Why a read misses a write; picks the wording of the witness. */
enum miss_rule {
    MISS_LWW_NONE,     /* LWW read found nothing; no later delete explains it */
    MISS_LWW_OLDER,    /* LWW read returned an older version */
    MISS_SIB_ABSENT,   /* SIBLINGS read lacks a write nothing replaced */
    MISS_SIB_REPLACED, /* SIBLINGS read returns a version a past write replaced */
};

struct miss {
    size_t w;  /* the missed (or replacing) write */
    size_t vj; /* MISS_SIB_REPLACED: index into read[] of the replaced version */
    enum miss_rule rule;
};

struct dotref {
    uint64_t ts;
    uint8_t origin;
    size_t ev;
};

/* A session's first read of an unacked write (later reads add nothing: prefixes). */
struct reader {
    uint32_t sess;
    uint32_t pos;
};

/*
 * A downward-closed set of events: main-chain events up to row[s] per session,
 * plus unacked writes returned by a read in it (when unacked is set) or returned
 * by a read of session direct_sess before position direct_pos.
 */
struct vset {
    const uint32_t *row;
    bool unacked;
    uint32_t direct_sess;
    uint32_t direct_pos; /* 0: no direct readers */
};

struct ck {
    const struct cw_history *h;
    struct cw_check_report *rep;
    size_t n;

    uint32_t *sess_ids;
    size_t n_sess;
    uint32_t *sess_of; /* dense session per event; UINT32_MAX for final reads */
    uint32_t *pos;     /* 1-based position in the session; 0 for final reads */
    size_t *sess_off, *sess_ev;

    uint32_t *key_ids;
    size_t n_keys;
    uint32_t *key_of;

    struct dotref *dots;
    size_t n_dots;

    size_t n_edges;
    size_t *out_off, *out_to;
    uint8_t *out_kind;
    size_t *in_off, *in_from;
    uint8_t *in_kind;

    size_t *indeg; /* after Kahn: nonzero exactly for events on or after a cycle */
    size_t n_nodes, n_topo;
    size_t *topo;
    uint32_t *past; /* n * n_sess */

    bool *replaced;      /* per write: another real write's sent context covers its dot */
    size_t *key_maxtomb; /* per key: the tombstone write with the greatest dot */

    /* Acked writes grouped by (key, session) in session order. */
    size_t *kw, *kw_off, *kw_max, *kw_maxlive;
    struct cw_vclock *kw_ctx;
    /* Acked live writes nothing replaced, grouped the same way. */
    size_t *ku, *ku_off;
    /* Unacked writes some read returned, grouped by key. */
    size_t *kx, *kx_off;
    /* Final reads, and acked writes of every mode, grouped by key. */
    size_t *kf, *kf_off, *ka, *ka_off;
    /* First readers of each unacked write, per session. */
    size_t *rd_off, *rd_n;
    struct reader *rd;

    /* Scratch. */
    size_t *bfs_q, *bfs_parent, *path;
    uint8_t *bfs_kind, *visited, *path_kind;
    uint32_t *seen; /* n_keys * n_sess: one session's view of each key */
    uint32_t *lim;  /* n_sess */
    size_t *touched;
    bool *key_touched;
};

/* ---- small helpers ---- */

static const struct cw_history_event *ev(const struct ck *c, size_t i)
{
    return &c->h->events[i];
}

/* A write that happened: not lost in a crash before its commit. */
static bool is_real_write(const struct cw_history_event *e)
{
    return e->kind == CW_HISTORY_WRITE && !e->lost;
}

static bool is_siblings_mode(enum cw_history_mode m)
{
    return m == CW_HISTORY_SIBLINGS || m == CW_HISTORY_EVENTUAL_SIBLINGS;
}

/* Part of CO: a non-final operation on a causal key, lost writes excepted (see
 * the file comment). */
static bool is_node(const struct ck *c, size_t i)
{
    const struct cw_history_event *e = ev(c, i);
    return !(e->kind == CW_HISTORY_READ && e->final) && !(e->kind == CW_HISTORY_WRITE && e->lost) &&
           e->mode != CW_HISTORY_EVENTUAL && e->mode != CW_HISTORY_EVENTUAL_SIBLINGS;
}

/* On its session's chain: reads and acked writes (see the file comment). */
static bool is_main(const struct ck *c, size_t i)
{
    return is_node(c, i) && (ev(c, i)->kind == CW_HISTORY_READ || ev(c, i)->acked);
}

/* LWW order: ts first, origin breaks ties. */
static int dot_cmp(const struct cw_history_version *a, const struct cw_history_version *b)
{
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->origin != b->origin)
        return a->origin < b->origin ? -1 : 1;
    return 0;
}

static bool same_dot(const struct cw_history_version *a, const struct cw_history_version *b)
{
    return a->ts == b->ts && a->origin == b->origin;
}

/* A zero entry means "nothing from that region", so it never covers a dot. */
static bool covers(const struct cw_vclock *ctx, const struct cw_history_version *v)
{
    return ctx->ts[v->origin] != 0 && ctx->ts[v->origin] >= v->ts;
}

static size_t winner(const struct cw_history_event *r)
{
    size_t best = NONE;
    for (size_t j = 0; j < r->n_read; j++)
        if (best == NONE || dot_cmp(&r->read[j], &r->read[best]) > 0)
            best = j;
    return best;
}

static bool in_read(const struct cw_history_event *r, const struct cw_history_version *v)
{
    for (size_t j = 0; j < r->n_read; j++)
        if (same_dot(&r->read[j], v))
            return true;
    return false;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static size_t sort_unique_u32(uint32_t *a, size_t n)
{
    if (n == 0)
        return 0;
    qsort(a, n, sizeof(*a), cmp_u32);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (a[i] != a[m - 1])
            a[m++] = a[i];
    return m;
}

static uint32_t dense_index(const uint32_t *ids, size_t n, uint32_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

static int cmp_dotref(const void *a, const void *b)
{
    const struct dotref *x = a, *y = b;
    if (x->origin != y->origin)
        return x->origin < y->origin ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (x->ev > y->ev) - (x->ev < y->ev);
}

/* First index in the dot index whose dot is >= (origin, ts). */
static size_t dot_lower(const struct ck *c, uint8_t origin, uint64_t ts)
{
    size_t lo = 0, hi = c->n_dots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct dotref *d = &c->dots[mid];
        if (d->origin < origin || (d->origin == origin && d->ts < ts))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool dot_at(const struct ck *c, size_t i, const struct cw_history_version *v)
{
    return i < c->n_dots && c->dots[i].origin == v->origin && c->dots[i].ts == v->ts;
}

/* The first real write to key with v's dot, or NONE: the write v reads from. */
static size_t find_write(const struct ck *c, const struct cw_history_version *v, uint32_t key)
{
    for (size_t i = dot_lower(c, v->origin, v->ts); dot_at(c, i, v); i++)
        if (ev(c, c->dots[i].ev)->key == key)
            return c->dots[i].ev;
    return NONE;
}

static void *alloc_n(size_t n, size_t size)
{
    /* calloc rejects n * size overflow itself; never ask for zero bytes. */
    return calloc(n ? n : 1, size);
}

/* ---- bounded string building for witnesses ---- */

struct sbuf {
    char *p;
    size_t cap, len;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    if (b->len + 1 >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k >= b->cap - b->len) {
        /* Truncated: say so rather than end mid-word silently. */
        b->len = b->cap - 1;
        if (b->cap > 4)
            memcpy(b->p + b->cap - 4, "...", 4);
        return;
    }
    b->len += (size_t)k;
}

static void sb_version(struct sbuf *b, const struct cw_history_version *v)
{
    if (v->tombstone)
        sb_printf(b, "%u:%llx=del", v->origin, (unsigned long long)v->ts);
    else
        sb_printf(b, "%u:%llx=v%llu", v->origin, (unsigned long long)v->ts,
                  (unsigned long long)v->value_id);
}

static void sb_read_set(struct sbuf *b, const struct cw_history_event *r)
{
    sb_printf(b, "{");
    for (size_t j = 0; j < r->n_read; j++) {
        if (j)
            sb_printf(b, ", ");
        sb_version(b, &r->read[j]);
    }
    sb_printf(b, "}");
}

static void sb_event(struct sbuf *b, const struct cw_history *h, size_t i)
{
    const struct cw_history_event *e = &h->events[i];
    if (e->kind == CW_HISTORY_WRITE) {
        sb_printf(b, "write #%zu (session %u, region %u, key %u) ", i, e->session, e->region,
                  e->key);
        sb_version(b, &e->write);
        sb_printf(b, "%s%s", e->acked ? "" : " unacked", e->lost ? " lost" : "");
    } else if (e->final) {
        sb_printf(b, "final read #%zu (region %u, key %u) returned ", i, e->region, e->key);
        sb_read_set(b, e);
    } else {
        sb_printf(b, "read #%zu (session %u, region %u, key %u) returned ", i, e->session,
                  e->region, e->key);
        sb_read_set(b, e);
    }
}

/* ---- the report ---- */

/*
 * Counts a violation and, while fewer than CW_CHECK_STORED_MAX are stored, hands
 * back a zeroed slot to fill (*slot is NULL once the cap is reached).
 */
static int report_add(struct cw_check_report *r, enum cw_check_kind kind,
                      struct cw_check_violation **slot)
{
    *slot = NULL;
    r->n_by_kind[kind]++;
    r->total++;
    if (r->n >= CW_CHECK_STORED_MAX)
        return CW_OK;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        if (cap > CW_CHECK_STORED_MAX)
            cap = CW_CHECK_STORED_MAX;
        struct cw_check_violation *grown = realloc(r->v, cap * sizeof(*grown));
        if (grown == NULL)
            return CW_ENOMEM;
        r->v = grown;
        r->cap = cap;
    }
    *slot = &r->v[r->n++];
    memset(*slot, 0, sizeof(**slot));
    (*slot)->kind = kind;
    return CW_OK;
}

static void slot_event(struct cw_check_violation *v, size_t i)
{
    if (v->n_events < sizeof(v->events) / sizeof(v->events[0]))
        v->events[v->n_events++] = i;
}

static struct sbuf slot_buf(struct cw_check_violation *v)
{
    struct sbuf b = {v->witness, sizeof(v->witness), 0};
    v->witness[0] = '\0';
    return b;
}

/* ---- building the indices ---- */

static int validate(const struct cw_history *h)
{
    if (h->n > 0 && h->events == NULL)
        return CW_EINVAL;
    for (size_t i = 0; i < h->n; i++) {
        const struct cw_history_event *e = &h->events[i];
        if (e->region >= CW_REGIONS_MAX)
            return CW_EINVAL;
        if (e->mode != CW_HISTORY_LWW && e->mode != CW_HISTORY_SIBLINGS &&
            e->mode != CW_HISTORY_EVENTUAL && e->mode != CW_HISTORY_EVENTUAL_SIBLINGS)
            return CW_EINVAL;
        if (e->kind == CW_HISTORY_WRITE) {
            if (e->write.origin >= CW_REGIONS_MAX)
                return CW_EINVAL;
        } else if (e->kind == CW_HISTORY_READ) {
            if (e->n_read > CW_HISTORY_READ_MAX)
                return CW_EINVAL;
            for (size_t j = 0; j < e->n_read; j++)
                if (e->read[j].origin >= CW_REGIONS_MAX)
                    return CW_EINVAL;
        } else {
            return CW_EINVAL;
        }
    }
    /* Positions are uint32 and sessions are indexed by uint32. */
    if (h->n >= UINT32_MAX)
        return CW_EINVAL;
    return CW_OK;
}

static int build_sessions(struct ck *c)
{
    size_t m = 0;
    uint32_t *count = NULL;
    c->sess_ids = alloc_n(c->n, sizeof(*c->sess_ids));
    c->sess_of = alloc_n(c->n, sizeof(*c->sess_of));
    c->pos = alloc_n(c->n, sizeof(*c->pos));
    c->sess_ev = alloc_n(c->n, sizeof(*c->sess_ev));
    if (!c->sess_ids || !c->sess_of || !c->pos || !c->sess_ev)
        return CW_ENOMEM;
    for (size_t i = 0; i < c->n; i++)
        if (is_node(c, i))
            c->sess_ids[m++] = ev(c, i)->session;
    c->n_sess = sort_unique_u32(c->sess_ids, m);
    c->sess_off = alloc_n(c->n_sess + 1, sizeof(*c->sess_off));
    count = alloc_n(c->n_sess, sizeof(*count));
    if (!c->sess_off || !count) {
        free(count);
        return CW_ENOMEM;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (!is_node(c, i)) {
            c->sess_of[i] = UINT32_MAX;
            continue;
        }
        uint32_t s = dense_index(c->sess_ids, c->n_sess, ev(c, i)->session);
        c->sess_of[i] = s;
        c->pos[i] = ++count[s];
    }
    for (size_t s = 0; s < c->n_sess; s++)
        c->sess_off[s + 1] = c->sess_off[s] + count[s];
    for (size_t i = 0; i < c->n; i++)
        if (is_node(c, i))
            c->sess_ev[c->sess_off[c->sess_of[i]] + c->pos[i] - 1] = i;
    free(count);
    return CW_OK;
}

static int build_keys(struct ck *c)
{
    c->key_ids = alloc_n(c->n, sizeof(*c->key_ids));
    c->key_of = alloc_n(c->n, sizeof(*c->key_of));
    if (!c->key_ids || !c->key_of)
        return CW_ENOMEM;
    for (size_t i = 0; i < c->n; i++)
        c->key_ids[i] = ev(c, i)->key;
    c->n_keys = sort_unique_u32(c->key_ids, c->n);
    for (size_t i = 0; i < c->n; i++)
        c->key_of[i] = dense_index(c->key_ids, c->n_keys, ev(c, i)->key);
    return CW_OK;
}

static int build_dots(struct ck *c)
{
    c->dots = alloc_n(c->n, sizeof(*c->dots));
    if (!c->dots)
        return CW_ENOMEM;
    /* Lost writes are left out: no read can return them, nothing is replaced or
     * explained by them. */
    for (size_t i = 0; i < c->n; i++) {
        const struct cw_history_event *e = ev(c, i);
        if (is_real_write(e))
            c->dots[c->n_dots++] = (struct dotref){e->write.ts, e->write.origin, i};
    }
    if (c->n_dots > 0)
        qsort(c->dots, c->n_dots, sizeof(*c->dots), cmp_dotref);
    return CW_OK;
}

/*
 * Emits every CO edge: session order along each session's main chain (an unacked
 * write gets an edge in but none out) and reads-from (write -> read returning its
 * dot for the same key). With NULL arrays it only counts.
 */
static size_t gen_edges(const struct ck *c, size_t *from, size_t *to, uint8_t *kind)
{
    size_t m = 0;
    for (size_t s = 0; s < c->n_sess; s++) {
        size_t last_main = NONE;
        for (size_t k = c->sess_off[s]; k < c->sess_off[s + 1]; k++) {
            size_t e = c->sess_ev[k];
            if (last_main != NONE) {
                if (from) {
                    from[m] = last_main;
                    to[m] = e;
                    kind[m] = EDGE_SO;
                }
                m++;
            }
            if (is_main(c, e))
                last_main = e;
        }
    }
    for (size_t r = 0; r < c->n; r++) {
        const struct cw_history_event *re = ev(c, r);
        if (re->kind != CW_HISTORY_READ || !is_node(c, r))
            continue;
        for (size_t j = 0; j < re->n_read; j++) {
            const struct cw_history_version *v = &re->read[j];
            for (size_t i = dot_lower(c, v->origin, v->ts); dot_at(c, i, v); i++) {
                size_t w = c->dots[i].ev;
                if (ev(c, w)->key != re->key || !is_node(c, w))
                    continue;
                if (from) {
                    from[m] = w;
                    to[m] = r;
                    kind[m] = EDGE_RF;
                }
                m++;
            }
        }
    }
    return m;
}

/* Lays (from, to, kind) out as adjacency lists keyed by 'by' (either end). */
static void csr(size_t n, size_t m, const size_t *by, const size_t *other, const uint8_t *kind,
                size_t *off, size_t *adj, uint8_t *adj_kind)
{
    for (size_t i = 0; i < m; i++)
        off[by[i] + 1]++;
    for (size_t i = 0; i < n; i++)
        off[i + 1] += off[i];
    /* off[x] is used as the fill cursor of list x, so lists keep generation order. */
    for (size_t i = 0; i < m; i++) {
        size_t at = off[by[i]]++;
        adj[at] = other[i];
        adj_kind[at] = kind[i];
    }
    /* Each cursor now sits at the next list's start: shift them back. */
    for (size_t i = n; i > 0; i--)
        off[i] = off[i - 1];
    off[0] = 0;
}

static int build_graph(struct ck *c)
{
    int rc = CW_ENOMEM;
    size_t *from = NULL, *to = NULL;
    uint8_t *kind = NULL;

    c->n_edges = gen_edges(c, NULL, NULL, NULL);
    from = alloc_n(c->n_edges, sizeof(*from));
    to = alloc_n(c->n_edges, sizeof(*to));
    kind = alloc_n(c->n_edges, sizeof(*kind));
    c->out_off = alloc_n(c->n + 1, sizeof(*c->out_off));
    c->in_off = alloc_n(c->n + 1, sizeof(*c->in_off));
    c->out_to = alloc_n(c->n_edges, sizeof(*c->out_to));
    c->in_from = alloc_n(c->n_edges, sizeof(*c->in_from));
    c->out_kind = alloc_n(c->n_edges, sizeof(*c->out_kind));
    c->in_kind = alloc_n(c->n_edges, sizeof(*c->in_kind));
    if (!from || !to || !kind || !c->out_off || !c->in_off || !c->out_to || !c->in_from ||
        !c->out_kind || !c->in_kind)
        goto cleanup;
    gen_edges(c, from, to, kind);
    csr(c->n, c->n_edges, from, to, kind, c->out_off, c->out_to, c->out_kind);
    csr(c->n, c->n_edges, to, from, kind, c->in_off, c->in_from, c->in_kind);
    rc = CW_OK;
cleanup:
    free(from);
    free(to);
    free(kind);
    return rc;
}

/* Kahn's algorithm; the order doubles as the queue. Leaves indeg nonzero exactly
 * on the events it could not order (those on or after a cycle). */
static int topo_sort(struct ck *c)
{
    c->indeg = alloc_n(c->n, sizeof(*c->indeg));
    c->topo = alloc_n(c->n, sizeof(*c->topo));
    if (!c->indeg || !c->topo)
        return CW_ENOMEM;
    size_t head = 0, tail = 0;
    for (size_t e = 0; e < c->n; e++) {
        if (!is_node(c, e))
            continue;
        c->n_nodes++;
        c->indeg[e] = c->in_off[e + 1] - c->in_off[e];
        if (c->indeg[e] == 0)
            c->topo[tail++] = e;
    }
    while (head < tail) {
        size_t a = c->topo[head++];
        for (size_t i = c->out_off[a]; i < c->out_off[a + 1]; i++)
            if (--c->indeg[c->out_to[i]] == 0)
                c->topo[tail++] = c->out_to[i];
    }
    c->n_topo = tail;
    return CW_OK;
}

/* past(e)[s] = highest main-chain position of session s in e's causal past. */
static int compute_past(struct ck *c)
{
    size_t S = c->n_sess;
    c->past = alloc_n(c->n, S * sizeof(*c->past));
    if (!c->past)
        return CW_ENOMEM;
    for (size_t t = 0; t < c->n_topo; t++) {
        size_t e = c->topo[t];
        uint32_t *row = c->past + e * S;
        for (size_t i = c->in_off[e]; i < c->in_off[e + 1]; i++) {
            const uint32_t *pr = c->past + c->in_from[i] * S;
            for (size_t s = 0; s < S; s++)
                if (pr[s] > row[s])
                    row[s] = pr[s];
        }
        if (is_main(c, e) && c->pos[e] > row[c->sess_of[e]])
            row[c->sess_of[e]] = c->pos[e];
    }
    return CW_OK;
}

/* For each unacked write, the first read of it in each session (reads are visited
 * in array order, which is session order). */
static int build_readers(struct ck *c)
{
    c->rd_off = alloc_n(c->n + 1, sizeof(*c->rd_off));
    c->rd_n = alloc_n(c->n, sizeof(*c->rd_n));
    if (!c->rd_off || !c->rd_n)
        return CW_ENOMEM;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t r = 0; r < c->n; r++) {
            const struct cw_history_event *re = ev(c, r);
            if (re->kind != CW_HISTORY_READ || !is_node(c, r))
                continue;
            for (size_t j = 0; j < re->n_read; j++) {
                const struct cw_history_version *v = &re->read[j];
                for (size_t i = dot_lower(c, v->origin, v->ts); dot_at(c, i, v); i++) {
                    size_t u = c->dots[i].ev;
                    /* Only CO writes off the main chain: the unacked ones. */
                    if (ev(c, u)->key != re->key || !is_node(c, u) || is_main(c, u))
                        continue;
                    if (pass == 0) {
                        c->rd_off[u + 1]++;
                        continue;
                    }
                    struct reader *list = c->rd + c->rd_off[u];
                    size_t k = 0;
                    while (k < c->rd_n[u] && list[k].sess != c->sess_of[r])
                        k++;
                    if (k == c->rd_n[u])
                        list[c->rd_n[u]++] = (struct reader){c->sess_of[r], c->pos[r]};
                }
            }
        }
        if (pass == 0) {
            for (size_t i = 0; i < c->n; i++)
                c->rd_off[i + 1] += c->rd_off[i];
            c->rd = alloc_n(c->rd_off[c->n], sizeof(*c->rd));
            if (!c->rd)
                return CW_ENOMEM;
        }
    }
    return CW_OK;
}

/*
 * replaced[w]: some other real write to the key was sent with a key context
 * covering w's dot. The sent context, not the stored one: in a correct store the
 * stored context only adds contexts of versions the sent one covers (closing, see
 * docs/consistency.md 2.4), so both give the same replaced set over all real
 * writes, but a store that widened a stored context would excuse its own loss.
 * Lost writes are not in the dot index, so they replace nothing. Per (key,
 * origin) the best and the best from a different dot are kept, so each write is
 * answered without scanning the others.
 */
static int build_replaced(struct ck *c)
{
    int rc = CW_ENOMEM;
    size_t cells = c->n_keys * CW_REGIONS_MAX;
    uint64_t *b1 = alloc_n(cells, sizeof(*b1));
    uint64_t *b2 = alloc_n(cells, sizeof(*b2));
    size_t *w1 = alloc_n(cells, sizeof(*w1));
    c->replaced = alloc_n(c->n, sizeof(*c->replaced));
    c->key_maxtomb = alloc_n(c->n_keys, sizeof(*c->key_maxtomb));
    if (!b1 || !b2 || !w1 || !c->replaced || !c->key_maxtomb)
        goto cleanup;
    for (size_t i = 0; i < cells; i++)
        w1[i] = NONE;
    for (size_t k = 0; k < c->n_keys; k++)
        c->key_maxtomb[k] = NONE;
    for (size_t d = 0; d < c->n_dots; d++) {
        size_t x = c->dots[d].ev, k = c->key_of[x];
        const struct cw_history_version *xv = &ev(c, x)->write;
        const struct cw_vclock *xs = &ev(c, x)->sent_kctx;
        for (size_t o = 0; o < CW_REGIONS_MAX; o++) {
            if (w1[k * CW_REGIONS_MAX + o] == NONE || xs->ts[o] > b1[k * CW_REGIONS_MAX + o]) {
                b1[k * CW_REGIONS_MAX + o] = xs->ts[o];
                w1[k * CW_REGIONS_MAX + o] = x;
            }
        }
        size_t *mt = &c->key_maxtomb[k];
        if (xv->tombstone && (*mt == NONE || dot_cmp(xv, &ev(c, *mt)->write) > 0))
            *mt = x;
    }
    for (size_t d = 0; d < c->n_dots; d++) {
        size_t x = c->dots[d].ev, k = c->key_of[x];
        const struct cw_history_version *xv = &ev(c, x)->write;
        const struct cw_vclock *xs = &ev(c, x)->sent_kctx;
        for (size_t o = 0; o < CW_REGIONS_MAX; o++) {
            size_t at = k * CW_REGIONS_MAX + o;
            if (!same_dot(xv, &ev(c, w1[at])->write) && xs->ts[o] > b2[at])
                b2[at] = xs->ts[o];
        }
    }
    for (size_t d = 0; d < c->n_dots; d++) {
        size_t w = c->dots[d].ev;
        const struct cw_history_version *wv = &ev(c, w)->write;
        size_t at = c->key_of[w] * CW_REGIONS_MAX + wv->origin;
        uint64_t cover = same_dot(wv, &ev(c, w1[at])->write) ? b2[at] : b1[at];
        c->replaced[w] = cover != 0 && cover >= wv->ts;
    }
    rc = CW_OK;
cleanup:
    free(b1);
    free(b2);
    free(w1);
    return rc;
}

typedef bool (*pick_fn)(const struct ck *c, size_t e);
typedef size_t (*group_fn)(const struct ck *c, size_t e);

/* Counting sort of the picked events into n_groups groups, array order kept. */
static int bucket(const struct ck *c, size_t n_groups, pick_fn pick, group_fn group, size_t **arr,
                  size_t **off)
{
    *off = alloc_n(n_groups + 1, sizeof(**off));
    if (!*off)
        return CW_ENOMEM;
    for (size_t e = 0; e < c->n; e++)
        if (pick(c, e))
            (*off)[group(c, e) + 1]++;
    for (size_t g = 0; g < n_groups; g++)
        (*off)[g + 1] += (*off)[g];
    *arr = alloc_n((*off)[n_groups], sizeof(**arr));
    if (!*arr)
        return CW_ENOMEM;
    for (size_t e = 0; e < c->n; e++)
        if (pick(c, e))
            (*arr)[(*off)[group(c, e)]++] = e;
    for (size_t g = n_groups; g > 0; g--)
        (*off)[g] = (*off)[g - 1];
    (*off)[0] = 0;
    return CW_OK;
}

static bool pick_acked(const struct ck *c, size_t e)
{
    return ev(c, e)->kind == CW_HISTORY_WRITE && is_main(c, e);
}

static bool pick_unreplaced(const struct ck *c, size_t e)
{
    return pick_acked(c, e) && !ev(c, e)->write.tombstone && !c->replaced[e];
}

static bool pick_observed_unacked(const struct ck *c, size_t e)
{
    return ev(c, e)->kind == CW_HISTORY_WRITE && is_node(c, e) && !is_main(c, e) && c->rd_n[e] > 0;
}

/* Acked writes that happened; an acked lost write is reported by check_lost. */
static bool pick_acked_any(const struct ck *c, size_t e)
{
    return is_real_write(ev(c, e)) && ev(c, e)->acked;
}

static bool pick_final(const struct ck *c, size_t e)
{
    return ev(c, e)->kind == CW_HISTORY_READ && ev(c, e)->final;
}

static size_t group_key_sess(const struct ck *c, size_t e)
{
    return (size_t)c->key_of[e] * c->n_sess + c->sess_of[e];
}

static size_t group_key(const struct ck *c, size_t e)
{
    return c->key_of[e];
}

static int build_groups(struct ck *c)
{
    int rc;
    if (c->n_sess != 0 && c->n_keys > SIZE_MAX / c->n_sess - 1)
        return CW_ENOMEM;
    size_t G = c->n_keys * c->n_sess;
    if ((rc = bucket(c, G, pick_acked, group_key_sess, &c->kw, &c->kw_off)) != CW_OK)
        return rc;
    if ((rc = bucket(c, G, pick_unreplaced, group_key_sess, &c->ku, &c->ku_off)) != CW_OK)
        return rc;
    if ((rc = bucket(c, c->n_keys, pick_observed_unacked, group_key, &c->kx, &c->kx_off)) != CW_OK)
        return rc;
    if ((rc = bucket(c, c->n_keys, pick_final, group_key, &c->kf, &c->kf_off)) != CW_OK)
        return rc;
    if ((rc = bucket(c, c->n_keys, pick_acked_any, group_key, &c->ka, &c->ka_off)) != CW_OK)
        return rc;
    size_t m = c->kw_off[G];
    c->kw_max = alloc_n(m, sizeof(*c->kw_max));
    c->kw_maxlive = alloc_n(m, sizeof(*c->kw_maxlive));
    c->kw_ctx = alloc_n(m, sizeof(*c->kw_ctx));
    if (!c->kw_max || !c->kw_maxlive || !c->kw_ctx)
        return CW_ENOMEM;
    for (size_t g = 0; g < G; g++) {
        for (size_t i = c->kw_off[g]; i < c->kw_off[g + 1]; i++) {
            const struct cw_history_version *wv = &ev(c, c->kw[i])->write;
            bool first = i == c->kw_off[g];
            size_t mx = first ? NONE : c->kw_max[i - 1];
            size_t ml = first ? NONE : c->kw_maxlive[i - 1];
            if (mx == NONE || dot_cmp(wv, &ev(c, mx)->write) > 0)
                mx = c->kw[i];
            if (!wv->tombstone && (ml == NONE || dot_cmp(wv, &ev(c, ml)->write) > 0))
                ml = c->kw[i];
            c->kw_max[i] = mx;
            c->kw_maxlive[i] = ml;
            if (first)
                cw_vc_zero(&c->kw_ctx[i]);
            else
                c->kw_ctx[i] = c->kw_ctx[i - 1];
            cw_vc_join(&c->kw_ctx[i], &wv->kctx);
        }
    }
    return CW_OK;
}

static int build_scratch(struct ck *c)
{
    c->bfs_q = alloc_n(c->n, sizeof(*c->bfs_q));
    c->bfs_parent = alloc_n(c->n, sizeof(*c->bfs_parent));
    c->bfs_kind = alloc_n(c->n, sizeof(*c->bfs_kind));
    c->visited = alloc_n(c->n, sizeof(*c->visited));
    c->path = alloc_n(c->n + 1, sizeof(*c->path));
    c->path_kind = alloc_n(c->n + 1, sizeof(*c->path_kind));
    c->seen = alloc_n(c->n_keys, c->n_sess * sizeof(*c->seen));
    c->lim = alloc_n(c->n_sess, sizeof(*c->lim));
    c->touched = alloc_n(c->n_keys, sizeof(*c->touched));
    c->key_touched = alloc_n(c->n_keys, sizeof(*c->key_touched));
    if (!c->bfs_q || !c->bfs_parent || !c->bfs_kind || !c->visited || !c->path || !c->path_kind ||
        !c->seen || !c->lim || !c->touched || !c->key_touched)
        return CW_ENOMEM;
    return CW_OK;
}

static void ck_free(struct ck *c)
{
    void *all[] = {c->sess_ids,  c->sess_of,    c->pos,        c->sess_off,    c->sess_ev,
                   c->key_ids,   c->key_of,     c->dots,       c->out_off,     c->out_to,
                   c->out_kind,  c->in_off,     c->in_from,    c->in_kind,     c->indeg,
                   c->topo,      c->past,       c->replaced,   c->key_maxtomb, c->kw,
                   c->kw_off,    c->kw_max,     c->kw_maxlive, c->kw_ctx,      c->ku,
                   c->ku_off,    c->kx,         c->kx_off,     c->kf,          c->kf_off,
                   c->ka,        c->ka_off,     c->rd_off,     c->rd_n,        c->rd,
                   c->bfs_q,     c->bfs_parent, c->path,       c->bfs_kind,    c->visited,
                   c->path_kind, c->seen,       c->lim,        c->touched,     c->key_touched};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]);
    memset(c, 0, sizeof(*c));
}

/* ---- CO paths ---- */

/*
 * Shortest CO path src -> ... -> dst of at least one edge (so src == dst finds a
 * shortest cycle through src). With in_cycle only events Kahn left unordered are
 * used. Leaves the events in c->path, the edge kinds in c->path_kind (kind i is
 * the edge path[i] -> path[i + 1]) and returns the event count; 0 if none.
 */
static size_t bfs_path(struct ck *c, size_t src, size_t dst, bool in_cycle)
{
    size_t head = 0, tail = 0, last = NONE;
    uint8_t last_kind = 0;
    memset(c->visited, 0, c->n);
    c->bfs_q[tail++] = src;
    c->visited[src] = 1;
    while (head < tail && last == NONE) {
        size_t a = c->bfs_q[head++];
        for (size_t i = c->out_off[a]; i < c->out_off[a + 1]; i++) {
            size_t b = c->out_to[i];
            if (in_cycle && c->indeg[b] == 0)
                continue;
            if (b == dst) {
                last = a;
                last_kind = c->out_kind[i];
                break;
            }
            if (!c->visited[b]) {
                c->visited[b] = 1;
                c->bfs_parent[b] = a;
                c->bfs_kind[b] = c->out_kind[i];
                c->bfs_q[tail++] = b;
            }
        }
    }
    if (last == NONE)
        return 0;
    size_t len = 2;
    for (size_t x = last; x != src; x = c->bfs_parent[x])
        len++;
    size_t i = len - 1;
    c->path[i] = dst;
    c->path_kind[i - 1] = last_kind;
    for (size_t x = last;; x = c->bfs_parent[x]) {
        c->path[--i] = x;
        if (x == src)
            break;
        c->path_kind[i - 1] = c->bfs_kind[x];
    }
    return len;
}

static void sb_path(struct sbuf *b, const struct ck *c, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (i)
            sb_printf(b, " -%s-> ", c->path_kind[i - 1] == EDGE_SO ? "so" : "rf");
        sb_printf(b, "#%zu", c->path[i]);
    }
}

/* ---- the checks ---- */

/* A lost write to key with v's dot, or NONE (for witnesses only: a linear scan). */
static size_t find_lost(const struct ck *c, const struct cw_history_version *v, uint32_t key)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct cw_history_event *e = ev(c, i);
        if (e->kind == CW_HISTORY_WRITE && e->lost && e->key == key && same_dot(&e->write, v))
            return i;
    }
    return NONE;
}

static int check_thin_air(struct ck *c)
{
    for (size_t r = 0; r < c->n; r++) {
        const struct cw_history_event *re = ev(c, r);
        if (re->kind != CW_HISTORY_READ)
            continue;
        for (size_t j = 0; j < re->n_read; j++) {
            const struct cw_history_version *v = &re->read[j];
            size_t first = NONE;
            bool ok = false;
            for (size_t i = dot_lower(c, v->origin, v->ts); dot_at(c, i, v) && !ok; i++) {
                const struct cw_history_event *we = ev(c, c->dots[i].ev);
                if (first == NONE)
                    first = c->dots[i].ev;
                ok = we->key == re->key && we->write.tombstone == v->tombstone &&
                     (v->tombstone || we->write.value_id == v->value_id);
            }
            if (ok)
                continue;
            struct cw_check_violation *slot;
            int rc = report_add(c->rep, CW_CHECK_THIN_AIR, &slot);
            if (rc != CW_OK)
                return rc;
            if (slot) {
                struct sbuf b = slot_buf(slot);
                slot_event(slot, r);
                sb_event(&b, c->h, r);
                sb_printf(&b, "; version ");
                sb_version(&b, v);
                size_t lost = first == NONE ? find_lost(c, v, re->key) : NONE;
                if (lost != NONE) {
                    slot_event(slot, lost);
                    sb_printf(&b, " belongs only to ");
                    sb_event(&b, c->h, lost);
                    sb_printf(&b, ", which was lost in a crash before its commit and so never "
                                  "happened");
                } else if (first == NONE) {
                    sb_printf(&b, " was never written");
                } else {
                    slot_event(slot, first);
                    sb_printf(&b, " does not match ");
                    sb_event(&b, c->h, first);
                }
            }
            break; /* one report per read */
        }
    }
    return CW_OK;
}

static unsigned n_regions(const struct ck *c)
{
    return c->h->n_regions && c->h->n_regions <= CW_REGIONS_MAX ? c->h->n_regions : CW_REGIONS_MAX;
}

/*
 * Key contexts: on a siblings key a write's stored context includes the one its
 * client sent (the region only closes it, adding what covered versions had
 * replaced), and every read returns a version with exactly the context its write
 * stored. A version whose write cannot be matched is thin-air's business.
 */
static int check_contexts(struct ck *c)
{
    char a[CW_VC_TEXT_MAX], b2[CW_VC_TEXT_MAX];
    unsigned nr = n_regions(c);
    for (size_t i = 0; i < c->n; i++) {
        const struct cw_history_event *e = ev(c, i);
        if (e->kind == CW_HISTORY_WRITE) {
            if (e->lost || !is_siblings_mode(e->mode) ||
                cw_vc_dominates(&e->write.kctx, &e->sent_kctx))
                continue;
            struct cw_check_violation *slot;
            int rc = report_add(c->rep, CW_CHECK_CONTEXT, &slot);
            if (rc != CW_OK)
                return rc;
            if (slot) {
                struct sbuf b = slot_buf(slot);
                slot_event(slot, i);
                sb_event(&b, c->h, i);
                sb_printf(&b,
                          " stored key context %s, which lacks part of the context %s its "
                          "client sent",
                          cw_vc_format(&e->write.kctx, nr, a), cw_vc_format(&e->sent_kctx, nr, b2));
            }
            continue;
        }
        for (size_t j = 0; j < e->n_read; j++) {
            const struct cw_history_version *v = &e->read[j];
            size_t z = find_write(c, v, e->key);
            if (z == NONE)
                continue;
            const struct cw_history_version *zv = &ev(c, z)->write;
            if (zv->tombstone != v->tombstone || (!v->tombstone && zv->value_id != v->value_id))
                continue; /* thin-air */
            if (cw_vc_compare(&v->kctx, &zv->kctx) == CW_VC_EQUAL)
                continue;
            struct cw_check_violation *slot;
            int rc = report_add(c->rep, CW_CHECK_CONTEXT, &slot);
            if (rc != CW_OK)
                return rc;
            if (slot) {
                struct sbuf b = slot_buf(slot);
                slot_event(slot, i);
                slot_event(slot, z);
                sb_event(&b, c->h, i);
                sb_printf(&b, "; returned version ");
                sb_version(&b, v);
                sb_printf(&b, " carries key context %s, but ", cw_vc_format(&v->kctx, nr, a));
                sb_event(&b, c->h, z);
                sb_printf(&b, " stored it with key context %s", cw_vc_format(&zv->kctx, nr, b2));
            }
            break; /* one report per read */
        }
    }
    return CW_OK;
}

static int check_siblings(struct ck *c)
{
    for (size_t r = 0; r < c->n; r++) {
        const struct cw_history_event *re = ev(c, r);
        if (re->kind != CW_HISTORY_READ)
            continue;
        size_t bad = NONE, by = NONE;
        if (re->mode == CW_HISTORY_SIBLINGS || re->mode == CW_HISTORY_EVENTUAL_SIBLINGS) {
            for (size_t i = 0; i < re->n_read && bad == NONE; i++) {
                for (size_t j = 0; j < re->n_read; j++) {
                    if (j == i)
                        continue;
                    bool dup = same_dot(&re->read[i], &re->read[j]);
                    if (dup || covers(&re->read[j].kctx, &re->read[i])) {
                        bad = i;
                        by = j;
                        break;
                    }
                }
            }
        } else if (re->n_read > 1) {
            bad = 1;
        }
        if (bad == NONE)
            continue;
        struct cw_check_violation *slot;
        int rc = report_add(c->rep, CW_CHECK_SIBLINGS, &slot);
        if (rc != CW_OK)
            return rc;
        if (!slot)
            continue;
        struct sbuf b = slot_buf(slot);
        slot_event(slot, r);
        sb_event(&b, c->h, r);
        if (by == NONE) {
            sb_printf(&b, "; %u versions for a last-writer-wins key", re->n_read);
        } else if (same_dot(&re->read[bad], &re->read[by])) {
            sb_printf(&b, "; dot %u:%llx is returned twice", re->read[bad].origin,
                      (unsigned long long)re->read[bad].ts);
        } else {
            char ctx[CW_VC_TEXT_MAX];
            unsigned nr = n_regions(c);
            sb_printf(&b, "; version ");
            sb_version(&b, &re->read[bad]);
            sb_printf(&b, " is replaced by returned version ");
            sb_version(&b, &re->read[by]);
            sb_printf(&b, " (context %s) yet still returned",
                      cw_vc_format(&re->read[by].kctx, nr, ctx));
        }
    }
    return CW_OK;
}

static int check_cycle(struct ck *c)
{
    if (c->n_topo == c->n_nodes)
        return CW_OK;
    size_t x = 0;
    while (c->indeg[x] == 0)
        x++;
    /* Walk back along unordered predecessors; the first repeat lies on a cycle. */
    memset(c->visited, 0, c->n);
    while (!c->visited[x]) {
        c->visited[x] = 1;
        for (size_t i = c->in_off[x]; i < c->in_off[x + 1]; i++) {
            if (c->indeg[c->in_from[i]] != 0) {
                x = c->in_from[i];
                break;
            }
        }
    }
    size_t len = bfs_path(c, x, x, true);
    struct cw_check_violation *slot;
    int rc = report_add(c->rep, CW_CHECK_CYCLE, &slot);
    if (rc != CW_OK || !slot)
        return rc;
    struct sbuf b = slot_buf(slot);
    for (size_t i = 0; i + 1 < len; i++)
        slot_event(slot, c->path[i]);
    sb_printf(
        &b, "causal order has a cycle (%zu events are on or after one): ", c->n_nodes - c->n_topo);
    sb_path(&b, c, len);
    for (size_t i = 0; i + 1 < len; i++) {
        sb_printf(&b, "; ");
        sb_event(&b, c->h, c->path[i]);
    }
    return CW_OK;
}

static bool in_set(const struct ck *c, size_t w, const struct vset *set)
{
    if (is_main(c, w))
        return c->pos[w] <= set->row[c->sess_of[w]];
    if (!set->unacked)
        return false;
    for (size_t i = c->rd_off[w]; i < c->rd_off[w] + c->rd_n[w]; i++) {
        const struct reader *rd = &c->rd[i];
        if (rd->pos <= set->row[rd->sess])
            return true;
        if (rd->sess == set->direct_sess && rd->pos < set->direct_pos)
            return true;
    }
    return false;
}

/* End of the prefix of arr[a, b) (sorted by position) with position <= lim. */
static size_t prefix_end(const struct ck *c, const size_t *arr, size_t a, size_t b, uint32_t lim)
{
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (c->pos[arr[mid]] <= lim)
            a = mid + 1;
        else
            b = mid;
    }
    return a;
}

/* LWW: does a read whose winner is x (NULL: nothing found) miss write w? */
static bool lww_misses(const struct ck *c, const struct cw_history_version *x, size_t w, size_t k)
{
    const struct cw_history_version *wv = &ev(c, w)->write;
    if (x)
        return dot_cmp(x, wv) < 0;
    if (wv->tombstone)
        return false;
    /* A greater delete, garbage-collected since, would explain the not-found. */
    size_t d = c->key_maxtomb[k];
    return d == NONE || dot_cmp(&ev(c, d)->write, wv) <= 0;
}

/* Finds a write of r's key in set that r fails to reflect (see checker.h). */
static bool find_miss(const struct ck *c, size_t r, const struct vset *set, struct miss *m)
{
    const struct cw_history_event *re = ev(c, r);
    size_t S = c->n_sess, k = c->key_of[r], g0 = k * S;
    if (re->mode == CW_HISTORY_LWW) {
        size_t xi = winner(re);
        const struct cw_history_version *x = xi == NONE ? NULL : &re->read[xi];
        m->rule = x ? MISS_LWW_OLDER : MISS_LWW_NONE;
        m->vj = xi;
        for (size_t s = 0; s < S; s++) {
            if (set->row[s] == 0)
                continue;
            size_t a = c->kw_off[g0 + s];
            size_t b = prefix_end(c, c->kw, a, c->kw_off[g0 + s + 1], set->row[s]);
            if (b == a)
                continue;
            /* Both tests grow with w's dot, so the prefix maximum decides. */
            size_t cand = x ? c->kw_max[b - 1] : c->kw_maxlive[b - 1];
            if (cand != NONE && lww_misses(c, x, cand, k)) {
                m->w = cand;
                return true;
            }
        }
        for (size_t i = c->kx_off[k]; i < c->kx_off[k + 1]; i++) {
            size_t u = c->kx[i];
            if (lww_misses(c, x, u, k) && in_set(c, u, set)) {
                m->w = u;
                return true;
            }
        }
        return false;
    }
    /* SIBLINGS, first: every unreplaced live write in the set must be returned. */
    m->rule = MISS_SIB_ABSENT;
    m->vj = NONE;
    for (size_t s = 0; s < S; s++) {
        for (size_t i = c->ku_off[g0 + s]; i < c->ku_off[g0 + s + 1]; i++) {
            size_t w = c->ku[i];
            if (c->pos[w] > set->row[s])
                break;
            if (!in_read(re, &ev(c, w)->write)) {
                m->w = w;
                return true;
            }
        }
    }
    for (size_t i = c->kx_off[k]; i < c->kx_off[k + 1]; i++) {
        size_t u = c->kx[i];
        const struct cw_history_version *uv = &ev(c, u)->write;
        if (!uv->tombstone && !c->replaced[u] && !in_read(re, uv) && in_set(c, u, set)) {
            m->w = u;
            return true;
        }
    }
    /* Second: no returned version may be replaced by a write in the set. */
    m->rule = MISS_SIB_REPLACED;
    for (size_t j = 0; j < re->n_read; j++) {
        const struct cw_history_version *v = &re->read[j];
        m->vj = j;
        for (size_t s = 0; s < S; s++) {
            if (set->row[s] == 0)
                continue;
            size_t a = c->kw_off[g0 + s];
            size_t b = prefix_end(c, c->kw, a, c->kw_off[g0 + s + 1], set->row[s]);
            if (b == a || !covers(&c->kw_ctx[b - 1], v))
                continue;
            /* Prefix joins only grow: binary search the first covering one. */
            size_t lo = a, hi = b - 1;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (covers(&c->kw_ctx[mid], v))
                    hi = mid;
                else
                    lo = mid + 1;
            }
            for (size_t i = lo; i < b; i++) {
                const struct cw_history_version *wv = &ev(c, c->kw[i])->write;
                if (covers(&wv->kctx, v) && !same_dot(wv, v)) {
                    m->w = c->kw[i];
                    return true;
                }
            }
        }
        for (size_t i = c->kx_off[k]; i < c->kx_off[k + 1]; i++) {
            size_t u = c->kx[i];
            const struct cw_history_version *uv = &ev(c, u)->write;
            if (covers(&uv->kctx, v) && !same_dot(uv, v) && in_set(c, u, set)) {
                m->w = u;
                return true;
            }
        }
    }
    return false;
}

/* The earliest read of r's key by r's session, before r, that reflected w. */
static size_t find_mr_read(const struct ck *c, size_t r, size_t w)
{
    size_t S = c->n_sess, s = c->sess_of[r];
    for (size_t i = c->sess_off[s]; i < c->sess_off[s] + c->pos[r] - 1; i++) {
        size_t e = c->sess_ev[i];
        const struct cw_history_event *ee = ev(c, e);
        if (ee->kind != CW_HISTORY_READ || ee->key != ev(c, r)->key)
            continue;
        for (size_t j = 0; j < ee->n_read; j++) {
            size_t z = find_write(c, &ee->read[j], ee->key);
            if (z == NONE)
                continue;
            struct vset zs = {c->past + z * S, true, UINT32_MAX, 0};
            if (z == w || in_set(c, w, &zs))
                return e;
        }
    }
    return NONE;
}

enum why { WHY_CAUSAL, WHY_RYW, WHY_MR };

static void witness_miss(struct ck *c, struct cw_check_violation *slot, size_t r,
                         const struct miss *m, enum why why)
{
    const struct cw_history_event *re = ev(c, r);
    struct sbuf b = slot_buf(slot);
    slot_event(slot, r);
    slot_event(slot, m->w);
    sb_event(&b, c->h, r);
    if (m->rule == MISS_SIB_REPLACED) {
        /* The read does hold w (or a successor); what breaks is the stale version. */
        sb_printf(&b, "; ");
        sb_event(&b, c->h, m->w);
        sb_printf(&b, " in its causal past replaces the returned ");
        sb_version(&b, &re->read[m->vj]);
        sb_printf(&b, ", yet that version is still returned");
        size_t z = find_write(c, &re->read[m->vj], re->key);
        if (z != NONE)
            slot_event(slot, z);
    } else {
        sb_printf(&b, "; it misses ");
        sb_event(&b, c->h, m->w);
        sb_printf(&b, " in its causal past");
        if (m->rule == MISS_LWW_NONE) {
            sb_printf(&b, ": it found nothing and no greater delete exists");
        } else if (m->rule == MISS_LWW_OLDER) {
            sb_printf(&b, ": the returned ");
            sb_version(&b, &re->read[m->vj]);
            sb_printf(&b, " is older");
        } else {
            sb_printf(&b, ", which no write replaced");
        }
    }
    if (why == WHY_RYW) {
        sb_printf(&b, " (read-your-writes: the session wrote it)");
    } else if (why == WHY_MR) {
        size_t e = find_mr_read(c, r, m->w);
        if (e != NONE) {
            slot_event(slot, e);
            sb_printf(&b, " (monotonic reads: the session's earlier read #%zu returned ", e);
            sb_read_set(&b, ev(c, e));
            sb_printf(&b, ")");
        }
    }
    size_t len = bfs_path(c, m->w, r, false);
    if (len > 0) {
        sb_printf(&b, "; CO path ");
        sb_path(&b, c, len);
    }
}

static int check_read(struct ck *c, size_t r)
{
    size_t S = c->n_sess, k = c->key_of[r];
    uint32_t s = c->sess_of[r];
    struct vset full = {c->past + r * S, true, UINT32_MAX, 0};
    struct miss m, m2;
    if (!find_miss(c, r, &full, &m))
        return CW_OK;
    enum cw_check_kind kind = CW_CHECK_CAUSAL_MISS;
    enum why why = WHY_CAUSAL;
    /* Narrow down: the session's own writes, then its earlier reads of the key. */
    c->lim[s] = c->pos[r] - 1;
    struct vset own = {c->lim, false, UINT32_MAX, 0};
    bool ryw = find_miss(c, r, &own, &m2);
    c->lim[s] = 0;
    if (ryw) {
        kind = CW_CHECK_SESSION;
        why = WHY_RYW;
        m = m2;
    } else {
        struct vset seen = {c->seen + k * S, true, s, c->pos[r]};
        if (find_miss(c, r, &seen, &m2)) {
            kind = CW_CHECK_SESSION;
            why = WHY_MR;
            m = m2;
        }
    }
    struct cw_check_violation *slot;
    int rc = report_add(c->rep, kind, &slot);
    if (rc == CW_OK && slot)
        witness_miss(c, slot, r, &m, why);
    return rc;
}

/*
 * Walks each session in order so that, at each read, seen[key] holds the causal
 * past of every version the session's earlier reads of that key returned.
 */
static int check_causal(struct ck *c)
{
    size_t S = c->n_sess;
    for (size_t s = 0; s < S; s++) {
        size_t n_touched = 0;
        for (size_t i = c->sess_off[s]; i < c->sess_off[s + 1]; i++) {
            size_t e = c->sess_ev[i];
            const struct cw_history_event *re = ev(c, e);
            if (re->kind != CW_HISTORY_READ)
                continue;
            if (re->mode != CW_HISTORY_EVENTUAL && re->mode != CW_HISTORY_EVENTUAL_SIBLINGS) {
                int rc = check_read(c, e);
                if (rc != CW_OK)
                    return rc;
            }
            size_t k = c->key_of[e];
            uint32_t *row = c->seen + k * S;
            for (size_t j = 0; j < re->n_read; j++) {
                size_t z = find_write(c, &re->read[j], re->key);
                if (z == NONE)
                    continue;
                const uint32_t *zr = c->past + z * S;
                for (size_t t = 0; t < S; t++)
                    if (zr[t] > row[t])
                        row[t] = zr[t];
                if (!c->key_touched[k]) {
                    c->key_touched[k] = true;
                    c->touched[n_touched++] = k;
                }
            }
        }
        for (size_t t = 0; t < n_touched; t++) {
            memset(c->seen + c->touched[t] * S, 0, S * sizeof(*c->seen));
            c->key_touched[c->touched[t]] = false;
        }
    }
    return CW_OK;
}

/* Is acked write w kept, or legitimately replaced, in final read f? */
static bool kept(const struct ck *c, size_t w, const struct cw_history_event *f)
{
    const struct cw_history_version *wv = &ev(c, w)->write;
    if (in_read(f, wv))
        return true;
    if (f->mode == CW_HISTORY_SIBLINGS || f->mode == CW_HISTORY_EVENTUAL_SIBLINGS)
        return c->replaced[w] || wv->tombstone; /* tombstones may be collected */
    size_t xi = winner(f);
    if (xi != NONE && dot_cmp(&f->read[xi], wv) > 0)
        return true;
    if (xi != NONE && !f->read[xi].tombstone)
        return false;
    size_t d = c->key_maxtomb[c->key_of[w]];
    return wv->tombstone || (d != NONE && dot_cmp(&ev(c, d)->write, wv) > 0);
}

static int check_lost(struct ck *c)
{
    /* An acknowledged write must be durable: lost in a crash, it is lost. */
    for (size_t w = 0; w < c->n; w++) {
        const struct cw_history_event *we = ev(c, w);
        if (we->kind != CW_HISTORY_WRITE || !we->lost || !we->acked)
            continue;
        struct cw_check_violation *slot;
        int rc = report_add(c->rep, CW_CHECK_LOST_WRITE, &slot);
        if (rc != CW_OK)
            return rc;
        if (slot) {
            struct sbuf b = slot_buf(slot);
            slot_event(slot, w);
            sb_printf(&b, "acked ");
            sb_event(&b, c->h, w);
            sb_printf(&b, " was lost in a crash before its commit");
        }
    }
    for (size_t k = 0; k < c->n_keys; k++) {
        if (c->kf_off[k] == c->kf_off[k + 1])
            continue;
        for (size_t i = c->ka_off[k]; i < c->ka_off[k + 1]; i++) {
            size_t w = c->ka[i];
            for (size_t fi = c->kf_off[k]; fi < c->kf_off[k + 1]; fi++) {
                size_t f = c->kf[fi];
                if (kept(c, w, ev(c, f)))
                    continue;
                struct cw_check_violation *slot;
                int rc = report_add(c->rep, CW_CHECK_LOST_WRITE, &slot);
                if (rc != CW_OK)
                    return rc;
                if (slot) {
                    struct sbuf b = slot_buf(slot);
                    slot_event(slot, w);
                    slot_event(slot, f);
                    sb_printf(&b, "acked ");
                    sb_event(&b, c->h, w);
                    sb_printf(&b, " is neither in nor replaced in ");
                    sb_event(&b, c->h, f);
                }
                break; /* once per write, not per region */
            }
        }
    }
    return CW_OK;
}

/* Sorted, de-duplicated live dots of a read. */
static size_t live_dots(const struct cw_history_event *r, struct dotref *out)
{
    size_t m = 0;
    for (size_t j = 0; j < r->n_read; j++)
        if (!r->read[j].tombstone)
            out[m++] = (struct dotref){r->read[j].ts, r->read[j].origin, 0};
    if (m > 1)
        qsort(out, m, sizeof(*out), cmp_dotref);
    size_t u = 0;
    for (size_t j = 0; j < m; j++)
        if (u == 0 || cmp_dotref(&out[u - 1], &out[j]) != 0)
            out[u++] = out[j];
    return u;
}

static int check_divergence(struct ck *c)
{
    struct dotref a[CW_HISTORY_READ_MAX], b[CW_HISTORY_READ_MAX];
    for (size_t k = 0; k < c->n_keys; k++) {
        size_t lo = c->kf_off[k], hi = c->kf_off[k + 1];
        if (hi - lo < 2)
            continue;
        size_t f0 = c->kf[lo];
        size_t na = live_dots(ev(c, f0), a);
        for (size_t fi = lo + 1; fi < hi; fi++) {
            size_t f = c->kf[fi];
            size_t nb = live_dots(ev(c, f), b);
            bool same = na == nb;
            /* Field by field: struct padding is not part of the value. */
            for (size_t j = 0; same && j < na; j++)
                same = cmp_dotref(&a[j], &b[j]) == 0;
            if (same)
                continue;
            struct cw_check_violation *slot;
            int rc = report_add(c->rep, CW_CHECK_DIVERGENCE, &slot);
            if (rc != CW_OK)
                return rc;
            if (slot) {
                struct sbuf sb = slot_buf(slot);
                slot_event(slot, f0);
                slot_event(slot, f);
                sb_printf(&sb, "regions %u and %u hold different live versions of key %u: ",
                          ev(c, f0)->region, ev(c, f)->region, ev(c, f0)->key);
                sb_event(&sb, c->h, f0);
                sb_printf(&sb, "; ");
                sb_event(&sb, c->h, f);
            }
            break; /* once per key */
        }
    }
    return CW_OK;
}

/* ---- public API ---- */

static int cmp_violation(const void *a, const void *b)
{
    const struct cw_check_violation *x = a, *y = b;
    return (x->events[0] > y->events[0]) - (x->events[0] < y->events[0]);
}

int cw_check_history(const struct cw_history *h, struct cw_check_report *out)
{
    struct ck c;
    int rc;
    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    if ((rc = validate(h)) != CW_OK)
        return rc;
    c.h = h;
    c.rep = out;
    c.n = h->n;
    if ((rc = build_sessions(&c)) != CW_OK || (rc = build_keys(&c)) != CW_OK ||
        (rc = build_dots(&c)) != CW_OK || (rc = build_graph(&c)) != CW_OK ||
        (rc = topo_sort(&c)) != CW_OK || (rc = build_readers(&c)) != CW_OK ||
        (rc = build_replaced(&c)) != CW_OK || (rc = build_groups(&c)) != CW_OK ||
        (rc = build_scratch(&c)) != CW_OK)
        goto cleanup;
    if ((rc = check_thin_air(&c)) != CW_OK || (rc = check_contexts(&c)) != CW_OK ||
        (rc = check_siblings(&c)) != CW_OK || (rc = check_cycle(&c)) != CW_OK)
        goto cleanup;
    /* The causal-past vectors need a DAG. */
    if (c.n_topo == c.n_nodes) {
        size_t first = out->n;
        if ((rc = compute_past(&c)) != CW_OK || (rc = check_causal(&c)) != CW_OK)
            goto cleanup;
        /* Sessions were walked one by one; show the reads in history order. */
        if (out->n > first)
            qsort(out->v + first, out->n - first, sizeof(*out->v), cmp_violation);
    }
    if ((rc = check_lost(&c)) != CW_OK || (rc = check_divergence(&c)) != CW_OK)
        goto cleanup;
cleanup:
    ck_free(&c);
    if (rc != CW_OK)
        cw_check_report_free(out);
    return rc;
}

void cw_check_report_free(struct cw_check_report *r)
{
    free(r->v);
    memset(r, 0, sizeof(*r));
}

const char *cw_check_kind_name(enum cw_check_kind k)
{
    switch (k) {
    case CW_CHECK_THIN_AIR:
        return "thin-air";
    case CW_CHECK_CYCLE:
        return "cycle";
    case CW_CHECK_CAUSAL_MISS:
        return "causal-miss";
    case CW_CHECK_SESSION:
        return "session";
    case CW_CHECK_LOST_WRITE:
        return "lost-write";
    case CW_CHECK_SIBLINGS:
        return "siblings";
    case CW_CHECK_DIVERGENCE:
        return "divergence";
    case CW_CHECK_CONTEXT:
        return "context";
    }
    return "unknown";
}

void cw_check_report_print(const struct cw_check_report *r, const struct cw_history *h, FILE *f,
                           size_t max_shown)
{
    fprintf(f, "checker: %zu violation%s (", r->total, r->total == 1 ? "" : "s");
    for (int k = 0; k < CW_CHECK_KINDS; k++)
        fprintf(f, "%s%s %zu", k ? ", " : "", cw_check_kind_name((enum cw_check_kind)k),
                r->n_by_kind[k]);
    fprintf(f, ")\n");
    size_t shown = 0;
    for (size_t i = 0; i < r->n && shown < max_shown; i++, shown++) {
        const struct cw_check_violation *v = &r->v[i];
        fprintf(f, "  [%zu] %s: %s\n", i + 1, cw_check_kind_name(v->kind), v->witness);
        if (h == NULL)
            continue;
        for (unsigned j = 0; j < v->n_events; j++) {
            char line[CW_CHECK_WITNESS_MAX];
            struct sbuf b = {line, sizeof(line), 0};
            line[0] = '\0';
            if (v->events[j] >= h->n)
                continue;
            sb_event(&b, h, v->events[j]);
            fprintf(f, "      %s\n", line);
        }
    }
    if (r->total > shown)
        fprintf(f, "  ... %zu more not shown\n", r->total - shown);
}
