/* msg_contact.c - contacts and their handshake (PROTOCOL.md §18.2):
 * handshake keys and requests, the root and chain keys of an established
 * contact, renewed requests, and chain keys deleted once no envelope
 * under them may still arrive. */
#include "node/msg/msg_int.h"

#include "proto/buf.h"
#include "proto/crypto.h"
#include "proto/id.h"
#include "node/common/log.h"

#include <stdint.h>
#include <string.h>

struct contact *chp_msgi_contact_add(chp_msg *m, const uint8_t pk[32])
{
    if (chp_grow_secret(&m->c, &m->capc, m->nc + 1, sizeof *m->c) != CHP_OK)
        return NULL;
    struct contact *c = &m->c[m->nc++];
    memset(c, 0, sizeof *c);
    memcpy(c->pk, pk, 32);
    c->added = chp_msgi_now(m);
    return c;
}

/* ---- keys over time ---- */

/* Deletes chain keys older than the max TTL: advance every contact's
 * base to the oldest epoch still live. */
void chp_msgi_forget_old_keys(chp_msg *m, uint64_t now_e)
{
    uint64_t lo = chp_msgi_epoch_lo(now_e);
    for (size_t i = 0; i < m->nc; i++) {
        struct contact *c = &m->c[i];
        if (c->state != CS_ESTABLISHED || c->base_epoch >= lo)
            continue;
        chp_msgi_epoch_key(c, lo, c->base_key);
        c->base_epoch = lo;
        (void)chp_msgi_contact_save(m, c);
    }
}

/* Our pending contact requests: a request is dated by its key, so past
 * half its lifetime it goes out again under a new key (an answer to the
 * old one is then ignored; they re-key), while the node runs as at each
 * unlock, and the request never expires on the way. all: queue every
 * pending request (at unlock: whatever was accepted but never went out). */
void chp_msgi_renew_requests(chp_msg *m, int all)
{
    for (size_t i = 0; i < m->nc; i++) {
        struct contact *c = &m->c[i];
        if (c->state != CS_PENDING)
            continue;
        int stale = chp_msgi_now(m) > c->my_time + TTL_ENV / 2;
        if (stale) {
            chp_msgi_new_handshake_key(m, c);
            (void)chp_msgi_contact_save(m, c);
        }
        if (stale || all)
            (void)chp_msgi_queue_intro(m, c, CHP_CT_INTRO);
    }
}

/* The handshake clock (chp_msgi_new_handshake_key): stored, and never
 * behind a key we hold. */
void chp_msgi_hs_time_load(chp_msg *m)
{
    m->hs_time = chp_msgi_config_u64(m, "hs-time");
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].my_time > m->hs_time)
            m->hs_time = m->c[i].my_time;
}

/* The time of every new handshake key is later than the last one's, also
 * across a contact's removal and a restart: a peer keeps the request with
 * the newest `created`, and two requests of the same second could not be
 * told apart (the peer answered whichever came first, and the two sides
 * derived different roots). Keys are made by hand, a few a second at
 * most, so this stays within the clock skew peers accept. */
void chp_msgi_new_handshake_key(chp_msg *m, struct contact *c)
{
    uint64_t t = chp_msgi_now(m);
    if (t <= m->hs_time)
        t = m->hs_time + 1;
    m->hs_time = t;
    if (chp_msgi_config_put_u64(m, "hs-time", t) != CHP_OK)
        chp_warn("cannot store the handshake clock");
    chp_rng_fill(chp_rng_system(), c->my_esk, 32);
    chp_x25519_base(c->my_epk, c->my_esk);
    c->my_time = t;
}

/* ---- the handshake ---- */

/* Computes the root and the first chain key from both handshake keys;
 * the ephemeral secret is wiped (it could recompute the root). answer:
 * queue our answer (5) first, so it travels ahead of the messages that
 * waited: they cannot be read before it arrives. */
int chp_msgi_establish(chp_msg *m, struct contact *c, int answer)
{
    uint8_t root[32];
    int rc = chp_ks_root(c->my_esk, c->my_epk, c->their_epk, chp_identity_pk(m->me), c->pk, root);
    if (rc != CHP_OK)
        return rc;
    uint64_t ea = chp_epoch_of(c->my_time), eb = chp_epoch_of(c->their_time);
    c->base_epoch = ea < eb ? ea : eb;
    chp_ks_epoch_first(root, c->base_key);
    chp_memzero(root, sizeof root);
    chp_memzero(c->my_esk, sizeof c->my_esk);
    c->state = CS_ESTABLISHED;
    c->send_epoch = 0;
    c->send_seq = 0;
    memset(c->recv_epoch, 0, sizeof c->recv_epoch); /* their seqs start again under new keys */
    memset(c->recv_next, 0, sizeof c->recv_next);
    chp_msgi_forget_old_keys(m, chp_epoch_of(chp_msgi_now(m)));
    if ((rc = chp_msgi_contact_save(m, c)) != CHP_OK)
        return rc;
    chp_msgi_tags_rebuild(m);
    chp_msgi_emit(m, "contact", "%s\testablished", c->name);
    if (answer && (rc = chp_msgi_queue_intro(m, c, CHP_CT_ACCEPT)) != CHP_OK)
        return rc;
    /* Messages written before the handshake completed go out now. */
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        if (h->dir_out && !h->published && h->kind == CONV_DM && !memcmp(h->peer, c->pk, 32))
            (void)chp_msgi_queue_hmsg(m, h);
    }
    return CHP_OK;
}

/* Our messages to c that were sent but never confirmed go out again under
 * the new keys (the recipient drops copies by message id). */
static void resend_undelivered(chp_msg *m, const struct contact *c)
{
    for (size_t i = 0; i < m->nh; i++) {
        struct hmsg *h = &m->h[i];
        if (h->dir_out && h->published && h->state < MS_DELIVERED && h->kind == CONV_DM &&
            !memcmp(h->peer, c->pk, 32)) {
            h->published = 0;
            chp_msgi_out_forget_msg(m, h->msgid);
            (void)chp_msgi_hmsg_save(m, h);
        }
    }
}

/* We are established but they hold a root we cannot match (they answered
 * our current key again with a new one of theirs, and our secret is gone):
 * start over with a fresh request; they re-key on it. */
static void restart_handshake(chp_msg *m, struct contact *c)
{
    chp_info("a contact's handshake no longer matches: sending a new request");
    chp_msgi_new_handshake_key(m, c);
    c->state = CS_PENDING;
    chp_memzero(c->base_key, sizeof c->base_key);
    resend_undelivered(m, c);
    if (chp_msgi_contact_save(m, c) == CHP_OK)
        (void)chp_msgi_queue_intro(m, c, CHP_CT_INTRO);
    chp_msgi_tags_rebuild(m);
    chp_msgi_emit(m, "contact", "%s	pending", c->name);
}

/* Requests from strangers are capped: each costs its sender only a proof
 * of work, so beyond REQUESTS_MAX the oldest one is dropped. */
static int requests_full(chp_msg *m)
{
    size_t n = 0, oldest = SIZE_MAX;
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].state == CS_REQUEST) {
            n++;
            if (oldest == SIZE_MAX || m->c[i].added < m->c[oldest].added)
                oldest = i;
        }
    if (n < REQUESTS_MAX)
        return 0;
    if (chp_store_local_del(m->store, CHP_TABLE_CONTACTS, m->c[oldest].pk, 32) != CHP_OK)
        return 1;
    memmove(&m->c[oldest], &m->c[oldest + 1], (m->nc - oldest - 1) * sizeof *m->c);
    m->nc--;
    chp_msgi_tags_rebuild(m); /* contact indices moved */
    return 0;
}

/* A request (4) or an answer (5), PROTOCOL.md §18.2. Every handshake
 * key is newer than the one it replaces, so "newest wins" settles every
 * order of arrival; an answer names the key it answers, so one to a key
 * we no longer hold never establishes us on a root they do not have. */
void chp_msgi_handle_intro(chp_msg *m, const chp_inner *in, uint64_t created)
{
    size_t extra = in->type == CHP_CT_ACCEPT ? 32u : 0u;
    if (in->len < 33 + extra || in->payload[32] > CHP_NICK_MAX ||
        in->len != 33u + in->payload[32] + extra)
        return;
    size_t nl = in->payload[32];
    const uint8_t *answers = extra ? in->payload + 33 + nl : NULL;
    char nick[CHP_NICK_MAX + 1] = "";
    if (chp_nick_check((const char *)in->payload + 33, nl) == CHP_OK)
        chp_msgi_copy_str(nick, sizeof nick, in->payload + 33, nl);
    struct contact *c = chp_msgi_contact_by_pk(m, in->sender);
    if (c && (c->state == CS_BLOCKED || !memcmp(c->their_epk, in->payload, 32)))
        return; /* blocked, or a copy of what we already have */
    if (c && created <= c->their_time)
        return; /* older than the handshake we hold: a replay or a stale copy */
    if (c && c->state == CS_PENDING) {
        if (answers && memcmp(answers, c->my_epk, 32)) {
            /* An answer to a request of ours that is no longer current
             * (removed and added again): they re-key on our newer one. */
            chp_debug("an answer to an old handshake key was ignored");
            return;
        }
        memcpy(c->their_epk, in->payload, 32);
        c->their_time = created;
        if (nick[0])
            memcpy(c->nick, nick, sizeof nick);
        (void)chp_msgi_establish(m, c, 0);
        return;
    }
    if (answers) {
        if (c && c->state == CS_ESTABLISHED && !memcmp(answers, c->my_epk, 32))
            restart_handshake(m, c);
        return; /* else an answer to nothing we asked */
    }
    if (c && c->state == CS_ESTABLISHED) {
        /* They started over (removed and re-added us, or their request
         * crossed ours with another key): answer with a fresh key of
         * ours, and resend what they may not have been able to read. */
        memcpy(c->their_epk, in->payload, 32);
        c->their_time = created;
        if (nick[0])
            memcpy(c->nick, nick, sizeof nick);
        chp_msgi_new_handshake_key(m, c);
        resend_undelivered(m, c);
        (void)chp_msgi_establish(m, c, 1);
        return;
    }
    int fresh = !c;
    if (fresh && requests_full(m))
        return;
    if (fresh) {
        if (!(c = chp_msgi_contact_add(m, in->sender)))
            return;
        c->state = CS_REQUEST;
    }
    memcpy(c->their_epk, in->payload, 32);
    c->their_time = created;
    memcpy(c->nick, nick, sizeof nick);
    (void)chp_msgi_contact_save(m, c);
    if (fresh) {
        char id[CHP_ID_STR_LEN + 1];
        chp_id_encode(c->pk, id);
        chp_msgi_emit(m, "request", "%s\t%s", id, c->nick);
        chp_info("contact request received");
    }
}
