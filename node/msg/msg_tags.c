/* msg_tags.c - which envelopes are ours: a hash table holding every
 * 16-byte tag we may receive in the live epochs (the intro tag, each
 * room's and each contact's next TAG_WINDOW tags), so recognising our own
 * mail among everything stored is one lookup; and the chain keys of a
 * contact's epochs, from which tags and message keys are derived. */
#include "node/msg/msg_int.h"

#include "proto/crypto.h"
#include "node/common/log.h"

#include <stdlib.h>
#include <string.h>

static size_t tag_slot(const struct chp_msg *m, const uint8_t tag[16])
{
    uint64_t v;
    memcpy(&v, tag, 8); /* tags are pseudorandom */
    return (size_t)v & (m->tagcap - 1);
}

static int tag_put(chp_msg *m, const uint8_t tag[16], int kind, uint32_t idx, uint64_t epoch,
                   uint32_t seq)
{
    if ((m->ntags + 1) * 2 > m->tagcap) {
        size_t nc = m->tagcap ? m->tagcap * 2 : 1024;
        struct tagent *old = m->tags;
        size_t oc = m->tagcap;
        struct tagent *t = calloc(nc, sizeof *t);
        if (!t)
            return CHP_E_NOMEM;
        m->tags = t;
        m->tagcap = nc;
        m->ntags = 0;
        for (size_t i = 0; i < oc; i++)
            if (old[i].kind)
                (void)tag_put(m, old[i].tag, old[i].kind, old[i].idx, old[i].epoch, old[i].seq);
        free(old);
    }
    size_t i = tag_slot(m, tag);
    while (m->tags[i].kind && memcmp(m->tags[i].tag, tag, 16))
        i = (i + 1) & (m->tagcap - 1);
    if (!m->tags[i].kind)
        m->ntags++;
    memcpy(m->tags[i].tag, tag, 16);
    m->tags[i].kind = (uint8_t)kind;
    m->tags[i].idx = idx;
    m->tags[i].epoch = epoch;
    m->tags[i].seq = seq;
    return CHP_OK;
}

/* Epochs whose envelopes may still arrive: the max TTL back, one ahead
 * (clock skew). */
uint64_t chp_msgi_epoch_lo(uint64_t now_e)
{
    return now_e >= CHP_EPOCH_KEEP - 1 ? now_e - (CHP_EPOCH_KEEP - 1) : 0;
}

/* The chain key of epoch e (>= base). */
void chp_msgi_epoch_key(const struct contact *c, uint64_t e, uint8_t key[32])
{
    memcpy(key, c->base_key, 32);
    for (uint64_t i = c->base_epoch; i < e; i++)
        chp_ks_epoch_next(key, key);
}

uint32_t chp_msgi_recv_next(const struct contact *c, uint64_t e)
{
    size_t s = (size_t)(e % RECV_SLOTS);
    return c->recv_epoch[s] == e ? c->recv_next[s] : 0;
}

/* Contact idx's tags of the live epochs: seq 0 .. TAG_WINDOW - 1 past the
 * highest seen in each, as chp_msgi_tags_extend left them. */
static void contact_tags(chp_msg *m, uint32_t idx, uint64_t now_e)
{
    const struct contact *c = &m->c[idx];
    if (c->state != CS_ESTABLISHED)
        return;
    uint64_t lo = chp_msgi_epoch_lo(now_e);
    if (lo < c->base_epoch)
        lo = c->base_epoch;
    uint8_t k[32], tag[16];
    for (uint64_t e = lo; e <= now_e + 1; e++) {
        chp_msgi_epoch_key(c, e, k);
        uint32_t upto_seq = chp_msgi_recv_next(c, e) + TAG_WINDOW;
        for (uint32_t s = 0; s < upto_seq; s++) {
            chp_ks_tag(k, chp_identity_pk(m->me), s, tag);
            (void)tag_put(m, tag, TK_CONTACT, idx, e, s);
        }
    }
    chp_memzero(k, sizeof k);
}

/* Rebuilds the whole table: after unlock, contact and room changes, and
 * when the epoch turns. */
void chp_msgi_tags_rebuild(chp_msg *m)
{
    free(m->tags);
    m->tags = NULL;
    m->tagcap = m->ntags = 0;
    if (!m->me)
        return;
    uint64_t now_e = chp_epoch_of(chp_msgi_now(m));
    uint8_t tag[16];
    for (uint64_t e = chp_msgi_epoch_lo(now_e); e <= now_e + 1; e++) {
        chp_ks_intro_tag(chp_identity_pk(m->me), e, tag);
        (void)tag_put(m, tag, TK_INTRO, 0, e, 0);
        for (size_t i = 0; i < m->nr; i++) {
            chp_ks_room_tag(m->r[i].key, e, tag);
            (void)tag_put(m, tag, TK_ROOM, (uint32_t)i, e, 0);
        }
    }
    for (size_t i = 0; i < m->nc; i++)
        contact_tags(m, (uint32_t)i, now_e);
    m->tags_epoch = now_e;
}

/* A tag at seq was used: make sure the next window is in the table. */
void chp_msgi_tags_extend(chp_msg *m, uint32_t idx, uint64_t e, uint32_t seq)
{
    chp_msgi_tags_extend_by(m, idx, e, seq, TAG_WINDOW);
}

void chp_msgi_tags_extend_by(chp_msg *m, uint32_t idx, uint64_t e, uint32_t seq, uint32_t ahead)
{
    struct contact *c = &m->c[idx];
    size_t slot = (size_t)(e % RECV_SLOTS);
    if (ahead < TAG_WINDOW)
        ahead = TAG_WINDOW;
    /* a rebuild computes recv_next + TAG_WINDOW: as far as this reaches */
    uint32_t remember = seq + 1 + (ahead - TAG_WINDOW);
    if (seq < RECV_MAX && remember <= RECV_MAX && chp_msgi_recv_next(c, e) < remember &&
        (c->recv_epoch[slot] <= e || !c->recv_next[slot])) {
        c->recv_epoch[slot] = e;
        c->recv_next[slot] = remember;
        c->recv_dirty = 1;
    }
    uint8_t k[32], tag[16];
    chp_msgi_epoch_key(c, e, k);
    for (uint32_t s = seq + 1; s <= seq + ahead; s++) {
        chp_ks_tag(k, chp_identity_pk(m->me), s, tag);
        if (!chp_msgi_tag_find(m, tag) && tag_put(m, tag, TK_CONTACT, idx, e, s) == CHP_OK)
            m->tags_grew = 1;
    }
    chp_memzero(k, sizeof k);
}

void chp_msgi_tags_save(chp_msg *m)
{
    for (size_t i = 0; i < m->nc; i++) {
        struct contact *c = &m->c[i];
        if (!c->recv_dirty)
            continue;
        if (chp_msgi_contact_save(m, c) == CHP_OK)
            c->recv_dirty = 0;
        else
            chp_warn("cannot store how far a contact's tags were seen");
    }
}

int chp_msg_tag_mine(const chp_msg *m, const uint8_t tag[16])
{
    const struct tagent *te = m && m->me ? chp_msgi_tag_find(m, tag) : NULL;
    return te && te->kind == TK_CONTACT;
}
