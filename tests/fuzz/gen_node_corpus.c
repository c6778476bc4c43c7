/*
 * gen_node_corpus.c - writes the seed corpora of fuzz_node_peer and
 * fuzz_node_client (tests/fuzz/corpus/node_peer, node_client): inputs in the
 * chunk format of node_fixture.h whose frames are real, consistent traffic.
 *
 * For node_peer it runs a small 3-region world: region 1 is the fixture itself
 * (driven through fx_peer_step, exactly as the fuzz target drives it, so the
 * seed replays to the same states), regions 0 and 2 are real nodes with the
 * same configuration. Their frames to region 1 become the seed's chunks, in
 * order or deliberately reordered, dropped or delayed; region 1's frames reach
 * them, so they learn its records, acknowledge them and depend on them. For
 * node_client it plays a client session against the fixture (fx_client_step):
 * contexts and key contexts come from the replies, as the client library
 * builds them.
 *
 *   cmake --build BUILD --target fuzz_gen_node_corpus
 *   BUILD/tests/fuzz/fuzz_gen_node_corpus tests/fuzz/corpus
 *
 * It overwrites the seed-* files of both directories and leaves any other file
 * (inputs found by fuzzing, added by hand) alone. Run it again when the wire
 * format, the fixture or the replication protocol changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <causeway/error.h>

#include <lz4frame.h>

#include "core/hlc.h"
#include "node_fixture.h"
#include "wire/causeway.pb-c.h"
#include "wire/wire.h"

static const char *out_dir;

static void fail(const char *what)
{
    fprintf(stderr, "gen_node_corpus: %s failed\n", what);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        fail("realloc");
    return q;
}

struct buf {
    uint8_t *p;
    size_t n, cap;
};

static void buf_put(struct buf *b, const void *data, size_t len)
{
    if (b->n + len > b->cap) {
        b->cap = (b->n + len) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    if (len)
        memcpy(b->p + b->n, data, len);
    b->n += len;
}

static void write_seed(const char *target, int n, const struct buf *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", out_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        fail("mkdir");
    snprintf(path, sizeof(path), "%s/%s/seed-%02d", out_dir, target, n);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (b->n && fwrite(b->p, 1, b->n, f) != b->n) || fclose(f) != 0)
        fail(path);
    printf("%s: %zu bytes\n", path, b->n);
}

/* ------------------------------------------------------------- frames */

struct frame {
    uint8_t *data;
    size_t len;
};

struct frameq {
    struct frame *v;
    size_t head, n, cap;
};

static void q_push(struct frameq *q, const uint8_t *data, size_t len)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 16;
        q->v = xrealloc(q->v, q->cap * sizeof(*q->v));
    }
    uint8_t *copy = xrealloc(NULL, len);
    memcpy(copy, data, len);
    q->v[q->n++] = (struct frame){copy, len};
}

static bool q_pop(struct frameq *q, struct frame *out)
{
    if (q->head == q->n)
        return false;
    *out = q->v[q->head++];
    return true;
}

static void q_free(struct frameq *q)
{
    for (size_t i = q->head; i < q->n; i++)
        free(q->v[i].data);
    free(q->v);
    memset(q, 0, sizeof(*q));
}

/* The frame with its batch decompressed: the FX_ALT form of node_peer. */
static struct frame to_raw(const struct frame *fr)
{
    Causeway__PeerFrame *pf = causeway__peer_frame__unpack(NULL, fr->len, fr->data);
    if (pf == NULL)
        fail("causeway__peer_frame__unpack");
    struct frame out = {0};
    if (pf->batch.len == 0) {
        out.data = xrealloc(NULL, fr->len);
        memcpy(out.data, fr->data, fr->len);
        out.len = fr->len;
        causeway__peer_frame__free_unpacked(pf, NULL);
        return out;
    }
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        fail("LZ4F_createDecompressionContext");
    LZ4F_frameInfo_t info;
    size_t consumed = pf->batch.len;
    if (LZ4F_isError(LZ4F_getFrameInfo(dctx, &info, pf->batch.data, &consumed)))
        fail("LZ4F_getFrameInfo");
    size_t cap = (size_t)info.contentSize;
    uint8_t *raw = xrealloc(NULL, cap);
    size_t dsize = cap, ssize = pf->batch.len - consumed;
    size_t rc = LZ4F_decompress(dctx, raw, &dsize, pf->batch.data + consumed, &ssize, NULL);
    if (rc != 0 || dsize != cap)
        fail("LZ4F_decompress");
    LZ4F_freeDecompressionContext(dctx);
    ProtobufCBinaryData z = pf->batch;
    pf->batch.data = raw;
    pf->batch.len = cap;
    out.len = causeway__peer_frame__get_packed_size(pf);
    out.data = xrealloc(NULL, out.len);
    causeway__peer_frame__pack(pf, out.data);
    pf->batch = z;
    free(raw);
    causeway__peer_frame__free_unpacked(pf, NULL);
    return out;
}

/* -------------------------------------------------------------- the world */

#define REPLIES_MAX 4096

struct reply_copy {
    bool have;
    int err;
    struct cw_dot dot;
    bool kctx_valid;
    struct cw_vclock kctx, seen;
    uint32_t n_versions;
    uint64_t version; /* strong buckets */
};

struct world {
    struct fx fx;                              /* region 1, the fixture */
    struct cw_node *peer[FX_REGIONS];          /* regions 0 and 2 */
    int64_t skew_us[FX_REGIONS];               /* of each peer's real clock */
    struct frameq to_peer[FX_REGIONS];         /* region 1's frames, per destination */
    struct frameq to_one[FX_REGIONS];          /* peers' frames to region 1, per sender */
    struct frameq p2p[FX_REGIONS];             /* between peers, per destination */
    struct reply_copy peer_reply[FX_REGIONS];  /* each peer's last reply */
    struct reply_copy fx_replies[REPLIES_MAX]; /* region 1's replies, by request id */
    uint64_t peer_req;
    struct buf seed;
    bool client; /* which step function the seed is for */
};

static void hook_frame(void *ctx, unsigned to, const uint8_t *frame, size_t len)
{
    struct world *w = ctx;
    q_push(&w->to_peer[to], frame, len);
}

static void copy_reply(struct reply_copy *c, const struct cw_reply *r)
{
    *c = (struct reply_copy){.have = true,
                             .err = r->err,
                             .dot = r->dot,
                             .kctx_valid = r->kctx_valid,
                             .kctx = r->kctx,
                             .seen = r->seen,
                             .n_versions = r->state.n,
                             .version = r->version};
}

static void hook_reply(void *ctx, const struct cw_reply *r)
{
    struct world *w = ctx;
    if (r->req_id < REPLIES_MAX)
        copy_reply(&w->fx_replies[r->req_id], r);
}

static void world_init(struct world *w, bool client)
{
    memset(w, 0, sizeof(*w));
    w->client = client;
    struct fx_hooks hooks = {.ctx = w, .frame = hook_frame, .reply = hook_reply};
    fx_init(&w->fx, &hooks);
    /* The preload's frames went nowhere: the peers start after it. */
    for (unsigned p = 0; p < FX_REGIONS; p++)
        q_free(&w->to_peer[p]);
    if (client)
        return;
    for (unsigned p = 0; p < FX_REGIONS; p++) {
        if (p == FX_REGION)
            continue;
        struct cw_node_config cfg;
        fx_node_config(&cfg, p);
        w->peer[p] = cw_node_create(&cfg);
        if (w->peer[p] == NULL)
            fail("cw_node_create");
    }
}

static void world_free(struct world *w)
{
    fx_destroy(&w->fx);
    for (unsigned p = 0; p < FX_REGIONS; p++) {
        cw_node_destroy(&w->peer[p]);
        q_free(&w->to_peer[p]);
        q_free(&w->to_one[p]);
        q_free(&w->p2p[p]);
    }
    free(w->seed.p);
}

static struct cw_now peer_now(const struct world *w, unsigned p)
{
    struct cw_now n = w->fx.now;
    n.real_us = (uint64_t)((int64_t)n.real_us + w->skew_us[p]);
    return n;
}

/* Carries out every peer's effects until none is left; frames between peers
 * arrive at once, frames to region 1 wait in to_one. */
static void peers_settle(struct world *w)
{
    for (bool busy = true; busy;) {
        busy = false;
        for (unsigned p = 0; p < FX_REGIONS; p++) {
            struct cw_node *n = w->peer[p];
            if (n == NULL)
                continue;
            struct frame fr;
            while (q_pop(&w->p2p[p], &fr)) {
                struct cw_msg m;
                if (cw_wire_decode_peer(fr.data, fr.len, NULL, &m) != CW_OK)
                    fail("decode between peers");
                cw_node_recv(n, peer_now(w, p), &m);
                cw_msg_free(&m);
                free(fr.data);
            }
            if (!cw_node_has_ready(n))
                continue;
            busy = true;
            const struct cw_ready *rd = cw_node_ready(n);
            for (size_t i = 0; i < rd->n_msgs; i++) {
                const struct cw_msg *m = &rd->msgs[i];
                uint32_t first = 0, next = 0;
                do {
                    uint8_t *buf;
                    size_t len;
                    if (cw_wire_encode_peer_part(m, first, &next, &buf, &len) != CW_OK)
                        fail("cw_wire_encode_peer_part");
                    q_push(m->to == FX_REGION ? &w->to_one[p] : &w->p2p[m->to], buf, len);
                    free(buf);
                    first = next;
                } while (next != 0 && next < m->n_records);
            }
            for (size_t i = 0; i < rd->n_replies; i++)
                copy_reply(&w->peer_reply[p], &rd->replies[i]);
            cw_node_advance(n);
        }
    }
}

/* A write at peer p; returns its dot (the session context of what follows). */
static struct cw_dot peer_write(struct world *w, unsigned p, int op, const char *bucket,
                                const char *key, const char *value, const struct cw_vclock *ctx,
                                const struct cw_vclock *kctx)
{
    struct cw_put_req r = {.req_id = ++w->peer_req,
                           .bucket = bucket,
                           .key = (const uint8_t *)key,
                           .key_len = (uint32_t)strlen(key),
                           .value = (const uint8_t *)value,
                           .value_len = value ? (uint32_t)strlen(value) : 0,
                           .tombstone = op == CW_OP_DEL};
    if (ctx != NULL)
        r.context = *ctx;
    if (kctx != NULL)
        r.kctx = *kctx;
    w->peer_reply[p].have = false;
    cw_node_put(w->peer[p], peer_now(w, p), &r);
    /* A tick sends the record on at once (records leave on ticks and receipts). */
    cw_node_tick(w->peer[p], peer_now(w, p));
    peers_settle(w);
    if (!w->peer_reply[p].have || w->peer_reply[p].err != CW_OK)
        fail("a peer's write");
    return w->peer_reply[p].dot;
}

/* A read at peer p: its key context, for a merging write. */
static struct cw_vclock peer_read_kctx(struct world *w, unsigned p, const char *bucket,
                                       const char *key)
{
    struct cw_get_req r = {.req_id = ++w->peer_req,
                           .bucket = bucket,
                           .key = (const uint8_t *)key,
                           .key_len = (uint32_t)strlen(key)};
    w->peer_reply[p].have = false;
    cw_node_get(w->peer[p], peer_now(w, p), &r);
    peers_settle(w);
    if (!w->peer_reply[p].have || w->peer_reply[p].err != CW_OK)
        fail("a peer's read");
    return w->peer_reply[p].kctx;
}

static void peers_tick(struct world *w)
{
    for (unsigned p = 0; p < FX_REGIONS; p++)
        if (w->peer[p] != NULL)
            cw_node_tick(w->peer[p], peer_now(w, p));
    peers_settle(w);
}

/* Region 1's frames reach the peers; drop (when not SIZE_MAX) is the index of
 * a frame to peer drop_to that the network loses. */
static void deliver_to_peers_dropping(struct world *w, unsigned drop_to, size_t drop)
{
    for (unsigned p = 0; p < FX_REGIONS; p++) {
        if (w->peer[p] == NULL)
            continue;
        struct frame fr;
        for (size_t i = 0; q_pop(&w->to_peer[p], &fr); i++) {
            if (!(p == drop_to && i == drop)) {
                struct cw_msg m;
                if (cw_wire_decode_peer(fr.data, fr.len, NULL, &m) != CW_OK)
                    fail("decode at a peer");
                cw_node_recv(w->peer[p], peer_now(w, p), &m);
                cw_msg_free(&m);
            }
            free(fr.data);
        }
    }
    peers_settle(w);
}

static void deliver_to_peers(struct world *w)
{
    deliver_to_peers_dropping(w, 0, SIZE_MAX);
}

/* One chunk of the seed, run on the fixture at once. */
static void emit(struct world *w, uint8_t ctl, const uint8_t *frame, size_t len)
{
    uint8_t hdr[3] = {ctl, (uint8_t)(len & 0xff), (uint8_t)(len >> 8)};
    if (len > 0xffff)
        fail("a frame over 64 KiB");
    buf_put(&w->seed, hdr, 3);
    buf_put(&w->seed, frame, len);
    if (w->client)
        fx_client_step(&w->fx, ctl, frame, len);
    else
        fx_peer_step(&w->fx, ctl, frame, len);
}

/* Time passes (and region 1 ticks) with no frame. */
static void wait_tick(struct world *w, uint8_t ctl)
{
    emit(w, ctl | FX_TICK, NULL, 0);
}

/* The next frame from peer p to region 1, raw when ctl has FX_ALT. */
static bool emit_from(struct world *w, unsigned p, uint8_t ctl)
{
    struct frame fr;
    if (!q_pop(&w->to_one[p], &fr))
        return false;
    if (ctl & FX_ALT) {
        struct frame raw = to_raw(&fr);
        emit(w, ctl, raw.data, raw.len);
        free(raw.data);
    } else {
        emit(w, ctl, fr.data, fr.len);
    }
    free(fr.data);
    return true;
}

static void emit_all(struct world *w, unsigned p, uint8_t ctl)
{
    while (emit_from(w, p, ctl))
        ;
}

/* The network loses the next RECORDS frame from p to region 1. */
static void drop_next_records(struct world *w, unsigned p)
{
    struct frameq *q = &w->to_one[p];
    for (size_t i = q->head; i < q->n; i++) {
        struct cw_msg m;
        if (cw_wire_decode_peer(q->v[i].data, q->v[i].len, NULL, &m) != CW_OK)
            fail("decode a queued frame");
        bool records = m.type == CW_MSG_RECORDS;
        cw_msg_free(&m);
        if (records) {
            free(q->v[i].data);
            memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof(*q->v));
            q->n--;
            return;
        }
    }
    fail("no RECORDS frame to drop");
}

/* Everyone exchanges everything, rounds times: region 1 ticks, peers tick,
 * frames go both ways. */
static void exchange(struct world *w, int rounds, uint8_t ctl_extra)
{
    for (int i = 0; i < rounds; i++) {
        wait_tick(w, FX_ADV_HEARTBEAT);
        deliver_to_peers(w);
        peers_tick(w);
        emit_all(w, 0, FX_ADV_1MS | ctl_extra);
        emit_all(w, 2, FX_ADV_1MS | ctl_extra);
        deliver_to_peers(w);
    }
}

static void finish_seed(struct world *w, const char *target, int n)
{
    write_seed(target, n, &w->seed);
    /* The fixture checks the seed's end as the target will. */
    fx_finish(&w->fx);
    world_free(w);
}

/* ------------------------------------------------- strong buckets (Raft) */

/* The peer that leads the strong buckets' group, or CW_RAFT_NONE. */
static unsigned peer_leader(const struct world *w)
{
    for (unsigned p = 0; p < FX_REGIONS; p++) {
        if (w->peer[p] == NULL)
            continue;
        struct cw_raft_status rs;
        struct cw_strong_stats ss;
        cw_node_strong_status(w->peer[p], peer_now(w, p), &rs, &ss);
        if (rs.role == CW_RAFT_LEADER)
            return p;
    }
    return CW_RAFT_NONE;
}

static void lose_region1_frames(struct world *w)
{
    for (unsigned p = 0; p < FX_REGIONS; p++)
        q_free(&w->to_peer[p]);
}

/* Regions 0 and 2 elect one of them while the network loses region 1's
 * frames (so it cannot win); their campaign (pre-votes, votes) and the new
 * leader's first appends reach region 1. Returns the leader. */
static unsigned elect_peer(struct world *w)
{
    for (int i = 0; i < 40; i++) {
        wait_tick(w, FX_ADV_NACK);
        lose_region1_frames(w);
        peers_tick(w);
        emit_all(w, 0, FX_ADV_1MS);
        emit_all(w, 2, FX_ADV_1MS);
        lose_region1_frames(w);
        unsigned l = peer_leader(w);
        if (l != CW_RAFT_NONE)
            return l;
    }
    fail("an election among regions 0 and 2");
    return CW_RAFT_NONE;
}

/* A strong write at the leader (committed by regions 0 and 2 alone). */
static void strong_write(struct world *w, unsigned leader, int op, const char *key,
                         const char *value)
{
    peer_write(w, leader, op, fx_bucket_names[4], key, value, NULL, NULL);
}

/* ------------------------------------------------------- node_peer seeds */

/* Peers write in every bucket; 2's writes depend on 0's. */
static void peer_writes(struct world *w, struct cw_dot *d0)
{
    struct cw_vclock ctx = {{0}};
    *d0 = peer_write(w, 0, CW_OP_PUT, "clww", "x", "from region 0", NULL, NULL);
    cw_vc_join_dot(&ctx, d0->origin, d0->ts);
    peer_write(w, 0, CW_OP_PUT, "csib", "a", "a sibling from region 0", NULL, NULL);
    peer_write(w, 0, CW_OP_PUT, "esib", "e", "eventual from 0", NULL, NULL);
    struct cw_dot d2 = peer_write(w, 2, CW_OP_PUT, "clww", "y", "after x", &ctx, NULL);
    cw_vc_join_dot(&ctx, d2.origin, d2.ts);
    peer_write(w, 2, CW_OP_DEL, "clww", "a", NULL, &ctx, NULL);
    peer_write(w, 2, CW_OP_PUT, "elww", "a", "eventual from 2", NULL, NULL);
}

static void seed_peer(int n)
{
    struct world w;
    world_init(&w, false);
    struct cw_dot d0;
    switch (n) {
    case 0: /* hello: peers learn region 1, its outbox drains, acks collect it */
        exchange(&w, 4, 0);
        break;
    case 1: /* records from both peers, in causal order */
    case 6: /* the same with raw batches */
        exchange(&w, 2, 0);
        peer_writes(&w, &d0);
        emit_all(&w, 0, FX_ADV_1MS | (n == 6 ? FX_ALT : 0));
        emit_all(&w, 2, FX_ADV_1MS | FX_TICK | (n == 6 ? FX_ALT : 0));
        exchange(&w, 2, 0);
        break;
    case 2: /* region 2's records first: they wait for region 0's */
        exchange(&w, 1, 0);
        peer_writes(&w, &d0);
        emit_all(&w, 2, FX_ADV_1MS);
        wait_tick(&w, FX_ADV_HEARTBEAT);
        emit_all(&w, 0, FX_ADV_1MS);
        exchange(&w, 2, 0);
        break;
    case 3: /* a lost frame: region 1 asks for a resend */
    case 7: /* the same with raw batches */
    {
        uint8_t alt = n == 7 ? FX_ALT : 0;
        exchange(&w, 1, 0);
        for (int i = 0; i < 3; i++) {
            char key[8];
            snprintf(key, sizeof(key), "k%d", i);
            peer_write(&w, 0, CW_OP_PUT, i == 1 ? "elww" : "clww", key, "one of three", NULL, NULL);
        }
        drop_next_records(&w, 0);
        emit_all(&w, 0, FX_ADV_1MS | alt);
        wait_tick(&w, FX_ADV_NACK);
        deliver_to_peers(&w);
        emit_all(&w, 0, FX_ADV_1MS | alt);
        exchange(&w, 2, 0);
        break;
    }
    case 4: { /* deletes and a merge; stability collects the tombstones */
        exchange(&w, 2, 0);
        struct cw_vclock k = peer_read_kctx(&w, 0, "csib", "a");
        peer_write(&w, 0, CW_OP_DEL, "csib", "a", NULL, &k, &k);
        peer_write(&w, 2, CW_OP_DEL, "clww", "a", NULL, NULL, NULL);
        peer_write(&w, 2, CW_OP_DEL, "esib", "gone", NULL, NULL, NULL);
        exchange(&w, 5, 0);
        break;
    }
    case 5: /* region 1's frame to 0 is lost: region 0 asks for a resend */
        wait_tick(&w, FX_ADV_HEARTBEAT);
        deliver_to_peers(&w);
        peers_tick(&w);
        emit_all(&w, 0, FX_ADV_1MS);
        emit_all(&w, 2, FX_ADV_1MS);
        deliver_to_peers_dropping(&w, 0, 0);
        peers_tick(&w);
        emit_all(&w, 0, FX_ADV_1MS);
        emit_all(&w, 2, FX_ADV_1MS);
        wait_tick(&w, FX_ADV_NACK);
        exchange(&w, 2, 0);
        break;
    case 8: /* clocks: a real clock that jumps back, a crash and a restart */
        exchange(&w, 1, 0);
        peer_writes(&w, &d0);
        emit_all(&w, 0, FX_ADV_1MS | FX_REAL_BACK);
        wait_tick(&w, FX_ADV_20MS | FX_RESTART);
        emit_all(&w, 2, FX_ADV_1MS);
        wait_tick(&w, FX_ADV_AHEAD);
        exchange(&w, 2, FX_REAL_BACK);
        break;
    case 9: /* region 0's clock 12 s ahead: refused until region 1 catches up */
        w.skew_us[0] = 12000000;
        exchange(&w, 1, 0);
        peer_write(&w, 0, CW_OP_PUT, "clww", "future", "from the future", NULL, NULL);
        emit_all(&w, 0, FX_ADV_1MS);
        /* Region 0's clock is set right; its stamps stay ahead until time catches up. */
        w.skew_us[0] = 0;
        wait_tick(&w, FX_ADV_20MS);
        exchange(&w, 1, 0);
        wait_tick(&w, FX_ADV_AHEAD);
        exchange(&w, 2, 0);
        break;
    case 10: /* one round for many frames (FX_HOLD) */
        exchange(&w, 1, 0);
        peer_writes(&w, &d0);
        emit_all(&w, 0, FX_ADV_1US | FX_HOLD);
        emit_all(&w, 2, FX_ADV_1US | FX_HOLD | FX_TICK);
        wait_tick(&w, FX_ADV_1MS);
        exchange(&w, 1, FX_HOLD);
        break;
    case 11: { /* more waiting records than the dependency buffer holds */
        exchange(&w, 1, 0);
        struct cw_vclock ctx = {{0}};
        struct cw_dot d = peer_write(&w, 0, CW_OP_PUT, "csib", "base", "first", NULL, NULL);
        cw_vc_join_dot(&ctx, d.origin, d.ts);
        for (int i = 0; i < 9; i++) {
            char key[8];
            snprintf(key, sizeof(key), "d%d", i);
            d = peer_write(&w, 2, CW_OP_PUT, "clww", key, "depends on base", &ctx, NULL);
        }
        emit_all(&w, 2, FX_ADV_1MS);
        emit_all(&w, 0, FX_ADV_1MS);
        exchange(&w, 3, 0);
        break;
    }
    case 12: /* strong buckets: an election (pre-votes, votes), then region 1 joins */
        exchange(&w, 1, 0);
        elect_peer(&w);
        exchange(&w, 3, 0);
        break;
    case 13: { /* strong writes (appends of encoded commands) reach region 1 */
        exchange(&w, 1, 0);
        unsigned l = elect_peer(&w);
        exchange(&w, 2, 0);
        strong_write(&w, l, CW_OP_PUT, "k", "strong one");
        strong_write(&w, l, CW_OP_PUT, "j", "strong two");
        exchange(&w, 1, 0);
        strong_write(&w, l, CW_OP_DEL, "k", NULL);
        strong_write(&w, l, CW_OP_PUT, "j", "strong three");
        exchange(&w, 2, FX_TICK);
        wait_tick(&w, FX_ADV_20MS | FX_RESTART);
        exchange(&w, 2, 0);
        break;
    }
    case 14: { /* region 1 cut off while the log is compacted: it gets a snapshot */
        exchange(&w, 1, 0);
        unsigned l = elect_peer(&w);
        for (int i = 0; i < 2 * (int)FX_SNAPSHOT_ENTRIES + 1; i++) {
            char key[8];
            snprintf(key, sizeof(key), "s%d", i % 3);
            strong_write(&w, l, i % 4 == 3 ? CW_OP_DEL : CW_OP_PUT, key,
                         i % 4 == 3 ? NULL : "compacted away");
            lose_region1_frames(&w);
            q_free(&w.to_one[0]);
            q_free(&w.to_one[2]);
        }
        exchange(&w, 4, 0);
        strong_write(&w, l, CW_OP_PUT, "after", "the snapshot");
        exchange(&w, 2, 0);
        wait_tick(&w, FX_ADV_1MS | FX_RESTART);
        exchange(&w, 1, 0);
        break;
    }
    default:
        fail("seed number");
    }
    finish_seed(&w, "node_peer", n);
}

/* ----------------------------------------------------- node_client seeds */

struct session {
    struct cw_vclock ctx;
    uint64_t client_id;
};

/* One request frame; returns the fixture's id for it (to find the reply). */
static uint64_t request_cond(struct world *w, struct session *s, uint8_t ctl, int op,
                             const char *bucket, const char *key, const char *value,
                             const struct cw_vclock *kctx, uint8_t cond, uint64_t cond_version)
{
    struct cw_wire_request r;
    memset(&r, 0, sizeof(r));
    r.op = (enum cw_wire_op)op;
    r.req_id = ++s->client_id;
    snprintf(r.bucket, sizeof(r.bucket), "%s", bucket ? bucket : "");
    if (key != NULL) {
        r.key = (uint8_t *)key;
        r.key_len = (uint32_t)strlen(key);
    }
    if (value != NULL) {
        r.value = (uint8_t *)value;
        r.value_len = (uint32_t)strlen(value);
    }
    r.context = s->ctx;
    if (kctx != NULL) {
        r.has_kctx = true;
        r.kctx = *kctx;
    }
    r.cond = cond;
    r.cond_version = cond_version;
    if (op == CW_OP_LINK) {
        snprintf(r.link_from, sizeof(r.link_from), "us-east");
        snprintf(r.link_to, sizeof(r.link_to), "eu-west");
        r.link_action = CW_LINK_CUT;
    }
    uint8_t *buf;
    size_t len;
    if (cw_wire_encode_request(&r, &buf, &len) != CW_OK)
        fail("cw_wire_encode_request");
    uint64_t id = fx_next_id(&w->fx);
    emit(w, ctl, buf, len);
    free(buf);
    /* The client session joins what the reply saw. */
    const struct reply_copy *c = id < REPLIES_MAX ? &w->fx_replies[id] : NULL;
    if (c != NULL && c->have && c->err == CW_OK)
        cw_vc_join(&s->ctx, &c->seen);
    return id;
}

static uint64_t request(struct world *w, struct session *s, uint8_t ctl, int op, const char *bucket,
                        const char *key, const char *value, const struct cw_vclock *kctx)
{
    return request_cond(w, s, ctl, op, bucket, key, value, kctx, CW_COND_NONE, 0);
}

static const struct reply_copy *reply_of(const struct world *w, uint64_t id)
{
    if (id >= REPLIES_MAX || !w->fx_replies[id].have)
        fail("a reply the seed needs");
    return &w->fx_replies[id];
}

/* Region 1 campaigns until it leads the strong buckets' group (the client
 * target's honest peers vote for it) and has committed its first entry. */
static void client_lead(struct world *w)
{
    for (int i = 0; i < 40; i++) {
        struct cw_raft_status rs;
        struct cw_strong_stats ss;
        cw_node_strong_status(w->fx.node, w->fx.now, &rs, &ss);
        if (rs.role == CW_RAFT_LEADER && rs.commit >= rs.last_index)
            return;
        wait_tick(w, (rs.role == CW_RAFT_FOLLOWER ? FX_ADV_NACK : FX_ADV_1MS) | FX_ALT);
    }
    fail("region 1 leading with the honest peers");
}

static void seed_client(int n)
{
    struct world w;
    world_init(&w, true);
    struct session s = {{{0}}, 0};
    const uint8_t now = FX_ADV_1MS;
    switch (n) {
    case 0: /* every op on every bucket, and the daemon's own ops */
        for (int b = 0; b < 4; b++) {
            request(&w, &s, now, CW_OP_PUT, fx_bucket_names[b], "k", "value", NULL);
            /* Idle peers acknowledge: the outbox empties. */
            request(&w, &s, now | FX_ALT, CW_OP_GET, fx_bucket_names[b], "k", NULL, NULL);
            request(&w, &s, now, CW_OP_DEL, fx_bucket_names[b], "k", NULL, NULL);
            request(&w, &s, now, CW_OP_GET, fx_bucket_names[b], "a", NULL, NULL);
        }
        request(&w, &s, now, CW_OP_STATUS, NULL, NULL, NULL, NULL);
        request(&w, &s, now, CW_OP_LINK, NULL, NULL, NULL, NULL);
        break;
    case 1: { /* a session: siblings, a read, a merge with its key context, a delete */
        request(&w, &s, now, CW_OP_PUT, "csib", "m", "left", NULL);
        struct session other = {{{0}}, 100};
        request(&w, &other, now, CW_OP_PUT, "csib", "m", "right", NULL);
        uint64_t g = request(&w, &s, now, CW_OP_GET, "csib", "m", NULL, NULL);
        struct cw_vclock k = reply_of(&w, g)->kctx;
        uint64_t p = request(&w, &s, now, CW_OP_PUT, "csib", "m", "merged", &k);
        k = reply_of(&w, p)->kctx;
        request(&w, &s, now, CW_OP_GET, "csib", "m", NULL, NULL);
        request(&w, &s, now, CW_OP_DEL, "csib", "m", NULL, &k);
        request(&w, &s, now | FX_ALT, CW_OP_PUT, "clww", "m", "lww", NULL);
        request(&w, &s, now, CW_OP_GET, "clww", "m", NULL, NULL);
        g = request(&w, &s, now, CW_OP_GET, "esib", "a", NULL, NULL);
        k = reply_of(&w, g)->kctx;
        request(&w, &s, now, CW_OP_PUT, "esib", "a", "resolved", &k);
        break;
    }
    case 2: { /* requests waiting for regions 0 and 2; heartbeats release one */
        s.ctx.ts[0] = cw_hlc_from_us(w.fx.now.real_us + 100000);
        request(&w, &s, now, CW_OP_GET, "clww", "a", NULL, NULL);
        request(&w, &s, now, CW_OP_PUT, "csib", "z", "after region 0", NULL);
        struct session late = {{{0}}, 200};
        late.ctx.ts[2] = cw_hlc_from_us(w.fx.now.real_us + 5000000);
        request(&w, &late, now, CW_OP_GET, "clww", "b", NULL, NULL);
        request(&w, &s, FX_ADV_NACK | FX_ALT | FX_TICK, CW_OP_GET, "elww", "a", NULL, NULL);
        wait_tick(&w, FX_ADV_WAIT);
        request(&w, &late, now | FX_ALT, CW_OP_GET, "clww", "b", NULL, NULL);
        break;
    }
    case 3: { /* every refusal */
        char big[FX_MAX_VALUE + 40];
        memset(big, 'v', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        request(&w, &s, now, CW_OP_PUT, "Bad!", "k", "v", NULL);
        request(&w, &s, now, CW_OP_PUT, "nope", "k", "v", NULL);
        request(&w, &s, now, CW_OP_GET, "strong", "k", NULL, NULL);
        request(&w, &s, now, CW_OP_PUT, "clww", "", "v", NULL);
        request(&w, &s, now, CW_OP_PUT, "clww", "k", big, NULL);
        struct session odd = {{{0}}, 300};
        odd.ctx.ts[5] = 1;
        request(&w, &odd, now, CW_OP_GET, "clww", "k", NULL, NULL);
        struct cw_vclock ahead = {{0}};
        ahead.ts[0] = cw_hlc_from_us(w.fx.now.real_us + 3 * FX_AHEAD_US);
        request(&w, &s, now, CW_OP_PUT, "csib", "k", "v", &ahead);
        for (int i = 0; i < 4; i++) /* over max_siblings */
            request(&w, &odd, now, CW_OP_PUT, "esib", "many", "one more", NULL);
        struct session wait = {{{0}}, 400};
        wait.ctx.ts[2] = cw_hlc_from_us(w.fx.now.real_us + 500000);
        for (int i = 0; i < 5; i++) /* over waiting_max */
            request(&w, &wait, now | FX_HOLD, CW_OP_GET, "clww", "w", NULL, NULL);
        for (int i = 0; i < 10; i++) { /* over outbox_max */
            char key[8];
            snprintf(key, sizeof(key), "o%d", i);
            request(&w, &s, now, CW_OP_PUT, "elww", key, "fills the outbox", NULL);
        }
        break;
    }
    case 4: /* clocks: jumps back, holds, a crash, and heartbeats after it */
        request(&w, &s, now, CW_OP_PUT, "clww", "t", "before", NULL);
        request(&w, &s, now | FX_REAL_BACK, CW_OP_PUT, "clww", "t", "after a jump back", NULL);
        request(&w, &s, now | FX_HOLD, CW_OP_GET, "clww", "t", NULL, NULL);
        request(&w, &s, now | FX_RESTART, CW_OP_PUT, "csib", "t", "crash after this", NULL);
        request(&w, &s, FX_ADV_HEARTBEAT | FX_TICK | FX_ALT, CW_OP_GET, "clww", "t", NULL, NULL);
        request(&w, &s, FX_ADV_AHEAD | FX_TICK, CW_OP_PUT, "clww", "t", "much later", NULL);
        break;
    case 5: /* deletes, then stability collects the tombstones */
        request(&w, &s, now, CW_OP_DEL, "clww", "a", NULL, NULL);
        request(&w, &s, now, CW_OP_DEL, "elww", "a", NULL, NULL);
        for (int i = 0; i < 4; i++)
            wait_tick(&w, FX_ADV_HEARTBEAT | FX_ALT);
        request(&w, &s, now, CW_OP_GET, "clww", "a", NULL, NULL);
        request(&w, &s, now, CW_OP_PUT, "clww", "a", "again", NULL);
        break;
    case 6: { /* strong buckets: region 1 leads with the honest peers' votes */
        const char *sb = fx_bucket_names[4];
        client_lead(&w);
        const uint8_t alt = FX_ADV_1MS | FX_ALT | FX_TICK;
        uint64_t p = request(&w, &s, alt, CW_OP_PUT, sb, "r", "first", NULL);
        wait_tick(&w, alt);
        uint64_t v = reply_of(&w, p)->version;
        request(&w, &s, alt, CW_OP_GET, sb, "r", NULL, NULL);
        wait_tick(&w, alt);
        /* Conditions: a stale version and an absent key fail, the right one passes. */
        request_cond(&w, &s, alt, CW_OP_PUT, sb, "r", "stale", NULL, CW_COND_VERSION, v + 100);
        request_cond(&w, &s, alt, CW_OP_PUT, sb, "r", "absent?", NULL, CW_COND_ABSENT, 0);
        request_cond(&w, &s, alt, CW_OP_PUT, sb, "r", "second", NULL, CW_COND_VERSION, v);
        request_cond(&w, &s, alt, CW_OP_PUT, sb, "new", "absent", NULL, CW_COND_ABSENT, 0);
        wait_tick(&w, alt);
        request(&w, &s, alt, CW_OP_DEL, sb, "new", NULL, NULL);
        request(&w, &s, alt, CW_OP_GET, sb, "new", NULL, NULL);
        wait_tick(&w, alt);
        /* Enough writes to compact the log and fill the state machine; a crash
         * restores the snapshot and replays the log after it. */
        char big[FX_MAX_VALUE];
        memset(big, 'b', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        for (int i = 0; i < 12; i++) {
            char key[8];
            snprintf(key, sizeof(key), "f%d", i);
            request(&w, &s, alt, CW_OP_PUT, sb, key, big, NULL);
            if (i == 5) {
                wait_tick(&w, alt | FX_RESTART);
                client_lead(&w);
            }
        }
        for (int i = 0; i < 4; i++)
            wait_tick(&w, alt);
        request(&w, &s, alt, CW_OP_GET, sb, "f3", NULL, NULL);
        wait_tick(&w, alt);
        wait_tick(&w, FX_ADV_WAIT | FX_TICK);
        break;
    }
    default:
        fail("seed number");
    }
    finish_seed(&w, "node_client", n);
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
    for (int n = 0; n <= 14; n++)
        seed_peer(n);
    for (int n = 0; n <= 6; n++)
        seed_client(n);
    return 0;
}
