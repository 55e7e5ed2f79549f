/* hhttp.c - the tests' HTTP/1.0 client (hhttp.h). */
#include "hhttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define ANSWER_MAX (64u << 20)

int hh_connect(const char *host, uint16_t port)
{
    return hh_connect_from(NULL, host, port);
}

int hh_connect_from(const char *src, const char *host, uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {5, 0};
    struct sockaddr_in from;
    memset(&from, 0, sizeof from);
    from.sin_family = AF_INET;
    if (src && inet_pton(AF_INET, src, &from.sin_addr) != 1)
        src = NULL;
    if (fd < 0 || (src && bind(fd, (struct sockaddr *)&from, sizeof from) != 0) ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int request(const char *src, const char *host, uint16_t port, const void *req, size_t len,
                   char **head, char **body, size_t *blen)
{
    signal(SIGPIPE, SIG_IGN);
    int fd = hh_connect_from(src, host, port);
    if (fd < 0)
        return -1;
    for (size_t o = 0; o < len;) {
        ssize_t k = send(fd, (const char *)req + o, len - o, MSG_NOSIGNAL);
        if (k <= 0)
            break; /* refused midway: read what the server said */
        o += (size_t)k;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap && cap < ANSWER_MAX)
            buf = realloc(buf, (cap *= 2) + 1);
        if (n == cap)
            break;
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    int status = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    if (head)
        *head = strndup(buf, sep ? (size_t)(sep - buf) : n);
    if (body) {
        size_t off = sep ? (size_t)(sep + 4 - buf) : n;
        *body = malloc(n - off + 1);
        memcpy(*body, buf + off, n - off);
        (*body)[n - off] = '\0';
        if (blen)
            *blen = n - off;
    }
    free(buf);
    return status;
}

int hh_request(const char *host, uint16_t port, const void *req, size_t len, char **head,
               char **body, size_t *blen)
{
    return request(NULL, host, port, req, len, head, body, blen);
}

int hh_get(const char *host, uint16_t port, const char *path, char **head, char **body,
           size_t *blen)
{
    return hh_get_from(NULL, host, port, path, head, body, blen);
}

int hh_get_from(const char *src, const char *host, uint16_t port, const char *path, char **head,
                char **body, size_t *blen)
{
    char req[2048];
    int k = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, host);
    return request(src, host, port, req, (size_t)k, head, body, blen);
}

int hh_parse_url(const char *url, char *host, size_t cap, uint16_t *port)
{
    unsigned p = 0;
    char h[64];
    if (sscanf(url, "http://%63[^:/]:%u/", h, &p) != 2 || !p || p > 65535 || strlen(h) >= cap)
        return -1;
    snprintf(host, cap, "%s", h);
    *port = (uint16_t)p;
    return 0;
}
