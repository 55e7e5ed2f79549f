/* id.c - Bech32m identity strings, fingerprints and safety numbers. */
#include "proto/id.h"

#include "proto/crypto.h"

#include <assert.h>
#include <string.h>

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
static const char id_hrp[] = "chp";
#define HRP_LEN       3
#define DATA_CHARS    52 /* ceil(256 / 5) */
#define CHECK_CHARS   6
#define BECH32M_CONST 0x2bc830a3u

static uint32_t polymod_step(uint32_t pre)
{
    uint8_t b = (uint8_t)(pre >> 25);
    return ((pre & 0x1ffffffu) << 5) ^ (-((b >> 0) & 1u) & 0x3b6a57b2u) ^
           (-((b >> 1) & 1u) & 0x26508e6du) ^ (-((b >> 2) & 1u) & 0x1ea119fau) ^
           (-((b >> 3) & 1u) & 0x3d4233ddu) ^ (-((b >> 4) & 1u) & 0x2a1462b3u);
}

/* Checksum state after the expanded human-readable part (BIP-173). */
static uint32_t hrp_state(const char *hrp, size_t hl)
{
    uint32_t chk = 1;
    for (size_t i = 0; i < hl; i++)
        chk = polymod_step(chk) ^ ((uint8_t)hrp[i] >> 5);
    chk = polymod_step(chk);
    for (size_t i = 0; i < hl; i++)
        chk = polymod_step(chk) ^ ((uint8_t)hrp[i] & 0x1f);
    return chk;
}

/* 256 bits into 52 five-bit groups, last one zero-padded. */
static void to5(const uint8_t pk[32], uint8_t d[DATA_CHARS])
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < 32; i++) {
        acc = (acc << 8) | pk[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            d[n++] = (acc >> bits) & 31u;
        }
    }
    if (bits)
        d[n++] = (acc << (5 - bits)) & 31u;
    assert(n == DATA_CHARS);
}

void chp_b32key_encode(const char *hrp, const uint8_t key[32], char *out)
{
    size_t hl = strlen(hrp);
    assert(hl >= 1 && hl <= CHP_B32KEY_HRP_MAX);
    uint8_t d[DATA_CHARS];
    to5(key, d);
    uint32_t chk = hrp_state(hrp, hl);
    for (size_t i = 0; i < DATA_CHARS; i++)
        chk = polymod_step(chk) ^ d[i];
    for (size_t i = 0; i < CHECK_CHARS; i++)
        chk = polymod_step(chk);
    chk ^= BECH32M_CONST;
    memcpy(out, hrp, hl);
    out[hl] = '1';
    char *o = out + hl + 1;
    for (size_t i = 0; i < DATA_CHARS; i++)
        o[i] = charset[d[i]];
    for (size_t i = 0; i < CHECK_CHARS; i++)
        o[DATA_CHARS + i] = charset[(chk >> (5 * (5 - i))) & 31u];
    o[DATA_CHARS + CHECK_CHARS] = '\0';
}

void chp_id_encode(const uint8_t pk[32], char out[CHP_ID_STR_LEN + 1])
{
    chp_b32key_encode(id_hrp, pk, out);
}

static int char_value(char c)
{
    const char *p = memchr(charset, c, 32);
    return p ? (int)(p - charset) : -1;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int chp_b32key_parse(const char *hrp, const char *s, size_t len, uint8_t key[32])
{
    assert(hrp && s && key);
    size_t hl = strlen(hrp);
    uint8_t d[DATA_CHARS + CHECK_CHARS];
    if (len != hl + 1 + DATA_CHARS + CHECK_CHARS)
        return CHP_E_ID_LENGTH;
    /* All upper or all lower case: the case of the first character decides. */
    int upper = s[0] >= 'A' && s[0] <= 'Z';
    for (size_t i = 0; i < hl; i++) {
        char want = upper ? (char)(hrp[i] - 'a' + 'A') : hrp[i];
        if (s[i] != want)
            return CHP_E_ID_PREFIX;
    }
    if (s[hl] != '1')
        return CHP_E_ID_PREFIX;
    const char *p = s + hl + 1;
    for (size_t i = 0; i < DATA_CHARS + CHECK_CHARS; i++) {
        char c = p[i];
        if (upper ? (c >= 'a' && c <= 'z') : (c >= 'A' && c <= 'Z'))
            return CHP_E_ID_CHARSET; /* mixed case */
        int v = char_value(lower(c));
        if (v < 0)
            return CHP_E_ID_CHARSET;
        d[i] = (uint8_t)v;
    }
    uint32_t chk = hrp_state(hrp, hl);
    for (size_t i = 0; i < DATA_CHARS + CHECK_CHARS; i++)
        chk = polymod_step(chk) ^ d[i];
    if (chk != BECH32M_CONST)
        return CHP_E_ID_CHECKSUM;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < DATA_CHARS; i++) {
        acc = (acc << 5) | d[i];
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            key[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* 4 padding bits must be zero: one valid string per key. */
    if (n != 32 || (acc & ((1u << bits) - 1)) != 0)
        return CHP_E_ID_KEY;
    return CHP_OK;
}

int chp_id_parse(const char *s, size_t len, uint8_t pk[32])
{
    assert(s && pk);
    int rc = chp_b32key_parse(id_hrp, s, len, pk);
    if (rc == CHP_OK && !chp_sign_pk_valid(pk))
        rc = CHP_E_ID_KEY;
    return rc;
}

void chp_id_fingerprint(const uint8_t pk[32], char out[CHP_FPR_STR_LEN + 1])
{
    static const char label[] = "chapar-fingerprint-v1";
    uint8_t h[32];
    chp_hash(h, sizeof h, pk, 32, label, sizeof label - 1);
    /* First 40 bits, eight 5-bit characters. */
    uint64_t v = 0;
    for (int i = 0; i < 5; i++)
        v = (v << 8) | h[i];
    for (int i = 0; i < CHP_FPR_STR_LEN; i++)
        out[i] = charset[(v >> (5 * (7 - i))) & 31u];
    out[CHP_FPR_STR_LEN] = '\0';
}

void chp_safety_number(const uint8_t a[32], const uint8_t b[32], char out[CHP_SAFETY_STR_LEN + 1])
{
    static const char label[] = "chapar-safety-number-v1";
    uint8_t in[64], h[32];
    const uint8_t *lo = memcmp(a, b, 32) <= 0 ? a : b;
    const uint8_t *hi = lo == a ? b : a;
    memcpy(in, lo, 32);
    memcpy(in + 32, hi, 32);
    chp_hash(h, sizeof h, in, sizeof in, label, sizeof label - 1);
    char *o = out;
    for (int g = 0; g < 6; g++) {
        uint64_t v = 0;
        for (int i = 0; i < 5; i++)
            v = (v << 8) | h[g * 5 + i];
        v %= 100000u;
        for (int i = 4; i >= 0; i--) {
            o[i] = (char)('0' + v % 10);
            v /= 10;
        }
        o += 5;
        *o++ = g == 5 ? '\0' : ' ';
    }
}
