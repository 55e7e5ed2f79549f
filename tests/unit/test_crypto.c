/* test_crypto.c - the libsodium door: known answers from the RFCs for every
 * primitive, round trips, and each failure path with its exact error code. */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/err.h"
#include "tests/unit/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* Deterministic key pair number i. */
static void keypair(unsigned i, uint8_t pk[32], uint8_t sk[64])
{
    uint8_t seed[32];
    for (size_t j = 0; j < 32; j++)
        seed[j] = (uint8_t)(i * 131 + j * 7 + 1);
    chp_sign_seed_keypair(seed, pk, sk);
}

/* ---- init and randomness ---- */

static void test_crypto_init_idempotent(void **state)
{
    (void)state;
    assert_int_equal(chp_crypto_init(), CHP_OK);
    assert_int_equal(chp_crypto_init(), CHP_OK);
}

static void test_rng_fill_uses_callback(void **state)
{
    (void)state;
    /* The bytes come from the callback with its context, one call per
     * fill: a twin stream drawn directly gives the same bytes. */
    tu_ctr c = {.ctr = 0xfe}, twin = {.ctr = 0xfe};
    chp_rng rng = tu_ctr_rng(&c);
    uint8_t buf[4] = {0}, want[4];
    chp_rng_fill(&rng, buf, sizeof buf);
    tu_ctr_fill(&twin, want, sizeof want);
    assert_memory_equal(buf, want, 4);
    assert_false(tu_all_zero(buf, 4));
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.bytes, 4);
    chp_rng_fill(&rng, buf, 1);
    tu_ctr_fill(&twin, want, 1);
    assert_int_equal(buf[0], want[0]);
    assert_int_equal(c.calls, 2);
    assert_int_equal(c.bytes, 5);
}

static void test_rng_system(void **state)
{
    (void)state;
    const chp_rng *a = chp_rng_system();
    assert_non_null(a);
    assert_non_null(a->fill);
    assert_ptr_equal(a, chp_rng_system()); /* static lifetime */
    uint8_t x[32] = {0}, y[32] = {0};
    chp_rng_fill(a, x, sizeof x);
    chp_rng_fill(a, y, sizeof y);
    /* 2^-256 chance of a false failure. */
    assert_false(tu_all_zero(x, sizeof x));
    assert_memory_not_equal(x, y, sizeof x);
}

/* ---- hashing ---- */

static void test_blake2b_512_abc_rfc7693(void **state)
{
    (void)state;
    uint8_t want[64], out[64];
    tu_unhex(want, 64,
             "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
             "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
    chp_hash(out, sizeof out, "abc", 3, NULL, 0);
    assert_memory_equal(out, want, 64);
}

static void test_blake2b_256_empty(void **state)
{
    (void)state;
    uint8_t want[32], out[32];
    tu_unhex(want, 32, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    chp_hash(out, sizeof out, "", 0, NULL, 0);
    assert_memory_equal(out, want, 32);
    /* A 32-byte output is its own function, not a truncated 64-byte one. */
    uint8_t full[64];
    chp_hash(full, sizeof full, "", 0, NULL, 0);
    assert_memory_not_equal(out, full, 32);
}

/* The reference implementation's keyed KAT (blake2b-kat.txt): key 00..3f. */
static void test_blake2b_keyed_kat(void **state)
{
    (void)state;
    uint8_t key[64], in[3] = {0, 1, 2}, want[64], out[64];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)i;
    tu_unhex(want, 64,
             "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
             "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568");
    chp_hash(out, sizeof out, in, 0, key, sizeof key);
    assert_memory_equal(out, want, 64);
    tu_unhex(want, 64,
             "33d0825dddf7ada99b0e7e307104ad07ca9cfd9692214f1561356315e784f3e5"
             "a17e364ae9dbb14cb2036df932b77f4b292761365fb328de7afdc6d8998f5fc1");
    chp_hash(out, sizeof out, in, sizeof in, key, sizeof key);
    assert_memory_equal(out, want, 64);
    /* The smallest key (16 bytes) and output (16 bytes) are accepted and
     * the key changes the result. */
    uint8_t a[16], b[16];
    chp_hash(a, sizeof a, in, sizeof in, key, 16);
    chp_hash(b, sizeof b, in, sizeof in, NULL, 0);
    assert_memory_not_equal(a, b, 16);
}

static void test_hash_prefix_and_full_matches_two_hashes(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 8, 63, 64, 65, 127, 128, 129, 200, 256, 300, 1113};
    uint8_t buf[1113];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t len = lens[li];
        size_t tails[] = {0, 1, 8, 64, 128, len / 2, len - (len > 0), len};
        for (size_t ti = 0; ti < sizeof tails / sizeof tails[0]; ti++) {
            size_t tail = tails[ti];
            if (tail > len)
                continue;
            uint8_t p[32], f[32], wp[32], wf[32];
            memset(p, 0xee, sizeof p);
            memset(f, 0xee, sizeof f);
            chp_hash_prefix_and_full(buf, len, tail, p, f);
            chp_hash(wp, 32, buf, len - tail, NULL, 0);
            chp_hash(wf, 32, buf, len, NULL, 0);
            assert_memory_equal(p, wp, 32);
            assert_memory_equal(f, wf, 32);
            if (tail == 0)
                assert_memory_equal(p, f, 32);
            else
                assert_memory_not_equal(p, f, 32);
        }
    }
}

static void test_sha256_fips180(void **state)
{
    (void)state;
    uint8_t want[32], out[32];
    tu_unhex(want, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    chp_sha256(out, "abc", 3);
    assert_memory_equal(out, want, 32);
    tu_unhex(want, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    chp_sha256(out, "", 0);
    assert_memory_equal(out, want, 32);
}

/* ---- Ed25519 ---- */

static const char rfc8032_seed1[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char rfc8032_pk1[] =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

static void test_sign_rfc8032_vectors(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sk[64], want_pk[32], want_sig[64], sig[64];
    tu_unhex(seed, 32, rfc8032_seed1);
    tu_unhex(want_pk, 32, rfc8032_pk1);
    tu_unhex(want_sig, 64,
             "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
             "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    chp_sign_seed_keypair(seed, pk, sk);
    assert_memory_equal(pk, want_pk, 32);
    assert_memory_equal(sk, seed, 32); /* sk = seed || pk */
    assert_memory_equal(sk + 32, pk, 32);
    chp_sign(sig, "", 0, sk);
    assert_memory_equal(sig, want_sig, 64);
    assert_int_equal(chp_sign_verify(sig, "", 0, pk), CHP_OK);

    /* TEST 2: one-byte message 0x72. */
    tu_unhex(seed, 32, "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
    tu_unhex(want_pk, 32, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
    tu_unhex(want_sig, 64,
             "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
             "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
    chp_sign_seed_keypair(seed, pk, sk);
    assert_memory_equal(pk, want_pk, 32);
    chp_sign(sig, "\x72", 1, sk);
    assert_memory_equal(sig, want_sig, 64);
    assert_int_equal(chp_sign_verify(sig, "\x72", 1, pk), CHP_OK);
}

static void test_sign_verify_round_trip(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], sig[64], sig2[64], msg[300];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)i;
    keypair(1, pk, sk);
    static const size_t lens[] = {0, 1, 63, 64, 65, 300};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        chp_sign(sig, msg, lens[i], sk);
        assert_int_equal(chp_sign_verify(sig, msg, lens[i], pk), CHP_OK);
        chp_sign(sig2, msg, lens[i], sk);
        assert_memory_equal(sig, sig2, 64); /* deterministic */
    }
}

static void test_sign_verify_tampered_message(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], sig[64], msg[40];
    memset(msg, 'm', sizeof msg);
    keypair(2, pk, sk);
    chp_sign(sig, msg, sizeof msg, sk);
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] ^= 0x01;
        assert_int_equal(chp_sign_verify(sig, msg, sizeof msg, pk), CHP_E_SIGNATURE);
        msg[i] ^= 0x01;
    }
    /* Shorter and longer messages are other messages. */
    assert_int_equal(chp_sign_verify(sig, msg, sizeof msg - 1, pk), CHP_E_SIGNATURE);
    assert_int_equal(chp_sign_verify(sig, msg, 0, pk), CHP_E_SIGNATURE);
    assert_int_equal(chp_sign_verify(sig, msg, sizeof msg, pk), CHP_OK);
}

static void test_sign_verify_tampered_signature(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], sig[64];
    keypair(3, pk, sk);
    chp_sign(sig, "hello", 5, sk);
    for (size_t i = 0; i < sizeof sig; i++) {
        sig[i] ^= 0x80;
        assert_int_equal(chp_sign_verify(sig, "hello", 5, pk), CHP_E_SIGNATURE);
        sig[i] ^= 0x80;
    }
    uint8_t zero[64] = {0};
    assert_int_equal(chp_sign_verify(zero, "hello", 5, pk), CHP_E_SIGNATURE);
}

static void test_sign_verify_wrong_key(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], pk2[32], sk2[64], sig[64];
    keypair(4, pk, sk);
    keypair(5, pk2, sk2);
    chp_sign(sig, "hello", 5, sk);
    assert_int_equal(chp_sign_verify(sig, "hello", 5, pk2), CHP_E_SIGNATURE);
    /* A small-order public key never verifies anything. */
    uint8_t ident[32] = {1};
    assert_int_equal(chp_sign_verify(sig, "hello", 5, ident), CHP_E_SIGNATURE);
}

/* Canonical encodings of the eight small-order points (and sign variants). */
static const char *const small_order_hex[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
};

static void test_sign_pk_valid_rejects_small_order(void **state)
{
    (void)state;
    uint8_t pk[32], x[32];
    for (size_t i = 0; i < sizeof small_order_hex / sizeof small_order_hex[0]; i++) {
        tu_unhex(pk, 32, small_order_hex[i]);
        assert_int_equal(chp_sign_pk_valid(pk), 0);
        assert_int_equal(chp_ed_pk_to_x(pk, x), CHP_E_ID_KEY);
    }
}

static void test_sign_pk_valid_rejects_bad_encodings(void **state)
{
    (void)state;
    uint8_t pk[32];
    /* y = p (non-canonical encoding of y = 0) and all ones (y >= p). */
    tu_unhex(pk, 32, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    assert_int_equal(chp_sign_pk_valid(pk), 0);
    memset(pk, 0xff, sizeof pk);
    assert_int_equal(chp_sign_pk_valid(pk), 0);
    /* RFC 8032 key plus the order-2 point (0, -1) = (-x, -y): on the curve,
     * canonical, but with a torsion component. */
    tu_unhex(pk, 32, "16a567fe7d4ef5482ab4012c369bf8c5f11e8d0c2559dcda50fde59708f8aee5");
    assert_int_equal(chp_sign_pk_valid(pk), 0);
    /* y = 2 is not on the curve (x^2 would be a non-square). */
    memset(pk, 0, sizeof pk);
    pk[0] = 2;
    assert_int_equal(chp_sign_pk_valid(pk), 0);
}

static void test_sign_pk_valid_accepts_real_keys(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64];
    tu_unhex(pk, 32, rfc8032_pk1);
    assert_int_equal(chp_sign_pk_valid(pk), 1);
    for (unsigned i = 0; i < 16; i++) {
        keypair(i, pk, sk);
        assert_int_equal(chp_sign_pk_valid(pk), 1);
    }
}

/* ---- Ed25519 -> X25519 and X25519 ---- */

static void test_ed_to_x_birational_map(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sk[64], xpk[32], xsk[32], xpk2[32], want[32];
    tu_unhex(seed, 32, rfc8032_seed1);
    chp_sign_seed_keypair(seed, pk, sk);
    /* u = (1 + y) / (1 - y), computed independently (python). */
    tu_unhex(want, 32, "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e");
    memset(xpk, 0xee, sizeof xpk);
    assert_int_equal(chp_ed_pk_to_x(pk, xpk), CHP_OK);
    assert_memory_equal(xpk, want, 32);
    /* The converted secret key yields the converted public key. */
    chp_ed_sk_to_x(sk, xsk);
    chp_x25519_base(xpk2, xsk);
    assert_memory_equal(xpk2, want, 32);
    for (unsigned i = 0; i < 8; i++) {
        keypair(i, pk, sk);
        assert_int_equal(chp_ed_pk_to_x(pk, xpk), CHP_OK);
        chp_ed_sk_to_x(sk, xsk);
        chp_x25519_base(xpk2, xsk);
        assert_memory_equal(xpk, xpk2, 32);
    }
}

static void test_ed_pk_to_x_invalid_key(void **state)
{
    (void)state;
    uint8_t pk[32], xpk[32];
    tu_unhex(pk, 32, "16a567fe7d4ef5482ab4012c369bf8c5f11e8d0c2559dcda50fde59708f8aee5");
    assert_int_equal(chp_ed_pk_to_x(pk, xpk), CHP_E_ID_KEY);
    tu_unhex(pk, 32, small_order_hex[2]);
    assert_int_equal(chp_ed_pk_to_x(pk, xpk), CHP_E_ID_KEY);
}

static void test_x25519_rfc7748(void **state)
{
    (void)state;
    uint8_t a[32], b[32], apk[32], bpk[32], want_apk[32], want_bpk[32], want[32], s1[32], s2[32];
    tu_unhex(a, 32, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    tu_unhex(b, 32, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    tu_unhex(want_apk, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    tu_unhex(want_bpk, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    tu_unhex(want, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    chp_x25519_base(apk, a);
    chp_x25519_base(bpk, b);
    assert_memory_equal(apk, want_apk, 32);
    assert_memory_equal(bpk, want_bpk, 32);
    assert_int_equal(chp_x25519(s1, a, bpk), CHP_OK);
    assert_int_equal(chp_x25519(s2, b, apk), CHP_OK);
    assert_memory_equal(s1, want, 32);
    assert_memory_equal(s2, want, 32);
}

static void test_x25519_agreement_both_ways(void **state)
{
    (void)state;
    for (unsigned i = 0; i < 8; i++) {
        uint8_t pa[32], sa[64], pb[32], sb[64], xa[32], xb[32], xpa[32], xpb[32];
        uint8_t s1[32], s2[32], s3[32];
        keypair(2 * i, pa, sa);
        keypair(2 * i + 1, pb, sb);
        chp_ed_sk_to_x(sa, xa);
        chp_ed_sk_to_x(sb, xb);
        assert_int_equal(chp_ed_pk_to_x(pa, xpa), CHP_OK);
        assert_int_equal(chp_ed_pk_to_x(pb, xpb), CHP_OK);
        assert_int_equal(chp_x25519(s1, xa, xpb), CHP_OK);
        assert_int_equal(chp_x25519(s2, xb, xpa), CHP_OK);
        assert_memory_equal(s1, s2, 32);
        assert_false(tu_all_zero(s1, 32));
        /* A third party gets something else. */
        uint8_t pc[32], sc[64], xc[32];
        keypair(100 + i, pc, sc);
        chp_ed_sk_to_x(sc, xc);
        assert_int_equal(chp_x25519(s3, xc, xpb), CHP_OK);
        assert_memory_not_equal(s1, s3, 32);
    }
}

static void test_x25519_low_order_is_dh_error(void **state)
{
    (void)state;
    /* Curve25519 u-coordinates of small order: 0, 1, and an order-8 point. */
    static const char *const low[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    };
    uint8_t sk[32], pk[32], shared[32];
    memset(sk, 0x42, sizeof sk);
    for (size_t i = 0; i < sizeof low / sizeof low[0]; i++) {
        tu_unhex(pk, 32, low[i]);
        memset(shared, 0xee, sizeof shared);
        assert_int_equal(chp_x25519(shared, sk, pk), CHP_E_DH);
        assert_true(tu_all_zero(shared, sizeof shared)); /* no half-result left */
    }
}

/* ---- AEAD ---- */

static void aead_fixture(uint8_t key[32], uint8_t nonce[24])
{
    for (size_t i = 0; i < 32; i++)
        key[i] = (uint8_t)(0x80 + i);
    for (size_t i = 0; i < 24; i++)
        nonce[i] = (uint8_t)(0x40 + i);
}

/* draft-irtf-cfrg-xchacha-03 A.3.1. */
static void test_aead_xchacha_draft_vector(void **state)
{
    (void)state;
    static const char pt[] = "Ladies and Gentlemen of the class of '99: If I could offer you only "
                             "one tip for the future, sunscreen would be it.";
    const size_t len = sizeof pt - 1;
    uint8_t key[32], nonce[24], ad[12], want[114 + 16], ct[114 + 16], back[114];
    assert_int_equal(len, 114);
    aead_fixture(key, nonce);
    tu_unhex(ad, 12, "50515253c0c1c2c3c4c5c6c7");
    tu_unhex(want, sizeof want,
             "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
             "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
             "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
             "21f9664c97637da9768812f615c68b13b52e"
             "c0875924c1c7987947deafd8780acf49");
    chp_aead_encrypt(ct, (const uint8_t *)pt, len, ad, sizeof ad, nonce, key);
    assert_memory_equal(ct, want, sizeof want);
    assert_int_equal(chp_aead_decrypt(back, ct, sizeof ct, ad, sizeof ad, nonce, key), CHP_OK);
    assert_memory_equal(back, pt, len);
}

static void test_aead_round_trip(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 65, 1000};
    uint8_t key[32], nonce[24], pt[1000], ct[1000 + 16], back[1000];
    aead_fixture(key, nonce);
    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)(i ^ 0x5a);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t len = lens[li];
        memset(ct, 0xee, sizeof ct);
        chp_aead_encrypt(ct, pt, len, (const uint8_t *)"ad", 2, nonce, key);
        if (len + 16 < sizeof ct)
            assert_int_equal(ct[len + 16], 0xee); /* exactly len + 16 written */
        if (len >= 8)
            assert_memory_not_equal(ct, pt, 8); /* actually encrypted */
        memset(back, 0xee, sizeof back);
        assert_int_equal(chp_aead_decrypt(back, ct, len + 16, (const uint8_t *)"ad", 2, nonce, key),
                         CHP_OK);
        assert_memory_equal(back, pt, len);
        if (len < sizeof back)
            assert_int_equal(back[len], 0xee); /* exactly ctlen - 16 written */
    }
    /* No associated data at all. */
    chp_aead_encrypt(ct, pt, 10, NULL, 0, nonce, key);
    assert_int_equal(chp_aead_decrypt(back, ct, 26, NULL, 0, nonce, key), CHP_OK);
    assert_memory_equal(back, pt, 10);
}

static void expect_decrypt_fails_zeroed(const uint8_t *ct, size_t ctlen, const uint8_t *ad,
                                        size_t adlen, const uint8_t nonce[24],
                                        const uint8_t key[32])
{
    uint8_t pt[64];
    assert_true(ctlen - 16 <= sizeof pt);
    memset(pt, 0xee, sizeof pt);
    assert_int_equal(chp_aead_decrypt(pt, ct, ctlen, ad, adlen, nonce, key), CHP_E_DECRYPT);
    assert_true(tu_all_zero(pt, ctlen - 16));
}

static void test_aead_tampered_ciphertext(void **state)
{
    (void)state;
    uint8_t key[32], nonce[24], ct[32 + 16];
    aead_fixture(key, nonce);
    chp_aead_encrypt(ct, (const uint8_t *)"0123456789abcdef0123456789abcdef", 32,
                     (const uint8_t *)"hdr", 3, nonce, key);
    for (size_t i = 0; i < sizeof ct; i++) { /* body and tag */
        ct[i] ^= 0x01;
        expect_decrypt_fails_zeroed(ct, sizeof ct, (const uint8_t *)"hdr", 3, nonce, key);
        ct[i] ^= 0x01;
    }
    /* A dropped byte is a failure too. */
    expect_decrypt_fails_zeroed(ct, sizeof ct - 1, (const uint8_t *)"hdr", 3, nonce, key);
}

static void test_aead_tampered_ad(void **state)
{
    (void)state;
    uint8_t key[32], nonce[24], ct[16 + 16], ad[5] = {'h', 'e', 'a', 'd', 'r'};
    aead_fixture(key, nonce);
    chp_aead_encrypt(ct, (const uint8_t *)"sixteen bytes!!!", 16, ad, sizeof ad, nonce, key);
    for (size_t i = 0; i < sizeof ad; i++) {
        ad[i] ^= 0x20;
        expect_decrypt_fails_zeroed(ct, sizeof ct, ad, sizeof ad, nonce, key);
        ad[i] ^= 0x20;
    }
    expect_decrypt_fails_zeroed(ct, sizeof ct, ad, sizeof ad - 1, nonce, key);
    expect_decrypt_fails_zeroed(ct, sizeof ct, NULL, 0, nonce, key);
}

static void test_aead_tampered_nonce(void **state)
{
    (void)state;
    uint8_t key[32], nonce[24], ct[16 + 16];
    aead_fixture(key, nonce);
    chp_aead_encrypt(ct, (const uint8_t *)"sixteen bytes!!!", 16, NULL, 0, nonce, key);
    for (size_t i = 0; i < sizeof nonce; i++) { /* HChaCha part and IETF part */
        nonce[i] ^= 0x04;
        expect_decrypt_fails_zeroed(ct, sizeof ct, NULL, 0, nonce, key);
        nonce[i] ^= 0x04;
    }
}

static void test_aead_wrong_key(void **state)
{
    (void)state;
    uint8_t key[32], nonce[24], ct[16 + 16];
    aead_fixture(key, nonce);
    chp_aead_encrypt(ct, (const uint8_t *)"sixteen bytes!!!", 16, NULL, 0, nonce, key);
    key[31] ^= 0x80;
    expect_decrypt_fails_zeroed(ct, sizeof ct, NULL, 0, nonce, key);
}

static void test_aead_shorter_than_tag(void **state)
{
    (void)state;
    uint8_t key[32], nonce[24], ct[16] = {0}, pt[1] = {0xee};
    aead_fixture(key, nonce);
    for (size_t n = 0; n < 16; n++)
        assert_int_equal(chp_aead_decrypt(pt, ct, n, NULL, 0, nonce, key), CHP_E_DECRYPT);
    assert_int_equal(pt[0], 0xee); /* nothing to write, nothing written */
    /* Exactly a tag, but a wrong one. */
    assert_int_equal(chp_aead_decrypt(pt, ct, 16, NULL, 0, nonce, key), CHP_E_DECRYPT);
}

/* ---- Argon2id ---- */

static void test_pwhash_min_limits(void **state)
{
    (void)state;
    /* libsodium's Argon2id bounds: 1 pass, 8 KiB. */
    assert_true(chp_pwhash_ops_min() == 1);
    assert_true(chp_pwhash_mem_min() == 8192);
}

static void test_pwhash_deterministic(void **state)
{
    (void)state;
    const uint64_t ops = chp_pwhash_ops_min(), mem = chp_pwhash_mem_min();
    uint8_t salt[16], a[32], b[32], c[32];
    for (size_t i = 0; i < sizeof salt; i++)
        salt[i] = (uint8_t)i;
    assert_int_equal(chp_pwhash(a, 32, "secret", 6, salt, ops, mem), CHP_OK);
    assert_int_equal(chp_pwhash(b, 32, "secret", 6, salt, ops, mem), CHP_OK);
    assert_memory_equal(a, b, 32);
    assert_false(tu_all_zero(a, 32));
    /* Every input changes the key. */
    assert_int_equal(chp_pwhash(c, 32, "secreT", 6, salt, ops, mem), CHP_OK);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(chp_pwhash(c, 32, "secret", 5, salt, ops, mem), CHP_OK);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(chp_pwhash(c, 32, "secret", 6, salt, ops + 1, mem), CHP_OK);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(chp_pwhash(c, 32, "secret", 6, salt, ops, mem + 1024), CHP_OK);
    assert_memory_not_equal(a, c, 32);
    salt[15] ^= 1;
    assert_int_equal(chp_pwhash(c, 32, "secret", 6, salt, ops, mem), CHP_OK);
    assert_memory_not_equal(a, c, 32);
    /* The output length is a parameter, not a truncation; empty passphrase
     * is allowed. */
    uint8_t d[16];
    salt[15] ^= 1;
    assert_int_equal(chp_pwhash(d, 16, "secret", 6, salt, ops, mem), CHP_OK);
    assert_memory_not_equal(a, d, 16);
    assert_int_equal(chp_pwhash(c, 32, "", 0, salt, ops, mem), CHP_OK);
    assert_memory_not_equal(a, c, 32);
}

static void test_pwhash_ops_below_min(void **state)
{
    (void)state;
    uint8_t salt[16] = {0}, out[32];
    assert_int_equal(
        chp_pwhash(out, 32, "pw", 2, salt, chp_pwhash_ops_min() - 1, chp_pwhash_mem_min()),
        CHP_E_KDF);
}

static void test_pwhash_ops_above_max(void **state)
{
    (void)state;
    uint8_t salt[16] = {0}, out[32];
    /* libsodium caps opslimit at 2^32 - 1. */
    assert_int_equal(chp_pwhash(out, 32, "pw", 2, salt, UINT64_C(1) << 32, chp_pwhash_mem_min()),
                     CHP_E_KDF);
    assert_int_equal(chp_pwhash(out, 32, "pw", 2, salt, UINT64_MAX, chp_pwhash_mem_min()),
                     CHP_E_KDF);
}

static void test_pwhash_mem_below_min(void **state)
{
    (void)state;
    uint8_t salt[16] = {0}, out[32];
    assert_int_equal(chp_pwhash(out, 32, "pw", 2, salt, 1, chp_pwhash_mem_min() - 1), CHP_E_KDF);
    assert_int_equal(chp_pwhash(out, 32, "pw", 2, salt, 1, 0), CHP_E_KDF);
}

static void test_pwhash_mem_above_max(void **state)
{
    (void)state;
    uint8_t salt[16] = {0}, out[32];
    /* Far beyond any MEMLIMIT_MAX (which is at most 4 TiB - 1 KiB). */
    assert_int_equal(chp_pwhash(out, 32, "pw", 2, salt, 1, UINT64_MAX), CHP_E_KDF);
    assert_int_equal(chp_pwhash(out, 32, "pw", 2, salt, 1, UINT64_C(1) << 42), CHP_E_KDF);
}

static void test_pwhash_output_too_short(void **state)
{
    (void)state;
    uint8_t salt[16] = {0}, out[15];
    /* Argon2id outputs at least 16 bytes. */
    assert_int_equal(chp_pwhash(out, sizeof out, "pw", 2, salt, 1, chp_pwhash_mem_min()),
                     CHP_E_KDF);
}

/* ---- secret hygiene ---- */

static void test_memeq(void **state)
{
    (void)state;
    uint8_t a[33], b[33];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = b[i] = (uint8_t)(i * 3);
    assert_int_equal(chp_memeq(a, b, sizeof a), 1);
    assert_int_equal(chp_memeq(a, b, 0), 1);
    for (size_t i = 0; i < sizeof a; i++) {
        b[i] ^= 0x80;
        assert_int_equal(chp_memeq(a, b, sizeof a), 0);
        assert_int_equal(chp_memeq(a, b, i), 1); /* the prefix before it */
        b[i] ^= 0x80;
    }
}

static void test_memzero(void **state)
{
    (void)state;
    uint8_t a[40];
    memset(a, 0xa5, sizeof a);
    chp_memzero(a + 4, 32);
    assert_int_equal(a[3], 0xa5);
    assert_true(tu_all_zero(a + 4, 32));
    assert_int_equal(a[36], 0xa5);
    chp_memzero(a, 0);
    assert_int_equal(a[0], 0xa5);
}

static void test_secure_alloc_free(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 32, 100, 4096, 10000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = chp_secure_alloc(sizes[i]);
        assert_non_null(p);
        memset(p, 0x5a, sizes[i]); /* the whole region is writable */
        assert_int_equal(p[0], 0x5a);
        assert_int_equal(p[sizes[i] - 1], 0x5a);
        chp_secure_free(p);
    }
    uint8_t *a = chp_secure_alloc(64), *b = chp_secure_alloc(64);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    chp_secure_free(b);
    chp_secure_free(a);
    chp_secure_free(NULL); /* accepted, like free() */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_init_idempotent),
        cmocka_unit_test(test_rng_fill_uses_callback),
        cmocka_unit_test(test_rng_system),
        cmocka_unit_test(test_blake2b_512_abc_rfc7693),
        cmocka_unit_test(test_blake2b_256_empty),
        cmocka_unit_test(test_blake2b_keyed_kat),
        cmocka_unit_test(test_hash_prefix_and_full_matches_two_hashes),
        cmocka_unit_test(test_sha256_fips180),
        cmocka_unit_test(test_sign_rfc8032_vectors),
        cmocka_unit_test(test_sign_verify_round_trip),
        cmocka_unit_test(test_sign_verify_tampered_message),
        cmocka_unit_test(test_sign_verify_tampered_signature),
        cmocka_unit_test(test_sign_verify_wrong_key),
        cmocka_unit_test(test_sign_pk_valid_rejects_small_order),
        cmocka_unit_test(test_sign_pk_valid_rejects_bad_encodings),
        cmocka_unit_test(test_sign_pk_valid_accepts_real_keys),
        cmocka_unit_test(test_ed_to_x_birational_map),
        cmocka_unit_test(test_ed_pk_to_x_invalid_key),
        cmocka_unit_test(test_x25519_rfc7748),
        cmocka_unit_test(test_x25519_agreement_both_ways),
        cmocka_unit_test(test_x25519_low_order_is_dh_error),
        cmocka_unit_test(test_aead_xchacha_draft_vector),
        cmocka_unit_test(test_aead_round_trip),
        cmocka_unit_test(test_aead_tampered_ciphertext),
        cmocka_unit_test(test_aead_tampered_ad),
        cmocka_unit_test(test_aead_tampered_nonce),
        cmocka_unit_test(test_aead_wrong_key),
        cmocka_unit_test(test_aead_shorter_than_tag),
        cmocka_unit_test(test_pwhash_min_limits),
        cmocka_unit_test(test_pwhash_deterministic),
        cmocka_unit_test(test_pwhash_ops_below_min),
        cmocka_unit_test(test_pwhash_ops_above_max),
        cmocka_unit_test(test_pwhash_mem_below_min),
        cmocka_unit_test(test_pwhash_mem_above_max),
        cmocka_unit_test(test_pwhash_output_too_short),
        cmocka_unit_test(test_memeq),
        cmocka_unit_test(test_memzero),
        cmocka_unit_test(test_secure_alloc_free),
    };
    if (chp_crypto_init() != CHP_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
