/*
 * fuzz_wire_batch.c - the record decoding inside a RECORDS frame, reached
 * directly. A mutated RECORDS frame rarely gets past the LZ4 checksums, so this
 * target wraps its input into a well-formed frame itself: the first byte is the
 * declared record count, the rest is taken as a serialized RecordBatch,
 * compressed into one LZ4 frame and put into a PeerFrame envelope. Properties:
 * those of fuzz_wire_peer.
 */
#include <string.h>

#include <lz4frame.h>

#include <causeway/error.h>

#include "fuzz.h"
#include "wire/causeway.pb-c.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *raw = data + 1;
    size_t raw_len = size - 1;
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.contentSize = raw_len;
    size_t bound = LZ4F_compressFrameBound(raw_len, &prefs);
    uint8_t *z = malloc(bound);
    if (z == NULL)
        return 0;
    size_t z_len = LZ4F_compressFrame(z, bound, raw, raw_len, &prefs);
    FUZZ_CHECK(!LZ4F_isError(z_len));

    Causeway__PeerFrame pf = CAUSEWAY__PEER_FRAME__INIT;
    pf.version = CW_WIRE_VERSION;
    pf.type = CAUSEWAY__PEER_TYPE__PEER_RECORDS;
    pf.from_region = 1;
    pf.n_records = data[0];
    pf.batch.len = z_len;
    pf.batch.data = z;
    size_t len = causeway__peer_frame__get_packed_size(&pf);
    uint8_t *frame = malloc(len);
    FUZZ_CHECK(frame != NULL);
    FUZZ_CHECK(causeway__peer_frame__pack(&pf, frame) == len);
    free(z);

    struct cw_wire_limits lim = {
        .frame_bytes_max = 1u << 20,
        .batch_bytes_max = 1u << 20,
        .records_max = 64,
        .value_bytes_max = 4096,
    };
    struct cw_msg m;
    int rc = cw_wire_decode_peer(frame, len, &lim, &m);
    free(frame);
    FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE || rc == CW_ETOOBIG || rc == CW_ENOMEM);
    if (rc != CW_OK) {
        FUZZ_CHECK(m.n_records == 0 && m.records == NULL);
        return 0;
    }
    FUZZ_CHECK(m.n_records == data[0]);
    uint8_t *buf;
    FUZZ_CHECK(cw_wire_encode_peer(&m, &buf, &len) == CW_OK);
    struct cw_msg again;
    FUZZ_CHECK(cw_wire_decode_peer(buf, len, NULL, &again) == CW_OK);
    FUZZ_CHECK(again.n_records == m.n_records);
    for (uint32_t i = 0; i < m.n_records; i++) {
        const struct cw_record *a = &m.records[i], *b = &again.records[i];
        FUZZ_CHECK(a->prev_ts == b->prev_ts && a->key_len == b->key_len &&
                   memcmp(a->key, b->key, a->key_len) == 0);
        FUZZ_CHECK(a->version.value_len == b->version.value_len &&
                   (a->version.value_len == 0 ||
                    memcmp(a->version.value, b->version.value, a->version.value_len) == 0));
        FUZZ_CHECK(memcmp(&a->deps, &b->deps, sizeof(a->deps)) == 0 &&
                   memcmp(&a->version.kctx, &b->version.kctx, sizeof(a->version.kctx)) == 0);
    }
    cw_msg_free(&again);
    free(buf);
    cw_msg_free(&m);
    return 0;
}
