/*
 * codec.h - the byte formats of what a replica persists: key states, outbox
 * records and replica metadata. The store adapter treats these as opaque blobs.
 *
 * Every format starts with a tag byte and a format version byte. Integers are
 * LEB128 varints. Every decoder checks every length and count against the stated
 * bounds and against the remaining input, and fails with CW_EDECODE rather than
 * read past the end; a decoder never trusts the bytes it is given.
 *
 * Ownership: encoders allocate *out (malloc) and transfer it to the caller.
 * Decoders fill caller-owned structures whose allocated parts the caller frees
 * with cw_keystate_free / cw_record_free, also after a failed decode.
 */
#ifndef CW_CORE_CODEC_H
#define CW_CORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "core/record.h"
#include "core/version.h"

#define CW_CODEC_VERSION 1

struct cw_meta {
    uint64_t hlc;             /* clock floor: no stamp at or below it is reissued */
    struct cw_vclock applied; /* V */
    struct cw_vclock chain;   /* per origin, the last record applied */
    uint64_t stream_end;      /* ts of this region's last record */
};

int cw_encode_keystate(const struct cw_keystate *s, uint8_t **out, uint32_t *len);
int cw_decode_keystate(struct cw_keystate *s, const uint8_t *in, size_t len,
                       uint32_t max_value_bytes);

int cw_encode_record(const struct cw_record *r, uint8_t **out, uint32_t *len);
int cw_decode_record(struct cw_record *r, const uint8_t *in, size_t len, uint32_t max_value_bytes);

int cw_encode_meta(const struct cw_meta *m, uint8_t **out, uint32_t *len);
int cw_decode_meta(struct cw_meta *m, const uint8_t *in, size_t len);

/* Low-level pieces reused by the wire codec: a version (dot, kctx, flags, value). */
size_t cw_version_encoded_max(const struct cw_version *v);
size_t cw_encode_version(const struct cw_version *v, uint8_t *out);
/* Returns bytes consumed or 0; on success v->value is malloc'd (or NULL). */
size_t cw_decode_version(struct cw_version *v, const uint8_t *in, size_t len,
                         uint32_t max_value_bytes);

#endif
