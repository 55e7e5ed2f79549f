/* admit.c - who may link with this node and how fast: the allow-list, the
 * ban table, misbehaviour scores, per-link rate buckets, and the table of
 * incoming connections with its limits. Calls no other file of the mesh. */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <stdio.h>
#include <sys/socket.h>

/* A ban lasts 30 s the first time and four times longer at each repeat
 * within a day (2 min, 8 min, 32 min), 1 h at most; a peer we dialled
 * and remember is dialled again when it ends. */
#define BAN_FIRST_MS     (30u * 1000u)
#define BAN_MAX_MS       (60u * 60u * 1000u)
#define BAN_MEMORY_MS    (24u * 60u * 60u * 1000u)
#define SCORE_DECAY_PS   0.1    /* misbehaviour points forgiven per second */
#define RATE_ENV_PER_S   5000.0 /* envelopes a neighbour may push per second */
#define RATE_BURST       10000.0
#define RATE_BYTES_PER_S (16.0 * 1024 * 1024) /* all frames of one neighbour */
#define RATE_BYTES_BURST (32.0 * 1024 * 1024)

int chp_admit_allowed(const chp_mesh *n, const uint8_t key[32])
{
    if (!n->nallow)
        return 1;
    for (size_t i = 0; i < n->nallow; i++)
        if (!memcmp(n->allow[i], key, 32))
            return 1;
    return 0;
}

int chp_admit_banned(const chp_mesh *n, const uint8_t key[32], uint64_t t)
{
    if (t >= n->bans_until_ms)
        return 0; /* every frame asks: with no ban on, one comparison */
    for (size_t i = 0; i < CHP_MESH_BANS_MAX; i++)
        if (n->bans[i].until_ms > t && !memcmp(n->bans[i].key, key, 32))
            return 1;
    return 0;
}

double chp_score_add(double *score, uint64_t *ms, double points, uint64_t t)
{
    if (t > *ms) {
        *score -= (double)(t - *ms) * SCORE_DECAY_PS / 1000.0;
        if (*score < 0)
            *score = 0;
    }
    *ms = t;
    *score += points;
    return *score;
}

/* The length of a ban after `repeats` earlier ones within a day: 30 s,
 * four times longer each time, 1 h at most; its end noted at t + that. */
static uint64_t ban_for(chp_mesh *n, uint32_t repeats, uint64_t t, uint64_t *until_ms)
{
    uint64_t ms = BAN_FIRST_MS;
    for (uint32_t k = 0; k < repeats && ms < BAN_MAX_MS; k++)
        ms *= 4;
    if (ms > BAN_MAX_MS)
        ms = BAN_MAX_MS;
    *until_ms = t + ms;
    if (*until_ms > n->bans_until_ms)
        n->bans_until_ms = *until_ms;
    return ms;
}

/* The entry of id (32 bytes) in tab (cap entries): the one banned within
 * a day, else a free or the oldest ended one, cleared for id. */
static struct chp_ban *ban_slot(struct chp_ban *tab, size_t cap, const uint8_t id[32], uint64_t t)
{
    struct chp_ban *oldest = NULL;
    for (size_t i = 0; i < cap; i++) {
        struct chp_ban *x = &tab[i];
        if (x->last_ms && t - x->last_ms < BAN_MEMORY_MS && !memcmp(x->key, id, 32))
            return x;
        if (x->until_ms <= t && (!oldest || x->last_ms < oldest->last_ms))
            oldest = x;
    }
    struct chp_ban *b = oldest ? oldest : &tab[0];
    memset(b, 0, sizeof *b);
    memcpy(b->key, id, 32);
    return b;
}

/* Longer for a key banned before (within a day); with the address we
 * dialled it at, when it is one the user gave us, to dial it again when
 * the ban ends. */
uint64_t chp_admit_ban(chp_mesh *n, const uint8_t key[32], const char *addr, uint64_t t)
{
    struct chp_ban *b = ban_slot(n->bans, CHP_MESH_BANS_MAX, key, t);
    uint64_t ms = ban_for(n, b->strikes++, t, &b->until_ms);
    b->last_ms = t;
    if (addr && addr[0])
        snprintf(b->addr, sizeof b->addr, "%s", addr);
    n->ctr.bans++;
    return ms;
}

/* ---- addresses ----
 *
 * A banned key costs its owner nothing to replace: a fresh one links again
 * at once. An address is dearer, so the second key banned from one within
 * BAN_MEMORY_MS bans the address as well. This machine's own addresses
 * (loopback: local tools, a transport's proxy that brings many peers) are
 * never banned so. */
#define HOST_BAN_KEYS 2

static int ip_loopback(const uint8_t ip[16])
{
    static const uint8_t v6lo[16] = {[15] = 1}, v4map[12] = {[10] = 0xff, [11] = 0xff};
    return !memcmp(ip, v6lo, 16) || (!memcmp(ip, v4map, 12) && ip[12] == 127);
}

static int ip_banned(const chp_mesh *n, const uint8_t ip[16], uint64_t t)
{
    if (t >= n->bans_until_ms)
        return 0;
    for (size_t i = 0; i < CHP_MESH_HOST_BANS_MAX; i++)
        if (n->host_bans[i].until_ms > t && !memcmp(n->host_bans[i].key, ip, 16))
            return 1;
    return 0;
}

uint64_t chp_admit_ban_ip(chp_mesh *n, const uint8_t ip[16], uint64_t t)
{
    uint8_t id[32] = {0};
    if (ip_loopback(ip))
        return 0;
    memcpy(id, ip, 16);
    struct chp_ban *b = ban_slot(n->host_bans, CHP_MESH_HOST_BANS_MAX, id, t);
    b->strikes++;
    b->last_ms = t;
    return b->strikes < HOST_BAN_KEYS ? 0 : ban_for(n, b->strikes - HOST_BAN_KEYS, t, &b->until_ms);
}

void chp_rate_init(struct chp_link *l, uint64_t t)
{
    l->tokens = RATE_BURST;
    l->btokens = RATE_BYTES_BURST;
    l->tokens_ms = l->btokens_ms = t;
}

/* A token bucket of burst tokens refilled at per_s a second since *ms:
 * 1 if cost tokens were taken at t. */
static int bucket_take(double *tokens, uint64_t *ms, uint64_t t, double per_s, double burst,
                       double cost)
{
    if (t > *ms)
        *tokens += (double)(t - *ms) * per_s / 1000.0;
    if (*tokens > burst)
        *tokens = burst;
    *ms = t > *ms ? t : *ms;
    if (*tokens < cost)
        return 0;
    *tokens -= cost;
    return 1;
}

int chp_rate_take_bytes(struct chp_link *l, uint64_t t, size_t len)
{
    return bucket_take(&l->btokens, &l->btokens_ms, t, RATE_BYTES_PER_S, RATE_BYTES_BURST,
                       (double)len);
}

int chp_rate_has_bytes(struct chp_link *l, uint64_t t, uint64_t len)
{
    return chp_rate_take_bytes(l, t, 0) && l->btokens >= (double)len;
}

int chp_rate_take_env(struct chp_link *l, uint64_t t)
{
    return bucket_take(&l->tokens, &l->tokens_ms, t, RATE_ENV_PER_S, RATE_BURST, 1.0);
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
#define HELLO_MS          10000 /* accepted, authenticated, yet silent: closed */
#define FD_RESERVE        32    /* descriptors kept free (control clients, files) */
#define FD_PER_DEALER     4     /* our own links: TCP socket, two mailboxes, monitor */
#define FD_BASE           64    /* store, sockets, threads' mailboxes */
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
    uint64_t check_ms;
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

int chp_conns_init(chp_mesh *n)
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

static struct conn *conn_by_fd(chp_mesh *n, int fd)
{
    struct chp_conns *cs = n->conns;
    for (size_t i = 0; cs && i < cs->n; i++)
        if (cs->c[i].fd == fd)
            return &cs->c[i];
    return NULL;
}

static void conn_forget(chp_mesh *n, struct conn *c)
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
static void conn_close(chp_mesh *n, struct conn *c)
{
    if (c->closing)
        return;
    if (conn_same(c) && shutdown(c->fd, SHUT_RDWR) == 0)
        c->closing = 1;
    else
        conn_forget(n, c); /* already gone */
}

size_t chp_conns_of_key(const chp_mesh *n, const uint8_t key[32])
{
    size_t k = 0;
    for (size_t i = 0; n->conns && i < n->conns->n; i++)
        k +=
            n->conns->c[i].keyed && !n->conns->c[i].closing && !memcmp(n->conns->c[i].key, key, 32);
    return k;
}

/* A socket the ROUTER accepted. */
void chp_conn_accepted(chp_mesh *n, int fd)
{
    struct chp_conns *cs = n->conns;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct conn c = {.fd = fd, .ms = mesh_ms(n)};
    struct conn *old = conn_by_fd(n, fd);
    if (old) /* its DISCONNECTED came first: that descriptor is a new socket */
        conn_forget(n, old);
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

int chp_admit_host_banned(const chp_mesh *n, const char *host, uint64_t t)
{
    uint8_t ip[16];
    return t < n->bans_until_ms && host_ip(host, ip) && ip_banned(n, ip, t);
}

void chp_link_source(const chp_mesh *n, const struct chp_link *l, uint8_t src[16])
{
    if (l->router_fd < 0 || !chp_conn_ip(n, l->router_fd, src) || ip_loopback(src))
        memcpy(src, l->key, 16);
}

/* New sync sessions a source may open (chp_source_take_session): an
 * honest dialler opens one at each HELLO and one a minute, and goes on
 * at once only while a session moves envelopes (exempt, sync.c). */
#define SESS_BURST 4.0
#define SESS_MS    15000

static const struct chp_source *source_find(const chp_mesh *n, const uint8_t src[16])
{
    for (size_t i = 0; i < CHP_MESH_SOURCES_MAX; i++)
        if (n->sources[i].used_ms && !memcmp(n->sources[i].src, src, 16))
            return &n->sources[i];
    return NULL;
}

/* src's record, or a new one in a free slot or the least recently used. */
static struct chp_source *source_get(chp_mesh *n, const uint8_t src[16], uint64_t t)
{
    struct chp_source *s = (struct chp_source *)source_find(n, src);
    if (!s) {
        s = &n->sources[0];
        for (size_t i = 1; i < CHP_MESH_SOURCES_MAX && s->used_ms; i++)
            if (n->sources[i].used_ms < s->used_ms)
                s = &n->sources[i];
        memset(s, 0, sizeof *s);
        memcpy(s->src, src, 16);
        s->sess_tokens = SESS_BURST * SESS_MS;
        s->sess_ms = t;
    }
    s->used_ms = t ? t : 1;
    return s;
}

void chp_source_refused(chp_mesh *n, const uint8_t src[16], uint64_t t)
{
    source_get(n, src, t)->refused_ms = t ? t : 1;
}

int chp_source_pruned(const chp_mesh *n, const uint8_t src[16], uint64_t t)
{
    const struct chp_source *s = source_find(n, src);
    return s && s->refused_ms && t - s->refused_ms < CHP_SOURCE_PRUNED_MS;
}

int chp_source_take_session(chp_mesh *n, const uint8_t src[16], uint64_t t)
{
    struct chp_source *s = source_get(n, src, t);
    /* counted in ms of refill, so that it adds up exactly */
    return bucket_take(&s->sess_tokens, &s->sess_ms, t, 1000.0, SESS_BURST * SESS_MS, SESS_MS);
}

int chp_conn_ip(const chp_mesh *n, int fd, uint8_t ip[16])
{
    for (size_t i = 0; n->conns && i < n->conns->n; i++)
        if (n->conns->c[i].fd == fd) {
            memcpy(ip, n->conns->c[i].ip, 16);
            return 1;
        }
    return 0;
}

/* ZAP said OK to key on a connection from host: the oldest connection
 * from there that has no key yet is taken to be it (the request does not
 * name the socket; a mix-up between two connections from one address is
 * put right by their first message). */
void chp_conn_authenticated(chp_mesh *n, const char *host, const uint8_t key[32])
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

void chp_conn_spoke(chp_mesh *n, int fd, const uint8_t key[32])
{
    struct conn *c = conn_by_fd(n, fd);
    if (c) {
        c->spoke = 1;
        c->keyed = 1;
        memcpy(c->key, key, 32);
    }
}

/* Closes connections silent since HELLO_MS after they were accepted, and
 * those of keys or addresses banned since. */
void chp_conns_check(chp_mesh *n, uint64_t t)
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
        } else if (!c->closing &&
                   ((c->keyed && chp_admit_banned(n, c->key, t)) || ip_banned(n, c->ip, t))) {
            conn_close(n, c);
        }
        if (cs->n == before)
            i++; /* else slot i holds another entry now */
    }
}

size_t chp_conns_open(const chp_mesh *n)
{
    return n->conns ? n->conns->n : 0;
}

void chp_conn_closed(chp_mesh *n, int fd)
{
    struct conn *c = conn_by_fd(n, fd);
    if (c)
        conn_forget(n, c);
}

int64_t chp_conn_age(const chp_mesh *n, int fd, uint64_t t)
{
    const struct chp_conns *cs = n->conns;
    for (size_t i = 0; cs && i < cs->n; i++)
        if (cs->c[i].fd == fd)
            return cs->c[i].closing ? -1 : (int64_t)(t - cs->c[i].ms);
    return -1;
}

void chp_conn_close_fd(chp_mesh *n, int fd)
{
    struct conn *c = conn_by_fd(n, fd);
    if (c)
        conn_close(n, c);
}
