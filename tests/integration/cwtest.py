"""cwtest - a small harness for causeway's integration tests.

Starts real causewayd processes from a config written under a temporary
directory, drives them with the real `causeway` CLI, and always stops them.
Binaries come from $CAUSEWAY_BIN_DIR (set by ctest).
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("CAUSEWAY_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Cluster:
    """Regions on 127.0.0.1 from base_port; latency is {(a, b): ms} (both ways)."""

    def __init__(self, name, regions, base_port, latency=None, durability="write_nosync",
                 buckets=None, cluster_extra=""):
        self.name = name
        self.regions = regions
        self.dir = tempfile.mkdtemp(prefix=f"cw-{name}-")
        self.config = os.path.join(self.dir, "cluster.ini")
        self.procs = {}
        self.logs = {}
        lines = ["[cluster]", f"durability = {durability}", f"data_dir = {self.dir}/data",
                 "heartbeat_ms = 100", "read_wait_ms = 3000", "resend_ms = 300", "log_level = info"]
        lines += [l for l in cluster_extra.splitlines() if l.strip()]
        for i, r in enumerate(regions):
            p = base_port + 10 * i
            lines += ["", f"[region {r}]", f"client = tcp://127.0.0.1:{p}",
                      f"peer = tcp://127.0.0.1:{p + 1}", f"admin = tcp://127.0.0.1:{p + 2}"]
        self.ports = {r: (base_port + 10 * i, base_port + 10 * i + 1, base_port + 10 * i + 2)
                      for i, r in enumerate(regions)}
        lines += ["", "[latency]"]
        for (a, b), ms in (latency or {}).items():
            lines.append(f"{a} {b} = {ms}")
        for name_, (cons, conf) in (buckets or {"kv": ("causal", "lww"), "sib": ("causal", "siblings"),
                                                 "posts": ("causal", "lww"), "replies": ("causal", "lww"),
                                                 "ev": ("eventual", "lww")}).items():
            lines += ["", f"[bucket {name_}]", f"consistency = {cons}", f"conflict = {conf}"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- processes -----------------------------------------------------------
    def start(self, region):
        logf = open(os.path.join(self.dir, f"{region}.log"), "ab")
        self.logs[region] = logf
        self.procs[region] = subprocess.Popen(
            [os.path.join(BIN, "causewayd"), "--config", self.config, "--region", region],
            stdout=logf, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            check(self.procs[region].poll() is None,
                  f"{region} exited at start (status {self.procs[region].returncode}):\n" + self.log_tail(region))
            rc, _, _ = self.cli(region, "status", timeout_ms=500)
            if rc == 0:
                return
            time.sleep(0.1)
        raise Failure(f"{region} did not answer status within 15 s:\n" + self.log_tail(region))

    def start_all(self):
        for r in self.regions:
            self.start(r)

    def kill9(self, region):
        p = self.procs.pop(region)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self, region):
        p = self.procs.pop(region, None)
        if p is None:
            return 0
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Failure(f"{region} did not stop on SIGTERM within 10 s")

    def alive(self, region):
        return region in self.procs and self.procs[region].poll() is None

    def log_tail(self, region, n=20):
        try:
            with open(os.path.join(self.dir, f"{region}.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def close(self, keep=False):
        for r in list(self.procs):
            try:
                self.stop(r)
            except Failure:
                pass
        for f in self.logs.values():
            f.close()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- the CLI ---------------------------------------------------------------
    def cli(self, region, *args, session=None, timeout_ms=3000, json_out=False):
        cmd = [os.path.join(BIN, "causeway"), "--config", self.config, "--region", region,
               "--timeout", str(timeout_ms)]
        if session:
            cmd += ["--session", session]
        if json_out:
            cmd.append("--json")
        cmd += list(args)
        p = subprocess.run(cmd, capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        if json_out and out.strip():
            try:
                out = json.loads(out)
            except ValueError:
                raise Failure(f"causeway {' '.join(args)} printed no JSON: {out!r}")
        return p.returncode, out, p.stderr.decode(errors="replace")

    def get(self, region, bk, session=None):
        rc, out, err = self.cli(region, "get", bk, session=session, json_out=True)
        check(rc in (0, 3), f"get {bk} at {region} failed ({rc}): {err}")
        return out

    def put(self, region, bk, value, session=None, timeout_ms=3000):
        rc, out, err = self.cli(region, "put", bk, value, session=session, json_out=True,
                                timeout_ms=timeout_ms)
        return rc, out, err

    def status(self, region):
        rc, out, err = self.cli(region, "status", json_out=True)
        check(rc == 0, f"status at {region} failed ({rc}): {err}")
        return out

    def link(self, frm, to, *action):
        rc, _, err = self.cli(frm, "link", frm, to, *action)
        check(rc == 0, f"link {frm} {to} {' '.join(action)} failed ({rc}): {err}")

    def session(self, name):
        return os.path.join(self.dir, f"{name}.session")


def wait_until(what, fn, timeout=20.0, interval=0.1):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise Failure(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def values(getres):
    return sorted(v["value"] for v in getres.get("versions", []))


def run(main):
    """Runs main(), prints PASS/FAIL and exits accordingly."""
    seed = int(os.environ.get("CAUSEWAY_TEST_SEED", str(int(time.time()) % 100000)))
    random.seed(seed)
    log(f"seed {seed} (CAUSEWAY_TEST_SEED={seed} replays the random choices)")
    try:
        main()
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    print("1 passed, 0 failed", flush=True)
