/* pow.h - proof of work that bounds how much a peer can make every relay
 * store: cost grows with envelope size and lifetime (Bitmessage's formula),
 * verification is one small hash over the envelope's prefix hash. */
#ifndef CHP_POW_H
#define CHP_POW_H

#include <stddef.h>
#include <stdint.h>

/* Network parameters; every node must use the same ones (PROTOCOL.md). */
#define CHP_POW_NTPB_DEFAULT 32    /* nonce trials per byte */
#define CHP_POW_EXTRA_BYTES  1000u /* fixed cost added to every length */
/* The largest bucket (file pieces, long texts) is priced at ntpb divided
 * by this, at least 1 (PROTOCOL.md §8, "Bulk pricing"). */
#define CHP_POW_BULK_DIV 32u

/* Highest trial value accepted for an envelope of len bytes living ttl
 * seconds: floor((2^64-1) / d), d = ntpb * (w + floor(ttl * w / 65536)),
 * w = len + CHP_POW_EXTRA_BYTES. Returns 0 (no nonce passes) when an
 * intermediate would overflow 64 bits; envelope limits keep real inputs
 * far below that. */
uint64_t chp_pow_target(size_t len, uint64_t ttl, uint32_t ntpb);

/* Trial value: the first 8 bytes, big-endian, of
 * BLAKE2b-256(nonce as 8 big-endian bytes || initial). */
uint64_t chp_pow_trial(const uint8_t initial[32], uint64_t nonce);

/* The first nonce, searching upward from start (wrapping from 2^64-1 to 0),
 * whose trial is <= target: the smallest one >= start unless the search
 * wraps. Expected 2^64/target trials; callers start from 0. */
uint64_t chp_pow_solve(const uint8_t initial[32], uint64_t target, uint64_t start);

#endif
