/*
 * test_client_session.c - libcauseway without a server: session files (round
 * trip, atomic replacement, malformed files with line numbers), context tokens,
 * stamps as text, the status as JSON (exact 64-bit values) and its region
 * names, and client-side validation that fails before anything is sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <causeway.h>

#include <jansson.h>

#include "core/session.h"
#include "core/vclock.h"

/* ------------------------------------------------------------ temp files */

struct tmp {
    char dir[64];
    char path[256];
};

static int setup_tmp(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -1;
    strcpy(t->dir, "/tmp/cw-client-test-XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    snprintf(t->path, sizeof(t->path), "%s/session", t->dir);
    *state = t;
    return 0;
}

/* Removes every file in the directory (tests create only plain files), then it. */
static int teardown_tmp(void **state)
{
    struct tmp *t = *state;
    DIR *d = opendir(t->dir);
    if (d != NULL) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", t->dir, e->d_name);
            if (unlink(p) != 0)
                rmdir(p);
        }
        closedir(d);
    }
    rmdir(t->dir);
    free(t);
    return 0;
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Reads a whole small file into a NUL-terminated malloc'd buffer. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static size_t count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void make_token(char *buf, uint64_t a, uint64_t b, uint64_t c)
{
    struct cw_vclock v;
    cw_vc_zero(&v);
    v.ts[0] = a;
    v.ts[1] = b;
    v.ts[2] = c;
    cw_token_format(&v, buf);
}

/* Lowercase hex of a string, for hand-written session files. */
static void hex_of(const char *s, char *out)
{
    static const char d[] = "0123456789abcdef";
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[(uint8_t)s[i] >> 4];
        out[2 * i + 1] = d[(uint8_t)s[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A valid session file with a context and three key contexts, oldest first. */
static void write_sample_session(const char *path)
{
    char ctx[CW_TOKEN_MAX], k1[CW_TOKEN_MAX], k2[CW_TOKEN_MAX], k3[CW_TOKEN_MAX];
    char h1[64], h2[64], h3[64];
    make_token(ctx, 1000, 2000, 3000);
    make_token(k1, 10, 0, 0);
    make_token(k2, 0, 20, 0);
    make_token(k3, 0, 0, 30);
    hex_of("cart/alice", h1);
    hex_of("cart/bob", h2);
    hex_of("feed/p/1", h3);
    char text[4096];
    int n = snprintf(text, sizeof(text),
                     "causeway-session 1\ncontext %s\nkey %s %s\nkey %s %s\nkey %s %s\n", ctx, h1,
                     k1, h2, k2, h3, k3);
    write_file(path, text, (size_t)n);
}

/* --------------------------------------------------------------- sessions */

static void test_session_round_trip(void **state)
{
    struct tmp *t = *state;
    char other[300];
    snprintf(other, sizeof(other), "%s/copy", t->dir);
    write_sample_session(t->path);
    char *original = read_file(t->path);

    struct cw_sess *s = NULL;
    assert_int_equal(cw_sess_new(0, &s), CW_OK);
    assert_int_equal(cw_sess_load(s, t->path), CW_OK);
    assert_string_equal(cw_sess_error(s), "");
    char tok[CW_CONTEXT_TOKEN_MAX], want[CW_TOKEN_MAX];
    assert_int_equal(cw_sess_export(s, tok, sizeof(tok)), CW_OK);
    make_token(want, 1000, 2000, 3000);
    assert_string_equal(tok, want);

    /* Saving what was loaded reproduces the file: context, every key context,
     * and their use order. */
    assert_int_equal(cw_sess_save(s, other), CW_OK);
    char *copy = read_file(other);
    assert_string_equal(copy, original);
    free(copy);

    /* And loading that again into a fresh session gives the same state. */
    struct cw_sess *s2 = NULL;
    assert_int_equal(cw_sess_new(0, &s2), CW_OK);
    assert_int_equal(cw_sess_load(s2, other), CW_OK);
    assert_int_equal(cw_sess_save(s2, t->path), CW_OK);
    copy = read_file(t->path);
    assert_string_equal(copy, original);
    free(copy);

    free(original);
    cw_sess_free(&s);
    cw_sess_free(&s2);
    assert_null(s);
    cw_sess_free(&s); /* a second free is harmless */
    cw_sess_free(NULL);
}

static void test_session_repeated_key_is_most_recent(void **state)
{
    /* A key that appears again is used again: its last context wins and it moves
     * to the most recent end, so a save writes it last. */
    struct tmp *t = *state;
    char ctx[CW_TOKEN_MAX], k1[CW_TOKEN_MAX], k2[CW_TOKEN_MAX], k3[CW_TOKEN_MAX];
    char ha[64], hb[64], text[2048], want[2048];
    make_token(ctx, 1, 1, 1);
    make_token(k1, 1, 0, 0);
    make_token(k2, 2, 0, 0);
    make_token(k3, 3, 0, 0);
    hex_of("b/a", ha);
    hex_of("b/b", hb);
    int n = snprintf(text, sizeof(text),
                     "causeway-session 1\ncontext %s\nkey %s %s\nkey %s %s\nkey %s %s\n", ctx, ha,
                     k1, hb, k2, ha, k3);
    write_file(t->path, text, (size_t)n);
    snprintf(want, sizeof(want), "causeway-session 1\ncontext %s\nkey %s %s\nkey %s %s\n", ctx, hb,
             k2, ha, k3);
    struct cw_sess *s = NULL;
    assert_int_equal(cw_sess_new(0, &s), CW_OK);
    assert_int_equal(cw_sess_load(s, t->path), CW_OK);
    assert_int_equal(cw_sess_save(s, t->path), CW_OK);
    char *got = read_file(t->path);
    assert_string_equal(got, want);
    free(got);
    cw_sess_free(&s);
}

static void test_session_bound_keeps_most_recent(void **state)
{
    struct tmp *t = *state;
    write_sample_session(t->path);
    struct cw_sess *s = NULL;
    assert_int_equal(cw_sess_new(2, &s), CW_OK);
    assert_int_equal(cw_sess_load(s, t->path), CW_OK);
    assert_int_equal(cw_sess_save(s, t->path), CW_OK);
    char *text = read_file(t->path);
    char h[64];
    hex_of("cart/alice", h);
    assert_null(strstr(text, h)); /* the least recently used key was forgotten */
    hex_of("cart/bob", h);
    assert_non_null(strstr(text, h));
    hex_of("feed/p/1", h);
    assert_non_null(strstr(text, h));
    free(text);
    cw_sess_free(&s);

    assert_int_equal(cw_sess_new(CW_SESS_KEYS_MAX + 1, &s), CW_EINVAL);
    assert_null(s);
}

static void test_session_save_creates_and_is_atomic(void **state)
{
    struct tmp *t = *state;
    struct cw_sess *s = NULL;
    assert_int_equal(cw_sess_new(0, &s), CW_OK);

    /* A missing file: load says so and leaves the session alone; save creates it. */
    assert_int_equal(cw_sess_load(s, t->path), CW_ENOTFOUND);
    assert_non_null(strstr(cw_sess_error(s), t->path));
    assert_int_equal(cw_sess_save(s, t->path), CW_OK);
    struct stat st;
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = read_file(t->path);
    assert_string_equal(text, "causeway-session 1\ncontext cw1-00\n");
    free(text);

    /* Replacing: the new content is complete and no temporary file is left. */
    char tok[CW_TOKEN_MAX];
    make_token(tok, 5, 6, 7);
    assert_int_equal(cw_sess_import(s, tok), CW_OK);
    assert_int_equal(cw_sess_save(s, t->path), CW_OK);
    text = read_file(t->path);
    char want[512];
    snprintf(want, sizeof(want), "causeway-session 1\ncontext %s\n", tok);
    assert_string_equal(text, want);
    free(text);
    assert_int_equal(count_dir_entries(t->dir), 1);

    /* A save that cannot complete (the target is a directory) fails, keeps the
     * directory as it was and removes its temporary file. */
    char sub[300];
    snprintf(sub, sizeof(sub), "%s/adir", t->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(cw_sess_save(s, sub), CW_EIO);
    assert_non_null(strstr(cw_sess_error(s), "adir"));
    assert_int_equal(count_dir_entries(t->dir), 2); /* session + adir, no temp file */
    assert_int_equal(count_dir_entries(sub), 0);

    /* A directory that does not exist. */
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/nodir/session", t->dir);
    assert_int_equal(cw_sess_save(s, missing), CW_EIO);
    assert_string_not_equal(cw_sess_error(s), "");
    cw_sess_free(&s);
}

struct bad_file {
    const char *text; /* with %1$s = a valid token, %2$s = hex of a valid key */
    unsigned line;
};

static void test_session_malformed_files(void **state)
{
    struct tmp *t = *state;
    char tok[CW_TOKEN_MAX], hex[64];
    make_token(tok, 1, 2, 3);
    hex_of("b/k", hex);
    /* Each text is formatted with the token and the key's hex. */
    static const struct bad_file cases[] = {
        {"", 1},
        {"hello\n", 1},
        {"causeway-session\n", 1},
        {"causeway-session 2\ncontext %1$s\n", 1},
        {"causeway-session 1x\ncontext %1$s\n", 1},
        {"causeway-session 1\n", 2},
        {"causeway-session 1\ncontext\n", 2},
        {"causeway-session 1\ncontext cw1-zz\n", 2},
        {"causeway-session 1\ncontext %1$s trailing\n", 2},
        {"causeway-session 1\nkey %2$s %1$s\n", 2},
        {"causeway-session 1\ncontext %1$s\nkey %2$s\n", 3},
        {"causeway-session 1\ncontext %1$s\nkey %2$s cw1-0\n", 3},
        {"causeway-session 1\ncontext %1$s\nkey 6 %1$s\n", 3},      /* odd hex */
        {"causeway-session 1\ncontext %1$s\nkey 6G6b %1$s\n", 3},   /* bad hex digit */
        {"causeway-session 1\ncontext %1$s\nkey 626b %1$s\n", 3},   /* "bk": no slash */
        {"causeway-session 1\ncontext %1$s\nkey 2f6b %1$s\n", 3},   /* "/k": no bucket */
        {"causeway-session 1\ncontext %1$s\nkey 422f6b %1$s\n", 3}, /* "B/k": bad bucket */
        {"causeway-session 1\ncontext %1$s\nkey 622f %1$s\n", 3},   /* "b/": empty key */
        {"causeway-session 1\ncontext %1$s\nkey %2$s %1$s\nnonsense\n", 4},
        {"causeway-session 1\ncontext %1$s\ncontext %1$s\n", 3},
    };
    char text[1024];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = snprintf(text, sizeof(text), cases[i].text, tok, hex);
        assert_true(n >= 0);
        write_file(t->path, text, (size_t)n);
        struct cw_sess *s = NULL;
        assert_int_equal(cw_sess_new(0, &s), CW_OK);
        char before[CW_TOKEN_MAX], after[CW_TOKEN_MAX], token0[CW_TOKEN_MAX];
        make_token(token0, 9, 9, 9);
        assert_int_equal(cw_sess_import(s, token0), CW_OK);
        assert_int_equal(cw_sess_export(s, before, sizeof(before)), CW_OK);
        int rc = cw_sess_load(s, t->path);
        if (rc != CW_ECONTEXT)
            fail_msg("case %zu: expected CW_ECONTEXT, got %d for:\n%s", i, rc, text);
        char want[300];
        snprintf(want, sizeof(want), "%s:%u:", t->path, cases[i].line);
        if (strstr(cw_sess_error(s), want) == NULL)
            fail_msg("case %zu: error \"%s\" does not name line %u", i, cw_sess_error(s),
                     cases[i].line);
        /* The session is unchanged by a failed load. */
        assert_int_equal(cw_sess_export(s, after, sizeof(after)), CW_OK);
        assert_string_equal(before, after);
        cw_sess_free(&s);
    }

    /* A line longer than any valid line, and a NUL byte inside a line. */
    size_t big = 8000;
    char *huge = malloc(big + 64);
    assert_non_null(huge);
    int n = snprintf(huge, big + 64, "causeway-session 1\ncontext %s\nkey ", tok);
    memset(huge + n, 'a', big - (size_t)n);
    huge[big] = '\n';
    write_file(t->path, huge, big + 1);
    free(huge);
    struct cw_sess *s = NULL;
    assert_int_equal(cw_sess_new(0, &s), CW_OK);
    assert_int_equal(cw_sess_load(s, t->path), CW_ECONTEXT);
    assert_non_null(strstr(cw_sess_error(s), ":3:"));
    static const char with_nul[] = "causeway-session 1\ncontext cw1-00\0x\n";
    write_file(t->path, with_nul, sizeof(with_nul) - 1);
    assert_int_equal(cw_sess_load(s, t->path), CW_ECONTEXT);
    assert_non_null(strstr(cw_sess_error(s), ":2:"));

    /* A file without a final newline is still fine. */
    n = snprintf(text, sizeof(text), "causeway-session 1\ncontext %s", tok);
    write_file(t->path, text, (size_t)n);
    assert_int_equal(cw_sess_load(s, t->path), CW_OK);
    char got[CW_TOKEN_MAX];
    assert_int_equal(cw_sess_export(s, got, sizeof(got)), CW_OK);
    assert_string_equal(got, tok);
    cw_sess_free(&s);
}

/* A file with CRLF line ends (an editor on Windows) loads like one with LF; a
 * file of another kind or format version says so, rather than "malformed". */
static void test_session_crlf_and_messages(void **state)
{
    struct tmp *t = *state;
    char tok[CW_TOKEN_MAX], ktok[CW_TOKEN_MAX], hex[64], text[1024];
    make_token(tok, 1, 2, 3);
    make_token(ktok, 0, 7, 0);
    hex_of("cart/alice", hex);
    int n = snprintf(text, sizeof(text), "causeway-session 1\r\ncontext %s\r\nkey %s %s\r\n", tok,
                     hex, ktok);
    write_file(t->path, text, (size_t)n);
    struct cw_sess *s = NULL;
    assert_int_equal(cw_sess_new(0, &s), CW_OK);
    if (cw_sess_load(s, t->path) != CW_OK)
        fail_msg("a CRLF session file is refused: %s", cw_sess_error(s));
    char got[CW_TOKEN_MAX];
    assert_int_equal(cw_sess_export(s, got, sizeof(got)), CW_OK);
    assert_string_equal(got, tok);
    /* The key context came through too: saving writes it back (with LF). */
    assert_int_equal(cw_sess_save(s, t->path), CW_OK);
    char expect[1024];
    n = snprintf(expect, sizeof(expect), "causeway-session 1\ncontext %s\nkey %s %s\n", tok, hex,
                 ktok);
    FILE *f = fopen(t->path, "r");
    assert_non_null(f);
    char back[1024];
    size_t len = fread(back, 1, sizeof(back) - 1, f);
    fclose(f);
    back[len] = '\0';
    assert_string_equal(back, expect);
    /* A last line without its LF but with the CR, too. */
    n = snprintf(text, sizeof(text), "causeway-session 1\r\ncontext %s\r", tok);
    write_file(t->path, text, (size_t)n);
    assert_int_equal(cw_sess_load(s, t->path), CW_OK);
    /* A CR inside a line is still not part of the format. */
    n = snprintf(text, sizeof(text), "causeway-session 1\ncontext %s\rx\n", tok);
    write_file(t->path, text, (size_t)n);
    assert_int_equal(cw_sess_load(s, t->path), CW_ECONTEXT);
    assert_non_null(strstr(cw_sess_error(s), ":2: malformed session file"));

    /* Another format version: named, and not called malformed. */
    n = snprintf(text, sizeof(text), "causeway-session 2\ncontext %s\n", tok);
    write_file(t->path, text, (size_t)n);
    assert_int_equal(cw_sess_load(s, t->path), CW_ECONTEXT);
    const char *e = cw_sess_error(s);
    if (strstr(e, ":1: session file format version '2'") == NULL ||
        strstr(e, "reads version 1") == NULL || strstr(e, "malformed") != NULL)
        fail_msg("version 2: %s", e);
    /* Not a session file at all. */
    write_file(t->path, "hello\n", 6);
    assert_int_equal(cw_sess_load(s, t->path), CW_ECONTEXT);
    e = cw_sess_error(s);
    if (strstr(e, ":1: not a causeway session file") == NULL || strstr(e, "malformed") != NULL)
        fail_msg("not a session file: %s", e);
    cw_sess_free(&s);
}

static void test_session_tokens(void **state)
{
    (void)state;
    struct cw_sess *s = NULL;
    assert_int_equal(cw_sess_new(0, &s), CW_OK);
    char buf[CW_CONTEXT_TOKEN_MAX];
    assert_int_equal(cw_sess_export(s, buf, sizeof(buf)), CW_OK);
    assert_string_equal(buf, "cw1-00"); /* the empty context */

    /* Import joins entry-wise: the result depends on both. */
    char a[CW_TOKEN_MAX], b[CW_TOKEN_MAX], joined[CW_TOKEN_MAX];
    make_token(a, 100, 5, 0);
    make_token(b, 7, 200, UINT64_MAX);
    make_token(joined, 100, 200, UINT64_MAX);
    assert_int_equal(cw_sess_import(s, a), CW_OK);
    assert_int_equal(cw_sess_export(s, buf, sizeof(buf)), CW_OK);
    assert_string_equal(buf, a);
    assert_int_equal(cw_sess_import(s, b), CW_OK);
    assert_int_equal(cw_sess_export(s, buf, sizeof(buf)), CW_OK);
    assert_string_equal(buf, joined);

    /* The exported token parses back to the same vector. */
    struct cw_vclock v;
    assert_int_equal(cw_token_parse(buf, &v), CW_OK);
    assert_true(v.ts[0] == 100 && v.ts[1] == 200 && v.ts[2] == UINT64_MAX);

    static const char *const bad[] = {"",       "cw1-",   "cw2-00",  "cw1-0",   "cw1-zz",
                                      "cw1-ff", "CW1-00", "cw1-00 ", "cw1-0000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cw_sess_import(s, bad[i]) != CW_ECONTEXT)
            fail_msg("token \"%s\" was accepted", bad[i]);
        assert_string_not_equal(cw_sess_error(s), "");
    }
    assert_int_equal(cw_sess_export(s, buf, sizeof(buf)), CW_OK);
    assert_string_equal(buf, joined);

    /* Too small a buffer. */
    char small[8];
    assert_int_equal(cw_sess_export(s, small, sizeof(small)), CW_ETOOBIG);
    assert_string_equal(small, "");
    cw_sess_free(&s);
}

/* ------------------------------------------------------------------- JSON */

/* ------------------------------------------------------------------ stamps */

static void test_stamps(void **state)
{
    (void)state;
    /* 2025-03-01T12:34:56.123456Z is 1740832496123456 us after the epoch. */
    uint64_t us = 1740832496123456ull;
    uint64_t ts = us << CW_STAMP_LOGICAL_BITS | 7;
    assert_true(cw_stamp_us(ts) == us);
    char buf[CW_STAMP_TEXT_MAX];
    assert_int_equal(cw_stamp_format(ts, buf, sizeof(buf)), CW_OK);
    assert_string_equal(buf, "2025-03-01T12:34:56.123456Z");
    assert_int_equal(cw_stamp_format(0, buf, sizeof(buf)), CW_OK);
    assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
    /* The largest stamp: the last microsecond that 52 bits hold, in 2112. */
    assert_int_equal(cw_stamp_format(UINT64_MAX, buf, sizeof(buf)), CW_OK);
    assert_int_equal(strlen(buf), CW_STAMP_TEXT_MAX - 1);
    assert_memory_equal(buf, "2112-", 5);
    /* Too small a buffer: CW_ETOOBIG and "". */
    char small[CW_STAMP_TEXT_MAX - 1];
    assert_int_equal(cw_stamp_format(ts, small, sizeof(small)), CW_ETOOBIG);
    assert_string_equal(small, "");
    assert_int_equal(cw_stamp_format(ts, NULL, 0), CW_ETOOBIG);
}

/* ------------------------------------------------------------------ status */

static struct cw_status *sample_status(void)
{
    struct cw_status *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->id = 1;
    s->regions.n = 3;
    strcpy(s->regions.name[0], "us-east");
    strcpy(s->regions.name[1], "eu-west");
    strcpy(s->regions.name[2], "ap-south");
    strcpy(s->durability, "write_nosync");
    s->uptime_us = 61500000;
    s->now_us = 1740832496123456ull;
    s->clock = s->now_us << CW_STAMP_LOGICAL_BITS;
    s->applied[0] = s->clock - (40000ull << CW_STAMP_LOGICAL_BITS);
    s->applied[1] = s->clock;
    s->stable[1] = s->clock - (110000ull << CW_STAMP_LOGICAL_BITS);
    s->buffered = 2;
    s->outbox_total = 5;
    s->waiting = 1;
    s->keys = 42;
    s->outbox_bytes = 5000;
    s->buffered_bytes = 2100;
    s->key_cache_bytes = 42000;
    s->outbox_body_bytes = 4900;
    s->inflight_bytes[0] = 1024;
    s->inflight_bytes[1] = 0;
    s->n_peers = 2;
    s->peers[0] = (struct cw_status_peer){.id = 0,
                                          .delay_ms = 40,
                                          .queued = 3,
                                          .frames_sent = 10,
                                          .frames_dropped = 1,
                                          .frames_received = 11,
                                          .bytes_sent = 4096,
                                          .outbox_pending = 5,
                                          .visibility = {7, 40100, 41000, 43000, 45500}};
    s->peers[1] = (struct cw_status_peer){.id = 2, .link_cut = true};
    s->counters.puts = 9;
    s->counters.stamps_refused = 4;
    s->counters.commit_records = 12;
    s->counters.auth_refused = 21;
    s->counters.admin_refused = 22;
    s->counters.requests_waited = 13;
    s->counters.requests_timed_out = 14;
    s->keys_loaded = 15;
    s->keys_evicted = 16;
    s->checkpoints_failed = 23;
    s->checkpoints_failing = 2;
    s->bodies_loaded = 17;
    s->bodies_evicted = 18;
    s->store_read_errors = 19;
    s->client_connections = 23;
    s->client_connections_max = 24;
    s->connections_refused = 25;
    return s;
}

static json_t *status_doc(const struct cw_status *s)
{
    char *text = NULL;
    assert_int_equal(cw_status_to_json(s, &text), CW_OK);
    assert_non_null(text);
    /* One line. */
    assert_null(strchr(text, '\n'));
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    if (doc == NULL)
        fail_msg("not JSON (%s): %s", err.text, text);
    /* cw_status_regions reads what cw_status_to_json writes. */
    struct cw_regions r;
    assert_int_equal(cw_status_regions(text, &r), CW_OK);
    assert_int_equal(r.n, s->regions.n);
    assert_memory_equal(&r, &s->regions, sizeof(r));
    free(text);
    return doc;
}

static void test_status_json(void **state)
{
    (void)state;
    struct cw_status *s = sample_status();
    json_t *doc = status_doc(s);
    assert_string_equal(json_string_value(json_object_get(doc, "region")), "eu-west");
    assert_int_equal(json_integer_value(json_object_get(doc, "id")), 1);
    assert_int_equal(json_array_size(json_object_get(doc, "regions")), 3);
    assert_string_equal(json_string_value(json_object_get(doc, "durability")), "write_nosync");
    assert_true(json_integer_value(json_object_get(doc, "uptime_us")) == 61500000);
    assert_true((uint64_t)json_integer_value(json_object_get(doc, "clock")) == s->clock);
    assert_true((uint64_t)json_integer_value(json_object_get(doc, "now_us")) == s->now_us);
    json_t *applied = json_object_get(doc, "applied");
    assert_int_equal(json_object_size(applied), 3);
    assert_true((uint64_t)json_integer_value(json_object_get(applied, "us-east")) == s->applied[0]);
    assert_int_equal(json_integer_value(json_object_get(applied, "ap-south")), 0);
    assert_true((uint64_t)json_integer_value(
                    json_object_get(json_object_get(doc, "stable"), "eu-west")) == s->stable[1]);
    assert_int_equal(json_integer_value(json_object_get(doc, "buffered")), 2);
    assert_int_equal(json_integer_value(json_object_get(doc, "outbox_total")), 5);
    assert_int_equal(json_integer_value(json_object_get(doc, "waiting")), 1);
    assert_null(json_object_get(doc, "pending_reads"));
    assert_int_equal(json_integer_value(json_object_get(doc, "keys")), 42);
    assert_int_equal(json_integer_value(json_object_get(doc, "outbox_bytes")), 5000);
    assert_int_equal(json_integer_value(json_object_get(doc, "buffered_bytes")), 2100);
    assert_int_equal(json_integer_value(json_object_get(doc, "key_cache_bytes")), 42000);
    assert_int_equal(json_integer_value(json_object_get(doc, "outbox_body_bytes")), 4900);

    json_t *peers = json_object_get(doc, "peers");
    assert_int_equal(json_array_size(peers), 2);
    json_t *p0 = json_array_get(peers, 0), *p1 = json_array_get(peers, 1);
    assert_string_equal(json_string_value(json_object_get(p0, "region")), "us-east");
    assert_string_equal(json_string_value(json_object_get(p0, "link")), "up");
    assert_int_equal(json_integer_value(json_object_get(p0, "delay_ms")), 40);
    assert_int_equal(json_integer_value(json_object_get(p0, "queued")), 3);
    assert_int_equal(json_integer_value(json_object_get(p0, "frames_sent")), 10);
    assert_int_equal(json_integer_value(json_object_get(p0, "frames_dropped")), 1);
    assert_int_equal(json_integer_value(json_object_get(p0, "frames_received")), 11);
    assert_int_equal(json_integer_value(json_object_get(p0, "bytes_sent")), 4096);
    assert_int_equal(json_integer_value(json_object_get(p0, "outbox_pending")), 5);
    assert_int_equal(json_integer_value(json_object_get(p0, "inflight_bytes")), 1024);
    assert_int_equal(json_integer_value(json_object_get(p1, "inflight_bytes")), 0);
    assert_string_equal(json_string_value(json_object_get(p1, "region")), "ap-south");
    assert_string_equal(json_string_value(json_object_get(p1, "link")), "cut");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "outbox"), "us-east")),
                     5);
    json_t *vis = json_object_get(json_object_get(doc, "visibility_ms"), "us-east");
    assert_true(json_real_value(json_object_get(vis, "p50")) == 40.1);
    assert_true(json_real_value(json_object_get(vis, "p90")) == 41.0);
    assert_true(json_real_value(json_object_get(vis, "p99")) == 43.0);
    assert_true(json_real_value(json_object_get(vis, "max")) == 45.5);
    assert_int_equal(json_integer_value(json_object_get(vis, "count")), 7);

    json_t *c = json_object_get(doc, "counters");
    assert_int_equal(json_object_size(c), 41);
    assert_int_equal(json_integer_value(json_object_get(c, "puts")), 9);
    /* Reads and writes wait alike: the counters say requests. */
    assert_int_equal(json_integer_value(json_object_get(c, "requests_waited")), 13);
    assert_int_equal(json_integer_value(json_object_get(c, "requests_timed_out")), 14);
    assert_null(json_object_get(c, "reads_waited"));
    assert_null(json_object_get(c, "reads_timed_out"));
    assert_int_equal(json_integer_value(json_object_get(c, "keys_loaded")), 15);
    assert_int_equal(json_integer_value(json_object_get(c, "keys_evicted")), 16);
    assert_int_equal(json_integer_value(json_object_get(c, "bodies_loaded")), 17);
    assert_int_equal(json_integer_value(json_object_get(c, "bodies_evicted")), 18);
    assert_int_equal(json_integer_value(json_object_get(c, "store_read_errors")), 19);
    assert_int_equal(json_integer_value(json_object_get(c, "stamps_refused")), 4);
    assert_int_equal(json_integer_value(json_object_get(c, "commit_records")), 12);
    assert_int_equal(json_integer_value(json_object_get(c, "replies_dropped")), 0);
    assert_int_equal(json_integer_value(json_object_get(c, "auth_refused")), 21);
    assert_int_equal(json_integer_value(json_object_get(c, "admin_refused")), 22);
    assert_int_equal(json_integer_value(json_object_get(c, "handshakes_failed")), 0);
    assert_int_equal(json_integer_value(json_object_get(c, "repl_records")), 0);
    /* No record sent yet: the derived figures have no divisor. */
    json_t *rp = json_object_get(doc, "replication");
    assert_true(json_is_null(json_object_get(rp, "metadata_bytes_per_record")));
    assert_true(json_is_null(json_object_get(rp, "lz4_ratio")));
    assert_int_equal(json_integer_value(json_object_get(c, "connections_refused")), 25);
    assert_int_equal(json_integer_value(json_object_get(doc, "client_connections")), 23);
    assert_int_equal(json_integer_value(json_object_get(doc, "client_connections_max")), 24);
    assert_int_equal(json_integer_value(json_object_get(c, "checkpoints_failed")), 23);
    assert_int_equal(json_integer_value(json_object_get(c, "checkpoints_failing")), 2);
    json_decref(doc);
    /* 40 records, 2 200 bytes of metadata, 9 000 bytes of batches LZ4 made 3 000. */
    s->replication.records = 40;
    s->replication.metadata_bytes = 2200;
    s->replication.batch_bytes = 9000;
    s->replication.batch_lz4_bytes = 3000;
    doc = status_doc(s);
    c = json_object_get(doc, "counters");
    assert_int_equal(json_integer_value(json_object_get(c, "repl_records")), 40);
    assert_int_equal(json_integer_value(json_object_get(c, "repl_batch_lz4_bytes")), 3000);
    rp = json_object_get(doc, "replication");
    assert_true(json_real_value(json_object_get(rp, "metadata_bytes_per_record")) == 55.0);
    assert_true(json_real_value(json_object_get(rp, "lz4_ratio")) == 3.0);
    json_decref(doc);
    double meta = 0, lz4 = 0;
    cw_status_replication_ratios(&s->replication, &meta, &lz4);
    assert_true(meta == 55.0 && lz4 == 3.0);
    cw_status_free(&s);
    assert_null(s);
    cw_status_free(&s);
    cw_status_free(NULL);
}

/* The old member names still compile and alias the new ones, and the members
 * added later come after every earlier one, so a program built against the
 * previous header reads the same offsets. */
static void test_status_struct_compatible(void **state)
{
    (void)state;
    struct cw_status s;
    memset(&s, 0, sizeof(s));
    s.pending_reads = 3;
    assert_true(s.waiting == 3);
    s.counters.reads_waited = 4;
    s.counters.reads_timed_out = 5;
    assert_true(s.counters.requests_waited == 4 && s.counters.requests_timed_out == 5);
    assert_true(offsetof(struct cw_status, waiting) < offsetof(struct cw_status, keys));
    assert_true(offsetof(struct cw_status, counters) + sizeof(s.counters) <=
                offsetof(struct cw_status, outbox_bytes));
    assert_true(offsetof(struct cw_status, outbox_bytes) < offsetof(struct cw_status, keys_loaded));
    assert_true(offsetof(struct cw_status, strong) < offsetof(struct cw_status, replication));
    assert_true(offsetof(struct cw_status_counters, requests_waited) ==
                offsetof(struct cw_status_counters, resent_records) + sizeof(uint64_t));
}

/* 64-bit values survive exactly: up to INT64_MAX as JSON integers, above it
 * as decimal strings. */
static void test_status_json_exact_u64(void **state)
{
    (void)state;
    struct cw_status *s = sample_status();
    s->clock = (uint64_t)INT64_MAX;
    s->applied[0] = (uint64_t)INT64_MAX + 1;
    s->applied[2] = UINT64_MAX;
    s->counters.errors = UINT64_MAX - 1;
    json_t *doc = status_doc(s);
    json_t *clock = json_object_get(doc, "clock");
    assert_true(json_is_integer(clock));
    assert_true(json_integer_value(clock) == INT64_MAX);
    json_t *applied = json_object_get(doc, "applied");
    assert_string_equal(json_string_value(json_object_get(applied, "us-east")),
                        "9223372036854775808");
    assert_string_equal(json_string_value(json_object_get(applied, "ap-south")),
                        "18446744073709551615");
    assert_true(json_is_integer(json_object_get(applied, "eu-west")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "counters"), "errors")),
        "18446744073709551614");
    json_decref(doc);
    cw_status_free(&s);
}

static void test_status_json_rejects_bad_ids(void **state)
{
    (void)state;
    struct cw_status *s = sample_status();
    char *text = (char *)"untouched";
    s->id = 3;
    assert_int_equal(cw_status_to_json(s, &text), CW_EINVAL);
    assert_null(text);
    s->id = 1;
    s->peers[1].id = 3;
    assert_int_equal(cw_status_to_json(s, &text), CW_EINVAL);
    s->peers[1].id = 2;
    s->n_peers = 3;
    assert_int_equal(cw_status_to_json(s, &text), CW_EINVAL);
    s->n_peers = 2;
    s->regions.n = 0;
    assert_int_equal(cw_status_to_json(s, &text), CW_EINVAL);
    assert_null(text);
    cw_status_free(&s);
}

static void test_status_regions(void **state)
{
    (void)state;
    struct cw_regions r;
    assert_int_equal(
        cw_status_regions("{\"region\":\"eu-west\",\"regions\":[\"us-east\",\"eu-west\","
                          "\"ap-south\"],\"peers\":[]}",
                          &r),
        CW_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.name[0], "us-east");
    assert_string_equal(r.name[2], "ap-south");

    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"regions\":\"us-east\"}",
        "{\"regions\":[]}",
        "{\"regions\":[1]}",
        "{\"regions\":[\"\"]}",
        "{\"regions\":[\"a234567890123456789012345678901234\"]}",
        "{\"regions\":[\"a\\u0000b\"]}",
        "{\"regions\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\","
        "\"m\",\"n\",\"o\",\"p\",\"q\"]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cw_status_regions(bad[i], &r) != CW_EDECODE)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(r.n, 0);
    }
}

/* ------------------------------------------------------------- validation */

/* Nothing listens here: a request that got past validation would fail with
 * CW_EUNAVAILABLE or CW_ETIMEOUT, never with a validation error. */
#define DEAD_ENDPOINT "tcp://127.0.0.1:9"

static struct cw_client *dead_client(void)
{
    struct cw_client_options opt;
    cw_client_options_init(&opt);
    assert_int_equal(opt.timeout_ms, CW_CLIENT_TIMEOUT_MS_DEFAULT);
    assert_int_equal(opt.retries, CW_CLIENT_RETRIES_DEFAULT);
    opt.timeout_ms = 200;
    opt.retries = 0;
    struct cw_client *c = NULL;
    assert_int_equal(cw_client_connect(DEAD_ENDPOINT, &opt, &c), CW_OK);
    assert_non_null(c);
    return c;
}

/* The strong section: absent without strong buckets, complete with them. */
static void test_status_json_strong(void **state)
{
    (void)state;
    struct cw_status *s = sample_status();
    json_t *doc = status_doc(s);
    assert_null(json_object_get(doc, "strong"));
    json_decref(doc);

    s->has_strong = true;
    struct cw_status_strong *g = &s->strong;
    strcpy(g->role, "follower");
    g->term = 7;
    g->leader = 2;
    g->vote = -1;
    g->commit = 30;
    g->applied = 29;
    g->log_first = 11;
    g->log_last = 31;
    g->snap_index = 10;
    g->snap_term = 6;
    g->n_peers = 2;
    g->peers[0] = (struct cw_status_raft_peer){.id = 0, .heard = true, .last_heard_ms = 12};
    g->peers[1] = (struct cw_status_raft_peer){.id = 2, .suspected = true};
    g->elections = 1;
    g->disruptions = 2;
    g->puts = 3;
    g->full = 4;
    g->keys = 5;
    g->bytes = UINT64_MAX;
    doc = status_doc(s);
    json_t *st = json_object_get(doc, "strong");
    assert_non_null(st);
    assert_string_equal(json_string_value(json_object_get(st, "role")), "follower");
    assert_int_equal(json_integer_value(json_object_get(st, "term")), 7);
    assert_string_equal(json_string_value(json_object_get(st, "leader")), "ap-south");
    assert_true(json_is_null(json_object_get(st, "vote")));
    assert_int_equal(json_integer_value(json_object_get(st, "commit")), 30);
    assert_int_equal(json_integer_value(json_object_get(st, "applied")), 29);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "log"), "first")), 11);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "log"), "last")), 31);
    json_t *snap = json_object_get(st, "snapshot");
    assert_int_equal(json_integer_value(json_object_get(snap, "index")), 10);
    assert_int_equal(json_integer_value(json_object_get(snap, "term")), 6);
    assert_int_equal(json_integer_value(json_object_get(st, "keys")), 5);
    assert_string_equal(json_string_value(json_object_get(st, "bytes")), "18446744073709551615");
    json_t *peers = json_object_get(st, "peers");
    assert_int_equal(json_array_size(peers), 2);
    json_t *p0 = json_array_get(peers, 0), *p1 = json_array_get(peers, 1);
    assert_string_equal(json_string_value(json_object_get(p0, "region")), "us-east");
    assert_int_equal(json_integer_value(json_object_get(p0, "last_heard_ms")), 12);
    assert_true(json_is_false(json_object_get(p0, "suspected")));
    assert_true(json_is_null(json_object_get(p1, "last_heard_ms")));
    assert_true(json_is_true(json_object_get(p1, "suspected")));
    json_t *c = json_object_get(st, "counters");
    assert_int_equal(json_object_size(c), 17);
    assert_int_equal(json_integer_value(json_object_get(c, "elections")), 1);
    assert_int_equal(json_integer_value(json_object_get(c, "disruptions")), 2);
    assert_int_equal(json_integer_value(json_object_get(c, "puts")), 3);
    assert_int_equal(json_integer_value(json_object_get(c, "full")), 4);
    assert_int_equal(json_integer_value(json_object_get(c, "no_quorum")), 0);
    json_decref(doc);

    /* The list behind the JSON and the CLI's text: the same 17, sized by a call
     * with max 0, cut at max, and none past CW_STATUS_STRONG_COUNTERS_MAX. */
    struct cw_status_counter list[CW_STATUS_STRONG_COUNTERS_MAX];
    size_t n_list = cw_status_strong_counter_list(s, NULL, 0);
    assert_int_equal(n_list, 17);
    assert_true(n_list <= CW_STATUS_STRONG_COUNTERS_MAX);
    assert_int_equal(cw_status_strong_counter_list(s, list, 2), 17);
    assert_string_equal(list[0].name, "elections");
    assert_int_equal(list[0].value, 1);
    assert_string_equal(list[1].name, "prevotes");
    assert_int_equal(cw_status_strong_counter_list(s, list, CW_STATUS_STRONG_COUNTERS_MAX), 17);
    assert_string_equal(list[16].name, "full");
    assert_int_equal(list[16].value, 4);

    /* Ids outside the regions are refused, as elsewhere in a status. */
    char *text = NULL;
    g->leader = 3;
    assert_int_equal(cw_status_to_json(s, &text), CW_EINVAL);
    g->leader = -2;
    assert_int_equal(cw_status_to_json(s, &text), CW_EINVAL);
    g->leader = -1;
    g->vote = 3;
    assert_int_equal(cw_status_to_json(s, &text), CW_EINVAL);
    g->vote = 1;
    g->peers[1].id = 3;
    assert_int_equal(cw_status_to_json(s, &text), CW_EINVAL);
    g->peers[1].id = 2;
    g->n_peers = 3;
    assert_int_equal(cw_status_to_json(s, &text), CW_EINVAL);
    assert_null(text);
    cw_status_free(&s);
}

/* The members added for strong buckets come after every earlier one: structs
 * the library allocates grow at their end only, and cw_put_result keeps its
 * first two members where they were (cw_put and cw_del write only those). */
static void test_strong_struct_layout(void **state)
{
    (void)state;
    assert_true(offsetof(struct cw_status, has_strong) >
                offsetof(struct cw_status, store_read_errors));
    assert_true(offsetof(struct cw_status, strong) > offsetof(struct cw_status, has_strong));
    assert_true(offsetof(struct cw_get_result, version) > offsetof(struct cw_get_result, context));
    assert_true(offsetof(struct cw_put_result, origin) == 0);
    assert_true(offsetof(struct cw_put_result, version) > offsetof(struct cw_put_result, ts));
}

/* Conditions are checked before anything is sent; cw_put and cw_del never
 * touch the version member (a caller built against the old header has none). */
static void test_client_conditions(void **state)
{
    (void)state;
    struct cw_client *c = dead_client();
    struct cw_put_result pr;
    pr.version = 99;
    assert_int_equal(cw_put_if(c, NULL, "locks", "k", 1, "v", 1, CW_PUT_IF_VERSION, 0, &pr),
                     CW_EINVAL);
    assert_non_null(strstr(cw_client_error(c), "CW_PUT_IF_ABSENT"));
    assert_int_equal(pr.version, 0);
    assert_int_equal(cw_put_if(c, NULL, "locks", "k", 1, "v", 1, CW_PUT_IF_ABSENT, 3, &pr),
                     CW_EINVAL);
    assert_int_equal(cw_put_if(c, NULL, "locks", "k", 1, "v", 1, CW_PUT_ALWAYS, 3, &pr), CW_EINVAL);
    assert_int_equal(cw_put_if(c, NULL, "locks", "k", 1, "v", 1, (enum cw_put_cond_kind)7, 0, &pr),
                     CW_EINVAL);
    assert_non_null(strstr(cw_client_error(c), "condition"));
    assert_int_equal(cw_del_if(c, NULL, "locks", "k", 1, CW_PUT_IF_VERSION, 0, &pr), CW_EINVAL);
    /* Bucket and key first, as for cw_put. */
    assert_int_equal(cw_put_if(c, NULL, "Locks", "k", 1, "v", 1, CW_PUT_IF_ABSENT, 0, &pr),
                     CW_EBUCKET);
    assert_int_equal(cw_del_if(c, NULL, "locks", "", 0, CW_PUT_IF_ABSENT, 0, NULL), CW_EKEY);

    /* Valid conditions go to the network (and fail there). */
    int rc = cw_put_if(c, NULL, "locks", "k", 1, "v", 1, CW_PUT_IF_VERSION, 5, &pr);
    assert_true(rc == CW_EUNAVAILABLE || rc == CW_ETIMEOUT);
    pr.version = 99;
    rc = cw_put(c, NULL, "locks", "k", 1, "v", 1, NULL, &pr);
    assert_true(rc == CW_EUNAVAILABLE || rc == CW_ETIMEOUT);
    assert_int_equal(pr.version, 99);
    cw_client_close(&c);
}

static void test_client_validation(void **state)
{
    (void)state;
    struct cw_client *c = dead_client();
    struct cw_sess *s = NULL;
    assert_int_equal(cw_sess_new(0, &s), CW_OK);
    char before[CW_CONTEXT_TOKEN_MAX], after[CW_CONTEXT_TOKEN_MAX];
    assert_int_equal(cw_sess_import(s, "cw1-0105"), CW_OK);
    assert_int_equal(cw_sess_export(s, before, sizeof(before)), CW_OK);

    char bucket65[66];
    memset(bucket65, 'a', 65);
    bucket65[65] = '\0';
    static const char *const bad_buckets[] = {"", "Cart", "cart!", "ca/rt", "ca rt", "\xc3\xa9"};
    struct cw_put_result pr;
    struct cw_get_result *g = NULL;
    for (size_t i = 0; i < sizeof(bad_buckets) / sizeof(bad_buckets[0]); i++) {
        assert_int_equal(cw_put(c, s, bad_buckets[i], "k", 1, "v", 1, NULL, &pr), CW_EBUCKET);
        assert_non_null(strstr(cw_client_error(c), "bucket"));
        assert_int_equal(cw_get(c, s, bad_buckets[i], "k", 1, &g), CW_EBUCKET);
        assert_null(g);
        assert_int_equal(cw_del(c, s, bad_buckets[i], "k", 1, NULL, &pr), CW_EBUCKET);
    }
    assert_int_equal(cw_put(c, s, bucket65, "k", 1, "v", 1, NULL, &pr), CW_EBUCKET);
    assert_int_equal(cw_put(c, s, NULL, "k", 1, "v", 1, NULL, &pr), CW_EBUCKET);

    char key[1025];
    memset(key, 'k', sizeof(key));
    assert_int_equal(cw_put(c, s, "cart", key, 0, "v", 1, NULL, &pr), CW_EKEY);
    assert_non_null(strstr(cw_client_error(c), "key"));
    assert_int_equal(cw_put(c, s, "cart", key, 1025, "v", 1, NULL, &pr), CW_EKEY);
    assert_non_null(strstr(cw_client_error(c), "1025"));
    assert_int_equal(cw_get(c, s, "cart", key, 0, &g), CW_EKEY);
    assert_int_equal(cw_get(c, s, "cart", key, 1025, &g), CW_EKEY);
    assert_int_equal(cw_del(c, s, "cart", key, 1025, NULL, &pr), CW_EKEY);
    assert_int_equal(cw_del(c, NULL, "cart", "", 0, NULL, NULL), CW_EKEY);

    /* A malformed explicit context is refused before sending, too. */
    assert_int_equal(cw_put(c, s, "cart", "k", 1, "v", 1, "cw1-xyz", &pr), CW_ECONTEXT);
    assert_int_equal(cw_del(c, s, "cart", "k", 1, "not-a-token", &pr), CW_ECONTEXT);

    /* Link arguments. */
    assert_int_equal(cw_link(c, "", "eu-west", CW_ADMIN_LINK_CUT, 0), CW_EREGION);
    assert_int_equal(
        cw_link(c, "us-east", "a234567890123456789012345678901234", CW_ADMIN_LINK_CUT, 0),
        CW_EREGION);
    assert_int_equal(cw_link(c, "us-east", "eu-west", (enum cw_admin_link)9, 0), CW_EINVAL);

    /* Failed requests leave the session as it was. */
    assert_int_equal(cw_sess_export(s, after, sizeof(after)), CW_OK);
    assert_string_equal(before, after);

    /* For contrast: valid input does go to the network, and fails there. */
    int rc = cw_get(c, s, "cart", key, 1024, &g);
    assert_true(rc == CW_EUNAVAILABLE || rc == CW_ETIMEOUT);
    assert_null(g);
    assert_non_null(strstr(cw_client_error(c), DEAD_ENDPOINT));
    rc = cw_put(c, s, "cart", "k", 1, "v", 1, NULL, &pr);
    assert_true(rc == CW_EUNAVAILABLE || rc == CW_ETIMEOUT);
    assert_int_equal(cw_sess_export(s, after, sizeof(after)), CW_OK);
    assert_string_equal(before, after);

    cw_sess_free(&s);
    cw_client_close(&c);
    assert_null(c);
    cw_client_close(&c);
    cw_get_result_free(&g);
}

static void test_client_options(void **state)
{
    (void)state;
    struct cw_client_options opt;
    struct cw_client *c = NULL;
    cw_client_options_init(&opt);
    opt.timeout_ms = 0;
    assert_int_equal(cw_client_connect(DEAD_ENDPOINT, &opt, &c), CW_EINVAL);
    assert_null(c);
    cw_client_options_init(&opt);
    opt.retries = CW_CLIENT_RETRIES_MAX + 1;
    assert_int_equal(cw_client_connect(DEAD_ENDPOINT, &opt, &c), CW_EINVAL);
    assert_int_equal(cw_client_connect("", NULL, &c), CW_EINVAL);
    assert_int_equal(cw_client_connect(NULL, NULL, &c), CW_EINVAL);
    assert_int_equal(cw_client_connect("bogus://x", NULL, &c), CW_EINVAL);
    assert_null(c);
    assert_int_equal(cw_client_connect(DEAD_ENDPOINT, NULL, &c), CW_OK);
    assert_string_equal(cw_client_error(c), "");
    cw_client_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session_round_trip, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_session_repeated_key_is_most_recent, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_session_bound_keeps_most_recent, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_session_save_creates_and_is_atomic, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_session_malformed_files, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_session_crlf_and_messages, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_session_tokens),
        cmocka_unit_test(test_stamps),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_status_struct_compatible),
        cmocka_unit_test(test_status_json_exact_u64),
        cmocka_unit_test(test_status_json_rejects_bad_ids),
        cmocka_unit_test(test_status_regions),
        cmocka_unit_test(test_client_validation),
        cmocka_unit_test(test_client_options),
        cmocka_unit_test(test_status_json_strong),
        cmocka_unit_test(test_strong_struct_layout),
        cmocka_unit_test(test_client_conditions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
