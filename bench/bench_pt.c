/* bench_pt.c - what the obfs4 pluggable transport costs a link (issue 17):
 * one hop through obfs4proxy against the plain CURVE link, in the same
 * run, on loopback.
 *
 *   bench-pt [-n SAMPLES] [-g ENVELOPES] [--keep]
 *
 * Node R serves both its plain listener and an obfs4 one (listen-obfs4 in
 * its chapard.conf); it runs the obfs4 server, and each node dialling its
 * obfs4 address runs an obfs4 client: bytes go node - obfs4proxy -
 * obfs4proxy - node, all real processes.
 *
 * Goodput: R holds G large envelopes (15000-byte payloads); a fresh node
 * links to R and takes them all by sync. Timed from its link being up
 * (its `peer up` event: the PT client started, the obfs4 and CURVE
 * handshakes and HELLO done; the dialler starts its sync session at that
 * HELLO) to its `envelopes stored` reaching G (status polled every 2 ms;
 * a status poll for the start came back only after a busy daemon had
 * stored the whole plain batch): the sync's reconciliation, IWANT and the
 * bulk of pushes and commits, which is what the link carries; MB/s per
 * transport over its two runs' summed times. The time from `peer-add`,
 * set-up included, is the second figure. G stays below what one sync
 * session moves (the 8 MiB flow window and a receiver's 32 MiB rate-limit
 * burst, node/mesh/send.c and admit.c): beyond it the rest waits for the
 * next session or the rate limit, which measures the schedule, not the
 * link. Four fresh nodes in the order plain, obfs4, obfs4, plain (ABBA:
 * neither is favoured by a warmer cache), each alone.
 *
 * Latency: with a plain node P and an obfs4 node O both linked to R, each
 * sample publishes one small envelope at R and times the `envelope` event
 * at P and at O (after their commits), so both paths see the same
 * moment. Ten warm-up samples go first.
 *
 * Needs obfs4proxy (scripts/install-deps --test). Exit 0 after a complete
 * run, 1 on a failure, 2 on bad usage. */
#include "bench/benchlib.h"
#include "proto/envelope.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define WARMUP      10
#define SAMPLE_MS   5000.0
#define BIG_PAYLOAD 15000
#define SMALL       900
#define NRX         4 /* goodput receivers: plain, obfs4, obfs4, plain */

struct bench {
    int samples, goodput, keep;
    const char *chapard, *mkenv;
    char dir[256];
    void *zctx;
    struct bench_node r, p, o, rx[NRX];
    char oaddr[CHP_ADDR_STR_MAX + 1];
    struct bench_env *big, *small;
};

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int start(struct bench *b, struct bench_node *d, const char *name)
{
    snprintf(d->home, sizeof d->home, "%s/%s", b->dir, name);
    return bench_node_start(d, b->chapard, b->zctx) != 0 || bench_node_ready(d, name, 15000) != 0
               ? -1
               : 0;
}

static long long status_of(struct bench_node *d, const char *key)
{
    char text[4096];
    return bench_call(d->ctl, "status", NULL, 0, text, sizeof text) == 0
               ? bench_status_value(text, key)
               : -1;
}

/* Waits until key of d's status reaches want; the ms it took, or -1. */
static double await(struct bench_node *d, const char *key, long long want, double t0,
                    double limit_ms)
{
    for (;;) {
        long long v = status_of(d, key);
        double t = bench_now_ms();
        if (v >= want)
            return t - t0;
        if (v < 0 || bench_stopped() || t - t0 > limit_ms)
            return -1;
        pause_ms(2);
    }
}

/* R with an obfs4 server; its obfs4 address into b->oaddr. */
static int start_relay(struct bench *b)
{
    char path[400], text[2 * CHP_ADDR_STR_MAX + 8];
    snprintf(b->r.home, sizeof b->r.home, "%s/R", b->dir);
    snprintf(path, sizeof path, "%s/chapard.conf", b->r.home);
    FILE *f;
    if (mkdir(b->r.home, 0700) != 0 || !(f = fopen(path, "w")))
        return -1;
    fputs("listen-obfs4 = 127.0.0.1:0\n", f);
    fclose(f);
    if (start(b, &b->r, "R") != 0)
        return -1;
    for (double end = bench_now_ms() + 15000; bench_now_ms() < end && !bench_stopped();) {
        if (bench_call(b->r.ctl, "address", NULL, 0, text, sizeof text) == 0) {
            char *o = strstr(text, "\nobfs4:");
            if (o) {
                snprintf(b->oaddr, sizeof b->oaddr, "%s", o + 1);
                return 0;
            }
        }
        pause_ms(20);
    }
    fprintf(stderr, "bench-pt: R printed no obfs4 address (is obfs4proxy installed? see %s.log)\n",
            b->r.home);
    return -1;
}

static int peer_add(struct bench_node *d, const char *addr)
{
    char reply[256];
    if (bench_call(d->ctl, "peer-add", addr, strlen(addr), reply, sizeof reply) != 0) {
        fprintf(stderr, "bench-pt: peer-add: %s\n", reply);
        return -1;
    }
    return 0;
}

static int publish(struct bench_node *d, const struct bench_env *e)
{
    char reply[256];
    return bench_call(d->ctl, "publish", e->bytes, e->len, reply, sizeof reply) == 0 ? 0 : -1;
}

/* Waits for d's "peer up" event (its link's HELLO came: the PT client,
 * the obfs4 and CURVE handshakes are behind it, and its sync starts then):
 * the time it came, or -1. */
static double await_up(struct bench_node *d, double limit_ms)
{
    zmq_pollitem_t it = {chp_ctl_evt_socket(d->ctl), 0, ZMQ_POLLIN, 0};
    for (double t0 = bench_now_ms(); !bench_stopped() && bench_now_ms() - t0 < limit_ms;) {
        char *topic, *body;
        size_t len;
        while (chp_ctl_event(d->ctl, &topic, &body, &len) == 1) {
            int up = !strcmp(topic, "peer") && len == 2 && !memcmp(body, "up", 2);
            free(topic);
            free(body);
            if (up)
                return bench_now_ms();
        }
        if (zmq_poll(&it, 1, 1) < 0 && errno != EINTR)
            return -1;
    }
    return -1;
}

/* One goodput receiver: a fresh node fetches R's G envelopes; *xfer the
 * ms from its link being up to the G-th stored, *all from peer-add. */
static int fetch(struct bench *b, int i, double *xfer, double *all)
{
    char name[8];
    int obfs4 = i == 1 || i == 2;
    struct bench_node *d = &b->rx[i];
    double bytes = (double)b->goodput * (double)b->big[0].len;
    snprintf(name, sizeof name, "G%d", i);
    if (start(b, d, name) != 0 || chp_ctl_subscribe(d->ctl, "peer") != CHP_OK)
        return -1;
    pause_ms(300); /* the events socket connects and subscribes */
    double t0 = bench_now_ms();
    if (peer_add(d, obfs4 ? b->oaddr : b->r.addr) != 0)
        return -1;
    double up = await_up(d, 20000) - t0;
    double ms = up < 0 ? -1 : await(d, "envelopes stored", b->goodput, t0 + up, 120000);
    if (ms < 0) {
        fprintf(stderr, "bench-pt: %s did not get the %d envelopes\n", name, b->goodput);
        return -1;
    }
    double whole = bench_now_ms() - t0;
    *xfer = ms;
    *all = whole;
    printf("goodput %-3s (%s): %d envelopes (%.1f MB): link up after %4.0f ms, then all in "
           "%5.0f ms = %6.2f MB/s (from peer-add: %5.0f ms = %6.2f MB/s)\n",
           name, obfs4 ? "obfs4" : "plain", b->goodput, bytes / 1e6, up, ms, bytes / ms / 1e3,
           whole, bytes / whole / 1e3);
    fflush(stdout);
    bench_node_stop(d);
    return 0;
}

static int run_goodput(struct bench *b, double xfer[NRX], double all[NRX])
{
    for (int i = 0; i < b->goodput; i++)
        if (publish(&b->r, &b->big[i]) != 0)
            return -1;
    for (int i = 0; i < NRX; i++)
        if (fetch(b, i, &xfer[i], &all[i]) != 0)
            return -1;
    return 0;
}

/* One sample: the ms from just before `publish` at R to the event at P
 * (at[0]) and at O (at[1]); 1 when both came, 0 if not, -1 on failure. */
static int sample(struct bench *b, const struct bench_env *v, double at[2])
{
    struct bench_node *rx[2] = {&b->p, &b->o};
    zmq_pollitem_t items[2];
    char reply[256];
    at[0] = at[1] = -1;
    for (int i = 0; i < 2; i++)
        items[i] = (zmq_pollitem_t){chp_ctl_evt_socket(rx[i]->ctl), 0, ZMQ_POLLIN, 0};
    double t0 = bench_now_ms();
    if (bench_send(b->r.ctl, "publish", v->bytes, v->len) != 0)
        return -1;
    while (at[0] < 0 || at[1] < 0) {
        double t = bench_now_ms();
        if (bench_stopped() || t - t0 > SAMPLE_MS)
            break;
        int rc = zmq_poll(items, 2, (long)(t0 + SAMPLE_MS - t) + 1);
        if (rc < 0 && errno != EINTR)
            return -1;
        t = bench_now_ms();
        for (int i = 0; rc > 0 && i < 2; i++) {
            uint8_t id[32];
            while ((items[i].revents & ZMQ_POLLIN) && bench_next_envelope(rx[i], id))
                if (!memcmp(id, v->id, 32))
                    at[i] = t - t0;
        }
    }
    if (bench_reply(b->r.ctl, 1000, reply, sizeof reply) != 0)
        return -1;
    return at[0] >= 0 && at[1] >= 0;
}

static int run_latency(struct bench *b, double p50[2])
{
    int n = b->samples;
    double *lat = malloc(2 * (size_t)n * sizeof *lat);
    size_t cnt[2] = {0, 0};
    if (!lat)
        return -1;
    for (int e = 0; e < WARMUP + n; e++) {
        double at[2];
        if (sample(b, &b->small[e], at) < 0) {
            free(lat);
            return -1;
        }
        for (int i = 0; e >= WARMUP && i < 2; i++)
            if (at[i] >= 0)
                lat[(size_t)i * (size_t)n + cnt[i]++] = at[i];
        pause_ms(2);
    }
    printf("\n%-24s %8s %8s %8s %8s %8s\n", "one hop, R to", "samples", "p50 ms", "p90 ms",
           "p99 ms", "max ms");
    for (int i = 0; i < 2; i++) {
        double *v = lat + (size_t)i * (size_t)n;
        bench_sort(v, cnt[i]);
        p50[i] = bench_pct(v, cnt[i], 50);
        printf("%-24s %8zu %8.2f %8.2f %8.2f %8.2f\n", i ? "O (obfs4)" : "P (plain, yardstick)",
               cnt[i], p50[i], bench_pct(v, cnt[i], 90), bench_pct(v, cnt[i], 99),
               bench_pct(v, cnt[i], 100));
    }
    free(lat);
    return 0;
}

static int run(struct bench *b)
{
    if (bench_temp_dir("chapar-pt", b->dir, sizeof b->dir) != 0 || !(b->zctx = zmq_ctx_new()) ||
        !(b->big = calloc((size_t)b->goodput, sizeof *b->big)) ||
        !(b->small = calloc((size_t)(WARMUP + b->samples), sizeof *b->small)))
        return -1;
    printf("bench-pt: one hop through obfs4proxy vs the plain link, loopback; %d latency "
           "samples (+%d warm-up), goodput %d envelopes\n",
           b->samples, WARMUP, b->goodput);
    fflush(stdout);
    if (bench_make_envelopes(b->mkenv, b->dir, b->goodput, BIG_PAYLOAD, b->big) != 0 ||
        bench_make_envelopes(b->mkenv, b->dir, WARMUP + b->samples, SMALL, b->small) != 0)
        return -1;
    if (start_relay(b) != 0)
        return -1;
    double xfer[NRX], all[NRX], p50[2];
    if (run_goodput(b, xfer, all) != 0)
        return -1;
    if (start(b, &b->p, "P") != 0 || start(b, &b->o, "O") != 0 || peer_add(&b->p, b->r.addr) ||
        peer_add(&b->o, b->oaddr) || await(&b->p, "envelopes stored", b->goodput, 0, 1e12) < 0 ||
        await(&b->o, "links obfs4", 1, bench_now_ms(), 20000) < 0 ||
        await(&b->o, "envelopes stored", b->goodput, bench_now_ms(), 60000) < 0)
        return -1;
    if (run_latency(b, p50) != 0)
        return -1;
    /* The same bytes each time: MB/s over the two runs' summed times. */
    double kb2 = 2 * (double)b->goodput * (double)b->big[0].len / 1e3;
    double plain = kb2 / (xfer[0] + xfer[3]), obfs4 = kb2 / (xfer[1] + xfer[2]);
    printf("\ngoodput, link up to the last stored: plain %.2f MB/s, obfs4 %.2f MB/s: obfs4/plain "
           "= %.2f (target >= 0.5: %s)\n",
           plain, obfs4, obfs4 / plain, obfs4 / plain >= 0.5 ? "met" : "MISSED");
    plain = kb2 / (all[0] + all[3]), obfs4 = kb2 / (all[1] + all[2]);
    printf("goodput, peer-add to the last stored (link set-up included): plain %.2f MB/s, obfs4 "
           "%.2f MB/s: obfs4/plain = %.2f\n",
           plain, obfs4, obfs4 / plain);
    printf("latency p50: plain %.2f ms, obfs4 %.2f ms: +%.2f ms, obfs4/plain = %.2f (target "
           "<= plain + 2 ms: %s)\n",
           p50[0], p50[1], p50[1] - p50[0], p50[1] / p50[0],
           p50[1] <= p50[0] + 2 ? "met" : "MISSED");
    return 0;
}

static int parse_args(struct bench *b, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--keep")) {
            b->keep = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: bench-pt [-n SAMPLES] [-g ENVELOPES] [--keep]\n"
                   "  -n SAMPLES    latency samples (default 300)\n"
                   "  -g ENVELOPES  15000-byte-payload envelopes synced per goodput run "
                   "(default 450;\n"
                   "                about 500 fill one sync session's 8 MiB flow window)\n"
                   "  --keep        keep the temp dir (daemon logs)\n");
            exit(0);
        }
        long x = v ? strtol(v, &end, 10) : 0;
        if (!v || (strcmp(a, "-n") && strcmp(a, "-g")) || *end || x < 1 || x > 100000) {
            fprintf(stderr, "bench-pt: %s: unknown option or bad value (try --help)\n", a);
            return -1;
        }
        *(a[1] == 'n' ? &b->samples : &b->goodput) = (int)x;
        i++;
    }
    return 0;
}

static void cleanup(struct bench *b)
{
    bench_node_stop(&b->r);
    bench_node_stop(&b->p);
    bench_node_stop(&b->o);
    for (int i = 0; i < NRX; i++)
        bench_node_stop(&b->rx[i]);
    if (b->zctx)
        zmq_ctx_term(b->zctx);
    bench_temp_done(b->dir, b->keep);
    bench_free_envelopes(b->big, b->goodput);
    bench_free_envelopes(b->small, WARMUP + b->samples);
}

int main(int argc, char **argv)
{
    static struct bench b;
    bench_init("bench-pt");
    b.samples = 300;
    b.goodput = 450;
    b.chapard = getenv("CHAPARD") ? getenv("CHAPARD") : CHP_CHAPARD_PATH;
    b.mkenv = getenv("CHAPAR_MKENV") ? getenv("CHAPAR_MKENV") : CHP_MKENV_PATH;
    if (parse_args(&b, argc, argv) != 0)
        return 2;
    if (bench_setup() != 0)
        return 1;
    int rc = run(&b);
    if (rc != 0 && b.dir[0])
        b.keep = 1;
    cleanup(&b);
    return bench_exit_code(rc);
}
