#!/usr/bin/env python3
"""Resource exhaustion under the real daemon (docs/operations.md, "Resource
failures"), with the cw_faultfs LD_PRELOAD shim failing file operations under
the region's data directory once a trigger file exists:

1. disk full: the log write of a large commit fails with ENOSPC. The client of
   that write gets an error naming the cause (never OK), the daemon logs "No
   space left on device" and what to do, and stops within seconds with exit
   status 3; started again with the space back, it holds every acknowledged
   write and serves.
2. out of descriptors: opening a log file fails with EMFILE (a checkpoint reads
   the log to remove old files; a log file switch opens a new one). Berkeley DB
   panics; the daemon logs "too many open files" and what to do, stops with exit
   status 3, and started again holds every acknowledged write.
3. a checkpoint that fails after good commits (ENOSPC writing keys.db's pages
   only): the writes go on and are acknowledged, the failure is logged once
   with its cause and counted in status (checkpoints_failed,
   checkpoints_failing); once space is back the next checkpoint works, the
   count in a row goes back to 0, and the node stops cleanly and restarts with
   every write.
4. reads that fail (EIO reading keys.db's pages, after a restart with a small
   store cache): each read that needs a page gets an error, never wrong data;
   one log line names the cause; status counts them; the node keeps serving,
   reads work again once the disk does, and it stops cleanly (no leak).

Under a sanitizer build the sanitizer's runtime is preloaded first and the shim
after it (see faultfs.c).
"""
import os
import subprocess
import time

import cwtest
from cwtest import BIN, Cluster, check, log, run, wait_until

A = "r1"
EXIT_STORE_RESOURCE = 3  # causewayd --help, docs/operations.md


def shim_path():
    path = os.environ.get("CW_FAULTFS") or os.path.join(BIN, "tests", "integration",
                                                         "libcw_faultfs.so")
    check(os.path.exists(path), f"the fault-injection shim {path} is missing: build the "
          "cw_faultfs target (it is built with the tests) or set CW_FAULTFS")
    return path


def preload():
    """LD_PRELOAD for the daemon: a sanitizer runtime it links must come first."""
    out = subprocess.run(["ldd", os.path.join(BIN, "causewayd")], capture_output=True,
                         text=True).stdout
    first = [l.split("=>")[1].split()[0] for l in out.splitlines()
             if "=>" in l and any(n in l for n in ("libasan", "libtsan", "libhwasan"))]
    return ":".join(first + [shim_path()])


def fault_env(cl, errno_name, **extra):
    trigger = os.path.join(cl.dir, "fault-on")
    env = dict(os.environ, LD_PRELOAD=preload(), CW_FAULT_DIR=os.path.join(cl.dir, "data"),
               CW_FAULT_ERRNO=errno_name, CW_FAULT_TRIGGER=trigger)
    env.update({k: str(v) for k, v in extra.items()})
    return env, trigger


def put_stdin(cl, bk, value, timeout_ms=5000):
    p = subprocess.run([os.path.join(BIN, "causeway"), "--config", cl.config, "--region", A,
                        "--timeout", str(timeout_ms), "put", bk, "-"], input=value,
                       capture_output=True, timeout=120)
    return p.returncode, p.stderr.decode(errors="replace")


def wait_exit(cl, what, timeout=20.0):
    """The node must stop by itself within timeout (no hang), with exit status 3."""
    p = cl.procs[A]
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise cwtest.Failure(f"{what}: {A} did not stop within {timeout:.0f} s of the fault "
                             f"(a hang?):\n" + cl.log_tail(A, 30))
    cl.procs.pop(A)
    check(rc == EXIT_STORE_RESOURCE,
          f"{what}: {A} exited with status {rc}, not {EXIT_STORE_RESOURCE} (the store ran out of "
          f"a resource); a negative status is a signal (an abort or a crash):\n" + cl.log_tail(A, 30))
    return rc


def full_log(cl):
    with open(os.path.join(cl.dir, f"{A}.log"), errors="replace") as f:
        return f.read()


def check_acked(cl, acked, what):
    for bk, v in acked.items():
        got = cl.get(A, bk)
        vals = [x["value"] for x in got.get("versions", [])] if got.get("found") else []
        if len(v) > 64:  # large values: compare their length and first bytes
            ok = len(vals) == 1 and len(vals[0]) == len(v) and vals[0][:16] == v[:16]
        else:
            ok = vals == [v]
        check(ok, f"LOST OR WRONG after {what}: {bk} is {[x[:20] for x in vals]}, acknowledged "
              f"{v[:20]!r}")


def small_writes(cl):
    """Eight small acknowledged writes before a fault; returns them by key."""
    acked = {}
    for i in range(8):
        rc, _, err = cl.put(A, f"kv/k{i}", f"v{i}")
        check(rc == 0, f"put kv/k{i} failed before the fault: {err}")
        acked[f"kv/k{i}"] = f"v{i}"
    return acked


def disk_full():
    with Cluster("resfail-nospc", [A]) as cl:
        # Only writes of 64 KiB and more fail: a large value's commit meets the
        # fault, the node's small periodic commits do not get there first.
        env, trigger = fault_env(cl, "ENOSPC", CW_FAULT_MIN_BYTES=65536)
        cl.start(A, env=env)
        acked = small_writes(cl)
        big = "B" * (256 << 10)
        rc, err = put_stdin(cl, "kv/big-before", big.encode())
        check(rc == 0, f"a 256 KiB put failed before the fault: {err}")
        acked["kv/big-before"] = big
        check_acked(cl, acked, "writing")
        log(f"{len(acked)} writes acknowledged; the disk is full from now on")

        open(trigger, "w").close()
        t0 = time.time()
        rc, err = put_stdin(cl, "kv/big-during", ("D" * (256 << 10)).encode())
        took = time.time() - t0
        check(rc != 0, "a write whose commit failed was acknowledged")
        check("No space left on device" in err,
              f"the client of the failed write got no error naming the cause (after {took:.1f} s): "
              f"{err.strip()}")
        log(f"the write during the fault failed after {took:.1f} s: {err.strip()[:200]}")
        wait_exit(cl, "disk full")
        text = full_log(cl)
        data_dir = os.path.join(cl.dir, "data", A)
        check("faultfs:" in text, "the shim reported no failure: was it preloaded?")
        for needle in ("No space left on device", f"free space on the filesystem holding {data_dir}",
                       "start the region again", "exit status 3"):
            check(needle in text, f"{A}'s log does not say {needle!r}:\n" + cl.log_tail(A, 30))
        log(f"{A} stopped with exit status 3 and said why and what to do")

        os.unlink(trigger)
        cl.start(A)
        check_acked(cl, acked, "the restart")
        rc, _, err = cl.put(A, "kv/after", "served")
        check(rc == 0, f"put after the restart failed: {err}")
        check(cl.get(A, "kv/after")["found"], "kv/after not readable after the restart")
        log("restarted: every acknowledged write is there and the region serves")


def out_of_descriptors():
    with Cluster("resfail-emfile", [A], cluster_extra="max_value_bytes = 4194304") as cl:
        env, trigger = fault_env(cl, "EMFILE")
        cl.start(A, env=env)
        acked = small_writes(cl)
        log(f"{len(acked)} writes acknowledged; opening files in the data directory fails from now on")

        open(trigger, "w").close()
        # Keep writing: the next checkpoint opens a log file to read it, and
        # large values switch log files (16 MiB each): either meets the fault.
        t0, i, failed = time.time(), 0, 0
        while cl.alive(A) and time.time() - t0 < 30:
            value = f"w{i}" if i < 20 else "L" * (2 << 20)
            bk = f"kv/during{i}"
            if len(value) > 64:
                rc, err = put_stdin(cl, bk, value.encode())
            else:
                rc, _, err = cl.put(A, bk, value, timeout_ms=5000)
            if rc == 0:
                acked[bk] = value  # acknowledged: it must survive
            else:
                failed += 1
            i += 1
        check(failed > 0 or not cl.alive(A), "every write went on succeeding with the fault on")
        wait_exit(cl, "out of descriptors", timeout=20)
        text = full_log(cl)
        for needle in ("Too many open files", "too many open files: raise the open-file limit",
                       "start the region again", "recovery runs at the next start",
                       "exit status 3"):
            check(needle in text, f"{A}'s log does not say {needle!r}:\n" + cl.log_tail(A, 30))
        log(f"{A} stopped with exit status 3 after {time.time() - t0:.1f} s and {i} writes "
            f"({failed} not acknowledged)")

        os.unlink(trigger)
        cl.start(A)
        check_acked(cl, acked, "the restart")
        rc, _, err = cl.put(A, "kv/after", "served")
        check(rc == 0, f"put after the restart failed: {err}")
        log(f"restarted: all {len(acked)} acknowledged writes are there and the region serves")


def checkpoint_failing():
    # A large store cache: dirty pages stay in memory until a checkpoint
    # writes them, so only the checkpoint meets the fault.
    with Cluster("resfail-ckpt", [A], cluster_extra="store_cache_bytes = 128M\ncheckpoint_bytes = 8M") as cl:
        env, trigger = fault_env(cl, "ENOSPC")
        env["CW_FAULT_DIR"] = os.path.join(cl.dir, "data", A, "keys.db")  # that file only
        cl.start(A, env=env)
        open(trigger, "w").close()
        acked = {}
        value = "C" * ((1 << 20) - 100)
        # A checkpoint is due after 8 MiB of log; each of these writes logs more
        # than 1 MiB.
        for i in range(12):
            rc, err = put_stdin(cl, f"kv/c{i}", value.encode())
            check(rc == 0, f"put kv/c{i} failed while only checkpoints fail: {err}")
            acked[f"kv/c{i}"] = value
        counters = cl.status(A)["counters"]
        check(counters["checkpoints_failed"] > 0 and counters["checkpoints_failing"] > 0,
              f"no failed checkpoint in status after 12 MiB of writes: {counters}")
        text = full_log(cl)
        lines = [l for l in text.splitlines() if "checkpoint in" in l and "failed after a good commit" in l]
        check(len(lines) == 1, f"expected one log line on the failing checkpoints (rate-limited), "
              f"got {len(lines)}:\n" + cl.log_tail(A, 20))
        for needle in ("No space left on device", "free space on the filesystem holding"):
            check(needle in lines[0], f"the checkpoint line does not say {needle!r}: {lines[0]}")
        log(f"writes go on while checkpoints fail: {counters['checkpoints_failed']} failed, "
            f"{counters['checkpoints_failing']} in a row, one log line")

        os.unlink(trigger)
        for i in range(12, 15):
            rc, err = put_stdin(cl, f"kv/c{i}", value.encode())
            check(rc == 0, f"put kv/c{i} failed after the space came back: {err}")
            acked[f"kv/c{i}"] = value
        counters = cl.status(A)["counters"]
        check(counters["checkpoints_failing"] == 0,
              f"checkpoints still failing after the space came back: {counters}")
        check("checkpoints work again" in full_log(cl), "no log line saying checkpoints work again")
        check(cl.stop(A) == 0, f"{A} did not stop cleanly")
        cl.start(A)
        check_acked(cl, acked, "the restart")
        log(f"checkpoints work again; all {len(acked)} writes are there after a restart")


def read_failing():
    # A small store cache and a replica cache that keeps nothing: reads after
    # a restart go to keys.db's pages on disk.
    with Cluster("resfail-read", [A],
                 cluster_extra="store_cache_bytes = 1M\nkey_cache_bytes_max = 64K") as cl:
        cl.start(A)
        value = "R" * (200 << 10)
        for i in range(16):
            rc, err = put_stdin(cl, f"kv/r{i:02d}", value.encode())
            check(rc == 0, f"put kv/r{i:02d} failed: {err}")
        check(cl.stop(A) == 0, f"{A} did not stop cleanly")
        env, trigger = fault_env(cl, "EIO", CW_FAULT_OPS="read")
        env["CW_FAULT_DIR"] = os.path.join(cl.dir, "data", A, "keys.db")
        cl.start(A, env=env)
        open(trigger, "w").close()
        failed = 0
        for i in range(16):
            rc, out, err = cl.cli(A, "get", f"kv/r{i:02d}", json_out=True)
            if rc == 0:
                vals = [v["value"] for v in out.get("versions", [])]
                check(vals == [value], f"kv/r{i:02d} read back wrong while reads fail: "
                      f"{[v[:16] for v in vals]}")
            else:
                check(rc == 1 and "storage error" in err,
                      f"get kv/r{i:02d} failed without a storage error ({rc}): {err}")
                failed += 1
        check(failed > 0, "no read failed with the disk failing reads")
        check(cl.alive(A), f"{A} stopped on failed reads:\n" + cl.log_tail(A, 20))
        counters = cl.status(A)["counters"]
        check(counters["store_read_errors"] >= failed,
              f"store_read_errors {counters['store_read_errors']} < {failed} failed reads")
        lines = [l for l in full_log(cl).splitlines() if "from the store failed" in l]
        # At most one line every 10 s: one here, unless the host is very slow.
        check(1 <= len(lines) <= max(1, failed // 4),
              f"expected one (rate-limited) log line on the {failed} failed reads, got "
              f"{len(lines)}:\n" + cl.log_tail(A, 20))
        check("Input/output error" in lines[0] and "check the device" in lines[0],
              f"the read failure line does not name the cause and what to do: {lines[0]}")
        log(f"{failed} of 16 reads failed with a storage error while the disk failed reads; one "
            f"log line; the node serves")
        os.unlink(trigger)
        for i in range(16):
            got = cl.get(A, f"kv/r{i:02d}")
            check([v["value"] for v in got.get("versions", [])] == [value],
                  f"kv/r{i:02d} wrong after the disk came back")
        check(cl.stop(A) == 0, f"{A} did not stop cleanly after failed reads")
        log("reads work again once the disk does; clean stop")


def main():
    disk_full()
    out_of_descriptors()
    checkpoint_failing()
    read_failing()


run(main)
