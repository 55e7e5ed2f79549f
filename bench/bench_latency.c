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
#include "bench/benchlib.h"
#include "proto/envelope.h"

#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#define CHAIN     6 /* A..F */
#define WARMUP    10
#define SAMPLE_MS 5000.0 /* ms for one envelope to reach F */
#define PAUSE_MS  2.0    /* idle ms between samples */

struct bench {
    int samples, payload, keep;
    const char *chapard, *mkenv;
    char dir[256];
    void *zctx;
    struct bench_node nd[CHAIN];
    struct bench_env *env;
    int nenv;
    MDB_env *ref;
};

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
    const struct bench_env *v = &b->env[e];
    MDB_val k = {32, (void *)v->id}, val = {v->len, v->bytes};
    MDB_txn *txn;
    MDB_dbi dbi;
    double t0 = bench_now_ms();
    int rc = mdb_txn_begin(b->ref, NULL, 0, &txn);
    if (rc != 0)
        return -1;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) == 0 && (rc = mdb_put(txn, dbi, &k, &val, 0)) == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    return rc == 0 ? bench_now_ms() - t0 : -1;
}

/* ---- the chain ---- */

static int start_chain(struct bench *b)
{
    char reply[256];
    for (int i = 0; i < CHAIN; i++) {
        struct bench_node *d = &b->nd[i];
        snprintf(d->home, sizeof d->home, "%s/%c", b->dir, 'A' + i);
        if (bench_node_start(d, b->chapard, b->zctx) != 0)
            return -1;
    }
    for (int i = 0; i < CHAIN; i++) { /* the requests wait until each daemon binds */
        char name[2] = {(char)('A' + i), '\0'};
        if (bench_node_ready(&b->nd[i], name, 15000) != 0)
            return -1;
    }
    for (int i = 0; i + 1 < CHAIN; i++)
        if (bench_call(b->nd[i].ctl, "peer-add", b->nd[i + 1].addr, strlen(b->nd[i + 1].addr),
                       reply, sizeof reply) != 0) {
            fprintf(stderr, "bench-latency: %c peer-add %c: %s\n", 'A' + i, 'B' + i, reply);
            return -1;
        }
    /* Linked when the ends have one neighbour and the middle two each. */
    double end = bench_now_ms() + 20000;
    for (int done = 0; !done;) {
        done = 1;
        for (int i = 0; i < CHAIN && done; i++) {
            char text[4096];
            long long want = i == 0 || i == CHAIN - 1 ? 1 : 2;
            if (bench_call(b->nd[i].ctl, "status", NULL, 0, text, sizeof text) != 0)
                return -1;
            done = bench_status_value(text, "peers connected") == want;
        }
        if (!done && (bench_stopped() || bench_now_ms() > end)) {
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

/* One sample: publishes env e at A and fills at[i] with the ms from just
 * before the request to node i's event (at[0]: to A's reply). Returns 1
 * when every node had it in time, 0 when not (at[i] < 0 for those
 * missing), -1 on a failure. */
static int sample(struct bench *b, int e, double at[CHAIN])
{
    const struct bench_env *v = &b->env[e];
    zmq_pollitem_t items[CHAIN + 1];
    char reply[256];
    for (int i = 0; i < CHAIN; i++) {
        at[i] = -1;
        items[i] = (zmq_pollitem_t){chp_ctl_evt_socket(b->nd[i].ctl), 0, ZMQ_POLLIN, 0};
    }
    items[CHAIN] = (zmq_pollitem_t){chp_ctl_req_socket(b->nd[0].ctl), 0, ZMQ_POLLIN, 0};
    double t0 = bench_now_ms();
    if (bench_send(b->nd[0].ctl, "publish", v->bytes, v->len) != 0)
        return -1;
    for (;;) {
        if (bench_stopped())
            return -1;
        double t = bench_now_ms();
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
        t = bench_now_ms();
        for (int i = 0; rc > 0 && i < CHAIN; i++) {
            uint8_t id[32];
            /* A's own event is read too, or the poll would not sleep */
            while ((items[i].revents & ZMQ_POLLIN) && bench_next_envelope(&b->nd[i], id))
                if (i > 0 && !memcmp(id, v->id, 32))
                    at[i] = t - t0;
        }
        if (rc > 0 && (items[CHAIN].revents & ZMQ_POLLIN)) {
            if (bench_reply(b->nd[0].ctl, 0, reply, sizeof reply) != 0) {
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
    bench_sort(ref, cnt[0]);
    double r50 = bench_pct(ref, cnt[0], 50), p50[CHAIN], p99[CHAIN];
    for (int i = 0; i < CHAIN; i++) {
        double *v = lat + (size_t)(i + 1) * (size_t)n;
        size_t c = cnt[i + 1];
        char label[64];
        bench_sort(v, c);
        p50[i] = bench_pct(v, c, 50);
        p99[i] = bench_pct(v, c, 99);
        if (i == 0)
            snprintf(label, sizeof label, "publish reply at A (1)");
        else
            snprintf(label, sizeof label, "%d hop%s, at %c (%d)", i, i == 1 ? "" : "s", 'A' + i,
                     i + 1);
        printf("%-28s %8zu %8.2f %8.2f %8.2f %8.2f %12.1f\n", label, c, p50[i], bench_pct(v, c, 90),
               p99[i], bench_pct(v, c, 100), p50[i] / r50);
    }
    printf("%-28s %8zu %8.2f %8.2f %8.2f %8.2f %12.1f\n", "reference: one LMDB commit", cnt[0], r50,
           bench_pct(ref, cnt[0], 90), bench_pct(ref, cnt[0], 99), bench_pct(ref, cnt[0], 100),
           1.0);
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
    for (int i = 0; i < CHAIN; i++)
        bench_node_stop(&b->nd[i]);
    if (b->zctx)
        zmq_ctx_term(b->zctx);
    if (b->ref)
        mdb_env_close(b->ref);
    bench_temp_done(b->dir, b->keep);
    bench_free_envelopes(b->env, b->nenv);
}

static int run(struct bench *b)
{
    if (bench_temp_dir("chapar-lat", b->dir, sizeof b->dir) != 0)
        return -1;
    b->nenv = WARMUP + b->samples;
    if (!(b->env = calloc((size_t)b->nenv, sizeof *b->env)) || !(b->zctx = zmq_ctx_new()))
        return -1;
    printf("bench-latency: chain A-B-C-D-E-F on loopback, %d samples (+%d warm-up), payload "
           "%d\n",
           b->samples, WARMUP, b->payload);
    fflush(stdout);
    double t = bench_now_ms();
    if (bench_make_envelopes(b->mkenv, b->dir, b->nenv, b->payload, b->env) != 0)
        return -1;
    printf("envelopes: %d of %zu bytes made in %.1f s (proof of work, before any timing)\n",
           b->nenv, b->env[0].len, (bench_now_ms() - t) / 1e3);
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
    bench_init("bench-latency");
    b.samples = 500;
    b.payload = 900;
    b.chapard = getenv("CHAPARD") ? getenv("CHAPARD") : CHP_CHAPARD_PATH;
    b.mkenv = getenv("CHAPAR_MKENV") ? getenv("CHAPAR_MKENV") : CHP_MKENV_PATH;
    if (parse_args(&b, argc, argv) != 0)
        return 2;
    if (bench_setup() != 0)
        return 1;
    int rc = run(&b);
    if (rc != 0 && b.dir[0])
        b.keep = 1; /* keep the logs of a failed run */
    cleanup(&b);
    return bench_exit_code(rc);
}
