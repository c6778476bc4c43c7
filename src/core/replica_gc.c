/*
 * replica_gc.c - time and stability: the periodic tick (heartbeats, time-outs),
 * causal stability, and the collection of acknowledged outbox records and
 * causally stable tombstones.
 */
#include "core/replica_int.h"

#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "core/cw_assert.h"
#include "core/hist.h"

/* ---------------------------------------------------------------- writes */

uint64_t rp_stable_self(const struct cw_replica *r)
{
    uint64_t m = UINT64_MAX;
    for (unsigned p = 0; p < r->cfg.n_regions; p++)
        if (p != r->cfg.region && r->out[p].applied.ts[r->cfg.region] < m)
            m = r->out[p].applied.ts[r->cfg.region];
    return m;
}

/* ------------------------------------------------------------------ time */

/*
 * Tombstones are collected once every region's writes up to the tombstone's
 * stamp have been applied here (and every later write of this region exceeds
 * it). Then no write that the tombstone could hide, replace, or be compared
 * against can still arrive: any later arrival has a greater stamp, so under LWW
 * it wins anyway, and under siblings the tombstone was never shown to readers.
 */
static uint64_t tombstone_horizon(const struct cw_replica *r)
{
    uint64_t m = r->hlc.last;
    for (unsigned p = 0; p < r->cfg.n_regions; p++)
        if (p != r->cfg.region && r->applied.ts[p] < m)
            m = r->applied.ts[p];
    /* ... and only once it is causally stable: every region has acknowledged
     * applying everything up to it. Otherwise a region that collected it could
     * answer "not found" (leaving no trace in the reader's context) to a session
     * that then moves to a region still showing the deleted version. */
    for (unsigned p = 0; p < r->cfg.n_regions; p++) {
        if (p == r->cfg.region)
            continue;
        for (unsigned o = 0; o < r->cfg.n_regions; o++)
            if (r->out[p].applied.ts[o] < m)
                m = r->out[p].applied.ts[o];
    }
    return m;
}

void rp_collect_tombstones(struct cw_replica *r)
{
    uint64_t horizon = tombstone_horizon(r);
    struct cw_keyentry **tk = r->tomb_keys.v;
    size_t out = 0;
    for (size_t i = 0; i < r->tomb_keys.n; i++) {
        struct cw_keyentry *e = tk[i];
        uint32_t before = e->state.n;
        uint64_t before_bytes = rp_entry_bytes(e);
        if (cw_keystate_collect(&e->state, horizon)) {
            r->stats.tombstones_collected += before - e->state.n;
            rp_emit_key(r, e);
        }
        rp_key_resized(r, before_bytes, e);
        if (e->state.n == 0) {
            e->flags &= ~KE_HAS_TOMB; /* this loop drops it from the list */
            rp_remove_key(r, e);
            continue;
        }
        if (cw_keystate_live(&e->state) == e->state.n) {
            e->flags &= ~KE_HAS_TOMB;
            continue;
        }
        tk[out++] = e;
    }
    r->tomb_keys.n = out;
}

void cw_replica_tick(struct cw_replica *r, struct cw_now now)
{
    RP_INPUT(r);
    r->now_us = now.mono_us;
    if (r->rb.phase != RB_DONE) {
        rp_snap_tick(r, now); /* rebuilding: nothing else runs yet */
        return;
    }
    /* A head blocked on this region's own entry is released by the clock moving,
     * which no message announces. */
    if (r->buffered)
        rp_drain(r, now);
    rp_check_waiting(r, now, true);
    r->outbox_fresh = false; /* every stream is flushed below */
    r->last_flush_us = now.mono_us ? now.mono_us : 1;
    if (r->last_heartbeat_us && now.mono_us < r->last_heartbeat_us + r->cfg.heartbeat_us) {
        rp_flush_all(r);
        return;
    }
    r->last_heartbeat_us = now.mono_us ? now.mono_us : 1;
    /* The heartbeat's clock is persisted (meta) before the message leaves, so a
     * restarted node never issues a stamp at or below one it promised. */
    uint64_t clock = cw_hlc_now(&r->hlc, now.real_us);
    r->meta_dirty = true;
    for (unsigned p = 0; p < r->cfg.n_regions; p++) {
        if (p == r->cfg.region)
            continue;
        rp_flush_stream(r, p);
        rp_send_heartbeat(r, p, clock);
    }
    rp_collect_tombstones(r);
}
