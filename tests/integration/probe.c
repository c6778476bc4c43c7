/*
 * probe.c - cw-probe, a hostile peer for the security integration tests.
 *
 * Connects one DEALER to an endpoint, with or without CURVE and with a chosen
 * routing id, and sends either random frames or a forged replication heartbeat
 * claiming to come from some region with a clock far ahead. It reports whether
 * the connection was made (a refused handshake never completes) and how many
 * frames were handed over. Python has no ZeroMQ with CURVE here, so the tests
 * use this.
 *
 *   cw-probe --endpoint EP [--server-key Z85 --key-file FILE] [--routing-id ID]
 *            [--heartbeat FROM_ID TO_ID AHEAD_S | --random N] [--wait-ms MS]
 *
 * Exit: 0 the frames were sent, 3 no connection was made within --wait-ms,
 * 2 bad usage, 1 another failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "core/hlc.h"
#include "core/record.h"
#include "net/curvekeys.h"
#include "wire/wire.h"

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *server_key = NULL, *key_file = NULL, *routing_id = NULL;
    int hb_from = -1, hb_to = -1, random_n = 0, wait_ms = 2000;
    unsigned ahead_s = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--endpoint") == 0 && i + 1 < argc)
            endpoint = argv[++i];
        else if (strcmp(a, "--server-key") == 0 && i + 1 < argc)
            server_key = argv[++i];
        else if (strcmp(a, "--key-file") == 0 && i + 1 < argc)
            key_file = argv[++i];
        else if (strcmp(a, "--routing-id") == 0 && i + 1 < argc)
            routing_id = argv[++i];
        else if (strcmp(a, "--heartbeat") == 0 && i + 3 < argc) {
            hb_from = atoi(argv[++i]);
            hb_to = atoi(argv[++i]);
            ahead_s = (unsigned)atoi(argv[++i]);
        } else if (strcmp(a, "--random") == 0 && i + 1 < argc)
            random_n = atoi(argv[++i]);
        else if (strcmp(a, "--wait-ms") == 0 && i + 1 < argc)
            wait_ms = atoi(argv[++i]);
        else {
            fprintf(stderr, "cw-probe: bad argument '%s'\n", a);
            return 2;
        }
    }
    if (endpoint == NULL || (hb_from < 0 && random_n <= 0) || (server_key && !key_file)) {
        fprintf(stderr, "usage: cw-probe --endpoint EP [--server-key Z85 --key-file FILE] "
                        "[--routing-id ID] (--heartbeat FROM TO AHEAD_S | --random N)\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int one = 1, zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &wait_ms, sizeof(wait_ms));
    zmq_setsockopt(sock, ZMQ_IMMEDIATE, &one, sizeof(one));
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &wait_ms, sizeof(wait_ms));
    (void)zero;
    if (routing_id != NULL)
        zmq_setsockopt(sock, ZMQ_ROUTING_ID, routing_id, strlen(routing_id));
    if (server_key != NULL) {
        uint8_t sk[32];
        struct cw_curve_pair pair;
        char err[1024];
        if (!cw_curve_decode(server_key, sk)) {
            fprintf(stderr, "cw-probe: bad server key\n");
            return 2;
        }
        if (cw_curve_read_pair(key_file, &pair, err, sizeof(err)) != 0) {
            fprintf(stderr, "cw-probe: %s\n", err);
            return 2;
        }
        zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, sk, 32);
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pair.public_key, 32);
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, pair.secret_key, 32);
    }
    if (zmq_connect(sock, endpoint) != 0) {
        fprintf(stderr, "cw-probe: connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    int sent = 0, rc = 0;
    if (hb_from >= 0) {
        struct cw_msg m;
        memset(&m, 0, sizeof(m));
        m.type = CW_MSG_HEARTBEAT;
        m.from = (uint8_t)hb_from;
        m.to = (uint8_t)hb_to;
        m.clock = cw_hlc_from_us(now_us() + (uint64_t)ahead_s * 1000000u);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (cw_wire_encode_peer(&m, &buf, &len) != 0) {
            fprintf(stderr, "cw-probe: cannot encode the heartbeat\n");
            return 1;
        }
        for (int i = 0; i < 5; i++) {
            if (zmq_send(sock, buf, len, 0) < 0) {
                rc = 3;
                break;
            }
            sent++;
        }
        free(buf);
    } else {
        srand(7);
        for (int i = 0; i < random_n; i++) {
            uint8_t buf[600];
            size_t len = (size_t)(rand() % (int)sizeof(buf));
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)rand();
            if (zmq_send(sock, buf, len, 0) < 0) {
                rc = 3;
                break;
            }
            sent++;
        }
    }
    printf("%s: sent %d frames\n", rc == 3 ? "not connected" : "connected", sent);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return rc;
}
