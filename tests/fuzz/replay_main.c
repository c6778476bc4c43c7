/*
 * replay_main.c - drives a fuzz target without a fuzzing engine, so that every
 * ordinary build (and CI, under ASan and UBSan) exercises it.
 *
 * Usage: fuzz_<name>_replay [--iterations N] CORPUS_DIR [FILE...]
 *   1. runs every file in CORPUS_DIR (in name order) and every FILE given;
 *   2. then runs CAUSEWAY_FUZZ_ITERATIONS (default N, else 20000) inputs made
 *      from a seeded PRNG: random bytes, and mutations and splices of the
 *      corpus. --iterations lets a slow target (a whole node per input) keep
 *      its ctest case short; the environment variable still overrides it.
 * The seed is CAUSEWAY_FUZZ_SEED (default fixed, so a run is reproducible) and
 * is always printed. With CAUSEWAY_FUZZ_DUMP=FILE each input is written to FILE
 * before it runs, so after a crash FILE holds the input that caused it; pass
 * it back as a FILE argument (or to a libFuzzer binary) to replay it.
 *
 * A target reports a failure by crashing (a sanitizer or FUZZ_CHECK), so this
 * driver only counts: it exits 0 when every input ran.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define INPUT_BYTES_MAX (1u << 20)  /* corpus files larger than this are skipped */
#define RANDOM_BYTES_MAX 512u       /* length of a purely random input */
#define GROWN_BYTES_MAX (64u << 10) /* a mutated input never grows past this */
#define CORPUS_FILES_MAX 4096u
#define DEFAULT_ITERATIONS 20000u
#define DEFAULT_SEED 0xca05e3a7ull

struct input {
    uint8_t *data;
    size_t len;
};

struct corpus {
    struct input *v;
    size_t n;
};

static const char *dump_path;

/* ---------------------------------------------------------------- PRNG */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64: one 64-bit word of state, good enough to drive mutations. */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n)
{
    return n ? (size_t)(rng_next() % n) : 0;
}

/* ------------------------------------------------------------ running */

static void run_one(const uint8_t *data, size_t len)
{
    if (dump_path != NULL) {
        FILE *f = fopen(dump_path, "wb");
        if (f != NULL) {
            if (len)
                fwrite(data, 1, len, f);
            fclose(f);
        }
    }
    /* A heap copy of exactly len bytes, so ASan sees a read one past the end. */
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        fprintf(stderr, "replay: out of memory\n");
        exit(2);
    }
    if (len)
        memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(len ? copy : NULL, len);
    free(copy);
}

static int read_file(const char *path, struct input *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    int rc = -1;
    uint8_t *buf = malloc(INPUT_BYTES_MAX);
    if (buf == NULL)
        goto err_after_open;
    size_t n = fread(buf, 1, INPUT_BYTES_MAX, f);
    if (ferror(f) || fgetc(f) != EOF) /* unreadable, or too large */
        goto err_after_buf;
    /* Keep only what the file holds; on failure the larger buffer is fine. */
    uint8_t *fit = realloc(buf, n ? n : 1);
    out->data = fit ? fit : buf;
    out->len = n;
    fclose(f);
    return 0;

err_after_buf:
    free(buf);
err_after_open:
    fclose(f);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads every regular file of dir, in name order (readdir's order is not
 * stable, and a reproducible run needs the same corpus order). */
static int load_dir(const char *dir, struct corpus *c)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = calloc(CORPUS_FILES_MAX, sizeof(*names));
    size_t n = 0;
    struct dirent *e;
    while (names != NULL && n < CORPUS_FILES_MAX && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names[n] = strdup(e->d_name);
        if (names[n] != NULL)
            n++;
    }
    closedir(d);
    if (names == NULL)
        return -1;
    qsort(names, n, sizeof(*names), name_cmp);
    c->v = calloc(n ? n : 1, sizeof(*c->v));
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (c->v != NULL && read_file(path, &c->v[c->n]) == 0)
            c->n++;
        else
            fprintf(stderr, "replay: skipping %s\n", path);
        free(names[i]);
    }
    free(names);
    return c->v == NULL ? -1 : 0;
}

/* ---------------------------------------------------------- mutations */

/* Values that sit on the edges protobuf varints, lengths and counts test. */
static const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x07, 0x08, 0x0a, 0x10,
                                      0x12, 0x7f, 0x80, 0x81, 0xfe, 0xff};

/* Opens a gap of k bytes at offset at of buf (n bytes, room for n + k). */
static void open_gap(uint8_t *buf, size_t n, size_t at, size_t k)
{
    if (at < n)
        memmove(buf + at + k, buf + at, n - at);
}

/* Applies one random edit to buf (capacity GROWN_BYTES_MAX) of *len bytes. */
static void mutate_once(uint8_t *buf, size_t *len, const struct corpus *c)
{
    /* Always true; stated so the compiler can bound the memmove lengths. */
    size_t n = *len < GROWN_BYTES_MAX ? *len : GROWN_BYTES_MAX;
    switch (rng_below(9)) {
    case 0: /* flip a bit */
        if (n)
            buf[rng_below(n)] ^= (uint8_t)(1u << rng_below(8));
        break;
    case 1: /* set a random byte */
        if (n)
            buf[rng_below(n)] = (uint8_t)rng_next();
        break;
    case 2: /* set an interesting byte */
        if (n)
            buf[rng_below(n)] = interesting[rng_below(sizeof(interesting))];
        break;
    case 3: /* truncate */
        *len = rng_below(n + 1);
        break;
    case 4: { /* delete a range */
        if (n == 0)
            break;
        size_t at = rng_below(n), k = 1 + rng_below(n - at);
        memmove(buf + at, buf + at + k, n - at - k);
        *len = n - k;
        break;
    }
    case 5: { /* insert random bytes */
        size_t k = 1 + rng_below(16);
        if (n + k > GROWN_BYTES_MAX)
            break;
        size_t at = rng_below(n + 1);
        open_gap(buf, n, at, k);
        for (size_t i = 0; i < k; i++)
            buf[at + i] = (uint8_t)rng_next();
        *len = n + k;
        break;
    }
    case 6: { /* duplicate a range */
        if (n == 0)
            break;
        size_t from = rng_below(n), k = 1 + rng_below(n - from);
        if (n + k > GROWN_BYTES_MAX)
            break;
        size_t at = rng_below(n + 1);
        open_gap(buf, n, at, k);
        memmove(buf + at, buf + (from < at ? from : from + k), k);
        *len = n + k;
        break;
    }
    case 7: { /* splice in a piece of another corpus entry */
        if (c->n == 0)
            break;
        const struct input *o = &c->v[rng_below(c->n)];
        if (o->len == 0)
            break;
        size_t from = rng_below(o->len), k = 1 + rng_below(o->len - from);
        size_t at = rng_below(n + 1);
        if (at + k > GROWN_BYTES_MAX)
            break;
        memcpy(buf + at, o->data + from, k);
        if (at + k > n)
            *len = at + k;
        break;
    }
    default: { /* add or subtract a small number from a byte (lengths, counts) */
        if (n)
            buf[rng_below(n)] += (uint8_t)(rng_below(9) - 4);
        break;
    }
    }
}

static void run_generated(const struct corpus *c, unsigned long iterations)
{
    uint8_t *buf = malloc(GROWN_BYTES_MAX);
    if (buf == NULL) {
        fprintf(stderr, "replay: out of memory\n");
        exit(2);
    }
    for (unsigned long it = 0; it < iterations; it++) {
        size_t len;
        if (c->n == 0 || rng_below(8) == 0) {
            len = rng_below(RANDOM_BYTES_MAX + 1);
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rng_next();
        } else {
            const struct input *base = &c->v[rng_below(c->n)];
            len = base->len < GROWN_BYTES_MAX ? base->len : GROWN_BYTES_MAX;
            memcpy(buf, base->data, len);
            size_t edits = 1 + rng_below(rng_below(2) ? 2 : 8);
            for (size_t e = 0; e < edits; e++)
                mutate_once(buf, &len, c);
        }
        run_one(buf, len);
    }
    free(buf);
}

static unsigned long long env_number(const char *name, unsigned long long def)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return def;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0') {
        fprintf(stderr, "replay: ignoring %s=%s (not a number)\n", name, s);
        return def;
    }
    return v;
}

int main(int argc, char **argv)
{
    unsigned long long default_iterations = DEFAULT_ITERATIONS;
    if (argc >= 3 && strcmp(argv[1], "--iterations") == 0) {
        char *end;
        errno = 0;
        default_iterations = strtoull(argv[2], &end, 0);
        if (errno != 0 || *end != '\0' || argv[2][0] == '\0') {
            fprintf(stderr, "replay: --iterations %s is not a number\n", argv[2]);
            return 2;
        }
        argv += 2;
        argc -= 2;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s [--iterations N] CORPUS_DIR [FILE...]\n", argv[0]);
        return 2;
    }
    unsigned long long seed = env_number("CAUSEWAY_FUZZ_SEED", DEFAULT_SEED);
    unsigned long iterations =
        (unsigned long)env_number("CAUSEWAY_FUZZ_ITERATIONS", default_iterations);
    dump_path = getenv("CAUSEWAY_FUZZ_DUMP");
    rng_state = seed;
    printf("replay: %s seed=0x%llx iterations=%lu (set CAUSEWAY_FUZZ_SEED and "
           "CAUSEWAY_FUZZ_ITERATIONS to change)\n",
           argv[0], seed, iterations);
    fflush(stdout);

    struct corpus c = {0};
    if (load_dir(argv[1], &c) != 0)
        return 2;
    for (size_t i = 0; i < c.n; i++)
        run_one(c.v[i].data, c.v[i].len);
    for (int a = 2; a < argc; a++) {
        struct input in;
        if (read_file(argv[a], &in) != 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[a]);
            return 2;
        }
        run_one(in.data, in.len);
        free(in.data);
    }
    printf("replay: %zu corpus inputs ran\n", c.n);
    fflush(stdout);
    run_generated(&c, iterations);
    printf("replay: %lu generated inputs ran, seed=0x%llx\n", iterations, seed);
    for (size_t i = 0; i < c.n; i++)
        free(c.v[i].data);
    free(c.v);
    return 0;
}
