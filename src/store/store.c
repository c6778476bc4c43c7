/*
 * store.c - the Berkeley DB adapter: a transactional environment with three
 * B-trees (keys, outbox, meta), group commit at a chosen durability, and
 * recovery at start. See store.h for the layout and the contracts.
 */
/* db.h uses the BSD types u_int and u_long, which glibc hides under the strict
 * _POSIX_C_SOURCE the build sets; _DEFAULT_SOURCE brings them back. It must come
 * before the first system header. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif

#include "store/store.h"

#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <causeway/error.h>

/* The page cache: big enough that the working set of a demo or benchmark node
 * stays in memory, small enough for several nodes on one host. */
#define STORE_CACHE_BYTES (32u << 20)
/* The in-memory log buffer. A transaction larger than this is written in
 * several pieces; 1 MiB holds a group commit of typical values in one. */
#define STORE_LOG_BUFFER_BYTES (1u << 20)
#define STORE_LOG_FILE_BYTES (16u << 20)
/* Checkpoint after this much log: it bounds recovery time at start and lets
 * DB_LOG_AUTO_REMOVE delete log files no longer needed. */
#define STORE_CHECKPOINT_KBYTES 8192u
#define STORE_LOCK_FILE "causeway.lock"
#define STORE_KEYS_FILE "keys.db"
#define STORE_OUTBOX_FILE "outbox.db"
#define STORE_META_FILE "meta.db"
#define STORE_META_KEY "meta"

/* How much of a key an error message shows. */
#define STORE_KEY_SHOWN_MAX 64

struct cw_store {
    DB_ENV *env;
    DB *keys;
    DB *outbox;
    DB *meta;
    int lock_fd;
    enum cw_durability durability;
    struct cw_store_stats stats;
    /* The last message Berkeley DB gave through its error callback: it often says
     * more than the return code (which file, which limit). */
    char bdb_msg[256];
    char errmsg[512];
    char dir[4096];
};

/* ------------------------------------------------------------ durability */

static const char *const durability_names[] = {
    [CW_DURABILITY_SYNC] = "sync",
    [CW_DURABILITY_WRITE_NOSYNC] = "write_nosync",
    [CW_DURABILITY_NOSYNC] = "nosync",
};

int cw_durability_parse(const char *s, enum cw_durability *out)
{
    if (s == NULL || out == NULL)
        return CW_EINVAL;
    for (size_t i = 0; i < sizeof(durability_names) / sizeof(durability_names[0]); i++) {
        if (strcmp(s, durability_names[i]) == 0) {
            *out = (enum cw_durability)i;
            return CW_OK;
        }
    }
    return CW_EINVAL;
}

const char *cw_durability_name(enum cw_durability d)
{
    if ((unsigned)d >= sizeof(durability_names) / sizeof(durability_names[0]))
        return "unknown";
    return durability_names[d];
}

static u_int32_t commit_flags(enum cw_durability d)
{
    /* Explicit even for sync, so a DB_CONFIG file in the directory that relaxes
     * the environment default cannot weaken what the operator configured. */
    switch (d) {
    case CW_DURABILITY_SYNC:
        return DB_TXN_SYNC;
    case CW_DURABILITY_WRITE_NOSYNC:
        return DB_TXN_WRITE_NOSYNC;
    case CW_DURABILITY_NOSYNC:
        return DB_TXN_NOSYNC;
    }
    return DB_TXN_SYNC;
}

/* ---------------------------------------------------------------- errors */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t err_len,
                                                          const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static void on_bdb_error(const DB_ENV *env, const char *prefix, const char *msg)
{
    struct cw_store *s = env->app_private;
    if (s == NULL || msg == NULL)
        return;
    set_err(s->bdb_msg, sizeof(s->bdb_msg), "%s", msg);
}

/* db_strerror(ret), plus Berkeley DB's own message when it gave one. Writes into
 * buf and returns it. */
static const char *bdb_reason(const struct cw_store *s, int ret, char *buf, size_t len)
{
    if (s->bdb_msg[0] != '\0')
        set_err(buf, len, "%s (%s)", db_strerror(ret), s->bdb_msg);
    else
        set_err(buf, len, "%s", db_strerror(ret));
    return buf;
}

/* Quotes up to STORE_KEY_SHOWN_MAX bytes of a key for a message: printable ASCII
 * as is, everything else as \xNN, "..." when cut short. */
static const char *show_key(const uint8_t *key, size_t len, char *buf, size_t buf_len)
{
    size_t o = 0;
    size_t shown = len < STORE_KEY_SHOWN_MAX ? len : STORE_KEY_SHOWN_MAX;
    for (size_t i = 0; i < shown && o + 5 < buf_len; i++) {
        uint8_t c = key[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, buf_len - o, "\\x%02x", c);
    }
    if (shown < len && o + 4 < buf_len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o < buf_len ? o : buf_len - 1] = '\0';
    return buf;
}

/* ------------------------------------------------------------- directory */

/* mkdir -p: creates dir and any missing parent. */
static int make_dirs(const char *dir)
{
    char path[sizeof(((struct cw_store *)0)->dir)];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, len + 1);
    /* Each prefix ending just before a '/' (skipping the root), then the whole. */
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return -1;
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/*
 * Recovery assumes no other process uses the environment, and running it under a
 * live daemon would corrupt both. An fcntl write lock on a file in the directory
 * turns that mistake into a clear error; the kernel drops the lock when the
 * process dies, however it dies.
 */
static int lock_dir(struct cw_store *s, char *err, size_t err_len)
{
    char path[sizeof(s->dir) + sizeof(STORE_LOCK_FILE) + 1];
    snprintf(path, sizeof(path), "%s/%s", s->dir, STORE_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, err_len, "cannot create the lock file %s: %s; check the directory is writable",
                path, strerror(errno));
        return CW_EIO;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        close(fd);
        if (e == EACCES || e == EAGAIN)
            set_err(err, err_len,
                    "the data directory %s is in use by another process; stop it or give "
                    "this node its own data directory",
                    s->dir);
        else
            set_err(err, err_len, "cannot lock %s: %s", path, strerror(e));
        return CW_EIO;
    }
    s->lock_fd = fd;
    return CW_OK;
}

/* ------------------------------------------------------------ open/close */

static int open_db(struct cw_store *s, DB **out, const char *file, char *err, size_t err_len)
{
    char why[400];
    DB *db = NULL;
    int ret = db_create(&db, s->env, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot create a Berkeley DB handle for %s: %s", file,
                bdb_reason(s, ret, why, sizeof(why)));
        return CW_ESTORE;
    }
    /* DB_AUTO_COMMIT: creating the file is itself transactional, so a crash
     * during the first start leaves either no database or a whole one. */
    ret = db->open(db, NULL, file, NULL, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT, 0600);
    if (ret != 0) {
        set_err(err, err_len,
                "cannot open database %s in %s: %s; the file may be damaged or not "
                "a causeway store",
                file, s->dir, bdb_reason(s, ret, why, sizeof(why)));
        db->close(db, 0); /* a handle whose open failed must still be closed */
        return CW_ESTORE;
    }
    *out = db;
    return CW_OK;
}

static int open_env(struct cw_store *s, char *err, size_t err_len)
{
    char why[400];
    DB_ENV *env = NULL;
    int ret = db_env_create(&env, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot create a Berkeley DB environment handle: %s",
                db_strerror(ret));
        return CW_ESTORE;
    }
    env->app_private = s;
    env->set_errcall(env, on_bdb_error);
    const char *what = "set the cache size";
    if ((ret = env->set_cachesize(env, 0, STORE_CACHE_BYTES, 1)) != 0)
        goto err_after_env_create;
    what = "set the log buffer size";
    if ((ret = env->set_lg_bsize(env, STORE_LOG_BUFFER_BYTES)) != 0)
        goto err_after_env_create;
    what = "set the log file size";
    if ((ret = env->set_lg_max(env, STORE_LOG_FILE_BYTES)) != 0)
        goto err_after_env_create;
    what = "enable log file removal";
    if ((ret = env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1)) != 0)
        goto err_after_env_create;
    /* DB_RECOVER at every start: after a clean shutdown it is quick, after a
     * crash it rolls committed transactions forward and the rest back.
     * DB_PRIVATE keeps the cache, locks and log buffer in this process's memory
     * rather than in __db.* files: one process owns the environment (the lock
     * file enforces it), and a killed process then really loses everything not
     * in the log, so what survives a kill is exactly what the durability level
     * promises. The price: db_stat and friends cannot attach to a running node.
     * No DB_THREAD: the daemon uses the store from one thread. */
    u_int32_t flags = DB_CREATE | DB_PRIVATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
                      DB_INIT_MPOOL | DB_RECOVER;
    ret = env->open(env, s->dir, flags, 0600);
    if (ret != 0) {
        set_err(err, err_len,
                "cannot open Berkeley DB environment in %s: %s; check the directory exists "
                "and is writable",
                s->dir, bdb_reason(s, ret, why, sizeof(why)));
        env->close(env, 0); /* a handle whose open failed must still be closed */
        return CW_ESTORE;
    }
    s->env = env;
    return CW_OK;

err_after_env_create:
    set_err(err, err_len, "cannot %s of the Berkeley DB environment in %s: %s", what, s->dir,
            bdb_reason(s, ret, why, sizeof(why)));
    env->close(env, 0);
    return CW_ESTORE;
}

int cw_store_open(const char *dir, enum cw_durability durability, struct cw_store **out, char *err,
                  size_t err_len)
{
    if (out != NULL)
        *out = NULL;
    set_err(err, err_len, "%s", "");
    if (dir == NULL || dir[0] == '\0' || out == NULL ||
        (unsigned)durability > CW_DURABILITY_NOSYNC) {
        set_err(err, err_len, "cw_store_open: missing data directory or bad durability");
        return CW_EINVAL;
    }
    struct cw_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        set_err(err, err_len, "out of memory opening the store in %s", dir);
        return CW_ENOMEM;
    }
    s->lock_fd = -1;
    s->durability = durability;
    if (strlen(dir) >= sizeof(s->dir)) {
        set_err(err, err_len, "the data directory path is too long (%zu bytes, at most %zu)",
                strlen(dir), sizeof(s->dir) - 1);
        free(s);
        return CW_EINVAL;
    }
    snprintf(s->dir, sizeof(s->dir), "%s", dir);

    int rc;
    if (make_dirs(dir) != 0) {
        set_err(err, err_len,
                "cannot create the data directory %s: %s; check the path and its "
                "permissions",
                dir, strerror(errno));
        rc = CW_EIO;
        goto err_after_alloc;
    }
    rc = lock_dir(s, err, err_len);
    if (rc != CW_OK)
        goto err_after_alloc;
    rc = open_env(s, err, err_len);
    if (rc != CW_OK)
        goto err_after_lock;
    rc = open_db(s, &s->keys, STORE_KEYS_FILE, err, err_len);
    if (rc != CW_OK)
        goto err_after_env;
    rc = open_db(s, &s->outbox, STORE_OUTBOX_FILE, err, err_len);
    if (rc != CW_OK)
        goto err_after_keys;
    rc = open_db(s, &s->meta, STORE_META_FILE, err, err_len);
    if (rc != CW_OK)
        goto err_after_outbox;
    s->bdb_msg[0] = '\0';
    *out = s;
    return CW_OK;

err_after_outbox:
    s->outbox->close(s->outbox, 0);
err_after_keys:
    s->keys->close(s->keys, 0);
err_after_env:
    s->env->close(s->env, 0);
err_after_lock:
    close(s->lock_fd);
err_after_alloc:
    free(s);
    return rc;
}

void cw_store_close(struct cw_store **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    struct cw_store *s = *sp;
    /* A checkpoint now makes the next start's recovery short. A failure here
     * loses nothing: recovery replays the log instead. */
    (void)s->env->txn_checkpoint(s->env, 0, 0, 0);
    s->meta->close(s->meta, 0);
    s->outbox->close(s->outbox, 0);
    s->keys->close(s->keys, 0);
    s->env->close(s->env, 0);
    close(s->lock_fd); /* releases the directory lock */
    free(s);
    *sp = NULL;
}

/* ---------------------------------------------------------------- commit */

static void ts_key(uint64_t ts, uint8_t out[8])
{
    /* Big-endian, so the B-tree's byte order is ts order. */
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)ts;
        ts >>= 8;
    }
}

static uint64_t ts_from_key(const uint8_t in[8])
{
    uint64_t ts = 0;
    for (int i = 0; i < 8; i++)
        ts = ts << 8 | in[i];
    return ts;
}

static void dbt_set(DBT *d, const void *data, uint32_t len)
{
    memset(d, 0, sizeof(*d));
    d->data = (void *)(uintptr_t)data; /* Berkeley DB does not write through it */
    d->size = len;
}

/* Applies record i inside txn. Returns CW_OK, or CW_EINVAL/CW_ESTORE with
 * s->errmsg saying why. */
static int apply_one(struct cw_store *s, DB_TXN *txn, const struct cw_persist *p, size_t i)
{
    char why[400];
    uint8_t tsk[8];
    DBT k, d;
    int ret = 0;
    const char *file = "";
    switch (p->kind) {
    case CW_PERSIST_KEY:
        if (p->key_len == 0 || p->key == NULL || p->key_len > CW_FULL_KEY_MAX ||
            (p->data_len > 0 && p->data == NULL)) {
            set_err(s->errmsg, sizeof(s->errmsg),
                    "persist record %zu (key) has an empty or oversized key or a missing "
                    "blob; nothing was committed",
                    i);
            return CW_EINVAL;
        }
        file = STORE_KEYS_FILE;
        dbt_set(&k, p->key, p->key_len);
        if (p->data_len == 0) {
            ret = s->keys->del(s->keys, txn, &k, 0);
            if (ret == DB_NOTFOUND)
                ret = 0; /* deleting an absent key is a no-op, not an error */
        } else {
            dbt_set(&d, p->data, p->data_len);
            ret = s->keys->put(s->keys, txn, &k, &d, 0);
        }
        break;
    case CW_PERSIST_OUTBOX_PUT:
        if (p->data_len == 0 || p->data == NULL) {
            set_err(s->errmsg, sizeof(s->errmsg),
                    "persist record %zu (outbox put, ts %llu) has no data; nothing was "
                    "committed",
                    i, (unsigned long long)p->ts);
            return CW_EINVAL;
        }
        file = STORE_OUTBOX_FILE;
        ts_key(p->ts, tsk);
        dbt_set(&k, tsk, sizeof(tsk));
        dbt_set(&d, p->data, p->data_len);
        ret = s->outbox->put(s->outbox, txn, &k, &d, 0);
        break;
    case CW_PERSIST_OUTBOX_DEL:
        file = STORE_OUTBOX_FILE;
        ts_key(p->ts, tsk);
        dbt_set(&k, tsk, sizeof(tsk));
        ret = s->outbox->del(s->outbox, txn, &k, 0);
        if (ret == DB_NOTFOUND)
            ret = 0;
        break;
    case CW_PERSIST_META:
        if (p->data_len == 0 || p->data == NULL) {
            set_err(s->errmsg, sizeof(s->errmsg),
                    "persist record %zu (metadata) has no data; nothing was committed", i);
            return CW_EINVAL;
        }
        file = STORE_META_FILE;
        dbt_set(&k, STORE_META_KEY, sizeof(STORE_META_KEY) - 1);
        dbt_set(&d, p->data, p->data_len);
        ret = s->meta->put(s->meta, txn, &k, &d, 0);
        break;
    default:
        set_err(s->errmsg, sizeof(s->errmsg),
                "persist record %zu has unknown kind %d; nothing was committed", i, (int)p->kind);
        return CW_EINVAL;
    }
    if (ret != 0) {
        set_err(s->errmsg, sizeof(s->errmsg),
                "writing persist record %zu to %s in %s failed: %s; nothing was committed", i, file,
                s->dir, bdb_reason(s, ret, why, sizeof(why)));
        return CW_ESTORE;
    }
    return CW_OK;
}

int cw_store_commit(struct cw_store *s, const struct cw_persist *p, size_t n)
{
    char why[400];
    s->errmsg[0] = '\0';
    s->bdb_msg[0] = '\0';
    if (n == 0)
        return CW_OK;
    if (p == NULL) {
        set_err(s->errmsg, sizeof(s->errmsg), "cw_store_commit: %zu records but no array", n);
        s->stats.commit_failures++;
        return CW_EINVAL;
    }
    DB_TXN *txn = NULL;
    int ret = s->env->txn_begin(s->env, NULL, &txn, 0);
    if (ret != 0) {
        set_err(s->errmsg, sizeof(s->errmsg), "cannot begin a transaction in %s: %s", s->dir,
                bdb_reason(s, ret, why, sizeof(why)));
        s->stats.commit_failures++;
        return CW_ESTORE;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = apply_one(s, txn, &p[i], i);
        if (rc != CW_OK) {
            /* The abort undoes the records already written in this transaction. */
            (void)txn->abort(txn);
            s->stats.commit_failures++;
            return rc;
        }
    }
    /* After commit the handle is gone whatever it returns: no abort on failure. */
    ret = txn->commit(txn, commit_flags(s->durability));
    if (ret != 0) {
        set_err(s->errmsg, sizeof(s->errmsg),
                "committing %zu persist records in %s failed: %s; check free disk space", n, s->dir,
                bdb_reason(s, ret, why, sizeof(why)));
        s->stats.commit_failures++;
        return CW_ESTORE;
    }
    s->stats.commits++;
    s->stats.records += n;

    /* Cheap unless STORE_CHECKPOINT_KBYTES of log accumulated. The commit is
     * already durable, so a failed checkpoint is counted, not returned. */
    s->bdb_msg[0] = '\0';
    ret = s->env->txn_checkpoint(s->env, STORE_CHECKPOINT_KBYTES, 0, 0);
    if (ret != 0) {
        s->stats.checkpoints_failed++;
        set_err(s->errmsg, sizeof(s->errmsg), "checkpoint in %s failed after a good commit: %s",
                s->dir, bdb_reason(s, ret, why, sizeof(why)));
    }
    return CW_OK;
}

/* ------------------------------------------------------------------ load */

static int load_meta(struct cw_store *s, struct cw_node *r, struct cw_store_load_stats *st,
                     char *err, size_t err_len)
{
    char why[400];
    DBT k, d;
    dbt_set(&k, STORE_META_KEY, sizeof(STORE_META_KEY) - 1);
    memset(&d, 0, sizeof(d));
    /* Default DBT flags: the bytes belong to Berkeley DB and stay valid until the
     * next call on this handle, long enough for the replica to decode them. */
    int ret = s->meta->get(s->meta, NULL, &k, &d, 0);
    if (ret == DB_NOTFOUND)
        return CW_OK; /* a fresh directory */
    if (ret != 0) {
        set_err(err, err_len, "cannot read %s/%s: %s", s->dir, STORE_META_FILE,
                bdb_reason(s, ret, why, sizeof(why)));
        return CW_ESTORE;
    }
    int rc = cw_node_restore_meta(r, d.data, d.size);
    if (rc == CW_EDECODE) {
        set_err(err, err_len,
                "%s/%s: the record \"%s\" (%u bytes) is corrupt; restore the data directory "
                "from a backup, or move it aside to start this region empty",
                s->dir, STORE_META_FILE, STORE_META_KEY, (unsigned)d.size);
        return rc;
    }
    if (rc != CW_OK) {
        set_err(err, err_len, "restoring the metadata from %s/%s failed: %s", s->dir,
                STORE_META_FILE, cw_strerror(rc));
        return rc;
    }
    st->meta = true;
    return CW_OK;
}

/* Walks db with a cursor, in key order, handing each record to restore_one. */
enum walk_kind { WALK_KEYS, WALK_OUTBOX };

static int restore_one(struct cw_store *s, struct cw_node *r, enum walk_kind kind, const DBT *k,
                       const DBT *d, char *err, size_t err_len)
{
    char shown[STORE_KEY_SHOWN_MAX * 4 + 8];
    int rc;
    if (kind == WALK_KEYS) {
        rc = cw_node_restore_key(r, k->data, k->size, d->data, d->size);
        if (rc == CW_EDECODE)
            set_err(err, err_len,
                    "%s/%s: the record for key \"%s\" (%u bytes) is corrupt; restore the data "
                    "directory from a backup, or move it aside to start this region empty",
                    s->dir, STORE_KEYS_FILE, show_key(k->data, k->size, shown, sizeof(shown)),
                    (unsigned)d->size);
        else if (rc != CW_OK)
            set_err(err, err_len, "restoring key \"%s\" from %s/%s failed: %s",
                    show_key(k->data, k->size, shown, sizeof(shown)), s->dir, STORE_KEYS_FILE,
                    cw_strerror(rc));
        return rc;
    }
    if (k->size != 8) {
        set_err(err, err_len,
                "%s/%s: a record has a %u-byte key \"%s\" where an 8-byte ts belongs; restore "
                "the data directory from a backup, or move it aside to start this region empty",
                s->dir, STORE_OUTBOX_FILE, (unsigned)k->size,
                show_key(k->data, k->size, shown, sizeof(shown)));
        return CW_EDECODE;
    }
    unsigned long long ts = (unsigned long long)ts_from_key(k->data);
    rc = cw_node_restore_outbox(r, d->data, d->size);
    if (rc == CW_EDECODE)
        set_err(err, err_len,
                "%s/%s: the record for ts %llu (%u bytes) is corrupt; restore the data directory "
                "from a backup, or move it aside to start this region empty",
                s->dir, STORE_OUTBOX_FILE, ts, (unsigned)d->size);
    else if (rc != CW_OK)
        set_err(err, err_len, "restoring outbox record ts %llu from %s/%s failed: %s", ts, s->dir,
                STORE_OUTBOX_FILE, cw_strerror(rc));
    return rc;
}

static int walk(struct cw_store *s, struct cw_node *r, enum walk_kind kind, size_t *count,
                char *err, size_t err_len)
{
    char why[400];
    DB *db = kind == WALK_KEYS ? s->keys : s->outbox;
    const char *file = kind == WALK_KEYS ? STORE_KEYS_FILE : STORE_OUTBOX_FILE;
    DBC *cur = NULL;
    int ret = db->cursor(db, NULL, &cur, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot open a cursor on %s/%s: %s", s->dir, file,
                bdb_reason(s, ret, why, sizeof(why)));
        return CW_ESTORE;
    }
    int rc = CW_OK;
    DBT k, d;
    memset(&k, 0, sizeof(k));
    memset(&d, 0, sizeof(d));
    /* Default DBT flags: the bytes stay valid until the next cursor call, and
     * every restore function copies what it keeps. */
    while ((ret = cur->get(cur, &k, &d, DB_NEXT)) == 0) {
        rc = restore_one(s, r, kind, &k, &d, err, err_len);
        if (rc != CW_OK)
            goto done_after_cursor;
        (*count)++;
    }
    if (ret != DB_NOTFOUND) {
        set_err(err, err_len, "reading %s/%s failed after %zu records: %s", s->dir, file, *count,
                bdb_reason(s, ret, why, sizeof(why)));
        rc = CW_ESTORE;
    }
done_after_cursor:
    cur->close(cur);
    return rc;
}

int cw_store_load(struct cw_store *s, struct cw_node *r, struct cw_store_load_stats *stats,
                  char *err, size_t err_len)
{
    struct cw_store_load_stats local;
    struct cw_store_load_stats *st = stats != NULL ? stats : &local;
    memset(st, 0, sizeof(*st));
    set_err(err, err_len, "%s", "");
    if (s == NULL || r == NULL) {
        set_err(err, err_len, "cw_store_load: missing store or replica");
        return CW_EINVAL;
    }
    s->bdb_msg[0] = '\0';
    /* The order the replica requires: meta sets the clock floor and vectors the
     * keys and outbox are checked against; the outbox must arrive in ts order,
     * which the big-endian keys give. */
    int rc = load_meta(s, r, st, err, err_len);
    if (rc != CW_OK)
        return rc;
    rc = walk(s, r, WALK_KEYS, &st->keys, err, err_len);
    if (rc != CW_OK)
        return rc;
    return walk(s, r, WALK_OUTBOX, &st->outbox, err, err_len);
}

/* ----------------------------------------------------------- observation */

const char *cw_store_errmsg(const struct cw_store *s)
{
    return s->errmsg;
}

enum cw_durability cw_store_durability(const struct cw_store *s)
{
    return s->durability;
}

void cw_store_stats(const struct cw_store *s, struct cw_store_stats *out)
{
    *out = s->stats;
}
