/*
 * args.h - command-line number parsing shared by the load tools
 * (causeway-bench, causeway-feed): one message for a bad number, naming the
 * program, the option and the range.
 */
#ifndef CW_TOOLS_ARGS_H
#define CW_TOOLS_ARGS_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Parses v, the value of option opt, as a whole number in [lo, hi] into *out.
 * Returns 0, or -1 after telling stderr (as prog) what was expected. */
static inline int tool_parse_num(const char *prog, const char *opt, const char *v, uint64_t lo,
                                 uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = v ? strtoull(v, &end, 10) : 0;
    if (v == NULL || *v == '\0' || *v == '-' || *end != '\0' || errno || x < lo || x > hi) {
        fprintf(stderr, "%s: %s needs a number from %" PRIu64 " to %" PRIu64 ", not '%s'\n", prog,
                opt, lo, hi, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

#endif
