/*
 * netclient.h - the client side of the node's request/reply endpoints.
 *
 * A cw_netclient is one ZeroMQ DEALER connected to a node's client or admin ROUTER
 * (see net.h). It carries exactly one request at a time: send one frame, wait for
 * one reply frame. The frames are opaque here; the wire layer encodes them.
 *
 * This file must not depend on net.c: libcauseway compiles netclient.c into itself.
 * It needs only ZeroMQ and the error enum.
 *
 * Threading: one cw_netclient is used by one thread at a time. Different clients
 * may be used from different threads; they share one ZeroMQ context per process.
 */
#ifndef CW_NET_NETCLIENT_H
#define CW_NET_NETCLIENT_H

#include <stddef.h>
#include <stdint.h>

/* Largest reply frame accepted; a larger one makes ZeroMQ drop the connection and the
 * call times out. Generous: a read may return many siblings of large values. */
#define CW_NETCLIENT_REPLY_BYTES_MAX (256u * 1024u * 1024u)
#define CW_NETCLIENT_ENDPOINT_MAX 1024

struct cw_netclient;

/*
 * Creates a DEALER and starts connecting it to endpoint (e.g. "tcp://127.0.0.1:7001");
 * the connection completes in the background. On success *out is owned by the
 * caller (free with cw_netclient_close). On failure *out is NULL and err (if
 * err_len > 0) says what failed. Returns CW_EINVAL for a malformed endpoint,
 * CW_ENET when ZeroMQ cannot create the socket, CW_ENOMEM.
 */
int cw_netclient_open(const char *endpoint, struct cw_netclient **out, char *err, size_t err_len);

/* CurveZMQ keys of a client connection, binary. */
struct cw_netclient_curve {
    uint8_t server_key[32], public_key[32], secret_key[32];
};

/* cw_netclient_open with CURVE when curve is not NULL (copied; the copy is wiped
 * when the client is closed). */
int cw_netclient_open_curve(const char *endpoint, const struct cw_netclient_curve *curve,
                            struct cw_netclient **out, char *err, size_t err_len);

/*
 * Sends one request frame (req[0..len), borrowed for the call) and waits up to
 * timeout_ms (>= 0) in all for one reply frame. On CW_OK *reply is malloc'd and owned
 * by the caller (never NULL, also for an empty reply) and *reply_len is its length.
 * Errors, with *reply NULL:
 *   CW_EUNAVAILABLE - no connection to the node could be made within timeout_ms
 *                     (nothing was sent);
 *   CW_EFULL        - the node refused the connection because it is at its client
 *                     connection limit (ZAP status 500, or 300; nothing was sent);
 *                     a later call tries again;
 *   CW_EDENIED      - the node refused the connection's key (ZAP status 400;
 *                     nothing was sent);
 *   CW_ETIMEOUT     - the request was sent but no reply came in time; the socket is
 *                     then recreated, so a late reply can never be taken for the
 *                     reply to a later request;
 *   CW_EDECODE      - the reply was not a single frame (socket recreated too);
 *   CW_EINVAL, CW_ENOMEM, CW_ENET.
 */
int cw_netclient_call(struct cw_netclient *c, const uint8_t *req, size_t len, int timeout_ms,
                      uint8_t **reply, size_t *reply_len);

/*
 * Pipelining: several requests in flight on one connection. cw_netclient_send hands
 * one request to ZeroMQ (waiting up to timeout_ms for a connection: CW_EUNAVAILABLE
 * when none was made, CW_EFULL or CW_EDENIED when the node refused it as above,
 * nothing sent); cw_netclient_recv waits up to timeout_ms (0: do
 * not wait) for the next reply frame, CW_ETIMEOUT when none came (nothing is reset:
 * call cw_netclient_reset to abandon every request in flight, so that no late reply
 * is ever taken for a later request's). Replies come in the order the node sends
 * them; the caller matches them by request id.
 */
int cw_netclient_send(struct cw_netclient *c, const uint8_t *req, size_t len, int timeout_ms);
int cw_netclient_recv(struct cw_netclient *c, int timeout_ms, uint8_t **reply, size_t *reply_len);
void cw_netclient_reset(struct cw_netclient *c);

/* Closes the socket at once (a request in flight is abandoned), frees the client
 * and sets *c to NULL. NULL or *c == NULL is a no-op. */
void cw_netclient_close(struct cw_netclient **c);

#endif
