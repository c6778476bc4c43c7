#!/usr/bin/env python3
"""A post is written in A and read in B; B replies. C never shows the reply
without the post, even when the A->C link is much slower than B->C (here: cut,
then healed). C's status shows the reply held in its dependency buffer until the
post arrives. The same story in an eventual bucket does show the reply first: the
anomaly causality prevents."""
from cwtest import Cluster, check, log, run, wait_until

A, B, C = "us-east", "eu-west", "ap-south"


def story(cl, post_bucket, reply_bucket, tag):
    post_key, reply_key = f"{post_bucket}/post-{tag}", f"{reply_bucket}/reply-{tag}"
    s1, s2 = cl.session(f"alice-{tag}"), cl.session(f"bob-{tag}")
    cl.link(A, C, "cut")  # the post cannot reach C for now; the reply can
    rc, out, err = cl.put(A, post_key, "hello from alice", session=s1)
    check(rc == 0, f"post failed: {err}")
    log(f"[{tag}] post written in {A} at ts {out['ts']}; link {A}->{C} is cut")
    wait_until(f"the post in {B}", lambda: cl.get(B, post_key, session=s2)["found"])
    rc, out, err = cl.put(B, reply_key, "re: hello", session=s2)
    check(rc == 0, f"reply failed: {err}")
    log(f"[{tag}] bob read the post in {B} and replied")

    def probe():
        # Reply first, then the post: a reply shown must already have its post.
        reply, post, st = cl.get(C, reply_key), cl.get(C, post_key), cl.status(C)
        return reply["found"], post["found"], st["buffered"]

    reply_alone = False
    if post_bucket == "ev":
        # Eventual: the reply shows up at C although its post cannot have.
        wait_until("the eventual reply at C", lambda: probe()[0])
        reply_alone = not probe()[1]
    else:
        # Causal: the reply reaches C and waits in the dependency buffer.
        wait_until("the reply buffered at C", lambda: probe()[2] >= 1)
        for _ in range(10):
            r, p, buffered = probe()
            check(not (r and not p), "CAUSAL VIOLATION: C showed the reply before the post")
        log(f"[{tag}] C holds the reply in its dependency buffer (buffered={buffered}) "
            "and shows neither")
    cl.link(A, C, "heal")
    wait_until("post and reply at C", lambda: (lambda x: x[0] and x[1])(probe()))
    wait_until("C's buffer to drain", lambda: cl.status(C)["buffered"] == 0)
    return reply_alone


def main():
    with Cluster("causal", [A, B, C], latency={(A, B): 20, (B, C): 20, (A, C): 20}) as cl:
        cl.start_all()
        story(cl, "posts", "replies", "causal")
        log("causal: after the heal C shows post and reply; its buffer drained to zero")
        alone = story(cl, "ev", "ev", "eventual")
        check(alone, "expected the eventual bucket to show the reply without its post")
        log("eventual: C showed the reply without its post (allowed: eventual gives this up)")


run(main)
