/*
 * curvekeys.h - CurveZMQ key pairs and key lists in files (docs/operations.md,
 * "Security").
 *
 * Three kinds of files:
 *
 *   a key pair file (written by `causeway keygen --out FILE`, mode 0600):
 *       # comment lines
 *       public-key = <40 Z85 characters>
 *       secret-key = <40 Z85 characters>
 *
 *   a public key file (FILE.pub, written next to it): the public-key line only.
 *
 *   a key list (the [cluster] client_keys_file and admin_keys_file): one key a
 *   line, followed by the name of its holder, and optionally a comment:
 *       <40 Z85 characters> HOLDER   # anything
 *   HOLDER is 1 to CW_CURVE_HOLDER_MAX characters from A-Z a-z 0-9 . _ @ -.
 *   A comment starts at a '#' that begins the line or follows a blank ('#' is
 *   also a Z85 character, so one inside a key is part of the key). Blank lines
 *   and comment lines are ignored.
 *
 * Every loader reports the first problem as one line naming the file (and the line
 * for key lists) and what to do, in err. A key pair file readable by group or
 * others is refused, like ssh refuses such a private key.
 *
 * This file depends only on libc and ZeroMQ: libcauseway compiles it too.
 */
#ifndef CW_NET_CURVEKEYS_H
#define CW_NET_CURVEKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_CURVE_KEY_BYTES 32
#define CW_CURVE_Z85_LEN 40 /* characters of a key in Z85, without the NUL */
#define CW_CURVE_HOLDER_MAX 64
#define CW_CURVE_LIST_MAX 4096 /* keys in one key list */

/* A key pair, binary. */
struct cw_curve_pair {
    uint8_t public_key[CW_CURVE_KEY_BYTES];
    uint8_t secret_key[CW_CURVE_KEY_BYTES];
};

/* One entry of a key list. */
struct cw_curve_entry {
    uint8_t key[CW_CURVE_KEY_BYTES];
    char holder[CW_CURVE_HOLDER_MAX + 1];
};

/* True when ZeroMQ was built with CURVE (libsodium or tweetnacl). */
bool cw_curve_available(void);

/* Decodes a Z85 key of exactly CW_CURVE_Z85_LEN characters; false when s is not one. */
bool cw_curve_decode(const char *s, uint8_t out[CW_CURVE_KEY_BYTES]);

/* Encodes key as Z85 into out (CW_CURVE_Z85_LEN + 1 bytes). */
void cw_curve_encode(const uint8_t key[CW_CURVE_KEY_BYTES], char out[CW_CURVE_Z85_LEN + 1]);

/*
 * Draws a new key pair (Z85, NUL-terminated). Returns 0, or -1 with err set when
 * ZeroMQ has no CURVE.
 */
int cw_curve_generate(char public_z85[CW_CURVE_Z85_LEN + 1], char secret_z85[CW_CURVE_Z85_LEN + 1],
                      char *err, size_t err_len);

/*
 * Writes a key pair file at path (mode 0600) and its public key file at path.pub
 * (mode 0644). Each is written to a temporary file, flushed and linked into place,
 * so a reader never sees half a file, and an existing file is never replaced
 * (EEXIST: remove it first). Returns 0, or -1 with err set.
 */
int cw_curve_write_pair(const char *path, const char *public_z85, const char *secret_z85, char *err,
                        size_t err_len);

/*
 * Reads a key pair file. Refuses a file that is missing, unreadable, readable or
 * writable by group or others, lacks either key, holds a key that does not decode,
 * or whose public key is not the secret key's. Returns 0, or -1 with err set.
 */
int cw_curve_read_pair(const char *path, struct cw_curve_pair *out, char *err, size_t err_len);

/*
 * Reads a key list into a malloc'd array (*out, owned by the caller; NULL when the
 * list is empty) of *n entries. Refuses a malformed line, a key that does not
 * decode, a duplicate key, more than CW_CURVE_LIST_MAX keys. Returns 0, or -1 with
 * err set ("FILE:LINE: what is wrong; what to do").
 */
int cw_curve_read_list(const char *path, struct cw_curve_entry **out, size_t *n, char *err,
                       size_t err_len);

#endif
