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
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
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
/* ZAP requests and monitor events handled in one pass, for the same reason. */
#define ZAP_PER_PASS 64
/* The sockets cw_net_poll waits on: the ROUTERs, the ZAP handler, a monitor per
 * ROUTER; the index of each in cw_net.drained. */
#define ITEMS_MAX (2 * SOCK_COUNT + 1)
#define ITEM_ZAP SOCK_COUNT
#define ITEM_MONITOR(s) (SOCK_COUNT + 1 + (s))
/* The longest cw_net_poll waits on its sockets' ZMQ_FDs before trying every
 * socket again. The daemon itself waits at most its tick (10 ms). */
#define RECHECK_MS 100
/* A ZAP request has 7 frames for CURVE and 6 for NULL (RFC 27); anything longer
 * is malformed. */
#define ZAP_FRAMES_MAX 8
/* Monitor events read before a client's ZAP request is decided, so that the
 * count of open connections includes every connection accepted so far. */
#define MONITOR_DRAIN_MAX 4096
/* A client connection that has not finished its handshake by then is closed:
 * until it does, it holds a descriptor and counts against the cap. */
#define CLIENT_HANDSHAKE_IVL_MS 10000
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* Remote addresses remembered for rate-limiting the refusal log lines. */
#define AUTH_LOG_SLOTS 64
#define AUTH_LOG_INTERVAL_US 1000000u
#define AUTH_ADDR_MAX 64

enum sock_id { SOCK_CLIENT, SOCK_ADMIN, SOCK_PEER, SOCK_COUNT };

static const char *const sock_label[SOCK_COUNT] = {"client", "admin", "peer"};

/* When a refusal was last logged for one remote address. */
struct auth_slot {
    char addr[AUTH_ADDR_MAX];
    uint64_t last_us;
    uint64_t suppressed; /* refusals not logged since */
};

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
    /* A socket found empty (a receive said EAGAIN) and not signalled since:
     * not tried again until its ZMQ_FD says there is news (see cw_net_poll).
     * Indexed by item: the ROUTERs, then the ZAP handler, then the monitors.
     * Each receive attempt costs libzmq two system calls (its fork check and
     * its mailbox poll), and a round asked every empty socket once per event it
     * took from the others, and zmq_poll four more per socket. */
    bool drained[ITEMS_MAX];
    struct cw_net_stats stats;
    /* CurveZMQ (see net.h): the ZAP handler, a monitor per ROUTER for failed
     * handshakes, the keys admitted, and the refusal log's rate limit. */
    bool curve;
    void *zap;
    void *monitor[SOCK_COUNT];
    struct cw_curve_pair self_pair; /* wiped when the net is freed */
    uint8_t region_keys[CW_REGIONS_MAX][CW_CURVE_KEY_BYTES];
    struct cw_net_principal *principals;
    size_t n_principals;
    uint32_t client_connections_max; /* 0: no cap */
    uint64_t accept_warned_us;       /* when an accept failure was last logged */
    void (*auth_log)(void *ctx, const char *line);
    void *auth_log_ctx;
    struct auth_slot auth_slots[AUTH_LOG_SLOTS];
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

/* A PAIR socket receiving the ROUTER's events: failed handshakes with CURVE,
 * and on the client socket the connections opened and closed (always). */
static int open_monitor(struct cw_net *n, enum sock_id which, char *err, size_t err_len)
{
    char ep[96];
    snprintf(ep, sizeof(ep), "inproc://causeway-monitor-%s-%p", sock_label[which], (void *)n);
    int events = 0;
    if (n->curve)
        events |= ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                  ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (which == SOCK_CLIENT)
        events |= ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_ACCEPT_FAILED;
    if (zmq_socket_monitor(n->router[which], ep, events) != 0) {
        cw_net_errf(err, err_len, "cannot monitor the %s socket: %s", sock_label[which],
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    void *mon = zmq_socket(n->ctx, ZMQ_PAIR);
    if (mon == NULL) {
        cw_net_errf(err, err_len, "cannot create the %s monitor: %s", sock_label[which],
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    n->monitor[which] = mon;
    if (set_int(mon, ZMQ_LINGER, 0) != 0 || zmq_connect(mon, ep) != 0) {
        cw_net_errf(err, err_len, "cannot connect the %s monitor: %s", sock_label[which],
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    return CW_OK;
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
     * connection is noticed dead; let the new one take over instead of being refused.
     * With CURVE the peers choose no routing id (the key says who they are), so
     * there is nothing to hand over, and a key holder cannot take another region's
     * connection by naming itself after it. */
    if (which == SOCK_PEER && !n->curve && set_int(sock, ZMQ_ROUTER_HANDOVER, 1) != 0) {
        cw_net_errf(err, err_len, "cannot configure the peer socket: %s",
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    if (n->curve &&
        (set_int(sock, ZMQ_CURVE_SERVER, 1) != 0 ||
         zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, n->self_pair.secret_key, CW_CURVE_KEY_BYTES) !=
             0 ||
         zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, sock_label[which], strlen(sock_label[which])) != 0)) {
        cw_net_errf(err, err_len, "cannot make the %s socket a CURVE server: %s", sock_label[which],
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    /* Without CURVE the client socket still asks the ZAP handler (libzmq's NULL
     * mechanism does when a ZAP domain is set), which enforces the connection
     * cap; a client that never finishes its handshake is closed in time. */
    if (which == SOCK_CLIENT &&
        ((!n->curve && zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, sock_label[which],
                                      strlen(sock_label[which])) != 0) ||
         set_int(sock, ZMQ_HANDSHAKE_IVL, CLIENT_HANDSHAKE_IVL_MS) != 0)) {
        cw_net_errf(err, err_len, "cannot configure the client socket: %s",
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    if (n->curve || which == SOCK_CLIENT) {
        int rc = open_monitor(n, which, err, err_len);
        if (rc != CW_OK)
            return rc;
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
    /* With CURVE the key says who this region is; the receiving ROUTER then picks
     * the routing id, so two connections can never claim the same one. */
    if (set_common_options(sock, n->frame_bytes_max, sndhwm, 16) != 0 ||
        (!n->curve &&
         zmq_setsockopt(sock, ZMQ_ROUTING_ID, n->names[n->self], n->name_len[n->self]) != 0) ||
        (n->curve && (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, n->region_keys[peer],
                                     CW_CURVE_KEY_BYTES) != 0 ||
                      zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, n->self_pair.public_key,
                                     CW_CURVE_KEY_BYTES) != 0 ||
                      zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, n->self_pair.secret_key,
                                     CW_CURVE_KEY_BYTES) != 0)) ||
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

/*
 * Copies the keys and binds the ZAP handler. Without a handler bound in the
 * context, libzmq's CURVE server admits every client key, so a node that cannot
 * bind it must not start.
 */
static int setup_curve(struct cw_net *n, const struct cw_net_config *cfg, char *err, size_t err_len)
{
    if (!cw_curve_available()) {
        cw_net_errf(err, err_len,
                    "security = curve, but this ZeroMQ library has no CURVE support; install a "
                    "libzmq built with libsodium (Debian's libzmq5 is)");
        return CW_ECONFIG;
    }
    n->curve = true;
    n->self_pair = cfg->self_pair;
    memcpy(n->region_keys, cfg->region_keys, sizeof(n->region_keys));
    if (cfg->n_principals > 0) {
        n->principals = calloc(cfg->n_principals, sizeof(*n->principals));
        if (n->principals == NULL) {
            cw_net_errf(err, err_len, "out of memory for %zu client and admin keys",
                        cfg->n_principals);
            return CW_ENOMEM;
        }
        memcpy(n->principals, cfg->principals, cfg->n_principals * sizeof(*n->principals));
        n->n_principals = cfg->n_principals;
    }
    return CW_OK;
}

/*
 * Binds the ZAP handler, with or without CURVE: it admits the keys (CURVE) and
 * caps the client connections (both).
 */
static int setup_zap(struct cw_net *n, const struct cw_net_config *cfg, char *err, size_t err_len)
{
    n->auth_log = cfg->auth_log;
    n->auth_log_ctx = cfg->auth_log_ctx;
    n->client_connections_max = cfg->client_connections_max;
    n->zap = zmq_socket(n->ctx, ZMQ_REP);
    if (n->zap == NULL) {
        cw_net_errf(err, err_len, "cannot create the ZAP handler's socket: %s",
                    zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    if (set_int(n->zap, ZMQ_LINGER, 0) != 0 || zmq_bind(n->zap, ZAP_ENDPOINT) != 0) {
        cw_net_errf(err, err_len,
                    "cannot bind the ZAP handler at %s: %s; without it CURVE would admit any "
                    "key and client connections would have no cap, so the node stops",
                    ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        return CW_ENET;
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
        if (n->monitor[i] != NULL)
            zmq_close(n->monitor[i]);
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
    if (n->zap != NULL)
        zmq_close(n->zap);
    if (n->ctx != NULL)
        zmq_ctx_term(n->ctx);
    free(n->principals);
    /* The secret key does not outlive the net in freed memory. */
    volatile uint8_t *p = (volatile uint8_t *)&n->self_pair;
    for (size_t i = 0; i < sizeof(n->self_pair); i++)
        p[i] = 0;
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

    if (cfg->curve) {
        rc = setup_curve(n, cfg, err, err_len);
        if (rc != CW_OK)
            goto err_after_alloc;
    }
    rc = setup_zap(n, cfg, err, err_len);
    if (rc != CW_OK)
        goto err_after_alloc;

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

/* ------------------------------------------------------------ ZAP and monitors */

/* Logs one refusal through auth_log, at most once a second per remote address. */
static void auth_note(struct cw_net *n, const char *addr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void auth_note(struct cw_net *n, const char *addr, const char *fmt, ...)
{
    if (n->auth_log == NULL)
        return;
    uint64_t now = cw_net_mono_us();
    struct auth_slot *slot = NULL, *oldest = &n->auth_slots[0];
    for (size_t i = 0; i < AUTH_LOG_SLOTS; i++) {
        struct auth_slot *s = &n->auth_slots[i];
        if (s->last_us != 0 && strncmp(s->addr, addr, AUTH_ADDR_MAX - 1) == 0) {
            slot = s;
            break;
        }
        if (s->last_us < oldest->last_us)
            oldest = s;
    }
    if (slot != NULL && now - slot->last_us < AUTH_LOG_INTERVAL_US) {
        slot->suppressed++;
        return;
    }
    uint64_t suppressed = 0;
    if (slot == NULL) {
        /* A new address takes the slot logged longest ago. */
        slot = oldest;
        snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
    } else {
        suppressed = slot->suppressed;
    }
    slot->last_us = now;
    slot->suppressed = 0;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (suppressed > 0 && len >= 0 && (size_t)len < sizeof(line))
        snprintf(line + len, sizeof(line) - (size_t)len,
                 " (%" PRIu64 " more from there in the last second, not logged)", suppressed);
    n->auth_log(n->auth_log_ctx, line);
}

/* The user id for key in domain, or NULL when the key is not admitted there. */
static const char *zap_admit(const struct cw_net *n, const char *domain, const uint8_t *key,
                             char *user, size_t user_len)
{
    if (strcmp(domain, sock_label[SOCK_PEER]) == 0) {
        for (unsigned i = 0; i < n->n_regions; i++) {
            if (i != n->self && memcmp(n->region_keys[i], key, CW_CURVE_KEY_BYTES) == 0) {
                snprintf(user, user_len, "%s", n->names[i]);
                return user;
            }
        }
        return NULL;
    }
    if (strcmp(domain, sock_label[SOCK_CLIENT]) != 0 && strcmp(domain, sock_label[SOCK_ADMIN]) != 0)
        return NULL;
    for (size_t i = 0; i < n->n_principals; i++) {
        const struct cw_net_principal *p = &n->principals[i];
        if (memcmp(p->key, key, CW_CURVE_KEY_BYTES) == 0) {
            snprintf(user, user_len, "%s:%s", p->role == CW_NET_ROLE_ADMIN ? "admin" : "client",
                     p->holder);
            return user;
        }
    }
    return NULL;
}

/* Copies frame f (at most cap - 1 bytes) as a string; false when it does not fit
 * or holds a NUL. */
static bool frame_text(zmq_msg_t *f, char *out, size_t cap)
{
    size_t len = zmq_msg_size(f);
    if (len >= cap || memchr(zmq_msg_data(f), '\0', len) != NULL)
        return false;
    memcpy(out, zmq_msg_data(f), len);
    out[len] = '\0';
    return true;
}

/* Handles one event of a ROUTER's monitor, if one is waiting. Returns true when
 * an event was handled. */
static bool monitor_serve_one(struct cw_net *n, enum sock_id which)
{
    zmq_msg_t head;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, n->monitor[which], ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        if (zmq_errno() == EAGAIN)
            n->drained[ITEM_MONITOR(which)] = true;
        return false;
    }
    /* libzmq's event message: frame 1 holds the event (16 bits) and its value
     * (32 bits) in host order, frame 2 the endpoint. */
    uint16_t event = 0;
    uint32_t value = 0;
    if (zmq_msg_size(&head) >= 6) {
        memcpy(&event, zmq_msg_data(&head), sizeof(event));
        memcpy(&value, (const uint8_t *)zmq_msg_data(&head) + 2, sizeof(value));
    }
    if (zmq_msg_more(&head))
        drain_parts(n->monitor[which]);
    zmq_msg_close(&head);
    if (which == SOCK_CLIENT && event == ZMQ_EVENT_ACCEPTED) {
        n->stats.client_connections++;
    } else if (which == SOCK_CLIENT && event == ZMQ_EVENT_DISCONNECTED) {
        /* Every accepted connection ends with one DISCONNECTED, also one that
         * failed its handshake or was refused. */
        if (n->stats.client_connections > 0)
            n->stats.client_connections--;
    } else if (which == SOCK_CLIENT && event == ZMQ_EVENT_ACCEPT_FAILED) {
        n->stats.accept_failures++;
        uint64_t now = cw_net_mono_us();
        if (n->auth_log != NULL && now - n->accept_warned_us >= AUTH_LOG_INTERVAL_US) {
            n->accept_warned_us = now;
            char line[256];
            snprintf(line, sizeof(line),
                     "cannot accept a connection on the client endpoint: %s (%" PRIu64
                     " failures so far); lower client_connections_max or raise the open-file "
                     "limit",
                     strerror((int)value), n->stats.accept_failures);
            n->auth_log(n->auth_log_ctx, line);
        }
    } else if (n->curve && (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                            event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)) {
        /* A key the ZAP handler refused is counted and logged there, with its
         * address. */
        n->stats.handshakes_failed++;
        char where[32];
        snprintf(where, sizeof(where), "%s endpoint", sock_label[which]);
        auth_note(n, where,
                  "a connection to the %s failed the CURVE handshake (a client without CURVE, "
                  "a wrong server key, or garbage); it was closed",
                  where);
    }
    return true;
}

/*
 * Answers one ZAP request, if one is waiting (RFC 27). With CURVE, admits only
 * the keys of zap_admit; without, every NULL request of the client domain (the
 * only socket that asks). On the client endpoint, a connection that would be
 * above client_connections_max is then refused with 500 (see net.h for why not
 * 300). Every other request, malformed ones included, gets 400. Returns true
 * when a request was handled.
 */
static bool zap_serve_one(struct cw_net *n)
{
    zmq_msg_t f[ZAP_FRAMES_MAX];
    size_t nf = 0;
    bool more = true, malformed = false;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, n->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            if (nf == 0) {
                if (zmq_errno() == EAGAIN)
                    n->drained[ITEM_ZAP] = true;
                return false;
            }
            malformed = true; /* cannot happen: a message arrives whole */
            break;
        }
        more = zmq_msg_more(&part);
        if (nf < ZAP_FRAMES_MAX)
            f[nf++] = part;
        else {
            zmq_msg_close(&part);
            malformed = true;
        }
    }
    char version[8] = "", domain[32] = "", addr[AUTH_ADDR_MAX] = "?", mech[16] = "";
    const uint8_t *key = NULL;
    if (nf < 6 || !frame_text(&f[0], version, sizeof(version)) || strcmp(version, "1.0") != 0 ||
        !frame_text(&f[2], domain, sizeof(domain)) || !frame_text(&f[5], mech, sizeof(mech)))
        malformed = true;
    else if (n->curve && (nf != 7 || strcmp(mech, "CURVE") != 0 ||
                          zmq_msg_size(&f[6]) != CW_CURVE_KEY_BYTES))
        malformed = true;
    else if (!n->curve &&
             (nf != 6 || strcmp(mech, "NULL") != 0 || strcmp(domain, sock_label[SOCK_CLIENT]) != 0))
        malformed = true;
    if (nf > 3 && !frame_text(&f[3], addr, sizeof(addr)))
        snprintf(addr, sizeof(addr), "?");
    if (!malformed && n->curve)
        key = zmq_msg_data(&f[6]);
    char user[CW_NET_USER_MAX + 1] = "";
    const char *admitted = NULL;
    if (key != NULL)
        admitted = zap_admit(n, domain, key, user, sizeof(user));
    else if (!malformed)
        admitted = user; /* NULL mechanism: no user id */

    /* The cap: the connection asking is open already, so it is one of them.
     * Its ACCEPTED event came before its ZAP request: read the monitor first. */
    bool full = false;
    uint64_t open_now = 0;
    if (admitted != NULL && n->client_connections_max > 0 &&
        strcmp(domain, sock_label[SOCK_CLIENT]) == 0) {
        for (int i = 0; i < MONITOR_DRAIN_MAX && monitor_serve_one(n, SOCK_CLIENT); i++)
            ;
        open_now = n->stats.client_connections;
        full = open_now > n->client_connections_max;
    }

    /* Reply: version, request id (echoed), status code, status text, user id,
     * metadata. The request id is echoed even from a malformed request, so that
     * libzmq can match the answer. */
    static const char *const deny = "400", *const busy = "500", *const ok = "200";
    char busy_text[96];
    snprintf(busy_text, sizeof(busy_text), "too many client connections (%" PRIu64 " of max %u)",
             open_now, n->client_connections_max);
    const char *code = full ? busy : admitted ? ok : deny;
    const char *text = full        ? busy_text
                       : admitted  ? "OK"
                       : malformed ? "malformed ZAP request"
                                   : "key not allowed";
    bool pass = admitted != NULL && !full;
    zmq_send(n->zap, "1.0", 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (nf > 1)
        zmq_send(n->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    else
        zmq_send(n->zap, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->zap, code, 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->zap, text, strlen(text), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->zap, pass ? user : "", pass ? strlen(user) : 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->zap, "", 0, ZMQ_DONTWAIT);
    n->drained[ITEM_ZAP] = false; /* a send may take the mailbox's signal */

    if (full) {
        n->stats.client_connections_refused++;
        auth_note(n, addr,
                  "refused a connection from %s on the client endpoint: %s; the client is told "
                  "to retry later (raise client_connections_max if the host has descriptors "
                  "to spare)",
                  addr, text);
    } else if (!admitted) {
        n->stats.auth_refused++;
        char z85[CW_CURVE_Z85_LEN + 1] = "(none)";
        if (key != NULL)
            cw_curve_encode(key, z85);
        auth_note(n, addr,
                  "refused a connection from %s on the %s endpoint: %s (public key %s); list "
                  "the key in the config if it should be let in",
                  addr, domain[0] ? domain : "?", text, z85);
    }
    for (size_t i = 0; i < nf; i++)
        zmq_msg_close(&f[i]);
    return true;
}

/* Serves the ZAP handler and the monitors, a bounded number of messages each;
 * the monitors first, so that the connection count is current when a ZAP
 * request is decided. */
static void security_pass(struct cw_net *n)
{
    for (int s = 0; s < SOCK_COUNT; s++)
        for (int i = 0; i < ZAP_PER_PASS && n->monitor[s] != NULL &&
                        !n->drained[ITEM_MONITOR(s)] && monitor_serve_one(n, s);
             i++)
            ;
    for (int i = 0; i < ZAP_PER_PASS && n->zap != NULL && !n->drained[ITEM_ZAP] && zap_serve_one(n);
         i++)
        ;
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

/*
 * With CURVE: the region whose key the message's connection authenticated with
 * (the ZAP user id is its name), or CW_REGIONS_MAX when there is none (cannot
 * happen past the ZAP handler). *mismatch is set when the peer chose a routing id
 * that is not its key's region (the ROUTER's own ids start with a zero byte).
 */
static unsigned authenticated_region(struct cw_net *n, const uint8_t *id, size_t id_len,
                                     bool *mismatch)
{
    *mismatch = false;
    const char *user = zmq_msg_gets(&n->held, "User-Id");
    if (user == NULL)
        return CW_REGIONS_MAX;
    unsigned peer = region_of(n, (const uint8_t *)user, strlen(user));
    if (peer == CW_REGIONS_MAX)
        return CW_REGIONS_MAX;
    if (id_len > 0 && id[0] != 0 &&
        (id_len != n->name_len[peer] || memcmp(id, n->names[peer], id_len) != 0))
        *mismatch = true;
    return peer;
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
        if (e == EAGAIN)
            n->drained[which] = true;
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
        bool mismatch = false;
        unsigned peer = n->curve ? authenticated_region(n, id_data, id_len, &mismatch)
                                 : region_of(n, id_data, id_len);
        if (mismatch) {
            /* The key is a region's, the routing id names another. */
            release_held(n);
            n->stats.peer_identity_refused++;
            goto done_id;
        }
        if (peer >= n->n_regions) {
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
        ev->may_admin = !n->curve;
        ev->user[0] = '\0';
        if (n->curve) {
            const char *user = zmq_msg_gets(&n->held, "User-Id");
            if (user != NULL) {
                snprintf(ev->user, sizeof(ev->user), "%s", user);
                ev->may_admin = strncmp(user, "admin:", 6) == 0;
            }
        }
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
        if (n->drained[which])
            continue;
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
    /* The ZMQ_FD of the ROUTERs, the ZAP handler and the monitors. Waiting on
     * these directly, not with zmq_poll: zmq_poll asks every socket for its
     * events before and after it waits, two system calls each, about twenty
     * per wait. A ZMQ_FD is readable when its socket has news in its mailbox;
     * only a socket drained by a receive (EAGAIN) is left to it, and a send or
     * a quiet wait makes a socket be tried again (see drained). */
    struct pollfd pfd[ITEMS_MAX];
    int item_of[ITEMS_MAX];
    int n_fds = 0;
    for (int i = 0; i < ITEMS_MAX; i++) {
        void *sock = i < SOCK_COUNT     ? n->router[i]
                     : i == ITEM_ZAP    ? n->zap
                                        : n->monitor[i - ITEM_MONITOR(0)];
        int fd;
        size_t fd_len = sizeof(fd);
        if (sock == NULL || zmq_getsockopt(sock, ZMQ_FD, &fd, &fd_len) != 0)
            continue;
        pfd[n_fds] = (struct pollfd){.fd = fd, .events = POLLIN};
        item_of[n_fds++] = i;
    }

    bool polled = false;
    for (;;) {
        flush_all(n, now);
        security_pass(n);
        bool got;
        int rc = recv_pass(n, ev, &got);
        if (rc != CW_OK || got)
            return rc;
        now = cw_net_mono_us();
        /* A drained socket may have news since: a call looks (without waiting)
         * at least once before it says "nothing". */
        if (now >= deadline && polled)
            return CW_OK;
        uint64_t wait = now >= deadline ? 0 : deadline - now;
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
        /* However long the caller would wait, look again at every socket at
         * least this often (below: a wait that nothing ended), so a signal
         * that libzmq consumed early can delay a message, never strand it. */
        if (wait_ms < 0 || wait_ms > RECHECK_MS)
            wait_ms = RECHECK_MS;
        int ready = poll(pfd, (nfds_t)n_fds, (int)wait_ms);
        polled = true;
        if (ready < 0) {
            /* A signal: return so the daemon can look at its flags. */
            if (errno == EINTR)
                return CW_OK;
            return CW_ENET;
        }
        if (ready == 0 && wait_ms != 0) {
            /* A wait that nothing ended: try every socket again, so news whose
             * signal a libzmq call took early waits at most one wait (the
             * daemon's loop waits at most one tick). */
            memset(n->drained, 0, sizeof(n->drained));
        } else {
            for (int i = 0; i < n_fds; i++)
                if (pfd[i].revents != 0)
                    n->drained[item_of[i]] = false;
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
    enum sock_id which = kind == CW_NET_CLIENT ? SOCK_CLIENT : SOCK_ADMIN;
    void *sock = n->router[which];
    /* A send processes the socket's commands, among them the news of requests
     * that arrived: its ZMQ_FD may then stay quiet although one waits. */
    n->drained[which] = false;
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
