/* bench_store.c - store ingest beside raw LMDB puts of the same bytes, and
 * Negentropy fingerprint time over a large store, in one run.
 *
 *   bench-store [-d DIR] [-n ENVELOPES] [-b BATCH] [-f FINGERPRINT_STORE_SIZE]
 *
 * Ingest: n 1113-byte (1 KiB bucket) envelopes in batches of b per write
 * transaction, full durability (fsync per commit) for both the store and the
 * raw baseline (one mdb_put per envelope into one database, same batches).
 * The ratio store/raw is the figure. Fingerprint: a store of f envelopes
 * (filled with MDB_NOSYNC for speed; durability does not affect reads), then
 * the full-range fingerprint and the 16 sub-range fingerprints of a first
 * Negentropy round. */
#include "bench/benchlib.h"
#include "proto/crypto.h"
#include "node/store/store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ENV_LEN 1113

static void make_env(uint8_t *env, uint8_t id[32], uint64_t i)
{
    /* Cheap distinct content: a counter at the front, the rest fixed. */
    memset(env, 0xab, ENV_LEN);
    memcpy(env, &i, sizeof i);
    chp_hash(id, 32, env, ENV_LEN, NULL, 0);
}

static double bench_raw(const char *dir, uint64_t n, uint64_t batch)
{
    MDB_env *e;
    MDB_dbi dbi;
    MDB_txn *t;
    static uint8_t env[ENV_LEN];
    uint8_t id[32];
    bench_rm_store(dir);
    mkdir(dir, 0700);
    if (mdb_env_create(&e) || mdb_env_set_mapsize(e, (size_t)(n * 3000 + (64u << 20))) ||
        mdb_env_open(e, dir, 0, 0600))
        return -1;
    double t0 = bench_now_s();
    for (uint64_t i = 0; i < n; i += batch) {
        if (mdb_txn_begin(e, NULL, 0, &t) || mdb_dbi_open(t, NULL, 0, &dbi))
            return -1;
        for (uint64_t j = i; j < i + batch && j < n; j++) {
            make_env(env, id, j);
            MDB_val k = {32, id}, v = {ENV_LEN, env};
            if (mdb_put(t, dbi, &k, &v, 0))
                return -1;
        }
        if (mdb_txn_commit(t))
            return -1;
    }
    double dt = bench_now_s() - t0;
    mdb_env_close(e);
    bench_rm_store(dir);
    return (double)n / dt;
}

static double bench_store(const char *dir, uint64_t n, uint64_t batch, int nosync, chp_store **keep)
{
    chp_store *s;
    chp_store_opts o = {.quota = n * 2000 + (64u << 20), .nosync = nosync};
    bench_rm_store(dir);
    if (chp_store_open(dir, &o, &s, NULL) != CHP_OK)
        return -1;
    uint8_t *envs = malloc(batch * ENV_LEN), (*ids)[32] = malloc(batch * 32);
    chp_store_item *items = calloc(batch, sizeof *items);
    if (!envs || !ids || !items)
        return -1;
    double t0 = bench_now_s();
    for (uint64_t i = 0; i < n; i += batch) {
        size_t m = 0;
        for (uint64_t j = i; j < i + batch && j < n; j++, m++) {
            make_env(envs + m * ENV_LEN, ids[m], j);
            items[m] = (chp_store_item){.env = envs + m * ENV_LEN,
                                        .len = ENV_LEN,
                                        .id = ids[m],
                                        .created = 1800000000u + j / 7,
                                        .expiry = 1800086400u,
                                        .received = 1800000000u,
                                        .link = 1};
        }
        if (chp_store_put_batch(s, items, m) != CHP_OK)
            return -1;
    }
    double dt = bench_now_s() - t0;
    free(envs);
    free(ids);
    free(items);
    if (keep)
        *keep = s;
    else {
        chp_store_close(&s);
        bench_rm_store(dir);
    }
    return (double)n / dt;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/chapar-bench-store";
    uint64_t n = 100000, batch = 1000, fn = 1000000;
    int opt;
    while ((opt = getopt(argc, argv, "d:n:b:f:h")) != -1) {
        if (opt == 'd')
            dir = optarg;
        else if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (opt == 'b')
            batch = strtoull(optarg, NULL, 10);
        else if (opt == 'f')
            fn = strtoull(optarg, NULL, 10);
        else {
            fprintf(stderr, "usage: bench-store [-d DIR] [-n N] [-b BATCH] [-f N]\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (!n || !batch || chp_crypto_init() != CHP_OK)
        return 2;
    printf("# bench-store: %llu envelopes of %d bytes, %llu per transaction, dir %s\n",
           (unsigned long long)n, ENV_LEN, (unsigned long long)batch, dir);
    /* Interleave to share the machine's drift between both sides. */
    double raw1 = bench_raw(dir, n, batch), st1 = bench_store(dir, n, batch, 0, NULL);
    double raw2 = bench_raw(dir, n, batch), st2 = bench_store(dir, n, batch, 0, NULL);
    if (raw1 < 0 || raw2 < 0 || st1 < 0 || st2 < 0) {
        fprintf(stderr, "bench-store: LMDB failed\n");
        return 1;
    }
    double raw = (raw1 + raw2) / 2, st = (st1 + st2) / 2;
    printf("raw lmdb put durable      %10.0f env/s  (runs %.0f, %.0f)\n", raw, raw1, raw2);
    printf("store put_batch durable   %10.0f env/s  (runs %.0f, %.0f)\n", st, st1, st2);
    printf("ratio store/raw           %10.2f\n", st / raw);
    if (!fn)
        return 0;

    chp_store *s = NULL;
    double fill = bench_store(dir, fn, 5000, 1, &s);
    if (fill < 0 || !s)
        return 1;
    chp_store_bound lo = chp_store_bound_min(), hi = chp_store_bound_max();
    uint8_t fp[16];
    uint64_t count = 0;
    double t0 = bench_now_s();
    if (chp_store_fingerprint(s, &lo, &hi, fp, &count) != CHP_OK)
        return 1;
    double full = bench_now_s() - t0;
    /* First Negentropy round: 16 buckets of equal count over the range. */
    t0 = bench_now_s();
    uint64_t per = count / 16, total = 0;
    for (int b = 0; b < 16; b++) {
        chp_store_bound a = lo, z = hi;
        a.created = 1800000000u + (uint64_t)b * per / 7;
        z.created = b == 15 ? UINT64_MAX : 1800000000u + (uint64_t)(b + 1) * per / 7;
        uint64_t c = 0;
        if (chp_store_fingerprint(s, &a, &z, fp, &c) != CHP_OK)
            return 1;
        total += c;
    }
    double split = bench_now_s() - t0;
    printf("fingerprint store: %llu envelopes (filled at %.0f env/s nosync)\n",
           (unsigned long long)count, fill);
    printf("fingerprint full range    %10.1f ms\n", full * 1e3);
    printf("fingerprint 16 sub-ranges %10.1f ms  (%llu items)\n", split * 1e3,
           (unsigned long long)total);
    chp_store_close(&s);
    bench_rm_store(dir);
    return 0;
}
