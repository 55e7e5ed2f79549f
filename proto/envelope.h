/* envelope.h - envelope v1: the one uniform unit every node stores and
 * forwards, and the signed inner plaintext only the recipient can open.
 *
 * Layout (big-endian; PROTOCOL.md is the reference):
 *   version u8 | created u64 | expiry u64 | tag[16] | key[32]    header, 65 B
 *   ciphertext[bucket + 16]     XChaCha20-Poly1305(inner plaintext)
 *   pow nonce u64
 * id = BLAKE2b-256(all bytes). */
#ifndef CHP_ENVELOPE_H
#define CHP_ENVELOPE_H

#include "proto/err.h"
#include "proto/identity.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_ENV_VERSION         1
#define CHP_ENV_HDR_BYTES       65
#define CHP_ENV_TAG_BYTES       16
#define CHP_ENV_ID_BYTES        32
#define CHP_ENV_POW_NONCE_BYTES 8
#define CHP_ENV_OVERHEAD        (CHP_ENV_HDR_BYTES + 16 + CHP_ENV_POW_NONCE_BYTES) /* 89 */
#define CHP_ENV_NBUCKETS        4
#define CHP_ENV_BUCKET_MAX      16384
#define CHP_ENV_MAX_BYTES       (CHP_ENV_BUCKET_MAX + CHP_ENV_OVERHEAD)
#define CHP_ENV_MAX_TTL         (7u * 86400u) /* longest lifetime a node accepts */
#define CHP_ENV_CLOCK_SKEW      900u          /* how far created may be ahead of now */

/* Inner plaintext: sender[32] | sig[64] | type u8 | len u32 | payload | zeros */
#define CHP_INNER_OVERHEAD 101
#define CHP_PAYLOAD_MAX    (CHP_ENV_BUCKET_MAX - CHP_INNER_OVERHEAD)

/* Content types (the payload formats belong to the messaging layer). */
enum chp_content_type {
    CHP_CT_TEXT = 1,    /* direct message text */
    CHP_CT_ROOM = 2,    /* room post */
    CHP_CT_RECEIPT = 3, /* delivery receipt */
    CHP_CT_INTRO = 4,   /* first-contact request */
    CHP_CT_ACCEPT = 5,  /* first-contact answer */
    CHP_CT_CHUNK = 6,   /* one piece of a body spread over envelopes */
    CHP_CT_FILE = 7,    /* a file's manifest (proto/file.h) */
    CHP_CT_PIECE = 8,   /* a piece of a file */
};

/* The inner plaintext sizes an envelope may carry, ascending. */
extern const uint32_t chp_env_buckets[CHP_ENV_NBUCKETS];

typedef struct chp_env_hdr {
    uint8_t version;
    uint64_t created; /* unix seconds */
    uint64_t expiry;  /* unix seconds, > created */
    uint8_t tag[CHP_ENV_TAG_BYTES];
    uint8_t key[32]; /* ephemeral X25519 public key, or random */
} chp_env_hdr;

/* Network rules a relay enforces; chp_env_params_default() gives the
 * network's values, tests may lower the proof of work. */
typedef struct chp_env_params {
    uint32_t pow_ntpb;   /* nonce trials per byte; 0 = network default, never "off" */
    uint32_t max_ttl;    /* seconds */
    uint32_t clock_skew; /* seconds */
} chp_env_params;

chp_env_params chp_env_params_default(void);
/* The nonce trials per byte an envelope of len bytes pays under the
 * network's ntpb (0 = the default): ntpb, but for the largest bucket
 * ntpb / CHP_POW_BULK_DIV, at least 1 (PROTOCOL.md §8). */
uint32_t chp_envelope_ntpb(size_t len, uint32_t ntpb);

/* Smallest bucket holding payload_len bytes of payload, or 0 if too big. */
size_t chp_inner_bucket(size_t payload_len);
/* Envelope size for payload_len bytes of payload, or 0 if too big. */
size_t chp_envelope_size(size_t payload_len);

/* Structural parse, no policy: the length must be a bucket size plus
 * overhead and the version known. *ct borrows from buf. Errors:
 * CHP_E_ENV_SIZE, CHP_E_ENV_VERSION. Any output may be NULL. */
CHP_WUR int chp_envelope_parse(const uint8_t *buf, size_t len, chp_env_hdr *hdr, const uint8_t **ct,
                               size_t *ctlen, uint64_t *pow_nonce);

/* Everything a relay checks, cheapest first and with no public-key
 * operation: size, version, lifetime (CHP_E_ENV_TTL), expiry
 * (CHP_E_ENV_EXPIRED: now >= expiry), created > now + skew
 * (CHP_E_ENV_FUTURE), proof of work (CHP_E_ENV_POW). On success fills
 * hdr and the 32-byte id (either may be NULL). params NULL = defaults. */
CHP_WUR int chp_envelope_check(const uint8_t *buf, size_t len, uint64_t now,
                               const chp_env_params *params, chp_env_hdr *hdr,
                               uint8_t id[CHP_ENV_ID_BYTES]);

/* id = BLAKE2b-256(buf). */
void chp_envelope_id(const uint8_t *buf, size_t len, uint8_t id[CHP_ENV_ID_BYTES]);

typedef struct chp_env_seal_args {
    uint64_t created, expiry;
    const uint8_t *tag; /* 16 bytes */
    /* 32 bytes, or NULL for random bytes from rng. The AEAD nonce derives
     * from the header, so a given keyfield must never be used twice under
     * one key: pass a fresh ephemeral public key, or NULL. */
    const uint8_t *keyfield;
    const uint8_t *key; /* 32-byte AEAD key for this envelope */
    uint8_t type;       /* enum chp_content_type */
    const uint8_t *payload;
    size_t len;
    uint32_t pow_ntpb; /* 0 = network default */
    /* BLAKE2b-256 of payload when the caller has it already (a file
     * piece's digest, made while the file was copied in: PROTOCOL.md
     * §18.8), or NULL to hash payload here. Trusted: a wrong one makes an
     * envelope whose signature every recipient refuses. */
    const uint8_t *payload_hash;
} chp_env_seal_args;

/* Builds a complete envelope: inner plaintext signed by sender, padded,
 * encrypted, proof of work solved. The signed statement commits to
 * BLAKE2b-256(payload), a->payload_hash when given. out needs chp_envelope_size(len) bytes;
 * *outlen gets that size. Errors: CHP_E_TOO_BIG, CHP_E_OVERFLOW,
 * CHP_E_ENV_TTL (expiry not after created, or lifetime over the max). */
CHP_WUR int chp_envelope_seal(const chp_env_seal_args *a, const chp_identity *sender,
                              const chp_rng *rng, uint8_t *out, size_t cap, size_t *outlen);
/* The same, and id (when not NULL) gets the envelope's id
 * (chp_envelope_id of the result) from the pass that made the proof of
 * work's input, so a caller need not hash the 16 KiB again. */
CHP_WUR int chp_envelope_seal_id(const chp_env_seal_args *a, const chp_identity *sender,
                                 const chp_rng *rng, uint8_t *out, size_t cap, size_t *outlen,
                                 uint8_t id[CHP_ENV_ID_BYTES]);

/* A parsed inner plaintext. payload borrows from the plaintext buffer. */
typedef struct chp_inner {
    uint8_t sender[32];
    uint8_t sig[64];
    uint8_t type;
    const uint8_t *payload;
    uint32_t len;
} chp_inner;

/* Strict inner parse: size is a bucket, payload fits, padding all zero.
 * Does not verify the signature (it needs the envelope header). */
CHP_WUR int chp_inner_parse(const uint8_t *pt, size_t len, chp_inner *out);

/* Opens an envelope with key: decrypts into pt (cap >= ciphertext - 16),
 * parses the inner plaintext and verifies the sender's signature over the
 * content and this envelope's header. out->payload points into pt.
 * Errors: those of chp_envelope_parse, CHP_E_OVERFLOW, CHP_E_DECRYPT,
 * CHP_E_PADDING, CHP_E_MALFORMED, CHP_E_SIGNATURE. Policy checks
 * (expiry, proof of work) are chp_envelope_check's job. On any error
 * *out is zeroed, and pt is wiped if decryption had written to it. */
CHP_WUR int chp_envelope_open(const uint8_t *buf, size_t len, const uint8_t key[32], uint8_t *pt,
                              size_t cap, chp_env_hdr *hdr, chp_inner *out);
/* chp_envelope_open for a caller that may open the same envelope twice
 * (a receiver judges a room post before storing it and reads it after).
 * digest (not NULL) gets BLAKE2b-256 of the payload: the digest the
 * signature commits to (a file piece's, PROTOCOL.md §18.8). verified (not
 * NULL) is the digest an earlier call returned for these very bytes (the
 * same envelope id, which is BLAKE2b of all of them) under this very
 * key: the envelope is decrypted and parsed again, and its signature,
 * checked then, is not verified again. Never pass a digest from anywhere
 * else: nothing here tells it apart from a forged one. */
CHP_WUR int chp_envelope_open_ex(const uint8_t *buf, size_t len, const uint8_t key[32], uint8_t *pt,
                                 size_t cap, chp_env_hdr *hdr, chp_inner *out,
                                 const uint8_t *verified, uint8_t *digest);

#endif
