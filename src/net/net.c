/*
 * net.c - the ZeroMQ transport of one region node, with WAN emulation.
 *
 * See net.h for the contract. Two rules shape everything here: nothing blocks
 * (every send is ZMQ_DONTWAIT, every socket has ZMQ_LINGER 0) and nothing relies
 * on ZeroMQ for reliability (a frame ZeroMQ cannot take right now is dropped and
 * counted; the replica's acknowledgements and resends repair the loss).
 */
#include "net/net.h"

#include "core/cw_assert.h"
#include "net/netutil.h"

#include <causeway/error.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

/* Pipes of the client and admin ROUTERs: requests are small and clients wait for
 * each reply, so a thousand messages per connection is far more than needed. */
#define CLIENT_HWM 1000
/* Reconnect quickly on loopback, back off to once a second for a region that is down. */
#define RECONNECT_IVL_MS 100
#define RECONNECT_IVL_MAX_MS 1000
/* ZMTP heartbeats let a DEALER notice a peer that vanished without closing TCP, so
 * ZMQ_IMMEDIATE stops queueing to it. */
#define HEARTBEAT_IVL_MS 1000
#define HEARTBEAT_TIMEOUT_MS 5000
/* Refused messages handled per socket in one receive pass, so a flood of garbage on
 * one socket cannot keep cw_net_poll from serving the others or from returning. */
#define DROPS_PER_PASS 64

enum sock_id { SOCK_CLIENT, SOCK_ADMIN, SOCK_PEER, SOCK_COUNT };

static const char *const sock_label[SOCK_COUNT] = {"client", "admin", "peer"};

/* A frame waiting on a link until its due time (CLOCK_MONOTONIC microseconds). */
struct pending {
    uint64_t due_us;
    uint8_t *data; /* owned */
    size_t len;
};

/* One outbound link this region -> peer, plus the inbound count from that peer. */
struct link {
    void *dealer; /* NULL for self */
    bool cut;
    uint32_t delay_ms;
    uint64_t last_due_us; /* due time of the last frame queued: later frames never go before */
    struct pending *ring; /* link_queue_max slots */
    size_t head, count;
    uint64_t frames_sent, frames_dropped, bytes_sent, frames_received;
};

struct cw_net {
    void *ctx;
    void *router[SOCK_COUNT];
    unsigned self, n_regions;
    char names[CW_REGIONS_MAX][CW_NET_NAME_MAX];
    size_t name_len[CW_REGIONS_MAX];
    size_t frame_bytes_max, link_queue_max;
    uint32_t jitter_ms;
    uint64_t rng; /* xorshift64* state, never 0 */
    struct link links[CW_REGIONS_MAX];
    /* The frame of the last event, lent to the caller until the next poll. */
    zmq_msg_t held;
    bool held_live;
    unsigned next_sock; /* round-robin start of the next receive pass */
    struct cw_net_stats stats;
};

uint64_t cw_net_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* splitmix64 spreads any seed (also 0) over the state; xorshift64* draws from it. */
static uint64_t rng_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z != 0 ? z : 0x2545f4914f6cdd1dull;
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint64_t jitter_us(struct cw_net *n)
{
    if (n->jitter_ms == 0)
        return 0;
    return rng_next(&n->rng) % ((uint64_t)n->jitter_ms * 1000u + 1u);
}

/* zmq_msg_init_data's free function: ZeroMQ calls it (possibly from its I/O thread)
 * once the frame has been written or discarded. */
static void free_frame(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* True when s is NUL-terminated within cap bytes and not empty. */
static bool string_ok(const char *s, size_t cap)
{
    return s[0] != '\0' && memchr(s, '\0', cap) != NULL;
}

static int validate_config(const struct cw_net_config *cfg, char *err, size_t err_len)
{
    if (cfg->n_regions < 1 || cfg->n_regions > CW_REGIONS_MAX) {
        cw_net_errf(err, err_len, "the config names %u regions; use 1 to %d", cfg->n_regions,
                    CW_REGIONS_MAX);
        return CW_ECONFIG;
    }
    if (cfg->self >= cfg->n_regions) {
        cw_net_errf(err, err_len, "region id %u is not one of the %u regions in the config",
                    cfg->self, cfg->n_regions);
        return CW_ECONFIG;
    }
    for (unsigned i = 0; i < cfg->n_regions; i++) {
        if (!string_ok(cfg->names[i], CW_NET_NAME_MAX)) {
            cw_net_errf(err, err_len, "region %u has an empty or overlong name; use 1 to %d bytes",
                        i, CW_NET_NAME_MAX - 1);
            return CW_ECONFIG;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(cfg->names[i], cfg->names[j]) == 0) {
                cw_net_errf(err, err_len,
                            "region name %s appears twice; give each region its own name",
                            cfg->names[i]);
                return CW_ECONFIG;
            }
        }
        if (!string_ok(cfg->peer_endpoints[i], CW_NET_ENDPOINT_MAX)) {
            cw_net_errf(err, err_len,
                        "region %s has an empty or overlong peer endpoint; use at most %d bytes",
                        cfg->names[i], CW_NET_ENDPOINT_MAX - 1);
            return CW_ECONFIG;
        }
    }
    if (!string_ok(cfg->client_endpoint, CW_NET_ENDPOINT_MAX) ||
        !string_ok(cfg->admin_endpoint, CW_NET_ENDPOINT_MAX)) {
        cw_net_errf(err, err_len, "region %s has an empty or overlong client or admin endpoint",
                    cfg->names[cfg->self]);
        return CW_ECONFIG;
    }
    const char *bound[SOCK_COUNT] = {cfg->client_endpoint, cfg->admin_endpoint,
                                     cfg->peer_endpoints[cfg->self]};
    for (int i = 0; i < SOCK_COUNT; i++) {
        for (int j = 0; j < i; j++) {
            /* A wildcard port ("tcp://127.0.0.1:*") may legitimately repeat. */
            if (strcmp(bound[i], bound[j]) == 0 && strchr(bound[i], '*') == NULL) {
                cw_net_errf(
                    err, err_len,
                    "the %s and %s endpoints of region %s are both %s; give each its own port",
                    sock_label[j], sock_label[i], cfg->names[cfg->self], bound[i]);
                return CW_ECONFIG;
            }
        }
    }
    if (cfg->link_queue_max > CW_NET_LINK_QUEUE_LIMIT) {
        cw_net_errf(err, err_len, "link_queue_max %zu is too large; use at most %u frames",
                    cfg->link_queue_max, CW_NET_LINK_QUEUE_LIMIT);
        return CW_ECONFIG;
    }
    if (cfg->frame_bytes_max > (size_t)INT64_MAX) {
        cw_net_errf(err, err_len, "frame_bytes_max %zu is too large", cfg->frame_bytes_max);
        return CW_ECONFIG;
    }
    return CW_OK;
}

static int set_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof value);
}

/* Options every socket of the node shares: never linger on close (the replica
 * resends), refuse frames over the bound, accept IPv6 endpoints too. */
static int set_common_options(void *sock, size_t frame_bytes_max, int sndhwm, int rcvhwm)
{
    int64_t maxmsg = (int64_t)frame_bytes_max;
    if (set_int(sock, ZMQ_LINGER, 0) != 0 || set_int(sock, ZMQ_SNDHWM, sndhwm) != 0 ||
        set_int(sock, ZMQ_RCVHWM, rcvhwm) != 0 || set_int(sock, ZMQ_IPV6, 1) != 0)
        return -1;
    return zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
}

/* Endpoint errors that the config can fix, as opposed to the system or the network. */
static bool endpoint_errno_is_config(int e)
{
    return e == EINVAL || e == EPROTONOSUPPORT || e == ENODEV || e == EADDRNOTAVAIL ||
           e == ENOCOMPATPROTO;
}

static int open_router(struct cw_net *n, enum sock_id which, const char *endpoint, int hwm,
                       char *err, size_t err_len)
{
    void *sock = zmq_socket(n->ctx, ZMQ_ROUTER);
    if (sock == NULL) {
        cw_net_errf(err, err_len, "cannot create the %s socket: %s; raise the open file limit",
                    sock_label[which], zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    n->router[which] = sock;
    if (set_common_options(sock, n->frame_bytes_max, hwm, hwm) != 0) {
        cw_net_errf(err, err_len, "cannot configure the %s socket: %s", sock_label[which],
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    /* Replies to a vanished client must fail visibly (counted), not vanish. */
    if (which != SOCK_PEER && set_int(sock, ZMQ_ROUTER_MANDATORY, 1) != 0) {
        cw_net_errf(err, err_len, "cannot configure the %s socket: %s", sock_label[which],
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    /* A restarted region reconnects with the same routing id before the old
     * connection is noticed dead; let the new one take over instead of being refused. */
    if (which == SOCK_PEER && set_int(sock, ZMQ_ROUTER_HANDOVER, 1) != 0) {
        cw_net_errf(err, err_len, "cannot configure the peer socket: %s",
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    if (zmq_bind(sock, endpoint) != 0) {
        int e = zmq_errno();
        const char *hint = e == EADDRINUSE               ? "; is another causewayd running?"
                           : endpoint_errno_is_config(e) ? "; check the endpoint in the config"
                                                         : "";
        cw_net_errf(err, err_len, "cannot bind %s endpoint %s: %s%s", sock_label[which], endpoint,
                    zmq_strerror(e), hint);
        return endpoint_errno_is_config(e) ? CW_ECONFIG : CW_ENET;
    }
    return CW_OK;
}

static int open_dealer(struct cw_net *n, const struct cw_net_config *cfg, unsigned peer, char *err,
                       size_t err_len)
{
    struct link *l = &n->links[peer];
    void *sock = zmq_socket(n->ctx, ZMQ_DEALER);
    if (sock == NULL) {
        cw_net_errf(err, err_len, "cannot create the socket to region %s: %s", cfg->names[peer],
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    l->dealer = sock;
    /* The send pipe can hold as many frames as the link queue, so a burst of frames
     * falling due together is not dropped by ZeroMQ while the peer is healthy. Nothing
     * is ever received on this socket. */
    int sndhwm = (int)n->link_queue_max;
    if (set_common_options(sock, n->frame_bytes_max, sndhwm, 16) != 0 ||
        zmq_setsockopt(sock, ZMQ_ROUTING_ID, n->names[n->self], n->name_len[n->self]) != 0 ||
        set_int(sock, ZMQ_IMMEDIATE, 1) != 0 ||
        set_int(sock, ZMQ_RECONNECT_IVL, RECONNECT_IVL_MS) != 0 ||
        set_int(sock, ZMQ_RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS) != 0 ||
        set_int(sock, ZMQ_HEARTBEAT_IVL, HEARTBEAT_IVL_MS) != 0 ||
        set_int(sock, ZMQ_HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS) != 0) {
        cw_net_errf(err, err_len, "cannot configure the socket to region %s: %s", cfg->names[peer],
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    if (zmq_connect(sock, cfg->peer_endpoints[peer]) != 0) {
        int e = zmq_errno();
        cw_net_errf(err, err_len, "cannot connect to the peer endpoint %s of region %s: %s%s",
                    cfg->peer_endpoints[peer], cfg->names[peer], zmq_strerror(e),
                    endpoint_errno_is_config(e) ? "; check the endpoint in the config" : "");
        return endpoint_errno_is_config(e) ? CW_ECONFIG : CW_ENET;
    }
    return CW_OK;
}

static void release_held(struct cw_net *n)
{
    if (n->held_live) {
        zmq_msg_close(&n->held);
        n->held_live = false;
    }
}

static void link_clear(struct cw_net *n, struct link *l, bool count_drops)
{
    while (l->count > 0) {
        struct pending *f = &l->ring[l->head];
        free(f->data);
        f->data = NULL;
        l->head = (l->head + 1) % n->link_queue_max;
        l->count--;
        if (count_drops)
            l->frames_dropped++;
    }
    l->head = 0;
}

/* Frees everything, also a partly opened net. */
static void net_destroy(struct cw_net *n)
{
    release_held(n);
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++) {
        struct link *l = &n->links[i];
        if (l->dealer != NULL)
            zmq_close(l->dealer);
        if (l->ring != NULL) {
            link_clear(n, l, false);
            free(l->ring);
        }
    }
    for (int i = 0; i < SOCK_COUNT; i++) {
        if (n->router[i] == NULL)
            continue;
        /* The last replies to clients (answers to requests cut short by the stop)
         * get a moment to leave; peer traffic is repaired by resends anyway. */
        if (i != SOCK_PEER) {
            int linger_ms = 500;
            zmq_setsockopt(n->router[i], ZMQ_LINGER, &linger_ms, sizeof(linger_ms));
        }
        zmq_close(n->router[i]);
    }
    /* Peer sockets have ZMQ_LINGER 0 and client/admin ones at most 500 ms, so
     * terminating the context waits at most that long. */
    if (n->ctx != NULL)
        zmq_ctx_term(n->ctx);
    free(n);
}

int cw_net_open(const struct cw_net_config *cfg, struct cw_net **out, char *err, size_t err_len)
{
    cw_net_errf(err, err_len, "%s", "");
    if (out == NULL)
        return CW_EINVAL;
    *out = NULL;
    if (cfg == NULL) {
        cw_net_errf(err, err_len, "no network configuration given");
        return CW_EINVAL;
    }
    int rc = validate_config(cfg, err, err_len);
    if (rc != CW_OK)
        return rc;

    struct cw_net *n = calloc(1, sizeof *n);
    if (n == NULL) {
        cw_net_errf(err, err_len, "out of memory opening the network");
        return CW_ENOMEM;
    }
    n->self = cfg->self;
    n->n_regions = cfg->n_regions;
    n->frame_bytes_max =
        cfg->frame_bytes_max != 0 ? cfg->frame_bytes_max : CW_NET_FRAME_BYTES_DEFAULT;
    n->link_queue_max = cfg->link_queue_max != 0 ? cfg->link_queue_max : CW_NET_LINK_QUEUE_DEFAULT;
    n->jitter_ms = cfg->jitter_ms;
    n->rng = rng_seed(cfg->seed);
    for (unsigned i = 0; i < cfg->n_regions; i++) {
        memcpy(n->names[i], cfg->names[i], CW_NET_NAME_MAX);
        n->name_len[i] = strlen(n->names[i]);
        n->links[i].delay_ms = cfg->delay_ms[i];
    }

    n->ctx = zmq_ctx_new();
    if (n->ctx == NULL) {
        cw_net_errf(err, err_len, "cannot create the ZeroMQ context: %s",
                    zmq_strerror(zmq_errno()));
        rc = CW_ENET;
        goto err_after_alloc;
    }
    /* Closing must never wait for frames in flight: the replica resends them. */
    zmq_ctx_set(n->ctx, ZMQ_BLOCKY, 0);

    for (unsigned i = 0; i < cfg->n_regions; i++) {
        if (i == cfg->self)
            continue;
        n->links[i].ring = calloc(n->link_queue_max, sizeof *n->links[i].ring);
        if (n->links[i].ring == NULL) {
            cw_net_errf(err, err_len,
                        "out of memory for %zu-frame link queues; lower link_queue_max",
                        n->link_queue_max);
            rc = CW_ENOMEM;
            goto err_after_alloc;
        }
    }

    rc = open_router(n, SOCK_CLIENT, cfg->client_endpoint, CLIENT_HWM, err, err_len);
    if (rc == CW_OK)
        rc = open_router(n, SOCK_ADMIN, cfg->admin_endpoint, CLIENT_HWM, err, err_len);
    if (rc == CW_OK)
        rc = open_router(n, SOCK_PEER, cfg->peer_endpoints[cfg->self], (int)n->link_queue_max, err,
                         err_len);
    for (unsigned i = 0; rc == CW_OK && i < cfg->n_regions; i++) {
        if (i != cfg->self)
            rc = open_dealer(n, cfg, i, err, err_len);
    }
    if (rc != CW_OK)
        goto err_after_alloc;

    *out = n;
    return CW_OK;

err_after_alloc:
    /* net_destroy releases whatever part of the net was set up. */
    net_destroy(n);
    return rc;
}

void cw_net_close(struct cw_net **n)
{
    if (n == NULL || *n == NULL)
        return;
    net_destroy(*n);
    *n = NULL;
}

/* Hands one frame to ZeroMQ without copying it; data is owned by ZeroMQ (or freed
 * here) afterwards. */
static void link_transmit(struct link *l, uint8_t *data, size_t len)
{
    zmq_msg_t msg;
    if (zmq_msg_init_data(&msg, data, len, free_frame, NULL) != 0) {
        free(data);
        l->frames_dropped++;
        return;
    }
    /* EAGAIN: the peer is not connected (ZMQ_IMMEDIATE) or its pipe is full. */
    if (zmq_msg_send(&msg, l->dealer, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg); /* frees data through free_frame */
        l->frames_dropped++;
        return;
    }
    l->frames_sent++;
    l->bytes_sent += len;
}

static void link_flush(struct cw_net *n, struct link *l, uint64_t now_us)
{
    while (l->count > 0 && l->ring[l->head].due_us <= now_us) {
        struct pending f = l->ring[l->head];
        CW_ASSERT(f.data != NULL || f.len == 0);
        l->ring[l->head].data = NULL;
        l->head = (l->head + 1) % n->link_queue_max;
        l->count--;
        link_transmit(l, f.data, f.len);
    }
}

static void flush_all(struct cw_net *n, uint64_t now_us)
{
    for (unsigned i = 0; i < n->n_regions; i++) {
        if (i != n->self)
            link_flush(n, &n->links[i], now_us);
    }
}

int cw_net_send_peer(struct cw_net *n, unsigned peer, uint8_t *frame, size_t len)
{
    if (n == NULL || peer >= n->n_regions || peer == n->self) {
        free(frame);
        return CW_EREGION;
    }
    if (frame == NULL && len > 0)
        return CW_EINVAL;
    struct link *l = &n->links[peer];
    if (len > n->frame_bytes_max) {
        /* The peer's ZeroMQ would refuse it and drop the whole connection. */
        free(frame);
        l->frames_dropped++;
        return CW_ETOOBIG;
    }
    if (l->cut) {
        free(frame);
        l->frames_dropped++;
        return CW_OK;
    }
    uint64_t now = cw_net_mono_us();
    link_flush(n, l, now); /* frees slots that are due anyway */
    if (l->count == n->link_queue_max) {
        free(frame);
        l->frames_dropped++;
        return CW_EFULL;
    }
    uint64_t due = now + (uint64_t)l->delay_ms * 1000u + jitter_us(n);
    /* Never overtake the previous frame: jitter and delay changes must not reorder. */
    if (due < l->last_due_us)
        due = l->last_due_us;
    l->last_due_us = due;
    CW_ASSERT(l->ring != NULL);
    CW_ASSERT(l->count < n->link_queue_max);
    size_t tail = (l->head + l->count) % n->link_queue_max;
    l->ring[tail] = (struct pending){.due_us = due, .data = frame, .len = len};
    l->count++;
    link_flush(n, l, now);
    return CW_OK;
}

int cw_net_link(struct cw_net *n, unsigned peer, enum cw_link_op op, uint32_t delay_ms)
{
    if (n == NULL || peer >= n->n_regions || peer == n->self)
        return CW_EREGION;
    struct link *l = &n->links[peer];
    switch (op) {
    case CW_LINK_OP_CUT:
        l->cut = true;
        link_clear(n, l, true);
        /* Nothing queued is left to keep order with. */
        l->last_due_us = 0;
        return CW_OK;
    case CW_LINK_OP_HEAL:
        l->cut = false;
        return CW_OK;
    case CW_LINK_OP_DELAY: {
        if (delay_ms > CW_LINK_DELAY_MS_MAX)
            return CW_EINVAL;
        /* Frames already queued move by the change too (a faster link releases
         * them sooner), keeping their order and never falling due in the past. */
        int64_t shift_us = ((int64_t)delay_ms - (int64_t)l->delay_ms) * 1000;
        uint64_t now = cw_net_mono_us(), prev = 0;
        for (size_t i = 0; i < l->count; i++) {
            struct pending *f = &l->ring[(l->head + i) % n->link_queue_max];
            int64_t due = (int64_t)f->due_us + shift_us;
            uint64_t d = due < (int64_t)now ? now : (uint64_t)due;
            f->due_us = d < prev ? prev : d;
            prev = f->due_us;
        }
        if (l->count > 0)
            l->last_due_us = prev;
        l->delay_ms = delay_ms;
        return CW_OK;
    }
    }
    return CW_EINVAL;
}

void cw_net_link_status(const struct cw_net *n, unsigned peer, struct cw_link_status *out)
{
    memset(out, 0, sizeof *out);
    if (n == NULL || peer >= n->n_regions || peer == n->self)
        return;
    const struct link *l = &n->links[peer];
    out->cut = l->cut;
    out->delay_ms = l->delay_ms;
    out->queued = l->count;
    out->frames_sent = l->frames_sent;
    out->frames_dropped = l->frames_dropped;
    out->bytes_sent = l->bytes_sent;
    out->frames_received = l->frames_received;
}

void cw_net_stats(const struct cw_net *n, struct cw_net_stats *out)
{
    memset(out, 0, sizeof *out);
    if (n != NULL)
        *out = n->stats;
}

/* Microseconds until the earliest queued frame is due; UINT64_MAX when none is. */
static uint64_t next_due_in_us(const struct cw_net *n, uint64_t now_us)
{
    uint64_t best = UINT64_MAX;
    for (unsigned i = 0; i < n->n_regions; i++) {
        const struct link *l = &n->links[i];
        if (i == n->self || l->count == 0)
            continue;
        uint64_t due = l->ring[l->head].due_us;
        uint64_t wait = due > now_us ? due - now_us : 0;
        if (wait < best)
            best = wait;
    }
    return best;
}

/* Rounded up so a caller sleeping this long does not wake just before the due time. */
static int us_to_ms_ceil(uint64_t us)
{
    uint64_t ms = (us + 999u) / 1000u;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int cw_net_next_due_ms(const struct cw_net *n)
{
    if (n == NULL)
        return -1;
    uint64_t wait = next_due_in_us(n, cw_net_mono_us());
    return wait == UINT64_MAX ? -1 : us_to_ms_ceil(wait);
}

/* Discards the remaining frames of a message whose previous frame had "more" set.
 * ZeroMQ delivers a message whole, so the rest is already here. */
static void drain_parts(void *sock)
{
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        int more = zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&part);
        zmq_msg_close(&part);
        if (!more)
            return;
    }
}

/* The region whose name is routing id id[0..len), or CW_REGIONS_MAX when none is. */
static unsigned region_of(const struct cw_net *n, const uint8_t *id, size_t len)
{
    for (unsigned i = 0; i < n->n_regions; i++) {
        if (i != n->self && n->name_len[i] == len && memcmp(n->names[i], id, len) == 0)
            return i;
    }
    return CW_REGIONS_MAX;
}

enum recv_outcome { RECV_NOTHING, RECV_EVENT, RECV_DROPPED };

/*
 * Receives at most one message from a ROUTER without waiting. Every ROUTER message
 * MUST be exactly [routing id, frame]; anything else is dropped and counted. On
 * RECV_EVENT the frame is in n->held and ev points at it.
 */
static int recv_one(struct cw_net *n, enum sock_id which, struct cw_net_event *ev,
                    enum recv_outcome *outcome)
{
    void *sock = n->router[which];
    *outcome = RECV_NOTHING;
    zmq_msg_t id;
    zmq_msg_init(&id);
    if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&id);
        return e == EAGAIN || e == EINTR ? CW_OK : CW_ENET;
    }
    *outcome = RECV_DROPPED;
    if (!zmq_msg_more(&id)) {
        n->stats.malformed_dropped++;
        goto done_id;
    }
    zmq_msg_init(&n->held);
    if (zmq_msg_recv(&n->held, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&n->held);
        n->stats.malformed_dropped++;
        goto done_id;
    }
    n->held_live = true;
    if (zmq_msg_more(&n->held)) {
        drain_parts(sock);
        release_held(n);
        n->stats.malformed_dropped++;
        goto done_id;
    }

    const uint8_t *id_data = zmq_msg_data(&id);
    size_t id_len = zmq_msg_size(&id);
    if (which == SOCK_PEER) {
        unsigned peer = region_of(n, id_data, id_len);
        if (peer == CW_REGIONS_MAX) {
            release_held(n);
            n->stats.unknown_peer_dropped++;
            goto done_id;
        }
        ev->kind = CW_NET_PEER;
        ev->peer = peer;
        ev->route_len = 0;
        n->links[peer].frames_received++;
    } else {
        if (id_len == 0 || id_len >= CW_NET_ROUTE_MAX) {
            release_held(n);
            n->stats.malformed_dropped++;
            goto done_id;
        }
        memcpy(ev->route, id_data, id_len);
        ev->route_len = id_len;
        ev->peer = 0;
        if (which == SOCK_CLIENT) {
            ev->kind = CW_NET_CLIENT;
            n->stats.client_frames++;
        } else {
            ev->kind = CW_NET_ADMIN;
            n->stats.admin_frames++;
        }
    }
    ev->data = zmq_msg_data(&n->held);
    ev->len = zmq_msg_size(&n->held);
    *outcome = RECV_EVENT;

done_id:
    zmq_msg_close(&id);
    return CW_OK;
}

/* One receive pass over the ROUTERs, starting at a rotating socket. Sets *got when
 * ev holds an event. */
static int recv_pass(struct cw_net *n, struct cw_net_event *ev, bool *got)
{
    *got = false;
    unsigned start = n->next_sock;
    n->next_sock = (n->next_sock + 1) % SOCK_COUNT;
    for (unsigned k = 0; k < SOCK_COUNT; k++) {
        enum sock_id which = (enum sock_id)((start + k) % SOCK_COUNT);
        for (int drops = 0; drops < DROPS_PER_PASS; drops++) {
            enum recv_outcome outcome;
            int rc = recv_one(n, which, ev, &outcome);
            if (rc != CW_OK)
                return rc;
            if (outcome == RECV_EVENT) {
                *got = true;
                return CW_OK;
            }
            if (outcome == RECV_NOTHING)
                break;
        }
    }
    return CW_OK;
}

int cw_net_poll(struct cw_net *n, int timeout_ms, struct cw_net_event *ev)
{
    if (n == NULL || ev == NULL)
        return CW_EINVAL;
    release_held(n);
    ev->kind = CW_NET_NONE;
    ev->peer = 0;
    ev->data = NULL;
    ev->len = 0;
    ev->route_len = 0;

    uint64_t now = cw_net_mono_us();
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)timeout_ms * 1000u;
    zmq_pollitem_t items[SOCK_COUNT];
    for (int i = 0; i < SOCK_COUNT; i++)
        items[i] = (zmq_pollitem_t){.socket = n->router[i], .events = ZMQ_POLLIN};

    for (;;) {
        flush_all(n, now);
        bool got;
        int rc = recv_pass(n, ev, &got);
        if (rc != CW_OK || got)
            return rc;
        now = cw_net_mono_us();
        if (now >= deadline)
            return CW_OK;
        uint64_t wait = deadline - now;
        uint64_t due = next_due_in_us(n, now);
        if (due < wait)
            wait = due;
        /* Waiting for a frame the WAN emulator holds: wake no later than its
         * due time (rounded down; the sub-millisecond rest polls without
         * sleeping), so an emulated hop adds its configured delay and not up
         * to a millisecond more. */
        long wait_ms = wait == UINT64_MAX ? -1
                       : due == wait      ? (long)(wait / 1000u)
                                          : (long)us_to_ms_ceil(wait);
        if (zmq_poll(items, SOCK_COUNT, wait_ms) < 0) {
            /* A signal: return so the daemon can look at its flags. */
            if (zmq_errno() == EINTR)
                return CW_OK;
            return CW_ENET;
        }
        now = cw_net_mono_us();
    }
}

int cw_net_reply_route(struct cw_net *n, enum cw_net_kind kind, const uint8_t *route,
                       size_t route_len, const uint8_t *data, size_t len)
{
    static const uint8_t empty[1];
    if (n == NULL || (kind != CW_NET_CLIENT && kind != CW_NET_ADMIN) || route == NULL ||
        route_len == 0 || route_len >= CW_NET_ROUTE_MAX || (data == NULL && len > 0))
        return CW_EINVAL;
    void *sock = n->router[kind == CW_NET_CLIENT ? SOCK_CLIENT : SOCK_ADMIN];
    /* With ZMQ_ROUTER_MANDATORY the routing frame fails at once when the client has
     * gone (EHOSTUNREACH) or its pipe is full (EAGAIN); the rest then cannot fail. */
    if (zmq_send(sock, route, route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(sock, data != NULL ? data : empty, len, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        n->stats.replies_dropped++;
        if (e == EHOSTUNREACH)
            return CW_EUNAVAILABLE;
        return e == EAGAIN ? CW_EFULL : CW_ENET;
    }
    return CW_OK;
}

int cw_net_reply(struct cw_net *n, const struct cw_net_event *ev, const uint8_t *data, size_t len)
{
    if (ev == NULL)
        return CW_EINVAL;
    return cw_net_reply_route(n, ev->kind, ev->route, ev->route_len, data, len);
}
