/*
 * fixture.h - N regions of the real core in one process, with an in-memory
 * store, in-memory links and a seeded scheduler: the one fixture the simulator
 * (src/sim/sim.c) and the replica unit tests (tests/unit/test_replica.c) drive,
 * in the spirit of canonical/raft's raft_fixture.
 *
 * What it models
 *   - Regions: each is a cw_node (src/core/node.h), created from its region's
 *     replica configuration and restored from its durable store. A crash
 *     destroys the node and drops every effect not yet committed; a start (or
 *     restart) creates a fresh node and restores it from the store, as the
 *     daemon does from Berkeley DB.
 *   - Stores: the KEY, OUTBOX and META records a node persists, applied exactly
 *     as src/store does: keys in Berkeley DB's default B-tree order (bytewise,
 *     a prefix first), a KEY record with no data deletes the key, outbox
 *     records keyed and ordered by stamp, a put replaces, deleting an absent
 *     record is a no-op, one metadata record; a round's records are committed
 *     all at once or (crash first) not at all, and a record the daemon's store
 *     would refuse stops the run. Restore reads metadata, then keys in key
 *     order, then the outbox in stamp order, as cw_store_load does.
 *   - Group commit: a round's effects (persist, messages, replies) wait for
 *     the region's commit, which completes commit_min_us..commit_max_us after
 *     the first round waiting for it; then the records are durable, the
 *     messages leave and the replies reach their clients, in that order (the
 *     driving contract of node.h). With commit_max_us == 0 every round commits
 *     at once, inside the input that caused it.
 *   - Links: one FIFO queue per ordered pair of regions. A message leaves
 *     either as a deep copy of the struct (CW_FIXTURE_COPIED) or as the frames
 *     the daemon would send (CW_FIXTURE_ENCODED: src/wire's
 *     cw_wire_encode_peer_part, oversized batches split, LZ4 batches) that
 *     are decoded with cw_wire_decode_peer at delivery; a frame that does not
 *     decode, or decodes to another sender, stops the run. Each frame (or
 *     message) is dropped with drop_ppm, duplicated with dup_ppm, and arrives
 *     delay + [0, jitter] later but never before the one ahead of it (a link
 *     never reorders). A cut link drops what is sent on it and what arrives
 *     while it is cut; heal undoes a cut. Delivery to a region that is down
 *     is a drop.
 *   - Time: one simulated timeline, now (microseconds). Every input to region
 *     r happens at {real_us = now + r's clock offset (never below 0), mono_us
 *     = now}: a clock jump moves real_us only.
 *   - Scheduler: a binary heap of events ordered by (time, sequence); the
 *     sequence is global, so equal times run in the order they were
 *     scheduled. Events are link deliveries, region ticks (every tick_us once
 *     started), group commits, and the driver's own events (hooks.event).
 *   - Randomness: all of it comes from one seed (src/sim/rng.h): the
 *     fixture's generator (commit delays, jitter, drops, duplicates, and
 *     whatever the driver draws with cw_fixture_rng) and each node's own
 *     generator, seeded from (seed, region) at every start.
 *
 * Invariants after every step
 *   A step is one scheduled event (cw_fixture_step) or one direct input
 *   (cw_fixture_put, _get, _recv, _tick, _deliver, _drop, _duplicate, _start,
 *   _crash, _commit). After every step the fixture calls
 *   cw_node_check_invariants on every region that is up (check =
 *   CW_FIXTURE_CHECK_CHANGED: on those the step gave an input). The first failure
 *   (an invariant, or a decode, encode or store failure) stops the run: it is
 *   recorded in cw_fixture_failure with the seed, the step (type, regions,
 *   time) and the description, and every later step does nothing and returns
 *   false. Direct inputs made by a driver event's handler are part of that
 *   event's step.
 *
 * Driving contract
 *   Create the fixture, set per-region configuration (cw_fixture_replica_config,
 *   cw_fixture_buckets), links, losses and clock offsets as wanted, start the
 *   regions (cw_fixture_start) and, for automatic ticks, schedule their first
 *   tick (cw_fixture_start_ticks). Then either run scheduled events
 *   (cw_fixture_step, cw_fixture_run_until) or give inputs directly; with
 *   manual_delivery the driver moves messages itself (cw_fixture_deliver,
 *   cw_fixture_drop, cw_fixture_duplicate) and the links schedule nothing.
 *   Every function that can fail returns false once the run has stopped;
 *   check cw_fixture_failure.
 *
 * Ownership
 *   The fixture owns its nodes, stores, link queues, pending effects, events,
 *   reply log and failure report; cw_fixture_destroy frees them all. The
 *   configuration is copied (buckets included: nodes are created from the
 *   fixture's copy, cw_fixture_buckets). Requests and messages given as input
 *   stay the caller's. Pointers returned by observers (nodes, replicas,
 *   stores, link heads) are borrowed until the next step; replies from the
 *   reply log (cw_fixture_reply) stay valid until cw_fixture_destroy. Hooks
 *   receive borrowed data valid for the duration of the call.
 */
#ifndef CW_SIM_FIXTURE_H
#define CW_SIM_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/node.h"
#include "core/replica.h"
#include "sim/rng.h"

struct cw_fixture;

/* How messages cross a link. */
enum cw_fixture_frames {
    CW_FIXTURE_COPIED = 0,  /* a deep copy of the struct (cw_msg_copy) */
    CW_FIXTURE_ENCODED = 1, /* wire frames, encoded at the sender and decoded at delivery */
};

enum cw_fixture_event_type {
    /* Scheduled. */
    CW_FIXTURE_EV_DELIVER = 1, /* the head of link peer -> region arrives */
    CW_FIXTURE_EV_TICK,        /* region ticks (and the next tick is scheduled) */
    CW_FIXTURE_EV_COMMIT,      /* region's group commit completes */
    CW_FIXTURE_EV_DRIVER,      /* the driver's own event: hooks.event */
    /* Direct inputs, named in failure reports. */
    CW_FIXTURE_EV_PUT,
    CW_FIXTURE_EV_GET,
    CW_FIXTURE_EV_RECV,      /* cw_fixture_recv: a message given by the driver */
    CW_FIXTURE_EV_DROP,      /* cw_fixture_drop (peer -> region) */
    CW_FIXTURE_EV_DUPLICATE, /* cw_fixture_duplicate (peer -> region) */
    CW_FIXTURE_EV_START,
    CW_FIXTURE_EV_CRASH,
};

struct cw_fixture_event {
    uint64_t time;
    uint64_t seq;
    enum cw_fixture_event_type type;
    unsigned region; /* DELIVER, DROP, DUPLICATE: the receiver */
    unsigned peer;   /* DELIVER, DROP, DUPLICATE: the sender */
    /* DRIVER: the driver's name for it (a static string, for reports), its
     * kind and arguments; the fixture only carries them. */
    const char *name;
    unsigned kind;
    uint64_t a;
    int64_t b;
};

/* Hooks: every one may be NULL. f is the fixture calling; a hook may give
 * inputs and schedule events (but not destroy the fixture). */
struct cw_fixture_hooks {
    void *ctx;
    /* A driver event is due (cw_fixture_schedule). */
    void (*event)(void *ctx, struct cw_fixture *f, const struct cw_fixture_event *ev);
    /* Region r produced a ready set and the fixture took it, before anything in
     * it is persisted: every decision is seen here, including writes whose
     * commit a crash will prevent. */
    void (*ready)(void *ctx, struct cw_fixture *f, unsigned r, const struct cw_ready *rd);
    /* After every step, once the invariants of the regions passed: the
     * driver's own checks across regions (e.g. Raft's election safety). Return
     * false with a description in why to stop the run (CW_FIXTURE_FAIL_CHECK). */
    bool (*check)(void *ctx, struct cw_fixture *f, char *why, size_t why_len);
    /* Region r's group commit completed: its records are durable; its
     * messages leave and its replies are delivered right after. */
    void (*committed)(void *ctx, struct cw_fixture *f, unsigned r);
    /* A reply of region r reaches its client. */
    void (*reply)(void *ctx, struct cw_fixture *f, unsigned r, const struct cw_reply *rep);
    /* A message is about to be given to region `to` (decoded, with encoded
     * frames). Not called for messages that are dropped. */
    void (*deliver)(void *ctx, struct cw_fixture *f, unsigned from, unsigned to,
                    const struct cw_msg *m);
};

/* Which regions are checked after a step. */
enum cw_fixture_check {
    /* Every region that is up (the default). */
    CW_FIXTURE_CHECK_EVERY_REGION = 0,
    /* Only the regions the step gave an input to (or started). A node changes
     * only through its inputs, so a region not given one is exactly as it was
     * at its last passing check: the result is the same unless something
     * outside the node writes its memory (which ASan watches). Cheaper by
     * about the number of regions; for long runs. */
    CW_FIXTURE_CHECK_CHANGED = 1,
};

struct cw_fixture_config {
    uint64_t seed;
    unsigned n_regions; /* 1..CW_REGIONS_MAX */
    /* Every region's replica configuration starts as a copy of this one, with
     * its own region id; buckets are copied. Change one region's before it
     * starts with cw_fixture_replica_config. */
    struct cw_replica_config replica;
    /* Strong buckets (used when a bucket is strong): every region's node gets
     * a copy; the node sets the Raft ids and generator. */
    struct cw_strong_config strong;
    enum cw_fixture_frames frames;
    uint64_t start_us; /* now at creation */
    uint64_t tick_us;  /* period of automatic ticks (cw_fixture_start_ticks); 0: none */
    /* Group commit delay, drawn per commit in [min, max]; max 0: synchronous. */
    uint64_t commit_min_us, commit_max_us;
    /* Links schedule no deliveries; the driver moves messages itself. */
    bool manual_delivery;
    /* Keep a copy of every reply, for cw_fixture_reply (tests). */
    bool keep_replies;
    /* The store is the store of record: every node gets a reader (core/reader.h)
     * over its region's store, overlaid with the records decided but not yet
     * committed (what the core has advanced past), so it may drop key states
     * and outbox bodies beyond its cache budgets and read them back. */
    bool store_of_record;
    enum cw_fixture_check check;
    struct cw_fixture_hooks hooks;
};

enum cw_fixture_fail {
    CW_FIXTURE_OK = 0,
    CW_FIXTURE_FAIL_INVARIANT, /* cw_node_check_invariants returned false */
    CW_FIXTURE_FAIL_DECODE,    /* a frame on a link did not decode (or to another sender) */
    CW_FIXTURE_FAIL_ENCODE,    /* a node's message could not be encoded */
    CW_FIXTURE_FAIL_CONTRACT,  /* a node's effect broke the driving contract (bad address) */
    CW_FIXTURE_FAIL_STORE,     /* a persist record the store refuses */
    CW_FIXTURE_FAIL_RESTORE,   /* the node refused what its store holds */
    CW_FIXTURE_FAIL_NOMEM,
    CW_FIXTURE_FAIL_CHECK, /* the driver's check hook returned false */
};

struct cw_fixture_failure {
    enum cw_fixture_fail kind;
    uint64_t seed;
    struct cw_fixture_event event; /* the step during which it happened */
    unsigned region;               /* the region at fault */
    char why[512];                 /* the invariant's (or decoder's) description */
    /* One line for people: seed, step, region, why. */
    char text[1024];
};

/* A record as the store holds it: KEY (key, data) or OUTBOX (ts, data). */
struct cw_fixture_blob {
    uint64_t ts;
    uint32_t key_len, len;
    uint8_t *key, *data;
};

/* A region's durable store. Owned by the fixture; read-only to callers. */
struct cw_fixture_store {
    struct cw_fixture_blob *keys; /* in key order */
    size_t n_keys, cap_keys;
    struct cw_fixture_blob *outbox; /* in stamp order */
    size_t n_outbox, cap_outbox;
    uint8_t *meta; /* NULL until the first META record */
    uint32_t meta_len;
    uint64_t commits, records;
    uint64_t key_deletes; /* KEY records without data applied */
    /* Strong buckets: Raft entries by index (ts), the hard state and the last
     * snapshot record, as src/store keeps them in raft.db. */
    struct cw_fixture_blob *raft_log;
    size_t n_raft_log, cap_raft_log;
    uint8_t *raft_hs, *raft_snap;
    uint32_t raft_hs_len, raft_snap_len;
};

/* The effects of the last ready set a region produced (zero when its last
 * input produced none), counted by kind. */
struct cw_fixture_effects {
    size_t key, outbox_put, outbox_del, meta, msgs, replies;
};

struct cw_fixture_stats {
    uint64_t sent;       /* messages (copied) or frames (encoded) put on links */
    uint64_t dropped;    /* lost: cut, drop_ppm, receiver down, cw_fixture_drop */
    uint64_t duplicated; /* extra copies made by dup_ppm or cw_fixture_duplicate */
    uint64_t delivered;
    uint64_t frame_bytes; /* encoded bytes put on links */
    uint64_t steps;
    uint64_t invariant_checks;
};

/* NULL when cfg is invalid (n_regions) or memory is short. Regions start down. */
struct cw_fixture *cw_fixture_create(const struct cw_fixture_config *cfg);
void cw_fixture_destroy(struct cw_fixture **f);

/* ---------------------------------------------------------------- setup */

/* Region r's replica configuration, used at its every start (its buckets are
 * ignored: every node is created from the fixture's copy, cw_fixture_buckets). */
struct cw_replica_config *cw_fixture_replica_config(struct cw_fixture *f, unsigned r);
/* The fixture's copy of the buckets, from which nodes are created. */
struct cw_bucket_policy *cw_fixture_buckets(struct cw_fixture *f);
/* The fixture's generator: a driver that draws from it shares the one seed. */
struct cw_rng *cw_fixture_rng(struct cw_fixture *f);
/* Link from -> to: one-way delay and the bound of the jitter added to it. */
void cw_fixture_set_link(struct cw_fixture *f, unsigned from, unsigned to, uint64_t delay_us,
                         uint64_t jitter_us);
/* Every link: per-frame drop and duplicate probabilities, per million (0: no
 * draw is made). */
void cw_fixture_set_loss(struct cw_fixture *f, uint32_t drop_ppm, uint32_t dup_ppm);
void cw_fixture_set_clock_offset(struct cw_fixture *f, unsigned r, int64_t offset_us);
/* Schedules region r's first tick at `at`; it then ticks every tick_us, up or
 * down (a region that is down skips its ticks). */
bool cw_fixture_start_ticks(struct cw_fixture *f, unsigned r, uint64_t at);

/* ---------------------------------------------------------------- running */

/* Schedules a driver event (ev's time, type and seq are set here). */
bool cw_fixture_schedule(struct cw_fixture *f, uint64_t at, const struct cw_fixture_event *ev);
/* Runs the next event. False when there is none or the run has stopped. */
bool cw_fixture_step(struct cw_fixture *f);
/* Runs every event due at or before t, then sets now to t (if later). False
 * when the run stopped. */
bool cw_fixture_run_until(struct cw_fixture *f, uint64_t t);
bool cw_fixture_advance(struct cw_fixture *f, uint64_t us);
uint64_t cw_fixture_now(const struct cw_fixture *f);
/* The time an input of region r happens at. */
struct cw_now cw_fixture_now_of(const struct cw_fixture *f, unsigned r);
/* The step that ran last (or is running). */
const struct cw_fixture_event *cw_fixture_last_event(const struct cw_fixture *f);
/* NULL while the run has not stopped. */
const struct cw_fixture_failure *cw_fixture_failure(const struct cw_fixture *f);

/* ---------------------------------------------------------------- inputs */

/* Client requests to region r at now. False when r is down or the run stopped.
 * The reply arrives through hooks.reply (and the reply log) after r commits. */
bool cw_fixture_put(struct cw_fixture *f, unsigned r, const struct cw_put_req *req);
bool cw_fixture_get(struct cw_fixture *f, unsigned r, const struct cw_get_req *req);
/* A message given to region r directly, not through a link (crafted input). */
bool cw_fixture_recv(struct cw_fixture *f, unsigned r, const struct cw_msg *m);
bool cw_fixture_tick(struct cw_fixture *f, unsigned r);
/* Completes r's pending group commit now (nothing when none is pending). */
bool cw_fixture_commit(struct cw_fixture *f, unsigned r);

/* Links, by hand (manual_delivery; also allowed otherwise). */
size_t cw_fixture_link_len(const struct cw_fixture *f, unsigned from, unsigned to);
/* The i-th message queued on from -> to (0 is the head), decoded when frames
 * are encoded; NULL past the end. */
const struct cw_msg *cw_fixture_link_peek(struct cw_fixture *f, unsigned from, unsigned to,
                                          size_t i);
/* Delivers the head of from -> to now (a drop when `to` is down or the link is
 * cut). Returns the message type, or 0 when nothing was delivered. */
int cw_fixture_deliver(struct cw_fixture *f, unsigned from, unsigned to);
bool cw_fixture_drop(struct cw_fixture *f, unsigned from, unsigned to);
/* Puts a copy of the head right behind it (a transport that duplicates). */
bool cw_fixture_duplicate(struct cw_fixture *f, unsigned from, unsigned to);
/* Puts raw bytes on from -> to as one frame (encoded mode): for testing that a
 * frame that does not decode stops the run. */
bool cw_fixture_send_frame(struct cw_fixture *f, unsigned from, unsigned to, const uint8_t *frame,
                           size_t len);

/* ---------------------------------------------------------------- faults */

/* Creates region r's node and restores it from its store. */
bool cw_fixture_start(struct cw_fixture *f, unsigned r);
/* Destroys region r's node: what it has not committed is lost. */
bool cw_fixture_crash(struct cw_fixture *f, unsigned r);
void cw_fixture_cut(struct cw_fixture *f, unsigned from, unsigned to);
void cw_fixture_heal(struct cw_fixture *f, unsigned from, unsigned to);
bool cw_fixture_is_cut(const struct cw_fixture *f, unsigned from, unsigned to);
/* Moves region r's wall clock (real_us) by delta; mono_us is untouched. */
void cw_fixture_clock_jump(struct cw_fixture *f, unsigned r, int64_t delta_us);
/* Writes one record into region r's store as if committed (tests: a corrupt
 * record the next start must restore). False when the store refuses it. */
bool cw_fixture_store_inject(struct cw_fixture *f, unsigned r, const struct cw_persist *p);

/* ---------------------------------------------------------------- observation */

unsigned cw_fixture_n_regions(const struct cw_fixture *f);
uint64_t cw_fixture_seed(const struct cw_fixture *f);
enum cw_fixture_frames cw_fixture_frames(const struct cw_fixture *f);
bool cw_fixture_up(const struct cw_fixture *f, unsigned r);
/* NULL when r is down. */
struct cw_node *cw_fixture_node(struct cw_fixture *f, unsigned r);
const struct cw_replica *cw_fixture_replica(const struct cw_fixture *f, unsigned r);
const struct cw_fixture_store *cw_fixture_store(const struct cw_fixture *f, unsigned r);
/* Persist records decided but not yet committed (a crash now loses them). */
size_t cw_fixture_pending(const struct cw_fixture *f, unsigned r);
const struct cw_fixture_effects *cw_fixture_effects(const struct cw_fixture *f, unsigned r);
/* The first kept reply of region r to req_id (keep_replies), or NULL. */
const struct cw_reply *cw_fixture_reply(const struct cw_fixture *f, unsigned r, uint64_t req_id);
const struct cw_fixture_stats *cw_fixture_stats(const struct cw_fixture *f);
/* "deliver", "tick", ... or the driver's name. */
const char *cw_fixture_event_name(const struct cw_fixture_event *ev);

#endif
