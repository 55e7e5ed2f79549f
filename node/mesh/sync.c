/* sync.c - Negentropy sync sessions with a neighbour (PROTOCOL.md §14):
 * the dialler starts one at each HELLO and every minute; what one side
 * has goes out as PUSH within a budget, what it lacks is asked with IWANT;
 * the index items a neighbour's sessions walk are rate-limited. */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"

#include <stdlib.h>
#include <string.h>

/* Index items our Negentropy answers may walk for one neighbour: a token
 * bucket of WALK_RATE x (stored envelopes) per second, up to WALK_BURST x
 * that; at least WALK_MIN per second. A message that finds the bucket
 * empty waits for it. */
#define WALK_RATE       4.0
#define WALK_BURST      32.0
#define WALK_MIN        8192.0
#define IWANT_BATCH     1024
#define NEG_FRAME_LIMIT 60000 /* sync messages to a peer that takes no fragments */
/* Envelopes one sync session pushes or requests at most: within the
 * neighbour's queue (HWM 4096). A bigger difference continues in another
 * session half a second later. */
#define SYNC_BUDGET   2048
#define SYNC_AGAIN_MS 500
/* A session that asked for this many goes on too: the answer to a large
 * IWANT stops at the neighbour's flow window (8 MiB, send.c), and what it
 * left out is asked again in the next session, not a minute later. */
#define SYNC_AGAIN_WANTED 256

/* ---- sync ---- */

/* A sync session with l: the staged split (fewer bytes for scattered
 * differences, PROTOCOL.md §14) and messages up to CHP_NEG_MSG_MAX when
 * the peer reassembles fragments, else one frame's worth. */
/* The store's index as l's sessions see it: every item walked counts
 * against l's budget (l->walked, charged after each message). */
static int walk_item_fn(void *ctx, uint64_t ts, const uint8_t id[32]);
struct walk_fn {
    struct chp_link *l;
    chp_neg_item_fn fn;
    void *fnctx;
};

static int walk_item_fn(void *ctx, uint64_t ts, const uint8_t id[32])
{
    struct walk_fn *w = ctx;
    w->l->walked++;
    return w->fn(w->fnctx, ts, id);
}

static int walk_iterate(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi,
                        chp_neg_item_fn fn, void *fnctx)
{
    struct chp_link *l = ctx;
    struct walk_fn w = {l, fn, fnctx};
    return l->walk_st.iterate(l->walk_st.ctx, lo, hi, walk_item_fn, &w);
}

static int walk_count(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi, uint64_t *cnt)
{
    struct chp_link *l = ctx;
    int rc = l->walk_st.count(l->walk_st.ctx, lo, hi, cnt);
    if (rc == CHP_OK)
        l->walked += *cnt;
    return rc;
}

static chp_neg *new_session(chp_mesh *n, struct chp_link *l)
{
    chp_neg_storage st = {.ctx = l, .iterate = walk_iterate, .count = walk_count};
    chp_neg *s = NULL;
    chp_store_neg_storage(n->store, &l->walk_st);
    uint64_t limit = (l->caps & CHP_CAP_NEG_FRAG) ? CHP_NEG_MSG_MAX : NEG_FRAME_LIMIT;
    if (chp_neg_new(&st, limit, &s) != CHP_OK)
        return NULL;
    chp_neg_set_staged(s, 1);
    return s;
}

/* One Negentropy message as one NEG frame, or as consecutive fragments
 * (all but the last flagged CHP_NEG_MORE). A fragment that cannot be
 * queued ends the message there: the peer never completes it and the
 * session times out, as for a lost frame. */
static void send_neg(chp_mesh *n, struct chp_link *l, uint32_t session, uint8_t initiator,
                     const chp_buf *msg)
{
    uint8_t *f = malloc(CHP_WIRE_MAX_FRAME);
    size_t fl, off = 0, sent = 0;
    while (f && off < msg->len) {
        size_t k = msg->len - off > CHP_NEG_FRAG_MAX ? CHP_NEG_FRAG_MAX : msg->len - off;
        uint8_t flags = (uint8_t)(initiator | (off + k < msg->len ? CHP_NEG_MORE : 0));
        if (chp_wire_neg(f, CHP_WIRE_MAX_FRAME, &fl, session, flags, msg->p + off, k) != CHP_OK ||
            chp_link_send(n, l, f, fl) != CHP_OK)
            break;
        off += k;
        sent += fl;
    }
    free(f);
    chp_flow_sent(n, l, sent); /* after the last fragment: no PING between them */
}

/* Collects the fragments of one NEG message. Returns 1 with msg and len set
 * when a whole message is there (the frame itself, or the reassembled
 * buffer until the next call), 0 while more are to come, -1 for a message
 * over CHP_NEG_MSG_MAX or fragments from a peer that never said it sends
 * them. */
int chp_neg_assemble(struct chp_link *l, const chp_wire_msg *m, const uint8_t **msg, size_t *len)
{
    chp_buf *b = &l->neg_rx[m->u.neg.initiator];
    uint32_t *sess = &l->neg_rx_session[m->u.neg.initiator];
    if (b->len && *sess != m->u.neg.session)
        b->len = 0; /* the rest of an abandoned message */
    if (!m->u.neg.more && !b->len) {
        *msg = m->u.neg.msg;
        *len = m->u.neg.len;
        return 1;
    }
    if (!(l->caps & CHP_CAP_NEG_FRAG) || b->len + m->u.neg.len > CHP_NEG_MSG_MAX) {
        chp_buf_free(b);
        return -1;
    }
    if (chp_buf_put(b, m->u.neg.msg, m->u.neg.len) != CHP_OK) {
        chp_buf_free(b);
        return 0; /* dropped, like a frame lost to memory pressure */
    }
    *sess = m->u.neg.session;
    if (m->u.neg.more)
        return 0;
    *msg = b->p;
    *len = b->len;
    b->len = 0; /* the bytes stay valid until the next fragment arrives */
    return 1;
}

void chp_sync_start(chp_mesh *n, struct chp_link *l)
{
    chp_neg_destroy(&l->neg_client);
    if (!chp_flow_open(l))
        return; /* they do not read what we send: not now */
    l->neg_client = new_session(n, l);
    if (!l->neg_client)
        return;
    chp_buf out = {0};
    l->neg_ms = mesh_ms(n);
    l->neg_session++;
    l->sync_pushed = l->sync_wanted = l->sync_repeat = 0;
    l->sync_more = 0;
    l->walked = 0;
    if (chp_neg_initiate(l->neg_client, &out) == CHP_OK) {
        send_neg(n, l, l->neg_session, 1, &out);
        n->ctr.sync_rounds++;
    } else {
        chp_neg_destroy(&l->neg_client);
    }
    l->walk_tokens -= (double)l->walked;
    chp_buf_free(&out);
}

struct sync_ctx {
    chp_mesh *n;
    struct chp_link *l;
    uint8_t want[IWANT_BATCH * 32];
    uint16_t nwant;
    int full; /* their queue refused a push: push no more this round */
};

static void flush_want(struct sync_ctx *c)
{
    uint8_t f[3 + IWANT_BATCH * 32];
    size_t fl;
    if (c->nwant && chp_wire_ids(f, sizeof f, &fl, CHP_WIRE_IWANT, c->want, c->nwant) == CHP_OK)
        chp_link_send(c->n, c->l, f, fl);
    c->n->ctr.sync_fetched += c->nwant;
    c->nwant = 0;
}

/* What the reconciliation says they have and we lack. An id we fetched
 * from them lately and still lack is one we did not keep (our quota):
 * not asked again for MOVED_S, and no reason to sync again soon. */
static int sync_need(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    struct sync_ctx *c = ctx;
    if (chp_moved_lately(c->l, id, mesh_ms(c->n)) || chp_ingest_refused(c->n, id)) {
        c->l->sync_repeat++;
        return 0;
    }
    if (c->l->sync_wanted >= SYNC_BUDGET) {
        c->l->sync_more = 1;
        return 0;
    }
    c->l->sync_wanted++;
    memcpy(c->want + 32 * c->nwant++, id, 32);
    if (c->nwant == IWANT_BATCH)
        flush_want(c);
    return 0;
}

/* What we have and they lack: pushed (owed while their flow window is
 * full), unless it expires soon or we pushed it to them lately (they did
 * not keep it: their quota), or as much is owed them as we keep (then the
 * next session goes on). */
static int sync_have(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    struct sync_ctx *c = ctx;
    struct chp_link *l = c->l;
    if (chp_moved_lately(l, id, mesh_ms(c->n))) {
        l->sync_repeat++;
        return 0;
    }
    if (l->sync_pushed >= SYNC_BUDGET || c->full) {
        l->sync_more = 1;
        return 0;
    }
    int rc = chp_link_serve(c->n, l, id);
    if (rc == CHP_OK)
        l->sync_pushed++;
    else if (rc == CHP_E_IO)
        c->full = l->sync_more = 1; /* their queue is full: the next session goes on */
    return 0;
}

static uint64_t store_items(chp_mesh *n)
{
    chp_store_stats st;
    chp_store_stats_get(n->store, &st);
    return st.envelopes;
}

/* Refills l's Negentropy walk budget (see WALK_RATE) for a store of items
 * envelopes; the bucket starts full. */
void chp_walk_refill(struct chp_link *l, uint64_t items, uint64_t t)
{
    double rate = WALK_RATE * (double)items > WALK_MIN ? WALK_RATE * (double)items : WALK_MIN;
    if (!l->walk_ms) {
        l->walk_tokens = WALK_BURST * rate / WALK_RATE;
    } else if (t > l->walk_ms) {
        l->walk_tokens += (double)(t - l->walk_ms) * rate / 1000.0;
        if (l->walk_tokens > WALK_BURST * rate / WALK_RATE)
            l->walk_tokens = WALK_BURST * rate / WALK_RATE;
    }
    l->walk_ms = t;
}

/* Answers (as responder) or continues (as initiator) one whole Negentropy
 * message, charging the index items it walks to l's budget. */
static void neg_handle(chp_mesh *n, struct chp_link *l, int from_initiator, uint32_t session,
                       const uint8_t *msg, size_t len)
{
    chp_buf out = {0};
    n->ctr.sync_rounds++;
    l->walked = 0;
    l->neg_ms = mesh_ms(n); /* handled, not merely received: see neg_may */
    if (from_initiator) {   /* they sync with us: we answer */
        if (!l->neg_server || l->neg_server_session != session) {
            chp_neg_destroy(&l->neg_server);
            l->neg_server = new_session(n, l);
            l->neg_server_session = session;
        }
        if (!l->neg_server)
            return;
        int rc = chp_neg_respond(l->neg_server, msg, len, &out);
        l->walk_tokens -= (double)l->walked;
        if (rc == CHP_OK && out.len)
            send_neg(n, l, session, 0, &out);
        else if (rc != CHP_OK) {
            n->ctr.rej_sync++;
            chp_link_misbehave(n, l, 2.0, "malformed sync message");
        }
        chp_buf_free(&out);
        return;
    }
    if (!l->neg_client || session != l->neg_session)
        return; /* a reply to a session we gave up */
    struct sync_ctx *c = malloc(sizeof *c);
    if (!c)
        return;
    c->n = n;
    c->l = l;
    c->nwant = 0;
    c->full = 0;
    int rc = chp_neg_reconcile(l->neg_client, msg, len, &out, sync_have, sync_need, c);
    flush_want(c);
    free(c);
    l->walk_tokens -= (double)l->walked;
    if (rc != CHP_OK) {
        chp_neg_destroy(&l->neg_client);
        n->ctr.rej_sync++;
        chp_link_misbehave(n, l, 2.0, "malformed sync reply");
    } else if (out.len) {
        send_neg(n, l, l->neg_session, 1, &out);
    } else {
        chp_neg_destroy(&l->neg_client);
        n->ctr.syncs_done++;
        /* Go on soon only while the sync moves new envelopes: differences
         * that are mostly ids moved lately are a neighbour that cannot
         * keep them (its quota), and syncing again would not change that. */
        if ((l->sync_more || l->sync_wanted >= SYNC_AGAIN_WANTED) &&
            l->sync_repeat < l->sync_pushed + l->sync_wanted)
            l->next_sync_ms = mesh_ms(n) + SYNC_AGAIN_MS;
        char ks[CHP_KEY_NAME_MAX];
        chp_key_name(l->key, ks);
        chp_debug("sync with %s complete: %u pushed, %u fetched, %u moved lately", ks,
                  l->sync_pushed, l->sync_wanted, l->sync_repeat);
    }
    chp_buf_free(&out);
}

/* 1 when a sync message from l (d: from its initiator) may be handled
 * now: its walk budget is not spent, its flow window has room for our
 * answer, and a session it opens is within what its source may open
 * (chp_source_take_session; the session after one that moved envelopes
 * is free). A flooder opening sessions it never goes on with, to look
 * busy (a sync's pushes are neither scored nor pruned for a while) and
 * to be sent our index, gets a few, whatever keys it dials with. */
static int neg_may(chp_mesh *n, struct chp_link *l, uint64_t t, int d, uint32_t session)
{
    chp_walk_refill(l, store_items(n), t);
    if (l->walk_tokens <= 0 || !chp_flow_open(l))
        return 0;
    if (!d || (l->neg_server && l->neg_server_session == session))
        return 1;
    if (l->sync_useful) {
        l->sync_useful = 0;
        return 1;
    }
    uint8_t src[16];
    chp_link_source(n, l, src);
    return chp_source_take_session(n, src, t);
}

void chp_sync_on_neg(chp_mesh *n, struct chp_link *l, const chp_wire_msg *m, uint64_t t)
{
    const uint8_t *msg;
    size_t len;
    int whole = chp_neg_assemble(l, m, &msg, &len);
    if (whole < 0) {
        n->ctr.rej_sync++;
        chp_link_misbehave(n, l, 2.0, "sync message too large");
        return;
    }
    if (!whole)
        return;
    int d = m->u.neg.initiator;
    if (!l->neg_waiting[d] && neg_may(n, l, t, d, m->u.neg.session)) {
        neg_handle(n, l, d, m->u.neg.session, msg, len);
        return;
    }
    /* Over budget: the message waits for it (chp_link_periodic). An
     * honest peer waits for our answer before it sends the next one. */
    if (l->neg_waiting[d]) {
        chp_link_misbehave(n, l, 0.1, "sync messages faster than they are answered");
        if (!l->used)
            return;
    }
    chp_buf *b = &l->neg_wait[d];
    b->len = 0;
    if (chp_buf_put(b, msg, len) != CHP_OK)
        return;
    l->neg_wait_session[d] = m->u.neg.session;
    l->neg_waiting[d] = 1;
}

/* Handles sync messages that waited for l's budget, once it allows. */
void chp_sync_resume(chp_mesh *n, struct chp_link *l, uint64_t t)
{
    for (int d = 1; d >= 0 && l->used; d--) {
        if (!l->neg_waiting[d] || !neg_may(n, l, t, d, l->neg_wait_session[d]))
            continue;
        chp_buf b = l->neg_wait[d];
        memset(&l->neg_wait[d], 0, sizeof b);
        l->neg_waiting[d] = 0;
        neg_handle(n, l, d, l->neg_wait_session[d], b.p, b.len);
        chp_buf_free(&b);
    }
}
