/*
 * netutil.h - small helpers shared by the daemon's transport (net.c) and the
 * client's (netclient.c), which libcauseway compiles without net.c.
 */
#ifndef CW_NET_NETUTIL_H
#define CW_NET_NETUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Formats into err (err_len bytes, always NUL-terminated); a NULL err or a zero
 * err_len is allowed and does nothing. */
void cw_net_errf(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* CLOCK_MONOTONIC in microseconds, for deadlines and due times. */
uint64_t cw_net_mono_us(void);

#endif
