/* session.c - session contexts, bounded key-context memory and tokens. */
#include "core/session.h"

#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

void cw_session_init(struct cw_session *s, size_t max_keys)
{
    memset(s, 0, sizeof(*s));
    s->max_keys = max_keys ? max_keys : 1;
}

void cw_session_free(struct cw_session *s)
{
    for (size_t i = 0; i < s->n_keys; i++)
        free(s->keys[i].key);
    free(s->keys);
    s->keys = NULL;
    s->n_keys = 0;
}

static struct cw_session_key *find(const struct cw_session *s, const uint8_t *key, uint32_t len)
{
    for (size_t i = 0; i < s->n_keys; i++)
        if (s->keys[i].key_len == len && memcmp(s->keys[i].key, key, len) == 0)
            return &s->keys[i];
    return NULL;
}

const struct cw_vclock *cw_session_kctx(struct cw_session *s, const uint8_t *key, uint32_t key_len)
{
    struct cw_session_key *k = find(s, key, key_len);
    if (k == NULL)
        return NULL;
    k->used = ++s->clock;
    return &k->kctx;
}

int cw_session_set_kctx(struct cw_session *s, const uint8_t *key, uint32_t key_len,
                        const struct cw_vclock *kctx)
{
    struct cw_session_key *k = find(s, key, key_len);
    if (k == NULL) {
        if (s->n_keys == s->max_keys) {
            /* Forget the least recently used key context. */
            size_t lru = 0;
            for (size_t i = 1; i < s->n_keys; i++)
                if (s->keys[i].used < s->keys[lru].used)
                    lru = i;
            free(s->keys[lru].key);
            s->keys[lru] = s->keys[--s->n_keys];
        }
        if (s->keys == NULL) {
            s->keys = calloc(s->max_keys, sizeof(*s->keys));
            if (s->keys == NULL)
                return CW_ENOMEM;
        }
        uint8_t *copy = malloc(key_len ? key_len : 1);
        if (copy == NULL)
            return CW_ENOMEM;
        memcpy(copy, key, key_len);
        k = &s->keys[s->n_keys++];
        k->key = copy;
        k->key_len = key_len;
    }
    k->kctx = *kctx;
    k->used = ++s->clock;
    return CW_OK;
}

int cw_session_observe(struct cw_session *s, const uint8_t *key, uint32_t key_len,
                       const struct cw_reply *reply)
{
    if (reply->err != CW_OK)
        return CW_OK;
    cw_vc_join(&s->context, &reply->seen);
    if (reply->conflict != CW_CONFLICT_SIBLINGS)
        return CW_OK;
    if (reply->kind == CW_REPLY_GET || reply->kctx_valid)
        return cw_session_set_kctx(s, key, key_len, &reply->kctx);
    /* A put that left other siblings: keep the context we wrote with, so the next
     * put does not claim to have seen versions the client was never shown. */
    return CW_OK;
}

static const char hexdig[] = "0123456789abcdef";

void cw_token_format(const struct cw_vclock *v, char *buf)
{
    uint8_t bin[CW_VC_ENCODED_MAX];
    size_t n = cw_vc_encode(v, bin);
    memcpy(buf, "cw1-", 4);
    for (size_t i = 0; i < n; i++) {
        buf[4 + 2 * i] = hexdig[bin[i] >> 4];
        buf[4 + 2 * i + 1] = hexdig[bin[i] & 15];
    }
    buf[4 + 2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int cw_token_parse(const char *token, struct cw_vclock *v)
{
    size_t len = strlen(token);
    if (len < 6 || strncmp(token, "cw1-", 4) != 0 || (len - 4) % 2 != 0 ||
        (len - 4) / 2 > CW_VC_ENCODED_MAX)
        return CW_ECONTEXT;
    uint8_t bin[CW_VC_ENCODED_MAX];
    size_t n = (len - 4) / 2;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(token[4 + 2 * i]), lo = hexval(token[4 + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CW_ECONTEXT;
        bin[i] = (uint8_t)(hi << 4 | lo);
    }
    if (cw_vc_decode(v, bin, n) != n)
        return CW_ECONTEXT;
    return CW_OK;
}
