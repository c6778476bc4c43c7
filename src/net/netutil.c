/* netutil.c - error formatting and the monotonic clock for the transport. */
#include "net/netutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void cw_net_errf(char *err, size_t err_len, const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

uint64_t cw_net_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
