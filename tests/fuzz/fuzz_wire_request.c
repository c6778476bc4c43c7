/*
 * fuzz_wire_request.c - cw_wire_decode_request on arbitrary bytes (what a
 * client or an admin tool sends). Properties: no crash, leak or sanitizer
 * report; a failed decode owns nothing; a request that decodes re-encodes to
 * one that decodes to the same request.
 */
#include <string.h>

#include <causeway/error.h>

#include "fuzz.h"
#include "wire/wire.h"

static bool request_equal(const struct cw_wire_request *a, const struct cw_wire_request *b)
{
    return a->op == b->op && a->req_id == b->req_id && strcmp(a->bucket, b->bucket) == 0 &&
           a->key_len == b->key_len &&
           (a->key_len == 0 || memcmp(a->key, b->key, a->key_len) == 0) &&
           a->value_len == b->value_len &&
           (a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0) &&
           memcmp(&a->context, &b->context, sizeof(a->context)) == 0 &&
           memcmp(&a->kctx, &b->kctx, sizeof(a->kctx)) == 0 && a->has_kctx == b->has_kctx &&
           strcmp(a->link_from, b->link_from) == 0 && strcmp(a->link_to, b->link_to) == 0 &&
           a->link_action == b->link_action && a->delay_ms == b->delay_ms;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_wire_limits lim;
    cw_wire_limits_default(&lim);
    lim.frame_bytes_max = 1u << 20;
    lim.value_bytes_max = 4096;
    struct cw_wire_request r;
    int rc = cw_wire_decode_request(data, size, &lim, &r);
    FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE || rc == CW_ETOOBIG || rc == CW_EVERSION ||
               rc == CW_ENOMEM);
    if (rc != CW_OK) {
        FUZZ_CHECK(r.key == NULL && r.value == NULL);
        FUZZ_CHECK(r.op <= CW_OP_LINK);
        return 0;
    }
    FUZZ_CHECK(r.op >= CW_OP_PUT && r.op <= CW_OP_LINK);
    FUZZ_CHECK(strlen(r.bucket) <= CW_BUCKET_NAME_MAX && r.key_len <= CW_KEY_BYTES_MAX);
    FUZZ_CHECK(r.value_len <= lim.value_bytes_max);
    uint8_t *buf;
    size_t len;
    FUZZ_CHECK(cw_wire_encode_request(&r, &buf, &len) == CW_OK);
    struct cw_wire_request again;
    FUZZ_CHECK(cw_wire_decode_request(buf, len, NULL, &again) == CW_OK);
    FUZZ_CHECK(request_equal(&r, &again));
    cw_wire_request_free(&again);
    free(buf);
    cw_wire_request_free(&r);
    return 0;
}
