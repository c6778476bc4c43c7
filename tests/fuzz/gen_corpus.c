/*
 * gen_corpus.c - writes the seed corpus of every fuzz target: a few valid
 * inputs each, made by the real encoders, so that mutations start from bytes
 * that reach deep into the decoders. The output is checked in under
 * tests/fuzz/corpus; run this again only when a format changes:
 *
 *   cmake --build BUILD --target fuzz_gen_corpus
 *   BUILD/tests/fuzz/fuzz_gen_corpus tests/fuzz/corpus
 *
 * It overwrites the seed-* files and leaves any other file (crash regressions
 * added by hand) alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <causeway/error.h>

#include <lz4frame.h>

#include "core/codec.h"
#include "core/raft.h"
#include "core/session.h"
#include "core/strong.h"
#include "wire/causeway.pb-c.h"
#include "wire/wire.h"

static const char *out_dir;

static void fail(const char *what)
{
    fprintf(stderr, "gen_corpus: %s failed\n", what);
    exit(1);
}

static void write_seed(const char *target, int n, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", out_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        fail("mkdir");
    snprintf(path, sizeof(path), "%s/%s/seed-%02d", out_dir, target, n);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        fail(path);
}

static void set_record(struct cw_record *r, uint64_t prev, uint64_t ts, const char *key,
                       const char *value, bool tombstone)
{
    memset(r, 0, sizeof(*r));
    r->prev_ts = prev;
    r->consistency = CW_CAUSAL;
    r->conflict = CW_CONFLICT_SIBLINGS;
    r->deps.ts[0] = ts - 3;
    r->deps.ts[2] = 17;
    r->key_len = (uint32_t)strlen(key);
    r->key = (uint8_t *)key;
    r->version.dot.origin = 1;
    r->version.dot.ts = ts;
    r->version.tombstone = tombstone;
    r->version.kctx.ts[1] = prev;
    if (!tombstone) {
        r->version.value_len = (uint32_t)strlen(value);
        r->version.value = (uint8_t *)value;
    }
}

/*
 * fuzz_wire_batch takes a count byte and a serialized RecordBatch: take both out
 * of a real RECORDS frame.
 */
static void write_batch_seed(int n, const uint8_t *frame, size_t len)
{
    Causeway__PeerFrame *pf = causeway__peer_frame__unpack(NULL, len, frame);
    if (pf == NULL)
        fail("causeway__peer_frame__unpack");
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        fail("LZ4F_createDecompressionContext");
    uint8_t out[65536];
    out[0] = (uint8_t)pf->n_records;
    size_t dsize = sizeof(out) - 1, ssize = pf->batch.len;
    size_t rc = LZ4F_decompress(dctx, out + 1, &dsize, pf->batch.data, &ssize, NULL);
    if (rc != 0 || ssize != pf->batch.len)
        fail("LZ4F_decompress");
    write_seed("wire_batch", n, out, 1 + dsize);
    LZ4F_freeDecompressionContext(dctx);
    causeway__peer_frame__free_unpacked(pf, NULL);
}

static void gen_peer(void)
{
    struct cw_record recs[3];
    set_record(&recs[0], 0, 1000, "photos/cat", "a small cat picture", false);
    set_record(&recs[1], 1000, 1010, "photos/dog", NULL, true);
    set_record(&recs[2], 1010, 1020, "feed/post-1", "hello hello hello hello", false);
    recs[2].consistency = CW_EVENTUAL;
    recs[2].conflict = CW_CONFLICT_LWW;
    struct cw_msg m;
    memset(&m, 0, sizeof(m));
    m.from = 1;
    m.to = 0;
    m.applied.ts[0] = 900;
    m.applied.ts[1] = 1020;
    m.received.ts[1] = 1020;

    const struct {
        enum cw_msg_type type;
        uint32_t n;
    } shapes[] = {
        {CW_MSG_RECORDS, 3}, {CW_MSG_RECORDS, 1}, {CW_MSG_HEARTBEAT, 0}, {CW_MSG_NACK, 0}};
    for (int i = 0; i < 4; i++) {
        m.type = shapes[i].type;
        m.n_records = shapes[i].n;
        m.records = shapes[i].n ? recs : NULL;
        m.clock = m.type == CW_MSG_HEARTBEAT ? 5000 : 0;
        m.stream_end = m.type == CW_MSG_HEARTBEAT ? 1020 : 0;
        m.stream_sent = m.type == CW_MSG_HEARTBEAT ? 1010 : 0;
        m.resend_after = m.type == CW_MSG_NACK ? 1000 : 0;
        uint8_t *buf;
        size_t len;
        if (cw_wire_encode_peer(&m, &buf, &len) != CW_OK)
            fail("cw_wire_encode_peer");
        write_seed("wire_peer", i, buf, len);
        if (m.type == CW_MSG_RECORDS)
            write_batch_seed(i, buf, len);
        free(buf);
    }

    /* State transfer (rebuilding a region): a request, a first-and-last chunk
     * with two keys, a REBUILDING heartbeat and a rebuilt region's heartbeat. */
    struct cw_snapkey keys[2];
    for (int k = 0; k < 2; k++) {
        keys[k].key = (uint8_t *)(k ? "photos/dog" : "photos/cat");
        keys[k].key_len = (uint32_t)strlen((const char *)keys[k].key);
        cw_keystate_init(&keys[k].state);
        bool changed;
        if (cw_keystate_apply(&keys[k].state, CW_CONFLICT_LWW, &recs[k].version, 0, &changed) !=
            CW_OK)
            fail("cw_keystate_apply");
    }
    struct cw_msg sm;
    for (int i = 4; i < 8; i++) {
        memset(&sm, 0, sizeof(sm));
        sm.from = 1;
        sm.to = 0;
        sm.applied.ts[1] = 1020;
        if (i == 4) {
            sm.type = CW_MSG_SNAP_REQUEST;
            sm.flags = CW_MSGF_SNAP_FIRST;
        } else if (i == 5) {
            sm.type = CW_MSG_SNAP_CHUNK;
            sm.flags = CW_MSGF_SNAP_FIRST | CW_MSGF_SNAP_DONE;
            sm.n_snapkeys = 2;
            sm.snapkeys = keys;
            sm.snap_next = keys[1].key;
            sm.snap_next_len = keys[1].key_len;
            sm.snap_applied.ts[0] = 900;
            sm.snap_applied.ts[1] = 1020;
            sm.snap_chain.ts[1] = 1010;
            sm.snap_clock = 1020;
        } else {
            sm.type = CW_MSG_HEARTBEAT;
            sm.flags = i == 6 ? CW_MSGF_REBUILDING : 0;
            sm.clock = 5000;
            sm.stream_end = 1020;
            sm.stream_base = i == 7 ? 1010 : 0;
        }
        uint8_t *buf;
        size_t len;
        if (cw_wire_encode_peer(&sm, &buf, &len) != CW_OK)
            fail("cw_wire_encode_peer (snapshot)");
        write_seed("wire_peer", i, buf, len);
        free(buf);
    }
    for (int k = 0; k < 2; k++)
        cw_keystate_free(&keys[k].state);

    /* Strong buckets: a Raft APPEND with a no-op and two commands, a snapshot,
     * and a vote request of a leadership transfer. */
    uint8_t cmd0[] = "put photos/cat", cmd1[] = "del photos/dog", snap[] = "state machine";
    struct cw_raft_entry ents[3] = {
        {.term = 4, .index = 11, .type = CW_RAFT_ENTRY_NOOP},
        {.term = 4, .index = 12, .type = CW_RAFT_ENTRY_DATA, .len = sizeof(cmd0) - 1, .data = cmd0},
        {.term = 4, .index = 13, .type = CW_RAFT_ENTRY_DATA, .len = sizeof(cmd1) - 1, .data = cmd1},
    };
    for (int i = 8; i < 11; i++) {
        struct cw_raft_msg rm = {.from = 1, .to = 0, .term = 4};
        if (i == 8) {
            rm.type = CW_RAFT_APPEND;
            rm.index = 10;
            rm.log_term = 3;
            rm.commit = 9;
            rm.n_entries = 3;
            rm.entries = ents;
        } else if (i == 9) {
            rm.type = CW_RAFT_SNAP;
            rm.index = 10;
            rm.log_term = 3;
            rm.snap_len = sizeof(snap) - 1;
            rm.snap = snap;
        } else {
            rm.type = CW_RAFT_VOTE;
            rm.flags = CW_RAFT_F_TRANSFER;
            rm.index = 13;
            rm.log_term = 4;
        }
        memset(&sm, 0, sizeof(sm));
        sm.type = CW_MSG_RAFT;
        sm.from = 1;
        sm.to = 0;
        sm.raft = &rm;
        uint8_t *buf;
        size_t len;
        if (cw_wire_encode_peer(&sm, &buf, &len) != CW_OK)
            fail("cw_wire_encode_peer (raft)");
        write_seed("wire_peer", i, buf, len);
        free(buf);
    }
}

static void gen_request(void)
{
    struct cw_wire_request r;
    for (int i = 0; i < 5; i++) {
        memset(&r, 0, sizeof(r));
        r.req_id = 100 + (uint64_t)i;
        r.op = (enum cw_wire_op)(CW_OP_PUT + i);
        strcpy(r.bucket, "photos");
        r.key = (uint8_t *)"cat";
        r.key_len = 3;
        r.value = (uint8_t *)"meow meow";
        r.value_len = 9;
        r.context.ts[0] = 1000;
        r.context.ts[2] = 2000;
        r.has_kctx = i != 1;
        r.kctx.ts[0] = 1000;
        strcpy(r.link_from, "us-east");
        strcpy(r.link_to, "eu-west");
        r.link_action = CW_LINK_DELAY;
        r.delay_ms = 120;
        uint8_t *buf;
        size_t len;
        if (cw_wire_encode_request(&r, &buf, &len) != CW_OK)
            fail("cw_wire_encode_request");
        write_seed("wire_request", i, buf, len);
        free(buf);
    }
}

static void gen_response(void)
{
    struct cw_version vs[3];
    memset(vs, 0, sizeof(vs));
    vs[0].dot = (struct cw_dot){0, 1000};
    vs[0].value = (uint8_t *)"first";
    vs[0].value_len = 5;
    vs[1].dot = (struct cw_dot){1, 1001};
    vs[1].value = (uint8_t *)"second";
    vs[1].value_len = 6;
    vs[1].kctx.ts[0] = 900;
    vs[2].dot = (struct cw_dot){2, 1002};
    vs[2].tombstone = true;
    struct cw_wire_status st;
    memset(&st, 0, sizeof(st));
    st.region = 0;
    st.n_regions = 3;
    strcpy(st.regions[0], "us-east");
    strcpy(st.regions[1], "eu-west");
    strcpy(st.regions[2], "ap-south");
    st.durability = CW_WIRE_DURABILITY_WRITE_NOSYNC;
    st.uptime_us = 5000000;
    st.now_us = 1700000000000000ull;
    st.clock = 1700000000000000ull << 12;
    st.applied.ts[0] = st.clock;
    st.applied.ts[1] = st.clock - (40000ull << 12);
    st.stable.ts[0] = st.clock - (110000ull << 12);
    st.buffered = 1;
    st.outbox_total = 2;
    st.keys = 7;
    st.n_peers = 2;
    st.peers[0] = (struct cw_wire_peer_status){.region = 1,
                                               .delay_ms = 40,
                                               .frames_sent = 9,
                                               .outbox_pending = 2,
                                               .visibility = {3, 41000, 42000, 43000, 43500}};
    st.peers[1] = (struct cw_wire_peer_status){.region = 2, .link_cut = true, .queued = 4};
    st.replica.puts = 3;
    st.replica.stamps_refused = 1;
    st.node.requests = 12;
    st.node.commits = 3;
    struct cw_wire_response r;
    for (int i = 0; i < 6; i++) {
        memset(&r, 0, sizeof(r));
        r.req_id = 200 + (uint64_t)i;
        r.op = i < 5 ? (enum cw_wire_op)(CW_OP_PUT + i) : CW_OP_NONE;
        r.origin = 1;
        r.ts = 1001;
        r.kctx_valid = true;
        r.conflict = CW_CONFLICT_SIBLINGS;
        r.kctx.ts[0] = 1000;
        r.kctx.ts[1] = 1001;
        r.seen = r.kctx;
        r.n_versions = 3;
        r.versions = vs;
        r.status = &st;
        if (r.op == CW_OP_NONE) {
            r.err = CW_EDECODE;
            strcpy(r.message, "malformed message or record");
        }
        uint8_t *buf;
        size_t len;
        if (cw_wire_encode_response(&r, &buf, &len) != CW_OK)
            fail("cw_wire_encode_response");
        write_seed("wire_response", i, buf, len);
        free(buf);
    }
}

static void gen_core(void)
{
    struct cw_version vs[3];
    memset(vs, 0, sizeof(vs));
    vs[0].dot = (struct cw_dot){0, 1000};
    vs[0].value = (uint8_t *)"first";
    vs[0].value_len = 5;
    vs[1].dot = (struct cw_dot){1, 1001};
    vs[1].kctx.ts[0] = 1000;
    vs[1].tombstone = true;
    vs[2].dot = (struct cw_dot){15, 1002};
    vs[2].value = (uint8_t *)"third value";
    vs[2].value_len = 11;
    vs[2].kctx.ts[15] = 1;
    for (uint32_t n = 0; n <= 3; n++) {
        struct cw_keystate s = {.n = n, .cap = 3, .v = vs};
        uint8_t *buf;
        uint32_t len;
        if (cw_encode_keystate(&s, &buf, &len) != CW_OK)
            fail("cw_encode_keystate");
        write_seed("keystate", (int)n, buf, len);
        free(buf);
    }

    struct cw_record recs[2];
    set_record(&recs[0], 0, 1000, "photos/cat", "a small cat picture", false);
    set_record(&recs[1], 1000, 1010, "photos/dog", NULL, true);
    for (int i = 0; i < 2; i++) {
        uint8_t *buf;
        uint32_t len;
        if (cw_encode_record(&recs[i], &buf, &len) != CW_OK)
            fail("cw_encode_record");
        write_seed("record", i, buf, len);
        free(buf);
    }

    struct cw_meta metas[2];
    memset(metas, 0, sizeof(metas));
    metas[1].hlc = 0x123456789abcull;
    metas[1].applied.ts[0] = 1000;
    metas[1].applied.ts[2] = 3000;
    metas[1].chain.ts[2] = 2990;
    metas[1].stream_end = 1000;
    for (int i = 0; i < 2; i++) {
        uint8_t *buf;
        uint32_t len;
        if (cw_encode_meta(&metas[i], &buf, &len) != CW_OK)
            fail("cw_encode_meta");
        write_seed("meta", i, buf, len);
        free(buf);
    }

    struct cw_vclock tokens[3];
    memset(tokens, 0, sizeof(tokens));
    tokens[1].ts[0] = 1000;
    tokens[1].ts[2] = 0x1234567;
    for (unsigned i = 0; i < CW_REGIONS_MAX; i++)
        tokens[2].ts[i] = UINT64_MAX - i;
    for (int i = 0; i < 3; i++) {
        char text[CW_TOKEN_MAX];
        cw_token_format(&tokens[i], text);
        write_seed("token", i, (const uint8_t *)text, strlen(text));
    }
}

/*
 * fuzz_strong_store: what a strong part persists, as the store hands it back
 * (see the input format there). A group of one region elects itself and
 * applies puts and deletes; its records are kept as a store keeps them.
 */
struct strong_store {
    uint8_t *snap, *hs;
    uint32_t snap_len, hs_len;
    struct {
        uint64_t index;
        uint8_t *data;
        uint32_t len;
    } log[256];
    size_t n_log;
};

static void strong_persist(struct strong_store *st, const struct cw_persist *p)
{
    switch (p->kind) {
    case CW_PERSIST_RAFT_HS:
        free(st->hs);
        st->hs = malloc(p->data_len);
        memcpy(st->hs, p->data, p->data_len);
        st->hs_len = p->data_len;
        break;
    case CW_PERSIST_RAFT_TRUNC:
        while (st->n_log > 0 && st->log[st->n_log - 1].index >= p->ts)
            free(st->log[--st->n_log].data);
        break;
    case CW_PERSIST_RAFT_ENTRY:
        if (st->n_log == 256)
            fail("a short log");
        st->log[st->n_log].index = p->ts;
        st->log[st->n_log].data = malloc(p->data_len);
        memcpy(st->log[st->n_log].data, p->data, p->data_len);
        st->log[st->n_log++].len = p->data_len;
        break;
    case CW_PERSIST_RAFT_SNAP: {
        free(st->snap);
        st->snap = malloc(p->data_len);
        memcpy(st->snap, p->data, p->data_len);
        st->snap_len = p->data_len;
        size_t cut = 0;
        while (cut < st->n_log && st->log[cut].index <= p->ts)
            free(st->log[cut++].data);
        if (cut > 0) {
            memmove(st->log, st->log + cut, (st->n_log - cut) * sizeof(st->log[0]));
            st->n_log -= cut;
        }
        break;
    }
    default:
        fail("a strong record");
    }
}

static void strong_record(uint8_t *buf, size_t *len, uint8_t kind, const uint8_t *data, uint32_t n)
{
    buf[(*len)++] = kind;
    buf[(*len)++] = (uint8_t)(n & 0xff);
    buf[(*len)++] = (uint8_t)(n >> 8);
    memcpy(buf + *len, data, n);
    *len += n;
}

/* Seed n: `writes` puts (every third a delete) in a group of one region. */
static void strong_seed(int n, int writes, uint8_t config)
{
    struct cw_strong_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.raft.n = 1;
    cfg.raft.preferred = CW_RAFT_NONE;
    cfg.raft.max_msg_entries = 3;
    cfg.raft.max_uncommitted = 8;
    cfg.snapshot_entries = 4;
    cfg.bytes_max = 4096;
    cfg.pending_max = 4;
    struct cw_strong *s = cw_strong_create(&cfg);
    if (s == NULL)
        fail("cw_strong_create");
    struct strong_store st;
    memset(&st, 0, sizeof(st));
    struct cw_now now = {.real_us = 1700000000000000ull, .mono_us = 5000000};
    for (int i = 0; i <= writes + 4; i++) {
        now.real_us += 700000;
        now.mono_us += 700000;
        cw_strong_tick(s, now);
        if (i >= 3 && i < writes + 3) {
            char key[16], value[32];
            snprintf(key, sizeof(key), "k%d", i % 4);
            snprintf(value, sizeof(value), "value %d", i);
            struct cw_put_req p = {.req_id = (uint64_t)i,
                                   .bucket = "strong",
                                   .key = (const uint8_t *)key,
                                   .key_len = (uint32_t)strlen(key),
                                   .value = (const uint8_t *)value,
                                   .value_len = (uint32_t)strlen(value),
                                   .tombstone = i % 3 == 2};
            p.context.ts[0] = (uint64_t)i << 20;
            cw_strong_put(s, now, &p);
        }
        for (int pass = 0; pass < 3 && cw_strong_has_ready(s); pass++) {
            const struct cw_ready *rd = cw_strong_ready(s);
            for (size_t k = 0; k < rd->n_persist; k++)
                strong_persist(&st, &rd->persist[k]);
            cw_strong_advance(s);
        }
    }
    cw_strong_destroy(&s);
    size_t cap = 1 + 3 + st.snap_len + 3 + st.hs_len;
    for (size_t i = 0; i < st.n_log; i++)
        cap += 3 + st.log[i].len;
    uint8_t *buf = malloc(cap);
    size_t len = 0;
    buf[len++] = config;
    if (st.snap != NULL)
        strong_record(buf, &len, 0, st.snap, st.snap_len);
    if (st.hs != NULL)
        strong_record(buf, &len, 1, st.hs, st.hs_len);
    for (size_t i = 0; i < st.n_log; i++)
        strong_record(buf, &len, 2, st.log[i].data, st.log[i].len);
    write_seed("strong_store", n, buf, len);
    free(buf);
    free(st.snap);
    free(st.hs);
    for (size_t i = 0; i < st.n_log; i++)
        free(st.log[i].data);
}

static void gen_strong(void)
{
    strong_seed(0, 2, 0); /* a log, no snapshot */
    strong_seed(1, 7, 0); /* a snapshot and a log after it */
    strong_seed(2, 7, 1); /* the same, restored as region 1 of three */
    strong_seed(3, 0, 1); /* the first term's no-op only */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        fail("mkdir");
    gen_peer();
    gen_request();
    gen_response();
    gen_core();
    gen_strong();
    return 0;
}
