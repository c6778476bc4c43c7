"""A flood of client connections must leave the region serving (issue 10).

The node runs with a low open-file limit (256, soft and hard, so it cannot
raise it) and client_connections_max = 20. The test keeps one raw ZMTP client
connected, then opens far more connections than the cap, each completing the
ZMTP greeting: the node must admit at most the cap and refuse the rest with a
ZAP ERROR ("500"), closing them; the connected client keeps being served (a
put and a status through it); the CLI is told clearly that the region is at
its limit; after the flood a new CLI put/get works, status shows the refusals,
and the daemon is alive with no Berkeley DB error in its log.

A second node runs with the cap left to it (the open-file limit less the
reserve: 256 - 68 = 188) and the same flood: it must admit at most that many,
keep serving, and keep its store healthy.

Without the cap (the code before it), the flood takes every descriptor of the
node: accepts fail (the flood's last connections get no handshake), a store
commit fails with "BDB0060 PANIC: fatal region error detected; run recovery",
and the node stops."""
import resource
import socket
import struct
import time

import cwtest
from cwtest import check, log
from zmtp import GREETING, frame, read_exact, read_frame, ready

FD_LIMIT = 256
CAP = 20
FLOOD = 300  # more connections than the node has descriptors


def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


# -- just enough ZMTP 3.0 (NULL) and protobuf to be a client --------------------

def handshake(port, timeout=2.0):
    """Connects and runs the NULL handshake as a DEALER. Returns (socket, None)
    when admitted, (None, reason) when the node sent ERROR or closed."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as e:
        return None, f"no connection ({e.__class__.__name__})"
    try:
        s.sendall(GREETING)
        read_exact(s, 64)
        s.sendall(ready())
        flags, body = read_frame(s)
        if flags & 0x04 and body.startswith(b"\x05READY"):
            return s, None
        if flags & 0x04 and body.startswith(b"\x05ERROR"):
            n = body[6]
            s.close()
            return None, body[7:7 + n].decode(errors="replace")
        s.close()
        return None, f"unexpected frame {body[:16]!r}"
    except (OSError, ConnectionError) as e:
        s.close()
        return None, f"no handshake ({e.__class__.__name__})"


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, b):
    return varint(num << 3 | 2) + varint(len(b)) + b


def request(req_id, op, bucket=b"", key=b"", value=b""):
    """A Request (src/wire/causeway.proto): version 1, req_id, op, bucket, key, value."""
    msg = field_varint(1, 1) + field_varint(2, req_id) + field_varint(3, op)
    if bucket:
        msg += field_bytes(4, bucket) + field_bytes(5, key) + field_bytes(6, value)
    return msg


def response_err(body):
    """The err field (4) of a Response, 0 when absent; the fields before it are varints."""
    i = 0
    while i < len(body):
        tag, i = read_varint(body, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = read_varint(body, i)
            if num == 4:
                return v
        elif wt == 2:
            n, i = read_varint(body, i)
            i += n
        else:
            return -1
    return 0


def read_varint(b, i):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def call(s, req_id, op, **kw):
    s.settimeout(5.0)
    s.sendall(frame(request(req_id, op, **kw)))
    while True:
        flags, body = read_frame(s)
        if flags & 0x04:
            continue  # a command (heartbeat), not a message
        return response_err(body)


def derived_cap():
    """With the cap left to the node, the flood must leave the store alone too."""
    reserve = 64 + 4  # FD_RESERVE_BASE + FD_RESERVE_PER_REGION (src/server/server.c)
    cap = FD_LIMIT - reserve
    with cwtest.Cluster("connlimit-derived", ["a"]) as c:
        c.start("a", preexec_fn=low_fd_limit)
        port = c.ports["a"][0]
        check(f"client connections: at most {cap} (the open-file limit {FD_LIMIT}"
              in c.log_tail("a", 50), "no log line about the derived cap")
        keeper, why = handshake(port)
        check(keeper is not None, f"the first client was refused: {why}")
        admitted, refused, other = [], 0, []
        for _ in range(FLOOD):
            s, why = handshake(port)
            if s is not None:
                admitted.append(s)
            elif why == "500":
                refused += 1
            else:
                other.append(why)
                if len(other) >= 10:
                    break
        log(f"derived cap {cap}: flood of {FLOOD}: {len(admitted)} admitted, {refused} refused, "
            f"{len(other)} other ({other[:3]})")
        try:
            check(c.alive("a"), "the node died during the flood:\n" + c.log_tail("a"))
            check(len(admitted) + 1 <= cap, f"{len(admitted) + 1} connections above the cap {cap}")
            check(refused >= FLOOD - cap, f"only {refused} connections refused")
            check(call(keeper, 1, 1, bucket=b"kv", key=b"k", value=b"v") == 0,
                  "put through the connected client failed during the flood")
        finally:
            for s in admitted:
                s.close()
        cwtest.wait_until("a CLI put after the flood",
                          lambda: c.cli("a", "put", "kv/after", "3")[0] == 0, timeout=10)
        keeper.close()
        tail = c.log_tail("a", 400)
        for bad in ("BDB", "DB_RUNRECOVERY", "panic", "store commit failed", "ERROR"):
            check(bad not in tail, f"'{bad}' in the node's log:\n{tail}")


def main():
    explicit_cap()
    derived_cap()


def explicit_cap():
    with cwtest.Cluster("connlimit", ["a"], cluster_extra=f"client_connections_max = {CAP}") as c:
        c.start("a", preexec_fn=low_fd_limit)
        port = c.ports["a"][0]
        logtxt = c.log_tail("a", 50)
        check(f"client connections: at most {CAP}" in logtxt, "no log line about the cap:\n" + logtxt)

        keeper, why = handshake(port)
        check(keeper is not None, f"the first client was refused: {why}")
        check(call(keeper, 1, 1, bucket=b"kv", key=b"before", value=b"1") == 0,
              "put through the connected client failed")

        admitted, refused, other = [], [], []
        t0 = time.time()
        for _ in range(FLOOD):
            s, why = handshake(port)
            if s is not None:
                admitted.append(s)
            elif why == "500":
                refused.append(why)
            else:
                other.append(why)
                if len(other) >= 10:
                    break  # the node stopped answering: no point going on
        log(f"flood of {FLOOD}: {len(admitted)} admitted, {len(refused)} refused with 500, "
            f"{len(other)} other ({other[:3]}) in {time.time() - t0:.1f} s")
        try:
            check(c.alive("a"), "the node died during the flood:\n" + c.log_tail("a"))
            check(len(admitted) <= CAP, f"{len(admitted)} connections admitted above the cap {CAP}")
            check(len(refused) >= FLOOD - CAP - 5,
                  f"only {len(refused)} connections refused with 500 ({other[:3]})")
            check(not other, f"connections neither admitted nor refused: {other[:5]}")

            # The connection that was there before is still served.
            check(call(keeper, 2, 1, bucket=b"kv", key=b"during", value=b"2") == 0,
                  "put through the connected client failed during the flood")
            check(call(keeper, 3, 4) == 0, "status through the connected client failed")

            # A new client is told why, at once and clearly.
            t1 = time.time()
            rc, _, err = c.cli("a", "put", "kv/cli", "x", timeout_ms=5000)
            took = time.time() - t1
            log(f"CLI during the flood: exit {rc} in {took:.1f} s: {err.strip()}")
            check(rc == 1, f"put during the flood exited {rc}")
            check("client connection limit" in err and "client_connections_max" in err,
                  f"the CLI did not say the region is at its connection limit: {err!r}")
            check(took < 4.0, f"the refusal took {took:.1f} s (the time-out is 5 s)")
        finally:
            for s in admitted:
                s.close()

        # After the flood: a new client is served, and status tells the story.
        cwtest.wait_until("a CLI put after the flood",
                          lambda: c.cli("a", "put", "kv/after", "3")[0] == 0, timeout=10)
        got = c.get("a", "kv/after")
        check(cwtest.values(got) == ["3"], f"get after the flood: {got}")
        check(cwtest.values(c.get("a", "kv/during")) == ["2"], "the put during the flood is lost")
        st = c.status("a")
        log(f"status: client_connections {st['client_connections']} of max "
            f"{st['client_connections_max']}, refused {st['counters']['connections_refused']}")
        check(st["client_connections_max"] == CAP, f"client_connections_max is {st['client_connections_max']}")
        check(st["counters"]["connections_refused"] >= len(refused),
              f"connections_refused {st['counters']['connections_refused']} < {len(refused)}")
        check(st["client_connections"] <= 3, f"{st['client_connections']} connections still counted")
        rc, out, _ = c.cli("a", "status")
        check(rc == 0 and "refused at the cap" in out, "the text status shows no connection line")
        keeper.close()

        check(c.alive("a"), "the node died:\n" + c.log_tail("a"))
        tail = c.log_tail("a", 400)
        for bad in ("BDB", "DB_RUNRECOVERY", "panic", "store commit failed", "ERROR"):
            check(bad not in tail, f"'{bad}' in the node's log:\n{tail}")
        check("too many client connections" in tail, "the refusals were not logged")


if __name__ == "__main__":
    cwtest.run(main)
