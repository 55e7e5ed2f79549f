/* lan.c - the LAN listener (PROTOCOL.md §17) and the connection events of
 * every listener: what a LAN sees of a user node must not follow it from
 * one LAN to the next, so its beacons name a second ROUTER on an
 * ephemeral port whose CURVE key pair is random per start and replaced
 * every lan_period_ms; the node dials what it discovers with that key as
 * its client key. Its connections count against the same limits and pass
 * the same ZAP as the main listener's. */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"
#include "proto/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v);
}

/* Options every node link socket gets: bounded frames and queues, no
 * linger on close, ZMTP heartbeats to notice dead peers. */
int chp_mesh_sock_opts(void *s)
{
    int64_t maxmsg = CHP_WIRE_ZMQ_MAXMSG;
    if (zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) || set_int(s, ZMQ_LINGER, 0) ||
        set_int(s, ZMQ_SNDHWM, 4096) || set_int(s, ZMQ_RCVHWM, 4096) ||
        set_int(s, ZMQ_HEARTBEAT_IVL, 2000) || set_int(s, ZMQ_HEARTBEAT_TIMEOUT, 6000) ||
        set_int(s, ZMQ_HANDSHAKE_IVL, 5000))
        return CHP_E_ARG;
    return CHP_OK;
}

/* Connections of a ROUTER (ours or a LAN listener: descriptors are
 * unique in the process) that opened or closed:
 * [event u16, value u32][endpoint]. */
static void mon_events(chp_mesh *n, void *mon)
{
    for (int k = 0; k < 4096; k++) {
        zmq_msg_t ev, ep;
        zmq_msg_init(&ev);
        zmq_msg_init(&ep);
        int got = zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) >= 0;
        if (got && zmq_msg_more(&ev))
            (void)zmq_msg_recv(&ep, mon, ZMQ_DONTWAIT);
        if (got && zmq_msg_size(&ev) >= 6) {
            const uint8_t *d = zmq_msg_data(&ev);
            uint16_t event = (uint16_t)(d[0] | d[1] << 8); /* host order, little-endian */
            int32_t fd = (int32_t)((uint32_t)d[2] | (uint32_t)d[3] << 8 | (uint32_t)d[4] << 16 |
                                   (uint32_t)d[5] << 24);
            if (event == ZMQ_EVENT_ACCEPTED) {
                /* a link that still names this descriptor lost it first */
                chp_recv_router_closed(n, fd);
                chp_conn_accepted(n, fd);
            } else if (event == ZMQ_EVENT_DISCONNECTED) {
                chp_conn_closed(n, fd);
                chp_recv_router_closed(n, fd);
            }
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&ep);
        if (!got)
            return;
    }
}

void chp_lan_router_events(chp_mesh *n)
{
    if (n->router_mon)
        mon_events(n, n->router_mon);
    for (int i = 0; i < 2; i++)
        if (n->lan[i].mon)
            mon_events(n, n->lan[i].mon);
}

static void lan_close(chp_mesh *n, struct chp_lan *l)
{
    if (!l->router)
        return;
    chp_link_lan_closed(n, l->router, l->gen);
    zmq_socket_monitor(l->router, NULL, 0);
    zmq_close(l->router);
    if (l->mon) {
        mon_events(n, l->mon); /* its last connections leave the table */
        zmq_close(l->mon);
    }
    chp_memzero(l, sizeof *l);
}

static int lan_open(chp_mesh *n, struct chp_lan *l)
{
    char ep[300], last[300], mon[64];
    const char *h = n->listen_host;
    int v6 = strchr(h, ':') != NULL;
    memset(l, 0, sizeof *l);
    l->gen = ++n->lan_gen;
    chp_rng_fill(chp_rng_system(), l->sk, 32);
    chp_x25519_base(l->pk, l->sk);
    snprintf(ep, sizeof ep, v6 ? "tcp://[%s]:*" : "tcp://%s:*", h);
    snprintf(mon, sizeof mon, "inproc://chapar-lan-monitor-%u", l->gen);
    size_t ll = sizeof last;
    l->router = zmq_socket(n->zctx, ZMQ_ROUTER);
    if (!l->router || chp_mesh_sock_opts(l->router) || set_int(l->router, ZMQ_CURVE_SERVER, 1) ||
        zmq_setsockopt(l->router, ZMQ_CURVE_SECRETKEY, l->sk, 32) ||
        set_int(l->router, ZMQ_ROUTER_HANDOVER, 0) || set_int(l->router, ZMQ_ROUTER_MANDATORY, 1) ||
        zmq_setsockopt(l->router, ZMQ_ZAP_DOMAIN, "chapar", 6) ||
        (v6 && set_int(l->router, ZMQ_IPV6, 1)) || zmq_bind(l->router, ep) != 0 ||
        zmq_socket_monitor(l->router, mon, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) ||
        !(l->mon = zmq_socket(n->zctx, ZMQ_PAIR)) || set_int(l->mon, ZMQ_RCVHWM, 0) ||
        zmq_connect(l->mon, mon) != 0 || zmq_getsockopt(l->router, ZMQ_LAST_ENDPOINT, last, &ll)) {
        chp_warn("cannot open the LAN listener: %s", zmq_strerror(errno));
        if (l->router) {
            zmq_socket_monitor(l->router, NULL, 0);
            zmq_close(l->router);
        }
        if (l->mon)
            zmq_close(l->mon);
        chp_memzero(l, sizeof *l);
        return CHP_E_IO;
    }
    const char *pc = strrchr(last, ':');
    l->port = pc ? (uint16_t)atoi(pc + 1) : 0;
    l->born_ms = mesh_ms(n);
    chp_info("LAN listener on port %u with a fresh key", (unsigned)l->port);
    return CHP_OK;
}

int chp_lan_rotate(chp_mesh *n)
{
    if (!n->lan_period_ms) {
        const char *e = getenv("CHAPAR_LAN_KEY_SECONDS"); /* for tests */
        long v = e ? atol(e) : 0;
        n->lan_period_ms = (uint64_t)(v > 0 ? v : CHP_LAN_KEY_SECONDS) * 1000u;
    }
    struct chp_lan fresh;
    if (lan_open(n, &fresh) != CHP_OK)
        return CHP_E_IO;
    lan_close(n, &n->lan[1]); /* at most two: the oldest goes, with its links */
    n->lan[1] = n->lan[0];
    n->lan[0] = fresh;
    chp_memzero(&fresh, sizeof fresh);
    return CHP_OK;
}

void chp_lan_tidy(chp_mesh *n)
{
    struct chp_lan *l = &n->lan[1];
    if (l->router && !chp_link_lan_used(n, l->router, l->gen)) {
        chp_debug("the previous LAN listener has no links left: closed");
        lan_close(n, l);
    }
}

void chp_lan_close_all(chp_mesh *n)
{
    for (int i = 0; i < 2; i++)
        lan_close(n, &n->lan[i]);
}
