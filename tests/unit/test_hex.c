/* test_hex.c - hexadecimal (proto/hex.c): lower-case encoding with its
 * terminating NUL, decoding of either case, and the refusal of a wrong
 * length or any character that is not a hex digit. */
#include "proto/err.h"
#include "proto/hex.h"
#include "tests/unit/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_encode_known(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x01, 0x09, 0x0a, 0x7f, 0x80, 0xab, 0xf0, 0xff};
    char out[2 * sizeof in + 2];
    memset(out, '#', sizeof out);
    chp_hex_encode(in, sizeof in, out);
    assert_string_equal(out, "0001090a7f80abf0ff");
    assert_int_equal(out[2 * sizeof in + 1], '#'); /* nothing written past the NUL */
}

static void test_encode_empty(void **state)
{
    (void)state;
    char out[2] = {'#', '#'};
    chp_hex_encode(NULL, 0, out);
    assert_int_equal(out[0], '\0');
    assert_int_equal(out[1], '#');
}

/* Every byte value encodes to two lower-case digits and decodes back. */
static void test_round_trip_all_bytes(void **state)
{
    (void)state;
    uint8_t in[256], back[256];
    char hex[513];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    chp_hex_encode(in, sizeof in, hex);
    assert_int_equal(strlen(hex), 512);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 512);
    assert_memory_equal(hex + 2 * 0xc3, "c3", 2);
    assert_rc(chp_hex_decode(hex, 512, back, sizeof back), CHP_OK);
    assert_memory_equal(back, in, sizeof in);
}

static void test_decode_upper_and_mixed_case(void **state)
{
    (void)state;
    static const uint8_t want[] = {0xde, 0xad, 0xbe, 0xef, 0x0a, 0xf9};
    uint8_t out[sizeof want];
    assert_rc(chp_hex_decode("DEADBEEF0AF9", 12, out, sizeof out), CHP_OK);
    assert_memory_equal(out, want, sizeof want);
    memset(out, 0, sizeof out);
    assert_rc(chp_hex_decode("dEaDbEeF0aF9", 12, out, sizeof out), CHP_OK);
    assert_memory_equal(out, want, sizeof want);
    memset(out, 0, sizeof out);
    assert_rc(chp_hex_decode("deadbeef0af9", 12, out, sizeof out), CHP_OK);
    assert_memory_equal(out, want, sizeof want);
}

/* slen counts the digits: trailing text beyond it is not read. */
static void test_decode_reads_only_slen(void **state)
{
    (void)state;
    uint8_t out[2] = {0};
    assert_rc(chp_hex_decode("beefZZ", 4, out, 2), CHP_OK);
    assert_int_equal(out[0], 0xbe);
    assert_int_equal(out[1], 0xef);
    assert_rc(chp_hex_decode("", 0, out, 0), CHP_OK); /* nothing, as nothing */
}

static void test_decode_wrong_length(void **state)
{
    (void)state;
    uint8_t out[4];
    assert_rc(chp_hex_decode("abc", 3, out, 2), CHP_E_ARG);      /* odd */
    assert_rc(chp_hex_decode("ab", 2, out, 2), CHP_E_ARG);       /* short */
    assert_rc(chp_hex_decode("abcdef", 6, out, 2), CHP_E_ARG);   /* long */
    assert_rc(chp_hex_decode("abcdef01", 8, out, 3), CHP_E_ARG); /* long by a byte */
    assert_rc(chp_hex_decode("", 0, out, 1), CHP_E_ARG);
}

/* Every character that is not a hex digit is refused, in either place of
 * a byte, at the start, middle and end. */
static void test_decode_bad_digits(void **state)
{
    (void)state;
    const char *digits = "0123456789abcdefABCDEF";
    int refused = 0;
    for (int c = 0; c < 256; c++) {
        if (c && strchr(digits, c))
            continue;
        for (size_t pos = 0; pos < 6; pos++) {
            char s[7] = "a1b2c3";
            uint8_t out[3];
            s[pos] = (char)c;
            if (chp_hex_decode(s, 6, out, 3) != CHP_E_ARG)
                fail_msg("character 0x%02x at %zu was accepted", (unsigned)c, pos);
            refused++;
        }
    }
    assert_int_equal(refused, (256 - 22) * 6);
    /* The neighbours of the digit ranges, by name. */
    uint8_t out[1];
    static const char *const near[] = {"/0", "0:", "@0", "0G", "`0", "0g", " 1", "1 ", "+1", "-1"};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++)
        assert_rc(chp_hex_decode(near[i], 2, out, 1), CHP_E_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_known),
        cmocka_unit_test(test_encode_empty),
        cmocka_unit_test(test_round_trip_all_bytes),
        cmocka_unit_test(test_decode_upper_and_mixed_case),
        cmocka_unit_test(test_decode_reads_only_slen),
        cmocka_unit_test(test_decode_wrong_length),
        cmocka_unit_test(test_decode_bad_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
