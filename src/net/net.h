/*
 * net.h - the ZeroMQ transport of one region node, with WAN emulation.
 *
 * A cw_net owns every socket of causewayd: a ROUTER bound at the client endpoint,
 * a ROUTER bound at the admin endpoint, a ROUTER bound at the peer endpoint that
 * receives replication frames from the other regions, and one DEALER per other
 * region connected to that region's peer endpoint (its routing id is this region's
 * name, so the receiving ROUTER knows which region sent a frame).
 *
 * The transport moves opaque byte frames; it never parses a payload (the wire
 * layer does). It is NOT reliable on purpose: the core replica acknowledges and
 * resends, so a frame that cannot be sent right now (peer not connected, ZeroMQ
 * queue full, link queue full, link cut) is dropped and counted, and no call ever
 * blocks beyond the timeout it is given.
 *
 * WAN emulation lives in the sender. Each outbound link (this region -> peer p)
 * has a one-way delay plus optional jitter (uniform 0..jitter_ms, from a PRNG
 * seeded by cw_net_config.seed, which causewayd derives from its logged random
 * seed and the region id, so CAUSEWAY_SEED replays the jitter draws too) that
 * never reorders the link: a frame's due time is
 * max(now + delay + jitter, due time of the previous frame on that link). Frames
 * wait in a bounded per-link queue until due and are sent by cw_net_poll (or at
 * once by cw_net_send_peer when already due). The admin side can change a link's
 * delay, cut it (drop what is queued and everything sent while cut) and heal it.
 * Cutting is one-directional: it affects only frames this node sends.
 *
 * Security (cw_net_config.curve): every endpoint can be a CurveZMQ server, with a
 * ZAP handler served by cw_net_poll on the caller's thread. A peer frame's region
 * is then the one whose key the connection authenticated with (the ZAP user id
 * on the message), never the routing id the peer chose. The same handler, bound
 * with or without CURVE, caps the client connections
 * (cw_net_config.client_connections_max).
 *
 * Threading: a cw_net is used by one thread (the daemon's event loop).
 */
#ifndef CW_NET_NET_H
#define CW_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h" /* CW_REGIONS_MAX, CW_REGION_NAME_MAX, CW_ENDPOINT_MAX */
#include "net/curvekeys.h"

#define CW_NET_NAME_MAX (CW_REGION_NAME_MAX + 1)  /* a region name plus NUL */
#define CW_NET_ENDPOINT_MAX (CW_ENDPOINT_MAX + 1) /* an endpoint plus NUL */
#define CW_NET_ROUTE_MAX 256                      /* ZeroMQ routing ids are 1..255 bytes */
#define CW_NET_FRAME_BYTES_DEFAULT (16u * 1024u * 1024u)
#define CW_NET_LINK_QUEUE_DEFAULT 10000u
#define CW_NET_LINK_QUEUE_LIMIT (1u << 20) /* largest accepted link_queue_max */
/* An authenticated user id: a region name, or "client:HOLDER" / "admin:HOLDER". */
#define CW_NET_USER_MAX (CW_CURVE_HOLDER_MAX + 8)

/* What a client or admin key may do (security = curve). */
enum cw_net_role { CW_NET_ROLE_CLIENT = 1, CW_NET_ROLE_ADMIN = 2 };

/* One key allowed on the client and admin endpoints. */
struct cw_net_principal {
    uint8_t key[CW_CURVE_KEY_BYTES];
    enum cw_net_role role;
    char holder[CW_CURVE_HOLDER_MAX + 1]; /* NUL-terminated, 1..CW_CURVE_HOLDER_MAX bytes */
};

struct cw_net_config {
    unsigned self, n_regions; /* ids are config order, n_regions <= CW_REGIONS_MAX */
    /* Region names, 1..32 bytes, distinct; a name is the routing id of that
     * region's DEALERs, so it must not start with a zero byte. */
    char names[CW_REGIONS_MAX][CW_NET_NAME_MAX];
    /* Every region's peer endpoint; self's is bound, the others are connected. */
    char peer_endpoints[CW_REGIONS_MAX][CW_NET_ENDPOINT_MAX];
    char client_endpoint[CW_NET_ENDPOINT_MAX]; /* this region's, bound */
    char admin_endpoint[CW_NET_ENDPOINT_MAX];  /* this region's, bound */
    uint32_t delay_ms[CW_REGIONS_MAX];         /* one-way delay self -> region */
    uint32_t jitter_ms;                        /* extra delay, uniform in 0..jitter_ms */
    uint64_t seed;                             /* seeds the jitter PRNG */
    /* Largest frame accepted on any bound socket and sent to a peer; larger
     * inbound frames make ZeroMQ drop the connection. 0 means the default. Every
     * region must use the same value. */
    size_t frame_bytes_max;
    /* Frames waiting per outbound link; 0 means the default. */
    size_t link_queue_max;

    /*
     * CurveZMQ. With curve false every endpoint uses ZeroMQ's NULL mechanism (no
     * authentication, no encryption) and the fields below are ignored. With curve
     * true, a ZAP handler is bound in the net's context before any other socket
     * (failing to bind it fails cw_net_open); the three ROUTERs are CURVE servers
     * with self_pair's secret key; each DEALER is a CURVE client that expects
     * region_keys[peer] as the server key. The ZAP handler admits, on the peer
     * endpoint, only the public keys of the other regions (user id: the region's
     * name); on the client and admin endpoints only the principals' keys (user
     * id "client:HOLDER" or "admin:HOLDER"); everything else, malformed ZAP
     * requests included, gets status 400 and is counted in auth_refused.
     */
    bool curve;
    struct cw_curve_pair self_pair;
    uint8_t region_keys[CW_REGIONS_MAX][CW_CURVE_KEY_BYTES];
    /* Borrowed for cw_net_open, which copies them. */
    const struct cw_net_principal *principals;
    size_t n_principals;
    /* Called (from cw_net_poll, on the caller's thread) with one line describing
     * a refused connection, at most once a second per remote address; NULL: no
     * lines. The line is borrowed for the call. */
    void (*auth_log)(void *ctx, const char *line);
    void *auth_log_ctx;

    /*
     * Client connections (docs/operations.md, "Connection limits"). The client
     * ROUTER always has a ZAP domain ("client"), so libzmq asks the ZAP handler
     * about every connection on it, with CURVE or the NULL mechanism; a monitor
     * counts its connections (accepted minus disconnected: every descriptor a
     * client connection holds, also while its handshake runs). When a
     * connection's ZAP request finds more than client_connections_max open, the
     * handler answers status 500 with the text "too many client connections (N
     * of max M)": libzmq then sends the client an ERROR command carrying "500"
     * and closes the connection. (Not 300: libzmq 4.3 sends no ERROR for a
     * 300, and keeps the connection, descriptor included, until the handshake
     * time-out.) 0 means no cap. The refusals count in
     * client_connections_refused, and are logged through auth_log.
     */
    uint32_t client_connections_max;
};

struct cw_net;

/*
 * Validates cfg, binds the three ROUTERs and connects one DEALER per other region.
 * On success *out owns the sockets; free it with cw_net_close. On failure *out is
 * NULL and err (if err_len > 0) holds a sentence saying what failed and what to do,
 * e.g. "cannot bind client endpoint tcp://127.0.0.1:7001: Address already in use;
 * is another causewayd running?". Returns CW_ECONFIG for a bad config or endpoint,
 * CW_ENET when a socket cannot be bound or set up, CW_ENOMEM.
 */
int cw_net_open(const struct cw_net_config *cfg, struct cw_net **out, char *err, size_t err_len);

/* Closes every socket at once (queued and in-flight frames are discarded), frees
 * the net and sets *n to NULL. NULL or *n == NULL is a no-op. */
void cw_net_close(struct cw_net **n);

/*
 * Queues frame for region `peer`, due after that link's delay and jitter; sends
 * it at once when it is already due. Takes ownership of `frame` (malloc'd) in every
 * case, also on error. Returns CW_OK when queued or sent, and also when the link is
 * cut (the frame is dropped and counted, as a real partition would lose it);
 * CW_EFULL when the link queue is full, CW_ETOOBIG when len > frame_bytes_max
 * (both dropped and counted); CW_EREGION when peer is self or not a region.
 * Callers may ignore drops: the replica's resend protocol repairs them.
 */
int cw_net_send_peer(struct cw_net *n, unsigned peer, uint8_t *frame, size_t len);

enum cw_link_op { CW_LINK_OP_CUT = 1, CW_LINK_OP_HEAL = 2, CW_LINK_OP_DELAY = 3 };

/*
 * Changes the outbound link to `peer`. CUT drops every queued frame and every frame
 * sent until HEAL; DELAY sets the one-way delay to delay_ms for frames sent from now
 * on (frames already queued keep their due times, so the link is never reordered).
 * delay_ms is ignored for CUT and HEAL. Returns CW_EREGION for a bad peer,
 * CW_EINVAL for an unknown op or a delay over CW_LINK_DELAY_MS_MAX (core/limits.h,
 * the bound of the config's [latency] too). A new delay
 * applies to the frames already queued too (shifted by the change, in order).
 */
int cw_net_link(struct cw_net *n, unsigned peer, enum cw_link_op op, uint32_t delay_ms);

struct cw_link_status {
    bool cut;
    uint32_t delay_ms;
    size_t queued;           /* frames waiting to fall due */
    uint64_t frames_sent;    /* handed to ZeroMQ */
    uint64_t frames_dropped; /* cut, queue full, too big, or ZeroMQ could not take it */
    uint64_t bytes_sent;
    uint64_t frames_received; /* inbound frames from that region */
};

/* Fills *out for the link to `peer`; all zero for self or an unknown id. */
void cw_net_link_status(const struct cw_net *n, unsigned peer, struct cw_link_status *out);

/* Node-wide counters of input that was refused. */
struct cw_net_stats {
    uint64_t malformed_dropped;           /* messages with an unexpected number of frames */
    uint64_t unknown_peer_dropped;        /* peer frames from a routing id that is no region */
    uint64_t auth_refused;                /* curve: connections whose key the ZAP handler refused */
    uint64_t handshakes_failed;           /* curve: connections that failed the handshake (no CURVE,
                                           * a wrong server key, garbage) */
    uint64_t peer_identity_refused;       /* curve: peer frames whose routing id names another
                                           * region than the key they authenticated with */
    uint64_t replies_dropped;             /* replies whose client was gone or too slow */
    uint64_t client_frames, admin_frames; /* requests delivered */
    uint64_t client_connections;          /* open on the client endpoint now */
    uint64_t client_connections_refused;  /* refused at client_connections_max */
    uint64_t accept_failures;             /* connections the client endpoint could not accept
                                           * (out of descriptors) */
};

void cw_net_stats(const struct cw_net *n, struct cw_net_stats *out);

enum cw_net_kind { CW_NET_NONE = 0, CW_NET_PEER = 1, CW_NET_CLIENT = 2, CW_NET_ADMIN = 3 };

struct cw_net_event {
    enum cw_net_kind kind;
    unsigned peer; /* CW_NET_PEER: the sending region's id */
    /* The frame. Borrowed: owned by the net and valid until the next cw_net_poll
     * or cw_net_close. Not NUL-terminated; len may be 0. */
    uint8_t *data;
    size_t len;
    /* CW_NET_CLIENT / CW_NET_ADMIN: the requester's routing id, a value copy, so a
     * reply may be sent later (e.g. a read that waits for its dependencies). */
    uint8_t route[CW_NET_ROUTE_MAX];
    size_t route_len;
    /* CW_NET_CLIENT / CW_NET_ADMIN: whether the requester may run admin commands
     * (always with security none; with curve, when it authenticated with an admin
     * key), and its authenticated user id ("" with security none). */
    bool may_admin;
    char user[CW_NET_USER_MAX + 1];
};

/*
 * Sends every due frame, then waits for one inbound frame for at most timeout_ms
 * (0: do not wait; negative: no limit), sending frames as they fall due while it
 * waits. Sockets are served in turn so no kind of traffic starves another; messages
 * with a wrong frame count or an unknown peer id are dropped and counted. Returns
 * CW_OK with ev->kind == CW_NET_NONE on timeout or when a signal interrupted the
 * wait (so the caller can check its flags); CW_ENET when ZeroMQ fails.
 */
int cw_net_poll(struct cw_net *n, int timeout_ms, struct cw_net_event *ev);

/*
 * Sends one reply frame (copied) to the requester of ev (kind CLIENT or ADMIN) on
 * the socket it came in on. Never blocks: returns CW_EUNAVAILABLE when the client
 * has gone, CW_EFULL when its queue is full (both counted in replies_dropped),
 * CW_EINVAL for an event that cannot be replied to.
 */
int cw_net_reply(struct cw_net *n, const struct cw_net_event *ev, const uint8_t *data, size_t len);

/* Same as cw_net_reply, from a saved kind and route (deferred replies). */
int cw_net_reply_route(struct cw_net *n, enum cw_net_kind kind, const uint8_t *route,
                       size_t route_len, const uint8_t *data, size_t len);

/* Milliseconds (rounded up) until the next queued frame is due: 0 when one is
 * overdue, -1 when nothing is queued. */
int cw_net_next_due_ms(const struct cw_net *n);

/* CLOCK_REALTIME in microseconds: the daemon's physical clock for the HLC. */
uint64_t cw_net_now_us(void);

#endif
