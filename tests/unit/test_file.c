/* test_file.c - file manifests, pieces and names (proto/file.h,
 * PROTOCOL.md §18.8-18.9): the vectors of tests/vectors/file.exp
 * recomputed (`test_file --write FILE` regenerates them), hostile
 * manifests refused, hostile names made safe. */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/file.h"
#include "proto/hex.h"
#include "proto/keys.h"
#include "tests/unit/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define VSIZE      40000u
#define VEC_HEADER "# file manifests and pieces (PROTOCOL.md §18.9): NAME HEX\n"

static uint8_t vdata[VSIZE];
static const char *const hostile[] = {
    "../../etc/passwd",
    "/etc/shadow",
    "..",
    ".",
    ".bashrc",
    "gpj.\xe2\x80\xae"
    "exe.jpg",
    "a\\b:c",
    " . ",
    "\x01\x1b[31mred",
    "\xff\xfe bad utf8",
};
static const char *const cleaned[] = {
    "_.._etc_passwd", "_etc_shadow", "file", "file",      "bashrc",
    "gpj._exe.jpg",   "a_b_c",       "file", "__[31mred", "__ bad utf8",
};

static void vec_line(FILE *f, const char *name, const uint8_t *b, size_t n)
{
    char *hex = malloc(2 * n + 1);
    assert_non_null(hex);
    chp_hex_encode(b, n, hex);
    fprintf(f, "%s %s\n", name, hex);
    free(hex);
}

/* Every vector line, in order, into f. */
static void vectors(FILE *f)
{
    static uint8_t out[CHP_FILE_MANIFEST_MAX], piece[CHP_FILE_PIECE_HDR + CHP_FILE_PIECE];
    for (size_t i = 0; i < VSIZE; i++)
        vdata[i] = (uint8_t)(i % 251);
    chp_file_manifest m = {.size = VSIZE,
                           .piece_size = CHP_FILE_PIECE,
                           .count = chp_file_count(VSIZE),
                           .name = (const uint8_t *)"photo.jpg",
                           .name_len = 9,
                           .mime = "image/jpeg",
                           .mime_len = 10,
                           .caption = (const uint8_t *)"\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85",
                           .caption_len = 8};
    for (int i = 0; i < 16; i++)
        m.id[i] = (uint8_t)i;
    chp_file_hash(m.id, vdata, VSIZE, m.hash);
    size_t len = 0;
    assert_int_equal(chp_file_manifest_encode(&m, out, sizeof out, &len), CHP_OK);
    vec_line(f, "file.hash", m.hash, 32);
    vec_line(f, "file.manifest", out, len);
    chp_file_piece pc = {
        .index = 2, .data = vdata + 2 * CHP_FILE_PIECE, .len = chp_file_piece_len(VSIZE, 2)};
    memcpy(pc.id, m.id, 16);
    assert_int_equal(chp_file_piece_encode(&pc, piece, sizeof piece, &len), CHP_OK);
    vec_line(f, "file.piece.2", piece, len);
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        char name[64], safe[CHP_FILE_SAFE_NAME];
        chp_file_name_clean((const uint8_t *)hostile[i], strlen(hostile[i]), safe);
        snprintf(name, sizeof name, "file.name.%zu.in", i);
        vec_line(f, name, (const uint8_t *)hostile[i], strlen(hostile[i]));
        snprintf(name, sizeof name, "file.name.%zu.clean", i);
        vec_line(f, name, (const uint8_t *)safe, strlen(safe));
    }
}

static void test_vectors_match(void **state)
{
    (void)state;
    char path[4096], *want = NULL, *got = NULL;
    size_t wl = 0, gl = 0;
    const char *dir = getenv("CHP_VECTORS");
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/file.exp", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    FILE *w = open_memstream(&want, &wl);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, w);
    fclose(f);
    fclose(w);
    FILE *g = open_memstream(&got, &gl);
    fputs(VEC_HEADER, g);
    vectors(g);
    fclose(g);
    assert_string_equal(got, want);
    free(want);
    free(got);
}

static void test_names_safe(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        char safe[CHP_FILE_SAFE_NAME];
        chp_file_name_clean((const uint8_t *)hostile[i], strlen(hostile[i]), safe);
        assert_string_equal(safe, cleaned[i]);
    }
    /* long: cut at a character, the extension kept */
    char longn[300], safe[CHP_FILE_SAFE_NAME];
    for (int i = 0; i < 120; i++)
        memcpy(longn + 2 * i, "\xd8\xb3", 2);
    strcpy(longn + 240, ".jpeg");
    chp_file_name_clean((const uint8_t *)longn, strlen(longn), safe);
    assert_true(strlen(safe) <= CHP_FILE_SAFE_NAME - 1);
    assert_string_equal(safe + strlen(safe) - 5, ".jpeg");
    assert_true(chp_utf8_valid(safe, strlen(safe)));
    /* a zero-width-joiner bidi isolate (U+2066) and NUL */
    chp_file_name_clean((const uint8_t *)"a\xe2\x81\xa6"
                                         "b\0c",
                        7, safe);
    assert_string_equal(safe, "a_b_c");
    /* a leading '-' (after dots and spaces go) is never an option */
    static const char *const opt[][2] = {
        {"-rf", "_rf"}, {"--help.txt", "_-help.txt"}, {" .-x", "_x"}, {"a-b", "a-b"}, {"-", "_"}};
    for (size_t i = 0; i < sizeof opt / sizeof *opt; i++) {
        chp_file_name_clean((const uint8_t *)opt[i][0], strlen(opt[i][0]), safe);
        assert_string_equal(safe, opt[i][1]);
    }
}

static size_t mf(uint8_t *out, uint64_t size, uint32_t ps, uint32_t count, const char *name)
{
    chp_wr w;
    uint8_t z[32] = {0};
    chp_wr_init(&w, out, 1024);
    chp_wr_bytes(&w, z, 16);
    chp_wr_u64(&w, size);
    chp_wr_u32(&w, ps);
    chp_wr_u32(&w, count);
    chp_wr_bytes(&w, z, 32);
    chp_wr_u8(&w, (uint8_t)strlen(name));
    chp_wr_bytes(&w, name, strlen(name));
    chp_wr_u8(&w, 0);
    chp_wr_u16(&w, 0);
    return w.off;
}

static void test_hostile_manifests(void **state)
{
    (void)state;
    uint8_t b[1024];
    chp_file_manifest m;
    size_t n = mf(b, 40000, CHP_FILE_PIECE, 3, "ok");
    assert_int_equal(chp_file_manifest_decode(b, n, &m), CHP_OK);
    n = mf(b, 40000, CHP_FILE_PIECE, 2, "ok"); /* count does not match */
    assert_int_equal(chp_file_manifest_decode(b, n, &m), CHP_E_MALFORMED);
    n = mf(b, 40000, 4096, 10, "ok"); /* another piece size */
    assert_int_equal(chp_file_manifest_decode(b, n, &m), CHP_E_MALFORMED);
    n = mf(b, UINT64_MAX, CHP_FILE_PIECE, 0, "ok"); /* beyond any file */
    assert_int_equal(chp_file_manifest_decode(b, n, &m), CHP_E_MALFORMED);
    n = mf(b, 1, CHP_FILE_PIECE, 1, ""); /* no name */
    assert_int_equal(chp_file_manifest_decode(b, n, &m), CHP_E_MALFORMED);
    n = mf(b, 4ull << 30, CHP_FILE_PIECE, chp_file_count(4ull << 30), "big");
    assert_int_equal(chp_file_manifest_decode(b, n, &m), CHP_OK); /* max-file refuses it */
    n = mf(b, 1, CHP_FILE_PIECE, 1, "ok");
    b[n] = 0;
    assert_int_equal(chp_file_manifest_decode(b, n + 1, &m), CHP_E_TRAILING);
    assert_int_equal(chp_file_manifest_decode(b, 40, &m), CHP_E_TRUNCATED);
    /* a piece of the wrong length does not fit */
    chp_file_piece pc = {.index = 0, .data = b, .len = 100};
    n = mf(b, 40000, CHP_FILE_PIECE, 3, "ok");
    assert_int_equal(chp_file_manifest_decode(b, n, &m), CHP_OK);
    assert_false(chp_file_piece_fits(&m, &pc));
    pc.len = CHP_FILE_PIECE;
    assert_true(chp_file_piece_fits(&m, &pc));
    pc.index = 3;
    assert_false(chp_file_piece_fits(&m, &pc));
}

/* The manifest hash (file.h): one digest per piece payload, so it binds
 * every piece to its file and its place; the streaming forms agree with
 * each other and with the digest the piece's envelope signs. */
static void test_file_hash(void **state)
{
    (void)state;
    static uint8_t data[3 * CHP_FILE_PIECE + 5], swapped[sizeof data],
        payload[CHP_FILE_PIECE_HDR + CHP_FILE_PIECE];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 8));
    uint8_t id[16] = {9}, other[16] = {10}, h[32], g[32], d[32];
    const uint64_t sizes[] = {0, 1, CHP_FILE_PIECE, CHP_FILE_PIECE + 1, sizeof data};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        uint64_t size = sizes[k];
        chp_file_hash(id, data, size, h);
        /* by digests, as the sender makes it while copying the file in */
        chp_file_hash_ctx c;
        chp_file_hash_init(&c, id);
        for (uint32_t i = 0; i < chp_file_count(size); i++) {
            chp_file_piece pc = {.index = i,
                                 .data = data + (size_t)i * CHP_FILE_PIECE,
                                 .len = chp_file_piece_len(size, i)};
            memcpy(pc.id, id, 16);
            size_t n = 0;
            assert_int_equal(chp_file_piece_encode(&pc, payload, sizeof payload, &n), CHP_OK);
            chp_file_piece_digest(id, i, pc.data, pc.len, d);
            chp_hash(g, 32, payload, n, NULL, 0); /* what the signed statement hashes */
            assert_memory_equal(d, g, 32);
            chp_file_hash_digest(&c, d);
        }
        chp_file_hash_final(&c, g);
        assert_memory_equal(g, h, 32);
        /* by bytes cut anywhere, as a saved file is read back */
        chp_file_hash_init(&c, id);
        for (size_t off = 0, step = 1; off < size; off += step, step = step * 3 + 7)
            chp_file_hash_update(&c, data + off, size - off < step ? size - off : step);
        chp_file_hash_final(&c, g);
        assert_memory_equal(g, h, 32);
    }
    /* the same bytes under another file id, two pieces swapped, one byte
     * altered: each a different hash */
    chp_file_hash(id, data, sizeof data, h);
    chp_file_hash(other, data, sizeof data, g);
    assert_memory_not_equal(g, h, 32);
    memcpy(swapped, data, sizeof data);
    memcpy(swapped, data + CHP_FILE_PIECE, CHP_FILE_PIECE);
    memcpy(swapped + CHP_FILE_PIECE, data, CHP_FILE_PIECE);
    chp_file_hash(id, swapped, sizeof data, g);
    assert_memory_not_equal(g, h, 32);
    memcpy(swapped, data, sizeof data);
    swapped[sizeof data - 1] ^= 1;
    chp_file_hash(id, swapped, sizeof data, g);
    assert_memory_not_equal(g, h, 32);
    /* not the old definition (BLAKE2b-256 of the bytes) */
    chp_hash(g, 32, data, sizeof data, NULL, 0);
    assert_memory_not_equal(g, h, 32);
}

int main(int argc, char **argv)
{
    if (chp_crypto_init() != CHP_OK)
        return 1;
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        FILE *f = fopen(argv[2], "w");
        if (!f)
            return 1;
        fputs(VEC_HEADER, f);
        vectors(f);
        return fclose(f) != 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_match),
        cmocka_unit_test(test_names_safe),
        cmocka_unit_test(test_hostile_manifests),
        cmocka_unit_test(test_file_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
