/* discovery.c - LAN discovery: a UDP beacon about every second, broadcast
 * on every IPv4 interface and multicast to ff02::6368:6170 on every IPv6
 * one, carrying a listen port and key; nodes dial what
 * they hear. IPv6 matters on a bare LAN with no DHCP server: the link-local
 * addresses every interface has are then the only ones there are. A beacon is not trusted for
 * identity: the key it names is the one the CURVE handshake must then prove, so a spoofed beacon
 * can at worst make a node try a connection that fails, never talk to a wrong key.
 *
 * Beacon (PROTOCOL.md §17): "CHPB" | version u8 (1) | flags u8 | port u16 |
 * key [32]  = 40 bytes (beacon.h): a relay's transport key, a user node's LAN
 * listener key, random per start and rotated (lan.c). */
#define _DEFAULT_SOURCE /* SO_REUSEPORT, IFF_* flags, SOCK_NONBLOCK */
#include "node/mesh/beacon.h"
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BEACON_LEN CHP_BEACON_LEN
#define GROUP6     "ff02::6368:6170" /* link-local scope: never routed */
#define BEACON_MS  1000
/* Discovered neighbours dialled at most: a bounded active view even when
 * the whole LAN answers (the rest stay reachable through them). */
#define DISCOVERED_MAX 6

static int open_v4(uint16_t port)
{
    int one = 1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        chp_warn("IPv4 LAN discovery off: cannot use UDP port %u: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int open_v6(uint16_t port)
{
    int one = 1, hops = 1;
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1; /* no IPv6 in this kernel: nothing to say */
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    sa.sin6_addr = in6addr_any;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        chp_warn("IPv6 LAN discovery off: cannot use UDP port %u: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int chp_discovery_open(chp_mesh *n, uint16_t port)
{
    n->disc_fd = open_v4(port);
    n->disc6_fd = open_v6(port);
    if (n->disc_fd < 0 && n->disc6_fd < 0)
        return CHP_E_IO;
    n->disc_port = port;
    n->next_beacon = 0;
    if (!n->relay && !n->lan[0].router)
        (void)chp_lan_rotate(n); /* the listener our beacons name */
    chp_info("LAN discovery on UDP port %u (%s%s)", port, n->disc_fd >= 0 ? "IPv4 broadcast" : "",
             n->disc6_fd >= 0 ? (n->disc_fd >= 0 ? ", IPv6 multicast" : "IPv6 multicast") : "");
    return CHP_OK;
}

void chp_discovery_close(chp_mesh *n)
{
    if (n->disc_fd >= 0)
        close(n->disc_fd);
    if (n->disc6_fd >= 0)
        close(n->disc6_fd);
    n->disc_fd = n->disc6_fd = -1;
}

/* Which families our listen socket answers on: beacons only promise
 * what a neighbour can then dial. */
static int listens_v4(const chp_mesh *n)
{
    const char *h = n->listen_host;
    return !strchr(h, ':') || !strcmp(h, "::");
}

static int listens_v6(const chp_mesh *n)
{
    return strchr(n->listen_host, ':') != NULL;
}

/* Joins the group on ifindex (again: EADDRINUSE once joined, harmless;
 * interfaces that come up later are picked up by the next beacon) and
 * multicasts one beacon there. */
static void beacon_v6(chp_mesh *n, const uint8_t *b, unsigned ifindex)
{
    struct ipv6_mreq mr;
    memset(&mr, 0, sizeof mr);
    inet_pton(AF_INET6, GROUP6, &mr.ipv6mr_multiaddr);
    mr.ipv6mr_interface = ifindex;
    (void)setsockopt(n->disc6_fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof mr);
    if (setsockopt(n->disc6_fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof ifindex))
        return;
    struct sockaddr_in6 to;
    memset(&to, 0, sizeof to);
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(n->disc_port);
    to.sin6_addr = mr.ipv6mr_multiaddr;
    to.sin6_scope_id = ifindex;
    if (sendto(n->disc6_fd, b, BEACON_LEN, 0, (struct sockaddr *)&to, sizeof to) < 0)
        chp_debug("IPv6 beacon on interface %u: %s", ifindex, strerror(errno));
}

static void send_to_addr(chp_mesh *n, const uint8_t *b, uint32_t ip)
{
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(n->disc_port);
    to.sin_addr.s_addr = ip;
    if (sendto(n->disc_fd, b, BEACON_LEN, 0, (struct sockaddr *)&to, sizeof to) < 0)
        chp_debug("beacon to %s: %s", inet_ntoa(to.sin_addr), strerror(errno));
}

/* FNV-1a of one address (0 for other families); summed, so the order
 * getifaddrs lists them in does not matter. */
static uint64_t net_hash(const struct sockaddr *sa)
{
    uint64_t h = 1469598103934665603ull;
    const uint8_t *p = NULL;
    size_t len = 0;
    if (sa->sa_family == AF_INET) {
        p = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        len = 4;
    } else if (sa->sa_family == AF_INET6) {
        p = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        len = 16;
    }
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return len ? h : 0;
}

/* One beacon to every broadcast-capable IPv4 interface (or the limited
 * broadcast address when none has one), and one to the IPv6 group on every
 * multicast-capable interface with IPv6. */
static void beacon(chp_mesh *n)
{
    uint8_t b[BEACON_LEN];
    /* A relay's address is published: it beacons it. A user node beacons
     * its LAN listener, never its transport key (nothing long-lived). */
    chp_beacon bc = {.relay = n->relay, .port = n->port};
    if (n->relay)
        memcpy(bc.key, n->tpk, 32);
    else if (n->lan[0].router) {
        bc.port = n->lan[0].port;
        memcpy(bc.key, n->lan[0].pk, 32);
    } else
        return; /* no LAN listener (it could not open): say nothing */
    chp_beacon_build(&bc, b);
    int v4 = n->disc_fd >= 0 && listens_v4(n), v6 = n->disc6_fd >= 0 && listens_v6(n);
    struct ifaddrs *ifs = NULL;
    int sent = 0;
    unsigned done6[32];
    size_t ndone6 = 0;
    uint64_t net = 1; /* this machine's addresses, hashed */
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
            if (!i->ifa_addr || !(i->ifa_flags & IFF_UP))
                continue;
            net += net_hash(i->ifa_addr);
            if (v4 && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_BROADCAST) &&
                i->ifa_broadaddr) {
                send_to_addr(n, b, ((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr.s_addr);
                sent++;
            }
            if (!v6 || i->ifa_addr->sa_family != AF_INET6 || !(i->ifa_flags & IFF_MULTICAST) ||
                (i->ifa_flags & IFF_LOOPBACK))
                continue;
            unsigned idx = if_nametoindex(i->ifa_name);
            int seen = idx == 0;
            for (size_t k = 0; k < ndone6 && !seen; k++)
                seen = done6[k] == idx;
            if (seen || ndone6 == sizeof done6 / sizeof *done6)
                continue;
            done6[ndone6++] = idx;
            beacon_v6(n, b, idx);
        }
        freeifaddrs(ifs);
    }
    if (v4 && !sent)
        send_to_addr(n, b, htonl(INADDR_BROADCAST));
    /* Another LAN (the addresses changed): the next beacon names a new
     * listener, so the key heard here is not heard on the next LAN. */
    if (!n->relay && n->lan_net && net != n->lan_net)
        n->lan_moved = 1;
    n->lan_net = net;
}

/* ---- candidates ----
 *
 * A beacon proves nothing: anyone on the LAN can send one naming any key,
 * port and (spoofed) source. So a beacon only makes a candidate, kept
 * DISC_TTL_MS after it was last heard. A candidate heard at least twice
 * with the same port and key is probed (dialled) when a discovered slot
 * is free, PROBE_MAX at a time; it takes the slot for good only when the
 * CURVE handshake and the HELLO come through within PROBE_MS, else it is
 * dropped and not tried again for a growing while (10 s doubling to
 * 5 min). A discovered neighbour that stays down DEAD_MS, or whose
 * beacons stopped, is dropped too. One source address holds at most
 * PER_HOST candidates, so junk from one machine (random keys and ports)
 * only churns its own few; THREATS.md gives the bounds. */

#define CANDS_MAX    64
#define PER_HOST     4
#define DISC_TTL_MS  10000
#define PROBE_MAX    2
#define PROBE_MS     5000
#define DEAD_MS      30000
#define BACKOFF_MIN  10000
#define BACKOFF_MAX  300000
#define DISC_TICK_MS 250

struct cand {
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    int ipv6;
    uint16_t port;
    uint8_t key[32];
    uint32_t heard; /* beacons with this port and key */
    uint64_t last_ms, probe_ms, backoff_ms, down_ms;
    int probing;
};

struct chp_disc {
    struct cand c[CANDS_MAX];
    size_t n;
    uint64_t tick_ms;
};

static struct chp_disc *disc(chp_mesh *n)
{
    if (!n->disc)
        n->disc = calloc(1, sizeof *n->disc);
    return n->disc;
}

void chp_discovery_free(chp_mesh *n)
{
    free(n->disc);
    n->disc = NULL;
}

static size_t discovered(const chp_mesh *n)
{
    size_t c = 0;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++)
        if (n->links[i].used && n->links[i].discovered)
            c++;
    return c;
}

/* Checks one datagram; keeps the node it names as a candidate. */
static void heard(chp_mesh *n, const uint8_t *b, ssize_t r, const char *host, int ipv6)
{
    chp_beacon bc;
    if (r < 0 || chp_beacon_parse(b, (size_t)r, &bc) != 0) {
        n->ctr.beacons_bad++;
        return;
    }
    uint16_t port = bc.port;
    const uint8_t *key = bc.key;
    if (port == 0 || !memcmp(key, n->tpk, 32) || !memcmp(key, n->lan[0].pk, 32) ||
        !memcmp(key, n->lan[1].pk, 32))
        return; /* our own beacon, or a node that does not listen */
    n->ctr.beacons_rx++;
    struct chp_disc *d = disc(n);
    if (!d || strlen(host) >= sizeof d->c[0].host)
        return;
    uint64_t t = mesh_ms(n);
    struct cand *same = NULL, *host_lru = NULL, *lru = NULL;
    size_t on_host = 0;
    for (size_t i = 0; i < d->n; i++) {
        struct cand *c = &d->c[i];
        if (strcmp(c->host, host) != 0) {
            /* a candidate heard twice outlives one heard once */
            if (!c->probing &&
                (!lru || (c->heard >= 2) < (lru->heard >= 2) ||
                 ((c->heard >= 2) == (lru->heard >= 2) && c->last_ms < lru->last_ms)))
                lru = c;
            continue;
        }
        if (c->port == port && !memcmp(c->key, key, 32))
            same = c;
        on_host++;
        if (!c->probing && (!host_lru || c->last_ms < host_lru->last_ms))
            host_lru = c;
    }
    if (same) {
        same->heard++;
        same->last_ms = t;
        return;
    }
    struct cand *c = on_host >= PER_HOST ? host_lru : d->n < CANDS_MAX ? &d->c[d->n++] : lru;
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "%s", host);
    c->ipv6 = ipv6;
    c->port = port;
    memcpy(c->key, key, 32);
    c->heard = 1;
    c->last_ms = t;
}

static void forget_cand(struct chp_disc *d, size_t i)
{
    d->c[i] = d->c[--d->n];
}

/* Dials one candidate; 1 if a probe started. */
static int probe(chp_mesh *n, struct cand *c, uint64_t t)
{
    chp_addr a;
    char s[CHP_ADDR_STR_MAX + 1];
    memset(&a, 0, sizeof a);
    snprintf(a.host, sizeof a.host, "%s", c->host);
    a.ipv6 = c->ipv6;
    a.port = c->port;
    memcpy(a.key, c->key, 32);
    c->probe_ms = t;
    if (chp_addr_format(&a, s, sizeof s) != CHP_OK ||
        chp_link_add_discovered(n, s, strlen(s)) != CHP_OK)
        return 0;
    chp_link_mark_discovered(n, c->key);
    c->probing = 1;
    chp_debug("LAN beacon from %s: trying it", s);
    return 1;
}

static void fail_probe(struct cand *c)
{
    c->probing = 0;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN;
    if (c->backoff_ms > BACKOFF_MAX)
        c->backoff_ms = BACKOFF_MAX;
}

static struct cand *cand_of(struct chp_disc *d, const uint8_t key[32])
{
    for (size_t i = 0; d && i < d->n; i++)
        if (!memcmp(d->c[i].key, key, 32))
            return &d->c[i];
    return NULL;
}

/* Probes that finished or failed, dead discovered neighbours, expired
 * candidates, and new probes while discovered slots are free. */
static void disc_tick(chp_mesh *n, uint64_t t)
{
    struct chp_disc *d = disc(n);
    if (!d || t - d->tick_ms < DISC_TICK_MS)
        return;
    d->tick_ms = t;
    size_t probing = 0;
    for (size_t i = 0; i < d->n; i++) {
        struct cand *c = &d->c[i];
        if (!c->probing)
            continue;
        struct chp_link *l = chp_link_find(n, c->key);
        if (l && chp_link_up(l)) {
            char s[CHP_ADDR_STR_MAX + 1];
            snprintf(s, sizeof s, "%s", l->addr);
            chp_info("discovered %s on the LAN", s);
            c->probing = 0;
            c->backoff_ms = 0;
        } else if (!l || t - c->probe_ms > PROBE_MS) {
            if (l && l->discovered && !l->router_seen)
                chp_link_drop(l);
            fail_probe(c);
        } else {
            probing++;
        }
    }
    /* Discovered neighbours that are gone: down DEAD_MS, or no longer
     * beaconing (their candidate expired) and down. */
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used || !l->discovered || chp_link_up(l))
            continue;
        struct cand *c = cand_of(d, l->key);
        if (c && c->probing)
            continue;
        if (c && !c->down_ms) {
            c->down_ms = t;
            continue;
        }
        if (!c || t - c->down_ms > DEAD_MS) {
            char ks[CHP_KEY_NAME_MAX];
            chp_key_name(l->key, ks);
            chp_info("LAN neighbour %s is gone; its place is free", ks);
            chp_link_drop(l);
            if (c)
                fail_probe(c);
        }
    }
    for (size_t i = 0; i < d->n;) {
        struct cand *c = &d->c[i];
        const struct chp_link *l = chp_link_find(n, c->key);
        if (l && chp_link_up(l))
            c->down_ms = 0;
        if (!c->probing && t - c->last_ms > DISC_TTL_MS)
            forget_cand(d, i);
        else
            i++;
    }
    while (probing < PROBE_MAX && discovered(n) < DISCOVERED_MAX) {
        struct cand *best = NULL;
        for (size_t i = 0; i < d->n; i++) {
            struct cand *c = &d->c[i];
            if (c->probing || c->heard < 2 || t < c->probe_ms + c->backoff_ms ||
                chp_link_known(n, c->key) || chp_admit_banned(n, c->key, t) ||
                !chp_admit_allowed(n, c->key)) /* a friends-only node dials only friends */
                continue;
            if (!best || c->probe_ms < best->probe_ms)
                best = c;
        }
        if (!best || !probe(n, best, t))
            break;
        probing++;
    }
}

static void recv_v4(chp_mesh *n)
{
    for (int k = 0; n->disc_fd >= 0 && k < 64; k++) {
        uint8_t b[64];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(n->disc_fd, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
        if (r < 0)
            return;
        char host[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &from.sin_addr, host, sizeof host);
        heard(n, b, r, host, 0);
    }
}

static void recv_v6(chp_mesh *n)
{
    for (int k = 0; n->disc6_fd >= 0 && k < 64; k++) {
        uint8_t b[64];
        struct sockaddr_in6 from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(n->disc6_fd, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
        if (r < 0)
            return;
        char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2], ifn[IF_NAMESIZE];
        inet_ntop(AF_INET6, &from.sin6_addr, host, INET6_ADDRSTRLEN);
        /* a link-local source is only dialable through its interface */
        if (IN6_IS_ADDR_LINKLOCAL(&from.sin6_addr)) {
            if (!from.sin6_scope_id || !if_indextoname(from.sin6_scope_id, ifn))
                continue;
            size_t hl = strlen(host);
            snprintf(host + hl, sizeof host - hl, "%%%s", ifn);
        }
        heard(n, b, r, host, 1);
    }
}

void chp_discovery_recv(chp_mesh *n)
{
    recv_v4(n);
    recv_v6(n);
}

uint64_t chp_discovery_due(chp_mesh *n, uint64_t t)
{
    if (n->disc_fd < 0 && n->disc6_fd < 0)
        return UINT64_MAX;
    disc_tick(n, t);
    if (t >= n->next_beacon) {
        beacon(n);
        n->next_beacon = t + BEACON_MS;
    }
    return n->next_beacon;
}
