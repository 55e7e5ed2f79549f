/* table.c - the link table: one entry per neighbour key, dialling (one
 * DEALER per neighbour we dial), bans and misbehaviour of a link, the
 * remembered peer list and the LAN listener a link belongs to. */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"
#include "proto/addr.h"
#include "proto/id.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void chp_key_name(const uint8_t k[32], char out[CHP_KEY_NAME_MAX])
{
    chp_b32key_encode(CHP_NODEKEY_HRP, k, out);
}

static int find_free(const chp_mesh *n)
{
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++)
        if (!n->links[i].used)
            return 1;
    return 0;
}

struct chp_link *chp_link_find(chp_mesh *n, const uint8_t key[32])
{
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++)
        if (n->links[i].used && !memcmp(n->links[i].key, key, 32))
            return &n->links[i];
    return NULL;
}

/* A link kept only in case its silent neighbour speaks again. */
int chp_link_lingering(const struct chp_link *l)
{
    return l->used && !l->dealer && !l->router_seen;
}

struct chp_link *chp_link_create(chp_mesh *n, const uint8_t key[32])
{
    struct chp_link *oldest = NULL;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++)
        if (chp_link_lingering(&n->links[i]) &&
            (!oldest || n->links[i].last_rx_ms < oldest->last_rx_ms))
            oldest = &n->links[i];
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (l->used && !(l == oldest && !find_free(n)))
            continue;
        if (l->used)
            chp_link_drop(l); /* every slot taken: the longest-silent one goes */
        memset(l, 0, sizeof *l);
        l->used = 1;
        if (i + 1 > n->links_hw)
            n->links_hw = i + 1;
        memcpy(l->key, key, 32);
        l->id = ++n->next_link_id;
        l->router_fd = -1;
        l->score_ms = mesh_ms(n);
        chp_rate_init(l, l->score_ms);
        return l;
    }
    return NULL;
}

static void close_dealer(struct chp_link *l)
{
    chp_transport_release(l);
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

void chp_link_drop(struct chp_link *l)
{
    close_dealer(l);
    chp_neg_destroy(&l->neg_client);
    chp_neg_destroy(&l->neg_server);
    for (int d = 0; d < 2; d++) {
        chp_buf_free(&l->neg_rx[d]);
        chp_buf_free(&l->neg_wait[d]);
        l->neg_waiting[d] = 0;
    }
    chp_buf_free(&l->pushq);
    free(l->moved);
    l->moved = NULL;
    free(l->owed);
    l->owed = NULL;
    l->used = 0;
}

int chp_link_known(chp_mesh *n, const uint8_t key[32])
{
    return chp_link_find(n, key) != NULL;
}

void chp_link_mark_promoted(chp_mesh *n, const uint8_t key[32], uint64_t t)
{
    struct chp_link *l = chp_link_find(n, key);
    if (l) {
        l->promoted = 1;
        l->promoted_ms = t;
    }
}

void chp_link_mark_discovered(chp_mesh *n, const uint8_t key[32])
{
    struct chp_link *l = chp_link_find(n, key);
    if (l)
        l->discovered = 1;
}

void chp_link_close_all(chp_mesh *n)
{
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++)
        if (n->links[i].used)
            chp_link_drop(&n->links[i]);
}

size_t chp_link_connected(const chp_mesh *n)
{
    size_t c = 0;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        const struct chp_link *l = &n->links[i];
        if (chp_link_up(l))
            c++;
    }
    return c;
}

/* A connection of l closed: what was queued on it is gone, and with it
 * the PINGs that would have acknowledged it; ids moved over it may have
 * been lost too. */
void chp_link_reset(struct chp_link *l)
{
    l->flow_tx = l->flow_acked = l->flow_pinged = 0;
    l->pushq.len = 0;
    free(l->moved);
    l->moved = NULL;
    free(l->owed); /* what the old connection was owed: its sync asks again */
    l->owed = NULL;
    l->npong = 0;
    l->pong_sent = 0;
}

/* Adds points to l's score, which loses SCORE_DECAY_PS a second: a peer is
 * banned for misbehaving faster than that, never for the odd mistake of
 * an honest node. l may be dropped on return (check l->used). */
void chp_link_misbehave(chp_mesh *n, struct chp_link *l, double points, const char *why)
{
    if (chp_score_add(&l->score, &l->score_ms, points, mesh_ms(n)) >= CHP_BAN_SCORE)
        chp_link_ban(n, l, why);
}

/* Bans l's key (admit.c says for how long) and drops the link; a
 * neighbour the user gave by address is dialled again when the ban ends. */
void chp_link_ban(chp_mesh *n, struct chp_link *l, const char *why)
{
    const char *addr = l->addr[0] && !l->discovered && !l->promoted ? l->addr : NULL;
    uint64_t ms = chp_admit_ban(n, l->key, addr, mesh_ms(n)), host_ms = 0;
    uint8_t ip[16];
    char ks[CHP_KEY_NAME_MAX];
    if (l->router_fd >= 0 && chp_conn_ip(n, l->router_fd, ip))
        host_ms = chp_admit_ban_ip(n, ip, mesh_ms(n));
    chp_key_name(l->key, ks);
    chp_warn("banning neighbour %s for %llu s: %s", ks, (unsigned long long)(ms / 1000), why);
    if (host_ms)
        chp_warn("banning its address too for %llu s: another key banned from there lately",
                 (unsigned long long)(host_ms / 1000));
    chp_link_drop(l);
}

/* ---- outgoing links ---- */

struct chp_lan *chp_mesh_lan_of(chp_mesh *n, uint32_t gen)
{
    for (int i = 0; gen && i < 2; i++)
        if (n->lan[i].router && n->lan[i].gen == gen)
            return &n->lan[i];
    return NULL;
}

static int open_dealer(chp_mesh *n, struct chp_link *l, const chp_addr *a)
{
    char ep[300], mon[64];
    int one = 1, zero = 0, ivl = 100, ivl_max = 30000, hwm = 4096;
    int64_t maxmsg = CHP_WIRE_ZMQ_MAXMSG;
    /* A link of our LAN listener dials with that listener's key: nothing
     * the LAN sees names our transport key. */
    const struct chp_lan *lan = chp_mesh_lan_of(n, l->lan_gen);
    if (l->lan_gen && !lan)
        return CHP_E_IO; /* that listener closed */
    l->dealer = zmq_socket(n->zctx, ZMQ_DEALER);
    if (!l->dealer)
        return CHP_E_IO;
    /* Reconnects back off exponentially from 100 ms to 30 s (libzmq). */
    if (zmq_setsockopt(l->dealer, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(l->dealer, ZMQ_LINGER, &zero, sizeof zero) ||
        /* as the ROUTER's (lan.c chp_mesh_sock_opts): a sync session's 2048 pushes
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
    int hb = 2000, hbt = 6000, now = 1;
    zmq_setsockopt(l->dealer, ZMQ_HEARTBEAT_IVL, &hb, sizeof hb);
    zmq_setsockopt(l->dealer, ZMQ_HEARTBEAT_TIMEOUT, &hbt, sizeof hbt);
    if (chp_transport_endpoint(n, l, a, ep, sizeof ep, &now) != CHP_OK) {
        close_dealer(l);
        return CHP_E_IO;
    }
    /* a fresh name per dial: a closed monitor's name may not be free yet */
    snprintf(mon, sizeof mon, "inproc://chapar-mon-%u-%u", l->id, ++n->dials);
    if (zmq_socket_monitor(
            l->dealer, mon,
            ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECTED |
                ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
        !(l->monitor = zmq_socket(n->zctx, ZMQ_PAIR)) || zmq_connect(l->monitor, mon) != 0 ||
        (now && zmq_connect(l->dealer, ep) != 0)) {
        close_dealer(l);
        return CHP_E_IO;
    }
    return CHP_OK;
}

int chp_link_redial(chp_mesh *n, struct chp_link *l)
{
    chp_addr a;
    if (!l->addr[0] || chp_addr_parse(l->addr, strlen(l->addr), &a) != CHP_OK)
        return CHP_E_ARG;
    close_dealer(l);
    l->tcp_up = 0;
    int rc = open_dealer(n, l, &a);
    if (rc != CHP_OK) /* its LAN listener closed, or no sockets: let it go */
        chp_link_drop(l);
    return rc;
}

static int known_list(chp_mesh *n, char *buf, size_t cap, size_t *len)
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
int chp_link_remembered(chp_mesh *n, const char *addr)
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
static int remember(chp_mesh *n, const chp_addr *a, const char *canon, int add)
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

static int add_address(chp_mesh *n, const char *s, size_t len, int keep, int lan);

int chp_link_add_address(chp_mesh *n, const char *s, size_t len, int keep)
{
    return add_address(n, s, len, keep, 0);
}

int chp_link_add_discovered(chp_mesh *n, const char *s, size_t len)
{
    /* A friends-only node dials only keys on its list (discovery.c),
     * friends who know its address anyway; a LAN key never is one. */
    return add_address(n, s, len, 0, !n->relay && !n->nallow && n->lan[0].router);
}

static int add_address(chp_mesh *n, const char *s, size_t len, int keep, int lan)
{
    chp_addr a;
    char canon[CHP_ADDR_STR_MAX + 1];
    int rc = chp_addr_parse(s, len, &a);
    if (rc != CHP_OK)
        return rc;
    if (!memcmp(a.key, n->tpk, 32) || (n->lan[0].router && !memcmp(a.key, n->lan[0].pk, 32)) ||
        (n->lan[1].router && !memcmp(a.key, n->lan[1].pk, 32)))
        return CHP_E_ARG; /* that is this node (our LAN listener, named in PEERS) */
    if (keep && !a.proxy[0] && !host_resolves(&a)) {
        chp_warn("peer add: host %s does not resolve", a.host);
        return CHP_E_ADDR_RESOLVE;
    }
    if (chp_addr_format(&a, canon, sizeof canon) != CHP_OK)
        return CHP_E_ARG;
    struct chp_link *l = chp_link_find(n, a.key);
    if (l && l->dealer && strcmp(l->addr, canon) != 0) {
        if (!keep)
            return CHP_OK; /* heard of at another address: keep dialling ours */
        if (chp_link_up(l))
            return CHP_E_DUP; /* a live link is not given up for a maybe-typo */
        /* The user gives a node a new address (its host moved) while the
         * old one does not answer: dial the new one instead. */
        chp_info("now dialling %s instead of %s", canon, l->addr);
        chp_link_drop(l);
        l = NULL;
    }
    if (!l && !(l = chp_link_create(n, a.key)))
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

int chp_link_remove_address(chp_mesh *n, const char *s, size_t len)
{
    chp_addr a;
    char canon[CHP_ADDR_STR_MAX + 1];
    int rc = chp_addr_parse(s, len, &a);
    if (rc != CHP_OK)
        return rc;
    if (chp_addr_format(&a, canon, sizeof canon) != CHP_OK)
        return CHP_E_ARG;
    struct chp_link *l = chp_link_find(n, a.key);
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
    int was_up = chp_link_up(l);
    chp_link_drop(l);
    if (was_up) /* the far side's UI hears of it from its own node */
        chp_mesh_event(n, "peer", "down");
    return CHP_OK;
}

void chp_link_restore_known(chp_mesh *n)
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

void chp_link_lan_closed(chp_mesh *n, void *sock, uint32_t gen)
{
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used)
            continue;
        if (l->lan_gen == gen) {
            chp_link_drop(l); /* its key and port are gone: the LAN finds us anew */
            continue;
        }
        if (l->rsock == sock) { /* a node we also know by address */
            l->rsock = NULL;
            l->router_seen = 0;
            l->router_fd = -1;
        }
    }
}

int chp_link_lan_used(const chp_mesh *n, void *sock, uint32_t gen)
{
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        const struct chp_link *l = &n->links[i];
        if (l->used && (l->lan_gen == gen || (l->router_seen && l->rsock == sock)))
            return 1;
    }
    return 0;
}
