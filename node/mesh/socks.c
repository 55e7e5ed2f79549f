/* socks.c - the node's own SOCKS5 client, as a loopback relay: a link
 * that goes through a proxy (socks5://, or the obfs4 PT's SOCKS listener)
 * gets a listening port on 127.0.0.1; its DEALER dials that port as plain
 * TCP, and each connection accepted there is carried to the proxy, which
 * is asked (proto/socks5.c) to connect to the neighbour; then bytes are
 * copied both ways. libzmq 4.3.4's own SOCKS client aborts the process
 * (an epoll assertion) once a proxy has refused or answered garbage and
 * the socket is closed, so chapard does not use it.
 *
 * One thread does the copying (poll over every descriptor of the relay),
 * so the node's loop is never held up by a proxy; the loop only opens and
 * closes routes (a mutex guards the route table) and reads their last
 * error for `peer list`. */
#define _GNU_SOURCE /* accept4 */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"
#include "proto/socks5.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ROUTES_MAX   CHP_MESH_LINKS_MAX
#define CONNS_MAX    (2 * CHP_MESH_LINKS_MAX)
#define SPLICE_BUF   16384
#define HANDSHAKE_MS 15000 /* a proxy silent this long is given up */

enum { C_CONNECTING, C_METHOD, C_AUTH, C_REPLY, C_SPLICE };

struct route {
    int used, closing;
    int lfd;
    uint16_t port;
    char proxy[CHP_ADDR_HOST_MAX + 3]; /* host ([v6] bracketed) */
    uint16_t proxy_port;
    char host[CHP_ADDR_HOST_MAX + 1]; /* the neighbour, as the proxy gets it */
    uint16_t host_port;
    char user[256], pass[256]; /* "" = no authentication */
    char err[160];             /* the last failure, "" = none */
};

struct conn {
    int used;
    int route;
    int zfd, pfd; /* libzmq's side, the proxy's side */
    int state;
    uint64_t since_ms;
    uint8_t hs[CHP_SOCKS5_MSG_MAX];
    size_t hslen;
    uint8_t buf[2][SPLICE_BUF]; /* [0] zmq -> proxy, [1] proxy -> zmq */
    size_t len[2], off[2];
    int eof[2];
};

struct chp_socks {
    pthread_mutex_t mu;
    pthread_t thread;
    int wake[2];
    int stop;
    struct route routes[ROUTES_MAX];
    struct conn *conns; /* CONNS_MAX, the thread's own */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Route r's last failure: "SOCKS proxy HOST:PORT: why", or "" (why NULL). */
static void route_err(struct chp_socks *s, int r, const char *why)
{
    struct route *rt = &s->routes[r];
    char line[sizeof rt->err];
    pthread_mutex_lock(&s->mu);
    int k = why ? snprintf(line, sizeof line, "SOCKS proxy %s:%u: %s", rt->proxy,
                           (unsigned)rt->proxy_port, why)
                : 0;
    if (k < 0 || (size_t)k >= sizeof line) /* a long proxy name: the reason first */
        snprintf(line, sizeof line, "SOCKS proxy: %.140s", why);
    if (!why)
        line[0] = '\0';
    memcpy(rt->err, line, sizeof line);
    pthread_mutex_unlock(&s->mu);
}

static void conn_close(struct conn *c)
{
    if (c->zfd >= 0)
        close(c->zfd);
    if (c->pfd >= 0)
        close(c->pfd);
    c->used = 0;
}

static int connect_proxy(const struct route *r)
{
    char port[8];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
    char host[CHP_ADDR_HOST_MAX + 1];
    size_t hl = strlen(r->proxy);
    if (r->proxy[0] == '[') {
        memcpy(host, r->proxy + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        memcpy(host, r->proxy, hl + 1);
    }
    snprintf(port, sizeof port, "%u", (unsigned)r->proxy_port);
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* A small handshake message goes out whole or the connection fails. */
static int send_all(int fd, const uint8_t *p, size_t n)
{
    return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static void accept_on(struct chp_socks *s, int r)
{
    struct route rt;
    pthread_mutex_lock(&s->mu);
    rt = s->routes[r];
    pthread_mutex_unlock(&s->mu);
    int zfd = accept4(rt.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (zfd < 0)
        return;
    struct conn *c = NULL;
    for (size_t i = 0; i < CONNS_MAX && !c; i++)
        if (!s->conns[i].used)
            c = &s->conns[i];
    int pfd = c ? connect_proxy(&rt) : -1;
    if (pfd < 0) {
        if (c)
            route_err(s, r, "cannot connect to it");
        close(zfd);
        return;
    }
    memset(c, 0, offsetof(struct conn, buf));
    c->used = 1;
    c->route = r;
    c->zfd = zfd;
    c->pfd = pfd;
    c->state = C_CONNECTING;
    c->since_ms = now_ms();
    c->len[0] = c->len[1] = c->off[0] = c->off[1] = 0;
    c->eof[0] = c->eof[1] = 0;
}

static void fail(struct chp_socks *s, struct conn *c, const char *why)
{
    route_err(s, c->route, why);
    conn_close(c);
}

/* The proxy's side is writable for the first time: greet it. */
static void on_connected(struct chp_socks *s, struct conn *c, const struct route *rt)
{
    int err = 0;
    socklen_t el = sizeof err;
    uint8_t g[3];
    if (getsockopt(c->pfd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
        fail(s, c, "cannot connect to it");
        return;
    }
    if (send_all(c->pfd, g, chp_socks5_greeting(g, rt->user[0] != 0)) != 0) {
        fail(s, c, "it closed the connection");
        return;
    }
    c->state = C_METHOD;
}

/* The next request (auth or CONNECT: built says whether it could be
 * made) goes out, then the reply to it is awaited in state next. */
static void send_step(struct chp_socks *s, struct conn *c, int built, const uint8_t *m, size_t ml,
                      int next)
{
    if (built != CHP_OK || send_all(c->pfd, m, ml) != 0) {
        fail(s, c, "it closed the connection");
        return;
    }
    c->state = next;
}

/* Handshake bytes from the proxy (c->hs), one step at a time. */
static void on_handshake(struct chp_socks *s, struct conn *c, const struct route *rt)
{
    ssize_t r = recv(c->pfd, c->hs + c->hslen, sizeof c->hs - c->hslen, 0);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        fail(s, c, "it closed the connection during the SOCKS handshake");
        return;
    }
    c->hslen += (size_t)r;
    int auth = rt->user[0] != 0, rc = CHP_OK, rep = 0;
    size_t used = 2;
    if (c->state == C_METHOD)
        rc = chp_socks5_method(c->hs, c->hslen, auth);
    else if (c->state == C_AUTH)
        rc = chp_socks5_auth_reply(c->hs, c->hslen);
    else
        rc = chp_socks5_reply(c->hs, c->hslen, &used, &rep);
    if (rc == CHP_E_TRUNCATED)
        return;
    if (rc == CHP_E_IO) {
        char why[120];
        snprintf(why, sizeof why, "it could not reach the node: %s", chp_socks5_rep_text(rep));
        fail(s, c, why);
        return;
    }
    if (rc != CHP_OK) {
        fail(s, c,
             c->state == C_AUTH ? "it refused the username and password"
                                : "it does not answer as a SOCKS5 proxy");
        return;
    }
    /* what came after the message is the neighbour's, for libzmq */
    size_t rest = c->hslen - used;
    c->hslen = 0;
    uint8_t m[CHP_SOCKS5_MSG_MAX];
    size_t ml = 0;
    if (c->state == C_METHOD && auth) {
        rc = chp_socks5_auth(m, sizeof m, rt->user, rt->pass, &ml);
        send_step(s, c, rc, m, ml, C_AUTH);
    } else if (c->state == C_METHOD || c->state == C_AUTH) {
        rc = chp_socks5_connect(m, sizeof m, rt->host, rt->host_port, &ml);
        send_step(s, c, rc, m, ml, C_REPLY);
    } else {
        memcpy(c->buf[1], c->hs + used, rest);
        c->len[1] = rest;
        c->state = C_SPLICE;
        route_err(s, c->route, NULL);
    }
}

/* Moves bytes one way: from fd `from` into buf d, and from it to `to`. */
static int pump(struct conn *c, int d, int from, int to, short rev_from)
{
    if ((rev_from & (POLLIN | POLLHUP | POLLERR)) && c->len[d] == 0 && !c->eof[d]) {
        ssize_t r = recv(from, c->buf[d], SPLICE_BUF, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            c->eof[d] = 1;
        else if (r > 0) {
            c->len[d] = (size_t)r;
            c->off[d] = 0;
        }
    }
    if (c->len[d] > c->off[d]) { /* non-blocking: EAGAIN waits for POLLOUT */
        ssize_t w = send(to, c->buf[d] + c->off[d], c->len[d] - c->off[d], MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (w > 0 && (c->off[d] += (size_t)w) == c->len[d])
            c->len[d] = c->off[d] = 0;
    }
    return c->eof[d] && c->len[d] == 0 ? -1 : 0;
}

static void on_conn(struct chp_socks *s, struct conn *c, short zrev, short prev)
{
    struct route rt;
    pthread_mutex_lock(&s->mu);
    rt = s->routes[c->route];
    pthread_mutex_unlock(&s->mu);
    if (rt.closing || !rt.used || (zrev & (POLLHUP | POLLERR) && c->state != C_SPLICE)) {
        conn_close(c);
        return;
    }
    if (c->state == C_CONNECTING) {
        if (prev & (POLLOUT | POLLERR | POLLHUP))
            on_connected(s, c, &rt);
    } else if (c->state != C_SPLICE) {
        if (prev & (POLLIN | POLLERR | POLLHUP))
            on_handshake(s, c, &rt);
    } else if (pump(c, 0, c->zfd, c->pfd, zrev) != 0 || pump(c, 1, c->pfd, c->zfd, prev) != 0) {
        conn_close(c);
    }
}

/* The poll set: the wake pipe, every open listener, every connection's
 * two sides. */
static size_t fill(struct chp_socks *s, struct pollfd *p, int *who)
{
    size_t k = 0;
    p[k++] = (struct pollfd){s->wake[0], POLLIN, 0};
    who[0] = -1;
    pthread_mutex_lock(&s->mu);
    for (int r = 0; r < ROUTES_MAX; r++) {
        struct route *rt = &s->routes[r];
        if (rt->used && rt->closing) {
            for (int i = 0; i < CONNS_MAX; i++)
                if (s->conns[i].used && s->conns[i].route == r)
                    conn_close(&s->conns[i]);
            close(rt->lfd);
            rt->used = 0;
        }
        if (rt->used) {
            who[k] = r;
            p[k++] = (struct pollfd){rt->lfd, POLLIN, 0};
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < CONNS_MAX; i++) {
        struct conn *c = &s->conns[i];
        if (!c->used)
            continue;
        short pev = c->state == C_CONNECTING ? POLLOUT
                    : c->state != C_SPLICE
                        ? POLLIN
                        : (short)((c->len[1] ? 0 : POLLIN) | (c->len[0] ? POLLOUT : 0));
        short zev = c->state != C_SPLICE
                        ? 0
                        : (short)((c->len[0] ? 0 : POLLIN) | (c->len[1] ? POLLOUT : 0));
        who[k] = ROUTES_MAX + 2 * i;
        p[k++] = (struct pollfd){c->zfd, zev, 0};
        who[k] = ROUTES_MAX + 2 * i + 1;
        p[k++] = (struct pollfd){c->pfd, pev, 0};
    }
    return k;
}

static void *run(void *arg)
{
    struct chp_socks *s = arg;
    static __thread struct pollfd p[1 + ROUTES_MAX + 2 * CONNS_MAX];
    static __thread int who[1 + ROUTES_MAX + 2 * CONNS_MAX];
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        size_t k = fill(s, p, who);
        if (poll(p, k, 1000) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            char b[64];
            while (read(s->wake[0], b, sizeof b) > 0)
                ;
        }
        for (size_t i = 1; i < k; i++) {
            if (who[i] < ROUTES_MAX) {
                if (p[i].revents & POLLIN)
                    accept_on(s, who[i]);
                continue;
            }
            int ci = (who[i] - ROUTES_MAX) / 2;
            if ((who[i] - ROUTES_MAX) % 2 == 0 && s->conns[ci].used) /* both sides at once */
                on_conn(s, &s->conns[ci], p[i].revents, p[i + 1].revents);
        }
        for (int i = 0; i < CONNS_MAX; i++) /* proxies that never answer */
            if (s->conns[i].used && s->conns[i].state != C_SPLICE &&
                now_ms() - s->conns[i].since_ms > HANDSHAKE_MS)
                fail(s, &s->conns[i], "it did not answer in time");
    }
    for (int i = 0; i < CONNS_MAX; i++)
        if (s->conns[i].used)
            conn_close(&s->conns[i]);
    return NULL;
}

static struct chp_socks *relay(chp_mesh *n)
{
    if (n->socks)
        return n->socks;
    struct chp_socks *s = calloc(1, sizeof *s);
    if (!s || !(s->conns = calloc(CONNS_MAX, sizeof *s->conns)) ||
        pipe2(s->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        if (s)
            free(s->conns);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        close(s->wake[0]);
        close(s->wake[1]);
        free(s->conns);
        free(s);
        return NULL;
    }
    return n->socks = s;
}

static void wake(struct chp_socks *s)
{
    char c = 1;
    if (write(s->wake[1], &c, 1) < 0 && errno != EAGAIN)
        chp_warn("socks relay: cannot wake its thread");
}

int chp_socks_route(chp_mesh *n, const char *proxy, uint16_t proxy_port, const char *host,
                    uint16_t host_port, const char *user, const char *pass, int *id, uint16_t *port)
{
    struct chp_socks *s = relay(n);
    if (!s)
        return CHP_E_NOMEM;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof in;
    if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof in) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&in, &sl) != 0) {
        if (fd >= 0)
            close(fd);
        return CHP_E_IO;
    }
    int rc = CHP_E_NOMEM;
    pthread_mutex_lock(&s->mu);
    for (int r = 0; r < ROUTES_MAX; r++) {
        struct route *rt = &s->routes[r];
        if (rt->used)
            continue;
        memset(rt, 0, sizeof *rt);
        rt->used = 1;
        rt->lfd = fd;
        rt->port = ntohs(in.sin_port);
        snprintf(rt->proxy, sizeof rt->proxy, "%s", proxy);
        rt->proxy_port = proxy_port;
        snprintf(rt->host, sizeof rt->host, "%s", host);
        rt->host_port = host_port;
        snprintf(rt->user, sizeof rt->user, "%s", user ? user : "");
        snprintf(rt->pass, sizeof rt->pass, "%s", pass ? pass : "");
        *id = r + 1;
        *port = rt->port;
        rc = CHP_OK;
        break;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != CHP_OK)
        close(fd);
    else
        wake(s);
    return rc;
}

void chp_socks_unroute(struct chp_socks *s, int id)
{
    if (!s || id <= 0 || id > ROUTES_MAX)
        return;
    pthread_mutex_lock(&s->mu);
    s->routes[id - 1].closing = 1; /* the thread closes it and its connections */
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

int chp_socks_error(chp_mesh *n, int id, char *out, size_t cap)
{
    struct chp_socks *s = n->socks;
    out[0] = '\0';
    if (!s || id <= 0 || id > ROUTES_MAX)
        return 0;
    pthread_mutex_lock(&s->mu);
    snprintf(out, cap, "%s", s->routes[id - 1].used ? s->routes[id - 1].err : "");
    pthread_mutex_unlock(&s->mu);
    return out[0] != '\0';
}

void chp_socks_destroy(chp_mesh *n)
{
    struct chp_socks *s = n->socks;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    wake(s);
    pthread_join(s->thread, NULL);
    for (int r = 0; r < ROUTES_MAX; r++)
        if (s->routes[r].used)
            close(s->routes[r].lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
    free(s->conns);
    free(s);
    n->socks = NULL;
}
