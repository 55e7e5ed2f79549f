/* hhttp.h - a minimal HTTP/1.0 client for the tests of chapard --metrics
 * and chapar share-app: raw requests (hostile ones too), whole answers. */
#ifndef CHP_HHTTP_H
#define CHP_HHTTP_H

#include <stddef.h>
#include <stdint.h>

/* Sends req (len bytes; a write the server refuses midway is fine) to
 * host:port and reads the answer until the server closes (10 s at most,
 * 64 MiB at most). Returns the status code, 0 when the connection closed
 * without a status line, -1 when it could not connect. *body (when not
 * NULL) gets the body after the headers, malloc'd and NUL-terminated, and
 * *blen its size; *head (when not NULL) the header block. */
int hh_request(const char *host, uint16_t port, const void *req, size_t len, char **head,
               char **body, size_t *blen);
/* GET path with Connection: close. */
int hh_get(const char *host, uint16_t port, const char *path, char **head, char **body,
           size_t *blen);
/* hh_get from the local address src (NULL: the kernel's choice), for a
 * client the per-address limits must not take for the flood's. */
int hh_get_from(const char *src, const char *host, uint16_t port, const char *path, char **head,
                char **body, size_t *blen);
/* A TCP connection to host:port (blocking, 5 s timeouts), or -1; _from
 * binds the local address src first. */
int hh_connect(const char *host, uint16_t port);
int hh_connect_from(const char *src, const char *host, uint16_t port);
/* "http://HOST:PORT/..." split: host (cap bytes) and port; 0 or -1. */
int hh_parse_url(const char *url, char *host, size_t cap, uint16_t *port);

#endif
