/*
 * client.c - libcauseway: connections, causal sessions and their files, and the
 * requests behind include/causeway.h.
 *
 * The library is a thin, careful layer: it validates input before anything is
 * sent, encodes a wire request, waits for the reply through the network client,
 * and folds the reply into the session with the core's own session rules
 * (core/session.h), so the client and the simulator share one definition of a
 * session's causal state.
 */
#include <causeway.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/cw_assert.h"
#include "core/hlc.h"
#include "core/replica.h"
#include "core/session.h"
#include "core/vclock.h"
#include "net/curvekeys.h"
#include "net/netclient.h"
#include "wire/wire.h"

_Static_assert(CW_CONTEXT_TOKEN_MAX == CW_TOKEN_MAX, "public token size must match the core's");
_Static_assert(CW_BUCKET_LEN_MAX == CW_BUCKET_NAME_MAX, "public bucket limit must match");
_Static_assert(CW_KEY_LEN_MAX == CW_KEY_BYTES_MAX, "public key limit must match");
_Static_assert(CW_REGION_NAMES_MAX == CW_REGIONS_MAX, "public region limit must match");
_Static_assert(CW_REGION_NAME_LEN_MAX == CW_REGION_NAME_MAX, "public region name limit must match");
_Static_assert(CW_STAMP_LOGICAL_BITS == CW_HLC_LOGICAL_BITS, "public stamp layout must match");

#define ERRMSG_MAX 512
#define CW_ENDPOINT_TEXT_MAX CW_NETCLIENT_ENDPOINT_MAX

/* Full keys "bucket/key" are at most this long. */
#define FULL_KEY_MAX CW_FULL_KEY_MAX

/* ------------------------------------------------------------------ session */

struct cw_sess {
    struct cw_session core;
    char err[ERRMSG_MAX];
};

static void sess_fail(struct cw_sess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sess_fail(struct cw_sess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
}

int cw_sess_new(size_t max_keys, struct cw_sess **out)
{
    *out = NULL;
    if (max_keys == 0)
        max_keys = CW_SESS_KEYS_DEFAULT;
    if (max_keys > CW_SESS_KEYS_MAX)
        return CW_EINVAL;
    struct cw_sess *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CW_ENOMEM;
    cw_session_init(&s->core, max_keys);
    *out = s;
    return CW_OK;
}

void cw_sess_free(struct cw_sess **s)
{
    if (s == NULL || *s == NULL)
        return;
    cw_session_free(&(*s)->core);
    free(*s);
    *s = NULL;
}

const char *cw_sess_error(const struct cw_sess *s)
{
    return s->err;
}

int cw_sess_export(const struct cw_sess *s, char *buf, size_t len)
{
    char token[CW_TOKEN_MAX];
    cw_token_format(&s->core.context, token);
    size_t n = strlen(token);
    if (n + 1 > len) {
        if (len > 0)
            buf[0] = '\0';
        return CW_ETOOBIG;
    }
    memcpy(buf, token, n + 1);
    return CW_OK;
}

int cw_sess_import(struct cw_sess *s, const char *token)
{
    struct cw_vclock v;
    s->err[0] = '\0';
    if (cw_token_parse(token, &v) != CW_OK) {
        sess_fail(s, "malformed context token \"%.64s\": expected cw1- and hex digits", token);
        return CW_ECONTEXT;
    }
    cw_vc_join(&s->core.context, &v);
    return CW_OK;
}

static const char hexdig[] = "0123456789abcdef";

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes lowercase hex of exactly n characters into out; false on a bad digit. */
static bool hex_decode(const char *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_nibble(in[2 * i]), lo = hex_nibble(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* A full key "bucket/key" that the server could have produced. */
static bool full_key_valid(const uint8_t *k, size_t len)
{
    size_t slash = 0;
    while (slash < len && k[slash] != '/')
        slash++;
    if (slash == 0 || slash > CW_BUCKET_NAME_MAX || slash == len)
        return false;
    char bucket[CW_BUCKET_NAME_MAX + 1];
    memcpy(bucket, k, slash);
    bucket[slash] = '\0';
    return cw_validate_bucket(bucket) == CW_OK &&
           cw_validate_key(k + slash + 1, (uint32_t)(len - slash - 1)) == CW_OK;
}

#define SESS_MAGIC "causeway-session"
#define SESS_FORMAT_VERSION 1
/* "key " + hex of the longest full key + " " + token + newline, with room to spare. */
#define SESS_LINE_MAX (4 + 2 * FULL_KEY_MAX + 1 + CW_TOKEN_MAX + 64)

/* Orders key slots by their LRU stamp, oldest first. */
static int by_used(const void *a, const void *b)
{
    const struct cw_session_key *x = *(const struct cw_session_key *const *)a;
    const struct cw_session_key *y = *(const struct cw_session_key *const *)b;
    return (x->used > y->used) - (x->used < y->used);
}

/* Writes the session's text form to f; returns 0 or -1 on a write error. */
static int sess_write(const struct cw_sess *s, FILE *f, const struct cw_session_key **order)
{
    char token[CW_TOKEN_MAX];
    char hex[2 * FULL_KEY_MAX + 1];
    cw_token_format(&s->core.context, token);
    if (fprintf(f, "%s %d\ncontext %s\n", SESS_MAGIC, SESS_FORMAT_VERSION, token) < 0)
        return -1;
    /* Oldest first, so that loading replays the use order and a smaller bound on
     * the loading side keeps the most recently used keys. */
    for (size_t i = 0; i < s->core.n_keys; i++) {
        const struct cw_session_key *k = order[i];
        hex_encode(k->key, k->key_len, hex);
        cw_token_format(&k->kctx, token);
        if (fprintf(f, "key %s %s\n", hex, token) < 0)
            return -1;
    }
    return 0;
}

/* Flushes the directory holding path, so a rename in it survives a crash. */
static int fsync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(dir))
            return -1;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int cw_sess_save(struct cw_sess *s, const char *path)
{
    int rc = CW_EIO;
    s->err[0] = '\0';
    size_t plen = strlen(path);
    if (plen == 0 || plen > 4000) {
        sess_fail(s, "session file name \"%.64s\" is empty or too long", path);
        return CW_EIO;
    }
    const struct cw_session_key **order = NULL;
    if (s->core.n_keys > 0) {
        order = malloc(s->core.n_keys * sizeof(*order));
        if (order == NULL)
            return CW_ENOMEM;
        for (size_t i = 0; i < s->core.n_keys; i++)
            order[i] = &s->core.keys[i];
        qsort(order, s->core.n_keys, sizeof(*order), by_used);
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        sess_fail(s, "cannot create a temporary file next to %s: %s", path, strerror(errno));
        goto err_after_order;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        sess_fail(s, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        goto err_after_tmp;
    }
    if (sess_write(s, f, order) != 0 || fflush(f) != 0 || fsync(fd) != 0) {
        sess_fail(s, "cannot write %s: %s", tmp, strerror(errno));
        fclose(f);
        goto err_after_tmp;
    }
    if (fclose(f) != 0) {
        sess_fail(s, "cannot write %s: %s", tmp, strerror(errno));
        goto err_after_tmp;
    }
    if (rename(tmp, path) != 0) {
        sess_fail(s, "cannot replace %s: %s", path, strerror(errno));
        goto err_after_tmp;
    }
    /* The new file is in place; failing to flush the directory only weakens
     * durability across a power loss, so it is not reported as a failure. */
    (void)fsync_dir_of(path);
    free(order);
    return CW_OK;

err_after_tmp:
    unlink(tmp);
err_after_order:
    free(order);
    return rc;
}

/* Parses one "key HEX TOKEN" line (without the newline) into the session. */
static int sess_parse_key(struct cw_session *into, char *line, const char **why)
{
    char *hex = line + 4;
    char *sp = strchr(hex, ' ');
    if (sp == NULL) {
        *why = "expected \"key HEX TOKEN\"";
        return CW_ECONTEXT;
    }
    *sp = '\0';
    const char *token = sp + 1;
    size_t hlen = strlen(hex);
    uint8_t key[FULL_KEY_MAX];
    if (hlen == 0 || hlen % 2 != 0 || hlen / 2 > FULL_KEY_MAX || !hex_decode(hex, hlen, key)) {
        *why = "the key is not lowercase hex of at most 1089 bytes";
        return CW_ECONTEXT;
    }
    if (!full_key_valid(key, hlen / 2)) {
        *why = "the key is not a valid \"bucket/key\"";
        return CW_ECONTEXT;
    }
    struct cw_vclock kctx;
    if (cw_token_parse(token, &kctx) != CW_OK) {
        *why = "malformed key context token";
        return CW_ECONTEXT;
    }
    return cw_session_set_kctx(into, key, (uint32_t)(hlen / 2), &kctx);
}

/*
 * Reads one line of at most cap - 1 bytes (the newline dropped, a NUL added)
 * into buf, setting *len. Returns 1 for a line, 0 at the end of the file, -1
 * for a line that does not fit (the rest of the file is then not read). A last
 * line without a newline counts as a line. A carriage return before the newline
 * (or at the end of the last line) is dropped too: a file whose lines end in
 * CRLF, as an editor on Windows writes them, reads like one with LF.
 */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    int ch;
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (n + 1 >= cap)
            return -1;
        buf[n++] = (char)ch;
    }
    bool any = ch != EOF || n > 0;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *len = n;
    return any ? 1 : 0;
}

int cw_sess_load(struct cw_sess *s, const char *path)
{
    s->err[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno;
        sess_fail(s, "cannot open session file %s: %s", path, strerror(e));
        return e == ENOENT ? CW_ENOTFOUND : CW_EIO;
    }
    struct cw_session next;
    cw_session_init(&next, s->core.max_keys);
    char *line = malloc(SESS_LINE_MAX + 1);
    int rc = CW_ENOMEM;
    if (line == NULL)
        goto err_after_next;
    unsigned long lineno = 0;
    bool have_context = false;
    const char *why = NULL;
    /* What the message calls the problem: most are malformations; a file of
     * another kind or of another format version is not malformed. */
    const char *lead = "malformed session file: ";
    char why_buf[160];
    rc = CW_OK;
    size_t n;
    int got;
    while (rc == CW_OK && (got = read_line(f, line, SESS_LINE_MAX + 1, &n)) != 0) {
        lineno++;
        if (got < 0) {
            why = "line too long";
            rc = CW_ECONTEXT;
        } else if (memchr(line, '\0', n) != NULL) {
            why = "NUL byte in line";
            rc = CW_ECONTEXT;
        } else if (lineno == 1) {
            if (strncmp(line, SESS_MAGIC " ", sizeof(SESS_MAGIC)) != 0) {
                why = "not a causeway session file (its first line is not \"" SESS_MAGIC " 1\")";
                lead = "";
                rc = CW_ECONTEXT;
            } else if (strcmp(line + sizeof(SESS_MAGIC), "1") != 0) {
                const char *v = line + sizeof(SESS_MAGIC);
                bool printable = strlen(v) <= 16;
                for (const char *c = v; printable && *c; c++)
                    printable = *c > 0x20 && *c < 0x7f;
                snprintf(why_buf, sizeof(why_buf),
                         "session file format version '%.16s', which this library does not read "
                         "(it reads version 1; did a newer causeway write it?)",
                         printable ? v : "?");
                why = why_buf;
                lead = "";
                rc = CW_ECONTEXT;
            }
        } else if (lineno == 2) {
            if (strncmp(line, "context ", 8) != 0 ||
                cw_token_parse(line + 8, &next.context) != CW_OK) {
                why = "expected \"context TOKEN\" with a valid context token";
                rc = CW_ECONTEXT;
            } else {
                have_context = true;
            }
        } else if (lineno > 2 + (unsigned long)CW_SESS_KEYS_MAX) {
            why = "more key lines than any session holds";
            rc = CW_ECONTEXT;
        } else if (strncmp(line, "key ", 4) == 0) {
            rc = sess_parse_key(&next, line, &why);
        } else {
            why = "expected \"key HEX TOKEN\"";
            rc = CW_ECONTEXT;
        }
    }
    if (rc == CW_OK && ferror(f)) {
        sess_fail(s, "cannot read session file %s: %s", path, strerror(errno));
        rc = CW_EIO;
        goto err_after_line;
    }
    if (rc == CW_OK && !have_context) {
        lineno++;
        why = lineno == 1 ? "empty file (expected \"" SESS_MAGIC " 1\")"
                          : "missing \"context TOKEN\" line";
        rc = CW_ECONTEXT;
    }
    if (rc != CW_OK) {
        if (rc == CW_ECONTEXT)
            sess_fail(s, "%s:%lu: %s%s", path, lineno, lead, why);
        goto err_after_line;
    }
    free(line);
    fclose(f);
    cw_session_free(&s->core);
    s->core = next;
    return CW_OK;

err_after_line:
    free(line);
err_after_next:
    cw_session_free(&next);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------- client */

struct cw_client {
    struct cw_netclient *net;
    struct cw_client_options opt;
    uint64_t next_req_id;
    bool curve; /* the connection uses CurveZMQ */
    char endpoint[CW_ENDPOINT_TEXT_MAX];
    char err[ERRMSG_MAX];
};

static void client_fail(struct cw_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void client_fail(struct cw_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

void cw_client_options_init(struct cw_client_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->timeout_ms = CW_CLIENT_TIMEOUT_MS_DEFAULT;
    opt->retries = CW_CLIENT_RETRIES_DEFAULT;
    opt->version = CW_CLIENT_OPTIONS_VERSION;
}

int cw_client_options_key_file(struct cw_client_options *opt, const char *path, char *err,
                               size_t err_len)
{
    if (err_len > 0)
        err[0] = '\0';
    if (opt == NULL || path == NULL) {
        if (err_len > 0)
            snprintf(err, err_len, "no options or no key file path given");
        return CW_EINVAL;
    }
    struct cw_curve_pair pair;
    if (cw_curve_read_pair(path, &pair, err, err_len) != 0)
        return access(path, R_OK) == 0 ? CW_ECONFIG : CW_EIO;
    cw_curve_encode(pair.public_key, opt->public_key);
    cw_curve_encode(pair.secret_key, opt->secret_key);
    volatile uint8_t *p = (volatile uint8_t *)&pair;
    for (size_t i = 0; i < sizeof(pair); i++)
        p[i] = 0;
    return CW_OK;
}

int cw_client_connect(const char *endpoint, const struct cw_client_options *opt,
                      struct cw_client **out)
{
    *out = NULL;
    struct cw_client_options o;
    cw_client_options_init(&o);
    if (opt != NULL && opt->version >= 2) {
        o = *opt;
    } else if (opt != NULL) {
        /* A version 1 caller: only its first two fields exist. */
        o.timeout_ms = opt->timeout_ms;
        o.retries = opt->retries;
    }
    if (o.timeout_ms == 0 || o.timeout_ms > 3600000u || o.retries > CW_CLIENT_RETRIES_MAX)
        return CW_EINVAL;
    /* CURVE: all three keys, or none. */
    struct cw_netclient_curve keys;
    bool curve = memchr(o.server_key, '\0', sizeof(o.server_key)) != NULL && o.server_key[0];
    if (curve && (!cw_curve_decode(o.server_key, keys.server_key) ||
                  !cw_curve_decode(o.public_key, keys.public_key) ||
                  !cw_curve_decode(o.secret_key, keys.secret_key)))
        return CW_EINVAL;
    if (endpoint == NULL || endpoint[0] == '\0' || strlen(endpoint) >= CW_ENDPOINT_TEXT_MAX)
        return CW_EINVAL;
    struct cw_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return CW_ENOMEM;
    c->opt = o;
    strcpy(c->endpoint, endpoint);
    /* Request ids only tell this connection's replies apart: the network
     * client recreates its socket after a time-out, so a late reply to an
     * earlier request never arrives, and the id check guards against a server
     * that answers the wrong request. */
    c->next_req_id = 1;
    c->curve = curve;
    int rc =
        cw_netclient_open_curve(endpoint, curve ? &keys : NULL, &c->net, c->err, sizeof(c->err));
    volatile uint8_t *kp = (volatile uint8_t *)&keys;
    for (size_t i = 0; i < sizeof(keys); i++)
        kp[i] = 0;
    memset(c->opt.secret_key, 0, sizeof(c->opt.secret_key));
    if (rc != CW_OK) {
        free(c);
        return rc;
    }
    *out = c;
    return CW_OK;
}

void cw_client_close(struct cw_client **c)
{
    if (c == NULL || *c == NULL)
        return;
    cw_netclient_close(&(*c)->net);
    free(*c);
    *c = NULL;
}

const char *cw_client_error(const struct cw_client *c)
{
    return c->err;
}

/*
 * True, with the client's error set, when rc is the transport's report that the
 * node refused the connection itself (nothing was sent): at its client
 * connection limit (CW_EFULL), or this client's key (CW_EDENIED).
 */
static bool refused(struct cw_client *c, int rc)
{
    if (rc == CW_EFULL) {
        client_fail(c,
                    "the node at %s refused the connection: it is at its client connection "
                    "limit; retry later, or raise client_connections_max on that node (and its "
                    "open-file limit)",
                    c->endpoint);
        return true;
    }
    if (rc == CW_EDENIED) {
        client_fail(c,
                    "the node at %s refused the connection: it does not admit this client's "
                    "key; list the public key in its client_keys_file or admin_keys_file",
                    c->endpoint);
        return true;
    }
    return false;
}

static const char *op_name(enum cw_wire_op op)
{
    switch (op) {
    case CW_OP_PUT:
        return "put";
    case CW_OP_GET:
        return "get";
    case CW_OP_DEL:
        return "del";
    case CW_OP_STATUS:
        return "status";
    case CW_OP_LINK:
        return "link";
    default:
        return "request";
    }
}

/*
 * Sends req and decodes its reply into *resp (which the caller frees with
 * cw_wire_response_free, also on error). Attempts are repeated, up to the
 * configured number of retries, when the node was unreachable (nothing was
 * sent) and, for idempotent requests only, after a time-out; every attempt uses
 * the same request id. A server-side error is returned as the response's err,
 * with the server's message as the client's detailed error.
 */
static int call(struct cw_client *c, struct cw_wire_request *req, bool idempotent,
                struct cw_wire_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    req->req_id = c->next_req_id++;
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    int rc = cw_wire_encode_request(req, &frame, &frame_len);
    if (rc != CW_OK) {
        client_fail(c, "cannot encode the %s request: %s", op_name(req->op), cw_strerror(rc));
        return rc;
    }
    unsigned attempts = 1 + c->opt.retries;
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    for (unsigned attempt = 1;; attempt++) {
        rc =
            cw_netclient_call(c->net, frame, frame_len, (int)c->opt.timeout_ms, &reply, &reply_len);
        /* Unreachable means nothing was sent: trying again is safe for every
         * request. A time-out after sending is retried only for reads. */
        bool again = rc == CW_EUNAVAILABLE || (rc == CW_ETIMEOUT && idempotent);
        if (!again || attempt == attempts) {
            attempts = attempt;
            break;
        }
    }
    free(frame);
    if (refused(c, rc))
        return rc;
    if (rc == CW_EUNAVAILABLE) {
        client_fail(c, "cannot reach %s within %u ms (%u attempt%s)%s", c->endpoint,
                    c->opt.timeout_ms, attempts, attempts == 1 ? "" : "s",
                    c->curve ? "; with CURVE this also means the node refused the handshake: "
                               "check that this client's public key is listed in the node's "
                               "config and that the server key is the region's public_key"
                             : "");
        return rc;
    }
    if (rc == CW_ETIMEOUT && !idempotent) {
        client_fail(c,
                    "no reply to %s from %s within %u ms; it may or may not have been applied "
                    "(not retried, so it cannot apply twice): read the key to find out",
                    op_name(req->op), c->endpoint, c->opt.timeout_ms);
        return rc;
    }
    if (rc == CW_ETIMEOUT) {
        client_fail(
            c,
            "no reply to %s from %s within %u ms (%u attempt%s); the node may be overloaded, "
            "or a read waited for the session's context longer than the time-out",
            op_name(req->op), c->endpoint, c->opt.timeout_ms, attempts, attempts == 1 ? "" : "s");
        return rc;
    }
    if (rc != CW_OK) {
        client_fail(c, "%s request to %s failed: %s", op_name(req->op), c->endpoint,
                    cw_strerror(rc));
        return rc;
    }
    struct cw_wire_limits lim;
    cw_wire_limits_default(&lim);
    /* A read returns every sibling: replies may be larger than a request. */
    lim.frame_bytes_max = CW_WIRE_RESPONSE_BYTES_MAX;
    /* The server enforces its own (configured) value bound; the client accepts
     * any value that fits in a protocol frame. */
    lim.value_bytes_max = CW_WIRE_FRAME_BYTES_MAX;
    rc = cw_wire_decode_response(reply, reply_len, &lim, resp);
    free(reply);
    if (rc != CW_OK) {
        client_fail(c, "malformed reply to %s from %s: %s", op_name(req->op), c->endpoint,
                    cw_strerror(rc));
        return rc;
    }
    /* The request id is what matches a reply to its request; the op, when the
     * server echoes it (CW_OP_NONE when it does not, or could not read it), must
     * agree. */
    bool op_ok = resp->op == req->op || resp->op == CW_OP_NONE;
    if (resp->req_id != req->req_id || !op_ok) {
        client_fail(c, "reply from %s does not match the %s request (id %llu, got id %llu)",
                    c->endpoint, op_name(req->op), (unsigned long long)req->req_id,
                    (unsigned long long)resp->req_id);
        return CW_EDECODE;
    }
    if (resp->err != CW_OK) {
        if (resp->message[0] != '\0')
            client_fail(c, "%s", resp->message);
        else
            client_fail(c, "%s at %s: %s", op_name(req->op), c->endpoint, cw_strerror(resp->err));
        return resp->err > 0 && resp->err < CW_ERR_COUNT_ ? resp->err : CW_EDECODE;
    }
    return CW_OK;
}

/* Checks bucket and key before anything is sent, and builds the full key. */
static int check_key(struct cw_client *c, const char *bucket, const void *key, size_t key_len,
                     uint8_t *full, uint32_t *full_len)
{
    if (bucket == NULL || cw_validate_bucket(bucket) != CW_OK) {
        client_fail(c, "bad bucket name \"%.80s\"", bucket ? bucket : "(null)");
        return CW_EBUCKET;
    }
    if (key_len == 0 || key_len > CW_KEY_BYTES_MAX || key == NULL ||
        cw_validate_key(key, (uint32_t)key_len) != CW_OK) {
        client_fail(c, "bad key in bucket %s: keys are 1 to %d bytes, this one has %zu", bucket,
                    CW_KEY_BYTES_MAX, key_len);
        return CW_EKEY;
    }
    size_t blen = strlen(bucket);
    memcpy(full, bucket, blen);
    full[blen] = '/';
    memcpy(full + blen + 1, key, key_len);
    *full_len = (uint32_t)(blen + 1 + key_len);
    return CW_OK;
}

/* A value to send: present when it has a length, and within the wire's 32-bit
 * length. CW_OK, or CW_EINVAL / CW_EVALUE with the client's message set. */
static int check_value(struct cw_client *c, const char *bucket, const void *key, size_t key_len,
                       const void *value, size_t value_len)
{
    if (value_len > 0 && value == NULL) {
        client_fail(c, "value for %s/%.*s is NULL with a length of %zu", bucket,
                    (int)(key_len > 64 ? 64 : key_len), (const char *)key, value_len);
        return CW_EINVAL;
    }
    if (value_len > UINT32_MAX) {
        client_fail(c, "value for %s/%.*s is too large", bucket, (int)(key_len > 64 ? 64 : key_len),
                    (const char *)key);
        return CW_EVALUE;
    }
    return CW_OK;
}

/* A write's reply names its dot; a strong bucket's write (key_version set) may
 * carry no stamp, since Raft, not the HLC, orders it. */
static int check_reply_dot(struct cw_client *c, const struct cw_wire_response *resp)
{
    if (resp->origin >= CW_REGIONS_MAX || (resp->ts == 0 && resp->key_version == 0) ||
        (resp->conflict != CW_CONFLICT_LWW && resp->conflict != CW_CONFLICT_SIBLINGS)) {
        client_fail(c, "malformed reply from %s: bad write stamp or conflict mode", c->endpoint);
        return CW_EDECODE;
    }
    return CW_OK;
}

/* What a write asks for beyond cw_put's arguments: a condition, and whether
 * the caller's result has the version member (cw_put_if, cw_del_if). */
struct write_opts {
    enum cw_put_cond_kind cond;
    uint64_t expected_version;
    bool full_result;
};

static int check_cond(struct cw_client *c, const struct write_opts *w)
{
    switch (w->cond) {
    case CW_PUT_ALWAYS:
    case CW_PUT_IF_ABSENT:
        if (w->expected_version != 0) {
            client_fail(c, "an expected version (%llu) goes with CW_PUT_IF_VERSION only",
                        (unsigned long long)w->expected_version);
            return CW_EINVAL;
        }
        return CW_OK;
    case CW_PUT_IF_VERSION:
        if (w->expected_version == 0) {
            client_fail(c, "versions start at 1: to write only a key that does not exist, use "
                           "CW_PUT_IF_ABSENT");
            return CW_EINVAL;
        }
        return CW_OK;
    }
    client_fail(c, "unknown put condition %d", (int)w->cond);
    return CW_EINVAL;
}

static uint8_t cond_to_core(enum cw_put_cond_kind k)
{
    switch (k) {
    case CW_PUT_IF_VERSION:
        return CW_COND_VERSION;
    case CW_PUT_IF_ABSENT:
        return CW_COND_ABSENT;
    case CW_PUT_ALWAYS:
        break;
    }
    return CW_COND_NONE;
}

static int write_key(struct cw_client *c, struct cw_sess *sess, enum cw_wire_op op,
                     const char *bucket, const void *key, size_t key_len, const void *value,
                     size_t value_len, const char *context_token, const struct write_opts *w,
                     struct cw_put_result *out)
{
    c->err[0] = '\0';
    if (out != NULL && w->full_result)
        out->version = 0;
    uint8_t full[FULL_KEY_MAX];
    uint32_t full_len;
    int rc = check_key(c, bucket, key, key_len, full, &full_len);
    if (rc != CW_OK)
        return rc;
    if ((rc = check_value(c, bucket, key, key_len, value, value_len)) != CW_OK)
        return rc;
    rc = check_cond(c, w);
    if (rc != CW_OK)
        return rc;
    struct cw_wire_request req = {.op = op};
    strcpy(req.bucket, bucket);
    req.key = (uint8_t *)key;
    req.key_len = (uint32_t)key_len;
    req.cond = cond_to_core(w->cond);
    req.cond_version = w->expected_version;
    req.value = value_len > 0 ? (uint8_t *)value : NULL;
    req.value_len = (uint32_t)value_len;
    bool explicit_kctx = false;
    if (context_token != NULL) {
        if (cw_token_parse(context_token, &req.kctx) != CW_OK) {
            client_fail(c, "malformed context token \"%.64s\"", context_token);
            return CW_ECONTEXT;
        }
        req.has_kctx = true;
        explicit_kctx = true;
    } else if (sess != NULL) {
        const struct cw_vclock *k = cw_session_kctx(&sess->core, full, full_len);
        if (k != NULL) {
            req.kctx = *k;
            req.has_kctx = true;
        }
    }
    if (sess != NULL)
        req.context = sess->core.context;
    /* The write replaces what its key context names, so it depends on it too. */
    cw_vc_join(&req.context, &req.kctx);

    struct cw_wire_response resp;
    rc = call(c, &req, false, &resp);
    if (rc == CW_ECONFLICT && out != NULL && w->full_result)
        out->version = resp.key_version;
    if (rc == CW_OK)
        rc = check_reply_dot(c, &resp);
    if (rc != CW_OK)
        goto done;
    if (sess != NULL) {
        struct cw_reply reply = {
            .kind = CW_REPLY_PUT,
            .req_id = resp.req_id,
            .err = CW_OK,
            .dot = {resp.origin, resp.ts},
            .kctx_valid = resp.kctx_valid,
            .kctx = resp.kctx,
            .seen = resp.seen,
            .conflict = (enum cw_conflict)resp.conflict,
        };
        /* Whatever the server reports, the session has seen its own write. */
        cw_vc_join_dot(&reply.seen, resp.origin, resp.ts);
        cw_vc_join(&sess->core.context, &req.kctx);
        /* A put that left other siblings keeps the context it wrote with, so an
         * explicit one becomes the remembered one. */
        if (explicit_kctx && reply.conflict == CW_CONFLICT_SIBLINGS && !reply.kctx_valid)
            rc = cw_session_set_kctx(&sess->core, full, full_len, &req.kctx);
        if (rc == CW_OK)
            rc = cw_session_observe(&sess->core, full, full_len, &reply);
        if (rc != CW_OK) {
            client_fail(c, "the write succeeded but the session could not record it: %s",
                        cw_strerror(rc));
            goto done;
        }
    }
    if (out != NULL) {
        out->origin = resp.origin;
        out->ts = resp.ts;
        if (w->full_result)
            out->version = resp.key_version;
    }
done:
    cw_wire_response_free(&resp);
    return rc;
}

int cw_put(struct cw_client *c, struct cw_sess *sess, const char *bucket, const void *key,
           size_t key_len, const void *value, size_t value_len, const char *context_token,
           struct cw_put_result *out)
{
    /* A caller of cw_put may have been built against a header whose
     * cw_put_result had no version member: never write it here. */
    static const struct write_opts w = {.cond = CW_PUT_ALWAYS};
    return write_key(c, sess, CW_OP_PUT, bucket, key, key_len, value, value_len, context_token, &w,
                     out);
}

int cw_del(struct cw_client *c, struct cw_sess *sess, const char *bucket, const void *key,
           size_t key_len, const char *context_token, struct cw_put_result *out)
{
    static const struct write_opts w = {.cond = CW_PUT_ALWAYS};
    return write_key(c, sess, CW_OP_DEL, bucket, key, key_len, NULL, 0, context_token, &w, out);
}

int cw_put_if(struct cw_client *c, struct cw_sess *sess, const char *bucket, const void *key,
              size_t key_len, const void *value, size_t value_len, enum cw_put_cond_kind cond,
              uint64_t expected_version, struct cw_put_result *out)
{
    struct write_opts w = {.cond = cond, .expected_version = expected_version, .full_result = true};
    return write_key(c, sess, CW_OP_PUT, bucket, key, key_len, value, value_len, NULL, &w, out);
}

int cw_del_if(struct cw_client *c, struct cw_sess *sess, const char *bucket, const void *key,
              size_t key_len, enum cw_put_cond_kind cond, uint64_t expected_version,
              struct cw_put_result *out)
{
    struct write_opts w = {.cond = cond, .expected_version = expected_version, .full_result = true};
    return write_key(c, sess, CW_OP_DEL, bucket, key, key_len, NULL, 0, NULL, &w, out);
}

/* Builds the public result from a GET response in one allocation (the struct,
 * the version array, then the values), so one free releases it. */
static int make_result(struct cw_client *c, const struct cw_wire_response *resp,
                       struct cw_get_result **out)
{
    size_t n = 0, bytes = 0;
    for (uint32_t i = 0; i < resp->n_versions; i++) {
        const struct cw_version *v = &resp->versions[i];
        if (v->dot.origin >= CW_REGIONS_MAX) {
            client_fail(c, "malformed reply from %s: version with region id %u", c->endpoint,
                        (unsigned)v->dot.origin);
            return CW_EDECODE;
        }
        if (v->tombstone)
            continue;
        n++;
        bytes += v->value_len;
    }
    size_t align = _Alignof(struct cw_value_version);
    size_t off_versions = (sizeof(struct cw_get_result) + align - 1) / align * align;
    size_t off_values = off_versions + n * sizeof(struct cw_value_version);
    uint8_t *block = calloc(1, off_values + bytes);
    if (block == NULL)
        return CW_ENOMEM;
    struct cw_get_result *r = (struct cw_get_result *)block;
    r->versions = n > 0 ? (struct cw_value_version *)(block + off_versions) : NULL;
    r->n = n;
    r->found = n > 0;
    r->siblings = resp->conflict == CW_CONFLICT_SIBLINGS;
    r->version = resp->key_version;
    cw_token_format(&resp->kctx, r->context);
    uint8_t *val = block + off_values;
    size_t k = 0;
    for (uint32_t i = 0; i < resp->n_versions; i++) {
        const struct cw_version *v = &resp->versions[i];
        if (v->tombstone)
            continue;
        if (v->value_len > 0)
            memcpy(val, v->value, v->value_len);
        r->versions[k] = (struct cw_value_version){
            .value = val,
            .len = v->value_len,
            .origin = v->dot.origin,
            .ts = v->dot.ts,
        };
        val += v->value_len;
        k++;
    }
    *out = r;
    return CW_OK;
}

int cw_get(struct cw_client *c, struct cw_sess *sess, const char *bucket, const void *key,
           size_t key_len, struct cw_get_result **out)
{
    *out = NULL;
    c->err[0] = '\0';
    uint8_t full[FULL_KEY_MAX];
    uint32_t full_len;
    int rc = check_key(c, bucket, key, key_len, full, &full_len);
    if (rc != CW_OK)
        return rc;
    struct cw_wire_request req = {.op = CW_OP_GET};
    strcpy(req.bucket, bucket);
    req.key = (uint8_t *)key;
    req.key_len = (uint32_t)key_len;
    if (sess != NULL)
        req.context = sess->core.context;

    struct cw_wire_response resp;
    rc = call(c, &req, true, &resp);
    if (rc == CW_OK && resp.conflict != CW_CONFLICT_LWW && resp.conflict != CW_CONFLICT_SIBLINGS) {
        client_fail(c, "malformed reply from %s: unknown conflict mode %u", c->endpoint,
                    (unsigned)resp.conflict);
        rc = CW_EDECODE;
    }
    if (rc == CW_OK)
        rc = make_result(c, &resp, out);
    if (rc == CW_OK && sess != NULL) {
        struct cw_reply reply = {
            .kind = CW_REPLY_GET,
            .req_id = resp.req_id,
            .err = CW_OK,
            .kctx = resp.kctx,
            .seen = resp.seen,
            .conflict = (enum cw_conflict)resp.conflict,
        };
        /* Every version read is seen, whether or not the server listed it. A
         * strong key's version (key_version set) carries the writer's wall
         * clock, not a stamp of the causal streams: its causal meaning is the
         * writer's context, which the server sent in seen. */
        for (uint32_t i = 0; resp.key_version == 0 && i < resp.n_versions; i++)
            cw_vc_join_dot(&reply.seen, resp.versions[i].dot.origin, resp.versions[i].dot.ts);
        rc = cw_session_observe(&sess->core, full, full_len, &reply);
        if (rc != CW_OK) {
            client_fail(c, "the read succeeded but the session could not record it: %s",
                        cw_strerror(rc));
            cw_get_result_free(out);
        }
    }
    cw_wire_response_free(&resp);
    return rc;
}

void cw_get_result_free(struct cw_get_result **r)
{
    if (r == NULL || *r == NULL)
        return;
    free(*r);
    *r = NULL;
}

/* ------------------------------------------------------------------ stamps */

uint64_t cw_stamp_us(uint64_t ts)
{
    return cw_hlc_to_us(ts);
}

int cw_stamp_format(uint64_t ts, char *buf, size_t len)
{
    if (len < CW_STAMP_TEXT_MAX) {
        if (len > 0)
            buf[0] = '\0';
        return CW_ETOOBIG;
    }
    /* 52 bits of microseconds end in the year 2112: always four digits. */
    uint64_t us = cw_hlc_to_us(ts);
    time_t secs = (time_t)(us / 1000000u);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        buf[0] = '\0';
        return CW_EINVAL;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06luZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned long)(us % 1000000u));
    return CW_OK;
}

/* ---------------------------------------------------------- status, admin */

static const char *durability_name(uint32_t d)
{
    switch (d) {
    case CW_WIRE_DURABILITY_SYNC:
        return "sync";
    case CW_WIRE_DURABILITY_WRITE_NOSYNC:
        return "write_nosync";
    case CW_WIRE_DURABILITY_NOSYNC:
        return "nosync";
    default:
        return "unknown";
    }
}

static void latency_from_wire(const struct cw_wire_latency *w, struct cw_status_latency *l)
{
    l->count = w->count;
    l->p50_us = w->p50_us;
    l->p90_us = w->p90_us;
    l->p99_us = w->p99_us;
    l->max_us = w->max_us;
}

static const char *raft_role_name(uint32_t role)
{
    switch (role) {
    case 0:
        return "follower";
    case 1:
        return "precandidate";
    case 2:
        return "candidate";
    case 3:
        return "leader";
    default:
        return "unknown";
    }
}

static void strong_from_wire(const struct cw_wire_strong_status *w, struct cw_status *st)
{
    struct cw_status_strong *s = &st->strong;
    st->has_strong = true;
    snprintf(s->role, sizeof(s->role), "%s", raft_role_name(w->role));
    s->term = w->term;
    s->leader = w->has_leader ? (int)w->leader : -1;
    s->vote = w->has_vote ? (int)w->vote : -1;
    s->commit = w->commit;
    s->applied = w->applied;
    s->log_first = w->log_first;
    s->log_last = w->log_last;
    s->snap_index = w->snap_index;
    s->snap_term = w->snap_term;
    s->n_peers = w->n_peers;
    for (uint32_t i = 0; i < w->n_peers; i++) {
        s->peers[i].id = w->peers[i].region;
        s->peers[i].heard = w->peers[i].heard;
        s->peers[i].last_heard_ms = w->peers[i].last_heard_ms;
        s->peers[i].suspected = w->peers[i].suspected;
    }
    s->elections = w->raft.elections;
    s->prevotes = w->raft.prevotes;
    s->leader_changes = w->raft.leader_changes;
    s->stepdowns_quorum = w->raft.stepdowns_quorum;
    s->proposals_forwarded = w->raft.proposals_forwarded;
    s->read_index_rounds = w->raft.read_index_rounds;
    s->snapshots_sent = w->raft.snapshots_sent;
    s->snapshots_received = w->raft.snapshots_received;
    s->transfers = w->raft.transfers;
    s->msgs_refused = w->raft.msgs_refused;
    s->disruptions = w->raft.disruptions;
    s->puts = w->counters.puts;
    s->gets = w->counters.gets;
    s->conflicts = w->counters.conflicts;
    s->timeouts = w->counters.timeouts;
    s->no_quorum = w->counters.no_quorum;
    s->full = w->counters.full;
    s->keys = w->counters.keys;
    s->bytes = w->counters.bytes;
}

/* The public form of a decoded status (the decoder has checked its rules). */
static void status_from_wire(const struct cw_wire_status *w, struct cw_status *st)
{
    memset(st, 0, sizeof(*st));
    st->id = w->region;
    st->regions.n = w->n_regions;
    for (unsigned i = 0; i < w->n_regions; i++)
        memcpy(st->regions.name[i], w->regions[i], sizeof(st->regions.name[i]));
    snprintf(st->durability, sizeof(st->durability), "%s", durability_name(w->durability));
    st->uptime_us = w->uptime_us;
    st->now_us = w->now_us;
    st->clock = w->clock;
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++) {
        st->applied[i] = w->applied.ts[i];
        st->stable[i] = w->stable.ts[i];
    }
    st->buffered = w->buffered;
    st->outbox_total = w->outbox_total;
    st->waiting = w->waiting;
    st->keys = w->keys;
    st->outbox_bytes = w->outbox_bytes;
    st->buffered_bytes = w->buffered_bytes;
    st->key_cache_bytes = w->key_cache_bytes;
    st->outbox_body_bytes = w->outbox_body_bytes;
    st->n_peers = w->n_peers;
    for (uint32_t i = 0; i < w->n_peers; i++) {
        const struct cw_wire_peer_status *wp = &w->peers[i];
        struct cw_status_peer *p = &st->peers[i];
        p->id = wp->region;
        p->link_cut = wp->link_cut;
        p->delay_ms = wp->delay_ms;
        p->queued = wp->queued;
        p->frames_sent = wp->frames_sent;
        p->frames_dropped = wp->frames_dropped;
        p->frames_received = wp->frames_received;
        p->bytes_sent = wp->bytes_sent;
        p->outbox_pending = wp->outbox_pending;
        latency_from_wire(&wp->visibility, &p->visibility);
        st->inflight_bytes[i] = wp->inflight_bytes;
    }
    struct cw_status_counters *c = &st->counters;
    c->puts = w->replica.puts;
    c->gets = w->replica.gets;
    c->deletes = w->replica.deletes;
    c->remote_applied = w->replica.remote_applied;
    c->remote_duplicates = w->replica.remote_duplicates;
    c->remote_gaps = w->replica.remote_gaps;
    c->nacks_sent = w->replica.nacks_sent;
    c->nacks_received = w->replica.nacks_received;
    c->resent_records = w->replica.resent_records;
    c->requests_waited = w->replica.requests_waited;
    c->requests_timed_out = w->replica.requests_timed_out;
    c->buffer_full_drops = w->replica.buffer_full_drops;
    c->tombstones_collected = w->replica.tombstones_collected;
    c->stamps_refused = w->replica.stamps_refused;
    c->errors = w->replica.errors;
    c->requests = w->node.requests;
    c->bad_requests = w->node.bad_requests;
    c->bad_peer_frames = w->node.bad_peer_frames;
    c->replies_dropped = w->node.replies_dropped;
    c->commits = w->node.commits;
    c->commit_records = w->node.commit_records;
    c->auth_refused = w->node.auth_refused;
    c->handshakes_failed = w->node.handshakes_failed;
    c->peer_identity_refused = w->node.peer_identity_refused;
    c->admin_refused = w->node.admin_refused;
    st->keys_loaded = w->replica.keys_loaded;
    st->keys_evicted = w->replica.keys_evicted;
    st->bodies_loaded = w->replica.bodies_loaded;
    st->bodies_evicted = w->replica.bodies_evicted;
    st->store_read_errors = w->replica.store_read_errors;
    st->checkpoints_failed = w->node.checkpoints_failed;
    st->checkpoints_failing = w->node.checkpoints_failing;
    if (w->has_strong)
        strong_from_wire(&w->strong, st);
    st->replication.records = w->replication.records;
    st->replication.frames = w->replication.frames;
    st->replication.metadata_bytes = w->replication.metadata_bytes;
    st->replication.key_bytes = w->replication.key_bytes;
    st->replication.value_bytes = w->replication.value_bytes;
    st->replication.batch_bytes = w->replication.batch_bytes;
    st->replication.batch_lz4_bytes = w->replication.batch_lz4_bytes;
    st->replication.frame_bytes = w->replication.frame_bytes;
    st->client_connections = w->client_connections;
    st->client_connections_max = w->client_connections_max;
    st->connections_refused = w->node.connections_refused;
}

int cw_status_get(struct cw_client *c, struct cw_status **out)
{
    *out = NULL;
    c->err[0] = '\0';
    struct cw_wire_request req = {.op = CW_OP_STATUS};
    struct cw_wire_response resp;
    int rc = call(c, &req, true, &resp);
    if (rc == CW_EDECODE && c->err[0] != '\0')
        /* The usual cause: a node of an older release, whose STATUS reply is a
         * JSON document this library no longer reads. */
        strncat(c->err, " (a node of an older causeway release? run the same release everywhere)",
                sizeof(c->err) - strlen(c->err) - 1);
    if (rc == CW_OK && resp.status == NULL) {
        client_fail(c, "malformed reply from %s: status without a status", c->endpoint);
        rc = CW_EDECODE;
    }
    if (rc == CW_OK) {
        *out = malloc(sizeof(**out));
        if (*out == NULL)
            rc = CW_ENOMEM;
        else
            status_from_wire(resp.status, *out);
    }
    cw_wire_response_free(&resp);
    return rc;
}

void cw_status_free(struct cw_status **s)
{
    if (s == NULL || *s == NULL)
        return;
    free(*s);
    *s = NULL;
}

#if !defined(JSON_INTEGER_IS_LONG_LONG) || !JSON_INTEGER_IS_LONG_LONG
#error "jansson must be built with json_int_t as long long (64-bit integers)"
#endif
_Static_assert(sizeof(json_int_t) == 8, "jansson integers must hold 64 bits");

/*
 * A 64-bit unsigned value as JSON, exactly: an integer when it fits json_int_t
 * (long long), else a decimal string. Counters never get there; a stamp does
 * only when a clock reads past 2^51 microseconds after the epoch (May 2041),
 * since a node refuses stamps more than 60 s ahead of its physical time.
 */
static json_t *json_u64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)v);
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    return json_string(buf);
}

/* Sets obj[key] = val, taking val; false when either is missing (out of memory). */
static bool jset(json_t *obj, const char *key, json_t *val)
{
    return val != NULL && json_object_set_new(obj, key, val) == 0;
}

/* Per region id in 0..n-1: {"name": stamp}. */
static json_t *json_vector(const struct cw_status *s, const uint64_t *v)
{
    json_t *o = json_object();
    bool ok = o != NULL;
    for (unsigned i = 0; ok && i < s->regions.n; i++)
        ok = jset(o, s->regions.name[i], json_u64(v[i]));
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

size_t cw_status_counter_list(const struct cw_status *s, struct cw_status_counter *out,
                              size_t max)
{
    const struct cw_status_counters *c = &s->counters;
    const struct cw_status_counter f[] = {
        {"puts", c->puts},
        {"gets", c->gets},
        {"deletes", c->deletes},
        {"remote_applied", c->remote_applied},
        {"remote_duplicates", c->remote_duplicates},
        {"remote_gaps", c->remote_gaps},
        {"nacks_sent", c->nacks_sent},
        {"nacks_received", c->nacks_received},
        {"resent_records", c->resent_records},
        {"requests_waited", c->requests_waited},
        {"requests_timed_out", c->requests_timed_out},
        {"buffer_full_drops", c->buffer_full_drops},
        {"tombstones_collected", c->tombstones_collected},
        {"stamps_refused", c->stamps_refused},
        {"keys_loaded", s->keys_loaded},
        {"keys_evicted", s->keys_evicted},
        {"bodies_loaded", s->bodies_loaded},
        {"bodies_evicted", s->bodies_evicted},
        {"store_read_errors", s->store_read_errors},
        {"errors", c->errors},
        {"requests", c->requests},
        {"bad_requests", c->bad_requests},
        {"bad_peer_frames", c->bad_peer_frames},
        {"replies_dropped", c->replies_dropped},
        {"commits", c->commits},
        {"commit_records", c->commit_records},
        {"checkpoints_failed", s->checkpoints_failed},
        {"checkpoints_failing", s->checkpoints_failing},
        {"auth_refused", c->auth_refused},
        {"handshakes_failed", c->handshakes_failed},
        {"peer_identity_refused", c->peer_identity_refused},
        {"admin_refused", c->admin_refused},
        {"repl_records", s->replication.records},
        {"repl_frames", s->replication.frames},
        {"repl_metadata_bytes", s->replication.metadata_bytes},
        {"repl_key_bytes", s->replication.key_bytes},
        {"repl_value_bytes", s->replication.value_bytes},
        {"repl_batch_bytes", s->replication.batch_bytes},
        {"repl_batch_lz4_bytes", s->replication.batch_lz4_bytes},
        {"repl_frame_bytes", s->replication.frame_bytes},
        {"connections_refused", s->connections_refused},
    };
    size_t n = sizeof(f) / sizeof(f[0]);
    for (size_t i = 0; i < n && i < max; i++)
        out[i] = f[i];
    return n;
}

void cw_status_replication_ratios(const struct cw_status_replication *r,
                                  double *metadata_per_record, double *lz4_ratio)
{
    if (metadata_per_record != NULL)
        *metadata_per_record =
            r->records ? (double)r->metadata_bytes / (double)r->records : (double)NAN;
    if (lz4_ratio != NULL)
        *lz4_ratio =
            r->batch_lz4_bytes ? (double)r->batch_bytes / (double)r->batch_lz4_bytes : (double)NAN;
}

/* A ratio as JSON: a number, or null when it has no divisor (NAN). */
static json_t *json_ratio(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

/* "replication": the derived figures of the repl_ counters. */
static json_t *json_replication(const struct cw_status *s)
{
    double meta, lz4;
    cw_status_replication_ratios(&s->replication, &meta, &lz4);
    json_t *o = json_object();
    bool ok = o != NULL && jset(o, "metadata_bytes_per_record", json_ratio(meta)) &&
              jset(o, "lz4_ratio", json_ratio(lz4));
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

static json_t *json_counters(const struct cw_status *s)
{
    struct cw_status_counter f[64];
    size_t n = cw_status_counter_list(s, f, sizeof(f) / sizeof(f[0]));
    CW_ASSERT(n <= sizeof(f) / sizeof(f[0]));
    json_t *o = json_object();
    bool ok = o != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = jset(o, f[i].name, json_u64(f[i].value));
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

static json_t *json_peer(const struct cw_status *s, unsigned i)
{
    const struct cw_status_peer *p = &s->peers[i];
    json_t *o = json_object();
    bool ok = o != NULL && jset(o, "region", json_string(s->regions.name[p->id])) &&
              jset(o, "id", json_integer(p->id)) &&
              jset(o, "link", json_string(p->link_cut ? "cut" : "up")) &&
              jset(o, "delay_ms", json_integer(p->delay_ms)) &&
              jset(o, "queued", json_u64(p->queued)) &&
              jset(o, "frames_sent", json_u64(p->frames_sent)) &&
              jset(o, "frames_dropped", json_u64(p->frames_dropped)) &&
              jset(o, "frames_received", json_u64(p->frames_received)) &&
              jset(o, "bytes_sent", json_u64(p->bytes_sent)) &&
              jset(o, "outbox_pending", json_u64(p->outbox_pending)) &&
              jset(o, "inflight_bytes", json_u64(s->inflight_bytes[i]));
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

/* Visibility in milliseconds (fractions of a millisecond matter on a LAN). */
static json_t *json_visibility(const struct cw_status_latency *l)
{
    json_t *o = json_object();
    bool ok = o != NULL && jset(o, "p50", json_real((double)l->p50_us / 1000.0)) &&
              jset(o, "p90", json_real((double)l->p90_us / 1000.0)) &&
              jset(o, "p99", json_real((double)l->p99_us / 1000.0)) &&
              jset(o, "max", json_real((double)l->max_us / 1000.0)) &&
              jset(o, "count", json_u64(l->count));
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

/* Adds an empty container to obj under key and returns it borrowed (NULL when
 * out of memory; obj then owns nothing new). */
static json_t *jadd(json_t *obj, const char *key, json_t *container)
{
    return jset(obj, key, container) ? container : NULL;
}

/* A region by id as its name, or null (no leader, no vote). */
static json_t *json_region_or_null(const struct cw_status *s, int id)
{
    return id >= 0 ? json_string(s->regions.name[id]) : json_null();
}

static json_t *json_raft_peer(const struct cw_status *s, const struct cw_status_raft_peer *p)
{
    json_t *o = json_object();
    bool ok = o != NULL && jset(o, "region", json_string(s->regions.name[p->id])) &&
              jset(o, "id", json_integer(p->id)) &&
              jset(o, "last_heard_ms", p->heard ? json_u64(p->last_heard_ms) : json_null()) &&
              jset(o, "suspected", json_boolean(p->suspected));
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

size_t cw_status_strong_counter_list(const struct cw_status *s, struct cw_status_counter *out,
                                     size_t max)
{
    const struct cw_status_strong *g = &s->strong;
    const struct cw_status_counter f[] = {
        {"elections", g->elections},
        {"prevotes", g->prevotes},
        {"leader_changes", g->leader_changes},
        {"stepdowns_quorum", g->stepdowns_quorum},
        {"proposals_forwarded", g->proposals_forwarded},
        {"read_index_rounds", g->read_index_rounds},
        {"snapshots_sent", g->snapshots_sent},
        {"snapshots_received", g->snapshots_received},
        {"transfers", g->transfers},
        {"msgs_refused", g->msgs_refused},
        {"disruptions", g->disruptions},
        {"puts", g->puts},
        {"gets", g->gets},
        {"conflicts", g->conflicts},
        {"timeouts", g->timeouts},
        {"no_quorum", g->no_quorum},
        {"full", g->full},
    };
    size_t n = sizeof(f) / sizeof(f[0]);
    for (size_t i = 0; out != NULL && i < n && i < max; i++)
        out[i] = f[i];
    return n;
}

/* "strong": the Raft group and the strong buckets' counters. */
static json_t *json_strong(const struct cw_status *s)
{
    const struct cw_status_strong *g = &s->strong;
    struct cw_status_counter f[CW_STATUS_STRONG_COUNTERS_MAX];
    size_t n_f = cw_status_strong_counter_list(s, f, CW_STATUS_STRONG_COUNTERS_MAX);
    json_t *o = json_object();
    json_t *peers = NULL, *counters = NULL, *log = NULL, *snap = NULL;
    bool ok =
        o != NULL && jset(o, "role", json_string(g->role)) && jset(o, "term", json_u64(g->term)) &&
        jset(o, "leader", json_region_or_null(s, g->leader)) &&
        jset(o, "vote", json_region_or_null(s, g->vote)) &&
        jset(o, "commit", json_u64(g->commit)) && jset(o, "applied", json_u64(g->applied)) &&
        (log = jadd(o, "log", json_object())) != NULL &&
        jset(log, "first", json_u64(g->log_first)) && jset(log, "last", json_u64(g->log_last)) &&
        (snap = jadd(o, "snapshot", json_object())) != NULL &&
        jset(snap, "index", json_u64(g->snap_index)) &&
        jset(snap, "term", json_u64(g->snap_term)) && jset(o, "keys", json_u64(g->keys)) &&
        jset(o, "bytes", json_u64(g->bytes)) && (peers = jadd(o, "peers", json_array())) != NULL &&
        (counters = jadd(o, "counters", json_object())) != NULL;
    for (unsigned i = 0; ok && i < g->n_peers; i++)
        ok = json_array_append_new(peers, json_raft_peer(s, &g->peers[i])) == 0;
    for (size_t i = 0; ok && i < n_f; i++)
        ok = jset(counters, f[i].name, json_u64(f[i].value));
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

static json_t *status_to_json(const struct cw_status *s)
{
    json_t *doc = json_object();
    if (doc == NULL)
        return NULL;
    /* Members in the order a person reads them; the containers belong to doc
     * from the start and are filled afterwards. */
    json_t *regions = NULL, *peers = NULL, *outbox = NULL, *vis = NULL;
    bool ok = jset(doc, "region", json_string(s->regions.name[s->id])) &&
              jset(doc, "id", json_integer(s->id)) &&
              (regions = jadd(doc, "regions", json_array())) != NULL &&
              jset(doc, "durability", json_string(s->durability)) &&
              jset(doc, "uptime_us", json_u64(s->uptime_us)) &&
              jset(doc, "now_us", json_u64(s->now_us)) && jset(doc, "clock", json_u64(s->clock)) &&
              jset(doc, "applied", json_vector(s, s->applied)) &&
              jset(doc, "stable", json_vector(s, s->stable)) &&
              jset(doc, "buffered", json_u64(s->buffered)) &&
              jset(doc, "buffered_bytes", json_u64(s->buffered_bytes)) &&
              jset(doc, "outbox_total", json_u64(s->outbox_total)) &&
              jset(doc, "outbox_bytes", json_u64(s->outbox_bytes)) &&
              jset(doc, "outbox_body_bytes", json_u64(s->outbox_body_bytes)) &&
              jset(doc, "waiting", json_u64(s->waiting)) && jset(doc, "keys", json_u64(s->keys)) &&
              jset(doc, "key_cache_bytes", json_u64(s->key_cache_bytes)) &&
              jset(doc, "client_connections", json_u64(s->client_connections)) &&
              jset(doc, "client_connections_max", json_u64(s->client_connections_max)) &&
              (peers = jadd(doc, "peers", json_array())) != NULL &&
              (outbox = jadd(doc, "outbox", json_object())) != NULL &&
              (vis = jadd(doc, "visibility_ms", json_object())) != NULL &&
              jset(doc, "counters", json_counters(s)) &&
              jset(doc, "replication", json_replication(s));
    if (ok && s->has_strong)
        ok = jset(doc, "strong", json_strong(s));
    for (unsigned i = 0; ok && i < s->regions.n; i++)
        ok = json_array_append_new(regions, json_string(s->regions.name[i])) == 0;
    for (unsigned i = 0; ok && i < s->n_peers; i++) {
        const struct cw_status_peer *p = &s->peers[i];
        const char *name = s->regions.name[p->id];
        ok = json_array_append_new(peers, json_peer(s, i)) == 0 &&
             jset(outbox, name, json_u64(p->outbox_pending)) &&
             jset(vis, name, json_visibility(&p->visibility));
    }
    if (!ok) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* The ids a status names must be inside its region list. */
static bool status_ids_ok(const struct cw_status *s)
{
    if (s->regions.n == 0 || s->regions.n > CW_REGION_NAMES_MAX || s->id >= s->regions.n ||
        s->n_peers >= s->regions.n)
        return false;
    for (unsigned i = 0; i < s->n_peers; i++)
        if (s->peers[i].id >= s->regions.n)
            return false;
    for (unsigned i = 0; i < s->regions.n; i++)
        if (memchr(s->regions.name[i], '\0', sizeof(s->regions.name[i])) == NULL)
            return false;
    if (!s->has_strong)
        return true;
    const struct cw_status_strong *g = &s->strong;
    if (g->leader < -1 || g->leader >= (int)s->regions.n || g->vote < -1 ||
        g->vote >= (int)s->regions.n || g->n_peers >= s->regions.n ||
        memchr(g->role, '\0', sizeof(g->role)) == NULL)
        return false;
    for (unsigned i = 0; i < g->n_peers; i++)
        if (g->peers[i].id >= s->regions.n)
            return false;
    return true;
}

int cw_status_to_json(const struct cw_status *s, char **json)
{
    *json = NULL;
    if (!status_ids_ok(s))
        return CW_EINVAL;
    json_t *doc = status_to_json(s);
    if (doc == NULL)
        return CW_ENOMEM;
    /* 15 significant digits: a figure like 40.1 ms prints as 40.1. */
    *json = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(doc);
    return *json != NULL ? CW_OK : CW_ENOMEM;
}

int cw_status_json(struct cw_client *c, char **json)
{
    *json = NULL;
    struct cw_status *st = NULL;
    int rc = cw_status_get(c, &st);
    if (rc != CW_OK)
        return rc;
    rc = cw_status_to_json(st, json);
    if (rc != CW_OK)
        client_fail(c, "cannot render the status of %s as JSON: %s", c->endpoint, cw_strerror(rc));
    cw_status_free(&st);
    return rc;
}

int cw_status_regions(const char *status_json, struct cw_regions *out)
{
    memset(out, 0, sizeof(*out));
    if (status_json == NULL)
        return CW_EDECODE;
    /* jansson refuses \u0000 inside strings unless asked, so a name cannot be
     * cut short by an embedded NUL. */
    json_t *doc = json_loads(status_json, 0, NULL);
    const json_t *regions = json_object_get(doc, "regions");
    int rc = CW_EDECODE;
    size_t n = json_array_size(regions);
    if (!json_is_array(regions) || n == 0 || n > CW_REGION_NAMES_MAX)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const json_t *name = json_array_get(regions, i);
        size_t len = json_string_length(name);
        if (!json_is_string(name) || len == 0 || len > CW_REGION_NAME_LEN_MAX)
            goto done;
        memcpy(out->name[i], json_string_value(name), len + 1);
    }
    out->n = (unsigned)n;
    rc = CW_OK;
done:
    json_decref(doc);
    if (rc != CW_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

int cw_region_names(struct cw_client *c, struct cw_regions *out)
{
    memset(out, 0, sizeof(*out));
    struct cw_status *st = NULL;
    int rc = cw_status_get(c, &st);
    if (rc != CW_OK)
        return rc;
    *out = st->regions;
    cw_status_free(&st);
    return CW_OK;
}

_Static_assert((int)CW_ADMIN_LINK_CUT == (int)CW_LINK_CUT, "link ops must match the wire");
_Static_assert((int)CW_ADMIN_LINK_HEAL == (int)CW_LINK_HEAL, "link ops must match the wire");
_Static_assert((int)CW_ADMIN_LINK_DELAY == (int)CW_LINK_DELAY, "link ops must match the wire");

static bool region_name_ok(const char *name)
{
    if (name == NULL)
        return false;
    size_t n = strlen(name);
    return n >= 1 && n <= CW_REGION_NAME_LEN_MAX;
}

int cw_link(struct cw_client *admin, const char *from, const char *to, enum cw_admin_link op,
            unsigned delay_ms)
{
    admin->err[0] = '\0';
    if (!region_name_ok(from) || !region_name_ok(to)) {
        client_fail(admin, "bad region name \"%.40s\": names are 1 to %d characters",
                    region_name_ok(from) ? (to ? to : "(null)") : (from ? from : "(null)"),
                    CW_REGION_NAME_LEN_MAX);
        return CW_EREGION;
    }
    if (op != CW_ADMIN_LINK_CUT && op != CW_ADMIN_LINK_HEAL && op != CW_ADMIN_LINK_DELAY) {
        client_fail(admin, "unknown link operation %d: use cut, heal or delay", (int)op);
        return CW_EINVAL;
    }
    struct cw_wire_request req = {.op = CW_OP_LINK};
    strcpy(req.link_from, from);
    strcpy(req.link_to, to);
    req.link_action = (enum cw_link_action)op;
    req.delay_ms = op == CW_ADMIN_LINK_DELAY ? delay_ms : 0;
    struct cw_wire_response resp;
    int rc = call(admin, &req, false, &resp);
    cw_wire_response_free(&resp);
    return rc;
}

/* --------------------------------------------------------------- pipelining */

/* One request in flight, in submission order. */
struct pipe_slot {
    uint64_t handle; /* its request id */
    enum cw_pipe_op op;
    bool done; /* a reply came (have_resp) or the request failed (rc) */
    bool have_resp;
    int rc;
    struct cw_wire_response resp;
    struct cw_vclock kctx; /* a write: the key context it was sent with */
    uint32_t full_len;
    uint8_t full[FULL_KEY_MAX];
};

struct cw_pipe {
    struct cw_client *c;
    struct cw_sess *sess;
    unsigned depth, head, n; /* slots head .. head + n - 1 (mod depth) are in flight */
    struct pipe_slot *slots;
};

int cw_pipe_new(struct cw_client *c, struct cw_sess *sess, unsigned depth, struct cw_pipe **out)
{
    *out = NULL;
    if (c == NULL || depth == 0 || depth > CW_PIPE_DEPTH_MAX)
        return CW_EINVAL;
    struct cw_pipe *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return CW_ENOMEM;
    p->slots = calloc(depth, sizeof(*p->slots));
    if (p->slots == NULL) {
        free(p);
        return CW_ENOMEM;
    }
    p->c = c;
    p->sess = sess;
    p->depth = depth;
    *out = p;
    return CW_OK;
}

void cw_pipe_free(struct cw_pipe **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    struct cw_pipe *p = *pp;
    if (p->n > 0)
        cw_netclient_reset(p->c->net); /* no late reply may reach a later request */
    for (unsigned i = 0; i < p->depth; i++)
        if (p->slots[i].have_resp)
            cw_wire_response_free(&p->slots[i].resp);
    free(p->slots);
    free(p);
    *pp = NULL;
}

unsigned cw_pipe_pending(const struct cw_pipe *p)
{
    return p->n;
}

static int pipe_submit(struct cw_pipe *p, enum cw_pipe_op op, const char *bucket, const void *key,
                       size_t key_len, const void *value, size_t value_len, uint64_t *handle)
{
    struct cw_client *c = p->c;
    c->err[0] = '\0';
    if (handle != NULL)
        *handle = 0;
    if (p->n == p->depth) {
        client_fail(c, "%u requests already in flight on this pipe: take a result with "
                       "cw_pipe_next first", p->depth);
        return CW_EFULL;
    }
    struct pipe_slot *s = &p->slots[(p->head + p->n) % p->depth];
    int rc = check_key(c, bucket, key, key_len, s->full, &s->full_len);
    if (rc != CW_OK)
        return rc;
    if ((rc = check_value(c, bucket, key, key_len, value, value_len)) != CW_OK)
        return rc;
    static const enum cw_wire_op wire_op[] = {[CW_PIPE_PUT] = CW_OP_PUT,
                                              [CW_PIPE_DEL] = CW_OP_DEL,
                                              [CW_PIPE_GET] = CW_OP_GET};
    struct cw_wire_request req = {.op = wire_op[op]};
    strcpy(req.bucket, bucket);
    req.key = (uint8_t *)key;
    req.key_len = (uint32_t)key_len;
    memset(&s->kctx, 0, sizeof(s->kctx));
    if (op == CW_PIPE_PUT) {
        req.value = value_len > 0 ? (uint8_t *)value : NULL;
        req.value_len = (uint32_t)value_len;
    }
    if (p->sess != NULL)
        req.context = p->sess->core.context;
    if (op != CW_PIPE_GET && p->sess != NULL) {
        const struct cw_vclock *k = cw_session_kctx(&p->sess->core, s->full, s->full_len);
        if (k != NULL) {
            req.kctx = *k;
            req.has_kctx = true;
            s->kctx = *k;
        }
        cw_vc_join(&req.context, &req.kctx);
    }
    req.req_id = c->next_req_id++;
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    rc = cw_wire_encode_request(&req, &frame, &frame_len);
    if (rc != CW_OK) {
        client_fail(c, "cannot encode the %s request: %s", op_name(req.op), cw_strerror(rc));
        return rc;
    }
    rc = cw_netclient_send(c->net, frame, frame_len, (int)c->opt.timeout_ms);
    free(frame);
    if (refused(c, rc))
        return rc;
    if (rc == CW_EUNAVAILABLE) {
        client_fail(c, "cannot reach %s within %u ms", c->endpoint, c->opt.timeout_ms);
        return rc;
    }
    if (rc != CW_OK) {
        client_fail(c, "%s request to %s failed: %s", op_name(req.op), c->endpoint,
                    cw_strerror(rc));
        return rc;
    }
    s->handle = req.req_id;
    s->op = op;
    s->done = s->have_resp = false;
    s->rc = CW_OK;
    p->n++;
    if (handle != NULL)
        *handle = req.req_id;
    return CW_OK;
}

int cw_pipe_put(struct cw_pipe *p, const char *bucket, const void *key, size_t key_len,
                const void *value, size_t value_len, uint64_t *handle)
{
    return pipe_submit(p, CW_PIPE_PUT, bucket, key, key_len, value, value_len, handle);
}

int cw_pipe_del(struct cw_pipe *p, const char *bucket, const void *key, size_t key_len,
                uint64_t *handle)
{
    return pipe_submit(p, CW_PIPE_DEL, bucket, key, key_len, NULL, 0, handle);
}

int cw_pipe_get(struct cw_pipe *p, const char *bucket, const void *key, size_t key_len,
                uint64_t *handle)
{
    return pipe_submit(p, CW_PIPE_GET, bucket, key, key_len, NULL, 0, handle);
}

/* Every request still without a reply fails with rc; the socket is replaced so
 * that their late replies can never be taken for a later request's. */
static void pipe_fail_all(struct cw_pipe *p, int rc)
{
    for (unsigned i = 0; i < p->n; i++) {
        struct pipe_slot *s = &p->slots[(p->head + i) % p->depth];
        if (!s->done) {
            s->done = true;
            s->rc = rc;
        }
    }
    cw_netclient_reset(p->c->net);
}

/* Waits for one reply and files it with its request. */
static void pipe_receive(struct cw_pipe *p)
{
    struct cw_client *c = p->c;
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    int rc = cw_netclient_recv(c->net, (int)c->opt.timeout_ms, &reply, &reply_len);
    if (rc != CW_OK) {
        pipe_fail_all(p, rc);
        return;
    }
    struct cw_wire_limits lim;
    cw_wire_limits_default(&lim);
    lim.frame_bytes_max = CW_WIRE_RESPONSE_BYTES_MAX;
    lim.value_bytes_max = CW_WIRE_FRAME_BYTES_MAX;
    struct cw_wire_response resp;
    memset(&resp, 0, sizeof(resp));
    rc = cw_wire_decode_response(reply, reply_len, &lim, &resp);
    free(reply);
    if (rc != CW_OK) {
        cw_wire_response_free(&resp);
        pipe_fail_all(p, rc);
        return;
    }
    for (unsigned i = 0; i < p->n; i++) {
        struct pipe_slot *s = &p->slots[(p->head + i) % p->depth];
        if (s->handle == resp.req_id && !s->done) {
            s->resp = resp;
            s->have_resp = s->done = true;
            return;
        }
    }
    cw_wire_response_free(&resp); /* no request of this pipe: ignored */
}

/* What cw_put/cw_get do with a reply, for the pipe's head request. */
static int pipe_finish(struct cw_pipe *p, struct pipe_slot *s, struct cw_pipe_result *out)
{
    struct cw_client *c = p->c;
    struct cw_wire_response *resp = &s->resp;
    static const enum cw_wire_op wire_op[] = {[CW_PIPE_PUT] = CW_OP_PUT,
                                              [CW_PIPE_DEL] = CW_OP_DEL,
                                              [CW_PIPE_GET] = CW_OP_GET};
    enum cw_wire_op op = wire_op[s->op];
    if (resp->op != op && resp->op != CW_OP_NONE) {
        client_fail(c, "reply from %s does not match the %s request (id %llu)", c->endpoint,
                    op_name(op), (unsigned long long)s->handle);
        return CW_EDECODE;
    }
    if (resp->err != CW_OK) {
        if (resp->message[0] != '\0')
            client_fail(c, "%s", resp->message);
        else
            client_fail(c, "%s at %s: %s", op_name(op), c->endpoint, cw_strerror(resp->err));
        return resp->err > 0 && resp->err < CW_ERR_COUNT_ ? resp->err : CW_EDECODE;
    }
    if (resp->conflict != CW_CONFLICT_LWW && resp->conflict != CW_CONFLICT_SIBLINGS) {
        client_fail(c, "malformed reply from %s: unknown conflict mode %u", c->endpoint,
                    (unsigned)resp->conflict);
        return CW_EDECODE;
    }
    int rc;
    if (s->op == CW_PIPE_GET) {
        rc = make_result(c, resp, &out->get);
        if (rc != CW_OK || p->sess == NULL)
            return rc;
        struct cw_reply reply = {
            .kind = CW_REPLY_GET,
            .req_id = resp->req_id,
            .err = CW_OK,
            .kctx = resp->kctx,
            .seen = resp->seen,
            .conflict = (enum cw_conflict)resp->conflict,
        };
        for (uint32_t i = 0; resp->key_version == 0 && i < resp->n_versions; i++)
            cw_vc_join_dot(&reply.seen, resp->versions[i].dot.origin, resp->versions[i].dot.ts);
        rc = cw_session_observe(&p->sess->core, s->full, s->full_len, &reply);
        if (rc != CW_OK) {
            client_fail(c, "the read succeeded but the session could not record it: %s",
                        cw_strerror(rc));
            cw_get_result_free(&out->get);
        }
        return rc;
    }
    rc = check_reply_dot(c, resp);
    if (rc != CW_OK)
        return rc;
    out->put.origin = resp->origin;
    out->put.ts = resp->ts;
    out->put.version = resp->key_version;
    if (p->sess == NULL)
        return CW_OK;
    struct cw_reply reply = {
        .kind = CW_REPLY_PUT,
        .req_id = resp->req_id,
        .err = CW_OK,
        .dot = {resp->origin, resp->ts},
        .kctx_valid = resp->kctx_valid,
        .kctx = resp->kctx,
        .seen = resp->seen,
        .conflict = (enum cw_conflict)resp->conflict,
    };
    cw_vc_join_dot(&reply.seen, resp->origin, resp->ts);
    cw_vc_join(&p->sess->core.context, &s->kctx);
    rc = cw_session_observe(&p->sess->core, s->full, s->full_len, &reply);
    if (rc != CW_OK)
        client_fail(c, "the write succeeded but the session could not record it: %s",
                    cw_strerror(rc));
    return rc;
}

int cw_pipe_next(struct cw_pipe *p, struct cw_pipe_result *out)
{
    memset(out, 0, sizeof(*out));
    struct cw_client *c = p->c;
    if (p->n == 0) {
        client_fail(c, "no request in flight on this pipe");
        return CW_EINVAL;
    }
    struct pipe_slot *s = &p->slots[p->head];
    while (!s->done)
        pipe_receive(p);
    out->handle = s->handle;
    out->op = s->op;
    if (s->have_resp) {
        out->rc = pipe_finish(p, s, out);
        cw_wire_response_free(&s->resp);
        s->have_resp = false;
    } else {
        out->rc = s->rc;
        if (s->rc == CW_ETIMEOUT)
            client_fail(c,
                        "no reply to %s from %s within %u ms; a write may or may not have been "
                        "applied (not retried)",
                        s->op == CW_PIPE_GET ? "get" : s->op == CW_PIPE_DEL ? "del" : "put",
                        c->endpoint, c->opt.timeout_ms);
        else
            client_fail(c, "request to %s failed: %s", c->endpoint, cw_strerror(s->rc));
    }
    p->head = (p->head + 1) % p->depth;
    p->n--;
    return out->rc;
}
