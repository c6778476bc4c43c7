/*
 * node.c - routing by bucket policy and one merged ready set per round.
 */
#include "core/node.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/cw_assert.h"

struct cw_node {
    struct cw_node_config cfg;
    struct cw_replica *replica;
    struct cw_strong *strong; /* NULL when no bucket is strong */
    struct cw_rand rand;
    uint64_t rand_fallback; /* state of the fixed sequence when cfg.rand.next is NULL */
    /* Replies the node decides itself (routing errors); owned here. */
    struct cw_reply *own;
    size_t n_own, cap_own;
    /* The merged view handed out by cw_node_ready: shallow copies of the parts'
     * effects, which stay owned by the parts until advance. */
    struct cw_ready merged;
    struct cw_reply *merged_replies;
    size_t cap_merged_replies;
    struct cw_persist *merged_persist;
    size_t cap_merged_persist;
    struct cw_msg *merged_msgs;
    size_t cap_merged_msgs;
    bool strong_in_ready;
    bool in_ready;
};

static uint64_t node_rand_next(void *ctx)
{
    return cw_node_draw(ctx);
}

struct cw_node *cw_node_create(const struct cw_node_config *cfg)
{
    struct cw_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->cfg = *cfg;
    n->replica = cw_replica_create(&cfg->replica);
    if (n->replica == NULL) {
        free(n);
        return NULL;
    }
    /* The replica copied the buckets; point the node's copy of the config at
     * them so nothing here borrows the caller's array. */
    n->cfg.replica.buckets = NULL;
    n->cfg.replica.n_buckets = 0;
    n->rand = cfg->rand;
    n->rand_fallback = 0x9e3779b97f4a7c15ull ^ cfg->replica.region;
    bool any_strong = false;
    for (unsigned i = 0; i < cfg->replica.n_buckets; i++)
        any_strong |= cfg->replica.buckets[i].consistency == CW_STRONG;
    if (any_strong) {
        struct cw_strong_config sc = cfg->strong;
        sc.raft.id = cfg->replica.region;
        sc.raft.n = cfg->replica.n_regions;
        sc.raft.rand.next = node_rand_next;
        sc.raft.rand.ctx = n;
        if (sc.max_value_bytes == 0)
            sc.max_value_bytes = cfg->replica.max_value_bytes;
        n->strong = cw_strong_create(&sc);
        if (n->strong == NULL) {
            cw_replica_destroy(&n->replica);
            free(n);
            return NULL;
        }
    }
    return n;
}

void cw_node_destroy(struct cw_node **np)
{
    struct cw_node *n = *np;
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n_own; i++)
        cw_keystate_free(&n->own[i].state);
    free(n->own);
    free(n->merged_replies);
    free(n->merged_persist);
    free(n->merged_msgs);
    if (n->strong_in_ready)
        cw_strong_advance(n->strong);
    cw_strong_destroy(&n->strong);
    cw_replica_destroy(&n->replica);
    free(n);
    *np = NULL;
}

int cw_node_restore_meta(struct cw_node *n, const uint8_t *data, uint32_t len)
{
    return cw_replica_restore_meta(n->replica, data, len);
}

int cw_node_restore_key(struct cw_node *n, const uint8_t *key, uint32_t key_len,
                        const uint8_t *data, uint32_t len)
{
    return cw_replica_restore_key(n->replica, key, key_len, data, len);
}

int cw_node_restore_outbox(struct cw_node *n, const uint8_t *data, uint32_t len)
{
    return cw_replica_restore_outbox(n->replica, data, len);
}

/* Raft records in a store whose config has no strong bucket (any more): the
 * strong state cannot be used, and dropping it silently would lose writes. */
static int no_strong(void)
{
    return CW_ECONFIG;
}

int cw_node_restore_raft_snapshot(struct cw_node *n, const uint8_t *data, uint32_t len)
{
    return n->strong ? cw_strong_restore_snapshot(n->strong, data, len) : no_strong();
}

int cw_node_restore_raft_hardstate(struct cw_node *n, const uint8_t *data, uint32_t len)
{
    return n->strong ? cw_strong_restore_hardstate(n->strong, data, len) : no_strong();
}

int cw_node_restore_raft_entry(struct cw_node *n, const uint8_t *data, uint32_t len)
{
    return n->strong ? cw_strong_restore_entry(n->strong, data, len) : no_strong();
}

void cw_node_strong_status(const struct cw_node *n, struct cw_now now, struct cw_raft_status *rs,
                           struct cw_strong_stats *ss)
{
    memset(rs, 0, sizeof(*rs));
    memset(ss, 0, sizeof(*ss));
    rs->leader = rs->vote = CW_RAFT_NONE;
    if (n->strong == NULL)
        return;
    cw_raft_get_status(cw_strong_raft(n->strong), now, rs);
    cw_strong_get_stats(n->strong, ss);
}

static void own_reply(struct cw_node *n, enum cw_reply_kind kind, uint64_t req_id, int err,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void own_reply(struct cw_node *n, enum cw_reply_kind kind, uint64_t req_id, int err,
                      const char *fmt, ...)
{
    if (n->n_own == n->cap_own) {
        size_t cap = n->cap_own ? n->cap_own * 2 : 8;
        struct cw_reply *v = realloc(n->own, cap * sizeof(*v));
        CW_ASSERT(v != NULL); /* out of memory: stop, recover from the store */
        n->own = v;
        n->cap_own = cap;
    }
    struct cw_reply *p = &n->own[n->n_own++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->req_id = req_id;
    p->err = err;
    cw_keystate_init(&p->state);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
    va_end(ap);
}

/* Which part serves a bucket: NULL when the node answers itself (err set). */
static const struct cw_bucket_policy *route(struct cw_node *n, const char *bucket, int *err)
{
    *err = cw_validate_bucket(bucket);
    if (*err != CW_OK)
        return NULL;
    const struct cw_bucket_policy *b = cw_replica_bucket(n->replica, bucket);
    if (b == NULL) {
        *err = CW_EUNKNOWNBUCKET;
        return NULL;
    }
    return b;
}

static void route_error(struct cw_node *n, enum cw_reply_kind kind, uint64_t req_id,
                        const char *bucket, int err)
{
    if (err == CW_EBUCKET)
        own_reply(n, kind, req_id, err, "bucket name must be 1-%d of [a-z0-9_-]",
                  CW_BUCKET_NAME_MAX);
    else if (err == CW_EUNKNOWNBUCKET)
        own_reply(n, kind, req_id, err, "bucket '%s' is not in this region's config", bucket);
    else
        own_reply(n, kind, req_id, err, "bucket '%s': %s", bucket, cw_strerror(err));
}

void cw_node_put(struct cw_node *n, struct cw_now now, const struct cw_put_req *req)
{
    CW_ASSERT(!n->in_ready);
    int err;
    if (cw_replica_rebuilding(n->replica)) {
        own_reply(n, CW_REPLY_PUT, req->req_id, CW_EUNAVAILABLE,
                  "rebuilding: copying state from a peer region (%s)",
                  cw_replica_rebuild_phase(n->replica));
        return;
    }
    const struct cw_bucket_policy *b = route(n, req->bucket, &err);
    if (b == NULL) {
        route_error(n, CW_REPLY_PUT, req->req_id, req->bucket, err);
        return;
    }
    if (b->consistency == CW_STRONG) {
        CW_ASSERT(n->strong != NULL); /* created when any bucket is strong */
        cw_strong_put(n->strong, now, req);
        return;
    }
    if (req->cond != CW_COND_NONE) {
        own_reply(n, CW_REPLY_PUT, req->req_id, CW_EINVAL,
                  "bucket '%s' is %s: conditional puts (expected version, absent) need a "
                  "strong bucket",
                  req->bucket, b->consistency == CW_CAUSAL ? "causal" : "eventual");
        return;
    }
    cw_replica_put(n->replica, now, req);
}

void cw_node_get(struct cw_node *n, struct cw_now now, const struct cw_get_req *req)
{
    CW_ASSERT(!n->in_ready);
    int err;
    if (cw_replica_rebuilding(n->replica)) {
        own_reply(n, CW_REPLY_GET, req->req_id, CW_EUNAVAILABLE,
                  "rebuilding: copying state from a peer region (%s)",
                  cw_replica_rebuild_phase(n->replica));
        return;
    }
    const struct cw_bucket_policy *b = route(n, req->bucket, &err);
    if (b == NULL) {
        route_error(n, CW_REPLY_GET, req->req_id, req->bucket, err);
        return;
    }
    if (b->consistency == CW_STRONG) {
        CW_ASSERT(n->strong != NULL);
        cw_strong_get(n->strong, now, req);
        return;
    }
    cw_replica_get(n->replica, now, req);
}

void cw_node_recv(struct cw_node *n, struct cw_now now, const struct cw_msg *m)
{
    CW_ASSERT(!n->in_ready);
    if (n->strong != NULL)
        cw_strong_heard(n->strong, now, m->from);
    if (m->type == CW_MSG_RAFT) {
        /* The wire layer checks that the frame's and the Raft message's
         * regions agree; a node without strong buckets ignores Raft. */
        if (n->strong != NULL && m->raft != NULL && m->raft->from == m->from)
            cw_strong_recv(n->strong, now, m->raft);
        return;
    }
    cw_replica_recv(n->replica, now, m);
}

void cw_node_tick(struct cw_node *n, struct cw_now now)
{
    CW_ASSERT(!n->in_ready);
    cw_replica_tick(n->replica, now);
    if (n->strong != NULL)
        cw_strong_tick(n->strong, now);
}

bool cw_node_has_ready(const struct cw_node *n)
{
    return n->n_own > 0 || cw_replica_has_ready(n->replica) ||
           (n->strong != NULL && cw_strong_has_ready(n->strong));
}

/* Appends n items of size sz at *dst (grown as needed) after *len. */
static void *append(void *dst, size_t *cap, size_t *len, const void *src, size_t n, size_t sz)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 8;
        while (c < *len + n)
            c *= 2;
        void *v = realloc(dst, c * sz);
        CW_ASSERT(v != NULL); /* out of memory: stop, recover from the store */
        dst = v;
        *cap = c;
    }
    if (n)
        memcpy((char *)dst + *len * sz, src, n * sz);
    *len += n;
    return dst;
}

const struct cw_ready *cw_node_ready(struct cw_node *n)
{
    CW_ASSERT(!n->in_ready);
    n->in_ready = true;
    const struct cw_ready *rd = cw_replica_ready(n->replica);
    const struct cw_ready *sd = NULL;
    if (n->strong != NULL && cw_strong_has_ready(n->strong)) {
        sd = cw_strong_ready(n->strong);
        n->strong_in_ready = true;
    }
    if (n->n_own == 0 && sd == NULL)
        return rd; /* the common case: nothing to merge */
    /* Shallow copies: the parts keep owning what the entries point to. One
     * transaction persists both parts' records. */
    n->merged = *rd;
    size_t np = 0, nm = 0, nr = 0;
    n->merged_persist = append(n->merged_persist, &n->cap_merged_persist, &np, rd->persist,
                               rd->n_persist, sizeof(*rd->persist));
    n->merged_msgs =
        append(n->merged_msgs, &n->cap_merged_msgs, &nm, rd->msgs, rd->n_msgs, sizeof(*rd->msgs));
    n->merged_replies = append(n->merged_replies, &n->cap_merged_replies, &nr, rd->replies,
                               rd->n_replies, sizeof(*rd->replies));
    if (sd != NULL) {
        n->merged_persist = append(n->merged_persist, &n->cap_merged_persist, &np, sd->persist,
                                   sd->n_persist, sizeof(*sd->persist));
        n->merged_msgs = append(n->merged_msgs, &n->cap_merged_msgs, &nm, sd->msgs, sd->n_msgs,
                                sizeof(*sd->msgs));
        n->merged_replies = append(n->merged_replies, &n->cap_merged_replies, &nr, sd->replies,
                                   sd->n_replies, sizeof(*sd->replies));
    }
    n->merged_replies = append(n->merged_replies, &n->cap_merged_replies, &nr, n->own, n->n_own,
                               sizeof(*n->own));
    n->merged.persist = n->merged_persist;
    n->merged.n_persist = np;
    n->merged.msgs = n->merged_msgs;
    n->merged.n_msgs = nm;
    n->merged.replies = n->merged_replies;
    n->merged.n_replies = nr;
    return &n->merged;
}

void cw_node_advance(struct cw_node *n)
{
    CW_ASSERT(n->in_ready);
    n->in_ready = false;
    cw_replica_advance(n->replica);
    if (n->strong_in_ready) {
        cw_strong_advance(n->strong);
        n->strong_in_ready = false;
    }
    for (size_t i = 0; i < n->n_own; i++)
        cw_keystate_free(&n->own[i].state);
    n->n_own = 0;
}

bool cw_node_check_invariants(struct cw_node *n, char *why, size_t why_len)
{
    if (!cw_replica_check_invariants(n->replica, why, why_len))
        return false;
    return n->strong == NULL || cw_strong_check_invariants(n->strong, why, why_len);
}

const struct cw_strong *cw_node_strong(const struct cw_node *n)
{
    return n->strong;
}

const struct cw_replica *cw_node_replica(const struct cw_node *n)
{
    return n->replica;
}

uint64_t cw_node_draw(struct cw_node *n)
{
    if (n->rand.next != NULL)
        return n->rand.next(n->rand.ctx);
    /* splitmix64 over a fixed start: deterministic, for drivers that pass none. */
    uint64_t z = (n->rand_fallback += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
