/*
 * test_config.c - the configuration loader: the shipped geo-configs load with the
 * values they state, every kind of mistake is rejected with CW_ECONFIG and a
 * message naming the file, the line and the offending key, and the lookups and
 * the replica configuration are filled from a loaded file.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <causeway/error.h>

#include "core/limits.h"
#include "core/replica.h"
#include "server/config.h"

/* ---- fixtures ------------------------------------------------------------------ */

struct tmp {
    char dir[64];
};

static int tmp_setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    snprintf(t->dir, sizeof(t->dir), "/tmp/cw-config-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    *state = t;
    return 0;
}

/* Every file a test writes is named in the test; remove them, then the directory. */
static const char *const tmp_files[] = {"c.ini", "three.ini", "x.ini", NULL};

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    char path[128];
    for (size_t i = 0; tmp_files[i]; i++) {
        snprintf(path, sizeof(path), "%s/%s", t->dir, tmp_files[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(t->dir), 0);
    free(t);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* The repository root, from this file's absolute path as CMake compiles it. */
static void repo_path(char *out, size_t len, const char *rel)
{
    const char *self = __FILE__;
    const char *tail = strstr(self, "tests/node/test_config.c");
    assert_non_null(tail);
    snprintf(out, len, "%.*s%s", (int)(tail - self), self, rel);
}

static void load_shipped(const char *name, struct cw_config *c)
{
    char path[4096], err[512];
    repo_path(path, sizeof(path), name);
    int rc = cw_config_load(path, c, err, sizeof(err));
    if (rc != CW_OK)
        fail_msg("%s: %s", name, err);
    /* The shipped files use no deprecated key. */
    if (c->n_warnings != 0)
        fail_msg("%s: %s", name, c->warnings[0]);
}

/* ---- the shipped geo-configs ---------------------------------------------------------- */

/* The six demo buckets come first in every shipped config; three-regions.ini adds
 * strong ones after them (strong = 2) and then the feed demo's six (feed = 6),
 * the others none. */
static void assert_demo_buckets(const struct cw_config *c, unsigned strong, unsigned feed)
{
    static const struct {
        const char *name;
        enum cw_consistency consistency;
        enum cw_conflict conflict;
    } want[] = {
        {"posts", CW_CAUSAL, CW_CONFLICT_LWW},      {"replies", CW_CAUSAL, CW_CONFLICT_LWW},
        {"likes", CW_CAUSAL, CW_CONFLICT_SIBLINGS}, {"feed_ev", CW_EVENTUAL, CW_CONFLICT_LWW},
        {"kv", CW_CAUSAL, CW_CONFLICT_LWW},         {"sib", CW_CAUSAL, CW_CONFLICT_SIBLINGS},
    };
    assert_int_equal(c->n_buckets, 6 + strong + feed);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(c->buckets[i].name, want[i].name);
        assert_int_equal(c->buckets[i].consistency, want[i].consistency);
        assert_int_equal(c->buckets[i].conflict, want[i].conflict);
        assert_ptr_equal(cw_config_bucket(c, want[i].name), &c->buckets[i]);
    }
    assert_int_equal(cw_config_bucket(c, "likes")->max_siblings, 64);
    for (unsigned i = 6; i < 6 + strong; i++)
        assert_int_equal(c->buckets[i].consistency, CW_STRONG);
    assert_true(feed == 0 || feed == 6);
    if (strong) {
        assert_string_equal(c->buckets[6].name, "accounts");
        assert_string_equal(c->buckets[7].name, "threads_strong");
    }
    static const struct {
        const char *name;
        enum cw_consistency consistency;
        enum cw_conflict conflict;
    } feed_want[] = {
        {"threads", CW_CAUSAL, CW_CONFLICT_SIBLINGS},
        {"posts_ev", CW_EVENTUAL, CW_CONFLICT_LWW},
        {"replies_ev", CW_EVENTUAL, CW_CONFLICT_LWW},
        {"threads_ev", CW_EVENTUAL, CW_CONFLICT_SIBLINGS},
        {"posts_strong", CW_STRONG, CW_CONFLICT_LWW},
        {"replies_strong", CW_STRONG, CW_CONFLICT_LWW},
    };
    for (unsigned i = 0; i < feed; i++) {
        const struct cw_bucket_policy *b = &c->buckets[6 + strong + i];
        assert_string_equal(b->name, feed_want[i].name);
        assert_int_equal(b->consistency, feed_want[i].consistency);
        if (b->consistency != CW_STRONG)
            assert_int_equal(b->conflict, feed_want[i].conflict);
    }
}

static void test_three_regions(void **state)
{
    (void)state;
    struct cw_config c;
    load_shipped("geo-configs/three-regions.ini", &c);
    assert_int_equal(c.n_regions, 3);
    const char *names[] = {"us-east", "eu-west", "ap-south"};
    for (unsigned i = 0; i < 3; i++) {
        assert_string_equal(c.regions[i].name, names[i]);
        assert_int_equal(c.regions[i].id, i);
        char dir[64];
        snprintf(dir, sizeof(dir), "run/three-regions/%s", names[i]);
        assert_string_equal(c.regions[i].data_dir, dir);
        assert_int_equal(c.latency_ms[i][i], 0);
    }
    assert_string_equal(c.regions[0].client, "tcp://127.0.0.1:7100");
    assert_string_equal(c.regions[2].admin, "tcp://127.0.0.1:7122");
    assert_int_equal(c.latency_ms[0][1], 40);
    assert_int_equal(c.latency_ms[1][0], 40);
    assert_int_equal(c.latency_ms[0][2], 110);
    assert_int_equal(c.latency_ms[2][0], 110);
    assert_int_equal(c.latency_ms[1][2], 75);
    assert_int_equal(c.latency_ms[2][1], 75);
    assert_string_equal(c.durability, "write_nosync");
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.data_dir, "run/three-regions");
    assert_int_equal(c.max_value_bytes, 1048576);
    assert_int_equal(c.heartbeat_ms, 200);
    assert_int_equal(c.wait_ms, 5000);
    assert_int_equal(c.waiting_max, 10000);
    assert_int_equal(c.resend_ms, 1000);
    assert_int_equal(c.jitter_ms, 0);
    /* The sizes it states with units are the defaults. */
    assert_true(c.outbox_bytes_max == CW_DEFAULT_OUTBOX_BYTES_MAX);
    assert_true(c.dep_buffer_bytes_max == CW_DEFAULT_DEP_BUFFER_BYTES_MAX);
    assert_true(c.inflight_bytes_max == CW_DEFAULT_INFLIGHT_BYTES_MAX);
    assert_true(c.key_cache_bytes_max == CW_DEFAULT_KEY_CACHE_BYTES_MAX);
    assert_true(c.outbox_cache_bytes_max == CW_DEFAULT_OUTBOX_CACHE_BYTES_MAX);
    assert_true(c.store_cache_bytes == CW_DEFAULT_STORE_CACHE_BYTES);
    assert_demo_buckets(&c, 2, 6);
    cw_config_free(&c);
    assert_null(c.buckets);
    assert_int_equal(c.n_buckets, 0);
}

static void test_five_regions(void **state)
{
    (void)state;
    struct cw_config c;
    load_shipped("geo-configs/five-regions.ini", &c);
    assert_int_equal(c.n_regions, 5);
    assert_string_equal(c.regions[4].name, "sa-east");
    /* Every pair has a delay, the same both ways, and none to itself. */
    for (unsigned i = 0; i < 5; i++) {
        for (unsigned j = 0; j < 5; j++) {
            if (i == j) {
                assert_int_equal(c.latency_ms[i][j], 0);
            } else {
                assert_true(c.latency_ms[i][j] > 0);
                assert_int_equal(c.latency_ms[i][j], c.latency_ms[j][i]);
            }
        }
    }
    assert_demo_buckets(&c, 0, 0);
    cw_config_free(&c);
}

static void test_local(void **state)
{
    (void)state;
    struct cw_config c;
    load_shipped("geo-configs/local.ini", &c);
    assert_int_equal(c.n_regions, 3);
    for (unsigned i = 0; i < 3; i++)
        for (unsigned j = 0; j < 3; j++)
            assert_int_equal(c.latency_ms[i][j], 0);
    /* Keys it leaves out take their documented defaults. */
    assert_int_equal(c.heartbeat_ms, 200);
    assert_int_equal(c.batch_records_max, 256);
    assert_int_equal(c.window_records, 4096);
    assert_int_equal(c.waiting_max, 10000);
    assert_int_equal(c.wait_ms, 5000);
    assert_demo_buckets(&c, 0, 0);
    cw_config_free(&c);
}

/* The three configs may run at once on one host: no endpoint is shared. */
static void test_shipped_endpoints_distinct(void **state)
{
    (void)state;
    const char *files[] = {"geo-configs/three-regions.ini", "geo-configs/five-regions.ini",
                           "geo-configs/local.ini"};
    char seen[64][CW_ENDPOINT_MAX + 1];
    size_t n = 0;
    for (size_t f = 0; f < 3; f++) {
        struct cw_config c;
        load_shipped(files[f], &c);
        for (unsigned r = 0; r < c.n_regions; r++) {
            const char *eps[] = {c.regions[r].client, c.regions[r].peer, c.regions[r].admin};
            for (size_t e = 0; e < 3; e++) {
                for (size_t k = 0; k < n; k++)
                    if (strcmp(seen[k], eps[e]) == 0)
                        fail_msg("%s reuses %s", files[f], eps[e]);
                assert_true(n < 64);
                snprintf(seen[n++], sizeof(seen[0]), "%s", eps[e]);
            }
        }
        cw_config_free(&c);
    }
    assert_int_equal(n, 3 * (3 + 5 + 3));
}

/* ---- lookups and the replica configuration --------------------------------------- */

static void test_lookups_and_replica(void **state)
{
    (void)state;
    struct cw_config c;
    load_shipped("geo-configs/three-regions.ini", &c);
    const struct cw_region_config *r = cw_config_region(&c, "eu-west");
    assert_non_null(r);
    assert_int_equal(r->id, 1);
    assert_ptr_equal(r, &c.regions[1]);
    assert_null(cw_config_region(&c, "eu-wes"));
    assert_null(cw_config_region(&c, ""));
    assert_null(cw_config_bucket(&c, "nope"));

    struct cw_replica_config rc;
    memset(&rc, 0xab, sizeof(rc));
    cw_config_replica(&c, 2, &rc);
    assert_int_equal(rc.region, 2);
    assert_int_equal(rc.n_regions, 3);
    assert_ptr_equal(rc.buckets, c.buckets);
    assert_int_equal(rc.n_buckets, 14);
    assert_int_equal(rc.max_value_bytes, 1048576);
    assert_int_equal(rc.dep_buffer_max, 100000);
    assert_int_equal(rc.outbox_max, 1000000);
    assert_int_equal(rc.batch_records_max, 256);
    assert_int_equal(rc.window_records, 4096);
    assert_int_equal(rc.waiting_max, 10000);
    assert_int_equal(rc.heartbeat_us, 200000);
    assert_int_equal(rc.nack_retry_us, 1000000);
    assert_int_equal(rc.wait_us, 5000000);
    assert_false(rc.force_eventual);

    /* The replica accepts it and knows the buckets. */
    struct cw_replica *rep = cw_replica_create(&rc);
    assert_non_null(rep);
    const struct cw_bucket_policy *likes = cw_replica_bucket(rep, "likes");
    assert_non_null(likes);
    assert_int_equal(likes->conflict, CW_CONFLICT_SIBLINGS);
    cw_replica_destroy(&rep);
    assert_null(rep);
    cw_config_free(&c);
}

/* ---- files written here ---------------------------------------------------------- */

/* Loads text as dir/c.ini; returns the result, err filled. */
static int load_text(const struct tmp *t, const char *text, struct cw_config *c, char *err,
                     size_t err_len, char *path, size_t path_len)
{
    snprintf(path, path_len, "%s/c.ini", t->dir);
    write_file(path, text);
    return cw_config_load(path, c, err, err_len);
}

static void test_good_variants(void **state)
{
    struct tmp *t = *state;
    struct cw_config c;
    char err[512], path[128];
    /* [latency] before the regions, a directed pair overriding nothing, an
     * indented key, CRLF line endings, ipc endpoints, no [cluster] at all, and a
     * data_dir override. */
    const char *text = "[latency]\r\n"
                       "a -> b = 45\r\n"
                       "b->a = 35\r\n"
                       "a c = 7\r\n"
                       "[region a]\r\n"
                       "    client = ipc:///tmp/cw-a-client\r\n"
                       "peer = tcp://[::1]:9001\r\n"
                       "admin = tcp://10.1.2.3:9002 ; trailing comment\r\n"
                       "# a comment\r\n"
                       "[region b]\r\n"
                       "client = tcp://127.0.0.1:9011\r\n"
                       "peer = tcp://127.0.0.1:9012\r\n"
                       "admin = tcp://127.0.0.1:9013\r\n"
                       "data_dir = /var/lib/cw b\r\n"
                       "[region c]\r\n"
                       "client = tcp://127.0.0.1:9021\r\n"
                       "peer = tcp://127.0.0.1:9022\r\n"
                       "admin = tcp://127.0.0.1:9023\r\n"
                       "[bucket s]\r\n"
                       "consistency = strong\r\n";
    int rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    if (rc != CW_OK)
        fail_msg("%s", err);
    assert_int_equal(c.latency_ms[0][1], 45);
    assert_int_equal(c.latency_ms[1][0], 35);
    assert_int_equal(c.latency_ms[0][2], 7);
    assert_int_equal(c.latency_ms[2][0], 7);
    assert_int_equal(c.latency_ms[1][2], 0);
    assert_string_equal(c.regions[0].client, "ipc:///tmp/cw-a-client");
    assert_string_equal(c.regions[0].peer, "tcp://[::1]:9001");
    assert_string_equal(c.regions[0].admin, "tcp://10.1.2.3:9002");
    /* No [cluster]: defaults, with the data directory named after the file. */
    assert_string_equal(c.data_dir, "run/c");
    assert_string_equal(c.regions[0].data_dir, "run/c/a");
    assert_string_equal(c.regions[1].data_dir, "/var/lib/cw b");
    assert_string_equal(c.durability, "write_nosync");
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.max_value_bytes, 1u << 20);
    assert_int_equal(c.jitter_ms, 0);
    assert_int_equal(c.buckets[0].consistency, CW_STRONG);
    assert_int_equal(c.buckets[0].conflict, CW_CONFLICT_LWW);
    assert_int_equal(c.buckets[0].max_siblings, 64);
    assert_string_equal(c.path, path);
    cw_config_free(&c);
}

/* Every [cluster] key, each at a value other than its default (the edges of the
 * ranges where that is possible), lands in its own field. */
static void test_cluster_keys(void **state)
{
    struct tmp *t = *state;
    struct cw_config c;
    char err[512], path[128];
    const char *text = "[cluster]\n"
                       "durability = sync\n"
                       "data_dir = /srv/cw\n"
                       "max_value_bytes = 4194304\n"
                       "heartbeat_ms = 10\n"
                       "wait_ms = 1\n"
                       "resend_ms = 600000\n"
                       "jitter_ms = 10000\n"
                       "dep_buffer_max = 10000000\n"
                       "outbox_max = 100000000\n"
                       "batch_records_max = 4096\n"
                       "window_records = 1\n"
                       "waiting_max = 1000000\n"
                       "outbox_bytes_max = 1T\n"
                       "dep_buffer_bytes_max = 4194304\n"
                       "inflight_bytes_max = 64K\n"
                       "key_cache_bytes_max = 64G\n"
                       "outbox_cache_bytes_max = 3M\n"
                       "store_cache_bytes = 1M\n"
                       "log_level = debug\n"
                       "[region a]\n"
                       "client = tcp://10.0.0.1:1\n"
                       "peer = tcp://10.0.0.1:2\n"
                       "admin = tcp://10.0.0.1:3\n"
                       "[bucket b]\n"
                       "conflict = siblings\n"
                       "max_siblings = 1024\n"
                       "consistency = eventual\n";
    int rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    if (rc != CW_OK)
        fail_msg("%s", err);
    assert_string_equal(c.durability, "sync");
    assert_string_equal(c.data_dir, "/srv/cw");
    assert_string_equal(c.regions[0].data_dir, "/srv/cw/a");
    assert_int_equal(c.max_value_bytes, 4194304);
    assert_int_equal(c.heartbeat_ms, 10);
    assert_int_equal(c.wait_ms, 1);
    assert_int_equal(c.resend_ms, 600000);
    assert_int_equal(c.jitter_ms, 10000);
    assert_int_equal(c.dep_buffer_max, 10000000);
    assert_int_equal(c.outbox_max, 100000000);
    assert_int_equal(c.batch_records_max, 4096);
    assert_int_equal(c.window_records, 1);
    assert_int_equal(c.waiting_max, 1000000);
    assert_true(c.outbox_bytes_max == 1ull << 40);
    assert_true(c.dep_buffer_bytes_max == 4194304);
    assert_true(c.inflight_bytes_max == 65536);
    assert_true(c.key_cache_bytes_max == 64ull << 30);
    assert_true(c.outbox_cache_bytes_max == 3ull << 20);
    assert_true(c.store_cache_bytes == 1ull << 20);
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.buckets[0].consistency, CW_EVENTUAL);
    assert_int_equal(c.buckets[0].conflict, CW_CONFLICT_SIBLINGS);
    assert_int_equal(c.buckets[0].max_siblings, 1024);
    /* The bounds that make the protocol refuse larger ones are what the config
     * allows at most. */
    assert_true(c.batch_records_max <= CW_FRAME_RECORDS_MAX);
    assert_true(c.max_value_bytes < CW_FRAME_BYTES_MAX);
    assert_int_equal(c.n_warnings, 0);

    struct cw_replica_config rc_out;
    cw_config_replica(&c, 0, &rc_out);
    assert_int_equal(rc_out.heartbeat_us, 10000);
    assert_int_equal(rc_out.wait_us, 1000);
    assert_int_equal(rc_out.waiting_max, 1000000);
    assert_int_equal(rc_out.nack_retry_us, 600000000ull);
    assert_int_equal(rc_out.window_records, 1);
    assert_int_equal(rc_out.n_regions, 1);
    assert_true(rc_out.outbox_bytes_max == 1ull << 40);
    assert_true(rc_out.dep_buffer_bytes_max == 4194304);
    assert_true(rc_out.inflight_bytes_max == 65536);
    assert_true(rc_out.key_cache_bytes_max == 64ull << 30);
    assert_true(rc_out.outbox_cache_bytes_max == 3ull << 20);
    cw_config_free(&c);
}

/* The renamed keys' old names still load: the value lands in the new field, and
 * each leaves one warning line naming the file, the line, the old and the new
 * key. */
static void test_deprecated_keys(void **state)
{
    struct tmp *t = *state;
    struct cw_config c;
    char err[512], path[128], prefix[160];
    const char *text = "[cluster]\n"
                       "read_wait_ms = 1234\n"
                       "heartbeat_ms = 100\n"
                       "pending_reads_max = 77\n"
                       "[region a]\n"
                       "client = tcp://10.0.0.1:1\n"
                       "peer = tcp://10.0.0.1:2\n"
                       "admin = tcp://10.0.0.1:3\n"
                       "[bucket b]\n";
    int rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    if (rc != CW_OK)
        fail_msg("%s", err);
    assert_int_equal(c.wait_ms, 1234);
    assert_int_equal(c.waiting_max, 77);
    assert_int_equal(c.heartbeat_ms, 100);
    assert_int_equal(c.n_warnings, 2);
    static const struct {
        unsigned line;
        const char *old_key, *new_key;
    } want[2] = {{2, "'read_wait_ms'", "'wait_ms'"}, {4, "'pending_reads_max'", "'waiting_max'"}};
    for (unsigned i = 0; i < 2; i++) {
        const char *w = c.warnings[i];
        snprintf(prefix, sizeof(prefix), "%s:%u: ", path, want[i].line);
        if (strncmp(w, prefix, strlen(prefix)) != 0)
            fail_msg("warning '%s' does not start with '%s'", w, prefix);
        if (strstr(w, want[i].old_key) == NULL || strstr(w, want[i].new_key) == NULL ||
            strstr(w, "deprecated") == NULL)
            fail_msg("warning '%s' does not name %s as deprecated for %s", w, want[i].old_key,
                     want[i].new_key);
        assert_null(strchr(w, '\n'));
    }
    struct cw_replica_config rc_out;
    cw_config_replica(&c, 0, &rc_out);
    assert_int_equal(rc_out.wait_us, 1234000);
    assert_int_equal(rc_out.waiting_max, 77);
    cw_config_free(&c);
    assert_int_equal(c.n_warnings, 0);

    /* One old name and one new name, for different keys, is fine. */
    text = "[cluster]\nwait_ms = 9\npending_reads_max = 8\n"
           "[region a]\nclient = tcp://10.0.0.1:1\npeer = tcp://10.0.0.1:2\nadmin = "
           "tcp://10.0.0.1:3\n[bucket b]\n";
    rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    if (rc != CW_OK)
        fail_msg("%s", err);
    assert_int_equal(c.wait_ms, 9);
    assert_int_equal(c.waiting_max, 8);
    assert_int_equal(c.n_warnings, 1);
    assert_non_null(strstr(c.warnings[0], "'pending_reads_max'"));
    cw_config_free(&c);
}

/* A key left out means what the replica would choose: the loader's defaults are
 * the ones cw_replica_config_defaults fills in (both take them from
 * core/limits.h), so they cannot drift apart again. */
static void test_defaults_match_replica(void **state)
{
    struct tmp *t = *state;
    struct cw_config c;
    char err[512], path[128];
    const char *text =
        "[region a]\nclient = tcp://10.0.0.1:1\npeer = tcp://10.0.0.1:2\nadmin = tcp://10.0.0.1:3\n"
        "[region b]\nclient = tcp://10.0.0.1:4\npeer = tcp://10.0.0.1:5\nadmin = tcp://10.0.0.1:6\n"
        "[bucket b]\nconflict = siblings\n";
    int rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    if (rc != CW_OK)
        fail_msg("%s", err);
    struct cw_replica_config from_file, want;
    cw_config_replica(&c, 1, &from_file);
    memset(&want, 0, sizeof(want));
    want.region = from_file.region;
    want.n_regions = from_file.n_regions;
    want.buckets = from_file.buckets;
    want.n_buckets = from_file.n_buckets;
    cw_replica_config_defaults(&want);
    assert_int_equal(from_file.max_value_bytes, want.max_value_bytes);
    assert_int_equal(from_file.dep_buffer_max, want.dep_buffer_max);
    assert_int_equal(from_file.outbox_max, want.outbox_max);
    assert_int_equal(from_file.batch_records_max, want.batch_records_max);
    assert_int_equal(from_file.window_records, want.window_records);
    assert_int_equal(from_file.waiting_max, want.waiting_max);
    assert_int_equal(from_file.heartbeat_us, want.heartbeat_us);
    assert_int_equal(from_file.nack_retry_us, want.nack_retry_us);
    assert_int_equal(from_file.wait_us, want.wait_us);
    assert_true(from_file.outbox_bytes_max == want.outbox_bytes_max);
    assert_true(from_file.dep_buffer_bytes_max == want.dep_buffer_bytes_max);
    assert_true(from_file.inflight_bytes_max == want.inflight_bytes_max);
    assert_true(from_file.key_cache_bytes_max == want.key_cache_bytes_max);
    assert_true(from_file.outbox_cache_bytes_max == want.outbox_cache_bytes_max);
    /* The store's cache is not the replica's: its default is the store's. */
    assert_true(c.store_cache_bytes == CW_DEFAULT_STORE_CACHE_BYTES);
    /* Whatever the file cannot set, the replica fills in; then nothing differs. */
    cw_replica_config_defaults(&from_file);
    assert_memory_equal(&from_file, &want, sizeof(want));
    assert_int_equal(c.buckets[0].max_siblings, CW_DEFAULT_MAX_SIBLINGS);
    cw_config_free(&c);
}

/* A line far longer than inih's default 200-byte buffer reaches the value whole,
 * and inih's own settings are as they were afterwards. */
static void test_long_line(void **state)
{
    struct tmp *t = *state;
    struct cw_config c;
    char err[512], path[128];
    int saved_max_line = ini_max_line;
    bool saved_use_stack = ini_use_stack;
    char dir[1200];
    memset(dir, 'd', sizeof(dir) - 1);
    dir[0] = '/';
    dir[sizeof(dir) - 1] = '\0';
    char *text = malloc(4096);
    assert_non_null(text);
    snprintf(text, 4096,
             "[cluster]\ndata_dir = %s\n[region a]\nclient = tcp://127.0.0.1:1\n"
             "peer = tcp://127.0.0.1:2\nadmin = tcp://127.0.0.1:3\n[bucket b]\n",
             dir);
    int rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    if (rc != CW_OK)
        fail_msg("%s", err);
    assert_string_equal(c.data_dir, dir);
    assert_int_equal(strlen(c.regions[0].data_dir), strlen(dir) + 2);
    assert_int_equal(ini_max_line, saved_max_line);
    assert_int_equal(ini_use_stack, saved_use_stack);
    cw_config_free(&c);
    free(text);
}

struct bad_case {
    const char *what;
    const char *text;
    unsigned line;       /* the line the error must name */
    const char *want[3]; /* fragments the message must contain */
};

/* A valid cluster with two regions and a bucket, used as a prefix: 11 lines. */
#define GOOD_PREFIX                                                                                \
    "[cluster]\n"                                                                                  \
    "heartbeat_ms = 100\n"                                                                         \
    "[region a]\n"                                                                                 \
    "client = tcp://127.0.0.1:9001\n"                                                              \
    "peer = tcp://127.0.0.1:9002\n"                                                                \
    "admin = tcp://127.0.0.1:9003\n"                                                               \
    "[region b]\n"                                                                                 \
    "client = tcp://127.0.0.1:9011\n"                                                              \
    "peer = tcp://127.0.0.1:9012\n"                                                                \
    "admin = tcp://127.0.0.1:9013\n"                                                               \
    "[bucket kv]\n"

static const struct bad_case bad_cases[] = {
    {"unknown key",
     "[cluster]\n; comment\nlatncy = 4\n",
     3,
     {"unknown key 'latncy' in [cluster]", "expected one of: durability, data_dir", NULL}},
    {"unknown key in a region",
     GOOD_PREFIX "[region c]\nclient = tcp://10.0.0.1:1\nport = 7\n",
     14,
     {"unknown key 'port' in [region c]", "client, peer, admin, data_dir", NULL}},
    {"unknown key in a bucket",
     GOOD_PREFIX "consistancy = causal\n",
     12,
     {"unknown key 'consistancy' in [bucket kv]", "consistency, conflict, max_siblings", NULL}},
    {"unknown section", GOOD_PREFIX "\n[regoin c]\n", 13, {"unknown section [regoin c]", NULL}},
    {"section without name", GOOD_PREFIX "[bucket]\n", 12, {"[bucket]", "[bucket NAME]", NULL}},
    {"unterminated header", "[cluster\n", 1, {"no closing ']'", NULL}},
    {"key outside sections", "heartbeat_ms = 3\n", 1, {"'heartbeat_ms'", "outside any section"}},
    {"line without '='", GOOD_PREFIX "conflict lww\n", 12, {"no '='", NULL}},
    {"bad number",
     "[cluster]\nheartbeat_ms = 2x0\n",
     2,
     {"bad number '2x0' for heartbeat_ms", "from 10 to 60000", NULL}},
    {"negative number", "[cluster]\njitter_ms = -1\n", 2, {"bad number '-1' for jitter_ms", NULL}},
    {"huge number",
     "[cluster]\noutbox_max = 99999999999999999999999\n",
     2,
     {"outbox_max", "out of range", NULL}},
    {"out of range",
     "[cluster]\n\nheartbeat_ms = 5\n",
     3,
     {"heartbeat_ms = 5 in [cluster] is out of range", "from 10 to 60000", NULL}},
    {"batch larger than a wire frame allows",
     "[cluster]\nbatch_records_max = 4097\n",
     2,
     {"batch_records_max = 4097", "from 1 to 4096", NULL}},
    {"value larger than a wire frame allows",
     "[cluster]\nmax_value_bytes = 4194305\n",
     2,
     {"max_value_bytes = 4194305", "from 1 to 4194304", NULL}},
    {"size with a unit the loader does not know",
     "[cluster]\noutbox_bytes_max = 256MB\n",
     2,
     {"bad size '256MB' for outbox_bytes_max", "K, M, G or T", "from 64K to 1T"}},
    {"fractional size",
     "[cluster]\nkey_cache_bytes_max = 1.5G\n",
     2,
     {"bad size '1.5G' for key_cache_bytes_max", NULL}},
    {"negative size", "[cluster]\nstore_cache_bytes = -1\n", 2, {"bad size '-1'", NULL}},
    {"lower-case unit", "[cluster]\ninflight_bytes_max = 64k\n", 2, {"bad size '64k'", NULL}},
    {"unit alone", "[cluster]\ninflight_bytes_max = M\n", 2, {"bad size 'M'", NULL}},
    {"size below the minimum",
     "[cluster]\ndep_buffer_bytes_max = 63K\n",
     2,
     {"dep_buffer_bytes_max = 63K in [cluster] is out of range", "from 64K to 64G",
      "65536 to 68719476736 bytes"}},
    {"size above the maximum",
     "[cluster]\noutbox_cache_bytes_max = 65G\n",
     2,
     {"outbox_cache_bytes_max = 65G", "out of range", "from 64K to 64G"}},
    {"size overflowing 64 bits by its unit",
     "[cluster]\noutbox_bytes_max = 17179869184T\n",
     2,
     {"outbox_bytes_max", "out of range", NULL}},
    {"size overflowing 64 bits by its digits",
     "[cluster]\noutbox_bytes_max = 99999999999999999999999\n",
     2,
     {"outbox_bytes_max", "out of range", NULL}},
    {"store cache below a megabyte",
     "[cluster]\nstore_cache_bytes = 512K\n",
     2,
     {"store_cache_bytes = 512K", "from 1M to 64G", NULL}},
    {"outbox smaller than the largest value",
     "[cluster]\noutbox_bytes_max = 512K\nheartbeat_ms = 100\n",
     2,
     {"outbox_bytes_max (524288 bytes) in [cluster] is less than max_value_bytes (1048576)",
      "CW_EFULL", "a smaller max_value_bytes"}},
    {"dependency buffer smaller than the largest value, set later",
     "[cluster]\ndep_buffer_bytes_max = 1M\nmax_value_bytes = 2097152\n",
     2,
     {"dep_buffer_bytes_max (1048576 bytes) in [cluster] is less than max_value_bytes (2097152)",
      NULL}},
    {"out of range max_siblings",
     GOOD_PREFIX "conflict = siblings\nmax_siblings = 0\n",
     13,
     {"max_siblings = 0 in [bucket kv]", "from 1 to 1024", NULL}},
    {"bad enum",
     "[cluster]\ndurability = fast\n",
     2,
     {"bad value 'fast' for durability", "sync, write_nosync or nosync", NULL}},
    {"bad consistency",
     GOOD_PREFIX "consistency = Causal\n",
     12,
     {"'Causal' for consistency", "causal, eventual or strong", NULL}},
    {"quoted value", "[cluster]\nlog_level = \"info\"\n", 2, {"'log_level' is quoted", NULL}},
    {"duplicate key",
     "[cluster]\nheartbeat_ms = 100\nresend_ms = 100\nheartbeat_ms = 100\n",
     4,
     {"duplicate key 'heartbeat_ms' in [cluster]", "first set at line 2", NULL}},
    {"new and deprecated name both set",
     "[cluster]\nwait_ms = 10\nread_wait_ms = 10\n",
     3,
     {"both 'wait_ms' and its deprecated name 'read_wait_ms'", "wait_ms at line 2",
      "expected only 'wait_ms'"}},
    {"deprecated and new name both set",
     "[cluster]\npending_reads_max = 5\n\nwaiting_max = 5\n",
     4,
     {"both 'waiting_max' and its deprecated name 'pending_reads_max'",
      "pending_reads_max at line 2", NULL}},
    {"deprecated key twice",
     "[cluster]\nread_wait_ms = 1\nread_wait_ms = 2\n",
     3,
     {"duplicate key 'read_wait_ms' in [cluster]", "first set at line 2", NULL}},
    {"duplicate cluster",
     GOOD_PREFIX "[cluster]\n",
     12,
     {"duplicate section [cluster]", "first at line 1", NULL}},
    {"duplicate region",
     GOOD_PREFIX "[region a]\n",
     12,
     {"duplicate section [region a]", "first at line 3", NULL}},
    {"duplicate bucket",
     GOOD_PREFIX "[bucket kv]\n",
     12,
     {"duplicate section [bucket kv]", "first at line 11", NULL}},
    {"latency names an unknown region",
     GOOD_PREFIX "[latency]\na b = 10\na zz = 20\n",
     14,
     {"unknown region 'zz'", "expected one of: a, b", NULL}},
    {"latency to itself", GOOD_PREFIX "[latency]\na a = 10\n", 13, {"'a a'", "twice", NULL}},
    {"latency pair syntax",
     GOOD_PREFIX "[latency]\na b c = 10\n",
     13,
     {"bad latency pair 'a b c'", "REGION -> REGION", NULL}},
    {"duplicate latency",
     GOOD_PREFIX "[latency]\na -> b = 10\nb a = 20\n",
     14,
     {"duplicate latency for a -> b", "first set at line 13", NULL}},
    {"latency out of range",
     GOOD_PREFIX "[latency]\na b = 60001\n",
     13,
     {"out of range", "from 0 to 60000", NULL}},
    {"missing required endpoint",
     GOOD_PREFIX "[region c]\nclient = tcp://127.0.0.1:9021\nadmin = tcp://127.0.0.1:9023\n",
     12,
     {"[region c] has no 'peer' key", "client, peer and admin", NULL}},
    {"missing endpoint in the last section",
     "[bucket kv]\n[region a]\nclient = tcp://127.0.0.1:1\npeer = tcp://127.0.0.1:2\n",
     2,
     {"[region a] has no 'admin' key", NULL}},
    {"bad endpoint port",
     GOOD_PREFIX "[region c]\nclient = tcp://127.0.0.1:70000\n",
     13,
     {"bad endpoint 'tcp://127.0.0.1:70000' for client in [region c]", "1 to 65535", NULL}},
    {"bad endpoint transport",
     GOOD_PREFIX "[region c]\npeer = udp://x:1\n",
     13,
     {"bad endpoint 'udp://x:1' for peer", "tcp://IP:PORT", "or ipc://PATH"}},
    /* The node binds its endpoints, and ZeroMQ binds TCP only to an address. */
    {"host name in an endpoint",
     GOOD_PREFIX "[region c]\nclient = tcp://127.0.0.1:9021\npeer = tcp://localhost:9022\n",
     14,
     {"bad endpoint 'tcp://localhost:9022' for peer in [region c]",
      "'localhost' is not an IP address", "binds"}},
    {"interface name in an endpoint",
     GOOD_PREFIX "[region c]\nadmin = tcp://eth0:9023\n",
     13,
     {"'eth0' is not an IP address", NULL}},
    {"abbreviated IPv4 address",
     GOOD_PREFIX "[region c]\nadmin = tcp://127.1:9023\n",
     13,
     {"'127.1' is not an IP address", NULL}},
    {"wildcard endpoint",
     GOOD_PREFIX "[region c]\nclient = tcp://*:9021\n",
     13,
     {"'*' (every interface) can be bound but not connected to", "IP address", NULL}},
    {"unspecified IPv4 address",
     GOOD_PREFIX "[region c]\nclient = tcp://0.0.0.0:9021\n",
     13,
     {"'0.0.0.0' (every interface)", NULL}},
    {"unspecified IPv6 address",
     GOOD_PREFIX "[region c]\nclient = tcp://[::]:9021\n",
     13,
     {"'::' (every interface)", NULL}},
    {"malformed IPv6 address",
     GOOD_PREFIX "[region c]\nclient = tcp://[fe80::zz]:9021\n",
     13,
     {"'fe80::zz' is not an IPv6 address", NULL}},
    {"endpoint reused across regions",
     GOOD_PREFIX "[region c]\nadmin = tcp://127.0.0.1:9012\n",
     13,
     {"'tcp://127.0.0.1:9012' for admin in [region c]", "peer endpoint of region b (line 9)",
      NULL}},
    {"endpoint reused across roles",
     "[region a]\nclient = ipc://x\npeer = ipc://x\n",
     3,
     {"already the client endpoint of region a (line 2)", NULL}},
    {"bad bucket name",
     GOOD_PREFIX "[bucket Posts]\n",
     12,
     {"bad bucket name 'Posts'", "a-z, 0-9", NULL}},
    {"bad region name", "[region us_East]\n", 1, {"bad region name 'us_East'", NULL}},
    {"max_siblings with lww",
     GOOD_PREFIX "max_siblings = 8\nconflict = lww\n",
     12,
     {"max_siblings is set in [bucket kv]", "conflict = siblings", NULL}},
    {"no bucket",
     "[region a]\nclient = tcp://10.0.0.1:1\npeer = tcp://10.0.0.1:2\nadmin = tcp://10.0.0.1:3\n",
     4,
     {"no [bucket NAME] section", NULL}},
    {"no region", "[bucket kv]\n\n", 2, {"no [region NAME] section", NULL}},
    {"data directory shared",
     GOOD_PREFIX
     "[region c]\nclient = tcp://10.0.0.1:1\npeer = tcp://10.0.0.1:2\nadmin = tcp://10.0.0.1:3\n"
     "data_dir = run/c/a\n",
     16,
     {"regions a and c both use the data directory 'run/c/a'", NULL}},
};

static void test_bad_configs(void **state)
{
    struct tmp *t = *state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *b = &bad_cases[i];
        struct cw_config c;
        char err[512], path[128], prefix[160];
        int rc = load_text(t, b->text, &c, err, sizeof(err), path, sizeof(path));
        if (rc != CW_ECONFIG)
            fail_msg("%s: got %d (%s), want CW_ECONFIG", b->what, rc, err);
        snprintf(prefix, sizeof(prefix), "%s:%u: ", path, b->line);
        if (strncmp(err, prefix, strlen(prefix)) != 0)
            fail_msg("%s: '%s' does not start with '%s'", b->what, err, prefix);
        for (size_t k = 0; k < 3 && b->want[k]; k++)
            if (strstr(err, b->want[k]) == NULL)
                fail_msg("%s: '%s' lacks '%s'", b->what, err, b->want[k]);
        if (strstr(err, "; expected") == NULL)
            fail_msg("%s: '%s' does not say what is expected", b->what, err);
        /* A failed load owns nothing. */
        assert_null(c.buckets);
        assert_int_equal(c.n_regions, 0);
        cw_config_free(&c);
    }
}

static void test_too_many_regions(void **state)
{
    struct tmp *t = *state;
    size_t cap = 8192, used = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (unsigned i = 0; i < CW_REGIONS_MAX + 1; i++) {
        int n =
            snprintf(text + used, cap - used,
                     "[region r%u]\nclient = tcp://10.0.0.1:%u\npeer = tcp://10.0.0.1:%u\nadmin = "
                     "tcp://10.0.0.1:%u\n",
                     i, 10000 + i * 3, 10001 + i * 3, 10002 + i * 3);
        assert_true(n > 0 && (size_t)n < cap - used);
        used += (size_t)n;
    }
    struct cw_config c;
    char err[512], path[128], prefix[160];
    int rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    assert_int_equal(rc, CW_ECONFIG);
    /* Region 17 starts on line 16 * 4 + 1. */
    snprintf(prefix, sizeof(prefix), "%s:65: ", path);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("'%s' does not start with '%s'", err, prefix);
    assert_non_null(strstr(err, "too many regions: [region r16] would be region 17"));
    assert_non_null(strstr(err, "at most 16"));

    /* Sixteen load. */
    char *cut = strstr(text, "[region r16]");
    assert_non_null(cut);
    snprintf(cut, cap - (size_t)(cut - text), "[bucket b]\n");
    rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    if (rc != CW_OK)
        fail_msg("%s", err);
    assert_int_equal(c.n_regions, CW_REGIONS_MAX);
    assert_int_equal(c.regions[15].id, 15);
    assert_ptr_equal(cw_config_region(&c, "r15"), &c.regions[15]);
    cw_config_free(&c);
    free(text);
}

static void test_too_many_buckets(void **state)
{
    struct tmp *t = *state;
    size_t cap = 16384, used = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    used = (size_t)snprintf(text, cap,
                            "[region a]\nclient = tcp://10.0.0.1:1\npeer = tcp://10.0.0.1:2\nadmin "
                            "= tcp://10.0.0.1:3\n");
    for (unsigned i = 0; i < CW_CONFIG_BUCKETS_MAX + 1; i++) {
        int n = snprintf(text + used, cap - used, "[bucket b%u]\n", i);
        assert_true(n > 0 && (size_t)n < cap - used);
        used += (size_t)n;
    }
    struct cw_config c;
    char err[512], path[128], prefix[160];
    int rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    assert_int_equal(rc, CW_ECONFIG);
    snprintf(prefix, sizeof(prefix), "%s:%u: ", path, 4 + CW_CONFIG_BUCKETS_MAX + 1);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("'%s' does not start with '%s'", err, prefix);
    assert_non_null(strstr(err, "too many buckets"));
    assert_null(c.buckets);
    free(text);
}

static void test_line_too_long(void **state)
{
    struct tmp *t = *state;
    size_t len = 9000;
    char *text = malloc(len + 64);
    assert_non_null(text);
    strcpy(text, "[cluster]\ndata_dir = ");
    size_t used = strlen(text);
    memset(text + used, 'x', len);
    strcpy(text + used + len, "\n");
    struct cw_config c;
    char err[512], path[128], prefix[160];
    int rc = load_text(t, text, &c, err, sizeof(err), path, sizeof(path));
    assert_int_equal(rc, CW_ECONFIG);
    snprintf(prefix, sizeof(prefix), "%s:2: ", path);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("'%s' does not start with '%s'", err, prefix);
    assert_non_null(strstr(err, "at most 8192"));
    free(text);
}

static void test_missing_file(void **state)
{
    struct tmp *t = *state;
    struct cw_config c;
    char err[512], path[128];
    snprintf(path, sizeof(path), "%s/x.ini", t->dir);
    int rc = cw_config_load(path, &c, err, sizeof(err));
    assert_int_equal(rc, CW_EIO);
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    assert_non_null(strstr(err, "cannot open"));
    /* A short error buffer is truncated, still terminated. */
    char tiny[8];
    rc = cw_config_load(path, &c, tiny, sizeof(tiny));
    assert_int_equal(rc, CW_EIO);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_int_equal(cw_config_load(path, &c, NULL, 0), CW_EIO);
}

/* The demo config copied elsewhere still loads, and its error lines count from the
 * copy: the line number is the file's, not some internal position. */
static void test_error_line_in_real_config(void **state)
{
    struct tmp *t = *state;
    char src[4096], dst[128], err[512];
    repo_path(src, sizeof(src), "geo-configs/three-regions.ini");
    FILE *f = fopen(src, "r");
    assert_non_null(f);
    char *text = calloc(1, 65536);
    assert_non_null(text);
    size_t n = fread(text, 1, 65535, f);
    fclose(f);
    assert_true(n > 0);
    /* Misspell the key of the first latency line. */
    char *at = strstr(text, "us-east eu-west = 40");
    assert_non_null(at);
    memcpy(at, "us-east eu-wset", 15);
    unsigned line = 1;
    for (char *p = text; p < at; p++)
        line += *p == '\n';
    snprintf(dst, sizeof(dst), "%s/three.ini", t->dir);
    write_file(dst, text);
    struct cw_config c;
    assert_int_equal(cw_config_load(dst, &c, err, sizeof(err)), CW_ECONFIG);
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s:%u: latency names unknown region 'eu-wset'", dst, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("'%s' does not start with '%s'", err, prefix);
    free(text);
}

/* ---- docs/configuration.md matches the code ---------------------------------------- */

/* Splits a markdown table row "| a | b | c |" into at most max trimmed cells. */
static size_t table_cells(char *row, char **cells, size_t max)
{
    size_t n = 0;
    char *p = strchr(row, '|');
    while (p != NULL && n < max) {
        char *start = p + 1;
        char *end = strchr(start, '|');
        if (end == NULL)
            break;
        *end = '\0';
        while (*start == ' ')
            start++;
        char *e = start + strlen(start);
        while (e > start && e[-1] == ' ')
            *--e = '\0';
        cells[n++] = start;
        p = end;
    }
    return n;
}

/* Copies the first `...` span of cell into out; false if there is none. */
static bool first_code(const char *cell, char *out, size_t len)
{
    const char *a = strchr(cell, '`');
    if (a == NULL)
        return false;
    const char *b = strchr(a + 1, '`');
    if (b == NULL || (size_t)(b - a - 1) >= len)
        return false;
    memcpy(out, a + 1, (size_t)(b - a - 1));
    out[b - a - 1] = '\0';
    return true;
}

/* A file with one region and one bucket, plus `key = value` in [cluster] or
 * [bucket b] (value NULL: the key is left out). */
static int load_with(const struct tmp *t, bool in_bucket, const char *key, const char *value,
                     struct cw_config *c, char *err, size_t err_len)
{
    char text[1024], path[128], line[256] = "";
    if (value != NULL)
        snprintf(line, sizeof(line), "%s = %s\n", key, value);
    /* max_siblings needs a siblings bucket; a test of conflict itself sets it. */
    const char *conflict =
        in_bucket && strcmp(key, "max_siblings") == 0 ? "conflict = siblings\n" : "";
    /* The outbox and the dependency buffer must hold the largest value: their
     * documented minimum holds a small one. */
    const char *small_values =
        strcmp(key, "outbox_bytes_max") == 0 || strcmp(key, "dep_buffer_bytes_max") == 0
            ? "max_value_bytes = 1024\n"
        /* Raft's heartbeat must fit three times in election_min_ms. */
        : strcmp(key, "raft_heartbeat_ms") == 0 ? "election_min_ms = 600000\n"
                                                : "";
    snprintf(text, sizeof(text),
             "[cluster]\n%s%s[region a]\nclient = tcp://10.0.0.1:1\npeer = tcp://10.0.0.1:2\n"
             "admin = tcp://10.0.0.1:3\n[bucket b]\n%s%s",
             small_values, in_bucket ? "" : line, conflict, in_bucket ? line : "");
    return load_text(t, text, c, err, err_len, path, sizeof(path));
}

/* Whether two loads produced the same configuration. */
static bool config_equal(const struct cw_config *a, const struct cw_config *b)
{
    if (a->n_buckets != b->n_buckets ||
        memcmp(a->buckets, b->buckets, a->n_buckets * sizeof(*a->buckets)) != 0)
        return false;
    struct cw_config x = *a, y = *b;
    x.buckets = y.buckets = NULL;
    return memcmp(&x, &y, sizeof(x)) == 0;
}

/* A documented size, "64K" or "1048576": its value in bytes; false if malformed. */
static bool doc_size(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return false;
    const char *units = "KMGT";
    const char *u = *end ? strchr(units, *end) : NULL;
    if (u != NULL) {
        v <<= 10 * (unsigned)(u - units + 1);
        end++;
    }
    *out = v;
    return *end == '\0' || *end == ' ';
}

/* Checks a documented size key's range "MIN to MAX" (sizes as doc_size reads
 * them): both ends load, in bytes and with their unit; one byte beyond does not. */
static void check_documented_size(const struct tmp *t, const char *key, const char *range)
{
    char lo[32], hi[32], v[64], err[512];
    unsigned long long min = 0, max = 0;
    struct cw_config c;
    if (sscanf(range, "%31s to %31s", lo, hi) != 2 || !doc_size(lo, &min) || !doc_size(hi, &max))
        fail_msg("%s: range '%s' is not 'MIN to MAX'", key, range);
    const char *as_written[2] = {lo, hi};
    const unsigned long long ok[2] = {min, max};
    for (size_t i = 0; i < 2; i++) {
        snprintf(v, sizeof(v), "%llu", ok[i]);
        const char *forms[2] = {v, as_written[i]};
        for (size_t f = 0; f < 2; f++) {
            if (load_with(t, false, key, forms[f], &c, err, sizeof(err)) != CW_OK)
                fail_msg("%s = %s (documented bound): %s", key, forms[f], err);
            cw_config_free(&c);
        }
    }
    snprintf(v, sizeof(v), "%llu", max + 1);
    if (load_with(t, false, key, v, &c, err, sizeof(err)) != CW_ECONFIG)
        fail_msg("%s = %s (past the documented maximum) was accepted", key, v);
    snprintf(v, sizeof(v), "%llu", min - 1);
    if (load_with(t, false, key, v, &c, err, sizeof(err)) != CW_ECONFIG)
        fail_msg("%s = %s (below the documented minimum) was accepted", key, v);
}

/* Checks one documented key: its default, and for integers, sizes and enums its
 * range. */
static void check_documented_key(const struct tmp *t, bool in_bucket, char **cells)
{
    char key[64], def[64], err[512];
    assert_true(first_code(cells[0], key, sizeof(key)));
    const char *type = cells[1], *range = cells[3];
    struct cw_config base, c;
    int rc = load_with(t, in_bucket, key, NULL, &base, err, sizeof(err));
    if (rc != CW_OK)
        fail_msg("%s: %s", key, err);
    if (strcmp(type, "size") == 0)
        check_documented_size(t, key, range);
    if (strcmp(type, "integer") == 0 || strcmp(type, "enum") == 0 || strcmp(type, "size") == 0) {
        /* The documented default is what leaving the key out gives. */
        assert_true(first_code(cells[2], def, sizeof(def)));
        rc = load_with(t, in_bucket, key, def, &c, err, sizeof(err));
        if (rc != CW_OK)
            fail_msg("%s = %s (documented default): %s", key, def, err);
        if (!config_equal(&base, &c))
            fail_msg("%s: the documented default %s is not the default", key, def);
        cw_config_free(&c);
    }
    if (strcmp(type, "integer") == 0) {
        unsigned long min, max;
        if (sscanf(range, "%lu to %lu", &min, &max) != 2)
            fail_msg("%s: range '%s' is not 'MIN to MAX'", key, range);
        char v[32];
        const unsigned long ok[2] = {min, max};
        for (size_t i = 0; i < 2; i++) {
            snprintf(v, sizeof(v), "%lu", ok[i]);
            rc = load_with(t, in_bucket, key, v, &c, err, sizeof(err));
            if (rc != CW_OK)
                fail_msg("%s = %s (documented bound): %s", key, v, err);
            cw_config_free(&c);
        }
        snprintf(v, sizeof(v), "%lu", max + 1);
        if (load_with(t, in_bucket, key, v, &c, err, sizeof(err)) != CW_ECONFIG)
            fail_msg("%s = %s (past the documented maximum) was accepted", key, v);
        if (min > 0) {
            snprintf(v, sizeof(v), "%lu", min - 1);
            if (load_with(t, in_bucket, key, v, &c, err, sizeof(err)) != CW_ECONFIG)
                fail_msg("%s = %s (below the documented minimum) was accepted", key, v);
        }
    } else if (strcmp(type, "enum") == 0) {
        /* Every documented choice loads; one that is not documented does not. */
        size_t n = 0;
        for (const char *p = strchr(range, '`'); p != NULL; p = strchr(p, '`')) {
            char choice[64];
            assert_true(first_code(p, choice, sizeof(choice)));
            rc = load_with(t, in_bucket, key, choice, &c, err, sizeof(err));
            if (rc != CW_OK)
                fail_msg("%s = %s (documented choice): %s", key, choice, err);
            cw_config_free(&c);
            n++;
            p = strchr(p + 1, '`') + 1;
        }
        assert_true(n >= 2);
        assert_int_equal(load_with(t, in_bucket, key, "undocumented", &c, err, sizeof(err)),
                         CW_ECONFIG);
    }
    cw_config_free(&base);
}

/* The keys the loader lists after "expected one of: " for an unknown key. */
static void loader_keys(const struct tmp *t, const char *header, char *out, size_t len)
{
    char text[512], path[128], err[2048];
    struct cw_config c;
    snprintf(text, sizeof(text), "%s\nno_such_key = 1\n", header);
    assert_int_equal(load_text(t, text, &c, err, sizeof(err), path, sizeof(path)), CW_ECONFIG);
    const char *list = strstr(err, "expected one of: ");
    assert_non_null(list);
    snprintf(out, len, "%s", list + strlen("expected one of: "));
}

static void check_documented_section(const struct tmp *t, const char *doc, const char *title,
                                     const char *header, bool in_bucket, bool has_range)
{
    const char *sec = strstr(doc, title);
    if (sec == NULL)
        fail_msg("docs/configuration.md has no '%s'", title);
    const char *end = strstr(sec + strlen(title), "\n## ");
    size_t sec_len = end ? (size_t)(end - sec) : strlen(sec);
    char *copy = strndup(sec, sec_len);
    assert_non_null(copy);

    char documented[1024] = "";
    size_t rows = 0;
    for (char *line = strtok(copy, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "| `", 3) != 0)
            continue;
        char *cells[6];
        size_t n = table_cells(line, cells, 6);
        assert_true(n >= 4);
        char key[64];
        assert_true(first_code(cells[0], key, sizeof(key)));
        size_t used = strlen(documented);
        snprintf(documented + used, sizeof(documented) - used, "%s%s", used ? ", " : "", key);
        if (has_range)
            check_documented_key(t, in_bucket, cells);
        rows++;
    }
    assert_true(rows > 0);
    /* The same keys, in the same order, as the loader accepts. */
    char accepted[1024];
    loader_keys(t, header, accepted, sizeof(accepted));
    if (strcmp(documented, accepted) != 0)
        fail_msg("%s: documented keys '%s' but the loader accepts '%s'", title, documented,
                 accepted);
    free(copy);
}

static void test_docs_match_code(void **state)
{
    struct tmp *t = *state;
    char path[4096];
    repo_path(path, sizeof(path), "docs/configuration.md");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *doc = calloc(1, 1 << 20);
    assert_non_null(doc);
    size_t n = fread(doc, 1, (1 << 20) - 1, f);
    fclose(f);
    assert_true(n > 0);
    check_documented_section(t, doc, "## `[cluster]`", "[cluster]", false, true);
    check_documented_section(t, doc, "## `[region NAME]`", "[region a]", false, false);
    check_documented_section(t, doc, "## `[bucket NAME]`", "[bucket b]", true, true);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_regions),
        cmocka_unit_test(test_five_regions),
        cmocka_unit_test(test_local),
        cmocka_unit_test(test_shipped_endpoints_distinct),
        cmocka_unit_test(test_lookups_and_replica),
        cmocka_unit_test_setup_teardown(test_good_variants, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_keys, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_deprecated_keys, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_defaults_match_replica, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_long_line, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_bad_configs, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_too_many_regions, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_too_many_buckets, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_line_too_long, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_docs_match_code, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_error_line_in_real_config, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
