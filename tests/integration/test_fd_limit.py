"""causewayd raises its open-file soft limit to the hard limit at start (a low
soft limit let a flood of client connections starve Berkeley DB of descriptors)."""
import resource

import cwtest
from cwtest import check, log


def limits(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                parts = line.split()
                return parts[3], parts[4]
    raise cwtest.Failure("no open-file limit in /proc")


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256 if hard == resource.RLIM_INFINITY or hard > 256 else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))  # inherited by the daemon
    with cwtest.Cluster("fdlimit", ["a"]) as c:
        c.start("a")
        got_soft, got_hard = limits(c.procs["a"].pid)
        want = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        check(got_hard == want, f"hard limit changed: {got_hard} (expected {want})")
        check(got_soft == want, f"soft limit {got_soft} was not raised to the hard limit {want}")
        check("open-file limit" in c.log_tail("a", 50), "no log line about the open-file limit")
        log(f"soft limit {low} raised to {got_soft}")


if __name__ == "__main__":
    cwtest.run(main)
