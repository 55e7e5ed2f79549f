/* bench_mesh.c - gossip cost and delivery on a LAN-like mesh of real
 * chapard processes on loopback.
 *
 *   bench-mesh [-n NODES] [-k PEERS] [-m ENVELOPES] [-s PAYLOAD] [--kill-frac F]
 *              [--seed S] [--keep] [-v]
 *
 * NODES daemons (--listen 127.0.0.1:0 --no-discovery) run in a temp dir.
 * Each dials PEERS random others with `peer-add`, as LAN discovery does when
 * every node sees every other, so the links form a random graph of average
 * degree near 2 x PEERS (less where a node's 12-link active view declines
 * newcomers). Envelopes come from chapar-mkenv before any timing (each
 * proof of work takes ~30 ms) and are published one at a time at random
 * nodes, 10-20 ms apart, with the control API's `publish`; every node's
 * events socket reports when each envelope is committed there.
 *
 * Per batch, for its first half (the tree forms or mends), its second half
 * (steady state) and the whole, each half drained and status read around it:
 *   delivery  arrivals / (ENVELOPES x receivers)
 *   latency   `publish` request sent -> `envelope` event at a receiver
 *   cost      sum of the nodes' "bytes received" deltas (node-link frames,
 *             before CURVE) / deliveries / envelope size: target <= 1.3;
 *             split into full copies (deliveries + "duplicates") and the
 *             rest (IHAVE ids and other frames); flooding would cost about
 *             (average degree - 1) in the same mesh
 * Then KILL-FRAC of the nodes get SIGKILL and a second batch of ENVELOPES is
 * published at survivors, at once (the tree repairs itself while it runs).
 * Its receivers are the survivors in the publisher's component of the link
 * graph seen just before the kill; delivery to them must be 100 %.
 *
 * CHAPARD and CHAPAR_MKENV in the environment override the built binaries.
 * Exit 0 after a complete run (figures that miss a target say so), 1 on a
 * failure to run, 2 on bad usage. */
#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/envelope.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_NODES     100
#define MAX_PROCS     (MAX_NODES + 16)
#define SPACING_MIN   10.0 /* ms between publishes */
#define SPACING_MAX   20.0
#define CTL_TIMEOUT   5000    /* ms for one control request */
#define MESH_DEADLINE 60000.0 /* ms for the links to form */
#define DRAIN_MS      10000.0 /* ms after the last publish for stragglers */
#define GRACE_MS      500.0   /* ms of quiet after the last delivery */
#define STATUS_CAP    4096

/* Signal cleanup: the only mutable globals. The handler SIGKILLs every
 * child still tracked; the main path then notices stop and cleans up. */
static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_nprocs;
static pid_t g_procs[MAX_PROCS];

enum { S_RX, S_ACCEPTED, S_DUPS, S_PRUNES, S_GRAFTS, S_IHAVE, S_SYNC, S_STORED, S_REJECTED, NSTAT };
static const char *const stat_keys[NSTAT] = {"bytes received", "accepted",         "duplicates",
                                             "prunes",         "grafts",           "ids announced",
                                             "sync rounds",    "envelopes stored", "rejected"};

struct node {
    char home[300];
    pid_t pid;
    int alive;
    void *ctl, *sub;
    char addr[CHP_ADDR_STR_MAX + 1];
    uint8_t key[32];
    long long st[3][NSTAT]; /* status before, amid and after a batch */
};

struct env {
    uint8_t *bytes;
    size_t len;
    uint8_t id[32];
    int publisher;
    double t_pub, t_reply;
};

struct bench {
    int nodes, peers, count, payload, keep, verbose;
    double kill_frac;
    uint64_t seed, rng;
    const char *chapard, *mkenv;
    char dir[256];
    void *zctx;
    struct node nd[MAX_NODES];
    struct env *env;
    int nenv;
    double *arrive;      /* [env * nodes]: ms of the event, 0 = not (yet) */
    uint8_t *adj;        /* [nodes * nodes]: a connected link */
    int comp[MAX_NODES]; /* component of each live node in adj */
    double avg_degree;   /* of the live nodes in adj */
};

/* ---- small helpers ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t rng_next(struct bench *b)
{
    uint64_t z = (b->rng += 0x9e3779b97f4a7c15u); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int rng_below(struct bench *b, int n)
{
    return (int)(rng_next(b) % (uint64_t)n);
}

static double rng_unit(struct bench *b)
{
    return (double)(rng_next(b) >> 11) / 9007199254740992.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return NAN;
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    return v[r ? r - 1 : 0];
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int unhex32(const char *s, size_t len, uint8_t out[32])
{
    if (len < 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return 0;
}

/* ---- processes ---- */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    for (int i = 0; i < g_nprocs; i++)
        if (g_procs[i] > 0)
            kill(g_procs[i], SIGKILL);
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < g_nprocs; i++)
        if (g_procs[i] == pid)
            g_procs[i] = 0;
}

/* Starts argv[0] with stdout and stderr appended to log. The child dies
 * with this process (PR_SET_PDEATHSIG), whatever kills it. */
static pid_t spawn(const char *const *argv, const char *log)
{
    if (g_nprocs == MAX_PROCS)
        return -1;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid > 0) {
        g_procs[g_nprocs] = pid;
        g_nprocs = g_nprocs + 1;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return pid;
}

/* Waits for pid; returns its exit code, 128 + signal, or -1. */
static int reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            untrack(pid);
            return -1;
        }
    untrack(pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void kill_reap(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        reap(pid);
    }
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(path);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(CHP_ENV_MAX_BYTES + 1);
    size_t n = f && buf ? fread(buf, 1, CHP_ENV_MAX_BYTES + 1, f) : 0;
    if (f)
        fclose(f);
    if (!n || n > CHP_ENV_MAX_BYTES) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* ---- control API ---- */

static int ctl_send(void *s, const char *cmd, const void *arg, size_t len)
{
    if (zmq_send(s, cmd, strlen(cmd), (arg ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
        return -1;
    return arg && zmq_send(s, arg, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

/* Waits for a reply: 0 for "ok", 1 for "error" (its line in out), -1 when
 * none came within timeout_ms or it was malformed. out is NUL-terminated. */
static int ctl_recv(void *s, char *out, size_t cap, int timeout_ms)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    double end = now_ms() + timeout_ms;
    for (;;) {
        if (g_stop)
            return -1;
        long left = (long)(end - now_ms());
        int rc = zmq_poll(&it, 1, left > 0 ? left : 0);
        if (rc > 0)
            break;
        if ((rc == 0 && left <= 0) || (rc < 0 && errno != EINTR))
            return -1;
    }
    char st[8] = "";
    int sl = zmq_recv(s, st, sizeof st - 1, ZMQ_DONTWAIT), more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    if (sl < 0 || !more)
        return -1;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, 0) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    size_t n = zmq_msg_size(&m) < cap ? zmq_msg_size(&m) : cap - 1;
    memcpy(out, zmq_msg_data(&m), n);
    out[n] = '\0';
    more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    if (more)
        return -1;
    return sl == 2 && !memcmp(st, "ok", 2) ? 0 : 1;
}

static int ctl_call(void *s, const char *cmd, const void *arg, size_t len, char *out, size_t cap)
{
    if (ctl_send(s, cmd, arg, len) != 0)
        return -1;
    return ctl_recv(s, out, cap, CTL_TIMEOUT);
}

/* The integer after "key: " at the start of a line of a status reply. */
static long long status_value(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == ':' && p[kl + 1] == ' ')
            return strtoll(p + kl + 2, NULL, 10);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

static int read_status(struct bench *b, int i, long long out[NSTAT])
{
    char text[STATUS_CAP];
    if (ctl_call(b->nd[i].ctl, "status", NULL, 0, text, sizeof text) != 0) {
        fprintf(stderr, "bench-mesh: node %d does not answer `status`\n", i);
        return -1;
    }
    for (int k = 0; k < NSTAT; k++)
        if ((out[k] = status_value(text, stat_keys[k])) < 0) {
            fprintf(stderr, "bench-mesh: node %d status lacks '%s'\n", i, stat_keys[k]);
            return -1;
        }
    return 0;
}

/* ---- the mesh ---- */

static int start_nodes(struct bench *b)
{
    for (int i = 0; i < b->nodes; i++) {
        struct node *d = &b->nd[i];
        char log[320], ep[320];
        snprintf(d->home, sizeof d->home, "%s/n%d", b->dir, i);
        snprintf(log, sizeof log, "%s/n%d.log", b->dir, i);
        const char *argv[] = {b->chapard,    "--home",         d->home, "--listen",
                              "127.0.0.1:0", "--no-discovery", NULL};
        if ((d->pid = spawn(argv, log)) < 0) {
            perror("bench-mesh: fork");
            return -1;
        }
        d->alive = 1;
        int zero = 0;
        d->ctl = zmq_socket(b->zctx, ZMQ_DEALER);
        d->sub = zmq_socket(b->zctx, ZMQ_SUB);
        if (!d->ctl || !d->sub)
            return -1;
        zmq_setsockopt(d->ctl, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(d->sub, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(d->sub, ZMQ_SUBSCRIBE, "envelope", 8);
        snprintf(ep, sizeof ep, "ipc://%s/control", d->home);
        if (zmq_connect(d->ctl, ep) != 0)
            return -1;
        snprintf(ep, sizeof ep, "ipc://%s/events", d->home);
        if (zmq_connect(d->sub, ep) != 0)
            return -1;
        if (ctl_send(d->ctl, "address", NULL, 0) != 0)
            return -1;
    }
    /* The requests wait in the DEALERs until each daemon binds. */
    for (int i = 0; i < b->nodes; i++) {
        struct node *d = &b->nd[i];
        chp_addr a;
        if (ctl_recv(d->ctl, d->addr, sizeof d->addr, 15000) != 0 ||
            chp_addr_parse(d->addr, strlen(d->addr), &a) != CHP_OK) {
            fprintf(stderr, "bench-mesh: node %d did not start (see %s.log)\n", i, d->home);
            return -1;
        }
        memcpy(d->key, a.key, 32);
    }
    return 0;
}

static int dial_random(struct bench *b)
{
    int order[MAX_NODES];
    char reply[256];
    for (int i = 0; i < b->nodes; i++) {
        int m = 0;
        for (int j = 0; j < b->nodes; j++)
            if (j != i)
                order[m++] = j;
        for (int k = 0; k < b->peers && k < m; k++) {
            int r = k + rng_below(b, m - k), j = order[r];
            order[r] = order[k];
            order[k] = j;
            if (ctl_call(b->nd[i].ctl, "peer-add", b->nd[j].addr, strlen(b->nd[j].addr), reply,
                         sizeof reply) != 0) {
                fprintf(stderr, "bench-mesh: node %d peer-add %d: %s\n", i, j, reply);
                return -1;
            }
        }
    }
    return 0;
}

/* Rebuilds adj from every live node's `peers` (a link counts when either
 * end reports it connected); returns the number of links or -1. */
static int read_graph(struct bench *b)
{
    static const size_t cap = 64 * 1024;
    char *text = malloc(cap);
    int links = 0;
    if (!text)
        return -1;
    memset(b->adj, 0, (size_t)b->nodes * (size_t)b->nodes);
    for (int i = 0; i < b->nodes; i++) {
        if (!b->nd[i].alive)
            continue;
        if (ctl_call(b->nd[i].ctl, "peers", NULL, 0, text, cap) != 0) {
            fprintf(stderr, "bench-mesh: node %d does not answer `peers`\n", i);
            free(text);
            return -1;
        }
        for (char *p = text; *p;) {
            uint8_t key[32];
            char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            if (len > 75 && unhex32(p, len, key) == 0 && !strncmp(p + 64, "\tconnected\t", 11))
                for (int j = 0; j < b->nodes; j++)
                    if (b->nd[j].alive && j != i && !memcmp(b->nd[j].key, key, 32) &&
                        !b->adj[i * b->nodes + j]) {
                        b->adj[i * b->nodes + j] = b->adj[j * b->nodes + i] = 1;
                        links++;
                    }
            p += len + (nl != NULL);
        }
    }
    free(text);
    return links;
}

/* Components of the live nodes in adj into b->comp, and their average
 * degree; returns the number of components, with the size of the largest
 * and the number of isolated nodes. */
static int components(struct bench *b, int *largest, int *isolated)
{
    int n = b->nodes, queue[MAX_NODES], ncomp = 0, live = 0;
    long degsum = 0;
    *largest = *isolated = 0;
    for (int i = 0; i < n; i++)
        b->comp[i] = -1;
    for (int s = 0; s < n; s++) {
        if (!b->nd[s].alive || b->comp[s] >= 0)
            continue;
        int head = 0, tail = 0;
        queue[tail++] = s;
        b->comp[s] = ncomp;
        while (head < tail) {
            int u = queue[head++];
            for (int v = 0; v < n; v++)
                if (b->adj[u * n + v] && b->comp[v] < 0) {
                    b->comp[v] = ncomp;
                    queue[tail++] = v;
                }
        }
        if (tail > *largest)
            *largest = tail;
        if (tail == 1)
            (*isolated)++;
        ncomp++;
    }
    for (int u = 0; u < n; u++) {
        if (!b->nd[u].alive)
            continue;
        live++;
        for (int v = 0; v < n; v++)
            degsum += b->adj[u * n + v];
    }
    b->avg_degree = live ? (double)degsum / live : 0;
    return ncomp;
}

/* Waits until every node has a link and the graph is connected, then until
 * the number of links holds still for a second (or 5 s pass). */
static int wait_mesh(struct bench *b)
{
    double start = now_ms(), connected_at = 0, still_since = 0;
    int last = -1, largest, isolated;
    for (;;) {
        if (g_stop)
            return -1;
        int links = read_graph(b);
        if (links < 0)
            return -1;
        int nc = components(b, &largest, &isolated);
        double t = now_ms();
        if (nc == 1 && !connected_at)
            connected_at = t;
        if (links != last)
            still_since = t;
        last = links;
        if (connected_at && (t - still_since >= 1000 || t - connected_at >= 5000)) {
            printf("mesh: %d nodes, %d links, average degree %.2f, formed in %.0f ms\n", b->nodes,
                   links, b->avg_degree, connected_at - start);
            return 0;
        }
        if (t - start > MESH_DEADLINE) {
            fprintf(stderr, "bench-mesh: mesh not connected after %.0f s (%d components)\n",
                    MESH_DEADLINE / 1e3, nc);
            return -1;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ---- envelopes ---- */

/* chapar-mkenv on every core, then every envelope read into memory. */
static int make_envelopes(struct bench *b)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = cores < 1 ? 1 : cores > 8 ? 8 : (int)cores, per = (b->nenv + jobs - 1) / jobs;
    pid_t pids[8];
    char prefix[8][300], count[16], size[16], log[300];
    snprintf(size, sizeof size, "%d", b->payload);
    snprintf(log, sizeof log, "%s/mkenv.log", b->dir);
    for (int j = 0; j < jobs; j++) {
        int c = b->nenv - j * per < per ? b->nenv - j * per : per;
        snprintf(prefix[j], sizeof prefix[j], "%s/e%d-", b->dir, j);
        snprintf(count, sizeof count, "%d", c > 0 ? c : 0);
        const char *argv[] = {b->mkenv, "-n", count, "-s", size, prefix[j], NULL};
        pids[j] = c > 0 ? spawn(argv, log) : 0;
        if (pids[j] < 0)
            return -1;
    }
    int bad = 0;
    for (int j = 0; j < jobs; j++)
        if (pids[j] > 0 && reap(pids[j]) != 0)
            bad = 1;
    if (bad || g_stop) {
        fprintf(stderr, "bench-mesh: chapar-mkenv failed (see %s)\n", log);
        return -1;
    }
    for (int e = 0; e < b->nenv; e++) {
        char path[320];
        struct env *v = &b->env[e];
        snprintf(path, sizeof path, "%s%d", prefix[e / per], e % per);
        if (!(v->bytes = read_file(path, &v->len))) {
            fprintf(stderr, "bench-mesh: cannot read %s\n", path);
            return -1;
        }
        chp_envelope_id(v->bytes, v->len, v->id);
        unlink(path);
    }
    return 0;
}

static int find_env(const struct bench *b, const uint8_t id[32])
{
    for (int e = 0; e < b->nenv; e++)
        if (!memcmp(b->env[e].id, id, 32))
            return e;
    return -1;
}

/* ---- publishing and arrivals ---- */

static void drain_events(struct bench *b, int i, double t)
{
    for (;;) {
        char topic[16], hex[80];
        int tl = zmq_recv(b->nd[i].sub, topic, sizeof topic, ZMQ_DONTWAIT), more = 0;
        if (tl < 0)
            return;
        size_t ml = sizeof more;
        zmq_getsockopt(b->nd[i].sub, ZMQ_RCVMORE, &more, &ml);
        if (!more)
            continue;
        int hl = zmq_recv(b->nd[i].sub, hex, sizeof hex, ZMQ_DONTWAIT);
        uint8_t id[32];
        int e = hl >= 64 && unhex32(hex, (size_t)hl, id) == 0 ? find_env(b, id) : -1;
        if (e >= 0 && b->arrive[(size_t)e * (size_t)b->nodes + (size_t)i] == 0)
            b->arrive[(size_t)e * (size_t)b->nodes + (size_t)i] = t;
    }
}

/* Takes events from every live node (and the reply on ctl, when not NULL)
 * until the reply came (1), the clock reached until (0), or a failure (-1).
 * An event is timed when the poll that saw it returned. */
static int pump(struct bench *b, void *ctl, double until, char *reply, size_t cap)
{
    zmq_pollitem_t items[MAX_NODES + 1];
    int map[MAX_NODES];
    for (;;) {
        if (g_stop)
            return -1;
        int ni = 0;
        for (int i = 0; i < b->nodes; i++)
            if (b->nd[i].alive) {
                items[ni] = (zmq_pollitem_t){b->nd[i].sub, 0, ZMQ_POLLIN, 0};
                map[ni++] = i;
            }
        int ci = ni;
        if (ctl)
            items[ni++] = (zmq_pollitem_t){ctl, 0, ZMQ_POLLIN, 0};
        double t = now_ms();
        if (t >= until)
            return 0;
        int rc = zmq_poll(items, ni, (long)(until - t) + 1);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        t = now_ms();
        for (int k = 0; k < ci; k++)
            if (items[k].revents & ZMQ_POLLIN)
                drain_events(b, map[k], t);
        if (ctl && (items[ci].revents & ZMQ_POLLIN))
            return ctl_recv(ctl, reply, cap, 0) == 0 ? 1 : -1;
    }
}

static int expected(const struct bench *b, int e, int i)
{
    int p = b->env[e].publisher;
    return i != p && b->nd[i].alive && b->comp[i] == b->comp[p];
}

static long missing(const struct bench *b, int first, int count)
{
    long m = 0;
    for (int e = first; e < first + count; e++)
        for (int i = 0; i < b->nodes; i++)
            if (expected(b, e, i) && b->arrive[(size_t)e * (size_t)b->nodes + (size_t)i] == 0)
                m++;
    return m;
}

static int publish_batch(struct bench *b, int first, int count)
{
    int live[MAX_NODES], nlive = 0;
    char reply[256];
    for (int i = 0; i < b->nodes; i++)
        if (b->nd[i].alive)
            live[nlive++] = i;
    double next = now_ms();
    for (int e = first; e < first + count; e++) {
        if (pump(b, NULL, next, NULL, 0) < 0)
            return -1;
        struct env *v = &b->env[e];
        v->publisher = live[rng_below(b, nlive)];
        void *ctl = b->nd[v->publisher].ctl;
        v->t_pub = now_ms();
        if (ctl_send(ctl, "publish", v->bytes, v->len) != 0 ||
            pump(b, ctl, v->t_pub + CTL_TIMEOUT, reply, sizeof reply) != 1) {
            fprintf(stderr, "bench-mesh: publish at node %d failed: %s\n", v->publisher,
                    g_stop ? "interrupted" : reply);
            return -1;
        }
        v->t_reply = now_ms();
        next = v->t_pub + SPACING_MIN + (SPACING_MAX - SPACING_MIN) * rng_unit(b);
    }
    /* Until everything expected arrived, then a quiet grace period so that
     * trailing announcements are counted too. */
    double end = now_ms() + DRAIN_MS;
    while (missing(b, first, count) && now_ms() < end)
        if (pump(b, NULL, now_ms() + 20, NULL, 0) < 0)
            return -1;
    return pump(b, NULL, now_ms() + GRACE_MS, NULL, 0) < 0 ? -1 : 0;
}

/* Every live node's status into snapshot k. */
static int snapshot(struct bench *b, int k)
{
    for (int i = 0; i < b->nodes; i++)
        if (b->nd[i].alive && read_status(b, i, b->nd[i].st[k]) != 0)
            return -1;
    return 0;
}

/* The figures of envelopes first .. first+count-1, with the counters
 * between snapshots k0 and k1 of the live nodes. */
struct figures {
    long want, got, extra, deliveries;
    double p50, p90, p99, max;
    double cost, copies, other; /* per delivery, in envelope sizes */
    long long sum[NSTAT];
};

static int measure(const struct bench *b, int first, int count, int k0, int k1, struct figures *f)
{
    double *lat = malloc((size_t)count * (size_t)b->nodes * sizeof *lat);
    size_t nlat = 0, len = b->env[first].len;
    if (!lat)
        return -1;
    memset(f, 0, sizeof *f);
    for (int i = 0; i < b->nodes; i++)
        for (int k = 0; b->nd[i].alive && k < NSTAT; k++)
            f->sum[k] += b->nd[i].st[k1][k] - b->nd[i].st[k0][k];
    for (int e = first; e < first + count; e++) {
        const struct env *v = &b->env[e];
        for (int i = 0; i < b->nodes; i++) {
            double a = b->arrive[(size_t)e * (size_t)b->nodes + (size_t)i];
            if (expected(b, e, i)) {
                f->want++;
                if (a > 0) {
                    f->got++;
                    lat[nlat++] = a - v->t_pub;
                }
            } else if (a > 0 && i != v->publisher && b->nd[i].alive) {
                f->extra++; /* a survivor outside the publisher's component */
            }
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp_double);
    f->p50 = pct(lat, nlat, 50);
    f->p90 = pct(lat, nlat, 90);
    f->p99 = pct(lat, nlat, 99);
    f->max = pct(lat, nlat, 100);
    free(lat);
    f->deliveries = f->got + f->extra;
    double d = f->deliveries ? (double)f->deliveries : NAN;
    f->cost = (double)f->sum[S_RX] / d / (double)len;
    f->copies = ((double)f->deliveries + (double)f->sum[S_DUPS]) / d;
    f->other = f->cost - f->copies * (double)(len + 1) / (double)len; /* 1 byte frame type */
    return 0;
}

static void print_row(const char *what, const struct figures *f)
{
    char del[48];
    snprintf(del, sizeof del, "%ld/%ld %.2f%%", f->got, f->want,
             f->want ? 100.0 * (double)f->got / (double)f->want : 100.0);
    printf("  %-9s %-20s %7.2f %7.2f %7.2f %7.1f %8.3f %7.3f %8.3f %7lld %7lld %7.2f\n", what, del,
           f->p50, f->p90, f->p99, f->max, f->cost, f->copies, f->other, f->sum[S_PRUNES],
           f->sum[S_GRAFTS], (double)f->sum[S_IHAVE] / (double)f->deliveries);
}

static void print_verbose(struct bench *b, int first, int count)
{
    for (int i = 0; i < b->nodes; i++) {
        char peers[8192];
        if (!b->nd[i].alive)
            continue;
        fprintf(stderr, "node %2d:", i);
        for (int k = 0; k < NSTAT; k++)
            fprintf(stderr, " %s %lld", stat_keys[k], b->nd[i].st[2][k] - b->nd[i].st[0][k]);
        fprintf(stderr, "\n");
        if (ctl_call(b->nd[i].ctl, "peers", NULL, 0, peers, sizeof peers) == 0)
            fprintf(stderr, "%s", peers);
    }
    for (int e = first; e < first + count; e++) {
        const struct env *v = &b->env[e];
        double worst = 0;
        int slow = 0;
        for (int i = 0; i < b->nodes; i++) {
            double a = b->arrive[(size_t)e * (size_t)b->nodes + (size_t)i] - v->t_pub;
            if (expected(b, e, i) && a > 0) {
                worst = a > worst ? a : worst;
                slow += a > 100;
            }
        }
        fprintf(stderr, "envelope %d: at node %d, %d receivers after 100 ms, slowest %.1f ms\n", e,
                v->publisher, slow, worst);
    }
}

/* Publishes a batch in two halves (each drained, with status read around
 * them) and prints the figures of each half and of the whole. */
static int run_batch(struct bench *b, const char *label, int first, int count)
{
    int live = 0, half = count / 2;
    struct figures f1, f2, all;
    for (int i = 0; i < b->nodes; i++)
        live += b->nd[i].alive;
    if (snapshot(b, 0) || publish_batch(b, first, half) || snapshot(b, 1) ||
        publish_batch(b, first + half, count - half) || snapshot(b, 2))
        return -1;
    if ((half && measure(b, first, half, 0, 1, &f1)) ||
        measure(b, first + half, count - half, 1, 2, &f2) || measure(b, first, count, 0, 2, &all))
        return -1;
    if (b->verbose)
        print_verbose(b, first, count);

    double *rtt = malloc((size_t)count * sizeof *rtt);
    if (!rtt)
        return -1;
    for (int e = first; e < first + count; e++)
        rtt[e - first] = b->env[e].t_reply - b->env[e].t_pub;
    qsort(rtt, (size_t)count, sizeof *rtt, cmp_double);
    printf("\n%s: %d envelopes of %zu bytes at random live nodes (%d), %.0f-%.0f ms apart\n", label,
           count, b->env[first].len, live, SPACING_MIN, SPACING_MAX);
    printf("  %-9s %-20s %7s %7s %7s %7s %8s %7s %8s %7s %7s %7s\n", "envelopes", "delivered",
           "p50 ms", "p90 ms", "p99 ms", "max ms", "rx/size", "copies", "ids+ctl", "prunes",
           "grafts", "ids/dlv");
    char what[32];
    if (half) {
        snprintf(what, sizeof what, "1-%d", half);
        print_row(what, &f1);
    }
    snprintf(what, sizeof what, "%d-%d", half + 1, count);
    print_row(what, &f2);
    print_row("all", &all);
    printf("  delivery: %s; publish reply p50 %.2f ms, p99 %.2f ms (check + commit + forward)\n",
           all.got == all.want ? "100 %, as required" : "MISSED: must be 100 %",
           pct(rtt, (size_t)count, 50), pct(rtt, (size_t)count, 99));
    if (all.extra)
        printf("  also reached %ld survivor(s) outside the publisher's component\n", all.extra);
    printf("  gossip cost: %.3f x envelope size over the batch, %.3f in the second half "
           "(envelopes %d-%d) (target <= 1.3: %s)\n",
           all.cost, f2.cost, half + 1, count, f2.cost <= 1.3 ? "met" : "MISSED");
    printf("  flooding in this mesh: average degree %.2f - 1 = %.2f x envelope size "
           "(gossip/flooding %.3f, steady %.3f)\n",
           b->avg_degree, b->avg_degree - 1, all.cost / (b->avg_degree - 1),
           f2.cost / (b->avg_degree - 1));
    printf(
        "  sync rounds %lld, rejected %lld, envelopes stored +%lld (deliveries + %d published)\n",
        all.sum[S_SYNC], all.sum[S_REJECTED], all.sum[S_STORED], count);
    free(rtt);
    return 0;
}

/* SIGKILL for kill_frac of the nodes; prints the survivors' connectivity
 * in the link graph read just before. */
static void kill_some(struct bench *b)
{
    int order[MAX_NODES], nkill = (int)lround(b->kill_frac * b->nodes), largest, isolated;
    if (nkill > b->nodes - 2)
        nkill = b->nodes - 2;
    for (int i = 0; i < b->nodes; i++)
        order[i] = i;
    for (int k = 0; k < nkill; k++) {
        int r = k + rng_below(b, b->nodes - k), v = order[r];
        order[r] = order[k];
        order[k] = v;
        struct node *d = &b->nd[v];
        kill_reap(d->pid);
        d->pid = 0;
        d->alive = 0;
        zmq_close(d->ctl);
        zmq_close(d->sub);
        d->ctl = d->sub = NULL;
    }
    int links = 0, n = b->nodes;
    for (int u = 0; u < n; u++)
        for (int v = u + 1; v < n; v++)
            if (!b->nd[u].alive || !b->nd[v].alive)
                b->adj[u * n + v] = b->adj[v * n + u] = 0;
            else
                links += b->adj[u * n + v];
    int nc = components(b, &largest, &isolated);
    printf("\nkilled %d of %d nodes (SIGKILL): %d survivors, %d links among them, average "
           "degree %.2f, %d component%s (largest %d, isolated nodes %d)\n",
           nkill, n, n - nkill, links, b->avg_degree, nc, nc == 1 ? "" : "s", largest, isolated);
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench-mesh [-n NODES] [-k PEERS] [-m ENVELOPES] [-s PAYLOAD] "
            "[--kill-frac F] [--seed S] [--keep] [-v]\n"
            "  -n NODES        chapard processes (default 30, at most %d)\n"
            "  -k PEERS        random neighbours each node dials (default 6)\n"
            "  -m ENVELOPES    envelopes per batch (default 200; two batches)\n"
            "  -s PAYLOAD      payload bytes per envelope (default 900: 1113-byte "
            "envelopes)\n"
            "  --kill-frac F   share of nodes killed before the second batch (default "
            "0.2)\n"
            "  --seed S        random seed (default: from the clock; printed)\n"
            "  --keep          keep the temp dir (daemon logs)\n"
            "  -v              on stderr: status deltas and links of each node, slow\n"
            "                  receivers of each envelope\n"
            "Binaries: $CHAPARD, $CHAPAR_MKENV, else the ones built with this bench.\n",
            MAX_NODES);
}

static int parse_args(struct bench *b, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--keep")) {
            b->keep = 1;
            continue;
        } else if (!strcmp(a, "-v")) {
            b->verbose = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench-mesh: %s needs a value (try --help)\n", a);
            return -1;
        }
        i++;
        long x = strtol(v, &end, 10);
        if (!strcmp(a, "--kill-frac")) {
            b->kill_frac = strtod(v, &end);
            if (*end || b->kill_frac < 0 || b->kill_frac > 0.9)
                end = "x";
        } else if (!strcmp(a, "--seed")) {
            b->seed = strtoull(v, &end, 10);
        } else if (!strcmp(a, "-n")) {
            b->nodes = (int)x;
            end = *end || x < 3 || x > MAX_NODES ? "x" : end;
        } else if (!strcmp(a, "-k")) {
            b->peers = (int)x;
            end = *end || x < 1 || x >= MAX_NODES ? "x" : end;
        } else if (!strcmp(a, "-m")) {
            b->count = (int)x;
            end = *end || x < 1 || x > 100000 ? "x" : end;
        } else if (!strcmp(a, "-s")) {
            b->payload = (int)x;
            end = *end || x < 0 || x > CHP_PAYLOAD_MAX ? "x" : end;
        } else {
            fprintf(stderr, "bench-mesh: unknown option '%s' (try --help)\n", a);
            return -1;
        }
        if (*end) {
            fprintf(stderr, "bench-mesh: %s %s: bad value (try --help)\n", a, v);
            return -1;
        }
    }
    return 0;
}

static void cleanup(struct bench *b)
{
    for (int i = 0; i < b->nodes; i++) {
        struct node *d = &b->nd[i];
        kill_reap(d->pid);
        d->pid = 0;
        if (d->ctl)
            zmq_close(d->ctl);
        if (d->sub)
            zmq_close(d->sub);
        d->ctl = d->sub = NULL;
    }
    if (b->zctx)
        zmq_ctx_term(b->zctx);
    if (b->dir[0] && !b->keep)
        rm_tree(b->dir);
    else if (b->dir[0])
        fprintf(stderr, "bench-mesh: kept %s\n", b->dir);
    for (int e = 0; b->env && e < b->nenv; e++)
        free(b->env[e].bytes);
    free(b->env);
    free(b->arrive);
    free(b->adj);
}

static int run(struct bench *b)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(b->dir, sizeof b->dir, "%s/chapar-mesh-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (strlen(b->dir) > 60 || !mkdtemp(b->dir)) {
        fprintf(stderr, "bench-mesh: cannot make a temp dir under %s (too long or: %s)\n",
                tmp && *tmp ? tmp : "/tmp", strerror(errno));
        b->dir[0] = '\0';
        return -1;
    }
    b->nenv = 2 * b->count;
    b->env = calloc((size_t)b->nenv, sizeof *b->env);
    b->arrive = calloc((size_t)b->nenv * (size_t)b->nodes, sizeof *b->arrive);
    b->adj = calloc((size_t)b->nodes * (size_t)b->nodes, 1);
    if (!b->env || !b->arrive || !b->adj || !(b->zctx = zmq_ctx_new()))
        return -1;
    printf("bench-mesh: %d nodes, each dials %d, %d envelopes per batch, payload %d, kill "
           "%.0f %%, seed %llu\n",
           b->nodes, b->peers, b->count, b->payload, b->kill_frac * 100,
           (unsigned long long)b->seed);
    fflush(stdout);
    double t = now_ms();
    if (make_envelopes(b) != 0)
        return -1;
    printf("envelopes: %d of %zu bytes made in %.1f s (proof of work, before any timing)\n",
           b->nenv, b->env[0].len, (now_ms() - t) / 1e3);
    fflush(stdout);
    if (start_nodes(b) != 0 || dial_random(b) != 0 || wait_mesh(b) != 0)
        return -1;
    fflush(stdout);
    printf("(latency: `publish` sent -> `envelope` event at a receiver; rx/size: bytes received\n"
           "per delivery / envelope size = copies (full envelopes received per delivery) +\n"
           "ids+ctl (announcements and other frames); ids/dlv: ids announced per delivery)\n");
    if (run_batch(b, "batch 1 (all nodes)", 0, b->count) != 0)
        return -1;
    fflush(stdout);
    if (read_graph(b) < 0)
        return -1;
    kill_some(b);
    if (run_batch(b, "batch 2 (survivors, right after the kill)", b->count, b->count) != 0)
        return -1;
    int largest, isolated, links = read_graph(b), nc = components(b, &largest, &isolated);
    printf("\nafter batch 2: %d links among survivors, average degree %.2f, %d component%s\n",
           links, b->avg_degree, nc, nc == 1 ? "" : "s");
    return links < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    b.nodes = 30;
    b.peers = 6;
    b.count = 200;
    b.payload = 900;
    b.kill_frac = 0.2;
    b.seed = (uint64_t)time(NULL);
    b.chapard = getenv("CHAPARD") ? getenv("CHAPARD") : CHP_CHAPARD_PATH;
    b.mkenv = getenv("CHAPAR_MKENV") ? getenv("CHAPAR_MKENV") : CHP_MKENV_PATH;
    if (parse_args(&b, argc, argv) != 0)
        return 2;
    b.rng = b.seed;
    if (chp_crypto_init() != CHP_OK) {
        fprintf(stderr, "bench-mesh: libsodium failed to initialise\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = run(&b);
    if (rc != 0 && b.dir[0])
        b.keep = 1; /* keep the logs of a failed run */
    cleanup(&b);
    if (g_stop)
        fprintf(stderr, "bench-mesh: interrupted\n");
    return rc == 0 ? 0 : 1;
}
