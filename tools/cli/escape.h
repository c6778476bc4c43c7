/*
 * escape.h - the CLI's escaping of arbitrary bytes (values and keys are
 * binary-safe; JSON strings and terminal lines are not) for its get/put/link
 * output. The status document is built by libcauseway with jansson; this only
 * writes strings.
 *
 * The output is the inside of a JSON string (no quotes). '"' and '\\' are
 * backslash-escaped; control characters become \b \f \n \r \t or \u00XX; DEL
 * becomes \u007f; well-formed UTF-8 sequences pass through unchanged; every
 * other byte (a stray continuation byte, a truncated or overlong sequence, an
 * encoded surrogate, anything above U+10FFFF) becomes \u00XX with XX the byte's
 * value. So any byte string yields valid JSON, text reads as itself, and no
 * terminal control byte reaches the terminal.
 */
#ifndef CW_CLI_ESCAPE_H
#define CW_CLI_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/*
 * Escapes len bytes of in as described above, snprintf style: writes at most
 * cap - 1 characters and a NUL into out (nothing when cap is 0; out may then be
 * NULL) and returns the length the whole escaped text needs, without the NUL.
 * The result never exceeds 6 * len.
 */
size_t cli_json_escape(char *out, size_t cap, const void *in, size_t len);

/* Writes in as a complete JSON string, quotes included, to f. Returns 0, or -1
 * when f reports a write error. */
int cli_json_fput_string(FILE *f, const void *in, size_t len);

#endif
