/* test_keys.c - key schedules: KDF, contact root, epoch chain, message keys
 * and tags, first-contact keys, room names and room keys, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/err.h"
#include "proto/identity.h"
#include "proto/keys.h"
#include "tests/unit/testutil.h"

#define NOW UINT64_C(1800000000)

/* X25519 points the exchange must refuse: the result would be all zero. */
static const uint8_t low_order[][32] = {
    {0}, /* 0 */
    {1}, /* 1 (order 4) */
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
     0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
     0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}, /* order 8 */
};
#define N_LOW_ORDER (sizeof low_order / sizeof low_order[0])

static void test_crypto_init(void **state)
{
    (void)state;
    assert_rc(chp_crypto_init(), CHP_OK); /* idempotent */
}

static void test_epoch_of(void **state)
{
    (void)state;
    assert_int_equal(CHP_EPOCH_SECONDS, 86400);
    assert_int_equal(chp_epoch_of(0), 0);
    assert_int_equal(chp_epoch_of(86399), 0);
    assert_int_equal(chp_epoch_of(86400), 1);
    assert_int_equal(chp_epoch_of(86401), 1);
    assert_int_equal(chp_epoch_of(NOW), 20833);
    assert_int_equal(chp_epoch_of(20834 * UINT64_C(86400) - 1), 20833);
    assert_int_equal(chp_epoch_of(20834 * UINT64_C(86400)), 20834);
    assert_int_equal(chp_epoch_of(UINT64_MAX), UINT64_MAX / 86400);
    /* Keys are kept long enough for the longest-lived envelope. */
    assert_int_equal(CHP_EPOCH_KEEP, 8);
    assert_true((uint64_t)CHP_EPOCH_KEEP * CHP_EPOCH_SECONDS > CHP_ENV_MAX_TTL);
}

static void test_kdf(void **state)
{
    (void)state;
    uint8_t key[32], key2[32], a[64], b[64], data[40];
    tu_pattern(key, sizeof key, 1);
    tu_pattern(key2, sizeof key2, 2);
    tu_pattern(data, sizeof data, 3);

    /* The documented definition: BLAKE2b(key, label || 0x00 || data). */
    uint8_t msg[64];
    memcpy(msg, "chapar-test-v1", 14);
    msg[14] = 0;
    memcpy(msg + 15, data, sizeof data);
    chp_kdf(a, 32, key, "chapar-test-v1", data, sizeof data);
    chp_hash(b, 32, msg, 15 + sizeof data, key, 32);
    assert_memory_equal(a, b, 32);

    /* Deterministic. */
    chp_kdf(b, 32, key, "chapar-test-v1", data, sizeof data);
    assert_memory_equal(a, b, 32);

    /* Labels, keys, data, output lengths all separate. */
    chp_kdf(b, 32, key, "chapar-test-v2", data, sizeof data);
    assert_memory_not_equal(a, b, 32);
    chp_kdf(b, 32, key2, "chapar-test-v1", data, sizeof data);
    assert_memory_not_equal(a, b, 32);
    chp_kdf(b, 32, key, "chapar-test-v1", data, sizeof data - 1);
    assert_memory_not_equal(a, b, 32);
    chp_kdf(b, 64, key, "chapar-test-v1", data, sizeof data);
    assert_memory_not_equal(a, b, 32);
    chp_kdf(b, 16, key, "chapar-test-v1", data, sizeof data);
    assert_memory_not_equal(a, b, 16);

    /* The NUL after the label keeps label and data apart: "ab" || "" vs
     * "a" || "b". */
    chp_kdf(a, 32, key, "ab", NULL, 0);
    chp_kdf(b, 32, key, "a", "b", 1);
    assert_memory_not_equal(a, b, 32);
    chp_kdf(b, 32, key, "ab", "", 0);
    assert_memory_equal(a, b, 32);

    /* The labels the schedules use are all different. */
    static const char *labels[] = {
        "chapar-root-v1",      "chapar-epoch-first-v1", "chapar-epoch-next-v1",
        "chapar-msg-key-v1",   "chapar-tag-v1",         "chapar-intro-tag-v1",
        "chapar-intro-key-v1", "chapar-room-public-v1", "chapar-room-salt-v1",
        "chapar-room-pass-v1", "chapar-room-tag-v1",    "chapar-room-msg-v1"};
    enum { NL = sizeof labels / sizeof labels[0] };
    uint8_t outs[NL][32];
    for (size_t i = 0; i < NL; i++)
        chp_kdf(outs[i], 32, key, labels[i], data, 8);
    for (size_t i = 0; i < NL; i++)
        for (size_t j = i + 1; j < NL; j++)
            assert_memory_not_equal(outs[i], outs[j], 32);
}

typedef struct party {
    chp_identity *id;
    uint8_t esk[32], epk[32];
} party;

static void party_init(party *p, uint8_t seed, tu_ctr *rs)
{
    p->id = tu_identity(seed);
    tu_ctr_fill(rs, p->esk, 32);
    chp_x25519_base(p->epk, p->esk);
}

static void test_root(void **state)
{
    (void)state;
    tu_ctr rs = {.ctr = 1};
    party alice, bob, carol;
    party_init(&alice, 0xa1, &rs);
    party_init(&bob, 0xb0, &rs);
    party_init(&carol, 0xc0, &rs);
    const uint8_t *aid = chp_identity_pk(alice.id), *bid = chp_identity_pk(bob.id);
    const uint8_t *cid = chp_identity_pk(carol.id);
    uint8_t ra[32], rb[32], rx[32];

    /* Both sides, each with its own ephemeral secret, get the same root. */
    assert_rc(chp_ks_root(alice.esk, alice.epk, bob.epk, aid, bid, ra), CHP_OK);
    assert_rc(chp_ks_root(bob.esk, bob.epk, alice.epk, bid, aid, rb), CHP_OK);
    assert_memory_equal(ra, rb, 32);
    /* Deterministic. */
    assert_rc(chp_ks_root(alice.esk, alice.epk, bob.epk, aid, bid, rx), CHP_OK);
    assert_memory_equal(ra, rx, 32);

    /* Another ephemeral key (Carol's) gives another root. */
    assert_rc(chp_ks_root(alice.esk, alice.epk, carol.epk, aid, bid, rx), CHP_OK);
    assert_memory_not_equal(ra, rx, 32);
    assert_rc(chp_ks_root(carol.esk, carol.epk, alice.epk, bid, aid, rx), CHP_OK);
    assert_memory_not_equal(ra, rx, 32);
    /* The same exchange bound to other identities gives another root. */
    assert_rc(chp_ks_root(alice.esk, alice.epk, bob.epk, aid, cid, rx), CHP_OK);
    assert_memory_not_equal(ra, rx, 32);
    assert_rc(chp_ks_root(alice.esk, alice.epk, bob.epk, cid, bid, rx), CHP_OK);
    assert_memory_not_equal(ra, rx, 32);
    /* Symmetric even with one identity on both sides (two devices). */
    assert_rc(chp_ks_root(alice.esk, alice.epk, bob.epk, aid, aid, ra), CHP_OK);
    assert_rc(chp_ks_root(bob.esk, bob.epk, alice.epk, aid, aid, rb), CHP_OK);
    assert_memory_equal(ra, rb, 32);

    /* Low-order peer keys. */
    for (size_t i = 0; i < N_LOW_ORDER; i++) {
        memset(rx, 0x5c, sizeof rx);
        assert_rc(chp_ks_root(alice.esk, alice.epk, low_order[i], aid, bid, rx), CHP_E_DH);
    }
    chp_identity_destroy(&alice.id);
    chp_identity_destroy(&bob.id);
    chp_identity_destroy(&carol.id);
}

static void test_epoch_chain(void **state)
{
    (void)state;
    uint8_t root[32], root2[32], k[32], k2[32];
    tu_pattern(root, 32, 9);
    tu_pattern(root2, 32, 10);

    chp_ks_epoch_first(root, k);
    chp_ks_epoch_first(root, k2);
    assert_memory_equal(k, k2, 32);
    assert_memory_not_equal(k, root, 32);
    chp_ks_epoch_first(root2, k2);
    assert_memory_not_equal(k, k2, 32);
    /* first and next use different labels */
    chp_ks_epoch_next(root, k2);
    assert_memory_not_equal(k, k2, 32);

    /* next: deterministic, and out may alias in. */
    uint8_t n1[32], n2[32], alias[32];
    chp_ks_epoch_next(k, n1);
    chp_ks_epoch_next(k, n2);
    assert_memory_equal(n1, n2, 32);
    memcpy(alias, k, 32);
    chp_ks_epoch_next(alias, alias);
    assert_memory_equal(alias, n1, 32);

    /* Ten steps, all distinct, each different from its predecessor. */
    uint8_t chain[11][32];
    memcpy(chain[0], k, 32);
    for (int i = 1; i <= 10; i++) {
        chp_ks_epoch_next(chain[i - 1], chain[i]);
        assert_memory_not_equal(chain[i], chain[i - 1], 32);
    }
    for (int i = 0; i <= 10; i++)
        for (int j = i + 1; j <= 10; j++)
            assert_memory_not_equal(chain[i], chain[j], 32);
    /* Stepping in place reaches the same keys. */
    memcpy(alias, k, 32);
    for (int i = 1; i <= 10; i++)
        chp_ks_epoch_next(alias, alias);
    assert_memory_equal(alias, chain[10], 32);
    assert_memory_not_equal(alias, root, 32);
}

static void test_msg_key_and_tag(void **state)
{
    (void)state;
    uint8_t ek[32], ek2[32], a_id[32], b_id[32];
    tu_pattern(ek, 32, 0x40);
    chp_ks_epoch_next(ek, ek2);
    tu_pattern(a_id, 32, 0x50);
    tu_pattern(b_id, 32, 0x60);

    uint8_t ka[32], kb[32], kx[32];
    chp_ks_msg_key(ek, a_id, ka);
    chp_ks_msg_key(ek, b_id, kb);
    assert_memory_not_equal(ka, kb, 32); /* each direction its own key */
    chp_ks_msg_key(ek, a_id, kx);
    assert_memory_equal(ka, kx, 32);
    chp_ks_msg_key(ek2, a_id, kx);
    assert_memory_not_equal(ka, kx, 32);
    assert_memory_not_equal(ka, ek, 32);

    /* Tags: per seq, recipient and epoch key. */
    uint8_t t[8][16];
    chp_ks_tag(ek, a_id, 0, t[0]);
    chp_ks_tag(ek, a_id, 1, t[1]);
    chp_ks_tag(ek, a_id, 2, t[2]);
    chp_ks_tag(ek, a_id, UINT32_MAX, t[3]);
    chp_ks_tag(ek, a_id, 256, t[4]);
    chp_ks_tag(ek, b_id, 0, t[5]);
    chp_ks_tag(ek2, a_id, 0, t[6]);
    chp_ks_tag(ek2, b_id, 1, t[7]);
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++)
            assert_memory_not_equal(t[i], t[j], 16);
    uint8_t again[16];
    chp_ks_tag(ek, a_id, 1, again);
    assert_memory_equal(again, t[1], 16);
    /* a tag is not a piece of the message key */
    assert_memory_not_equal(t[0], ka, 16);
}

static void test_intro(void **state)
{
    (void)state;
    tu_ctr rs = {.ctr = 77};
    chp_identity *rcpt = tu_identity(0x21), *other = tu_identity(0x22);
    const uint8_t *rid = chp_identity_pk(rcpt), *oid = chp_identity_pk(other);
    uint8_t esk[32], epk[32], esk2[32], epk2[32];
    tu_ctr_fill(&rs, esk, 32);
    chp_x25519_base(epk, esk);
    tu_ctr_fill(&rs, esk2, 32);
    chp_x25519_base(epk2, esk2);

    /* Sender and recipient derive the same key. */
    uint8_t ks[32], kr[32], kx[32];
    assert_rc(chp_ks_intro_key_send(esk, epk, rid, ks), CHP_OK);
    assert_rc(chp_ks_intro_key_recv(rcpt, epk, kr), CHP_OK);
    assert_memory_equal(ks, kr, 32);

    /* Another ephemeral key: another key, still agreed. */
    assert_rc(chp_ks_intro_key_send(esk2, epk2, rid, kx), CHP_OK);
    assert_memory_not_equal(ks, kx, 32);
    assert_rc(chp_ks_intro_key_recv(rcpt, epk2, kr), CHP_OK);
    assert_memory_equal(kx, kr, 32);

    /* Someone else cannot derive it. */
    assert_rc(chp_ks_intro_key_recv(other, epk, kx), CHP_OK);
    assert_memory_not_equal(ks, kx, 32);
    assert_rc(chp_ks_intro_key_send(esk, epk, oid, kx), CHP_OK);
    assert_memory_not_equal(ks, kx, 32);

    /* A recipient ID that is no usable Ed25519 key. */
    uint8_t bad_id[32] = {0};
    assert_rc(chp_ks_intro_key_send(esk, epk, bad_id, kx), CHP_E_ID_KEY);
    bad_id[0] = 1; /* the neutral element */
    assert_rc(chp_ks_intro_key_send(esk, epk, bad_id, kx), CHP_E_ID_KEY);
    /* A low-order ephemeral key on the recipient's side. */
    for (size_t i = 0; i < N_LOW_ORDER; i++)
        assert_rc(chp_ks_intro_key_recv(rcpt, low_order[i], kx), CHP_E_DH);

    /* Intro tags: from the ID alone, per epoch and recipient. */
    uint64_t e = chp_epoch_of(NOW);
    uint8_t t1[16], t2[16], t3[16], t4[16];
    chp_ks_intro_tag(rid, e, t1);
    chp_ks_intro_tag(rid, e, t2);
    assert_memory_equal(t1, t2, 16);
    chp_ks_intro_tag(rid, e + 1, t2);
    chp_ks_intro_tag(oid, e, t3);
    chp_ks_intro_tag(rid, 0, t4);
    assert_memory_not_equal(t1, t2, 16);
    assert_memory_not_equal(t1, t3, 16);
    assert_memory_not_equal(t1, t4, 16);
    assert_memory_not_equal(t2, t4, 16);
    assert_false(memcmp(t1, rid, 16) == 0);

    chp_identity_destroy(&rcpt);
    chp_identity_destroy(&other);
}

static void expect_canon(const char *name, const char *want)
{
    char canon[CHP_ROOM_NAME_MAX + 1];
    size_t cl = 0;
    memset(canon, 'x', sizeof canon);
    int rc = chp_room_canon(name, strlen(name), canon, &cl);
    if (rc != CHP_OK)
        fail_msg("canon(\"%s\") = %s", name, chp_errname(rc));
    assert_int_equal(cl, strlen(want));
    assert_string_equal(canon, want);
}

static void expect_canon_err(const char *name, size_t len, int want)
{
    char canon[CHP_ROOM_NAME_MAX + 1];
    size_t cl = 0;
    int rc = chp_room_canon(name, len, canon, &cl);
    if (rc != want)
        fail_msg("canon(%zu bytes \"%.*s\") = %s, want %s", len, (int)len, name, chp_errname(rc),
                 chp_errname(want));
}

#define CANON_ERR(lit, want) expect_canon_err(lit, sizeof(lit) - 1, want)

static void test_room_canon(void **state)
{
    (void)state;
    expect_canon("#LAN", "#lan");
    expect_canon("#lan", "#lan");
    expect_canon("#a", "#a");
    expect_canon("#Chapar-Dev_2025.v1", "#chapar-dev_2025.v1");
    /* Persian names pass unchanged, with or without a zero-width non-joiner. */
    expect_canon("#ایران", "#ایران");
    expect_canon("#تهران-LAN", "#تهران-lan");
    expect_canon("#\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85",
                 "#\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85");
    /* Only ASCII letters fold: "É" (C3 89) stays. */
    expect_canon("#CAF\xc3\x89", "#caf\xc3\x89");
    expect_canon("#\xf0\x9f\x98\x80", "#\xf0\x9f\x98\x80"); /* emoji */

    /* Longest name: 64 bytes, canon fills its buffer exactly. */
    char name[80];
    name[0] = '#';
    memset(name + 1, 'Q', sizeof name - 1);
    char canon[CHP_ROOM_NAME_MAX + 1];
    size_t cl = 0;
    assert_rc(chp_room_canon(name, 64, canon, &cl), CHP_OK);
    assert_int_equal(cl, 64);
    assert_int_equal(canon[64], '\0');
    assert_int_equal(canon[63], 'q');
    expect_canon_err(name, 65, CHP_E_ROOM_NAME);
    expect_canon_err(name, 79, CHP_E_ROOM_NAME);

    /* Invisible or space-like code points that make names look alike. */
    CANON_ERR("#a\xc2\xa0"
              "b",
              CHP_E_ROOM_NAME);               /* no-break space */
    CANON_ERR("#a\xc2\x85", CHP_E_ROOM_NAME); /* C1 control NEL */
    CANON_ERR("#a\xe2\x80\xae"
              "b",
              CHP_E_ROOM_NAME); /* right-to-left override */
    CANON_ERR("#a\xe2\x80\x83"
              "b",
              CHP_E_ROOM_NAME); /* em space */
    CANON_ERR("#a\xe2\x80\x8b"
              "b",
              CHP_E_ROOM_NAME); /* zero-width space */
    CANON_ERR("#\xef\xbb\xbf"
              "lan",
              CHP_E_ROOM_NAME); /* BOM */
    expect_canon("#a\xe2\x80\x8d"
                 "b",
                 "#a\xe2\x80\x8d"
                 "b"); /* ZWJ allowed */

    expect_canon_err("", 0, CHP_E_ROOM_NAME);
    CANON_ERR("#", CHP_E_ROOM_NAME);
    CANON_ERR("lan", CHP_E_ROOM_NAME);
    CANON_ERR("lan#", CHP_E_ROOM_NAME);
    CANON_ERR(" #lan", CHP_E_ROOM_NAME);
    CANON_ERR("#my lan", CHP_E_ROOM_NAME);
    CANON_ERR("#lan ", CHP_E_ROOM_NAME);
    CANON_ERR("#la\tn", CHP_E_ROOM_NAME);
    CANON_ERR("#lan\n", CHP_E_ROOM_NAME);
    CANON_ERR("#\x01lan", CHP_E_ROOM_NAME);
    CANON_ERR("#lan\x1f", CHP_E_ROOM_NAME);
    CANON_ERR("#lan\x7f", CHP_E_ROOM_NAME);
    CANON_ERR("#la\0n", CHP_E_ROOM_NAME);
    CANON_ERR("#lan#2", CHP_E_ROOM_NAME);
    CANON_ERR("##lan", CHP_E_ROOM_NAME);
    CANON_ERR("#\xd8\xa7 \xd8\xa8", CHP_E_ROOM_NAME); /* Persian with a space */

    CANON_ERR("#\xff", CHP_E_UTF8);
    CANON_ERR("#lan\xc3", CHP_E_UTF8);
    CANON_ERR("#\xc0\xaf", CHP_E_UTF8);
    CANON_ERR("#\xed\xa0\x80", CHP_E_UTF8);
    CANON_ERR("#\x80lan", CHP_E_UTF8);
}

static void test_room_public(void **state)
{
    (void)state;
    uint8_t k1[32], k2[32], k3[32], k4[32];
    assert_rc(chp_ks_room_public("#Lan", 4, k1), CHP_OK);
    assert_rc(chp_ks_room_public("#lan", 4, k2), CHP_OK);
    assert_memory_equal(k1, k2, 32);
    assert_rc(chp_ks_room_public("#LAN", 4, k3), CHP_OK);
    assert_memory_equal(k1, k3, 32);
    assert_rc(chp_ks_room_public("#lan2", 5, k3), CHP_OK);
    assert_memory_not_equal(k1, k3, 32);
    assert_rc(chp_ks_room_public("#ایران", strlen("#ایران"), k4), CHP_OK);
    assert_memory_not_equal(k1, k4, 32);
    assert_memory_not_equal(k3, k4, 32);
    /* len, not the NUL, delimits the name */
    assert_rc(chp_ks_room_public("#lan2", 4, k3), CHP_OK);
    assert_memory_equal(k1, k3, 32);

    assert_rc(chp_ks_room_public("lan", 3, k3), CHP_E_ROOM_NAME);
    assert_rc(chp_ks_room_public("#", 1, k3), CHP_E_ROOM_NAME);
    assert_rc(chp_ks_room_public("#\xfe", 2, k3), CHP_E_UTF8);
}

/* Argon2id at 64 MiB: three derivations in all. */
static void test_room_passphrase(void **state)
{
    (void)state;
    uint8_t pub[32], p1[32], p2[32], p3[32];
    assert_rc(chp_ks_room_public("#lan", 4, pub), CHP_OK);
    assert_rc(chp_ks_room_passphrase("#lan", 4, "correct horse", 13, p1), CHP_OK);
    assert_rc(chp_ks_room_passphrase("#LAN", 4, "correct horse", 13, p2), CHP_OK);
    assert_rc(chp_ks_room_passphrase("#lan", 4, "correct horsf", 13, p3), CHP_OK);
    assert_memory_equal(p1, p2, 32); /* the name is canonicalised first */
    assert_memory_not_equal(p1, p3, 32);
    assert_memory_not_equal(p1, pub, 32);
    assert_memory_not_equal(p3, pub, 32);
    /* Bad names fail before any Argon2id work. */
    assert_rc(chp_ks_room_passphrase("lan", 3, "x", 1, p3), CHP_E_ROOM_NAME);
    assert_rc(chp_ks_room_passphrase("#a\xc0\x80", 4, "x", 1, p3), CHP_E_UTF8);
}

static void test_room_tag_and_msg_key(void **state)
{
    (void)state;
    uint8_t rk[32], rk2[32];
    assert_rc(chp_ks_room_public("#lan", 4, rk), CHP_OK);
    assert_rc(chp_ks_room_public("#wan", 4, rk2), CHP_OK);
    uint64_t e = chp_epoch_of(NOW);

    uint8_t t1[16], t2[16], t3[16], t4[16];
    chp_ks_room_tag(rk, e, t1);
    chp_ks_room_tag(rk, e, t2);
    assert_memory_equal(t1, t2, 16);
    chp_ks_room_tag(rk, e + 1, t2);
    chp_ks_room_tag(rk2, e, t3);
    chp_ks_room_tag(rk, 0, t4);
    assert_memory_not_equal(t1, t2, 16);
    assert_memory_not_equal(t1, t3, 16);
    assert_memory_not_equal(t1, t4, 16);

    uint8_t m1[32], m2[32], m3[32];
    chp_ks_room_msg_key(rk, e, m1);
    chp_ks_room_msg_key(rk, e, m2);
    assert_memory_equal(m1, m2, 32);
    chp_ks_room_msg_key(rk, e + 1, m2);
    chp_ks_room_msg_key(rk2, e, m3);
    assert_memory_not_equal(m1, m2, 32);
    assert_memory_not_equal(m1, m3, 32);
    /* The visible tag reveals nothing of the key. */
    assert_memory_not_equal(m1, t1, 16);
    assert_memory_not_equal(m1, rk, 32);
    /* Room tags differ from intro tags for the same bytes and epoch. */
    uint8_t it[16];
    chp_ks_intro_tag(rk, e, it);
    assert_memory_not_equal(it, t1, 16);
}

typedef struct utf8_case {
    const char *s;
    size_t n;
    int ok;
} utf8_case;

#define U(lit, ok)                                                                                 \
    {                                                                                              \
        lit, sizeof(lit) - 1, ok                                                                   \
    }

static void test_utf8_valid(void **state)
{
    (void)state;
    static const utf8_case cases[] = {
        U("", 1),
        U("hello, world", 1),
        U("a\0b", 1), /* NUL is valid UTF-8; room names refuse it separately */
        U("\x7f", 1),
        U("سلام دنیا", 1),
        U("ایران", 1),
        U("\xf0\x9f\x98\x80", 1),                   /* U+1F600 emoji, 4 bytes */
        U("a\xf0\x9f\x87\xae\xf0\x9f\x87\xb7z", 1), /* flag: two 4-byte code points */
        U("\xc2\x80", 1),                           /* U+0080 */
        U("\xdf\xbf", 1),                           /* U+07FF */
        U("\xe0\xa0\x80", 1),                       /* U+0800 */
        U("\xed\x9f\xbf", 1),                       /* U+D7FF */
        U("\xee\x80\x80", 1),                       /* U+E000 */
        U("\xef\xbf\xbf", 1),                       /* U+FFFF */
        U("\xf0\x90\x80\x80", 1),                   /* U+10000 */
        U("\xf4\x8f\xbf\xbf", 1),                   /* U+10FFFF */
        /* overlong */
        U("\xc0\x80", 0),
        U("\xc1\xbf", 0),
        U("\xe0\x80\x80", 0),
        U("\xe0\x9f\xbf", 0),
        U("\xf0\x80\x80\x80", 0),
        U("\xf0\x8f\xbf\xbf", 0),
        /* surrogates */
        U("\xed\xa0\x80", 0),
        U("\xed\xbf\xbf", 0),
        U("\xed\xb0\x80", 0),
        /* past U+10FFFF */
        U("\xf4\x90\x80\x80", 0),
        U("\xf4\xbf\xbf\xbf", 0),
        /* truncated */
        U("\xc3", 0),
        U("abc\xc3", 0),
        U("\xe2\x82", 0),
        U("\xf0\x9f\x98", 0),
        U("\xf0\x9f", 0),
        U("\xf0", 0),
        U("\xd8\xa7\xdb", 0), /* Persian cut mid-character */
        U("\xc3"
          "A",
          0), /* lead byte then ASCII */
        U("\xe2\x82"
          "A",
          0),
        U("\xf0\x9f\x98"
          "A",
          0),
        U("\xe2"
          "A\x82",
          0),
        /* lone continuation bytes */
        U("\x80", 0),
        U("\xbf", 0),
        U("a\x80z", 0),
        U("\xc3\xa9\xa9", 0),
        /* bytes that never occur */
        U("\xf5\x80\x80\x80", 0),
        U("\xf7\xbf\xbf\xbf", 0),
        U("\xf8\x88\x80\x80\x80", 0),
        U("\xfc\x84\x80\x80\x80\x80", 0),
        U("\xfe", 0),
        U("\xff", 0),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = chp_utf8_valid(cases[i].s, cases[i].n) ? 1 : 0;
        if (got != cases[i].ok) {
            char hex[64] = {0};
            for (size_t k = 0; k < cases[i].n && k < 20; k++)
                snprintf(hex + 3 * k, sizeof hex - 3 * k, "%02x ",
                         (unsigned)(unsigned char)cases[i].s[k]);
            fail_msg("case %zu (%s): utf8_valid = %d, want %d", i, hex, got, cases[i].ok);
        }
    }
    /* Every single byte: ASCII valid, everything else invalid alone. */
    for (unsigned b = 0; b < 256; b++) {
        char c = (char)b;
        assert_int_equal(chp_utf8_valid(&c, 1) ? 1 : 0, b < 0x80 ? 1 : 0);
    }
    /* Every F5..FF lead byte, followed by continuation bytes. */
    for (unsigned b = 0xf5; b <= 0xff; b++) {
        char s[4] = {(char)b, (char)0x80, (char)0x80, (char)0x80};
        assert_false(chp_utf8_valid(s, 4));
    }
    /* len, not NUL, bounds the check: a valid prefix of invalid text. */
    assert_true(chp_utf8_valid("ab\xff", 2));
    assert_false(chp_utf8_valid("ab\xff", 3));
    assert_false(chp_utf8_valid("\xd8\xa7", 1));
}

#define NAME_OK(lit)  assert_int_equal(chp_text_name_ok(lit, sizeof(lit) - 1), 1)
#define NAME_BAD(lit) assert_int_equal(chp_text_name_ok(lit, sizeof(lit) - 1), 0)

/* Nicks and contact names: what would let two of them look alike is
 * refused; Persian spelling with ZWNJ is kept. */
static void test_text_name_ok(void **state)
{
    (void)state;
    NAME_OK("sara");
    NAME_OK("Sara K");
    NAME_OK("سارا");
    NAME_OK("علی رضا");
    /* ZWNJ inside Persian words: "می‌خواهم", "نیک‌نام", "خانه‌ها" */
    NAME_OK("\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85");
    NAME_OK("\xd9\x86\xdb\x8c\xda\xa9\xe2\x80\x8c\xd9\x86\xd8\xa7\xd9\x85");
    NAME_OK("\xd8\xae\xd8\xa7\xd9\x86\xd9\x87\xe2\x80\x8c\xd9\x87\xd8\xa7");
    /* ZWJ in an emoji sequence (man, ZWJ, woman) */
    NAME_OK("\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9");
    NAME_OK("caf\xc3\xa9");
    NAME_OK("");

    NAME_BAD("sara\xe2\x80\x8b");     /* zero-width space */
    NAME_BAD("sa\xe2\x80\x8bra");     /* ... anywhere */
    NAME_BAD("sara\xe2\x80\xae");     /* right-to-left override */
    NAME_BAD("\xe2\x80\xaesara");     /* ... first */
    NAME_BAD("sara\xe2\x81\xa6");     /* left-to-right isolate */
    NAME_BAD("sara\xe2\x80\x8f");     /* right-to-left mark */
    NAME_BAD("sara\xd8\x9c");         /* Arabic letter mark */
    NAME_BAD("sara\xc2\xa0");         /* no-break space */
    NAME_BAD("sa\xc2\xadra");         /* soft hyphen */
    NAME_BAD("sara\xef\xbb\xbf");     /* BOM */
    NAME_BAD("sara\xf3\xa0\x80\x81"); /* tag character */
    NAME_BAD("sara\xe3\x80\x80");     /* ideographic space */
    NAME_BAD("sara\xc2\x85");         /* C1 control */
    NAME_BAD("sa\x1b[31mra");         /* escape */
    NAME_BAD("sa\x7fra");
    NAME_BAD("sa\tra");
    NAME_BAD("sara ");
    NAME_BAD(" sara");
    /* joiners that only hide: at an edge, by a Latin letter, doubled */
    NAME_BAD("sara\xe2\x80\x8c");
    NAME_BAD("\xe2\x80\x8csara");
    NAME_BAD("sa\xe2\x80\x8cra");
    NAME_BAD("sara\xe2\x80\x8d");
    NAME_BAD("\xd9\x85\xdb\x8c\xe2\x80\x8c"); /* "می" + ZWNJ at the end */
    NAME_BAD("\xd9\x85\xdb\x8c\xe2\x80\x8c\xe2\x80\x8c\xd8\xae");
    NAME_BAD("\xd9\x85\xdb\x8c\xe2\x80\x8c\xe2\x80\x8d\xd8\xae");
    NAME_BAD("\xd9\x85\xe2\x80\x8c a");
    NAME_BAD("\xc3\x28"); /* not UTF-8 */
}

int main(void)
{
    if (chp_crypto_init() != CHP_OK) {
        fprintf(stderr, "chp_crypto_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_init),
        cmocka_unit_test(test_epoch_of),
        cmocka_unit_test(test_kdf),
        cmocka_unit_test(test_root),
        cmocka_unit_test(test_epoch_chain),
        cmocka_unit_test(test_msg_key_and_tag),
        cmocka_unit_test(test_intro),
        cmocka_unit_test(test_room_canon),
        cmocka_unit_test(test_room_public),
        cmocka_unit_test(test_room_passphrase),
        cmocka_unit_test(test_room_tag_and_msg_key),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_text_name_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
