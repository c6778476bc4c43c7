#!/usr/bin/env python3
"""Cut a link both ways, keep writing on both sides, heal it: all regions
converge, LWW keeps one winner everywhere, siblings keep both versions
everywhere, and the dependency buffers drain to zero."""
import time

from cwtest import Cluster, check, log, run, values, wait_until

A, B, C = "west", "east", "north"


def main():
    with Cluster("partition", [A, B, C], latency={(A, B): 10, (B, C): 10, (A, C): 10}) as cl:
        cl.start_all()
        cl.link(A, B, "cut")
        cl.link(B, A, "cut")
        log("cut west<->east")
        sa, sb = cl.session("sa"), cl.session("sb")
        for i in range(5):
            check(cl.put(A, f"kv/a{i}", f"from-west-{i}", session=sa)[0] == 0, "write in west failed")
            check(cl.put(B, f"kv/b{i}", f"from-east-{i}", session=sb)[0] == 0, "write in east failed")
        check(cl.put(A, "kv/x", "west-wins?", session=sa)[0] == 0, "lww write in west failed")
        check(cl.put(B, "kv/x", "east-wins?", session=sb)[0] == 0, "lww write in east failed")
        check(cl.put(A, "sib/y", "west-version", session=sa)[0] == 0, "siblings write in west failed")
        check(cl.put(B, "sib/y", "east-version", session=sb)[0] == 0, "siblings write in east failed")
        time.sleep(0.5)
        check(not cl.get(B, "kv/a0")["found"], "east saw a west write through a cut link")
        st = cl.status(A)
        peer = [p for p in st["peers"] if p["region"] == B][0]
        check(peer["link"] == "cut", f"status does not show the cut link: {peer}")
        check(st["outbox"][B] > 0, "west's outbox for east should hold the unsent writes")
        log(f"during the cut: west's outbox for east holds {st['outbox'][B]} records")
        cl.link(A, B, "heal")
        cl.link(B, A, "heal")
        log("healed")
        for r in (A, B, C):
            for i in range(5):
                wait_until(f"kv/a{i} at {r}", lambda: cl.get(r, f"kv/a{i}")["found"])
                wait_until(f"kv/b{i} at {r}", lambda: cl.get(r, f"kv/b{i}")["found"])
            wait_until(f"two siblings of sib/y at {r}", lambda: len(values(cl.get(r, "sib/y"))) == 2)
        lww = {r: values(cl.get(r, "kv/x")) for r in (A, B, C)}
        check(len({tuple(v) for v in lww.values()}) == 1 and len(lww[A]) == 1,
              f"LWW did not converge to one value: {lww}")
        sib = {r: values(cl.get(r, "sib/y")) for r in (A, B, C)}
        check(all(v == ["east-version", "west-version"] for v in sib.values()),
              f"siblings differ: {sib}")
        log(f"converged: kv/x = {lww[A][0]} everywhere; sib/y = {sib[A]} everywhere")
        # A put with the context read replaces both siblings, everywhere.
        s = cl.session("merger")
        got = cl.get(C, "sib/y", session=s)
        rc, _, err = cl.cli(C, "put", "sib/y", "merged", "--context", got["context"], session=s)
        check(rc == 0, f"merge put failed: {err}")
        for r in (A, B, C):
            wait_until(f"merged sib/y at {r}", lambda: values(cl.get(r, "sib/y")) == ["merged"])
        for r in (A, B, C):
            wait_until(f"{r} buffers and outboxes drained",
                       lambda: (lambda s: s["buffered"] == 0 and s["outbox_total"] == 0)(cl.status(r)))
        log("merge replaced both siblings everywhere; all buffers drained to zero")


run(main)
