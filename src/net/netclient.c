/*
 * netclient.c - one DEALER per client, one request in flight at a time.
 *
 * The DEALER has ZMQ_IMMEDIATE set, so a request is only handed to ZeroMQ once a
 * connection to the node exists: a node that is down gives CW_EUNAVAILABLE
 * instead of a request queued for whenever it comes back. After a timeout the
 * socket is replaced, because the old one might still receive the late reply.
 */
#include "net/netclient.h"
#include "net/netutil.h"

#include <causeway/error.h>

#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#define RECONNECT_IVL_MS 100
#define RECONNECT_IVL_MAX_MS 1000
/* Room for a pipelined client's requests in flight (cw_pipe: at most 256). */
#define CLIENT_HWM 512

struct cw_netclient {
    void *ctx;  /* the shared context, one reference held */
    void *sock; /* NULL after a failed recreate; the next call retries */
    /* Receives sock's failed authentications: the node's ZAP status (400: the
     * key, 500 or 300: the connection limit) is the only way a client learns
     * why its connection never comes up. NULL when it could not be set up. */
    void *mon;
    unsigned long mon_seq; /* makes each monitor endpoint of this client unique */
    int refused;           /* the last ZAP status seen and not yet reported, or 0 */
    char endpoint[CW_NETCLIENT_ENDPOINT_MAX];
    bool curve;
    struct cw_netclient_curve keys;
};

/*
 * One ZeroMQ context per process, shared by every client and released with the
 * last one: each context costs an I/O thread, and a benchmark opens many clients.
 * A context inherited across fork() is unusable in the child, so the child starts
 * a new one (the inherited one is abandoned, not terminated).
 */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static void *shared_ctx;
static unsigned long shared_refs;
static pid_t shared_pid;

static void *ctx_acquire(void)
{
    void *ctx = NULL;
    pthread_mutex_lock(&shared_lock);
    if (shared_ctx != NULL && shared_pid != getpid()) {
        shared_ctx = NULL;
        shared_refs = 0;
    }
    if (shared_ctx == NULL) {
        shared_ctx = zmq_ctx_new();
        if (shared_ctx != NULL) {
            /* Terminating must never wait for requests in flight. */
            zmq_ctx_set(shared_ctx, ZMQ_BLOCKY, 0);
            shared_pid = getpid();
        }
    }
    if (shared_ctx != NULL) {
        shared_refs++;
        ctx = shared_ctx;
    }
    pthread_mutex_unlock(&shared_lock);
    return ctx;
}

static void ctx_release(void *ctx)
{
    pthread_mutex_lock(&shared_lock);
    if (ctx == shared_ctx && shared_refs > 0) {
        shared_refs--;
        if (shared_refs == 0) {
            /* Every socket was closed with ZMQ_LINGER 0, so this does not wait. */
            zmq_ctx_term(shared_ctx);
            shared_ctx = NULL;
        }
    }
    pthread_mutex_unlock(&shared_lock);
}

/* Milliseconds left until deadline_us, rounded up, for zmq_poll and ZMQ_SNDTIMEO. */
static int ms_left(uint64_t deadline_us)
{
    uint64_t now = cw_net_mono_us();
    if (now >= deadline_us)
        return 0;
    uint64_t ms = (deadline_us - now + 999u) / 1000u;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int set_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof value);
}

/* Watches sock for failed authentications; without it, a refusal only shows as
 * no connection (CW_EUNAVAILABLE). */
static void monitor_open(struct cw_netclient *c, void *sock)
{
    char ep[96];
    snprintf(ep, sizeof(ep), "inproc://causeway-client-%p-%lu", (void *)c, c->mon_seq++);
    if (zmq_socket_monitor(sock, ep, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
        return;
    void *mon = zmq_socket(c->ctx, ZMQ_PAIR);
    if (mon == NULL)
        return;
    if (set_int(mon, ZMQ_LINGER, 0) != 0 || zmq_connect(mon, ep) != 0) {
        zmq_close(mon);
        return;
    }
    c->mon = mon;
}

static void monitor_close(struct cw_netclient *c)
{
    if (c->mon != NULL) {
        zmq_close(c->mon);
        c->mon = NULL;
    }
    c->refused = 0;
}

/* Reads the monitor's waiting events; the last ZAP status stays in c->refused. */
static void monitor_read(struct cw_netclient *c)
{
    for (int i = 0; c->mon != NULL && i < 64; i++) {
        zmq_msg_t head;
        zmq_msg_init(&head);
        if (zmq_msg_recv(&head, c->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&head) >= 6) {
            memcpy(&event, zmq_msg_data(&head), sizeof(event));
            memcpy(&value, (const uint8_t *)zmq_msg_data(&head) + 2, sizeof(value));
        }
        bool more = zmq_msg_more(&head);
        zmq_msg_close(&head);
        while (more) { /* the endpoint frame */
            zmq_msg_t part;
            zmq_msg_init(&part);
            more = zmq_msg_recv(&part, c->mon, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&part);
            zmq_msg_close(&part);
        }
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && value >= 300 && value <= 599)
            c->refused = (int)value;
    }
}

/* Creates c->sock and starts connecting it. */
static int client_connect(struct cw_netclient *c, char *err, size_t err_len)
{
    void *sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (sock == NULL) {
        cw_net_errf(err, err_len, "cannot create a socket for %s: %s; raise the open file limit",
                    c->endpoint, zmq_strerror(zmq_errno()));
        return CW_ENET;
    }
    int64_t maxmsg = CW_NETCLIENT_REPLY_BYTES_MAX;
    if (set_int(sock, ZMQ_LINGER, 0) != 0 || set_int(sock, ZMQ_IMMEDIATE, 1) != 0 ||
        set_int(sock, ZMQ_SNDHWM, CLIENT_HWM) != 0 || set_int(sock, ZMQ_RCVHWM, CLIENT_HWM) != 0 ||
        set_int(sock, ZMQ_IPV6, 1) != 0 ||
        set_int(sock, ZMQ_RECONNECT_IVL, RECONNECT_IVL_MS) != 0 ||
        set_int(sock, ZMQ_RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS) != 0 ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        (c->curve && (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->keys.server_key, 32) != 0 ||
                      zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->keys.public_key, 32) != 0 ||
                      zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->keys.secret_key, 32) != 0))) {
        cw_net_errf(err, err_len, "cannot configure the socket for %s: %s", c->endpoint,
                    zmq_strerror(zmq_errno()));
        zmq_close(sock);
        return CW_ENET;
    }
    monitor_open(c, sock);
    if (zmq_connect(sock, c->endpoint) != 0) {
        int e = zmq_errno();
        cw_net_errf(err, err_len, "cannot connect to %s: %s; use an endpoint like tcp://host:port",
                    c->endpoint, zmq_strerror(e));
        zmq_close(sock);
        monitor_close(c);
        return e == EINVAL || e == EPROTONOSUPPORT || e == ENOCOMPATPROTO ? CW_EINVAL : CW_ENET;
    }
    c->sock = sock;
    return CW_OK;
}

/* Replaces the socket so nothing sent to the old one can be received any more. */
static void client_reset(struct cw_netclient *c)
{
    if (c->sock != NULL) {
        zmq_close(c->sock);
        c->sock = NULL;
    }
    monitor_close(c);
    /* On failure c->sock stays NULL and the next call retries. */
    (void)client_connect(c, NULL, 0);
}

int cw_netclient_open(const char *endpoint, struct cw_netclient **out, char *err, size_t err_len)
{
    return cw_netclient_open_curve(endpoint, NULL, out, err, err_len);
}

static void wipe_keys(struct cw_netclient *c)
{
    volatile uint8_t *p = (volatile uint8_t *)&c->keys;
    for (size_t i = 0; i < sizeof(c->keys); i++)
        p[i] = 0;
}

int cw_netclient_open_curve(const char *endpoint, const struct cw_netclient_curve *curve,
                            struct cw_netclient **out, char *err, size_t err_len)
{
    cw_net_errf(err, err_len, "%s", "");
    if (out == NULL)
        return CW_EINVAL;
    *out = NULL;
    if (endpoint == NULL || endpoint[0] == '\0' || strlen(endpoint) >= CW_NETCLIENT_ENDPOINT_MAX) {
        cw_net_errf(err, err_len, "the endpoint is empty or longer than %d bytes",
                    CW_NETCLIENT_ENDPOINT_MAX - 1);
        return CW_EINVAL;
    }
    struct cw_netclient *c = calloc(1, sizeof *c);
    if (c == NULL) {
        cw_net_errf(err, err_len, "out of memory opening a client for %s", endpoint);
        return CW_ENOMEM;
    }
    strcpy(c->endpoint, endpoint);
    if (curve != NULL) {
        if (!zmq_has("curve")) {
            cw_net_errf(err, err_len,
                        "this ZeroMQ library has no CURVE support; install a "
                        "libzmq built with libsodium");
            free(c);
            return CW_ENET;
        }
        c->curve = true;
        c->keys = *curve;
    }
    c->ctx = ctx_acquire();
    if (c->ctx == NULL) {
        cw_net_errf(err, err_len, "cannot create the ZeroMQ context: %s",
                    zmq_strerror(zmq_errno()));
        goto err_after_alloc;
    }
    int rc = client_connect(c, err, err_len);
    if (rc != CW_OK)
        goto err_after_ctx;
    *out = c;
    return CW_OK;

err_after_ctx:
    ctx_release(c->ctx);
    wipe_keys(c);
    free(c);
    return rc;
err_after_alloc:
    wipe_keys(c);
    free(c);
    return CW_ENET;
}

void cw_netclient_close(struct cw_netclient **c)
{
    if (c == NULL || *c == NULL)
        return;
    if ((*c)->sock != NULL)
        zmq_close((*c)->sock);
    monitor_close(*c);
    ctx_release((*c)->ctx);
    wipe_keys(*c);
    free(*c);
    *c = NULL;
}

/* CW_EFULL or CW_EDENIED when the node refused the connection since the last
 * report (the status is reported once: the socket keeps trying, and a later
 * call waits for its next answer), else CW_OK. */
static int refusal(struct cw_netclient *c)
{
    monitor_read(c);
    int status = c->refused;
    c->refused = 0;
    if (status == 300 || status == 500)
        return CW_EFULL;
    return status == 400 ? CW_EDENIED : CW_OK;
}

/* Hands the request to ZeroMQ, waiting until deadline_us for a connection, or
 * until the node refuses it. */
static int send_request(struct cw_netclient *c, const uint8_t *req, size_t len,
                        uint64_t deadline_us)
{
    static const uint8_t empty[1];
    for (;;) {
        if (zmq_send(c->sock, req != NULL ? req : empty, len, ZMQ_DONTWAIT) >= 0)
            return CW_OK;
        int e = zmq_errno();
        /* EAGAIN with ZMQ_IMMEDIATE: no connection yet. */
        if (e != EAGAIN && e != EINTR)
            return CW_ENET;
        int rc = refusal(c);
        if (rc != CW_OK)
            return rc;
        int wait_ms = ms_left(deadline_us);
        if (wait_ms == 0)
            return CW_EUNAVAILABLE;
        zmq_pollitem_t items[2] = {{.socket = c->sock, .events = ZMQ_POLLOUT},
                                   {.socket = c->mon, .events = ZMQ_POLLIN}};
        if (zmq_poll(items, c->mon != NULL ? 2 : 1, wait_ms) < 0 && zmq_errno() != EINTR)
            return CW_ENET;
    }
}

/* Waits until deadline_us for one single-frame reply and copies it out. */
static int recv_reply(struct cw_netclient *c, uint64_t deadline_us, uint8_t **reply,
                      size_t *reply_len)
{
    zmq_pollitem_t item = {.socket = c->sock, .events = ZMQ_POLLIN};
    for (;;) {
        int wait_ms = ms_left(deadline_us);
        int rc = zmq_poll(&item, 1, wait_ms);
        if (rc < 0 && zmq_errno() != EINTR)
            return CW_ENET;
        if (rc <= 0) {
            if (cw_net_mono_us() >= deadline_us)
                return CW_ETIMEOUT;
            continue;
        }
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) < 0) {
            int e = zmq_errno();
            zmq_msg_close(&msg);
            if (e == EAGAIN || e == EINTR)
                continue;
            return CW_ENET;
        }
        if (zmq_msg_more(&msg)) {
            zmq_msg_close(&msg);
            return CW_EDECODE;
        }
        size_t n = zmq_msg_size(&msg);
        /* Never NULL, also for an empty reply, so callers need no special case. */
        uint8_t *buf = malloc(n > 0 ? n : 1);
        if (buf == NULL) {
            zmq_msg_close(&msg);
            return CW_ENOMEM;
        }
        if (n > 0)
            memcpy(buf, zmq_msg_data(&msg), n);
        zmq_msg_close(&msg);
        *reply = buf;
        *reply_len = n;
        return CW_OK;
    }
}

int cw_netclient_call(struct cw_netclient *c, const uint8_t *req, size_t len, int timeout_ms,
                      uint8_t **reply, size_t *reply_len)
{
    if (reply != NULL)
        *reply = NULL;
    if (reply_len != NULL)
        *reply_len = 0;
    if (c == NULL || (req == NULL && len > 0) || timeout_ms < 0 || reply == NULL ||
        reply_len == NULL)
        return CW_EINVAL;
    if (c->sock == NULL && client_connect(c, NULL, 0) != CW_OK)
        return CW_ENET;
    uint64_t deadline_us = cw_net_mono_us() + (uint64_t)timeout_ms * 1000u;

    int rc = send_request(c, req, len, deadline_us);
    if (rc != CW_OK)
        return rc; /* nothing was sent, so the socket holds nothing stale */
    rc = recv_reply(c, deadline_us, reply, reply_len);
    if (rc == CW_ETIMEOUT || rc == CW_EDECODE || rc == CW_ENET)
        client_reset(c);
    return rc;
}

int cw_netclient_send(struct cw_netclient *c, const uint8_t *req, size_t len, int timeout_ms)
{
    if (c == NULL || (req == NULL && len > 0) || timeout_ms < 0)
        return CW_EINVAL;
    if (c->sock == NULL && client_connect(c, NULL, 0) != CW_OK)
        return CW_ENET;
    return send_request(c, req, len, cw_net_mono_us() + (uint64_t)timeout_ms * 1000u);
}

int cw_netclient_recv(struct cw_netclient *c, int timeout_ms, uint8_t **reply, size_t *reply_len)
{
    if (reply != NULL)
        *reply = NULL;
    if (reply_len != NULL)
        *reply_len = 0;
    if (c == NULL || timeout_ms < 0 || reply == NULL || reply_len == NULL)
        return CW_EINVAL;
    if (c->sock == NULL)
        return CW_ENET;
    return recv_reply(c, cw_net_mono_us() + (uint64_t)timeout_ms * 1000u, reply, reply_len);
}

void cw_netclient_reset(struct cw_netclient *c)
{
    if (c != NULL)
        client_reset(c);
}
