/*
 * bdb-bench.c - Berkeley DB's own transactional put rate, the baseline that
 * causeway's put throughput is compared with in docs/benchmarks.md.
 *
 * It opens an environment the way causeway's store does (private, transactional,
 * recovered, 32 MiB cache, 1 MiB log buffer, 16 MiB log files) and puts values of
 * one size into one B-tree for a fixed time, each put in its own transaction
 * committed at the chosen durability (--batch N puts N per transaction, as a
 * group commit does). Keys cycle over a key space like causeway-bench's.
 *
 *   bdb-bench --value-bytes 8192 --seconds 10 --durability write_nosync --json
 */
#define _DEFAULT_SOURCE
#include <db.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *USAGE =
    "usage: bdb-bench [options]\n"
    "\n"
    "Puts values into a Berkeley DB B-tree, each put in its own transaction (or --batch N\n"
    "per transaction), for SECONDS, in an environment set up like causeway's store.\n"
    "Prints puts per second and megabytes per second.\n"
    "\n"
    "  --value-bytes N   value size, 1 to 16777216 (default 100)\n"
    "  --keys N          key space, 1 to 100000000 (default 1000)\n"
    "  --seconds N       how long to run, 1 to 3600 (default 10)\n"
    "  --durability D    sync | write_nosync | nosync (default write_nosync)\n"
    "  --batch N         puts per transaction, 1 to 10000 (default 1)\n"
    "  --dir DIR         environment directory (default: a fresh one under /tmp, removed)\n"
    "  --json            one JSON object instead of text\n"
    "  --help            this text\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_u(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int die(const char *what, int ret)
{
    fprintf(stderr, "bdb-bench: %s: %s\n", what, db_strerror(ret));
    return 1;
}

int main(int argc, char **argv)
{
    unsigned long value_bytes = 100, keys = 1000, seconds = 10, batch = 1;
    const char *durability = "write_nosync", *dir_arg = NULL;
    int json = 0;
    static const struct option opts[] = {
        {"value-bytes", required_argument, NULL, 'v'}, {"keys", required_argument, NULL, 'k'},
        {"seconds", required_argument, NULL, 's'},     {"durability", required_argument, NULL, 'd'},
        {"batch", required_argument, NULL, 'b'},       {"dir", required_argument, NULL, 'D'},
        {"json", no_argument, NULL, 'j'},              {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'v': bad = parse_u(optarg, 1, 16u << 20, &value_bytes); break;
        case 'k': bad = parse_u(optarg, 1, 100000000, &keys); break;
        case 's': bad = parse_u(optarg, 1, 3600, &seconds); break;
        case 'b': bad = parse_u(optarg, 1, 10000, &batch); break;
        case 'd': durability = optarg; break;
        case 'D': dir_arg = optarg; break;
        case 'j': json = 1; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: fputs(USAGE, stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "bdb-bench: bad value '%s' (see --help for the ranges)\n", optarg);
            return 2;
        }
    }
    u_int32_t commit_flags;
    if (strcmp(durability, "sync") == 0)
        commit_flags = DB_TXN_SYNC;
    else if (strcmp(durability, "write_nosync") == 0)
        commit_flags = DB_TXN_WRITE_NOSYNC;
    else if (strcmp(durability, "nosync") == 0)
        commit_flags = DB_TXN_NOSYNC;
    else {
        fprintf(stderr, "bdb-bench: durability must be sync, write_nosync or nosync\n");
        return 2;
    }
    char tmpl[] = "/tmp/bdb-bench.XXXXXX";
    const char *dir = dir_arg;
    if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL) {
        perror("bdb-bench: mkdtemp");
        return 1;
    }
    DB_ENV *env = NULL;
    DB *db = NULL;
    int ret = db_env_create(&env, 0);
    if (ret)
        return die("db_env_create", ret);
    env->set_cachesize(env, 0, 32u << 20, 1);
    env->set_lg_bsize(env, 1u << 20);
    env->set_lg_max(env, 16u << 20);
    env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1);
    ret = env->open(env, dir,
                    DB_CREATE | DB_PRIVATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
                        DB_INIT_MPOOL | DB_RECOVER,
                    0600);
    if (ret)
        return die("env open", ret);
    if ((ret = db_create(&db, env, 0)) != 0)
        return die("db_create", ret);
    if ((ret = db->open(db, NULL, "bench.db", NULL, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT,
                        0600)) != 0)
        return die("db open", ret);
    char *value = malloc(value_bytes);
    if (value == NULL)
        return die("malloc", ENOMEM);
    memset(value, 'v', value_bytes);
    uint64_t puts = 0, i = 0;
    double start = now_s(), end = start + (double)seconds, t = start;
    while (t < end) {
        DB_TXN *txn = NULL;
        if ((ret = env->txn_begin(env, NULL, &txn, 0)) != 0)
            return die("txn_begin", ret);
        for (unsigned long b = 0; b < batch; b++, i++) {
            char kbuf[32];
            int klen = snprintf(kbuf, sizeof(kbuf), "kv/key-%" PRIu64, i % keys);
            DBT k = {.data = kbuf, .size = (u_int32_t)klen};
            DBT v = {.data = value, .size = (u_int32_t)value_bytes};
            memcpy(value, &i, sizeof(i) < value_bytes ? sizeof(i) : value_bytes);
            if ((ret = db->put(db, txn, &k, &v, 0)) != 0)
                return die("put", ret);
        }
        if ((ret = txn->commit(txn, commit_flags)) != 0)
            return die("commit", ret);
        puts += batch;
        if ((puts & 63) == 0 || batch > 1)
            t = now_s();
    }
    double elapsed = now_s() - start;
    double rate = (double)puts / elapsed;
    double mbs = rate * (double)value_bytes / 1e6;
    if (json)
        printf("{\"value_bytes\":%lu,\"batch\":%lu,\"durability\":\"%s\",\"puts\":%" PRIu64
               ",\"seconds\":%.3f,\"puts_per_s\":%.1f,\"mb_per_s\":%.2f}\n",
               value_bytes, batch, durability, puts, elapsed, rate, mbs);
    else
        printf("bdb-bench: %" PRIu64 " puts of %lu bytes in %.2f s (%s, %lu per transaction): "
               "%.0f puts/s, %.2f MB/s\n",
               puts, value_bytes, elapsed, durability, batch, rate, mbs);
    db->close(db, 0);
    env->close(env, 0);
    free(value);
    if (dir_arg == NULL) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
        if (system(cmd) != 0)
            fprintf(stderr, "bdb-bench: could not remove %s\n", tmpl);
    }
    return 0;
}
