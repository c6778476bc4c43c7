/*
 * test_node.c - the node above the replica: routing by bucket policy, one
 * merged ready set, error details, the ready/advance contract (a programmer
 * error that stops the process), the time and randomness seams, and the
 * replica's invariant check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "core/hlc.h"
#include "core/node.h"
#include "core/replica_int.h" /* to corrupt a replica on purpose */

#define T0 1000000000ull

static struct cw_bucket_policy buckets[3] = {
    {.name = "posts", .consistency = CW_CAUSAL, .conflict = CW_CONFLICT_LWW},
    {.name = "sib", .consistency = CW_CAUSAL, .conflict = CW_CONFLICT_SIBLINGS, .max_siblings = 2},
    {.name = "bank", .consistency = CW_STRONG, .conflict = CW_CONFLICT_LWW},
};

static uint64_t draws;
static uint64_t count_rand(void *ctx)
{
    (void)ctx;
    return ++draws;
}

static struct cw_node *node_new(unsigned region, unsigned n_regions)
{
    struct cw_node_config cfg = {
        .replica = {.region = region, .n_regions = n_regions, .buckets = buckets, .n_buckets = 3},
        .rand = {.next = count_rand, .ctx = NULL},
    };
    struct cw_node *n = cw_node_create(&cfg);
    assert_non_null(n);
    return n;
}

static struct cw_put_req put_req(uint64_t id, const char *bucket, const char *key,
                                 const char *value)
{
    struct cw_put_req r;
    memset(&r, 0, sizeof(r));
    r.req_id = id;
    r.bucket = bucket;
    r.key = (const uint8_t *)key;
    r.key_len = (uint32_t)strlen(key);
    r.value = (const uint8_t *)value;
    r.value_len = (uint32_t)strlen(value);
    return r;
}

static const struct cw_reply *find_reply(const struct cw_ready *rd, uint64_t id)
{
    for (size_t i = 0; i < rd->n_replies; i++)
        if (rd->replies[i].req_id == id)
            return &rd->replies[i];
    return NULL;
}

/* A put condition on a causal bucket and an unknown bucket are answered by the
 * node itself, in the same ready set as the replica's replies, with a detail
 * naming the bucket. */
static void test_routing_merges_replies(void **state)
{
    (void)state;
    struct cw_node *n = node_new(0, 1);
    struct cw_now now = cw_now_both(T0);
    struct cw_put_req a = put_req(1, "posts", "k", "v");
    struct cw_put_req b = put_req(2, "posts", "acct", "10");
    b.cond = CW_COND_ABSENT;
    struct cw_put_req c = put_req(3, "nope", "k", "v");
    cw_node_put(n, now, &a);
    cw_node_put(n, now, &b);
    cw_node_put(n, now, &c);
    assert_true(cw_node_has_ready(n));
    const struct cw_ready *rd = cw_node_ready(n);
    assert_int_equal(rd->n_replies, 3);
    assert_true(rd->n_persist > 0); /* the replica's write is in the same round */
    assert_int_equal(find_reply(rd, 1)->err, CW_OK);
    assert_int_equal(find_reply(rd, 2)->err, CW_EINVAL);
    assert_non_null(strstr(find_reply(rd, 2)->detail, "posts"));
    assert_non_null(strstr(find_reply(rd, 2)->detail, "strong bucket"));
    assert_int_equal(find_reply(rd, 3)->err, CW_EUNKNOWNBUCKET);
    assert_non_null(strstr(find_reply(rd, 3)->detail, "nope"));
    cw_node_advance(n);
    assert_false(cw_node_has_ready(n));
    /* A round with only replica effects hands them through unchanged. */
    struct cw_get_req g = {
        .req_id = 4, .bucket = "posts", .key = (const uint8_t *)"k", .key_len = 1};
    cw_node_get(n, now, &g);
    rd = cw_node_ready(n);
    assert_int_equal(rd->n_replies, 1);
    assert_int_equal(rd->replies[0].err, CW_OK);
    assert_int_equal(rd->replies[0].state.n, 1);
    cw_node_advance(n);
    cw_node_destroy(&n);
    assert_null(n);
}

/* Runs rounds until the node has nothing more; copies the replies (kind, id,
 * error, version, first value byte) into out. Returns how many. */
struct seen_reply {
    uint64_t req_id;
    int err;
    uint64_t version;
    uint32_t n_versions;
    char value[16];
};

static size_t drain(struct cw_node *n, struct cw_now now, struct seen_reply *out, size_t max)
{
    size_t k = 0;
    for (int round = 0; round < 100 && cw_node_has_ready(n); round++) {
        const struct cw_ready *rd = cw_node_ready(n);
        for (size_t i = 0; i < rd->n_replies && k < max; i++, k++) {
            const struct cw_reply *r = &rd->replies[i];
            memset(&out[k], 0, sizeof(out[k]));
            out[k].req_id = r->req_id;
            out[k].err = r->err;
            out[k].version = r->version;
            out[k].n_versions = r->state.n;
            if (r->state.n == 1 && r->state.v[0].value_len < sizeof(out[k].value))
                memcpy(out[k].value, r->state.v[0].value, r->state.v[0].value_len);
        }
        cw_node_advance(n);
        cw_node_tick(n, now);
    }
    return k;
}

static const struct seen_reply *seen(const struct seen_reply *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].req_id == id)
            return &v[i];
    return NULL;
}

/* A strong bucket on a one-region cluster: the region elects itself, and puts,
 * gets and conditional puts behave as one register per key, with versions. */
static void test_strong_register(void **state)
{
    (void)state;
    struct cw_node *n = node_new(0, 1);
    struct seen_reply r[16];
    /* Past the longest election timeout: the single region leads. */
    struct cw_now now = cw_now_both(T0 + 5000000);
    cw_node_tick(n, now);
    drain(n, now, r, 16);
    struct cw_raft_status rs;
    struct cw_strong_stats ss;
    cw_node_strong_status(n, now, &rs, &ss);
    assert_int_equal(rs.role, CW_RAFT_LEADER);

    struct cw_put_req p = put_req(1, "bank", "acct", "10");
    cw_node_put(n, now, &p);
    size_t k = drain(n, now, r, 16);
    const struct seen_reply *a = seen(r, k, 1);
    assert_non_null(a);
    assert_int_equal(a->err, CW_OK);
    assert_true(a->version > 0);
    uint64_t v1 = a->version;

    struct cw_get_req g = {.req_id = 2, .bucket = "bank", .key = (const uint8_t *)"acct",
                           .key_len = 4};
    cw_node_get(n, now, &g);
    k = drain(n, now, r, 16);
    a = seen(r, k, 2);
    assert_non_null(a);
    assert_int_equal(a->err, CW_OK);
    assert_int_equal(a->version, v1);
    assert_string_equal(a->value, "10");

    /* A stale expected version: conflict, with the current version. */
    struct cw_put_req c = put_req(3, "bank", "acct", "20");
    c.cond = CW_COND_VERSION;
    c.cond_version = v1 + 100;
    cw_node_put(n, now, &c);
    /* Absent: the key exists, conflict too. */
    struct cw_put_req d = put_req(4, "bank", "acct", "30");
    d.cond = CW_COND_ABSENT;
    cw_node_put(n, now, &d);
    /* The right version: applied. */
    struct cw_put_req e = put_req(5, "bank", "acct", "40");
    e.cond = CW_COND_VERSION;
    e.cond_version = v1;
    cw_node_put(n, now, &e);
    k = drain(n, now, r, 16);
    assert_int_equal(seen(r, k, 3)->err, CW_ECONFLICT);
    assert_int_equal(seen(r, k, 3)->version, v1);
    assert_int_equal(seen(r, k, 4)->err, CW_ECONFLICT);
    assert_int_equal(seen(r, k, 4)->version, v1);
    assert_int_equal(seen(r, k, 5)->err, CW_OK);
    assert_true(seen(r, k, 5)->version > v1);

    /* A delete, then a get finds nothing and an if-absent put applies. */
    struct cw_put_req del = put_req(6, "bank", "acct", "");
    del.tombstone = true;
    cw_node_put(n, now, &del);
    k = drain(n, now, r, 16);
    assert_int_equal(seen(r, k, 6)->err, CW_OK);
    /* Issued after the delete completed (concurrent requests may see either). */
    cw_node_get(n, now, &(struct cw_get_req){.req_id = 7, .bucket = "bank",
                                              .key = (const uint8_t *)"acct", .key_len = 4});
    k = drain(n, now, r, 16);
    assert_int_equal(seen(r, k, 7)->err, CW_OK);
    assert_int_equal(seen(r, k, 7)->n_versions, 0);
    struct cw_put_req f = put_req(8, "bank", "acct", "50");
    f.cond = CW_COND_ABSENT;
    cw_node_put(n, now, &f);
    k = drain(n, now, r, 16);
    assert_int_equal(seen(r, k, 8)->err, CW_OK);
    cw_node_strong_status(n, now, &rs, &ss);
    assert_int_equal(ss.conflicts, 2);
    assert_int_equal(ss.keys, 1);
    char why[256];
    assert_true(cw_node_check_invariants(n, why, sizeof(why)));
    cw_node_destroy(&n);
}

/* Without a majority (one of three regions, no peers answering), a strong
 * request fails after the strong timeout with CW_ENOQUORUM, naming the
 * regions it cannot hear; causal buckets keep working meanwhile. */
static void test_strong_no_quorum(void **state)
{
    (void)state;
    struct cw_node *n = node_new(0, 3);
    struct seen_reply r[16];
    struct cw_now t = cw_now_both(T0);
    struct cw_put_req p = put_req(1, "bank", "acct", "10");
    cw_node_put(n, t, &p);
    struct cw_put_req q = put_req(2, "posts", "k", "v");
    cw_node_put(n, t, &q);
    size_t k = drain(n, t, r, 16);
    assert_null(seen(r, k, 1)); /* waiting for Raft */
    assert_int_equal(seen(r, k, 2)->err, CW_OK);
    uint64_t timeout_us = CW_DEFAULT_STRONG_TIMEOUT_MS * 1000ull;
    for (uint64_t us = 0; us <= timeout_us + 100000; us += 50000) {
        t = cw_now_both(T0 + us);
        cw_node_tick(n, t);
        k = drain(n, t, r, 16);
        if (seen(r, k, 1) != NULL)
            break;
    }
    const struct seen_reply *a = seen(r, k, 1);
    assert_non_null(a);
    assert_int_equal(a->err, CW_ENOQUORUM);
    assert_true(t.mono_us - T0 >= timeout_us);
    cw_node_destroy(&n);
}

/* CW_ESIBLINGS names its key and the limit. */
static void test_siblings_error_names_key(void **state)
{
    (void)state;
    struct cw_node *n = node_new(0, 1);
    for (uint64_t i = 1; i <= 3; i++) {
        struct cw_put_req p = put_req(i, "sib", "thread-7", "x");
        cw_node_put(n, cw_now_both(T0 + i), &p);
    }
    const struct cw_ready *rd = cw_node_ready(n);
    const struct cw_reply *third = find_reply(rd, 3);
    assert_int_equal(third->err, CW_ESIBLINGS);
    assert_non_null(strstr(third->detail, "sib/thread-7"));
    assert_non_null(strstr(third->detail, "max_siblings 2"));
    assert_int_equal(find_reply(rd, 2)->detail[0], '\0'); /* successes carry none */
    cw_node_advance(n);
    cw_node_destroy(&n);
}

/* A value over the limit says how large it was and what the limit is; a request
 * that waits too long says which region is behind. */
static void test_details_for_value_and_wait(void **state)
{
    (void)state;
    struct cw_node *n = node_new(0, 2);
    static char big[(1u << 20) + 2];
    memset(big, 'v', sizeof(big) - 1);
    struct cw_put_req p = put_req(1, "posts", "big", big);
    cw_node_put(n, cw_now_both(T0), &p);
    struct cw_get_req g = {
        .req_id = 2, .bucket = "posts", .key = (const uint8_t *)"k", .key_len = 1};
    g.context.ts[1] = cw_hlc_from_us(T0); /* region 1 has not been heard from */
    cw_node_get(n, cw_now_both(T0), &g);
    const struct cw_ready *rd = cw_node_ready(n);
    assert_int_equal(find_reply(rd, 1)->err, CW_EVALUE);
    assert_non_null(strstr(find_reply(rd, 1)->detail, "posts/big"));
    assert_non_null(strstr(find_reply(rd, 1)->detail, "1048577 bytes"));
    assert_null(find_reply(rd, 2)); /* parked */
    cw_node_advance(n);
    /* The wait runs on the monotonic clock: a wall clock that jumps ahead by an
     * hour does not expire it ... */
    struct cw_now jumped = {.real_us = T0 + 3600ull * 1000000, .mono_us = T0 + 1000};
    cw_node_tick(n, jumped);
    rd = cw_node_ready(n);
    assert_null(find_reply(rd, 2));
    cw_node_advance(n);
    /* ... while the monotonic clock passing the bound does. */
    struct cw_now later = {.real_us = T0 + 3600ull * 1000000, .mono_us = T0 + 6000000};
    cw_node_tick(n, later);
    rd = cw_node_ready(n);
    const struct cw_reply *r2 = find_reply(rd, 2);
    assert_non_null(r2);
    assert_int_equal(r2->err, CW_ENOTREADY);
    assert_non_null(strstr(r2->detail, "region 1"));
    cw_node_advance(n);
    cw_node_destroy(&n);
}

/* Runs fn in a child and returns what it wrote to stderr; the child must die of
 * SIGABRT. */
static void expect_abort(void (*fn)(void), const char *expect)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0); /* not reached when the assertion fires */
    }
    close(fds[1]);
    char buf[1024];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof(buf) - 1 && (k = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(buf, "assertion failed at"));
    assert_non_null(strstr(buf, expect));
}

static void input_between_ready_and_advance(void)
{
    struct cw_node *n = node_new(0, 1);
    struct cw_put_req p = put_req(1, "posts", "k", "v");
    cw_node_put(n, cw_now_both(T0), &p);
    (void)cw_node_ready(n);
    cw_node_put(n, cw_now_both(T0), &p); /* its effects would be lost: stops */
}

static void replica_input_between_ready_and_advance(void)
{
    struct cw_replica_config cfg = {
        .region = 0, .n_regions = 1, .buckets = buckets, .n_buckets = 3};
    struct cw_replica *r = cw_replica_create(&cfg);
    (void)cw_replica_ready(r);
    cw_replica_tick(r, cw_now_both(T0));
}

/* The ready/advance contract is enforced in every build, NDEBUG or not. */
static void test_contract_violation_aborts(void **state)
{
    (void)state;
    expect_abort(input_between_ready_and_advance, "in_ready");
    expect_abort(replica_input_between_ready_and_advance, "in_ready");
}

/* The randomness seam: the node draws from the driver's generator. */
static void test_random_comes_from_driver(void **state)
{
    (void)state;
    struct cw_node *n = node_new(0, 1);
    draws = 41;
    assert_int_equal(cw_node_draw(n), 42);
    assert_int_equal(cw_node_draw(n), 43);
    cw_node_destroy(&n);
    /* Without a generator the fallback is a fixed sequence: two nodes agree. */
    struct cw_node_config cfg = {
        .replica = {.region = 0, .n_regions = 1, .buckets = buckets, .n_buckets = 3}};
    struct cw_node *x = cw_node_create(&cfg), *y = cw_node_create(&cfg);
    assert_int_equal(cw_node_draw(x), cw_node_draw(y));
    cw_node_destroy(&x);
    cw_node_destroy(&y);
}

/* The invariant check sees a corrupted replica and says what is wrong. */
static void test_invariants_catch_corruption(void **state)
{
    (void)state;
    struct cw_node *n = node_new(0, 2);
    struct cw_put_req p = put_req(1, "posts", "k", "v");
    cw_node_put(n, cw_now_both(T0), &p);
    (void)cw_node_ready(n);
    cw_node_advance(n);
    char why[256];
    assert_true(cw_node_check_invariants(n, why, sizeof(why)));
    struct cw_replica *r = (struct cw_replica *)cw_node_replica(n);
    r->buffered++; /* accounting that no longer matches the queues */
    assert_false(cw_node_check_invariants(n, why, sizeof(why)));
    assert_non_null(strstr(why, "dependency buffer counts"));
    r->buffered--;
    assert_true(cw_node_check_invariants(n, why, sizeof(why)));
    uint64_t saved = r->applied.ts[0];
    r->applied.ts[0] -= 1; /* V went backwards */
    assert_false(cw_node_check_invariants(n, why, sizeof(why)));
    assert_non_null(strstr(why, "backwards"));
    r->applied.ts[0] = saved;
    cw_node_destroy(&n);
}

static struct cw_node *node_bounded(unsigned region, unsigned n_regions, uint64_t outbox_bytes,
                                    uint64_t buffer_bytes, uint64_t inflight_bytes)
{
    struct cw_node_config cfg = {
        .replica = {.region = region,
                    .n_regions = n_regions,
                    .buckets = buckets,
                    .n_buckets = 3,
                    .outbox_bytes_max = outbox_bytes,
                    .dep_buffer_bytes_max = buffer_bytes,
                    .inflight_bytes_max = inflight_bytes},
    };
    struct cw_node *n = cw_node_create(&cfg);
    assert_non_null(n);
    return n;
}

static char value_1k[1001];

/* The outbox is bounded in bytes: a write that would pass the bound fails with
 * CW_EFULL and a detail naming the bound; nothing is stored for it. */
static void test_outbox_byte_bound(void **state)
{
    (void)state;
    memset(value_1k, 'x', 1000);
    /* Room for about three 1 KB records (each also counts its key bound). */
    struct cw_node *n = node_bounded(0, 2, 3 * (1000 + 1100 + 200), 0, 0);
    int ok = 0, full = 0;
    for (uint64_t i = 1; i <= 6; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%u", (unsigned)i);
        struct cw_put_req p = put_req(i, "posts", key, value_1k);
        cw_node_put(n, cw_now_both(T0 + i), &p);
        const struct cw_ready *rd = cw_node_ready(n);
        const struct cw_reply *rep = find_reply(rd, i);
        assert_non_null(rep);
        if (rep->err == CW_OK) {
            ok++;
        } else {
            assert_int_equal(rep->err, CW_EFULL);
            assert_non_null(strstr(rep->detail, "outbox_bytes_max"));
            assert_int_equal(rd->n_persist, 0); /* nothing stored half-way */
            full++;
        }
        cw_node_advance(n);
    }
    assert_true(ok >= 1);
    assert_true(full >= 1);
    const struct cw_replica *r = cw_node_replica(n);
    assert_true(cw_replica_outbox_bytes(r) <= 3 * (1000 + 1100 + 200));
    assert_int_equal(cw_replica_outbox_len(r), (size_t)ok);
    cw_node_destroy(&n);
}

/* Counts the records in the RECORDS messages of one round. */
static size_t records_sent(const struct cw_ready *rd)
{
    size_t k = 0;
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (rd->msgs[i].type == CW_MSG_RECORDS)
            k += rd->msgs[i].n_records;
    return k;
}

/* A link stops sending at inflight_bytes_max until the peer acknowledges. */
static void test_inflight_byte_bound(void **state)
{
    (void)state;
    memset(value_1k, 'x', 1000);
    struct cw_node *n = node_bounded(0, 2, 0, 0, 2500); /* about two records */
    struct cw_msg hb = {.type = CW_MSG_HEARTBEAT, .from = 1, .to = 0};
    hb.clock = cw_hlc_from_us(T0);
    cw_node_recv(n, cw_now_both(T0), &hb); /* the peer is known: streams start */
    (void)cw_node_ready(n);
    cw_node_advance(n);
    for (uint64_t i = 1; i <= 5; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%u", (unsigned)i);
        struct cw_put_req p = put_req(i, "posts", key, value_1k);
        cw_node_put(n, cw_now_both(T0 + i), &p);
    }
    cw_node_tick(n, cw_now_both(T0 + 10));
    const struct cw_ready *rd = cw_node_ready(n);
    size_t first = records_sent(rd);
    uint64_t acked_upto = 0;
    for (size_t i = 0; i < rd->n_msgs; i++)
        for (uint32_t j = 0; j < rd->msgs[i].n_records; j++)
            acked_upto = rd->msgs[i].records[j].version.dot.ts;
    cw_node_advance(n);
    assert_true(first >= 1);
    assert_true(first <= 2);
    assert_true(cw_replica_inflight_bytes(cw_node_replica(n), 1) <= 2500);
    /* Nothing more leaves until an acknowledgement ... */
    cw_node_tick(n, cw_now_both(T0 + 20));
    rd = cw_node_ready(n);
    assert_int_equal(records_sent(rd), 0);
    cw_node_advance(n);
    /* ... which frees the window for the next ones. */
    hb.received.ts[0] = acked_upto;
    cw_node_recv(n, cw_now_both(T0 + 30), &hb);
    rd = cw_node_ready(n);
    assert_true(records_sent(rd) >= 1);
    cw_node_advance(n);
    cw_node_destroy(&n);
}

/* The dependency buffer is bounded in bytes: records past the bound wait for a
 * resend (counted), the buffer never holds more. */
static void test_dep_buffer_byte_bound(void **state)
{
    (void)state;
    memset(value_1k, 'x', 1000);
    struct cw_node *n = node_bounded(0, 3, 0, 2 * (1000 + 200 + 9), 0);
    struct cw_msg m = {.type = CW_MSG_RECORDS, .from = 1, .to = 0, .n_records = 5};
    m.records = calloc(5, sizeof(*m.records));
    assert_non_null(m.records);
    uint64_t base = cw_hlc_from_us(T0);
    for (unsigned i = 0; i < 5; i++) {
        struct cw_record *rec = &m.records[i];
        rec->prev_ts = i ? base + i : 0;
        rec->consistency = CW_CAUSAL;
        rec->key = (uint8_t *)strdup("posts/r");
        rec->key_len = 7;
        rec->deps.ts[2] = base - 5; /* region 2's write, never seen here */
        rec->version.dot.origin = 1;
        rec->version.dot.ts = base + i + 1;
        rec->version.value_len = 1000;
        rec->version.value = malloc(1000);
        assert_non_null(rec->version.value);
        memset(rec->version.value, 'y', 1000);
    }
    cw_node_recv(n, cw_now_both(T0), &m);
    (void)cw_node_ready(n);
    cw_node_advance(n);
    const struct cw_replica *r = cw_node_replica(n);
    assert_true(cw_replica_buffered(r) >= 1);
    assert_true(cw_replica_buffered(r) < 5);
    assert_true(cw_replica_buffered_bytes(r) <= 2 * (1000 + 200 + 9) + sizeof(struct cw_record));
    assert_int_equal(cw_replica_stats(r)->buffer_full_drops, 1);
    char why[256];
    assert_true(cw_node_check_invariants(n, why, sizeof(why)));
    cw_msg_free(&m);
    cw_node_destroy(&n);
}

/* ------------------------------------------------ the store of record */

/* A minimal store: the persist records of every advanced round, by key and by
 * stamp, read back through the reader interface exactly as Berkeley DB would. */
#define DISK_MAX 512
struct disk {
    struct {
        uint8_t key[64];
        uint32_t key_len;
        uint8_t *data;
        uint32_t len;
    } keys[DISK_MAX];
    size_t n_keys;
    struct {
        uint64_t ts;
        uint8_t *data;
        uint32_t len;
    } outbox[DISK_MAX];
    size_t n_outbox;
    unsigned key_reads, outbox_reads;
};

static void disk_commit(struct disk *d, const struct cw_ready *rd)
{
    for (size_t i = 0; i < rd->n_persist; i++) {
        const struct cw_persist *p = &rd->persist[i];
        if (p->kind == CW_PERSIST_KEY) {
            size_t k = 0;
            while (k < d->n_keys && (d->keys[k].key_len != p->key_len ||
                                     memcmp(d->keys[k].key, p->key, p->key_len) != 0))
                k++;
            if (k == d->n_keys) {
                assert_true(d->n_keys < DISK_MAX && p->key_len <= 64);
                memcpy(d->keys[k].key, p->key, p->key_len);
                d->keys[k].key_len = p->key_len;
                d->n_keys++;
            }
            free(d->keys[k].data);
            d->keys[k].data = p->data_len ? malloc(p->data_len) : NULL;
            if (p->data_len)
                memcpy(d->keys[k].data, p->data, p->data_len);
            d->keys[k].len = p->data_len;
        } else if (p->kind == CW_PERSIST_OUTBOX_PUT) {
            assert_true(d->n_outbox < DISK_MAX);
            d->outbox[d->n_outbox].ts = p->ts;
            d->outbox[d->n_outbox].data = malloc(p->data_len);
            memcpy(d->outbox[d->n_outbox].data, p->data, p->data_len);
            d->outbox[d->n_outbox].len = p->data_len;
            d->n_outbox++;
        } else if (p->kind == CW_PERSIST_OUTBOX_DEL) {
            for (size_t k = 0; k < d->n_outbox; k++)
                if (d->outbox[k].ts == p->ts) {
                    free(d->outbox[k].data);
                    d->outbox[k] = d->outbox[--d->n_outbox];
                    break;
                }
        }
    }
}

static void disk_free(struct disk *d)
{
    for (size_t k = 0; k < d->n_keys; k++)
        free(d->keys[k].data);
    for (size_t k = 0; k < d->n_outbox; k++)
        free(d->outbox[k].data);
}

static int disk_read_key(void *ctx, const uint8_t *key, uint32_t key_len, struct cw_keystate *out)
{
    struct disk *d = ctx;
    d->key_reads++;
    for (size_t k = 0; k < d->n_keys; k++)
        if (d->keys[k].key_len == key_len && memcmp(d->keys[k].key, key, key_len) == 0) {
            if (d->keys[k].len == 0)
                return CW_ENOTFOUND;
            return cw_decode_keystate(out, d->keys[k].data, d->keys[k].len, CW_VALUE_HARD_MAX);
        }
    return CW_ENOTFOUND;
}

static int disk_read_outbox(void *ctx, uint64_t ts, struct cw_record *out)
{
    struct disk *d = ctx;
    d->outbox_reads++;
    for (size_t k = 0; k < d->n_outbox; k++)
        if (d->outbox[k].ts == ts)
            return cw_decode_record(out, d->outbox[k].data, d->outbox[k].len, CW_VALUE_HARD_MAX);
    return CW_ENOTFOUND;
}

static void round_trip(struct cw_node *n, struct disk *d)
{
    const struct cw_ready *rd = cw_node_ready(n);
    disk_commit(d, rd);
    cw_node_advance(n);
    char why[256];
    if (!cw_node_check_invariants(n, why, sizeof(why)))
        fail_msg("invariant: %s", why);
}

/* With a reader, key states beyond the cache budget leave memory once persisted
 * and come back, correct, when read or written again; outbox bodies beyond their
 * budget leave memory and are read back to be sent. */
static void test_store_of_record(void **state)
{
    (void)state;
    static struct disk d;
    memset(&d, 0, sizeof(d));
    memset(value_1k, 'x', 1000);
    struct cw_node_config cfg = {
        .replica = {.region = 0,
                    .n_regions = 2,
                    .buckets = buckets,
                    .n_buckets = 3,
                    .reader = {.key = disk_read_key, .outbox = disk_read_outbox, .ctx = &d},
                    .key_cache_bytes_max = 8 * 1024,
                    .outbox_cache_bytes_max = 4 * 1024},
    };
    struct cw_node *n = cw_node_create(&cfg);
    assert_non_null(n);
    const struct cw_replica *r = cw_node_replica(n);
    for (uint64_t i = 0; i < 60; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02u", (unsigned)i);
        value_1k[0] = (char)('a' + i % 26);
        struct cw_put_req p = put_req(i + 1, "posts", key, value_1k);
        cw_node_put(n, cw_now_both(T0 + i), &p);
        round_trip(n, &d);
        assert_true(cw_replica_key_cache_bytes(r) <= 8 * 1024);
        assert_true(cw_replica_outbox_body_bytes(r) <= 4 * 1024);
    }
    assert_true(cw_replica_stats(r)->keys_evicted > 40);
    assert_true(cw_replica_stats(r)->bodies_evicted > 40);
    /* Every key reads back its own value, most of them through the reader. */
    unsigned reads_before = d.key_reads;
    for (uint64_t i = 0; i < 60; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02u", (unsigned)i);
        struct cw_get_req g = {.req_id = 1000 + i,
                               .bucket = "posts",
                               .key = (const uint8_t *)key,
                               .key_len = (uint32_t)strlen(key)};
        cw_node_get(n, cw_now_both(T0 + 100), &g);
        const struct cw_ready *rd = cw_node_ready(n);
        const struct cw_reply *rep = find_reply(rd, 1000 + i);
        assert_non_null(rep);
        assert_int_equal(rep->err, CW_OK);
        assert_int_equal(rep->state.n, 1);
        assert_int_equal(rep->state.v[0].value_len, 1000);
        assert_int_equal(rep->state.v[0].value[0], 'a' + i % 26);
        cw_node_advance(n);
    }
    assert_true(d.key_reads - reads_before > 40);
    /* A write to an evicted key replaces the stored version (LWW): the state was
     * read back, not started afresh. */
    struct cw_put_req p = put_req(500, "posts", "k00", "new");
    cw_node_put(n, cw_now_both(T0 + 200), &p);
    round_trip(n, &d);
    struct cw_keystate ks;
    assert_int_equal(cw_replica_read_key(r, (const uint8_t *)"posts/k00", 9, &ks), CW_OK);
    assert_int_equal(ks.n, 1);
    assert_int_equal(ks.v[0].value_len, 3);
    cw_keystate_free(&ks);
    /* The peer shows up: the whole outbox is sent, old bodies read back. */
    struct cw_msg hb = {.type = CW_MSG_HEARTBEAT, .from = 1, .to = 0};
    hb.clock = cw_hlc_from_us(T0);
    cw_node_recv(n, cw_now_both(T0 + 300), &hb);
    const struct cw_ready *rd = cw_node_ready(n);
    size_t sent = records_sent(rd);
    for (size_t i = 0; i < rd->n_msgs; i++)
        for (uint32_t j = 0; j < rd->msgs[i].n_records; j++) {
            const struct cw_record *rec = &rd->msgs[i].records[j];
            assert_non_null(rec->key);
            assert_true(rec->version.value_len == 1000 || rec->version.value_len == 3);
        }
    disk_commit(&d, rd);
    cw_node_advance(n);
    assert_int_equal(sent, 61);
    assert_true(d.outbox_reads > 40);
    cw_node_destroy(&n);
    disk_free(&d);
}

/* A store read that fails is an error to the client, never wrong data. */
static int failing_read_key(void *ctx, const uint8_t *key, uint32_t key_len,
                            struct cw_keystate *out)
{
    (void)ctx;
    (void)key;
    (void)key_len;
    (void)out;
    return CW_EIO;
}

static void test_store_read_error_is_reported(void **state)
{
    (void)state;
    struct cw_node_config cfg = {
        .replica = {.region = 0,
                    .n_regions = 1,
                    .buckets = buckets,
                    .n_buckets = 3,
                    .reader = {.key = failing_read_key}},
    };
    struct cw_node *n = cw_node_create(&cfg);
    struct cw_get_req g = {
        .req_id = 1, .bucket = "posts", .key = (const uint8_t *)"k", .key_len = 1};
    cw_node_get(n, cw_now_both(T0), &g);
    struct cw_put_req p = put_req(2, "posts", "k", "v");
    cw_node_put(n, cw_now_both(T0), &p);
    const struct cw_ready *rd = cw_node_ready(n);
    assert_int_equal(find_reply(rd, 1)->err, CW_EIO);
    assert_non_null(strstr(find_reply(rd, 1)->detail, "store"));
    assert_int_equal(find_reply(rd, 2)->err, CW_EIO);
    assert_non_null(strstr(find_reply(rd, 2)->detail, "nothing was written"));
    assert_int_equal(rd->n_persist, 0);
    cw_node_advance(n);
    assert_int_equal(cw_replica_stats(cw_node_replica(n))->store_read_errors, 2);
    cw_node_destroy(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_merges_replies),
        cmocka_unit_test(test_siblings_error_names_key),
        cmocka_unit_test(test_strong_register),
        cmocka_unit_test(test_strong_no_quorum),
        cmocka_unit_test(test_details_for_value_and_wait),
        cmocka_unit_test(test_contract_violation_aborts),
        cmocka_unit_test(test_random_comes_from_driver),
        cmocka_unit_test(test_invariants_catch_corruption),
        cmocka_unit_test(test_outbox_byte_bound),
        cmocka_unit_test(test_inflight_byte_bound),
        cmocka_unit_test(test_dep_buffer_byte_bound),
        cmocka_unit_test(test_store_of_record),
        cmocka_unit_test(test_store_read_error_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
