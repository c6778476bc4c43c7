/*
 * limits.h - the protocol-wide limits and defaults, in one place.
 *
 * Every layer (core, wire, store, server config, client, CLI) takes its bounds
 * from here, so a limit is defined once and a component never reaches into
 * another for a constant. Only preprocessor constants: no code, no includes.
 */
#ifndef CW_CORE_LIMITS_H
#define CW_CORE_LIMITS_H

/* Regions in one cluster; vector clocks are this wide. */
#define CW_REGIONS_MAX 16
/* Region names are [a-z0-9_-]{1,32}. */
#define CW_REGION_NAME_MAX 32
/* A node's endpoint, "tcp://host:port" or "ipc://path", without the NUL. */
#define CW_ENDPOINT_MAX 255
/* Bucket names are [a-z0-9_-]{1,64}; keys are 1..1024 bytes. */
#define CW_BUCKET_NAME_MAX 64
#define CW_KEY_BYTES_MAX 1024
/* "bucket/key" as records and the store carry it. */
#define CW_FULL_KEY_MAX (CW_BUCKET_NAME_MAX + 1 + CW_KEY_BYTES_MAX)

/* Versions per decoded key state. Local writes keep a key within max_siblings
 * (config: at most CW_MAX_SIBLINGS_MAX); remote writes are never refused, so a
 * converged key can hold up to max_siblings versions per region. */
#define CW_MAX_SIBLINGS_MAX 1024
#define CW_SIBLINGS_HARD_MAX (CW_REGIONS_MAX * CW_MAX_SIBLINGS_MAX)
/* The largest value any decoder accepts, whatever max_value_bytes says. */
#define CW_VALUE_HARD_MAX (64u << 20)

/* One encoded message between nodes (a request or a peer frame), and the
 * records one replication frame may carry. */
#define CW_FRAME_BYTES_MAX (8u << 20)
#define CW_FRAME_RECORDS_MAX 4096u
/* The largest max_value_bytes: a value with its key and metadata must fit in
 * one frame, or a peer would refuse what this node sends. */
#define CW_MAX_VALUE_BYTES_MAX (CW_FRAME_BYTES_MAX / 2)

/* Bytes of the detail string a core reply carries (which key, which limit). */
#define CW_DETAIL_MAX 160

/* The largest one-way delay of an emulated WAN link, in milliseconds: the
 * config's [latency], the admin link command and the transport all use it. */
#define CW_LINK_DELAY_MS_MAX 60000u

/* Defaults of the replica's configuration (docs/configuration.md). */
#define CW_DEFAULT_VALUE_BYTES_MAX (1u << 20)
#define CW_DEFAULT_DEP_BUFFER_MAX 100000u
#define CW_DEFAULT_OUTBOX_MAX 1000000u
#define CW_DEFAULT_BATCH_RECORDS_MAX 256u
/* Replication on commit: at most one batch per peer per 2 ms (replica.h). */
#define CW_DEFAULT_FLUSH_GAP_US 2000u
#define CW_DEFAULT_BATCH_BYTES_MAX (2u << 20)
#define CW_DEFAULT_WINDOW_RECORDS 4096u
#define CW_DEFAULT_WAITING_MAX 10000u
#define CW_DEFAULT_HEARTBEAT_MS 200u
#define CW_DEFAULT_NACK_RETRY_MS 1000u
#define CW_DEFAULT_WAIT_MS 5000u
#define CW_DEFAULT_CONTEXT_AHEAD_MAX_MS 60000u
#define CW_DEFAULT_MAX_SIBLINGS 64u
#define CW_DEFAULT_SNAP_KEYS_MAX 512u /* key states per snapshot chunk */
#define CW_SNAP_KEYS_HARD_MAX 4096u   /* what a receiver accepts in one chunk */
#define CW_DEFAULT_OUTBOX_BYTES_MAX (256ull << 20)
#define CW_DEFAULT_DEP_BUFFER_BYTES_MAX (256ull << 20)
#define CW_DEFAULT_INFLIGHT_BYTES_MAX (64ull << 20)
#define CW_DEFAULT_KEY_CACHE_BYTES_MAX (64ull << 20)
#define CW_DEFAULT_OUTBOX_CACHE_BYTES_MAX (32ull << 20)

/* Strong buckets (core/raft.h, core/strong.h). */
#define CW_RAFT_MSG_ENTRIES_MAX 1024u           /* entries in one Raft message */
#define CW_RAFT_ENTRY_BYTES_MAX (CW_FRAME_BYTES_MAX / 2) /* one command (key, value, deps) */
#define CW_RAFT_SNAP_BYTES_MAX (CW_FRAME_BYTES_MAX - 4096u) /* a snapshot travels in one frame */
#define CW_DEFAULT_ELECTION_MIN_MS 1000u /* well above the largest WAN round trip */
#define CW_DEFAULT_ELECTION_MAX_MS 2000u
#define CW_DEFAULT_RAFT_HEARTBEAT_MS 100u
#define CW_DEFAULT_SNAPSHOT_ENTRIES 10000u /* compact the log past this many applied entries */
#define CW_DEFAULT_STRONG_TIMEOUT_MS 5000u /* a strong request fails after this */
#define CW_DEFAULT_STRONG_PENDING_MAX 10000u /* strong requests in flight per region */
#define CW_DEFAULT_STRONG_BYTES_MAX (CW_RAFT_SNAP_BYTES_MAX) /* strong state (keys, values) */
#define CW_DEFAULT_RAFT_MSG_BYTES (1u << 20) /* entry bytes per APPEND */
#define CW_DEFAULT_RAFT_INFLIGHT 64u        /* APPENDs unacknowledged per follower */

/* Default of the store's Berkeley DB page cache (config: store_cache_bytes). */
#define CW_DEFAULT_STORE_CACHE_BYTES (32ull << 20)
/* Log between two store checkpoints (checkpoint_bytes): recovery after a crash
 * replays at most about this much; fewer checkpoints write a hot page once for
 * many updates (docs/benchmarks.md, "Large values"). */
#define CW_DEFAULT_CHECKPOINT_BYTES (64ull << 20)

#endif
