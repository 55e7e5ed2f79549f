/* test_bundle.c - proto/bundle.c and proto/want.c: the record layer
 * (round trip, every cut and every flipped byte), sealing (chunks, the
 * last-chunk flag, Padmé sizes), want summaries (exact answers for small
 * differences, nothing missing ever skipped for large ones, the 64 KiB
 * bound at 100,000 items), and the known-answer vectors of PROTOCOL.md §19
 * in tests/vectors/bundle.exp (`test_bundle --write FILE` regenerates
 * them). */
#include "proto/bundle.h"
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/want.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- records ---- */

static void make_bundle(chp_buf *b, int n, size_t len)
{
    chp_bundle_wr w;
    uint8_t p[600];
    assert_true(len <= sizeof p);
    assert_int_equal(chp_bundle_wr_begin(&w, CHP_BUNDLE_KIND_ENVELOPES, b), CHP_OK);
    for (int i = 0; i < n; i++) {
        memset(p, i + 1, len);
        assert_int_equal(chp_bundle_wr_rec(&w, CHP_REC_ENVELOPE, p, len, b), CHP_OK);
    }
    assert_int_equal(chp_bundle_wr_end(&w, b), CHP_OK);
}

/* Reads buf[0..len) whole: the number of envelope records proven, and the
 * first error (CHP_OK when END was reached and nothing follows). */
static int read_all(const uint8_t *buf, size_t len, int *records)
{
    chp_bundle_rd r;
    chp_bundle_rd_init(&r);
    size_t off = 0;
    *records = 0;
    for (;;) {
        chp_bundle_rec rec;
        size_t used;
        int rc = chp_bundle_rd_next(&r, buf + off, len - off, &used, &rec);
        if (rc == CHP_E_TRUNCATED && r.ended && off == len)
            return CHP_OK;
        if (rc != CHP_OK)
            return rc;
        off += used;
        if (rec.type == CHP_REC_ENVELOPE) {
            for (size_t i = 0; i < rec.len; i++)
                assert_int_equal(rec.p[i], (uint8_t)(*records + 1));
            ++*records;
        }
    }
}

static void test_records_round_trip(void **state)
{
    (void)state;
    chp_buf b = {0};
    make_bundle(&b, 5, 300);
    assert_int_equal(b.len,
                     CHP_BUNDLE_HDR_BYTES + 5 * chp_bundle_rec_size(300) + chp_bundle_rec_size(8));
    int n;
    assert_int_equal(read_all(b.p, b.len, &n), CHP_OK);
    assert_int_equal(n, 5);
    assert_true(chp_bundle_is_open(b.p, b.len));
    chp_buf_free(&b);
}

static void test_records_every_cut(void **state)
{
    (void)state;
    chp_buf b = {0};
    make_bundle(&b, 3, 40);
    size_t rec = chp_bundle_rec_size(40);
    for (size_t cut = 0; cut < b.len; cut++) {
        int n;
        int rc = read_all(b.p, cut, &n);
        assert_true(rc == CHP_E_TRUNCATED || (cut < 7 && rc == CHP_E_TRUNCATED));
        size_t whole = cut < CHP_BUNDLE_HDR_BYTES ? 0 : (cut - CHP_BUNDLE_HDR_BYTES) / rec;
        assert_int_equal(n, whole > 3 ? 3 : whole); /* only whole, proven records */
    }
    chp_buf_free(&b);
}

static void test_records_every_flip(void **state)
{
    (void)state;
    chp_buf b = {0};
    make_bundle(&b, 3, 40);
    size_t rec = chp_bundle_rec_size(40);
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            b.p[i] ^= (uint8_t)(1 << bit);
            int n;
            int rc = read_all(b.p, b.len, &n);
            assert_int_not_equal(rc, CHP_OK);
            if (i >= CHP_BUNDLE_HDR_BYTES) /* the records before the flip stand */
                assert_int_equal(
                    n, (i - CHP_BUNDLE_HDR_BYTES) / rec > 3 ? 3 : (i - CHP_BUNDLE_HDR_BYTES) / rec);
            b.p[i] ^= (uint8_t)(1 << bit);
        }
    }
    chp_buf_free(&b);
}

static void test_records_limits(void **state)
{
    (void)state;
    chp_buf b = {0};
    chp_bundle_wr w;
    assert_int_equal(chp_bundle_wr_begin(&w, CHP_BUNDLE_KIND_ENVELOPES, &b), CHP_OK);
    assert_int_equal(chp_bundle_wr_rec(&w, CHP_REC_ENVELOPE, NULL, CHP_BUNDLE_REC_MAX + 1, &b),
                     CHP_E_TOO_BIG);
    /* a header claiming 4 GiB: refused before any byte of it is awaited */
    uint8_t h[5] = {CHP_REC_ENVELOPE, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(chp_buf_put(&b, h, sizeof h), CHP_OK);
    int n;
    assert_int_equal(read_all(b.p, b.len, &n), CHP_E_TOO_BIG);
    b.p[CHP_BUNDLE_HDR_BYTES] = 9; /* unknown type */
    assert_int_equal(read_all(b.p, b.len, &n), CHP_E_MALFORMED);
    b.p[7] = 7; /* unknown kind */
    assert_int_equal(read_all(b.p, b.len, &n), CHP_E_MALFORMED);
    chp_buf_free(&b);
    /* anything after END */
    make_bundle(&b, 1, 10);
    assert_int_equal(chp_buf_put(&b, "x", 1), CHP_OK);
    assert_int_equal(read_all(b.p, b.len, &n), CHP_E_MALFORMED);
    chp_buf_free(&b);
}

/* ---- sealing ---- */

static void test_seal_chunks(void **state)
{
    (void)state;
    uint8_t key[32], other[32];
    tu_pattern(key, sizeof key, 1);
    tu_pattern(other, sizeof other, 2);
    uint8_t *pt = malloc(CHP_SEAL_CHUNK), *ct = malloc(CHP_SEAL_CT), *back = malloc(CHP_SEAL_CHUNK);
    assert_non_null(pt && ct && back);
    tu_pattern(pt, CHP_SEAL_CHUNK, 3);
    chp_seal_chunk(key, 7, 0, pt, ct);
    assert_int_equal(chp_open_chunk(key, 7, 0, ct, back), CHP_OK);
    assert_memory_equal(pt, back, CHP_SEAL_CHUNK);
    assert_int_equal(chp_open_chunk(key, 7, 1, ct, back), CHP_E_DECRYPT); /* not the last */
    assert_int_equal(chp_open_chunk(key, 6, 0, ct, back), CHP_E_DECRYPT); /* moved */
    assert_int_equal(chp_open_chunk(other, 7, 0, ct, back), CHP_E_DECRYPT);
    free(pt);
    free(ct);
    free(back);
}

static void test_seal_sizes(void **state)
{
    (void)state;
    assert_int_equal(chp_seal_chunks(0), 1);
    assert_int_equal(chp_seal_chunks(1), 1);
    assert_int_equal(chp_seal_chunks(CHP_SEAL_CHUNK), 1);
    assert_int_equal(chp_seal_chunks(CHP_SEAL_CHUNK + 1), 2);
    uint64_t prev = 0;
    for (uint64_t plain = 1; plain < (1ull << 34); plain = plain * 5 / 4 + 1) {
        uint64_t c = chp_seal_chunks(plain);
        uint64_t need = (plain + CHP_SEAL_CHUNK - 1) / CHP_SEAL_CHUNK;
        assert_true(c >= need && c <= need + need / 8 + 1); /* Padmé: < 12.5 % more */
        assert_true(c >= prev);
        prev = c;
        uint64_t size = CHP_SEAL_SALT + c * (uint64_t)CHP_SEAL_CT;
        assert_int_equal(chp_seal_file_chunks(size), c);
        assert_int_equal(chp_seal_file_chunks(size - 1), 0);
    }
    assert_int_equal(chp_seal_file_chunks(CHP_SEAL_SALT + 9ull * CHP_SEAL_CT), 0); /* 9 -> 10 */
}

/* ---- want summaries ---- */

struct set {
    uint64_t *created;
    uint8_t (*id)[32];
    size_t n;
};

static int item_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 40);
}

/* n items (created = a few distinct seconds, big-endian first for sort),
 * sorted; the same seed gives the same items. */
static uint8_t (*items_make(size_t n, uint64_t seed))[40]
{
    uint8_t(*v)[40] = malloc(n * 40 + 1);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        uint8_t s[16];
        chp_put_be64(s, seed);
        chp_put_be64(s + 8, i);
        chp_hash(v[i] + 8, 32, s, sizeof s, NULL, 0);
        chp_put_be64(v[i], 1800000000 + v[i][8] % 50);
    }
    qsort(v, n, 40, item_cmp);
    return v;
}

static void want_of(chp_want *w, uint8_t (*v)[40], size_t n, const uint8_t *skip)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !skip || !skip[i];
    uint8_t salt[CHP_WANT_SALT];
    tu_pattern(salt, sizeof salt, 9);
    assert_int_equal(chp_want_init(w, k, salt), CHP_OK);
    for (size_t i = 0; i < n; i++)
        if (!skip || !skip[i])
            chp_want_add(w, chp_be64(v[i]), v[i] + 8);
}

/* The exporter holds v[0..n); the wanting node all but skip[i] (and
 * extra items of its own). Returns how many items the exporter sends that
 * the other holds; asserts none it lacks is skipped. */
static size_t compare(chp_want *w, uint8_t (*v)[40], size_t n, const uint8_t *skip,
                      chp_want_result *res)
{
    chp_buf enc = {0};
    chp_want back;
    assert_int_equal(chp_want_encode(w, &enc), CHP_OK);
    assert_int_equal(chp_want_decode(enc.p, enc.len, &back), CHP_OK);
    chp_buf_free(&enc);
    chp_want_cmp *c;
    assert_int_equal(chp_want_cmp_new(&back, &c), CHP_OK);
    for (size_t i = 0; i < n; i++)
        chp_want_cmp_add(c, chp_be64(v[i]), v[i] + 8);
    assert_int_equal(chp_want_cmp_finish(c, res), CHP_OK);
    size_t extra = 0;
    for (size_t i = 0; i < n; i++) {
        int proven;
        int send = chp_want_cmp_missing(c, chp_be64(v[i]), v[i] + 8, &proven);
        if (skip[i])
            assert_int_equal(send, 1); /* missing: always sent */
        extra += send && !skip[i];
    }
    chp_want_cmp_destroy(&c);
    chp_want_fini(&back);
    return extra;
}

static void test_want_small_difference_exact(void **state)
{
    (void)state;
    size_t n = 20000;
    uint8_t(*v)[40] = items_make(n, 1);
    uint8_t *skip = calloc(n, 1);
    for (size_t i = 0; i < n; i += 100) /* 1 % missing there */
        skip[i] = 1;
    chp_want w;
    want_of(&w, v, n, skip);
    chp_want_result res;
    assert_int_equal(compare(&w, v, n, skip, &res), 0);
    assert_int_equal(res.decoded, 1);
    assert_int_equal(res.peeled, n / 100);
    chp_want_fini(&w);
    free(skip);
    free(v);
}

static void test_want_large_difference_safe(void **state)
{
    (void)state;
    size_t n = 3000;
    uint8_t(*v)[40] = items_make(n, 2);
    uint8_t *skip = calloc(n, 1);
    for (size_t i = 0; i < n; i += 2) /* half missing: beyond the table */
        skip[i] = 1;
    chp_want w;
    want_of(&w, v, n, skip);
    chp_want_result res;
    size_t extra = compare(&w, v, n, skip, &res);
    assert_int_equal(res.decoded, 0);
    assert_true(extra <= n / 2);
    chp_want_fini(&w);
    /* the newest tenth missing only: the ranges before it are skipped */
    memset(skip, 0, n);
    for (size_t i = n - n / 10; i < n; i++)
        skip[i] = 1;
    want_of(&w, v, n, skip);
    extra = compare(&w, v, n, skip, &res);
    assert_true(res.ranges_equal + 2 >= (uint32_t)w.nranges);
    assert_true(extra <= n / 10);
    chp_want_fini(&w);
    free(skip);
    free(v);
}

static void test_want_empty_and_size(void **state)
{
    (void)state;
    /* an empty node wants everything: one range, count 0 */
    size_t n = 500;
    uint8_t(*v)[40] = items_make(n, 3);
    uint8_t *skip = malloc(n);
    memset(skip, 1, n);
    chp_want w;
    want_of(&w, v, n, skip);
    chp_want_result res;
    assert_int_equal(compare(&w, v, n, skip, &res), 0);
    assert_int_equal(res.ranges_empty, 1);
    chp_want_fini(&w);
    free(skip);
    free(v);
    /* 100,000 items: the want file stays within 64 KiB */
    n = 100000;
    v = items_make(n, 4);
    want_of(&w, v, n, NULL);
    chp_buf enc = {0};
    assert_int_equal(chp_want_encode(&w, &enc), CHP_OK);
    size_t file = CHP_BUNDLE_HDR_BYTES + chp_bundle_rec_size(enc.len) + chp_bundle_rec_size(8);
    assert_true(file <= 65536);
    assert_int_equal(file, 63064);
    chp_buf_free(&enc);
    chp_want_fini(&w);
    free(v);
}

static void test_want_decode_strict(void **state)
{
    (void)state;
    size_t n = 300;
    uint8_t(*v)[40] = items_make(n, 5);
    chp_want w, back;
    want_of(&w, v, n, NULL);
    chp_buf enc = {0};
    assert_int_equal(chp_want_encode(&w, &enc), CHP_OK);
    for (size_t cut = 0; cut < enc.len; cut += 7)
        assert_int_not_equal(chp_want_decode(enc.p, cut, &back), CHP_OK);
    assert_int_equal(chp_buf_put(&enc, "", 1), CHP_OK);
    assert_int_equal(chp_want_decode(enc.p, enc.len, &back), CHP_E_TRAILING);
    enc.len--;
    enc.p[CHP_WANT_SALT + 7] ^= 1; /* the total no longer adds up */
    assert_int_equal(chp_want_decode(enc.p, enc.len, &back), CHP_E_MALFORMED);
    chp_buf_free(&enc);
    chp_want_fini(&w);
    free(v);
}

/* ---- known-answer vectors (PROTOCOL.md §19.5) ---- */

static const char *write_path;

static void vec(FILE *out, const char *name, const uint8_t *b, size_t n)
{
    fprintf(out, "%s ", name);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", b[i]);
    fprintf(out, "\n");
}

static void vectors(FILE *out)
{
    chp_buf b = {0};
    chp_bundle_wr w;
    uint8_t e1[100], e2[200];
    for (size_t i = 0; i < sizeof e1; i++)
        e1[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof e2; i++)
        e2[i] = (uint8_t)(100 + i);
    assert_int_equal(chp_bundle_wr_begin(&w, CHP_BUNDLE_KIND_ENVELOPES, &b), CHP_OK);
    assert_int_equal(chp_bundle_wr_rec(&w, CHP_REC_ENVELOPE, e1, sizeof e1, &b), CHP_OK);
    assert_int_equal(chp_bundle_wr_rec(&w, CHP_REC_ENVELOPE, e2, sizeof e2, &b), CHP_OK);
    assert_int_equal(chp_bundle_wr_end(&w, &b), CHP_OK);
    vec(out, "bundle.open", b.p, b.len);
    /* sealed: passphrase "correct horse", salt 00..0f, one chunk */
    uint8_t salt[CHP_SEAL_SALT], key[32], h[32];
    for (size_t i = 0; i < sizeof salt; i++)
        salt[i] = (uint8_t)i;
    assert_int_equal(chp_seal_key("correct horse", 13, salt, key), CHP_OK);
    vec(out, "bundle.sealed.key", key, sizeof key);
    uint8_t *pt = calloc(1, CHP_SEAL_CHUNK), *file = malloc(CHP_SEAL_SALT + CHP_SEAL_CT);
    assert_non_null(pt && file);
    memcpy(pt, b.p, b.len);
    memcpy(file, salt, CHP_SEAL_SALT);
    chp_seal_chunk(key, 0, 1, pt, file + CHP_SEAL_SALT);
    vec(out, "bundle.sealed.head", file, 64);
    chp_hash(h, sizeof h, file, CHP_SEAL_SALT + CHP_SEAL_CT, NULL, 0);
    vec(out, "bundle.sealed.blake2b", h, sizeof h);
    free(pt);
    free(file);
    chp_buf_free(&b);
    /* a want of 4 items (created 1800000000 + i, id = BLAKE2b(i)), salt 10..1f */
    chp_want wt;
    for (size_t i = 0; i < sizeof salt; i++)
        salt[i] = (uint8_t)(0x10 + i);
    uint8_t ids[4][32];
    for (uint8_t i = 0; i < 4; i++)
        chp_hash(ids[i], 32, &i, 1, NULL, 0);
    assert_int_equal(chp_want_init(&wt, 4, salt), CHP_OK);
    for (int i = 0; i < 4; i++)
        chp_want_add(&wt, 1800000000 + (uint64_t)i, ids[i]);
    assert_int_equal(chp_want_encode(&wt, &b), CHP_OK);
    vec(out, "want.4", b.p, b.len);
    chp_want_fini(&wt);
    chp_buf_free(&b);
    /* 200 items over 4 seconds (created 1800000000 + i / 50, id =
     * BLAKE2b-256 of i as 2 big-endian bytes), sorted; salt 20..2f: 3 ranges */
    uint8_t(*v)[40] = malloc(200 * 40);
    assert_non_null(v);
    for (uint16_t i = 0; i < 200; i++) {
        uint8_t k[2] = {(uint8_t)(i >> 8), (uint8_t)i};
        chp_put_be64(v[i], 1800000000 + i / 50);
        chp_hash(v[i] + 8, 32, k, 2, NULL, 0);
    }
    qsort(v, 200, 40, item_cmp);
    for (size_t i = 0; i < sizeof salt; i++)
        salt[i] = (uint8_t)(0x20 + i);
    assert_int_equal(chp_want_init(&wt, 200, salt), CHP_OK);
    for (int i = 0; i < 200; i++)
        chp_want_add(&wt, chp_be64(v[i]), v[i] + 8);
    assert_int_equal(chp_want_encode(&wt, &b), CHP_OK);
    vec(out, "want.200", b.p, b.len);
    chp_want_fini(&wt);
    chp_buf_free(&b);
    free(v);
}

static void test_vectors(void **state)
{
    (void)state;
    if (write_path) {
        FILE *out = fopen(write_path, "w");
        assert_non_null(out);
        fprintf(out, "# Bundle known-answer vectors (docs/PROTOCOL.md §19.5). NAME HEX.\n");
        vectors(out);
        fclose(out);
        return;
    }
    char path[4096], *mine = NULL, *exp = NULL;
    size_t ml = 0, el;
    FILE *m = open_memstream(&mine, &ml);
    fprintf(m, "# Bundle known-answer vectors (docs/PROTOCOL.md §19.5). NAME HEX.\n");
    vectors(m);
    fclose(m);
    snprintf(path, sizeof path, "%s/bundle.exp",
             getenv("CHP_VECTORS") ? getenv("CHP_VECTORS") : "tests/vectors");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    exp = malloc(1 << 20);
    assert_non_null(exp);
    el = fread(exp, 1, 1 << 20, f);
    fclose(f);
    assert_int_equal(el, ml);
    assert_memory_equal(exp, mine, ml);
    free(exp);
    free(mine);
}

int main(int argc, char **argv)
{
    if (chp_crypto_init() != CHP_OK)
        return 1;
    if (argc == 3 && !strcmp(argv[1], "--write"))
        write_path = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_round_trip),
        cmocka_unit_test(test_records_every_cut),
        cmocka_unit_test(test_records_every_flip),
        cmocka_unit_test(test_records_limits),
        cmocka_unit_test(test_seal_chunks),
        cmocka_unit_test(test_seal_sizes),
        cmocka_unit_test(test_want_small_difference_exact),
        cmocka_unit_test(test_want_large_difference_safe),
        cmocka_unit_test(test_want_empty_and_size),
        cmocka_unit_test(test_want_decode_strict),
        cmocka_unit_test(test_vectors),
    };
    if (write_path) {
        test_vectors(NULL);
        return 0;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
