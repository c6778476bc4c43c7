/*
 * lincheck.c - the linearizability checker for strong buckets: the register
 * model and the Wing-Gong-Lowe search described in lincheck.h.
 *
 * How the search works, per key (after Lowe, "Testing for linearizability",
 * 2017, and the shape Porcupine gives it):
 *  - every operation has a call entry and, when its outcome is definite, a
 *    return entry; the entries form a doubly linked list sorted by time, calls
 *    before returns at equal times (touching intervals count as concurrent,
 *    which can only hide a violation, never invent one);
 *  - walking the list from the front, a call entry whose operation the model
 *    accepts in the current state is linearized: pushed on a stack with the
 *    state before it, and its two entries are lifted out of the list; the walk
 *    restarts at the front;
 *  - reaching a return entry means that operation had to be placed by now and
 *    was not: pop the last linearized operation, put its entries back and try
 *    the entry after its call. An empty stack there proves the key is not
 *    linearizable;
 *  - success as soon as every definite operation is linearized: unknown ones
 *    have no return entry, so nothing ever forces them;
 *  - the memo holds every (linearized set, state) pair ever pushed. Reaching one
 *    again leads nowhere new (the rest of the search depends only on that pair),
 *    so it is skipped. Sets are bitsets with an incremental Zobrist hash.
 * All of it is iterative: the stack is an array bounded by the key's operations.
 *
 * Ownership: the history owns its events and one arena of key bytes (events
 * store offsets, so the arena may move when it grows). A check's working memory
 * lives in struct search and struct memo, released before cw_lin_check returns.
 */
#include "sim/lincheck.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "causeway/error.h"

#define NIL UINT32_MAX

/* Start small: unit tests add a handful of events, a simulator seed thousands. */
#define LIN_INITIAL_CAP 64
#define LIN_MEMO_INITIAL_SLOTS 1024

enum lin_cond { COND_NONE, COND_VERSION, COND_ABSENT };

struct lin_ev {
    struct cw_lin_event e; /* e.key is NULL: the bytes are at key_off in the arena */
    size_t key_off;
};

struct cw_lin_history {
    struct lin_ev *ev;
    size_t n, cap;
    uint8_t *keys;
    size_t keys_len, keys_cap;
};

/* The register's state. When known is false the version is only bounded below:
 * the true one is >= version (a timed-out write's index, see lincheck.h). */
struct reg {
    uint64_t value_id; /* 0 when absent */
    uint64_t version;
    bool exists;
    bool known;
};

/* One operation as the search sees it, decoded from its event once. */
struct lop {
    bool is_get;
    bool del;
    bool definite; /* must be placed: a definite outcome, or a timed-out put read */
    enum lin_cond cond;
    enum cw_lin_outcome outcome;
    uint64_t value_id, expected, out_value_id, out_version;
    uint64_t ret_us; /* UINT64_MAX when nothing forces a place */
    size_t hist;
};

/* The earliest return of a definite GET that read a value. */
struct value_ret {
    uint64_t value_id, ret_us;
};

static int value_ret_cmp(const void *a, const void *b)
{
    const struct value_ret *x = a, *y = b;
    if (x->value_id != y->value_id)
        return x->value_id < y->value_id ? -1 : 1;
    return x->ret_us < y->ret_us ? -1 : (x->ret_us > y->ret_us ? 1 : 0);
}

struct memo_slot {
    uint64_t hash;
    size_t off; /* word offset of the bitset in the arena; SIZE_MAX when empty */
    struct reg st;
};

struct memo {
    struct memo_slot *slots;
    size_t n_slots, n_used;
    uint64_t *arena;
    size_t arena_len, arena_cap; /* in words */
    size_t words;                /* bitset words per entry */
};

struct frame {
    uint32_t entry; /* the call entry of the linearized operation */
    struct reg before;
};

struct search {
    const struct cw_lin_history *h;
    struct lop *ops;
    size_t n_ops, n_definite;
    /* The entry list: entries 0..n_entries-1, sentinel head at n_entries. */
    uint32_t n_entries, head;
    uint32_t *next, *prev, *match, *op_of;
    bool *is_call;
    uint64_t *zob;  /* per operation */
    uint64_t *bits; /* the linearized set */
    struct frame *stack;
    size_t depth;
    struct memo memo;
    /* The budget, shared by all keys. */
    uint64_t used, limit;
    /* The deepest point reached before a forced backtrack, for the report. */
    size_t best_depth;
    uint32_t stuck_op;
    struct reg best_state;
};

/* ---- the history ---- */

struct cw_lin_history *cw_lin_history_create(void)
{
    return calloc(1, sizeof(struct cw_lin_history));
}

void cw_lin_history_destroy(struct cw_lin_history **h)
{
    if (h == NULL || *h == NULL)
        return;
    free((*h)->ev);
    free((*h)->keys);
    free(*h);
    *h = NULL;
}

size_t cw_lin_history_len(const struct cw_lin_history *h)
{
    return h->n;
}

static bool is_write(enum cw_lin_op op)
{
    return op != CW_LIN_GET;
}

static bool is_conditional(enum cw_lin_op op)
{
    return op == CW_LIN_PUT_IF_VERSION || op == CW_LIN_PUT_IF_ABSENT || op == CW_LIN_DEL_IF_VERSION;
}

static bool is_put(enum cw_lin_op op)
{
    return op == CW_LIN_PUT || op == CW_LIN_PUT_IF_VERSION || op == CW_LIN_PUT_IF_ABSENT;
}

/* The rules of lincheck.h's "malformed event", in one place. */
static bool event_valid(const struct cw_lin_event *e)
{
    if ((unsigned)e->op > (unsigned)CW_LIN_GET || (unsigned)e->outcome > (unsigned)CW_LIN_FAILED)
        return false;
    if (e->key_len > CW_LIN_KEY_MAX || (e->key_len > 0 && e->key == NULL))
        return false;
    if (is_put(e->op) && e->value_id == 0)
        return false;
    bool definite = e->outcome != CW_LIN_UNKNOWN && e->outcome != CW_LIN_FAILED;
    if (definite && e->ret_us < e->call_us)
        return false;
    switch (e->outcome) {
    case CW_LIN_OK:
        if (e->out_version == 0)
            return false;
        if (e->op == CW_LIN_GET && e->out_value_id == 0)
            return false;
        return true;
    case CW_LIN_CONFLICT:
        return is_conditional(e->op);
    case CW_LIN_NOTFOUND:
        return e->op == CW_LIN_GET;
    case CW_LIN_UNKNOWN:
    case CW_LIN_FAILED:
        return true;
    }
    return false;
}

int cw_lin_history_add(struct cw_lin_history *h, const struct cw_lin_event *ev)
{
    if (h == NULL || ev == NULL || !event_valid(ev))
        return CW_EINVAL;
    if (h->n >= CW_LIN_EVENTS_MAX)
        return CW_EFULL;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : LIN_INITIAL_CAP;
        /* Keep the old array reachable: on failure the history stays intact. */
        struct lin_ev *grown = realloc(h->ev, cap * sizeof(*grown));
        if (grown == NULL)
            return CW_ENOMEM;
        h->ev = grown;
        h->cap = cap;
    }
    if (h->keys_cap - h->keys_len < ev->key_len) {
        size_t cap = h->keys_cap ? h->keys_cap : 1024;
        while (cap - h->keys_len < ev->key_len)
            cap *= 2;
        uint8_t *grown = realloc(h->keys, cap);
        if (grown == NULL)
            return CW_ENOMEM;
        h->keys = grown;
        h->keys_cap = cap;
    }
    struct lin_ev *le = &h->ev[h->n];
    le->e = *ev;
    le->e.key = NULL;
    le->key_off = h->keys_len;
    if (ev->key_len > 0)
        memcpy(h->keys + h->keys_len, ev->key, ev->key_len);
    h->keys_len += ev->key_len;
    h->n++;
    return CW_OK;
}

static const uint8_t *key_of(const struct cw_lin_history *h, size_t i)
{
    return h->keys + h->ev[i].key_off;
}

/* Dropped before the search: definite non-applications and timed-out reads. */
static bool event_used(const struct cw_lin_event *e)
{
    if (e->outcome == CW_LIN_FAILED)
        return false;
    if (e->op == CW_LIN_GET && e->outcome == CW_LIN_UNKNOWN)
        return false;
    return true;
}

/* ---- the register model ---- */

/* The state's version is v, or (unknown) can be bound to v: binds it. */
static bool observe(struct reg *s, uint64_t v)
{
    if (s->known)
        return s->version == v;
    if (v < s->version)
        return false;
    s->version = v;
    s->known = true;
    return true;
}

/* Applies a write that takes effect with version v (known) or an unknown one. */
static bool apply_write(const struct lop *op, struct reg *s, bool known, uint64_t v)
{
    /* Both a known version and the lower bound of an unknown one compare the
     * same way: the new index must exceed every index the key had. */
    if (known && v <= s->version)
        return false;
    uint64_t floor = s->version;
    s->exists = !op->del;
    s->value_id = op->del ? 0 : op->value_id;
    s->known = known;
    s->version = known ? v : floor + 1;
    return true;
}

/* Does the model accept op in state *in? Fills *out with the state after it. */
static bool model_step(const struct lop *op, const struct reg *in, struct reg *out)
{
    struct reg s = *in;
    if (op->is_get) {
        if (op->outcome == CW_LIN_NOTFOUND) {
            if (s.exists)
                return false;
        } else {
            if (!s.exists || s.value_id != op->out_value_id || !observe(&s, op->out_version))
                return false;
        }
        *out = s;
        return true;
    }

    if (op->outcome == CW_LIN_CONFLICT) {
        /* The condition failed and the reply names the current version. */
        if (op->cond == COND_ABSENT) {
            if (!s.exists || !observe(&s, op->out_version))
                return false;
        } else if (!s.exists) {
            if (op->out_version != 0)
                return false;
        } else {
            if (op->out_version == op->expected || !observe(&s, op->out_version))
                return false;
        }
        *out = s;
        return true;
    }

    /* OK or UNKNOWN: placed only where the condition holds (an unknown write
     * placed where it fails would change nothing, the same as leaving it out). */
    if (op->cond == COND_ABSENT && s.exists)
        return false;
    if (op->cond == COND_VERSION && (!s.exists || !observe(&s, op->expected)))
        return false;
    if (!apply_write(op, &s, op->outcome == CW_LIN_OK, op->out_version))
        return false;
    *out = s;
    return true;
}

/* ---- the memo ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t state_hash(const struct reg *s)
{
    uint64_t h = mix64(s->value_id ^ 0x9e3779b97f4a7c15ull);
    h = mix64(h ^ s->version);
    return mix64(h ^ ((uint64_t)s->exists << 1 | (uint64_t)s->known));
}

static bool reg_equal(const struct reg *a, const struct reg *b)
{
    return a->value_id == b->value_id && a->version == b->version && a->exists == b->exists &&
           a->known == b->known;
}

static void memo_free(struct memo *m)
{
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof(*m));
}

static int memo_init(struct memo *m, size_t words)
{
    memset(m, 0, sizeof(*m));
    m->words = words;
    m->n_slots = LIN_MEMO_INITIAL_SLOTS;
    m->slots = malloc(m->n_slots * sizeof(*m->slots));
    if (m->slots == NULL)
        return CW_ENOMEM;
    for (size_t i = 0; i < m->n_slots; i++)
        m->slots[i].off = SIZE_MAX;
    return CW_OK;
}

static int memo_grow(struct memo *m)
{
    size_t n = m->n_slots * 2;
    struct memo_slot *slots = malloc(n * sizeof(*slots));
    if (slots == NULL)
        return CW_ENOMEM;
    for (size_t i = 0; i < n; i++)
        slots[i].off = SIZE_MAX;
    for (size_t i = 0; i < m->n_slots; i++) {
        if (m->slots[i].off == SIZE_MAX)
            continue;
        size_t j = m->slots[i].hash & (n - 1);
        while (slots[j].off != SIZE_MAX)
            j = (j + 1) & (n - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->n_slots = n;
    return CW_OK;
}

/*
 * Inserts (bits, st) unless present. Sets *added; returns CW_OK or CW_ENOMEM.
 * The caller charges the budget for an added entry.
 */
static int memo_insert(struct memo *m, const uint64_t *bits, uint64_t bits_hash,
                       const struct reg *st, bool *added)
{
    uint64_t hash = bits_hash ^ state_hash(st);
    size_t mask = m->n_slots - 1;
    size_t j = hash & mask;
    for (; m->slots[j].off != SIZE_MAX; j = (j + 1) & mask) {
        const struct memo_slot *sl = &m->slots[j];
        if (sl->hash == hash && reg_equal(&sl->st, st) &&
            memcmp(m->arena + sl->off, bits, m->words * sizeof(*bits)) == 0) {
            *added = false;
            return CW_OK;
        }
    }
    if (m->arena_cap - m->arena_len < m->words) {
        size_t cap = m->arena_cap ? m->arena_cap * 2 : m->words * 256;
        uint64_t *grown = realloc(m->arena, cap * sizeof(*grown));
        if (grown == NULL)
            return CW_ENOMEM;
        m->arena = grown;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, bits, m->words * sizeof(*bits));
    m->slots[j].hash = hash;
    m->slots[j].off = m->arena_len;
    m->slots[j].st = *st;
    m->arena_len += m->words;
    m->n_used++;
    *added = true;
    /* Half full at most, so probes stay short and an empty slot always exists. */
    if (m->n_used * 2 > m->n_slots)
        return memo_grow(m);
    return CW_OK;
}

/* ---- the entry list ---- */

struct sort_entry {
    uint64_t t;
    uint32_t op;
    bool is_call;
};

static int sort_entry_cmp(const void *a, const void *b)
{
    const struct sort_entry *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1; /* calls first: touching intervals overlap */
    if (x->op != y->op)
        return x->op < y->op ? -1 : 1;
    return 0;
}

/* Takes entry e (a call) and its return entry out of the list. */
static void lift(struct search *s, uint32_t e)
{
    s->next[s->prev[e]] = s->next[e];
    if (s->next[e] != NIL)
        s->prev[s->next[e]] = s->prev[e];
    uint32_t r = s->match[e];
    if (r != NIL) {
        s->next[s->prev[r]] = s->next[r];
        if (s->next[r] != NIL)
            s->prev[s->next[r]] = s->prev[r];
    }
}

/* Undoes lift(s, e); lifts and unlifts nest like a stack, so the neighbours
 * saved in e and its return entry are current again. */
static void unlift(struct search *s, uint32_t e)
{
    uint32_t r = s->match[e];
    if (r != NIL) {
        s->next[s->prev[r]] = r;
        if (s->next[r] != NIL)
            s->prev[s->next[r]] = r;
    }
    s->next[s->prev[e]] = e;
    if (s->next[e] != NIL)
        s->prev[s->next[e]] = e;
}

static void search_free(struct search *s)
{
    free(s->ops);
    free(s->next);
    free(s->prev);
    free(s->match);
    free(s->op_of);
    free(s->is_call);
    free(s->zob);
    free(s->bits);
    free(s->stack);
    memo_free(&s->memo);
    s->ops = NULL;
    s->next = s->prev = s->match = s->op_of = NULL;
    s->is_call = NULL;
    s->zob = s->bits = NULL;
    s->stack = NULL;
}

/* Builds the operations, the entry list and the scratch of one key from the
 * history indices idx[0..n-1]. */
static int search_setup(struct search *s, const size_t *idx, size_t n)
{
    int err = CW_ENOMEM;
    struct sort_entry *se = NULL;
    uint32_t *call_entry = NULL; /* per operation: its call entry */
    struct value_ret *reads = NULL;
    size_t n_reads = 0;
    s->n_ops = n;
    s->n_definite = 0;
    s->depth = 0;
    s->best_depth = 0;
    s->stuck_op = NIL;
    memset(&s->best_state, 0, sizeof(s->best_state));
    s->best_state.known = true;

    s->ops = calloc(n, sizeof(*s->ops));
    s->zob = calloc(n, sizeof(*s->zob));
    s->stack = calloc(n, sizeof(*s->stack));
    size_t words = (n + 63) / 64;
    s->bits = calloc(words, sizeof(*s->bits));
    se = calloc(2 * n, sizeof(*se));
    call_entry = calloc(n, sizeof(*call_entry));
    reads = calloc(n, sizeof(*reads));
    if (s->ops == NULL || s->zob == NULL || s->stack == NULL || s->bits == NULL || se == NULL ||
        call_entry == NULL || reads == NULL)
        goto cleanup;

    /* A timed-out put whose value a definite GET returned must be placed, and
     * before the first such GET returns (the GET is placed before its return,
     * the put before the GET): give it that return. This turns an open-ended
     * operation, which would double the search's sets from its call on, into
     * an ordinary one. A reader that returned before the put was called leaves
     * no linearization anyway; the return is then clamped to the call. */
    for (size_t i = 0; i < n; i++) {
        const struct cw_lin_event *e = &s->h->ev[idx[i]].e;
        if (e->op == CW_LIN_GET && e->outcome == CW_LIN_OK)
            reads[n_reads++] = (struct value_ret){.value_id = e->out_value_id, .ret_us = e->ret_us};
    }
    qsort(reads, n_reads, sizeof(*reads), value_ret_cmp);

    uint32_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cw_lin_event *e = &s->h->ev[idx[i]].e;
        struct lop *op = &s->ops[i];
        op->is_get = !is_write(e->op);
        op->del = e->op == CW_LIN_DEL || e->op == CW_LIN_DEL_IF_VERSION;
        op->cond = e->op == CW_LIN_PUT_IF_ABSENT ? COND_ABSENT
                   : (e->op == CW_LIN_PUT_IF_VERSION || e->op == CW_LIN_DEL_IF_VERSION)
                       ? COND_VERSION
                       : COND_NONE;
        op->outcome = e->outcome;
        op->definite = e->outcome != CW_LIN_UNKNOWN;
        op->ret_us = op->definite ? e->ret_us : UINT64_MAX;
        if (!op->definite && is_put(e->op) && n_reads > 0) {
            /* The first entry for the value is its earliest return (sorted). */
            size_t lo = 0, hi = n_reads;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (reads[mid].value_id < e->value_id)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < n_reads && reads[lo].value_id == e->value_id) {
                op->definite = true;
                op->ret_us = reads[lo].ret_us > e->call_us ? reads[lo].ret_us : e->call_us;
            }
        }
        op->value_id = op->del ? 0 : e->value_id;
        op->expected = e->expected_version;
        op->out_value_id = e->out_value_id;
        op->out_version = e->out_version;
        op->hist = idx[i];
        uint64_t seed = (uint64_t)i + 1;
        s->zob[i] = mix64(seed * 0x9e3779b97f4a7c15ull);
        se[ne++] = (struct sort_entry){.t = e->call_us, .op = (uint32_t)i, .is_call = true};
        if (op->definite) {
            s->n_definite++;
            se[ne++] = (struct sort_entry){.t = op->ret_us, .op = (uint32_t)i, .is_call = false};
        }
    }
    qsort(se, ne, sizeof(*se), sort_entry_cmp);

    s->n_entries = ne;
    s->head = ne;
    s->next = malloc((ne + 1) * sizeof(*s->next));
    s->prev = malloc((ne + 1) * sizeof(*s->prev));
    s->match = malloc((ne + 1) * sizeof(*s->match));
    s->op_of = malloc((ne + 1) * sizeof(*s->op_of));
    s->is_call = malloc((ne + 1) * sizeof(*s->is_call));
    if (s->next == NULL || s->prev == NULL || s->match == NULL || s->op_of == NULL ||
        s->is_call == NULL)
        goto cleanup;
    for (uint32_t i = 0; i < ne; i++) {
        s->op_of[i] = se[i].op;
        s->is_call[i] = se[i].is_call;
        s->match[i] = NIL;
        if (se[i].is_call)
            call_entry[se[i].op] = i;
        else
            s->match[call_entry[se[i].op]] = i; /* the call sorts first: ret >= call */
        s->prev[i] = i == 0 ? s->head : i - 1;
        s->next[i] = i + 1 < ne ? i + 1 : NIL;
    }
    s->next[s->head] = ne > 0 ? 0 : NIL;
    s->prev[s->head] = NIL;
    s->match[s->head] = NIL;
    s->is_call[s->head] = false;
    s->op_of[s->head] = NIL;

    err = memo_init(&s->memo, words > 0 ? words : 1);
cleanup:
    free(reads);
    free(call_entry);
    free(se);
    return err;
}

enum search_end { END_OK, END_VIOLATION, END_BUDGET, END_NOMEM };

static void set_bit(uint64_t *bits, uint32_t i)
{
    bits[i / 64] |= 1ull << (i % 64);
}

static void clear_bit(uint64_t *bits, uint32_t i)
{
    bits[i / 64] &= ~(1ull << (i % 64));
}

/* The WGL search of one key (see the file comment). */
static enum search_end search_run(struct search *s)
{
    struct reg st = {.exists = false, .known = true, .value_id = 0, .version = 0};
    uint64_t zob = 0;
    size_t remaining = s->n_definite;
    uint32_t e = s->next[s->head];

    for (;;) {
        if (remaining == 0)
            return END_OK;
        if (s->used >= s->limit)
            return END_BUDGET;
        s->used++;

        if (e == NIL || !s->is_call[e]) {
            /* The operation of return entry e (or, past the end, none) had to be
             * placed by now: backtrack. NIL cannot happen while a definite
             * operation is unplaced (its return entry is still in the list), but
             * backtracking there is the safe reading. */
            if (s->stuck_op == NIL || s->depth > s->best_depth) {
                s->best_depth = s->depth;
                s->stuck_op = e == NIL ? NIL : s->op_of[e];
                s->best_state = st;
            }
            if (s->depth == 0)
                return END_VIOLATION;
            struct frame *f = &s->stack[--s->depth];
            uint32_t op = s->op_of[f->entry];
            st = f->before;
            clear_bit(s->bits, op);
            zob ^= s->zob[op];
            if (s->ops[op].definite)
                remaining++;
            unlift(s, f->entry);
            e = s->next[f->entry];
            continue;
        }

        uint32_t op = s->op_of[e];
        struct reg after;
        if (model_step(&s->ops[op], &st, &after)) {
            set_bit(s->bits, op);
            bool added = false;
            if (memo_insert(&s->memo, s->bits, zob ^ s->zob[op], &after, &added) != CW_OK)
                return END_NOMEM;
            if (added) {
                /* The memo is the search's memory: it is paid for like steps. */
                s->used += s->memo.words + 1;
                s->stack[s->depth].entry = e;
                s->stack[s->depth].before = st;
                s->depth++;
                st = after;
                zob ^= s->zob[op];
                if (s->ops[op].definite)
                    remaining--;
                lift(s, e);
                e = s->next[s->head];
                continue;
            }
            clear_bit(s->bits, op);
        }
        e = s->next[e];
    }
}

/* ---- pruning timed-out writes nobody could have observed ---- */

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static bool u64_has(const uint64_t *v, size_t n, uint64_t x)
{
    return bsearch(&x, v, n, sizeof(*v), u64_cmp) != NULL;
}

/* The latest return among a kind of observer; UINT64_MAX for a timed-out
 * observer (it may be placed at any time). */
static void observed_until(uint64_t *until, const struct cw_lin_event *e)
{
    uint64_t ret = e->outcome == CW_LIN_UNKNOWN ? UINT64_MAX : e->ret_us;
    if (ret > *until)
        *until = ret;
}

/*
 * Drops from idx[0..*n-1] (one key's events) every timed-out write whose
 * placement could not matter, and counts them in *pruned. Without this, each
 * such write doubles the search: the search places it greedily, fails on the
 * next read, and tries every subset of the others.
 *
 * Observers: what could see a timed-out write W other than by reading its value.
 *  - existence (W a put): a PUT_IF_ABSENT that conflicted;
 *  - absence (W a delete): a GET that found nothing, a *_IF_VERSION that
 *    conflicted reporting 0, a PUT_IF_ABSENT that applied or timed out;
 *  - W's version (W a put): a conflict reporting, or an applied or timed-out
 *    *_IF_VERSION expecting, a nonzero "orphan" version, one that is neither a
 *    definite write's nor one a definite GET returned.
 * W is kept when a definite GET returned its value, or when an observer of its
 * kind returned at or after W's call (a timed-out observer counts as returning
 * at +infinity).
 *
 * Why dropping the rest keeps every linearization: take one that places such a
 * W and remove it. Only the operations between W and the next applied write Z
 * see a different state, and each of them is placed after W, so it returned
 * after W's call. None of them is a GET (a found needs W's value, a not-found a
 * delete, and W's kind has no observer that late), nor any other observer of
 * W's kind. A version they bind W's version to is either orphan (an observer)
 * or the version of another write the linearization places, which versions
 * growing strictly along the order forbid. A timed-out conditional write placed
 * there applies because of W only by observing it. Z and later writes only had
 * a higher lower bound to clear. So the shorter order is still a linearization.
 */
static int prune_unknown(const struct cw_lin_history *h, size_t *idx, size_t *n, size_t *pruned)
{
    int err = CW_ENOMEM;
    size_t m = *n;
    uint64_t *known = malloc(m * sizeof(*known)); /* versions definitely some write's */
    uint64_t *read = malloc(m * sizeof(*read));   /* values definite GETs returned */
    size_t n_known = 0, n_read = 0;
    uint64_t absent_until = 0, exists_until = 0, version_until = 0;
    *pruned = 0;
    if (known == NULL || read == NULL)
        goto cleanup;

    for (size_t i = 0; i < m; i++) {
        const struct cw_lin_event *e = &h->ev[idx[i]].e;
        if (e->outcome == CW_LIN_OK) {
            known[n_known++] = e->out_version;
            if (e->op == CW_LIN_GET)
                read[n_read++] = e->out_value_id;
        }
        if (e->op == CW_LIN_GET && e->outcome == CW_LIN_NOTFOUND)
            observed_until(&absent_until, e);
        if (e->op == CW_LIN_PUT_IF_ABSENT && e->outcome == CW_LIN_CONFLICT)
            observed_until(&exists_until, e);
        if (e->op == CW_LIN_PUT_IF_ABSENT && e->outcome != CW_LIN_CONFLICT)
            observed_until(&absent_until, e);
        if (e->outcome == CW_LIN_CONFLICT && e->out_version == 0)
            observed_until(&absent_until, e);
    }
    qsort(known, n_known, sizeof(*known), u64_cmp);
    qsort(read, n_read, sizeof(*read), u64_cmp);
    for (size_t i = 0; i < m; i++) {
        const struct cw_lin_event *e = &h->ev[idx[i]].e;
        if (e->outcome == CW_LIN_CONFLICT && e->out_version != 0 &&
            !u64_has(known, n_known, e->out_version))
            observed_until(&version_until, e);
        /* A conflict's expected version matched nothing, so only an applied or
         * possibly applied one observes a version. */
        if ((e->op == CW_LIN_PUT_IF_VERSION || e->op == CW_LIN_DEL_IF_VERSION) &&
            e->outcome != CW_LIN_CONFLICT && e->expected_version != 0 &&
            !u64_has(known, n_known, e->expected_version))
            observed_until(&version_until, e);
    }

    size_t kept = 0;
    for (size_t i = 0; i < m; i++) {
        const struct cw_lin_event *e = &h->ev[idx[i]].e;
        bool keep = true;
        if (e->outcome == CW_LIN_UNKNOWN) {
            if (is_put(e->op))
                keep = u64_has(read, n_read, e->value_id) || exists_until >= e->call_us ||
                       version_until >= e->call_us;
            else
                keep = absent_until >= e->call_us;
        }
        if (keep)
            idx[kept++] = idx[i];
        else
            (*pruned)++;
    }
    *n = kept;
    err = CW_OK;
cleanup:
    free(read);
    free(known);
    return err;
}

/* ---- partition and report ---- */

/* One used event, with its key bytes at hand for sorting (the arena does not
 * move during a check). */
struct keyed {
    const uint8_t *k;
    uint32_t len;
    size_t i;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = memcmp(x->k, y->k, x->len < y->len ? x->len : y->len);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->i < y->i ? -1 : (x->i > y->i ? 1 : 0);
}

struct group {
    size_t start, len; /* into the sorted arrays */
    size_t first;      /* the key's first history index */
};

static int group_cmp(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    return x->first < y->first ? -1 : (x->first > y->first ? 1 : 0);
}

static const char *op_name(enum cw_lin_op op)
{
    switch (op) {
    case CW_LIN_PUT:
        return "PUT";
    case CW_LIN_PUT_IF_VERSION:
        return "PUT_IF_VERSION";
    case CW_LIN_PUT_IF_ABSENT:
        return "PUT_IF_ABSENT";
    case CW_LIN_DEL:
        return "DEL";
    case CW_LIN_DEL_IF_VERSION:
        return "DEL_IF_VERSION";
    case CW_LIN_GET:
        return "GET";
    }
    return "?";
}

const char *cw_lin_result_name(enum cw_lin_result r)
{
    switch (r) {
    case CW_LIN_LINEARIZABLE:
        return "linearizable";
    case CW_LIN_VIOLATION:
        return "violation";
    case CW_LIN_BUDGET_EXHAUSTED:
        return "budget-exhausted";
    case CW_LIN_ERROR:
        return "error";
    }
    return "unknown";
}

/* Appends to a bounded buffer; output past the end is cut, never overrun. */
static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

static void append_key(char *buf, size_t cap, size_t *len, const uint8_t *k, uint32_t klen)
{
    appendf(buf, cap, len, "\"");
    for (uint32_t i = 0; i < klen && i < 32; i++) {
        if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '"' && k[i] != '\\')
            appendf(buf, cap, len, "%c", k[i]);
        else
            appendf(buf, cap, len, "\\x%02x", k[i]);
    }
    appendf(buf, cap, len, klen > 32 ? "\"..." : "\"");
}

static void append_event(char *buf, size_t cap, size_t *len, const struct cw_lin_history *h,
                         size_t i)
{
    const struct cw_lin_event *e = &h->ev[i].e;
    appendf(buf, cap, len, "#%zu client %" PRIu32 " %s", i, e->client, op_name(e->op));
    if (is_put(e->op))
        appendf(buf, cap, len, " value %" PRIu64, e->value_id);
    if (e->op == CW_LIN_PUT_IF_VERSION || e->op == CW_LIN_DEL_IF_VERSION)
        appendf(buf, cap, len, " if version %" PRIu64, e->expected_version);
    if (e->outcome == CW_LIN_UNKNOWN) {
        appendf(buf, cap, len, " [%" PRIu64 ", inf) -> unknown", e->call_us);
        return;
    }
    appendf(buf, cap, len, " [%" PRIu64 ", %" PRIu64 "] -> ", e->call_us, e->ret_us);
    if (e->outcome == CW_LIN_NOTFOUND)
        appendf(buf, cap, len, "not found");
    else if (e->outcome == CW_LIN_CONFLICT)
        appendf(buf, cap, len, "conflict version %" PRIu64, e->out_version);
    else if (e->op == CW_LIN_GET)
        appendf(buf, cap, len, "value %" PRIu64 " version %" PRIu64, e->out_value_id,
                e->out_version);
    else
        appendf(buf, cap, len, "ok version %" PRIu64, e->out_version);
}

static void report_key(struct cw_lin_report *rep, const struct cw_lin_history *h, size_t first,
                       const struct search *s, uint64_t used_before)
{
    uint32_t klen = h->ev[first].e.key_len;
    rep->key_len = klen;
    memcpy(rep->key, key_of(h, first), klen < CW_LIN_KEY_SHOWN_MAX ? klen : CW_LIN_KEY_SHOWN_MAX);
    rep->key_ops = s->n_ops;
    rep->key_definite = s->n_definite;
    rep->key_steps = s->used - used_before;
    size_t len = 0;
    appendf(rep->desc, sizeof(rep->desc), &len, "key ");
    append_key(rep->desc, sizeof(rep->desc), &len, key_of(h, first), klen);
    appendf(rep->desc, sizeof(rep->desc), &len, " (%zu ops, %zu definite): ", s->n_ops,
            s->n_definite);
    if (rep->result == CW_LIN_BUDGET_EXHAUSTED) {
        appendf(rep->desc, sizeof(rep->desc), &len,
                "search budget exhausted after %" PRIu64 " units on this key (%" PRIu64
                " in all); not proven linearizable",
                rep->key_steps, s->used);
        return;
    }
    rep->key_linearized = s->best_depth;
    appendf(rep->desc, sizeof(rep->desc), &len,
            "not linearizable; the longest partial linearization places %zu ops, then ",
            s->best_depth);
    if (s->stuck_op != NIL) {
        rep->stuck_event = s->ops[s->stuck_op].hist;
        append_event(rep->desc, sizeof(rep->desc), &len, h, rep->stuck_event);
        appendf(rep->desc, sizeof(rep->desc), &len, " cannot take effect");
    } else {
        appendf(rep->desc, sizeof(rep->desc), &len, "nothing fits");
    }
    const struct reg *b = &s->best_state;
    if (b->exists)
        appendf(rep->desc, sizeof(rep->desc), &len, " (state there: value %" PRIu64, b->value_id);
    else
        appendf(rep->desc, sizeof(rep->desc), &len, " (state there: absent");
    appendf(rep->desc, sizeof(rep->desc), &len, ", version %s%" PRIu64 ")",
            b->known ? "" : ">= ", b->version);
}

int cw_lin_check(const struct cw_lin_history *h, uint64_t budget_steps, struct cw_lin_report *rep)
{
    int err = CW_OK;
    struct keyed *keyed = NULL;
    size_t *idx = NULL;
    struct group *groups = NULL;
    size_t n_groups = 0;

    memset(rep, 0, sizeof(*rep));
    rep->result = CW_LIN_ERROR;
    rep->stuck_event = SIZE_MAX;

    size_t n = 0;
    keyed = malloc((h->n > 0 ? h->n : 1) * sizeof(*keyed));
    idx = malloc((h->n > 0 ? h->n : 1) * sizeof(*idx));
    groups = malloc((h->n > 0 ? h->n : 1) * sizeof(*groups));
    if (keyed == NULL || idx == NULL || groups == NULL) {
        err = CW_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < h->n; i++)
        if (event_used(&h->ev[i].e))
            keyed[n++] = (struct keyed){.k = key_of(h, i), .len = h->ev[i].e.key_len, .i = i};
    rep->n_events_used = n;
    qsort(keyed, n, sizeof(*keyed), keyed_cmp);
    for (size_t i = 0; i < n; i++)
        idx[i] = keyed[i].i;

    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && keyed[j].len == keyed[i].len &&
               memcmp(keyed[j].k, keyed[i].k, keyed[i].len) == 0)
            j++;
        /* Sorted by (key, index): a group's first element is its first event. */
        groups[n_groups++] = (struct group){.start = i, .len = j - i, .first = keyed[i].i};
        i = j;
    }
    /* Check keys in the order of their first event, so "the first failing key"
     * means the same thing to a reader of the history. */
    qsort(groups, n_groups, sizeof(*groups), group_cmp);

    rep->result = CW_LIN_LINEARIZABLE;
    struct search s;
    memset(&s, 0, sizeof(s));
    s.h = h;
    s.limit = budget_steps;
    for (size_t g = 0; g < n_groups; g++) {
        uint64_t before = s.used;
        size_t len = groups[g].len, pruned = 0;
        err = prune_unknown(h, idx + groups[g].start, &len, &pruned);
        if (err != CW_OK) {
            rep->result = CW_LIN_ERROR;
            goto cleanup;
        }
        rep->n_events_pruned += pruned;
        if (len == 0) {
            rep->n_keys_checked++;
            continue;
        }
        err = search_setup(&s, idx + groups[g].start, len);
        if (err != CW_OK) {
            search_free(&s);
            rep->result = CW_LIN_ERROR;
            goto cleanup;
        }
        enum search_end end = search_run(&s);
        if (end == END_NOMEM) {
            search_free(&s);
            err = CW_ENOMEM;
            rep->result = CW_LIN_ERROR;
            goto cleanup;
        }
        if (end != END_OK) {
            rep->result = end == END_VIOLATION ? CW_LIN_VIOLATION : CW_LIN_BUDGET_EXHAUSTED;
            report_key(rep, h, groups[g].first, &s, before);
            search_free(&s);
            break;
        }
        search_free(&s);
        rep->n_keys_checked++;
    }
    rep->steps = s.used;
cleanup:
    free(groups);
    free(idx);
    free(keyed);
    return err;
}
