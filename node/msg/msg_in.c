/* msg_in.c - envelopes in: one tag lookup, then open and handle them
 * (direct messages, room posts, receipts, chunks, handshakes); room
 * history kept within bounds; and every envelope stored while the layer
 * was locked examined at the unlock, so none is ever skipped. */
#include "node/msg/msg_int.h"

#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/hex.h"
#include "node/common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages ---- */

static void queue_receipt(chp_msg *m, const uint8_t to[32], const uint8_t msgid[MSGID_BYTES])
{
    uint8_t p[1 + MSGID_BYTES];
    p[0] = 1;
    memcpy(p + 1, msgid, MSGID_BYTES);
    (void)chp_msgi_job_add(m, JOB_DM, to, NULL, CHP_CT_RECEIPT, p, sizeof p, NULL, 1);
}

/* A line of our own in room, before the post that shows pk under a new
 * nick: "~ali (jqn8znuw) is now known as ~bob (jqn8znuw)", or for a
 * contact "sara changed nick from ali to bob". Its sender is "*", which
 * no post can have, so a post's text cannot pass for one. */
static void announce_nick(chp_msg *m, const char *room, const uint8_t pk[32], const char *old,
                          const char *nick, uint64_t t)
{
    char text[3 * CHP_NICK_MAX + 96];
    const struct contact *c = chp_msgi_named_contact(m, pk);
    if (c) {
        snprintf(text, sizeof text, "%s changed nick from %s to %s", c->name, old[0] ? old : "?",
                 nick[0] ? nick : "?");
    } else {
        char a[CHP_NICK_MAX + 32], b[CHP_NICK_MAX + 32];
        chp_msgi_sender_label(m, pk, old, a, sizeof a);
        chp_msgi_sender_label(m, pk, nick, b, sizeof b);
        snprintf(text, sizeof text, "%s is now known as %s", a, b);
    }
    size_t tl = strlen(text);
    struct hmsg *h = chp_msgi_hmsg_add(m);
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
    const struct room *rm = chp_msgi_room_by_name(m, room);
    if (rm)
        memcpy(h->rfpr, rm->fpr, sizeof h->rfpr);
    memcpy(h->sender, pk, 32);
    snprintf(h->nick, sizeof h->nick, "%s", nick);
    h->time = t;
    chp_rng_fill(chp_rng_system(), h->msgid, MSGID_BYTES);
    (void)chp_msgi_hmsg_save(m, h);
    (void)chp_msgi_hindex_put(m, (size_t)(h - m->h));
    chp_msgi_emit_message(m, h);
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
            keys[k].klen = (size_t)chp_msgi_hmsg_key(&m->h[i], kb[k]);
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
    chp_msgi_hindex_rebuild(m);
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
                (pass == 0 && chp_msgi_named_contact(m, h->sender)))
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
void chp_msgi_rooms_trim_all(chp_msg *m)
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

/* ---- payloads ---- */

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
            chp_msgi_copy_str(nick, sizeof nick, body + 1, body[0]);
        blen -= 1u + body[0];
        body += 1u + body[0];
    } else if (type != CHP_CT_TEXT || te->kind != TK_CONTACT) {
        return;
    }
    if (blen == 0 || blen > TEXT_MAX || !chp_utf8_valid((const char *)body, blen))
        return;
    const struct contact *bc = chp_msgi_contact_by_pk(m, sender);
    if (bc && bc->state == CS_BLOCKED)
        return; /* blocked: not their DMs, not their room posts either */
    if (chp_msgi_hmsg_find(m, msgid, 0, sender)) {
        /* a copy (resent chunks, a replay, a resend after a re-key whose
         * first receipt may not have been readable) */
        if (type == CHP_CT_TEXT)
            queue_receipt(m, sender, msgid);
        return;
    }
    char old[CHP_NICK_MAX + 1];
    if (type == CHP_CT_ROOM &&
        chp_msgi_seen_note(m, m->r[te->idx].name, sender, nick, created, old))
        announce_nick(m, m->r[te->idx].name, sender, old, nick, created);
    struct hmsg *h = chp_msgi_hmsg_add(m);
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
    (void)chp_msgi_hmsg_save(m, h);
    (void)chp_msgi_hindex_put(m, (size_t)(h - m->h));
    chp_msgi_emit_message(m, h);
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
        struct hmsg *h = chp_msgi_hmsg_find(m, id, 1, chp_identity_pk(m->me));
        if (h && h->kind == CONV_DM && !memcmp(h->peer, in->sender, 32))
            chp_msgi_set_state(m, h, MS_DELIVERED);
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

void chp_msgi_partials_free(chp_msg *m)
{
    for (size_t i = 0; i < sizeof m->parts / sizeof *m->parts; i++)
        partial_free(&m->parts[i]);
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
        if (chp_msgi_hmsg_find(m, msgid, 0, in->sender))
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

/* ---- envelopes ---- */

static int examine(chp_msg *m, const uint8_t *env, size_t len, const struct opened *note);

/* Envelopes whose tag was not in the table when they came, the last
 * MISS_MAX of them: a contact's seq-numbered tags are computed only
 * TAG_WINDOW past the highest seen, and sync hands over a burst (a
 * file's pieces) in (created, id) order, not in seq order. When the
 * window grows they are looked at again (tag first, in memory). */
static void miss_note(chp_msg *m, const uint8_t *env, size_t len, const uint8_t id[32])
{
    if (len < CHP_ENV_HDR_BYTES || !id)
        return;
    if (!m->miss && !(m->miss = calloc(MISS_MAX, sizeof *m->miss)))
        return;
    struct miss *x = &m->miss[m->miss_pos++ % MISS_MAX];
    memcpy(x->id, id, 32);
    memcpy(x->tag, env + 17, 16);
    x->used = 1;
}

static void miss_rescan(chp_msg *m)
{
    uint8_t *buf = NULL;
    while (m->tags_grew && m->miss) {
        m->tags_grew = 0;
        for (size_t i = 0; i < MISS_MAX; i++) {
            struct miss *x = &m->miss[i];
            size_t len = 0;
            if (!x->used || !chp_msgi_tag_find(m, x->tag))
                continue;
            x->used = 0;
            if (!buf && !(buf = malloc(CHP_ENV_MAX_BYTES)))
                return;
            if (chp_store_get(m->store, x->id, buf, CHP_ENV_MAX_BYTES, &len, NULL) != CHP_OK)
                continue;
            if (chp_msg_tag_mine(m, x->tag) && chp_store_mark_mine(m->store, x->id) != CHP_OK)
                chp_warn("cannot mark an envelope as ours for the quota");
            (void)examine(m, buf, len, NULL);
        }
    }
    free(buf);
}

/* The live note of the post with id, or NULL. Posts are examined in the
 * order they were noted: the first live one is normally it. */
static struct opened *opened_find(chp_msg *m, const uint8_t *id)
{
    for (size_t i = 0; id && m->opened && i < m->opened_n; i++) {
        struct opened *o = &m->opened[(m->opened_head - m->opened_n + i) % OPENED_MAX];
        if (o->live && !memcmp(o->id, id, 32)) /* ids are public: a plain compare */
            return o;
    }
    return NULL;
}

static void opened_drop(chp_msg *m, struct opened *o)
{
    o->live = 0;
    while (m->opened_n && !m->opened[(m->opened_head - m->opened_n) % OPENED_MAX].live)
        m->opened_n--;
}

static void opened_note(chp_msg *m, const uint8_t id[32], const uint8_t kfp[16],
                        const uint8_t digest[32])
{
    if (!m->opened && !(m->opened = calloc(OPENED_MAX, sizeof *m->opened)))
        return;
    struct opened *o = &m->opened[m->opened_head++ % OPENED_MAX];
    memcpy(o->id, id, 32);
    memcpy(o->digest, digest, 32);
    memcpy(o->kfp, kfp, sizeof o->kfp);
    o->live = 1;
    if (m->opened_n < OPENED_MAX)
        m->opened_n++;
}

/* Opens env (its tag te is ours) into pt (len bytes, malloc'd; the caller
 * wipes and frees it, also on failure); digest gets its payload's
 * BLAKE2b. note: the refuse hook's note of these very bytes (or NULL):
 * under the same key, the signature it verified is not verified again.
 * kfp (or NULL) gets the key's fingerprint, for a note. */
static int env_open(chp_msg *m, const struct tagent *te, const uint8_t *env, size_t len,
                    const struct opened *note, uint8_t *kfp, chp_env_hdr *hdr, uint8_t **pt,
                    chp_inner *in, uint8_t digest[32])
{
    uint8_t key[32], fp[16];
    *pt = NULL;
    if (te->kind == TK_INTRO) {
        if (chp_ks_intro_key_recv(m->me, hdr->key, key) != CHP_OK)
            return CHP_E_DH;
    } else if (te->kind == TK_ROOM) {
        chp_ks_room_msg_key(m->r[te->idx].key, te->epoch, key);
    } else {
        uint8_t k[32];
        chp_msgi_epoch_key(&m->c[te->idx], te->epoch, k);
        chp_ks_msg_key(k, m->c[te->idx].pk, key);
        chp_memzero(k, sizeof k);
    }
    const uint8_t *verified = NULL;
    if (note || kfp) {
        chp_hash(fp, sizeof fp, key, sizeof key, NULL, 0);
        if (note && chp_memeq(note->kfp, fp, sizeof fp))
            verified = note->digest;
        if (kfp)
            memcpy(kfp, fp, sizeof fp);
    }
    *pt = malloc(len);
    int rc = *pt ? chp_envelope_open_ex(env, len, key, *pt, len, hdr, in, verified, digest)
                 : CHP_E_NOMEM;
    chp_memzero(key, sizeof key);
    chp_memzero(fp, sizeof fp);
    return rc;
}

int chp_msg_refuse(chp_msg *m, const uint8_t *env, size_t len, const uint8_t id[32],
                   const uint8_t *src)
{
    chp_env_hdr hdr;
    if (!m || !m->me || chp_envelope_parse(env, len, &hdr, NULL, NULL, NULL) != CHP_OK)
        return 0;
    const struct tagent *tp = chp_msgi_tag_find(m, hdr.tag);
    if (!tp || tp->kind != TK_ROOM)
        return 0; /* only room posts are judged: the common case, one lookup */
    struct tagent te = *tp;
    uint8_t *pt = NULL, digest[32], kfp[16];
    chp_inner in;
    int rc = env_open(m, &te, env, len, NULL, kfp, &hdr, &pt, &in, digest);
    int refuse =
        rc == CHP_OK && chp_msgi_flood_refuse(m, m->r[te.idx].name, in.sender, in.type, src);
    if (rc == CHP_OK && !refuse) /* stored next, then examined */
        opened_note(m, id, kfp, digest);
    if (pt)
        chp_memzero(pt, len);
    free(pt);
    chp_memzero(digest, sizeof digest);
    chp_memzero(kfp, sizeof kfp);
    return refuse;
}

/* The envelope part of chp_msg_on_envelope, once it is known to be new. */
static int examine(chp_msg *m, const uint8_t *env, size_t len, const struct opened *note)
{
    chp_env_hdr hdr;
    if (chp_envelope_parse(env, len, &hdr, NULL, NULL, NULL) != CHP_OK)
        return 1;
    const struct tagent *tp = chp_msgi_tag_find(m, hdr.tag);
    if (!tp)
        return 0;           /* not ours: the common case, one lookup */
    struct tagent te = *tp; /* the table may be rebuilt below */
    uint8_t *pt = NULL, digest[32];
    chp_inner in;
    int rc = env_open(m, &te, env, len, note, NULL, &hdr, &pt, &in, digest);
    if (rc != CHP_OK) {
        chp_debug("an envelope with one of our tags did not open: %s", chp_strerror(rc));
        free(pt);
        return 1;
    }
    const uint8_t *me = chp_identity_pk(m->me);
    int from_me = !memcmp(in.sender, me, 32);
    if (te.kind == TK_CONTACT) {
        if (memcmp(in.sender, m->c[te.idx].pk, 32))
            goto done; /* a tag of this contact, signed by someone else */
        chp_msgi_tags_extend(m, te.idx, te.epoch, te.seq);
    }
    if (from_me || (m->files_only && in.type != CHP_CT_FILE && in.type != CHP_CT_PIECE))
        goto done;
    switch (in.type) {
    case CHP_CT_INTRO:
    case CHP_CT_ACCEPT:
        if (te.kind == TK_INTRO)
            chp_msgi_handle_intro(m, &in, hdr.created);
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
    case CHP_CT_FILE:
    case CHP_CT_PIECE:
        chp_msgi_file_in(m, &te, &in, hdr.created, digest);
        break;
    default:
        break;
    }
done:
    chp_memzero(pt, len);
    free(pt);
    chp_memzero(digest, sizeof digest);
    return 1;
}

void chp_msg_on_envelope(chp_msg *m, const uint8_t *env, size_t len, const uint8_t id[32],
                         uint64_t seq)
{
    if (!m->me || (seq && seq <= m->examined))
        return; /* locked: the unlock examines it; or the unlock already did */
    /* the refuse hook's note: used here only, where the bytes are those
     * the mesh's check made id of (what is read back from the store is
     * verified whole), and dropped whether examine used it or not */
    struct opened *note = opened_find(m, id);
    if (!examine(m, env, len, note))
        miss_note(m, env, len, id);
    if (note)
        opened_drop(m, note);
    miss_rescan(m);
    if (seq > m->examined)
        m->examined = seq;
}

/* The store sequence up to which every envelope was examined, kept across
 * restarts (STORAGE.md, "Nothing stored is skipped"). Written from the
 * tick, so a crash re-examines at most a second of traffic: duplicates are
 * dropped by message id. */
void chp_msgi_examined_save(chp_msg *m)
{
    chp_msgi_tags_save(m);  /* first: a restart rebuilds the tags from them */
    chp_msgi_files_sync(m); /* first: what they hold must not be skipped (a
                             * piece read again from the misses may be older) */
    if (m->examined == m->examined_saved)
        return;
    if (chp_msgi_config_put_u64(m, "examined", m->examined) == CHP_OK)
        m->examined_saved = m->examined;
    else
        chp_warn("cannot store how far envelopes were examined");
}

static void examined_load(chp_msg *m)
{
    m->examined = m->examined_saved = chp_msgi_config_u64(m, "examined");
}

struct scan {
    chp_msg *m;
    uint8_t *buf;
    size_t n;
    uint64_t seen; /* examined before this unlock: only the misses count */
    int files;     /* an incoming file is incomplete: its pieces are read again */
};

/* An envelope examined before this unlock (seq <= sc->seen). One whose
 * tag is unknown goes back on the miss ring, which lived in memory only,
 * so a window that grows later (a file's manifest or pieces after a
 * restart) still finds it. A contact's not read as ours then (not marked
 * mine) is read now. While a file is incomplete, the file envelopes of
 * contacts and rooms are read again: pieces read from the misses just
 * before a crash waited in memory (msg_file.c) and are not otherwise
 * examined again. */
static void scan_missed(struct scan *sc, const uint8_t id[32], size_t len, int mine)
{
    chp_env_hdr hdr;
    if (chp_envelope_parse(sc->buf, len, &hdr, NULL, NULL, NULL) != CHP_OK)
        return;
    const struct tagent *te = chp_msgi_tag_find(sc->m, hdr.tag);
    if (!te) {
        miss_note(sc->m, sc->buf, len, id);
        return;
    }
    if (te->kind == TK_CONTACT && !mine) {
        if (chp_store_mark_mine(sc->m->store, id) != CHP_OK)
            chp_warn("cannot mark an envelope as ours for the quota");
        (void)examine(sc->m, sc->buf, len, NULL);
    } else if (sc->files && te->kind != TK_INTRO) {
        sc->m->files_only = 1;
        (void)examine(sc->m, sc->buf, len, NULL);
        sc->m->files_only = 0;
    }
    miss_rescan(sc->m);
}

static int scan_one(void *ctx, const uint8_t id[32], uint64_t seq)
{
    struct scan *sc = ctx;
    size_t len = 0;
    chp_store_meta meta;
    chp_env_hdr hdr;
    if (chp_store_get(sc->m->store, id, sc->buf, CHP_ENV_MAX_BYTES, &len, &meta) != CHP_OK ||
        meta.own)
        return 0;
    if (seq <= sc->seen) {
        scan_missed(sc, id, len, meta.mine);
        return 0;
    }
    if (!examine(sc->m, sc->buf, len, NULL))
        miss_note(sc->m, sc->buf, len, id);
    miss_rescan(sc->m);
    sc->n++;
    /* Mail for us that came while locked was stored as foreign: from
     * now on the quota keeps it like the rest of ours. */
    if (!meta.mine && chp_envelope_parse(sc->buf, len, &hdr, NULL, NULL, NULL) == CHP_OK &&
        chp_msg_tag_mine(sc->m, hdr.tag) && chp_store_mark_mine(sc->m->store, id) != CHP_OK)
        chp_warn("cannot mark an envelope as ours for the quota");
    if (seq > sc->m->examined)
        sc->m->examined = seq;
    return 0;
}

/* Every envelope that reached the store since the last one examined (all
 * of them the first time): what arrived while the identity was locked, or
 * between a commit and a crash. In (created, seq) order, so a handshake
 * answer is read before the messages under its keys. */
void chp_msgi_examine_stored(chp_msg *m)
{
    examined_load(m);
    struct scan sc = {.m = m,
                      .buf = malloc(CHP_ENV_MAX_BYTES),
                      .seen = m->examined,
                      .files = chp_msgi_files_incomplete(m)};
    if (!sc.buf) {
        chp_err_log("out of memory: envelopes stored while locked are examined at the next unlock");
        return;
    }
    uint64_t from = m->examined;
    /* the last MISS_MAX examined before too: the misses' ring again */
    int rc = chp_store_since(m->store, from > MISS_MAX ? from - MISS_MAX : 0, scan_one, &sc);
    free(sc.buf);
    if (rc != CHP_OK) {
        chp_err_log("cannot examine the stored envelopes: %s", chp_strerror(rc));
        m->examined = from; /* try again at the next unlock */
        return;
    }
    if (sc.n)
        chp_info("examined %zu envelopes stored since the last unlock", sc.n);
    chp_msgi_examined_save(m);
}
