# The simulator over many seeds, as ctest cases. causeway-sim reads the seed count
# from CAUSEWAY_SIM_SEEDS when set (long runs), otherwise from --seeds.
set(CW_SIM_DEFAULT_SEEDS 1000)
foreach(regions 3 5)
  add_test(NAME sim_seeds_${regions}_regions
           COMMAND causeway-sim --regions ${regions} --seeds ${CW_SIM_DEFAULT_SEEDS} --first 1)
  set_tests_properties(sim_seeds_${regions}_regions PROPERTIES TIMEOUT 1800)
endforeach()
add_test(NAME sim_seeds_7_regions_no_faults
         COMMAND causeway-sim --regions 7 --seeds 50 --first 1 --no-faults)
# The checker is not vacuous: with causal dependency checks off, the same workload
# must be caught.
add_test(NAME sim_checker_catches_no_causal
         COMMAND causeway-sim --regions 3 --seeds 100 --first 1 --no-causal --expect-violations)
add_test(NAME sim_help COMMAND causeway-sim --help)
add_test(NAME sim_bad_usage COMMAND causeway-sim --regions 9)
set_tests_properties(sim_bad_usage PROPERTIES WILL_FAIL TRUE)
# Long workloads with heavy contention: 2000 operations by 12 sessions on 2 keys
# per bucket, so backlogs after partitions are large and must still drain.
foreach(regions 3 5)
  add_test(NAME sim_seeds_heavy_${regions}_regions
           COMMAND causeway-sim --regions ${regions} --seeds 100 --first 500000 --ops 2000
                   --sessions 12 --keys 2)
  set_tests_properties(sim_seeds_heavy_${regions}_regions PROPERTIES TIMEOUT 1800)
endforeach()
# Strong buckets: the Raft core and the strong state machine under the same
# faults, with election safety, log matching, leader completeness and state
# machine safety after every event and linearizability at the end.
add_test(NAME sim_strong_3_regions COMMAND causeway-sim --strong --regions 3 --seeds 500 --first 1)
add_test(NAME sim_strong_5_regions COMMAND causeway-sim --strong --regions 5 --seeds 200 --first 1)
set_tests_properties(sim_strong_3_regions sim_strong_5_regions PROPERTIES TIMEOUT 1800)
# The checks are not vacuous: reads without read index are caught; with pre-vote
# a healed region never deposes the leader, without it it does.
add_test(NAME sim_strong_catches_local_reads
         COMMAND causeway-sim --strong --regions 3 --seeds 30 --first 1 --broken local-reads
                 --expect-violations)
add_test(NAME sim_strong_prevote_keeps_leader
         COMMAND causeway-sim --strong --regions 3 --seeds 30 --first 1 --no-faults --isolate)
add_test(NAME sim_strong_no_prevote_disrupts
         COMMAND causeway-sim --strong --regions 3 --seeds 30 --first 1 --no-faults --isolate
                 --broken no-prevote --expect-disruptions)
add_test(NAME sim_strong_churn COMMAND causeway-sim --strong --regions 3 --seeds 50 --first 1 --churn)
set_tests_properties(sim_strong_churn PROPERTIES TIMEOUT 1800)
# Raft's figure 8, scripted: a leader that commits an earlier term's entry by
# counting replicas is caught (leader completeness, state machine safety); the
# correct core keeps the rival out.
add_test(NAME sim_strong_catches_old_terms
         COMMAND causeway-sim --strong --regions 3 --seeds 30 --first 1 --no-faults --figure8
                 --broken old-terms --expect-violations)
add_test(NAME sim_strong_figure8
         COMMAND causeway-sim --strong --regions 3 --seeds 30 --first 1 --no-faults --figure8)
