#!/usr/bin/env python3
"""The pipelined client API (cw_pipe_*) against real daemons: pipe_check (a C
program built with the project, tests/integration/c/pipe_check.c) keeps 16
requests in flight on one connection and checks that every get reads the put of
the same key submitted just before it (still in flight: the node applies a
connection's requests in order), that results come back in submission order with
their handles, that the session's context grows and that a full pipe says
CW_EFULL; the writes then replicate to the other region, and causeway-bench
--pipeline runs without errors, and so does --compare causal,eventual, which
picks the config's bucket of each consistency (kv and ev here)."""
import json
import os
import subprocess

from cwtest import BIN, Cluster, check, log, run, wait_until

A, B = "us-east", "eu-west"


def main():
    with Cluster("pipeline", [A, B], latency={(A, B): 20}) as cl:
        cl.start_all()
        endpoint = f"tcp://127.0.0.1:{cl.ports[A][0]}"
        out = subprocess.run([os.path.join(BIN, "pipe_check"), endpoint], capture_output=True,
                             text=True, timeout=120)
        check(out.returncode == 0, f"pipe_check failed: {out.stdout}{out.stderr}")
        log(out.stdout.strip())
        wait_until(f"the pipelined writes in {B}", lambda: cl.get(B, "kv/p199")["found"])
        out = subprocess.run([os.path.join(BIN, "causeway-bench"), "--endpoint", endpoint,
                              "--clients", "2", "--pipeline", "8", "--seconds", "1", "--json"],
                             capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, f"causeway-bench --pipeline failed: {out.stderr}")
        d = json.loads(out.stdout)
        check(d["errors"] == 0 and d["ops_per_s"] > 0, f"causeway-bench --pipeline: {d}")
        log(f"causeway-bench --pipeline 8: {d['ops_per_s']:.0f} ops/s, no errors")
        # --compare reads the buckets from the config (it once freed the config
        # before looking, and every mode then said "needs --config with a bucket").
        out = subprocess.run([os.path.join(BIN, "causeway-bench"), "--config", cl.config,
                              "--region", A, "--clients", "2", "--seconds", "1",
                              "--compare", "causal,eventual", "--json"],
                             capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, f"causeway-bench --compare failed: {out.stderr}")
        runs = json.loads(out.stdout)["compare"]
        check(len(runs) == 2 and all(r["errors"] == 0 and r["ops_per_s"] > 0 for r in runs),
              f"causeway-bench --compare: {runs}")
        check([r["bucket"] for r in runs] == ["kv", "ev"], f"--compare buckets: {runs}")
        log("causeway-bench --compare causal,eventual: " +
            ", ".join(f"{r['bucket']} {r['ops_per_s']:.0f} ops/s" for r in runs))


run(main)
