/* view.c - the passive view (HyParView): addresses of Chapar nodes this node
 * is not linked to, learned from its neighbours' PEERS messages and from LAN
 * beacons heard beyond the cap on discovered neighbours. When the active
 * view runs low (a neighbour died, a relay went away) one of them is dialled
 * in its place, so a node that loses its only relay finds another that
 * relay had told it about. PROTOCOL.md §15 (PEERS) and THREATS.md say what
 * is shared: only relays and LAN-discovered nodes, never a user node that
 * was given by address. */
#define _GNU_SOURCE
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define PASSIVE_MAX       32          /* addresses kept */
#define PEERS_SEND_MAX    8           /* addresses per PEERS message */
#define VIEW_MIN          2           /* fewer live links than this: promote one */
#define PROMOTE_EVERY_MS  3000        /* at most one promotion this often */
#define PROMOTE_GIVEUP_MS 10000       /* a promoted link not up by then is dropped */
#define SHUFFLE_MS        30000       /* PEERS to one random neighbour this often */
#define PASSIVE_TTL_MS    600000      /* an address not heard of again for this long goes */
#define PEERS_RATE_MS     1000        /* PEERS entries taken: one per this, */
#define PEERS_BURST       PASSIVE_MAX /* after a burst of this many */
/* Entries one address may hold: one machine with many keys (a sybil) is
 * still one machine, and must not become the whole view. */
#define PASSIVE_PER_HOST 2

struct passive {
    char addr[CHP_ADDR_STR_MAX + 1];
    char host[CHP_ADDR_HOST_MAX + 1]; /* of addr, for PASSIVE_PER_HOST */
    uint8_t key[32];
    uint64_t ms; /* when last heard of */
};

struct chp_view {
    struct passive e[PASSIVE_MAX];
    size_t n;
    uint64_t promote_ms, shuffle_ms, rng;
    double peers_tokens; /* PEERS entries we may still take now */
    uint64_t peers_ms;
};

static struct chp_view *view(chp_mesh *n)
{
    if (!n->view) {
        n->view = calloc(1, sizeof *n->view);
        if (n->view)
            n->view->rng = mesh_ms(n) ^ ((uint64_t)n->tpk[0] << 32 | n->tpk[1]);
    }
    return n->view;
}

static uint64_t next_rand(struct chp_view *v)
{
    v->rng ^= v->rng << 13; /* xorshift64: picks, not secrets */
    v->rng ^= v->rng >> 7;
    v->rng ^= v->rng << 17;
    return v->rng;
}

void chp_view_free(chp_mesh *n)
{
    free(n->view);
    n->view = NULL;
}

size_t chp_view_size(const chp_mesh *n)
{
    return n->view ? n->view->n : 0;
}

/* Whether a (from PEERS or a beacon) is an address this node may dial: an
 * IP literal (never a name: dialling one would make us look up a name
 * of a stranger's choosing), port nonzero, not unspecified, multicast or
 * broadcast, and loopback only when this node itself listens on loopback
 * (a test mesh on one machine). Checked when heard and again before
 * dialling. */
static int dialable(const chp_mesh *n, const chp_addr *a)
{
    uint8_t ip[16];
    char host[CHP_ADDR_HOST_MAX + 1];
    snprintf(host, sizeof host, "%s", a->host);
    char *zone = strchr(host, '%');
    if (zone) {
        if (!a->ipv6)
            return 0;
        *zone = '\0';
    }
    int loop_ok = !strncmp(n->listen_host, "127.", 4) || !strcmp(n->listen_host, "::1");
    if (a->port == 0 || a->transport != CHP_TRANSPORT_PLAIN || a->proxy[0])
        return 0; /* a bridge or onion address is handed out by people, never gossiped */
    if (!a->ipv6 && inet_pton(AF_INET, host, ip) == 1) {
        uint32_t v = (uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 | (uint32_t)ip[2] << 8 | ip[3];
        if (v == 0 || ip[0] == 0 || ip[0] >= 224 || (ip[0] == 127 && !loop_ok))
            return 0; /* unspecified, "this network", multicast, reserved, broadcast */
        return 1;
    }
    if (a->ipv6 && inet_pton(AF_INET6, host, ip) == 1) {
        struct in6_addr in;
        memcpy(&in, ip, 16);
        if (IN6_IS_ADDR_UNSPECIFIED(&in) || IN6_IS_ADDR_MULTICAST(&in) ||
            (IN6_IS_ADDR_LOOPBACK(&in) && !loop_ok))
            return 0;
        if (IN6_IS_ADDR_V4MAPPED(&in) &&
            (ip[12] == 0 || ip[12] >= 224 || (ip[12] == 127 && !loop_ok)))
            return 0;
        if (zone && !IN6_IS_ADDR_LINKLOCAL(&in))
            return 0;
        return 1;
    }
    return 0; /* a host name */
}

static void forget(struct chp_view *v, size_t i)
{
    v->e[i] = v->e[--v->n];
}

void chp_view_heard(chp_mesh *n, const char *s, size_t len)
{
    chp_addr a;
    char canon[CHP_ADDR_STR_MAX + 1];
    struct chp_view *v = view(n);
    if (!v || chp_addr_parse(s, len, &a) != CHP_OK || !dialable(n, &a) ||
        chp_addr_format(&a, canon, sizeof canon) != CHP_OK || !memcmp(a.key, n->tpk, 32) ||
        chp_link_known(n, a.key) || chp_admit_banned(n, a.key, mesh_ms(n)) ||
        !chp_admit_allowed(n, a.key)) /* a friends-only node dials only friends */
        return;
    size_t slot = v->n, on_host = 0, host_old = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (!memcmp(v->e[i].key, a.key, 32)) {
            slot = i; /* heard again: the newer address wins */
        } else if (!strcmp(v->e[i].host, a.host) &&
                   (!on_host++ || v->e[i].ms < v->e[host_old].ms)) {
            host_old = i;
        }
    }
    if (slot == v->n && on_host >= PASSIVE_PER_HOST)
        slot = host_old;       /* that machine's oldest entry makes room */
    if (slot == PASSIVE_MAX) { /* full: the entry heard of longest ago goes */
        slot = 0;
        for (size_t i = 1; i < v->n; i++)
            if (v->e[i].ms < v->e[slot].ms)
                slot = i;
    }
    if (slot == v->n)
        v->n++;
    snprintf(v->e[slot].addr, sizeof v->e[slot].addr, "%s", canon);
    snprintf(v->e[slot].host, sizeof v->e[slot].host, "%s", a.host);
    memcpy(v->e[slot].key, a.key, 32);
    v->e[slot].ms = mesh_ms(n);
}

void chp_view_on_peers(chp_mesh *n, const chp_wire_msg *m)
{
    struct chp_view *v = view(n);
    uint64_t t = mesh_ms(n);
    if (!v)
        return;
    /* However many PEERS a neighbour sends, junk enters the passive view
     * no faster than this. */
    if (!v->peers_ms)
        v->peers_tokens = PEERS_BURST;
    else
        v->peers_tokens += (double)(t - v->peers_ms) / PEERS_RATE_MS;
    if (v->peers_tokens > PEERS_BURST)
        v->peers_tokens = PEERS_BURST;
    v->peers_ms = t;
    for (uint8_t i = 0; i < m->u.peers.n && v->peers_tokens >= 1.0; i++) {
        const char *s;
        size_t len;
        if (chp_wire_peer_at(m, i, &s, &len) == CHP_OK) {
            chp_view_heard(n, s, len);
            v->peers_tokens -= 1.0;
        }
    }
}

/* The address others may dial l at, if it is one to share: a relay (relays
 * are public by nature) or a node found by its LAN beacon (which announces
 * it anyway); never a link-local address, whose zone names our interface. */
static int shareable(const chp_mesh *n, const struct chp_link *l, char *out, size_t cap)
{
    if (!chp_link_up(l))
        return 0;
    if (!(l->caps & CHP_CAP_RELAY) && !l->discovered)
        return 0;
    chp_addr a;
    if (chp_transport_of(n, l) != CHP_VIA_TCP)
        return 0; /* never spread a bridge's or an onion service's address */
    if (l->addr[0]) {
        if (chp_addr_parse(l->addr, strlen(l->addr), &a) != CHP_OK)
            return 0;
    } else {
        /* It dialled us: its address is where the connection comes from,
         * at the port its HELLO says it listens on. */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (!l->listen_port || l->router_fd < 0 ||
            getpeername(l->router_fd, (struct sockaddr *)&ss, &sl) != 0)
            return 0;
        memset(&a, 0, sizeof a);
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a.host, sizeof a.host);
        } else if (ss.ss_family == AF_INET6) {
            const struct in6_addr *ip = &((struct sockaddr_in6 *)&ss)->sin6_addr;
            if (IN6_IS_ADDR_V4MAPPED(ip)) {
                inet_ntop(AF_INET, ip->s6_addr + 12, a.host, sizeof a.host);
            } else {
                inet_ntop(AF_INET6, ip, a.host, sizeof a.host);
                a.ipv6 = 1;
            }
        } else {
            return 0;
        }
        a.port = l->listen_port;
        memcpy(a.key, l->key, 32);
    }
    if (a.ipv6 && strchr(a.host, '%'))
        return 0;
    return chp_addr_format(&a, out, cap) == CHP_OK;
}

void chp_view_send_peers(chp_mesh *n, struct chp_link *to)
{
    static char addrs[CHP_MESH_LINKS_MAX][CHP_ADDR_STR_MAX + 1];
    const char *pick[PEERS_SEND_MAX];
    size_t seen = 0;
    struct chp_view *v = view(n);
    if (!v)
        return;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (l == to || !shareable(n, l, addrs[i], sizeof addrs[i]))
            continue;
        /* A uniform sample of PEERS_SEND_MAX (reservoir). */
        if (seen < PEERS_SEND_MAX)
            pick[seen] = addrs[i];
        else if (next_rand(v) % (seen + 1) < PEERS_SEND_MAX)
            pick[next_rand(v) % PEERS_SEND_MAX] = addrs[i];
        seen++;
    }
    uint8_t k = (uint8_t)(seen < PEERS_SEND_MAX ? seen : PEERS_SEND_MAX);
    uint8_t f[2 + PEERS_SEND_MAX * (1 + CHP_WIRE_MAX_ADDR)];
    size_t fl;
    if (k && chp_wire_peers(f, sizeof f, &fl, pick, k) == CHP_OK)
        chp_link_send(n, to, f, fl);
}

static size_t promoted_pending(chp_mesh *n, uint64_t t)
{
    size_t c = 0;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used || !l->promoted || l->hello_rx)
            continue;
        if (t - l->promoted_ms > PROMOTE_GIVEUP_MS) {
            char ks[CHP_KEY_NAME_MAX];
            chp_key_name(l->key, ks);
            chp_info("passive peer %s did not answer; trying another", ks);
            chp_link_drop(l);
        } else {
            c++;
        }
    }
    return c;
}

void chp_view_periodic(chp_mesh *n, uint64_t t)
{
    struct chp_view *v = view(n);
    if (!v)
        return;
    for (size_t i = 0; i < v->n;)
        if (t - v->e[i].ms > PASSIVE_TTL_MS)
            forget(v, i);
        else
            i++;
    size_t live = chp_link_connected(n);
    if (live && t - v->shuffle_ms >= SHUFFLE_MS) {
        /* Keep the neighbours' passive views fresh: one at a time. */
        size_t k = (size_t)(next_rand(v) % live), j = 0;
        for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
            struct chp_link *l = &n->links[i];
            if (chp_link_up(l) && j++ == k) {
                chp_view_send_peers(n, l);
                break;
            }
        }
        v->shuffle_ms = t;
    }
    if (promoted_pending(n, t) || live >= VIEW_MIN || t - v->promote_ms < PROMOTE_EVERY_MS)
        return;
    while (v->n) {
        size_t i = (size_t)(next_rand(v) % v->n);
        struct passive e = v->e[i];
        forget(v, i);
        chp_addr a;
        if (chp_link_known(n, e.key) || chp_admit_banned(n, e.key, t) ||
            chp_addr_parse(e.addr, strlen(e.addr), &a) != CHP_OK || !dialable(n, &a))
            continue;
        v->promote_ms = t;
        if (chp_link_add_address(n, e.addr, strlen(e.addr), 0) == CHP_OK) {
            chp_link_mark_promoted(n, e.key, t);
            chp_info("active view low (%zu live): dialling passive peer %s", live, e.addr);
        }
        return;
    }
}
