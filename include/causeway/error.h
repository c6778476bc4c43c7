/*
 * causeway/error.h - the one error enum shared by every layer and the public API.
 *
 * Codes are positive; CW_OK is 0. cw_strerror() returns a static, human sentence
 * that says what failed and, where it helps, what to do about it. Adapters
 * translate Berkeley DB, ZeroMQ and LZ4 errors into these codes at their boundary.
 */
#ifndef CAUSEWAY_ERROR_H
#define CAUSEWAY_ERROR_H

/*
 * CW_EXPORT marks the functions that libcauseway exports. The library is built
 * with hidden visibility and a version script, so nothing else it contains (the
 * wire codec, the core, the transport) is visible to programs that link it.
 */
#ifndef CW_EXPORT
#if defined(__GNUC__) || defined(__clang__)
#define CW_EXPORT __attribute__((visibility("default")))
#else
#define CW_EXPORT
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum cw_err {
    CW_OK = 0,
    CW_ENOMEM = 1,          /* an allocation failed */
    CW_EINVAL = 2,          /* an argument is malformed */
    CW_EBUCKET = 3,         /* bucket name is not [a-z0-9_-]{1,64} */
    CW_EKEY = 4,            /* key is empty or longer than the limit */
    CW_EVALUE = 5,          /* value is longer than the configured maximum */
    CW_ESIBLINGS = 6,       /* the write would exceed max_siblings */
    CW_EFULL = 7,           /* a bounded queue or buffer is full */
    CW_ENOTFOUND = 8,       /* no live version of the key */
    CW_ENOTREADY = 9,       /* this region has not yet seen the session's context */
    CW_ETIMEOUT = 10,       /* the operation did not complete in time */
    CW_EDECODE = 11,        /* bytes from the network or disk are malformed */
    CW_ETOOBIG = 12,        /* a message or frame exceeds its bound */
    CW_ECONFIG = 13,        /* the configuration is invalid */
    CW_EUNKNOWNBUCKET = 14, /* the bucket is not defined in the configuration */
    CW_EREGION = 15,        /* unknown region name or id */
    CW_ECONTEXT = 16,       /* a context token is malformed */
    CW_ESTORE = 17,         /* the storage layer failed */
    CW_ENET = 18,           /* the transport failed */
    CW_EVERSION = 19,       /* protocol version mismatch */
    CW_EIO = 20,            /* a file could not be read or written */
    CW_EUNAVAILABLE = 21,   /* the service is not reachable */
    CW_ESTRONG = 22,        /* a strong-bucket request reached the causal replica */
    CW_ECORRUPT = 23,       /* stored data failed a check (checksum, missing file) */
    CW_ECONFLICT = 24,      /* a conditional put's expected version did not match */
    CW_ENOQUORUM = 25,      /* no majority of regions reachable for a strong bucket */
    CW_EDENIED = 26,        /* the authenticated key may not do this (admin needs an admin key) */
    CW_ERR_COUNT_
};

/* Returns a static string describing err; never NULL, also for unknown codes. */
CW_EXPORT const char *cw_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
