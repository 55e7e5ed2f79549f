/* harness.c - starts and stops real chapard processes, runs the chapar CLI
 * and polls status counters for the integration tests (see harness.h). */
#define _GNU_SOURCE /* nftw's FTW_DEPTH / FTW_PHYS flags */
#include "harness.h"

#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/identity.h"
#include "proto/keys.h"
#include "proto/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zmq.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_ARGS 64
#define POLL_MS  25

/* The running test's context, for the watchdog only. */
static h_ctx *volatile watched;

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

const char *h_bin(const char *var)
{
    const char *p = getenv(var);
    if (!p || !*p) {
        fail_msg("%s is not set: run through ctest, or export %s=/path/to/binary", var, var);
        abort(); /* not reached: fail_msg jumps back to the runner */
    }
    return p;
}

char *h_path(const h_ctx *h, char *buf, size_t cap, const char *name)
{
    char tmp[1024]; /* buf may lie inside *h */
    snprintf(tmp, sizeof tmp, "%s/%s", h->dir, name);
    size_t l = strlen(tmp);
    if (l >= cap)
        fail_msg("path too long: %s", tmp);
    memcpy(buf, tmp, l + 1);
    return buf;
}

void h_note(const h_ctx *h, const char *fmt, ...)
{
    if (!getenv("CHP_IT_VERBOSE"))
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%6.2f s] ", (double)(chp_mono_ms() - h->t0_ms) / 1000.0);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- setup and teardown ---- */

/* A hung test must not leave daemons behind: ctest would SIGKILL us at
 * its TIMEOUT and orphan them, so kill them first. */
static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "integration harness: watchdog expired or interrupted, killing "
                              "daemons\n";
    h_ctx *h = watched;
    if (h) {
        for (size_t i = 0; i < h->nnodes; i++)
            if (h->nodes[i].pid > 0)
                kill(h->nodes[i].pid, SIGKILL);
        for (size_t i = 0; i < h->naux; i++)
            if (h->aux[i] > 0)
                kill(h->aux[i], SIGKILL);
    }
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing more to do */
    }
    _exit(99);
}

int h_setup(void **state)
{
    static int armed;
    if (!armed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_watchdog;
        sigaction(SIGALRM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);  /* Ctrl-C: the daemons run in our process group, but */
        sigaction(SIGTERM, &sa, NULL); /* a kill of the test alone would orphan them */
        alarm(H_WATCHDOG_S);
        signal(SIGPIPE, SIG_IGN);
        armed = 1;
    }
    h_ctx *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(h->dir, sizeof h->dir, "%s/chp-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(h->dir)) {
        perror("mkdtemp");
        free(h);
        return -1;
    }
    h->t0_ms = chp_mono_ms();
    watched = h;
    *state = h;
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP)
        rmdir(p);
    else
        unlink(p);
    return 0;
}

static void reap_blocking(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

int h_teardown(void **state)
{
    h_ctx *h = *state;
    if (!h)
        return 0;
    for (size_t i = 0; i < h->nnodes; i++)
        if (h->nodes[i].pid > 0) {
            kill(h->nodes[i].pid, SIGKILL);
            reap_blocking(h->nodes[i].pid);
            h->nodes[i].pid = 0;
        }
    for (size_t i = 0; i < h->naux; i++)
        if (h->aux[i] > 0) {
            kill(h->aux[i], SIGKILL);
            reap_blocking(h->aux[i]);
        }
    if (getenv("CHP_IT_KEEP"))
        fprintf(stderr, "integration harness: kept %s\n", h->dir);
    else
        nftw(h->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    watched = NULL;
    free(h);
    *state = NULL;
    return 0;
}

/* ---- processes ---- */

/* posix_spawn with stdin from in_path (NULL: /dev/null) and stdout/stderr
 * to files (err_path NULL: both to out_path, appended). */
static pid_t spawn_in(const char *const *argv, const char *in_path, const char *out_path,
                      const char *err_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_path ? in_path : "/dev/null", O_RDONLY, 0);
    if (err_path) {
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot start %s: %s", argv[0], strerror(rc));
    return pid;
}

static pid_t spawn(const char *const *argv, const char *out_path, const char *err_path)
{
    return spawn_in(argv, NULL, out_path, err_path);
}

/* Waits up to deadline_ms for pid; returns its wait status, or -1 on
 * timeout (the process is left running). */
static int wait_pid(pid_t pid, int deadline_ms)
{
    uint64_t end = chp_mono_ms() + (uint64_t)deadline_ms;
    int st, delay = 1;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return -1;
        if (chp_mono_ms() >= end)
            return -1;
        h_sleep_ms(delay);
        if (delay < 10)
            delay++;
    }
}

static int exit_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

uint8_t *h_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    if (!b)
        abort();
    if (f) {
        size_t k;
        while ((k = fread(b + n, 1, cap - n - 1, f)) > 0) {
            n += k;
            if (cap - n - 1 == 0) {
                uint8_t *nb = realloc(b, cap *= 2);
                if (!nb)
                    abort();
                b = nb;
            }
        }
        fclose(f);
    }
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}

int h_file_has(const char *path, const char *text)
{
    char *s = (char *)h_read_file(path, NULL);
    int yes = strstr(s, text) != NULL;
    free(s);
    return yes;
}

int h_runv(h_ctx *h, char **out, char **err, const char *const *argv)
{
    return h_runv_in(h, NULL, out, err, argv);
}

int h_runv_in(h_ctx *h, const char *in_path, char **out, char **err, const char *const *argv)
{
    char op[300], ep[300];
    h_path(h, op, sizeof op, "cmd.out");
    h_path(h, ep, sizeof ep, "cmd.err");
    pid_t pid = spawn_in(argv, in_path, op, ep);
    int st = wait_pid(pid, 30000);
    if (st < 0) {
        kill(pid, SIGKILL);
        reap_blocking(pid);
        fail_msg("%s %s did not finish within 30 s", argv[0], argv[1] ? argv[1] : "");
    }
    if (out)
        *out = (char *)h_read_file(op, NULL);
    if (err)
        *err = (char *)h_read_file(ep, NULL);
    return exit_code(st);
}

static int collect(const char **argv, int n, va_list ap)
{
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        if (n >= MAX_ARGS - 1)
            fail_msg("too many arguments");
        argv[n++] = a;
    }
    argv[n] = NULL;
    return n;
}

int h_run(h_ctx *h, char **out, char **err, const char *prog, ...)
{
    const char *argv[MAX_ARGS] = {prog};
    va_list ap;
    va_start(ap, prog);
    collect(argv, 1, ap);
    va_end(ap);
    return h_runv(h, out, err, argv);
}

int h_chapar(h_ctx *h, const h_node *n, char **out, char **err, ...)
{
    const char *argv[MAX_ARGS] = {h_bin("CHAPAR"), "--home", n->home};
    va_list ap;
    va_start(ap, err);
    collect(argv, 3, ap);
    va_end(ap);
    return h_runv(h, out, err, argv);
}

/* ---- nodes ---- */

void h_dump_logs(const h_ctx *h)
{
    for (size_t i = 0; i < h->nnodes; i++) {
        const h_node *n = &h->nodes[i];
        size_t len;
        char *log = (char *)h_read_file(n->log, &len);
        const char *p = log + len;
        int lines = 0;
        while (p > log && lines <= 25)
            if (*--p == '\n')
                lines++;
        fprintf(stderr, "---- %s (pid %d) %s, last lines:\n%s%s", n->name, (int)n->pid, n->log,
                p == log ? "" : "...\n", p == log ? p : p + 1);
        free(log);
    }
}

void h_dump_status(h_ctx *h)
{
    static const char *const keys[] = {"peers connected",
                                       "envelopes stored",
                                       "accepted",
                                       "duplicates",
                                       "rejected",
                                       "rejected malformed",
                                       "rejected rate",
                                       "rejected pow",
                                       "rejected expired",
                                       "rejected future",
                                       "rejected size",
                                       "rejected full",
                                       "bans",
                                       "sync rounds",
                                       "syncs completed",
                                       "sync fetched",
                                       "prunes",
                                       "grafts",
                                       "ids announced"};
    for (size_t i = 0; i < h->nnodes; i++) {
        const h_node *n = &h->nodes[i];
        if (n->pid <= 0)
            continue;
        char *out = NULL;
        if (h_chapar(h, n, &out, NULL, "status", H_END) != 0) {
            fprintf(stderr, "---- %s: no status\n", n->name);
        } else {
            fprintf(stderr, "---- %s status:", n->name);
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
                fprintf(stderr, " %s=%lld", keys[k], h_status_value(out, keys[k]));
            fputc('\n', stderr);
        }
        free(out);
    }
}

static void node_key(h_node *n)
{
    chp_addr a;
    if (chp_addr_parse(n->addr, strlen(n->addr), &a) != CHP_OK)
        fail_msg("%s: `chapar address` printed '%s', which does not parse", n->name, n->addr);
    const char *slash = strrchr(n->addr, '/');
    snprintf(n->key, sizeof n->key, "%s", slash + 1); /* chpn1..., as `peer list` shows it */
    n->port = a.port;
}

h_node *h_node_get(h_ctx *h, const char *name)
{
    for (size_t i = 0; i < h->nnodes; i++)
        if (!strcmp(h->nodes[i].name, name))
            return &h->nodes[i];
    if (h->nnodes == H_MAX_NODES)
        fail_msg("too many nodes");
    h_node *n = &h->nodes[h->nnodes++];
    snprintf(n->name, sizeof n->name, "%s", name);
    h_path(h, n->home, sizeof n->home, name);
    char logname[64];
    snprintf(logname, sizeof logname, "%s.log", name);
    h_path(h, n->log, sizeof n->log, logname);
    return n;
}

void h_await_up(h_ctx *h, h_node *n)
{
    /* Ready when the control socket answers `address`. */
    uint64_t t0 = chp_mono_ms(), end = t0 + 15000;
    for (;;) {
        int st;
        if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
            n->pid = 0;
            h_dump_logs(h);
            fail_msg("chapard %s exited during start-up (code %d)", n->name, exit_code(st));
        }
        char *out = NULL;
        if (h_chapar(h, n, &out, NULL, "address", H_END) == 0) {
            out[strcspn(out, "\n")] = '\0';
            snprintf(n->addr, sizeof n->addr, "%s", out);
            free(out);
            break;
        }
        free(out);
        if (chp_mono_ms() >= end) {
            h_dump_logs(h);
            fail_msg("chapard %s did not answer on its control socket within 15 s", n->name);
        }
        h_sleep_ms(10);
    }
    node_key(n);
    h_note(h, "started %s (pid %d) in %llu ms: %s", n->name, (int)n->pid,
           (unsigned long long)(chp_mono_ms() - t0), n->addr);
}

h_node *h_start(h_ctx *h, const char *name, ...)
{
    h_node *n = h_node_get(h, name);
    if (n->pid > 0)
        fail_msg("node %s is already running", name);
    const char *argv[MAX_ARGS] = {h_bin("CHAPARD"), "--home",      n->home,
                                  "--listen",       "127.0.0.1:0", "--no-discovery"};
    va_list ap;
    va_start(ap, name);
    collect(argv, 6, ap);
    va_end(ap);
    n->pid = spawn(argv, n->log, NULL);
    h_await_up(h, n);
    return n;
}

void h_stop(h_ctx *h, h_node *n)
{
    if (n->pid <= 0)
        fail_msg("node %s is not running", n->name);
    kill(n->pid, SIGTERM);
    int st = wait_pid(n->pid, 10000);
    if (st < 0) {
        kill(n->pid, SIGKILL);
        reap_blocking(n->pid);
        n->pid = 0;
        h_dump_logs(h);
        fail_msg("chapard %s did not exit within 10 s of SIGTERM", n->name);
    }
    n->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        h_dump_logs(h);
        fail_msg("chapard %s: SIGTERM gave exit code %d, want 0", n->name, exit_code(st));
    }
    h_note(h, "stopped %s", n->name);
}

int h_reap_node(h_ctx *h, h_node *n, int deadline_ms)
{
    if (n->pid <= 0)
        fail_msg("node %s is not running", n->name);
    int st = wait_pid(n->pid, deadline_ms);
    if (st < 0)
        return -1;
    n->pid = 0;
    h_note(h, "%s exited by itself (code %d)", n->name, exit_code(st));
    return exit_code(st);
}

void h_kill9(h_ctx *h, h_node *n)
{
    if (n->pid <= 0)
        fail_msg("node %s is not running", n->name);
    kill(n->pid, SIGKILL);
    reap_blocking(n->pid);
    n->pid = 0;
    h_note(h, "killed %s", n->name);
}

/* ---- status ---- */

long long h_status_value(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, kl) && p[kl] == ':' && p[kl + 1] == ' ') {
            char *end;
            long long v = strtoll(p + kl + 2, &end, 10);
            return end == p + kl + 2 ? -1 : v;
        }
    return -1;
}

long long h_status(h_ctx *h, const h_node *n, const char *key)
{
    char *out = NULL;
    long long v = -1;
    if (h_chapar(h, n, &out, NULL, "status", H_END) == 0)
        v = h_status_value(out, key);
    free(out);
    return v;
}

static int holds(long long got, enum h_op op, long long v)
{
    switch (op) {
    case H_EQ:
        return got == v;
    case H_GE:
        return got >= v;
    case H_GT:
        return got > v;
    case H_LE:
        return got >= 0 && got <= v;
    }
    return 0;
}

long long h_expect_(h_ctx *h, const h_node *n, const char *key, enum h_op op, long long v,
                    int deadline_ms, const char *file, int line)
{
    static const char *ops[] = {"==", ">=", ">", "<="};
    uint64_t t0 = chp_mono_ms(), end = t0 + (uint64_t)deadline_ms;
    long long got;
    for (;;) {
        got = h_status(h, n, key);
        if (holds(got, op, v)) {
            h_note(h, "%s: '%s' %s %lld after %llu ms (%lld)", n->name, key, ops[op], v,
                   (unsigned long long)(chp_mono_ms() - t0), got);
            return got;
        }
        if (chp_mono_ms() >= end)
            break;
        h_sleep_ms(POLL_MS);
    }
    h_dump_logs(h);
    print_error("%s:%d: node %s: waited %d ms for '%s' %s %lld; last value %lld\n", file, line,
                n->name, deadline_ms, key, ops[op], v, got);
    _fail(file, line);
    return got;
}

int h_wait(h_ctx *h, int deadline_ms, int (*cond)(h_ctx *h, void *arg), void *arg)
{
    uint64_t end = chp_mono_ms() + (uint64_t)deadline_ms;
    for (;;) {
        if (cond(h, arg))
            return 1;
        if (chp_mono_ms() >= end)
            return 0;
        h_sleep_ms(POLL_MS);
    }
}

/* ---- envelopes ---- */

static pid_t mkenv_v(h_ctx *h, const char *prefix, int count, va_list ap)
{
    char cnt[16], pre[300], log[300];
    snprintf(cnt, sizeof cnt, "%d", count);
    h_path(h, pre, sizeof pre, prefix);
    snprintf(log, sizeof log, "%s.mkenv.log", prefix);
    /* One hour unless the arguments say otherwise: the proof of work grows
     * with the lifetime, and an hour outlives any test. */
    const char *argv[MAX_ARGS] = {h_bin("CHAPAR_MKENV"), "-n", cnt, "-t", "3600"};
    int k = collect(argv, 5, ap);
    argv[k++] = pre;
    argv[k] = NULL;
    return h_spawn_aux(h, log, argv);
}

pid_t h_mkenv_async(h_ctx *h, const char *prefix, int count, ...)
{
    va_list ap;
    va_start(ap, count);
    pid_t pid = mkenv_v(h, prefix, count, ap);
    va_end(ap);
    return pid;
}

void h_mkenv(h_ctx *h, const char *prefix, int count, ...)
{
    va_list ap;
    va_start(ap, count);
    pid_t pid = mkenv_v(h, prefix, count, ap);
    va_end(ap);
    h_wait_exit0(h, pid, "chapar-mkenv");
}

pid_t h_spawn_aux(h_ctx *h, const char *logname, const char *const *argv)
{
    size_t slot = 0;
    while (slot < h->naux && h->aux[slot] > 0) /* reaped ones leave a 0 */
        slot++;
    if (slot == H_MAX_AUX)
        fail_msg("too many helper processes at once");
    char log[300];
    pid_t pid = spawn(argv, h_path(h, log, sizeof log, logname), NULL);
    h->aux[slot] = pid;
    if (slot == h->naux)
        h->naux++;
    return pid;
}

int h_reap(h_ctx *h, pid_t pid, int deadline_ms)
{
    int st = wait_pid(pid, deadline_ms);
    if (st >= 0)
        for (size_t i = 0; i < h->naux; i++)
            if (h->aux[i] == pid)
                h->aux[i] = 0;
    return st;
}

void h_wait_exit0(h_ctx *h, pid_t pid, const char *what)
{
    uint64_t t0 = chp_mono_ms();
    int st = h_reap(h, pid, 60000);
    if (st < 0)
        fail_msg("%s did not finish within 60 s", what);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("%s failed with code %d", what, exit_code(st));
    h_note(h, "%s done in %llu ms", what, (unsigned long long)(chp_mono_ms() - t0));
}

void h_publish(h_ctx *h, const h_node *n, const char *prefix, int i, char *id)
{
    char name[300], path[600], *out = NULL, *err = NULL;
    snprintf(name, sizeof name, "%s%d", prefix, i);
    h_path(h, path, sizeof path, name);
    int rc = h_chapar(h, n, &out, &err, "debug", "publish", path, H_END);
    int bad = rc != 0 || strspn(out, "0123456789abcdef") != 64 || strcmp(out + 64, "\n") != 0;
    if (bad) {
        print_error("publish %s at %s: exit %d, stdout '%s', stderr '%s'\n", name, n->name, rc, out,
                    err);
    } else if (id) {
        memcpy(id, out, 64);
        id[64] = '\0';
    }
    free(out);
    free(err);
    if (bad)
        fail();
}

void h_publish_range(h_ctx *h, const h_node *n, const char *prefix, int from, int to)
{
    uint64_t t0 = chp_mono_ms();
    for (int i = from; i < to; i++)
        h_publish(h, n, prefix, i, NULL);
    h_note(h, "published %s%d..%d at %s in %llu ms", prefix, from, to - 1, n->name,
           (unsigned long long)(chp_mono_ms() - t0));
}

int h_lines(const char *s)
{
    int n = 0;
    for (const char *p = s; *p; p++)
        if (*p == '\n' || p[1] == '\0')
            n++;
    return n;
}

int h_room_post(const struct chp_identity *me, const char *room, const char *nick, const char *text,
                uint64_t ttl, uint8_t *env, size_t cap, size_t *len)
{
    uint8_t rk[32], payload[512], tag[16], key[32];
    size_t o = 16, kl = strlen(nick), tl = strlen(text);
    if (kl > 255 || o + 1 + kl + tl > sizeof payload)
        return CHP_E_ARG;
    int rc = chp_ks_room_public(room, strlen(room), rk);
    if (rc != CHP_OK)
        return rc;
    chp_rng_fill(chp_rng_system(), payload, 16); /* the msgid */
    payload[o++] = (uint8_t)kl;
    memcpy(payload + o, nick, kl);
    o += kl;
    memcpy(payload + o, text, tl);
    o += tl;
    uint64_t now = (uint64_t)time(NULL), e = chp_epoch_of(now);
    chp_ks_room_tag(rk, e, tag);
    chp_ks_room_msg_key(rk, e, key);
    chp_env_seal_args a = {.created = now,
                           .expiry = now + ttl,
                           .tag = tag,
                           .key = key,
                           .type = CHP_CT_ROOM,
                           .payload = payload,
                           .len = o};
    rc = chp_envelope_seal(&a, me, chp_rng_system(), env, cap, len);
    chp_memzero(key, sizeof key);
    return rc;
}

/* ---- messaging ---- */

char *h_ok_(h_ctx *h, const h_node *n, const char *file, int line, ...)
{
    const char *argv[MAX_ARGS] = {h_bin("CHAPAR"), "--home", n->home};
    va_list ap;
    va_start(ap, line);
    collect(argv, 3, ap);
    va_end(ap);
    char *out = NULL, *err = NULL;
    int rc = h_runv(h, &out, &err, argv);
    if (rc != 0) {
        h_dump_logs(h);
        print_error("%s:%d: node %s: chapar %s %s: exit %d, stderr '%s'\n", file, line, n->name,
                    argv[3], argv[4] ? argv[4] : "", rc, err);
        free(out);
        free(err);
        _fail(file, line);
    }
    free(err);
    return out;
}

void h_send_file(h_ctx *h, const h_node *n, const char *to, const char *path, char id[33])
{
    char *out = h_ok(h, n, "send-file", to, path, H_END);
    assert_int_equal(strlen(out), 33);
    assert_int_equal(out[32], '\n');
    memcpy(id, out, 32);
    id[32] = '\0';
    free(out);
}

void h_init(h_ctx *h, const h_node *n, const char *nick, char id[H_ID_LEN + 1], ...)
{
    const char *argv[MAX_ARGS] = {h_bin("CHAPAR"), "--home", n->home, "init", "--nick", nick};
    va_list ap;
    va_start(ap, id);
    collect(argv, 6, ap);
    va_end(ap);
    char *out = NULL, *err = NULL;
    int rc = h_runv(h, &out, &err, argv);
    int bad =
        rc != 0 || strncmp(out, "chp1", 4) || strlen(out) != H_ID_LEN + 1 || out[H_ID_LEN] != '\n';
    if (bad)
        print_error("init %s: exit %d, stdout '%s', stderr '%s'\n", n->name, rc, out, err);
    else if (id) {
        memcpy(id, out, H_ID_LEN);
        id[H_ID_LEN] = '\0';
    }
    free(out);
    free(err);
    if (bad) {
        h_dump_logs(h);
        fail();
    }
}

char *h_await_(h_ctx *h, const h_node *n, const char *needle, int deadline_ms, const char *file,
               int line, ...)
{
    const char *argv[MAX_ARGS] = {h_bin("CHAPAR"), "--home", n->home};
    va_list ap;
    va_start(ap, line);
    collect(argv, 3, ap);
    va_end(ap);
    uint64_t t0 = chp_mono_ms(), end = t0 + (uint64_t)deadline_ms;
    for (int delay = POLL_MS;; delay = delay < 200 ? delay * 2 : 200) {
        char *out = NULL, *err = NULL;
        int rc = h_runv(h, &out, &err, argv);
        if (rc == 0 && strstr(out, needle)) {
            free(err);
            h_note(h, "%s: `%s` shows '%s' after %llu ms", n->name, argv[3], needle,
                   (unsigned long long)(chp_mono_ms() - t0));
            return out;
        }
        if (chp_mono_ms() >= end) {
            h_dump_logs(h);
            h_dump_status(h);
            /* cmocka cuts its messages at 1 KiB: the long parts go first. */
            fprintf(stderr, "last stdout of `chapar %s`:\n%.4000s\n", argv[3], out);
            print_error("%s:%d: node %s: waited %d ms for `chapar %s` to show '%.200s'; last exit "
                        "%d, stderr '%.300s'\n",
                        file, line, n->name, deadline_ms, argv[3], needle, rc, err);
            free(out);
            free(err);
            _fail(file, line);
            return NULL;
        }
        free(out);
        free(err);
        h_sleep_ms(delay);
    }
}

void h_await_state_(h_ctx *h, const h_node *n, const char *msgid, const char *state,
                    int deadline_ms, const char *file, int line)
{
    /* outbox lines are MSGID\tTO\tSTATE\tTIME\tTEXT: the id starts the
     * line, the state is the third field. */
    uint64_t t0 = chp_mono_ms(), end = t0 + (uint64_t)deadline_ms;
    char *out = NULL;
    for (;;) {
        free(out);
        out = NULL;
        if (h_chapar(h, n, &out, NULL, "outbox", H_END) == 0) {
            const char *l = strstr(out, msgid), *st = l ? strchr(l, '\t') : NULL;
            st = st ? strchr(st + 1, '\t') : NULL;
            size_t sl = strlen(state);
            if (st && !strncmp(st + 1, state, sl) && st[1 + sl] == '\t') {
                h_note(h, "%s: message %.8s... %s after %llu ms", n->name, msgid, state,
                       (unsigned long long)(chp_mono_ms() - t0));
                free(out);
                return;
            }
        }
        if (chp_mono_ms() >= end)
            break;
        h_sleep_ms(50);
    }
    h_dump_logs(h);
    h_dump_status(h);
    print_error("%s:%d: node %s: waited %d ms for message %s to be %s; outbox:\n%s\n", file, line,
                n->name, deadline_ms, msgid, state, out ? out : "(none)");
    free(out);
    _fail(file, line);
}

void h_send(h_ctx *h, const h_node *n, const char *to, const char *text, char id[33])
{
    char *out = h_ok(h, n, "send", to, text, H_END);
    assert_int_equal(strspn(out, "0123456789abcdef"), 32);
    assert_string_equal(out + 32, "\n");
    if (id) {
        memcpy(id, out, 32);
        id[32] = '\0';
    }
    free(out);
}

char *h_write_file(h_ctx *h, const char *name, const void *data, size_t len)
{
    static char path[H_MAX_NODES][300];
    static int next;
    char *p = path[next++ % H_MAX_NODES];
    h_path(h, p, 300, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        fail_msg("cannot write %s", p);
    return p;
}

void h_established(h_ctx *h, const h_node *n, const char *name, const char *id)
{
    char line[256];
    snprintf(line, sizeof line, "%s\t%s\testablished", name, id);
    free(h_await(h, n, line, "contact", "list", H_END));
}

void h_befriend(h_ctx *h, const h_node *a, const char *aname, const char *aid, const h_node *b,
                const char *bname, const char *bid)
{
    free(h_ok(h, a, "contact", "add", bid, bname, H_END));
    free(h_ok(h, b, "contact", "add", aid, aname, H_END));
    h_established(h, a, bname, bid);
    h_established(h, b, aname, aid);
}

void h_pair(h_ctx *h, h_node **ap, h_node **bp, char aid[H_ID_LEN + 1], char bid[H_ID_LEN + 1])
{
    char ida[H_ID_LEN + 1], idb[H_ID_LEN + 1];
    h_node *a = h_node_get(h, "alice"), *b = h_node_get(h, "bob");
    h_init(h, a, "alice-nick", ida, "--no-passphrase", H_END);
    h_init(h, b, "bob-nick", idb, "--no-passphrase", H_END);
    h_start(h, "alice", H_END);
    h_start(h, "bob", "--peer", a->addr, H_END);
    h_befriend(h, a, "alice", ida, b, "bob", idb);
    if (aid)
        memcpy(aid, ida, H_ID_LEN + 1);
    if (bid)
        memcpy(bid, idb, H_ID_LEN + 1);
    *ap = a;
    *bp = b;
}

void h_publish_par(h_ctx *h, const h_node *n, const char *prefix, int count)
{
    enum { PAR = 3 };
    uint64_t t0 = chp_mono_ms();
    for (int i = 0; i < count; i += PAR) {
        pid_t pid[PAR];
        int k = 0;
        for (; k < PAR && i + k < count; k++) {
            char name[64], path[600];
            snprintf(name, sizeof name, "%s%d", prefix, i + k);
            h_path(h, path, sizeof path, name);
            const char *argv[] = {h_bin("CHAPAR"), "--home", n->home, "debug",
                                  "publish",       path,     NULL};
            pid[k] = h_spawn_aux(h, "publish.log", argv);
        }
        for (int j = 0; j < k; j++) {
            int st = h_reap(h, pid[j], 30000);
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
    }
    h_note(h, "published %s0..%d at %s in %llu ms", prefix, count - 1, n->name,
           (unsigned long long)(chp_mono_ms() - t0));
}

int h_status_has(h_ctx *h, const h_node *n, const char *line)
{
    char *out = h_ok(h, n, "status", H_END);
    int yes = strstr(out, line) != NULL;
    free(out);
    return yes;
}

int h_zmq_event(void *mon, int want, int deadline_ms)
{
    uint64_t end = chp_mono_ms() + (uint64_t)deadline_ms;
    while (chp_mono_ms() < end) {
        zmq_pollitem_t pi = {mon, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&pi, 1, 50) <= 0)
            continue;
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        zmq_msg_init(&addr);
        int ok = zmq_msg_recv(&ev, mon, 0) >= 2 && zmq_msg_recv(&addr, mon, 0) >= 0;
        uint16_t e = 0;
        if (ok)
            memcpy(&e, zmq_msg_data(&ev), 2); /* host order */
        zmq_msg_close(&ev);
        zmq_msg_close(&addr);
        if (ok && e == want)
            return 1;
    }
    return 0;
}

void *h_events(void *zctx, const h_node *n, const char *topic)
{
    char ep[600];
    int zero = 0, tmo = H_DEADLINE_MS;
    snprintf(ep, sizeof ep, "ipc://%s/events", n->home);
    void *s = zmq_socket(zctx, ZMQ_SUB);
    assert_non_null(s);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, topic, strlen(topic));
    assert_int_equal(zmq_connect(s, ep), 0);
    return s;
}

void *h_zmq_monitor(void *zctx, void *s)
{
    static int seq;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://h-mon-%d", seq++);
    assert_int_equal(zmq_socket_monitor(s, ep, ZMQ_EVENT_ALL), 0);
    void *mon = zmq_socket(zctx, ZMQ_PAIR);
    assert_non_null(mon);
    assert_int_equal(zmq_connect(mon, ep), 0);
    return mon;
}

void h_curve_keys(uint8_t pk[32], uint8_t sk[32])
{
    char pub[41], sec[41];
    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    assert_non_null(zmq_z85_decode(pk, pub));
    assert_non_null(zmq_z85_decode(sk, sec));
}

void *h_raw_dial(void *zctx, const h_node *n, const uint8_t *pk, const uint8_t *sk,
                 const uint8_t *rid, const char *src, void **mon)
{
    chp_addr a;
    char dst[300], ep[400];
    uint8_t fresh_pk[32], fresh_sk[32];
    int zero = 0, tmo = H_RAW_TIMEOUT_MS;
    if (!pk) {
        h_curve_keys(fresh_pk, fresh_sk);
        pk = fresh_pk;
        sk = fresh_sk;
    }
    assert_int_equal(chp_addr_parse(n->addr, strlen(n->addr), &a), CHP_OK);
    assert_int_equal(chp_addr_endpoint(&a, dst, sizeof dst), CHP_OK);
    if (src) /* libzmq's "tcp://SRC:0;DST" binds the source address */
        snprintf(ep, sizeof ep, "tcp://%s:0;%s", src, dst + strlen("tcp://"));
    else
        snprintf(ep, sizeof ep, "%s", dst);
    void *d = zmq_socket(zctx, ZMQ_DEALER);
    assert_non_null(d);
    assert_int_equal(zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, a.key, 32), 0);
    assert_int_equal(zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, pk, 32), 0);
    assert_int_equal(zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, sk, 32), 0);
    if (rid)
        assert_int_equal(zmq_setsockopt(d, ZMQ_ROUTING_ID, rid, 32), 0);
    assert_int_equal(zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(d, ZMQ_SNDTIMEO, &tmo, sizeof tmo), 0);
    assert_int_equal(zmq_setsockopt(d, ZMQ_RCVTIMEO, &tmo, sizeof tmo), 0);
    if (mon)
        *mon = h_zmq_monitor(zctx, d);
    assert_int_equal(zmq_connect(d, ep), 0);
    return d;
}

void h_raw_close(void *s, void *mon)
{
    if (s && mon)
        zmq_socket_monitor(s, NULL, 0);
    if (s)
        zmq_close(s);
    if (mon)
        zmq_close(mon);
}

void h_raw_send(void *s, const void *f, size_t len)
{
    if (zmq_send(s, f, len, 0) != (int)len)
        fail_msg("raw send of %zu bytes: %s", len, zmq_strerror(zmq_errno()));
}

void h_raw_hello(void *s, uint32_t caps)
{
    uint8_t f[16];
    size_t fl;
    assert_int_equal(chp_wire_hello(f, sizeof f, &fl, caps, 0, CHP_WIRE_MAX_FRAME), CHP_OK);
    h_raw_send(s, f, fl);
}

void h_raw_barrier(void *s, int deadline_ms)
{
    static uint64_t nonce = 1000;
    static uint8_t in[CHP_WIRE_MAX_FRAME];
    uint8_t f[16];
    size_t fl;
    /* a flow PING (bit 63, PROTOCOL.md §15): its PONG waits until what
     * came before it is stored and handed to the messaging layer; a plain
     * one is answered at once, while a user node's commit may still run */
    nonce++;
    assert_int_equal(chp_wire_ping(f, sizeof f, &fl, CHP_WIRE_PING, nonce | (1ull << 63)), CHP_OK);
    h_raw_send(s, f, fl);
    uint64_t end = chp_mono_ms() + (uint64_t)deadline_ms;
    while (chp_mono_ms() < end) {
        int n = zmq_recv(s, in, sizeof in, 0);
        if (n < 0)
            break;
        chp_wire_msg m;
        if (n <= (int)sizeof in && chp_wire_decode(in, (size_t)n, &m) == CHP_OK &&
            m.type == CHP_WIRE_PONG && m.u.nonce == (nonce | (1ull << 63)))
            return;
    }
    fail_msg("no PONG from the node within %d ms", deadline_ms);
}

/* ---- capturing the wire ---- */

/* The path of program name on PATH or in the sbin directories (tcpdump
 * lives in /usr/sbin, which a user's PATH may lack); NULL if none. */
static const char *find_tool(const char *name, char *buf, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin:/usr/bin:/bin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, cap, "%s/%s", d, name);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

struct file_has {
    const char *path, *text;
};

static int file_has(h_ctx *h, void *arg)
{
    (void)h;
    const struct file_has *f = arg;
    return h_file_has(f->path, f->text);
}

pid_t h_capture_start(h_ctx *h, h_node *const *nodes, size_t n, char *pcap, size_t cap, char *why,
                      size_t whycap)
{
    char tcpdump[512], tlog[300], filter[400];
    if (!find_tool("tcpdump", tcpdump, sizeof tcpdump)) {
        snprintf(why, whycap, "tcpdump is not installed (scripts/install-deps --test installs it)");
        return 0;
    }
    if (geteuid() != 0) {
        snprintf(why, whycap, "capturing loopback traffic needs root");
        return 0;
    }
    h_path(h, pcap, cap, "wire.pcap");
    h_path(h, tlog, sizeof tlog, "tcpdump.log");
    /* Only these nodes' connections: other tests may run beside us. */
    int k = snprintf(filter, sizeof filter, "tcp and (");
    for (size_t i = 0; i < n && k < (int)sizeof filter; i++)
        k += snprintf(filter + k, sizeof filter - (size_t)k, "%sport %u", i ? " or " : "",
                      (unsigned)nodes[i]->port);
    if (k >= (int)sizeof filter - 1)
        fail_msg("capture filter too long");
    snprintf(filter + k, sizeof filter - (size_t)k, ")");
    const char *argv[] = {tcpdump, "-i", "lo", "-n",   "-U", "--immediate-mode", "-Z", "root", "-s",
                          "0",     "-w", pcap, filter, NULL};
    pid_t pid = h_spawn_aux(h, "tcpdump.log", argv);
    struct file_has ready = {tlog, "listening on"};
    if (!h_wait(h, 10000, file_has, &ready)) {
        char *log = (char *)h_read_file(tlog, NULL);
        snprintf(why, whycap, "tcpdump could not capture on lo: %s", log);
        free(log);
        kill(pid, SIGKILL);
        h_reap(h, pid, 5000);
        return 0;
    }
    return pid;
}

uint8_t *h_capture_stop(h_ctx *h, pid_t pid, const char *pcap, size_t *len)
{
    kill(pid, SIGINT);
    int st = h_reap(h, pid, 10000);
    assert_true(st >= 0 && WIFEXITED(st));
    uint8_t *wire = h_read_file(pcap, len);
    h_note(h, "captured %zu bytes", *len);
    return wire;
}

int h_sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

const char *h_which(const char *name, char *buf, size_t cap)
{
    if (find_tool(name, buf, cap))
        return buf;
    fail_msg("%s is not installed (scripts/install-deps --test installs it)", name);
    return NULL;
}
