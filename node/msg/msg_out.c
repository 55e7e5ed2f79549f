/* msg_out.c - what the layer publishes: jobs (one envelope each, a
 * message's envelopes or chunks, receipts, handshakes) prepared here in
 * order, since they move the contacts' counters, sealed by the sealer
 * (msg_seal.c) and handed out one per chp_msg_take; then the own
 * envelopes no neighbour has confirmed holding yet, which say when a
 * message is "sent". */
#include "node/msg/msg_int.h"

#include "proto/buf.h"
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/hex.h"
#include "node/common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- jobs ---- */

int chp_msgi_job_add(chp_msg *m, int kind, const uint8_t *to, const char *room, uint8_t type,
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
    chp_msgi_job_append(&m->jobs, &m->jobs_tail, j);
    return CHP_OK;
}

void chp_msgi_job_free(struct job *j)
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
    chp_msgi_job_free(s->job);
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
        int rc = chp_msgi_job_add(m, kind, to, room, type, p, MSGID_BYTES + blen, msgid, 1);
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
                   : chp_msgi_job_add(m, kind, to, room, CHP_CT_CHUNK, p, w.off, msgid,
                                      i + 1 == count);
    }
    free(p);
    return rc;
}

/* The body of an own history entry as it goes on the wire (new envelopes:
 * any earlier ones of it no longer count for its "sent" state). */
int chp_msgi_queue_hmsg(chp_msg *m, const struct hmsg *h)
{
    if (m->fh.requeue && m->fh.requeue(m, h))
        return CHP_OK; /* a file: its pieces are fed from its record */
    chp_msgi_out_forget_msg(m, h->msgid);
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

int chp_msgi_queue_intro(chp_msg *m, const struct contact *c, uint8_t type)
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
    int rc = chp_msgi_job_add(m, JOB_INTRO, c->pk, NULL, type, p, n, NULL, 1);
    if (rc == CHP_OK)
        m->jobs_tail->created = c->my_time; /* t_X of §9.2: the key's own time */
    return rc;
}

void chp_msgi_jobs_drop(chp_msg *m, const uint8_t pk[32])
{
    struct job **pp = &m->jobs, *last = NULL;
    while (*pp) {
        struct job *j = *pp;
        if (j->kind != JOB_ROOM && !memcmp(j->to, pk, 32)) {
            *pp = j->next;
            chp_msgi_job_free(j);
            continue;
        }
        last = j;
        pp = &j->next;
    }
    m->jobs_tail = last;
}

/* ---- own envelopes until a neighbour holds them ---- */

void chp_msgi_set_state(chp_msg *m, struct hmsg *h, int st)
{
    if (h->state >= st)
        return;
    h->state = st;
    (void)chp_msgi_hmsg_save(m, h);
    char id[2 * MSGID_BYTES + 1];
    chp_hex_encode(h->msgid, MSGID_BYTES, id);
    chp_msgi_emit(m, "state", "%s\t%s", id, st == MS_DELIVERED ? "delivered" : "sent");
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
    m->out[m->nout].added = chp_msgi_now(m);
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
void chp_msgi_out_forget_msg(chp_msg *m, const uint8_t msgid[MSGID_BYTES])
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
    struct hmsg *h = chp_msgi_hmsg_find(m, j->msgid, 1, chp_identity_pk(m->me));
    if (!h)
        return; /* a resent chunk of a message no longer in the history */
    out_add(m, id, j->msgid);
    if (j->last && !h->published) {
        h->published = 1;
        (void)chp_msgi_hmsg_save(m, h);
    }
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
        struct hmsg *h = chp_msgi_hmsg_find(m, msgid, 1, chp_identity_pk(m->me));
        if (h && h->published && !out_has_msg(m, msgid))
            chp_msgi_set_state(m, h, MS_SENT);
        return;
    }
}

/* Own envelopes that left the store unconfirmed (expired, or the store was
 * wiped around them) will never be confirmed: forget them, once a minute. */
void chp_msgi_out_prune(chp_msg *m)
{
    uint64_t t = chp_msgi_now(m);
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

static int load_outenv(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    if (klen != 32 || vlen != MSGID_BYTES)
        return 0; /* damaged: its message stays 'queued' */
    if (chp_grow(&m->out, &m->capout, m->nout + 1, sizeof *m->out) != CHP_OK)
        return CHP_E_NOMEM;
    memcpy(m->out[m->nout].id, key, 32);
    memcpy(m->out[m->nout].msgid, val, MSGID_BYTES);
    m->out[m->nout].added = chp_msgi_now(m);
    m->nout++;
    return 0;
}

int chp_msgi_out_load(chp_msg *m)
{
    return chp_store_local_each(m->store, CHP_TABLE_OUTBOX, load_outenv, m);
}

static void jobs_free(struct job **l)
{
    while (*l) {
        struct job *j = *l;
        *l = j->next;
        chp_msgi_job_free(j);
    }
}

void chp_msgi_out_clear(chp_msg *m)
{
    seals_free(chp_sealer_cancel(&m->sealer)); /* before the identity it reads goes */
    jobs_free(&m->jobs);
    jobs_free(&m->paced);
    m->jobs_tail = m->paced_tail = NULL;
    free(m->out);
    m->out = NULL;
    m->nout = m->capout = m->out_rot = 0;
}

/* ---- sealing, one envelope per chp_msg_take ---- */

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
        const struct room *r = chp_msgi_room_by_name(m, j->room);
        if (!r)
            return CHP_E_NOT_FOUND;
        chp_ks_room_tag(r->key, e, tag);
        chp_ks_room_msg_key(r->key, e, key);
        a->expiry = t + TTL_ENV;
        return CHP_OK;
    }
    struct contact *c = chp_msgi_contact_by_pk(m, j->to);
    if (!c || c->state != CS_ESTABLISHED)
        return CHP_E_NOT_FOUND;
    if (e < c->base_epoch)
        e = c->base_epoch;
    if (c->send_epoch != e) {
        c->send_epoch = e;
        c->send_seq = 0;
    }
    uint8_t k[32];
    chp_msgi_epoch_key(c, e, k);
    chp_ks_tag(k, c->pk, c->send_seq++, tag);
    chp_ks_msg_key(k, chp_identity_pk(m->me), key);
    chp_memzero(k, sizeof k);
    a->expiry = t + TTL_ENV;
    return chp_msgi_contact_save(m, c);
}

/* Job j as an envelope to seal: its keys and header made here, in order,
 * since they move the contact's counters. NULL when its contact or room
 * is gone (the job is then freed). */
static struct seal *prepare(chp_msg *m, struct job *j)
{
    struct seal *s = calloc(1, sizeof *s);
    if (!s) {
        chp_msgi_job_free(j);
        return NULL;
    }
    s->job = j;
    int rc =
        job_keys(m, j, j->created ? j->created : chp_msgi_now(m), &s->a, s->tag, s->key, s->epk);
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

int chp_msg_has_outgoing(chp_msg *m)
{
    return m->me && (m->jobs != NULL || chp_sealer_has_done(&m->sealer));
}

int chp_msg_pending(chp_msg *m)
{
    return m->me && (m->jobs != NULL || m->paced != NULL || chp_sealer_pending(&m->sealer));
}

int chp_msg_fd(const chp_msg *m)
{
    return m->sealer.running ? m->sealer.efd : -1;
}

int chp_msg_take(chp_msg *m, uint8_t **env, size_t *len)
{
    if (m->me && m->fh.feed)
        m->fh.feed(m); /* a file's next pieces */
    while (m->me && m->jobs) {
        struct job *j = m->jobs;
        m->jobs = j->next;
        if (!m->jobs)
            m->jobs_tail = NULL;
        if (chp_msgi_pace_hold(m, j))
            continue;
        struct seal *s = prepare(m, j);
        if (s)
            chp_sealer_push(&m->sealer, s);
    }
    struct seal *s;
    while (m->me && (s = chp_sealer_pop(&m->sealer))) {
        if (s->rc != CHP_OK) {
            chp_err_log("cannot seal a message envelope: %s", chp_strerror(s->rc));
            seal_free(s);
            continue;
        }
        uint8_t id[32];
        memcpy(id, s->id, sizeof id); /* the sealer's, from its own hashing pass */
        note_published(m, s->job, id);
        if (m->fh.published)
            m->fh.published(m, s->job);
        *env = s->out;
        *len = s->outlen;
        s->out = NULL;
        seal_free(s);
        return 1;
    }
    return 0;
}
