/*
 * replica_int.h - the replica's private state, shared by the files that
 * implement it. Nothing outside src/core/replica*.c includes this header.
 *
 * The replica is split along its inputs, as canonical/raft splits recv.c,
 * tick.c and replication.c:
 *   replica.c         lifecycle, recovery, the effect buffers (ready/advance)
 *                     and observation;
 *   replica_client.c  local requests: put, get, and requests waiting for
 *                     their session's context;
 *   replica_stream.c  the replication stream: records, heartbeats, resend
 *                     requests, causal delivery from the dependency buffer;
 *   replica_gc.c      time: heartbeats, time-outs, causal stability, outbox
 *                     and tombstone collection.
 */
#ifndef CW_CORE_REPLICA_INT_H
#define CW_CORE_REPLICA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cw_assert.h"
#include "core/replica.h"

#define KE_HAS_TOMB 1u
#define KE_REF 2u /* used since the eviction sweep last passed */

/* A FIFO of records (used for the outbox and the per-origin dependency queues). */
struct recq {
    struct cw_record *v;
    size_t head, n, cap;
    uint64_t bytes; /* rp_record_bytes of every record held */
};

struct origin_in {
    struct recq q;        /* received in chain order, not yet applied */
    uint64_t received;    /* ts of the last record accepted in chain order */
    uint64_t chain;       /* ts of the last record applied */
    unsigned wait_region; /* the head's first unmet dependency ... */
    uint64_t wait_ts;     /* ... and the entry it needs; 0 when not blocked */
    uint64_t nack_at_us;  /* when we last asked for a resend (0: never) */
    uint32_t owed;        /* records accepted since our last message to this origin */
};

struct peer_out {
    bool known;         /* heard from since start, so sent_upto is meaningful */
    uint64_t sent_upto; /* ts of the last record sent on this link */
    struct cw_vclock applied;
    struct cw_vclock received;
};

/* A request waiting until the region has applied its session's context. */
struct waiting {
    bool is_put;
    bool tombstone;
    uint64_t req_id;
    uint64_t deadline_us;
    struct cw_vclock context;
    struct cw_vclock kctx;
    char bucket[CW_BUCKET_NAME_MAX + 1];
    uint32_t key_len, value_len;
    uint8_t *key, *value; /* owned copies */
};

struct vec {
    void *v;
    size_t n, cap;
};

/* The rebuilding side of a state transfer (replica_snap.c). */
enum rebuild_phase { RB_DONE = 0, RB_ANNOUNCE = 1, RB_COPY = 2 };

struct rebuild {
    enum rebuild_phase phase;
    uint32_t acked;  /* bit p: peer p answered a REBUILDING heartbeat */
    bool started;    /* the first chunk (with the snapshot) arrived */
    uint64_t req_at_us; /* when the outstanding request was sent (0: none) */
    uint64_t announce_at_us;
    uint32_t next_len;  /* ask for keys after next */
    uint8_t next[CW_FULL_KEY_MAX];
    struct cw_vclock applied, chain; /* the donor's snapshot */
    uint64_t clock;
    uint64_t own_floor; /* highest stamp of this region's old stream peers hold */
    uint64_t own_clock; /* highest clock peers saw for this region */
};

/* Donor side: its key names sorted at a transfer's first request. */
struct snap_cursor {
    bool valid;
    uint8_t **keys; /* each: uint32 length, then the key bytes */
    size_t n;
};

struct cw_replica {
    struct cw_replica_config cfg;
    struct cw_bucket_policy *buckets;
    struct cw_hlc hlc;
    struct cw_vclock applied;
    uint64_t stream_end;
    struct origin_in in[CW_REGIONS_MAX];
    struct peer_out out[CW_REGIONS_MAX];
    struct recq outbox;
    struct cw_keymap keys;
    struct vec tomb_keys; /* struct cw_keyentry *: keys that hold tombstones */
    struct vec waiting;   /* struct waiting, in arrival order */
    size_t buffered;
    uint64_t last_heartbeat_us;
    bool meta_dirty;
    bool meta_emitted; /* the meta record is in the current ready */
    /* Local writes joined the outbox since the last ready: the next
     * cw_replica_ready ships them (replication on commit, not on the tick). */
    bool outbox_fresh;
    uint64_t now_us;        /* mono_us of the latest get, put, recv or tick */
    uint64_t last_flush_us; /* mono_us of the last on-commit flush (0: none yet) */
    /* Between cw_replica_ready and cw_replica_advance: no input is allowed, its
     * effects would be cleared by the advance without being carried out. */
    bool in_ready;
    struct cw_vclock checked_applied; /* applied at the last invariant check */
    uint64_t key_bytes;               /* rp_entry_bytes over the key map */
    uint64_t body_bytes;              /* key and value bytes of outbox bodies in memory */
    size_t clock_hand;                /* key map slot where the next eviction sweep starts */
    size_t body_hand;                 /* outbox index below which bodies may be dropped */
    /* The state at the last advance (everything persisted): what a donor's
     * snapshot names, so every key state it copies contains at least it. */
    bool adv_valid;
    struct cw_vclock adv_applied, adv_chain;
    uint64_t adv_clock;
    struct rebuild rb;
    struct snap_cursor snap_cur[CW_REGIONS_MAX]; /* per rebuilding peer */
    struct cw_ready ready;
    size_t cap_persist, cap_msgs, cap_replies;
    struct cw_replica_stats stats;
    struct cw_hist visibility[CW_REGIONS_MAX]; /* apply time - origin commit time, us */
};

/* ---------------------------------------------------------------- helpers */

/* Shared helpers (each file's own helpers stay static). */
int rp_vec_push(struct vec *v, const void *item, size_t size);
void *rp_grow_array(void **arr, size_t *cap, size_t n, size_t size);
struct cw_record *rp_recq_at(const struct recq *q, size_t i);
struct cw_record *rp_recq_push_slot(struct recq *q);
void rp_recq_pop(struct recq *q);
/* Takes the slot rp_recq_push_slot returned (filled by the caller) into the queue. */
void rp_recq_commit(struct recq *q);
/* What a record costs a queue in memory, for the byte bounds. */
uint64_t rp_record_bytes(const struct cw_record *rec);
/* Bytes held in the dependency buffer, over every origin. */
uint64_t rp_buffered_bytes(const struct cw_replica *r);
void rp_recq_free(struct recq *q);
size_t rp_recq_after(const struct recq *q, uint64_t after);
struct cw_persist *rp_persist_slot(struct cw_replica *r);
void rp_oom(void);
void rp_emit_key(struct cw_replica *r, const struct cw_keyentry *e);
void rp_emit_outbox(struct cw_replica *r, enum cw_persist_kind kind, const struct cw_record *rec);
void rp_visible(const struct cw_replica *r, struct cw_vclock *out);
struct cw_msg *rp_msg_slot(struct cw_replica *r, unsigned to, enum cw_msg_type type);
void rp_send_heartbeat(struct cw_replica *r, unsigned p, uint64_t clock);
struct cw_reply *rp_reply_slot(struct cw_replica *r, enum cw_reply_kind kind, uint64_t req_id,
                               int err);
bool rp_covers(const struct cw_replica *r, const struct cw_vclock *need);
bool rp_stamp_plausible(const struct cw_replica *r, struct cw_now now, uint64_t ts);
uint64_t rp_stable_self(const struct cw_replica *r);
void rp_drain(struct cw_replica *r, struct cw_now now);
void rp_flush_stream(struct cw_replica *r, unsigned p);
void rp_flush_all(struct cw_replica *r);
void rp_collect_outbox(struct cw_replica *r);
void rp_collect_tombstones(struct cw_replica *r);
void rp_check_waiting(struct cw_replica *r, struct cw_now now, bool expire);
void rp_free_waiting(struct waiting *w);
void rp_note_tombstones(struct cw_replica *r, struct cw_keyentry *e);
/* An error reply with its detail string (which key, which limit). */
void rp_reply_fail(struct cw_replica *r, enum cw_reply_kind kind, uint64_t req_id, int err,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The key cache. rp_key_get finds a key in memory or reads it through the
 * reader (create: an absent key gets an empty entry); NULL with *rc set when the
 * key is absent (CW_ENOTFOUND, only without create) or the read failed. Every
 * change of an entry's state is bracketed by rp_entry_bytes before and
 * rp_key_resized after, so key_bytes stays exact. */
struct cw_keyentry *rp_key_get(struct cw_replica *r, const uint8_t *key, uint32_t key_len,
                               bool create, int *rc);
uint64_t rp_entry_bytes(const struct cw_keyentry *e);
void rp_key_resized(struct cw_replica *r, uint64_t before, const struct cw_keyentry *e);
/* After an advance (nothing unpersisted in memory): drop least recently used
 * key states and the oldest outbox bodies down to their budgets. */
void rp_cache_trim(struct cw_replica *r);
/* Pops the outbox's oldest record (its body, if in memory, too). */
void rp_outbox_pop(struct cw_replica *r);
/* The body of an outbox record, from memory or the reader; CW_OK or an error. */
int rp_outbox_body(struct cw_replica *r, const struct cw_record *stub, struct cw_record *out);
/* Removes a key from the map, and from the tombstone list when it is there:
 * never free an entry the list still points to. */
void rp_remove_key(struct cw_replica *r, struct cw_keyentry *e);
/* State transfer (replica_snap.c). */
void rp_snap_advanced(struct cw_replica *r);
void rp_snap_free(struct cw_replica *r);
void rp_snap_tick(struct cw_replica *r, struct cw_now now);
/* Messages a rebuilding region or a donor handles before the stream: true when
 * m was consumed. */
bool rp_snap_recv(struct cw_replica *r, struct cw_now now, const struct cw_msg *m);
/* Every input starts with this: the ready/advance contract. */
#define RP_INPUT(r) CW_ASSERT(!(r)->in_ready)

#endif
