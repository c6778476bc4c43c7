/*
 * test_net.c - the ZeroMQ transport: peer links with WAN emulation, the client and
 * admin request/reply endpoints, the client helper, and hostile input.
 *
 * Everything runs on 127.0.0.1 with ports the kernel reports free. Timing is only
 * ever asserted as a lower bound (a frame must not arrive before its delay); every
 * wait is bounded so a broken build fails instead of hanging.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/net.h"
#include "net/netclient.h"

#include <causeway/error.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#define WAIT_MS 10000 /* upper bound of every wait for something that must happen */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A port nobody listens on right now (ZeroMQ binds with SO_REUSEADDR). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void endpoint(char *out, int port)
{
    snprintf(out, CW_NET_ENDPOINT_MAX, "tcp://127.0.0.1:%d", port);
}

static int endpoint_port(const char *ep)
{
    return atoi(strrchr(ep, ':') + 1);
}

/* Configs for n regions "r0", "r1", ... with fresh ports; cfg[i] is region i's view. */
static void make_configs(struct cw_net_config *cfg, unsigned n)
{
    struct cw_net_config base;
    memset(&base, 0, sizeof base);
    base.n_regions = n;
    for (unsigned i = 0; i < n; i++) {
        snprintf(base.names[i], CW_NET_NAME_MAX, "r%u", i);
        endpoint(base.peer_endpoints[i], free_port());
    }
    for (unsigned i = 0; i < n; i++) {
        cfg[i] = base;
        cfg[i].self = i;
        endpoint(cfg[i].client_endpoint, free_port());
        endpoint(cfg[i].admin_endpoint, free_port());
    }
}

static struct cw_net *open_net(const struct cw_net_config *cfg)
{
    struct cw_net *n = NULL;
    char err[512];
    int rc = cw_net_open(cfg, &n, err, sizeof err);
    if (rc != CW_OK)
        fprintf(stderr, "cw_net_open: %s\n", err);
    assert_int_equal(rc, CW_OK);
    assert_non_null(n);
    return n;
}

static uint8_t *frame_of(const void *p, size_t len)
{
    uint8_t *f = malloc(len > 0 ? len : 1);
    assert_non_null(f);
    memcpy(f, p, len);
    return f;
}

static int send_str(struct cw_net *n, unsigned peer, const char *s)
{
    return cw_net_send_peer(n, peer, frame_of(s, strlen(s)), strlen(s));
}

/* Polls tx without waiting (so its due frames go out) and rx briefly, until rx
 * delivers an event of `kind` or wait_ms passes. */
static bool pump_until(struct cw_net *tx, struct cw_net *rx, enum cw_net_kind kind, int wait_ms,
                       struct cw_net_event *ev)
{
    struct cw_net_event other;
    uint64_t deadline = mono_ms() + (uint64_t)wait_ms;
    do {
        if (tx != NULL)
            assert_int_equal(cw_net_poll(tx, 0, &other), CW_OK);
        assert_int_equal(cw_net_poll(rx, 5, ev), CW_OK);
        if (ev->kind == kind)
            return true;
    } while (mono_ms() < deadline);
    return false;
}

/* ZMQ_IMMEDIATE drops frames until the link is connected; probe until one gets
 * through, then drain the probes still in flight. */
static void wait_link(struct cw_net *tx, unsigned tx_id, struct cw_net *rx, unsigned rx_id)
{
    struct cw_net_event ev;
    bool up = false;
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (!up && mono_ms() < deadline) {
        assert_int_equal(send_str(tx, rx_id, "probe"), CW_OK);
        up = pump_until(tx, rx, CW_NET_PEER, 20, &ev);
    }
    assert_true(up);
    struct cw_link_status ts, rs;
    for (;;) {
        cw_net_link_status(tx, rx_id, &ts);
        cw_net_link_status(rx, tx_id, &rs);
        if (ts.queued == 0 && rs.frames_received == ts.frames_sent)
            break;
        assert_true(mono_ms() < deadline);
        pump_until(tx, rx, CW_NET_PEER, 5, &ev);
    }
}

static void test_open_rejects_bad_config(void **state)
{
    (void)state;
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    struct cw_net *n = (struct cw_net *)1;
    char err[256];

    struct cw_net_config bad = cfg[0];
    bad.self = 2;
    assert_int_equal(cw_net_open(&bad, &n, err, sizeof err), CW_ECONFIG);
    assert_null(n);
    assert_true(strlen(err) > 0);

    bad = cfg[0];
    strcpy(bad.names[1], "r0");
    assert_int_equal(cw_net_open(&bad, &n, err, sizeof err), CW_ECONFIG);
    assert_non_null(strstr(err, "twice"));

    bad = cfg[0];
    bad.names[1][0] = '\0';
    assert_int_equal(cw_net_open(&bad, &n, err, sizeof err), CW_ECONFIG);

    bad = cfg[0];
    memset(bad.names[1], 'x', CW_NET_NAME_MAX); /* no NUL inside the field */
    assert_int_equal(cw_net_open(&bad, &n, err, sizeof err), CW_ECONFIG);

    bad = cfg[0];
    bad.n_regions = 0;
    assert_int_equal(cw_net_open(&bad, &n, err, sizeof err), CW_ECONFIG);

    bad = cfg[0];
    bad.link_queue_max = CW_NET_LINK_QUEUE_LIMIT + 1;
    assert_int_equal(cw_net_open(&bad, &n, err, sizeof err), CW_ECONFIG);

    bad = cfg[0];
    strcpy(bad.admin_endpoint, bad.client_endpoint);
    assert_int_equal(cw_net_open(&bad, &n, err, sizeof err), CW_ECONFIG);
    assert_non_null(strstr(err, "own port"));

    bad = cfg[0];
    strcpy(bad.client_endpoint, "nonsense");
    assert_int_equal(cw_net_open(&bad, &n, err, sizeof err), CW_ECONFIG);
    assert_non_null(strstr(err, "client endpoint nonsense"));
    assert_null(n);

    assert_int_equal(cw_net_open(NULL, &n, err, sizeof err), CW_EINVAL);
}

static void test_open_reports_address_in_use(void **state)
{
    (void)state;
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    struct cw_net *a = open_net(&cfg[0]);
    struct cw_net *again = NULL;
    char err[512];
    assert_int_equal(cw_net_open(&cfg[0], &again, err, sizeof err), CW_ENET);
    assert_null(again);
    assert_non_null(strstr(err, "cannot bind client endpoint tcp://127.0.0.1:"));
    assert_non_null(strstr(err, "Address already in use"));
    assert_non_null(strstr(err, "is another causewayd running?"));
    cw_net_close(&a);
    assert_null(a);
    cw_net_close(&a); /* closing twice is harmless */

    /* The ports are free again once closed. */
    a = open_net(&cfg[0]);
    cw_net_close(&a);
}

static void test_peer_frames_carry_sender_id(void **state)
{
    (void)state;
    struct cw_net_config cfg[3];
    make_configs(cfg, 3);
    struct cw_net *n0 = open_net(&cfg[0]);
    struct cw_net *n2 = open_net(&cfg[2]); /* region 1 never runs */
    wait_link(n0, 0, n2, 2);
    wait_link(n2, 2, n0, 0);

    struct cw_link_status before, after, rx_before, rx_after;
    cw_net_link_status(n0, 2, &before);
    cw_net_link_status(n2, 0, &rx_before);
    assert_int_equal(send_str(n0, 2, "hello"), CW_OK);
    struct cw_net_event ev;
    assert_true(pump_until(n0, n2, CW_NET_PEER, WAIT_MS, &ev));
    assert_int_equal(ev.peer, 0);
    assert_int_equal(ev.len, 5);
    assert_memory_equal(ev.data, "hello", 5);
    cw_net_link_status(n0, 2, &after);
    cw_net_link_status(n2, 0, &rx_after);
    assert_int_equal(after.frames_sent, before.frames_sent + 1);
    assert_int_equal(after.bytes_sent, before.bytes_sent + 5);
    assert_int_equal(rx_after.frames_received, rx_before.frames_received + 1);

    /* The other direction, and an empty frame. */
    assert_int_equal(cw_net_send_peer(n2, 0, NULL, 0), CW_OK);
    assert_true(pump_until(n2, n0, CW_NET_PEER, WAIT_MS, &ev));
    assert_int_equal(ev.peer, 2);
    assert_int_equal(ev.len, 0);

    /* To itself or to no region: refused, and the frame is still freed (ASan). */
    assert_int_equal(send_str(n0, 0, "self"), CW_EREGION);
    assert_int_equal(send_str(n0, 3, "nobody"), CW_EREGION);
    assert_int_equal(send_str(n0, CW_REGIONS_MAX + 5, "nobody"), CW_EREGION);
    assert_int_equal(cw_net_link(n0, 0, CW_LINK_OP_CUT, 0), CW_EREGION);
    assert_int_equal(cw_net_link(n0, 2, (enum cw_link_op)99, 0), CW_EINVAL);

    /* A frame to a region that is down is dropped (ZMQ_IMMEDIATE), never queued in
     * ZeroMQ for later and never blocking. */
    cw_net_link_status(n0, 1, &before);
    assert_int_equal(send_str(n0, 1, "lost"), CW_OK);
    cw_net_link_status(n0, 1, &after);
    assert_int_equal(after.frames_sent, 0);
    assert_int_equal(after.frames_dropped, before.frames_dropped + 1);
    assert_int_equal(after.queued, 0);

    cw_net_close(&n0);
    cw_net_close(&n2);
}

static void test_fifo_order_with_jitter(void **state)
{
    (void)state;
    enum { FRAMES = 1000 };
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    cfg[0].jitter_ms = 30;
    cfg[0].seed = 42;
    cfg[0].delay_ms[1] = 5;
    printf("jitter seed %llu\n", (unsigned long long)cfg[0].seed);
    struct cw_net *a = open_net(&cfg[0]);
    struct cw_net *b = open_net(&cfg[1]);
    wait_link(a, 0, b, 1);

    struct cw_link_status before, after;
    cw_net_link_status(a, 1, &before);
    for (uint32_t i = 0; i < FRAMES; i++) {
        uint8_t seq[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24)};
        assert_int_equal(cw_net_send_peer(a, 1, frame_of(seq, 4), 4), CW_OK);
    }
    uint32_t next = 0;
    uint64_t deadline = mono_ms() + 3 * WAIT_MS;
    struct cw_net_event ev;
    while (next < FRAMES && mono_ms() < deadline) {
        if (!pump_until(a, b, CW_NET_PEER, 5, &ev))
            continue;
        assert_int_equal(ev.peer, 0);
        assert_int_equal(ev.len, 4);
        uint32_t got = (uint32_t)ev.data[0] | (uint32_t)ev.data[1] << 8 |
                       (uint32_t)ev.data[2] << 16 | (uint32_t)ev.data[3] << 24;
        assert_int_equal(got, next);
        next++;
    }
    assert_int_equal(next, FRAMES);
    cw_net_link_status(a, 1, &after);
    assert_int_equal(after.frames_dropped, before.frames_dropped);
    assert_int_equal(after.frames_sent, before.frames_sent + FRAMES);
    assert_int_equal(cw_net_next_due_ms(a), -1);
    cw_net_close(&a);
    cw_net_close(&b);
}

static void test_delay_is_a_lower_bound(void **state)
{
    (void)state;
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    cfg[0].delay_ms[1] = 100;
    struct cw_net *a = open_net(&cfg[0]);
    struct cw_net *b = open_net(&cfg[1]);
    wait_link(a, 0, b, 1);

    struct cw_net_event ev;
    uint64_t t0 = mono_ms();
    assert_int_equal(send_str(a, 1, "slow"), CW_OK);
    int due = cw_net_next_due_ms(a);
    assert_true(due >= 0 && due <= 100);
    assert_true(pump_until(a, b, CW_NET_PEER, WAIT_MS, &ev));
    assert_true(mono_ms() - t0 >= 100);
    assert_memory_equal(ev.data, "slow", 4);

    /* A delay changed at run time applies to the frames sent after it. */
    assert_int_equal(cw_net_link(a, 1, CW_LINK_OP_DELAY, 250), CW_OK);
    struct cw_link_status st;
    cw_net_link_status(a, 1, &st);
    assert_int_equal(st.delay_ms, 250);
    t0 = mono_ms();
    assert_int_equal(send_str(a, 1, "slower"), CW_OK);
    assert_true(pump_until(a, b, CW_NET_PEER, WAIT_MS, &ev));
    assert_true(mono_ms() - t0 >= 250);
    assert_memory_equal(ev.data, "slower", 6);

    /* Lowering the delay never lets a new frame overtake a queued one. */
    assert_int_equal(send_str(a, 1, "first"), CW_OK);
    assert_int_equal(cw_net_link(a, 1, CW_LINK_OP_DELAY, 0), CW_OK);
    assert_int_equal(send_str(a, 1, "second"), CW_OK);
    assert_true(pump_until(a, b, CW_NET_PEER, WAIT_MS, &ev));
    assert_int_equal(ev.len, 5);
    assert_memory_equal(ev.data, "first", 5);
    assert_true(pump_until(a, b, CW_NET_PEER, WAIT_MS, &ev));
    assert_int_equal(ev.len, 6);
    assert_memory_equal(ev.data, "second", 6);
    cw_net_close(&a);
    cw_net_close(&b);
}

static void test_cut_drops_and_heal_restores(void **state)
{
    (void)state;
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    struct cw_net *a = open_net(&cfg[0]);
    struct cw_net *b = open_net(&cfg[1]);
    wait_link(a, 0, b, 1);

    struct cw_link_status before, st;
    cw_net_link_status(a, 1, &before);
    assert_int_equal(cw_net_link(a, 1, CW_LINK_OP_CUT, 0), CW_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(send_str(a, 1, "cut"), CW_OK);
    cw_net_link_status(a, 1, &st);
    assert_true(st.cut);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.frames_dropped, before.frames_dropped + 10);
    assert_int_equal(st.frames_sent, before.frames_sent);
    struct cw_net_event ev;
    assert_false(pump_until(a, b, CW_NET_PEER, 300, &ev));

    /* Cutting also drops what is already queued. */
    assert_int_equal(cw_net_link(a, 1, CW_LINK_OP_HEAL, 0), CW_OK);
    assert_int_equal(cw_net_link(a, 1, CW_LINK_OP_DELAY, 10000), CW_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(send_str(a, 1, "queued"), CW_OK);
    cw_net_link_status(a, 1, &st);
    assert_false(st.cut);
    assert_int_equal(st.queued, 5);
    assert_true(cw_net_next_due_ms(a) >= 0);
    assert_int_equal(cw_net_link(a, 1, CW_LINK_OP_CUT, 0), CW_OK);
    cw_net_link_status(a, 1, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.frames_dropped, before.frames_dropped + 15);
    assert_int_equal(cw_net_next_due_ms(a), -1);

    /* Healed with no delay, the next frame is the first to arrive. */
    assert_int_equal(cw_net_link(a, 1, CW_LINK_OP_HEAL, 0), CW_OK);
    assert_int_equal(cw_net_link(a, 1, CW_LINK_OP_DELAY, 0), CW_OK);
    assert_int_equal(send_str(a, 1, "healed"), CW_OK);
    assert_true(pump_until(a, b, CW_NET_PEER, WAIT_MS, &ev));
    assert_int_equal(ev.len, 6);
    assert_memory_equal(ev.data, "healed", 6);
    cw_net_link_status(a, 1, &st);
    assert_int_equal(st.frames_sent, before.frames_sent + 1);
    cw_net_close(&a);
    cw_net_close(&b);
}

static void test_link_queue_is_bounded(void **state)
{
    (void)state;
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    cfg[0].link_queue_max = 4;
    cfg[0].frame_bytes_max = 64;
    cfg[0].delay_ms[1] = 10000;
    struct cw_net *a = open_net(&cfg[0]); /* region 1 is not running: nothing is sent */

    for (int i = 0; i < 4; i++)
        assert_int_equal(send_str(a, 1, "x"), CW_OK);
    for (int i = 0; i < 6; i++)
        assert_int_equal(send_str(a, 1, "y"), CW_EFULL);
    struct cw_link_status st;
    cw_net_link_status(a, 1, &st);
    assert_int_equal(st.queued, 4);
    assert_int_equal(st.frames_dropped, 6);
    int due = cw_net_next_due_ms(a);
    assert_true(due >= 0 && due <= 10000);

    /* A frame larger than frame_bytes_max would make the peer drop the connection. */
    uint8_t *big = calloc(1, 65);
    assert_non_null(big);
    assert_int_equal(cw_net_send_peer(a, 1, big, 65), CW_ETOOBIG);
    cw_net_link_status(a, 1, &st);
    assert_int_equal(st.frames_dropped, 7);
    assert_int_equal(st.queued, 4);

    /* Polling does not send frames that are not yet due. */
    struct cw_net_event ev;
    assert_int_equal(cw_net_poll(a, 10, &ev), CW_OK);
    assert_int_equal(ev.kind, CW_NET_NONE);
    cw_net_link_status(a, 1, &st);
    assert_int_equal(st.queued, 4);
    assert_int_equal(st.frames_sent, 0);
    /* Closing with frames queued frees them (ASan). */
    cw_net_close(&a);
}

/* A cw_netclient_call run on its own thread while the test thread serves. */
struct call {
    const char *endpoint;
    const char *req[2];
    int timeout_ms[2];
    int calls;
    int rc[2];
    uint8_t *reply[2];
    size_t reply_len[2];
    char err[256];
    atomic_int phase; /* 1: first call returned; 2: the server lets the second start */
};

static void *call_thread(void *arg)
{
    struct call *c = arg;
    struct cw_netclient *nc = NULL;
    c->rc[0] = cw_netclient_open(c->endpoint, &nc, c->err, sizeof c->err);
    if (c->rc[0] != CW_OK) {
        atomic_store(&c->phase, 3);
        return NULL;
    }
    for (int i = 0; i < c->calls; i++) {
        c->rc[i] = cw_netclient_call(nc, (const uint8_t *)c->req[i], strlen(c->req[i]),
                                     c->timeout_ms[i], &c->reply[i], &c->reply_len[i]);
        if (i == 0 && c->calls > 1) {
            atomic_store(&c->phase, 1);
            while (atomic_load(&c->phase) != 2)
                sleep_ms(1);
        }
    }
    cw_netclient_close(&nc);
    atomic_store(&c->phase, 3);
    return NULL;
}

/* Serves n until a request of `kind` arrives; false after wait_ms. */
static bool serve_until(struct cw_net *n, enum cw_net_kind kind, int wait_ms,
                        struct cw_net_event *ev)
{
    return pump_until(NULL, n, kind, wait_ms, ev);
}

static void expect_reply(const struct call *c, int i, const char *want)
{
    assert_int_equal(c->rc[i], CW_OK);
    assert_non_null(c->reply[i]);
    assert_int_equal(c->reply_len[i], strlen(want));
    assert_memory_equal(c->reply[i], want, strlen(want));
}

static void test_client_and_admin_round_trip(void **state)
{
    (void)state;
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    struct cw_net *a = open_net(&cfg[0]);
    struct cw_net_event ev;

    struct call c = {
        .endpoint = cfg[0].client_endpoint, .req = {"ping"}, .timeout_ms = {WAIT_MS}, .calls = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    assert_true(serve_until(a, CW_NET_CLIENT, WAIT_MS, &ev));
    assert_int_equal(ev.len, 4);
    assert_memory_equal(ev.data, "ping", 4);
    assert_true(ev.route_len > 0);
    assert_int_equal(cw_net_reply(a, &ev, (const uint8_t *)"pong", 4), CW_OK);
    pthread_join(t, NULL);
    expect_reply(&c, 0, "pong");
    free(c.reply[0]);

    /* Admin requests come out as CW_NET_ADMIN; a reply may be deferred past the
     * next poll because the route is a copy. */
    struct call d = {
        .endpoint = cfg[0].admin_endpoint, .req = {"status"}, .timeout_ms = {WAIT_MS}, .calls = 1};
    assert_int_equal(pthread_create(&t, NULL, call_thread, &d), 0);
    assert_true(serve_until(a, CW_NET_ADMIN, WAIT_MS, &ev));
    assert_memory_equal(ev.data, "status", 6);
    uint8_t route[CW_NET_ROUTE_MAX];
    size_t route_len = ev.route_len;
    memcpy(route, ev.route, route_len);
    assert_int_equal(cw_net_poll(a, 10, &ev), CW_OK);
    assert_int_equal(ev.kind, CW_NET_NONE);
    assert_int_equal(
        cw_net_reply_route(a, CW_NET_ADMIN, route, route_len, (const uint8_t *)"ok", 2), CW_OK);
    pthread_join(t, NULL);
    expect_reply(&d, 0, "ok");
    free(d.reply[0]);

    /* Replies that cannot be routed are refused, not crashed on. */
    assert_int_equal(
        cw_net_reply_route(a, CW_NET_CLIENT, (const uint8_t *)"gone", 4, (const uint8_t *)"x", 1),
        CW_EUNAVAILABLE);
    assert_int_equal(cw_net_reply_route(a, CW_NET_PEER, route, route_len, NULL, 0), CW_EINVAL);
    struct cw_net_stats stats;
    cw_net_stats(a, &stats);
    assert_int_equal(stats.client_frames, 1);
    assert_int_equal(stats.admin_frames, 1);
    assert_int_equal(stats.replies_dropped, 1);
    cw_net_close(&a);
}

static void test_call_timeout_discards_late_reply(void **state)
{
    (void)state;
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    struct cw_net *a = open_net(&cfg[0]);
    struct cw_net_event ev;

    struct call c = {.endpoint = cfg[0].client_endpoint,
                     .req = {"one", "two"},
                     .timeout_ms = {300, WAIT_MS},
                     .calls = 2};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    assert_true(serve_until(a, CW_NET_CLIENT, WAIT_MS, &ev));
    assert_memory_equal(ev.data, "one", 3);
    uint8_t route[CW_NET_ROUTE_MAX];
    size_t route_len = ev.route_len;
    memcpy(route, ev.route, route_len);
    /* Do not answer until the client has given up. */
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (atomic_load(&c.phase) != 1 && mono_ms() < deadline)
        assert_int_equal(cw_net_poll(a, 5, &ev), CW_OK);
    assert_int_equal(atomic_load(&c.phase), 1);
    /* The late reply may or may not be refused, depending on whether the ROUTER has
     * seen the old socket go; either way it must not reach the next call. */
    (void)cw_net_reply_route(a, CW_NET_CLIENT, route, route_len, (const uint8_t *)"reply-one", 9);
    atomic_store(&c.phase, 2);
    assert_true(serve_until(a, CW_NET_CLIENT, WAIT_MS, &ev));
    assert_memory_equal(ev.data, "two", 3);
    assert_int_equal(cw_net_reply(a, &ev, (const uint8_t *)"reply-two", 9), CW_OK);
    pthread_join(t, NULL);

    assert_int_equal(c.rc[0], CW_ETIMEOUT);
    assert_null(c.reply[0]);
    expect_reply(&c, 1, "reply-two");
    free(c.reply[1]);
    cw_net_close(&a);
}

static void test_call_unavailable_and_bad_endpoint(void **state)
{
    (void)state;
    char ep[CW_NET_ENDPOINT_MAX];
    endpoint(ep, free_port()); /* nobody listens there */
    struct cw_netclient *nc = NULL;
    char err[256];
    assert_int_equal(cw_netclient_open(ep, &nc, err, sizeof err), CW_OK);
    uint8_t *reply = (uint8_t *)1;
    size_t reply_len = 7;
    assert_int_equal(cw_netclient_call(nc, (const uint8_t *)"hi", 2, 200, &reply, &reply_len),
                     CW_EUNAVAILABLE);
    assert_null(reply);
    assert_int_equal(reply_len, 0);
    assert_int_equal(cw_netclient_call(nc, (const uint8_t *)"hi", 2, -1, &reply, &reply_len),
                     CW_EINVAL);
    cw_netclient_close(&nc);
    assert_null(nc);
    cw_netclient_close(&nc);

    assert_int_equal(cw_netclient_open("nonsense", &nc, err, sizeof err), CW_EINVAL);
    assert_null(nc);
    assert_non_null(strstr(err, "nonsense"));
    assert_int_equal(cw_netclient_open("", &nc, err, sizeof err), CW_EINVAL);
}

/* Connects a plain TCP socket to port and writes len pseudo-random bytes. */
static void write_garbage(int port, uint64_t *rng, size_t len, const uint8_t *prefix,
                          size_t prefix_len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    uint8_t buf[4096];
    assert_true(prefix_len <= sizeof buf && len <= sizeof buf);
    if (prefix_len > 0)
        memcpy(buf, prefix, prefix_len);
    for (size_t i = prefix_len; i < len; i++) {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        buf[i] = (uint8_t)*rng;
    }
    /* ZeroMQ may hang up mid-write; that is the point, not an error. */
    (void)send(fd, buf, len, MSG_NOSIGNAL);
    sleep_ms(20);
    close(fd);
}

static void test_garbage_leaves_net_working(void **state)
{
    (void)state;
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    cfg[0].frame_bytes_max = 4096;
    cfg[1].frame_bytes_max = 4096;
    struct cw_net *a = open_net(&cfg[0]);
    struct cw_net *b = open_net(&cfg[1]);
    wait_link(b, 1, a, 0);

    uint64_t rng = 0x5eed;
    printf("garbage seed %llu\n", (unsigned long long)rng);
    /* A ZMTP 3 signature followed by junk gets past the first check of the handshake. */
    static const uint8_t zmtp[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0};
    const char *eps[] = {cfg[0].client_endpoint, cfg[0].admin_endpoint, cfg[0].peer_endpoints[0]};
    struct cw_net_event ev;
    for (int i = 0; i < 3; i++) {
        int port = endpoint_port(eps[i]);
        write_garbage(port, &rng, 4096, NULL, 0);
        write_garbage(port, &rng, 1000, zmtp, sizeof zmtp);
        write_garbage(port, &rng, 0, NULL, 0);
    }
    /* Bytes that do not start with the ZMTP 3 signature are read as unversioned
     * ZMTP 1.0 frames, so garbage can come out as well-formed requests: the wire
     * decoder must treat every frame as hostile. What comes out is still bounded. */
    uint64_t deadline = mono_ms() + 300;
    while (mono_ms() < deadline) {
        assert_int_equal(cw_net_poll(a, 10, &ev), CW_OK);
        assert_true(ev.len <= cfg[0].frame_bytes_max);
        if (ev.kind == CW_NET_PEER)
            assert_int_equal(ev.peer, 1);
    }

    /* A well-formed ZeroMQ message over frame_bytes_max is refused by ZeroMQ. */
    void *ctx = zmq_ctx_new();
    assert_non_null(ctx);
    void *raw = zmq_socket(ctx, ZMQ_DEALER);
    assert_non_null(raw);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(raw, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_connect(raw, cfg[0].client_endpoint), 0);
    uint8_t *big = calloc(1, 8192);
    assert_non_null(big);
    assert_int_equal(zmq_send(raw, big, 8192, 0), 8192);
    free(big);
    assert_false(serve_until(a, CW_NET_CLIENT, 300, &ev));
    zmq_close(raw);
    zmq_ctx_term(ctx);

    /* Still serving peers and clients. */
    assert_int_equal(send_str(b, 0, "still-here"), CW_OK);
    assert_true(pump_until(b, a, CW_NET_PEER, WAIT_MS, &ev));
    assert_int_equal(ev.peer, 1);
    assert_memory_equal(ev.data, "still-here", 10);

    struct call c = {
        .endpoint = cfg[0].client_endpoint, .req = {"alive?"}, .timeout_ms = {WAIT_MS}, .calls = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    bool served = serve_until(a, CW_NET_CLIENT, WAIT_MS, &ev);
    if (served)
        assert_int_equal(cw_net_reply(a, &ev, (const uint8_t *)"yes", 3), CW_OK);
    pthread_join(t, NULL);
    assert_true(served);
    expect_reply(&c, 0, "yes");
    free(c.reply[0]);
    cw_net_close(&a);
    cw_net_close(&b);
}

/* Sends parts[0..n) as one multipart message. */
static void send_multipart(void *sock, const char *const *parts, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);
        assert_int_equal(zmq_send(sock, parts[i], len, i + 1 < n ? ZMQ_SNDMORE : 0), (int)len);
    }
}

static void *raw_dealer(void *ctx, const char *ep, const char *routing_id)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    assert_non_null(s);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero), 0);
    if (routing_id != NULL)
        assert_int_equal(zmq_setsockopt(s, ZMQ_ROUTING_ID, routing_id, strlen(routing_id)), 0);
    assert_int_equal(zmq_connect(s, ep), 0);
    return s;
}

/* Polls n until the stats counter at `offset` reaches want; no event may be
 * delivered meanwhile. */
static void wait_counter(struct cw_net *n, size_t offset, uint64_t want)
{
    struct cw_net_event ev;
    struct cw_net_stats st;
    uint64_t got;
    uint64_t deadline = mono_ms() + WAIT_MS;
    for (;;) {
        cw_net_stats(n, &st);
        memcpy(&got, (const char *)&st + offset, sizeof got);
        if (got >= want)
            break;
        assert_true(mono_ms() < deadline);
        assert_int_equal(cw_net_poll(n, 5, &ev), CW_OK);
        assert_int_equal(ev.kind, CW_NET_NONE);
    }
    assert_int_equal(got, want);
}

#define MALFORMED offsetof(struct cw_net_stats, malformed_dropped)
#define UNKNOWN offsetof(struct cw_net_stats, unknown_peer_dropped)

static void test_wrong_frame_count_is_dropped(void **state)
{
    (void)state;
    struct cw_net_config cfg[2];
    make_configs(cfg, 2);
    struct cw_net *a = open_net(&cfg[0]); /* region 1 ("r1") is not running */
    struct cw_net_stats st;
    struct cw_net_event ev;
    void *ctx = zmq_ctx_new();
    assert_non_null(ctx);

    /* Client endpoint: three frames are dropped, the next good request served. */
    void *cl = raw_dealer(ctx, cfg[0].client_endpoint, NULL);
    send_multipart(cl, (const char *const[]){"x", "y", "z"}, 3);
    wait_counter(a, MALFORMED, 1);
    send_multipart(cl, (const char *const[]){""}, 1);
    assert_true(serve_until(a, CW_NET_CLIENT, WAIT_MS, &ev));
    assert_int_equal(ev.len, 0);
    send_multipart(cl, (const char *const[]){"ok"}, 1);
    assert_true(serve_until(a, CW_NET_CLIENT, WAIT_MS, &ev));
    assert_int_equal(ev.len, 2);
    assert_memory_equal(ev.data, "ok", 2);

    /* Admin endpoint: two frames. */
    void *ad = raw_dealer(ctx, cfg[0].admin_endpoint, NULL);
    send_multipart(ad, (const char *const[]){"status", "extra"}, 2);
    wait_counter(a, MALFORMED, 2);

    /* Peer endpoint: a known region with two frames, then one frame. */
    void *pr = raw_dealer(ctx, cfg[0].peer_endpoints[0], "r1");
    send_multipart(pr, (const char *const[]){"batch", "extra"}, 2);
    wait_counter(a, MALFORMED, 3);
    send_multipart(pr, (const char *const[]){"batch"}, 1);
    assert_true(serve_until(a, CW_NET_PEER, WAIT_MS, &ev));
    assert_int_equal(ev.peer, 1);
    assert_memory_equal(ev.data, "batch", 5);
    struct cw_link_status ls;
    cw_net_link_status(a, 1, &ls);
    assert_int_equal(ls.frames_received, 1);

    /* Peer frames from ids that are no other region: unknown, and self's own name. */
    void *stranger = raw_dealer(ctx, cfg[0].peer_endpoints[0], "zz");
    send_multipart(stranger, (const char *const[]){"batch"}, 1);
    wait_counter(a, UNKNOWN, 1);
    void *impostor = raw_dealer(ctx, cfg[0].peer_endpoints[0], "r0");
    send_multipart(impostor, (const char *const[]){"batch"}, 1);
    wait_counter(a, UNKNOWN, 2);
    void *anonymous = raw_dealer(ctx, cfg[0].peer_endpoints[0], NULL);
    send_multipart(anonymous, (const char *const[]){"batch"}, 1);
    wait_counter(a, UNKNOWN, 3);
    cw_net_stats(a, &st);
    assert_int_equal(st.malformed_dropped, 3);

    zmq_close(cl);
    zmq_close(ad);
    zmq_close(pr);
    zmq_close(stranger);
    zmq_close(impostor);
    zmq_close(anonymous);
    zmq_ctx_term(ctx);
    cw_net_close(&a);
}

static void test_now_is_realtime(void **state)
{
    (void)state;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t before = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    uint64_t now = cw_net_now_us();
    assert_true(now >= before);
}

int main(void)
{
    /* A peer hanging up mid-write must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_rejects_bad_config),
        cmocka_unit_test(test_open_reports_address_in_use),
        cmocka_unit_test(test_peer_frames_carry_sender_id),
        cmocka_unit_test(test_fifo_order_with_jitter),
        cmocka_unit_test(test_delay_is_a_lower_bound),
        cmocka_unit_test(test_cut_drops_and_heal_restores),
        cmocka_unit_test(test_link_queue_is_bounded),
        cmocka_unit_test(test_client_and_admin_round_trip),
        cmocka_unit_test(test_call_timeout_discards_late_reply),
        cmocka_unit_test(test_call_unavailable_and_bad_endpoint),
        cmocka_unit_test(test_garbage_leaves_net_working),
        cmocka_unit_test(test_wrong_frame_count_is_dropped),
        cmocka_unit_test(test_now_is_realtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
