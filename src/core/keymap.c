/* keymap.c - chained hash table from key bytes to version sets. */
#include "core/keymap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const uint8_t *p, uint32_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

void cw_keymap_init(struct cw_keymap *m)
{
    m->slots = NULL;
    m->n_slots = 0;
    m->count = 0;
}

void cw_keymap_free(struct cw_keymap *m)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        struct cw_keyentry *e = m->slots[i];
        while (e) {
            struct cw_keyentry *next = e->next;
            cw_keystate_free(&e->state);
            free(e);
            e = next;
        }
    }
    free(m->slots);
    cw_keymap_init(m);
}

struct cw_keyentry *cw_keymap_find(const struct cw_keymap *m, const uint8_t *key, uint32_t len)
{
    if (m->n_slots == 0)
        return NULL;
    uint64_t h = fnv1a(key, len);
    for (struct cw_keyentry *e = m->slots[h & (m->n_slots - 1)]; e; e = e->next)
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static int grow(struct cw_keymap *m)
{
    size_t n = m->n_slots ? m->n_slots * 2 : 64;
    struct cw_keyentry **slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < m->n_slots; i++) {
        struct cw_keyentry *e = m->slots[i];
        while (e) {
            struct cw_keyentry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = slots[j];
            slots[j] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->n_slots = n;
    return 0;
}

struct cw_keyentry *cw_keymap_upsert(struct cw_keymap *m, const uint8_t *key, uint32_t len)
{
    struct cw_keyentry *e = cw_keymap_find(m, key, len);
    if (e)
        return e;
    if ((m->count + 1) * 4 > m->n_slots * 3 && grow(m) != 0)
        return NULL;
    e = malloc(sizeof(*e) + len);
    if (e == NULL)
        return NULL;
    e->hash = fnv1a(key, len);
    e->key_len = len;
    e->flags = 0;
    memcpy(e->key, key, len);
    cw_keystate_init(&e->state);
    size_t j = e->hash & (m->n_slots - 1);
    e->next = m->slots[j];
    m->slots[j] = e;
    m->count++;
    return e;
}

void cw_keymap_remove(struct cw_keymap *m, struct cw_keyentry *e)
{
    struct cw_keyentry **pp = &m->slots[e->hash & (m->n_slots - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    cw_keystate_free(&e->state);
    free(e);
    m->count--;
}

struct cw_keyentry *cw_keymap_next(const struct cw_keymap *m, size_t *slot, struct cw_keyentry *e)
{
    if (e && e->next)
        return e->next;
    size_t i = e ? *slot + 1 : *slot;
    for (; i < m->n_slots; i++) {
        if (m->slots[i]) {
            *slot = i;
            return m->slots[i];
        }
    }
    *slot = m->n_slots;
    return NULL;
}
