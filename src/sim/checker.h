/*
 * checker.h - decides whether a recorded simulator history is causally consistent.
 *
 * The checker builds the causal order CO (session order plus reads-from) over the
 * history, then looks for the anomalies below. It is sound by design: every
 * reported violation is one no correct execution of the store could produce
 * (garbage-collected tombstones and unacknowledged writes are given the benefit of
 * the doubt), so a report is always worth a look.
 *
 * Unacknowledged writes are part of CO only through the reads that returned them:
 * the client never learned their dot, so its session cannot promise to see them
 * (they have no session-order edge to the session's later events). Operations on
 * EVENTUAL keys are not part of CO at all (the store does not order them), and
 * reads of EVENTUAL keys are only held to thin-air, context, sibling-count,
 * lost-write and divergence rules.
 *
 * A write marked lost (decided, then lost in a crash before its commit) never
 * happened: it is outside CO, no read may return it, and it replaces, excuses
 * and explains nothing. Whether a write replaced a version (which excuses that
 * version's absence) is judged from the key context the client sent with the
 * put (sent_kctx), not from the one the region stored; the rules that flag a
 * version still returned although replaced use the stored context, which must
 * include the sent one.
 *
 * Ownership: cw_check_history fills a caller-provided report whose violation
 * array it allocates; release it with cw_check_report_free (also safe after a
 * failed check and on a zeroed report). The history is only read.
 */
#ifndef CW_SIM_CHECKER_H
#define CW_SIM_CHECKER_H

#include <stddef.h>
#include <stdio.h>

#include "sim/history.h"

enum cw_check_kind {
    /* A read returned a version no write to that key produced (unknown dot, a dot
     * only a lost write had, or the write with that dot has another value_id,
     * tombstone flag or key). */
    CW_CHECK_THIN_AIR,
    /* CO (session order plus reads-from) has a cycle; reported once per history.
     * The causal-miss checks need a DAG and are skipped when it is found. */
    CW_CHECK_CYCLE,
    /* A read of a causal (LWW or SIBLINGS) key misses a write of that key in its
     * causal past (Bouajjani et al. POPL'17 WriteCOInitRead / WriteCORead). */
    CW_CHECK_CAUSAL_MISS,
    /* Like CAUSAL_MISS, but the missed write is in the reading session's own view
     * of the key: the session wrote it (read-your-writes), or an earlier read of
     * the same key by the session returned it or a version causally after it
     * (monotonic reads). */
    CW_CHECK_SESSION,
    /* An acknowledged write is missing from a final read and no real write's sent
     * key context replaced it (LWW: no greater real write explains it), or an
     * acknowledged write was lost in a crash. */
    CW_CHECK_LOST_WRITE,
    /* A read's version set breaks the sibling rules: a version replaced by another
     * returned version's context, a duplicate dot, or >1 version for an LWW key. */
    CW_CHECK_SIBLINGS,
    /* Final reads of one key return different sets of live dots. */
    CW_CHECK_DIVERGENCE,
    /* A read returned a version whose key context is not the one its write
     * stored, or (siblings keys) a write stored a key context that lacks part of
     * the one its client sent. */
    CW_CHECK_CONTEXT,
};
#define CW_CHECK_KINDS 8

/* Violations stored with a witness; the rest are only counted. */
#define CW_CHECK_STORED_MAX 64
#define CW_CHECK_WITNESS_MAX 1024

struct cw_check_violation {
    enum cw_check_kind kind;
    size_t events[4]; /* history indices involved, most important first */
    unsigned n_events;
    char witness[CW_CHECK_WITNESS_MAX]; /* human-readable, NUL-terminated */
};

struct cw_check_report {
    struct cw_check_violation *v;     /* the first CW_CHECK_STORED_MAX found, owned */
    size_t n, cap;                    /* stored count and allocated capacity of v */
    size_t n_by_kind[CW_CHECK_KINDS]; /* every violation found, stored or not */
    size_t total;                     /* sum of n_by_kind */
};

/*
 * Checks h and fills *out (any previous contents are overwritten, not freed).
 * Returns CW_OK (0) when the check ran, whatever it found; CW_ENOMEM when memory
 * ran out, or CW_EINVAL for a malformed history (a region or origin >=
 * CW_REGIONS_MAX, n_read > CW_HISTORY_READ_MAX). On error *out holds no violations.
 */
int cw_check_history(const struct cw_history *h, struct cw_check_report *out);
void cw_check_report_free(struct cw_check_report *r);
/*
 * Prints a summary line with the count per kind, then up to max_shown stored
 * violations with their witnesses; when h is not NULL each involved event is
 * described too.
 */
void cw_check_report_print(const struct cw_check_report *r, const struct cw_history *h, FILE *f,
                           size_t max_shown);
/* Short stable name ("thin-air", "cycle", "causal-miss", ..., "context"); "unknown"
 * otherwise. */
const char *cw_check_kind_name(enum cw_check_kind k);

#endif
