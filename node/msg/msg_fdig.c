/* msg_fdig.c - an incoming file's piece digests, for msg_file.c: kept as
 * each piece's signature is verified (the digest it commits to,
 * PROTOCOL.md §18.8), so a complete file is checked from them without
 * being read back. Pure helpers on struct xfile; below msg_file.c in the
 * layer's order. */
#include "node/msg/msg_fdig.h"

#include "proto/crypto.h"
#include "proto/file.h"

#include <stdlib.h>
#include <string.h>

/* Pieces of an incoming file whose digests are kept (32 bytes each): up
 * to 64 MiB; a larger file is read back to be checked. */
#define DIGESTS_MAX 4096u

/* An incoming file's digests (struct xfile), wiped. */
void chp_msgi_fdig_free(struct xfile *x)
{
    if (x->dg)
        chp_memzero(x->dg, (size_t)x->ndg * 32);
    free(x->dg);
    x->dg = NULL;
    x->ndg = 0;
}

void chp_msgi_fdig_drop(struct xfile *x)
{
    chp_msgi_fdig_free(x);
    x->dg_off = 1;
}

/* Keeps piece i's digest d (its len data bytes) for the end check. Before
 * the manifest, room for at most twice the pieces held and 64 more, and
 * one piece shorter than CHP_FILE_PIECE (the last, or the file is wrong):
 * a piece far ahead or a second short one makes the file be read back
 * when complete instead, which checks every length. */
void chp_msgi_fdig_put(struct xfile *x, uint32_t i, const uint8_t d[32], size_t len)
{
    if (x->dg_off)
        return;
    int ahead = x->have_manifest ? x->count > DIGESTS_MAX : i >= 2u * x->have + 64u;
    if (i >= DIGESTS_MAX || ahead ||
        (len < CHP_FILE_PIECE && x->dg_short && x->dg_short != i + 1)) {
        chp_msgi_fdig_drop(x);
        return;
    }
    if (i >= x->ndg) { /* the manifest's count; pieces before it: doubling */
        uint32_t n = x->have_manifest ? x->count : x->ndg ? x->ndg * 2 : 64u;
        if (n <= i)
            n = i + 1;
        if (n > DIGESTS_MAX)
            n = DIGESTS_MAX;
        uint8_t *p = malloc((size_t)n * 32);
        if (!p) {
            chp_msgi_fdig_drop(x);
            return;
        }
        if (x->dg)
            memcpy(p, x->dg, (size_t)x->ndg * 32);
        chp_msgi_fdig_free(x);
        x->dg = p;
        x->ndg = n;
    }
    memcpy(x->dg + (size_t)i * 32, d, 32);
    if (len < CHP_FILE_PIECE)
        x->dg_short = i + 1;
    x->got += len;
}

/* Whether the digests of every piece of complete x are known. */
int chp_msgi_fdig_known(const struct xfile *x)
{
    return !x->dg_off && x->dg && x->ndg >= x->count;
}

/* The end check of a complete x whose digests are known (dg_known):
 * CHP_OK when the hash over them is the manifest's and the pieces'
 * lengths are right. Each digest is the one the piece's signature
 * committed to (PROTOCOL.md §18.8), over its file id, index and data. A
 * piece's data is at most CHP_FILE_PIECE bytes and only one (dg_short)
 * was shorter: with it the last and the total the manifest's size, every
 * length is the one the manifest implies. */
int chp_msgi_fdig_check(const struct xfile *x)
{
    if (x->got != x->size || (x->dg_short && x->dg_short != x->count))
        return CHP_E_MALFORMED;
    chp_file_hash_ctx h;
    chp_file_hash_init(&h, x->id);
    for (uint32_t i = 0; i < x->count; i++)
        chp_file_hash_digest(&h, x->dg + (size_t)i * 32);
    uint8_t got[32];
    chp_file_hash_final(&h, got);
    int rc = chp_memeq(got, x->hash, 32) ? CHP_OK : CHP_E_CORRUPT;
    chp_memzero(got, sizeof got);
    chp_memzero(&h, sizeof h);
    return rc;
}
