#!/usr/bin/env python3
"""Data directory identity through the real daemon: a new directory is announced,
another region's directory, a directory missing keys.db, meta.db or raft.db and a
directory with a flipped byte are each refused with one line that names the
directory and the problem; the region's own, intact directory starts again with
its data."""
import os
import shutil
import subprocess

from cwtest import BIN, SANITIZER_MARKS, Cluster, check, log, run, wait_until

A, B = "r1", "r2"


def data_dir(cl, region):
    return os.path.join(cl.dir, "data", region)


def start_refused(cl, region, *needles, bdb_panics=False):
    """Runs causewayd for region, expects it to refuse to start (exit status 1)
    with one ERROR line containing every needle; returns the output.

    bdb_panics: the damage makes Berkeley DB panic, after which it leaks its
    private regions by design; leak detection is off for that run only."""
    env = dict(os.environ)
    if bdb_panics:
        env["ASAN_OPTIONS"] = ":".join(
            [o for o in env.get("ASAN_OPTIONS", "").split(":") if o and not o.startswith("detect_leaks")]
            + ["detect_leaks=0"])
    p = subprocess.Popen([os.path.join(BIN, "causewayd"), "--config", cl.config, "--region", region],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        raw, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.terminate()
        raw, _ = p.communicate()
        check(False, f"{region} started and served on a bad data directory; it should have refused:\n"
              + raw.decode(errors="replace")[-3000:])
    out = raw.decode(errors="replace")
    check(p.returncode == 1, f"{region} exited with {p.returncode} on a bad data directory; it should "
          f"have refused to start (1):\n{out}")
    check(not any(m in out for m in SANITIZER_MARKS), f"sanitizer report from {region}:\n{out}")
    errors = [l for l in out.splitlines() if " ERROR " in l]
    check(len(errors) == 1, f"expected one ERROR line in {region}'s output:\n{out}")
    for n in needles:
        check(n in errors[0], f"{region}'s refusal does not mention {n!r}:\n{out}")
    log(f"{region} refused: {errors[0].split(' ERROR ', 1)[1]}")
    return out


def main():
    with Cluster("datadir", [A, B]) as cl:
        cl.start_all()
        for r in (A, B):
            with open(os.path.join(cl.dir, f"{r}.log"), errors="replace") as f:
                text = f.read()
            check("new data directory" in text, f"{r}'s first start did not say 'new data directory':\n{text}")
        for i in range(5):
            rc, _, err = cl.put(A, f"kv/k{i}", f"value-{i}")
            check(rc == 0, f"put {i} failed: {err}")
        for i in range(5):
            wait_until(f"kv/k{i} at {B}", lambda: cl.get(B, f"kv/k{i}")["found"])
        check(cl.stop(A) == 0 and cl.stop(B) == 0, "a node did not stop cleanly")

        da, db = data_dir(cl, A), data_dir(cl, B)
        keep = os.path.join(cl.dir, "r1-backup")
        shutil.copytree(da, keep)

        # Another region's directory where r1's belongs.
        os.rename(da, da + ".own")
        shutil.copytree(db, da)
        start_refused(cl, A, da, "region r2", "not r1")
        shutil.rmtree(da)
        os.rename(da + ".own", da)

        # keys.db, meta.db, then raft.db, gone while the rest is there (a
        # format 3 directory without raft.db is not a format 2 one to upgrade).
        for lost in ("keys.db", "meta.db", "raft.db"):
            os.unlink(os.path.join(da, lost))
            start_refused(cl, A, da, lost, "missing")
            shutil.rmtree(da)
            shutil.copytree(keep, da)

        # One flipped byte of a stored value.
        path = os.path.join(da, "keys.db")
        with open(path, "r+b") as f:
            blob = f.read()
            at = blob.find(b"value-3")
            check(at >= 0, "the value bytes are not in keys.db")
            f.seek(at + 6)
            f.write(b"X")
        start_refused(cl, A, da, "keys.db", "checksum", bdb_panics=True)
        shutil.rmtree(da)
        shutil.copytree(keep, da)

        # The region's own intact directory: it starts, with its data.
        cl.start(A)
        cl.start(B)
        for i in range(5):
            got = cl.get(A, f"kv/k{i}")
            check(got["found"] and [v["value"] for v in got["versions"]] == [f"value-{i}"],
                  f"kv/k{i} at {A} after the restore: {got}")
        rc, _, err = cl.put(B, "kv/after", "restored")
        check(rc == 0, f"put after restore failed: {err}")
        wait_until(f"kv/after at {A}", lambda: cl.get(A, "kv/after")["found"])
        log("the restored directory serves its data and replication goes on")


run(main)
