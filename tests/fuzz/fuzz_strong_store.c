/*
 * fuzz_strong_store.c - the strong part's recovery from arbitrary stored bytes:
 * the records strong buckets persist (core/strong.h: CW_PERSIST_RAFT_SNAP, _HS,
 * _ENTRY) as a store would hand them back at start, then the strong part
 * driven for a few rounds over what it accepted.
 *
 * Input: a config byte, then records
 *
 *     record := kind:u8  len:u16 (little-endian)  data:len bytes
 *
 * (a record running past the end takes what is left). kind & 3: 0 the
 * snapshot record, 1 the hard state record, 2 an entry record, 3 nothing
 * (filler). The store keeps one snapshot and one hard state: the last of each
 * kind wins. They are restored in the store's order, snapshot, hard state,
 * then the entries in input order (at most ENTRIES_MAX), through
 * cw_strong_restore_*. The config byte chooses a group of one region (it
 * elects itself, commits and applies the whole log, compacts it) or region 1
 * of three (it replays the committed entries and campaigns).
 *
 * Properties: no crash, leak, sanitizer report or CW_ASSERT; every restore
 * returns CW_OK or CW_EDECODE (then the node would not start: the target stops
 * there); once everything is accepted, the strong part's invariants hold after
 * the restore and after every round; the records it persists decode; and a
 * second recovery from the store as those rounds left it is accepted and
 * rebuilds the same state machine (applied index and digest).
 */
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/strong.h"
#include "fuzz.h"

#define ENTRIES_MAX 64u
#define ROUNDS 6u

struct blob {
    uint64_t index;
    uint8_t *data;
    uint32_t len;
};

struct store {
    struct blob snap, hs;
    struct blob *log;
    size_t n_log, cap_log;
};

static uint8_t *dup(const uint8_t *p, uint32_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    FUZZ_CHECK(q != NULL);
    if (n)
        memcpy(q, p, n);
    return q;
}

static void set_blob(struct blob *b, uint64_t index, const uint8_t *p, uint32_t n)
{
    free(b->data);
    b->index = index;
    b->data = dup(p, n);
    b->len = n;
}

static void log_push(struct store *s, uint64_t index, const uint8_t *p, uint32_t n)
{
    if (s->n_log == s->cap_log) {
        s->cap_log = s->cap_log ? 2 * s->cap_log : 16;
        s->log = realloc(s->log, s->cap_log * sizeof(*s->log));
        FUZZ_CHECK(s->log != NULL);
    }
    s->log[s->n_log] = (struct blob){index, dup(p, n), n};
    s->n_log++;
}

static void log_cut(struct store *s, uint64_t from)
{
    while (s->n_log > 0 && s->log[s->n_log - 1].index >= from)
        free(s->log[--s->n_log].data);
}

static void store_free(struct store *s)
{
    free(s->snap.data);
    free(s->hs.data);
    for (size_t i = 0; i < s->n_log; i++)
        free(s->log[i].data);
    free(s->log);
    memset(s, 0, sizeof(*s));
}

/* A persisted record into the store (src/sim/fixture.c's semantics). */
static void store_apply(struct store *s, const struct cw_persist *p)
{
    switch (p->kind) {
    case CW_PERSIST_RAFT_HS: {
        struct cw_raft_hardstate hs;
        FUZZ_CHECK(cw_strong_decode_hardstate(p->data, p->data_len, &hs) == CW_OK);
        set_blob(&s->hs, 0, p->data, p->data_len);
        break;
    }
    case CW_PERSIST_RAFT_TRUNC:
        log_cut(s, p->ts);
        break;
    case CW_PERSIST_RAFT_ENTRY: {
        struct cw_raft_entry e;
        FUZZ_CHECK(cw_strong_decode_entry(p->data, p->data_len, &e) == CW_OK);
        free(e.data);
        FUZZ_CHECK(e.index == p->ts);
        FUZZ_CHECK(s->n_log == 0 || s->log[s->n_log - 1].index + 1 == p->ts);
        log_push(s, p->ts, p->data, p->data_len);
        break;
    }
    case CW_PERSIST_RAFT_SNAP: {
        set_blob(&s->snap, p->ts, p->data, p->data_len);
        size_t cut = 0;
        while (cut < s->n_log && s->log[cut].index <= p->ts)
            free(s->log[cut++].data);
        if (cut > 0) {
            memmove(s->log, s->log + cut, (s->n_log - cut) * sizeof(*s->log));
            s->n_log -= cut;
        }
        break;
    }
    default:
        FUZZ_CHECK(!"a strong part persisted a record of another kind");
    }
}

static struct cw_strong *create(unsigned n)
{
    struct cw_strong_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.raft.id = n == 1 ? 0 : 1;
    cfg.raft.n = n;
    cfg.raft.preferred = 0xff; /* CW_RAFT_NONE */
    cfg.raft.max_msg_entries = 3;
    cfg.raft.max_uncommitted = 8;
    cfg.snapshot_entries = 4;
    cfg.bytes_max = 4096;
    cfg.pending_max = 4;
    struct cw_strong *s = cw_strong_create(&cfg);
    FUZZ_CHECK(s != NULL);
    return s;
}

static void check(const struct cw_strong *s)
{
    char why[256];
    if (!cw_strong_check_invariants(s, why, sizeof(why))) {
        fprintf(stderr, "strong invariant broken: %s\n", why);
        FUZZ_CHECK(!"strong invariants");
    }
}

static int ok_or_decode(int rc)
{
    FUZZ_CHECK(rc == CW_OK || rc == CW_EDECODE);
    return rc;
}

/* Restores the store into s; false when a record was refused (what says
 * which, for a failure of the second recovery). */
static bool restore(struct cw_strong *s, const struct store *st, bool say)
{
    if (st->snap.data != NULL &&
        ok_or_decode(cw_strong_restore_snapshot(s, st->snap.data, st->snap.len)) != CW_OK) {
        if (say)
            fprintf(stderr, "the snapshot record (%u bytes) was refused\n", st->snap.len);
        return false;
    }
    if (st->hs.data != NULL &&
        ok_or_decode(cw_strong_restore_hardstate(s, st->hs.data, st->hs.len)) != CW_OK) {
        if (say)
            fprintf(stderr, "the hard state record was refused\n");
        return false;
    }
    for (size_t i = 0; i < st->n_log; i++)
        if (ok_or_decode(cw_strong_restore_entry(s, st->log[i].data, st->log[i].len)) != CW_OK) {
            if (say)
                fprintf(stderr, "entry record %zu (index %llu) of %zu was refused\n", i,
                        (unsigned long long)st->log[i].index, st->n_log);
            return false;
        }
    return true;
}

static void round_trip(struct cw_strong *s, struct store *st)
{
    for (int pass = 0; pass < 3 && cw_strong_has_ready(s); pass++) {
        const struct cw_ready *rd = cw_strong_ready(s);
        for (size_t i = 0; i < rd->n_persist; i++)
            store_apply(st, &rd->persist[i]);
        for (size_t i = 0; i < rd->n_msgs; i++) {
            FUZZ_CHECK(rd->msgs[i].raft != NULL);
            FUZZ_CHECK(cw_raft_msg_check(rd->msgs[i].raft, 3) == NULL);
        }
        cw_strong_advance(s);
        check(s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned n = (data[0] & 1) ? 3 : 1;
    data++;
    size--;
    struct store st;
    memset(&st, 0, sizeof(st));
    while (size >= 3) {
        uint8_t kind = data[0] & 3;
        size_t len = (size_t)data[1] | (size_t)data[2] << 8;
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        if (kind == 0)
            set_blob(&st.snap, 0, data, (uint32_t)len);
        else if (kind == 1)
            set_blob(&st.hs, 0, data, (uint32_t)len);
        else if (kind == 2 && st.n_log < ENTRIES_MAX)
            log_push(&st, st.n_log + 1, data, (uint32_t)len);
        data += len;
        size -= len;
    }
    /* The entries' keys in the store are their indexes: the blob's index only
     * orders the cut of store_apply, and a stored log is consecutive. Take the
     * decoded indexes where they decode. */
    for (size_t i = 0; i < st.n_log; i++) {
        struct cw_raft_entry e;
        if (cw_strong_decode_entry(st.log[i].data, st.log[i].len, &e) == CW_OK) {
            st.log[i].index = e.index;
            free(e.data);
        }
    }

    struct cw_strong *s = create(n);
    if (!restore(s, &st, false)) {
        cw_strong_destroy(&s);
        store_free(&st);
        return 0;
    }
    check(s);
    struct cw_now now = {.real_us = 1700000000000000ull, .mono_us = 5000000};
    /* Replay the committed log, campaign (a group of one wins and commits the
     * whole log), a put and a get, compaction. */
    for (unsigned r = 0; r < ROUNDS; r++) {
        now.real_us += 700000;
        now.mono_us += 700000;
        cw_strong_tick(s, now);
        if (r == 2) {
            struct cw_put_req p = {.req_id = 1,
                                   .bucket = "strong",
                                   .key = (const uint8_t *)"k",
                                   .key_len = 1,
                                   .value = (const uint8_t *)"v",
                                   .value_len = 1};
            cw_strong_put(s, now, &p);
            struct cw_get_req g = {
                .req_id = 2, .bucket = "strong", .key = (const uint8_t *)"k", .key_len = 1};
            cw_strong_get(s, now, &g);
        }
        round_trip(s, &st);
    }
    uint64_t applied = cw_strong_applied(s), digest = cw_strong_digest(s);
    cw_strong_destroy(&s);

    /* What those rounds left in the store restores, to the same state. */
    s = create(n);
    FUZZ_CHECK(restore(s, &st, true));
    check(s);
    now.mono_us += 1;
    round_trip(s, &st);
    FUZZ_CHECK(cw_strong_applied(s) == applied);
    FUZZ_CHECK(cw_strong_digest(s) == digest);
    cw_strong_destroy(&s);
    store_free(&st);
    return 0;
}
