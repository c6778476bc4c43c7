/* version.c - LWW and sibling resolution for one key. */
#include "core/version.h"

#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

int cw_dot_cmp(struct cw_dot a, struct cw_dot b)
{
    if (a.ts != b.ts)
        return a.ts < b.ts ? -1 : 1;
    if (a.origin != b.origin)
        return a.origin < b.origin ? -1 : 1;
    return 0;
}

void cw_keystate_init(struct cw_keystate *s)
{
    cw_vc_zero(&s->replaced);
    s->n = 0;
    s->cap = 0;
    s->v = NULL;
}

static void version_free(struct cw_version *v)
{
    free(v->value);
    v->value = NULL;
    v->value_len = 0;
}

void cw_keystate_free(struct cw_keystate *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        version_free(&s->v[i]);
    free(s->v);
    cw_keystate_init(s);
}

static int version_copy(struct cw_version *dst, const struct cw_version *src)
{
    *dst = *src;
    dst->value = NULL;
    if (src->value_len > 0) {
        dst->value = malloc(src->value_len);
        if (dst->value == NULL)
            return CW_ENOMEM;
        memcpy(dst->value, src->value, src->value_len);
    }
    return CW_OK;
}

static int reserve(struct cw_keystate *s, uint32_t want)
{
    if (want <= s->cap)
        return CW_OK;
    uint32_t cap = s->cap ? s->cap * 2 : 2;
    while (cap < want)
        cap *= 2;
    struct cw_version *nv = realloc(s->v, (size_t)cap * sizeof(*nv));
    if (nv == NULL)
        return CW_ENOMEM;
    s->v = nv;
    s->cap = cap;
    return CW_OK;
}

int cw_keystate_copy(struct cw_keystate *dst, const struct cw_keystate *src)
{
    struct cw_keystate tmp;
    cw_keystate_init(&tmp);
    int rc = reserve(&tmp, src->n);
    if (rc != CW_OK)
        return rc;
    for (uint32_t i = 0; i < src->n; i++) {
        rc = version_copy(&tmp.v[i], &src->v[i]);
        if (rc != CW_OK) {
            cw_keystate_free(&tmp);
            return rc;
        }
        tmp.n++;
    }
    tmp.replaced = src->replaced;
    cw_keystate_free(dst);
    *dst = tmp;
    return CW_OK;
}

/* Siblings: is w's own dot already covered by a stored version's context, or is
 * w already stored? Then w was replaced before it arrived (or is a duplicate). */
static bool siblings_obsolete(const struct cw_keystate *s, const struct cw_version *w)
{
    if (cw_dot_covered(&s->replaced, w->dot))
        return true;
    for (uint32_t i = 0; i < s->n; i++)
        if (cw_dot_cmp(s->v[i].dot, w->dot) == 0)
            return true;
    return false;
}

uint32_t cw_keystate_count_after(const struct cw_keystate *s, enum cw_conflict mode,
                                 const struct cw_version *w)
{
    if (mode == CW_CONFLICT_LWW)
        return 1;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (!cw_dot_covered(&w->kctx, s->v[i].dot))
            kept++;
    return kept + 1; /* stored versions are never covered by s->replaced */
}

/* LWW keeps the single greatest (ts, origin) of everything it has seen. A state
 * with several versions (a bucket switched from siblings to LWW) collapses to its
 * greatest one, so the result does not depend on arrival order either. */
static int lww_apply(struct cw_keystate *s, const struct cw_version *w, bool *changed)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < s->n; i++)
        if (cw_dot_cmp(s->v[i].dot, s->v[best].dot) > 0)
            best = i;
    if (s->n > 0 && cw_dot_cmp(w->dot, s->v[best].dot) <= 0) {
        if (s->n == 1)
            return CW_OK;
        struct cw_version keep = s->v[best];
        for (uint32_t i = 0; i < s->n; i++)
            if (i != best)
                version_free(&s->v[i]);
        s->v[0] = keep;
        s->n = 1;
        *changed = true;
        return CW_OK;
    }
    struct cw_version copy;
    int rc = reserve(s, 1);
    if (rc == CW_OK)
        rc = version_copy(&copy, w);
    if (rc != CW_OK)
        return rc;
    for (uint32_t i = 0; i < s->n; i++)
        version_free(&s->v[i]);
    s->v[0] = copy;
    s->n = 1;
    *changed = true;
    return CW_OK;
}

/* The stored set is every applied version whose dot is not covered by the key
 * context of any applied version (s->replaced keeps the join of them all, also of
 * versions since dropped). So the result depends only on the set of versions
 * applied, never on their order: what a version replaced stays replaced even when
 * that version itself arrives already replaced. */
static int siblings_apply(struct cw_keystate *s, const struct cw_version *w, uint32_t limit,
                          bool *changed)
{
    bool obsolete = siblings_obsolete(s, w);
    struct cw_version copy;
    memset(&copy, 0, sizeof(copy));
    if (!obsolete) {
        uint32_t after = cw_keystate_count_after(s, CW_CONFLICT_SIBLINGS, w);
        if (limit > 0 && after > limit)
            return CW_ESIBLINGS;
        int rc = reserve(s, s->n + 1);
        if (rc == CW_OK)
            rc = version_copy(&copy, w);
        if (rc != CW_OK)
            return rc;
    }
    struct cw_vclock before = s->replaced;
    cw_vc_join(&s->replaced, &w->kctx);
    if (cw_vc_compare(&before, &s->replaced) != CW_VC_EQUAL)
        *changed = true;
    /* Drop what is now covered, keep the rest in (ts, origin) order. */
    uint32_t out = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (cw_dot_covered(&s->replaced, s->v[i].dot))
            version_free(&s->v[i]);
        else
            s->v[out++] = s->v[i];
    }
    if (out != s->n)
        *changed = true;
    s->n = out;
    if (obsolete)
        return CW_OK;
    uint32_t pos = out;
    while (pos > 0 && cw_dot_cmp(s->v[pos - 1].dot, copy.dot) > 0) {
        s->v[pos] = s->v[pos - 1];
        pos--;
    }
    s->v[pos] = copy;
    s->n = out + 1;
    *changed = true;
    return CW_OK;
}

int cw_keystate_apply(struct cw_keystate *s, enum cw_conflict mode, const struct cw_version *w,
                      uint32_t limit, bool *changed)
{
    *changed = false;
    if (mode == CW_CONFLICT_LWW)
        return lww_apply(s, w, changed);
    return siblings_apply(s, w, limit, changed);
}

void cw_keystate_context(const struct cw_keystate *s, struct cw_vclock *out)
{
    *out = s->replaced;
    for (uint32_t i = 0; i < s->n; i++) {
        cw_vc_join(out, &s->v[i].kctx);
        cw_vc_join_dot(out, s->v[i].dot.origin, s->v[i].dot.ts);
    }
}

uint32_t cw_keystate_live(const struct cw_keystate *s)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < s->n; i++)
        live += !s->v[i].tombstone;
    return live;
}

bool cw_keystate_collect(struct cw_keystate *s, uint64_t stable_ts)
{
    uint32_t out = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->v[i].tombstone && s->v[i].dot.ts <= stable_ts)
            version_free(&s->v[i]);
        else
            s->v[out++] = s->v[i];
    }
    bool changed = out != s->n;
    s->n = out;
    return changed;
}

bool cw_keystate_equal(const struct cw_keystate *a, const struct cw_keystate *b)
{
    if (a->n != b->n || cw_vc_compare(&a->replaced, &b->replaced) != CW_VC_EQUAL)
        return false;
    for (uint32_t i = 0; i < a->n; i++) {
        const struct cw_version *x = &a->v[i], *y = &b->v[i];
        if (cw_dot_cmp(x->dot, y->dot) != 0 || x->tombstone != y->tombstone ||
            x->value_len != y->value_len)
            return false;
        if (x->value_len && memcmp(x->value, y->value, x->value_len) != 0)
            return false;
    }
    return true;
}
