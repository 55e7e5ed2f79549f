/* msg_flood.c - per-poster fairness in rooms (RESILIENCE.md, "Flood").
 *
 * The mesh cannot tell a flooder's room posts from a busy honest poster's:
 * the author is inside the encryption. This layer can, for the rooms the
 * user is in, and the mesh asks it (chp_msg_refuse) before it stores or
 * forwards a new envelope. A stranger (not a contact, not us) gets a token
 * bucket per room: AUTHOR_BURST posts at once, then one per
 * AUTHOR_REFILL_S, about what one person types. A poster this node has
 * never seen in the room takes a token first from the newcomer pool of the
 * neighbour the post came from (NEW_BURST at once, then one per
 * NEW_REFILL_S; the mesh names the neighbour by its address, so a new
 * transport key does not refill it), so fresh author keys, which cost
 * nothing to make, cannot each bring a bucket of their own faster than
 * that, and a neighbour that brings them faster takes no new posters from
 * the others' share. Our own and imported envelopes have no pool.
 * Contacts and our own posts are never limited; neither are direct
 * messages, receipts or a file's pieces (its manifest counts as a
 * post). A refused envelope is neither kept nor forwarded (and its
 * neighbour is pruned from the push tree); the mesh does not fetch it
 * again for REFUSED_MS (ingest.c) and judges it again if it
 * comes back later, so a fast honest poster's extra posts come late, not
 * never. Our own posts are paced under that rate (OWN_BURST, OWN_REFILL_S)
 * before they are sealed, so they are not refused anywhere. */
#include "node/msg/msg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTHOR_BURST    10u /* posts a stranger may send at once */
#define AUTHOR_REFILL_S 6u  /* then one more every 6 s (10 a minute) */
#define NEW_BURST       12u /* new posters a neighbour brings at once, per room */
#define NEW_REFILL_S    6u  /* then one more every 6 s */
#define OWN_BURST       8u  /* our own posts: a little under a stranger's */
#define OWN_REFILL_S    7u
#define FLOOD_SLOTS     2048u /* posters tracked (open addressing) */
#define POOL_SLOTS      256u  /* (room, neighbour) newcomer pools */
#define OWN_SLOTS       64u   /* rooms we post in */
#define MILLI           1000u

struct bucket {
    uint8_t key[16]; /* keyed hash of (room, poster); all zero: free */
    uint64_t mt;     /* tokens, in thousandths */
    uint64_t t;      /* when mt was last brought up to date (unix s) */
};

struct msg_flood {
    struct bucket b[FLOOD_SLOTS];
    size_t n;
    struct bucket pool[POOL_SLOTS]; /* per (room, neighbour) */
    size_t npool;
    struct bucket own[OWN_SLOTS]; /* per room: our own posts */
};

static int is_free(const struct bucket *b)
{
    static const uint8_t zero[16];
    return !memcmp(b->key, zero, sizeof zero);
}

/* Adds what the time since b->t refilled, up to burst. */
static void refill(struct bucket *b, uint64_t now, uint64_t burst, uint64_t every_s)
{
    if (now > b->t) {
        uint64_t add = (now - b->t) * MILLI / every_s;
        b->mt = b->mt + add > burst * MILLI ? burst * MILLI : b->mt + add;
    }
    b->t = now;
}

static int take(struct bucket *b, uint64_t now, uint64_t burst, uint64_t every_s)
{
    refill(b, now, burst, every_s);
    if (b->mt < MILLI)
        return 0;
    b->mt -= MILLI;
    return 1;
}

/* The keyed hash of (who: wl bytes, room). */
static void key_of(const chp_msg *m, const char *room, const uint8_t *who, size_t wl,
                   uint8_t key[16])
{
    uint8_t in[32 + CHP_ROOM_NAME_MAX + 1];
    size_t rl = strlen(room), o = wl;
    if (wl)
        memcpy(in, who, wl);
    memcpy(in + o, room, rl);
    chp_hash(key, 16, in, o + rl, m->hidx_key, sizeof m->hidx_key);
    key[0] |= 1; /* never all zero */
}

static struct bucket *find(struct bucket *t, size_t cap, const uint8_t key[16])
{
    uint64_t h;
    memcpy(&h, key + 8, sizeof h);
    for (size_t i = (size_t)(h % cap), k = 0; k < cap; i = (i + 1) % cap, k++)
        if (is_free(&t[i]) || !memcmp(t[i].key, key, 16))
            return &t[i];
    return NULL;
}

/* Keeps table t (cap slots, *n used) at most 3/4 full: forgets buckets
 * that are full again (they would start from a full one anyway), and if
 * that is not enough, all of them. */
static void prune(struct bucket *t, size_t cap, size_t *n, uint64_t now, uint64_t burst,
                  uint64_t every_s)
{
    if (*n * 4 < cap * 3)
        return;
    struct bucket *keep = malloc(cap * sizeof *keep);
    size_t nk = 0;
    for (size_t i = 0; keep && i < cap; i++) {
        if (is_free(&t[i]))
            continue;
        refill(&t[i], now, burst, every_s);
        if (t[i].mt < burst * MILLI)
            keep[nk++] = t[i];
    }
    memset(t, 0, cap * sizeof *t);
    *n = 0;
    if (nk * 2 > cap)
        nk = 0;
    for (size_t i = 0; i < nk; i++) {
        *find(t, cap, keep[i].key) = keep[i];
        (*n)++;
    }
    free(keep);
}

/* The bucket of key in t, made full if it is new (NULL: no room). */
static struct bucket *bucket_get(struct bucket *t, size_t cap, size_t *n, const uint8_t key[16],
                                 uint64_t now, uint64_t burst)
{
    struct bucket *b = find(t, cap, key);
    if (b && is_free(b)) {
        *b = (struct bucket){.mt = burst * MILLI, .t = now};
        memcpy(b->key, key, 16);
        if (n)
            (*n)++;
    }
    return b;
}

/* 1 when a new poster may come from src now (a token taken). */
static int newcomer_ok(chp_msg *m, const char *room, const uint8_t src[16], uint64_t now)
{
    struct msg_flood *f = m->flood;
    uint8_t k[16];
    prune(f->pool, POOL_SLOTS, &f->npool, now, NEW_BURST, NEW_REFILL_S);
    key_of(m, room, src, 16, k);
    struct bucket *p = bucket_get(f->pool, POOL_SLOTS, &f->npool, k, now, NEW_BURST);
    return !p || take(p, now, NEW_BURST, NEW_REFILL_S);
}

int chp_msgi_flood_refuse(chp_msg *m, const char *room, const uint8_t sender[32], uint8_t type,
                          const uint8_t *src)
{
    if (type != CHP_CT_ROOM && type != CHP_CT_CHUNK && type != CHP_CT_FILE)
        return 0;
    if (!memcmp(sender, chp_identity_pk(m->me), 32) || chp_msgi_contact_by_pk(m, sender))
        return 0;
    if (!m->flood && !(m->flood = calloc(1, sizeof *m->flood)))
        return 0; /* out of memory: keep, as before this existed */
    struct msg_flood *f = m->flood;
    uint64_t now = chp_msgi_now(m);
    uint8_t key[16];
    prune(f->b, FLOOD_SLOTS, &f->n, now, AUTHOR_BURST, AUTHOR_REFILL_S);
    key_of(m, room, sender, 32, key);
    struct bucket *b = find(f->b, FLOOD_SLOTS, key);
    if (b && is_free(b) && src && !chp_msgi_seen_has(m, room, sender) &&
        !newcomer_ok(m, room, src, now))
        return 1; /* a new poster beyond what this neighbour may bring */
    b = bucket_get(f->b, FLOOD_SLOTS, &f->n, key, now, AUTHOR_BURST);
    return b && !take(b, now, AUTHOR_BURST, AUTHOR_REFILL_S);
}

static int paced_type(uint8_t type)
{
    return type == CHP_CT_ROOM || type == CHP_CT_CHUNK || type == CHP_CT_FILE;
}

/* Takes a token of our own bucket for room; 1 when there was one (or no
 * room to track it: then nothing is held back). */
static int own_take(chp_msg *m, const char *room)
{
    uint8_t rk[16];
    uint64_t now = chp_msgi_now(m);
    key_of(m, room, NULL, 0, rk);
    struct bucket *b = bucket_get(m->flood->own, OWN_SLOTS, NULL, rk, now, OWN_BURST);
    return !b || take(b, now, OWN_BURST, OWN_REFILL_S);
}

static int room_waiting(const chp_msg *m, const char *room)
{
    for (const struct job *p = m->paced; p; p = p->next)
        if (!strcmp(p->room, room))
            return 1;
    return 0;
}

int chp_msgi_pace_hold(chp_msg *m, struct job *j)
{
    if (j->paced || j->kind != JOB_ROOM || !paced_type(j->type))
        return 0;
    if (!m->flood && !(m->flood = calloc(1, sizeof *m->flood)))
        return 0;
    if (!room_waiting(m, j->room) && own_take(m, j->room))
        return 0;
    chp_msgi_job_append(&m->paced, &m->paced_tail, j); /* behind the room's earlier posts */
    return 1;
}

void chp_msgi_pace_release(chp_msg *m)
{
    char blocked[8][CHP_ROOM_NAME_MAX + 1];
    size_t nb = 0;
    struct job **l = &m->paced, *prev = NULL;
    while (*l) {
        struct job *j = *l;
        int held = 0;
        for (size_t i = 0; i < nb && !held; i++)
            held = !strcmp(blocked[i], j->room);
        if (!held && !own_take(m, j->room)) {
            held = 1;
            if (nb == sizeof blocked / sizeof blocked[0])
                break;
            snprintf(blocked[nb++], sizeof blocked[0], "%s", j->room);
        }
        if (held) {
            prev = j;
            l = &j->next;
            continue;
        }
        *l = j->next; /* out of the queue, to be sealed */
        if (m->paced_tail == j)
            m->paced_tail = prev;
        j->paced = 1;
        chp_msgi_job_append(&m->jobs, &m->jobs_tail, j);
    }
}

void chp_msgi_flood_free(chp_msg *m)
{
    free(m->flood);
    m->flood = NULL;
}
