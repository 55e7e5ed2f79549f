/* bench_sync.c - Negentropy reconciliation between two real LMDB stores, in
 * process: round trips, bytes each way, bytes per missing envelope, CPU.
 *
 *   bench-sync [-n N] [-d FRACTION | --one] [-w WINDOW_S] [-f FRAME_LIMIT]
 *              [-s SEED] [-D DIR] [--reference] [-v]
 *
 * Two stores (chp_store, filled with nosync; durability does not affect
 * reads) hold N envelopes each: random 1113-byte blobs (the 1 KiB bucket),
 * id = BLAKE2b-256 of the bytes, created times uniform over WINDOW_S
 * seconds (default one day, the default lifetime). They differ by
 * round(N * FRACTION) envelopes, half only in A and half only in B. With
 * --one, A holds N - 1 of B's N: exactly one envelope differs.
 *
 * The client session runs over store A, the server over store B, both as
 * the node runs them (node/mesh/sync.c new_session): the staged split, messages
 * up to CHP_NEG_MSG_MAX (512 KiB, sent in NEG fragments of at most one
 * 64 KiB frame), the node's storage adapter. --reference splits as
 * hoytech/negentropy does (16 buckets, lists below 32 items).
 * One round trip = one client message + the server's reply.
 * Bytes are counted as the node sends them: NEG frames (6-byte header +
 * a Negentropy message or fragment). The missing envelopes are then moved as the node
 * does: IWANT frames (3 + 32 k bytes, up to 1024 ids) for what the client
 * needs, one PUSH frame (1 + envelope) per missing envelope either way.
 * -f 0 shows the protocol without a frame limit; -v prints every round.
 *
 * Targets (docs/PERFORMANCE.md): -n 100000 -d 0.01 in <= 3 round trips and
 * <= 1.5x the bytes of the missing envelopes; -n 1000000 --one in <= 3
 * round trips and <= 3 KB. */
#include "bench/benchlib.h"
#include "proto/crypto.h"
#include "proto/negentropy.h"
#include "node/store/store.h"
#include "proto/wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ENV_LEN     1113
#define FILL_BATCH  5000
#define FRAME_NODE  CHP_NEG_MSG_MAX /* node/mesh/sync.c new_session() */
#define IWANT_BATCH 1024            /* node/mesh/sync.c IWANT_BATCH */
#define CREATED_0   1800000000u

/* ---- clocks ---- */

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the data set ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct dataset {
    uint64_t seed, window;
    uint64_t common, a_only, b_only; /* index ranges in this order */
};

/* Envelope number i: random bytes and a created time, both from (seed, i). */
static void make_env(const struct dataset *ds, uint64_t i, uint8_t *env, uint8_t id[32],
                     uint64_t *created)
{
    uint64_t x = ds->seed ^ (i * 0xd1342543de82ef95ull), w;
    for (size_t off = 0; off < ENV_LEN; off += sizeof w) {
        w = splitmix64(&x);
        memcpy(env + off, &w, ENV_LEN - off < sizeof w ? ENV_LEN - off : sizeof w);
    }
    *created = CREATED_0 + splitmix64(&x) % ds->window;
    chp_hash(id, 32, env, ENV_LEN, NULL, 0);
}

struct span {
    uint64_t lo, hi; /* envelope numbers [lo, hi) */
};

/* A fresh store holding the envelopes of two spans of the data set. */
static int fill_store(const char *dir, const struct dataset *ds, const struct span sp[2],
                      chp_store **out)
{
    uint64_t n = (sp[0].hi - sp[0].lo) + (sp[1].hi - sp[1].lo);
    chp_store_opts o = {.quota = n * 2000 + (64u << 20), .nosync = 1};
    if (bench_rm_store(dir) != 0 || chp_store_open(dir, &o, out, NULL) != CHP_OK)
        return -1;
    uint8_t *envs = malloc((size_t)FILL_BATCH * ENV_LEN), (*ids)[32] = malloc(FILL_BATCH * 32);
    chp_store_item *items = calloc(FILL_BATCH, sizeof *items);
    int rc = envs && ids && items ? 0 : -1;
    for (uint64_t k = 0; rc == 0 && k < n;) {
        size_t m = 0;
        for (; m < FILL_BATCH && k < n; m++, k++) {
            uint64_t i =
                k < sp[0].hi - sp[0].lo ? sp[0].lo + k : sp[1].lo + k - (sp[0].hi - sp[0].lo);
            uint64_t created;
            make_env(ds, i, envs + m * ENV_LEN, ids[m], &created);
            items[m] = (chp_store_item){.env = envs + m * ENV_LEN,
                                        .len = ENV_LEN,
                                        .id = ids[m],
                                        .created = created,
                                        .expiry = created + 86400u * 7,
                                        .received = created,
                                        .link = 1};
        }
        if (chp_store_put_batch(*out, items, m) != CHP_OK)
            rc = -1;
        for (size_t j = 0; rc == 0 && j < m; j++)
            if (items[j].result != CHP_OK)
                rc = -1;
    }
    free(envs);
    free(ids);
    free(items);
    return rc;
}

/* ---- reconciliation ---- */

struct idset {
    uint8_t (*ids)[32];
    size_t n, cap;
};

static int idset_add(struct idset *s, const uint8_t id[32])
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        uint8_t(*p)[32] = realloc(s->ids, cap * 32);
        if (!p)
            return -1;
        s->ids = p;
        s->cap = cap;
    }
    memcpy(s->ids[s->n++], id, 32);
    return 0;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

struct result {
    struct idset have, need; /* reported by the client */
    int oom;
};

static int on_have(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    struct result *r = ctx;
    r->oom |= idset_add(&r->have, id);
    return 0;
}

static int on_need(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    struct result *r = ctx;
    r->oom |= idset_add(&r->need, id);
    return 0;
}

struct traffic {
    unsigned rounds;
    unsigned oversize;       /* messages over CHP_NEG_MSG_MAX */
    size_t c2s, s2c;         /* NEG frame bytes */
    size_t c2s_max, s2c_max; /* largest message */
    double cpu_client, cpu_server, wall;
};

/* Bytes of the NEG frames carrying msg: one per CHP_NEG_FRAG_MAX bytes, as
 * node/mesh/sync.c send_neg() cuts it. A message over CHP_NEG_MSG_MAX (only
 * possible with -f 0 or a limit above it) is counted as if it fit, and
 * noted. */
static size_t neg_frame_len(const chp_buf *msg, uint8_t initiator, unsigned *oversize)
{
    static uint8_t f[CHP_WIRE_MAX_FRAME];
    size_t fl = 0, total = 0;
    if (msg->len > CHP_NEG_MSG_MAX)
        (*oversize)++;
    for (size_t off = 0; off < msg->len;) {
        size_t k = msg->len - off > CHP_NEG_FRAG_MAX ? CHP_NEG_FRAG_MAX : msg->len - off;
        uint8_t flags = (uint8_t)(initiator | (off + k < msg->len ? CHP_NEG_MORE : 0));
        if (chp_wire_neg(f, sizeof f, &fl, 1, flags, msg->p + off, k) != CHP_OK)
            return 0;
        total += fl;
        off += k;
    }
    return total;
}

static int reconcile(chp_store *a, chp_store *b, uint64_t frame_limit, int staged, int verbose,
                     struct traffic *tr, struct result *res)
{
    chp_neg_storage sa, sb; /* the node's own adapter */
    chp_store_neg_storage(a, &sa);
    chp_store_neg_storage(b, &sb);
    chp_neg *cli = NULL, *srv = NULL;
    chp_buf q = {0}, r = {0};
    int rc = -1;
    memset(tr, 0, sizeof *tr);
    if (chp_neg_new(&sa, frame_limit, &cli) != CHP_OK ||
        chp_neg_new(&sb, frame_limit, &srv) != CHP_OK)
        goto out;
    chp_neg_set_staged(cli, staged);
    chp_neg_set_staged(srv, staged);
    double w0 = bench_now_s(), c0 = cpu_s();
    if (chp_neg_initiate(cli, &q) != CHP_OK)
        goto out;
    tr->cpu_client += cpu_s() - c0;
    while (q.len) {
        size_t qf = neg_frame_len(&q, 1, &tr->oversize);
        c0 = cpu_s();
        if (!qf || chp_neg_respond(srv, q.p, q.len, &r) != CHP_OK)
            goto out;
        tr->cpu_server += cpu_s() - c0;
        size_t rf = neg_frame_len(&r, 0, &tr->oversize);
        if (!rf)
            goto out;
        tr->rounds++;
        tr->c2s += qf;
        tr->s2c += rf;
        tr->c2s_max = qf > tr->c2s_max ? qf : tr->c2s_max;
        tr->s2c_max = rf > tr->s2c_max ? rf : tr->s2c_max;
        size_t have0 = res->have.n, need0 = res->need.n;
        c0 = cpu_s();
        if (chp_neg_reconcile(cli, r.p, r.len, &q, on_have, on_need, res) != CHP_OK || res->oom)
            goto out;
        tr->cpu_client += cpu_s() - c0;
        if (verbose)
            printf("  round %2u: client %6zu B -> server %6zu B; found have %zu need %zu\n",
                   tr->rounds, qf, rf, res->have.n - have0, res->need.n - need0);
    }
    tr->wall = bench_now_s() - w0;
    rc = 0;
out:
    chp_buf_free(&q);
    chp_buf_free(&r);
    chp_neg_destroy(&cli);
    chp_neg_destroy(&srv);
    return rc;
}

/* 1 if the reported ids are exactly envelopes [lo, hi) of the data set. */
static int same_ids(const struct dataset *ds, struct idset *got, uint64_t lo, uint64_t hi)
{
    if (got->n != hi - lo)
        return 0;
    if (!got->n)
        return 1;
    qsort(got->ids, got->n, 32, id_cmp);
    for (size_t k = 1; k < got->n; k++)
        if (!memcmp(got->ids[k - 1], got->ids[k], 32))
            return 0;
    static uint8_t env[ENV_LEN];
    for (uint64_t i = lo; i < hi; i++) {
        uint8_t id[32];
        uint64_t created;
        make_env(ds, i, env, id, &created);
        if (!bsearch(id, got->ids, got->n, 32, id_cmp))
            return 0;
    }
    return 1;
}

/* Bytes of moving the difference as the node does after a sync. */
static void transfer_bytes(size_t have, size_t need, size_t *c2s, size_t *s2c, size_t *iwants)
{
    static uint8_t f[3 + IWANT_BATCH * 32], ids[IWANT_BATCH * 32], env[ENV_LEN];
    size_t fl;
    *c2s = *s2c = *iwants = 0;
    for (size_t left = need; left;) {
        uint16_t k = (uint16_t)(left < IWANT_BATCH ? left : IWANT_BATCH);
        if (chp_wire_ids(f, sizeof f, &fl, CHP_WIRE_IWANT, ids, k) == CHP_OK)
            *c2s += fl;
        (*iwants)++;
        left -= k;
    }
    if (chp_wire_push(f, sizeof f, &fl, env, ENV_LEN) != CHP_OK)
        fl = 0;
    *c2s += have * fl; /* the client pushes what only it has */
    *s2c += need * fl; /* the server answers the IWANTs */
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-sync [-n N] [-d FRACTION | --one] [-w WINDOW_S] [-f FRAME_LIMIT]"
                    " [-s SEED] [-D DIR] [--reference] [-v]\n");
}

int main(int argc, char **argv)
{
    uint64_t n = 100000, frame = FRAME_NODE;
    double d = 0.01;
    int one = 0, verbose = 0, staged = 1;
    const char *base = "/tmp/chapar-bench-sync";
    struct dataset ds = {.seed = (uint64_t)time(NULL), .window = 86400};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--one"))
            one = 1;
        else if (!strcmp(a, "-v"))
            verbose = 1;
        else if (!strcmp(a, "--reference"))
            staged = 0;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (v && !strcmp(a, "-n"))
            n = strtoull(argv[++i], NULL, 10);
        else if (v && !strcmp(a, "-d"))
            d = strtod(argv[++i], NULL);
        else if (v && !strcmp(a, "-w"))
            ds.window = strtoull(argv[++i], NULL, 10);
        else if (v && !strcmp(a, "-f"))
            frame = strtoull(argv[++i], NULL, 10);
        else if (v && !strcmp(a, "-s"))
            ds.seed = strtoull(argv[++i], NULL, 10);
        else if (v && !strcmp(a, "-D"))
            base = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (n < 2 || !ds.window || d < 0 || d > 1 || chp_crypto_init() != CHP_OK) {
        usage();
        return 2;
    }
    if (one) {
        ds.common = n - 1;
        ds.b_only = 1;
    } else {
        uint64_t diff = (uint64_t)((double)n * d + 0.5);
        ds.a_only = diff / 2;
        ds.b_only = diff - ds.a_only;
        ds.common = n - ds.b_only; /* B holds n; A holds n - b_only + a_only */
    }
    uint64_t na = ds.common + ds.a_only, nb = ds.common + ds.b_only;
    uint64_t a_lo = ds.common, a_hi = a_lo + ds.a_only, b_lo = a_hi, b_hi = b_lo + ds.b_only;
    char dir_a[4096], dir_b[4096];
    snprintf(dir_a, sizeof dir_a, "%s-a", base);
    snprintf(dir_b, sizeof dir_b, "%s-b", base);
    printf("# bench-sync: A %llu, B %llu envelopes of %d bytes; %llu only in A, %llu only in B;"
           " created over %llu s; message limit %llu; %s split; seed %llu\n",
           (unsigned long long)na, (unsigned long long)nb, ENV_LEN, (unsigned long long)ds.a_only,
           (unsigned long long)ds.b_only, (unsigned long long)ds.window, (unsigned long long)frame,
           staged ? "staged" : "reference", (unsigned long long)ds.seed);
    fflush(stdout);

    chp_store *a = NULL, *b = NULL;
    double t0 = bench_now_s();
    const struct span span_a[2] = {{0, a_hi}, {a_hi, a_hi}};
    const struct span span_b[2] = {{0, ds.common}, {b_lo, b_hi}};
    if (fill_store(dir_a, &ds, span_a, &a) != 0 || fill_store(dir_b, &ds, span_b, &b) != 0) {
        fprintf(stderr, "bench-sync: filling the stores failed\n");
        return 1;
    }
    printf("filled both stores in %.1f s (nosync)\n", bench_now_s() - t0);

    struct traffic tr;
    struct result res;
    memset(&res, 0, sizeof res);
    if (reconcile(a, b, frame, staged, verbose, &tr, &res) != 0) {
        fprintf(stderr, "bench-sync: reconciliation failed\n");
        return 1;
    }
    int ok = same_ids(&ds, &res.have, a_lo, a_hi) && same_ids(&ds, &res.need, b_lo, b_hi);
    size_t missing = res.have.n + res.need.n, missing_bytes = missing * ENV_LEN;
    size_t x_c2s, x_s2c, iwants;
    transfer_bytes(res.have.n, res.need.n, &x_c2s, &x_s2c, &iwants);
    size_t recon = tr.c2s + tr.s2c, total = recon + x_c2s + x_s2c;

    printf("result: have %zu, need %zu: %s\n", res.have.n, res.need.n,
           ok ? "exactly the difference" : "WRONG (does not match the difference)");
    printf("round trips (reconciliation)   %10u\n", tr.rounds);
    printf("round trips incl. IWANT fetch  %10u  (%zu IWANT frames)\n",
           tr.rounds + (res.need.n ? 1 : 0), iwants);
    printf("bytes client->server (NEG)     %10zu  (largest message %zu)\n", tr.c2s, tr.c2s_max);
    printf("bytes server->client (NEG)     %10zu  (largest message %zu)\n", tr.s2c, tr.s2c_max);
    printf("bytes reconciliation total     %10zu\n", recon);
    if (tr.oversize)
        printf("NOTE: %u messages exceed the %d-byte limit of a fragmented NEG message\n",
               tr.oversize, CHP_NEG_MSG_MAX);
    printf("bytes IWANT + PUSH             %10zu  (c->s %zu, s->c %zu)\n", x_c2s + x_s2c, x_c2s,
           x_s2c);
    printf("bytes of missing envelopes     %10zu  (%zu x %d)\n", missing_bytes, missing, ENV_LEN);
    if (missing_bytes) {
        printf("ratio reconciliation/missing   %10.3f\n", (double)recon / (double)missing_bytes);
        printf("ratio total/missing            %10.3f\n", (double)total / (double)missing_bytes);
    }
    if (one)
        printf("target <= 3 round trips, <= 3000 bytes: %s, %s\n",
               tr.rounds <= 3 ? "met" : "MISSED", recon <= 3000 ? "met" : "MISSED");
    else
        printf("target <= 3 round trips, <= 1.5x missing: %s; %s (reconciliation alone), %s"
               " (with IWANT + PUSH)\n",
               tr.rounds <= 3 ? "met" : "MISSED",
               (double)recon <= 1.5 * (double)missing_bytes ? "met" : "MISSED",
               (double)total <= 1.5 * (double)missing_bytes ? "met" : "MISSED");
    printf("reconciliation wall            %10.1f ms\n", tr.wall * 1e3);
    printf("reconciliation CPU client      %10.1f ms\n", tr.cpu_client * 1e3);
    printf("reconciliation CPU server      %10.1f ms\n", tr.cpu_server * 1e3);

    free(res.have.ids);
    free(res.need.ids);
    chp_store_close(&a);
    chp_store_close(&b);
    bench_rm_store(dir_a);
    bench_rm_store(dir_b);
    return ok ? 0 : 1;
}
