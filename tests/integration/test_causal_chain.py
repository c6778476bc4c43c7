#!/usr/bin/env python3
"""A post is written in A and read in B; B replies. C never shows the reply
without the post, even when the A->C link is much slower than B->C. C's status
shows the reply held in its dependency buffer until the post arrives. The same
story in an eventual bucket is allowed to (and with these delays does) show the
reply first: that is the anomaly causality prevents."""
import time

from cwtest import Cluster, check, log, run, wait_until

A, B, C = "us-east", "eu-west", "ap-south"


def story(cl, post_bucket, reply_bucket, tag):
    s1, s2 = cl.session(f"alice-{tag}"), cl.session(f"bob-{tag}")
    rc, out, err = cl.put(A, f"{post_bucket}/post-{tag}", "hello from alice", session=s1)
    check(rc == 0, f"post failed: {err}")
    log(f"[{tag}] post written in {A} at ts {out['ts']}")
    wait_until(f"the post in {B}", lambda: cl.get(B, f"{post_bucket}/post-{tag}", session=s2)["found"])
    rc, out, err = cl.put(B, f"{reply_bucket}/reply-{tag}", "re: hello", session=s2)
    check(rc == 0, f"reply failed: {err}")
    log(f"[{tag}] bob read the post in {B} and replied")
    # Watch C: fresh reads (no session), reply first, then the post.
    seen_reply_alone = False
    saw_buffered = 0
    deadline = time.time() + 15
    while time.time() < deadline:
        reply = cl.get(C, f"{reply_bucket}/reply-{tag}")
        post = cl.get(C, f"{post_bucket}/post-{tag}")
        st = cl.status(C)
        saw_buffered = max(saw_buffered, st["buffered"])
        if reply["found"] and not post["found"]:
            seen_reply_alone = True
        if reply["found"] and post["found"]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("C never showed both post and reply")
    return seen_reply_alone, saw_buffered


def main():
    cl = Cluster("causal", [A, B, C], 17400,
                 latency={(A, B): 20, (B, C): 20, (A, C): 20})
    try:
        cl.start_all()
        cl.link(A, C, "delay", "2000")  # the post crawls to C; the reply flies
        alone, buffered = story(cl, "posts", "replies", "causal")
        check(not alone, "CAUSAL VIOLATION: C showed the reply before the post")
        check(buffered >= 1, f"C's status never showed the reply buffered (max {buffered})")
        log(f"causal: C never showed the reply alone; its dependency buffer held up to {buffered}")
        wait_until("C's buffer to drain", lambda: cl.status(C)["buffered"] == 0)

        alone, _ = story(cl, "ev", "ev", "eventual")
        log(f"eventual: reply shown alone at C: {alone} (allowed: eventual gives this up)")
        check(alone, "expected the eventual bucket to show the anomaly with a 2 s A->C delay")
    finally:
        cl.close()


run(main)
