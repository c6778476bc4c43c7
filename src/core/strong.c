/*
 * strong.c - strong buckets: the register state machine, the requests waiting
 * on Raft, and the translation of Raft's ready set into the node's shapes.
 */
#include "core/strong.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/bytes.h"
#include "core/cw_assert.h"
#include "core/hlc.h"
#include "core/record.h"

/* Persisted and replicated formats: a tag byte and a format byte first. */
enum { TAG_CMD = 'C', TAG_HS = 'H', TAG_ENTRY = 'E', TAG_SNAPREC = 'P', TAG_SM = 'M' };
enum { FORMAT = 1 };
enum { OP_PUT = 1, OP_DEL = 2 };

/* One key of the state machine. */
struct sm_key {
    struct sm_key *next;
    uint64_t hash;
    uint64_t version; /* the index of the entry that wrote it */
    uint64_t stamp;   /* the proposer's wall clock at the write, as an HLC stamp */
    uint8_t origin;   /* the region that took the write */
    struct cw_vclock deps; /* the writer session's causal context */
    uint32_t key_len, value_len;
    uint8_t *value;
    uint8_t key[];
};

struct sm {
    struct sm_key **slots;
    size_t n_slots; /* a power of two, or 0 */
    size_t count;
    uint64_t bytes;
    uint64_t digest; /* XOR of the keys' hashes over (key, version, value) */
    /* Per origin, the greatest proposal sequence applied: a command at or below
     * it is a duplicate (a resent or reordered proposal) and changes nothing. */
    struct cw_vclock last_seq;
};

/* A decoded command (borrows the entry's bytes). */
struct cmd {
    uint8_t op, cond, origin;
    uint64_t seq, cond_version, stamp;
    /* The proposer's strong_bytes_max: every region applies the command with
     * the same bound, so a config that differs between regions (or changes
     * across a restart, replaying the log) cannot make them disagree. */
    uint64_t bytes_max;
    struct cw_vclock deps;
    uint32_t key_len, value_len;
    const uint8_t *key, *value;
};

enum pend_state {
    PEND_RETRY = 0, /* not in Raft: (re)submit when a leader is known */
    PEND_RAFT = 1,  /* proposed, or read placed: waiting for Raft */
    PEND_READY = 2, /* read released at read_index: serve once applied reaches it */
};

struct pending {
    bool is_get;
    enum pend_state state;
    uint64_t req_id;
    uint64_t ctx; /* puts: the proposal's sequence; gets: the read id */
    uint64_t read_index;
    uint64_t deadline_us;
    uint32_t key_len;
    uint8_t *key; /* owned: "bucket/key" */
    uint32_t cmd_len;
    uint8_t *cmd; /* puts: the encoded command, owned (resubmitted as is) */
};

struct cw_strong {
    struct cw_strong_config cfg;
    struct cw_raft *raft;
    struct sm sm;
    uint64_t applied;
    uint64_t seq_last;  /* the last proposal sequence used or seen for this region */
    uint64_t read_next; /* read ids */
    struct pending *pend;
    size_t n_pend, cap_pend;
    uint64_t last_now_us; /* the latest monotonic time seen (for replies at ready) */
    uint64_t last_real_us;
    /* The ready set handed out. */
    struct cw_ready ready;
    struct cw_persist *persist;
    size_t n_persist, cap_persist;
    struct cw_msg *msgs;
    size_t cap_msgs;
    struct cw_reply *replies;
    size_t n_replies, cap_replies;
    bool raft_in_ready;
    bool in_ready;
    struct cw_strong_stats stats;
};

/* ------------------------------------------------------------------ helpers */

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * size);
    CW_ASSERT(q != NULL); /* out of memory: stop, recover from the store */
    *cap = c;
    return q;
}

static uint8_t *dup_bytes(const uint8_t *b, uint32_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    CW_ASSERT(d != NULL);
    if (n)
        memcpy(d, b, n);
    return d;
}

static uint64_t hash_bytes(const uint8_t *p, uint32_t n, uint64_t h)
{
    for (uint32_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A growable byte buffer for the encoders. */
struct wbuf {
    uint8_t *p;
    size_t len, cap;
};

static void wb_need(struct wbuf *b, size_t n)
{
    b->p = grow(b->p, &b->cap, b->len + n, 1);
}

static void wb_byte(struct wbuf *b, uint8_t x)
{
    wb_need(b, 1);
    b->p[b->len++] = x;
}

static void wb_varint(struct wbuf *b, uint64_t x)
{
    wb_need(b, 10);
    b->len += cw_varint_put(b->p + b->len, x);
}

static void wb_vc(struct wbuf *b, const struct cw_vclock *v)
{
    wb_need(b, CW_VC_ENCODED_MAX);
    b->len += cw_vc_encode(v, b->p + b->len);
}

static void wb_bytes(struct wbuf *b, const uint8_t *p, size_t n)
{
    wb_varint(b, n);
    wb_need(b, n);
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* ------------------------------------------------------------ state machine */

static uint64_t key_hash(const uint8_t *key, uint32_t len)
{
    return hash_bytes(key, len, 0xcbf29ce484222325ull);
}

static uint64_t sm_key_bytes(const struct sm_key *k)
{
    return sizeof(*k) + k->key_len + k->value_len;
}

static uint64_t sm_key_digest(const struct sm_key *k)
{
    uint64_t h = hash_bytes(k->key, k->key_len, 0xcbf29ce484222325ull);
    h = hash_bytes(k->value, k->value_len, h ^ mix64(k->version));
    return mix64(h ^ k->origin);
}

static struct sm_key **sm_slot(const struct sm *m, const uint8_t *key, uint32_t len, uint64_t h)
{
    if (m->n_slots == 0)
        return NULL;
    struct sm_key **pp = &m->slots[h & (m->n_slots - 1)];
    while (*pp != NULL &&
           !((*pp)->hash == h && (*pp)->key_len == len && memcmp((*pp)->key, key, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static struct sm_key *sm_find(const struct sm *m, const uint8_t *key, uint32_t len)
{
    struct sm_key **pp = sm_slot(m, key, len, key_hash(key, len));
    return pp ? *pp : NULL;
}

static void sm_rehash(struct sm *m)
{
    size_t n = m->n_slots ? m->n_slots * 2 : 64;
    struct sm_key **slots = calloc(n, sizeof(*slots));
    CW_ASSERT(slots != NULL);
    for (size_t i = 0; i < m->n_slots; i++) {
        struct sm_key *k = m->slots[i];
        while (k != NULL) {
            struct sm_key *next = k->next;
            k->next = slots[k->hash & (n - 1)];
            slots[k->hash & (n - 1)] = k;
            k = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->n_slots = n;
}

static void sm_key_free(struct sm_key *k)
{
    free(k->value);
    free(k);
}

static void sm_remove(struct sm *m, const uint8_t *key, uint32_t len)
{
    struct sm_key **pp = sm_slot(m, key, len, key_hash(key, len));
    if (pp == NULL || *pp == NULL)
        return;
    struct sm_key *k = *pp;
    *pp = k->next;
    m->count--;
    m->bytes -= sm_key_bytes(k);
    m->digest ^= sm_key_digest(k);
    sm_key_free(k);
}

/* Sets key to the given version (replacing any). */
static void sm_set(struct sm *m, const uint8_t *key, uint32_t len, uint64_t version,
                   uint64_t stamp, uint8_t origin, const struct cw_vclock *deps,
                   const uint8_t *value, uint32_t value_len)
{
    sm_remove(m, key, len);
    if (m->count + 1 > m->n_slots)
        sm_rehash(m);
    struct sm_key *k = calloc(1, sizeof(*k) + len);
    CW_ASSERT(k != NULL);
    k->hash = key_hash(key, len);
    k->version = version;
    k->stamp = stamp;
    k->origin = origin;
    k->deps = *deps;
    k->key_len = len;
    memcpy(k->key, key, len);
    k->value_len = value_len;
    k->value = dup_bytes(value, value_len);
    struct sm_key **head = &m->slots[k->hash & (m->n_slots - 1)];
    k->next = *head;
    *head = k;
    m->count++;
    m->bytes += sm_key_bytes(k);
    m->digest ^= sm_key_digest(k);
}

static void sm_clear(struct sm *m)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        struct sm_key *k = m->slots[i];
        while (k != NULL) {
            struct sm_key *next = k->next;
            sm_key_free(k);
            k = next;
        }
    }
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static int key_cmp(const void *a, const void *b)
{
    const struct sm_key *x = *(const struct sm_key *const *)a;
    const struct sm_key *y = *(const struct sm_key *const *)b;
    int c = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);
    if (c != 0)
        return c;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* The state machine's bytes, keys in byte order (so equal states give equal
 * snapshots on every region). */
static void sm_encode(const struct sm *m, struct wbuf *b)
{
    struct sm_key **all = malloc((m->count ? m->count : 1) * sizeof(*all));
    CW_ASSERT(all != NULL);
    size_t n = 0;
    for (size_t i = 0; i < m->n_slots; i++)
        for (struct sm_key *k = m->slots[i]; k != NULL; k = k->next)
            all[n++] = k;
    CW_ASSERT(n == m->count);
    qsort(all, n, sizeof(*all), key_cmp);
    wb_byte(b, TAG_SM);
    wb_byte(b, FORMAT);
    wb_vc(b, &m->last_seq);
    wb_varint(b, n);
    for (size_t i = 0; i < n; i++) {
        const struct sm_key *k = all[i];
        wb_bytes(b, k->key, k->key_len);
        wb_varint(b, k->version);
        wb_varint(b, k->stamp);
        wb_byte(b, k->origin);
        wb_vc(b, &k->deps);
        wb_bytes(b, k->value, k->value_len);
    }
    free(all);
}

/* Replaces m by the decoded state of a snapshot at index `at`; m is untouched
 * on CW_EDECODE. Besides the bytes, the state must be one this region could
 * have applied: no key written after `at`, and no more than bytes_max. */
static int sm_decode(struct sm *m, const uint8_t *p, size_t len, unsigned n_regions, uint64_t at,
                     uint64_t bytes_max)
{
    struct cw_rd r = {p, len, 0, false};
    struct sm fresh;
    memset(&fresh, 0, sizeof(fresh));
    if (cw_rd_byte(&r) != TAG_SM || cw_rd_byte(&r) != FORMAT)
        return CW_EDECODE;
    cw_rd_vc(&r, &fresh.last_seq);
    uint64_t n = cw_rd_varint(&r);
    if (r.bad || n > len)
        return CW_EDECODE;
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        uint64_t klen = cw_rd_varint(&r);
        const uint8_t *key = klen <= CW_FULL_KEY_MAX ? cw_rd_bytes(&r, klen) : NULL;
        uint64_t version = cw_rd_varint(&r);
        uint64_t stamp = cw_rd_varint(&r);
        uint8_t origin = cw_rd_byte(&r);
        struct cw_vclock deps;
        cw_rd_vc(&r, &deps);
        uint64_t vlen = cw_rd_varint(&r);
        const uint8_t *value = vlen <= CW_RAFT_ENTRY_BYTES_MAX ? cw_rd_bytes(&r, vlen) : NULL;
        if (r.bad || key == NULL || value == NULL || klen == 0 || origin >= n_regions ||
            version == 0 || version > at || !cw_full_key_valid(key, (uint32_t)klen) ||
            sm_find(&fresh, key, (uint32_t)klen) != NULL) {
            r.bad = true;
            break;
        }
        sm_set(&fresh, key, (uint32_t)klen, version, stamp, origin, &deps, value, (uint32_t)vlen);
    }
    if (r.bad || r.off != len || fresh.bytes > bytes_max) {
        sm_clear(&fresh);
        return CW_EDECODE;
    }
    sm_clear(m);
    *m = fresh;
    return CW_OK;
}

/* ----------------------------------------------------------------- commands */

static void cmd_encode(const struct cmd *c, struct wbuf *b)
{
    wb_byte(b, TAG_CMD);
    wb_byte(b, FORMAT);
    wb_byte(b, c->op);
    wb_byte(b, c->cond);
    wb_byte(b, c->origin);
    wb_varint(b, c->seq);
    wb_varint(b, c->cond_version);
    wb_varint(b, c->stamp);
    wb_varint(b, c->bytes_max);
    wb_vc(b, &c->deps);
    wb_bytes(b, c->key, c->key_len);
    wb_bytes(b, c->value, c->value_len);
}

static int cmd_decode(struct cmd *c, const uint8_t *p, size_t len, unsigned n_regions)
{
    struct cw_rd r = {p, len, 0, false};
    memset(c, 0, sizeof(*c));
    if (cw_rd_byte(&r) != TAG_CMD || cw_rd_byte(&r) != FORMAT)
        return CW_EDECODE;
    c->op = cw_rd_byte(&r);
    c->cond = cw_rd_byte(&r);
    c->origin = cw_rd_byte(&r);
    c->seq = cw_rd_varint(&r);
    c->cond_version = cw_rd_varint(&r);
    c->stamp = cw_rd_varint(&r);
    c->bytes_max = cw_rd_varint(&r);
    cw_rd_vc(&r, &c->deps);
    uint64_t klen = cw_rd_varint(&r);
    c->key = klen <= CW_FULL_KEY_MAX ? cw_rd_bytes(&r, klen) : NULL;
    uint64_t vlen = cw_rd_varint(&r);
    c->value = vlen <= CW_RAFT_ENTRY_BYTES_MAX ? cw_rd_bytes(&r, vlen) : NULL;
    if (r.bad || r.off != len || c->key == NULL || c->value == NULL)
        return CW_EDECODE;
    c->key_len = (uint32_t)klen;
    c->value_len = (uint32_t)vlen;
    if ((c->op != OP_PUT && c->op != OP_DEL) || c->cond > CW_COND_ABSENT ||
        c->origin >= n_regions || c->seq == 0 || !cw_full_key_valid(c->key, c->key_len) ||
        (c->op == OP_DEL && c->value_len != 0))
        return CW_EDECODE;
    return CW_OK;
}

/* ------------------------------------------------------------------ records */

int cw_strong_decode_hardstate(const uint8_t *data, uint32_t len, struct cw_raft_hardstate *hs)
{
    struct cw_rd r = {data, len, 0, false};
    if (cw_rd_byte(&r) != TAG_HS || cw_rd_byte(&r) != FORMAT)
        return CW_EDECODE;
    hs->term = cw_rd_varint(&r);
    hs->vote = cw_rd_byte(&r);
    hs->commit = cw_rd_varint(&r);
    return r.bad || r.off != len ? CW_EDECODE : CW_OK;
}

static void hs_encode(const struct cw_raft_hardstate *hs, struct wbuf *b)
{
    wb_byte(b, TAG_HS);
    wb_byte(b, FORMAT);
    wb_varint(b, hs->term);
    wb_byte(b, hs->vote);
    wb_varint(b, hs->commit);
}

/* Decodes into e with e->data borrowed from the input. */
static int entry_decode_borrowed(const uint8_t *data, uint32_t len, struct cw_raft_entry *e)
{
    struct cw_rd r = {data, len, 0, false};
    memset(e, 0, sizeof(*e));
    if (cw_rd_byte(&r) != TAG_ENTRY || cw_rd_byte(&r) != FORMAT)
        return CW_EDECODE;
    e->term = cw_rd_varint(&r);
    e->index = cw_rd_varint(&r);
    e->type = cw_rd_byte(&r);
    uint64_t n = cw_rd_varint(&r);
    const uint8_t *p = n <= CW_RAFT_ENTRY_BYTES_MAX ? cw_rd_bytes(&r, n) : NULL;
    if (r.bad || r.off != len || p == NULL || e->term == 0 || e->index == 0 ||
        (e->type != CW_RAFT_ENTRY_NOOP && e->type != CW_RAFT_ENTRY_DATA))
        return CW_EDECODE;
    e->len = (uint32_t)n;
    e->data = (uint8_t *)p;
    return CW_OK;
}

int cw_strong_decode_entry(const uint8_t *data, uint32_t len, struct cw_raft_entry *e)
{
    int rc = entry_decode_borrowed(data, len, e);
    if (rc != CW_OK)
        return rc;
    e->data = dup_bytes(e->data, e->len);
    return CW_OK;
}

static void entry_encode(const struct cw_raft_entry *e, struct wbuf *b)
{
    wb_byte(b, TAG_ENTRY);
    wb_byte(b, FORMAT);
    wb_varint(b, e->term);
    wb_varint(b, e->index);
    wb_byte(b, e->type);
    wb_bytes(b, e->data, e->len);
}

static void snaprec_encode(uint64_t index, uint64_t term, const uint8_t *snap, uint32_t len,
                           struct wbuf *b)
{
    wb_byte(b, TAG_SNAPREC);
    wb_byte(b, FORMAT);
    wb_varint(b, index);
    wb_varint(b, term);
    wb_bytes(b, snap, len);
}

/* The hard ceiling of the strong state: a snapshot must fit one frame, and its
 * encoding of a key can take a little more than the key's accounted bytes (a
 * full context), hence the margin. */
static uint64_t strong_bytes_cap(void)
{
    return CW_RAFT_SNAP_BYTES_MAX - CW_RAFT_SNAP_BYTES_MAX / 8;
}

/* ------------------------------------------------------------ create, free */

void cw_strong_config_defaults(struct cw_strong_config *cfg)
{
    /* Raft's defaults for the fields left zero (cw_raft_config_defaults
     * overwrites a whole config). */
    struct cw_raft_config d;
    cw_raft_config_defaults(&d);
    struct cw_raft_config *r = &cfg->raft;
    if (r->election_min_us == 0)
        r->election_min_us = d.election_min_us;
    if (r->election_max_us == 0)
        r->election_max_us = r->election_min_us * 2 > d.election_max_us ? r->election_min_us * 2
                                                                         : d.election_max_us;
    if (r->heartbeat_us == 0)
        r->heartbeat_us = d.heartbeat_us;
    if (r->max_msg_entries == 0)
        r->max_msg_entries = d.max_msg_entries;
    if (r->max_msg_bytes == 0)
        r->max_msg_bytes = d.max_msg_bytes;
    if (r->max_inflight_msgs == 0)
        r->max_inflight_msgs = d.max_inflight_msgs;
    if (r->max_uncommitted == 0)
        r->max_uncommitted = d.max_uncommitted;
    if (r->max_pending_reads == 0)
        r->max_pending_reads = d.max_pending_reads;
    if (cfg->timeout_us == 0)
        cfg->timeout_us = CW_DEFAULT_STRONG_TIMEOUT_MS * 1000ull;
    if (cfg->pending_max == 0)
        cfg->pending_max = CW_DEFAULT_STRONG_PENDING_MAX;
    if (cfg->bytes_max == 0)
        cfg->bytes_max = CW_DEFAULT_STRONG_BYTES_MAX;
    if (cfg->snapshot_entries == 0)
        cfg->snapshot_entries = CW_DEFAULT_SNAPSHOT_ENTRIES;
    if (cfg->max_value_bytes == 0)
        cfg->max_value_bytes = CW_DEFAULT_VALUE_BYTES_MAX;
}

struct cw_strong *cw_strong_create(const struct cw_strong_config *cfg)
{
    struct cw_strong *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cfg = *cfg;
    cw_strong_config_defaults(&s->cfg);
    if (s->cfg.bytes_max > strong_bytes_cap())
        s->cfg.bytes_max = strong_bytes_cap();
    s->raft = cw_raft_create(&s->cfg.raft);
    if (s->raft == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

static void pending_free(struct pending *p)
{
    free(p->key);
    free(p->cmd);
    memset(p, 0, sizeof(*p));
}

static void replies_free(struct cw_strong *s)
{
    for (size_t i = 0; i < s->n_replies; i++)
        cw_keystate_free(&s->replies[i].state);
    s->n_replies = 0;
}

static void persist_free(struct cw_strong *s)
{
    for (size_t i = 0; i < s->n_persist; i++)
        free(s->persist[i].data);
    s->n_persist = 0;
}

void cw_strong_destroy(struct cw_strong **sp)
{
    struct cw_strong *s = *sp;
    if (s == NULL)
        return;
    if (s->raft_in_ready)
        cw_raft_advance(s->raft);
    for (size_t i = 0; i < s->n_pend; i++)
        pending_free(&s->pend[i]);
    free(s->pend);
    replies_free(s);
    free(s->replies);
    persist_free(s);
    free(s->persist);
    free(s->msgs);
    sm_clear(&s->sm);
    cw_raft_destroy(&s->raft);
    free(s);
    *sp = NULL;
}

/* ------------------------------------------------------------------ restore */

static void seq_seen(struct cw_strong *s, const uint8_t *data, uint32_t len)
{
    struct cmd c;
    if (cmd_decode(&c, data, len, s->cfg.raft.n) == CW_OK && c.origin == s->cfg.raft.id &&
        c.seq > s->seq_last)
        s->seq_last = c.seq;
}

int cw_strong_restore_snapshot(struct cw_strong *s, const uint8_t *data, uint32_t len)
{
    struct cw_rd r = {data, len, 0, false};
    if (cw_rd_byte(&r) != TAG_SNAPREC || cw_rd_byte(&r) != FORMAT)
        return CW_EDECODE;
    uint64_t index = cw_rd_varint(&r);
    uint64_t term = cw_rd_varint(&r);
    uint64_t n = cw_rd_varint(&r);
    const uint8_t *snap = n <= CW_RAFT_SNAP_BYTES_MAX ? cw_rd_bytes(&r, n) : NULL;
    if (r.bad || r.off != len || snap == NULL || index == 0 || term == 0)
        return CW_EDECODE;
    int rc = sm_decode(&s->sm, snap, n, s->cfg.raft.n, index, s->cfg.bytes_max);
    if (rc != CW_OK)
        return rc;
    rc = cw_raft_restore_snapshot(s->raft, index, term, snap, (uint32_t)n);
    if (rc != CW_OK)
        return rc;
    s->applied = index;
    uint64_t mine = s->sm.last_seq.ts[s->cfg.raft.id];
    if (mine > s->seq_last)
        s->seq_last = mine;
    return CW_OK;
}

int cw_strong_restore_hardstate(struct cw_strong *s, const uint8_t *data, uint32_t len)
{
    struct cw_raft_hardstate hs;
    int rc = cw_strong_decode_hardstate(data, len, &hs);
    if (rc != CW_OK)
        return rc;
    return cw_raft_restore_hardstate(s->raft, &hs);
}

int cw_strong_restore_entry(struct cw_strong *s, const uint8_t *data, uint32_t len)
{
    struct cw_raft_entry e;
    int rc = entry_decode_borrowed(data, len, &e);
    if (rc != CW_OK)
        return rc;
    if (e.type == CW_RAFT_ENTRY_DATA)
        seq_seen(s, e.data, e.len);
    return cw_raft_restore_entry(s->raft, &e);
}

/* ---------------------------------------------------------------- replies */

static struct cw_reply *reply_new(struct cw_strong *s, bool is_get, uint64_t req_id, int err)
{
    s->replies = grow(s->replies, &s->cap_replies, s->n_replies + 1, sizeof(*s->replies));
    struct cw_reply *p = &s->replies[s->n_replies++];
    memset(p, 0, sizeof(*p));
    p->kind = is_get ? CW_REPLY_GET : CW_REPLY_PUT;
    p->req_id = req_id;
    p->err = err;
    p->conflict = CW_CONFLICT_LWW;
    cw_keystate_init(&p->state);
    return p;
}

static void reply_err(struct cw_strong *s, bool is_get, uint64_t req_id, int err, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));

static void reply_err(struct cw_strong *s, bool is_get, uint64_t req_id, int err, const char *fmt,
                      ...)
{
    struct cw_reply *p = reply_new(s, is_get, req_id, err);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
    va_end(ap);
    if (err == CW_ETIMEOUT)
        s->stats.timeouts++;
    else if (err == CW_ENOQUORUM)
        s->stats.no_quorum++;
    else if (err == CW_EFULL)
        s->stats.full++;
}

/* How many regions this one hears (itself included), by the failure detector. */
static unsigned heard_regions(const struct cw_strong *s, char *suspects, size_t len)
{
    struct cw_raft_status st;
    cw_raft_get_status(s->raft, (struct cw_now){s->last_real_us, s->last_now_us}, &st);
    unsigned heard = 1;
    size_t off = 0;
    if (len)
        suspects[0] = '\0';
    for (unsigned i = 0; i < s->cfg.raft.n; i++) {
        if (i == s->cfg.raft.id)
            continue;
        if (!st.suspected[i]) {
            heard++;
        } else if (off + 8 < len) {
            off += (size_t)snprintf(suspects + off, len - off, "%s%u", off ? "," : "", i);
        }
    }
    return heard;
}

static void fail_pending(struct cw_strong *s, struct pending *p)
{
    char sus[64];
    unsigned heard = heard_regions(s, sus, sizeof(sus));
    unsigned n = s->cfg.raft.n;
    const char *what = p->is_get ? "read" : "write";
    if (heard <= n / 2)
        reply_err(s, p->is_get, p->req_id, CW_ENOQUORUM,
                  "strong %s: this region hears %u of %u regions (suspected ids: %s); a "
                  "majority is %u",
                  what, heard, n, sus, n / 2 + 1);
    else
        reply_err(s, p->is_get, p->req_id, CW_ETIMEOUT,
                  "strong %s not done within %llu ms%s", what,
                  (unsigned long long)(s->cfg.timeout_us / 1000),
                  p->is_get ? "" : "; it may still be applied");
}

static void serve_get(struct cw_strong *s, const struct pending *p)
{
    struct cw_reply *rp = reply_new(s, true, p->req_id, CW_OK);
    s->stats.gets++;
    const struct sm_key *k = sm_find(&s->sm, p->key, p->key_len);
    if (k == NULL)
        return; /* not found: no versions */
    rp->version = k->version;
    /* The session that reads this joins the writer's context, so its later
     * causal operations wait for what the strong write depended on. */
    rp->seen = k->deps;
    CW_ASSERT(rp->state.cap == 0);
    rp->state.v = calloc(1, sizeof(*rp->state.v));
    CW_ASSERT(rp->state.v != NULL);
    rp->state.n = rp->state.cap = 1;
    struct cw_version *v = &rp->state.v[0];
    v->dot.origin = k->origin;
    v->dot.ts = k->stamp;
    v->value_len = k->value_len;
    v->value = k->value_len ? dup_bytes(k->value, k->value_len) : NULL;
}

/* ----------------------------------------------------------------- pending */

static struct pending *pend_add(struct cw_strong *s)
{
    s->pend = grow(s->pend, &s->cap_pend, s->n_pend + 1, sizeof(*s->pend));
    struct pending *p = &s->pend[s->n_pend++];
    memset(p, 0, sizeof(*p));
    return p;
}

static void pend_remove(struct cw_strong *s, size_t i)
{
    pending_free(&s->pend[i]);
    s->pend[i] = s->pend[s->n_pend - 1];
    s->n_pend--;
}

static struct pending *pend_find(struct cw_strong *s, bool is_get, uint64_t ctx, size_t *at)
{
    for (size_t i = 0; i < s->n_pend; i++)
        if (s->pend[i].is_get == is_get && s->pend[i].ctx == ctx) {
            *at = i;
            return &s->pend[i];
        }
    return NULL;
}

static struct cw_now now_of(const struct cw_strong *s)
{
    struct cw_now n = {s->last_real_us, s->last_now_us};
    return n;
}

static void submit(struct cw_strong *s, struct pending *p)
{
    p->state = PEND_RAFT;
    if (p->is_get)
        cw_raft_read_index(s->raft, now_of(s), p->ctx);
    else
        cw_raft_propose(s->raft, now_of(s), p->ctx, p->cmd, p->cmd_len);
}

static bool full_key(const char *bucket, const uint8_t *key, uint32_t key_len, uint8_t **out,
                     uint32_t *out_len)
{
    size_t bl = strlen(bucket);
    if (bl == 0 || bl > CW_BUCKET_NAME_MAX || key_len > CW_KEY_BYTES_MAX)
        return false;
    uint8_t *fk = malloc(bl + 1 + key_len);
    CW_ASSERT(fk != NULL);
    memcpy(fk, bucket, bl);
    fk[bl] = '/';
    if (key_len)
        memcpy(fk + bl + 1, key, key_len);
    *out = fk;
    *out_len = (uint32_t)(bl + 1 + key_len);
    return true;
}

static void observe(struct cw_strong *s, struct cw_now now)
{
    if (now.mono_us > s->last_now_us)
        s->last_now_us = now.mono_us;
    if (now.real_us > s->last_real_us)
        s->last_real_us = now.real_us;
}

void cw_strong_put(struct cw_strong *s, struct cw_now now, const struct cw_put_req *req)
{
    CW_ASSERT(!s->in_ready);
    observe(s, now);
    int rc = cw_validate_key(req->key, req->key_len);
    if (rc != CW_OK) {
        reply_err(s, false, req->req_id, rc, "key must be 1-%d bytes", CW_KEY_BYTES_MAX);
        return;
    }
    if (!req->tombstone && req->value_len > s->cfg.max_value_bytes) {
        reply_err(s, false, req->req_id, CW_EVALUE, "value of %u bytes; max_value_bytes is %u",
                  req->value_len, s->cfg.max_value_bytes);
        return;
    }
    if (req->cond > CW_COND_ABSENT) {
        reply_err(s, false, req->req_id, CW_EINVAL, "unknown put condition %u", req->cond);
        return;
    }
    if (s->n_pend >= s->cfg.pending_max) {
        reply_err(s, false, req->req_id, CW_EFULL, "%u strong requests in flight (pending_max)",
                  s->cfg.pending_max);
        return;
    }
    struct pending *p = pend_add(s);
    CW_ASSERT(full_key(req->bucket, req->key, req->key_len, &p->key, &p->key_len));
    /* A sequence that grows across restarts: the wall clock, or past the last
     * one this region used or saw in its log. */
    uint64_t seq = s->seq_last + 1;
    if (now.real_us > seq)
        seq = now.real_us;
    s->seq_last = seq;
    struct cmd c = {
        .op = req->tombstone ? OP_DEL : OP_PUT,
        .cond = req->cond,
        .origin = (uint8_t)s->cfg.raft.id,
        .seq = seq,
        .cond_version = req->cond == CW_COND_VERSION ? req->cond_version : 0,
        .stamp = cw_hlc_from_us(now.real_us),
        .bytes_max = s->cfg.bytes_max,
        .deps = req->context,
        .key_len = p->key_len,
        .key = p->key,
        .value_len = req->tombstone ? 0 : req->value_len,
        .value = req->value,
    };
    struct wbuf b = {0};
    cmd_encode(&c, &b);
    if (b.len > CW_RAFT_ENTRY_BYTES_MAX) {
        /* Key, value and context must fit one Raft entry. */
        free(b.p);
        s->n_pend--;
        pending_free(&s->pend[s->n_pend]);
        reply_err(s, false, req->req_id, CW_EVALUE,
                  "a strong write of %u value bytes does not fit one Raft entry (%u bytes with "
                  "key and context)",
                  req->value_len, (unsigned)CW_RAFT_ENTRY_BYTES_MAX);
        return;
    }
    p->is_get = false;
    p->req_id = req->req_id;
    p->ctx = seq;
    p->deadline_us = now.mono_us + s->cfg.timeout_us;
    p->cmd = b.p;
    p->cmd_len = (uint32_t)b.len;
    submit(s, p);
}

void cw_strong_get(struct cw_strong *s, struct cw_now now, const struct cw_get_req *req)
{
    CW_ASSERT(!s->in_ready);
    observe(s, now);
    int rc = cw_validate_key(req->key, req->key_len);
    if (rc != CW_OK) {
        reply_err(s, true, req->req_id, rc, "key must be 1-%d bytes", CW_KEY_BYTES_MAX);
        return;
    }
    if (s->n_pend >= s->cfg.pending_max) {
        reply_err(s, true, req->req_id, CW_EFULL, "%u strong requests in flight (pending_max)",
                  s->cfg.pending_max);
        return;
    }
    struct pending *p = pend_add(s);
    CW_ASSERT(full_key(req->bucket, req->key, req->key_len, &p->key, &p->key_len));
    p->is_get = true;
    p->req_id = req->req_id;
    p->ctx = ++s->read_next;
    p->deadline_us = now.mono_us + s->cfg.timeout_us;
    submit(s, p);
}

/* A leader's snapshot replaces the log and the state machine once the core
 * takes it, which cannot be undone: its bytes must decode to a state this
 * region could hold at its index before the core sees it. Bytes from the
 * network are not trusted to be what a leader's encoder made. */
static bool snap_acceptable(const struct cw_strong *s, const struct cw_raft_msg *m)
{
    if (m->type != CW_RAFT_SNAP)
        return true;
    struct sm tmp;
    memset(&tmp, 0, sizeof(tmp));
    int rc = sm_decode(&tmp, m->snap, m->snap_len, s->cfg.raft.n, m->index, s->cfg.bytes_max);
    sm_clear(&tmp);
    return rc == CW_OK;
}

void cw_strong_recv(struct cw_strong *s, struct cw_now now, const struct cw_raft_msg *m)
{
    CW_ASSERT(!s->in_ready);
    observe(s, now);
    if (!snap_acceptable(s, m)) {
        s->stats.snapshots_refused++;
        return;
    }
    cw_raft_step(s->raft, now, m);
}

void cw_strong_heard(struct cw_strong *s, struct cw_now now, unsigned peer)
{
    CW_ASSERT(!s->in_ready);
    observe(s, now);
    if (peer < s->cfg.raft.n && peer != s->cfg.raft.id)
        cw_raft_heard(s->raft, now, peer);
}

void cw_strong_tick(struct cw_strong *s, struct cw_now now)
{
    CW_ASSERT(!s->in_ready);
    observe(s, now);
    cw_raft_tick(s->raft, now);
    struct cw_raft_status st;
    cw_raft_get_status(s->raft, now, &st);
    for (size_t i = 0; i < s->n_pend;) {
        struct pending *p = &s->pend[i];
        if (now.mono_us >= p->deadline_us) {
            fail_pending(s, p);
            pend_remove(s, i);
            continue;
        }
        /* Dropped before Raft gave it an index (no leader then): try again now
         * that one is known. Safe: a dropped proposal was never appended. */
        if (p->state == PEND_RETRY && st.leader != CW_RAFT_NONE)
            submit(s, p);
        i++;
    }
}

/* ------------------------------------------------------------------- apply */

static void apply_cmd(struct cw_strong *s, uint64_t index, const struct cw_raft_entry *e)
{
    struct cmd c;
    /* Every region decodes the same bytes the same way: a command that does not
     * decode (it passed the proposer's encoder, so only a bug makes one) is
     * skipped everywhere alike. */
    if (cmd_decode(&c, e->data, e->len, s->cfg.raft.n) != CW_OK)
        return;
    if (c.seq <= s->sm.last_seq.ts[c.origin]) {
        /* A duplicate, or an older proposal of this region overtaken by a
         * later one: not applied, here or anywhere, now or later. */
        size_t at;
        struct pending *p =
            c.origin == s->cfg.raft.id ? pend_find(s, false, c.seq, &at) : NULL;
        if (p != NULL) {
            reply_err(s, false, p->req_id, CW_EUNAVAILABLE,
                      "the strong write was overtaken by a later write from this region and "
                      "was not applied; retry it");
            pend_remove(s, at);
        }
        return;
    }
    s->sm.last_seq.ts[c.origin] = c.seq;
    const struct sm_key *k = sm_find(&s->sm, c.key, c.key_len);
    uint64_t cur = k ? k->version : 0;
    int err = CW_OK;
    if (c.cond == CW_COND_VERSION && (k == NULL || cur != c.cond_version))
        err = CW_ECONFLICT;
    else if (c.cond == CW_COND_ABSENT && k != NULL)
        err = CW_ECONFLICT;
    uint64_t grow_by = c.op == OP_PUT ? sizeof(struct sm_key) + c.key_len + c.value_len : 0;
    uint64_t shrink = k ? sm_key_bytes(k) : 0;
    uint64_t limit = c.bytes_max < strong_bytes_cap() ? c.bytes_max : strong_bytes_cap();
    if (err == CW_OK && c.op == OP_PUT && s->sm.bytes - shrink + grow_by > limit)
        err = CW_EFULL;
    if (err == CW_OK) {
        if (c.op == OP_DEL)
            sm_remove(&s->sm, c.key, c.key_len);
        else
            sm_set(&s->sm, c.key, c.key_len, index, c.stamp, c.origin, &c.deps, c.value,
                   c.value_len);
    }
    if (c.origin != s->cfg.raft.id)
        return;
    size_t at;
    struct pending *p = pend_find(s, false, c.seq, &at);
    if (p == NULL)
        return; /* timed out already, or taken before a restart */
    if (err == CW_ECONFLICT) {
        struct cw_reply *rp = reply_new(s, false, p->req_id, err);
        rp->version = cur;
        snprintf(rp->detail, sizeof(rp->detail), "key's version is %llu, expected %s%llu",
                 (unsigned long long)cur, c.cond == CW_COND_ABSENT ? "absent, not " : "",
                 (unsigned long long)(c.cond == CW_COND_ABSENT ? cur : c.cond_version));
        s->stats.conflicts++;
    } else if (err == CW_EFULL) {
        reply_err(s, false, p->req_id, err,
                  "strong state would pass strong_bytes_max (%llu bytes)",
                  (unsigned long long)limit);
    } else {
        struct cw_reply *rp = reply_new(s, false, p->req_id, CW_OK);
        rp->version = index; /* a delete's too: the entry that made the key absent */
        rp->dot.origin = c.origin;
        s->stats.puts++;
    }
    pend_remove(s, at);
}

/* Reads whose index the region has applied: answer them from the map. */
static void serve_ready_reads(struct cw_strong *s)
{
    for (size_t i = 0; i < s->n_pend;) {
        struct pending *p = &s->pend[i];
        if (p->is_get && p->state == PEND_READY && p->read_index <= s->applied) {
            serve_get(s, p);
            pend_remove(s, i);
            continue;
        }
        i++;
    }
}

static void add_persist(struct cw_strong *s, enum cw_persist_kind kind, uint64_t ts,
                        struct wbuf *b)
{
    s->persist = grow(s->persist, &s->cap_persist, s->n_persist + 1, sizeof(*s->persist));
    struct cw_persist *p = &s->persist[s->n_persist++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->ts = ts;
    p->data = b ? b->p : NULL;
    p->data_len = b ? (uint32_t)b->len : 0;
}

static void take_raft_ready(struct cw_strong *s)
{
    const struct cw_raft_ready *rd = cw_raft_ready(s->raft);
    s->raft_in_ready = true;
    /* Persist: the snapshot first (it drops the log up to it), then the new
     * tail (after cutting an overwritten one), then the hard state. */
    if (rd->has_snapshot) {
        struct wbuf b = {0};
        snaprec_encode(rd->snap_index, rd->snap_term, rd->snap, rd->snap_len, &b);
        add_persist(s, CW_PERSIST_RAFT_SNAP, rd->snap_index, &b);
        if (rd->snap_restore) {
            /* A leader's snapshot replaces the whole log: a stored tail past
             * it may belong to another history and must not come back at a
             * restart. */
            add_persist(s, CW_PERSIST_RAFT_TRUNC, 1, NULL);
            int rc = sm_decode(&s->sm, rd->snap, rd->snap_len, s->cfg.raft.n, rd->snap_index,
                               s->cfg.bytes_max);
            /* cw_strong_recv lets only a snapshot that decodes reach the core
             * (snap_acceptable), and the core installs no other. */
            CW_ASSERT(rc == CW_OK);
            s->applied = rd->snap_index;
        }
    }
    if (rd->n_entries > 0) {
        add_persist(s, CW_PERSIST_RAFT_TRUNC, rd->entries[0].index, NULL);
        for (size_t i = 0; i < rd->n_entries; i++) {
            struct wbuf b = {0};
            entry_encode(&rd->entries[i], &b);
            add_persist(s, CW_PERSIST_RAFT_ENTRY, rd->entries[i].index, &b);
        }
    }
    if (rd->hardstate_changed) {
        struct wbuf b = {0};
        hs_encode(&rd->hs, &b);
        add_persist(s, CW_PERSIST_RAFT_HS, 0, &b);
    }
    s->msgs = grow(s->msgs, &s->cap_msgs, rd->n_msgs, sizeof(*s->msgs));
    for (size_t i = 0; i < rd->n_msgs; i++) {
        struct cw_msg *m = &s->msgs[i];
        memset(m, 0, sizeof(*m));
        m->type = CW_MSG_RAFT;
        m->from = rd->msgs[i].from;
        m->to = rd->msgs[i].to;
        m->raft = &rd->msgs[i]; /* borrowed from the Raft core until advance */
    }
    s->ready.msgs = s->msgs;
    s->ready.n_msgs = rd->n_msgs;
    for (size_t i = 0; i < rd->n_committed; i++) {
        const struct cw_raft_entry *e = &rd->committed[i];
        CW_ASSERT(e->index == s->applied + 1);
        if (e->type == CW_RAFT_ENTRY_DATA)
            apply_cmd(s, e->index, e);
        s->applied = e->index;
    }
    for (size_t i = 0; i < rd->n_dropped; i++) {
        size_t at;
        struct pending *p = pend_find(s, false, rd->dropped[i].ctx, &at);
        if (p == NULL)
            continue;
        if (rd->dropped[i].err == CW_EUNAVAILABLE) {
            p->state = PEND_RETRY; /* no leader then: submitted again when one is known */
        } else {
            /* Refused for good (never appended): the client may retry. */
            if (rd->dropped[i].err == CW_EFULL)
                reply_err(s, false, p->req_id, CW_EFULL,
                          "too many strong writes not yet committed (max_uncommitted)");
            else
                reply_err(s, false, p->req_id, rd->dropped[i].err,
                          "the strong write was refused by Raft: %s",
                          cw_strerror(rd->dropped[i].err));
            pend_remove(s, at);
        }
    }
    for (size_t i = 0; i < rd->n_reads; i++) {
        size_t at;
        struct pending *p = pend_find(s, true, rd->reads[i].ctx, &at);
        if (p == NULL)
            continue;
        if (rd->reads[i].err == CW_EFULL) {
            reply_err(s, true, p->req_id, CW_EFULL, "too many strong reads waiting");
            pend_remove(s, at);
        } else if (rd->reads[i].err != CW_OK) {
            p->state = PEND_RETRY;
        } else {
            p->state = PEND_READY;
            p->read_index = rd->reads[i].index;
        }
    }
}

bool cw_strong_has_ready(const struct cw_strong *s)
{
    if (s->n_replies > 0 || cw_raft_has_ready(s->raft))
        return true;
    for (size_t i = 0; i < s->n_pend; i++)
        if (s->pend[i].is_get && s->pend[i].state == PEND_READY &&
            s->pend[i].read_index <= s->applied)
            return true;
    return false;
}

const struct cw_ready *cw_strong_ready(struct cw_strong *s)
{
    CW_ASSERT(!s->in_ready);
    s->in_ready = true;
    memset(&s->ready, 0, sizeof(s->ready));
    if (cw_raft_has_ready(s->raft))
        take_raft_ready(s);
    serve_ready_reads(s);
    s->ready.persist = s->persist;
    s->ready.n_persist = s->n_persist;
    s->ready.replies = s->replies;
    s->ready.n_replies = s->n_replies;
    return &s->ready;
}

void cw_strong_advance(struct cw_strong *s)
{
    CW_ASSERT(s->in_ready);
    s->in_ready = false;
    if (s->raft_in_ready) {
        cw_raft_advance(s->raft);
        s->raft_in_ready = false;
    }
    replies_free(s);
    persist_free(s);
    memset(&s->ready, 0, sizeof(s->ready));
    /* Compact once enough applied entries sit in the log. */
    struct cw_raft_status st;
    cw_raft_get_status(s->raft, now_of(s), &st);
    if (s->applied > st.snap_index && s->applied - st.snap_index >= s->cfg.snapshot_entries) {
        struct wbuf b = {0};
        sm_encode(&s->sm, &b);
        int rc = cw_raft_compact(s->raft, s->applied, b.p, (uint32_t)b.len);
        CW_ASSERT(rc == CW_OK);
        free(b.p);
    }
}

/* ---------------------------------------------------------------- observe */

void cw_strong_get_stats(const struct cw_strong *s, struct cw_strong_stats *st)
{
    *st = s->stats;
    st->keys = s->sm.count;
    st->bytes = s->sm.bytes;
}

const struct cw_raft *cw_strong_raft(const struct cw_strong *s)
{
    return s->raft;
}

uint64_t cw_strong_digest(const struct cw_strong *s)
{
    return s->sm.digest;
}

uint64_t cw_strong_applied(const struct cw_strong *s)
{
    return s->applied;
}

bool cw_strong_check_invariants(const struct cw_strong *s, char *why, size_t why_len)
{
    if (!cw_raft_check_invariants(s->raft, why, why_len))
        return false;
    size_t n = 0;
    uint64_t bytes = 0, digest = 0;
    for (size_t i = 0; i < s->sm.n_slots; i++)
        for (const struct sm_key *k = s->sm.slots[i]; k != NULL; k = k->next) {
            n++;
            bytes += sm_key_bytes(k);
            digest ^= sm_key_digest(k);
            if (k->version == 0 || k->version > s->applied) {
                snprintf(why, why_len, "strong key with version %llu past applied %llu",
                         (unsigned long long)k->version, (unsigned long long)s->applied);
                return false;
            }
        }
    if (n != s->sm.count || bytes != s->sm.bytes || digest != s->sm.digest) {
        snprintf(why, why_len, "strong state accounting: %zu keys counted %zu", n, s->sm.count);
        return false;
    }
    if (s->sm.bytes > strong_bytes_cap()) {
        snprintf(why, why_len, "strong state holds %llu bytes past strong_bytes_max",
                 (unsigned long long)s->sm.bytes);
        return false;
    }
    if (s->n_pend > s->cfg.pending_max) {
        snprintf(why, why_len, "%zu strong requests pending past pending_max", s->n_pend);
        return false;
    }
    return true;
}
