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

/* A cert obfs4proxy printed (SMETHOD ARGS / obfs4_bridgeline.txt). */
#define CERT  "otZm7cKcMEwW22+/i+7Rk3eQjQmtutXtm6rslilwkFGaPN+17xXwycBfNUpnOI13zce4Gg"
#define ONION "vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd.onion"

static int parse_full(const char *pre, const char *hostport, const char *post, chp_addr *a)
{
    char s[900];
    snprintf(s, sizeof s, "%s%s/%s%s", pre, hostport, g_key, post);
    return chp_addr_parse(s, strlen(s), a);
}

/* The address as given formats back to exactly itself. */
static void same_back(const char *pre, const char *hostport, const char *post, chp_addr *a)
{
    char s[900], out[CHP_ADDR_STR_MAX + 1];
    snprintf(s, sizeof s, "%s%s/%s%s", pre, hostport, g_key, post);
    assert_int_equal(chp_addr_parse(s, strlen(s), a), CHP_OK);
    assert_memory_equal(a->key, g_raw, 32);
    assert_int_equal(chp_addr_format(a, out, sizeof out), CHP_OK);
    assert_string_equal(out, s);
}

static void test_obfs4(void **st)
{
    (void)st;
    chp_addr a;
    char ep[600];
    same_back("obfs4:", "203.0.113.5:443", "?cert=" CERT "&iat-mode=0", &a);
    assert_int_equal(a.transport, CHP_TRANSPORT_OBFS4);
    assert_string_equal(a.cert, CERT);
    assert_int_equal(a.iat_mode, 0);
    assert_int_equal(chp_addr_endpoint(&a, ep, sizeof ep), CHP_OK);
    assert_string_equal(ep, "tcp://203.0.113.5:443"); /* what the PT's SOCKS is asked for */
    same_back("obfs4:", "[2001:db8::7]:1", "?cert=" CERT "&iat-mode=2", &a);
    assert_int_equal(a.iat_mode, 2);
    assert_true(a.ipv6);
    same_back("", "1.2.3.4:7667", "", &a);
    assert_int_equal(a.transport, CHP_TRANSPORT_PLAIN);
    /* the longest address fits the documented maximum */
    char host[CHP_ADDR_HOST_MAX + 1], hp[CHP_ADDR_HOST_MAX + 10];
    for (int i = 0; i < CHP_ADDR_HOST_MAX; i++)
        host[i] = i % 64 == 63 ? '.' : 'a';
    host[CHP_ADDR_HOST_MAX] = '\0';
    snprintf(hp, sizeof hp, "%s:65535", host);
    same_back("obfs4:", hp, "?cert=" CERT "&iat-mode=1", &a);
}

/* Each part of an obfs4 address, mistyped, is named. */
static void test_obfs4_errors(void **st)
{
    (void)st;
    chp_addr a;
    const char *args = "?cert=" CERT "&iat-mode=0";
    assert_int_equal(parse_full("obfs4:", "bad_host:443", args, &a), CHP_E_ADDR_HOST);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:0", args, &a), CHP_E_ADDR_PORT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:99999", args, &a), CHP_E_ADDR_PORT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4", args, &a), CHP_E_ADDR_FORMAT);
    char s[900];
    snprintf(s, sizeof s, "obfs4:1.2.3.4:443/%s%s", g_key, args);
    char *k = strstr(s, "chpn1") + 10;
    *k = *k == 'q' ? 'p' : 'q';
    assert_int_equal(chp_addr_parse(s, strlen(s), &a), CHP_E_ADDR_KEY);
    /* cert: missing, one short, one long, a character outside base64,
     * a last character with bits beyond the 52 bytes */
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", "", &a), CHP_E_ADDR_CERT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", "&iat-mode=0", &a), CHP_E_ADDR_CERT);
    char bad[200];
    snprintf(bad, sizeof bad, "?cert=%.69s&iat-mode=0", CERT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", bad, &a), CHP_E_ADDR_CERT);
    snprintf(bad, sizeof bad, "?cert=%sA&iat-mode=0", CERT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", bad, &a), CHP_E_ADDR_CERT);
    snprintf(bad, sizeof bad, "?cert=%s&iat-mode=0", CERT);
    bad[6 + 10] = '-';
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", bad, &a), CHP_E_ADDR_CERT);
    snprintf(bad, sizeof bad, "?cert=%.69sh&iat-mode=0", CERT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", bad, &a), CHP_E_ADDR_CERT);
    /* iat-mode: missing, out of range, two digits, trailing bytes */
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", "?cert=" CERT, &a), CHP_E_ADDR_IAT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", "?cert=" CERT "&iat-mode=3", &a),
                     CHP_E_ADDR_IAT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", "?cert=" CERT "&iat-mode=00", &a),
                     CHP_E_ADDR_IAT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", "?cert=" CERT "&iat-mode=", &a),
                     CHP_E_ADDR_IAT);
    assert_int_equal(parse_full("obfs4:", "1.2.3.4:443", "?cert=" CERT "&iat=0", &a),
                     CHP_E_ADDR_IAT);
    /* a plain address takes no arguments */
    assert_int_equal(parse_full("", "1.2.3.4:443", args, &a), CHP_E_ADDR_KEY);
    /* and the error leaves nothing behind */
    assert_int_equal(a.host[0], '\0');
}

static void test_socks5(void **st)
{
    (void)st;
    chp_addr a;
    char px[300];
    same_back("socks5://127.0.0.1:9050/", ONION ":7667", "", &a);
    assert_string_equal(a.host, ONION);
    assert_int_equal(chp_addr_proxy(&a, px, sizeof px), CHP_OK);
    assert_string_equal(px, "127.0.0.1:9050");
    same_back("socks5://[::1]:1080/", "10.0.0.2:7667", "", &a);
    assert_int_equal(chp_addr_proxy(&a, px, sizeof px), CHP_OK);
    assert_string_equal(px, "[::1]:1080");
    same_back("socks5://proxy.lan:1080/", "relay.example.org:7667", "", &a);
    same_back("", "1.2.3.4:7667", "", &a);
    assert_int_equal(chp_addr_proxy(&a, px, sizeof px), CHP_E_ARG);
    /* an onion service only through a proxy, and only a v3 name */
    assert_int_equal(parse_full("", ONION ":7667", "", &a), CHP_E_ADDR_PROXY);
    assert_int_equal(parse_full("socks5://127.0.0.1:9050/", "abc.onion:7667", "", &a),
                     CHP_E_ADDR_HOST);
    /* the proxy part itself */
    assert_int_equal(parse_full("socks5://127.0.0.1/", "1.2.3.4:7667", "", &a), CHP_E_ADDR_PROXY);
    assert_int_equal(parse_full("socks5://127.0.0.1:0/", "1.2.3.4:7667", "", &a), CHP_E_ADDR_PROXY);
    assert_int_equal(parse_full("socks5://bad_host:9050/", "1.2.3.4:7667", "", &a),
                     CHP_E_ADDR_PROXY);
    assert_int_equal(chp_addr_parse("socks5://1.2.3.4:9050", 21, &a), CHP_E_ADDR_PROXY);
    /* obfs4 has its own proxy, the PT client */
    assert_int_equal(parse_full("socks5://127.0.0.1:9050/obfs4:", "1.2.3.4:443",
                                "?cert=" CERT "&iat-mode=0", &a),
                     CHP_E_ADDR_PROXY);
}

int main(void)
{
    if (chp_crypto_init() != CHP_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),  cmocka_unit_test(test_errors_name_the_part),
        cmocka_unit_test(test_obfs4),  cmocka_unit_test(test_obfs4_errors),
        cmocka_unit_test(test_socks5),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
