/*
 * test_keymap.c - the replica's key table: insert, find, remove and iterate many
 * keys across growth; binary keys with NUL bytes; entry pointers stay valid while
 * the table grows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <causeway/error.h>

#include "core/keymap.h"

#define N_KEYS 10000

/* Key i: "k" + decimal i, followed by a NUL and the low byte of i, so every key
 * has an embedded NUL and keys differ after it too. */
static uint32_t make_key(uint8_t *buf, unsigned i)
{
    int n = snprintf((char *)buf, 32, "k%u", i);
    buf[n] = '\0';
    buf[n + 1] = (uint8_t)(i * 7);
    return (uint32_t)n + 2;
}

/* Reads i back from a key made by make_key. */
static unsigned key_index(const struct cw_keyentry *e)
{
    assert_true(e->key_len >= 3);
    assert_int_equal(e->key[0], 'k');
    char tmp[32];
    memcpy(tmp, e->key + 1, e->key_len - 3);
    tmp[e->key_len - 3] = '\0';
    return (unsigned)strtoul(tmp, NULL, 10);
}

static void put_value(struct cw_keyentry *e, unsigned i)
{
    struct cw_version v;
    memset(&v, 0, sizeof(v));
    v.dot.origin = 0;
    v.dot.ts = i + 1;
    v.value_len = sizeof(i);
    v.value = (uint8_t *)&i;
    bool changed;
    assert_int_equal(cw_keystate_apply(&e->state, CW_CONFLICT_LWW, &v, 0, &changed), CW_OK);
    assert_true(changed);
}

static void test_empty_map(void **state)
{
    (void)state;
    struct cw_keymap m;
    cw_keymap_init(&m);
    assert_int_equal(m.count, 0);
    assert_null(cw_keymap_find(&m, (const uint8_t *)"a", 1));
    size_t slot = 0;
    assert_null(cw_keymap_next(&m, &slot, NULL));
    cw_keymap_free(&m);
    cw_keymap_free(&m); /* freeing twice is harmless: free resets the map */
}

static void test_insert_find_many(void **state)
{
    (void)state;
    struct cw_keymap m;
    cw_keymap_init(&m);
    uint8_t key[32];
    struct cw_keyentry *first = NULL;
    for (unsigned i = 0; i < N_KEYS; i++) {
        uint32_t len = make_key(key, i);
        assert_null(cw_keymap_find(&m, key, len));
        struct cw_keyentry *e = cw_keymap_upsert(&m, key, len);
        assert_non_null(e);
        assert_int_equal(e->key_len, len);
        assert_memory_equal(e->key, key, len);
        assert_int_equal(e->state.n, 0); /* a new entry is empty */
        assert_int_equal(e->flags, 0);
        put_value(e, i);
        if (i == 0)
            first = e;
        assert_int_equal(m.count, i + 1);
    }
    /* The table grew and stays below its load bound. */
    assert_true(m.n_slots >= N_KEYS);
    assert_int_equal(m.n_slots & (m.n_slots - 1), 0);
    /* Growth moved buckets, not entries. */
    uint32_t len0 = make_key(key, 0);
    assert_ptr_equal(cw_keymap_find(&m, key, len0), first);

    for (unsigned i = 0; i < N_KEYS; i++) {
        uint32_t len = make_key(key, i);
        struct cw_keyentry *e = cw_keymap_find(&m, key, len);
        assert_non_null(e);
        assert_int_equal(e->state.n, 1);
        unsigned got;
        memcpy(&got, e->state.v[0].value, sizeof(got));
        assert_int_equal(got, i);
        /* Upsert of an existing key returns the same entry, count unchanged. */
        assert_ptr_equal(cw_keymap_upsert(&m, key, len), e);
    }
    assert_int_equal(m.count, N_KEYS);
    /* A prefix of a key (the part before the NUL) is a different key. */
    assert_null(cw_keymap_find(&m, (const uint8_t *)"k1", 2));
    assert_null(cw_keymap_find(&m, (const uint8_t *)"k1\0", 3));
    cw_keymap_free(&m);
    assert_int_equal(m.count, 0);
}

static void test_remove(void **state)
{
    (void)state;
    struct cw_keymap m;
    cw_keymap_init(&m);
    uint8_t key[32];
    for (unsigned i = 0; i < N_KEYS; i++) {
        uint32_t len = make_key(key, i);
        put_value(cw_keymap_upsert(&m, key, len), i);
    }
    /* Remove every third key (their states are freed with them: ASan checks). */
    size_t removed = 0;
    for (unsigned i = 0; i < N_KEYS; i += 3) {
        uint32_t len = make_key(key, i);
        struct cw_keyentry *e = cw_keymap_find(&m, key, len);
        assert_non_null(e);
        cw_keymap_remove(&m, e);
        removed++;
        assert_null(cw_keymap_find(&m, key, len));
    }
    assert_int_equal(m.count, N_KEYS - removed);
    for (unsigned i = 0; i < N_KEYS; i++) {
        uint32_t len = make_key(key, i);
        struct cw_keyentry *e = cw_keymap_find(&m, key, len);
        if (i % 3 == 0) {
            assert_null(e);
        } else {
            assert_non_null(e);
            unsigned got;
            memcpy(&got, e->state.v[0].value, sizeof(got));
            assert_int_equal(got, i);
        }
    }
    /* A removed key can be inserted again, empty. */
    uint32_t len = make_key(key, 3);
    struct cw_keyentry *e = cw_keymap_upsert(&m, key, len);
    assert_non_null(e);
    assert_int_equal(e->state.n, 0);
    assert_int_equal(m.count, N_KEYS - removed + 1);
    /* Remove everything. */
    for (unsigned i = 0; i < N_KEYS; i++) {
        len = make_key(key, i);
        e = cw_keymap_find(&m, key, len);
        if (e)
            cw_keymap_remove(&m, e);
    }
    assert_int_equal(m.count, 0);
    size_t slot = 0;
    assert_null(cw_keymap_next(&m, &slot, NULL));
    cw_keymap_free(&m);
}

static void test_iteration_visits_each_once(void **state)
{
    (void)state;
    struct cw_keymap m;
    cw_keymap_init(&m);
    uint8_t key[32];
    for (unsigned i = 0; i < N_KEYS; i++) {
        uint32_t len = make_key(key, i);
        put_value(cw_keymap_upsert(&m, key, len), i);
    }
    for (unsigned i = 1; i < N_KEYS; i += 2) {
        uint32_t len = make_key(key, i);
        cw_keymap_remove(&m, cw_keymap_find(&m, key, len));
    }
    unsigned char *seen = calloc(N_KEYS, 1);
    assert_non_null(seen);
    size_t slot = 0, visits = 0;
    for (struct cw_keyentry *e = cw_keymap_next(&m, &slot, NULL); e;
         e = cw_keymap_next(&m, &slot, e)) {
        unsigned i = key_index(e);
        assert_true(i < N_KEYS);
        assert_int_equal(i % 2, 0); /* removed keys are not visited */
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        visits++;
    }
    assert_int_equal(visits, m.count);
    assert_int_equal(visits, N_KEYS / 2);
    for (unsigned i = 0; i < N_KEYS; i += 2)
        assert_int_equal(seen[i], 1);
    /* After the end, next keeps returning NULL. */
    assert_null(cw_keymap_next(&m, &slot, NULL));
    free(seen);
    cw_keymap_free(&m);
}

static void test_iteration_small_map(void **state)
{
    (void)state;
    /* Few keys in many slots, and chains: iteration must follow both. */
    struct cw_keymap m;
    cw_keymap_init(&m);
    const char *keys[] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++)
        assert_non_null(cw_keymap_upsert(&m, (const uint8_t *)keys[i], 1));
    size_t slot = 0, n = 0;
    unsigned mask = 0;
    for (struct cw_keyentry *e = cw_keymap_next(&m, &slot, NULL); e;
         e = cw_keymap_next(&m, &slot, e)) {
        n++;
        mask |= 1u << (e->key[0] - 'a');
    }
    assert_int_equal(n, 3);
    assert_int_equal(mask, 7);
    cw_keymap_free(&m);
}

static void test_binary_keys(void **state)
{
    (void)state;
    struct cw_keymap m;
    cw_keymap_init(&m);
    const uint8_t k1[] = {'a', 0, 'b'};
    const uint8_t k2[] = {'a', 0, 'c'};
    const uint8_t k3[] = {'a'};
    const uint8_t k4[] = {'a', 0};
    const uint8_t k5[] = {0, 0, 0, 0};
    const uint8_t k6[] = {0xff, 0x00, 0xfe};
    const uint8_t *keys[] = {k1, k2, k3, k4, k5, k6};
    const uint32_t lens[] = {3, 3, 1, 2, 4, 3};
    struct cw_keyentry *entries[6];
    for (unsigned i = 0; i < 6; i++) {
        entries[i] = cw_keymap_upsert(&m, keys[i], lens[i]);
        assert_non_null(entries[i]);
        put_value(entries[i], i);
    }
    assert_int_equal(m.count, 6); /* all distinct */
    for (unsigned i = 0; i < 6; i++) {
        struct cw_keyentry *e = cw_keymap_find(&m, keys[i], lens[i]);
        assert_ptr_equal(e, entries[i]);
        unsigned got;
        memcpy(&got, e->state.v[0].value, sizeof(got));
        assert_int_equal(got, i);
    }
    /* Three NULs is not four NULs. */
    assert_null(cw_keymap_find(&m, k5, 3));
    /* The empty key is a key like any other. */
    struct cw_keyentry *empty = cw_keymap_upsert(&m, k5, 0);
    assert_non_null(empty);
    assert_int_equal(m.count, 7);
    assert_ptr_equal(cw_keymap_find(&m, k1, 0), empty);
    cw_keymap_remove(&m, cw_keymap_find(&m, k4, 2));
    assert_null(cw_keymap_find(&m, k4, 2));
    assert_non_null(cw_keymap_find(&m, k3, 1));
    assert_non_null(cw_keymap_find(&m, k1, 3));
    cw_keymap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_map),
        cmocka_unit_test(test_insert_find_many),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_iteration_visits_each_once),
        cmocka_unit_test(test_iteration_small_map),
        cmocka_unit_test(test_binary_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
