/*
 * replica_snap.c - state transfer: rebuilding a region whose disk was lost.
 *
 * A region started with cfg.rebuild holds nothing. It copies a consistent state
 * from a live peer (the donor) and then joins the streams from that point:
 *
 * 1. Announce. Every heartbeat period it sends every peer a HEARTBEAT flagged
 *    CW_MSGF_REBUILDING whose acknowledgement is its empty state. A peer takes
 *    that acknowledgement as it is (not joined with what the region's previous
 *    incarnation acknowledged), so from then on its stability vector, and thus
 *    its outbox and tombstone collection, is held where the rebuilding region
 *    stands; and it answers with a heartbeat flagged CW_MSGF_REBUILD_ACK. The
 *    answers also tell the rebuilding region how much of its own old stream
 *    every peer holds (received[self]) and the highest clock they saw from it
 *    (applied[self]).
 * 2. Copy. Once every peer has answered (so no peer can still collect a record
 *    the rebuilt region will need), it asks the donor for key states in byte
 *    order: SNAP_REQUEST{after}. The donor answers SNAP_CHUNK{after, keys,
 *    next, done}; the first chunk also carries the donor's applied vector,
 *    chain positions and clock as of its last advance (everything persisted).
 *    Every key state the donor copies, in this chunk or later, contains at
 *    least that state: states only grow, and a key state later than the
 *    snapshot holds writes the stream will deliver again, which applying a
 *    version twice ignores (cw_keystate_apply is idempotent for a dot already
 *    stored or replaced). A lost request or chunk is asked again after
 *    nack_retry_us from the last key received (resumable); a duplicate chunk
 *    (its `after` is not what was asked) is ignored.
 * 3. Join. After the last chunk the region adopts the snapshot's V and chain
 *    positions (never more: V does not move past what the copied states
 *    contain), continues its own stream from the last of its old records any
 *    peer holds, with stamps above every stamp peers saw from it, and NACKs
 *    every peer from the snapshot's chain position. Every heartbeat carries
 *    stream_base, the point a region can still resend from (its outbox's first
 *    prev_ts, or its stream end): a peer holding less of its stream lost those
 *    records with the region's disk and skips to it instead of asking forever.
 *    For a region that never lost its disk no peer ever holds less (the outbox
 *    drops a record only once every peer applied it), so nothing is skipped.
 *
 * Donor side: with a reader (the daemon) keys are iterated from the store in
 * byte order (reader.next_key) and a key's in-memory state, newer than the
 * store's, replaces it; keys only in memory are new this round, so after the
 * snapshot, and the stream delivers them. Without a reader (the daemon, tests,
 * the simulator) every key is in memory: at a transfer's first request the
 * donor sorts a copy of its key names once (freed after the last chunk), and
 * each chunk walks on from `after` with the keys' current states.
 */
#include "core/replica_int.h"

#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

static int key_cmp(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl)
{
    uint32_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

void rp_snap_advanced(struct cw_replica *r)
{
    r->adv_valid = true;
    r->adv_applied = r->applied;
    r->adv_applied.ts[r->cfg.region] = r->hlc.last;
    for (unsigned o = 0; o < CW_REGIONS_MAX; o++)
        r->adv_chain.ts[o] = r->in[o].chain;
    r->adv_chain.ts[r->cfg.region] = r->stream_end;
    r->adv_clock = r->hlc.last;
}

bool cw_replica_rebuilding(const struct cw_replica *r)
{
    return r->rb.phase != RB_DONE;
}

const char *cw_replica_rebuild_phase(const struct cw_replica *r)
{
    switch (r->rb.phase) {
    case RB_ANNOUNCE:
        return "announcing";
    case RB_COPY:
        return "copying";
    default:
        return "";
    }
}

/* ------------------------------------------------------------ donor side */

/* A chunk is cut at this many bytes of keys, values and version overhead. */
static uint64_t state_bytes(uint32_t key_len, const struct cw_keystate *s)
{
    uint64_t b = key_len;
    for (uint32_t i = 0; i < s->n; i++)
        b += s->v[i].value_len + 32 + 10 * CW_REGIONS_MAX;
    return b;
}

static bool chunk_add(struct cw_msg *c, uint32_t cap, const uint8_t *key, uint32_t key_len,
                      const struct cw_keystate *s)
{
    struct cw_snapkey *k = &c->snapkeys[c->n_snapkeys];
    CW_ASSERT(c->n_snapkeys < cap);
    cw_keystate_init(&k->state);
    k->key = malloc(key_len ? key_len : 1);
    if (k->key == NULL || cw_keystate_copy(&k->state, s) != CW_OK)
        rp_oom();
    if (key_len)
        memcpy(k->key, key, key_len);
    k->key_len = key_len;
    c->n_snapkeys++;
    return true;
}

/* The donor's sorted copy of its key names, per rebuilding peer. */
static void cursor_free(struct snap_cursor *cur)
{
    for (size_t i = 0; i < cur->n; i++)
        free(cur->keys[i]);
    free(cur->keys);
    memset(cur, 0, sizeof(*cur));
}

void rp_snap_free(struct cw_replica *r)
{
    for (unsigned p = 0; p < CW_REGIONS_MAX; p++)
        cursor_free(&r->snap_cur[p]);
}

static int name_cmp(const void *a, const void *b)
{
    const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
    uint32_t xl, yl;
    memcpy(&xl, x, sizeof(xl));
    memcpy(&yl, y, sizeof(yl));
    return key_cmp(x + sizeof(xl), xl, y + sizeof(yl), yl);
}

/* Every key name in memory, sorted once per transfer (each name a uint32
 * length then its bytes). Keys created later are after the snapshot and come
 * with the stream; keys removed since are skipped. */
static void cursor_build(struct cw_replica *r, struct snap_cursor *cur)
{
    cursor_free(cur);
    cur->keys = malloc((r->keys.count ? r->keys.count : 1) * sizeof(*cur->keys));
    if (cur->keys == NULL)
        rp_oom();
    size_t slot = 0;
    for (struct cw_keyentry *e = cw_keymap_next(&r->keys, &slot, NULL); e != NULL;
         e = cw_keymap_next(&r->keys, &slot, e)) {
        uint8_t *k = malloc(sizeof(uint32_t) + e->key_len);
        if (k == NULL)
            rp_oom();
        memcpy(k, &e->key_len, sizeof(uint32_t));
        memcpy(k + sizeof(uint32_t), e->key, e->key_len);
        cur->keys[cur->n++] = k;
    }
    qsort(cur->keys, cur->n, sizeof(*cur->keys), name_cmp);
    cur->valid = true;
}

/* Without a reader: every key is in memory. */
static bool fill_from_memory(struct cw_replica *r, const struct cw_msg *m, struct cw_msg *c,
                             uint32_t cap)
{
    struct snap_cursor *cur = &r->snap_cur[m->from];
    if ((m->flags & CW_MSGF_SNAP_FIRST) || !cur->valid)
        cursor_build(r, cur); /* a new transfer, or this donor restarted */
    /* The first name after snap_after. */
    size_t lo = 0, hi = cur->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t ml;
        memcpy(&ml, cur->keys[mid], sizeof(ml));
        if (key_cmp(cur->keys[mid] + sizeof(ml), ml, m->snap_after, m->snap_after_len) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t bytes = 0;
    size_t i = lo;
    for (; i < cur->n && c->n_snapkeys < cap; i++) {
        uint32_t kl;
        memcpy(&kl, cur->keys[i], sizeof(kl));
        const uint8_t *k = cur->keys[i] + sizeof(kl);
        const struct cw_keyentry *e = cw_keymap_find(&r->keys, k, kl);
        if (e == NULL || e->state.n == 0)
            continue; /* removed since */
        uint64_t b = state_bytes(kl, &e->state);
        if (c->n_snapkeys > 0 && bytes + b > r->cfg.batch_bytes_max)
            break;
        bytes += b;
        chunk_add(c, cap, k, kl, &e->state);
    }
    bool done = i == cur->n;
    if (done)
        cursor_free(cur);
    return done;
}

/* With a reader: the store's keys in order, each replaced by its in-memory
 * state when it has one. CW_OK with *done, or the reader's error. */
static int fill_from_store(struct cw_replica *r, const struct cw_msg *m, struct cw_msg *c,
                           uint32_t cap, bool *done)
{
    uint8_t key[CW_FULL_KEY_MAX];
    uint32_t key_len = m->snap_after_len;
    if (key_len)
        memcpy(key, m->snap_after, key_len);
    uint64_t bytes = 0;
    *done = false;
    while (c->n_snapkeys < cap) {
        struct cw_keystate s;
        cw_keystate_init(&s);
        uint32_t got_len = 0;
        uint8_t got[CW_FULL_KEY_MAX];
        int rc = r->cfg.reader.next_key(r->cfg.reader.ctx, key, key_len, got, &got_len, &s);
        if (rc == CW_ENOTFOUND) {
            *done = true;
            return CW_OK;
        }
        if (rc != CW_OK) {
            r->stats.store_read_errors++;
            return rc;
        }
        if (got_len > CW_FULL_KEY_MAX || key_cmp(got, got_len, key, key_len) <= 0) {
            cw_keystate_free(&s);
            r->stats.store_read_errors++;
            return CW_ESTORE; /* the store must move forward */
        }
        const struct cw_keyentry *e = cw_keymap_find(&r->keys, got, got_len);
        const struct cw_keystate *use = e != NULL ? &e->state : &s;
        uint64_t b = state_bytes(got_len, use);
        if (c->n_snapkeys > 0 && bytes + b > r->cfg.batch_bytes_max) {
            cw_keystate_free(&s);
            return CW_OK;
        }
        if (use->n > 0) {
            bytes += b;
            chunk_add(c, cap, got, got_len, use);
        }
        cw_keystate_free(&s);
        memcpy(key, got, got_len);
        key_len = got_len;
    }
    return CW_OK;
}

static void serve_chunk(struct cw_replica *r, const struct cw_msg *m)
{
    unsigned p = m->from;
    if (m->snap_after_len > CW_FULL_KEY_MAX || (m->snap_after_len && m->snap_after == NULL) ||
        r->rb.phase != RB_DONE) {
        r->stats.errors++;
        return;
    }
    if (r->cfg.reader.key != NULL && r->cfg.reader.next_key == NULL) {
        r->stats.errors++; /* cannot list the store's keys */
        return;
    }
    uint32_t cap = r->cfg.snap_keys_max;
    struct cw_msg *c = rp_msg_slot(r, p, CW_MSG_SNAP_CHUNK);
    c->snapkeys = calloc(cap, sizeof(*c->snapkeys));
    c->snap_after = malloc(m->snap_after_len ? m->snap_after_len : 1);
    if (c->snapkeys == NULL || c->snap_after == NULL)
        rp_oom();
    if (m->snap_after_len)
        memcpy(c->snap_after, m->snap_after, m->snap_after_len);
    c->snap_after_len = m->snap_after_len;
    bool done;
    if (r->cfg.reader.key != NULL) {
        if (fill_from_store(r, m, c, cap, &done) != CW_OK) {
            /* Send what was read, not done: the requester asks on from there. */
            done = false;
        }
    } else {
        done = fill_from_memory(r, m, c, cap);
    }
    if (m->flags & CW_MSGF_SNAP_FIRST) {
        if (!r->adv_valid)
            rp_snap_advanced(r);
        c->flags |= CW_MSGF_SNAP_FIRST;
        c->snap_applied = r->adv_applied;
        c->snap_chain = r->adv_chain;
        c->snap_clock = r->adv_clock;
    }
    if (done)
        c->flags |= CW_MSGF_SNAP_DONE;
    const uint8_t *next = m->snap_after;
    uint32_t next_len = m->snap_after_len;
    if (c->n_snapkeys) {
        next = c->snapkeys[c->n_snapkeys - 1].key;
        next_len = c->snapkeys[c->n_snapkeys - 1].key_len;
    }
    c->snap_next = malloc(next_len ? next_len : 1);
    if (c->snap_next == NULL)
        rp_oom();
    if (next_len)
        memcpy(c->snap_next, next, next_len);
    c->snap_next_len = next_len;
    r->stats.snap_chunks_served++;
    r->stats.snap_keys_served += c->n_snapkeys;
}

/* ------------------------------------------------------- rebuilding side */

static void send_request(struct cw_replica *r, struct cw_now now)
{
    struct cw_msg *m = rp_msg_slot(r, r->cfg.rebuild_from, CW_MSG_SNAP_REQUEST);
    m->snap_after = malloc(r->rb.next_len ? r->rb.next_len : 1);
    if (m->snap_after == NULL)
        rp_oom();
    if (r->rb.next_len)
        memcpy(m->snap_after, r->rb.next, r->rb.next_len);
    m->snap_after_len = r->rb.next_len;
    if (!r->rb.started)
        m->flags |= CW_MSGF_SNAP_FIRST;
    r->rb.req_at_us = now.mono_us ? now.mono_us : 1;
}

static void announce(struct cw_replica *r)
{
    for (unsigned p = 0; p < r->cfg.n_regions; p++) {
        if (p == r->cfg.region)
            continue;
        rp_send_heartbeat(r, p, r->hlc.last);
        r->ready.msgs[r->ready.n_msgs - 1].flags |= CW_MSGF_REBUILDING;
    }
}

static uint32_t peers_mask(const struct cw_replica *r)
{
    uint32_t all = (r->cfg.n_regions >= 32 ? 0xffffffffu : (1u << r->cfg.n_regions) - 1);
    return all & ~(1u << r->cfg.region);
}

void rp_snap_tick(struct cw_replica *r, struct cw_now now)
{
    /* Keep every peer's view of this region's acknowledgement at its empty
     * state, and learn what they hold of its old stream. */
    if (!r->rb.announce_at_us || now.mono_us >= r->rb.announce_at_us + r->cfg.heartbeat_us) {
        r->rb.announce_at_us = now.mono_us ? now.mono_us : 1;
        announce(r);
    }
    if (r->rb.phase == RB_ANNOUNCE && (r->rb.acked & peers_mask(r)) == peers_mask(r)) {
        r->rb.phase = RB_COPY;
        send_request(r, now);
        return;
    }
    if (r->rb.phase == RB_COPY && now.mono_us >= r->rb.req_at_us + r->cfg.nack_retry_us)
        send_request(r, now); /* lost request or chunk: ask again from the last key */
}

static bool vc_sane(const struct cw_replica *r, struct cw_now now, const struct cw_vclock *v)
{
    for (unsigned o = 0; o < CW_REGIONS_MAX; o++) {
        if (o >= r->cfg.n_regions && v->ts[o] != 0)
            return false;
        if (!rp_stamp_plausible(r, now, v->ts[o]))
            return false;
    }
    return true;
}

static bool state_sane(const struct cw_replica *r, struct cw_now now, const struct cw_keystate *s)
{
    if (s->n == 0)
        return false;
    for (uint32_t i = 0; i < s->n; i++) {
        const struct cw_version *v = &s->v[i];
        if (v->dot.origin >= r->cfg.n_regions || v->dot.ts == 0 ||
            !rp_stamp_plausible(r, now, v->dot.ts) || !vc_sane(r, now, &v->kctx) ||
            (v->value_len && v->value == NULL) || (v->tombstone && v->value_len))
            return false;
        if (i > 0 && cw_dot_cmp(s->v[i - 1].dot, v->dot) >= 0)
            return false;
    }
    return vc_sane(r, now, &s->replaced);
}

static bool chunk_valid(const struct cw_replica *r, struct cw_now now, const struct cw_msg *m)
{
    if (m->n_snapkeys > CW_SNAP_KEYS_HARD_MAX || (m->n_snapkeys && m->snapkeys == NULL))
        return false;
    if (m->snap_next_len > CW_FULL_KEY_MAX || (m->snap_next_len && m->snap_next == NULL))
        return false;
    const uint8_t *prev = r->rb.next;
    uint32_t prev_len = r->rb.next_len;
    for (uint32_t i = 0; i < m->n_snapkeys; i++) {
        const struct cw_snapkey *k = &m->snapkeys[i];
        if (!cw_full_key_valid(k->key, k->key_len) ||
            key_cmp(k->key, k->key_len, prev, prev_len) <= 0 || !state_sane(r, now, &k->state))
            return false;
        prev = k->key;
        prev_len = k->key_len;
    }
    /* next is the last key sent (or after, for an empty chunk); an empty chunk
     * that is not the last would make no progress. */
    if (key_cmp(m->snap_next, m->snap_next_len, prev, prev_len) != 0)
        return false;
    if (m->n_snapkeys == 0 && !(m->flags & CW_MSGF_SNAP_DONE))
        return false;
    if ((m->flags & CW_MSGF_SNAP_FIRST) &&
        (!vc_sane(r, now, &m->snap_applied) || !vc_sane(r, now, &m->snap_chain) ||
         !rp_stamp_plausible(r, now, m->snap_clock)))
        return false;
    return true;
}

static void observe_own(struct cw_replica *r, struct cw_now now, const struct cw_msg *m)
{
    unsigned self = r->cfg.region;
    uint64_t held = m->received.ts[self], seen = m->applied.ts[self];
    if (rp_stamp_plausible(r, now, held) && held > r->rb.own_floor)
        r->rb.own_floor = held;
    if (rp_stamp_plausible(r, now, seen) && seen > r->rb.own_clock)
        r->rb.own_clock = seen;
    if (rp_stamp_plausible(r, now, m->clock))
        cw_hlc_observe(&r->hlc, m->clock);
}

static void finish(struct cw_replica *r, struct cw_now now)
{
    unsigned self = r->cfg.region;
    for (unsigned o = 0; o < r->cfg.n_regions; o++) {
        if (o == self)
            continue;
        r->applied.ts[o] = r->rb.applied.ts[o];
        r->in[o].received = r->in[o].chain = r->rb.chain.ts[o];
        r->in[o].nack_at_us = 0;
        r->in[o].wait_ts = 0;
    }
    /* This region's new stream continues from the last of its old records any
     * region holds, and its stamps exceed every stamp it issued before that
     * anyone saw: no new record collides with an old one. */
    uint64_t base = r->rb.chain.ts[self];
    if (r->rb.own_floor > base)
        base = r->rb.own_floor;
    cw_hlc_observe(&r->hlc, base);
    cw_hlc_observe(&r->hlc, r->rb.applied.ts[self]);
    cw_hlc_observe(&r->hlc, r->rb.own_clock);
    cw_hlc_observe(&r->hlc, r->rb.clock);
    r->stream_end = base;
    r->applied.ts[self] = base;
    r->rb.phase = RB_DONE;
    r->meta_dirty = true;
    /* Ask every peer to stream from the snapshot's position, and say where this
     * region's own stream restarts. */
    uint64_t clock = cw_hlc_now(&r->hlc, now.real_us);
    r->last_heartbeat_us = now.mono_us ? now.mono_us : 1;
    for (unsigned p = 0; p < r->cfg.n_regions; p++) {
        if (p == self)
            continue;
        rp_send_heartbeat(r, p, clock);
        struct cw_msg *n = rp_msg_slot(r, p, CW_MSG_NACK);
        n->resend_after = r->in[p].received;
        r->in[p].nack_at_us = now.mono_us ? now.mono_us : 1;
        r->stats.nacks_sent++;
    }
}

static void recv_chunk(struct cw_replica *r, struct cw_now now, const struct cw_msg *m)
{
    if (m->from != r->cfg.rebuild_from || r->rb.phase != RB_COPY)
        return; /* stray */
    bool first = (m->flags & CW_MSGF_SNAP_FIRST) != 0;
    if (first == r->rb.started || m->snap_after_len != r->rb.next_len ||
        (m->snap_after_len && memcmp(m->snap_after, r->rb.next, m->snap_after_len) != 0))
        return; /* a duplicate or an answer to an earlier request */
    if (!chunk_valid(r, now, m)) {
        r->stats.errors++;
        return;
    }
    if (first) {
        r->rb.started = true;
        r->rb.applied = m->snap_applied;
        r->rb.chain = m->snap_chain;
        r->rb.clock = m->snap_clock;
    }
    for (uint32_t i = 0; i < m->n_snapkeys; i++) {
        const struct cw_snapkey *k = &m->snapkeys[i];
        int rc;
        struct cw_keyentry *e = rp_key_get(r, k->key, k->key_len, true, &rc);
        if (e == NULL)
            return; /* a store read failed: the retry asks again from rb.next */
        uint64_t before = rp_entry_bytes(e);
        if (cw_keystate_copy(&e->state, &k->state) != CW_OK)
            rp_oom();
        rp_key_resized(r, before, e);
        for (uint32_t j = 0; j < e->state.n; j++)
            cw_hlc_observe(&r->hlc, e->state.v[j].dot.ts);
        rp_emit_key(r, e);
        rp_note_tombstones(r, e);
        memcpy(r->rb.next, k->key, k->key_len);
        r->rb.next_len = k->key_len;
        r->stats.snap_keys_copied++;
    }
    r->rb.req_at_us = 0;
    if (m->flags & CW_MSGF_SNAP_DONE)
        finish(r, now);
    else
        send_request(r, now);
}

bool rp_snap_recv(struct cw_replica *r, struct cw_now now, const struct cw_msg *m)
{
    unsigned p = m->from;
    if (r->rb.phase != RB_DONE) {
        /* Rebuilding: nothing of the stream applies yet. */
        observe_own(r, now, m);
        if (m->type == CW_MSG_HEARTBEAT && (m->flags & CW_MSGF_REBUILD_ACK))
            r->rb.acked |= 1u << p;
        if (m->type == CW_MSG_HEARTBEAT && (m->flags & CW_MSGF_REBUILDING)) {
            /* Two regions rebuilding at once: this one collects nothing yet, so
             * it can answer at once (else each would wait for the other). */
            rp_send_heartbeat(r, p, r->hlc.last);
            r->ready.msgs[r->ready.n_msgs - 1].flags |= CW_MSGF_REBUILD_ACK;
        } else if (m->type == CW_MSG_SNAP_CHUNK)
            recv_chunk(r, now, m);
        return true;
    }
    switch (m->type) {
    case CW_MSG_SNAP_REQUEST:
        serve_chunk(r, m);
        return true;
    case CW_MSG_SNAP_CHUNK:
        r->stats.errors++; /* not asked for */
        return true;
    default:
        break;
    }
    if (m->type == CW_MSG_HEARTBEAT && (m->flags & CW_MSGF_REBUILDING)) {
        /* p lost its state and is rebuilding: its acknowledgement restarts, so
         * it replaces (not joins) what its previous incarnation acknowledged;
         * collection here is held back to what p holds from now on. */
        struct peer_out *po = &r->out[p];
        po->applied = m->applied;
        po->received = m->received;
        if (po->received.ts[r->cfg.region] > r->stream_end)
            po->received.ts[r->cfg.region] = r->stream_end;
        rp_send_heartbeat(r, p, r->hlc.last);
        r->ready.msgs[r->ready.n_msgs - 1].flags |= CW_MSGF_REBUILD_ACK;
        return true;
    }
    return false;
}
