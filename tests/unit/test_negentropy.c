/* test_negentropy.c - the Negentropy engine (proto/negentropy.c) in process,
 * over the sorted-array store of tests/negentropy: fingerprint arithmetic,
 * hand-derived messages, the session rules, malformed input, and whole
 * reconciliations checked against the true set difference, with and
 * without a frame limit, counting round trips. */
#include "proto/crypto.h"
#include "proto/err.h"
#include "proto/negentropy.h"
#include "tests/unit/testutil.h"
#include "vecstore.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- helpers ---- */

/* Deterministic ids from a splitmix64 stream. */
static void prng_id(uint64_t *r, uint8_t id[32])
{
    for (int i = 0; i < 32; i += 8) {
        uint64_t v = tu_splitmix(r);
        memcpy(id + i, &v, 8);
    }
}

struct ids {
    uint8_t (*p)[32];
    size_t n, cap;
};

static void ids_push(struct ids *v, const uint8_t id[32])
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->p = realloc(v->p, v->cap * 32);
        assert_non_null(v->p);
    }
    memcpy(v->p[v->n++], id, 32);
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Sorts and drops repeats; returns how many were dropped. */
static size_t ids_sort_unique(struct ids *v)
{
    if (v->n == 0)
        return 0;
    qsort(v->p, v->n, 32, id_cmp);
    size_t k = 1;
    for (size_t i = 1; i < v->n; i++)
        if (memcmp(v->p[i], v->p[k - 1], 32) != 0)
            memcpy(v->p[k++], v->p[i], 32);
    size_t dropped = v->n - k;
    v->n = k;
    return dropped;
}

static void ids_free(struct ids *v)
{
    free(v->p);
    memset(v, 0, sizeof *v);
}

static int on_have(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    ids_push(&((struct ids *)ctx)[0], id);
    return 0;
}

static int on_need(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    ids_push(&((struct ids *)ctx)[1], id);
    return 0;
}

static vecstore *store_new(void)
{
    vecstore *v = vecstore_new();
    assert_non_null(v);
    return v;
}

static void store_add(vecstore *v, uint64_t ts, const uint8_t id[32])
{
    assert_int_equal(vecstore_add(v, ts, id), CHP_OK);
}

static void store_seal(vecstore *v)
{
    assert_int_equal(vecstore_seal(v), CHP_OK);
}

static chp_neg *session(vecstore *v, uint64_t limit, int with_fp)
{
    chp_neg_storage st = vecstore_storage(v, with_fp);
    chp_neg *n = NULL;
    assert_int_equal(chp_neg_new(&st, limit, &n), CHP_OK);
    assert_non_null(n);
    return n;
}

/* A pair of item sets: common items plus some only on each side. */
struct pair {
    vecstore *c, *s;
    struct ids only_c, only_s; /* the true difference, sorted */
};

static void pair_make(struct pair *p, uint64_t seed, size_t common, size_t nc, size_t ns,
                      uint64_t spread)
{
    uint64_t r = seed;
    memset(p, 0, sizeof *p);
    p->c = store_new();
    p->s = store_new();
    uint8_t id[32];
    for (size_t i = 0; i < common + nc + ns; i++) {
        uint64_t ts = 1677970534 + tu_splitmix(&r) % spread;
        prng_id(&r, id);
        if (i < common + nc)
            store_add(p->c, ts, id);
        if (i < common || i >= common + nc)
            store_add(p->s, ts, id);
        if (i >= common && i < common + nc)
            ids_push(&p->only_c, id);
        else if (i >= common + nc)
            ids_push(&p->only_s, id);
    }
    store_seal(p->c);
    store_seal(p->s);
    assert_int_equal(ids_sort_unique(&p->only_c), 0);
    assert_int_equal(ids_sort_unique(&p->only_s), 0);
}

static void pair_free(struct pair *p)
{
    vecstore_destroy(&p->c);
    vecstore_destroy(&p->s);
    ids_free(&p->only_c);
    ids_free(&p->only_s);
}

struct sync_result {
    size_t rounds;      /* round trips: client message + server reply */
    size_t max_msg;     /* largest message either way */
    size_t repeats;     /* ids reported more than once (frame limit only) */
    size_t bytes;       /* all messages, both ways */
    uint8_t digest[32]; /* of the whole transcript, to compare runs */
};

/* Which sides of sync_check use the staged split: bit 0 the client, bit 1
 * the server (0: both split as the reference does). */
static int staged_mask;

static void digest_msg(uint8_t d[32], const chp_buf *m)
{
    uint8_t h[32], in[64];
    chp_sha256(h, m->p, m->len);
    memcpy(in, d, 32);
    memcpy(in + 32, h, 32);
    chp_sha256(d, in, sizeof in);
}

/* Runs a whole reconciliation and checks it found exactly the difference. */
static void sync_check(struct pair *p, uint64_t limit, int with_fp, struct sync_result *res)
{
    chp_neg *cli = session(p->c, limit, with_fp), *srv = session(p->s, limit, with_fp);
    chp_neg_set_staged(cli, staged_mask & 1);
    chp_neg_set_staged(srv, staged_mask & 2);
    chp_buf q = {0}, a = {0};
    struct ids hn[2];
    memset(hn, 0, sizeof hn);
    memset(res, 0, sizeof *res);
    assert_int_equal(chp_neg_initiate(cli, &q), CHP_OK);
    while (q.len) {
        digest_msg(res->digest, &q);
        res->bytes += q.len;
        if (q.len > res->max_msg)
            res->max_msg = q.len;
        assert_int_equal(chp_neg_respond(srv, q.p, q.len, &a), CHP_OK);
        digest_msg(res->digest, &a);
        res->bytes += a.len;
        if (a.len > res->max_msg)
            res->max_msg = a.len;
        res->rounds++;
        assert_true(res->rounds < 1000);
        assert_int_equal(chp_neg_reconcile(cli, a.p, a.len, &q, on_have, on_need, hn), CHP_OK);
    }
    res->repeats = ids_sort_unique(&hn[0]) + ids_sort_unique(&hn[1]);
    if (!limit)
        assert_int_equal(res->repeats, 0);
    if (limit)
        assert_true(res->max_msg <= limit);
    assert_int_equal(hn[0].n, p->only_c.n);
    assert_int_equal(hn[1].n, p->only_s.n);
    if (hn[0].n)
        assert_memory_equal(hn[0].p, p->only_c.p, hn[0].n * 32);
    if (hn[1].n)
        assert_memory_equal(hn[1].p, p->only_s.p, hn[1].n * 32);
    ids_free(&hn[0]);
    ids_free(&hn[1]);
    chp_buf_free(&q);
    chp_buf_free(&a);
    chp_neg_destroy(&cli);
    chp_neg_destroy(&srv);
    assert_null(cli);
}

static void test_crypto_init(void **state)
{
    (void)state;
    assert_int_equal(chp_crypto_init(), CHP_OK);
}

/* ---- fingerprints ---- */

static void test_fp_empty(void **state)
{
    (void)state;
    uint8_t sum[32] = {0}, fp[16], in[33] = {0}, h[32];
    chp_neg_fp_final(sum, 0, fp);
    chp_sha256(h, in, sizeof in); /* 32 zero bytes || varint(0) */
    assert_memory_equal(fp, h, 16);
}

static void test_fp_add_carry(void **state)
{
    (void)state;
    uint8_t sum[32], one[32] = {1}, zero[32] = {0};
    memset(sum, 0xff, 32);
    chp_neg_fp_add(sum, one); /* 2^256 - 1 + 1 = 0 mod 2^256 */
    assert_memory_equal(sum, zero, 32);

    /* Little-endian: the carry moves from byte 0 towards byte 31. */
    uint8_t s2[32] = {0xff, 0xff}, want[32] = {0, 0, 1};
    chp_neg_fp_add(s2, one);
    assert_memory_equal(s2, want, 32);

    /* A carry out of the top byte is dropped. */
    uint8_t s3[32] = {0}, top[32] = {0};
    s3[31] = 0x80;
    top[31] = 0x80;
    chp_neg_fp_add(s3, top);
    assert_memory_equal(s3, zero, 32);
}

static void test_fp_count_varint(void **state)
{
    (void)state;
    /* count 200 = 1 * 128 + 72: varint 0x81 0x48, most significant first. */
    uint8_t sum[32], in[34], h[32], fp[16];
    for (int i = 0; i < 32; i++)
        sum[i] = (uint8_t)i;
    memcpy(in, sum, 32);
    in[32] = 0x81;
    in[33] = 0x48;
    chp_sha256(h, in, sizeof in);
    chp_neg_fp_final(sum, 200, fp);
    assert_memory_equal(fp, h, 16);
}

static void test_cmp(void **state)
{
    (void)state;
    uint8_t id[32] = {0x10, 0x20};
    chp_neg_bound b;
    memset(&b, 0, sizeof b);
    b.ts = 5;
    assert_true(chp_neg_cmp(4, id, &b) < 0);
    assert_true(chp_neg_cmp(6, id, &b) > 0);
    assert_true(chp_neg_cmp(5, id, &b) > 0); /* id > zero id */
    b.id[0] = 0x10;
    b.id[1] = 0x21;
    b.idlen = 2;
    assert_true(chp_neg_cmp(5, id, &b) < 0); /* 10 20.. < 10 21 00.. */
    b.id[1] = 0x20;
    assert_true(chp_neg_cmp(5, id, &b) == 0); /* the prefix bound is the item itself */
}

/* ---- sessions ---- */

static void test_new_limits(void **state)
{
    (void)state;
    vecstore *v = store_new();
    store_seal(v);
    chp_neg_storage st = vecstore_storage(v, 1);
    static const uint64_t bad[] = {1, 200, 1000, 4095};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chp_neg *n = (chp_neg *)&st; /* must be reset to NULL */
        assert_int_equal(chp_neg_new(&st, bad[i], &n), CHP_E_ARG);
        assert_null(n);
    }
    static const uint64_t good[] = {0, 4096, 60000, UINT64_MAX};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        chp_neg *n = NULL;
        assert_int_equal(chp_neg_new(&st, good[i], &n), CHP_OK);
        chp_neg_destroy(&n);
        assert_null(n);
    }
    chp_neg_destroy(NULL);
    vecstore_destroy(&v);
}

static void test_roles(void **state)
{
    (void)state;
    vecstore *v = store_new();
    store_seal(v);
    chp_neg *c = session(v, 0, 1), *s = session(v, 0, 1);
    chp_buf out = {0};
    assert_int_equal(chp_neg_initiate(c, &out), CHP_OK);
    assert_int_equal(chp_neg_initiate(c, &out), CHP_E_ARG);
    const uint8_t msg[] = {0x61};
    assert_int_equal(chp_neg_respond(c, msg, sizeof msg, &out), CHP_E_ARG);
    assert_int_equal(chp_neg_reconcile(s, msg, sizeof msg, &out, NULL, NULL, NULL), CHP_E_ARG);
    /* A bare version byte: the server has nothing to say, the client is done. */
    assert_int_equal(chp_neg_respond(s, msg, sizeof msg, &out), CHP_OK);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.p[0], 0x61);
    assert_int_equal(chp_neg_reconcile(c, msg, sizeof msg, &out, NULL, NULL, NULL), CHP_OK);
    assert_int_equal(out.len, 0);
    chp_buf_free(&out);
    chp_buf_free(&out); /* idempotent */
    chp_neg_destroy(&c);
    chp_neg_destroy(&s);
    vecstore_destroy(&v);
}

/* The hand derivations also in tests/negentropy/vectors.txt (a, b, c). */
static void test_small_vectors(void **state)
{
    (void)state;
    chp_buf out = {0};
    vecstore *e = store_new();
    store_seal(e);
    chp_neg *n = session(e, 0, 1);
    assert_int_equal(chp_neg_initiate(n, &out), CHP_OK);
    const uint8_t empty[] = {0x61, 0x00, 0x00, 0x02, 0x00};
    assert_int_equal(out.len, sizeof empty);
    assert_memory_equal(out.p, empty, sizeof empty);
    chp_neg_destroy(&n);

    vecstore *v = store_new();
    uint8_t three[5 + 96] = {0x61, 0x00, 0x00, 0x02, 0x03};
    for (int k = 0; k < 3; k++) {
        uint8_t id[32];
        memset(id, k + 1, 32);
        store_add(v, 12 - (uint64_t)k, id); /* added out of order on purpose */
        memcpy(three + 5 + 32 * (2 - k), id, 32);
    }
    /* ts 12, 11, 10 for ids 01, 02, 03: sorted order is 03, 02, 01. */
    store_seal(v);
    n = session(v, 0, 1);
    assert_int_equal(chp_neg_initiate(n, &out), CHP_OK);
    assert_int_equal(out.len, sizeof three);
    assert_memory_equal(out.p, three, sizeof three);
    chp_neg_destroy(&n);

    /* (c) a whole-range fingerprint that does not match: the IdList back. */
    uint8_t q[4 + 16] = {0x61, 0x00, 0x00, 0x01};
    n = session(v, 0, 0);
    assert_int_equal(chp_neg_respond(n, q, sizeof q, &out), CHP_OK);
    assert_int_equal(out.len, sizeof three);
    assert_memory_equal(out.p, three, sizeof three);
    chp_neg_destroy(&n);

    chp_buf_free(&out);
    vecstore_destroy(&e);
    vecstore_destroy(&v);
}

/* ---- malformed input ---- */

struct bad {
    const char *what;
    const uint8_t *p;
    size_t len;
};

#define BAD(name, ...) static const uint8_t name[] = {__VA_ARGS__};

BAD(m_v50, 0x50)
BAD(m_v70, 0x70)
BAD(m_trunc_ts, 0x61, 0x80)
BAD(m_trunc_len, 0x61, 0x00, 0x80)
BAD(m_no_mode, 0x61, 0x00, 0x00)
BAD(m_trunc_mode, 0x61, 0x00, 0x00, 0x82)
BAD(m_prefix_short, 0x61, 0x00, 0x05, 0x01, 0x02, 0x03)
BAD(m_mode3, 0x61, 0x00, 0x00, 0x03)
BAD(m_mode_huge, 0x61, 0x00, 0x00, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)
BAD(m_fp_short, 0x61, 0x00, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
BAD(m_idlist_no_count, 0x61, 0x00, 0x00, 0x02)
BAD(m_idlist_huge, 0x61, 0x00, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)
BAD(m_varint_overlong, 0x61, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00,
    0x00)
BAD(m_varint_overflow, 0x61, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00)
/* (10, 80..) skip, then (10, 10..): a bound below the previous one. */
BAD(m_descending, 0x61, 0x0b, 0x01, 0x80, 0x00, 0x01, 0x01, 0x10, 0x00)
/* A valid skip, then garbage. */
BAD(m_trailing, 0x61, 0x05, 0x00, 0x00, 0x07)

static uint8_t m_prefix33[3 + 33 + 1];
static uint8_t m_idlist_short[5 + 64]; /* says 3 ids, carries 2 */

static void make_bad_arrays(void)
{
    m_prefix33[0] = 0x61;
    m_prefix33[1] = 0x00;
    m_prefix33[2] = 33;
    memset(m_prefix33 + 3, 0xab, 33);
    m_prefix33[36] = 0x00;
    memset(m_idlist_short, 0x42, sizeof m_idlist_short);
    m_idlist_short[0] = 0x61;
    m_idlist_short[1] = 0x00;
    m_idlist_short[2] = 0x00;
    m_idlist_short[3] = 0x02;
    m_idlist_short[4] = 0x03;
}

/* clang-format off */
#define B(x) {#x, x, sizeof x}
/* clang-format on */
static const struct bad malformed[] = {
    {"empty", (const uint8_t *)"", 0},
    B(m_v50),
    B(m_v70),
    B(m_trunc_ts),
    B(m_trunc_len),
    B(m_no_mode),
    B(m_trunc_mode),
    B(m_prefix_short),
    B(m_prefix33),
    B(m_mode3),
    B(m_mode_huge),
    B(m_fp_short),
    B(m_idlist_no_count),
    B(m_idlist_huge),
    B(m_idlist_short),
    B(m_varint_overlong),
    B(m_varint_overflow),
    B(m_descending),
    B(m_trailing),
};

static void test_malformed(void **state)
{
    (void)state;
    make_bad_arrays();
    struct pair p;
    pair_make(&p, 7, 100, 3, 3, 50);
    chp_buf out = {0};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        const struct bad *b = &malformed[i];
        chp_neg *s = session(p.s, 0, i % 2);
        out.len = 99;
        int rc = chp_neg_respond(s, b->p, b->len, &out);
        if (rc != CHP_E_MALFORMED)
            fail_msg("server, %s: %s", b->what, chp_errname(rc));
        assert_int_equal(out.len, 0);
        chp_neg_destroy(&s);

        chp_neg *c = session(p.c, 0, i % 2);
        assert_int_equal(chp_neg_initiate(c, &out), CHP_OK);
        struct ids hn[2];
        memset(hn, 0, sizeof hn);
        rc = chp_neg_reconcile(c, b->p, b->len, &out, on_have, on_need, hn);
        if (rc != CHP_E_MALFORMED)
            fail_msg("client, %s: %s", b->what, chp_errname(rc));
        assert_int_equal(out.len, 0);
        ids_free(&hn[0]);
        ids_free(&hn[1]);
        chp_neg_destroy(&c);
    }
    chp_buf_free(&out);
    pair_free(&p);
}

static void test_versions(void **state)
{
    (void)state;
    vecstore *v = store_new();
    uint8_t id[32] = {0xee};
    store_add(v, 12345, id);
    store_seal(v);
    chp_buf out = {0};
    /* A server answers any other version in 0x60..0x6f with its own. */
    const uint8_t v62[] = {0x62, 0xaa, 0xbb}, v60[] = {0x60, 0x00, 0x00, 0x02, 0x00},
                  v6f[] = {0x6f};
    const uint8_t *msgs[] = {v62, v60, v6f};
    const size_t lens[] = {sizeof v62, sizeof v60, sizeof v6f};
    for (int i = 0; i < 3; i++) {
        chp_neg *s = session(v, 0, 1);
        assert_int_equal(chp_neg_respond(s, msgs[i], lens[i], &out), CHP_OK);
        assert_int_equal(out.len, 1);
        assert_int_equal(out.p[0], 0x61);
        chp_neg_destroy(&s);
    }
    /* A client told another version gives up. */
    chp_neg *c = session(v, 0, 1);
    assert_int_equal(chp_neg_initiate(c, &out), CHP_OK);
    const uint8_t just62[] = {0x62};
    assert_int_equal(chp_neg_reconcile(c, just62, 1, &out, NULL, NULL, NULL), CHP_E_VERSION);
    assert_int_equal(out.len, 0);
    chp_neg_destroy(&c);
    chp_buf_free(&out);
    vecstore_destroy(&v);
}

/* Valid messages, mutated: any result but a crash, and a reply that stays
 * within the frame limit when one is set. */
static void test_mutations(void **state)
{
    (void)state;
    struct pair p;
    pair_make(&p, 11, 600, 40, 40, 300);
    uint64_t r = 99;
    chp_buf seedmsg[3] = {{0}}, out = {0};
    chp_neg *c = session(p.c, 0, 1), *s = session(p.s, 0, 1);
    assert_int_equal(chp_neg_initiate(c, &seedmsg[0]), CHP_OK);
    assert_int_equal(chp_neg_respond(s, seedmsg[0].p, seedmsg[0].len, &seedmsg[1]), CHP_OK);
    assert_int_equal(
        chp_neg_reconcile(c, seedmsg[1].p, seedmsg[1].len, &seedmsg[2], NULL, NULL, NULL), CHP_OK);
    chp_neg_destroy(&c);
    chp_neg_destroy(&s);
    size_t ok = 0;
    for (int it = 0; it < 3000; it++) {
        const chp_buf *src = &seedmsg[it % 3];
        size_t len = src->len;
        uint8_t *m = malloc(len + 16);
        assert_non_null(m);
        memcpy(m, src->p, len);
        int kind = (int)(tu_splitmix(&r) % 4);
        if (kind == 0 && len > 1) {
            len = 1 + tu_splitmix(&r) % (len - 1); /* truncate */
        } else if (kind == 1) {
            for (int k = 0; k < 3; k++)
                m[1 + tu_splitmix(&r) % (len - 1)] ^= (uint8_t)(1u << (tu_splitmix(&r) % 8));
        } else if (kind == 2) {
            m[1 + tu_splitmix(&r) % (len - 1)] = (uint8_t)tu_splitmix(&r);
        } else {
            size_t extra = tu_splitmix(&r) % 16;
            for (size_t k = 0; k < extra; k++)
                m[len + k] = (uint8_t)tu_splitmix(&r);
            len += extra;
        }
        uint64_t limit = it % 2 ? 4096 : 0;
        s = session(p.s, limit, it % 3 != 0);
        int rc = chp_neg_respond(s, m, len, &out);
        assert_true(rc == CHP_OK || rc == CHP_E_MALFORMED);
        if (rc == CHP_OK) {
            ok++;
            assert_true(out.len >= 1 && (!limit || out.len <= limit));
        }
        chp_neg_destroy(&s);
        c = session(p.c, limit, it % 3 != 0);
        assert_int_equal(chp_neg_initiate(c, &out), CHP_OK);
        rc = chp_neg_reconcile(c, m, len, &out, NULL, NULL, NULL);
        assert_true(rc == CHP_OK || rc == CHP_E_MALFORMED);
        assert_true(!limit || out.len <= limit);
        chp_neg_destroy(&c);
        free(m);
    }
    print_message("mutations: %zu of 3000 still parsed\n", ok);
    for (int i = 0; i < 3; i++)
        chp_buf_free(&seedmsg[i]);
    chp_buf_free(&out);
    pair_free(&p);
}

/* A storage error reaches the caller unchanged. */
static int failing_count(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi, uint64_t *n)
{
    (void)ctx;
    (void)lo;
    (void)hi;
    (void)n;
    return CHP_E_STORE;
}

static int failing_iterate(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi,
                           chp_neg_item_fn fn, void *fnctx)
{
    (void)ctx;
    (void)lo;
    (void)hi;
    (void)fn;
    (void)fnctx;
    return CHP_E_STORE;
}

static void test_storage_errors(void **state)
{
    (void)state;
    chp_neg_storage st = {NULL, failing_iterate, failing_count, NULL};
    chp_neg *n = NULL;
    chp_buf out = {0};
    assert_int_equal(chp_neg_new(&st, 0, &n), CHP_OK);
    assert_int_equal(chp_neg_initiate(n, &out), CHP_E_STORE);
    chp_neg_destroy(&n);
    assert_int_equal(chp_neg_new(&st, 0, &n), CHP_OK);
    const uint8_t q[] = {0x61, 0x00, 0x00, 0x01, 1,  2,  3,  4,  5,  6,
                         7,    8,    9,    10,   11, 12, 13, 14, 15, 16};
    assert_int_equal(chp_neg_respond(n, q, sizeof q, &out), CHP_E_STORE);
    assert_int_equal(out.len, 0);
    chp_neg_destroy(&n);
    chp_buf_free(&out);
}

/* ---- whole reconciliations ---- */

static void test_sync_basic(void **state)
{
    (void)state;
    static const struct {
        size_t common, nc, ns;
    } cases[] = {{0, 0, 0},     {1000, 0, 0}, {0, 500, 0},    {0, 0, 500},
                 {0, 700, 700}, {31, 1, 0},   {32, 0, 1},     {33, 1, 1},
                 {2000, 1, 0},  {2000, 0, 1}, {3000, 30, 30}, {500, 250, 250}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pair p;
        struct sync_result r0, r1;
        pair_make(&p, 100 + i, cases[i].common, cases[i].nc, cases[i].ns, 10000);
        sync_check(&p, 0, 1, &r1);
        sync_check(&p, 0, 0, &r0); /* the iterate-only fingerprint path */
        assert_memory_equal(r0.digest, r1.digest, 32);
        if (cases[i].nc + cases[i].ns == 0)
            assert_int_equal(r1.rounds, 1);
        pair_free(&p);
    }
}

static void test_sync_random(void **state)
{
    (void)state;
    uint64_t r = 2024;
    size_t total_rounds = 0;
    for (int i = 0; i < 60; i++) {
        size_t n = (size_t)(tu_splitmix(&r) % 3000);
        size_t nc = (size_t)(tu_splitmix(&r) % (n / 5 + 2)),
               ns = (size_t)(tu_splitmix(&r) % (n / 5 + 2));
        static const uint64_t spreads[] = {1, 5, 100, 1000000};
        static const uint64_t limits[] = {0, 4096, 5000, 0};
        uint64_t spread = spreads[tu_splitmix(&r) % 4], limit = limits[tu_splitmix(&r) % 4];
        struct pair p;
        struct sync_result res;
        pair_make(&p, tu_splitmix(&r), n, nc, ns, spread);
        sync_check(&p, limit, (int)(i % 2), &res);
        total_rounds += res.rounds;
        pair_free(&p);
    }
    print_message("random: 60 syncs, %zu round trips in all\n", total_rounds);
}

static void test_same_timestamp(void **state)
{
    (void)state;
    /* Every item at one timestamp, ids sharing long prefixes: bounds must
     * carry id prefixes up to 32 bytes and still separate the buckets. */
    uint64_t r = 5;
    struct pair p;
    memset(&p, 0, sizeof p);
    p.c = store_new();
    p.s = store_new();
    uint8_t fam[8][32];
    for (int f = 0; f < 8; f++)
        prng_id(&r, fam[f]);
    for (int i = 0; i < 3000; i++) {
        uint8_t id[32];
        int f = (int)(tu_splitmix(&r) % 8);
        size_t shared = (size_t)(f * 4 + 2); /* 2..30 bytes of family prefix */
        prng_id(&r, id);
        memcpy(id, fam[f], shared);
        id[30] = (uint8_t)(i >> 8); /* a counter keeps the ids distinct */
        id[31] = (uint8_t)i;
        int where = (int)(tu_splitmix(&r) % 20);
        if (where != 0)
            store_add(p.c, 42, id);
        if (where != 1)
            store_add(p.s, 42, id);
        if (where == 1)
            ids_push(&p.only_c, id);
        if (where == 0)
            ids_push(&p.only_s, id);
    }
    store_seal(p.c);
    store_seal(p.s);
    ids_sort_unique(&p.only_c);
    ids_sort_unique(&p.only_s);
    struct sync_result res;
    sync_check(&p, 0, 1, &res);
    sync_check(&p, 4096, 1, &res);
    pair_free(&p);
}

static void test_frame_limit(void **state)
{
    (void)state;
    struct pair p;
    struct sync_result res;
    pair_make(&p, 77, 3000, 1000, 1000, 6000);
    sync_check(&p, 4096, 1, &res);
    assert_true(res.rounds > 1);
    assert_true(res.max_msg <= 4096);
    print_message("frame limit 4096, 2000-item difference: %zu round trips, max %zu B, "
                  "%zu repeated reports\n",
                  res.rounds, res.max_msg, res.repeats);
    pair_free(&p);
}

/* Two sets of 100000 differing by one item. Each round trip splits twice
 * (client, then server) by 16: 100000 -> 6250 -> 391 -> 25 < 32, which the
 * server sends as an IdList, so the client learns the difference after two
 * round trips; three is the bound asserted. */
static void test_rounds_100k(void **state)
{
    (void)state;
    for (int side = 0; side < 2; side++) {
        struct pair p;
        struct sync_result res;
        pair_make(&p, 1000 + (uint64_t)side, 99999, side == 0, side == 1, 1000000);
        sync_check(&p, 0, 1, &res);
        print_message("100000 items, 1 only on the %s: %zu round trips, max message %zu B\n",
                      side ? "server" : "client", res.rounds, res.max_msg);
        assert_true(res.rounds <= 3);
        sync_check(&p, 60000, 1, &res);
        assert_true(res.rounds <= 3);
        pair_free(&p);
    }
}

/* The staged split (PROTOCOL.md §14): the same message format, so every
 * mix of staged and reference sides finds exactly the difference, under
 * any frame limit; scattered differences cost fewer bytes in no more than
 * 3 round trips; and one difference among 100k is found in 3. */
static void test_staged_split(void **state)
{
    (void)state;
    uint64_t r = 77;
    for (int i = 0; i < 48; i++) {
        size_t n = (size_t)(tu_splitmix(&r) % 5000);
        size_t nc = (size_t)(tu_splitmix(&r) % (n / 10 + 2)),
               ns = (size_t)(tu_splitmix(&r) % (n / 10 + 2));
        static const uint64_t spreads[] = {1, 1000, 1000000};
        static const uint64_t limits[] = {0, 4096, 60000};
        struct pair p;
        struct sync_result res;
        pair_make(&p, tu_splitmix(&r), n, nc, ns, spreads[tu_splitmix(&r) % 3]);
        staged_mask = i % 4;
        sync_check(&p, limits[tu_splitmix(&r) % 3], (int)(i % 2), &res);
        pair_free(&p);
    }

    struct pair p;
    struct sync_result ref, st;
    pair_make(&p, 9, 20000, 100, 100, 1000000); /* 1% scattered either way */
    staged_mask = 0;
    sync_check(&p, 0, 1, &ref);
    staged_mask = 3;
    sync_check(&p, 0, 1, &st);
    print_message("20000 items, 1%% differing: reference %zu round trips %zu B, staged %zu round "
                  "trips %zu B\n",
                  ref.rounds, ref.bytes, st.rounds, st.bytes);
    assert_true(st.rounds <= 3);
    assert_true(st.bytes * 5 < ref.bytes * 4); /* under 80% of the reference's bytes */
    pair_free(&p);

    pair_make(&p, 10, 99999, 0, 1, 1000000);
    sync_check(&p, 60000, 1, &st);
    assert_true(st.rounds <= 3);
    assert_true(st.bytes < 3000);
    pair_free(&p);
    staged_mask = 0;
}

/* Regression: a server IdList naming one id twice once made the client
 * report an id it has as needed (only the copy bsearch landed on was
 * marked). Repeats count once, as in the reference's set. */
static void test_idlist_repeated_id(void **state)
{
    (void)state;
    vecstore *v = store_new();
    uint8_t x[32], y[32];
    memset(x, 0x11, 32);
    memset(y, 0x22, 32);
    store_add(v, 10, x);
    store_seal(v);
    chp_neg *c = session(v, 0, 1);
    chp_buf out = {0};
    assert_int_equal(chp_neg_initiate(c, &out), CHP_OK);
    uint8_t reply[5 + 96] = {0x61, 0x00, 0x00, 0x02, 0x03};
    memcpy(reply + 5, x, 32);
    memcpy(reply + 37, x, 32);
    memcpy(reply + 69, y, 32);
    struct ids hn[2];
    memset(hn, 0, sizeof hn);
    assert_int_equal(chp_neg_reconcile(c, reply, sizeof reply, &out, on_have, on_need, hn), CHP_OK);
    assert_int_equal(hn[0].n, 0);
    assert_int_equal(hn[1].n, 1); /* y only, once */
    assert_memory_equal(hn[1].p[0], y, 32);
    ids_free(&hn[0]);
    ids_free(&hn[1]);
    chp_buf_free(&out);
    chp_neg_destroy(&c);
    vecstore_destroy(&v);
}

static void test_vecstore(void **state)
{
    (void)state;
    vecstore *v = store_new();
    uint8_t id[32] = {1};
    assert_int_equal(vecstore_add(v, UINT64_MAX, id), CHP_E_ARG);
    store_add(v, 3, id);
    store_add(v, 3, id);
    assert_int_equal(vecstore_seal(v), CHP_E_DUP);
    vecstore_destroy(&v);
    assert_null(v);
    vecstore_destroy(NULL);

    v = store_new();
    store_add(v, 3, id);
    store_seal(v);
    assert_int_equal(vecstore_seal(v), CHP_E_ARG);
    assert_int_equal(vecstore_add(v, 4, id), CHP_E_ARG);
    assert_int_equal(vecstore_size(v), 1);
    vecstore_destroy(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_init),
        cmocka_unit_test(test_fp_empty),
        cmocka_unit_test(test_fp_add_carry),
        cmocka_unit_test(test_fp_count_varint),
        cmocka_unit_test(test_cmp),
        cmocka_unit_test(test_vecstore),
        cmocka_unit_test(test_new_limits),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_small_vectors),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_storage_errors),
        cmocka_unit_test(test_sync_basic),
        cmocka_unit_test(test_sync_random),
        cmocka_unit_test(test_same_timestamp),
        cmocka_unit_test(test_frame_limit),
        cmocka_unit_test(test_rounds_100k),
        cmocka_unit_test(test_staged_split),
        cmocka_unit_test(test_idlist_repeated_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
