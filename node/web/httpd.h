/* httpd.h - a small read-only HTTP server over GNU libmicrohttpd for
 * chapard's /metrics and `chapar share-app`: GET and HEAD only, run from
 * the caller's poll loop (no threads: a handler may read the caller's
 * state), with every limit a hostile client could push on: connections in
 * all and per address, the bytes of a request's headers, a silent
 * connection, and a request whose headers trickle in (slowloris) closed
 * when they are not complete in time. */
#ifndef CHP_HTTPD_H
#define CHP_HTTPD_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct chp_httpd chp_httpd;

/* What the handler answers. body (len bytes) is copied; or, fd >= 0, the
 * file's size bytes are sent from it and the server closes fd. */
typedef struct chp_httpd_reply {
    int status;              /* 200, 404... */
    const char *type;        /* Content-Type */
    const char *disposition; /* Content-Disposition, or NULL */
    const void *body;
    size_t len;
    int fd;
    uint64_t size;
} chp_httpd_reply;

/* Answers a GET or HEAD of path (the URL path as sent, before any '?',
 * not decoded). r comes in as a 404 with no body and fd -1. */
typedef void (*chp_httpd_fn)(void *ctx, const char *path, chp_httpd_reply *r);

typedef struct chp_httpd_opts {
    const char *listen;  /* "HOST:PORT" (IPv4 or [IPv6], numeric), or "PORT"
                            for 127.0.0.1; port 0 = any free port */
    unsigned max_conns;  /* connections open at once */
    unsigned per_ip;     /* of them from one address */
    unsigned idle_s;     /* a connection that sends or takes nothing this long is closed */
    unsigned header_s;   /* a request's headers must be in this long after accept */
    size_t header_bytes; /* headers larger than this are refused (431) */
    chp_httpd_fn fn;
    void *ctx;
} chp_httpd_opts;

/* Binds and starts serving (nothing happens until chp_httpd_run). On an
 * error, one line in err (cap bytes): "cannot listen on X: why".
 * CHP_OK, CHP_E_ARG (a bad listen address), CHP_E_IO, CHP_E_NOMEM. */
CHP_WUR int chp_httpd_new(const chp_httpd_opts *o, chp_httpd **out, char *err, size_t cap);
void chp_httpd_destroy(chp_httpd **hp);

/* The address bound, as "HOST:PORT" ("[v6]:PORT"), port resolved. */
const char *chp_httpd_addr(const chp_httpd *h);

/* The descriptor to poll for reading, and how long the caller may wait
 * at most before calling chp_httpd_run (ms, -1 = no limit). */
int chp_httpd_fd(const chp_httpd *h);
long chp_httpd_timeout_ms(const chp_httpd *h);
/* Does what is ready: accepts, reads, answers, closes what timed out. */
void chp_httpd_run(chp_httpd *h);
/* Requests answered so far, and connections open now. */
uint64_t chp_httpd_requests(const chp_httpd *h);
unsigned chp_httpd_open(const chp_httpd *h);

/* "HOST:PORT" split for binding: numeric IPv4, [IPv6], or a bare port
 * (127.0.0.1). CHP_OK or CHP_E_ARG. Exposed for config checks. */
CHP_WUR int chp_httpd_parse_addr(const char *s, char *host, size_t hcap, uint16_t *port);

#endif
