/*
 * history.h - the recorded history of a simulated run, read by the checker.
 *
 * The simulator appends one event per client operation. Writes are appended when
 * they are issued (so a read can never return a write that precedes its event in
 * the array) and marked acknowledged when the client got its success reply.
 * Reads are appended when the client receives the reply. After everything is
 * healed and quiet, the simulator reads every key at every region and appends
 * those reads with final = true; they belong to no session.
 *
 * A write the region decided but lost in a crash before its group commit is kept
 * in the history with lost = true: it never happened (no client, peer or reader
 * saw it), so the checker lets it replace, excuse or explain nothing.
 *
 * Values are identified by a unique, nonzero value_id chosen by the simulator;
 * the value bytes a client writes encode that id, so a read maps back to it.
 * Ownership: the history owns its events array; events are plain values.
 */
#ifndef CW_SIM_HISTORY_H
#define CW_SIM_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/vclock.h"

#define CW_HISTORY_READ_MAX 64 /* versions recorded per read (the sibling bound) */

enum cw_history_kind { CW_HISTORY_WRITE, CW_HISTORY_READ };

/* How the bucket of the key promises to behave (from the config, not from what
 * the replica did): the checker holds causal buckets to causal rules. */
enum cw_history_mode {
    CW_HISTORY_LWW,               /* causal, last-writer-wins */
    CW_HISTORY_SIBLINGS,          /* causal, siblings kept and exposed */
    CW_HISTORY_EVENTUAL,          /* eventual, last-writer-wins: only convergence is promised */
    CW_HISTORY_EVENTUAL_SIBLINGS, /* eventual, siblings: convergence and sibling rules */
};

struct cw_history_version {
    uint8_t origin;        /* region that issued the write */
    uint64_t ts;           /* its HLC stamp: (origin, ts) is the dot */
    bool tombstone;        /* a delete */
    uint64_t value_id;     /* 0 for tombstones */
    struct cw_vclock kctx; /* key context the stored version carries (siblings) */
};

struct cw_history_event {
    enum cw_history_kind kind;
    uint32_t session; /* client session id; unused for final reads */
    uint8_t region;   /* region that served the operation */
    uint32_t key;     /* index into the simulator's small key space */
    enum cw_history_mode mode;
    uint64_t time_us; /* simulated time of the event */

    /* CW_HISTORY_WRITE */
    struct cw_history_version write; /* write.kctx: the context the stored version carries */
    bool acked; /* the client saw success; an unacked write may or may not survive */
    bool lost;  /* decided, then lost in a crash before its commit: it never happened */
    /* The key context the client sent with the put, before the region closed it
     * (write.kctx covers at least this on a siblings key). The checker judges what
     * a write replaced from this, not from what the region stored. */
    struct cw_vclock sent_kctx;

    /* CW_HISTORY_READ: every version the region held for the key, tombstones included
     * (a tombstone may be absent after it was garbage-collected). */
    bool final;
    uint32_t n_read;
    struct cw_history_version read[CW_HISTORY_READ_MAX];
};

struct cw_history {
    struct cw_history_event *events;
    size_t n, cap;
    unsigned n_regions;
};

void cw_history_init(struct cw_history *h, unsigned n_regions);
void cw_history_free(struct cw_history *h);
/* Appends a copy of ev; returns its index, or SIZE_MAX when out of memory. */
size_t cw_history_add(struct cw_history *h, const struct cw_history_event *ev);

#endif
