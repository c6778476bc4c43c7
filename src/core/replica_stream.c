/*
 * replica_stream.c - the replication stream: records in chain order, the
 * dependency buffer and causal delivery, heartbeats, resend requests and the
 * outbox sent to each peer.
 */
#include "core/replica_int.h"

#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "core/cw_assert.h"
#include "core/hist.h"

/* ------------------------------------------------------- remote records */

static bool head_ready(struct cw_replica *r, unsigned o)
{
    struct origin_in *in = &r->in[o];
    const struct cw_record *h = rp_recq_at(&in->q, 0);
    if (h->consistency == CW_EVENTUAL || r->cfg.force_eventual)
        return true;
    /* Index: only look again once what the head waited for has arrived. */
    struct cw_vclock vis;
    rp_visible(r, &vis);
    if (in->wait_ts && vis.ts[in->wait_region] < in->wait_ts)
        return false;
    unsigned k;
    uint64_t t;
    if (cw_vc_first_unmet(&vis, &h->deps, r->cfg.n_regions, &k, &t)) {
        in->wait_region = k;
        in->wait_ts = t;
        return false;
    }
    in->wait_ts = 0;
    return true;
}

/* Applies the head of o's buffer. False when the key could not be read from the
 * store: the head stays, and the next input or tick tries again. */
static bool apply_head(struct cw_replica *r, unsigned o, struct cw_now now)
{
    struct origin_in *in = &r->in[o];
    struct cw_record *h = rp_recq_at(&in->q, 0);
    int rc;
    struct cw_keyentry *e = rp_key_get(r, h->key, h->key_len, true, &rc);
    if (e == NULL)
        return false;
    bool changed;
    uint64_t before = rp_entry_bytes(e);
    if (cw_keystate_apply(&e->state, (enum cw_conflict)h->conflict, &h->version, 0, &changed) !=
        CW_OK)
        rp_oom();
    rp_key_resized(r, before, e);
    if (changed)
        rp_emit_key(r, e); /* an empty state persists as a deletion of the key */
    if (e->state.n == 0)
        rp_remove_key(r, e);
    else if (changed)
        rp_note_tombstones(r, e);
    uint64_t ts = h->version.dot.ts;
    /* Chain order: the head continues what was applied from o. */
    CW_ASSERT(h->prev_ts == in->chain);
    CW_ASSERT(r->buffered > 0);
    /* V[o] moves past a record only by applying it (a heartbeat advances it only
     * once every record of o is applied), so the head is always ahead of it. */
    CW_ASSERT(ts > r->applied.ts[o]);
    r->applied.ts[o] = ts;
    in->chain = ts;
    cw_hlc_observe(&r->hlc, ts);
    r->meta_dirty = true;
    r->stats.remote_applied++;
    /* Visibility latency: this region's physical time at apply minus the origin's
     * physical time at commit (the stamp's physical part). Skewed clocks can make
     * it negative; it is then counted as 0. */
    uint64_t origin_us = cw_hlc_to_us(ts);
    cw_hist_add(&r->visibility[o], now.real_us > origin_us ? now.real_us - origin_us : 0);
    rp_recq_pop(&in->q);
    r->buffered--;
    return true;
}

/* Applies every buffered record that has become applicable, in any order that
 * respects each origin's chain; cascades until nothing more can go. */
void rp_drain(struct cw_replica *r, struct cw_now now)
{
    bool progress = true;
    while (progress) {
        progress = false;
        for (unsigned o = 0; o < r->cfg.n_regions; o++) {
            while (r->in[o].q.n && head_ready(r, o) && apply_head(r, o, now))
                progress = true;
        }
    }
}

static void send_nack(struct cw_replica *r, unsigned o, struct cw_now now)
{
    struct origin_in *in = &r->in[o];
    if (in->nack_at_us && now.mono_us < in->nack_at_us + r->cfg.nack_retry_us)
        return;
    in->nack_at_us = now.mono_us ? now.mono_us : 1;
    struct cw_msg *m = rp_msg_slot(r, o, CW_MSG_NACK);
    m->resend_after = in->received;
    r->stats.nacks_sent++;
}

static bool record_valid(struct cw_replica *r, struct cw_now now, unsigned from,
                         const struct cw_record *rec)
{
    if (cw_record_check(rec, from, r->cfg.n_regions) != NULL)
        return false;
    if (!rp_stamp_plausible(r, now, rec->version.dot.ts)) {
        r->stats.stamps_refused++;
        return false;
    }
    return true;
}

static void recv_records(struct cw_replica *r, struct cw_now now, const struct cw_msg *m)
{
    unsigned o = m->from;
    struct origin_in *in = &r->in[o];
    for (uint32_t i = 0; i < m->n_records; i++) {
        const struct cw_record *rec = &m->records[i];
        if (!record_valid(r, now, o, rec)) {
            r->stats.errors++;
            return;
        }
        if (rec->version.dot.ts <= in->received) {
            r->stats.remote_duplicates++;
            continue;
        }
        if (rec->prev_ts != in->received) {
            r->stats.remote_gaps++;
            send_nack(r, o, now);
            return;
        }
        /* Next in the chain, yet at or below what o's heartbeat already let V[o]
         * reach: o promised every later record would exceed that clock. Only a
         * peer that lost its persisted clock, or a forged frame, sends this;
         * applying it would move V backwards (found by fuzz_node_peer). */
        if (rec->version.dot.ts <= r->applied.ts[o]) {
            r->stats.errors++;
            return;
        }
        /* A full buffer still admits a record that applies at once: the causally
         * earliest missing write is always such a record, so a full buffer can
         * never wedge replication. */
        if (r->buffered >= r->cfg.dep_buffer_max ||
            rp_buffered_bytes(r) + rp_record_bytes(rec) > r->cfg.dep_buffer_bytes_max) {
            bool direct = in->q.n == 0 && (rec->consistency == CW_EVENTUAL ||
                                           r->cfg.force_eventual || rp_covers(r, &rec->deps));
            if (!direct) {
                r->stats.buffer_full_drops++;
                return;
            }
        }
        struct cw_record *slot = rp_recq_push_slot(&in->q);
        if (slot == NULL || cw_record_copy(slot, rec) != CW_OK)
            rp_oom();
        rp_recq_commit(&in->q);
        r->buffered++;
        /* Past the bound only by records admitted to apply at once (one per
         * origin, and only while a store read fails can one stay). */
        CW_ASSERT(r->buffered <= r->cfg.dep_buffer_max + r->cfg.n_regions);
        in->received = rec->version.dot.ts;
        in->nack_at_us = 0;
        in->owed++;
        if (in->q.n == 1)
            in->wait_ts = 0;
        rp_drain(r, now);
    }
}

/* A sender may have only window_records records in flight before it hears an
 * acknowledgement. When this region has nothing of its own to send back, waiting
 * for the next periodic heartbeat would cap a one-way stream at one window per
 * heartbeat period, so half a window of new records earns an immediate ack. */
static void ack_if_owed(struct cw_replica *r, unsigned o)
{
    uint32_t threshold = r->cfg.window_records / 2 ? r->cfg.window_records / 2 : 1;
    if (r->in[o].owed >= threshold)
        rp_send_heartbeat(r, o, r->hlc.last);
}

static void recv_heartbeat(struct cw_replica *r, struct cw_now now, const struct cw_msg *m)
{
    unsigned o = m->from;
    struct origin_in *in = &r->in[o];
    if (!rp_stamp_plausible(r, now, m->clock) || !rp_stamp_plausible(r, now, m->stream_end)) {
        r->stats.stamps_refused++;
        return;
    }
    cw_hlc_observe(&r->hlc, m->clock);
    /* o cannot resend its records up to stream_base: every region that kept its
     * disk applied them, so lacking some means o was rebuilt (replica_snap.c)
     * and they were lost with its disk; skip to it rather than ask for them
     * forever. Only once nothing of o waits here. */
    if (m->stream_base > in->received && m->stream_base <= m->stream_end && in->q.n == 0 &&
        rp_stamp_plausible(r, now, m->stream_base)) {
        in->received = in->chain = m->stream_base;
        if (r->applied.ts[o] < m->stream_base)
            r->applied.ts[o] = m->stream_base;
        in->nack_at_us = 0;
        r->meta_dirty = true;
        r->stats.stream_skips++;
        rp_drain(r, now);
    }
    if (m->stream_sent > in->received) {
        r->stats.remote_gaps++;
        send_nack(r, o, now);
        return;
    }
    /* Everything o issued is here and applied, and o promises every later record
     * exceeds clock: o's entry of V may move up to clock even while o is idle. */
    if (m->stream_end == in->received && in->q.n == 0 && m->clock > r->applied.ts[o]) {
        CW_ASSERT(m->clock > r->applied.ts[o]); /* V never goes backwards */
        r->applied.ts[o] = m->clock;
        r->meta_dirty = true;
        rp_drain(r, now);
    }
}

void rp_flush_stream(struct cw_replica *r, unsigned p)
{
    struct peer_out *po = &r->out[p];
    if (!po->known)
        return;
    size_t acked = rp_recq_after(&r->outbox, po->received.ts[r->cfg.region]);
    size_t next = rp_recq_after(&r->outbox, po->sent_upto);
    /* In flight on this link: sent, not yet acknowledged; bounded in records
     * (window_records) and in bytes (inflight_bytes_max, at least one record). */
    uint64_t inflight = 0;
    for (size_t i = acked; i < next && i < r->outbox.n; i++)
        inflight += rp_record_bytes(rp_recq_at(&r->outbox, i));
    while (next < r->outbox.n && next - acked < r->cfg.window_records &&
           (next == acked || inflight < r->cfg.inflight_bytes_max)) {
        size_t n = r->outbox.n - next;
        if (n > r->cfg.batch_records_max)
            n = r->cfg.batch_records_max;
        if (n > r->cfg.window_records - (next - acked))
            n = r->cfg.window_records - (next - acked);
        /* Keep a message well inside the transport's frame bound: cut the batch
         * by bytes too, but always carry at least one record. */
        size_t bytes = 0;
        for (size_t i = 0; i < n; i++) {
            const struct cw_record *rec = rp_recq_at(&r->outbox, next + i);
            bytes += rec->key_len + rec->version.value_len;
            bool over_batch = i > 0 && bytes > r->cfg.batch_bytes_max;
            bool over_flight =
                next + i > acked && inflight + rp_record_bytes(rec) > r->cfg.inflight_bytes_max;
            if (over_batch || over_flight) {
                n = i;
                break;
            }
            inflight += rp_record_bytes(rec);
        }
        if (n == 0)
            break; /* the link is full in bytes until an acknowledgement */
        struct cw_msg *m = rp_msg_slot(r, p, CW_MSG_RECORDS);
        m->records = calloc(n, sizeof(*m->records));
        if (m->records == NULL)
            rp_oom();
        bool stalled = false;
        for (size_t i = 0; i < n; i++) {
            /* A body dropped from memory is read back from the store. */
            if (rp_outbox_body(r, rp_recq_at(&r->outbox, next + i), &m->records[i]) != CW_OK) {
                stalled = true; /* counted; the next flush tries again */
                break;
            }
            m->n_records++;
        }
        if (m->n_records == 0)
            break; /* the message still carries the acknowledgement */
        next += m->n_records;
        po->sent_upto = rp_recq_at(&r->outbox, next - 1)->version.dot.ts;
        CW_ASSERT(next - acked <= r->cfg.window_records); /* the window holds */
        if (stalled)
            break;
    }
}

void rp_flush_all(struct cw_replica *r)
{
    for (unsigned p = 0; p < r->cfg.n_regions; p++)
        if (p != r->cfg.region)
            rp_flush_stream(r, p);
}

/* Drops outbox records every peer has applied (and durably: acks carry only
 * persisted state). */
void rp_collect_outbox(struct cw_replica *r)
{
    uint64_t stable = rp_stable_self(r);
    while (r->outbox.n && rp_recq_at(&r->outbox, 0)->version.dot.ts <= stable) {
        rp_emit_outbox(r, CW_PERSIST_OUTBOX_DEL, rp_recq_at(&r->outbox, 0));
        rp_outbox_pop(r);
    }
}

void cw_replica_recv(struct cw_replica *r, struct cw_now now, const struct cw_msg *m)
{
    RP_INPUT(r);
    r->now_us = now.mono_us;
    unsigned p = m->from;
    if (p >= r->cfg.n_regions || p == r->cfg.region || m->to != r->cfg.region) {
        r->stats.errors++;
        return;
    }
    if (rp_snap_recv(r, now, m))
        return; /* state transfer, or this region is rebuilding */
    struct peer_out *po = &r->out[p];
    cw_vc_join(&po->applied, &m->applied);
    po->received = m->received;
    uint64_t peer_has = m->received.ts[r->cfg.region];
    /* A peer cannot hold more of this region's stream than exists; a claim past
     * its end (forged, or this region lost acknowledged writes under nosync)
     * would mark later records as sent (found by fuzz_node_peer). */
    if (peer_has > r->stream_end) {
        r->stats.errors++;
        peer_has = r->stream_end;
        po->received.ts[r->cfg.region] = peer_has;
    }
    if (!po->known || peer_has > po->sent_upto) {
        po->known = true;
        po->sent_upto = peer_has;
    }
    switch (m->type) {
    case CW_MSG_RECORDS:
        recv_records(r, now, m);
        ack_if_owed(r, p);
        break;
    case CW_MSG_HEARTBEAT:
        recv_heartbeat(r, now, m);
        break;
    case CW_MSG_NACK:
        r->stats.nacks_received++;
        if (m->resend_after < po->sent_upto) {
            size_t from = rp_recq_after(&r->outbox, m->resend_after);
            size_t upto = rp_recq_after(&r->outbox, po->sent_upto);
            r->stats.resent_records += upto - from;
            po->sent_upto = m->resend_after;
        }
        break;
    default:
        r->stats.errors++;
        return;
    }
    rp_collect_outbox(r);
    rp_flush_stream(r, p);
    rp_check_waiting(r, now, false);
}
