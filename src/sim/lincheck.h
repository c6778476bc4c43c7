/*
 * lincheck.h - decides whether a recorded history of strong-bucket operations is
 * linearizable.
 *
 * Strong buckets promise one linearizable register per key (core/strong.h). The
 * simulator records every client operation on a strong key as one event with its
 * call and return times and its outcome; cw_lin_check then searches for a
 * linearization with the Wing-Gong-Lowe algorithm. Linearizability is
 * compositional over objects (Herlihy and Wing's P-compositionality), so the
 * history is split per key and each key is searched on its own. The search is
 * memoized on (set of linearized operations, register state), which turns the
 * factorial number of orders of commuting concurrent operations into the number
 * of distinct sets.
 *
 * The register model (per key). State: exists, value_id, version, where version
 * is the Raft index of the entry that last wrote the key (a delete included);
 * the initial state is absent with version 0.
 *   PUT(x)               always applies: exists, value x, new version v.
 *   PUT_IF_VERSION(e, x) applies iff exists and version == e; otherwise
 *                        CONFLICT(current version), 0 when the key is absent
 *                        (so e == 0 never matches: use PUT_IF_ABSENT).
 *   PUT_IF_ABSENT(x)     applies iff !exists; otherwise CONFLICT(current version).
 *   DEL                  always applies (also on an absent key, where it is still
 *                        a Raft entry): absent, new version v. The version of an
 *                        absent key is only a lower bound for later writes; no
 *                        outcome reports it.
 *   DEL_IF_VERSION(e)    like PUT_IF_VERSION, but makes the key absent.
 *   GET                  found(value_id, version) iff exists; else NOTFOUND.
 * Every write that applies with version v needs v > the current version (Raft
 * indices grow along the log); the versions the history reports are otherwise
 * free (other keys' entries fill the gaps).
 *
 * Outcomes. OK and CONFLICT and NOTFOUND are definite: the operation took effect
 * (or, for a CONFLICT, was evaluated) once, between its call and its return.
 * FAILED is a definite "not applied" (the store guarantees it never proposed the
 * command, e.g. no quorum before proposing): such events are dropped. UNKNOWN
 * (timed out) means the operation may take effect at any point after its call,
 * or never: its return time is +infinity, so nothing ever forces the search to
 * place it, and a history is linearizable as soon as every definite operation is
 * placed. A timed-out GET constrains nothing and is dropped. A timed-out
 * write that no operation of its key could observe (its value never read, no
 * existence or absence observation it could explain, no version reported or
 * expected that only it could have) is pruned before the search, which keeps
 * the search from trying every subset of such writes (lincheck.c argues why
 * this loses no linearization). A timed-out put whose value a definite GET
 * returned must have been placed before that GET returned, so the search gives
 * it that return time (and the report counts it among the definite ones).
 * Refuting a history still means exhausting its search, and every timed-out
 * write something might observe can double it: dense histories with many such
 * writes can run out of budget, which is reported as a failure. A timed-out
 * conditional write that is placed where its condition fails has no effect,
 * which is the same as not placing it, so it is only placed where it applies.
 *
 * Unknown versions bind lazily. A timed-out write that is placed writes a
 * version the client never learned; the state then records only its lower
 * bound (the previous version + 1). The first later operation that observes the
 * version (a GET that returns found(value, v), a PUT_IF_VERSION or
 * DEL_IF_VERSION that succeeds expecting v, a CONFLICT reporting v) binds it to
 * v when v >= the bound, and fails otherwise; a later write with version w needs
 * w > the bound. Binding is exact, not a wildcard: once bound, the version is
 * held to v by every later observation until the next write.
 *
 * Budget. budget_steps bounds the work of the whole check (all keys together):
 * one unit per search step (an attempt to place an operation, or a backtrack)
 * plus, per memo entry stored, its bitset's 64-bit words plus one. Memory is
 * therefore O(budget_steps) words; a key with n operations costs at least about
 * n * (n / 64 + 2) units. A check that runs out of budget reports
 * CW_LIN_BUDGET_EXHAUSTED, which callers must treat as a failure, never a pass.
 *
 * Ownership: a history is created by cw_lin_history_create and destroyed by
 * cw_lin_history_destroy(&h), which sets h to NULL. cw_lin_history_add copies the
 * event and its key bytes; the caller's memory is borrowed only for the call.
 * cw_lin_check only reads the history and fills a caller-provided report that
 * holds no pointers (nothing to free). All of the search's memory is released
 * before cw_lin_check returns.
 */
#ifndef CW_SIM_LINCHECK_H
#define CW_SIM_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_LIN_KEY_MAX 1024          /* key bytes per event (above the store's limit) */
#define CW_LIN_EVENTS_MAX (1u << 24) /* events per history */
#define CW_LIN_KEY_SHOWN_MAX 64      /* key bytes kept in the report */
#define CW_LIN_DESC_MAX 512          /* report description, NUL included */

enum cw_lin_op {
    CW_LIN_PUT,
    CW_LIN_PUT_IF_VERSION,
    CW_LIN_PUT_IF_ABSENT,
    CW_LIN_DEL,
    CW_LIN_DEL_IF_VERSION,
    CW_LIN_GET,
};

enum cw_lin_outcome {
    CW_LIN_OK,       /* writes: applied, out_version; GET: found out_value_id, out_version */
    CW_LIN_CONFLICT, /* conditional writes: not applied, out_version = current version */
    CW_LIN_NOTFOUND, /* GET only: the key was absent */
    CW_LIN_UNKNOWN,  /* timed out: may apply after call_us, or never; ret_us ignored */
    CW_LIN_FAILED,   /* definitely never applied: the event is dropped */
};

struct cw_lin_event {
    uint64_t call_us, ret_us; /* ret_us >= call_us for definite outcomes */
    uint32_t client;          /* for messages only: sessions are not ordered here */
    const uint8_t *key;       /* borrowed for cw_lin_history_add only */
    uint32_t key_len;         /* <= CW_LIN_KEY_MAX */
    enum cw_lin_op op;
    uint64_t value_id;         /* PUT*: nonzero and unique per write; else ignored */
    uint64_t expected_version; /* *_IF_VERSION: the version the key must have */
    enum cw_lin_outcome outcome;
    uint64_t out_value_id; /* GET OK: nonzero */
    uint64_t out_version;  /* writes OK, GET OK: nonzero; CONFLICT: current version or 0 */
};

struct cw_lin_history;

enum cw_lin_result {
    CW_LIN_LINEARIZABLE,
    CW_LIN_VIOLATION,        /* some key has no linearization */
    CW_LIN_BUDGET_EXHAUSTED, /* the search ran out of budget: a failure, never a pass */
    CW_LIN_ERROR,            /* the check did not run (see cw_lin_check's return) */
};

struct cw_lin_report {
    enum cw_lin_result result;
    size_t n_keys_checked;  /* keys fully decided (linearizable) before the end */
    size_t n_events_used;   /* events left after dropping FAILED and timed-out GETs */
    size_t n_events_pruned; /* of those, timed-out writes nothing could observe */
    uint64_t steps;         /* budget units spent, over all keys */
    /* The failing key (VIOLATION or BUDGET_EXHAUSTED); key_len is its full length,
     * of which the first min(key_len, CW_LIN_KEY_SHOWN_MAX) bytes are in key. */
    uint8_t key[CW_LIN_KEY_SHOWN_MAX];
    uint32_t key_len;
    size_t key_ops;             /* its operations searched (after dropping and pruning) */
    size_t key_definite;        /* of which definite */
    size_t key_linearized;      /* VIOLATION: the deepest partial linearization's length */
    size_t stuck_event;         /* VIOLATION: history index of the operation that could
                                 * not be placed there; SIZE_MAX otherwise */
    uint64_t key_steps;         /* budget units spent on that key */
    char desc[CW_LIN_DESC_MAX]; /* one NUL-terminated line for a failure message */
};

/* NULL when out of memory. */
struct cw_lin_history *cw_lin_history_create(void);
/* Frees *h and its copies; sets *h to NULL. Safe on NULL and on *h == NULL. */
void cw_lin_history_destroy(struct cw_lin_history **h);
/*
 * Appends a copy of ev (and of its key). Returns CW_OK; CW_EINVAL for a
 * malformed event (a field out of range, an outcome the operation cannot have,
 * ret_us < call_us on a definite outcome, a zero value or version where one is
 * required); CW_EFULL past CW_LIN_EVENTS_MAX; CW_ENOMEM. On error the history is
 * unchanged. Events are numbered from 0 in the order they were added.
 */
int cw_lin_history_add(struct cw_lin_history *h, const struct cw_lin_event *ev);
size_t cw_lin_history_len(const struct cw_lin_history *h);

/*
 * Checks h and fills *rep (overwritten). Returns CW_OK when the check ran,
 * whatever it found (see rep->result); CW_ENOMEM when memory ran out, with
 * rep->result = CW_LIN_ERROR. Keys are checked in the order of their first
 * event; the check stops at the first key that fails.
 */
int cw_lin_check(const struct cw_lin_history *h, uint64_t budget_steps, struct cw_lin_report *rep);

/* "linearizable", "violation", "budget-exhausted", "error"; "unknown" otherwise. */
const char *cw_lin_result_name(enum cw_lin_result r);

#endif
