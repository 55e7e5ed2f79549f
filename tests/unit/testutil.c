/* testutil.c - helpers the tests share (see testutil.h). */
#include "tests/unit/testutil.h"

#include "proto/cursor.h"
#include "proto/hex.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

void tu_ctr_fill(void *ctx, uint8_t *buf, size_t n)
{
    tu_ctr *c = ctx;
    size_t keylen = c->label ? strlen(c->label) : 0;
    c->calls++;
    c->bytes += n;
    while (n) {
        uint8_t in[8], block[32];
        chp_put_be64(in, c->ctr++);
        chp_hash(block, sizeof block, in, sizeof in, c->label, keylen);
        size_t k = n < sizeof block ? n : sizeof block;
        memcpy(buf, block, k);
        buf += k;
        n -= k;
    }
}

chp_rng tu_ctr_rng(tu_ctr *c)
{
    chp_rng r = {tu_ctr_fill, c};
    return r;
}

uint64_t tu_splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void tu_pattern(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7u + seed);
}

int tu_all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

int tu_contains(const void *hay, size_t n, const void *needle, size_t k)
{
    const uint8_t *h = hay;
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (memcmp(h + i, needle, k) == 0)
            return 1;
    return 0;
}

void tu_unhex(uint8_t *out, size_t n, const char *hex)
{
    assert_rc(chp_hex_decode(hex, strlen(hex), out, n), CHP_OK);
}

chp_identity *tu_identity(uint8_t fill)
{
    uint8_t seed[32];
    chp_identity *id = NULL;
    memset(seed, fill, sizeof seed);
    assert_rc(chp_identity_from_seed(seed, &id), CHP_OK);
    assert_non_null(id);
    return id;
}
