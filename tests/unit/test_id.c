/* test_id.c - ID strings, fingerprints and safety numbers (PROTOCOL.md
 * section 4), checked against a small Bech32m reference written here from
 * BIP-173/BIP-350, and against every single-character typo and swap. */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/err.h"
#include "proto/id.h"
#include "tests/unit/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define DATA_CHARS 52
#define CHECKSUM   6
#define BECH32M    0x2bc830a3u

static const char alphabet[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/* ---- reference Bech32m (BIP-173 polymod, BIP-350 constant) ---- */

static uint32_t ref_polymod(const uint8_t *v, size_t n)
{
    static const uint32_t gen[5] = {0x3b6a57b2u, 0x26508e6du, 0x1ea119fau, 0x3d4233ddu,
                                    0x2a1462b3u};
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t top = chk >> 25;
        chk = ((chk & 0x1ffffffu) << 5) ^ v[i];
        for (int j = 0; j < 5; j++)
            if ((top >> j) & 1)
                chk ^= gen[j];
    }
    return chk;
}

static int ref_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a');
    for (int i = 0; i < 32; i++)
        if (alphabet[i] == c)
            return i;
    return -1;
}

/* hrp_expand(hrp) || values of the data part; returns the count or 0. */
static size_t ref_expand(const char *s, size_t len, uint8_t *v, size_t cap)
{
    size_t sep = 0, n = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '1')
            sep = i; /* the last '1' */
    if (sep == 0 || 2 * sep + 1 + (len - sep - 1) > cap)
        return 0;
    for (size_t i = 0; i < sep; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        v[n++] = (uint8_t)((uint8_t)c >> 5);
    }
    if (n >= cap) /* cannot happen (checked above); tells gcc -O3 so */
        return 0;
    v[n++] = 0;
    for (size_t i = 0; i < sep; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        v[n++] = (uint8_t)(c & 31);
    }
    for (size_t i = sep + 1; i < len; i++) {
        int x = ref_value(s[i]);
        if (x < 0)
            return 0;
        v[n++] = (uint8_t)x;
    }
    return n;
}

/* The polymod residue of a whole Bech32-family string: BECH32M for a valid
 * Bech32m string, 1 for a valid (original) Bech32 one. */
static uint32_t ref_residue(const char *s)
{
    uint8_t v[256];
    size_t n = ref_expand(s, strlen(s), v, sizeof v);
    assert_true(n > 0);
    return ref_polymod(v, n);
}

/* Key bits, most significant first, then zero bits, in groups of 5 (done
 * one bit at a time, unlike the library). */
static void ref_to5(const uint8_t pk[32], uint8_t d[DATA_CHARS])
{
    memset(d, 0, DATA_CHARS);
    for (size_t bit = 0; bit < 256; bit++) {
        unsigned b = (pk[bit / 8] >> (7 - bit % 8)) & 1u;
        d[bit / 5] |= (uint8_t)(b << (4 - bit % 5));
    }
}

/* hrp "1" data checksum, NUL-terminated; out has room for hrp + 60. */
static void ref_encode(const char *hrp, const uint8_t d[DATA_CHARS], char *out)
{
    size_t h = strlen(hrp), n = 0;
    uint8_t v[2 * 8 + 1 + DATA_CHARS + CHECKSUM];
    assert_true(h <= 8);
    for (size_t i = 0; i < h; i++)
        v[n++] = (uint8_t)((uint8_t)hrp[i] >> 5);
    v[n++] = 0;
    for (size_t i = 0; i < h; i++)
        v[n++] = (uint8_t)(hrp[i] & 31);
    memcpy(v + n, d, DATA_CHARS);
    n += DATA_CHARS;
    memset(v + n, 0, CHECKSUM);
    n += CHECKSUM;
    uint32_t chk = ref_polymod(v, n) ^ BECH32M;
    memcpy(out, hrp, h);
    out[h] = '1';
    for (size_t i = 0; i < DATA_CHARS; i++)
        out[h + 1 + i] = alphabet[d[i]];
    for (size_t i = 0; i < CHECKSUM; i++)
        out[h + 1 + DATA_CHARS + i] = alphabet[(chk >> (5 * (5 - i))) & 31u];
    out[h + 1 + DATA_CHARS + CHECKSUM] = '\0';
}

/* ---- helpers ---- */

/* A valid public key, number i of a deterministic sequence. */
static void key_n(uint64_t i, uint8_t pk[32])
{
    tu_ctr c = {.ctr = i * 1000 + 1};
    chp_rng rng = tu_ctr_rng(&c);
    uint8_t seed[32], sk[64];
    chp_rng_fill(&rng, seed, sizeof seed);
    chp_sign_seed_keypair(seed, pk, sk);
}

static void to_upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
}

static int parse(const char *s, uint8_t pk[32])
{
    return chp_id_parse(s, strlen(s), pk);
}

static int in_alphabet(int c)
{
    return c != 0 && memchr(alphabet, c, 32) != NULL;
}

static void test_crypto_init(void **state)
{
    (void)state;
    assert_int_equal(chp_crypto_init(), CHP_OK);
}

/* ---- the reference itself ---- */

static void test_reference_bip350_vectors(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "A1LQFN3A",
        "a1lqfn3a",
        "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg"
        "6",
        "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
        "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr"
        "8",
        "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
        "?1v759aa",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        assert_true(ref_residue(valid[i]) == BECH32M);
    /* BIP-173 (Bech32, not Bech32m) strings have residue 1. */
    assert_true(ref_residue("a12uel5l") == 1);
    assert_true(ref_residue("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw") == 1);
}

/* ---- encoding ---- */

static void test_encode_format(void **state)
{
    (void)state;
    uint8_t pk[32];
    char s[CHP_ID_STR_LEN + 1];
    key_n(1, pk);
    memset(s, 'X', sizeof s);
    chp_id_encode(pk, s);
    assert_int_equal(strlen(s), 62);
    assert_int_equal(CHP_ID_STR_LEN, 62);
    assert_memory_equal(s, "chp1", 4);
    for (size_t i = 4; i < CHP_ID_STR_LEN; i++)
        assert_true(in_alphabet(s[i]));
    char again[CHP_ID_STR_LEN + 1];
    chp_id_encode(pk, again);
    assert_string_equal(s, again);
}

static void test_encode_matches_reference(void **state)
{
    (void)state;
    uint8_t v[8 + 1 + DATA_CHARS + CHECKSUM];
    for (uint64_t i = 0; i < 64; i++) {
        uint8_t pk[32], d[DATA_CHARS];
        char s[CHP_ID_STR_LEN + 1], want[3 + 1 + DATA_CHARS + CHECKSUM + 1];
        key_n(i, pk);
        chp_id_encode(pk, s);
        ref_to5(pk, d);
        assert_int_equal(d[DATA_CHARS - 1] & 0x0f, 0); /* the padding bits */
        ref_encode("chp", d, want);
        assert_string_equal(s, want);
        /* The polymod over hrp_expand || data || checksum is the Bech32m
         * constant. */
        size_t n = ref_expand(s, CHP_ID_STR_LEN, v, sizeof v);
        assert_int_equal(n, 7 + DATA_CHARS + CHECKSUM);
        assert_true(ref_polymod(v, n) == BECH32M);
        assert_true(ref_polymod(v, n) != 1); /* not plain Bech32 */
    }
}

static void test_encode_known_bit_patterns(void **state)
{
    (void)state;
    uint8_t pk[32];
    char s[CHP_ID_STR_LEN + 1];
    /* All-zero key: 52 'q's then the checksum. */
    memset(pk, 0, sizeof pk);
    chp_id_encode(pk, s);
    for (size_t i = 4; i < 4 + DATA_CHARS; i++)
        assert_int_equal(s[i], 'q');
    /* All ones: 51 'l's (31) and a last group 1 0000 = 16 = 's'. */
    memset(pk, 0xff, sizeof pk);
    chp_id_encode(pk, s);
    for (size_t i = 4; i < 4 + DATA_CHARS - 1; i++)
        assert_int_equal(s[i], 'l');
    assert_int_equal(s[4 + DATA_CHARS - 1], 's');
    assert_true(ref_residue(s) == BECH32M);
}

/* ---- parsing ---- */

static void test_round_trip_many_keys(void **state)
{
    (void)state;
    for (uint64_t i = 0; i < 256; i++) {
        uint8_t pk[32], back[32];
        char s[CHP_ID_STR_LEN + 1];
        key_n(i, pk);
        chp_id_encode(pk, s);
        memset(back, 0, sizeof back);
        assert_int_equal(chp_id_parse(s, CHP_ID_STR_LEN, back), CHP_OK);
        assert_memory_equal(back, pk, 32);
    }
}

static void test_parse_uppercase(void **state)
{
    (void)state;
    for (uint64_t i = 0; i < 16; i++) {
        uint8_t pk[32], back[32];
        char s[CHP_ID_STR_LEN + 1];
        key_n(i, pk);
        chp_id_encode(pk, s);
        to_upper(s);
        assert_memory_equal(s, "CHP1", 4);
        assert_int_equal(parse(s, back), CHP_OK);
        assert_memory_equal(back, pk, 32);
    }
}

/* Only len characters are read: the ID inside a longer line parses. */
static void test_parse_reads_exactly_len(void **state)
{
    (void)state;
    uint8_t pk[32], back[32];
    char line[100];
    key_n(3, pk);
    chp_id_encode(pk, line);
    memcpy(line + CHP_ID_STR_LEN, " trailing", 10);
    assert_int_equal(chp_id_parse(line, CHP_ID_STR_LEN, back), CHP_OK);
    assert_memory_equal(back, pk, 32);
}

static void test_parse_mixed_case(void **state)
{
    (void)state;
    uint8_t pk[32], out[32];
    char s[CHP_ID_STR_LEN + 1];
    key_n(4, pk);
    chp_id_encode(pk, s);
    size_t letters = 0;
    for (size_t i = 4; i < CHP_ID_STR_LEN; i++) {
        if (s[i] < 'a' || s[i] > 'z')
            continue;
        letters++;
        char lower = s[i];
        s[i] = (char)(lower - 'a' + 'A'); /* one capital in a lower-case ID */
        assert_int_equal(parse(s, out), CHP_E_ID_CHARSET);
        s[i] = lower;
        to_upper(s);
        s[i] = lower; /* one small letter in an upper-case ID */
        assert_int_equal(parse(s, out), CHP_E_ID_CHARSET);
        chp_id_encode(pk, s);
    }
    assert_true(letters > 10);
    /* Data upper, prefix lower (and the reverse) is mixed case too. */
    to_upper(s);
    memcpy(s, "chp1", 4);
    assert_int_equal(parse(s, out), CHP_E_ID_CHARSET);
    chp_id_encode(pk, s);
    memcpy(s, "CHP1", 4);
    assert_int_equal(parse(s, out), CHP_E_ID_CHARSET);
    /* Mixed case inside the prefix: not "chp1" nor "CHP1", and the prefix
     * is checked before the alphabet. */
    chp_id_encode(pk, s);
    memcpy(s, "Chp1", 4);
    assert_int_equal(parse(s, out), CHP_E_ID_PREFIX);
    memcpy(s, "cHP1", 4);
    assert_int_equal(parse(s, out), CHP_E_ID_PREFIX);
}

/* The error expected when s[i] of a valid ID becomes c. */
static int substitution_error(size_t i, int c)
{
    if (i < 4)
        return CHP_E_ID_PREFIX;
    return in_alphabet(c) ? CHP_E_ID_CHECKSUM : CHP_E_ID_CHARSET;
}

static void test_every_substitution_rejected(void **state)
{
    (void)state;
    for (uint64_t k = 0; k < 4; k++) {
        uint8_t pk[32], out[32];
        char s[CHP_ID_STR_LEN + 1];
        key_n(100 + k, pk);
        chp_id_encode(pk, s);
        for (size_t i = 0; i < CHP_ID_STR_LEN; i++) {
            char orig = s[i];
            for (int c = 0; c < 256; c++) {
                if ((char)c == orig)
                    continue;
                s[i] = (char)c;
                int rc = chp_id_parse(s, CHP_ID_STR_LEN, out);
                int want = substitution_error(i, c);
                if (rc != want)
                    fail_msg("key %u pos %zu char 0x%02x: got %s, want %s", (unsigned)k, i, c,
                             chp_errname(rc), chp_errname(want));
            }
            s[i] = orig;
        }
        assert_int_equal(parse(s, out), CHP_OK);
    }
}

static void test_every_substitution_rejected_uppercase(void **state)
{
    (void)state;
    uint8_t pk[32], out[32];
    char s[CHP_ID_STR_LEN + 1];
    key_n(200, pk);
    chp_id_encode(pk, s);
    to_upper(s);
    for (size_t i = 0; i < CHP_ID_STR_LEN; i++) {
        char orig = s[i];
        for (int c = 0; c < 256; c++) {
            if ((char)c == orig)
                continue;
            s[i] = (char)c;
            int want;
            if (i < 4)
                want = CHP_E_ID_PREFIX;
            else if (c >= 'A' && c <= 'Z' && in_alphabet(c - 'A' + 'a'))
                want = CHP_E_ID_CHECKSUM;
            else if (c >= '0' && c <= '9' && in_alphabet(c))
                want = CHP_E_ID_CHECKSUM;
            else
                want = CHP_E_ID_CHARSET;
            int rc = chp_id_parse(s, CHP_ID_STR_LEN, out);
            if (rc != want)
                fail_msg("pos %zu char 0x%02x: got %s, want %s", i, c, chp_errname(rc),
                         chp_errname(want));
        }
        s[i] = orig;
    }
    assert_int_equal(parse(s, out), CHP_OK);
}

static void test_every_adjacent_transposition_rejected(void **state)
{
    (void)state;
    size_t swaps = 0;
    for (uint64_t k = 0; k < 32; k++) {
        uint8_t pk[32], out[32];
        char s[CHP_ID_STR_LEN + 1];
        key_n(300 + k, pk);
        chp_id_encode(pk, s);
        for (size_t i = 0; i + 1 < CHP_ID_STR_LEN; i++) {
            if (s[i] == s[i + 1])
                continue; /* swapping equal characters is no typo */
            char t = s[i];
            s[i] = s[i + 1];
            s[i + 1] = t;
            int want = i < 4 ? CHP_E_ID_PREFIX : CHP_E_ID_CHECKSUM;
            int rc = parse(s, out);
            if (rc != want)
                fail_msg("key %u swap %zu/%zu: got %s, want %s", (unsigned)k, i, i + 1,
                         chp_errname(rc), chp_errname(want));
            s[i + 1] = s[i];
            s[i] = t;
            swaps++;
        }
        assert_int_equal(parse(s, out), CHP_OK);
    }
    assert_true(swaps > 32 * 50);
}

static void test_wrong_length(void **state)
{
    (void)state;
    uint8_t pk[32], out[32];
    char s[CHP_ID_STR_LEN + 8];
    key_n(5, pk);
    chp_id_encode(pk, s);
    assert_int_equal(chp_id_parse(s, 0, out), CHP_E_ID_LENGTH);
    assert_int_equal(chp_id_parse(s, 4, out), CHP_E_ID_LENGTH);
    assert_int_equal(chp_id_parse(s, CHP_ID_STR_LEN - 1, out), CHP_E_ID_LENGTH);
    /* A trailing newline or space is not trimmed for the caller. */
    memcpy(s + CHP_ID_STR_LEN, "\n", 2);
    assert_int_equal(chp_id_parse(s, CHP_ID_STR_LEN + 1, out), CHP_E_ID_LENGTH);
    char sp[CHP_ID_STR_LEN + 2] = " ";
    chp_id_encode(pk, sp + 1);
    assert_int_equal(parse(sp, out), CHP_E_ID_LENGTH);
    /* Length is checked first: a short string with a bad prefix too. */
    assert_int_equal(parse("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", out), CHP_E_ID_LENGTH);
}

static void test_wrong_prefix(void **state)
{
    (void)state;
    uint8_t pk[32], out[32], d[DATA_CHARS];
    char s[CHP_ID_STR_LEN + 1];
    key_n(6, pk);
    static const char *const prefixes[] = {"chp2", "chq1", "xhp1", "bc1q", "CHp1", "chp ", "1chp"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        chp_id_encode(pk, s);
        memcpy(s, prefixes[i], 4);
        assert_int_equal(parse(s, out), CHP_E_ID_PREFIX);
    }
    /* A perfectly valid Bech32m string of the same length for another hrp. */
    ref_to5(pk, d);
    ref_encode("chq", d, s);
    assert_true(ref_residue(s) == BECH32M);
    assert_int_equal(parse(s, out), CHP_E_ID_PREFIX);
}

static void test_bad_character(void **state)
{
    (void)state;
    uint8_t pk[32], out[32];
    char s[CHP_ID_STR_LEN + 1];
    key_n(7, pk);
    chp_id_encode(pk, s);
    static const char bad[] = {'b', 'i', 'o', '1', ' ', '-', '\0', '\x7f', '\xc3', '\xff'};
    for (size_t i = 4; i < CHP_ID_STR_LEN; i++) {
        char orig = s[i];
        for (size_t b = 0; b < sizeof bad; b++) {
            s[i] = bad[b];
            assert_int_equal(chp_id_parse(s, CHP_ID_STR_LEN, out), CHP_E_ID_CHARSET);
        }
        s[i] = orig;
    }
    /* The excluded letters stay excluded in upper case. */
    to_upper(s);
    static const char bad_upper[] = {'B', 'I', 'O'};
    for (size_t b = 0; b < sizeof bad_upper; b++) {
        char orig = s[20];
        s[20] = bad_upper[b];
        assert_int_equal(chp_id_parse(s, CHP_ID_STR_LEN, out), CHP_E_ID_CHARSET);
        s[20] = orig;
    }
    /* The alphabet is checked before the checksum: a bad character in an
     * otherwise mistyped string still reports the character. */
    chp_id_encode(pk, s);
    s[10] = s[10] == 'q' ? 'p' : 'q';
    s[11] = 'b';
    assert_int_equal(parse(s, out), CHP_E_ID_CHARSET);
}

static void test_checksum_error(void **state)
{
    (void)state;
    uint8_t pk[32], out[32];
    char s[CHP_ID_STR_LEN + 1];
    key_n(8, pk);
    chp_id_encode(pk, s);
    /* One wrong checksum character. */
    char *last = &s[CHP_ID_STR_LEN - 1];
    char orig = *last;
    *last = orig == 'q' ? 'p' : 'q';
    assert_int_equal(parse(s, out), CHP_E_ID_CHECKSUM);
    *last = orig;
    /* Four wrong data characters (within the guaranteed-detection bound). */
    for (size_t i = 10; i < 14; i++)
        s[i] = s[i] == 'x' ? 'y' : 'x';
    assert_int_equal(parse(s, out), CHP_E_ID_CHECKSUM);
    /* Another key's checksum on this key's data. */
    char t[CHP_ID_STR_LEN + 1];
    uint8_t pk2[32];
    key_n(9, pk2);
    chp_id_encode(pk, s);
    chp_id_encode(pk2, t);
    memcpy(s + 4 + DATA_CHARS, t + 4 + DATA_CHARS, CHECKSUM);
    assert_int_equal(parse(s, out), CHP_E_ID_CHECKSUM);
    /* The old Bech32 (BIP-173) checksum is not accepted. */
    uint8_t d[DATA_CHARS], v[7 + DATA_CHARS + CHECKSUM];
    ref_to5(pk, d);
    chp_id_encode(pk, s);
    size_t n = ref_expand(s, 4 + DATA_CHARS, v, sizeof v);
    memset(v + n, 0, CHECKSUM);
    uint32_t chk = ref_polymod(v, n + CHECKSUM) ^ 1u;
    for (size_t i = 0; i < CHECKSUM; i++)
        s[4 + DATA_CHARS + i] = alphabet[(chk >> (5 * (5 - i))) & 31u];
    assert_true(ref_residue(s) == 1);
    assert_int_equal(parse(s, out), CHP_E_ID_CHECKSUM);
}

/* A correctly checksummed string that does not carry a usable key. */
static void expect_key_error(const uint8_t pk[32])
{
    char s[CHP_ID_STR_LEN + 1];
    uint8_t out[32];
    chp_id_encode(pk, s);
    assert_true(ref_residue(s) == BECH32M);
    assert_int_equal(parse(s, out), CHP_E_ID_KEY);
    to_upper(s);
    assert_int_equal(parse(s, out), CHP_E_ID_KEY);
}

static void test_invalid_key(void **state)
{
    (void)state;
    uint8_t pk[32];
    memset(pk, 0, sizeof pk); /* all zero: small order */
    expect_key_error(pk);
    pk[0] = 1; /* the identity point */
    expect_key_error(pk);
    memset(pk, 0xff, sizeof pk); /* y >= p */
    expect_key_error(pk);
    memset(pk, 0xff, sizeof pk); /* y = p: non-canonical */
    pk[0] = 0xed;
    pk[31] = 0x7f;
    expect_key_error(pk);
    memset(pk, 0, sizeof pk); /* y = 2: not on the curve */
    pk[0] = 2;
    expect_key_error(pk);
    /* Order-8 point. */
    static const uint8_t order8[32] = {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0,
                                       0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
                                       0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39,
                                       0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05};
    expect_key_error(order8);
}

/* Non-zero padding bits: one valid string per key, so these are refused. */
static void test_nonzero_padding(void **state)
{
    (void)state;
    uint8_t pk[32], out[32], d[DATA_CHARS];
    char s[3 + 1 + DATA_CHARS + CHECKSUM + 1];
    key_n(10, pk);
    for (uint8_t pad = 1; pad < 16; pad++) {
        ref_to5(pk, d);
        d[DATA_CHARS - 1] |= pad;
        ref_encode("chp", d, s);
        assert_true(ref_residue(s) == BECH32M);
        assert_int_equal(parse(s, out), CHP_E_ID_KEY);
    }
}

/* ---- fingerprints ---- */

/* PROTOCOL.md 4.2, written out independently. */
static void ref_fingerprint(const uint8_t pk[32], char out[9])
{
    static const char label[] = "chapar-fingerprint-v1";
    uint8_t h[32];
    chp_hash(h, 32, pk, 32, label, strlen(label));
    uint8_t bits[40];
    for (size_t i = 0; i < 40; i++)
        bits[i] = (h[i / 8] >> (7 - i % 8)) & 1u;
    for (size_t c = 0; c < 8; c++) {
        unsigned v = 0;
        for (size_t j = 0; j < 5; j++)
            v = (v << 1) | bits[5 * c + j];
        out[c] = alphabet[v];
    }
    out[8] = '\0';
}

static void test_fingerprint(void **state)
{
    (void)state;
    enum { N = 128 };
    static char fprs[N][CHP_FPR_STR_LEN + 1];
    for (uint64_t i = 0; i < N; i++) {
        uint8_t pk[32];
        char want[9], again[CHP_FPR_STR_LEN + 1];
        key_n(i, pk);
        memset(fprs[i], 'X', sizeof fprs[i]);
        chp_id_fingerprint(pk, fprs[i]);
        assert_int_equal(strlen(fprs[i]), CHP_FPR_STR_LEN);
        assert_int_equal(CHP_FPR_STR_LEN, 8);
        for (size_t j = 0; j < CHP_FPR_STR_LEN; j++)
            assert_true(in_alphabet(fprs[i][j]));
        ref_fingerprint(pk, want);
        assert_string_equal(fprs[i], want);
        chp_id_fingerprint(pk, again);
        assert_string_equal(fprs[i], again);
        for (uint64_t j = 0; j < i; j++)
            assert_string_not_equal(fprs[i], fprs[j]);
    }
    /* One bit of key changes it. */
    uint8_t pk[32];
    char a[9], b[9];
    key_n(0, pk);
    chp_id_fingerprint(pk, a);
    pk[31] ^= 1;
    chp_id_fingerprint(pk, b);
    assert_string_not_equal(a, b);
}

/* ---- safety numbers ---- */

static void ref_safety(const uint8_t a[32], const uint8_t b[32], char out[36])
{
    static const char label[] = "chapar-safety-number-v1";
    uint8_t in[64], h[32];
    int a_first = memcmp(a, b, 32) <= 0;
    memcpy(in, a_first ? a : b, 32);
    memcpy(in + 32, a_first ? b : a, 32);
    chp_hash(h, 32, in, 64, label, strlen(label));
    for (int g = 0; g < 6; g++) {
        uint64_t v = 0;
        for (int i = 0; i < 5; i++)
            v = v * 256 + h[5 * g + i];
        snprintf(out + 6 * g, 7, "%05u%s", (unsigned)(v % 100000), g < 5 ? " " : "");
    }
}

static void check_safety_format(const char *s)
{
    assert_int_equal(strlen(s), CHP_SAFETY_STR_LEN);
    for (size_t i = 0; i < CHP_SAFETY_STR_LEN; i++) {
        if (i % 6 == 5)
            assert_int_equal(s[i], ' ');
        else
            assert_true(s[i] >= '0' && s[i] <= '9');
    }
}

static void test_safety_number(void **state)
{
    (void)state;
    for (uint64_t i = 0; i < 32; i++) {
        uint8_t a[32], b[32];
        char ab[CHP_SAFETY_STR_LEN + 1], ba[CHP_SAFETY_STR_LEN + 1], want[36];
        key_n(i, a);
        key_n(i + 1000, b);
        memset(ab, 'X', sizeof ab);
        chp_safety_number(a, b, ab);
        chp_safety_number(b, a, ba);
        check_safety_format(ab);
        assert_string_equal(ab, ba); /* symmetric */
        ref_safety(a, b, want);
        assert_string_equal(ab, want);
    }
    assert_int_equal(CHP_SAFETY_STR_LEN, 35);
}

static void test_safety_number_changes_with_either_key(void **state)
{
    (void)state;
    uint8_t a[32], b[32], c[32];
    char ab[CHP_SAFETY_STR_LEN + 1], cb[CHP_SAFETY_STR_LEN + 1], ac[CHP_SAFETY_STR_LEN + 1];
    char aa[CHP_SAFETY_STR_LEN + 1];
    key_n(1, a);
    key_n(2, b);
    key_n(3, c);
    chp_safety_number(a, b, ab);
    chp_safety_number(c, b, cb);
    chp_safety_number(a, c, ac);
    assert_string_not_equal(ab, cb);
    assert_string_not_equal(ab, ac);
    /* A single flipped bit in either key: a swapped key shows. */
    for (size_t i = 0; i < 32; i += 7) {
        char x[CHP_SAFETY_STR_LEN + 1];
        a[i] ^= 0x10;
        chp_safety_number(a, b, x);
        assert_string_not_equal(ab, x);
        a[i] ^= 0x10;
        b[i] ^= 0x01;
        chp_safety_number(a, b, x);
        assert_string_not_equal(ab, x);
        b[i] ^= 0x01;
    }
    /* Talking to oneself still gives a well-formed number. */
    chp_safety_number(a, a, aa);
    check_safety_format(aa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_init),
        cmocka_unit_test(test_reference_bip350_vectors),
        cmocka_unit_test(test_encode_format),
        cmocka_unit_test(test_encode_matches_reference),
        cmocka_unit_test(test_encode_known_bit_patterns),
        cmocka_unit_test(test_round_trip_many_keys),
        cmocka_unit_test(test_parse_uppercase),
        cmocka_unit_test(test_parse_reads_exactly_len),
        cmocka_unit_test(test_parse_mixed_case),
        cmocka_unit_test(test_every_substitution_rejected),
        cmocka_unit_test(test_every_substitution_rejected_uppercase),
        cmocka_unit_test(test_every_adjacent_transposition_rejected),
        cmocka_unit_test(test_wrong_length),
        cmocka_unit_test(test_wrong_prefix),
        cmocka_unit_test(test_bad_character),
        cmocka_unit_test(test_checksum_error),
        cmocka_unit_test(test_invalid_key),
        cmocka_unit_test(test_nonzero_padding),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_safety_number),
        cmocka_unit_test(test_safety_number_changes_with_either_key),
    };
    if (chp_crypto_init() != CHP_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
