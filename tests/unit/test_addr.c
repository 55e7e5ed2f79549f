/* test_addr.c - peer addresses (proto/addr.c): what parses, what the
 * canonical form and the ZeroMQ endpoint are, and which part an error
 * names. */
#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/id.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static char g_key[80];
static uint8_t g_raw[32];

static int setup(void **st)
{
    (void)st;
    for (int i = 0; i < 32; i++)
        g_raw[i] = (uint8_t)(i * 7 + 1);
    chp_b32key_encode(CHP_NODEKEY_HRP, g_raw, g_key);
    return 0;
}

static int parse(const char *hostport, chp_addr *a)
{
    char s[512];
    snprintf(s, sizeof s, "%s/%s", hostport, g_key);
    return chp_addr_parse(s, strlen(s), a);
}

static void roundtrip(const char *hostport, const char *endpoint)
{
    chp_addr a;
    char s[512], out[CHP_ADDR_STR_MAX + 1], ep[600];
    assert_int_equal(parse(hostport, &a), CHP_OK);
    assert_memory_equal(a.key, g_raw, 32);
    snprintf(s, sizeof s, "%s/%s", hostport, g_key);
    assert_int_equal(chp_addr_format(&a, out, sizeof out), CHP_OK);
    assert_string_equal(out, s);
    assert_int_equal(chp_addr_endpoint(&a, ep, sizeof ep), CHP_OK);
    assert_string_equal(ep, endpoint);
}

static void test_valid(void **st)
{
    (void)st;
    roundtrip("192.168.1.20:7667", "tcp://192.168.1.20:7667");
    roundtrip("relay.example.org:1", "tcp://relay.example.org:1");
    roundtrip("[2001:db8::7]:65535", "tcp://[2001:db8::7]:65535");
    roundtrip("[::1]:7667", "tcp://[::1]:7667");
    roundtrip("[fe80::1c2:3ff:fe04:506%eth0]:7667", "tcp://[fe80::1c2:3ff:fe04:506%eth0]:7667");
    roundtrip("[fe80::1%veth-a.1]:80", "tcp://[fe80::1%veth-a.1]:80");
    chp_addr a;
    assert_int_equal(parse("[fe80::1%eth0]:7667", &a), CHP_OK);
    assert_true(a.ipv6);
    assert_string_equal(a.host, "fe80::1%eth0");
    assert_int_equal(a.port, 7667);
}

static void test_errors_name_the_part(void **st)
{
    (void)st;
    chp_addr a;
    assert_int_equal(parse("1.2.3.4", &a), CHP_E_ADDR_FORMAT);
    assert_int_equal(chp_addr_parse("1.2.3.4:7667", 12, &a), CHP_E_ADDR_FORMAT);
    assert_int_equal(parse("bad_host!:7667", &a), CHP_E_ADDR_HOST);
    assert_int_equal(parse("[zz::1]:7667", &a), CHP_E_ADDR_HOST);
    /* a zone only on link-local addresses, and only an interface name */
    assert_int_equal(parse("[2001:db8::1%eth0]:7667", &a), CHP_E_ADDR_HOST);
    assert_int_equal(parse("[fe80::1%]:7667", &a), CHP_E_ADDR_HOST);
    assert_int_equal(parse("[fe80::1%eth0/x]:7667", &a), CHP_E_ADDR_HOST);
    assert_int_equal(parse("[fe80::1%a_very_long_interface]:7667", &a), CHP_E_ADDR_HOST);
    assert_int_equal(parse("[fe80::1%et h0]:7667", &a), CHP_E_ADDR_HOST);
    assert_int_equal(parse("1.2.3.4:0", &a), CHP_E_ADDR_PORT);
    assert_int_equal(parse("1.2.3.4:07667", &a), CHP_E_ADDR_PORT);
    assert_int_equal(parse("1.2.3.4:65536", &a), CHP_E_ADDR_PORT);
    assert_int_equal(parse("1.2.3.4:76x7", &a), CHP_E_ADDR_PORT);
    /* a typo in the key is caught, not dialled */
    char s[512];
    snprintf(s, sizeof s, "1.2.3.4:7667/%s", g_key);
    s[strlen(s) - 3] = s[strlen(s) - 3] == 'q' ? 'p' : 'q';
    assert_int_equal(chp_addr_parse(s, strlen(s), &a), CHP_E_ADDR_KEY);
    assert_int_equal(chp_addr_parse("", 0, &a), CHP_E_ADDR_FORMAT);
}

int main(void)
{
    if (chp_crypto_init() != CHP_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_errors_name_the_part),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
