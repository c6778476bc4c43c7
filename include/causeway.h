/*
 * causeway.h - libcauseway, the C client library of causeway, a causally
 * consistent, geo-replicated key-value store.
 *
 * Two objects:
 *
 *   struct cw_client  a connection to one region's client endpoint (or its admin
 *                     endpoint, for cw_link). Requests are synchronous: one at a
 *                     time, each waits for its reply or its time-out; a cw_pipe
 *                     (below, "pipelining") keeps several in flight.
 *   struct cw_sess    a causal session: one thread of execution's causal context
 *                     (the join of every version it has read or written) plus, for
 *                     siblings buckets, the key context it last saw per key (a
 *                     bounded number of keys, least recently used forgotten).
 *
 * A session is independent of any connection: use one session with clients of
 * several regions and it keeps its guarantees across them (read-your-writes,
 * monotonic reads, writes-follow-reads). A region serves a session's read only
 * once it has applied everything in the session's context; until then the read
 * waits (server-side, bounded) and then fails with CW_ENOTREADY. Save a session to
 * a file and load it in another process to continue it there (the CLI's
 * --session FILE does exactly that).
 *
 * Errors: every function that can fail returns CW_OK (0) or an enum cw_err code
 * from <causeway/error.h>; cw_strerror(code) gives the general sentence and
 * cw_client_error() / cw_sess_error() the detailed message of the last failure
 * on that object (which key, which line of which file, what the server said).
 *
 * Ownership: objects made by *_new / *_connect, and results (cw_get_result,
 * cw_status), belong to the caller and are released by the matching *_free /
 * *_close, which take T ** and set it to NULL (NULL and *p == NULL are
 * accepted); strings returned through char ** are released with free(). On
 * failure no object is returned (*out is NULL). Every pointer argument is
 * borrowed for the duration of the call only; the library keeps no pointer into
 * the caller's buffers.
 *
 * Threads: a client or a session must not be used by two threads at once;
 * different objects may be used concurrently.
 */
#ifndef CAUSEWAY_H
#define CAUSEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <causeway/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits, the same as the server's. */
#define CW_BUCKET_LEN_MAX 64      /* bucket names are [a-z0-9_-]{1,64} */
#define CW_KEY_LEN_MAX 1024       /* keys are 1..1024 bytes, any bytes */
#define CW_CONTEXT_TOKEN_MAX 327  /* a context token, including its NUL */
#define CW_REGION_NAMES_MAX 16    /* regions in a cluster */
#define CW_REGION_NAME_LEN_MAX 32 /* region names, without the NUL */

/* ------------------------------------------------------------------ client */

struct cw_client;

#define CW_CLIENT_TIMEOUT_MS_DEFAULT 10000
#define CW_CLIENT_RETRIES_DEFAULT 2
#define CW_CLIENT_RETRIES_MAX 10

/* The options layout cw_client_options_init fills (see the version field). */
#define CW_CLIENT_OPTIONS_VERSION 2
#define CW_KEY_TEXT_MAX 41 /* a CURVE key in Z85: 40 characters and the NUL */

struct cw_client_options {
    /* How long one attempt waits for its reply, 1..3600000 ms. */
    unsigned timeout_ms;
    /*
     * Further attempts, 0..CW_CLIENT_RETRIES_MAX. Any request is tried again when
     * the node could not be reached (nothing was sent). After a time-out (the
     * request was sent, no reply came) only reads (cw_get) and status are tried
     * again. Writes (cw_put, cw_del) and link commands are not: a write whose
     * reply was lost may have been applied, and sending it again would create a
     * second version (in a siblings bucket, a spurious sibling) instead of
     * repeating the first. A timed-out write is reported as CW_ETIMEOUT; read
     * the key to find out whether it happened.
     */
    unsigned retries;
    /*
     * Version 2 and later. cw_client_options_init sets version to
     * CW_CLIENT_OPTIONS_VERSION; a caller that fills the struct itself (written
     * for version 1, e.g. with a designated initializer naming only timeout_ms and
     * retries) leaves it 0, and then only the fields above are read, so such
     * sources keep compiling and working unchanged. (Binaries built against the
     * version 1 header must be rebuilt: the struct grew.)
     */
    unsigned version;
    /*
     * CurveZMQ (docs/operations.md, "Security"): the node's public key and this
     * client's key pair, each 40 Z85 characters. All three empty (the default):
     * no CURVE, for a node with security = none. server_key set: all three must
     * be, and the connection is encrypted and authenticated; the node admits the
     * client only if its public key is listed in the node's config.
     * cw_client_options_key_file fills the pair from a key file.
     */
    char server_key[CW_KEY_TEXT_MAX];
    char public_key[CW_KEY_TEXT_MAX];
    char secret_key[CW_KEY_TEXT_MAX];
};

/* Fills *opt with the defaults (CW_CLIENT_TIMEOUT_MS_DEFAULT, CW_CLIENT_RETRIES_DEFAULT,
 * no CURVE) and the current version. */
CW_EXPORT void cw_client_options_init(struct cw_client_options *opt);

/*
 * Reads the key pair file at path (written by `causeway keygen --out FILE`) into
 * opt->public_key and opt->secret_key. Refuses a file that is missing, readable
 * by group or others, or holds keys that do not decode or do not belong together.
 * Returns CW_OK, or CW_EIO / CW_ECONFIG with one line in err (err_len bytes, may
 * be 0) naming the file and what to do. opt->server_key is not touched.
 */
CW_EXPORT int cw_client_options_key_file(struct cw_client_options *opt, const char *path, char *err,
                                         size_t err_len);

/*
 * Prepares a connection to endpoint ("tcp://host:port" or "ipc://path"); opt
 * NULL means the defaults. The connection is made in the background, so an
 * unreachable server shows up as CW_EUNAVAILABLE on the first request, not here.
 * Returns CW_OK with a new client in *out, CW_EINVAL for a malformed endpoint
 * or options, CW_ENET when the transport cannot be set up, or CW_ENOMEM (there
 * is no client to ask for details then; the code says it all).
 */
CW_EXPORT int cw_client_connect(const char *endpoint, const struct cw_client_options *opt,
                                struct cw_client **out);

/* Closes the connection without waiting for unsent requests; sets *c to NULL. */
CW_EXPORT void cw_client_close(struct cw_client **c);

/* The detailed message of the last failed call on c ("" after a success).
 * Borrowed: valid until the next call on c. Never NULL. */
CW_EXPORT const char *cw_client_error(const struct cw_client *c);

/* ----------------------------------------------------------------- session */

struct cw_sess;

#define CW_SESS_KEYS_DEFAULT 1024 /* remembered key contexts, by default */
#define CW_SESS_KEYS_MAX 16384

/*
 * A new, empty session that remembers the key contexts of at most max_keys keys
 * (0 means CW_SESS_KEYS_DEFAULT; at most CW_SESS_KEYS_MAX). Forgetting a key's
 * context is safe: a later put of that key without a context adds a sibling, it
 * never loses one. Returns CW_OK, CW_EINVAL or CW_ENOMEM.
 */
CW_EXPORT int cw_sess_new(size_t max_keys, struct cw_sess **out);
CW_EXPORT void cw_sess_free(struct cw_sess **s);

/* The detailed message of the last failed call on s ("" after a success).
 * Borrowed: valid until the next call on s. Never NULL. */
CW_EXPORT const char *cw_sess_error(const struct cw_sess *s);

/*
 * The session's causal context as a printable token ("cw1-" and hex digits, at
 * most CW_CONTEXT_TOKEN_MAX bytes with the NUL) written to buf. Returns CW_OK, or
 * CW_ETOOBIG when len is too small (buf then holds "").
 */
CW_EXPORT int cw_sess_export(const struct cw_sess *s, char *buf, size_t len);

/*
 * Joins the context in token into the session's context: afterwards the session
 * depends on everything the exporting session had seen. Key contexts are not
 * part of a token. Returns CW_OK or CW_ECONTEXT (session unchanged).
 */
CW_EXPORT int cw_sess_import(struct cw_sess *s, const char *token);

/*
 * Writes the session (its context and remembered key contexts) to the file at
 * path, atomically: a temporary file in the same directory is written, flushed
 * to disk and renamed over path, so a crash leaves the old or the new file,
 * never a torn one. The file is created (mode 0600) if missing.
 *
 * Format (text, one record per line, version 1):
 *     causeway-session 1
 *     context TOKEN
 *     key HEX TOKEN          (zero or more; least recently used first)
 * where HEX is the lowercase hex of the full key "bucket/key" and TOKEN a
 * context token. Lines end with LF; cw_sess_load also accepts CRLF. Returns
 * CW_OK or CW_EIO (cw_sess_error says why).
 */
CW_EXPORT int cw_sess_save(struct cw_sess *s, const char *path);

/*
 * Replaces the session's context and key contexts with those in the file at path
 * (written by cw_sess_save). Keys beyond the session's bound keep only the most
 * recently used. Returns CW_OK; CW_ENOTFOUND when the file does not exist;
 * CW_EIO when it cannot be read; CW_ECONTEXT when it is malformed, not a
 * session file, or of a format version this library does not read
 * (cw_sess_error names the file and line, "FILE:LINE: what is wrong"). On any
 * error the session is unchanged.
 */
CW_EXPORT int cw_sess_load(struct cw_sess *s, const char *path);

/* ------------------------------------------------------------- operations */

struct cw_put_result {
    unsigned origin; /* region id that accepted the write (the dot's origin) */
    uint64_t ts;     /* its hybrid-logical timestamp (the dot's ts) */
    /*
     * Strong buckets: the key's version after the write (or, with
     * CW_ECONFLICT, its current version); 0 in causal and eventual buckets.
     * Written ONLY by cw_put_if and cw_del_if. The caller allocates this
     * struct, and a program built against an earlier header has one without
     * this member: cw_put and cw_del therefore write origin and ts only, so
     * that they never write past the end of such a program's struct. Use
     * cw_put_if with CW_PUT_ALWAYS for an unconditional write that reports
     * the version.
     */
    uint64_t version;
};

/*
 * Writes value under bucket/key at the client's region. The write depends on
 * everything in the session's context (its dependency vector) and is joined into
 * it once acknowledged.
 *
 * context_token says which versions of the key this write replaces (siblings
 * buckets; LWW buckets ignore it): the context from a cw_get of this key. NULL
 * means the context the session remembers for this key from its last read (or
 * its last write that replaced every sibling), or none: a put without a context
 * next to existing versions adds a sibling. An explicit token is also joined
 * into the session's context, since the write replaces what it names.
 *
 * sess may be NULL: the write then carries an empty context and nothing is
 * remembered. Bucket and key are checked before anything is sent (CW_EBUCKET,
 * CW_EKEY, CW_ECONTEXT). The server may answer CW_EVALUE (value too large),
 * CW_ESIBLINGS, CW_EUNKNOWNBUCKET, CW_EFULL, CW_ESTRONG, CW_ECONTEXT (a context
 * naming an unknown region or far in the future), and CW_ENOTREADY: in a causal
 * bucket a write, like a read, waits until the region has applied the session's
 * context, and fails with it when that takes longer than wait_ms (nothing
 * was written); the transport
 * CW_ETIMEOUT (the write may or may not have happened; it is not retried) or
 * CW_ENET. On success *out (may be NULL) receives the write's dot.
 */
CW_EXPORT int cw_put(struct cw_client *c, struct cw_sess *sess, const char *bucket, const void *key,
                     size_t key_len, const void *value, size_t value_len, const char *context_token,
                     struct cw_put_result *out);

/* Deletes bucket/key: writes a tombstone, with the same rules as cw_put. */
CW_EXPORT int cw_del(struct cw_client *c, struct cw_sess *sess, const char *bucket, const void *key,
                     size_t key_len, const char *context_token, struct cw_put_result *out);

/*
 * Strong buckets (`consistency = strong` in the cluster's configuration) keep
 * one linearizable register per key, replicated through Raft across every
 * region:
 *
 *   - A put or del that returns CW_OK is committed by a majority of regions and
 *     is seen by every later get, in every region (linearizability): there are
 *     no siblings, no stale reads and no lost updates. The key's version is
 *     then the Raft index of that write (it only grows; 0 means the key has
 *     never been written or does not exist).
 *   - A get returns the value of the latest write committed before the get
 *     was answered, with its version (cw_get_result.version).
 *   - A strong write or read answers within the node's strong time-out: with
 *     CW_ENOQUORUM when the region cannot hear a majority of regions, with
 *     CW_ETIMEOUT when it can but the request did not complete in time (or,
 *     from the transport, when the reply did not arrive). A put or del that
 *     failed either way MAY STILL APPLY later (it may have reached the leader
 *     before the cut): read the key (its version tells) before you write
 *     again, or make the retry conditional. A read that failed did nothing.
 *   - The session's context still applies: a strong get joins the context of
 *     the write it read into the session, so causal reads that follow see what
 *     that write depended on.
 *
 * Versions exist only in strong buckets: in causal and eventual buckets they
 * are 0 and a condition other than CW_PUT_ALWAYS is refused with CW_EINVAL.
 */
enum cw_put_cond_kind {
    CW_PUT_ALWAYS = 0,     /* unconditional; expected_version must be 0 */
    CW_PUT_IF_VERSION = 1, /* only if the key's version is expected_version (>= 1) */
    CW_PUT_IF_ABSENT = 2,  /* only if the key does not exist; expected_version must be 0 */
};

/*
 * A put with a condition (compare-and-set): writes value under bucket/key only
 * if the condition holds when the write is applied, atomically. Returns CW_OK
 * with the new version in out->version; CW_ECONFLICT when the condition did not
 * hold (nothing was written; out->version is the key's current version, 0 when
 * it does not exist: read it again, then retry with that version); CW_EINVAL
 * for an unknown cond, CW_PUT_IF_VERSION with expected_version 0 (use
 * CW_PUT_IF_ABSENT) or an expected_version with another cond, and (from the
 * server) any condition on a causal or eventual bucket; CW_ENOQUORUM and
 * CW_ETIMEOUT as described above; otherwise the errors of cw_put. With
 * CW_PUT_ALWAYS it is cw_put with a NULL context_token that also reports the
 * version. *out (may be NULL) is written in full (struct cw_put_result with
 * its version member).
 */
CW_EXPORT int cw_put_if(struct cw_client *c, struct cw_sess *sess, const char *bucket,
                        const void *key, size_t key_len, const void *value, size_t value_len,
                        enum cw_put_cond_kind cond, uint64_t expected_version,
                        struct cw_put_result *out);

/* A delete with a condition: cw_put_if's rules, writing a tombstone. After it
 * the key is absent (a get finds nothing). */
CW_EXPORT int cw_del_if(struct cw_client *c, struct cw_sess *sess, const char *bucket,
                        const void *key, size_t key_len, enum cw_put_cond_kind cond,
                        uint64_t expected_version, struct cw_put_result *out);

struct cw_value_version {
    const uint8_t *value; /* len bytes, owned by the result; not NUL-terminated */
    size_t len;
    unsigned origin; /* the region id that wrote it */
    uint64_t ts;     /* its timestamp; (ts, origin) orders versions */
};

struct cw_get_result {
    bool found;    /* false when the key has no live version (none, or only tombstones) */
    bool siblings; /* the bucket keeps siblings (else LWW: at most one version) */
    size_t n;      /* live versions, 0 when !found */
    struct cw_value_version *versions; /* n versions in (ts, origin) order */
    /* The key context of what was read (tombstones included): pass it to
     * cw_put/cw_del as context_token to replace exactly these versions. */
    char context[CW_CONTEXT_TOKEN_MAX];
    /* Strong buckets: the key's version as read (0: absent); 0 in causal and
     * eventual buckets. (The library allocates this struct, so a member added
     * at its end is safe for programs built against an earlier header.) */
    uint64_t version;
};

/*
 * Reads bucket/key at the client's region, after that region has applied
 * everything in the session's context. Returns CW_OK with a new result in *out
 * (found or not: a missing key is not an error); CW_ENOTREADY when the region
 * has not caught up with the session in time; validation, server and transport
 * errors as for cw_put (a timed-out read is retried per the options). sess may
 * be NULL (no causal guarantees). The session joins what was read into its
 * context and, for siblings buckets, remembers the key context.
 */
CW_EXPORT int cw_get(struct cw_client *c, struct cw_sess *sess, const char *bucket, const void *key,
                     size_t key_len, struct cw_get_result **out);

/* Frees a result and everything it points to; sets *r to NULL. */
CW_EXPORT void cw_get_result_free(struct cw_get_result **r);

/* -------------------------------------------------------------- pipelining */

/*
 * A pipe keeps several requests in flight on one client, so one connection is no
 * longer bound to one round trip per operation. Requests go out as they are
 * submitted; results come back in submission order from cw_pipe_next, each with
 * the handle its submission returned.
 *
 * Session guarantees: the node handles one connection's requests in the order they
 * arrive, so a session's pipelined operations take effect in submission order (a
 * read sees the session's earlier writes of the same pipe, even in flight), and
 * the session records each result in submission order. A request carries the
 * session's context as it was at submission; in a causal bucket, a request that
 * must wait for that context (a session carried over from another region) is
 * followed by every later request of the session, whose contexts include its.
 * Two exceptions, both from requests that do not wait: a request to an eventual
 * bucket can overtake an earlier causal one that waits, and a strong bucket's
 * write completes when Raft commits it, after later causal requests; keep a
 * strong write and what must follow it in separate calls (cw_pipe_next first).
 * In a siblings bucket, a put sends the key context the session knew at
 * submission: after an earlier put of the same key still in flight, it may add a
 * sibling where the synchronous cw_put would replace.
 *
 * Errors: nothing is retried; when no reply comes within the client's timeout_ms,
 * every request then in flight fails with CW_ETIMEOUT (a write may or may not have
 * happened) and the connection is replaced. Do not make synchronous calls on the
 * client while its pipe has requests in flight. A pipe is used by one thread.
 *
 * Example: 1000 puts, 16 in flight.
 *
 *     struct cw_pipe *p;
 *     cw_pipe_new(client, sess, 16, &p);
 *     for (int i = 0; i < 1000 || cw_pipe_pending(p) > 0;) {
 *         if (i < 1000 && cw_pipe_pending(p) < 16) {
 *             char key[16];
 *             int n = snprintf(key, sizeof key, "k%d", i++);
 *             if (cw_pipe_put(p, "kv", key, (size_t)n, "v", 1, NULL) != CW_OK)
 *                 break;  // cw_client_error(client) says why; nothing was sent
 *             continue;
 *         }
 *         struct cw_pipe_result r;
 *         if (cw_pipe_next(p, &r) != CW_OK)
 *             fprintf(stderr, "request %llu: %s\n", (unsigned long long)r.handle,
 *                     cw_client_error(client));
 *         cw_get_result_free(&r.get);  // set only for a get
 *     }
 *     cw_pipe_free(&p);
 */
struct cw_pipe;

#define CW_PIPE_DEPTH_MAX 256 /* requests in flight on one pipe */

/*
 * A pipe on client c for session sess (may be NULL: no causal guarantees) with at
 * most depth (1..CW_PIPE_DEPTH_MAX) requests in flight. Both are borrowed and must
 * outlive the pipe. Returns CW_OK, CW_EINVAL or CW_ENOMEM.
 */
CW_EXPORT int cw_pipe_new(struct cw_client *c, struct cw_sess *sess, unsigned depth,
                          struct cw_pipe **out);

/* Frees the pipe; requests still in flight are abandoned (the connection is
 * replaced, so their replies are never taken for another's). Sets *p to NULL. */
CW_EXPORT void cw_pipe_free(struct cw_pipe **p);

/*
 * Submit a put, a delete or a get, as cw_put (no context token: the session's
 * remembered key context), cw_del and cw_get do, without waiting for the reply.
 * On CW_OK the request is sent and *handle (may be NULL) is its handle (> 0).
 * Errors, with nothing sent: CW_EFULL when depth requests are in flight (take a
 * result first), the validation errors of cw_put/cw_get, CW_EUNAVAILABLE when no
 * connection could be made within timeout_ms, CW_ENET.
 */
CW_EXPORT int cw_pipe_put(struct cw_pipe *p, const char *bucket, const void *key, size_t key_len,
                          const void *value, size_t value_len, uint64_t *handle);
CW_EXPORT int cw_pipe_del(struct cw_pipe *p, const char *bucket, const void *key, size_t key_len,
                          uint64_t *handle);
CW_EXPORT int cw_pipe_get(struct cw_pipe *p, const char *bucket, const void *key, size_t key_len,
                          uint64_t *handle);

/* Requests in flight (submitted, result not yet taken). */
CW_EXPORT unsigned cw_pipe_pending(const struct cw_pipe *p);

enum cw_pipe_op { CW_PIPE_PUT = 1, CW_PIPE_DEL = 2, CW_PIPE_GET = 3 };

struct cw_pipe_result {
    uint64_t handle;    /* as returned by the submission */
    enum cw_pipe_op op;
    int rc;             /* the request's result: what cw_put/cw_get would return */
    /* A put or delete with rc CW_OK: the write's dot (version: strong buckets). */
    struct cw_put_result put;
    /* A get with rc CW_OK: the result, owned by the caller (cw_get_result_free). */
    struct cw_get_result *get;
};

/*
 * Waits for the oldest request in flight and fills *out with its result (rc also
 * returned; cw_client_error says more when it is not CW_OK). CW_EINVAL with
 * out->handle 0 when nothing is in flight.
 */
CW_EXPORT int cw_pipe_next(struct cw_pipe *p, struct cw_pipe_result *out);

/* ------------------------------------------------------------------ stamps */

/*
 * A stamp (cw_put_result.ts, cw_value_version.ts, the stamps of a status) is a
 * hybrid-logical clock value: microseconds since the Unix epoch (UTC) in the
 * high 52 bits, a logical counter in the low CW_STAMP_LOGICAL_BITS bits. While
 * a region's clock follows physical time the counter is 0; it counts up only
 * when several stamps fall in one microsecond or a peer's clock is ahead.
 */
#define CW_STAMP_LOGICAL_BITS 12
#define CW_STAMP_TEXT_MAX 28 /* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" and the NUL */

/* The physical part of a stamp: microseconds since the Unix epoch. */
CW_EXPORT uint64_t cw_stamp_us(uint64_t ts);

/*
 * Writes the physical part of ts as UTC with microseconds, ISO 8601
 * ("2025-03-01T12:34:56.123456Z"; the logical counter is not shown) into buf.
 * Returns CW_OK, or CW_ETOOBIG when len < CW_STAMP_TEXT_MAX (buf then holds ""
 * when len > 0).
 */
CW_EXPORT int cw_stamp_format(uint64_t ts, char *buf, size_t len);

/* -------------------------------------------------------- status and admin */

struct cw_regions {
    unsigned n; /* regions, ids 0..n-1 */
    char name[CW_REGION_NAMES_MAX][CW_REGION_NAME_LEN_MAX + 1];
};

/* A latency distribution in microseconds. Quantiles come from a histogram:
 * each is the upper bound of its bucket (within 1.6% of the truth), capped at
 * max_us; all are 0 when count is 0. */
struct cw_status_latency {
    uint64_t count; /* samples */
    uint64_t p50_us, p90_us, p99_us, max_us;
};

/* The node's view of one other region. */
struct cw_status_peer {
    unsigned id;       /* the peer's region id; its name is regions.name[id] */
    bool link_cut;     /* the emulated link to it is cut (cw_link CUT) */
    unsigned delay_ms; /* the emulated link's one-way delay */
    uint64_t queued;   /* frames waiting in the WAN emulator for their time */
    uint64_t frames_sent, frames_dropped, frames_received, bytes_sent;
    uint64_t outbox_pending; /* this region's writes the peer has not applied yet */
    /* The peer's writes: time applied here minus its commit time there. */
    struct cw_status_latency visibility;
};

/* Counters since the node started. */
struct cw_status_counters {
    /* The replica. */
    uint64_t puts, gets, deletes;
    uint64_t remote_applied;             /* remote writes applied */
    uint64_t remote_duplicates;          /* remote records received again, ignored */
    uint64_t remote_gaps;                /* remote records after a gap in their stream */
    uint64_t nacks_sent, nacks_received; /* resend requests */
    uint64_t resent_records;
    /* Requests, reads and writes, that waited for their session's context, and
     * those that gave up with CW_ENOTREADY. The reads_ names are the old ones,
     * kept so that programs using them still build. */
    union {
        uint64_t requests_waited;
        uint64_t reads_waited;
    };
    union {
        uint64_t requests_timed_out;
        uint64_t reads_timed_out;
    };
    uint64_t buffer_full_drops;
    uint64_t tombstones_collected;
    uint64_t stamps_refused; /* peer stamps more than 60 s ahead of physical time */
    uint64_t errors;
    /* The node. */
    uint64_t requests;        /* client and admin requests received */
    uint64_t bad_requests;    /* ... that could not be decoded */
    uint64_t bad_peer_frames; /* peer frames that could not be decoded */
    uint64_t replies_dropped; /* replies the node could not send */
    uint64_t commits;         /* store transactions */
    uint64_t commit_records;  /* records written by them */
    /* security = curve (docs/operations.md, "Security"). */
    uint64_t auth_refused;          /* connections whose key the node does not admit */
    uint64_t handshakes_failed;     /* connections that failed the CURVE handshake */
    uint64_t peer_identity_refused; /* peer frames claiming another region than their key */
    uint64_t admin_refused;         /* admin commands from keys that are not admin keys */
};

/* The strong buckets' Raft group as one node sees it (docs/operations.md). */
struct cw_status_raft_peer {
    unsigned id;            /* the peer's region id; its name is regions.name[id] */
    bool heard;             /* the node has heard from it since it started */
    uint64_t last_heard_ms; /* heard: milliseconds since it last did */
    bool suspected;         /* the failure detector suspects it is down */
};

struct cw_status_strong {
    /* "follower", "precandidate", "candidate", "leader" or "unknown" (a role
     * a later release added). */
    char role[16];
    uint64_t term;
    int leader;                     /* the leader's region id as this node knows it, or -1 */
    int vote;                       /* the region this node voted for in term, or -1 */
    uint64_t commit, applied;       /* Raft commit and applied indexes */
    uint64_t log_first, log_last;   /* the log held (first > last when empty) */
    uint64_t snap_index, snap_term; /* the last snapshot */
    unsigned n_peers;               /* every other region, by id */
    struct cw_status_raft_peer peers[CW_REGION_NAMES_MAX - 1];
    /* Raft counters, since the node started. */
    uint64_t elections, prevotes, leader_changes, stepdowns_quorum;
    uint64_t proposals_forwarded, read_index_rounds, snapshots_sent, snapshots_received;
    uint64_t transfers, msgs_refused, disruptions;
    /* Strong requests, since the node started, and the state machine now. */
    uint64_t puts, gets, conflicts, timeouts, no_quorum, full;
    uint64_t keys, bytes;
};

/*
 * The RECORDS frames a node encoded for its peers since it started
 * (docs/protocol.md, "Replication bytes"). A record sent to two peers, or sent
 * again after a resend request, counts each time.
 */
struct cw_status_replication {
    uint64_t records, frames;
    uint64_t metadata_bytes;  /* batch_bytes - key_bytes - value_bytes */
    uint64_t key_bytes;       /* the records' keys ("bucket/key") */
    uint64_t value_bytes;     /* the records' values */
    uint64_t batch_bytes;     /* the serialized record batches, before LZ4 */
    uint64_t batch_lz4_bytes; /* the same batches after LZ4, as sent */
    uint64_t frame_bytes;     /* the whole frames (envelope included), as sent */
};

/*
 * A node's status, as cw_status_get returns it. docs/operations.md explains
 * how to read it. Stamps are described above (cw_stamp_format); entries of
 * applied and stable past regions.n are 0. A later release may add members at
 * the end: the library allocates the struct, so a program built against this
 * header keeps working. A node of an earlier release sends none of the later
 * members: they read 0.
 */
struct cw_status {
    unsigned id;               /* this node's region id */
    struct cw_regions regions; /* every region's name by id (regions.name[id] is this one) */
    char durability[16];       /* "sync", "write_nosync", "nosync" or "unknown" */
    uint64_t uptime_us;        /* since the node started */
    uint64_t now_us;           /* the node's wall clock when it answered (us since the epoch) */
    uint64_t clock;            /* the node's HLC: the greatest stamp it issued or saw */
    /* Per origin: every write of that origin up to this stamp is applied here. */
    uint64_t applied[CW_REGION_NAMES_MAX];
    /* Per origin: the least applied entry over every region, as last acknowledged. */
    uint64_t stable[CW_REGION_NAMES_MAX];
    uint64_t buffered;     /* remote writes waiting in the dependency buffer */
    uint64_t outbox_total; /* this region's writes not yet applied by every region */
    /* Requests, reads and writes, waiting until this region catches up with
     * their session (pending_reads is the old name, kept for programs using it). */
    union {
        uint64_t waiting;
        uint64_t pending_reads;
    };
    uint64_t keys;    /* keys held */
    unsigned n_peers; /* every other region, in the node's order (by id) */
    struct cw_status_peer peers[CW_REGION_NAMES_MAX - 1];
    struct cw_status_counters counters;

    /* Added with the byte bounds of the queues and the store-of-record caches
     * (docs/configuration.md names the bounds). */
    uint64_t outbox_bytes;      /* bytes of the outbox records (outbox_bytes_max) */
    uint64_t buffered_bytes;    /* bytes of the dependency buffer (dep_buffer_bytes_max) */
    uint64_t key_cache_bytes;   /* memory held for key states (key_cache_bytes_max) */
    uint64_t outbox_body_bytes; /* memory held for outbox bodies (outbox_cache_bytes_max) */
    /* inflight_bytes[i] belongs to peers[i]: bytes sent to it and not yet
     * acknowledged (inflight_bytes_max). */
    uint64_t inflight_bytes[CW_REGION_NAMES_MAX - 1];
    /* Counters of the caches, since the node started. */
    uint64_t keys_loaded;       /* key states read back from the store */
    uint64_t keys_evicted;      /* key states dropped from memory */
    uint64_t bodies_loaded;     /* outbox record bodies read back from the store */
    uint64_t bodies_evicted;    /* outbox record bodies dropped from memory */
    uint64_t store_read_errors; /* reads from the store that failed */

    /* Added with strong buckets: has_strong when the node's configuration has
     * a strong bucket (a node of an earlier release never has); strong is all
     * zero otherwise. */
    bool has_strong;
    struct cw_status_strong strong;

    /* Added with the replication byte counters (all zero from a node of an
     * earlier release). */
    struct cw_status_replication replication;
    /* Added with the client connection cap (docs/operations.md, "Connection
     * limits"): connections open on the client endpoint now, the cap in force,
     * and the connections refused at it since the node started. */
    uint64_t client_connections;
    uint64_t client_connections_max;
    uint64_t connections_refused;
    /* Added with resource failure reporting (docs/operations.md, "Resource
     * failures"). */
    uint64_t checkpoints_failed;  /* store checkpoints that failed after a good commit */
    uint64_t checkpoints_failing; /* ... in a row, up to now (0: the last one worked) */
};

/*
 * Asks the node for its status. Works on client and admin endpoints; retried
 * after a time-out like a read. Returns CW_OK with a new status in *out (the
 * caller owns it: release it with cw_status_free), CW_EDECODE when the reply
 * holds no valid status (e.g. a node of an older release, which sent a JSON
 * document instead), or a transport error.
 */
CW_EXPORT int cw_status_get(struct cw_client *c, struct cw_status **out);

/* Frees a status; sets *s to NULL (NULL and *s == NULL are accepted). */
CW_EXPORT void cw_status_free(struct cw_status **s);

/* One counter of a status, by the name status --json gives it. */
struct cw_status_counter {
    const char *name; /* static */
    uint64_t value;
};

/*
 * The node counters of s (cw_status.counters and the cache counters beside
 * them), in the order `causeway status` prints them: writes up to max of them
 * into out and returns how many there are (call with max 0 to size out). The
 * one list behind both the text and the JSON rendering.
 */
CW_EXPORT size_t cw_status_counter_list(const struct cw_status *s, struct cw_status_counter *out,
                                        size_t max);

/* The strong buckets' counters of s (cw_status.strong), in the order `causeway
 * status` prints them, the same way: at most max into out, returns how many
 * there are (never more than CW_STATUS_STRONG_COUNTERS_MAX). All zero from a
 * node without strong buckets. */
#define CW_STATUS_STRONG_COUNTERS_MAX 32
CW_EXPORT size_t cw_status_strong_counter_list(const struct cw_status *s,
                                               struct cw_status_counter *out, size_t max);

/*
 * The derived replication figures of r (a status's replication, or the
 * difference of two): *metadata_per_record = metadata_bytes / records and
 * *lz4_ratio = batch_bytes / batch_lz4_bytes, each NAN when its divisor is 0.
 * Either pointer may be NULL.
 */
CW_EXPORT void cw_status_replication_ratios(const struct cw_status_replication *r,
                                            double *metadata_per_record, double *lz4_ratio);

/*
 * Renders a status as one JSON object on one line (no newline), as
 * `causeway status --json` prints it; the members are listed in
 * docs/operations.md. Every number is an exact integer except the
 * visibility_ms figures. A 64-bit value above 2^63-1 (which a stamp reaches
 * only when a clock reads past May 2041) is written as a decimal string so
 * that it stays exact. Returns CW_OK with a new NUL-terminated string in *json
 * (release it with free()), CW_EINVAL for a status that names a region id
 * outside regions, or CW_ENOMEM.
 */
CW_EXPORT int cw_status_to_json(const struct cw_status *s, char **json);

/*
 * The node's status rendered by cw_status_to_json: cw_status_get, then
 * cw_status_to_json. The string in *json belongs to the caller: free() it.
 */
CW_EXPORT int cw_status_json(struct cw_client *c, char **json);

/*
 * Extracts the region names (index = region id) from a status document's
 * "regions" array. Returns CW_OK, or CW_EDECODE when the document is not a JSON
 * object with such an array of at most CW_REGION_NAMES_MAX short strings.
 */
CW_EXPORT int cw_status_regions(const char *status_json, struct cw_regions *out);

/* Asks the server for its status and extracts the region names. */
CW_EXPORT int cw_region_names(struct cw_client *c, struct cw_regions *out);

enum cw_admin_link {
    CW_ADMIN_LINK_CUT = 1,   /* drop every message on the link until it is healed */
    CW_ADMIN_LINK_HEAL = 2,  /* deliver again */
    CW_ADMIN_LINK_DELAY = 3, /* set the link's one-way delay to delay_ms */
};

/*
 * Changes the emulated link from region `from` to region `to` (names). admin
 * MUST be connected to from's admin endpoint: links are emulated in the sender,
 * so a link is changed one direction at a time (cut both directions to
 * partition two regions). delay_ms is used by CW_ADMIN_LINK_DELAY only. Not
 * retried after a time-out. Returns CW_OK; CW_EREGION for a name that is empty,
 * too long or (server side) unknown; CW_EINVAL for a bad op; transport errors.
 */
CW_EXPORT int cw_link(struct cw_client *admin, const char *from, const char *to,
                      enum cw_admin_link op, unsigned delay_ms);

#ifdef __cplusplus
}
#endif
#endif
