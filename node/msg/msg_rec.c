/* msg_rec.c - the messaging layer's records (their encrypted-table
 * encodings), lookups, display labels and reply-text helpers. */
#include "node/msg/msg_int.h"

#include "proto/buf.h"
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/hex.h"
#include "proto/id.h"
#include "node/common/clock.h"
#include "node/common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

uint64_t chp_msgi_now(const chp_msg *m)
{
    return m->host.now ? m->host.now(m->host.ctx) : chp_unix_s();
}

void chp_msgi_emit(chp_msg *m, const char *topic, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void chp_msgi_emit(chp_msg *m, const char *topic, const char *fmt, ...)
{
    if (!m->host.event)
        return;
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    m->host.event(m->host.ctx, topic, b, (size_t)k < sizeof b ? (size_t)k : sizeof b - 1);
}

void chp_msgi_copy_str(char *dst, size_t cap, const void *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

void chp_msgi_bput(struct msg_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (chp_buf_reserve(&b->b, n + 1) != CHP_OK) { /* and the NUL */
        b->oom = 1;
        return;
    }
    if (n)
        memcpy(b->b.p + b->b.len, s, n);
    b->b.len += n;
    b->b.p[b->b.len] = '\0';
}

void chp_msgi_bprintf(struct msg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void chp_msgi_bprintf(struct msg_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0)
        chp_msgi_bput(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* Text for line-oriented replies: tab, newline, CR and backslash escaped. */
void chp_msgi_bescaped(struct msg_buf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '\t':
            e = "\\t";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\\':
            e = "\\\\";
            break;
        default:
            continue;
        }
        chp_msgi_bput(b, s + run, i - run);
        chp_msgi_bput(b, e, 2);
        run = i + 1;
    }
    chp_msgi_bput(b, s + run, n - run);
}

/* ---- records ---- */

uint64_t chp_msgi_config_u64(chp_msg *m, const char *name)
{
    uint8_t *v = NULL;
    size_t vl = 0;
    uint64_t x = 0;
    if (chp_store_local_get(m->store, CHP_TABLE_CONFIG, name, strlen(name), &v, &vl) == CHP_OK) {
        if (vl == 8)
            x = chp_be64(v);
        chp_store_local_free(v, vl);
    }
    return x;
}

int chp_msgi_config_put_u64(chp_msg *m, const char *name, uint64_t x)
{
    uint8_t b[8];
    chp_put_be64(b, x);
    return chp_store_local_put(m->store, CHP_TABLE_CONFIG, name, strlen(name), b, sizeof b);
}

/* Whether saving c drops key material its stored record holds: the
 * handshake secret or the chain key changed from a key to anything else
 * (wiped, advanced, replaced). Then the earlier version must become
 * undecryptable (STORAGE.md, "Deleted secrets"). */
static int drops_keys(chp_msg *m, const struct contact *c)
{
    static const uint8_t zero[32];
    uint8_t *v = NULL;
    size_t vl = 0;
    if (chp_store_local_get(m->store, CHP_TABLE_CONTACTS, c->pk, 32, &v, &vl) != CHP_OK)
        return 0; /* new (or unreadable): no earlier keys of ours to drop */
    struct contact *old = malloc(sizeof *old);
    int drops = 0;
    if (old && chp_msgi_contact_load(old, c->pk, v, vl) == CHP_OK)
        drops = (!chp_memeq(old->my_esk, zero, 32) && !chp_memeq(old->my_esk, c->my_esk, 32)) ||
                (!chp_memeq(old->base_key, zero, 32) && !chp_memeq(old->base_key, c->base_key, 32));
    if (old) {
        chp_memzero(old, sizeof *old);
        free(old);
    }
    chp_store_local_free(v, vl);
    return drops;
}

int chp_msgi_contact_save(chp_msg *m, const struct contact *c)
{
    uint8_t b[512];
    chp_wr w;
    chp_wr_init(&w, b, sizeof b);
    size_t nl = strlen(c->name), kl = strlen(c->nick);
    chp_wr_u8(&w, REC_VERSION);
    chp_wr_u8(&w, (uint8_t)c->state);
    chp_wr_u8(&w, (uint8_t)nl);
    chp_wr_bytes(&w, c->name, nl);
    chp_wr_u8(&w, (uint8_t)kl);
    chp_wr_bytes(&w, c->nick, kl);
    chp_wr_bytes(&w, c->my_esk, 32);
    chp_wr_bytes(&w, c->my_epk, 32);
    chp_wr_u64(&w, c->my_time);
    chp_wr_bytes(&w, c->their_epk, 32);
    chp_wr_u64(&w, c->their_time);
    chp_wr_u64(&w, c->base_epoch);
    chp_wr_bytes(&w, c->base_key, 32);
    chp_wr_u64(&w, c->send_epoch);
    chp_wr_u32(&w, c->send_seq);
    chp_wr_u64(&w, c->added);
    uint8_t nrecv = 0;
    for (size_t i = 0; i < RECV_SLOTS; i++)
        nrecv += c->recv_next[i] != 0;
    chp_wr_u8(&w, nrecv);
    for (size_t i = 0; i < RECV_SLOTS; i++)
        if (c->recv_next[i]) {
            chp_wr_u64(&w, c->recv_epoch[i]);
            chp_wr_u32(&w, c->recv_next[i]);
        }
    int rc = w.err;
    if (!rc)
        rc = drops_keys(m, c)
                 ? chp_store_local_put_forget(m->store, CHP_TABLE_CONTACTS, c->pk, 32, b, w.off)
                 : chp_store_local_put(m->store, CHP_TABLE_CONTACTS, c->pk, 32, b, w.off);
    chp_memzero(b, sizeof b);
    return rc;
}

int chp_msgi_contact_load(struct contact *c, const uint8_t *key, const uint8_t *v, size_t vl)
{
    chp_rd r;
    uint8_t ver = 0, st = 0, nl = 0, kl = 0;
    memset(c, 0, sizeof *c);
    memcpy(c->pk, key, 32);
    chp_rd_init(&r, v, vl);
    chp_rd_u8(&r, &ver);
    chp_rd_u8(&r, &st);
    chp_rd_u8(&r, &nl);
    if (nl > NAME_MAX_)
        return CHP_E_CORRUPT;
    chp_rd_bytes(&r, c->name, nl);
    chp_rd_u8(&r, &kl);
    if (kl > CHP_NICK_MAX)
        return CHP_E_CORRUPT;
    chp_rd_bytes(&r, c->nick, kl);
    chp_rd_bytes(&r, c->my_esk, 32);
    chp_rd_bytes(&r, c->my_epk, 32);
    chp_rd_u64(&r, &c->my_time);
    chp_rd_bytes(&r, c->their_epk, 32);
    chp_rd_u64(&r, &c->their_time);
    chp_rd_u64(&r, &c->base_epoch);
    chp_rd_bytes(&r, c->base_key, 32);
    chp_rd_u64(&r, &c->send_epoch);
    chp_rd_u32(&r, &c->send_seq);
    chp_rd_u64(&r, &c->added);
    /* Optional (records written before it have none): the receive
     * windows, one per epoch. */
    uint8_t nrecv = 0;
    if (!r.err && chp_rd_left(&r))
        chp_rd_u8(&r, &nrecv);
    if (nrecv > RECV_SLOTS)
        return CHP_E_CORRUPT;
    for (uint8_t i = 0; i < nrecv && !r.err; i++) {
        uint64_t e = 0;
        uint32_t next = 0;
        chp_rd_u64(&r, &e);
        chp_rd_u32(&r, &next);
        size_t s = (size_t)(e % RECV_SLOTS);
        if (next > RECV_MAX || (c->recv_next[s] && c->recv_epoch[s] >= e))
            continue; /* not believed; or an older epoch in a taken slot */
        c->recv_epoch[s] = e;
        c->recv_next[s] = next;
    }
    if (r.err || ver != REC_VERSION || st < CS_PENDING || st > CS_REQUEST)
        return CHP_E_CORRUPT;
    c->state = st;
    return CHP_OK;
}

int chp_msgi_room_save(chp_msg *m, const struct room *rm)
{
    uint8_t b[64];
    chp_wr w;
    chp_wr_init(&w, b, sizeof b);
    chp_wr_u8(&w, REC_VERSION);
    chp_wr_u8(&w, (uint8_t)rm->passphrase);
    chp_wr_bytes(&w, rm->key, 32);
    int rc = chp_store_local_put(m->store, CHP_TABLE_ROOMS, rm->name, strlen(rm->name), b, w.off);
    chp_memzero(b, sizeof b);
    return rc;
}

int chp_msgi_hmsg_key(const struct hmsg *h, uint8_t key[MSGID_BYTES + 33])
{
    memcpy(key, h->msgid, MSGID_BYTES);
    key[MSGID_BYTES] = (uint8_t)h->dir_out;
    memcpy(key + MSGID_BYTES + 1, h->sender, 32);
    return MSGID_BYTES + 33;
}

int chp_msgi_hmsg_save(chp_msg *m, const struct hmsg *h)
{
    size_t rl = strlen(h->room), kl = strlen(h->nick);
    size_t cap = 128 + rl + kl + h->textlen;
    uint8_t *b = malloc(cap), key[MSGID_BYTES + 33];
    if (!b)
        return CHP_E_NOMEM;
    chp_wr w;
    chp_wr_init(&w, b, cap);
    chp_wr_u8(&w, REC_VERSION);
    chp_wr_u8(&w, (uint8_t)h->dir_out);
    chp_wr_u8(&w, (uint8_t)h->state);
    chp_wr_u8(&w, (uint8_t)(h->published | h->listed << 1 | h->read << 2 | h->notice << 3 |
                            h->shown_new << 4));
    chp_wr_u64(&w, h->time);
    chp_wr_u64(&w, h->seq);
    chp_wr_u8(&w, (uint8_t)h->kind);
    chp_wr_bytes(&w, h->peer, 32);
    chp_wr_u8(&w, (uint8_t)rl);
    chp_wr_bytes(&w, h->room, rl);
    chp_wr_u8(&w, (uint8_t)kl);
    chp_wr_bytes(&w, h->nick, kl);
    chp_wr_u32(&w, (uint32_t)h->textlen);
    chp_wr_bytes(&w, h->text, h->textlen);
    chp_wr_u64(&w, h->arrived); /* trailers: records without them load too */
    size_t fl = strlen(h->rfpr);
    chp_wr_u8(&w, (uint8_t)fl);
    chp_wr_bytes(&w, h->rfpr, fl);
    int rc = w.err ? w.err
                   : chp_store_local_put(m->store, CHP_TABLE_HISTORY, key,
                                         (size_t)chp_msgi_hmsg_key(h, key), b, w.off);
    chp_memzero(b, w.off);
    free(b);
    return rc;
}

int chp_msgi_hmsg_load(struct hmsg *h, const uint8_t *key, size_t kl_, const uint8_t *v, size_t vl)
{
    chp_rd r;
    uint8_t ver = 0, dir = 0, st = 0, fl = 0, kind = 0, rl = 0, kl = 0;
    uint32_t tl = 0;
    memset(h, 0, sizeof *h);
    if (kl_ != MSGID_BYTES + 33)
        return CHP_E_CORRUPT;
    memcpy(h->msgid, key, MSGID_BYTES);
    memcpy(h->sender, key + MSGID_BYTES + 1, 32);
    chp_rd_init(&r, v, vl);
    chp_rd_u8(&r, &ver);
    chp_rd_u8(&r, &dir);
    chp_rd_u8(&r, &st);
    chp_rd_u8(&r, &fl);
    chp_rd_u64(&r, &h->time);
    chp_rd_u64(&r, &h->seq);
    chp_rd_u8(&r, &kind);
    chp_rd_bytes(&r, h->peer, 32);
    chp_rd_u8(&r, &rl);
    if (rl > CHP_ROOM_NAME_MAX)
        return CHP_E_CORRUPT;
    chp_rd_bytes(&r, h->room, rl);
    chp_rd_u8(&r, &kl);
    if (kl > CHP_NICK_MAX)
        return CHP_E_CORRUPT;
    chp_rd_bytes(&r, h->nick, kl);
    chp_rd_u32(&r, &tl);
    if (r.err || ver != REC_VERSION || tl > TEXT_MAX || chp_rd_left(&r) < tl)
        return CHP_E_CORRUPT;
    size_t extra = chp_rd_left(&r) - tl; /* trailers: arrival time, room fingerprint */
    if (extra != 0 && extra != 8 && (extra < 9 || extra > 9 + CHP_FPR_STR_LEN))
        return CHP_E_CORRUPT;
    if (!(h->text = malloc(tl + 1u)))
        return CHP_E_NOMEM;
    chp_rd_bytes(&r, h->text, tl);
    if (extra >= 8)
        chp_rd_u64(&r, &h->arrived);
    if (extra >= 9) {
        uint8_t pl = 0;
        chp_rd_u8(&r, &pl);
        if (pl != extra - 9) {
            free(h->text);
            h->text = NULL;
            return CHP_E_CORRUPT;
        }
        chp_rd_bytes(&r, h->rfpr, pl);
    }
    h->text[tl] = '\0';
    h->textlen = tl;
    h->dir_out = dir;
    h->state = st;
    h->published = fl & 1;
    h->listed = fl >> 1 & 1;
    h->read = fl >> 2 & 1;
    h->notice = fl >> 3 & 1;
    h->shown_new = fl >> 4 & 1;
    h->kind = kind;
    return CHP_OK;
}

struct hmsg *chp_msgi_hmsg_add(chp_msg *m)
{
    if (chp_grow(&m->h, &m->caph, m->nh + 1, sizeof *m->h) != CHP_OK)
        return NULL;
    memset(&m->h[m->nh], 0, sizeof *m->h);
    m->h[m->nh].seq = m->next_seq++;
    m->h[m->nh].arrived = chp_msgi_now(m);
    return &m->h[m->nh++];
}

/* ---- lookups ---- */

struct contact *chp_msgi_contact_by_pk(chp_msg *m, const uint8_t pk[32])
{
    for (size_t i = 0; i < m->nc; i++)
        if (!memcmp(m->c[i].pk, pk, 32))
            return &m->c[i];
    return NULL;
}

struct contact *chp_msgi_contact_by_name(chp_msg *m, const char *name)
{
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].state != CS_REQUEST && !strcmp(m->c[i].name, name))
            return &m->c[i];
    return NULL;
}

struct room *chp_msgi_room_by_name(chp_msg *m, const char *canon)
{
    for (size_t i = 0; i < m->nr; i++)
        if (!strcmp(m->r[i].name, canon))
            return &m->r[i];
    return NULL;
}

static size_t hslot(const chp_msg *m, const uint8_t msgid[MSGID_BYTES])
{
    uint8_t h[16];
    uint64_t v;
    chp_hash(h, sizeof h, msgid, MSGID_BYTES, m->hidx_key, sizeof m->hidx_key);
    memcpy(&v, h, 8);
    return (size_t)v & (m->hidxcap - 1);
}

int chp_msgi_hindex_put(chp_msg *m, size_t pos)
{
    if ((m->nhidx + 1) * 2 > m->hidxcap) {
        size_t nc = m->hidxcap ? m->hidxcap * 2 : 1024;
        uint32_t *t = calloc(nc, sizeof *t), *old = m->hidx;
        if (!t)
            return CHP_E_NOMEM;
        size_t oc = m->hidxcap;
        m->hidx = t;
        m->hidxcap = nc;
        m->nhidx = 0;
        for (size_t i = 0; i < oc; i++)
            if (old[i] && chp_msgi_hindex_put(m, old[i] - 1u) != CHP_OK)
                break; /* cannot happen: the new table has room */
        free(old);
    }
    size_t i = hslot(m, m->h[pos].msgid);
    while (m->hidx[i])
        i = (i + 1) & (m->hidxcap - 1);
    m->hidx[i] = (uint32_t)pos + 1;
    m->nhidx++;
    return CHP_OK;
}

void chp_msgi_hindex_rebuild(chp_msg *m)
{
    free(m->hidx);
    m->hidx = NULL;
    m->hidxcap = m->nhidx = 0;
    for (size_t i = 0; i < m->nh; i++)
        if (chp_msgi_hindex_put(m, i) != CHP_OK)
            chp_warn("out of memory indexing messages");
}

struct hmsg *chp_msgi_hmsg_find(chp_msg *m, const uint8_t msgid[MSGID_BYTES], int dir_out,
                                const uint8_t sender[32])
{
    if (!m->hidxcap)
        return NULL;
    for (size_t i = hslot(m, msgid); m->hidx[i]; i = (i + 1) & (m->hidxcap - 1)) {
        struct hmsg *h = &m->h[m->hidx[i] - 1];
        if (h->dir_out == dir_out && !memcmp(h->msgid, msgid, MSGID_BYTES) &&
            !memcmp(h->sender, sender, 32))
            return h;
    }
    return NULL;
}

/* ---- the nick each sender last posted under, per room ---- */

/* The table is a hash on (key, room) keyed with hidx_key: senders choose
 * their keys, so they must not choose our slots. */
static size_t seen_slot(const chp_msg *m, const char *room, const uint8_t pk[32])
{
    uint8_t in[32 + CHP_ROOM_NAME_MAX + 1], h[16];
    size_t rl = strlen(room);
    uint64_t v;
    memcpy(in, pk, 32);
    memcpy(in + 32, room, rl);
    chp_hash(h, sizeof h, in, 32 + rl, m->hidx_key, sizeof m->hidx_key);
    memcpy(&v, h, 8);
    return (size_t)v & (m->capseen - 1);
}

/* The entry of (room, pk), or the free slot where it goes. */
static struct seen *seen_at(chp_msg *m, const char *room, const uint8_t pk[32])
{
    size_t i = seen_slot(m, room, pk);
    while (m->seen[i].used && (memcmp(m->seen[i].pk, pk, 32) || strcmp(m->seen[i].room, room)))
        i = (i + 1) & (m->capseen - 1);
    return &m->seen[i];
}

static int seen_grow(chp_msg *m)
{
    size_t oc = m->capseen, nc = oc ? oc * 2 : 256;
    struct seen *old = m->seen, *t = calloc(nc, sizeof *t);
    if (!t)
        return CHP_E_NOMEM;
    m->seen = t;
    m->capseen = nc;
    for (size_t i = 0; i < oc; i++)
        if (old[i].used)
            *seen_at(m, old[i].room, old[i].pk) = old[i];
    free(old);
    return CHP_OK;
}

int chp_msgi_seen_has(chp_msg *m, const char *room, const uint8_t pk[32])
{
    return m->capseen && seen_at(m, room, pk)->used;
}

const char *chp_msgi_seen_nick(chp_msg *m, const char *room, const uint8_t pk[32])
{
    const struct seen *e = m->capseen ? seen_at(m, room, pk) : NULL;
    return e && e->used ? e->nick : "";
}

int chp_msgi_seen_note(chp_msg *m, const char *room, const uint8_t pk[32], const char *nick,
                       uint64_t t, char old[CHP_NICK_MAX + 1])
{
    if ((m->nseen + 1) * 2 > m->capseen && seen_grow(m) != CHP_OK)
        return 0;
    struct seen *e = seen_at(m, room, pk);
    if (!e->used) {
        e->used = 1;
        memcpy(e->pk, pk, 32);
        snprintf(e->room, sizeof e->room, "%s", room);
        snprintf(e->nick, sizeof e->nick, "%s", nick);
        e->time = t;
        m->nseen++;
        return 0;
    }
    if (t < e->time)
        return 0;
    e->time = t;
    if (!strcmp(e->nick, nick))
        return 0;
    snprintf(old, CHP_NICK_MAX + 1, "%s", e->nick);
    snprintf(e->nick, sizeof e->nick, "%s", nick);
    return 1;
}

void chp_msgi_seen_rebuild(chp_msg *m)
{
    char old[CHP_NICK_MAX + 1];
    free(m->seen);
    m->seen = NULL;
    m->nseen = m->capseen = 0;
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        if (!h->dir_out && h->kind == CONV_ROOM && h->nick[0]) /* a file's line may have none */
            (void)chp_msgi_seen_note(m, h->room, h->sender, h->nick, h->time, old);
    }
}

/* ---- display labels ---- */

const struct contact *chp_msgi_named_contact(chp_msg *m, const uint8_t pk[32])
{
    const struct contact *c = chp_msgi_contact_by_pk(m, pk);
    /* a name from before names were kept from starting with a marker
     * must not pass for a stranger or a notice: such a contact shows as
     * a stranger would */
    if (!c || c->state == CS_REQUEST || !c->name[0] || c->name[0] == STRANGER_MARK ||
        c->name[0] == NOTICE_SENDER[0])
        return NULL;
    return c;
}

/* The name shown for a sender: the contact's name, the own nick, or for
 * anyone else "~", the nick they gave and their short fingerprint, so a
 * stranger who takes a contact's nick never looks like the contact. */
void chp_msgi_sender_label(chp_msg *m, const uint8_t pk[32], const char *nick, char *out,
                           size_t cap)
{
    if (m->me && !memcmp(pk, chp_identity_pk(m->me), 32)) {
        snprintf(out, cap, "%s", m->nick);
        return;
    }
    const struct contact *c = chp_msgi_named_contact(m, pk);
    if (c) {
        snprintf(out, cap, "%s", c->name);
        return;
    }
    char fpr[CHP_FPR_STR_LEN + 1];
    chp_id_fingerprint(pk, fpr);
    snprintf(out, cap, "%c%s (%s)", STRANGER_MARK, nick[0] ? nick : "?", fpr);
}

void chp_msgi_hmsg_sender(chp_msg *m, const struct hmsg *h, char *out, size_t cap)
{
    if (h->notice)
        snprintf(out, cap, "%s", NOTICE_SENDER);
    else
        chp_msgi_sender_label(m, h->sender, h->nick, out, cap);
}

/* The conversation a message belongs to, as CONTROL.md names it. */
void chp_msgi_conv_label(chp_msg *m, const struct hmsg *h, char *out, size_t cap)
{
    if (h->kind == CONV_ROOM) {
        snprintf(out, cap, "%s", h->room);
        return;
    }
    const struct contact *c = chp_msgi_contact_by_pk(m, h->peer);
    if (c && c->state != CS_REQUEST && c->name[0]) {
        snprintf(out, cap, "%s", c->name);
        return;
    }
    char id[CHP_ID_STR_LEN + 1];
    chp_id_encode(h->peer, id);
    snprintf(out, cap, "%s", id);
}

void chp_msgi_file_labels(chp_msg *m, const struct xfile *x, char *conv, size_t ccap, char *who,
                          size_t wcap)
{
    struct hmsg h = {.kind = x->kind};
    memcpy(h.peer, x->peer, 32);
    snprintf(h.room, sizeof h.room, "%s", x->room);
    chp_msgi_conv_label(m, &h, conv, ccap);
    if (who)
        chp_msgi_sender_label(m, x->sender,
                              x->kind == CONV_ROOM ? chp_msgi_seen_nick(m, x->room, x->sender) : "",
                              who, wcap);
}

/* The "message" event of history entry h: the whole line, so a client
 * need not reload the conversation (CONTROL.md, Events). */
void chp_msgi_emit_message(chp_msg *m, const struct hmsg *h)
{
    char conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], who[CHP_NICK_MAX + 32], id[33];
    chp_msgi_conv_label(m, h, conv, sizeof conv);
    chp_msgi_hmsg_sender(m, h, who, sizeof who);
    chp_hex_encode(h->msgid, MSGID_BYTES, id);
    struct msg_buf ev = {0};
    chp_msgi_bescaped(&ev, conv, strlen(conv));
    chp_msgi_bput(&ev, "\t", 1);
    chp_msgi_bescaped(&ev, who, strlen(who));
    chp_msgi_bprintf(&ev, "\t%s\t%llu\t", id, (unsigned long long)h->time);
    chp_msgi_bescaped(&ev, h->text, h->textlen);
    if (!ev.oom && m->host.event)
        m->host.event(m->host.ctx, "message", (const char *)ev.b.p, ev.b.len);
    chp_buf_free(&ev.b);
}

void chp_msgi_emit_queued(chp_msg *m, const struct hmsg *h)
{
    char conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], id[2 * MSGID_BYTES + 1];
    struct msg_buf ev = {0};
    chp_hex_encode(h->msgid, MSGID_BYTES, id);
    chp_msgi_conv_label(m, h, conv, sizeof conv);
    chp_msgi_bescaped(&ev, conv, strlen(conv));
    chp_msgi_bprintf(&ev, "\t%s", id);
    if (!ev.oom && m->host.event)
        m->host.event(m->host.ctx, "queued", (const char *)ev.b.p, ev.b.len);
    chp_buf_free(&ev.b);
}
