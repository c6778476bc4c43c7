#!/usr/bin/env python3
"""kill -9 a node in the middle of a write stream, restart it: no acknowledged
write is lost and all regions converge. Run in write_nosync and sync modes."""
import os
import random
import subprocess
import time

from cwtest import BIN, Cluster, check, log, run, wait_until

A, B, C = "r1", "r2", "r3"


def one_mode(durability):
    with Cluster(f"crash-{durability}", [A, B, C], latency={(A, B): 5, (B, C): 5, (A, C): 5},
                 durability=durability) as cl:
        cl.start_all()
        acked = {}
        n_before = random.randint(5, 30)
        for i in range(n_before):
            rc, _, err = cl.put(A, f"kv/k{i}", f"v{i}")
            check(rc == 0, f"write {i} failed before the crash: {err}")
            acked[f"kv/k{i}"] = f"v{i}"
        # One more write in flight when the node dies: it may or may not survive,
        # but if its client was told "ok", it must.
        inflight = subprocess.Popen(
            [os.path.join(BIN, "causeway"), "--config", cl.config, "--region", A, "--timeout", "3000",
             "put", "kv/inflight", "maybe"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(random.uniform(0, 0.02))
        cl.kill9(A)
        inflight.wait(timeout=60)
        if inflight.returncode == 0:
            acked["kv/inflight"] = "maybe"
        log(f"{durability}: SIGKILL {A} after {n_before} acknowledged writes; the write in flight "
            f"was {'acknowledged' if inflight.returncode == 0 else 'not acknowledged'}")
        cl.start(A)
        log(f"{durability}: restarted {A}")
        for region in (A, B, C):
            for k, v in acked.items():
                got = wait_until(f"{k} at {region}",
                                 lambda: (lambda g: g if g["found"] else None)(cl.get(region, k)))
                vals = [x["value"] for x in got["versions"]]
                check(vals == [v], f"LOST OR WRONG: {k} at {region} is {vals}, acknowledged {v}")
        for region in (A, B, C):
            wait_until(f"{region} quiet",
                       lambda: (lambda s: s["buffered"] == 0 and s["outbox_total"] == 0)(cl.status(region)))
        log(f"{durability}: every acknowledged write is in every region; buffers and outboxes empty")


def main():
    one_mode("write_nosync")
    one_mode("sync")


run(main)
