#!/usr/bin/env python3
"""kill -9 a node in the middle of a write stream, restart it: no acknowledged
write is lost and all regions converge. Run in write_nosync and sync modes."""
import random
import threading
import time

from cwtest import Cluster, check, log, run, wait_until

A, B, C = "r1", "r2", "r3"


def one_mode(durability, base_port):
    cl = Cluster(f"crash-{durability}", [A, B, C], base_port,
                 latency={(A, B): 5, (B, C): 5, (A, C): 5}, durability=durability)
    try:
        cl.start_all()
        acked = {}
        kill_after = random.uniform(0.4, 1.2)
        killed = threading.Event()

        def killer():
            time.sleep(kill_after)
            cl.kill9(A)
            killed.set()

        t = threading.Thread(target=killer)
        t.start()
        i = 0
        failed = 0
        while not killed.is_set() or i < 5:
            if killed.is_set():
                break
            rc, out, err = cl.put(A, f"kv/k{i}", f"v{i}", timeout_ms=1000)
            if rc == 0:
                acked[f"kv/k{i}"] = f"v{i}"
            else:
                failed += 1
            i += 1
        t.join()
        log(f"{durability}: killed {A} with SIGKILL after {kill_after:.2f} s; "
            f"{len(acked)} writes acknowledged, {failed} failed")
        check(len(acked) >= 3, "too few writes were acknowledged before the kill to test anything")
        cl.start(A)
        log(f"{durability}: restarted {A}")
        for region in (A, B, C):
            for k, v in acked.items():
                got = wait_until(f"{k} at {region}", lambda: cl.get(region, k) if cl.get(region, k)["found"] else None)
                vals = [x["value"] for x in got["versions"]]
                check(vals == [v], f"LOST OR WRONG: {k} at {region} is {vals}, acknowledged {v}")
        for region in (A, B, C):
            wait_until(f"{region} quiet", lambda: (lambda s: s["buffered"] == 0 and s["outbox_total"] == 0)(cl.status(region)))
        log(f"{durability}: every acknowledged write is in every region; buffers and outboxes empty")
    finally:
        cl.close()


def main():
    one_mode("write_nosync", 17500)
    one_mode("sync", 17600)


run(main)
