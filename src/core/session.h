/*
 * session.h - a client session's causal state.
 *
 * A session is one client's thread of execution. It carries a context: the join
 * of the dots of every version it has read or written. A region serves the
 * session's read only once its applied vector covers the context (read-your-
 * writes, monotonic reads, writes-follow-reads, also across regions), and a write
 * carries the context as its dependency vector.
 *
 * For siblings buckets the session also remembers, per key, the key context it
 * last read, so a later put replaces exactly the versions it saw. That memory is
 * bounded (least recently used keys are forgotten: a put without a remembered
 * context adds a sibling, it never loses one).
 *
 * Ownership: the session owns its key copies. Tokens are caller buffers.
 */
#ifndef CW_CORE_SESSION_H
#define CW_CORE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/replica.h"
#include "core/vclock.h"

struct cw_session_key {
    uint32_t key_len;
    uint8_t *key;
    struct cw_vclock kctx;
    uint64_t used; /* LRU stamp */
};

struct cw_session {
    struct cw_vclock context;
    struct cw_session_key *keys;
    size_t n_keys, max_keys;
    uint64_t clock; /* LRU counter */
};

void cw_session_init(struct cw_session *s, size_t max_keys);
void cw_session_free(struct cw_session *s);

/* Folds a reply into the session: the dots it saw, and (siblings) the key context
 * of key. key is the full "bucket/key". Returns CW_OK or CW_ENOMEM. */
int cw_session_observe(struct cw_session *s, const uint8_t *key, uint32_t key_len,
                       const struct cw_reply *reply);
/* The remembered key context for key, or NULL. A lookup counts as a use for the
 * least-recently-used bound. Borrowed until the next call that changes s. */
const struct cw_vclock *cw_session_kctx(struct cw_session *s, const uint8_t *key, uint32_t key_len);
/* Remembers kctx for key (a context the client passed explicitly). */
int cw_session_set_kctx(struct cw_session *s, const uint8_t *key, uint32_t key_len,
                        const struct cw_vclock *kctx);

/*
 * Tokens: a printable form of a vector, "cw1-" followed by lowercase hex of its
 * binary encoding. At most CW_TOKEN_MAX bytes including the NUL.
 */
#define CW_TOKEN_MAX (4 + 2 * CW_VC_ENCODED_MAX + 1)
void cw_token_format(const struct cw_vclock *v, char *buf);
/* Returns CW_OK or CW_ECONTEXT (bad prefix, odd length, bad hex, bad encoding). */
int cw_token_parse(const char *token, struct cw_vclock *v);

#endif
