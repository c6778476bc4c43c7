"""Berkeley DB is the store of record: with caches far smaller than the data, a
region evicts key states and outbox bodies, reads them back when needed, and
nothing is lost or wrong. A cut keeps region a's outbox growing past its body
cache; after the heal every record reaches b, read back from disk."""
import cwtest
from cwtest import check, log

N = 300
SMALL = """key_cache_bytes_max = 64K
outbox_cache_bytes_max = 64K
"""


def main():
    with cwtest.Cluster("sor", ["a", "b"], cluster_extra=SMALL) as c:
        c.start_all()
        c.link("a", "b", "cut")
        c.link("b", "a", "cut")
        value = "x" * 1000
        for i in range(N):
            rc, _, err = c.put("a", f"kv/k{i:04d}", f"{i:04d}{value}")
            check(rc == 0, f"put k{i} failed: {err}")
        st = c.status("a")
        cnt = st["counters"]
        log(f"a after {N} writes of 1 KB: key cache {st['key_cache_bytes']} bytes, outbox bodies "
            f"{st['outbox_body_bytes']} bytes, outbox {st['outbox_bytes']} bytes, "
            f"keys evicted {cnt['keys_evicted']}, bodies evicted {cnt['bodies_evicted']}")
        check(st["key_cache_bytes"] <= 64 * 1024, "key cache over its bound")
        check(st["outbox_body_bytes"] <= 64 * 1024, "outbox bodies over their bound")
        check(cnt["keys_evicted"] > 0 and cnt["bodies_evicted"] > 0, "nothing was evicted")
        # Every key reads back its own value from a (most through the store).
        for i in range(0, N, 7):
            got = cwtest.values(c.get("a", f"kv/k{i:04d}"))
            check(got == [f"{i:04d}{value}"], f"a read k{i}: {got}")
        c.link("a", "b", "heal")
        c.link("b", "a", "heal")
        end_a = c.status("a")["applied"]["a"]
        cwtest.wait_until("b has applied every write of a",
                          lambda: c.status("b")["applied"]["a"] >= end_a, timeout=60)
        for i in range(0, N, 3):
            got = cwtest.values(c.get("b", f"kv/k{i:04d}"))
            check(got == [f"{i:04d}{value}"], f"b read k{i}: {got}")
        cnt = c.status("a")["counters"]
        check(cnt["bodies_loaded"] > 0, "no outbox body was read back from the store")
        check(cnt["store_read_errors"] == 0, f"store read errors: {cnt['store_read_errors']}")
        log(f"after the heal: b holds every write; a read {cnt['bodies_loaded']} outbox bodies "
            f"and {cnt['keys_loaded']} key states back from Berkeley DB")


if __name__ == "__main__":
    cwtest.run(main)
