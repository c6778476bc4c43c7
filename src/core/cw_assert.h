/*
 * cw_assert.h - assertions that stay on in every build.
 *
 * CW_ASSERT is for programmer errors: a broken invariant, a contract violated
 * by the caller. It is never compiled out (NDEBUG does not touch it): the tests,
 * the simulator and the daemon all run with it. A failure prints the file, the
 * line and the expression to stderr and aborts; a daemon then recovers from its
 * store on restart. Split compound conditions into one assertion each, so the
 * message says which part failed. Never use it for bad input from the network,
 * the disk or a client: those get an error code.
 */
#ifndef CW_CORE_CW_ASSERT_H
#define CW_CORE_CW_ASSERT_H

_Noreturn void cw_assert_fail(const char *file, int line, const char *expr);

#define CW_ASSERT(expr)                                                                            \
    do {                                                                                           \
        if (!(expr))                                                                               \
            cw_assert_fail(__FILE__, __LINE__, #expr);                                             \
    } while (0)

#endif
