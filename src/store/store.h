/*
 * store.h - the Berkeley DB adapter that makes a replica's state durable.
 *
 * The replica core decides what to persist and hands it over as cw_persist
 * effects; this adapter writes them and, at start, reads them back. It treats the
 * key states, outbox records and metadata as opaque blobs (their formats live in
 * core/codec.h).
 *
 * Layout on disk (store format 3): one transactional Berkeley DB environment per
 * node in the data directory, opened with recovery at every start, so a process
 * killed at any moment restarts from its last committed transaction. Four
 * B-tree databases, one file each, every one created with Berkeley DB page
 * checksums (DB_CHKSUM):
 *   keys.db    full key ("bucket/key" bytes) -> record(encoded key state)
 *   outbox.db  8-byte big-endian ts -> record(encoded outbox record) (byte order
 *              is ts order, so a cursor walks the outbox oldest first)
 *   meta.db    "identity" -> record(the directory's identity, text, see below)
 *              "meta" -> record(the replica's metadata blob)
 *   raft.db    strong buckets' Raft state (CW_PERSIST_RAFT_*):
 *              "hs" -> record(the hard state bytes, as committed)
 *              "snap" -> record(8-byte big-endian snapshot index, then the
 *                        snapshot bytes as committed)
 *              8-byte big-endian index -> record(the entry bytes as committed)
 *              (RAFT_TRUNC deletes the entries >= its index, RAFT_SNAP the
 *              entries <= its; "hs" and "snap" are never deleted)
 * where record(x) is x preceded by a 4-byte big-endian CRC32C computed over the
 * record's key bytes and then x: a record moved to another key fails its check
 * too.
 *
 * The identity record is written once, in the transaction that creates the
 * databases, as text lines:
 *   format 3
 *   cluster <the cluster name: the config's region names in id order, ','-joined>
 *   region <this region's name>
 *   incarnation <16 hex digits from getrandom(): which creation of the region>
 *   created <UTC time of creation, ISO 8601>
 * Every open checks it against the identity the caller expects.
 *
 * Which directory opens: one with none of the four databases and no log file
 * is new (it is created, parents included, and cw_store_created says so); one
 * with all four and an identity naming the expected cluster and region is
 * this region's. A directory of store format 2 (keys.db, outbox.db, meta.db,
 * no raft.db: before strong buckets) is upgraded in place: raft.db is created
 * empty and the identity's format line rewritten, in one transaction flushed to
 * disk (cw_store_upgraded says so). Anything else is refused and nothing is
 * created in it: some databases missing (partial; raft.db alone missing under
 * a format-3 identity too), only log files left, no identity record (a
 * directory of store format 1, which had none, or a damaged one), another
 * format, a format-2 identity with a raft.db, another cluster or region
 * (foreign), or a page whose log sequence number lies past the end of the log
 * (log files truncated or removed). Every page of every database is read at
 * open, so Berkeley DB's page checksums are checked for the whole directory at
 * each start.
 *
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
 * cross this boundary. Functions that take err/err_len write one line there that
 * says what failed and what to do, with every message Berkeley DB gave during the
 * failed operation (the first few and the last, joined with "; "), so the real
 * cause ("past end of log", "unexpected file type", "No space left on device")
 * is not hidden behind its consequence; cw_store_commit leaves its explanation
 * in cw_store_errmsg. Damaged data (a checksum that does not match, a file that
 * is not what it should be, a log that ends before the pages it logged) is
 * CW_ECORRUPT and is never handed on as data.
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

/* What a failed Berkeley DB operation ran out of, for the daemon's log line,
 * its replies and its exit status. */
enum cw_store_cause {
    CW_STORE_CAUSE_NONE = 0,    /* no failure */
    CW_STORE_CAUSE_NOSPACE = 1, /* ENOSPC or EDQUOT: the filesystem is full */
    CW_STORE_CAUSE_NOFILES = 2, /* EMFILE or ENFILE: out of file descriptors */
    CW_STORE_CAUSE_IO = 3,      /* EIO: the disk failed */
    CW_STORE_CAUSE_NOMEM = 4,   /* ENOMEM */
    CW_STORE_CAUSE_OTHER = 5,   /* anything else (damage, a bad record, a bug) */
};

/* Counters for status output. */
struct cw_store_stats {
    uint64_t commits;            /* transactions committed */
    uint64_t records;            /* persist records in committed transactions */
    uint64_t commit_failures;    /* transactions aborted */
    uint64_t checkpoints;        /* checkpoints the checkpoint thread took */
    uint64_t checkpoints_failed; /* and that failed (the commits stay durable) */
};

/* What cw_store_load restored, for the daemon's "recovered ..." log line. */
struct cw_store_load_stats {
    size_t keys;
    size_t outbox;
    bool meta; /* false on a fresh directory */
    /* Strong buckets (raft.db): what was restored into the node. */
    bool raft_snapshot;
    bool raft_hardstate;
    size_t raft_entries;
};

/* Longest cluster name and region name an identity holds. */
#define CW_STORE_CLUSTER_MAX 1023
#define CW_STORE_REGION_MAX 63

/* Which cluster and region a data directory belongs to. */
struct cw_store_identity {
    char cluster[CW_STORE_CLUSTER_MAX + 1]; /* 1..max printable ASCII bytes */
    char region[CW_STORE_REGION_MAX + 1];   /* 1..max printable ASCII bytes */
    uint64_t incarnation; /* drawn when the directory was created; ignored by open */
};

/*
 * Opens the data directory dir as region want->region of cluster want->cluster,
 * runs recovery, and checks the directory is that region's, whole and consistent
 * (see the layout above); a new directory (absent, empty, or holding no database
 * and no log file) is created with that identity and a fresh incarnation.
 *
 * Returns CW_OK and a new store in *out, or, with *out = NULL and one line in err
 * naming the directory, what is wrong and what to do (err may be NULL when err_len
 * is 0):
 *   CW_EINVAL   bad arguments;
 *   CW_EIO      the directory cannot be created or read, or another process uses it;
 *   CW_ECONFIG  the directory belongs to another region or cluster;
 *   CW_EVERSION its identity has another store format;
 *   CW_ECORRUPT it is partial, has no identity, or is damaged (checksum, file type,
 *               pages past the end of the log);
 *   CW_ESTORE   Berkeley DB failed otherwise (a full disk, for instance);
 *   CW_ENOMEM.
 * The first open sets Berkeley DB's process-wide pause function
 * (db_env_set_func_yield): its waits between attempts to open a file when
 * descriptors or space ran out are cut from seconds to 100 ms.
 */
int cw_store_open(const char *dir, const struct cw_store_identity *want,
                  enum cw_durability durability, struct cw_store **out, char *err, size_t err_len);

/* cw_store_open with Berkeley DB's cache set to cache_bytes (0: the default,
 * CW_DEFAULT_STORE_CACHE_BYTES). */
int cw_store_open_cache(const char *dir, const struct cw_store_identity *want,
                        enum cw_durability durability, uint64_t cache_bytes, struct cw_store **out,
                        char *err, size_t err_len);

/* The store as the replica's store of record (core/reader.h): key states and
 * outbox records read back by key, checksums checked (a failure is
 * CW_ECORRUPT with cw_store_errmsg saying where, never wrong data). The reads
 * see every committed transaction. Valid until cw_store_close. */
struct cw_reader cw_store_reader(struct cw_store *s);

/* The identity of the open directory, its incarnation included. Borrowed: valid
 * until cw_store_close. */
const struct cw_store_identity *cw_store_get_identity(const struct cw_store *s);

/* Whether cw_store_open created the directory's databases (a new region). */
bool cw_store_created(const struct cw_store *s);
/* Whether cw_store_open upgraded the directory from store format 2 (it created
 * an empty raft.db and rewrote the identity's format; see the layout above). */
bool cw_store_upgraded(const struct cw_store *s);

/* Checkpoints, closes the databases and the environment, frees the store and sets
 * *s to NULL. Safe to call with *s == NULL. After a panic (cw_store_panicked)
 * the environment cannot be closed: only the directory lock is released, and
 * the rest stays allocated, reachable, until the process exits. */
void cw_store_close(struct cw_store **s);

/*
 * Applies p[0..n) in one transaction, in order (a later record for the same key
 * wins), and commits it at the store's durability. KEY with data_len == 0 deletes
 * the key (also when it is absent); OUTBOX_DEL of an absent ts is not an error.
 * RAFT_HS replaces the hard state; RAFT_TRUNC deletes every entry with index
 * >= ts; RAFT_ENTRY puts entry ts; RAFT_SNAP replaces the snapshot (index ts)
 * and deletes every entry with index <= ts. n == 0 does nothing and returns
 * CW_OK.
 *
 * Returns CW_OK, or, with nothing applied (the transaction is aborted):
 * CW_EINVAL for a malformed record (unknown kind, empty key or blob, length over
 * its bound, a Raft entry or snapshot at index 0) and CW_ESTORE when Berkeley DB fails.
 * cw_store_errmsg says which, with what to do, and cw_store_commit_cause what
 * ran out (disk space, descriptors). After a failure the replica's memory is ahead of the disk: the
 * daemon must stop and restart, which recovers the last committed state. A good commit may be
 * followed by a failed checkpoint (counted in cw_store_stats, said in cw_store_errmsg) or, rarely,
 * a panic (cw_store_panicked): the commit stands.
 */
int cw_store_commit(struct cw_store *s, const struct cw_persist *p, size_t n);

/*
 * Feeds the persisted state to r, a replica fresh from cw_replica_create: the
 * metadata first (cw_replica_restore_meta), then every key
 * (cw_replica_restore_key), then the outbox in ts order
 * (cw_replica_restore_outbox), then raft.db through cw_store_raft_scan: the
 * snapshot (cw_node_restore_raft_snapshot), the hard state
 * (cw_node_restore_raft_hardstate) and the entries in index order
 * (cw_node_restore_raft_entry), each only when stored. stats may be NULL; when not, it is filled in
 * as far as the load got. Every record's checksum is verified before the replica sees it. Returns
 * CW_OK; CW_ECORRUPT for a record whose checksum does not match (or a page whose Berkeley DB
 * checksum does not), CW_EDECODE for a record that checks but does not decode, each with err naming
 * the database and the key; CW_ENOMEM; or CW_ESTORE when Berkeley DB fails. After a failure r holds
 * a partial state and should be destroyed.
 */
int cw_store_load(struct cw_store *s, struct cw_node *r, struct cw_store_load_stats *stats,
                  char *err, size_t err_len);

/*
 * raft.db, record by record, checksums checked: the snapshot (kind
 * CW_PERSIST_RAFT_SNAP, index = its index, the bytes as committed), then the
 * hard state (CW_PERSIST_RAFT_HS, index 0), then every entry in index order
 * (CW_PERSIST_RAFT_ENTRY, index = the entry's). Absent records are skipped: an
 * empty raft.db calls fn never. The bytes are borrowed for the call only.
 *
 * fn returns CW_OK to go on; anything else stops the scan and is returned,
 * with err naming the record (CW_EDECODE: "passes its checksum but does not
 * decode"). Returns CW_OK; CW_ECORRUPT for a record that fails its checksum or
 * a key that is not one of raft.db's; CW_ESTORE when Berkeley DB fails;
 * CW_EINVAL for a NULL store or fn. cw_store_load uses it to feed the node.
 */
typedef int (*cw_store_raft_fn)(void *ctx, enum cw_persist_kind kind, uint64_t index,
                                const uint8_t *data, uint32_t len);
int cw_store_raft_scan(struct cw_store *s, cw_store_raft_fn fn, void *ctx, char *err,
                       size_t err_len);

/* A checkpoint now, whatever the log holds (the daemon's clean stop, so the
 * next start's recovery is short). Returns CW_OK, or CW_ESTORE with
 * cw_store_errmsg saying why; nothing committed is lost either way (recovery
 * replays the log). */
int cw_store_checkpoint(struct cw_store *s);

/* After how many bytes of log cw_store_commit takes a checkpoint (config key
 * checkpoint_bytes; CW_DEFAULT_CHECKPOINT_BYTES until set, and for 0). It asks Berkeley DB
 * whether one is due once per eighth of that in records, at most once per MiB:
 * the question costs Berkeley DB a read of its log. */
void cw_store_set_checkpoint_bytes(struct cw_store *s, uint64_t bytes);

/* Why the last cw_store_commit failed, or a warning it left after a good commit
 * (a failed checkpoint); "" when it succeeded cleanly. Borrowed: valid until the
 * next call on s. */
const char *cw_store_errmsg(const struct cw_store *s);

/* The cause of the last failed cw_store_commit (CW_STORE_CAUSE_NONE after a
 * good one) and of the last failed read through cw_store_reader. A failure that
 * Berkeley DB reports only as a panic ("run recovery") is put down to the
 * resource failure that came before it, when there was one. */
enum cw_store_cause cw_store_commit_cause(const struct cw_store *s);
enum cw_store_cause cw_store_read_cause(const struct cw_store *s);
/* Plain words for a cause ("No space left on device", "too many open files");
 * a static string. */
const char *cw_store_cause_name(enum cw_store_cause c);

/* Why the last read through cw_store_reader failed, with what to do; "" before
 * the first failure. Borrowed: valid until the next call on s. */
const char *cw_store_read_errmsg(const struct cw_store *s);

/* Whether Berkeley DB declared the environment dead (a panic, DB_RUNRECOVERY):
 * every later call fails, and only a restart, which runs recovery, helps. A
 * commit that fails without a panic was aborted whole and left the
 * environment usable. */
bool cw_store_panicked(const struct cw_store *s);
/* What led to the panic, when a resource failure came before it;
 * CW_STORE_CAUSE_OTHER when none did, CW_STORE_CAUSE_NONE without a panic. A
 * panic can follow a good commit (a checkpoint that could not open a log file):
 * that commit stands. */
enum cw_store_cause cw_store_panic_cause(const struct cw_store *s);
/* One line on the panic: the message that named its cause, when one did, and
 * what to do; "" without a panic. Borrowed: valid until the next call on s. */
const char *cw_store_panic_msg(struct cw_store *s);

/* Checkpoints that failed in a row since the last good one (0 when the last
 * succeeded). */
uint64_t cw_store_checkpoints_failing(const struct cw_store *s);

/* CRC32C (Castagnoli, as in iSCSI and ext4) of p[0..n), continuing from crc
 * (0 to start): the per-record checksum. Exposed for tests and tools. */
uint32_t cw_store_crc32c(uint32_t crc, const void *p, size_t n);
/* The same, one byte at a time with a table, on any CPU: what cw_store_crc32c
 * uses where the CPU has no CRC32C instruction, and what tests compare it with. */
uint32_t cw_store_crc32c_table(uint32_t crc, const void *p, size_t n);

/* The store's durability and counters. */
enum cw_durability cw_store_durability(const struct cw_store *s);
void cw_store_stats(const struct cw_store *s, struct cw_store_stats *out);

#endif
