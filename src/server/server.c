/*
 * server.c - causewayd's event loop: input, replica, effects.
 */
#include "server/server.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <causeway/error.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/node.h"
#include "core/replica.h"
#include "net/net.h"
#include "net/netutil.h"
#include "server/log.h"
#include "store/store.h"
#include "wire/wire.h"

#define TICK_MS 10
/* Descriptors kept out of the client connection cap: Berkeley DB's environment
 * files, databases and log files (a checkpoint opens a log file; one that
 * cannot panics the environment), the admin socket and its connections,
 * ZeroMQ's own (a mailbox per socket, pollers, the ZAP handler and monitors),
 * the log; and per region its peer connections in and out. */
#define FD_RESERVE_BASE 64u
#define FD_RESERVE_PER_REGION 4u
/* The cap of a node without an open-file limit, the config key's ceiling. */
#define CLIENT_CONNECTIONS_CEILING 1000000u
#define BATCH_EVENTS_MAX 256 /* inputs folded into one group commit */

/* A client request the replica has not answered yet (a read waiting for its
 * context, or a write waiting for its group commit). */
struct pending {
    bool used;
    enum cw_net_kind kind;
    uint8_t route[256];
    size_t route_len;
    uint64_t client_req_id;
    enum cw_wire_op op;
    uint32_t gen;
};

struct cw_server {
    const struct cw_config *cfg;
    size_t pending_max; /* requests awaiting their reply: parked ones plus a round's worth */
    unsigned region;
    struct cw_node *node;
    uint64_t seed; /* of the node's generator, logged at start */
    uint64_t rng_state;
    struct cw_store *store;
    struct cw_net *net;
    struct cw_wire_limits limits;
    struct pending *pending;
    size_t *free_slots;
    size_t n_free;
    uint32_t gen;
    uint64_t started_mono_us; /* monotonic: a wall-clock step cannot bend the uptime */
    uint64_t last_tick_us;
    uint64_t stamps_refused_seen, stamps_warned_us, version_warned_us, identity_warned_us;
    uint64_t context_ahead_max_us; /* for the clock-skew warning */
    struct {
        uint64_t requests, bad_requests, bad_peer_frames, replies_dropped, commits;
        uint64_t commit_records;
        /* security = curve: peer frames whose stream claims another region than the
         * key, and admin commands from keys that are not admin keys. */
        uint64_t peer_identity_refused, admin_refused;
        /* The RECORDS frames encoded for the peers (status: replication). */
        struct cw_wire_repl_stats repl;
    } counters;
    /* The keys handed to the net at open; freed with the server. */
    struct cw_net_principal *principals;
    size_t n_principals;
    uint32_t client_connections_max; /* the cap in force (client_connections_cap) */
    /* Store failures (docs/operations.md, "Resource failures"). */
    enum cw_server_stop stop;     /* why cw_server_run returned */
    uint64_t read_errors_seen;    /* the replica's store_read_errors, as last logged */
    uint64_t read_warned_us;      /* when the last read failure was logged */
    uint64_t ckpt_failed_seen;    /* the store's checkpoints_failed, as last looked at */
    uint64_t ckpt_failing_since_us; /* the first failure of the current run of them, or 0 */
    uint64_t ckpt_warned_us;      /* when the last checkpoint failure was logged */
    /* --rebuild-from (docs/operations.md, "Rebuilding a region"). */
    int rebuild_from; /* region id, or -1 */
    bool rebuilding;  /* the marker file is in the data directory */
    uint64_t rebuild_logged_us;
};

/* A data directory holding this file is an interrupted rebuild: incomplete. */
#define REBUILD_MARKER "REBUILDING"

static void rebuild_marker_path(const struct cw_server *s, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", s->cfg->regions[s->region].data_dir, REBUILD_MARKER);
}

/* True when dir does not exist or holds nothing but "." and "..". */
static bool dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT;
    bool empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = false;
            break;
        }
    closedir(d);
    return empty;
}

/* After a round: the end of a rebuild is committed, remove the marker; while
 * it runs, a progress line every few seconds. */
static void rebuild_progress(struct cw_server *s)
{
    if (!s->rebuilding)
        return;
    const struct cw_replica *r = cw_node_replica(s->node);
    uint64_t copied = cw_replica_stats(r)->snap_keys_copied;
    const char *donor = s->cfg->regions[s->rebuild_from].name;
    if (!cw_replica_rebuilding(r)) {
        char path[1200];
        rebuild_marker_path(s, path, sizeof(path));
        if (unlink(path) != 0 && errno != ENOENT)
            cw_warn("cannot remove %s: %s", path, strerror(errno));
        s->rebuilding = false;
        cw_info("rebuild complete: %" PRIu64 " keys copied from %s; joined the streams, "
                "serving clients",
                copied, donor);
        return;
    }
    uint64_t now = cw_net_mono_us();
    if (now - s->rebuild_logged_us >= 5000000ull) {
        s->rebuild_logged_us = now;
        cw_info("rebuilding from %s: %s, %" PRIu64 " keys copied", donor,
                cw_replica_rebuild_phase(r), copied);
    }
}

/* ------------------------------------------------------------ pending map */

static int pending_init(struct cw_server *s)
{
    /* Every request the replica may hold (waiting_max parked) plus every one
     * a round can bring in, so the replica's own bound is the one users meet. */
    s->pending_max = (size_t)s->cfg->waiting_max + 4 * BATCH_EVENTS_MAX;
    s->pending = calloc(s->pending_max, sizeof(*s->pending));
    s->free_slots = calloc(s->pending_max, sizeof(*s->free_slots));
    if (s->pending == NULL || s->free_slots == NULL)
        return CW_ENOMEM;
    for (size_t i = 0; i < s->pending_max; i++)
        s->free_slots[i] = s->pending_max - 1 - i;
    s->n_free = s->pending_max;
    return CW_OK;
}

/* The replica's request id: slot in the low 32 bits, a generation above, so a
 * late reply can never be delivered to a recycled slot's new owner. */
static bool pending_add(struct cw_server *s, const struct cw_net_event *ev, uint64_t client_req_id,
                        enum cw_wire_op op, uint64_t *req_id)
{
    if (s->n_free == 0)
        return false;
    size_t slot = s->free_slots[--s->n_free];
    struct pending *p = &s->pending[slot];
    p->used = true;
    p->kind = ev->kind;
    p->route_len = ev->route_len < sizeof(p->route) ? ev->route_len : sizeof(p->route);
    memcpy(p->route, ev->route, p->route_len);
    p->client_req_id = client_req_id;
    p->op = op;
    p->gen = ++s->gen;
    *req_id = (uint64_t)p->gen << 32 | slot;
    return true;
}

static struct pending *pending_take(struct cw_server *s, uint64_t req_id)
{
    size_t slot = (size_t)(req_id & 0xffffffffu);
    if (slot >= s->pending_max)
        return NULL;
    struct pending *p = &s->pending[slot];
    if (!p->used || p->gen != (uint32_t)(req_id >> 32))
        return NULL;
    p->used = false;
    s->free_slots[s->n_free++] = slot;
    return p;
}

/* -------------------------------------------------------------- replies */

static void send_response(struct cw_server *s, enum cw_net_kind kind, const uint8_t *route,
                          size_t route_len, const struct cw_wire_response *resp)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = cw_wire_encode_response(resp, &buf, &len);
    if (rc != CW_OK) {
        /* Too big to send (e.g. many large siblings): say so instead of staying
         * silent, so the client does not wait for its time-out. */
        struct cw_wire_response err;
        memset(&err, 0, sizeof(err));
        err.op = resp->op;
        err.req_id = resp->req_id;
        err.err = rc;
        snprintf(err.message, sizeof(err.message),
                 "the reply does not fit in one message (%s); read fewer or smaller siblings",
                 cw_strerror(rc));
        if (cw_wire_encode_response(&err, &buf, &len) != CW_OK) {
            s->counters.replies_dropped++;
            return;
        }
    }
    struct cw_net_event to = {.kind = kind, .route_len = route_len};
    memcpy(to.route, route, route_len);
    if (cw_net_reply(s->net, &to, buf, len) != CW_OK)
        s->counters.replies_dropped++;
    free(buf);
}

static void reply_error(struct cw_server *s, const struct cw_net_event *ev, enum cw_wire_op op,
                        uint64_t req_id, int err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void reply_error(struct cw_server *s, const struct cw_net_event *ev, enum cw_wire_op op,
                        uint64_t req_id, int err, const char *fmt, ...)
{
    struct cw_wire_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.op = op;
    resp.req_id = req_id;
    resp.err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp.message, sizeof(resp.message), fmt, ap);
    va_end(ap);
    send_response(s, ev->kind, ev->route, ev->route_len, &resp);
}

static void deliver_reply(struct cw_server *s, const struct cw_reply *r)
{
    struct pending *p = pending_take(s, r->req_id);
    if (p == NULL)
        return;
    struct cw_wire_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.op = p->op;
    resp.req_id = p->client_req_id;
    resp.err = r->err;
    if (r->err != CW_OK && r->detail[0] != '\0')
        snprintf(resp.message, sizeof(resp.message), "%s: %s", cw_strerror(r->err), r->detail);
    else if (r->err != CW_OK)
        snprintf(resp.message, sizeof(resp.message), "%s", cw_strerror(r->err));
    resp.origin = r->dot.origin;
    resp.ts = r->dot.ts;
    resp.kctx_valid = r->kctx_valid;
    resp.kctx = r->kctx;
    resp.seen = r->seen;
    resp.conflict = (uint8_t)r->conflict;
    resp.n_versions = r->state.n;
    resp.versions = r->state.v; /* borrowed for the encode */
    resp.key_version = r->version;
    send_response(s, p->kind, p->route, p->route_len, &resp);
}

/* ---------------------------------------------------------------- status */

_Static_assert(CW_REGION_NAME_MAX <= CW_WIRE_REGION_NAME_MAX, "region names must fit a status");

static uint32_t durability_to_wire(enum cw_durability d)
{
    switch (d) {
    case CW_DURABILITY_SYNC:
        return CW_WIRE_DURABILITY_SYNC;
    case CW_DURABILITY_WRITE_NOSYNC:
        return CW_WIRE_DURABILITY_WRITE_NOSYNC;
    case CW_DURABILITY_NOSYNC:
        return CW_WIRE_DURABILITY_NOSYNC;
    }
    return CW_WIRE_DURABILITY_UNKNOWN;
}

static void latency_from_hist(const struct cw_hist *h, struct cw_wire_latency *out)
{
    memset(out, 0, sizeof(*out));
    if (h == NULL)
        return;
    out->count = h->count;
    out->p50_us = cw_hist_quantile(h, 0.50);
    out->p90_us = cw_hist_quantile(h, 0.90);
    out->p99_us = cw_hist_quantile(h, 0.99);
    out->max_us = h->max;
}

static bool config_has_strong(const struct cw_config *c)
{
    for (unsigned i = 0; i < c->n_buckets; i++)
        if (c->buckets[i].consistency == CW_STRONG)
            return true;
    return false;
}

/* The strong section of a status: the Raft group as this node sees it, peers'
 * last contact relative to now (monotonic). */
static void strong_status(const struct cw_server *s, struct cw_now now, struct cw_wire_status *out)
{
    const struct cw_config *c = s->cfg;
    if (!config_has_strong(c))
        return;
    struct cw_raft_status rs;
    struct cw_strong_stats ss;
    cw_node_strong_status(s->node, now, &rs, &ss);
    struct cw_wire_strong_status *w = &out->strong;
    out->has_strong = true;
    w->role = (uint32_t)rs.role;
    w->term = rs.term;
    w->has_leader = rs.leader < c->n_regions;
    w->leader = w->has_leader ? (uint8_t)rs.leader : 0;
    w->has_vote = rs.vote < c->n_regions;
    w->vote = w->has_vote ? (uint8_t)rs.vote : 0;
    w->commit = rs.commit;
    w->applied = rs.applied;
    w->log_first = rs.first_index;
    w->log_last = rs.last_index;
    w->snap_index = rs.snap_index;
    w->snap_term = rs.snap_term;
    for (unsigned p = 0; p < c->n_regions; p++) {
        if (p == s->region)
            continue;
        struct cw_wire_raft_peer *wp = &w->peers[w->n_peers++];
        wp->region = (uint8_t)p;
        wp->suspected = rs.suspected[p];
        wp->heard = rs.last_heard_us[p] != 0;
        if (wp->heard)
            wp->last_heard_ms =
                now.mono_us > rs.last_heard_us[p] ? (now.mono_us - rs.last_heard_us[p]) / 1000u : 0;
    }
    w->raft.elections = rs.stats.elections;
    w->raft.prevotes = rs.stats.prevotes;
    w->raft.leader_changes = rs.stats.leader_changes;
    w->raft.stepdowns_quorum = rs.stats.stepdowns_quorum;
    w->raft.proposals_forwarded = rs.stats.proposals_forwarded;
    w->raft.read_index_rounds = rs.stats.read_index_rounds;
    w->raft.snapshots_sent = rs.stats.snapshots_sent;
    w->raft.snapshots_received = rs.stats.snapshots_received;
    w->raft.transfers = rs.stats.transfers;
    w->raft.msgs_refused = rs.stats.msgs_refused;
    w->raft.disruptions = rs.stats.disruptions;
    w->counters.puts = ss.puts;
    w->counters.gets = ss.gets;
    w->counters.conflicts = ss.conflicts;
    w->counters.timeouts = ss.timeouts;
    w->counters.no_quorum = ss.no_quorum;
    w->counters.full = ss.full;
    w->counters.keys = ss.keys;
    w->counters.bytes = ss.bytes;
}

void cw_server_status(const struct cw_server *s, struct cw_wire_status *out)
{
    const struct cw_config *c = s->cfg;
    const struct cw_replica *rep = cw_node_replica(s->node);
    const struct cw_replica_stats *st = cw_replica_stats(rep);
    memset(out, 0, sizeof(*out));
    out->region = (uint8_t)s->region;
    out->n_regions = (uint8_t)c->n_regions;
    for (unsigned i = 0; i < c->n_regions; i++)
        snprintf(out->regions[i], sizeof(out->regions[i]), "%s", c->regions[i].name);
    out->durability = durability_to_wire(cw_store_durability(s->store));
    out->now_us = cw_net_now_us();
    uint64_t mono_us = cw_net_mono_us();
    out->uptime_us = mono_us > s->started_mono_us ? mono_us - s->started_mono_us : 0;
    out->clock = cw_replica_clock(rep);
    out->applied = *cw_replica_applied(rep);
    cw_replica_stability(rep, &out->stable);
    out->buffered = cw_replica_buffered(rep);
    out->outbox_total = cw_replica_outbox_len(rep);
    out->waiting = cw_replica_waiting(rep);
    out->keys = cw_replica_keys(rep)->count;
    out->outbox_bytes = cw_replica_outbox_bytes(rep);
    out->buffered_bytes = cw_replica_buffered_bytes(rep);
    out->key_cache_bytes = cw_replica_key_cache_bytes(rep);
    out->outbox_body_bytes = cw_replica_outbox_body_bytes(rep);
    for (unsigned p = 0; p < c->n_regions; p++) {
        if (p == s->region)
            continue;
        struct cw_link_status ls;
        cw_net_link_status(s->net, p, &ls);
        struct cw_wire_peer_status *ps = &out->peers[out->n_peers++];
        ps->region = (uint8_t)p;
        ps->link_cut = ls.cut;
        ps->delay_ms = ls.delay_ms;
        ps->queued = ls.queued;
        ps->frames_sent = ls.frames_sent;
        ps->frames_dropped = ls.frames_dropped;
        ps->frames_received = ls.frames_received;
        ps->bytes_sent = ls.bytes_sent;
        ps->outbox_pending = cw_replica_outbox_pending(rep, p);
        ps->inflight_bytes = cw_replica_inflight_bytes(rep, p);
        latency_from_hist(cw_replica_visibility(rep, p), &ps->visibility);
    }
    out->replica.puts = st->puts;
    out->replica.gets = st->gets;
    out->replica.deletes = st->deletes;
    out->replica.remote_applied = st->remote_applied;
    out->replica.remote_duplicates = st->remote_duplicates;
    out->replica.remote_gaps = st->remote_gaps;
    out->replica.nacks_sent = st->nacks_sent;
    out->replica.nacks_received = st->nacks_received;
    out->replica.resent_records = st->resent_records;
    out->replica.requests_waited = st->reads_waited;
    out->replica.requests_timed_out = st->reads_timed_out;
    out->replica.buffer_full_drops = st->buffer_full_drops;
    out->replica.tombstones_collected = st->tombstones_collected;
    out->replica.stamps_refused = st->stamps_refused;
    out->replica.errors = st->errors;
    out->replica.keys_loaded = st->keys_loaded;
    out->replica.keys_evicted = st->keys_evicted;
    out->replica.bodies_loaded = st->bodies_loaded;
    out->replica.bodies_evicted = st->bodies_evicted;
    out->replica.store_read_errors = st->store_read_errors;
    struct cw_store_stats ss;
    cw_store_stats(s->store, &ss);
    out->node.requests = s->counters.requests;
    out->node.bad_requests = s->counters.bad_requests;
    out->node.bad_peer_frames = s->counters.bad_peer_frames;
    out->node.replies_dropped = s->counters.replies_dropped;
    out->node.commits = ss.commits;
    out->node.commit_records = ss.records;
    out->node.checkpoints_failed = ss.checkpoints_failed;
    out->node.checkpoints_failing = cw_store_checkpoints_failing(s->store);
    struct cw_net_stats ns;
    cw_net_stats(s->net, &ns);
    out->node.auth_refused = ns.auth_refused;
    out->node.handshakes_failed = ns.handshakes_failed;
    out->node.peer_identity_refused = ns.peer_identity_refused + s->counters.peer_identity_refused;
    out->node.admin_refused = s->counters.admin_refused;
    out->replication = s->counters.repl;
    out->node.connections_refused = ns.client_connections_refused;
    out->client_connections = ns.client_connections;
    out->client_connections_max = s->client_connections_max;
    struct cw_now now = {.real_us = out->now_us, .mono_us = mono_us};
    strong_status(s, now, out);
}

/* ------------------------------------------------------------- requests */

static int region_by_name(const struct cw_config *c, const char *name)
{
    const struct cw_region_config *r = cw_config_region(c, name);
    return r ? (int)r->id : -1;
}

static void handle_link(struct cw_server *s, const struct cw_net_event *ev,
                        const struct cw_wire_request *req)
{
    int from = region_by_name(s->cfg, req->link_from);
    int to = region_by_name(s->cfg, req->link_to);
    if (from < 0 || to < 0) {
        char names[CW_REGIONS_MAX * (CW_REGION_NAME_MAX + 2) + 1] = "";
        for (unsigned i = 0; i < s->cfg->n_regions; i++) {
            strcat(names, i ? ", " : "");
            strcat(names, s->cfg->regions[i].name);
        }
        reply_error(s, ev, req->op, req->req_id, CW_EREGION,
                    "unknown region '%s'; this cluster has: %s",
                    from < 0 ? req->link_from : req->link_to, names);
        return;
    }
    if ((unsigned)from != s->region) {
        reply_error(s, ev, req->op, req->req_id, CW_EINVAL,
                    "this is region '%s': send link commands for %s->%s to %s's admin endpoint",
                    s->cfg->regions[s->region].name, req->link_from, req->link_to, req->link_from);
        return;
    }
    if (from == to) {
        reply_error(s, ev, req->op, req->req_id, CW_EINVAL, "a region has no link to itself");
        return;
    }
    enum cw_link_op op;
    switch (req->link_action) {
    case CW_LINK_CUT:
        op = CW_LINK_OP_CUT;
        break;
    case CW_LINK_HEAL:
        op = CW_LINK_OP_HEAL;
        break;
    case CW_LINK_DELAY:
        op = CW_LINK_OP_DELAY;
        if (req->delay_ms > CW_LINK_DELAY_MS_MAX) {
            reply_error(s, ev, req->op, req->req_id, CW_EINVAL,
                        "delay %u ms is too long; a link delay is 0 to %u ms", req->delay_ms,
                        CW_LINK_DELAY_MS_MAX);
            return;
        }
        break;
    default:
        reply_error(s, ev, req->op, req->req_id, CW_EINVAL,
                    "unknown link action %d; use cut, heal or delay", (int)req->link_action);
        return;
    }
    int rc = cw_net_link(s->net, (unsigned)to, op, req->delay_ms);
    if (rc != CW_OK) {
        reply_error(s, ev, req->op, req->req_id, rc, "link change refused: %s", cw_strerror(rc));
        return;
    }
    if (op == CW_LINK_OP_DELAY)
        cw_info("link %s->%s: delay set to %u ms", req->link_from, req->link_to, req->delay_ms);
    else
        cw_info("link %s->%s: %s", req->link_from, req->link_to,
                op == CW_LINK_OP_CUT ? "cut" : "healed");
    struct cw_wire_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.op = CW_OP_LINK;
    resp.req_id = req->req_id;
    send_response(s, ev->kind, ev->route, ev->route_len, &resp);
}

static void handle_status(struct cw_server *s, const struct cw_net_event *ev, uint64_t req_id)
{
    struct cw_wire_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.op = CW_OP_STATUS;
    resp.req_id = req_id;
    struct cw_wire_status st;
    cw_server_status(s, &st);
    resp.status = &st;
    send_response(s, ev->kind, ev->route, ev->route_len, &resp);
}

static void handle_request(struct cw_server *s, const struct cw_net_event *ev, struct cw_now now)
{
    struct cw_wire_request req;
    s->counters.requests++;
    int rc = cw_wire_decode_request(ev->data, ev->len, &s->limits, &req);
    if (rc != CW_OK) {
        s->counters.bad_requests++;
        enum cw_wire_op op = req.op >= CW_OP_PUT && req.op <= CW_OP_LINK ? req.op : CW_OP_NONE;
        reply_error(s, ev, op, req.req_id, rc, "malformed request: %s", cw_strerror(rc));
        return;
    }
    switch (req.op) {
    case CW_OP_STATUS:
        handle_status(s, ev, req.req_id);
        break;
    case CW_OP_LINK:
        if (ev->kind != CW_NET_ADMIN) {
            reply_error(s, ev, req.op, req.req_id, CW_EINVAL,
                        "link commands go to the admin endpoint, not the client endpoint");
        } else if (!ev->may_admin) {
            /* The key decides, never the endpoint: a client key may reach the admin
             * endpoint (for status) but not change links. */
            s->counters.admin_refused++;
            cw_warn("refused a link command from %s: not an admin key",
                    ev->user[0] ? ev->user : "an unauthenticated client");
            reply_error(s, ev, req.op, req.req_id, CW_EDENIED,
                        "%s is not an admin key: link commands need a key listed in "
                        "admin_keys_file",
                        ev->user[0] ? ev->user : "this client");
        } else {
            handle_link(s, ev, &req);
        }
        break;
    case CW_OP_PUT:
    case CW_OP_DEL:
    case CW_OP_GET: {
        if (ev->kind != CW_NET_CLIENT) {
            reply_error(s, ev, req.op, req.req_id, CW_EINVAL,
                        "data requests go to the client endpoint, not the admin endpoint");
            break;
        }
        uint64_t id;
        if (!pending_add(s, ev, req.req_id, req.op, &id)) {
            reply_error(s, ev, req.op, req.req_id, CW_EFULL,
                        "too many requests in flight on this node; retry later");
            break;
        }
        if (req.op == CW_OP_GET) {
            struct cw_get_req g = {.req_id = id,
                                   .bucket = req.bucket,
                                   .key = req.key,
                                   .key_len = req.key_len,
                                   .context = req.context};
            cw_node_get(s->node, now, &g);
        } else {
            struct cw_put_req p = {.req_id = id,
                                   .bucket = req.bucket,
                                   .key = req.key,
                                   .key_len = req.key_len,
                                   .value = req.value,
                                   .value_len = req.value_len,
                                   .tombstone = req.op == CW_OP_DEL,
                                   .context = req.context,
                                   /* The node refuses a condition on a
                                    * causal or eventual bucket. */
                                   .cond = req.cond,
                                   .cond_version = req.cond_version};
            if (req.has_kctx)
                p.kctx = req.kctx;
            cw_node_put(s->node, now, &p);
        }
        break;
    }
    default:
        s->counters.bad_requests++;
        reply_error(s, ev, req.op, req.req_id, CW_EINVAL, "unknown operation %d", (int)req.op);
    }
    cw_wire_request_free(&req);
}

static void handle_peer(struct cw_server *s, const struct cw_net_event *ev, struct cw_now now)
{
    struct cw_msg m;
    int rc = cw_wire_decode_peer(ev->data, ev->len, &s->limits, &m);
    if (rc != CW_OK) {
        s->counters.bad_peer_frames++;
        /* Another protocol version means the regions run different releases: worth a
         * warning (once a minute); anything else is noise or an attack. */
        if (rc == CW_EVERSION && now.mono_us - s->version_warned_us > 60000000ull) {
            cw_warn("dropped a frame from %s with another protocol version; run the same "
                    "causeway release in every region",
                    s->cfg->regions[ev->peer].name);
            s->version_warned_us = now.mono_us;
        } else {
            cw_debug("dropped a malformed frame from %s: %s", s->cfg->regions[ev->peer].name,
                     cw_strerror(rc));
        }
        return;
    }
    if (m.from != ev->peer) {
        /* The connection's identity (with CURVE its key, else its routing id) says
         * who sent the frame; a frame claiming another region is refused. */
        if (s->cfg->security == CW_SECURITY_CURVE) {
            s->counters.peer_identity_refused++;
            if (now.mono_us - s->identity_warned_us > 1000000ull) {
                cw_warn("refused a frame from %s claiming to come from region %u: a peer "
                        "may speak only for the region whose key it holds",
                        s->cfg->regions[ev->peer].name, (unsigned)m.from);
                s->identity_warned_us = now.mono_us;
            }
        } else {
            s->counters.bad_peer_frames++;
        }
        cw_msg_free(&m);
        return;
    }
    cw_node_recv(s->node, now, &m);
    cw_msg_free(&m);
}

/* --------------------------------------------------------------- effects */

/* How often a failure that does not stop the node is logged again. */
#define STORE_WARN_EVERY_US 60000000ull
#define READ_WARN_EVERY_US 10000000ull
/* Checkpoints failing this long get an error line: the log is not trimmed. */
#define CKPT_FAILING_LONG_US 600000000ull

static enum cw_server_stop stop_for(enum cw_store_cause c)
{
    switch (c) {
    case CW_STORE_CAUSE_NOSPACE:
    case CW_STORE_CAUSE_NOFILES:
    case CW_STORE_CAUSE_NOMEM:
        return CW_SERVER_STOP_STORE_RESOURCE;
    default:
        return CW_SERVER_STOP_STORE_FAILED;
    }
}

static void answer_pending(struct cw_server *s, int err, const char *why);

/*
 * A commit failed: the replica has decided, in memory, what the disk does not
 * hold, so the node cannot go on (store.h, cw_store_commit). Nothing of this
 * round was sent or acknowledged. Every waiting client, this round's included,
 * gets an error now rather than a time-out; the caller returns, and the daemon
 * closes the store and exits with the status for the cause (main.c). The next
 * start recovers the last committed state from the log.
 */
static int store_failed(struct cw_server *s, int rc)
{
    enum cw_store_cause cause = cw_store_commit_cause(s->store);
    bool panicked = cw_store_panicked(s->store);
    s->stop = stop_for(cause);
    cw_error("store commit failed (%s%s): %s", cw_store_cause_name(cause),
             panicked ? ", Berkeley DB panicked" : "", cw_store_errmsg(s->store));
    char why[256];
    snprintf(why, sizeof(why),
             "region %s cannot write to its store (%s) and is stopping; this request was not "
             "committed",
             s->cfg->regions[s->region].name, cw_store_cause_name(cause));
    answer_pending(s, CW_ESTORE, why);
    cw_error("stopping: nothing of the failed round was acknowledged; %s",
             panicked ? "recovery runs at the next start and brings back every committed write"
                      : "the next start recovers every committed write from the log");
    return rc;
}

/* Reads through the store (key states, outbox bodies, a donor's snapshot) that
 * failed since the last look: the replica answered those requests or streams
 * with an error; here they get a log line, at most one every few seconds. A
 * read that found the store panicked stops the node like a failed commit. */
static int read_report(struct cw_server *s)
{
    uint64_t errors = cw_replica_stats(cw_node_replica(s->node))->store_read_errors;
    if (errors == s->read_errors_seen)
        return CW_OK;
    uint64_t now = cw_net_mono_us();
    bool panicked = cw_store_panicked(s->store);
    if (panicked || s->read_warned_us == 0 || now - s->read_warned_us >= READ_WARN_EVERY_US) {
        enum cw_store_cause cause = cw_store_read_cause(s->store);
        const char *msg = cw_store_read_errmsg(s->store);
        cw_warn("%" PRIu64 " read%s from the store failed (%s); the requests or streams that "
                "needed %s got an error: %s",
                errors - s->read_errors_seen, errors - s->read_errors_seen == 1 ? "" : "s",
                cw_store_cause_name(cause), errors - s->read_errors_seen == 1 ? "it" : "them",
                msg[0] != '\0' ? msg : "the record read back is not the one expected");
        s->read_errors_seen = errors;
        s->read_warned_us = now;
    }
    if (!panicked)
        return CW_OK;
    s->stop = stop_for(cw_store_panic_cause(s->store));
    cw_error("the store is unusable (%s): %s; stopping",
             cw_store_cause_name(cw_store_panic_cause(s->store)), cw_store_panic_msg(s->store));
    char why[256];
    snprintf(why, sizeof(why), "region %s's store failed (%s) and the region is stopping",
             s->cfg->regions[s->region].name, cw_store_cause_name(cw_store_panic_cause(s->store)));
    answer_pending(s, CW_ESTORE, why);
    return CW_ESTORE;
}

/* After a good commit: a checkpoint that failed is logged (the commit is safe
 * in the log; the log just is not trimmed), at most once a minute, and an
 * error line when they have kept failing for ten minutes. */
static void checkpoint_report(struct cw_server *s)
{
    struct cw_store_stats ss;
    cw_store_stats(s->store, &ss);
    uint64_t failing = cw_store_checkpoints_failing(s->store);
    uint64_t now = cw_net_mono_us();
    if (failing == 0) {
        if (s->ckpt_failing_since_us != 0)
            cw_info("checkpoints work again after %" PRIu64 " failed",
                    ss.checkpoints_failed - s->ckpt_failed_seen);
        s->ckpt_failing_since_us = 0;
        s->ckpt_failed_seen = ss.checkpoints_failed;
        return;
    }
    if (ss.checkpoints_failed == s->ckpt_failed_seen)
        return; /* no checkpoint was due in this commit */
    if (s->ckpt_failing_since_us == 0) {
        s->ckpt_failing_since_us = now;
        s->ckpt_warned_us = 0;
    }
    if (s->ckpt_warned_us != 0 && now - s->ckpt_warned_us < STORE_WARN_EVERY_US)
        return;
    s->ckpt_warned_us = now;
    uint64_t for_us = now - s->ckpt_failing_since_us;
    if (for_us >= CKPT_FAILING_LONG_US)
        cw_error("checkpoints have failed for %" PRIu64 " minutes (%" PRIu64 " in a row): the "
                 "log is not trimmed, the data directory grows and the next start's recovery "
                 "gets longer; %s",
                 (uint64_t)(for_us / 60000000u), failing, cw_store_errmsg(s->store));
    else
        cw_warn("%s (%" PRIu64 " checkpoint%s failed in a row; writes go on)",
                cw_store_errmsg(s->store), failing, failing == 1 ? "" : "s");
}

static int process_ready(struct cw_server *s)
{
    if (!cw_node_has_ready(s->node))
        return CW_OK;
    const struct cw_ready *rd = cw_node_ready(s->node);
    /* 1. Durable first: one transaction for everything decided since the last
     *    round (group commit). */
    int rc = cw_store_commit(s->store, rd->persist, rd->n_persist);
    if (rc != CW_OK)
        return store_failed(s, rc);
    checkpoint_report(s);
    /* 2. Then tell the peers. */
    for (size_t i = 0; i < rd->n_msgs; i++) {
        const struct cw_msg *m = &rd->msgs[i];
        /* A batch too large for one frame goes as several, in order. */
        uint32_t first = 0, next = 0;
        do {
            uint8_t *buf = NULL;
            size_t len = 0;
            int erc = cw_wire_encode_peer_counted(m, first, &next, &buf, &len, &s->counters.repl);
            if (erc != CW_OK) {
                cw_error("cannot encode a message for %s: %s", s->cfg->regions[m->to].name,
                         cw_strerror(erc));
                break;
            }
            cw_net_send_peer(s->net, m->to, buf, len); /* takes buf */
            first = next;
        } while (next != 0 && next < m->n_records);
    }
    /* 3. Then answer the clients. */
    for (size_t i = 0; i < rd->n_replies; i++)
        deliver_reply(s, &rd->replies[i]);
    cw_node_advance(s->node);
    rebuild_progress(s);
    if (cw_store_panicked(s->store)) {
        /* The commit stands (its replies went out), but the checkpoint after
         * it panicked Berkeley DB: nothing more can be written. */
        enum cw_store_cause cause = cw_store_panic_cause(s->store);
        s->stop = stop_for(cause);
        cw_error("the store is unusable after a good commit (%s): %s", cw_store_cause_name(cause),
                 cw_store_panic_msg(s->store));
        char why[256];
        snprintf(why, sizeof(why), "region %s's store failed (%s) and the region is stopping",
                 s->cfg->regions[s->region].name, cw_store_cause_name(cause));
        answer_pending(s, CW_ESTORE, why);
        cw_error("stopping: every acknowledged write is committed; recovery runs at the next "
                 "start");
        return CW_ESTORE;
    }
    return CW_OK;
}

/* --------------------------------------------------------------- security */

static void wipe(void *p, size_t n)
{
    volatile uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = 0;
}

/* True when a bound endpoint can only be reached from this host: ipc://, or TCP
 * on 127.0.0.0/8 or [::1]. */
static bool endpoint_local(const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0)
        return true;
    return strncmp(ep, "tcp://127.", 10) == 0 || strncmp(ep, "tcp://[::1]:", 12) == 0;
}

/* The net's refusal log lines go to the node's log. */
static void auth_log_line(void *ctx, const char *line)
{
    (void)ctx;
    cw_warn("%s", line);
}

/* Appends the keys of one list file with role to s->principals. */
static int add_principals(struct cw_server *s, const char *path, enum cw_net_role role, char *err,
                          size_t err_len)
{
    struct cw_curve_entry *list = NULL;
    size_t n = 0;
    if (cw_curve_read_list(path, &list, &n, err, err_len) != 0)
        return CW_ECONFIG;
    if (n == 0) {
        free(list);
        return CW_OK;
    }
    struct cw_net_principal *grown =
        realloc(s->principals, (s->n_principals + n) * sizeof(*s->principals));
    if (grown == NULL) {
        free(list);
        snprintf(err, err_len, "out of memory for the keys of %s", path);
        return CW_ENOMEM;
    }
    s->principals = grown;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < s->n_principals; j++) {
            if (memcmp(s->principals[j].key, list[i].key, CW_CURVE_KEY_BYTES) == 0) {
                snprintf(err, err_len,
                         "%s: the key of %s is also listed for %s in the other key list; a key "
                         "is either a client key or an admin key",
                         path, list[i].holder, s->principals[j].holder);
                free(list);
                return CW_ECONFIG;
            }
        }
        struct cw_net_principal *p = &s->principals[s->n_principals++];
        memset(p, 0, sizeof(*p));
        memcpy(p->key, list[i].key, CW_CURVE_KEY_BYTES);
        p->role = role;
        snprintf(p->holder, sizeof(p->holder), "%s", list[i].holder);
    }
    free(list);
    return CW_OK;
}

/*
 * Fills the security part of ncfg from the config: with curve, this region's key
 * pair, every region's public key and the client and admin keys; with none, a
 * warning, and a refusal to bind other than loopback addresses unless the config
 * allows it. Every refusal is one line naming the file and what to do.
 */
static int setup_security(struct cw_server *s, struct cw_net_config *ncfg, char *err,
                          size_t err_len)
{
    const struct cw_config *c = s->cfg;
    const struct cw_region_config *me = &c->regions[s->region];
    if (c->security != CW_SECURITY_CURVE) {
        const char *eps[3] = {me->client, me->peer, me->admin};
        for (int i = 0; i < 3; i++) {
            if (!endpoint_local(eps[i]) && !c->allow_open_nonlocal) {
                snprintf(err, err_len,
                         "%s: security = none, and region %s would bind %s, which other hosts "
                         "can reach: anyone there could write, read and cut links. Set "
                         "security = curve (docs/operations.md, \"Security\"), or, on a "
                         "network you trust, allow_open_nonlocal = true in [cluster]",
                         c->path, me->name, eps[i]);
                return CW_ECONFIG;
            }
        }
        cw_warn("security = none: the client, peer and admin endpoints are open to anyone who "
                "can reach them%s; set security = curve to require keys",
                c->allow_open_nonlocal ? " (allow_open_nonlocal = true)" : " on this host");
        return CW_OK;
    }
    int rc = cw_config_check_security(c, err, err_len);
    if (rc != CW_OK)
        return rc;
    if (me->secret_key_file[0] == '\0') {
        snprintf(err, err_len,
                 "%s: [region %s] has no secret_key_file, and security = curve needs this "
                 "region's key pair; set secret_key_file to the file 'causeway keygen --out "
                 "FILE' wrote",
                 c->path, me->name);
        return CW_ECONFIG;
    }
    char why[1024];
    if (cw_curve_read_pair(me->secret_key_file, &ncfg->self_pair, why, sizeof(why)) != 0) {
        snprintf(err, err_len, "region %s: %s", me->name, why);
        return CW_ECONFIG;
    }
    for (unsigned i = 0; i < c->n_regions; i++) {
        if (!cw_curve_decode(c->regions[i].public_key, ncfg->region_keys[i])) {
            snprintf(err, err_len,
                     "%s: the public_key of [region %s] does not decode; set it to the key "
                     "'causeway keygen' printed for that region",
                     c->path, c->regions[i].name);
            return CW_ECONFIG;
        }
    }
    if (memcmp(ncfg->region_keys[s->region], ncfg->self_pair.public_key, CW_CURVE_KEY_BYTES) != 0) {
        snprintf(err, err_len,
                 "%s: the key pair in %s is not region %s's: its public key differs from "
                 "public_key in [region %s]; give the right secret_key_file or update "
                 "public_key (and every node's config)",
                 c->path, me->secret_key_file, me->name, me->name);
        return CW_ECONFIG;
    }
    if (c->client_keys_file[0] != '\0') {
        rc = add_principals(s, c->client_keys_file, CW_NET_ROLE_CLIENT, err, err_len);
        if (rc != CW_OK)
            return rc;
    }
    if (c->admin_keys_file[0] != '\0') {
        rc = add_principals(s, c->admin_keys_file, CW_NET_ROLE_ADMIN, err, err_len);
        if (rc != CW_OK)
            return rc;
    }
    for (size_t j = 0; j < s->n_principals; j++) {
        for (unsigned i = 0; i < c->n_regions; i++) {
            if (memcmp(s->principals[j].key, ncfg->region_keys[i], CW_CURVE_KEY_BYTES) == 0) {
                snprintf(err, err_len,
                         "%s: the key of %s in a client or admin key list is region %s's "
                         "public key; give clients and admins keys of their own",
                         c->path, s->principals[j].holder, c->regions[i].name);
                return CW_ECONFIG;
            }
        }
    }
    ncfg->curve = true;
    ncfg->principals = s->principals;
    ncfg->n_principals = s->n_principals;
    ncfg->auth_log = auth_log_line;
    ncfg->auth_log_ctx = s;
    size_t admins = 0;
    for (size_t j = 0; j < s->n_principals; j++)
        admins += s->principals[j].role == CW_NET_ROLE_ADMIN;
    cw_info("security = curve: every endpoint requires CURVE; %zu client and %zu admin keys "
            "allowed",
            s->n_principals - admins, admins);
    return CW_OK;
}

/* ------------------------------------------------------------- lifecycle */

/*
 * The client connection cap in force: client_connections_max, or derived from
 * the open-file limit (which main raised as far as the hard limit allows) when
 * it is 0, never more than the limit leaves after the reserve. Logs the result,
 * and a warning when the configured value had to be lowered.
 */
static uint32_t client_connections_cap(const struct cw_config *c)
{
    uint64_t reserve = FD_RESERVE_BASE + (uint64_t)FD_RESERVE_PER_REGION * c->n_regions;
    uint64_t allowed = CLIENT_CONNECTIONS_CEILING;
    struct rlimit rl;
    bool limited = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    uint64_t limit = limited ? (uint64_t)rl.rlim_cur : 0;
    if (limited)
        allowed = limit > reserve ? limit - reserve : 0;
    if (allowed > CLIENT_CONNECTIONS_CEILING)
        allowed = CLIENT_CONNECTIONS_CEILING;
    if (allowed == 0) {
        cw_warn("the open-file limit %" PRIu64 " leaves no descriptor for client connections "
                "after the %" PRIu64 " kept for the store, peers and ZeroMQ; allowing 1 client "
                "connection: raise the hard limit (ulimit -Hn, or LimitNOFILE= in a systemd "
                "unit)",
                limit, reserve);
        allowed = 1;
    }
    uint32_t cap = (uint32_t)allowed;
    if (c->client_connections_max == 0) {
        if (limited)
            cw_info("client connections: at most %u (the open-file limit %" PRIu64
                    " less %" PRIu64 " descriptors kept for the store, peers and ZeroMQ; set "
                    "client_connections_max to choose)",
                    cap, limit, reserve);
        else
            cw_info("client connections: at most %u (no open-file limit; set "
                    "client_connections_max to choose)",
                    cap);
    } else if (c->client_connections_max > allowed) {
        cw_warn("client_connections_max = %u in %s is more than the open-file limit %" PRIu64
                " allows (%" PRIu64 " descriptors are kept for the store, peers and ZeroMQ); "
                "using %u: raise the hard limit (ulimit -Hn, or LimitNOFILE= in a systemd "
                "unit) or lower client_connections_max",
                c->client_connections_max, c->path, limit, reserve, cap);
    } else {
        cap = c->client_connections_max;
        cw_info("client connections: at most %u (client_connections_max)", cap);
    }
    return cap;
}

static uint64_t pick_seed(void)
{
    const char *env = getenv("CAUSEWAY_SEED");
    if (env != NULL && *env != '\0') {
        char *end = NULL;
        unsigned long long v = strtoull(env, &end, 10);
        if (end != NULL && *end == '\0')
            return v;
        cw_warn("CAUSEWAY_SEED='%s' is not a decimal number; drawing a seed instead", env);
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = cw_net_now_us() ^ ((uint64_t)getpid() << 32);
    return seed;
}

/* splitmix64: the node's generator, seeded once. */
static uint64_t server_rand(void *ctx)
{
    uint64_t *state = ctx;
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int cw_server_open(const struct cw_config *cfg, unsigned region, struct cw_server **out, char *err,
                   size_t err_len)
{
    return cw_server_open_rebuild(cfg, region, -1, out, err, err_len);
}

int cw_server_open_rebuild(const struct cw_config *cfg, unsigned region, int rebuild_from,
                           struct cw_server **out, char *err, size_t err_len)
{
    *out = NULL;
    const char *data_dir = cfg->regions[region].data_dir;
    char marker[sizeof(cfg->regions[0].data_dir) + 32];
    snprintf(marker, sizeof(marker), "%s/%s", data_dir, REBUILD_MARKER);
    if (rebuild_from >= 0) {
        if (rebuild_from >= (int)cfg->n_regions || (unsigned)rebuild_from == region) {
            snprintf(err, err_len, "--rebuild-from must name another region of the cluster");
            return CW_ECONFIG;
        }
        if (!dir_empty(data_dir)) {
            snprintf(err, err_len,
                     "--rebuild-from needs an empty data directory, and %s is not empty: a "
                     "rebuild replaces a lost disk; move the directory away first (or start "
                     "without --rebuild-from to recover from it)",
                     data_dir);
            return CW_ECONFIG;
        }
    } else if (access(marker, F_OK) == 0) {
        snprintf(err, err_len,
                 "%s holds an interrupted rebuild (%s): its state is incomplete; remove the "
                 "directory and start again with --rebuild-from REGION",
                 data_dir, REBUILD_MARKER);
        return CW_ECONFIG;
    }
    struct cw_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, err_len, "out of memory");
        return CW_ENOMEM;
    }
    s->cfg = cfg;
    s->region = region;
    s->rebuild_from = rebuild_from;
    s->started_mono_us = cw_net_mono_us();
    cw_wire_limits_default(&s->limits);
    /* The transport accepts any value that fits in a frame, so that the replica,
     * not the decoder, refuses a value over max_value_bytes: its error says
     * "value too large" instead of "malformed request". */
    s->limits.value_bytes_max = (uint32_t)(s->limits.frame_bytes_max / 2);
    struct cw_net_config ncfg;
    memset(&ncfg, 0, sizeof(ncfg));
    int rc = pending_init(s);
    if (rc != CW_OK) {
        snprintf(err, err_len, "out of memory");
        goto err_after_alloc;
    }
    /* Security first: a node that cannot provide what the config asks for stops
     * before it touches its data directory. */
    rc = setup_security(s, &ncfg, err, err_len);
    if (rc != CW_OK)
        goto err_after_alloc;

    enum cw_durability dur;
    if (cw_durability_parse(cfg->durability, &dur) != CW_OK) {
        rc = CW_ECONFIG;
        snprintf(err, err_len, "%s: bad durability '%s'", cfg->path, cfg->durability);
        goto err_after_alloc;
    }
    /* The directory must be this region's of this cluster; a cluster is named by
     * its region list in id order, which fixes what every stored dot means. */
    _Static_assert(CW_REGIONS_MAX * (CW_REGION_NAME_MAX + 1) <= CW_STORE_CLUSTER_MAX &&
                       CW_REGION_NAME_MAX <= CW_STORE_REGION_MAX,
                   "every region list fits a store identity");
    struct cw_store_identity want = {0};
    for (unsigned i = 0; i < cfg->n_regions; i++) {
        if (i > 0)
            strcat(want.cluster, ",");
        strcat(want.cluster, cfg->regions[i].name);
    }
    snprintf(want.region, sizeof(want.region), "%s", cfg->regions[region].name);
    const char *dir = cfg->regions[region].data_dir;
    rc = cw_store_open_cache(dir, &want, dur, cfg->store_cache_bytes, &s->store, err, err_len);
    if (rc == CW_OK)
        cw_store_set_checkpoint_bytes(s->store, cfg->checkpoint_bytes);
    if (rc != CW_OK)
        goto err_after_alloc;
    const struct cw_store_identity *id = cw_store_get_identity(s->store);
    if (cw_store_created(s->store))
        cw_info(
            "new data directory %s: created for region %s of cluster %s, incarnation %016" PRIx64,
            dir, id->region, id->cluster, id->incarnation);
    else
        cw_info("data directory %s: region %s of cluster %s, incarnation %016" PRIx64, dir,
                id->region, id->cluster, id->incarnation);
    if (cw_store_upgraded(s->store))
        cw_info("data directory %s: upgraded from store format 2 to 3 (added an empty raft.db)",
                dir);
    if (dur == CW_DURABILITY_NOSYNC)
        cw_warn("durability = nosync: commits are not flushed; a crash can lose acknowledged "
                "writes. Use it for benchmarks only.");
    struct cw_node_config ncfg_core = {0};
    cw_config_replica(cfg, region, &ncfg_core.replica);
    cw_config_strong(cfg, region, &ncfg_core.strong);
    s->context_ahead_max_us = ncfg_core.replica.context_ahead_max_us;
    if (rebuild_from >= 0) {
        ncfg_core.replica.rebuild = true;
        ncfg_core.replica.rebuild_from = (unsigned)rebuild_from;
    }
    /* The node's randomness: a seed from the kernel, or CAUSEWAY_SEED to replay
     * a run; logged either way. */
    s->seed = pick_seed();
    s->rng_state = s->seed;
    cw_info("random seed %" PRIu64 " (set CAUSEWAY_SEED to reuse it)", s->seed);
    ncfg_core.rand = (struct cw_rand){.next = server_rand, .ctx = &s->rng_state};
    /* Berkeley DB is the store of record: the replica keeps what it decides
     * with and reads key states and outbox bodies back through the store. */
    ncfg_core.replica.reader = cw_store_reader(s->store);
    s->node = cw_node_create(&ncfg_core);
    if (s->node == NULL) {
        rc = CW_ENOMEM;
        snprintf(err, err_len, "cannot create the replica (out of memory or bad config)");
        goto err_after_store;
    }

    struct cw_store_load_stats ls = {0};
    rc = cw_store_load(s->store, s->node, &ls, err, err_len);
    if (rc != CW_OK)
        goto err_after_node;
    cw_info("recovered %zu keys, %zu outbox records and %zu Raft entries%s from %s", ls.keys,
            ls.outbox, ls.raft_entries, ls.raft_snapshot ? " after a Raft snapshot" : "", dir);
    if (rebuild_from >= 0) {
        /* Until the rebuild is committed, a restart must not take this
         * directory for a complete one. */
        int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || fsync(fd) != 0) {
            snprintf(err, err_len, "cannot create %s: %s", marker, strerror(errno));
            if (fd >= 0)
                close(fd);
            rc = CW_EIO;
            goto err_after_node;
        }
        close(fd);
        s->rebuilding = true;
        cw_info("rebuilding: copying the state of region %s; clients are refused until it "
                "is done",
                cfg->regions[rebuild_from].name);
    }

    ncfg.self = region;
    ncfg.n_regions = cfg->n_regions;
    for (unsigned i = 0; i < cfg->n_regions; i++) {
        snprintf(ncfg.names[i], sizeof(ncfg.names[i]), "%s", cfg->regions[i].name);
        snprintf(ncfg.peer_endpoints[i], sizeof(ncfg.peer_endpoints[i]), "%s",
                 cfg->regions[i].peer);
        ncfg.delay_ms[i] = cfg->latency_ms[region][i];
    }
    snprintf(ncfg.client_endpoint, sizeof(ncfg.client_endpoint), "%s", cfg->regions[region].client);
    snprintf(ncfg.admin_endpoint, sizeof(ncfg.admin_endpoint), "%s", cfg->regions[region].admin);
    ncfg.jitter_ms = cfg->jitter_ms;
    ncfg.seed = s->seed ^ ((uint64_t)region << 48); /* CAUSEWAY_SEED replays the jitter too */
    ncfg.frame_bytes_max = s->limits.frame_bytes_max;
    s->client_connections_max = client_connections_cap(cfg);
    ncfg.client_connections_max = s->client_connections_max;
    /* Refused connections (keys, the connection cap) go to the log. */
    ncfg.auth_log = auth_log_line;
    ncfg.auth_log_ctx = s;
    rc = cw_net_open(&ncfg, &s->net, err, err_len);
    /* The net keeps its own copy of the secret key. */
    wipe(&ncfg.self_pair, sizeof(ncfg.self_pair));
    if (rc != CW_OK)
        goto err_after_node;
    *out = s;
    return CW_OK;

err_after_node:
    cw_node_destroy(&s->node);
err_after_store:
    cw_store_close(&s->store);
err_after_alloc:
    wipe(&ncfg.self_pair, sizeof(ncfg.self_pair));
    free(s->principals);
    free(s->pending);
    free(s->free_slots);
    free(s);
    return rc;
}

/* Answers every request still waiting (a read or write parked for its session's
 * context, or one of a round that was not committed) with err and why before
 * the node goes away, so no client waits for its time-out. */
static void answer_pending(struct cw_server *s, int err, const char *why)
{
    for (size_t slot = 0; slot < s->pending_max; slot++) {
        struct pending *p = &s->pending[slot];
        if (!p->used)
            continue;
        struct cw_wire_response resp;
        memset(&resp, 0, sizeof(resp));
        resp.op = p->op;
        resp.req_id = p->client_req_id;
        resp.err = err;
        snprintf(resp.message, sizeof(resp.message), "%s", why);
        send_response(s, p->kind, p->route, p->route_len, &resp);
        p->used = false;
    }
}

int cw_server_run(struct cw_server *s, volatile sig_atomic_t *stop)
{
    const struct cw_region_config *me = &s->cfg->regions[s->region];
    cw_info("region %s (id %u) serving clients on %s, peers on %s, admin on %s", me->name,
            s->region, me->client, me->peer, me->admin);
    unsigned poll_errors = 0;
    while (!*stop) {
        /* Timers run on the monotonic clock; the wall clock only stamps. */
        uint64_t now = cw_net_mono_us();
        uint64_t since_tick_us = now > s->last_tick_us ? now - s->last_tick_us : 0;
        int wait_ms =
            since_tick_us >= TICK_MS * 1000ull ? 0 : TICK_MS - (int)(since_tick_us / 1000);
        /* Local writes held by the replica's flush gap: tick when it ends. */
        uint64_t flush_due = cw_replica_flush_due_us(cw_node_replica(s->node));
        if (flush_due != 0) {
            int due_ms = flush_due <= now ? 0 : (int)((flush_due - now + 999) / 1000);
            if (due_ms < wait_ms)
                wait_ms = due_ms;
        }
        /* Fold every input that is already waiting into one round. */
        for (int n = 0; n < BATCH_EVENTS_MAX; n++) {
            struct cw_net_event ev;
            int rc = cw_net_poll(s->net, n == 0 ? wait_ms : 0, &ev);
            if (rc != CW_OK) {
                if (*stop)
                    break;
                /* A transport that keeps failing must not spin the loop or flood
                 * the log: back off, and give up after a minute of failures. */
                poll_errors++;
                if (poll_errors == 1 || poll_errors % 100 == 0)
                    cw_warn("transport error (%u in a row): %s", poll_errors, cw_strerror(rc));
                if (poll_errors >= 600) {
                    cw_error("the transport keeps failing; stopping");
                    s->stop = CW_SERVER_STOP_OTHER;
                    return CW_ENET;
                }
                struct timespec pause = {0, 100 * 1000 * 1000};
                nanosleep(&pause, NULL);
                break;
            }
            poll_errors = 0;
            if (ev.kind == CW_NET_NONE)
                break;
            struct cw_now at = {.real_us = cw_net_now_us(), .mono_us = cw_net_mono_us()};
            if (ev.kind == CW_NET_PEER)
                handle_peer(s, &ev, at);
            else
                handle_request(s, &ev, at);
        }
        now = cw_net_mono_us();
        flush_due = cw_replica_flush_due_us(cw_node_replica(s->node));
        if (s->last_tick_us == 0 || now - s->last_tick_us >= TICK_MS * 1000ull ||
            (flush_due != 0 && now >= flush_due)) {
            cw_node_tick(s->node, (struct cw_now){.real_us = cw_net_now_us(), .mono_us = now});
            s->last_tick_us = now;
            uint64_t refused = cw_replica_stats(cw_node_replica(s->node))->stamps_refused;
            if (refused > s->stamps_refused_seen && now - s->stamps_warned_us > 10000000ull) {
                cw_warn("refused %" PRIu64 " peer messages whose stamps are more than %llu s "
                        "ahead of this host's clock; replication from that region is "
                        "stalled until the clocks agree: check NTP on every host",
                        refused - s->stamps_refused_seen,
                        (unsigned long long)(s->context_ahead_max_us / 1000000));
                s->stamps_refused_seen = refused;
                s->stamps_warned_us = now;
            }
        }
        int rc = read_report(s);
        if (rc == CW_OK)
            rc = process_ready(s);
        if (rc != CW_OK)
            return rc; /* the store failed: the waiting clients were answered */
    }
    /* Commit what was decided before stopping: nothing acknowledged is lost. */
    int rc = read_report(s);
    if (rc == CW_OK)
        rc = process_ready(s);
    if (rc != CW_OK)
        return rc;
    /* A checkpoint keeps the next start short; when it fails nothing is lost. */
    if (cw_store_checkpoint(s->store) != CW_OK)
        cw_warn("%s; nothing is lost: the next start replays the log", cw_store_errmsg(s->store));
    char why[128];
    snprintf(why, sizeof(why), "region %s is shutting down; this request was not carried out",
             s->cfg->regions[s->region].name);
    answer_pending(s, CW_EUNAVAILABLE, why);
    cw_info("stopped cleanly");
    return CW_OK;
}

enum cw_server_stop cw_server_stop_reason(const struct cw_server *s)
{
    return s->stop;
}

bool cw_server_store_panicked(const struct cw_server *s)
{
    return cw_store_panicked(s->store);
}

void cw_server_destroy(struct cw_server **sp)
{
    struct cw_server *s = *sp;
    if (s == NULL)
        return;
    cw_net_close(&s->net);
    cw_node_destroy(&s->node); /* before the store it reads from */
    cw_store_close(&s->store);
    free(s->principals);
    free(s->pending);
    free(s->free_slots);
    free(s);
    *sp = NULL;
}
