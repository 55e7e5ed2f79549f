/* mesh.c - the mesh's door (mesh.h): its lifecycle, the transport key,
 * the listen socket and ZAP, the loop's entry points, and what the
 * control API asks of it. Every other file of the mesh is below this one. */
#define _DEFAULT_SOURCE /* IFF_* flags of getifaddrs */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/hex.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

#define SYNC_MS        60000 /* periodic re-sync with every neighbour */
#define HELD_QUERY_MS  2000  /* asking neighbours whether they hold our envelopes */
#define CONN_PER_KEY   3     /* connections of one key at once */
#define EVICT_AGE_MS   10000 /* a neighbour this new is never evicted */
#define EVICT_EVERY_MS 5000  /* one eviction at most this often */
/* After this many envelopes stored, the heap's free pages go back to the
 * system: a transfer's batches, queues and LMDB's dirty pages are freed
 * by several threads into several arenas, which glibc would keep. */
#define TRIM_ENVELOPES 32

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v);
}

static int load_transport_key(chp_mesh *n)
{
    size_t len = 0;
    int rc = chp_store_setting_get(n->store, "transport_sk", n->tsk, sizeof n->tsk, &len);
    if (rc == CHP_E_NOT_FOUND) {
        chp_rng_fill(chp_rng_system(), n->tsk, sizeof n->tsk);
        rc = chp_store_setting_put(n->store, "transport_sk", n->tsk, sizeof n->tsk);
        len = sizeof n->tsk;
        if (rc == CHP_OK)
            chp_info("created a new node transport key");
    }
    if (rc != CHP_OK || len != sizeof n->tsk) {
        chp_err_log("cannot load the node transport key: %s",
                    chp_strerror(rc ? rc : CHP_E_CORRUPT));
        return rc ? rc : CHP_E_CORRUPT;
    }
    chp_x25519_base(n->tpk, n->tsk);
    return CHP_OK;
}

static int parse_listen(const char *spec, char *host, size_t hcap, unsigned *port)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= hcap)
        return CHP_E_ADDR_FORMAT;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (host[0] == '[') { /* [v6] */
        size_t l = strlen(host);
        if (l < 3 || host[l - 1] != ']')
            return CHP_E_ADDR_HOST;
        memmove(host, host + 1, l - 2);
        host[l - 2] = '\0';
    }
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || p > 65535)
        return CHP_E_ADDR_PORT;
    *port = (unsigned)p;
    return CHP_OK;
}

const char *chp_mesh_listen_problem(const char *spec)
{
    char host[CHP_ADDR_HOST_MAX + 1];
    unsigned port;
    int rc = parse_listen(spec, host, sizeof host, &port);
    return rc == CHP_OK            ? NULL
           : rc == CHP_E_ADDR_PORT ? "the port must be a number from 0 to 65535"
           : rc == CHP_E_ADDR_HOST ? "an IPv6 host goes in brackets, as [::1]:7667"
                                   : "expected HOST:PORT, e.g. 0.0.0.0:7667, [::]:7667 or "
                                     "127.0.0.1:0 (any free port)";
}

static int bind_listen(chp_mesh *n, const char *spec)
{
    char host[CHP_ADDR_HOST_MAX + 1], ep[300], last[300];
    unsigned port;
    int rc = parse_listen(spec, host, sizeof host, &port);
    if (rc != CHP_OK) {
        chp_err_log("--listen %s: %s", spec, chp_mesh_listen_problem(spec));
        return rc;
    }
    int v6 = strchr(host, ':') != NULL;
    if (port == 0)
        snprintf(ep, sizeof ep, v6 ? "tcp://[%s]:*" : "tcp://%s:*", host);
    else
        snprintf(ep, sizeof ep, v6 ? "tcp://[%s]:%u" : "tcp://%s:%u", host, port);
    n->router = zmq_socket(n->zctx, ZMQ_ROUTER);
    if (!n->router || chp_mesh_sock_opts(n->router) || set_int(n->router, ZMQ_CURVE_SERVER, 1) ||
        zmq_setsockopt(n->router, ZMQ_CURVE_SECRETKEY, n->tsk, 32) ||
        set_int(n->router, ZMQ_ROUTER_HANDOVER, 0) || set_int(n->router, ZMQ_ROUTER_MANDATORY, 1) ||
        zmq_setsockopt(n->router, ZMQ_ZAP_DOMAIN, "chapar", 6) ||
        (v6 && set_int(n->router, ZMQ_IPV6, 1))) {
        chp_err_log("cannot listen on %s: %s", spec, zmq_strerror(errno));
        return CHP_E_IO;
    }
    if (zmq_bind(n->router, ep) != 0) {
        int busy = errno == EADDRINUSE && port != 0;
        if (!busy || n->relay) {
            /* A relay's address is published: it must not move. */
            chp_err_log("cannot listen on %s: %s%s", spec, zmq_strerror(errno),
                        busy ? " (another chapard on this machine? stop it, or choose another "
                               "port with --listen HOST:PORT)"
                             : "");
            return CHP_E_IO;
        }
        /* A second user on this machine, or a leftover chapard: a user
         * node still works on another port, and says which. */
        snprintf(ep, sizeof ep, v6 ? "tcp://[%s]:*" : "tcp://%s:*", host);
        if (zmq_bind(n->router, ep) != 0) {
            chp_err_log("cannot listen on %s: %s", spec, zmq_strerror(errno));
            return CHP_E_IO;
        }
        n->port_moved = (uint16_t)port;
    }
    /* A ROUTER never says a peer came or left; its monitor does, by
     * socket. Its queue is unbounded (RCVHWM 0): a lost event would leave
     * a connection uncounted. */
    if (zmq_socket_monitor(n->router, "inproc://chapar-router-monitor",
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) ||
        !(n->router_mon = zmq_socket(n->zctx, ZMQ_PAIR)) || set_int(n->router_mon, ZMQ_RCVHWM, 0) ||
        zmq_connect(n->router_mon, "inproc://chapar-router-monitor") != 0) {
        chp_err_log("cannot monitor the listening socket: %s", zmq_strerror(errno));
        return CHP_E_IO;
    }
    size_t ll = sizeof last;
    zmq_getsockopt(n->router, ZMQ_LAST_ENDPOINT, last, &ll);
    const char *pc = strrchr(last, ':');
    n->port = pc ? (uint16_t)atoi(pc + 1) : (uint16_t)port;
    snprintf(n->listen_host, sizeof n->listen_host, "%s", host);
    if (n->port_moved)
        chp_warn("port %u is in use (another chapard on this machine?): listening on port %u "
                 "instead; give peers the new address (chapar address)",
                 (unsigned)n->port_moved, n->port);
    chp_info("listening on %s (port %u)", last, n->port);
    return CHP_OK;
}

/* A non-loopback address of this machine for others to dial: IPv4 first;
 * when listening on [::] and there is none (a LAN with no DHCP server), a
 * global IPv6, else a link-local one with its zone. 0 if nothing. */
static int local_host(int v6_ok, char *host, size_t cap, int *ipv6)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return 0;
    int best = 0; /* 3 IPv4, 2 global IPv6, 1 link-local IPv6 */
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
            continue;
        if (i->ifa_addr->sa_family == AF_INET && best < 3) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)i->ifa_addr;
            inet_ntop(AF_INET, &sin->sin_addr, host, (socklen_t)cap);
            *ipv6 = 0;
            best = 3;
        } else if (v6_ok && i->ifa_addr->sa_family == AF_INET6 && best < 2) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)i->ifa_addr;
            int ll = IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr);
            if (ll && best >= 1)
                continue;
            char a[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
            if (ll)
                snprintf(host, cap, "%s%%%s", a, i->ifa_name);
            else
                snprintf(host, cap, "%s", a);
            *ipv6 = 1;
            best = ll ? 1 : 2;
        }
    }
    freeifaddrs(ifs);
    return best;
}

/* The host others should dial: the listen host unless it is a wildcard,
 * then an address of this machine (local_host), else loopback. */
void chp_mesh_address(const chp_mesh *n, char *out, size_t cap)
{
    chp_addr a;
    memset(&a, 0, sizeof a);
    const char *h = n->listen_host;
    if (!strcmp(h, "0.0.0.0") || !strcmp(h, "*") || !strcmp(h, "::") || !h[0]) {
        if (!local_host(!strcmp(h, "::"), a.host, sizeof a.host, &a.ipv6)) {
            snprintf(a.host, sizeof a.host, "127.0.0.1");
            a.ipv6 = 0;
        }
    } else {
        snprintf(a.host, sizeof a.host, "%s", h);
        a.ipv6 = strchr(h, ':') != NULL;
    }
    a.port = n->port;
    memcpy(a.key, n->tpk, 32);
    if (chp_addr_format(&a, out, cap) != CHP_OK && cap)
        out[0] = '\0';
}

/* ZAP: every CURVE client is authenticated here. The user id handed back
 * is the client's key in hex, which the node reads from each message's
 * metadata to know which neighbour sent it. Banned keys are refused. */
static int bind_zap(chp_mesh *n)
{
    n->zap = zmq_socket(n->zctx, ZMQ_REP);
    if (!n->zap || set_int(n->zap, ZMQ_LINGER, 0) ||
        zmq_bind(n->zap, "inproc://zeromq.zap.01") != 0) {
        chp_err_log("cannot bind the ZAP handler: %s", zmq_strerror(errno));
        return CHP_E_IO;
    }
    return CHP_OK;
}

/* The key has a neighbour link now (a second connection of a live link,
 * or a node we dial ourselves): its connection takes no new place in the
 * active view. */
static int in_view(chp_mesh *n, const uint8_t key[32])
{
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        const struct chp_link *l = &n->links[i];
        if (l->used && !memcmp(l->key, key, 32))
            return l->dealer || (l->hello_rx && l->router_seen);
    }
    return 0;
}

/* HyParView keeps room for newcomers: when the active view is full, the
 * neighbour that dialled us and brought the fewest envelopes (the oldest
 * of those) makes room, if it has been linked EVICT_AGE_MS; one eviction
 * per EVICT_EVERY_MS. Links we dial ourselves are never evicted. 1 if one
 * went. */
static int evict_idle(chp_mesh *n, uint64_t t)
{
    struct chp_link *best = NULL;
    int64_t best_age = 0;
    if (n->evict_ms && t - n->evict_ms < EVICT_EVERY_MS)
        return 0;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        int64_t age;
        if (!l->used || l->dealer || !l->router_seen || !l->hello_rx ||
            (age = chp_conn_age(n, l->router_fd, t)) < EVICT_AGE_MS)
            continue;
        if (!best || l->rx_env < best->rx_env || (l->rx_env == best->rx_env && age > best_age)) {
            best = l;
            best_age = age;
        }
    }
    if (!best)
        return 0;
    char ks[CHP_KEY_NAME_MAX];
    chp_key_name(best->key, ks);
    chp_info("active view full: neighbour %s (%llu envelopes in %llu s) makes room for a newcomer",
             ks, (unsigned long long)best->rx_env, (unsigned long long)(best_age / 1000));
    chp_conn_close_fd(n, best->router_fd);
    chp_link_drop(best);
    chp_mesh_event(n, "peer", "down");
    n->evict_ms = t;
    n->ctr.evictions++;
    return 1;
}

static void zap_handle(chp_mesh *n)
{
    zmq_msg_t f[7];
    int nf = 0, more = 1;
    chp_lan_router_events(n); /* every connection accepted so far is counted */
    while (more && nf < 7) {
        zmq_msg_init(&f[nf]);
        if (zmq_msg_recv(&f[nf], n->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f[nf]);
            break;
        }
        more = zmq_msg_more(&f[nf]);
        nf++;
    }
    while (more) { /* drain an over-long request */
        zmq_msg_t x;
        zmq_msg_init(&x);
        if (zmq_msg_recv(&x, n->zap, 0) < 0)
            more = 0;
        else
            more = zmq_msg_more(&x);
        zmq_msg_close(&x);
    }
    const char *status = "400", *text = "bad request";
    char uid[65] = "", host[INET6_ADDRSTRLEN + 1] = "";
    if (nf == 7 && zmq_msg_size(&f[5]) == 5 && !memcmp(zmq_msg_data(&f[5]), "CURVE", 5) &&
        zmq_msg_size(&f[6]) == 32) {
        const uint8_t *key = zmq_msg_data(&f[6]);
        size_t hl = zmq_msg_size(&f[3]) < sizeof host - 1 ? zmq_msg_size(&f[3]) : sizeof host - 1;
        memcpy(host, zmq_msg_data(&f[3]), hl);
        host[hl] = '\0';
        uint64_t t = mesh_ms(n);
        if (chp_admit_banned(n, key, t) || chp_admit_host_banned(n, host, t)) {
            text = "banned";
            n->ctr.refused_banned++;
        } else if (!chp_admit_allowed(n, key)) {
            text = "not on this node's allow-list";
            n->ctr.refused_allow++;
        } else if (chp_conns_of_key(n, key) >= CONN_PER_KEY) {
            text = "too many connections with this key";
            n->ctr.conns_refused++;
        } else if (!in_view(n, key) && chp_link_connected(n) >= n->active_max &&
                   !evict_idle(n, t)) {
            /* A bounded active view: a full node declines newcomers, who
             * find the mesh through the neighbours it already has, unless
             * a neighbour that brought nothing can make room. */
            text = "active view full";
            n->ctr.refused_full_view++;
        } else {
            status = "200";
            text = "OK";
            chp_hex_encode(key, 32, uid);
            chp_conn_authenticated(n, host, key);
        }
    }
    /* Reply: version, request id, status, text, user id, metadata. */
    zmq_send(n->zap, "1.0", 3, ZMQ_SNDMORE);
    if (nf >= 2)
        zmq_send(n->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
    else
        zmq_send(n->zap, "", 0, ZMQ_SNDMORE);
    zmq_send(n->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(n->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(n->zap, uid, strlen(uid), ZMQ_SNDMORE);
    zmq_send(n->zap, "", 0, 0);
    for (int i = 0; i < nf; i++)
        zmq_msg_close(&f[i]);
}
/* ---- what committed, and events ---- */

/* ingest.c's hook: an envelope is durably stored. It goes on to the
 * neighbours, then up to the layer above, then out as an event. */
static void stored(chp_mesh *n, const struct chp_stored *e)
{
    int links = chp_gossip_forward(n, e);
    if (n->hooks.committed)
        n->hooks.committed(n->hooks.ctx, e->env, e->len, e->id, e->seq);
    if (e->own && links > 0)
        n->held_query_ms = 0; /* ask them soon whether they took it */
    char hex[65];
    chp_hex_encode(e->id, 32, hex);
    chp_mesh_event(n, "envelope", hex);
}

/* ---- lifecycle ---- */

int chp_mesh_new(const chp_mesh_opts *o, chp_mesh **out)
{
    assert(o && o->store && o->zctx && out);
    *out = NULL;
    chp_mesh *n = calloc(1, sizeof *n);
    if (!n)
        return CHP_E_NOMEM;
    n->relay = o->relay;
    n->store = o->store;
    n->clock = o->clock;
    n->hooks = o->hooks;
    n->zctx = o->zctx;
    n->stored = stored;
    n->disc_fd = n->disc6_fd = -1;
    chp_rng_fill(chp_rng_system(), &n->lazy_rng, sizeof n->lazy_rng);
    n->active_max = o->relay ? CHP_MESH_LINKS_MAX : CHP_MESH_ACTIVE_MAX;
    for (size_t i = 0; i < o->nallow && i < CHP_MESH_PEERS_MAX; i++)
        memcpy(n->allow[n->nallow++], o->allow[i], 32);
    int rc = chp_ingest_init(n);
    if (rc == CHP_OK)
        rc = chp_conns_init(n);
    if (rc == CHP_OK)
        rc = load_transport_key(n);
    if (rc == CHP_OK && ((rc = bind_zap(n)) == CHP_OK))
        rc = bind_listen(n, o->listen);
    if (rc != CHP_OK)
        goto undo;
    for (size_t i = 0; i < o->npeers; i++) {
        rc = chp_link_add_address(n, o->peers[i], strlen(o->peers[i]), 1);
        if (rc != CHP_OK) {
            chp_err_log("--peer %s: %s", o->peers[i], chp_strerror(rc));
            goto undo;
        }
    }
    chp_link_restore_known(n);
    if (o->discovery)
        (void)chp_discovery_open(n, o->discovery_port ? o->discovery_port : CHP_DISCOVERY_PORT);
    *out = n;
    return CHP_OK;
undo:
    chp_mesh_destroy(&n);
    return rc;
}

void chp_mesh_destroy(chp_mesh **mp)
{
    if (!mp || !*mp)
        return;
    chp_mesh *n = *mp;
    (void)chp_mesh_flush(n);
    chp_ingest_fini(n);
    chp_link_close_all(n);
    chp_socks_destroy(n);
    chp_view_free(n);
    chp_discovery_close(n);
    chp_discovery_free(n);
    chp_lan_close_all(n);
    if (n->router) {
        zmq_socket_monitor(n->router, NULL, 0);
        zmq_close(n->router);
    }
    if (n->router_mon)
        zmq_close(n->router_mon);
    if (n->zap)
        zmq_close(n->zap);
    free(n->conns);
    chp_memzero(n->tsk, sizeof n->tsk);
    free(n);
    *mp = NULL;
}

/* ---- the loop ---- */

/* The fixed part of the poll set, in this order; the links' DEALERs and
 * their monitors follow. */
enum {
    P_ROUTER,
    P_ZAP,
    P_DISC4,
    P_DISC6,
    P_MON,
    P_COMMIT,
    P_LAN0,
    P_LAN1,
    P_LANMON0,
    P_LANMON1,
    P_FIXED
};

size_t chp_mesh_poll_items(chp_mesh *n, zmq_pollitem_t *items, uint64_t t, uint64_t *deadline)
{
    /* Discovery first: it may drop links, whose sockets the poll must not
     * name (zmq_poll fails on a closed socket). */
    uint64_t d = chp_discovery_due(n, t);
    int cfd = chp_ingest_fd(n); /* the writer says when the batch it commits is done */
    items[P_ROUTER] = (zmq_pollitem_t){n->router, 0, ZMQ_POLLIN, 0};
    items[P_ZAP] = (zmq_pollitem_t){n->zap, 0, ZMQ_POLLIN, 0};
    items[P_DISC4] = (zmq_pollitem_t){NULL, n->disc_fd, n->disc_fd >= 0 ? ZMQ_POLLIN : 0, 0};
    items[P_DISC6] = (zmq_pollitem_t){NULL, n->disc6_fd, n->disc6_fd >= 0 ? ZMQ_POLLIN : 0, 0};
    items[P_MON] = (zmq_pollitem_t){n->router_mon, 0, ZMQ_POLLIN, 0};
    items[P_COMMIT] = (zmq_pollitem_t){NULL, cfd, cfd >= 0 ? ZMQ_POLLIN : 0, 0};
    for (int i = 0; i < 2; i++) {
        const struct chp_lan *l = &n->lan[i];
        items[P_LAN0 + i] = l->router ? (zmq_pollitem_t){l->router, 0, ZMQ_POLLIN, 0}
                                      : (zmq_pollitem_t){NULL, -1, 0, 0};
        items[P_LANMON0 + i] =
            l->mon ? (zmq_pollitem_t){l->mon, 0, ZMQ_POLLIN, 0} : (zmq_pollitem_t){NULL, -1, 0, 0};
    }
    size_t k = P_FIXED + chp_recv_pollitems(n, items + P_FIXED);
    if (n->hooks.unconfirmed && n->held_query_ms < d)
        d = n->held_query_ms;
    uint64_t links = t + chp_recv_deadline(n, t, d > t ? d : t);
    if (links < d)
        d = links;
    if (chp_ingest_ready(n))
        d = t;
    if (d < *deadline)
        *deadline = d;
    return k;
}

/* Memory freed after a burst of envelopes goes back to the system (so a
 * transfer does not leave the node bigger than before), when the C
 * library can do it. */
static void trim_heap(chp_mesh *n)
{
#ifdef __GLIBC__
    uint64_t s = chp_ingest_settled(n);
    if (s - n->trim_settled >= TRIM_ENVELOPES) {
        n->trim_settled = s;
        malloc_trim(0);
    }
#else
    (void)n;
#endif
}

void chp_mesh_poll_done(chp_mesh *n, const zmq_pollitem_t *items, size_t count)
{
    assert(count >= P_FIXED);
    if ((items[P_MON].revents | items[P_LANMON0].revents | items[P_LANMON1].revents) & ZMQ_POLLIN)
        chp_lan_router_events(n); /* first: a connection is counted before it speaks */
    if (items[P_ZAP].revents & ZMQ_POLLIN)
        zap_handle(n);
    if (items[P_ROUTER].revents & ZMQ_POLLIN)
        chp_recv_router(n, n->router, CHP_MESH_BATCH_MAX);
    /* (a rotation in between closes no socket: it happens in periodic) */
    for (int i = 0; i < 2; i++)
        if ((items[P_LAN0 + i].revents & ZMQ_POLLIN) &&
            items[P_LAN0 + i].socket == n->lan[i].router)
            chp_recv_router(n, n->lan[i].router, CHP_MESH_BATCH_MAX);
    if ((items[P_DISC4].revents | items[P_DISC6].revents) & ZMQ_POLLIN)
        chp_discovery_recv(n);
    chp_recv_poll_done(n, items + P_FIXED, count - P_FIXED, CHP_MESH_BATCH_MAX);
    /* Forward the batch whose commit is done, and hand the writer what
     * this round brought in: it commits while the next round receives
     * (a user node too: waiting for each round's commit left the flow
     * window's sender idle, ingest.c). */
    chp_ingest_pump(n);
    chp_gossip_flush_out(n);
    chp_recv_pongs(n, mesh_ms(n)); /* after the pushes that went before them */
    trim_heap(n);
}

void chp_mesh_periodic(chp_mesh *n, uint64_t t)
{
    chp_recv_periodic(n, t, SYNC_MS);
    chp_conns_check(n, t);
    /* Here, between polls: a rotation closes sockets the poll names. */
    if (n->lan[0].router && (t - n->lan[0].born_ms >= n->lan_period_ms || n->lan_moved)) {
        if (n->lan_moved)
            chp_info("this machine's addresses changed: a new LAN key");
        n->lan_moved = 0;
        if (chp_lan_rotate(n) != CHP_OK)
            n->lan[0].born_ms = t; /* try again a period later */
    }
    chp_lan_tidy(n);
    if (n->hooks.unconfirmed && t >= n->held_query_ms) {
        chp_gossip_query_held(n);
        n->held_query_ms = t + HELD_QUERY_MS;
    }
    chp_gossip_flush_out(n);
}

/* ---- envelopes ---- */

int chp_mesh_publish_later(chp_mesh *n, const uint8_t *env, size_t len)
{
    uint8_t id[32];
    return chp_ingest_add(n, env, len, NULL, 1, id);
}

int chp_mesh_publish(chp_mesh *n, const uint8_t *env, size_t len)
{
    uint8_t id[32];
    int rc = chp_ingest_add(n, env, len, NULL, 1, id);
    return rc == CHP_OK ? chp_mesh_flush(n) : rc;
}

int chp_mesh_ingest(chp_mesh *n, const uint8_t *env, size_t len, uint8_t id[32])
{
    uint8_t own_id[32];
    return chp_ingest_add(n, env, len, NULL, 0, id ? id : own_id);
}

/* Outside a loop round (a control request): what it forwards goes now. */
int chp_mesh_flush(chp_mesh *n)
{
    int rc = chp_ingest_flush(n);
    chp_gossip_flush_out(n);
    return rc;
}

/* ---- neighbours ---- */

int chp_mesh_peer_add(chp_mesh *n, const char *addr, size_t len)
{
    return chp_link_add_address(n, addr, len, 1);
}

int chp_mesh_peer_remove(chp_mesh *n, const char *addr, size_t len)
{
    return chp_link_remove_address(n, addr, len);
}

void chp_mesh_peers(chp_mesh *n, void (*fn)(void *ctx, const chp_mesh_peer *p), void *ctx)
{
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used)
            continue;
        int up = chp_link_up(l);
        /* through a proxy, what the proxy said beats what libzmq saw */
        int proxied = !up && chp_socks_error(n, l->route, l->proxy_err, sizeof l->proxy_err);
        chp_mesh_peer p = {.state = up ? "connected" : chp_link_fail_state(l->fail),
                           .dir = l->dealer ? (l->router_seen ? "both" : "out") : "in",
                           .addr = l->addr[0] ? l->addr : "-",
                           .reason = up           ? "-"
                                     : l->pt_wait ? "waiting for the obfs4 client (PT) to start"
                                     : proxied    ? l->proxy_err
                                                  : chp_link_fail_reason(l->fail),
                           .rx = l->rx_env,
                           .tx = l->tx_env,
                           .transport = chp_mesh_transport_name(chp_transport_of(n, l))};
        memcpy(p.key, l->key, 32);
        fn(ctx, &p);
    }
}

/* In mesh.c, not transport.c: it redials (table.c, which calls
 * transport.c). */
int chp_mesh_obfs4_socks(chp_mesh *n, const char *socks)
{
    const char *s = socks ? socks : "";
    if (strlen(s) >= sizeof n->obfs4_socks)
        return CHP_E_ARG;
    if (!strcmp(n->obfs4_socks, s))
        return CHP_OK;
    snprintf(n->obfs4_socks, sizeof n->obfs4_socks, "%s", s);
    /* every obfs4 link dials anew: through the new listener, or waits */
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (l->used && l->dealer && l->via == CHP_VIA_OBFS4 && chp_link_redial(n, l) != CHP_OK)
            chp_warn("cannot dial an obfs4 neighbour anew");
    }
    return CHP_OK;
}

int chp_mesh_discovery_on(const chp_mesh *n)
{
    return n->disc_fd >= 0 || n->disc6_fd >= 0;
}

int chp_mesh_discovery(chp_mesh *n, int on)
{
    if (on && !chp_mesh_discovery_on(n))
        return chp_discovery_open(n, n->disc_port ? n->disc_port : CHP_DISCOVERY_PORT);
    if (!on && chp_mesh_discovery_on(n)) {
        chp_discovery_close(n);
        chp_info("LAN discovery off");
    }
    return CHP_OK;
}

void chp_mesh_stats_get(const chp_mesh *n, chp_mesh_stats *out)
{
    memset(out, 0, sizeof *out);
    out->ctr = n->ctr;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        const struct chp_link *l = &n->links[i];
        if (chp_link_up(l)) {
            int via = chp_transport_of(n, l);
            out->connected++;
            out->relays += (l->caps & CHP_CAP_RELAY) != 0;
            out->links_tcp += via == CHP_VIA_TCP;
            out->links_obfs4 += via == CHP_VIA_OBFS4;
            out->links_socks5 += via == CHP_VIA_SOCKS5;
        }
    }
    out->passive = chp_view_size(n);
    out->connections = chp_conns_open(n);
}
