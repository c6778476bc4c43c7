/*
 * ping.h - the no-op round trip that causeway-bench --ping measures and
 * causeway-feed takes as its latency floor. The protocol has no ping: this is
 * its cheapest request, a get of a key never written, with no session (decode,
 * one key lookup, a small reply, a round with nothing to commit).
 */
#ifndef CW_TOOLS_PING_H
#define CW_TOOLS_PING_H

#include <stddef.h>

#include <causeway.h>

/* The key every ping reads; no tool writes it. */
#define TOOL_PING_KEY "cw-bench-ping-never-written"
#define TOOL_PING_KEY_LEN (sizeof(TOOL_PING_KEY) - 1)

/* One ping on c in bucket: CW_OK or the request's error. */
static inline int tool_ping(struct cw_client *c, const char *bucket)
{
    struct cw_get_result *g = NULL;
    int rc = cw_get(c, NULL, bucket, TOOL_PING_KEY, TOOL_PING_KEY_LEN, &g);
    cw_get_result_free(&g);
    return rc;
}

#endif
