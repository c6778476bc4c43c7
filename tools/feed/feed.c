/*
 * causeway-feed - the social-feed demo: one seeded feed workload run in causal,
 * eventual and strong buckets, one mode after the other, on the same running
 * regions, with the anomalies counted by the readers themselves.
 *
 * Users in every region (each a thread with its own connection and causal
 * session) write posts, read a region's recent posts, read threads, reply to
 * posts they have read and like them. A post is a key; a reply is a key that
 * names its post; a thread index lists the reply ids of a post: a key in a
 * siblings bucket (causal and eventual: concurrent appends come back as siblings,
 * merged here by set union and written back with the context that was read) or
 * in a strong bucket (appended by compare-and-set).
 *
 * Every thread read checks what it saw: an orphan is a thread read that shows a
 * reply while the post it answers is missing; a stale read misses a write this
 * program had seen acknowledged before the read began. After each mode, once
 * every region is quiet, every acknowledged reply is looked up in its thread
 * index in every region: a missing one is a lost reply. Watchers in every region
 * time how long a reply written elsewhere takes to become readable there (remote
 * visibility). In the middle of each mode one region is cut off for a few
 * seconds; requests that fail because of it are counted, never retried.
 *
 * The results go to a table on stdout and to results.json, results.csv, .dat
 * files and a gnuplot script (run when gnuplot is installed) in --out DIR.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <causeway.h>

#include "server/config.h"

#include "../bench/args.h"
#include "../bench/ping.h"

#define REGIONS_MAX CW_REGION_NAMES_MAX
#define USERS_PER_REGION_MAX 64
#define RECENT_MAX 256     /* the hot-thread list: the newest posts and replies, Zipf by recency */
#define REGION_RECENT 16   /* a region's recent posts, for timeline reads */
#define SEEN_MAX 32        /* the posts a user has read, newest first, for replies */
#define TIMELINE_POSTS 3   /* posts read by one timeline read */
#define CAS_TRIES_MAX 32   /* compare-and-set attempts for one strong thread append */
#define SAMPLES_MAX (4u << 20)
#define POSTS_MAX (1u << 20)
#define REPLIES_MAX (1u << 21)
#define INDEX_IDS_MAX 65536 /* reply ids in one thread index read */
#define VERIFY_THREADS 12   /* per region, for the lost-reply check */
#define OP_KINDS 5
#define PINGS_PER_REGION 200 /* the floor: no-op round trips, one at a time */
#define PUT_P99_TARGET_MS 1.0
#define PUT_P50_FLOOR_X 1.5

enum op { OP_TIMELINE, OP_THREAD, OP_POST, OP_REPLY, OP_LIKE };
static const char *const op_names[OP_KINDS] = {"timeline", "thread", "post", "reply", "like"};

struct mode_def {
    const char *name;
    const char *posts, *replies, *threads;
    bool strong;
};

static const struct mode_def mode_defs[] = {
    {"causal", "posts", "replies", "threads", false},
    {"eventual", "posts_ev", "replies_ev", "threads_ev", false},
    {"strong", "posts_strong", "replies_strong", "threads_strong", true},
};
#define MODES_MAX 3

struct opts {
    const char *config_path;
    const char *out_dir;
    unsigned duration_s, users, think_ms, partition_s;
    unsigned mix[OP_KINDS];
    double zipf_s;
    uint64_t seed;
    bool partition;
    bool charts;
    int partition_region; /* id; -1: the last region */
    unsigned n_modes;
    const struct mode_def *modes[MODES_MAX];
    unsigned n_run_regions;
    unsigned run_regions[REGIONS_MAX]; /* ids of the regions with users */
    /* The slowed link: from -> to at slow_ms (0: none). */
    int slow_from, slow_to;
    unsigned slow_ms;
    bool slow_auto;
};

/* ---------------------------------------------------------------- utilities */

static atomic_int interrupted;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&interrupted, 1);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        if (atomic_load(&interrupted))
            return;
}

static void sleep_ms(unsigned ms)
{
    sleep_ns((uint64_t)ms * 1000000u);
}

/* splitmix64: every user's own reproducible stream of choices. */
static uint64_t next_rand(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rand_unit(uint64_t *x)
{
    return (double)(next_rand(x) >> 11) / (double)(1ull << 53);
}

/* Zipf over ranks 0..n-1 (rank 0 the most likely): zipf_h[k] = sum_{i<=k} 1/i^s. */
static double zipf_h[RECENT_MAX + 1];

static void zipf_init(double s)
{
    zipf_h[0] = 0;
    for (unsigned k = 1; k <= RECENT_MAX; k++)
        zipf_h[k] = zipf_h[k - 1] + 1.0 / pow((double)k, s);
}

static unsigned zipf_rank(uint64_t *rng, unsigned n)
{
    if (n <= 1)
        return 0;
    if (n > RECENT_MAX)
        n = RECENT_MAX;
    double u = rand_unit(rng) * zipf_h[n];
    unsigned lo = 1, hi = n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (zipf_h[mid] >= u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo - 1;
}

/* A bounded growable array of latency samples in microseconds. */
struct samples {
    uint32_t *v;
    size_t n, cap;
};

static void samples_add(struct samples *s, uint64_t us)
{
    if (s->n == s->cap) {
        if (s->cap >= SAMPLES_MAX)
            return; /* bounded: later samples are dropped */
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint32_t *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void samples_append(struct samples *dst, const struct samples *src)
{
    for (size_t i = 0; i < src->n; i++)
        samples_add(dst, src->v[i]);
}

static void samples_free(struct samples *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void samples_sort(struct samples *s)
{
    if (s->n)
        qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
}

/* The q quantile in milliseconds of sorted samples (nearest rank); NAN when empty. */
static double quantile_ms(const struct samples *s, double q)
{
    if (s->n == 0)
        return NAN;
    size_t i = (size_t)ceil(q * (double)s->n);
    if (i > 0)
        i--;
    if (i >= s->n)
        i = s->n - 1;
    return (double)s->v[i] / 1000.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A reply id is (user, seq), written "rU.S"; packed as user << 32 | seq. */
static uint64_t reply_pack(unsigned user, unsigned seq)
{
    return (uint64_t)user << 32 | seq;
}

/* Appends the reply ids in value ("rU.S,rU.S,...") to ids (at most max). */
static void ids_parse(const uint8_t *v, size_t len, uint64_t *ids, size_t *n, size_t max)
{
    size_t i = 0;
    while (i < len) {
        if (v[i] != 'r') {
            i++;
            continue;
        }
        i++;
        uint64_t u = 0, s = 0;
        bool dot = false, ok = false;
        while (i < len && v[i] != ',') {
            if (v[i] == '.') {
                dot = true;
            } else if (v[i] >= '0' && v[i] <= '9') {
                if (dot) {
                    s = s * 10 + (uint64_t)(v[i] - '0');
                    ok = true;
                } else {
                    u = u * 10 + (uint64_t)(v[i] - '0');
                }
            }
            i++;
        }
        if (ok && *n < max && u <= UINT32_MAX && s <= UINT32_MAX)
            ids[(*n)++] = u << 32 | s;
    }
}

/* Sorts and removes duplicates: the set union of what was appended. */
static size_t ids_unique(uint64_t *ids, size_t n)
{
    if (n == 0)
        return 0;
    qsort(ids, n, sizeof(*ids), cmp_u64);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[m - 1])
            ids[m++] = ids[i];
    return m;
}

static bool ids_has(const uint64_t *ids, size_t n, uint64_t id)
{
    return bsearch(&id, ids, n, sizeof(*ids), cmp_u64) != NULL;
}

/* Writes the ids as "rU.S,..." into a new string (free() it), or NULL. */
static char *ids_format(const uint64_t *ids, size_t n, size_t *len)
{
    size_t cap = n * 24 + 1;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, cap - at, "%sr%u.%u", i ? "," : "",
                               (unsigned)(ids[i] >> 32), (unsigned)(ids[i] & 0xffffffffu));
    s[at] = '\0';
    *len = at;
    return s;
}

/* The union of the reply ids of every version in g, sorted; returns the count. */
static size_t ids_from_result(const struct cw_get_result *g, uint64_t *ids, size_t max)
{
    size_t n = 0;
    if (g != NULL && g->found)
        for (size_t i = 0; i < g->n; i++)
            ids_parse(g->versions[i].value, g->versions[i].len, ids, &n, max);
    return ids_unique(ids, n);
}

/* ------------------------------------------------------------ shared state */

struct post {
    unsigned user, seq, region;
    uint64_t ack_ns;
    uint32_t first_reply, last_reply; /* acknowledged replies, a list through reply.next */
    uint32_t n_replies;
};

struct reply {
    unsigned user, seq;
    uint32_t post;
    uint32_t next; /* UINT32_MAX: the last */
    uint64_t ack_ns;
    uint16_t lost_in; /* regions (bits) whose thread index missed it after the run */
};

/* What one region's users did in one mode. */
struct region_stats {
    uint64_t ops[OP_KINDS];
    uint64_t orphans;         /* thread reads showing a reply without its post */
    uint64_t orphan_replies;  /* replies shown so */
    uint64_t stale;           /* reads that missed a write acknowledged before they began */
    uint64_t not_yet;         /* thread reads whose post was not visible yet (and no reply) */
    uint64_t refused;         /* requests that failed because of the partition */
    uint64_t errors;          /* other failed requests */
    uint64_t conflicts;       /* compare-and-set conflicts (strong thread appends) */
    uint64_t sibling_merges;  /* thread appends that merged concurrent siblings */
    uint64_t lost;            /* acknowledged replies missing from this region's index */
    uint64_t probes_unseen;   /* visibility probes never seen here before the deadline */
};

struct user {
    struct run *run;
    unsigned id, region;
    pthread_t thread;
    uint64_t rng;
    unsigned post_seq, reply_seq;
    uint32_t seen[SEEN_MAX]; /* post indexes, newest at seen[(seen_at - 1) % SEEN_MAX] */
    unsigned seen_n, seen_at;
    struct cw_client *c;
    struct cw_sess *s;
    struct region_stats st;
    struct samples put, thread_read;
    char first_error[320];
    uint64_t *ids; /* scratch, INDEX_IDS_MAX */
};

struct probe {
    bool busy;
    char key[96];
    uint64_t ack_ns;
};

struct watcher {
    struct run *run;
    unsigned from, to;
    pthread_t thread;
    struct samples vis;
    uint64_t unseen, errors;
};

struct run {
    const struct opts *o;
    const struct cw_config *cfg;
    const struct mode_def *mode;
    char prefix[48]; /* keys of this run of this mode start with it */
    unsigned link_ms[REGIONS_MAX][REGIONS_MAX];
    pthread_mutex_t mu;
    struct post *posts;
    uint32_t n_posts;
    struct reply *replies;
    uint32_t n_replies;
    uint32_t recent[RECENT_MAX]; /* newest at recent[(recent_at - 1) % RECENT_MAX] */
    unsigned recent_n, recent_at;
    uint32_t region_recent[REGIONS_MAX][REGION_RECENT];
    unsigned region_recent_n[REGIONS_MAX], region_recent_at[REGIONS_MAX];
    struct probe probes[REGIONS_MAX][REGIONS_MAX]; /* [from][to] */
    atomic_int stop_users, stop_probes, stop_watchers;
    atomic_uint_fast64_t cut_ns, heal_ns, ops_done, orphans_now, refused_now;
    uint64_t refuse_grace_ns;
    unsigned n_users;
    struct user *users;
    unsigned n_watchers;
    struct watcher *watchers;
    double run_s;
};

/* ------------------------------------------------------------- the results */

struct pair_vis {
    unsigned from, to;
    double p50, p99;
    size_t n;
    uint64_t unseen;
};

struct mode_result {
    const char *mode;
    double secs;
    uint64_t ops, ops_by_kind[OP_KINDS];
    double throughput;
    size_t n_put, n_thread, n_vis;
    double put_p50, put_p99, thread_p50, thread_p99, vis_p50, vis_p99;
    struct samples put, thread_read, vis; /* sorted, for the CDFs */
    unsigned n_pairs;
    struct pair_vis pairs[REGIONS_MAX * (REGIONS_MAX - 1)];
    struct region_stats total;
    struct region_stats by_region[REGIONS_MAX];
    uint64_t lost_replies; /* distinct acknowledged replies missing in some region */
    uint64_t acked_replies, acked_posts, threads_checked;
    bool quiet;             /* every region was quiet before the check */
    double quiet_wait_s;
    char first_error[320];
    /* The replication traffic of the mode: every region's repl_ counters after
     * the quiet wait minus before the users started, summed over regions. */
    bool repl_ok; /* every region answered both times */
    struct cw_status_replication repl;
    double repl_meta, repl_lz4; /* per record; before / after LZ4; NAN: no record */
};

/* --------------------------------------------------------------- requests */

static bool is_partition_error(int rc)
{
    return rc == CW_ENOQUORUM || rc == CW_ETIMEOUT || rc == CW_ESTRONG || rc == CW_EUNAVAILABLE ||
           rc == CW_ENOTREADY || rc == CW_ENET;
}

/* Counts a failed request: refused when it failed during the partition (or
 * within the strong time-out after the heal) with an error a partition causes,
 * else an error. Nothing is retried. */
static void note_failure(struct user *u, int rc, const char *what)
{
    struct run *r = u->run;
    uint64_t now = mono_ns(), cut = atomic_load(&r->cut_ns), heal = atomic_load(&r->heal_ns);
    bool in_partition = cut != 0 && now >= cut && (heal == 0 || now <= heal + r->refuse_grace_ns);
    if (in_partition && is_partition_error(rc)) {
        u->st.refused++;
        atomic_fetch_add(&r->refused_now, 1);
        return;
    }
    if (u->st.errors++ == 0)
        snprintf(u->first_error, sizeof(u->first_error), "%s at %s: %s (%s)", what,
                 r->cfg->regions[u->region].name, cw_strerror(rc), cw_client_error(u->c));
}

static int timed_put(struct user *u, const char *bucket, const char *key, const void *val,
                     size_t len, const char *context, enum cw_put_cond_kind cond, uint64_t expect,
                     struct cw_put_result *res)
{
    uint64_t t0 = mono_ns();
    int rc;
    if (u->run->mode->strong)
        rc = cw_put_if(u->c, u->s, bucket, key, strlen(key), val, len, cond, expect, res);
    else
        rc = cw_put(u->c, u->s, bucket, key, strlen(key), val, len, context, res);
    if (rc == CW_OK)
        samples_add(&u->put, (mono_ns() - t0) / 1000);
    return rc;
}

static void post_key(const struct run *r, const struct post *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s/p%u.%u", r->prefix, p->user, p->seq);
}

static void thread_key(const struct run *r, const struct post *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s/t/p%u.%u", r->prefix, p->user, p->seq);
}

static void reply_key(const struct run *r, unsigned user, unsigned seq, char *buf, size_t len)
{
    snprintf(buf, len, "%s/r%u.%u", r->prefix, user, seq);
}

static void seen_add(struct user *u, uint32_t post)
{
    for (unsigned i = 0; i < u->seen_n; i++)
        if (u->seen[i] == post)
            return;
    u->seen[u->seen_at % SEEN_MAX] = post;
    u->seen_at++;
    if (u->seen_n < SEEN_MAX)
        u->seen_n++;
}

/* ---------------------------------------------------------------- the ops */

static bool op_post(struct user *u)
{
    struct run *r = u->run;
    struct post p = {.user = u->id, .seq = ++u->post_seq, .region = u->region};
    char key[96], val[160];
    post_key(r, &p, key, sizeof(key));
    int len = snprintf(val, sizeof(val), "post %u by user %u in %s: what a day at the feed demo",
                       p.seq, u->id, r->cfg->regions[u->region].name);
    int rc = timed_put(u, r->mode->posts, key, val, (size_t)len, NULL, CW_PUT_ALWAYS, 0, NULL);
    if (rc != CW_OK) {
        note_failure(u, rc, "post");
        return false;
    }
    p.ack_ns = mono_ns();
    p.first_reply = p.last_reply = UINT32_MAX;
    pthread_mutex_lock(&r->mu);
    if (r->n_posts < POSTS_MAX) {
        uint32_t idx = r->n_posts++;
        r->posts[idx] = p;
        r->recent[r->recent_at++ % RECENT_MAX] = idx;
        if (r->recent_n < RECENT_MAX)
            r->recent_n++;
        r->region_recent[u->region][r->region_recent_at[u->region]++ % REGION_RECENT] = idx;
        if (r->region_recent_n[u->region] < REGION_RECENT)
            r->region_recent_n[u->region]++;
        seen_add(u, idx);
    }
    pthread_mutex_unlock(&r->mu);
    return true;
}

/* Reads the newest posts of one region; those found join the user's seen list. */
static bool op_timeline(struct user *u)
{
    struct run *r = u->run;
    unsigned reg = u->run->o->run_regions[next_rand(&u->rng) % u->run->o->n_run_regions];
    uint32_t pick[TIMELINE_POSTS];
    struct post posts[TIMELINE_POSTS];
    unsigned n = 0;
    pthread_mutex_lock(&r->mu);
    for (unsigned i = 0; i < TIMELINE_POSTS && i < r->region_recent_n[reg]; i++) {
        pick[n] = r->region_recent[reg][(r->region_recent_at[reg] - 1 - i) % REGION_RECENT];
        posts[n] = r->posts[pick[n]];
        n++;
    }
    pthread_mutex_unlock(&r->mu);
    for (unsigned i = 0; i < n; i++) {
        char key[96];
        struct cw_get_result *g = NULL;
        post_key(r, &posts[i], key, sizeof(key));
        int rc = cw_get(u->c, u->s, r->mode->posts, key, strlen(key), &g);
        if (rc != CW_OK) {
            note_failure(u, rc, "timeline read");
            return false;
        }
        if (g->found)
            seen_add(u, pick[i]);
        cw_get_result_free(&g);
    }
    return true;
}

/* Reads a hot thread (Zipf over the threads with the newest posts or replies):
 * its index, its post and its newest reply; counts orphans and stale reads. */
static bool op_thread(struct user *u)
{
    struct run *r = u->run;
    pthread_mutex_lock(&r->mu);
    unsigned n = r->recent_n;
    if (n == 0) {
        pthread_mutex_unlock(&r->mu);
        return op_post(u);
    }
    uint32_t pi = r->recent[(r->recent_at - 1 - zipf_rank(&u->rng, n)) % RECENT_MAX];
    struct post p = r->posts[pi];
    pthread_mutex_unlock(&r->mu);

    char tkey[96], pkey[96];
    thread_key(r, &p, tkey, sizeof(tkey));
    post_key(r, &p, pkey, sizeof(pkey));
    uint64_t t0 = mono_ns();
    struct cw_get_result *gi = NULL, *gp = NULL;
    int rc = cw_get(u->c, u->s, r->mode->threads, tkey, strlen(tkey), &gi);
    if (rc != CW_OK) {
        note_failure(u, rc, "thread index read");
        return false;
    }
    size_t nids = ids_from_result(gi, u->ids, INDEX_IDS_MAX);
    cw_get_result_free(&gi);
    rc = cw_get(u->c, u->s, r->mode->posts, pkey, strlen(pkey), &gp);
    if (rc != CW_OK) {
        note_failure(u, rc, "post read");
        return false;
    }
    bool post_found = gp->found;
    cw_get_result_free(&gp);
    if (post_found && nids > 0) {
        /* Render the newest reply, as a feed would. */
        char rkey[96];
        uint64_t last = u->ids[nids - 1];
        reply_key(r, (unsigned)(last >> 32), (unsigned)(last & 0xffffffffu), rkey, sizeof(rkey));
        struct cw_get_result *gr = NULL;
        rc = cw_get(u->c, u->s, r->mode->replies, rkey, strlen(rkey), &gr);
        cw_get_result_free(&gr);
        if (rc != CW_OK) {
            note_failure(u, rc, "reply read");
            return false;
        }
    }
    samples_add(&u->thread_read, (mono_ns() - t0) / 1000);

    if (nids > 0 && !post_found) {
        u->st.orphans++;
        u->st.orphan_replies += nids;
        atomic_fetch_add(&r->orphans_now, 1);
    } else if (!post_found) {
        u->st.not_yet++;
    }
    /* Stale: a write acknowledged before this read began that it did not see. */
    bool stale = !post_found && p.ack_ns < t0;
    pthread_mutex_lock(&r->mu);
    for (uint32_t ri = r->posts[pi].first_reply; !stale && ri != UINT32_MAX;
         ri = r->replies[ri].next) {
        const struct reply *rep = &r->replies[ri];
        if (rep->ack_ns < t0 && !ids_has(u->ids, nids, reply_pack(rep->user, rep->seq)))
            stale = true;
    }
    pthread_mutex_unlock(&r->mu);
    if (stale)
        u->st.stale++;
    if (post_found)
        seen_add(u, pi);
    return true;
}

/* Appends reply id to the thread index: siblings merged by union and written
 * back with the context read (causal, eventual), or compare-and-set (strong). */
static int thread_append(struct user *u, const char *tkey, uint64_t id)
{
    struct run *r = u->run;
    for (unsigned attempt = 0; attempt < CAS_TRIES_MAX; attempt++) {
        struct cw_get_result *g = NULL;
        int rc = cw_get(u->c, u->s, r->mode->threads, tkey, strlen(tkey), &g);
        if (rc != CW_OK) {
            note_failure(u, rc, "thread index read (reply)");
            return rc;
        }
        size_t n = 0;
        if (g->found)
            for (size_t i = 0; i < g->n; i++)
                ids_parse(g->versions[i].value, g->versions[i].len, u->ids, &n, INDEX_IDS_MAX - 1);
        if (g->n > 1)
            u->st.sibling_merges++;
        u->ids[n++] = id;
        n = ids_unique(u->ids, n);
        size_t len;
        char *val = ids_format(u->ids, n, &len);
        if (val == NULL) {
            cw_get_result_free(&g);
            note_failure(u, CW_ENOMEM, "thread append");
            return CW_ENOMEM;
        }
        struct cw_put_result res;
        if (r->mode->strong)
            rc = timed_put(u, r->mode->threads, tkey, val, len, NULL,
                           g->version ? CW_PUT_IF_VERSION : CW_PUT_IF_ABSENT, g->version, &res);
        else
            rc = timed_put(u, r->mode->threads, tkey, val, len, g->context, CW_PUT_ALWAYS, 0, &res);
        free(val);
        cw_get_result_free(&g);
        if (rc == CW_ECONFLICT) {
            u->st.conflicts++; /* another reply got in first: read again, append again */
            continue;
        }
        if (rc != CW_OK)
            note_failure(u, rc, "thread index write");
        return rc;
    }
    note_failure(u, CW_ECONFLICT, "thread append (compare-and-set attempts exhausted)");
    return CW_ECONFLICT;
}

static void probe_offer(struct run *r, unsigned from, const char *key, uint64_t ack_ns)
{
    if (atomic_load(&r->stop_probes))
        return;
    for (unsigned k = 0; k < r->o->n_run_regions; k++) {
        unsigned to = r->o->run_regions[k];
        struct probe *pr = &r->probes[from][to];
        if (to == from || pr->busy)
            continue;
        snprintf(pr->key, sizeof(pr->key), "%s", key);
        pr->ack_ns = ack_ns;
        pr->busy = true;
    }
}

static bool op_reply(struct user *u)
{
    struct run *r = u->run;
    if (u->seen_n == 0)
        return op_timeline(u);
    unsigned rank = zipf_rank(&u->rng, u->seen_n);
    uint32_t pi = u->seen[(u->seen_at - 1 - rank) % SEEN_MAX];
    pthread_mutex_lock(&r->mu);
    struct post p = r->posts[pi];
    pthread_mutex_unlock(&r->mu);

    unsigned seq = ++u->reply_seq;
    char rkey[96], tkey[96], val[200];
    reply_key(r, u->id, seq, rkey, sizeof(rkey));
    thread_key(r, &p, tkey, sizeof(tkey));
    int len = snprintf(val, sizeof(val), "reply %u by user %u in %s to p%u.%u: so true!", seq,
                       u->id, r->cfg->regions[u->region].name, p.user, p.seq);
    int rc = timed_put(u, r->mode->replies, rkey, val, (size_t)len, NULL, CW_PUT_ALWAYS, 0, NULL);
    if (rc != CW_OK) {
        note_failure(u, rc, "reply");
        return false;
    }
    if (thread_append(u, tkey, reply_pack(u->id, seq)) != CW_OK)
        return false;
    uint64_t ack = mono_ns();
    pthread_mutex_lock(&r->mu);
    if (r->n_replies < REPLIES_MAX) {
        uint32_t ri = r->n_replies++;
        r->replies[ri] = (struct reply){
            .user = u->id, .seq = seq, .post = pi, .next = UINT32_MAX, .ack_ns = ack};
        struct post *pp = &r->posts[pi];
        if (pp->last_reply == UINT32_MAX)
            pp->first_reply = ri;
        else
            r->replies[pp->last_reply].next = ri;
        pp->last_reply = ri;
        pp->n_replies++;
    }
    /* The thread is active again: it moves to the front of the hot list, as a
     * "new reply" notification would bring readers to it. */
    r->recent[r->recent_at++ % RECENT_MAX] = pi;
    if (r->recent_n < RECENT_MAX)
        r->recent_n++;
    probe_offer(r, u->region, rkey, ack);
    pthread_mutex_unlock(&r->mu);
    return true;
}

static bool op_like(struct user *u)
{
    struct run *r = u->run;
    if (u->seen_n == 0)
        return op_timeline(u);
    uint32_t pi = u->seen[(u->seen_at - 1 - zipf_rank(&u->rng, u->seen_n)) % SEEN_MAX];
    pthread_mutex_lock(&r->mu);
    struct post p = r->posts[pi];
    pthread_mutex_unlock(&r->mu);
    char key[128];
    snprintf(key, sizeof(key), "%s/l/p%u.%u/u%u", r->prefix, p.user, p.seq, u->id);
    int rc = timed_put(u, r->mode->posts, key, "1", 1, NULL, CW_PUT_ALWAYS, 0, NULL);
    if (rc != CW_OK) {
        note_failure(u, rc, "like");
        return false;
    }
    return true;
}

static void *user_main(void *arg)
{
    struct user *u = arg;
    struct run *r = u->run;
    const struct opts *o = r->o;
    unsigned total = 0;
    for (unsigned k = 0; k < OP_KINDS; k++)
        total += o->mix[k];
    while (!atomic_load(&r->stop_users) && !atomic_load(&interrupted)) {
        unsigned x = (unsigned)(next_rand(&u->rng) % total), kind = 0;
        while (x >= o->mix[kind]) {
            x -= o->mix[kind];
            kind++;
        }
        bool ok = false;
        switch ((enum op)kind) {
        case OP_TIMELINE: ok = op_timeline(u); break;
        case OP_THREAD: ok = op_thread(u); break;
        case OP_POST: ok = op_post(u); break;
        case OP_REPLY: ok = op_reply(u); break;
        case OP_LIKE: ok = op_like(u); break;
        }
        if (ok) {
            u->st.ops[kind]++;
            atomic_fetch_add(&r->ops_done, 1);
        }
        /* Think time: uniform in 0..2 x think_ms, from the user's own stream. */
        if (o->think_ms)
            sleep_ns(next_rand(&u->rng) % (2ull * o->think_ms * 1000000u + 1));
    }
    return NULL;
}

/* ------------------------------------------------------------ the watchers */

/* Connects to region's client (or admin) endpoint with copt (NULL: defaults).
 * With security = curve the node's public key comes from the config and this
 * program's key pair from the file named by $CAUSEWAY_KEY_FILE (checked at
 * start; the demo uses an admin key, since it changes links). */
static int feed_connect(const struct cw_config *cfg, unsigned region, bool admin,
                        const struct cw_client_options *copt, struct cw_client **out)
{
    struct cw_client_options o;
    if (copt != NULL)
        o = *copt;
    else
        cw_client_options_init(&o);
    if (cfg->security == CW_SECURITY_CURVE) {
        char err[256];
        const char *kf = getenv("CAUSEWAY_KEY_FILE");
        int rc = kf != NULL ? cw_client_options_key_file(&o, kf, err, sizeof(err)) : CW_EINVAL;
        if (rc != CW_OK)
            return rc;
        snprintf(o.server_key, sizeof(o.server_key), "%s", cfg->regions[region].public_key);
    }
    const char *endpoint = admin ? cfg->regions[region].admin : cfg->regions[region].client;
    return cw_client_connect(endpoint, &o, out);
}

/* Times how long a reply written in `from` takes to be readable in `to`: from
 * the writer's acknowledgement to the first read here that finds it. */
static void *watcher_main(void *arg)
{
    struct watcher *w = arg;
    struct run *r = w->run;
    struct cw_client *c = NULL;
    struct cw_client_options copt;
    cw_client_options_init(&copt);
    copt.timeout_ms = r->cfg->strong_timeout_ms + 5000;
    copt.retries = 0;
    if (feed_connect(r->cfg, w->to, false, &copt, &c) != CW_OK)
        return NULL;
    struct probe *slot = &r->probes[w->from][w->to];
    while (!atomic_load(&r->stop_watchers) && !atomic_load(&interrupted)) {
        struct probe pr;
        pthread_mutex_lock(&r->mu);
        pr = *slot;
        pthread_mutex_unlock(&r->mu);
        if (!pr.busy) {
            sleep_ms(2);
            continue;
        }
        /* A causal or eventual write cannot arrive before the link's delay:
         * poll from a little before it, every millisecond, then every 10 ms. */
        uint64_t first = pr.ack_ns;
        if (!r->mode->strong) {
            uint64_t d = (uint64_t)r->link_ms[w->from][w->to] * 1000000u;
            first += d > 3000000u ? d - 3000000u : 0;
        }
        uint64_t now = mono_ns();
        if (first > now)
            sleep_ns(first - now);
        bool seen = false;
        uint64_t deadline = pr.ack_ns + 60ull * 1000000000u;
        while (!atomic_load(&r->stop_watchers) && !atomic_load(&interrupted) &&
               mono_ns() < deadline) {
            struct cw_get_result *g = NULL;
            int rc = cw_get(c, NULL, r->mode->replies, pr.key, strlen(pr.key), &g);
            uint64_t t = mono_ns();
            bool found = rc == CW_OK && g->found;
            cw_get_result_free(&g);
            if (rc != CW_OK)
                w->errors++;
            if (found) {
                samples_add(&w->vis, (t - pr.ack_ns) / 1000);
                seen = true;
                break;
            }
            sleep_ms(t - first < 300000000u ? 1 : 10);
        }
        if (!seen)
            w->unseen++;
        pthread_mutex_lock(&r->mu);
        slot->busy = false;
        pthread_mutex_unlock(&r->mu);
    }
    cw_client_close(&c);
    return NULL;
}

/* ------------------------------------------------------------ admin: links */

static int link_set(const struct cw_config *cfg, unsigned from, unsigned to,
                    enum cw_admin_link op, unsigned delay_ms)
{
    struct cw_client *a = NULL;
    int rc = feed_connect(cfg, from, true, NULL, &a);
    if (rc == CW_OK)
        rc = cw_link(a, cfg->regions[from].name, cfg->regions[to].name, op, delay_ms);
    if (rc != CW_OK)
        fprintf(stderr, "causeway-feed: cannot change the link %s -> %s: %s (%s)\n",
                cfg->regions[from].name, cfg->regions[to].name, cw_strerror(rc),
                a ? cw_client_error(a) : "no client");
    cw_client_close(&a);
    return rc;
}

/* Cuts (or heals) every link between region x and the other regions, both ways. */
static int partition_set(const struct opts *o, const struct cw_config *cfg, unsigned x, bool cut)
{
    int rc = CW_OK;
    for (unsigned i = 0; i < cfg->n_regions; i++) {
        if (i == x)
            continue;
        enum cw_admin_link op = cut ? CW_ADMIN_LINK_CUT : CW_ADMIN_LINK_HEAL;
        int a = link_set(cfg, x, i, op, 0), b = link_set(cfg, i, x, op, 0);
        if (rc == CW_OK)
            rc = a != CW_OK ? a : b;
    }
    (void)o;
    return rc;
}

/* ---------------------------------------------------------------- quiet */

/* Waits until every region has shipped and applied everything (causal and
 * eventual: empty outboxes and dependency buffers; strong: the same applied
 * index everywhere), at most limit_s. */
static bool wait_quiet(const struct cw_config *cfg, bool strong, unsigned limit_s, double *waited)
{
    uint64_t t0 = mono_ns(), deadline = t0 + (uint64_t)limit_s * 1000000000u;
    struct cw_client *c[REGIONS_MAX] = {0};
    bool ok = true;
    for (unsigned i = 0; i < cfg->n_regions; i++)
        if (feed_connect(cfg, i, false, NULL, &c[i]) != CW_OK)
            ok = false;
    bool quiet = false;
    unsigned rounds_quiet = 0;
    while (ok && !quiet && mono_ns() < deadline && !atomic_load(&interrupted)) {
        bool all = true;
        uint64_t applied0 = 0;
        for (unsigned i = 0; i < cfg->n_regions && all; i++) {
            struct cw_status *s = NULL;
            if (cw_status_get(c[i], &s) != CW_OK) {
                all = false;
                break;
            }
            if (s->outbox_total != 0 || s->buffered != 0)
                all = false;
            if (strong) {
                if (i == 0)
                    applied0 = s->strong.applied;
                else if (s->strong.applied != applied0)
                    all = false;
            }
            cw_status_free(&s);
        }
        /* Twice in a row, so that nothing was in flight between two looks. */
        rounds_quiet = all ? rounds_quiet + 1 : 0;
        quiet = rounds_quiet >= 2;
        if (!quiet)
            sleep_ms(100);
    }
    for (unsigned i = 0; i < cfg->n_regions; i++)
        cw_client_close(&c[i]);
    *waited = (double)(mono_ns() - t0) / 1e9;
    return quiet;
}

/* acc += x (add) or acc -= x (!add), member by member. */
static void repl_add(struct cw_status_replication *acc, const struct cw_status_replication *x,
                     bool add)
{
    uint64_t *a[] = {&acc->records,         &acc->frames,      &acc->metadata_bytes,
                     &acc->key_bytes,       &acc->value_bytes, &acc->batch_bytes,
                     &acc->batch_lz4_bytes, &acc->frame_bytes};
    const uint64_t v[] = {x->records,     x->frames,      x->metadata_bytes,  x->key_bytes,
                          x->value_bytes, x->batch_bytes, x->batch_lz4_bytes, x->frame_bytes};
    _Static_assert(sizeof(v) == sizeof(*x), "every member of cw_status_replication");
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        *a[i] = add ? *a[i] + v[i] : *a[i] - v[i];
}

/* Sums the repl_ counters of every region into *out; false when a region does
 * not answer. */
static bool repl_totals(const struct cw_config *cfg, struct cw_status_replication *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < cfg->n_regions; i++) {
        struct cw_client *c = NULL;
        struct cw_status *s = NULL;
        bool ok = feed_connect(cfg, i, false, NULL, &c) == CW_OK && cw_status_get(c, &s) == CW_OK;
        if (ok)
            repl_add(out, &s->replication, true);
        cw_status_free(&s);
        cw_client_close(&c);
        if (!ok)
            return false;
    }
    return true;
}

/* The latency floor (tools/bench/ping.h, as causeway-bench --ping): n no-op
 * round trips, one at a time, to each region with users, before any load;
 * their samples go to *out (microseconds). Returns CW_OK or the first error. */
static int ping_floor(const struct opts *o, const struct cw_config *cfg, unsigned n,
                      struct samples *out)
{
    for (unsigned k = 0; k < o->n_run_regions; k++) {
        struct cw_client *c = NULL;
        int rc = feed_connect(cfg, o->run_regions[k], false, NULL, &c);
        /* The first round trip pays for the connection: not a sample. */
        if (rc == CW_OK)
            rc = tool_ping(c, o->modes[0]->posts);
        for (unsigned i = 0; rc == CW_OK && i < n; i++) {
            uint64_t t0 = mono_ns();
            rc = tool_ping(c, o->modes[0]->posts);
            samples_add(out, (mono_ns() - t0) / 1000);
        }
        cw_client_close(&c);
        if (rc != CW_OK)
            return rc;
    }
    samples_sort(out);
    return CW_OK;
}

/* Waits (at most limit_s) until every region names the same strong leader, so
 * that the strong mode does not start in the middle of an election. */
static bool wait_leader(const struct cw_config *cfg, unsigned limit_s)
{
    uint64_t deadline = mono_ns() + (uint64_t)limit_s * 1000000000u;
    while (mono_ns() < deadline && !atomic_load(&interrupted)) {
        int leader = -2;
        bool agreed = true;
        for (unsigned i = 0; i < cfg->n_regions && agreed; i++) {
            struct cw_client *c = NULL;
            struct cw_status *s = NULL;
            if (feed_connect(cfg, i, false, NULL, &c) != CW_OK ||
                cw_status_get(c, &s) != CW_OK || s->strong.leader < 0 ||
                (leader != -2 && s->strong.leader != leader))
                agreed = false;
            else
                leader = s->strong.leader;
            cw_status_free(&s);
            cw_client_close(&c);
        }
        if (agreed)
            return true;
        sleep_ms(200);
    }
    return false;
}

/* ------------------------------------------------------ lost-reply check */

struct verifier {
    struct run *r;
    unsigned region;
    uint32_t *todo; /* posts with acknowledged replies */
    uint32_t n_todo;
    atomic_uint *next;
    pthread_t thread;
    uint64_t lost, errors;
};

static void *verifier_main(void *arg)
{
    struct verifier *v = arg;
    struct run *r = v->r;
    struct cw_client *c = NULL;
    struct cw_client_options copt;
    cw_client_options_init(&copt);
    copt.timeout_ms = r->cfg->strong_timeout_ms + 5000;
    uint64_t *ids = malloc(INDEX_IDS_MAX * sizeof(*ids));
    if (ids == NULL || feed_connect(r->cfg, v->region, false, &copt, &c) != CW_OK) {
        v->errors++;
        free(ids);
        return NULL;
    }
    for (;;) {
        unsigned k = atomic_fetch_add(v->next, 1);
        if (k >= v->n_todo)
            break;
        const struct post *p = &r->posts[v->todo[k]];
        char tkey[96];
        thread_key(r, p, tkey, sizeof(tkey));
        struct cw_get_result *g = NULL;
        /* The checker (not the workload) tries a failed read again. */
        int rc = CW_OK;
        for (unsigned t = 0; t < 5; t++)
            if ((rc = cw_get(c, NULL, r->mode->threads, tkey, strlen(tkey), &g)) == CW_OK)
                break;
        if (rc != CW_OK) {
            v->errors++;
            continue;
        }
        size_t n = ids_from_result(g, ids, INDEX_IDS_MAX);
        cw_get_result_free(&g);
        for (uint32_t ri = p->first_reply; ri != UINT32_MAX; ri = r->replies[ri].next) {
            struct reply *rep = &r->replies[ri];
            if (!ids_has(ids, n, reply_pack(rep->user, rep->seq))) {
                v->lost++;
                pthread_mutex_lock(&r->mu);
                rep->lost_in |= (uint16_t)(1u << v->region);
                pthread_mutex_unlock(&r->mu);
            }
        }
    }
    free(ids);
    cw_client_close(&c);
    return NULL;
}

/* ------------------------------------------------------------ one mode */

static void progress(const struct run *r, unsigned mode_no, double elapsed, bool final)
{
    static bool tty = false, tty_known = false;
    if (!tty_known) {
        tty = isatty(STDERR_FILENO);
        tty_known = true;
    }
    uint64_t cut = atomic_load(&r->cut_ns), heal = atomic_load(&r->heal_ns);
    const char *part = cut == 0 ? "" : heal == 0 ? ", partition: on" : ", partition: healed";
    char line[256];
    snprintf(line, sizeof(line),
             "[%u/%u %-8s %3.0f/%u s] %" PRIu64 " ops, orphans %" PRIu64 ", refused %" PRIu64
             "%s",
             mode_no + 1, r->o->n_modes, r->mode->name, elapsed, r->o->duration_s,
             (uint64_t)atomic_load(&r->ops_done), (uint64_t)atomic_load(&r->orphans_now),
             (uint64_t)atomic_load(&r->refused_now), part);
    if (tty)
        fprintf(stderr, "\r%-100s%s", line, final ? "\n" : "");
    else
        fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

static int run_mode(const struct opts *o, const struct cw_config *cfg, const struct mode_def *m,
                    unsigned mode_no, unsigned link_ms[REGIONS_MAX][REGIONS_MAX],
                    struct mode_result *res)
{
    if (m->strong && !wait_leader(cfg, 30)) {
        fprintf(stderr, "causeway-feed: strong: the regions do not agree on a Raft leader after "
                        "30 s; see causeway status in each region (strong.leader)\n");
        return CW_ESTRONG;
    }
    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return CW_ENOMEM;
    int ret = CW_OK;
    r->o = o;
    r->cfg = cfg;
    r->mode = m;
    memcpy(r->link_ms, link_ms, sizeof(r->link_ms));
    /* Keys differ between runs (a run id from the clock) and modes; the choices
     * depend on the seed only. */
    snprintf(r->prefix, sizeof(r->prefix), "feed-%lx-%u", (unsigned long)time(NULL), mode_no);
    r->refuse_grace_ns = ((uint64_t)cfg->strong_timeout_ms + 1000u) * 1000000u;
    pthread_mutex_init(&r->mu, NULL);
    r->posts = calloc(POSTS_MAX, sizeof(*r->posts));
    r->replies = calloc(REPLIES_MAX, sizeof(*r->replies));
    r->n_users = o->users * o->n_run_regions;
    r->users = calloc(r->n_users, sizeof(*r->users));
    r->n_watchers = o->n_run_regions * (o->n_run_regions - 1);
    r->watchers = calloc(r->n_watchers ? r->n_watchers : 1, sizeof(*r->watchers));
    if (r->posts == NULL || r->replies == NULL || r->users == NULL || r->watchers == NULL) {
        ret = CW_ENOMEM;
        goto out_free;
    }
    struct cw_client_options copt;
    cw_client_options_init(&copt);
    copt.timeout_ms = cfg->strong_timeout_ms + 5000; /* the node answers first */
    copt.retries = 0;                                /* nothing is retried silently */
    for (unsigned i = 0; i < r->n_users; i++) {
        struct user *u = &r->users[i];
        u->run = r;
        u->id = i;
        u->region = o->run_regions[i / o->users];
        /* The same seed gives every user the same stream in every mode. */
        u->rng = o->seed * 0x100000001b3ull + i * 0x9e3779b97f4a7c15ull + 1;
        u->ids = malloc(INDEX_IDS_MAX * sizeof(*u->ids));
        if (u->ids == NULL) {
            ret = CW_ENOMEM;
            goto out_users;
        }
        int rc = feed_connect(cfg, u->region, false, &copt, &u->c);
        if (rc == CW_OK)
            rc = cw_sess_new(0, &u->s);
        if (rc != CW_OK) {
            fprintf(stderr, "causeway-feed: cannot connect user %u to %s: %s\n", i,
                    cfg->regions[u->region].name, cw_strerror(rc));
            ret = rc;
            goto out_users;
        }
    }
    unsigned wn = 0;
    for (unsigned a = 0; a < o->n_run_regions; a++)
        for (unsigned b = 0; b < o->n_run_regions; b++)
            if (a != b) {
                r->watchers[wn].run = r;
                r->watchers[wn].from = o->run_regions[a];
                r->watchers[wn].to = o->run_regions[b];
                wn++;
            }

    struct cw_status_replication repl_before;
    res->repl_ok = repl_totals(cfg, &repl_before);
    unsigned started_u = 0, started_w = 0;
    uint64_t t0 = mono_ns();
    for (; started_u < r->n_users; started_u++)
        if (pthread_create(&r->users[started_u].thread, NULL, user_main, &r->users[started_u])) {
            fprintf(stderr, "causeway-feed: cannot start user thread %u\n", started_u);
            ret = CW_ENOMEM;
            break;
        }
    for (; ret == CW_OK && started_w < r->n_watchers; started_w++)
        if (pthread_create(&r->watchers[started_w].thread, NULL, watcher_main,
                           &r->watchers[started_w])) {
            ret = CW_ENOMEM;
            break;
        }

    /* The partition: from a third of the mode, for partition_s seconds. */
    uint64_t dur_ns = (uint64_t)o->duration_s * 1000000000u;
    uint64_t cut_at = t0 + dur_ns / 3, heal_at = cut_at + (uint64_t)o->partition_s * 1000000000u;
    bool partitioned = false;
    unsigned px = (unsigned)o->partition_region;
    uint64_t last_progress = 0;
    while (ret == CW_OK && !atomic_load(&interrupted)) {
        uint64_t now = mono_ns();
        if (now - t0 >= dur_ns)
            break;
        if (o->partition && !partitioned && atomic_load(&r->cut_ns) == 0 && now >= cut_at) {
            fprintf(stderr, "%s", isatty(STDERR_FILENO) ? "\n" : "");
            fprintf(stderr, "causeway-feed: %s: cutting %s off from every other region for %u s\n",
                    m->name, cfg->regions[px].name, o->partition_s);
            partition_set(o, cfg, px, true);
            atomic_store(&r->cut_ns, mono_ns());
            partitioned = true;
        }
        if (partitioned && now >= heal_at) {
            partition_set(o, cfg, px, false);
            atomic_store(&r->heal_ns, mono_ns());
            partitioned = false;
            fprintf(stderr, "%s", isatty(STDERR_FILENO) ? "\n" : "");
            fprintf(stderr, "causeway-feed: %s: %s healed\n", m->name, cfg->regions[px].name);
        }
        if (now - last_progress >= (isatty(STDERR_FILENO) ? 1000000000ull : 5000000000ull)) {
            progress(r, mode_no, (double)(now - t0) / 1e9, false);
            last_progress = now;
        }
        sleep_ms(50);
    }
    atomic_store(&r->stop_users, 1);
    for (unsigned i = 0; i < started_u; i++)
        pthread_join(r->users[i].thread, NULL);
    r->run_s = (double)(mono_ns() - t0) / 1e9;
    if (partitioned) { /* interrupted while cut: heal before anything else */
        partition_set(o, cfg, px, false);
        atomic_store(&r->heal_ns, mono_ns());
    }
    progress(r, mode_no, r->run_s, true);

    /* Let the probes in flight finish (at most 10 s), then stop the watchers. */
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop_probes, 1);
    pthread_mutex_unlock(&r->mu);
    uint64_t probe_deadline = mono_ns() + 10000000000ull;
    for (;;) {
        bool busy = false;
        pthread_mutex_lock(&r->mu);
        for (unsigned i = 0; i < REGIONS_MAX; i++)
            for (unsigned j = 0; j < REGIONS_MAX; j++)
                busy |= r->probes[i][j].busy;
        pthread_mutex_unlock(&r->mu);
        if (!busy || mono_ns() > probe_deadline || atomic_load(&interrupted))
            break;
        sleep_ms(20);
    }
    atomic_store(&r->stop_watchers, 1);
    for (unsigned i = 0; i < started_w; i++)
        pthread_join(r->watchers[i].thread, NULL);

    if (ret != CW_OK || atomic_load(&interrupted))
        goto out_users;

    /* Quiet, then every acknowledged reply must be in its index everywhere. */
    fprintf(stderr, "causeway-feed: %s: waiting for every region to be quiet\n", m->name);
    res->quiet = wait_quiet(cfg, m->strong, 60, &res->quiet_wait_s);
    if (!res->quiet)
        fprintf(stderr,
                "causeway-feed: %s: the regions were not quiet after %.0f s; checking anyway "
                "(lost replies may be replies still on their way)\n",
                m->name, res->quiet_wait_s);
    /* Everything the mode wrote has been shipped: its replication traffic. */
    struct cw_status_replication repl_after;
    if (res->repl_ok && repl_totals(cfg, &repl_after)) {
        res->repl = repl_after;
        repl_add(&res->repl, &repl_before, false);
    } else
        res->repl_ok = false;
    cw_status_replication_ratios(&res->repl, &res->repl_meta, &res->repl_lz4);
    uint32_t *todo = malloc((r->n_posts ? r->n_posts : 1) * sizeof(*todo));
    if (todo == NULL) {
        ret = CW_ENOMEM;
        goto out_users;
    }
    uint32_t n_todo = 0;
    for (uint32_t i = 0; i < r->n_posts; i++)
        if (r->posts[i].n_replies)
            todo[n_todo++] = i;
    fprintf(stderr, "causeway-feed: %s: checking %u threads for lost replies in %u regions\n",
            m->name, n_todo, o->n_run_regions);
    struct verifier ver[REGIONS_MAX * VERIFY_THREADS];
    atomic_uint next[REGIONS_MAX];
    unsigned nv = 0;
    for (unsigned k = 0; k < o->n_run_regions; k++) {
        atomic_init(&next[k], 0);
        for (unsigned t = 0; t < VERIFY_THREADS; t++) {
            ver[nv] = (struct verifier){
                .r = r, .region = o->run_regions[k], .todo = todo, .n_todo = n_todo,
                .next = &next[k]};
            if (pthread_create(&ver[nv].thread, NULL, verifier_main, &ver[nv]) == 0)
                nv++;
        }
    }
    uint64_t verify_errors = 0;
    for (unsigned i = 0; i < nv; i++) {
        pthread_join(ver[i].thread, NULL);
        res->by_region[ver[i].region].lost += ver[i].lost;
        verify_errors += ver[i].errors;
    }
    free(todo);
    if (verify_errors)
        fprintf(stderr,
                "causeway-feed: %s: %" PRIu64 " thread indexes could not be read for the "
                "lost-reply check (not counted as lost)\n",
                m->name, verify_errors);
    res->threads_checked = n_todo;

    /* The results. */
    res->mode = m->name;
    res->secs = r->run_s;
    for (unsigned i = 0; i < r->n_users; i++) {
        struct user *u = &r->users[i];
        struct region_stats *rs = &res->by_region[u->region];
        for (unsigned k = 0; k < OP_KINDS; k++) {
            rs->ops[k] += u->st.ops[k];
            res->ops_by_kind[k] += u->st.ops[k];
            res->ops += u->st.ops[k];
        }
        rs->orphans += u->st.orphans;
        rs->orphan_replies += u->st.orphan_replies;
        rs->stale += u->st.stale;
        rs->not_yet += u->st.not_yet;
        rs->refused += u->st.refused;
        rs->errors += u->st.errors;
        rs->conflicts += u->st.conflicts;
        rs->sibling_merges += u->st.sibling_merges;
        samples_append(&res->put, &u->put);
        samples_append(&res->thread_read, &u->thread_read);
        if (res->first_error[0] == '\0' && u->first_error[0] != '\0')
            snprintf(res->first_error, sizeof(res->first_error), "%s", u->first_error);
    }
    for (unsigned i = 0; i < r->n_watchers; i++) {
        struct watcher *w = &r->watchers[i];
        samples_sort(&w->vis);
        struct pair_vis *pv = &res->pairs[res->n_pairs++];
        pv->from = w->from;
        pv->to = w->to;
        pv->n = w->vis.n;
        pv->p50 = quantile_ms(&w->vis, 0.5);
        pv->p99 = quantile_ms(&w->vis, 0.99);
        pv->unseen = w->unseen;
        res->by_region[w->to].probes_unseen += w->unseen;
        samples_append(&res->vis, &w->vis);
    }
    for (unsigned k = 0; k < o->n_run_regions; k++) {
        const struct region_stats *rs = &res->by_region[o->run_regions[k]];
        struct region_stats *t = &res->total;
        t->orphans += rs->orphans;
        t->orphan_replies += rs->orphan_replies;
        t->stale += rs->stale;
        t->not_yet += rs->not_yet;
        t->refused += rs->refused;
        t->errors += rs->errors;
        t->conflicts += rs->conflicts;
        t->sibling_merges += rs->sibling_merges;
        t->lost += rs->lost;
        t->probes_unseen += rs->probes_unseen;
    }
    for (uint32_t i = 0; i < r->n_replies; i++)
        res->lost_replies += r->replies[i].lost_in != 0;
    res->acked_replies = r->n_replies;
    res->acked_posts = r->n_posts;
    samples_sort(&res->put);
    samples_sort(&res->thread_read);
    samples_sort(&res->vis);
    res->n_put = res->put.n;
    res->n_thread = res->thread_read.n;
    res->n_vis = res->vis.n;
    res->put_p50 = quantile_ms(&res->put, 0.5);
    res->put_p99 = quantile_ms(&res->put, 0.99);
    res->thread_p50 = quantile_ms(&res->thread_read, 0.5);
    res->thread_p99 = quantile_ms(&res->thread_read, 0.99);
    res->vis_p50 = quantile_ms(&res->vis, 0.5);
    res->vis_p99 = quantile_ms(&res->vis, 0.99);
    res->throughput = res->secs > 0 ? (double)res->ops / res->secs : 0;

out_users:
    for (unsigned i = 0; i < r->n_users; i++) {
        cw_sess_free(&r->users[i].s);
        cw_client_close(&r->users[i].c);
        samples_free(&r->users[i].put);
        samples_free(&r->users[i].thread_read);
        free(r->users[i].ids);
    }
    for (unsigned i = 0; i < r->n_watchers; i++)
        samples_free(&r->watchers[i].vis);
out_free:
    free(r->posts);
    free(r->replies);
    free(r->users);
    free(r->watchers);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return ret;
}

/* ------------------------------------------------------------- reporting */

static void fmt_ms(char *buf, size_t len, double ms)
{
    if (isnan(ms))
        snprintf(buf, len, "-");
    else if (ms < 10)
        snprintf(buf, len, "%.2f", ms);
    else if (ms < 1000)
        snprintf(buf, len, "%.1f", ms);
    else
        snprintf(buf, len, "%.0f", ms);
}

static void print_table(FILE *f, const struct mode_result *res, unsigned n)
{
    fprintf(f,
            "mode      put p50/p99 ms  thread read p50/p99 ms  remote visib. p50/p99 ms   ops/s  "
            "orphans  lost replies  stale reads  refused (partition)  meta B/write  LZ4 ratio\n");
    for (unsigned i = 0; i < n; i++) {
        const struct mode_result *x = &res[i];
        char a[16], b[16], c[16], d[16], e[16], g[16], col1[40], col2[40], col3[40];
        fmt_ms(a, sizeof(a), x->put_p50);
        fmt_ms(b, sizeof(b), x->put_p99);
        fmt_ms(c, sizeof(c), x->thread_p50);
        fmt_ms(d, sizeof(d), x->thread_p99);
        fmt_ms(e, sizeof(e), x->vis_p50);
        fmt_ms(g, sizeof(g), x->vis_p99);
        snprintf(col1, sizeof(col1), "%s / %s", a, b);
        snprintf(col2, sizeof(col2), "%s / %s", c, d);
        snprintf(col3, sizeof(col3), "%s / %s", e, g);
        char meta[24], lz4[24];
        if (isnan(x->repl_meta))
            snprintf(meta, sizeof(meta), "-");
        else
            snprintf(meta, sizeof(meta), "%.1f", x->repl_meta);
        if (isnan(x->repl_lz4))
            snprintf(lz4, sizeof(lz4), "-");
        else
            snprintf(lz4, sizeof(lz4), "%.2f", x->repl_lz4);
        fprintf(f,
                "%-9s %15s  %22s  %24s  %6.0f  %7" PRIu64 "  %12" PRIu64 "  %11" PRIu64
                "  %19" PRIu64 "  %12s  %9s\n",
                x->mode, col1, col2, col3, x->throughput, x->total.orphans, x->lost_replies,
                x->total.stale, x->total.refused, meta, lz4);
    }
}

/* The floor of the run: no-op round trips before any load (ping_floor). */
struct floor {
    size_t n;
    double p50, p99; /* ms; NAN when not measured */
};

/* One row of the targets: what, the measured figure, the verdict. */
struct target {
    char what[96], measured[160], verdict[96];
};

static const struct mode_result *find_mode(const struct mode_result *res, unsigned n,
                                           const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(res[i].mode, name) == 0)
            return &res[i];
    return NULL;
}

/* The demo's targets (docs/benchmarks.md, "The social-feed demo") as measured
 * by this run; returns how many rows (at most max). */
static unsigned targets_eval(const struct cw_config *cfg, const struct mode_result *res, unsigned n,
                             const struct floor *fl, struct target *t, unsigned max)
{
    unsigned k = 0;
    const struct mode_result *ca = find_mode(res, n, "causal"), *ev = find_mode(res, n, "eventual");
    if (k < max && ca != NULL && ev != NULL) {
        double r = ev->throughput > 0 ? ca->throughput / ev->throughput : NAN;
        snprintf(t[k].what, sizeof(t[k].what), "causal throughput >= 95%% of eventual");
        snprintf(t[k].measured, sizeof(t[k].measured), "%.0f / %.0f ops/s = %.0f%%", ca->throughput,
                 ev->throughput, 100 * r);
        snprintf(t[k].verdict, sizeof(t[k].verdict), "%s", r >= 0.95 ? "met" : "missed");
        k++;
    }
    if (k < max && ca != NULL) {
        double x = ca->put_p50 / fl->p50;
        /* The target is for light load (docs/benchmarks.md: tools/bench-run
         * --only local measures it); the demo's users are not light load. */
        snprintf(t[k].what, sizeof(t[k].what),
                 "causal put p50 <= %.1fx the ping floor (at light load; here: the demo's)",
                 PUT_P50_FLOOR_X);
        snprintf(t[k].measured, sizeof(t[k].measured),
                 "put p50 %.3f ms, floor p50 %.3f ms (%zu pings before the load): %.2fx",
                 ca->put_p50, fl->p50, fl->n, x);
        if (isnan(x))
            snprintf(t[k].verdict, sizeof(t[k].verdict), "not measured");
        else
            snprintf(t[k].verdict, sizeof(t[k].verdict), "%s by %.2fx",
                     x <= PUT_P50_FLOOR_X ? "met" : "missed",
                     x <= PUT_P50_FLOOR_X ? PUT_P50_FLOOR_X - x : x - PUT_P50_FLOOR_X);
        k++;
    }
    if (k < max && ca != NULL) {
        double d = ca->put_p99 - PUT_P99_TARGET_MS;
        snprintf(t[k].what, sizeof(t[k].what),
                 "causal put p99 <= %.0f ms (at light load; here: the demo's)",
                 PUT_P99_TARGET_MS);
        snprintf(t[k].measured, sizeof(t[k].measured), "%.3f ms", ca->put_p99);
        snprintf(t[k].verdict, sizeof(t[k].verdict), "%s by %.3f ms", d <= 0 ? "met" : "missed",
                 fabs(d));
        k++;
    }
    double bound = 16.0 * cfg->n_regions + 32;
    for (unsigned i = 0; i < n && k < max; i++) {
        const struct mode_result *x = &res[i];
        snprintf(t[k].what, sizeof(t[k].what),
                 "%s: metadata per replicated write <= 16 x %u + 32 = %.0f B before LZ4", x->mode,
                 cfg->n_regions, bound);
        if (isnan(x->repl_meta)) {
            snprintf(t[k].measured, sizeof(t[k].measured), "%s",
                     x->repl_ok ? "no record replicated (strong writes go through Raft)"
                                : "a region did not answer status");
            snprintf(t[k].verdict, sizeof(t[k].verdict), "not measured");
        } else {
            snprintf(t[k].measured, sizeof(t[k].measured),
                     "%.1f B (%" PRIu64 " records sent); LZ4 ratio %.2f (%" PRIu64 " -> %" PRIu64
                     " B)",
                     x->repl_meta, x->repl.records, x->repl_lz4, x->repl.batch_bytes,
                     x->repl.batch_lz4_bytes);
            snprintf(t[k].verdict, sizeof(t[k].verdict), "%s by %.1f B",
                     x->repl_meta <= bound ? "met" : "missed", fabs(bound - x->repl_meta));
        }
        k++;
    }
    return k;
}

static void print_targets(FILE *f, const struct target *t, unsigned n)
{
    fprintf(f, "\ntargets (docs/benchmarks.md, The social-feed demo)\n");
    for (unsigned i = 0; i < n; i++)
        fprintf(f, "  %-74s  %-88s  %s\n", t[i].what, t[i].measured, t[i].verdict);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v))
        fprintf(f, "null");
    else
        fprintf(f, "%.3f", v);
}

static void json_stats(FILE *f, const struct region_stats *s)
{
    fprintf(f,
            "\"orphans\":%" PRIu64 ",\"orphan_replies\":%" PRIu64 ",\"stale_reads\":%" PRIu64
            ",\"post_not_visible_yet\":%" PRIu64 ",\"refused_partition\":%" PRIu64
            ",\"errors\":%" PRIu64 ",\"cas_conflicts\":%" PRIu64 ",\"sibling_merges\":%" PRIu64
            ",\"lost_replies\":%" PRIu64 ",\"probes_unseen\":%" PRIu64,
            s->orphans, s->orphan_replies, s->stale, s->not_yet, s->refused, s->errors,
            s->conflicts, s->sibling_merges, s->lost, s->probes_unseen);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const char *c = s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', f);
        if ((unsigned char)*c >= 0x20)
            fputc(*c, f);
    }
    fputc('"', f);
}

static int write_json(const char *path, const struct opts *o, const struct cw_config *cfg,
                      const struct mode_result *res, unsigned n, const char *partition_note,
                      const struct floor *fl, const struct target *t, unsigned n_targets)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return CW_EIO;
    fprintf(f, "{\"seed\":%" PRIu64 ",\"config\":\"%s\",\"users_per_region\":%u,"
               "\"duration_s\":%u,\"think_ms\":%u,\"zipf\":%.2f,\"mix\":{",
            o->seed, o->config_path, o->users, o->duration_s, o->think_ms, o->zipf_s);
    for (unsigned k = 0; k < OP_KINDS; k++)
        fprintf(f, "%s\"%s\":%u", k ? "," : "", op_names[k], o->mix[k]);
    fprintf(f, "},\"partition\":\"%s\",\"slow_link\":", partition_note);
    if (o->slow_ms)
        fprintf(f, "{\"from\":\"%s\",\"to\":\"%s\",\"ms\":%u}", cfg->regions[o->slow_from].name,
                cfg->regions[o->slow_to].name, o->slow_ms);
    else
        fprintf(f, "null");
    fprintf(f, ",\"modes\":[");
    for (unsigned i = 0; i < n; i++) {
        const struct mode_result *x = &res[i];
        fprintf(f, "%s{\"mode\":\"%s\",\"seconds\":%.2f,\"ops\":%" PRIu64 ",\"ops_per_s\":%.1f,",
                i ? "," : "", x->mode, x->secs, x->ops, x->throughput);
        fprintf(f, "\"ops_by_kind\":{");
        for (unsigned k = 0; k < OP_KINDS; k++)
            fprintf(f, "%s\"%s\":%" PRIu64, k ? "," : "", op_names[k], x->ops_by_kind[k]);
        fprintf(f, "},\"put_ms\":{\"n\":%zu,\"p50\":", x->n_put);
        json_num(f, x->put_p50);
        fprintf(f, ",\"p99\":");
        json_num(f, x->put_p99);
        fprintf(f, "},\"thread_read_ms\":{\"n\":%zu,\"p50\":", x->n_thread);
        json_num(f, x->thread_p50);
        fprintf(f, ",\"p99\":");
        json_num(f, x->thread_p99);
        fprintf(f, "},\"visibility_ms\":{\"n\":%zu,\"p50\":", x->n_vis);
        json_num(f, x->vis_p50);
        fprintf(f, ",\"p99\":");
        json_num(f, x->vis_p99);
        fprintf(f, ",\"pairs\":[");
        for (unsigned p = 0; p < x->n_pairs; p++) {
            fprintf(f, "%s{\"from\":\"%s\",\"to\":\"%s\",\"n\":%zu,\"unseen\":%" PRIu64 ",\"p50\":",
                    p ? "," : "", cfg->regions[x->pairs[p].from].name,
                    cfg->regions[x->pairs[p].to].name, x->pairs[p].n, x->pairs[p].unseen);
            json_num(f, x->pairs[p].p50);
            fprintf(f, ",\"p99\":");
            json_num(f, x->pairs[p].p99);
            fprintf(f, "}");
        }
        fprintf(f, "]},\"acked_posts\":%" PRIu64 ",\"acked_replies\":%" PRIu64
                   ",\"threads_checked\":%" PRIu64 ",\"quiet_before_check\":%s,"
                   "\"lost_replies\":%" PRIu64 ",\"totals\":{",
                x->acked_posts, x->acked_replies, x->threads_checked, x->quiet ? "true" : "false",
                x->lost_replies);
        json_stats(f, &x->total);
        fprintf(f, "},\"regions\":{");
        for (unsigned k = 0; k < o->n_run_regions; k++) {
            unsigned id = o->run_regions[k];
            fprintf(f, "%s\"%s\":{", k ? "," : "", cfg->regions[id].name);
            json_stats(f, &x->by_region[id]);
            fprintf(f, "}");
        }
        fprintf(f,
                "},\"replication\":{\"records\":%" PRIu64 ",\"frames\":%" PRIu64
                ",\"metadata_bytes\":%" PRIu64 ",\"key_bytes\":%" PRIu64 ",\"value_bytes\":%" PRIu64
                ",\"batch_bytes\":%" PRIu64 ",\"batch_lz4_bytes\":%" PRIu64
                ",\"frame_bytes\":%" PRIu64 ",\"metadata_bytes_per_write\":",
                x->repl.records, x->repl.frames, x->repl.metadata_bytes, x->repl.key_bytes,
                x->repl.value_bytes, x->repl.batch_bytes, x->repl.batch_lz4_bytes,
                x->repl.frame_bytes);
        json_num(f, x->repl_meta);
        fprintf(f, ",\"lz4_ratio\":");
        json_num(f, x->repl_lz4);
        fprintf(f, "},\"first_error\":");
        json_str(f, x->first_error);
        fprintf(f, "}");
    }
    fprintf(f, "],\"ping_floor_ms\":{\"n\":%zu,\"p50\":", fl->n);
    json_num(f, fl->p50);
    fprintf(f, ",\"p99\":");
    json_num(f, fl->p99);
    fprintf(f, "},\"targets\":[");
    for (unsigned i = 0; i < n_targets; i++) {
        fprintf(f, "%s{\"target\":", i ? "," : "");
        json_str(f, t[i].what);
        fprintf(f, ",\"measured\":");
        json_str(f, t[i].measured);
        fprintf(f, ",\"verdict\":");
        json_str(f, t[i].verdict);
        fprintf(f, "}");
    }
    fprintf(f, "]}\n");
    return fclose(f) == 0 ? CW_OK : CW_EIO;
}

static int write_csv(const char *path, const struct mode_result *res, unsigned n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return CW_EIO;
    fprintf(f, "mode,put_p50_ms,put_p99_ms,thread_read_p50_ms,thread_read_p99_ms,"
               "visibility_p50_ms,visibility_p99_ms,ops_per_s,orphans,lost_replies,stale_reads,"
               "refused_partition,errors,repl_records,metadata_bytes_per_write,lz4_ratio\n");
    for (unsigned i = 0; i < n; i++) {
        const struct mode_result *x = &res[i];
        fprintf(f,
                "%s,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
                ",%" PRIu64 ",%" PRIu64 ",%.1f,%.3f\n",
                x->mode, x->put_p50, x->put_p99, x->thread_p50, x->thread_p99, x->vis_p50,
                x->vis_p99, x->throughput, x->total.orphans, x->lost_replies, x->total.stale,
                x->total.refused, x->total.errors, x->repl.records, x->repl_meta, x->repl_lz4);
    }
    return fclose(f) == 0 ? CW_OK : CW_EIO;
}

/* A CDF as (latency ms, fraction) points: every sample for small sets, else
 * 1000 evenly spaced quantiles plus the last 100 samples (the tail). */
static int write_cdf(const char *path, const struct samples *s)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return CW_EIO;
    fprintf(f, "# latency_ms fraction_at_or_below\n");
    if (s->n <= 2000) {
        for (size_t i = 0; i < s->n; i++)
            fprintf(f, "%.3f %.6f\n", (double)s->v[i] / 1000.0, (double)(i + 1) / (double)s->n);
    } else {
        for (unsigned q = 1; q <= 1000; q++) {
            size_t i = (size_t)((double)q / 1000.0 * (double)s->n);
            if (i >= s->n - 100)
                break;
            if (i > 0)
                i--;
            fprintf(f, "%.3f %.6f\n", (double)s->v[i] / 1000.0, (double)(i + 1) / (double)s->n);
        }
        for (size_t i = s->n - 100; i < s->n; i++)
            fprintf(f, "%.3f %.6f\n", (double)s->v[i] / 1000.0, (double)(i + 1) / (double)s->n);
    }
    if (s->n == 0)
        fprintf(f, "NaN NaN\n"); /* gnuplot plots nothing for this mode */
    return fclose(f) == 0 ? CW_OK : CW_EIO;
}

static const char *const mode_colors[MODES_MAX] = {"#1b9e77", "#d95f02", "#7570b3"};

static const char *mode_color(const char *name)
{
    for (unsigned i = 0; i < MODES_MAX; i++)
        if (strcmp(mode_defs[i].name, name) == 0)
            return mode_colors[i];
    return "#444444";
}

static int write_charts(const char *dir, const struct opts *o, const struct cw_config *cfg,
                        const struct mode_result *res, unsigned n, char *gp_path, size_t gp_len)
{
    char path[4096];
    for (unsigned i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/put-cdf-%s.dat", dir, res[i].mode);
        if (write_cdf(path, &res[i].put) != CW_OK)
            return CW_EIO;
        snprintf(path, sizeof(path), "%s/thread-cdf-%s.dat", dir, res[i].mode);
        if (write_cdf(path, &res[i].thread_read) != CW_OK)
            return CW_EIO;
    }
    /* Visibility: a row per region pair, p50 and p99 per mode. */
    snprintf(path, sizeof(path), "%s/visibility.dat", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return CW_EIO;
    fprintf(f, "# pair");
    for (unsigned i = 0; i < n; i++)
        fprintf(f, " %s_p50_ms %s_p99_ms", res[i].mode, res[i].mode);
    fprintf(f, "\n");
    for (unsigned p = 0; n > 0 && p < res[0].n_pairs; p++) {
        fprintf(f, "\"%s→%s\"", cfg->regions[res[0].pairs[p].from].name,
                cfg->regions[res[0].pairs[p].to].name);
        for (unsigned i = 0; i < n; i++) {
            double a = res[i].pairs[p].p50, b = res[i].pairs[p].p99;
            fprintf(f, isnan(a) ? " NaN" : " %.3f", a);
            fprintf(f, isnan(b) ? " NaN" : " %.3f", b);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    /* Anomalies: a row per mode. */
    snprintf(path, sizeof(path), "%s/anomalies.dat", dir);
    f = fopen(path, "w");
    if (f == NULL)
        return CW_EIO;
    fprintf(f, "# mode orphans lost_replies stale_reads refused_partition stale_pct_of_thread_reads\n");
    for (unsigned i = 0; i < n; i++)
        fprintf(f, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %.3f\n", res[i].mode,
                res[i].total.orphans, res[i].lost_replies, res[i].total.stale,
                res[i].total.refused,
                res[i].n_thread ? 100.0 * (double)res[i].total.stale / (double)res[i].n_thread
                                : 0.0);
    fclose(f);

    snprintf(gp_path, gp_len, "%s/charts.gp", dir);
    f = fopen(gp_path, "w");
    if (f == NULL)
        return CW_EIO;
    char sub[256];
    snprintf(sub, sizeof(sub), "%u regions, %u users per region, %u s per mode, seed %" PRIu64,
             o->n_run_regions, o->users, o->duration_s, o->seed);
    fprintf(f, "# Written by causeway-feed; run from this directory: gnuplot charts.gp\n"
               "set terminal pngcairo size 900,560 font 'DejaVu Sans,11'\n"
               "set grid xtics ytics mxtics lc rgb '#dddddd'\n"
               "set key bottom right box opaque\n"
               "set style line 1 lw 2\n");
    /* The two CDFs, alone and side by side. */
    for (unsigned c = 0; c < 3; c++) {
        const char *what[2] = {"put", "thread"};
        const char *title[2] = {"Put latency", "Thread read latency (index + post + newest reply)"};
        if (c < 2) {
            fprintf(f, "\nset output 'feed-%s-latency.png'\n", c == 0 ? "put" : "thread");
        } else {
            fprintf(f, "\nset terminal pngcairo size 1400,540 font 'DejaVu Sans,11'\n"
                       "set output 'feed-latency.png'\nset multiplot layout 1,2 title "
                       "'causeway-feed: causal vs eventual vs strong (%s)'\n",
                    sub);
        }
        for (unsigned k = 0; k < 2; k++) {
            if (c < 2 && k != c)
                continue;
            if (c < 2)
                fprintf(f, "set title \"%s, CDF per mode\\n{/*0.8 %s}\"\n", title[k], sub);
            else
                fprintf(f, "set title \"%s, CDF per mode\"\n", title[k]);
            fprintf(f, "set logscale x 10\nset xlabel 'latency (ms, log scale)'\n"
                       "set ylabel 'fraction of requests at or below'\nset yrange [0:1]\n"
                       "set format x '%%g'\nplot ");
            for (unsigned i = 0; i < n; i++)
                fprintf(f, "%s'%s-cdf-%s.dat' using 1:2 with steps lw 2 lc rgb '%s' title '%s'",
                        i ? ", " : "", what[k], res[i].mode, mode_color(res[i].mode), res[i].mode);
            fprintf(f, "\n");
        }
        if (c == 2)
            fprintf(f, "unset multiplot\nset terminal pngcairo size 900,560 font 'DejaVu Sans,11'\n");
    }
    fprintf(f, "\nunset logscale x\nset format x '%%g'\nset yrange [*:*]\n");
    /* Visibility: bars per region pair, p50 (solid) and p99 (light), per mode. */
    fprintf(f, "\nset terminal pngcairo size 1000,600 font 'DejaVu Sans,11'\n"
               "set output 'feed-visibility.png'\n"
               "set title \"Remote visibility: a reply's acknowledgement in one region until a "
               "read finds it in another\\n{/*0.8 p50 solid, p99 light; %s}\"\n"
               "set style data histograms\nset style histogram clustered gap 1\n"
               "set style fill solid 0.9 border -1\nset boxwidth 0.9\n"
               "set logscale y 10\nset yrange [1:*]\nset xtics rotate by 25 right\n"
               "set xlabel 'region pair (written → read)'\nset ylabel 'ms (log scale)'\n"
               "set key top left\nplot ",
            sub);
    for (unsigned i = 0; i < n; i++) {
        fprintf(f, "%s'visibility.dat' using %u:xtic(1) lc rgb '%s' title '%s p50'", i ? ", " : "",
                2 + 2 * i, mode_color(res[i].mode), res[i].mode);
        fprintf(f, ", '' using %u lc rgb '%s' fs transparent solid 0.35 title '%s p99'", 3 + 2 * i,
                mode_color(res[i].mode), res[i].mode);
    }
    fprintf(f, "\nunset logscale y\nset xtics norotate\n"
               "set terminal pngcairo size 1200,520 font 'DejaVu Sans,11'\n");
    /* Anomalies: bars per mode. */
    fprintf(f, "\nset output 'feed-anomalies.png'\n"
               "set multiplot layout 1,2 title \"Anomalies counted by the readers, per mode "
               "(targets: no orphans in causal and strong, no lost reply anywhere, no stale read "
               "in strong)\\n{/*0.8 %s}\"\n"
               "set title \"Orphans (a thread read showed a reply without its post)\\nand lost "
               "replies (acknowledged, missing from the index after the run)\"\n"
               "set yrange [0:*]\nset xlabel 'mode'\nset ylabel 'count'\nset key top left\n"
               "set offsets 0,0,graph 0.35,0\n"
               "plot 'anomalies.dat' using 2:xtic(1) lc rgb '#e7298a' title 'orphans', "
               "'' using 3 lc rgb '#66a61e' title 'lost replies', "
               "'' using 0:2:2 with labels offset -2,0.7 notitle, "
               "'' using 0:3:3 with labels offset 2,0.7 notitle\n"
               "set title \"Stale reads (a thread read missed a write acknowledged\\nbefore it "
               "began), as a share of thread reads\"\n"
               "set ylabel '%% of thread reads'\nset format y '%%g%%%%'\n"
               "plot 'anomalies.dat' using 6:xtic(1) lc rgb '#e6ab02' title 'stale reads', "
               "'' using 0:6:(sprintf('%%.1f%%%% (%%d)', $6, $4)) with labels offset 0,0.7 "
               "notitle\n"
               "unset multiplot\n",
            sub);
    return fclose(f) == 0 ? CW_OK : CW_EIO;
}

/* Runs gnuplot on the script in dir; returns its exit status or -1. */
static int run_gnuplot(const char *dir)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(126);
        execlp("gnuplot", "gnuplot", "charts.gp", (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have_gnuplot(void)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        return false;
    char *copy = strdup(path), *save = NULL;
    bool found = false;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
         d = strtok_r(NULL, ":", &save)) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/gnuplot", d);
        found = access(p, X_OK) == 0;
    }
    free(copy);
    return found;
}

/* --------------------------------------------------------------- options */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: causeway-feed [options]\n"
            "\n"
            "The social-feed demo. Simulated users in every region, each with its own\n"
            "connection and causal session, write posts, read a region's recent posts,\n"
            "read threads (index + post + newest reply), reply to posts they have read and\n"
            "like them, for --duration seconds per mode. The same seeded scenario runs in\n"
            "causal, eventual and strong buckets, one mode after the other, on the running\n"
            "regions of --config (start them first: tools/cluster start CONFIG).\n"
            "\n"
            "The readers count the anomalies themselves:\n"
            "  orphans       thread reads that showed a reply while its post was missing\n"
            "  lost replies  acknowledged replies missing from their thread index in some\n"
            "                region after the mode, once every region is quiet\n"
            "  stale reads   reads that missed a write acknowledged before they began\n"
            "                (expected in causal and eventual mode, never in strong)\n"
            "  refused       requests that failed during the partition (never retried)\n"
            "Watchers time each reply from its acknowledgement in one region until a read\n"
            "finds it in another (remote visibility). Users learn which post ids exist\n"
            "from the program, as from a notification; what they see is what the store\n"
            "returns.\n"
            "\n"
            "Options:\n"
            "  --config FILE        the cluster config (default geo-configs/three-regions.ini);\n"
            "                       it must define the buckets of the modes (posts, replies,\n"
            "                       threads; posts_ev, replies_ev, threads_ev; posts_strong,\n"
            "                       replies_strong, threads_strong)\n"
            "  --regions A,B,...    regions with users (default: every region of the config)\n"
            "  --modes LIST         modes to run, in order (default causal,eventual,strong)\n"
            "  --duration S         seconds of workload per mode, 5 to 3600 (default 30)\n"
            "  --users N            users per region, 1 to %d (default 6)\n"
            "  --think-ms MS        mean pause between a user's operations, uniform in\n"
            "                       0..2xMS, 0 to 10000 (default 20)\n"
            "  --mix T,H,P,R,L      percent weights of timeline reads, thread reads, posts,\n"
            "                       replies and likes (default 20,30,13,20,17: half reads,\n"
            "                       a third posts and replies, the rest likes, as Retwis)\n"
            "  --zipf S             skew of the hot-thread choice over the %d latest thread\n"
            "                       activities (a post or a reply; rank 1 the newest), and of\n"
            "                       the reply and like choice over the posts a user has read,\n"
            "                       0 to 3 (default 1.0)\n"
            "  --seed N             the seed of every user's choices (default 1); printed at\n"
            "                       the start, the same seed replays the same choices\n"
            "  --slow-link SPEC     FROM:TO:MS slows one direction of one link for the whole\n"
            "                       run (restored at the end), so that a reply can overtake\n"
            "                       its post: in eventual mode the thread index can reach a\n"
            "                       region before the post; 'auto' (default) slows the first\n"
            "                       region -> the last region to 1000 ms (or 3x its configured\n"
            "                       delay, if more);\n"
            "                       'none' keeps the configured delays\n"
            "  --partition-secs S   length of the partition, 1 to 600 (default 6)\n"
            "  --partition-region R the region cut off (default: the last one)\n"
            "  --no-partition       no partition phase\n"
            "  --out DIR            results directory (default feed-results): results.json,\n"
            "                       results.csv, table.txt, *.dat, charts.gp and the PNG\n"
            "                       charts (made when gnuplot is installed)\n"
            "  --no-charts          write the .dat files and charts.gp but do not run gnuplot\n"
            "  --help               this text\n"
            "\n"
            "With security = curve in the config, the program connects with CurveZMQ: the\n"
            "regions' public keys come from the config and its own key pair from the file\n"
            "named by CAUSEWAY_KEY_FILE, which must be an admin key (the demo changes\n"
            "links). tools/run-demo --secure sets it up.\n"
            "\n"
            "Exit status: 0 when every mode ran, 1 on a failure (the message says what to\n"
            "do), 2 for bad options, 130 when interrupted.\n",
            USERS_PER_REGION_MAX, RECENT_MAX);
}

static int parse_num(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    return tool_parse_num("causeway-feed", opt, v, lo, hi, out);
}

static int region_id(const struct cw_config *cfg, const char *name, size_t len)
{
    for (unsigned i = 0; i < cfg->n_regions; i++)
        if (strlen(cfg->regions[i].name) == len && strncmp(cfg->regions[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static void region_list(const struct cw_config *cfg, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < cfg->n_regions && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? ", " : "", cfg->regions[i].name);
}

static int mkdir_p(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.config_path = "geo-configs/three-regions.ini",
                     .out_dir = "feed-results",
                     .duration_s = 30,
                     .users = 6,
                     .think_ms = 20,
                     .partition_s = 6,
                     .mix = {20, 30, 13, 20, 17},
                     .zipf_s = 1.0,
                     .seed = 1,
                     .partition = true,
                     .charts = true,
                     .partition_region = -1,
                     .slow_auto = true};
    const char *modes_arg = "causal,eventual,strong", *regions_arg = NULL, *slow_arg = "auto",
               *pregion_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-partition") == 0) {
            o.partition = false;
            continue;
        } else if (strcmp(a, "--no-charts") == 0) {
            o.charts = false;
            continue;
        } else if (v == NULL) {
            fprintf(stderr, "causeway-feed: unknown option or missing value '%s' (see --help)\n", a);
            return 2;
        } else if (strcmp(a, "--config") == 0) {
            o.config_path = v;
        } else if (strcmp(a, "--out") == 0) {
            o.out_dir = v;
        } else if (strcmp(a, "--modes") == 0) {
            modes_arg = v;
        } else if (strcmp(a, "--regions") == 0) {
            regions_arg = v;
        } else if (strcmp(a, "--slow-link") == 0) {
            slow_arg = v;
        } else if (strcmp(a, "--partition-region") == 0) {
            pregion_arg = v;
        } else if (strcmp(a, "--duration") == 0) {
            if (parse_num(a, v, 5, 3600, &x))
                return 2;
            o.duration_s = (unsigned)x;
        } else if (strcmp(a, "--users") == 0) {
            if (parse_num(a, v, 1, USERS_PER_REGION_MAX, &x))
                return 2;
            o.users = (unsigned)x;
        } else if (strcmp(a, "--think-ms") == 0) {
            if (parse_num(a, v, 0, 10000, &x))
                return 2;
            o.think_ms = (unsigned)x;
        } else if (strcmp(a, "--partition-secs") == 0) {
            if (parse_num(a, v, 1, 600, &x))
                return 2;
            o.partition_s = (unsigned)x;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_num(a, v, 0, UINT64_MAX, &x))
                return 2;
            o.seed = x;
        } else if (strcmp(a, "--zipf") == 0) {
            char *end;
            errno = 0;
            double s = strtod(v, &end);
            if (*end != '\0' || errno || !(s >= 0 && s <= 3)) {
                fprintf(stderr, "causeway-feed: --zipf needs a number from 0 to 3, not '%s'\n", v);
                return 2;
            }
            o.zipf_s = s;
        } else if (strcmp(a, "--mix") == 0) {
            unsigned m[OP_KINDS], sum = 0;
            int used = 0;
            if (sscanf(v, "%u,%u,%u,%u,%u%n", &m[0], &m[1], &m[2], &m[3], &m[4], &used) != 5 ||
                v[used] != '\0') {
                fprintf(stderr, "causeway-feed: --mix needs five numbers T,H,P,R,L (timeline, "
                                "thread, post, reply, like weights), not '%s'\n",
                        v);
                return 2;
            }
            for (unsigned k = 0; k < OP_KINDS; k++)
                sum += m[k] <= 1000 ? m[k] : 1001;
            if (sum == 0 || sum > 5000) {
                fprintf(stderr, "causeway-feed: --mix weights must be 0 to 1000 and not all 0\n");
                return 2;
            }
            memcpy(o.mix, m, sizeof(m));
        } else {
            fprintf(stderr, "causeway-feed: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        i++;
    }
    /* Modes. */
    for (const char *p = modes_arg; *p;) {
        size_t len = strcspn(p, ",");
        const struct mode_def *m = NULL;
        for (unsigned k = 0; k < MODES_MAX; k++)
            if (strlen(mode_defs[k].name) == len && strncmp(mode_defs[k].name, p, len) == 0)
                m = &mode_defs[k];
        if (m == NULL || o.n_modes == MODES_MAX) {
            fprintf(stderr, "causeway-feed: --modes takes causal, eventual and strong, each once, "
                            "separated by commas; not '%s'\n",
                    modes_arg);
            return 2;
        }
        for (unsigned k = 0; k < o.n_modes; k++)
            if (o.modes[k] == m) {
                fprintf(stderr, "causeway-feed: --modes names %s twice\n", m->name);
                return 2;
            }
        o.modes[o.n_modes++] = m;
        p += len;
        if (*p == ',')
            p++;
    }
    if (o.n_modes == 0) {
        fprintf(stderr, "causeway-feed: --modes is empty; give e.g. causal,eventual,strong\n");
        return 2;
    }

    struct cw_config cfg;
    char err[1024];
    if (cw_config_load(o.config_path, &cfg, err, sizeof(err)) != CW_OK) {
        fprintf(stderr, "causeway-feed: %s\n", err);
        return 1;
    }
    int status = 1;
    if (cfg.security == CW_SECURITY_CURVE) {
        const char *kf = getenv("CAUSEWAY_KEY_FILE");
        struct cw_client_options probe;
        cw_client_options_init(&probe);
        if (kf == NULL || kf[0] == '\0' ||
            cw_client_options_key_file(&probe, kf, err, sizeof(err)) != CW_OK) {
            fprintf(stderr,
                    "causeway-feed: %s says security = curve: %s (an admin key: the demo "
                    "changes links)\n",
                    o.config_path,
                    kf == NULL || kf[0] == '\0' ? "set CAUSEWAY_KEY_FILE to a key pair file"
                                                : err);
            cw_config_free(&cfg);
            return 1;
        }
    }
    char names[512];
    region_list(&cfg, names, sizeof(names));
    if (regions_arg == NULL) {
        for (unsigned i = 0; i < cfg.n_regions; i++)
            o.run_regions[o.n_run_regions++] = i;
    } else {
        for (const char *p = regions_arg; *p;) {
            size_t len = strcspn(p, ",");
            int id = region_id(&cfg, p, len);
            if (id < 0 || o.n_run_regions == REGIONS_MAX) {
                fprintf(stderr, "causeway-feed: --regions: unknown region '%.*s'; %s has: %s\n",
                        (int)len, p, o.config_path, names);
                goto out_config;
            }
            o.run_regions[o.n_run_regions++] = (unsigned)id;
            p += len;
            if (*p == ',')
                p++;
        }
    }
    if (o.n_run_regions < 2) {
        fprintf(stderr, "causeway-feed: the demo needs at least two regions with users\n");
        goto out_config;
    }
    o.partition_region = (int)cfg.n_regions - 1;
    if (pregion_arg != NULL) {
        o.partition_region = region_id(&cfg, pregion_arg, strlen(pregion_arg));
        if (o.partition_region < 0) {
            fprintf(stderr, "causeway-feed: --partition-region: unknown region '%s'; %s has: %s\n",
                    pregion_arg, o.config_path, names);
            goto out_config;
        }
    }
    if (o.partition && o.partition_s * 3 > o.duration_s * 2) {
        fprintf(stderr, "causeway-feed: the partition (%u s from a third of the mode) must end "
                        "before the mode does: use a --duration of at least %u, or a shorter "
                        "--partition-secs\n",
                o.partition_s, (o.partition_s * 3 + 1) / 2 + 1);
        status = 2;
        goto out_config;
    }
    if (strcmp(slow_arg, "none") == 0) {
        o.slow_ms = 0;
    } else if (strcmp(slow_arg, "auto") == 0) {
        o.slow_from = 0;
        o.slow_to = (int)cfg.n_regions - 1;
        /* A congested cable: 1 s one way (or 3x the configured delay, if more). A
         * reply written in a region that saw the post quickly then reaches the
         * last region long before the post does. */
        o.slow_ms = 3 * cfg.latency_ms[0][cfg.n_regions - 1];
        if (o.slow_ms < 1000)
            o.slow_ms = 1000;
    } else {
        const char *c1 = strchr(slow_arg, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        uint64_t ms;
        int f = c1 ? region_id(&cfg, slow_arg, (size_t)(c1 - slow_arg)) : -1;
        int t = c2 ? region_id(&cfg, c1 + 1, (size_t)(c2 - c1 - 1)) : -1;
        if (f < 0 || t < 0 || f == t || parse_num("--slow-link MS", c2 + 1, 0, 60000, &ms)) {
            fprintf(stderr, "causeway-feed: --slow-link takes FROM:TO:MS with two different "
                            "regions of %s (%s), 'auto' or 'none'; not '%s'\n",
                    o.config_path, names, slow_arg);
            status = 2;
            goto out_config;
        }
        o.slow_from = f;
        o.slow_to = t;
        o.slow_ms = (unsigned)ms;
    }
    for (unsigned k = 0; k < o.n_modes; k++) {
        const char *b[3] = {o.modes[k]->posts, o.modes[k]->replies, o.modes[k]->threads};
        for (unsigned j = 0; j < 3; j++) {
            const struct cw_bucket_policy *bp = cw_config_bucket(&cfg, b[j]);
            bool want_strong = o.modes[k]->strong;
            bool want_sib = j == 2 && !want_strong;
            if (bp == NULL || (bp->consistency == CW_STRONG) != want_strong ||
                (!want_strong && (bp->consistency == CW_EVENTUAL) !=
                                     (strcmp(o.modes[k]->name, "eventual") == 0)) ||
                (want_sib && bp->conflict != CW_CONFLICT_SIBLINGS)) {
                fprintf(stderr,
                        "causeway-feed: %s mode needs a bucket '%s' (%s%s) in %s; "
                        "geo-configs/three-regions.ini has them all\n",
                        o.modes[k]->name, b[j], want_strong ? "strong" : o.modes[k]->name,
                        want_sib ? ", conflict = siblings" : "", o.config_path);
                goto out_config;
            }
        }
    }

    zipf_init(o.zipf_s);
    if (mkdir_p(o.out_dir) != 0) {
        fprintf(stderr, "causeway-feed: cannot create the results directory %s: %s\n", o.out_dir,
                strerror(errno));
        goto out_config;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Every region must answer before anything starts. */
    for (unsigned k = 0; k < cfg.n_regions; k++) {
        struct cw_client *c = NULL;
        struct cw_status *st = NULL;
        struct cw_client_options copt;
        cw_client_options_init(&copt);
        copt.timeout_ms = 2000;
        int rc = feed_connect(&cfg, k, false, &copt, &c);
        if (rc == CW_OK)
            rc = cw_status_get(c, &st);
        if (rc == CW_OK && st->id != k)
            rc = CW_EREGION;
        cw_status_free(&st);
        cw_client_close(&c);
        if (rc != CW_OK) {
            fprintf(stderr,
                    "causeway-feed: region %s (%s) does not answer: %s; start the regions "
                    "first: tools/cluster start %s\n",
                    cfg.regions[k].name, cfg.regions[k].client, cw_strerror(rc), o.config_path);
            goto out_config;
        }
    }

    char modes_list[64] = "";
    for (unsigned k = 0; k < o.n_modes; k++)
        snprintf(modes_list + strlen(modes_list), sizeof(modes_list) - strlen(modes_list), "%s%s",
                 k ? "," : "", o.modes[k]->name);
    char partition_note[160] = "none";
    if (o.partition)
        snprintf(partition_note, sizeof(partition_note),
                 "%s cut off from every other region from %u s to %u s of each mode",
                 cfg.regions[o.partition_region].name, o.duration_s / 3,
                 o.duration_s / 3 + o.partition_s);
    printf("causeway-feed: seed %" PRIu64 " (--seed %" PRIu64 " replays the same choices)\n",
           o.seed, o.seed);
    printf("causeway-feed: %u regions (%s), %u users each, %u s per mode, modes %s\n",
           o.n_run_regions, names, o.users, o.duration_s, modes_list);
    printf("causeway-feed: partition: %s\n", partition_note);

    unsigned link_ms[REGIONS_MAX][REGIONS_MAX];
    for (unsigned i = 0; i < REGIONS_MAX; i++)
        for (unsigned j = 0; j < REGIONS_MAX; j++)
            link_ms[i][j] = i < cfg.n_regions && j < cfg.n_regions ? cfg.latency_ms[i][j] : 0;
    bool slowed = false;
    if (o.slow_ms) {
        printf("causeway-feed: slow link: %s -> %s at %u ms one way (configured %u ms), so that "
               "replies can overtake posts\n",
               cfg.regions[o.slow_from].name, cfg.regions[o.slow_to].name, o.slow_ms,
               cfg.latency_ms[o.slow_from][o.slow_to]);
        if (link_set(&cfg, (unsigned)o.slow_from, (unsigned)o.slow_to, CW_ADMIN_LINK_DELAY,
                     o.slow_ms) != CW_OK)
            goto out_config;
        slowed = true;
        link_ms[o.slow_from][o.slow_to] = o.slow_ms;
    }
    fflush(stdout);

    /* The floor, at light load: before any user starts. */
    struct samples pings = {0};
    struct floor fl = {0, NAN, NAN};
    int prc = ping_floor(&o, &cfg, PINGS_PER_REGION, &pings);
    if (prc == CW_OK) {
        fl.n = pings.n;
        fl.p50 = quantile_ms(&pings, 0.5);
        fl.p99 = quantile_ms(&pings, 0.99);
        printf("causeway-feed: ping floor (no-op round trip, as causeway-bench --ping): p50 %.3f "
               "ms, p99 %.3f ms over %zu pings\n",
               fl.p50, fl.p99, fl.n);
    } else {
        fprintf(stderr, "causeway-feed: the ping floor could not be measured: %s\n",
                cw_strerror(prc));
    }
    samples_free(&pings);
    fflush(stdout);

    struct mode_result *res = calloc(o.n_modes, sizeof(*res));
    if (res == NULL) {
        fprintf(stderr, "causeway-feed: out of memory\n");
        goto out_links;
    }
    unsigned done = 0;
    for (; done < o.n_modes && !atomic_load(&interrupted); done++) {
        int rc = run_mode(&o, &cfg, o.modes[done], done, link_ms, &res[done]);
        if (rc != CW_OK) {
            fprintf(stderr, "causeway-feed: %s mode failed: %s\n", o.modes[done]->name,
                    cw_strerror(rc));
            goto out_results;
        }
        if (atomic_load(&interrupted))
            break;
        const struct mode_result *x = &res[done];
        printf("causeway-feed: %s: %" PRIu64 " ops in %.1f s, %" PRIu64 " posts and %" PRIu64
               " replies acknowledged, %" PRIu64 " threads checked (%s after %.1f s), orphans %" PRIu64
               ", lost replies %" PRIu64 ", stale reads %" PRIu64 ", refused %" PRIu64
               ", other errors %" PRIu64 "%s%s\n",
               x->mode, x->ops, x->secs, x->acked_posts, x->acked_replies, x->threads_checked,
               x->quiet ? "quiet" : "NOT quiet", x->quiet_wait_s, x->total.orphans,
               x->lost_replies, x->total.stale, x->total.refused, x->total.errors,
               x->first_error[0] ? "; first: " : "", x->first_error);
        fflush(stdout);
    }
    if (atomic_load(&interrupted)) {
        fprintf(stderr, "\ncauseway-feed: interrupted; no results written\n");
        status = 130;
        goto out_results;
    }

    printf("\n");
    print_table(stdout, res, done);
    struct target tg[4 + MODES_MAX];
    unsigned n_tg = targets_eval(&cfg, res, done, &fl, tg, sizeof(tg) / sizeof(tg[0]));
    print_targets(stdout, tg, n_tg);
    char path[4096], gp[4096];
    snprintf(path, sizeof(path), "%s/table.txt", o.out_dir);
    FILE *tf = fopen(path, "w");
    if (tf) {
        fprintf(tf, "causeway-feed --seed %" PRIu64 " --duration %u --users %u (%s; partition: %s)\n",
                o.seed, o.duration_s, o.users, o.config_path, partition_note);
        print_table(tf, res, done);
        print_targets(tf, tg, n_tg);
        fclose(tf);
    }
    snprintf(path, sizeof(path), "%s/results.json", o.out_dir);
    int w1 = write_json(path, &o, &cfg, res, done, partition_note, &fl, tg, n_tg);
    snprintf(path, sizeof(path), "%s/results.csv", o.out_dir);
    int w2 = write_csv(path, res, done);
    int w3 = write_charts(o.out_dir, &o, &cfg, res, done, gp, sizeof(gp));
    if (w1 != CW_OK || w2 != CW_OK || w3 != CW_OK) {
        fprintf(stderr, "causeway-feed: cannot write the results in %s: %s\n", o.out_dir,
                strerror(errno));
        goto out_results;
    }
    printf("\nresults: %s/results.json, %s/results.csv, %s/table.txt\n", o.out_dir, o.out_dir,
           o.out_dir);
    if (!o.charts) {
        printf("charts: not drawn (--no-charts); run: cd %s && gnuplot charts.gp\n", o.out_dir);
    } else if (!have_gnuplot()) {
        printf("charts: NOT drawn: gnuplot is not installed (apt-get install gnuplot-nox, or "
               "tools/setup); then: cd %s && gnuplot charts.gp\n",
               o.out_dir);
    } else {
        int g = run_gnuplot(o.out_dir);
        if (g != 0) {
            fprintf(stderr, "causeway-feed: gnuplot failed (status %d) on %s\n", g, gp);
            goto out_results;
        }
        printf("charts: %s/feed-latency.png, %s/feed-put-latency.png, %s/feed-thread-latency.png, "
               "%s/feed-visibility.png, %s/feed-anomalies.png\n",
               o.out_dir, o.out_dir, o.out_dir, o.out_dir, o.out_dir);
    }
    status = 0;

out_results:
    for (unsigned i = 0; i < o.n_modes; i++) {
        samples_free(&res[i].put);
        samples_free(&res[i].thread_read);
        samples_free(&res[i].vis);
    }
    free(res);
out_links:
    if (slowed)
        link_set(&cfg, (unsigned)o.slow_from, (unsigned)o.slow_to, CW_ADMIN_LINK_DELAY,
                 cfg.latency_ms[o.slow_from][o.slow_to]);
out_config:
    cw_config_free(&cfg);
    return status;
}
