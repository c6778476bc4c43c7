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
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <causeway.h>

#include "core/hist.h"
#include "server/config.h"

#define CLIENTS_MAX 256

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

static void note_error(struct worker *w, int rc, const struct cw_client *c)
{
    if (w->errors++ == 0) {
        w->first_error = rc;
        snprintf(w->first_message, sizeof(w->first_message), "%s (%s)", cw_strerror(rc),
                 cw_client_error(c));
    }
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
    uint64_t seq = w->id;
    while (!atomic_load(&stop_flag)) {
        char key[32];
        uint64_t k = o->load ? seq : next_rand(&rng) % o->keys;
        if (o->load && k >= o->keys)
            break; /* this client's share is written */
        seq += o->clients;
        int klen = snprintf(key, sizeof(key), "k%" PRIu64, k);
        bool read = !o->load && next_rand(&rng) % 100 < o->read_pct;
        uint64_t t0 = mono_ns();
        if (read) {
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
            "  --load               write each of the KEYS keys once (split between the\n"
            "                       clients), then stop; SECONDS is then a time limit\n"
            "  --json               print one JSON object instead of text\n"
            "  --help               this text\n",
            CLIENTS_MAX);
}

static int parse_num(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = v ? strtoull(v, &end, 10) : 0;
    if (v == NULL || *v == '\0' || *v == '-' || *end != '\0' || errno || x < lo || x > hi) {
        fprintf(stderr,
                "causeway-bench: %s needs a number from %" PRIu64 " to %" PRIu64 ", not '%s'\n",
                opt, lo, hi, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

static void print_hist(const char *name, const struct cw_hist *h, double secs, int json, bool last)
{
    double p50 = (double)cw_hist_quantile(h, 0.5) / 1000.0;
    double p99 = (double)cw_hist_quantile(h, 0.99) / 1000.0;
    double max = (double)h->max / 1000.0;
    /* The mean is exact (the quantiles are bucket bounds, within 12.5%): at WAN
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

int main(int argc, char **argv)
{
    struct opts o = {.bucket = "kv",
                     .clients = 4,
                     .seconds = 10,
                     .keys = 1000,
                     .value_bytes = 100,
                     .read_pct = 50,
                     .seed = 1};
    cw_client_options_init(&o.copt);
    const char *config = NULL, *region = NULL;
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
        cw_config_free(&cfg);
    }
    if (o.endpoint == NULL) {
        fprintf(stderr,
                "causeway-bench: no region to load: give --endpoint or --config/--region\n");
        return 2;
    }

    struct worker *w = calloc(o.clients, sizeof(*w));
    if (w == NULL) {
        fprintf(stderr, "causeway-bench: out of memory\n");
        return 1;
    }
    if (!o.json)
        printf("causeway-bench: %s bucket %s, %u clients, %u s, %u keys, %u-byte values, "
               "%u%% reads, seed %" PRIu64 "\n",
               o.endpoint, o.bucket, o.clients, o.seconds, o.keys, o.value_bytes, o.read_pct,
               o.seed);
    uint64_t t0 = mono_ns();
    unsigned started = 0;
    for (; started < o.clients; started++) {
        w[started].o = &o;
        w[started].id = started;
        cw_hist_reset(&w[started].put);
        cw_hist_reset(&w[started].get);
        if (pthread_create(&w[started].thread, NULL, work, &w[started]) != 0) {
            fprintf(stderr, "causeway-bench: cannot start client thread %u\n", started);
            break;
        }
    }
    for (unsigned sec = 1; sec <= o.seconds && started == o.clients; sec++) {
        struct timespec one = {1, 0};
        nanosleep(&one, NULL);
        unsigned finished = 0;
        for (unsigned i = 0; i < started; i++)
            finished += (unsigned)atomic_load(&w[i].finished);
        if (o.load && finished == started)
            break; /* every key written */
        if (!o.json) {
            uint64_t done = 0;
            for (unsigned i = 0; i < started; i++)
                done += atomic_load(&w[i].done);
            fprintf(stderr, "  [%3u/%u s] %" PRIu64 " operations\n", sec, o.seconds, done);
        }
    }
    atomic_store(&stop_flag, 1);
    for (unsigned i = 0; i < started; i++)
        pthread_join(w[i].thread, NULL);
    double secs = (double)(mono_ns() - t0) / 1e9;

    struct cw_hist put, get;
    cw_hist_reset(&put);
    cw_hist_reset(&get);
    uint64_t errors = 0;
    const char *first = NULL;
    for (unsigned i = 0; i < started; i++) {
        for (unsigned b = 0; b < CW_HIST_BUCKETS; b++) {
            put.buckets[b] += w[i].put.buckets[b];
            get.buckets[b] += w[i].get.buckets[b];
        }
        put.count += w[i].put.count;
        get.count += w[i].get.count;
        put.sum += w[i].put.sum;
        get.sum += w[i].get.sum;
        put.max = put.max > w[i].put.max ? put.max : w[i].put.max;
        get.max = get.max > w[i].get.max ? get.max : w[i].get.max;
        errors += w[i].errors;
        if (first == NULL && w[i].errors)
            first = w[i].first_message;
    }
    if (o.json) {
        printf("{\"endpoint\":\"%s\",\"bucket\":\"%s\",\"clients\":%u,\"seconds\":%.2f,"
               "\"keys\":%u,\"value_bytes\":%u,\"reads_pct\":%u,\"seed\":%" PRIu64
               ",\"ops_per_s\":%.1f,\"errors\":%" PRIu64 ",",
               o.endpoint, o.bucket, o.clients, secs, o.keys, o.value_bytes, o.read_pct, o.seed,
               (double)(put.count + get.count) / secs, errors);
        print_hist("put", &put, secs, 1, false);
        print_hist("get", &get, secs, 1, true);
        printf("}\n");
    } else {
        printf("  all  %10" PRIu64 " ops %10.1f/s in %.2f s, %" PRIu64 " errors\n",
               put.count + get.count, (double)(put.count + get.count) / secs, secs, errors);
        print_hist("put", &put, secs, 0, false);
        print_hist("get", &get, secs, 0, true);
        if (first)
            printf("  first error: %s\n", first);
    }
    free(w);
    return errors && put.count + get.count == 0 ? 1 : 0;
}
