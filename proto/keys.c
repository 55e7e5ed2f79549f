/* keys.c - contact, epoch, intro and room key schedules. */
#include "proto/keys.h"

#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/envelope.h"

#include <assert.h>
#include <string.h>

#define KDF_MAX_INPUT 256
static const uint8_t zero_key[32];

uint64_t chp_epoch_of(uint64_t unix_time)
{
    return unix_time / CHP_EPOCH_SECONDS;
}

void chp_kdf(uint8_t *out, size_t outlen, const uint8_t key[32], const char *label,
             const void *data, size_t len)
{
    uint8_t msg[KDF_MAX_INPUT];
    size_t ll = strlen(label);
    assert(ll + 1 + len <= sizeof msg);
    memcpy(msg, label, ll);
    msg[ll] = 0;
    if (len)
        memcpy(msg + ll + 1, data, len);
    chp_hash(out, outlen, msg, ll + 1 + len, key, 32);
    chp_memzero(msg, sizeof msg);
}

int chp_ks_root(const uint8_t my_eph_sk[32], const uint8_t my_eph_pk[32],
                const uint8_t their_eph_pk[32], const uint8_t my_id[32], const uint8_t their_id[32],
                uint8_t root[32])
{
    uint8_t dh[32], ctx[128];
    int rc = chp_x25519(dh, my_eph_sk, their_eph_pk);
    if (rc != CHP_OK)
        return rc;
    /* Order the (identity, ephemeral) pairs so both sides hash the same. */
    int c = memcmp(my_id, their_id, 32);
    int mine_first = c < 0 || (c == 0 && memcmp(my_eph_pk, their_eph_pk, 32) <= 0);
    const uint8_t *id_a = mine_first ? my_id : their_id, *id_b = mine_first ? their_id : my_id;
    const uint8_t *e_a = mine_first ? my_eph_pk : their_eph_pk;
    const uint8_t *e_b = mine_first ? their_eph_pk : my_eph_pk;
    memcpy(ctx, id_a, 32);
    memcpy(ctx + 32, id_b, 32);
    memcpy(ctx + 64, e_a, 32);
    memcpy(ctx + 96, e_b, 32);
    chp_kdf(root, 32, dh, "chapar-root-v1", ctx, sizeof ctx);
    chp_memzero(dh, sizeof dh);
    return CHP_OK;
}

void chp_ks_epoch_first(const uint8_t root[32], uint8_t epoch_key[32])
{
    chp_kdf(epoch_key, 32, root, "chapar-epoch-first-v1", NULL, 0);
}

void chp_ks_epoch_next(const uint8_t epoch_key[32], uint8_t next[32])
{
    uint8_t tmp[32]; /* next may alias epoch_key */
    chp_kdf(tmp, 32, epoch_key, "chapar-epoch-next-v1", NULL, 0);
    memcpy(next, tmp, 32);
    chp_memzero(tmp, sizeof tmp);
}

void chp_ks_msg_key(const uint8_t epoch_key[32], const uint8_t sender_id[32], uint8_t key[32])
{
    chp_kdf(key, 32, epoch_key, "chapar-msg-key-v1", sender_id, 32);
}

void chp_ks_tag(const uint8_t epoch_key[32], const uint8_t recipient_id[32], uint32_t seq,
                uint8_t tag[16])
{
    uint8_t d[36];
    memcpy(d, recipient_id, 32);
    chp_put_be32(d + 32, seq);
    chp_kdf(tag, 16, epoch_key, "chapar-tag-v1", d, sizeof d);
}

void chp_ks_intro_tag(const uint8_t recipient_id[32], uint64_t epoch, uint8_t tag[16])
{
    uint8_t e[8];
    chp_put_be64(e, epoch);
    chp_kdf(tag, 16, recipient_id, "chapar-intro-tag-v1", e, sizeof e);
}

static void intro_key(const uint8_t dh[32], const uint8_t eph_pk[32],
                      const uint8_t recipient_id[32], uint8_t key[32])
{
    uint8_t d[64];
    memcpy(d, eph_pk, 32);
    memcpy(d + 32, recipient_id, 32);
    chp_kdf(key, 32, dh, "chapar-intro-key-v1", d, sizeof d);
}

int chp_ks_intro_key_send(const uint8_t eph_sk[32], const uint8_t eph_pk[32],
                          const uint8_t recipient_id[32], uint8_t key[32])
{
    uint8_t xpk[32], dh[32];
    int rc = chp_ed_pk_to_x(recipient_id, xpk);
    if (rc != CHP_OK)
        return rc;
    rc = chp_x25519(dh, eph_sk, xpk);
    if (rc != CHP_OK)
        return rc;
    intro_key(dh, eph_pk, recipient_id, key);
    chp_memzero(dh, sizeof dh);
    return CHP_OK;
}

int chp_ks_intro_key_recv(const chp_identity *me, const uint8_t eph_pk[32], uint8_t key[32])
{
    uint8_t dh[32];
    int rc = chp_identity_dh(me, eph_pk, dh);
    if (rc != CHP_OK)
        return rc;
    intro_key(dh, eph_pk, chp_identity_pk(me), key);
    chp_memzero(dh, sizeof dh);
    return CHP_OK;
}

int chp_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and code points past U+10FFFF. */
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* The code point starting at s (valid UTF-8 lead byte >= 0xc0). */
static uint32_t decode_at(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (p[0] < 0xe0)
        return ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
    if (p[0] < 0xf0)
        return ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
           ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
}

/* Controls, spaces and invisible format characters that would let two room
 * names look alike ("#a b" with a no-break space, bidi overrides).
 * ZWNJ/ZWJ (U+200C/D) stay allowed: Persian words need them. */
static int invisible(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0xa0) || cp == 0xad || cp == 0x034f || cp == 0x061c ||
           cp == 0x1680 || cp == 0x180e || (cp >= 0x2000 && cp <= 0x200b) ||
           (cp >= 0x200e && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
           (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || cp == 0xfeff ||
           (cp >= 0xfff0 && cp <= 0xfffb) || (cp >= 0xe0000 && cp <= 0xe007f);
}

uint32_t chp_utf8_cp(const char *s, size_t *n)
{
    unsigned char c = (unsigned char)s[0];
    *n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    return c < 0x80 ? c : decode_at(s);
}

int chp_cp_hidden(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || invisible(cp);
}

int chp_text_name_ok(const char *s, size_t len)
{
    if (!s || !chp_utf8_valid(s, len))
        return 0;
    if (len && (s[0] == ' ' || s[len - 1] == ' '))
        return 0;
    int joiner_ok = 0, after_joiner = 0; /* a joiner may follow; one just did */
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp = c < 0x80 ? c : decode_at(s + i);
        i += c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (cp < 0x20 || cp == 0x7f || invisible(cp))
            return 0;
        int joiner = cp == 0x200c || cp == 0x200d;
        if ((joiner && !joiner_ok) || (after_joiner && (joiner || cp < 0x80)))
            return 0;
        after_joiner = joiner;
        joiner_ok = !joiner && cp >= 0x80;
    }
    return !after_joiner;
}

int chp_room_canon(const char *name, size_t len, char *canon, size_t *canon_len)
{
    assert((name || len == 0) && canon && canon_len);
    if (len < 2 || len > CHP_ROOM_NAME_MAX || name[0] != '#')
        return CHP_E_ROOM_NAME;
    if (!chp_utf8_valid(name, len))
        return CHP_E_UTF8;
    canon[0] = '#';
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c == 0x7f || c == '#')
            return CHP_E_ROOM_NAME;
        if (c >= 0xc0 && invisible(decode_at(name + i)))
            return CHP_E_ROOM_NAME;
        canon[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    canon[len] = '\0';
    *canon_len = len;
    return CHP_OK;
}

int chp_ks_room_public(const char *name, size_t len, uint8_t room_key[32])
{
    char canon[CHP_ROOM_NAME_MAX + 1];
    size_t cl;
    int rc = chp_room_canon(name, len, canon, &cl);
    if (rc != CHP_OK)
        return rc;
    chp_kdf(room_key, 32, zero_key, "chapar-room-public-v1", canon, cl);
    return CHP_OK;
}

int chp_ks_room_passphrase(const char *name, size_t len, const char *pass, size_t passlen,
                           uint8_t room_key[32])
{
    char canon[CHP_ROOM_NAME_MAX + 1];
    size_t cl;
    uint8_t salt[16], stretched[32];
    int rc = chp_room_canon(name, len, canon, &cl);
    if (rc != CHP_OK)
        return rc;
    chp_kdf(salt, sizeof salt, zero_key, "chapar-room-salt-v1", canon, cl);
    rc = chp_pwhash(stretched, sizeof stretched, pass, passlen, salt, CHP_ROOM_PWHASH_OPS,
                    CHP_ROOM_PWHASH_MEM);
    if (rc == CHP_OK)
        chp_kdf(room_key, 32, stretched, "chapar-room-pass-v1", canon, cl);
    chp_memzero(stretched, sizeof stretched);
    return rc;
}

void chp_ks_room_tag(const uint8_t room_key[32], uint64_t epoch, uint8_t tag[16])
{
    uint8_t e[8];
    chp_put_be64(e, epoch);
    chp_kdf(tag, 16, room_key, "chapar-room-tag-v1", e, sizeof e);
}

void chp_ks_room_msg_key(const uint8_t room_key[32], uint64_t epoch, uint8_t key[32])
{
    uint8_t e[8];
    chp_put_be64(e, epoch);
    chp_kdf(key, 32, room_key, "chapar-room-msg-v1", e, sizeof e);
}

void chp_ks_room_fingerprint(const uint8_t room_key[32], char out[CHP_FPR_STR_LEN + 1])
{
    uint8_t f[32];
    chp_kdf(f, sizeof f, room_key, "chapar-room-fingerprint-v1", NULL, 0);
    chp_id_fingerprint(f, out); /* the encoding of §4.2, over f */
}
