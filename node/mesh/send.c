/* send.c - what goes out on a link: frames on the right socket, HELLO,
 * the per-link flow window, the ids moved on a link lately, pushes and
 * the serving of stored envelopes. */
#include "node/mesh/mesh_int.h"
#include "proto/envelope.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An id pushed to (or fetched from) a neighbour by a sync or an IWANT
 * answer is not moved on that link again for MOVED_S seconds: a neighbour
 * that still lacks it did not keep it (its quota) or is asking again on
 * purpose. MOVED_SETS x MOVED_WAYS ids are remembered per link. */
#define MOVED_S    600
#define MOVED_SETS 512
#define MOVED_WAYS 16
/* PUSH and NEG bytes queued to a neighbour beyond what its PONGs have
 * acknowledged: a flow PING (nonce = CHP_FLOW_TAG | bytes queued) goes
 * out every FLOW_STEP bytes, and nothing more is queued past FLOW_WINDOW.
 * The window is what a neighbour holds in memory for us at most (its
 * receive queue and the batch it commits: it answers a flow PING once
 * what came before is stored, recv.c), so it is small (bench-files,
 * receiver RssAnon over idle while 16 MiB arrive: 1 MiB +8.0 MiB,
 * 768 KiB +6.9 MiB, 512 KiB +5.9 MiB but 1 hop three times slower); four
 * PINGs in it keep the link busy while the first PONG travels. */
#define FLOW_WINDOW (768u << 10)
#define FLOW_STEP   (192u << 10)
/* Envelopes that did not fit the window (an IWANT or sync answer, a
 * push along the tree) are owed, by id, and go out as PONGs open it:
 * nothing is dropped that the neighbour would have to ask again. Up to
 * OWED_MAX ids per link (two sync budgets); beyond that they are dropped
 * as before and sync repairs it. */
#define OWED_MAX 4096

struct chp_link_owed {
    uint8_t id[OWED_MAX][32];
    uint8_t serve[OWED_MAX]; /* 1: an answer (moved once per MOVED_S), 0: a push */
    size_t head, n;
};

static int send_raw(chp_mesh *n, struct chp_link *l, const uint8_t *frame, size_t len)
{
    n->ctr.tx_bytes += len;
    if (l->dealer && l->dealer_up) {
        if (zmq_send(l->dealer, frame, len, ZMQ_DONTWAIT) == (int)len)
            return CHP_OK;
    } else if (l->router_seen) {
        void *r = l->rsock ? l->rsock : n->router;
        if (zmq_send(r, l->rid, l->ridlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) == (int)l->ridlen &&
            zmq_send(r, frame, len, ZMQ_DONTWAIT) == (int)len)
            return CHP_OK;
        if (errno == EHOSTUNREACH)
            l->router_seen = 0;
    }
    return CHP_E_IO; /* full queue (HWM) or gone: sync repairs it later */
}

/* Envelopes for a neighbour that takes PUSHES wait in l->pushq until the
 * frame is full, another frame goes to that neighbour (which must not
 * overtake them), or the loop round ends (chp_gossip_flush_out). */
void chp_link_flush_pushes(chp_mesh *n, struct chp_link *l)
{
    if (!l->pushq.len)
        return;
    (void)send_raw(n, l, l->pushq.p, l->pushq.len); /* lost: sync repairs it */
    l->pushq.len = 0;
}

int chp_link_send(chp_mesh *n, struct chp_link *l, const uint8_t *frame, size_t len)
{
    chp_link_flush_pushes(n, l);
    return send_raw(n, l, frame, len);
}

static uint32_t our_caps(const chp_mesh *n)
{
    return CHP_CAP_NEG | CHP_CAP_NEG_FRAG | CHP_CAP_HELD | CHP_CAP_PUSHES |
           (n->relay ? CHP_CAP_RELAY : 0);
}

/* The listen port our HELLO names: on a link of our LAN listener its
 * port, so that PEERS naming us does not tell the LAN our permanent one. */
static uint16_t hello_port(chp_mesh *n, const struct chp_link *l)
{
    if (!l->lan_gen)
        return n->port;
    const struct chp_lan *lan = chp_mesh_lan_of(n, l->lan_gen);
    return lan ? lan->port : 0;
}

void chp_link_send_hello(chp_mesh *n, struct chp_link *l)
{
    uint8_t f[16];
    size_t len;
    uint32_t caps = our_caps(n);
    if (chp_wire_hello(f, sizeof f, &len, caps, hello_port(n, l), CHP_WIRE_MAX_FRAME) == CHP_OK)
        chp_link_send(n, l, f, len);
}

/* Our HELLO over the ROUTER, to the connection theirs came in on: an
 * answer via send_to would take our dealer when the link is both ways and
 * be answered again, forever. */
void chp_link_send_hello_router(chp_mesh *n, struct chp_link *l)
{
    uint8_t f[16];
    size_t len;
    uint32_t caps = our_caps(n);
    void *r = l->rsock ? l->rsock : n->router;
    if (chp_wire_hello(f, sizeof f, &len, caps, hello_port(n, l), CHP_WIRE_MAX_FRAME) == CHP_OK &&
        zmq_send(r, l->rid, l->ridlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) == (int)l->ridlen &&
        zmq_send(r, f, len, ZMQ_DONTWAIT) == (int)len)
        n->ctr.tx_bytes += len;
}

void chp_link_send_ids(chp_mesh *n, struct chp_link *l, uint8_t type, const uint8_t *ids,
                       uint16_t cnt)
{
    uint8_t f[3 + CHP_WIRE_MAX_IDS * 32];
    size_t fl;
    if (cnt && chp_wire_ids(f, sizeof f, &fl, type, ids, cnt) == CHP_OK)
        chp_link_send(n, l, f, fl);
}

/* ---- per-link flow window ---- */

/* 1 while less than FLOW_WINDOW of PUSH and NEG bytes to l wait for its
 * PONG: a neighbour that does not read costs us that much memory, not
 * the queue's 4096 frames of up to 64 KiB. */
int chp_flow_open(const struct chp_link *l)
{
    return l->flow_tx - l->flow_acked < FLOW_WINDOW;
}

void chp_flow_sent(chp_mesh *n, struct chp_link *l, size_t len)
{
    l->flow_tx += len;
    if (l->flow_tx - l->flow_pinged < FLOW_STEP)
        return;
    uint8_t f[16];
    size_t fl;
    if (chp_wire_ping(f, sizeof f, &fl, CHP_WIRE_PING, CHP_FLOW_TAG | l->flow_tx) == CHP_OK &&
        chp_link_send(n, l, f, fl) == CHP_OK)
        l->flow_pinged = l->flow_tx;
}

static void owed_drain(chp_mesh *n, struct chp_link *l);

void chp_flow_pong(chp_mesh *n, struct chp_link *l, uint64_t nonce)
{
    uint64_t v = nonce & ~CHP_FLOW_TAG;
    if ((nonce & CHP_FLOW_TAG) && v > l->flow_acked && v <= l->flow_tx) {
        l->flow_acked = v;
        owed_drain(n, l);
    }
}

struct chp_link_moved {
    uint64_t id[MOVED_SETS][MOVED_WAYS]; /* first 8 bytes of the id */
    uint32_t at[MOVED_SETS][MOVED_WAYS]; /* when, in s of the monotonic clock + 1; 0 = free */
};

/* ---- ids moved on a link lately ---- */

static uint64_t id_word(const uint8_t id[32])
{
    uint64_t w;
    memcpy(&w, id, 8); /* ids are hashes: any 8 bytes are as good as a hash */
    return w;
}

/* 1 if id was moved on l in the last MOVED_S seconds. */
int chp_moved_lately(const struct chp_link *l, const uint8_t id[32], uint64_t ms)
{
    if (!l->moved)
        return 0;
    uint64_t w = id_word(id);
    uint32_t t = (uint32_t)(ms / 1000u) + 1;
    size_t set = (size_t)(w >> 32) % MOVED_SETS;
    for (int k = 0; k < MOVED_WAYS; k++)
        if (l->moved->at[set][k] && l->moved->id[set][k] == w && t - l->moved->at[set][k] < MOVED_S)
            return 1;
    return 0;
}

/* Remembers that id was moved on l now (the set's oldest entry makes room). */
void chp_moved_add(struct chp_link *l, const uint8_t id[32], uint64_t ms)
{
    if (!l->moved && !(l->moved = calloc(1, sizeof *l->moved)))
        return; /* no memory: moving again is only a waste */
    uint64_t w = id_word(id);
    size_t set = (size_t)(w >> 32) % MOVED_SETS;
    int victim = 0;
    for (int k = 0; k < MOVED_WAYS; k++) {
        if (l->moved->id[set][k] == w || !l->moved->at[set][k]) {
            victim = k;
            break;
        }
        if (l->moved->at[set][k] < l->moved->at[set][victim])
            victim = k;
    }
    l->moved->id[set][victim] = w;
    l->moved->at[set][victim] = (uint32_t)(ms / 1000u) + 1;
}

/* Appends env to l's PUSHES frame, sending the frame first when full. */
static int queue_push(chp_mesh *n, struct chp_link *l, const uint8_t *env, size_t len, size_t *fl)
{
    chp_buf *q = &l->pushq;
    if (q->cap < CHP_WIRE_MAX_FRAME && chp_buf_reserve(q, CHP_WIRE_MAX_FRAME - q->len) != CHP_OK)
        return CHP_E_NOMEM;
    size_t before = q->len;
    int rc = chp_wire_pushes_add(q->p, q->cap, &q->len, env, len);
    if (rc == CHP_E_OVERFLOW) {
        chp_link_flush_pushes(n, l);
        before = 0;
        rc = chp_wire_pushes_add(q->p, q->cap, &q->len, env, len);
    }
    *fl = q->len - before;
    return rc;
}

/* ---- envelopes owed to a link ---- */

static int owed_pending(const struct chp_link *l)
{
    return l->owed && l->owed->n;
}

/* Owes l the stored envelope id (serve: as an answer, which counts as
 * moved from now on, so that a sync that asks again for what is still
 * owed does not owe it twice). CHP_OK, or CHP_E_IO when l is owed
 * OWED_MAX already. */
static int owe(chp_mesh *n, struct chp_link *l, const uint8_t id[32], int serve)
{
    if (!l->owed && !(l->owed = calloc(1, sizeof *l->owed)))
        return CHP_E_IO;
    struct chp_link_owed *o = l->owed;
    if (o->n == OWED_MAX)
        return CHP_E_IO;
    size_t k = (o->head + o->n++) % OWED_MAX;
    memcpy(o->id[k], id, 32);
    o->serve[k] = (uint8_t)serve;
    if (serve)
        chp_moved_add(l, id, mesh_ms(n));
    return CHP_OK;
}

static int push_now(chp_mesh *n, struct chp_link *l, const uint8_t *env, size_t len);

/* Sends the stored envelope id to l now (serve: as an answer, moved
 * from now on), never one the neighbour would find expired. */
static int serve_now(chp_mesh *n, struct chp_link *l, const uint8_t id[32], int serve)
{
    uint8_t env[CHP_ENV_MAX_BYTES];
    size_t len;
    chp_store_meta meta;
    if (chp_store_get(n->store, id, env, sizeof env, &len, &meta) != CHP_OK ||
        meta.expiry <= mesh_unix(n) + CHP_SERVE_MARGIN_S)
        return CHP_E_NOT_FOUND;
    int rc = push_now(n, l, env, len);
    if (rc == CHP_OK && serve)
        chp_moved_add(l, id, mesh_ms(n));
    return rc;
}

/* What l is owed goes out, oldest first, while its window is open. */
static void owed_drain(chp_mesh *n, struct chp_link *l)
{
    struct chp_link_owed *o = l->owed;
    while (o && o->n && chp_flow_open(l)) {
        uint8_t id[32];
        int serve = o->serve[o->head];
        memcpy(id, o->id[o->head], 32);
        o->head = (o->head + 1) % OWED_MAX;
        o->n--;
        (void)serve_now(n, l, id, serve); /* a full queue loses it: sync repairs it */
    }
    if (o && !o->n) { /* the table is 132 KiB: not kept while idle */
        free(o);
        l->owed = NULL;
    }
}

/* Pushes an envelope within l's flow window: one PUSH frame, or a place in
 * the next PUSHES frame to a neighbour that takes them. CHP_OK if queued
 * (or owed: a stored envelope that does not fit the window goes out when
 * it opens, after what was owed before). */
int chp_link_send_push(chp_mesh *n, struct chp_link *l, const uint8_t *env, size_t len)
{
    if (!chp_flow_open(l) || owed_pending(l)) {
        uint8_t id[32];
        chp_envelope_id(env, len, id);
        return owe(n, l, id, 0);
    }
    return push_now(n, l, env, len);
}

static int push_now(chp_mesh *n, struct chp_link *l, const uint8_t *env, size_t len)
{
    uint8_t f[1 + CHP_ENV_MAX_BYTES];
    size_t fl;
    int rc;
    if (l->caps & CHP_CAP_PUSHES) {
        rc = queue_push(n, l, env, len, &fl);
    } else {
        rc = chp_wire_push(f, sizeof f, &fl, env, len);
        if (rc == CHP_OK)
            rc = chp_link_send(n, l, f, fl);
    }
    if (rc != CHP_OK)
        return rc;
    l->tx_env++;
    chp_flow_sent(n, l, fl);
    return CHP_OK;
}

/* Serves a stored envelope to l (a sync or an IWANT): only one that the
 * neighbour will not find expired (CHP_SERVE_MARGIN_S), and only once per
 * MOVED_S on this link; owed while the window is full. CHP_OK if queued
 * or owed. */
int chp_link_serve(chp_mesh *n, struct chp_link *l, const uint8_t id[32])
{
    if (chp_moved_lately(l, id, mesh_ms(n)))
        return CHP_E_IO;
    if (!chp_flow_open(l) || owed_pending(l))
        return owe(n, l, id, 1);
    return serve_now(n, l, id, 1);
}
