/*
 * wire.h - encoding and decoding of everything causeway sends over the network:
 * client requests and responses (client and admin endpoints) and the
 * replication frames between regions (peer endpoint). The byte format is
 * src/wire/causeway.proto, specified in docs/protocol.md; the generated
 * protobuf-c types stay inside wire.c, callers see only core structs and the
 * request/response structs below.
 *
 * Every decoder treats its input as hostile: it checks the frame length, then
 * the protocol version, then every count and length against the limits before
 * it allocates for them, and returns CW_EDECODE (malformed), CW_ETOOBIG (over a
 * bound) or CW_EVERSION (another protocol version). It never reads outside its
 * input and never leaks, whatever the bytes.
 *
 * Encoders refuse, with CW_ETOOBIG, to produce a peer frame or a request larger
 * than CW_WIRE_FRAME_BYTES_MAX, so that a receiver with the default limits
 * accepts every one they produce; and a response larger than
 * CW_WIRE_RESPONSE_BYTES_MAX (a read returns every sibling, so a response may be
 * much larger than a request: a client decodes responses with frame_bytes_max
 * raised to CW_WIRE_RESPONSE_BYTES_MAX).
 *
 * Ownership:
 *   - Encoders allocate *out with malloc and transfer it to the caller on
 *     success (free it with free()); on failure *out is NULL and *len is 0.
 *     Their input is borrowed for the duration of the call.
 *   - Decoders fill a caller-owned struct. On success the caller owns what it
 *     points to and releases it with cw_msg_free / cw_wire_request_free /
 *     cw_wire_response_free. On failure the struct owns nothing (freeing it
 *     anyway is harmless).
 */
#ifndef CW_WIRE_WIRE_H
#define CW_WIRE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "core/replica.h"
#include "core/vclock.h"
#include "core/version.h"

/* The protocol version every top-level message carries. */
#define CW_WIRE_VERSION 1

/* Protocol bounds, and the default limits of a receiver; the ones other layers
 * share live in core/limits.h. */
#define CW_WIRE_FRAME_BYTES_MAX CW_FRAME_BYTES_MAX         /* one encoded message */
#define CW_WIRE_BATCH_BYTES_MAX (64u << 20)                /* one decompressed RecordBatch */
#define CW_WIRE_RECORDS_MAX CW_FRAME_RECORDS_MAX           /* records in one RECORDS frame */
#define CW_WIRE_VALUE_BYTES_MAX CW_DEFAULT_VALUE_BYTES_MAX /* one value (the default) */
/* Fixed bounds (not configurable). */
#define CW_WIRE_RESPONSE_BYTES_MAX (256u << 20) /* one encoded response */
#define CW_WIRE_VERSIONS_MAX 16384u /* versions in one GET response (CW_SIBLINGS_HARD_MAX) */
#define CW_WIRE_MESSAGE_MAX 255u    /* bytes of a response's message */
#define CW_WIRE_NAME_MAX 63u        /* bytes of a region name in a LINK request */
/* A record's key is "bucket/key". */
#define CW_WIRE_FULL_KEY_MAX CW_FULL_KEY_MAX

struct cw_wire_limits {
    size_t frame_bytes_max;   /* whole encoded message, default 8 MiB */
    size_t batch_bytes_max;   /* decompressed batch, default 64 MiB */
    uint32_t records_max;     /* per batch, default 4096 */
    uint32_t value_bytes_max; /* default 1 MiB */
};

/* Fills l with the defaults above. */
void cw_wire_limits_default(struct cw_wire_limits *l);

/* ------------------------------------------------------------ peer frames */

/*
 * Encodes m (any type) as one frame. A RECORDS message whose records do not fit
 * in one frame fails with CW_ETOOBIG; use cw_wire_encode_peer_part to split it.
 * Returns CW_OK, CW_EINVAL (bad type, region id >= CW_REGIONS_MAX, RECORDS with
 * no records, a record key longer than CW_WIRE_FULL_KEY_MAX; RAFT without a
 * Raft message, with one whose from/to differ from m's or that breaks the wire
 * bounds of the decoder below, or with any replication field set), CW_ETOOBIG
 * or CW_ENOMEM.
 */
int cw_wire_encode_peer(const struct cw_msg *m, uint8_t **out, size_t *len);

/*
 * Encodes m with, for RECORDS, the records first..*next-1: as many as fit in one
 * frame within the protocol bounds (at least one; CW_ETOOBIG when record
 * `first` alone does not fit). For HEARTBEAT and NACK first must be 0 and *next
 * is set to 0. A sender splits a large RECORDS message by calling this until
 * *next == m->n_records; every part carries the same acknowledgement, and the
 * parts arrive in order on a FIFO link, so the receiver sees the same chain.
 */
int cw_wire_encode_peer_part(const struct cw_msg *m, uint32_t first, uint32_t *next, uint8_t **out,
                             size_t *len);

/*
 * The byte accounting of RECORDS frames (docs/protocol.md, "Replication bytes"):
 * what a sender encoded, summed over frames. batch_bytes is the RecordBatch as
 * serialized before LZ4 (every record's framing, stamp, origin, dependency
 * vector, flags, key and value); metadata_bytes is batch_bytes - key_bytes -
 * value_bytes, everything in the records but their keys and values;
 * batch_lz4_bytes is the same batches after LZ4 (PeerFrame.batch), and
 * frame_bytes the whole frames (the envelope with its vectors and
 * acknowledgements included).
 */
struct cw_wire_repl_stats {
    uint64_t records, frames;
    uint64_t metadata_bytes, key_bytes, value_bytes;
    uint64_t batch_bytes, batch_lz4_bytes, frame_bytes;
};

/*
 * cw_wire_encode_peer_part, and on success, for a RECORDS frame, adds the
 * frame's figures to *acc (NULL: not counted; other frame types add nothing).
 */
int cw_wire_encode_peer_counted(const struct cw_msg *m, uint32_t first, uint32_t *next,
                                uint8_t **out, size_t *len, struct cw_wire_repl_stats *acc);

/*
 * Decodes one frame. On success the caller frees out with cw_msg_free; on
 * failure out is zeroed. Checks the bounds in lim (NULL: the defaults), region
 * ids, vector widths, key and value lengths and the LZ4 frame (declared and
 * actual size). It does not check the replication semantics (chains, key
 * syntax, consistency values): cw_replica_recv does.
 *
 * A RAFT frame decodes to out->type CW_MSG_RAFT with out->raft allocated
 * (owned by out; its from/to are the frame's). The decoder checks the bounds
 * only: message type 1..13, known flags and entry types, at most
 * CW_RAFT_MSG_ENTRIES_MAX entries of at most CW_RAFT_ENTRY_BYTES_MAX bytes, a
 * snapshot of at most CW_RAFT_SNAP_BYTES_MAX bytes (CW_ETOOBIG over them), and
 * no replication field set. The semantic checks need the cluster's size:
 * the node runs cw_raft_msg_check before the Raft core sees the message.
 */
int cw_wire_decode_peer(const uint8_t *in, size_t len, const struct cw_wire_limits *lim,
                        struct cw_msg *out);

/* ---------------------------------------------------- client and admin */

enum cw_wire_op {
    CW_OP_NONE = 0, /* only in an error response to a request whose op was unreadable */
    CW_OP_PUT = 1,
    CW_OP_GET = 2,
    CW_OP_DEL = 3,
    CW_OP_STATUS = 4,
    CW_OP_LINK = 5,
};
enum cw_link_action {
    CW_LINK_NONE = 0, /* not a LINK request (a LINK request without an action is malformed) */
    CW_LINK_CUT = 1,
    CW_LINK_HEAL = 2,
    CW_LINK_DELAY = 3,
};

/*
 * A request. Which fields an op uses is listed in causeway.proto; the others
 * are zero. The decoder checks lengths only (bucket <= 64 bytes without NUL,
 * key <= CW_KEY_BYTES_MAX, value <= value_bytes_max, names <= 63 bytes): the
 * server validates the rest (bucket charset, empty keys) so that it can answer
 * with CW_EBUCKET or CW_EKEY.
 *
 * Decoded requests own key and value (malloc'd; NULL when the length is 0);
 * free them with cw_wire_request_free. For encoding they are borrowed.
 */
struct cw_wire_request {
    enum cw_wire_op op;
    uint64_t req_id;
    char bucket[CW_BUCKET_NAME_MAX + 1]; /* NUL-terminated */
    uint8_t *key;
    uint32_t key_len;
    uint8_t *value;
    uint32_t value_len;
    struct cw_vclock context;
    struct cw_vclock kctx;
    bool has_kctx;
    char link_from[CW_WIRE_NAME_MAX + 1], link_to[CW_WIRE_NAME_MAX + 1]; /* NUL-terminated */
    enum cw_link_action link_action;
    uint32_t delay_ms;
    /* PUT, DEL: the write's condition (enum cw_put_cond, core/replica.h) and,
     * for CW_COND_VERSION, the expected version. The wire carries any
     * condition; the node refuses one on a causal or eventual bucket. The
     * decoder rejects a condition it does not know (CW_EDECODE); cond_version
     * is kept only with CW_COND_VERSION (else 0). */
    uint8_t cond;
    uint64_t cond_version;
};

/* A latency distribution (causeway.proto: Latency), in microseconds. */
struct cw_wire_latency {
    uint64_t count, p50_us, p90_us, p99_us, max_us;
};

/* One other region as a node sees it (causeway.proto: PeerStatus). */
struct cw_wire_peer_status {
    uint8_t region; /* < n_regions, never the node's own id */
    bool link_cut;
    uint32_t delay_ms;
    uint64_t queued, frames_sent, frames_dropped, frames_received, bytes_sent;
    uint64_t outbox_pending;
    struct cw_wire_latency visibility;
    uint64_t inflight_bytes;
};

/* The durability values of causeway.proto; others decode as they came. */
enum cw_wire_durability {
    CW_WIRE_DURABILITY_UNKNOWN = 0,
    CW_WIRE_DURABILITY_SYNC = 1,
    CW_WIRE_DURABILITY_WRITE_NOSYNC = 2,
    CW_WIRE_DURABILITY_NOSYNC = 3,
};

#define CW_WIRE_REGION_NAME_MAX 32u /* bytes of a region name in STATUS */

/* One other region as the node's Raft failure detector sees it
 * (causeway.proto: RaftPeerStatus). */
struct cw_wire_raft_peer {
    uint8_t region; /* < n_regions, never the node's own id */
    bool heard;     /* last_heard_ms is meaningful */
    bool suspected;
    uint64_t last_heard_ms; /* milliseconds since the node last heard from it */
};

/* The strong buckets' Raft group (causeway.proto: StrongStatus). role is kept
 * as sent (enum cw_raft_role values; a later release may add some). */
struct cw_wire_strong_status {
    uint32_t role;
    uint64_t term;
    bool has_leader, has_vote;
    uint8_t leader, vote; /* < n_regions when has_leader / has_vote, else 0 */
    uint64_t commit, applied;
    uint64_t log_first, log_last;
    uint64_t snap_index, snap_term;
    uint32_t n_peers;
    struct cw_wire_raft_peer peers[CW_REGIONS_MAX - 1];
    struct {
        uint64_t elections, prevotes, leader_changes, stepdowns_quorum, proposals_forwarded;
        uint64_t read_index_rounds, snapshots_sent, snapshots_received, transfers;
        uint64_t msgs_refused, disruptions;
    } raft;
    struct {
        uint64_t puts, gets, conflicts, timeouts, no_quorum, full, keys, bytes;
    } counters;
};

/*
 * A node's status (causeway.proto: Status, docs/protocol.md). The decoder
 * checks: 1..CW_REGIONS_MAX region names of 1..CW_WIRE_REGION_NAME_MAX bytes
 * without NUL, region < n_regions, at most n_regions - 1 peers with distinct
 * ids < n_regions other than region, and vectors of at most n_regions entries.
 * durability is kept as sent (a later release may add values).
 */
struct cw_wire_status {
    uint8_t region;
    uint8_t n_regions;
    char regions[CW_REGIONS_MAX][CW_WIRE_REGION_NAME_MAX + 1]; /* NUL-terminated */
    uint32_t durability;                                       /* enum cw_wire_durability */
    uint64_t uptime_us, now_us;
    uint64_t clock;
    struct cw_vclock applied, stable;
    uint64_t buffered, outbox_total, waiting, keys;
    uint64_t outbox_bytes, buffered_bytes, key_cache_bytes, outbox_body_bytes;
    uint32_t n_peers;
    struct cw_wire_peer_status peers[CW_REGIONS_MAX - 1];
    struct {
        uint64_t puts, gets, deletes, remote_applied, remote_duplicates, remote_gaps;
        uint64_t nacks_sent, nacks_received, resent_records, requests_waited, requests_timed_out;
        uint64_t buffer_full_drops, tombstones_collected, stamps_refused, errors;
        uint64_t keys_loaded, keys_evicted, bodies_loaded, bodies_evicted, store_read_errors;
    } replica;
    struct {
        uint64_t requests, bad_requests, bad_peer_frames, replies_dropped, commits;
        uint64_t commit_records;
        uint64_t auth_refused, handshakes_failed, peer_identity_refused, admin_refused;
        uint64_t connections_refused; /* client connections refused at the cap */
        uint64_t checkpoints_failed, checkpoints_failing;
    } node;
    /* Client connections open now, and the cap in force. */
    uint64_t client_connections, client_connections_max;
    /* Strong buckets: has_strong when the node has any (then the same rules as
     * for peers apply to strong.peers, and leader and vote are < n_regions);
     * strong is all zero otherwise. */
    bool has_strong;
    struct cw_wire_strong_status strong;
    /* The RECORDS frames the node encoded since it started (all zero from a
     * node of an earlier release). */
    struct cw_wire_repl_stats replication;
};

/*
 * A response. err is CW_OK or an enum cw_err; message is a NUL-terminated
 * detail (may be empty). PUT/DEL: origin and ts are the write's dot. GET:
 * versions holds every version, tombstones included, in (ts, origin) order.
 * STATUS: status is the node's status (encoding: required for a successful
 * STATUS response, CW_EINVAL without it; a decoded successful STATUS response
 * always has one, else the decode fails with CW_EDECODE).
 *
 * Decoded responses own versions (and each version's value) and status; free
 * them with cw_wire_response_free. For encoding they are borrowed.
 */
struct cw_wire_response {
    enum cw_wire_op op;
    uint64_t req_id;
    int err;
    char message[CW_WIRE_MESSAGE_MAX + 1];
    /* PUT, DEL */
    uint8_t origin;
    uint64_t ts;
    bool kctx_valid;
    /* PUT, DEL, GET */
    uint8_t conflict; /* enum cw_conflict */
    struct cw_vclock kctx;
    struct cw_vclock seen;
    /* GET */
    uint32_t n_versions;
    struct cw_version *versions;
    /* STATUS */
    struct cw_wire_status *status;
    /* PUT, DEL, GET, and with err CW_ECONFLICT: the key's version in a strong
     * bucket (0: absent, or not a strong bucket). */
    uint64_t key_version;
};

/*
 * Encoders: CW_OK, CW_EINVAL (unknown op or link action, bucket or name not
 * NUL-terminated within its array, NULL data with a non-zero length, version
 * origin >= CW_REGIONS_MAX, negative err, a successful STATUS response
 * without a status or with one that breaks the rules of struct cw_wire_status),
 * CW_EKEY (key longer than CW_KEY_BYTES_MAX), CW_ETOOBIG (over
 * CW_WIRE_FRAME_BYTES_MAX for a request;
 * over CW_WIRE_RESPONSE_BYTES_MAX or CW_WIRE_VERSIONS_MAX versions for a
 * response) or CW_ENOMEM.
 */
int cw_wire_encode_request(const struct cw_wire_request *r, uint8_t **out, size_t *len);
int cw_wire_encode_response(const struct cw_wire_response *r, uint8_t **out, size_t *len);

/*
 * Decoders (lim NULL: the defaults; for responses pass frame_bytes_max =
 * CW_WIRE_RESPONSE_BYTES_MAX to accept every response a server may send).
 * On failure the struct owns nothing, but
 * req_id and op are set when they could be read from the input (else 0), so a
 * server can still address its error reply to the request.
 */
int cw_wire_decode_request(const uint8_t *in, size_t len, const struct cw_wire_limits *lim,
                           struct cw_wire_request *out);
int cw_wire_decode_response(const uint8_t *in, size_t len, const struct cw_wire_limits *lim,
                            struct cw_wire_response *out);

/* Free what a decoded struct owns and zero it. NULL is a no-op. */
void cw_wire_request_free(struct cw_wire_request *r);
void cw_wire_response_free(struct cw_wire_response *r);

#endif
