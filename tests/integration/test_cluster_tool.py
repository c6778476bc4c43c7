"""tools/cluster kill returns only once the region's process is gone, so a start
right after it works (it used to return at once; the start then found the ports
or the data directory lock still held)."""
import os
import subprocess

import cwtest
from cwtest import check, log

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOOL = os.path.join(ROOT, "tools", "cluster")


def tool(c, *args):
    env = dict(os.environ, CAUSEWAY_RUN_DIR=os.path.join(c.dir, "run"), CAUSEWAY_BIN_DIR=cwtest.BIN)
    return subprocess.run([TOOL, args[0], c.config, *args[1:]], env=env, capture_output=True,
                          text=True, timeout=60)


def gone(pid):
    """True when pid no longer runs (absent, or a zombie that holds nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def main():
    c = cwtest.Cluster("tool", ["a"])
    try:
        for i in range(5):
            r = tool(c, "start", "a")
            check(r.returncode == 0, f"start #{i} failed: {r.stdout} {r.stderr}")
            cwtest.wait_until("region a answers", lambda: c.cli("a", "status", timeout_ms=500)[0] == 0)
            rc, _, err = c.put("a", "kv/k", f"v{i}")
            check(rc == 0, f"put #{i} failed: {err}")
            pid_file = os.path.join(c.dir, "run", "a.pid")
            with open(pid_file) as f:
                pid = int(f.read().strip())
            r = tool(c, "kill", "a")
            check(r.returncode == 0, f"kill #{i} failed: {r.stdout} {r.stderr}")
            check(not os.path.exists(pid_file), "kill left the pid file behind")
            check(gone(pid), f"kill returned while pid {pid} still runs")
        r = tool(c, "start", "a")
        check(r.returncode == 0, f"final start failed: {r.stdout} {r.stderr}")
        cwtest.wait_until("region a answers", lambda: c.cli("a", "status", timeout_ms=500)[0] == 0)
        got = c.get("a", "kv/k")
        check(cwtest.values(got) == ["v4"], f"after five kill -9 and restarts: {got}")
        log("five kill/start cycles: every start succeeded, the last write survived")
    finally:
        tool(c, "stop", "a")
        c.close()


if __name__ == "__main__":
    cwtest.run(main)
