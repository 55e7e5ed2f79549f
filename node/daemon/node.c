/* node.c - chapard's event loop: CURVE links, envelope ingest and
 * forwarding, Negentropy sync, and the control API. */
#define _DEFAULT_SOURCE /* IFF_* flags of getifaddrs */
#include "node/daemon/node_int.h"

#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/id.h"
#include "node/common/log.h"
#include "proto/negentropy.h"
#include "node/store/store.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#define BATCH_MAX       CHP_NODE_BATCH_MAX
#define SWEEP_MS        60000     /* expiry sweep period */
#define SYNC_MS         60000     /* periodic re-sync with every neighbour */
#define HELD_QUERY_MS   2000      /* asking neighbours whether they hold our envelopes */
#define CONTROL_MSG_MAX (1 << 20) /* bytes of one control request frame */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_unix(void)
{
    return (uint64_t)time(NULL);
}

/* ---- transport key ---- */

static int load_transport_key(chp_node *n)
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

/* ---- sockets ---- */

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v);
}

/* Options every node link socket gets: bounded frames and queues, no
 * linger on close, ZMTP heartbeats to notice dead peers. */
static int link_opts(void *s)
{
    int64_t maxmsg = CHP_WIRE_ZMQ_MAXMSG;
    if (zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) || set_int(s, ZMQ_LINGER, 0) ||
        set_int(s, ZMQ_SNDHWM, 4096) || set_int(s, ZMQ_RCVHWM, 4096) ||
        set_int(s, ZMQ_HEARTBEAT_IVL, 2000) || set_int(s, ZMQ_HEARTBEAT_TIMEOUT, 6000) ||
        set_int(s, ZMQ_HANDSHAKE_IVL, 5000))
        return CHP_E_ARG;
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

const char *chp_node_listen_problem(const char *spec)
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

static int bind_listen(chp_node *n, const char *spec)
{
    char host[CHP_ADDR_HOST_MAX + 1], ep[300], last[300];
    unsigned port;
    int rc = parse_listen(spec, host, sizeof host, &port);
    if (rc != CHP_OK) {
        chp_err_log("--listen %s: %s", spec, chp_node_listen_problem(spec));
        return rc;
    }
    int v6 = strchr(host, ':') != NULL;
    if (port == 0)
        snprintf(ep, sizeof ep, v6 ? "tcp://[%s]:*" : "tcp://%s:*", host);
    else
        snprintf(ep, sizeof ep, v6 ? "tcp://[%s]:%u" : "tcp://%s:%u", host, port);
    n->router = zmq_socket(n->zctx, ZMQ_ROUTER);
    if (!n->router || link_opts(n->router) || set_int(n->router, ZMQ_CURVE_SERVER, 1) ||
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
void chp_node_address(const chp_node *n, char *out, size_t cap)
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

static int bind_control(chp_node *n)
{
    char ep[4200];
    snprintf(ep, sizeof ep, "ipc://%s/control", n->home);
    /* A request frame over CONTROL_MSG_MAX closes that client's
     * connection (the longest real one, a 64 KiB text, fits many times). */
    int64_t maxmsg = CONTROL_MSG_MAX;
    n->control = zmq_socket(n->zctx, ZMQ_ROUTER);
    if (!n->control || set_int(n->control, ZMQ_LINGER, 0) ||
        zmq_setsockopt(n->control, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        set_int(n->control, ZMQ_RCVHWM, 64) || zmq_bind(n->control, ep) != 0) {
        chp_err_log("cannot bind control socket %s: %s", ep, zmq_strerror(errno));
        return CHP_E_IO;
    }
    snprintf(ep, sizeof ep, "ipc://%s/events", n->home);
    n->events = zmq_socket(n->zctx, ZMQ_PUB);
    if (!n->events || set_int(n->events, ZMQ_LINGER, 0) || zmq_bind(n->events, ep) != 0) {
        chp_err_log("cannot bind event socket %s: %s", ep, zmq_strerror(errno));
        return CHP_E_IO;
    }
    return CHP_OK;
}

/* ---- connections ----
 *
 * libzmq accepts every TCP connection on the ROUTER and tells the node
 * nothing until a message arrives; a connection that finishes CURVE and
 * then stays silent would hold a descriptor for ever. So the ROUTER's
 * monitor reports each accepted socket, and the node counts it from that
 * moment: in total, per source address and (once ZAP saw its key) per
 * key. One over a limit, one still silent HELLO_MS after it was accepted,
 * and one whose key was banned are closed by shutting its socket down
 * (libzmq then closes it as for a peer that left). An unauthenticated
 * connection is closed by libzmq itself after ZMQ_HANDSHAKE_IVL (5 s).
 * Descriptors: the soft RLIMIT_NOFILE is raised to the hard one at start,
 * the connection limit is cut to what the descriptors allow, and a
 * socket accepted into the last FD_RESERVE descriptors is closed at once,
 * so the control socket (whose accept would abort libzmq at EMFILE)
 * always finds one. THREATS.md has the numbers. */

#define CONN_MAX_USER     256
#define CONN_MAX_RELAY    1024
#define CONN_PER_IP_USER  32
#define CONN_PER_IP_RELAY 64
#define CONN_PER_KEY      3
#define HELLO_MS          10000 /* accepted, authenticated, yet silent: closed */
#define FD_RESERVE        32    /* descriptors kept free (control clients, files) */
#define FD_PER_DEALER     4     /* our own links: TCP socket, two mailboxes, monitor */
#define FD_BASE           64    /* store, sockets, threads' mailboxes */
#define EVICT_AGE_MS      10000 /* a neighbour this new is never evicted */
#define EVICT_EVERY_MS    5000  /* one eviction at most this often */
#define CONN_CHECK_MS     1000

struct conn {
    int fd;
    uint16_t port;
    uint8_t ip[16]; /* IPv4 as ::ffff:a.b.c.d */
    uint8_t key[32];
    uint8_t keyed;   /* ZAP said OK for key (or a message came with it) */
    uint8_t spoke;   /* a message came on it */
    uint8_t closing; /* shut down by us; gone at its DISCONNECTED event */
    uint64_t ms;     /* accepted */
};

struct chp_conns {
    size_t n, max, per_ip;
    long nofile;
    uint64_t evict_ms, check_ms;
    struct conn c[];
};

static int sa_ip(const struct sockaddr_storage *ss, uint8_t ip[16], uint16_t *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        memset(ip, 0, 10);
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, &a->sin_addr, 4);
        *port = ntohs(a->sin_port);
        return 1;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        memcpy(ip, &a->sin6_addr, 16);
        *port = ntohs(a->sin6_port);
        return 1;
    }
    return 0;
}

static int host_ip(const char *host, uint8_t ip[16])
{
    if (inet_pton(AF_INET6, host, ip) == 1)
        return 1;
    memset(ip, 0, 10);
    ip[10] = ip[11] = 0xff;
    return inet_pton(AF_INET, host, ip + 12) == 1;
}

static int conns_init(chp_node *n)
{
    struct rlimit rl;
    long nofile = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rlim_t want = rl.rlim_max;
            rl.rlim_cur = want;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        nofile = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 30) ? (1l << 30)
                                                                          : (long)rl.rlim_cur;
    }
    size_t max = n->relay ? CONN_MAX_RELAY : CONN_MAX_USER;
    long room = nofile - FD_RESERVE - FD_BASE - FD_PER_DEALER * (long)(n->active_max + 8);
    if (room < 8)
        room = 8;
    if ((size_t)room < max) {
        chp_warn("only %ld file descriptors (ulimit -n): at most %ld incoming connections", nofile,
                 room);
        max = (size_t)room;
    }
    n->conns = calloc(1, sizeof *n->conns + max * sizeof(struct conn));
    if (!n->conns)
        return CHP_E_NOMEM;
    n->conns->max = max;
    n->conns->per_ip = n->relay ? CONN_PER_IP_RELAY : CONN_PER_IP_USER;
    n->conns->nofile = nofile;
    return CHP_OK;
}

static struct conn *conn_by_fd(chp_node *n, int fd)
{
    struct chp_conns *cs = n->conns;
    for (size_t i = 0; cs && i < cs->n; i++)
        if (cs->c[i].fd == fd)
            return &cs->c[i];
    return NULL;
}

static void conn_forget(chp_node *n, struct conn *c)
{
    struct chp_conns *cs = n->conns;
    *c = cs->c[--cs->n];
}

/* 1 if the connection's descriptor is still that connection (the same
 * peer address and port: a descriptor number is reused). */
static int conn_same(const struct conn *c)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    uint8_t ip[16];
    uint16_t port;
    return getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0 && sa_ip(&ss, ip, &port) &&
           port == c->port && !memcmp(ip, c->ip, 16);
}

/* Shuts the connection's socket down, if it still is that connection. */
static void conn_close(chp_node *n, struct conn *c)
{
    if (c->closing)
        return;
    if (conn_same(c) && shutdown(c->fd, SHUT_RDWR) == 0)
        c->closing = 1;
    else
        conn_forget(n, c); /* already gone */
}

static size_t conns_of_key(chp_node *n, const uint8_t key[32])
{
    size_t k = 0;
    for (size_t i = 0; n->conns && i < n->conns->n; i++)
        k +=
            n->conns->c[i].keyed && !n->conns->c[i].closing && !memcmp(n->conns->c[i].key, key, 32);
    return k;
}

/* A socket the ROUTER accepted. */
static void conn_accepted(chp_node *n, int fd)
{
    struct chp_conns *cs = n->conns;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct conn c = {.fd = fd, .ms = now_ms()};
    struct conn *old = conn_by_fd(n, fd);
    if (old) /* its DISCONNECTED came first: that descriptor is a new socket */
        conn_forget(n, old);
    chp_link_router_closed(n, fd); /* likewise for a link that still names it */
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 || !sa_ip(&ss, c.ip, &c.port))
        return; /* gone already */
    size_t same = 0;
    for (size_t i = 0; i < cs->n; i++)
        same += !memcmp(cs->c[i].ip, c.ip, 16);
    const char *why = fd >= cs->nofile - FD_RESERVE ? "out of file descriptors"
                      : cs->n >= cs->max            ? "too many connections"
                      : same >= cs->per_ip          ? "too many connections from one address"
                                                    : NULL;
    if (why) {
        n->ctr.conns_refused++;
        chp_debug("closing an incoming connection: %s", why);
        if (shutdown(fd, SHUT_RDWR) == 0 && cs->n < cs->max) {
            c.closing = 1; /* still holds its descriptor until libzmq closes it */
            cs->c[cs->n++] = c;
        }
        return;
    }
    cs->c[cs->n++] = c;
}

/* ZAP said OK to key on a connection from host: the oldest connection
 * from there that has no key yet is taken to be it (the request does not
 * name the socket; a mix-up between two connections from one address is
 * put right by their first message). */
static void conn_authenticated(chp_node *n, const char *host, const uint8_t key[32])
{
    uint8_t ip[16];
    struct conn *best = NULL;
    if (!n->conns || !host_ip(host, ip))
        return;
    for (size_t i = 0; i < n->conns->n; i++) {
        struct conn *c = &n->conns->c[i];
        if (!c->keyed && !c->closing && !memcmp(c->ip, ip, 16) && (!best || c->ms < best->ms))
            best = c;
    }
    if (best) {
        memcpy(best->key, key, 32);
        best->keyed = 1;
    }
}

void chp_node_conn_spoke(chp_node *n, int fd, const uint8_t key[32])
{
    struct conn *c = conn_by_fd(n, fd);
    if (c) {
        c->spoke = 1;
        c->keyed = 1;
        memcpy(c->key, key, 32);
    }
}

/* The key has a neighbour link now (a second connection of a live link,
 * or a node we dial ourselves): its connection takes no new place in the
 * active view. */
static int in_view(chp_node *n, const uint8_t key[32])
{
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
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
static int evict_idle(chp_node *n, uint64_t t)
{
    struct chp_link *best = NULL;
    struct conn *bc = NULL;
    if (!n->conns || t - n->conns->evict_ms < EVICT_EVERY_MS)
        return 0;
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        struct conn *c;
        if (!l->used || l->dealer || !l->router_seen || !l->hello_rx ||
            !(c = conn_by_fd(n, l->router_fd)) || c->closing || t - c->ms < EVICT_AGE_MS)
            continue;
        if (!best || l->rx_env < best->rx_env || (l->rx_env == best->rx_env && c->ms < bc->ms)) {
            best = l;
            bc = c;
        }
    }
    if (!best)
        return 0;
    char ks[17];
    chp_key_short(best->key, ks);
    chp_info("active view full: neighbour %s (%llu envelopes in %llu s) makes room for a newcomer",
             ks, (unsigned long long)best->rx_env, (unsigned long long)((t - bc->ms) / 1000));
    conn_close(n, bc);
    chp_link_drop(n, best);
    zmq_send(n->events, "peer", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->events, "down", 4, ZMQ_DONTWAIT);
    n->conns->evict_ms = t;
    n->ctr.evictions++;
    return 1;
}

/* Closes connections silent since HELLO_MS after they were accepted, and
 * those of keys banned since. */
static void conns_check(chp_node *n, uint64_t t)
{
    struct chp_conns *cs = n->conns;
    if (!cs || t - cs->check_ms < CONN_CHECK_MS)
        return;
    cs->check_ms = t;
    for (size_t i = 0; i < cs->n;) {
        struct conn *c = &cs->c[i];
        size_t before = cs->n;
        if (!c->closing && !conn_same(c)) {
            /* gone with no DISCONNECTED event: its LAN listener closed */
            conn_forget(n, c);
        } else if (!c->closing && !c->spoke && t - c->ms > HELLO_MS) {
            n->ctr.conns_timedout++;
            chp_debug("closing an incoming connection that said nothing in %u s", HELLO_MS / 1000);
            conn_close(n, c);
        } else if (!c->closing && c->keyed && chp_link_banned(n, c->key, t)) {
            conn_close(n, c);
        }
        if (cs->n == before)
            i++; /* else slot i holds another entry now */
    }
}

size_t chp_node_conns_open(const chp_node *n)
{
    return n->conns ? n->conns->n : 0;
}

/* ZAP: every CURVE client is authenticated here. The user id handed back
 * is the client's key in hex, which the node reads from each message's
 * metadata to know which neighbour sent it. Banned keys are refused. */
static int bind_zap(chp_node *n)
{
    n->zap = zmq_socket(n->zctx, ZMQ_REP);
    if (!n->zap || set_int(n->zap, ZMQ_LINGER, 0) ||
        zmq_bind(n->zap, "inproc://zeromq.zap.01") != 0) {
        chp_err_log("cannot bind the ZAP handler: %s", zmq_strerror(errno));
        return CHP_E_IO;
    }
    return CHP_OK;
}

static void router_events(chp_node *n);

static void zap_handle(chp_node *n)
{
    zmq_msg_t f[7];
    int nf = 0, more = 1;
    router_events(n); /* every connection accepted so far is counted */
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
        uint64_t t = now_ms();
        if (chp_link_banned(n, key, t)) {
            text = "banned";
            n->ctr.refused_banned++;
        } else if (!chp_node_allowed(n, key)) {
            text = "not on this node's allow-list";
            n->ctr.refused_allow++;
        } else if (conns_of_key(n, key) >= CONN_PER_KEY) {
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
            for (int i = 0; i < 32; i++)
                sprintf(uid + 2 * i, "%02x", key[i]);
            conn_authenticated(n, host, key);
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

int chp_node_allowed(const chp_node *n, const uint8_t key[32])
{
    if (!n->nallow)
        return 1;
    for (size_t i = 0; i < n->nallow; i++)
        if (!memcmp(n->allow[i], key, 32))
            return 1;
    return 0;
}

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
 * A light load still commits each poll round's envelopes at once. The next
 * batch goes to the writer before the finished one is forwarded. */

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
    uint8_t *arena;
    size_t used, cap;
    uint16_t set[SET_SLOTS]; /* 1 + index into p, 0 = free: ids in this batch */
};

struct chp_ingest {
    struct batch b[2];
    struct batch *fill;       /* being received into */
    struct batch *committing; /* in the writer thread, or NULL */
    uint64_t full_log_ms;     /* when the last "store full" line was logged */
    uint64_t full_unlogged;   /* refusals since that line */
};

#define FULL_LOG_MS 60000 /* at most one "store full" warning a minute */

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
    b->used = 0;
    memset(b->set, 0, sizeof b->set);
}

static int ingest_init(chp_node *n)
{
    n->ingest = calloc(1, sizeof *n->ingest);
    if (!n->ingest)
        return CHP_E_NOMEM;
    n->ingest->fill = &n->ingest->b[0];
    return CHP_OK;
}

static void ingest_fini(chp_node *n)
{
    if (!n->ingest)
        return;
    free(n->ingest->b[0].arena);
    free(n->ingest->b[1].arena);
    free(n->ingest);
    n->ingest = NULL;
}

static void hex32(char out[64], const uint8_t id[32])
{
    static const char digits[] = "0123456789abcdef";
    for (int k = 0; k < 32; k++) {
        out[2 * k] = digits[id[k] >> 4];
        out[2 * k + 1] = digits[id[k] & 15];
    }
}

static int commit_start(chp_node *n);
static void full_note(chp_node *n, uint64_t add);

/* Waits for the committing batch, then counts and forwards what it stored,
 * in batch order. With next set, the batch being filled goes to the writer
 * first, so its commit runs while this one is forwarded. */
static int commit_finish(chp_node *n, int next)
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
        const uint8_t *env = b->arena + p->off;
        int res = b->items[i].result;
        if (res == CHP_OK) {
            n->ctr.accepted++;
            int links = chp_link_forward(n, env, p->len, p->id, p->link);
            if (n->msg)
                chp_msg_on_envelope(n->msg, env, p->len, p->id, b->items[i].seq);
            if (p->own && links > 0)
                n->held_query_ms = 0; /* ask them soon whether they took it */
            char hex[64];
            hex32(hex, p->id);
            zmq_send(n->events, "envelope", 8, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(n->events, hex, 64, ZMQ_DONTWAIT);
        } else if (res == CHP_E_DUP) {
            n->ctr.duplicates++;
        } else {
            chp_node_count_reject(n, res);
        }
    }
    full_note(n, 0); /* refusals held back by the rate limit, once it allows */
    batch_reset(b);
    return rc;
}

/* Hands the batch being filled to the store's writer thread, when it is
 * free; the next envelopes go into the other batch. */
static int commit_start(chp_node *n)
{
    struct chp_ingest *g = n->ingest;
    struct batch *b = g->fill;
    if (g->committing || !b->n)
        return CHP_OK;
    uint64_t t = now_unix();
    for (size_t i = 0; i < b->n; i++) {
        struct pending *p = &b->p[i];
        b->items[i] = (chp_store_item){.env = b->arena + p->off,
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
        batch_reset(b); /* as a failed commit: nothing of it was stored */
        return rc;
    }
    g->committing = b;
    g->fill = b == &g->b[0] ? &g->b[1] : &g->b[0];
    return CHP_OK;
}

/* Queues one envelope for the next group commit, after the cheap checks. */
int chp_node_ingest(chp_node *n, const uint8_t *env, size_t len, uint32_t link, int own)
{
    struct chp_ingest *g = n->ingest;
    chp_env_hdr h;
    uint8_t id[32];
    int rc = chp_envelope_check(env, len, now_unix(), NULL, &h, id);
    if (rc != CHP_OK) {
        chp_node_count_reject(n, rc);
        return rc;
    }
    /* A duplicate costs one id lookup: the batches in hand, then the store. */
    n->dup_in_flight = in_batch(g->fill, id) || in_batch(g->committing, id);
    if (n->dup_in_flight || chp_store_has(n->store, id) == 1) {
        n->ctr.duplicates++;
        return CHP_E_DUP;
    }
    if (g->fill->n == INGEST_MAX || (g->fill->n && g->fill->used + len > INGEST_BYTES)) {
        /* full: wait for the writer, hand it over */
        if (commit_finish(n, 1) != CHP_OK || (!g->committing && commit_start(n) != CHP_OK))
            return CHP_E_STORE;
    }
    struct batch *b = g->fill;
    if (b->used + len > b->cap) {
        size_t cap = b->cap ? b->cap : (size_t)1 << 20;
        while (cap < b->used + len)
            cap *= 2;
        uint8_t *a = realloc(b->arena, cap);
        if (!a)
            return CHP_E_NOMEM;
        b->arena = a;
        b->cap = cap;
    }
    struct pending *p = &b->p[b->n];
    memcpy(b->arena + b->used, env, len);
    p->off = b->used;
    p->len = len;
    memcpy(p->id, id, 32);
    p->created = h.created;
    p->expiry = h.expiry;
    p->link = link;
    p->own = own;
    /* Mail for the user is never refused by quota: one tag lookup (no
     * tags on a relay or while locked; STORAGE.md, Quota). */
    p->mine = !own && chp_msg_tag_mine(n->msg, h.tag);
    b->used += len;
    *set_slot(b, id) = (uint16_t)(++b->n);
    return CHP_OK;
}

/* Foreign envelopes refused for want of room (add of them now): a warning
 * at most once a minute with the count since the last one, never a line
 * per envelope, and nothing that identifies an envelope. */
static void full_note(chp_node *n, uint64_t add)
{
    struct chp_ingest *g = n->ingest;
    if (!g)
        return;
    g->full_unlogged += add;
    if (!g->full_unlogged)
        return;
    uint64_t t = now_ms();
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

void chp_node_count_reject(chp_node *n, int rc)
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
int chp_node_flush(chp_node *n)
{
    if (!n->ingest)
        return CHP_OK;
    (void)commit_finish(n, 0); /* the batch before: its failure is logged */
    int rc = commit_start(n);
    int rc2 = commit_finish(n, 0);
    return rc != CHP_OK ? rc : rc2;
}

/* ---- the messaging layer's side of the node ---- */

static void msg_event(void *ctx, const char *topic, const char *body, size_t len)
{
    chp_node *n = ctx;
    zmq_send(n->events, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->events, body, len, ZMQ_DONTWAIT);
}

/* Publishes what the messaging layer sealed: stored as the user's own
 * (never evicted), then pushed like any envelope. */
static void msg_pump(chp_node *n)
{
    if (!n->msg)
        return;
    uint8_t *e = NULL;
    size_t len = 0;
    int k = 0;
    for (; k < 64 && chp_msg_take(n->msg, &e, &len); k++) {
        int rc = chp_node_ingest(n, e, len, 0, 1);
        if (rc != CHP_OK && rc != CHP_E_DUP)
            chp_err_log("cannot publish an own envelope: %s", chp_strerror(rc));
        free(e);
    }
    if (k) /* the user's own go out at once, not after the next round */
        (void)chp_node_flush(n);
}

/* Takes ownership of *id (sets it NULL once consumed). */
static int open_msg(chp_node *n, chp_identity **id)
{
    chp_msg_host host = {.ctx = n, .event = msg_event};
    int rc = chp_msg_new(n->store, n->home, &host, &n->msg);
    if (rc != CHP_OK)
        return rc;
    if (*id) {
        rc = chp_msg_unlock(n->msg, *id);
        *id = NULL;
        if (rc == CHP_E_PASSPHRASE)
            chp_err_log("the identity in %s does not match this store", n->home);
    }
    return rc;
}

/* ---- lifecycle ---- */

int chp_node_new(const chp_node_opts *o, chp_node **out)
{
    assert(o && o->home && out);
    *out = NULL;
    chp_identity *id = o->identity;
    chp_node *n = calloc(1, sizeof *n);
    if (!n) {
        chp_identity_destroy(&id);
        return CHP_E_NOMEM;
    }
    n->relay = o->relay;
    n->disc_fd = n->disc6_fd = -1;
    chp_rng_fill(chp_rng_system(), &n->lazy_rng, sizeof n->lazy_rng);
    n->active_max = o->relay ? CHP_NODE_LINKS_MAX : CHP_NODE_ACTIVE_MAX;
    for (size_t i = 0; i < o->nallow && i < CHP_NODE_MAX_PEERS; i++)
        memcpy(n->allow[n->nallow++], o->allow[i], 32);
    n->started_ms = now_ms();
    snprintf(n->home, sizeof n->home, "%s", o->home);
    int rc = ingest_init(n);
    if (rc == CHP_OK)
        rc = conns_init(n);
    if (rc != CHP_OK)
        goto fail;
    rc = CHP_E_CRYPTO_INIT;
    if (!zmq_has("curve")) {
        /* Never fall back to plaintext links. */
        chp_err_log("this libzmq has no CURVE support; install Debian's libzmq5 (with libsodium)");
        goto fail;
    }
    rc = CHP_E_IO;
    if (mkdir(o->home, 0700) != 0 && errno != EEXIST) {
        chp_err_log("cannot create %s: %s", o->home, strerror(errno));
        goto fail;
    }
    chmod(o->home, 0700); /* only the owner may reach the control socket */
    uint32_t found = 0;
    chp_store_opts so = {.quota = o->quota};
    if ((rc = chp_store_open(o->home, &so, &n->store, &found)) != CHP_OK) {
        if (rc == CHP_E_STORE_SCHEMA)
            chp_err_log("store in %s has schema %u; this chapard understands %u", o->home, found,
                        CHP_STORE_SCHEMA);
        else
            chp_err_log("cannot open the store in %s: %s", o->home, chp_strerror(rc));
        goto fail;
    }
    if ((rc = load_transport_key(n)) != CHP_OK)
        goto fail;
    if (!o->relay && (rc = open_msg(n, &id)) != CHP_OK)
        goto fail;
    rc = CHP_E_IO;
    if (!(n->zctx = zmq_ctx_new()))
        goto fail;
    if ((rc = bind_zap(n)) || (rc = bind_listen(n, o->listen)) || (rc = bind_control(n)))
        goto fail;
    for (size_t i = 0; i < o->npeers; i++) {
        int prc = chp_link_add_address(n, o->peers[i], strlen(o->peers[i]), 1);
        if (prc != CHP_OK) {
            chp_err_log("--peer %s: %s", o->peers[i], chp_strerror(prc));
            rc = prc;
            goto fail;
        }
    }
    chp_link_restore_known(n);
    if (o->discovery)
        (void)chp_discovery_open(n, o->discovery_port ? o->discovery_port : CHP_DISCOVERY_PORT);
    n->next_sweep = now_ms() + SWEEP_MS;
    chp_identity_destroy(&id); /* a relay keeps no user identity */
    *out = n;
    return CHP_OK;
fail:
    chp_identity_destroy(&id);
    chp_node_destroy(&n);
    return rc;
}

static void lan_close(chp_node *n, struct chp_lan *l);

void chp_node_destroy(chp_node **np)
{
    if (!np || !*np)
        return;
    chp_node *n = *np;
    if (n->store)
        (void)chp_node_flush(n);
    ingest_fini(n);
    chp_link_close_all(n);
    chp_discovery_close(n);
    chp_discovery_free(n);
    chp_msg_free(&n->msg);
    for (int i = 0; i < 2; i++)
        lan_close(n, &n->lan[i]);
    if (n->router) {
        zmq_socket_monitor(n->router, NULL, 0);
        zmq_close(n->router);
    }
    if (n->router_mon)
        zmq_close(n->router_mon);
    if (n->control)
        zmq_close(n->control);
    if (n->events)
        zmq_close(n->events);
    if (n->zap)
        zmq_close(n->zap);
    if (n->zctx)
        zmq_ctx_term(n->zctx);
    chp_store_close(&n->store);
    free(n->conns);
    chp_memzero(n->tsk, sizeof n->tsk);
    free(n);
    *np = NULL;
}

/* Connections of a ROUTER (ours or a LAN listener: descriptors are
 * unique in the process) that opened or closed:
 * [event u16, value u32][endpoint]. */
static void mon_events(chp_node *n, void *mon)
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
                conn_accepted(n, fd);
            } else if (event == ZMQ_EVENT_DISCONNECTED) {
                struct conn *c = conn_by_fd(n, fd);
                if (c)
                    conn_forget(n, c);
                chp_link_router_closed(n, fd);
            }
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&ep);
        if (!got)
            return;
    }
}

static void router_events(chp_node *n)
{
    if (n->router_mon)
        mon_events(n, n->router_mon);
    for (int i = 0; i < 2; i++)
        if (n->lan[i].mon)
            mon_events(n, n->lan[i].mon);
}

/* ---- the LAN listener (PROTOCOL.md §17) ----
 *
 * What a LAN sees of a user node must not follow it from one LAN to the
 * next: its beacons name a second ROUTER on an ephemeral port whose CURVE
 * key pair is random per start and replaced every lan_period_ms, and the
 * node dials what it discovers with that key as its client key. Its
 * connections count against the same limits (one monitor each, same
 * connection table) and pass the same ZAP as the ROUTER's. */

struct chp_lan *chp_node_lan_of(chp_node *n, uint32_t gen)
{
    for (int i = 0; gen && i < 2; i++)
        if (n->lan[i].router && n->lan[i].gen == gen)
            return &n->lan[i];
    return NULL;
}

static void lan_close(chp_node *n, struct chp_lan *l)
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

static int lan_open(chp_node *n, struct chp_lan *l)
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
    if (!l->router || link_opts(l->router) || set_int(l->router, ZMQ_CURVE_SERVER, 1) ||
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
    l->born_ms = now_ms();
    chp_info("LAN listener on port %u with a fresh key", (unsigned)l->port);
    return CHP_OK;
}

int chp_node_lan_rotate(chp_node *n)
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

void chp_node_lan_tidy(chp_node *n)
{
    struct chp_lan *l = &n->lan[1];
    if (l->router && !chp_link_lan_used(n, l->router, l->gen)) {
        chp_debug("the previous LAN listener has no links left: closed");
        lan_close(n, l);
    }
}

int chp_node_wiped(const chp_node *n)
{
    return n->wiped;
}

/* ---- the loop ---- */

static void periodic(chp_node *n, uint64_t t)
{
    if (t >= n->next_sweep) {
        uint64_t removed = 0;
        if (chp_store_sweep(n->store, now_unix(), &removed) == CHP_OK && removed)
            chp_info("expired %llu envelopes", (unsigned long long)removed);
        n->next_sweep = t + SWEEP_MS;
    }
    chp_link_periodic(n, t, SYNC_MS);
    conns_check(n, t);
    /* Here, between polls: a rotation closes sockets the poll names. */
    if (n->lan[0].router && (t - n->lan[0].born_ms >= n->lan_period_ms || n->lan_moved)) {
        if (n->lan_moved)
            chp_info("this machine's addresses changed: a new LAN key");
        n->lan_moved = 0;
        if (chp_node_lan_rotate(n) != CHP_OK)
            n->lan[0].born_ms = t; /* try again a period later */
    }
    chp_node_lan_tidy(n);
    if (!n->msg)
        return;
    if (t >= n->msg_tick_ms) {
        chp_msg_tick(n->msg);
        n->msg_tick_ms = t + 1000;
    }
    if (t >= n->held_query_ms) {
        chp_link_query_held(n);
        n->held_query_ms = t + HELD_QUERY_MS;
    }
}

int chp_node_run(chp_node *n, volatile sig_atomic_t *stop)
{
    assert(n && stop);
    zmq_pollitem_t items[13 + 2 * CHP_NODE_LINKS_MAX];
    while (!*stop && !n->wiped && !n->stop_asked) {
        size_t ni = 0;
        /* Discovery first: it may drop links, whose sockets the poll
         * below must not name (zmq_poll fails on a closed socket). */
        uint64_t t = now_ms(), beacon = chp_discovery_due(n, t);
        int committing = n->ingest->committing != NULL;
        items[ni++] = (zmq_pollitem_t){n->router, 0, ZMQ_POLLIN, 0};
        items[ni++] = (zmq_pollitem_t){n->control, 0, ZMQ_POLLIN, 0};
        items[ni++] = (zmq_pollitem_t){n->zap, 0, ZMQ_POLLIN, 0};
        items[ni++] = (zmq_pollitem_t){NULL, n->disc_fd, n->disc_fd >= 0 ? ZMQ_POLLIN : 0, 0};
        items[ni++] = (zmq_pollitem_t){NULL, n->disc6_fd, n->disc6_fd >= 0 ? ZMQ_POLLIN : 0, 0};
        items[ni++] = (zmq_pollitem_t){n->router_mon, 0, ZMQ_POLLIN, 0};
        /* The sealing worker says when an envelope's proof of work is done. */
        int sfd = n->msg ? chp_msg_fd(n->msg) : -1;
        items[ni++] = (zmq_pollitem_t){NULL, sfd, sfd >= 0 ? ZMQ_POLLIN : 0, 0};
        /* The writer thread says when the batch it commits is done. */
        int cfd = committing ? chp_store_put_fd(n->store) : -1;
        items[ni++] = (zmq_pollitem_t){NULL, cfd, cfd >= 0 ? ZMQ_POLLIN : 0, 0};
        /* The LAN listeners (8, 9) and their monitors (10, 11). */
        for (int i = 0; i < 2; i++)
            items[ni++] = n->lan[i].router ? (zmq_pollitem_t){n->lan[i].router, 0, ZMQ_POLLIN, 0}
                                           : (zmq_pollitem_t){NULL, -1, 0, 0};
        for (int i = 0; i < 2; i++)
            items[ni++] = n->lan[i].mon ? (zmq_pollitem_t){n->lan[i].mon, 0, ZMQ_POLLIN, 0}
                                        : (zmq_pollitem_t){NULL, -1, 0, 0};
        size_t base = ni;
        ni += chp_link_pollitems(n, items + ni);
        uint64_t other = beacon < n->next_sweep ? beacon : n->next_sweep;
        if (n->msg && n->msg_tick_ms < other)
            other = n->msg_tick_ms;
        if (n->msg && n->held_query_ms < other)
            other = n->held_query_ms;
        long timeout = (long)chp_link_next_deadline(n, t, other);
        if ((n->msg && chp_msg_has_outgoing(n->msg)) ||
            (committing && chp_store_put_ready(n->store)))
            timeout = 0;
        int rc = zmq_poll(items, (int)ni, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            chp_err_log("zmq_poll: %s", zmq_strerror(errno));
            return CHP_E_IO;
        }
        if ((items[5].revents | items[10].revents | items[11].revents) & ZMQ_POLLIN)
            router_events(n); /* first: a connection is counted before it speaks */
        if (items[2].revents & ZMQ_POLLIN)
            zap_handle(n);
        if (items[0].revents & ZMQ_POLLIN)
            chp_link_recv_router(n, n->router, BATCH_MAX);
        /* (a rotation in between closes no socket: it happens in periodic) */
        for (int i = 0; i < 2; i++)
            if ((items[8 + i].revents & ZMQ_POLLIN) && items[8 + i].socket == n->lan[i].router)
                chp_link_recv_router(n, n->lan[i].router, BATCH_MAX);
        if ((items[3].revents | items[4].revents) & ZMQ_POLLIN)
            chp_discovery_recv(n);
        chp_link_poll_done(n, items + base, ni - base, BATCH_MAX);
        /* Forward the batch whose commit is done, and hand the writer what
         * this round brought in: it commits while the next round receives. */
        if (n->msg) {
            /* A user node commits each round before going on, as the
             * messaging layer expects; the pipeline is for relays. */
            (void)chp_node_flush(n);
        } else {
            if (n->ingest->committing && chp_store_put_ready(n->store))
                (void)commit_finish(n, 1);
            (void)commit_start(n);
        }
        chp_link_flush_lazy(n);
        if (items[1].revents & ZMQ_POLLIN)
            chp_control_handle(n);
        periodic(n, now_ms());
        msg_pump(n);
    }
    chp_info("shutting down");
    return chp_node_flush(n);
}
