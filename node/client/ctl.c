/* ctl.c - the control-API client and daemon starter (ctl.h). */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* readlink, setsid under strict C11 */
#endif
#include "node/client/ctl.h"
#include "node/common/clock.h"
#include "node/common/home.h"

#include "proto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define PENDING_MAX 256

struct chp_ctl {
    void *zctx;
    int own_zctx; /* zctx was made here and is terminated here */
    void *req, *evt;
    char *home;
    char ep[4200], ev[4200]; /* ipc://home/control, ipc://home/events */
    chp_ctl_tag pending[PENDING_MAX];
    uint64_t sent_ms[PENDING_MAX];
    size_t head, count; /* FIFO ring */
};

uint64_t chp_ctl_now_ms(void)
{
    return chp_mono_ms();
}

/* A socket of type connected to ep with no linger, or NULL (errno set). */
static void *open_socket(chp_ctl *c, int type, const char *ep)
{
    void *s = zmq_socket(c->zctx, type);
    int zero = 0;
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(s, ep) != 0) {
        int e = errno;
        zmq_close(s);
        errno = e;
        return NULL;
    }
    return s;
}

int chp_ctl_open(const char *home, void *zctx, chp_ctl **out)
{
    int rc = CHP_E_IO, e;
    chp_ctl *c = calloc(1, sizeof *c);
    if (!c)
        return CHP_E_NOMEM;
    if (!(c->home = strdup(home))) {
        rc = CHP_E_NOMEM;
        goto fail;
    }
    if (snprintf(c->ep, sizeof c->ep, "ipc://%s/control", home) >= (int)sizeof c->ep ||
        snprintf(c->ev, sizeof c->ev, "ipc://%s/events", home) >= (int)sizeof c->ev) {
        rc = CHP_E_ARG;
        goto fail;
    }
    c->zctx = zctx;
    if (!zctx) {
        c->own_zctx = 1;
        if (!(c->zctx = zmq_ctx_new()))
            goto fail;
    }
    if (!(c->req = open_socket(c, ZMQ_DEALER, c->ep)))
        goto fail;
    *out = c;
    return CHP_OK;
fail:
    e = errno; /* the caller reports ZeroMQ's reason, not the cleanup's */
    chp_ctl_destroy(&c);
    errno = e;
    return rc;
}

int chp_ctl_new(const char *home, chp_ctl **out)
{
    static const char *const topics[] = {"message", "queued", "state", "request", "contact",
                                         "peer",    "room",   "nick",  "file"};
    chp_ctl *c = NULL;
    int rc = chp_ctl_open(home, NULL, &c);
    for (size_t i = 0; rc == CHP_OK && i < sizeof topics / sizeof topics[0]; i++)
        rc = chp_ctl_subscribe(c, topics[i]);
    if (rc != CHP_OK) {
        chp_ctl_destroy(&c);
        return rc;
    }
    *out = c;
    return CHP_OK;
}

void chp_ctl_destroy(chp_ctl **cp)
{
    if (!cp || !*cp)
        return;
    chp_ctl *c = *cp;
    if (c->req)
        zmq_close(c->req);
    if (c->evt)
        zmq_close(c->evt);
    if (c->own_zctx && c->zctx)
        zmq_ctx_term(c->zctx);
    free(c->home);
    free(c);
    *cp = NULL;
}

const char *chp_ctl_home(const chp_ctl *c)
{
    return c->home;
}

void *chp_ctl_req_socket(chp_ctl *c)
{
    return c->req;
}

void *chp_ctl_evt_socket(chp_ctl *c)
{
    return c->evt;
}

/* ---- requests ---- */

static void wipe_free(void *data, void *hint)
{
    chp_memzero(data, (size_t)(uintptr_t)hint);
    free(data);
}

int chp_ctl_send(chp_ctl *c, const chp_ctl_tag *tag, uint64_t now_ms, const char *cmd, int nargs,
                 const char *const *args, const size_t *lens, int secret_last)
{
    if (c->count == PENDING_MAX || !c->req)
        return CHP_E_OVERFLOW;
    if (zmq_send(c->req, cmd, strlen(cmd), (nargs > 0 ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
        return CHP_E_IO;
    for (int i = 0; i < nargs; i++) {
        int more = i + 1 < nargs ? ZMQ_SNDMORE : 0;
        if (secret_last && i == nargs - 1) {
            /* A buffer of our own, wiped when ZeroMQ is done with it. */
            size_t n = lens[i] ? lens[i] : 1;
            void *buf = malloc(n);
            zmq_msg_t msg;
            if (!buf)
                return CHP_E_NOMEM;
            memcpy(buf, args[i], lens[i]);
            if (zmq_msg_init_data(&msg, buf, lens[i], wipe_free, (void *)(uintptr_t)n) != 0) {
                wipe_free(buf, (void *)(uintptr_t)n);
                return CHP_E_IO;
            }
            if (zmq_msg_send(&msg, c->req, more | ZMQ_DONTWAIT) < 0) {
                int e = errno;
                zmq_msg_close(&msg);
                errno = e;
                return CHP_E_IO;
            }
        } else if (zmq_send(c->req, args[i], lens[i], more | ZMQ_DONTWAIT) < 0) {
            return CHP_E_IO;
        }
    }
    size_t slot = (c->head + c->count) % PENDING_MAX;
    if (tag)
        c->pending[slot] = *tag;
    else
        memset(&c->pending[slot], 0, sizeof c->pending[slot]);
    c->sent_ms[slot] = now_ms;
    c->count++;
    return CHP_OK;
}

/* Receives one frame into a new NUL-terminated string. */
static int recv_frame(void *s, char **out, size_t *len, int *more, int flags)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, flags) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    size_t n = zmq_msg_size(&m);
    char *b = malloc(n + 1);
    if (b) {
        memcpy(b, zmq_msg_data(&m), n);
        b[n] = 0;
    }
    *more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    *out = b;
    *len = n;
    return b ? 0 : -1;
}

/* Drops the rest of a multipart message; the number of frames dropped. */
static int drain(void *s, int more)
{
    int n = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0) {
            more = 0;
        } else {
            more = zmq_msg_more(&m);
            n++;
        }
        zmq_msg_close(&m);
    }
    return n;
}

/* Takes one reply off the request socket without waiting: 1 with the
 * oldest request's tag, the status and a new payload (*extra: frames after
 * it, dropped); 0 when none waits; CHP_E_MALFORMED when it is unsolicited
 * or has no payload frame (dropped; the pending request stays). */
static int take(chp_ctl *c, chp_ctl_tag *tag, int *ok, char **payload, size_t *len, int *extra)
{
    char *st = NULL, *body = NULL;
    size_t stlen, blen;
    int more;
    if (!c->req || recv_frame(c->req, &st, &stlen, &more, ZMQ_DONTWAIT) != 0)
        return 0;
    if (c->count == 0 || !more || recv_frame(c->req, &body, &blen, &more, 0) != 0) {
        /* unsolicited, or not the two frames of the contract */
        free(st);
        drain(c->req, more);
        return CHP_E_MALFORMED;
    }
    *extra = drain(c->req, more);
    *tag = c->pending[c->head];
    c->head = (c->head + 1) % PENDING_MAX;
    c->count--;
    *ok = stlen == 2 && !memcmp(st, "ok", 2);
    free(st);
    *payload = body;
    *len = blen;
    return 1;
}

int chp_ctl_reply(chp_ctl *c, chp_ctl_tag *tag, int *ok, char **payload, size_t *len)
{
    int extra;
    return take(c, tag, ok, payload, len, &extra);
}

int chp_ctl_recv(chp_ctl *c, long timeout_ms, chp_ctl_answer *ans)
{
    chp_ctl_tag tag;
    int extra = 0;
    memset(ans, 0, sizeof *ans);
    if (!c->req) {
        errno = ENOTCONN;
        return CHP_E_IO;
    }
    zmq_pollitem_t pi = {c->req, 0, ZMQ_POLLIN, 0};
    int n = zmq_poll(&pi, 1, timeout_ms);
    if (n < 0)
        return CHP_E_IO;
    if (n == 0)
        return 0;
    int rc = take(c, &tag, &ans->ok, &ans->body, &ans->len, &extra);
    if (rc == 1 && extra) {
        chp_ctl_answer_free(ans);
        return CHP_E_MALFORMED;
    }
    return rc;
}

int chp_ctl_call(chp_ctl *c, long timeout_ms, const char *cmd, int nargs, const char *const *args,
                 const size_t *lens, chp_ctl_answer *ans)
{
    memset(ans, 0, sizeof *ans);
    int rc = chp_ctl_send(c, NULL, chp_mono_ms(), cmd, nargs, args, lens, 0);
    return rc != CHP_OK ? rc : chp_ctl_recv(c, timeout_ms, ans);
}

void chp_ctl_answer_free(chp_ctl_answer *ans)
{
    if (!ans)
        return;
    free(ans->body);
    memset(ans, 0, sizeof *ans);
}

size_t chp_ctl_pending(const chp_ctl *c)
{
    return c->count;
}

int chp_ctl_overdue(const chp_ctl *c, uint64_t now_ms, uint64_t timeout_ms)
{
    /* a request sent after now_ms was taken is not overdue (no wrap-around) */
    return c->count > 0 && now_ms > c->sent_ms[c->head] &&
           now_ms - c->sent_ms[c->head] > timeout_ms;
}

int chp_ctl_reset(chp_ctl *c)
{
    if (c->req)
        zmq_close(c->req);
    c->head = c->count = 0;
    c->req = open_socket(c, ZMQ_DEALER, c->ep);
    return c->req ? CHP_OK : CHP_E_IO;
}

/* ---- events ---- */

int chp_ctl_subscribe(chp_ctl *c, const char *topic)
{
    if (!c->evt && !(c->evt = open_socket(c, ZMQ_SUB, c->ev)))
        return CHP_E_IO;
    return zmq_setsockopt(c->evt, ZMQ_SUBSCRIBE, topic, strlen(topic)) == 0 ? CHP_OK : CHP_E_IO;
}

int chp_ctl_event(chp_ctl *c, char **topic, char **body, size_t *len)
{
    size_t tlen;
    int more;
    if (!c->evt || recv_frame(c->evt, topic, &tlen, &more, ZMQ_DONTWAIT) != 0)
        return 0;
    if (!more || recv_frame(c->evt, body, len, &more, 0) != 0) {
        free(*topic);
        drain(c->evt, more);
        return 0;
    }
    drain(c->evt, more);
    return 1;
}

int chp_ctl_poll(chp_ctl *c, long timeout_ms)
{
    zmq_pollitem_t pi[2];
    int bits[2], n = 0, got = 0;
    if (c->req) {
        bits[n] = CHP_CTL_POLL_REPLY;
        pi[n++] = (zmq_pollitem_t){c->req, 0, ZMQ_POLLIN, 0};
    }
    if (c->evt) {
        bits[n] = CHP_CTL_POLL_EVENT;
        pi[n++] = (zmq_pollitem_t){c->evt, 0, ZMQ_POLLIN, 0};
    }
    if (zmq_poll(pi, n, timeout_ms) < 0)
        return CHP_E_IO;
    for (int i = 0; i < n; i++)
        if (pi[i].revents & ZMQ_POLLIN)
            got |= bits[i];
    return got;
}

const char *chp_ctl_io_reason(void)
{
    return zmq_strerror(errno);
}

/* ---- the daemon ---- */

int chp_ctl_daemon_running(const char *home)
{
    struct sockaddr_un sa;
    struct stat st;
    char path[4200];
    int n = snprintf(path, sizeof path, "%s/control", home);
    if (n < 0 || (size_t)n >= sizeof path)
        return 1; /* cannot tell: let ZeroMQ try */
    if (stat(path, &st) != 0)
        return 0;
    if ((size_t)n >= sizeof sa.sun_path)
        return 1;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, (size_t)n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

void chp_ctl_find_program(const char *name, char *path, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(path, cap, "%s/%s", exe, name);
            if (access(path, X_OK) == 0)
                return;
        }
    }
    snprintf(path, cap, "%s", name);
}

int chp_ctl_spawn_daemon(const char *home, char *path, size_t cap, pid_t *child)
{
    enum { MAXW = 64 };
    char *argv[MAXW + 4], *words = NULL;
    int argc = 0, pfd[2], logfd, nullfd;
    if (chp_home_make(home) != 0)
        return CHP_E_IO;
    chp_ctl_find_program("chapard", path, cap);
    argv[argc++] = path;
    argv[argc++] = "--home";
    argv[argc++] = (char *)home;
    const char *extra = getenv("CHAPARD_ARGS");
    if (extra && (words = strdup(extra))) {
        for (char *w = strtok(words, " \t\n"); w && argc < MAXW; w = strtok(NULL, " \t\n"))
            argv[argc++] = w;
    }
    argv[argc] = NULL;
    char log[4200];
    snprintf(log, sizeof log, "%s/chapard.log", home);
    logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0 || pipe(pfd) != 0) {
        if (logfd >= 0)
            close(logfd);
        if (nullfd >= 0)
            close(nullfd);
        free(words);
        return CHP_E_IO;
    }
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    /* The daemon is our child, in a session of its own (the terminal's
     * signals do not reach it): the UI learns at once when it exits
     * (SIGCHLD) and can stop it; when the UI goes first it outlives it.
     * Between fork and exec only async-signal-safe calls. The exec
     * error, if any, comes back on the pipe (closed by a successful exec). */
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        signal(SIGPIPE, SIG_DFL); /* the UI ignores it; exec keeps that */
        dup2(nullfd, 0);
        dup2(nullfd, 1);
        dup2(logfd, 2);
        if (strchr(path, '/'))
            execv(path, argv);
        else
            execvp(path, argv);
        int e = errno;
        if (write(pfd[1], &e, sizeof e) < 0)
            _exit(127);
        _exit(127);
    }
    close(pfd[1]);
    close(logfd);
    close(nullfd);
    free(words);
    int rc = CHP_E_IO, e = 0;
    if (pid > 0) {
        ssize_t r;
        do
            r = read(pfd[0], &e, sizeof e);
        while (r < 0 && errno == EINTR);
        if (r == 0) {
            rc = CHP_OK;
            *child = pid;
        } else {
            waitpid(pid, NULL, 0);
            if (r == (ssize_t)sizeof e)
                errno = e;
        }
    }
    close(pfd[0]);
    return rc;
}
