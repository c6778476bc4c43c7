/*
 * store.c - the Berkeley DB adapter: a transactional environment with three
 * B-trees (keys, outbox, meta) created with page checksums, a CRC32C on every
 * record, an identity record that ties the directory to its cluster and region,
 * group commit at a chosen durability, and recovery at start. See store.h for the
 * layout and the contracts.
 */
/* db.h uses the BSD types u_int and u_long, which glibc hides under the strict
 * _POSIX_C_SOURCE the build sets; _DEFAULT_SOURCE brings them back. It must come
 * before the first system header. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif

#include "store/store.h"

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "core/limits.h"
#include "core/cw_assert.h"

/* The page cache: big enough that the working set of a demo or benchmark node
 * stays in memory, small enough for several nodes on one host. */
#define STORE_CACHE_BYTES CW_DEFAULT_STORE_CACHE_BYTES
/* The in-memory log buffer. A transaction larger than this is written in
 * several pieces; 1 MiB holds a group commit of typical values in one. */
#define STORE_LOG_BUFFER_BYTES (1u << 20)
#define STORE_LOG_FILE_BYTES (16u << 20)
/* Checkpoint after this much log: it bounds recovery time at start (replaying
 * 64 MiB of log takes about a second) and lets DB_LOG_AUTO_REMOVE delete log
 * files no longer needed. A checkpoint writes every dirty page and checksums
 * it, so fewer of them means a hot page is written once for many updates: at
 * 8 MiB, checkpoints stalled an 8 KiB put load for a third of its time. */
#define STORE_CHECKPOINT_KBYTES (uint32_t)(CW_DEFAULT_CHECKPOINT_BYTES / 1024)
/* Records (bytes) committed between two questions to Berkeley DB whether a
 * checkpoint is due; see cw_store_commit. */
#define STORE_CHECKPOINT_ASK_BYTES (1u << 20)
/* The outbox's page size; see open_db. */
#define STORE_OUTBOX_PAGE_BYTES (64u << 10)
#define STORE_LOCK_FILE "causeway.lock"
#define STORE_KEYS_FILE "keys.db"
#define STORE_OUTBOX_FILE "outbox.db"
#define STORE_META_FILE "meta.db"
#define STORE_RAFT_FILE "raft.db"
#define STORE_RAFT_HS_KEY "hs"
#define STORE_RAFT_SNAP_KEY "snap"
/* A stored snapshot's value: the index (8 bytes, big-endian), then its bytes. */
#define STORE_RAFT_INDEX_BYTES 8
/* The largest Raft record the store takes: an encoded entry, hard state or
 * snapshot is at most a frame (a snapshot travels in one). */
#define STORE_RAFT_BYTES_MAX CW_FRAME_BYTES_MAX
#define STORE_META_KEY "meta"
#define STORE_IDENTITY_KEY "identity"
/* The on-disk format this build writes and reads (see store.h). Format 1, before
 * identities and checksums, is refused; format 2, before strong buckets (no
 * raft.db), is upgraded in place at open; identities began with format 2. */
#define STORE_FORMAT 3
#define STORE_FORMAT_UPGRADABLE 2
#define STORE_FORMAT_FIRST_IDENTITY 2
/* Every record's value starts with a big-endian CRC32C of its key and the rest. */
#define STORE_CRC_BYTES 4
/* Longest identity text: the two names plus the fixed lines. */
#define STORE_IDENTITY_MAX (CW_STORE_CLUSTER_MAX + CW_STORE_REGION_MAX + 256)
/* Where the docs say what to do about a refused directory. */
#define STORE_SEE_DOCS "docs/operations.md, \"Data directory identity\""
#define STORE_SEE_DAMAGE "docs/operations.md, \"Damaged data\""

/* Berkeley DB messages kept per operation: the first few (the cause usually
 * comes first) and the last (what it led to), each cut to STORE_BDB_MSG_MAX. */
#define STORE_BDB_FIRST 4
#define STORE_BDB_MSG_MAX 240
/* Room for those messages joined, plus db_strerror's text. */
#define STORE_WHY_MAX (STORE_BDB_MSG_MAX * (STORE_BDB_FIRST + 1) + 200)
#define STORE_ERR_MAX (STORE_WHY_MAX + 768)
/* Advice: a sentence naming the data directory. */
#define STORE_ADVICE_MAX 4600

/* How much of a key an error message shows. */
#define STORE_KEY_SHOWN_MAX 64

static const char *const db_files[] = {STORE_KEYS_FILE, STORE_OUTBOX_FILE, STORE_META_FILE,
                                       STORE_RAFT_FILE};
/* db_files' index of raft.db, the one database a format-2 directory lacks. */
#define RAFT_DB_INDEX 3
#define N_DB_FILES (sizeof(db_files) / sizeof(db_files[0]))

struct cw_store {
    DB_ENV *env;
    DB *keys;
    DB *outbox;
    DB *meta;
    DB *raft;
    int lock_fd;
    enum cw_durability durability;
    struct cw_store_stats stats;
    uint64_t cache_bytes;        /* Berkeley DB's cache (store_cache_bytes) */
    struct cw_store_identity id; /* as on disk */
    bool created;                /* this open created the databases */
    bool upgraded;               /* this open upgraded a format-2 directory */
    /* The messages Berkeley DB gave through its error callback since the current
     * operation began (bdb_reset): they say more than the return code, and the
     * first is usually the cause while the last is what it led to ("unable to
     * find environment"). Consecutive repeats are kept once. */
    char bdb_first[STORE_BDB_FIRST][STORE_BDB_MSG_MAX];
    char bdb_last[STORE_BDB_MSG_MAX];
    unsigned bdb_count;
    /* Where a record is framed (checksum + blob) before Berkeley DB copies it. */
    uint8_t *scratch;
    size_t scratch_cap;
    char errmsg[STORE_ERR_MAX];
    /* The last read through the store reader that failed (reads and commits
     * interleave, so it has its own buffer). */
    char read_errmsg[STORE_ERR_MAX];
    /* What bdb_advice last wrote (it names the directory). */
    char advice[STORE_ADVICE_MAX];
    /* Set by Berkeley DB's DB_EVENT_PANIC: the environment is dead until the
     * next start runs recovery. Every call after it fails. */
    bool panicked;
    /* The cause of the first resource failure seen (disk full, descriptors, I/O
     * error, memory): after a panic Berkeley DB only says "run recovery", and
     * this keeps what led to it. */
    enum cw_store_cause first_cause;
    char first_cause_msg[STORE_BDB_MSG_MAX]; /* the message that named it */
    char panic_msg[4096 + STORE_BDB_MSG_MAX + STORE_ADVICE_MAX + 64]; /* cw_store_panic_msg's */
    /* The cause of the last failed commit and of the last failed read. */
    enum cw_store_cause commit_cause;
    enum cw_store_cause read_cause;
    /* Checkpoints failed in a row since the last good one. */
    uint64_t checkpoints_failing;
    char dir[4096];
    uint64_t since_ckp_ask; /* record bytes committed since the last checkpoint call */
    uint32_t ckp_kbytes;    /* log between checkpoints (cw_store_set_checkpoint_bytes) */
    uint32_t ckp_ask_bytes; /* records between two questions whether one is due */
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

static void bdb_reset(struct cw_store *s)
{
    s->bdb_count = 0;
    s->bdb_last[0] = '\0';
}

/* The message kept last, or NULL when there is none. */
static const char *bdb_latest(const struct cw_store *s)
{
    if (s->bdb_count == 0)
        return NULL;
    return s->bdb_count <= STORE_BDB_FIRST ? s->bdb_first[s->bdb_count - 1] : s->bdb_last;
}

/* The resource a Berkeley DB message names, by strerror's words. */
static enum cw_store_cause cause_in(const char *m)
{
    if (strstr(m, "No space left on device") != NULL || strstr(m, "Disk quota exceeded") != NULL)
        return CW_STORE_CAUSE_NOSPACE;
    if (strstr(m, "Too many open files") != NULL)
        return CW_STORE_CAUSE_NOFILES;
    if (strstr(m, "Input/output error") != NULL)
        return CW_STORE_CAUSE_IO;
    if (strstr(m, "Cannot allocate memory") != NULL)
        return CW_STORE_CAUSE_NOMEM;
    return CW_STORE_CAUSE_OTHER;
}

static void on_bdb_error(const DB_ENV *env, const char *prefix, const char *msg)
{
    (void)prefix;
    struct cw_store *s = env->app_private;
    if (s == NULL || msg == NULL)
        return;
    char m[STORE_BDB_MSG_MAX];
    snprintf(m, sizeof(m), "%s", msg);
    for (char *c = m; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' '; /* one line */
    const char *prev = bdb_latest(s);
    if (prev != NULL && strcmp(prev, m) == 0)
        return; /* a panic repeats "fatal region error detected" for every call */
    /* A resource failure can surface inside an operation that Berkeley DB
     * does not fail (a log file opened for a checkpoint's read, say) and
     * panic the environment; the next operation then only says "run
     * recovery". The cause is kept from the message itself. */
    if (s->first_cause == CW_STORE_CAUSE_NONE) {
        enum cw_store_cause c = cause_in(m);
        if (c != CW_STORE_CAUSE_OTHER) {
            s->first_cause = c;
            snprintf(s->first_cause_msg, sizeof(s->first_cause_msg), "%s", m);
        }
    }
    char *slot = s->bdb_count < STORE_BDB_FIRST ? s->bdb_first[s->bdb_count] : s->bdb_last;
    memcpy(slot, m, sizeof(m));
    if (s->bdb_count < UINT_MAX)
        s->bdb_count++;
}

/* Whether Berkeley DB said something containing needle during this operation. */
static bool bdb_said(const struct cw_store *s, const char *needle)
{
    unsigned kept = s->bdb_count < STORE_BDB_FIRST ? s->bdb_count : STORE_BDB_FIRST;
    for (unsigned i = 0; i < kept; i++)
        if (strstr(s->bdb_first[i], needle) != NULL)
            return true;
    return s->bdb_count > STORE_BDB_FIRST && strstr(s->bdb_last, needle) != NULL;
}

/* Appends to buf[0..len) at *o, cutting at the end of buf. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t len, size_t *o,
                                                         const char *fmt, ...)
{
    if (*o >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *o, len - *o, fmt, ap);
    va_end(ap);
    if (n > 0)
        *o += (size_t)n < len - *o ? (size_t)n : len - *o - 1;
}

/* Every message Berkeley DB gave in this operation ("; "-joined: the first
 * STORE_BDB_FIRST, a count of those left out, the last), then db_strerror(ret)
 * in brackets; just db_strerror(ret) when it said nothing. Writes into buf and
 * returns it. */
static const char *bdb_reason(const struct cw_store *s, int ret, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    if (s->bdb_count == 0) {
        append(buf, len, &o, "%s", db_strerror(ret));
        goto earlier;
    }
    unsigned kept = s->bdb_count < STORE_BDB_FIRST ? s->bdb_count : STORE_BDB_FIRST;
    for (unsigned i = 0; i < kept; i++)
        append(buf, len, &o, "%s%s", i ? "; " : "", s->bdb_first[i]);
    if (s->bdb_count > STORE_BDB_FIRST + 1)
        append(buf, len, &o, "; (%u more)", s->bdb_count - STORE_BDB_FIRST - 1);
    if (s->bdb_count > STORE_BDB_FIRST)
        append(buf, len, &o, "; %s", s->bdb_last);
    append(buf, len, &o, " [%s]", db_strerror(ret));
earlier:
    /* After a panic the cause was said by an earlier operation. */
    if ((s->panicked || ret == DB_RUNRECOVERY) && s->first_cause_msg[0] != '\0' &&
        !bdb_said(s, s->first_cause_msg))
        append(buf, len, &o, "; earlier: %s", s->first_cause_msg);
    return buf;
}

/* The enum cw_err for a Berkeley DB failure: damaged data is CW_ECORRUPT. */
static int bdb_code(const struct cw_store *s, int ret)
{
    if (ret == DB_VERIFY_BAD || bdb_said(s, "checksum error") ||
        bdb_said(s, "unexpected file type") || bdb_said(s, "past end of log") ||
        bdb_said(s, "past current end-of-log"))
        return CW_ECORRUPT;
    if (ret == ENOMEM)
        return CW_ENOMEM;
    return CW_ESTORE;
}

/* The resource behind a Berkeley DB failure, from its return code or, when it
 * wrapped the system error (DB_RUNRECOVERY after a failed log write), from the
 * messages it gave: strerror's words for each errno. */
static enum cw_store_cause bdb_cause_now(const struct cw_store *s, int ret)
{
    if (ret == ENOSPC || ret == EDQUOT || bdb_said(s, "No space left on device") ||
        bdb_said(s, "Disk quota exceeded"))
        return CW_STORE_CAUSE_NOSPACE;
    if (ret == EMFILE || ret == ENFILE || bdb_said(s, "Too many open files"))
        return CW_STORE_CAUSE_NOFILES;
    if (ret == EIO || bdb_said(s, "Input/output error"))
        return CW_STORE_CAUSE_IO;
    if (ret == ENOMEM || bdb_said(s, "Cannot allocate memory"))
        return CW_STORE_CAUSE_NOMEM;
    return CW_STORE_CAUSE_OTHER;
}

/* bdb_cause_now, remembered: the first resource cause sticks, and a later
 * failure that says no more than "run recovery" is put down to it. */
static enum cw_store_cause bdb_cause(struct cw_store *s, int ret)
{
    enum cw_store_cause c = bdb_cause_now(s, ret);
    if (c != CW_STORE_CAUSE_OTHER) {
        if (s->first_cause == CW_STORE_CAUSE_NONE)
            s->first_cause = c;
        return c;
    }
    if ((s->panicked || ret == DB_RUNRECOVERY) && s->first_cause != CW_STORE_CAUSE_NONE)
        return s->first_cause;
    return c;
}

/* What the operator should do about a Berkeley DB failure, by its cause; a
 * sentence naming the directory, in s->advice (valid until the next call). */
static const char *bdb_advice(struct cw_store *s, int ret)
{
    bool panic = s->panicked || ret == DB_RUNRECOVERY;
    const char *restart = panic ? "then start the region again: recovery runs at the next start "
                                  "and brings back every committed write"
                                : "then start the region again: it recovers from its log";
    switch (bdb_cause(s, ret)) {
    case CW_STORE_CAUSE_NOSPACE:
        snprintf(s->advice, sizeof(s->advice),
                 "No space left on device: free space on the filesystem holding %s, %s", s->dir,
                 restart);
        return s->advice;
    case CW_STORE_CAUSE_NOFILES:
        snprintf(s->advice, sizeof(s->advice),
                 "too many open files: raise the open-file limit (ulimit -n, LimitNOFILE= in a "
                 "systemd unit) or find what holds the descriptors, %s",
                 restart);
        return s->advice;
    case CW_STORE_CAUSE_IO:
        snprintf(s->advice, sizeof(s->advice),
                 "the disk reported an I/O error: check the device holding %s, and restore the "
                 "directory from a backup if its files are damaged (%s); %s",
                 s->dir, STORE_SEE_DAMAGE, restart);
        return s->advice;
    case CW_STORE_CAUSE_NOMEM:
        snprintf(s->advice, sizeof(s->advice), "out of memory: free memory on this host, %s",
                 restart);
        return s->advice;
    default:
        break;
    }
    if (ret == EACCES || ret == EPERM || ret == EROFS || bdb_said(s, "Permission denied") ||
        bdb_said(s, "Read-only file system"))
        snprintf(s->advice, sizeof(s->advice),
                 "check that %s and its files are writable by this user", s->dir);
    else if (bdb_code(s, ret) == CW_ECORRUPT)
        snprintf(s->advice, sizeof(s->advice),
                 "the data directory %s is damaged: restore it from a backup (%s)", s->dir,
                 STORE_SEE_DAMAGE);
    else if (panic)
        snprintf(s->advice, sizeof(s->advice),
                 "Berkeley DB stopped the environment in %s (panic): %s; if the next start "
                 "fails, the directory is damaged (%s)",
                 s->dir, restart, STORE_SEE_DAMAGE);
    else
        snprintf(s->advice, sizeof(s->advice), "check the data directory %s and its disk (%s)",
                 s->dir, STORE_SEE_DAMAGE);
    return s->advice;
}

/* The longest Berkeley DB may pause the (single) thread in one wait. */
#define STORE_YIELD_MAX_US 100000u

/*
 * Berkeley DB's pause between attempts. When an open fails with EMFILE, ENFILE
 * or ENOSPC it tries twice more, waiting 2 s and then 4 s (os/os_handle.c),
 * which would stall the daemon's only thread with every client waiting, for
 * every file it opens (a checkpoint opens log files to read them). The failure
 * is better reported at once: waits are cut to STORE_YIELD_MAX_US. The short
 * waits of its mutex back-off pass unchanged.
 */
static int store_yield(u_long secs, u_long usecs)
{
    uint64_t us = (uint64_t)secs * 1000000u + usecs;
    if (us > STORE_YIELD_MAX_US)
        us = STORE_YIELD_MAX_US;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(us * 1000u)};
    if (us == 0)
        ts.tv_nsec = 1000; /* a yield: the shortest sleep */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

/* Berkeley DB's events: a panic marks the store dead (see cw_store_panicked). */
static void on_bdb_event(DB_ENV *env, u_int32_t event, void *info)
{
    (void)info;
    struct cw_store *s = env->app_private;
    if (s != NULL && event == DB_EVENT_PANIC)
        s->panicked = true;
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

/* ------------------------------------------------------------- checksums */

/* CRC32C, reflected polynomial 0x82f63b78, one byte at a time. */
/* clang-format off */
static const uint32_t crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu,
    0x26a1e7e8u, 0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu,
    0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu,
    0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu,
    0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au,
    0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
    0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu,
    0x1642ae59u, 0xe4292d5au, 0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
    0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu,
    0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu,
    0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu,
    0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu,
    0x4767748au, 0xb50cf789u, 0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u,
    0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u, 0x7198540du, 0x83f3d70eu,
    0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
    0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu,
    0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u,
    0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu,
    0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu,
    0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u, 0x502036a5u,
    0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u,
    0x0e330a81u, 0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
    0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u,
    0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u,
    0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu,
    0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u,
    0x7fab5e8cu, 0x8dc0dd8fu, 0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu,
    0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u,
    0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u,
    0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};
/* clang-format on */

uint32_t cw_store_crc32c_table(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    crc = ~crc;
    while (n-- > 0)
        crc = crc32c_table[(crc ^ *b++) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The same CRC with SSE4.2's crc32 instruction, eight bytes at a time: the
 * store checksums every value it writes and reads, and one byte at a time that
 * was a fifth of the daemon's time under 8 KiB puts (docs/benchmarks.md). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *p,
                                                                size_t n)
{
    const uint8_t *b = p;
    uint64_t c = ~crc & 0xffffffffu;
    while (n > 0 && ((uintptr_t)b & 7u) != 0) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, sizeof(w));
        c = __builtin_ia32_crc32di(c, w);
        b += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
    return ~(uint32_t)c;
}

uint32_t cw_store_crc32c(uint32_t crc, const void *p, size_t n)
{
    /* A load and a test: libgcc fills in the CPU model before main. */
    return __builtin_cpu_supports("sse4.2") ? crc32c_sse42(crc, p, n)
                                            : cw_store_crc32c_table(crc, p, n);
}
#else
uint32_t cw_store_crc32c(uint32_t crc, const void *p, size_t n)
{
    return cw_store_crc32c_table(crc, p, n);
}
#endif

static uint32_t record_crc(const void *key, size_t key_len, const void *blob, size_t len)
{
    return cw_store_crc32c(cw_store_crc32c(0, key, key_len), blob, len);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void dbt_set(DBT *d, const void *data, uint32_t len)
{
    memset(d, 0, sizeof(*d));
    d->data = (void *)(uintptr_t)data; /* Berkeley DB does not write through it */
    d->size = len;
}

/* Frames blob for key k as the record stored on disk (checksum, then the blob)
 * in s->scratch and points d at it. Returns CW_OK, CW_ETOOBIG or CW_ENOMEM. The
 * frame is valid until the next call: Berkeley DB copies it at put. */
static int frame(struct cw_store *s, const DBT *k, const void *blob, uint32_t len, DBT *d)
{
    if (len > UINT32_MAX - STORE_CRC_BYTES)
        return CW_ETOOBIG;
    size_t need = (size_t)len + STORE_CRC_BYTES;
    if (need > s->scratch_cap) {
        size_t cap = s->scratch_cap > 0 ? s->scratch_cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *p = realloc(s->scratch, cap);
        if (p == NULL)
            return CW_ENOMEM;
        s->scratch = p;
        s->scratch_cap = cap;
    }
    put_be32(s->scratch, record_crc(k->data, k->size, blob, len));
    if (len > 0)
        memcpy(s->scratch + STORE_CRC_BYTES, blob, len);
    dbt_set(d, s->scratch, (uint32_t)need);
    return CW_OK;
}

/* Checks the stored record d under key k. Returns true and the blob in
 * blob and len when its checksum matches; false otherwise, with the stored and
 * computed checksums (0 when the record is too short to hold one). */
static bool unframe(const DBT *k, const DBT *d, const uint8_t **blob, uint32_t *len,
                    uint32_t *stored, uint32_t *computed)
{
    *stored = *computed = 0;
    if (d->size < STORE_CRC_BYTES || d->data == NULL)
        return false;
    const uint8_t *p = d->data;
    *stored = get_be32(p);
    *computed = record_crc(k->data, k->size, p + STORE_CRC_BYTES, d->size - STORE_CRC_BYTES);
    if (*stored != *computed)
        return false;
    *blob = p + STORE_CRC_BYTES;
    *len = d->size - STORE_CRC_BYTES;
    return true;
}

/* ------------------------------------------------------------- identity */

static bool identity_name_ok(const char *name, size_t max)
{
    size_t n = strnlen(name, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7e)
            return false;
    return true;
}

/* Whether s is 1..max_len characters, each a digit of base 10 or 16. */
static bool all_digits(const char *s, size_t max_len, bool hex)
{
    size_t n = strlen(s);
    if (n == 0 || n > max_len)
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= '0' && *s <= '9') || (hex && *s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* The identity record's text (see store.h). Returns its length (< len). */
static size_t identity_encode(const struct cw_store_identity *id, char *buf, size_t len)
{
    char created[32] = "unknown";
    time_t now = time(NULL);
    struct tm tm;
    if (now != (time_t)-1 && gmtime_r(&now, &tm) != NULL)
        strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(buf, len,
                     "format %d\ncluster %s\nregion %s\nincarnation %016" PRIx64 "\ncreated %s\n",
                     STORE_FORMAT, id->cluster, id->region, id->incarnation, created);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* Parses an identity record's text (of this format or the one open upgrades,
 * which share the layout). Returns CW_OK with *format set; CW_EVERSION with
 * *format set when it is of another format; CW_ECORRUPT when it is malformed. */
static int identity_decode(const uint8_t *p, size_t n, struct cw_store_identity *out,
                           unsigned long *format)
{
    char text[STORE_IDENTITY_MAX + 1];
    memset(out, 0, sizeof(*out));
    *format = 0;
    if (n == 0 || n > STORE_IDENTITY_MAX || memchr(p, '\0', n) != NULL)
        return CW_ECORRUPT;
    memcpy(text, p, n);
    text[n] = '\0';
    bool seen_cluster = false, seen_region = false, seen_inc = false, seen_created = false;
    char *save = NULL;
    unsigned line = 0;
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(l, ' ');
        if (sp == NULL)
            return CW_ECORRUPT;
        *sp = '\0';
        const char *v = sp + 1;
        if (line++ == 0) {
            /* The format comes first, so another format's layout need not parse. */
            if (strcmp(l, "format") != 0 || !all_digits(v, 9, false))
                return CW_ECORRUPT;
            *format = strtoul(v, NULL, 10);
            if (*format != STORE_FORMAT && *format != STORE_FORMAT_UPGRADABLE)
                return CW_EVERSION;
        } else if (strcmp(l, "cluster") == 0 && !seen_cluster &&
                   identity_name_ok(v, CW_STORE_CLUSTER_MAX)) {
            memcpy(out->cluster, v, strlen(v) + 1);
            seen_cluster = true;
        } else if (strcmp(l, "region") == 0 && !seen_region &&
                   identity_name_ok(v, CW_STORE_REGION_MAX)) {
            memcpy(out->region, v, strlen(v) + 1);
            seen_region = true;
        } else if (strcmp(l, "incarnation") == 0 && !seen_inc && strlen(v) == 16 &&
                   all_digits(v, 16, true)) {
            out->incarnation = (uint64_t)strtoull(v, NULL, 16);
            seen_inc = true;
        } else if (strcmp(l, "created") == 0 && !seen_created) {
            seen_created = true; /* for people reading the record */
        } else {
            return CW_ECORRUPT;
        }
    }
    return seen_cluster && seen_region && seen_inc && seen_created ? CW_OK : CW_ECORRUPT;
}

/* ------------------------------------------------------------ open/close */

/* Which of the databases, and whether any log file, a directory holds. */
struct dir_scan {
    bool db[N_DB_FILES];
    unsigned n_db;
    bool logs;
};

static bool is_log_file(const char *name)
{
    /* Berkeley DB names its log files log.NNNNNNNNNN. */
    if (strncmp(name, "log.", 4) != 0 || strlen(name) != 14)
        return false;
    for (const char *c = name + 4; *c != '\0'; c++)
        if (*c < '0' || *c > '9')
            return false;
    return true;
}

/* Lists dir. Returns 0, or -1 with errno set. */
static int scan_dir(const char *dir, struct dir_scan *out)
{
    memset(out, 0, sizeof(*out));
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        for (size_t i = 0; i < N_DB_FILES; i++) {
            if (strcmp(e->d_name, db_files[i]) == 0 && !out->db[i]) {
                out->db[i] = true;
                out->n_db++;
            }
        }
        if (is_log_file(e->d_name))
            out->logs = true;
    }
    int e_read = errno;
    closedir(d);
    if (e_read != 0) {
        errno = e_read;
        return -1;
    }
    return 0;
}

/* The databases of sc present (want true) or absent (want false), as
 * "keys.db and meta.db". */
static const char *list_files(const struct dir_scan *sc, bool want, char *buf, size_t len)
{
    size_t o = 0, n = 0, total = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_DB_FILES; i++)
        total += sc->db[i] == want;
    for (size_t i = 0; i < N_DB_FILES; i++) {
        if (sc->db[i] != want)
            continue;
        n++;
        append(buf, len, &o, "%s%s", n == 1 ? "" : n == total ? " and " : ", ", db_files[i]);
    }
    return buf;
}

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

/* Opens file as a B-tree with page checksums: inside txn and creating it (it must
 * not exist yet) when txn is not NULL, else an existing file in a transaction of
 * its own. */
static int open_db(struct cw_store *s, DB **out, const char *file, DB_TXN *txn, char *err,
                   size_t err_len)
{
    char why[STORE_WHY_MAX];
    DB *db = NULL;
    int ret = db_create(&db, s->env, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot create a Berkeley DB handle for %s: %s", file,
                bdb_reason(s, ret, why, sizeof(why)));
        return CW_ESTORE;
    }
    /* Before open: it takes effect when the file is created, and is then recorded
     * in the file (an existing file keeps what it was created with). */
    ret = db->set_flags(db, DB_CHKSUM);
    /* The outbox is a queue: records are appended at its end and deleted soon
     * after. A record too big for its page goes to overflow pages, and freeing
     * overflow pages at the end of the file makes Berkeley DB truncate the file
     * and flush (fsync) its log first: a sync per round even under write_nosync,
     * which made 8 KiB puts five times slower (docs/benchmarks.md). With 64 KiB
     * pages a record up to about 16 KiB stays on its page. Only a new file gets
     * it; an existing one keeps the page size it was created with. */
    if (ret == 0 && txn != NULL && strcmp(file, STORE_OUTBOX_FILE) == 0)
        ret = db->set_pagesize(db, STORE_OUTBOX_PAGE_BYTES);
    if (ret == 0) {
        /* DB_AUTO_COMMIT or the creating transaction: a crash during the first
         * start leaves either no database or a whole one. Never DB_CREATE on an
         * existing directory: a missing file there is refused, not replaced. */
        u_int32_t flags = txn != NULL ? DB_CREATE | DB_EXCL : DB_AUTO_COMMIT;
        ret = db->open(db, txn, file, NULL, DB_BTREE, flags, 0600);
    }
    if (ret != 0) {
        set_err(err, err_len, "cannot open database %s in %s: %s; %s", file, s->dir,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        int rc = bdb_code(s, ret);
        db->close(db, 0); /* a handle whose open failed must still be closed */
        return rc;
    }
    *out = db;
    return CW_OK;
}

static int open_env(struct cw_store *s, char *err, size_t err_len)
{
    char why[STORE_WHY_MAX];
    DB_ENV *env = NULL;
    /* Process-wide, and the same for every store: set before the first. */
    (void)db_env_set_func_yield(store_yield);
    int ret = db_env_create(&env, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot create a Berkeley DB environment handle: %s",
                db_strerror(ret));
        return CW_ESTORE;
    }
    env->app_private = s;
    env->set_errcall(env, on_bdb_error);
    (void)env->set_event_notify(env, on_bdb_event);
    const char *what = "set the cache size";
    uint64_t cache = s->cache_bytes ? s->cache_bytes : STORE_CACHE_BYTES;
    if ((ret = env->set_cachesize(env, (u_int32_t)(cache >> 30),
                                  (u_int32_t)(cache & ((1u << 30) - 1)), 1)) != 0)
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
     * DB_CREATE creates the environment (in memory) and the log, not databases.
     * No DB_THREAD: the daemon uses the store from one thread. */
    u_int32_t flags = DB_CREATE | DB_PRIVATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
                      DB_INIT_MPOOL | DB_RECOVER;
    ret = env->open(env, s->dir, flags, 0600);
    if (ret != 0) {
        /* Recovery reads the log and every database it names, so this is where a
         * truncated file, a damaged log or a full disk shows first. */
        set_err(err, err_len, "cannot open the Berkeley DB environment in %s (recovery): %s; %s",
                s->dir, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        int rc = bdb_code(s, ret);
        env->close(env, 0); /* a handle whose open failed must still be closed */
        return rc;
    }
    s->env = env;
    return CW_OK;

err_after_env_create:
    set_err(err, err_len, "cannot %s of the Berkeley DB environment in %s: %s", what, s->dir,
            bdb_reason(s, ret, why, sizeof(why)));
    env->close(env, 0);
    return CW_ESTORE;
}

static DB **db_slot(struct cw_store *s, size_t i)
{
    return i == 0 ? &s->keys : i == 1 ? &s->outbox : i == 2 ? &s->meta : &s->raft;
}

/* Closes whichever databases are open. */
static void close_dbs(struct cw_store *s)
{
    for (size_t i = N_DB_FILES; i-- > 0;) {
        DB **db = db_slot(s, i);
        if (*db != NULL)
            (*db)->close(*db, 0);
        *db = NULL;
    }
}

/* A new directory: the three databases and the identity record, in one
 * transaction flushed to disk whatever the durability, then a checkpoint so
 * the next start need not replay the creation. */
static int create_dbs(struct cw_store *s, const struct cw_store_identity *want, char *err,
                      size_t err_len)
{
    char why[STORE_WHY_MAX];
    s->id = *want;
    if (getrandom(&s->id.incarnation, sizeof(s->id.incarnation), 0) !=
        (ssize_t)sizeof(s->id.incarnation)) {
        set_err(err, err_len, "cannot draw an incarnation id for the new data directory %s: %s",
                s->dir, strerror(errno));
        return CW_EIO;
    }
    DB_TXN *txn = NULL;
    int ret = s->env->txn_begin(s->env, NULL, &txn, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot begin a transaction in %s: %s; %s", s->dir,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
    }
    int rc = CW_OK;
    for (size_t i = 0; i < N_DB_FILES && rc == CW_OK; i++)
        rc = open_db(s, db_slot(s, i), db_files[i], txn, err, err_len);
    if (rc != CW_OK)
        goto err_after_txn;
    char text[STORE_IDENTITY_MAX + 1];
    size_t n = identity_encode(&s->id, text, sizeof(text));
    DBT k, d;
    dbt_set(&k, STORE_IDENTITY_KEY, sizeof(STORE_IDENTITY_KEY) - 1);
    rc = frame(s, &k, text, (uint32_t)n, &d);
    if (rc != CW_OK) {
        set_err(err, err_len, "out of memory creating %s", s->dir);
        goto err_after_txn;
    }
    ret = s->meta->put(s->meta, txn, &k, &d, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot write the identity record to %s/%s: %s; %s", s->dir,
                STORE_META_FILE, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        rc = bdb_code(s, ret);
        goto err_after_txn;
    }
    ret = txn->commit(txn, DB_TXN_SYNC);
    txn = NULL; /* gone whatever commit returned */
    if (ret == 0)
        ret = s->env->txn_checkpoint(s->env, 0, 0, DB_FORCE);
    if (ret != 0) {
        set_err(err, err_len, "cannot create the data directory %s: %s; %s", s->dir,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        rc = bdb_code(s, ret);
        close_dbs(s);
        return rc;
    }
    s->created = true;
    return CW_OK;

err_after_txn:
    /* The abort undoes the files' creation; their handles must still be closed. */
    (void)txn->abort(txn);
    close_dbs(s);
    return rc;
}

/*
 * Reads every page of db through the cache: Berkeley DB verifies each page's
 * checksum as it comes in, and each page's log sequence number must lie before
 * the end of the log. One past it means the log lost records that the page
 * already reflects (log files truncated or removed, or the file copied from
 * another directory): recovery could not undo or redo them, and the first write
 * to that page would fail with "past end of log". Found here, it is refused at
 * start, before anything is served.
 */
static int check_pages(struct cw_store *s, DB *db, const char *file, const DB_LSN *end, char *err,
                       size_t err_len)
{
    char why[STORE_WHY_MAX];
    DB_MPOOLFILE *mpf = db->get_mpf(db);
    db_pgno_t last = 0;
    int ret = mpf->get_last_pgno(mpf, &last);
    for (db_pgno_t pg = 0; ret == 0; pg++) {
        db_pgno_t pgno = pg;
        void *page = NULL;
        ret = mpf->get(mpf, &pgno, NULL, 0, &page);
        if (ret != 0) {
            set_err(err, err_len, "reading page %lu of %s/%s failed: %s; %s", (unsigned long)pg,
                    s->dir, file, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
            return bdb_code(s, ret);
        }
        DB_LSN lsn; /* every page starts with its LSN */
        memcpy(&lsn, page, sizeof(lsn));
        (void)mpf->put(mpf, page, DB_PRIORITY_VERY_LOW, 0);
        if (log_compare(&lsn, end) >= 0) {
            set_err(err, err_len,
                    "%s/%s: page %lu has log sequence number %lu/%lu, past end of log at "
                    "%lu/%lu: log files were truncated or removed, or the file comes from "
                    "another directory; restore the whole data directory from a backup (%s)",
                    s->dir, file, (unsigned long)pg, (unsigned long)lsn.file,
                    (unsigned long)lsn.offset, (unsigned long)end->file, (unsigned long)end->offset,
                    STORE_SEE_DAMAGE);
            return CW_ECORRUPT;
        }
        if (pg == last)
            return CW_OK;
    }
    set_err(err, err_len, "cannot size %s/%s: %s; %s", s->dir, file,
            bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
    return bdb_code(s, ret);
}

/* Reads and checks the identity record against want. */
static int check_identity(struct cw_store *s, const struct cw_store_identity *want,
                          unsigned long *format_out, char *err, size_t err_len)
{
    char why[STORE_WHY_MAX];
    DBT k, d;
    dbt_set(&k, STORE_IDENTITY_KEY, sizeof(STORE_IDENTITY_KEY) - 1);
    memset(&d, 0, sizeof(d));
    int ret = s->meta->get(s->meta, NULL, &k, &d, 0);
    if (ret == DB_NOTFOUND) {
        set_err(err, err_len,
                "the data directory %s has no identity record in %s: it was written by a "
                "causeway older than store format %d (which this build does not read), or "
                "%s is damaged; restore a backup of this region's directory, or, if the whole "
                "cluster ran the older version, move every region's directory aside and "
                "start the cluster empty (%s)",
                s->dir, STORE_META_FILE, STORE_FORMAT_FIRST_IDENTITY, STORE_META_FILE,
                STORE_SEE_DOCS);
        return CW_ECORRUPT;
    }
    if (ret != 0) {
        set_err(err, err_len, "cannot read the identity record from %s/%s: %s; %s", s->dir,
                STORE_META_FILE, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
    }
    const uint8_t *blob = NULL;
    uint32_t len = 0, stored, computed;
    if (!unframe(&k, &d, &blob, &len, &stored, &computed)) {
        set_err(err, err_len,
                "%s/%s: the identity record fails its checksum (stored %08" PRIx32
                ", computed %08" PRIx32 "): the file is damaged; restore the data directory "
                "from a backup (%s)",
                s->dir, STORE_META_FILE, stored, computed, STORE_SEE_DAMAGE);
        return CW_ECORRUPT;
    }
    unsigned long format = 0;
    int rc = identity_decode(blob, len, &s->id, &format);
    if (rc == CW_EVERSION) {
        set_err(err, err_len,
                "the data directory %s is in store format %lu; this causeway reads format %d "
                "(and upgrades format %d) only: run the causeway release that wrote it, or "
                "restore a backup made by this one (%s)",
                s->dir, format, STORE_FORMAT, STORE_FORMAT_UPGRADABLE, STORE_SEE_DOCS);
        return rc;
    }
    if (rc != CW_OK) {
        set_err(err, err_len,
                "%s/%s: the identity record is malformed: the file is damaged or not a "
                "causeway store; restore the data directory from a backup (%s)",
                s->dir, STORE_META_FILE, STORE_SEE_DAMAGE);
        return rc;
    }
    if (strcmp(s->id.cluster, want->cluster) != 0) {
        set_err(err, err_len,
                "the data directory %s belongs to cluster \"%s\", not this one (\"%s\"; a "
                "cluster is named by its regions in config order): data_dir points at another "
                "cluster's data, or the config's [region] sections were added, removed, renamed "
                "or reordered since the directory was created, which is not supported; fix the "
                "config or data_dir (%s)",
                s->dir, s->id.cluster, want->cluster, STORE_SEE_DOCS);
        return CW_ECONFIG;
    }
    if (strcmp(s->id.region, want->region) != 0) {
        set_err(err, err_len,
                "the data directory %s belongs to region %s, not %s: data_dir points at another "
                "region's data (or a copy of it); fix data_dir in the config or put region %s's "
                "own directory back, never start a region on another's data (%s)",
                s->dir, s->id.region, want->region, want->region, STORE_SEE_DOCS);
        return CW_ECONFIG;
    }
    *format_out = format;
    return CW_OK;
}

/*
 * Upgrades a directory of store format 2 (before strong buckets) to format 3:
 * creates raft.db, empty (format 2 had no Raft state, so empty is exactly its
 * state), and rewrites the identity's format line, keeping the rest of the
 * identity (incarnation, creation time), in one transaction flushed to disk. A
 * crash during it leaves the format-2 directory, which the next open upgrades.
 */
static int upgrade_format2(struct cw_store *s, char *err, size_t err_len)
{
    char why[STORE_WHY_MAX];
    DBT k, d;
    dbt_set(&k, STORE_IDENTITY_KEY, sizeof(STORE_IDENTITY_KEY) - 1);
    memset(&d, 0, sizeof(d));
    int ret = s->meta->get(s->meta, NULL, &k, &d, 0);
    const uint8_t *blob = NULL;
    uint32_t len = 0, stored, computed;
    static const char old_line[] = "format 2\n", new_line[] = "format 3\n";
    _Static_assert(STORE_FORMAT == 3 && STORE_FORMAT_UPGRADABLE == 2, "the format lines below");
    if (ret != 0 || !unframe(&k, &d, &blob, &len, &stored, &computed) ||
        len < sizeof(old_line) - 1 || len > STORE_IDENTITY_MAX ||
        memcmp(blob, old_line, sizeof(old_line) - 1) != 0) {
        /* check_identity read this record a moment ago. */
        set_err(err, err_len, "cannot read back the identity record of %s/%s to upgrade it", s->dir,
                STORE_META_FILE);
        return CW_ESTORE;
    }
    char text[STORE_IDENTITY_MAX];
    memcpy(text, blob, len);
    memcpy(text, new_line, sizeof(new_line) - 1);
    DB_TXN *txn = NULL;
    ret = s->env->txn_begin(s->env, NULL, &txn, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot begin a transaction in %s: %s; %s", s->dir,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
    }
    int rc = open_db(s, &s->raft, STORE_RAFT_FILE, txn, err, err_len);
    if (rc != CW_OK)
        goto err_after_txn;
    rc = frame(s, &k, text, len, &d);
    if (rc != CW_OK) {
        set_err(err, err_len, "out of memory upgrading %s", s->dir);
        goto err_after_txn;
    }
    ret = s->meta->put(s->meta, txn, &k, &d, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot rewrite the identity record of %s/%s: %s; %s", s->dir,
                STORE_META_FILE, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        rc = bdb_code(s, ret);
        goto err_after_txn;
    }
    ret = txn->commit(txn, DB_TXN_SYNC);
    txn = NULL;
    if (ret == 0)
        ret = s->env->txn_checkpoint(s->env, 0, 0, DB_FORCE);
    if (ret != 0) {
        set_err(err, err_len, "cannot upgrade the data directory %s to store format %d: %s; %s",
                s->dir, STORE_FORMAT, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
    }
    s->upgraded = true;
    return CW_OK;

err_after_txn:
    /* The abort undoes raft.db's creation; its handle must still be closed. */
    (void)txn->abort(txn);
    if (s->raft != NULL)
        s->raft->close(s->raft, 0);
    s->raft = NULL;
    return rc;
}

/* An existing directory, recovered: every database there, opened without
 * creating anything, the identity matching, and every page sound. */
static int open_existing(struct cw_store *s, const struct cw_store_identity *want, char *err,
                         size_t err_len)
{
    char why[STORE_WHY_MAX];
    /* Look again after recovery, which redoes or undoes file creations. */
    struct dir_scan sc;
    if (scan_dir(s->dir, &sc) != 0) {
        set_err(err, err_len, "cannot list the data directory %s: %s", s->dir, strerror(errno));
        return CW_EIO;
    }
    if (sc.n_db == 0) {
        set_err(err, err_len,
                "the data directory %s holds Berkeley DB log files but none of %s, %s, %s: its "
                "databases were deleted, or the node stopped while creating the directory; "
                "restore it from a backup or, if this region never held data, remove the "
                "directory and start the node again (%s)",
                s->dir, STORE_KEYS_FILE, STORE_OUTBOX_FILE, STORE_META_FILE, STORE_SEE_DOCS);
        return CW_ECORRUPT;
    }
    /* Only raft.db missing: a directory of format 2 (upgraded below), or a
     * format-3 one that lost it (refused below, once the identity says which). */
    bool raft_missing = sc.n_db == N_DB_FILES - 1 && !sc.db[RAFT_DB_INDEX];
    if (sc.n_db < N_DB_FILES && !raft_missing) {
        char missing[64], present[64];
        unsigned n_missing = (unsigned)(N_DB_FILES - sc.n_db);
        set_err(err, err_len,
                "the data directory %s is incomplete: %s %s missing while %s %s there; the "
                "node will not serve part of its region's data: restore the whole directory "
                "from a backup, and do not create or delete single files in it (%s)",
                s->dir, list_files(&sc, false, missing, sizeof(missing)),
                n_missing == 1 ? "is" : "are", list_files(&sc, true, present, sizeof(present)),
                sc.n_db == 1 ? "is" : "are", STORE_SEE_DOCS);
        return CW_ECORRUPT;
    }
    int rc = CW_OK;
    for (size_t i = 0; i < N_DB_FILES && rc == CW_OK; i++)
        if (!(raft_missing && i == RAFT_DB_INDEX))
            rc = open_db(s, db_slot(s, i), db_files[i], NULL, err, err_len);
    unsigned long format = 0;
    if (rc == CW_OK)
        rc = check_identity(s, want, &format, err, err_len);
    if (rc == CW_OK && raft_missing && format == STORE_FORMAT) {
        char missing[64], present[64];
        set_err(err, err_len,
                "the data directory %s is incomplete: %s is missing while %s are there; the "
                "node will not serve part of its region's data: restore the whole directory "
                "from a backup, and do not create or delete single files in it (%s)",
                s->dir, list_files(&sc, false, missing, sizeof(missing)),
                list_files(&sc, true, present, sizeof(present)), STORE_SEE_DOCS);
        rc = CW_ECORRUPT;
    } else if (rc == CW_OK && !raft_missing && format != STORE_FORMAT) {
        set_err(err, err_len,
                "the data directory %s says store format %lu but holds %s, which that format "
                "never had: it is damaged or was assembled from parts; restore the whole "
                "directory from a backup (%s)",
                s->dir, format, STORE_RAFT_FILE, STORE_SEE_DAMAGE);
        rc = CW_ECORRUPT;
    } else if (rc == CW_OK && raft_missing) {
        rc = upgrade_format2(s, err, err_len);
    }
    if (rc == CW_OK) {
        DB_LOG_STAT *ls = NULL;
        int ret = s->env->log_stat(s->env, &ls, 0);
        if (ret != 0) {
            set_err(err, err_len, "cannot read the log state of %s: %s; %s", s->dir,
                    bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
            rc = bdb_code(s, ret);
        } else {
            DB_LSN end = {.file = ls->st_cur_file, .offset = ls->st_cur_offset};
            free(ls);
            for (size_t i = 0; i < N_DB_FILES && rc == CW_OK; i++)
                rc = check_pages(s, *db_slot(s, i), db_files[i], &end, err, err_len);
        }
    }
    if (rc != CW_OK)
        close_dbs(s);
    return rc;
}

int cw_store_open(const char *dir, const struct cw_store_identity *want,
                  enum cw_durability durability, struct cw_store **out, char *err, size_t err_len)
{
    return cw_store_open_cache(dir, want, durability, 0, out, err, err_len);
}

int cw_store_open_cache(const char *dir, const struct cw_store_identity *want,
                        enum cw_durability durability, uint64_t cache_bytes, struct cw_store **out,
                        char *err, size_t err_len)
{
    if (out != NULL)
        *out = NULL;
    set_err(err, err_len, "%s", "");
    if (dir == NULL || dir[0] == '\0' || out == NULL ||
        (unsigned)durability > CW_DURABILITY_NOSYNC) {
        set_err(err, err_len, "cw_store_open: missing data directory or bad durability");
        return CW_EINVAL;
    }
    if (want == NULL || !identity_name_ok(want->cluster, CW_STORE_CLUSTER_MAX) ||
        !identity_name_ok(want->region, CW_STORE_REGION_MAX)) {
        set_err(err, err_len,
                "cw_store_open: the identity needs a cluster name of 1 to %d and a region "
                "name of 1 to %d printable ASCII characters",
                CW_STORE_CLUSTER_MAX, CW_STORE_REGION_MAX);
        return CW_EINVAL;
    }
    struct cw_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        set_err(err, err_len, "out of memory opening the store in %s", dir);
        return CW_ENOMEM;
    }
    s->lock_fd = -1;
    s->durability = durability;
    s->cache_bytes = cache_bytes;
    if (strlen(dir) >= sizeof(s->dir)) {
        set_err(err, err_len, "the data directory path is too long (%zu bytes, at most %zu)",
                strlen(dir), sizeof(s->dir) - 1);
        free(s);
        return CW_EINVAL;
    }
    cw_store_set_checkpoint_bytes(s, (uint64_t)STORE_CHECKPOINT_KBYTES * 1024);
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
    /* New or existing is decided before Berkeley DB touches the directory: no
     * database and no log file is a new region; anything else must prove to be
     * this region's, whole. */
    struct dir_scan sc;
    if (scan_dir(s->dir, &sc) != 0) {
        set_err(err, err_len, "cannot list the data directory %s: %s", s->dir, strerror(errno));
        rc = CW_EIO;
        goto err_after_lock;
    }
    bdb_reset(s);
    rc = open_env(s, err, err_len);
    if (rc != CW_OK)
        goto err_after_lock;
    if (sc.n_db == 0 && !sc.logs)
        rc = create_dbs(s, want, err, err_len);
    else
        rc = open_existing(s, want, err, err_len);
    if (rc != CW_OK)
        goto err_after_env;
    bdb_reset(s);
    *out = s;
    return CW_OK;

err_after_env:
    s->env->close(s->env, 0);
err_after_lock:
    close(s->lock_fd);
err_after_alloc:
    free(s->scratch);
    free(s);
    return rc;
}

void cw_store_close(struct cw_store **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    struct cw_store *s = *sp;
    *sp = NULL;
    /* A checkpoint now makes the next start's recovery short. A failure here
     * loses nothing: recovery replays the log instead. */
    if (!s->panicked)
        (void)s->env->txn_checkpoint(s->env, 0, 0, 0);
    if (s->panicked) {
        /* A panicked environment cannot be closed: Berkeley DB gives up on its
         * regions and frees only the handles, leaving the rest unreachable (a
         * leak checker's report at exit, an abort under ASan). The store is
         * parked where it stays reachable until the process exits, which it is
         * about to: the daemon stops after a panic. The directory lock goes now. */
        static struct cw_store *abandoned[4];
        for (size_t i = 0; i < sizeof(abandoned) / sizeof(abandoned[0]); i++) {
            if (abandoned[i] == NULL) {
                abandoned[i] = s;
                break;
            }
        }
        close(s->lock_fd);
        s->lock_fd = -1;
        return;
    }
    close_dbs(s);
    s->env->close(s->env, 0);
    close(s->lock_fd); /* releases the directory lock */
    free(s->scratch);
    free(s);
}

const struct cw_store_identity *cw_store_get_identity(const struct cw_store *s)
{
    return &s->id;
}

bool cw_store_created(const struct cw_store *s)
{
    return s->created;
}

bool cw_store_upgraded(const struct cw_store *s)
{
    return s->upgraded;
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

/* Deletes, inside txn, every stored Raft entry (8-byte key) with an index
 * >= from (above true) or <= upto (above false). Other keys ("hs", "snap")
 * are skipped: they sort among the entries but are never deleted here.
 * Returns 0 or a Berkeley DB code. */
static int raft_delete_range(struct cw_store *s, DB_TXN *txn, bool above, uint64_t bound)
{
    DBC *cur = NULL;
    int ret = s->raft->cursor(s->raft, txn, &cur, 0);
    if (ret != 0)
        return ret;
    uint8_t tsk[8];
    DBT k, d;
    memset(&d, 0, sizeof(d));
    /* Only the key is needed: a partial get of no data bytes. */
    d.flags = DB_DBT_PARTIAL;
    if (above) {
        ts_key(bound, tsk);
        dbt_set(&k, tsk, sizeof(tsk));
        ret = cur->get(cur, &k, &d, DB_SET_RANGE);
    } else {
        memset(&k, 0, sizeof(k));
        ret = cur->get(cur, &k, &d, DB_FIRST);
    }
    while (ret == 0) {
        if (k.size == 8) {
            uint64_t index = ts_from_key(k.data);
            if (!above && index > bound)
                break;
            ret = cur->del(cur, 0);
            if (ret != 0)
                break;
        }
        memset(&k, 0, sizeof(k));
        ret = cur->get(cur, &k, &d, DB_NEXT);
    }
    if (ret == DB_NOTFOUND)
        ret = 0;
    int ret_close = cur->close(cur);
    return ret != 0 ? ret : ret_close;
}

/* A Raft record (see store.h for raft.db's layout), inside txn. */
static int apply_raft(struct cw_store *s, DB_TXN *txn, const struct cw_persist *p, size_t i)
{
    char why[STORE_WHY_MAX];
    static const char *const names[] = {
        [CW_PERSIST_RAFT_HS] = "Raft hard state",
        [CW_PERSIST_RAFT_TRUNC] = "Raft truncation",
        [CW_PERSIST_RAFT_ENTRY] = "Raft entry",
        [CW_PERSIST_RAFT_SNAP] = "Raft snapshot",
    };
    const char *name = names[p->kind];
    bool has_data = p->kind != CW_PERSIST_RAFT_TRUNC;
    bool has_index = p->kind != CW_PERSIST_RAFT_HS;
    if ((has_data && (p->data_len == 0 || p->data == NULL || p->data_len > STORE_RAFT_BYTES_MAX)) ||
        (has_index && p->ts == 0)) {
        set_err(s->errmsg, sizeof(s->errmsg),
                "persist record %zu (%s, index %llu) has no data, too much data (%u bytes, at "
                "most %u) or index 0; nothing was committed",
                i, name, (unsigned long long)p->ts, (unsigned)p->data_len,
                (unsigned)STORE_RAFT_BYTES_MAX);
        return CW_EINVAL;
    }
    uint8_t tsk[8];
    DBT k, d;
    int rc = CW_OK, ret = 0;
    switch (p->kind) {
    case CW_PERSIST_RAFT_HS:
        dbt_set(&k, STORE_RAFT_HS_KEY, sizeof(STORE_RAFT_HS_KEY) - 1);
        if ((rc = frame(s, &k, p->data, p->data_len, &d)) == CW_OK)
            ret = s->raft->put(s->raft, txn, &k, &d, 0);
        break;
    case CW_PERSIST_RAFT_TRUNC:
        ret = raft_delete_range(s, txn, true, p->ts);
        break;
    case CW_PERSIST_RAFT_ENTRY:
        ts_key(p->ts, tsk);
        dbt_set(&k, tsk, sizeof(tsk));
        if ((rc = frame(s, &k, p->data, p->data_len, &d)) == CW_OK)
            ret = s->raft->put(s->raft, txn, &k, &d, 0);
        break;
    default: {
        /* The snapshot's value holds its index, then its bytes. */
        CW_ASSERT(p->kind == CW_PERSIST_RAFT_SNAP);
        uint8_t *v = malloc((size_t)p->data_len + STORE_RAFT_INDEX_BYTES);
        if (v == NULL) {
            rc = CW_ENOMEM;
            break;
        }
        ts_key(p->ts, v);
        memcpy(v + STORE_RAFT_INDEX_BYTES, p->data, p->data_len);
        dbt_set(&k, STORE_RAFT_SNAP_KEY, sizeof(STORE_RAFT_SNAP_KEY) - 1);
        rc = frame(s, &k, v, p->data_len + STORE_RAFT_INDEX_BYTES, &d);
        free(v);
        if (rc == CW_OK)
            ret = s->raft->put(s->raft, txn, &k, &d, 0);
        if (rc == CW_OK && ret == 0)
            ret = raft_delete_range(s, txn, false, p->ts);
        break;
    }
    }
    if (rc != CW_OK) {
        set_err(s->errmsg, sizeof(s->errmsg),
                "persist record %zu (%s, %u bytes) cannot be framed: %s; nothing was committed", i,
                name, (unsigned)p->data_len, cw_strerror(rc));
        return rc;
    }
    if (ret != 0) {
        s->commit_cause = bdb_cause(s, ret);
        set_err(s->errmsg, sizeof(s->errmsg),
                "writing persist record %zu (%s, index %llu) to %s in %s failed: %s; nothing "
                "was committed; %s",
                i, name, (unsigned long long)p->ts, STORE_RAFT_FILE, s->dir,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
    }
    return CW_OK;
}

/* Applies record i inside txn. Returns CW_OK, or CW_EINVAL/CW_ENOMEM/CW_ESTORE
 * (or another code bdb_code gives) with s->errmsg saying why. */
static int apply_one(struct cw_store *s, DB_TXN *txn, const struct cw_persist *p, size_t i)
{
    char why[STORE_WHY_MAX];
    int rc = CW_OK;
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
        } else if ((rc = frame(s, &k, p->data, p->data_len, &d)) == CW_OK) {
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
        if ((rc = frame(s, &k, p->data, p->data_len, &d)) == CW_OK)
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
    case CW_PERSIST_RAFT_HS:
    case CW_PERSIST_RAFT_TRUNC:
    case CW_PERSIST_RAFT_ENTRY:
    case CW_PERSIST_RAFT_SNAP:
        return apply_raft(s, txn, p, i);
    case CW_PERSIST_META:
        if (p->data_len == 0 || p->data == NULL) {
            set_err(s->errmsg, sizeof(s->errmsg),
                    "persist record %zu (metadata) has no data; nothing was committed", i);
            return CW_EINVAL;
        }
        file = STORE_META_FILE;
        dbt_set(&k, STORE_META_KEY, sizeof(STORE_META_KEY) - 1);
        if ((rc = frame(s, &k, p->data, p->data_len, &d)) == CW_OK)
            ret = s->meta->put(s->meta, txn, &k, &d, 0);
        break;
    default:
        set_err(s->errmsg, sizeof(s->errmsg),
                "persist record %zu has unknown kind %d; nothing was committed", i, (int)p->kind);
        return CW_EINVAL;
    }
    if (rc != CW_OK) {
        set_err(s->errmsg, sizeof(s->errmsg),
                "persist record %zu for %s (%u bytes) cannot be framed: %s; nothing was "
                "committed",
                i, file, (unsigned)p->data_len, cw_strerror(rc));
        return rc;
    }
    if (ret != 0) {
        s->commit_cause = bdb_cause(s, ret);
        set_err(s->errmsg, sizeof(s->errmsg),
                "writing persist record %zu to %s in %s failed: %s; nothing was committed; %s", i,
                file, s->dir, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
    }
    return CW_OK;
}

/* Ends a failed commit: counts it and notes its cause (after s->errmsg is set). */
static int commit_failed(struct cw_store *s, int rc, int ret)
{
    s->stats.commit_failures++;
    if (ret != 0)
        s->commit_cause = bdb_cause(s, ret);
    else if (s->commit_cause == CW_STORE_CAUSE_NONE)
        s->commit_cause = CW_STORE_CAUSE_OTHER;
    return rc;
}

int cw_store_commit(struct cw_store *s, const struct cw_persist *p, size_t n)
{
    char why[STORE_WHY_MAX];
    s->errmsg[0] = '\0';
    s->commit_cause = CW_STORE_CAUSE_NONE;
    bdb_reset(s);
    if (n == 0)
        return CW_OK;
    if (p == NULL) {
        set_err(s->errmsg, sizeof(s->errmsg), "cw_store_commit: %zu records but no array", n);
        return commit_failed(s, CW_EINVAL, 0);
    }
    DB_TXN *txn = NULL;
    int ret = s->env->txn_begin(s->env, NULL, &txn, 0);
    if (ret != 0) {
        set_err(s->errmsg, sizeof(s->errmsg), "cannot begin a transaction in %s: %s; %s", s->dir,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return commit_failed(s, bdb_code(s, ret), ret);
    }
    for (size_t i = 0; i < n; i++) {
        /* An outbox record put and deleted in the same transaction (a region
         * alone applies its writes everywhere at once) leaves the outbox as it
         * was: skip both, and the log its value would take twice. */
        if (i + 1 < n && p[i].kind == CW_PERSIST_OUTBOX_PUT &&
            p[i + 1].kind == CW_PERSIST_OUTBOX_DEL && p[i + 1].ts == p[i].ts) {
            i++;
            continue;
        }
        int rc = apply_one(s, txn, &p[i], i);
        if (rc != CW_OK) {
            /* The abort undoes the records already written in this transaction.
             * apply_one noted the cause of a Berkeley DB failure. */
            enum cw_store_cause cause = s->commit_cause;
            int ret_abort = txn->abort(txn);
            commit_failed(s, rc, 0);
            s->commit_cause = cause != CW_STORE_CAUSE_NONE ? cause
                              : rc == CW_ENOMEM            ? CW_STORE_CAUSE_NOMEM
                                                           : CW_STORE_CAUSE_OTHER;
            if (ret_abort != 0 && !s->panicked) {
                /* An abort that fails leaves the environment in doubt. */
                size_t o = strlen(s->errmsg);
                append(s->errmsg, sizeof(s->errmsg), &o, "; the abort failed too: %s",
                       db_strerror(ret_abort));
                s->panicked = true;
            }
            return rc;
        }
    }
    /* After commit the handle is gone whatever it returns: no abort on failure. */
    ret = txn->commit(txn, commit_flags(s->durability));
    if (ret != 0) {
        set_err(s->errmsg, sizeof(s->errmsg), "committing %zu persist records in %s failed: %s; %s",
                n, s->dir, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return commit_failed(s, bdb_code(s, ret), ret);
    }
    s->stats.commits++;
    s->stats.records += n;

    /* Whether STORE_CHECKPOINT_KBYTES of log accumulated is Berkeley DB's to
     * say, but asking costs it a read of the log (and eight system calls): ask
     * once per STORE_CHECKPOINT_ASK_BYTES of records, not per commit. The
     * commit is already durable, so a failed checkpoint is counted, not
     * returned. */
    for (size_t i = 0; i < n; i++)
        s->since_ckp_ask += p[i].data_len + 16u;
    if (s->since_ckp_ask < s->ckp_ask_bytes)
        return CW_OK;
    s->since_ckp_ask = 0;
    bdb_reset(s);
    ret = s->env->txn_checkpoint(s->env, s->ckp_kbytes, 0, 0);
    if (ret != 0) {
        s->stats.checkpoints_failed++;
        s->checkpoints_failing++;
        set_err(s->errmsg, sizeof(s->errmsg),
                "checkpoint in %s failed after a good commit (the commit is safe in the log): "
                "%s; %s",
                s->dir, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
    } else {
        s->checkpoints_failing = 0;
    }
    return CW_OK;
}

void cw_store_set_checkpoint_bytes(struct cw_store *s, uint64_t bytes)
{
    if (bytes == 0)
        bytes = CW_DEFAULT_CHECKPOINT_BYTES;
    uint64_t kb = bytes / 1024;
    s->ckp_kbytes = kb < 1 ? 1 : kb > UINT32_MAX ? UINT32_MAX : (uint32_t)kb;
    /* Ask at least eight times per interval (records are at most about half
     * of the log they make), and at most once per MiB of records. */
    uint64_t ask = bytes / 8;
    s->ckp_ask_bytes = ask > STORE_CHECKPOINT_ASK_BYTES ? STORE_CHECKPOINT_ASK_BYTES
                       : ask < 1                        ? 1
                                                        : (uint32_t)ask;
}

int cw_store_checkpoint(struct cw_store *s)
{
    char why[STORE_WHY_MAX];
    s->errmsg[0] = '\0';
    bdb_reset(s);
    int ret = s->env->txn_checkpoint(s->env, 0, 0, 0);
    if (ret == 0) {
        s->checkpoints_failing = 0;
        return CW_OK;
    }
    s->stats.checkpoints_failed++;
    s->checkpoints_failing++;
    set_err(s->errmsg, sizeof(s->errmsg), "checkpoint in %s failed: %s; %s", s->dir,
            bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
    return CW_ESTORE;
}

/* ------------------------------------------------------------------ load */

/* The message for a stored record whose checksum does not match. */
static int bad_checksum(const struct cw_store *s, const char *file, const char *what, uint32_t size,
                        uint32_t stored, uint32_t computed, char *err, size_t err_len)
{
    set_err(err, err_len,
            "%s/%s: the record %s (%" PRIu32 " bytes) fails its checksum (stored %08" PRIx32
            ", computed %08" PRIx32 "): the file is damaged and the record was not used; restore "
            "the data directory from a backup (%s)",
            s->dir, file, what, size, stored, computed, STORE_SEE_DAMAGE);
    return CW_ECORRUPT;
}

static int load_meta(struct cw_store *s, struct cw_node *r, struct cw_store_load_stats *st,
                     char *err, size_t err_len)
{
    char why[STORE_WHY_MAX];
    DBT k, d;
    dbt_set(&k, STORE_META_KEY, sizeof(STORE_META_KEY) - 1);
    memset(&d, 0, sizeof(d));
    /* Default DBT flags: the bytes belong to Berkeley DB and stay valid until the
     * next call on this handle, long enough for the replica to decode them. */
    int ret = s->meta->get(s->meta, NULL, &k, &d, 0);
    if (ret == DB_NOTFOUND)
        return CW_OK; /* a new region that has not written yet */
    if (ret != 0) {
        set_err(err, err_len, "cannot read %s/%s: %s; %s", s->dir, STORE_META_FILE,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
    }
    const uint8_t *blob = NULL;
    uint32_t len = 0, stored, computed;
    if (!unframe(&k, &d, &blob, &len, &stored, &computed))
        return bad_checksum(s, STORE_META_FILE, "\"" STORE_META_KEY "\"", d.size, stored, computed,
                            err, err_len);
    int rc = cw_node_restore_meta(r, blob, len);
    if (rc == CW_EDECODE) {
        set_err(err, err_len,
                "%s/%s: the record \"%s\" (%u bytes) passes its checksum but does not decode: "
                "it was written wrong; restore the data directory from a backup (%s)",
                s->dir, STORE_META_FILE, STORE_META_KEY, (unsigned)len, STORE_SEE_DAMAGE);
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
    char what[sizeof(shown) + 32];
    const uint8_t *blob = NULL;
    uint32_t len = 0, stored, computed;
    int rc;
    if (kind == WALK_KEYS) {
        if (!unframe(k, d, &blob, &len, &stored, &computed)) {
            snprintf(what, sizeof(what), "for key \"%s\"",
                     show_key(k->data, k->size, shown, sizeof(shown)));
            return bad_checksum(s, STORE_KEYS_FILE, what, d->size, stored, computed, err, err_len);
        }
        rc = cw_node_restore_key(r, k->data, k->size, blob, len);
        if (rc == CW_EDECODE)
            set_err(err, err_len,
                    "%s/%s: the record for key \"%s\" (%u bytes) passes its checksum but does "
                    "not decode: it was written wrong; restore the data directory from a "
                    "backup (%s)",
                    s->dir, STORE_KEYS_FILE, show_key(k->data, k->size, shown, sizeof(shown)),
                    (unsigned)len, STORE_SEE_DAMAGE);
        else if (rc != CW_OK)
            set_err(err, err_len, "restoring key \"%s\" from %s/%s failed: %s",
                    show_key(k->data, k->size, shown, sizeof(shown)), s->dir, STORE_KEYS_FILE,
                    cw_strerror(rc));
        return rc;
    }
    if (k->size != 8) {
        set_err(err, err_len,
                "%s/%s: a record has a %u-byte key \"%s\" where an 8-byte ts belongs; the file "
                "is damaged; restore the data directory from a backup (%s)",
                s->dir, STORE_OUTBOX_FILE, (unsigned)k->size,
                show_key(k->data, k->size, shown, sizeof(shown)), STORE_SEE_DAMAGE);
        return CW_ECORRUPT;
    }
    unsigned long long ts = (unsigned long long)ts_from_key(k->data);
    if (!unframe(k, d, &blob, &len, &stored, &computed)) {
        snprintf(what, sizeof(what), "for ts %llu", ts);
        return bad_checksum(s, STORE_OUTBOX_FILE, what, d->size, stored, computed, err, err_len);
    }
    rc = cw_node_restore_outbox(r, blob, len);
    if (rc == CW_EDECODE)
        set_err(err, err_len,
                "%s/%s: the record for ts %llu (%u bytes) passes its checksum but does not "
                "decode: it was written wrong; restore the data directory from a backup (%s)",
                s->dir, STORE_OUTBOX_FILE, ts, (unsigned)len, STORE_SEE_DAMAGE);
    else if (rc != CW_OK)
        set_err(err, err_len, "restoring outbox record ts %llu from %s/%s failed: %s", ts, s->dir,
                STORE_OUTBOX_FILE, cw_strerror(rc));
    return rc;
}

static int walk(struct cw_store *s, struct cw_node *r, enum walk_kind kind, size_t *count,
                char *err, size_t err_len)
{
    char why[STORE_WHY_MAX];
    DB *db = kind == WALK_KEYS ? s->keys : s->outbox;
    const char *file = kind == WALK_KEYS ? STORE_KEYS_FILE : STORE_OUTBOX_FILE;
    DBC *cur = NULL;
    int ret = db->cursor(db, NULL, &cur, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot open a cursor on %s/%s: %s; %s", s->dir, file,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
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
        set_err(err, err_len, "reading %s/%s failed after %zu records: %s; %s", s->dir, file,
                *count, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        rc = bdb_code(s, ret);
    }
done_after_cursor:
    cur->close(cur);
    return rc;
}

/* One raft.db record handed to the scan's callback; a failure is named. */
static int raft_yield(struct cw_store *s, const DBT *k, const DBT *d, enum cw_persist_kind kind,
                      cw_store_raft_fn fn, void *ctx, char *err, size_t err_len)
{
    char what[64];
    uint64_t index = kind == CW_PERSIST_RAFT_ENTRY ? ts_from_key(k->data) : 0;
    if (kind == CW_PERSIST_RAFT_ENTRY)
        snprintf(what, sizeof(what), "for Raft entry %llu", (unsigned long long)index);
    else
        snprintf(what, sizeof(what), "\"%s\"",
                 kind == CW_PERSIST_RAFT_HS ? STORE_RAFT_HS_KEY : STORE_RAFT_SNAP_KEY);
    const uint8_t *blob = NULL;
    uint32_t len = 0, stored, computed;
    if (!unframe(k, d, &blob, &len, &stored, &computed))
        return bad_checksum(s, STORE_RAFT_FILE, what, d->size, stored, computed, err, err_len);
    if (kind == CW_PERSIST_RAFT_SNAP) {
        if (len < STORE_RAFT_INDEX_BYTES) {
            set_err(err, err_len,
                    "%s/%s: the record %s (%u bytes) is too short to hold its index: it was "
                    "written wrong; restore the data directory from a backup (%s)",
                    s->dir, STORE_RAFT_FILE, what, (unsigned)len, STORE_SEE_DAMAGE);
            return CW_ECORRUPT;
        }
        index = ts_from_key(blob);
        blob += STORE_RAFT_INDEX_BYTES;
        len -= STORE_RAFT_INDEX_BYTES;
    }
    int rc = fn(ctx, kind, index, blob, len);
    if (rc == CW_EDECODE)
        set_err(err, err_len,
                "%s/%s: the record %s (%u bytes) passes its checksum but does not decode or "
                "does not fit the records before it: it was written wrong; restore the data "
                "directory from a backup (%s)",
                s->dir, STORE_RAFT_FILE, what, (unsigned)len, STORE_SEE_DAMAGE);
    else if (rc == CW_ECONFIG)
        set_err(err, err_len,
                "%s/%s holds the state of strong buckets, but the config defines no strong "
                "bucket: put the strong bucket sections back (removing them would drop that "
                "state)",
                s->dir, STORE_RAFT_FILE);
    else if (rc != CW_OK)
        set_err(err, err_len, "restoring the record %s from %s/%s failed: %s", what, s->dir,
                STORE_RAFT_FILE, cw_strerror(rc));
    return rc;
}

/* Reads raft.db's record under a fixed key and yields it; absent is fine. */
static int raft_yield_key(struct cw_store *s, const char *key, enum cw_persist_kind kind,
                          cw_store_raft_fn fn, void *ctx, char *err, size_t err_len)
{
    char why[STORE_WHY_MAX];
    DBT k, d;
    dbt_set(&k, key, (uint32_t)strlen(key));
    memset(&d, 0, sizeof(d));
    int ret = s->raft->get(s->raft, NULL, &k, &d, 0);
    if (ret == DB_NOTFOUND)
        return CW_OK;
    if (ret != 0) {
        set_err(err, err_len, "cannot read \"%s\" from %s/%s: %s; %s", key, s->dir, STORE_RAFT_FILE,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
    }
    return raft_yield(s, &k, &d, kind, fn, ctx, err, err_len);
}

int cw_store_raft_scan(struct cw_store *s, cw_store_raft_fn fn, void *ctx, char *err,
                       size_t err_len)
{
    char why[STORE_WHY_MAX];
    set_err(err, err_len, "%s", "");
    if (s == NULL || fn == NULL) {
        set_err(err, err_len, "cw_store_raft_scan: missing store or callback");
        return CW_EINVAL;
    }
    bdb_reset(s);
    int rc = raft_yield_key(s, STORE_RAFT_SNAP_KEY, CW_PERSIST_RAFT_SNAP, fn, ctx, err, err_len);
    if (rc == CW_OK)
        rc = raft_yield_key(s, STORE_RAFT_HS_KEY, CW_PERSIST_RAFT_HS, fn, ctx, err, err_len);
    if (rc != CW_OK)
        return rc;
    DBC *cur = NULL;
    int ret = s->raft->cursor(s->raft, NULL, &cur, 0);
    if (ret != 0) {
        set_err(err, err_len, "cannot open a cursor on %s/%s: %s; %s", s->dir, STORE_RAFT_FILE,
                bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret);
    }
    DBT k, d;
    memset(&k, 0, sizeof(k));
    memset(&d, 0, sizeof(d));
    size_t count = 0;
    /* Entries have 8-byte keys, big-endian: byte order is index order. The
     * other keys were yielded above; any other length is damage. */
    while ((ret = cur->get(cur, &k, &d, DB_NEXT)) == 0) {
        bool fixed = (k.size == sizeof(STORE_RAFT_HS_KEY) - 1 &&
                      memcmp(k.data, STORE_RAFT_HS_KEY, k.size) == 0) ||
                     (k.size == sizeof(STORE_RAFT_SNAP_KEY) - 1 &&
                      memcmp(k.data, STORE_RAFT_SNAP_KEY, k.size) == 0);
        if (fixed)
            continue;
        if (k.size != 8) {
            char shown[STORE_KEY_SHOWN_MAX * 4 + 8];
            set_err(err, err_len,
                    "%s/%s: a record has a %u-byte key \"%s\" where an 8-byte index belongs; "
                    "the file is damaged; restore the data directory from a backup (%s)",
                    s->dir, STORE_RAFT_FILE, (unsigned)k.size,
                    show_key(k.data, k.size, shown, sizeof(shown)), STORE_SEE_DAMAGE);
            rc = CW_ECORRUPT;
            goto done_after_cursor;
        }
        rc = raft_yield(s, &k, &d, CW_PERSIST_RAFT_ENTRY, fn, ctx, err, err_len);
        if (rc != CW_OK)
            goto done_after_cursor;
        count++;
    }
    if (ret != DB_NOTFOUND) {
        set_err(err, err_len, "reading %s/%s failed after %zu entries: %s; %s", s->dir,
                STORE_RAFT_FILE, count, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        rc = bdb_code(s, ret);
    }
done_after_cursor:
    cur->close(cur);
    return rc;
}

/* cw_store_load's callback: each raft.db record into the node. */
struct raft_load {
    struct cw_node *node;
    struct cw_store_load_stats *st;
};

static int raft_load_one(void *ctx, enum cw_persist_kind kind, uint64_t index, const uint8_t *data,
                         uint32_t len)
{
    struct raft_load *rl = ctx;
    (void)index; /* the node's encodings carry their own indexes */
    int rc;
    switch (kind) {
    case CW_PERSIST_RAFT_SNAP:
        rc = cw_node_restore_raft_snapshot(rl->node, data, len);
        rl->st->raft_snapshot = rc == CW_OK;
        return rc;
    case CW_PERSIST_RAFT_HS:
        rc = cw_node_restore_raft_hardstate(rl->node, data, len);
        rl->st->raft_hardstate = rc == CW_OK;
        return rc;
    default:
        rc = cw_node_restore_raft_entry(rl->node, data, len);
        if (rc == CW_OK)
            rl->st->raft_entries++;
        return rc;
    }
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
    bdb_reset(s);
    /* The order the replica requires: meta sets the clock floor and vectors the
     * keys and outbox are checked against; the outbox must arrive in ts order,
     * which the big-endian keys give. */
    int rc = load_meta(s, r, st, err, err_len);
    if (rc != CW_OK)
        return rc;
    rc = walk(s, r, WALK_KEYS, &st->keys, err, err_len);
    if (rc != CW_OK)
        return rc;
    rc = walk(s, r, WALK_OUTBOX, &st->outbox, err, err_len);
    if (rc != CW_OK)
        return rc;
    /* Strong buckets: the snapshot, the hard state, then the entries in index
     * order, as the node requires; nothing at all when raft.db is empty. */
    struct raft_load rl = {.node = r, .st = st};
    return cw_store_raft_scan(s, raft_load_one, &rl, err, err_len);
}

/* ----------------------------------------------------------- observation */

const char *cw_store_errmsg(const struct cw_store *s)
{
    return s->errmsg;
}

const char *cw_store_read_errmsg(const struct cw_store *s)
{
    return s->read_errmsg;
}

enum cw_store_cause cw_store_commit_cause(const struct cw_store *s)
{
    return s->commit_cause;
}

enum cw_store_cause cw_store_read_cause(const struct cw_store *s)
{
    return s->read_cause;
}

bool cw_store_panicked(const struct cw_store *s)
{
    return s->panicked;
}

const char *cw_store_panic_msg(struct cw_store *s)
{
    if (!s->panicked)
        return "";
    snprintf(s->panic_msg, sizeof(s->panic_msg), "Berkeley DB panicked in %s%s%s; %s", s->dir,
             s->first_cause_msg[0] != '\0' ? " after: " : "", s->first_cause_msg,
             bdb_advice(s, DB_RUNRECOVERY));
    return s->panic_msg;
}

enum cw_store_cause cw_store_panic_cause(const struct cw_store *s)
{
    if (!s->panicked)
        return CW_STORE_CAUSE_NONE;
    return s->first_cause != CW_STORE_CAUSE_NONE ? s->first_cause : CW_STORE_CAUSE_OTHER;
}

uint64_t cw_store_checkpoints_failing(const struct cw_store *s)
{
    return s->checkpoints_failing;
}

const char *cw_store_cause_name(enum cw_store_cause c)
{
    switch (c) {
    case CW_STORE_CAUSE_NONE:
        return "none";
    case CW_STORE_CAUSE_NOSPACE:
        return "No space left on device";
    case CW_STORE_CAUSE_NOFILES:
        return "too many open files";
    case CW_STORE_CAUSE_IO:
        return "I/O error";
    case CW_STORE_CAUSE_NOMEM:
        return "out of memory";
    case CW_STORE_CAUSE_OTHER:
        break;
    }
    return "store failure";
}

enum cw_durability cw_store_durability(const struct cw_store *s)
{
    return s->durability;
}

void cw_store_stats(const struct cw_store *s, struct cw_store_stats *out)
{
    *out = s->stats;
}

/* ------------------------------------------------------ the store of record */

/* Reads one record of db under key (checksum checked); on CW_OK *blob is malloc'd. */
static int read_record(struct cw_store *s, DB *db, const char *file, const void *key,
                       uint32_t key_len, uint8_t **blob, uint32_t *len)
{
    DBT k = {.data = (void *)key, .size = key_len};
    DBT d = {.flags = DB_DBT_MALLOC};
    bdb_reset(s);
    int ret = db->get(db, NULL, &k, &d, 0);
    if (ret == DB_NOTFOUND)
        return CW_ENOTFOUND;
    if (ret != 0) {
        /* A get that failed part-way (a large item spread over overflow
         * pages, one of which could not be read) may have allocated. */
        free(d.data);
        char why[400];
        s->read_cause = bdb_cause(s, ret);
        set_err(s->read_errmsg, sizeof(s->read_errmsg), "reading %s in %s failed: %s; %s", file,
                s->dir, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return bdb_code(s, ret) == CW_ECORRUPT ? CW_ECORRUPT : CW_ESTORE;
    }
    const uint8_t *b = NULL;
    uint32_t n = 0, stored, computed;
    if (!unframe(&k, &d, &b, &n, &stored, &computed)) {
        set_err(s->read_errmsg, sizeof(s->read_errmsg),
                "%s/%s: a record fails its checksum (stored %08x, computed %08x); restore the "
                "data directory from a backup or rebuild the region",
                s->dir, file, (unsigned)stored, (unsigned)computed);
        free(d.data);
        return CW_ECORRUPT;
    }
    *blob = malloc(n ? n : 1);
    if (*blob == NULL) {
        free(d.data);
        return CW_ENOMEM;
    }
    memcpy(*blob, b, n);
    *len = n;
    free(d.data);
    return CW_OK;
}

static int reader_key(void *ctx, const uint8_t *key, uint32_t key_len, struct cw_keystate *out)
{
    struct cw_store *s = ctx;
    uint8_t *blob = NULL;
    uint32_t len = 0;
    int rc = read_record(s, s->keys, STORE_KEYS_FILE, key, key_len, &blob, &len);
    if (rc != CW_OK)
        return rc;
    rc = cw_decode_keystate(out, blob, len, CW_VALUE_HARD_MAX);
    free(blob);
    if (rc != CW_OK) {
        cw_keystate_free(out);
        set_err(s->read_errmsg, sizeof(s->read_errmsg),
                "%s/%s: a key state passes its checksum but does not decode", s->dir,
                STORE_KEYS_FILE);
        return CW_ECORRUPT;
    }
    return CW_OK;
}

static int reader_outbox(void *ctx, uint64_t ts, struct cw_record *out)
{
    struct cw_store *s = ctx;
    uint8_t k[8];
    ts_key(ts, k);
    uint8_t *blob = NULL;
    uint32_t len = 0;
    int rc = read_record(s, s->outbox, STORE_OUTBOX_FILE, k, sizeof(k), &blob, &len);
    if (rc != CW_OK)
        return rc;
    rc = cw_decode_record(out, blob, len, CW_VALUE_HARD_MAX);
    free(blob);
    if (rc != CW_OK) {
        cw_record_free(out);
        set_err(s->read_errmsg, sizeof(s->read_errmsg),
                "%s/%s: an outbox record passes its checksum but does not decode", s->dir,
                STORE_OUTBOX_FILE);
        return CW_ECORRUPT;
    }
    return CW_OK;
}

/* The first key after `after` in byte order (a donor's snapshot walks the
 * store with it): a cursor positioned with DB_SET_RANGE, stepped past an exact
 * match. Berkeley DB's default B-tree order is byte order (shorter first on a
 * common prefix), the order the core's snapshot uses. */
static int reader_next_key(void *ctx, const uint8_t *after, uint32_t after_len, uint8_t *key,
                           uint32_t *key_len, struct cw_keystate *out)
{
    struct cw_store *s = ctx;
    DBC *cur = NULL;
    bdb_reset(s);
    int ret = s->keys->cursor(s->keys, NULL, &cur, 0);
    if (ret != 0) {
        char why[400];
        s->read_cause = bdb_cause(s, ret);
        set_err(s->read_errmsg, sizeof(s->read_errmsg), "cannot open a cursor on %s in %s: %s; %s",
                STORE_KEYS_FILE, s->dir, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        return CW_ESTORE;
    }
    uint8_t start[CW_FULL_KEY_MAX + 1];
    uint32_t start_len = after_len <= CW_FULL_KEY_MAX ? after_len : CW_FULL_KEY_MAX;
    if (start_len)
        memcpy(start, after, start_len);
    DBT k = {.data = start, .size = start_len, .ulen = sizeof(start), .flags = DB_DBT_USERMEM};
    DBT d = {.flags = DB_DBT_MALLOC};
    ret = start_len ? cur->get(cur, &k, &d, DB_SET_RANGE) : cur->get(cur, &k, &d, DB_FIRST);
    if (ret == 0 && start_len && k.size == after_len && memcmp(k.data, after, after_len) == 0) {
        free(d.data);
        d.data = NULL;
        ret = cur->get(cur, &k, &d, DB_NEXT);
    }
    int rc = CW_OK;
    if (ret == DB_NOTFOUND) {
        rc = CW_ENOTFOUND;
    } else if (ret != 0) {
        char why[400];
        s->read_cause = bdb_cause(s, ret);
        set_err(s->read_errmsg, sizeof(s->read_errmsg), "walking %s in %s failed: %s; %s",
                STORE_KEYS_FILE, s->dir, bdb_reason(s, ret, why, sizeof(why)), bdb_advice(s, ret));
        rc = bdb_code(s, ret) == CW_ECORRUPT ? CW_ECORRUPT : CW_ESTORE;
    } else {
        const uint8_t *blob = NULL;
        uint32_t n = 0, stored, computed;
        if (k.size > CW_FULL_KEY_MAX || !unframe(&k, &d, &blob, &n, &stored, &computed)) {
            set_err(s->read_errmsg, sizeof(s->read_errmsg),
                    "%s/%s: a record fails its checksum; restore the data directory from a "
                    "backup or rebuild the region",
                    s->dir, STORE_KEYS_FILE);
            rc = CW_ECORRUPT;
        } else if (cw_decode_keystate(out, blob, n, CW_VALUE_HARD_MAX) != CW_OK) {
            cw_keystate_free(out);
            rc = CW_ECORRUPT;
        } else {
            memcpy(key, k.data, k.size);
            *key_len = k.size;
        }
    }
    free(d.data);
    cur->close(cur);
    return rc;
}

struct cw_reader cw_store_reader(struct cw_store *s)
{
    struct cw_reader r = {
        .key = reader_key, .outbox = reader_outbox, .next_key = reader_next_key, .ctx = s};
    return r;
}
