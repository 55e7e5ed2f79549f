/* msg.c - the messaging layer (msg.h; PROTOCOL.md §18-22): its
 * lifecycle (new, unlock, forget, free), its timers, and what it loads at
 * the unlock. The parts, from the bottom up, each calling only those
 * before it: msg_seal.c (the sealing thread), msg_rec.c (records, lookups,
 * labels), msg_tags.c (which envelopes are ours), msg_out.c (what goes
 * out), msg_flood.c (posting rates), msg_voice.c (voice notes' durations),
 * msg_fdig.c (a received file's piece digests), msg_file.c (files),
 * msg_filectl.c (the file commands), msg_contact.c (handshakes and keys),
 * msg_in.c (what comes in), this file, and msg_ctl.c (the control
 * commands).
 *
 * Everything the user has lives in memory while unlocked (contacts, rooms,
 * message history) and is written through to the store's encrypted local
 * tables on every change, so a kill -9 loses nothing that was answered
 * "ok". */
#include "node/msg/msg_int.h"

#include "proto/buf.h"
#include "proto/crypto.h"
#include "proto/id.h"
#include "node/common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    chp_msgi_files_init(m);
    if (chp_sealer_start(&m->sealer, m->host.seal_inline) != CHP_OK) {
        chp_warn("no sealing thread: proof of work will run in the loop");
        (void)chp_sealer_start(&m->sealer, 1);
    }
    *out = m;
    return CHP_OK;
}

void chp_msgi_forget_all(chp_msg *m)
{
    chp_msgi_out_clear(m); /* first: the sealer stops reading the identity */
    chp_msgi_files_free(m);
    free(m->miss);
    m->miss = NULL;
    m->miss_pos = 0;
    if (m->opened)
        chp_memzero(m->opened, OPENED_MAX * sizeof *m->opened);
    free(m->opened);
    m->opened = NULL;
    m->opened_head = m->opened_n = 0;
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
    chp_msgi_flood_free(m);
    m->seen = NULL;
    m->nseen = m->capseen = 0;
    m->next_seq = 0;
    free(m->hidx);
    m->hidx = NULL;
    m->hidxcap = m->nhidx = 0;
    free(m->tags);
    m->tags = NULL;
    m->tagcap = m->ntags = 0;
    m->examined = m->examined_saved = 0;
    chp_msgi_partials_free(m);
    chp_identity_destroy(&m->me);
}

void chp_msg_free(chp_msg **mp)
{
    if (!mp || !*mp)
        return;
    /* A clean stop keeps what the tick would have: the pieces received
     * since (in memory until then), the contacts' tag windows, how far
     * the store was examined. */
    if ((*mp)->me && (*mp)->state == CHP_MSG_READY)
        chp_msgi_examined_save(*mp);
    chp_msgi_forget_all(*mp);
    chp_sealer_stop(&(*mp)->sealer);
    free(*mp);
    *mp = NULL;
}

int chp_msg_lock_state(const chp_msg *m)
{
    return m->state;
}

const char *chp_msg_nick(const chp_msg *m)
{
    return m->state == CHP_MSG_READY ? m->nick : "";
}

static int load_contact(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    if (chp_grow_secret(&m->c, &m->capc, m->nc + 1, sizeof *m->c) != CHP_OK)
        return CHP_E_NOMEM;
    if (klen == 32 && chp_msgi_contact_load(&m->c[m->nc], key, val, vlen) == CHP_OK) {
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

static int load_hmsg(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    struct hmsg *h = chp_msgi_hmsg_add(m);
    if (!h)
        return CHP_E_NOMEM;
    if (chp_msgi_hmsg_load(h, key, klen, val, vlen) != CHP_OK) {
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

int chp_msgi_room_join(chp_msg *m, const char *canon, int passphrase, const uint8_t key[32])
{
    if (chp_grow_secret(&m->r, &m->capr, m->nr + 1, sizeof *m->r) != CHP_OK)
        return CHP_E_NOMEM;
    struct room *r = &m->r[m->nr];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", canon);
    r->passphrase = passphrase;
    memcpy(r->key, key, 32);
    chp_ks_room_fingerprint(r->key, r->fpr);
    int rc = chp_msgi_room_save(m, r);
    if (rc != CHP_OK)
        return rc;
    m->nr++;
    chp_msgi_tags_rebuild(m);
    return CHP_OK;
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
    if (!chp_msgi_room_by_name(m, "#lan") && chp_ks_room_public("#lan", 4, key) == CHP_OK)
        (void)chp_msgi_room_join(m, "#lan", 0, key);
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
    chp_msgi_forget_all(m);
    m->me = id;
    if (chp_account_get_nick(m->store, m->nick) != CHP_OK)
        snprintf(m->nick, sizeof m->nick, "anon");
    rc = chp_store_local_each(m->store, CHP_TABLE_CONTACTS, load_contact, m);
    if (rc == CHP_OK)
        rc = chp_store_local_each(m->store, CHP_TABLE_ROOMS, load_room, m);
    if (rc == CHP_OK)
        rc = chp_store_local_each(m->store, CHP_TABLE_HISTORY, load_hmsg, m);
    if (rc == CHP_OK)
        rc = chp_msgi_out_load(m);
    if (rc == CHP_OK)
        rc = chp_msgi_files_load(m);
    if (rc != CHP_OK) {
        chp_msgi_forget_all(m);
        return rc;
    }
    if (m->nh)
        qsort(m->h, m->nh, sizeof *m->h, by_arrival);
    for (size_t i = 0; i < m->nh; i++)
        if (m->h[i].seq >= m->next_seq)
            m->next_seq = m->h[i].seq + 1;
    chp_msgi_hindex_rebuild(m);
    chp_msgi_rooms_trim_all(m);
    chp_msgi_seen_rebuild(m);
    chp_msgi_hs_time_load(m);
    join_lan_once(m);
    chp_msgi_forget_old_keys(m, chp_epoch_of(chp_msgi_now(m)));
    chp_msgi_tags_rebuild(m);
    /* Whatever was accepted but never went out goes out now. */
    chp_msgi_renew_requests(m, 1);
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        const struct contact *c = h->kind == CONV_DM ? chp_msgi_contact_by_pk(m, h->peer) : NULL;
        if (h->dir_out && !h->published &&
            (h->kind == CONV_ROOM ? chp_msgi_room_by_name(m, h->room) != NULL
                                  : c && c->state == CS_ESTABLISHED))
            (void)chp_msgi_queue_hmsg(m, h);
    }
    chp_msgi_examine_stored(m);
    m->state = CHP_MSG_READY;
    return CHP_OK;
}

void chp_msg_tick(chp_msg *m)
{
    if (!m->me)
        return;
    uint64_t now_e = chp_epoch_of(chp_msgi_now(m));
    if (now_e != m->tags_epoch) {
        chp_msgi_forget_old_keys(m, now_e);
        chp_msgi_tags_rebuild(m);
    }
    chp_msgi_renew_requests(m, 0);
    chp_msgi_out_prune(m);
    chp_msgi_pace_release(m);
    chp_msgi_examined_save(m);
}

int chp_msg_queue_raw(chp_msg *m, const char *to, uint8_t type, const uint8_t *payload, size_t len)
{
    if (!m->me || len > CHP_PAYLOAD_MAX)
        return CHP_E_ARG;
    if (to[0] == '#')
        return chp_msgi_room_by_name(m, to)
                   ? chp_msgi_job_add(m, JOB_ROOM, NULL, to, type, payload, len, NULL, 1)
                   : CHP_E_NOT_FOUND;
    if (type == CHP_CT_INTRO || type == CHP_CT_ACCEPT) {
        uint8_t pk[32];
        int rc = chp_id_parse(to, strlen(to), pk);
        return rc != CHP_OK ? rc
                            : chp_msgi_job_add(m, JOB_INTRO, pk, NULL, type, payload, len, NULL, 1);
    }
    const struct contact *c = chp_msgi_contact_by_name(m, to);
    return c ? chp_msgi_job_add(m, JOB_DM, c->pk, NULL, type, payload, len, NULL, 1)
             : CHP_E_NOT_FOUND;
}
