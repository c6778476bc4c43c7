/*
 * fuzz_node_client.c - client requests, decoded by the real wire decoder with
 * the daemon's limits and turned into cw_node_put / cw_node_get as
 * src/server/server.c does, given to a node of region 1 in a 3-region cluster,
 * with time passing, ticks, idle peers' heartbeats, crashes and restarts in
 * between. The input format and every property checked are in node_fixture.h:
 * in short, no crash or sanitizer report, the node's invariants after every
 * step, every request answered exactly once with a reply that encodes, every
 * effect durable before it is acted on, and a restart from the durable image
 * that restores the same state.
 */
#include "fuzz.h"
#include "node_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fx_run_client(data, size);
    return 0;
}
