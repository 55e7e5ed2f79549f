/* identity.c - identity key pairs and their sealed file form. */
#include "proto/identity.h"

#include "proto/cursor.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct chp_identity {
    uint8_t seed[32];
    uint8_t pk[32];
    uint8_t sk[64];
    uint8_t xpk[32];
    uint8_t xsk[32];
};

static const uint8_t keyfile_magic[8] = {'C', 'H', 'A', 'P', 'A', 'R', 'K', '1'};
#define KF_HDR 57 /* magic 8, mode 1, ops 4, mem 4, salt 16, nonce 24 */

int chp_identity_from_seed(const uint8_t seed[32], chp_identity **out)
{
    assert(seed && out);
    *out = NULL;
    chp_identity *id = chp_secure_alloc(sizeof *id);
    if (!id)
        return CHP_E_NOMEM;
    memcpy(id->seed, seed, 32);
    chp_sign_seed_keypair(id->seed, id->pk, id->sk);
    chp_ed_sk_to_x(id->sk, id->xsk);
    chp_x25519_base(id->xpk, id->xsk);
    *out = id;
    return CHP_OK;
}

int chp_identity_generate(const chp_rng *rng, chp_identity **out)
{
    uint8_t seed[32];
    chp_rng_fill(rng, seed, sizeof seed);
    int rc = chp_identity_from_seed(seed, out);
    chp_memzero(seed, sizeof seed);
    return rc;
}

void chp_identity_destroy(chp_identity **idp)
{
    if (!idp || !*idp)
        return;
    chp_memzero(*idp, sizeof **idp);
    chp_secure_free(*idp);
    *idp = NULL;
}

const uint8_t *chp_identity_pk(const chp_identity *id)
{
    assert(id);
    return id->pk;
}

const uint8_t *chp_identity_xpk(const chp_identity *id)
{
    assert(id);
    return id->xpk;
}

void chp_identity_storage_key(const chp_identity *id, uint8_t key[32])
{
    static const char label[] = "chapar-storage-key-v1"; /* KDF label incl. its 0x00 */
    assert(id && key);
    chp_hash(key, 32, label, sizeof label, id->seed, 32);
}

void chp_identity_sign(const chp_identity *id, const void *msg, size_t len, uint8_t sig[64])
{
    assert(id && sig);
    chp_sign(sig, msg, len, id->sk);
}

int chp_identity_dh(const chp_identity *id, const uint8_t their_xpk[32], uint8_t shared[32])
{
    assert(id && their_xpk && shared);
    return chp_x25519(shared, id->xsk, their_xpk);
}

/* Writes the file header and encrypts the seed under key. */
static void seal(const chp_identity *id, uint8_t mode, uint32_t ops, uint32_t mem_kib,
                 const uint8_t salt[16], const uint8_t key[32], const chp_rng *rng,
                 uint8_t out[CHP_KEYFILE_BYTES])
{
    chp_wr w;
    uint8_t nonce[24];
    chp_rng_fill(rng, nonce, sizeof nonce);
    chp_wr_init(&w, out, CHP_KEYFILE_BYTES);
    chp_wr_bytes(&w, keyfile_magic, 8);
    chp_wr_u8(&w, mode);
    chp_wr_u32(&w, ops);
    chp_wr_u32(&w, mem_kib);
    chp_wr_bytes(&w, salt, 16);
    chp_wr_bytes(&w, nonce, 24);
    assert(w.err == CHP_OK && w.off == KF_HDR);
    chp_aead_encrypt(out + KF_HDR, id->seed, 32, out, KF_HDR, nonce, key);
}

int chp_identity_seal_passphrase(const chp_identity *id, const char *pass, size_t passlen,
                                 uint32_t opslimit, uint32_t memlimit_kib, const chp_rng *rng,
                                 uint8_t out[CHP_KEYFILE_BYTES])
{
    assert(id && (pass || passlen == 0) && rng && out);
    if (opslimit > CHP_KEYFILE_OPS_MAX || memlimit_kib > CHP_KEYFILE_MEM_MAX_KIB)
        return CHP_E_ARG;
    uint8_t salt[16], key[32];
    chp_rng_fill(rng, salt, sizeof salt);
    int rc =
        chp_pwhash(key, sizeof key, pass, passlen, salt, opslimit, (uint64_t)memlimit_kib * 1024u);
    if (rc == CHP_OK)
        seal(id, CHP_KEYFILE_MODE_PASSPHRASE, opslimit, memlimit_kib, salt, key, rng, out);
    chp_memzero(key, sizeof key);
    return rc;
}

int chp_identity_seal_key(const chp_identity *id, const uint8_t key[32], const chp_rng *rng,
                          uint8_t out[CHP_KEYFILE_BYTES])
{
    assert(id && key && rng && out);
    static const uint8_t nosalt[16];
    seal(id, CHP_KEYFILE_MODE_KEY, 0, 0, nosalt, key, rng, out);
    return CHP_OK;
}

struct keyfile {
    uint8_t mode;
    uint32_t ops, mem_kib;
    const uint8_t *salt, *nonce, *ct;
};

/* Strict header parse: magic, known mode, limits within bounds, and for the
 * key mode all-zero salt and limits (one valid encoding). */
static int parse_keyfile(const uint8_t *buf, size_t len, struct keyfile *kf)
{
    chp_rd r;
    const uint8_t *magic;
    chp_rd_init(&r, buf, len);
    chp_rd_ref(&r, &magic, 8);
    chp_rd_u8(&r, &kf->mode);
    chp_rd_u32(&r, &kf->ops);
    chp_rd_u32(&r, &kf->mem_kib);
    chp_rd_ref(&r, &kf->salt, 16);
    chp_rd_ref(&r, &kf->nonce, 24);
    chp_rd_ref(&r, &kf->ct, 32 + CHP_AEAD_TAG_BYTES);
    if (chp_rd_done(&r) != CHP_OK)
        goto malformed;
    if (memcmp(magic, keyfile_magic, 8) != 0)
        goto malformed;
    if (kf->mode == CHP_KEYFILE_MODE_PASSPHRASE) {
        if (kf->ops < chp_pwhash_ops_min() || kf->ops > CHP_KEYFILE_OPS_MAX ||
            (uint64_t)kf->mem_kib * 1024u < chp_pwhash_mem_min() ||
            kf->mem_kib > CHP_KEYFILE_MEM_MAX_KIB)
            goto malformed;
    } else if (kf->mode == CHP_KEYFILE_MODE_KEY) {
        static const uint8_t zero[16];
        if (kf->ops != 0 || kf->mem_kib != 0 || memcmp(kf->salt, zero, 16) != 0)
            goto malformed;
    } else {
        goto malformed;
    }
    return CHP_OK;
malformed:
    return CHP_E_KEYFILE;
}

int chp_keyfile_mode(const uint8_t *buf, size_t len, int *mode)
{
    assert(buf && mode);
    struct keyfile kf;
    int rc = parse_keyfile(buf, len, &kf);
    if (rc == CHP_OK)
        *mode = kf.mode;
    return rc;
}

static int open_with_key(const uint8_t *buf, const struct keyfile *kf, const uint8_t key[32],
                         chp_identity **out)
{
    uint8_t seed[32];
    int rc = chp_aead_decrypt(seed, kf->ct, 32 + CHP_AEAD_TAG_BYTES, buf, KF_HDR, kf->nonce, key);
    if (rc != CHP_OK)
        return CHP_E_PASSPHRASE;
    rc = chp_identity_from_seed(seed, out);
    chp_memzero(seed, sizeof seed);
    return rc;
}

int chp_identity_unseal_passphrase(const uint8_t *buf, size_t len, const char *pass, size_t passlen,
                                   chp_identity **out)
{
    assert(buf && (pass || passlen == 0) && out);
    *out = NULL;
    struct keyfile kf;
    uint8_t key[32];
    int rc = parse_keyfile(buf, len, &kf);
    if (rc != CHP_OK)
        return rc;
    if (kf.mode != CHP_KEYFILE_MODE_PASSPHRASE)
        return CHP_E_KEYFILE;
    rc = chp_pwhash(key, sizeof key, pass, passlen, kf.salt, kf.ops, (uint64_t)kf.mem_kib * 1024u);
    if (rc == CHP_OK)
        rc = open_with_key(buf, &kf, key, out);
    chp_memzero(key, sizeof key);
    return rc;
}

int chp_identity_unseal_key(const uint8_t *buf, size_t len, const uint8_t key[32],
                            chp_identity **out)
{
    assert(buf && key && out);
    *out = NULL;
    struct keyfile kf;
    int rc = parse_keyfile(buf, len, &kf);
    if (rc != CHP_OK)
        return rc;
    if (kf.mode != CHP_KEYFILE_MODE_KEY)
        return CHP_E_KEYFILE;
    return open_with_key(buf, &kf, key, out);
}
