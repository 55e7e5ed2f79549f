/* httpd.c - the bounded read-only HTTP server: libmicrohttpd in external
 * epoll mode (its one descriptor polled by the caller), our own listening
 * socket (so the port is known), and a list of open connections to close
 * those whose request headers are not in after header_s (libmicrohttpd's
 * own timeout counts silence only, which a slowloris never is). */
#define _GNU_SOURCE
#include "node/web/httpd.h"
#include "node/common/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The kernel's accept queue. A short one lets a flood from one address
 * (every connection beyond its share is accepted and closed at once) keep
 * the queue full, so the handshakes of everyone else are dropped and
 * retried for seconds: a long one lets them all in, and the per-address
 * limit sorts them out in microseconds each. (The kernel caps it at
 * net.core.somaxconn.) */
#define HTTPD_BACKLOG 4096

/* One open connection, from accept to close. */
struct conn {
    struct conn *prev, *next;
    int fd;
    uint64_t start_ms;
    int answered; /* its headers were in: the slowloris deadline is off */
    int cut;      /* shut down for being slow; waiting for libmicrohttpd to close it */
};

struct chp_httpd {
    struct MHD_Daemon *d;
    int lfd;
    chp_httpd_opts o;
    char addr[80];
    struct conn *conns;
    unsigned nconns;
    uint64_t requests;
};

int chp_httpd_parse_addr(const char *s, char *host, size_t hcap, uint16_t *port)
{
    const char *p;
    size_t hl;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return CHP_E_ARG;
        hl = (size_t)(rb - s - 1), s++, p = rb + 2;
    } else if ((p = strrchr(s, ':'))) {
        hl = (size_t)(p - s), p++;
    } else {
        hl = 0, p = s;
    }
    if (hl >= hcap || !*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5 ||
        atoi(p) > 65535)
        return CHP_E_ARG;
    if (hl)
        memcpy(host, s, hl);
    else
        snprintf(host, hcap, "127.0.0.1"), hl = strlen(host);
    host[hl] = '\0';
    unsigned char tmp[16];
    if (inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1)
        return CHP_E_ARG;
    *port = (uint16_t)atoi(p);
    return CHP_OK;
}

/* The bound, listening socket of o->listen. */
static int listen_on(chp_httpd *h, char *err, size_t cap)
{
    char host[64];
    uint16_t port;
    if (chp_httpd_parse_addr(h->o.listen, host, sizeof host, &port) != CHP_OK) {
        snprintf(err, cap,
                 "cannot listen on %s: expected HOST:PORT with a numeric host (or a port)",
                 h->o.listen);
        return CHP_E_ARG;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    int v6 = strchr(host, ':') != NULL, one = 1;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6, a->sin6_port = htons(port);
        inet_pton(AF_INET6, host, &a->sin6_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET, a->sin_port = htons(port);
        inet_pton(AF_INET, host, &a->sin_addr);
        sl = sizeof *a;
    }
    h->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (h->lfd < 0 || setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(h->lfd, (struct sockaddr *)&ss, sl) != 0 || listen(h->lfd, HTTPD_BACKLOG) != 0 ||
        getsockname(h->lfd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(err, cap, "cannot listen on %s: %s", h->o.listen, strerror(errno));
        return CHP_E_IO;
    }
    port =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    snprintf(h->addr, sizeof h->addr, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    return CHP_OK;
}

static void on_conn(void *cls, struct MHD_Connection *mc, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe)
{
    chp_httpd *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn *c = calloc(1, sizeof *c);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = c;
        if (!c || !ci) {
            free(c);
            *socket_context = NULL;
            return;
        }
        c->fd = ci->connect_fd;
        c->start_ms = chp_mono_ms();
        c->next = h->conns;
        if (h->conns)
            h->conns->prev = c;
        h->conns = c;
        h->nconns++;
        return;
    }
    struct conn *c = *socket_context;
    if (!c)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    free(c);
    *socket_context = NULL;
}

static enum MHD_Result queue(struct MHD_Connection *mc, const chp_httpd_reply *r)
{
    struct MHD_Response *resp;
    if (r->fd >= 0)
        resp = MHD_create_response_from_fd64(r->size, r->fd);
    else
        resp = MHD_create_response_from_buffer(r->len, (void *)r->body, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        if (r->fd >= 0)
            close(r->fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r->type ? r->type : "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'");
    if (r->disposition)
        MHD_add_response_header(resp, "Content-Disposition", r->disposition);
    enum MHD_Result ok = MHD_queue_response(mc, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **req_cls)
{
    (void)version, (void)upload, (void)req_cls;
    chp_httpd *h = cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context)
        ((struct conn *)ci->socket_context)->answered = 1;
    h->requests++;
    /* libmicrohttpd sends no body for HEAD by itself */
    chp_httpd_reply r = {.status = 404, .fd = -1, .body = "not found\n", .len = 10};
    if (strcmp(method, MHD_HTTP_METHOD_HEAD) && strcmp(method, MHD_HTTP_METHOD_GET)) {
        *upload_len = 0; /* a body is never read */
        r = (chp_httpd_reply){.status = 405, .fd = -1, .body = "only GET and HEAD\n", .len = 18};
        return queue(mc, &r);
    }
    h->o.fn(h->o.ctx, url, &r);
    return queue(mc, &r);
}

int chp_httpd_new(const chp_httpd_opts *o, chp_httpd **out, char *err, size_t cap)
{
    *out = NULL;
    chp_httpd *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, cap, "out of memory");
        return CHP_E_NOMEM;
    }
    h->o = *o;
    h->lfd = -1;
    int rc = listen_on(h, err, cap);
    if (rc != CHP_OK) {
        chp_httpd_destroy(&h);
        return rc;
    }
    h->d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_SUPPRESS_DATE_NO_CLOCK, 0, NULL, NULL, on_request, h,
        MHD_OPTION_LISTEN_SOCKET, h->lfd, MHD_OPTION_CONNECTION_LIMIT, o->max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->per_ip, MHD_OPTION_CONNECTION_TIMEOUT, o->idle_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->header_bytes, MHD_OPTION_NOTIFY_CONNECTION, on_conn,
        h, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, cap, "cannot start the HTTP server on %s", h->addr);
        chp_httpd_destroy(&h);
        return CHP_E_IO;
    }
    *out = h;
    return CHP_OK;
}

void chp_httpd_destroy(chp_httpd **hp)
{
    if (!hp || !*hp)
        return;
    chp_httpd *h = *hp;
    if (h->d)
        MHD_stop_daemon(h->d); /* closes the listening socket and every connection */
    else if (h->lfd >= 0)
        close(h->lfd);
    while (h->conns) { /* MHD_stop_daemon notified every close; this is a safety net */
        struct conn *c = h->conns;
        h->conns = c->next;
        free(c);
    }
    free(h);
    *hp = NULL;
}

const char *chp_httpd_addr(const chp_httpd *h)
{
    return h->addr;
}

int chp_httpd_fd(const chp_httpd *h)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    return di ? di->epoll_fd : -1;
}

long chp_httpd_timeout_ms(const chp_httpd *h)
{
    MHD_UNSIGNED_LONG_LONG t = 0;
    long ms = MHD_get_timeout(h->d, &t) == MHD_YES ? (t > 60000 ? 60000 : (long)t) : -1;
    if (h->nconns && (ms < 0 || ms > 1000))
        ms = 1000; /* the slowloris check below runs at least once a second */
    return ms;
}

void chp_httpd_run(chp_httpd *h)
{
    MHD_run(h->d);
    uint64_t t = chp_mono_ms();
    for (struct conn *c = h->conns; c; c = c->next)
        if (!c->answered && !c->cut && t - c->start_ms >= (uint64_t)h->o.header_s * 1000) {
            shutdown(c->fd, SHUT_RDWR); /* libmicrohttpd sees the end and closes it */
            c->cut = 1;
        }
    MHD_run(h->d);
}

uint64_t chp_httpd_requests(const chp_httpd *h)
{
    return h->requests;
}

unsigned chp_httpd_open(const chp_httpd *h)
{
    return h->nconns;
}
