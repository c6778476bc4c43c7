/*
 * fuzz_record.c - cw_decode_record on arbitrary bytes (an outbox record as
 * Berkeley DB returns it). Properties: no crash, leak or sanitizer report; a
 * decoded record is bounded and re-encodes to bytes that decode to the same
 * record.
 */
#include <string.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "fuzz.h"

#define VALUE_MAX 4096u

static bool record_equal(const struct cw_record *a, const struct cw_record *b)
{
    const struct cw_version *x = &a->version, *y = &b->version;
    return a->prev_ts == b->prev_ts && a->consistency == b->consistency &&
           a->conflict == b->conflict && memcmp(&a->deps, &b->deps, sizeof(a->deps)) == 0 &&
           a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0 &&
           x->dot.origin == y->dot.origin && x->dot.ts == y->dot.ts &&
           x->tombstone == y->tombstone && memcmp(&x->kctx, &y->kctx, sizeof(x->kctx)) == 0 &&
           x->value_len == y->value_len &&
           (x->value_len == 0 || memcmp(x->value, y->value, x->value_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_record r;
    int rc = cw_decode_record(&r, data, size, VALUE_MAX);
    FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE || rc == CW_ENOMEM);
    if (rc != CW_OK) {
        cw_record_free(&r);
        return 0;
    }
    FUZZ_CHECK(r.key_len <= CW_BUCKET_NAME_MAX + 1 + CW_KEY_BYTES_MAX);
    FUZZ_CHECK(r.version.value_len <= VALUE_MAX && r.version.dot.origin < CW_REGIONS_MAX);
    FUZZ_CHECK(r.prev_ts < r.version.dot.ts);
    uint8_t *buf;
    uint32_t len;
    FUZZ_CHECK(cw_encode_record(&r, &buf, &len) == CW_OK);
    struct cw_record again;
    FUZZ_CHECK(cw_decode_record(&again, buf, len, VALUE_MAX) == CW_OK);
    FUZZ_CHECK(record_equal(&r, &again));
    cw_record_free(&again);
    free(buf);
    cw_record_free(&r);
    return 0;
}
