/* bench_bundle.c - bundles: import rate against the store's own durable
 * batched ingest in the same run, and what `export --for` writes for a
 * want against what is really missing.
 *
 *   bench-bundle [-n N] [-s STORE_N] [-d DIFF_PERMILLE] [-e ENVDIR] [-B BUILD_DIR] [-k]
 *
 * Import: N valid envelopes (real proofs of work: the files of ENVDIR,
 * default /tmp/chapar-bench-envs, bench-ingest's cache; the shortfall made
 * with chapar-mkenv) in an open bundle, imported by a real chapard --relay
 * (`bundle-import`, then `bundle-status` every 5 ms until done: every
 * envelope checked, stored durably through the mesh's group commit,
 * forwarded). The yardstick is chp_store_put_batch of the same envelopes
 * in batches of 4096, durable, into a fresh store, run just before and just
 * after the node; the figure is the node's rate over their mean.
 *
 * Reconciliation: two stores of STORE_N (default 100,000) 1 KiB envelopes
 * written directly (the store does not look inside), A holding all, B all
 * but DIFF_PERMILLE/1000 of them chosen at random (default 10: 1 %); then
 * chapard on each, `bundle want` at B and `bundle export --for` at A, open
 * and sealed. Printed: the want's bytes, the bundle's bytes, the bytes of
 * the envelopes B lacks, and their ratio (target <= 1.1), and the same
 * with B also holding as many envelopes A lacks (both sides differ). */
#include "bench/benchlib.h"
#include "node/store/store.h"
#include "proto/bundle.h"
#include "proto/crypto.h"
#include "proto/envelope.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define ENV_DIR   "/tmp/chapar-bench-envs"
#define BATCH     4096 /* node/mesh/ingest.c INGEST_MAX */
#define FAKE_LEN  1024
#define VALID_FOR 600

struct opts {
    int n, store_n, diff, keep;
    const char *envdir, *build;
};

/* ---- envelopes ---- */

/* Valid envelopes from dir (up to want), then made ones for the rest. */
static int load_envs(const struct opts *o, struct bench_env *env, const char *tmp)
{
    int n = 0;
    DIR *d = opendir(o->envdir);
    struct dirent *e;
    uint64_t later = (uint64_t)time(NULL) + VALID_FOR;
    while (d && n < o->n && (e = readdir(d))) {
        char path[4200];
        uint8_t buf[CHP_ENV_MAX_BYTES + 1];
        snprintf(path, sizeof path, "%s/%s", o->envdir, e->d_name);
        FILE *f = e->d_name[0] == '.' ? NULL : fopen(path, "rb");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (chp_envelope_check(buf, len, later, NULL, NULL, env[n].id) != CHP_OK ||
            !(env[n].bytes = malloc(len)))
            continue;
        memcpy(env[n].bytes, buf, len);
        env[n++].len = len;
    }
    if (d)
        closedir(d);
    printf("envelopes: %d from %s", n, o->envdir);
    if (n < o->n) {
        char mkenv[4200];
        snprintf(mkenv, sizeof mkenv, "%s/tests/tools/chapar-mkenv", o->build);
        printf(", %d made now", o->n - n);
        fflush(stdout);
        if (bench_make_envelopes(mkenv, tmp, o->n - n, 900, env + n) != 0)
            return -1;
    }
    printf("\n");
    return 0;
}

/* ---- the yardstick: the store's durable batched ingest ---- */

static double store_rate(const struct bench_env *env, int n, const char *dir)
{
    chp_store *s;
    chp_store_opts so = {.quota = 4ull << 30};
    if (chp_store_open(dir, &so, &s, NULL) != CHP_OK)
        return -1;
    chp_store_item *items = calloc(BATCH, sizeof *items);
    double t0 = bench_now_s();
    uint64_t now = (uint64_t)time(NULL);
    for (int i = 0; items && i < n; i += BATCH) {
        int k = n - i < BATCH ? n - i : BATCH;
        for (int j = 0; j < k; j++) {
            chp_env_hdr h;
            if (chp_envelope_parse(env[i + j].bytes, env[i + j].len, &h, NULL, NULL, NULL))
                memset(&h, 0, sizeof h); /* checked when loaded: cannot happen */
            items[j] = (chp_store_item){.env = env[i + j].bytes,
                                        .len = env[i + j].len,
                                        .id = env[i + j].id,
                                        .created = h.created,
                                        .expiry = h.expiry,
                                        .received = now};
        }
        if (chp_store_put_batch(s, items, (size_t)k) != CHP_OK)
            break;
    }
    double t = bench_now_s() - t0;
    free(items);
    chp_store_close(&s);
    bench_rm_store(dir);
    return n / t;
}

/* ---- chapard ---- */

/* chapard --relay in home, with a control connection that subscribes to no
 * event (bench_node_start's `envelope` subscription would make the node
 * publish one event per imported envelope to us). */
static int start(struct bench_node *d, const struct opts *o, const char *home, void *zctx)
{
    char chapard[4200], log[420];
    snprintf(chapard, sizeof chapard, "%s/bin/chapard", o->build);
    snprintf(d->home, sizeof d->home, "%s", home);
    snprintf(log, sizeof log, "%s.log", home);
    const char *argv[] = {chapard,       "--home",         home, "--relay", "--listen",
                          "127.0.0.1:0", "--no-discovery", NULL};
    if ((d->pid = bench_spawn(argv, log)) < 0 || chp_ctl_open(home, zctx, &d->ctl) != CHP_OK ||
        bench_send(d->ctl, "address", NULL, 0) != 0)
        return -1;
    return bench_node_ready(d, home, 20000);
}

/* A bundle request with its arguments, the passphrase frame last. */
static int call(struct bench_node *d, const char *cmd, int n, const char *const *a, char *out,
                size_t cap)
{
    size_t l[6];
    for (int i = 0; i < n; i++)
        l[i] = strlen(a[i]);
    chp_ctl_answer r;
    if (chp_ctl_call(d->ctl, 600000, cmd, n, a, l, &r) != 1)
        return -1;
    snprintf(out, cap, "%s", r.body);
    int ok = r.ok;
    chp_ctl_answer_free(&r);
    return ok ? 0 : 1;
}

static double import_rate(const struct opts *o, const char *path, const char *home, void *zctx,
                          int n)
{
    struct bench_node d = {0};
    char job[64], st[800];
    if (start(&d, o, home, zctx) != 0)
        return -1;
    const char *a[2] = {path, ""};
    double t0 = bench_now_s(), t = -1;
    if (call(&d, "bundle-import", 2, a, job, sizeof job) == 0) {
        const char *s[1] = {job};
        int rc;
        while ((rc = call(&d, "bundle-status", 1, s, st, sizeof st)) == 0 &&
               !strncmp(st, "running", 7)) {
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        t = bench_now_s() - t0;
        printf("import: %s\n", st);
    }
    bench_node_stop(&d);
    return t > 0 ? n / t : -1;
}

static int write_bundle_file(const struct bench_env *env, int n, const char *path)
{
    chp_buf b = {0};
    chp_bundle_wr w;
    FILE *f = fopen(path, "wb");
    int rc = f ? chp_bundle_wr_begin(&w, CHP_BUNDLE_KIND_ENVELOPES, &b) : -1;
    for (int i = 0; rc == CHP_OK && i < n; i++)
        rc = chp_bundle_wr_rec(&w, CHP_REC_ENVELOPE, env[i].bytes, env[i].len, &b);
    if (rc == CHP_OK)
        rc = chp_bundle_wr_end(&w, &b);
    if (rc == CHP_OK && fwrite(b.p, 1, b.len, f) != b.len)
        rc = -1;
    if (f && fclose(f) != 0)
        rc = -1;
    chp_buf_free(&b);
    return rc;
}

#define ROUNDS 3

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ROUNDS of yardstick, import, yardstick (fresh stores each time): the
 * median of the import rate over the mean of the yardsticks around it. */
static int bench_import(const struct opts *o, const char *tmp, void *zctx)
{
    struct bench_env *env = calloc((size_t)o->n, sizeof *env);
    char path[400], home[400], sdir[400];
    double ratio[ROUNDS];
    snprintf(path, sizeof path, "%s/all.bundle", tmp);
    snprintf(sdir, sizeof sdir, "%s/yardstick", tmp);
    if (!env || load_envs(o, env, tmp) != 0 || write_bundle_file(env, o->n, path) != 0)
        return -1;
    for (int k = 0; k < ROUNDS; k++) {
        snprintf(home, sizeof home, "%s/importer%d", tmp, k);
        double y1 = store_rate(env, o->n, sdir);
        double r = import_rate(o, path, home, zctx, o->n);
        double y2 = store_rate(env, o->n, sdir);
        bench_rm_store(home);
        if (y1 <= 0 || y2 <= 0 || r <= 0)
            return -1;
        ratio[k] = r / ((y1 + y2) / 2);
        printf("round %d: store durable batched ingest %.0f and %.0f env/s, bundle import %.0f "
               "env/s: %.2fx\n",
               k + 1, y1, y2, r, ratio[k]);
    }
    bench_free_envelopes(env, o->n);
    qsort(ratio, ROUNDS, sizeof *ratio, dbl_cmp);
    printf("bundle import of %d envelopes: median %.2fx the store's durable batched ingest "
           "(target >= 0.8)\n",
           o->n, ratio[ROUNDS / 2]);
    return 0;
}

/* ---- reconciliation ---- */

/* Writes fake envelopes i in [0, total) into a store at dir, except those
 * skip says; with extra > 0, adds that many of its own (ids from seed 2). */
static int fill_store(const char *dir, int total, const uint8_t *skip, int extra,
                      uint64_t *skipped_bytes)
{
    chp_store *s;
    chp_store_opts so = {.quota = 4ull << 30, .nosync = 1};
    if (chp_store_open(dir, &so, &s, NULL) != CHP_OK)
        return -1;
    chp_store_item *items = calloc(BATCH, sizeof *items);
    uint8_t(*bytes)[FAKE_LEN] = malloc((size_t)BATCH * FAKE_LEN);
    uint8_t(*ids)[32] = malloc((size_t)BATCH * 32);
    uint64_t now = (uint64_t)time(NULL);
    int rc = items && bytes && ids ? 0 : -1;
    for (int i = 0; rc == 0 && i < total + extra; i += BATCH) {
        size_t k = 0;
        for (int j = i; j < total + extra && j < i + BATCH; j++) {
            if (j < total && skip && skip[j]) {
                *skipped_bytes += FAKE_LEN;
                continue;
            }
            uint8_t seed[8];
            memcpy(seed, &j, sizeof j);
            seed[7] = j < total ? 1 : 2;
            chp_hash(bytes[k], 64, seed, sizeof seed, NULL, 0);
            memset(bytes[k] + 64, 0x5a, FAKE_LEN - 64);
            chp_hash(ids[k], 32, bytes[k], FAKE_LEN, NULL, 0);
            items[k] = (chp_store_item){.env = bytes[k],
                                        .len = FAKE_LEN,
                                        .id = ids[k],
                                        .created = now - (uint64_t)(j % 86400),
                                        .expiry = now + 6 * 86400,
                                        .received = now};
            k++;
        }
        if (k && chp_store_put_batch(s, items, k) != CHP_OK)
            rc = -1;
    }
    free(items);
    free(bytes);
    free(ids);
    chp_store_close(&s);
    return rc;
}

static long long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static int reconcile(const struct opts *o, const char *tmp, void *zctx, int both)
{
    char ha[400], hb[400], want[400], bun[400], out[1000];
    snprintf(ha, sizeof ha, "%s/a%d", tmp, both);
    snprintf(hb, sizeof hb, "%s/b%d", tmp, both);
    snprintf(want, sizeof want, "%s/b.want", tmp);
    snprintf(bun, sizeof bun, "%s/a.bundle", tmp);
    uint8_t *skip = calloc((size_t)o->store_n, 1);
    uint64_t missing = 0, unused = 0;
    int d = (int)((long long)o->store_n * o->diff / 1000);
    srand(7);
    for (int k = 0; skip && k < d;) {
        int i = rand() % o->store_n;
        k += !skip[i];
        skip[i] = 1;
    }
    if (!skip || fill_store(ha, o->store_n, NULL, 0, &unused) != 0 ||
        fill_store(hb, o->store_n, skip, both ? d : 0, &missing) != 0)
        return -1;
    free(skip);
    struct bench_node a = {0}, b = {0};
    int rc = start(&a, o, ha, zctx) || start(&b, o, hb, zctx) ? -1 : 0;
    for (int sealed = 0; rc == 0 && sealed < 2; sealed++) {
        const char *p = sealed ? "bench passphrase" : "";
        const char *aw[2] = {want, p}, *ae[5] = {bun, want, "", "", p};
        double t0 = bench_now_s();
        rc = call(&b, "bundle-want", 2, aw, out, sizeof out);
        double t1 = bench_now_s();
        rc = rc ? rc : call(&a, "bundle-export", 5, ae, out, sizeof out);
        double t2 = bench_now_s();
        if (rc) {
            fprintf(stderr, "bench-bundle: %s\n", out);
            break;
        }
        long long wb = file_size(want), bb = file_size(bun);
        printf("%s, %s: want %lld bytes (%.2f s), export --for %lld bytes (%.2f s), missing "
               "%llu bytes: %.3fx (target <= 1.1)\n  %s\n",
               both ? "both sides differ" : "B lacks 1 %", sealed ? "sealed" : "open", wb, t1 - t0,
               bb, t2 - t1, (unsigned long long)missing, (double)bb / (double)missing, out);
    }
    bench_node_stop(&a);
    bench_node_stop(&b);
    bench_rm_store(ha);
    bench_rm_store(hb);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .n = 20000, .store_n = 100000, .diff = 10, .envdir = ENV_DIR, .build = "build"};
    int c;
    bench_init("bench-bundle");
    while ((c = getopt(argc, argv, "n:s:d:e:B:k")) != -1) {
        if (c == 'n')
            o.n = atoi(optarg);
        else if (c == 's')
            o.store_n = atoi(optarg);
        else if (c == 'd')
            o.diff = atoi(optarg);
        else if (c == 'e')
            o.envdir = optarg;
        else if (c == 'B')
            o.build = optarg;
        else if (c == 'k')
            o.keep = 1;
        else
            return 2;
    }
    if (o.n < 1 || o.store_n < 1000 || o.diff < 1 || o.diff > 1000 || bench_setup() != 0)
        return 2;
    char tmp[64];
    if (bench_temp_dir("chp-bundle", tmp, sizeof tmp) != 0)
        return 1;
    void *zctx = zmq_ctx_new();
    int rc = bench_import(&o, tmp, zctx);
    if (rc == 0)
        rc = reconcile(&o, tmp, zctx, 0);
    if (rc == 0)
        rc = reconcile(&o, tmp, zctx, 1);
    zmq_ctx_term(zctx);
    bench_temp_done(tmp, o.keep);
    return bench_exit_code(rc);
}
