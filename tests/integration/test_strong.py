#!/usr/bin/env python3
"""Strong buckets with real processes, on a copy of geo-configs/three-regions.ini
(its WAN delays: us-east<->eu-west 40 ms, us-east<->ap-south 110, eu-west<->ap-south
75, one way) with free ports, strong_timeout_ms 2000 and snapshot_entries 50:

- a strong write acknowledged in one region is read at once in every other one;
- concurrent --if-version puts from three regions: exactly one wins;
- a conditional put on a causal bucket is refused;
- a region cut off from both others gets "no majority" for strong requests while
  its causal buckets work; the majority goes on; after the heal every region holds
  the same strong state and the majority's term did not move (pre-vote);
- the leader cut off: the majority elects another, the old one serves no stale
  read, steps down, and rejoins as a follower after the heal;
- kill -9 the leader: a new one within the election timeout, no acknowledged write
  lost, the killed region catches up after its restart;
- a follower behind the compacted log catches up through a snapshot.

Prints the measured figures (election time, CLI latencies per region)."""
import concurrent.futures
import json
import os
import random
import re
import statistics
import subprocess
import time

from cwtest import BIN, Cluster, check, log, run, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
GEO = os.path.join(HERE, "..", "..", "geo-configs", "three-regions.ini")
E, W, S = "us-east", "eu-west", "ap-south"
REGIONS = (E, W, S)
ONE_WAY = {frozenset((E, W)): 40, frozenset((E, S)): 110, frozenset((W, S)): 75}
STRONG_TIMEOUT_MS = 2000
SNAPSHOT_ENTRIES = 50
ELECTION_MIN_MS, ELECTION_MAX_MS = 1000, 2000  # the defaults three-regions.ini keeps
CLI_TIMEOUT_MS = 10000  # well above strong_timeout_ms: the node answers first


def rtt(a, b):
    return 0 if a == b else 2 * ONE_WAY[frozenset((a, b))]


def floor_ms(region, leader):
    """Forward to the leader, then one round trip to the nearest majority."""
    others = sorted(rtt(leader, r) for r in REGIONS if r != leader)
    majority_round = others[len(REGIONS) // 2 - 1]
    return rtt(region, leader) + majority_round


def cmd(cl, region, *args, json_out=False):
    c = [os.path.join(BIN, "causeway"), "--config", cl.config, "--region", region,
         "--timeout", str(CLI_TIMEOUT_MS)]
    if json_out:
        c.append("--json")
    return c + list(args)


def run_cmd(c):
    t0 = time.monotonic()
    p = subprocess.run(c, capture_output=True, timeout=60)
    return (p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"),
            (time.monotonic() - t0) * 1000)


def run_many(cmds, workers=12):
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(run_cmd, cmds))


def sput(cl, region, key, value, *extra):
    """A strong put: (rc, version or None, stderr, ms)."""
    rc, out, err, ms = run_cmd(cmd(cl, region, "put", f"accounts/{key}", value, *extra))
    m = re.search(r"version (\d+)", out)
    return rc, int(m.group(1)) if m else None, err, ms


def sget(cl, region, key):
    """A strong get: (rc, value or None, version or None, stderr, ms)."""
    rc, out, err, ms = run_cmd(cmd(cl, region, "get", f"accounts/{key}", json_out=True))
    value = version = None
    if rc == 0:
        d = json.loads(out)
        value = [v["value"] for v in d["versions"]]
        check(len(value) == 1, f"a strong key has {len(value)} versions at {region}: {d}")
        value, version = value[0], d["version"]
    return rc, value, version, err, ms


def strong(cl, region):
    return cl.status(region)["strong"]


def wait_leader(cl, regions, not_region=None, timeout=15.0):
    """Every region of `regions` names the same leader (one of them, not not_region),
    and that leader says it leads. Returns (leader, term)."""
    def agreed():
        views = {r: strong(cl, r) for r in regions}
        leaders = {v["leader"] for v in views.values()}
        if len(leaders) != 1:
            return None
        ld = leaders.pop()
        if ld is None or ld == not_region or ld not in regions or views[ld]["role"] != "leader":
            return None
        return ld, views[ld]["term"]
    return wait_until("an agreed leader", agreed, timeout=timeout, interval=0.05)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---- the parts ------------------------------------------------------------------------

def read_after_write(cl, leader, written):
    """Each region writes; every other region reads the write at once (one try)."""
    lat_put = {r: [] for r in REGIONS}
    lat_get = {r: [] for r in REGIONS}
    for writer in REGIONS:
        for i in range(3):
            key = f"raw-{writer}-{i}"
            value = f"{writer}-value-{i}"
            rc, ver, err, ms = sput(cl, writer, key, value)
            check(rc == 0 and ver, f"strong put {key} at {writer} failed ({rc}): {err}")
            lat_put[writer].append(ms)
            written[key] = (value, ver)
            for reader in REGIONS:
                if reader == writer:
                    continue
                rc, got, gver, err, ms = sget(cl, reader, key)
                check(rc == 0, f"STALE: {key} written at {writer} (version {ver}) is not found at "
                               f"{reader} right after the acknowledgement ({rc}): {err}")
                check((got, gver) == (value, ver),
                      f"STALE: {key} at {reader} is {got!r} version {gver}, just acknowledged "
                      f"{value!r} version {ver} at {writer}")
                lat_get[reader].append(ms)
            # and one more write of the same key, read back everywhere
            rc, ver2, err, _ = sput(cl, writer, key, value + "-b")
            check(rc == 0 and ver2 > ver, f"second put of {key} at {writer}: ({rc}) {ver2} {err}")
            written[key] = (value + "-b", ver2)
            for reader in REGIONS:
                rc, got, gver, err, _ = sget(cl, reader, key)
                check((rc, got, gver) == (0, value + "-b", ver2),
                      f"STALE: {key} at {reader} is ({rc}) {got!r} v{gver} after v{ver2}: {err}")
    # The CLI's own cost (process start, connection): a local causal get.
    base = [run_cmd(cmd(cl, E, "get", "kv/nothing"))[3] for _ in range(5)]
    overhead = median(base)
    log(f"read-after-write: 9 keys x 2 writes, each read at once in every region: no stale read")
    log(f"CLI wall-clock medians (one process per request; a local causal get takes "
        f"{overhead:.0f} ms), leader {leader}:")
    for r in REGIONS:
        log(f"  {r:9s} strong put {median(lat_put[r]):6.0f} ms   strong get "
            f"{median(lat_get[r]):6.0f} ms   floor (forward + majority round trip) "
            f"{floor_ms(r, leader):4d} ms")


def concurrent_cas(cl, written):
    """Three --if-version puts at once, one per region: one wins, two conflict."""
    key = "cas"
    rc, ver, err, _ = sput(cl, W, key, "start")
    check(rc == 0, f"put {key}: {err}")
    for rnd in range(5):
        rc, _, ver, err, _ = sget(cl, REGIONS[rnd % 3], key)
        check(rc == 0, f"get {key}: {err}")
        cmds = [cmd(cl, r, "put", f"accounts/{key}", f"round{rnd}-{r}", "--if-version", str(ver))
                for r in REGIONS]
        res = run_many(cmds, workers=3)
        winners = [(r, x) for r, x in zip(REGIONS, res) if x[0] == 0]
        losers = [(r, x) for r, x in zip(REGIONS, res) if x[0] != 0]
        check(len(winners) == 1,
              f"round {rnd}: {len(winners)} of 3 conditional puts on version {ver} succeeded: "
              f"{[(r, x[0], x[1].strip(), x[2].strip()) for r, x in zip(REGIONS, res)]}")
        wr, wx = winners[0]
        m = re.search(r"version (\d+)", wx[1])
        check(m, f"round {rnd}: the winner printed no version: {wx[1]!r}")
        new = int(m.group(1))
        for r, x in losers:
            check(x[0] == 4, f"round {rnd}: the losing put at {r} exited {x[0]}, not 4: {x[2]}")
            check(f"current version is {new}" in x[2],
                  f"round {rnd}: the conflict at {r} does not name the current version {new}: "
                  f"{x[2]!r}")
        for r in REGIONS:
            rc, got, gver, err, _ = sget(cl, r, key)
            check((got, gver) == (f"round{rnd}-{wr}", new),
                  f"round {rnd}: {key} at {r} is {got!r} v{gver}, the winner wrote v{new}")
        written[key] = (f"round{rnd}-{wr}", new)
        log(f"CAS round {rnd}: version {ver} -> {new}, won by {wr}; "
            f"{', '.join(r for r, _ in losers)} exited 4 naming version {new}")
    # --if-absent from three regions at once on a new key: one creates it.
    res = run_many([cmd(cl, r, "put", "accounts/lock", f"owner-{r}", "--if-absent")
                    for r in REGIONS], workers=3)
    rcs = sorted(x[0] for x in res)
    check(rcs == [0, 4, 4], f"--if-absent from three regions: exit statuses {rcs}: "
                            f"{[x[2].strip() for x in res]}")
    owner = REGIONS[[x[0] for x in res].index(0)]
    _, got, gver, _, _ = sget(cl, S, "lock")
    check(got == f"owner-{owner}", f"accounts/lock is {got!r}, created by {owner}")
    written["lock"] = (got, gver)
    log(f"--if-absent from three regions at once: {owner} created accounts/lock, two exited 4")


def conditional_on_causal(cl):
    for flag in (["--if-version", "3"], ["--if-absent"]):
        rc, _, err, _ = run_cmd(cmd(cl, W, "put", "kv/plain", "x", *flag))
        check(rc == 1 and "causal" in err and "strong bucket" in err,
              f"put kv/plain {' '.join(flag)}: exit {rc}, expected 1 with a message that the "
              f"bucket is causal and a strong bucket is needed: {err!r}")
    check(cl.get(W, "kv/plain")["found"] is False, "the refused conditional put wrote kv/plain")
    log(f"a conditional put on a causal bucket: exit 1, {err.strip()!r}")


def isolate(cl, leader, written):
    """Cut one follower off from both others; then heal."""
    lone = [r for r in REGIONS if r != leader][-1]
    majority = [r for r in REGIONS if r != lone]
    before = {r: strong(cl, r) for r in REGIONS}
    term0 = before[leader]["term"]
    for r in majority:
        cl.link(lone, r, "cut")
        cl.link(r, lone, "cut")
    log(f"cut {lone} off from {' and '.join(majority)} (both directions)")
    t_cut = time.monotonic()
    # Strong requests there fail, clearly, within strong_timeout_ms (plus slack).
    for op in ("put", "get"):
        args = ["put", "accounts/iso", "lost?"] if op == "put" else ["get", "accounts/raw-us-east-0"]
        rc, out, err, ms = run_cmd(cmd(cl, lone, *args))
        check(rc == 1, f"strong {op} at the cut-off {lone} exited {rc} ({out.strip()} {err.strip()})")
        check("majority" in err or "quorum" in err,
              f"strong {op} at the cut-off {lone}: the error does not mention a majority: {err!r}")
        check(ms < STRONG_TIMEOUT_MS + 3000,
              f"strong {op} at {lone} took {ms:.0f} ms to fail (strong_timeout_ms "
              f"{STRONG_TIMEOUT_MS})")
        log(f"strong {op} at the cut-off {lone}: exit {rc} after {ms:.0f} ms: {err.strip()}")
    # Its causal buckets stay available.
    sess = cl.session("lone")
    rc, _, err = cl.put(lone, "kv/during-cut", "causal-ok", session=sess)
    check(rc == 0, f"causal put at the cut-off {lone} failed: {err}")
    got = cl.get(lone, "kv/during-cut", session=sess)
    check(got["found"] and got["versions"][0]["value"] == "causal-ok",
          f"causal get at the cut-off {lone}: {got}")
    log(f"causal put and get at the cut-off {lone}: ok")
    # The majority writes and reads strong keys meanwhile.
    for i, r in enumerate(majority * 2):
        key = f"cut-{i}"
        rc, ver, err, _ = sput(cl, r, key, f"majority-{i}")
        check(rc == 0, f"strong put {key} at {r} (majority side) failed: {err}")
        written[key] = (f"majority-{i}", ver)
        for r2 in majority:
            rc, got, gver, err, _ = sget(cl, r2, key)
            check((got, gver) == (f"majority-{i}", ver), f"{key} at {r2}: {got!r} v{gver}: {err}")
    log(f"the majority ({' and '.join(majority)}) wrote and read 4 strong keys during the cut")
    # Stay cut past several election timeouts: the lone region keeps trying (pre-vote).
    while time.monotonic() - t_cut < 2.5 * ELECTION_MAX_MS / 1000:
        time.sleep(0.2)
    mid = strong(cl, lone)
    for r in majority:
        cl.link(lone, r, "heal")
        cl.link(r, lone, "heal")
    log(f"healed after {time.monotonic() - t_cut:.1f} s; {lone} was {mid['role']} in term "
        f"{mid['term']}, prevotes {before[lone]['counters']['prevotes']} -> "
        f"{mid['counters']['prevotes']}")
    # The lone region answers strong requests again, and everyone agrees.
    wait_until(f"strong get at {lone} after the heal",
               lambda: sget(cl, lone, "cut-0")[0] == 0, timeout=15)
    what = [(k, r) for k in sorted(written) for r in REGIONS]
    res = run_many([cmd(cl, r, "get", f"accounts/{k}", json_out=True) for k, r in what])
    check_reads(res, what, written, "after the heal")  # each equals the last acknowledged write
    time.sleep(0.5)
    after = {r: strong(cl, r) for r in REGIONS}
    check(after[leader]["role"] == "leader" and after[leader]["term"] == term0,
          f"the heal disturbed the leader: {leader} was leader in term {term0}, now "
          f"{after[leader]['role']} in term {after[leader]['term']} (pre-vote should keep the "
          f"cut-off region from raising the term)")
    check(all(a["term"] == term0 and a["leader"] == leader for a in after.values()),
          f"terms or leaders differ after the heal: "
          f"{[(r, a['term'], a['leader']) for r, a in after.items()]}")
    check(after[lone]["counters"]["elections"] == before[lone]["counters"]["elections"],
          f"{lone} started {after[lone]['counters']['elections'] - before[lone]['counters']['elections']}"
          f" real elections while cut off (pre-vote should have stopped them)")
    log(f"after the heal: {len(written)} strong keys identical (value and version) in every "
        f"region; term {term0} and leader {leader} unchanged; {lone} ran no election")


def isolate_leader(cl, leader, written):
    """Cut the leader itself off: it must stop serving (no stale reads), the majority
    elects another, and the old leader rejoins as a follower after the heal."""
    majority = [r for r in REGIONS if r != leader]
    rc, ver, err, _ = sput(cl, leader, "stale", "old")
    check(rc == 0, f"put stale at {leader}: {err}")
    for r in majority:
        cl.link(leader, r, "cut")
        cl.link(r, leader, "cut")
    t_cut = time.monotonic()
    log(f"cut the leader {leader} off from {' and '.join(majority)}")
    new_leader, term = wait_leader(cl, majority, not_region=leader, timeout=20)
    log(f"{new_leader} leads the majority in term {term}, "
        f"{(time.monotonic() - t_cut) * 1000:.0f} ms after the cut")
    rc, ver, err, _ = sput(cl, new_leader, "stale", "new")
    check(rc == 0, f"put stale at the new leader {new_leader}: {err}")
    written["stale"] = ("new", ver)
    rc, got, gver, err, ms = sget(cl, leader, "stale")
    check(rc != 0, f"STALE READ: the cut-off old leader {leader} answered {got!r} v{gver} after "
                   f"{new_leader} acknowledged 'new' v{ver}")
    check(rc == 1 and ("majority" in err or "quorum" in err),
          f"get at the cut-off old leader {leader}: exit {rc}, {err!r}")
    old = strong(cl, leader)
    check(old["role"] != "leader",
          f"{leader} still thinks it leads (term {old['term']}) "
          f"{time.monotonic() - t_cut:.1f} s after losing its majority")
    log(f"the cut-off old leader {leader} refused a get after {ms:.0f} ms ({err.strip()[-60:]}); "
        f"it is {old['role']} (stepdowns_quorum {old['counters']['stepdowns_quorum']})")
    for r in majority:
        cl.link(leader, r, "heal")
        cl.link(r, leader, "heal")
    wait_until(f"'new' at {leader} after the heal",
               lambda: sget(cl, leader, "stale")[1:3] == ("new", ver), timeout=15)
    nl, t2 = wait_leader(cl, REGIONS, timeout=15)
    check((nl, t2) == (new_leader, term),
          f"after the heal {nl} leads in term {t2}; expected {new_leader} to keep term {term}")
    log(f"healed: {leader} reads 'new' v{ver}; {new_leader} still leads in term {term}")
    return new_leader


def kill_leader(cl, leader, written):
    survivors = [r for r in REGIONS if r != leader]
    # One write in flight at the leader when it dies: kept if it was acknowledged.
    # (--timeout 1500: the CLI retries a lost connection; an acknowledgement takes ~100 ms.)
    c = cmd(cl, leader, "put", "accounts/inflight", "maybe")
    c[c.index("--timeout") + 1] = "1500"
    inflight = subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(random.uniform(0.03, 0.2))  # before or after its acknowledgement
    cl.kill9(leader)
    t_kill = time.monotonic()
    log(f"SIGKILL the leader {leader}")
    new_leader, term = wait_leader(cl, survivors, not_region=leader, timeout=20)
    elected_ms = (time.monotonic() - t_kill) * 1000
    out, _ = inflight.communicate(timeout=60)
    if inflight.returncode == 0:
        written["inflight"] = ("maybe", int(re.search(rb"version (\d+)", out).group(1)))
    max_rtt = max(rtt(a, b) for a in survivors for b in survivors)
    bound = ELECTION_MAX_MS + 4 * max_rtt + 1000
    log(f"ELECTION: {new_leader} leads in term {term}, {elected_ms:.0f} ms after the kill "
        f"(election timeout {ELECTION_MIN_MS}..{ELECTION_MAX_MS} ms; bound {bound} ms = "
        f"election_max_ms + 4 x {max_rtt} ms round trip + 1000 ms for this shared host); "
        f"the write in flight was {'acknowledged' if inflight.returncode == 0 else 'not acknowledged'}")
    check(elected_ms <= bound, f"no new leader within {bound} ms ({elected_ms:.0f} ms)")
    # No acknowledged write is lost: read everything back from the survivors.
    res = run_many([cmd(cl, r, "get", f"accounts/{k}", json_out=True)
                    for k in sorted(written) for r in survivors])
    check_reads(res, [(k, r) for k in sorted(written) for r in survivors], written, "after the kill")
    log(f"all {len(written)} acknowledged strong keys read back from {' and '.join(survivors)}")
    # More writes while it is down, then restart it: it catches up.
    for i in range(6):
        r = survivors[i % 2]
        rc, ver, err, _ = sput(cl, r, f"down-{i}", f"while-{leader}-down-{i}")
        check(rc == 0, f"put down-{i} at {r} with {leader} down: {err}")
        written[f"down-{i}"] = (f"while-{leader}-down-{i}", ver)
    rc, ver, err, _ = sput(cl, survivors[0], "raw-us-east-0", "overwritten")
    check(rc == 0, f"overwrite at {survivors[0]}: {err}")
    written["raw-us-east-0"] = ("overwritten", ver)
    cl.start(leader)
    t_start = time.monotonic()
    commit = strong(cl, new_leader)["commit"]
    wait_until(f"{leader} applied up to the leader's commit {commit}",
               lambda: strong(cl, leader)["applied"] >= commit, timeout=20)
    log(f"restarted {leader}: applied the leader's commit {commit} "
        f"{time.monotonic() - t_start:.1f} s after its start")
    res = run_many([cmd(cl, leader, "get", f"accounts/{k}", json_out=True) for k in sorted(written)])
    check_reads(res, [(k, leader) for k in sorted(written)], written, "after the restart")
    log(f"{leader} serves the latest value and version of all {len(written)} strong keys")
    now = {r: strong(cl, r) for r in REGIONS}
    check(all(v["term"] == term and v["leader"] == new_leader for v in now.values()),
          f"the restarted {leader} disturbed the leadership ({new_leader}, term {term}): "
          f"{[(r, v['role'], v['term'], v['leader']) for r, v in now.items()]}")
    return new_leader


def check_reads(res, what, written, when):
    for (k, r), (rc, out, err, _) in zip(what, res):
        check(rc == 0, f"LOST: get {k} at {r} {when} exited {rc}: {err}")
        d = json.loads(out)
        got = (d["versions"][0]["value"] if d["versions"] else None, d.get("version"))
        check(got == written[k], f"LOST OR WRONG: {k} at {r} {when} is {got}, acknowledged "
                                 f"{written[k]}")


def snapshot_catch_up(cl, leader, written):
    follower = [r for r in REGIONS if r != leader][0]
    other = [r for r in REGIONS if r not in (leader, follower)][0]
    cl.kill9(follower)
    n = 3 * SNAPSHOT_ENTRIES
    keys = [f"snap-{i:03d}" for i in range(n)]
    res = run_many([cmd(cl, (leader, other)[i % 2], "put", f"accounts/{k}", f"s{i}")
                    for i, k in enumerate(keys)])
    for k, (rc, out, err, _) in zip(keys, res):
        check(rc == 0, f"put {k} with {follower} down failed ({rc}): {err}")
        written[k] = (f"s{int(k[5:])}", int(re.search(r"version (\d+)", out).group(1)))
    st = strong(cl, leader)
    log(f"{follower} down; wrote {n} strong keys (snapshot_entries {SNAPSHOT_ENTRIES}); the "
        f"leader's log now holds {st['log']['first']}..{st['log']['last']}, snapshot at "
        f"{st['snapshot']['index']}")
    cl.start(follower)
    t0 = time.monotonic()
    commit = strong(cl, leader)["commit"]
    fs = wait_until(f"{follower} caught up to {commit}",
                    lambda: (lambda s: s if s["applied"] >= commit else None)(strong(cl, follower)),
                    timeout=30)
    log(f"{follower} restarted and applied {commit} in {time.monotonic() - t0:.1f} s; "
        f"snapshots_received {fs['counters']['snapshots_received']}, its snapshot at "
        f"{fs['snapshot']['index']}; the leader's snapshots_sent "
        f"{strong(cl, leader)['counters']['snapshots_sent']}")
    check(fs["counters"]["snapshots_received"] >= 1,
          f"{follower} caught up without a snapshot: {fs['counters']}")
    check(fs["snapshot"]["index"] > 0, f"{follower} holds no snapshot: {fs['snapshot']}")
    res = run_many([cmd(cl, follower, "get", f"accounts/{k}", json_out=True) for k in sorted(written)])
    check_reads(res, [(k, follower) for k in sorted(written)], written, "after the snapshot")
    log(f"{follower} serves all {len(written)} strong keys after catching up by snapshot")


def main():
    cl = Cluster.from_geo_config("strong", GEO, {"strong_timeout_ms": STRONG_TIMEOUT_MS,
                                                 "snapshot_entries": SNAPSHOT_ENTRIES})
    with cl:
        t0 = time.monotonic()
        cl.start_all()
        leader, term = wait_leader(cl, REGIONS)
        log(f"three regions up; {leader} leads in term {term} "
            f"{time.monotonic() - t0:.1f} s after the first start")
        written = {}
        read_after_write(cl, leader, written)
        concurrent_cas(cl, written)
        conditional_on_causal(cl)
        isolate(cl, leader, written)
        leader = isolate_leader(cl, leader, written)
        leader = kill_leader(cl, leader, written)
        snapshot_catch_up(cl, leader, written)


run(main)
