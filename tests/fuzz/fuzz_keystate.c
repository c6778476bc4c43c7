/*
 * fuzz_keystate.c - cw_decode_keystate on arbitrary bytes (a key's versions as
 * Berkeley DB returns them). Properties: no crash, leak or sanitizer report; a
 * decoded state is sorted and bounded, and re-encodes to bytes that decode to
 * an equal state.
 */
#include <causeway/error.h>

#include "core/codec.h"
#include "fuzz.h"

#define VALUE_MAX 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_keystate s;
    int rc = cw_decode_keystate(&s, data, size, VALUE_MAX);
    FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE || rc == CW_ENOMEM);
    if (rc != CW_OK) {
        cw_keystate_free(&s); /* the codec's contract: also after a failure */
        return 0;
    }
    FUZZ_CHECK(s.n <= CW_SIBLINGS_HARD_MAX);
    for (uint32_t i = 0; i < s.n; i++) {
        FUZZ_CHECK(s.v[i].dot.origin < CW_REGIONS_MAX && s.v[i].value_len <= VALUE_MAX);
        FUZZ_CHECK(!s.v[i].tombstone || s.v[i].value_len == 0);
        FUZZ_CHECK(i == 0 || cw_dot_cmp(s.v[i - 1].dot, s.v[i].dot) < 0);
    }
    uint8_t *buf;
    uint32_t len;
    FUZZ_CHECK(cw_encode_keystate(&s, &buf, &len) == CW_OK);
    struct cw_keystate again;
    FUZZ_CHECK(cw_decode_keystate(&again, buf, len, VALUE_MAX) == CW_OK);
    FUZZ_CHECK(cw_keystate_equal(&s, &again));
    cw_keystate_free(&again);
    free(buf);
    cw_keystate_free(&s);
    return 0;
}
