/*
 * history.c - the growable event array behind struct cw_history.
 *
 * The simulator appends events while it runs and the checker reads them after;
 * nothing here interprets an event. Ownership: the history owns its events array
 * (freed by cw_history_free); cw_history_add copies the caller's event in.
 */
#include "sim/history.h"

#include <stdlib.h>
#include <string.h>

/* Start small: a unit test history holds a handful of events, a seed a few thousand. */
#define CW_HISTORY_INITIAL_CAP 64

void cw_history_init(struct cw_history *h, unsigned n_regions)
{
    h->events = NULL;
    h->n = 0;
    h->cap = 0;
    h->n_regions = n_regions;
}

void cw_history_free(struct cw_history *h)
{
    free(h->events);
    h->events = NULL;
    h->n = 0;
    h->cap = 0;
}

size_t cw_history_add(struct cw_history *h, const struct cw_history_event *ev)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : CW_HISTORY_INITIAL_CAP;
        /* Refuse sizes whose byte count would wrap rather than allocate too little. */
        if (cap < h->cap || cap > SIZE_MAX / sizeof(*h->events) || cap == SIZE_MAX)
            return SIZE_MAX;
        /* Keep the old array reachable: on failure the history stays intact. */
        struct cw_history_event *grown = realloc(h->events, cap * sizeof(*grown));
        if (grown == NULL)
            return SIZE_MAX;
        h->events = grown;
        h->cap = cap;
    }
    memcpy(&h->events[h->n], ev, sizeof(*ev));
    return h->n++;
}
