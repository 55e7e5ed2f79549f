/* link.c - neighbours: CURVE links in both directions, the node-to-node
 * messages, forwarding, Negentropy sync, rate limits and bans. */
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/id.h"
#include "node/common/log.h"
#include "node/daemon/node_int.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define BAN_SCORE 10.0
/* A ban lasts 30 s the first time and four times longer at each repeat
 * within a day (2 min, 8 min, 32 min), 1 h at most; a peer we dialled
 * and remember is dialled again when it ends. */
#define BAN_FIRST_MS   (30u * 1000u)
#define BAN_MAX_MS     (60u * 60u * 1000u)
#define BAN_MEMORY_MS  (24u * 60u * 60u * 1000u)
#define SCORE_DECAY_PS 0.1 /* misbehaviour points forgiven per second */
/* Never served to a neighbour: envelopes that expire within this many
 * seconds by our clock (theirs may run a little ahead). */
#define SERVE_MARGIN_S 30
/* An id pushed to (or fetched from) a neighbour by a sync or an IWANT
 * answer is not moved on that link again for MOVED_S seconds: a neighbour
 * that still lacks it did not keep it (its quota) or is asking again on
 * purpose. MOVED_SETS x MOVED_WAYS ids are remembered per link. */
#define MOVED_S    600
#define MOVED_SETS 512
#define MOVED_WAYS 16
/* After a sync message either way, the neighbour's frames over its rate
 * are dropped but not scored: they are answers to the sync. */
#define SYNC_GRACE_MS 10000
/* Index items our Negentropy answers may walk for one neighbour: a token
 * bucket of WALK_RATE x (stored envelopes) per second, up to WALK_BURST x
 * that; at least WALK_MIN per second. A message that finds the bucket
 * empty waits for it. */
#define WALK_RATE  4.0
#define WALK_BURST 32.0
#define WALK_MIN   8192.0
/* PUSH and NEG bytes queued to a neighbour beyond what its PONGs have
 * acknowledged: a flow PING (nonce = FLOW_TAG | bytes queued) goes out
 * every FLOW_STEP bytes, and nothing more is queued past FLOW_WINDOW. */
#define FLOW_WINDOW      (8u << 20)
#define FLOW_STEP        (1u << 20)
#define FLOW_TAG         (1ull << 63)
#define RATE_ENV_PER_S   5000.0 /* envelopes a neighbour may push per second */
#define RATE_BURST       10000.0
#define RATE_BYTES_PER_S (16.0 * 1024 * 1024) /* all frames of one neighbour */
#define RATE_BYTES_BURST (32.0 * 1024 * 1024)
#define IWANT_BATCH      1024
#define NEG_FRAME_LIMIT  60000 /* sync messages to a peer that takes no fragments */
#define SYNC_QUIET_MS    300   /* after a sync message, duplicates prune nothing */
#define LAZY_FANOUT      3     /* lazy links each id is announced to */
#define REPAIR_SYNC_MS   2000  /* after losing a tree neighbour, reconcile */
#ifndef REPAIR_GRAFTS
#define REPAIR_GRAFTS 0 /* lazy links grafted at once then (bench-mesh: 2 churn) */
#endif
/* Envelopes one sync session pushes or requests at most: within the
 * neighbour's queue (HWM 4096). A bigger difference continues in another
 * session half a second later. */
#define SYNC_BUDGET   2048
#define SYNC_AGAIN_MS 500
#define PING_MS       2000   /* incoming-only links are pinged this often */
#define LIVENESS_MS   15000  /* and out of the view after this much silence */
#define FORGET_MS     600000 /* and forgotten after this much */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void chp_key_short(const uint8_t k[32], char out[17])
{
    for (int i = 0; i < 8; i++)
        sprintf(out + 2 * i, "%02x", k[i]);
}

/* ---- table ---- */

static int find_free(const chp_node *n)
{
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++)
        if (!n->links[i].used)
            return 1;
    return 0;
}

static void drop(struct chp_link *l);

static struct chp_link *find(chp_node *n, const uint8_t key[32])
{
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++)
        if (n->links[i].used && !memcmp(n->links[i].key, key, 32))
            return &n->links[i];
    return NULL;
}

/* A link kept only in case its silent neighbour speaks again. */
static int lingering(const struct chp_link *l)
{
    return l->used && !l->dealer && !l->router_seen;
}

static struct chp_link *create(chp_node *n, const uint8_t key[32])
{
    struct chp_link *oldest = NULL;
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++)
        if (lingering(&n->links[i]) && (!oldest || n->links[i].last_rx_ms < oldest->last_rx_ms))
            oldest = &n->links[i];
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (l->used && !(l == oldest && !find_free(n)))
            continue;
        if (l->used)
            drop(l); /* every slot taken: the longest-silent one goes */
        memset(l, 0, sizeof *l);
        l->used = 1;
        memcpy(l->key, key, 32);
        l->id = ++n->next_link_id;
        l->router_fd = -1;
        l->tokens = RATE_BURST;
        l->btokens = RATE_BYTES_BURST;
        l->tokens_ms = l->btokens_ms = l->score_ms = now_ms();
        return l;
    }
    return NULL;
}

static void close_dealer(struct chp_link *l)
{
    if (l->dealer) {
        zmq_socket_monitor(l->dealer, NULL, 0);
        zmq_close(l->dealer);
        l->dealer = NULL;
    }
    if (l->monitor) {
        zmq_close(l->monitor);
        l->monitor = NULL;
    }
    l->dealer_up = 0;
}

static void drop(struct chp_link *l)
{
    close_dealer(l);
    chp_neg_destroy(&l->neg_client);
    chp_neg_destroy(&l->neg_server);
    for (int d = 0; d < 2; d++) {
        chp_buf_free(&l->neg_rx[d]);
        chp_buf_free(&l->neg_wait[d]);
        l->neg_waiting[d] = 0;
    }
    free(l->moved);
    l->moved = NULL;
    l->used = 0;
}

int chp_link_known(chp_node *n, const uint8_t key[32])
{
    return find(n, key) != NULL;
}

void chp_link_mark_promoted(chp_node *n, const uint8_t key[32], uint64_t t)
{
    struct chp_link *l = find(n, key);
    if (l) {
        l->promoted = 1;
        l->promoted_ms = t;
    }
}

void chp_link_drop(chp_node *n, struct chp_link *l)
{
    (void)n;
    drop(l);
}

void chp_link_mark_discovered(chp_node *n, const uint8_t key[32])
{
    struct chp_link *l = find(n, key);
    if (l)
        l->discovered = 1;
}

void chp_link_close_all(chp_node *n)
{
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++)
        if (n->links[i].used)
            drop(&n->links[i]);
    chp_view_free(n);
}

size_t chp_link_connected(const chp_node *n)
{
    size_t c = 0;
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        const struct chp_link *l = &n->links[i];
        if (l->used && l->hello_rx && (l->dealer_up || l->router_seen))
            c++;
    }
    return c;
}

/* ---- bans ---- */

int chp_link_banned(chp_node *n, const uint8_t key[32], uint64_t t)
{
    for (size_t i = 0; i < CHP_NODE_BANS_MAX; i++)
        if (n->bans[i].until_ms > t && !memcmp(n->bans[i].key, key, 32))
            return 1;
    return 0;
}

static void decay(struct chp_link *l, uint64_t t)
{
    if (t > l->score_ms) {
        l->score -= (double)(t - l->score_ms) * SCORE_DECAY_PS / 1000.0;
        if (l->score < 0)
            l->score = 0;
    }
    l->score_ms = t;
}

/* Bans l's key: longer for a key banned before (within a day), and with
 * the address we dialled it at, when it is one the user gave us, to dial
 * it again when the ban ends. Drops the link. */
static void ban(chp_node *n, struct chp_link *l, const char *why)
{
    uint64_t t = now_ms();
    struct chp_ban *b = NULL, *oldest = NULL;
    for (size_t i = 0; i < CHP_NODE_BANS_MAX && !b; i++) {
        struct chp_ban *x = &n->bans[i];
        if (x->last_ms && t - x->last_ms < BAN_MEMORY_MS && !memcmp(x->key, l->key, 32))
            b = x;
        else if (x->until_ms <= t && (!oldest || x->last_ms < oldest->last_ms))
            oldest = x;
    }
    if (!b) {
        b = oldest ? oldest : &n->bans[0];
        memset(b, 0, sizeof *b);
        memcpy(b->key, l->key, 32);
    }
    uint64_t ms = BAN_FIRST_MS;
    for (uint32_t k = 0; k < b->strikes && ms < BAN_MAX_MS; k++)
        ms *= 4;
    if (ms > BAN_MAX_MS)
        ms = BAN_MAX_MS;
    b->strikes++;
    b->last_ms = t;
    b->until_ms = t + ms;
    if (l->addr[0] && !l->discovered && !l->promoted)
        snprintf(b->addr, sizeof b->addr, "%s", l->addr);
    char ks[17];
    chp_key_short(l->key, ks);
    chp_warn("banning neighbour %s for %llu s: %s", ks, (unsigned long long)(ms / 1000), why);
    n->ctr.bans++;
    drop(l);
}

/* Adds points to l's score, which loses SCORE_DECAY_PS a second: a peer is
 * banned for misbehaving faster than that, never for the odd mistake of
 * an honest node. l may be dropped on return (check l->used). */
static void misbehave(chp_node *n, struct chp_link *l, double points, const char *why)
{
    decay(l, now_ms());
    l->score += points;
    if (l->score >= BAN_SCORE)
        ban(n, l, why);
}

/* ---- sending ---- */

static int send_to(chp_node *n, struct chp_link *l, const uint8_t *frame, size_t len)
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

int chp_link_send(chp_node *n, struct chp_link *l, const uint8_t *frame, size_t len)
{
    return send_to(n, l, frame, len);
}

static uint32_t our_caps(const chp_node *n)
{
    return CHP_CAP_NEG | CHP_CAP_NEG_FRAG | CHP_CAP_HELD | (n->relay ? CHP_CAP_RELAY : 0);
}

/* The listen port our HELLO names: on a link of our LAN listener its
 * port, so that PEERS naming us does not tell the LAN our permanent one. */
static uint16_t hello_port(chp_node *n, const struct chp_link *l)
{
    if (!l->lan_gen)
        return n->port;
    const struct chp_lan *lan = chp_node_lan_of(n, l->lan_gen);
    return lan ? lan->port : 0;
}

static void send_hello(chp_node *n, struct chp_link *l)
{
    uint8_t f[16];
    size_t len;
    uint32_t caps = our_caps(n);
    if (chp_wire_hello(f, sizeof f, &len, caps, hello_port(n, l), CHP_WIRE_MAX_FRAME) == CHP_OK)
        send_to(n, l, f, len);
}

/* Our HELLO over the ROUTER, to the connection theirs came in on: an
 * answer via send_to would take our dealer when the link is both ways and
 * be answered again, forever. */
static void send_hello_router(chp_node *n, struct chp_link *l)
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

/* ---- per-link flow window ---- */

/* 1 while less than FLOW_WINDOW of PUSH and NEG bytes to l wait for its
 * PONG: a neighbour that does not read costs us that much memory, not
 * the queue's 4096 frames of up to 64 KiB. */
static int flow_open(const struct chp_link *l)
{
    return l->flow_tx - l->flow_acked < FLOW_WINDOW;
}

static void flow_sent(chp_node *n, struct chp_link *l, size_t len)
{
    l->flow_tx += len;
    if (l->flow_tx - l->flow_pinged < FLOW_STEP)
        return;
    uint8_t f[16];
    size_t fl;
    if (chp_wire_ping(f, sizeof f, &fl, CHP_MSG_PING, FLOW_TAG | l->flow_tx) == CHP_OK &&
        send_to(n, l, f, fl) == CHP_OK)
        l->flow_pinged = l->flow_tx;
}

static void flow_pong(struct chp_link *l, uint64_t nonce)
{
    uint64_t v = nonce & ~FLOW_TAG;
    if ((nonce & FLOW_TAG) && v > l->flow_acked && v <= l->flow_tx)
        l->flow_acked = v;
}

/* A connection of l closed: what was queued on it is gone, and with it
 * the PINGs that would have acknowledged it; ids moved over it may have
 * been lost too. */
static void link_reset(struct chp_link *l)
{
    l->flow_tx = l->flow_acked = l->flow_pinged = 0;
    free(l->moved);
    l->moved = NULL;
}

/* ---- ids moved on a link lately ---- */

struct chp_link_moved {
    uint64_t id[MOVED_SETS][MOVED_WAYS]; /* first 8 bytes of the id */
    uint32_t at[MOVED_SETS][MOVED_WAYS]; /* when, in s of the monotonic clock + 1; 0 = free */
};

static uint64_t id_word(const uint8_t id[32])
{
    uint64_t w;
    memcpy(&w, id, 8); /* ids are hashes: any 8 bytes are as good as a hash */
    return w;
}

static uint32_t now_s1(void)
{
    return (uint32_t)(now_ms() / 1000u) + 1;
}

/* 1 if id was moved on l in the last MOVED_S seconds. */
static int moved_lately(const struct chp_link *l, const uint8_t id[32])
{
    if (!l->moved)
        return 0;
    uint64_t w = id_word(id);
    uint32_t t = now_s1();
    size_t set = (size_t)(w >> 32) % MOVED_SETS;
    for (int k = 0; k < MOVED_WAYS; k++)
        if (l->moved->at[set][k] && l->moved->id[set][k] == w && t - l->moved->at[set][k] < MOVED_S)
            return 1;
    return 0;
}

/* Remembers that id was moved on l now (the set's oldest entry makes room). */
static void moved_add(struct chp_link *l, const uint8_t id[32])
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
    l->moved->at[set][victim] = now_s1();
}

/* Pushes an envelope within l's flow window; CHP_OK if queued. */
static int send_push(chp_node *n, struct chp_link *l, const uint8_t *env, size_t len)
{
    uint8_t f[1 + CHP_ENV_MAX_BYTES];
    size_t fl;
    if (!flow_open(l))
        return CHP_E_IO;
    int rc = chp_wire_push(f, sizeof f, &fl, env, len);
    if (rc == CHP_OK)
        rc = send_to(n, l, f, fl);
    if (rc != CHP_OK)
        return rc;
    l->tx_env++;
    flow_sent(n, l, fl);
    return CHP_OK;
}

static uint64_t now_unix(void)
{
    return (uint64_t)time(NULL);
}

/* Serves a stored envelope to l (a sync or an IWANT): only one that the
 * neighbour will not find expired (SERVE_MARGIN_S), and only once per
 * MOVED_S on this link. CHP_OK if queued. */
static int serve(chp_node *n, struct chp_link *l, const uint8_t id[32])
{
    uint8_t env[CHP_ENV_MAX_BYTES];
    size_t len;
    chp_store_meta meta;
    if (!flow_open(l) || moved_lately(l, id))
        return CHP_E_IO;
    if (chp_store_get(n->store, id, env, sizeof env, &len, &meta) != CHP_OK ||
        meta.expiry <= now_unix() + SERVE_MARGIN_S)
        return CHP_E_NOT_FOUND;
    int rc = send_push(n, l, env, len);
    if (rc == CHP_OK)
        moved_add(l, id);
    return rc;
}

static void send_ids(chp_node *n, struct chp_link *l, uint8_t type, const uint8_t *ids,
                     uint16_t cnt)
{
    uint8_t f[3 + CHP_WIRE_MAX_IDS * 32];
    size_t fl;
    if (cnt && chp_wire_ids(f, sizeof f, &fl, type, ids, cnt) == CHP_OK)
        send_to(n, l, f, fl);
}

static int link_up(const struct chp_link *l)
{
    return l->used && l->hello_rx && (l->dealer_up || l->router_seen);
}

static void flush_ihave(chp_node *n, struct chp_link *l)
{
    send_ids(n, l, CHP_MSG_IHAVE, l->ihave, l->nihave);
    n->ctr.ihave_tx += l->nihave;
    l->nihave = 0;
}

/* QUERY: answered only after everything this link sent before it is
 * committed, so HELD means "durably stored here" (PROTOCOL.md §15). */
static void on_query(chp_node *n, struct chp_link *l, const chp_msg *m)
{
    uint8_t held[CHP_WIRE_MAX_IDS * 32];
    uint16_t nh = 0;
    (void)chp_node_flush(n);
    for (uint16_t i = 0; i < m->u.ids.n; i++) {
        const uint8_t *id = m->u.ids.ids + 32 * i;
        if (chp_store_has(n->store, id) == 1)
            memcpy(held + 32 * nh++, id, 32);
    }
    send_ids(n, l, CHP_MSG_HELD, held, nh);
}

void chp_link_query_held(chp_node *n)
{
    uint8_t ids[256][32];
    size_t k = n->msg ? chp_msg_unconfirmed(n->msg, ids, 256) : 0;
    for (size_t i = 0; k && i < CHP_NODE_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (link_up(l) && (l->caps & CHP_CAP_HELD))
            send_ids(n, l, CHP_MSG_QUERY, ids[0], (uint16_t)k);
    }
}

void chp_link_flush_lazy(chp_node *n)
{
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++)
        if (n->links[i].used && n->links[i].nihave)
            flush_ihave(n, &n->links[i]);
}

static void forget_missing(chp_node *n, const uint8_t id[32])
{
    /* Every forwarded envelope passes here: an empty table costs nothing. */
    for (size_t i = 0; n->nmissing && i < CHP_NODE_MISSING_MAX; i++)
        if (n->missing[i].due_ms && !memcmp(n->missing[i].id, id, 32)) {
            n->missing[i].due_ms = 0;
            n->nmissing--;
        }
}

/* Plumtree: the full envelope goes to eager links (the spanning tree), its
 * id to lazy ones; never back to the link it came from. */
/* ms since this node first had id, or UINT64_MAX when not recently. */
static uint64_t first_age(const chp_node *n, const uint8_t id[32], uint64_t t)
{
    for (size_t i = 0; i < CHP_NODE_RECENT_MAX; i++)
        if (n->recent[i].ms && !memcmp(n->recent[i].id, id, 8))
            return t - n->recent[i].ms;
    return UINT64_MAX;
}

/* A cheap generator for choosing lazy links (not for anything secret). */
static uint64_t next_rand(chp_node *n)
{
    uint64_t x = n->lazy_rng ? n->lazy_rng : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return n->lazy_rng = x;
}

int chp_link_forward(chp_node *n, const uint8_t *env, size_t len, const uint8_t id[32],
                     uint32_t src)
{
    int sent = 0;
    chp_env_hdr h;
    if (chp_envelope_parse(env, len, &h, NULL, NULL, NULL) != CHP_OK ||
        h.expiry <= now_unix() + SERVE_MARGIN_S)
        return 0; /* about to expire: neighbours would only refuse it */
    struct chp_recent *r = &n->recent[n->recent_next];
    memcpy(r->id, id, 8);
    r->ms = now_ms();
    n->recent_next = (n->recent_next + 1) % CHP_NODE_RECENT_MAX;
    forget_missing(n, id);
    /* Push along the tree; announce the id to LAZY_FANOUT of the lazy links
     * only, chosen at random for each envelope (reservoir sampling): every
     * node still hears of it from a few neighbours, for a fraction of the
     * bytes of announcing to all of them. */
    struct chp_link *pick[LAZY_FANOUT];
    size_t seen = 0;
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!link_up(l) || l->id == src)
            continue;
        sent++;
        if (!l->lazy) {
            send_push(n, l, env, len);
            continue;
        }
        if (seen < LAZY_FANOUT)
            pick[seen] = l;
        else if (next_rand(n) % (seen + 1) < LAZY_FANOUT)
            pick[next_rand(n) % LAZY_FANOUT] = l;
        seen++;
    }
    for (size_t k = 0; k < seen && k < LAZY_FANOUT; k++) {
        struct chp_link *l = pick[k];
        memcpy(l->ihave + 32 * l->nihave++, id, 32);
        if (l->nihave == sizeof l->ihave / 32)
            flush_ihave(n, l);
    }
    return sent;
}

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

static chp_neg *new_session(chp_node *n, struct chp_link *l)
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
static void send_neg(chp_node *n, struct chp_link *l, uint32_t session, uint8_t initiator,
                     const chp_buf *msg)
{
    uint8_t *f = malloc(CHP_WIRE_MAX_FRAME);
    size_t fl, off = 0, sent = 0;
    while (f && off < msg->len) {
        size_t k = msg->len - off > CHP_NEG_FRAG_MAX ? CHP_NEG_FRAG_MAX : msg->len - off;
        uint8_t flags = (uint8_t)(initiator | (off + k < msg->len ? CHP_NEG_MORE : 0));
        if (chp_wire_neg(f, CHP_WIRE_MAX_FRAME, &fl, session, flags, msg->p + off, k) != CHP_OK ||
            send_to(n, l, f, fl) != CHP_OK)
            break;
        off += k;
        sent += fl;
    }
    free(f);
    flow_sent(n, l, sent); /* after the last fragment: no PING between them */
}

/* Collects the fragments of one NEG message. Returns 1 with msg and len set
 * when a whole message is there (the frame itself, or the reassembled
 * buffer until the next call), 0 while more are to come, -1 for a message
 * over CHP_NEG_MSG_MAX or fragments from a peer that never said it sends
 * them. */
static int neg_assemble(struct chp_link *l, const chp_msg *m, const uint8_t **msg, size_t *len)
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
    if (b->cap < b->len + m->u.neg.len) {
        size_t cap =
            b->len + m->u.neg.len > CHP_NEG_MSG_MAX / 4 ? CHP_NEG_MSG_MAX : CHP_NEG_MSG_MAX / 4;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            chp_buf_free(b);
            return 0; /* dropped, like a frame lost to memory pressure */
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, m->u.neg.msg, m->u.neg.len);
    b->len += m->u.neg.len;
    *sess = m->u.neg.session;
    if (m->u.neg.more)
        return 0;
    *msg = b->p;
    *len = b->len;
    b->len = 0; /* the bytes stay valid until the next fragment arrives */
    return 1;
}

static void start_sync(chp_node *n, struct chp_link *l)
{
    chp_neg_destroy(&l->neg_client);
    if (!flow_open(l))
        return; /* they do not read what we send: not now */
    l->neg_client = new_session(n, l);
    if (!l->neg_client)
        return;
    chp_buf out = {0};
    l->neg_ms = now_ms();
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
    chp_node *n;
    struct chp_link *l;
    uint8_t want[IWANT_BATCH * 32];
    uint16_t nwant;
    int full; /* their queue refused a push: push no more this round */
};

static void flush_want(struct sync_ctx *c)
{
    uint8_t f[3 + IWANT_BATCH * 32];
    size_t fl;
    if (c->nwant && chp_wire_ids(f, sizeof f, &fl, CHP_MSG_IWANT, c->want, c->nwant) == CHP_OK)
        send_to(c->n, c->l, f, fl);
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
    if (moved_lately(c->l, id)) {
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

/* What we have and they lack: pushed, unless it expires soon or we pushed
 * it to them lately (they did not keep it: their quota), or their flow
 * window is full (then the next session goes on). */
static int sync_have(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    struct sync_ctx *c = ctx;
    struct chp_link *l = c->l;
    if (moved_lately(l, id)) {
        l->sync_repeat++;
        return 0;
    }
    if (l->sync_pushed >= SYNC_BUDGET || c->full || !flow_open(l)) {
        l->sync_more = 1;
        return 0;
    }
    int rc = serve(c->n, l, id);
    if (rc == CHP_OK)
        l->sync_pushed++;
    else if (rc == CHP_E_IO)
        c->full = l->sync_more = 1; /* their queue is full: the next session goes on */
    return 0;
}

static uint64_t store_items(chp_node *n)
{
    chp_store_stats st;
    chp_store_stats_get(n->store, &st);
    return st.envelopes;
}

/* Refills l's Negentropy walk budget (see WALK_RATE). */
static void walk_refill(chp_node *n, struct chp_link *l, uint64_t t)
{
    double items = (double)store_items(n);
    double rate = WALK_RATE * items > WALK_MIN ? WALK_RATE * items : WALK_MIN;
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
static void neg_handle(chp_node *n, struct chp_link *l, int from_initiator, uint32_t session,
                       const uint8_t *msg, size_t len)
{
    chp_buf out = {0};
    n->ctr.sync_rounds++;
    l->walked = 0;
    if (from_initiator) { /* they sync with us: we answer */
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
            misbehave(n, l, 2.0, "malformed sync message");
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
        misbehave(n, l, 2.0, "malformed sync reply");
    } else if (out.len) {
        send_neg(n, l, l->neg_session, 1, &out);
    } else {
        chp_neg_destroy(&l->neg_client);
        n->ctr.syncs_done++;
        /* Go on soon only while the sync moves new envelopes: differences
         * that are mostly ids moved lately are a neighbour that cannot
         * keep them (its quota), and syncing again would not change that. */
        if (l->sync_more && l->sync_repeat < l->sync_pushed + l->sync_wanted)
            l->next_sync_ms = now_ms() + SYNC_AGAIN_MS;
        char ks[17];
        chp_key_short(l->key, ks);
        chp_debug("sync with %s complete: %u pushed, %u fetched, %u moved lately", ks,
                  l->sync_pushed, l->sync_wanted, l->sync_repeat);
    }
    chp_buf_free(&out);
}

/* 1 when a sync message from l may be handled now: its walk budget is
 * not spent and its flow window has room for our answer. */
static int neg_may(chp_node *n, struct chp_link *l, uint64_t t)
{
    walk_refill(n, l, t);
    return l->walk_tokens > 0 && flow_open(l);
}

static void on_neg(chp_node *n, struct chp_link *l, const chp_msg *m)
{
    const uint8_t *msg;
    size_t len;
    uint64_t t = now_ms();
    l->neg_ms = t;
    int whole = neg_assemble(l, m, &msg, &len);
    if (whole < 0) {
        n->ctr.rej_sync++;
        misbehave(n, l, 2.0, "sync message too large");
        return;
    }
    if (!whole)
        return;
    int d = m->u.neg.initiator;
    if (!l->neg_waiting[d] && neg_may(n, l, t)) {
        neg_handle(n, l, d, m->u.neg.session, msg, len);
        return;
    }
    /* Over budget: the message waits for it (chp_link_periodic). An
     * honest peer waits for our answer before it sends the next one. */
    if (l->neg_waiting[d]) {
        misbehave(n, l, 0.1, "sync messages faster than they are answered");
        if (!l->used)
            return;
    }
    chp_buf *b = &l->neg_wait[d];
    if (b->cap < len) {
        uint8_t *p = realloc(b->p, len);
        if (!p)
            return;
        b->p = p;
        b->cap = len;
    }
    memcpy(b->p, msg, len);
    b->len = len;
    l->neg_wait_session[d] = m->u.neg.session;
    l->neg_waiting[d] = 1;
}

/* Handles sync messages that waited for l's budget, once it allows. */
static void neg_resume(chp_node *n, struct chp_link *l, uint64_t t)
{
    for (int d = 1; d >= 0 && l->used; d--) {
        if (!l->neg_waiting[d] || !neg_may(n, l, t))
            continue;
        chp_buf b = l->neg_wait[d];
        memset(&l->neg_wait[d], 0, sizeof b);
        l->neg_waiting[d] = 0;
        neg_handle(n, l, d, l->neg_wait_session[d], b.p, b.len);
        chp_buf_free(&b);
    }
}

/* ---- receiving ---- */

static int take_bytes(struct chp_link *l, uint64_t t, size_t len)
{
    l->btokens += (double)(t - l->btokens_ms) * RATE_BYTES_PER_S / 1000.0;
    if (l->btokens > RATE_BYTES_BURST)
        l->btokens = RATE_BYTES_BURST;
    l->btokens_ms = t;
    if (l->btokens < (double)len)
        return 0;
    l->btokens -= (double)len;
    return 1;
}

static int take_token(struct chp_link *l, uint64_t t)
{
    l->tokens += (double)(t - l->tokens_ms) * RATE_ENV_PER_S / 1000.0;
    if (l->tokens > RATE_BURST)
        l->tokens = RATE_BURST;
    l->tokens_ms = t;
    if (l->tokens < 1.0)
        return 0;
    l->tokens -= 1.0;
    return 1;
}

/* An announced id we lack: wait GRAFT_MS for the tree to deliver it. */
#define GRAFT_MS        500
#define PRUNE_WINDOW_MS (GRAFT_MS / 2) /* later copies mend; they prune nothing */

static void note_missing(chp_node *n, const uint8_t id[32], uint32_t link, uint64_t t)
{
    struct chp_missing *free_slot = NULL;
    for (size_t i = 0; i < CHP_NODE_MISSING_MAX; i++) {
        struct chp_missing *m = &n->missing[i];
        if (m->due_ms && !memcmp(m->id, id, 32))
            return; /* already waiting for it */
        if (!m->due_ms && !free_slot)
            free_slot = m;
    }
    if (!free_slot)
        return; /* table full: the periodic sync will fetch it */
    memcpy(free_slot->id, id, 32);
    free_slot->link = link;
    free_slot->due_ms = t + GRAFT_MS;
    n->nmissing++;
}

static void on_ids(chp_node *n, struct chp_link *l, const chp_msg *m)
{
    uint64_t t = now_ms();
    if (m->type == CHP_MSG_GRAFT) {
        l->lazy = 0; /* back into the tree */
        n->ctr.grafts++;
    }
    for (uint16_t i = 0; i < m->u.ids.n; i++) {
        const uint8_t *id = m->u.ids.ids + 32 * i;
        if (m->type == CHP_MSG_IHAVE) {
            if (chp_store_has(n->store, id) == 0)
                note_missing(n, id, l->id, t);
            continue;
        }
        /* IWANT or GRAFT: send what we have, each id once per MOVED_S
         * (an id asked for again, even 1024 times in one frame, is sent
         * once), and nothing past the flow window. */
        if (!flow_open(l))
            break;
        (void)serve(n, l, id);
    }
}

/* Announced ids that did not arrive in time: GRAFT the announcing link
 * back into the tree and ask it for them. */
static void graft_due(chp_node *n, uint64_t t)
{
    for (size_t i = 0; i < CHP_NODE_MISSING_MAX; i++) {
        struct chp_missing *m = &n->missing[i];
        if (!m->due_ms || m->due_ms > t)
            continue;
        m->due_ms = 0;
        n->nmissing--;
        if (chp_store_has(n->store, m->id) != 0)
            continue;
        struct chp_link *l = NULL;
        for (size_t k = 0; k < CHP_NODE_LINKS_MAX && !l; k++)
            if (n->links[k].used && n->links[k].id == m->link)
                l = &n->links[k];
        if (!l || !link_up(l))
            continue;
        send_ids(n, l, CHP_MSG_GRAFT, m->id, 1);
        l->lazy = 0;
        n->ctr.grafts++;
    }
}

static void on_push(chp_node *n, struct chp_link *l, const chp_msg *m, uint64_t t)
{
    int syncing = t - l->neg_ms < SYNC_GRACE_MS;
    if (!take_token(l, t)) {
        n->ctr.rate_dropped++;
        if (!syncing) /* answers to a sync are dropped, never scored */
            misbehave(n, l, 0.01, "flooding");
        return;
    }
    l->rx_env++;
    int rc = chp_node_ingest(n, m->u.push.env, m->u.push.len, l->id, 0);
    uint8_t id[32];
    if (rc == CHP_E_DUP || syncing)
        chp_envelope_id(m->u.push.env, m->u.push.len, id);
    if (!syncing && rc == CHP_E_DUP && moved_lately(l, id))
        /* The same envelope again from the same neighbour, outside a sync:
         * no honest node does that (never back to the source, a sync
         * moves an id once per link); a copy flood, however slow. */
        misbehave(n, l, 0.05, "pushes the same envelope again");
    else if (syncing || rc == CHP_E_DUP)
        moved_add(l, id); /* (in a sync: it finds it missing again, we did not keep it) */
    if (rc == CHP_E_DUP && !l->lazy && t - l->neg_ms > SYNC_QUIET_MS &&
        (n->dup_in_flight || first_age(n, id, t) < PRUNE_WINDOW_MS)) {
        /* A second copy over the tree: this link is redundant for pushes.
         * (Copies during a sync are expected and prune nothing.) */
        uint8_t f[4];
        size_t fl;
        if (chp_wire_prune(f, sizeof f, &fl) == CHP_OK)
            send_to(n, l, f, fl);
        l->lazy = 1;
        n->ctr.prunes++;
    }
    /* Expired or not yet valid by our clock is not scored: an honest
     * neighbour's clock differs a little from ours, and such envelopes
     * cost one header check (the token bucket bounds how many). */
    if (rc == CHP_E_ENV_SIZE || rc == CHP_E_ENV_VERSION || rc == CHP_E_ENV_TTL ||
        rc == CHP_E_ENV_POW)
        misbehave(n, l, 1.0, "invalid envelopes");
}

static void handle(chp_node *n, struct chp_link *l, const uint8_t *frame, size_t len,
                   int via_router)
{
    uint64_t t = now_ms();
    chp_msg m;
    l->last_rx_ms = t;
    n->ctr.rx_bytes += len;
    if (!take_bytes(l, t, len)) {
        n->ctr.rate_dropped++;
        if (t - l->neg_ms >= SYNC_GRACE_MS) /* answers to a sync are dropped, never scored */
            misbehave(n, l, 0.01, "over its byte rate");
        return;
    }
    int rc = chp_wire_decode(frame, len, &m);
    if (rc == CHP_E_VERSION) {
        uint8_t f[64];
        size_t fl;
        send_hello(n, l);
        if (chp_wire_bye(f, sizeof f, &fl, 1, "unsupported protocol version") == CHP_OK)
            send_to(n, l, f, fl);
        return;
    }
    if (rc != CHP_OK) {
        n->ctr.rej_malformed++;
        misbehave(n, l, 1.0, "malformed frames");
        return;
    }
    if (m.type != CHP_MSG_HELLO && !l->hello_rx && l->hello_ever) {
        /* Forgotten for silence (its loop was busy, say with proof of
         * work) while the connection stayed up: CURVE still proves the
         * key, so it is the same neighbour; take it back. */
        l->hello_rx = 1;
        if (via_router)
            send_hello_router(n, l);
    }
    if (m.type != CHP_MSG_HELLO && !l->hello_rx) {
        n->ctr.rej_malformed++;
        misbehave(n, l, 1.0, "no HELLO first");
        return;
    }
    switch (m.type) {
    case CHP_MSG_HELLO: {
        int first = !l->hello_rx;
        if (first)
            link_reset(l); /* a new connection: nothing of ours is queued on it */
        l->hello_rx = l->hello_ever = 1;
        l->caps = m.u.hello.caps;
        l->listen_port = m.u.hello.listen_port;
        if (via_router)
            send_hello_router(n, l);
        if (first) {
            char ks[17];
            chp_key_short(l->key, ks);
            chp_info("neighbour %s up (%s)", ks, via_router ? "incoming" : "outgoing");
            zmq_send(n->events, "peer", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(n->events, "up", 2, ZMQ_DONTWAIT);
            chp_view_send_peers(n, l); /* seeds its passive view */
        }
        if (!via_router) /* the side that dialled starts the sync */
            start_sync(n, l);
        break;
    }
    case CHP_MSG_PUSH:
        on_push(n, l, &m, t);
        break;
    case CHP_MSG_IHAVE:
    case CHP_MSG_IWANT:
    case CHP_MSG_GRAFT:
        on_ids(n, l, &m);
        break;
    case CHP_MSG_PRUNE:
        l->lazy = 1;
        break;
    case CHP_MSG_NEG:
        on_neg(n, l, &m);
        break;
    case CHP_MSG_PING: {
        uint8_t f[16];
        size_t fl;
        if (chp_wire_ping(f, sizeof f, &fl, CHP_MSG_PONG, m.u.nonce) == CHP_OK)
            send_to(n, l, f, fl);
        break;
    }
    case CHP_MSG_BYE:
        chp_info("neighbour says bye: %.*s", (int)m.u.bye.len, m.u.bye.text);
        break;
    case CHP_MSG_PEERS:
        chp_view_on_peers(n, &m);
        break;
    case CHP_MSG_QUERY:
        on_query(n, l, &m);
        break;
    case CHP_MSG_HELD:
        for (uint16_t i = 0; n->msg && i < m.u.ids.n; i++)
            chp_msg_on_held(n->msg, m.u.ids.ids + 32 * i);
        break;
    case CHP_MSG_PONG: /* a flow PING's answer opens the window; others need none */
        flow_pong(l, m.u.nonce);
        break;
    default:
        break;
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void chp_link_recv_router(chp_node *n, void *sock, int max)
{
    uint32_t gen = 0; /* which LAN listener sock is, 0 = our ROUTER */
    for (int i = 0; i < 2; i++)
        if (n->lan[i].router && n->lan[i].router == sock)
            gen = n->lan[i].gen;
    for (int i = 0; i < max; i++) {
        zmq_msg_t rid, data;
        zmq_msg_init(&rid);
        zmq_msg_init(&data);
        if (zmq_msg_recv(&rid, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            zmq_msg_close(&data);
            return;
        }
        int ok = zmq_msg_more(&rid) && zmq_msg_recv(&data, sock, ZMQ_DONTWAIT) >= 0;
        while (ok && zmq_msg_more(&data)) { /* only single-frame messages are valid */
            zmq_msg_t x;
            zmq_msg_init(&x);
            zmq_msg_recv(&x, sock, 0);
            ok = zmq_msg_more(&x) ? ok : 0;
            zmq_msg_close(&x);
        }
        /* Who sent it is the CURVE key ZAP authenticated (the User-Id of the
         * frame), never the routing id, which a client may choose freely. */
        const char *uid = ok ? zmq_msg_gets(&data, "User-Id") : NULL;
        uint8_t key[32];
        size_t ridlen = zmq_msg_size(&rid);
        int valid = uid && strlen(uid) == 64 && ridlen > 0 && ridlen <= sizeof n->links[0].rid;
        for (int k = 0; valid && k < 32; k++) {
            int hi = hexval(uid[2 * k]), lo = hexval(uid[2 * k + 1]);
            valid = hi >= 0 && lo >= 0;
            key[k] = (uint8_t)(hi * 16 + lo);
        }
        if (!valid) {
            n->ctr.rej_malformed++;
        } else if (!chp_link_banned(n, key, now_ms())) {
            struct chp_link *l = find(n, key);
            if (!l)
                l = create(n, key);
            if (l) {
                /* Replies go to the connection the key spoke on last. */
                memcpy(l->rid, zmq_msg_data(&rid), ridlen);
                l->ridlen = ridlen;
                l->router_seen = 1;
                l->rsock = sock;
                /* answered, and dialled, as that listener; not a link we
                 * dial with our transport key (a relay we know by address
                 * that found our beacon): a rotation must not drop it */
                if (gen && (!l->dealer || l->lan_gen))
                    l->lan_gen = gen;
                /* the connection's socket, to know when it closes */
                int fd = zmq_msg_get(&data, ZMQ_SRCFD);
                if (fd != l->router_fd)
                    chp_node_conn_spoke(n, fd, key);
                l->router_fd = fd;
                handle(n, l, zmq_msg_data(&data), zmq_msg_size(&data), 1);
            }
        }
        zmq_msg_close(&rid);
        zmq_msg_close(&data);
    }
}

/* ---- outgoing links ---- */

static int open_dealer(chp_node *n, struct chp_link *l, const chp_addr *a)
{
    char ep[300], mon[64];
    if (chp_addr_endpoint(a, ep, sizeof ep) != CHP_OK)
        return CHP_E_ARG;
    int one = 1, zero = 0, ivl = 100, ivl_max = 30000, hwm = 4096;
    int64_t maxmsg = CHP_WIRE_ZMQ_MAXMSG;
    /* A link of our LAN listener dials with that listener's key: nothing
     * the LAN sees names our transport key. */
    const struct chp_lan *lan = chp_node_lan_of(n, l->lan_gen);
    if (l->lan_gen && !lan)
        return CHP_E_IO; /* that listener closed */
    l->dealer = zmq_socket(n->zctx, ZMQ_DEALER);
    if (!l->dealer)
        return CHP_E_IO;
    /* Reconnects back off exponentially from 100 ms to 30 s (libzmq). */
    if (zmq_setsockopt(l->dealer, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(l->dealer, ZMQ_LINGER, &zero, sizeof zero) ||
        /* as the ROUTER's (node.c link_opts): a sync session's 2048 pushes
         * fit; the flow window bounds the bytes */
        zmq_setsockopt(l->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(l->dealer, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(l->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) ||
        zmq_setsockopt(l->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) ||
        zmq_setsockopt(l->dealer, ZMQ_IMMEDIATE, &one, sizeof one) ||
        zmq_setsockopt(l->dealer, ZMQ_CURVE_SERVERKEY, a->key, 32) ||
        zmq_setsockopt(l->dealer, ZMQ_CURVE_PUBLICKEY, lan ? lan->pk : n->tpk, 32) ||
        zmq_setsockopt(l->dealer, ZMQ_CURVE_SECRETKEY, lan ? lan->sk : n->tsk, 32) ||
        (a->ipv6 && zmq_setsockopt(l->dealer, ZMQ_IPV6, &one, sizeof one))) {
        close_dealer(l);
        return CHP_E_IO;
    }
    int hb = 2000, hbt = 6000;
    zmq_setsockopt(l->dealer, ZMQ_HEARTBEAT_IVL, &hb, sizeof hb);
    zmq_setsockopt(l->dealer, ZMQ_HEARTBEAT_TIMEOUT, &hbt, sizeof hbt);
    snprintf(mon, sizeof mon, "inproc://chapar-mon-%u", l->id);
    if (zmq_socket_monitor(
            l->dealer, mon,
            ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECTED |
                ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
        !(l->monitor = zmq_socket(n->zctx, ZMQ_PAIR)) || zmq_connect(l->monitor, mon) != 0 ||
        zmq_connect(l->dealer, ep) != 0) {
        close_dealer(l);
        return CHP_E_IO;
    }
    return CHP_OK;
}

static int known_list(chp_node *n, char *buf, size_t cap, size_t *len)
{
    int rc = chp_store_setting_get(n->store, "peers", buf, cap - 1, len);
    if (rc == CHP_E_NOT_FOUND) {
        *len = 0;
        rc = CHP_OK;
    }
    buf[rc == CHP_OK ? *len : 0] = '\0';
    return rc;
}

/* 1 if addr (canonical) is a line of the remembered peer list. */
static int remembered(chp_node *n, const char *addr)
{
    static const size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    size_t len;
    int found = 0;
    if (buf && known_list(n, buf, cap, &len) == CHP_OK)
        for (char *line = strtok(buf, "\n"); line && !found; line = strtok(NULL, "\n"))
            found = !strcmp(line, addr);
    free(buf);
    return found;
}

/* Keeps the remembered peer list at one line per node key: adding an
 * address replaces any other address of the same node; removing deletes
 * exactly canon. 1 if canon itself was in the list. */
static int remember(chp_node *n, const chp_addr *a, const char *canon, int add)
{
    static const size_t cap = 64 * 1024;
    char *buf = malloc(cap), *out = malloc(cap);
    size_t len = 0, ol = 0;
    int changed = 0, present = 0, had = 0;
    if (!buf || !out || known_list(n, buf, cap, &len) != CHP_OK)
        goto done;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        chp_addr la;
        if (chp_addr_parse(line, strlen(line), &la) == CHP_OK && !memcmp(la.key, a->key, 32)) {
            int same = !strcmp(line, canon);
            had |= same;
            if ((add && same && !present) || (!add && !same)) {
                present |= same;
            } else {
                changed = 1;
                continue;
            }
        }
        ol += (size_t)snprintf(out + ol, cap - ol, "%s\n", line);
    }
    if (add && !present && ol + strlen(canon) + 2 < cap) {
        ol += (size_t)snprintf(out + ol, cap - ol, "%s\n", canon);
        changed = 1;
    }
    if (changed && chp_store_setting_put(n->store, "peers", out, ol) != CHP_OK)
        chp_warn("could not remember the peer list");
done:
    free(buf);
    free(out);
    return had;
}

/* A host name that does not resolve now is refused when the user adds
 * it (a typo, or no name service on this network), instead of being
 * dialled forever in silence. IP literals need no lookup. */
static int host_resolves(const chp_addr *a)
{
    uint8_t buf[16];
    if (inet_pton(AF_INET, a->host, buf) == 1 || inet_pton(AF_INET6, a->host, buf) == 1)
        return 1;
    struct addrinfo hints = {.ai_family = a->ipv6 ? AF_UNSPEC : AF_INET,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(a->host, NULL, &hints, &res);
    if (res)
        freeaddrinfo(res);
    return rc == 0;
}

const char *chp_link_fail_state(int fail)
{
    return fail == CHP_LINK_UNREACHABLE ? "unreachable"
           : fail == CHP_LINK_HANDSHAKE ? "handshake-failed"
           : fail == CHP_LINK_REFUSED   ? "refused"
                                        : "connecting";
}

const char *chp_link_fail_reason(int fail)
{
    return fail == CHP_LINK_UNREACHABLE ? "no answer: connection refused, closed port or no route"
           : fail == CHP_LINK_HANDSHAKE
               ? "CURVE handshake failed: wrong node key in the address, or not a chapard"
           : fail == CHP_LINK_REFUSED ? "the node refused us (banned, or not on its allow-list)"
                                      : "-";
}

static int add_address(chp_node *n, const char *s, size_t len, int keep, int lan);

int chp_link_add_address(chp_node *n, const char *s, size_t len, int keep)
{
    return add_address(n, s, len, keep, 0);
}

int chp_link_add_discovered(chp_node *n, const char *s, size_t len)
{
    /* A friends-only node dials only keys on its list (discovery.c),
     * friends who know its address anyway; a LAN key never is one. */
    return add_address(n, s, len, 0, !n->relay && !n->nallow && n->lan[0].router);
}

static int add_address(chp_node *n, const char *s, size_t len, int keep, int lan)
{
    chp_addr a;
    char canon[CHP_ADDR_STR_MAX + 1];
    int rc = chp_addr_parse(s, len, &a);
    if (rc != CHP_OK)
        return rc;
    if (!memcmp(a.key, n->tpk, 32) || (n->lan[0].router && !memcmp(a.key, n->lan[0].pk, 32)) ||
        (n->lan[1].router && !memcmp(a.key, n->lan[1].pk, 32)))
        return CHP_E_ARG; /* that is this node (our LAN listener, named in PEERS) */
    if (keep && !host_resolves(&a)) {
        chp_warn("peer add: host %s does not resolve", a.host);
        return CHP_E_ADDR_RESOLVE;
    }
    if (chp_addr_format(&a, canon, sizeof canon) != CHP_OK)
        return CHP_E_ARG;
    struct chp_link *l = find(n, a.key);
    if (l && l->dealer && strcmp(l->addr, canon) != 0) {
        if (!keep)
            return CHP_OK; /* heard of at another address: keep dialling ours */
        if (link_up(l))
            return CHP_E_DUP; /* a live link is not given up for a maybe-typo */
        /* The user gives a node a new address (its host moved) while the
         * old one does not answer: dial the new one instead. */
        chp_info("now dialling %s instead of %s", canon, l->addr);
        drop(l);
        l = NULL;
    }
    if (!l && !(l = create(n, a.key)))
        return CHP_E_NOMEM;
    if (lan && !l->dealer && !l->lan_gen)
        l->lan_gen = n->lan[0].gen;
    snprintf(l->addr, sizeof l->addr, "%s", canon);
    if (!l->dealer && (rc = open_dealer(n, l, &a)) != CHP_OK)
        return rc;
    if (keep)
        (void)remember(n, &a, canon, 1);
    return CHP_OK;
}

int chp_link_remove_address(chp_node *n, const char *s, size_t len)
{
    chp_addr a;
    char canon[CHP_ADDR_STR_MAX + 1];
    int rc = chp_addr_parse(s, len, &a);
    if (rc != CHP_OK)
        return rc;
    if (chp_addr_format(&a, canon, sizeof canon) != CHP_OK)
        return CHP_E_ARG;
    struct chp_link *l = find(n, a.key);
    /* The node is known by its key, but the address must be the one it is
     * known at: removing "1.2.3.4:1/KEY" must not drop KEY dialled at
     * another address. A neighbour that only dialled us has no address of
     * ours; its key with any host drops it. */
    if (!l || (l->addr[0] && strcmp(l->addr, canon) != 0)) {
        /* not linked now, yet perhaps remembered at exactly this address */
        if (l || !remember(n, &a, canon, 0))
            return CHP_E_NOT_FOUND;
        return CHP_OK;
    }
    (void)remember(n, &a, canon, 0);
    drop(l);
    return CHP_OK;
}

void chp_link_restore_known(chp_node *n)
{
    static const size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    size_t len;
    if (buf && known_list(n, buf, cap, &len) == CHP_OK)
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
            if (chp_link_add_address(n, line, strlen(line), 0) != CHP_OK)
                chp_warn("ignoring remembered peer %s", line);
    free(buf);
}

/* ---- polling ---- */

size_t chp_link_pollitems(chp_node *n, void *items_)
{
    zmq_pollitem_t *items = items_;
    size_t k = 0;
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used || !l->dealer)
            continue;
        items[k++] = (zmq_pollitem_t){l->dealer, 0, ZMQ_POLLIN, 0};
        items[k++] = (zmq_pollitem_t){l->monitor, 0, ZMQ_POLLIN, 0};
    }
    return k;
}

/* A neighbour of the push tree is gone: graft up to two random lazy links
 * into the tree at once (an empty GRAFT), so what is published next
 * reaches us without waiting for announcements to reveal the gap, and
 * reconcile with one of them for what we missed meanwhile. Extra copies
 * this causes are pruned again as usual. */
static void tree_repair(chp_node *n, const struct chp_link *gone)
{
    struct chp_link *cand[CHP_NODE_LINKS_MAX], *dial[CHP_NODE_LINKS_MAX];
    size_t nc = 0, nd = 0;
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (l == gone || !link_up(l))
            continue;
        if (l->lazy)
            cand[nc++] = l;
        if (l->dealer_up)
            dial[nd++] = l;
    }
    for (int k = 0; k < REPAIR_GRAFTS && nc; k++) {
        size_t j = (size_t)(next_rand(n) % nc);
        struct chp_link *l = cand[j];
        cand[j] = cand[--nc];
        l->lazy = 0;
        send_ids(n, l, CHP_MSG_GRAFT, NULL, 0);
        n->ctr.grafts++;
    }
    /* What went missing while the tree mends (announcements reach only a
     * few neighbours) comes with a reconciliation a little later. */
    if (nd) {
        struct chp_link *l = dial[next_rand(n) % nd];
        uint64_t due = now_ms() + REPAIR_SYNC_MS;
        if (!l->next_sync_ms || l->next_sync_ms > due)
            l->next_sync_ms = due;
    }
}

void chp_link_lan_closed(chp_node *n, void *sock, uint32_t gen)
{
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used)
            continue;
        if (l->lan_gen == gen) {
            drop(l); /* its key and port are gone: the LAN finds us anew */
            continue;
        }
        if (l->rsock == sock) { /* a node we also know by address */
            l->rsock = NULL;
            l->router_seen = 0;
            l->router_fd = -1;
        }
    }
}

int chp_link_lan_used(const chp_node *n, void *sock, uint32_t gen)
{
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        const struct chp_link *l = &n->links[i];
        if (l->used && (l->lan_gen == gen || (l->router_seen && l->rsock == sock)))
            return 1;
    }
    return 0;
}

/* Our end of an incoming connection closed (the ROUTER's monitor says so,
 * by socket): a neighbour that only dialled us is gone at once, not after
 * the liveness timeout. */
void chp_link_router_closed(chp_node *n, int fd)
{
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used || !l->router_seen || l->router_fd != fd)
            continue;
        int was_up = link_up(l), eager = !l->lazy;
        l->router_seen = 0;
        l->router_fd = -1;
        link_reset(l);
        if (l->dealer_up)
            continue; /* still reachable through our own connection */
        l->hello_rx = 0;
        if (was_up) {
            char ks[17];
            chp_key_short(l->key, ks);
            chp_info("neighbour %s gone", ks);
            zmq_send(n->events, "peer", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(n->events, "down", 4, ZMQ_DONTWAIT);
            if (eager)
                tree_repair(n, l);
        }
    }
}

static void monitor_event(chp_node *n, struct chp_link *l)
{
    zmq_msg_t ev, ep;
    zmq_msg_init(&ev);
    zmq_msg_init(&ep);
    if (zmq_msg_recv(&ev, l->monitor, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&ev) &&
        zmq_msg_recv(&ep, l->monitor, ZMQ_DONTWAIT) >= 0 && zmq_msg_size(&ev) >= 2) {
        const uint8_t *d = zmq_msg_data(&ev);
        uint16_t event = (uint16_t)(d[0] | (d[1] << 8)); /* host order (little-endian) */
        int fail = -1;
        if (event == ZMQ_EVENT_CONNECTED) {
            l->tcp_up = 1;
        } else if (event == ZMQ_EVENT_CONNECT_RETRIED && !l->dealer_up) {
            /* A retry after a connection that never finished its handshake. */
            fail = l->tcp_up ? (l->fail == CHP_LINK_REFUSED ? CHP_LINK_REFUSED : CHP_LINK_HANDSHAKE)
                             : CHP_LINK_UNREACHABLE;
            l->tcp_up = 0;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            fail = CHP_LINK_REFUSED;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            fail = CHP_LINK_HANDSHAKE;
        }
        if (fail >= 0 && fail != l->fail) {
            char ks[17];
            chp_key_short(l->key, ks);
            chp_warn("peer %s at %s: %s; retrying", ks, l->addr[0] ? l->addr : "-",
                     chp_link_fail_reason(fail));
            l->fail = fail;
        }
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            l->dealer_up = 1;
            l->tcp_up = 0; /* from now on a lost connection is "unreachable" */
            l->fail = CHP_LINK_OK;
            send_hello(n, l);
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            /* (tcp_up stays: the retry that follows tells a failed
             * handshake from a refused connection by it) */
            int eager = link_up(l) && !l->lazy;
            if (l->dealer_up) {
                char ks[17];
                chp_key_short(l->key, ks);
                chp_info("neighbour %s down; reconnecting", ks);
                zmq_send(n->events, "peer", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
                zmq_send(n->events, "down", 4, ZMQ_DONTWAIT);
            }
            l->dealer_up = 0;
            link_reset(l);
            if (eager && !l->router_seen)
                tree_repair(n, l);
            l->hello_rx = l->router_seen ? l->hello_rx : 0;
            chp_neg_destroy(&l->neg_client);
        }
    }
    zmq_msg_close(&ev);
    zmq_msg_close(&ep);
}

void chp_link_poll_done(chp_node *n, const void *items_, size_t count, int max)
{
    const zmq_pollitem_t *items = items_;
    for (size_t k = 0; k + 1 < count; k += 2) {
        /* Find the link again: handling may have dropped earlier ones. */
        struct chp_link *l = NULL;
        for (size_t i = 0; i < CHP_NODE_LINKS_MAX && !l; i++)
            if (n->links[i].used && n->links[i].dealer == items[k].socket)
                l = &n->links[i];
        if (!l)
            continue;
        if (items[k + 1].revents & ZMQ_POLLIN)
            monitor_event(n, l);
        for (int m = 0; m < max && l->used && l->dealer && (items[k].revents & ZMQ_POLLIN); m++) {
            zmq_msg_t data;
            zmq_msg_init(&data);
            if (zmq_msg_recv(&data, l->dealer, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&data);
                break;
            }
            handle(n, l, zmq_msg_data(&data), zmq_msg_size(&data), 0);
            zmq_msg_close(&data);
        }
    }
}

uint64_t chp_link_next_deadline(chp_node *n, uint64_t t, uint64_t other)
{
    uint64_t d = other;
    for (size_t i = 0; n->nmissing && i < CHP_NODE_MISSING_MAX; i++)
        if (n->missing[i].due_ms && n->missing[i].due_ms < d)
            d = n->missing[i].due_ms;
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        const struct chp_link *l = &n->links[i];
        if (l->used && l->dealer_up && l->next_sync_ms < d)
            d = l->next_sync_ms;
        if (l->used && (l->neg_waiting[0] || l->neg_waiting[1]) && t + 50 < d)
            d = t + 50; /* its walk budget refills meanwhile */
    }
    for (size_t i = 0; i < CHP_NODE_BANS_MAX; i++)
        if (n->bans[i].addr[0] && n->bans[i].until_ms < d)
            d = n->bans[i].until_ms;
    if (d <= t)
        return 0;
    return d - t > 1000 ? 1000 : d - t;
}

/* A ban of a neighbour we dialled at an address the user gave (--peer,
 * `peer add`) has ended: dial it again, unless the user removed it
 * meanwhile. */
static void redial_unbanned(chp_node *n, uint64_t t)
{
    for (size_t i = 0; i < CHP_NODE_BANS_MAX; i++) {
        struct chp_ban *b = &n->bans[i];
        if (!b->addr[0] || b->until_ms > t)
            continue;
        char addr[sizeof b->addr];
        snprintf(addr, sizeof addr, "%s", b->addr);
        b->addr[0] = '\0';
        if (!remembered(n, addr))
            continue;
        char ks[17];
        chp_key_short(b->key, ks);
        chp_info("ban of %s over; dialling it again", ks);
        if (chp_link_add_address(n, addr, strlen(addr), 0) != CHP_OK)
            chp_warn("cannot dial %s again", addr);
    }
}

void chp_link_periodic(chp_node *n, uint64_t t, uint64_t sync_ms)
{
    graft_due(n, t);
    chp_view_periodic(n, t);
    redial_unbanned(n, t);
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        /* A ROUTER never says a peer left: ping incoming-only links and
         * forget the silent ones (they free their place in the view). */
        if (lingering(l) && t - l->last_rx_ms > FORGET_MS) {
            drop(l);
            continue;
        }
        if (l->used && l->router_seen && !l->dealer_up) {
            if (t - l->last_rx_ms > LIVENESS_MS) {
                /* Out of the view, but remembered a while: a neighbour
                 * whose loop was only busy comes back without a HELLO. */
                l->router_seen = 0;
                l->hello_rx = 0;
            } else if (t - l->ping_ms >= PING_MS) {
                uint8_t f[16];
                size_t fl;
                l->ping_ms = t;
                if (chp_wire_ping(f, sizeof f, &fl, CHP_MSG_PING, t) == CHP_OK)
                    send_to(n, l, f, fl);
            }
        }
        if (l->used && (l->neg_waiting[0] || l->neg_waiting[1]))
            neg_resume(n, l, t);
        if (!l->used || !l->dealer_up || !l->hello_rx)
            continue;
        if (!l->next_sync_ms)
            l->next_sync_ms = t + sync_ms;
        if (t >= l->next_sync_ms) {
            start_sync(n, l);
            l->next_sync_ms = t + sync_ms;
        }
    }
}
