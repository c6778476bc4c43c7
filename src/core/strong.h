/*
 * strong.h - strong buckets: one linearizable register per key, through the
 * Raft core (core/raft.h), as one part of the node (core/node.h).
 *
 * The strong part owns the Raft core and the state machine it replicates: a map
 * from "bucket/key" to the key's value, its version (the Raft index of the
 * entry that last wrote it) and the causal context of the session that wrote it.
 * Every region applies the same committed commands in the same order, so every
 * region's map is the same at the same applied index.
 *
 *   put:  proposed as a command (key, value or delete, condition, the session's
 *         context, origin region and request id). The region that took the
 *         request answers it when it applies the command: the new version, or
 *         CW_ECONFLICT with the current version when the condition failed.
 *   get:  placed with read index; answered from the local map once the region
 *         has applied up to the released index. Its reply carries the writer's
 *         session context in `seen`, so a session that reads a strong key and
 *         then a causal key waits for what the strong write depended on.
 *   every request fails after strong_timeout_us with CW_ENOQUORUM (this
 *         region's failure detector hears fewer than a majority of regions) or
 *         CW_ETIMEOUT (it hears a majority): it never hangs and never answers
 *         stale. A write that failed either way may still apply later (it may
 *         have reached the leader before the cut). Writes refused before Raft
 *         gave them an index (CW_EFULL, CW_EVALUE, CW_EUNAVAILABLE "overtaken")
 *         were not applied and never will be.
 *
 * Durability: nothing but the Raft log, hard state and snapshot is stored. At
 * start the node restores the snapshot (the map at its index) and the log; the
 * committed entries are applied again in the first rounds (applying is
 * deterministic and idempotent over the restored snapshot). The map lives in
 * memory and is bounded by strong_bytes_max (keys, values, contexts): a put
 * that would pass it fails with CW_EFULL. The log is compacted into a snapshot
 * every snapshot_entries applied entries.
 *
 * Ownership: the config is copied; requests and messages given as input stay
 * the caller's; everything in the ready set is borrowed until advance.
 */
#ifndef CW_CORE_STRONG_H
#define CW_CORE_STRONG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/now.h"
#include "core/raft.h"
#include "core/replica.h"

struct cw_strong_config {
    struct cw_raft_config raft;
    uint64_t timeout_us;        /* a request fails after this */
    uint32_t pending_max;       /* requests in flight here; beyond it CW_EFULL */
    uint64_t bytes_max;         /* the state machine's bytes */
    uint32_t snapshot_entries;  /* compact after this many applied entries */
    uint32_t max_value_bytes;
};

void cw_strong_config_defaults(struct cw_strong_config *cfg);

struct cw_strong;

struct cw_strong *cw_strong_create(const struct cw_strong_config *cfg);
void cw_strong_destroy(struct cw_strong **s);

/* Recovery, before any other input: the bytes of CW_PERSIST_RAFT_SNAP, _HS and
 * each _ENTRY (index order) as they were persisted. CW_EDECODE for damage. */
int cw_strong_restore_snapshot(struct cw_strong *s, const uint8_t *data, uint32_t len);
int cw_strong_restore_hardstate(struct cw_strong *s, const uint8_t *data, uint32_t len);
int cw_strong_restore_entry(struct cw_strong *s, const uint8_t *data, uint32_t len);

/* Requests whose bucket is strong (the node routed them; bucket valid). */
void cw_strong_put(struct cw_strong *s, struct cw_now now, const struct cw_put_req *req);
void cw_strong_get(struct cw_strong *s, struct cw_now now, const struct cw_get_req *req);
/* A CW_MSG_RAFT message from a peer. */
void cw_strong_recv(struct cw_strong *s, struct cw_now now, const struct cw_raft_msg *m);
/* Any message from peer (failure detector). */
void cw_strong_heard(struct cw_strong *s, struct cw_now now, unsigned peer);
void cw_strong_tick(struct cw_strong *s, struct cw_now now);

/* Effects in the replica's shapes (core/replica.h): CW_PERSIST_RAFT_* records,
 * CW_MSG_RAFT messages, replies. Same driving contract as the node's. */
bool cw_strong_has_ready(const struct cw_strong *s);
const struct cw_ready *cw_strong_ready(struct cw_strong *s);
void cw_strong_advance(struct cw_strong *s);

struct cw_strong_stats {
    uint64_t puts, gets, conflicts, timeouts, no_quorum, full;
    uint64_t keys, bytes; /* the state machine now */
    uint64_t snapshots_refused; /* leaders' snapshots whose bytes do not decode */
};

void cw_strong_get_stats(const struct cw_strong *s, struct cw_strong_stats *st);
const struct cw_raft *cw_strong_raft(const struct cw_strong *s);

/* The state machine's digest (keys, values and versions), for the simulator's
 * state machine safety check: equal applied index means equal digest. */
uint64_t cw_strong_digest(const struct cw_strong *s);
uint64_t cw_strong_applied(const struct cw_strong *s);

bool cw_strong_check_invariants(const struct cw_strong *s, char *why, size_t why_len);

/* Encoding of what strong buckets persist (for the store's checks and fuzzing):
 * hard state, entry and snapshot records. Each decode checks every length. */
int cw_strong_decode_entry(const uint8_t *data, uint32_t len, struct cw_raft_entry *e);
int cw_strong_decode_hardstate(const uint8_t *data, uint32_t len, struct cw_raft_hardstate *hs);

#endif
