/* bundle.c - the record layer and the sealing of bundles (PROTOCOL.md §18). */
#include "proto/bundle.h"

#include "proto/cursor.h"

#include <assert.h>
#include <string.h>

static const uint8_t magic[7] = {'C', 'H', 'P', 'B', 'N', 'D', 'L'};

/* ---- records ---- */

/* check = BLAKE2b-128(key = the previous check, type | len | payload); the
 * header's kind keys the first (16 bytes: kind, then zeros). */
static void rec_check(const uint8_t chain[16], const uint8_t *rec, size_t n, uint8_t out[16])
{
    chp_hash(out, CHP_BUNDLE_CHECK, rec, n, chain, CHP_BUNDLE_CHECK);
}

static void chain_start(uint8_t chain[16], uint8_t kind)
{
    memset(chain, 0, CHP_BUNDLE_CHECK);
    chain[0] = kind;
}

int chp_bundle_wr_begin(chp_bundle_wr *w, uint8_t kind, chp_buf *out)
{
    memset(w, 0, sizeof *w);
    chain_start(w->chain, kind);
    int rc = chp_buf_put(out, magic, sizeof magic);
    return rc == CHP_OK ? chp_buf_put(out, &kind, 1) : rc;
}

int chp_bundle_wr_rec(chp_bundle_wr *w, uint8_t type, const uint8_t *p, size_t len, chp_buf *out)
{
    assert(!w->ended);
    if (len > CHP_BUNDLE_REC_MAX)
        return CHP_E_TOO_BIG;
    if (chp_buf_reserve(out, chp_bundle_rec_size(len)) != CHP_OK)
        return CHP_E_NOMEM;
    uint8_t *r = out->p + out->len;
    r[0] = type;
    chp_put_be32(r + 1, (uint32_t)len);
    if (len)
        memcpy(r + CHP_BUNDLE_REC_HDR, p, len);
    uint8_t c[CHP_BUNDLE_CHECK];
    rec_check(w->chain, r, CHP_BUNDLE_REC_HDR + len, c);
    memcpy(w->chain, c, CHP_BUNDLE_CHECK);
    memcpy(r + CHP_BUNDLE_REC_HDR + len, c, CHP_BUNDLE_CHECK);
    out->len += chp_bundle_rec_size(len);
    if (type != CHP_REC_END)
        w->count++;
    return CHP_OK;
}

int chp_bundle_wr_end(chp_bundle_wr *w, chp_buf *out)
{
    uint8_t n[8];
    chp_put_be64(n, w->count);
    int rc = chp_bundle_wr_rec(w, CHP_REC_END, n, sizeof n, out);
    if (rc == CHP_OK)
        w->ended = 1;
    return rc;
}

void chp_bundle_rd_init(chp_bundle_rd *r)
{
    memset(r, 0, sizeof *r);
}

int chp_bundle_is_open(const uint8_t *p, size_t len)
{
    return len >= sizeof magic && !memcmp(p, magic, sizeof magic);
}

static int rd_header(chp_bundle_rd *r, const uint8_t *buf, size_t len, size_t *used,
                     chp_bundle_rec *rec)
{
    if (len < CHP_BUNDLE_HDR_BYTES)
        return chp_bundle_is_open(buf, len) || memcmp(buf, magic, len) == 0 ? CHP_E_TRUNCATED
                                                                            : CHP_E_MALFORMED;
    uint8_t kind = buf[7];
    if (!chp_bundle_is_open(buf, len) ||
        (kind != CHP_BUNDLE_KIND_ENVELOPES && kind != CHP_BUNDLE_KIND_WANT))
        return CHP_E_MALFORMED;
    r->kind = kind;
    chain_start(r->chain, kind);
    *used = CHP_BUNDLE_HDR_BYTES;
    *rec = (chp_bundle_rec){.type = 0, .p = buf, .len = CHP_BUNDLE_HDR_BYTES};
    return CHP_OK;
}

int chp_bundle_rd_next(chp_bundle_rd *r, const uint8_t *buf, size_t len, size_t *used,
                       chp_bundle_rec *rec)
{
    *used = 0;
    memset(rec, 0, sizeof *rec);
    if (r->ended)
        return len ? CHP_E_MALFORMED : CHP_E_TRUNCATED;
    if (!r->kind)
        return rd_header(r, buf, len, used, rec);
    if (len < CHP_BUNDLE_REC_HDR)
        return CHP_E_TRUNCATED;
    uint8_t type = buf[0];
    uint32_t plen = chp_be32(buf + 1);
    if (type < CHP_REC_ENVELOPE || type > CHP_REC_END)
        return CHP_E_MALFORMED;
    if (plen > CHP_BUNDLE_REC_MAX)
        return CHP_E_TOO_BIG;
    size_t n = chp_bundle_rec_size(plen);
    if (len < n)
        return CHP_E_TRUNCATED;
    uint8_t c[CHP_BUNDLE_CHECK];
    rec_check(r->chain, buf, CHP_BUNDLE_REC_HDR + plen, c);
    if (!chp_memeq(c, buf + CHP_BUNDLE_REC_HDR + plen, CHP_BUNDLE_CHECK))
        return CHP_E_CORRUPT;
    if (type == CHP_REC_END && (plen != 8 || chp_be64(buf + CHP_BUNDLE_REC_HDR) != r->count))
        return CHP_E_MALFORMED;
    memcpy(r->chain, c, CHP_BUNDLE_CHECK);
    if (type == CHP_REC_END)
        r->ended = 1;
    else
        r->count++;
    *used = n;
    *rec = (chp_bundle_rec){.type = type, .p = buf + CHP_BUNDLE_REC_HDR, .len = plen};
    return CHP_OK;
}

/* ---- sealing ---- */

int chp_seal_key(const char *pass, size_t passlen, const uint8_t salt[CHP_SEAL_SALT],
                 uint8_t key[32])
{
    return chp_pwhash(key, 32, pass, passlen, salt, CHP_SEAL_OPS, CHP_SEAL_MEM);
}

/* nonce = index (big-endian u64) | 16 zero bytes: the key is new per file
 * (a fresh salt), so a counter never repeats under one key. The associated
 * data is one byte: 1 on the last chunk, so a file cut at a chunk boundary
 * fails as surely as one cut inside a chunk. */
static void chunk_nonce(uint64_t index, uint8_t nonce[CHP_AEAD_NONCE_BYTES])
{
    memset(nonce, 0, CHP_AEAD_NONCE_BYTES);
    chp_put_be64(nonce, index);
}

void chp_seal_chunk(const uint8_t key[32], uint64_t index, int last, const uint8_t *pt, uint8_t *ct)
{
    uint8_t nonce[CHP_AEAD_NONCE_BYTES], ad = last ? 1 : 0;
    chunk_nonce(index, nonce);
    chp_aead_encrypt(ct, pt, CHP_SEAL_CHUNK, &ad, 1, nonce, key);
}

int chp_open_chunk(const uint8_t key[32], uint64_t index, int last, const uint8_t *ct, uint8_t *pt)
{
    uint8_t nonce[CHP_AEAD_NONCE_BYTES], ad = last ? 1 : 0;
    chunk_nonce(index, nonce);
    return chp_aead_decrypt(pt, ct, CHP_SEAL_CT, &ad, 1, nonce, key) == CHP_OK ? CHP_OK
                                                                               : CHP_E_DECRYPT;
}

static unsigned floor_log2(uint64_t v)
{
    unsigned e = 0;
    while (v >>= 1)
        e++;
    return e;
}

/* Padmé (Nikitin et al., PURBs, 2019): keep the top floor(log2 E) + 1 bits
 * of a length whose highest bit is bit E, round the rest up. */
static uint64_t padme(uint64_t l)
{
    if (l < 2)
        return l;
    unsigned e = floor_log2(l), s = floor_log2(e) + 1;
    uint64_t mask = (1ull << (e - s)) - 1;
    return (l + mask) & ~mask;
}

uint64_t chp_seal_chunks(uint64_t plain)
{
    uint64_t need = plain / CHP_SEAL_CHUNK + (plain % CHP_SEAL_CHUNK != 0);
    return padme(need ? need : 1);
}

uint64_t chp_seal_file_chunks(uint64_t size)
{
    if (size < CHP_SEAL_SALT + CHP_SEAL_CT || (size - CHP_SEAL_SALT) % CHP_SEAL_CT)
        return 0;
    uint64_t c = (size - CHP_SEAL_SALT) / CHP_SEAL_CT;
    return padme(c) == c ? c : 0;
}
