/*
 * test_store.c - the Berkeley DB store: what a real replica persists comes back
 * after a close or a kill, in the order the replica needs; a failed commit
 * leaves nothing behind; corrupt records are named in the error. A data
 * directory is opened only by its own region: a partial, foreign or
 * identity-less directory is refused and nothing is created in it. Damaged
 * bytes (a flipped byte on disk, a record rewritten behind the store's back)
 * are refused, never served. Errors name Berkeley DB's real cause (a truncated
 * database or log, a full disk).
 *
 * Every test works in its own mkdtemp() directory, removed at the end.
 */
/* unshare() and mount() for the disk-full test. */
#define _GNU_SOURCE 1
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "core/node.h"
#include "core/replica.h"
#include "store/store.h"

/* ------------------------------------------------------------- fixture */

struct fixture {
    char tmp[64];
    char dir[128]; /* the store's data directory, not created in advance */
};

static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char sub[1024];
                snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
                rm_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->tmp, sizeof(f->tmp), "/tmp/cw_store_test_XXXXXX");
    if (mkdtemp(f->tmp) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "%s/node", f->tmp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rm_tree(f->tmp);
    free(f);
    return 0;
}

/* -------------------------------------------------------------- helpers */

/* The identity every test opens its directories with, unless it says otherwise:
 * region r0 of a two-region cluster, as the server would name them. */
static const struct cw_store_identity ident_r0 = {.cluster = "r0,r1", .region = "r0"};
static const struct cw_store_identity ident_r1 = {.cluster = "r0,r1", .region = "r1"};

static struct cw_store *open_ok(const char *dir, enum cw_durability d)
{
    char err[2048];
    struct cw_store *s = NULL;
    int rc = cw_store_open(dir, &ident_r0, d, &s, err, sizeof(err));
    if (rc != CW_OK)
        print_error("cw_store_open(%s): %s\n", dir, err);
    assert_int_equal(rc, CW_OK);
    assert_non_null(s);
    return s;
}

static const struct cw_bucket_policy test_bucket = {
    .name = "b",
    .consistency = CW_CAUSAL,
    .conflict = CW_CONFLICT_SIBLINGS,
    .max_siblings = 64,
};

/* Two regions, so the outbox keeps every local record (the peer never acks). */
static struct cw_node *new_replica(void)
{
    struct cw_replica_config cfg = {
        .region = 0,
        .n_regions = 2,
        .buckets = &test_bucket,
        .n_buckets = 1,
    };
    cw_replica_config_defaults(&cfg);
    struct cw_node_config ncfg = {.replica = cfg};
    return cw_node_create(&ncfg);
}

static const struct cw_bucket_policy strong_buckets[2] = {
    {.name = "b", .consistency = CW_CAUSAL, .conflict = CW_CONFLICT_LWW},
    {.name = "s", .consistency = CW_STRONG, .conflict = CW_CONFLICT_LWW},
};

/* A node with a strong bucket as well. */
static struct cw_node *new_strong_node(void)
{
    struct cw_replica_config cfg = {
        .region = 0,
        .n_regions = 2,
        .buckets = strong_buckets,
        .n_buckets = 2,
    };
    cw_replica_config_defaults(&cfg);
    struct cw_node_config ncfg = {.replica = cfg};
    return cw_node_create(&ncfg);
}

/* Queues a put (or delete) on r without taking the effects. */
static void queue_put(struct cw_node *r, uint64_t now_us, uint64_t req_id, const char *key,
                      const char *value, bool tombstone)
{
    struct cw_put_req req = {
        .req_id = req_id,
        .bucket = "b",
        .key = (const uint8_t *)key,
        .key_len = (uint32_t)strlen(key),
        .value = (const uint8_t *)value,
        .value_len = value ? (uint32_t)strlen(value) : 0,
        .tombstone = tombstone,
    };
    cw_node_put(r, cw_now_both(now_us), &req);
}

/* Takes r's effects, checks every reply succeeded, commits the persist records to
 * s (when s is not NULL) and advances. Returns the commit's result. */
static int flush_ready(struct cw_node *r, struct cw_store *s)
{
    const struct cw_ready *rd = cw_node_ready(r);
    for (size_t i = 0; i < rd->n_replies; i++)
        if (rd->replies[i].err != CW_OK)
            return rd->replies[i].err;
    int rc = CW_OK;
    if (s != NULL)
        rc = cw_store_commit(s, rd->persist, rd->n_persist);
    cw_node_advance(r);
    return rc;
}

/*
 * The workload the round-trip and crash tests share: single puts, a batch of two
 * puts committed together, an overwrite (a sibling, since the put carries no key
 * context) and a delete. Deterministic, so a second replica fed the same inputs
 * without a store holds the same state. Returns CW_OK or the first failure;
 * usable from a forked child (no cmocka asserts).
 */
static int run_workload(struct cw_node *r, struct cw_store *s)
{
    uint64_t now = 1000000;
    static const char *const keys[] = {"k1", "k2", "k3", "k4"};
    int rc;
    for (size_t i = 0; i < 4; i++) {
        queue_put(r, now += 10, i + 1, keys[i], keys[i], false);
        if ((rc = flush_ready(r, s)) != CW_OK)
            return rc;
    }
    queue_put(r, now += 10, 10, "g1", "group one", false);
    queue_put(r, now += 10, 11, "g2", "group two", false);
    if ((rc = flush_ready(r, s)) != CW_OK)
        return rc;
    queue_put(r, now += 10, 12, "k1", "k1 again", false);
    if ((rc = flush_ready(r, s)) != CW_OK)
        return rc;
    queue_put(r, now += 10, 13, "k2", NULL, true);
    return flush_ready(r, s);
}

/* Asserts that b holds exactly a's keys, outbox length and applied vector. */
static void assert_same_state(const struct cw_node *a, const struct cw_node *b)
{
    const struct cw_keymap *ka = cw_replica_keys(cw_node_replica(a));
    const struct cw_keymap *kb = cw_replica_keys(cw_node_replica(b));
    assert_int_equal(ka->count, kb->count);
    size_t slot = 0, seen = 0;
    struct cw_keyentry *e = NULL;
    while ((e = cw_keymap_next(ka, &slot, e)) != NULL) {
        const struct cw_keyentry *f = cw_keymap_find(kb, e->key, e->key_len);
        assert_non_null(f);
        assert_true(cw_keystate_equal(&e->state, &f->state));
        seen++;
    }
    assert_int_equal(seen, ka->count);
    assert_int_equal(cw_replica_outbox_len(cw_node_replica(a)),
                     cw_replica_outbox_len(cw_node_replica(b)));
    assert_memory_equal(cw_replica_applied(cw_node_replica(a)),
                        cw_replica_applied(cw_node_replica(b)), sizeof(struct cw_vclock));
}

static int load_into(struct cw_store *s, struct cw_node *r, struct cw_store_load_stats *st,
                     char *err, size_t err_len)
{
    int rc = cw_store_load(s, r, st, err, err_len);
    if (rc != CW_OK)
        print_message("cw_store_load: %s\n", err);
    return rc;
}

/* A key state holding one version (origin 0, ts) with value. Caller frees. */
static void key_blob(uint64_t ts, const char *value, uint8_t **out, uint32_t *len)
{
    struct cw_version v = {
        .dot = {0, ts},
        .value_len = (uint32_t)strlen(value),
        .value = (uint8_t *)value,
    };
    struct cw_keystate st = {.n = 1, .cap = 1, .v = &v};
    assert_int_equal(cw_encode_keystate(&st, out, len), CW_OK);
}

/* An outbox record of region 0 at ts for key. Caller frees. */
static void outbox_blob(uint64_t ts, const char *key, uint8_t **out, uint32_t *len)
{
    struct cw_record rec = {
        .prev_ts = 0,
        .consistency = CW_CAUSAL,
        .conflict = CW_CONFLICT_LWW,
        .key_len = (uint32_t)strlen(key),
        .key = (uint8_t *)key,
        .version = {.dot = {0, ts}, .value_len = 1, .value = (uint8_t *)"v"},
    };
    assert_int_equal(cw_encode_record(&rec, out, len), CW_OK);
}

static struct cw_persist key_put(const char *key, uint8_t *data, uint32_t len)
{
    return (struct cw_persist){
        .kind = CW_PERSIST_KEY,
        .key_len = (uint32_t)strlen(key),
        .key = (uint8_t *)key,
        .data_len = len,
        .data = data,
    };
}

static struct cw_persist key_del(const char *key)
{
    return key_put(key, NULL, 0);
}

static struct cw_persist outbox_put(uint64_t ts, uint8_t *data, uint32_t len)
{
    return (struct cw_persist){
        .kind = CW_PERSIST_OUTBOX_PUT, .ts = ts, .data_len = len, .data = data};
}

static struct cw_persist outbox_del(uint64_t ts)
{
    return (struct cw_persist){.kind = CW_PERSIST_OUTBOX_DEL, .ts = ts};
}

static const struct cw_keyentry *find_key(const struct cw_node *r, const char *key)
{
    return cw_keymap_find(cw_replica_keys(cw_node_replica(r)), (const uint8_t *)key,
                          (uint32_t)strlen(key));
}

/* ---------------------------------------------------------------- tests */

static void test_durability_names(void **state)
{
    static const enum cw_durability all[] = {CW_DURABILITY_SYNC, CW_DURABILITY_WRITE_NOSYNC,
                                             CW_DURABILITY_NOSYNC};
    for (size_t i = 0; i < 3; i++) {
        enum cw_durability d = (enum cw_durability)99;
        assert_int_equal(cw_durability_parse(cw_durability_name(all[i]), &d), CW_OK);
        assert_int_equal(d, all[i]);
    }
    assert_string_equal(cw_durability_name(CW_DURABILITY_WRITE_NOSYNC), "write_nosync");
    enum cw_durability d = CW_DURABILITY_NOSYNC;
    assert_int_equal(cw_durability_parse("SYNC", &d), CW_EINVAL);
    assert_int_equal(cw_durability_parse("", &d), CW_EINVAL);
    assert_int_equal(cw_durability_parse("write-nosync", &d), CW_EINVAL);
    assert_int_equal(d, CW_DURABILITY_NOSYNC);
    assert_string_equal(cw_durability_name((enum cw_durability)99), "unknown");
}

static void test_fresh_directory_loads_empty(void **state)
{
    struct fixture *f = *state;
    char nested[256];
    /* Parents are created too. */
    snprintf(nested, sizeof(nested), "%s/a/b/c", f->dir);
    struct cw_store *s = open_ok(nested, CW_DURABILITY_WRITE_NOSYNC);
    assert_int_equal(cw_store_durability(s), CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    char err[2048];
    struct cw_store_load_stats st = {.keys = 7, .outbox = 7, .meta = true};
    assert_true(cw_store_created(s));
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.outbox, 0);
    assert_false(st.meta);
    assert_int_equal(cw_replica_keys(cw_node_replica(r))->count, 0);
    /* Nothing to write is not an error. */
    assert_int_equal(cw_store_commit(s, NULL, 0), CW_OK);
    cw_node_destroy(&r);
    cw_store_close(&s);
    assert_null(s);
    cw_store_close(&s); /* closing NULL is harmless */
}

static void test_replica_state_survives_reopen(void **state)
{
    struct fixture *f = *state;
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    assert_int_equal(run_workload(r, s), CW_OK);
    /* The workload leaves a sibling pair, a tombstone and a full outbox. */
    assert_int_equal(cw_replica_keys(cw_node_replica(r))->count, 6);
    assert_int_equal(find_key(r, "b/k1")->state.n, 2);
    /* The delete carried no key context, so it sits next to the value. */
    const struct cw_keyentry *k2 = find_key(r, "b/k2");
    assert_int_equal(k2->state.n, 2);
    assert_true(k2->state.v[1].tombstone);
    assert_int_equal(cw_replica_outbox_len(cw_node_replica(r)), 8);
    struct cw_store_stats ss;
    cw_store_stats(s, &ss);
    assert_int_equal(ss.commits, 7);
    assert_int_equal(ss.commit_failures, 0);
    cw_store_close(&s);

    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r2 = new_replica();
    assert_non_null(r2);
    char err[2048];
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r2, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.keys, 6);
    assert_int_equal(st.outbox, 8);
    assert_true(st.meta);
    assert_same_state(r, r2);
    assert_true(cw_replica_clock(cw_node_replica(r2)) >= cw_replica_clock(cw_node_replica(r)));

    /* The recovered replica goes on where the first stopped: its next write is
     * stamped after everything it recovered, and commits on top. */
    queue_put(r2, 1000000, 99, "k9", "after restart", false);
    const struct cw_ready *rd = cw_node_ready(r2);
    assert_int_equal(rd->n_replies, 1);
    assert_int_equal(rd->replies[0].err, CW_OK);
    assert_true(rd->replies[0].dot.ts > cw_replica_clock(cw_node_replica(r)));
    assert_int_equal(cw_store_commit(s, rd->persist, rd->n_persist), CW_OK);
    cw_node_advance(r2);
    cw_store_close(&s);

    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r3 = new_replica();
    assert_non_null(r3);
    assert_int_equal(load_into(s, r3, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.keys, 7);
    assert_int_equal(st.outbox, 9);
    assert_same_state(r2, r3);

    cw_node_destroy(&r3);
    cw_node_destroy(&r2);
    cw_node_destroy(&r);
    cw_store_close(&s);
}

static void test_key_delete_and_batch_order(void **state)
{
    struct fixture *f = *state;
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    uint8_t *a, *c1, *c2, *d;
    uint32_t a_len, c1_len, c2_len, d_len;
    key_blob(10, "a", &a, &a_len);
    key_blob(11, "c first", &c1, &c1_len);
    key_blob(12, "c second", &c2, &c2_len);
    key_blob(13, "d", &d, &d_len);

    struct cw_persist first[] = {key_put("b/a", a, a_len), key_put("b/d", d, d_len)};
    assert_int_equal(cw_store_commit(s, first, 2), CW_OK);
    /* In one batch, later records for a key win: c is written twice, d deleted
     * and written again, e written and deleted; deleting a never-stored key and
     * the stored a are both fine. */
    struct cw_persist second[] = {
        key_put("b/c", c1, c1_len), key_del("b/d"),           key_put("b/e", a, a_len),
        key_put("b/c", c2, c2_len), key_put("b/d", d, d_len), key_del("b/e"),
        key_del("b/never"),         key_del("b/a"),
    };
    assert_int_equal(cw_store_commit(s, second, sizeof(second) / sizeof(second[0])), CW_OK);
    cw_store_close(&s);

    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    char err[2048];
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.keys, 2);
    assert_null(find_key(r, "b/a"));
    assert_null(find_key(r, "b/e"));
    const struct cw_keyentry *c = find_key(r, "b/c");
    assert_non_null(c);
    assert_int_equal(c->state.n, 1);
    assert_int_equal(c->state.v[0].dot.ts, 12);
    assert_memory_equal(c->state.v[0].value, "c second", 8);
    assert_non_null(find_key(r, "b/d"));

    cw_node_destroy(&r);
    cw_store_close(&s);
    free(a);
    free(c1);
    free(c2);
    free(d);
}

static void test_outbox_order_and_delete(void **state)
{
    struct fixture *f = *state;
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    /* 1, 256 and 65536 sort in reverse if the ts were stored little-endian; the
     * replica refuses outbox records that do not arrive in increasing ts. */
    static const uint64_t ts[] = {65536, 1, 1000, 256};
    uint8_t *blob[4];
    uint32_t len[4];
    for (size_t i = 0; i < 4; i++) {
        outbox_blob(ts[i], "b/x", &blob[i], &len[i]);
        struct cw_persist p = outbox_put(ts[i], blob[i], len[i]);
        assert_int_equal(cw_store_commit(s, &p, 1), CW_OK);
    }
    /* Removing an acknowledged record, and one that is not there. */
    struct cw_persist dels[] = {outbox_del(1000), outbox_del(5)};
    assert_int_equal(cw_store_commit(s, dels, 2), CW_OK);
    cw_store_close(&s);

    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    char err[2048];
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.outbox, 3);
    assert_int_equal(cw_replica_outbox_len(cw_node_replica(r)), 3);
    /* The newest record sets the stream's end, hence the clock floor. */
    assert_true(cw_replica_clock(cw_node_replica(r)) >= 65536);
    cw_node_destroy(&r);
    cw_store_close(&s);
    for (size_t i = 0; i < 4; i++)
        free(blob[i]);
}

/* A record put and deleted in one commit (a region alone) leaves no trace; a
 * put followed by the deletion of another record is not such a pair. */
static void test_outbox_put_then_del_in_one_commit(void **state)
{
    struct fixture *f = *state;
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    static const uint64_t ts[] = {10, 20, 30, 50};
    uint8_t *blob[4];
    uint32_t len[4];
    for (size_t i = 0; i < 4; i++)
        outbox_blob(ts[i], "b/x", &blob[i], &len[i]);
    struct cw_persist one[] = {outbox_put(10, blob[0], len[0]), outbox_del(10),
                               outbox_put(20, blob[1], len[1])};
    assert_int_equal(cw_store_commit(s, one, 3), CW_OK);
    struct cw_persist two[] = {outbox_put(30, blob[2], len[2])};
    assert_int_equal(cw_store_commit(s, two, 1), CW_OK);
    struct cw_persist three[] = {outbox_put(50, blob[3], len[3]), outbox_del(20)};
    assert_int_equal(cw_store_commit(s, three, 2), CW_OK);
    cw_store_close(&s);

    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    char err[2048];
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.outbox, 2); /* 30 and 50 */
    assert_true(cw_replica_clock(cw_node_replica(r)) >= 50);
    cw_node_destroy(&r);
    cw_store_close(&s);
    for (size_t i = 0; i < 4; i++)
        free(blob[i]);
}

static void test_every_durability_mode(void **state)
{
    struct fixture *f = *state;
    static const enum cw_durability modes[] = {CW_DURABILITY_SYNC, CW_DURABILITY_WRITE_NOSYNC,
                                               CW_DURABILITY_NOSYNC};
    for (size_t i = 0; i < 3; i++) {
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/%s", f->dir, cw_durability_name(modes[i]));
        struct cw_store *s = open_ok(dir, modes[i]);
        assert_int_equal(cw_store_durability(s), modes[i]);
        struct cw_node *r = new_replica();
        assert_non_null(r);
        assert_int_equal(run_workload(r, s), CW_OK);
        cw_store_close(&s);

        s = open_ok(dir, modes[i]);
        struct cw_node *r2 = new_replica();
        assert_non_null(r2);
        char err[2048];
        assert_int_equal(load_into(s, r2, NULL, err, sizeof(err)), CW_OK);
        assert_same_state(r, r2);
        cw_node_destroy(&r2);
        cw_node_destroy(&r);
        cw_store_close(&s);
    }
}

static void test_killed_after_commit_recovers(void **state)
{
    struct fixture *f = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child commits the workload at write_nosync, then dies without
         * closing anything, as kill -9 would leave it. */
        struct cw_store *s = NULL;
        char err[2048];
        if (cw_store_open(f->dir, &ident_r0, CW_DURABILITY_WRITE_NOSYNC, &s, err, sizeof(err)) !=
            CW_OK)
            _exit(2);
        struct cw_node *r = new_replica();
        if (r == NULL || run_workload(r, s) != CW_OK)
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    /* The same inputs without a store give the state the child acknowledged. */
    struct cw_node *expected = new_replica();
    assert_non_null(expected);
    assert_int_equal(run_workload(expected, NULL), CW_OK);

    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    char err[2048];
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_true(st.meta);
    assert_int_equal(st.keys, 6);
    assert_same_state(expected, r);
    cw_node_destroy(&r);
    cw_node_destroy(&expected);
    cw_store_close(&s);
}

static void test_directory_in_use_is_refused(void **state)
{
    struct fixture *f = *state;
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A second daemon on the same directory must not run recovery under the
         * first. */
        struct cw_store *s2 = NULL;
        char err[2048] = "";
        int rc =
            cw_store_open(f->dir, &ident_r0, CW_DURABILITY_WRITE_NOSYNC, &s2, err, sizeof(err));
        _exit(rc == CW_EIO && s2 == NULL && strstr(err, "in use") != NULL ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    cw_store_close(&s);
}

/* A stamp far beyond anything the workload issues. */
#define FAR_TS (1ull << 50)

static void test_failed_commit_applies_nothing(void **state)
{
    struct fixture *f = *state;
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    assert_int_equal(run_workload(r, s), CW_OK);
    assert_string_equal(cw_store_errmsg(s), "");
    /* Good commits: no cause, no panic, checkpoints fine. */
    assert_int_equal(cw_store_commit_cause(s), CW_STORE_CAUSE_NONE);
    assert_false(cw_store_panicked(s));
    assert_int_equal(cw_store_panic_cause(s), CW_STORE_CAUSE_NONE);
    assert_string_equal(cw_store_panic_msg(s), "");
    assert_int_equal(cw_store_checkpoints_failing(s), 0);

    uint8_t *k, *o, *m;
    uint32_t k_len, o_len, m_len;
    key_blob(5, "new", &k, &k_len);
    outbox_blob(FAR_TS, "b/new", &o, &o_len);
    struct cw_meta meta = {.hlc = FAR_TS};
    assert_int_equal(cw_encode_meta(&meta, &m, &m_len), CW_OK);
    /* Good records first, so the abort has real work to undo. */
    struct cw_persist bad[] = {
        key_put("b/new", k, k_len),         key_del("b/k1"),
        outbox_put(FAR_TS, o, o_len),       {.kind = CW_PERSIST_META, .data_len = m_len, .data = m},
        {.kind = (enum cw_persist_kind)99},
    };
    assert_int_equal(cw_store_commit(s, bad, 5), CW_EINVAL);
    assert_non_null(strstr(cw_store_errmsg(s), "unknown kind"));
    /* A malformed record is no resource failure, and its abort leaves the
     * environment usable. */
    assert_int_equal(cw_store_commit_cause(s), CW_STORE_CAUSE_OTHER);
    assert_false(cw_store_panicked(s));
    /* Malformed records of known kinds fail the same way. */
    struct cw_persist no_key[] = {key_put("b/new", k, k_len), {.kind = CW_PERSIST_KEY}};
    assert_int_equal(cw_store_commit(s, no_key, 2), CW_EINVAL);
    struct cw_persist empty_meta[] = {key_del("b/k3"), {.kind = CW_PERSIST_META}};
    assert_int_equal(cw_store_commit(s, empty_meta, 2), CW_EINVAL);
    struct cw_store_stats ss;
    cw_store_stats(s, &ss);
    assert_int_equal(ss.commit_failures, 3);
    assert_int_equal(cw_store_checkpoint(s), CW_OK);
    assert_string_equal(cw_store_cause_name(CW_STORE_CAUSE_NOSPACE), "No space left on device");
    assert_string_equal(cw_store_cause_name(CW_STORE_CAUSE_NOFILES), "too many open files");

    /* Both through the same handle and after a reopen, the disk holds exactly
     * what the good commits wrote. */
    char err[2048];
    struct cw_node *r2 = new_replica();
    assert_non_null(r2);
    assert_int_equal(load_into(s, r2, NULL, err, sizeof(err)), CW_OK);
    assert_same_state(r, r2);
    assert_null(find_key(r2, "b/new"));
    assert_true(cw_replica_clock(cw_node_replica(r2)) < FAR_TS);
    cw_node_destroy(&r2);

    /* The store is still usable after an aborted commit. */
    struct cw_persist good[] = {key_put("b/new", k, k_len)};
    assert_int_equal(cw_store_commit(s, good, 1), CW_OK);
    assert_string_equal(cw_store_errmsg(s), "");
    cw_store_close(&s);

    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    r2 = new_replica();
    assert_non_null(r2);
    assert_int_equal(load_into(s, r2, NULL, err, sizeof(err)), CW_OK);
    assert_non_null(find_key(r2, "b/new"));
    assert_non_null(find_key(r2, "b/k1"));
    assert_non_null(find_key(r2, "b/k3"));
    assert_int_equal(cw_replica_outbox_len(cw_node_replica(r2)),
                     cw_replica_outbox_len(cw_node_replica(r)));
    cw_node_destroy(&r2);
    cw_node_destroy(&r);
    cw_store_close(&s);
    free(k);
    free(o);
    free(m);
}

static void test_corrupt_key_is_named(void **state)
{
    struct fixture *f = *state;
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    uint8_t garbage[] = {0xff, 0x13, 0x37, 0x00, 0x42};
    struct cw_persist p = {
        .kind = CW_PERSIST_KEY,
        .key_len = 6,
        .key = (uint8_t *)"b/bad\x01",
        .data_len = sizeof(garbage),
        .data = garbage,
    };
    assert_int_equal(cw_store_commit(s, &p, 1), CW_OK);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    char err[2048] = "";
    assert_int_equal(cw_store_load(s, r, NULL, err, sizeof(err)), CW_EDECODE);
    print_message("corrupt key: %s\n", err);
    assert_non_null(strstr(err, "keys.db"));
    assert_non_null(strstr(err, "\"b/bad\\x01\""));
    cw_node_destroy(&r);
    cw_store_close(&s);
}

static void test_corrupt_outbox_and_meta_are_named(void **state)
{
    struct fixture *f = *state;
    char dir[256];
    uint8_t garbage[] = {0x01, 0x02, 0x03};
    char err[2048];

    snprintf(dir, sizeof(dir), "%s/outbox", f->dir);
    struct cw_store *s = open_ok(dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_persist p = outbox_put(4242, garbage, sizeof(garbage));
    assert_int_equal(cw_store_commit(s, &p, 1), CW_OK);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    assert_int_equal(cw_store_load(s, r, NULL, err, sizeof(err)), CW_EDECODE);
    assert_non_null(strstr(err, "outbox.db"));
    assert_non_null(strstr(err, "4242"));
    cw_node_destroy(&r);
    cw_store_close(&s);

    snprintf(dir, sizeof(dir), "%s/meta", f->dir);
    s = open_ok(dir, CW_DURABILITY_WRITE_NOSYNC);
    p = (struct cw_persist){.kind = CW_PERSIST_META, .data_len = sizeof(garbage), .data = garbage};
    assert_int_equal(cw_store_commit(s, &p, 1), CW_OK);
    r = new_replica();
    assert_non_null(r);
    struct cw_store_load_stats st;
    assert_int_equal(cw_store_load(s, r, &st, err, sizeof(err)), CW_EDECODE);
    assert_non_null(strstr(err, "meta.db"));
    assert_false(st.meta);
    cw_node_destroy(&r);
    cw_store_close(&s);
}

/* One group commit as large as a busy tick can produce: many keys and a few
 * large values in a single transaction. */
static void test_large_group_commit(void **state)
{
    struct fixture *f = *state;
    enum { SMALL = 5000, LARGE = 4, LARGE_BYTES = 512 * 1024 };
    struct cw_persist *p = calloc(SMALL + LARGE, sizeof(*p));
    char(*names)[32] = calloc(SMALL + LARGE, sizeof(*names));
    char *big = malloc(LARGE_BYTES + 1);
    char small[1024];
    assert_non_null(p);
    assert_non_null(names);
    assert_non_null(big);
    memset(small, 's', sizeof(small) - 1);
    small[sizeof(small) - 1] = '\0';
    memset(big, 'L', LARGE_BYTES);
    big[LARGE_BYTES] = '\0';
    for (size_t i = 0; i < SMALL + LARGE; i++) {
        snprintf(names[i], sizeof(names[i]), "b/key-%05zu", i);
        uint8_t *data;
        uint32_t len;
        key_blob(i + 1, i < SMALL ? small : big, &data, &len);
        p[i] = key_put(names[i], data, len);
    }
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_SYNC);
    int rc = cw_store_commit(s, p, SMALL + LARGE);
    if (rc != CW_OK)
        print_error("commit: %s\n", cw_store_errmsg(s));
    assert_int_equal(rc, CW_OK);
    cw_store_close(&s);

    s = open_ok(f->dir, CW_DURABILITY_SYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    char err[2048];
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.keys, SMALL + LARGE);
    const struct cw_keyentry *e = find_key(r, names[SMALL + LARGE - 1]);
    assert_non_null(e);
    assert_int_equal(e->state.v[0].value_len, LARGE_BYTES);
    assert_memory_equal(e->state.v[0].value, big, LARGE_BYTES);
    cw_node_destroy(&r);
    cw_store_close(&s);
    for (size_t i = 0; i < SMALL + LARGE; i++)
        free(p[i].data);
    free(p);
    free(names);
    free(big);
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    char err[2048] = "";
    struct cw_store *s = (struct cw_store *)1; /* must be reset on failure */

    /* A regular file where the directory should be. */
    char file[256];
    snprintf(file, sizeof(file), "%s/plainfile", f->tmp);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(cw_store_open(file, &ident_r0, CW_DURABILITY_SYNC, &s, err, sizeof(err)),
                     CW_EIO);
    assert_null(s);
    assert_non_null(strstr(err, file));

    assert_int_equal(cw_store_open(NULL, &ident_r0, CW_DURABILITY_SYNC, &s, err, sizeof(err)),
                     CW_EINVAL);
    assert_int_equal(cw_store_open(f->dir, &ident_r0, (enum cw_durability)7, &s, err, sizeof(err)),
                     CW_EINVAL);
    assert_null(s);
    /* An identity is required, with printable names of bounded length. */
    assert_int_equal(cw_store_open(f->dir, NULL, CW_DURABILITY_SYNC, &s, err, sizeof(err)),
                     CW_EINVAL);
    struct cw_store_identity bad = {.cluster = "", .region = "r0"};
    assert_int_equal(cw_store_open(f->dir, &bad, CW_DURABILITY_SYNC, &s, err, sizeof(err)),
                     CW_EINVAL);
    bad = (struct cw_store_identity){.cluster = "c", .region = "r\n0"};
    assert_int_equal(cw_store_open(f->dir, &bad, CW_DURABILITY_SYNC, &s, err, sizeof(err)),
                     CW_EINVAL);
    assert_null(s);
    /* A file that is not a Berkeley DB database where each database belongs, the
     * other two intact: every step of the open ladder unwinds (ASan checks nothing
     * leaks) and the error names the file. */
    static const char *const files[] = {"keys.db", "outbox.db", "meta.db"};
    for (size_t i = 0; i < 3; i++) {
        char dir[256], path[320];
        snprintf(dir, sizeof(dir), "%s/bad-%s", f->tmp, files[i]);
        s = open_ok(dir, CW_DURABILITY_SYNC);
        cw_store_close(&s);
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        fp = fopen(path, "w");
        assert_non_null(fp);
        for (int j = 0; j < 512; j++)
            fputs("not a database ", fp);
        fclose(fp);
        int rc = cw_store_open(dir, &ident_r0, CW_DURABILITY_SYNC, &s, err, sizeof(err));
        print_message("%s\n", err);
        assert_int_equal(rc, CW_ECORRUPT);
        assert_null(s);
        assert_non_null(strstr(err, files[i]));
        assert_non_null(strstr(err, "backup"));
    }

    /* err may be omitted. */
    assert_int_equal(cw_store_open("", &ident_r0, CW_DURABILITY_SYNC, &s, NULL, 0), CW_EINVAL);
}

/* ------------------------------------------------- identity and damage */

static void path_in(const char *dir, const char *file, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", dir, file);
}

static bool file_exists(const char *dir, const char *file)
{
    char p[512];
    path_in(dir, file, p, sizeof(p));
    struct stat st;
    return stat(p, &st) == 0;
}

/* A directory of region r0 holding the shared workload, closed. */
static void write_workload(const char *dir)
{
    struct cw_store *s = open_ok(dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    assert_int_equal(run_workload(r, s), CW_OK);
    cw_node_destroy(&r);
    cw_store_close(&s);
}

/* Opens dir as id expecting refusal with code rc; returns the message in err. */
static void open_refused(const char *dir, const struct cw_store_identity *id, int rc, char *err,
                         size_t err_len)
{
    struct cw_store *s = (struct cw_store *)1;
    int got = cw_store_open(dir, id, CW_DURABILITY_WRITE_NOSYNC, &s, err, err_len);
    print_message("refused (%d): %s\n", got, err);
    if (got == CW_OK) {
        /* Do not leak the store the old behaviour handed out. */
        cw_store_close(&s);
    }
    assert_int_equal(got, rc);
    assert_null(s);
    /* One line that names the directory. */
    assert_null(strchr(err, '\n'));
    assert_non_null(strstr(err, dir));
}

/* What open_in_child saw. */
struct child_open {
    int rc;        /* of the open, or of the load when the open succeeded */
    bool has_flip; /* the loaded replica holds "b/flip" with the flipped value */
    char err[2048];
};

/*
 * Opens dir (and loads it when the open succeeds) in a child process and reports
 * back. For damage that makes Berkeley DB panic: after a panic it leaks its
 * private regions by design (its own test suite says so), which LeakSanitizer
 * would blame on the test. The daemon exits after such a refusal anyway.
 */
static void open_in_child(const char *dir, struct child_open *out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct child_open c;
        memset(&c, 0, sizeof(c));
        struct cw_store *s = NULL;
        c.rc = cw_store_open(dir, &ident_r0, CW_DURABILITY_WRITE_NOSYNC, &s, c.err, sizeof(c.err));
        if (c.rc == CW_OK) {
            struct cw_node *r = new_replica();
            c.rc = r == NULL ? CW_ENOMEM : cw_store_load(s, r, NULL, c.err, sizeof(c.err));
            const struct cw_keyentry *e = r == NULL ? NULL : find_key(r, "b/flip");
            c.has_flip = e != NULL && e->state.v[0].value_len >= 14 &&
                         memcmp(e->state.v[0].value, "UNIQUE-VALUE-1", 14) == 0;
        }
        ssize_t w = write(fds[1], &c, sizeof(c));
        _exit(w == (ssize_t)sizeof(c) ? 0 : 1);
    }
    close(fds[1]);
    size_t got = 0;
    while (got < sizeof(*out)) {
        ssize_t n = read(fds[0], (char *)out + got, sizeof(*out) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(got, sizeof(*out));
    out->err[sizeof(out->err) - 1] = '\0';
    print_message("refused in a child (%d): %s\n", out->rc, out->err);
}

static void assert_has(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        print_error("missing \"%s\" in: %s\n", needle, text);
    assert_non_null(strstr(text, needle));
}

static void test_crc32c(void **state)
{
    (void)state;
    /* The standard check value, and chaining equals one pass. */
    assert_int_equal(cw_store_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(cw_store_crc32c(cw_store_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
    assert_int_equal(cw_store_crc32c(0, "", 0), 0);
    assert_int_equal(cw_store_crc32c_table(0, "123456789", 9), 0xe3069283u);
    /* The fast path (eight bytes at a time, after aligning) against the table,
     * for every length and start offset around the word size, chained too. */
    uint8_t buf[300];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len + off <= sizeof(buf); len += (len < 40 ? 1 : 37)) {
            uint32_t want = cw_store_crc32c_table(0x1234u, buf + off, len);
            assert_int_equal(cw_store_crc32c(0x1234u, buf + off, len), want);
            size_t half = len / 2;
            assert_int_equal(
                cw_store_crc32c(cw_store_crc32c(0x1234u, buf + off, half), buf + off + half,
                                len - half),
                want);
        }
}

static void test_new_directory_gets_an_identity(void **state)
{
    struct fixture *f = *state;
    /* An existing but empty directory is a new region, like a missing one. */
    assert_int_equal(mkdir(f->dir, 0700), 0);
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    assert_true(cw_store_created(s));
    const struct cw_store_identity *id = cw_store_get_identity(s);
    assert_string_equal(id->cluster, "r0,r1");
    assert_string_equal(id->region, "r0");
    uint64_t inc = id->incarnation;
    cw_store_close(&s);

    /* Reopened, it is the same region and the same incarnation, not new. */
    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    assert_false(cw_store_created(s));
    assert_int_equal(cw_store_get_identity(s)->incarnation, inc);
    assert_string_equal(cw_store_get_identity(s)->region, "r0");
    cw_store_close(&s);

    /* Another new directory is another incarnation. */
    char other[256];
    snprintf(other, sizeof(other), "%s/other", f->tmp);
    s = open_ok(other, CW_DURABILITY_WRITE_NOSYNC);
    assert_true(cw_store_created(s));
    assert_int_not_equal(cw_store_get_identity(s)->incarnation, inc);
    cw_store_close(&s);
}

/* Deleting any one database, or two, is refused, and the open creates nothing. */
static void test_partial_directory_is_refused(void **state)
{
    struct fixture *f = *state;
    static const char *const files[] = {"keys.db", "meta.db", "outbox.db", "raft.db"};
    write_workload(f->dir);
    char keep[256], cmd[700], err[2048];
    snprintf(keep, sizeof(keep), "%s/keep", f->tmp);
    snprintf(cmd, sizeof(cmd), "cp -a %s %s", f->dir, keep);
    assert_int_equal(system(cmd), 0);
    for (size_t i = 0; i < 4; i++) {
        char p[512];
        path_in(f->dir, files[i], p, sizeof(p));
        assert_int_equal(unlink(p), 0);
        open_refused(f->dir, &ident_r0, CW_ECORRUPT, err, sizeof(err));
        char missing[64];
        snprintf(missing, sizeof(missing), "%s is missing", files[i]);
        assert_has(err, missing);
        assert_has(err, "incomplete");
        assert_has(err, "backup");
        /* Refused, not re-created empty. */
        assert_false(file_exists(f->dir, files[i]));
        snprintf(cmd, sizeof(cmd), "rm -rf %s && cp -a %s %s", f->dir, keep, f->dir);
        assert_int_equal(system(cmd), 0);
    }
    /* Two gone: both are named. */
    char p[512];
    path_in(f->dir, "keys.db", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    path_in(f->dir, "outbox.db", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    open_refused(f->dir, &ident_r0, CW_ECORRUPT, err, sizeof(err));
    assert_has(err, "keys.db and outbox.db are missing while meta.db and raft.db are there");
    assert_false(file_exists(f->dir, "keys.db"));
    /* All four gone, the log left: not a new region either. */
    path_in(f->dir, "meta.db", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    path_in(f->dir, "raft.db", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    open_refused(f->dir, &ident_r0, CW_ECORRUPT, err, sizeof(err));
    assert_has(err, "log files but none of keys.db");
    assert_false(file_exists(f->dir, "meta.db"));

    /* The intact copy still opens, with everything in it. */
    struct cw_store *s = open_ok(keep, CW_DURABILITY_WRITE_NOSYNC);
    assert_false(cw_store_created(s));
    struct cw_node *r = new_replica();
    assert_non_null(r);
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.keys, 6);
    assert_true(st.meta);
    cw_node_destroy(&r);
    cw_store_close(&s);
}

/* Another region's directory, or another cluster's, is refused, and the refusal
 * changes nothing. */
static void test_foreign_directory_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[2048];
    write_workload(f->dir); /* region r0 */
    char dir1[256];
    snprintf(dir1, sizeof(dir1), "%s/r1", f->tmp);
    struct cw_store *s = NULL;
    assert_int_equal(
        cw_store_open(dir1, &ident_r1, CW_DURABILITY_WRITE_NOSYNC, &s, err, sizeof(err)), CW_OK);
    cw_store_close(&s);

    /* The two swapped: each refuses the other. */
    open_refused(f->dir, &ident_r1, CW_ECONFIG, err, sizeof(err));
    assert_has(err, "belongs to region r0, not r1");
    open_refused(dir1, &ident_r0, CW_ECONFIG, err, sizeof(err));
    assert_has(err, "belongs to region r1, not r0");
    /* Same region name, another cluster (or a changed region list). */
    struct cw_store_identity other = {.cluster = "r0,r1,r2", .region = "r0"};
    open_refused(f->dir, &other, CW_ECONFIG, err, sizeof(err));
    assert_has(err, "belongs to cluster \"r0,r1\", not this one (\"r0,r1,r2\"");

    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.keys, 6);
    cw_node_destroy(&r);
    cw_store_close(&s);
}

/* Opens dir/file on its own, outside the store's environment, as a tool or a bug
 * would: Berkeley DB keeps the page checksums right, so only the record checksum
 * can tell. */
static DB *raw_open(const char *dir, const char *file)
{
    char p[512];
    path_in(dir, file, p, sizeof(p));
    DB *db = NULL;
    assert_int_equal(db_create(&db, NULL, 0), 0);
    assert_int_equal(db->open(db, NULL, p, NULL, DB_BTREE, 0, 0), 0);
    return db;
}

static void raw_put(DB *db, const void *key, uint32_t key_len, const void *data, uint32_t len)
{
    DBT k, d;
    memset(&k, 0, sizeof(k));
    memset(&d, 0, sizeof(d));
    k.data = (void *)(uintptr_t)key;
    k.size = key_len;
    d.data = (void *)(uintptr_t)data;
    d.size = len;
    assert_int_equal(db->put(db, NULL, &k, &d, 0), 0);
}

/* Fetches key's stored bytes into out (at most cap). Returns the length. */
static uint32_t raw_get(DB *db, const void *key, uint32_t key_len, uint8_t *out, size_t cap)
{
    DBT k, d;
    memset(&k, 0, sizeof(k));
    memset(&d, 0, sizeof(d));
    k.data = (void *)(uintptr_t)key;
    k.size = key_len;
    assert_int_equal(db->get(db, NULL, &k, &d, 0), 0);
    assert_true(d.size <= cap);
    memcpy(out, d.data, d.size);
    return d.size;
}

static void test_identity_missing_or_other_format_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[2048];
    write_workload(f->dir);
    char keep[256], cmd[600];
    snprintf(keep, sizeof(keep), "%s/keep", f->tmp);
    snprintf(cmd, sizeof(cmd), "cp -a %s %s", f->dir, keep);
    assert_int_equal(system(cmd), 0);

    /* The record reads as text after its 4-byte checksum. */
    DB *db = raw_open(f->dir, "meta.db");
    uint8_t rec[2048];
    uint32_t n = raw_get(db, "identity", 8, rec, sizeof(rec) - 1);
    rec[n] = '\0';
    print_message("identity: %s\n", (const char *)rec + 4);
    assert_memory_equal(rec + 4, "format 3\ncluster r0,r1\nregion r0\nincarnation ", 45);

    /* Another format (with a good checksum) is another release's directory. */
    memcpy(rec + 4 + 7, "4", 1);
    uint32_t crc = cw_store_crc32c(cw_store_crc32c(0, "identity", 8), rec + 4, n - 4);
    rec[0] = (uint8_t)(crc >> 24);
    rec[1] = (uint8_t)(crc >> 16);
    rec[2] = (uint8_t)(crc >> 8);
    rec[3] = (uint8_t)crc;
    raw_put(db, "identity", 8, rec, n);
    assert_int_equal(db->close(db, 0), 0);
    open_refused(f->dir, &ident_r0, CW_EVERSION, err, sizeof(err));
    assert_has(err, "store format 4; this causeway reads format 3");

    /* No identity at all in a directory that holds data: a format-1 directory
     * looks like this. */
    db = raw_open(f->dir, "meta.db");
    DBT k;
    memset(&k, 0, sizeof(k));
    k.data = "identity";
    k.size = 8;
    assert_int_equal(db->del(db, NULL, &k, 0), 0);
    assert_int_equal(db->close(db, 0), 0);
    open_refused(f->dir, &ident_r0, CW_ECORRUPT, err, sizeof(err));
    assert_has(err, "has no identity record");
    assert_has(err, "older than store format 2");
}

/* ------------------------------------------------------------- raft.db */

static struct cw_persist raft_rec(enum cw_persist_kind kind, uint64_t index, const char *data)
{
    struct cw_persist p = {.kind = kind, .ts = index};
    if (data != NULL) {
        p.data = (uint8_t *)(uintptr_t)data;
        p.data_len = (uint32_t)strlen(data);
    }
    return p;
}

/* What a scan yielded, as one line per record: "snap 2 bytes", "hs 0 bytes",
 * "entry 3 bytes". */
struct raft_seen {
    char text[4096];
    size_t n;
    int fail_at; /* the callback fails (CW_EDECODE) at this record, -1 never */
};

static int raft_collect(void *ctx, enum cw_persist_kind kind, uint64_t index, const uint8_t *data,
                        uint32_t len)
{
    struct raft_seen *rs = ctx;
    if ((int)rs->n == rs->fail_at)
        return CW_EDECODE;
    const char *name = kind == CW_PERSIST_RAFT_SNAP    ? "snap"
                       : kind == CW_PERSIST_RAFT_HS    ? "hs"
                       : kind == CW_PERSIST_RAFT_ENTRY ? "entry"
                                                       : "?";
    size_t o = strlen(rs->text);
    snprintf(rs->text + o, sizeof(rs->text) - o, "%s %llu %.*s\n", name, (unsigned long long)index,
             (int)len, (const char *)data);
    rs->n++;
    return CW_OK;
}

static void scan_expect(struct cw_store *s, const char *want)
{
    struct raft_seen rs = {.fail_at = -1};
    char err[2048];
    assert_int_equal(cw_store_raft_scan(s, raft_collect, &rs, err, sizeof(err)), CW_OK);
    print_message("raft.db:\n%s", rs.text);
    assert_string_equal(rs.text, want);
}

/* An entry index whose first key byte is 'h' or 's' sorts among "hs" and
 * "snap": truncation and compaction must step over those two. */
#define BIG_H 0x6873000000000001ull /* "hs" then 0 .. 1 */
#define BIG_S 0x736e617000000009ull /* "snap" then 0 .. 9 */

static void test_raft_records_survive_reopen(void **state)
{
    struct fixture *f = *state;
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    /* A fresh directory holds nothing. */
    scan_expect(s, "");

    struct cw_persist a[] = {
        raft_rec(CW_PERSIST_RAFT_HS, 0, "hs-1"),      raft_rec(CW_PERSIST_RAFT_ENTRY, 1, "e1"),
        raft_rec(CW_PERSIST_RAFT_ENTRY, 2, "e2"),     raft_rec(CW_PERSIST_RAFT_ENTRY, 3, "e3"),
        raft_rec(CW_PERSIST_RAFT_ENTRY, 4, "e4"),     raft_rec(CW_PERSIST_RAFT_ENTRY, 5, "e5"),
        raft_rec(CW_PERSIST_RAFT_ENTRY, 256, "e256"),
    };
    assert_int_equal(cw_store_commit(s, a, sizeof(a) / sizeof(a[0])), CW_OK);
    scan_expect(s, "hs 0 hs-1\nentry 1 e1\nentry 2 e2\nentry 3 e3\nentry 4 e4\nentry 5 e5\n"
                   "entry 256 e256\n");

    /* An overwritten tail: truncate from 4, append a new 4, new hard state. */
    struct cw_persist b[] = {
        raft_rec(CW_PERSIST_RAFT_TRUNC, 4, NULL),
        raft_rec(CW_PERSIST_RAFT_ENTRY, 4, "e4-new"),
        raft_rec(CW_PERSIST_RAFT_HS, 0, "hs-2"),
    };
    assert_int_equal(cw_store_commit(s, b, 3), CW_OK);
    /* A snapshot at 2 drops 1 and 2. */
    struct cw_persist c = raft_rec(CW_PERSIST_RAFT_SNAP, 2, "state@2");
    assert_int_equal(cw_store_commit(s, &c, 1), CW_OK);
    cw_store_close(&s);

    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    assert_false(cw_store_created(s));
    assert_false(cw_store_upgraded(s));
    scan_expect(s, "snap 2 state@2\nhs 0 hs-2\nentry 3 e3\nentry 4 e4-new\n");

    /* A failed record aborts its whole transaction: nothing of it is kept. */
    struct cw_persist bad[] = {
        raft_rec(CW_PERSIST_RAFT_TRUNC, 3, NULL),
        raft_rec(CW_PERSIST_RAFT_ENTRY, 0, "index zero"),
    };
    assert_int_equal(cw_store_commit(s, bad, 2), CW_EINVAL);
    print_message("%s\n", cw_store_errmsg(s));
    assert_non_null(strstr(cw_store_errmsg(s), "Raft entry"));
    struct cw_persist empty[] = {raft_rec(CW_PERSIST_RAFT_HS, 0, NULL)};
    assert_int_equal(cw_store_commit(s, empty, 1), CW_EINVAL);
    struct cw_persist snap0 = raft_rec(CW_PERSIST_RAFT_SNAP, 0, "x");
    assert_int_equal(cw_store_commit(s, &snap0, 1), CW_EINVAL);
    scan_expect(s, "snap 2 state@2\nhs 0 hs-2\nentry 3 e3\nentry 4 e4-new\n");

    /* Entries whose keys sort among "hs" and "snap": a snapshot below them
     * and a truncation above them leave the fixed keys alone. */
    struct cw_persist d[] = {
        raft_rec(CW_PERSIST_RAFT_ENTRY, BIG_H, "h"),
        raft_rec(CW_PERSIST_RAFT_ENTRY, BIG_S, "s"),
        raft_rec(CW_PERSIST_RAFT_SNAP, BIG_H, "state@h"),
    };
    assert_int_equal(cw_store_commit(s, d, 3), CW_OK);
    char want[256];
    snprintf(want, sizeof(want), "snap %llu state@h\nhs 0 hs-2\nentry %llu s\n",
             (unsigned long long)BIG_H, (unsigned long long)BIG_S);
    scan_expect(s, want);
    struct cw_persist t = raft_rec(CW_PERSIST_RAFT_TRUNC, 1, NULL);
    assert_int_equal(cw_store_commit(s, &t, 1), CW_OK);
    snprintf(want, sizeof(want), "snap %llu state@h\nhs 0 hs-2\n", (unsigned long long)BIG_H);
    scan_expect(s, want);

    /* A callback's failure stops the scan and names the record. */
    struct raft_seen rs = {.fail_at = 1};
    char err[2048];
    assert_int_equal(cw_store_raft_scan(s, raft_collect, &rs, err, sizeof(err)), CW_EDECODE);
    print_message("%s\n", err);
    assert_has(err, "raft.db");
    assert_has(err, "\"hs\"");
    assert_has(err, "does not decode");
    cw_store_close(&s);
}

/* cw_store_load feeds raft.db to the node only when it holds something: an
 * empty one loads as before; records go to the node's restore functions (bytes
 * that are no Raft encoding are refused there, and the error names raft.db). */
static void test_raft_load(void **state)
{
    struct fixture *f = *state;
    char err[2048];
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    struct cw_node *r = new_replica();
    assert_non_null(r);
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_false(st.raft_snapshot);
    assert_false(st.raft_hardstate);
    assert_int_equal(st.raft_entries, 0);
    cw_node_destroy(&r);

    struct cw_persist e = raft_rec(CW_PERSIST_RAFT_ENTRY, 1, "not an encoded entry");
    assert_int_equal(cw_store_commit(s, &e, 1), CW_OK);
    /* A node whose config has no strong bucket refuses Raft records (its
     * strong state would be dropped silently); one with a strong bucket
     * refuses bytes that do not decode. */
    r = new_replica();
    assert_non_null(r);
    assert_int_equal(cw_store_load(s, r, &st, err, sizeof(err)), CW_ECONFIG);
    assert_has(err, "raft.db");
    cw_node_destroy(&r);
    r = new_strong_node();
    assert_non_null(r);
    assert_int_equal(cw_store_load(s, r, &st, err, sizeof(err)), CW_EDECODE);
    print_message("%s\n", err);
    assert_has(err, "raft.db");
    assert_has(err, "Raft entry 1");
    assert_int_equal(st.raft_entries, 0);
    cw_node_destroy(&r);
    cw_store_close(&s);
}

/* A raft.db value changed behind the store's back (pages consistent): the
 * record checksum catches it, naming the file and the record. */
static void test_raft_checksum_catches_rewritten_records(void **state)
{
    struct fixture *f = *state;
    char err[2048];
    static const uint8_t entry_key[8] = {0, 0, 0, 0, 0, 0, 0, 7};
    const struct {
        const void *key;
        uint32_t key_len;
        const char *named;
    } cases[] = {
        {"hs", 2, "\"hs\""},
        {"snap", 4, "\"snap\""},
        {entry_key, 8, "Raft entry 7"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/%zu", f->dir, i);
        struct cw_store *s = open_ok(dir, CW_DURABILITY_WRITE_NOSYNC);
        struct cw_persist p[] = {
            raft_rec(CW_PERSIST_RAFT_SNAP, 6, "state@6"),
            raft_rec(CW_PERSIST_RAFT_HS, 0, "hard state"),
            raft_rec(CW_PERSIST_RAFT_ENTRY, 7, "entry seven"),
        };
        assert_int_equal(cw_store_commit(s, p, 3), CW_OK);
        cw_store_close(&s);

        DB *db = raw_open(dir, "raft.db");
        uint8_t rec[256];
        uint32_t n = raw_get(db, cases[i].key, cases[i].key_len, rec, sizeof(rec));
        rec[n - 1] ^= 0x01;
        raw_put(db, cases[i].key, cases[i].key_len, rec, n);
        assert_int_equal(db->close(db, 0), 0);

        s = open_ok(dir, CW_DURABILITY_WRITE_NOSYNC);
        struct raft_seen rs = {.fail_at = -1};
        assert_int_equal(cw_store_raft_scan(s, raft_collect, &rs, err, sizeof(err)), CW_ECORRUPT);
        print_message("%s\n", err);
        assert_has(err, dir);
        assert_has(err, "raft.db");
        assert_has(err, cases[i].named);
        assert_has(err, "fails its checksum");
        /* Nothing from the damaged record reached the callback. */
        assert_null(strstr(rs.text, cases[i].named[0] == '"' ? "hard state\n" : "seven"));
        if (i == 1)
            assert_int_equal(rs.n, 0);
        cw_store_close(&s);
    }
}

/* Rewrites dir's identity record with its first line replaced by `line`. */
static void set_identity_format(const char *dir, const char *line)
{
    DB *db = raw_open(dir, "meta.db");
    uint8_t rec[2048];
    uint32_t n = raw_get(db, "identity", 8, rec, sizeof(rec));
    size_t len = strlen(line);
    assert_memory_equal(rec + 4, "format ", 7);
    memcpy(rec + 4, line, len);
    uint32_t crc = cw_store_crc32c(cw_store_crc32c(0, "identity", 8), rec + 4, n - 4);
    rec[0] = (uint8_t)(crc >> 24);
    rec[1] = (uint8_t)(crc >> 16);
    rec[2] = (uint8_t)(crc >> 8);
    rec[3] = (uint8_t)crc;
    raw_put(db, "identity", 8, rec, n);
    assert_int_equal(db->close(db, 0), 0);
}

/* A directory of store format 2 (no raft.db) is upgraded in place: raft.db is
 * created empty and the identity says format 3, everything else kept. */
static void test_format2_directory_is_upgraded(void **state)
{
    struct fixture *f = *state;
    char err[2048], p[512];
    write_workload(f->dir);
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    uint64_t incarnation = cw_store_get_identity(s)->incarnation;
    cw_store_close(&s);
    path_in(f->dir, "raft.db", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    set_identity_format(f->dir, "format 2");

    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    assert_true(cw_store_upgraded(s));
    assert_false(cw_store_created(s));
    assert_int_equal(cw_store_get_identity(s)->incarnation, incarnation);
    assert_true(file_exists(f->dir, "raft.db"));
    scan_expect(s, "");
    struct cw_node *r = new_replica();
    assert_non_null(r);
    struct cw_store_load_stats st;
    assert_int_equal(load_into(s, r, &st, err, sizeof(err)), CW_OK);
    assert_int_equal(st.keys, 6);
    cw_node_destroy(&r);
    struct cw_persist e = raft_rec(CW_PERSIST_RAFT_ENTRY, 1, "e1");
    assert_int_equal(cw_store_commit(s, &e, 1), CW_OK);
    cw_store_close(&s);

    /* Upgraded once: the next open is an ordinary one, raft.db kept. */
    DB *db = raw_open(f->dir, "meta.db");
    uint8_t rec[2048];
    raw_get(db, "identity", 8, rec, sizeof(rec));
    assert_memory_equal(rec + 4, "format 3\n", 9);
    assert_int_equal(db->close(db, 0), 0);
    s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    assert_false(cw_store_upgraded(s));
    scan_expect(s, "entry 1 e1\n");
    cw_store_close(&s);

    /* A format-2 identity with a raft.db is no directory any release wrote. */
    set_identity_format(f->dir, "format 2");
    open_refused(f->dir, &ident_r0, CW_ECORRUPT, err, sizeof(err));
    assert_has(err, "says store format 2 but holds raft.db");
}

/* Flips one byte of a stored value in keys.db on disk: the page checksum no
 * longer matches, and the store refuses the directory instead of serving it. */
static void test_flipped_byte_on_disk_is_refused(void **state)
{
    struct fixture *f = *state;
    struct cw_store *s = open_ok(f->dir, CW_DURABILITY_WRITE_NOSYNC);
    uint8_t *a;
    uint32_t a_len;
    key_blob(10, "UNIQUE-VALUE-0123456789", &a, &a_len);
    struct cw_persist p1 = key_put("b/flip", a, a_len);
    assert_int_equal(cw_store_commit(s, &p1, 1), CW_OK);
    free(a);
    cw_store_close(&s);

    char p[512];
    path_in(f->dir, "keys.db", p, sizeof(p));
    FILE *fp = fopen(p, "r+b");
    assert_non_null(fp);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    long at = -1;
    for (size_t i = 0; i + 13 <= n && at < 0; i++)
        if (memcmp(buf + i, "UNIQUE-VALUE-", 13) == 0)
            at = (long)i + 13;
    assert_true(at >= 0);
    assert_int_equal(fseek(fp, at, SEEK_SET), 0);
    assert_int_not_equal(fputc(buf[at] ^ 0x01, fp), EOF); /* '0' becomes '1' */
    assert_int_equal(fclose(fp), 0);

    /* Refused at open or at load, never served. */
    struct child_open c;
    open_in_child(f->dir, &c);
    assert_int_equal(c.rc, CW_ECORRUPT);
    assert_false(c.has_flip);
    assert_null(strchr(c.err, '\n'));
    assert_has(c.err, f->dir);
    assert_has(c.err, "keys.db");
    assert_has(c.err, "checksum");
    assert_has(c.err, "backup");
}

/* A record rewritten behind the store's back, pages consistent: each database's
 * record checksum catches it, the load fails with CW_ECORRUPT naming the
 * database and the key, and the replica never gets the bytes. */
static void test_record_checksum_catches_rewritten_records(void **state)
{
    struct fixture *f = *state;
    char err[2048];
    uint8_t *kb, *ob, *mb;
    uint32_t kb_len, ob_len, mb_len;
    key_blob(5, "the right value", &kb, &kb_len);
    outbox_blob(4242, "b/x", &ob, &ob_len);
    struct cw_meta meta = {.hlc = 4242};
    assert_int_equal(cw_encode_meta(&meta, &mb, &mb_len), CW_OK);

    static const char *const files[] = {"keys.db", "outbox.db", "meta.db"};
    for (size_t i = 0; i < 3; i++) {
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/%zu", f->dir, i);
        struct cw_store *s = open_ok(dir, CW_DURABILITY_WRITE_NOSYNC);
        struct cw_persist p[] = {
            key_put("b/k", kb, kb_len),
            outbox_put(4242, ob, ob_len),
            {.kind = CW_PERSIST_META, .data_len = mb_len, .data = mb},
        };
        assert_int_equal(cw_store_commit(s, p, 3), CW_OK);
        cw_store_close(&s);

        /* Change one byte of the blob, keep its stored checksum. */
        uint8_t tsk[8] = {0, 0, 0, 0, 0, 0, 0x10, 0x92}; /* 4242 */
        const void *key = i == 0 ? (const void *)"b/k" : i == 1 ? (const void *)tsk : "meta";
        uint32_t key_len = i == 0 ? 3 : i == 1 ? 8 : 4;
        DB *db = raw_open(dir, files[i]);
        uint8_t rec[4096];
        uint32_t n = raw_get(db, key, key_len, rec, sizeof(rec));
        rec[n - 1] ^= 0x20;
        raw_put(db, key, key_len, rec, n);
        assert_int_equal(db->close(db, 0), 0);

        s = open_ok(dir, CW_DURABILITY_WRITE_NOSYNC);
        struct cw_node *r = new_replica();
        assert_non_null(r);
        struct cw_store_load_stats st;
        assert_int_equal(cw_store_load(s, r, &st, err, sizeof(err)), CW_ECORRUPT);
        print_message("%s: %s\n", files[i], err);
        assert_has(err, files[i]);
        assert_has(err, "fails its checksum");
        assert_has(err, i == 0 ? "\"b/k\"" : i == 1 ? "ts 4242" : "\"meta\"");
        if (i == 0)
            assert_null(find_key(r, "b/k"));
        if (i == 2)
            assert_false(st.meta);
        cw_node_destroy(&r);
        cw_store_close(&s);
    }
    free(kb);
    free(ob);
    free(mb);
}

/* keys.db cut short: recovery fails, and the error says why. */
static void test_truncated_database_names_the_cause(void **state)
{
    struct fixture *f = *state;
    char p[512];
    write_workload(f->dir);
    path_in(f->dir, "keys.db", p, sizeof(p));
    assert_int_equal(truncate(p, 100), 0);
    struct child_open c;
    open_in_child(f->dir, &c);
    assert_int_equal(c.rc, CW_ECORRUPT);
    assert_has(c.err, f->dir);
    assert_has(c.err, "keys.db: unexpected file type or format");
    assert_has(c.err, "backup");
    /* Cut to nothing: refused too, and not taken for a file being created. */
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/empty-file", f->tmp);
    write_workload(dir);
    path_in(dir, "keys.db", p, sizeof(p));
    assert_int_equal(truncate(p, 0), 0);
    open_in_child(dir, &c);
    assert_int_not_equal(c.rc, CW_OK);
    assert_has(c.err, dir);
    assert_has(c.err, "keys.db");
}

/* The log cut short: the pages reflect records the log no longer has. */
static void test_truncated_log_names_the_cause(void **state)
{
    struct fixture *f = *state;
    char err[2048], p[512];
    write_workload(f->dir);
    path_in(f->dir, "log.0000000001", p, sizeof(p));
    assert_int_equal(truncate(p, 2000), 0);
    open_refused(f->dir, &ident_r0, CW_ECORRUPT, err, sizeof(err));
    assert_has(err, "past end of log");
    assert_has(err, "truncated or removed");

    /* Every log file gone: the same. */
    char dir[256], cmd[600];
    snprintf(dir, sizeof(dir), "%s/nolog", f->tmp);
    write_workload(dir);
    snprintf(cmd, sizeof(cmd), "rm -f %s/log.*", dir);
    assert_int_equal(system(cmd), 0);
    open_refused(dir, &ident_r0, CW_ECORRUPT, err, sizeof(err));
    assert_has(err, "past end of log");
}

/* A full disk: the commit that hits it and the start after it both say "No space
 * left on device". The child gets a private 2 MiB tmpfs (skipped where it may
 * not mount one). */
static void test_disk_full_names_the_cause(void **state)
{
    struct fixture *f = *state;
    char mnt[256];
    snprintf(mnt, sizeof(mnt), "%s/full", f->tmp);
    assert_int_equal(mkdir(mnt, 0700), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", mnt, "tmpfs", 0, "size=2m") != 0)
            _exit(77);
        char dir[300];
        snprintf(dir, sizeof(dir), "%s/node", mnt);
        struct cw_store *s = NULL;
        char err[2048] = "";
        if (cw_store_open(dir, &ident_r0, CW_DURABILITY_WRITE_NOSYNC, &s, err, sizeof(err)) !=
            CW_OK) {
            fprintf(stderr, "open: %s\n", err);
            _exit(2);
        }
        static char big[100000];
        memset(big, 'x', sizeof(big) - 1);
        int rc = CW_OK;
        for (int i = 0; i < 100 && rc == CW_OK; i++) {
            char key[32];
            snprintf(key, sizeof(key), "b/k%d", i);
            uint8_t *a;
            uint32_t a_len;
            key_blob((uint64_t)i + 1, big, &a, &a_len);
            struct cw_persist p = key_put(key, a, a_len);
            rc = cw_store_commit(s, &p, 1);
            free(a);
        }
        fprintf(stderr, "commit: %s\n", cw_store_errmsg(s));
        if (rc == CW_OK || strstr(cw_store_errmsg(s), "No space left on device") == NULL ||
            strstr(cw_store_errmsg(s), "free space") == NULL)
            _exit(3);
        struct cw_store_stats ss;
        cw_store_stats(s, &ss); /* one key per commit */
        size_t committed = (size_t)ss.commits;
        cw_store_close(&s);
        rc = cw_store_open(dir, &ident_r0, CW_DURABILITY_WRITE_NOSYNC, &s, err, sizeof(err));
        fprintf(stderr, "reopen: %s\n", err);
        if (rc == CW_OK) {
            cw_store_close(&s);
            _exit(4);
        }
        if (strstr(err, "No space left on device") == NULL || strstr(err, "free space") == NULL)
            _exit(5);
        /* Space freed: the node starts with every committed write. Recovery
         * zero-fills the rest of the current log file (sized 16 MiB), so it needs
         * that much room. */
        if (mount(NULL, mnt, NULL, MS_REMOUNT, "size=24m") != 0)
            _exit(6);
        rc = cw_store_open(dir, &ident_r0, CW_DURABILITY_WRITE_NOSYNC, &s, err, sizeof(err));
        if (rc != CW_OK) {
            fprintf(stderr, "after freeing space: %s\n", err);
            _exit(7);
        }
        struct cw_node *r = new_replica();
        struct cw_store_load_stats st;
        rc = r == NULL ? CW_ENOMEM : cw_store_load(s, r, &st, err, sizeof(err));
        fprintf(stderr, "after freeing space: rc %d, %zu keys of %zu committed\n", rc,
                rc == CW_OK ? st.keys : 0, committed);
        _exit(rc == CW_OK && st.keys == committed ? 0 : 8);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        print_message("no private tmpfs here (%s); skipped\n", strerror(EPERM));
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durability_names),
        cmocka_unit_test_setup_teardown(test_fresh_directory_loads_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replica_state_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_delete_and_batch_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_order_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_put_then_del_in_one_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_durability_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_after_commit_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_in_use_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_applies_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_key_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_outbox_and_meta_are_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_new_directory_gets_an_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_directory_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_directory_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raft_records_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raft_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raft_checksum_catches_rewritten_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_format2_directory_is_upgraded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_missing_or_other_format_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_on_disk_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_checksum_catches_rewritten_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_truncated_database_names_the_cause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_log_names_the_cause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_names_the_cause, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
