/* testutil.c - helpers the tests share (see testutil.h). */
#include "tests/unit/testutil.h"

#include "proto/cursor.h"
#include "proto/hex.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The store's sub-key derivation (STORAGE.md): BLAKE2b keyed by key over
 * the label and its NUL. */
static void sub_key(uint8_t out[32], const uint8_t key[32], const char *label)
{
    chp_hash(out, 32, label, strlen(label) + 1, key, 32);
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* The whole file, or NULL (n = 0) when there is none. */
static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f)
        return NULL;
    size_t cap = 1 << 20;
    uint8_t *b = malloc(cap);
    assert_non_null(b);
    for (size_t k; (k = fread(b + *n, 1, cap - *n, f)) > 0;) {
        *n += k;
        if (*n == cap) {
            b = realloc(b, cap *= 2);
            assert_non_null(b);
        }
    }
    fclose(f);
    return b;
}

void tu_seized_each(const char *dir, const uint8_t skey[32], int table,
                    void (*fn)(void *ctx, const uint8_t *pt, size_t n), void *ctx)
{
    uint8_t enc[3][32], seal[32];
    size_t nk = 1, n = 0;
    sub_key(enc[0], skey, "chapar-store-enc-v1");
    sub_key(seal, skey, "chapar-store-vault-v1");
    char p[4200];
    snprintf(p, sizeof p, "%s/vault", dir);
    uint8_t *vf = read_file(p, &n); /* none: only the plain key */
    for (unsigned i = 0; vf && i < 2 && (i + 1) * 512 <= n; i++) {
        uint8_t ad[16], pt[40], mixed[32];
        memcpy(ad, "chapar-vault-v1", 15);
        ad[15] = (uint8_t)i;
        if (chp_aead_decrypt(pt, vf + i * 512 + 24, 56, ad, 16, vf + i * 512, seal) != CHP_OK)
            continue;
        chp_hash(mixed, 32, pt + 8, 32, enc[0], 32);
        sub_key(enc[nk++], mixed, "chapar-store-enc-v1");
    }
    free(vf);
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    uint8_t *d = read_file(p, &n), *pt = malloc(1 << 20);
    assert_true(d && pt);
    for (size_t o = 0; o + 8 + 17 + 44 <= n; o += 2) {
        const uint8_t *h = d + o; /* an LMDB leaf: sizes, flags, 17-byte key */
        size_t ds = le16(h) | (size_t)le16(h + 2) << 16;
        int t = h[8];
        if (le16(h + 6) != 17 || le16(h + 4) != 0 || (table ? t != table : t < 1 || t > 6) ||
            ds < 44 || ds > (1 << 20) || o + 25 + ds > n)
            continue;
        for (size_t k = 0; k < nk; k++)
            if (chp_aead_decrypt(pt, h + 25 + 24, ds - 24, h + 8, 17, h + 25, enc[k]) == CHP_OK)
                fn(ctx, pt, ds - 40);
    }
    free(pt);
    free(d);
}
