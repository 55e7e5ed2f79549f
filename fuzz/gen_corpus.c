/* gen_corpus.c - writes the fuzzers' seed corpora with the real proto API:
 * `fuzz_gen_corpus fuzz/corpus` replaces every fuzz/corpus/<target>/seed-*
 * file. Randomness comes from a counter, so the same sources always give
 * the same bytes. Each seed is checked to draw the answer it was made for,
 * so a seed that stops exercising its path is noticed here, not missed. */
#include "fuzz.h"

#include "proto/bundle.h"
#include "proto/cursor.h"
#include "proto/envelope.h"
#include "proto/id.h"
#include "proto/identity.h"
#include "proto/pow.h"
#include "proto/want.h"
#include "tests/unit/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOW     ((uint64_t)FUZZ_NOW)
#define CREATED (NOW - 100)
#define DAY     86400u

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gen_corpus: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void expect_rc(int got, int want, const char *what)
{
    if (got != want)
        die("%s: got %s, want %s", what, chp_errname(got), chp_errname(want));
}

/* Deterministic randomness: BLAKE2b(counter) blocks under a fixed key. */
static tu_ctr rng_ctr = {.label = "chapar-fuzz-corpus-seed-v1"};
static const chp_rng rng = {tu_ctr_fill, &rng_ctr};

/* One target's corpus directory and its running seed number. */
struct seeds {
    char dir[1024];
    int n;
};

/* Creates root/name and removes the seed-* files a previous run wrote
 * there (files libFuzzer added under other names stay). */
static void seeds_open(struct seeds *s, const char *root, const char *name)
{
    snprintf(s->dir, sizeof s->dir, "%s/%s", root, name);
    s->n = 0;
    if (mkdir(s->dir, 0777) != 0 && errno != EEXIST)
        die("mkdir %s: %s", s->dir, strerror(errno));
    DIR *d = opendir(s->dir);
    if (!d)
        die("opendir %s: %s", s->dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "seed-", 5) != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name);
        if (unlink(path) != 0)
            die("unlink %s: %s", path, strerror(errno));
    }
    closedir(d);
}

static void seed(struct seeds *s, const char *what, const void *p, size_t len)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/seed-%03d-%s", s->dir, s->n++, what);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(p, 1, len, f) != len) || fclose(f) != 0)
        die("write %s: %s", path, strerror(errno));
}

/* ---- envelopes ---------------------------------------------------------- */

static uint8_t payload[CHP_PAYLOAD_MAX];
static uint8_t env[CHP_ENV_MAX_BYTES];
static uint8_t pt[CHP_ENV_BUCKET_MAX];

/* Seals len bytes of payload under key with proof of work ntpb (0 = the
 * network's); returns the envelope size. */
static size_t seal(const chp_identity *who, const uint8_t key[32], uint64_t created,
                   uint64_t expiry, uint8_t type, size_t len, uint32_t ntpb)
{
    uint8_t tag[CHP_ENV_TAG_BYTES];
    size_t outlen = 0;
    chp_rng_fill(&rng, tag, sizeof tag);
    chp_env_seal_args a = {.created = created,
                           .expiry = expiry,
                           .tag = tag,
                           .keyfield = NULL,
                           .key = key,
                           .type = type,
                           .payload = payload,
                           .len = len,
                           .pow_ntpb = ntpb};
    expect_rc(chp_envelope_seal(&a, who, &rng, env, sizeof env, &outlen), CHP_OK, "seal");
    return outlen;
}

/* An envelope around an arbitrary inner plaintext, built by hand from
 * PROTOCOL.md, so open's checks after the decryption get seeds too. With
 * keep_header the header already in env is reused, so the sender's
 * signature (which covers it) still verifies. */
static size_t wrap(const uint8_t *inner, size_t bucket, const uint8_t key[32], int keep_header)
{
    static const char nonce_label[] = "chapar-env-nonce-v1";
    uint8_t nonce[CHP_AEAD_NONCE_BYTES], initial[32];
    if (!keep_header) {
        env[0] = CHP_ENV_VERSION;
        chp_put_be64(env + 1, CREATED);
        chp_put_be64(env + 9, CREATED + DAY);
        chp_rng_fill(&rng, env + 17, 16 + 32);
    }
    chp_hash(nonce, sizeof nonce, env, CHP_ENV_HDR_BYTES, nonce_label, sizeof nonce_label - 1);
    chp_aead_encrypt(env + CHP_ENV_HDR_BYTES, inner, bucket, env, CHP_ENV_HDR_BYTES, nonce, key);
    size_t body = CHP_ENV_HDR_BYTES + bucket + CHP_AEAD_TAG_BYTES;
    size_t total = body + CHP_ENV_POW_NONCE_BYTES;
    chp_hash(initial, sizeof initial, env, body, NULL, 0);
    chp_put_be64(env + body, chp_pow_solve(initial, chp_pow_target(total, DAY, 1), 0));
    return total;
}

static int check_easy(size_t len)
{
    chp_env_params p = chp_env_params_default();
    p.pow_ntpb = 1;
    return chp_envelope_check(env, len, NOW, &p, NULL, NULL);
}

static int open_env(size_t len)
{
    uint8_t key[32];
    chp_inner in;
    fuzz_env_key(key);
    return chp_envelope_open(env, len, key, pt, sizeof pt, NULL, &in);
}

/* A seed whose check (ntpb 1) and open (fixed key) give these answers. */
static void env_seed(struct seeds *s, const char *what, size_t len, int want_check, int want_open)
{
    char label[256];
    snprintf(label, sizeof label, "envelope %s", what);
    expect_rc(check_easy(len), want_check, label);
    expect_rc(open_env(len), want_open, label);
    seed(s, what, env, len);
}

static void gen_envelopes(const char *root, const chp_identity *alice)
{
    struct seeds s = {0};
    uint8_t key[32], other[32], saved[CHP_ENV_MAX_BYTES];
    char what[64];
    size_t n;
    seeds_open(&s, root, "envelope");
    fuzz_env_key(key);
    chp_rng_fill(&rng, other, sizeof other);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)("Salam, chapar! "[i % 15]);

    /* Valid, each bucket empty-ish and full; opened with the fixed key. */
    static const struct {
        size_t len;
        uint8_t type;
    } valid[] = {{0, CHP_CT_RECEIPT},
                 {155, CHP_CT_TEXT},
                 {600, CHP_CT_ROOM},
                 {923, CHP_CT_INTRO},
                 {3995, CHP_CT_CHUNK},
                 {10000, CHP_CT_ACCEPT},
                 {CHP_PAYLOAD_MAX, CHP_CT_CHUNK}};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        n = seal(alice, key, CREATED, CREATED + DAY, valid[i].type, valid[i].len, 1);
        snprintf(what, sizeof what, "valid-bucket%zu-len%zu", n - CHP_ENV_OVERHEAD, valid[i].len);
        env_seed(&s, what, n, CHP_OK, CHP_OK);
    }

    /* Network proof of work: passes the default params too. */
    n = seal(alice, key, CREATED, CREATED + DAY, CHP_CT_TEXT, 40, 0);
    env_seed(&s, "valid-default-pow", n, CHP_OK, CHP_OK);
    {
        chp_env_params def = chp_env_params_default();
        expect_rc(chp_envelope_check(env, n, NOW, &def, NULL, NULL), CHP_OK, "default pow");
    }

    /* Lifetimes: longest allowed, expired, ahead within and beyond skew. */
    n = seal(alice, key, CREATED, CREATED + CHP_ENV_MAX_TTL, CHP_CT_TEXT, 20, 1);
    env_seed(&s, "max-ttl", n, CHP_OK, CHP_OK);
    n = seal(alice, key, NOW - 3 * DAY, NOW - 2 * DAY, CHP_CT_TEXT, 20, 1);
    env_seed(&s, "expired", n, CHP_E_ENV_EXPIRED, CHP_OK);
    n = seal(alice, key, NOW - DAY, NOW, CHP_CT_TEXT, 20, 1);
    env_seed(&s, "expires-now", n, CHP_E_ENV_EXPIRED, CHP_OK);
    n = seal(alice, key, NOW + CHP_ENV_CLOCK_SKEW, NOW + CHP_ENV_CLOCK_SKEW + DAY, CHP_CT_TEXT, 20,
             1);
    env_seed(&s, "future-within-skew", n, CHP_OK, CHP_OK);
    n = seal(alice, key, NOW + CHP_ENV_CLOCK_SKEW + 1, NOW + CHP_ENV_CLOCK_SKEW + 1 + DAY,
             CHP_CT_TEXT, 20, 1);
    env_seed(&s, "future-beyond-skew", n, CHP_E_ENV_FUTURE, CHP_OK);

    /* Another recipient's key: relays keep it, we cannot open it. */
    n = seal(alice, other, CREATED, CREATED + DAY, CHP_CT_TEXT, 300, 1);
    env_seed(&s, "other-key", n, CHP_OK, CHP_E_DECRYPT);

    /* Damaged copies of a valid 1024-bucket envelope. */
    n = seal(alice, key, CREATED, CREATED + DAY, CHP_CT_TEXT, 700, 1);
    memcpy(saved, env, n);
    env_seed(&s, "base-bucket1024", n, CHP_OK, CHP_OK);
    env_seed(&s, "truncated-by-1", n - 1, CHP_E_ENV_SIZE, CHP_E_ENV_SIZE);
    env[n] = 0;
    env_seed(&s, "extended-by-1", n + 1, CHP_E_ENV_SIZE, CHP_E_ENV_SIZE);
    env_seed(&s, "header-only", CHP_ENV_HDR_BYTES, CHP_E_ENV_SIZE, CHP_E_ENV_SIZE);
    env_seed(&s, "overhead-only", CHP_ENV_OVERHEAD, CHP_E_ENV_SIZE, CHP_E_ENV_SIZE);
    env_seed(&s, "empty", 0, CHP_E_ENV_SIZE, CHP_E_ENV_SIZE);
    env[0] = 2;
    env_seed(&s, "version-2", n, CHP_E_ENV_VERSION, CHP_E_ENV_VERSION);
    env[0] = 0;
    env_seed(&s, "version-0", n, CHP_E_ENV_VERSION, CHP_E_ENV_VERSION);
    memcpy(env, saved, n);
    chp_put_be64(env + 9, CREATED + CHP_ENV_MAX_TTL + 1);
    env_seed(&s, "ttl-over-max", n, CHP_E_ENV_TTL, CHP_E_DECRYPT);
    memcpy(env, saved, n);
    chp_put_be64(env + 9, CREATED);
    env_seed(&s, "expiry-equals-created", n, CHP_E_ENV_TTL, CHP_E_DECRYPT);
    memcpy(env, saved, n);
    env[CHP_ENV_HDR_BYTES + 10] ^= 1;
    seed(&s, "ciphertext-bit-flip", env, n); /* check: almost surely weak PoW */
    expect_rc(open_env(n), CHP_E_DECRYPT, "ciphertext-bit-flip");
    memcpy(env, saved, n);
    env[n - CHP_ENV_POW_NONCE_BYTES - 1] ^= 0x80;
    seed(&s, "tag-bit-flip", env, n);
    expect_rc(open_env(n), CHP_E_DECRYPT, "tag-bit-flip");
    memcpy(env, saved, n);
    chp_put_be64(env + n - 8, 0xffffffffffffffffu);
    seed(&s, "pow-nonce-changed", env, n);
    expect_rc(open_env(n), CHP_OK, "pow-nonce-changed");

    /* Decrypts, but the inner plaintext is wrong. Start from a real one. */
    n = seal(alice, key, CREATED, CREATED + DAY, CHP_CT_TEXT, 50, 1);
    expect_rc(open_env(n), CHP_OK, "inner base");
    uint8_t inner[256];
    memcpy(inner, pt, sizeof inner);
    /* The signature does not cover the padding: only the parser stops it. */
    inner[255] = 1;
    n = wrap(inner, sizeof inner, key, 1);
    env_seed(&s, "inner-nonzero-padding-good-sig", n, CHP_OK, CHP_E_PADDING);
    inner[255] = 0;
    n = wrap(inner, sizeof inner, key, 0);
    env_seed(&s, "inner-rewrapped-bad-sig", n, CHP_OK, CHP_E_SIGNATURE);
    inner[96] = 0;
    n = wrap(inner, sizeof inner, key, 0);
    env_seed(&s, "inner-type-0", n, CHP_OK, CHP_E_MALFORMED);
    inner[96] = CHP_CT_TEXT;
    chp_put_be32(inner + 97, 256 - CHP_INNER_OVERHEAD + 1);
    n = wrap(inner, sizeof inner, key, 0);
    env_seed(&s, "inner-len-too-big", n, CHP_OK, CHP_E_MALFORMED);
}

/* ---- inner plaintexts --------------------------------------------------- */

/* sender[32] | sig[64] | type u8 | len u32 | payload | zeros, by hand. */
static void inner_build(uint8_t *p, size_t bucket, uint8_t type, uint32_t len)
{
    memset(p, 0, bucket);
    chp_rng_fill(&rng, p, 96);
    p[96] = type;
    chp_put_be32(p + 97, len);
    for (uint32_t i = 0; i < len && CHP_INNER_OVERHEAD + i < bucket; i++)
        p[CHP_INNER_OVERHEAD + i] = (uint8_t)('a' + i % 26);
}

static void inner_seed(struct seeds *s, const char *what, const uint8_t *p, size_t len, int want)
{
    chp_inner in;
    char label[256];
    snprintf(label, sizeof label, "inner %s", what);
    expect_rc(chp_inner_parse(p, len, &in), want, label);
    seed(s, what, p, len);
}

static void gen_inner(const char *root, const chp_identity *alice)
{
    struct seeds s = {0};
    uint8_t key[32];
    char what[64];
    static uint8_t p[CHP_ENV_BUCKET_MAX + 1];
    seeds_open(&s, root, "inner");
    fuzz_env_key(key);

    /* Real plaintexts, out of sealed envelopes. */
    static const size_t lens[] = {0, 155, 600, 3995, CHP_PAYLOAD_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = seal(alice, key, CREATED, CREATED + DAY, CHP_CT_TEXT, lens[i], 1);
        expect_rc(open_env(n), CHP_OK, "inner source");
        size_t bucket = n - CHP_ENV_OVERHEAD;
        snprintf(what, sizeof what, "opened-bucket%zu-len%zu", bucket, lens[i]);
        inner_seed(&s, what, pt, bucket, CHP_OK);
    }

    /* By hand, per the layout. */
    static const uint32_t buckets[] = {256, 1024, 4096};
    for (size_t i = 0; i < sizeof buckets / sizeof buckets[0]; i++) {
        uint32_t b = buckets[i];
        inner_build(p, b, CHP_CT_ROOM, b / 3);
        snprintf(what, sizeof what, "hand-bucket%u", (unsigned)b);
        inner_seed(&s, what, p, b, CHP_OK);
    }
    inner_build(p, 256, 7, 10);
    inner_seed(&s, "unknown-type-7", p, 256, CHP_OK);
    inner_build(p, 256, 0xff, 0);
    inner_seed(&s, "type-255-empty", p, 256, CHP_OK);
    inner_build(p, 256, CHP_CT_TEXT, 155);
    inner_seed(&s, "len-exactly-fits", p, 256, CHP_OK);
    inner_build(p, 256, CHP_CT_TEXT, 156);
    inner_seed(&s, "len-one-too-big", p, 256, CHP_E_MALFORMED);
    inner_build(p, 256, CHP_CT_TEXT, 0xffffffffu);
    inner_seed(&s, "len-max-u32", p, 256, CHP_E_MALFORMED);
    inner_build(p, 256, 0, 10);
    inner_seed(&s, "type-0", p, 256, CHP_E_MALFORMED);
    inner_build(p, 1024, CHP_CT_TEXT, 10);
    p[1023] = 0x01;
    inner_seed(&s, "padding-last-byte", p, 1024, CHP_E_PADDING);
    inner_build(p, 1024, CHP_CT_TEXT, 10);
    p[CHP_INNER_OVERHEAD + 10] = 0x80;
    inner_seed(&s, "padding-first-byte", p, 1024, CHP_E_PADDING);
    inner_build(p, 257, CHP_CT_TEXT, 10);
    inner_seed(&s, "size-257", p, 257, CHP_E_MALFORMED);
    inner_seed(&s, "size-255", p, 255, CHP_E_MALFORMED);
    inner_seed(&s, "size-101", p, 101, CHP_E_MALFORMED);
    inner_seed(&s, "empty", p, 0, CHP_E_MALFORMED);
}

/* ---- identity strings --------------------------------------------------- */

static const char b32[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t polymod_step(uint32_t pre)
{
    static const uint32_t gen[5] = {0x3b6a57b2u, 0x26508e6du, 0x1ea119fau, 0x3d4233ddu,
                                    0x2a1462b3u};
    uint32_t b = pre >> 25, chk = (pre & 0x1ffffffu) << 5;
    for (int i = 0; i < 5; i++)
        if ((b >> i) & 1u)
            chk ^= gen[i];
    return chk;
}

/* Bech32m("chp", 52 five-bit values), written independently of id.c so a
 * string with non-zero padding bits but a good checksum can be made. */
static void bech32m(const uint8_t d[52], char out[CHP_ID_STR_LEN + 1])
{
    static const char hrp[] = "chp";
    uint32_t chk = 1;
    for (int i = 0; i < 3; i++)
        chk = polymod_step(chk) ^ ((uint8_t)hrp[i] >> 5);
    chk = polymod_step(chk);
    for (int i = 0; i < 3; i++)
        chk = polymod_step(chk) ^ ((uint8_t)hrp[i] & 31u);
    for (int i = 0; i < 52; i++)
        chk = polymod_step(chk) ^ d[i];
    for (int i = 0; i < 6; i++)
        chk = polymod_step(chk);
    chk ^= 0x2bc830a3u;
    memcpy(out, "chp1", 4);
    for (int i = 0; i < 52; i++)
        out[4 + i] = b32[d[i]];
    for (int i = 0; i < 6; i++)
        out[56 + i] = b32[(chk >> (5 * (5 - i))) & 31u];
    out[62] = '\0';
}

static void id_seed(struct seeds *s, const char *what, const char *str, size_t len, int want)
{
    uint8_t pk[32];
    char label[256];
    snprintf(label, sizeof label, "id %s", what);
    expect_rc(chp_id_parse(str, len, pk), want, label);
    seed(s, what, str, len);
}

static void gen_ids(const char *root)
{
    struct seeds s = {0};
    char id[CHP_ID_STR_LEN + 1], v[CHP_ID_STR_LEN + 8];
    char what[64];
    seeds_open(&s, root, "id");
    for (int i = 0; i < 4; i++) {
        chp_identity *who;
        expect_rc(chp_identity_generate(&rng, &who), CHP_OK, "generate");
        chp_id_encode(chp_identity_pk(who), id);
        chp_identity_destroy(&who);
        snprintf(what, sizeof what, "valid-%d", i);
        id_seed(&s, what, id, CHP_ID_STR_LEN, CHP_OK);
    }
    /* id holds the last valid one from here on. */
    for (int i = 0; i < CHP_ID_STR_LEN; i++)
        v[i] = (char)(id[i] >= 'a' && id[i] <= 'z' ? id[i] - 'a' + 'A' : id[i]);
    id_seed(&s, "upper-case", v, CHP_ID_STR_LEN, CHP_OK);
    v[30] = 'q';
    id_seed(&s, "mixed-case-upper-first", v, CHP_ID_STR_LEN, CHP_E_ID_CHARSET);
    memcpy(v, id, CHP_ID_STR_LEN);
    v[40] = 'Q';
    id_seed(&s, "mixed-case-lower-first", v, CHP_ID_STR_LEN, CHP_E_ID_CHARSET);
    memcpy(v, "CHP1", 4);
    memcpy(v + 4, id + 4, CHP_ID_STR_LEN - 4);
    id_seed(&s, "upper-prefix-lower-data", v, CHP_ID_STR_LEN, CHP_E_ID_CHARSET);

    memcpy(v, id, CHP_ID_STR_LEN);
    v[25] = v[25] == 'q' ? 'p' : 'q';
    id_seed(&s, "typo-data", v, CHP_ID_STR_LEN, CHP_E_ID_CHECKSUM);
    memcpy(v, id, CHP_ID_STR_LEN);
    v[60] = v[60] == 'q' ? 'p' : 'q';
    id_seed(&s, "typo-checksum", v, CHP_ID_STR_LEN, CHP_E_ID_CHECKSUM);
    memcpy(v, id, CHP_ID_STR_LEN);
    for (int i = 10; i < CHP_ID_STR_LEN - 1; i++) {
        if (v[i] != v[i + 1]) {
            char t = v[i];
            v[i] = v[i + 1];
            v[i + 1] = t;
            break;
        }
    }
    id_seed(&s, "transposed", v, CHP_ID_STR_LEN, CHP_E_ID_CHECKSUM);
    memcpy(v, id, CHP_ID_STR_LEN);
    v[12] = 'b'; /* not in the Bech32 alphabet, like 1, i and o */
    id_seed(&s, "char-b", v, CHP_ID_STR_LEN, CHP_E_ID_CHARSET);
    memcpy(v, id, CHP_ID_STR_LEN);
    v[33] = '1';
    id_seed(&s, "char-1", v, CHP_ID_STR_LEN, CHP_E_ID_CHARSET);
    memcpy(v, id, CHP_ID_STR_LEN);
    v[3] = 'x';
    id_seed(&s, "no-separator", v, CHP_ID_STR_LEN, CHP_E_ID_PREFIX);
    memcpy(v, "chq1", 4);
    memcpy(v + 4, id + 4, CHP_ID_STR_LEN - 4);
    id_seed(&s, "wrong-hrp", v, CHP_ID_STR_LEN, CHP_E_ID_PREFIX);

    id_seed(&s, "one-short", id, CHP_ID_STR_LEN - 1, CHP_E_ID_LENGTH);
    memcpy(v, id, CHP_ID_STR_LEN);
    v[CHP_ID_STR_LEN] = '\n';
    id_seed(&s, "trailing-newline", v, CHP_ID_STR_LEN + 1, CHP_E_ID_LENGTH);
    v[0] = ' ';
    memcpy(v + 1, id, CHP_ID_STR_LEN);
    id_seed(&s, "leading-space", v, CHP_ID_STR_LEN + 1, CHP_E_ID_LENGTH);
    id_seed(&s, "empty", "", 0, CHP_E_ID_LENGTH);
    id_seed(&s, "prefix-only", "chp1", 4, CHP_E_ID_LENGTH);

    /* Good checksums over bytes that are no usable key. */
    uint8_t pk[32];
    memset(pk, 0, sizeof pk);
    chp_id_encode(pk, v);
    id_seed(&s, "key-all-zero", v, CHP_ID_STR_LEN, CHP_E_ID_KEY);
    memset(pk, 0xff, sizeof pk);
    chp_id_encode(pk, v);
    id_seed(&s, "key-non-canonical", v, CHP_ID_STR_LEN, CHP_E_ID_KEY);
    memset(pk, 0, sizeof pk);
    pk[0] = 1; /* the identity point */
    chp_id_encode(pk, v);
    id_seed(&s, "key-identity-point", v, CHP_ID_STR_LEN, CHP_E_ID_KEY);
    uint8_t d[52];
    for (int i = 0; i < 52; i++)
        d[i] = (uint8_t)(strchr(b32, id[4 + i]) - b32);
    d[51] |= 0x01; /* the last group carries 1 key bit and 4 padding bits */
    bech32m(d, v);
    id_seed(&s, "padding-bits-set", v, CHP_ID_STR_LEN, CHP_E_ID_KEY);
}

/* ---- sealed key files --------------------------------------------------- */

static void kf_seed(struct seeds *s, const char *what, const uint8_t *p, size_t len, int want_mode,
                    int want_unseal)
{
    uint8_t key[32];
    int mode = 0;
    chp_identity *who = NULL;
    char label[256];
    snprintf(label, sizeof label, "keyfile %s", what);
    fuzz_keyfile_key(key);
    int rc = chp_keyfile_mode(p, len, &mode);
    expect_rc(rc == CHP_OK ? mode : rc, want_mode, label);
    expect_rc(chp_identity_unseal_key(p, len, key, &who), want_unseal, label);
    chp_identity_destroy(&who);
    seed(s, what, p, len);
}

static void gen_keyfiles(const char *root)
{
    struct seeds s = {0};
    uint8_t key[32], other[32], kf[CHP_KEYFILE_BYTES + 1], v[CHP_KEYFILE_BYTES + 1];
    char what[64];
    seeds_open(&s, root, "keyfile");
    fuzz_keyfile_key(key);
    chp_rng_fill(&rng, other, sizeof other);
    const int K = CHP_KEYFILE_MODE_KEY, P = CHP_KEYFILE_MODE_PASSPHRASE;

    for (int i = 0; i < 3; i++) {
        chp_identity *who;
        expect_rc(chp_identity_generate(&rng, &who), CHP_OK, "generate");
        expect_rc(chp_identity_seal_key(who, key, &rng, kf), CHP_OK, "seal_key");
        chp_identity_destroy(&who);
        snprintf(what, sizeof what, "key-mode-%d", i);
        kf_seed(&s, what, kf, CHP_KEYFILE_BYTES, K, CHP_OK);
    }
    /* kf holds the last good key-mode file from here on. */
    chp_identity *who;
    expect_rc(chp_identity_generate(&rng, &who), CHP_OK, "generate");
    expect_rc(chp_identity_seal_key(who, other, &rng, v), CHP_OK, "seal_key other");
    kf_seed(&s, "key-mode-other-key", v, CHP_KEYFILE_BYTES, K, CHP_E_PASSPHRASE);
    expect_rc(chp_identity_seal_passphrase(who, "correct horse", 13, 1, 8, &rng, v), CHP_OK,
              "seal_passphrase");
    chp_identity_destroy(&who);
    kf_seed(&s, "passphrase-mode", v, CHP_KEYFILE_BYTES, P, CHP_E_KEYFILE);
    memcpy(v + 9, "\0\0\0\x21", 4); /* opslimit 33 */
    kf_seed(&s, "passphrase-ops-33", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);
    memcpy(v + 9, "\0\0\0\0", 4);
    kf_seed(&s, "passphrase-ops-0", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);
    memcpy(v + 9, "\0\0\0\x20", 4);
    memcpy(v + 13, "\0\x10\0\0", 4); /* 1 GiB: the largest allowed */
    kf_seed(&s, "passphrase-mem-max", v, CHP_KEYFILE_BYTES, P, CHP_E_KEYFILE);
    memcpy(v + 13, "\0\x10\0\x01", 4);
    kf_seed(&s, "passphrase-mem-over", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);
    memcpy(v + 13, "\0\0\0\x07", 4);
    kf_seed(&s, "passphrase-mem-7kib", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);

    memcpy(v, kf, CHP_KEYFILE_BYTES);
    v[CHP_KEYFILE_BYTES - 1] ^= 1;
    kf_seed(&s, "tag-bit-flip", v, CHP_KEYFILE_BYTES, K, CHP_E_PASSPHRASE);
    memcpy(v, kf, CHP_KEYFILE_BYTES);
    v[40] ^= 1;
    kf_seed(&s, "nonce-bit-flip", v, CHP_KEYFILE_BYTES, K, CHP_E_PASSPHRASE);
    memcpy(v, kf, CHP_KEYFILE_BYTES);
    v[7] = '2';
    kf_seed(&s, "magic-v2", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);
    memcpy(v, kf, CHP_KEYFILE_BYTES);
    v[8] = 0;
    kf_seed(&s, "mode-0", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);
    v[8] = 3;
    kf_seed(&s, "mode-3", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);
    memcpy(v, kf, CHP_KEYFILE_BYTES);
    v[12] = 1;
    kf_seed(&s, "key-mode-ops-1", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);
    memcpy(v, kf, CHP_KEYFILE_BYTES);
    v[16] = 8;
    kf_seed(&s, "key-mode-mem-8", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);
    memcpy(v, kf, CHP_KEYFILE_BYTES);
    v[32] = 1;
    kf_seed(&s, "key-mode-salt-set", v, CHP_KEYFILE_BYTES, CHP_E_KEYFILE, CHP_E_KEYFILE);
    kf_seed(&s, "truncated-by-1", kf, CHP_KEYFILE_BYTES - 1, CHP_E_KEYFILE, CHP_E_KEYFILE);
    memcpy(v, kf, CHP_KEYFILE_BYTES);
    v[CHP_KEYFILE_BYTES] = '\n';
    kf_seed(&s, "trailing-newline", v, CHP_KEYFILE_BYTES + 1, CHP_E_KEYFILE, CHP_E_KEYFILE);
    kf_seed(&s, "header-only", kf, 57, CHP_E_KEYFILE, CHP_E_KEYFILE);
    kf_seed(&s, "magic-only", kf, 8, CHP_E_KEYFILE, CHP_E_KEYFILE);
    kf_seed(&s, "empty", kf, 0, CHP_E_KEYFILE, CHP_E_KEYFILE);
}

/* ---- bundles and want files (fuzz_bundle) ------------------------------- */

static void bundle_seed(struct seeds *s, const char *what, uint8_t mode, const chp_buf *b)
{
    uint8_t *p = malloc(b->len + 1);
    if (!p)
        die("out of memory");
    p[0] = mode;
    memcpy(p + 1, b->p, b->len);
    seed(s, what, p, b->len + 1);
    free(p);
}

/* A want of the fuzzer's fixed 64 items (every step-th of them). */
static void want_file(chp_buf *b, int step)
{
    chp_want w;
    chp_bundle_wr wr;
    chp_buf body = {0};
    uint8_t salt[CHP_WANT_SALT] = {7}, id[32] = {0};
    expect_rc(chp_want_init(&w, (uint64_t)(64 / step), salt), CHP_OK, "want init");
    for (int i = 0; i < 64; i += step) {
        id[0] = (uint8_t)(i * 4);
        chp_want_add(&w, 1800000000 + (uint64_t)(i / 16), id);
    }
    expect_rc(chp_want_encode(&w, &body), CHP_OK, "want encode");
    expect_rc(chp_bundle_wr_begin(&wr, CHP_BUNDLE_KIND_WANT, b), CHP_OK, "begin");
    expect_rc(chp_bundle_wr_rec(&wr, CHP_REC_WANT, body.p, body.len, b), CHP_OK, "rec");
    expect_rc(chp_bundle_wr_end(&wr, b), CHP_OK, "end");
    chp_buf_free(&body);
    chp_want_fini(&w);
}

static void gen_bundles(const char *root)
{
    struct seeds s;
    seeds_open(&s, root, "bundle");
    chp_buf b = {0};
    chp_bundle_wr wr;
    expect_rc(chp_bundle_wr_begin(&wr, CHP_BUNDLE_KIND_ENVELOPES, &b), CHP_OK, "begin");
    for (int i = 0; i < 3; i++) {
        chp_rng_fill(&rng, payload, 300);
        expect_rc(chp_bundle_wr_rec(&wr, CHP_REC_ENVELOPE, payload, 300, &b), CHP_OK, "rec");
    }
    expect_rc(chp_bundle_wr_end(&wr, &b), CHP_OK, "end");
    bundle_seed(&s, "open-whole", 12, &b);
    bundle_seed(&s, "open-pieces", 3, &b);
    size_t whole = b.len;
    b.len = whole - 20;
    bundle_seed(&s, "open-cut", 5, &b);
    b.len = whole;
    b.p[100] ^= 4;
    bundle_seed(&s, "open-flipped", 12, &b);
    b.p[100] ^= 4;
    chp_put_be32(b.p + CHP_BUNDLE_HDR_BYTES + 1, 0xffffffffu);
    bundle_seed(&s, "open-4gib-length", 12, &b);
    chp_buf_free(&b);
    want_file(&b, 1);
    bundle_seed(&s, "want-equal", 14, &b);
    chp_buf_free(&b);
    want_file(&b, 2);
    bundle_seed(&s, "want-half", 6, &b);
    /* the half want sealed in one chunk under the fuzzer's key */
    uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, *ptc = calloc(1, CHP_SEAL_CHUNK);
    chp_buf sealed = {0};
    if (!ptc || chp_buf_reserve(&sealed, CHP_SEAL_CT) != CHP_OK)
        die("out of memory");
    memcpy(ptc, b.p, b.len);
    chp_seal_chunk(key, 0, 1, ptc, sealed.p);
    sealed.len = CHP_SEAL_CT;
    bundle_seed(&s, "sealed-want", 0x80 | 12, &sealed);
    free(ptc);
    chp_buf_free(&sealed);
    chp_buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR   (normally fuzz/corpus)\n", argv[0]);
        return 2;
    }
    fuzz_init();
    if (mkdir(argv[1], 0777) != 0 && errno != EEXIST)
        die("mkdir %s: %s", argv[1], strerror(errno));
    chp_identity *alice;
    expect_rc(chp_identity_generate(&rng, &alice), CHP_OK, "generate");
    gen_envelopes(argv[1], alice);
    gen_inner(argv[1], alice);
    chp_identity_destroy(&alice);
    gen_ids(argv[1]);
    gen_keyfiles(argv[1]);
    gen_bundles(argv[1]);
    return 0;
}
