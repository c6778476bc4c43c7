/* json.c - escaping arbitrary bytes into JSON strings, and a bounded JSON parser. */
#include "client/json.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

/* ------------------------------------------------------------------ escaping */

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

size_t cw_json_escape(char *out, size_t cap, const void *in, size_t len)
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

int cw_json_fput_string(FILE *f, const void *in, size_t len)
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

/* ------------------------------------------------------------------- parsing */

struct parser {
    const char *p;
    size_t len;
    size_t pos;
    char *err;
    size_t err_len;
};

static int fail(struct parser *ps, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *ps, int rc, const char *fmt, ...)
{
    if (ps->err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(ps->err, ps->err_len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < ps->err_len)
            snprintf(ps->err + n, ps->err_len - (size_t)n, " at byte %zu", ps->pos);
    }
    return rc;
}

static void skip_ws(struct parser *ps)
{
    while (ps->pos < ps->len) {
        char c = ps->p[ps->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        ps->pos++;
    }
}

static void node_clear(struct cw_json *j)
{
    free(j->str);
    for (size_t i = 0; i < j->n; i++) {
        node_clear(&j->items[i]);
        if (j->keys)
            free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    memset(j, 0, sizeof(*j));
}

/* A small growable byte buffer for decoded strings. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static int sbuf_put(struct sbuf *b, const void *src, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (grown == NULL)
            return CW_ENOMEM;
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = '\0';
    return CW_OK;
}

static int hex4(struct parser *ps, unsigned *out)
{
    if (ps->len - ps->pos < 4)
        return fail(ps, CW_EDECODE, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = ps->p[ps->pos++];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return fail(ps, CW_EDECODE, "bad hex digit in \\u escape");
        v = v << 4 | d;
    }
    *out = v;
    return CW_OK;
}

static int put_utf8(struct sbuf *b, unsigned cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | cp >> 6);
        u[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | cp >> 12);
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | cp >> 18);
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return sbuf_put(b, u, n);
}

/* Parses a string whose opening quote is at ps->pos. On CW_OK *out owns a
 * NUL-terminated copy of *out_len decoded bytes. */
static int parse_string(struct parser *ps, char **out, size_t *out_len)
{
    struct sbuf b = {0};
    int rc;
    ps->pos++; /* the opening quote */
    if ((rc = sbuf_put(&b, "", 0)) != CW_OK)
        return rc;
    for (;;) {
        if (ps->pos >= ps->len) {
            rc = fail(ps, CW_EDECODE, "unterminated string");
            goto err_after_buf;
        }
        /* Copy the run of ordinary characters in one go. */
        size_t start = ps->pos;
        while (ps->pos < ps->len && ps->p[ps->pos] != '"' && ps->p[ps->pos] != '\\' &&
               (unsigned char)ps->p[ps->pos] >= 0x20)
            ps->pos++;
        if ((rc = sbuf_put(&b, ps->p + start, ps->pos - start)) != CW_OK)
            goto err_after_buf;
        if (ps->pos >= ps->len)
            continue;
        char c = ps->p[ps->pos];
        if (c == '"') {
            ps->pos++;
            break;
        }
        if (c != '\\') {
            rc = fail(ps, CW_EDECODE, "control character in string");
            goto err_after_buf;
        }
        ps->pos++;
        if (ps->pos >= ps->len) {
            rc = fail(ps, CW_EDECODE, "unterminated escape");
            goto err_after_buf;
        }
        char e = ps->p[ps->pos++];
        char lit;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            lit = e;
            break;
        case 'b':
            lit = '\b';
            break;
        case 'f':
            lit = '\f';
            break;
        case 'n':
            lit = '\n';
            break;
        case 'r':
            lit = '\r';
            break;
        case 't':
            lit = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if ((rc = hex4(ps, &cp)) != CW_OK)
                goto err_after_buf;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                rc = fail(ps, CW_EDECODE, "unpaired low surrogate");
                goto err_after_buf;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (ps->len - ps->pos < 2 || ps->p[ps->pos] != '\\' || ps->p[ps->pos + 1] != 'u') {
                    rc = fail(ps, CW_EDECODE, "unpaired high surrogate");
                    goto err_after_buf;
                }
                ps->pos += 2;
                if ((rc = hex4(ps, &lo)) != CW_OK)
                    goto err_after_buf;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    rc = fail(ps, CW_EDECODE, "unpaired high surrogate");
                    goto err_after_buf;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if ((rc = put_utf8(&b, cp)) != CW_OK)
                goto err_after_buf;
            continue;
        }
        default:
            rc = fail(ps, CW_EDECODE, "unknown escape \\%c", e);
            goto err_after_buf;
        }
        if ((rc = sbuf_put(&b, &lit, 1)) != CW_OK)
            goto err_after_buf;
    }
    *out = b.p;
    *out_len = b.len;
    return CW_OK;

err_after_buf:
    free(b.p);
    return rc;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(struct parser *ps, struct cw_json *j)
{
    size_t start = ps->pos;
    const char *p = ps->p;
    if (ps->pos < ps->len && p[ps->pos] == '-')
        ps->pos++;
    if (ps->pos >= ps->len || !is_digit(p[ps->pos]))
        return fail(ps, CW_EDECODE, "malformed number");
    if (p[ps->pos] == '0') {
        ps->pos++;
    } else {
        while (ps->pos < ps->len && is_digit(p[ps->pos]))
            ps->pos++;
    }
    if (ps->pos < ps->len && p[ps->pos] == '.') {
        ps->pos++;
        if (ps->pos >= ps->len || !is_digit(p[ps->pos]))
            return fail(ps, CW_EDECODE, "malformed number");
        while (ps->pos < ps->len && is_digit(p[ps->pos]))
            ps->pos++;
    }
    if (ps->pos < ps->len && (p[ps->pos] == 'e' || p[ps->pos] == 'E')) {
        ps->pos++;
        if (ps->pos < ps->len && (p[ps->pos] == '+' || p[ps->pos] == '-'))
            ps->pos++;
        if (ps->pos >= ps->len || !is_digit(p[ps->pos]))
            return fail(ps, CW_EDECODE, "malformed number");
        while (ps->pos < ps->len && is_digit(p[ps->pos]))
            ps->pos++;
    }
    size_t n = ps->pos - start;
    j->str = malloc(n + 1);
    if (j->str == NULL)
        return CW_ENOMEM;
    memcpy(j->str, p + start, n);
    j->str[n] = '\0';
    j->str_len = n;
    j->type = CW_JSON_NUMBER;
    return CW_OK;
}

static int parse_value(struct parser *ps, struct cw_json *j, unsigned depth);

/* Appends an empty item (and key slot for objects) to j; returns it or NULL. */
static struct cw_json *push_item(struct cw_json *j, size_t *cap)
{
    if (j->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct cw_json *items = realloc(j->items, ncap * sizeof(*items));
        if (items == NULL)
            return NULL;
        j->items = items;
        if (j->type == CW_JSON_OBJECT) {
            char **keys = realloc(j->keys, ncap * sizeof(*keys));
            if (keys == NULL)
                return NULL;
            j->keys = keys;
        }
        *cap = ncap;
    }
    struct cw_json *it = &j->items[j->n];
    memset(it, 0, sizeof(*it));
    if (j->type == CW_JSON_OBJECT)
        j->keys[j->n] = NULL;
    j->n++;
    return it;
}

static int parse_container(struct parser *ps, struct cw_json *j, unsigned depth)
{
    bool object = ps->p[ps->pos] == '{';
    char close = object ? '}' : ']';
    size_t cap = 0;
    int rc;
    if (depth >= CW_JSON_DEPTH_MAX)
        return fail(ps, CW_ETOOBIG, "nesting deeper than %d", CW_JSON_DEPTH_MAX);
    j->type = object ? CW_JSON_OBJECT : CW_JSON_ARRAY;
    ps->pos++;
    skip_ws(ps);
    if (ps->pos < ps->len && ps->p[ps->pos] == close) {
        ps->pos++;
        return CW_OK;
    }
    for (;;) {
        struct cw_json *it = push_item(j, &cap);
        if (it == NULL)
            return CW_ENOMEM;
        if (object) {
            skip_ws(ps);
            if (ps->pos >= ps->len || ps->p[ps->pos] != '"')
                return fail(ps, CW_EDECODE, "expected a member name");
            size_t klen;
            if ((rc = parse_string(ps, &j->keys[j->n - 1], &klen)) != CW_OK)
                return rc;
            skip_ws(ps);
            if (ps->pos >= ps->len || ps->p[ps->pos] != ':')
                return fail(ps, CW_EDECODE, "expected ':'");
            ps->pos++;
        }
        if ((rc = parse_value(ps, it, depth + 1)) != CW_OK)
            return rc;
        skip_ws(ps);
        if (ps->pos >= ps->len)
            return fail(ps, CW_EDECODE, "unterminated %s", object ? "object" : "array");
        char c = ps->p[ps->pos++];
        if (c == close)
            return CW_OK;
        if (c != ',')
            return fail(ps, CW_EDECODE, "expected ',' or '%c'", close);
    }
}

static bool literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if (ps->len - ps->pos < n || memcmp(ps->p + ps->pos, word, n) != 0)
        return false;
    ps->pos += n;
    return true;
}

static int parse_value(struct parser *ps, struct cw_json *j, unsigned depth)
{
    skip_ws(ps);
    if (ps->pos >= ps->len)
        return fail(ps, CW_EDECODE, "expected a value");
    char c = ps->p[ps->pos];
    switch (c) {
    case '{':
    case '[':
        return parse_container(ps, j, depth);
    case '"':
        j->type = CW_JSON_STRING;
        return parse_string(ps, &j->str, &j->str_len);
    case 't':
    case 'f':
        j->type = CW_JSON_BOOL;
        j->boolean = c == 't';
        if (!literal(ps, j->boolean ? "true" : "false"))
            return fail(ps, CW_EDECODE, "unknown literal");
        return CW_OK;
    case 'n':
        j->type = CW_JSON_NULL;
        if (!literal(ps, "null"))
            return fail(ps, CW_EDECODE, "unknown literal");
        return CW_OK;
    default:
        return parse_number(ps, j);
    }
}

int cw_json_parse(const char *text, size_t len, struct cw_json **out, char *err, size_t err_len)
{
    struct parser ps = {.p = text, .len = len, .err = err, .err_len = err_len};
    *out = NULL;
    if (err_len > 0)
        err[0] = '\0';
    if (len > CW_JSON_INPUT_MAX)
        return fail(&ps, CW_ETOOBIG, "document larger than %u bytes", CW_JSON_INPUT_MAX);
    struct cw_json *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return CW_ENOMEM;
    int rc = parse_value(&ps, j, 0);
    if (rc == CW_OK) {
        skip_ws(&ps);
        if (ps.pos != ps.len)
            rc = fail(&ps, CW_EDECODE, "trailing characters after the value");
    }
    if (rc != CW_OK) {
        node_clear(j);
        free(j);
        return rc;
    }
    *out = j;
    return CW_OK;
}

void cw_json_free(struct cw_json **j)
{
    if (j == NULL || *j == NULL)
        return;
    node_clear(*j);
    free(*j);
    *j = NULL;
}

const struct cw_json *cw_json_member(const struct cw_json *obj, const char *key)
{
    if (obj == NULL || obj->type != CW_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

int cw_json_u64(const struct cw_json *j, uint64_t *out)
{
    if (j == NULL || j->type != CW_JSON_NUMBER || j->str_len == 0 || j->str_len > 20)
        return CW_EDECODE;
    uint64_t v = 0;
    for (size_t i = 0; i < j->str_len; i++) {
        char c = j->str[i];
        if (!is_digit(c))
            return CW_EDECODE;
        unsigned d = (unsigned)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return CW_EDECODE;
        v = v * 10 + d;
    }
    *out = v;
    return CW_OK;
}
