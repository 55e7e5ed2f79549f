/* identity.h - a user's long-term identity: an Ed25519 key pair with the
 * X25519 pair bound to it by the birational map, and its sealed file form.
 *
 * The secret parts live in guarded, mlock'ed memory and are wiped by
 * chp_identity_destroy(). */
#ifndef CHP_IDENTITY_H
#define CHP_IDENTITY_H

#include "proto/crypto.h"
#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct chp_identity chp_identity;

/* Sealed key file: see docs/PROTOCOL.md "Sealed identity file". */
#define CHP_KEYFILE_BYTES           105
#define CHP_KEYFILE_MODE_PASSPHRASE 1
#define CHP_KEYFILE_MODE_KEY        2
/* Argon2id limits a key file may ask for; larger ones are refused so a
 * hostile file cannot make unlocking take hours or gigabytes. */
#define CHP_KEYFILE_OPS_MAX     32
#define CHP_KEYFILE_MEM_MAX_KIB (1024u * 1024u)
/* Defaults for new files: libsodium's "interactive" profile (2 passes,
 * 64 MiB), about 0.1-0.2 s here. */
#define CHP_KEYFILE_OPS_DEFAULT     2
#define CHP_KEYFILE_MEM_DEFAULT_KIB (64u * 1024u)

/* A fresh identity from rng. *out is owned by the caller. */
CHP_WUR int chp_identity_generate(const chp_rng *rng, chp_identity **out);
/* The identity whose Ed25519 seed is seed (32 bytes). */
CHP_WUR int chp_identity_from_seed(const uint8_t seed[32], chp_identity **out);
/* Wipes and frees; accepts NULL and *idp == NULL; sets *idp = NULL. */
void chp_identity_destroy(chp_identity **idp);

/* Borrowed 32-byte public keys, valid until the identity is destroyed. */
const uint8_t *chp_identity_pk(const chp_identity *id);
const uint8_t *chp_identity_xpk(const chp_identity *id);

/* The key that encrypts this user's local tables at rest (contacts,
 * history, outbox...): KDF(seed, "chapar-storage-key-v1", ""), so it is
 * unlocked exactly when the identity is, and gone when the identity is. */
void chp_identity_storage_key(const chp_identity *id, uint8_t key[32]);

/* Ed25519 signature over msg. */
void chp_identity_sign(const chp_identity *id, const void *msg, size_t len, uint8_t sig[64]);
/* X25519(identity's secret, their_xpk); CHP_E_DH on a low-order point. */
CHP_WUR int chp_identity_dh(const chp_identity *id, const uint8_t their_xpk[32],
                            uint8_t shared[32]);

/* Seals the identity's seed with a key from the passphrase (Argon2id with
 * opslimit and memlimit_kib, random salt) into out. */
CHP_WUR int chp_identity_seal_passphrase(const chp_identity *id, const char *pass, size_t passlen,
                                         uint32_t opslimit, uint32_t memlimit_kib,
                                         const chp_rng *rng, uint8_t out[CHP_KEYFILE_BYTES]);
/* Seals with a 32-byte random key kept elsewhere (the explicit
 * no-passphrase mode: the key sits in a 0600 file beside the sealed one). */
CHP_WUR int chp_identity_seal_key(const chp_identity *id, const uint8_t key[32], const chp_rng *rng,
                                  uint8_t out[CHP_KEYFILE_BYTES]);
/* Which mode a sealed file uses (CHP_KEYFILE_MODE_*), or CHP_E_KEYFILE. */
CHP_WUR int chp_keyfile_mode(const uint8_t *buf, size_t len, int *mode);
/* Opens a sealed file. CHP_E_KEYFILE for a malformed file or the wrong
 * mode, CHP_E_PASSPHRASE for a wrong passphrase or key. */
CHP_WUR int chp_identity_unseal_passphrase(const uint8_t *buf, size_t len, const char *pass,
                                           size_t passlen, chp_identity **out);
CHP_WUR int chp_identity_unseal_key(const uint8_t *buf, size_t len, const uint8_t key[32],
                                    chp_identity **out);

#endif
