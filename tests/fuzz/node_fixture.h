/*
 * node_fixture.h - the state machine under the node-level fuzz targets
 * (fuzz_node_peer, fuzz_node_client) and their seed generator
 * (gen_node_corpus.c): one node of region 1 in a 3-region cluster, driven the
 * way the daemon drives it, with every effect checked.
 *
 * Input format (both targets): a sequence of chunks
 *
 *     chunk := ctl:u8  len:u16 (little-endian)  frame:len bytes
 *
 * A chunk whose len runs past the end of the input takes what is left; fewer
 * than 3 bytes left end the input; at most FX_STEPS_MAX chunks run. Each chunk
 * is one step:
 *   1. time moves (ctl bits 0-3, FX_ADV_* and FX_REAL_BACK): mono_us and real_us
 *      both advance by fx_adv_us[ctl & 7]; with FX_REAL_BACK real_us first jumps
 *      back 2 s (mono_us never goes back);
 *   2. the frame, when len > 0, is decoded with the real wire decoder and given
 *      to the node: fuzz_node_peer decodes a replication frame
 *      (cw_wire_decode_peer, default limits) for cw_node_recv; fuzz_node_client
 *      decodes a client request (cw_wire_decode_request, the daemon's limits)
 *      and turns PUT/DEL/GET into cw_node_put/get as src/server/server.c does;
 *   3. FX_ALT: fuzz_node_peer: the frame's RecordBatch is raw (uncompressed):
 *      the fixture compresses it as the sender would before step 2, so that
 *      mutations reach the records past LZ4's checksum. fuzz_node_client: after
 *      step 2, regions 0 and 2 send the node honest heartbeats (their clock is
 *      the physical time; they acknowledge the node's whole stream) and answer
 *      the Raft messages it sent them since the last step as followers that
 *      never campaign (votes granted, appends and snapshots acknowledged), so
 *      that the node can lead and strong requests can succeed;
 *   4. FX_TICK: cw_node_tick;
 *   5. unless FX_HOLD, the round ends: the ready set is drained (persisted into
 *      an in-memory durable image, messages re-encoded and decoded, replies
 *      turned into responses and round-tripped, cw_node_advance), every effect
 *      checked; again while the node has effects (the strong part compacts its
 *      log at advance, which the next ready persists), a few times at most;
 *   6. FX_RESTART: the round ends and the node crashes: it is rebuilt from the
 *      durable image alone (cw_node_restore_*, the Raft records in the store's
 *      order: snapshot, hard state, log), which must restore it to the same
 *      keys, applied vector and outbox, the same Raft term, vote, commit and
 *      log; after its first round (which replays the committed log) its strong
 *      state must be the one before the crash (applied index, digest).
 * The strong bucket's persisted Raft records are checked as they are stored:
 * they decode, the term and commit never go back, the log stays consecutive
 * after the snapshot with non-decreasing terms, a committed entry is never cut;
 * every outgoing Raft message passes cw_raft_msg_check and relies only on what
 * is durable (its term, a granted vote, the entries and snapshot it carries).
 * cw_node_check_invariants runs after every step. At the end of the input the
 * round ends, time moves past every waiting request's deadline, the node ticks,
 * and every request given to it must have had exactly one reply; then it
 * restarts once more.
 *
 * Before the first chunk the node is preloaded (fx_init): puts and deletes in
 * every bucket (so there are keys, siblings, tombstones and an outbox) and
 * requests that wait for records of regions 0 and 2.
 *
 * Any broken property calls FUZZ_CHECK or fx_fail, which abort().
 *
 * Environment: CAUSEWAY_FUZZ_TRACE prints every step and effect to stderr (to
 * read what a reproducer does). The two findings of the first runs are fixed in
 * the core; their reproducers are in the corpus (node_peer/finding-*).
 */
#ifndef CW_TESTS_FUZZ_NODE_FIXTURE_H
#define CW_TESTS_FUZZ_NODE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/codec.h"
#include "core/node.h"

#define FX_REGION 1u
#define FX_REGIONS 3u
#define FX_STEPS_MAX 512u
/* Physical time at the start of every input (November 2023). */
#define FX_T0_US 1700000000000000ull

/* ctl bits. */
#define FX_ADV_MASK 0x07u
#define FX_REAL_BACK 0x08u
#define FX_TICK 0x10u
#define FX_HOLD 0x20u
#define FX_ALT 0x40u
#define FX_RESTART 0x80u
/* Indexes into fx_adv_us, named for the timers they cross. */
enum {
    FX_ADV_0 = 0,
    FX_ADV_1US = 1,
    FX_ADV_1MS = 2,
    FX_ADV_20MS = 3,
    FX_ADV_HEARTBEAT = 4, /* 60 ms: past heartbeat_us */
    FX_ADV_NACK = 5,      /* 350 ms: past nack_retry_us */
    FX_ADV_WAIT = 6,      /* 1.2 s: past wait_us */
    FX_ADV_AHEAD = 7,     /* 15 s: past context_ahead_max_us */
};
extern const uint64_t fx_adv_us[8];
#define FX_REAL_BACK_US 2000000ull

/* The node's configuration: small bounds, so that an input of a few frames can
 * reach every one of them. */
#define FX_HEARTBEAT_US 50000ull
#define FX_NACK_RETRY_US 300000ull
#define FX_WAIT_US 1000000ull
#define FX_AHEAD_US 10000000ull
#define FX_MAX_VALUE 256u
#define FX_MAX_SIBLINGS 3u
/* The strong bucket: elections within a few steps of FX_ADV_NACK, compaction
 * every few entries (so snapshots are sent and restored), a state machine a
 * handful of keys fill (CW_EFULL). */
#define FX_ELECTION_MIN_US 300000ull
#define FX_SNAPSHOT_ENTRIES 4u
#define FX_STRONG_BYTES_MAX 4096u
/* Readies drained at most per round (see step 5). */
#define FX_ROUND_PASSES 4

/* Callbacks for the seed generator: every encoded outgoing frame, every reply. */
struct fx_hooks {
    void *ctx;
    void (*frame)(void *ctx, unsigned to, const uint8_t *frame, size_t len);
    void (*reply)(void *ctx, const struct cw_reply *r);
};

struct fx_blob {
    uint8_t *key; /* KEY: the full key */
    uint32_t key_len;
    uint64_t ts; /* OUTBOX */
    uint8_t *data;
    uint32_t len;
};

/* A stored Raft entry (its record's bytes, and what they decode to). */
struct fx_entry {
    uint64_t index, term;
    uint8_t *data;
    uint32_t len;
};

/* What the driver made durable, as a store would hold it. */
struct fx_store {
    struct fx_blob *keys;
    size_t n_keys, cap_keys;
    struct fx_blob *outbox; /* in ts order */
    size_t n_outbox, cap_outbox;
    uint8_t *meta;
    uint32_t meta_len;
    struct cw_meta meta_dec;
    /* Strong buckets (src/sim/fixture.c's semantics): the hard state (one),
     * the snapshot (one) and the log (index order, consecutive). */
    uint8_t *raft_hs;
    uint32_t raft_hs_len;
    struct cw_raft_hardstate hs; /* decoded; zero (vote NONE) before the first */
    uint8_t *raft_snap;
    uint32_t raft_snap_len;
    uint64_t snap_index, snap_term; /* 0 without a snapshot */
    struct fx_entry *raft_log;
    size_t n_raft_log, cap_raft_log;
};

struct fx_req {
    uint64_t id;
    int op;      /* enum cw_wire_op */
    bool strong; /* for the strong bucket */
};

/* Answers of the honest idle peers of the client target to the node's Raft
 * messages (FX_ALT), queued until the next client step. */
#define FX_RAFT_REPLIES_MAX 64u

struct fx {
    struct cw_node *node;
    struct cw_now now;
    struct fx_hooks hooks;
    struct fx_store store;
    uint64_t next_id;
    struct fx_req *reqs; /* given to the node, not answered yet */
    size_t n_reqs, cap_reqs;
    uint64_t last_own_ts;         /* this region's stamps strictly increase */
    uint64_t last_strong_version; /* so do the versions of its strong writes */
    uint64_t replies, restarts;
    struct cw_raft_msg raft_replies[FX_RAFT_REPLIES_MAX]; /* no entries, no snapshot */
    size_t n_raft_replies;
};

/* Fills cfg for region `region` (buckets points at a static array). */
void fx_node_config(struct cw_node_config *cfg, unsigned region);
/* The bucket names: causal LWW, causal siblings, eventual LWW, eventual siblings, strong. */
extern const char *const fx_bucket_names[5];

/* A fresh node of region 1, preloaded. hooks may be NULL. */
void fx_init(struct fx *f, const struct fx_hooks *hooks);
void fx_destroy(struct fx *f);

/* One chunk of each target (see the format above). */
void fx_peer_step(struct fx *f, uint8_t ctl, const uint8_t *frame, size_t len);
void fx_client_step(struct fx *f, uint8_t ctl, const uint8_t *frame, size_t len);
/* The end of an input: round, expiry, every request answered, restart. */
void fx_finish(struct fx *f);

/* A whole input: fx_init, the chunks, fx_finish, fx_destroy. */
void fx_run_peer(const uint8_t *data, size_t size);
void fx_run_client(const uint8_t *data, size_t size);

/* The request ids the next PUT/DEL/GET given to the node will get. */
static inline uint64_t fx_next_id(const struct fx *f)
{
    return f->next_id;
}

/* Aborts with a message (property failed). */
_Noreturn void fx_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
