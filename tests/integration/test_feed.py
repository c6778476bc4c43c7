#!/usr/bin/env python3
"""The social-feed demo, short: causeway-feed on a copy of geo-configs/three-regions.ini
(its WAN delays and buckets, free ports, strong_timeout_ms 2000, the strong leader
in eu-west), 10 s per mode, ap-south cut off for 3 s in the middle of each mode,
and the default slow link (us-east -> ap-south at 1 s one way, so a reply written
in eu-west can reach ap-south before its post). From the program's own counters:

- causal: no orphans, no lost replies, nothing refused during the partition;
- eventual: orphans (the anomaly causality prevents), no lost replies (the
  siblings merge holds), nothing refused;
- strong: no orphans, no lost replies (compare-and-set holds), no stale reads,
  and requests refused in the cut-off region;
- results.json, results.csv, table.txt, the .dat files and charts.gp are written.

Bad options exit 2 with a message; --help explains every flag."""
import json
import os
import subprocess
import tempfile

from cwtest import BIN, Cluster, check, log, run

HERE = os.path.dirname(os.path.abspath(__file__))
GEO = os.path.join(HERE, "..", "..", "geo-configs", "three-regions.ini")
FEED = os.path.join(BIN, "causeway-feed")


def feed(*args, timeout=240):
    p = subprocess.run([FEED, *args], capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def main():
    rc, out, _ = feed("--help")
    check(rc == 0, "--help failed")
    for flag in ("--duration", "--users", "--seed", "--regions", "--config", "--out", "--modes",
                 "--no-partition", "--mix", "--zipf", "--slow-link", "--think-ms"):
        check(flag in out, f"--help does not explain {flag}")
    rc, _, err = feed("--modes", "causal,bogus")
    check(rc == 2 and "--modes" in err, f"a bad --modes should exit 2 naming it: {rc} {err!r}")
    rc, _, err = feed("--duration", "0")
    check(rc == 2 and "--duration" in err, f"a bad --duration should exit 2: {rc} {err!r}")

    with Cluster.from_geo_config("feed", GEO, {"strong_timeout_ms": 2000,
                                               "preferred_leader": "eu-west",
                                               "heartbeat_ms": 100}) as cl:
        rc, _, err = feed("--config", cl.config, "--duration", "5", "--no-partition")
        check(rc == 1 and "start the regions" in err,
              f"with no region running it should say to start them: {rc} {err!r}")
        cl.start_all()
        out_dir = tempfile.mkdtemp(prefix="cw-feed-out-")
        log("causeway-feed, 10 s per mode, partition 3 s")
        rc, out, err = feed("--config", cl.config, "--duration", "10", "--partition-secs", "3",
                            "--users", "4", "--seed", "1", "--out", out_dir, "--no-charts")
        print(out, flush=True)
        check(rc == 0, f"causeway-feed failed ({rc}):\n{err[-3000:]}")
        check("seed 1" in out, "the seed is not printed")
        for f in ("results.json", "results.csv", "table.txt", "charts.gp", "visibility.dat",
                  "anomalies.dat", "put-cdf-causal.dat", "thread-cdf-strong.dat"):
            check(os.path.exists(os.path.join(out_dir, f)), f"{f} was not written")
        with open(os.path.join(out_dir, "results.json")) as f:
            res = json.load(f)
        modes = {m["mode"]: m for m in res["modes"]}
        check(list(modes) == ["causal", "eventual", "strong"], f"modes: {list(modes)}")
        for name, m in modes.items():
            t = m["totals"]
            log(f"{name}: ops {m['ops']}, replies {m['acked_replies']}, orphans {t['orphans']}, "
                f"lost {m['lost_replies']}, stale {t['stale_reads']}, refused "
                f"{t['refused_partition']}, errors {t['errors']}, quiet {m['quiet_before_check']}")
            check(m["ops"] > 0 and m["acked_replies"] > 0, f"{name}: no work done")
            check(m["quiet_before_check"], f"{name}: the regions never became quiet")
            check(m["lost_replies"] == 0, f"{name}: {m['lost_replies']} acknowledged replies lost")
            check(m["put_ms"]["n"] > 0 and m["thread_read_ms"]["n"] > 0, f"{name}: no latencies")
        for name in ("causal", "strong"):
            check(modes[name]["totals"]["orphans"] == 0,
                  f"{name}: {modes[name]['totals']['orphans']} orphans")
        check(modes["strong"]["totals"]["stale_reads"] == 0,
              f"strong: {modes['strong']['totals']['stale_reads']} stale reads")
        check(modes["eventual"]["totals"]["orphans"] > 0,
              "eventual: no orphan under the slow us-east -> ap-south link")
        for name in ("causal", "eventual"):
            t = modes[name]["totals"]
            check(t["refused_partition"] == 0 and t["errors"] == 0,
                  f"{name}: requests failed ({t['refused_partition']} refused, {t['errors']} "
                  f"errors; first: {modes[name]['first_error']}): it should keep serving")
            check(modes[name]["regions"]["ap-south"]["orphans"] >= 0, "per-region figures")
        check(modes["strong"]["regions"]["ap-south"]["refused_partition"] > 0,
              "strong: the cut-off region refused nothing")
        check(modes["strong"]["regions"]["us-east"]["refused_partition"] == 0,
              "strong: the majority side refused requests")
        # The floor and the replication bytes of each mode (protocol.md 5.5).
        fl = res["ping_floor_ms"]
        check(fl["n"] == 3 * 200 and 0 < fl["p50"] <= fl["p99"], f"ping floor: {fl}")
        for name in ("causal", "eventual"):
            r = modes[name]["replication"]
            check(r["records"] >= 2 * modes[name]["acked_replies"],
                  f"{name}: fewer records replicated than replies written to two peers: {r}")
            check(r["metadata_bytes"] == r["batch_bytes"] - r["key_bytes"] - r["value_bytes"],
                  f"{name}: replication bytes do not add up: {r}")
            check(0 < r["metadata_bytes_per_write"] < 1000 and r["lz4_ratio"] > 0,
                  f"{name}: replication figures: {r}")
        targets = [t["target"] for t in res["targets"]]
        for want in ("causal put p50", "causal put p99",
                     "causal: metadata per replicated write"):
            check(any(t.startswith(want) for t in targets), f"no target '{want}': {targets}")
        check(all(t["verdict"].split()[0] in ("met", "missed", "not") for t in res["targets"]),
              f"verdicts: {res['targets']}")
        check("targets (docs/benchmarks.md" in out and "LZ4 ratio" in out,
              "the targets table or the LZ4 column is not printed")
        with open(os.path.join(out_dir, "results.csv")) as f:
            head = f.readline().strip().split(",")
        check(head[-2:] == ["metadata_bytes_per_write", "lz4_ratio"], f"csv columns: {head}")


if __name__ == "__main__":
    run(main)
