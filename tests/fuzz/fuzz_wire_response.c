/*
 * fuzz_wire_response.c - cw_wire_decode_response on arbitrary bytes (what a
 * client library receives). Properties: no crash, leak or sanitizer report; a
 * failed decode owns nothing; a response that decodes re-encodes to one that
 * decodes to the same response.
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

static bool response_equal(const struct cw_wire_response *a, const struct cw_wire_response *b)
{
    if (a->op != b->op || a->req_id != b->req_id || a->err != b->err ||
        strcmp(a->message, b->message) != 0 || a->origin != b->origin || a->ts != b->ts ||
        a->kctx_valid != b->kctx_valid || a->conflict != b->conflict ||
        memcmp(&a->kctx, &b->kctx, sizeof(a->kctx)) != 0 ||
        memcmp(&a->seen, &b->seen, sizeof(a->seen)) != 0 || a->n_versions != b->n_versions)
        return false;
    /* Decoded statuses are calloc'd and filled field by field, so padding and
     * unused name bytes are zero in both. */
    if ((a->status == NULL) != (b->status == NULL) ||
        (a->status && memcmp(a->status, b->status, sizeof(*a->status)) != 0))
        return false;
    for (uint32_t i = 0; i < a->n_versions; i++)
        if (!version_equal(&a->versions[i], &b->versions[i]))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_wire_limits lim;
    cw_wire_limits_default(&lim);
    lim.frame_bytes_max = 1u << 20;
    lim.value_bytes_max = 4096;
    struct cw_wire_response r;
    int rc = cw_wire_decode_response(data, size, &lim, &r);
    FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE || rc == CW_ETOOBIG || rc == CW_EVERSION ||
               rc == CW_ENOMEM);
    if (rc != CW_OK) {
        FUZZ_CHECK(r.versions == NULL && r.n_versions == 0 && r.status == NULL);
        return 0;
    }
    FUZZ_CHECK(strlen(r.message) <= CW_WIRE_MESSAGE_MAX && r.err >= 0);
    FUZZ_CHECK(r.n_versions <= CW_WIRE_VERSIONS_MAX);
    uint8_t *buf;
    size_t len;
    FUZZ_CHECK(cw_wire_encode_response(&r, &buf, &len) == CW_OK);
    struct cw_wire_response again;
    FUZZ_CHECK(cw_wire_decode_response(buf, len, NULL, &again) == CW_OK);
    FUZZ_CHECK(response_equal(&r, &again));
    cw_wire_response_free(&again);
    free(buf);
    cw_wire_response_free(&r);
    return 0;
}
