/* ingest.c - envelopes into the store, group-committed in the store's
 * writer thread while the next batch is received (see the comment below);
 * what committed goes to mesh.c's stored hook (forwarding, the layer
 * above). */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"
#include "proto/envelope.h"

#include <stdlib.h>
#include <string.h>

/* ---- ingest ----
 *
 * Envelopes are received into one batch while the previous one commits in
 * the store's writer thread (group commit, pipelined): the event loop never
 * idles on fdatasync. Nothing is counted accepted, forwarded or handed to
 * the messaging layer before chp_store_put_wait said its transaction
 * committed. Envelope bytes live in a per-batch arena, not a malloc each.
 *
 * A batch holds what arrived while the one before was committing, up to
 * INGEST_MAX envelopes or INGEST_BYTES (group commit that grows with the
 * load): random ids dirty about one B-tree leaf per envelope until several
 * land on the same page, so in a store alone 4096 1 KiB envelopes per
 * commit took 0.6-0.7x the time per envelope of 1024, fdatasync included.
 * A light load still commits each poll round's envelopes at once. On a
 * relay the next batch goes to the writer before the finished one is
 * forwarded; on a user node after (chp_ingest_pump). User nodes pipeline
 * too: a flow PONG waits until what came before its PING is stored, and
 * while each round waited for its own commit (fdatasync) the sender's
 * window stood full and nothing arrived (bench-files). */

#define INGEST_MAX   4096
#define INGEST_BYTES (8u << 20)       /* arena bytes per batch */
#define SET_SLOTS    (2 * INGEST_MAX) /* open addressing, at most half full */

struct pending {
    size_t off, len; /* bytes in the batch's arena */
    uint8_t id[32];
    uint64_t created, expiry;
    uint32_t link;
    int own;
    int mine; /* addressed to the user: kept by the store like own */
};

struct batch {
    struct pending p[INGEST_MAX];
    chp_store_item items[INGEST_MAX];
    size_t n;
    chp_buf arena;           /* the envelopes' bytes */
    uint16_t set[SET_SLOTS]; /* 1 + index into p, 0 = free: ids in this batch */
};

struct chp_ingest {
    struct batch b[2];
    struct batch *fill;       /* being received into */
    struct batch *committing; /* in the writer thread, or NULL */
    uint64_t full_log_ms;     /* when the last "store full" line was logged */
    uint64_t full_unlogged;   /* refusals since that line */
    struct refused *refused;  /* REFUSED_SLOTS */
    uint64_t queued, settled; /* envelopes into a batch, and those whose batch is done */
};

#define FULL_LOG_MS 60000 /* at most one "store full" warning a minute */

/* Ids the layer above refused (hooks.refuse), remembered REFUSED_MS so
 * that sync and announcements do not fetch them again at once; after
 * that they may come and are judged again (the poster's rate may allow
 * them then: refused is late, not lost, for a poster who stopped).
 * Direct-mapped: a collision forgets the older id, which costs one more
 * fetch and judgement of it, nothing else. */
#define REFUSED_SLOTS 4096u
#define REFUSED_MS    (30u * 1000u)

struct refused {
    uint8_t id[32];
    uint64_t until_ms;
};

static struct refused *refused_slot(struct refused *r, const uint8_t id[32])
{
    uint64_t h;
    memcpy(&h, id + 8, sizeof h); /* ids are hashes: any 8 bytes are uniform */
    return &r[h % REFUSED_SLOTS];
}

int chp_ingest_refused(const chp_mesh *n, const uint8_t id[32])
{
    const struct refused *r = n->ingest->refused ? refused_slot(n->ingest->refused, id) : NULL;
    return r && r->until_ms > mesh_ms(n) && !memcmp(r->id, id, 32);
}

static void refused_note(chp_mesh *n, const uint8_t id[32])
{
    struct refused *r = refused_slot(n->ingest->refused, id);
    memcpy(r->id, id, 32);
    r->until_ms = mesh_ms(n) + REFUSED_MS;
}

static uint16_t *set_slot(struct batch *b, const uint8_t id[32])
{
    uint64_t h;
    memcpy(&h, id, sizeof h); /* ids are hashes: any 8 bytes are uniform */
    for (size_t i = (size_t)h % SET_SLOTS;; i = (i + 1) % SET_SLOTS)
        if (!b->set[i] || !memcmp(b->p[b->set[i] - 1].id, id, 32))
            return &b->set[i];
}

static int in_batch(struct batch *b, const uint8_t id[32])
{
    return b && b->n && *set_slot(b, id) != 0;
}

static void batch_reset(struct batch *b)
{
    b->n = 0;
    b->arena.len = 0;
    memset(b->set, 0, sizeof b->set);
}

int chp_ingest_init(chp_mesh *n)
{
    n->ingest = calloc(1, sizeof *n->ingest);
    if (!n->ingest)
        return CHP_E_NOMEM;
    n->ingest->fill = &n->ingest->b[0];
    n->ingest->refused = calloc(REFUSED_SLOTS, sizeof *n->ingest->refused);
    if (!n->ingest->refused) {
        chp_ingest_fini(n);
        return CHP_E_NOMEM;
    }
    return CHP_OK;
}

void chp_ingest_fini(chp_mesh *n)
{
    if (!n->ingest)
        return;
    chp_buf_free(&n->ingest->b[0].arena);
    chp_buf_free(&n->ingest->b[1].arena);
    free(n->ingest->refused);
    free(n->ingest);
    n->ingest = NULL;
}

/* Waits for the committing batch, then counts and forwards what it stored,
 * in batch order. With next set, the batch being filled goes to the writer
 * first, so its commit runs while this one is forwarded. */
static int commit_start(chp_mesh *n);
static void full_note(chp_mesh *n, uint64_t add);

static int commit_finish(chp_mesh *n, int next)
{
    struct chp_ingest *g = n->ingest;
    struct batch *b = g->committing;
    if (!b)
        return CHP_OK;
    int rc = chp_store_put_wait(n->store);
    if (rc != CHP_OK)
        chp_err_log("store commit failed: %s", chp_strerror(rc));
    g->committing = NULL;
    if (next)
        (void)commit_start(n); /* the other batch; b is read until reset */
    for (size_t i = 0; rc == CHP_OK && i < b->n; i++) {
        struct pending *p = &b->p[i];
        const uint8_t *env = b->arena.p + p->off;
        int res = b->items[i].result;
        if (res == CHP_OK) {
            n->ctr.accepted++;
            struct chp_stored e = {env, p->len, p->id, b->items[i].seq, p->expiry, p->link, p->own};
            n->stored(n, &e);
        } else if (res == CHP_E_DUP) {
            n->ctr.duplicates++;
        } else {
            chp_ingest_count_reject(n, res);
        }
    }
    full_note(n, 0); /* refusals held back by the rate limit, once it allows */
    g->settled += b->n;
    batch_reset(b);
    return rc;
}

/* Hands the batch being filled to the store's writer thread, when it is
 * free; the next envelopes go into the other batch. */
static int commit_start(chp_mesh *n)
{
    struct chp_ingest *g = n->ingest;
    struct batch *b = g->fill;
    if (g->committing || !b->n)
        return CHP_OK;
    uint64_t t = mesh_unix(n);
    for (size_t i = 0; i < b->n; i++) {
        struct pending *p = &b->p[i];
        b->items[i] = (chp_store_item){.env = b->arena.p + p->off,
                                       .len = p->len,
                                       .id = p->id,
                                       .created = p->created,
                                       .expiry = p->expiry,
                                       .received = t,
                                       .link = p->link,
                                       .own = p->own,
                                       .mine = p->mine};
    }
    int rc = chp_store_put_start(n->store, b->items, b->n);
    if (rc != CHP_OK) {
        chp_err_log("store commit failed: %s", chp_strerror(rc));
        g->settled += b->n;
        batch_reset(b); /* as a failed commit: nothing of it was stored */
        return rc;
    }
    g->committing = b;
    g->fill = b == &g->b[0] ? &g->b[1] : &g->b[0];
    return CHP_OK;
}

static int refuse(chp_mesh *n, const uint8_t *env, size_t len, const uint8_t id[32],
                  const struct chp_link *from)
{
    if (!n->hooks.refuse)
        return 0;
    uint8_t src[16];
    if (from)
        chp_link_source(n, from, src);
    return n->hooks.refuse(n->hooks.ctx, env, len, id, from ? src : NULL);
}

/* Queues one envelope for the next group commit, after the cheap checks. */
int chp_ingest_add(chp_mesh *n, const uint8_t *env, size_t len, const struct chp_link *from,
                   int own, uint8_t id[32])
{
    struct chp_ingest *g = n->ingest;
    chp_env_hdr h;
    int rc = chp_envelope_check(env, len, mesh_unix(n), NULL, &h, id);
    if (rc != CHP_OK) {
        chp_ingest_count_reject(n, rc);
        return rc;
    }
    /* A duplicate costs one id lookup: the batches in hand, then the store. */
    n->dup_in_flight = in_batch(g->fill, id) || in_batch(g->committing, id);
    if (n->dup_in_flight || chp_store_has(n->store, id) == 1) {
        n->ctr.duplicates++;
        return CHP_E_DUP;
    }
    /* The layer above (node/msg) judges a new envelope it can open before
     * it is stored or forwarded; what it refuses goes nowhere. */
    if (!own && (chp_ingest_refused(n, id) || refuse(n, env, len, id, from))) {
        refused_note(n, id);
        n->ctr.rej_author++;
        return CHP_E_REFUSED;
    }
    if (g->fill->n == INGEST_MAX || (g->fill->n && g->fill->arena.len + len > INGEST_BYTES)) {
        /* full: wait for the writer, hand it over */
        if (commit_finish(n, 1) != CHP_OK || (!g->committing && commit_start(n) != CHP_OK))
            return CHP_E_STORE;
    }
    struct batch *b = g->fill;
    struct pending *p = &b->p[b->n];
    p->off = b->arena.len;
    if (chp_buf_put(&b->arena, env, len) != CHP_OK)
        return CHP_E_NOMEM;
    p->len = len;
    memcpy(p->id, id, 32);
    p->created = h.created;
    p->expiry = h.expiry;
    p->link = from ? from->id : 0;
    p->own = own;
    /* Mail for the user is never refused by quota: one tag lookup (no
     * tags on a relay or while locked; STORAGE.md, Quota). */
    p->mine = !own && n->hooks.tag_mine && n->hooks.tag_mine(n->hooks.ctx, h.tag);
    *set_slot(b, id) = (uint16_t)(++b->n);
    g->queued++;
    return CHP_OK;
}

/* Foreign envelopes refused for want of room (add of them now): a warning
 * at most once a minute with the count since the last one, never a line
 * per envelope, and nothing that identifies an envelope. */
static void full_note(chp_mesh *n, uint64_t add)
{
    struct chp_ingest *g = n->ingest;
    if (!g)
        return;
    g->full_unlogged += add;
    if (!g->full_unlogged)
        return;
    uint64_t t = mesh_ms(n);
    if (g->full_log_ms && t - g->full_log_ms < FULL_LOG_MS)
        return;
    chp_store_stats st;
    chp_store_stats_get(n->store, &st);
    chp_warn("store full: refused %llu foreign envelope%s since the last report (%llu bytes "
             "stored, %llu of them own or for this user; quota %llu)",
             (unsigned long long)g->full_unlogged, g->full_unlogged == 1 ? "" : "s",
             (unsigned long long)st.bytes, (unsigned long long)st.kept,
             (unsigned long long)st.quota);
    g->full_log_ms = t;
    g->full_unlogged = 0;
}

void chp_ingest_count_reject(chp_mesh *n, int rc)
{
    switch (rc) {
    case CHP_E_ENV_SIZE:
        n->ctr.rej_size++;
        break;
    case CHP_E_ENV_VERSION:
        n->ctr.rej_version++;
        break;
    case CHP_E_ENV_TTL:
        n->ctr.rej_ttl++;
        break;
    case CHP_E_ENV_EXPIRED:
        n->ctr.rej_expired++;
        break;
    case CHP_E_ENV_FUTURE:
        n->ctr.rej_future++;
        break;
    case CHP_E_ENV_POW:
        n->ctr.rej_pow++;
        break;
    case CHP_E_STORE_FULL:
        n->ctr.rej_full++;
        full_note(n, 1);
        break;
    default:
        n->ctr.rej_malformed++;
        break;
    }
}

/* Commits everything pending, then forwards what was new: nothing is
 * acknowledged or passed on before its transaction committed. */
int chp_ingest_flush(chp_mesh *n)
{
    if (!n->ingest)
        return CHP_OK;
    (void)commit_finish(n, 0); /* the batch before: its failure is logged */
    int rc = commit_start(n);
    int rc2 = commit_finish(n, 0);
    return rc != CHP_OK ? rc : rc2;
}

/* A relay hands the writer the next batch before it forwards the one
 * committed. A user node goes to the layer above first, with the writer
 * idle: the messaging layer writes to the store itself (file pieces, 64
 * at a time), and a store write waits for a commit under way. */
void chp_ingest_pump(chp_mesh *n)
{
    if (n->ingest->committing && chp_store_put_ready(n->store))
        (void)commit_finish(n, n->relay);
    (void)commit_start(n);
}

int chp_ingest_fd(const chp_mesh *n)
{
    return n->ingest->committing ? chp_store_put_fd(n->store) : -1;
}

int chp_ingest_ready(const chp_mesh *n)
{
    return n->ingest->committing && chp_store_put_ready(n->store);
}

uint64_t chp_ingest_queued(const chp_mesh *n)
{
    return n->ingest->queued;
}

uint64_t chp_ingest_settled(const chp_mesh *n)
{
    return n->ingest->settled;
}
