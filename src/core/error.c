/* error.c - messages for enum cw_err. Each says what failed and what to do. */
#include <causeway/error.h>

#include <stddef.h>

static const char *const messages[CW_ERR_COUNT_] = {
    [CW_OK] = "success",
    [CW_ENOMEM] = "out of memory; reduce load or raise the process memory limit",
    [CW_EINVAL] = "invalid argument",
    [CW_EBUCKET] = "bad bucket name: use 1 to 64 characters from [a-z0-9_-]",
    [CW_EKEY] = "bad key: a key is 1 to 1024 bytes",
    [CW_EVALUE] = "value too large: it exceeds the configured max_value_bytes",
    [CW_ESIBLINGS] = "too many siblings for this key: read it, merge the versions and "
                     "write back with the context you read",
    [CW_EFULL] = "a bounded queue is full; retry later",
    [CW_ENOTFOUND] = "not found",
    [CW_ENOTREADY] = "this region has not yet seen your earlier writes; retry, or use "
                     "the region you wrote to",
    [CW_ETIMEOUT] = "timed out; the region may be overloaded or unreachable",
    [CW_EDECODE] = "malformed message or record",
    [CW_ETOOBIG] = "message exceeds the configured size bound",
    [CW_ECONFIG] = "invalid configuration",
    [CW_EUNKNOWNBUCKET] = "unknown bucket: define it in a [bucket NAME] section of the config",
    [CW_EREGION] = "unknown region: use a region named in the config",
    [CW_ECONTEXT] = "context refused: malformed, unknown region, or clock skew",
    [CW_ESTORE] = "storage error; check the data directory and the log",
    [CW_ENET] = "network error; check the endpoints in the config",
    [CW_EVERSION] = "protocol version mismatch; run the same causeway version everywhere",
    [CW_EIO] = "file input/output error",
    [CW_EUNAVAILABLE] = "service unavailable; is causewayd running for that region?",
    [CW_ESTRONG] = "a strong-bucket request reached the causal path and was refused; check "
                   "that every region's config marks the bucket strong",
    [CW_ECORRUPT] = "stored data is damaged or incomplete and was not used; restore the "
                    "data directory from a backup (see docs/operations.md)",
    [CW_ECONFLICT] = "conflict: the key's current version is not the expected one; read "
                     "it again and retry with the version you read",
    [CW_ENOQUORUM] = "no majority of regions is reachable for this strong bucket; retry "
                     "when links heal, or use a causal bucket",
    [CW_EDENIED] = "permission denied: the key this client authenticated with may not do "
                   "this (admin commands need a key from admin_keys_file)",
};

const char *cw_strerror(int err)
{
    if (err < 0 || err >= CW_ERR_COUNT_ || messages[err] == NULL)
        return "unknown error";
    return messages[err];
}
