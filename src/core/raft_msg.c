/*
 * raft_msg.c - Raft messages (core/raft.h): free, deep copy, and the
 * structural checks every message from a peer passes before the core reads it.
 */
#include "core/raft.h"

#include <stdlib.h>
#include <string.h>

#include <causeway/error.h>

void cw_raft_msg_free(struct cw_raft_msg *m)
{
    for (uint32_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
    free(m->snap);
    m->snap = NULL;
    m->snap_len = 0;
}

int cw_raft_msg_copy(struct cw_raft_msg *dst, const struct cw_raft_msg *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->n_entries = 0;
    dst->snap = NULL;
    dst->snap_len = 0;
    if (src->snap_len > 0) {
        dst->snap = malloc(src->snap_len);
        if (dst->snap == NULL)
            goto err_oom;
        memcpy(dst->snap, src->snap, src->snap_len);
        dst->snap_len = src->snap_len;
    }
    if (src->n_entries > 0) {
        dst->entries = calloc(src->n_entries, sizeof(*dst->entries));
        if (dst->entries == NULL)
            goto err_oom;
        for (uint32_t i = 0; i < src->n_entries; i++) {
            const struct cw_raft_entry *e = &src->entries[i];
            struct cw_raft_entry *d = &dst->entries[i];
            *d = *e;
            d->data = NULL;
            if (e->len > 0) {
                d->data = malloc(e->len);
                if (d->data == NULL)
                    goto err_oom;
                memcpy(d->data, e->data, e->len);
            }
            dst->n_entries = i + 1;
        }
    }
    return CW_OK;
err_oom:
    cw_raft_msg_free(dst);
    return CW_ENOMEM;
}

const char *cw_raft_msg_check(const struct cw_raft_msg *m, unsigned n_regions)
{
    if (m->type < CW_RAFT_PREVOTE || m->type > CW_RAFT_PROPOSE)
        return "unknown Raft message type";
    if (m->from >= n_regions || m->to >= n_regions)
        return "Raft message names a region outside the cluster";
    if (m->from == m->to)
        return "Raft message from a region to itself";
    if ((m->flags & ~CW_RAFT_F_TRANSFER) != 0)
        return "unknown Raft message flags";
    if (m->n_entries > CW_RAFT_MSG_ENTRIES_MAX)
        return "too many entries in one Raft message";
    if (m->n_entries > 0 && m->entries == NULL)
        return "Raft message entries missing";
    if (m->n_entries > 0 && m->type != CW_RAFT_APPEND && m->type != CW_RAFT_PROPOSE)
        return "entries in a Raft message type that carries none";
    if (m->snap_len > 0 && m->type != CW_RAFT_SNAP)
        return "snapshot bytes in a Raft message type that carries none";
    if (m->snap_len > CW_RAFT_SNAP_BYTES_MAX)
        return "Raft snapshot too large";
    if (m->snap_len > 0 && m->snap == NULL)
        return "Raft snapshot bytes missing";
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct cw_raft_entry *e = &m->entries[i];
        if (e->type != CW_RAFT_ENTRY_NOOP && e->type != CW_RAFT_ENTRY_DATA)
            return "unknown Raft entry type";
        if (e->len > CW_RAFT_ENTRY_BYTES_MAX)
            return "Raft entry too large";
        if (e->len > 0 && e->data == NULL)
            return "Raft entry bytes missing";
        if (m->type == CW_RAFT_APPEND) {
            if (e->index != m->index + 1 + i)
                return "Raft entries not consecutive after the message's index";
            if (e->term == 0 || e->term > m->term)
                return "Raft entry term outside the message's term";
            if (i > 0 && e->term < m->entries[i - 1].term)
                return "Raft entry terms decrease";
            if (i == 0 && e->term < m->log_term)
                return "Raft entry term below the previous entry's";
        } else if (e->type != CW_RAFT_ENTRY_DATA) {
            return "a proposal that is not a command";
        }
    }
    if (m->type == CW_RAFT_APPEND && m->log_term > m->term)
        return "Raft previous-entry term past the message's term";
    if (m->type == CW_RAFT_SNAP && (m->index == 0 || m->log_term == 0 || m->log_term > m->term))
        return "Raft snapshot without an index or with a bad term";
    if (m->type == CW_RAFT_VOTE && m->log_term > m->term)
        return "Raft vote request with a last term past its term";
    return NULL;
}
