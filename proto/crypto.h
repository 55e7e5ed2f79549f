/* crypto.h - the one door to libsodium. Nothing else includes sodium.h, so
 * the primitives Chapar relies on are listed here and nowhere else. */
#ifndef CHP_CRYPTO_H
#define CHP_CRYPTO_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_KEY_BYTES        32 /* symmetric keys, Ed25519/X25519 public keys, seeds */
#define CHP_SIGN_SK_BYTES    64 /* Ed25519 secret key (seed || public key) */
#define CHP_SIG_BYTES        64 /* Ed25519 signature */
#define CHP_AEAD_NONCE_BYTES 24 /* XChaCha20-Poly1305-IETF nonce */
#define CHP_AEAD_TAG_BYTES   16 /* Poly1305 tag */
#define CHP_SALT_BYTES       16 /* Argon2id salt */

/* Randomness comes in through this struct (conventions: no global state), so
 * tests and known-answer vectors can make every random byte deterministic. */
typedef struct chp_rng {
    void (*fill)(void *ctx, uint8_t *buf, size_t n);
    void *ctx;
} chp_rng;

/* Must succeed once before any other function; safe to call again. */
CHP_WUR int chp_crypto_init(void);

/* The operating system's CSPRNG (libsodium randombytes). Static lifetime. */
const chp_rng *chp_rng_system(void);
void chp_rng_fill(const chp_rng *rng, void *buf, size_t n);

/* BLAKE2b with outlen in [16, 64] and an optional key (keylen 0 or 16..64). */
void chp_hash(uint8_t *out, size_t outlen, const void *in, size_t inlen, const void *key,
              size_t keylen);

/* Hashes buf once and yields both BLAKE2b-256(buf[0..len-tail)) in
 * prefix_hash and BLAKE2b-256(buf) in full_hash: one pass over the bytes.
 * Used for the envelope's proof-of-work input and its id. */
void chp_hash_prefix_and_full(const uint8_t *buf, size_t len, size_t tail, uint8_t prefix_hash[32],
                              uint8_t full_hash[32]);

/* SHA-256 (Negentropy fingerprints, which the reference defines so, and
 * the app manifest, whose users check it with sha256sum). */
void chp_sha256(uint8_t out[32], const void *in, size_t len);
/* The same over data that comes in pieces (a file read in blocks). */
typedef struct chp_sha256_ctx {
    _Alignas(16) uint8_t opaque[128];
} chp_sha256_ctx;
void chp_sha256_init(chp_sha256_ctx *c);
void chp_sha256_update(chp_sha256_ctx *c, const void *in, size_t len);
void chp_sha256_final(chp_sha256_ctx *c, uint8_t out[32]);
/* BLAKE2b-256, unkeyed, over data that comes in pieces (a file's
 * whole-file hash, PROTOCOL.md §18.8). */
typedef struct chp_b2_ctx {
    _Alignas(64) uint8_t opaque[384];
} chp_b2_ctx;
void chp_b2_init(chp_b2_ctx *c);
void chp_b2_update(chp_b2_ctx *c, const void *in, size_t len);
void chp_b2_final(chp_b2_ctx *c, uint8_t out[32]);

/* Ed25519. */
void chp_sign_seed_keypair(const uint8_t seed[32], uint8_t pk[32], uint8_t sk[64]);
void chp_sign(uint8_t sig[64], const void *msg, size_t len, const uint8_t sk[64]);
/* CHP_OK or CHP_E_SIGNATURE. */
CHP_WUR int chp_sign_verify(const uint8_t sig[64], const void *msg, size_t len,
                            const uint8_t pk[32]);
/* Whether pk is a canonical Ed25519 point of large order (usable identity). */
int chp_sign_pk_valid(const uint8_t pk[32]);

/* X25519 keys bound to an Ed25519 identity by the birational map. */
CHP_WUR int chp_ed_pk_to_x(const uint8_t ed_pk[32], uint8_t x_pk[32]);
void chp_ed_sk_to_x(const uint8_t ed_sk[64], uint8_t x_sk[32]);
void chp_x25519_base(uint8_t pk[32], const uint8_t sk[32]);
/* CHP_E_DH when the result is all zero (peer sent a low-order point). */
CHP_WUR int chp_x25519(uint8_t shared[32], const uint8_t sk[32], const uint8_t pk[32]);

/* XChaCha20-Poly1305-IETF; ct must have room for len + CHP_AEAD_TAG_BYTES. */
void chp_aead_encrypt(uint8_t *ct, const uint8_t *pt, size_t len, const uint8_t *ad, size_t adlen,
                      const uint8_t nonce[24], const uint8_t key[32]);
/* pt gets ctlen - 16 bytes. CHP_E_DECRYPT on any authentication failure;
 * pt is zeroed then. */
CHP_WUR int chp_aead_decrypt(uint8_t *pt, const uint8_t *ct, size_t ctlen, const uint8_t *ad,
                             size_t adlen, const uint8_t nonce[24], const uint8_t key[32]);

/* Argon2id v1.3. memlimit in bytes. CHP_E_KDF on failure or bad limits. */
CHP_WUR int chp_pwhash(uint8_t *out, size_t outlen, const char *pass, size_t passlen,
                       const uint8_t salt[16], uint64_t opslimit, uint64_t memlimit);
/* libsodium's bounds for Argon2id, for parsers that must reject absurd files. */
uint64_t chp_pwhash_ops_min(void);
uint64_t chp_pwhash_mem_min(void);

/* Secret hygiene. */
void chp_memzero(void *p, size_t n);
/* Constant time: 1 when equal, 0 otherwise. */
int chp_memeq(const void *a, const void *b, size_t n);
/* Guarded, mlock'ed memory for long-lived secrets; NULL on failure. */
void *chp_secure_alloc(size_t n);
void chp_secure_free(void *p);

#endif
