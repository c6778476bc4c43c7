/*
 * reader.h - how the core reads what it persisted: the store of record.
 *
 * With a reader, the replica keeps in memory only what it decides with (key
 * states it touched recently, within key_cache_bytes_max; the outbox's record
 * headers, with bodies within outbox_cache_bytes_max; the dependency buffer;
 * waiting requests; stream positions) and reads everything else back through
 * these calls. Without one (next == NULL), everything persisted also stays in
 * memory, as the replica did before the store became the store of record.
 *
 * The calls are synchronous and see every persist record the driver has
 * committed (everything in the ready sets advanced so far); the core never asks
 * for state it has not yet handed out to persist, it serves that from memory.
 * The daemon implements them on Berkeley DB, the simulator and the test fixture
 * in memory, so the core stays free of storage calls.
 *
 * Ownership: on CW_OK the callee has filled *out with memory the caller owns
 * (cw_keystate_free / cw_record_free); on any other return *out owns nothing.
 */
#ifndef CW_CORE_READER_H
#define CW_CORE_READER_H

#include <stdint.h>

#include "core/record.h"
#include "core/version.h"

struct cw_reader {
    /* The key state of a full key "bucket/key" as last persisted: CW_OK,
     * CW_ENOTFOUND when the key holds nothing, or an error (CW_ESTORE, CW_EIO,
     * CW_EDECODE for bytes that fail their checks). */
    int (*key)(void *ctx, const uint8_t *key, uint32_t key_len, struct cw_keystate *out);
    /* The outbox record stamped ts: CW_OK, CW_ENOTFOUND, or an error. NULL:
     * outbox bodies stay in memory (only key states are cached). */
    int (*outbox)(void *ctx, uint64_t ts, struct cw_record *out);
    /* Optional (state transfer, donor side): the first persisted key strictly
     * after `after` in byte order (memcmp, a shorter prefix first), with its
     * state: CW_OK with key (CW_FULL_KEY_MAX bytes of room), *key_len and *out
     * filled, CW_ENOTFOUND past the last key, or an error. Without it a donor
     * with a reader cannot serve a snapshot (its keys are not all in memory). */
    int (*next_key)(void *ctx, const uint8_t *after, uint32_t after_len, uint8_t *key,
                    uint32_t *key_len, struct cw_keystate *out);
    void *ctx; /* the driver's, borrowed for the replica's lifetime */
};

#endif
