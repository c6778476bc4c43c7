/*
 * rsim.h - the strong-bucket simulator: regions of the real node (and so the
 * real Raft core and strong state machine) in the fixture (sim/fixture.h),
 * driven by seeded clients and faults, checked after every step and at the end.
 *
 * One seed decides everything, as in sim.h: link delays, drops, duplicates,
 * partitions (a region cut off, links cut one by one and healed in random
 * order, one-way cuts), crashes that lose what was not persisted, restarts and
 * clock jumps; and the clients' operations on strong keys: puts, gets, deletes,
 * and puts conditional on a version or on absence.
 *
 * After every step (besides every region's own invariants, which include
 * cw_raft_check_invariants):
 *   - election safety: at most one leader per term, over the whole run;
 *   - log matching: two logs that hold an entry with the same index and term
 *     hold the same entries up to it;
 *   - leader completeness: a leader's log holds every entry committed before
 *     (in a term up to its own), unless compacted into its snapshot;
 *   - state machine safety: entries committed at an index are the same
 *     everywhere, and two regions that applied up to the same index have the
 *     same state (digest).
 * At the end the client history is checked for linearizability (sim/lincheck.h);
 * an exhausted search budget fails the seed.
 *
 * Broken variants (cw_rsim_config.broken) prove the checks can fail: reads
 * served locally without read index, commit of earlier-term entries by
 * counting replicas, and pre-vote off (shown by disruptions after a heal).
 */
#ifndef CW_SIM_RSIM_H
#define CW_SIM_RSIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/lincheck.h"

enum cw_rsim_broken {
    CW_RSIM_CORRECT = 0,
    CW_RSIM_LOCAL_READS, /* reads released at the local applied index, no round */
    CW_RSIM_OLD_TERMS,   /* earlier-term entries committed by counting replicas */
    CW_RSIM_NO_PREVOTE,  /* campaigns without pre-vote */
};

struct cw_rsim_config {
    uint64_t seed;
    unsigned n_regions; /* 3..7 */
    unsigned n_clients; /* default 2 per region */
    unsigned n_keys;    /* default 3 */
    unsigned n_ops;     /* default 200 */
    bool faults;
    /* Cut one region off from every other for 3-6 s once a leader is settled,
     * then heal it (the pre-vote scenario; also on a quarter of faulty seeds). */
    bool isolate;
    /* Leader churn: the leader crashes about every 0.7 s (restarting soon)
     * and 10-25% of messages are lost, on top of the other faults: the
     * conditions under which committing earlier-term entries by counting
     * replicas loses committed entries (Raft's figure 8). */
    bool churn;
    /* Raft's figure 8, scripted (three regions; the workload runs meanwhile):
     * leader A appends an entry e that reaches no one (A's outgoing links cut);
     * B is elected and its no-op is kept from everyone (B's outgoing cut); A is
     * healed and elected again, and as soon as A's commit covers e, A's
     * outgoing is cut and A crashes; B is healed. A correct leader commits e
     * only with an entry of its own term, which keeps B from being elected; a
     * leader that counts replicas for e lets B overwrite a committed entry. */
    bool figure8;
    enum cw_rsim_broken broken;
    bool encoded;          /* links carry wire frames (else struct copies) */
    uint64_t lin_budget;   /* default 20,000,000 units */
    FILE *trace;
};

void cw_rsim_config_defaults(struct cw_rsim_config *c);

struct cw_rsim_result {
    bool fixture_failed; /* an invariant or a cross-region check failed */
    char failure[1024];
    struct cw_lin_report lin;
    uint64_t ops, ok, conflicts, unknown, failed, not_found;
    uint64_t elections, leader_changes, disruptions, max_term, snapshots_installed;
    uint64_t crashes, cuts;
    uint64_t sim_time_us, steps;
    /* Pre-vote scenario: leaders deposed by a higher term from a region that
     * was not leading, after the scripted heal of a cut-off region (0 when the
     * seed had none; leadership transfers are not counted). */
    uint64_t deposed_after_heal;
    /* The figure-8 script: how far it got (0 none .. 4 B healed). */
    unsigned figure8_phase;
    bool had_isolation;
};

/* 0, or -1 when memory ran out. */
int cw_rsim_run(const struct cw_rsim_config *cfg, struct cw_rsim_result *res);
const char *cw_rsim_broken_name(enum cw_rsim_broken b);

#endif
