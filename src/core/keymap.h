/*
 * keymap.h - the replica's in-memory table from full key ("bucket/key" bytes) to
 * its version set. A chained hash table (FNV-1a) that doubles when loaded.
 *
 * Ownership: the map owns entries, their key bytes and their states. Pointers
 * returned by lookups stay valid until the entry is removed or the map is freed
 * (growing the table moves buckets, not entries).
 */
#ifndef CW_CORE_KEYMAP_H
#define CW_CORE_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/version.h"

struct cw_keyentry {
    struct cw_keyentry *next;
    uint64_t hash;
    uint32_t key_len;
    uint32_t flags; /* owner-defined bits (the replica marks keys holding tombstones) */
    struct cw_keystate state;
    uint8_t key[]; /* key_len bytes, not NUL-terminated */
};

struct cw_keymap {
    struct cw_keyentry **slots;
    size_t n_slots; /* a power of two, or 0 before the first insert */
    size_t count;
};

void cw_keymap_init(struct cw_keymap *m);
void cw_keymap_free(struct cw_keymap *m);
struct cw_keyentry *cw_keymap_find(const struct cw_keymap *m, const uint8_t *key, uint32_t len);
/* Finds or inserts an empty entry; NULL when out of memory. */
struct cw_keyentry *cw_keymap_upsert(struct cw_keymap *m, const uint8_t *key, uint32_t len);
void cw_keymap_remove(struct cw_keymap *m, struct cw_keyentry *e);

/* Iteration: pass *slot = 0 and *e = NULL first; returns NULL at the end. Removing
 * the returned entry before the next call is not allowed. */
struct cw_keyentry *cw_keymap_next(const struct cw_keymap *m, size_t *slot, struct cw_keyentry *e);

#endif
