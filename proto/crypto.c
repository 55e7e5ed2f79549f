/* crypto.c - thin wrappers over libsodium; the only file including sodium.h. */
#include "proto/crypto.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

int chp_crypto_init(void)
{
    return sodium_init() < 0 ? CHP_E_CRYPTO_INIT : CHP_OK;
}

static void system_fill(void *ctx, uint8_t *buf, size_t n)
{
    (void)ctx;
    randombytes_buf(buf, n);
}

static const chp_rng system_rng = {system_fill, NULL};

const chp_rng *chp_rng_system(void)
{
    return &system_rng;
}

void chp_rng_fill(const chp_rng *rng, void *buf, size_t n)
{
    assert(rng && rng->fill);
    rng->fill(rng->ctx, buf, n);
}

void chp_hash(uint8_t *out, size_t outlen, const void *in, size_t inlen, const void *key,
              size_t keylen)
{
    assert(outlen >= crypto_generichash_BYTES_MIN && outlen <= crypto_generichash_BYTES_MAX);
    assert(keylen == 0 || (keylen >= crypto_generichash_KEYBYTES_MIN &&
                           keylen <= crypto_generichash_KEYBYTES_MAX));
    int rc = crypto_generichash(out, outlen, in, inlen, key, keylen);
    assert(rc == 0);
    (void)rc;
}

void chp_hash_prefix_and_full(const uint8_t *buf, size_t len, size_t tail, uint8_t prefix_hash[32],
                              uint8_t full_hash[32])
{
    assert(tail <= len);
    crypto_generichash_state st, fork;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, buf, len - tail);
    /* BLAKE2b keeps the last block buffered until final, so a copy of the
     * state finalises the prefix while the original goes on. */
    memcpy(&fork, &st, sizeof st);
    crypto_generichash_final(&fork, prefix_hash, 32);
    crypto_generichash_update(&st, buf + len - tail, tail);
    crypto_generichash_final(&st, full_hash, 32);
}

void chp_sha256(uint8_t out[32], const void *in, size_t len)
{
    crypto_hash_sha256(out, in, len);
}

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(chp_sha256_ctx),
               "chp_sha256_ctx too small for libsodium's state");

void chp_sha256_init(chp_sha256_ctx *c)
{
    crypto_hash_sha256_init((crypto_hash_sha256_state *)c->opaque);
}

void chp_sha256_update(chp_sha256_ctx *c, const void *in, size_t len)
{
    crypto_hash_sha256_update((crypto_hash_sha256_state *)c->opaque, in, len);
}

void chp_sha256_final(chp_sha256_ctx *c, uint8_t out[32])
{
    crypto_hash_sha256_final((crypto_hash_sha256_state *)c->opaque, out);
}

_Static_assert(sizeof(crypto_generichash_state) <= sizeof(chp_b2_ctx),
               "chp_b2_ctx too small for libsodium's state");

void chp_b2_init(chp_b2_ctx *c)
{
    crypto_generichash_init((crypto_generichash_state *)c->opaque, NULL, 0, 32);
}

void chp_b2_update(chp_b2_ctx *c, const void *in, size_t len)
{
    crypto_generichash_update((crypto_generichash_state *)c->opaque, in, len);
}

void chp_b2_final(chp_b2_ctx *c, uint8_t out[32])
{
    crypto_generichash_final((crypto_generichash_state *)c->opaque, out, 32);
}

void chp_sign_seed_keypair(const uint8_t seed[32], uint8_t pk[32], uint8_t sk[64])
{
    crypto_sign_seed_keypair(pk, sk, seed);
}

void chp_sign(uint8_t sig[64], const void *msg, size_t len, const uint8_t sk[64])
{
    crypto_sign_detached(sig, NULL, msg, len, sk);
}

int chp_sign_verify(const uint8_t sig[64], const void *msg, size_t len, const uint8_t pk[32])
{
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? CHP_OK : CHP_E_SIGNATURE;
}

int chp_sign_pk_valid(const uint8_t pk[32])
{
    /* Canonical encoding of a main-subgroup point that is not of small order.
     * The map to X25519 fails for small-order points, which makes it a
     * cheap, exact check here. */
    uint8_t x[32];
    int ok =
        crypto_core_ed25519_is_valid_point(pk) && crypto_sign_ed25519_pk_to_curve25519(x, pk) == 0;
    sodium_memzero(x, sizeof x);
    return ok;
}

int chp_ed_pk_to_x(const uint8_t ed_pk[32], uint8_t x_pk[32])
{
    return crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) == 0 ? CHP_OK : CHP_E_ID_KEY;
}

void chp_ed_sk_to_x(const uint8_t ed_sk[64], uint8_t x_sk[32])
{
    crypto_sign_ed25519_sk_to_curve25519(x_sk, ed_sk);
}

void chp_x25519_base(uint8_t pk[32], const uint8_t sk[32])
{
    crypto_scalarmult_base(pk, sk);
}

int chp_x25519(uint8_t shared[32], const uint8_t sk[32], const uint8_t pk[32])
{
    if (crypto_scalarmult(shared, sk, pk) != 0) {
        sodium_memzero(shared, 32);
        return CHP_E_DH;
    }
    return CHP_OK;
}

void chp_aead_encrypt(uint8_t *ct, const uint8_t *pt, size_t len, const uint8_t *ad, size_t adlen,
                      const uint8_t nonce[24], const uint8_t key[32])
{
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, pt, len, ad, adlen, NULL, nonce, key);
}

int chp_aead_decrypt(uint8_t *pt, const uint8_t *ct, size_t ctlen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[24], const uint8_t key[32])
{
    if (ctlen < CHP_AEAD_TAG_BYTES)
        return CHP_E_DECRYPT;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, ct, ctlen, ad, adlen, nonce,
                                                   key) != 0) {
        sodium_memzero(pt, ctlen - CHP_AEAD_TAG_BYTES);
        return CHP_E_DECRYPT;
    }
    return CHP_OK;
}

int chp_pwhash(uint8_t *out, size_t outlen, const char *pass, size_t passlen,
               const uint8_t salt[16], uint64_t opslimit, uint64_t memlimit)
{
    if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
        opslimit > crypto_pwhash_argon2id_OPSLIMIT_MAX ||
        memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
        memlimit > crypto_pwhash_argon2id_MEMLIMIT_MAX)
        return CHP_E_KDF;
    if (!pass) /* libsodium declares it nonnull even for length 0 */
        pass = "";
    if (crypto_pwhash(out, outlen, pass, passlen, salt, opslimit, (size_t)memlimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return CHP_E_KDF;
    return CHP_OK;
}

uint64_t chp_pwhash_ops_min(void)
{
    return crypto_pwhash_argon2id_OPSLIMIT_MIN;
}

uint64_t chp_pwhash_mem_min(void)
{
    return crypto_pwhash_argon2id_MEMLIMIT_MIN;
}

void chp_memzero(void *p, size_t n)
{
    sodium_memzero(p, n);
}

int chp_memeq(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

void *chp_secure_alloc(size_t n)
{
    return sodium_malloc(n);
}

void chp_secure_free(void *p)
{
    sodium_free(p);
}
