/*
 * replica.h - the causal replication state machine of one region.
 *
 * The replica decides; adapters do. It is driven by four kinds of input:
 *   - local requests: cw_replica_put / cw_replica_get (a delete is a put of a
 *     tombstone), each tagged with a caller-chosen request id;
 *   - messages from peer regions: cw_replica_recv;
 *   - time: cw_replica_tick (heartbeats, read time-outs, tombstone collection);
 *   - recovery: cw_replica_restore_* before the first input.
 * Every input takes the time as an argument (core/now.h: wall-clock time for
 * stamps, monotonic time for timers); the replica never reads a clock, touches a
 * socket or a disk, or draws a random number.
 *
 * It answers with effects, collected in a cw_ready (the shape of etcd raft's
 * Ready). The driver MUST carry them out in this order: persist every record in
 * ready.persist in one transaction and make it durable at the configured level;
 * then send ready.msgs; then deliver ready.replies; then call cw_replica_advance.
 * Persisting first is what makes an acknowledgement or a read imply durability:
 * a client never sees, and a peer is never told about, state that a crash could
 * lose.
 *
 * Replication protocol (see docs/consistency.md and docs/protocol.md):
 * each region streams its own writes to every peer in HLC order; every record
 * carries prev_ts, the stamp of the origin's previous record, so a receiver
 * detects a gap and asks for a resend (CW_MSG_NACK) instead of applying out of
 * order. Every message carries the sender's applied vector and chain positions
 * (the acknowledgement), and heartbeats carry the origin's clock and the end of
 * its stream, so a lost tail is detected too. A remote record of a causal bucket
 * is applied when it is next in its origin's chain and the applied vector covers
 * its dependency vector; until then it waits in the dependency buffer.
 */
#ifndef CW_CORE_REPLICA_H
#define CW_CORE_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hist.h"
#include "core/hlc.h"
#include "core/keymap.h"
#include "core/limits.h"
#include "core/now.h"
#include "core/reader.h"
#include "core/record.h"
#include "core/vclock.h"
#include "core/version.h"

struct cw_bucket_policy {
    char name[CW_BUCKET_NAME_MAX + 1];
    enum cw_consistency consistency;
    enum cw_conflict conflict;
    uint32_t max_siblings; /* siblings buckets: a local write beyond it fails */
};

struct cw_replica_config {
    unsigned region;                        /* this region's id, < n_regions */
    unsigned n_regions;                     /* 1..CW_REGIONS_MAX */
    const struct cw_bucket_policy *buckets; /* copied by cw_replica_create */
    unsigned n_buckets;
    uint32_t max_value_bytes;   /* default 1 MiB */
    uint32_t dep_buffer_max;    /* remote records waiting for dependencies */
    uint32_t outbox_max;        /* local records not yet applied everywhere */
    uint32_t batch_records_max; /* records per replication message */
    uint32_t
        batch_bytes_max;     /* key and value bytes per replication message (at least one record) */
    uint32_t window_records; /* records in flight per peer before an ack */
    /* false (the default): a round's local writes are shipped in that round's
     * ready, right after the commit that makes them durable (replication on
     * commit). true: they wait for the next tick (or acknowledgement), which
     * batches several rounds into one message; the tests of batching use it. */
    bool flush_on_tick;
    /* On commit, at most one flush per flush_gap_us (0: the default, 2 ms): a
     * round that commits sooner after the last flush leaves its writes for the
     * first round or tick after the gap (cw_replica_flush_due_us says when), so a
     * node answering many small rounds does not send a message per round. */
    uint32_t flush_gap_us;
    /* The same three queues bounded in bytes (rp_record_bytes: the record's
     * struct, key and value). A local write that would pass outbox_bytes_max
     * fails with CW_EFULL (an empty outbox always takes one write); a remote
     * record that would pass dep_buffer_bytes_max waits for a resend unless it
     * applies at once; a link stops sending at inflight_bytes_max until acked
     * (at least one record is always in flight). */
    uint64_t outbox_bytes_max;
    uint64_t dep_buffer_bytes_max;
    uint64_t inflight_bytes_max;
    /* The store of record (core/reader.h). With a reader, key states beyond
     * key_cache_bytes_max and outbox record bodies beyond outbox_cache_bytes_max
     * are dropped from memory once persisted (least recently used keys, oldest
     * records first) and read back when needed. Without one, both stay. */
    struct cw_reader reader;
    uint64_t key_cache_bytes_max;
    uint64_t outbox_cache_bytes_max;
    /* Requests of causal buckets (reads and writes) waiting until V covers their
     * session's context; beyond it a request fails with CW_EFULL. */
    uint32_t waiting_max;
    uint64_t heartbeat_us;  /* heartbeat period */
    uint64_t nack_retry_us; /* minimum spacing of resend requests per origin */
    /* How long such a request may wait; then it fails with CW_ENOTREADY. Requests
     * of eventual buckets never wait. */
    uint64_t wait_us;
    /* A put whose context holds a stamp more than this far ahead of the region's
     * physical time is refused (CW_ECONTEXT), and so are peer stamps that far
     * ahead: they would drag the HLC into the future. */
    uint64_t context_ahead_max_us;
    /* Rebuilding a region whose disk was lost (docs/operations.md): start with
     * an empty store and copy a consistent state from region rebuild_from, then
     * join the streams. Until then client requests are refused (the node answers
     * CW_EUNAVAILABLE) and the stream is not applied. */
    bool rebuild;
    unsigned rebuild_from;
    /* Donor side: key states per snapshot chunk (0: CW_DEFAULT_SNAP_KEYS_MAX);
     * a chunk is also cut at batch_bytes_max of keys and values (at least one). */
    uint32_t snap_keys_max;
    /* Testing only: treat every bucket as eventual (no dependency checks), so the
     * simulator can prove its checker catches what causality prevents. */
    bool force_eventual;
};

/* Fills in defaults for every zero field of cfg. */
void cw_replica_config_defaults(struct cw_replica_config *cfg);

enum cw_persist_kind {
    CW_PERSIST_KEY = 1,        /* key -> encoded key state; empty value = delete the key */
    CW_PERSIST_OUTBOX_PUT = 2, /* ts -> encoded record */
    CW_PERSIST_OUTBOX_DEL = 3, /* ts */
    CW_PERSIST_META = 4,       /* encoded replica metadata (one per node) */
    /* Strong buckets (core/strong.h), in the same transaction: */
    CW_PERSIST_RAFT_HS = 5,    /* encoded Raft hard state (one per node) */
    CW_PERSIST_RAFT_TRUNC = 6, /* delete every stored Raft entry with index >= ts */
    CW_PERSIST_RAFT_ENTRY = 7, /* ts = index -> encoded entry */
    CW_PERSIST_RAFT_SNAP = 8,  /* ts = index -> encoded snapshot (one per node, replaces
                                * the last); delete every stored entry with index <= ts */
};

struct cw_persist {
    enum cw_persist_kind kind;
    uint64_t ts;      /* OUTBOX_* */
    uint32_t key_len; /* KEY */
    uint8_t *key;     /* owned by the ready */
    uint32_t data_len;
    uint8_t *data; /* owned by the ready */
};

enum cw_reply_kind { CW_REPLY_PUT = 1, CW_REPLY_GET = 2 };

struct cw_reply {
    enum cw_reply_kind kind;
    uint64_t req_id;
    int err; /* CW_OK or an enum cw_err */
    /* With an error: what exactly, filled where the decision was made (which
     * key, which limit, which region is behind). NUL-terminated, may be empty. */
    char detail[CW_DETAIL_MAX];
    /* PUT: the new write's dot; the session joins it into its context. */
    struct cw_dot dot;
    /* PUT: the key context the session may remember for this key (kctx_valid:
     * the write replaced every other version, so its context is exact). GET: the
     * key context of what was read, to send back with a merging put. */
    bool kctx_valid;
    struct cw_vclock kctx;
    /* GET: the dots of everything read, tombstones included; joined into the
     * session context. */
    struct cw_vclock seen;
    /* GET: every version held, tombstones included, in (ts, origin) order; a read
     * whose versions are all tombstones is "not found". Owned by the ready. */
    struct cw_keystate state;
    enum cw_conflict conflict;
    /* Strong buckets: the key's version (the Raft index of its last write; 0:
     * absent) after a put, as read by a get, or, with CW_ECONFLICT, the
     * current one. A strong get's state holds at most one version. */
    uint64_t version;
};

struct cw_ready {
    struct cw_persist *persist;
    size_t n_persist;
    struct cw_msg *msgs;
    size_t n_msgs;
    struct cw_reply *replies;
    size_t n_replies;
};

enum cw_put_cond {
    CW_COND_NONE = 0,
    CW_COND_VERSION = 1, /* write only if the key's version is cond_version */
    CW_COND_ABSENT = 2,  /* write only if the key does not exist */
};

struct cw_put_req {
    uint64_t req_id;
    const char *bucket; /* NUL-terminated */
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value; /* ignored for deletes */
    uint32_t value_len;
    bool tombstone;           /* a delete */
    struct cw_vclock context; /* the session's causal context */
    struct cw_vclock kctx;    /* the key context the client read, or zero */
    /* Strong buckets only (a condition on a causal bucket is CW_EINVAL): */
    uint8_t cond;           /* enum cw_put_cond */
    uint64_t cond_version;  /* CW_COND_VERSION: the version the key must have */
};

struct cw_get_req {
    uint64_t req_id;
    const char *bucket;
    const uint8_t *key;
    uint32_t key_len;
    struct cw_vclock context;
};

struct cw_replica_stats {
    uint64_t puts, gets, deletes;
    uint64_t remote_applied, remote_duplicates, remote_gaps;
    uint64_t nacks_sent, nacks_received, resent_records;
    uint64_t reads_waited, reads_timed_out; /* requests (reads and writes) that waited */
    uint64_t buffer_full_drops;
    uint64_t tombstones_collected;
    uint64_t stamps_refused;            /* peer stamps too far past physical time: clock skew? */
    uint64_t keys_loaded, keys_evicted; /* key cache traffic (with a reader) */
    uint64_t bodies_loaded, bodies_evicted; /* outbox bodies read back / dropped */
    uint64_t store_read_errors;             /* reader calls that failed */
    uint64_t snap_chunks_served, snap_keys_served; /* donor side of state transfers */
    uint64_t snap_keys_copied;                     /* rebuilding side */
    uint64_t stream_skips; /* a rebuilt peer's lost records skipped (stream_base) */
    uint64_t errors;
};

struct cw_replica;

/* Returns NULL when cfg is invalid or memory is short. */
struct cw_replica *cw_replica_create(const struct cw_replica_config *cfg);
/* Frees everything, including effects not yet advanced; sets *r to NULL. */
void cw_replica_destroy(struct cw_replica **r);

/* Recovery, before any other input: the records the driver persisted. Outbox
 * records MUST be restored in ts order. Returns CW_EDECODE for corrupt bytes. */
int cw_replica_restore_meta(struct cw_replica *r, const uint8_t *data, uint32_t len);
int cw_replica_restore_key(struct cw_replica *r, const uint8_t *key, uint32_t key_len,
                           const uint8_t *data, uint32_t len);
int cw_replica_restore_outbox(struct cw_replica *r, const uint8_t *data, uint32_t len);

/* Local requests. The reply arrives as an effect, possibly after later inputs:
 * a request of a causal bucket waits until this region has applied its session's
 * context (V >= context), up to wait_us. Validation errors reply at once:
 * CW_EBUCKET, CW_EUNKNOWNBUCKET, CW_ESTRONG, CW_EKEY, CW_EVALUE, and CW_ECONTEXT
 * for a context naming a region the cluster lacks or a stamp more than
 * context_ahead_max_us ahead of this region's physical time. */
void cw_replica_put(struct cw_replica *r, struct cw_now now, const struct cw_put_req *req);
void cw_replica_get(struct cw_replica *r, struct cw_now now, const struct cw_get_req *req);

/* A message from a peer. The message stays owned by the caller. Malformed
 * messages (bad region ids, broken chains) are counted and ignored. */
void cw_replica_recv(struct cw_replica *r, struct cw_now now, const struct cw_msg *m);

/* Time passes: heartbeats, batching, read time-outs, garbage collection. */
void cw_replica_tick(struct cw_replica *r, struct cw_now now);

/* The effects produced since the last advance. Borrowed until cw_replica_advance.
 * Call it once all the inputs of a round are given, and give no input between it
 * and cw_replica_advance: the metadata record is built here, from the state at
 * this call. */
const struct cw_ready *cw_replica_ready(struct cw_replica *r);
bool cw_replica_has_ready(const struct cw_replica *r);
void cw_replica_advance(struct cw_replica *r);

/*
 * Checks the replica's internal invariants: every stored key holds at least one
 * version, in strict (ts, origin) order, none of them replaced; the tombstone
 * list holds exactly the keys with tombstones; the dependency buffer's count
 * matches its queues and its bound, and each origin's queue continues its chain
 * (prev_ts links, stamps above what is applied); the outbox is this region's
 * chain in stamp order within its bound; no stamp held is above the clock; the
 * applied vector never went backwards since the previous check. Returns true
 * when all hold; otherwise false with a description in why (NUL-terminated,
 * truncated to why_len). Cost is linear in the state: for tests and the
 * simulator, after every event.
 */
bool cw_replica_check_invariants(struct cw_replica *r, char *why, size_t why_len);

/* Rebuilding (cfg.rebuild): true until the state transfer is complete. The
 * phase for the progress line: "announcing" (waiting for every peer to answer),
 * "copying", or "" when done. */
bool cw_replica_rebuilding(const struct cw_replica *r);
const char *cw_replica_rebuild_phase(const struct cw_replica *r);

/* Observation (status, tests, the simulator's checker). */
const struct cw_vclock *cw_replica_applied(const struct cw_replica *r);
size_t cw_replica_buffered(const struct cw_replica *r);
size_t cw_replica_outbox_len(const struct cw_replica *r);
/* The byte figures behind the byte bounds (status shows them). */
uint64_t cw_replica_outbox_bytes(const struct cw_replica *r);
/* Memory held for key states (with a reader: the cache) and outbox bodies. */
uint64_t cw_replica_key_cache_bytes(const struct cw_replica *r);
uint64_t cw_replica_outbox_body_bytes(const struct cw_replica *r);
/* The current state of a full key, from memory or through the reader: CW_OK with
 * *out filled (caller frees), CW_ENOTFOUND, or the reader's error. For
 * observation (tests, the simulator's history); does not touch the cache. */
int cw_replica_read_key(const struct cw_replica *r, const uint8_t *key, uint32_t key_len,
                        struct cw_keystate *out);
uint64_t cw_replica_buffered_bytes(const struct cw_replica *r);
/* Sent to peer and not yet acknowledged. */
uint64_t cw_replica_inflight_bytes(const struct cw_replica *r, unsigned peer);
/* Outbox records not yet applied by peer (what that peer still lacks). */
size_t cw_replica_outbox_pending(const struct cw_replica *r, unsigned peer);
size_t cw_replica_waiting(const struct cw_replica *r);
const struct cw_replica_stats *cw_replica_stats(const struct cw_replica *r);

/* Local writes wait for the flush gap (flush_gap_us): the mono_us from which a
 * tick (or any round) ships them; 0 when none wait. A driver that ticks only
 * every few milliseconds ticks at this time too, so no write waits for the
 * regular tick. */
uint64_t cw_replica_flush_due_us(const struct cw_replica *r);
/* The per-origin stability vector: entry o is the least applied[o] over every
 * region as last acknowledged. */
void cw_replica_stability(const struct cw_replica *r, struct cw_vclock *out);
const struct cw_keymap *cw_replica_keys(const struct cw_replica *r);
const struct cw_bucket_policy *cw_replica_bucket(const struct cw_replica *r, const char *name);
uint64_t cw_replica_clock(const struct cw_replica *r);
/* Remote visibility latency of origin's writes here, in microseconds: physical
 * time at apply minus the origin's physical commit time. NULL for a bad id. */
const struct cw_hist *cw_replica_visibility(const struct cw_replica *r, unsigned origin);

#endif
