/* envelope.c - envelope v1 checks, sealing and opening. */
#include "proto/envelope.h"

#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/pow.h"

#include <assert.h>
#include <string.h>

const uint32_t chp_env_buckets[CHP_ENV_NBUCKETS] = {256, 1024, 4096, CHP_ENV_BUCKET_MAX};

static const char sig_label[] = "chapar-inner-sig-v1";   /* 19 bytes */
static const char nonce_label[] = "chapar-env-nonce-v1"; /* 19 bytes, BLAKE2b key */
#define SIG_MSG_BYTES (sizeof sig_label - 1 + CHP_ENV_HDR_BYTES + 1 + 4 + 32)

uint32_t chp_envelope_ntpb(size_t len, uint32_t ntpb)
{
    if (!ntpb)
        ntpb = CHP_POW_NTPB_DEFAULT;
    if (len == CHP_ENV_MAX_BYTES)
        ntpb = ntpb / CHP_POW_BULK_DIV ? ntpb / CHP_POW_BULK_DIV : 1;
    return ntpb;
}

chp_env_params chp_env_params_default(void)
{
    chp_env_params p = {CHP_POW_NTPB_DEFAULT, CHP_ENV_MAX_TTL, CHP_ENV_CLOCK_SKEW};
    return p;
}

size_t chp_inner_bucket(size_t payload_len)
{
    if (payload_len > CHP_PAYLOAD_MAX)
        return 0;
    for (int i = 0; i < CHP_ENV_NBUCKETS; i++)
        if (payload_len + CHP_INNER_OVERHEAD <= chp_env_buckets[i])
            return chp_env_buckets[i];
    return 0;
}

size_t chp_envelope_size(size_t payload_len)
{
    size_t b = chp_inner_bucket(payload_len);
    return b ? b + CHP_ENV_OVERHEAD : 0;
}

static int is_bucket(size_t n)
{
    for (int i = 0; i < CHP_ENV_NBUCKETS; i++)
        if (n == chp_env_buckets[i])
            return 1;
    return 0;
}

static void hdr_decode(const uint8_t *p, chp_env_hdr *h)
{
    h->version = p[0];
    h->created = chp_be64(p + 1);
    h->expiry = chp_be64(p + 9);
    memcpy(h->tag, p + 17, CHP_ENV_TAG_BYTES);
    memcpy(h->key, p + 33, 32);
}

int chp_envelope_parse(const uint8_t *buf, size_t len, chp_env_hdr *hdr, const uint8_t **ct,
                       size_t *ctlen, uint64_t *pow_nonce)
{
    assert(buf || len == 0);
    if (len < CHP_ENV_OVERHEAD || !is_bucket(len - CHP_ENV_OVERHEAD))
        return CHP_E_ENV_SIZE;
    if (buf[0] != CHP_ENV_VERSION)
        return CHP_E_ENV_VERSION;
    if (hdr)
        hdr_decode(buf, hdr);
    if (ct)
        *ct = buf + CHP_ENV_HDR_BYTES;
    if (ctlen)
        *ctlen = len - CHP_ENV_HDR_BYTES - CHP_ENV_POW_NONCE_BYTES;
    if (pow_nonce)
        *pow_nonce = chp_be64(buf + len - CHP_ENV_POW_NONCE_BYTES);
    return CHP_OK;
}

void chp_envelope_id(const uint8_t *buf, size_t len, uint8_t id[CHP_ENV_ID_BYTES])
{
    chp_hash(id, CHP_ENV_ID_BYTES, buf, len, NULL, 0);
}

int chp_envelope_check(const uint8_t *buf, size_t len, uint64_t now, const chp_env_params *params,
                       chp_env_hdr *hdr, uint8_t id[CHP_ENV_ID_BYTES])
{
    chp_env_params def = chp_env_params_default();
    const chp_env_params *p = params ? params : &def;
    uint64_t nonce;
    int rc = chp_envelope_parse(buf, len, NULL, NULL, NULL, &nonce);
    if (rc != CHP_OK)
        return rc;
    uint64_t created = chp_be64(buf + 1), expiry = chp_be64(buf + 9);
    if (expiry <= created || expiry - created > p->max_ttl)
        return CHP_E_ENV_TTL;
    if (now >= expiry)
        return CHP_E_ENV_EXPIRED;
    if (created > now && created - now > p->clock_skew)
        return CHP_E_ENV_FUTURE;
    uint8_t initial[32], full[32];
    chp_hash_prefix_and_full(buf, len, CHP_ENV_POW_NONCE_BYTES, initial, full);
    uint32_t ntpb = chp_envelope_ntpb(len, p->pow_ntpb);
    if (chp_pow_trial(initial, nonce) > chp_pow_target(len, expiry - created, ntpb))
        return CHP_E_ENV_POW;
    if (hdr)
        hdr_decode(buf, hdr);
    if (id)
        memcpy(id, full, CHP_ENV_ID_BYTES);
    return CHP_OK;
}

/* The signed statement: label || header || type || len || BLAKE2b(payload)
 * (hash when the caller made it already, else computed here).
 * Binding the header ties the content to this one envelope (tag, key field,
 * times), so it cannot be re-wrapped for someone else or another time. */
static void sig_message(uint8_t out[SIG_MSG_BYTES], const uint8_t hdr[CHP_ENV_HDR_BYTES],
                        uint8_t type, const uint8_t *payload, uint32_t len, const uint8_t *hash)
{
    chp_wr w;
    uint8_t ph[32];
    if (hash)
        memcpy(ph, hash, sizeof ph);
    else
        chp_hash(ph, sizeof ph, payload, len, NULL, 0);
    chp_wr_init(&w, out, SIG_MSG_BYTES);
    chp_wr_bytes(&w, sig_label, sizeof sig_label - 1);
    chp_wr_bytes(&w, hdr, CHP_ENV_HDR_BYTES);
    chp_wr_u8(&w, type);
    chp_wr_u32(&w, len);
    chp_wr_bytes(&w, ph, sizeof ph);
    assert(w.err == CHP_OK && w.off == SIG_MSG_BYTES);
}

static void aead_nonce(uint8_t nonce[CHP_AEAD_NONCE_BYTES], const uint8_t hdr[CHP_ENV_HDR_BYTES])
{
    chp_hash(nonce, CHP_AEAD_NONCE_BYTES, hdr, CHP_ENV_HDR_BYTES, nonce_label,
             sizeof nonce_label - 1);
}

int chp_envelope_seal(const chp_env_seal_args *a, const chp_identity *sender, const chp_rng *rng,
                      uint8_t *out, size_t cap, size_t *outlen)
{
    return chp_envelope_seal_id(a, sender, rng, out, cap, outlen, NULL);
}

int chp_envelope_seal_id(const chp_env_seal_args *a, const chp_identity *sender, const chp_rng *rng,
                         uint8_t *out, size_t cap, size_t *outlen, uint8_t id[CHP_ENV_ID_BYTES])
{
    assert(a && a->tag && a->key && (a->payload || a->len == 0) && sender && rng && out && outlen);
    size_t bucket = chp_inner_bucket(a->len);
    if (!bucket)
        return CHP_E_TOO_BIG;
    if (a->type == 0)
        return CHP_E_ARG;
    size_t total = bucket + CHP_ENV_OVERHEAD;
    if (cap < total)
        return CHP_E_OVERFLOW;
    if (a->expiry <= a->created || a->expiry - a->created > CHP_ENV_MAX_TTL)
        return CHP_E_ENV_TTL;

    /* Header. */
    chp_wr w;
    chp_wr_init(&w, out, cap);
    chp_wr_u8(&w, CHP_ENV_VERSION);
    chp_wr_u64(&w, a->created);
    chp_wr_u64(&w, a->expiry);
    chp_wr_bytes(&w, a->tag, CHP_ENV_TAG_BYTES);
    if (a->keyfield) {
        chp_wr_bytes(&w, a->keyfield, 32);
    } else {
        uint8_t rnd[32];
        chp_rng_fill(rng, rnd, sizeof rnd);
        chp_wr_bytes(&w, rnd, sizeof rnd);
    }
    assert(w.err == CHP_OK);

    /* Inner plaintext, built in place where the ciphertext will go: the
     * AEAD encrypts in place, so no second buffer holds the plaintext. */
    uint8_t *pt = out + CHP_ENV_HDR_BYTES;
    uint8_t sigmsg[SIG_MSG_BYTES], sig[64], nonce[CHP_AEAD_NONCE_BYTES];
    sig_message(sigmsg, out, a->type, a->payload, (uint32_t)a->len, a->payload_hash);
    chp_identity_sign(sender, sigmsg, sizeof sigmsg, sig);
    chp_wr inner;
    chp_wr_init(&inner, pt, bucket);
    chp_wr_bytes(&inner, chp_identity_pk(sender), 32);
    chp_wr_bytes(&inner, sig, 64);
    chp_wr_u8(&inner, a->type);
    chp_wr_u32(&inner, (uint32_t)a->len);
    chp_wr_bytes(&inner, a->payload, a->len);
    chp_wr_zero(&inner, bucket - inner.off);
    assert(inner.err == CHP_OK && inner.off == bucket);
    aead_nonce(nonce, out);
    chp_aead_encrypt(pt, pt, bucket, out, CHP_ENV_HDR_BYTES, nonce, a->key);

    /* Proof of work over everything before the nonce; the same pass, with
     * the nonce added, is the envelope's id (a copy of the state
     * finalises the prefix, as chp_hash_prefix_and_full does). */
    uint8_t initial[32];
    size_t body = CHP_ENV_HDR_BYTES + bucket + CHP_AEAD_TAG_BYTES;
    chp_b2_ctx st, fork;
    chp_b2_init(&st);
    chp_b2_update(&st, out, body);
    fork = st;
    chp_b2_final(&fork, initial);
    uint32_t ntpb = chp_envelope_ntpb(total, a->pow_ntpb);
    uint64_t n = chp_pow_solve(initial, chp_pow_target(total, a->expiry - a->created, ntpb), 0);
    chp_put_be64(out + body, n);
    if (id) {
        chp_b2_update(&st, out + body, CHP_ENV_POW_NONCE_BYTES);
        chp_b2_final(&st, id);
    }
    *outlen = total;
    return CHP_OK;
}

int chp_inner_parse(const uint8_t *pt, size_t len, chp_inner *out)
{
    assert((pt || len == 0) && out);
    chp_rd r;
    uint32_t plen;
    if (!is_bucket(len))
        goto malformed;
    chp_rd_init(&r, pt, len);
    chp_rd_bytes(&r, out->sender, 32);
    chp_rd_bytes(&r, out->sig, 64);
    chp_rd_u8(&r, &out->type);
    chp_rd_u32(&r, &plen);
    if (r.err || out->type == 0 || plen > chp_rd_left(&r))
        goto malformed;
    chp_rd_ref(&r, &out->payload, plen);
    out->len = plen;
    /* Canonical padding: all zero. */
    uint8_t acc = 0;
    for (size_t i = r.off; i < len; i++)
        acc |= pt[i];
    return acc ? CHP_E_PADDING : CHP_OK;
malformed:
    return CHP_E_MALFORMED;
}

int chp_envelope_open_ex(const uint8_t *buf, size_t len, const uint8_t key[32], uint8_t *pt,
                         size_t cap, chp_env_hdr *hdr, chp_inner *out, const uint8_t *verified,
                         uint8_t *digest)
{
    assert(key && pt && out);
    memset(out, 0, sizeof *out);
    const uint8_t *ct;
    size_t ctlen;
    uint8_t nonce[CHP_AEAD_NONCE_BYTES], sigmsg[SIG_MSG_BYTES], ph[32];
    int rc = chp_envelope_parse(buf, len, hdr, &ct, &ctlen, NULL);
    if (rc != CHP_OK)
        return rc;
    size_t ptlen = ctlen - CHP_AEAD_TAG_BYTES;
    if (cap < ptlen)
        return CHP_E_OVERFLOW;
    aead_nonce(nonce, buf);
    rc = chp_aead_decrypt(pt, ct, ctlen, buf, CHP_ENV_HDR_BYTES, nonce, key);
    if (rc != CHP_OK)
        return rc;
    rc = chp_inner_parse(pt, ptlen, out);
    if (rc != CHP_OK)
        goto fail;
    if (verified) {
        memcpy(ph, verified, sizeof ph);
    } else {
        chp_hash(ph, sizeof ph, out->payload, out->len, NULL, 0);
        sig_message(sigmsg, buf, out->type, out->payload, out->len, ph);
        rc = chp_sign_verify(out->sig, sigmsg, sizeof sigmsg, out->sender);
        if (rc != CHP_OK)
            goto fail;
    }
    if (digest)
        memcpy(digest, ph, sizeof ph);
    chp_memzero(ph, sizeof ph);
    return CHP_OK;
fail:
    chp_memzero(ph, sizeof ph);
    chp_memzero(pt, ptlen);
    memset(out, 0, sizeof *out);
    return rc;
}

int chp_envelope_open(const uint8_t *buf, size_t len, const uint8_t key[32], uint8_t *pt,
                      size_t cap, chp_env_hdr *hdr, chp_inner *out)
{
    return chp_envelope_open_ex(buf, len, key, pt, cap, hdr, out, NULL, NULL);
}
