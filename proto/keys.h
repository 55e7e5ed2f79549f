/* keys.h - key schedules: pure functions from secrets to the keys and tags
 * of contacts, epochs and rooms. Every derivation is keyed BLAKE2b with a
 * distinct label (libsodium 1.0.18 has no HKDF); PROTOCOL.md lists them.
 *
 * KDF(key, label, data) = BLAKE2b-256(key = key, message = label || data)
 * where label is an ASCII string followed by one 0x00 byte. */
#ifndef CHP_KEYS_H
#define CHP_KEYS_H

#include "proto/err.h"
#include "proto/envelope.h"
#include "proto/id.h"
#include "proto/identity.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_EPOCH_SECONDS 86400u /* one day */
/* Epoch keys older than this many epochs can no longer be needed: the
 * longest-lived envelope (max TTL) created in them has expired. */
#define CHP_EPOCH_KEEP    (CHP_ENV_MAX_TTL / CHP_EPOCH_SECONDS + 1)
#define CHP_ROOM_NAME_MAX 64
/* Argon2id cost of passphrase rooms: a network constant, since every member
 * must derive the same key. libsodium's "interactive" profile. */
#define CHP_ROOM_PWHASH_OPS 2u
#define CHP_ROOM_PWHASH_MEM (64u * 1024u * 1024u)

/* The epoch a unix time falls in. */
uint64_t chp_epoch_of(uint64_t unix_time);

/* The generic KDF above; out gets outlen (16..64) bytes. */
void chp_kdf(uint8_t *out, size_t outlen, const uint8_t key[32], const char *label,
             const void *data, size_t len);

/* Contact root secret from the ephemeral X25519 exchange at contact time:
 * both sides get the same 32 bytes. my_id/their_id are Ed25519 identity
 * keys (ordering makes the result symmetric). CHP_E_DH on a low-order peer
 * key. */
CHP_WUR int chp_ks_root(const uint8_t my_eph_sk[32], const uint8_t my_eph_pk[32],
                        const uint8_t their_eph_pk[32], const uint8_t my_id[32],
                        const uint8_t their_id[32], uint8_t root[32]);

/* The one-way epoch chain. The key of the first epoch comes from the root;
 * each next epoch's key from the previous one. Nothing derives an earlier
 * key from a later one, so deleting old keys makes old traffic unreadable. */
void chp_ks_epoch_first(const uint8_t root[32], uint8_t epoch_key[32]);
void chp_ks_epoch_next(const uint8_t epoch_key[32], uint8_t next[32]);

/* AEAD key for messages from sender_id in this epoch (each direction has
 * its own key). */
void chp_ks_msg_key(const uint8_t epoch_key[32], const uint8_t sender_id[32], uint8_t key[32]);

/* The seq-th recipient tag for recipient_id in this epoch: unlinkable to
 * anyone without the epoch key, different for every seq. */
void chp_ks_tag(const uint8_t epoch_key[32], const uint8_t recipient_id[32], uint32_t seq,
                uint8_t tag[16]);

/* First contact: the tag of intro envelopes to recipient_id in an epoch,
 * computable from the recipient's ID alone (so the recipient finds them by
 * table lookup), and the AEAD key the sender derives from its ephemeral
 * key and the recipient's X25519 key (chp_ks_intro_key_recv is the
 * recipient's side). */
void chp_ks_intro_tag(const uint8_t recipient_id[32], uint64_t epoch, uint8_t tag[16]);
CHP_WUR int chp_ks_intro_key_send(const uint8_t eph_sk[32], const uint8_t eph_pk[32],
                                  const uint8_t recipient_id[32], uint8_t key[32]);
CHP_WUR int chp_ks_intro_key_recv(const chp_identity *me, const uint8_t eph_pk[32],
                                  uint8_t key[32]);

/* Room names: "#" then 1..63 bytes of UTF-8 with no control characters,
 * no spaces or invisible format characters (ZWNJ/ZWJ allowed) and no
 * further '#'; ASCII letters are folded to lower case in canon (which
 * has room for CHP_ROOM_NAME_MAX + 1 bytes, NUL-terminated).
 * CHP_E_ROOM_NAME or CHP_E_UTF8 otherwise. */
CHP_WUR int chp_room_canon(const char *name, size_t len, char *canon, size_t *canon_len);

/* Room key of a public room: anyone who knows the name can read. */
CHP_WUR int chp_ks_room_public(const char *name, size_t len, uint8_t room_key[32]);
/* Room key of a passphrase room: Argon2id(passphrase, salt from the name). */
CHP_WUR int chp_ks_room_passphrase(const char *name, size_t len, const char *pass, size_t passlen,
                                   uint8_t room_key[32]);
/* The room's tag and AEAD key in an epoch. */
void chp_ks_room_tag(const uint8_t room_key[32], uint64_t epoch, uint8_t tag[16]);
void chp_ks_room_msg_key(const uint8_t room_key[32], uint64_t epoch, uint8_t key[32]);
/* The room's short fingerprint, 8 characters in the form of a user's
 * (PROTOCOL.md §9.4): members compare it to know they share one key. A
 * hash of the key under its own label, so it says nothing about the key
 * that the room's tags do not already say. */
void chp_ks_room_fingerprint(const uint8_t room_key[32], char out[CHP_FPR_STR_LEN + 1]);

/* Whether s[0..len) is valid UTF-8 (shortest form, no surrogates, <= U+10FFFF). */
int chp_utf8_valid(const char *s, size_t len);
/* The code point at s[0..] of valid UTF-8 and its length in bytes (*n). */
uint32_t chp_utf8_cp(const char *s, size_t *n);
/* Whether cp is one a name people read must not hold: a control
 * character, or an invisible, space-like or bidi one room names refuse. */
int chp_cp_hidden(uint32_t cp);

/* Whether s[0..len) is a name people can tell apart from another (nicks,
 * contact names): valid UTF-8 with no control character, none of the
 * invisible, space-like or bidi code points room names refuse, no space
 * at either end, and ZWNJ/ZWJ (U+200C/D) only between two non-ASCII
 * characters (Persian needs ZWNJ inside a word; at an edge, next to a
 * Latin letter or doubled it only hides). 1 if so, else 0. */
int chp_text_name_ok(const char *s, size_t len);

#endif
