#!/usr/bin/env python3
"""Rebuilding a region whose disk was lost: three regions under a write load;
kill -9 one, wipe its data directory, restart it with --rebuild-from. Every
write the other regions acknowledged must be there afterwards, later writes
from every region must arrive everywhere, and all regions converge."""
import os
import random
import shutil
import subprocess
import threading
import time

from cwtest import BIN, Cluster, check, log, run, wait_until

A, B, C = "r1", "r2", "r3"


class Writer(threading.Thread):
    """Writes unique keys at one region until stopped; remembers what was acknowledged."""

    def __init__(self, cl, region, tag):
        super().__init__(daemon=True)
        self.cl, self.region, self.tag = cl, region, tag
        self.acked = {}
        self.stopped = threading.Event()

    def run(self):
        i = 0
        while not self.stopped.is_set():
            k, v = f"kv/{self.tag}-{i}", f"{self.tag}-v{i}-{random.randint(0, 1 << 30)}"
            rc, _, _ = self.cl.put(self.region, k, v, timeout_ms=2000)
            if rc == 0:
                self.acked[k] = v
            i += 1

    def stop(self):
        self.stopped.set()
        self.join(timeout=60)


def value_at(cl, region, k):
    g = cl.get(region, k)
    return [x["value"] for x in g.get("versions", [])] if g.get("found") else []


def main():
    with Cluster("rebuild", [A, B, C], latency={(A, B): 5, (B, C): 5, (A, C): 5}) as cl:
        cl.start_all()
        # A data set before the loss, some of it overwritten and deleted.
        base = {}
        for i in range(24):
            region = (A, B, C)[i % 3]
            rc, _, err = cl.put(region, f"kv/base-{i}", f"b{i}")
            check(rc == 0, f"base write {i} failed: {err}")
            base[f"kv/base-{i}"] = f"b{i}"
        for i in range(0, 24, 7):
            rc, _, err = cl.cli(B, "del", f"kv/base-{i}")
            check(rc == 0, f"delete {i} failed: {err}")
            base[f"kv/base-{i}"] = None
        writers = [Writer(cl, A, "a"), Writer(cl, B, "b"), Writer(cl, C, "c")]
        for w in writers:
            w.start()
        time.sleep(2)

        # The disk of C is lost.
        cl.kill9(C)
        writers[2].stop()
        data_c = os.path.join(cl.dir, "data", C)
        check(os.path.isdir(data_c), f"no data directory {data_c}")
        shutil.rmtree(data_c)
        log(f"killed {C} and removed {data_c}; {len(writers[2].acked)} writes at {C} were acknowledged")
        time.sleep(1)

        # Restarting it without the flag would start a new empty region; the
        # flag on a non-empty directory is refused.
        os.makedirs(data_c)
        with open(os.path.join(data_c, "junk"), "w") as f:
            f.write("x")
        p = subprocess.run([os.path.join(BIN, "causewayd"), "--config", cl.config, "--region", C,
                            "--rebuild-from", A], capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode(errors="replace")
        check(p.returncode != 0 and "empty data directory" in out,
              f"--rebuild-from on a non-empty directory: status {p.returncode}, output {out!r}")
        shutil.rmtree(data_c)

        cl.start(C, extra_args=("--rebuild-from", A))
        log(f"{C} restarted with --rebuild-from {A}")
        wait_until(f"{C} serving clients",
                   lambda: cl.put(C, "kv/probe", "p", timeout_ms=1000)[0] == 0, timeout=60)
        with open(os.path.join(cl.dir, f"{C}.log"), errors="replace") as f:
            text = f.read()
        check("rebuild complete" in text, f"{C}'s log has no 'rebuild complete' line")
        check(not os.path.exists(os.path.join(data_c, "REBUILDING")), "the rebuild marker is still there")
        log(f"{C} rebuilt; writes keep going at {A} and {B}")
        time.sleep(1)
        writers[0].stop()
        writers[1].stop()

        # Later writes from every region arrive everywhere.
        later = {}
        for region in (A, B, C):
            for i in range(5):
                k, v = f"kv/later-{region}-{i}", f"l{i}"
                rc, _, err = cl.put(region, k, v)
                check(rc == 0, f"later write at {region} failed: {err}")
                later[k] = v

        expect = {}
        for k, v in base.items():
            expect[k] = [] if v is None else [v]
        for w in writers[:2]:
            for k, v in w.acked.items():
                expect[k] = [v]
        for k, v in later.items():
            expect[k] = [v]
        log(f"checking {len(expect)} keys in every region "
            f"({len(writers[0].acked)} + {len(writers[1].acked)} acknowledged at {A} and {B} under load)")
        for region in (A, B, C):
            for k, v in expect.items():
                wait_until(f"{k} = {v} at {region}", lambda: value_at(cl, region, k) == v or None,
                           timeout=30)
        # C's own acknowledged writes from before the loss: present at C exactly
        # when they are present at A (they survive where they were replicated).
        lost = 0
        for k, v in writers[2].acked.items():
            at_a, at_b, at_c = (value_at(cl, r, k) for r in (A, B, C))
            check(at_a == at_c, f"{k}: {at_a} at {A} but {at_c} at rebuilt {C}")
            if at_a != [v] or at_b != [v]:
                lost += 1
        log(f"{lost} of {len(writers[2].acked)} writes acknowledged at {C} before its disk was lost "
            f"did not survive everywhere")
        for region in (A, B, C):
            wait_until(f"{region} quiet",
                       lambda: (lambda s: s["buffered"] == 0 and s["outbox_total"] == 0)(cl.status(region)),
                       timeout=30)
        log("every write acknowledged by the other regions is at the rebuilt region; all converged")

        # A directory left by an interrupted rebuild is refused.
        check(cl.stop(C) == 0, f"{C} did not stop cleanly")
        with open(os.path.join(data_c, "REBUILDING"), "w") as f:
            f.write("")
        p = subprocess.run([os.path.join(BIN, "causewayd"), "--config", cl.config, "--region", C],
                           capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode(errors="replace")
        check(p.returncode != 0 and "interrupted rebuild" in out,
              f"start on an interrupted rebuild: status {p.returncode}, output {out!r}")
        os.remove(os.path.join(data_c, "REBUILDING"))
        cl.start(C)
        check(value_at(cl, C, "kv/later-r1-0") == ["l0"], f"{C} lost its state over a restart")
        log("an interrupted rebuild is refused; the rebuilt region restarts from its own directory")


run(main)
