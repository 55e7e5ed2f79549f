/* pow.c - Bitmessage-style proof of work over BLAKE2b. */
#include "proto/pow.h"

#include "proto/crypto.h"
#include "proto/cursor.h"

#include <string.h>

uint64_t chp_pow_target(size_t len, uint64_t ttl, uint32_t ntpb)
{
    if (ntpb == 0)
        return UINT64_MAX;
    if ((uint64_t)len > UINT64_MAX - CHP_POW_EXTRA_BYTES)
        return 0;
    uint64_t w = (uint64_t)len + CHP_POW_EXTRA_BYTES;
    /* Inputs are bounded by the envelope checks (len < 2^20, ttl < 2^32),
     * but keep the arithmetic total for any caller. */
    if (ttl > UINT64_MAX / w)
        return 0;
    uint64_t sum = w + ttl * w / 65536u;
    if (sum > UINT64_MAX / ntpb)
        return 0;
    uint64_t d = sum * ntpb;
    return UINT64_MAX / d;
}

uint64_t chp_pow_trial(const uint8_t initial[32], uint64_t nonce)
{
    uint8_t in[40], h[32];
    chp_put_be64(in, nonce);
    memcpy(in + 8, initial, 32);
    chp_hash(h, sizeof h, in, sizeof in, NULL, 0);
    return chp_be64(h);
}

uint64_t chp_pow_solve(const uint8_t initial[32], uint64_t target, uint64_t start)
{
    uint64_t n = start;
    while (chp_pow_trial(initial, n) > target)
        n++;
    return n;
}
