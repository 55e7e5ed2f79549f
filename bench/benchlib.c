/* benchlib.c - what the benches share (benchlib.h). */
#include "bench/benchlib.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/hex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The only mutable globals: the bench's name, and what the signal handler
 * needs to kill every child still tracked. */
static const char *g_prog = "bench";
static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_nprocs;
static pid_t g_procs[BENCH_PROCS_MAX];

/* ---- clock and figures ---- */

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double bench_now_s(void)
{
    return bench_now_ms() / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_sort(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
}

double bench_pct(const double *v, size_t n, double p)
{
    if (!n)
        return NAN;
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    return v[r ? r - 1 : 0];
}

/* ---- processes ---- */

void bench_init(const char *prog)
{
    g_prog = prog;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    for (int i = 0; i < g_nprocs; i++)
        if (g_procs[i] > 0)
            kill(g_procs[i], SIGKILL);
}

int bench_setup(void)
{
    if (chp_crypto_init() != CHP_OK) {
        fprintf(stderr, "%s: libsodium failed to initialise\n", g_prog);
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int bench_stopped(void)
{
    return g_stop;
}

int bench_exit_code(int rc)
{
    if (g_stop)
        fprintf(stderr, "%s: interrupted\n", g_prog);
    return rc == 0 ? 0 : 1;
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < g_nprocs; i++)
        if (g_procs[i] == pid)
            g_procs[i] = 0;
}

pid_t bench_spawn(const char *const *argv, const char *log)
{
    int slot = 0;
    while (slot < g_nprocs && g_procs[slot] > 0)
        slot++;
    if (slot == BENCH_PROCS_MAX)
        return -1;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid > 0) {
        g_procs[slot] = pid;
        if (slot == g_nprocs)
            g_nprocs = g_nprocs + 1;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return pid;
}

int bench_reap(pid_t pid, long timeout_ms)
{
    int st;
    double end = bench_now_ms() + (double)timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            untrack(pid);
            return -1;
        }
        if (r == 0) {
            if (bench_now_ms() >= end)
                return -1; /* still running: still tracked */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    untrack(pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void bench_kill_reap(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        bench_reap(pid, -1);
    }
}

/* ---- files ---- */

void bench_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            bench_rm_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(path);
}

int bench_rm_store(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
}

int bench_temp_dir(const char *stem, char *dir, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", stem);
    if (strlen(dir) > 60 || !mkdtemp(dir)) {
        fprintf(stderr, "%s: cannot make a temp dir under %s (too long or: %s)\n", g_prog,
                tmp && *tmp ? tmp : "/tmp", strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    return 0;
}

void bench_temp_done(const char *dir, int keep)
{
    if (dir[0] && !keep)
        bench_rm_tree(dir);
    else if (dir[0])
        fprintf(stderr, "%s: kept %s\n", g_prog, dir);
}

/* ---- envelopes ---- */

static uint8_t *read_envelope(const char *path, size_t *len)
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

int bench_make_envelopes(const char *mkenv, const char *dir, int n, int payload,
                         struct bench_env *env)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = cores < 1 ? 1 : cores > 8 ? 8 : (int)cores, per = (n + jobs - 1) / jobs;
    pid_t pids[8];
    char prefix[8][300], count[16], size[16], log[300];
    snprintf(size, sizeof size, "%d", payload);
    snprintf(log, sizeof log, "%s/mkenv.log", dir);
    for (int j = 0; j < jobs; j++) {
        int c = n - j * per < per ? n - j * per : per;
        snprintf(prefix[j], sizeof prefix[j], "%s/e%d-", dir, j);
        snprintf(count, sizeof count, "%d", c > 0 ? c : 0);
        const char *argv[] = {mkenv, "-n", count, "-s", size, prefix[j], NULL};
        pids[j] = c > 0 ? bench_spawn(argv, log) : 0;
        if (pids[j] < 0)
            return -1;
    }
    int bad = 0;
    for (int j = 0; j < jobs; j++)
        if (pids[j] > 0 && bench_reap(pids[j], -1) != 0)
            bad = 1;
    if (bad || g_stop) {
        fprintf(stderr, "%s: chapar-mkenv failed (see %s)\n", g_prog, log);
        return -1;
    }
    for (int e = 0; e < n; e++) {
        char path[320];
        struct bench_env *v = &env[e];
        snprintf(path, sizeof path, "%s%d", prefix[e / per], e % per);
        if (!(v->bytes = read_envelope(path, &v->len))) {
            fprintf(stderr, "%s: cannot read %s\n", g_prog, path);
            return -1;
        }
        chp_envelope_id(v->bytes, v->len, v->id);
        unlink(path);
    }
    return 0;
}

void bench_free_envelopes(struct bench_env *env, int n)
{
    for (int e = 0; env && e < n; e++)
        free(env[e].bytes);
    free(env);
}

/* ---- chapard on loopback ---- */

int bench_send(chp_ctl *c, const char *cmd, const void *arg, size_t len)
{
    const char *args[1] = {arg};
    return chp_ctl_send(c, NULL, chp_ctl_now_ms(), cmd, arg ? 1 : 0, args, &len, 0) == CHP_OK ? 0
                                                                                              : -1;
}

int bench_reply(chp_ctl *c, long timeout_ms, char *out, size_t cap)
{
    chp_ctl_answer a;
    out[0] = '\0';
    if (g_stop || chp_ctl_recv(c, timeout_ms, &a) != 1)
        return -1;
    size_t n = a.len < cap ? a.len : cap - 1;
    memcpy(out, a.body, n);
    out[n] = '\0';
    int ok = a.ok;
    chp_ctl_answer_free(&a);
    return ok ? 0 : 1;
}

int bench_call(chp_ctl *c, const char *cmd, const void *arg, size_t len, char *out, size_t cap)
{
    out[0] = '\0';
    return bench_send(c, cmd, arg, len) != 0 ? -1 : bench_reply(c, BENCH_CTL_MS, out, cap);
}

int bench_node_start(struct bench_node *d, const char *chapard, void *zctx)
{
    char log[320];
    snprintf(log, sizeof log, "%s.log", d->home);
    const char *argv[] = {chapard,       "--home",         d->home, "--listen",
                          "127.0.0.1:0", "--no-discovery", NULL};
    if ((d->pid = bench_spawn(argv, log)) < 0) {
        fprintf(stderr, "%s: fork: %s\n", g_prog, strerror(errno));
        return -1;
    }
    if (chp_ctl_open(d->home, zctx, &d->ctl) != CHP_OK ||
        chp_ctl_subscribe(d->ctl, "envelope") != CHP_OK ||
        bench_send(d->ctl, "address", NULL, 0) != 0) {
        fprintf(stderr, "%s: cannot connect to %s: %s\n", g_prog, d->home, chp_ctl_io_reason());
        return -1;
    }
    return 0;
}

int bench_node_ready(struct bench_node *d, const char *name, long timeout_ms)
{
    chp_addr a;
    int rc = bench_reply(d->ctl, timeout_ms, d->addr, sizeof d->addr);
    d->addr[strcspn(d->addr, "\n")] = '\0'; /* the plain address is the first line */
    if (rc != 0 || chp_addr_parse(d->addr, strlen(d->addr), &a) != CHP_OK) {
        fprintf(stderr, "%s: node %s did not start (see %s.log)\n", g_prog, name, d->home);
        return -1;
    }
    memcpy(d->key, a.key, 32);
    return 0;
}

void bench_node_stop(struct bench_node *d)
{
    bench_kill_reap(d->pid);
    d->pid = 0;
    chp_ctl_destroy(&d->ctl);
}

int bench_next_envelope(struct bench_node *d, uint8_t id[32])
{
    char *topic, *hex;
    size_t len;
    while (chp_ctl_event(d->ctl, &topic, &hex, &len) == 1) {
        int got =
            !strcmp(topic, "envelope") && len >= 64 && chp_hex_decode(hex, 64, id, 32) == CHP_OK;
        free(topic);
        free(hex);
        if (got)
            return 1;
    }
    return 0;
}

long long bench_status_value(const char *text, const char *key)
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
