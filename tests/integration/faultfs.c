/*
 * faultfs.c - an LD_PRELOAD shim that makes file operations under one directory
 * fail, for the resource-failure tests (test_resource_failure.py). Built with
 * the tests only (target cw_faultfs); never linked into causeway.
 *
 * It wraps write, pwrite, pwrite64, writev, pwritev, open, open64, openat,
 * openat64, read, pread and pread64. While the fault is on, a call on a path under CW_FAULT_DIR
 * (for the write family: a descriptor whose /proc/self/fd link is under it) fails with
 * CW_FAULT_ERRNO instead of reaching the kernel. Everything else passes through untouched, and with
 * the fault off the only cost is one access(2) of the trigger file per call.
 *
 * Environment:
 *   CW_FAULT_DIR      the directory (absolute, as the daemon names it); unset:
 *                     the shim does nothing
 *   CW_FAULT_ERRNO    ENOSPC (default), EDQUOT, EIO, EMFILE or ENFILE
 *   CW_FAULT_OPS      a list of "write", "open" and "read" (read, pread and
 *                     pread64: Berkeley DB reads pages with read); default:
 *                     write for ENOSPC, EDQUOT and EIO, open for EMFILE and
 *                     ENFILE
 *   CW_FAULT_TRIGGER  a file: the fault is on while it exists (the test
 *                     creates it once the node has started and loaded data,
 *                     and removes it to end the fault); unset: always on
 *   CW_FAULT_MIN_BYTES  only writes of at least this many bytes fail (a
 *                     large commit's log write, not the small ones of the
 *                     node's periodic bookkeeping), so a test can choose which
 *                     commit meets the fault
 *   CW_FAULT_AFTER_BYTES  with the fault on, let this many more bytes be
 *                     written under the directory first (the last write that
 *                     crosses the line is cut short, as on a filling disk)
 *
 * The first failure is reported on stderr ("faultfs: ...") so a test log shows
 * where the fault began.
 *
 * With a sanitizer build, the sanitizer's runtime must come first in
 * LD_PRELOAD (LD_PRELOAD=libasan.so.N:libcw_faultfs.so): the sanitizer
 * intercepts these calls too and then calls on to this shim. The shim is built
 * without sanitizer flags for that reason.
 */
#define _GNU_SOURCE 1

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_WRITE = 1, OP_OPEN = 2, OP_READ = 4 };

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*open_fn)(const char *, int, ...);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*pread64_fn)(int, void *, size_t, off64_t);
typedef int (*openat_fn)(int, const char *, int, ...);

static int fault_errno = ENOSPC;
static unsigned fault_ops;
static char fault_dir[PATH_MAX];
static size_t fault_dir_len;
static const char *trigger;
static long long after_bytes = -1; /* < 0: no allowance */
static size_t min_bytes;           /* smaller writes pass */
static int reported;
static int configured;

static void configure(void)
{
    if (configured)
        return;
    configured = 1;
    const char *dir = getenv("CW_FAULT_DIR");
    if (dir == NULL || dir[0] == '\0')
        return;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n >= sizeof(fault_dir))
        return;
    memcpy(fault_dir, dir, n);
    fault_dir[n] = '\0';
    fault_dir_len = n;
    const char *e = getenv("CW_FAULT_ERRNO");
    if (e == NULL || strcmp(e, "ENOSPC") == 0)
        fault_errno = ENOSPC;
    else if (strcmp(e, "EDQUOT") == 0)
        fault_errno = EDQUOT;
    else if (strcmp(e, "EIO") == 0)
        fault_errno = EIO;
    else if (strcmp(e, "EMFILE") == 0)
        fault_errno = EMFILE;
    else if (strcmp(e, "ENFILE") == 0)
        fault_errno = ENFILE;
    else
        fault_errno = ENOSPC;
    const char *ops = getenv("CW_FAULT_OPS");
    if (ops != NULL && ops[0] != '\0') {
        fault_ops = (strstr(ops, "write") ? OP_WRITE : 0) | (strstr(ops, "open") ? OP_OPEN : 0) |
                    (strstr(ops, "read") ? OP_READ : 0);
    } else {
        fault_ops = fault_errno == EMFILE || fault_errno == ENFILE ? OP_OPEN : OP_WRITE;
    }
    const char *t = getenv("CW_FAULT_TRIGGER");
    trigger = t != NULL && t[0] != '\0' ? t : NULL;
    const char *m = getenv("CW_FAULT_MIN_BYTES");
    if (m != NULL && m[0] != '\0')
        min_bytes = (size_t)strtoull(m, NULL, 10);
    const char *b = getenv("CW_FAULT_AFTER_BYTES");
    if (b != NULL && b[0] != '\0')
        after_bytes = strtoll(b, NULL, 10);
}

static bool under_dir(const char *path)
{
    if (path == NULL || fault_dir_len == 0)
        return false;
    if (strncmp(path, fault_dir, fault_dir_len) != 0)
        return false;
    return path[fault_dir_len] == '/' || path[fault_dir_len] == '\0';
}

static bool fault_on(unsigned op)
{
    configure();
    if (fault_dir_len == 0 || (fault_ops & op) == 0)
        return false;
    if (trigger == NULL)
        return true;
    int saved = errno;
    bool on = access(trigger, F_OK) == 0;
    errno = saved;
    return on;
}

static bool fd_under_dir(int fd)
{
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    int saved = errno;
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    errno = saved;
    if (n <= 0)
        return false;
    target[n] = '\0';
    return under_dir(target);
}

static void report(const char *call, const char *what)
{
    if (reported)
        return;
    reported = 1;
    char line[PATH_MAX + 128];
    int n = snprintf(line, sizeof(line), "faultfs: %s(%s) fails with %s from now on\n", call, what,
                     strerror(fault_errno));
    if (n > 0) {
        write_fn real_write = (write_fn)dlsym(RTLD_NEXT, "write");
        if (real_write != NULL)
            (void)real_write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
}

/* For a write of len bytes on fd: -1 to let it through, else how many bytes
 * to write before failing (0: fail now). */
static long long write_budget(int fd, size_t len, const char *call)
{
    if (!fault_on(OP_WRITE) || len < min_bytes || !fd_under_dir(fd))
        return -1;
    if (after_bytes > 0) {
        long long allow = after_bytes < (long long)len ? after_bytes : (long long)len;
        after_bytes -= allow;
        return allow == (long long)len ? -1 : allow;
    }
    char what[32];
    snprintf(what, sizeof(what), "fd %d", fd);
    report(call, what);
    return 0;
}

/* The next definition of name (libc's, or another preloaded shim's). */
#define REAL(name, type)                                                                           \
    static type real_##name;                                                                       \
    if (real_##name == NULL)                                                                       \
        real_##name = (type)dlsym(RTLD_NEXT, #name);

ssize_t write(int fd, const void *buf, size_t len)
{
    REAL(write, write_fn);
    long long b = write_budget(fd, len, "write");
    if (b == 0) {
        errno = fault_errno;
        return -1;
    }
    return real_write(fd, buf, b < 0 ? len : (size_t)b);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    REAL(pwrite, pwrite_fn);
    long long b = write_budget(fd, len, "pwrite");
    if (b == 0) {
        errno = fault_errno;
        return -1;
    }
    return real_pwrite(fd, buf, b < 0 ? len : (size_t)b, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
    REAL(pwrite64, pwrite64_fn);
    long long b = write_budget(fd, len, "pwrite64");
    if (b == 0) {
        errno = fault_errno;
        return -1;
    }
    return real_pwrite64(fd, buf, b < 0 ? len : (size_t)b, off);
}

static size_t iov_bytes(const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    return total;
}

/* The vectored writes fail whole (no partial allowance). */
ssize_t writev(int fd, const struct iovec *iov, int n)
{
    REAL(writev, writev_fn);
    if (write_budget(fd, iov_bytes(iov, n), "writev") >= 0) {
        errno = fault_errno;
        return -1;
    }
    return real_writev(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    REAL(pwritev, pwritev_fn);
    if (write_budget(fd, iov_bytes(iov, n), "pwritev") >= 0) {
        errno = fault_errno;
        return -1;
    }
    return real_pwritev(fd, iov, n, off);
}

/* Whether an open of path (relative to dirfd when not absolute) must fail. */
static bool open_fails(int dirfd, const char *path, const char *call)
{
    if (!fault_on(OP_OPEN) || path == NULL)
        return false;
    char full[2 * PATH_MAX + 2];
    const char *p = path;
    if (path[0] != '/') {
        char base[PATH_MAX];
        int saved = errno;
        bool ok;
        if (dirfd == AT_FDCWD) {
            ok = getcwd(base, sizeof(base)) != NULL;
        } else {
            char link[64];
            snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof(base) - 1);
            ok = n > 0;
            if (ok)
                base[n] = '\0';
        }
        errno = saved;
        if (!ok)
            return false;
        snprintf(full, sizeof(full), "%s/%s", base, path);
        p = full;
    }
    if (!under_dir(p))
        return false;
    report(call, p);
    return true;
}

static mode_t open_mode(int flags, va_list ap)
{
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE)
        return (mode_t)va_arg(ap, int);
    return 0;
}

int open(const char *path, int flags, ...)
{
    REAL(open, open_fn);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    if (open_fails(AT_FDCWD, path, "open")) {
        errno = fault_errno;
        return -1;
    }
    return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    REAL(open64, open_fn);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    if (open_fails(AT_FDCWD, path, "open64")) {
        errno = fault_errno;
        return -1;
    }
    return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    REAL(openat, openat_fn);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    if (open_fails(dirfd, path, "openat")) {
        errno = fault_errno;
        return -1;
    }
    return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    REAL(openat64, openat_fn);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    if (open_fails(dirfd, path, "openat64")) {
        errno = fault_errno;
        return -1;
    }
    return real_openat64(dirfd, path, flags, mode);
}

/* Reads: whether a pread on fd must fail (never partly). */
static bool read_fails(int fd, const char *call)
{
    if (!fault_on(OP_READ) || !fd_under_dir(fd))
        return false;
    char what[32];
    snprintf(what, sizeof(what), "fd %d", fd);
    report(call, what);
    return true;
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
    REAL(pread, pread_fn);
    if (read_fails(fd, "pread")) {
        errno = fault_errno;
        return -1;
    }
    return real_pread(fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off64_t off)
{
    REAL(pread64, pread64_fn);
    if (read_fails(fd, "pread64")) {
        errno = fault_errno;
        return -1;
    }
    return real_pread64(fd, buf, len, off);
}

ssize_t read(int fd, void *buf, size_t len)
{
    REAL(read, read_fn);
    if (read_fails(fd, "read")) {
        errno = fault_errno;
        return -1;
    }
    return real_read(fd, buf, len);
}
