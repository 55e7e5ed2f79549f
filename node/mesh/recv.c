/* recv.c - frames in: the ROUTER and the diallers' DEALERs, HELLO first,
 * dispatch to gossip, sync and the view; the dealers' connection events;
 * per-link timers (pings, liveness, sync, redials after a ban). */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"
#include "proto/hex.h"

#include <stdio.h>
#include <string.h>

/* A dial that ZAP refused is tried again after REDIAL_FIRST_MS, then
 * twice as long each time, REDIAL_MAX_MS at most. */
#define REDIAL_FIRST_MS 5000
#define REDIAL_MAX_MS   300000
#define PING_MS         2000 /* incoming-only links are pinged this often */
/* incoming-only links are pinged this often */
#define LIVENESS_MS 15000 /* and out of the view after this much silence */
/* and out of the view after this much silence */
#define FORGET_MS 600000 /* and forgotten after this much */
/* After a sync message either way, the neighbour's frames over its rate
 * are dropped but not scored: they are answers to the sync. */
#define SYNC_GRACE_MS 10000

/* A flow PING (PROTOCOL.md §15): its PONG gives the neighbour room for
 * as many bytes again, so it waits until everything that came before it
 * is stored (our memory holds at most the neighbour's window) and until
 * our byte bucket for the neighbour takes those bytes (an honest sender
 * never has frames dropped for its rate). Acknowledgements are
 * cumulative: when too many wait, the newest replaces the one before. */
static void flow_ping(chp_mesh *n, struct chp_link *l, uint64_t nonce)
{
    if (l->npong == sizeof l->pong / sizeof l->pong[0])
        l->npong--;
    l->pong[l->npong].nonce = nonce;
    l->pong[l->npong].mark = chp_ingest_queued(n);
    l->npong++;
}

/* 1 if l's oldest waiting flow PONG may go: what came before it is
 * stored and our bucket holds the bytes it acknowledges, beyond a
 * window still in flight that earlier PONGs allowed (FLOW_IN_FLIGHT:
 * more than a Chapar sender's window, send.c). */
#define FLOW_IN_FLIGHT (1u << 20)
static int pong_due(chp_mesh *n, struct chp_link *l, uint64_t t)
{
    uint64_t v = l->pong[0].nonce & ~CHP_FLOW_TAG;
    uint64_t credit = v > l->pong_sent ? v - l->pong_sent : v;
    if (credit > FLOW_IN_FLIGHT) /* a count no window explains: wait for no more */
        credit = FLOW_IN_FLIGHT;
    return l->pong[0].mark <= chp_ingest_settled(n) &&
           chp_rate_has_bytes(l, t, credit + FLOW_IN_FLIGHT);
}

void chp_recv_pongs(chp_mesh *n, uint64_t t)
{
    for (size_t i = 0; i < n->links_hw; i++) {
        struct chp_link *l = &n->links[i];
        uint8_t f[16];
        size_t fl;
        while (l->used && l->npong && pong_due(n, l, t)) {
            if (chp_wire_ping(f, sizeof f, &fl, CHP_WIRE_PONG, l->pong[0].nonce) == CHP_OK)
                chp_link_send(n, l, f, fl);
            l->pong_sent = l->pong[0].nonce & ~CHP_FLOW_TAG;
            memmove(&l->pong[0], &l->pong[1], --l->npong * sizeof l->pong[0]);
        }
    }
}

/* A socket is read until its frames run out, the round's share is read,
 * or a flow PING comes after envelopes queued while reading it (handle):
 * the round ends there, so that what came before that PING is committed
 * and its PONG goes while the rest of the window arrives, instead of
 * after the whole window was read, committed and examined. Only new,
 * checked envelopes (each with its proof of work) make a PING end a read. */
static void read_begin(chp_mesh *n)
{
    n->recv_cut = 0;
    n->recv_mark = chp_ingest_queued(n);
}

static void handle(chp_mesh *n, struct chp_link *l, const uint8_t *frame, size_t len,
                   int via_router)
{
    uint64_t t = mesh_ms(n);
    chp_wire_msg m;
    l->last_rx_ms = t;
    n->ctr.rx_bytes += len;
    if (!chp_rate_take_bytes(l, t, len)) {
        n->ctr.rate_dropped++;
        if (t - l->neg_ms >= SYNC_GRACE_MS) /* answers to a sync are dropped, never scored */
            chp_link_misbehave(n, l, 0.01, "over its byte rate");
        return;
    }
    int rc = chp_wire_decode(frame, len, &m);
    if (rc == CHP_E_VERSION) {
        uint8_t f[64];
        size_t fl;
        chp_link_send_hello(n, l);
        if (chp_wire_bye(f, sizeof f, &fl, 1, "unsupported protocol version") == CHP_OK)
            chp_link_send(n, l, f, fl);
        return;
    }
    if (rc != CHP_OK) {
        n->ctr.rej_malformed++;
        chp_link_misbehave(n, l, 1.0, "malformed frames");
        return;
    }
    if (m.type != CHP_WIRE_HELLO && !l->hello_rx && l->hello_ever) {
        /* Forgotten for silence (its loop was busy, say with proof of
         * work) while the connection stayed up: CURVE still proves the
         * key, so it is the same neighbour; take it back. */
        l->hello_rx = 1;
        if (via_router)
            chp_link_send_hello_router(n, l);
    }
    if (m.type != CHP_WIRE_HELLO && !l->hello_rx) {
        n->ctr.rej_malformed++;
        chp_link_misbehave(n, l, 1.0, "no HELLO first");
        return;
    }
    switch (m.type) {
    case CHP_WIRE_HELLO: {
        int first = !l->hello_rx;
        if (first)
            chp_link_reset(l); /* a new connection: nothing of ours is queued on it */
        l->hello_rx = l->hello_ever = 1;
        l->caps = m.u.hello.caps;
        l->listen_port = m.u.hello.listen_port;
        if (via_router)
            chp_link_send_hello_router(n, l);
        if (first) {
            char ks[CHP_KEY_NAME_MAX];
            chp_key_name(l->key, ks);
            chp_info("neighbour %s up (%s)", ks, via_router ? "incoming" : "outgoing");
            chp_mesh_event(n, "peer", "up");
            uint8_t src[16];
            chp_link_source(n, l, src);
            if (chp_source_pruned(n, src, t))
                l->lazy = l->refuser = 1; /* a flood's source, back with another link or key */
            else
                chp_view_send_peers(n, l); /* seeds its passive view */
        }
        if (!via_router) /* the side that dialled starts the sync */
            chp_sync_start(n, l);
        break;
    }
    case CHP_WIRE_PUSH:
        chp_gossip_on_push(n, l, m.u.push.env, m.u.push.len, t);
        break;
    case CHP_WIRE_PUSHES: { /* each envelope as if it came in its own PUSH */
        const uint8_t *env;
        size_t off = 0, elen;
        while (chp_link_up(l) && chp_wire_pushes_next(&m, &off, &env, &elen) == CHP_OK)
            chp_gossip_on_push(n, l, env, elen, t);
        break;
    }
    case CHP_WIRE_IHAVE:
    case CHP_WIRE_IWANT:
    case CHP_WIRE_GRAFT:
        chp_gossip_on_ids(n, l, &m, t);
        break;
    case CHP_WIRE_PRUNE:
        l->lazy = 1;
        break;
    case CHP_WIRE_NEG:
        chp_sync_on_neg(n, l, &m, t);
        break;
    case CHP_WIRE_PING: {
        uint8_t f[16];
        size_t fl;
        if (m.u.nonce & CHP_FLOW_TAG) {
            flow_ping(n, l, m.u.nonce); /* answered by chp_recv_pongs */
            if (chp_ingest_queued(n) > n->recv_mark && !n->recv_cut) {
                n->recv_cut = 1; /* read_begin */
                n->recv_cuts++;
            }
        } else if (chp_wire_ping(f, sizeof f, &fl, CHP_WIRE_PONG, m.u.nonce) == CHP_OK)
            chp_link_send(n, l, f, fl);
        break;
    }
    case CHP_WIRE_BYE: {
        char ks[CHP_KEY_NAME_MAX];
        chp_key_name(l->key, ks);
        chp_info("neighbour %s says bye: %.*s", ks, (int)m.u.bye.len, m.u.bye.text);
    } break;
    case CHP_WIRE_PEERS:
        chp_view_on_peers(n, &m);
        break;
    case CHP_WIRE_QUERY:
        chp_gossip_on_query(n, l, &m);
        break;
    case CHP_WIRE_HELD:
        chp_gossip_on_held(n, &m);
        break;
    case CHP_WIRE_PONG: /* a flow PING's answer opens the window; others need none */
        chp_flow_pong(n, l, m.u.nonce);
        break;
    default:
        break;
    }
}

void chp_recv_router(chp_mesh *n, void *sock, int max)
{
    uint32_t gen = 0; /* which LAN listener sock is, 0 = our ROUTER */
    for (int i = 0; i < 2; i++)
        if (n->lan[i].router && n->lan[i].router == sock)
            gen = n->lan[i].gen;
    read_begin(n);
    for (int i = 0; i < max && !n->recv_cut; i++) {
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
        int valid = uid && ridlen > 0 && ridlen <= sizeof n->links[0].rid &&
                    chp_hex_decode(uid, strlen(uid), key, 32) == CHP_OK;
        if (!valid) {
            n->ctr.rej_malformed++;
        } else if (!chp_admit_banned(n, key, mesh_ms(n))) {
            struct chp_link *l = chp_link_find(n, key);
            if (!l)
                l = chp_link_create(n, key);
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
                    chp_conn_spoke(n, fd, key);
                l->router_fd = fd;
                handle(n, l, zmq_msg_data(&data), zmq_msg_size(&data), 1);
            }
        }
        zmq_msg_close(&rid);
        zmq_msg_close(&data);
    }
}

size_t chp_recv_pollitems(chp_mesh *n, zmq_pollitem_t *items)
{
    size_t k = 0;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used || !l->dealer)
            continue;
        items[k++] = (zmq_pollitem_t){l->dealer, 0, ZMQ_POLLIN, 0};
        items[k++] = (zmq_pollitem_t){l->monitor, 0, ZMQ_POLLIN, 0};
    }
    return k;
}

/* Our end of an incoming connection closed (the ROUTER's monitor says so,
 * by socket): a neighbour that only dialled us is gone at once, not after
 * the liveness timeout. */
void chp_recv_router_closed(chp_mesh *n, int fd)
{
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used || !l->router_seen || l->router_fd != fd)
            continue;
        int was_up = chp_link_up(l), eager = !l->lazy;
        l->router_seen = 0;
        l->router_fd = -1;
        chp_link_reset(l);
        if (l->dealer_up)
            continue; /* still reachable through our own connection */
        l->hello_rx = 0;
        if (was_up) {
            char ks[CHP_KEY_NAME_MAX];
            chp_key_name(l->key, ks);
            chp_info("neighbour %s gone", ks);
            chp_mesh_event(n, "peer", "down");
            if (eager)
                chp_gossip_tree_repair(n, l, mesh_ms(n));
        }
    }
}

static void monitor_event(chp_mesh *n, struct chp_link *l)
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
            /* libzmq gives this connection up for good: dial again
             * later ourselves (a full view may have room then, a ban
             * may be over), backing off */
            l->redial_wait_ms = l->redial_wait_ms ? l->redial_wait_ms * 2 : REDIAL_FIRST_MS;
            if (l->redial_wait_ms > REDIAL_MAX_MS)
                l->redial_wait_ms = REDIAL_MAX_MS;
            l->redial_ms = mesh_ms(n) + l->redial_wait_ms;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            fail = CHP_LINK_HANDSHAKE;
        }
        if (fail >= 0 && fail != l->fail) {
            char ks[CHP_KEY_NAME_MAX];
            chp_key_name(l->key, ks);
            chp_warn("peer %s at %s: %s; retrying", ks, l->addr[0] ? l->addr : "-",
                     chp_link_fail_reason(fail));
            l->fail = fail;
        }
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            l->redial_ms = l->redial_wait_ms = 0;
            l->dealer_up = 1;
            l->tcp_up = 0; /* from now on a lost connection is "unreachable" */
            l->fail = CHP_LINK_OK;
            chp_link_send_hello(n, l);
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            /* (tcp_up stays: the retry that follows tells a failed
             * handshake from a refused connection by it) */
            int eager = chp_link_up(l) && !l->lazy;
            if (l->dealer_up) {
                char ks[CHP_KEY_NAME_MAX];
                chp_key_name(l->key, ks);
                chp_info("neighbour %s down; reconnecting", ks);
                chp_mesh_event(n, "peer", "down");
            }
            l->dealer_up = 0;
            chp_link_reset(l);
            if (eager && !l->router_seen)
                chp_gossip_tree_repair(n, l, mesh_ms(n));
            l->hello_rx = l->router_seen ? l->hello_rx : 0;
            chp_neg_destroy(&l->neg_client);
        }
    }
    zmq_msg_close(&ev);
    zmq_msg_close(&ep);
}

void chp_recv_poll_done(chp_mesh *n, const zmq_pollitem_t *items, size_t count, int max)
{
    for (size_t k = 0; k + 1 < count; k += 2) {
        /* Find the link again: handling may have dropped earlier ones. */
        struct chp_link *l = NULL;
        for (size_t i = 0; i < CHP_MESH_LINKS_MAX && !l; i++)
            if (n->links[i].used && n->links[i].dealer == items[k].socket)
                l = &n->links[i];
        if (!l)
            continue;
        if (items[k + 1].revents & ZMQ_POLLIN)
            monitor_event(n, l);
        read_begin(n);
        for (int m = 0;
             m < max && !n->recv_cut && l->used && l->dealer && (items[k].revents & ZMQ_POLLIN);
             m++) {
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

uint64_t chp_recv_deadline(chp_mesh *n, uint64_t t, uint64_t other)
{
    uint64_t d = other;
    for (size_t i = 0; n->nmissing && i < CHP_MESH_MISSING_MAX; i++)
        if (n->missing[i].due_ms && n->missing[i].due_ms < d)
            d = n->missing[i].due_ms;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        const struct chp_link *l = &n->links[i];
        /* 0: none scheduled yet (no HELLO came): nothing is due */
        if (l->used && l->dealer_up && l->next_sync_ms && l->next_sync_ms < d)
            d = l->next_sync_ms;
        if (l->used && (l->neg_waiting[0] || l->neg_waiting[1]) && t + 50 < d)
            d = t + 50; /* its walk budget refills meanwhile */
        if (l->used && l->npong && l->pong[0].mark <= chp_ingest_settled(n) && t + 5 < d)
            d = t + 5; /* a flow PONG waits for its byte bucket */
    }
    for (size_t i = 0; i < CHP_MESH_BANS_MAX; i++)
        if (n->bans[i].addr[0] && n->bans[i].until_ms < d)
            d = n->bans[i].until_ms;
    if (d <= t)
        return 0;
    return d - t > 1000 ? 1000 : d - t;
}

/* A ban of a neighbour we dialled at an address the user gave (--peer,
 * `peer add`) has ended: dial it again, unless the user removed it
 * meanwhile. */
static void redial_unbanned(chp_mesh *n, uint64_t t)
{
    for (size_t i = 0; i < CHP_MESH_BANS_MAX; i++) {
        struct chp_ban *b = &n->bans[i];
        if (!b->addr[0] || b->until_ms > t)
            continue;
        char addr[sizeof b->addr];
        snprintf(addr, sizeof addr, "%s", b->addr);
        b->addr[0] = '\0';
        if (!chp_link_remembered(n, addr))
            continue;
        char ks[CHP_KEY_NAME_MAX];
        chp_key_name(b->key, ks);
        chp_info("ban of %s over; dialling it again", ks);
        if (chp_link_add_address(n, addr, strlen(addr), 0) != CHP_OK)
            chp_warn("cannot dial %s again", addr);
    }
}

void chp_recv_periodic(chp_mesh *n, uint64_t t, uint64_t sync_ms)
{
    chp_recv_pongs(n, t);
    chp_gossip_graft_due(n, t);
    chp_view_periodic(n, t);
    redial_unbanned(n, t);
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        /* A ROUTER never says a peer left: ping incoming-only links and
         * forget the silent ones (they free their place in the view). */
        if (chp_link_lingering(l) && t - l->last_rx_ms > FORGET_MS) {
            chp_link_drop(l);
            continue;
        }
        if (l->used && l->dealer && l->redial_ms && t >= l->redial_ms && !l->dealer_up) {
            l->redial_ms = 0;
            if (chp_link_redial(n, l) != CHP_OK)
                continue; /* l is gone, or will be tried at the next refusal */
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
                if (chp_wire_ping(f, sizeof f, &fl, CHP_WIRE_PING, t) == CHP_OK)
                    chp_link_send(n, l, f, fl);
            }
        }
        if (l->used && (l->neg_waiting[0] || l->neg_waiting[1]))
            chp_sync_resume(n, l, t);
        if (!l->used || !l->dealer_up || !l->hello_rx)
            continue;
        if (!l->next_sync_ms)
            l->next_sync_ms = t + sync_ms;
        if (t >= l->next_sync_ms) {
            chp_sync_start(n, l);
            l->next_sync_ms = t + sync_ms;
        }
    }
}
