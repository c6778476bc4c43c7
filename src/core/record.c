/*
 * record.c - copy, free and structural validation of replicated records.
 */
#include "core/record.h"

#include "core/raft.h"

#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

void cw_record_free(struct cw_record *r)
{
    free(r->key);
    free(r->version.value);
    r->key = NULL;
    r->version.value = NULL;
}

int cw_record_copy(struct cw_record *dst, const struct cw_record *src)
{
    *dst = *src;
    dst->key = malloc(src->key_len ? src->key_len : 1);
    dst->version.value = NULL;
    if (dst->key == NULL)
        return CW_ENOMEM;
    memcpy(dst->key, src->key, src->key_len);
    if (src->version.value_len) {
        dst->version.value = malloc(src->version.value_len);
        if (dst->version.value == NULL) {
            free(dst->key);
            dst->key = NULL;
            return CW_ENOMEM;
        }
        memcpy(dst->version.value, src->version.value, src->version.value_len);
    }
    return CW_OK;
}

void cw_msg_free(struct cw_msg *m)
{
    for (uint32_t i = 0; i < m->n_records; i++)
        cw_record_free(&m->records[i]);
    free(m->records);
    m->records = NULL;
    m->n_records = 0;
    for (uint32_t i = 0; i < m->n_snapkeys; i++) {
        free(m->snapkeys[i].key);
        cw_keystate_free(&m->snapkeys[i].state);
    }
    free(m->snapkeys);
    m->snapkeys = NULL;
    m->n_snapkeys = 0;
    free(m->snap_after);
    free(m->snap_next);
    m->snap_after = m->snap_next = NULL;
    m->snap_after_len = m->snap_next_len = 0;
    if (m->raft != NULL) {
        cw_raft_msg_free(m->raft);
        free(m->raft);
        m->raft = NULL;
    }
}

static uint8_t *dup_bytes(const uint8_t *b, uint32_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d != NULL && n)
        memcpy(d, b, n);
    return d;
}

int cw_msg_copy(struct cw_msg *dst, const struct cw_msg *src)
{
    *dst = *src;
    dst->records = NULL;
    dst->n_records = 0;
    dst->snapkeys = NULL;
    dst->n_snapkeys = 0;
    dst->snap_after = dst->snap_next = NULL;
    dst->raft = NULL;
    if (src->raft != NULL) {
        dst->raft = calloc(1, sizeof(*dst->raft));
        if (dst->raft == NULL || cw_raft_msg_copy(dst->raft, src->raft) != CW_OK) {
            free(dst->raft);
            dst->raft = NULL;
            goto oom;
        }
    }
    if (src->snap_after != NULL) {
        dst->snap_after = dup_bytes(src->snap_after, src->snap_after_len);
        if (dst->snap_after == NULL)
            goto oom;
    }
    if (src->snap_next != NULL) {
        dst->snap_next = dup_bytes(src->snap_next, src->snap_next_len);
        if (dst->snap_next == NULL)
            goto oom;
    }
    if (src->n_snapkeys) {
        dst->snapkeys = calloc(src->n_snapkeys, sizeof(*dst->snapkeys));
        if (dst->snapkeys == NULL)
            goto oom;
        for (uint32_t i = 0; i < src->n_snapkeys; i++) {
            struct cw_snapkey *k = &dst->snapkeys[i];
            cw_keystate_init(&k->state);
            dst->n_snapkeys++;
            k->key_len = src->snapkeys[i].key_len;
            k->key = dup_bytes(src->snapkeys[i].key, k->key_len);
            if (k->key == NULL || cw_keystate_copy(&k->state, &src->snapkeys[i].state) != CW_OK)
                goto oom;
        }
    }
    if (src->n_records == 0)
        return CW_OK;
    dst->records = calloc(src->n_records, sizeof(*dst->records));
    if (dst->records == NULL)
        return CW_ENOMEM;
    for (uint32_t i = 0; i < src->n_records; i++) {
        if (cw_record_copy(&dst->records[i], &src->records[i]) != CW_OK) {
            cw_msg_free(dst);
            return CW_ENOMEM;
        }
        dst->n_records++;
    }
    return CW_OK;
oom:
    cw_msg_free(dst);
    return CW_ENOMEM;
}

static bool bucket_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int cw_validate_bucket(const char *bucket)
{
    size_t n = 0;
    for (; bucket[n]; n++)
        if (!bucket_char((uint8_t)bucket[n]) || n >= CW_BUCKET_NAME_MAX)
            return CW_EBUCKET;
    return n == 0 ? CW_EBUCKET : CW_OK;
}

int cw_validate_key(const uint8_t *key, uint32_t len)
{
    (void)key;
    return len == 0 || len > CW_KEY_BYTES_MAX ? CW_EKEY : CW_OK;
}

bool cw_full_key_valid(const uint8_t *k, uint32_t len)
{
    uint32_t slash = 0;
    while (slash < len && k[slash] != '/')
        slash++;
    if (slash == 0 || slash > CW_BUCKET_NAME_MAX || slash == len)
        return false;
    for (uint32_t i = 0; i < slash; i++)
        if (!bucket_char(k[i]))
            return false;
    return len - slash - 1 <= CW_KEY_BYTES_MAX;
}

const char *cw_record_check(const struct cw_record *rec, unsigned from, unsigned n_regions)
{
    uint64_t ts = rec->version.dot.ts;
    if (rec->version.dot.origin != from)
        return "origin is not the sender";
    if (ts <= rec->prev_ts)
        return "stamp not after prev_ts";
    if (rec->consistency > CW_EVENTUAL)
        return "unknown consistency";
    if (rec->conflict > CW_CONFLICT_SIBLINGS)
        return "unknown conflict mode";
    if (!cw_full_key_valid(rec->key, rec->key_len))
        return "bad key";
    /* max_value_bytes bounds local writes; a peer with another setting must not
     * stall its stream, so remote values are held to the hard bound only. */
    if (rec->version.value_len > CW_VALUE_HARD_MAX)
        return "value over the hard bound";
    if (rec->version.value_len > 0 && rec->version.value == NULL)
        return "value length without a value";
    for (unsigned k = n_regions; k < CW_REGIONS_MAX; k++)
        if (rec->deps.ts[k] || rec->version.kctx.ts[k])
            return "names a region outside the cluster";
    for (unsigned k = 0; k < CW_REGIONS_MAX; k++) {
        if (rec->deps.ts[k] >= ts)
            return "dependency at or after its own stamp";
        if (rec->version.kctx.ts[k] >= ts)
            return "key context at or after its own stamp";
    }
    return NULL;
}
