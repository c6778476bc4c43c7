/*
 * config.c - loads and validates a cluster configuration (see config.h and
 * docs/configuration.md).
 *
 * libinih does the INI tokenising, but the handler it calls is not told the line
 * number in Debian's build (INI_HANDLER_LINENO is 0) and is not called for section
 * headers at all. So the file is fed to ini_parse_stream through our own reader,
 * which is called for every physical line before inih handles it: the reader counts
 * lines, bounds them, recognises section headers (opening and closing sections
 * here, so an empty section is still checked), and the handler, called for the
 * key = value pair of the line the reader just served, sees the right line number
 * and section. The first error is kept and stops the parse (the reader then
 * reports end of file).
 */
#include "server/config.h"

#include "core/cw_assert.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <ini.h>

#include <causeway/error.h>

#include "core/limits.h"

/* Longest line accepted, newline excluded: room for a data_dir of
 * CW_CONFIG_PATH_MAX bytes plus the key, spaces and a comment. */
#define LINE_CHARS_MAX 8192
/* A configuration is a few hundred lines; anything near this is not one. */
#define FILE_BYTES_MAX (1u << 20)
/* Every ordered pair of distinct regions, once. */
#define LATENCY_ENTRIES_MAX (CW_REGIONS_MAX * (CW_REGIONS_MAX - 1))
/* Paths of unix sockets are limited by struct sockaddr_un (108 bytes with the NUL). */
#define IPC_PATH_MAX 107
#define MSG_MAX (CW_CONFIG_PATH_MAX + 1024) /* the path, then the message */
/* A numeric constant as a string literal, for fixed messages. */
#define STR_(x) #x
#define STR(x) STR_(x)

enum section_kind { SEC_NONE, SEC_CLUSTER, SEC_REGION, SEC_LATENCY, SEC_BUCKET };

#define SECTIONS_EXPECTED "[cluster], [region NAME], [latency] or [bucket NAME]"

/* The keys of each section, in the order the "expected one of" lists show them. */
enum cluster_key {
    CK_DURABILITY,
    CK_DATA_DIR,
    CK_MAX_VALUE_BYTES,
    CK_HEARTBEAT_MS,
    CK_WAIT_MS,
    CK_RESEND_MS,
    CK_JITTER_MS,
    CK_DEP_BUFFER_MAX,
    CK_OUTBOX_MAX,
    CK_BATCH_RECORDS_MAX,
    CK_WINDOW_RECORDS,
    CK_WAITING_MAX,
    CK_OUTBOX_BYTES_MAX,
    CK_DEP_BUFFER_BYTES_MAX,
    CK_INFLIGHT_BYTES_MAX,
    CK_KEY_CACHE_BYTES_MAX,
    CK_OUTBOX_CACHE_BYTES_MAX,
    CK_STORE_CACHE_BYTES,
    CK_CHECKPOINT_BYTES,
    CK_LOG_LEVEL,
    CK_ELECTION_MIN_MS,
    CK_ELECTION_MAX_MS,
    CK_RAFT_HEARTBEAT_MS,
    CK_SUSPECT_AFTER_MS,
    CK_SNAPSHOT_ENTRIES,
    CK_STRONG_TIMEOUT_MS,
    CK_STRONG_PENDING_MAX,
    CK_STRONG_BYTES_MAX,
    CK_PREFERRED_LEADER,
    CK_SECURITY,
    CK_ALLOW_OPEN_NONLOCAL,
    CK_CLIENT_KEYS_FILE,
    CK_ADMIN_KEYS_FILE,
    CK_CLIENT_CONNECTIONS_MAX,
    CK_COUNT_
};
static const char *const cluster_keys[CK_COUNT_] = {
    "durability",
    "data_dir",
    "max_value_bytes",
    "heartbeat_ms",
    "wait_ms",
    "resend_ms",
    "jitter_ms",
    "dep_buffer_max",
    "outbox_max",
    "batch_records_max",
    "window_records",
    "waiting_max",
    "outbox_bytes_max",
    "dep_buffer_bytes_max",
    "inflight_bytes_max",
    "key_cache_bytes_max",
    "outbox_cache_bytes_max",
    "store_cache_bytes",
    "checkpoint_bytes",
    "log_level",
    "election_min_ms",
    "election_max_ms",
    "raft_heartbeat_ms",
    "suspect_after_ms",
    "snapshot_entries",
    "strong_timeout_ms",
    "strong_pending_max",
    "strong_bytes_max",
    "preferred_leader",
    "security",
    "allow_open_nonlocal",
    "client_keys_file",
    "admin_keys_file",
    "client_connections_max",
};

/* Keys of [cluster] that were renamed: the old name still sets the key, with a
 * warning; a file that sets both names is an error. They bound reads and writes
 * alike, which the old names hid. */
static const struct {
    const char *old_name;
    enum cluster_key key;
} cluster_renamed[] = {
    {"read_wait_ms", CK_WAIT_MS},
    {"pending_reads_max", CK_WAITING_MAX},
};
#define N_CLUSTER_RENAMED (sizeof(cluster_renamed) / sizeof(cluster_renamed[0]))
_Static_assert(N_CLUSTER_RENAMED <= CW_CONFIG_WARNINGS_MAX,
               "room for a warning per deprecated key");

enum region_key {
    RK_CLIENT,
    RK_PEER,
    RK_ADMIN,
    RK_DATA_DIR,
    RK_PUBLIC_KEY,
    RK_SECRET_KEY_FILE,
    RK_COUNT_
};
static const char *const region_keys[RK_COUNT_] = {"client",   "peer",       "admin",
                                                   "data_dir", "public_key", "secret_key_file"};
#define ROLES 3 /* client, peer, admin: the endpoint keys come first */

enum bucket_key { BK_CONSISTENCY, BK_CONFLICT, BK_MAX_SIBLINGS, BK_COUNT_ };
static const char *const bucket_keys[BK_COUNT_] = {"consistency", "conflict", "max_siblings"};

#define KEYS_MAX CK_COUNT_

/* A numeric key of [cluster]: its range, default and where it is stored. */
struct uint_key {
    enum cluster_key key;
    uint32_t min, max, def;
    size_t offset; /* of the uint32_t in struct cw_config */
};

/* The defaults are the replica's (core/limits.h), so a key left out means what
 * the replica would choose. The protocol-wide bounds come from there too: a value
 * must fit in one frame with its key and metadata, and a batch of records in one
 * replication frame, or a peer would refuse what this node sends. The other
 * ranges are this file's own sanity bounds. */
#define CFG_FIELD(f) offsetof(struct cw_config, f)
static const struct uint_key cluster_uints[] = {
    {CK_MAX_VALUE_BYTES, 1, CW_MAX_VALUE_BYTES_MAX, CW_DEFAULT_VALUE_BYTES_MAX,
     CFG_FIELD(max_value_bytes)},
    {CK_HEARTBEAT_MS, 10, 60000, CW_DEFAULT_HEARTBEAT_MS, CFG_FIELD(heartbeat_ms)},
    {CK_WAIT_MS, 1, 600000, CW_DEFAULT_WAIT_MS, CFG_FIELD(wait_ms)},
    {CK_RESEND_MS, 10, 600000, CW_DEFAULT_NACK_RETRY_MS, CFG_FIELD(resend_ms)},
    {CK_JITTER_MS, 0, 10000, 0, CFG_FIELD(jitter_ms)},
    {CK_DEP_BUFFER_MAX, 1, 10000000, CW_DEFAULT_DEP_BUFFER_MAX, CFG_FIELD(dep_buffer_max)},
    {CK_OUTBOX_MAX, 1, 100000000, CW_DEFAULT_OUTBOX_MAX, CFG_FIELD(outbox_max)},
    {CK_BATCH_RECORDS_MAX, 1, CW_FRAME_RECORDS_MAX, CW_DEFAULT_BATCH_RECORDS_MAX,
     CFG_FIELD(batch_records_max)},
    {CK_WINDOW_RECORDS, 1, 1000000, CW_DEFAULT_WINDOW_RECORDS, CFG_FIELD(window_records)},
    {CK_WAITING_MAX, 1, 1000000, CW_DEFAULT_WAITING_MAX, CFG_FIELD(waiting_max)},
    {CK_ELECTION_MIN_MS, 10, 600000, CW_DEFAULT_ELECTION_MIN_MS, CFG_FIELD(election_min_ms)},
    /* 0: derived from election_min_ms (twice it; a tenth of it). */
    {CK_ELECTION_MAX_MS, 0, 1200000, 0, CFG_FIELD(election_max_ms)},
    {CK_RAFT_HEARTBEAT_MS, 0, 200000, 0, CFG_FIELD(raft_heartbeat_ms)},
    {CK_SUSPECT_AFTER_MS, 0, 600000, 0, CFG_FIELD(suspect_after_ms)},
    {CK_SNAPSHOT_ENTRIES, 10, 10000000, CW_DEFAULT_SNAPSHOT_ENTRIES, CFG_FIELD(snapshot_entries)},
    {CK_STRONG_TIMEOUT_MS, 10, 600000, CW_DEFAULT_STRONG_TIMEOUT_MS, CFG_FIELD(strong_timeout_ms)},
    {CK_STRONG_PENDING_MAX, 1, 1000000, CW_DEFAULT_STRONG_PENDING_MAX,
     CFG_FIELD(strong_pending_max)},
    /* 0: derived from the open-file limit by the node at start (server.c). */
    {CK_CLIENT_CONNECTIONS_MAX, 0, 1000000, 0, CFG_FIELD(client_connections_max)},
};
#define N_CLUSTER_UINTS (sizeof(cluster_uints) / sizeof(cluster_uints[0]))

/* A size key of [cluster]: a uint64_t in bytes, written with an optional K, M, G
 * or T suffix (powers of 1024). */
struct bytes_key {
    enum cluster_key key;
    uint64_t min, max, def;
    size_t offset; /* of the uint64_t in struct cw_config */
};

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define TIB (1024ull * GIB)

/* The defaults are the replica's and the store's (core/limits.h). The bounds are
 * this file's sanity bounds: below 64 KiB a queue or cache holds next to nothing
 * and above the maximum the number is a typo (a unit too many) rather than a
 * plan. Everything but the outbox lives in memory, so 64 GiB is the ceiling;
 * outbox bodies beyond outbox_cache_bytes_max live only on disk, so its byte
 * bound may go to 1 TiB. The store's cache starts at 1 MiB: Berkeley DB needs
 * room for its pages and rounds tiny caches up anyway. */
static const struct bytes_key cluster_bytes[] = {
    {CK_OUTBOX_BYTES_MAX, 64 * KIB, TIB, CW_DEFAULT_OUTBOX_BYTES_MAX, CFG_FIELD(outbox_bytes_max)},
    {CK_DEP_BUFFER_BYTES_MAX, 64 * KIB, 64 * GIB, CW_DEFAULT_DEP_BUFFER_BYTES_MAX,
     CFG_FIELD(dep_buffer_bytes_max)},
    {CK_INFLIGHT_BYTES_MAX, 64 * KIB, 64 * GIB, CW_DEFAULT_INFLIGHT_BYTES_MAX,
     CFG_FIELD(inflight_bytes_max)},
    {CK_KEY_CACHE_BYTES_MAX, 64 * KIB, 64 * GIB, CW_DEFAULT_KEY_CACHE_BYTES_MAX,
     CFG_FIELD(key_cache_bytes_max)},
    {CK_OUTBOX_CACHE_BYTES_MAX, 64 * KIB, 64 * GIB, CW_DEFAULT_OUTBOX_CACHE_BYTES_MAX,
     CFG_FIELD(outbox_cache_bytes_max)},
    {CK_STORE_CACHE_BYTES, MIB, 64 * GIB, CW_DEFAULT_STORE_CACHE_BYTES,
     CFG_FIELD(store_cache_bytes)},
    {CK_CHECKPOINT_BYTES, MIB, 64 * GIB, CW_DEFAULT_CHECKPOINT_BYTES,
     CFG_FIELD(checkpoint_bytes)},
    /* The strong state travels as one snapshot frame, hence its ceiling. */
    {CK_STRONG_BYTES_MAX, 64 * KIB, CW_RAFT_SNAP_BYTES_MAX - CW_RAFT_SNAP_BYTES_MAX / 8,
     CW_DEFAULT_STRONG_BYTES_MAX - CW_DEFAULT_STRONG_BYTES_MAX / 8, CFG_FIELD(strong_bytes_max)},
};
#define N_CLUSTER_BYTES (sizeof(cluster_bytes) / sizeof(cluster_bytes[0]))

#define MAX_SIBLINGS_MIN 1

static const char *const durability_choices[] = {"sync", "write_nosync", "nosync", NULL};
static const char *const log_level_choices[] = {"debug", "info", "warn", "error", NULL};
/* Indexed by enum cw_consistency and enum cw_conflict. */
static const char *const consistency_choices[] = {"causal", "eventual", "strong", NULL};
static const char *const conflict_choices[] = {"lww", "siblings", NULL};
/* Indexed by enum cw_security. */
static const char *const security_choices[] = {"none", "curve", NULL};
static const char *const bool_choices[] = {"false", "true", NULL};

/* The characters of Z85, ZeroMQ's encoding of CURVE keys. */
static const char z85_chars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                ".-:+=^!/*?&<>()[]{}@%$#";

/* One line of [latency], kept by name until every region is known. */
struct latency_entry {
    char from[CW_REGION_NAME_MAX + 1];
    char to[CW_REGION_NAME_MAX + 1];
    bool directed; /* "from -> to"; otherwise both directions */
    uint32_t ms;
    unsigned line;
};

struct loader {
    const char *path;
    FILE *file;
    struct cw_config *cfg;

    /* The reader: the current physical line and how much of it inih has taken. */
    char *line;
    size_t line_cap;
    size_t line_len;
    size_t served;
    unsigned lineno;
    size_t bytes;

    /* The open section. */
    enum section_kind kind;
    unsigned index; /* region id or bucket index */
    unsigned header_line;
    unsigned key_line[KEYS_MAX]; /* where each key of the open section was set; 0 = unset */
    unsigned renamed_line[N_CLUSTER_RENAMED]; /* where [cluster] set a key by its old name */

    unsigned cluster_line, latency_line;    /* header lines of the single sections */
    unsigned preferred_line, election_line; /* for checks after every region is known */
    unsigned region_line[CW_REGIONS_MAX];
    unsigned endpoint_line[CW_REGIONS_MAX][ROLES];
    unsigned region_dir_line[CW_REGIONS_MAX]; /* 0: data_dir not overridden */
    unsigned bucket_line[CW_CONFIG_BUCKETS_MAX];
    unsigned buckets_cap;
    struct latency_entry latency[LATENCY_ENTRIES_MAX];
    unsigned n_latency;

    int rc; /* CW_OK until the first error */
    char msg[MSG_MAX];
};

/* Records the first error as "FILE:LINE: message" (line 0: "FILE: message").
 * Returns 0 so that handlers can return its result to inih. */
static int fail(struct loader *ld, int rc, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct loader *ld, int rc, unsigned line, const char *fmt, ...)
{
    if (ld->rc != CW_OK)
        return 0;
    ld->rc = rc;
    int n = line ? snprintf(ld->msg, sizeof(ld->msg), "%s:%u: ", ld->path, line)
                 : snprintf(ld->msg, sizeof(ld->msg), "%s: ", ld->path);
    if (n < 0 || (size_t)n >= sizeof(ld->msg))
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->msg + n, sizeof(ld->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Region and bucket names: [a-z0-9_-]{1,max}. */
static bool name_valid(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

static const char *skip_space(const char *s)
{
    while (*s && is_space(*s))
        s++;
    return s;
}

/* Writes "choice1, choice2 or choice3" (or with commas only, for key lists). */
static void join_list(char *buf, size_t len, const char *const *items, size_t n, const char *last)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        const char *sep = i == 0 ? "" : (i + 1 == n ? last : ", ");
        int w = snprintf(buf + used, len - used, "%s%s", sep, items[i]);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

static size_t choices_count(const char *const *choices)
{
    size_t n = 0;
    while (choices[n])
        n++;
    return n;
}

/* The label of the open section, as written in the file, for messages. */
static const char *section_label(const struct loader *ld, char *buf, size_t len)
{
    switch (ld->kind) {
    case SEC_CLUSTER:
        return "[cluster]";
    case SEC_LATENCY:
        return "[latency]";
    case SEC_REGION:
        snprintf(buf, len, "[region %s]", ld->cfg->regions[ld->index].name);
        return buf;
    case SEC_BUCKET:
        snprintf(buf, len, "[bucket %s]", ld->cfg->buckets[ld->index].name);
        return buf;
    case SEC_NONE:
        break;
    }
    return "(no section)";
}

/* ---- values ---------------------------------------------------------------- */

static bool parse_uint(struct loader *ld, const char *key, const char *value, uint32_t min,
                       uint32_t max, uint32_t *out)
{
    char label[CW_BUCKET_NAME_MAX + 16];
    const char *sec = section_label(ld, label, sizeof(label));
    /* Digits only: no sign, no hex, no units, so "5s" or "-1" cannot slip through. */
    size_t i = 0;
    uint64_t v = 0;
    for (; value[i] >= '0' && value[i] <= '9'; i++)
        if (v <= UINT32_MAX) /* saturate above the range: still out of range */
            v = v * 10 + (uint64_t)(value[i] - '0');
    if (i == 0 || value[i] != '\0') {
        fail(ld, CW_ECONFIG, ld->lineno,
             "bad number '%.80s' for %s in %s; expected a decimal integer from %u to %u", value,
             key, sec, min, max);
        return false;
    }
    if (v < min || v > max) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "%s = %.80s in %s is out of range; expected an integer from %u to %u", key, value, sec,
             min, max);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* A size for messages: "64K", "1T", or the plain number when no suffix divides it. */
static void format_size(uint64_t v, char *buf, size_t len)
{
    static const char suffix[] = "TGMK";
    for (unsigned i = 0; i < 4; i++) {
        uint64_t unit = 1ull << (10 * (4 - i));
        if (v != 0 && v % unit == 0) {
            snprintf(buf, len, "%llu%c", (unsigned long long)(v / unit), suffix[i]);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* A byte count: decimal digits, then optionally one of K, M, G, T (x1024 each). */
static bool parse_bytes(struct loader *ld, const char *key, const char *value, uint64_t min,
                        uint64_t max, uint64_t *out)
{
    char label[CW_BUCKET_NAME_MAX + 16], lo[32], hi[32];
    const char *sec = section_label(ld, label, sizeof(label));
    format_size(min, lo, sizeof(lo));
    format_size(max, hi, sizeof(hi));
    size_t i = 0;
    uint64_t v = 0;
    bool over = false;
    for (; value[i] >= '0' && value[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(value[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            over = true; /* saturate: still out of range */
        else
            v = v * 10 + d;
    }
    unsigned shift = 0;
    if (i > 0) {
        switch (value[i]) {
        case 'K':
            shift = 10;
            break;
        case 'M':
            shift = 20;
            break;
        case 'G':
            shift = 30;
            break;
        case 'T':
            shift = 40;
            break;
        default:
            break;
        }
    }
    if (i == 0 || value[i + (shift ? 1 : 0)] != '\0') {
        fail(ld, CW_ECONFIG, ld->lineno,
             "bad size '%.80s' for %s in %s; expected a whole number of bytes, optionally "
             "followed by K, M, G or T (powers of 1024, e.g. 256M), from %s to %s",
             value, key, sec, lo, hi);
        return false;
    }
    if (shift != 0) {
        if (v > (UINT64_MAX >> shift))
            over = true;
        else
            v <<= shift;
    }
    if (over || v < min || v > max) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "%s = %.80s in %s is out of range; expected a size from %s to %s (%llu to %llu "
             "bytes)",
             key, value, sec, lo, hi, (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

/* Returns the index of value in choices, or -1 after recording the error. */
static int parse_choice(struct loader *ld, const char *key, const char *value,
                        const char *const *choices)
{
    size_t n = choices_count(choices);
    for (size_t i = 0; i < n; i++)
        if (strcmp(value, choices[i]) == 0)
            return (int)i;
    char label[CW_BUCKET_NAME_MAX + 16];
    char list[128];
    join_list(list, sizeof(list), choices, n, " or ");
    fail(ld, CW_ECONFIG, ld->lineno, "bad value '%.80s' for %s in %s; expected %s", value, key,
         section_label(ld, label, sizeof(label)), list);
    return -1;
}

static bool parse_path(struct loader *ld, const char *key, const char *value, char *out,
                       size_t out_len)
{
    char label[CW_BUCKET_NAME_MAX + 16];
    const char *sec = section_label(ld, label, sizeof(label));
    size_t len = strlen(value);
    if (len == 0) {
        fail(ld, CW_ECONFIG, ld->lineno, "empty %s in %s; expected a directory path", key, sec);
        return false;
    }
    if (len >= out_len) {
        fail(ld, CW_ECONFIG, ld->lineno, "%s in %s is %zu bytes long; expected at most %zu", key,
             sec, len, out_len - 1);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
            fail(ld, CW_ECONFIG, ld->lineno,
                 "%s in %s contains a control character; expected a printable path", key, sec);
            return false;
        }
    }
    memcpy(out, value, len + 1);
    return true;
}

/*
 * Checks "tcp://IP:PORT" (an IPv4 address or an [IPv6] address) or "ipc://PATH".
 * Returns true when valid; otherwise false with what is wrong in why.
 *
 * The node of a region binds its three endpoints, while the other regions and
 * the clients connect to the very same strings. ZeroMQ binds a TCP endpoint
 * only to an IP address, an interface name or '*', and connects only to an
 * address or a host name: an IP address is what works both ways. A host name
 * would pass here and then fail to bind ("No such device"); '*' and the
 * unspecified addresses bind but cannot be connected to from another host.
 */
static bool endpoint_ok(const char *v, char *why, size_t why_len)
{
    if (strlen(v) > CW_ENDPOINT_MAX) {
        snprintf(why, why_len, "it is too long (at most " STR(CW_ENDPOINT_MAX) " bytes)");
        return false;
    }
    if (strncmp(v, "ipc://", 6) == 0) {
        const char *p = v + 6;
        size_t len = strlen(p);
        const char *problem = NULL;
        if (len == 0)
            problem = "the ipc path is empty";
        else if (len > IPC_PATH_MAX)
            problem = "the ipc path is longer than " STR(IPC_PATH_MAX) " bytes";
        for (size_t i = 0; problem == NULL && i < len; i++)
            if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f)
                problem = "the ipc path contains a space or control character";
        if (problem != NULL)
            snprintf(why, why_len, "%s", problem);
        return problem == NULL;
    }
    if (strncmp(v, "tcp://", 6) != 0) {
        snprintf(why, why_len, "the transport is neither tcp:// nor ipc://");
        return false;
    }
    const char *host = v + 6;
    const char *colon;
    char addr[64];
    bool v6 = host[0] == '[';
    if (v6) {
        const char *close = strchr(host, ']');
        if (close == NULL || close == host + 1) {
            snprintf(why, why_len, "the bracketed IPv6 address is not closed or is empty");
            return false;
        }
        if (close[1] != ':') {
            snprintf(why, why_len, "there is no ':PORT' after the IPv6 address");
            return false;
        }
        size_t n = (size_t)(close - host - 1);
        if (n >= sizeof(addr)) {
            snprintf(why, why_len, "'%.*s' is not an IPv6 address", 64, host + 1);
            return false;
        }
        memcpy(addr, host + 1, n);
        addr[n] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(host, ':');
        if (colon == NULL) {
            snprintf(why, why_len, "there is no ':PORT'");
            return false;
        }
        if (colon == host) {
            snprintf(why, why_len, "the host is empty");
            return false;
        }
        size_t n = (size_t)(colon - host);
        if (n >= sizeof(addr))
            n = sizeof(addr) - 1; /* long enough to be refused below, and shown cut */
        memcpy(addr, host, n);
        addr[n] = '\0';
    }
    const char *port = colon + 1;
    unsigned long pn = 0;
    size_t digits = 0;
    for (; port[digits] >= '0' && port[digits] <= '9' && digits < 6; digits++)
        pn = pn * 10 + (unsigned long)(port[digits] - '0');
    if (digits == 0 || port[digits] != '\0' || pn < 1 || pn > 65535) {
        snprintf(why, why_len, "the port is not a number from 1 to 65535");
        return false;
    }
    unsigned char bin[16];
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, bin) != 1) {
        if (v6)
            snprintf(why, why_len, "'%s' is not an IPv6 address", addr);
        else if (strcmp(addr, "*") == 0)
            snprintf(why, why_len,
                     "'*' (every interface) can be bound but not connected to, and the other "
                     "regions and the clients connect to this same endpoint; use this node's IP "
                     "address");
        else
            snprintf(why, why_len,
                     "'%s' is not an IP address: causewayd binds this endpoint and ZeroMQ binds "
                     "TCP only to an address, so a host name fails at start (\"No such "
                     "device\"); write the host's IP address instead (tcp://127.0.0.1:%lu when "
                     "every node runs on this host)",
                     addr, pn);
        return false;
    }
    static const unsigned char zero[16];
    if (memcmp(bin, zero, v6 ? 16 : 4) == 0) {
        snprintf(why, why_len,
                 "'%s' (every interface) can be bound but not connected to, and the other "
                 "regions and the clients connect to this same endpoint; use this node's IP "
                 "address",
                 addr);
        return false;
    }
    return true;
}

/* ---- sections -------------------------------------------------------------- */

static const char *const role_names[ROLES] = {"client", "peer", "admin"};

static char *region_endpoint(struct cw_region_config *r, unsigned role)
{
    switch (role) {
    case RK_CLIENT:
        return r->client;
    case RK_PEER:
        return r->peer;
    default:
        return r->admin;
    }
}

/* The [cluster] keys that must agree with each other, once the section is read.
 * The outbox and the dependency buffer must each hold a record of the largest
 * value: with a smaller outbox such a write fails with CW_EFULL unless the outbox
 * is empty, and a remote record that large could never wait for its
 * dependencies. Only a byte bound set in the file can be too small (the defaults
 * exceed the largest max_value_bytes), so the error points at its line. */
static bool check_cluster(struct loader *ld)
{
    const struct cw_config *c = ld->cfg;
    const struct {
        enum cluster_key key;
        uint64_t v;
        const char *what;
    } need[] = {
        {CK_OUTBOX_BYTES_MAX, c->outbox_bytes_max,
         "a write of the largest value would fail with CW_EFULL unless the outbox is empty"},
        {CK_DEP_BUFFER_BYTES_MAX, c->dep_buffer_bytes_max,
         "a remote write of the largest value could never wait for its dependencies"},
    };
    if (c->election_max_ms != 0 && c->election_min_ms >= c->election_max_ms) {
        unsigned line = ld->key_line[CK_ELECTION_MAX_MS] ? ld->key_line[CK_ELECTION_MAX_MS]
                                                         : ld->key_line[CK_ELECTION_MIN_MS];
        fail(ld, CW_ECONFIG, line,
             "election_min_ms (%u) must be below election_max_ms (%u): the election timeout "
             "is drawn from that range",
             c->election_min_ms, c->election_max_ms);
        return false;
    }
    if (c->raft_heartbeat_ms != 0 && (uint64_t)c->raft_heartbeat_ms * 3 > c->election_min_ms) {
        unsigned line = ld->key_line[CK_RAFT_HEARTBEAT_MS] ? ld->key_line[CK_RAFT_HEARTBEAT_MS]
                                                           : ld->key_line[CK_ELECTION_MIN_MS];
        fail(ld, CW_ECONFIG, line,
             "raft_heartbeat_ms (%u) must be at most a third of election_min_ms (%u), or "
             "followers start elections between heartbeats",
             c->raft_heartbeat_ms, c->election_min_ms);
        return false;
    }
    ld->election_line =
        ld->key_line[CK_ELECTION_MIN_MS] ? ld->key_line[CK_ELECTION_MIN_MS] : ld->cluster_line;
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if (need[i].v >= c->max_value_bytes)
            continue;
        unsigned line = ld->key_line[need[i].key] ? ld->key_line[need[i].key]
                                                  : ld->key_line[CK_MAX_VALUE_BYTES];
        fail(ld, CW_ECONFIG, line,
             "%s (%llu bytes) in [cluster] is less than max_value_bytes (%u): %s; expected "
             "%s of at least max_value_bytes, or a smaller max_value_bytes",
             cluster_keys[need[i].key], (unsigned long long)need[i].v, c->max_value_bytes,
             need[i].what, cluster_keys[need[i].key]);
        return false;
    }
    return true;
}

/* Checks what can only be checked once a section has all its keys. */
static bool close_section(struct loader *ld)
{
    struct cw_config *c = ld->cfg;
    if (ld->kind == SEC_REGION) {
        struct cw_region_config *r = &c->regions[ld->index];
        for (unsigned role = 0; role < ROLES; role++) {
            if (ld->key_line[role] == 0) {
                fail(ld, CW_ECONFIG, ld->header_line,
                     "[region %s] has no '%s' key; expected the client, peer and admin "
                     "endpoints (tcp://IP:PORT or ipc://PATH)",
                     r->name, role_names[role]);
                return false;
            }
            ld->endpoint_line[ld->index][role] = ld->key_line[role];
        }
        ld->region_dir_line[ld->index] = ld->key_line[RK_DATA_DIR];
    } else if (ld->kind == SEC_CLUSTER) {
        if (!check_cluster(ld))
            return false;
    } else if (ld->kind == SEC_BUCKET) {
        const struct cw_bucket_policy *b = &c->buckets[ld->index];
        if (ld->key_line[BK_MAX_SIBLINGS] != 0 && b->conflict != CW_CONFLICT_SIBLINGS) {
            fail(ld, CW_ECONFIG, ld->key_line[BK_MAX_SIBLINGS],
                 "max_siblings is set in [bucket %s] whose conflict is lww; expected "
                 "max_siblings only with conflict = siblings",
                 b->name);
            return false;
        }
    }
    ld->kind = SEC_NONE;
    memset(ld->key_line, 0, sizeof(ld->key_line));
    memset(ld->renamed_line, 0, sizeof(ld->renamed_line));
    return true;
}

static bool grow_buckets(struct loader *ld)
{
    struct cw_config *c = ld->cfg;
    if (c->n_buckets < ld->buckets_cap)
        return true;
    unsigned cap = ld->buckets_cap ? ld->buckets_cap * 2 : 16;
    if (cap > CW_CONFIG_BUCKETS_MAX)
        cap = CW_CONFIG_BUCKETS_MAX;
    struct cw_bucket_policy *grown = realloc(c->buckets, cap * sizeof(*grown));
    if (grown == NULL) {
        fail(ld, CW_ENOMEM, ld->lineno, "out of memory while reading buckets");
        return false;
    }
    c->buckets = grown;
    ld->buckets_cap = cap;
    return true;
}

static bool open_region(struct loader *ld, const char *name, size_t len)
{
    struct cw_config *c = ld->cfg;
    if (!name_valid(name, len, CW_REGION_NAME_MAX)) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "bad region name '%.*s'; expected 1 to %u characters from a-z, 0-9, '_' and '-'",
             (int)(len > 64 ? 64 : len), name, (unsigned)CW_REGION_NAME_MAX);
        return false;
    }
    for (unsigned i = 0; i < c->n_regions; i++) {
        if (strlen(c->regions[i].name) == len && memcmp(c->regions[i].name, name, len) == 0) {
            fail(ld, CW_ECONFIG, ld->lineno,
                 "duplicate section [region %s], first at line %u; expected each region once",
                 c->regions[i].name, ld->region_line[i]);
            return false;
        }
    }
    if (c->n_regions == CW_REGIONS_MAX) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "too many regions: [region %.*s] would be region %u; expected at most %u", (int)len,
             name, c->n_regions + 1, CW_REGIONS_MAX);
        return false;
    }
    unsigned id = c->n_regions++;
    struct cw_region_config *r = &c->regions[id];
    memset(r, 0, sizeof(*r));
    memcpy(r->name, name, len);
    r->id = id;
    ld->region_line[id] = ld->lineno;
    ld->kind = SEC_REGION;
    ld->index = id;
    return true;
}

static bool open_bucket(struct loader *ld, const char *name, size_t len)
{
    struct cw_config *c = ld->cfg;
    if (!name_valid(name, len, CW_BUCKET_NAME_MAX)) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "bad bucket name '%.*s'; expected 1 to %u characters from a-z, 0-9, '_' and '-'",
             (int)(len > 80 ? 80 : len), name, (unsigned)CW_BUCKET_NAME_MAX);
        return false;
    }
    for (unsigned i = 0; i < c->n_buckets; i++) {
        if (strlen(c->buckets[i].name) == len && memcmp(c->buckets[i].name, name, len) == 0) {
            fail(ld, CW_ECONFIG, ld->lineno,
                 "duplicate section [bucket %s], first at line %u; expected each bucket once",
                 c->buckets[i].name, ld->bucket_line[i]);
            return false;
        }
    }
    if (c->n_buckets == CW_CONFIG_BUCKETS_MAX) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "too many buckets: [bucket %.*s] would be bucket %u; expected at most %u", (int)len,
             name, c->n_buckets + 1, CW_CONFIG_BUCKETS_MAX);
        return false;
    }
    if (!grow_buckets(ld))
        return false;
    unsigned i = c->n_buckets++;
    struct cw_bucket_policy *b = &c->buckets[i];
    memset(b, 0, sizeof(*b));
    memcpy(b->name, name, len);
    b->consistency = CW_CAUSAL;
    b->conflict = CW_CONFLICT_LWW;
    b->max_siblings = CW_DEFAULT_MAX_SIBLINGS;
    ld->bucket_line[i] = ld->lineno;
    ld->kind = SEC_BUCKET;
    ld->index = i;
    return true;
}

static bool open_single(struct loader *ld, enum section_kind kind, unsigned *first_line,
                        const char *label)
{
    if (*first_line != 0) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "duplicate section %s, first at line %u; expected it at most once", label,
             *first_line);
        return false;
    }
    *first_line = ld->lineno;
    ld->kind = kind;
    return true;
}

/* A trimmed line starting with '[': closes the open section and opens the new one. */
static bool section_header(struct loader *ld, const char *s)
{
    if (!close_section(ld))
        return false;
    const char *close = strchr(s, ']');
    if (close == NULL) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "section header has no closing ']'; expected " SECTIONS_EXPECTED);
        return false;
    }
    const char *after = skip_space(close + 1);
    if (*after != '\0' && *after != ';' && *after != '#') {
        fail(ld, CW_ECONFIG, ld->lineno,
             "text after the section header; expected only a comment (; ...) after ']'");
        return false;
    }
    /* Up to three words inside the brackets: the kind, a name, and one too many. */
    const char *word[3];
    size_t word_len[3];
    unsigned n = 0;
    const char *p = s + 1;
    while (n < 3) {
        p = skip_space(p);
        if (p >= close)
            break;
        word[n] = p;
        while (p < close && !is_space(*p))
            p++;
        word_len[n] = (size_t)(p - word[n]);
        n++;
    }
    int shown = (int)(close - s + 1) > 80 ? 80 : (int)(close - s + 1);
    if (n == 0) {
        fail(ld, CW_ECONFIG, ld->lineno, "empty section header []; expected " SECTIONS_EXPECTED);
        return false;
    }
    bool named = false;
    enum section_kind kind = SEC_NONE;
    if (word_len[0] == 7 && memcmp(word[0], "cluster", 7) == 0) {
        kind = SEC_CLUSTER;
    } else if (word_len[0] == 7 && memcmp(word[0], "latency", 7) == 0) {
        kind = SEC_LATENCY;
    } else if (word_len[0] == 6 && memcmp(word[0], "region", 6) == 0) {
        kind = SEC_REGION;
        named = true;
    } else if (word_len[0] == 6 && memcmp(word[0], "bucket", 6) == 0) {
        kind = SEC_BUCKET;
        named = true;
    } else {
        fail(ld, CW_ECONFIG, ld->lineno, "unknown section %.*s; expected " SECTIONS_EXPECTED, shown,
             s);
        return false;
    }
    if (named && n != 2) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "section %.*s needs exactly one name; expected [%.*s NAME]", shown, s,
             (int)word_len[0], word[0]);
        return false;
    }
    if (!named && n != 1) {
        fail(ld, CW_ECONFIG, ld->lineno, "section %.*s takes no name; expected [%.*s]", shown, s,
             (int)word_len[0], word[0]);
        return false;
    }
    ld->header_line = ld->lineno;
    switch (kind) {
    case SEC_CLUSTER:
        return open_single(ld, SEC_CLUSTER, &ld->cluster_line, "[cluster]");
    case SEC_LATENCY:
        return open_single(ld, SEC_LATENCY, &ld->latency_line, "[latency]");
    case SEC_REGION:
        return open_region(ld, word[1], word_len[1]);
    case SEC_BUCKET:
        return open_bucket(ld, word[1], word_len[1]);
    case SEC_NONE:
        break;
    }
    return false;
}

/* ---- keys ------------------------------------------------------------------ */

/* Finds key in the section's key list and checks it is not set twice. Returns its
 * index, or -1 after recording the error. */
static int section_key(struct loader *ld, const char *key, const char *const *keys, size_t n)
{
    char label[CW_BUCKET_NAME_MAX + 16];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(key, keys[i]) != 0)
            continue;
        if (ld->key_line[i] != 0) {
            fail(ld, CW_ECONFIG, ld->lineno,
                 "duplicate key '%s' in %s, first set at line %u; expected each key once", key,
                 section_label(ld, label, sizeof(label)), ld->key_line[i]);
            return -1;
        }
        ld->key_line[i] = ld->lineno;
        return (int)i;
    }
    char list[1024];
    join_list(list, sizeof(list), keys, n, ", ");
    fail(ld, CW_ECONFIG, ld->lineno, "unknown key '%.80s' in %s; expected one of: %s", key,
         section_label(ld, label, sizeof(label)), list);
    return -1;
}

/* Keeps "FILE:LINE: message" among the config's warnings (a full list drops it). */
static void add_warning(struct loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_warning(struct loader *ld, const char *fmt, ...)
{
    struct cw_config *c = ld->cfg;
    if (c->n_warnings == CW_CONFIG_WARNINGS_MAX)
        return;
    char *w = c->warnings[c->n_warnings++];
    int n = snprintf(w, CW_CONFIG_WARNING_LEN, "%s:%u: ", ld->path, ld->lineno);
    if (n < 0 || (size_t)n >= CW_CONFIG_WARNING_LEN)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w + n, CW_CONFIG_WARNING_LEN - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Like section_key for [cluster], where a renamed key may also be set by its old
 * name: that sets the key with a warning, and setting both names is an error. */
static int cluster_key(struct loader *ld, const char *key)
{
    for (size_t i = 0; i < N_CLUSTER_RENAMED; i++) {
        const char *old_name = cluster_renamed[i].old_name;
        enum cluster_key k = cluster_renamed[i].key;
        const char *new_name = cluster_keys[k];
        bool is_old = strcmp(key, old_name) == 0;
        if (!is_old && strcmp(key, new_name) != 0)
            continue;
        unsigned other = is_old ? ld->key_line[k] : ld->renamed_line[i];
        if (other != 0) {
            fail(ld, CW_ECONFIG, ld->lineno,
                 "both '%s' and its deprecated name '%s' are set in [cluster] (%s at line %u); "
                 "expected only '%s'",
                 new_name, old_name, is_old ? new_name : old_name, other, new_name);
            return -1;
        }
        if (!is_old)
            break;
        if (ld->renamed_line[i] != 0) {
            fail(ld, CW_ECONFIG, ld->lineno,
                 "duplicate key '%s' in [cluster], first set at line %u; expected each key once",
                 key, ld->renamed_line[i]);
            return -1;
        }
        ld->renamed_line[i] = ld->lineno;
        add_warning(ld, "'%s' in [cluster] is deprecated: rename it '%s' (same meaning and value)",
                    old_name, new_name);
        return (int)k;
    }
    return section_key(ld, key, cluster_keys, CK_COUNT_);
}

static bool cluster_value(struct loader *ld, const char *key, const char *value)
{
    struct cw_config *c = ld->cfg;
    int k = cluster_key(ld, key);
    if (k < 0)
        return false;
    int choice;
    switch ((enum cluster_key)k) {
    case CK_DURABILITY:
        choice = parse_choice(ld, key, value, durability_choices);
        if (choice < 0)
            return false;
        snprintf(c->durability, sizeof(c->durability), "%s", durability_choices[choice]);
        return true;
    case CK_LOG_LEVEL:
        choice = parse_choice(ld, key, value, log_level_choices);
        if (choice < 0)
            return false;
        snprintf(c->log_level, sizeof(c->log_level), "%s", log_level_choices[choice]);
        return true;
    case CK_DATA_DIR:
        return parse_path(ld, key, value, c->data_dir, sizeof(c->data_dir));
    case CK_SECURITY:
        choice = parse_choice(ld, key, value, security_choices);
        if (choice < 0)
            return false;
        c->security = (enum cw_security)choice;
        return true;
    case CK_ALLOW_OPEN_NONLOCAL:
        choice = parse_choice(ld, key, value, bool_choices);
        if (choice < 0)
            return false;
        c->allow_open_nonlocal = choice == 1;
        return true;
    case CK_CLIENT_KEYS_FILE:
        return parse_path(ld, key, value, c->client_keys_file, sizeof(c->client_keys_file));
    case CK_ADMIN_KEYS_FILE:
        return parse_path(ld, key, value, c->admin_keys_file, sizeof(c->admin_keys_file));
    case CK_PREFERRED_LEADER:
        /* A region name, resolved once every region is known (resolve_strong). */
        if (!name_valid(value, strlen(value), CW_REGION_NAME_MAX)) {
            fail(ld, CW_ECONFIG, ld->lineno,
                 "preferred_leader '%.64s' is not a region name; expected the name of a "
                 "[region NAME] section",
                 value);
            return false;
        }
        snprintf(c->preferred_leader, sizeof(c->preferred_leader), "%s", value);
        ld->preferred_line = ld->lineno;
        return true;
    default:
        break;
    }
    for (size_t i = 0; i < N_CLUSTER_UINTS; i++) {
        const struct uint_key *u = &cluster_uints[i];
        if (u->key == (enum cluster_key)k)
            return parse_uint(ld, key, value, u->min, u->max,
                              (uint32_t *)(void *)((char *)c + u->offset));
    }
    for (size_t i = 0; i < N_CLUSTER_BYTES; i++) {
        const struct bytes_key *b = &cluster_bytes[i];
        if (b->key == (enum cluster_key)k)
            return parse_bytes(ld, key, value, b->min, b->max,
                               (uint64_t *)(void *)((char *)c + b->offset));
    }
    CW_ASSERT(!"every cluster key is handled");
    return false;
}

static bool region_value(struct loader *ld, const char *key, const char *value)
{
    struct cw_config *c = ld->cfg;
    struct cw_region_config *r = &c->regions[ld->index];
    int k = section_key(ld, key, region_keys, RK_COUNT_);
    if (k < 0)
        return false;
    if (k == RK_DATA_DIR)
        return parse_path(ld, key, value, r->data_dir, sizeof(r->data_dir));
    if (k == RK_SECRET_KEY_FILE)
        return parse_path(ld, key, value, r->secret_key_file, sizeof(r->secret_key_file));
    if (k == RK_PUBLIC_KEY) {
        /* Z85 of 32 bytes: 40 characters of its alphabet. (The decode itself is
         * ZeroMQ's; the alphabet and length are all it checks.) */
        bool ok = strlen(value) == CW_CONFIG_KEY_Z85_LEN;
        for (size_t i = 0; ok && i < CW_CONFIG_KEY_Z85_LEN; i++)
            ok = strchr(z85_chars, value[i]) != NULL;
        if (!ok) {
            fail(ld, CW_ECONFIG, ld->lineno,
                 "public_key '%.60s' in [region %s] does not decode; expected the 40-character "
                 "Z85 key that 'causeway keygen' printed for this region",
                 value, r->name);
            return false;
        }
        memcpy(r->public_key, value, CW_CONFIG_KEY_Z85_LEN + 1);
        return true;
    }

    char why[512];
    if (!endpoint_ok(value, why, sizeof(why))) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "bad endpoint '%.*s' for %s in [region %s]: %s; expected tcp://IP:PORT (an IPv4 "
             "address, or an IPv6 address in brackets) or ipc://PATH",
             80, value, key, r->name, why);
        return false;
    }
    /* Two sockets cannot bind one endpoint: every role of every region needs its own.
     * Earlier regions are closed, so their lines are final; this region's other
     * roles are still in key_line. */
    for (unsigned i = 0; i <= ld->index; i++) {
        for (unsigned role = 0; role < ROLES; role++) {
            if (i == ld->index && (role == (unsigned)k || ld->key_line[role] == 0))
                continue;
            const char *other = region_endpoint(&c->regions[i], role);
            if (strcmp(other, value) != 0)
                continue;
            unsigned line = i == ld->index ? ld->key_line[role] : ld->endpoint_line[i][role];
            fail(ld, CW_ECONFIG, ld->lineno,
                 "endpoint '%s' for %s in [region %s] is already the %s endpoint of region %s "
                 "(line %u); expected every endpoint to be used once",
                 value, key, r->name, role_names[role], c->regions[i].name, line);
            return false;
        }
    }
    snprintf(region_endpoint(r, (unsigned)k), CW_ENDPOINT_MAX + 1, "%s", value);
    return true;
}

static bool bucket_value(struct loader *ld, const char *key, const char *value)
{
    struct cw_bucket_policy *b = &ld->cfg->buckets[ld->index];
    int k = section_key(ld, key, bucket_keys, BK_COUNT_);
    if (k < 0)
        return false;
    int choice;
    switch ((enum bucket_key)k) {
    case BK_CONSISTENCY:
        choice = parse_choice(ld, key, value, consistency_choices);
        if (choice < 0)
            return false;
        b->consistency = (enum cw_consistency)choice;
        return true;
    case BK_CONFLICT:
        choice = parse_choice(ld, key, value, conflict_choices);
        if (choice < 0)
            return false;
        b->conflict = (enum cw_conflict)choice;
        return true;
    case BK_MAX_SIBLINGS:
        return parse_uint(ld, key, value, MAX_SIBLINGS_MIN, CW_MAX_SIBLINGS_MAX, &b->max_siblings);
    case BK_COUNT_:
        break;
    }
    return false;
}

/* Copies a region name of a latency pair, checking its syntax. */
static bool latency_name(struct loader *ld, const char *pair, const char *s, size_t len, char *out)
{
    if (!name_valid(s, len, CW_REGION_NAME_MAX)) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "bad region name '%.*s' in latency pair '%.80s'; expected region names of 1 to 32 "
             "characters from a-z, 0-9, '_' and '-'",
             (int)(len > 64 ? 64 : len), s, pair);
        return false;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

/* Whether entry e sets the delay from -> to. */
static bool latency_covers(const struct latency_entry *e, const char *from, const char *to)
{
    if (strcmp(e->from, from) == 0 && strcmp(e->to, to) == 0)
        return true;
    return !e->directed && strcmp(e->from, to) == 0 && strcmp(e->to, from) == 0;
}

/* "A B = MS" sets both directions; "A -> B = MS" sets one. Names are resolved once
 * every region is known, because [latency] may come before the regions. */
static bool latency_value(struct loader *ld, const char *key, const char *value)
{
    struct latency_entry e;
    memset(&e, 0, sizeof(e));
    e.line = ld->lineno;
    const char *a = skip_space(key), *a_end, *b, *b_end;
    const char *arrow = strstr(key, "->");
    if (arrow != NULL) {
        e.directed = true;
        a_end = arrow;
        b = skip_space(arrow + 2);
    } else {
        a_end = a;
        while (*a_end && !is_space(*a_end))
            a_end++;
        b = skip_space(a_end);
    }
    while (a_end > a && is_space(a_end[-1]))
        a_end--;
    b_end = b;
    while (*b_end && !is_space(*b_end))
        b_end++;
    if (a_end == a || b_end == b || *skip_space(b_end) != '\0') {
        fail(ld, CW_ECONFIG, ld->lineno,
             "bad latency pair '%.80s'; expected 'REGION REGION = MS' (both directions) or "
             "'REGION -> REGION = MS' (one direction)",
             key);
        return false;
    }
    if (!latency_name(ld, key, a, (size_t)(a_end - a), e.from) ||
        !latency_name(ld, key, b, (size_t)(b_end - b), e.to))
        return false;
    if (strcmp(e.from, e.to) == 0) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "latency pair '%.80s' names region %s twice; expected two different regions", key,
             e.from);
        return false;
    }
    if (!parse_uint(ld, key, value, 0, CW_LINK_DELAY_MS_MAX, &e.ms))
        return false;
    for (unsigned i = 0; i < ld->n_latency; i++) {
        const struct latency_entry *o = &ld->latency[i];
        const char *from = e.from, *to = e.to;
        bool clash = latency_covers(o, from, to);
        if (!clash && !e.directed) {
            from = e.to;
            to = e.from;
            clash = latency_covers(o, from, to);
        }
        if (clash) {
            fail(ld, CW_ECONFIG, ld->lineno,
                 "duplicate latency for %s -> %s, first set at line %u; expected each direction "
                 "once",
                 from, to, o->line);
            return false;
        }
    }
    /* Distinct directed pairs of valid names cannot exceed this while the names are
     * regions; more entries means names that cannot all exist. */
    if (ld->n_latency == LATENCY_ENTRIES_MAX) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "too many latency entries; expected at most one per ordered pair of the at most %u "
             "regions",
             CW_REGIONS_MAX);
        return false;
    }
    ld->latency[ld->n_latency++] = e;
    return true;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct loader *ld = user;
    (void)section; /* the reader tracked it, with its line */
    if (ld->rc != CW_OK)
        return 0;
    if (value[0] == '"' || value[0] == '\'') {
        fail(ld, CW_ECONFIG, ld->lineno,
             "value of '%.80s' is quoted; expected it written without quotes", name);
        return 0;
    }
    bool ok = false;
    switch (ld->kind) {
    case SEC_NONE:
        fail(ld, CW_ECONFIG, ld->lineno,
             "key '%.80s' is outside any section; expected a " SECTIONS_EXPECTED
             " header before it",
             name);
        break;
    case SEC_CLUSTER:
        ok = cluster_value(ld, name, value);
        break;
    case SEC_REGION:
        ok = region_value(ld, name, value);
        break;
    case SEC_LATENCY:
        ok = latency_value(ld, name, value);
        break;
    case SEC_BUCKET:
        ok = bucket_value(ld, name, value);
        break;
    }
    return ok ? 1 : 0;
}

/* ---- the reader -------------------------------------------------------------- */

/* Reads the next physical line into ld->line and checks it. Returns false at end
 * of file or after an error. */
static bool next_line(struct loader *ld)
{
    errno = 0;
    ssize_t n = getline(&ld->line, &ld->line_cap, ld->file);
    if (n < 0) {
        /* Not at end of file: a read error or no memory for the line. */
        if (!feof(ld->file))
            fail(ld, errno == ENOMEM ? CW_ENOMEM : CW_EIO, 0,
                 "cannot read: %s; expected a readable file", strerror(errno ? errno : EIO));
        return false;
    }
    ld->lineno++;
    ld->bytes += (size_t)n;
    ld->served = 0;
    ld->line_len = 0;
    if (ld->bytes > FILE_BYTES_MAX) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "the file is larger than %u bytes; expected a configuration file", FILE_BYTES_MAX);
        return false;
    }
    if (memchr(ld->line, '\0', (size_t)n) != NULL) {
        fail(ld, CW_ECONFIG, ld->lineno, "the line contains a NUL byte; expected text");
        return false;
    }
    char *s = ld->line;
    size_t len = (size_t)n;
    if (ld->lineno == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        len -= 3;
    }
    /* Served without indentation: inih would read an indented line as the
     * continuation of the previous value, and indentation means nothing here. */
    while (len > 0 && is_space(*s) && *s != '\n') {
        s++;
        len--;
    }
    size_t text_len = len;
    while (text_len > 0 && is_space(s[text_len - 1]))
        text_len--;
    if (text_len > LINE_CHARS_MAX) {
        fail(ld, CW_ECONFIG, ld->lineno, "the line is %zu characters long; expected at most %u",
             text_len, LINE_CHARS_MAX);
        return false;
    }
    memmove(ld->line, s, len);
    ld->line[len] = '\0';
    ld->line_len = len;

    char first = ld->line[0];
    if (text_len == 0 || first == ';' || first == '#')
        return true;
    if (first == '[')
        return section_header(ld, ld->line);
    /* inih accepts "key = value" and "key: value"; say what else is wrong here,
     * with the line, instead of letting it fail with a bare line number. */
    if (strpbrk(ld->line, "=:") == NULL) {
        fail(ld, CW_ECONFIG, ld->lineno,
             "no '=' on this line; expected 'key = value', a [section] header or a comment");
        return false;
    }
    return true;
}

/* inih's ini_reader: fgets-like, called for each line and again while a line is
 * longer than its buffer. Returning NULL ends the parse, which is how the first
 * error stops it. */
static char *reader(char *str, int num, void *stream)
{
    struct loader *ld = stream;
    if (ld->rc != CW_OK || num < 2)
        return NULL;
    if (ld->served == ld->line_len) {
        if (!next_line(ld) || ld->rc != CW_OK)
            return NULL;
    }
    size_t take = ld->line_len - ld->served;
    if (take > (size_t)num - 1)
        take = (size_t)num - 1;
    memcpy(str, ld->line + ld->served, take);
    str[take] = '\0';
    ld->served += take;
    return str;
}

/* ---- after the last line ------------------------------------------------------ */

static int region_id(const struct cw_config *c, const char *name)
{
    for (unsigned i = 0; i < c->n_regions; i++)
        if (strcmp(c->regions[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool resolve_latency(struct loader *ld)
{
    struct cw_config *c = ld->cfg;
    for (unsigned i = 0; i < ld->n_latency; i++) {
        const struct latency_entry *e = &ld->latency[i];
        const char *names[2] = {e->from, e->to};
        int ids[2] = {-1, -1};
        for (unsigned j = 0; j < 2; j++) {
            ids[j] = region_id(c, names[j]);
            if (ids[j] >= 0)
                continue;
            char list[CW_REGIONS_MAX * (CW_REGION_NAME_MAX + 2)];
            const char *regions[CW_REGIONS_MAX];
            for (unsigned r = 0; r < c->n_regions; r++)
                regions[r] = c->regions[r].name;
            join_list(list, sizeof(list), regions, c->n_regions, ", ");
            fail(ld, CW_ECONFIG, e->line, "latency names unknown region '%s'; expected one of: %s",
                 names[j], list);
            return false;
        }
        c->latency_ms[ids[0]][ids[1]] = e->ms;
        if (!e->directed)
            c->latency_ms[ids[1]][ids[0]] = e->ms;
    }
    return true;
}

static bool resolve_data_dirs(struct loader *ld)
{
    struct cw_config *c = ld->cfg;
    for (unsigned i = 0; i < c->n_regions; i++) {
        struct cw_region_config *r = &c->regions[i];
        if (ld->region_dir_line[i] != 0)
            continue;
        size_t base_len = strlen(c->data_dir), name_len = strlen(r->name);
        if (base_len + 1 + name_len >= sizeof(r->data_dir)) {
            fail(ld, CW_ECONFIG, ld->region_line[i],
                 "the data directory of [region %s] (the cluster data_dir + '/%s') is longer "
                 "than %u bytes; expected a shorter data_dir",
                 r->name, r->name, CW_CONFIG_PATH_MAX);
            return false;
        }
        memcpy(r->data_dir, c->data_dir, base_len);
        r->data_dir[base_len] = '/';
        memcpy(r->data_dir + base_len + 1, r->name, name_len + 1);
    }
    /* Two nodes must never share a Berkeley DB environment. Default directories
     * differ by region name, so a clash involves an override: report that line. */
    for (unsigned j = 1; j < c->n_regions; j++) {
        for (unsigned i = 0; i < j; i++) {
            if (strcmp(c->regions[i].data_dir, c->regions[j].data_dir) != 0)
                continue;
            unsigned line =
                ld->region_dir_line[j] ? ld->region_dir_line[j] : ld->region_dir_line[i];
            fail(ld, CW_ECONFIG, line,
                 "regions %s and %s both use the data directory '%.200s'; expected each region to "
                 "have its own",
                 c->regions[i].name, c->regions[j].name, c->regions[j].data_dir);
            return false;
        }
    }
    return true;
}

/* Strong buckets: the preferred leader names a region, and the election timeout
 * is well above the largest round trip (a leader's heartbeat must arrive well
 * within it, or followers depose healthy leaders). */
static bool resolve_strong(struct loader *ld)
{
    struct cw_config *c = ld->cfg;
    c->preferred_leader_id = -1;
    if (c->preferred_leader[0] != '\0') {
        c->preferred_leader_id = region_id(c, c->preferred_leader);
        if (c->preferred_leader_id < 0) {
            fail(ld, CW_ECONFIG, ld->preferred_line,
                 "preferred_leader names unknown region '%s'; expected a [region NAME] of this "
                 "file",
                 c->preferred_leader);
            return false;
        }
    }
    uint32_t rtt = 0;
    unsigned ra = 0, rb = 0;
    for (unsigned a = 0; a < c->n_regions; a++)
        for (unsigned b = a + 1; b < c->n_regions; b++)
            if (c->latency_ms[a][b] + c->latency_ms[b][a] > rtt) {
                rtt = c->latency_ms[a][b] + c->latency_ms[b][a];
                ra = a;
                rb = b;
            }
    if (c->n_regions > 1 && (uint64_t)c->election_min_ms < 2ull * (rtt + 2 * c->jitter_ms)) {
        fail(ld, CW_ECONFIG, ld->election_line ? ld->election_line : 1,
             "election_min_ms (%u) must be at least twice the largest round trip (%u ms, %s <-> "
             "%s, plus jitter); expected election_min_ms of %u or more",
             c->election_min_ms, rtt, c->regions[ra].name, c->regions[rb].name,
             2 * (rtt + 2 * c->jitter_ms));
        return false;
    }
    return true;
}

static bool finish(struct loader *ld)
{
    struct cw_config *c = ld->cfg;
    unsigned last = ld->lineno ? ld->lineno : 1;
    if (!close_section(ld))
        return false;
    if (c->n_regions == 0) {
        fail(ld, CW_ECONFIG, last,
             "no [region NAME] section at end of file; expected at least one region");
        return false;
    }
    if (c->n_buckets == 0) {
        fail(ld, CW_ECONFIG, last,
             "no [bucket NAME] section at end of file; expected at least one bucket");
        return false;
    }
    return resolve_latency(ld) && resolve_data_dirs(ld) && resolve_strong(ld);
}

/* The cluster data_dir when the file sets none: run/<file name without .ini>. */
static void default_data_dir(struct cw_config *c, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".ini") == 0)
        len -= 4;
    if (len == 0)
        snprintf(c->data_dir, sizeof(c->data_dir), "run");
    else
        snprintf(c->data_dir, sizeof(c->data_dir), "run/%.*s", (int)len, base);
}

static void set_defaults(struct cw_config *c, const char *path)
{
    snprintf(c->durability, sizeof(c->durability), "write_nosync");
    snprintf(c->log_level, sizeof(c->log_level), "info");
    for (size_t i = 0; i < N_CLUSTER_UINTS; i++)
        *(uint32_t *)(void *)((char *)c + cluster_uints[i].offset) = cluster_uints[i].def;
    for (size_t i = 0; i < N_CLUSTER_BYTES; i++)
        *(uint64_t *)(void *)((char *)c + cluster_bytes[i].offset) = cluster_bytes[i].def;
    default_data_dir(c, path);
}

/* ---- public ------------------------------------------------------------------- */

/* Runs inih over the open file with the reader and handler above, then the checks
 * that need the whole file. The outcome is in ld->rc and ld->msg. */
static void parse_file(struct loader *ld)
{
    /* Debian's libinih exposes its build settings as globals: a heap line buffer
     * that grows lets a line of up to LINE_CHARS_MAX reach the handler whole
     * (the default stack buffer would cut it at 200 bytes and drop the rest). */
    bool saved_use_stack = ini_use_stack;
    bool saved_allow_realloc = ini_allow_realloc;
    int saved_max_line = ini_max_line;
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = LINE_CHARS_MAX + 16;
    int parsed = ini_parse_stream(reader, ld, handler, ld);
    ini_use_stack = saved_use_stack;
    ini_allow_realloc = saved_allow_realloc;
    ini_max_line = saved_max_line;

    if (ld->rc != CW_OK)
        return;
    if (parsed == -2) {
        fail(ld, CW_ENOMEM, 0, "out of memory while parsing; expected enough memory");
        return;
    }
    if (parsed != 0) {
        /* A syntax inih rejects that the reader did not foresee. */
        fail(ld, CW_ECONFIG, parsed > 0 ? (unsigned)parsed : ld->lineno,
             "cannot parse this line; expected 'key = value', a [section] header or a comment");
        return;
    }
    finish(ld);
}

int cw_config_load(const char *path, struct cw_config *out, char *err, size_t err_len)
{
    CW_ASSERT(path != NULL);
    CW_ASSERT(out != NULL);
    CW_ASSERT(err != NULL || err_len == 0);
    memset(out, 0, sizeof(*out));
    if (err_len)
        err[0] = '\0';

    /* The loader holds every line number the messages need: too big for a stack. */
    struct loader *ld = calloc(1, sizeof(*ld));
    if (ld == NULL) {
        if (err_len)
            snprintf(err, err_len, "%s: out of memory while loading the configuration", path);
        return CW_ENOMEM;
    }
    ld->path = path;
    ld->cfg = out;
    ld->rc = CW_OK;

    size_t path_len = strlen(path);
    if (path_len > CW_CONFIG_PATH_MAX) {
        fail(ld, CW_ECONFIG, 0, "the path is longer than %u bytes; expected a shorter path",
             CW_CONFIG_PATH_MAX);
        goto free_loader;
    }
    memcpy(out->path, path, path_len + 1);
    set_defaults(out, path);

    ld->file = fopen(path, "r");
    if (ld->file == NULL) {
        fail(ld, CW_EIO, 0, "cannot open: %s; expected a readable configuration file",
             strerror(errno));
        goto free_loader;
    }
    parse_file(ld);
    fclose(ld->file);

free_loader:
    free(ld->line); /* getline's buffer */
    int rc = ld->rc;
    if (rc != CW_OK) {
        if (err_len)
            snprintf(err, err_len, "%s", ld->msg);
        /* Buckets read before the error are released; the caller gets nothing. */
        cw_config_free(out);
    }
    free(ld);
    return rc;
}

void cw_config_free(struct cw_config *c)
{
    if (c == NULL)
        return;
    free(c->buckets);
    memset(c, 0, sizeof(*c));
}

int cw_config_check_security(const struct cw_config *c, char *err, size_t err_len)
{
    if (c->security != CW_SECURITY_CURVE)
        return CW_OK;
    for (unsigned i = 0; i < c->n_regions; i++) {
        const struct cw_region_config *r = &c->regions[i];
        if (r->public_key[0] == '\0') {
            if (err_len)
                snprintf(err, err_len,
                         "%s: [region %s] has no public_key, and security = curve needs one for "
                         "every region; make its key pair with 'causeway keygen --out "
                         "FILE' and set public_key to the key it prints",
                         c->path, r->name);
            return CW_ECONFIG;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(c->regions[j].public_key, r->public_key) == 0) {
                if (err_len)
                    snprintf(err, err_len,
                             "%s: regions %s and %s have the same public_key; give each region "
                             "its own key pair (causeway keygen)",
                             c->path, c->regions[j].name, r->name);
                return CW_ECONFIG;
            }
        }
    }
    return CW_OK;
}

const struct cw_region_config *cw_config_region(const struct cw_config *c, const char *name)
{
    int id = region_id(c, name);
    return id < 0 ? NULL : &c->regions[id];
}

const struct cw_bucket_policy *cw_config_bucket(const struct cw_config *c, const char *name)
{
    for (unsigned i = 0; i < c->n_buckets; i++)
        if (strcmp(c->buckets[i].name, name) == 0)
            return &c->buckets[i];
    return NULL;
}

void cw_config_replica(const struct cw_config *c, unsigned id, struct cw_replica_config *out)
{
    CW_ASSERT(id < c->n_regions);
    memset(out, 0, sizeof(*out));
    out->region = id;
    out->n_regions = c->n_regions;
    out->buckets = c->buckets;
    out->n_buckets = c->n_buckets;
    out->max_value_bytes = c->max_value_bytes;
    out->dep_buffer_max = c->dep_buffer_max;
    out->outbox_max = c->outbox_max;
    out->batch_records_max = c->batch_records_max;
    out->window_records = c->window_records;
    out->waiting_max = c->waiting_max;
    out->heartbeat_us = (uint64_t)c->heartbeat_ms * 1000;
    out->nack_retry_us = (uint64_t)c->resend_ms * 1000;
    out->wait_us = (uint64_t)c->wait_ms * 1000;
    out->outbox_bytes_max = c->outbox_bytes_max;
    out->dep_buffer_bytes_max = c->dep_buffer_bytes_max;
    out->inflight_bytes_max = c->inflight_bytes_max;
    out->key_cache_bytes_max = c->key_cache_bytes_max;
    out->outbox_cache_bytes_max = c->outbox_cache_bytes_max;
    out->force_eventual = false;
}

void cw_config_strong(const struct cw_config *c, unsigned id, struct cw_strong_config *out)
{
    CW_ASSERT(id < c->n_regions);
    memset(out, 0, sizeof(*out));
    out->raft.id = id;
    out->raft.n = c->n_regions;
    out->raft.election_min_us = (uint64_t)c->election_min_ms * 1000;
    uint64_t max_ms = c->election_max_ms ? c->election_max_ms : 2ull * c->election_min_ms;
    uint64_t hb_ms = c->raft_heartbeat_ms ? c->raft_heartbeat_ms : c->election_min_ms / 10;
    out->raft.election_max_us = max_ms * 1000;
    out->raft.heartbeat_us = (hb_ms ? hb_ms : 1) * 1000;
    out->raft.suspect_after_us = (uint64_t)c->suspect_after_ms * 1000;
    out->raft.preferred =
        c->preferred_leader_id >= 0 ? (unsigned)c->preferred_leader_id : CW_RAFT_NONE;
    out->timeout_us = (uint64_t)c->strong_timeout_ms * 1000;
    out->pending_max = c->strong_pending_max;
    out->bytes_max = c->strong_bytes_max;
    out->snapshot_entries = c->snapshot_entries;
    out->max_value_bytes = c->max_value_bytes;
}
