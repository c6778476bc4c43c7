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
import socket
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


def free_ports(n):
    """n TCP ports on 127.0.0.1 that are free right now (the kernel picks them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# CAUSEWAY_TEST_SECURITY=curve runs every cluster of a test with CurveZMQ (keys
# made at run time under the cluster's directory); ctest runs some tests so.
SECURE_DEFAULT = os.environ.get("CAUSEWAY_TEST_SECURITY", "none") == "curve"


def keygen(path):
    """A key pair at path (and path.pub) made by `causeway keygen`; its public key."""
    p = subprocess.run([os.path.join(BIN, "causeway"), "keygen", "--out", path],
                       capture_output=True, timeout=30)
    check(p.returncode == 0, f"causeway keygen --out {path} failed: {p.stderr.decode()}")
    pub = p.stdout.decode().strip()
    check(len(pub) == 40, f"keygen printed no 40-character public key: {pub!r}")
    return pub


SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


class Cluster:
    """Regions on 127.0.0.1 with ports the kernel picks; latency is {(a, b): ms}."""

    def __init__(self, name, regions, base_port=None, latency=None, durability="write_nosync",
                 buckets=None, cluster_extra="", secure=None):
        self.name = name
        self.regions = regions
        self.dir = tempfile.mkdtemp(prefix=f"cw-{name}-")
        self.config = os.path.join(self.dir, "cluster.ini")
        self.procs = {}
        self.logs = {}
        self.exit_problems = []
        self.secure = SECURE_DEFAULT if secure is None else secure
        if regions is None:
            return  # from_geo_config writes the config
        self._make_keys()
        lines = ["[cluster]", f"durability = {durability}", f"data_dir = {self.dir}/data",
                 "heartbeat_ms = 100", "wait_ms = 3000", "resend_ms = 300", "log_level = info"]
        lines += self._security_cluster_lines()
        lines += [l for l in cluster_extra.splitlines() if l.strip()]
        ports = free_ports(3 * len(regions))
        self.ports = {r: tuple(ports[3 * i:3 * i + 3]) for i, r in enumerate(regions)}
        for r in regions:
            c, p, a = self.ports[r]
            lines += ["", f"[region {r}]", f"client = tcp://127.0.0.1:{c}",
                      f"peer = tcp://127.0.0.1:{p}", f"admin = tcp://127.0.0.1:{a}"]
            lines += self._security_region_lines(r)
        lines += ["", "[latency]"]
        for (a, b), ms in (latency or {}).items():
            lines.append(f"{a} {b} = {ms}")
        for name_, (cons, conf) in (buckets or {"kv": ("causal", "lww"), "sib": ("causal", "siblings"),
                                                 "posts": ("causal", "lww"), "replies": ("causal", "lww"),
                                                 "ev": ("eventual", "lww")}).items():
            lines += ["", f"[bucket {name_}]", f"consistency = {cons}", f"conflict = {conf}"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- security ----------------------------------------------------------------
    def _make_keys(self):
        """With security: a key pair per region, a client (alice) and an admin (root),
        and the two key lists, under the cluster's directory."""
        if not self.secure:
            return
        kd = os.path.join(self.dir, "keys")
        os.makedirs(kd, exist_ok=True)
        self.keys_dir = kd
        self.region_pub = {r: keygen(os.path.join(kd, f"{r}.key")) for r in self.regions}
        self.client_key = os.path.join(kd, "alice.key")
        self.admin_key = os.path.join(kd, "root.key")
        self.client_pub = keygen(self.client_key)
        self.admin_pub = keygen(self.admin_key)
        with open(os.path.join(kd, "clients"), "w") as f:
            f.write(f"# clients\n{self.client_pub} alice  # the test client\n")
        with open(os.path.join(kd, "admins"), "w") as f:
            f.write(f"# admins\n{self.admin_pub} root\n")

    def _security_cluster_lines(self):
        if not self.secure:
            return []
        return ["security = curve", f"client_keys_file = {self.keys_dir}/clients",
                f"admin_keys_file = {self.keys_dir}/admins"]

    def _security_region_lines(self, r):
        if not self.secure:
            return []
        return [f"public_key = {self.region_pub[r]}",
                f"secret_key_file = {self.keys_dir}/{r}.key"]

    @classmethod
    def from_geo_config(cls, name, path, cluster_set=None, secure=None):
        """A copy of a shipped geo-config (its regions, latencies and buckets) with
        ports the kernel picks, the data under the temporary directory, and the
        [cluster] keys of cluster_set ({key: value}) replaced or added."""
        cl = cls(name, None, secure=secure)
        cluster_set = dict(cluster_set or {})
        cluster_set["data_dir"] = f"{cl.dir}/data"
        with open(path) as f:
            src = f.read().splitlines()
        regions = []
        for line in src:
            t = line.split(";", 1)[0].strip()
            if t.startswith("[region ") and t.endswith("]"):
                regions.append(t[len("[region "):-1].strip())
        cl.regions = regions
        cl._make_keys()
        if cl.secure:
            for line in cl._security_cluster_lines():
                k, v = line.split(" = ", 1)
                cluster_set.setdefault(k, v)
        ports = free_ports(3 * len(regions))
        cl.ports = {r: tuple(ports[3 * i:3 * i + 3]) for i, r in enumerate(regions)}
        out, section, pending = [], None, dict(cluster_set)

        def flush_cluster():
            # After the section's last key, before the comments that lead into the next.
            at = len(out)
            while at > 0 and (not out[at - 1].strip() or out[at - 1].lstrip().startswith(";")):
                at -= 1
            out[at:at] = [f"{k} = {v}" for k, v in pending.items()]
            pending.clear()

        for line in src:
            t = line.split(";", 1)[0].strip()
            if t.startswith("["):
                if section == "cluster":
                    flush_cluster()
                section = "cluster" if t == "[cluster]" else t
                if section.startswith("[region "):
                    out.append(line)
                    out.extend(cl._security_region_lines(section[len("[region "):-1].strip()))
                    continue
            elif "=" in t and section == "cluster":
                key = t.split("=", 1)[0].strip()
                if key in cluster_set:
                    out.append(f"{key} = {cluster_set[key]}")
                    pending.pop(key, None)
                    continue
            elif "=" in t and section.startswith("[region "):
                key = t.split("=", 1)[0].strip()
                roles = ("client", "peer", "admin")
                if key in roles:
                    r = section[len("[region "):-1].strip()
                    out.append(f"{key} = tcp://127.0.0.1:{cl.ports[r][roles.index(key)]}")
                    continue
            out.append(line)
        if section == "cluster":
            flush_cluster()
        with open(cl.config, "w") as f:
            f.write("\n".join(out) + "\n")
        return cl

    # -- processes -----------------------------------------------------------
    def start(self, region, extra_args=(), preexec_fn=None, env=None):
        """preexec_fn runs in the daemon's process before it starts (e.g. to lower
        its open-file limit); env: the daemon's environment (default: this
        process's)."""
        logf = open(os.path.join(self.dir, f"{region}.log"), "ab")
        self.logs[region] = logf
        self.procs[region] = subprocess.Popen(
            [os.path.join(BIN, "causewayd"), "--config", self.config, "--region", region,
             *extra_args],
            stdout=logf, stderr=subprocess.STDOUT, preexec_fn=preexec_fn, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            check(self.procs[region].poll() is None,
                  f"{region} exited at start (status {self.procs[region].returncode}):\n" + self.log_tail(region))
            rc, out, _ = self.cli(region, "status", timeout_ms=500, json_out=True)
            # Only our own node counts: the right region, and our process still alive.
            if rc == 0 and out.get("region") == region and self.procs[region].poll() is None:
                return
            time.sleep(0.1)
        raise Failure(f"{region} did not answer status within 30 s:\n" + self.log_tail(region))

    def start_all(self):
        for r in self.regions:
            self.start(r)

    def kill9(self, region):
        p = self.procs.pop(region)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self, region):
        """SIGTERM, then the exit status must be 0 (sanitizer reports make it not)."""
        p = self.procs.pop(region, None)
        if p is None:
            return 0
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            self.exit_problems.append(f"{region} did not stop on SIGTERM within 15 s")
            return -9
        if rc != 0:
            self.exit_problems.append(f"{region} exited with status {rc} on SIGTERM")
        return rc

    def alive(self, region):
        return region in self.procs and self.procs[region].poll() is None

    def log_tail(self, region, n=20):
        try:
            with open(os.path.join(self.dir, f"{region}.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def close(self, failed=False):
        """Stops every node; fails on a bad exit or a sanitizer report in any log.
        Keeps the directory (logs, data) when something failed or CAUSEWAY_KEEP=1."""
        for r in list(self.procs):
            self.stop(r)
        for f in self.logs.values():
            f.close()
        for r in self.regions:
            tail = self.log_tail(r, 400)
            if any(m in tail for m in SANITIZER_MARKS):
                self.exit_problems.append(f"sanitizer report in {r}'s log")
        problems = self.exit_problems
        if failed or problems:
            for r in self.regions:
                print(f"---- last lines of {r}'s log ----\n{self.log_tail(r, 30)}", flush=True)
        if failed or problems or os.environ.get("CAUSEWAY_KEEP") == "1":
            print(f"kept {self.dir} for inspection", flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        check(not problems, "; ".join(problems))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            try:
                self.close(failed=True)
            except Failure as e:
                print(f"also: {e}", flush=True)
            return False
        self.close()
        return False

    # -- the CLI ---------------------------------------------------------------
    def cli(self, region, *args, session=None, timeout_ms=3000, json_out=False, key=None):
        """key: a key pair file; None: with security, the admin key for link and the
        client key otherwise; False: none."""
        cmd = [os.path.join(BIN, "causeway"), "--config", self.config, "--region", region,
               "--timeout", str(timeout_ms)]
        if key is None and self.secure:
            key = self.admin_key if args and args[0] == "link" else self.client_key
        if key:
            cmd += ["--key-file", key]
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
    except Exception:
        import traceback
        traceback.print_exc()
        print("FAIL: the test raised an unexpected exception", flush=True)
        sys.exit(1)
    print("1 passed, 0 failed", flush=True)
