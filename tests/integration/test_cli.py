#!/usr/bin/env python3
"""The CLI against real nodes: options before or after the command, "--", the
legacy --context before the command, usage errors (exit 2, nothing sent; the
conditional-write flags --if-version and --if-absent among them),
--help for every command, binary values through --json, and the status in both
forms: the text shows every stamp raw, as UTC with microseconds and as lag
behind the node's clock; --json carries the raw values as exact integers with
the members docs/operations.md lists. Errors say what is wrong once: a context
the region refuses (unknown region, a stamp ahead of its clock) is the server's
answer (exit 1), told apart from a token that does not parse (exit 2); a bad
session file is named as such, with what to do; CRLF session files load."""
import datetime
import json
import os
import re
import subprocess
import time

from cwtest import BIN, Cluster, check, log, run, wait_until

A, B = "west", "east"

STATUS_MEMBERS = ["region", "id", "regions", "durability", "uptime_us", "now_us", "clock",
                  "applied", "stable", "buffered", "buffered_bytes", "outbox_total",
                  "outbox_bytes", "outbox_body_bytes", "waiting", "keys", "key_cache_bytes",
                  "client_connections", "client_connections_max",
                  "peers", "outbox", "visibility_ms", "counters", "replication"]
PEER_MEMBERS = ["region", "id", "link", "delay_ms", "queued", "frames_sent", "frames_dropped",
                "frames_received", "bytes_sent", "outbox_pending", "inflight_bytes"]
COUNTERS = ["puts", "gets", "deletes", "remote_applied", "remote_duplicates", "remote_gaps",
            "nacks_sent", "nacks_received", "resent_records", "requests_waited",
            "requests_timed_out", "buffer_full_drops", "tombstones_collected", "stamps_refused",
            "keys_loaded", "keys_evicted", "bodies_loaded", "bodies_evicted", "store_read_errors",
            "errors", "requests", "bad_requests", "bad_peer_frames", "replies_dropped", "commits",
            "commit_records", "checkpoints_failed", "checkpoints_failing", "auth_refused",
            "handshakes_failed", "peer_identity_refused",
            "admin_refused", "repl_records", "repl_frames", "repl_metadata_bytes",
            "repl_key_bytes", "repl_value_bytes", "repl_batch_bytes", "repl_batch_lz4_bytes",
            "repl_frame_bytes", "connections_refused"]


def raw(args, stdin=None):
    """The CLI with exactly these arguments (no harness defaults)."""
    p = subprocess.run([os.path.join(BIN, "causeway")] + args, input=stdin, capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def varint(v):
    out = b""
    while True:
        b, v = v & 0x7f, v >> 7
        if not v:
            return out + bytes([b])
        out += bytes([b | 0x80])


def token(entries):
    """A context token ("cw1-" and hex) with these per-region stamps."""
    n = len(entries)
    while n and entries[n - 1] == 0:
        n -= 1
    return "cw1-" + (bytes([n]) + b"".join(varint(e) for e in entries[:n])).hex()


def one_line(err):
    return err.count("\n") == 1 and err.endswith("\n")


def check_context_errors(cl, base):
    """Context and session-file errors: what the message says, and the exit status."""
    # A token that does not parse: bad usage, found before anything is sent.
    rc, out, err = raw(base + ["put", "sib/y", "v", "--context", "cw1-zz"])
    check(rc == 2 and "'cw1-zz' is not a context token" in err and "Try 'causeway put" in err,
          f"unparsable --context: exit {rc}, {err!r}")
    # Well-formed contexts the region refuses: its answer, once, exit 1.
    ahead = (int(time.time() * 1e6) + 3600 * 10**6) << 12
    for tok, words in ((token([0, 0, 0, 5]), "names a region this cluster of 2 lacks"),
                       (token([ahead]), "ahead of this region's physical time")):
        rc, out, err = raw(base + ["put", "sib/y", "v", "--context", tok])
        check(rc == 1 and "the region refused the request's causal context" in err
              and words in err, f"--context {tok}: exit {rc}, {err!r}")
        check("Try" not in err and "malformed" not in err and one_line(err),
              f"--context {tok}: usage text or a repeated message: {err!r}")
    log("--context: a token that does not parse exits 2; one the region refuses exits 1, "
        "with the region's reason once")

    # Clock skew through the session: its context holds a stamp an hour ahead
    # (as if written in a region whose clock runs ahead).
    skew = cl.session("skew")
    with open(skew, "w") as f:
        f.write(f"causeway-session 1\ncontext {token([ahead])}\n")
    rc, out, err = raw(base + ["--session", skew, "put", "kv/skew", "v"])
    check(rc == 1 and "ahead of this region's physical time (clock skew?)" in err
          and "malformed" not in err and one_line(err), f"skewed session put: exit {rc}, {err!r}")
    check(not cl.get(A, "kv/skew")["found"], "a refused put was stored")
    log(f"clock skew: {err.strip()}")

    # Session files: what is wrong with the file, and what to do about it.
    bad = cl.session("bad")
    for text, words in (("hello\n", ":1: not a causeway session file"),
                        ("causeway-session 2\ncontext cw1-00\n",
                         ":1: session file format version '2'"),
                        ("causeway-session 1\ncontext cw1-zz\n", ":2: malformed session file")):
        with open(bad, "w") as f:
            f.write(text)
        rc, out, err = raw(base + ["--session", bad, "get", "kv/dash"])
        check(rc == 1 and bad + words in err and f"delete {bad}" in err
              and "fresh --session" in err and "malformed context token" not in err,
              f"session file {text!r}: exit {rc}, {err!r}")
    os.remove(bad)
    os.mkdir(bad)
    rc, out, err = raw(base + ["--session", bad, "get", "kv/dash"])
    check(rc == 1 and f"cannot read session file {bad}" in err and "malformed context" not in err,
          f"a directory as session file: exit {rc}, {err!r}")
    os.rmdir(bad)
    log("session file errors name the file, the line and what to do")


def check_crlf_session(base, sess):
    """A session file with CRLF line ends (edited on Windows) works as it is."""
    with open(sess) as f:
        text = f.read()
    crlf = sess + ".crlf"
    with open(crlf, "w", newline="") as f:
        f.write(text.replace("\n", "\r\n"))
    rc, out, err = raw(base + ["--session", crlf, "get", "kv/dash"])
    check(rc == 0 and out == b"-5\n", f"CRLF session file: exit {rc}, {out!r}, {err!r}")
    log("a CRLF session file loads")


def utc(stamp):
    us = stamp >> 12
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_status_json(st, regions):
    check(list(st) == STATUS_MEMBERS, f"status members differ: {list(st)}")
    check(st["regions"] == regions, f"regions: {st['regions']}")
    for r in regions:
        check(isinstance(st["applied"][r], int) and isinstance(st["stable"][r], int),
              f"stamps are not integers: {st['applied']} {st['stable']}")
    check(isinstance(st["clock"], int) and st["clock"] > 0, f"clock: {st['clock']}")
    # The clock is an HLC stamp near the node's wall clock (same host).
    check(abs((st["clock"] >> 12) - st["now_us"]) < 60_000_000,
          f"clock {st['clock']} is not near now_us {st['now_us']}")
    check(len(st["peers"]) == len(regions) - 1, f"peers: {st['peers']}")
    for p in st["peers"]:
        check(list(p) == PEER_MEMBERS, f"peer members differ: {list(p)}")
    check(list(st["counters"]) == COUNTERS, f"counters differ: {list(st['counters'])}")
    # Replication bytes (protocol.md 5.5): metadata is the batch less keys and values.
    c, rp = st["counters"], st["replication"]
    check(c["repl_metadata_bytes"] == c["repl_batch_bytes"] - c["repl_key_bytes"]
          - c["repl_value_bytes"], f"replication bytes do not add up: {c}")
    if c["repl_records"] == 0:
        check(rp == {"metadata_bytes_per_record": None, "lz4_ratio": None}, f"replication: {rp}")
    else:
        check(abs(rp["metadata_bytes_per_record"] * c["repl_records"]
                  - c["repl_metadata_bytes"]) < 1e-6 * c["repl_metadata_bytes"] + 1e-3,
              f"replication: {rp} {c}")
        check(c["repl_frames"] > 0 and c["repl_frame_bytes"] > c["repl_batch_lz4_bytes"] > 0,
              f"replication frames: {c}")
    # Uptime runs on the node's monotonic clock: positive, and no longer than
    # this test has run (a wall-clock step cannot make it wrap).
    check(0 < st["uptime_us"] < 600_000_000, f"uptime_us: {st['uptime_us']}")
    for m in ("buffered_bytes", "outbox_bytes", "outbox_body_bytes", "key_cache_bytes"):
        check(isinstance(st[m], int) and st[m] >= 0, f"{m}: {st[m]}")
    # Bytes go with records: nothing held, no bytes held.
    check(st["buffered"] > 0 or st["buffered_bytes"] == 0, f"buffered bytes: {st}")
    check(st["outbox_total"] > 0 or st["outbox_bytes"] == 0, f"outbox bytes: {st}")
    check(st["keys"] == 0 or st["key_cache_bytes"] > 0, f"keys without key state bytes: {st}")
    for r in regions:
        if r != st["region"]:
            v = st["visibility_ms"][r]
            check(set(v) == {"p50", "p90", "p99", "max", "count"}, f"visibility: {v}")


def check_status_text(text, regions):
    """Every stamp row shows the raw stamp, its UTC form and the lag behind the
    clock line's stamp; returns {section: {region: raw stamp}}."""
    m = re.search(r"^clock +(\S+) +\(stamp (\d+), logical (\d+)\)$", text, re.M)
    check(m is not None, f"no clock line:\n{text}")
    clock = int(m.group(2))
    check(m.group(1) == utc(clock), f"clock shown as {m.group(1)}, expected {utc(clock)}")
    check(int(m.group(3)) == clock & 0xfff, "wrong logical counter")
    rows = {}
    section = None
    for line in text.splitlines():
        head = line.split()
        if head and head[0] in ("applied", "stable") and line.rstrip().endswith("lag ms"):
            section = head[0]
            rows[section] = {}
            continue
        if section and line.startswith("  ") and head and head[0] in regions:
            name, stamp, shown, lag = head
            stamp = int(stamp)
            rows[section][name] = stamp
            if stamp == 0:
                check(shown == "-" and lag == "-", f"zero stamp row: {line!r}")
                continue
            check(shown == utc(stamp), f"{name}: {shown} is not the UTC of {stamp}")
            want = ((clock >> 12) - (stamp >> 12)) / 1000
            check(abs(float(lag) - want) < 0.0015, f"{name}: lag {lag} ms, expected {want:.3f}")
            continue
        if section and not line.startswith("  "):
            if head and head[0] not in ("applied", "stable"):
                section = None
    for s in ("applied", "stable"):
        check(set(rows.get(s, {})) == set(regions), f"{s} rows: {rows.get(s)}\n{text}")
    for old in ("pending reads", "reads_waited", "reads_timed_out"):
        check(old not in text, f"'{old}' is still in the status text:\n{text}")
    for word in ("region", "durability", "uptime", "wall clock", "peers", "visibility ms",
                 "counters", "stamps_refused", "commit_records", "waiting", "in flight B",
                 "key states in memory", "requests_waited", "requests_timed_out", "keys_evicted",
                 "store_read_errors"):
        check(word in text, f"'{word}' missing from the status text:\n{text}")
    return clock, rows


def main():
    with Cluster("cli", [A, B], latency={(A, B): 5}) as cl:
        cl.start_all()
        base = ["--config", cl.config, "--region", A, "--timeout", "3000"]

        # Options before the command, after it, mixed, short and long, "--opt=value".
        for args in (base + ["--json", "status"], base + ["status", "--json"],
                     ["status", "-j"] + base, ["--config=" + cl.config, "-r", A, "-t", "3000",
                                               "status", "--json"]):
            rc, out, err = raw(args)
            check(rc == 0, f"{args}: exit {rc}: {err}")
            check_status_json(json.loads(out), [A, B])
        log("status --json with options before, after and around the command")

        # A value starting with '-' after "--"; put and get in one session.
        sess = cl.session("s")
        rc, out, err = raw(base + ["--session", sess, "put", "kv/dash", "--", "-5"])
        check(rc == 0, f"put -- -5: {err}")
        rc, out, err = raw(base + ["get", "kv/dash", "--session", sess])
        check(rc == 0 and out == b"-5\n", f"get kv/dash: {rc} {out!r} {err}")
        rc, out, err = raw(base + ["put", "kv/dash", "-5"])
        check(rc == 2 and "unknown option '-5'" in err, f"'-5' taken as a value: {rc} {err}")

        # The puts were written at A: A counts the records it sent to B, with their metadata
        # within the bound of the issue (16 x regions + 32 bytes).
        deadline = time.time() + 10
        while True:
            rc, out, err = raw(base + ["status", "--json"])
            check(rc == 0, f"status --json: {err}")
            st = json.loads(out)
            check_status_json(st, [A, B])
            if st["counters"]["repl_records"] > 0 or time.time() > deadline:
                break
            time.sleep(0.1)
        c = st["counters"]
        check(c["repl_records"] >= 1 and c["repl_key_bytes"] >= len("kv/dash")
              and c["repl_value_bytes"] >= 2, f"the put was not counted as replicated: {c}")
        meta = st["replication"]["metadata_bytes_per_record"]
        check(0 < meta <= 16 * 2 + 32, f"metadata per record {meta}: {c}")
        rc, out, err = raw(base + ["status"])
        check(rc == 0 and re.search(rb"^replication +[0-9.]+ bytes of metadata per record",
                                    out, re.M), f"no replication line:\n{out.decode()}")
        log(f"replication counted: {c['repl_records']} records, {meta:.1f} B of metadata each")
        log("'--' ends the options; '-5' without it is an unknown option (exit 2)")
        check_crlf_session(base, sess)

        # Binary values through standard input and --json.
        value = bytes([0, 0xff, 0x80, 0x41, 0x0a, 0x7f, 0xc3, 0xa9])
        rc, out, err = raw(base + ["--json", "put", "kv/bin", "-"], stdin=value)
        check(rc == 0, f"binary put: {err}")
        put = json.loads(out)
        rc, out, err = raw(base + ["--json", "get", "kv/bin"])
        got = json.loads(out)["versions"][0]
        # Bytes outside UTF-8 come back as the code points of their values.
        check(got["value"] == "\x00\xff\x80A\n\x7f\u00e9", f"binary value: {got['value']!r}")
        check(got["ts"] == put["ts"] and got["origin"] == A, f"get {got} vs put {put}")
        log(f"binary value round trip in --json, ts {put['ts']}")

        # Siblings merge with the legacy --context before the command.
        check(cl.put(A, "sib/y", "one")[0] == 0 and cl.put(B, "sib/y", "two")[0] == 0,
              "sibling writes failed")
        wait_until("two siblings", lambda: len(cl.get(A, "sib/y").get("versions", [])) == 2)
        ctx = cl.get(A, "sib/y")["context"]
        rc, out, err = raw(base + ["--context", ctx, "put", "sib/y", "merged"])
        check(rc == 0, f"--context before put: {err}")
        rc, out, err = raw(base + ["put", "sib/y", "merged2", "--context=" + ctx])
        check(rc == 0, f"--context=TOKEN after put: {err}")
        log("--context before the command and --context=TOKEN after it")
        check_context_errors(cl, base)

        # Usage errors: exit 2, a message, nothing on stdout.
        for args, words in ((base + ["get", "kv/x", "--context", ctx], "put and del only"),
                            (base + ["--context", ctx, "status"], "put and del only"),
                            (base + ["status", "--bogus"], "unknown option '--bogus' for status"),
                            (base + ["--json=1", "status"], "takes no value"),
                            (base + ["status", "--timeout"], "needs a value"),
                            (base + ["--timeout", "0", "status"], "--timeout"),
                            (base + ["status", "extra"], "no arguments"),
                            (base + ["frob"], "unknown command 'frob'"),
                            (base + ["link", A, B, "sever"], "cut"),
                            (base + ["put", "nokey", "v"], "BUCKET/KEY"),
                            # Conditional writes (strong buckets): checked before sending.
                            (base + ["put", "kv/x", "v", "--if-version", "3", "--if-absent"],
                             "exclude each other"),
                            (base + ["del", "kv/x", "--if-absent", "--if-version=3"],
                             "exclude each other"),
                            (base + ["put", "kv/x", "v", "--if-version", "x1"],
                             "needs a version number (1 or more), not 'x1'"),
                            (base + ["put", "kv/x", "v", "--if-version", "-3"],
                             "needs a version number"),
                            (base + ["put", "kv/x", "v", "--if-version",
                                     "18446744073709551616"], "needs a version number"),
                            (base + ["put", "kv/x", "v", "--if-version", "0"],
                             "versions start at 1"),
                            (base + ["put", "kv/x", "v", "--if-version"], "needs a value"),
                            (base + ["put", "kv/x", "v", "--if-absent=1"], "takes no value"),
                            (base + ["put", "kv/x", "v", "--if-absent", "--context", ctx],
                             "--context does not go with"),
                            (base + ["get", "kv/x", "--if-version", "2"], "put and del only"),
                            (base + ["status", "--if-absent"], "put and del only"),
                            (base + ["--if-absent", "get", "kv/x"], "put and del only"),
                            (["--endpoint", "tcp://127.0.0.1:9", "--config", cl.config, "status"],
                             "either --endpoint")):
            rc, out, err = raw(args)
            check(rc == 2 and words in err and out == b"",
                  f"{args[len(base):] if args[:len(base)] == base else args}: exit {rc}, {err!r}")
        log("usage errors exit 2 with a message")

        # Help: every command, every way of asking; every option in the main help.
        rc, out, err = raw(["--help"])
        main_help = out.decode()
        check(rc == 0, "causeway --help failed")
        for opt in ("--config", "--region", "--endpoint", "--session", "--json", "--timeout",
                    "--context", "--if-version", "--if-absent", "--help", "--version", "put",
                    "get", "del", "status", "link", "help", "4 the condition"):
            check(opt in main_help, f"{opt} missing from --help")
        # Each command once, the ways of asking in turn (each sanitized run costs).
        forms = (lambda c: [c, "--help"], lambda c: ["--help", c], lambda c: ["help", c],
                 lambda c: [c, "-h"], lambda c: ["-h", c])
        for i, cmd in enumerate(("put", "get", "del", "status", "link")):
            args = forms[i](cmd)
            rc, out, err = raw(args)
            check(rc == 0 and out.decode().startswith(f"usage: causeway [OPTIONS] {cmd}"),
                  f"{args}: {rc} {out[:60]!r}")
        rc, out, err = raw(["--version"])
        check(rc == 0 and out.startswith(b"causeway "), f"--version: {out!r}")
        log("help for every command; --version")

        # The status as text: stamps raw, as UTC and as lag behind the clock. The
        # applied entry of west is its last write's stamp.
        rc, out, err = raw(base + ["--json", "put", "kv/last", "x"])
        last = json.loads(out)["ts"]
        rc, out, err = raw(base + ["status"])
        check(rc == 0, f"status: {err}")
        text = out.decode()
        clock, rows = check_status_text(text, [A, B])
        check(rows["applied"][A] == last, f"applied[{A}] {rows['applied'][A]} != last write {last}")
        check(clock >= last, "the clock is behind the node's own write")
        rc, out, err = raw(["--endpoint", f"tcp://127.0.0.1:{cl.ports[B][2]}", "status"])
        check(rc == 0, f"status on the admin endpoint: {err}")
        check_status_text(out.decode(), [A, B])
        log(f"status text: clock {clock} shown as {utc(clock)}; rows match their stamps")

        # A cut link shows in both forms.
        cl.link(A, B, "cut")
        st = cl.status(A)
        check(st["peers"][0]["link"] == "cut", f"cut link not shown: {st['peers']}")
        rc, out, err = raw(base + ["status"])
        check(re.search(rf"^  {B} +cut ", out.decode(), re.M), f"cut not in text:\n{out.decode()}")
        cl.link(A, B, "heal")
        log("a cut link shows in --json and in the text")


run(main)
