/*
 * json.h - the small amount of JSON the client side needs: an escaper for
 * arbitrary bytes (values are binary-safe, JSON strings are not) and a bounded
 * parser for the server's STATUS document.
 *
 * Escaping: the output is the inside of a JSON string (no quotes). '"' and '\\'
 * are backslash-escaped; control characters become \b \f \n \r \t or \u00XX;
 * DEL becomes \u007f; well-formed UTF-8 sequences pass through unchanged; every
 * other byte (a stray continuation byte, a truncated or overlong sequence, an
 * encoded surrogate, anything above U+10FFFF) becomes \u00XX with XX the byte's
 * value. So any byte string yields valid JSON, and ASCII and UTF-8 text reads as
 * itself.
 *
 * Parsing: RFC 8259 JSON, with bounds: nesting at most CW_JSON_DEPTH_MAX, input
 * at most CW_JSON_INPUT_MAX bytes. Numbers are kept as their literal text, so a
 * 64-bit timestamp survives exactly (a double would round it).
 *
 * Ownership: cw_json_parse transfers a tree to *out on success; cw_json_free
 * releases it and sets the pointer to NULL. Lookups return nodes borrowed from
 * the tree, valid until it is freed.
 *
 * These are internal to libcauseway and its CLI (exported from the shared library
 * only because the CLI links it); they are not part of include/causeway.h.
 */
#ifndef CW_CLIENT_JSON_H
#define CW_CLIENT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CW_JSON_DEPTH_MAX 64
#define CW_JSON_INPUT_MAX (16u << 20)

/*
 * Escapes len bytes of in as described above, snprintf style: writes at most
 * cap - 1 characters and a NUL into out (nothing when cap is 0; out may then be
 * NULL) and returns the length the whole escaped text needs, without the NUL.
 * The result never exceeds 6 * len.
 */
size_t cw_json_escape(char *out, size_t cap, const void *in, size_t len);

/* Writes in as a complete JSON string, quotes included, to f. Returns 0, or -1
 * when f reports a write error. */
int cw_json_fput_string(FILE *f, const void *in, size_t len);

enum cw_json_type {
    CW_JSON_NULL,
    CW_JSON_BOOL,
    CW_JSON_NUMBER,
    CW_JSON_STRING,
    CW_JSON_ARRAY,
    CW_JSON_OBJECT,
};

struct cw_json {
    enum cw_json_type type;
    bool boolean; /* BOOL */
    /* STRING: the decoded bytes (UTF-8, may contain NUL), NUL-terminated.
     * NUMBER: the literal text as it appeared in the input. */
    char *str;
    size_t str_len;
    /* ARRAY and OBJECT: n items; OBJECT also has n keys (decoded, NUL-terminated)
     * in document order. */
    size_t n;
    struct cw_json *items;
    char **keys;
};

/*
 * Parses exactly one JSON value spanning text[0..len) (surrounding whitespace is
 * allowed). Returns CW_OK with a tree in *out, CW_EDECODE for malformed input
 * (err then says what and at which byte offset), CW_ETOOBIG when the input or
 * nesting exceeds the bounds, or CW_ENOMEM. err may be NULL when err_len is 0.
 */
int cw_json_parse(const char *text, size_t len, struct cw_json **out, char *err, size_t err_len);

void cw_json_free(struct cw_json **j);

/* The member called key of an object, or NULL (also when obj is not an object). */
const struct cw_json *cw_json_member(const struct cw_json *obj, const char *key);

/* A NUMBER that is a non-negative integer fitting 64 bits: CW_OK and *out, else
 * CW_EDECODE. */
int cw_json_u64(const struct cw_json *j, uint64_t *out);

#endif
