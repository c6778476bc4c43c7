/*
 * causeway.c - the causeway command-line client: put, get and delete keys,
 * show a node's status and change emulated WAN links, from a shell.
 *
 * It is a thin shell over libcauseway (include/causeway.h): it finds the
 * endpoint (directly, or a region's endpoint in the cluster config), keeps a
 * causal session in a file between invocations (--session), and prints either
 * human text or exactly one JSON object per command (--json). docs/causeway.1
 * is its manual; keep the two in step.
 *
 * Exit statuses: 0 success, 1 operational error, 2 bad usage (nothing was
 * sent), 3 key not found.
 */
#include <causeway.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/json.h"
#include "core/limits.h"
#include "server/config.h"

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
    EXIT_NOTFOUND = 3,
};

#define TIMEOUT_MS_MAX 3600000u
#define DELAY_MS_MAX CW_LINK_DELAY_MS_MAX /* as the config's [latency] and the daemon */
/* A value read from standard input; servers accept at most their configured
 * maximum (1 MiB by default), so this only stops runaway input. */
#define STDIN_VALUE_MAX (64u << 20)
#define POSITIONAL_MAX 8

static const char *const main_help =
    "usage: causeway [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "A command-line client for causeway, a causally consistent, geo-replicated\n"
    "key-value store.\n"
    "\n"
    "Where to send the request (one of):\n"
    "  -c, --config FILE     the cluster config (geo-configs/*.ini) ...\n"
    "  -r, --region NAME     ... and the region to talk to\n"
    "  -e, --endpoint EP     a node's endpoint, e.g. tcp://127.0.0.1:7001\n"
    "\n"
    "Options:\n"
    "  -s, --session FILE    keep a causal session in FILE (created if missing):\n"
    "                        loaded before put/get/del, saved after they succeed\n"
    "  -j, --json            print exactly one JSON object on stdout\n"
    "  -t, --timeout MS      wait at most MS per attempt (default 10000)\n"
    "  -h, --help            this help; 'causeway COMMAND --help' for a command\n"
    "\n"
    "Commands:\n"
    "  put BUCKET/KEY VALUE [--context TOKEN]   write a value ('-': read stdin)\n"
    "  get BUCKET/KEY                           read a key\n"
    "  del BUCKET/KEY [--context TOKEN]         delete a key\n"
    "  status                                   show the node's status\n"
    "  link FROM TO cut|heal|delay MS           change the emulated link FROM->TO\n"
    "\n"
    "BUCKET/KEY splits at the first '/': the bucket is [a-z0-9_-]{1,64}, the key\n"
    "is the rest (1 to 1024 bytes, may contain '/').\n"
    "\n"
    "Exit status: 0 success, 1 the operation failed, 2 bad usage (nothing was\n"
    "sent), 3 get found no value.\n"
    "\n"
    "Examples:\n"
    "  causeway -c geo-configs/three-regions.ini -r us-east -s s.cw put feed/post1 hello\n"
    "  causeway -c geo-configs/three-regions.ini -r eu-west -s s.cw get feed/post1\n"
    "  causeway -e tcp://127.0.0.1:7001 --json get feed/post1\n"
    "  causeway -c geo-configs/three-regions.ini link us-east eu-west cut\n"
    "\n"
    "See causeway(1) for the output formats and more examples.\n";

static const char *const put_help =
    "usage: causeway [OPTIONS] put BUCKET/KEY VALUE [--context TOKEN]\n"
    "\n"
    "Writes VALUE under BUCKET/KEY at the region. A VALUE of '-' reads the value\n"
    "from standard input (binary-safe). The write depends on everything the\n"
    "session has seen (--session), so every region makes it visible only after\n"
    "those writes.\n"
    "\n"
    "In a siblings bucket, --context TOKEN (the 'context:' line printed by get)\n"
    "replaces exactly the versions that get showed; without it, the context the\n"
    "session remembers from its last get of this key is used, or none, and a\n"
    "write next to existing versions then adds a sibling. LWW buckets ignore it.\n"
    "\n"
    "Prints nothing; with --json: {\"key\":\"b/k\",\"origin\":\"us-east\",\"ts\":N}.\n"
    "A write that timed out is not retried (it could apply twice): read the key.\n"
    "\n"
    "Examples:\n"
    "  causeway -e tcp://127.0.0.1:7001 put users/alice '{\"age\":31}'\n"
    "  head -c 100 /dev/urandom | causeway -e tcp://127.0.0.1:7001 put blobs/x -\n"
    "  causeway -e tcp://127.0.0.1:7001 put cart/alice 'milk,eggs' --context cw1-02...\n";

static const char *const get_help =
    "usage: causeway [OPTIONS] get BUCKET/KEY\n"
    "\n"
    "Reads BUCKET/KEY at the region, once the region has applied everything the\n"
    "session has seen (it fails with 'not ready' if that takes too long).\n"
    "\n"
    "Output: for an LWW bucket, the value followed by a newline. For a siblings\n"
    "bucket, one line per version, 'ORIGIN: VALUE' (the value escaped as in JSON\n"
    "so that it stays on one line), then 'context: TOKEN' for a merging put.\n"
    "With --json: {\"key\":\"b/k\",\"found\":true,\"versions\":[{\"value\":\"...\",\n"
    "\"origin\":\"us-east\",\"ts\":N}],\"context\":\"TOKEN\"}.\n"
    "\n"
    "A key with no value (never written, or deleted) prints nothing on stdout\n"
    "(with --json: \"found\":false and no versions), 'causeway: b/k: not found' on\n"
    "stderr, and exits with status 3.\n"
    "\n"
    "Examples:\n"
    "  causeway -e tcp://127.0.0.1:7001 get users/alice\n"
    "  causeway -c c.ini -r eu-west -s s.cw --json get cart/alice\n";

static const char *const del_help =
    "usage: causeway [OPTIONS] del BUCKET/KEY [--context TOKEN]\n"
    "\n"
    "Deletes BUCKET/KEY: writes a tombstone, with the same causal rules and\n"
    "--context as put. Prints nothing; with --json the same object as put.\n"
    "\n"
    "Example:\n"
    "  causeway -c c.ini -r us-east -s s.cw del users/alice\n";

static const char *const status_help =
    "usage: causeway [OPTIONS] status\n"
    "\n"
    "Shows the node's status: its region, the peers with their link state and\n"
    "delay, the applied vector, buffered and outbox records, counters and\n"
    "visibility latencies. With --json, the node's status document unchanged,\n"
    "on one line.\n"
    "\n"
    "Example:\n"
    "  causeway -c geo-configs/three-regions.ini -r us-east status\n";

static const char *const link_help =
    "usage: causeway [OPTIONS] link FROM TO cut|heal|delay MS\n"
    "\n"
    "Changes the emulated WAN link from region FROM to region TO. Links are\n"
    "emulated in the sender, so this goes to FROM's admin endpoint (from\n"
    "--config; with --endpoint, EP must be FROM's admin endpoint) and changes one\n"
    "direction only: cut both directions to partition two regions.\n"
    "  cut       drop everything FROM sends to TO until healed\n"
    "  heal      deliver again\n"
    "  delay MS  set the one-way delay to MS milliseconds\n"
    "Prints nothing; with --json {\"from\":\"a\",\"to\":\"b\",\"action\":\"cut\"}.\n"
    "\n"
    "Examples:\n"
    "  causeway -c geo-configs/three-regions.ini link us-east eu-west cut\n"
    "  causeway -c geo-configs/three-regions.ini link eu-west us-east cut\n"
    "  causeway -c geo-configs/three-regions.ini link us-east eu-west delay 250\n";

struct args {
    const char *config, *region, *endpoint, *session, *context;
    bool json, help;
    unsigned timeout_ms;
    bool timeout_set;
    const char *pos[POSITIONAL_MAX];
    int npos;
};

/* Everything a command needs, and what main releases. */
struct run {
    struct args a;
    struct cw_config cfg;
    bool have_cfg;
    struct cw_client *client;
    struct cw_sess *sess;
    struct cw_regions names;
    bool names_tried;
};

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
    va_list ap;
    fputs("causeway: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'causeway --help'.\n", stderr);
    return EXIT_USAGE;
}

/* Reports a failed library call: what failed, the general sentence and, when it
 * adds something, the detailed message. Returns the exit status. */
static int failed(int rc, const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failed(int rc, const char *detail, const char *fmt, ...)
{
    va_list ap;
    fputs("causeway: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s", cw_strerror(rc));
    if (detail != NULL && detail[0] != '\0' && strcmp(detail, cw_strerror(rc)) != 0)
        fprintf(stderr, " (%s)", detail);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

/* Options may appear anywhere; "--" ends them. Returns EXIT_OK or EXIT_USAGE. */
static int parse_args(int argc, char **argv, struct args *a)
{
    enum opt_id {
        OPT_CONFIG,
        OPT_REGION,
        OPT_ENDPOINT,
        OPT_SESSION,
        OPT_JSON,
        OPT_TIMEOUT,
        OPT_HELP,
        OPT_CONTEXT
    };
    static const struct {
        enum opt_id id;
        char shrt; /* 0: long form only */
        const char *lng;
        bool takes_value;
    } known[] = {
        {OPT_CONFIG, 'c', "config", true},     {OPT_REGION, 'r', "region", true},
        {OPT_ENDPOINT, 'e', "endpoint", true}, {OPT_SESSION, 's', "session", true},
        {OPT_JSON, 'j', "json", false},        {OPT_TIMEOUT, 't', "timeout", true},
        {OPT_HELP, 'h', "help", false},        {OPT_CONTEXT, 0, "context", true},
    };
    bool options_done = false;
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->npos == POSITIONAL_MAX)
                return usage("too many arguments");
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        const char *value = NULL;
        size_t k, n = sizeof(known) / sizeof(known[0]);
        if (arg[1] == '-') {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
            for (k = 0; k < n; k++)
                if (strlen(known[k].lng) == name_len && strncmp(known[k].lng, name, name_len) == 0)
                    break;
            if (k == n)
                return usage("unknown option '%s'", arg);
            if (eq != NULL) {
                if (!known[k].takes_value)
                    return usage("option '--%s' takes no value", known[k].lng);
                value = eq + 1;
            }
        } else {
            for (k = 0; k < n; k++)
                if (known[k].shrt != 0 && arg[1] == known[k].shrt && arg[2] == '\0')
                    break;
            if (k == n)
                return usage("unknown option '%s'", arg);
        }
        if (known[k].takes_value && value == NULL) {
            if (i + 1 >= argc)
                return usage("option '--%s' needs a value", known[k].lng);
            value = argv[++i];
        }
        switch (known[k].id) {
        case OPT_CONFIG:
            a->config = value;
            break;
        case OPT_REGION:
            a->region = value;
            break;
        case OPT_ENDPOINT:
            a->endpoint = value;
            break;
        case OPT_SESSION:
            a->session = value;
            break;
        case OPT_JSON:
            a->json = true;
            break;
        case OPT_TIMEOUT:
            if (!parse_uint(value, TIMEOUT_MS_MAX, &a->timeout_ms) || a->timeout_ms == 0)
                return usage("--timeout needs milliseconds, 1 to %u, not '%s'", TIMEOUT_MS_MAX,
                             value);
            a->timeout_set = true;
            break;
        case OPT_HELP:
            a->help = true;
            break;
        case OPT_CONTEXT:
            a->context = value;
            break;
        }
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------------ output */

static void regions_from_config(const struct cw_config *cfg, struct cw_regions *out)
{
    memset(out, 0, sizeof(*out));
    out->n = cfg->n_regions;
    for (unsigned i = 0; i < cfg->n_regions && i < CW_REGION_NAMES_MAX; i++)
        snprintf(out->name[i], sizeof(out->name[i]), "%s", cfg->regions[i].name);
}

/* The name of region id, for output. Names come from the config, or else from
 * the node's status (one extra request, made only when a name is needed); if
 * neither is available the id is printed in decimal. */
static const char *origin_name(struct run *r, unsigned id, char buf[16])
{
    if (!r->names_tried) {
        r->names_tried = true;
        if (r->have_cfg)
            regions_from_config(&r->cfg, &r->names);
        else if (cw_region_names(r->client, &r->names) != CW_OK)
            memset(&r->names, 0, sizeof(r->names));
    }
    if (id < r->names.n && r->names.name[id][0] != '\0')
        return r->names.name[id];
    snprintf(buf, 16, "%u", id);
    return buf;
}

static void put_json_str(const char *s)
{
    cw_json_fput_string(stdout, s, strlen(s));
}

/* Prints bytes escaped as in JSON (without the quotes): one line, no terminal
 * control characters. */
static void put_escaped(const void *p, size_t len)
{
    char buf[6 * 64 + 1];
    const uint8_t *b = p;
    /* In chunks, so that a large value needs no large buffer; chunk boundaries
     * must not split a UTF-8 sequence, so a chunk ends before a byte that is
     * not a continuation byte. */
    size_t i = 0;
    while (i < len) {
        size_t n = len - i < 64 ? len - i : 64;
        while (i + n < len && n > 1 && (b[i + n] & 0xc0) == 0x80)
            n--;
        cw_json_escape(buf, sizeof(buf), b + i, n);
        fputs(buf, stdout);
        i += n;
    }
}

static void print_write_json(struct run *r, const char *bk, const struct cw_put_result *res)
{
    char idbuf[16];
    fputs("{\"key\":", stdout);
    put_json_str(bk);
    fputs(",\"origin\":", stdout);
    put_json_str(origin_name(r, res->origin, idbuf));
    printf(",\"ts\":%llu}\n", (unsigned long long)res->ts);
}

static void print_get(struct run *r, const char *bk, const struct cw_get_result *g)
{
    char idbuf[16];
    if (r->a.json) {
        fputs("{\"key\":", stdout);
        put_json_str(bk);
        printf(",\"found\":%s,\"versions\":[", g->found ? "true" : "false");
        for (size_t i = 0; i < g->n; i++) {
            const struct cw_value_version *v = &g->versions[i];
            fputs(i ? ",{\"value\":" : "{\"value\":", stdout);
            cw_json_fput_string(stdout, v->value, v->len);
            fputs(",\"origin\":", stdout);
            put_json_str(origin_name(r, v->origin, idbuf));
            printf(",\"ts\":%llu}", (unsigned long long)v->ts);
        }
        fputs("],\"context\":", stdout);
        put_json_str(g->context);
        fputs("}\n", stdout);
        return;
    }
    if (!g->found)
        return;
    if (!g->siblings) {
        /* LWW: the value alone (the last version, should a server send more). */
        const struct cw_value_version *v = &g->versions[g->n - 1];
        fwrite(v->value, 1, v->len, stdout);
        fputc('\n', stdout);
        return;
    }
    for (size_t i = 0; i < g->n; i++) {
        const struct cw_value_version *v = &g->versions[i];
        printf("%s: ", origin_name(r, v->origin, idbuf));
        put_escaped(v->value, v->len);
        fputc('\n', stdout);
    }
    printf("context: %s\n", g->context);
}

/* ----------------------------------------------------------- status, text */

static bool is_scalar(const struct cw_json *j)
{
    return j->type != CW_JSON_ARRAY && j->type != CW_JSON_OBJECT;
}

static bool all_scalar(const struct cw_json *j)
{
    for (size_t i = 0; i < j->n; i++)
        if (!is_scalar(&j->items[i]))
            return false;
    return true;
}

static void put_scalar(const struct cw_json *j)
{
    switch (j->type) {
    case CW_JSON_NULL:
        fputs("-", stdout);
        break;
    case CW_JSON_BOOL:
        fputs(j->boolean ? "yes" : "no", stdout);
        break;
    case CW_JSON_NUMBER:
        fputs(j->str, stdout);
        break;
    case CW_JSON_STRING:
        put_escaped(j->str, j->str_len);
        break;
    default:
        break;
    }
}

/* The members of an all-scalar object on one line: "k=v k=v". skip is a
 * member index to leave out (or SIZE_MAX). */
static void put_inline(const struct cw_json *obj, size_t skip)
{
    bool first = true;
    for (size_t i = 0; i < obj->n; i++) {
        if (i == skip)
            continue;
        if (!first)
            fputc(' ', stdout);
        first = false;
        put_escaped(obj->keys[i], strlen(obj->keys[i]));
        fputc('=', stdout);
        put_scalar(&obj->items[i]);
    }
}

static void indent(unsigned depth)
{
    for (unsigned i = 0; i < depth; i++)
        fputs("  ", stdout);
}

/*
 * Renders a status document as indented text without knowing its schema, so
 * new fields show up without a CLI change: scalars as "name: value", arrays of
 * scalars as a comma list, small flat objects (the applied vector) as
 * "name: k=v k=v", an object in an array labelled by its first string member
 * (a peer's region) with the rest on the same line.
 */
static void render(const char *name, const struct cw_json *j, unsigned depth)
{
    indent(depth);
    put_escaped(name, strlen(name));
    if (is_scalar(j)) {
        fputs(": ", stdout);
        put_scalar(j);
        fputc('\n', stdout);
        return;
    }
    if (j->type == CW_JSON_ARRAY && all_scalar(j)) {
        fputs(":", stdout);
        for (size_t i = 0; i < j->n; i++) {
            fputs(i ? ", " : " ", stdout);
            put_scalar(&j->items[i]);
        }
        fputc('\n', stdout);
        return;
    }
    if (j->type == CW_JSON_OBJECT && all_scalar(j) && j->n <= 8) {
        fputs(": ", stdout);
        put_inline(j, SIZE_MAX);
        fputc('\n', stdout);
        return;
    }
    fputs(":\n", stdout);
    for (size_t i = 0; i < j->n; i++) {
        const struct cw_json *it = &j->items[i];
        if (j->type == CW_JSON_OBJECT) {
            render(j->keys[i], it, depth + 1);
        } else if (it->type == CW_JSON_OBJECT && it->n > 0 && it->items[0].type == CW_JSON_STRING &&
                   all_scalar(it)) {
            indent(depth + 1);
            put_escaped(it->items[0].str, it->items[0].str_len);
            fputs(": ", stdout);
            put_inline(it, 0);
            fputc('\n', stdout);
        } else {
            char label[24];
            snprintf(label, sizeof(label), "[%zu]", i);
            render(label, it, depth + 1);
        }
    }
}

static void print_status_text(const char *json)
{
    struct cw_json *doc = NULL;
    if (cw_json_parse(json, strlen(json), &doc, NULL, 0) != CW_OK || doc->type != CW_JSON_OBJECT) {
        /* Not what we expected: show it as it came rather than nothing. */
        puts(json);
        cw_json_free(&doc);
        return;
    }
    for (size_t i = 0; i < doc->n; i++)
        render(doc->keys[i], &doc->items[i], 0);
    cw_json_free(&doc);
}

/* --------------------------------------------------------------- commands */

#define SHOWN_MAX 80

/* A key argument as shown in messages: escaped (no terminal control bytes) and
 * cut to SHOWN_MAX bytes. */
static const char *shown(const char *bk, char buf[6 * SHOWN_MAX + 4])
{
    size_t n = strlen(bk);
    size_t used = n > SHOWN_MAX ? SHOWN_MAX : n;
    /* Do not cut a UTF-8 sequence in two. */
    while (used < n && used > 0 && ((uint8_t)bk[used] & 0xc0) == 0x80)
        used--;
    cw_json_escape(buf, 6 * SHOWN_MAX + 1, bk, used);
    if (used < n)
        strcat(buf, "...");
    return buf;
}

static int split_key(const char *bk, char *bucket, size_t bucket_size, const char **key)
{
    char sb[6 * SHOWN_MAX + 4];
    const char *slash = strchr(bk, '/');
    if (slash == NULL || slash == bk || slash[1] == '\0')
        return usage("'%s' is not BUCKET/KEY (e.g. users/alice)", shown(bk, sb));
    size_t n = (size_t)(slash - bk);
    if (n >= bucket_size)
        return usage("bucket name in '%s' is longer than %d characters", shown(bk, sb),
                     CW_BUCKET_LEN_MAX);
    memcpy(bucket, bk, n);
    bucket[n] = '\0';
    *key = slash + 1;
    return EXIT_OK;
}

/* Input errors that the library found before sending anything are usage errors. */
static int op_failed(struct run *r, int rc, const char *what, const char *bk)
{
    char sb[6 * SHOWN_MAX + 4];
    if (rc == CW_EBUCKET || rc == CW_EKEY || (rc == CW_ECONTEXT && r->a.context != NULL))
        return usage("%s %s: %s (%s)", what, shown(bk, sb), cw_strerror(rc),
                     cw_client_error(r->client));
    return failed(rc, cw_client_error(r->client), "%s %s", what, shown(bk, sb));
}

static int read_stdin(uint8_t **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return CW_ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap >= STDIN_VALUE_MAX) {
                free(buf);
                return CW_ETOOBIG;
            }
            uint8_t *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                return CW_ENOMEM;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) {
                free(buf);
                return CW_EIO;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return CW_OK;
}

static int cmd_write(struct run *r, bool is_put)
{
    const char *name = is_put ? "put" : "del";
    int want = is_put ? 3 : 2;
    if (r->a.npos != want)
        return usage(is_put ? "put needs BUCKET/KEY and VALUE" : "del needs BUCKET/KEY");
    const char *bk = r->a.pos[1];
    char bucket[CW_BUCKET_LEN_MAX + 1];
    const char *key;
    int st = split_key(bk, bucket, sizeof(bucket), &key);
    if (st != EXIT_OK)
        return st;
    struct cw_put_result res;
    int rc;
    if (is_put) {
        const char *arg = r->a.pos[2];
        uint8_t *data = NULL;
        size_t len = strlen(arg);
        if (strcmp(arg, "-") == 0) {
            rc = read_stdin(&data, &len);
            if (rc != CW_OK)
                return failed(rc, NULL, "read the value from standard input");
        }
        rc = cw_put(r->client, r->sess, bucket, key, strlen(key), data ? data : (const void *)arg,
                    len, r->a.context, &res);
        free(data);
    } else {
        rc = cw_del(r->client, r->sess, bucket, key, strlen(key), r->a.context, &res);
    }
    if (rc != CW_OK)
        return op_failed(r, rc, name, bk);
    if (r->a.json)
        print_write_json(r, bk, &res);
    return EXIT_OK;
}

static int cmd_get(struct run *r)
{
    if (r->a.npos != 2)
        return usage("get needs BUCKET/KEY");
    const char *bk = r->a.pos[1];
    char bucket[CW_BUCKET_LEN_MAX + 1];
    const char *key;
    int st = split_key(bk, bucket, sizeof(bucket), &key);
    if (st != EXIT_OK)
        return st;
    struct cw_get_result *g = NULL;
    int rc = cw_get(r->client, r->sess, bucket, key, strlen(key), &g);
    if (rc != CW_OK)
        return op_failed(r, rc, "get", bk);
    print_get(r, bk, g);
    bool found = g->found;
    cw_get_result_free(&g);
    if (!found) {
        char sb[6 * SHOWN_MAX + 4];
        if (!r->a.json)
            fprintf(stderr, "causeway: %s: not found\n", shown(bk, sb));
        return EXIT_NOTFOUND;
    }
    return EXIT_OK;
}

static int cmd_status(struct run *r)
{
    if (r->a.npos != 1)
        return usage("status takes no arguments");
    char *json = NULL;
    int rc = cw_status_json(r->client, &json);
    if (rc != CW_OK)
        return failed(rc, cw_client_error(r->client), "status");
    if (r->a.json) {
        /* One object per line: a raw line break can only be whitespace between
         * tokens (JSON strings cannot hold one), so dropping it changes nothing. */
        for (const char *p = json; *p; p++)
            if (*p != '\n' && *p != '\r')
                fputc(*p, stdout);
        fputc('\n', stdout);
    } else {
        print_status_text(json);
    }
    free(json);
    return EXIT_OK;
}

static int cmd_link(struct run *r)
{
    if (r->a.npos < 4)
        return usage("link needs FROM TO and cut, heal or delay MS");
    const char *from = r->a.pos[1], *to = r->a.pos[2], *action = r->a.pos[3];
    enum cw_admin_link op;
    unsigned delay_ms = 0;
    if (strcmp(action, "cut") == 0 && r->a.npos == 4) {
        op = CW_ADMIN_LINK_CUT;
    } else if (strcmp(action, "heal") == 0 && r->a.npos == 4) {
        op = CW_ADMIN_LINK_HEAL;
    } else if (strcmp(action, "delay") == 0 && r->a.npos == 5) {
        op = CW_ADMIN_LINK_DELAY;
        if (!parse_uint(r->a.pos[4], DELAY_MS_MAX, &delay_ms))
            return usage("link delay needs milliseconds, 0 to %u, not '%s'", DELAY_MS_MAX,
                         r->a.pos[4]);
    } else {
        return usage("link FROM TO takes 'cut', 'heal' or 'delay MS'");
    }
    int rc = cw_link(r->client, from, to, op, delay_ms);
    if (rc != CW_OK)
        return failed(rc, cw_client_error(r->client), "link %s %s %s", from, to, action);
    if (r->a.json) {
        fputs("{\"from\":", stdout);
        put_json_str(from);
        fputs(",\"to\":", stdout);
        put_json_str(to);
        printf(",\"action\":\"%s\"", action);
        if (op == CW_ADMIN_LINK_DELAY)
            printf(",\"delay_ms\":%u", delay_ms);
        fputs("}\n", stdout);
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------------- main */

static const char *command_help(const char *cmd)
{
    if (cmd == NULL)
        return main_help;
    if (strcmp(cmd, "put") == 0)
        return put_help;
    if (strcmp(cmd, "get") == 0)
        return get_help;
    if (strcmp(cmd, "del") == 0)
        return del_help;
    if (strcmp(cmd, "status") == 0)
        return status_help;
    if (strcmp(cmd, "link") == 0)
        return link_help;
    return NULL;
}

/* Finds the endpoint for cmd: EXIT_OK with *ep set, or an exit status. */
static int resolve_endpoint(struct run *r, const char *cmd, const char **ep)
{
    struct args *a = &r->a;
    bool is_link = strcmp(cmd, "link") == 0;
    if (a->endpoint != NULL && (a->config != NULL || a->region != NULL))
        return usage("give either --endpoint or --config with --region, not both");
    if (a->endpoint != NULL) {
        *ep = a->endpoint;
        return EXIT_OK;
    }
    if (a->config == NULL)
        return usage("no node to talk to: give --endpoint EP, or --config FILE%s",
                     is_link ? "" : " --region NAME");
    char err[512];
    int rc = cw_config_load(a->config, &r->cfg, err, sizeof(err));
    if (rc != CW_OK) {
        fprintf(stderr, "causeway: config: %s: %s\n", cw_strerror(rc), err);
        return EXIT_FAIL;
    }
    r->have_cfg = true;
    /* link goes to FROM's admin endpoint; everything else to --region's client
     * endpoint. */
    const char *name = is_link ? (a->npos > 1 ? a->pos[1] : "") : a->region;
    if (name == NULL)
        return usage("--config needs --region NAME to know which region to talk to");
    const struct cw_region_config *reg = cw_config_region(&r->cfg, name);
    if (reg == NULL) {
        fprintf(stderr, "causeway: no region '%s' in %s; it has:", name, a->config);
        for (unsigned i = 0; i < r->cfg.n_regions; i++)
            fprintf(stderr, " %s", r->cfg.regions[i].name);
        fputs("\n", stderr);
        return EXIT_USAGE;
    }
    *ep = is_link ? reg->admin : reg->client;
    return EXIT_OK;
}

static int open_session(struct run *r)
{
    const char *path = r->a.session;
    int rc = cw_sess_new(0, &r->sess);
    if (rc != CW_OK)
        return failed(rc, NULL, "session %s", path);
    rc = cw_sess_load(r->sess, path);
    if (rc == CW_ENOTFOUND) {
        /* Create it now: a file that cannot be written should stop us before a
         * write is sent whose causal context would then be lost. */
        rc = cw_sess_save(r->sess, path);
    }
    if (rc != CW_OK)
        return failed(rc, cw_sess_error(r->sess), "session %s", path);
    return EXIT_OK;
}

static int run_command(struct run *r)
{
    struct args *a = &r->a;
    const char *cmd = a->pos[0];
    bool data = strcmp(cmd, "put") == 0 || strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0;
    if (command_help(cmd) == NULL || strcmp(cmd, "help") == 0)
        return usage("unknown command '%s'", cmd);
    if (a->context != NULL && strcmp(cmd, "put") != 0 && strcmp(cmd, "del") != 0)
        return usage("--context applies to put and del only");
    const char *ep = NULL;
    int st = resolve_endpoint(r, cmd, &ep);
    if (st != EXIT_OK)
        return st;
    struct cw_client_options opt;
    cw_client_options_init(&opt);
    if (a->timeout_set)
        opt.timeout_ms = a->timeout_ms;
    int rc = cw_client_connect(ep, &opt, &r->client);
    if (rc != CW_OK)
        return failed(rc, NULL, "connect to %s", ep);
    if (data && a->session != NULL && (st = open_session(r)) != EXIT_OK)
        return st;

    if (strcmp(cmd, "put") == 0)
        st = cmd_write(r, true);
    else if (strcmp(cmd, "del") == 0)
        st = cmd_write(r, false);
    else if (strcmp(cmd, "get") == 0)
        st = cmd_get(r);
    else if (strcmp(cmd, "status") == 0)
        st = cmd_status(r);
    else
        st = cmd_link(r);

    /* A read that found nothing still taught the session (tombstones it saw). */
    if (r->sess != NULL && (st == EXIT_OK || st == EXIT_NOTFOUND)) {
        rc = cw_sess_save(r->sess, a->session);
        if (rc != CW_OK) {
            /* Say what did happen: the operation (a write, perhaps) was carried
             * out even though the session could not remember it. */
            return failed(rc, cw_sess_error(r->sess),
                          "the %s succeeded, but saving session %s failed", cmd, a->session);
        }
    }
    return st;
}

int main(int argc, char **argv)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    int st = parse_args(argc, argv, &r.a);
    if (st != EXIT_OK)
        return st;
    if (r.a.npos > 0 && strcmp(r.a.pos[0], "help") == 0) {
        const char *text = command_help(r.a.npos > 1 ? r.a.pos[1] : NULL);
        if (text == NULL)
            return usage("no help for unknown command '%s'", r.a.pos[1]);
        fputs(text, stdout);
        return EXIT_OK;
    }
    if (r.a.help) {
        const char *text = command_help(r.a.npos > 0 ? r.a.pos[0] : NULL);
        fputs(text ? text : main_help, stdout);
        return EXIT_OK;
    }
    if (r.a.npos == 0)
        return usage("no command given (put, get, del, status or link)");

    st = run_command(&r);

    cw_sess_free(&r.sess);
    cw_client_close(&r.client);
    if (r.have_cfg)
        cw_config_free(&r.cfg);
    if (fflush(stdout) != 0 && st == EXIT_OK) {
        fprintf(stderr, "causeway: write to standard output: %s\n", strerror(errno));
        st = EXIT_FAIL;
    }
    return st;
}
