/*
 * test_store.c - the Berkeley DB store: what a real replica persists comes back
 * after a close or a kill, in the order the replica needs; a failed commit
 * leaves nothing behind; corrupt records are named in the error.
 *
 * Every test works in its own mkdtemp() directory, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static struct cw_store *open_ok(const char *dir, enum cw_durability d)
{
    char err[512];
    struct cw_store *s = NULL;
    int rc = cw_store_open(dir, d, &s, err, sizeof(err));
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
    char err[512];
    struct cw_store_load_stats st = {.keys = 7, .outbox = 7, .meta = true};
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
    char err[512];
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
    char err[512];
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
    char err[512];
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
        char err[512];
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
        char err[512];
        if (cw_store_open(f->dir, CW_DURABILITY_WRITE_NOSYNC, &s, err, sizeof(err)) != CW_OK)
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
    char err[512];
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
        char err[512] = "";
        int rc = cw_store_open(f->dir, CW_DURABILITY_WRITE_NOSYNC, &s2, err, sizeof(err));
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
    /* Malformed records of known kinds fail the same way. */
    struct cw_persist no_key[] = {key_put("b/new", k, k_len), {.kind = CW_PERSIST_KEY}};
    assert_int_equal(cw_store_commit(s, no_key, 2), CW_EINVAL);
    struct cw_persist empty_meta[] = {key_del("b/k3"), {.kind = CW_PERSIST_META}};
    assert_int_equal(cw_store_commit(s, empty_meta, 2), CW_EINVAL);
    struct cw_store_stats ss;
    cw_store_stats(s, &ss);
    assert_int_equal(ss.commit_failures, 3);

    /* Both through the same handle and after a reopen, the disk holds exactly
     * what the good commits wrote. */
    char err[512];
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
    char err[512] = "";
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
    char err[512];

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
    char err[512];
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
    char err[512] = "";
    struct cw_store *s = (struct cw_store *)1; /* must be reset on failure */

    /* A regular file where the directory should be. */
    char file[256];
    snprintf(file, sizeof(file), "%s/plainfile", f->tmp);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(cw_store_open(file, CW_DURABILITY_SYNC, &s, err, sizeof(err)), CW_EIO);
    assert_null(s);
    assert_non_null(strstr(err, file));

    assert_int_equal(cw_store_open(NULL, CW_DURABILITY_SYNC, &s, err, sizeof(err)), CW_EINVAL);
    assert_int_equal(cw_store_open(f->dir, (enum cw_durability)7, &s, err, sizeof(err)), CW_EINVAL);
    assert_null(s);
    /* A file that is not a Berkeley DB database, where each database belongs:
     * every step of the open ladder unwinds (ASan checks nothing leaks). */
    static const char *const files[] = {"keys.db", "outbox.db", "meta.db"};
    for (size_t i = 0; i < 3; i++) {
        char dir[256], path[320];
        snprintf(dir, sizeof(dir), "%s/bad-%s", f->tmp, files[i]);
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        fp = fopen(path, "w");
        assert_non_null(fp);
        for (int j = 0; j < 512; j++)
            fputs("not a database ", fp);
        fclose(fp);
        assert_int_equal(cw_store_open(dir, CW_DURABILITY_SYNC, &s, err, sizeof(err)), CW_ESTORE);
        assert_null(s);
        print_message("%s\n", err);
        assert_non_null(strstr(err, files[i]));
    }

    /* err may be omitted. */
    assert_int_equal(cw_store_open("", CW_DURABILITY_SYNC, &s, NULL, 0), CW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durability_names),
        cmocka_unit_test_setup_teardown(test_fresh_directory_loads_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replica_state_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_delete_and_batch_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_order_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_durability_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_after_commit_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_in_use_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_applies_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_key_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_outbox_and_meta_are_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
