/* test_store.c - the LMDB store: every operation and every error path with
 * its exact error code, range fingerprints against a naive computation, quota
 * eviction order, a full map, encryption at rest of the local tables (the
 * data file is searched for the plaintext), wipe, stale reader slots, and a
 * second process reading while the first writes.
 *
 * Envelopes are arbitrary bytes here (the store does not parse them); an
 * id is BLAKE2b-256 of the bytes. Each test gets its own mkdtemp directory
 * under /tmp, removed by the teardown even when the test fails.
 */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/err.h"
#include "node/store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/testutil.h"

#define MIB        (1ull << 20)
#define ENV_BIG    16473 /* the largest envelope (CHP_ENV_MAX_BYTES) */
#define ENV_SMALL  1113  /* the smallest bucket's envelope */
#define QUOTA_HUGE (1ull << 30)

/* ---- fixture: a temp dir per test ---- */

struct fx {
    char root[64]; /* mkdtemp directory */
    char dir[128]; /* root/s: the store dir (not created yet) */
    chp_store *s;  /* closed by the teardown if a test failed with it open */
};

static void rm_rf(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char sub[4096];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->root, sizeof f->root, "/tmp/chp-test-store-XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/s", f->root);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    chp_store_close(&f->s);
    rm_rf(f->root);
    free(f);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* a dead child's pipe is an error, not a kill */
    return chp_crypto_init() == CHP_OK ? 0 : -1;
}

/* ---- deterministic test envelopes ---- */

static uint64_t xs(uint64_t *st)
{
    uint64_t x = *st ? *st : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *st = x;
    return x;
}

struct tenv {
    uint8_t *env;
    size_t len;
    uint8_t id[32];
    uint64_t created, expiry, received;
    uint32_t link;
    int own, mine;
};

/* Bytes of envelope number k: a function of k alone, so another process
 * can rebuild it. */
static int tenv_fill(struct tenv *e, uint64_t k, size_t len, uint64_t created, uint64_t expiry,
                     int own)
{
    memset(e, 0, sizeof *e);
    e->env = malloc(len);
    if (!e->env)
        return -1;
    e->len = len;
    uint64_t st = k * 0x2545f4914f6cdd1dull + 1;
    for (size_t i = 0; i < len; i++)
        e->env[i] = (uint8_t)(xs(&st) >> 24);
    if (len >= 8)
        chp_put_be64(e->env, k); /* distinct even if the stream repeated */
    chp_hash(e->id, 32, e->env, len, NULL, 0);
    e->created = created;
    e->expiry = expiry;
    e->received = 1700000000 + k;
    e->link = (uint32_t)(k % 7);
    e->own = own;
    return 0;
}

static void tenv_make(struct tenv *e, uint64_t k, size_t len, uint64_t created, uint64_t expiry,
                      int own)
{
    assert_int_equal(tenv_fill(e, k, len, created, expiry, own), 0);
}

static void tenv_free(struct tenv *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].env);
        e[i].env = NULL;
    }
}

static void item_of(chp_store_item *it, const struct tenv *e)
{
    memset(it, 0, sizeof *it);
    it->env = e->env;
    it->len = e->len;
    it->id = e->id;
    it->created = e->created;
    it->expiry = e->expiry;
    it->received = e->received;
    it->link = e->link;
    it->own = e->own;
    it->mine = e->mine;
    it->result = 12345; /* must be overwritten */
}

/* Puts e[0..n) as one batch; returns put_batch's value, results in res. */
static int put_n(chp_store *s, const struct tenv *e, size_t n, int *res)
{
    chp_store_item *it = calloc(n ? n : 1, sizeof *it);
    assert_non_null(it);
    for (size_t i = 0; i < n; i++)
        item_of(&it[i], &e[i]);
    int rc = chp_store_put_batch(s, it, n);
    for (size_t i = 0; i < n; i++)
        if (res)
            res[i] = it[i].result;
    free(it);
    return rc;
}

/* One envelope; returns its result (or put_batch's error). */
static int put_1(chp_store *s, const struct tenv *e)
{
    int res = 0, rc = put_n(s, e, 1, &res);
    return rc != CHP_OK ? rc : res;
}

/* Asserts e is stored with exactly its bytes and bookkeeping. */
static void assert_stored(chp_store *s, const struct tenv *e)
{
    assert_int_equal(chp_store_has(s, e->id), 1);
    uint8_t *buf = malloc(e->len + 1);
    assert_non_null(buf);
    size_t len = 0;
    chp_store_meta m;
    memset(&m, 0xee, sizeof m);
    assert_int_equal(chp_store_get(s, e->id, buf, e->len + 1, &len, &m), CHP_OK);
    assert_int_equal(len, e->len);
    assert_memory_equal(buf, e->env, e->len);
    assert_int_equal(m.created, e->created);
    assert_int_equal(m.expiry, e->expiry);
    assert_int_equal(m.received, e->received);
    assert_int_equal(m.link, e->link);
    assert_int_equal(m.own, e->own);
    assert_int_equal(m.mine, e->mine);
    free(buf);
}

static chp_store_opts opts_fast(void)
{
    chp_store_opts o = {0, 0, 1};
    return o;
}

static void open_ok(struct fx *f, const chp_store_opts *o)
{
    uint32_t found = 0;
    assert_int_equal(chp_store_open(f->dir, o, &f->s, &found), CHP_OK);
    assert_non_null(f->s);
    assert_int_equal(found, CHP_STORE_SCHEMA);
}

/* ---- ranges: a naive model ---- */

struct key {
    uint64_t created;
    uint8_t id[32];
};

static int key_cmp(const struct key *a, const struct key *b)
{
    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    return memcmp(a->id, b->id, 32);
}

static int key_qcmp(const void *a, const void *b)
{
    return key_cmp(a, b);
}

struct collect {
    struct key *k;
    size_t n, cap;
    int stop_after; /* return stop_ret after this many calls; 0 = never */
    int stop_ret;
};

static int collect_fn(void *ctx, uint64_t created, const uint8_t id[32])
{
    struct collect *c = ctx;
    assert_true(c->n < c->cap);
    c->k[c->n].created = created;
    memcpy(c->k[c->n].id, id, 32);
    c->n++;
    if (c->stop_after && c->n == (size_t)c->stop_after)
        return c->stop_ret;
    return 0;
}

static int count_fn(void *ctx, uint64_t created, const uint8_t id[32])
{
    (void)created;
    (void)id;
    (*(uint64_t *)ctx)++;
    return 0;
}

static uint64_t count_all(chp_store *s)
{
    chp_store_bound lo = chp_store_bound_min(), hi = chp_store_bound_max();
    uint64_t n = 0;
    assert_int_equal(chp_store_range(s, &lo, &hi, count_fn, &n), 0);
    return n;
}

static chp_store_bound bound_of(const struct key *k)
{
    chp_store_bound b;
    b.created = k->created;
    memcpy(b.id, k->id, 32);
    return b;
}

/* ---- file helpers ---- */

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long sz = ftell(fp);
    assert_true(sz > 0);
    rewind(fp);
    uint8_t *buf = malloc((size_t)sz);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
    fclose(fp);
    *len = (size_t)sz;
    return buf;
}

static int contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    if (m == 0 || m > n)
        return m == 0;
    const uint8_t *nd = needle;
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == nd[0] && memcmp(hay + i, nd, m) == 0)
            return 1;
    return 0;
}

static int file_exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0;
}

/* Sets (or with val NULL deletes) meta/name with raw LMDB (no chp_store
 * open in this process). */
static void raw_meta(const char *dir, const char *name, const void *val, size_t len)
{
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_dbi_open(t, "meta", 0, &dbi), 0);
    MDB_val k = {strlen(name), (void *)name}, v = {len, (void *)val};
    assert_int_equal(val ? mdb_put(t, dbi, &k, &v, 0) : mdb_del(t, dbi, &k, NULL), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
}

static void raw_set_schema(const char *dir, const void *val, size_t len)
{
    raw_meta(dir, "schema", val, len);
}

/* ================================================================ */
/* ---- open / close ---- */

static void test_open_creates_dir_0700(void **state)
{
    struct fx *f = *state;
    struct stat sb;
    assert_int_not_equal(stat(f->dir, &sb), 0);
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0700);
    char p[4096];
    snprintf(p, sizeof p, "%s/data.mdb", f->dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0077, 0); /* 0600 (umask may only narrow) */
    snprintf(p, sizeof p, "%s/lock.mdb", f->dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0077, 0);

    chp_store_stats st;
    memset(&st, 0xaa, sizeof st);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.own, 0);
    assert_int_equal(st.quota, CHP_STORE_QUOTA_DEFAULT);
    assert_int_equal(st.map_size, 64 * MIB);
    assert_int_equal(st.accepted + st.duplicates + st.refused_full + st.evicted + st.expired, 0);
    assert_int_equal(st.full, 0);
    chp_store_close(&f->s);
    assert_null(f->s);
    chp_store_close(&f->s); /* NULL handle: no-op */
    chp_store_close(NULL);

    /* NULL opts and NULL found_schema are accepted. */
    assert_int_equal(chp_store_open(f->dir, NULL, &f->s, NULL), CHP_OK);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.quota, CHP_STORE_QUOTA_DEFAULT);
    chp_store_close(&f->s);

    /* The quota option is honoured. */
    chp_store_opts q = {12345, 0, 1};
    open_ok(f, &q);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.quota, 12345);
}

static void test_reopen_keeps_data_and_counters(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    struct tenv e[12];
    for (size_t i = 0; i < 12; i++)
        tenv_make(&e[i], 100 + i, 200 + 37 * i, 1000 + i % 3, 5000 + i, i % 4 == 0);
    int res[12];
    assert_int_equal(put_n(f->s, e, 10, res), CHP_OK);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(res[i], CHP_OK);
    assert_int_equal(chp_store_del(f->s, e[1].id), CHP_OK);
    assert_int_equal(chp_store_del(f->s, e[4].id), CHP_OK); /* an own one */
    chp_store_stats before;
    chp_store_stats_get(f->s, &before);
    assert_int_equal(before.envelopes, 8);
    assert_int_equal(before.own, 2); /* 0 and 8 */
    uint64_t bytes = 0;
    for (size_t i = 0; i < 10; i++)
        if (i != 1 && i != 4)
            bytes += e[i].len;
    assert_int_equal(before.bytes, bytes);
    assert_int_equal(before.accepted, 10);
    chp_store_close(&f->s);

    open_ok(f, &o);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 8);
    assert_int_equal(st.bytes, bytes);
    assert_int_equal(st.own, 2);
    /* "since open" counters start again. */
    assert_int_equal(st.accepted, 0);
    assert_int_equal(st.duplicates, 0);
    for (size_t i = 0; i < 10; i++) {
        if (i == 1 || i == 4)
            assert_int_equal(chp_store_has(f->s, e[i].id), 0);
        else
            assert_stored(f->s, &e[i]);
    }
    assert_int_equal(count_all(f->s), 8);

    /* Inserts after a reopen continue the insertion sequence: the expiry
     * index stays consistent (a sweep finds old and new entries). */
    assert_int_equal(put_n(f->s, e + 10, 2, res), CHP_OK);
    assert_int_equal(res[0], CHP_OK);
    assert_int_equal(res[1], CHP_OK);
    assert_int_equal(put_1(f->s, &e[0]), CHP_E_DUP);
    uint64_t removed = 99;
    assert_int_equal(chp_store_sweep(f->s, 5011, &removed), CHP_OK);
    assert_int_equal(removed, 10); /* everything but e[1], e[4] (deleted) */
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.own, 0);
    assert_int_equal(count_all(f->s), 0);
    chp_store_close(&f->s);
    open_ok(f, &o);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 0);
    assert_int_equal(st.bytes, 0);
    tenv_free(e, 12);
}

static void test_open_wrong_schema(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    struct tenv e;
    tenv_make(&e, 1, 300, 10, 20, 0);
    assert_int_equal(put_1(f->s, &e), CHP_OK);
    chp_store_close(&f->s);

    uint8_t be[4];
    chp_put_be32(be, 99);
    raw_set_schema(f->dir, be, 4);
    uint32_t found = 0;
    chp_store *s = (chp_store *)&found; /* must be reset to NULL */
    assert_int_equal(chp_store_open(f->dir, &o, &s, &found), CHP_E_STORE_SCHEMA);
    assert_null(s);
    assert_int_equal(found, 99);
    assert_int_equal(chp_store_open(f->dir, &o, &s, NULL), CHP_E_STORE_SCHEMA);
    assert_null(s);

    /* A schema value of the wrong size is not schema 1 either. */
    raw_set_schema(f->dir, "\0\0\0\0\1", 5);
    assert_int_equal(chp_store_open(f->dir, &o, &s, &found), CHP_E_STORE_SCHEMA);
    assert_null(s);
    assert_int_not_equal(found, CHP_STORE_SCHEMA);

    /* Restored to 1, the store opens with its data intact. */
    chp_put_be32(be, CHP_STORE_SCHEMA);
    raw_set_schema(f->dir, be, 4);
    open_ok(f, &o);
    assert_stored(f->s, &e);
    tenv_free(&e, 1);
}

static void test_open_bad_path(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    chp_store *s = NULL;
    char p[4096];

    /* The parent does not exist: mkdir fails. */
    snprintf(p, sizeof p, "%s/missing/store", f->root);
    assert_int_equal(chp_store_open(p, &o, &s, NULL), CHP_E_IO);
    assert_null(s);

    /* A path below a regular file. */
    snprintf(p, sizeof p, "%s/file", f->root);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("not a store\n", fp);
    fclose(fp);
    snprintf(p, sizeof p, "%s/file/store", f->root);
    assert_int_equal(chp_store_open(p, &o, &s, NULL), CHP_E_IO);
    assert_null(s);

    /* The path itself is a regular file. */
    snprintf(p, sizeof p, "%s/file", f->root);
    int rc = chp_store_open(p, &o, &s, NULL);
    assert_null(s);
    assert_int_equal(rc, CHP_E_IO);
}

/* ---- envelopes ---- */

static void test_put_batch_many(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    enum { N = 1200, B = 100 };
    struct tenv *e = calloc(N, sizeof *e);
    int *res = calloc(N, sizeof *res);
    assert_non_null(e);
    assert_non_null(res);
    static const size_t sizes[] = {8, 89, ENV_SMALL, 2137, 4185, ENV_BIG};
    uint64_t bytes = 0, own = 0;
    for (size_t i = 0; i < N; i++) {
        tenv_make(&e[i], i, sizes[i % 6], 1000 + i % 50, 9000 + i % 97, i % 5 == 0);
        bytes += e[i].len;
        own += e[i].own;
    }
    /* An empty batch is fine. */
    assert_int_equal(chp_store_put_batch(f->s, NULL, 0), CHP_OK);
    for (size_t b = 0; b < N; b += B) {
        assert_int_equal(put_n(f->s, e + b, B, res + b), CHP_OK);
        for (size_t i = b; i < b + B; i++)
            assert_int_equal(res[i], CHP_OK);
    }
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, N);
    assert_int_equal(st.accepted, N);
    assert_int_equal(st.bytes, bytes);
    assert_int_equal(st.own, own);
    assert_int_equal(st.duplicates + st.refused_full + st.evicted, 0);
    assert_int_equal(st.full, 0);
    for (size_t i = 0; i < N; i++)
        assert_stored(f->s, &e[i]);
    assert_int_equal(count_all(f->s), N);
    tenv_free(e, N);
    free(e);
    free(res);
}

static void test_put_duplicates(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    struct tenv e[4];
    for (size_t i = 0; i < 4; i++)
        tenv_make(&e[i], 40 + i, 500 + i, 7, 70, 0);
    /* Within one batch: a, b, a, c, b. */
    struct tenv batch[5] = {e[0], e[1], e[0], e[2], e[1]};
    int res[5];
    assert_int_equal(put_n(f->s, batch, 5, res), CHP_OK);
    assert_int_equal(res[0], CHP_OK);
    assert_int_equal(res[1], CHP_OK);
    assert_int_equal(res[2], CHP_E_DUP);
    assert_int_equal(res[3], CHP_OK);
    assert_int_equal(res[4], CHP_E_DUP);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 3);
    assert_int_equal(st.accepted, 3);
    assert_int_equal(st.duplicates, 2);
    uint64_t bytes = e[0].len + e[1].len + e[2].len;
    assert_int_equal(st.bytes, bytes);

    /* Across batches: the same id with other bytes and other bookkeeping
     * is not stored again; the first copy stays exactly as it was. */
    struct tenv imp = e[0];
    imp.env = calloc(1, 900);
    assert_non_null(imp.env);
    imp.len = 900;
    imp.created = 1;
    imp.expiry = 999999;
    imp.received = 5;
    imp.link = 77;
    imp.own = 1;
    struct tenv batch2[3] = {imp, e[3], e[2]};
    assert_int_equal(put_n(f->s, batch2, 3, res), CHP_OK);
    assert_int_equal(res[0], CHP_E_DUP);
    assert_int_equal(res[1], CHP_OK);
    assert_int_equal(res[2], CHP_E_DUP);
    free(imp.env);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 4);
    assert_int_equal(st.accepted, 4);
    assert_int_equal(st.duplicates, 4);
    assert_int_equal(st.own, 0);
    assert_int_equal(st.bytes, bytes + e[3].len);
    for (size_t i = 0; i < 4; i++)
        assert_stored(f->s, &e[i]);
    assert_int_equal(count_all(f->s), 4); /* no second index entry */

    /* A batch made only of duplicates commits and changes nothing. */
    assert_int_equal(put_n(f->s, e, 4, res), CHP_OK);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(res[i], CHP_E_DUP);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 4);
    assert_int_equal(st.duplicates, 8);
    assert_int_equal(st.bytes, bytes + e[3].len);
    tenv_free(e, 4);
}

static void test_get_has_del(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    struct tenv a, b;
    tenv_make(&a, 1, 1000, 50, 60, 0);
    tenv_make(&b, 2, 2000, 40, 80, 1);
    uint8_t buf[4096];
    size_t len = 0;

    assert_int_equal(chp_store_has(f->s, a.id), 0);
    assert_int_equal(chp_store_get(f->s, a.id, buf, sizeof buf, &len, NULL), CHP_E_NOT_FOUND);
    assert_int_equal(chp_store_del(f->s, a.id), CHP_E_NOT_FOUND);

    struct tenv both[2] = {a, b};
    int res[2];
    assert_int_equal(put_n(f->s, both, 2, res), CHP_OK);
    assert_int_equal(chp_store_has(f->s, a.id), 1);
    assert_int_equal(chp_store_has(f->s, b.id), 1);

    /* Exactly-sized buffer, meta NULL. */
    memset(buf, 0, sizeof buf);
    assert_int_equal(chp_store_get(f->s, a.id, buf, a.len, &len, NULL), CHP_OK);
    assert_int_equal(len, a.len);
    assert_memory_equal(buf, a.env, a.len);

    /* One byte short: CHP_E_OVERFLOW, *len is the size needed, meta filled,
     * the buffer untouched. */
    memset(buf, 0x5a, sizeof buf);
    len = 0;
    chp_store_meta m;
    memset(&m, 0, sizeof m);
    assert_int_equal(chp_store_get(f->s, b.id, buf, b.len - 1, &len, &m), CHP_E_OVERFLOW);
    assert_int_equal(len, b.len);
    assert_int_equal(m.created, 40);
    assert_int_equal(m.expiry, 80);
    assert_int_equal(m.own, 1);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0x5a);
    /* Zero capacity, NULL buffer: the size query idiom. */
    len = 0;
    assert_int_equal(chp_store_get(f->s, b.id, NULL, 0, &len, NULL), CHP_E_OVERFLOW);
    assert_int_equal(len, b.len);

    /* del removes the envelope and its index entries and the counters. */
    assert_int_equal(chp_store_del(f->s, b.id), CHP_OK);
    assert_int_equal(chp_store_has(f->s, b.id), 0);
    assert_int_equal(chp_store_get(f->s, b.id, buf, sizeof buf, &len, NULL), CHP_E_NOT_FOUND);
    assert_int_equal(chp_store_del(f->s, b.id), CHP_E_NOT_FOUND);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 1);
    assert_int_equal(st.bytes, a.len);
    assert_int_equal(st.own, 0);
    struct key got[4];
    struct collect c = {got, 0, 4, 0, 0};
    chp_store_bound lo = chp_store_bound_min(), hi = chp_store_bound_max();
    assert_int_equal(chp_store_range(f->s, &lo, &hi, collect_fn, &c), 0);
    assert_int_equal(c.n, 1);
    assert_memory_equal(got[0].id, a.id, 32);
    uint64_t removed = 9;
    assert_int_equal(chp_store_sweep(f->s, 80, &removed), CHP_OK);
    assert_int_equal(removed, 1); /* only a: b's expiry entry went with it */

    /* A deleted envelope can be stored again. */
    assert_int_equal(put_1(f->s, &b), CHP_OK);
    assert_stored(f->s, &b);
    tenv_free(&a, 1);
    tenv_free(&b, 1);
}

static void test_meta_round_trip(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    struct tenv e[3];
    tenv_make(&e[0], 1, 100, 0, 1, 0);
    e[0].received = 0;
    e[0].link = 0;
    tenv_make(&e[1], 2, 100, UINT64_MAX - 1, UINT64_MAX, 1);
    e[1].received = UINT64_MAX;
    e[1].link = UINT32_MAX;
    tenv_make(&e[2], 3, 100, 0x0102030405060708ull, 0x1112131415161718ull, 0);
    e[2].received = 0x2122232425262728ull;
    e[2].link = 0x31323334u;
    int res[3];
    assert_int_equal(put_n(f->s, e, 3, res), CHP_OK);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(res[i], CHP_OK);
        assert_stored(f->s, &e[i]);
    }
    chp_store_close(&f->s);
    open_ok(f, &o);
    for (size_t i = 0; i < 3; i++)
        assert_stored(f->s, &e[i]);
    tenv_free(e, 3);
}

/* ---- ranges and fingerprints ---- */

/* n envelopes with few distinct created values (many ties broken by id). */
static struct tenv *fill_for_ranges(chp_store *s, size_t n, struct key *sorted)
{
    struct tenv *e = calloc(n, sizeof *e);
    int *res = calloc(n, sizeof *res);
    assert_non_null(e);
    assert_non_null(res);
    uint64_t st = 42;
    for (size_t i = 0; i < n; i++) {
        tenv_make(&e[i], 1000 + i, 64, 100 + xs(&st) % 20, 1 << 30, 0);
        sorted[i].created = e[i].created;
        memcpy(sorted[i].id, e[i].id, 32);
    }
    assert_int_equal(put_n(s, e, n, res), CHP_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(res[i], CHP_OK);
    qsort(sorted, n, sizeof *sorted, key_qcmp);
    free(res);
    return e;
}

static void test_range_order_bounds_stop(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    enum { N = 200 };
    struct key sorted[N], got[N];
    struct tenv *e = fill_for_ranges(f->s, N, sorted);

    /* Everything, ascending by (created, id). */
    chp_store_bound lo = chp_store_bound_min(), hi = chp_store_bound_max();
    assert_int_equal(lo.created, 0);
    assert_int_equal(hi.created, UINT64_MAX);
    static const uint8_t zero[32];
    assert_memory_equal(lo.id, zero, 32);
    assert_memory_equal(hi.id, zero, 32);
    struct collect c = {got, 0, N, 0, 0};
    assert_int_equal(chp_store_range(f->s, &lo, &hi, collect_fn, &c), 0);
    assert_int_equal(c.n, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(key_cmp(&got[i], &sorted[i]), 0);

    /* Inclusive lower, exclusive upper, on exact item positions. */
    lo = bound_of(&sorted[17]);
    hi = bound_of(&sorted[150]);
    c.n = 0;
    assert_int_equal(chp_store_range(f->s, &lo, &hi, collect_fn, &c), 0);
    assert_int_equal(c.n, 150 - 17);
    for (size_t i = 0; i < c.n; i++)
        assert_int_equal(key_cmp(&got[i], &sorted[17 + i]), 0);

    /* A bound with only a timestamp (id zero) starts at that second. */
    lo = chp_store_bound_min();
    lo.created = sorted[60].created;
    hi = chp_store_bound_min();
    hi.created = sorted[60].created + 1;
    size_t first = 0, last = 0;
    for (size_t i = 0; i < N; i++) {
        if (sorted[i].created < lo.created)
            first = i + 1;
        if (sorted[i].created <= lo.created)
            last = i + 1;
    }
    c.n = 0;
    assert_int_equal(chp_store_range(f->s, &lo, &hi, collect_fn, &c), 0);
    assert_int_equal(c.n, last - first);
    assert_true(c.n > 1); /* ties exist at 20 distinct seconds */
    for (size_t i = 0; i < c.n; i++)
        assert_int_equal(key_cmp(&got[i], &sorted[first + i]), 0);

    /* Empty and inverted ranges call nothing. */
    c.n = 0;
    lo = bound_of(&sorted[50]);
    assert_int_equal(chp_store_range(f->s, &lo, &lo, collect_fn, &c), 0);
    hi = bound_of(&sorted[10]);
    assert_int_equal(chp_store_range(f->s, &lo, &hi, collect_fn, &c), 0);
    hi = chp_store_bound_min();
    lo = chp_store_bound_min();
    assert_int_equal(chp_store_range(f->s, &lo, &hi, collect_fn, &c), 0);
    assert_int_equal(c.n, 0);

    /* Early stop: the callback's non-zero value is returned at once. */
    lo = bound_of(&sorted[5]);
    hi = chp_store_bound_max();
    struct collect s3 = {got, 0, N, 3, 7};
    assert_int_equal(chp_store_range(f->s, &lo, &hi, collect_fn, &s3), 7);
    assert_int_equal(s3.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(key_cmp(&got[i], &sorted[5 + i]), 0);
    struct collect neg = {got, 0, N, 1, -5};
    assert_int_equal(chp_store_range(f->s, &lo, &hi, collect_fn, &neg), -5);
    assert_int_equal(neg.n, 1);
    tenv_free(e, N);
    free(e);
}

/* A naive fingerprint: ids of sorted[] inside [lo, hi). */
static void naive_fp(const struct key *sorted, size_t n, const struct key *lo, const struct key *hi,
                     uint8_t fp[16], uint64_t *count)
{
    uint8_t(*ids)[32] = malloc((n ? n : 1) * 32);
    assert_non_null(ids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (key_cmp(&sorted[i], lo) >= 0 && key_cmp(&sorted[i], hi) < 0)
            memcpy(ids[k++], sorted[i].id, 32);
    chp_fingerprint_ids((const uint8_t(*)[32])ids, k, fp);
    *count = k;
    free(ids);
}

static struct key random_bound(uint64_t *st, const struct key *sorted, size_t n)
{
    struct key k;
    memset(&k, 0, sizeof k);
    switch (xs(st) % 5) {
    case 0: /* an item's exact position */
    case 1:
        k = sorted[xs(st) % n];
        break;
    case 2: /* a second, id zero */
        k.created = 95 + xs(st) % 30;
        break;
    case 3: /* a second and a random id (a Negentropy bound prefix) */
        k.created = 95 + xs(st) % 30;
        for (size_t i = 0; i < 32; i++)
            k.id[i] = (uint8_t)xs(st);
        if (xs(st) % 2)
            memset(k.id + 1 + xs(st) % 8, 0, 32 - 9); /* short prefix, zero padded */
        break;
    default: /* the extremes */
        if (xs(st) % 2)
            k.created = UINT64_MAX;
        break;
    }
    return k;
}

static void test_fingerprint_vs_naive(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    enum { N = 300 };
    struct key sorted[N];
    uint8_t fp[16], want[16];
    uint64_t count = 77, wcount = 0;

    /* Empty store. */
    chp_store_bound lo = chp_store_bound_min(), hi = chp_store_bound_max();
    assert_int_equal(chp_store_fingerprint(f->s, &lo, &hi, fp, &count), CHP_OK);
    assert_int_equal(count, 0);
    chp_fingerprint_ids(NULL, 0, want);
    assert_memory_equal(fp, want, 16);

    struct tenv *e = fill_for_ranges(f->s, N, sorted);
    struct key kmin, kmax;
    memset(&kmin, 0, sizeof kmin);
    memset(&kmax, 0, sizeof kmax);
    kmax.created = UINT64_MAX;
    naive_fp(sorted, N, &kmin, &kmax, want, &wcount);
    assert_int_equal(wcount, N);
    assert_int_equal(chp_store_fingerprint(f->s, &lo, &hi, fp, &count), CHP_OK);
    assert_int_equal(count, N);
    assert_memory_equal(fp, want, 16);
    assert_int_equal(chp_store_fingerprint(f->s, &lo, &hi, fp, NULL), CHP_OK);
    assert_memory_equal(fp, want, 16);

    uint64_t st = 7;
    size_t nonempty = 0;
    for (int r = 0; r < 500; r++) {
        struct key a = random_bound(&st, sorted, N), b = random_bound(&st, sorted, N);
        if (key_cmp(&a, &b) > 0) {
            struct key t = a;
            a = b;
            b = t;
        }
        naive_fp(sorted, N, &a, &b, want, &wcount);
        chp_store_bound bl = bound_of(&a), bh = bound_of(&b);
        count = 12345;
        assert_int_equal(chp_store_fingerprint(f->s, &bl, &bh, fp, &count), CHP_OK);
        assert_int_equal(count, wcount);
        assert_memory_equal(fp, want, 16);
        count = 12345;
        assert_int_equal(chp_store_count(f->s, &bl, &bh, &count), CHP_OK);
        assert_int_equal(count, wcount);
        nonempty += wcount > 1;
    }
    assert_true(nonempty > 200); /* the ranges were not all trivial */

    /* After deletes the fingerprint follows (index entries went too). */
    for (size_t i = 0; i < N; i += 3)
        assert_int_equal(chp_store_del(f->s, e[i].id), CHP_OK);
    struct key rest[N];
    size_t nr = 0;
    for (size_t i = 0; i < N; i++)
        if (i % 3) {
            rest[nr].created = e[i].created;
            memcpy(rest[nr++].id, e[i].id, 32);
        }
    qsort(rest, nr, sizeof *rest, key_qcmp);
    naive_fp(rest, nr, &kmin, &kmax, want, &wcount);
    assert_int_equal(chp_store_fingerprint(f->s, &lo, &hi, fp, &count), CHP_OK);
    assert_int_equal(count, nr);
    assert_memory_equal(fp, want, 16);
    tenv_free(e, N);
    free(e);
}

/* chp_fingerprint_ids against the definition, built by hand. */
static void test_fingerprint_ids_by_hand(void **state)
{
    (void)state;
    uint8_t fp[16], h[32], buf[64];

    /* The empty set (Negentropy reference): SHA-256(32 zero bytes || 0x00),
     * first 16 bytes; the value also pins chp_sha256. */
    static const uint8_t empty[16] = {0x7f, 0x9c, 0x9e, 0x31, 0xac, 0x82, 0x56, 0xca,
                                      0x2f, 0x25, 0x85, 0x83, 0xdf, 0x26, 0x2d, 0xbc};
    chp_fingerprint_ids(NULL, 0, fp);
    assert_memory_equal(fp, empty, 16);
    memset(buf, 0, 33);
    chp_sha256(h, buf, 33);
    assert_memory_equal(h, empty, 16);

    /* Carry across all 32 bytes and wrap mod 2^256: ff..ff + 1 = 0. */
    uint8_t two[2][32];
    memset(two[0], 0xff, 32);
    memset(two[1], 0, 32);
    two[1][0] = 1;
    chp_fingerprint_ids((const uint8_t(*)[32])two, 2, fp);
    memset(buf, 0, 32);
    buf[32] = 0x02;
    chp_sha256(h, buf, 33);
    assert_memory_equal(fp, h, 16);

    /* 300 ids each = 1 + 2^248: sum = 300 + 300 * 2^248 mod 2^256, i.e.
     * little-endian 2c 01 00 .. 00 2c (the 2^256 part of 300 * 2^248 is
     * dropped); varint(300) = 82 2c (MSB first). */
    uint8_t(*many)[32] = calloc(300, 32);
    assert_non_null(many);
    for (size_t i = 0; i < 300; i++) {
        many[i][0] = 1;
        many[i][31] = 1;
    }
    chp_fingerprint_ids((const uint8_t(*)[32])many, 300, fp);
    memset(buf, 0, sizeof buf);
    buf[0] = 0x2c;
    buf[1] = 0x01;
    buf[31] = 0x2c;
    buf[32] = 0x82;
    buf[33] = 0x2c;
    chp_sha256(h, buf, 34);
    assert_memory_equal(fp, h, 16);

    /* 128 ids of 0: varint(128) = 81 00. */
    memset(many, 0, 300 * 32);
    chp_fingerprint_ids((const uint8_t(*)[32])many, 128, fp);
    memset(buf, 0, sizeof buf);
    buf[32] = 0x81;
    buf[33] = 0x00;
    chp_sha256(h, buf, 34);
    assert_memory_equal(fp, h, 16);
    /* 127 ids of 0: varint(127) = 7f. */
    chp_fingerprint_ids((const uint8_t(*)[32])many, 127, fp);
    buf[32] = 0x7f;
    chp_sha256(h, buf, 33);
    assert_memory_equal(fp, h, 16);
    /* 16384 needs three groups: 81 80 00. */
    uint8_t(*lots)[32] = calloc(16384, 32);
    assert_non_null(lots);
    chp_fingerprint_ids((const uint8_t(*)[32])lots, 16384, fp);
    buf[32] = 0x81;
    buf[33] = 0x80;
    buf[34] = 0x00;
    chp_sha256(h, buf, 35);
    assert_memory_equal(fp, h, 16);
    free(lots);

    /* Random ids: the sum computed with 64-bit limbs. */
    uint64_t st = 99, limb[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < 300; i++) {
        for (size_t j = 0; j < 32; j++)
            many[i][j] = (uint8_t)xs(&st);
        unsigned carry = 0;
        for (size_t l = 0; l < 4; l++) {
            uint64_t x = 0;
            for (size_t b = 0; b < 8; b++)
                x |= (uint64_t)many[i][8 * l + b] << (8 * b);
            uint64_t s1 = limb[l] + x;
            unsigned c1 = s1 < x;
            uint64_t s2 = s1 + carry;
            unsigned c2 = s2 < s1;
            limb[l] = s2;
            carry = c1 | c2;
        }
    }
    for (size_t l = 0; l < 4; l++)
        for (size_t b = 0; b < 8; b++)
            buf[8 * l + b] = (uint8_t)(limb[l] >> (8 * b));
    buf[32] = 0x82;
    buf[33] = 0x2c;
    chp_sha256(h, buf, 34);
    chp_fingerprint_ids((const uint8_t(*)[32])many, 300, fp);
    assert_memory_equal(fp, h, 16);
    free(many);
}

/* ---- expiry ---- */

static void test_sweep(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    enum { N = 60 };
    struct tenv e[N];
    int res[N];
    uint64_t st = 3;
    /* Expiries 1000..1029, two of each, inserted in scrambled order, a third
     * of them the user's own (expiry applies to those too). */
    for (size_t i = 0; i < N; i++)
        tenv_make(&e[i], 500 + i, 100 + i, 900, 1000 + (xs(&st) % 30), i % 3 == 0);
    assert_int_equal(put_n(f->s, e, N, res), CHP_OK);

    uint64_t removed = 99;
    assert_int_equal(chp_store_sweep(f->s, 999, &removed), CHP_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(chp_store_sweep(f->s, 0, NULL), CHP_OK);

    uint64_t now = 1014, want = 0, wbytes = 0, wown = 0;
    for (size_t i = 0; i < N; i++) {
        if (e[i].expiry <= now) {
            want++;
        } else {
            wbytes += e[i].len;
            wown += e[i].own;
        }
    }
    assert_true(want > 0 && want < N);
    assert_int_equal(chp_store_sweep(f->s, now, &removed), CHP_OK);
    assert_int_equal(removed, want);
    for (size_t i = 0; i < N; i++) {
        if (e[i].expiry <= now)
            assert_int_equal(chp_store_has(f->s, e[i].id), 0);
        else
            assert_stored(f->s, &e[i]);
    }
    chp_store_stats s1;
    chp_store_stats_get(f->s, &s1);
    assert_int_equal(s1.envelopes, N - want);
    assert_int_equal(s1.bytes, wbytes);
    assert_int_equal(s1.own, wown);
    assert_int_equal(s1.expired, want);
    assert_int_equal(count_all(f->s), N - want);

    /* Again at the same time: nothing more. */
    assert_int_equal(chp_store_sweep(f->s, now, &removed), CHP_OK);
    assert_int_equal(removed, 0);
    /* Far future: everything. */
    assert_int_equal(chp_store_sweep(f->s, UINT64_MAX, &removed), CHP_OK);
    assert_int_equal(removed, N - want);
    chp_store_stats_get(f->s, &s1);
    assert_int_equal(s1.envelopes, 0);
    assert_int_equal(s1.bytes, 0);
    assert_int_equal(s1.own, 0);
    assert_int_equal(s1.expired, N);
    assert_int_equal(count_all(f->s), 0);
    tenv_free(e, N);
}

/* ---- quota ---- */

/* chapard's reload: a lower quota evicts foreign envelopes, nearest
 * expiry first, at the next put; a higher one makes room; a batch on the
 * writer thread finishes under the old quota, its result kept. */
static void test_quota_set(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {10000, 0, 1};
    open_ok(f, &o);
    struct tenv F[10], N[3];
    int res[10];
    for (size_t i = 0; i < 10; i++)
        tenv_make(&F[i], 40 + i, 1000, 1, 100 + i, 0);
    for (size_t i = 0; i < 3; i++)
        tenv_make(&N[i], 60 + i, 1000, 1, 500 + i, 0);
    assert_int_equal(put_n(f->s, F, 10, res), CHP_OK);
    chp_store_set_quota(f->s, 5000);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.quota, 5000);
    assert_int_equal(st.bytes, 10000); /* nothing goes before a put */
    assert_int_equal(put_1(f->s, &N[0]), CHP_OK);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.bytes, 5000);
    assert_int_equal(st.evicted, 6);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(chp_store_has(f->s, F[i].id), i >= 6);

    chp_store_item it;
    item_of(&it, &N[1]);
    assert_int_equal(chp_store_put_start(f->s, &it, 1), CHP_OK);
    chp_store_set_quota(f->s, 7000); /* waits for the batch */
    assert_int_equal(chp_store_put_wait(f->s), CHP_OK);
    assert_int_equal(it.result, CHP_OK);
    assert_int_equal(put_1(f->s, &N[2]), CHP_OK);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.quota, 7000);
    assert_int_equal(st.evicted, 7); /* N1 at 5000 of 5000 evicted F6 */
    assert_int_equal(st.bytes, 6000);
    tenv_free(F, 10);
    tenv_free(N, 3);
}

static void test_quota_eviction_order(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {10000, 0, 1};
    open_ok(f, &o);
    /* Foreign F0..F7 and own O0, O1 (the earliest expiries), 1000 bytes
     * each: exactly the quota. */
    static const uint64_t fexp[8] = {50, 10, 40, 20, 70, 30, 60, 80};
    struct tenv F[8], O[3], N[6];
    for (size_t i = 0; i < 8; i++)
        tenv_make(&F[i], 10 + i, 1000, 1, fexp[i], 0);
    tenv_make(&O[0], 20, 1000, 1, 5, 1);
    tenv_make(&O[1], 21, 1000, 1, 6, 1);
    tenv_make(&O[2], 22, 1000, 1, 1, 1);
    tenv_make(&N[0], 30, 1000, 1, 100, 0);
    tenv_make(&N[1], 31, 1000, 1, 25, 0);
    tenv_make(&N[2], 32, 1000, 1, 15, 0);
    tenv_make(&N[3], 33, 1000, 1, 25, 0);
    tenv_make(&N[4], 34, 2500, 1, 1000, 0);
    tenv_make(&N[5], 35, 1000, 1, 2000, 0);
    int res[8];
    assert_int_equal(put_n(f->s, F, 8, res), CHP_OK);
    assert_int_equal(put_n(f->s, O, 2, res), CHP_OK);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.bytes, 10000);
    assert_int_equal(st.evicted, 0);

    /* Expiry 100: the nearest-expiry foreign one (F1, 10) goes, not the
     * own ones expiring at 5 and 6. */
    assert_int_equal(put_1(f->s, &N[0]), CHP_OK);
    assert_int_equal(chp_store_has(f->s, F[1].id), 0);
    assert_int_equal(chp_store_has(f->s, O[0].id), 1);
    assert_int_equal(chp_store_has(f->s, O[1].id), 1);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(st.bytes, 10000);
    assert_int_equal(st.envelopes, 10);

    /* Expiry 25: F3 (20) goes. */
    assert_int_equal(put_1(f->s, &N[1]), CHP_OK);
    assert_int_equal(chp_store_has(f->s, F[3].id), 0);

    /* Expiry 15 is earlier than every foreign one stored (nearest: N1, 25):
     * the newcomer is refused and nothing is evicted. */
    assert_int_equal(put_1(f->s, &N[2]), CHP_E_STORE_FULL);
    assert_int_equal(chp_store_has(f->s, N[2].id), 0);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.evicted, 2);
    assert_int_equal(st.refused_full, 1);
    assert_int_equal(st.envelopes, 10);
    assert_int_equal(st.full, 1); /* refusing, by quota this time */

    /* Same expiry as the nearest foreign (N1, 25): it does not live longer
     * than the newcomer, so it is evicted; a foreign envelope accepted
     * means the store is no longer refusing. */
    assert_int_equal(put_1(f->s, &N[3]), CHP_OK);
    assert_int_equal(chp_store_has(f->s, N[1].id), 0);
    assert_int_equal(chp_store_has(f->s, F[5].id), 1);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.full, 0);

    /* A duplicate over quota evicts nothing. */
    assert_int_equal(put_1(f->s, &F[0]), CHP_E_DUP);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.evicted, 3);
    assert_int_equal(st.duplicates, 1);

    /* The user's own, expiring before everything: never refused by quota;
     * it takes the room of the nearest-expiry foreign one, N3 (25). */
    assert_int_equal(put_1(f->s, &O[2]), CHP_OK);
    assert_int_equal(chp_store_has(f->s, N[3].id), 0);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.bytes, 10000);
    assert_int_equal(st.own, 3);
    assert_int_equal(st.kept, 3000);
    assert_int_equal(st.evicted, 4);

    /* 2500 bytes at 10000 of 10000: three go, nearest expiry first:
     * F5 (30), F2 (40), F0 (50); F6 (60) stays. */
    assert_int_equal(put_1(f->s, &N[4]), CHP_OK);
    assert_int_equal(chp_store_has(f->s, N[3].id), 0);
    assert_int_equal(chp_store_has(f->s, F[5].id), 0);
    assert_int_equal(chp_store_has(f->s, F[2].id), 0);
    assert_int_equal(chp_store_has(f->s, F[0].id), 0);
    assert_int_equal(chp_store_has(f->s, F[6].id), 1);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.evicted, 7);
    assert_int_equal(st.bytes, 9500);

    /* In one batch: N5 (2000) evicts F6 (60), the nearest foreign one now;
     * then N2 (15) is refused again. */
    struct tenv b2[2] = {N[5], N[2]};
    assert_int_equal(put_n(f->s, b2, 2, res), CHP_OK);
    assert_int_equal(res[0], CHP_OK);
    assert_int_equal(res[1], CHP_E_STORE_FULL);
    assert_int_equal(chp_store_has(f->s, F[6].id), 0);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.evicted, 8);
    assert_int_equal(st.refused_full, 2);
    assert_int_equal(st.bytes, 9500);

    /* Survivors: own O0..O2, F4 (70), F7 (80), N0, N4, N5. */
    const struct tenv *keep[] = {&O[0], &O[1], &O[2], &F[4], &F[7], &N[0], &N[4], &N[5]};
    for (size_t i = 0; i < 8; i++)
        assert_stored(f->s, keep[i]);
    assert_int_equal(st.envelopes, 8);
    assert_int_equal(count_all(f->s), 8);
    /* The counters survive a reopen. */
    chp_store_close(&f->s);
    open_ok(f, &o);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 8);
    assert_int_equal(st.bytes, 9500);
    assert_int_equal(st.own, 3);
    tenv_free(F, 8);
    tenv_free(O, 3);
    tenv_free(N, 6);
}

/* A newcomer that cannot be made to fit must not cost anyone else their
 * place ("if the newcomer would expire first, it is the one refused"). */
static void test_quota_no_eviction_for_nothing(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {3000, 0, 1};
    open_ok(f, &o);
    struct tenv e[4];
    tenv_make(&e[0], 1, 1000, 1, 10, 0);
    tenv_make(&e[1], 2, 1000, 1, 30, 0);
    tenv_make(&e[2], 3, 1000, 1, 40, 0);
    tenv_make(&e[3], 4, 2000, 1, 20, 0); /* would need e0 and e1 gone */
    int res[3];
    assert_int_equal(put_n(f->s, e, 3, res), CHP_OK);
    assert_int_equal(put_1(f->s, &e[3]), CHP_E_STORE_FULL);
    int has0 = chp_store_has(f->s, e[0].id);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    tenv_free(e, 4);
    assert_int_equal(has0, 1);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.refused_full, 1);
    assert_int_equal(st.envelopes, 3);
    assert_int_equal(st.bytes, 3000);
}

/* Own and mine envelopes are never refused by quota, even when they alone
 * exceed it; then every foreign one is refused and the store says full
 * until a sweep (or deletions) make room. */
static void test_quota_kept_never_refused(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {5000, 0, 1};
    open_ok(f, &o);
    struct tenv k[8], F[3];
    for (size_t i = 0; i < 8; i++) {
        tenv_make(&k[i], 100 + i, 1000, 1, 50 + i, i % 2 == 0);
        k[i].mine = i % 2 == 1;
    }
    tenv_make(&F[0], 200, 1000, 1, 1000, 0);
    tenv_make(&F[1], 201, 10, 1, 1000, 0);
    tenv_make(&F[2], 202, 1000, 1, 2000, 0);
    int res[8];
    /* A foreign one first: it fits, and is evicted for the kept ones. */
    assert_int_equal(put_1(f->s, &F[0]), CHP_OK);
    assert_int_equal(put_n(f->s, k, 8, res), CHP_OK);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(res[i], CHP_OK);
    assert_int_equal(chp_store_has(f->s, F[0].id), 0);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 8);
    assert_int_equal(st.bytes, 8000);
    assert_int_equal(st.own, 4);
    assert_int_equal(st.mine, 4);
    assert_int_equal(st.kept, 8000);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(st.refused_full, 0);
    assert_int_equal(st.full, 1); /* no foreign byte fits: refusing already */

    /* Foreign, however small and long-lived: refused, nothing evicted. */
    assert_int_equal(put_1(f->s, &F[1]), CHP_E_STORE_FULL);
    assert_int_equal(put_1(f->s, &F[2]), CHP_E_STORE_FULL);
    /* A duplicate of a kept one is a duplicate, not a refusal. */
    assert_int_equal(put_1(f->s, &k[3]), CHP_E_DUP);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.refused_full, 2);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.envelopes, 8);
    assert_int_equal(st.full, 1);
    for (size_t i = 0; i < 8; i++)
        assert_stored(f->s, &k[i]);

    /* The counters survive a reopen (full is derived from them). */
    chp_store_close(&f->s);
    open_ok(f, &o);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.own, 4);
    assert_int_equal(st.mine, 4);
    assert_int_equal(st.kept, 8000);
    assert_int_equal(st.full, 1);

    /* Expiry sweeps kept ones too: 4 of 8 gone, 1000 bytes of room. */
    uint64_t removed = 0;
    assert_int_equal(chp_store_sweep(f->s, 53, &removed), CHP_OK);
    assert_int_equal(removed, 4);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.kept, 4000);
    assert_int_equal(st.own, 2);
    assert_int_equal(st.mine, 2);
    assert_int_equal(st.full, 0);
    assert_int_equal(put_1(f->s, &F[2]), CHP_OK);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.bytes, 5000);
    assert_int_equal(st.full, 0);
    tenv_free(k, 8);
    tenv_free(F, 3);
}

/* The order of eviction: foreign ones only, nearest expiry first (so the
 * expired ones first), whatever the expiry of kept ones in between; a
 * kept newcomer takes any foreign one's room, a foreign newcomer only
 * that of foreign ones expiring no later than itself. */
static void test_quota_eviction_kept_first_order(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {6000, 0, 1};
    open_ok(f, &o);
    /* By expiry: O(1) F0(2) M(3) F1(4) F2(6) F3(900); 1000 bytes each. */
    struct tenv O, M, F[4], N[3];
    tenv_make(&O, 1, 1000, 1, 1, 1);
    tenv_make(&M, 2, 1000, 1, 3, 0);
    M.mine = 1;
    static const uint64_t fexp[4] = {2, 4, 6, 900};
    for (size_t i = 0; i < 4; i++)
        tenv_make(&F[i], 10 + i, 1000, 1, fexp[i], 0);
    tenv_make(&N[0], 20, 1500, 1, 1, 1); /* own, expiring first of all */
    tenv_make(&N[1], 21, 1000, 1, 5, 0); /* foreign, expiry 5 */
    N[1].mine = 1;                       /* ...but addressed to the user */
    tenv_make(&N[2], 22, 2000, 1, 5, 0); /* foreign, expiry 5 */
    const struct tenv first[6] = {O, F[0], M, F[1], F[2], F[3]};
    int res[6];
    assert_int_equal(put_n(f->s, first, 6, res), CHP_OK);

    /* 1500 own bytes: F0 (2) and F1 (4) go, skipping O and M between. */
    assert_int_equal(put_1(f->s, &N[0]), CHP_OK);
    assert_int_equal(chp_store_has(f->s, F[0].id), 0);
    assert_int_equal(chp_store_has(f->s, F[1].id), 0);
    assert_int_equal(chp_store_has(f->s, F[2].id), 1);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.evicted, 2);
    assert_int_equal(st.bytes, 5500);
    assert_int_equal(st.kept, 3500);

    /* A mine one: F2 (6) goes although it outlives the newcomer (5). */
    assert_int_equal(put_1(f->s, &N[1]), CHP_OK);
    assert_int_equal(chp_store_has(f->s, F[2].id), 0);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.bytes, 5500);
    assert_int_equal(st.kept, 4500);

    /* Foreign, expiry 5: F3 (900) outlives it, so it is refused and F3
     * keeps its place. */
    assert_int_equal(put_1(f->s, &N[2]), CHP_E_STORE_FULL);
    assert_int_equal(chp_store_has(f->s, F[3].id), 1);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.evicted, 3);
    assert_int_equal(st.full, 1);
    const struct tenv *keep[] = {&O, &M, &F[3], &N[0], &N[1]};
    for (size_t i = 0; i < 5; i++)
        assert_stored(f->s, keep[i]);
    assert_int_equal(count_all(f->s), 5);
    tenv_free(&O, 1);
    tenv_free(&M, 1);
    tenv_free(F, 4);
    tenv_free(N, 3);
}

/* An envelope recognised after it was stored becomes kept: flags, index
 * entry and counters move in one transaction; marking twice changes
 * nothing. */
static void test_mark_mine(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {3000, 0, 1};
    open_ok(f, &o);
    struct tenv e[5];
    tenv_make(&e[0], 1, 1000, 1, 10, 0);
    tenv_make(&e[1], 2, 1000, 1, 20, 0);
    tenv_make(&e[2], 3, 1000, 1, 30, 1); /* own */
    tenv_make(&e[3], 4, 1000, 1, 40, 0);
    tenv_make(&e[4], 5, 1000, 1, 50, 0);
    int res[3];
    assert_int_equal(put_n(f->s, e, 3, res), CHP_OK);
    assert_int_equal(chp_store_mark_mine(f->s, e[0].id), CHP_OK);
    e[0].mine = 1;
    assert_stored(f->s, &e[0]);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.mine, 1);
    assert_int_equal(st.kept, 2000);
    assert_int_equal(st.bytes, 3000);
    assert_int_equal(chp_store_mark_mine(f->s, e[0].id), CHP_OK); /* again */
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.mine, 1);
    assert_int_equal(st.kept, 2000);
    /* An own one marked mine too: counted once in kept bytes. */
    assert_int_equal(chp_store_mark_mine(f->s, e[2].id), CHP_OK);
    e[2].mine = 1;
    assert_stored(f->s, &e[2]);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.mine, 2);
    assert_int_equal(st.own, 1);
    assert_int_equal(st.kept, 2000);
    uint8_t nope[32] = {0};
    assert_int_equal(chp_store_mark_mine(f->s, nope), CHP_E_NOT_FOUND);

    /* e0 expires first, but is mine now: e1 (20) is evicted instead. */
    assert_int_equal(put_1(f->s, &e[3]), CHP_OK);
    assert_int_equal(chp_store_has(f->s, e[1].id), 0);
    assert_stored(f->s, &e[0]);
    /* Only e3 is foreign now: the next one evicts it, not e0. */
    assert_int_equal(put_1(f->s, &e[4]), CHP_OK);
    assert_int_equal(chp_store_has(f->s, e[3].id), 0);
    assert_stored(f->s, &e[0]);

    /* Persisted, and moved back out by a delete. */
    chp_store_close(&f->s);
    open_ok(f, &o);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.mine, 2);
    assert_int_equal(st.kept, 2000);
    assert_int_equal(chp_store_del(f->s, e[0].id), CHP_OK);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.mine, 1);
    assert_int_equal(st.kept, 1000);
    /* The sweep finds it through the index entry that was rewritten. */
    uint64_t removed = 0;
    assert_int_equal(chp_store_sweep(f->s, 30, &removed), CHP_OK);
    assert_int_equal(removed, 1);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.mine, 0);
    assert_int_equal(st.own, 0);
    assert_int_equal(st.kept, 0);
    assert_int_equal(st.envelopes, 1);
    tenv_free(e, 5);
}

/* Writes a store of schema 1 or 2 in the layout of STORAGE.md before
 * schema 3, with LMDB alone (as chapard up to 0.x wrote it): envelopes
 * under their ids (metadata, insertion sequence, bytes), both indexes and
 * the counters. Sequences are 10, 13, 16, ... so that keeping them (the
 * expiry index names them) is checked. */
static MDB_env *tamper_open(const char *dir, MDB_txn **t);

static void old_store_write(const char *dir, uint32_t schema, const struct tenv *e, size_t n)
{
    assert_int_equal(mkdir(dir, 0700), 0);
    MDB_txn *t;
    MDB_env *env = tamper_open(dir, &t);
    MDB_dbi meta, envs, byc, bye, local;
    assert_int_equal(mdb_dbi_open(t, "meta", MDB_CREATE, &meta), 0);
    assert_int_equal(mdb_dbi_open(t, "envelopes", MDB_CREATE, &envs), 0);
    assert_int_equal(mdb_dbi_open(t, "by_created", MDB_CREATE, &byc), 0);
    assert_int_equal(mdb_dbi_open(t, "by_expiry", MDB_CREATE, &bye), 0);
    assert_int_equal(mdb_dbi_open(t, "local", MDB_CREATE, &local), 0);
    uint64_t bytes = 0, own = 0, mine = 0, kept = 0, seq = 0;
    for (size_t i = 0; i < n; i++) {
        seq = 10 + 3 * i;
        uint8_t *rec = malloc(37 + e[i].len), ck[40], ek[16], ev[33];
        assert_non_null(rec);
        uint8_t flags = (uint8_t)((e[i].own ? 1 : 0) | (e[i].mine && schema == 2 ? 2 : 0));
        chp_put_be64(rec, e[i].created);
        chp_put_be64(rec + 8, e[i].expiry);
        chp_put_be64(rec + 16, e[i].received);
        chp_put_be32(rec + 24, e[i].link);
        rec[28] = flags;
        chp_put_be64(rec + 29, seq);
        memcpy(rec + 37, e[i].env, e[i].len);
        chp_put_be64(ck, e[i].created);
        memcpy(ck + 8, e[i].id, 32);
        chp_put_be64(ek, e[i].expiry);
        chp_put_be64(ek + 8, seq);
        ev[0] = flags;
        memcpy(ev + 1, e[i].id, 32);
        MDB_val k = {32, (void *)e[i].id}, v = {37 + e[i].len, rec};
        MDB_val kc = {40, ck}, empty = {0, ""}, ke = {16, ek}, ve = {33, ev};
        assert_int_equal(mdb_put(t, envs, &k, &v, 0), 0);
        assert_int_equal(mdb_put(t, byc, &kc, &empty, 0), 0);
        assert_int_equal(mdb_put(t, bye, &ke, &ve, 0), 0);
        free(rec);
        bytes += e[i].len;
        own += e[i].own != 0;
        mine += (flags & 2) != 0;
        kept += flags ? e[i].len : 0;
    }
    const char *names[] = {"count", "bytes", "own", "seq", "mine", "kept"};
    uint64_t vals[] = {n, bytes, own, seq, mine, kept};
    for (size_t i = 0; i < (schema == 2 ? 6u : 4u); i++) {
        uint8_t b[8];
        chp_put_be64(b, vals[i]);
        MDB_val k = {strlen(names[i]), (void *)names[i]}, v = {8, b};
        assert_int_equal(mdb_put(t, meta, &k, &v, 0), 0);
    }
    uint8_t sb[4];
    chp_put_be32(sb, schema);
    MDB_val k = {6, "schema"}, v = {4, sb};
    assert_int_equal(mdb_put(t, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
}

/* Schema-1 and -2 stores (envelopes under their ids) are migrated on open
 * to schema 3: every envelope is kept with its bytes, metadata and
 * insertion sequence, the counters are right (schema 1 had no `kept`),
 * and the migrated store works: duplicates, new puts, eviction, expiry,
 * the walk in insertion order, and the old table is gone. */
static void test_open_migrates_old_schemas(void **state)
{
    struct fx *f = *state;
    for (uint32_t schema = 1; schema <= 2; schema++) {
        chp_store_opts o = {4000, 0, 1};
        struct tenv e[5];
        for (size_t i = 0; i < 5; i++) {
            tenv_make(&e[i], 1 + i, 700 + 100 * i, 1, i < 2 ? 50 + i : 10 + i, i < 2);
            e[i].received = 100 + i;
            e[i].link = (uint32_t)(7 * i);
            e[i].mine = schema == 2 && i == 4;
        }
        old_store_write(f->dir, schema, e, 4);
        uint32_t found = 0;
        assert_int_equal(chp_store_open(f->dir, &o, &f->s, &found), CHP_OK);
        assert_int_equal(found, CHP_STORE_SCHEMA);
        chp_store_stats st;
        chp_store_stats_get(f->s, &st);
        assert_int_equal(st.envelopes, 4);
        assert_int_equal(st.own, 2);
        assert_int_equal(st.mine, 0);
        assert_int_equal(st.kept, 700 + 800);
        for (size_t i = 0; i < 4; i++) {
            assert_stored(f->s, &e[i]);
            chp_store_meta m;
            size_t len;
            assert_int_equal(chp_store_get(f->s, e[i].id, NULL, 0, &len, &m), CHP_E_OVERFLOW);
            assert_int_equal(m.seq, 10 + 3 * i); /* the expiry index names it */
        }
        assert_int_equal(put_1(f->s, &e[0]), CHP_E_DUP);
        /* a newcomer gets the next sequence; the quota (4000 bytes) makes it
         * evict the foreign ones nearest expiry, never the own ones */
        struct tenv nw;
        tenv_make(&nw, 9, 1000, 1, 100, 0);
        assert_int_equal(put_1(f->s, &nw), CHP_OK);
        chp_store_meta m;
        size_t len;
        assert_int_equal(chp_store_get(f->s, nw.id, NULL, 0, &len, &m), CHP_E_OVERFLOW);
        assert_int_equal(m.seq, 10 + 3 * 3 + 1);
        assert_int_equal(chp_store_has(f->s, e[2].id), 0);
        assert_int_equal(chp_store_has(f->s, e[0].id), 1);
        /* expiry goes by the migrated index: e[3] expires at 13 */
        uint64_t removed = 0;
        assert_int_equal(chp_store_sweep(f->s, 13, &removed), CHP_OK);
        assert_int_equal(removed, 1);
        assert_int_equal(chp_store_has(f->s, e[3].id), 0);
        chp_store_close(&f->s);
        open_ok(f, &o); /* schema 3 on disk now, and no `envelopes` table */
        chp_store_stats_get(f->s, &st);
        assert_int_equal(st.kept, 1500);
        assert_int_equal(st.envelopes, 3);
        chp_store_close(&f->s);
        MDB_txn *t;
        MDB_env *env = tamper_open(f->dir, &t);
        MDB_dbi envs;
        assert_int_equal(mdb_dbi_open(t, "envelopes", 0, &envs), MDB_NOTFOUND);
        mdb_txn_abort(t);
        mdb_env_close(env);
        rm_rf(f->dir);
        tenv_free(e, 5);
        tenv_free(&nw, 1);
    }
}

/* ---- a full map ---- */

static void test_map_max_honoured(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {QUOTA_HUGE, 512 * 1024, 1};
    open_ok(f, &o);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_true(st.map_size <= 512 * 1024);
}

#define OWN_EXP (1ull << 40) /* outlives any sweep below */

/* Foreign envelopes filling a map to the brim. */
struct mapfill {
    struct tenv *e;
    int *res;
    size_t n, cap, stored;
    uint64_t bytes, map;
};

/* Fills the store's map with foreign envelopes (expiry 100 + k): batches
 * of 16 until one is refused, then single ones until one is refused. */
static void fill_map(chp_store *s, struct mapfill *m)
{
    enum { B = 16 };
    chp_store_stats st;
    chp_store_stats_get(s, &st);
    memset(m, 0, sizeof *m);
    m->map = st.map_size;
    m->cap = (size_t)(2 * m->map / ENV_BIG) + 64;
    m->e = calloc(m->cap, sizeof *m->e);
    m->res = calloc(m->cap, sizeof *m->res);
    assert_non_null(m->e);
    assert_non_null(m->res);
    int hit = 0;
    while (!hit) {
        assert_true(m->n + B <= m->cap);
        for (size_t i = m->n; i < m->n + B; i++)
            tenv_make(&m->e[i], 7000 + i, ENV_BIG, 10, 100 + i, 0);
        assert_int_equal(put_n(s, m->e + m->n, B, m->res + m->n), CHP_OK);
        for (size_t i = m->n; i < m->n + B; i++) {
            if (m->res[i] == CHP_OK) {
                m->stored++;
                m->bytes += m->e[i].len;
            } else {
                assert_int_equal(m->res[i], CHP_E_STORE_FULL);
                hit = 1;
            }
        }
        m->n += B;
    }
    /* The batch that did not fit was refused whole (foreign ones all go
     * when the map cannot grow), and nothing of it is stored. */
    for (size_t i = m->n - B; i < m->n; i++) {
        assert_int_equal(m->res[i], CHP_E_STORE_FULL);
        assert_int_equal(chp_store_has(s, m->e[i].id), 0);
    }
    chp_store_stats_get(s, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.envelopes, m->stored);
    assert_int_equal(st.accepted, m->stored);
    assert_int_equal(st.bytes, m->bytes);
    assert_int_equal(st.refused_full, B);
    assert_int_equal(st.map_size, m->map); /* at map_max, it did not grow */
    assert_true(m->stored > 0);

    /* A smaller load may still fit: single envelopes until one does not. */
    for (hit = 0; !hit; m->n++) {
        assert_true(m->n < m->cap);
        tenv_make(&m->e[m->n], 7000 + m->n, ENV_BIG, 10, 100 + m->n, 0);
        m->res[m->n] = put_1(s, &m->e[m->n]);
        if (m->res[m->n] == CHP_OK) {
            m->stored++;
            m->bytes += m->e[m->n].len;
        } else {
            assert_int_equal(m->res[m->n], CHP_E_STORE_FULL);
            hit = 1;
        }
    }
    chp_store_stats_get(s, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.refused_full, B + 1);
    assert_int_equal(st.envelopes, m->stored);
    assert_int_equal(st.bytes, m->bytes);
}

static void mapfill_free(struct mapfill *m)
{
    tenv_free(m->e, m->n);
    free(m->e);
    free(m->res);
}

static void test_map_full(void **state)
{
    struct fx *f = *state;
    /* map_max far below the quota: the map, not the quota, fills. */
    chp_store_opts o = {QUOTA_HUGE, 512 * 1024, 1};
    open_ok(f, &o);
    struct mapfill m;
    fill_map(f->s, &m);
    const struct tenv *last = &m.e[m.n - 1]; /* refused */
    chp_store_stats st;

    /* The same envelope again: still refused, the call itself succeeds. */
    assert_int_equal(put_1(f->s, last), CHP_E_STORE_FULL);
    assert_int_equal(chp_store_has(f->s, last->id), 0);

    /* The user's own still gets in while there is room. */
    struct tenv own[2];
    tenv_make(&own[0], 90000, ENV_SMALL, 10, OWN_EXP, 1);
    assert_int_equal(put_1(f->s, &own[0]), CHP_OK);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.own, 1);
    assert_int_equal(st.envelopes, m.stored + 1);
    /* A mixed batch: own accepted, foreign refused. */
    struct tenv mix[2];
    tenv_make(&own[1], 90001, ENV_SMALL, 10, OWN_EXP, 1);
    mix[0] = *last;
    mix[1] = own[1];
    int r2[2];
    assert_int_equal(put_n(f->s, mix, 2, r2), CHP_OK);
    assert_int_equal(r2[0], CHP_E_STORE_FULL);
    assert_int_equal(r2[1], CHP_OK);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.refused_full, 16 + 3);
    assert_int_equal(st.own, 2);

    /* Own envelopes until even they do not fit: then the whole batch
     * fails with CHP_E_STORE_FULL and nothing of it is stored. Batches
     * first, then single envelopes. */
    enum { OBMAX = 4096 };
    struct tenv *ob = calloc(OBMAX, sizeof *ob);
    assert_non_null(ob);
    size_t nob = 0;
    for (int single = 0; single < 2; single++) {
        const size_t bn = single ? 1 : 8;
        for (int failed = 0; !failed;) {
            assert_true(nob + bn <= OBMAX);
            for (size_t i = 0; i < bn; i++)
                tenv_make(&ob[nob + i], 200000 + nob + i, ENV_SMALL, 10, OWN_EXP, 1);
            chp_store_stats s1, s2;
            chp_store_stats_get(f->s, &s1);
            int r8[8];
            int rc = put_n(f->s, ob + nob, bn, r8);
            if (rc == CHP_OK) {
                for (size_t i = 0; i < bn; i++)
                    assert_int_equal(r8[i], CHP_OK);
                nob += bn;
                continue;
            }
            assert_int_equal(rc, CHP_E_STORE_FULL);
            chp_store_stats_get(f->s, &s2);
            assert_int_equal(s2.envelopes, s1.envelopes);
            assert_int_equal(s2.bytes, s1.bytes);
            assert_int_equal(s2.own, s1.own);
            assert_int_equal(s2.accepted, s1.accepted);
            for (size_t i = 0; i < bn; i++) {
                assert_int_equal(r8[i], CHP_E_STORE_FULL);
                assert_int_equal(chp_store_has(f->s, ob[nob + i].id), 0);
            }
            tenv_free(ob + nob, bn);
            failed = 1;
        }
    }

    /* Everything stored before is still readable, also after a reopen,
     * and the counters match the index. */
    for (size_t i = 0; i < m.n; i++)
        if (m.res[i] == CHP_OK)
            assert_stored(f->s, &m.e[i]);
    chp_store_stats_get(f->s, &st);
    uint64_t envs = st.envelopes, bytes = st.bytes;
    assert_int_equal(envs, m.stored + 2 + nob);
    assert_int_equal(count_all(f->s), envs);
    chp_store_close(&f->s);
    open_ok(f, &o);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, envs);
    assert_int_equal(st.bytes, bytes);
    assert_int_equal(st.own, 2 + nob);
    assert_int_equal(count_all(f->s), envs);
    for (size_t i = 0; i < m.n; i++)
        if (m.res[i] == CHP_OK)
            assert_stored(f->s, &m.e[i]);
    assert_stored(f->s, &own[0]);
    assert_stored(f->s, &own[1]);
    for (size_t i = 0; i < nob; i++)
        assert_stored(f->s, &ob[i]);
    print_message("map %llu KiB: %zu foreign, then %zu own envelopes\n",
                  (unsigned long long)(m.map >> 10), m.stored, 2 + nob);
    tenv_free(ob, nob);
    free(ob);
    tenv_free(own, 2);
    mapfill_free(&m);
}

/* A full map must recover: a sweep (or a delete) frees room, the flag
 * clears and foreign traffic flows again. */
/* ---- background commit (chp_store_put_start / chp_store_put_wait) ---- */

static void test_put_start_wait(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {0, 0, 0}; /* durable, as the daemon */
    open_ok(f, &o);
    assert_int_equal(chp_store_put_fd(f->s), -1);
    enum { N = 300 };
    struct tenv *e = calloc(N + 1, sizeof *e);
    chp_store_item *it = calloc(N + 1, sizeof *it);
    assert_non_null(e);
    assert_non_null(it);
    for (size_t i = 0; i < N; i++)
        tenv_make(&e[i], 500 + i, ENV_SMALL, 1000 + i, 9000 + i, i % 3 == 0);
    assert_int_equal(put_1(f->s, &e[0]), CHP_OK);
    /* Several rounds: each batch commits while this thread reads. */
    for (size_t b = 0; b < N; b += 100) {
        for (size_t i = 0; i < 100; i++)
            item_of(&it[i], &e[b + i]);
        assert_int_equal(chp_store_put_start(f->s, it, 100), CHP_OK);
        int fd = chp_store_put_fd(f->s);
        assert_true(fd >= 0);
        assert_int_equal(chp_store_has(f->s, e[0].id), 1); /* reads go on */
        struct pollfd pfd = {fd, POLLIN, 0};
        assert_int_equal(poll(&pfd, 1, 10000), 1); /* says when it is done */
        assert_int_equal(chp_store_put_ready(f->s), 1);
        assert_int_equal(chp_store_put_wait(f->s), CHP_OK);
        for (size_t i = 0; i < 100; i++)
            assert_int_equal(it[i].result, b + i == 0 ? CHP_E_DUP : CHP_OK);
        assert_int_equal(poll(&pfd, 1, 0), 0); /* drained */
    }
    /* A write while a batch is in flight waits for it; the batch's result
     * is still there for put_wait. */
    tenv_make(&e[N], 9999, ENV_SMALL, 5, 9000, 0);
    item_of(&it[0], &e[N]);
    assert_int_equal(chp_store_put_start(f->s, it, 1), CHP_OK);
    assert_int_equal(chp_store_setting_put(f->s, "x", "y", 1), CHP_OK);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, N + 1);
    assert_int_equal(st.accepted, N + 1);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(chp_store_put_ready(f->s), 1);
    assert_int_equal(chp_store_put_wait(f->s), CHP_OK);
    assert_int_equal(it[0].result, CHP_OK);
    /* Everything is on disk: a reopen sees it all. */
    chp_store_close(&f->s);
    open_ok(f, &o);
    for (size_t i = 0; i <= N; i++)
        assert_stored(f->s, &e[i]);
    /* Closing with a batch in flight commits it first. */
    struct tenv late;
    tenv_make(&late, 10001, ENV_SMALL, 5, 9000, 0);
    item_of(&it[0], &late);
    assert_int_equal(chp_store_put_start(f->s, it, 1), CHP_OK);
    chp_store_close(&f->s);
    open_ok(f, &o);
    assert_stored(f->s, &late);
    tenv_free(&late, 1);
    tenv_free(e, N + 1);
    free(e);
    free(it);
}

/* A background batch that meets a full map: the owning thread finishes it
 * as put_batch would (foreign refused, own kept). */
static void test_put_start_map_full(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {QUOTA_HUGE, 512 * 1024, 1};
    open_ok(f, &o);
    struct mapfill m;
    fill_map(f->s, &m);
    struct tenv e[2];
    chp_store_item it[2];
    tenv_make(&e[0], 88000, ENV_BIG, 10, 100000, 0);
    tenv_make(&e[1], 88001, 64, 10, OWN_EXP, 1);
    item_of(&it[0], &e[0]);
    item_of(&it[1], &e[1]);
    assert_int_equal(chp_store_put_start(f->s, it, 2), CHP_OK);
    assert_int_equal(chp_store_put_wait(f->s), CHP_OK);
    assert_int_equal(it[0].result, CHP_E_STORE_FULL);
    assert_int_equal(it[1].result, CHP_OK);
    assert_stored(f->s, &e[1]);
    assert_int_equal(chp_store_has(f->s, e[0].id), 0);
    tenv_free(e, 2);
    mapfill_free(&m);
}

static void test_map_full_recovers(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {QUOTA_HUGE, 512 * 1024, 1};
    open_ok(f, &o);
    struct mapfill m;
    fill_map(f->s, &m);
    const struct tenv *last = &m.e[m.n - 1];
    uint64_t removed = 0;
    int drc = chp_store_del(f->s, m.e[0].id);
    int src = chp_store_sweep(f->s, 100 + m.n / 2, &removed);
    assert_int_equal(drc, CHP_OK);
    assert_int_equal(src, CHP_OK);
    assert_true(removed > 0);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.full, 0);
    assert_int_equal(put_1(f->s, last), CHP_OK);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.full, 0);
    assert_int_equal(count_all(f->s), st.envelopes);
    mapfill_free(&m);
}

/* ---- local tables ---- */

struct each_ctx {
    int calls;
    int stop_after;
    int saw_a, saw_b, saw_empty;
};

static int each_fn(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct each_ctx *c = ctx;
    c->calls++;
    if (klen == 5 && memcmp(key, "alice", 5) == 0 && vlen == 4 && memcmp(val, "v-a2", 4) == 0)
        c->saw_a++;
    if (klen == 3 && memcmp(key, "b\0b", 3) == 0 && vlen == 3 && memcmp(val, "v-b", 3) == 0)
        c->saw_b++;
    if (klen == 0 && vlen == 5 && memcmp(val, "empty", 5) == 0)
        c->saw_empty++;
    return c->stop_after && c->calls == c->stop_after ? 42 : 0;
}

static int each_never(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    (*(int *)ctx)++;
    return 0;
}

static void test_local_tables(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    uint8_t key[32], wrong[32];
    for (size_t i = 0; i < 32; i++) {
        key[i] = (uint8_t)(i * 3 + 1);
        wrong[i] = (uint8_t)(i * 3 + 2);
    }
    uint8_t *v = (uint8_t *)"untouched";
    size_t vl = 1234;
    int calls = 0;

    /* Locked until the storage key is given. */
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "k", 1, "v", 1), CHP_E_LOCKED);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "k", 1, &v, &vl), CHP_E_LOCKED);
    assert_null(v);
    assert_int_equal(chp_store_local_del(f->s, CHP_TABLE_CONTACTS, "k", 1), CHP_E_LOCKED);
    assert_int_equal(chp_store_local_each(f->s, CHP_TABLE_CONTACTS, each_never, &calls),
                     CHP_E_LOCKED);

    assert_int_equal(chp_store_unlock(f->s, key), CHP_OK);
    assert_int_equal(chp_store_unlock(f->s, key), CHP_OK); /* again: fine */

    /* Invalid tables. */
    static const int bad[] = {0, 9, -1, 255};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(chp_store_local_put(f->s, bad[i], "k", 1, "v", 1), CHP_E_ARG);
        assert_int_equal(chp_store_local_get(f->s, bad[i], "k", 1, &v, &vl), CHP_E_ARG);
        assert_int_equal(chp_store_local_del(f->s, bad[i], "k", 1), CHP_E_ARG);
        assert_int_equal(chp_store_local_each(f->s, bad[i], each_never, &calls), CHP_E_ARG);
    }
    /* Several records of one table in one transaction (file pieces);
     * never the key tables, whose writes replace the vault key. */
    chp_store_lrec recs[2] = {{"p0", "piece zero", 2, 10}, {"p1", "piece one", 2, 9}};
    assert_int_equal(chp_store_local_put_many(f->s, CHP_TABLE_PIECES, recs, 2), CHP_OK);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_PIECES, "p1", 2, &v, &vl), CHP_OK);
    assert_int_equal(vl, 9);
    assert_memory_equal(v, "piece one", 9);
    chp_store_local_free(v, vl);
    assert_int_equal(chp_store_local_put_many(f->s, CHP_TABLE_CONTACTS, recs, 2), CHP_E_ARG);
    /* A value over 64 MiB is refused before it is read. */
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_HISTORY, "k", 1, "v", (64u << 20) + 1),
                     CHP_E_ARG);
    assert_int_equal(calls, 0);

    /* Round trips: binary key, overwrite, empty key, empty value, the same
     * key in another table. */
    const char *name = "Golnar Mahallati-Varzaneh";
    const char *text = "the meeting moved to the old bridge at seven";
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "alice", 5, "v-a1", 4), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "alice", 5, "v-a2", 4), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "b\0b", 3, "v-b", 3), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, NULL, 0, "empty", 5), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_ROOMS, "alice", 5, "", 0), CHP_OK);
    assert_int_equal(
        chp_store_local_put(f->s, CHP_TABLE_CONTACTS, name, strlen(name), "contact", 7), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_HISTORY, "msg-1", 5, text, strlen(text)),
                     CHP_OK);

    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "alice", 5, &v, &vl), CHP_OK);
    assert_int_equal(vl, 4);
    assert_memory_equal(v, "v-a2", 4);
    chp_store_local_free(v, vl);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "b\0b", 3, &v, &vl), CHP_OK);
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "v-b", 3);
    chp_store_local_free(v, vl);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, NULL, 0, &v, &vl), CHP_OK);
    assert_int_equal(vl, 5);
    assert_memory_equal(v, "empty", 5);
    chp_store_local_free(v, vl);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_ROOMS, "alice", 5, &v, &vl), CHP_OK);
    assert_int_equal(vl, 0);
    chp_store_local_free(v, vl);
    chp_store_local_free(NULL, 0);
    /* Absent: another key, another table, a prefix of a key. */
    v = (uint8_t *)"x";
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "bob", 3, &v, &vl),
                     CHP_E_NOT_FOUND);
    assert_null(v);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_PEERS, "alice", 5, &v, &vl),
                     CHP_E_NOT_FOUND);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "b", 1, &v, &vl),
                     CHP_E_NOT_FOUND);

    /* each: exactly the records of one table. */
    struct each_ctx c;
    memset(&c, 0, sizeof c);
    assert_int_equal(chp_store_local_each(f->s, CHP_TABLE_CONTACTS, each_fn, &c), 0);
    assert_int_equal(c.calls, 4);
    assert_int_equal(c.saw_a, 1);
    assert_int_equal(c.saw_b, 1);
    assert_int_equal(c.saw_empty, 1);
    calls = 0;
    assert_int_equal(chp_store_local_each(f->s, CHP_TABLE_ROOMS, each_never, &calls), 0);
    assert_int_equal(calls, 1);
    calls = 0;
    assert_int_equal(chp_store_local_each(f->s, CHP_TABLE_OUTBOX, each_never, &calls), 0);
    assert_int_equal(chp_store_local_each(f->s, CHP_TABLE_CONFIG, each_never, &calls), 0);
    assert_int_equal(calls, 0);
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    assert_int_equal(chp_store_local_each(f->s, CHP_TABLE_CONTACTS, each_fn, &c), 42);
    assert_int_equal(c.calls, 2);

    /* del. */
    assert_int_equal(chp_store_local_del(f->s, CHP_TABLE_CONTACTS, "b\0b", 3), CHP_OK);
    assert_int_equal(chp_store_local_del(f->s, CHP_TABLE_CONTACTS, "b\0b", 3), CHP_E_NOT_FOUND);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "b\0b", 3, &v, &vl),
                     CHP_E_NOT_FOUND);
    assert_int_equal(chp_store_local_del(f->s, CHP_TABLE_ROOMS, "nobody", 6), CHP_E_NOT_FOUND);
    memset(&c, 0, sizeof c);
    assert_int_equal(chp_store_local_each(f->s, CHP_TABLE_CONTACTS, each_fn, &c), 0);
    assert_int_equal(c.calls, 3);
    assert_int_equal(c.saw_b, 0);

    /* Local records are not envelopes. */
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 0);
    assert_int_equal(count_all(f->s), 0);

    /* An envelope holding a marker in the clear: the search below does find
     * what is on disk (envelopes are stored as they are). */
    const char *marker = "ENVELOPE-MARKER-0123456789";
    struct tenv me;
    tenv_make(&me, 1, 200, 1, 2, 0);
    memcpy(me.env + 50, marker, strlen(marker));
    chp_hash(me.id, 32, me.env, me.len, NULL, 0);
    assert_int_equal(put_1(f->s, &me), CHP_OK);
    tenv_free(&me, 1);

    /* Reopen: locked again; a wrong key is CHP_E_PASSPHRASE and leaves it
     * locked; the right key opens the same records. */
    chp_store_close(&f->s);
    open_ok(f, &o);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "alice", 5, &v, &vl),
                     CHP_E_LOCKED);
    assert_int_equal(chp_store_unlock(f->s, wrong), CHP_E_PASSPHRASE);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "alice", 5, &v, &vl),
                     CHP_E_LOCKED);
    assert_int_equal(chp_store_unlock(f->s, key), CHP_OK);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_HISTORY, "msg-1", 5, &v, &vl), CHP_OK);
    assert_int_equal(vl, strlen(text));
    assert_memory_equal(v, text, vl);
    chp_store_local_free(v, vl);
    assert_int_equal(chp_store_unlock(f->s, wrong), CHP_E_PASSPHRASE);
    chp_store_close(&f->s);

    /* Neither a message's text nor a contact's name is on disk; the
     * envelope marker is. */
    char p[4096];
    snprintf(p, sizeof p, "%s/data.mdb", f->dir);
    size_t n = 0;
    uint8_t *data = slurp(p, &n);
    assert_true(contains(data, n, marker, strlen(marker)));
    assert_false(contains(data, n, text, strlen(text)));
    assert_false(contains(data, n, "old bridge", 10));
    assert_false(contains(data, n, name, strlen(name)));
    assert_false(contains(data, n, "Mahallati", 9));
    assert_false(contains(data, n, "v-a1", 4));
    assert_false(contains(data, n, "v-a2", 4));
    assert_false(contains(data, n, "alice", 5));
    free(data);
    snprintf(p, sizeof p, "%s/lock.mdb", f->dir);
    data = slurp(p, &n);
    assert_false(contains(data, n, text, strlen(text)));
    assert_false(contains(data, n, name, strlen(name)));
    free(data);
}

/* ---- deleted secrets ---- */

struct needle {
    const void *p;
    size_t n;
    int found;
};

static void count_needle(void *ctx, const uint8_t *pt, size_t n)
{
    struct needle *nd = ctx;
    nd->found += contains(pt, n, nd->p, nd->n);
}

/* What whoever holds the storage key (the identity's seed) and a copy of
 * the data dir can read, the way the review found finding 12 (any local
 * table, live or free page, any vault key): how many records hold needle
 * in their plaintext. */
static int recoverable(const char *dir, const uint8_t skey[32], const void *needle, size_t nl)
{
    struct needle nd = {needle, nl, 0};
    tu_seized_each(dir, skey, 0, count_needle, &nd);
    return nd.found;
}

/* Finding 12: a deleted contact record, or an earlier version of one
 * whose key material was dropped, cannot be decrypted from anything left
 * in the data file, though LMDB's copy-on-write leaves old page versions
 * there; other records stay readable across the vault key's
 * replacements and a reopen. */
static void test_deleted_secrets_unrecoverable(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    uint8_t skey[32], k1[40], k2[40], hist[300];
    chp_rng_fill(chp_rng_system(), skey, sizeof skey);
    memcpy(k1, "CHAIN-KEY-ONE:", 14);
    memcpy(k2, "CHAIN-KEY-TWO:", 14);
    chp_rng_fill(chp_rng_system(), k1 + 14, sizeof k1 - 14);
    chp_rng_fill(chp_rng_system(), k2 + 14, sizeof k2 - 14);
    assert_int_equal(chp_store_unlock(f->s, skey), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "bob", 3, "bob-record", 10),
                     CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_ROOMS, "#k", 2, "room-key-kitchen", 16),
                     CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "alice", 5, k1, sizeof k1),
                     CHP_OK);
    /* Other writes around it, as a running node makes. */
    for (int i = 0; i < 20; i++) {
        memset(hist, 'a' + i % 26, sizeof hist);
        assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_HISTORY, &i, sizeof i, hist, 40 + i),
                         CHP_OK);
    }
    /* The scan sees a live record (and the copies of it that page
     * versions left), so it would see a dead one. */
    assert_true(recoverable(f->dir, skey, k1, sizeof k1) >= 1);

    /* The chain key advances: k1 is forgotten. */
    assert_int_equal(
        chp_store_local_put_forget(f->s, CHP_TABLE_CONTACTS, "alice", 5, k2, sizeof k2), CHP_OK);
    assert_int_equal(recoverable(f->dir, skey, k1, sizeof k1), 0);
    assert_true(recoverable(f->dir, skey, k2, sizeof k2) >= 1);

    /* `contact remove`: nothing of the record is left to decrypt. */
    assert_int_equal(chp_store_local_del(f->s, CHP_TABLE_CONTACTS, "alice", 5), CHP_OK);
    assert_int_equal(recoverable(f->dir, skey, k2, sizeof k2), 0);
    assert_int_equal(recoverable(f->dir, skey, "alice", 5), 0);
    /* Nor a room's key after `leave`. */
    assert_int_equal(chp_store_local_del(f->s, CHP_TABLE_ROOMS, "#k", 2), CHP_OK);
    assert_int_equal(recoverable(f->dir, skey, "room-key-kitchen", 16), 0);
    /* What stays, stays readable, also after a reopen. */
    assert_true(recoverable(f->dir, skey, "bob-record", 10) >= 1);
    chp_store_close(&f->s);
    open_ok(f, &o);
    assert_int_equal(chp_store_unlock(f->s, skey), CHP_OK);
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "bob", 3, &v, &vl), CHP_OK);
    assert_int_equal(vl, 10);
    assert_memory_equal(v, "bob-record", 10);
    chp_store_local_free(v, vl);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "alice", 5, &v, &vl),
                     CHP_E_NOT_FOUND);
    int i = 7;
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_HISTORY, &i, sizeof i, &v, &vl), CHP_OK);
    assert_int_equal(vl, 47);
    chp_store_local_free(v, vl);
    chp_store_close(&f->s);

    /* The keys were never on disk in the clear. */
    char p[4096];
    size_t n = 0;
    snprintf(p, sizeof p, "%s/data.mdb", f->dir);
    uint8_t *data = slurp(p, &n);
    assert_false(contains(data, n, k1 + 14, 16));
    assert_false(contains(data, n, k2 + 14, 16));
    free(data);
    /* The vault file is the store's: 0600, and wipe deletes it. */
    struct stat sb;
    snprintf(p, sizeof p, "%s/vault", f->dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    open_ok(f, &o);
    assert_int_equal(chp_store_wipe(&f->s), CHP_OK);
    assert_false(file_exists(f->dir, "vault"));
}

/* Overwrites bytes [off, off + len) of file path. */
static void patch_file(const char *path, size_t off, const void *b, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, len, (off_t)off), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* A crash between the vault key's replacement steps: a key the store
 * does not name is wiped at the next unlock, a pending replacement is
 * finished; a store that names a key no slot holds is CHP_E_CORRUPT at
 * unlock, never garbage. */
static void test_vault_recovery(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    uint8_t skey[32] = {42}, secret[32];
    memset(secret, 0x5a, sizeof secret);
    memcpy(secret, "SECRET", 6);
    assert_int_equal(chp_store_unlock(f->s, skey), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "x", 1, secret, 32), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "y", 1, "yy", 2), CHP_OK);
    assert_int_equal(chp_store_local_del(f->s, CHP_TABLE_CONTACTS, "y", 1), CHP_OK);
    assert_true(recoverable(f->dir, skey, "SECRET", 6) >= 1);
    chp_store_close(&f->s);
    char p[4096];
    size_t n = 0;
    snprintf(p, sizeof p, "%s/vault", f->dir);
    uint8_t *vf = slurp(p, &n);
    assert_int_equal(n, 1024);

    /* A replacement that was due when the process died: finished at the
     * unlock; the record stays readable. */
    uint8_t one[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    raw_meta(f->dir, "vault-due", one, 8);
    open_ok(f, &o);
    assert_int_equal(chp_store_unlock(f->s, skey), CHP_OK);
    assert_true(recoverable(f->dir, skey, "SECRET", 6) >= 1);
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "x", 1, &v, &vl), CHP_OK);
    assert_memory_equal(v, secret, 32);
    chp_store_local_free(v, vl);
    chp_store_close(&f->s);

    /* The key before it back in its slot (a crash before the wipe): the
     * versions written under it decrypt again, until the next unlock
     * wipes the slot. */
    uint8_t *cur = slurp(p, &n);
    size_t stale = memcmp(cur, vf, 512) ? 0 : 512; /* the slot that changed back */
    assert_true(memcmp(cur + stale, vf + stale, 512) != 0);
    patch_file(p, stale, vf + stale, 512);
    assert_true(recoverable(f->dir, skey, "SECRET", 6) >= 2);
    open_ok(f, &o);
    assert_int_equal(chp_store_unlock(f->s, skey), CHP_OK);
    assert_true(recoverable(f->dir, skey, "SECRET", 6) >= 1);
    free(cur);
    cur = slurp(p, &n);
    static const uint8_t zero[512];
    assert_memory_equal(cur + stale, zero, 512);
    free(cur);
    chp_store_close(&f->s);

    /* The vault file lost: the key tables cannot be read, and unlock
     * says so. */
    assert_int_equal(unlink(p), 0);
    open_ok(f, &o);
    assert_int_equal(chp_store_unlock(f->s, skey), CHP_E_CORRUPT);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "x", 1, &v, &vl), CHP_E_LOCKED);
    chp_store_close(&f->s);
    /* An old vault file: it holds no key the store uses. */
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(vf, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
    free(vf);
    open_ok(f, &o);
    assert_int_equal(chp_store_unlock(f->s, skey), CHP_E_CORRUPT);
}

/* Finding 6: the local tables count against the quota (bytes stored and
 * store full tell the truth), as the user's own data: a local record
 * that does not fit evicts foreign envelopes, nearest expiry first, and
 * is never refused; deleting records gives their room back. */
/* 1 when piece record i ("lp" i) of the pieces table can be read back. */
static int later_held(chp_store *s, unsigned i)
{
    char k[16];
    snprintf(k, sizeof k, "lp%u", i);
    uint8_t *v = NULL;
    size_t vl = 0;
    int rc = chp_store_local_get(s, CHP_TABLE_PIECES, k, strlen(k), &v, &vl);
    if (rc == CHP_OK) {
        assert_int_equal(vl, 100 + i);
        for (size_t j = 0; j < vl; j++)
            assert_int_equal(v[j], (uint8_t)(i + j));
        chp_store_local_free(v, vl);
        return 1;
    }
    assert_int_equal(rc, CHP_E_NOT_FOUND);
    return 0;
}

/* Piece records first..first+n-1 handed over with put_later. */
static void later_put(chp_store *s, unsigned first, unsigned n)
{
    static uint8_t val[64][400];
    static char keys[64][16];
    chp_store_lrec recs[64];
    assert_true(n <= 64);
    for (unsigned k = 0; k < n; k++) {
        unsigned i = first + k;
        snprintf(keys[k], sizeof keys[k], "lp%u", i);
        for (size_t j = 0; j < 100 + i; j++)
            val[k][j] = (uint8_t)(i + j);
        recs[k] = (chp_store_lrec){keys[k], val[k], strlen(keys[k]), 100 + i};
    }
    assert_int_equal(chp_store_local_put_later(s, CHP_TABLE_PIECES, recs, n), CHP_OK);
}

/* Local records that ride the next batch's transaction (received file
 * pieces, so that a batch of envelopes and the pieces they brought take
 * one commit): not readable until a batch (in this thread or the writer
 * thread) or chp_store_local_flush wrote them; at most 64 wait, then they
 * are written at once; a later put or delete of the same key wins; a
 * close writes what still waits; not for the key tables, not while
 * locked. */
static void test_local_put_later(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {0, 0, 0}; /* durable, as the daemon */
    open_ok(f, &o);
    uint8_t key[32];
    for (size_t i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + 3);
    chp_store_lrec one = {"lp0", "x", 3, 1};
    assert_int_equal(chp_store_local_put_later(f->s, CHP_TABLE_PIECES, &one, 1), CHP_E_LOCKED);
    assert_int_equal(chp_store_unlock(f->s, key), CHP_OK);
    assert_int_equal(chp_store_local_put_later(f->s, CHP_TABLE_CONTACTS, &one, 1), CHP_E_ARG);
    assert_int_equal(chp_store_local_flush(f->s), CHP_OK); /* nothing waits */

    struct tenv e[3];
    chp_store_stats st0, st1;
    chp_store_stats_get(f->s, &st0);
    later_put(f->s, 0, 3);
    assert_false(later_held(f->s, 0)); /* waiting */
    tenv_make(&e[0], 31, ENV_SMALL, 1000, 9000, 0);
    assert_int_equal(put_1(f->s, &e[0]), CHP_OK); /* a batch in this thread */
    for (unsigned i = 0; i < 3; i++)
        assert_true(later_held(f->s, i));
    chp_store_stats_get(f->s, &st1);
    assert_true(st1.local > st0.local);

    later_put(f->s, 3, 2); /* a batch in the writer thread */
    chp_store_item it;
    tenv_make(&e[1], 32, ENV_SMALL, 1001, 9000, 0);
    item_of(&it, &e[1]);
    assert_int_equal(chp_store_put_start(f->s, &it, 1), CHP_OK);
    assert_int_equal(chp_store_put_wait(f->s), CHP_OK);
    assert_int_equal(it.result, CHP_OK);
    assert_true(later_held(f->s, 3) && later_held(f->s, 4));

    later_put(f->s, 5, 1); /* no batch: a flush */
    assert_false(later_held(f->s, 5));
    assert_int_equal(chp_store_local_flush(f->s), CHP_OK);
    assert_true(later_held(f->s, 5));

    later_put(f->s, 10, 40); /* 40 wait; 40 more would be 80: the 40 first */
    assert_false(later_held(f->s, 10));
    later_put(f->s, 50, 40);
    for (unsigned i = 10; i < 50; i++)
        assert_true(later_held(f->s, i));
    assert_false(later_held(f->s, 50));
    assert_false(later_held(f->s, 89));

    /* A later delete or put of a waiting key wins (review of 767bd61: the
     * waiting record was written after them, and undid them). */
    later_put(f->s, 90, 2);
    assert_int_equal(chp_store_local_del(f->s, CHP_TABLE_PIECES, "lp90", 4), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_PIECES, "lp91", 4, "new", 3), CHP_OK);
    assert_int_equal(chp_store_local_flush(f->s), CHP_OK);
    assert_false(later_held(f->s, 90));
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_PIECES, "lp91", 4, &v, &vl), CHP_OK);
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "new", 3);
    chp_store_local_free(v, vl);

    later_put(f->s, 92, 1);
    chp_store_close(&f->s); /* what waits is written */
    open_ok(f, &o);
    assert_int_equal(chp_store_unlock(f->s, key), CHP_OK);
    for (unsigned i = 0; i < 93; i++)
        if (i < 6 || (i >= 10 && i < 90) || i == 92)
            assert_true(later_held(f->s, i));
    assert_true(chp_store_has(f->s, e[0].id) == 1 && chp_store_has(f->s, e[1].id) == 1);
    tenv_free(e, 2);
}

/* Records riding a batch that does not fit (the map at its max): the
 * batch is tried again without them, so the user's own envelope is still
 * stored; they wait again, and the flush that cannot write them says so
 * (the messaging layer then reads incoming files back, msg_file.c). */
static void test_local_put_later_map_full(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {QUOTA_HUGE, 512 * 1024, 1};
    open_ok(f, &o);
    uint8_t key[32];
    for (size_t i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 5 + 1);
    assert_int_equal(chp_store_unlock(f->s, key), CHP_OK);
    struct mapfill m;
    fill_map(f->s, &m);
    static uint8_t big[16256];
    static char keys[24][16];
    chp_store_lrec recs[24];
    for (unsigned k = 0; k < 24; k++) {
        snprintf(keys[k], sizeof keys[k], "big%u", k);
        recs[k] = (chp_store_lrec){keys[k], big, strlen(keys[k]), sizeof big};
    }
    assert_int_equal(chp_store_local_put_later(f->s, CHP_TABLE_PIECES, recs, 24), CHP_OK);
    struct tenv own;
    tenv_make(&own, 91000, ENV_SMALL, 10, OWN_EXP, 1);
    assert_int_equal(put_1(f->s, &own), CHP_OK); /* without the records riding it */
    assert_int_equal(chp_store_has(f->s, own.id), 1);
    assert_int_not_equal(chp_store_local_flush(f->s), CHP_OK);
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_PIECES, "big0", 4, &v, &vl),
                     CHP_E_NOT_FOUND);
    assert_int_equal(chp_store_local_flush(f->s), CHP_OK); /* said once; nothing waits */
    tenv_free(&own, 1);
    mapfill_free(&m);
}

static void test_local_counts_against_quota(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {20000, 0, 1};
    open_ok(f, &o);
    uint8_t skey[32] = {9}, big[3000];
    memset(big, 'h', sizeof big);
    struct tenv e[4];
    for (size_t i = 0; i < 4; i++)
        tenv_make(&e[i], 300 + i, 4000, 1, 100 - i, 0); /* e[3] expires first */
    int res[4];
    assert_int_equal(put_n(f->s, e, 4, res), CHP_OK);
    assert_int_equal(chp_store_unlock(f->s, skey), CHP_OK);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.local, 0);
    assert_int_equal(st.bytes, 16000);
    /* 3 records of 3000 + 57 bytes: the last two need 2 envelopes' room. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_HISTORY, &i, sizeof i, big, 3000),
                         CHP_OK);
    chp_store_stats_get(f->s, &st);
    size_t rec = 17 + 24 + 4 + sizeof(int) + 3000 + 16;
    assert_int_equal(st.local, 3 * rec);
    assert_int_equal(st.envelopes, 2);
    assert_int_equal(st.bytes, 8000 + 3 * rec);
    assert_int_equal(st.kept, 3 * rec);
    assert_int_equal(st.evicted, 2);
    assert_false(chp_store_has(f->s, e[3].id));
    assert_false(chp_store_has(f->s, e[2].id));
    assert_true(chp_store_has(f->s, e[0].id));
    /* A foreign envelope that does not fit beside them (and expires
     * before the foreign ones left) is refused. */
    struct tenv g;
    tenv_make(&g, 400, 4000, 1, 50, 0);
    assert_int_equal(put_1(f->s, &g), CHP_E_STORE_FULL);
    /* Counted again at a reopen. */
    chp_store_close(&f->s);
    open_ok(f, &o);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.local, 3 * rec);
    assert_int_equal(st.bytes, 8000 + 3 * rec);
    /* Local records alone over the quota: the store says full. */
    assert_int_equal(chp_store_unlock(f->s, skey), CHP_OK);
    for (int i = 3; i < 7; i++)
        assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_HISTORY, &i, sizeof i, big, 3000),
                         CHP_OK);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 0);
    assert_int_equal(st.full, 1);
    /* Deleting them gives the room back. */
    chp_store_lkey keys[7];
    int ids[7];
    for (int i = 0; i < 7; i++) {
        ids[i] = i;
        keys[i].key = &ids[i];
        keys[i].klen = sizeof ids[i];
    }
    size_t deleted = 0;
    assert_int_equal(chp_store_local_del_many(f->s, CHP_TABLE_HISTORY, keys, 7, &deleted), CHP_OK);
    assert_int_equal(deleted, 7);
    assert_int_equal(chp_store_local_del_many(f->s, CHP_TABLE_HISTORY, keys, 7, &deleted), CHP_OK);
    assert_int_equal(deleted, 0);
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.local, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.full, 0);
    assert_int_equal(put_1(f->s, &g), CHP_OK);
    tenv_free(&g, 1);
    tenv_free(e, 4);
}

/* Opens dir with raw LMDB for tampering (no chp_store open here). */
static MDB_env *tamper_open(const char *dir, MDB_txn **t)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 64 * MIB), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, t), 0);
    return env;
}

/* A record altered on disk is CHP_E_CORRUPT, never garbage. */
static void test_corrupt_records(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    uint8_t key[32] = {7};
    struct tenv e[2];
    tenv_make(&e[0], 1, 500, 10, 20, 0);
    tenv_make(&e[1], 2, 500, 10, 20, 0);
    int res[2];
    assert_int_equal(put_n(f->s, e, 2, res), CHP_OK);
    assert_int_equal(chp_store_unlock(f->s, key), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "k1", 2, "value-one", 9),
                     CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "k2", 2, "value-two", 9),
                     CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_PEERS, "p", 1, "peer", 4), CHP_OK);
    chp_store_close(&f->s);

    /* Swap the two contact records' values (each stays authentic on its
     * own, but is bound to its LMDB key); cut the peer record short; cut
     * e[0] below its bookkeeping. */
    MDB_txn *t;
    MDB_env *env = tamper_open(f->dir, &t);
    MDB_dbi local, ids, bodies;
    assert_int_equal(mdb_dbi_open(t, "local", 0, &local), 0);
    assert_int_equal(mdb_dbi_open(t, "ids", 0, &ids), 0);
    assert_int_equal(mdb_dbi_open(t, "bodies", 0, &bodies), 0);
    MDB_cursor *c;
    assert_int_equal(mdb_cursor_open(t, local, &c), 0);
    MDB_val k, v;
    uint8_t ck[2][17], cv[2][128], pk[17];
    size_t cl[2] = {0, 0}, nc = 0, np = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        assert_int_equal(k.mv_size, 17);
        const uint8_t *kb = k.mv_data;
        if (kb[0] == CHP_TABLE_CONTACTS) {
            assert_true(nc < 2 && v.mv_size <= 128);
            memcpy(ck[nc], kb, 17);
            memcpy(cv[nc], v.mv_data, v.mv_size);
            cl[nc++] = v.mv_size;
        } else {
            assert_int_equal(kb[0], CHP_TABLE_PEERS);
            memcpy(pk, kb, 17);
            np++;
        }
    }
    mdb_cursor_close(c);
    assert_int_equal(nc, 2);
    assert_int_equal(np, 1);
    for (size_t i = 0; i < 2; i++) {
        MDB_val kk = {17, ck[i]}, vv = {cl[1 - i], cv[1 - i]};
        assert_int_equal(mdb_put(t, local, &kk, &vv, 0), 0);
    }
    MDB_val kp = {17, pk}, vp = {24 + 4 + 15, cv[0]}; /* one byte under the minimum */
    assert_int_equal(mdb_put(t, local, &kp, &vp, 0), 0);
    MDB_val ke = {32, e[0].id}, kseq, ve = {60, cv[0]}; /* under the 61 of its metadata */
    assert_int_equal(mdb_get(t, ids, &ke, &kseq), 0);
    assert_int_equal(mdb_put(t, bodies, &kseq, &ve, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);

    open_ok(f, &o);
    assert_int_equal(chp_store_unlock(f->s, key), CHP_OK);
    uint8_t *val = (uint8_t *)"x";
    size_t vl = 0;
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "k1", 2, &val, &vl),
                     CHP_E_CORRUPT);
    assert_null(val);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "k2", 2, &val, &vl),
                     CHP_E_CORRUPT);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_PEERS, "p", 1, &val, &vl), CHP_E_CORRUPT);
    int calls = 0;
    assert_int_equal(chp_store_local_each(f->s, CHP_TABLE_CONTACTS, each_never, &calls),
                     CHP_E_CORRUPT);
    assert_int_equal(calls, 0);
    /* Writing a record over the damaged one repairs it. */
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONTACTS, "k1", 2, "fixed", 5), CHP_OK);
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONTACTS, "k1", 2, &val, &vl), CHP_OK);
    assert_int_equal(vl, 5);
    assert_memory_equal(val, "fixed", 5);
    chp_store_local_free(val, vl);

    uint8_t buf[600];
    size_t len = 0;
    assert_int_equal(chp_store_has(f->s, e[0].id), 1);
    assert_int_equal(chp_store_get(f->s, e[0].id, buf, sizeof buf, &len, NULL), CHP_E_CORRUPT);
    assert_int_equal(chp_store_del(f->s, e[0].id), CHP_E_CORRUPT);
    assert_stored(f->s, &e[1]); /* the neighbour is untouched */
    tenv_free(e, 2);
}

/* The id -> sequence table and the bodies disagreeing (an id naming
 * another envelope's body, a sequence of the wrong size, a sequence with
 * no body) is CHP_E_CORRUPT, never the other envelope's bytes. */
static void test_corrupt_index(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    struct tenv e[3];
    for (int i = 0; i < 3; i++)
        tenv_make(&e[i], 40 + (uint64_t)i, 300, 10, 20, 0);
    int res[3];
    assert_int_equal(put_n(f->s, e, 3, res), CHP_OK);
    chp_store_close(&f->s);
    MDB_txn *t;
    MDB_env *env = tamper_open(f->dir, &t);
    MDB_dbi ids;
    assert_int_equal(mdb_dbi_open(t, "ids", 0, &ids), 0);
    MDB_val k0 = {32, e[0].id}, k1 = {32, e[1].id}, k2 = {32, e[2].id}, s1;
    assert_int_equal(mdb_get(t, ids, &k1, &s1), 0);
    uint8_t seq1[8], nobody[8] = {0, 0, 0, 0, 0, 0, 0x7f, 0};
    memcpy(seq1, s1.mv_data, 8);
    MDB_val v0 = {8, seq1}, v1 = {7, seq1}, v2 = {8, nobody};
    assert_int_equal(mdb_put(t, ids, &k0, &v0, 0), 0);
    assert_int_equal(mdb_put(t, ids, &k1, &v1, 0), 0);
    assert_int_equal(mdb_put(t, ids, &k2, &v2, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
    open_ok(f, &o);
    uint8_t buf[600];
    size_t len = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(chp_store_get(f->s, e[i].id, buf, sizeof buf, &len, NULL), CHP_E_CORRUPT);
    tenv_free(e, 3);
}

/* chp_store_has answers "not stored" from the writer's Bloom filter
 * without a lookup; it must never say so of a stored id: across the
 * filter's rebuild when more ids arrive than it was sized for (65,536 at
 * first), after deletions, and after a reopen (a new handle builds it at
 * its first batch from the ids table). */
static void test_has_many(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {QUOTA_HUGE, 0, 1};
    open_ok(f, &o);
    enum { N = 70000, B = 1000, ABSENT = 2000 };
    for (uint32_t b = 0; b < N; b += B) {
        struct tenv e[B];
        int res[B];
        for (uint32_t i = 0; i < B; i++)
            tenv_make(&e[i], 100000 + b + i, 100, 10, 1000, 0);
        assert_int_equal(put_n(f->s, e, B, res), CHP_OK);
        for (uint32_t i = 0; i < B; i++)
            assert_int_equal(res[i], CHP_OK);
        tenv_free(e, B);
    }
    for (int round = 0; round < 2; round++) {
        uint32_t missing = 0, absent_found = 0;
        for (uint32_t k = 0; k < N; k++) {
            struct tenv e;
            tenv_make(&e, 100000 + k, 100, 10, 1000, 0);
            int want = !(k % 7 == 0 && round == 1); /* round 1: every 7th deleted */
            missing += chp_store_has(f->s, e.id) != want;
            if (round == 0 && k % 7 == 0)
                assert_int_equal(chp_store_del(f->s, e.id), CHP_OK);
            tenv_free(&e, 1);
        }
        for (uint32_t k = 0; k < ABSENT; k++) {
            struct tenv e;
            tenv_make(&e, 900000 + k, 100, 10, 1000, 0);
            absent_found += chp_store_has(f->s, e.id) != 0;
            tenv_free(&e, 1);
        }
        assert_int_equal(missing, 0);
        assert_int_equal(absent_found, 0);
        if (round == 0) { /* reopen: a new handle, and one more batch */
            chp_store_close(&f->s);
            open_ok(f, &o);
            struct tenv e;
            tenv_make(&e, 990000, 100, 10, 1000, 0);
            assert_int_equal(put_1(f->s, &e), CHP_OK);
            tenv_free(&e, 1);
        }
    }
}

/* ---- wipe ---- */

static void test_wipe(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    uint8_t key[32] = {1, 2, 3}, other[32] = {9, 9, 9};
    struct tenv e;
    tenv_make(&e, 5, 700, 1, 2, 1);
    assert_int_equal(put_1(f->s, &e), CHP_OK);
    assert_int_equal(chp_store_unlock(f->s, key), CHP_OK);
    assert_int_equal(chp_store_local_put(f->s, CHP_TABLE_CONFIG, "x", 1, "y", 1), CHP_OK);
    assert_true(file_exists(f->dir, "data.mdb"));
    assert_true(file_exists(f->dir, "lock.mdb"));

    assert_int_equal(chp_store_wipe(&f->s), CHP_OK);
    assert_null(f->s);
    assert_false(file_exists(f->dir, "data.mdb"));
    assert_false(file_exists(f->dir, "lock.mdb"));

    /* A fresh open is empty; the key check went with the data. */
    open_ok(f, &o);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.envelopes, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(chp_store_has(f->s, e.id), 0);
    assert_int_equal(count_all(f->s), 0);
    assert_int_equal(chp_store_unlock(f->s, other), CHP_OK);
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(chp_store_local_get(f->s, CHP_TABLE_CONFIG, "x", 1, &v, &vl), CHP_E_NOT_FOUND);
    tenv_free(&e, 1);
}

/* ---- several processes ---- */

/* 0 when all n bytes went out, -1 otherwise (SIGPIPE is ignored). */
static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* 1 on n bytes, 0 on EOF, -1 on error. */
static int read_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return got ? -1 : 0;
        got += (size_t)r;
    }
    return 1;
}

static MDB_env *raw_open(const char *dir, unsigned flags)
{
    MDB_env *env;
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) || mdb_env_set_maxreaders(env, 126))
        return NULL;
    if (mdb_env_open(env, dir, flags | MDB_NOTLS, 0600)) {
        mdb_env_close(env);
        return NULL;
    }
    return env;
}

struct rl_ctx {
    int pid, found;
};

static int reader_line(const char *msg, void *ctx)
{
    struct rl_ctx *c = ctx;
    int pid = 0;
    if (sscanf(msg, "%d", &pid) == 1 && pid == c->pid)
        c->found = 1;
    return 0;
}

static int wait_exit(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A process killed while it held a read transaction leaves its slot in
 * lock.mdb; the next chp_store_open clears it. A third process keeps the
 * environment open throughout, so LMDB never re-initialises the lock file
 * on its own and the clearing is the store's doing. */
static void test_stale_reader_cleared(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = opts_fast();
    open_ok(f, &o);
    struct tenv e[2];
    tenv_make(&e[0], 1, 300, 1, 100, 0);
    tenv_make(&e[1], 2, 300, 1, 100, 0);
    assert_int_equal(put_1(f->s, &e[0]), CHP_OK);
    chp_store_close(&f->s); /* no environment open across fork */

    /* Holder: answers "is pid P in the reader table?" */
    int hcmd[2], hans[2];
    assert_int_equal(pipe(hcmd), 0);
    assert_int_equal(pipe(hans), 0);
    pid_t holder = fork();
    assert_true(holder >= 0);
    if (holder == 0) {
        close(hcmd[1]);
        close(hans[0]);
        MDB_env *env = raw_open(f->dir, MDB_RDONLY);
        char ok = env ? 'R' : 'E';
        if (write_all(hans[1], &ok, 1) != 0)
            _exit(91);
        int32_t q;
        while (env && read_all(hcmd[0], &q, sizeof q) == 1) {
            struct rl_ctx c = {q, 0};
            mdb_reader_list(env, reader_line, &c);
            char r = c.found ? '1' : '0';
            if (write_all(hans[1], &r, 1) != 0)
                _exit(92);
        }
        if (env)
            mdb_env_close(env);
        _exit(0);
    }
    close(hcmd[0]);
    close(hans[1]);
    char a = 0;
    assert_int_equal(read_all(hans[0], &a, 1), 1);
    assert_int_equal(a, 'R');

    /* The stale reader: begins a read transaction and waits to die. */
    int rp[2];
    assert_int_equal(pipe(rp), 0);
    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) {
        close(rp[0]);
        MDB_env *env = raw_open(f->dir, MDB_RDONLY);
        MDB_txn *t = NULL;
        char ok = env && mdb_txn_begin(env, NULL, MDB_RDONLY, &t) == 0 ? 'R' : 'E';
        if (write_all(rp[1], &ok, 1) != 0)
            _exit(93);
        for (;;)
            pause();
    }
    close(rp[1]);
    assert_int_equal(read_all(rp[0], &a, 1), 1);
    assert_int_equal(a, 'R');
    close(rp[0]);
    assert_int_equal(kill(reader, SIGKILL), 0);
    assert_int_equal(wait_exit(reader), 128 + SIGKILL);

    int32_t q = (int32_t)reader;
    assert_int_equal(write_all(hcmd[1], &q, sizeof q), 0);
    assert_int_equal(read_all(hans[0], &a, 1), 1);
    assert_int_equal(a, '1'); /* the dead reader's slot is still there */

    open_ok(f, &o);
    assert_int_equal(write_all(hcmd[1], &q, sizeof q), 0);
    assert_int_equal(read_all(hans[0], &a, 1), 1);
    assert_int_equal(a, '0'); /* cleared by chp_store_open */

    /* And the store works: write, read. */
    assert_int_equal(put_1(f->s, &e[1]), CHP_OK);
    assert_stored(f->s, &e[0]);
    assert_stored(f->s, &e[1]);
    close(hcmd[1]);
    assert_int_equal(wait_exit(holder), 0);
    close(hans[0]);
    tenv_free(e, 2);
}

#define CR_N     4500 /* of ENV_BIG: about 74 MB, past the first 64 MiB map */
#define CR_BATCH 25
#define CR_SEED  0x51u

/* Envelope k of the concurrent test, rebuilt identically in both
 * processes. No cmocka assertion here: the reader process must not longjmp
 * into the test runner's state. */
static int cr_env(struct tenv *e, uint32_t k)
{
    return tenv_fill(e, CR_SEED * 100000 + k, ENV_BIG, 1000 + k, 1u << 31, 0);
}

static int count_plain(chp_store *s, uint64_t *n)
{
    chp_store_bound lo = chp_store_bound_min(), hi = chp_store_bound_max();
    *n = 0;
    return chp_store_range(s, &lo, &hi, count_fn, n);
}

/* The reader process: checks every index it is told was committed, then
 * the total. Exit 0 = all good; other codes say what failed. */
static int concurrent_reader(const char *dir, int in, int out)
{
    chp_store *s = NULL;
    chp_store_opts o = opts_fast();
    if (chp_store_open(dir, &o, &s, NULL) != CHP_OK)
        return 10;
    char ok = 'R';
    uint8_t *buf = malloc(ENV_BIG);
    if (!buf || write_all(out, &ok, 1) != 0)
        return 11;
    struct tenv e;
    uint32_t k, seen = 0;
    int code = 0;
    while (!code && read_all(in, &k, sizeof k) == 1 && k != UINT32_MAX) {
        size_t len = 0;
        if (cr_env(&e, k) != 0)
            code = 19;
        else if (chp_store_has(s, e.id) != 1)
            code = 12;
        else if (chp_store_get(s, e.id, buf, ENV_BIG, &len, NULL) != CHP_OK)
            code = 13;
        else if (len != e.len || memcmp(buf, e.env, len) != 0)
            code = 14;
        free(e.env);
        seen++;
    }
    if (!code) {
        /* After the writer has finished: all of it, including what lies
         * beyond the map this process opened with. */
        uint32_t total = 0;
        uint64_t n = 0;
        if (read_all(in, &total, sizeof total) != 1)
            code = 15;
        else if (count_plain(s, &n) != 0 || n != total)
            code = 16;
        for (uint32_t i = 0; !code && i < total; i += 97) {
            if (cr_env(&e, i) != 0)
                code = 19;
            else if (chp_store_has(s, e.id) != 1)
                code = 17;
            free(e.env);
        }
        if (!code && seen == 0)
            code = 18;
    }
    free(buf);
    chp_store_close(&s);
    return code;
}

/* A second process reads while the first writes, past a map growth. */
static void test_concurrent_reader(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {QUOTA_HUGE, 256 * MIB, 1};
    open_ok(f, &o);
    chp_store_close(&f->s);

    int down[2], up[2];
    assert_int_equal(pipe(down), 0);
    assert_int_equal(pipe(up), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(down[1]);
        close(up[0]);
        _exit(concurrent_reader(f->dir, down[0], up[1]));
    }
    close(down[0]);
    close(up[1]);
    char a = 0;
    assert_int_equal(read_all(up[0], &a, 1), 1);
    assert_int_equal(a, 'R');

    open_ok(f, &o);
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.map_size, 64 * MIB);
    struct tenv e[CR_BATCH];
    int res[CR_BATCH];
    for (uint32_t b = 0; b < CR_N; b += CR_BATCH) {
        for (uint32_t i = 0; i < CR_BATCH; i++)
            assert_int_equal(cr_env(&e[i], b + i), 0);
        assert_int_equal(put_n(f->s, e, CR_BATCH, res), CHP_OK);
        uint32_t ks[CR_BATCH];
        for (uint32_t i = 0; i < CR_BATCH; i++) {
            assert_int_equal(res[i], CHP_OK);
            ks[i] = b + i;
        }
        tenv_free(e, CR_BATCH);
        /* Only after the commit returned. */
        assert_int_equal(write_all(down[1], ks, sizeof ks), 0);
    }
    uint32_t end[2] = {UINT32_MAX, CR_N};
    assert_int_equal(write_all(down[1], end, sizeof end), 0);
    close(down[1]);
    assert_int_equal(wait_exit(child), 0);
    close(up[0]);

    /* The map grew (64 -> 128 MiB) and everything is here. */
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.map_size, 128 * MIB);
    assert_int_equal(st.envelopes, CR_N);
    assert_int_equal(st.bytes, (uint64_t)CR_N * ENV_BIG);
    assert_int_equal(count_all(f->s), CR_N);
    for (uint32_t i = 0; i < CR_N; i += 101) {
        assert_int_equal(cr_env(&e[0], i), 0);
        assert_stored(f->s, &e[0]);
        tenv_free(e, 1);
    }
    /* A reopen starts at the file's size, not back at 64 MiB. */
    chp_store_close(&f->s);
    open_ok(f, &o);
    chp_store_stats_get(f->s, &st);
    assert_true(st.map_size > 64 * MIB);
    assert_int_equal(count_all(f->s), CR_N);
}

/* Another process (the CLI, the TUI) opens the store while the daemon's
 * writes grow the map past the size the opener starts with. */
static void test_open_while_writer_grows(void **state)
{
    struct fx *f = *state;
    chp_store_opts o = {QUOTA_HUGE, 256 * MIB, 1};
    open_ok(f, &o);
    chp_store_close(&f->s);

    int stop[2], rep[2];
    assert_int_equal(pipe(stop), 0);
    assert_int_equal(pipe(rep), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(stop[1]);
        close(rep[0]);
        fcntl(stop[0], F_SETFL, O_NONBLOCK);
        int32_t out[3] = {0, 0, 0}; /* opens, failures, first failure code */
        char ch;
        uint8_t zero[32] = {0};
        while (read(stop[0], &ch, 1) < 0 && errno == EAGAIN) {
            chp_store *r = NULL;
            chp_store_opts ro = opts_fast();
            int rc = chp_store_open(f->dir, &ro, &r, NULL);
            if (rc == CHP_OK)
                rc = chp_store_has(r, zero) == 0 ? CHP_OK : CHP_E_STORE;
            chp_store_close(&r);
            out[0]++;
            if (rc != CHP_OK && out[1]++ == 0)
                out[2] = rc;
        }
        _exit(write_all(rep[1], out, sizeof out) == 0 ? 0 : 1);
    }
    close(stop[0]);
    close(rep[1]);

    open_ok(f, &o);
    struct tenv e[CR_BATCH];
    int res[CR_BATCH];
    for (uint32_t b = 0; b < CR_N; b += CR_BATCH) {
        for (uint32_t i = 0; i < CR_BATCH; i++)
            assert_int_equal(cr_env(&e[i], b + i), 0);
        assert_int_equal(put_n(f->s, e, CR_BATCH, res), CHP_OK);
        tenv_free(e, CR_BATCH);
    }
    chp_store_stats st;
    chp_store_stats_get(f->s, &st);
    assert_int_equal(st.map_size, 128 * MIB);
    close(stop[1]);
    int32_t got[3];
    assert_int_equal(read_all(rep[0], got, sizeof got), 1);
    close(rep[0]);
    assert_int_equal(wait_exit(child), 0);
    print_message("%d opens during the writes, %d failed\n", got[0], got[1]);
    assert_true(got[0] > 0);
    assert_int_equal(got[1], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(test_open_creates_dir_0700),
        T(test_reopen_keeps_data_and_counters),
        T(test_open_wrong_schema),
        T(test_open_bad_path),
        T(test_put_batch_many),
        T(test_put_duplicates),
        T(test_get_has_del),
        T(test_meta_round_trip),
        T(test_range_order_bounds_stop),
        T(test_fingerprint_vs_naive),
        T(test_fingerprint_ids_by_hand),
        T(test_sweep),
        T(test_quota_eviction_order),
        T(test_quota_set),
        T(test_quota_no_eviction_for_nothing),
        T(test_map_max_honoured),
        T(test_quota_kept_never_refused),
        T(test_quota_eviction_kept_first_order),
        T(test_mark_mine),
        T(test_open_migrates_old_schemas),
        T(test_map_full),
        T(test_map_full_recovers),
        T(test_put_start_wait),
        T(test_put_start_map_full),
        T(test_local_tables),
        T(test_local_put_later),
        T(test_local_put_later_map_full),
        T(test_deleted_secrets_unrecoverable),
        T(test_vault_recovery),
        T(test_local_counts_against_quota),
        T(test_corrupt_records),
        T(test_corrupt_index),
        T(test_has_many),
        T(test_wipe),
        T(test_stale_reader_cleared),
        T(test_concurrent_reader),
        T(test_open_while_writer_grows),
#undef T
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
