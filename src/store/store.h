/*
 * store.h - the Berkeley DB adapter that makes a replica's state durable.
 *
 * The replica core decides what to persist and hands it over as cw_persist
 * effects; this adapter writes them and, at start, reads them back. It treats the
 * key states, outbox records and metadata as opaque blobs (their formats live in
 * core/codec.h).
 *
 * Layout on disk: one transactional Berkeley DB environment per node in the data
 * directory, opened with recovery at every start, so a process killed at any
 * moment restarts from its last committed transaction. Three B-tree databases,
 * one file each:
 *   keys.db    full key ("bucket/key" bytes) -> encoded key state
 *   outbox.db  8-byte big-endian ts -> encoded outbox record (byte order is ts
 *              order, so a cursor walks the outbox oldest first)
 *   meta.db    "meta" -> the replica's metadata blob
 * A lock file (causeway.lock) keeps a second process from opening, and running
 * recovery on, an environment that is in use. The cache, locks and log buffer
 * live in the process's memory (DB_PRIVATE), so what survives a killed process
 * is exactly what reached the log; tools like db_stat cannot attach to a
 * running node.
 *
 * Log files are removed automatically once a checkpoint no longer needs them, so
 * the directory does not grow without bound; the price is that catastrophic
 * recovery from an old backup plus logs is not possible (back up with the node
 * stopped, or copy the whole directory).
 *
 * Errors: every function returns CW_OK or an enum cw_err; Berkeley DB codes never
 * cross this boundary. Functions that take err/err_len write a sentence there that
 * says what failed and what to do; cw_store_commit leaves its explanation in
 * cw_store_errmsg.
 *
 * Ownership: cw_store_open transfers a new store to *out on success (*out is
 * NULL on failure); cw_store_close frees it and sets the pointer to NULL. Every
 * other argument is borrowed for the duration of the call only: the store copies
 * what it writes and keeps no pointer into the caller's buffers.
 *
 * Threads: a store is used by one thread (the daemon's event loop).
 */
#ifndef CW_STORE_STORE_H
#define CW_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/node.h"
#include "core/replica.h"

/*
 * How far a committed transaction is guaranteed to survive:
 *   SYNC          the log is flushed to stable storage at commit: survives power loss;
 *   WRITE_NOSYNC  the log is written to the OS at commit: survives a killed
 *                 process, not a crash of the machine (the default);
 *   NOSYNC        the log stays in memory at commit: a killed process may lose
 *                 recent commits. For benchmarks only.
 */
enum cw_durability {
    CW_DURABILITY_SYNC = 0,
    CW_DURABILITY_WRITE_NOSYNC = 1,
    CW_DURABILITY_NOSYNC = 2,
};

/* Parses "sync", "write_nosync" or "nosync" (the config spelling). Returns CW_OK
 * or CW_EINVAL (out unchanged). */
int cw_durability_parse(const char *s, enum cw_durability *out);
/* The config spelling of d; a static string, "unknown" for values outside the enum. */
const char *cw_durability_name(enum cw_durability d);

struct cw_store;

/* Counters for status output. */
struct cw_store_stats {
    uint64_t commits;            /* transactions committed */
    uint64_t records;            /* persist records in committed transactions */
    uint64_t commit_failures;    /* transactions aborted */
    uint64_t checkpoints_failed; /* checkpoints that failed after a good commit */
};

/* What cw_store_load restored, for the daemon's "recovered ..." log line. */
struct cw_store_load_stats {
    size_t keys;
    size_t outbox;
    bool meta; /* false on a fresh directory */
};

/*
 * Opens (creating when missing, parents included) the data directory dir and the
 * environment in it, running recovery. Returns CW_OK and a new store in *out, or
 * CW_EINVAL (bad arguments), CW_EIO (the directory cannot be created or is in use
 * by another process) or CW_ESTORE (Berkeley DB refused), with *out = NULL and a
 * message in err (err may be NULL when err_len is 0).
 */
int cw_store_open(const char *dir, enum cw_durability durability, struct cw_store **out, char *err,
                  size_t err_len);

/* Checkpoints, closes the databases and the environment, frees the store and sets
 * *s to NULL. Safe to call with *s == NULL. */
void cw_store_close(struct cw_store **s);

/*
 * Applies p[0..n) in one transaction, in order (a later record for the same key
 * wins), and commits it at the store's durability. KEY with data_len == 0 deletes
 * the key (also when it is absent); OUTBOX_DEL of an absent ts is not an error.
 * n == 0 does nothing and returns CW_OK.
 *
 * Returns CW_OK, or, with nothing applied (the transaction is aborted):
 * CW_EINVAL for a malformed record (unknown kind, empty key or blob, length over
 * its bound) and CW_ESTORE when Berkeley DB fails. cw_store_errmsg says which.
 * After a failure the replica's memory is ahead of the disk: the daemon must stop
 * and restart, which recovers the last committed state.
 */
int cw_store_commit(struct cw_store *s, const struct cw_persist *p, size_t n);

/*
 * Feeds the persisted state to r, a replica fresh from cw_replica_create: the
 * metadata first (cw_replica_restore_meta), then every key
 * (cw_replica_restore_key), then the outbox in ts order
 * (cw_replica_restore_outbox). stats may be NULL; when not, it is filled in as far
 * as the load got. Returns CW_OK; CW_EDECODE for a corrupt record, with err
 * naming the database and the key; CW_ENOMEM; or CW_ESTORE when Berkeley DB
 * fails. After a failure r holds a partial state and should be destroyed.
 */
int cw_store_load(struct cw_store *s, struct cw_node *r, struct cw_store_load_stats *stats,
                  char *err, size_t err_len);

/* Why the last cw_store_commit failed, or a warning it left after a good commit
 * (a failed checkpoint); "" when it succeeded cleanly. Borrowed: valid until the
 * next call on s. */
const char *cw_store_errmsg(const struct cw_store *s);

/* The store's durability and counters. */
enum cw_durability cw_store_durability(const struct cw_store *s);
void cw_store_stats(const struct cw_store *s, struct cw_store_stats *out);

#endif
