/*
 * fuzz_wire_peer.c - cw_wire_decode_peer on arbitrary bytes (replication frames
 * from another region). Properties: no crash, leak or sanitizer report; a
 * frame that decodes re-encodes, and the re-encoding decodes to the same
 * message (so the decoder accepts nothing the encoder cannot express).
 */
#include <string.h>

#include <causeway/error.h>

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

static bool msg_equal(const struct cw_msg *a, const struct cw_msg *b)
{
    if (a->type != b->type || a->from != b->from || a->to != b->to ||
        memcmp(&a->applied, &b->applied, sizeof(a->applied)) != 0 ||
        memcmp(&a->received, &b->received, sizeof(a->received)) != 0 || a->clock != b->clock ||
        a->stream_end != b->stream_end || a->stream_sent != b->stream_sent ||
        a->resend_after != b->resend_after || a->n_records != b->n_records)
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
        FUZZ_CHECK(m.n_records == 0 && m.records == NULL);
        return 0;
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
