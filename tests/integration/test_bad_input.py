#!/usr/bin/env python3
"""Bad input: oversized keys and values, malformed buckets, random bytes to every
port, a bad config. Each gets a clear error, the node keeps running, and nothing
is stored."""
import os
import random
import socket
import subprocess
import time

import zmtp
from cwtest import BIN, Cluster, check, log, run, wait_until

A, B = "one", "two"


def expect_error(cl, args, words, what):
    rc, out, err = cl.cli(A, *args)
    check(rc != 0, f"{what}: expected an error, got success: {out}")
    low = err.lower()
    check(any(w in low for w in words), f"{what}: error does not explain itself: {err!r}")
    log(f"{what}: exit {rc}: {err.strip()}")


def main():
    with Cluster("badinput", [A, B], cluster_extra="max_value_bytes = 4096") as cl:
        cl.start_all()
        expect_error(cl, ["put", "kv/" + "k" * 1025, "v"], ["key"], "1025-byte key")
        expect_error(cl, ["put", "kv/k", "v" * 5000], ["value", "large"], "5000-byte value")
        expect_error(cl, ["put", "Bad!/k", "v"], ["bucket"], "malformed bucket")
        expect_error(cl, ["put", "nosuchbucket/k", "v"], ["bucket"], "unknown bucket")
        expect_error(cl, ["put", "kv/", "v"], ["key"], "empty key")
        rng = random.Random(7)
        for region in (A, B):
            for port in cl.ports[region]:
                for _ in range(5):
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))))
                        time.sleep(0.02)
                # ZMTP 1.0 style: a length byte, a flags byte, then garbage (reaches the
                # decoders). The client endpoint asks ZAP about every connection (the
                # connection cap), and libzmq closes ZMTP 1.0 connections on such a
                # socket at once: the reset is an answer too.
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    try:
                        for _ in range(20):
                            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
                            s.sendall(bytes([len(body) + 1, 0]) + body)
                        time.sleep(0.05)
                    except (ConnectionResetError, BrokenPipeError):
                        check(port == cl.ports[region][0], f"port {port} reset a ZMTP 1.0 peer")
        log("sent random bytes to every client, peer and admin port")
        # The same through a real ZeroMQ handshake, so the bytes reach the decoders:
        # random frames to the client and admin endpoints, and to the peer endpoint
        # under the other region's name.
        for region, other in ((A, B), (B, A)):
            client, peer, admin = cl.ports[region]
            for port, ident in ((client, b""), (admin, b""), (peer, other.encode())):
                d = zmtp.Dealer(port, identity=ident)
                for _ in range(50):
                    d.send(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 600))))
                d.send_multipart([b"a", b"b", b"c"])
                time.sleep(0.1)
                d.close()
        log("sent 300 random frames through ZeroMQ to every endpoint, plus multipart messages")
        for region in (A, B):
            check(cl.alive(region), f"{region} died after random bytes:\n{cl.log_tail(region)}")
            st = cl.status(region)
            check(st["counters"]["puts"] == 0, f"{region} stored something: {st['counters']}")
            check(st["keys"] == 0, f"{region} holds keys: {st['keys']}")
            check(st["counters"]["bad_requests"] > 0, f"{region}: no bad request reached the decoder")
            check(st["counters"]["bad_peer_frames"] > 0, f"{region}: no bad peer frame reached the decoder")
            log(f"{region}: {st['counters']['bad_requests']} bad requests and "
                f"{st['counters']['bad_peer_frames']} bad peer frames refused; nothing stored")
        check(not cl.get(A, "kv/k")["found"], "kv/k exists after refused writes")
        # The nodes still work, and so does the link between them.
        check(cl.put(A, "kv/ok", "fine")[0] == 0, "a good put failed after the bad input")
        wait_until("the good put replicated", lambda: cl.get(B, "kv/ok")["found"])
        log("both nodes still run, nothing was stored by bad input, a good put replicates")

        # A bad config: unknown key on a known line, and a non-zero exit.
        bad = os.path.join(cl.dir, "bad.ini")
        with open(cl.config) as f:
            text = f.read().splitlines()
        text.insert(2, "latncy_ms = 5")
        with open(bad, "w") as f:
            f.write("\n".join(text) + "\n")
        p = subprocess.run([os.path.join(BIN, "causewayd"), "--config", bad, "--region", A],
                           capture_output=True, timeout=20)
        err = p.stderr.decode()
        check(p.returncode != 0, "causewayd accepted a bad config")
        check("bad.ini:3:" in err and "latncy_ms" in err, f"bad config error lacks file:line:key: {err!r}")
        log(f"bad config: exit {p.returncode}: {err.strip()}")

        # A host name where the node binds: --check refuses it, naming the key,
        # instead of passing a file on which the node then fails to bind.
        named = os.path.join(cl.dir, "named.ini")
        with open(cl.config) as f:
            text = f.read()
        client_line = f"client = tcp://127.0.0.1:{cl.ports[A][0]}"
        check(client_line in text, "the harness wrote no client endpoint for region one")
        with open(named, "w") as f:
            f.write(text.replace(client_line, f"client = tcp://localhost:{cl.ports[A][0]}"))
        for args in (["--check"], ["--check", "--region", A]):
            p = subprocess.run([os.path.join(BIN, "causewayd"), "--config", named] + args,
                               capture_output=True, timeout=20)
            err = p.stderr.decode()
            check(p.returncode == 1, f"--check {args} accepted a host name: {p.returncode} {err!r}")
            check("for client in [region one]" in err and "not an IP address" in err,
                  f"--check does not say which key needs an IP address: {err!r}")
        log(f"host name in an endpoint: --check exits 1: {err.strip()}")


run(main)
