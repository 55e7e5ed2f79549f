/* msg.c - the messaging layer (msg.h; PROTOCOL.md §18): the tag table,
 * envelopes out (sealed one per chp_msg_take) and in (one tag lookup,
 * then open and handle), key rotation, and the layer's lifecycle.
 *
 * Everything the user has lives in memory while unlocked (contacts, rooms,
 * message history) and is written through to the store's encrypted local
 * tables on every change, so a kill -9 loses nothing that was answered
 * "ok". Recognising our own envelopes is one lookup of the 16-byte tag in
 * a hash table holding every tag we may receive in the live epochs. */
#include "node/msg/msg_int.h"

#include "proto/buf.h"
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/id.h"
#include "node/common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the tag table ---- */

static size_t tag_slot(const struct chp_msg *m, const uint8_t tag[16])
{
    uint64_t v;
    memcpy(&v, tag, 8); /* tags are pseudorandom */
    return (size_t)v & (m->tagcap - 1);
}

static const struct tagent *tag_find(const chp_msg *m, const uint8_t tag[16])
{
    if (!m->tagcap)
        return NULL;
    for (size_t i = tag_slot(m, tag), k = 0; k < m->tagcap; k++, i = (i + 1) & (m->tagcap - 1)) {
        if (!m->tags[i].kind)
            return NULL;
        if (!memcmp(m->tags[i].tag, tag, 16))
            return &m->tags[i];
    }
    return NULL;
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
static uint64_t epoch_lo(uint64_t now_e)
{
    return now_e >= CHP_EPOCH_KEEP - 1 ? now_e - (CHP_EPOCH_KEEP - 1) : 0;
}

/* The chain key of epoch e (>= base). */
static void epoch_key(const struct contact *c, uint64_t e, uint8_t key[32])
{
    memcpy(key, c->base_key, 32);
    for (uint64_t i = c->base_epoch; i < e; i++)
        chp_ks_epoch_next(key, key);
}

static void contact_tags(chp_msg *m, uint32_t idx, uint64_t now_e, uint32_t upto_seq)
{
    const struct contact *c = &m->c[idx];
    if (c->state != CS_ESTABLISHED)
        return;
    uint64_t lo = epoch_lo(now_e);
    if (lo < c->base_epoch)
        lo = c->base_epoch;
    uint8_t k[32], tag[16];
    for (uint64_t e = lo; e <= now_e + 1; e++) {
        epoch_key(c, e, k);
        for (uint32_t s = 0; s < upto_seq; s++) {
            chp_ks_tag(k, chp_identity_pk(m->me), s, tag);
            (void)tag_put(m, tag, TK_CONTACT, idx, e, s);
        }
    }
    chp_memzero(k, sizeof k);
}

/* Rebuilds the whole table: after unlock, contact and room changes, and
 * when the epoch turns. */
void msg_tags_rebuild(chp_msg *m)
{
    free(m->tags);
    m->tags = NULL;
    m->tagcap = m->ntags = 0;
    if (!m->me)
        return;
    uint64_t now_e = chp_epoch_of(msg_now(m));
    uint8_t tag[16];
    for (uint64_t e = epoch_lo(now_e); e <= now_e + 1; e++) {
        chp_ks_intro_tag(chp_identity_pk(m->me), e, tag);
        (void)tag_put(m, tag, TK_INTRO, 0, e, 0);
        for (size_t i = 0; i < m->nr; i++) {
            chp_ks_room_tag(m->r[i].key, e, tag);
            (void)tag_put(m, tag, TK_ROOM, (uint32_t)i, e, 0);
        }
    }
    for (size_t i = 0; i < m->nc; i++)
        contact_tags(m, (uint32_t)i, now_e, TAG_WINDOW);
    m->tags_epoch = now_e;
}

/* A tag at seq was used: make sure the next window is in the table. */
static void tags_extend(chp_msg *m, uint32_t idx, uint64_t e, uint32_t seq)
{
    const struct contact *c = &m->c[idx];
    uint8_t k[32], tag[16];
    epoch_key(c, e, k);
    for (uint32_t s = seq + 1; s <= seq + TAG_WINDOW; s++) {
        chp_ks_tag(k, chp_identity_pk(m->me), s, tag);
        if (!tag_find(m, tag))
            (void)tag_put(m, tag, TK_CONTACT, idx, e, s);
    }
    chp_memzero(k, sizeof k);
}

/* ---- outgoing: jobs sealed one per chp_msg_take ---- */

static int job_add(chp_msg *m, int kind, const uint8_t *to, const char *room, uint8_t type,
                   const uint8_t *payload, size_t len, const uint8_t *msgid, int last)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j || !(j->payload = malloc(len ? len : 1))) {
        free(j);
        return CHP_E_NOMEM;
    }
    j->kind = kind;
    if (to)
        memcpy(j->to, to, 32);
    if (room)
        snprintf(j->room, sizeof j->room, "%s", room);
    j->type = type;
    memcpy(j->payload, payload, len);
    j->len = len;
    if (msgid)
        memcpy(j->msgid, msgid, MSGID_BYTES);
    j->last = last;
    if (m->jobs_tail)
        m->jobs_tail->next = j;
    else
        m->jobs = j;
    m->jobs_tail = j;
    return CHP_OK;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    chp_memzero(j->payload, j->len);
    free(j->payload);
    free(j);
}

/* An envelope handed back by the sealer, its job with it. */
static void seal_free(struct seal *s)
{
    if (!s)
        return;
    chp_memzero(s->key, sizeof s->key);
    free(s->out);
    job_free(s->job);
    free(s);
}

static void seals_free(struct seal *s)
{
    while (s) {
        struct seal *next = s->next;
        seal_free(s);
        s = next;
    }
}

/* Queues a message's envelopes: one, or CHP_CT_CHUNK pieces of body (the
 * payload after the message id). */
static int queue_message(chp_msg *m, int kind, const uint8_t *to, const char *room, uint8_t type,
                         const uint8_t msgid[MSGID_BYTES], const uint8_t *body, size_t blen)
{
    if (MSGID_BYTES + blen <= CHP_PAYLOAD_MAX) {
        uint8_t *p = malloc(MSGID_BYTES + blen);
        if (!p)
            return CHP_E_NOMEM;
        memcpy(p, msgid, MSGID_BYTES);
        memcpy(p + MSGID_BYTES, body, blen);
        int rc = job_add(m, kind, to, room, type, p, MSGID_BYTES + blen, msgid, 1);
        free(p);
        return rc;
    }
    size_t count = (blen + CHUNK_DATA - 1) / CHUNK_DATA;
    uint8_t *p = malloc(CHP_PAYLOAD_MAX);
    if (!p)
        return CHP_E_NOMEM;
    int rc = CHP_OK;
    for (size_t i = 0; i < count && rc == CHP_OK; i++) {
        size_t off = i * CHUNK_DATA, n = blen - off < CHUNK_DATA ? blen - off : CHUNK_DATA;
        chp_wr w;
        chp_wr_init(&w, p, CHP_PAYLOAD_MAX);
        chp_wr_bytes(&w, msgid, MSGID_BYTES);
        chp_wr_u8(&w, type);
        chp_wr_u16(&w, (uint16_t)i);
        chp_wr_u16(&w, (uint16_t)count);
        chp_wr_bytes(&w, body + off, n);
        rc = w.err ? w.err
                   : job_add(m, kind, to, room, CHP_CT_CHUNK, p, w.off, msgid, i + 1 == count);
    }
    free(p);
    return rc;
}

static void out_forget_msg(chp_msg *m, const uint8_t msgid[MSGID_BYTES]);
static void examined_save(chp_msg *m);

/* The body of an own history entry as it goes on the wire (new envelopes:
 * any earlier ones of it no longer count for its "sent" state). */
int msg_queue_hmsg(chp_msg *m, const struct hmsg *h)
{
    out_forget_msg(m, h->msgid);
    if (h->kind == CONV_DM)
        return queue_message(m, JOB_DM, h->peer, NULL, CHP_CT_TEXT, h->msgid,
                             (const uint8_t *)h->text, h->textlen);
    size_t kl = strlen(m->nick), blen = 1 + kl + h->textlen;
    uint8_t *b = malloc(blen);
    if (!b)
        return CHP_E_NOMEM;
    b[0] = (uint8_t)kl;
    memcpy(b + 1, m->nick, kl);
    memcpy(b + 1 + kl, h->text, h->textlen);
    int rc = queue_message(m, JOB_ROOM, NULL, h->room, CHP_CT_ROOM, h->msgid, b, blen);
    free(b);
    return rc;
}

int msg_queue_intro(chp_msg *m, const struct contact *c, uint8_t type)
{
    uint8_t p[32 + 1 + CHP_NICK_MAX + 32];
    size_t kl = strlen(m->nick), n = 33 + kl;
    memcpy(p, c->my_epk, 32);
    p[32] = (uint8_t)kl;
    memcpy(p + 33, m->nick, kl);
    if (type == CHP_CT_ACCEPT) {
        memcpy(p + n, c->their_epk, 32); /* the request this answers */
        n += 32;
    }
    int rc = job_add(m, JOB_INTRO, c->pk, NULL, type, p, n, NULL, 1);
    if (rc == CHP_OK)
        m->jobs_tail->created = c->my_time; /* t_X of §9.2: the key's own time */
    return rc;
}

void msg_jobs_drop(chp_msg *m, const uint8_t pk[32])
{
    struct job **pp = &m->jobs, *last = NULL;
    while (*pp) {
        struct job *j = *pp;
        if (j->kind != JOB_ROOM && !memcmp(j->to, pk, 32)) {
            *pp = j->next;
            job_free(j);
            continue;
        }
        last = j;
        pp = &j->next;
    }
    m->jobs_tail = last;
}

static void set_state(chp_msg *m, struct hmsg *h, int st)
{
    if (h->state >= st)
        return;
    h->state = st;
    (void)msg_hmsg_save(m, h);
    char id[2 * MSGID_BYTES + 1];
    msg_hex(h->msgid, MSGID_BYTES, id);
    msg_emit(m, "state", "%s\t%s", id, st == MS_DELIVERED ? "delivered" : "sent");
}

/* Header values, key and tag of one job's envelope. CHP_E_NOT_FOUND when
 * its contact or room is gone. */
static int job_keys(chp_msg *m, const struct job *j, uint64_t t, chp_env_seal_args *a,
                    uint8_t tag[16], uint8_t key[32], uint8_t epk[32])
{
    uint64_t e = chp_epoch_of(t);
    a->created = t;
    a->keyfield = NULL;
    if (j->kind == JOB_INTRO) {
        uint8_t esk[32];
        chp_rng_fill(chp_rng_system(), esk, sizeof esk);
        chp_x25519_base(epk, esk);
        chp_ks_intro_tag(j->to, e, tag);
        int rc = chp_ks_intro_key_send(esk, epk, j->to, key);
        chp_memzero(esk, sizeof esk);
        a->keyfield = epk;
        a->expiry = t + TTL_ENV;
        return rc;
    }
    if (j->kind == JOB_ROOM) {
        const struct room *r = msg_room_by_name(m, j->room);
        if (!r)
            return CHP_E_NOT_FOUND;
        chp_ks_room_tag(r->key, e, tag);
        chp_ks_room_msg_key(r->key, e, key);
        a->expiry = t + TTL_ENV;
        return CHP_OK;
    }
    struct contact *c = msg_contact_by_pk(m, j->to);
    if (!c || c->state != CS_ESTABLISHED)
        return CHP_E_NOT_FOUND;
    if (e < c->base_epoch)
        e = c->base_epoch;
    if (c->send_epoch != e) {
        c->send_epoch = e;
        c->send_seq = 0;
    }
    uint8_t k[32];
    epoch_key(c, e, k);
    chp_ks_tag(k, c->pk, c->send_seq++, tag);
    chp_ks_msg_key(k, chp_identity_pk(m->me), key);
    chp_memzero(k, sizeof k);
    a->expiry = t + TTL_ENV;
    return msg_contact_save(m, c);
}

/* Remembers own envelope id of message msgid until a neighbour says it
 * holds it (chp_msg_on_held). */
static void out_add(chp_msg *m, const uint8_t id[32], const uint8_t msgid[MSGID_BYTES])
{
    if (chp_grow(&m->out, &m->capout, m->nout + 1, sizeof *m->out) != CHP_OK) {
        chp_warn("out of memory: a message will stay 'queued'");
        return;
    }
    memcpy(m->out[m->nout].id, id, 32);
    memcpy(m->out[m->nout].msgid, msgid, MSGID_BYTES);
    m->out[m->nout].added = msg_now(m);
    m->nout++;
    if (chp_store_local_put(m->store, CHP_TABLE_OUTBOX, id, 32, msgid, MSGID_BYTES) != CHP_OK)
        chp_warn("cannot store an outgoing envelope's id: its message may stay 'queued'");
}

static void out_del(chp_msg *m, size_t i)
{
    int rc = chp_store_local_del(m->store, CHP_TABLE_OUTBOX, m->out[i].id, 32);
    if (rc != CHP_OK && rc != CHP_E_NOT_FOUND)
        chp_warn("cannot forget an outgoing envelope's id: %s", chp_strerror(rc));
    m->out[i] = m->out[--m->nout];
}

/* Forgets the envelopes of message msgid (it goes out again as new ones). */
static void out_forget_msg(chp_msg *m, const uint8_t msgid[MSGID_BYTES])
{
    for (size_t i = m->nout; i-- > 0;)
        if (!memcmp(m->out[i].msgid, msgid, MSGID_BYTES))
            out_del(m, i);
}

static int out_has_msg(const chp_msg *m, const uint8_t msgid[MSGID_BYTES])
{
    for (size_t i = 0; i < m->nout; i++)
        if (!memcmp(m->out[i].msgid, msgid, MSGID_BYTES))
            return 1;
    return 0;
}

static void note_published(chp_msg *m, const struct job *j, const uint8_t id[32])
{
    static const uint8_t zero[MSGID_BYTES];
    if (!memcmp(j->msgid, zero, MSGID_BYTES))
        return;
    struct hmsg *h = msg_hmsg_find(m, j->msgid, 1, chp_identity_pk(m->me));
    if (!h)
        return; /* a resent chunk of a message no longer in the history */
    out_add(m, id, j->msgid);
    if (j->last && !h->published) {
        h->published = 1;
        (void)msg_hmsg_save(m, h);
    }
}

int chp_msg_has_outgoing(chp_msg *m)
{
    return m->me && (m->jobs != NULL || msg_sealer_has_done(&m->sealer));
}

int chp_msg_pending(chp_msg *m)
{
    return m->me && (m->jobs != NULL || msg_sealer_pending(&m->sealer));
}

int chp_msg_fd(const chp_msg *m)
{
    return m->sealer.running ? m->sealer.efd : -1;
}

/* Job j as an envelope to seal: its keys and header made here, in order,
 * since they move the contact's counters. NULL when its contact or room
 * is gone (the job is then freed). */
static struct seal *prepare(chp_msg *m, struct job *j)
{
    struct seal *s = calloc(1, sizeof *s);
    if (!s) {
        job_free(j);
        return NULL;
    }
    s->job = j;
    int rc = job_keys(m, j, j->created ? j->created : msg_now(m), &s->a, s->tag, s->key, s->epk);
    s->cap = chp_envelope_size(j->len);
    if (rc == CHP_OK && (!s->cap || !(s->out = malloc(s->cap))))
        rc = CHP_E_NOMEM;
    if (rc != CHP_OK) {
        if (rc != CHP_E_NOT_FOUND)
            chp_err_log("cannot prepare a message envelope: %s", chp_strerror(rc));
        seal_free(s);
        return NULL;
    }
    if (s->a.keyfield)
        s->a.keyfield = s->epk; /* job_keys pointed it at s->epk already */
    s->a.tag = s->tag;
    s->a.key = s->key;
    s->a.type = j->type;
    s->a.payload = j->payload;
    s->a.len = j->len;
    s->a.pow_ntpb = m->host.pow_ntpb;
    s->me = m->me;
    return s;
}

int chp_msg_take(chp_msg *m, uint8_t **env, size_t *len)
{
    while (m->me && m->jobs) {
        struct job *j = m->jobs;
        m->jobs = j->next;
        if (!m->jobs)
            m->jobs_tail = NULL;
        struct seal *s = prepare(m, j);
        if (s)
            msg_sealer_push(&m->sealer, s);
    }
    struct seal *s;
    while (m->me && (s = msg_sealer_pop(&m->sealer))) {
        if (s->rc != CHP_OK) {
            chp_err_log("cannot seal a message envelope: %s", chp_strerror(s->rc));
            seal_free(s);
            continue;
        }
        uint8_t id[32];
        chp_envelope_id(s->out, s->outlen, id);
        note_published(m, s->job, id);
        *env = s->out;
        *len = s->outlen;
        s->out = NULL;
        seal_free(s);
        return 1;
    }
    return 0;
}

void chp_msg_on_held(chp_msg *m, const uint8_t id[32])
{
    if (!m->me)
        return;
    for (size_t i = 0; i < m->nout; i++) {
        if (memcmp(m->out[i].id, id, 32))
            continue;
        uint8_t msgid[MSGID_BYTES];
        memcpy(msgid, m->out[i].msgid, MSGID_BYTES);
        out_del(m, i);
        struct hmsg *h = msg_hmsg_find(m, msgid, 1, chp_identity_pk(m->me));
        if (h && h->published && !out_has_msg(m, msgid))
            set_state(m, h, MS_SENT);
        return;
    }
}

/* Own envelopes that left the store unconfirmed (expired, or the store was
 * wiped around them) will never be confirmed: forget them, once a minute. */
static void out_prune(chp_msg *m)
{
    uint64_t t = msg_now(m);
    if (t < m->out_pruned + 60)
        return;
    m->out_pruned = t;
    for (size_t i = m->nout; i-- > 0;)
        if (m->out[i].added + 60 < t && chp_store_has(m->store, m->out[i].id) == 0)
            out_del(m, i); /* (a younger one may be on its way into the store) */
}

size_t chp_msg_unconfirmed(chp_msg *m, uint8_t (*ids)[32], size_t cap)
{
    if (!m->me || !m->nout)
        return 0;
    size_t n = cap < m->nout ? cap : m->nout;
    if (m->out_rot >= m->nout)
        m->out_rot = 0;
    for (size_t k = 0; k < n; k++)
        memcpy(ids[k], m->out[(m->out_rot + k) % m->nout].id, 32);
    m->out_rot = (m->out_rot + n) % m->nout;
    return n;
}

/* ---- keys over time ---- */

/* Deletes chain keys older than the max TTL: advance every contact's
 * base to the oldest epoch still live. */
static void forget_old_keys(chp_msg *m, uint64_t now_e)
{
    uint64_t lo = epoch_lo(now_e);
    for (size_t i = 0; i < m->nc; i++) {
        struct contact *c = &m->c[i];
        if (c->state != CS_ESTABLISHED || c->base_epoch >= lo)
            continue;
        epoch_key(c, lo, c->base_key);
        c->base_epoch = lo;
        (void)msg_contact_save(m, c);
    }
}

/* Our pending contact requests: a request is dated by its key, so past
 * half its lifetime it goes out again under a new key (an answer to the
 * old one is then ignored; they re-key), while the node runs as at each
 * unlock, and the request never expires on the way. all: queue every
 * pending request (at unlock: whatever was accepted but never went out). */
static void renew_requests(chp_msg *m, int all)
{
    for (size_t i = 0; i < m->nc; i++) {
        struct contact *c = &m->c[i];
        if (c->state != CS_PENDING)
            continue;
        int stale = msg_now(m) > c->my_time + TTL_ENV / 2;
        if (stale) {
            msg_new_handshake_key(m, c);
            (void)msg_contact_save(m, c);
        }
        if (stale || all)
            (void)msg_queue_intro(m, c, CHP_CT_INTRO);
    }
}

void chp_msg_tick(chp_msg *m)
{
    if (!m->me)
        return;
    uint64_t now_e = chp_epoch_of(msg_now(m));
    if (now_e != m->tags_epoch) {
        forget_old_keys(m, now_e);
        msg_tags_rebuild(m);
    }
    renew_requests(m, 0);
    out_prune(m);
    examined_save(m);
}

/* ---- incoming ---- */

struct hmsg *msg_hmsg_add(chp_msg *m)
{
    if (chp_grow(&m->h, &m->caph, m->nh + 1, sizeof *m->h) != CHP_OK)
        return NULL;
    memset(&m->h[m->nh], 0, sizeof *m->h);
    m->h[m->nh].seq = m->next_seq++;
    m->h[m->nh].arrived = msg_now(m);
    return &m->h[m->nh++];
}

/* Computes the root and the first chain key from both handshake keys;
 * the ephemeral secret is wiped (it could recompute the root). answer:
 * queue our answer (5) first, so it travels ahead of the messages that
 * waited: they cannot be read before it arrives. */
int msg_establish(chp_msg *m, struct contact *c, int answer)
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
    forget_old_keys(m, chp_epoch_of(msg_now(m)));
    if ((rc = msg_contact_save(m, c)) != CHP_OK)
        return rc;
    msg_tags_rebuild(m);
    msg_emit(m, "contact", "%s\testablished", c->name);
    if (answer && (rc = msg_queue_intro(m, c, CHP_CT_ACCEPT)) != CHP_OK)
        return rc;
    /* Messages written before the handshake completed go out now. */
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        if (h->dir_out && !h->published && h->kind == CONV_DM && !memcmp(h->peer, c->pk, 32))
            (void)msg_queue_hmsg(m, h);
    }
    return CHP_OK;
}

/* The time of every new handshake key is later than the last one's, also
 * across a contact's removal and a restart: a peer keeps the request with
 * the newest `created`, and two requests of the same second could not be
 * told apart (the peer answered whichever came first, and the two sides
 * derived different roots). Keys are made by hand, a few a second at
 * most, so this stays within the clock skew peers accept. */
void msg_new_handshake_key(chp_msg *m, struct contact *c)
{
    uint64_t t = msg_now(m);
    if (t <= m->hs_time)
        t = m->hs_time + 1;
    m->hs_time = t;
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(t >> (56 - 8 * i));
    if (chp_store_local_put(m->store, CHP_TABLE_CONFIG, "hs-time", 7, b, sizeof b) != CHP_OK)
        chp_warn("cannot store the handshake clock");
    chp_rng_fill(chp_rng_system(), c->my_esk, 32);
    chp_x25519_base(c->my_epk, c->my_esk);
    c->my_time = t;
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
            out_forget_msg(m, h->msgid);
            (void)msg_hmsg_save(m, h);
        }
    }
}

/* We are established but they hold a root we cannot match (they answered
 * our current key again with a new one of theirs, and our secret is gone):
 * start over with a fresh request; they re-key on it. */
static void restart_handshake(chp_msg *m, struct contact *c)
{
    chp_info("a contact's handshake no longer matches: sending a new request");
    msg_new_handshake_key(m, c);
    c->state = CS_PENDING;
    chp_memzero(c->base_key, sizeof c->base_key);
    resend_undelivered(m, c);
    if (msg_contact_save(m, c) == CHP_OK)
        (void)msg_queue_intro(m, c, CHP_CT_INTRO);
    msg_tags_rebuild(m);
    msg_emit(m, "contact", "%s	pending", c->name);
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
    msg_tags_rebuild(m); /* contact indices moved */
    return 0;
}

/* A request (4) or an answer (5), PROTOCOL.md §18.2. Every handshake
 * key is newer than the one it replaces, so "newest wins" settles every
 * order of arrival; an answer names the key it answers, so one to a key
 * we no longer hold never establishes us on a root they do not have. */
static void handle_intro(chp_msg *m, const chp_inner *in, uint64_t created)
{
    size_t extra = in->type == CHP_CT_ACCEPT ? 32u : 0u;
    if (in->len < 33 + extra || in->payload[32] > CHP_NICK_MAX ||
        in->len != 33u + in->payload[32] + extra)
        return;
    size_t nl = in->payload[32];
    const uint8_t *answers = extra ? in->payload + 33 + nl : NULL;
    char nick[CHP_NICK_MAX + 1] = "";
    if (chp_nick_check((const char *)in->payload + 33, nl) == CHP_OK)
        msg_copy_str(nick, sizeof nick, in->payload + 33, nl);
    struct contact *c = msg_contact_by_pk(m, in->sender);
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
        (void)msg_establish(m, c, 0);
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
        msg_new_handshake_key(m, c);
        resend_undelivered(m, c);
        (void)msg_establish(m, c, 1);
        return;
    }
    int fresh = !c;
    if (fresh && requests_full(m))
        return;
    if (fresh) {
        if (chp_grow_secret(&m->c, &m->capc, m->nc + 1, sizeof *m->c) != CHP_OK)
            return;
        c = &m->c[m->nc++];
        memset(c, 0, sizeof *c);
        memcpy(c->pk, in->sender, 32);
        c->state = CS_REQUEST;
        c->added = msg_now(m);
    }
    memcpy(c->their_epk, in->payload, 32);
    c->their_time = created;
    memcpy(c->nick, nick, sizeof nick);
    (void)msg_contact_save(m, c);
    if (fresh) {
        char id[CHP_ID_STR_LEN + 1];
        chp_id_encode(c->pk, id);
        msg_emit(m, "request", "%s\t%s", id, c->nick);
        chp_info("contact request received");
    }
}

static void queue_receipt(chp_msg *m, const uint8_t to[32], const uint8_t msgid[MSGID_BYTES])
{
    uint8_t p[1 + MSGID_BYTES];
    p[0] = 1;
    memcpy(p + 1, msgid, MSGID_BYTES);
    (void)job_add(m, JOB_DM, to, NULL, CHP_CT_RECEIPT, p, sizeof p, NULL, 1);
}

/* The "message" event of history entry h: the whole line, so a client
 * need not reload the conversation (CONTROL.md, Events). */
static void emit_message(chp_msg *m, const struct hmsg *h)
{
    char conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], who[CHP_NICK_MAX + 32], id[33];
    msg_conv_label(m, h, conv, sizeof conv);
    msg_hmsg_sender(m, h, who, sizeof who);
    msg_hex(h->msgid, MSGID_BYTES, id);
    struct msg_buf ev = {0};
    msg_bescaped(&ev, conv, strlen(conv));
    msg_bput(&ev, "\t", 1);
    msg_bescaped(&ev, who, strlen(who));
    msg_bprintf(&ev, "\t%s\t%llu\t", id, (unsigned long long)h->time);
    msg_bescaped(&ev, h->text, h->textlen);
    if (!ev.oom && m->host.event)
        m->host.event(m->host.ctx, "message", ev.p, ev.len);
    free(ev.p);
}

/* ---- nick changes in rooms ---- */

/* A line of our own in room, before the post that shows pk under a new
 * nick: "~ali (jqn8znuw) is now known as ~bob (jqn8znuw)", or for a
 * contact "sara changed nick from ali to bob". Its sender is "*", which
 * no post can have, so a post's text cannot pass for one. */
static void announce_nick(chp_msg *m, const char *room, const uint8_t pk[32], const char *old,
                          const char *nick, uint64_t t)
{
    char text[3 * CHP_NICK_MAX + 96];
    const struct contact *c = msg_named_contact(m, pk);
    if (c) {
        snprintf(text, sizeof text, "%s changed nick from %s to %s", c->name, old[0] ? old : "?",
                 nick[0] ? nick : "?");
    } else {
        char a[CHP_NICK_MAX + 32], b[CHP_NICK_MAX + 32];
        msg_sender_label(m, pk, old, a, sizeof a);
        msg_sender_label(m, pk, nick, b, sizeof b);
        snprintf(text, sizeof text, "%s is now known as %s", a, b);
    }
    size_t tl = strlen(text);
    struct hmsg *h = msg_hmsg_add(m);
    if (!h || !(h->text = malloc(tl + 1))) {
        if (h)
            m->nh--;
        return;
    }
    memcpy(h->text, text, tl + 1);
    h->textlen = tl;
    h->notice = 1;
    h->read = 1; /* nothing to answer: not counted as unread */
    h->kind = CONV_ROOM;
    snprintf(h->room, sizeof h->room, "%s", room);
    const struct room *rm = msg_room_by_name(m, room);
    if (rm)
        memcpy(h->rfpr, rm->fpr, sizeof h->rfpr);
    memcpy(h->sender, pk, 32);
    snprintf(h->nick, sizeof h->nick, "%s", nick);
    h->time = t;
    chp_rng_fill(chp_rng_system(), h->msgid, MSGID_BYTES);
    (void)msg_hmsg_save(m, h);
    (void)msg_hindex_put(m, (size_t)(h - m->h));
    emit_message(m, h);
}

/* ---- bounded room history ---- */

static int room_line(const struct hmsg *h, const char *room)
{
    return h->kind == CONV_ROOM && !h->dir_out && !strcmp(h->room, room);
}

static uint64_t room_keep_bytes(chp_msg *m)
{
    chp_store_stats st;
    chp_store_stats_get(m->store, &st);
    return st.quota / 16 > ROOM_KEEP_MIN ? st.quota / 16 : ROOM_KEEP_MIN;
}

/* Deletes the history entries marked in drop (records and memory). */
static void hist_drop(chp_msg *m, const uint8_t *drop, size_t n)
{
    chp_store_lkey *keys = calloc(n, sizeof *keys);
    uint8_t(*kb)[MSGID_BYTES + 33] = calloc(n, sizeof *kb);
    size_t k = 0, deleted = 0;
    for (size_t i = 0; keys && kb && i < m->nh; i++)
        if (drop[i]) {
            keys[k].klen = (size_t)msg_hmsg_key(&m->h[i], kb[k]);
            keys[k].key = kb[k];
            k++;
        }
    int rc = keys && kb ? chp_store_local_del_many(m->store, CHP_TABLE_HISTORY, keys, k, &deleted)
                        : CHP_E_NOMEM;
    if (rc != CHP_OK) /* they stay on disk; the next unlock trims again */
        chp_warn("cannot delete old room messages: %s", chp_strerror(rc));
    free(keys);
    free(kb);
    size_t w = 0;
    for (size_t i = 0; i < m->nh; i++) {
        if (drop[i]) {
            chp_memzero(m->h[i].text, m->h[i].textlen);
            free(m->h[i].text);
            continue;
        }
        if (w != i)
            m->h[w] = m->h[i];
        w++;
    }
    memset(&m->h[w], 0, (m->nh - w) * sizeof *m->h);
    m->nh = w;
    msg_hindex_rebuild(m);
}

/* Keeps the others' lines of room within ROOM_KEEP_LINES and the room
 * byte budget: each costs a sender only a proof of work, so without a
 * bound anyone in a room fills the disk and memory (finding 6). The
 * oldest lines of strangers go first, then those of contacts; the newest
 * line stays whatever its size; own lines and DMs are never touched. */
static void room_trim(chp_msg *m, const char *room)
{
    size_t n = 0, newest = SIZE_MAX;
    uint64_t bytes = 0, cap = room_keep_bytes(m);
    for (size_t i = 0; i < m->nh; i++)
        if (room_line(&m->h[i], room)) {
            n++;
            bytes += m->h[i].textlen + HREC_COST;
            newest = i;
        }
    if (n <= ROOM_KEEP_LINES && bytes <= cap)
        return;
    uint8_t *drop = calloc(m->nh, 1);
    if (!drop)
        return;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < m->nh && (n > ROOM_KEEP_LINES || bytes > cap); i++) {
            const struct hmsg *h = &m->h[i];
            if (drop[i] || i == newest || !room_line(h, room) ||
                (pass == 0 && msg_named_contact(m, h->sender)))
                continue;
            drop[i] = 1;
            n--;
            bytes -= h->textlen + HREC_COST;
        }
    hist_drop(m, drop, m->nh);
    free(drop);
}

/* At unlock: every room's history within its bounds (a store from before
 * them may hold any amount). */
static void rooms_trim_all(chp_msg *m)
{
    char done[16][CHP_ROOM_NAME_MAX + 1];
    size_t nd = 0;
    for (size_t i = 0; i < m->nh; i++) {
        if (m->h[i].kind != CONV_ROOM || m->h[i].dir_out)
            continue;
        char room[CHP_ROOM_NAME_MAX + 1];
        size_t k = 0;
        snprintf(room, sizeof room, "%s", m->h[i].room);
        while (k < nd && strcmp(done[k], room))
            k++;
        if (k < nd)
            continue;
        if (nd < 16)
            snprintf(done[nd++], sizeof done[0], "%s", room);
        room_trim(m, room); /* m->h moves: i stays a valid position */
    }
}

/* A complete text or room post: body is the payload after the message id. */
static void deliver(chp_msg *m, const struct tagent *te, const uint8_t sender[32], uint8_t type,
                    const uint8_t msgid[MSGID_BYTES], const uint8_t *body, size_t blen,
                    uint64_t created)
{
    char nick[CHP_NICK_MAX + 1] = "";
    if (type == CHP_CT_ROOM) {
        if (te->kind != TK_ROOM || blen < 1 || body[0] > CHP_NICK_MAX || blen < 1u + body[0])
            return;
        if (chp_nick_check((const char *)body + 1, body[0]) == CHP_OK)
            msg_copy_str(nick, sizeof nick, body + 1, body[0]);
        blen -= 1u + body[0];
        body += 1u + body[0];
    } else if (type != CHP_CT_TEXT || te->kind != TK_CONTACT) {
        return;
    }
    if (blen == 0 || blen > TEXT_MAX || !chp_utf8_valid((const char *)body, blen))
        return;
    const struct contact *bc = msg_contact_by_pk(m, sender);
    if (bc && bc->state == CS_BLOCKED)
        return; /* blocked: not their DMs, not their room posts either */
    if (msg_hmsg_find(m, msgid, 0, sender)) {
        /* a copy (resent chunks, a replay, a resend after a re-key whose
         * first receipt may not have been readable) */
        if (type == CHP_CT_TEXT)
            queue_receipt(m, sender, msgid);
        return;
    }
    char old[CHP_NICK_MAX + 1];
    if (type == CHP_CT_ROOM && msg_seen_note(m, m->r[te->idx].name, sender, nick, created, old))
        announce_nick(m, m->r[te->idx].name, sender, old, nick, created);
    struct hmsg *h = msg_hmsg_add(m);
    if (!h || !(h->text = malloc(blen + 1))) {
        if (h)
            m->nh--;
        return;
    }
    memcpy(h->msgid, msgid, MSGID_BYTES);
    memcpy(h->sender, sender, 32);
    memcpy(h->text, body, blen);
    h->text[blen] = '\0';
    h->textlen = blen;
    h->time = created;
    memcpy(h->nick, nick, sizeof nick);
    if (type == CHP_CT_ROOM) {
        h->kind = CONV_ROOM;
        snprintf(h->room, sizeof h->room, "%s", m->r[te->idx].name);
        memcpy(h->rfpr, m->r[te->idx].fpr, sizeof h->rfpr);
    } else {
        h->kind = CONV_DM;
        memcpy(h->peer, sender, 32);
        queue_receipt(m, sender, msgid);
    }
    (void)msg_hmsg_save(m, h);
    (void)msg_hindex_put(m, (size_t)(h - m->h));
    emit_message(m, h);
    if (type == CHP_CT_ROOM)
        room_trim(m, m->r[te->idx].name);
}

static void handle_receipt(chp_msg *m, const chp_inner *in)
{
    if (in->len < 1 || in->payload[0] == 0 || in->payload[0] > RECEIPT_MAX ||
        in->len != 1u + in->payload[0] * MSGID_BYTES)
        return;
    for (size_t k = 0; k < in->payload[0]; k++) {
        const uint8_t *id = in->payload + 1 + k * MSGID_BYTES;
        struct hmsg *h = msg_hmsg_find(m, id, 1, chp_identity_pk(m->me));
        if (h && h->kind == CONV_DM && !memcmp(h->peer, in->sender, 32))
            set_state(m, h, MS_DELIVERED);
    }
}

static void partial_free(struct partial **pp)
{
    struct partial *p = *pp;
    if (!p)
        return;
    for (size_t i = 0; i < CHUNKS_MAX; i++) {
        if (p->data[i])
            chp_memzero(p->data[i], p->len[i]);
        free(p->data[i]);
    }
    free(p);
    *pp = NULL;
}

/* One piece of a chunked message; delivered when all are in. Pieces live
 * in memory (a handful of slots): the sender emits them back to back. */
static void handle_chunk(chp_msg *m, const struct tagent *te, const chp_inner *in, uint64_t created)
{
    chp_rd r;
    uint8_t msgid[MSGID_BYTES], type = 0;
    uint16_t idx = 0, count = 0;
    chp_rd_init(&r, in->payload, in->len);
    chp_rd_bytes(&r, msgid, MSGID_BYTES);
    chp_rd_u8(&r, &type);
    chp_rd_u16(&r, &idx);
    chp_rd_u16(&r, &count);
    size_t dl = chp_rd_left(&r);
    if (r.err || count < 2 || count > CHUNKS_MAX || idx >= count || dl == 0 ||
        (type != CHP_CT_TEXT && type != CHP_CT_ROOM))
        return;
    struct partial *p = NULL;
    size_t free_slot = SIZE_MAX, oldest = SIZE_MAX;
    for (size_t i = 0; i < sizeof m->parts / sizeof *m->parts; i++) {
        struct partial *q = m->parts[i];
        if (!q) {
            free_slot = i;
            continue;
        }
        if (!memcmp(q->msgid, msgid, MSGID_BYTES) && !memcmp(q->sender, in->sender, 32))
            p = q;
        else if (oldest == SIZE_MAX || q->created < m->parts[oldest]->created)
            oldest = i;
    }
    if (!p) {
        if (msg_hmsg_find(m, msgid, 0, in->sender))
            return;
        size_t slot = free_slot != SIZE_MAX ? free_slot : oldest;
        partial_free(&m->parts[slot]);
        if (!(p = m->parts[slot] = calloc(1, sizeof *p)))
            return;
        memcpy(p->msgid, msgid, MSGID_BYTES);
        memcpy(p->sender, in->sender, 32);
        p->type = type;
        p->count = count;
        p->created = created;
    }
    if (p->count != count || p->type != type || p->data[idx])
        return;
    if (!(p->data[idx] = malloc(dl)))
        return;
    chp_rd_bytes(&r, p->data[idx], dl);
    p->len[idx] = dl;
    if (created < p->created)
        p->created = created;
    if (++p->have < p->count)
        return;
    size_t total = 0;
    for (size_t i = 0; i < p->count; i++)
        total += p->len[i];
    uint8_t *body = malloc(total ? total : 1);
    if (body) {
        size_t off = 0;
        for (size_t i = 0; i < p->count; i++) {
            memcpy(body + off, p->data[i], p->len[i]);
            off += p->len[i];
        }
        deliver(m, te, p->sender, p->type, p->msgid, body, total, p->created);
        chp_memzero(body, total);
        free(body);
    }
    for (size_t i = 0; i < sizeof m->parts / sizeof *m->parts; i++)
        if (m->parts[i] == p)
            partial_free(&m->parts[i]);
}

int chp_msg_tag_mine(const chp_msg *m, const uint8_t tag[16])
{
    const struct tagent *te = m && m->me ? tag_find(m, tag) : NULL;
    return te && te->kind == TK_CONTACT;
}

/* The envelope part of chp_msg_on_envelope, once it is known to be new. */
static void examine(chp_msg *m, const uint8_t *env, size_t len)
{
    chp_env_hdr hdr;
    if (chp_envelope_parse(env, len, &hdr, NULL, NULL, NULL) != CHP_OK)
        return;
    const struct tagent *tp = tag_find(m, hdr.tag);
    if (!tp)
        return;             /* not ours: the common case, one lookup */
    struct tagent te = *tp; /* the table may be rebuilt below */
    uint8_t key[32];
    if (te.kind == TK_INTRO) {
        if (chp_ks_intro_key_recv(m->me, hdr.key, key) != CHP_OK)
            return;
    } else if (te.kind == TK_ROOM) {
        chp_ks_room_msg_key(m->r[te.idx].key, te.epoch, key);
    } else {
        uint8_t k[32];
        epoch_key(&m->c[te.idx], te.epoch, k);
        chp_ks_msg_key(k, m->c[te.idx].pk, key);
        chp_memzero(k, sizeof k);
    }
    uint8_t *pt = malloc(len);
    chp_inner in;
    int rc = pt ? chp_envelope_open(env, len, key, pt, len, &hdr, &in) : CHP_E_NOMEM;
    chp_memzero(key, sizeof key);
    if (rc != CHP_OK) {
        chp_debug("an envelope with one of our tags did not open: %s", chp_strerror(rc));
        free(pt);
        return;
    }
    const uint8_t *me = chp_identity_pk(m->me);
    int from_me = !memcmp(in.sender, me, 32);
    if (te.kind == TK_CONTACT) {
        if (memcmp(in.sender, m->c[te.idx].pk, 32))
            goto done; /* a tag of this contact, signed by someone else */
        tags_extend(m, te.idx, te.epoch, te.seq);
    }
    if (from_me)
        goto done;
    switch (in.type) {
    case CHP_CT_INTRO:
    case CHP_CT_ACCEPT:
        if (te.kind == TK_INTRO)
            handle_intro(m, &in, hdr.created);
        break;
    case CHP_CT_TEXT:
    case CHP_CT_ROOM:
        if (in.len > MSGID_BYTES)
            deliver(m, &te, in.sender, in.type, in.payload, in.payload + MSGID_BYTES,
                    in.len - MSGID_BYTES, hdr.created);
        break;
    case CHP_CT_RECEIPT:
        if (te.kind == TK_CONTACT)
            handle_receipt(m, &in);
        break;
    case CHP_CT_CHUNK:
        if (te.kind != TK_INTRO)
            handle_chunk(m, &te, &in, hdr.created);
        break;
    default:
        break;
    }
done:
    chp_memzero(pt, len);
    free(pt);
}

void chp_msg_on_envelope(chp_msg *m, const uint8_t *env, size_t len, const uint8_t id[32],
                         uint64_t seq)
{
    (void)id;
    if (!m->me || (seq && seq <= m->examined))
        return; /* locked: the unlock examines it; or the unlock already did */
    examine(m, env, len);
    if (seq > m->examined)
        m->examined = seq;
}

/* The store sequence up to which every envelope was examined, kept across
 * restarts (STORAGE.md, "Nothing stored is skipped"). Written from the
 * tick, so a crash re-examines at most a second of traffic: duplicates are
 * dropped by message id. */
static void examined_save(chp_msg *m)
{
    if (m->examined == m->examined_saved)
        return;
    uint8_t b[8];
    chp_put_be64(b, m->examined);
    if (chp_store_local_put(m->store, CHP_TABLE_CONFIG, "examined", 8, b, sizeof b) == CHP_OK)
        m->examined_saved = m->examined;
    else
        chp_warn("cannot store how far envelopes were examined");
}

static void examined_load(chp_msg *m)
{
    uint8_t *v = NULL;
    size_t vl = 0;
    m->examined = 0;
    if (chp_store_local_get(m->store, CHP_TABLE_CONFIG, "examined", 8, &v, &vl) == CHP_OK) {
        if (vl == 8)
            m->examined = chp_be64(v);
        chp_store_local_free(v, vl);
    }
    m->examined_saved = m->examined;
}

struct scan {
    chp_msg *m;
    uint8_t *buf;
    size_t n;
};

static int scan_one(void *ctx, const uint8_t id[32], uint64_t seq)
{
    struct scan *sc = ctx;
    size_t len = 0;
    chp_store_meta meta;
    chp_env_hdr hdr;
    if (chp_store_get(sc->m->store, id, sc->buf, CHP_ENV_MAX_BYTES, &len, &meta) == CHP_OK &&
        !meta.own) {
        examine(sc->m, sc->buf, len);
        sc->n++;
        /* Mail for us that came while locked was stored as foreign: from
         * now on the quota keeps it like the rest of ours. */
        if (!meta.mine && chp_envelope_parse(sc->buf, len, &hdr, NULL, NULL, NULL) == CHP_OK &&
            chp_msg_tag_mine(sc->m, hdr.tag) && chp_store_mark_mine(sc->m->store, id) != CHP_OK)
            chp_warn("cannot mark an envelope as ours for the quota");
    }
    if (seq > sc->m->examined)
        sc->m->examined = seq;
    return 0;
}

/* Every envelope that reached the store since the last one examined (all
 * of them the first time): what arrived while the identity was locked, or
 * between a commit and a crash. In (created, seq) order, so a handshake
 * answer is read before the messages under its keys. */
static void examine_stored(chp_msg *m)
{
    struct scan sc = {.m = m, .buf = malloc(CHP_ENV_MAX_BYTES)};
    if (!sc.buf) {
        chp_err_log("out of memory: envelopes stored while locked are examined at the next unlock");
        return;
    }
    uint64_t from = m->examined;
    int rc = chp_store_since(m->store, from, scan_one, &sc);
    free(sc.buf);
    if (rc != CHP_OK) {
        chp_err_log("cannot examine the stored envelopes: %s", chp_strerror(rc));
        m->examined = from; /* try again at the next unlock */
        return;
    }
    if (sc.n)
        chp_info("examined %zu envelopes stored since the last unlock", sc.n);
    examined_save(m);
}

/* ---- lifecycle ---- */

int chp_msg_new(chp_store *s, const char *home, const chp_msg_host *host, chp_msg **out)
{
    *out = NULL;
    chp_msg *m = calloc(1, sizeof *m);
    if (!m)
        return CHP_E_NOMEM;
    m->store = s;
    if (host)
        m->host = *host;
    snprintf(m->home, sizeof m->home, "%s", home);
    m->state = chp_account_exists(home) ? CHP_MSG_LOCKED : CHP_MSG_NO_IDENTITY;
    chp_rng_fill(chp_rng_system(), m->hidx_key, sizeof m->hidx_key);
    if (msg_sealer_start(&m->sealer, m->host.seal_inline) != CHP_OK) {
        chp_warn("no sealing thread: proof of work will run in the loop");
        (void)msg_sealer_start(&m->sealer, 1);
    }
    *out = m;
    return CHP_OK;
}

void msg_forget_all(chp_msg *m)
{
    seals_free(msg_sealer_cancel(&m->sealer)); /* before the identity it reads goes */
    if (m->c)
        chp_memzero(m->c, m->capc * sizeof *m->c);
    free(m->c);
    m->c = NULL;
    m->nc = m->capc = 0;
    if (m->r)
        chp_memzero(m->r, m->capr * sizeof *m->r);
    free(m->r);
    m->r = NULL;
    m->nr = m->capr = 0;
    for (size_t i = 0; i < m->nh; i++) {
        chp_memzero(m->h[i].text, m->h[i].textlen);
        free(m->h[i].text);
    }
    free(m->h);
    m->h = NULL;
    m->nh = m->caph = 0;
    free(m->seen);
    m->seen = NULL;
    m->nseen = m->capseen = 0;
    m->next_seq = 0;
    free(m->hidx);
    m->hidx = NULL;
    m->hidxcap = m->nhidx = 0;
    free(m->tags);
    m->tags = NULL;
    m->tagcap = m->ntags = 0;
    free(m->out);
    m->out = NULL;
    m->nout = m->capout = m->out_rot = 0;
    m->examined = m->examined_saved = 0;
    while (m->jobs) {
        struct job *j = m->jobs;
        m->jobs = j->next;
        job_free(j);
    }
    m->jobs_tail = NULL;
    for (size_t i = 0; i < sizeof m->parts / sizeof *m->parts; i++)
        partial_free(&m->parts[i]);
    chp_identity_destroy(&m->me);
}

void chp_msg_free(chp_msg **mp)
{
    if (!mp || !*mp)
        return;
    msg_forget_all(*mp);
    msg_sealer_stop(&(*mp)->sealer);
    free(*mp);
    *mp = NULL;
}

int chp_msg_lock_state(const chp_msg *m)
{
    return m->state;
}

static int load_contact(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    if (chp_grow_secret(&m->c, &m->capc, m->nc + 1, sizeof *m->c) != CHP_OK)
        return CHP_E_NOMEM;
    if (klen == 32 && msg_contact_load(&m->c[m->nc], key, val, vlen) == CHP_OK) {
        m->nc++;
    } else {
        chp_memzero(&m->c[m->nc], sizeof *m->c); /* what it read of the record */
        chp_warn("a damaged contact record was skipped");
    }
    return 0;
}

static int load_room(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    if (chp_grow_secret(&m->r, &m->capr, m->nr + 1, sizeof *m->r) != CHP_OK)
        return CHP_E_NOMEM;
    struct room *r = &m->r[m->nr];
    memset(r, 0, sizeof *r);
    if (klen < 2 || klen > CHP_ROOM_NAME_MAX || vlen != 34 || val[0] != REC_VERSION) {
        chp_warn("a damaged room record was skipped");
        return 0;
    }
    memcpy(r->name, key, klen);
    r->passphrase = val[1];
    memcpy(r->key, val + 2, 32);
    chp_ks_room_fingerprint(r->key, r->fpr);
    m->nr++;
    return 0;
}

static int load_outenv(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    if (klen != 32 || vlen != MSGID_BYTES)
        return 0; /* damaged: its message stays 'queued' */
    if (chp_grow(&m->out, &m->capout, m->nout + 1, sizeof *m->out) != CHP_OK)
        return CHP_E_NOMEM;
    memcpy(m->out[m->nout].id, key, 32);
    memcpy(m->out[m->nout].msgid, val, MSGID_BYTES);
    m->out[m->nout].added = msg_now(m);
    m->nout++;
    return 0;
}

static int load_hmsg(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    struct hmsg *h = msg_hmsg_add(m);
    if (!h)
        return CHP_E_NOMEM;
    if (msg_hmsg_load(h, key, klen, val, vlen) != CHP_OK) {
        m->nh--;
        chp_warn("a damaged message record was skipped");
    }
    return 0;
}

/* Messages are listed in the order they were written or arrived here,
 * before and after a restart alike. */
static int by_arrival(const void *a, const void *b)
{
    const struct hmsg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int msg_room_join(chp_msg *m, const char *canon, int passphrase, const uint8_t key[32])
{
    if (chp_grow_secret(&m->r, &m->capr, m->nr + 1, sizeof *m->r) != CHP_OK)
        return CHP_E_NOMEM;
    struct room *r = &m->r[m->nr];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", canon);
    r->passphrase = passphrase;
    memcpy(r->key, key, 32);
    chp_ks_room_fingerprint(r->key, r->fpr);
    int rc = msg_room_save(m, r);
    if (rc != CHP_OK)
        return rc;
    m->nr++;
    msg_tags_rebuild(m);
    return CHP_OK;
}

/* The handshake clock (msg_new_handshake_key): stored, and never behind a
 * key we hold. */
static void load_hs_time(chp_msg *m)
{
    uint8_t *v = NULL;
    size_t vl = 0;
    m->hs_time = 0;
    if (chp_store_local_get(m->store, CHP_TABLE_CONFIG, "hs-time", 7, &v, &vl) == CHP_OK) {
        if (vl == 8)
            for (size_t i = 0; i < 8; i++)
                m->hs_time = m->hs_time << 8 | v[i];
        chp_store_local_free(v, vl);
    }
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].my_time > m->hs_time)
            m->hs_time = m->c[i].my_time;
}

/* #lan is joined once, on the first unlock: a newcomer on a LAN sees the
 * others at once (and may leave it for good). */
static void join_lan_once(chp_msg *m)
{
    uint8_t *v = NULL;
    size_t vl = 0;
    if (chp_store_local_get(m->store, CHP_TABLE_CONFIG, "lan-joined", 10, &v, &vl) == CHP_OK) {
        chp_store_local_free(v, vl);
        return;
    }
    uint8_t key[32];
    if (!msg_room_by_name(m, "#lan") && chp_ks_room_public("#lan", 4, key) == CHP_OK)
        (void)msg_room_join(m, "#lan", 0, key);
    if (chp_store_local_put(m->store, CHP_TABLE_CONFIG, "lan-joined", 10, "1", 1) != CHP_OK)
        chp_warn("cannot remember that #lan was joined");
}

int chp_msg_unlock(chp_msg *m, chp_identity *id)
{
    uint8_t sk[32];
    chp_identity_storage_key(id, sk);
    int rc = chp_store_unlock(m->store, sk);
    chp_memzero(sk, sizeof sk);
    if (rc != CHP_OK) {
        chp_identity_destroy(&id);
        return rc;
    }
    msg_forget_all(m);
    m->me = id;
    if (chp_account_get_nick(m->store, m->nick) != CHP_OK)
        snprintf(m->nick, sizeof m->nick, "anon");
    rc = chp_store_local_each(m->store, CHP_TABLE_CONTACTS, load_contact, m);
    if (rc == CHP_OK)
        rc = chp_store_local_each(m->store, CHP_TABLE_ROOMS, load_room, m);
    if (rc == CHP_OK)
        rc = chp_store_local_each(m->store, CHP_TABLE_HISTORY, load_hmsg, m);
    if (rc == CHP_OK)
        rc = chp_store_local_each(m->store, CHP_TABLE_OUTBOX, load_outenv, m);
    if (rc != CHP_OK) {
        msg_forget_all(m);
        return rc;
    }
    if (m->nh)
        qsort(m->h, m->nh, sizeof *m->h, by_arrival);
    for (size_t i = 0; i < m->nh; i++)
        if (m->h[i].seq >= m->next_seq)
            m->next_seq = m->h[i].seq + 1;
    msg_hindex_rebuild(m);
    rooms_trim_all(m);
    msg_seen_rebuild(m);
    load_hs_time(m);
    join_lan_once(m);
    forget_old_keys(m, chp_epoch_of(msg_now(m)));
    msg_tags_rebuild(m);
    /* Whatever was accepted but never went out goes out now. */
    renew_requests(m, 1);
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        const struct contact *c = h->kind == CONV_DM ? msg_contact_by_pk(m, h->peer) : NULL;
        if (h->dir_out && !h->published &&
            (h->kind == CONV_ROOM ? msg_room_by_name(m, h->room) != NULL
                                  : c && c->state == CS_ESTABLISHED))
            (void)msg_queue_hmsg(m, h);
    }
    examined_load(m);
    examine_stored(m);
    m->state = CHP_MSG_READY;
    return CHP_OK;
}

int chp_msg_queue_raw(chp_msg *m, const char *to, uint8_t type, const uint8_t *payload, size_t len)
{
    if (!m->me || len > CHP_PAYLOAD_MAX)
        return CHP_E_ARG;
    if (to[0] == '#')
        return msg_room_by_name(m, to) ? job_add(m, JOB_ROOM, NULL, to, type, payload, len, NULL, 1)
                                       : CHP_E_NOT_FOUND;
    if (type == CHP_CT_INTRO || type == CHP_CT_ACCEPT) {
        uint8_t pk[32];
        int rc = chp_id_parse(to, strlen(to), pk);
        return rc != CHP_OK ? rc : job_add(m, JOB_INTRO, pk, NULL, type, payload, len, NULL, 1);
    }
    const struct contact *c = msg_contact_by_name(m, to);
    return c ? job_add(m, JOB_DM, c->pk, NULL, type, payload, len, NULL, 1) : CHP_E_NOT_FOUND;
}
