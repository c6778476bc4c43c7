/*
 * fuzz_meta.c - cw_decode_meta on arbitrary bytes (the replica's metadata as
 * Berkeley DB returns it). Properties: no crash or sanitizer report; decoded
 * metadata re-encodes to bytes that decode to the same metadata.
 */
#include <string.h>

#include <causeway/error.h>

#include "core/codec.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_meta m;
    int rc = cw_decode_meta(&m, data, size);
    FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE);
    if (rc != CW_OK)
        return 0;
    uint8_t *buf;
    uint32_t len;
    FUZZ_CHECK(cw_encode_meta(&m, &buf, &len) == CW_OK);
    FUZZ_CHECK(len <= size); /* the encoder writes the shortest form */
    struct cw_meta again;
    FUZZ_CHECK(cw_decode_meta(&again, buf, len) == CW_OK);
    FUZZ_CHECK(m.hlc == again.hlc && m.stream_end == again.stream_end);
    FUZZ_CHECK(memcmp(&m.applied, &again.applied, sizeof(m.applied)) == 0);
    FUZZ_CHECK(memcmp(&m.chain, &again.chain, sizeof(m.chain)) == 0);
    free(buf);
    return 0;
}
