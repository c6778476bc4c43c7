/*
 * fuzz_node_peer.c - replication frames from other regions, decoded by the
 * real wire decoder and given to a node of region 1 in a 3-region cluster
 * (cw_node_recv), with time passing, ticks, crashes and restarts in between.
 * The input format, the node's preloaded state and every property checked are
 * in node_fixture.h: in short, no crash or sanitizer report, the node's
 * invariants after every step, every effect durable before it is acted on,
 * every outgoing message and reply intact through the wire codec, every
 * request answered exactly once, and a restart from the durable image that
 * restores the same state.
 */
#include "fuzz.h"
#include "node_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fx_run_peer(data, size);
    return 0;
}
