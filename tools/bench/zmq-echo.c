/*
 * zmq-echo - the bare ZeroMQ request/reply ceiling of this host.
 *
 * One ROUTER (its own context and I/O thread, as a daemon has) echoes every
 * message back to N DEALER client threads (one shared context, as the client
 * library has) of the same process, over TCP on the loopback. Each client sends a
 * message of --bytes bytes and waits for its echo (--pipeline 1, the default), or
 * keeps --pipeline messages in flight. Nothing else happens per message: this is
 * the most any request/reply server on ZeroMQ can do here, and what causeway's
 * figures are divided by in tools/bench-run.
 *
 *   zmq-echo [--clients N] [--seconds N] [--bytes N] [--pipeline N] [--port N] [--json]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "core/hist.h"

#define CLIENTS_MAX 256

static unsigned clients = 4, seconds = 5, bytes = 100, pipeline = 1, port = 17999;
static char endpoint[64];
static atomic_int stop_flag;

struct client {
    pthread_t thread;
    void *ctx;
    struct cw_hist rtt; /* microseconds */
    uint64_t ops;
    int failed;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *serve(void *arg)
{
    void *router = arg;
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    for (;;) {
        if (zmq_msg_recv(&id, router, 0) < 0)
            break; /* the context is being terminated */
        if (!zmq_msg_more(&id) || zmq_msg_recv(&body, router, 0) < 0)
            continue;
        if (zmq_msg_send(&id, router, ZMQ_SNDMORE) < 0 || zmq_msg_send(&body, router, 0) < 0)
            continue;
    }
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    zmq_close(router);
    return NULL;
}

static void *run_client(void *arg)
{
    struct client *c = arg;
    void *s = zmq_socket(c->ctx, ZMQ_DEALER);
    int zero = 0;
    if (s == NULL || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(s, endpoint) != 0) {
        c->failed = 1;
        return NULL;
    }
    char *buf = malloc(bytes ? bytes : 1);
    uint64_t *sent_at = calloc(pipeline, sizeof(*sent_at));
    if (buf == NULL || sent_at == NULL) {
        c->failed = 1;
        goto out;
    }
    memset(buf, 'x', bytes);
    /* The echo carries its slot number, so a pipelined reply finds its send time. */
    unsigned in_flight = 0;
    while (!atomic_load(&stop_flag) || in_flight > 0) {
        while (!atomic_load(&stop_flag) && in_flight < pipeline) {
            uint32_t slot = in_flight;
            if (bytes >= sizeof(slot))
                memcpy(buf, &slot, sizeof(slot));
            sent_at[slot] = mono_ns();
            if (zmq_send(s, buf, bytes, 0) < 0) {
                c->failed = 1;
                goto out;
            }
            in_flight++;
        }
        if (in_flight == 0)
            break;
        int n = zmq_recv(s, buf, bytes, 0);
        if (n < 0) {
            if (zmq_errno() == EINTR)
                continue;
            c->failed = 1;
            goto out;
        }
        uint32_t slot = 0;
        if (bytes >= sizeof(slot))
            memcpy(&slot, buf, sizeof(slot));
        if (slot >= pipeline)
            slot = 0;
        cw_hist_add(&c->rtt, (mono_ns() - sent_at[slot]) / 1000);
        c->ops++;
        /* Re-issue in the freed slot: keep the slot numbers 0..pipeline-1. */
        if (!atomic_load(&stop_flag)) {
            if (bytes >= sizeof(slot))
                memcpy(buf, &slot, sizeof(slot));
            sent_at[slot] = mono_ns();
            if (zmq_send(s, buf, bytes, 0) < 0) {
                c->failed = 1;
                goto out;
            }
        } else {
            in_flight--;
        }
    }
out:
    free(buf);
    free(sent_at);
    zmq_close(s);
    return NULL;
}

static int num(const char *opt, const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long x = v ? strtoul(v, &end, 10) : 0;
    if (v == NULL || *v == '\0' || *end != '\0' || errno || x < lo || x > hi) {
        fprintf(stderr, "zmq-echo: %s needs a number from %u to %u\n", opt, lo, hi);
        return -1;
    }
    *out = (unsigned)x;
    return 0;
}

int main(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: zmq-echo [--clients N] [--seconds N] [--bytes N] [--pipeline N] "
                   "[--port N] [--json]\n"
                   "The bare ZeroMQ ceiling: a ROUTER echoing to N DEALER client threads.\n");
            return 0;
        } else if (strcmp(a, "--clients") == 0) {
            rc = num(a, v, 1, CLIENTS_MAX, &clients);
        } else if (strcmp(a, "--seconds") == 0) {
            rc = num(a, v, 1, 3600, &seconds);
        } else if (strcmp(a, "--bytes") == 0) {
            rc = num(a, v, 0, 1u << 20, &bytes);
        } else if (strcmp(a, "--pipeline") == 0) {
            rc = num(a, v, 1, 1024, &pipeline);
        } else if (strcmp(a, "--port") == 0) {
            rc = num(a, v, 1, 65535, &port);
        } else {
            fprintf(stderr, "zmq-echo: unknown option '%s'\n", a);
            return 2;
        }
        if (rc)
            return 2;
        i++;
    }
    snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%u", port);
    void *sctx = zmq_ctx_new(), *cctx = zmq_ctx_new();
    void *router = sctx ? zmq_socket(sctx, ZMQ_ROUTER) : NULL;
    int zero = 0;
    if (router == NULL || zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(router, endpoint) != 0 || cctx == NULL) {
        fprintf(stderr, "zmq-echo: cannot bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    pthread_t server;
    if (pthread_create(&server, NULL, serve, router) != 0)
        return 1;
    struct client *c = calloc(clients, sizeof(*c));
    if (c == NULL)
        return 1;
    uint64_t t0 = mono_ns();
    for (unsigned i = 0; i < clients; i++) {
        c[i].ctx = cctx;
        cw_hist_reset(&c[i].rtt);
        if (pthread_create(&c[i].thread, NULL, run_client, &c[i]) != 0)
            return 1;
    }
    struct timespec ts = {seconds, 0};
    nanosleep(&ts, NULL);
    atomic_store(&stop_flag, 1);
    struct cw_hist all;
    cw_hist_reset(&all);
    uint64_t ops = 0;
    int failed = 0;
    for (unsigned i = 0; i < clients; i++) {
        pthread_join(c[i].thread, NULL);
        for (unsigned b = 0; b < CW_HIST_BUCKETS; b++)
            all.buckets[b] += c[i].rtt.buckets[b];
        all.count += c[i].rtt.count;
        all.sum += c[i].rtt.sum;
        all.max = all.max > c[i].rtt.max ? all.max : c[i].rtt.max;
        ops += c[i].ops;
        failed |= c[i].failed;
    }
    double secs = (double)(mono_ns() - t0) / 1e9;
    zmq_ctx_term(cctx);
    zmq_ctx_shutdown(sctx);
    pthread_join(server, NULL);
    zmq_ctx_term(sctx);
    double p50 = (double)cw_hist_quantile(&all, 0.5) / 1000.0;
    double p99 = (double)cw_hist_quantile(&all, 0.99) / 1000.0;
    double mean = all.count ? (double)all.sum / (double)all.count / 1000.0 : 0.0;
    if (json)
        printf("{\"clients\":%u,\"pipeline\":%u,\"bytes\":%u,\"seconds\":%.2f,\"ops\":%" PRIu64
               ",\"ops_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"mean_ms\":%.3f}\n",
               clients, pipeline, bytes, secs, ops, (double)ops / secs, p50, p99, mean);
    else
        printf("zmq-echo: %u clients, pipeline %u, %u-byte messages: %.0f round trips/s, "
               "p50 %.3f ms, p99 %.3f ms, mean %.3f ms\n",
               clients, pipeline, bytes, (double)ops / secs, p50, p99, mean);
    free(c);
    return failed ? 1 : 0;
}
