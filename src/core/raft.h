/*
 * raft.h - the Raft consensus core behind strong buckets.
 *
 * One Raft group whose members are the config's regions (ids 0..n-1). The core
 * is pure in the way the causal replica is: every input carries the time
 * (core/now.h, only mono_us is used), the randomness of election timeouts comes
 * from the generator in the config (core/rand.h), and every output is an effect
 * collected in a cw_raft_ready (the shape of etcd raft's Ready):
 *
 *   inputs:  cw_raft_step (a message from a peer), cw_raft_tick (time),
 *            cw_raft_propose (a command to append), cw_raft_read_index (a
 *            linearizable read to place), cw_raft_transfer (leadership).
 *   outputs: hard state and entries to persist, a snapshot to persist,
 *            messages to send, committed entries to apply, reads to release.
 *
 * The driver MUST, per ready: persist the hard state, the entries (truncating
 * the stored log from the first entry's index) and the snapshot, durably, in one
 * transaction; then send the messages; then apply the committed entries in
 * order; then handle the released reads; then call cw_raft_advance. No input
 * between cw_raft_ready and cw_raft_advance (CW_ASSERT).
 *
 * Safety rules in from the first version (docs/architecture.md, Strong buckets):
 *   - randomized election timeouts in [election_min_us, election_max_us);
 *   - pre-vote: a candidate first asks whether it could win (without raising
 *     any term); a region cut off and healed does not depose a healthy leader,
 *     because followers that heard from a leader within election_min_us refuse;
 *   - check-quorum: a leader that has not heard from a majority within
 *     election_min_us steps down (it uses the failure detector below);
 *   - a no-op entry at the start of every term; an entry of an earlier term is
 *     committed only when an entry of the current term after it is (§5.4.2);
 *   - read index: a leader places a read only after it has committed an entry of
 *     its term, at its commit index, and releases it after a majority answered a
 *     heartbeat sent after the read arrived; a follower asks the leader for the
 *     index (CW_RAFT_READ_INDEX) and releases the read with the answer. The
 *     caller serves the read once its applied index reaches the released index;
 *   - log compaction: cw_raft_compact(index, state) replaces the log up to an
 *     applied index by a snapshot; a follower behind the compacted log gets the
 *     snapshot (CW_RAFT_SNAP) and restores its state machine from it;
 *   - leadership transfer: a leader whose preferred region (config) is healthy
 *     and caught up sends it CW_RAFT_TIMEOUT_NOW, which starts an election at
 *     once (skipping pre-vote; a vote request carrying the transfer flag is
 *     granted even by followers that heard from a leader recently).
 *
 * Failure detector: the core keeps, per peer, when it was last heard from (any
 * message; the node also reports the causal stream's messages through
 * cw_raft_heard) and calls a peer suspected when that is longer than
 * suspect_after_us ago. Check-quorum counts the peers heard within
 * election_min_us; status shows both.
 *
 * Ownership: the config is copied. Messages and entries handed to step/propose
 * stay the caller's (copied in). The ready set and everything it points to are
 * borrowed until cw_raft_advance.
 */
#ifndef CW_CORE_RAFT_H
#define CW_CORE_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "core/now.h"
#include "core/rand.h"

#define CW_RAFT_NONE 0xffu /* no region (no leader, no vote) */

enum cw_raft_role {
    CW_RAFT_FOLLOWER = 0,
    CW_RAFT_PRECANDIDATE = 1,
    CW_RAFT_CANDIDATE = 2,
    CW_RAFT_LEADER = 3,
};

enum cw_raft_entry_type {
    CW_RAFT_ENTRY_NOOP = 0, /* the leader's first entry of its term */
    CW_RAFT_ENTRY_DATA = 1, /* a command for the state machine (opaque here) */
};

struct cw_raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum cw_raft_entry_type */
    uint32_t len;
    uint8_t *data; /* owned by whoever holds the entry */
};

enum cw_raft_msg_type {
    CW_RAFT_PREVOTE = 1,      /* term = the term the sender would campaign in */
    CW_RAFT_PREVOTE_RESP = 2, /* term = the request's term when granted, else the voter's */
    CW_RAFT_VOTE = 3,
    CW_RAFT_VOTE_RESP = 4,
    CW_RAFT_APPEND = 5,      /* index/log_term: the entry before entries; commit */
    CW_RAFT_APPEND_RESP = 6, /* index: last matching index, or reject + hint */
    CW_RAFT_HEARTBEAT = 7,   /* commit (min of the follower's match), ctx: read round */
    CW_RAFT_HEARTBEAT_RESP = 8, /* ctx echoed */
    CW_RAFT_SNAP = 9,           /* the leader's snapshot (index, log_term, data) */
    CW_RAFT_TIMEOUT_NOW = 10,   /* campaign now (leadership transfer) */
    CW_RAFT_READ_INDEX = 11,    /* follower -> leader: place a read, ctx names it */
    CW_RAFT_READ_INDEX_RESP = 12, /* index: the read index; reject: could not */
    CW_RAFT_PROPOSE = 13,         /* follower -> leader: append these entries' data */
};

/* cw_raft_msg.flags */
#define CW_RAFT_F_TRANSFER 1u /* VOTE/PREVOTE: a leadership transfer; grant despite a live leader */

struct cw_raft_msg {
    uint8_t type; /* enum cw_raft_msg_type */
    uint8_t from;
    uint8_t to;
    uint8_t flags;
    uint64_t term;
    uint64_t log_term; /* APPEND: term of entry `index`; VOTE: term of the last entry; SNAP */
    uint64_t index;    /* see the types above */
    uint64_t commit;
    bool reject;
    uint64_t reject_hint; /* APPEND_RESP reject: the follower's last index */
    uint64_t ctx;         /* HEARTBEAT(_RESP), READ_INDEX(_RESP): the read round / request */
    uint32_t n_entries;
    struct cw_raft_entry *entries; /* APPEND, PROPOSE (index/term 0); owned */
    uint32_t snap_len;
    uint8_t *snap; /* SNAP: the state machine's snapshot bytes; owned */
};

/* Frees what m owns and leaves it empty (safe twice). */
void cw_raft_msg_free(struct cw_raft_msg *m);
/* Deep copy (dst overwritten). CW_OK or CW_ENOMEM (then dst owns nothing). */
int cw_raft_msg_copy(struct cw_raft_msg *dst, const struct cw_raft_msg *src);
/* Structural checks on a message from a peer: known type, ids below n, entry
 * counts and sizes within the limits, entries consecutive. NULL when valid,
 * else a static description. The core refuses (and counts) what fails. */
const char *cw_raft_msg_check(const struct cw_raft_msg *m, unsigned n_regions);

struct cw_raft_hardstate {
    uint64_t term;
    uint8_t vote; /* CW_RAFT_NONE or a region */
    uint64_t commit;
};

struct cw_raft_config {
    unsigned id;        /* this region */
    unsigned n;         /* regions in the group, 1..CW_REGIONS_MAX */
    uint64_t election_min_us, election_max_us; /* randomized timeout range */
    uint64_t heartbeat_us;
    uint64_t suspect_after_us;   /* failure detector; 0: election_min_us */
    unsigned preferred;          /* CW_RAFT_NONE or the region that should lead */
    uint32_t max_msg_entries;    /* entries per APPEND (at least one) */
    uint32_t max_msg_bytes;      /* entry bytes per APPEND (at least one entry) */
    uint32_t max_inflight_msgs;  /* APPENDs unacknowledged per follower */
    uint32_t max_uncommitted;    /* proposals beyond it fail with CW_EFULL */
    uint32_t max_pending_reads;  /* reads waiting for a round, beyond it CW_EFULL */
    struct cw_rand rand;         /* election timeout jitter */
    /* Testing only (simulator flags that prove the checkers catch the bugs the
     * rules prevent): */
    bool test_no_prevote;          /* campaign without pre-vote */
    bool test_commit_old_terms;    /* count replicas for entries of earlier terms */
    bool test_local_reads;         /* release reads at once, at the local applied index */
};

void cw_raft_config_defaults(struct cw_raft_config *cfg);

/* A read released by the core: serve it once applied >= index. */
struct cw_raft_read {
    uint64_t ctx;  /* the caller's read id */
    uint64_t index;
    int err;       /* CW_OK, or why it could not be placed (no leader, lost leadership) */
};

/* A proposal the core dropped before it got an index (no leader known, the
 * leader refused, leadership lost before it was appended): the caller answers
 * its request with err. Proposals that got an index are answered by applying. */
struct cw_raft_dropped {
    uint64_t ctx;
    int err;
};

struct cw_raft_ready {
    bool hardstate_changed;
    struct cw_raft_hardstate hs;
    /* Persist these, after deleting every stored entry with index >=
     * entries[0].index (an overwritten tail). */
    struct cw_raft_entry *entries;
    size_t n_entries;
    /* A snapshot to persist: its index, term and bytes; drop every stored entry
     * up to its index. Set after cw_raft_compact (the caller's own state) and
     * when one is received from the leader; then snap_restore is also set and
     * the caller restores its state machine from the bytes (before applying
     * committed, which then starts after snap_index) and drops its whole
     * stored log, past the snapshot too: the core's log now starts after it,
     * and a stored tail would be another history (entries in this ready are
     * then written after the snapshot). */
    bool has_snapshot;
    bool snap_restore;
    uint64_t snap_index, snap_term;
    const uint8_t *snap;
    uint32_t snap_len;
    struct cw_raft_msg *msgs;
    size_t n_msgs;
    /* Apply in order (after persisting). */
    struct cw_raft_entry *committed;
    size_t n_committed;
    struct cw_raft_read *reads;
    size_t n_reads;
    struct cw_raft_dropped *dropped;
    size_t n_dropped;
};

struct cw_raft_stats {
    uint64_t elections;       /* campaigns started (real votes, not pre-votes) */
    uint64_t prevotes;        /* pre-vote rounds started */
    uint64_t leader_changes;  /* times this region became leader */
    uint64_t stepdowns_quorum; /* check-quorum step-downs */
    uint64_t proposals_forwarded;
    uint64_t read_index_rounds;
    uint64_t snapshots_sent, snapshots_received;
    uint64_t transfers;       /* TIMEOUT_NOW sent */
    uint64_t msgs_refused;    /* failed cw_raft_msg_check */
    uint64_t disruptions;     /* terms raised by a message from a non-leader */
};

struct cw_raft_status {
    enum cw_raft_role role;
    uint64_t term;
    unsigned leader; /* CW_RAFT_NONE when unknown */
    unsigned vote;
    uint64_t commit, applied;
    uint64_t first_index, last_index; /* log held (first > last when empty) */
    uint64_t snap_index, snap_term;
    uint64_t last_heard_us[CW_REGIONS_MAX]; /* mono time, 0 never */
    bool suspected[CW_REGIONS_MAX];
    struct cw_raft_stats stats;
};

struct cw_raft;

/* NULL when cfg is invalid or memory is short. */
struct cw_raft *cw_raft_create(const struct cw_raft_config *cfg);
void cw_raft_destroy(struct cw_raft **r);

/* Recovery, before any other input, in this order: the stored snapshot (the
 * caller restores its state machine from the bytes itself; the core keeps a
 * copy to send), the hard state, then the stored entries in index order
 * (consecutive after the snapshot). Applied starts at the snapshot index, so
 * the first readies hand out the entries up to hs.commit as committed again:
 * the caller's state machine is rebuilt from snapshot + log, never stored on
 * its own. CW_EDECODE when they do not fit together. */
int cw_raft_restore_snapshot(struct cw_raft *r, uint64_t index, uint64_t term,
                             const uint8_t *snap, uint32_t len);
int cw_raft_restore_hardstate(struct cw_raft *r, const struct cw_raft_hardstate *hs);
int cw_raft_restore_entry(struct cw_raft *r, const struct cw_raft_entry *e);

/* Inputs. now.mono_us drives every timer. */
void cw_raft_step(struct cw_raft *r, struct cw_now now, const struct cw_raft_msg *m);
void cw_raft_tick(struct cw_raft *r, struct cw_now now);
/* Append a command. On a leader it is appended at once; on a follower it is
 * forwarded to the leader (CW_RAFT_PROPOSE); with no leader known it is dropped
 * (ready.dropped, CW_EUNAVAILABLE). ctx comes back in dropped. Returns the index
 * given on a leader, else 0. */
uint64_t cw_raft_propose(struct cw_raft *r, struct cw_now now, uint64_t ctx,
                         const uint8_t *data, uint32_t len);
/* Place a linearizable read; ready.reads releases it (or fails it). */
void cw_raft_read_index(struct cw_raft *r, struct cw_now now, uint64_t ctx);
/* Ask the leader to hand leadership to region `to` (a no-op elsewhere). */
void cw_raft_transfer(struct cw_raft *r, struct cw_now now, unsigned to);
/* Any message from peer (the causal stream too): the failure detector. */
void cw_raft_heard(struct cw_raft *r, struct cw_now now, unsigned peer);

/* Replace the log up to `index` (<= applied) by a snapshot whose bytes are the
 * state machine at that index. The core copies the bytes (to send to followers
 * behind the log) and the next ready carries them to persist (has_snapshot,
 * snap_restore false). CW_EINVAL for an index past applied or before the last
 * snapshot. */
int cw_raft_compact(struct cw_raft *r, uint64_t index, const uint8_t *snap, uint32_t len);

bool cw_raft_has_ready(const struct cw_raft *r);
const struct cw_raft_ready *cw_raft_ready(struct cw_raft *r);
void cw_raft_advance(struct cw_raft *r);

void cw_raft_get_status(const struct cw_raft *r, struct cw_now now, struct cw_raft_status *st);

/* Observation for the simulator's cross-region checks: the entry at index
 * (NULL when compacted away or past the end) and the log bounds. */
const struct cw_raft_entry *cw_raft_entry_at(const struct cw_raft *r, uint64_t index);
uint64_t cw_raft_last_index(const struct cw_raft *r);
uint64_t cw_raft_term_at(const struct cw_raft *r, uint64_t index); /* 0 when unknown */

/* The core's own invariants (commit <= last, applied <= commit, terms
 * non-decreasing along the log, a leader's own match, ...). */
bool cw_raft_check_invariants(const struct cw_raft *r, char *why, size_t why_len);

#endif
