/* pt.c - pluggable transports run by chapard (issue 17): obfs4proxy (or
 * any program that speaks Tor's pt-spec v1, managed mode) as a child
 * process, the server in front of the node's listener (--listen-obfs4)
 * and the client whose SOCKS listener the mesh dials obfs4 addresses
 * through. Environment variables in, lines on the child's stdout back
 * (proto/ptline.c); its stdin is a pipe it exits on when we go
 * (TOR_PT_EXIT_ON_STDIN_CLOSE). A PT that dies is started again after a
 * backoff (1 s, doubling to 60 s; back to 1 s once it ran a minute); one
 * that is missing or does not speak the protocol gets one log line that
 * names the binary and the fix. Everything runs in the node's loop: the
 * stdout pipes are polled, the timers ticked; nothing here blocks. */
#define _GNU_SOURCE /* closefrom, pipe2 */
#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/daemon/node_int.h"
#include "proto/addr.h"
#include "proto/ptline.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PT_START_MS       10000 /* to print VERSION and its methods */
#define PT_BACKOFF_MIN_MS 1000
#define PT_BACKOFF_MAX_MS 60000
#define PT_STEADY_MS      60000 /* up this long: the next failure restarts at once */
#define PT_ENV_MAX        256

enum { PT_OFF, PT_STARTING, PT_UP, PT_WAIT };

struct pt {
    int server;
    const char *name; /* "server" / "client" for the log */
    pid_t pid;
    int out_fd, in_fd;
    int phase;
    int spoke; /* VERSION 1 came */
    uint64_t started_ms, retry_ms, backoff_ms;
    char buf[CHP_PTLINE_MAX + 2];
    size_t blen;
    char bind[300]; /* server: HOST:PORT asked for (port 0 replaced once known) */
    char host[CHP_ADDR_HOST_MAX + 1];
    uint16_t port;
    int ipv6;
    char cert[CHP_OBFS4_CERT_LEN + 1];
    int iat;
    unsigned starts;
    char last_err[512]; /* the last failure logged: a repeat goes to debug */
    int repeat;         /* the last failure was a repeat */
};

struct chp_pts {
    char bin[4096];   /* as configured ("obfs4proxy" = search PATH) */
    char state[4200]; /* DIR/pt */
    struct pt server, client;
    int want_server;
};

/* A failure of p, logged as an error once: the same line again (the
 * next attempt failing the same way) is only a debug line. */
__attribute__((format(printf, 2, 3))) static void pt_err(struct pt *p, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->repeat = !strcmp(line, p->last_err);
    if (p->repeat) {
        chp_debug("%s", line);
        return;
    }
    snprintf(p->last_err, sizeof p->last_err, "%s", line);
    chp_err_log("%s", line);
}

static const char *phase_name(int p)
{
    return p == PT_UP ? "up" : p == PT_STARTING ? "starting" : p == PT_WAIT ? "failed" : "off";
}

/* The binary's path: as given when it has a '/', else found on PATH. */
static int find_bin(const char *bin, char *out, size_t cap)
{
    if (strchr(bin, '/')) {
        snprintf(out, cap, "%s", bin);
        return access(out, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t l = strcspn(path, ":");
        int k = snprintf(out, cap, "%.*s/%s", (int)l, path, bin);
        if (l && k > 0 && (size_t)k < cap && access(out, X_OK) == 0)
            return 1;
        path += l + (path[l] == ':');
    }
    snprintf(out, cap, "%s", bin);
    return 0;
}

static void fix_hint(const struct chp_pts *ps, struct pt *p)
{
    pt_err(p,
           "obfs4 %s: cannot find the pluggable transport %s: install obfs4proxy "
           "(apt install obfs4proxy) or set `transport obfs4 = /path/to/obfs4proxy` in "
           "chapard.conf",
           p->name, ps->bin);
}

/* The environment of the child: ours without TOR_PT_*, then its own. */
static size_t make_env(struct chp_pts *ps, struct pt *p, const char *orport, char vars[8][4400],
                       char **envp)
{
    size_t k = 0, v = 0;
    for (char **e = environ; *e && k < PT_ENV_MAX - 9; e++)
        if (strncmp(*e, "TOR_PT_", 7) != 0)
            envp[k++] = *e;
    snprintf(vars[v++], sizeof vars[0], "TOR_PT_MANAGED_TRANSPORT_VER=1");
    snprintf(vars[v++], sizeof vars[0], "TOR_PT_STATE_LOCATION=%s/%s", ps->state, p->name);
    snprintf(vars[v++], sizeof vars[0], "TOR_PT_EXIT_ON_STDIN_CLOSE=1");
    if (p->server) {
        snprintf(vars[v++], sizeof vars[0], "TOR_PT_SERVER_TRANSPORTS=obfs4");
        snprintf(vars[v++], sizeof vars[0], "TOR_PT_SERVER_BINDADDR=obfs4-%s", p->bind);
        snprintf(vars[v++], sizeof vars[0], "TOR_PT_ORPORT=%s", orport);
    } else {
        snprintf(vars[v++], sizeof vars[0], "TOR_PT_CLIENT_TRANSPORTS=obfs4");
    }
    for (size_t i = 0; i < v; i++)
        envp[k++] = vars[i];
    envp[k] = NULL;
    return k;
}

static void child(const char *path, int in_fd, int out_fd, char **envp)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int null = open("/dev/null", O_WRONLY);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || (null >= 0 && dup2(null, 2) < 0))
        _exit(127);
    closefrom(3);
    char *argv[] = {(char *)path, NULL};
    execve(path, argv, envp);
    _exit(127);
}

static void fail(struct chp_pts *ps, struct pt *p, uint64_t t);

static void start(chp_node *n, struct pt *p, uint64_t t)
{
    struct chp_pts *ps = n->pts;
    char path[4096], orport[64] = "", dir[4300];
    static char vars[8][4400];
    char *envp[PT_ENV_MAX];
    p->phase = PT_WAIT;
    p->retry_ms = t + p->backoff_ms;
    if (!find_bin(ps->bin, path, sizeof path)) {
        fix_hint(ps, p);
        fail(ps, p, t);
        return;
    }
    if (p->server && chp_mesh_pt_orport(n->mesh, orport, sizeof orport) != CHP_OK)
        return;
    snprintf(dir, sizeof dir, "%s/%s", ps->state, p->name);
    if ((mkdir(ps->state, 0700) != 0 && errno != EEXIST) ||
        (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
        pt_err(p, "obfs4 %s: cannot create %s: %s", p->name, dir, strerror(errno));
        fail(ps, p, t);
        return;
    }
    make_env(ps, p, orport, vars, envp);
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        child(path, in[0], out[1], envp);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        pt_err(p, "obfs4 %s: cannot start %s: %s", p->name, path, strerror(errno));
        close(in[1]);
        close(out[0]);
        fail(ps, p, t);
        return;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->phase = PT_STARTING;
    p->spoke = 0;
    p->blen = 0;
    p->started_ms = t;
    p->starts++;
    chp_info("obfs4 %s: started %s (pid %d)", p->name, path, (int)pid);
}

/* Ends the child (if any) and closes its pipes; it is reaped here. */
static void reap(struct pt *p, int *status)
{
    *status = -1;
    if (p->in_fd >= 0)
        close(p->in_fd);
    if (p->out_fd >= 0)
        close(p->out_fd);
    p->in_fd = p->out_fd = -1;
    if (p->pid <= 0)
        return;
    /* stdin closed: a PT exits at once; give it 200 ms, then kill */
    for (int i = 0; i < 20 && waitpid(p->pid, status, WNOHANG) == 0; i++) {
        if (i == 0)
            kill(p->pid, SIGTERM);
        usleep(10000);
    }
    if (waitpid(p->pid, status, WNOHANG) == 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, status, 0);
    }
    p->pid = 0;
}

static void fail(struct chp_pts *ps, struct pt *p, uint64_t t)
{
    (void)ps;
    int st;
    int was_up = p->phase == PT_UP;
    reap(p, &st);
    if (was_up && t - p->started_ms >= PT_STEADY_MS)
        p->backoff_ms = PT_BACKOFF_MIN_MS;
    p->phase = PT_WAIT;
    p->retry_ms = t + p->backoff_ms;
    chp_log(p->repeat ? CHP_LOG_DEBUG : CHP_LOG_WARN, "obfs4 %s: trying again in %llu s", p->name,
            (unsigned long long)(p->backoff_ms / 1000));
    p->backoff_ms = p->backoff_ms * 2 > PT_BACKOFF_MAX_MS ? PT_BACKOFF_MAX_MS : p->backoff_ms * 2;
}

/* The PT is down (exited, failed, or not a PT): the mesh hears of it. */
static void down(chp_node *n, struct pt *p, uint64_t t)
{
    if (!p->server && chp_mesh_obfs4_socks(n->mesh, NULL) != CHP_OK)
        chp_warn("obfs4 client: cannot reset the SOCKS listener");
    fail(n->pts, p, t);
}

/* obfs4proxy also writes the cert to obfs4_bridgeline.txt in its state. */
static void cert_from_state(struct chp_pts *ps, struct pt *p)
{
    char path[4400], line[1024];
    snprintf(path, sizeof path, "%s/%s/obfs4_bridgeline.txt", ps->state, p->name);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        char *c = line[0] != '#' ? strstr(line, "cert=") : NULL;
        if (c && chp_obfs4_cert_ok(c + 5, strcspn(c + 5, " \r\n")))
            snprintf(p->cert, sizeof p->cert, "%.*s", CHP_OBFS4_CERT_LEN, c + 5);
    }
    fclose(f);
}

static void smethod(struct chp_pts *ps, struct pt *p, const chp_ptline *l)
{
    snprintf(p->host, sizeof p->host, "%s", l->host);
    p->port = l->port;
    p->ipv6 = l->ipv6;
    snprintf(p->cert, sizeof p->cert, "%s", l->cert);
    p->iat = l->iat_mode < 0 ? 0 : l->iat_mode;
    if (!p->cert[0])
        cert_from_state(ps, p);
    /* port 0 asked: keep the port it got across restarts (the address) */
    snprintf(p->bind, sizeof p->bind, l->ipv6 ? "[%s]:%u" : "%s:%u", l->host, (unsigned)l->port);
}

/* One line from the child; 0 when it must be stopped. */
static int on_line(chp_node *n, struct pt *p, const char *s, size_t len, uint64_t t)
{
    chp_ptline l;
    int rc = chp_ptline_parse(s, len, &l);
    if (!p->spoke && (rc != CHP_OK || l.kind != CHP_PT_VERSION || strcmp(l.msg, "1"))) {
        int versionless = rc == CHP_OK && l.kind == CHP_PT_VERSION_ERROR;
        pt_err(p,
               "obfs4 %s: %s is not a pluggable transport (pt-spec v1): it printed "
               "'%.60s' instead of 'VERSION 1'%s",
               p->name, n->pts->bin, rc == CHP_OK ? s : "(unreadable bytes)",
               versionless ? "" : "; point `transport obfs4 =` in chapard.conf at obfs4proxy");
        return 0;
    }
    if (rc != CHP_OK) {
        chp_warn("obfs4 %s: unreadable line from the PT: '%.60s'", p->name, s);
        return 1;
    }
    switch (l.kind) {
    case CHP_PT_VERSION:
        p->spoke = 1;
        return 1;
    case CHP_PT_ENV_ERROR:
    case CHP_PT_VERSION_ERROR:
    case CHP_PT_SMETHOD_ERROR:
    case CHP_PT_CMETHOD_ERROR:
    case CHP_PT_PROXY_ERROR:
        pt_err(p, "obfs4 %s: %s refused: %s", p->name, n->pts->bin, l.msg);
        return 0;
    case CHP_PT_SMETHOD:
        if (p->server && !strcmp(l.method, "obfs4"))
            smethod(n->pts, p, &l);
        return 1;
    case CHP_PT_CMETHOD:
        if (!p->server && !strcmp(l.method, "obfs4") && !strcmp(l.proto, "socks5")) {
            p->port = l.port;
            snprintf(p->host, sizeof p->host, l.ipv6 ? "[%s]" : "%s", l.host);
        }
        return 1;
    case CHP_PT_SMETHODS_DONE:
    case CHP_PT_CMETHODS_DONE:
        if (!p->port || (p->server && !p->cert[0])) {
            pt_err(p, "obfs4 %s: %s offered no obfs4 method%s", p->name, n->pts->bin,
                   p->port ? " with a cert (none in its SMETHOD nor in obfs4_bridgeline.txt)" : "");
            return 0;
        }
        p->phase = PT_UP;
        p->last_err[0] = '\0';
        if (!p->server) {
            char socks[300];
            snprintf(socks, sizeof socks, "%s:%u", p->host, (unsigned)p->port);
            chp_info("obfs4 client: SOCKS listener at %s", socks);
            return chp_mesh_obfs4_socks(n->mesh, socks) == CHP_OK;
        }
        chp_info("obfs4 server: listening on %s", p->bind);
        (void)t;
        return 1;
    default:
        return 1;
    }
}

static void read_out(chp_node *n, struct pt *p, uint64_t t)
{
    for (;;) {
        ssize_t r = read(p->out_fd, p->buf + p->blen, sizeof p->buf - 1 - p->blen);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            int st = -1;
            reap(p, &st); /* its exit status, for the line below */
            if (!p->spoke)
                pt_err(p,
                       "obfs4 %s: %s exited without speaking the PT protocol (status "
                       "%d); is it a pluggable transport? `transport obfs4 =` in "
                       "chapard.conf names it",
                       p->name, n->pts->bin, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            else
                chp_warn("obfs4 %s: %s exited", p->name, n->pts->bin);
            down(n, p, t);
            return;
        }
        p->blen += (size_t)r;
        char *nl;
        while (p->phase != PT_WAIT && (nl = memchr(p->buf, '\n', p->blen))) {
            size_t ll = (size_t)(nl - p->buf);
            *nl = '\0';
            int ok = on_line(n, p, p->buf, ll, t);
            memmove(p->buf, nl + 1, p->blen - ll - 1);
            p->blen -= ll + 1;
            if (!ok) {
                down(n, p, t);
                return;
            }
        }
        if (p->blen >= sizeof p->buf - 1) {
            pt_err(p, "obfs4 %s: %s prints lines longer than %d bytes: not a PT", p->name,
                   n->pts->bin, CHP_PTLINE_MAX);
            down(n, p, t);
            return;
        }
    }
}

static void pt_init(struct pt *p, int server)
{
    memset(p, 0, sizeof *p);
    p->server = server;
    p->name = server ? "server" : "client";
    p->in_fd = p->out_fd = -1;
    p->backoff_ms = PT_BACKOFF_MIN_MS;
}

int chp_pt_start(chp_node *n, const chp_node_opts *o)
{
    if (!(n->pts = calloc(1, sizeof *n->pts)))
        return CHP_E_NOMEM;
    struct chp_pts *ps = n->pts;
    snprintf(ps->bin, sizeof ps->bin, "%s",
             o->obfs4_bin && o->obfs4_bin[0] ? o->obfs4_bin : "obfs4proxy");
    snprintf(ps->state, sizeof ps->state, "%s/pt", n->home);
    pt_init(&ps->server, 1);
    pt_init(&ps->client, 0);
    if (o->listen_obfs4 && o->listen_obfs4[0]) {
        ps->want_server = 1;
        snprintf(ps->server.bind, sizeof ps->server.bind, "%s", o->listen_obfs4);
        start(n, &ps->server, chp_mono_ms());
    }
    return CHP_OK;
}

void chp_pt_stop(chp_node *n)
{
    if (!n->pts)
        return;
    int st;
    reap(&n->pts->server, &st);
    reap(&n->pts->client, &st);
    free(n->pts);
    n->pts = NULL;
}

size_t chp_pt_poll_items(chp_node *n, zmq_pollitem_t *it)
{
    size_t k = 0;
    struct pt *ps[2] = {&n->pts->server, &n->pts->client};
    for (int i = 0; i < 2; i++)
        if (ps[i]->out_fd >= 0)
            it[k++] = (zmq_pollitem_t){NULL, ps[i]->out_fd, ZMQ_POLLIN, 0};
    return k;
}

void chp_pt_poll_done(chp_node *n, const zmq_pollitem_t *it, size_t k)
{
    uint64_t t = chp_mono_ms();
    struct pt *ps[2] = {&n->pts->server, &n->pts->client};
    for (size_t i = 0; i < k; i++)
        for (int j = 0; j < 2; j++)
            if (it[i].fd == ps[j]->out_fd && ps[j]->out_fd >= 0 &&
                (it[i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
                read_out(n, ps[j], t);
}

void chp_pt_tick(chp_node *n, uint64_t t)
{
    struct chp_pts *ps = n->pts;
    struct pt *p[2] = {&ps->server, &ps->client};
    int want[2] = {ps->want_server, chp_mesh_obfs4_wanted(n->mesh) > 0};
    for (int i = 0; i < 2; i++) {
        if (p[i]->phase == PT_STARTING && t - p[i]->started_ms > PT_START_MS) {
            pt_err(p[i],
                   "obfs4 %s: %s did not finish starting in %d s; is it a pluggable "
                   "transport?",
                   p[i]->name, ps->bin, PT_START_MS / 1000);
            down(n, p[i], t);
        }
        if (want[i] && (p[i]->phase == PT_OFF || (p[i]->phase == PT_WAIT && t >= p[i]->retry_ms)))
            start(n, p[i], t);
    }
}

size_t chp_pt_addresses(chp_node *n, char *out, size_t cap)
{
    const struct pt *p = &n->pts->server;
    char plain[CHP_ADDR_STR_MAX + 1];
    chp_addr a;
    if (p->phase != PT_UP || !p->cert[0] || cap == 0)
        return 0;
    chp_mesh_address(n->mesh, plain, sizeof plain);
    if (chp_addr_parse(plain, strlen(plain), &a) != CHP_OK)
        return 0;
    /* a wildcard bind is reached at the node's own host */
    if (strcmp(p->host, "0.0.0.0") && strcmp(p->host, "::")) {
        snprintf(a.host, sizeof a.host, "%s", p->host);
        a.ipv6 = p->ipv6;
    }
    a.port = p->port;
    a.transport = CHP_TRANSPORT_OBFS4;
    snprintf(a.cert, sizeof a.cert, "%s", p->cert);
    a.iat_mode = p->iat;
    return chp_addr_format(&a, out, cap) == CHP_OK ? strlen(out) : 0;
}

size_t chp_pt_status(chp_node *n, char *b, size_t cap)
{
    const struct chp_pts *ps = n->pts;
    int k = snprintf(b, cap, "obfs4 server: %s\nobfs4 client: %s\nobfs4 starts: %u\n",
                     ps->want_server ? phase_name(ps->server.phase) : "off",
                     phase_name(ps->client.phase), ps->server.starts + ps->client.starts);
    return k < 0 ? 0 : (size_t)k >= cap ? cap - 1 : (size_t)k;
}
