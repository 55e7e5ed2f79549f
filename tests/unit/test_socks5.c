/* test_socks5.c - SOCKS5 client messages (proto/socks5.c): the bytes of
 * each request (RFC 1928, RFC 1929) and what each reply means. */
#include "proto/socks5.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_requests(void **st)
{
    (void)st;
    uint8_t b[CHP_SOCKS5_MSG_MAX];
    size_t len;
    assert_int_equal(chp_socks5_greeting(b, 0), 3);
    assert_memory_equal(b, "\x05\x01\x00", 3);
    chp_socks5_greeting(b, 1);
    assert_memory_equal(b, "\x05\x01\x02", 3);
    assert_int_equal(chp_socks5_auth(b, sizeof b, "cert=x;", "iat-mode=0", &len), CHP_OK);
    assert_int_equal(len, 3 + 7 + 10);
    assert_memory_equal(b,
                        "\x01\x07"
                        "cert=x;"
                        "\x0a"
                        "iat-mode=0",
                        len);
    assert_int_equal(chp_socks5_auth(b, sizeof b, "", "p", &len), CHP_E_ARG);
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(chp_socks5_auth(b, sizeof b, big, "p", &len), CHP_E_ARG);
    assert_int_equal(chp_socks5_connect(b, sizeof b, "192.0.2.7", 443, &len), CHP_OK);
    assert_int_equal(len, 10);
    assert_memory_equal(b, "\x05\x01\x00\x01\xc0\x00\x02\x07\x01\xbb", 10);
    assert_int_equal(chp_socks5_connect(b, sizeof b, "::1", 7667, &len), CHP_OK);
    assert_int_equal(len, 22);
    assert_int_equal(b[3], 4);
    assert_int_equal(b[19], 1);
    assert_int_equal(chp_socks5_connect(b, sizeof b, "abc.onion", 7667, &len), CHP_OK);
    assert_int_equal(len, 4 + 1 + 9 + 2);
    assert_memory_equal(b + 3,
                        "\x03\x09"
                        "abc.onion"
                        "\x1d\xf3",
                        13);
    assert_int_equal(chp_socks5_connect(b, sizeof b, big, 1, &len), CHP_E_ARG);
    assert_int_equal(chp_socks5_connect(b, sizeof b, "", 1, &len), CHP_E_ARG);
}

static void test_replies(void **st)
{
    (void)st;
    size_t used;
    int rep;
    assert_int_equal(chp_socks5_method((const uint8_t *)"\x05", 1, 0), CHP_E_TRUNCATED);
    assert_int_equal(chp_socks5_method((const uint8_t *)"\x05\x00", 2, 0), CHP_OK);
    assert_int_equal(chp_socks5_method((const uint8_t *)"\x05\x02", 2, 1), CHP_OK);
    assert_int_equal(chp_socks5_method((const uint8_t *)"\x05\xff", 2, 1), CHP_E_MALFORMED);
    assert_int_equal(chp_socks5_method((const uint8_t *)"HT", 2, 0), CHP_E_MALFORMED);
    assert_int_equal(chp_socks5_auth_reply((const uint8_t *)"\x01\x00", 2), CHP_OK);
    assert_int_equal(chp_socks5_auth_reply((const uint8_t *)"\x01\x01", 2), CHP_E_MALFORMED);
    /* CONNECT replies: IPv4, IPv6, a name; the neighbour's first bytes
     * may follow in the same read */
    const uint8_t v4[] = {5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 0xff};
    assert_int_equal(chp_socks5_reply(v4, sizeof v4, &used, &rep), CHP_OK);
    assert_int_equal(used, 10);
    assert_int_equal(chp_socks5_reply(v4, 9, &used, &rep), CHP_E_TRUNCATED);
    uint8_t v6[22] = {5, 0, 0, 4};
    assert_int_equal(chp_socks5_reply(v6, 22, &used, &rep), CHP_OK);
    assert_int_equal(used, 22);
    const uint8_t name[] = {5, 0, 0, 3, 3, 'a', 'b', 'c', 0, 80};
    assert_int_equal(chp_socks5_reply(name, sizeof name, &used, &rep), CHP_OK);
    assert_int_equal(used, sizeof name);
    /* refused: the code comes back */
    const uint8_t refused[] = {5, 5, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_int_equal(chp_socks5_reply(refused, sizeof refused, &used, &rep), CHP_E_IO);
    assert_int_equal(rep, 5);
    assert_string_equal(chp_socks5_rep_text(rep), "connection refused");
    assert_string_equal(chp_socks5_rep_text(77), "unknown error");
    /* garbage */
    assert_int_equal(chp_socks5_reply((const uint8_t *)"GARBAGE", 7, &used, &rep), CHP_E_MALFORMED);
    const uint8_t empty_name[] = {5, 0, 0, 3, 0, 0, 0, 'x', 'y', 'z'};
    assert_int_equal(chp_socks5_reply(empty_name, sizeof empty_name, &used, &rep), CHP_E_MALFORMED);
    const uint8_t atyp[] = {5, 0, 0, 9, 0, 0, 0};
    assert_int_equal(chp_socks5_reply(atyp, sizeof atyp, &used, &rep), CHP_E_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
