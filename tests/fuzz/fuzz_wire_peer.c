/*
 * fuzz_wire_peer.c - cw_wire_decode_peer on arbitrary bytes (replication frames
 * from another region). Properties: no crash, leak or sanitizer report; a
 * frame that decodes re-encodes, and the re-encoding decodes to the same
 * message (so the decoder accepts nothing the encoder cannot express). Raft
 * frames (PEER_RAFT) are held to the same property and to their bounds.
 */
#include <string.h>

#include <causeway/error.h>

#include "core/raft.h"
#include "fuzz.h"
#include "wire/wire.h"

static bool version_equal(const struct cw_version *a, const struct cw_version *b)
{
    return a->dot.origin == b->dot.origin && a->dot.ts == b->dot.ts &&
           a->tombstone == b->tombstone && memcmp(&a->kctx, &b->kctx, sizeof(a->kctx)) == 0 &&
           a->value_len == b->value_len &&
           (a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0);
}

static bool record_equal(const struct cw_record *a, const struct cw_record *b)
{
    return a->prev_ts == b->prev_ts && a->consistency == b->consistency &&
           a->conflict == b->conflict && memcmp(&a->deps, &b->deps, sizeof(a->deps)) == 0 &&
           a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0 &&
           version_equal(&a->version, &b->version);
}

static bool raft_equal(const struct cw_raft_msg *a, const struct cw_raft_msg *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->type != b->type || a->from != b->from || a->to != b->to || a->flags != b->flags ||
        a->term != b->term || a->log_term != b->log_term || a->index != b->index ||
        a->commit != b->commit || a->reject != b->reject || a->reject_hint != b->reject_hint ||
        a->ctx != b->ctx || a->n_entries != b->n_entries || a->snap_len != b->snap_len ||
        (a->snap_len && memcmp(a->snap, b->snap, a->snap_len) != 0))
        return false;
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct cw_raft_entry *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type || x->len != y->len ||
            (x->len && memcmp(x->data, y->data, x->len) != 0))
            return false;
    }
    return true;
}

static bool msg_equal(const struct cw_msg *a, const struct cw_msg *b)
{
    if (a->type != b->type || a->from != b->from || a->to != b->to ||
        memcmp(&a->applied, &b->applied, sizeof(a->applied)) != 0 ||
        memcmp(&a->received, &b->received, sizeof(a->received)) != 0 || a->clock != b->clock ||
        a->stream_end != b->stream_end || a->stream_sent != b->stream_sent ||
        a->resend_after != b->resend_after || a->n_records != b->n_records ||
        !raft_equal(a->raft, b->raft))
        return false;
    for (uint32_t i = 0; i < a->n_records; i++)
        if (!record_equal(&a->records[i], &b->records[i]))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Tighter than the defaults, so that a fuzzer's input can reach every
     * bound without megabytes of input. */
    struct cw_wire_limits lim = {
        .frame_bytes_max = 1u << 20,
        .batch_bytes_max = 1u << 20,
        .records_max = 64,
        .value_bytes_max = 4096,
    };
    struct cw_msg m;
    int rc = cw_wire_decode_peer(data, size, &lim, &m);
    FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE || rc == CW_ETOOBIG || rc == CW_EVERSION ||
               rc == CW_ENOMEM);
    if (rc != CW_OK) {
        FUZZ_CHECK(m.n_records == 0 && m.records == NULL && m.raft == NULL);
        return 0;
    }
    /* A Raft frame's message names the envelope's regions and keeps the wire
     * bounds; cw_raft_msg_check (the node's) must not crash on it, whatever
     * it decides. */
    FUZZ_CHECK((m.type == CW_MSG_RAFT) == (m.raft != NULL));
    if (m.raft != NULL) {
        FUZZ_CHECK(m.raft->from == m.from && m.raft->to == m.to);
        FUZZ_CHECK(m.raft->n_entries <= CW_RAFT_MSG_ENTRIES_MAX);
        FUZZ_CHECK(m.raft->snap_len <= CW_RAFT_SNAP_BYTES_MAX);
        (void)cw_raft_msg_check(m.raft, CW_REGIONS_MAX);
    }
    uint8_t *buf;
    size_t len;
    FUZZ_CHECK(cw_wire_encode_peer(&m, &buf, &len) == CW_OK);
    struct cw_msg again;
    /* The re-encoding may compress differently, hence the default limits. */
    FUZZ_CHECK(cw_wire_decode_peer(buf, len, NULL, &again) == CW_OK);
    FUZZ_CHECK(msg_equal(&m, &again));
    cw_msg_free(&again);
    free(buf);
    cw_msg_free(&m);
    return 0;
}
