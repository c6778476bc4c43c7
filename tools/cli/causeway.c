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
 * Arguments are parsed with getopt_long in two passes: the global options up
 * to the command name, then the command's own arguments, where the global
 * options are accepted too (so `causeway status --json` and
 * `causeway --json status` are the same) and "--" ends the options.
 *
 * Exit statuses: 0 success, 1 operational error, 2 bad usage (nothing was
 * sent), 3 key not found, 4 a conditional write's condition did not hold
 * (CW_ECONFLICT: nothing was written). An error the server answered with (even one about
 * the request's content, like a context it refuses) is operational: the
 * request was sent. Whatever can be checked before sending (the BUCKET/KEY
 * syntax, a --context token that does not parse) is checked first and is a
 * usage error.
 */
#include <causeway.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "net/curvekeys.h"
#include "server/config.h"
#include "escape.h"

#ifndef CW_VERSION_TEXT
#define CW_VERSION_TEXT "unknown"
#endif

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
    EXIT_NOTFOUND = 3,
    EXIT_CONFLICT = 4,
};

#define TIMEOUT_MS_MAX 3600000u
#define DELAY_MS_MAX CW_LINK_DELAY_MS_MAX /* as the config's [latency] and the daemon */
/* A value read from standard input; servers accept at most their configured
 * maximum (1 MiB by default), so this only stops runaway input. */
#define STDIN_VALUE_MAX (64u << 20)
#define POSITIONAL_MAX 8

static const char *const main_help =
    "usage: causeway [OPTIONS] COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "A command-line client for causeway, a causally consistent, geo-replicated\n"
    "key-value store. Each invocation sends one request to one region.\n"
    "\n"
    "Where to send the request (one of):\n"
    "  -c, --config FILE     the cluster config (e.g. geo-configs/three-regions.ini)\n"
    "  -r, --region NAME     ... and the region of it to talk to (link needs none:\n"
    "                        it goes to FROM's admin endpoint)\n"
    "  -e, --endpoint EP     a node's endpoint instead, e.g. tcp://127.0.0.1:7001\n"
    "\n"
    "Options (before or after the command):\n"
    "  -s, --session FILE    keep a causal session in FILE (created if missing):\n"
    "                        loaded before put/get/del, saved after they succeed\n"
    "  -j, --json            print exactly one JSON object on stdout\n"
    "  -t, --timeout MS      wait at most MS per attempt, 1 to 3600000 (default 10000)\n"
    "  -k, --key-file FILE   this client's CURVE key pair (causeway keygen --out FILE);\n"
    "                        default $CAUSEWAY_KEY_FILE. Needed when the config says\n"
    "                        security = curve (the server key is then the region's\n"
    "                        public_key)\n"
    "      --server-key KEY  with --endpoint: the node's CURVE public key (Z85);\n"
    "                        default $CAUSEWAY_SERVER_KEY\n"
    "      --context TOKEN   put and del only: the key context the write replaces\n"
    "                        (the 'context:' printed by get)\n"
    "      --if-version V    put and del only, strong buckets: write only if the\n"
    "                        key's version is V (1 or more)\n"
    "      --if-absent       put and del only, strong buckets: write only if the\n"
    "                        key does not exist\n"
    "  -h, --help            this help; 'causeway COMMAND --help' for a command's\n"
    "  -V, --version         print the version and exit\n"
    "  --                    end of options: later arguments are never options\n"
    "                        (for a VALUE that starts with '-')\n"
    "\n"
    "Commands:\n"
    "  put BUCKET/KEY VALUE  write a value ('-': read it from standard input)\n"
    "  get BUCKET/KEY        read a key (after the region has applied what the\n"
    "                        session has seen)\n"
    "  del BUCKET/KEY        delete a key (write a tombstone)\n"
    "  status                show the node's status: replication state, stamps\n"
    "                        as UTC and lag, peers, counters\n"
    "  link FROM TO cut|heal|delay MS\n"
    "                        change the emulated WAN link FROM->TO (with CURVE,\n"
    "                        needs an admin key)\n"
    "  keygen [--out FILE]   make a CURVE key pair: FILE (mode 0600) and FILE.pub;\n"
    "                        prints the public key\n"
    "  help [COMMAND]        this help, or a command's\n"
    "\n"
    "BUCKET/KEY splits at the first '/': the bucket is [a-z0-9_-]{1,64}, the key\n"
    "is the rest (1 to 1024 bytes, may contain '/').\n"
    "\n"
    "Exit status: 0 success, 1 the operation failed, 2 bad usage (nothing was\n"
    "sent), 3 get found no value, 4 the condition of put/del --if-version or\n"
    "--if-absent did not hold (nothing was written; the current version is shown).\n"
    "\n"
    "Strong buckets (consistency = strong) are linearizable: put and del answer\n"
    "once a majority of regions has the write, get returns the latest one. They\n"
    "print the key's version ('version N'); 'no majority of regions' means no\n"
    "quorum is reachable, and a timed-out strong write may still apply later.\n"
    "\n"
    "Examples:\n"
    "  causeway -c geo-configs/three-regions.ini -r us-east -s s.cw put feed/post1 hello\n"
    "  causeway -c geo-configs/three-regions.ini -r eu-west -s s.cw get feed/post1\n"
    "  causeway -e tcp://127.0.0.1:7001 --json get feed/post1\n"
    "  causeway -c geo-configs/three-regions.ini -r us-east status\n"
    "  causeway -c geo-configs/three-regions.ini link us-east eu-west cut\n"
    "\n"
    "See causeway(1) for the output formats and more examples.\n";

static const char *const put_help =
    "usage: causeway [OPTIONS] put BUCKET/KEY VALUE\n"
    "                [--context TOKEN | --if-version V | --if-absent]\n"
    "\n"
    "Writes VALUE under BUCKET/KEY at the region. A VALUE of '-' reads the value\n"
    "from standard input (binary-safe); write '--' before a VALUE that starts\n"
    "with '-'. The write depends on everything the session has seen (--session),\n"
    "so every region makes it visible only after those writes.\n"
    "\n"
    "Options:\n"
    "  --context TOKEN  in a siblings bucket, replace exactly the versions a get\n"
    "                   showed (TOKEN is its 'context:' line). Without it, the\n"
    "                   context the session remembers from its last get of this\n"
    "                   key is used, or none: a write next to existing versions\n"
    "                   then adds a sibling. LWW buckets ignore it.\n"
    "  --if-version V   strong buckets: write only if the key's version is V (the\n"
    "                   'version' a get or put printed; 1 or more)\n"
    "  --if-absent      strong buckets: write only if the key does not exist\n"
    "                   (the two are exclusive, and exclude --context; a causal or\n"
    "                   eventual bucket refuses them)\n"
    "  and the global options (causeway --help).\n"
    "\n"
    "Prints nothing, except for a strong bucket 'version N' (the key's new\n"
    "version); with --json: {\"key\":\"b/k\",\"origin\":\"us-east\",\"ts\":N} and, for\n"
    "a strong bucket, \"version\":N. When the condition does not hold nothing is\n"
    "written: stderr says so with the key's current version (0: absent), --json\n"
    "prints {\"key\":\"b/k\",\"conflict\":true,\"version\":N}, and the exit status is 4.\n"
    "A write that timed out is not retried (it could apply twice): read the key.\n"
    "In a strong bucket it may still apply later; 'no majority of regions'\n"
    "(no quorum reachable) means it was not taken.\n"
    "\n"
    "Examples:\n"
    "  causeway -e tcp://127.0.0.1:7001 put users/alice '{\"age\":31}'\n"
    "  head -c 100 /dev/urandom | causeway -e tcp://127.0.0.1:7001 put blobs/x -\n"
    "  causeway -e tcp://127.0.0.1:7001 put cart/alice 'milk,eggs' --context cw1-02...\n"
    "  causeway -e tcp://127.0.0.1:7001 put locks/job1 me --if-absent\n"
    "  causeway -e tcp://127.0.0.1:7001 put accounts/bob 90 --if-version 17\n";

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
    "For a strong bucket the value is followed by a line 'version N', the key's\n"
    "version (for put/del --if-version); with --json \"version\":N.\n"
    "\n"
    "A key with no value (never written, or deleted) prints nothing on stdout\n"
    "(with --json: \"found\":false and no versions), 'causeway: b/k: not found' on\n"
    "stderr, and exits with status 3.\n"
    "\n"
    "Options: the global options (causeway --help).\n"
    "\n"
    "Examples:\n"
    "  causeway -e tcp://127.0.0.1:7001 get users/alice\n"
    "  causeway -c c.ini -r eu-west -s s.cw --json get cart/alice\n";

static const char *const del_help =
    "usage: causeway [OPTIONS] del BUCKET/KEY\n"
    "                [--context TOKEN | --if-version V | --if-absent]\n"
    "\n"
    "Deletes BUCKET/KEY: writes a tombstone, with the same causal rules,\n"
    "--context, conditions and exit statuses as put. Prints what put prints.\n"
    "\n"
    "Options:\n"
    "  --context TOKEN  the versions the tombstone replaces (see causeway put --help)\n"
    "  --if-version V   strong buckets: delete only if the key's version is V\n"
    "  --if-absent      strong buckets: only if the key does not exist\n"
    "  and the global options (causeway --help).\n"
    "\n"
    "Example:\n"
    "  causeway -c c.ini -r us-east -s s.cw del users/alice\n";

static const char *const status_help =
    "usage: causeway [OPTIONS] status\n"
    "\n"
    "Shows the node's status: its region and the cluster's regions, durability,\n"
    "uptime, its hybrid-logical clock, the applied and stable vectors, the keys,\n"
    "buffered, waiting and outbox counts with the bytes they hold, every peer's\n"
    "link state, traffic and bytes in flight, visibility latencies of each peer's\n"
    "writes, and the counters. Works on the client and the admin endpoint.\n"
    "A node with strong buckets adds their Raft group: role, term, leader, vote,\n"
    "commit and applied indexes, the log and the last snapshot, each peer's last\n"
    "contact and whether it is suspected, and the Raft and strong counters.\n"
    "\n"
    "Stamps (the clock and the vectors) are hybrid-logical: microseconds since\n"
    "the epoch in the high bits, a counter in the low 12. The text output shows\n"
    "each as the raw number, as UTC with microseconds, and as the lag in\n"
    "milliseconds behind this region's clock ('-' for an origin nothing has been\n"
    "applied from yet).\n"
    "\n"
    "With --json: one object on one line with the raw values (stamps as JSON\n"
    "integers; docs/operations.md lists every member).\n"
    "\n"
    "Options: the global options (causeway --help).\n"
    "\n"
    "Examples:\n"
    "  causeway -c geo-configs/three-regions.ini -r us-east status\n"
    "  causeway -e tcp://127.0.0.1:7003 status --json\n";

static const char *const link_help =
    "usage: causeway [OPTIONS] link FROM TO cut|heal|delay MS\n"
    "\n"
    "Changes the emulated WAN link from region FROM to region TO. Links are\n"
    "emulated in the sender, so this goes to FROM's admin endpoint (from\n"
    "--config; with --endpoint, EP must be FROM's admin endpoint) and changes one\n"
    "direction only: cut both directions to partition two regions.\n"
    "  cut       drop everything FROM sends to TO until healed\n"
    "  heal      deliver again\n"
    "  delay MS  set the one-way delay to MS milliseconds (0 to 60000)\n"
    "Prints nothing; with --json {\"from\":\"a\",\"to\":\"b\",\"action\":\"cut\"}.\n"
    "\n"
    "Options: the global options (causeway --help); --region is not needed.\n"
    "\n"
    "Examples:\n"
    "  causeway -c geo-configs/three-regions.ini link us-east eu-west cut\n"
    "  causeway -c geo-configs/three-regions.ini link eu-west us-east cut\n"
    "  causeway -c geo-configs/three-regions.ini link us-east eu-west delay 250\n";

static const char *const keygen_help =
    "usage: causeway keygen [--out FILE]\n"
    "\n"
    "Makes a CurveZMQ key pair for a region, a client or an admin\n"
    "(docs/operations.md, \"Security\").\n"
    "\n"
    "With --out FILE: writes the pair to FILE, created with mode 0600 (the\n"
    "secret: give it to causewayd as secret_key_file, or to the CLI as\n"
    "--key-file), and the public key to FILE.pub; never replaces an existing\n"
    "file. Prints the public key (40 characters) on stdout: put it in the\n"
    "config (a region's public_key, or a line of client_keys_file or\n"
    "admin_keys_file).\n"
    "Without --out: prints the pair in the key file format on stdout.\n"
    "With --json: {\"public_key\":\"...\",\"file\":\"FILE\"}.\n"
    "\n"
    "Examples:\n"
    "  causeway keygen --out keys/us-east.key\n"
    "  echo \"$(causeway keygen --out keys/alice.key) alice  # laptop\" >>keys/clients\n";

struct args {
    const char *config, *region, *endpoint, *session, *context;
    const char *key_file, *server_key, *out; /* --key-file, --server-key, keygen --out */
    const char *if_version_text;             /* --if-version as given, for messages */
    uint64_t if_version;                     /* --if-version, >= 1 when set */
    bool if_absent;                          /* --if-absent */
    bool json, help, version;
    unsigned timeout_ms;
    bool timeout_set;
    const char *cmd;
    const char *pos[POSITIONAL_MAX]; /* the command's arguments, after its name */
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
    const char *config_server_key; /* security = curve: the region's public_key */
};

struct command {
    const char *name;
    bool takes_context; /* --context */
    bool data;          /* put, get, del: uses the session */
    int (*run)(struct run *r);
};

static int cmd_put(struct run *r);
static int cmd_get(struct run *r);
static int cmd_del(struct run *r);
static int cmd_status(struct run *r);
static int cmd_link(struct run *r);
static int cmd_keygen(struct run *r);

static const struct command commands[] = {
    {"put", true, true, cmd_put},     {"get", false, true, cmd_get},
    {"del", true, true, cmd_del},     {"status", false, false, cmd_status},
    {"link", false, false, cmd_link}, {"keygen", false, false, cmd_keygen},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static const char *command_help(const char *name)
{
    if (name == NULL)
        return main_help;
    if (strcmp(name, "put") == 0)
        return put_help;
    if (strcmp(name, "get") == 0)
        return get_help;
    if (strcmp(name, "del") == 0)
        return del_help;
    if (strcmp(name, "status") == 0)
        return status_help;
    if (strcmp(name, "link") == 0)
        return link_help;
    if (strcmp(name, "keygen") == 0)
        return keygen_help;
    if (strcmp(name, "help") == 0)
        return main_help;
    return NULL;
}

static int usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports a usage error (nothing was sent) and returns EXIT_USAGE. */
static int usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("causeway: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd != NULL && find_command(cmd) != NULL)
        fprintf(stderr, "\nTry 'causeway %s --help'.\n", cmd);
    else
        fputs("\nTry 'causeway --help'.\n", stderr);
    return EXIT_USAGE;
}

/* A server's error message is "GENERAL: DETAIL", GENERAL being cw_strerror of
 * its code (the daemon prefixes it). Returns DETAIL, or NULL when msg does not
 * start with the general sentence. */
static const char *after_general(int rc, const char *msg)
{
    const char *general = cw_strerror(rc);
    size_t n = strlen(general);
    if (msg == NULL || strncmp(msg, general, n) != 0)
        return NULL;
    if (msg[n] == '\0')
        return msg + n;
    return msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : NULL;
}

/* Reports a failed library call: what failed, then the general sentence and,
 * when it adds something, the detailed message; a detail that already starts
 * with the general sentence (a server's message) is printed alone, so nothing
 * is said twice. Returns the exit status. */
static int failed(int rc, const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failed(int rc, const char *detail, const char *fmt, ...)
{
    va_list ap;
    fputs("causeway: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (detail != NULL && after_general(rc, detail) != NULL)
        fprintf(stderr, ": %s", detail);
    else if (detail != NULL && detail[0] != '\0')
        fprintf(stderr, ": %s (%s)", cw_strerror(rc), detail);
    else
        fprintf(stderr, ": %s", cw_strerror(rc));
    fputc('\n', stderr);
    return EXIT_FAIL;
}

/* A version: decimal digits only, 0 to UINT64_MAX. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
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

/* ---------------------------------------------------------------- options */

enum {
    OPT_CONTEXT = 256, /* long only */
    OPT_IF_VERSION,
    OPT_IF_ABSENT,
    OPT_SERVER_KEY,
    OPT_OUT,
};

/* The global options; a command's table adds its own after them. */
#define GLOBAL_OPTIONS                                                                             \
    {"config", required_argument, NULL, 'c'}, {"region", required_argument, NULL, 'r'},            \
        {"endpoint", required_argument, NULL, 'e'}, {"session", required_argument, NULL, 's'},     \
        {"json", no_argument, NULL, 'j'}, {"timeout", required_argument, NULL, 't'},               \
        {"help", no_argument, NULL, 'h'}, {"key-file", required_argument, NULL, 'k'},              \
        {"server-key", required_argument, NULL, OPT_SERVER_KEY},                                   \
        {"out", required_argument, NULL, OPT_OUT},                                                 \
    {                                                                                              \
        "version", no_argument, NULL, 'V'                                                          \
    }
#define GLOBAL_SHORT "c:r:e:s:jt:hVk:"

/* Before the command --context is accepted too (older scripts put it there);
 * that it applies to put and del only is checked once the command is known. */
static const struct option global_options[] = {
    GLOBAL_OPTIONS,
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"if-version", required_argument, NULL, OPT_IF_VERSION},
    {"if-absent", no_argument, NULL, OPT_IF_ABSENT},
    {NULL, 0, NULL, 0},
};
static const struct option context_options[] = {
    GLOBAL_OPTIONS,
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"if-version", required_argument, NULL, OPT_IF_VERSION},
    {"if-absent", no_argument, NULL, OPT_IF_ABSENT},
    {NULL, 0, NULL, 0},
};
static const struct option plain_options[] = {
    GLOBAL_OPTIONS,
    {NULL, 0, NULL, 0},
};

/* Whether arg is the long option that getopt_long just refused: "--NAME" or
 * "--NAME=VALUE" for an option whose val is optopt (or any, for an unknown
 * one, when optopt is 0). */
static const struct option *refused_long(const char *arg, const struct option *table, bool *known)
{
    *known = false;
    if (arg == NULL || strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
        return NULL;
    size_t n = strcspn(arg + 2, "=");
    for (const struct option *o = table; o->name != NULL; o++) {
        if (strlen(o->name) == n && strncmp(o->name, arg + 2, n) == 0) {
            *known = true;
            return optopt == 0 || optopt == o->val ? o : NULL;
        }
    }
    return optopt == 0 ? table : NULL; /* unknown: any non-NULL says "it is this one" */
}

/* Applies one parsed option; returns EXIT_OK or EXIT_USAGE. For an error,
 * argv and table are those getopt_long just worked on. */
static int apply_option(struct args *a, int opt, const char *value, char **argv,
                        const struct option *table, const char *cmd)
{
    switch (opt) {
    case 'c':
        a->config = value;
        break;
    case 'r':
        a->region = value;
        break;
    case 'e':
        a->endpoint = value;
        break;
    case 's':
        a->session = value;
        break;
    case 'j':
        a->json = true;
        break;
    case 't':
        if (!parse_uint(value, TIMEOUT_MS_MAX, &a->timeout_ms) || a->timeout_ms == 0)
            return usage(cmd, "--timeout needs milliseconds, 1 to %u, not '%s'", TIMEOUT_MS_MAX,
                         value);
        a->timeout_set = true;
        break;
    case 'h':
        a->help = true;
        break;
    case 'V':
        a->version = true;
        break;
    case OPT_CONTEXT:
        a->context = value;
        break;
    case OPT_IF_VERSION:
        if (!parse_u64(value, &a->if_version))
            return usage(cmd, "--if-version needs a version number (1 or more), not '%s'", value);
        if (a->if_version == 0)
            return usage(cmd, "--if-version 0: versions start at 1; to write only a key that does "
                              "not exist, use --if-absent");
        a->if_version_text = value;
        break;
    case OPT_IF_ABSENT:
        a->if_absent = true;
        break;
    case 'k':
        a->key_file = value;
        break;
    case OPT_SERVER_KEY:
        a->server_key = value;
        break;
    case OPT_OUT:
        a->out = value;
        break;
    case ':':
        /* The argument getopt_long stopped at is the option (or its cluster). */
        return usage(cmd, "option '%s' needs a value", argv[optind - 1]);
    default: {
        const char *arg = argv[optind - 1];
        bool known;
        const struct option *o = refused_long(arg, table, &known);
        if (o != NULL && known)
            return usage(cmd, "option '--%s' takes no value", o->name);
        if (o != NULL) {
            if (strncmp(arg, "--context", 9) == 0 && (arg[9] == '\0' || arg[9] == '='))
                return usage(cmd, "--context applies to put and del only");
            if ((strncmp(arg, "--if-version", 12) == 0 && (arg[12] == '\0' || arg[12] == '=')) ||
                strcmp(arg, "--if-absent") == 0)
                return usage(cmd, "--if-version and --if-absent apply to put and del only");
            return usage(cmd, "unknown option '%.*s'%s%s", (int)strcspn(arg, "="), arg,
                         cmd ? " for " : "", cmd ? cmd : "");
        }
        return usage(cmd, "unknown option '-%c'%s%s", optopt, cmd ? " for " : "", cmd ? cmd : "");
    }
    }
    return EXIT_OK;
}

/*
 * Pass 1: the global options, up to the first argument that is not one (the
 * command). Pass 2: the command's arguments, in order, with the global options
 * and the command's own anywhere among them; "--" ends the options. Returns
 * EXIT_OK or EXIT_USAGE.
 */
static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    opterr = 0; /* the messages are ours */
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "+:" GLOBAL_SHORT, global_options, NULL)) != -1) {
        int st = apply_option(a, opt, optarg, argv, global_options, NULL);
        if (st != EXIT_OK)
            return st;
    }
    if (optind >= argc)
        return EXIT_OK;
    a->cmd = argv[optind];
    const struct command *c = find_command(a->cmd);
    if (c == NULL) {
        if (strcmp(a->cmd, "help") != 0)
            return EXIT_OK; /* reported by the caller, after --help is considered */
    }
    /* The command's own argv: its name, then its arguments. optind = 0 makes
     * GNU getopt start afresh. */
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    const struct option *table = c != NULL && c->takes_context ? context_options : plain_options;
    if (c == NULL)
        table = plain_options; /* help [COMMAND] */
    optind = 0;
    /* A leading '-' returns every non-option as argument 1, in order, whatever
     * POSIXLY_CORRECT says; ':' reports a missing value as ':'. */
    while ((opt = getopt_long(sub_argc, sub_argv, "-:" GLOBAL_SHORT, table, NULL)) != -1) {
        if (opt == 1) {
            if (a->npos == POSITIONAL_MAX)
                return usage(a->cmd, "too many arguments for %s", a->cmd);
            a->pos[a->npos++] = optarg;
            continue;
        }
        int st = apply_option(a, opt, optarg, sub_argv, table, a->cmd);
        if (st != EXIT_OK)
            return st;
    }
    /* After "--" getopt stops: the rest are arguments. */
    for (; optind < sub_argc; optind++) {
        if (a->npos == POSITIONAL_MAX)
            return usage(a->cmd, "too many arguments for %s", a->cmd);
        a->pos[a->npos++] = sub_argv[optind];
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
    cli_json_fput_string(stdout, s, strlen(s));
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
        cli_json_escape(buf, sizeof(buf), b + i, n);
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
    /* Written with printf, not a JSON library: every uint64 stays exact. */
    printf(",\"ts\":%llu", (unsigned long long)res->ts);
    /* Only strong buckets have versions (0 elsewhere). */
    if (res->version != 0)
        printf(",\"version\":%llu", (unsigned long long)res->version);
    fputs("}\n", stdout);
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
            cli_json_fput_string(stdout, v->value, v->len);
            fputs(",\"origin\":", stdout);
            put_json_str(origin_name(r, v->origin, idbuf));
            printf(",\"ts\":%llu}", (unsigned long long)v->ts);
        }
        fputs("],\"context\":", stdout);
        put_json_str(g->context);
        if (g->version != 0)
            printf(",\"version\":%llu", (unsigned long long)g->version);
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
        /* A strong bucket's version, for a later put --if-version. */
        if (g->version != 0)
            printf("version %llu\n", (unsigned long long)g->version);
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

/* "3d 04h 05m 06s", "5m 06s", "6.250s". */
static void format_duration(uint64_t us, char *buf, size_t len)
{
    uint64_t s = us / 1000000u;
    if (s < 60) {
        snprintf(buf, len, "%llu.%03llus", (unsigned long long)s,
                 (unsigned long long)(us / 1000u % 1000u));
    } else if (s < 3600) {
        snprintf(buf, len, "%llum %02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    } else if (s < 86400) {
        snprintf(buf, len, "%lluh %02llum %02llus", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
    } else {
        snprintf(buf, len, "%llud %02lluh %02llum %02llus", (unsigned long long)(s / 86400),
                 (unsigned long long)(s / 3600 % 24), (unsigned long long)(s / 60 % 60),
                 (unsigned long long)(s % 60));
    }
}

/* A byte count for people: "512 B", "1.5 KiB", "256.0 MiB". */
static void format_bytes(uint64_t b, char *buf, size_t len)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (b < 1024) {
        snprintf(buf, len, "%llu B", (unsigned long long)b);
        return;
    }
    double v = (double)b / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, unit[u]);
}

/* Milliseconds with microsecond precision, from a microsecond count. */
static void format_ms(uint64_t us, char *buf, size_t len)
{
    snprintf(buf, len, "%llu.%03llu", (unsigned long long)(us / 1000u),
             (unsigned long long)(us % 1000u));
}

/* The lag of stamp ts behind clock in milliseconds, signed ("-0.250" for a
 * stamp ahead of the clock, which a healthy node never shows). */
static void format_lag(uint64_t clock, uint64_t ts, char *buf, size_t len)
{
    uint64_t c = cw_stamp_us(clock), t = cw_stamp_us(ts);
    if (c >= t) {
        format_ms(c - t, buf, len);
    } else {
        buf[0] = '-';
        format_ms(t - c, buf + 1, len - 1);
    }
}

/* One stamp row: name (in a column of width w), raw stamp, UTC, lag behind
 * this region's clock. A zero stamp means nothing of that origin yet. */
static void print_stamp_row(int w, const char *name, uint64_t ts, uint64_t clock)
{
    char utc[CW_STAMP_TEXT_MAX], lag[32];
    if (ts == 0) {
        printf("  %-*s %20s  %-27s  %12s\n", w, name, "0", "-", "-");
        return;
    }
    if (cw_stamp_format(ts, utc, sizeof(utc)) != CW_OK)
        snprintf(utc, sizeof(utc), "?");
    format_lag(clock, ts, lag, sizeof(lag));
    printf("  %-*s %20llu  %-27s  %12s\n", w, name, (unsigned long long)ts, utc, lag);
}

/* A region id of the strong section as its name, or "none" (-1). */
static const char *region_or_none(const struct cw_status *s, int id)
{
    return id >= 0 && (unsigned)id < s->regions.n ? s->regions.name[id] : "none";
}

/* The strong buckets' Raft group, after the causal part of the status. */
static void print_strong_text(const struct cw_status *s, int w, int head)
{
    const struct cw_status_strong *g = &s->strong;
    char b1[32];
    printf("\nstrong buckets (Raft)\n");
    printf("  %-*s %s, term %llu\n", head - 2, "role", g->role, (unsigned long long)g->term);
    printf("  %-*s %s\n", head - 2, "leader", region_or_none(s, g->leader));
    printf("  %-*s %s\n", head - 2, "vote", region_or_none(s, g->vote));
    printf("  %-*s commit %llu, applied %llu\n", head - 2, "indexes", (unsigned long long)g->commit,
           (unsigned long long)g->applied);
    if (g->log_first > g->log_last)
        printf("  %-*s empty (next index %llu)\n", head - 2, "log",
               (unsigned long long)g->log_first);
    else
        printf("  %-*s %llu..%llu (%llu entries)\n", head - 2, "log",
               (unsigned long long)g->log_first, (unsigned long long)g->log_last,
               (unsigned long long)(g->log_last - g->log_first + 1));
    printf("  %-*s index %llu, term %llu\n", head - 2, "snapshot",
           (unsigned long long)g->snap_index, (unsigned long long)g->snap_term);
    format_bytes(g->bytes, b1, sizeof(b1));
    printf("  %-*s %llu (%s)\n", head - 2, "keys", (unsigned long long)g->keys, b1);
    if (g->n_peers > 0) {
        printf("\n%-*s %16s %10s\n", head, "raft peers", "last heard ms", "suspected");
        for (unsigned i = 0; i < g->n_peers; i++) {
            const struct cw_status_raft_peer *p = &g->peers[i];
            char heard[24];
            if (p->heard)
                snprintf(heard, sizeof(heard), "%llu", (unsigned long long)p->last_heard_ms);
            else
                snprintf(heard, sizeof(heard), "never");
            printf("  %-*s %16s %10s\n", w, s->regions.name[p->id], heard,
                   p->suspected ? "yes" : "no");
        }
    }
    struct cw_status_counter f[CW_STATUS_STRONG_COUNTERS_MAX];
    size_t n = cw_status_strong_counter_list(s, f, CW_STATUS_STRONG_COUNTERS_MAX);
    printf("\nstrong counters\n");
    for (size_t i = 0; i < n; i++)
        printf("%s%-20s %10llu%s", i % 3 == 0 ? "  " : "   ", f[i].name,
               (unsigned long long)f[i].value, i % 3 == 2 || i == n - 1 ? "\n" : "");
}

static void print_status_text(const struct cw_status *s)
{
    char utc[CW_STAMP_TEXT_MAX], buf[64];
    const struct cw_regions *rg = &s->regions;
    /* The first column holds region names, indented by two. */
    int w = 12;
    for (unsigned i = 0; i < rg->n; i++)
        if ((int)strlen(rg->name[i]) > w)
            w = (int)strlen(rg->name[i]);
    int head = w + 2;

    printf("%-*s %s (id %u; regions:", head, "region", rg->name[s->id], s->id);
    for (unsigned i = 0; i < rg->n; i++)
        printf("%s %s", i ? "," : "", rg->name[i]);
    printf(")\n");
    printf("%-*s %s\n", head, "durability", s->durability);
    format_duration(s->uptime_us, buf, sizeof(buf));
    printf("%-*s %s\n", head, "uptime", buf);
    if (cw_stamp_format(s->clock, utc, sizeof(utc)) != CW_OK)
        snprintf(utc, sizeof(utc), "?");
    printf("%-*s %s  (stamp %llu, logical %llu)\n", head, "clock", utc,
           (unsigned long long)s->clock,
           (unsigned long long)(s->clock & ((1u << CW_STAMP_LOGICAL_BITS) - 1)));
    /* The node's wall clock next to its HLC: a clock well ahead of the wall
     * clock means a peer's clock runs ahead. */
    if (cw_stamp_format((uint64_t)s->now_us << CW_STAMP_LOGICAL_BITS, utc, sizeof(utc)) != CW_OK)
        snprintf(utc, sizeof(utc), "?");
    printf("%-*s %s\n", head, "wall clock", utc);
    char b1[32], b2[32];
    format_bytes(s->key_cache_bytes, b1, sizeof(b1));
    printf("%-*s %llu  (key states in memory: %s)\n", head, "keys", (unsigned long long)s->keys,
           b1);
    format_bytes(s->buffered_bytes, b1, sizeof(b1));
    printf("%-*s %llu  remote writes waiting for their dependencies (%s)\n", head, "buffered",
           (unsigned long long)s->buffered, b1);
    printf("%-*s %llu  requests waiting for this region to catch up\n", head, "waiting",
           (unsigned long long)s->waiting);
    format_bytes(s->outbox_bytes, b1, sizeof(b1));
    format_bytes(s->outbox_body_bytes, b2, sizeof(b2));
    printf("%-*s %llu  own writes not yet applied by every region (%s; bodies in memory: %s)\n",
           head, "outbox", (unsigned long long)s->outbox_total, b1, b2);
    printf("%-*s %llu of max %llu open on the client endpoint (%llu refused at the cap)\n", head,
           "clients", (unsigned long long)s->client_connections,
           (unsigned long long)s->client_connections_max,
           (unsigned long long)s->connections_refused);

    printf("\n%-*s %20s  %-27s  %12s\n", head, "applied", "stamp", "UTC", "lag ms");
    for (unsigned i = 0; i < rg->n; i++)
        print_stamp_row(w, rg->name[i], s->applied[i], s->clock);
    printf("%-*s %20s  %-27s  %12s\n", head, "stable", "stamp", "UTC", "lag ms");
    for (unsigned i = 0; i < rg->n; i++)
        print_stamp_row(w, rg->name[i], s->stable[i], s->clock);

    if (s->n_peers > 0) {
        printf("\n%-*s %-4s %8s %7s %10s %10s %10s %12s %8s %12s\n", head, "peers", "link",
               "delay ms", "queued", "sent", "dropped", "received", "bytes sent", "outbox",
               "in flight B");
        for (unsigned i = 0; i < s->n_peers; i++) {
            const struct cw_status_peer *p = &s->peers[i];
            printf("  %-*s %-4s %8u %7llu %10llu %10llu %10llu %12llu %8llu %12llu\n", w,
                   rg->name[p->id], p->link_cut ? "cut" : "up", p->delay_ms,
                   (unsigned long long)p->queued, (unsigned long long)p->frames_sent,
                   (unsigned long long)p->frames_dropped, (unsigned long long)p->frames_received,
                   (unsigned long long)p->bytes_sent, (unsigned long long)p->outbox_pending,
                   (unsigned long long)s->inflight_bytes[i]);
        }
        /* Of each peer's writes: applied here minus committed there. */
        printf("\n%-*s %10s %10s %10s %10s %10s\n", head, "visibility ms", "count", "p50", "p90",
               "p99", "max");
        for (unsigned i = 0; i < s->n_peers; i++) {
            const struct cw_status_peer *p = &s->peers[i];
            const struct cw_status_latency *l = &p->visibility;
            char p50[24], p90[24], p99[24], mx[24];
            format_ms(l->p50_us, p50, sizeof(p50));
            format_ms(l->p90_us, p90, sizeof(p90));
            format_ms(l->p99_us, p99, sizeof(p99));
            format_ms(l->max_us, mx, sizeof(mx));
            printf("  %-*s %10llu %10s %10s %10s %10s\n", w, rg->name[p->id],
                   (unsigned long long)l->count, p50, p90, p99, mx);
        }
    }

    struct cw_status_counter f[64];
    size_t n = cw_status_counter_list(s, f, sizeof(f) / sizeof(f[0]));
    if (n > sizeof(f) / sizeof(f[0]))
        n = sizeof(f) / sizeof(f[0]);
    printf("\ncounters\n");
    for (size_t i = 0; i < n; i++)
        printf("%s%-20s %10llu%s", i % 3 == 0 ? "  " : "   ", f[i].name,
               (unsigned long long)f[i].value,
               i % 3 == 2 || i == n - 1 ? "\n" : "");
    /* The repl_ counters' derived figures (docs/protocol.md, "Replication bytes"). */
    double meta, lz4;
    cw_status_replication_ratios(&s->replication, &meta, &lz4);
    printf("\n%-*s ", head, "replication");
    if (s->replication.records == 0)
        printf("no records sent yet\n");
    else
        printf("%.1f bytes of metadata per record before LZ4, LZ4 ratio %.2f "
               "(%.1f bytes per record on the wire)\n",
               meta, lz4, (double)s->replication.frame_bytes / (double)s->replication.records);
    if (s->has_strong)
        print_strong_text(s, w, head);
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
    cli_json_escape(buf, 6 * SHOWN_MAX + 1, bk, used);
    if (used < n)
        strcat(buf, "...");
    return buf;
}

static int split_key(struct run *r, const char *bk, char *bucket, size_t bucket_size,
                     const char **key)
{
    char sb[6 * SHOWN_MAX + 4];
    const char *slash = strchr(bk, '/');
    if (slash == NULL || slash == bk || slash[1] == '\0')
        return usage(r->a.cmd, "'%s' is not BUCKET/KEY (e.g. users/alice)", shown(bk, sb));
    size_t n = (size_t)(slash - bk);
    if (n >= bucket_size)
        return usage(r->a.cmd, "bucket name in '%s' is longer than %d characters", shown(bk, sb),
                     CW_BUCKET_LEN_MAX);
    memcpy(bucket, bk, n);
    bucket[n] = '\0';
    *key = slash + 1;
    return EXIT_OK;
}

/*
 * Reports a failed put, get or del. A bad bucket or key is found by the library
 * before anything is sent: a usage error. Every context token was parsed before
 * the request was sent (--context by check_context, the session's when its file
 * was loaded), so CW_ECONTEXT here is the region refusing a well-formed
 * context: a context naming a region this cluster lacks, or holding a stamp
 * too far ahead of the region's physical time (clock skew). That is the
 * server's verdict on a request it received, so it is reported with the
 * server's own detail and the exit status of an operational error.
 */
static int op_failed(struct run *r, int rc, const char *what, const char *bk)
{
    char sb[6 * SHOWN_MAX + 4];
    const char *detail = cw_client_error(r->client);
    if (rc == CW_EBUCKET || rc == CW_EKEY)
        return usage(r->a.cmd, "%s %s: %s (%s)", what, shown(bk, sb), cw_strerror(rc), detail);
    if (rc == CW_ECONTEXT) {
        const char *why = after_general(rc, detail);
        if (why == NULL)
            why = detail;
        fprintf(stderr, "causeway: %s %s: the region refused the request's causal context: %s\n",
                what, shown(bk, sb), why[0] != '\0' ? why : "(it gave no detail)");
        return EXIT_FAIL;
    }
    return failed(rc, detail, "%s %s", what, shown(bk, sb));
}

/* A --context token must parse before anything is sent: one that does not is a
 * usage error, told apart from a token the region refuses (op_failed). */
static int check_context(struct run *r)
{
    if (r->a.context == NULL)
        return EXIT_OK;
    struct cw_sess *scratch = NULL;
    int rc = cw_sess_new(1, &scratch);
    if (rc != CW_OK)
        return failed(rc, NULL, "check the --context token");
    rc = cw_sess_import(scratch, r->a.context);
    cw_sess_free(&scratch);
    if (rc == CW_ECONTEXT) {
        char sb[6 * SHOWN_MAX + 4];
        return usage(r->a.cmd,
                     "--context '%s' is not a context token (cw1- and hex digits): pass the "
                     "token exactly as get printed it on its 'context:' line",
                     shown(r->a.context, sb));
    }
    if (rc != CW_OK)
        return failed(rc, NULL, "check the --context token");
    return EXIT_OK;
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

/* A conditional write whose condition did not hold: nothing was written. Says
 * what the key's version is, so that the user can read it and try again. */
static int write_conflict(struct run *r, const char *name, const char *bk,
                          const struct cw_put_result *res)
{
    char sb[6 * SHOWN_MAX + 4];
    unsigned long long cur = (unsigned long long)res->version;
    if (r->a.if_absent)
        fprintf(stderr,
                "causeway: %s %s: not written: the key exists (version %llu), and --if-absent "
                "writes only a key that does not\n",
                name, shown(bk, sb), cur);
    else if (cur == 0)
        fprintf(stderr,
                "causeway: %s %s: not written: the key does not exist (version 0), not version "
                "%s\n",
                name, shown(bk, sb), r->a.if_version_text);
    else
        fprintf(stderr,
                "causeway: %s %s: not written: the key's current version is %llu, not %s; read "
                "it and retry with --if-version %llu\n",
                name, shown(bk, sb), cur, r->a.if_version_text, cur);
    if (r->a.json) {
        fputs("{\"key\":", stdout);
        put_json_str(bk);
        printf(",\"conflict\":true,\"version\":%llu}\n", cur);
    }
    return EXIT_CONFLICT;
}

static int cmd_write(struct run *r, bool is_put)
{
    const char *name = is_put ? "put" : "del";
    int want = is_put ? 2 : 1;
    if (r->a.npos != want)
        return usage(r->a.cmd, is_put ? "put needs BUCKET/KEY and VALUE" : "del needs BUCKET/KEY");
    const char *bk = r->a.pos[0];
    char bucket[CW_BUCKET_LEN_MAX + 1];
    const char *key;
    int st = split_key(r, bk, bucket, sizeof(bucket), &key);
    if (st == EXIT_OK)
        st = check_context(r);
    if (st != EXIT_OK)
        return st;
    struct cw_put_result res;
    memset(&res, 0, sizeof(res));
    enum cw_put_cond_kind cond = r->a.if_absent    ? CW_PUT_IF_ABSENT
                                 : r->a.if_version ? CW_PUT_IF_VERSION
                                                   : CW_PUT_ALWAYS;
    /* cw_put_if / cw_del_if report the version of a strong bucket's key; a
     * --context (siblings buckets) goes through cw_put / cw_del, which take a
     * token (run_command refuses --context with a condition). */
    bool with_version = r->a.context == NULL;
    int rc;
    if (is_put) {
        const char *arg = r->a.pos[1];
        uint8_t *data = NULL;
        size_t len = strlen(arg);
        if (strcmp(arg, "-") == 0) {
            rc = read_stdin(&data, &len);
            if (rc != CW_OK)
                return failed(rc, NULL, "read the value from standard input");
        }
        const void *value = data ? data : (const void *)arg;
        if (with_version)
            rc = cw_put_if(r->client, r->sess, bucket, key, strlen(key), value, len, cond,
                           r->a.if_version, &res);
        else
            rc = cw_put(r->client, r->sess, bucket, key, strlen(key), value, len, r->a.context,
                        &res);
        free(data);
    } else if (with_version) {
        rc = cw_del_if(r->client, r->sess, bucket, key, strlen(key), cond, r->a.if_version, &res);
    } else {
        rc = cw_del(r->client, r->sess, bucket, key, strlen(key), r->a.context, &res);
    }
    if (rc == CW_ECONFLICT)
        return write_conflict(r, name, bk, &res);
    if (rc != CW_OK)
        return op_failed(r, rc, name, bk);
    if (r->a.json)
        print_write_json(r, bk, &res);
    else if (res.version != 0)
        printf("version %llu\n", (unsigned long long)res.version);
    return EXIT_OK;
}

static int cmd_put(struct run *r)
{
    return cmd_write(r, true);
}

static int cmd_del(struct run *r)
{
    return cmd_write(r, false);
}

static int cmd_get(struct run *r)
{
    if (r->a.npos != 1)
        return usage(r->a.cmd, "get needs BUCKET/KEY");
    const char *bk = r->a.pos[0];
    char bucket[CW_BUCKET_LEN_MAX + 1];
    const char *key;
    int st = split_key(r, bk, bucket, sizeof(bucket), &key);
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
    if (r->a.npos != 0)
        return usage(r->a.cmd, "status takes no arguments");
    struct cw_status *st = NULL;
    int rc = cw_status_get(r->client, &st);
    if (rc != CW_OK)
        return failed(rc, cw_client_error(r->client), "status");
    if (r->a.json) {
        char *json = NULL;
        rc = cw_status_to_json(st, &json);
        if (rc != CW_OK) {
            cw_status_free(&st);
            return failed(rc, NULL, "status as JSON");
        }
        puts(json);
        free(json);
    } else {
        print_status_text(st);
    }
    cw_status_free(&st);
    return EXIT_OK;
}

static int cmd_link(struct run *r)
{
    if (r->a.npos < 3)
        return usage(r->a.cmd, "link needs FROM TO and cut, heal or delay MS");
    const char *from = r->a.pos[0], *to = r->a.pos[1], *action = r->a.pos[2];
    enum cw_admin_link op;
    unsigned delay_ms = 0;
    if (strcmp(action, "cut") == 0 && r->a.npos == 3) {
        op = CW_ADMIN_LINK_CUT;
    } else if (strcmp(action, "heal") == 0 && r->a.npos == 3) {
        op = CW_ADMIN_LINK_HEAL;
    } else if (strcmp(action, "delay") == 0 && r->a.npos == 4) {
        op = CW_ADMIN_LINK_DELAY;
        if (!parse_uint(r->a.pos[3], DELAY_MS_MAX, &delay_ms))
            return usage(r->a.cmd, "link delay needs milliseconds, 0 to %u, not '%s'", DELAY_MS_MAX,
                         r->a.pos[3]);
    } else {
        return usage(r->a.cmd, "link FROM TO takes 'cut', 'heal' or 'delay MS'");
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

/* Finds the endpoint for the command: EXIT_OK with *ep set, or an exit status. */
static int resolve_endpoint(struct run *r, const char **ep)
{
    struct args *a = &r->a;
    bool is_link = strcmp(a->cmd, "link") == 0;
    if (a->endpoint != NULL && (a->config != NULL || a->region != NULL))
        return usage(a->cmd, "give either --endpoint or --config with --region, not both");
    if (a->endpoint != NULL) {
        *ep = a->endpoint;
        return EXIT_OK;
    }
    if (a->config == NULL)
        return usage(a->cmd, "no node to talk to: give --endpoint EP, or --config FILE%s",
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
    const char *name = is_link ? (a->npos > 0 ? a->pos[0] : "") : a->region;
    if (name == NULL)
        return usage(a->cmd, "--config needs --region NAME to know which region to talk to");
    const struct cw_region_config *reg = cw_config_region(&r->cfg, name);
    if (reg == NULL) {
        fprintf(stderr, "causeway: no region '%s' in %s; it has:", name, a->config);
        for (unsigned i = 0; i < r->cfg.n_regions; i++)
            fprintf(stderr, " %s", r->cfg.regions[i].name);
        fputs("\n", stderr);
        return EXIT_USAGE;
    }
    *ep = is_link ? reg->admin : reg->client;
    if (r->cfg.security == CW_SECURITY_CURVE) {
        if (reg->public_key[0] == '\0') {
            fprintf(stderr,
                    "causeway: %s says security = curve but [region %s] has no public_key; "
                    "add the region's public key to the config\n",
                    a->config, reg->name);
            return EXIT_FAIL;
        }
        r->config_server_key = reg->public_key;
    }
    return EXIT_OK;
}

/*
 * Loads the --session file, or creates it. Its errors are about the file, and
 * say so: cw_sess_load reports a malformed file as CW_ECONTEXT, whose general
 * sentence is about context tokens on the command line, so it is not shown.
 * Nothing has been sent yet; the file is not changed.
 */
static int open_session(struct run *r)
{
    const char *path = r->a.session;
    int rc = cw_sess_new(0, &r->sess);
    if (rc != CW_OK)
        return failed(rc, NULL, "session %s", path);
    rc = cw_sess_load(r->sess, path);
    const char *detail = cw_sess_error(r->sess);
    switch (rc) {
    case CW_OK:
        return EXIT_OK;
    case CW_ENOTFOUND:
        /* Create it now: a file that cannot be written should stop us before a
         * write is sent whose causal context would then be lost. */
        rc = cw_sess_save(r->sess, path);
        if (rc == CW_OK)
            return EXIT_OK;
        fprintf(stderr,
                "causeway: cannot create session file %s (%s)\n"
                "causeway: pass a --session FILE in a directory you can write to\n",
                path, cw_sess_error(r->sess));
        return EXIT_FAIL;
    case CW_EIO:
        /* The detail names the file: "cannot open/read session file F: why". */
        fprintf(stderr,
                "causeway: %s\n"
                "causeway: make %s a readable session file, or pass another --session FILE\n",
                detail, path);
        return EXIT_FAIL;
    case CW_ECONTEXT:
        /* The detail is "FILE:LINE: what is wrong with the file". */
        fprintf(stderr,
                "causeway: %s\n"
                "causeway: delete %s to start a new session (which forgets what the old one "
                "had seen), or pass a fresh --session FILE\n",
                detail, path);
        return EXIT_FAIL;
    default:
        return failed(rc, detail, "session %s", path);
    }
}

/*
 * The CURVE keys of the connection: the server key from the config (the
 * region's public_key when it says security = curve), else --server-key or
 * $CAUSEWAY_SERVER_KEY (with --endpoint); this client's pair from --key-file or
 * $CAUSEWAY_KEY_FILE. No server key: no CURVE (a key file in the environment is
 * then ignored; one given with --key-file is an error, as it would be unused).
 */
static int curve_options(struct run *r, struct cw_client_options *opt)
{
    const struct args *a = &r->a;
    const char *server = NULL, *server_from = NULL;
    if (a->server_key != NULL) {
        if (r->have_cfg)
            return usage(a->cmd, "--server-key goes with --endpoint; with --config the server "
                                 "key is the region's public_key");
        server = a->server_key;
        server_from = "--server-key";
    } else if (r->have_cfg) {
        server = r->config_server_key;
        server_from = a->config;
    } else if (getenv("CAUSEWAY_SERVER_KEY") != NULL && getenv("CAUSEWAY_SERVER_KEY")[0]) {
        server = getenv("CAUSEWAY_SERVER_KEY");
        server_from = "CAUSEWAY_SERVER_KEY";
    }
    const char *key_file = a->key_file;
    const char *key_from = "--key-file";
    if (key_file == NULL && getenv("CAUSEWAY_KEY_FILE") != NULL &&
        getenv("CAUSEWAY_KEY_FILE")[0] != '\0') {
        key_file = getenv("CAUSEWAY_KEY_FILE");
        key_from = "CAUSEWAY_KEY_FILE";
    }
    if (server == NULL) {
        if (a->key_file != NULL)
            return usage(a->cmd,
                         "--key-file without a server key: the config does not say security = "
                         "curve; with --endpoint give the node's public key with --server-key");
        return EXIT_OK;
    }
    uint8_t bin[CW_CURVE_KEY_BYTES];
    if (!cw_curve_decode(server, bin))
        return usage(a->cmd,
                     "the server key from %s is not a CURVE public key (40 Z85 "
                     "characters)",
                     server_from);
    if (key_file == NULL) {
        fprintf(stderr,
                "causeway: the node requires CURVE (%s%s): give this client's key pair with "
                "--key-file FILE or CAUSEWAY_KEY_FILE (make one with 'causeway keygen --out "
                "FILE' and have its public key listed in the node's client_keys_file)\n",
                server_from, r->have_cfg ? " says security = curve" : "");
        return EXIT_USAGE;
    }
    char err[1024];
    int rc = cw_client_options_key_file(opt, key_file, err, sizeof(err));
    if (rc != CW_OK) {
        fprintf(stderr, "causeway: %s (from %s)\n", err, key_from);
        return EXIT_FAIL;
    }
    snprintf(opt->server_key, sizeof(opt->server_key), "%s", server);
    return EXIT_OK;
}

static int cmd_keygen(struct run *r)
{
    const struct args *a = &r->a;
    if (a->npos > 0)
        return usage(a->cmd, "keygen takes no arguments (did you mean --out %s?)", a->pos[0]);
    char pub[CW_CURVE_Z85_LEN + 1], sec[CW_CURVE_Z85_LEN + 1], err[1024];
    if (cw_curve_generate(pub, sec, err, sizeof(err)) != 0) {
        fprintf(stderr, "causeway: keygen: %s\n", err);
        return EXIT_FAIL;
    }
    int st = EXIT_OK;
    if (a->out != NULL) {
        if (cw_curve_write_pair(a->out, pub, sec, err, sizeof(err)) != 0) {
            fprintf(stderr, "causeway: keygen: %s\n", err);
            st = EXIT_FAIL;
        } else if (a->json) {
            fputs("{\"public_key\":", stdout);
            put_json_str(pub);
            fputs(",\"file\":", stdout);
            put_json_str(a->out);
            fputs("}\n", stdout);
        } else {
            printf("%s\n", pub);
        }
    } else if (a->json) {
        fputs("{\"public_key\":", stdout);
        put_json_str(pub);
        fputs(",\"secret_key\":", stdout);
        put_json_str(sec);
        fputs("}\n", stdout);
    } else {
        printf("# causeway CURVE key pair (causeway keygen). Keep it secret: mode 0600.\n"
               "public-key = %s\nsecret-key = %s\n",
               pub, sec);
    }
    memset(sec, 0, sizeof(sec));
    return st;
}

static int run_command(struct run *r, const struct command *cmd)
{
    struct args *a = &r->a;
    if (a->context != NULL && !cmd->takes_context)
        return usage(a->cmd, "--context applies to put and del only");
    bool has_cond = a->if_version != 0 || a->if_absent;
    if (has_cond && !cmd->takes_context)
        return usage(a->cmd, "--if-version and --if-absent apply to put and del only");
    if (a->if_version != 0 && a->if_absent)
        return usage(a->cmd, "--if-version and --if-absent exclude each other: give one");
    if (has_cond && a->context != NULL)
        return usage(a->cmd,
                     "--context does not go with --if-version or --if-absent (contexts are for "
                     "siblings buckets, conditions for strong buckets)");
    const char *ep = NULL;
    int st = resolve_endpoint(r, &ep);
    if (st != EXIT_OK)
        return st;
    if (a->out != NULL)
        return usage(a->cmd, "--out applies to keygen only");
    struct cw_client_options opt;
    cw_client_options_init(&opt);
    if (a->timeout_set)
        opt.timeout_ms = a->timeout_ms;
    st = curve_options(r, &opt);
    if (st != EXIT_OK)
        return st;
    int rc = cw_client_connect(ep, &opt, &r->client);
    memset(opt.secret_key, 0, sizeof(opt.secret_key));
    if (rc != CW_OK)
        return failed(rc, NULL, "connect to %s", ep);
    if (cmd->data && a->session != NULL && (st = open_session(r)) != EXIT_OK)
        return st;

    st = cmd->run(r);

    /* A read that found nothing still taught the session (tombstones it saw). */
    if (r->sess != NULL && (st == EXIT_OK || st == EXIT_NOTFOUND)) {
        rc = cw_sess_save(r->sess, a->session);
        if (rc != CW_OK) {
            /* Say what did happen: the operation (a write, perhaps) was carried
             * out even though the session could not remember it. */
            return failed(rc, cw_sess_error(r->sess),
                          "the %s succeeded, but saving session %s failed", a->cmd, a->session);
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
    struct args *a = &r.a;
    if (a->version) {
        printf("causeway %s\n", CW_VERSION_TEXT);
        return EXIT_OK;
    }
    if (a->cmd != NULL && strcmp(a->cmd, "help") == 0) {
        if (a->npos > 1)
            return usage(NULL, "help takes at most one command");
        const char *text = command_help(a->npos > 0 ? a->pos[0] : NULL);
        if (text == NULL)
            return usage(NULL, "no help for unknown command '%s'", a->pos[0]);
        fputs(text, stdout);
        return EXIT_OK;
    }
    if (a->help) {
        const char *text = command_help(a->cmd);
        fputs(text ? text : main_help, stdout);
        return EXIT_OK;
    }
    if (a->cmd == NULL)
        return usage(NULL, "no command given (put, get, del, status, link or keygen)");
    const struct command *cmd = find_command(a->cmd);
    if (cmd == NULL)
        return usage(NULL, "unknown command '%s'", a->cmd);

    if (cmd->run == cmd_keygen) {
        if (a->config != NULL || a->region != NULL || a->endpoint != NULL || a->session != NULL)
            st = usage(a->cmd, "keygen talks to no node: it takes only --out FILE and --json");
        else
            st = cmd_keygen(&r);
    } else {
        st = run_command(&r, cmd);
    }

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
