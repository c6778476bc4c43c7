/*
 * cw_assert.c - the failure path of CW_ASSERT. Writing to stderr is the one
 * side effect the core allows itself, and only on the way to abort().
 */
#include "core/cw_assert.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void cw_assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "causeway: assertion failed at %s:%d: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}
