/* escape.c - escaping arbitrary bytes into JSON strings (see escape.h). */
#include "escape.h"

#include <stdint.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

/* Length of the well-formed UTF-8 sequence of two or more bytes at in[0..len),
 * or 0 when there is none. The ranges are those of RFC 3629, table 3-7 of the
 * Unicode standard: they exclude overlong forms, surrogates and code points above
 * U+10FFFF. */
static size_t utf8_seq_len(const uint8_t *in, size_t len)
{
    uint8_t b = in[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xbf; /* the allowed range of the second byte */
    if (b >= 0xc2 && b <= 0xdf) {
        n = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        if (b == 0xe0)
            lo = 0xa0;
        else if (b == 0xed)
            hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        if (b == 0xf0)
            lo = 0x90;
        else if (b == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (len < n || in[1] < lo || in[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (in[i] < 0x80 || in[i] > 0xbf)
            return 0;
    return n;
}

/* Escapes the character at in[0..len): writes at most 6 bytes to out, returns
 * how many, and sets *used to the number of input bytes consumed (>= 1). */
static size_t escape_one(const uint8_t *in, size_t len, size_t *used, char out[6])
{
    uint8_t b = in[0];
    *used = 1;
    switch (b) {
    case '"':
        memcpy(out, "\\\"", 2);
        return 2;
    case '\\':
        memcpy(out, "\\\\", 2);
        return 2;
    case '\b':
        memcpy(out, "\\b", 2);
        return 2;
    case '\f':
        memcpy(out, "\\f", 2);
        return 2;
    case '\n':
        memcpy(out, "\\n", 2);
        return 2;
    case '\r':
        memcpy(out, "\\r", 2);
        return 2;
    case '\t':
        memcpy(out, "\\t", 2);
        return 2;
    default:
        break;
    }
    if (b >= 0x20 && b < 0x7f) {
        out[0] = (char)b;
        return 1;
    }
    if (b >= 0x80) {
        size_t n = utf8_seq_len(in, len);
        if (n > 0) {
            memcpy(out, in, n);
            *used = n;
            return n;
        }
    }
    /* A control character, DEL, or a byte that is not part of well-formed UTF-8. */
    memcpy(out, "\\u00", 4);
    out[4] = hexdig[b >> 4];
    out[5] = hexdig[b & 15];
    return 6;
}

size_t cli_json_escape(char *out, size_t cap, const void *in, size_t len)
{
    const uint8_t *p = in;
    size_t need = 0, i = 0;
    while (i < len) {
        char tmp[6];
        size_t used;
        size_t n = escape_one(p + i, len - i, &used, tmp);
        /* Copy only what fits with room for the NUL; keep counting the rest. */
        for (size_t k = 0; k < n; k++)
            if (cap > 0 && need + k < cap - 1)
                out[need + k] = tmp[k];
        need += n;
        i += used;
    }
    if (cap > 0)
        out[need < cap - 1 ? need : cap - 1] = '\0';
    return need;
}

int cli_json_fput_string(FILE *f, const void *in, size_t len)
{
    const uint8_t *p = in;
    /* Escape through a small buffer so a 1 MiB value needs no 6 MiB allocation. */
    char buf[4096];
    size_t used_buf = 0, i = 0;
    if (fputc('"', f) == EOF)
        return -1;
    while (i < len) {
        if (used_buf > sizeof(buf) - 6) {
            if (fwrite(buf, 1, used_buf, f) != used_buf)
                return -1;
            used_buf = 0;
        }
        size_t used;
        used_buf += escape_one(p + i, len - i, &used, buf + used_buf);
        i += used;
    }
    if (used_buf > 0 && fwrite(buf, 1, used_buf, f) != used_buf)
        return -1;
    return fputc('"', f) == EOF ? -1 : 0;
}
