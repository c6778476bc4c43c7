/*
 * replica_check.c - the replica's invariants, checked from outside after every
 * event by the simulator and the test fixture (cw_replica_check_invariants).
 * Cheap per-step contracts are CW_ASSERTs where the state changes; this file
 * holds the ones that need a walk over the whole state.
 */
#include "core/replica_int.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/keymap.h"

static bool fail(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *why, size_t why_len, const char *fmt, ...)
{
    if (why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool check_keys(const struct cw_replica *r, char *why, size_t why_len)
{
    size_t slot = 0, flagged = 0, n = 0;
    uint64_t bytes = 0;
    for (struct cw_keyentry *e = cw_keymap_next(&r->keys, &slot, NULL); e != NULL;
         e = cw_keymap_next(&r->keys, &slot, e)) {
        const struct cw_keystate *s = &e->state;
        n++;
        bytes += rp_entry_bytes(e);
        bool has_tomb = false;
        if (s->n == 0)
            return fail(why, why_len, "key %.*s is stored with no versions", (int)e->key_len,
                        (const char *)e->key);
        for (uint32_t i = 0; i < s->n; i++) {
            const struct cw_version *v = &s->v[i];
            if (i > 0 && cw_dot_cmp(s->v[i - 1].dot, v->dot) >= 0)
                return fail(why, why_len, "key %.*s: versions out of (ts, origin) order",
                            (int)e->key_len, (const char *)e->key);
            if (cw_dot_covered(&s->replaced, v->dot))
                return fail(why, why_len, "key %.*s: a replaced version is still stored",
                            (int)e->key_len, (const char *)e->key);
            if (v->dot.ts > r->hlc.last)
                return fail(why, why_len, "key %.*s: a version stamped above the clock",
                            (int)e->key_len, (const char *)e->key);
            if (v->tombstone && v->value_len != 0)
                return fail(why, why_len, "key %.*s: a tombstone with a value", (int)e->key_len,
                            (const char *)e->key);
            has_tomb |= v->tombstone;
        }
        bool is_flagged = (e->flags & KE_HAS_TOMB) != 0;
        if (has_tomb && !is_flagged)
            return fail(why, why_len, "key %.*s holds a tombstone but is not on the list",
                        (int)e->key_len, (const char *)e->key);
        flagged += is_flagged;
    }
    if (bytes != r->key_bytes)
        return fail(why, why_len, "key cache counts %llu bytes, holds %llu",
                    (unsigned long long)r->key_bytes, (unsigned long long)bytes);
    if (n != r->keys.count)
        return fail(why, why_len, "key map counts %zu keys, holds %zu", r->keys.count, n);
    if (flagged != r->tomb_keys.n)
        return fail(why, why_len, "tombstone list holds %zu keys, %zu are flagged", r->tomb_keys.n,
                    flagged);
    struct cw_keyentry *const *tk = r->tomb_keys.v;
    for (size_t i = 0; i < r->tomb_keys.n; i++)
        if (cw_keymap_find(&r->keys, tk[i]->key, tk[i]->key_len) != tk[i])
            return fail(why, why_len, "tombstone list entry %zu is not in the key map", i);
    return true;
}

/* Whose chain q is, for a failure's description: a peer's buffer or, with
 * origin < 0, the outbox. Formatted only on failure: this runs after every event. */
static bool chain_fail(char *why, size_t why_len, int origin, size_t i, const char *problem)
{
    if (origin < 0)
        return fail(why, why_len, "outbox: record %zu %s", i, problem);
    return fail(why, why_len, "buffer of region %d: record %zu %s", origin, i, problem);
}

/* Walks q once (this runs after every event, over every buffered and outbox
 * record): each record continues the chain from prev and, when own >= 0 (the
 * outbox), is this region's own; the queue's byte count matches its records;
 * *body (may be NULL) gets the key and value bytes of the bodies in memory. */
static bool check_chain(const struct recq *q, uint64_t prev, char *why, size_t why_len, int origin,
                        int own, uint64_t *body)
{
    uint64_t bytes = 0, in_memory = 0;
    if (body != NULL)
        *body = 0;
    if (q->n == 0)
        return q->bytes == 0 ? true : chain_fail(why, why_len, origin, 0, "counted but absent");
    const struct cw_record *v = rp_recq_at(q, 0);
    for (size_t i = 0; i < q->n; i++) {
        const struct cw_record *rec = &v[i];
        bytes += rp_record_bytes(rec);
        if (rec->key != NULL)
            in_memory += rec->key_len + rec->version.value_len;
        if (rec->prev_ts != prev)
            return chain_fail(why, why_len, origin, i, "does not continue the chain");
        if (rec->version.dot.ts <= prev)
            return chain_fail(why, why_len, origin, i, "is not after its predecessor");
        if (own >= 0 && rec->version.dot.origin != (unsigned)own)
            return fail(why, why_len, "outbox record %zu is not this region's own", i);
        prev = rec->version.dot.ts;
    }
    if (bytes != q->bytes)
        return fail(why, why_len, "%s %d: counts %llu bytes, holds %llu",
                    origin < 0 ? "outbox of region" : "buffer of region", origin < 0 ? own : origin,
                    (unsigned long long)q->bytes, (unsigned long long)bytes);
    if (body != NULL)
        *body = in_memory;
    return true;
}

static bool check_streams(const struct cw_replica *r, char *why, size_t why_len)
{
    size_t buffered = 0;
    for (unsigned o = 0; o < CW_REGIONS_MAX; o++) {
        const struct origin_in *in = &r->in[o];
        buffered += in->q.n;
        if (o >= r->cfg.n_regions || o == r->cfg.region) {
            if (in->q.n)
                return fail(why, why_len, "records buffered from region %u", o);
            continue;
        }
        if (!check_chain(&in->q, in->chain, why, why_len, (int)o, -1, NULL))
            return false;
        uint64_t last = in->q.n ? rp_recq_at(&in->q, in->q.n - 1)->version.dot.ts : in->chain;
        if (in->received != last)
            return fail(why, why_len, "region %u: received is not the end of its chain", o);
        if (r->applied.ts[o] < in->chain)
            return fail(why, why_len, "region %u: applied is behind the chain", o);
        if (in->q.n && rp_recq_at(&in->q, 0)->version.dot.ts <= r->applied.ts[o])
            return fail(why, why_len, "region %u: a buffered record is already applied", o);
    }
    if (buffered != r->buffered)
        return fail(why, why_len, "dependency buffer counts %zu, holds %zu", r->buffered, buffered);
    /* Past the bound only by records admitted to apply at once whose key could
     * not be read (one per origin). */
    if (r->buffered > r->cfg.dep_buffer_max + r->cfg.n_regions)
        return fail(why, why_len, "dependency buffer over its bound");
    if (r->outbox.n > r->cfg.outbox_max)
        return fail(why, why_len, "outbox over its bound");
    uint64_t body = 0;
    if (r->outbox.n) {
        uint64_t prev = rp_recq_at(&r->outbox, 0)->prev_ts;
        if (!check_chain(&r->outbox, prev, why, why_len, -1, (int)r->cfg.region, &body))
            return false;
        if (rp_recq_at(&r->outbox, r->outbox.n - 1)->version.dot.ts != r->stream_end)
            return fail(why, why_len, "outbox does not end at stream_end");
    }
    if (body != r->body_bytes)
        return fail(why, why_len, "outbox bodies count %llu bytes, hold %llu",
                    (unsigned long long)r->body_bytes, (unsigned long long)body);
    if (r->stream_end > r->hlc.last)
        return fail(why, why_len, "stream end above the clock");
    for (unsigned p = 0; p < r->cfg.n_regions; p++)
        if (r->out[p].known && r->out[p].sent_upto > r->stream_end)
            return fail(why, why_len, "sent to region %u past the stream end", p);
    if (r->waiting.n > r->cfg.waiting_max)
        return fail(why, why_len, "waiting requests over their bound");
    return true;
}

bool cw_replica_check_invariants(struct cw_replica *r, char *why, size_t why_len)
{
    if (why_len > 0)
        why[0] = '\0';
    if (!cw_vc_dominates(&r->applied, &r->checked_applied))
        return fail(why, why_len, "the applied vector went backwards");
    r->checked_applied = r->applied;
    return check_keys(r, why, why_len) && check_streams(r, why, why_len);
}
