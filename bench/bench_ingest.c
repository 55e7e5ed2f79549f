/* bench_ingest.c - the relay receive path of a real chapard over tcp
 * loopback, beside the shared yardstick's ideal relay pipeline.
 *
 *   bench-ingest [-n N] [-p PEERS] [-e ENVDIR] [-j JOBS] [-B BUILD_DIR]
 *                [-L LIMITS_BINARY] [-k] [-1]
 *
 * Starts build/bin/chapard --relay --listen 127.0.0.1:0 --no-discovery in
 * a temporary home, asks its address on the control socket, and
 * connects PEERS sender DEALERs (CURVE, routing id = own public key, as the
 * node demands) plus one sink DEALER. Every peer sends HELLO; the senders
 * then send PRUNE, so the node forwards to them lazily (IHAVE) and eagerly
 * to the sink only: each accepted envelope is stored durably and forwarded
 * once, like a relay with one tree link downstream.
 *
 * Peers announce PUSHES (HELLO bit 5), so senders push full PUSHES frames
 * (up to 64 KiB each) and the node forwards to the sink in them; with -1
 * they announce nothing and every envelope travels in its own PUSH frame,
 * as between nodes from before PUSHES.
 *
 * The senders then push N distinct valid envelopes (real proof of work, from
 * build/tests/chapar-mkenv, cached in ENVDIR; missing ones are generated on
 * JOBS cores first) as fast as the send HWM allows. The node admits at most
 * 5000 envelopes/s per neighbour after a burst of 10000 (node/mesh/admit.c) and
 * drops the excess, so each sender sends its first 9000 unpaced and paces
 * the rest at 4500/s; the default PEERS = ceil(N / 9000) keeps every sender
 * within its burst, so the node's own limit is what is measured.
 *
 * The clock runs from the first PUSH until the node's `accepted` counter
 * (the control socket's `status`, what `chapar status` prints, read every
 * 10 ms) reaches N; the sink's receipt of the N-th forwarded envelope is a
 * second end mark. The yardstick (`limits -s pipeline -t 0.5 -r 3`) runs
 * just before and just after the node, alone on the machine; the figure is
 * node envelopes/s divided by the mean of its two "pipeline pow+id+put
 * durable (relay)" medians. LIMITS_BINARY defaults to /tmp/limits/limits
 * (copy shared/tools/limits to /tmp and `make`). Cached envelopes live one
 * day (chapar-mkenv's default lifetime): expired ones are deleted and
 * replaced by fresh ones, ~20000 per 6-8 minutes on 2 cores. */
#include "bench/benchlib.h"
#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/wire.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define PEERS_MAX     32
#define BURST_SAFE    9000   /* node/mesh/admit.c RATE_BURST is 10000 */
#define RATE_SAFE     4500.0 /* node/mesh/admit.c RATE_ENV_PER_S is 5000 */
#define STATUS_MS     10
#define ENV_DIR       "/tmp/chapar-bench-envs"
#define LIMITS_BIN    "/tmp/limits/limits"
#define LIMITS_ROW    "pipeline pow+id+put durable (relay)"
#define VALID_FOR_S   600 /* envelopes must stay valid this long */
#define MKENV_PAYLOAD "900"

/* ---- the envelope cache ---- */

struct envs {
    uint8_t *buf; /* n envelopes of len[i] bytes at off[i] */
    size_t *off, *len;
    size_t n, cap, bytes, bytes_cap;
    uint8_t (*ids)[32];
};

static void envs_free(struct envs *e)
{
    free(e->buf);
    free(e->off);
    free(e->len);
    free(e->ids);
    memset(e, 0, sizeof *e);
}

static int envs_add(struct envs *e, const uint8_t *env, size_t len, const uint8_t id[32])
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 4096;
        size_t *off = realloc(e->off, cap * sizeof *off);
        if (off)
            e->off = off;
        size_t *l = off ? realloc(e->len, cap * sizeof *l) : NULL;
        if (l)
            e->len = l;
        uint8_t(*ids)[32] = l ? realloc(e->ids, cap * 32) : NULL;
        if (!ids)
            return -1;
        e->ids = ids;
        e->cap = cap;
    }
    if (e->bytes + len > e->bytes_cap) {
        size_t cap = e->bytes_cap ? 2 * e->bytes_cap : (size_t)4 << 20;
        while (cap < e->bytes + len)
            cap *= 2;
        uint8_t *b = realloc(e->buf, cap);
        if (!b)
            return -1;
        e->buf = b;
        e->bytes_cap = cap;
    }
    memcpy(e->buf + e->bytes, env, len);
    e->off[e->n] = e->bytes;
    e->len[e->n] = len;
    memcpy(e->ids[e->n], id, 32);
    e->bytes += len;
    e->n++;
    return 0;
}

static int id_seen(const struct envs *e, const uint8_t id[32])
{
    for (size_t i = 0; i < e->n; i++)
        if (!memcmp(e->ids[i], id, 32))
            return 1;
    return 0;
}

/* Up to want distinct envelopes from dir that stay valid for VALID_FOR_S
 * seconds; files that are expired (or soon) are deleted. */
static int load_envs(const char *dir, size_t want, struct envs *e, size_t *stale)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    uint64_t later = (uint64_t)time(NULL) + VALID_FOR_S;
    uint8_t env[CHP_ENV_MAX_BYTES + 1], id[32];
    struct dirent *de;
    char path[4096];
    int rc = 0;
    /* The duplicate check is quadratic but only over ids with the same
     * first two bytes in practice: keep it simple, sizes are ~1e4. */
    while (rc == 0 && e->n < want && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        size_t len = fread(env, 1, sizeof env, f);
        fclose(f);
        int ck = chp_envelope_check(env, len, later, NULL, NULL, id);
        if (ck == CHP_E_ENV_EXPIRED) {
            unlink(path);
            (*stale)++;
            continue;
        }
        if (ck != CHP_OK || id_seen(e, id))
            continue;
        rc = envs_add(e, env, len, id);
    }
    closedir(d);
    return rc;
}

/* count more envelopes into dir, split over jobs chapar-mkenv processes. */
static int gen_envs(const char *mkenv, const char *dir, size_t count, int jobs)
{
    pid_t pids[64];
    int ok = 1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    for (int j = 0; j < jobs; j++) {
        char n[32], prefix[4096];
        size_t share = count / (size_t)jobs + ((size_t)j < count % (size_t)jobs ? 1 : 0);
        snprintf(n, sizeof n, "%zu", share);
        snprintf(prefix, sizeof prefix, "%s/g%lld-%d-%d-", dir, (long long)time(NULL),
                 (int)getpid(), j);
        const char *argv[] = {mkenv, "-n", n, "-s", MKENV_PAYLOAD, prefix, NULL};
        pids[j] = share ? bench_spawn(argv, NULL) : 0;
        ok &= pids[j] >= 0;
    }
    for (int j = 0; j < jobs; j++)
        if (pids[j] > 0 && bench_reap(pids[j], -1) != 0)
            ok = 0;
    return ok ? 0 : -1;
}

/* ---- the daemon ---- */

struct daemon {
    char tmp[64], home[128], log[128];
    pid_t pid;
    chp_ctl *ctl; /* its control socket: what `chapar status` asks */
    char addr[CHP_ADDR_STR_MAX + 1];
};

/* Starts chapard as a relay and asks its address: the request waits until
 * it binds (10 s at most). */
static int start_node(const char *chapard, void *zctx, struct daemon *d)
{
    snprintf(d->tmp, sizeof d->tmp, "/tmp/chapar-bench-ingest-XXXXXX");
    if (!mkdtemp(d->tmp))
        return -1;
    snprintf(d->home, sizeof d->home, "%s/home", d->tmp);
    snprintf(d->log, sizeof d->log, "%s/chapard.log", d->tmp);
    const char *argv[] = {chapard,          "--home",  d->home,       "--listen", "127.0.0.1:0",
                          "--no-discovery", "--relay", "--log-level", "warn",     NULL};
    d->pid = bench_spawn(argv, d->log);
    if (d->pid < 0 || chp_ctl_open(d->home, zctx, &d->ctl) != CHP_OK ||
        bench_send(d->ctl, "address", NULL, 0) != 0)
        return -1;
    return bench_reply(d->ctl, 10000, d->addr, sizeof d->addr) == 0 ? 0 : -1;
}

static void stop_node(struct daemon *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    if (bench_reap(d->pid, 5000) < 0) { /* 5 s to shut down, then SIGKILL */
        fprintf(stderr, "bench-ingest: chapard ignored SIGTERM; killing it\n");
        bench_kill_reap(d->pid);
    }
    d->pid = 0;
}

/* CPU seconds a thread has run, from /proc/PID/task/TID/schedstat (ns);
 * *wait (may be NULL) gets the seconds it waited, runnable, for a CPU. */
static double thread_cpu(const char *task_dir, double *wait)
{
    char p[512];
    unsigned long long ns = 0, w = 0;
    snprintf(p, sizeof p, "%s/schedstat", task_dir);
    FILE *f = fopen(p, "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &ns, &w) != 2)
            ns = w = 0;
        fclose(f);
    }
    if (wait)
        *wait = (double)w / 1e9;
    return (double)ns / 1e9;
}

static double self_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define THREADS_MAX 16

struct cpu_mark {
    double main, all; /* the event loop thread; all threads (ZeroMQ I/O too) */
    int nt;
    int tid[THREADS_MAX];
    char name[THREADS_MAX][20]; /* /proc/PID/task/TID/comm */
    double cpu[THREADS_MAX];
    double wait[THREADS_MAX]; /* runnable but not running */
};

static void thread_name(const char *task_dir, char out[20])
{
    char p[512];
    snprintf(p, sizeof p, "%s/comm", task_dir);
    FILE *f = fopen(p, "r");
    out[0] = '\0';
    if (f) {
        if (!fgets(out, 20, f))
            out[0] = '\0';
        fclose(f);
    }
    out[strcspn(out, "\n")] = '\0';
}

static void node_cpu(pid_t pid, struct cpu_mark *m)
{
    char dir[64], task[384];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    m->main = m->all = 0;
    m->nt = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(task, sizeof task, "%s/%s", dir, de->d_name);
        double w, c = thread_cpu(task, &w);
        m->all += c;
        if (m->nt < THREADS_MAX) {
            m->tid[m->nt] = atoi(de->d_name);
            thread_name(task, m->name[m->nt]);
            m->wait[m->nt] = w;
            m->cpu[m->nt++] = c;
        }
        if (atoi(de->d_name) == (int)pid)
            m->main = c;
    }
    if (d)
        closedir(d);
}

/* ---- the control socket (what `chapar status` asks) ---- */

/* The value of a "key: value" line of a status reply, 0 if absent. */
static uint64_t status_count(const char *status, const char *key)
{
    long long v = bench_status_value(status, key);
    return v < 0 ? 0 : (uint64_t)v;
}

/* ---- peers ---- */

struct peer {
    void *s;
    uint8_t pk[32], sk[32];
    size_t first, end, next; /* envelopes [first, end) are this peer's */
    int hello;
    uint64_t rx_push, rx_frames, rx_ihave_ids; /* envelopes pushed, in so many frames */
    double last_push_s;                        /* sink: when the latest forwarded envelope came */
};

/* -1, or a node whose HELLO lacks bit 5 (-B at a build from before
 * PUSHES): the peers send and take single PUSH frames (PROTOCOL.md §15);
 * otherwise they send full PUSHES frames and the node forwards to the
 * sink in them. */
static int g_single;

static int peer_open(void *zctx, const chp_addr *node, const char *ep, struct peer *p)
{
    int zero = 0, hwm = 4096;
    int64_t maxmsg = CHP_WIRE_MAX_FRAME;
    chp_rng_fill(chp_rng_system(), p->sk, 32);
    chp_x25519_base(p->pk, p->sk);
    p->s = zmq_socket(zctx, ZMQ_DEALER);
    if (!p->s || zmq_setsockopt(p->s, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(p->s, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(p->s, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(p->s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(p->s, ZMQ_CURVE_SERVERKEY, node->key, 32) ||
        zmq_setsockopt(p->s, ZMQ_CURVE_PUBLICKEY, p->pk, 32) ||
        zmq_setsockopt(p->s, ZMQ_CURVE_SECRETKEY, p->sk, 32) ||
        zmq_setsockopt(p->s, ZMQ_ROUTING_ID, p->pk, 32) || zmq_connect(p->s, ep) != 0)
        return -1;
    uint8_t f[16];
    size_t fl;
    uint32_t caps = g_single ? 0 : CHP_CAP_PUSHES;
    if (chp_wire_hello(f, sizeof f, &fl, caps, 0, CHP_WIRE_MAX_FRAME) != CHP_OK ||
        zmq_send(p->s, f, fl, 0) != (int)fl)
        return -1;
    return 0;
}

/* Reads what the node sends this peer: HELLO, PUSH (sink), IHAVE. */
static void peer_drain(struct peer *p, int max)
{
    static uint8_t f[CHP_WIRE_MAX_FRAME];
    for (int i = 0; i < max; i++) {
        int len = zmq_recv(p->s, f, sizeof f, ZMQ_DONTWAIT);
        chp_wire_msg m;
        if (len < 0)
            return;
        if (chp_wire_decode(f, (size_t)len, &m) != CHP_OK)
            continue;
        if (m.type == CHP_WIRE_HELLO) {
            p->hello = 1;
            if (!(m.u.hello.caps & CHP_CAP_PUSHES))
                g_single = 1; /* a node from before PUSHES (-B an older build) */
        } else if (m.type == CHP_WIRE_PUSH || m.type == CHP_WIRE_PUSHES) {
            p->rx_push += m.type == CHP_WIRE_PUSH ? 1 : m.u.pushes.n;
            p->rx_frames++;
            p->last_push_s = bench_now_s();
        } else if (m.type == CHP_WIRE_IHAVE) {
            p->rx_ihave_ids += m.u.ids.n;
        } else if (m.type == CHP_WIRE_PING) {
            /* the node pushes at most 8 MiB past the last PONG (PROTOCOL.md §15) */
            uint8_t pong[16];
            size_t pl;
            if (chp_wire_ping(pong, sizeof pong, &pl, CHP_WIRE_PONG, m.u.nonce) == CHP_OK)
                zmq_send(p->s, pong, pl, ZMQ_DONTWAIT);
        }
    }
}

static int wait_hellos(struct peer *peers, int np)
{
    zmq_pollitem_t pi[PEERS_MAX + 1];
    double end = bench_now_s() + 10;
    for (;;) {
        int missing = 0;
        for (int i = 0; i < np; i++) {
            pi[i] = (zmq_pollitem_t){peers[i].s, 0, ZMQ_POLLIN, 0};
            missing += !peers[i].hello;
        }
        if (!missing)
            return 0;
        if (bench_now_s() > end)
            return -1;
        zmq_poll(pi, np, 100);
        for (int i = 0; i < np; i++)
            peer_drain(&peers[i], 16);
    }
}

/* Envelopes a sender may have sent after elapsed seconds. */
static double peer_allowed(double elapsed)
{
    return BURST_SAFE + RATE_SAFE * elapsed;
}

/* Sends this sender's share, paced to stay within the node's token bucket;
 * returns the number of frames sent now. */
static size_t peer_send(struct peer *p, const struct envs *e, double elapsed)
{
    static uint8_t f[CHP_WIRE_MAX_FRAME];
    double allowed = peer_allowed(elapsed);
    size_t sent = 0;
    while (p->next < p->end && (double)(p->next - p->first) < allowed && sent < 256) {
        size_t fl = 0, k = 0; /* one PUSH, or as many as fit in one PUSHES */
        while (p->next + k < p->end && (double)(p->next + k - p->first) < allowed) {
            size_t i = p->next + k;
            int rc = g_single
                         ? chp_wire_push(f, sizeof f, &fl, e->buf + e->off[i], e->len[i])
                         : chp_wire_pushes_add(f, sizeof f, &fl, e->buf + e->off[i], e->len[i]);
            if (rc != CHP_OK)
                break;
            k++;
            if (g_single)
                break;
        }
        if (k == 0 || zmq_send(p->s, f, fl, ZMQ_DONTWAIT) != (int)fl)
            return sent; /* HWM: wait for POLLOUT */
        p->next += k;
        sent++;
    }
    return sent;
}

struct run {
    double t0, t_accepted, t_sink, t_sent; /* t0 absolute, the others after it */
    uint64_t accepted;
    struct cpu_mark cpu0, cpu1;
    double self0, self1; /* this process (senders, sink, CURVE) */
    char status[8192];
};

/* The timed part: push everything, poll status until all are accepted. */
static int run_ingest(struct peer *peers, int np, chp_ctl *ctl, const struct envs *e, size_t n,
                      pid_t node, struct run *r)
{
    struct peer *sink = &peers[np];
    zmq_pollitem_t pi[PEERS_MAX + 2];
    int asking = 0;
    double next_status = 0, t0 = bench_now_s(), deadline = t0 + 60 + (double)n / 1000;
    r->t0 = t0;
    node_cpu(node, &r->cpu0);
    r->self0 = self_cpu();
    r->t_sink = r->t_sent = -1;
    for (;;) {
        double t = bench_now_s();
        int pending = 0;
        for (int i = 0; i < np; i++) {
            /* Paced senders wait without polling for POLLOUT (no spinning). */
            int want_out = peers[i].next < peers[i].end &&
                           (double)(peers[i].next - peers[i].first) < peer_allowed(t - t0);
            pending |= peers[i].next < peers[i].end;
            pi[i] = (zmq_pollitem_t){peers[i].s, 0,
                                     (short)(ZMQ_POLLIN | (want_out ? ZMQ_POLLOUT : 0)), 0};
        }
        if (!pending && r->t_sent < 0)
            r->t_sent = t - t0;
        pi[np] = (zmq_pollitem_t){sink->s, 0, ZMQ_POLLIN, 0};
        pi[np + 1] = (zmq_pollitem_t){chp_ctl_req_socket(ctl), 0, ZMQ_POLLIN, 0};
        if (!asking && t >= next_status) {
            asking = bench_send(ctl, "status", NULL, 0) == 0;
            next_status = t + STATUS_MS / 1e3;
        }
        zmq_poll(pi, np + 2, pending ? 1 : STATUS_MS);
        for (int i = 0; i < np; i++) {
            if (pi[i].revents & ZMQ_POLLOUT)
                peer_send(&peers[i], e, bench_now_s() - t0);
            if (pi[i].revents & ZMQ_POLLIN)
                peer_drain(&peers[i], 1024);
        }
        peer_drain(sink, 4096);
        if (asking && (pi[np + 1].revents & ZMQ_POLLIN)) {
            asking = 0;
            if (bench_reply(ctl, 0, r->status, sizeof r->status) != 0)
                return -1;
            r->accepted = status_count(r->status, "accepted");
            if (r->accepted >= n) {
                r->t_accepted = bench_now_s() - t0;
                node_cpu(node, &r->cpu1);
                r->self1 = self_cpu();
                return 0;
            }
        }
        if (bench_now_s() > deadline)
            return -1;
    }
}

/* ---- the yardstick ---- */

/* Runs limits' pipeline section, echoing it; *relay gets the median
 * envelopes/s of the relay row. */
static int run_limits(const char *bin, double *relay)
{
    char cmd[4200], line[512];
    snprintf(cmd, sizeof cmd, "'%s' -s pipeline -t 0.5 -r 3 2>&1", bin);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    *relay = 0;
    while (fgets(line, sizeof line, p)) {
        const char *m = strstr(line, "-> median ");
        if (m && strstr(line, LIMITS_ROW) && line[0] == ' ')
            *relay = strtod(m + 10, NULL);
        if (m || strstr(line, "[pipeline]"))
            printf("  limits: %s", line);
    }
    return pclose(p) == 0 && *relay > 0 ? 0 : -1;
}

/* ---- one node run ---- */

/* Envelopes sender i of np sends; the shares add up to n. */
static size_t peer_share(size_t n, int np, int i)
{
    return n / (size_t)np + ((size_t)i < n % (size_t)np ? 1 : 0);
}

static void print_status_lines(const char *status)
{
    static const char *const keys[] = {"accepted",      "duplicates",   "rejected",
                                       "rejected rate", "rejected pow", "bans"};
    printf("node status:");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        printf(" %s %llu%s", keys[i], (unsigned long long)status_count(status, keys[i]),
               i + 1 < sizeof keys / sizeof keys[0] ? ";" : "\n");
}

/* Starts chapard, pushes the envelopes, stops it; *rate_out gets
 * envelopes/s. */
static int measure_node(const char *chapard, const char *chapar, const struct envs *e, size_t n,
                        int np, int keep, double *rate_out, double *cpu_out)
{
    struct daemon d;
    memset(&d, 0, sizeof d);
    chp_addr node;
    char ep[300];
    void *zctx = zmq_ctx_new();
    if (!zctx || start_node(chapard, zctx, &d) != 0 ||
        chp_addr_parse(d.addr, strlen(d.addr), &node) != CHP_OK ||
        chp_addr_endpoint(&node, ep, sizeof ep) != CHP_OK) {
        fprintf(stderr, "bench-ingest: chapard did not start (log: %s)\n", d.log);
        chp_ctl_destroy(&d.ctl);
        if (zctx)
            zmq_ctx_term(zctx);
        stop_node(&d);
        return -1;
    }
    printf("node %s at %s (home %s)\n", chapard, d.addr, d.home);

    struct peer peers[PEERS_MAX + 1];
    struct run r;
    memset(peers, 0, sizeof peers);
    memset(&r, 0, sizeof r);
    int rc = 1;
    size_t first = 0;
    for (int i = 0; i <= np; i++) {
        if (peer_open(zctx, &node, ep, &peers[i]) != 0) {
            fprintf(stderr, "bench-ingest: peer %d: %s\n", i, zmq_strerror(errno));
            goto out;
        }
        if (i < np) { /* the senders; peers[np] is the sink */
            size_t share = peer_share(n, np, i);
            peers[i].first = peers[i].next = first;
            peers[i].end = first + share;
            first += share;
        }
    }
    if (wait_hellos(peers, np + 1) != 0) {
        fprintf(stderr, "bench-ingest: the node did not answer every HELLO\n");
        goto out;
    }
    for (int i = 0; i < np; i++) {
        uint8_t f[4];
        size_t fl;
        if (chp_wire_prune(f, sizeof f, &fl) != CHP_OK || zmq_send(peers[i].s, f, fl, 0) < 0)
            goto out;
    }
    if (run_ingest(peers, np, d.ctl, e, n, d.pid, &r) != 0) {
        fprintf(stderr, "bench-ingest: the node accepted %llu of %zu in time\n",
                (unsigned long long)r.accepted, n);
        print_status_lines(r.status);
        goto out;
    }
    /* Let the forwards finish, then the final counters. */
    for (double end = bench_now_s() + 0.5; peers[np].rx_push < n && bench_now_s() < end;) {
        zmq_pollitem_t pi = {peers[np].s, 0, ZMQ_POLLIN, 0};
        zmq_poll(&pi, 1, 10);
        peer_drain(&peers[np], 4096);
    }
    if (peers[np].rx_push >= n)
        r.t_sink = peers[np].last_push_s - r.t0;
    if (bench_call(d.ctl, "status", NULL, 0, r.status, sizeof r.status) != 0)
        goto out;
    uint64_t ihave = 0;
    for (int i = 0; i < np; i++)
        ihave += peers[i].rx_ihave_ids;
    double cpu_main = r.cpu1.main - r.cpu0.main, cpu_all = r.cpu1.all - r.cpu0.all;
    double rate = (double)n / r.t_accepted;
    print_status_lines(r.status);
    printf("forwarded: sink got %llu envelopes in %llu frames (%s), senders got %llu ids in "
           "IHAVE\n",
           (unsigned long long)peers[np].rx_push, (unsigned long long)peers[np].rx_frames,
           g_single ? "PUSH" : "PUSHES", (unsigned long long)ihave);
    printf("all sent after                 %8.1f ms\n", r.t_sent * 1e3);
    printf("all accepted after             %8.1f ms  (status read every %d ms)\n",
           r.t_accepted * 1e3, STATUS_MS);
    if (r.t_sink > 0)
        printf("sink got the N-th forward after %7.1f ms  (second end mark: %.0f env/s)\n",
               r.t_sink * 1e3, (double)n / r.t_sink);
    printf("node CPU during the run        %8.1f ms main thread, %.1f ms all threads (%.0f%% of"
           " one core)\n",
           cpu_main * 1e3, cpu_all * 1e3, 100 * cpu_all / r.t_accepted);
    for (int i = 0; i < r.cpu1.nt; i++) { /* the writer thread is the second "chapard" */
        double c0 = 0, w0 = 0;
        for (int j = 0; j < r.cpu0.nt; j++)
            if (r.cpu0.tid[j] == r.cpu1.tid[i]) {
                c0 = r.cpu0.cpu[j];
                w0 = r.cpu0.wait[j];
            }
        if (r.cpu1.cpu[i] - c0 >= 0.0005)
            printf("  thread %-7d %-16s %8.1f ms CPU, %6.1f ms runnable waiting for a core\n",
                   r.cpu1.tid[i], r.cpu1.name[i], (r.cpu1.cpu[i] - c0) * 1e3,
                   (r.cpu1.wait[i] - w0) * 1e3);
    }
    printf("bench-ingest CPU (all threads) %8.1f ms  (%ld cores online)\n",
           (r.self1 - r.self0) * 1e3, sysconf(_SC_NPROCESSORS_ONLN));
    printf("node ingest                    %8.0f env/s\n", rate);
    *rate_out = rate;
    *cpu_out = cpu_all;
    rc = 0;
out:
    for (int i = 0; i <= np; i++)
        if (peers[i].s)
            zmq_close(peers[i].s);
    chp_ctl_destroy(&d.ctl);
    zmq_ctx_term(zctx);
    if (rc == 0) {
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "'%s' --home '%s' status | grep -E '^(accepted|rejected):'",
                 chapar, d.home);
        printf("chapar status:\n");
        fflush(stdout);
        if (system(cmd) != 0)
            printf("  (chapar status failed)\n");
    }
    stop_node(&d);
    if (keep)
        printf("kept %s\n", d.tmp);
    else
        bench_rm_tree(d.tmp);
    return rc;
}

/* ---- main ---- */

static void build_dir(const char *argv0, char *out, size_t cap)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        snprintf(self, sizeof self, "%s", argv0);
    else
        self[n] = '\0';
    for (int up = 0; up < 2; up++) { /* build/bench/bench-ingest -> build */
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(self, sizeof self, "..");
    }
    snprintf(out, cap, "%s", self);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-ingest [-n N] [-p PEERS] [-e ENVDIR] [-j JOBS] [-B BUILD_DIR]"
                    " [-L LIMITS_BINARY] [-k] [-1]\n");
}

int main(int argc, char **argv)
{
    size_t n = 20000;
    int np = 0, jobs = (int)sysconf(_SC_NPROCESSORS_ONLN), keep = 0, opt;
    const char *envdir = ENV_DIR, *limits = LIMITS_BIN;
    char bdir[4096] = "";
    while ((opt = getopt(argc, argv, "n:p:e:j:B:L:k1h")) != -1) {
        if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (opt == 'p')
            np = atoi(optarg);
        else if (opt == 'e')
            envdir = optarg;
        else if (opt == 'j')
            jobs = atoi(optarg);
        else if (opt == 'B')
            snprintf(bdir, sizeof bdir, "%s", optarg);
        else if (opt == 'L')
            limits = optarg;
        else if (opt == 'k')
            keep = 1;
        else if (opt == '1')
            g_single = 1;
        else {
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (!np)
        np = (int)((n + BURST_SAFE - 1) / BURST_SAFE);
    if (!n || np < 1 || np > PEERS_MAX || jobs < 1 || jobs > 64 || chp_crypto_init() != CHP_OK) {
        usage();
        return 2;
    }
    if (!bdir[0])
        build_dir(argv[0], bdir, sizeof bdir);
    char chapard[4200], chapar[4200], mkenv[4200];
    snprintf(chapard, sizeof chapard, "%s/bin/chapard", bdir);
    snprintf(chapar, sizeof chapar, "%s/bin/chapar", bdir);
    snprintf(mkenv, sizeof mkenv, "%s/tests/chapar-mkenv", bdir);

    /* Envelopes: the cache, topped up with fresh proof of work. */
    struct envs e;
    memset(&e, 0, sizeof e);
    size_t stale = 0;
    if (load_envs(envdir, n, &e, &stale) != 0)
        return 1;
    if (e.n < n) {
        printf("generating %zu envelopes into %s on %d cores (~25 ms of proof of work each)\n",
               n - e.n, envdir, jobs);
        fflush(stdout);
        double g0 = bench_now_s();
        if (gen_envs(mkenv, envdir, n - e.n, jobs) != 0 || load_envs(envdir, n, &e, &stale) != 0 ||
            e.n < n) {
            fprintf(stderr, "bench-ingest: could not make %zu envelopes with %s\n", n, mkenv);
            return 1;
        }
        printf("generated in %.0f s\n", bench_now_s() - g0);
    }
    printf("# bench-ingest: %zu envelopes (%zu bytes) from %s, %d sender peers + 1 sink%s\n", n,
           e.bytes, envdir, np, stale ? " (expired ones deleted)" : "");
    for (int i = 0; i < np; i++) {
        size_t share = peer_share(n, np, i);
        if (share > BURST_SAFE) {
            printf("note: %zu envelopes per peer exceed the node's per-peer burst; senders pace"
                   " at %.0f/s after %d (the per-peer limit caps a single peer at 5000/s)\n",
                   share, RATE_SAFE, BURST_SAFE);
            break;
        }
    }

    double y1 = 0, y2 = 0, rate = 0, cpu = 0;
    fflush(stdout);
    int l1 = run_limits(limits, &y1); /* the yardstick before and after */
    int rc = measure_node(chapard, chapar, &e, n, np, keep, &rate, &cpu);
    fflush(stdout);
    int l2 = rc == 0 ? run_limits(limits, &y2) : 0;
    if (rc == 0 && (l1 != 0 || l2 != 0)) {
        fprintf(stderr, "bench-ingest: %s failed; build it from shared/tools/limits\n", limits);
    } else if (rc == 0) {
        double y = (y1 + y2) / 2;
        printf("yardstick %s %8.0f env/s  (before %.0f, after %.0f)\n", LIMITS_ROW, y, y1, y2);
        printf("ratio node/yardstick           %8.2f  (target >= 0.70)\n", rate / y);
        /* What a relay operator pays: the node's CPU per accepted envelope
         * (all its threads, ZeroMQ's I/O thread too) over the yardstick's
         * CPU per envelope (one core: 1 / its rate). */
        printf("cpu ratio node/yardstick       %8.2f  (target <= 2.0: %.1f us against %.1f us per"
               " envelope)\n",
               cpu * y / (double)n, cpu * 1e6 / (double)n, 1e6 / y);
    }
    envs_free(&e);
    return rc;
}
