/*
 * record.h - what regions exchange: replicated records and replication
 * messages, their deep copy and free, and the checks every record from a peer
 * must pass before the replica looks at it.
 *
 * Dependencies run one way: vclock <- version <- record <- codec <- replica <-
 * node. This module knows nothing of the replica's state; the codec (disk) and
 * the wire layer (network) build on it.
 *
 * Ownership: a cw_record owns its key and its value; a cw_msg owns its records.
 * cw_record_free / cw_msg_free release what they own and leave the struct empty
 * (safe to free twice). Copies are deep.
 */
#ifndef CW_CORE_RECORD_H
#define CW_CORE_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"
#include "core/vclock.h"
#include "core/version.h"

enum cw_consistency { CW_CAUSAL = 0, CW_EVENTUAL = 1, CW_STRONG = 2 };

/* One replicated write: the origin's stream element. */
struct cw_record {
    uint64_t prev_ts;      /* the origin's previous record (0 for its first) */
    uint8_t consistency;   /* enum cw_consistency of the bucket at the origin */
    uint8_t conflict;      /* enum cw_conflict of the bucket at the origin */
    struct cw_vclock deps; /* the writer session's context */
    uint32_t key_len;
    uint8_t *key;              /* "bucket/key" bytes, owned */
    struct cw_version version; /* dot, key context and value (value owned) */
};

enum cw_msg_type {
    CW_MSG_RECORDS = 1,   /* a batch of the sender's own records, in chain order */
    CW_MSG_HEARTBEAT = 2, /* clock, end of stream and acknowledgements */
    CW_MSG_NACK = 3,      /* please resend your records after resend_after */
    /* State transfer (rebuilding a region whose disk was lost, see
     * docs/operations.md): a rebuilding region asks a donor for its key states
     * with keys after snap_after (byte order); the donor answers with a chunk. */
    CW_MSG_SNAP_REQUEST = 4,
    CW_MSG_SNAP_CHUNK = 5,
    /* Strong buckets: one Raft message (core/raft.h) in `raft`. The
     * acknowledgement fields below are unused (zero). */
    CW_MSG_RAFT = 6,
};

/* cw_msg.flags */
#define CW_MSGF_REBUILDING 1u   /* HEARTBEAT: the sender is rebuilding; its acks restart */
#define CW_MSGF_REBUILD_ACK 2u  /* HEARTBEAT: answer to a REBUILDING heartbeat, sent after
                                 * the sender took the rebuilding region's acks as they are */
#define CW_MSGF_SNAP_FIRST 4u   /* SNAP_*: the transfer's first chunk (carries the snapshot) */
#define CW_MSGF_SNAP_DONE 8u    /* SNAP_CHUNK: nothing after this chunk */
#define CW_MSGF_ALL 15u

/* One key of a snapshot chunk. */
struct cw_snapkey {
    uint32_t key_len;
    uint8_t *key; /* "bucket/key", owned */
    struct cw_keystate state;
};

struct cw_raft_msg;

struct cw_msg {
    enum cw_msg_type type;
    uint8_t from;
    uint8_t to;
    /* Acknowledgement, in every message: the sender's durable applied vector and,
     * per origin, the last record it holds in chain order. */
    struct cw_vclock applied;
    struct cw_vclock received;
    /* HEARTBEAT: the sender's records end at stream_end and every record it will
     * issue later exceeds clock; on this link it has sent up to stream_sent before
     * this message (links are FIFO), so a receiver holding less lost some. */
    uint64_t clock;
    uint64_t stream_end;
    uint64_t stream_sent;
    /* NACK */
    uint64_t resend_after;
    /* RECORDS */
    uint32_t n_records;
    struct cw_record *records; /* owned */
    /* CW_MSGF_* */
    uint32_t flags;
    /* HEARTBEAT: the sender can resend its records after stream_base (its
     * outbox's first prev_ts, or its stream end); a receiver holding less lost
     * them with the sender's disk (a rebuilt region) and skips to it. */
    uint64_t stream_base;
    /* SNAP_REQUEST: keys after snap_after. SNAP_CHUNK: snap_after echoed, the
     * chunk's keys (all > snap_after, ascending), and snap_next, the key to ask
     * after next (the last key of the chunk). Keys are owned. */
    uint32_t snap_after_len, snap_next_len;
    uint8_t *snap_after, *snap_next;
    uint32_t n_snapkeys;
    struct cw_snapkey *snapkeys;
    /* SNAP_CHUNK with CW_MSGF_SNAP_FIRST: the donor's state the copied key states
     * contain at least: applied vector, chain positions (its own entry: its
     * stream end) and clock. */
    struct cw_vclock snap_applied, snap_chain;
    uint64_t snap_clock;
    /* RAFT: the Raft message, owned (freed and copied with the cw_msg). */
    struct cw_raft_msg *raft;
};

void cw_record_free(struct cw_record *r);
/* Deep copy into dst (overwritten, not freed). On failure dst owns nothing. */
int cw_record_copy(struct cw_record *dst, const struct cw_record *src);
/* Frees what m owns: records, snapshot keys and states. */
void cw_msg_free(struct cw_msg *m);
/* Deep copy (for transports that duplicate, and the simulator). */
int cw_msg_copy(struct cw_msg *dst, const struct cw_msg *src);

/* Validation shared with clients: CW_OK, CW_EBUCKET or CW_EKEY. */
int cw_validate_bucket(const char *bucket);
int cw_validate_key(const uint8_t *key, uint32_t len);
/* A full key "bucket/key" as records and the store carry it. */
bool cw_full_key_valid(const uint8_t *key, uint32_t len);

/*
 * Structural checks on a record received from region `from` in a cluster of
 * n_regions: everything that an honest writer's record always satisfies,
 * independent of the receiver's state. The origin is the sender; the stamp
 * follows prev_ts; consistency and conflict are known; the key is valid; the
 * value is within the hard bound; the dependency vector and the key context
 * name only regions of the cluster, and every entry of either is below the
 * record's own stamp (a writer stamps after observing both, so an entry at or
 * past the stamp is forged: it would let a record replace itself or versions
 * written after it). Returns NULL when valid, else a static description.
 */
const char *cw_record_check(const struct cw_record *rec, unsigned from, unsigned n_regions);

#endif
