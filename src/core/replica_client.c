/*
 * replica_client.c - local requests: validation, puts and gets, and the
 * requests that wait until the region has applied their session's context.
 */
#include "core/replica_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "core/cw_assert.h"
#include "core/hist.h"

static uint8_t *make_full_key(const char *bucket, const uint8_t *key, uint32_t key_len,
                              uint32_t *out_len)
{
    size_t blen = strlen(bucket);
    uint8_t *k = malloc(blen + 1 + key_len);
    if (k == NULL)
        return NULL;
    memcpy(k, bucket, blen);
    k[blen] = '/';
    memcpy(k + blen + 1, key, key_len);
    *out_len = (uint32_t)(blen + 1 + key_len);
    return k;
}

static int check_bucket(const struct cw_replica *r, const char *bucket,
                        const struct cw_bucket_policy **out)
{
    int rc = cw_validate_bucket(bucket);
    if (rc != CW_OK)
        return rc;
    *out = cw_replica_bucket(r, bucket);
    if (*out == NULL)
        return CW_EUNKNOWNBUCKET;
    if ((*out)->consistency == CW_STRONG)
        return CW_ESTRONG;
    return CW_OK;
}

/* A context naming a region this cluster does not have can never be satisfied,
 * and a record carrying one would be refused by every peer and block the stream:
 * such requests are refused up front. */
static bool context_in_range(const struct cw_replica *r, const struct cw_vclock *v)
{
    for (unsigned k = r->cfg.n_regions; k < CW_REGIONS_MAX; k++)
        if (v->ts[k])
            return false;
    return true;
}

/* A write's stamp must exceed every entry of its context. An entry far ahead of
 * this region's clock (a forged or corrupt token) would drag the HLC with it, up
 * to wrapping around, so such a context is refused. */
static bool context_plausible(const struct cw_replica *r, struct cw_now now,
                              const struct cw_vclock *v)
{
    for (unsigned k = 0; k < CW_REGIONS_MAX; k++)
        if (!rp_stamp_plausible(r, now, v->ts[k]))
            return false;
    return true;
}

/* ----------------------------------------------------------------- reads */

/* Shows a key for a detail string: at most 48 bytes, non-printing bytes as '?'. */
static void show_key(char *out, size_t out_len, const char *bucket, const uint8_t *key,
                     uint32_t key_len)
{
    size_t o = 0;
    for (; bucket[o] && o + 2 < out_len; o++)
        out[o] = bucket[o];
    out[o++] = '/';
    for (uint32_t i = 0; i < key_len && i < 48 && o + 4 < out_len; i++)
        out[o++] = key[i] >= 0x20 && key[i] < 0x7f ? (char)key[i] : '?';
    if (key_len > 48 && o + 4 < out_len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < out_len ? o : out_len - 1] = '\0';
}

static void set_detail(char *detail, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fills a CW_DETAIL_MAX buffer; a longer text is cut. */
static void set_detail(char *detail, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, CW_DETAIL_MAX, fmt, ap);
    va_end(ap);
}

/* Validates a request up front; on error fills detail (CW_DETAIL_MAX bytes). */
static int check_request(const struct cw_replica *r, struct cw_now now, const char *bucket,
                         const uint8_t *key, uint32_t key_len, uint32_t value_len,
                         const struct cw_vclock *context, const struct cw_vclock *kctx,
                         const struct cw_bucket_policy **b, char *detail)
{
    detail[0] = '\0';
    int rc = check_bucket(r, bucket, b);
    if (rc != CW_OK) {
        set_detail(detail, "bucket '%.64s' %s", bucket,
                   rc == CW_EUNKNOWNBUCKET ? "is not in this region's config"
                   : rc == CW_ESTRONG      ? "is strong"
                                           : "is not a valid name");
        return rc;
    }
    if (cw_validate_key(key, key_len) != CW_OK) {
        set_detail(detail, "key of %u bytes in bucket '%s': keys are 1-%d bytes", key_len, bucket,
                   CW_KEY_BYTES_MAX);
        return CW_EKEY;
    }
    char shown[96];
    show_key(shown, sizeof(shown), bucket, key, key_len);
    if (value_len > r->cfg.max_value_bytes) {
        set_detail(detail, "%s: value of %u bytes is over max_value_bytes %u", shown, value_len,
                   r->cfg.max_value_bytes);
        return CW_EVALUE;
    }
    const struct cw_vclock *vs[2] = {context, kctx};
    for (int i = 0; i < 2; i++) {
        if (vs[i] == NULL)
            continue;
        if (!context_in_range(r, vs[i])) {
            set_detail(detail, "%s: %s names a region this cluster of %u lacks", shown,
                       i ? "key context" : "context", r->cfg.n_regions);
            return CW_ECONTEXT;
        }
        if (kctx != NULL && !context_plausible(r, now, vs[i])) {
            set_detail(detail,
                       "%s: %s holds a stamp more than %llu ms ahead of this region's physical "
                       "time (clock skew?)",
                       shown, i ? "key context" : "context",
                       (unsigned long long)(r->cfg.context_ahead_max_us / 1000));
            return CW_ECONTEXT;
        }
    }
    return CW_OK;
}

static void serve_read(struct cw_replica *r, uint64_t req_id, const uint8_t *key, uint32_t key_len,
                       enum cw_conflict conflict)
{
    int rc;
    const struct cw_keyentry *e = rp_key_get(r, key, key_len, false, &rc);
    if (e == NULL && rc != CW_ENOTFOUND) {
        rp_reply_fail(r, CW_REPLY_GET, req_id, rc, "reading %.*s from the store failed: %s",
                      (int)(key_len < 64 ? key_len : 64), (const char *)key, cw_strerror(rc));
        return;
    }
    struct cw_reply *p = rp_reply_slot(r, CW_REPLY_GET, req_id, CW_OK);
    p->conflict = conflict;
    if (e == NULL)
        return;
    if (cw_keystate_copy(&p->state, &e->state) != CW_OK)
        rp_oom();
    cw_keystate_context(&e->state, &p->kctx);
    for (uint32_t i = 0; i < e->state.n; i++)
        cw_vc_join_dot(&p->seen, e->state.v[i].dot.origin, e->state.v[i].dot.ts);
}

static void do_put(struct cw_replica *r, struct cw_now now, const struct cw_put_req *req,
                   const struct cw_bucket_policy *b);

/* Does a request of bucket b have to wait until V covers the session context?
 * Causal buckets do, reads and writes alike: a write applied here before its
 * dependencies would be visible here before them. Eventual buckets do not. */
static bool must_wait(const struct cw_replica *r, const struct cw_bucket_policy *b,
                      const struct cw_vclock *context)
{
    if (b->consistency == CW_EVENTUAL || r->cfg.force_eventual)
        return false;
    return !rp_covers(r, context);
}

/* Runs every waiting request whose context is now covered, in arrival order, and
 * fails the rest whose deadline passed (expire false: only run). */
void rp_check_waiting(struct cw_replica *r, struct cw_now now, bool expire)
{
    struct waiting *wv = r->waiting.v;
    size_t out = 0;
    for (size_t i = 0; i < r->waiting.n; i++) {
        struct waiting *x = &wv[i];
        const struct cw_bucket_policy *b = cw_replica_bucket(r, x->bucket);
        if (rp_covers(r, &x->context)) {
            if (x->is_put) {
                struct cw_put_req req = {
                    .req_id = x->req_id,
                    .bucket = x->bucket,
                    .key = x->key,
                    .key_len = x->key_len,
                    .value = x->value,
                    .value_len = x->value_len,
                    .tombstone = x->tombstone,
                    .context = x->context,
                    .kctx = x->kctx,
                };
                do_put(r, now, &req, b);
            } else {
                uint32_t klen = 0;
                uint8_t *key = make_full_key(x->bucket, x->key, x->key_len, &klen);
                if (key == NULL)
                    rp_oom();
                serve_read(r, x->req_id, key, klen, b->conflict);
                free(key);
            }
            rp_free_waiting(x);
        } else if (expire && now.mono_us >= x->deadline_us) {
            struct cw_vclock vis;
            rp_visible(r, &vis);
            unsigned k = 0;
            uint64_t t = 0;
            cw_vc_first_unmet(&vis, &x->context, r->cfg.n_regions, &k, &t);
            uint64_t need_us = cw_hlc_to_us(t), have_us = cw_hlc_to_us(vis.ts[k]);
            if (vis.ts[k] == 0)
                rp_reply_fail(r, x->is_put ? CW_REPLY_PUT : CW_REPLY_GET, x->req_id, CW_ENOTREADY,
                              "region %u has not been heard from yet; waited %llu ms", k,
                              (unsigned long long)(r->cfg.wait_us / 1000));
            else
                rp_reply_fail(
                    r, x->is_put ? CW_REPLY_PUT : CW_REPLY_GET, x->req_id, CW_ENOTREADY,
                    "region %u is %llu ms behind this session's context after %llu ms", k,
                    (unsigned long long)((need_us > have_us ? need_us - have_us : 0) / 1000),
                    (unsigned long long)(r->cfg.wait_us / 1000));
            r->stats.reads_timed_out++;
            rp_free_waiting(x);
        } else {
            wv[out++] = *x;
        }
    }
    r->waiting.n = out;
}

/* Parks a request until the region has applied the session's context. The copy
 * owns its key and value. */
static void park(struct cw_replica *r, struct cw_now now, bool is_put, uint64_t req_id,
                 const char *bucket, const uint8_t *key, uint32_t key_len, const uint8_t *value,
                 uint32_t value_len, bool tombstone, const struct cw_vclock *context,
                 const struct cw_vclock *kctx)
{
    if (r->waiting.n >= r->cfg.waiting_max) {
        rp_reply_fail(r, is_put ? CW_REPLY_PUT : CW_REPLY_GET, req_id, CW_EFULL,
                      "%u requests already wait for their context (waiting_max)",
                      r->cfg.waiting_max);
        return;
    }
    struct waiting w = {
        .is_put = is_put,
        .req_id = req_id,
        .deadline_us = now.mono_us + r->cfg.wait_us,
        .context = *context,
        .key_len = key_len,
        .key = malloc(key_len ? key_len : 1),
        .value_len = value_len,
        .value = value_len ? malloc(value_len) : NULL,
        .tombstone = tombstone,
    };
    if (kctx)
        w.kctx = *kctx;
    if (w.key == NULL || (value_len && w.value == NULL))
        rp_oom();
    memcpy(w.bucket, bucket, strlen(bucket) + 1); /* validated: at most 64 bytes */
    memcpy(w.key, key, key_len);
    if (value_len)
        memcpy(w.value, value, value_len);
    CW_ASSERT(r->waiting.n < r->cfg.waiting_max);
    if (rp_vec_push(&r->waiting, &w, sizeof(w)) != CW_OK)
        rp_oom();
    r->stats.reads_waited++;
}

void cw_replica_get(struct cw_replica *r, struct cw_now now, const struct cw_get_req *req)
{
    RP_INPUT(r);
    r->now_us = now.mono_us;
    const struct cw_bucket_policy *b = NULL;
    char detail[CW_DETAIL_MAX];
    int rc = check_request(r, now, req->bucket, req->key, req->key_len, 0, &req->context, NULL, &b,
                           detail);
    if (rc != CW_OK) {
        rp_reply_fail(r, CW_REPLY_GET, req->req_id, rc, "%s", detail);
        return;
    }
    r->stats.gets++;
    if (must_wait(r, b, &req->context)) {
        park(r, now, false, req->req_id, req->bucket, req->key, req->key_len, NULL, 0, false,
             &req->context, NULL);
        return;
    }
    uint32_t klen = 0;
    uint8_t *key = make_full_key(req->bucket, req->key, req->key_len, &klen);
    if (key == NULL)
        rp_oom();
    serve_read(r, req->req_id, key, klen, b->conflict);
    free(key);
}

void cw_replica_put(struct cw_replica *r, struct cw_now now, const struct cw_put_req *req)
{
    RP_INPUT(r);
    r->now_us = now.mono_us;
    const struct cw_bucket_policy *b = NULL;
    char detail[CW_DETAIL_MAX];
    int rc =
        check_request(r, now, req->bucket, req->key, req->key_len,
                      req->tombstone ? 0 : req->value_len, &req->context, &req->kctx, &b, detail);
    if (rc != CW_OK) {
        rp_reply_fail(r, CW_REPLY_PUT, req->req_id, rc, "%s", detail);
        return;
    }
    /* The write will depend on what its key context names as well (do_put), so it
     * waits for both: a client need not have joined them itself. */
    struct cw_vclock need = req->context;
    cw_vc_join(&need, &req->kctx);
    if (must_wait(r, b, &need)) {
        park(r, now, true, req->req_id, req->bucket, req->key, req->key_len, req->value,
             req->tombstone ? 0 : req->value_len, req->tombstone, &need, &req->kctx);
        return;
    }
    do_put(r, now, req, b);
}

static void do_put(struct cw_replica *r, struct cw_now now, const struct cw_put_req *req,
                   const struct cw_bucket_policy *b)
{
    int rc = CW_OK;
    if (r->outbox.n >= r->cfg.outbox_max) {
        rp_reply_fail(r, CW_REPLY_PUT, req->req_id, CW_EFULL,
                      "outbox holds %u records not yet applied everywhere (outbox_max); "
                      "a region is cut off or behind",
                      r->cfg.outbox_max);
        return;
    }
    uint64_t cost = sizeof(struct cw_record) + CW_FULL_KEY_MAX +
                    (req->tombstone ? 0 : (uint64_t)req->value_len);
    if (r->outbox.n > 0 && r->outbox.bytes + cost > r->cfg.outbox_bytes_max) {
        rp_reply_fail(r, CW_REPLY_PUT, req->req_id, CW_EFULL,
                      "outbox holds %llu bytes not yet applied everywhere (outbox_bytes_max "
                      "%llu); a region is cut off or behind",
                      (unsigned long long)r->outbox.bytes,
                      (unsigned long long)r->cfg.outbox_bytes_max);
        return;
    }
    uint32_t klen = 0;
    uint8_t *key = make_full_key(req->bucket, req->key, req->key_len, &klen);
    if (key == NULL)
        rp_oom();

    /* The new stamp must exceed everything the writer has seen, so LWW never lets
     * an older write win over one that causally follows it. */
    for (unsigned o = 0; o < CW_REGIONS_MAX; o++) {
        cw_hlc_observe(&r->hlc, req->context.ts[o]);
        cw_hlc_observe(&r->hlc, req->kctx.ts[o]);
    }
    struct cw_version w = {
        .dot = {(uint8_t)r->cfg.region, 0},
        .kctx = req->kctx,
        .tombstone = req->tombstone,
        .value_len = req->tombstone ? 0 : req->value_len,
        .value = req->tombstone ? NULL : (uint8_t *)req->value,
    };
    if (b->conflict == CW_CONFLICT_LWW)
        cw_vc_zero(&w.kctx);
    struct cw_keyentry *e = rp_key_get(r, key, klen, true, &rc);
    if (e == NULL) {
        char shown[96];
        show_key(shown, sizeof(shown), req->bucket, req->key, req->key_len);
        rp_reply_fail(r, CW_REPLY_PUT, req->req_id, rc,
                      "reading %s from the store failed (%s); nothing was written", shown,
                      cw_strerror(rc));
        free(key);
        return;
    }
    /* Close the key context: whatever a covered version had replaced, this write
     * replaces too (a hand-made --context token may name only the version). */
    for (uint32_t i = 0; i < e->state.n; i++)
        if (cw_dot_covered(&w.kctx, e->state.v[i].dot))
            cw_vc_join(&w.kctx, &e->state.v[i].kctx);
    uint32_t limit = b->conflict == CW_CONFLICT_SIBLINGS ? b->max_siblings : 0;
    if (limit && cw_keystate_count_after(&e->state, b->conflict, &w) > limit) {
        char shown[96];
        show_key(shown, sizeof(shown), req->bucket, req->key, req->key_len);
        rp_reply_fail(r, CW_REPLY_PUT, req->req_id, CW_ESIBLINGS,
                      "%s would hold more than max_siblings %u versions: read it and write "
                      "back a merge with its context",
                      shown, limit);
        if (e->state.n == 0)
            rp_remove_key(r, e);
        free(key);
        return;
    }
    w.dot.ts = cw_hlc_now(&r->hlc, now.real_us);
    bool changed;
    uint64_t before = rp_entry_bytes(e);
    rc = cw_keystate_apply(&e->state, b->conflict, &w, limit, &changed);
    rp_key_resized(r, before, e);
    CW_ASSERT(rc == CW_OK || rc == CW_ENOMEM);
    if (rc != CW_OK)
        rp_oom();
    CW_ASSERT(changed);
    rp_note_tombstones(r, e);
    rp_emit_key(r, e);

    struct cw_record *rec = rp_recq_push_slot(&r->outbox);
    if (rec == NULL)
        rp_oom();
    *rec = (struct cw_record){
        .prev_ts = r->stream_end,
        .consistency = (uint8_t)b->consistency,
        .conflict = (uint8_t)b->conflict,
        .deps = req->context,
        .key_len = klen,
        .key = key,
        .version = w,
    };
    rec->version.value = NULL;
    if (w.value_len) {
        rec->version.value = malloc(w.value_len);
        if (rec->version.value == NULL)
            rp_oom();
        memcpy(rec->version.value, w.value, w.value_len);
    }
    /* The write replaces what its key context names, so it depends on it too:
     * every region applies the replaced versions before this one. */
    cw_vc_join(&rec->deps, &w.kctx);
    /* Dependencies name real records only: the entry for region k becomes the
     * last record of k applied here. That is exact (this region waited until V
     * covered the context, so every record of k at or below the entry is
     * applied), and it matters: a hand-made entry between two records of k would
     * make receivers wait for a V[k] that only a heartbeat could give, and
     * heartbeats cannot advance V[k] while records wait. */
    for (unsigned k = 0; k < r->cfg.n_regions; k++) {
        uint64_t last = k == r->cfg.region ? r->stream_end : r->in[k].chain;
        if (rec->deps.ts[k] > last)
            rec->deps.ts[k] = last;
    }
    rp_recq_commit(&r->outbox);
    r->body_bytes += rec->key_len + rec->version.value_len;
    rp_emit_outbox(r, CW_PERSIST_OUTBOX_PUT, rec);
    /* The stream is in stamp order and this region's entry of V only grows. */
    CW_ASSERT(w.dot.ts > r->stream_end);
    CW_ASSERT(w.dot.ts > r->applied.ts[r->cfg.region]);
    CW_ASSERT(r->outbox.n <= r->cfg.outbox_max);
    r->stream_end = w.dot.ts;
    r->applied.ts[r->cfg.region] = w.dot.ts;
    r->meta_dirty = true;
    r->outbox_fresh = true;
    if (req->tombstone)
        r->stats.deletes++;
    else
        r->stats.puts++;

    struct cw_reply *p = rp_reply_slot(r, CW_REPLY_PUT, req->req_id, CW_OK);
    p->dot = w.dot;
    p->conflict = b->conflict;
    p->kctx_valid = e->state.n == 1;
    if (p->kctx_valid)
        cw_keystate_context(&e->state, &p->kctx);
    cw_vc_join_dot(&p->seen, w.dot.origin, w.dot.ts);
    if (r->cfg.n_regions == 1) {
        /* Alone, a record is applied everywhere the moment it is durable. */
        rp_emit_outbox(r, CW_PERSIST_OUTBOX_DEL, rec);
        rp_outbox_pop(r);
    }
}
