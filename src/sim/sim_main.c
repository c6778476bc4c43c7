/*
 * sim_main.c - causeway-sim: run the deterministic simulator over one seed or a
 * range of seeds, check every history, print the seeds and any witnesses.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/rsim.h"
#include "sim/sim.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: causeway-sim [options]\n"
               "\n"
               "Runs regions of the real causeway core in one deterministic process, with a\n"
               "seeded network, clocks and store, injects faults, and checks the recorded\n"
               "history for causal-consistency violations. One seed decides everything, and a\n"
               "seed replays exactly.\n"
               "\n"
               "options:\n"
               "  --seed N            run exactly this seed (replay)\n"
               "  --seeds COUNT       run COUNT seeds starting at --first (default 100); the\n"
               "                      environment variable CAUSEWAY_SIM_SEEDS, when set,\n"
               "                      replaces COUNT (for long runs)\n"
               "  --first N           first seed of a range (default 1)\n"
               "  --regions N         number of regions, 3 to 7 (default 3)\n"
               "  --ops N             client operations per run (default 300)\n"
               "  --sessions N        client sessions (default 2 per region)\n"
               "  --keys N            keys per bucket, 1 to 100 (default 3)\n"
               "  --no-faults         no drops, duplicates, partitions, crashes or clock jumps\n"
               "  --no-causal         turn dependency checks off in every region (all buckets\n"
               "                      behave as eventual) - to show what causality prevents\n"
               "  --expect-violations succeed only if some seed shows a causal violation\n"
               "                      (proves the checker is not vacuous)\n"
               "  --frames MODE       how messages cross the links: 'encoded' (wire frames,\n"
               "                      decoded at delivery), 'copied' (struct copies) or\n"
               "                      'mixed' (default: encoded when seed %% 3 == 0)\n"
               "  --invariants WHICH  after every event, check the invariants of 'every'\n"
               "                      region (default) or only of those the event 'changed'\n"
               "                      (the same result unless memory is corrupted; cheaper,\n"
               "                      for long runs)\n"
               "  --strong            simulate strong buckets instead: the Raft core and the\n"
               "                      strong state machine under the same faults, with\n"
               "                      election safety, log matching, leader completeness\n"
               "                      and state machine safety checked after every event,\n"
               "                      and the client history checked for linearizability\n"
               "                      (--ops, --keys, --sessions = clients, --frames apply)\n"
               "  --broken VARIANT    (with --strong, tests only) run a deliberately broken\n"
               "                      Raft: 'local-reads' (no read index), 'old-terms'\n"
               "                      (commit earlier-term entries by counting replicas) or\n"
               "                      'no-prevote'; use with --expect-violations (or, for\n"
               "                      no-prevote, --expect-disruptions)\n"
               "  --isolate           (with --strong) cut one region off for 3-6 s once a\n"
               "                      leader is settled, then heal it; without faults, a\n"
               "                      leader deposed after that heal fails the seed (pre-vote\n"
               "                      and check-quorum must keep the leader)\n"
               "  --figure8           (with --strong, 3 regions, use --no-faults) script\n"
               "                      Raft's figure 8: an entry of an earlier term on a\n"
               "                      majority, its leader crashed, a rival with a later\n"
               "                      term's entry; a correct leader keeps the rival out\n"
               "  --churn             (with --strong) crash the leader about every 0.7 s and\n"
               "                      lose 10-25%% of messages, on top of the other faults\n"
               "  --expect-disruptions succeed only if some seed shows a leader deposed after\n"
               "                      the isolated region rejoins (use with --broken\n"
               "                      no-prevote --isolate)\n"
               "  --trace             print every simulated event (use with --seed)\n"
               "  --verbose           print a line per seed\n"
               "  --help              this text\n"
               "\n"
               "The fixture checks every region's invariants after every event and stops a\n"
               "run at the first failure (or frame that does not decode); that seed fails.\n"
               "\n"
               "Exit status: 0 when every seed is clean (or, with --expect-violations, when some\n"
               "seed was caught), 1 on violations, 2 on bad usage.\n");
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = s ? strtoull(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || s[0] == '-') {
        fprintf(stderr, "causeway-sim: %s needs a whole number, got '%s'\n", opt, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

/* --strong: the Raft simulator over the seeds (rsim.h). */
static int strong_main(struct cw_rsim_config *rc, enum cw_sim_frames frames, uint64_t first,
                       uint64_t count, bool expect_violations, bool expect_disruptions,
                       bool verbose)
{
    cw_rsim_config_defaults(rc);
    printf("causeway-sim --strong: regions %u, seeds %" PRIu64 "..%" PRIu64
           ", ops %u, clients %u, keys %u, faults %s, raft %s\n",
           rc->n_regions, first, first + count - 1, rc->n_ops, rc->n_clients, rc->n_keys,
           rc->faults ? "on" : "off", cw_rsim_broken_name(rc->broken));
    fflush(stdout);
    uint64_t bad = 0, caught = 0, disrupted = 0, budget = 0, ops = 0, steps = 0;
    uint64_t elections = 0, snaps = 0, unknown = 0, conflicts = 0;
    for (uint64_t seed = first; seed < first + count; seed++) {
        rc->seed = seed;
        rc->encoded = frames == CW_SIM_FRAMES_ENCODED ||
                      (frames == CW_SIM_FRAMES_MIXED && seed % 3 == 0);
        struct cw_rsim_result res;
        if (cw_rsim_run(rc, &res) != 0) {
            fprintf(stderr, "causeway-sim: seed %" PRIu64 ": out of memory\n", seed);
            return 1;
        }
        ops += res.ops;
        steps += res.steps;
        elections += res.elections;
        snaps += res.snapshots_installed;
        unknown += res.unknown;
        conflicts += res.conflicts;
        bool lin_bad = !res.fixture_failed && res.lin.result != CW_LIN_LINEARIZABLE;
        /* Without other faults, nothing but the healed region could raise the
         * term: with pre-vote it must not. */
        bool disrupt_bad = !rc->faults && rc->broken == CW_RSIM_CORRECT && res.had_isolation &&
                           res.deposed_after_heal > 0;
        bool is_bad = res.fixture_failed || lin_bad || disrupt_bad;
        if (res.lin.result == CW_LIN_BUDGET_EXHAUSTED)
            budget++;
        if (is_bad)
            bad++;
        if (is_bad && res.lin.result != CW_LIN_BUDGET_EXHAUSTED)
            caught++;
        if (res.deposed_after_heal > 0 && res.had_isolation)
            disrupted++;
        if (verbose || (is_bad && !expect_violations)) {
            printf("seed %" PRIu64 " (%s frames): %s: %" PRIu64 " ops (%" PRIu64 " ok, %" PRIu64
                   " conflicts, %" PRIu64 " not found, %" PRIu64 " unknown, %" PRIu64
                   " refused), %" PRIu64 " elections, max term %" PRIu64 ", figure 8 phase %u, %" PRIu64
                   " snapshots installed, %" PRIu64 " crashes, %" PRIu64 " cuts, %.1f s "
                   "simulated%s\n",
                   seed, rc->encoded ? "encoded" : "copied",
                   res.fixture_failed ? "STOPPED" : cw_lin_result_name(res.lin.result), res.ops,
                   res.ok, res.conflicts, res.not_found, res.unknown, res.failed, res.elections,
                   res.max_term, res.figure8_phase, res.snapshots_installed, res.crashes, res.cuts,
                   (double)res.sim_time_us / 1e6,
                   res.had_isolation && res.deposed_after_heal ? ", leader deposed after the heal"
                                                             : "");
            if (res.fixture_failed)
                printf("  %s\n", res.failure);
            else if (lin_bad)
                printf("  %s\n", res.lin.desc);
            else if (disrupt_bad)
                printf("  the region healed after its isolation deposed %" PRIu64
                       " leader(s): pre-vote did not keep the leader\n",
                       res.deposed_after_heal);
            if (is_bad)
                printf("  replay: causeway-sim --strong --seed %" PRIu64
                       " --regions %u --ops %u --sessions %u --keys %u%s%s%s%s\n",
                       seed, rc->n_regions, rc->n_ops, rc->n_clients, rc->n_keys,
                       rc->faults ? "" : " --no-faults",
                       rc->isolate  ? " --isolate"
                       : rc->churn  ? " --churn"
                       : rc->figure8 ? " --figure8"
                                     : "",
                       rc->broken ? " --broken " : "",
                       rc->broken ? cw_rsim_broken_name(rc->broken) : "");
        }
        if (!verbose && count >= 20 && (seed - first + 1) % (count / 10) == 0) {
            printf("  ... %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64 " failed\n",
                   seed - first + 1, count, bad);
            fflush(stdout);
        }
    }
    printf("causeway-sim --strong: %" PRIu64 " seeds, %" PRIu64 " operations (%" PRIu64
           " conflicts, %" PRIu64 " unknown outcomes), %" PRIu64 " events checked, %" PRIu64
           " elections, %" PRIu64 " snapshots installed; %" PRIu64 " seeds failed (%" PRIu64
           " with the search budget exhausted), %" PRIu64 " with a leader deposed after a heal\n",
           count, ops, conflicts, unknown, steps, elections, snaps, bad, budget, disrupted);
    if (expect_disruptions) {
        if (disrupted == 0) {
            printf("causeway-sim: FAILED: expected a healed region to depose the leader, none "
                   "did\n");
            return 1;
        }
        printf("causeway-sim: a healed region deposed the leader in %" PRIu64 " of %" PRIu64
               " seeds, as expected\n",
               disrupted, count);
        return 0;
    }
    if (expect_violations) {
        if (caught == 0) {
            printf("causeway-sim: FAILED: expected the checks to catch the broken Raft, they "
                   "caught nothing\n");
            return 1;
        }
        printf("causeway-sim: the checks caught the broken Raft in %" PRIu64 " of %" PRIu64
               " seeds, as expected\n",
               caught, count);
        return 0;
    }
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct cw_sim_config cfg = {.faults = true};
    uint64_t first = 1, count = 100, one_seed = 0;
    bool have_seed = false, expect_violations = false, verbose = false, trace = false;
    bool strong = false, expect_disruptions = false, isolate = false, churn = false;
    bool figure8 = false;
    enum cw_rsim_broken broken = CW_RSIM_CORRECT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_u64(a, v, &one_seed))
                return 2;
            have_seed = true;
            i++;
        } else if (strcmp(a, "--seeds") == 0) {
            if (parse_u64(a, v, &count))
                return 2;
            i++;
        } else if (strcmp(a, "--first") == 0) {
            if (parse_u64(a, v, &first))
                return 2;
            i++;
        } else if (strcmp(a, "--regions") == 0) {
            if (parse_u64(a, v, &x))
                return 2;
            if (x < 3 || x > 7) {
                fprintf(stderr, "causeway-sim: --regions must be 3 to 7, got %" PRIu64 "\n", x);
                return 2;
            }
            cfg.n_regions = (unsigned)x;
            i++;
        } else if (strcmp(a, "--ops") == 0 || strcmp(a, "--sessions") == 0 ||
                   strcmp(a, "--keys") == 0) {
            if (parse_u64(a, v, &x))
                return 2;
            uint64_t max = strcmp(a, "--keys") == 0 ? 100 : 1000000;
            if (x < 1 || x > max) {
                fprintf(stderr, "causeway-sim: %s must be 1 to %" PRIu64 "\n", a, max);
                return 2;
            }
            if (strcmp(a, "--ops") == 0)
                cfg.n_ops = (unsigned)x;
            else if (strcmp(a, "--sessions") == 0)
                cfg.n_sessions = (unsigned)x;
            else
                cfg.n_keys = (unsigned)x;
            i++;
        } else if (strcmp(a, "--frames") == 0) {
            if (v != NULL && strcmp(v, "encoded") == 0)
                cfg.frames = CW_SIM_FRAMES_ENCODED;
            else if (v != NULL && strcmp(v, "copied") == 0)
                cfg.frames = CW_SIM_FRAMES_COPIED;
            else if (v != NULL && strcmp(v, "mixed") == 0)
                cfg.frames = CW_SIM_FRAMES_MIXED;
            else {
                fprintf(stderr,
                        "causeway-sim: --frames must be encoded, copied or mixed, got '%s'\n",
                        v ? v : "");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--invariants") == 0) {
            if (v != NULL && strcmp(v, "every") == 0)
                cfg.check_changed_only = false;
            else if (v != NULL && strcmp(v, "changed") == 0)
                cfg.check_changed_only = true;
            else {
                fprintf(stderr, "causeway-sim: --invariants must be every or changed, got '%s'\n",
                        v ? v : "");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--strong") == 0) {
            strong = true;
        } else if (strcmp(a, "--figure8") == 0) {
            figure8 = true;
        } else if (strcmp(a, "--churn") == 0) {
            churn = true;
        } else if (strcmp(a, "--isolate") == 0) {
            isolate = true;
        } else if (strcmp(a, "--expect-disruptions") == 0) {
            expect_disruptions = true;
        } else if (strcmp(a, "--broken") == 0) {
            enum cw_rsim_broken b;
            for (b = CW_RSIM_LOCAL_READS; b <= CW_RSIM_NO_PREVOTE; b++)
                if (v != NULL && strcmp(v, cw_rsim_broken_name(b)) == 0)
                    break;
            if (b > CW_RSIM_NO_PREVOTE) {
                fprintf(stderr, "causeway-sim: --broken must be local-reads, old-terms or "
                                "no-prevote, got '%s'\n",
                        v ? v : "");
                return 2;
            }
            broken = b;
            i++;
        } else if (strcmp(a, "--no-faults") == 0) {
            cfg.faults = false;
        } else if (strcmp(a, "--no-causal") == 0) {
            cfg.force_eventual = true;
        } else if (strcmp(a, "--expect-violations") == 0) {
            expect_violations = true;
        } else if (strcmp(a, "--trace") == 0) {
            trace = true;
        } else if (strcmp(a, "--verbose") == 0) {
            verbose = true;
        } else {
            fprintf(stderr, "causeway-sim: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    const char *env = getenv("CAUSEWAY_SIM_SEEDS");
    if (env && *env && !have_seed && parse_u64("CAUSEWAY_SIM_SEEDS", env, &count))
        return 2;
    if (have_seed) {
        first = one_seed;
        count = 1;
        verbose = true;
    }
    if ((broken != CW_RSIM_CORRECT || expect_disruptions || isolate || churn || figure8) &&
        !strong) {
        fprintf(stderr,
                "causeway-sim: --broken, --isolate and --expect-disruptions need --strong\n");
        return 2;
    }
    if (strong) {
        struct cw_rsim_config rc = {
            .n_regions = cfg.n_regions,
            .n_clients = cfg.n_sessions,
            .n_keys = cfg.n_keys > 16 ? 16 : cfg.n_keys,
            .n_ops = cfg.n_ops,
            .faults = cfg.faults,
            .isolate = isolate,
            .churn = churn,
            .figure8 = figure8,
            .broken = broken,
            .trace = trace ? stdout : NULL,
        };
        return strong_main(&rc, cfg.frames, first, count, expect_violations, expect_disruptions,
                           verbose);
    }
    cw_sim_config_defaults(&cfg);
    if (trace)
        cfg.trace = stdout;

    const char *frames_name = cfg.frames == CW_SIM_FRAMES_ENCODED  ? "encoded"
                              : cfg.frames == CW_SIM_FRAMES_COPIED ? "copied"
                                                                   : "mixed";
    printf("causeway-sim: regions %u, seeds %" PRIu64 "..%" PRIu64 ", ops %u, faults %s%s, "
           "frames %s%s, invariants of %s region after every event\n",
           cfg.n_regions, first, first + count - 1, cfg.n_ops, cfg.faults ? "on" : "off",
           cfg.force_eventual ? ", causal checks OFF" : "", frames_name,
           cfg.frames == CW_SIM_FRAMES_MIXED ? " (encoded when seed % 3 == 0)" : "",
           cfg.check_changed_only ? "each changed" : "every");
    fflush(stdout);
    uint64_t bad_seeds = 0, caught_seeds = 0, not_quiet = 0, total_ops = 0, encoded_seeds = 0;
    uint64_t stopped_seeds = 0, total_steps = 0, store_seeds = 0, loads = 0;
    uint64_t kinds[CW_CHECK_KINDS] = {0};
    for (uint64_t seed = first; seed < first + count; seed++) {
        cfg.seed = seed;
        struct cw_sim_result res;
        if (cw_sim_run(&cfg, &res) != 0) {
            fprintf(stderr, "causeway-sim: seed %" PRIu64 ": out of memory\n", seed);
            cw_sim_result_free(&res);
            return 1;
        }
        total_ops += res.ops_done;
        total_steps += res.steps;
        encoded_seeds += res.encoded;
        store_seeds += res.store_backed;
        loads += res.keys_loaded + res.bodies_loaded;
        stopped_seeds += res.fixture_failed;
        size_t total = 0, causal = 0;
        for (int k = 0; k < CW_CHECK_KINDS; k++) {
            total += res.report.n_by_kind[k];
            kinds[k] += res.report.n_by_kind[k];
        }
        causal =
            res.report.n_by_kind[CW_CHECK_CAUSAL_MISS] + res.report.n_by_kind[CW_CHECK_SESSION];
        if (causal)
            caught_seeds++;
        if (!res.quiet && !res.fixture_failed)
            not_quiet++;
        bool bad = total > 0 || !res.quiet || res.fixture_failed;
        if (verbose || (bad && (!expect_violations || res.fixture_failed))) {
            printf("seed %" PRIu64 " (%s frames): %s: %" PRIu64 " ops (%" PRIu64
                   " failed), %zu events, "
                   "%.1f s simulated (workload %.1f s), %" PRIu64 " crashes, %" PRIu64
                   " links cut, %" PRIu64 "/%" PRIu64 " msgs dropped, max buffered %" PRIu64 "\n",
                   seed, res.encoded ? "encoded" : "copied",
                   res.fixture_failed ? "STOPPED"
                   : bad              ? "VIOLATIONS"
                                      : "ok",
                   res.ops_done, res.ops_failed, res.history.n, (double)res.sim_time_us / 1e6,
                   (double)res.workload_us / 1e6, res.crashes, res.partitions, res.msgs_dropped,
                   res.msgs_sent, res.max_buffered);
        }
        if (bad) {
            bad_seeds++;
            if (res.fixture_failed)
                printf("  fixture stopped the run: %s\n", res.fixture_failure);
            if (!expect_violations || res.fixture_failed) {
                if (!res.quiet && !res.fixture_failed)
                    printf("  not quiet: %s\n", res.not_quiet);
                if (!res.fixture_failed)
                    cw_check_report_print(&res.report, &res.history, stdout, 5);
                printf("  replay: causeway-sim --seed %" PRIu64
                       " --regions %u --ops %u --sessions %u --keys %u%s%s%s%s%s\n",
                       seed, cfg.n_regions, cfg.n_ops, cfg.n_sessions, cfg.n_keys,
                       cfg.faults ? "" : " --no-faults", cfg.force_eventual ? " --no-causal" : "",
                       cfg.frames == CW_SIM_FRAMES_MIXED ? "" : " --frames ",
                       cfg.frames == CW_SIM_FRAMES_MIXED ? "" : frames_name,
                       cfg.check_changed_only ? " --invariants changed" : "");
            }
        }
        cw_sim_result_free(&res);
        if (!verbose && count >= 20 && (seed - first + 1) % (count / 10) == 0) {
            printf("  ... %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64 " with violations\n",
                   seed - first + 1, count, bad_seeds);
            fflush(stdout);
        }
    }
    printf("causeway-sim: %" PRIu64 " seeds (%" PRIu64 " with encoded frames, %" PRIu64
           " with the store of record, %" PRIu64 " states and bodies read back), %" PRIu64
           " operations, %" PRIu64 " events with invariants checked after each, %" PRIu64
           " seeds with violations (%" PRIu64 " with causal or session violations), %" PRIu64
           " not quiet, %" PRIu64 " stopped by the fixture\n",
           count, encoded_seeds, store_seeds, loads, total_ops, total_steps, bad_seeds,
           caught_seeds, not_quiet, stopped_seeds);
    for (int k = 0; k < CW_CHECK_KINDS; k++)
        if (kinds[k])
            printf("  %s: %" PRIu64 "\n", cw_check_kind_name((enum cw_check_kind)k), kinds[k]);
    if (expect_violations) {
        if (stopped_seeds > 0) {
            printf("causeway-sim: FAILED: the fixture stopped %" PRIu64 " runs (see above)\n",
                   stopped_seeds);
            return 1;
        }
        if (caught_seeds == 0) {
            printf("causeway-sim: FAILED: expected the checker to catch causal violations, "
                   "it caught none\n");
            return 1;
        }
        printf("causeway-sim: the checker caught causal violations in %" PRIu64 " of %" PRIu64
               " seeds, as expected\n",
               caught_seeds, count);
        return 0;
    }
    return bad_seeds ? 1 : 0;
}
