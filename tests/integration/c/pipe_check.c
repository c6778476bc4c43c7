/*
 * pipe_check ENDPOINT - the pipelined client API (cw_pipe_*) against a running
 * node, for tests/integration/test_pipeline.py: with 16 requests in flight on one
 * connection, every get reads the put of the same key submitted just before it
 * (still in flight: the node applies a connection's requests in order), results
 * come back in submission order with their handles, the session's context grows,
 * and a full pipe refuses a submission with CW_EFULL. Exits 0 when all holds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <causeway.h>

#define DEPTH 16
#define KEYS 200

static int fail(const char *what, struct cw_client *c)
{
    fprintf(stderr, "pipe_check: %s (%s)\n", what, c ? cw_client_error(c) : "");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pipe_check ENDPOINT\n");
        return 2;
    }
    struct cw_client *c = NULL;
    struct cw_sess *s = NULL;
    struct cw_pipe *p = NULL;
    if (cw_client_connect(argv[1], NULL, &c) != CW_OK || cw_sess_new(0, &s) != CW_OK ||
        cw_pipe_new(c, s, DEPTH, &p) != CW_OK)
        return fail("cannot set up a client, session and pipe", c);
    char before[CW_CONTEXT_TOKEN_MAX], after[CW_CONTEXT_TOKEN_MAX];
    cw_sess_export(s, before, sizeof(before));
    uint64_t handles[2 * KEYS];
    unsigned submitted = 0, taken = 0, total = 2 * KEYS;
    while (taken < total) {
        if (submitted < total && cw_pipe_pending(p) < DEPTH) {
            unsigned i = submitted / 2;
            char key[16], val[16];
            int kl = snprintf(key, sizeof(key), "p%u", i), vl = snprintf(val, sizeof(val), "v%u", i);
            int rc = submitted % 2 == 0
                         ? cw_pipe_put(p, "kv", key, (size_t)kl, val, (size_t)vl, &handles[submitted])
                         : cw_pipe_get(p, "kv", key, (size_t)kl, &handles[submitted]);
            if (rc != CW_OK || handles[submitted] == 0)
                return fail("a submission failed", c);
            submitted++;
            continue;
        }
        if (submitted < total) {
            uint64_t h = 1;
            if (cw_pipe_get(p, "kv", "never", 5, &h) != CW_EFULL || h != 0)
                return fail("a submission to a full pipe was not refused with CW_EFULL", c);
        }
        struct cw_pipe_result r;
        int rc = cw_pipe_next(p, &r);
        if (rc != CW_OK || r.rc != CW_OK)
            return fail("a pipelined request failed", c);
        if (r.handle != handles[taken] ||
            r.op != (taken % 2 == 0 ? CW_PIPE_PUT : CW_PIPE_GET)) {
            fprintf(stderr, "pipe_check: result %u has handle %" PRIu64 ", expected %" PRIu64 "\n",
                    taken, r.handle, handles[taken]);
            return 1;
        }
        if (r.op == CW_PIPE_PUT && r.put.ts == 0)
            return fail("a put result without a stamp", c);
        if (r.op == CW_PIPE_GET) {
            char want[16];
            int wl = snprintf(want, sizeof(want), "v%u", taken / 2);
            bool ok = r.get != NULL && r.get->found && r.get->n == 1 &&
                      r.get->versions[0].len == (size_t)wl &&
                      memcmp(r.get->versions[0].value, want, (size_t)wl) == 0;
            cw_get_result_free(&r.get);
            if (!ok) {
                fprintf(stderr, "pipe_check: get p%u did not read %s, the put before it\n",
                        taken / 2, want);
                return 1;
            }
        }
        taken++;
    }
    struct cw_pipe_result r;
    if (cw_pipe_next(p, &r) != CW_EINVAL || r.handle != 0)
        return fail("cw_pipe_next on an empty pipe did not say CW_EINVAL", c);
    cw_sess_export(s, after, sizeof(after));
    if (strcmp(before, after) == 0)
        return fail("the session's context did not grow", c);
    cw_pipe_free(&p);
    cw_sess_free(&s);
    cw_client_close(&c);
    printf("pipe_check: %u pipelined requests, %d in flight: in order, read-your-writes held\n",
           total, DEPTH);
    return 0;
}
