/* test_identity.c - identity key pairs and the sealed identity file
 * (PROTOCOL.md sections 3 and 5): determinism, the byte layout checked
 * independently, every structural fault and every single-byte corruption. */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/err.h"
#include "proto/identity.h"
#include "tests/unit/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* Fast Argon2id limits for tests: libsodium's minimum (1 pass, 8 KiB). */
#define T_OPS     1
#define T_MEM_KIB 8

#define KF_HDR    57 /* magic 8, mode 1, ops 4, mem 4, salt 16, nonce 24 */
#define OFF_MODE  8
#define OFF_OPS   9
#define OFF_MEM   13
#define OFF_SALT  17
#define OFF_NONCE 33
#define OFF_CT    57

/* A seed that looks random (so no window of it is found by chance in the
 * structured parts of a file). */
static void test_seed(unsigned i, uint8_t seed[32])
{
    uint8_t in[4] = {'s', 'e', 'e', (uint8_t)i};
    chp_hash(seed, 32, in, sizeof in, NULL, 0);
}

/* A pointer that must be overwritten with NULL by a failing call; never
 * dereferenced. */
static char not_an_identity;
#define SENTINEL ((chp_identity *)(void *)&not_an_identity)

static chp_identity *from_seed_n(unsigned i)
{
    uint8_t seed[32];
    chp_identity *id = NULL;
    test_seed(i, seed);
    assert_int_equal(chp_identity_from_seed(seed, &id), CHP_OK);
    assert_non_null(id);
    return id;
}

static void seal_pass(const chp_identity *id, uint8_t start, uint8_t out[CHP_KEYFILE_BYTES])
{
    tu_ctr c = {.ctr = start};
    chp_rng rng = tu_ctr_rng(&c);
    assert_int_equal(
        chp_identity_seal_passphrase(id, "correct horse", 13, T_OPS, T_MEM_KIB, &rng, out), CHP_OK);
    assert_int_equal(c.calls, 2);
    assert_int_equal(c.bytes, 16 + 24); /* salt, then nonce */
}

static void seal_with_key(const chp_identity *id, const uint8_t key[32], uint8_t start,
                          uint8_t out[CHP_KEYFILE_BYTES])
{
    tu_ctr c = {.ctr = start};
    chp_rng rng = tu_ctr_rng(&c);
    assert_int_equal(chp_identity_seal_key(id, key, &rng, out), CHP_OK);
    assert_int_equal(c.bytes, 24); /* the nonce only */
}

static void file_key(uint8_t key[32])
{
    for (size_t i = 0; i < 32; i++)
        key[i] = (uint8_t)(0xa0 + i);
}

/* The result of opening buf in both modes (and asking its mode), for tests
 * that expect a structural fault. */
static void expect_keyfile_error(const uint8_t *buf, size_t len)
{
    uint8_t key[32];
    int mode = -1;
    chp_identity *out = SENTINEL;
    file_key(key);
    assert_int_equal(chp_keyfile_mode(buf, len, &mode), CHP_E_KEYFILE);
    assert_int_equal(mode, -1);
    assert_int_equal(chp_identity_unseal_passphrase(buf, len, "correct horse", 13, &out),
                     CHP_E_KEYFILE);
    assert_null(out);
    out = SENTINEL;
    assert_int_equal(chp_identity_unseal_key(buf, len, key, &out), CHP_E_KEYFILE);
    assert_null(out);
}

static void test_crypto_init(void **state)
{
    (void)state;
    assert_int_equal(chp_crypto_init(), CHP_OK);
}

/* ---- key pairs ---- */

static void test_from_seed_deterministic(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sk[64];
    test_seed(1, seed);
    chp_identity *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(chp_identity_from_seed(seed, &a), CHP_OK);
    assert_int_equal(chp_identity_from_seed(seed, &b), CHP_OK);
    assert_ptr_not_equal(a, b);
    assert_memory_equal(chp_identity_pk(a), chp_identity_pk(b), 32);
    assert_memory_equal(chp_identity_xpk(a), chp_identity_xpk(b), 32);
    chp_sign_seed_keypair(seed, pk, sk);
    assert_memory_equal(chp_identity_pk(a), pk, 32);
    seed[0] ^= 1;
    assert_int_equal(chp_identity_from_seed(seed, &c), CHP_OK);
    assert_memory_not_equal(chp_identity_pk(a), chp_identity_pk(c), 32);
    assert_memory_not_equal(chp_identity_xpk(a), chp_identity_xpk(c), 32);
    chp_identity_destroy(&a);
    chp_identity_destroy(&b);
    chp_identity_destroy(&c);
}

static void test_from_seed_rfc8032(void **state)
{
    (void)state;
    static const uint8_t seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60,
                                     0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
                                     0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
                                     0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
    static const uint8_t pk[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                   0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                   0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    chp_identity *id = NULL;
    assert_int_equal(chp_identity_from_seed(seed, &id), CHP_OK);
    assert_memory_equal(chp_identity_pk(id), pk, 32);
    chp_identity_destroy(&id);
}

static void test_generate_draws_seed_from_rng(void **state)
{
    (void)state;
    tu_ctr c = {.ctr = 0x10};
    chp_rng rng = tu_ctr_rng(&c);
    chp_identity *a = NULL, *b = NULL, *g = NULL;
    tu_ctr twin = {.ctr = 0x10};
    uint8_t seed[32];
    tu_ctr_fill(&twin, seed, sizeof seed); /* what generate must draw */
    assert_int_equal(chp_identity_generate(&rng, &g), CHP_OK);
    assert_int_equal(c.bytes, 32);
    assert_int_equal(chp_identity_from_seed(seed, &a), CHP_OK);
    assert_memory_equal(chp_identity_pk(g), chp_identity_pk(a), 32);
    assert_memory_equal(chp_identity_xpk(g), chp_identity_xpk(a), 32);
    /* The stream moved on: the next identity is another one. */
    assert_int_equal(chp_identity_generate(&rng, &b), CHP_OK);
    assert_memory_not_equal(chp_identity_pk(g), chp_identity_pk(b), 32);
    chp_identity_destroy(&a);
    chp_identity_destroy(&b);
    chp_identity_destroy(&g);
}

static void test_generate_system_rng(void **state)
{
    (void)state;
    chp_identity *a = NULL, *b = NULL;
    assert_int_equal(chp_identity_generate(chp_rng_system(), &a), CHP_OK);
    assert_int_equal(chp_identity_generate(chp_rng_system(), &b), CHP_OK);
    assert_int_equal(chp_sign_pk_valid(chp_identity_pk(a)), 1);
    assert_memory_not_equal(chp_identity_pk(a), chp_identity_pk(b), 32);
    chp_identity_destroy(&a);
    chp_identity_destroy(&b);
}

static void test_destroy_null_safe(void **state)
{
    (void)state;
    chp_identity_destroy(NULL);
    chp_identity *id = NULL;
    chp_identity_destroy(&id);
    assert_null(id);
    id = from_seed_n(2);
    chp_identity_destroy(&id);
    assert_null(id);
    chp_identity_destroy(&id); /* twice is harmless */
    assert_null(id);
}

static void test_xpk_is_birational_map_of_pk(void **state)
{
    (void)state;
    for (unsigned i = 0; i < 8; i++) {
        chp_identity *id = from_seed_n(i);
        uint8_t x[32];
        assert_int_equal(chp_ed_pk_to_x(chp_identity_pk(id), x), CHP_OK);
        assert_memory_equal(chp_identity_xpk(id), x, 32);
        /* Borrowed pointers are stable. */
        assert_ptr_equal(chp_identity_pk(id), chp_identity_pk(id));
        chp_identity_destroy(&id);
    }
}

static void test_sign_verifies_under_pk(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sk[64], sig[64], want[64];
    test_seed(3, seed);
    chp_sign_seed_keypair(seed, pk, sk);
    chp_identity *id = NULL;
    assert_int_equal(chp_identity_from_seed(seed, &id), CHP_OK);
    chp_identity_sign(id, "message", 7, sig);
    chp_sign(want, "message", 7, sk);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(chp_sign_verify(sig, "message", 7, chp_identity_pk(id)), CHP_OK);
    assert_int_equal(chp_sign_verify(sig, "messagE", 7, chp_identity_pk(id)), CHP_E_SIGNATURE);
    chp_identity_sign(id, NULL, 0, sig);
    assert_int_equal(chp_sign_verify(sig, "", 0, chp_identity_pk(id)), CHP_OK);
    chp_identity_destroy(&id);
}

static void test_dh_agreement(void **state)
{
    (void)state;
    chp_identity *a = from_seed_n(10), *b = from_seed_n(11), *c = from_seed_n(12);
    uint8_t ab[32], ba[32], ac[32];
    assert_int_equal(chp_identity_dh(a, chp_identity_xpk(b), ab), CHP_OK);
    assert_int_equal(chp_identity_dh(b, chp_identity_xpk(a), ba), CHP_OK);
    assert_memory_equal(ab, ba, 32);
    assert_false(tu_all_zero(ab, 32));
    assert_int_equal(chp_identity_dh(a, chp_identity_xpk(c), ac), CHP_OK);
    assert_memory_not_equal(ab, ac, 32);
    /* Anyone holding only the ID (Ed25519 key) can reach the same secret. */
    uint8_t seed[32], pk[32], sk[64], xsk[32], xpk_a[32], s[32];
    test_seed(11, seed);
    chp_sign_seed_keypair(seed, pk, sk);
    chp_ed_sk_to_x(sk, xsk);
    assert_int_equal(chp_ed_pk_to_x(chp_identity_pk(a), xpk_a), CHP_OK);
    assert_int_equal(chp_x25519(s, xsk, xpk_a), CHP_OK);
    assert_memory_equal(s, ab, 32);
    chp_identity_destroy(&a);
    chp_identity_destroy(&b);
    chp_identity_destroy(&c);
}

static void test_dh_low_order_point(void **state)
{
    (void)state;
    chp_identity *a = from_seed_n(13);
    uint8_t zero[32] = {0}, one[32] = {1}, shared[32];
    memset(shared, 0xee, sizeof shared);
    assert_int_equal(chp_identity_dh(a, zero, shared), CHP_E_DH);
    assert_true(tu_all_zero(shared, 32));
    memset(shared, 0xee, sizeof shared);
    assert_int_equal(chp_identity_dh(a, one, shared), CHP_E_DH);
    assert_true(tu_all_zero(shared, 32));
    chp_identity_destroy(&a);
}

/* KDF(seed, "chapar-storage-key-v1", "") = H32(label || 0x00, key = seed). */
static void test_storage_key(void **state)
{
    (void)state;
    static const char label[] = "chapar-storage-key-v1";
    uint8_t seed[32], want[32], k1[32], k2[32], other[32];
    test_seed(20, seed);
    chp_hash(want, 32, label, sizeof label, seed, 32);
    chp_identity *a = NULL, *b = from_seed_n(21);
    assert_int_equal(chp_identity_from_seed(seed, &a), CHP_OK);
    chp_identity_storage_key(a, k1);
    chp_identity_storage_key(a, k2);
    assert_memory_equal(k1, want, 32);
    assert_memory_equal(k1, k2, 32);
    assert_memory_not_equal(k1, seed, 32);
    chp_identity_storage_key(b, other);
    assert_memory_not_equal(k1, other, 32);
    chp_identity_destroy(&a);
    chp_identity_destroy(&b);
}

/* ---- sealing with a passphrase ---- */

/* The file is exactly PROTOCOL.md section 5: opened here by hand. */
static void test_seal_passphrase_layout(void **state)
{
    (void)state;
    uint8_t seed[32], buf[CHP_KEYFILE_BYTES], key[32], back[32];
    test_seed(30, seed);
    chp_identity *id = NULL;
    assert_int_equal(chp_identity_from_seed(seed, &id), CHP_OK);
    seal_pass(id, 0x00, buf);
    assert_memory_equal(buf, "CHAPARK1", 8);
    assert_int_equal(buf[OFF_MODE], CHP_KEYFILE_MODE_PASSPHRASE);
    assert_int_equal(chp_be32(buf + OFF_OPS), T_OPS);
    assert_int_equal(chp_be32(buf + OFF_MEM), T_MEM_KIB);
    tu_ctr twin = {.ctr = 0x00}; /* the stream seal_pass drew from */
    uint8_t salt[16], nonce[24];
    tu_ctr_fill(&twin, salt, sizeof salt);   /* the first draw */
    tu_ctr_fill(&twin, nonce, sizeof nonce); /* the second */
    assert_memory_equal(buf + OFF_SALT, salt, 16);
    assert_memory_equal(buf + OFF_NONCE, nonce, 24);
    assert_int_equal(
        chp_pwhash(key, 32, "correct horse", 13, buf + OFF_SALT, T_OPS, (uint64_t)T_MEM_KIB * 1024),
        CHP_OK);
    assert_int_equal(chp_aead_decrypt(back, buf + OFF_CT, 48, buf, KF_HDR, buf + OFF_NONCE, key),
                     CHP_OK);
    assert_memory_equal(back, seed, 32);
    chp_identity_destroy(&id);
}

static void test_seal_passphrase_round_trip(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    chp_identity *id = from_seed_n(31), *back = NULL;
    seal_pass(id, 0x40, buf);
    int mode = 0;
    assert_int_equal(chp_keyfile_mode(buf, sizeof buf, &mode), CHP_OK);
    assert_int_equal(mode, CHP_KEYFILE_MODE_PASSPHRASE);
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "correct horse", 13, &back),
                     CHP_OK);
    assert_non_null(back);
    assert_memory_equal(chp_identity_pk(back), chp_identity_pk(id), 32);
    assert_memory_equal(chp_identity_xpk(back), chp_identity_xpk(id), 32);
    /* The secret came back too, not just the public half. */
    uint8_t s1[64], s2[64];
    chp_identity_sign(id, "x", 1, s1);
    chp_identity_sign(back, "x", 1, s2);
    assert_memory_equal(s1, s2, 64);
    chp_identity_destroy(&back);
    chp_identity_destroy(&id);
}

/* Limits are read from the file, not assumed. */
static void test_seal_passphrase_other_limits(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    tu_ctr c = {.ctr = 7};
    chp_rng rng = tu_ctr_rng(&c);
    chp_identity *id = from_seed_n(32), *back = NULL;
    assert_int_equal(chp_identity_seal_passphrase(id, "pw", 2, 3, 16, &rng, buf), CHP_OK);
    assert_int_equal(chp_be32(buf + OFF_OPS), 3);
    assert_int_equal(chp_be32(buf + OFF_MEM), 16);
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "pw", 2, &back), CHP_OK);
    assert_memory_equal(chp_identity_pk(back), chp_identity_pk(id), 32);
    chp_identity_destroy(&back);
    chp_identity_destroy(&id);
}

static void test_seal_passphrase_empty_passphrase(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    tu_ctr c = {.ctr = 9};
    chp_rng rng = tu_ctr_rng(&c);
    chp_identity *id = from_seed_n(33), *back = NULL;
    /* NULL with length 0 is the same empty passphrase as "". */
    assert_int_equal(chp_identity_seal_passphrase(id, NULL, 0, T_OPS, T_MEM_KIB, &rng, buf),
                     CHP_OK);
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "", 0, &back), CHP_OK);
    assert_memory_equal(chp_identity_pk(back), chp_identity_pk(id), 32);
    chp_identity_destroy(&back);
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, " ", 1, &back),
                     CHP_E_PASSPHRASE);
    chp_identity_destroy(&id);
}

static void test_seal_deterministic_with_rng(void **state)
{
    (void)state;
    uint8_t a[CHP_KEYFILE_BYTES], b[CHP_KEYFILE_BYTES], c[CHP_KEYFILE_BYTES];
    chp_identity *id = from_seed_n(34);
    seal_pass(id, 0x55, a);
    seal_pass(id, 0x55, b);
    assert_memory_equal(a, b, sizeof a);
    seal_pass(id, 0x56, c); /* other salt and nonce: nothing after the limits matches */
    assert_memory_equal(a, c, OFF_SALT);
    assert_memory_not_equal(a + OFF_SALT, c + OFF_SALT, 16);
    assert_memory_not_equal(a + OFF_CT, c + OFF_CT, 48);
    chp_identity_destroy(&id);
}

static void test_unseal_wrong_passphrase(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    chp_identity *id = from_seed_n(35), *out = SENTINEL;
    seal_pass(id, 0x20, buf);
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "correct horsE", 13, &out),
                     CHP_E_PASSPHRASE);
    assert_null(out);
    out = SENTINEL;
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "correct horse", 12, &out),
                     CHP_E_PASSPHRASE);
    assert_null(out);
    out = SENTINEL;
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "", 0, &out),
                     CHP_E_PASSPHRASE);
    assert_null(out);
    chp_identity_destroy(&id);
}

/* passlen is the length: bytes after an embedded NUL count. */
static void test_passphrase_length_is_binding(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    tu_ctr c = {.ctr = 1};
    chp_rng rng = tu_ctr_rng(&c);
    chp_identity *id = from_seed_n(36), *out = NULL;
    assert_int_equal(chp_identity_seal_passphrase(id, "ab\0c", 4, T_OPS, T_MEM_KIB, &rng, buf),
                     CHP_OK);
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "ab\0d", 4, &out),
                     CHP_E_PASSPHRASE);
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "ab", 2, &out),
                     CHP_E_PASSPHRASE);
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "ab\0c", 4, &out), CHP_OK);
    chp_identity_destroy(&out);
    chp_identity_destroy(&id);
}

static void test_seal_passphrase_limits_too_large(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    tu_ctr c = {.ctr = 0};
    chp_rng rng = tu_ctr_rng(&c);
    chp_identity *id = from_seed_n(37);
    memset(buf, 0xee, sizeof buf);
    assert_int_equal(
        chp_identity_seal_passphrase(id, "pw", 2, CHP_KEYFILE_OPS_MAX + 1, T_MEM_KIB, &rng, buf),
        CHP_E_ARG);
    assert_int_equal(
        chp_identity_seal_passphrase(id, "pw", 2, T_OPS, CHP_KEYFILE_MEM_MAX_KIB + 1, &rng, buf),
        CHP_E_ARG);
    assert_int_equal(chp_identity_seal_passphrase(id, "pw", 2, UINT32_MAX, UINT32_MAX, &rng, buf),
                     CHP_E_ARG);
    assert_int_equal(c.bytes, 0); /* refused before any work */
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xee);
    chp_identity_destroy(&id);
}

/* Below Argon2id's own minimum the KDF refuses (and nothing is written). */
static void test_seal_passphrase_limits_too_small(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    tu_ctr c = {.ctr = 0};
    chp_rng rng = tu_ctr_rng(&c);
    chp_identity *id = from_seed_n(38);
    memset(buf, 0xee, sizeof buf);
    assert_int_equal(chp_identity_seal_passphrase(id, "pw", 2, 0, T_MEM_KIB, &rng, buf), CHP_E_KDF);
    assert_int_equal(chp_identity_seal_passphrase(id, "pw", 2, T_OPS, T_MEM_KIB - 1, &rng, buf),
                     CHP_E_KDF);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xee);
    chp_identity_destroy(&id);
}

/* ---- sealing with a key ---- */

static void test_seal_key_layout(void **state)
{
    (void)state;
    uint8_t seed[32], key[32], buf[CHP_KEYFILE_BYTES], back[32];
    test_seed(40, seed);
    file_key(key);
    chp_identity *id = NULL;
    assert_int_equal(chp_identity_from_seed(seed, &id), CHP_OK);
    seal_with_key(id, key, 0x80, buf);
    assert_memory_equal(buf, "CHAPARK1", 8);
    assert_int_equal(buf[OFF_MODE], CHP_KEYFILE_MODE_KEY);
    assert_true(tu_all_zero(buf + OFF_OPS, 4 + 4 + 16)); /* ops, mem, salt */
    tu_ctr twin = {.ctr = 0x80};                         /* the stream seal_with_key drew from */
    uint8_t nonce[24];
    tu_ctr_fill(&twin, nonce, sizeof nonce);
    assert_memory_equal(buf + OFF_NONCE, nonce, 24);
    assert_int_equal(chp_aead_decrypt(back, buf + OFF_CT, 48, buf, KF_HDR, buf + OFF_NONCE, key),
                     CHP_OK);
    assert_memory_equal(back, seed, 32);
    chp_identity_destroy(&id);
}

static void test_seal_key_round_trip(void **state)
{
    (void)state;
    uint8_t key[32], buf[CHP_KEYFILE_BYTES];
    file_key(key);
    chp_identity *id = from_seed_n(41), *back = NULL;
    seal_with_key(id, key, 0x11, buf);
    int mode = 0;
    assert_int_equal(chp_keyfile_mode(buf, sizeof buf, &mode), CHP_OK);
    assert_int_equal(mode, CHP_KEYFILE_MODE_KEY);
    assert_int_equal(chp_identity_unseal_key(buf, sizeof buf, key, &back), CHP_OK);
    assert_non_null(back);
    assert_memory_equal(chp_identity_pk(back), chp_identity_pk(id), 32);
    assert_memory_equal(chp_identity_xpk(back), chp_identity_xpk(id), 32);
    chp_identity_destroy(&back);
    chp_identity_destroy(&id);
}

static void test_unseal_key_wrong_key(void **state)
{
    (void)state;
    uint8_t key[32], buf[CHP_KEYFILE_BYTES];
    file_key(key);
    chp_identity *id = from_seed_n(42), *out = SENTINEL;
    seal_with_key(id, key, 0x11, buf);
    for (size_t i = 0; i < 32; i += 31) {
        key[i] ^= 0x01;
        out = SENTINEL;
        assert_int_equal(chp_identity_unseal_key(buf, sizeof buf, key, &out), CHP_E_PASSPHRASE);
        assert_null(out);
        key[i] ^= 0x01;
    }
    chp_identity_destroy(&id);
}

/* ---- structural faults ---- */

static void test_unseal_mode_mismatch(void **state)
{
    (void)state;
    uint8_t key[32], pbuf[CHP_KEYFILE_BYTES], kbuf[CHP_KEYFILE_BYTES];
    file_key(key);
    chp_identity *id = from_seed_n(43), *out = SENTINEL;
    seal_pass(id, 0, pbuf);
    seal_with_key(id, key, 0, kbuf);
    assert_int_equal(chp_identity_unseal_key(pbuf, sizeof pbuf, key, &out), CHP_E_KEYFILE);
    assert_null(out);
    out = SENTINEL;
    assert_int_equal(chp_identity_unseal_passphrase(kbuf, sizeof kbuf, "correct horse", 13, &out),
                     CHP_E_KEYFILE);
    assert_null(out);
    chp_identity_destroy(&id);
}

static void test_keyfile_mode_boundaries(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    chp_identity *id = from_seed_n(44);
    seal_pass(id, 0, buf);
    int mode = 0;
    /* The largest limits a reader accepts, and the smallest. */
    chp_put_be32(buf + OFF_OPS, CHP_KEYFILE_OPS_MAX);
    chp_put_be32(buf + OFF_MEM, CHP_KEYFILE_MEM_MAX_KIB);
    assert_int_equal(chp_keyfile_mode(buf, sizeof buf, &mode), CHP_OK);
    assert_int_equal(mode, CHP_KEYFILE_MODE_PASSPHRASE);
    chp_put_be32(buf + OFF_OPS, 1);
    chp_put_be32(buf + OFF_MEM, 8);
    mode = 0;
    assert_int_equal(chp_keyfile_mode(buf, sizeof buf, &mode), CHP_OK);
    assert_int_equal(mode, CHP_KEYFILE_MODE_PASSPHRASE);
    chp_identity_destroy(&id);
}

static void test_keyfile_truncated(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    chp_identity *id = from_seed_n(45);
    seal_pass(id, 0, buf);
    for (size_t len = 0; len < CHP_KEYFILE_BYTES; len++)
        expect_keyfile_error(buf, len);
    uint8_t key[32], kbuf[CHP_KEYFILE_BYTES];
    file_key(key);
    seal_with_key(id, key, 0, kbuf);
    for (size_t len = 0; len < CHP_KEYFILE_BYTES; len++)
        expect_keyfile_error(kbuf, len);
    chp_identity_destroy(&id);
}

static void test_keyfile_extended(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES + 64];
    memset(buf, 0, sizeof buf);
    chp_identity *id = from_seed_n(46);
    seal_pass(id, 0, buf);
    for (size_t extra = 1; extra <= 64; extra *= 2)
        expect_keyfile_error(buf, CHP_KEYFILE_BYTES + extra);
    uint8_t key[32];
    file_key(key);
    seal_with_key(id, key, 0, buf);
    expect_keyfile_error(buf, CHP_KEYFILE_BYTES + 1);
    chp_identity_destroy(&id);
}

static void test_keyfile_bad_magic(void **state)
{
    (void)state;
    uint8_t buf[CHP_KEYFILE_BYTES];
    chp_identity *id = from_seed_n(47);
    seal_pass(id, 0, buf);
    for (size_t i = 0; i < 8; i++) {
        buf[i] ^= 0x20; /* e.g. "chaparK1": case matters */
        expect_keyfile_error(buf, sizeof buf);
        buf[i] ^= 0x20;
    }
    memcpy(buf, "CHAPARK2", 8); /* a future version is not this one */
    expect_keyfile_error(buf, sizeof buf);
    chp_identity_destroy(&id);
}

static void test_keyfile_unknown_mode(void **state)
{
    (void)state;
    static const uint8_t modes[] = {0, 3, 4, 0x81, 0xff};
    uint8_t buf[CHP_KEYFILE_BYTES], key[32];
    file_key(key);
    chp_identity *id = from_seed_n(48);
    seal_with_key(id, key, 0, buf); /* zero limits and salt: only the mode is wrong */
    for (size_t i = 0; i < sizeof modes; i++) {
        buf[OFF_MODE] = modes[i];
        expect_keyfile_error(buf, sizeof buf);
    }
    chp_identity_destroy(&id);
}

static void test_keyfile_ops_out_of_range(void **state)
{
    (void)state;
    static const uint32_t bad[] = {0, CHP_KEYFILE_OPS_MAX + 1, 1000, UINT32_MAX};
    uint8_t buf[CHP_KEYFILE_BYTES];
    chp_identity *id = from_seed_n(49);
    seal_pass(id, 0, buf);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chp_put_be32(buf + OFF_OPS, bad[i]);
        expect_keyfile_error(buf, sizeof buf);
    }
    chp_identity_destroy(&id);
}

static void test_keyfile_mem_out_of_range(void **state)
{
    (void)state;
    static const uint32_t bad[] = {0, T_MEM_KIB - 1, CHP_KEYFILE_MEM_MAX_KIB + 1, UINT32_MAX};
    uint8_t buf[CHP_KEYFILE_BYTES];
    chp_identity *id = from_seed_n(50);
    seal_pass(id, 0, buf);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chp_put_be32(buf + OFF_MEM, bad[i]);
        expect_keyfile_error(buf, sizeof buf);
    }
    chp_identity_destroy(&id);
}

/* Mode 2 has one valid encoding: limits and salt zero. */
static void test_keyfile_key_mode_nonzero_fields(void **state)
{
    (void)state;
    uint8_t key[32], buf[CHP_KEYFILE_BYTES];
    file_key(key);
    chp_identity *id = from_seed_n(51);
    seal_with_key(id, key, 0, buf);
    for (size_t i = OFF_OPS; i < OFF_NONCE; i++) {
        buf[i] = 1;
        expect_keyfile_error(buf, sizeof buf);
        buf[i] = 0;
    }
    chp_identity_destroy(&id);
}

/* ---- corruption anywhere ---- */

/* The error a reader must give for buf: structure first (as PROTOCOL.md
 * section 5 states it), else the authentication failure. */
static int expected_error(const uint8_t *buf, int want_mode)
{
    if (memcmp(buf, "CHAPARK1", 8) != 0)
        return CHP_E_KEYFILE;
    uint32_t ops = chp_be32(buf + OFF_OPS), mem = chp_be32(buf + OFF_MEM);
    if (buf[OFF_MODE] == CHP_KEYFILE_MODE_PASSPHRASE) {
        if (ops < 1 || ops > CHP_KEYFILE_OPS_MAX || mem < 8 || mem > CHP_KEYFILE_MEM_MAX_KIB)
            return CHP_E_KEYFILE;
    } else if (buf[OFF_MODE] == CHP_KEYFILE_MODE_KEY) {
        if (!tu_all_zero(buf + OFF_OPS, 4 + 4 + 16))
            return CHP_E_KEYFILE;
    } else {
        return CHP_E_KEYFILE;
    }
    return buf[OFF_MODE] == want_mode ? CHP_E_PASSPHRASE : CHP_E_KEYFILE;
}

static void test_flip_any_byte_passphrase_file(void **state)
{
    (void)state;
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    uint8_t buf[CHP_KEYFILE_BYTES];
    chp_identity *id = from_seed_n(52);
    seal_pass(id, 0x33, buf);
    size_t auth_failures = 0;
    for (size_t m = 0; m < sizeof masks; m++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            buf[i] ^= masks[m];
            int want = expected_error(buf, CHP_KEYFILE_MODE_PASSPHRASE);
            chp_identity *out = SENTINEL;
            int rc = chp_identity_unseal_passphrase(buf, sizeof buf, "correct horse", 13, &out);
            if (rc != want)
                fail_msg("byte %zu ^ 0x%02x: got %s, want %s", i, masks[m], chp_errname(rc),
                         chp_errname(want));
            assert_null(out);
            auth_failures += rc == CHP_E_PASSPHRASE;
            buf[i] ^= masks[m];
        }
    }
    /* Salt, nonce and ciphertext (88 bytes) at least, per mask. */
    assert_true(auth_failures >= 3 * 88);
    chp_identity *back = NULL;
    assert_int_equal(chp_identity_unseal_passphrase(buf, sizeof buf, "correct horse", 13, &back),
                     CHP_OK);
    chp_identity_destroy(&back);
    chp_identity_destroy(&id);
}

static void test_flip_any_byte_key_file(void **state)
{
    (void)state;
    uint8_t key[32], buf[CHP_KEYFILE_BYTES];
    file_key(key);
    chp_identity *id = from_seed_n(53);
    seal_with_key(id, key, 0x44, buf);
    for (unsigned mask = 1; mask < 256; mask++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            buf[i] ^= (uint8_t)mask;
            int want = expected_error(buf, CHP_KEYFILE_MODE_KEY);
            chp_identity *out = SENTINEL;
            int rc = chp_identity_unseal_key(buf, sizeof buf, key, &out);
            if (rc != want)
                fail_msg("byte %zu ^ 0x%02x: got %s, want %s", i, mask, chp_errname(rc),
                         chp_errname(want));
            assert_null(out);
            buf[i] ^= (uint8_t)mask;
        }
    }
    chp_identity *back = NULL;
    assert_int_equal(chp_identity_unseal_key(buf, sizeof buf, key, &back), CHP_OK);
    chp_identity_destroy(&back);
    chp_identity_destroy(&id);
}

static void test_seed_never_in_sealed_bytes(void **state)
{
    (void)state;
    uint8_t key[32], seed[32], buf[CHP_KEYFILE_BYTES];
    file_key(key);
    for (unsigned n = 60; n < 68; n++) {
        test_seed(n, seed);
        chp_identity *id = NULL;
        assert_int_equal(chp_identity_from_seed(seed, &id), CHP_OK);
        for (int mode = 0; mode < 2; mode++) {
            if (mode == 0)
                seal_pass(id, (uint8_t)n, buf);
            else
                seal_with_key(id, key, (uint8_t)n, buf);
            /* Not the seed, nor any 6-byte piece of it. */
            for (size_t off = 0; off + 6 <= 32; off++)
                assert_false(tu_contains(buf, sizeof buf, seed + off, 6));
        }
        chp_identity_destroy(&id);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_init),
        cmocka_unit_test(test_from_seed_deterministic),
        cmocka_unit_test(test_from_seed_rfc8032),
        cmocka_unit_test(test_generate_draws_seed_from_rng),
        cmocka_unit_test(test_generate_system_rng),
        cmocka_unit_test(test_destroy_null_safe),
        cmocka_unit_test(test_xpk_is_birational_map_of_pk),
        cmocka_unit_test(test_sign_verifies_under_pk),
        cmocka_unit_test(test_dh_agreement),
        cmocka_unit_test(test_dh_low_order_point),
        cmocka_unit_test(test_storage_key),
        cmocka_unit_test(test_seal_passphrase_layout),
        cmocka_unit_test(test_seal_passphrase_round_trip),
        cmocka_unit_test(test_seal_passphrase_other_limits),
        cmocka_unit_test(test_seal_passphrase_empty_passphrase),
        cmocka_unit_test(test_seal_deterministic_with_rng),
        cmocka_unit_test(test_unseal_wrong_passphrase),
        cmocka_unit_test(test_passphrase_length_is_binding),
        cmocka_unit_test(test_seal_passphrase_limits_too_large),
        cmocka_unit_test(test_seal_passphrase_limits_too_small),
        cmocka_unit_test(test_seal_key_layout),
        cmocka_unit_test(test_seal_key_round_trip),
        cmocka_unit_test(test_unseal_key_wrong_key),
        cmocka_unit_test(test_unseal_mode_mismatch),
        cmocka_unit_test(test_keyfile_mode_boundaries),
        cmocka_unit_test(test_keyfile_truncated),
        cmocka_unit_test(test_keyfile_extended),
        cmocka_unit_test(test_keyfile_bad_magic),
        cmocka_unit_test(test_keyfile_unknown_mode),
        cmocka_unit_test(test_keyfile_ops_out_of_range),
        cmocka_unit_test(test_keyfile_mem_out_of_range),
        cmocka_unit_test(test_keyfile_key_mode_nonzero_fields),
        cmocka_unit_test(test_flip_any_byte_passphrase_file),
        cmocka_unit_test(test_flip_any_byte_key_file),
        cmocka_unit_test(test_seed_never_in_sealed_bytes),
    };
    if (chp_crypto_init() != CHP_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
