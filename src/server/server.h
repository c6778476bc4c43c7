/*
 * server.h - causewayd's single event loop: one region node.
 *
 * The server wires the pure replica (src/core) to its adapters: the Berkeley DB
 * store, the ZeroMQ transport with WAN emulation, and the wire codec. Its loop
 * is the etcd-raft "Ready" loop: take input (peer frames, client and admin
 * requests, timer ticks), let the replica decide, then carry out the effects in
 * the one safe order: commit every persist record in one transaction (group
 * commit), then send peer messages, then answer clients.
 *
 * Ownership: the server borrows cfg for its whole life (keep it alive until
 * cw_server_destroy) and owns everything else it opens.
 */
#ifndef CW_SERVER_SERVER_H
#define CW_SERVER_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/config.h"

struct cw_server;

/*
 * Opens the store (running recovery), restores the replica from it, binds the
 * endpoints. Returns CW_OK with *out set, or an error with a message in err that
 * says what failed and what to do.
 */
int cw_server_open(const struct cw_config *cfg, unsigned region, struct cw_server **out, char *err,
                   size_t err_len);
/* The same, rebuilding a region whose disk was lost (docs/operations.md): with
 * rebuild_from >= 0 the data directory must be empty (else CW_ECONFIG); the node
 * copies region rebuild_from's state before it serves clients. A directory left
 * by an interrupted rebuild (its marker file) is refused by either call. */
int cw_server_open_rebuild(const struct cw_config *cfg, unsigned region, int rebuild_from,
                           struct cw_server **out, char *err, size_t err_len);

/* Why cw_server_run returned, for the daemon's exit status (main.c,
 * docs/operations.md "Resource failures"). */
enum cw_server_stop {
    CW_SERVER_STOP_CLEAN = 0,          /* asked to stop, or still running */
    CW_SERVER_STOP_OTHER = 1,          /* another failure (the transport) */
    CW_SERVER_STOP_STORE_RESOURCE = 2, /* the store ran out of disk space, descriptors or memory */
    CW_SERVER_STOP_STORE_FAILED = 3,   /* the store failed otherwise (I/O error, panic) */
};

/* Runs until *stop becomes nonzero (set it from a signal handler). Returns CW_OK
 * after a clean stop, or the error that forced the node down (e.g. the store
 * failed: the replica's promises cannot be kept, so it stops and recovers on
 * restart). */
int cw_server_run(struct cw_server *s, volatile sig_atomic_t *stop);

/* Why cw_server_run returned: CW_SERVER_STOP_CLEAN after a clean stop; after a
 * failed commit (or a read that found Berkeley DB panicked) one of the STORE
 * reasons, the waiting clients having been answered with CW_ESTORE and nothing
 * of the failed round acknowledged; CW_SERVER_STOP_OTHER otherwise. */
enum cw_server_stop cw_server_stop_reason(const struct cw_server *s);

/* Whether Berkeley DB panicked: its environment could not be closed, and part
 * of its memory is lost to it (main.c then exits without exit handlers, so a
 * leak checker does not turn the documented exit status into an abort). */
bool cw_server_store_panicked(const struct cw_server *s);

void cw_server_destroy(struct cw_server **s);

/*
 * Fills *out with the node's status: the STATUS reply (causeway.proto: Status;
 * docs/operations.md explains the fields). Allocates nothing.
 */
struct cw_wire_status;
void cw_server_status(const struct cw_server *s, struct cw_wire_status *out);

#endif
