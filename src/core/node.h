/*
 * node.h - one region's decision-maker: the object the daemon and the
 * simulator drive.
 *
 * The node owns the causal replica and the strong part (core/strong.h, over
 * the Raft core), routes every client request by its bucket's policy, and merges
 * the effects of its parts into one ready set, so the driver does one group
 * commit per round whatever the mix of buckets. It is as pure as the replica:
 * every input carries its clocks (core/now.h), every draw comes from the seeded
 * generator the driver passes in (core/rand.h), and every output is an effect.
 *
 * Driving contract (the replica's, one level up): give the inputs of a round
 * (cw_node_put/get/recv/tick); then, if cw_node_has_ready, take cw_node_ready,
 * persist every record in it in one transaction, send its messages, deliver its
 * replies, and call cw_node_advance. No input between ready and advance: it is
 * a programmer error and stops the process (CW_ASSERT).
 *
 * Ownership: the node copies its configuration (buckets included). The ready
 * set and everything it points to are borrowed until cw_node_advance. Requests
 * and messages given as input stay the caller's.
 */
#ifndef CW_CORE_NODE_H
#define CW_CORE_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/now.h"
#include "core/rand.h"
#include "core/replica.h"
#include "core/strong.h"

struct cw_node_config {
    struct cw_replica_config replica; /* region, regions, buckets, bounds */
    /* The driver's seeded generator (the daemon logs its seed at start; the
     * simulator derives it from the run's seed). The Raft core draws its
     * election timeouts from it; the causal replica needs none. */
    struct cw_rand rand;
    /* Strong buckets (core/strong.h): used when a bucket is strong. Its Raft
     * config's id, n and rand are set by the node from the above. */
    struct cw_strong_config strong;
};

struct cw_node;

/* Returns NULL when cfg is invalid (see cw_replica_create) or memory is short. */
struct cw_node *cw_node_create(const struct cw_node_config *cfg);
/* Frees everything, effects not yet advanced included; sets *n to NULL. */
void cw_node_destroy(struct cw_node **n);

/* Recovery, before any other input: what the driver persisted (see
 * cw_replica_restore_*). CW_EDECODE for corrupt bytes. */
int cw_node_restore_meta(struct cw_node *n, const uint8_t *data, uint32_t len);
int cw_node_restore_key(struct cw_node *n, const uint8_t *key, uint32_t key_len,
                        const uint8_t *data, uint32_t len);
int cw_node_restore_outbox(struct cw_node *n, const uint8_t *data, uint32_t len);
/* Strong buckets' recovery (core/strong.h): the bytes of the stored Raft
 * snapshot, hard state and entries (index order), as they were persisted. */
int cw_node_restore_raft_snapshot(struct cw_node *n, const uint8_t *data, uint32_t len);
int cw_node_restore_raft_hardstate(struct cw_node *n, const uint8_t *data, uint32_t len);
int cw_node_restore_raft_entry(struct cw_node *n, const uint8_t *data, uint32_t len);

/* Client requests, routed by bucket policy. Causal and eventual buckets go to
 * the replica, strong buckets to the strong part (core/strong.h); an invalid or
 * unknown bucket, and a put condition on a bucket that is not strong, are
 * answered here. Replies carry a detail
 * string naming the key or the limit. */
void cw_node_put(struct cw_node *n, struct cw_now now, const struct cw_put_req *req);
void cw_node_get(struct cw_node *n, struct cw_now now, const struct cw_get_req *req);
/* A message from a peer region (stays the caller's): CW_MSG_RAFT goes to the
 * strong part, the rest to the replica; every message feeds the failure
 * detector. */
void cw_node_recv(struct cw_node *n, struct cw_now now, const struct cw_msg *m);
void cw_node_tick(struct cw_node *n, struct cw_now now);

bool cw_node_has_ready(const struct cw_node *n);
const struct cw_ready *cw_node_ready(struct cw_node *n);
void cw_node_advance(struct cw_node *n);

/* Every part's invariants (cw_replica_check_invariants, and the node's own):
 * true when they hold, else false with a description in why. */
bool cw_node_check_invariants(struct cw_node *n, char *why, size_t why_len);

/* Observation (status, tests, the simulator's checker). */
const struct cw_replica *cw_node_replica(const struct cw_node *n);
/* NULL when no bucket is strong. */
const struct cw_strong *cw_node_strong(const struct cw_node *n);
/* Strong buckets' status (zeros when the config has no strong bucket). */
void cw_node_strong_status(const struct cw_node *n, struct cw_now now, struct cw_raft_status *rs,
                           struct cw_strong_stats *ss);
/* One draw from the driver's generator (for the node's parts). */
uint64_t cw_node_draw(struct cw_node *n);

#endif
