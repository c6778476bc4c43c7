/*
 * sim.h - the deterministic simulator: 3 to 7 regions of the real replica core in
 * one process, driven by a seeded fake network, clock and store (the fixture,
 * sim/fixture.h, which checks every region's invariants after every event).
 *
 * One seed decides everything: link delays and jitter (a link never reorders),
 * message drops and duplicates, partitions (links cut one by one and healed in
 * random order), crashes that lose what was not yet persisted, restarts, clock
 * skew and jumps, and the sessions' operations. Persistence is modelled as group
 * commit: a region's effects wait for a simulated flush, and its messages and
 * replies leave only after it, exactly as the real daemon must do.
 *
 * After the workload, every fault is healed, the regions run quiet for a while,
 * every key is read at every region, and the checker judges the history.
 */
#ifndef CW_SIM_SIM_H
#define CW_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/checker.h"
#include "sim/history.h"

/* How messages cross the simulated links (see cw_fixture_frames). */
enum cw_sim_frames {
    CW_SIM_FRAMES_MIXED = 0, /* encoded wire frames when seed % 3 == 0, else copied structs */
    CW_SIM_FRAMES_COPIED,
    CW_SIM_FRAMES_ENCODED,
};

struct cw_sim_config {
    uint64_t seed;
    unsigned n_regions; /* 1..CW_REGIONS_MAX; the command line allows 3..7 */
    unsigned n_sessions;
    unsigned n_keys;     /* per bucket */
    unsigned n_ops;      /* client operations in the workload */
    bool faults;         /* drops, duplicates, partitions, crashes, clock jumps */
    bool force_eventual; /* turn causal dependency checks off in every region */
    FILE *trace;         /* every event, or NULL */
    /* How messages cross the links (0: mixed). */
    enum cw_sim_frames frames;
    /* Check the invariants only of the regions an event changed (long runs),
     * not of every region after every event. */
    bool check_changed_only;
};

void cw_sim_config_defaults(struct cw_sim_config *c);
/* Whether the run of c (its seed and frames) carries messages as wire frames. */
bool cw_sim_frames_encoded(const struct cw_sim_config *c);

struct cw_sim_result {
    struct cw_history history;
    struct cw_check_report report;
    bool quiet;          /* every buffer drained and every outbox emptied at the end */
    char not_quiet[256]; /* why not, when !quiet */
    uint64_t sim_time_us;
    uint64_t workload_us; /* from the start until the last operation completed */
    uint64_t ops_done, ops_failed, crashes, partitions /* links cut */, msgs_sent, msgs_dropped;
    uint64_t max_buffered;
    bool encoded;      /* links carried encoded wire frames */
    bool store_backed; /* nodes read key states and outbox bodies back from the store */
    uint64_t keys_loaded, bodies_loaded; /* ... this many, at the final reads (since restarts) */
    /* The fixture stopped the run: an invariant broke after some event, or a
     * frame did not decode; fixture_failure says the seed, the event and why.
     * The history is then not checked. */
    bool fixture_failed;
    char fixture_failure[1024];
    uint64_t steps, invariant_checks;
};

/* Runs one simulation. Returns 0, or -1 when memory ran out. The result owns its
 * history and report; free them with cw_sim_result_free. */
int cw_sim_run(const struct cw_sim_config *cfg, struct cw_sim_result *out);
void cw_sim_result_free(struct cw_sim_result *r);

#endif
