/*
 * causeway-bench - a closed-loop load generator for one causeway region.
 *
 * N client threads, each with its own connection and causal session, issue puts
 * and gets over a key space as fast as the region answers, for a fixed time.
 * Latencies go into log-linear histograms (src/core/hist.h); the summary gives
 * throughput and p50/p99/max (and the exact mean) per operation, as text or one JSON
 * object.
 */
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <causeway.h>

#include "core/hist.h"
#include "args.h"
#include "ping.h"
#include "server/config.h"

#define CLIENTS_MAX 256
#define PIPELINE_MAX CW_PIPE_DEPTH_MAX
#define COMPARE_MAX 8

struct opts {
    const char *endpoint;
    const char *bucket;
    unsigned clients, seconds, keys, value_bytes, read_pct;
    uint64_t seed;
    int json;
    int load; /* write every key once (keys split between clients), then stop */
    /* The clients' options: CURVE keys when the config says security = curve
     * (the region's public_key, and the pair in $CAUSEWAY_KEY_FILE). */
    struct cw_client_options copt;
    int ping; /* every operation a get of a key never written, no session */
    double zipf;          /* 0: uniform keys; else the Zipf exponent */
    const double *cdf;    /* --zipf: cumulative probabilities of keys 0..keys-1 */
    unsigned pipeline;    /* requests in flight per client (1: synchronous calls) */
    unsigned rate;        /* 0: as fast as the region answers; else operations/s in all */
};

struct worker {
    const struct opts *o;
    unsigned id;
    pthread_t thread;
    struct cw_hist put, get;
    uint64_t errors;
    int first_error;
    char first_message[256];
    atomic_uint_fast64_t done;
    atomic_int finished;
    uint64_t start_ns;
};

static atomic_int stop_flag;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: each worker's own reproducible stream of keys and operations. */
static uint64_t next_rand(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double unit_rand(uint64_t *x)
{
    return (double)(next_rand(x) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t pick_key(const struct opts *o, uint64_t *rng)
{
    if (o->cdf == NULL)
        return next_rand(rng) % o->keys;
    double u = unit_rand(rng);
    size_t lo = 0, hi = o->keys - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Key k has weight 1 / (k + 1)^s. */
static double *zipf_cdf(unsigned keys, double s)
{
    double *cdf = malloc((size_t)keys * sizeof(*cdf));
    if (cdf == NULL)
        return NULL;
    double sum = 0;
    for (unsigned k = 0; k < keys; k++)
        cdf[k] = sum += pow((double)k + 1.0, -s);
    for (unsigned k = 0; k < keys; k++)
        cdf[k] /= sum;
    cdf[keys - 1] = 1.0;
    return cdf;
}

static void note_error(struct worker *w, int rc, const struct cw_client *c)
{
    if (w->errors++ == 0) {
        w->first_error = rc;
        snprintf(w->first_message, sizeof(w->first_message), "%s (%s)", cw_strerror(rc),
                 cw_client_error(c));
    }
}

/* --pipeline N: N requests in flight on the client's pipe; a latency is the time
 * from a request's submission to its result. */
static void work_pipelined(struct worker *w, struct cw_client *c, struct cw_sess *s,
                           const uint8_t *value, uint64_t *rng)
{
    const struct opts *o = w->o;
    struct cw_pipe *p = NULL;
    int rc = cw_pipe_new(c, o->ping ? NULL : s, o->pipeline, &p);
    if (rc != CW_OK) {
        note_error(w, rc, c);
        return;
    }
    uint64_t *sent_at = calloc(o->pipeline, sizeof(*sent_at));
    bool *was_read = calloc(o->pipeline, sizeof(*was_read));
    if (sent_at == NULL || was_read == NULL) {
        note_error(w, CW_ENOMEM, c);
        goto out;
    }
    /* Results come back in submission order: slot i of a ring of N. */
    unsigned head = 0;
    for (;;) {
        bool stopping = atomic_load(&stop_flag);
        if (!stopping && cw_pipe_pending(p) < o->pipeline) {
            char key[32];
            int klen = o->ping ? snprintf(key, sizeof(key), "%s", TOOL_PING_KEY)
                               : snprintf(key, sizeof(key), "k%" PRIu64, pick_key(o, rng));
            bool read = o->ping || next_rand(rng) % 100 < o->read_pct;
            unsigned slot = (head + cw_pipe_pending(p)) % o->pipeline;
            sent_at[slot] = mono_ns();
            was_read[slot] = read;
            rc = read ? cw_pipe_get(p, o->bucket, key, (size_t)klen, NULL)
                      : cw_pipe_put(p, o->bucket, key, (size_t)klen, value, o->value_bytes, NULL);
            if (rc == CW_OK)
                continue;
            note_error(w, rc, c); /* nothing sent: take a result before trying again */
        }
        if (cw_pipe_pending(p) == 0)
            break;
        struct cw_pipe_result r;
        rc = cw_pipe_next(p, &r);
        uint64_t us = (mono_ns() - sent_at[head]) / 1000;
        cw_get_result_free(&r.get);
        if (rc != CW_OK)
            note_error(w, rc, c);
        else {
            cw_hist_add(was_read[head] ? &w->get : &w->put, us);
            atomic_fetch_add(&w->done, 1);
        }
        head = (head + 1) % o->pipeline;
    }
out:
    free(sent_at);
    free(was_read);
    cw_pipe_free(&p);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    const struct opts *o = w->o;
    struct cw_client *c = NULL;
    struct cw_sess *s = NULL;
    uint8_t *value = malloc(o->value_bytes ? o->value_bytes : 1);
    uint64_t rng = o->seed * 1000003u + w->id;
    int rc = value ? cw_client_connect(o->endpoint, &o->copt, &c) : CW_ENOMEM;
    if (rc == CW_OK)
        rc = cw_sess_new(0, &s);
    if (rc != CW_OK) {
        note_error(w, rc, c);
        goto out;
    }
    for (unsigned i = 0; i < o->value_bytes; i++)
        value[i] = (uint8_t)('a' + next_rand(&rng) % 26);
    if (o->pipeline > 1 && !o->load) {
        work_pipelined(w, c, s, value, &rng);
        goto out;
    }
    uint64_t seq = w->id, n_issued = 0;
    w->start_ns = mono_ns();
    while (!atomic_load(&stop_flag)) {
        char key[32];
        uint64_t k = o->load ? seq : pick_key(o, &rng);
        if (o->load && k >= o->keys)
            break; /* this client's share is written */
        seq += o->clients;
        if (o->rate > 0) {
            /* Paced: this client's share of --rate, on a fixed schedule. */
            uint64_t due = w->start_ns + n_issued * 1000000000ull * o->clients / o->rate;
            n_issued++;
            uint64_t now_ns = mono_ns();
            if (due > now_ns) {
                struct timespec d = {(time_t)((due - now_ns) / 1000000000u),
                                     (long)((due - now_ns) % 1000000000u)};
                nanosleep(&d, NULL);
            }
        }
        int klen = snprintf(key, sizeof(key), "k%" PRIu64, k);
        bool read = o->ping || (!o->load && next_rand(&rng) % 100 < o->read_pct);
        uint64_t t0 = mono_ns();
        if (o->ping) {
            rc = tool_ping(c, o->bucket);
        } else if (read) {
            struct cw_get_result *g = NULL;
            rc = cw_get(c, s, o->bucket, key, (size_t)klen, &g);
            cw_get_result_free(&g);
        } else {
            rc = cw_put(c, s, o->bucket, key, (size_t)klen, value, o->value_bytes, NULL, NULL);
        }
        uint64_t us = (mono_ns() - t0) / 1000;
        if (rc != CW_OK) {
            note_error(w, rc, c);
            continue;
        }
        cw_hist_add(read ? &w->get : &w->put, us);
        atomic_fetch_add(&w->done, 1);
    }
out:
    atomic_store(&w->finished, 1);
    cw_sess_free(&s);
    cw_client_close(&c);
    free(value);
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: causeway-bench (--endpoint EP | --config FILE --region NAME) [options]\n"
            "\n"
            "Closed-loop load on one causeway region: CLIENTS threads, each with its own\n"
            "connection and causal session, issue puts and gets as fast as the region\n"
            "answers, for SECONDS. Prints throughput and latency percentiles.\n"
            "\n"
            "  --endpoint EP        the region's client endpoint (tcp://host:port)\n"
            "  --config FILE        a cluster config, with --region NAME\n"
            "  --bucket NAME        bucket to use (default kv)\n"
            "  --clients N          client threads, 1 to %d (default 4)\n"
            "  --seconds N          how long to run, 1 to 3600 (default 10)\n"
            "  --keys N             key space size, 1 to 100000000 (default 1000)\n"
            "  --value-bytes N      value size for puts, 0 to 4194304 (default 100)\n"
            "  --reads PCT          percentage of gets, 0 to 100 (default 50)\n"
            "  --seed N             key and operation choices (default 1)\n"
            "  --zipf S             pick keys by a Zipf law of exponent S (0 < S <= 10)\n"
            "                       instead of uniformly\n"
            "  --pipeline N         requests in flight per client, 1 to %d (default 1:\n"
            "                       one synchronous call at a time); N > 1 uses the\n"
            "                       pipelined API (cw_pipe_*)\n"
            "  --rate R             pace the load at R operations/s in all (light load:\n"
            "                       latencies without queueing; unpipelined only)\n"
            "  --ping               every operation a get of a key never written, with no\n"
            "                       session: the protocol has no ping, this is its cheapest\n"
            "                       request (decode, one key lookup, a small reply)\n"
            "  --compare LIST       run the load once per mode or bucket of LIST, back to\n"
            "                       back (e.g. causal,eventual,strong: the config's bucket\n"
            "                       of that consistency, kv first), with ratios to the first\n"
            "  --load               write each of the KEYS keys once (split between the\n"
            "                       clients), then stop; SECONDS is then a time limit\n"
            "  --json               print one JSON object instead of text\n"
            "  --help               this text\n",
            CLIENTS_MAX, PIPELINE_MAX);
}

static int parse_num(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    return tool_parse_num("causeway-bench", opt, v, lo, hi, out);
}

static void print_hist(const char *name, const struct cw_hist *h, double secs, int json, bool last)
{
    double p50 = (double)cw_hist_quantile(h, 0.5) / 1000.0;
    double p99 = (double)cw_hist_quantile(h, 0.99) / 1000.0;
    double max = (double)h->max / 1000.0;
    /* The mean is exact (the quantiles are bucket bounds, within 1.6%): at WAN
     * latencies a bucket is several milliseconds wide. */
    double mean = h->count ? (double)h->sum / (double)h->count / 1000.0 : 0.0;
    if (json)
        printf("\"%s\":{\"ops\":%" PRIu64 ",\"per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
               "\"max_ms\":%.3f,\"mean_ms\":%.3f}%s",
               name, h->count, (double)h->count / secs, p50, p99, max, mean, last ? "" : ",");
    else
        printf("  %-4s %10" PRIu64 " ops %10.1f/s   p50 %8.3f ms   p99 %8.3f ms   max %8.3f ms   "
               "mean %8.3f ms\n",
               name, h->count, (double)h->count / secs, p50, p99, max, mean);
}

struct result {
    struct cw_hist put, get;
    uint64_t errors;
    double secs, ops_per_s;
    char first[256];
};

/* Runs o->clients workers on o->bucket for o->seconds and sums their figures. */
static int run(const struct opts *o, struct result *res)
{
    memset(res, 0, sizeof(*res));
    cw_hist_reset(&res->put);
    cw_hist_reset(&res->get);
    atomic_store(&stop_flag, 0);
    struct worker *w = calloc(o->clients, sizeof(*w));
    if (w == NULL) {
        fprintf(stderr, "causeway-bench: out of memory\n");
        return -1;
    }
    if (!o->json)
        printf("causeway-bench: %s bucket %s, %u clients, %u s, %u keys%s, %u-byte values, "
               "%u%% reads, pipeline %u, seed %" PRIu64 "%s\n",
               o->endpoint, o->bucket, o->clients, o->seconds, o->keys,
               o->zipf > 0 ? " (Zipf)" : "", o->value_bytes, o->read_pct, o->pipeline, o->seed,
               o->ping ? " (--ping: gets of a key never written, no session)" : "");
    uint64_t t0 = mono_ns();
    unsigned started = 0;
    for (; started < o->clients; started++) {
        w[started].o = o;
        w[started].id = started;
        cw_hist_reset(&w[started].put);
        cw_hist_reset(&w[started].get);
        if (pthread_create(&w[started].thread, NULL, work, &w[started]) != 0) {
            fprintf(stderr, "causeway-bench: cannot start client thread %u\n", started);
            break;
        }
    }
    for (unsigned sec = 1; sec <= o->seconds && started == o->clients; sec++) {
        struct timespec one = {1, 0};
        nanosleep(&one, NULL);
        unsigned finished = 0;
        for (unsigned i = 0; i < started; i++)
            finished += (unsigned)atomic_load(&w[i].finished);
        if (o->load && finished == started)
            break; /* every key written */
        if (!o->json) {
            uint64_t done = 0;
            for (unsigned i = 0; i < started; i++)
                done += atomic_load(&w[i].done);
            fprintf(stderr, "  [%3u/%u s] %" PRIu64 " operations\n", sec, o->seconds, done);
        }
    }
    atomic_store(&stop_flag, 1);
    for (unsigned i = 0; i < started; i++)
        pthread_join(w[i].thread, NULL);
    res->secs = (double)(mono_ns() - t0) / 1e9;
    for (unsigned i = 0; i < started; i++) {
        for (unsigned b = 0; b < CW_HIST_BUCKETS; b++) {
            res->put.buckets[b] += w[i].put.buckets[b];
            res->get.buckets[b] += w[i].get.buckets[b];
        }
        res->put.count += w[i].put.count;
        res->get.count += w[i].get.count;
        res->put.sum += w[i].put.sum;
        res->get.sum += w[i].get.sum;
        res->put.max = res->put.max > w[i].put.max ? res->put.max : w[i].put.max;
        res->get.max = res->get.max > w[i].get.max ? res->get.max : w[i].get.max;
        if (res->errors == 0 && w[i].errors)
            snprintf(res->first, sizeof(res->first), "%s", w[i].first_message);
        res->errors += w[i].errors;
    }
    res->ops_per_s = (double)(res->put.count + res->get.count) / res->secs;
    free(w);
    return 0;
}

/* Prints one run; label and base (the first mode of --compare) may be NULL. */
static void report(const struct opts *o, const struct result *r, const char *label,
                   const struct result *base)
{
    double secs = r->secs;
    double ratio = base && base->ops_per_s > 0 ? r->ops_per_s / base->ops_per_s : 1.0;
    if (o->json) {
        printf("{\"endpoint\":\"%s\",\"bucket\":\"%s\",\"clients\":%u,\"pipeline\":%u,"
               "\"seconds\":%.2f,\"keys\":%u,\"zipf\":%.3f,\"value_bytes\":%u,\"reads_pct\":%u,"
               "\"seed\":%" PRIu64 ",\"ping\":%s,\"ops_per_s\":%.1f,\"errors\":%" PRIu64 ",",
               o->endpoint, o->bucket, o->clients, o->pipeline, secs, o->keys, o->zipf,
               o->value_bytes, o->read_pct, o->seed, o->ping ? "true" : "false", r->ops_per_s,
               r->errors);
        if (label)
            printf("\"mode\":\"%s\",\"ratio\":%.3f,", label, ratio);
        print_hist("put", &r->put, secs, 1, false);
        print_hist("get", &r->get, secs, 1, true);
        printf("}%s", label ? "" : "\n");
    } else {
        printf("  all  %10" PRIu64 " ops %10.1f/s in %.2f s, %" PRIu64 " errors\n",
               r->put.count + r->get.count, r->ops_per_s, secs, r->errors);
        print_hist(o->ping ? "ping" : "put", o->ping ? &r->get : &r->put, secs, 0, o->ping);
        if (!o->ping)
            print_hist("get", &r->get, secs, 0, true);
        if (r->errors)
            printf("  first error: %s\n", r->first);
    }
}

int main(int argc, char **argv)
{
    struct opts o = {.bucket = "kv",
                     .clients = 4,
                     .seconds = 10,
                     .keys = 1000,
                     .value_bytes = 100,
                     .read_pct = 50,
                     .seed = 1,
                     .pipeline = 1};
    cw_client_options_init(&o.copt);
    const char *config = NULL, *region = NULL, *compare = NULL;
    const char *compare_bucket[COMPARE_MAX], *compare_label[COMPARE_MAX];
    static char compare_names[COMPARE_MAX][CW_BUCKET_LEN_MAX + 1];
    unsigned n_compare = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--load") == 0) {
            o.load = 1;
            continue;
        } else if (strcmp(a, "--json") == 0) {
            o.json = 1;
            continue;
        } else if (strcmp(a, "--ping") == 0) {
            o.ping = 1;
            continue;
        } else if (v == NULL) {
            fprintf(stderr, "causeway-bench: unknown option or missing value '%s' (see --help)\n",
                    a);
            return 2;
        } else if (strcmp(a, "--endpoint") == 0) {
            o.endpoint = v;
        } else if (strcmp(a, "--config") == 0) {
            config = v;
        } else if (strcmp(a, "--region") == 0) {
            region = v;
        } else if (strcmp(a, "--bucket") == 0) {
            o.bucket = v;
        } else if (strcmp(a, "--clients") == 0) {
            if (parse_num(a, v, 1, CLIENTS_MAX, &x))
                return 2;
            o.clients = (unsigned)x;
        } else if (strcmp(a, "--seconds") == 0) {
            if (parse_num(a, v, 1, 3600, &x))
                return 2;
            o.seconds = (unsigned)x;
        } else if (strcmp(a, "--keys") == 0) {
            if (parse_num(a, v, 1, 100000000, &x))
                return 2;
            o.keys = (unsigned)x;
        } else if (strcmp(a, "--value-bytes") == 0) {
            if (parse_num(a, v, 0, 4u << 20, &x))
                return 2;
            o.value_bytes = (unsigned)x;
        } else if (strcmp(a, "--reads") == 0) {
            if (parse_num(a, v, 0, 100, &x))
                return 2;
            o.read_pct = (unsigned)x;
        } else if (strcmp(a, "--pipeline") == 0) {
            if (parse_num(a, v, 1, PIPELINE_MAX, &x))
                return 2;
            o.pipeline = (unsigned)x;
        } else if (strcmp(a, "--rate") == 0) {
            if (parse_num(a, v, 1, 10000000, &x))
                return 2;
            o.rate = (unsigned)x;
        } else if (strcmp(a, "--compare") == 0) {
            compare = v;
        } else if (strcmp(a, "--zipf") == 0) {
            char *end;
            errno = 0;
            o.zipf = strtod(v, &end);
            if (*v == '\0' || *end != '\0' || errno || !(o.zipf > 0) || o.zipf > 10) {
                fprintf(stderr, "causeway-bench: --zipf needs an exponent above 0, at most 10\n");
                return 2;
            }
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_num(a, v, 0, UINT64_MAX, &x))
                return 2;
            o.seed = x;
        } else {
            fprintf(stderr, "causeway-bench: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        i++;
    }
    struct cw_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char endpoint[CW_ENDPOINT_MAX + 1];
    if (config != NULL) {
        char err[1024];
        if (region == NULL || o.endpoint != NULL) {
            fprintf(stderr,
                    "causeway-bench: give --config FILE with --region NAME, or --endpoint\n");
            return 2;
        }
        if (cw_config_load(config, &cfg, err, sizeof(err)) != CW_OK) {
            fprintf(stderr, "causeway-bench: %s\n", err);
            return 1;
        }
        const struct cw_region_config *rc = cw_config_region(&cfg, region);
        if (rc == NULL) {
            fprintf(stderr, "causeway-bench: %s has no [region %s]\n", config, region);
            cw_config_free(&cfg);
            return 1;
        }
        snprintf(endpoint, sizeof(endpoint), "%s", rc->client);
        o.endpoint = endpoint;
        if (cfg.security == CW_SECURITY_CURVE) {
            const char *kf = getenv("CAUSEWAY_KEY_FILE");
            if (kf == NULL || kf[0] == '\0' ||
                cw_client_options_key_file(&o.copt, kf, err, sizeof(err)) != CW_OK) {
                fprintf(stderr, "causeway-bench: %s says security = curve: %s\n", config,
                        kf == NULL || kf[0] == '\0'
                            ? "set CAUSEWAY_KEY_FILE to a client key pair file"
                            : err);
                cw_config_free(&cfg);
                return 1;
            }
            snprintf(o.copt.server_key, sizeof(o.copt.server_key), "%s", rc->public_key);
        }
    }
    /* --compare: modes (causal, eventual, strong) name the config's bucket of that
     * consistency (kv first, then the first last-writer-wins one); anything else
     * is a bucket name. */
    for (const char *p = compare; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n_compare == COMPARE_MAX || n == 0 || n > CW_BUCKET_LEN_MAX) {
            fprintf(stderr, "causeway-bench: --compare takes 1 to %d modes or buckets, "
                            "comma-separated\n", COMPARE_MAX);
            cw_config_free(&cfg);
            return 2;
        }
        char *name = compare_names[n_compare];
        memcpy(name, p, n);
        name[n] = '\0';
        int mode = strcmp(name, "causal") == 0     ? CW_CAUSAL
                   : strcmp(name, "eventual") == 0 ? CW_EVENTUAL
                   : strcmp(name, "strong") == 0   ? CW_STRONG
                                                   : -1;
        compare_label[n_compare] = name;
        compare_bucket[n_compare] = name;
        if (mode >= 0) {
            const struct cw_bucket_policy *pick = NULL;
            for (unsigned b = 0; b < cfg.n_buckets; b++) {
                const struct cw_bucket_policy *bp = &cfg.buckets[b];
                if ((int)bp->consistency != mode)
                    continue;
                if (strcmp(bp->name, "kv") == 0 ||
                    (pick == NULL || (pick->conflict != CW_CONFLICT_LWW &&
                                      bp->conflict == CW_CONFLICT_LWW)))
                    pick = bp;
                if (strcmp(bp->name, "kv") == 0)
                    break;
            }
            if (pick == NULL) {
                fprintf(stderr, "causeway-bench: --compare %s needs --config with a bucket of "
                                "that consistency\n", name);
                cw_config_free(&cfg);
                return 2;
            }
            compare_bucket[n_compare] = pick->name;
        }
        n_compare++;
        p += n;
        if (*p == ',')
            p++;
    }
    if (n_compare > 0) {
        /* The bucket names must outlive the config. */
        for (unsigned i = 0; i < n_compare; i++)
            if (compare_bucket[i] != compare_label[i]) {
                static char copies[COMPARE_MAX][CW_BUCKET_LEN_MAX + 1];
                snprintf(copies[i], sizeof(copies[i]), "%s", compare_bucket[i]);
                compare_bucket[i] = copies[i];
            }
    }
    if (config != NULL)
        cw_config_free(&cfg);
    if (o.endpoint == NULL) {
        fprintf(stderr,
                "causeway-bench: no region to load: give --endpoint or --config/--region\n");
        return 2;
    }

    if (o.zipf > 0) {
        double *cdf = zipf_cdf(o.keys, o.zipf);
        if (cdf == NULL) {
            fprintf(stderr, "causeway-bench: out of memory for the Zipf table\n");
            return 1;
        }
        o.cdf = cdf;
    }
    int rc = 0;
    if (n_compare == 0) {
        struct result res;
        if (run(&o, &res) != 0)
            rc = 1;
        else {
            report(&o, &res, NULL, NULL);
            rc = res.errors && res.put.count + res.get.count == 0 ? 1 : 0;
        }
    } else {
        /* The modes back to back on the same region, then each as a ratio to the
         * first (causal, when listed first). */
        static struct result res[COMPARE_MAX];
        unsigned done = 0;
        if (o.json)
            printf("{\"compare\":[");
        for (unsigned i = 0; i < n_compare; i++) {
            o.bucket = compare_bucket[i];
            if (run(&o, &res[i]) != 0) {
                rc = 1;
                break;
            }
            if (o.json && i > 0)
                printf(",");
            report(&o, &res[i], compare_label[i], i > 0 ? &res[0] : NULL);
            done++;
        }
        if (o.json)
            printf("]}\n");
        else if (done == n_compare) {
            printf("\n| mode | bucket | ops/s | ratio to %s | put p50 ms | get p50 ms |\n"
                   "| --- | --- | --- | --- | --- | --- |\n",
                   compare_label[0]);
            for (unsigned i = 0; i < n_compare; i++)
                printf("| %s | %s | %.0f | %.2f | %.3f | %.3f |\n", compare_label[i],
                       compare_bucket[i], res[i].ops_per_s,
                       res[0].ops_per_s > 0 ? res[i].ops_per_s / res[0].ops_per_s : 0.0,
                       (double)cw_hist_quantile(&res[i].put, 0.5) / 1000.0,
                       (double)cw_hist_quantile(&res[i].get, 0.5) / 1000.0);
        }
    }
    free((void *)o.cdf);
    return rc;
}
