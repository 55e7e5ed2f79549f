/* test_envelope.c - envelope v1: buckets, sealing, relay checks, opening,
 * tamper resistance and what a relay can (not) learn from the bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/envelope.h"
#include "proto/err.h"
#include "proto/identity.h"
#include "proto/pow.h"
#include "tests/unit/testutil.h"

/* A fixed clock: tests never read the real one. */
#define NOW     UINT64_C(1800000000)
#define TTL     UINT64_C(3600)
#define HUGE_PT (CHP_ENV_BUCKET_MAX)

/* Low proof of work so every seal is fast; same network limits otherwise. */
static const chp_env_params P1 = {1, CHP_ENV_MAX_TTL, CHP_ENV_CLOCK_SKEW};

static const char nonce_label[] = "chapar-env-nonce-v1";

/* Everything one sealing needs. Not copyable once initialised (rng points
 * into it). */
typedef struct fx {
    chp_identity *sender;
    uint8_t key[32];
    uint8_t tag[16];
    uint8_t keyfield[32];
    tu_ctr rs;
    chp_rng rng;
} fx;

static void fx_init(fx *f)
{
    f->sender = tu_identity(0x5a);
    tu_pattern(f->key, sizeof f->key, 0x10);
    tu_pattern(f->tag, sizeof f->tag, 0x20);
    tu_pattern(f->keyfield, sizeof f->keyfield, 0x30);
    f->rs = (tu_ctr){.ctr = 1000};
    f->rng.fill = tu_ctr_fill;
    f->rng.ctx = &f->rs;
}

static void fx_free(fx *f)
{
    chp_identity_destroy(&f->sender);
    assert_null(f->sender);
}

static chp_env_seal_args fx_args(const fx *f, const uint8_t *payload, size_t len)
{
    chp_env_seal_args a = {
        .created = NOW,
        .expiry = NOW + TTL,
        .tag = f->tag,
        .keyfield = f->keyfield,
        .key = f->key,
        .type = CHP_CT_TEXT,
        .payload = payload,
        .len = len,
        .pow_ntpb = 1,
    };
    return a;
}

static size_t fx_seal(fx *f, const chp_env_seal_args *a, uint8_t *out, size_t cap)
{
    size_t n = 0;
    assert_rc(chp_envelope_seal(a, f->sender, &f->rng, out, cap, &n), CHP_OK);
    assert_int_equal(n, chp_envelope_size(a->len));
    return n;
}

/* ---- hand-built envelopes ---- */

static uint64_t lifetime_of(const uint8_t *buf)
{
    uint64_t created = chp_be64(buf + 1), expiry = chp_be64(buf + 9);
    return expiry > created ? expiry - created : 0;
}

/* Re-solves the proof of work for the current bytes. */
static void solve_pow(uint8_t *buf, size_t len, uint32_t ntpb)
{
    uint8_t initial[32], full[32];
    chp_hash_prefix_and_full(buf, len, CHP_ENV_POW_NONCE_BYTES, initial, full);
    uint64_t target = chp_pow_target(len, lifetime_of(buf), ntpb);
    /* Target 0 (absurd lifetimes) has no solution; such headers fail the
     * lifetime check before the proof of work is looked at. */
    uint64_t n = target ? chp_pow_solve(initial, target, 0) : 0;
    chp_put_be64(buf + len - CHP_ENV_POW_NONCE_BYTES, n);
}

/* Replaces the nonce with one whose trial fails the target at ntpb. */
static void break_pow(uint8_t *buf, size_t len, uint32_t ntpb)
{
    uint8_t initial[32], full[32];
    chp_hash_prefix_and_full(buf, len, CHP_ENV_POW_NONCE_BYTES, initial, full);
    uint64_t target = chp_pow_target(len, lifetime_of(buf), ntpb);
    uint64_t n = chp_be64(buf + len - CHP_ENV_POW_NONCE_BYTES) + 1;
    while (chp_pow_trial(initial, n) <= target)
        n++;
    chp_put_be64(buf + len - CHP_ENV_POW_NONCE_BYTES, n);
}

/* An envelope of len (>= overhead) bytes with the given header fields, a
 * fixed body and a proof of work solved at ntpb: it passes every relay
 * check except the ones its fields break on purpose. */
static void mk_raw(uint8_t *buf, size_t len, uint8_t version, uint64_t created, uint64_t expiry,
                   uint32_t ntpb)
{
    assert_true(len >= CHP_ENV_OVERHEAD);
    buf[0] = version;
    chp_put_be64(buf + 1, created);
    chp_put_be64(buf + 9, expiry);
    tu_pattern(buf + 17, len - 17 - CHP_ENV_POW_NONCE_BYTES, 0x44);
    solve_pow(buf, len, ntpb);
}

/* Encrypts pt (len - overhead bytes) into buf under buf's current header,
 * the way the sender does, and re-solves the proof of work at ntpb=1, so
 * a relay accepts the result and only the recipient can tell. */
static void reencrypt(uint8_t *buf, size_t len, const uint8_t *pt, const uint8_t key[32])
{
    uint8_t nonce[CHP_AEAD_NONCE_BYTES];
    chp_hash(nonce, sizeof nonce, buf, CHP_ENV_HDR_BYTES, nonce_label, sizeof nonce_label - 1);
    chp_aead_encrypt(buf + CHP_ENV_HDR_BYTES, pt, len - CHP_ENV_OVERHEAD, buf, CHP_ENV_HDR_BYTES,
                     nonce, key);
    solve_pow(buf, len, 1);
    assert_rc(chp_envelope_check(buf, len, NOW, &P1, NULL, NULL), CHP_OK);
}

/* open must fail with want and leave the plaintext buffer all zero. */
static void expect_open_fail(const uint8_t *buf, size_t len, const uint8_t key[32], int want)
{
    uint8_t pt[HUGE_PT];
    chp_env_hdr h;
    chp_inner in;
    size_t ptlen = len - CHP_ENV_OVERHEAD;
    memset(pt, 0xa5, sizeof pt);
    assert_rc(chp_envelope_open(buf, len, key, pt, sizeof pt, &h, &in), want);
    assert_true(tu_all_zero(pt, ptlen));
}

/* ---- tests ---- */

static void test_crypto_init(void **state)
{
    (void)state;
    assert_rc(chp_crypto_init(), CHP_OK); /* idempotent */
}

static void test_params_default(void **state)
{
    (void)state;
    chp_env_params p = chp_env_params_default();
    assert_int_equal(p.pow_ntpb, CHP_POW_NTPB_DEFAULT);
    assert_true(p.pow_ntpb >= 1);
    assert_int_equal(p.max_ttl, CHP_ENV_MAX_TTL);
    assert_int_equal(p.max_ttl, 7 * 86400);
    assert_int_equal(p.clock_skew, CHP_ENV_CLOCK_SKEW);
    assert_int_equal(p.clock_skew, 900);
}

static void test_constants(void **state)
{
    (void)state;
    assert_int_equal(CHP_ENV_OVERHEAD, 89);
    assert_int_equal(CHP_INNER_OVERHEAD, 32 + 64 + 1 + 4);
    assert_int_equal(CHP_PAYLOAD_MAX, 16283);
    assert_int_equal(CHP_ENV_MAX_BYTES, 16384 + 89);
    static const uint32_t want[CHP_ENV_NBUCKETS] = {256, 1024, 4096, 16384};
    for (int i = 0; i < CHP_ENV_NBUCKETS; i++)
        assert_int_equal(chp_env_buckets[i], want[i]);
    assert_int_equal(chp_env_buckets[CHP_ENV_NBUCKETS - 1], CHP_ENV_BUCKET_MAX);
}

static void test_bucket_boundaries(void **state)
{
    (void)state;
    static const struct {
        size_t payload, bucket;
    } cases[] = {
        {0, 256},
        {1, 256},
        {155, 256},
        {156, 1024},
        {923, 1024},
        {924, 4096},
        {3995, 4096},
        {3996, 16384},
        {CHP_PAYLOAD_MAX - 1, 16384},
        {CHP_PAYLOAD_MAX, 16384},
        {CHP_PAYLOAD_MAX + 1, 0},
        {CHP_ENV_BUCKET_MAX, 0},
        {SIZE_MAX - 100, 0}, /* must not wrap when adding the overhead */
        {SIZE_MAX, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t b = chp_inner_bucket(cases[i].payload);
        size_t e = chp_envelope_size(cases[i].payload);
        if (b != cases[i].bucket)
            fail_msg("bucket(%zu) = %zu, want %zu", cases[i].payload, b, cases[i].bucket);
        if (e != (b ? b + 89 : 0))
            fail_msg("envelope_size(%zu) = %zu, want %zu", cases[i].payload, e, b ? b + 89 : 0);
    }
    /* Every payload size maps to the smallest bucket that holds it. */
    for (size_t n = 0; n <= CHP_PAYLOAD_MAX; n++) {
        size_t b = chp_inner_bucket(n);
        assert_true(b >= n + CHP_INNER_OVERHEAD);
        for (int i = 0; i < CHP_ENV_NBUCKETS && chp_env_buckets[i] < b; i++)
            assert_true(chp_env_buckets[i] < n + CHP_INNER_OVERHEAD);
    }
}

static void check_roundtrip(fx *f, size_t plen, uint8_t type)
{
    static uint8_t payload[CHP_PAYLOAD_MAX];
    static uint8_t env[CHP_ENV_MAX_BYTES], pt[HUGE_PT];
    tu_pattern(payload, plen, (uint8_t)plen);
    chp_env_seal_args a = fx_args(f, payload, plen);
    a.type = type;
    a.created = NOW - 100;
    a.expiry = NOW + 2 * TTL;
    size_t len = fx_seal(f, &a, env, sizeof env);
    assert_int_equal(len, chp_inner_bucket(plen) + 89);

    chp_env_hdr h;
    uint8_t id[32], id2[32];
    memset(&h, 0, sizeof h);
    assert_rc(chp_envelope_check(env, len, NOW, &P1, &h, id), CHP_OK);
    chp_envelope_id(env, len, id2);
    assert_memory_equal(id, id2, 32);
    assert_int_equal(h.version, CHP_ENV_VERSION);
    assert_int_equal(h.created, NOW - 100);
    assert_int_equal(h.expiry, NOW + 2 * TTL);
    assert_memory_equal(h.tag, f->tag, 16);
    assert_memory_equal(h.key, f->keyfield, 32);
    /* Check's outputs are optional. */
    assert_rc(chp_envelope_check(env, len, NOW, &P1, NULL, NULL), CHP_OK);

    chp_env_hdr oh;
    chp_inner in;
    memset(&oh, 0, sizeof oh);
    assert_rc(chp_envelope_open(env, len, f->key, pt, len - CHP_ENV_OVERHEAD, &oh, &in), CHP_OK);
    assert_memory_equal(oh.tag, h.tag, 16);
    assert_memory_equal(oh.key, h.key, 32);
    assert_int_equal(oh.version, h.version);
    assert_int_equal(oh.created, h.created);
    assert_int_equal(oh.expiry, h.expiry);
    assert_int_equal(in.type, type);
    assert_int_equal(in.len, plen);
    assert_memory_equal(in.sender, chp_identity_pk(f->sender), 32);
    assert_ptr_equal(in.payload, pt + CHP_INNER_OVERHEAD);
    if (plen)
        assert_memory_equal(in.payload, payload, plen);
}

static void test_roundtrip_every_bucket(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static const size_t lens[] = {0, 1, 155, 156, 923, 924, 3995, 3996, CHP_PAYLOAD_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        check_roundtrip(&f, lens[i], (uint8_t)(CHP_CT_TEXT + i % 6));
    fx_free(&f);
}

static void test_seal_deterministic_and_keyfield_from_rng(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static const uint8_t msg[] = "salam";
    uint8_t e1[512], e2[512], e3[512], pt[256];
    chp_env_seal_args a = fx_args(&f, msg, sizeof msg - 1);

    /* Given key field: same inputs, same bytes (known-answer vectors rely on it). */
    size_t n1 = fx_seal(&f, &a, e1, sizeof e1);
    size_t n2 = fx_seal(&f, &a, e2, sizeof e2);
    assert_int_equal(n1, 345);
    assert_int_equal(n2, 345);
    assert_memory_equal(e1, e2, n1);

    /* NULL key field: 32 bytes from the caller's rng, nothing else. */
    a.keyfield = NULL;
    tu_ctr expect_rs = {.ctr = f.rs.ctr};
    uint8_t expect_key[32];
    tu_ctr_fill(&expect_rs, expect_key, sizeof expect_key);
    size_t n3 = fx_seal(&f, &a, e3, sizeof e3);
    assert_int_equal(n3, 345);
    chp_env_hdr h;
    assert_rc(chp_envelope_check(e3, n3, NOW, &P1, &h, NULL), CHP_OK);
    assert_memory_equal(h.key, expect_key, 32);
    assert_memory_not_equal(h.key, f.keyfield, 32);
    assert_memory_equal(e3 + 33, expect_key, 32);
    chp_inner in;
    assert_rc(chp_envelope_open(e3, n3, f.key, pt, sizeof pt, NULL, &in), CHP_OK);
    assert_int_equal(in.len, 5);
    assert_memory_equal(in.payload, "salam", 5);

    /* The next seal draws fresh bytes: a different key field and envelope. */
    size_t n4 = fx_seal(&f, &a, e2, sizeof e2);
    assert_int_equal(n4, n3);
    assert_memory_not_equal(e2 + 33, e3 + 33, 32);
    fx_free(&f);
}

/* A payload digest handed to the sealer (a file piece's, made while the
 * file was copied in): the same envelope as when the sealer hashes;
 * another piece's digest (a piece swapped or altered after hashing) makes
 * an envelope every recipient refuses. */
static void test_seal_payload_hash(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static uint8_t p0[CHP_PAYLOAD_MAX], p1[CHP_PAYLOAD_MAX], e1[CHP_ENV_MAX_BYTES],
        e2[CHP_ENV_MAX_BYTES], pt[CHP_ENV_BUCKET_MAX];
    tu_pattern(p0, sizeof p0, 0x40);
    memcpy(p1, p0, sizeof p1);
    p1[100] ^= 0x80;
    uint8_t h0[32], h1[32];
    chp_hash(h0, 32, p0, sizeof p0, NULL, 0);
    chp_hash(h1, 32, p1, sizeof p1, NULL, 0);
    chp_env_seal_args a = fx_args(&f, p0, sizeof p0);
    a.type = CHP_CT_PIECE;
    size_t n1 = fx_seal(&f, &a, e1, sizeof e1);
    a.payload_hash = h0;
    size_t n2 = fx_seal(&f, &a, e2, sizeof e2);
    assert_int_equal(n1, n2);
    assert_memory_equal(e1, e2, n1);
    /* the id from the sealing pass is the envelope's id */
    uint8_t id[32], want[32], checked[32];
    size_t n3 = 0;
    assert_rc(chp_envelope_seal_id(&a, f.sender, &f.rng, e1, sizeof e1, &n3, id), CHP_OK);
    assert_int_equal(n3, n2);
    assert_memory_equal(e1, e2, n2);
    chp_envelope_id(e1, n3, want);
    assert_memory_equal(id, want, 32);
    assert_rc(chp_envelope_check(e1, n3, NOW, &P1, NULL, checked), CHP_OK);
    assert_memory_equal(id, checked, 32);
    chp_inner in;
    assert_rc(chp_envelope_open(e2, n2, f.key, pt, sizeof pt, NULL, &in), CHP_OK);
    assert_int_equal(in.len, sizeof p0);
    assert_memory_equal(in.payload, p0, sizeof p0);
    /* the bytes of one piece under the digest of another */
    a.payload_hash = h1;
    n2 = fx_seal(&f, &a, e2, sizeof e2);
    assert_rc(chp_envelope_check(e2, n2, NOW, &P1, NULL, NULL), CHP_OK); /* relays take it */
    assert_rc(chp_envelope_open(e2, n2, f.key, pt, sizeof pt, NULL, &in), CHP_E_SIGNATURE);
    a.payload = p1;
    a.payload_hash = h0;
    n2 = fx_seal(&f, &a, e2, sizeof e2);
    assert_rc(chp_envelope_open(e2, n2, f.key, pt, sizeof pt, NULL, &in), CHP_E_SIGNATURE);
    a.payload_hash = h1;
    n2 = fx_seal(&f, &a, e2, sizeof e2);
    assert_rc(chp_envelope_open(e2, n2, f.key, pt, sizeof pt, NULL, &in), CHP_OK);
    fx_free(&f);
}

/* chp_envelope_open_ex: the payload's digest out (the one the signature
 * commits to), and the second opening of the same bytes, whose signature
 * was verified by the first: decrypted and parsed again (a wrong key
 * still fails), the signature not verified again. */
static void test_open_ex_digest_and_verified(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static uint8_t p0[CHP_PAYLOAD_MAX], e1[CHP_ENV_MAX_BYTES], e2[CHP_ENV_MAX_BYTES],
        pt[CHP_ENV_BUCKET_MAX];
    tu_pattern(p0, sizeof p0, 0x41);
    uint8_t h0[32], other[32], dg[32], key2[32];
    chp_hash(h0, 32, p0, sizeof p0, NULL, 0);
    memset(other, 0x5a, sizeof other);
    chp_env_seal_args a = fx_args(&f, p0, sizeof p0);
    a.type = CHP_CT_PIECE;
    size_t n1 = fx_seal(&f, &a, e1, sizeof e1);
    chp_inner in;
    assert_rc(chp_envelope_open_ex(e1, n1, f.key, pt, sizeof pt, NULL, &in, NULL, dg), CHP_OK);
    assert_memory_equal(dg, h0, 32);
    assert_int_equal(in.len, sizeof p0);
    memset(dg, 0, sizeof dg);
    assert_rc(chp_envelope_open_ex(e1, n1, f.key, pt, sizeof pt, NULL, &in, h0, dg), CHP_OK);
    assert_memory_equal(dg, h0, 32);
    assert_memory_equal(in.payload, p0, sizeof p0);
    /* a wrong key fails with or without a verified digest */
    memcpy(key2, f.key, 32);
    key2[0] ^= 1;
    assert_rc(chp_envelope_open_ex(e1, n1, key2, pt, sizeof pt, NULL, &in, h0, dg), CHP_E_DECRYPT);
    assert_rc(chp_envelope_open_ex(e1, n1, key2, pt, sizeof pt, NULL, &in, NULL, dg),
              CHP_E_DECRYPT);
    /* a bad signature: refused when verified, which is why a verified
     * digest may only come from an earlier opening of these bytes */
    a.payload_hash = other;
    size_t n2 = fx_seal(&f, &a, e2, sizeof e2);
    assert_rc(chp_envelope_open_ex(e2, n2, f.key, pt, sizeof pt, NULL, &in, NULL, dg),
              CHP_E_SIGNATURE);
    assert_rc(chp_envelope_open(e2, n2, f.key, pt, sizeof pt, NULL, &in), CHP_E_SIGNATURE);
    fx_free(&f);
}

static void test_seal_errors(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static uint8_t big[CHP_PAYLOAD_MAX + 1];
    static uint8_t out[CHP_ENV_MAX_BYTES + 64];
    size_t n = 12345;

    chp_env_seal_args a = fx_args(&f, big, CHP_PAYLOAD_MAX + 1);
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, sizeof out, &n), CHP_E_TOO_BIG);
    assert_int_equal(n, 12345);

    /* cap one short of the envelope, for the smallest and largest bucket */
    a = fx_args(&f, big, 10);
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, 344, &n), CHP_E_OVERFLOW);
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, 0, &n), CHP_E_OVERFLOW);
    a.len = CHP_PAYLOAD_MAX;
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, CHP_ENV_MAX_BYTES - 1, &n),
              CHP_E_OVERFLOW);
    /* exactly enough room is fine */
    a.len = 10;
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, 345, &n), CHP_OK);
    assert_int_equal(n, 345);

    a = fx_args(&f, big, 10);
    a.expiry = a.created;
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, sizeof out, &n), CHP_E_ENV_TTL);
    a.expiry = a.created - 1;
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, sizeof out, &n), CHP_E_ENV_TTL);
    a.created = 10;
    a.expiry = 0;
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, sizeof out, &n), CHP_E_ENV_TTL);
    a = fx_args(&f, big, 10);
    a.expiry = a.created + CHP_ENV_MAX_TTL + 1;
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, sizeof out, &n), CHP_E_ENV_TTL);
    a.created = 0;
    a.expiry = UINT64_MAX;
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, sizeof out, &n), CHP_E_ENV_TTL);
    /* the longest lifetime is allowed, and relays accept it */
    a = fx_args(&f, big, 10);
    a.expiry = a.created + CHP_ENV_MAX_TTL;
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, sizeof out, &n), CHP_OK);
    assert_rc(chp_envelope_check(out, n, NOW, &P1, NULL, NULL), CHP_OK);

    a = fx_args(&f, big, 10);
    a.type = 0;
    assert_rc(chp_envelope_seal(&a, f.sender, &f.rng, out, sizeof out, &n), CHP_E_ARG);
    fx_free(&f);
}

static void test_parse(void **state)
{
    (void)state;
    static uint8_t buf[CHP_ENV_MAX_BYTES + 16];
    const uint8_t *ct = NULL;
    size_t ctlen = 0;
    uint64_t nonce = 0;
    chp_env_hdr h;
    memset(buf, 0, sizeof buf);
    buf[0] = CHP_ENV_VERSION;

    assert_rc(chp_envelope_parse(NULL, 0, &h, &ct, &ctlen, &nonce), CHP_E_ENV_SIZE);
    static const size_t bad[] = {0,         1,         64,          65,         88,
                                 89,        89 + 255,  89 + 257,    89 + 300,   89 + 1023,
                                 89 + 1025, 89 + 4095, 89 + 16383,  89 + 16385, sizeof buf,
                                 255,       256,       256 + 16 + 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = chp_envelope_parse(buf, bad[i], &h, &ct, &ctlen, &nonce);
        if (rc != CHP_E_ENV_SIZE)
            fail_msg("parse len %zu = %s, want CHP_E_ENV_SIZE", bad[i], chp_errname(rc));
    }
    for (int i = 0; i < CHP_ENV_NBUCKETS; i++)
        assert_rc(chp_envelope_parse(buf, chp_env_buckets[i] + 89, NULL, NULL, NULL, NULL), CHP_OK);

    /* Version: anything but 1 is unknown. */
    static const uint8_t versions[] = {0, 2, 0x81, 0xff};
    for (size_t i = 0; i < sizeof versions; i++) {
        buf[0] = versions[i];
        assert_rc(chp_envelope_parse(buf, 345, &h, &ct, &ctlen, &nonce), CHP_E_ENV_VERSION);
    }

    /* Outputs. */
    size_t len = 1024 + 89;
    mk_raw(buf, len, CHP_ENV_VERSION, NOW, NOW + TTL, 1);
    memcpy(buf + 17, "0123456789abcdef", 16);
    tu_pattern(buf + 33, 32, 0x99);
    chp_put_be64(buf + len - 8, UINT64_C(0x0102030405060708));
    memset(&h, 0, sizeof h);
    assert_rc(chp_envelope_parse(buf, len, &h, &ct, &ctlen, &nonce), CHP_OK);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.created, NOW);
    assert_int_equal(h.expiry, NOW + TTL);
    assert_memory_equal(h.tag, "0123456789abcdef", 16);
    assert_memory_equal(h.key, buf + 33, 32);
    assert_ptr_equal(ct, buf + 65);
    assert_int_equal(ctlen, 1024 + 16);
    assert_int_equal(nonce, UINT64_C(0x0102030405060708));
    /* Structural only: a broken proof of work or an expired header parse. */
    chp_put_be64(buf + 9, 1);
    assert_rc(chp_envelope_parse(buf, len, NULL, NULL, NULL, NULL), CHP_OK);
}

static void test_check_size_and_version(void **state)
{
    (void)state;
    static uint8_t buf[CHP_ENV_MAX_BYTES + 16];
    static const size_t bad[] = {0, 88, 89 + 255, 89 + 257, 89 + 16385, CHP_ENV_MAX_BYTES + 1};
    memset(buf, 0, sizeof buf);
    buf[0] = CHP_ENV_VERSION;
    assert_rc(chp_envelope_check(NULL, 0, NOW, &P1, NULL, NULL), CHP_E_ENV_SIZE);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i] >= CHP_ENV_OVERHEAD)
            mk_raw(buf, bad[i], CHP_ENV_VERSION, NOW, NOW + TTL, 1);
        int rc = chp_envelope_check(buf, bad[i], NOW, &P1, NULL, NULL);
        if (rc != CHP_E_ENV_SIZE)
            fail_msg("check len %zu = %s, want CHP_E_ENV_SIZE", bad[i], chp_errname(rc));
    }
    /* Valid in every other respect, but version 0 or 2. */
    mk_raw(buf, 345, 2, NOW, NOW + TTL, 1);
    assert_rc(chp_envelope_check(buf, 345, NOW, &P1, NULL, NULL), CHP_E_ENV_VERSION);
    mk_raw(buf, 345, 0, NOW, NOW + TTL, 1);
    assert_rc(chp_envelope_check(buf, 345, NOW, &P1, NULL, NULL), CHP_E_ENV_VERSION);
    /* Control: the same with version 1 passes, for every bucket. */
    for (int i = 0; i < CHP_ENV_NBUCKETS; i++) {
        size_t len = chp_env_buckets[i] + 89;
        mk_raw(buf, len, CHP_ENV_VERSION, NOW, NOW + TTL, 1);
        assert_rc(chp_envelope_check(buf, len, NOW, &P1, NULL, NULL), CHP_OK);
    }
}

static void test_check_ttl(void **state)
{
    (void)state;
    uint8_t buf[345];
    mk_raw(buf, sizeof buf, 1, NOW, NOW, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW - 10, &P1, NULL, NULL), CHP_E_ENV_TTL);
    mk_raw(buf, sizeof buf, 1, NOW, NOW - 1, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW - 10, &P1, NULL, NULL), CHP_E_ENV_TTL);
    mk_raw(buf, sizeof buf, 1, UINT64_MAX, 0, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_E_ENV_TTL);

    /* Lifetime one second over the max, proof of work solved for it. */
    mk_raw(buf, sizeof buf, 1, NOW, NOW + CHP_ENV_MAX_TTL + 1, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_E_ENV_TTL);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, NULL, NULL, NULL), CHP_E_ENV_TTL);
    mk_raw(buf, sizeof buf, 1, 0, UINT64_MAX, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_E_ENV_TTL);
    /* Exactly the max is fine. */
    mk_raw(buf, sizeof buf, 1, NOW, NOW + CHP_ENV_MAX_TTL, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_OK);

    /* A node's own max_ttl is honoured. */
    chp_env_params p = P1;
    p.max_ttl = 3600;
    mk_raw(buf, sizeof buf, 1, NOW, NOW + 3601, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &p, NULL, NULL), CHP_E_ENV_TTL);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_OK);
    mk_raw(buf, sizeof buf, 1, NOW, NOW + 3600, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &p, NULL, NULL), CHP_OK);
}

static void test_check_expired(void **state)
{
    (void)state;
    uint8_t buf[345];
    mk_raw(buf, sizeof buf, 1, NOW - TTL, NOW, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_E_ENV_EXPIRED);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW + 1, &P1, NULL, NULL), CHP_E_ENV_EXPIRED);
    assert_rc(chp_envelope_check(buf, sizeof buf, UINT64_MAX, &P1, NULL, NULL), CHP_E_ENV_EXPIRED);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW - 1, &P1, NULL, NULL), CHP_OK);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW - TTL, &P1, NULL, NULL), CHP_OK);
    /* Created long ago but not expired yet: still relayed. */
    mk_raw(buf, sizeof buf, 1, NOW - 6 * 86400, NOW + 1, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_OK);
}

static void test_check_future(void **state)
{
    (void)state;
    uint8_t buf[345];
    uint64_t c = NOW + CHP_ENV_CLOCK_SKEW + 1;
    mk_raw(buf, sizeof buf, 1, c, c + TTL, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_E_ENV_FUTURE);
    /* once the clock catches up it is fine */
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW + 1, &P1, NULL, NULL), CHP_OK);
    c = NOW + CHP_ENV_CLOCK_SKEW;
    mk_raw(buf, sizeof buf, 1, c, c + TTL, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_OK);
    mk_raw(buf, sizeof buf, 1, UINT64_MAX - 10, UINT64_MAX, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &P1, NULL, NULL), CHP_E_ENV_FUTURE);

    /* A node's own skew is honoured. */
    chp_env_params p = P1;
    p.clock_skew = 0;
    mk_raw(buf, sizeof buf, 1, NOW + 1, NOW + TTL, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &p, NULL, NULL), CHP_E_ENV_FUTURE);
    mk_raw(buf, sizeof buf, 1, NOW, NOW + TTL, 1);
    assert_rc(chp_envelope_check(buf, sizeof buf, NOW, &p, NULL, NULL), CHP_OK);
}

static void test_check_pow(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static const uint8_t msg[] = "proof of work";
    uint8_t env[512], pt[256];
    chp_env_seal_args a = fx_args(&f, msg, sizeof msg - 1);
    size_t len = fx_seal(&f, &a, env, sizeof env);
    assert_rc(chp_envelope_check(env, len, NOW, &P1, NULL, NULL), CHP_OK);

    /* Work done for ntpb=1 is not enough for a network demanding 10^6. */
    chp_env_params hard = P1;
    hard.pow_ntpb = 1000000;
    assert_rc(chp_envelope_check(env, len, NOW, &hard, NULL, NULL), CHP_E_ENV_POW);

    /* A nonce that fails the target. */
    uint8_t bad[512];
    memcpy(bad, env, len);
    break_pow(bad, len, 1);
    assert_rc(chp_envelope_check(bad, len, NOW, &P1, NULL, NULL), CHP_E_ENV_POW);
    /* (the nonce is outside the AEAD: the recipient could still open it) */
    chp_inner in;
    assert_rc(chp_envelope_open(bad, len, f.key, pt, sizeof pt, NULL, &in), CHP_OK);

    /* The work covers the header: a relay extending the expiry breaks it. */
    memcpy(bad, env, len);
    chp_put_be64(bad + 9, NOW + TTL + 65536);
    assert_rc(chp_envelope_check(bad, len, NOW, &P1, NULL, NULL), CHP_E_ENV_POW);

    /* Network default work (pow_ntpb 0 in seal) passes default params. */
    a.pow_ntpb = 0;
    len = fx_seal(&f, &a, env, sizeof env);
    assert_rc(chp_envelope_check(env, len, NOW, NULL, NULL, NULL), CHP_OK);
    chp_env_params def = chp_env_params_default();
    assert_rc(chp_envelope_check(env, len, NOW, &def, NULL, NULL), CHP_OK);
    assert_rc(chp_envelope_check(env, len, NOW, &P1, NULL, NULL), CHP_OK);
    fx_free(&f);
}

/* Relays check cheapest first: the first failing check decides. */
static void test_check_order(void **state)
{
    (void)state;
    static uint8_t buf[512];

    /* bad size and bad version -> size */
    mk_raw(buf, 89 + 300, 2, NOW, NOW + TTL, 1);
    assert_rc(chp_envelope_check(buf, 89 + 300, NOW, &P1, NULL, NULL), CHP_E_ENV_SIZE);
    /* bad version and bad lifetime -> version */
    mk_raw(buf, 345, 2, NOW, NOW - 1, 1);
    assert_rc(chp_envelope_check(buf, 345, NOW, &P1, NULL, NULL), CHP_E_ENV_VERSION);
    /* bad lifetime and expired -> lifetime */
    mk_raw(buf, 345, 1, NOW - 10, NOW - 20, 1);
    assert_rc(chp_envelope_check(buf, 345, NOW, &P1, NULL, NULL), CHP_E_ENV_TTL);
    mk_raw(buf, 345, 1, NOW - CHP_ENV_MAX_TTL - 100, NOW - 1, 1);
    assert_rc(chp_envelope_check(buf, 345, NOW, &P1, NULL, NULL), CHP_E_ENV_TTL);
    /* bad lifetime and in the future -> lifetime */
    mk_raw(buf, 345, 1, NOW + 5000, NOW + 5000 + CHP_ENV_MAX_TTL + 1, 1);
    assert_rc(chp_envelope_check(buf, 345, NOW, &P1, NULL, NULL), CHP_E_ENV_TTL);
    /* expired and bad proof of work -> expired */
    mk_raw(buf, 345, 1, NOW - 2 * TTL, NOW - TTL, 1);
    break_pow(buf, 345, 1);
    assert_rc(chp_envelope_check(buf, 345, NOW, &P1, NULL, NULL), CHP_E_ENV_EXPIRED);
    assert_rc(chp_envelope_check(buf, 345, NOW - TTL - 1, &P1, NULL, NULL), CHP_E_ENV_POW);
    /* in the future and bad proof of work -> future */
    mk_raw(buf, 345, 1, NOW + 1000, NOW + 1000 + TTL, 1);
    break_pow(buf, 345, 1);
    assert_rc(chp_envelope_check(buf, 345, NOW, &P1, NULL, NULL), CHP_E_ENV_FUTURE);
    assert_rc(chp_envelope_check(buf, 345, NOW + 100, &P1, NULL, NULL), CHP_E_ENV_POW);
}

/* Flips bits of a sealed envelope, each independently: a relay's check or
 * the recipient's open must refuse every one. */
static void tamper_sweep(fx *f, size_t plen, int all_bits)
{
    static uint8_t payload[CHP_PAYLOAD_MAX], env[CHP_ENV_MAX_BYTES], buf[CHP_ENV_MAX_BYTES];
    static uint8_t pt[HUGE_PT];
    tu_pattern(payload, plen, 0x77);
    chp_env_seal_args a = fx_args(f, payload, plen);
    size_t len = fx_seal(f, &a, env, sizeof env);
    uint8_t id0[32];
    assert_rc(chp_envelope_check(env, len, NOW, &P1, NULL, id0), CHP_OK);

    size_t tried = 0;
    for (size_t i = 0; i < len; i++) {
        for (unsigned b = 0; b < 8; b++) {
            if (!all_bits && b != (i * 5u) % 8u)
                continue;
            memcpy(buf, env, len);
            buf[i] ^= (uint8_t)(1u << b);
            uint8_t id[32];
            chp_inner in;
            int rc_c = chp_envelope_check(buf, len, NOW, &P1, NULL, id);
            int rc_o = chp_envelope_open(buf, len, f->key, pt, sizeof pt, NULL, &in);
            tried++;
            if (i < len - CHP_ENV_POW_NONCE_BYTES) {
                /* Header (the AEAD's associated data) and ciphertext: the
                 * recipient always refuses, whatever a relay thinks. */
                if (rc_o == CHP_OK)
                    fail_msg("len %zu byte %zu bit %u: open accepted (check %s)", len, i, b,
                             chp_errname(rc_c));
                assert_true(rc_c != CHP_OK || rc_o != CHP_OK);
            } else {
                /* The proof-of-work nonce is outside the AEAD by design: the
                 * content is still the signed original. Relays refuse it
                 * unless the new nonce happens to meet the (low) target too,
                 * and then it is a different envelope id. */
                if (rc_o != CHP_OK)
                    fail_msg("len %zu nonce byte %zu bit %u: open = %s", len, i, b,
                             chp_errname(rc_o));
                assert_int_equal(in.len, plen);
                assert_int_equal(in.type, CHP_CT_TEXT);
                assert_memory_equal(in.sender, chp_identity_pk(f->sender), 32);
                if (plen)
                    assert_memory_equal(in.payload, payload, plen);
                if (rc_c == CHP_OK)
                    assert_memory_not_equal(id, id0, 32);
                else
                    assert_rc(rc_c, CHP_E_ENV_POW);
            }
        }
    }
    assert_int_equal(tried, all_bits ? len * 8 : len);
}

static void test_tamper_every_byte(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    tamper_sweep(&f, 42, 1);   /* 256 bucket: every bit of every byte */
    tamper_sweep(&f, 500, 0);  /* 1024 bucket: one bit of every byte */
    tamper_sweep(&f, 2000, 0); /* 4096 */
    tamper_sweep(&f, 9000, 0); /* 16384 */
    fx_free(&f);
}

static void test_open_wrong_key_and_overflow(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static const uint8_t msg[] = "only for you";
    uint8_t env[512], pt[256];
    chp_env_seal_args a = fx_args(&f, msg, sizeof msg - 1);
    size_t len = fx_seal(&f, &a, env, sizeof env);

    uint8_t other[32];
    memcpy(other, f.key, 32);
    other[31] ^= 0x80;
    expect_open_fail(env, len, other, CHP_E_DECRYPT);
    memset(other, 0, sizeof other);
    expect_open_fail(env, len, other, CHP_E_DECRYPT);

    /* cap one short of the inner plaintext: nothing is written */
    chp_inner in;
    memset(pt, 0, sizeof pt);
    assert_rc(chp_envelope_open(env, len, f.key, pt, 255, NULL, &in), CHP_E_OVERFLOW);
    assert_true(tu_all_zero(pt, sizeof pt));
    assert_rc(chp_envelope_open(env, len, f.key, pt, 0, NULL, &in), CHP_E_OVERFLOW);
    assert_rc(chp_envelope_open(env, len, f.key, pt, 256, NULL, &in), CHP_OK);

    /* structural errors come from parse */
    assert_rc(chp_envelope_open(env, len - 1, f.key, pt, sizeof pt, NULL, &in), CHP_E_ENV_SIZE);
    env[0] = 2;
    assert_rc(chp_envelope_open(env, len, f.key, pt, sizeof pt, NULL, &in), CHP_E_ENV_VERSION);
    fx_free(&f);
}

/* Opens env to its inner plaintext (a sealed envelope's real layout). */
static void open_to_pt(fx *f, const uint8_t *env, size_t len, uint8_t *pt)
{
    chp_inner in;
    assert_rc(chp_envelope_open(env, len, f->key, pt, len - CHP_ENV_OVERHEAD, NULL, &in), CHP_OK);
}

static void test_open_inner_errors(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static const uint8_t msg[] = "inner errors";
    uint8_t env[512], env2[512], pt[256], mod[256];
    chp_env_seal_args a = fx_args(&f, msg, sizeof msg - 1);
    size_t len = fx_seal(&f, &a, env, sizeof env);
    size_t ptlen = len - CHP_ENV_OVERHEAD;
    open_to_pt(&f, env, len, pt);
    assert_memory_equal(pt, chp_identity_pk(f.sender), 32);
    assert_int_equal(pt[96], CHP_CT_TEXT);
    assert_int_equal(chp_be32(pt + 97), sizeof msg - 1);

    /* Control: re-encrypting the unchanged plaintext gives an envelope
     * that opens, so each failure below is due to the one change. */
    memcpy(env2, env, len);
    reencrypt(env2, len, pt, f.key);
    chp_inner in;
    assert_rc(chp_envelope_open(env2, len, f.key, mod, sizeof mod, NULL, &in), CHP_OK);
    assert_memory_equal(in.payload, msg, sizeof msg - 1);

    /* One bit of the signature. */
    memcpy(mod, pt, ptlen);
    mod[32 + 17] ^= 0x04;
    memcpy(env2, env, len);
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_SIGNATURE);

    /* One bit of the payload (the signature covers its hash). */
    memcpy(mod, pt, ptlen);
    mod[CHP_INNER_OVERHEAD] ^= 0x01;
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_SIGNATURE);

    /* The type (signed too). */
    memcpy(mod, pt, ptlen);
    mod[96] = CHP_CT_ROOM;
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_SIGNATURE);

    /* Someone else's key as the sender: the signature is not theirs. */
    chp_identity *mallory = tu_identity(0x66);
    memcpy(mod, pt, ptlen);
    memcpy(mod, chp_identity_pk(mallory), 32);
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_SIGNATURE);
    chp_identity_destroy(&mallory);

    /* A shorter length with the dropped payload byte left in the padding. */
    memcpy(mod, pt, ptlen);
    chp_put_be32(mod + 97, (uint32_t)(sizeof msg - 2));
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_PADDING);

    /* Non-zero padding: first and last padding byte. */
    memcpy(mod, pt, ptlen);
    mod[CHP_INNER_OVERHEAD + sizeof msg - 1] = 1;
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_PADDING);
    memcpy(mod, pt, ptlen);
    mod[ptlen - 1] = 0x80;
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_PADDING);

    /* Payload length past the bucket. */
    memcpy(mod, pt, ptlen);
    chp_put_be32(mod + 97, (uint32_t)(ptlen - CHP_INNER_OVERHEAD + 1));
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_MALFORMED);
    chp_put_be32(mod + 97, UINT32_MAX);
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_MALFORMED);

    /* Type 0. */
    memcpy(mod, pt, ptlen);
    mod[96] = 0;
    reencrypt(env2, len, mod, f.key);
    expect_open_fail(env2, len, f.key, CHP_E_MALFORMED);
    fx_free(&f);
}

/* The signature binds the content to its envelope header: whoever holds
 * the AEAD key cannot re-wrap a signed message for another recipient tag,
 * key field or time. */
static void test_open_rewrap(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static const uint8_t msg[] = "signed for envelope A";
    uint8_t env_a[512], env_b[512], pt_a[256];
    chp_env_seal_args a = fx_args(&f, msg, sizeof msg - 1);
    size_t len = fx_seal(&f, &a, env_a, sizeof env_a);
    open_to_pt(&f, env_a, len, pt_a);

    /* Envelope B: same key and sender, different tag. */
    uint8_t tag_b[16];
    memcpy(tag_b, f.tag, 16);
    tag_b[0] ^= 1;
    chp_env_seal_args b = fx_args(&f, msg, sizeof msg - 1);
    b.tag = tag_b;
    size_t len_b = fx_seal(&f, &b, env_b, sizeof env_b);
    assert_int_equal(len_b, len);
    reencrypt(env_b, len, pt_a, f.key);
    expect_open_fail(env_b, len, f.key, CHP_E_SIGNATURE);

    /* A's header with another key field, or other times. */
    memcpy(env_b, env_a, len);
    env_b[33 + 5] ^= 0x10;
    reencrypt(env_b, len, pt_a, f.key);
    expect_open_fail(env_b, len, f.key, CHP_E_SIGNATURE);

    memcpy(env_b, env_a, len);
    chp_put_be64(env_b + 1, NOW + 60);
    chp_put_be64(env_b + 9, NOW + 60 + TTL);
    reencrypt(env_b, len, pt_a, f.key);
    expect_open_fail(env_b, len, f.key, CHP_E_SIGNATURE);

    memcpy(env_b, env_a, len);
    chp_put_be64(env_b + 9, NOW + TTL + 1);
    reencrypt(env_b, len, pt_a, f.key);
    expect_open_fail(env_b, len, f.key, CHP_E_SIGNATURE);

    /* Control: A's own header still opens. */
    memcpy(env_b, env_a, len);
    reencrypt(env_b, len, pt_a, f.key);
    chp_inner in;
    uint8_t pt[256];
    assert_rc(chp_envelope_open(env_b, len, f.key, pt, sizeof pt, NULL, &in), CHP_OK);
    fx_free(&f);
}

static void mk_inner(uint8_t *pt, size_t bucket, uint8_t type, uint32_t len_field,
                     size_t payload_bytes)
{
    memset(pt, 0, bucket);
    memset(pt, 0x11, 32);
    memset(pt + 32, 0x22, 64);
    pt[96] = type;
    chp_put_be32(pt + 97, len_field);
    tu_pattern(pt + CHP_INNER_OVERHEAD, payload_bytes, 0x33);
}

static void test_inner_parse(void **state)
{
    (void)state;
    static uint8_t pt[HUGE_PT + 8];
    chp_inner in;

    mk_inner(pt, 256, CHP_CT_RECEIPT, 10, 10);
    assert_rc(chp_inner_parse(pt, 256, &in), CHP_OK);
    uint8_t want[64];
    memset(want, 0x11, 32);
    assert_memory_equal(in.sender, want, 32);
    memset(want, 0x22, 64);
    assert_memory_equal(in.sig, want, 64);
    assert_int_equal(in.type, CHP_CT_RECEIPT);
    assert_int_equal(in.len, 10);
    assert_ptr_equal(in.payload, pt + CHP_INNER_OVERHEAD);

    /* Empty payload, and a payload filling the bucket (no padding). */
    mk_inner(pt, 256, CHP_CT_TEXT, 0, 0);
    assert_rc(chp_inner_parse(pt, 256, &in), CHP_OK);
    assert_int_equal(in.len, 0);
    mk_inner(pt, 256, CHP_CT_TEXT, 155, 155);
    assert_rc(chp_inner_parse(pt, 256, &in), CHP_OK);
    assert_int_equal(in.len, 155);
    mk_inner(pt, HUGE_PT, CHP_CT_CHUNK, CHP_PAYLOAD_MAX, CHP_PAYLOAD_MAX);
    assert_rc(chp_inner_parse(pt, HUGE_PT, &in), CHP_OK);
    assert_int_equal(in.len, CHP_PAYLOAD_MAX);

    /* Lengths that are not a bucket. */
    mk_inner(pt, HUGE_PT + 8, CHP_CT_TEXT, 1, 1);
    static const size_t bad[] = {1, 100, 101, 255, 257, 1023, 1025, 4097, 16383, HUGE_PT + 1};
    assert_rc(chp_inner_parse(NULL, 0, &in), CHP_E_MALFORMED);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = chp_inner_parse(pt, bad[i], &in);
        if (rc != CHP_E_MALFORMED)
            fail_msg("inner_parse len %zu = %s", bad[i], chp_errname(rc));
    }

    mk_inner(pt, 256, 0, 10, 10);
    assert_rc(chp_inner_parse(pt, 256, &in), CHP_E_MALFORMED);
    mk_inner(pt, 256, CHP_CT_TEXT, 156, 155);
    assert_rc(chp_inner_parse(pt, 256, &in), CHP_E_MALFORMED);
    mk_inner(pt, 1024, CHP_CT_TEXT, 1024, 100);
    assert_rc(chp_inner_parse(pt, 1024, &in), CHP_E_MALFORMED);
    mk_inner(pt, 256, CHP_CT_TEXT, UINT32_MAX, 10);
    assert_rc(chp_inner_parse(pt, 256, &in), CHP_E_MALFORMED);

    mk_inner(pt, 256, CHP_CT_TEXT, 10, 10);
    pt[CHP_INNER_OVERHEAD + 10] = 1;
    assert_rc(chp_inner_parse(pt, 256, &in), CHP_E_PADDING);
    mk_inner(pt, 256, CHP_CT_TEXT, 10, 10);
    pt[255] = 0xff;
    assert_rc(chp_inner_parse(pt, 256, &in), CHP_E_PADDING);
    mk_inner(pt, 4096, CHP_CT_TEXT, 0, 0);
    pt[2000] = 0x40;
    assert_rc(chp_inner_parse(pt, 4096, &in), CHP_E_PADDING);
}

/* What a relay sees: no payload text, no sender key, no signature. */
static void test_relays_learn_nothing(void **state)
{
    (void)state;
    fx f;
    fx_init(&f);
    static const char text[] = "Meet me at Tajrish square at six, bring the USB stick.";
    uint8_t env[2048], pt[1024];
    chp_env_seal_args a = fx_args(&f, (const uint8_t *)text, sizeof text - 1);
    for (int nullkey = 0; nullkey < 2; nullkey++) {
        a.keyfield = nullkey ? NULL : f.keyfield;
        size_t len = fx_seal(&f, &a, env, sizeof env);
        const uint8_t *pk = chp_identity_pk(f.sender), *xpk = chp_identity_xpk(f.sender);
        assert_false(tu_contains(env, len, (const uint8_t *)text, sizeof text - 1));
        assert_false(tu_contains(env, len, (const uint8_t *)"Tajrish", 7));
        assert_false(tu_contains(env, len, pk, 32));
        assert_false(tu_contains(env, len, pk, 8));
        assert_false(tu_contains(env, len, xpk, 32));
        assert_false(tu_contains(env, len, f.key, 32));
        chp_inner in;
        assert_rc(chp_envelope_open(env, len, f.key, pt, sizeof pt, NULL, &in), CHP_OK);
        assert_false(tu_contains(env, len, in.sig, 64));
        /* The tag is meant to be visible; sanity-check the search itself. */
        assert_true(tu_contains(env, len, f.tag, 16));
    }

    /* Every content type looks the same from outside: same size, same
     * version byte. With the key field random, two envelopes from the same
     * sender under the same key and tag share no encrypted sender key that
     * would link them. */
    uint8_t e2[2048];
    a.keyfield = NULL;
    size_t len1 = fx_seal(&f, &a, env, sizeof env);
    a.type = CHP_CT_RECEIPT;
    size_t len2 = fx_seal(&f, &a, e2, sizeof e2);
    assert_int_equal(len1, len2);
    assert_int_equal(env[0], e2[0]);
    assert_memory_not_equal(env + 33, e2 + 33, 32);
    for (size_t i = 0; i + 4 <= 32; i++)
        assert_memory_not_equal(env + CHP_ENV_HDR_BYTES + i, e2 + CHP_ENV_HDR_BYTES + i, 4);
    fx_free(&f);
}

int main(void)
{
    if (chp_crypto_init() != CHP_OK) {
        fprintf(stderr, "chp_crypto_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_init),
        cmocka_unit_test(test_params_default),
        cmocka_unit_test(test_constants),
        cmocka_unit_test(test_bucket_boundaries),
        cmocka_unit_test(test_roundtrip_every_bucket),
        cmocka_unit_test(test_seal_deterministic_and_keyfield_from_rng),
        cmocka_unit_test(test_seal_payload_hash),
        cmocka_unit_test(test_open_ex_digest_and_verified),
        cmocka_unit_test(test_seal_errors),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_check_size_and_version),
        cmocka_unit_test(test_check_ttl),
        cmocka_unit_test(test_check_expired),
        cmocka_unit_test(test_check_future),
        cmocka_unit_test(test_check_pow),
        cmocka_unit_test(test_check_order),
        cmocka_unit_test(test_tamper_every_byte),
        cmocka_unit_test(test_open_wrong_key_and_overflow),
        cmocka_unit_test(test_open_inner_errors),
        cmocka_unit_test(test_open_rewrap),
        cmocka_unit_test(test_inner_parse),
        cmocka_unit_test(test_relays_learn_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
