#!/usr/bin/env python3
"""Security (security = curve): replication, requests and admin commands work
with keys; an unknown client key, a client without CURVE, garbage, and a peer
holding a valid region key that speaks for another region are all refused,
nothing is stored, the nodes keep serving and status counts the refusals; a
client key cannot cut a link, an admin key can; forged heartbeats sent under a
stopped region's name from an unauthenticated connection change nothing, and
replication from that region resumes when it comes back; a world-readable or
malformed key, a region without a public key, and an open non-loopback
endpoint stop a node at start with one clear line."""
import os
import random
import shutil
import socket
import stat
import subprocess
import time

import zmtp
from cwtest import BIN, Cluster, check, keygen, log, run, wait_until

A, B, C = "us-east", "eu-west", "ap-south"
PROBE = os.environ.get("CW_PROBE", os.path.join(BIN, "tests", "integration", "cw-probe"))
HLC_LOGICAL_BITS = 12


def counters(cl, region):
    return cl.status(region)["counters"]


def clock_ahead_s(st):
    """How far the node's clock and applied vector are ahead of its wall clock."""
    now = st["now_us"]
    stamps = [st["clock"]] + [v for v in st["applied"].values() if isinstance(v, int)]
    return max((ts >> HLC_LOGICAL_BITS) - now for ts in stamps) / 1e6


def probe(*args):
    p = subprocess.run([PROBE, *args], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode() + p.stderr.decode()


def start_fails(cl, region, config, words, what):
    p = subprocess.run([os.path.join(BIN, "causewayd"), "--config", config, "--region", region],
                       capture_output=True, timeout=30)
    err = p.stderr.decode()
    check(p.returncode != 0, f"{what}: causewayd started anyway")
    low = err.lower()
    missing = [w for w in words if w.lower() not in low]
    check(not missing, f"{what}: the message lacks {missing}: {err!r}")
    log(f"{what}: exit {p.returncode}: {err.strip().splitlines()[-1]}")


def edited(cl, name, fn):
    """A copy of the cluster's config with fn applied to its text."""
    path = os.path.join(cl.dir, name)
    with open(cl.config) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(fn(text))
    return path


def main():
    check(os.path.exists(PROBE), f"no cw-probe at {PROBE}; build the tests")
    with Cluster("security", [A, B, C], latency={(A, B): 5, (B, C): 5, (A, C): 5},
                 secure=True) as cl:
        cl.start_all()
        log("three regions up with security = curve")

        # 1. Client requests and replication work with a listed client key.
        sa = cl.session("alice")
        rc, out, err = cl.put(A, "kv/k1", "v1", session=sa)
        check(rc == 0, f"put with a client key failed: {err}")
        for r in (B, C):
            wait_until(f"kv/k1 in {r}", lambda r=r: cl.get(r, "kv/k1")["found"])
        log("a write in us-east replicated to both other regions over CURVE")

        # 2. Admin commands: an admin key can, a client key cannot.
        rc, _, err = cl.cli(A, "link", A, B, "cut", key=cl.client_key)
        check(rc != 0 and "permission denied" in err.lower(), f"a client key cut a link: {rc} {err!r}")
        check(cl.status(A)["peers"][0]["link"] != "cut", "the link is cut after a refused command")
        check(counters(cl, A)["admin_refused"] >= 1, "admin_refused did not count the refusal")
        log(f"client key: link cut refused: {err.strip()}")
        cl.link(A, B, "cut")
        peer = [p for p in cl.status(A)["peers"] if p["region"] == B][0]
        check(peer["link"] == "cut", f"the admin key's cut did not apply: {peer}")
        cl.link(A, B, "heal")
        log("admin key: link cut and heal applied")

        # 3. An unknown client key, a client without CURVE: refused, nothing stored.
        mallory = os.path.join(cl.dir, "mallory.key")
        keygen(mallory)
        rc, _, err = cl.cli(A, "put", "kv/evil", "x", key=mallory, timeout_ms=1000)
        check(rc != 0, "a client with an unknown key could write")
        rc, _, err2 = cl.cli(A, "put", "kv/evil", "x", key=False, timeout_ms=1000)
        check(rc != 0, "the CLI wrote without a key to a curve node")
        p = subprocess.run([os.path.join(BIN, "causeway"), "--endpoint",
                            f"tcp://127.0.0.1:{cl.ports[A][0]}", "--timeout", "1000", "put",
                            "kv/evil", "x"], capture_output=True, timeout=60)
        check(p.returncode != 0, "a client without CURVE could write")
        log(f"unknown key refused: {err.strip()[:160]}...")
        # Random bytes and NULL-mechanism ZMTP (the bad-input test's garbage) to every port.
        rng = random.Random(7)
        refused_at_handshake = 0
        for region in (A, B):
            for port in cl.ports[region]:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))))
                    time.sleep(0.02)
                ident = C.encode() if port == cl.ports[region][1] else b""
                try:
                    d = zmtp.Dealer(port, identity=ident, timeout=2)
                    for _ in range(20):
                        d.send(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 600))))
                    d.close()
                except (ConnectionError, OSError):
                    refused_at_handshake += 1
        check(refused_at_handshake == 6,
              f"only {refused_at_handshake} of 6 NULL-mechanism connections were refused at the handshake")
        log("random bytes and NULL-mechanism ZMTP to every port of two regions: refused at the handshake")
        time.sleep(0.5)
        for region in (A, B):
            check(cl.alive(region), f"{region} died:\n{cl.log_tail(region)}")
            c = counters(cl, region)
            check(c["bad_requests"] == 0 and c["bad_peer_frames"] == 0,
                  f"{region}: garbage reached the decoders: {c}")
            check(c["handshakes_failed"] >= 1, f"{region}: handshakes_failed did not count: {c}")
        check(counters(cl, A)["auth_refused"] >= 1, "auth_refused did not count the unknown key")
        for region in (A, B, C):
            check(not cl.get(region, "kv/evil")["found"], f"kv/evil was stored in {region}")
        c = counters(cl, A)
        log(f"{A}: auth_refused={c['auth_refused']} handshakes_failed={c['handshakes_failed']}; "
            "nothing stored; decoders saw nothing")

        # 4. A valid region key speaking for another region: refused and counted.
        before = counters(cl, A)["peer_identity_refused"]
        peer_a = f"tcp://127.0.0.1:{cl.ports[A][1]}"
        rc, out = probe("--endpoint", peer_a, "--server-key", cl.region_pub[A], "--key-file",
                        os.path.join(cl.keys_dir, f"{B}.key"), "--heartbeat", "2", "0", "50")
        check(rc == 0, f"the probe with eu-west's key could not connect: {out}")
        rc, out = probe("--endpoint", peer_a, "--server-key", cl.region_pub[A], "--key-file",
                        os.path.join(cl.keys_dir, f"{B}.key"), "--routing-id", C,
                        "--heartbeat", "1", "0", "50")
        check(rc == 0, f"the probe with a chosen routing id could not connect: {out}")
        wait_until("the claims refused", lambda: counters(cl, A)["peer_identity_refused"] >= before + 2)
        st = cl.status(A)
        check(clock_ahead_s(st) < 5, f"a forged heartbeat moved {A}'s clock: {clock_ahead_s(st):.1f} s ahead")
        log(f"eu-west's key claiming ap-south (in the frame, and by routing id): refused "
            f"(peer_identity_refused={st['counters']['peer_identity_refused']}); clock unmoved")
        # A client key on the peer port is not a region key.
        rc, out = probe("--endpoint", peer_a, "--server-key", cl.region_pub[A], "--key-file",
                        cl.admin_key, "--heartbeat", "2", "0", "50", "--wait-ms", "1000")
        check(rc == 3, f"an admin key connected to the peer port: {out}")

        # 5. Forged frames under a stopped region's name, unauthenticated: nothing moves.
        cl.stop(C)
        for region in (A, B):
            peer_ep = f"tcp://127.0.0.1:{cl.ports[region][1]}"
            rc, out = probe("--endpoint", peer_ep, "--routing-id", C, "--heartbeat", "2",
                            str(cl.regions.index(region)), "50", "--wait-ms", "1000")
            check(rc == 3, f"an unauthenticated connection to {region}'s peer port got through: {out}")
            rc, out = probe("--endpoint", peer_ep, "--routing-id", C, "--random", "50",
                            "--wait-ms", "1000")
            check(rc == 3, f"an unauthenticated connection to {region}'s peer port got through: {out}")
        for region in (A, B):
            st = cl.status(region)
            check(clock_ahead_s(st) < 5, f"{region}'s clock moved: {clock_ahead_s(st):.1f} s ahead")
        log("forged heartbeats and garbage as ap-south (stopped) from unauthenticated "
            "connections: refused, no clock moved")
        cl.start(C)
        sc = cl.session("carol")
        check(cl.put(C, "posts/p", "from ap-south", session=sc)[0] == 0, "put in ap-south failed")
        rc, _, err = cl.put(A, "replies/r", "re: from us-east", session=sa)
        check(rc == 0, f"put in us-east failed: {err}")
        for r in (A, B, C):
            wait_until(f"both writes in {r}",
                       lambda r=r: cl.get(r, "posts/p")["found"] and cl.get(r, "replies/r")["found"])
            wait_until(f"{r}'s buffer drained", lambda r=r: cl.status(r)["buffered"] == 0)
        log("ap-south back: its stream and the others' flow again; nothing diverged")

        # 6. Keys and configs a node must refuse.
        key_c = os.path.join(cl.keys_dir, f"{C}.key")
        cl.stop(C)
        os.chmod(key_c, 0o644)
        start_fails(cl, C, cl.config, [key_c, "chmod 600"], "world-readable secret key")
        os.chmod(key_c, 0o600)
        bad = edited(cl, "badkey.ini", lambda t: t.replace(f"public_key = {cl.region_pub[B]}",
                                                          "public_key = not-a-key"))
        start_fails(cl, C, bad, ["badkey.ini:", "public_key", "does not decode"], "malformed public key")
        broken = os.path.join(cl.dir, "broken.key")
        with open(broken, "w") as f:
            f.write("public-key = short\nsecret-key = short\n")
        os.chmod(broken, 0o600)
        bad = edited(cl, "brokenkey.ini", lambda t: t.replace(key_c, broken))
        start_fails(cl, C, bad, [broken, "does not decode"], "malformed key file")
        bad = edited(cl, "missing.ini", lambda t: t.replace(key_c, key_c + ".gone"))
        start_fails(cl, C, bad, [key_c + ".gone", "keygen"], "missing secret key file")
        bad = edited(cl, "nopub.ini", lambda t: t.replace(f"public_key = {cl.region_pub[B]}\n", ""))
        start_fails(cl, C, bad, ["nopub.ini", B, "public_key"], "region without a public key")
        lst = os.path.join(cl.keys_dir, "clients-bad")
        with open(lst, "w") as f:
            f.write(f"{cl.client_pub}\n")
        bad = edited(cl, "badlist.ini", lambda t: t.replace(f"{cl.keys_dir}/clients", lst))
        start_fails(cl, C, bad, [f"{lst}:1:", "holder"], "key list line without a holder")
        open_cfg = edited(cl, "open.ini", lambda t: t.replace("security = curve", "security = none")
                          .replace(f"client = tcp://127.0.0.1:{cl.ports[C][0]}",
                                   f"client = tcp://10.255.255.1:{cl.ports[C][0]}"))
        start_fails(cl, C, open_cfg, ["security = none", "allow_open_nonlocal"],
                    "security = none on a non-loopback address")
        cl.start(C)
        check(all(cl.alive(r) for r in (A, B, C)), "a node died")
        log("the nodes kept serving throughout")


run(main)
