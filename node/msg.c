/* msg.c - the messaging layer (msg.h; PROTOCOL.md §18-22).
 *
 * Everything the user has lives in memory while unlocked (contacts, rooms,
 * message history) and is written through to the store's encrypted local
 * tables on every change, so a kill -9 loses nothing that was answered
 * "ok". Recognising our own envelopes is one lookup of the 16-byte tag in
 * a hash table holding every tag we may receive in the live epochs. */
#include "msg.h"

#include "account.h"
#include "crypto.h"
#include "cursor.h"
#include "envelope.h"
#include "id.h"
#include "keys.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEXT_MAX      65536u
#define NAME_MAX_     32u
#define MSGID_BYTES   16u
#define TTL_DM        (3u * 86400u)
#define TTL_ROOM      (1u * 86400u)
#define TTL_INTRO     (7u * 86400u)
#define TAG_WINDOW    64u /* tags per contact and epoch computed ahead */
#define CHUNK_HDR     (MSGID_BYTES + 1u + 2u + 2u)
#define CHUNK_DATA    (CHP_PAYLOAD_MAX - CHUNK_HDR)
#define CHUNKS_MAX    ((TEXT_MAX + NAME_MAX_ + 1u + CHUNK_DATA - 1u) / CHUNK_DATA)
#define RECEIPT_MAX   64u
#define REC_VERSION   1u
#define HISTORY_LIMIT 200u
#define REQUESTS_MAX  256u

enum contact_state { CS_PENDING = 1, CS_ESTABLISHED = 2, CS_BLOCKED = 3, CS_REQUEST = 4 };
enum conv_kind { CONV_DM = 1, CONV_ROOM = 2 };
enum msg_state { MS_NONE = 0, MS_QUEUED = 1, MS_SENT = 2, MS_DELIVERED = 3 };
enum tag_kind { TK_INTRO = 1, TK_CONTACT = 2, TK_ROOM = 3 };
enum job_kind { JOB_DM = 1, JOB_ROOM = 2, JOB_INTRO = 3 };

struct contact {
    uint8_t pk[32];
    int state;
    char name[NAME_MAX_ + 1];
    char nick[CHP_NICK_MAX + 1]; /* the nick they gave */
    uint8_t my_esk[32], my_epk[32];
    uint64_t my_time; /* when our handshake key was made */
    uint8_t their_epk[32];
    uint64_t their_time;  /* created time of their handshake envelope */
    uint64_t base_epoch;  /* oldest epoch whose key we still hold */
    uint8_t base_key[32]; /* its chain key; earlier ones are deleted */
    uint64_t send_epoch;
    uint32_t send_seq;
    uint64_t added;
};

struct room {
    char name[CHP_ROOM_NAME_MAX + 1]; /* canonical, with '#' */
    int passphrase;
    uint8_t key[32];
};

/* One message, in or out. conv: a contact's key or a room name. */
struct hmsg {
    uint8_t msgid[MSGID_BYTES];
    int dir_out;
    int state;     /* out: enum msg_state */
    int published; /* out: every envelope handed to the node */
    int listed;    /* in: returned by `inbox` */
    int read;
    uint64_t time;
    int kind; /* enum conv_kind */
    uint8_t peer[32];
    char room[CHP_ROOM_NAME_MAX + 1];
    uint8_t sender[32];
    char nick[CHP_NICK_MAX + 1];
    char *text;
    size_t textlen;
    uint64_t syncs_at; /* node sync counter when published */
};

struct tagent {
    uint8_t tag[16];
    uint8_t kind; /* 0 = empty */
    uint32_t idx; /* contact or room index */
    uint64_t epoch;
    uint32_t seq;
};

/* An envelope to build, one per chp_msg_take (proof of work is costly). */
struct job {
    int kind;
    uint8_t to[32];                   /* contact key (DM, intro) */
    char room[CHP_ROOM_NAME_MAX + 1]; /* JOB_ROOM */
    uint8_t type;                     /* content type */
    uint8_t *payload;
    size_t len;
    uint8_t msgid[MSGID_BYTES]; /* message whose state follows, or zero */
    int last;                   /* the message's last envelope */
    struct job *next;
};

/* An own envelope on its way out, for the "sent" state. */
struct outenv {
    uint8_t id[32];
    uint8_t msgid[MSGID_BYTES];
};

/* Pieces of a chunked message waiting for the rest. */
struct partial {
    uint8_t msgid[MSGID_BYTES];
    uint8_t sender[32];
    uint8_t type;
    uint16_t count, have;
    uint64_t created;
    int kind;
    uint32_t idx;
    uint8_t *data[CHUNKS_MAX];
    size_t len[CHUNKS_MAX];
};

struct chp_msg {
    chp_store *store;
    chp_msg_host host;
    char home[4096];
    chp_identity *me;
    int state;
    char nick[CHP_NICK_MAX + 1];
    struct contact *c;
    size_t nc, capc;
    struct room *r;
    size_t nr, capr;
    struct hmsg *h;
    size_t nh, caph;
    struct tagent *tags;
    size_t tagcap, ntags;
    uint64_t tags_epoch; /* epoch the table was built for */
    struct job *jobs, *jobs_tail;
    struct outenv out[256];
    size_t nout, out_next;
    struct partial *parts[16];
    uint64_t syncs;
};

/* ---- small helpers ---- */

static uint64_t now_s(const chp_msg *m)
{
    return m->host.now ? m->host.now(m->host.ctx) : (uint64_t)time(NULL);
}

static void emit(chp_msg *m, const char *topic, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void emit(chp_msg *m, const char *topic, const char *fmt, ...)
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

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(p, nc * elem);
    if (q) {
        memset((uint8_t *)q + *cap * elem, 0, (nc - *cap) * elem);
        *cap = nc;
    }
    return q;
}

static void copy_str(char *dst, size_t cap, const void *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* A growing output buffer for control replies. */
struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void bput(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0)
        bput(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* Text for line-oriented replies: tab, newline, CR and backslash escaped. */
static void bescaped(struct buf *b, const char *s, size_t n)
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
        bput(b, s + run, i - run);
        bput(b, e, 2);
        run = i + 1;
    }
    bput(b, s + run, n - run);
}

/* ---- records ---- */

static int contact_save(chp_msg *m, const struct contact *c)
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
    int rc = w.err ? w.err : chp_store_local_put(m->store, CHP_TABLE_CONTACTS, c->pk, 32, b, w.off);
    chp_memzero(b, sizeof b);
    return rc;
}

static int contact_load(struct contact *c, const uint8_t *key, const uint8_t *v, size_t vl)
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
    if (r.err || ver != REC_VERSION || st < CS_PENDING || st > CS_REQUEST)
        return CHP_E_CORRUPT;
    c->state = st;
    return CHP_OK;
}

static int room_save(chp_msg *m, const struct room *rm)
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

static int hmsg_key(const struct hmsg *h, uint8_t key[MSGID_BYTES + 33])
{
    memcpy(key, h->msgid, MSGID_BYTES);
    key[MSGID_BYTES] = (uint8_t)h->dir_out;
    memcpy(key + MSGID_BYTES + 1, h->sender, 32);
    return MSGID_BYTES + 33;
}

static int hmsg_save(chp_msg *m, const struct hmsg *h)
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
    chp_wr_u8(&w, (uint8_t)(h->published | h->listed << 1 | h->read << 2));
    chp_wr_u64(&w, h->time);
    chp_wr_u8(&w, (uint8_t)h->kind);
    chp_wr_bytes(&w, h->peer, 32);
    chp_wr_u8(&w, (uint8_t)rl);
    chp_wr_bytes(&w, h->room, rl);
    chp_wr_u8(&w, (uint8_t)kl);
    chp_wr_bytes(&w, h->nick, kl);
    chp_wr_u32(&w, (uint32_t)h->textlen);
    chp_wr_bytes(&w, h->text, h->textlen);
    int rc = w.err ? w.err
                   : chp_store_local_put(m->store, CHP_TABLE_HISTORY, key, (size_t)hmsg_key(h, key),
                                         b, w.off);
    chp_memzero(b, w.off);
    free(b);
    return rc;
}

static int hmsg_load(struct hmsg *h, const uint8_t *key, size_t kl_, const uint8_t *v, size_t vl)
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
    if (r.err || ver != REC_VERSION || tl > TEXT_MAX || chp_rd_left(&r) != tl)
        return CHP_E_CORRUPT;
    if (!(h->text = malloc(tl + 1u)))
        return CHP_E_NOMEM;
    chp_rd_bytes(&r, h->text, tl);
    h->text[tl] = '\0';
    h->textlen = tl;
    h->dir_out = dir;
    h->state = st;
    h->published = fl & 1;
    h->listed = fl >> 1 & 1;
    h->read = fl >> 2 & 1;
    h->kind = kind;
    return CHP_OK;
}

/* ---- lookups ---- */

static struct contact *contact_by_pk(chp_msg *m, const uint8_t pk[32])
{
    for (size_t i = 0; i < m->nc; i++)
        if (!memcmp(m->c[i].pk, pk, 32))
            return &m->c[i];
    return NULL;
}

static struct contact *contact_by_name(chp_msg *m, const char *name)
{
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].state != CS_REQUEST && !strcmp(m->c[i].name, name))
            return &m->c[i];
    return NULL;
}

static struct room *room_by_name(chp_msg *m, const char *canon)
{
    for (size_t i = 0; i < m->nr; i++)
        if (!strcmp(m->r[i].name, canon))
            return &m->r[i];
    return NULL;
}

static struct hmsg *hmsg_find(chp_msg *m, const uint8_t msgid[MSGID_BYTES], int dir_out,
                              const uint8_t sender[32])
{
    for (size_t i = m->nh; i-- > 0;)
        if (m->h[i].dir_out == dir_out && !memcmp(m->h[i].msgid, msgid, MSGID_BYTES) &&
            !memcmp(m->h[i].sender, sender, 32))
            return &m->h[i];
    return NULL;
}

/* The name shown for a sender: the contact's name, the own nick, or the
 * nick they gave with their short fingerprint. */
static void sender_label(chp_msg *m, const uint8_t pk[32], const char *nick, char *out, size_t cap)
{
    if (m->me && !memcmp(pk, chp_identity_pk(m->me), 32)) {
        snprintf(out, cap, "%s", m->nick);
        return;
    }
    const struct contact *c = contact_by_pk(m, pk);
    if (c && c->state != CS_REQUEST && c->name[0]) {
        snprintf(out, cap, "%s", c->name);
        return;
    }
    char fpr[CHP_FPR_STR_LEN + 1];
    chp_id_fingerprint(pk, fpr);
    snprintf(out, cap, "%s (%s)", nick[0] ? nick : "?", fpr);
}

/* The conversation a message belongs to, as CONTROL.md names it. */
static void conv_label(chp_msg *m, const struct hmsg *h, char *out, size_t cap)
{
    if (h->kind == CONV_ROOM) {
        snprintf(out, cap, "%s", h->room);
        return;
    }
    const struct contact *c = contact_by_pk(m, h->peer);
    if (c && c->state != CS_REQUEST && c->name[0]) {
        snprintf(out, cap, "%s", c->name);
        return;
    }
    char id[CHP_ID_STR_LEN + 1];
    chp_id_encode(h->peer, id);
    snprintf(out, cap, "%s", id);
}

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
static void tags_rebuild(chp_msg *m)
{
    free(m->tags);
    m->tags = NULL;
    m->tagcap = m->ntags = 0;
    if (!m->me)
        return;
    uint64_t now_e = chp_epoch_of(now_s(m));
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

/* The body of an own history entry as it goes on the wire. */
static int queue_hmsg(chp_msg *m, const struct hmsg *h)
{
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

static int queue_intro(chp_msg *m, const struct contact *c, uint8_t type)
{
    uint8_t p[32 + 1 + CHP_NICK_MAX];
    size_t kl = strlen(m->nick);
    memcpy(p, c->my_epk, 32);
    p[32] = (uint8_t)kl;
    memcpy(p + 33, m->nick, kl);
    return job_add(m, JOB_INTRO, c->pk, NULL, type, p, 33 + kl, NULL, 1);
}

static void set_state(chp_msg *m, struct hmsg *h, int st)
{
    if (h->state >= st)
        return;
    h->state = st;
    (void)hmsg_save(m, h);
    char id[2 * MSGID_BYTES + 1];
    hex(h->msgid, MSGID_BYTES, id);
    emit(m, "state", "%s\t%s", id, st == MS_DELIVERED ? "delivered" : "sent");
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
        a->expiry = t + TTL_INTRO;
        return rc;
    }
    if (j->kind == JOB_ROOM) {
        const struct room *r = room_by_name(m, j->room);
        if (!r)
            return CHP_E_NOT_FOUND;
        chp_ks_room_tag(r->key, e, tag);
        chp_ks_room_msg_key(r->key, e, key);
        a->expiry = t + TTL_ROOM;
        return CHP_OK;
    }
    struct contact *c = contact_by_pk(m, j->to);
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
    a->expiry = t + TTL_DM;
    return contact_save(m, c);
}

static void note_published(chp_msg *m, const struct job *j, const uint8_t id[32])
{
    static const uint8_t zero[MSGID_BYTES];
    if (!memcmp(j->msgid, zero, MSGID_BYTES))
        return;
    struct outenv *o = &m->out[m->out_next];
    memcpy(o->id, id, 32);
    memcpy(o->msgid, j->msgid, MSGID_BYTES);
    m->out_next = (m->out_next + 1) % (sizeof m->out / sizeof *m->out);
    if (m->nout < sizeof m->out / sizeof *m->out)
        m->nout++;
    if (!j->last)
        return;
    struct hmsg *h = hmsg_find(m, j->msgid, 1, chp_identity_pk(m->me));
    if (h && !h->published) {
        h->published = 1;
        h->syncs_at = m->syncs;
        (void)hmsg_save(m, h);
    }
}

int chp_msg_has_outgoing(const chp_msg *m)
{
    return m->me && m->jobs != NULL;
}

int chp_msg_take(chp_msg *m, uint8_t **env, size_t *len)
{
    while (m->me && m->jobs) {
        struct job *j = m->jobs;
        m->jobs = j->next;
        if (!m->jobs)
            m->jobs_tail = NULL;
        chp_env_seal_args a = {0};
        uint8_t tag[16], key[32], epk[32];
        int rc = job_keys(m, j, now_s(m), &a, tag, key, epk);
        size_t cap = chp_envelope_size(j->len), outlen = 0;
        uint8_t *out = rc == CHP_OK && cap ? malloc(cap) : NULL;
        if (out) {
            a.tag = tag;
            a.key = key;
            a.type = j->type;
            a.payload = j->payload;
            a.len = j->len;
            a.pow_ntpb = m->host.pow_ntpb;
            rc = chp_envelope_seal(&a, m->me, chp_rng_system(), out, cap, &outlen);
        }
        chp_memzero(key, sizeof key);
        if (out && rc == CHP_OK) {
            uint8_t id[32];
            chp_envelope_id(out, outlen, id);
            note_published(m, j, id);
            job_free(j);
            *env = out;
            *len = outlen;
            return 1;
        }
        if (rc != CHP_E_NOT_FOUND)
            chp_err_log("cannot seal a message envelope: %s", chp_strerror(rc));
        free(out);
        job_free(j);
    }
    return 0;
}

void chp_msg_on_published(chp_msg *m, const uint8_t id[32], int links)
{
    if (!m->me || links <= 0)
        return;
    for (size_t i = 0; i < m->nout; i++) {
        if (memcmp(m->out[i].id, id, 32))
            continue;
        struct hmsg *h = hmsg_find(m, m->out[i].msgid, 1, chp_identity_pk(m->me));
        if (h && h->published)
            set_state(m, h, MS_SENT);
        return;
    }
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
        (void)contact_save(m, c);
    }
}

void chp_msg_tick(chp_msg *m, uint64_t syncs)
{
    if (!m->me)
        return;
    uint64_t now_e = chp_epoch_of(now_s(m));
    if (now_e != m->tags_epoch) {
        forget_old_keys(m, now_e);
        tags_rebuild(m);
    }
    if (syncs != m->syncs) {
        m->syncs = syncs;
        for (size_t i = 0; i < m->nh; i++) {
            struct hmsg *h = &m->h[i];
            if (h->dir_out && h->published && h->state == MS_QUEUED && syncs > h->syncs_at)
                set_state(m, h, MS_SENT);
        }
    }
}

/* ---- incoming ---- */

static struct hmsg *hmsg_add(chp_msg *m)
{
    struct hmsg *h = grow(m->h, &m->caph, m->nh + 1, sizeof *m->h);
    if (!h)
        return NULL;
    m->h = h;
    memset(&m->h[m->nh], 0, sizeof *m->h);
    return &m->h[m->nh++];
}

/* Computes the root and the first chain key from both handshake keys;
 * the ephemeral secret is wiped (it could recompute the root). */
static int establish(chp_msg *m, struct contact *c)
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
    forget_old_keys(m, chp_epoch_of(now_s(m)));
    if ((rc = contact_save(m, c)) != CHP_OK)
        return rc;
    tags_rebuild(m);
    emit(m, "contact", "%s\testablished", c->name);
    /* Messages written before the handshake completed go out now. */
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        if (h->dir_out && !h->published && h->kind == CONV_DM && !memcmp(h->peer, c->pk, 32))
            (void)queue_hmsg(m, h);
    }
    return CHP_OK;
}

static void new_handshake_key(chp_msg *m, struct contact *c)
{
    chp_rng_fill(chp_rng_system(), c->my_esk, 32);
    chp_x25519_base(c->my_epk, c->my_esk);
    c->my_time = now_s(m);
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
    tags_rebuild(m); /* contact indices moved */
    return 0;
}

static void handle_intro(chp_msg *m, const chp_inner *in, uint64_t created)
{
    if (in->len < 33 || in->len > 33 + CHP_NICK_MAX || in->payload[32] != in->len - 33)
        return;
    char nick[CHP_NICK_MAX + 1] = "";
    if (chp_nick_check((const char *)in->payload + 33, in->len - 33u) == CHP_OK)
        copy_str(nick, sizeof nick, in->payload + 33, in->len - 33u);
    struct contact *c = contact_by_pk(m, in->sender);
    if (c && (c->state == CS_BLOCKED || !memcmp(c->their_epk, in->payload, 32)))
        return; /* blocked, or a copy of what we already have */
    if (c && c->state == CS_PENDING) {
        memcpy(c->their_epk, in->payload, 32);
        c->their_time = created;
        if (nick[0])
            memcpy(c->nick, nick, sizeof nick);
        (void)establish(m, c);
        return;
    }
    if (in->type != CHP_CT_INTRO)
        return; /* an answer to nothing we asked */
    if (c && created <= c->their_time)
        return; /* older than the handshake we hold: a replay */
    if (c && c->state == CS_ESTABLISHED) {
        /* They started over (removed and re-added us): answer with a
         * fresh key of ours. */
        memcpy(c->their_epk, in->payload, 32);
        c->their_time = created;
        new_handshake_key(m, c);
        if (establish(m, c) == CHP_OK)
            (void)queue_intro(m, c, CHP_CT_ACCEPT);
        return;
    }
    int fresh = !c;
    if (fresh && requests_full(m))
        return;
    if (fresh) {
        struct contact *nc = grow(m->c, &m->capc, m->nc + 1, sizeof *m->c);
        if (!nc)
            return;
        m->c = nc;
        c = &m->c[m->nc++];
        memset(c, 0, sizeof *c);
        memcpy(c->pk, in->sender, 32);
        c->state = CS_REQUEST;
        c->added = now_s(m);
    }
    memcpy(c->their_epk, in->payload, 32);
    c->their_time = created;
    memcpy(c->nick, nick, sizeof nick);
    (void)contact_save(m, c);
    if (fresh) {
        char id[CHP_ID_STR_LEN + 1];
        chp_id_encode(c->pk, id);
        emit(m, "request", "%s\t%s", id, c->nick);
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
            copy_str(nick, sizeof nick, body + 1, body[0]);
        blen -= 1u + body[0];
        body += 1u + body[0];
    } else if (type != CHP_CT_TEXT || te->kind != TK_CONTACT) {
        return;
    }
    if (blen == 0 || blen > TEXT_MAX || !chp_utf8_valid((const char *)body, blen))
        return;
    if (hmsg_find(m, msgid, 0, sender))
        return; /* a copy (resent chunks, a replay) */
    struct hmsg *h = hmsg_add(m);
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
    } else {
        h->kind = CONV_DM;
        memcpy(h->peer, sender, 32);
        queue_receipt(m, sender, msgid);
    }
    (void)hmsg_save(m, h);
    char conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], who[CHP_NICK_MAX + 32], id[33];
    conv_label(m, h, conv, sizeof conv);
    sender_label(m, sender, h->nick, who, sizeof who);
    hex(msgid, MSGID_BYTES, id);
    emit(m, "message", "%s\t%s\t%s", conv, who, id);
}

static void handle_receipt(chp_msg *m, const chp_inner *in)
{
    if (in->len < 1 || in->payload[0] == 0 || in->payload[0] > RECEIPT_MAX ||
        in->len != 1u + in->payload[0] * MSGID_BYTES)
        return;
    for (size_t k = 0; k < in->payload[0]; k++) {
        const uint8_t *id = in->payload + 1 + k * MSGID_BYTES;
        struct hmsg *h = hmsg_find(m, id, 1, chp_identity_pk(m->me));
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
        if (hmsg_find(m, msgid, 0, in->sender))
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

void chp_msg_on_envelope(chp_msg *m, const uint8_t *env, size_t len, const uint8_t id[32])
{
    (void)id;
    chp_env_hdr hdr;
    if (!m->me || chp_envelope_parse(env, len, &hdr, NULL, NULL, NULL) != CHP_OK)
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
    *out = m;
    return CHP_OK;
}

static void forget_all(chp_msg *m)
{
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
    free(m->tags);
    m->tags = NULL;
    m->tagcap = m->ntags = 0;
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
    forget_all(*mp);
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
    struct contact *c = grow(m->c, &m->capc, m->nc + 1, sizeof *m->c);
    if (!c)
        return CHP_E_NOMEM;
    m->c = c;
    if (klen == 32 && contact_load(&m->c[m->nc], key, val, vlen) == CHP_OK)
        m->nc++;
    else
        chp_warn("a damaged contact record was skipped");
    return 0;
}

static int load_room(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    struct room *r = grow(m->r, &m->capr, m->nr + 1, sizeof *m->r);
    if (!r)
        return CHP_E_NOMEM;
    m->r = r;
    r = &m->r[m->nr];
    memset(r, 0, sizeof *r);
    if (klen < 2 || klen > CHP_ROOM_NAME_MAX || vlen != 34 || val[0] != REC_VERSION) {
        chp_warn("a damaged room record was skipped");
        return 0;
    }
    memcpy(r->name, key, klen);
    r->passphrase = val[1];
    memcpy(r->key, val + 2, 32);
    m->nr++;
    return 0;
}

static int load_hmsg(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    struct hmsg *h = hmsg_add(m);
    if (!h)
        return CHP_E_NOMEM;
    if (hmsg_load(h, key, klen, val, vlen) != CHP_OK) {
        m->nh--;
        chp_warn("a damaged message record was skipped");
    }
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const struct hmsg *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return memcmp(x->msgid, y->msgid, MSGID_BYTES);
}

static int room_join(chp_msg *m, const char *canon, int passphrase, const uint8_t key[32])
{
    struct room *r = grow(m->r, &m->capr, m->nr + 1, sizeof *m->r);
    if (!r)
        return CHP_E_NOMEM;
    m->r = r;
    r = &m->r[m->nr];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", canon);
    r->passphrase = passphrase;
    memcpy(r->key, key, 32);
    int rc = room_save(m, r);
    if (rc != CHP_OK)
        return rc;
    m->nr++;
    tags_rebuild(m);
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
    if (!room_by_name(m, "#lan") && chp_ks_room_public("#lan", 4, key) == CHP_OK)
        (void)room_join(m, "#lan", 0, key);
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
    forget_all(m);
    m->me = id;
    if (chp_account_get_nick(m->store, m->nick) != CHP_OK)
        snprintf(m->nick, sizeof m->nick, "anon");
    rc = chp_store_local_each(m->store, CHP_TABLE_CONTACTS, load_contact, m);
    if (rc == CHP_OK)
        rc = chp_store_local_each(m->store, CHP_TABLE_ROOMS, load_room, m);
    if (rc == CHP_OK)
        rc = chp_store_local_each(m->store, CHP_TABLE_HISTORY, load_hmsg, m);
    if (rc != CHP_OK) {
        forget_all(m);
        return rc;
    }
    if (m->nh)
        qsort(m->h, m->nh, sizeof *m->h, by_time);
    join_lan_once(m);
    forget_old_keys(m, chp_epoch_of(now_s(m)));
    tags_rebuild(m);
    /* Whatever was accepted but never went out goes out now. */
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].state == CS_PENDING)
            (void)queue_intro(m, &m->c[i], CHP_CT_INTRO);
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        const struct contact *c = h->kind == CONV_DM ? contact_by_pk(m, h->peer) : NULL;
        if (h->dir_out && !h->published &&
            (h->kind == CONV_ROOM ? room_by_name(m, h->room) != NULL
                                  : c && c->state == CS_ESTABLISHED))
            (void)queue_hmsg(m, h);
    }
    m->state = CHP_MSG_READY;
    return CHP_OK;
}

int chp_msg_queue_raw(chp_msg *m, const char *to, uint8_t type, const uint8_t *payload, size_t len)
{
    if (!m->me || len > CHP_PAYLOAD_MAX)
        return CHP_E_ARG;
    if (to[0] == '#')
        return room_by_name(m, to) ? job_add(m, JOB_ROOM, NULL, to, type, payload, len, NULL, 1)
                                   : CHP_E_NOT_FOUND;
    if (type == CHP_CT_INTRO || type == CHP_CT_ACCEPT) {
        uint8_t pk[32];
        int rc = chp_id_parse(to, strlen(to), pk);
        return rc != CHP_OK ? rc : job_add(m, JOB_INTRO, pk, NULL, type, payload, len, NULL, 1);
    }
    const struct contact *c = contact_by_name(m, to);
    return c ? job_add(m, JOB_DM, c->pk, NULL, type, payload, len, NULL, 1) : CHP_E_NOT_FOUND;
}

/* ---- control commands (CONTROL.md "Messaging commands") ---- */

struct req {
    chp_msg *m;
    int nargs;
    const uint8_t *const *args;
    const size_t *lens;
    struct buf out;
    int ok;
};

static int fail(struct req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct req *q, const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    q->out.len = 0;
    bput(&q->out, b, strlen(b));
    q->ok = 0;
    return 0;
}

/* Argument i as a C string (NUL-free, at most cap - 1 bytes), or NULL. */
static const char *arg(struct req *q, int i, char *buf, size_t cap)
{
    if (i >= q->nargs || q->lens[i] >= cap || memchr(q->args[i], 0, q->lens[i]))
        return NULL;
    memcpy(buf, q->args[i], q->lens[i]);
    buf[q->lens[i]] = '\0';
    return buf;
}

static int name_check(const char *s)
{
    size_t l = strlen(s);
    if (chp_nick_check(s, l) != CHP_OK || s[0] == '#' || !strncmp(s, "chp1", 4) ||
        strchr(s, ' ') == s || (l && s[l - 1] == ' '))
        return CHP_E_ARG;
    return CHP_OK;
}

/* A contact by name or ID; requests only when with_requests. NULL after
 * an error was set. */
static struct contact *who(struct req *q, const char *w, int with_requests)
{
    chp_msg *m = q->m;
    struct contact *c = NULL;
    if (!strncmp(w, "chp1", 4) || !strncmp(w, "CHP1", 4)) {
        uint8_t pk[32];
        int rc = chp_id_parse(w, strlen(w), pk);
        if (rc != CHP_OK) {
            fail(q, "malformed ID '%.70s': %s", w, chp_strerror(rc));
            return NULL;
        }
        c = contact_by_pk(m, pk);
        if (c && c->state == CS_REQUEST && !with_requests)
            c = NULL;
    } else {
        c = contact_by_name(m, w);
        for (size_t i = 0; !c && with_requests && i < m->nc; i++)
            if (m->c[i].state == CS_REQUEST && !strcmp(m->c[i].nick, w)) {
                for (size_t k = i + 1; k < m->nc; k++)
                    if (m->c[k].state == CS_REQUEST && !strcmp(m->c[k].nick, w)) {
                        fail(q, "more than one request from '%s': use the ID", w);
                        return NULL;
                    }
                c = &m->c[i];
            }
    }
    if (!c)
        fail(q, "unknown contact '%.70s'", w);
    return c;
}

static const char *state_name(int st)
{
    return st == CS_PENDING       ? "pending"
           : st == CS_ESTABLISHED ? "established"
           : st == CS_BLOCKED     ? "blocked"
                                  : "request";
}

static int cmd_init(struct req *q)
{
    chp_msg *m = q->m;
    char nick[CHP_NICK_MAX + 1], mode[16], pass[CHP_PASS_MAX + 1];
    if (m->state != CHP_MSG_NO_IDENTITY || chp_account_exists(m->home))
        return fail(q, "an identity already exists in %s", m->home);
    if (!arg(q, 0, nick, sizeof nick) || chp_nick_check(nick, strlen(nick)) != CHP_OK)
        return fail(q, "bad nick: 1 to %d bytes of UTF-8, no control characters", CHP_NICK_MAX);
    if (!arg(q, 1, mode, sizeof mode) || (strcmp(mode, "none") && strcmp(mode, "passphrase")))
        return fail(q, "mode must be passphrase or none");
    int with_pass = !strcmp(mode, "passphrase");
    if (with_pass && (!arg(q, 2, pass, sizeof pass) || !pass[0]))
        return fail(q, "a passphrase is needed (or mode none)");
    chp_identity *id = NULL;
    int rc =
        chp_account_create(m->home, with_pass ? pass : NULL, with_pass ? strlen(pass) : 0, &id);
    chp_memzero(pass, sizeof pass);
    if (rc != CHP_OK)
        return fail(q, "cannot create the identity: %s", chp_strerror(rc));
    if ((rc = chp_msg_unlock(m, id)) != CHP_OK)
        return fail(q, "cannot open the new identity: %s", chp_strerror(rc));
    if ((rc = chp_account_set_nick(m->store, nick, strlen(nick))) != CHP_OK)
        return fail(q, "cannot store the nick: %s", chp_strerror(rc));
    snprintf(m->nick, sizeof m->nick, "%s", nick);
    char ids[CHP_ID_STR_LEN + 1];
    chp_id_encode(chp_identity_pk(m->me), ids);
    bput(&q->out, ids, strlen(ids));
    chp_info("identity created");
    return 0;
}

static int cmd_unlock(struct req *q)
{
    chp_msg *m = q->m;
    char pass[CHP_PASS_MAX + 1];
    if (m->state == CHP_MSG_NO_IDENTITY)
        return fail(q, "no identity in %s: run chapar init", m->home);
    if (m->state == CHP_MSG_READY)
        return fail(q, "the identity is already unlocked");
    if (!arg(q, 0, pass, sizeof pass))
        return fail(q, "unknown command or wrong arguments");
    chp_identity *id = NULL;
    int rc = chp_account_load(m->home, pass, strlen(pass), &id);
    chp_memzero(pass, sizeof pass);
    if (rc == CHP_E_PASSPHRASE)
        return fail(q, "wrong passphrase");
    if (rc != CHP_OK || (rc = chp_msg_unlock(m, id)) != CHP_OK)
        return fail(q, "cannot unlock: %s", chp_strerror(rc));
    char ids[CHP_ID_STR_LEN + 1];
    chp_id_encode(chp_identity_pk(m->me), ids);
    bput(&q->out, ids, strlen(ids));
    return 0;
}

static int cmd_id(struct req *q)
{
    chp_msg *m = q->m;
    char ids[CHP_ID_STR_LEN + 1], fpr[CHP_FPR_STR_LEN + 1];
    chp_id_encode(chp_identity_pk(m->me), ids);
    chp_id_fingerprint(chp_identity_pk(m->me), fpr);
    bprintf(&q->out, "%s\t%s\t%s", ids, m->nick, fpr);
    return 0;
}

static int cmd_nick(struct req *q)
{
    char nick[CHP_NICK_MAX + 1];
    if (!arg(q, 0, nick, sizeof nick) || chp_nick_check(nick, strlen(nick)) != CHP_OK)
        return fail(q, "bad nick: 1 to %d bytes of UTF-8, no control characters", CHP_NICK_MAX);
    int rc = chp_account_set_nick(q->m->store, nick, strlen(nick));
    if (rc != CHP_OK)
        return fail(q, "cannot store the nick: %s", chp_strerror(rc));
    snprintf(q->m->nick, sizeof q->m->nick, "%s", nick);
    return 0;
}

static struct contact *contact_new(chp_msg *m, const uint8_t pk[32])
{
    struct contact *c = grow(m->c, &m->capc, m->nc + 1, sizeof *m->c);
    if (!c)
        return NULL;
    m->c = c;
    c = &m->c[m->nc++];
    memset(c, 0, sizeof *c);
    memcpy(c->pk, pk, 32);
    c->added = now_s(m);
    return c;
}

/* Our answer to their introduction: our key, the contact is live. */
static int accept_request(struct req *q, struct contact *c, const char *name)
{
    snprintf(c->name, sizeof c->name, "%s", name);
    new_handshake_key(q->m, c);
    int rc = establish(q->m, c);
    if (rc == CHP_OK)
        rc = queue_intro(q->m, c, CHP_CT_ACCEPT);
    return rc == CHP_OK ? 0 : fail(q, "cannot accept: %s", chp_strerror(rc));
}

static int cmd_contact_add(struct req *q)
{
    chp_msg *m = q->m;
    char ids[128], name[NAME_MAX_ + 1];
    uint8_t pk[32];
    if (!arg(q, 0, ids, sizeof ids))
        return fail(q, "malformed ID");
    int rc = chp_id_parse(ids, strlen(ids), pk);
    if (rc != CHP_OK)
        return fail(q, "malformed ID '%.70s': %s", ids, chp_strerror(rc));
    if (!memcmp(pk, chp_identity_pk(m->me), 32))
        return fail(q, "that is your own ID");
    if (!arg(q, 1, name, sizeof name) || name_check(name) != CHP_OK)
        return fail(q, "bad name: 1 to %u bytes of UTF-8, not starting with '#' or 'chp1'",
                    NAME_MAX_);
    struct contact *c = contact_by_pk(m, pk), *other = contact_by_name(m, name);
    if (other && other != c)
        return fail(q, "the name '%s' is taken by another contact", name);
    if (c && c->state == CS_ESTABLISHED)
        return fail(q, "already a contact (as %s)", c->name);
    if (c && c->state == CS_REQUEST)
        return accept_request(q, c, name);
    if (!c && !(c = contact_new(m, pk)))
        return fail(q, "out of memory");
    snprintf(c->name, sizeof c->name, "%s", name);
    if (c->state != CS_PENDING)
        new_handshake_key(m, c);
    c->state = CS_PENDING;
    if ((rc = contact_save(m, c)) != CHP_OK || (rc = queue_intro(m, c, CHP_CT_INTRO)) != CHP_OK)
        return fail(q, "cannot add the contact: %s", chp_strerror(rc));
    return 0;
}

static int cmd_contact_accept(struct req *q)
{
    char w[128], name[NAME_MAX_ + 1];
    if (!arg(q, 0, w, sizeof w))
        return fail(q, "unknown command or wrong arguments");
    struct contact *c = who(q, w, 1);
    if (!c)
        return 0;
    if (c->state != CS_REQUEST)
        return fail(q, "no pending request from '%.70s'", w);
    const char *nm = q->nargs > 1 ? arg(q, 1, name, sizeof name) : c->nick;
    if (!nm || !nm[0] || name_check(nm) != CHP_OK)
        return fail(q, "give a name: contact accept %.70s NAME", w);
    if (contact_by_name(q->m, nm))
        return fail(q, "the name '%s' is taken by another contact", nm);
    return accept_request(q, c, nm);
}

static int cmd_contact_block(struct req *q)
{
    chp_msg *m = q->m;
    char w[128];
    if (!arg(q, 0, w, sizeof w))
        return fail(q, "unknown command or wrong arguments");
    uint8_t pk[32];
    struct contact *c = NULL;
    if (!strncmp(w, "chp1", 4) && chp_id_parse(w, strlen(w), pk) == CHP_OK && !contact_by_pk(m, pk))
        c = contact_new(m, pk); /* block someone before they write */
    else
        c = who(q, w, 1);
    if (!c)
        return q->ok ? fail(q, "out of memory") : 0;
    c->state = CS_BLOCKED;
    chp_memzero(c->my_esk, 32);
    chp_memzero(c->base_key, 32);
    int rc = contact_save(m, c);
    tags_rebuild(m);
    return rc == CHP_OK ? 0 : fail(q, "cannot block: %s", chp_strerror(rc));
}

static int cmd_contact_remove(struct req *q)
{
    chp_msg *m = q->m;
    char w[128];
    if (!arg(q, 0, w, sizeof w))
        return fail(q, "unknown command or wrong arguments");
    struct contact *c = who(q, w, 1);
    if (!c)
        return 0;
    int rc = chp_store_local_del(m->store, CHP_TABLE_CONTACTS, c->pk, 32);
    if (rc != CHP_OK && rc != CHP_E_NOT_FOUND)
        return fail(q, "cannot remove: %s", chp_strerror(rc));
    chp_memzero(c, sizeof *c);
    size_t i = (size_t)(c - m->c);
    memmove(&m->c[i], &m->c[i + 1], (m->nc - i - 1) * sizeof *m->c);
    m->nc--;
    tags_rebuild(m);
    return 0;
}

static int cmd_contact_list(struct req *q, int requests)
{
    for (size_t i = 0; i < q->m->nc; i++) {
        const struct contact *c = &q->m->c[i];
        if ((c->state == CS_REQUEST) != requests)
            continue;
        char ids[CHP_ID_STR_LEN + 1], fpr[CHP_FPR_STR_LEN + 1];
        chp_id_encode(c->pk, ids);
        chp_id_fingerprint(c->pk, fpr);
        if (requests) {
            bput(&q->out, ids, strlen(ids));
            bput(&q->out, "\t", 1);
            bescaped(&q->out, c->nick, strlen(c->nick));
            bprintf(&q->out, "\t%s\t%llu\n", fpr, (unsigned long long)c->added);
        } else {
            bescaped(&q->out, c->name, strlen(c->name));
            bprintf(&q->out, "\t%s\t%s\t%s\n", ids, state_name(c->state), fpr);
        }
    }
    return 0;
}

static int cmd_contact_show(struct req *q)
{
    char w[128];
    if (!arg(q, 0, w, sizeof w))
        return fail(q, "unknown command or wrong arguments");
    const struct contact *c = who(q, w, 1);
    if (!c)
        return 0;
    char ids[CHP_ID_STR_LEN + 1], fpr[CHP_FPR_STR_LEN + 1], sn[CHP_SAFETY_STR_LEN + 1];
    chp_id_encode(c->pk, ids);
    chp_id_fingerprint(c->pk, fpr);
    chp_safety_number(chp_identity_pk(q->m->me), c->pk, sn);
    bprintf(&q->out, "name: %s\nnick: %s\nid: %s\nfingerprint: %s\nstate: %s\nsafety number: %s\n",
            c->state == CS_REQUEST ? "-" : c->name, c->nick[0] ? c->nick : "-", ids, fpr,
            state_name(c->state), sn);
    return 0;
}

static int room_arg(struct req *q, int i, char canon[CHP_ROOM_NAME_MAX + 1])
{
    char raw[256];
    size_t cl = 0;
    if (!arg(q, i, raw, sizeof raw))
        return fail(q, "bad room name"), -1;
    int rc = chp_room_canon(raw, strlen(raw), canon, &cl);
    if (rc != CHP_OK)
        return fail(q, "bad room name '%.70s': %s", raw, chp_strerror(rc)), -1;
    return 0;
}

static int cmd_send(struct req *q)
{
    chp_msg *m = q->m;
    char to[256];
    if (!arg(q, 0, to, sizeof to) || q->nargs != 2)
        return fail(q, "unknown command or wrong arguments");
    const char *text = (const char *)q->args[1];
    size_t tl = q->lens[1];
    if (tl == 0)
        return fail(q, "empty message");
    if (tl > TEXT_MAX)
        return fail(q, "message too long: %zu bytes (at most %u)", tl, TEXT_MAX);
    if (!chp_utf8_valid(text, tl) || memchr(text, 0, tl))
        return fail(q, "message is not valid UTF-8 text");
    struct hmsg tmp = {0};
    const struct contact *c = NULL;
    if (to[0] == '#') {
        if (room_arg(q, 0, tmp.room))
            return 0;
        if (!room_by_name(m, tmp.room))
            return fail(q, "not in room %s: join it first", tmp.room);
        tmp.kind = CONV_ROOM;
    } else {
        if (!(c = who(q, to, 1)))
            return 0;
        if (c->state == CS_BLOCKED)
            return fail(q, "'%.70s' is blocked", to);
        if (c->state == CS_REQUEST)
            return fail(q, "'%.70s' asked to be your contact: contact accept first", to);
        tmp.kind = CONV_DM;
        memcpy(tmp.peer, c->pk, 32);
    }
    struct hmsg *h = hmsg_add(m);
    if (!h || !(h->text = malloc(tl + 1))) {
        if (h)
            m->nh--;
        return fail(q, "out of memory");
    }
    char *t = h->text;
    *h = tmp;
    h->text = t;
    memcpy(h->text, text, tl);
    h->text[tl] = '\0';
    h->textlen = tl;
    h->dir_out = 1;
    h->state = MS_QUEUED;
    h->read = 1;
    h->time = now_s(m);
    chp_rng_fill(chp_rng_system(), h->msgid, MSGID_BYTES);
    memcpy(h->sender, chp_identity_pk(m->me), 32);
    snprintf(h->nick, sizeof h->nick, "%s", m->nick);
    int rc = hmsg_save(m, h);
    if (rc != CHP_OK) {
        free(h->text);
        m->nh--;
        return fail(q, "cannot queue the message: %s", chp_strerror(rc));
    }
    if (h->kind == CONV_ROOM || c->state == CS_ESTABLISHED)
        (void)queue_hmsg(m, h);
    char id[2 * MSGID_BYTES + 1];
    hex(h->msgid, MSGID_BYTES, id);
    bput(&q->out, id, strlen(id));
    return 0;
}

static int cmd_join(struct req *q)
{
    char canon[CHP_ROOM_NAME_MAX + 1], pass[CHP_PASS_MAX + 1];
    if (room_arg(q, 0, canon))
        return 0;
    if (room_by_name(q->m, canon))
        return fail(q, "already in %s", canon);
    uint8_t key[32];
    int with_pass = q->nargs > 1, rc;
    if (with_pass) {
        if (!arg(q, 1, pass, sizeof pass) || !pass[0])
            return fail(q, "bad passphrase");
        rc = chp_ks_room_passphrase(canon, strlen(canon), pass, strlen(pass), key);
        chp_memzero(pass, sizeof pass);
    } else {
        rc = chp_ks_room_public(canon, strlen(canon), key);
    }
    if (rc == CHP_OK)
        rc = room_join(q->m, canon, with_pass, key);
    chp_memzero(key, sizeof key);
    return rc == CHP_OK ? 0 : fail(q, "cannot join %s: %s", canon, chp_strerror(rc));
}

static int cmd_leave(struct req *q)
{
    chp_msg *m = q->m;
    char canon[CHP_ROOM_NAME_MAX + 1];
    if (room_arg(q, 0, canon))
        return 0;
    struct room *r = room_by_name(m, canon);
    if (!r)
        return fail(q, "not in room %s", canon);
    int rc = chp_store_local_del(m->store, CHP_TABLE_ROOMS, canon, strlen(canon));
    if (rc != CHP_OK && rc != CHP_E_NOT_FOUND)
        return fail(q, "cannot leave: %s", chp_strerror(rc));
    size_t i = (size_t)(r - m->r);
    chp_memzero(r, sizeof *r);
    memmove(&m->r[i], &m->r[i + 1], (m->nr - i - 1) * sizeof *m->r);
    m->nr--;
    tags_rebuild(m);
    return 0;
}

static int cmd_rooms(struct req *q)
{
    for (size_t i = 0; i < q->m->nr; i++)
        bprintf(&q->out, "%s\t%s\n", q->m->r[i].name,
                q->m->r[i].passphrase ? "passphrase" : "public");
    return 0;
}

/* Whether h belongs to the conversation of contact c or room name. */
static int in_conv(const struct hmsg *h, const struct contact *c, const char *room)
{
    return room ? h->kind == CONV_ROOM && !strcmp(h->room, room)
                : h->kind == CONV_DM && c && !memcmp(h->peer, c->pk, 32);
}

static void conv_line(struct req *q, const char *label, const char *kind, const struct contact *c,
                      const char *room)
{
    size_t unread = 0;
    uint64_t last = 0;
    for (size_t i = 0; i < q->m->nh; i++) {
        const struct hmsg *h = &q->m->h[i];
        if (!in_conv(h, c, room))
            continue;
        unread += !h->dir_out && !h->read;
        if (h->time > last)
            last = h->time;
    }
    bescaped(&q->out, label, strlen(label));
    bprintf(&q->out, "\t%s\t%zu\t%llu\n", kind, unread, (unsigned long long)last);
}

static int cmd_conversations(struct req *q)
{
    for (size_t i = 0; i < q->m->nr; i++)
        conv_line(q, q->m->r[i].name, "room", NULL, q->m->r[i].name);
    for (size_t i = 0; i < q->m->nc; i++) {
        const struct contact *c = &q->m->c[i];
        if (c->state == CS_PENDING || c->state == CS_ESTABLISHED)
            conv_line(q, c->name, "contact", c, NULL);
    }
    return 0;
}

/* CONV as a contact or a room; 0 on success, else the error is set. */
static int conv_arg(struct req *q, int i, const struct contact **c,
                    char room[CHP_ROOM_NAME_MAX + 1])
{
    char w[256];
    *c = NULL;
    room[0] = '\0';
    if (!arg(q, i, w, sizeof w))
        return fail(q, "unknown command or wrong arguments"), -1;
    if (w[0] == '#') {
        if (room_arg(q, i, room))
            return -1;
        if (!room_by_name(q->m, room))
            return fail(q, "not in room %s", room), -1;
        return 0;
    }
    return (*c = who(q, w, 0)) ? 0 : -1;
}

static const char *out_state(int st)
{
    return st == MS_DELIVERED ? "delivered" : st == MS_SENT ? "sent" : "queued";
}

static int cmd_history(struct req *q)
{
    chp_msg *m = q->m;
    const struct contact *c;
    char room[CHP_ROOM_NAME_MAX + 1], lim[16];
    if (conv_arg(q, 0, &c, room))
        return 0;
    unsigned long limit = HISTORY_LIMIT;
    if (q->nargs > 1) {
        char *end = NULL;
        if (!arg(q, 1, lim, sizeof lim) || !(limit = strtoul(lim, &end, 10)) || *end)
            return fail(q, "LIMIT must be a positive number");
    }
    size_t total = 0, skip;
    for (size_t i = 0; i < m->nh; i++)
        total += in_conv(&m->h[i], c, room[0] ? room : NULL);
    skip = total > limit ? total - limit : 0;
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        if (!in_conv(h, c, room[0] ? room : NULL) || (skip && skip--))
            continue;
        char who_[CHP_NICK_MAX + 32], id[33];
        sender_label(m, h->sender, h->nick, who_, sizeof who_);
        hex(h->msgid, MSGID_BYTES, id);
        bprintf(&q->out, "%llu\t%s\t", (unsigned long long)h->time, h->dir_out ? "out" : "in");
        bescaped(&q->out, who_, strlen(who_));
        bprintf(&q->out, "\t%s\t%s\t", h->dir_out ? out_state(h->state) : "-", id);
        bescaped(&q->out, h->text, h->textlen);
        bput(&q->out, "\n", 1);
    }
    return 0;
}

static int cmd_read(struct req *q)
{
    const struct contact *c;
    char room[CHP_ROOM_NAME_MAX + 1];
    if (conv_arg(q, 0, &c, room))
        return 0;
    for (size_t i = 0; i < q->m->nh; i++) {
        struct hmsg *h = &q->m->h[i];
        if (!h->dir_out && !h->read && in_conv(h, c, room[0] ? room : NULL)) {
            h->read = 1;
            (void)hmsg_save(q->m, h);
        }
    }
    return 0;
}

static int cmd_inbox(struct req *q)
{
    chp_msg *m = q->m;
    for (size_t i = 0; i < m->nh; i++) {
        struct hmsg *h = &m->h[i];
        if (h->dir_out)
            continue;
        char conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], who_[CHP_NICK_MAX + 32];
        conv_label(m, h, conv, sizeof conv);
        sender_label(m, h->sender, h->nick, who_, sizeof who_);
        bprintf(&q->out, "%llu\t", (unsigned long long)h->time);
        bescaped(&q->out, conv, strlen(conv));
        bput(&q->out, "\t", 1);
        bescaped(&q->out, who_, strlen(who_));
        bput(&q->out, "\t", 1);
        bescaped(&q->out, h->text, h->textlen);
        bprintf(&q->out, "\t%d\n", !h->listed);
        if (!h->listed) {
            h->listed = 1;
            (void)hmsg_save(m, h);
        }
    }
    return 0;
}

static int cmd_outbox(struct req *q)
{
    chp_msg *m = q->m;
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        if (!h->dir_out)
            continue;
        char conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], id[33];
        conv_label(m, h, conv, sizeof conv);
        hex(h->msgid, MSGID_BYTES, id);
        bprintf(&q->out, "%s\t", id);
        bescaped(&q->out, conv, strlen(conv));
        bprintf(&q->out, "\t%s\n", out_state(h->state));
    }
    return 0;
}

static int cmd_wipe(struct req *q, int *wiped)
{
    char yes[8];
    if (!arg(q, 0, yes, sizeof yes) || strcmp(yes, "yes"))
        return fail(q, "wipe needs the argument yes");
    forget_all(q->m);
    q->m->state = CHP_MSG_NO_IDENTITY;
    *wiped = 1;
    chp_info("wipe requested: destroying the identity and all data");
    return 0;
}

struct cmd {
    const char *name;
    int min, max; /* arguments */
    int need_ready;
};

static const struct cmd cmds[] = {
    {"init", 2, 3, 0},
    {"unlock", 1, 1, 0},
    {"id", 0, 0, 1},
    {"nick", 1, 1, 1},
    {"contact-add", 2, 2, 1},
    {"contact-accept", 1, 2, 1},
    {"contact-block", 1, 1, 1},
    {"contact-remove", 1, 1, 1},
    {"contact-list", 0, 0, 1},
    {"contact-requests", 0, 0, 1},
    {"contact-show", 1, 1, 1},
    {"send", 2, 2, 1},
    {"join", 1, 2, 1},
    {"leave", 1, 1, 1},
    {"rooms", 0, 0, 1},
    {"conversations", 0, 0, 1},
    {"history", 1, 2, 1},
    {"read", 1, 1, 1},
    {"inbox", 0, 0, 1},
    {"outbox", 0, 0, 1},
    {"wipe", 1, 1, 0},
};

static int dispatch(struct req *q, const char *name, int *wiped)
{
    if (!strcmp(name, "init"))
        return cmd_init(q);
    if (!strcmp(name, "unlock"))
        return cmd_unlock(q);
    if (!strcmp(name, "wipe"))
        return cmd_wipe(q, wiped);
    if (!strcmp(name, "id"))
        return cmd_id(q);
    if (!strcmp(name, "nick"))
        return cmd_nick(q);
    if (!strcmp(name, "contact-add"))
        return cmd_contact_add(q);
    if (!strcmp(name, "contact-accept"))
        return cmd_contact_accept(q);
    if (!strcmp(name, "contact-block"))
        return cmd_contact_block(q);
    if (!strcmp(name, "contact-remove"))
        return cmd_contact_remove(q);
    if (!strcmp(name, "contact-list"))
        return cmd_contact_list(q, 0);
    if (!strcmp(name, "contact-requests"))
        return cmd_contact_list(q, 1);
    if (!strcmp(name, "contact-show"))
        return cmd_contact_show(q);
    if (!strcmp(name, "send"))
        return cmd_send(q);
    if (!strcmp(name, "join"))
        return cmd_join(q);
    if (!strcmp(name, "leave"))
        return cmd_leave(q);
    if (!strcmp(name, "rooms"))
        return cmd_rooms(q);
    if (!strcmp(name, "conversations"))
        return cmd_conversations(q);
    if (!strcmp(name, "history"))
        return cmd_history(q);
    if (!strcmp(name, "read"))
        return cmd_read(q);
    if (!strcmp(name, "inbox"))
        return cmd_inbox(q);
    return cmd_outbox(q);
}

int chp_msg_control(chp_msg *m, const char *cmd, int nargs, const uint8_t *const *args,
                    const size_t *arglens, int *ok, char **out, size_t *outlen, int *wiped)
{
    const struct cmd *c = NULL;
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(cmd, cmds[i].name))
            c = &cmds[i];
    if (!c)
        return 0;
    struct req q = {.m = m, .nargs = nargs, .args = args, .lens = arglens, .ok = 1};
    *wiped = 0;
    bput(&q.out, "", 0);
    if (nargs < c->min || nargs > c->max)
        fail(&q, "unknown command or wrong arguments");
    else if (c->need_ready && m->state == CHP_MSG_NO_IDENTITY)
        fail(&q, "no identity in %s: run chapar init", m->home);
    else if (c->need_ready && m->state == CHP_MSG_LOCKED)
        fail(&q, "identity locked: run chapar unlock");
    else
        dispatch(&q, c->name, wiped);
    if (q.out.oom) {
        free(q.out.p);
        *out = NULL;
        *outlen = 0;
        *ok = 0;
        return 1;
    }
    *ok = q.ok;
    *out = q.out.p;
    *outlen = q.out.len;
    return 1;
}
