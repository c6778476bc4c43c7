/*
 * raft.c - the Raft consensus core (core/raft.h).
 *
 * Shaped like etcd raft: every input (step, tick, propose, read_index,
 * transfer, heard) changes the state and queues effects; cw_raft_ready hands
 * them out as one set and cw_raft_advance retires it. Time is only the
 * mono_us of the inputs and randomness only the config's generator, so a
 * simulated run replays from its seed.
 *
 * The log holds the entries (snap_index, last]: log[i] has index
 * snap_index + 1 + i. Entries stay in memory at least until applied and
 * compacted, so the ready's entries and committed sets point into it (the
 * log is not touched between cw_raft_ready and cw_raft_advance).
 */
#include "core/raft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

#include "core/cw_assert.h"

/* What a per-follower progress is doing, as in etcd's tracker. */
enum pr_state {
    PR_PROBE = 0,     /* one APPEND at a time until the follower's log matches */
    PR_REPLICATE = 1, /* stream APPENDs, at most max_inflight_msgs unacknowledged */
    PR_SNAPSHOT = 2,  /* a snapshot is on its way; wait for its acknowledgement */
};

#define INFLIGHT_HARD_MAX 4096u

struct progress {
    uint64_t next, match;
    enum pr_state state;
    bool paused;           /* probe: an APPEND is out, wait for an answer */
    uint64_t pending_snap; /* snapshot state: the index sent */
    uint64_t snap_sent_us; /* snapshot state: when (resent after election_min_us) */
    uint64_t *inflight;    /* replicate: last index of each unacknowledged APPEND (ring) */
    uint32_t in_start, in_count;
};

/* A read the leader placed: released when a majority acked round `round`. */
struct lread {
    uint64_t ctx;
    uint64_t index;
    uint64_t round; /* 0: waiting for the first commit of the leader's term */
    unsigned from;  /* the region that asked (self or a follower) */
};

/* A read a follower asked the leader to place. */
struct fread {
    uint64_t ctx;
    uint64_t deadline_us;
};

struct cw_raft {
    struct cw_raft_config cfg;
    uint64_t rand_state; /* splitmix64 when cfg.rand.next is NULL */
    unsigned quorum;

    /* Hard state and role. */
    enum cw_raft_role role;
    uint64_t term;
    unsigned vote;
    unsigned leader;
    uint64_t commit, applied;

    /* The log after the snapshot. */
    struct cw_raft_entry *log;
    size_t n_log, cap_log;
    uint64_t snap_index, snap_term;
    uint8_t *snap;
    uint32_t snap_len;

    /* Timers (mono_us). */
    uint64_t now_us;
    bool restored; /* recovery over (the first input, ready or compaction) */
    bool started;  /* an input came: the election timer runs */
    uint64_t election_deadline_us;
    uint64_t heartbeat_due_us;
    uint64_t leader_heard_us;  /* last APPEND/HEARTBEAT/SNAP from the current leader */
    uint64_t became_leader_us; /* check-quorum waits one election_min_us after it */
    uint64_t last_heard_us[CW_REGIONS_MAX];

    /* Elections. */
    bool responded[CW_REGIONS_MAX], granted[CW_REGIONS_MAX];

    /* Leader. */
    struct progress pr[CW_REGIONS_MAX];
    unsigned transfer_to; /* CW_RAFT_NONE or the region being handed the lead */
    bool transfer_sent;   /* TIMEOUT_NOW already sent for this transfer */
    uint64_t transfer_deadline_us;
    uint64_t last_auto_transfer_us;
    bool auto_transferred; /* last_auto_transfer_us is set */

    /* Read index. read_round only grows (every leadership of this core), so an
     * ack of an old round never counts for a newer one. */
    uint64_t read_round;
    bool round_wanted; /* a read joined the next round: send it at the end of the input */
    uint64_t acked[CW_REGIONS_MAX];
    struct lread *lreads;
    size_t n_lreads, cap_lreads;
    struct fread *freads;
    size_t n_freads, cap_freads;

    /* Effects until the next ready. */
    struct cw_raft_hardstate prev_hs; /* as last handed out (or restored) */
    uint64_t unstable_from;           /* first index not yet handed out to persist */
    bool snap_pending, snap_pending_restore;
    struct cw_raft_msg *msgs;
    size_t n_msgs, cap_msgs;
    struct cw_raft_read *reads;
    size_t n_reads, cap_reads;
    struct cw_raft_dropped *dropped;
    size_t n_dropped, cap_dropped;

    bool in_ready;
    struct cw_raft_ready rd;
    uint64_t rd_commit, rd_last;

    struct cw_raft_stats stats;
};

/* ---- helpers ---------------------------------------------------------- */

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            size_t c_ = (cap) ? (cap)*2 : 8;                                                       \
            void *p_ = realloc((arr), c_ * sizeof(*(arr)));                                        \
            CW_ASSERT(p_ != NULL); /* out of memory: stop, recover from the store */               \
            (arr) = p_;                                                                            \
            (cap) = c_;                                                                            \
        }                                                                                          \
    } while (0)

static uint64_t draw(struct cw_raft *r)
{
    if (r->cfg.rand.next != NULL)
        return r->cfg.rand.next(r->cfg.rand.ctx);
    uint64_t z = (r->rand_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t last_index(const struct cw_raft *r)
{
    return r->snap_index + r->n_log;
}

static uint64_t term_at(const struct cw_raft *r, uint64_t index)
{
    if (index == r->snap_index)
        return r->snap_term;
    if (index < r->snap_index || index > last_index(r))
        return 0;
    return r->log[index - r->snap_index - 1].term;
}

static uint64_t last_term(const struct cw_raft *r)
{
    return term_at(r, last_index(r));
}

static struct cw_raft_entry *entry(struct cw_raft *r, uint64_t index)
{
    CW_ASSERT(index > r->snap_index);
    CW_ASSERT(index <= last_index(r));
    return &r->log[index - r->snap_index - 1];
}

static void entry_copy(struct cw_raft_entry *dst, const struct cw_raft_entry *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->len > 0) {
        dst->data = malloc(src->len);
        CW_ASSERT(dst->data != NULL);
        memcpy(dst->data, src->data, src->len);
    }
}

static void log_append(struct cw_raft *r, const struct cw_raft_entry *e)
{
    CW_ASSERT(e->index == last_index(r) + 1);
    CW_ASSERT(e->term >= last_term(r));
    GROW(r->log, r->n_log, r->cap_log);
    entry_copy(&r->log[r->n_log], e);
    r->n_log++;
}

/* Drops entries >= from (a conflicting tail). Never below commit. */
static void log_truncate(struct cw_raft *r, uint64_t from)
{
    CW_ASSERT(from > r->commit);
    CW_ASSERT(from > r->snap_index);
    while (last_index(r) >= from) {
        free(r->log[r->n_log - 1].data);
        r->n_log--;
    }
    if (r->unstable_from > from)
        r->unstable_from = from;
}

/* Drops entries <= upto (covered by a snapshot). */
static void log_drop_prefix(struct cw_raft *r, uint64_t upto)
{
    size_t k = 0;
    while (k < r->n_log && r->log[k].index <= upto) {
        free(r->log[k].data);
        k++;
    }
    if (k > 0 && k < r->n_log)
        memmove(r->log, r->log + k, (r->n_log - k) * sizeof(*r->log));
    r->n_log -= k;
}

static void log_clear(struct cw_raft *r)
{
    for (size_t i = 0; i < r->n_log; i++)
        free(r->log[i].data);
    r->n_log = 0;
}

static void set_snap_bytes(struct cw_raft *r, const uint8_t *snap, uint32_t len)
{
    free(r->snap);
    r->snap = NULL;
    r->snap_len = 0;
    if (len > 0) {
        r->snap = malloc(len);
        CW_ASSERT(r->snap != NULL);
        memcpy(r->snap, snap, len);
        r->snap_len = len;
    }
}

/* Queues m (shallow: it takes what m owns). from and, when unset, term are
 * filled in here. */
static void send(struct cw_raft *r, struct cw_raft_msg *m)
{
    CW_ASSERT(m->to < r->cfg.n);
    CW_ASSERT(m->to != r->cfg.id);
    m->from = (uint8_t)r->cfg.id;
    if (m->term == 0)
        m->term = r->term;
    GROW(r->msgs, r->n_msgs, r->cap_msgs);
    r->msgs[r->n_msgs++] = *m;
}

static void release_read(struct cw_raft *r, uint64_t ctx, uint64_t index, int err)
{
    GROW(r->reads, r->n_reads, r->cap_reads);
    r->reads[r->n_reads].ctx = ctx;
    r->reads[r->n_reads].index = index;
    r->reads[r->n_reads].err = err;
    r->n_reads++;
}

static void drop_proposal(struct cw_raft *r, uint64_t ctx, int err)
{
    GROW(r->dropped, r->n_dropped, r->cap_dropped);
    r->dropped[r->n_dropped].ctx = ctx;
    r->dropped[r->n_dropped].err = err;
    r->n_dropped++;
}

static void reset_election_timer(struct cw_raft *r)
{
    uint64_t span = r->cfg.election_max_us - r->cfg.election_min_us;
    uint64_t jitter = span > 0 ? draw(r) % span : 0;
    r->election_deadline_us = r->now_us + r->cfg.election_min_us + jitter;
}

static bool in_transfer(const struct cw_raft *r)
{
    return r->transfer_to != CW_RAFT_NONE && r->now_us < r->transfer_deadline_us;
}

/* ---- reads ------------------------------------------------------------ */

/* Answers a read the leader placed for `from` (itself or a follower). */
static void answer_lread(struct cw_raft *r, const struct lread *lr, int err)
{
    if (lr->from == r->cfg.id) {
        release_read(r, lr->ctx, lr->index, err);
        return;
    }
    struct cw_raft_msg m = {0};
    m.type = CW_RAFT_READ_INDEX_RESP;
    m.to = (uint8_t)lr->from;
    m.ctx = lr->ctx;
    m.index = lr->index;
    m.reject = err != CW_OK;
    send(r, &m);
}

static void fail_lreads(struct cw_raft *r)
{
    for (size_t i = 0; i < r->n_lreads; i++)
        answer_lread(r, &r->lreads[i], CW_EUNAVAILABLE);
    r->n_lreads = 0;
    r->round_wanted = false;
}

static void fail_freads(struct cw_raft *r)
{
    for (size_t i = 0; i < r->n_freads; i++)
        release_read(r, r->freads[i].ctx, 0, CW_EUNAVAILABLE);
    r->n_freads = 0;
}

static bool committed_in_term(const struct cw_raft *r)
{
    return term_at(r, r->commit) == r->term;
}

/* Releases, in order, the reads whose round a majority acknowledged. */
static void release_lreads(struct cw_raft *r)
{
    size_t k = 0;
    while (k < r->n_lreads) {
        const struct lread *lr = &r->lreads[k];
        if (lr->round == 0)
            break;
        unsigned acks = 1; /* self */
        for (unsigned p = 0; p < r->cfg.n; p++)
            if (p != r->cfg.id && r->acked[p] >= lr->round)
                acks++;
        if (acks < r->quorum)
            break;
        answer_lread(r, lr, CW_OK);
        k++;
    }
    if (k > 0 && k < r->n_lreads)
        memmove(r->lreads, r->lreads + k, (r->n_lreads - k) * sizeof(*r->lreads));
    r->n_lreads -= k;
}

/* Once the leader has committed an entry of its term, the reads queued before
 * that get the commit index and join the next round. */
static void place_waiting_lreads(struct cw_raft *r)
{
    if (!committed_in_term(r))
        return;
    for (size_t i = 0; i < r->n_lreads; i++) {
        if (r->lreads[i].round == 0) {
            r->lreads[i].index = r->commit;
            r->lreads[i].round = r->read_round + 1;
            r->round_wanted = true;
        }
    }
}

static void leader_place_read(struct cw_raft *r, unsigned from, uint64_t ctx)
{
    struct lread lr = {.ctx = ctx, .index = r->commit, .round = 0, .from = from};
    if (r->cfg.n == 1) {
        /* No one to confirm the lead with: the commit index is current. */
        answer_lread(r, &lr, CW_OK);
        return;
    }
    if (r->n_lreads >= r->cfg.max_pending_reads) {
        answer_lread(r, &lr, CW_EFULL);
        return;
    }
    if (committed_in_term(r)) {
        lr.round = r->read_round + 1;
        r->round_wanted = true;
    }
    GROW(r->lreads, r->n_lreads, r->cap_lreads);
    r->lreads[r->n_lreads++] = lr;
}

/* ---- role changes ----------------------------------------------------- */

static void pr_reset(struct cw_raft *r, unsigned p)
{
    struct progress *pr = &r->pr[p];
    pr->next = last_index(r) + 1;
    pr->match = p == r->cfg.id ? last_index(r) : 0;
    pr->state = PR_PROBE;
    pr->paused = false;
    pr->pending_snap = 0;
    pr->in_start = 0;
    pr->in_count = 0;
}

static void become_follower(struct cw_raft *r, uint64_t term, unsigned leader)
{
    if (r->role == CW_RAFT_LEADER)
        fail_lreads(r); /* sent at the old term, before it changes */
    if (leader != r->leader || leader == CW_RAFT_NONE)
        fail_freads(r);
    if (term != r->term) {
        CW_ASSERT(term > r->term);
        r->term = term;
        r->vote = CW_RAFT_NONE;
    }
    r->role = CW_RAFT_FOLLOWER;
    r->leader = leader;
    r->transfer_to = CW_RAFT_NONE;
    reset_election_timer(r);
}

static void bcast_append(struct cw_raft *r);

static void become_leader(struct cw_raft *r)
{
    CW_ASSERT(r->role == CW_RAFT_CANDIDATE);
    fail_freads(r);
    r->role = CW_RAFT_LEADER;
    r->leader = r->cfg.id;
    r->stats.leader_changes++;
    r->became_leader_us = r->now_us;
    r->heartbeat_due_us = r->now_us + r->cfg.heartbeat_us;
    r->transfer_to = CW_RAFT_NONE;
    for (unsigned p = 0; p < r->cfg.n; p++) {
        r->acked[p] = 0;
        pr_reset(r, p);
    }
    /* The no-op commits the earlier terms' entries (by §5.4.2 they commit only
     * under an entry of the leader's term) and lets reads be placed. */
    struct cw_raft_entry e = {
        .term = r->term, .index = last_index(r) + 1, .type = CW_RAFT_ENTRY_NOOP};
    log_append(r, &e);
    r->pr[r->cfg.id].match = last_index(r);
    r->pr[r->cfg.id].next = last_index(r) + 1;
    bcast_append(r);
}

static bool maybe_commit(struct cw_raft *r);

static void campaign(struct cw_raft *r, bool pre, bool transfer)
{
    memset(r->responded, 0, sizeof(r->responded));
    memset(r->granted, 0, sizeof(r->granted));
    fail_freads(r);
    r->leader = CW_RAFT_NONE;
    r->transfer_to = CW_RAFT_NONE;
    uint64_t term;
    if (pre) {
        /* Ask whether we could win, at the term we would campaign in, without
         * raising ours: a region that cannot win never disrupts. */
        r->role = CW_RAFT_PRECANDIDATE;
        r->stats.prevotes++;
        term = r->term + 1;
    } else {
        r->role = CW_RAFT_CANDIDATE;
        r->stats.elections++;
        r->term++;
        r->vote = r->cfg.id;
        term = r->term;
    }
    reset_election_timer(r);
    r->responded[r->cfg.id] = true;
    r->granted[r->cfg.id] = true;
    if (r->quorum == 1) {
        if (pre) {
            campaign(r, false, transfer);
            return;
        }
        become_leader(r);
        maybe_commit(r);
        return;
    }
    for (unsigned p = 0; p < r->cfg.n; p++) {
        if (p == r->cfg.id)
            continue;
        struct cw_raft_msg m = {0};
        m.type = pre ? CW_RAFT_PREVOTE : CW_RAFT_VOTE;
        m.to = (uint8_t)p;
        m.term = term;
        m.index = last_index(r);
        m.log_term = last_term(r);
        m.flags = transfer ? CW_RAFT_F_TRANSFER : 0;
        send(r, &m);
    }
}

static void start_election(struct cw_raft *r)
{
    campaign(r, !r->cfg.test_no_prevote, false);
}

/* ---- replication (leader) --------------------------------------------- */

static void send_snapshot(struct cw_raft *r, unsigned p)
{
    struct progress *pr = &r->pr[p];
    struct cw_raft_msg m = {0};
    m.type = CW_RAFT_SNAP;
    m.to = (uint8_t)p;
    m.index = r->snap_index;
    m.log_term = r->snap_term;
    m.commit = r->commit;
    if (r->snap_len > 0) {
        m.snap = malloc(r->snap_len);
        CW_ASSERT(m.snap != NULL);
        memcpy(m.snap, r->snap, r->snap_len);
        m.snap_len = r->snap_len;
    }
    send(r, &m);
    pr->state = PR_SNAPSHOT;
    pr->pending_snap = r->snap_index;
    pr->snap_sent_us = r->now_us;
    pr->in_count = 0;
    r->stats.snapshots_sent++;
}

static bool pr_blocked(const struct cw_raft *r, const struct progress *pr)
{
    switch (pr->state) {
    case PR_PROBE:
        return pr->paused;
    case PR_REPLICATE:
        return pr->in_count >= r->cfg.max_inflight_msgs;
    case PR_SNAPSHOT:
        return true;
    }
    return true;
}

/* Sends follower p the entries from its next (or the snapshot when they were
 * compacted away). An empty APPEND only when send_if_empty (it carries the
 * commit index or probes a follower that lost an APPEND). */
static void send_append(struct cw_raft *r, unsigned p, bool send_if_empty)
{
    struct progress *pr = &r->pr[p];
    if (pr_blocked(r, pr))
        return;
    if (pr->next - 1 < r->snap_index) {
        send_snapshot(r, p);
        return;
    }
    uint64_t prev = pr->next - 1;
    uint64_t last = last_index(r);
    uint32_t n = 0;
    uint64_t bytes = 0;
    while (prev + n < last && n < r->cfg.max_msg_entries) {
        uint32_t len = entry(r, prev + n + 1)->len;
        if (n > 0 && bytes + len > r->cfg.max_msg_bytes)
            break;
        bytes += len;
        n++;
    }
    if (n == 0 && !send_if_empty)
        return;
    struct cw_raft_msg m = {0};
    m.type = CW_RAFT_APPEND;
    m.to = (uint8_t)p;
    m.index = prev;
    m.log_term = term_at(r, prev);
    m.commit = r->commit;
    if (n > 0) {
        m.entries = calloc(n, sizeof(*m.entries));
        CW_ASSERT(m.entries != NULL);
        for (uint32_t i = 0; i < n; i++)
            entry_copy(&m.entries[i], entry(r, prev + 1 + i));
        m.n_entries = n;
    }
    send(r, &m);
    if (pr->state == PR_REPLICATE) {
        if (n > 0) {
            pr->next = prev + n + 1;
            uint32_t slot = (pr->in_start + pr->in_count) % r->cfg.max_inflight_msgs;
            pr->inflight[slot] = prev + n;
            pr->in_count++;
        }
    } else {
        pr->paused = true; /* probe: one at a time */
    }
}

static void bcast_append(struct cw_raft *r)
{
    for (unsigned p = 0; p < r->cfg.n; p++)
        if (p != r->cfg.id)
            send_append(r, p, true);
}

static void bcast_heartbeat(struct cw_raft *r, uint64_t ctx)
{
    for (unsigned p = 0; p < r->cfg.n; p++) {
        if (p == r->cfg.id)
            continue;
        struct cw_raft_msg m = {0};
        m.type = CW_RAFT_HEARTBEAT;
        m.to = (uint8_t)p;
        /* Never more than the follower is known to hold: its log past match
         * may still be a stale leader's. */
        m.commit = r->commit < r->pr[p].match ? r->commit : r->pr[p].match;
        m.ctx = ctx;
        send(r, &m);
    }
}

static void inflight_free_to(struct cw_raft *r, struct progress *pr, uint64_t index)
{
    while (pr->in_count > 0 && pr->inflight[pr->in_start] <= index) {
        pr->in_start = (pr->in_start + 1) % r->cfg.max_inflight_msgs;
        pr->in_count--;
    }
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Advances commit to the largest index a majority holds, if it is of the
 * current term (§5.4.2; test_commit_old_terms drops that check). */
static bool maybe_commit(struct cw_raft *r)
{
    uint64_t m[CW_REGIONS_MAX];
    for (unsigned p = 0; p < r->cfg.n; p++)
        m[p] = r->pr[p].match;
    qsort(m, r->cfg.n, sizeof(m[0]), cmp_desc);
    uint64_t q = m[r->quorum - 1];
    if (q <= r->commit)
        return false;
    if (term_at(r, q) != r->term && !r->cfg.test_commit_old_terms)
        return false;
    r->commit = q;
    place_waiting_lreads(r);
    return true;
}

static void send_timeout_now(struct cw_raft *r, unsigned to)
{
    struct cw_raft_msg m = {0};
    m.type = CW_RAFT_TIMEOUT_NOW;
    m.to = (uint8_t)to;
    send(r, &m);
    r->transfer_sent = true;
    r->stats.transfers++;
}

static void start_transfer(struct cw_raft *r, unsigned to)
{
    CW_ASSERT(r->role == CW_RAFT_LEADER);
    if (to >= r->cfg.n || to == r->cfg.id)
        return;
    if (in_transfer(r) && r->transfer_to == to)
        return;
    r->transfer_to = to;
    r->transfer_sent = false;
    /* Proposals wait while the lead moves; if the target never campaigns the
     * leader takes them again after one election timeout. */
    r->transfer_deadline_us = r->now_us + r->cfg.election_max_us;
    if (r->pr[to].match == last_index(r))
        send_timeout_now(r, to);
    else
        send_append(r, to, true);
}

static void leader_append_resp(struct cw_raft *r, const struct cw_raft_msg *m)
{
    struct progress *pr = &r->pr[m->from];
    if (m->reject) {
        if (pr->state == PR_REPLICATE) {
            if (m->index <= pr->match)
                return; /* stale */
        } else if (pr->state == PR_PROBE) {
            if (m->index != pr->next - 1)
                return; /* an answer to an earlier probe */
        } else {
            return;
        }
        /* The follower's last index is a hint where its log may match. */
        uint64_t next = m->index;
        if (m->reject_hint + 1 < next)
            next = m->reject_hint + 1;
        if (next < pr->match + 1)
            next = pr->match + 1;
        if (next < 1)
            next = 1;
        pr->next = next;
        pr->state = PR_PROBE;
        pr->paused = false;
        pr->in_count = 0;
        send_append(r, m->from, true);
        return;
    }
    bool updated = false;
    if (m->index > pr->match) {
        pr->match = m->index;
        updated = true;
    }
    if (pr->next < m->index + 1)
        pr->next = m->index + 1;
    switch (pr->state) {
    case PR_PROBE:
        if (updated || pr->match + 1 == pr->next) {
            pr->state = PR_REPLICATE;
            pr->next = pr->match + 1;
            pr->in_start = 0;
            pr->in_count = 0;
        }
        pr->paused = false;
        break;
    case PR_SNAPSHOT:
        if (pr->match >= pr->pending_snap) {
            pr->state = PR_REPLICATE;
            pr->next = pr->match + 1;
            pr->in_start = 0;
            pr->in_count = 0;
        }
        break;
    case PR_REPLICATE:
        inflight_free_to(r, pr, m->index);
        break;
    }
    if (updated && maybe_commit(r))
        bcast_append(r);
    else
        send_append(r, m->from, false);
    /* Keep sending while the follower has room and there is more. */
    while (pr->state == PR_REPLICATE && !pr_blocked(r, pr) && pr->next <= last_index(r)) {
        uint64_t before = pr->next;
        send_append(r, m->from, false);
        if (pr->next == before)
            break;
    }
    if (m->from == r->transfer_to && in_transfer(r) && !r->transfer_sent &&
        pr->match == last_index(r))
        send_timeout_now(r, m->from);
}

static void leader_heartbeat_resp(struct cw_raft *r, const struct cw_raft_msg *m)
{
    struct progress *pr = &r->pr[m->from];
    if (m->ctx > r->acked[m->from])
        r->acked[m->from] = m->ctx;
    release_lreads(r);
    switch (pr->state) {
    case PR_PROBE:
        pr->paused = false;
        break;
    case PR_REPLICATE:
        /* A lost APPEND would otherwise hold the window shut forever. */
        if (pr->in_count >= r->cfg.max_inflight_msgs) {
            pr->in_start = (pr->in_start + 1) % r->cfg.max_inflight_msgs;
            pr->in_count--;
        }
        break;
    case PR_SNAPSHOT:
        /* A lost snapshot: probe again after a while (which resends it). */
        if (r->now_us - pr->snap_sent_us >= r->cfg.election_min_us) {
            pr->state = PR_PROBE;
            pr->paused = false;
            pr->next = pr->match + 1;
        }
        break;
    }
    /* Behind: send what is missing. With everything sent already this is an
     * empty APPEND at next - 1, which the follower rejects if an APPEND was
     * lost, and the reject starts a probe (as etcd does). */
    if (pr->match < last_index(r))
        send_append(r, m->from, true);
}

static bool leader_append_data(struct cw_raft *r, const struct cw_raft_entry *es, uint32_t n)
{
    uint64_t last = last_index(r);
    if (last - r->commit + n > r->cfg.max_uncommitted)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        struct cw_raft_entry e = es[i];
        e.term = r->term;
        e.index = last_index(r) + 1;
        e.type = CW_RAFT_ENTRY_DATA;
        log_append(r, &e);
    }
    r->pr[r->cfg.id].match = last_index(r);
    r->pr[r->cfg.id].next = last_index(r) + 1;
    (void)maybe_commit(r); /* a single region commits at once */
    bcast_append(r);
    return true;
}

/* ---- follower handlers ------------------------------------------------ */

static void respond_append(struct cw_raft *r, unsigned to, uint64_t index, bool reject,
                           uint64_t hint)
{
    struct cw_raft_msg m = {0};
    m.type = CW_RAFT_APPEND_RESP;
    m.to = (uint8_t)to;
    m.index = index;
    m.reject = reject;
    m.reject_hint = hint;
    send(r, &m);
}

static void handle_append(struct cw_raft *r, const struct cw_raft_msg *m)
{
    if (m->index < r->commit) {
        /* Everything up to commit matches already (committed entries never
         * change); tell the leader where we are. */
        respond_append(r, m->from, r->commit, false, 0);
        return;
    }
    if (m->index > last_index(r) || term_at(r, m->index) != m->log_term) {
        respond_append(r, m->from, m->index, true, last_index(r));
        return;
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct cw_raft_entry *e = &m->entries[i];
        if (e->index <= last_index(r)) {
            if (term_at(r, e->index) == e->term)
                continue;
            /* A conflicting tail from an earlier leader: never committed. */
            log_truncate(r, e->index);
        }
        log_append(r, e);
    }
    uint64_t lastnew = m->index + m->n_entries;
    uint64_t c = m->commit < lastnew ? m->commit : lastnew;
    if (c > r->commit)
        r->commit = c;
    respond_append(r, m->from, lastnew, false, 0);
}

static void handle_heartbeat(struct cw_raft *r, const struct cw_raft_msg *m)
{
    uint64_t c = m->commit < last_index(r) ? m->commit : last_index(r);
    if (c > r->commit)
        r->commit = c;
    struct cw_raft_msg resp = {0};
    resp.type = CW_RAFT_HEARTBEAT_RESP;
    resp.to = m->from;
    resp.ctx = m->ctx;
    send(r, &resp);
}

static void handle_snapshot(struct cw_raft *r, const struct cw_raft_msg *m)
{
    if (m->index <= r->commit) {
        respond_append(r, m->from, r->commit, false, 0);
        return;
    }
    if (m->index <= last_index(r) && term_at(r, m->index) == m->log_term) {
        /* Our log already holds the snapshot's last entry: it and everything
         * before it are committed; keep the log and apply it normally. */
        r->commit = m->index;
        /* Only up to the snapshot is known to match the leader's log. */
        respond_append(r, m->from, m->index, false, 0);
        return;
    }
    log_clear(r);
    r->snap_index = m->index;
    r->snap_term = m->log_term;
    set_snap_bytes(r, m->snap, m->snap_len);
    r->commit = m->index;
    r->applied = m->index;
    r->unstable_from = m->index + 1;
    r->snap_pending = true;
    r->snap_pending_restore = true;
    r->stats.snapshots_received++;
    respond_append(r, m->from, m->index, false, 0);
}

static void follower_read_resp(struct cw_raft *r, const struct cw_raft_msg *m)
{
    for (size_t i = 0; i < r->n_freads; i++) {
        if (r->freads[i].ctx != m->ctx)
            continue;
        release_read(r, m->ctx, m->reject ? 0 : m->index, m->reject ? CW_EUNAVAILABLE : CW_OK);
        memmove(&r->freads[i], &r->freads[i + 1], (r->n_freads - i - 1) * sizeof(*r->freads));
        r->n_freads--;
        return;
    }
}

/* ---- step ------------------------------------------------------------- */

static void handle_vote_request(struct cw_raft *r, const struct cw_raft_msg *m)
{
    bool pre = m->type == CW_RAFT_PREVOTE;
    bool can_vote = r->vote == m->from || (r->vote == CW_RAFT_NONE && r->leader == CW_RAFT_NONE) ||
                    (pre && m->term > r->term);
    bool up_to_date =
        m->log_term > last_term(r) || (m->log_term == last_term(r) && m->index >= last_index(r));
    struct cw_raft_msg resp = {0};
    resp.type = pre ? CW_RAFT_PREVOTE_RESP : CW_RAFT_VOTE_RESP;
    resp.to = m->from;
    if (can_vote && up_to_date) {
        /* A granted pre-vote carries the term asked for: the precandidate
         * counts it for that term without us raising ours. */
        resp.term = m->term;
        if (!pre) {
            r->vote = m->from;
            reset_election_timer(r);
        }
    } else {
        resp.reject = true;
    }
    send(r, &resp);
}

static void handle_vote_resp(struct cw_raft *r, const struct cw_raft_msg *m)
{
    r->responded[m->from] = true;
    r->granted[m->from] = !m->reject;
    unsigned yes = 0, no = 0;
    for (unsigned p = 0; p < r->cfg.n; p++) {
        if (!r->responded[p])
            continue;
        if (r->granted[p])
            yes++;
        else
            no++;
    }
    if (yes >= r->quorum) {
        if (r->role == CW_RAFT_PRECANDIDATE) {
            campaign(r, false, false);
        } else {
            become_leader(r);
        }
    } else if (no >= r->quorum) {
        become_follower(r, r->term, CW_RAFT_NONE);
    }
}

static bool is_from_leader_type(uint8_t t)
{
    return t == CW_RAFT_APPEND || t == CW_RAFT_HEARTBEAT || t == CW_RAFT_SNAP;
}

static void step_leader(struct cw_raft *r, const struct cw_raft_msg *m)
{
    switch (m->type) {
    case CW_RAFT_APPEND_RESP:
        leader_append_resp(r, m);
        break;
    case CW_RAFT_HEARTBEAT_RESP:
        leader_heartbeat_resp(r, m);
        break;
    case CW_RAFT_PROPOSE:
        /* The follower's caller times out what we cannot take. */
        if (!in_transfer(r) && m->n_entries > 0)
            leader_append_data(r, m->entries, m->n_entries);
        break;
    case CW_RAFT_READ_INDEX:
        leader_place_read(r, m->from, m->ctx);
        break;
    default:
        break;
    }
}

static void step_other(struct cw_raft *r, const struct cw_raft_msg *m)
{
    if (is_from_leader_type(m->type)) {
        if (r->role != CW_RAFT_FOLLOWER || r->leader != m->from)
            become_follower(r, m->term, m->from);
        r->leader_heard_us = r->now_us;
        reset_election_timer(r);
        if (m->type == CW_RAFT_APPEND)
            handle_append(r, m);
        else if (m->type == CW_RAFT_HEARTBEAT)
            handle_heartbeat(r, m);
        else
            handle_snapshot(r, m);
        return;
    }
    switch (m->type) {
    case CW_RAFT_PREVOTE_RESP:
        if (r->role == CW_RAFT_PRECANDIDATE && (m->term == r->term + 1 || m->reject))
            handle_vote_resp(r, m);
        break;
    case CW_RAFT_VOTE_RESP:
        if (r->role == CW_RAFT_CANDIDATE && m->term == r->term)
            handle_vote_resp(r, m);
        break;
    case CW_RAFT_TIMEOUT_NOW:
        if (r->role == CW_RAFT_FOLLOWER)
            campaign(r, false, true);
        break;
    case CW_RAFT_READ_INDEX_RESP:
        follower_read_resp(r, m);
        break;
    case CW_RAFT_READ_INDEX: {
        struct cw_raft_msg resp = {0};
        resp.type = CW_RAFT_READ_INDEX_RESP;
        resp.to = m->from;
        resp.ctx = m->ctx;
        resp.reject = true;
        send(r, &resp);
        break;
    }
    default:
        break; /* PROPOSE to a non-leader: the proposer times out */
    }
}

/* Ends recovery: the restored commit may point past a log whose tail was
 * lost; it cannot be more than what the log holds. */
static void finish_restore(struct cw_raft *r)
{
    if (r->restored)
        return;
    r->restored = true;
    if (r->commit > last_index(r))
        r->commit = last_index(r);
}

static void enter(struct cw_raft *r, struct cw_now now)
{
    CW_ASSERT(!r->in_ready);
    finish_restore(r);
    if (now.mono_us > r->now_us)
        r->now_us = now.mono_us;
    if (!r->started) {
        r->started = true;
        reset_election_timer(r);
    }
}

/* Ends every input: a read round wanted by reads placed during it goes out as
 * one heartbeat. */
static void leave(struct cw_raft *r)
{
    if (r->role == CW_RAFT_LEADER && r->round_wanted) {
        r->round_wanted = false;
        r->read_round++;
        r->stats.read_index_rounds++;
        bcast_heartbeat(r, r->read_round);
    }
}

void cw_raft_step(struct cw_raft *r, struct cw_now now, const struct cw_raft_msg *m)
{
    enter(r, now);
    if (cw_raft_msg_check(m, r->cfg.n) != NULL) {
        r->stats.msgs_refused++;
        goto out;
    }
    if (m->to != r->cfg.id)
        goto out;
    r->last_heard_us[m->from] = r->now_us;

    /* Forwarded requests carry the sender's term, which says nothing about
     * ours: handle them by role only, never let them move terms. */
    if (m->type == CW_RAFT_PROPOSE || m->type == CW_RAFT_READ_INDEX) {
        if (r->role == CW_RAFT_LEADER)
            step_leader(r, m);
        else if (m->type == CW_RAFT_READ_INDEX)
            step_other(r, m);
        goto out;
    }

    if (m->term > r->term) {
        bool vote_req = m->type == CW_RAFT_VOTE || m->type == CW_RAFT_PREVOTE;
        if (vote_req && !(m->flags & CW_RAFT_F_TRANSFER)) {
            /* The lease: a region that heard from a live leader lately ignores
             * campaigns, so a region cut off and healed cannot depose it. */
            bool in_lease = r->leader != CW_RAFT_NONE &&
                            (r->role == CW_RAFT_LEADER ||
                             r->now_us - r->leader_heard_us < r->cfg.election_min_us);
            if (in_lease)
                goto out;
        }
        if (m->type == CW_RAFT_PREVOTE) {
            /* A pre-vote's term is only asked about: never adopt it. */
        } else if (m->type == CW_RAFT_PREVOTE_RESP && !m->reject) {
            /* Granted at the term we would campaign in: counted below. */
        } else {
            if (r->role == CW_RAFT_LEADER && !(m->flags & CW_RAFT_F_TRANSFER))
                r->stats.disruptions++;
            become_follower(r, m->term, is_from_leader_type(m->type) ? m->from : CW_RAFT_NONE);
        }
    } else if (m->term < r->term) {
        if (m->type == CW_RAFT_APPEND || m->type == CW_RAFT_HEARTBEAT) {
            /* A stale leader learns our term from the answer and steps down. */
            respond_append(r, m->from, 0, true, last_index(r));
        } else if (m->type == CW_RAFT_PREVOTE) {
            struct cw_raft_msg resp = {0};
            resp.type = CW_RAFT_PREVOTE_RESP;
            resp.to = m->from;
            resp.reject = true;
            send(r, &resp);
        }
        goto out;
    }

    if (m->type == CW_RAFT_VOTE || m->type == CW_RAFT_PREVOTE) {
        handle_vote_request(r, m);
        goto out;
    }
    if (r->role == CW_RAFT_LEADER) {
        /* A leader's message at our own term cannot come from a correct peer
         * (one leader per term); step_leader ignores it. */
        step_leader(r, m);
    } else {
        step_other(r, m);
    }
out:
    leave(r);
}

/* ---- tick ------------------------------------------------------------- */

static void tick_leader(struct cw_raft *r)
{
    /* Check-quorum: a leader cut off from a majority steps down, so that its
     * clients go to a leader that can commit. */
    if (r->now_us - r->became_leader_us >= r->cfg.election_min_us) {
        unsigned live = 1;
        for (unsigned p = 0; p < r->cfg.n; p++)
            if (p != r->cfg.id && r->last_heard_us[p] != 0 &&
                r->now_us - r->last_heard_us[p] < r->cfg.election_min_us)
                live++;
        if (live < r->quorum) {
            r->stats.stepdowns_quorum++;
            become_follower(r, r->term, CW_RAFT_NONE);
            return;
        }
    }
    if (r->transfer_to != CW_RAFT_NONE && !in_transfer(r))
        r->transfer_to = CW_RAFT_NONE;
    unsigned pref = r->cfg.preferred;
    if (pref != CW_RAFT_NONE && pref != r->cfg.id && !in_transfer(r) &&
        (!r->auto_transferred || r->now_us - r->last_auto_transfer_us >= r->cfg.election_min_us) &&
        r->pr[pref].match == last_index(r) && r->last_heard_us[pref] != 0 &&
        r->now_us - r->last_heard_us[pref] < r->cfg.election_min_us) {
        r->auto_transferred = true;
        r->last_auto_transfer_us = r->now_us;
        start_transfer(r, pref);
    }
    if (r->now_us >= r->heartbeat_due_us) {
        r->heartbeat_due_us = r->now_us + r->cfg.heartbeat_us;
        bcast_heartbeat(r, r->read_round);
    }
}

void cw_raft_tick(struct cw_raft *r, struct cw_now now)
{
    enter(r, now);
    /* A follower's read the leader never answered (lost on the way). */
    size_t k = 0;
    for (size_t i = 0; i < r->n_freads; i++) {
        if (r->now_us >= r->freads[i].deadline_us)
            release_read(r, r->freads[i].ctx, 0, CW_EUNAVAILABLE);
        else
            r->freads[k++] = r->freads[i];
    }
    r->n_freads = k;
    if (r->role == CW_RAFT_LEADER)
        tick_leader(r);
    else if (r->cfg.n == 1 || r->now_us >= r->election_deadline_us)
        start_election(r);
    leave(r);
}

/* ---- other inputs ----------------------------------------------------- */

uint64_t cw_raft_propose(struct cw_raft *r, struct cw_now now, uint64_t ctx, const uint8_t *data,
                         uint32_t len)
{
    uint64_t index = 0;
    enter(r, now);
    if (len > CW_RAFT_ENTRY_BYTES_MAX) {
        drop_proposal(r, ctx, CW_ETOOBIG);
        goto out;
    }
    struct cw_raft_entry e = {.type = CW_RAFT_ENTRY_DATA, .len = len, .data = (uint8_t *)data};
    if (r->role == CW_RAFT_LEADER) {
        if (in_transfer(r)) {
            drop_proposal(r, ctx, CW_EUNAVAILABLE);
        } else if (!leader_append_data(r, &e, 1)) {
            drop_proposal(r, ctx, CW_EFULL);
        } else {
            index = last_index(r);
        }
    } else if (r->role == CW_RAFT_FOLLOWER && r->leader != CW_RAFT_NONE) {
        struct cw_raft_msg m = {0};
        m.type = CW_RAFT_PROPOSE;
        m.to = (uint8_t)r->leader;
        m.entries = calloc(1, sizeof(*m.entries));
        CW_ASSERT(m.entries != NULL);
        entry_copy(&m.entries[0], &e);
        m.n_entries = 1;
        send(r, &m);
        r->stats.proposals_forwarded++;
    } else {
        drop_proposal(r, ctx, CW_EUNAVAILABLE);
    }
out:
    leave(r);
    return index;
}

void cw_raft_read_index(struct cw_raft *r, struct cw_now now, uint64_t ctx)
{
    enter(r, now);
    if (r->cfg.test_local_reads) {
        release_read(r, ctx, r->applied, CW_OK); /* the broken variant: stale reads */
    } else if (r->role == CW_RAFT_LEADER) {
        leader_place_read(r, r->cfg.id, ctx);
    } else if (r->role == CW_RAFT_FOLLOWER && r->leader != CW_RAFT_NONE) {
        if (r->n_freads >= r->cfg.max_pending_reads) {
            release_read(r, ctx, 0, CW_EFULL);
        } else {
            GROW(r->freads, r->n_freads, r->cap_freads);
            r->freads[r->n_freads].ctx = ctx;
            r->freads[r->n_freads].deadline_us = r->now_us + r->cfg.election_max_us;
            r->n_freads++;
            struct cw_raft_msg m = {0};
            m.type = CW_RAFT_READ_INDEX;
            m.to = (uint8_t)r->leader;
            m.ctx = ctx;
            send(r, &m);
        }
    } else {
        release_read(r, ctx, 0, CW_EUNAVAILABLE);
    }
    leave(r);
}

void cw_raft_transfer(struct cw_raft *r, struct cw_now now, unsigned to)
{
    enter(r, now);
    if (r->role == CW_RAFT_LEADER)
        start_transfer(r, to);
    leave(r);
}

void cw_raft_heard(struct cw_raft *r, struct cw_now now, unsigned peer)
{
    enter(r, now);
    if (peer < r->cfg.n && peer != r->cfg.id)
        r->last_heard_us[peer] = r->now_us;
    leave(r);
}

int cw_raft_compact(struct cw_raft *r, uint64_t index, const uint8_t *snap, uint32_t len)
{
    CW_ASSERT(!r->in_ready);
    finish_restore(r);
    if (index == 0 || index > r->applied || index < r->snap_index || len > CW_RAFT_SNAP_BYTES_MAX)
        return CW_EINVAL;
    uint64_t t = term_at(r, index);
    CW_ASSERT(t != 0 || index == 0);
    log_drop_prefix(r, index);
    r->snap_index = index;
    r->snap_term = t;
    set_snap_bytes(r, snap, len);
    if (r->unstable_from <= index)
        r->unstable_from = index + 1;
    r->snap_pending = true; /* keeps snap_pending_restore of a received one */
    return CW_OK;
}

/* ---- create, restore -------------------------------------------------- */

void cw_raft_config_defaults(struct cw_raft_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->id = 0;
    cfg->n = 1;
    cfg->election_min_us = CW_DEFAULT_ELECTION_MIN_MS * 1000ull;
    cfg->election_max_us = CW_DEFAULT_ELECTION_MAX_MS * 1000ull;
    cfg->heartbeat_us = CW_DEFAULT_RAFT_HEARTBEAT_MS * 1000ull;
    cfg->suspect_after_us = 0;
    cfg->preferred = CW_RAFT_NONE;
    cfg->max_msg_entries = 256;
    cfg->max_msg_bytes = CW_DEFAULT_RAFT_MSG_BYTES;
    cfg->max_inflight_msgs = CW_DEFAULT_RAFT_INFLIGHT;
    cfg->max_uncommitted = 10000;
    cfg->max_pending_reads = 10000;
}

static bool config_valid(const struct cw_raft_config *c)
{
    return c->n >= 1 && c->n <= CW_REGIONS_MAX && c->id < c->n && c->election_min_us > 0 &&
           c->election_max_us >= c->election_min_us && c->heartbeat_us > 0 &&
           (c->preferred == CW_RAFT_NONE || c->preferred < c->n) && c->max_msg_entries >= 1 &&
           c->max_msg_entries <= CW_RAFT_MSG_ENTRIES_MAX && c->max_msg_bytes >= 1 &&
           c->max_inflight_msgs >= 1 && c->max_inflight_msgs <= INFLIGHT_HARD_MAX &&
           c->max_uncommitted >= 1 && c->max_pending_reads >= 1;
}

struct cw_raft *cw_raft_create(const struct cw_raft_config *cfg)
{
    if (!config_valid(cfg))
        return NULL;
    struct cw_raft *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = *cfg;
    if (r->cfg.suspect_after_us == 0)
        r->cfg.suspect_after_us = r->cfg.election_min_us;
    r->rand_state = 0x9e3779b97f4a7c15ull ^ cfg->id;
    r->quorum = cfg->n / 2 + 1;
    r->role = CW_RAFT_FOLLOWER;
    r->vote = CW_RAFT_NONE;
    r->leader = CW_RAFT_NONE;
    r->transfer_to = CW_RAFT_NONE;
    r->prev_hs.vote = CW_RAFT_NONE;
    r->unstable_from = 1;
    for (unsigned p = 0; p < cfg->n; p++) {
        r->pr[p].inflight = calloc(cfg->max_inflight_msgs, sizeof(uint64_t));
        if (r->pr[p].inflight == NULL)
            goto err_inflight;
    }
    return r;
err_inflight:
    for (unsigned p = 0; p < cfg->n; p++)
        free(r->pr[p].inflight);
    free(r);
    return NULL;
}

static void free_msgs(struct cw_raft *r)
{
    for (size_t i = 0; i < r->n_msgs; i++)
        cw_raft_msg_free(&r->msgs[i]);
    r->n_msgs = 0;
}

void cw_raft_destroy(struct cw_raft **rp)
{
    struct cw_raft *r = *rp;
    if (r == NULL)
        return;
    free_msgs(r);
    free(r->msgs);
    log_clear(r);
    free(r->log);
    free(r->snap);
    for (unsigned p = 0; p < r->cfg.n; p++)
        free(r->pr[p].inflight);
    free(r->lreads);
    free(r->freads);
    free(r->reads);
    free(r->dropped);
    free(r);
    *rp = NULL;
}

int cw_raft_restore_snapshot(struct cw_raft *r, uint64_t index, uint64_t term, const uint8_t *snap,
                             uint32_t len)
{
    CW_ASSERT(!r->restored);
    if (r->n_log > 0 || r->snap_index > 0 || index == 0 || term == 0 ||
        len > CW_RAFT_SNAP_BYTES_MAX || (len > 0 && snap == NULL))
        return CW_EDECODE;
    r->snap_index = index;
    r->snap_term = term;
    set_snap_bytes(r, snap, len);
    r->commit = index;
    r->applied = index;
    r->unstable_from = index + 1;
    /* The snapshot's term is a term this region has seen: without a stored
     * hard state (or before it is restored), the term starts there, else the
     * next hard state written (term 0, say) would not restore after it. */
    r->term = term;
    return CW_OK;
}

int cw_raft_restore_hardstate(struct cw_raft *r, const struct cw_raft_hardstate *hs)
{
    CW_ASSERT(!r->restored);
    if (r->n_log > 0 || hs->term < r->snap_term ||
        (hs->vote != CW_RAFT_NONE && hs->vote >= r->cfg.n))
        return CW_EDECODE;
    r->term = hs->term;
    r->vote = hs->vote;
    if (hs->commit > r->commit)
        r->commit = hs->commit;
    r->prev_hs.term = r->term;
    r->prev_hs.vote = (uint8_t)r->vote;
    r->prev_hs.commit = r->commit;
    return CW_OK;
}

int cw_raft_restore_entry(struct cw_raft *r, const struct cw_raft_entry *e)
{
    CW_ASSERT(!r->restored);
    if (e->index != last_index(r) + 1 || e->term < last_term(r) || e->term > r->term ||
        e->term == 0 || (e->type != CW_RAFT_ENTRY_NOOP && e->type != CW_RAFT_ENTRY_DATA) ||
        e->len > CW_RAFT_ENTRY_BYTES_MAX || (e->len > 0 && e->data == NULL))
        return CW_EDECODE;
    log_append(r, e);
    r->unstable_from = last_index(r) + 1;
    return CW_OK;
}

/* ---- ready ------------------------------------------------------------ */

static struct cw_raft_hardstate cur_hs(const struct cw_raft *r)
{
    struct cw_raft_hardstate hs = {.term = r->term, .vote = (uint8_t)r->vote, .commit = r->commit};
    return hs;
}

static bool hs_changed(const struct cw_raft *r)
{
    return r->prev_hs.term != r->term || r->prev_hs.vote != (uint8_t)r->vote ||
           r->prev_hs.commit != r->commit;
}

bool cw_raft_has_ready(const struct cw_raft *r)
{
    return hs_changed(r) || r->unstable_from <= last_index(r) || r->snap_pending || r->n_msgs > 0 ||
           r->commit > r->applied || r->n_reads > 0 || r->n_dropped > 0;
}

const struct cw_raft_ready *cw_raft_ready(struct cw_raft *r)
{
    if (r->in_ready)
        return &r->rd;
    finish_restore(r);
    struct cw_raft_ready *rd = &r->rd;
    memset(rd, 0, sizeof(*rd));
    rd->hardstate_changed = hs_changed(r);
    rd->hs = cur_hs(r);
    uint64_t last = last_index(r);
    if (r->unstable_from <= last) {
        CW_ASSERT(r->unstable_from > r->snap_index);
        rd->entries = entry(r, r->unstable_from);
        rd->n_entries = (size_t)(last - r->unstable_from + 1);
    }
    if (r->snap_pending) {
        rd->has_snapshot = true;
        rd->snap_restore = r->snap_pending_restore;
        rd->snap_index = r->snap_index;
        rd->snap_term = r->snap_term;
        rd->snap = r->snap;
        rd->snap_len = r->snap_len;
    }
    rd->msgs = r->msgs;
    rd->n_msgs = r->n_msgs;
    if (r->commit > r->applied) {
        rd->committed = entry(r, r->applied + 1);
        rd->n_committed = (size_t)(r->commit - r->applied);
    }
    rd->reads = r->reads;
    rd->n_reads = r->n_reads;
    rd->dropped = r->dropped;
    rd->n_dropped = r->n_dropped;
    r->rd_commit = r->commit;
    r->rd_last = last;
    r->in_ready = true;
    return rd;
}

void cw_raft_advance(struct cw_raft *r)
{
    CW_ASSERT(r->in_ready);
    r->prev_hs = r->rd.hs;
    r->unstable_from = r->rd_last + 1;
    r->applied = r->rd_commit;
    r->snap_pending = false;
    r->snap_pending_restore = false;
    free_msgs(r);
    r->n_reads = 0;
    r->n_dropped = 0;
    r->in_ready = false;
}

/* ---- observation ------------------------------------------------------ */

void cw_raft_get_status(const struct cw_raft *r, struct cw_now now, struct cw_raft_status *st)
{
    memset(st, 0, sizeof(*st));
    st->role = r->role;
    st->term = r->term;
    st->leader = r->leader;
    st->vote = r->vote;
    st->commit = r->commit;
    st->applied = r->applied;
    st->first_index = r->snap_index + 1;
    st->last_index = last_index(r);
    st->snap_index = r->snap_index;
    st->snap_term = r->snap_term;
    for (unsigned p = 0; p < r->cfg.n; p++) {
        st->last_heard_us[p] = r->last_heard_us[p];
        if (p == r->cfg.id)
            continue;
        st->suspected[p] = r->last_heard_us[p] == 0 ||
                           (now.mono_us > r->last_heard_us[p] &&
                            now.mono_us - r->last_heard_us[p] > r->cfg.suspect_after_us);
    }
    st->stats = r->stats;
}

const struct cw_raft_entry *cw_raft_entry_at(const struct cw_raft *r, uint64_t index)
{
    if (index <= r->snap_index || index > last_index(r))
        return NULL;
    return &r->log[index - r->snap_index - 1];
}

uint64_t cw_raft_last_index(const struct cw_raft *r)
{
    return last_index(r);
}

uint64_t cw_raft_term_at(const struct cw_raft *r, uint64_t index)
{
    return term_at(r, index);
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        if (why != NULL && why_len > 0)                                                            \
            snprintf(why, why_len, __VA_ARGS__);                                                   \
        return false;                                                                              \
    } while (0)

bool cw_raft_check_invariants(const struct cw_raft *r, char *why, size_t why_len)
{
    uint64_t last = last_index(r);
    /* Until the first input, a restored commit may point past a log whose
     * tail was lost: finish_restore cuts it then. */
    if (r->commit > last && r->restored)
        FAIL("commit %llu past the last index %llu", (unsigned long long)r->commit,
             (unsigned long long)last);
    if (r->applied > r->commit)
        FAIL("applied %llu past commit %llu", (unsigned long long)r->applied,
             (unsigned long long)r->commit);
    if (r->snap_index > r->applied)
        FAIL("snapshot index %llu past applied %llu", (unsigned long long)r->snap_index,
             (unsigned long long)r->applied);
    if (r->snap_term > r->term)
        FAIL("snapshot of term %llu past the current term %llu", (unsigned long long)r->snap_term,
             (unsigned long long)r->term);
    uint64_t prev_term = r->snap_term;
    for (size_t i = 0; i < r->n_log; i++) {
        const struct cw_raft_entry *e = &r->log[i];
        if (e->index != r->snap_index + 1 + i)
            FAIL("log index %llu at position %zu", (unsigned long long)e->index, i);
        if (e->term < prev_term)
            FAIL("log term decreases at index %llu", (unsigned long long)e->index);
        if (e->term > r->term)
            FAIL("entry %llu of term %llu past the current term %llu", (unsigned long long)e->index,
                 (unsigned long long)e->term, (unsigned long long)r->term);
        if (e->type != CW_RAFT_ENTRY_NOOP && e->type != CW_RAFT_ENTRY_DATA)
            FAIL("entry %llu of unknown type", (unsigned long long)e->index);
        prev_term = e->term;
    }
    if (r->vote != CW_RAFT_NONE && r->vote >= r->cfg.n)
        FAIL("vote for region %u outside the group", r->vote);
    if (r->leader != CW_RAFT_NONE && r->leader >= r->cfg.n)
        FAIL("leader %u outside the group", r->leader);
    switch (r->role) {
    case CW_RAFT_LEADER:
        if (r->leader != r->cfg.id)
            FAIL("a leader that names %u as leader", r->leader);
        if (r->vote != r->cfg.id)
            FAIL("a leader that did not vote for itself in its term");
        if (r->pr[r->cfg.id].match != last)
            FAIL("leader's own match %llu is not its last index %llu",
                 (unsigned long long)r->pr[r->cfg.id].match, (unsigned long long)last);
        for (unsigned p = 0; p < r->cfg.n; p++) {
            if (r->pr[p].match > last)
                FAIL("region %u's match past the leader's log", p);
            if (r->pr[p].in_count > r->cfg.max_inflight_msgs)
                FAIL("region %u's inflight past the bound", p);
        }
        if (last == 0 || term_at(r, last) != r->term)
            FAIL("a leader without an entry of its term");
        if (r->n_lreads > r->cfg.max_pending_reads)
            FAIL("pending reads past the bound");
        break;
    case CW_RAFT_CANDIDATE:
        if (r->vote != r->cfg.id)
            FAIL("a candidate that did not vote for itself");
        /* fallthrough */
    case CW_RAFT_PRECANDIDATE:
        if (r->leader != CW_RAFT_NONE)
            FAIL("a candidate that knows a leader");
        break;
    case CW_RAFT_FOLLOWER:
        if (r->leader == r->cfg.id)
            FAIL("a follower that names itself leader");
        if (r->n_lreads != 0)
            FAIL("a follower holding leader reads");
        break;
    }
    if (r->n_freads > r->cfg.max_pending_reads)
        FAIL("follower reads past the bound");
    return true;
}
