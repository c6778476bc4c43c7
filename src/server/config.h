/*
 * config.h - the cluster configuration: regions, their endpoints, the emulated WAN
 * latencies, the bucket policies and the node limits, read from one INI file.
 *
 * Every node of a cluster and the CLI read the same file (the .ini files in
 * geo-configs/); the format is documented key by key in docs/configuration.md.
 * Parsing uses libinih.
 * Loading is strict: an unknown section or key, a duplicate, a malformed or
 * out-of-range value, a missing required key or a clash between regions is an
 * error, reported once as "FILE:LINE: what is wrong; what is expected", so a typo
 * never silently becomes a default. Renamed keys are still accepted under their
 * old names, with a warning in cw_config.warnings; setting both names is an error.
 * Defaults and the protocol-wide bounds come from core/limits.h.
 *
 * Ownership: a loaded cw_config owns its bucket array; cw_config_free releases it.
 * Everything returned by the lookups is borrowed from the cw_config and valid until
 * cw_config_free.
 *
 * Threads: cw_config_load temporarily changes libinih's process-wide settings (line
 * buffer size) and restores them before returning, so it must not run concurrently
 * with another libinih user in the same process. Nodes load their config once, at
 * start-up, before any thread exists.
 */
#ifndef CW_SERVER_CONFIG_H
#define CW_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h" /* CW_REGIONS_MAX, CW_REGION_NAME_MAX, CW_ENDPOINT_MAX */
#include "core/replica.h"
#include "core/strong.h"
#include "core/vclock.h"

#define CW_CONFIG_PATH_MAX 4095 /* file and directory paths */
#define CW_CONFIG_BUCKETS_MAX 256
#define CW_CONFIG_KEY_Z85_LEN 40 /* a CURVE public key in Z85 */
/* Warnings a load may report (one per deprecated key at most), and the length
 * of one, "FILE:LINE: ..." with its NUL. */
#define CW_CONFIG_WARNINGS_MAX 4
#define CW_CONFIG_WARNING_LEN (CW_CONFIG_PATH_MAX + 256)

struct cw_region_config {
    char name[CW_REGION_NAME_MAX + 1];
    unsigned id;                      /* 0..n_regions-1, in the order of the [region] sections */
    char client[CW_ENDPOINT_MAX + 1]; /* clients connect here */
    char peer[CW_ENDPOINT_MAX + 1];   /* other regions connect here */
    char admin[CW_ENDPOINT_MAX + 1];  /* the admin interface (link delays, status) */
    char data_dir[CW_CONFIG_PATH_MAX + 1]; /* resolved: the override or <cluster data_dir>/<name> */
    /* CURVE (security = curve): the region's public key in Z85 ("" when unset; a
     * set key is known to decode), and the file holding its key pair ("" when
     * unset; read only by that region's node, at start). */
    char public_key[CW_CONFIG_KEY_Z85_LEN + 1];
    char secret_key_file[CW_CONFIG_PATH_MAX + 1];
};

/* [cluster] security. */
enum cw_security { CW_SECURITY_NONE = 0, CW_SECURITY_CURVE = 1 };

struct cw_config {
    char path[CW_CONFIG_PATH_MAX + 1];                   /* the file it was loaded from, as given */
    unsigned n_regions;                                  /* 1..CW_REGIONS_MAX */
    struct cw_region_config regions[CW_REGIONS_MAX];     /* indexed by id */
    uint32_t latency_ms[CW_REGIONS_MAX][CW_REGIONS_MAX]; /* one-way, [from][to]; 0 if unset */
    uint32_t jitter_ms;
    unsigned n_buckets;               /* 1..CW_CONFIG_BUCKETS_MAX */
    struct cw_bucket_policy *buckets; /* owned, in file order */
    char durability[16];              /* "sync", "write_nosync" or "nosync"; the store maps it */
    char data_dir[CW_CONFIG_PATH_MAX + 1]; /* the cluster's base directory */
    uint32_t max_value_bytes, heartbeat_ms, resend_ms, dep_buffer_max, outbox_max,
        batch_records_max;
    uint32_t window_records; /* records in flight per peer before an acknowledgement */
    /* Requests of causal buckets, reads and writes, waiting until the region has
     * applied their session's context: how many at once, and for how long. */
    uint32_t waiting_max, wait_ms;
    /* The replica's byte bounds (struct cw_replica_config has their meaning):
     * the outbox, the dependency buffer, what is in flight to one peer, and the
     * store-of-record caches of key states and outbox bodies. */
    uint64_t outbox_bytes_max, dep_buffer_bytes_max, inflight_bytes_max;
    uint64_t key_cache_bytes_max, outbox_cache_bytes_max;
    /* Berkeley DB's own page cache, in bytes: the store passes it to
     * DB_ENV->set_cachesize when it opens the environment. */
    uint64_t store_cache_bytes;
    /* Log written between two store checkpoints, in bytes (the store rounds it
     * to KiB): bounds the log a start after a crash replays. */
    uint64_t checkpoint_bytes;
    char log_level[8]; /* "debug", "info", "warn" or "error" */
    /* Strong buckets (docs/configuration.md): Raft's election timeout range and
     * heartbeat, the failure detector's threshold (0: election_min_ms), log
     * compaction, how long a strong request may take, how many may be in
     * flight, the strong state's bytes, and the region that should lead. */
    uint32_t election_min_ms, election_max_ms, raft_heartbeat_ms, suspect_after_ms;
    uint32_t snapshot_entries, strong_timeout_ms, strong_pending_max;
    uint64_t strong_bytes_max;
    char preferred_leader[CW_REGION_NAME_MAX + 1]; /* empty: none */
    int preferred_leader_id;                       /* -1: none */
    /* Security (docs/operations.md, "Security"): CURVE on every endpoint or
     * none; with none, whether the node may bind other than loopback addresses;
     * the key lists of the clients and admins allowed in ("" when unset). The
     * lists are read by the node at start, not here. */
    enum cw_security security;
    bool allow_open_nonlocal;
    char client_keys_file[CW_CONFIG_PATH_MAX + 1];
    char admin_keys_file[CW_CONFIG_PATH_MAX + 1];
    /* Client connections a node keeps open at once (docs/operations.md,
     * "Connection limits"); 0: derived by the node from its open-file limit.
     * The node lowers a larger value to what its limit allows. */
    uint32_t client_connections_max;
    /* What was accepted but should be changed (a deprecated key name), one line
     * each, "FILE:LINE: ...", NUL-terminated; the caller decides where they go
     * (causewayd logs them). */
    unsigned n_warnings;
    char warnings[CW_CONFIG_WARNINGS_MAX][CW_CONFIG_WARNING_LEN];
};

/*
 * Loads and validates the file at path into *out. Returns CW_OK, CW_ECONFIG when
 * the file is invalid, CW_EIO when it cannot be read, or CW_ENOMEM. On error, err
 * holds one NUL-terminated line, "FILE:LINE: what is wrong; expected ..." (an I/O
 * error has no line), truncated to err_len, and *out is zeroed and owns nothing
 * (freeing it is harmless). On success *out owns its buckets: release them with
 * cw_config_free. err may be NULL when err_len is 0.
 */
int cw_config_load(const char *path, struct cw_config *out, char *err, size_t err_len);

/* Releases what c owns and zeroes it; c stays usable for another load. NULL is fine. */
void cw_config_free(struct cw_config *c);

/* The region called name, or NULL if there is none. Borrowed from c. */
const struct cw_region_config *cw_config_region(const struct cw_config *c, const char *name);

/* The policy of the bucket called name, or NULL if there is none. Borrowed from c. */
const struct cw_bucket_policy *cw_config_bucket(const struct cw_config *c, const char *name);

/*
 * Fills *out (every field, zeroing the rest) for the replica of region id, which
 * MUST be < c->n_regions. out->buckets is borrowed from c: keep c alive until
 * cw_replica_create has copied it.
 */
void cw_config_replica(const struct cw_config *c, unsigned id, struct cw_replica_config *out);

/*
 * What security = curve needs from the file itself: every region has a
 * public_key, and no two regions share one. CW_OK when security is none or the
 * file is complete; otherwise CW_ECONFIG with one line in err naming the file,
 * the region and what to do. (The key files are read by the node at start.)
 */
int cw_config_check_security(const struct cw_config *c, char *err, size_t err_len);

/* Fills *out (every field, zeroing the rest) for the strong part of region id
 * (< c->n_regions). */
void cw_config_strong(const struct cw_config *c, unsigned id, struct cw_strong_config *out);

#endif
