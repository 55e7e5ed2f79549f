/* bench_latency.c - delivery latency along a chain of real chapard
 * processes on loopback: A-B-C-D-E-F, so 1 to 5 hops from A.
 *
 *   bench-latency [-n SAMPLES] [-s PAYLOAD] [--keep]
 *
 * Each sample publishes one envelope at A with the control API's `publish`
 * and times, from just before the request is sent, the `envelope` event of
 * every other node (the events socket reports an envelope once its
 * transaction committed). The next sample starts when F has it, so the
 * chain is idle for each one. Ten unreported warm-up samples go first.
 *
 * Every hop commits before it forwards: the daemon group-commits what one
 * poll round brought in with one fsync, so an envelope n hops away has been
 * through n + 1 durable commits (A's own in `publish`, then one per hop).
 * The reference, measured between the samples (same disk, same moment) in
 * the same directory, is a raw durable LMDB commit of one envelope with
 * the daemon's flags: the floor of a hop.
 *
 * Envelopes come from chapar-mkenv before any timing. CHAPARD and
 * CHAPAR_MKENV in the environment override the built binaries. Exit 0
 * after a complete run (missed targets say so), 1 on a failure to run, 2
 * on bad usage. */
#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/envelope.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
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

#define CHAIN       6 /* A..F */
#define WARMUP      10
#define CTL_TIMEOUT 5000   /* ms for one control request */
#define SAMPLE_MS   5000.0 /* ms for one envelope to reach F */
#define PAUSE_MS    2.0    /* idle ms between samples */
#define MAX_PROCS   (CHAIN + 8)

/* Signal cleanup: the only mutable globals. The handler SIGKILLs every
 * child still tracked; the main path then notices stop and cleans up. */
static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_nprocs;
static pid_t g_procs[MAX_PROCS];

struct node {
    char home[300];
    pid_t pid;
    void *ctl, *sub;
    char addr[CHP_ADDR_STR_MAX + 1];
};

struct env {
    uint8_t *bytes;
    size_t len;
    uint8_t id[32];
};

struct bench {
    int samples, payload, keep;
    const char *chapard, *mkenv;
    char dir[256];
    void *zctx;
    struct node nd[CHAIN];
    struct env *env;
    int nenv;
    MDB_env *ref;
};

/* ---- small helpers ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
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

/* ---- reference: one durable LMDB commit ---- */

/* A raw LMDB environment in DIR/ref with the daemon's flags and durability
 * (fsync per commit). */
static int ref_open(struct bench *b)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/ref", b->dir);
    if (mkdir(dir, 0700) != 0 || mdb_env_create(&b->ref) != 0)
        return -1;
    if (mdb_env_set_mapsize(b->ref, 256u << 20) != 0 ||
        mdb_env_open(b->ref, dir, MDB_NOTLS | MDB_NORDAHEAD, 0600) != 0) {
        mdb_env_close(b->ref);
        b->ref = NULL;
        return -1;
    }
    return 0;
}

/* Times one write transaction putting envelope e under its id: the floor
 * of what a hop commits. Returns ms, or -1 on an LMDB error. */
static double ref_commit(struct bench *b, int e)
{
    const struct env *v = &b->env[e];
    MDB_val k = {32, (void *)v->id}, val = {v->len, v->bytes};
    MDB_txn *txn;
    MDB_dbi dbi;
    double t0 = now_ms();
    int rc = mdb_txn_begin(b->ref, NULL, 0, &txn);
    if (rc != 0)
        return -1;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) == 0 && (rc = mdb_put(txn, dbi, &k, &val, 0)) == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    return rc == 0 ? now_ms() - t0 : -1;
}

/* ---- the chain ---- */

static int start_chain(struct bench *b)
{
    char reply[256];
    for (int i = 0; i < CHAIN; i++) {
        struct node *d = &b->nd[i];
        char log[320], ep[320];
        snprintf(d->home, sizeof d->home, "%s/%c", b->dir, 'A' + i);
        snprintf(log, sizeof log, "%s/%c.log", b->dir, 'A' + i);
        const char *argv[] = {b->chapard,    "--home",         d->home, "--listen",
                              "127.0.0.1:0", "--no-discovery", NULL};
        if ((d->pid = spawn(argv, log)) < 0) {
            perror("bench-latency: fork");
            return -1;
        }
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
        if (zmq_connect(d->sub, ep) != 0 || ctl_send(d->ctl, "address", NULL, 0) != 0)
            return -1;
    }
    for (int i = 0; i < CHAIN; i++) /* the requests wait until each daemon binds */
        if (ctl_recv(b->nd[i].ctl, b->nd[i].addr, sizeof b->nd[i].addr, 15000) != 0) {
            fprintf(stderr, "bench-latency: node %c did not start (see %s.log)\n", 'A' + i,
                    b->nd[i].home);
            return -1;
        }
    for (int i = 0; i + 1 < CHAIN; i++)
        if (ctl_call(b->nd[i].ctl, "peer-add", b->nd[i + 1].addr, strlen(b->nd[i + 1].addr), reply,
                     sizeof reply) != 0) {
            fprintf(stderr, "bench-latency: %c peer-add %c: %s\n", 'A' + i, 'B' + i, reply);
            return -1;
        }
    /* Linked when the ends have one neighbour and the middle two each. */
    double end = now_ms() + 20000;
    for (int done = 0; !done;) {
        done = 1;
        for (int i = 0; i < CHAIN && done; i++) {
            char text[4096];
            long long want = i == 0 || i == CHAIN - 1 ? 1 : 2;
            if (ctl_call(b->nd[i].ctl, "status", NULL, 0, text, sizeof text) != 0)
                return -1;
            done = status_value(text, "peers connected") == want;
        }
        if (!done && (g_stop || now_ms() > end)) {
            fprintf(stderr, "bench-latency: the chain did not link up in 20 s\n");
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    struct timespec settle = {0, 300 * 1000 * 1000}; /* first syncs of empty stores */
    nanosleep(&settle, NULL);
    return 0;
}

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
        fprintf(stderr, "bench-latency: chapar-mkenv failed (see %s)\n", log);
        return -1;
    }
    for (int e = 0; e < b->nenv; e++) {
        char path[320];
        struct env *v = &b->env[e];
        snprintf(path, sizeof path, "%s%d", prefix[e / per], e % per);
        if (!(v->bytes = read_file(path, &v->len))) {
            fprintf(stderr, "bench-latency: cannot read %s\n", path);
            return -1;
        }
        chp_envelope_id(v->bytes, v->len, v->id);
        unlink(path);
    }
    return 0;
}

/* One sample: publishes env e at A and fills at[i] with the ms from just
 * before the request to node i's event (at[0]: to A's reply). Returns 1
 * when every node had it in time, 0 when not (at[i] < 0 for those
 * missing), -1 on a failure. */
static int sample(struct bench *b, int e, double at[CHAIN])
{
    const struct env *v = &b->env[e];
    zmq_pollitem_t items[CHAIN + 1];
    char reply[256];
    for (int i = 0; i < CHAIN; i++) {
        at[i] = -1;
        items[i] = (zmq_pollitem_t){b->nd[i].sub, 0, ZMQ_POLLIN, 0};
    }
    items[CHAIN] = (zmq_pollitem_t){b->nd[0].ctl, 0, ZMQ_POLLIN, 0};
    double t0 = now_ms();
    if (ctl_send(b->nd[0].ctl, "publish", v->bytes, v->len) != 0)
        return -1;
    for (;;) {
        if (g_stop)
            return -1;
        double t = now_ms();
        int all = 1;
        for (int i = 0; i < CHAIN; i++)
            all = all && at[i] >= 0;
        if (all) /* every node: a hop may report after the next one */
            return 1;
        if (t - t0 > SAMPLE_MS)
            return at[0] >= 0 ? 0 : -1;
        int rc = zmq_poll(items, CHAIN + 1, (long)(t0 + SAMPLE_MS - t) + 1);
        if (rc < 0 && errno != EINTR)
            return -1;
        t = now_ms();
        for (int i = 1; rc > 0 && i < CHAIN; i++) {
            char topic[16], hex[80];
            uint8_t id[32];
            while (items[i].revents & ZMQ_POLLIN) {
                int tl = zmq_recv(b->nd[i].sub, topic, sizeof topic, ZMQ_DONTWAIT), more = 0;
                if (tl < 0)
                    break;
                size_t ml = sizeof more;
                zmq_getsockopt(b->nd[i].sub, ZMQ_RCVMORE, &more, &ml);
                int hl = more ? zmq_recv(b->nd[i].sub, hex, sizeof hex, ZMQ_DONTWAIT) : -1;
                if (hl >= 64 && unhex32(hex, (size_t)hl, id) == 0 && !memcmp(id, v->id, 32))
                    at[i] = t - t0;
            }
        }
        if (rc > 0 && (items[CHAIN].revents & ZMQ_POLLIN)) {
            if (ctl_recv(b->nd[0].ctl, reply, sizeof reply, 0) != 0) {
                fprintf(stderr, "bench-latency: publish failed: %s\n", reply);
                return -1;
            }
            at[0] = t - t0;
        }
    }
}

static int run_samples(struct bench *b)
{
    int n = b->samples, lost = 0;
    double *lat = malloc((size_t)(CHAIN + 1) * (size_t)n * sizeof *lat), *ref = lat;
    size_t cnt[CHAIN + 1] = {0}; /* [0]: the reference, then A..F */
    if (!lat)
        return -1;
    for (int e = 0; e < WARMUP + n; e++) {
        double at[CHAIN];
        int rc = sample(b, e, at);
        if (rc < 0) {
            free(lat);
            return -1;
        }
        lost += rc == 0 && e >= WARMUP && at[CHAIN - 1] < 0;
        for (int i = 0; e >= WARMUP && i < CHAIN; i++)
            if (at[i] >= 0)
                lat[(size_t)(i + 1) * (size_t)n + cnt[i + 1]++] = at[i];
        struct timespec pause = {0, (long)(PAUSE_MS * 1e6)};
        nanosleep(&pause, NULL);
        double r = ref_commit(b, e);
        if (r < 0) {
            fprintf(stderr, "bench-latency: the LMDB reference failed in %s/ref\n", b->dir);
            free(lat);
            return -1;
        }
        if (e >= WARMUP)
            ref[cnt[0]++] = r;
        nanosleep(&pause, NULL);
    }
    printf("%-28s %8s %8s %8s %8s %8s %12s\n", "path (durable commits)", "samples", "p50 ms",
           "p90 ms", "p99 ms", "max ms", "p50/commit");
    qsort(ref, cnt[0], sizeof *ref, cmp_double);
    double r50 = pct(ref, cnt[0], 50), p50[CHAIN], p99[CHAIN];
    for (int i = 0; i < CHAIN; i++) {
        double *v = lat + (size_t)(i + 1) * (size_t)n;
        size_t c = cnt[i + 1];
        char label[64];
        qsort(v, c, sizeof *v, cmp_double);
        p50[i] = pct(v, c, 50);
        p99[i] = pct(v, c, 99);
        if (i == 0)
            snprintf(label, sizeof label, "publish reply at A (1)");
        else
            snprintf(label, sizeof label, "%d hop%s, at %c (%d)", i, i == 1 ? "" : "s", 'A' + i,
                     i + 1);
        printf("%-28s %8zu %8.2f %8.2f %8.2f %8.2f %12.1f\n", label, c, p50[i], pct(v, c, 90),
               p99[i], pct(v, c, 100), p50[i] / r50);
    }
    printf("%-28s %8zu %8.2f %8.2f %8.2f %8.2f %12.1f\n", "reference: one LMDB commit", cnt[0], r50,
           pct(ref, cnt[0], 90), pct(ref, cnt[0], 99), pct(ref, cnt[0], 100), 1.0);
    double per_hop = (p50[CHAIN - 1] - p50[1]) / (CHAIN - 2);
    printf("\nper hop beyond the first (p50, (5 hops - 1 hop) / 4): %.2f ms = %.1f x one "
           "LMDB commit\n",
           per_hop, per_hop / r50);
    printf("lost: %d of %d samples did not reach F within %.0f s\n", lost, n, SAMPLE_MS / 1e3);
    printf("targets: 1 hop p50 <= 2 ms: %s (%.2f); 1 hop p99 <= 10 ms: %s (%.2f); "
           "5 hops p50 <= 10 ms: %s (%.2f)\n",
           p50[1] <= 2 ? "met" : "MISSED", p50[1], p99[1] <= 10 ? "met" : "MISSED", p99[1],
           p50[CHAIN - 1] <= 10 ? "met" : "MISSED", p50[CHAIN - 1]);
    free(lat);
    return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-latency [-n SAMPLES] [-s PAYLOAD] [--keep]\n"
               "  -n SAMPLES   envelopes published at the head of the chain (default 500)\n"
               "  -s PAYLOAD   payload bytes per envelope (default 900: 1113-byte envelopes)\n"
               "  --keep       keep the temp dir (daemon logs)\n"
               "Binaries: $CHAPARD, $CHAPAR_MKENV, else the ones built with this bench.\n");
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
        }
        if (!v || (strcmp(a, "-n") && strcmp(a, "-s"))) {
            fprintf(stderr, "bench-latency: %s: unknown option or no value (try --help)\n", a);
            return -1;
        }
        i++;
        long x = strtol(v, &end, 10);
        if (*end || x < (a[1] == 'n' ? 1 : 0) ||
            x > (a[1] == 'n' ? 1000000 : (long)CHP_PAYLOAD_MAX)) {
            fprintf(stderr, "bench-latency: %s %s: bad value (try --help)\n", a, v);
            return -1;
        }
        *(a[1] == 'n' ? &b->samples : &b->payload) = (int)x;
    }
    return 0;
}

static void cleanup(struct bench *b)
{
    for (int i = 0; i < CHAIN; i++) {
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
    if (b->ref)
        mdb_env_close(b->ref);
    if (b->dir[0] && !b->keep)
        rm_tree(b->dir);
    else if (b->dir[0])
        fprintf(stderr, "bench-latency: kept %s\n", b->dir);
    for (int e = 0; b->env && e < b->nenv; e++)
        free(b->env[e].bytes);
    free(b->env);
}

static int run(struct bench *b)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(b->dir, sizeof b->dir, "%s/chapar-lat-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (strlen(b->dir) > 60 || !mkdtemp(b->dir)) {
        fprintf(stderr, "bench-latency: cannot make a temp dir under %s (too long or: %s)\n",
                tmp && *tmp ? tmp : "/tmp", strerror(errno));
        b->dir[0] = '\0';
        return -1;
    }
    b->nenv = WARMUP + b->samples;
    if (!(b->env = calloc((size_t)b->nenv, sizeof *b->env)) || !(b->zctx = zmq_ctx_new()))
        return -1;
    printf("bench-latency: chain A-B-C-D-E-F on loopback, %d samples (+%d warm-up), payload "
           "%d\n",
           b->samples, WARMUP, b->payload);
    fflush(stdout);
    double t = now_ms();
    if (make_envelopes(b) != 0)
        return -1;
    printf("envelopes: %d of %zu bytes made in %.1f s (proof of work, before any timing)\n",
           b->nenv, b->env[0].len, (now_ms() - t) / 1e3);
    if (ref_open(b) != 0) {
        fprintf(stderr, "bench-latency: cannot open the LMDB reference in %s/ref\n", b->dir);
        return -1;
    }
    fflush(stdout);
    if (start_chain(b) != 0)
        return -1;
    printf("latency from just before `publish` is sent at A to the `envelope` event "
           "(after the commit) at each node;\nin parentheses: durable commits (one fsync each) "
           "on the path\n\n");
    return run_samples(b);
}

int main(int argc, char **argv)
{
    static struct bench b;
    b.samples = 500;
    b.payload = 900;
    b.chapard = getenv("CHAPARD") ? getenv("CHAPARD") : CHP_CHAPARD_PATH;
    b.mkenv = getenv("CHAPAR_MKENV") ? getenv("CHAPAR_MKENV") : CHP_MKENV_PATH;
    if (parse_args(&b, argc, argv) != 0)
        return 2;
    if (chp_crypto_init() != CHP_OK) {
        fprintf(stderr, "bench-latency: libsodium failed to initialise\n");
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
        fprintf(stderr, "bench-latency: interrupted\n");
    return rc == 0 ? 0 : 1;
}
