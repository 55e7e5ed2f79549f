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
#include "bench/benchlib.h"
#include "proto/envelope.h"
#include "proto/id.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define MAX_NODES     100
#define SPACING_MIN   10.0 /* ms between publishes */
#define SPACING_MAX   20.0
#define MESH_DEADLINE 60000.0 /* ms for the links to form */
#define DRAIN_MS      10000.0 /* ms after the last publish for stragglers */
#define GRACE_MS      500.0   /* ms of quiet after the last delivery */
#define STATUS_CAP    4096

enum { S_RX, S_ACCEPTED, S_DUPS, S_PRUNES, S_GRAFTS, S_IHAVE, S_SYNC, S_STORED, S_REJECTED, NSTAT };
static const char *const stat_keys[NSTAT] = {"bytes received", "accepted",         "duplicates",
                                             "prunes",         "grafts",           "ids announced",
                                             "sync rounds",    "envelopes stored", "rejected"};

struct node {
    struct bench_node d; /* home, process, control connection, address */
    int alive;
    long long st[3][NSTAT]; /* status before, amid and after a batch */
};

/* Where and when an envelope was published. */
struct pub {
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
    struct bench_env *env;
    struct pub *pub; /* [nenv], beside env */
    int nenv;
    double *arrive;      /* [env * nodes]: ms of the event, 0 = not (yet) */
    uint8_t *adj;        /* [nodes * nodes]: a connected link */
    int comp[MAX_NODES]; /* component of each live node in adj */
    double avg_degree;   /* of the live nodes in adj */
};

/* ---- small helpers ---- */

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

/* ---- control API ---- */

static int read_status(struct bench *b, int i, long long out[NSTAT])
{
    char text[STATUS_CAP];
    if (bench_call(b->nd[i].d.ctl, "status", NULL, 0, text, sizeof text) != 0) {
        fprintf(stderr, "bench-mesh: node %d does not answer `status`\n", i);
        return -1;
    }
    for (int k = 0; k < NSTAT; k++)
        if ((out[k] = bench_status_value(text, stat_keys[k])) < 0) {
            fprintf(stderr, "bench-mesh: node %d status lacks '%s'\n", i, stat_keys[k]);
            return -1;
        }
    return 0;
}

/* ---- the mesh ---- */

static int start_nodes(struct bench *b)
{
    for (int i = 0; i < b->nodes; i++) {
        struct node *n = &b->nd[i];
        snprintf(n->d.home, sizeof n->d.home, "%s/n%d", b->dir, i);
        if (bench_node_start(&n->d, b->chapard, b->zctx) != 0)
            return -1;
        n->alive = 1;
    }
    /* The requests wait in the DEALERs until each daemon binds. */
    for (int i = 0; i < b->nodes; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        if (bench_node_ready(&b->nd[i].d, name, 15000) != 0)
            return -1;
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
            if (bench_call(b->nd[i].d.ctl, "peer-add", b->nd[j].d.addr, strlen(b->nd[j].d.addr),
                           reply, sizeof reply) != 0) {
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
        if (bench_call(b->nd[i].d.ctl, "peers", NULL, 0, text, cap) != 0) {
            fprintf(stderr, "bench-mesh: node %d does not answer `peers`\n", i);
            free(text);
            return -1;
        }
        for (char *p = text; *p;) {
            uint8_t key[32];
            char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            char *tab = memchr(p, '\t', len); /* KEY (chpn1..., as in an address) TAB STATE */
            if (tab && chp_b32key_parse(CHP_NODEKEY_HRP, p, (size_t)(tab - p), key) == CHP_OK &&
                !strncmp(tab, "\tconnected\t", 11))
                for (int j = 0; j < b->nodes; j++)
                    if (b->nd[j].alive && j != i && !memcmp(b->nd[j].d.key, key, 32) &&
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
    double start = bench_now_ms(), connected_at = 0, still_since = 0;
    int last = -1, largest, isolated;
    for (;;) {
        if (bench_stopped())
            return -1;
        int links = read_graph(b);
        if (links < 0)
            return -1;
        int nc = components(b, &largest, &isolated);
        double t = bench_now_ms();
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
    uint8_t id[32];
    while (bench_next_envelope(&b->nd[i].d, id)) {
        int e = find_env(b, id);
        if (e >= 0 && b->arrive[(size_t)e * (size_t)b->nodes + (size_t)i] == 0)
            b->arrive[(size_t)e * (size_t)b->nodes + (size_t)i] = t;
    }
}

/* Takes events from every live node until the reply on ctl (when not
 * NULL) can be read (1), the clock reached until (0), or a failure (-1).
 * An event is timed when the poll that saw it returned. */
static int pump(struct bench *b, chp_ctl *ctl, double until)
{
    zmq_pollitem_t items[MAX_NODES + 1];
    int map[MAX_NODES];
    for (;;) {
        if (bench_stopped())
            return -1;
        int ni = 0;
        for (int i = 0; i < b->nodes; i++)
            if (b->nd[i].alive) {
                items[ni] = (zmq_pollitem_t){chp_ctl_evt_socket(b->nd[i].d.ctl), 0, ZMQ_POLLIN, 0};
                map[ni++] = i;
            }
        int ci = ni;
        if (ctl)
            items[ni++] = (zmq_pollitem_t){chp_ctl_req_socket(ctl), 0, ZMQ_POLLIN, 0};
        double t = bench_now_ms();
        if (t >= until)
            return 0;
        int rc = zmq_poll(items, ni, (long)(until - t) + 1);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        t = bench_now_ms();
        for (int k = 0; k < ci; k++)
            if (items[k].revents & ZMQ_POLLIN)
                drain_events(b, map[k], t);
        if (ctl && (items[ci].revents & ZMQ_POLLIN))
            return 1;
    }
}

static int expected(const struct bench *b, int e, int i)
{
    int p = b->pub[e].publisher;
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
    char reply[256] = "";
    for (int i = 0; i < b->nodes; i++)
        if (b->nd[i].alive)
            live[nlive++] = i;
    double next = bench_now_ms();
    for (int e = first; e < first + count; e++) {
        if (pump(b, NULL, next) < 0)
            return -1;
        struct pub *v = &b->pub[e];
        v->publisher = live[rng_below(b, nlive)];
        chp_ctl *ctl = b->nd[v->publisher].d.ctl;
        v->t_pub = bench_now_ms();
        if (bench_send(ctl, "publish", b->env[e].bytes, b->env[e].len) != 0 ||
            pump(b, ctl, v->t_pub + BENCH_CTL_MS) != 1 ||
            bench_reply(ctl, 0, reply, sizeof reply) != 0) {
            fprintf(stderr, "bench-mesh: publish at node %d failed: %s\n", v->publisher,
                    bench_stopped() ? "interrupted" : reply);
            return -1;
        }
        v->t_reply = bench_now_ms();
        next = v->t_pub + SPACING_MIN + (SPACING_MAX - SPACING_MIN) * rng_unit(b);
    }
    /* Until everything expected arrived, then a quiet grace period so that
     * trailing announcements are counted too. */
    double end = bench_now_ms() + DRAIN_MS;
    while (missing(b, first, count) && bench_now_ms() < end)
        if (pump(b, NULL, bench_now_ms() + 20) < 0)
            return -1;
    return pump(b, NULL, bench_now_ms() + GRACE_MS) < 0 ? -1 : 0;
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
        const struct pub *v = &b->pub[e];
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
    bench_sort(lat, nlat);
    f->p50 = bench_pct(lat, nlat, 50);
    f->p90 = bench_pct(lat, nlat, 90);
    f->p99 = bench_pct(lat, nlat, 99);
    f->max = bench_pct(lat, nlat, 100);
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
        if (bench_call(b->nd[i].d.ctl, "peers", NULL, 0, peers, sizeof peers) == 0)
            fprintf(stderr, "%s", peers);
    }
    for (int e = first; e < first + count; e++) {
        const struct pub *v = &b->pub[e];
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
        rtt[e - first] = b->pub[e].t_reply - b->pub[e].t_pub;
    bench_sort(rtt, (size_t)count);
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
           bench_pct(rtt, (size_t)count, 50), bench_pct(rtt, (size_t)count, 99));
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
        bench_node_stop(&b->nd[v].d);
        b->nd[v].alive = 0;
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
    for (int i = 0; i < b->nodes; i++)
        bench_node_stop(&b->nd[i].d);
    if (b->zctx)
        zmq_ctx_term(b->zctx);
    bench_temp_done(b->dir, b->keep);
    bench_free_envelopes(b->env, b->nenv);
    free(b->pub);
    free(b->arrive);
    free(b->adj);
}

static int run(struct bench *b)
{
    if (bench_temp_dir("chapar-mesh", b->dir, sizeof b->dir) != 0)
        return -1;
    b->nenv = 2 * b->count;
    b->env = calloc((size_t)b->nenv, sizeof *b->env);
    b->pub = calloc((size_t)b->nenv, sizeof *b->pub);
    b->arrive = calloc((size_t)b->nenv * (size_t)b->nodes, sizeof *b->arrive);
    b->adj = calloc((size_t)b->nodes * (size_t)b->nodes, 1);
    if (!b->env || !b->pub || !b->arrive || !b->adj || !(b->zctx = zmq_ctx_new()))
        return -1;
    printf("bench-mesh: %d nodes, each dials %d, %d envelopes per batch, payload %d, kill "
           "%.0f %%, seed %llu\n",
           b->nodes, b->peers, b->count, b->payload, b->kill_frac * 100,
           (unsigned long long)b->seed);
    fflush(stdout);
    double t = bench_now_ms();
    if (bench_make_envelopes(b->mkenv, b->dir, b->nenv, b->payload, b->env) != 0)
        return -1;
    printf("envelopes: %d of %zu bytes made in %.1f s (proof of work, before any timing)\n",
           b->nenv, b->env[0].len, (bench_now_ms() - t) / 1e3);
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
    bench_init("bench-mesh");
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
    if (bench_setup() != 0)
        return 1;
    int rc = run(&b);
    if (rc != 0 && b.dir[0])
        b.keep = 1; /* keep the logs of a failed run */
    cleanup(&b);
    return bench_exit_code(rc);
}
