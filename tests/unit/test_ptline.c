/* test_ptline.c - a pluggable transport's stdout lines (proto/ptline.c),
 * as obfs4proxy 0.0.14 prints them, and the garbage a binary that is not
 * a PT prints. */
#include "proto/ptline.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define CERT "otZm7cKcMEwW22+/i+7Rk3eQjQmtutXtm6rslilwkFGaPN+17xXwycBfNUpnOI13zce4Gg"

static int parse(const char *s, chp_ptline *p)
{
    return chp_ptline_parse(s, strlen(s), p);
}

static void test_obfs4proxy_lines(void **st)
{
    (void)st;
    chp_ptline p;
    assert_int_equal(parse("VERSION 1", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_VERSION);
    assert_string_equal(p.msg, "1");
    assert_int_equal(parse("SMETHOD obfs4 127.0.0.1:41473 ARGS:cert=" CERT ",iat-mode=0", &p),
                     CHP_OK);
    assert_int_equal(p.kind, CHP_PT_SMETHOD);
    assert_string_equal(p.method, "obfs4");
    assert_string_equal(p.host, "127.0.0.1");
    assert_int_equal(p.port, 41473);
    assert_string_equal(p.cert, CERT);
    assert_int_equal(p.iat_mode, 0);
    assert_int_equal(parse("SMETHODS DONE", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_SMETHODS_DONE);
    assert_int_equal(parse("CMETHOD obfs4 socks5 127.0.0.1:42203", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_CMETHOD);
    assert_string_equal(p.proto, "socks5");
    assert_int_equal(p.port, 42203);
    assert_int_equal(p.iat_mode, -1);
    assert_int_equal(parse("CMETHODS DONE\r", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_CMETHODS_DONE);
    assert_int_equal(parse("SMETHOD obfs4 [::1]:443 ARGS:iat-mode=2,cert=" CERT, &p), CHP_OK);
    assert_true(p.ipv6);
    assert_string_equal(p.host, "::1");
    assert_int_equal(p.iat_mode, 2);
}

static void test_errors_and_others(void **st)
{
    (void)st;
    chp_ptline p;
    assert_int_equal(parse("VERSION-ERROR no-version", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_VERSION_ERROR);
    assert_string_equal(p.msg, "no-version");
    assert_int_equal(parse("ENV-ERROR no TOR_PT_STATE_LOCATION", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_ENV_ERROR);
    assert_string_equal(p.msg, "no TOR_PT_STATE_LOCATION");
    assert_int_equal(parse("SMETHOD-ERROR obfs4 listen: address in use", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_SMETHOD_ERROR);
    assert_string_equal(p.method, "obfs4");
    assert_string_equal(p.msg, "listen: address in use");
    assert_int_equal(parse("LOG SEVERITY=notice MESSAGE=x", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_LOG);
    /* escapes in ARGS: other keys are skipped whatever they hold */
    assert_int_equal(parse("SMETHOD x 127.0.0.1:1 ARGS:a\\,b=c\\=d,e=f\\\\", &p), CHP_OK);
    assert_int_equal(parse("", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_UNKNOWN);
    /* a program that is not a PT: its words are no keyword */
    assert_int_equal(parse("hello from some program", &p), CHP_OK);
    assert_int_equal(p.kind, CHP_PT_UNKNOWN);
}

static void test_malformed(void **st)
{
    (void)st;
    chp_ptline p;
    const char *bad[] = {
        "VERSION",
        "VERSION 1 2",
        "SMETHOD obfs4 127.0.0.1:0",
        "SMETHOD obfs4 127.0.0.1",
        "SMETHOD obfs4 nohost!:80",
        "SMETHOD obfs4 127.0.0.1:443 ARGS:cert=" CERT "x",
        "SMETHOD obfs4 127.0.0.1:443 ARGS:cert=" CERT ",iat-mode=3",
        "SMETHOD obfs4 127.0.0.1:443 ARGS:cert",
        "SMETHOD x 127.0.0.1:1 ARGS:a=b\\",
        "SMETHOD bad-name 127.0.0.1:1",
        "CMETHOD obfs4 http 127.0.0.1:1",
        "CMETHOD obfs4 socks5",
        "SMETHODS",
        "CMETHODS DONE NOW",
        "VERSION\t1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(parse(bad[i], &p), CHP_E_MALFORMED);
        assert_int_equal(p.port, 0);
        assert_int_equal(p.kind, CHP_PT_UNKNOWN);
    }
    char big[CHP_PTLINE_MAX + 2];
    memset(big, 'A', sizeof big);
    assert_int_equal(chp_ptline_parse(big, sizeof big, &p), CHP_E_MALFORMED);
    assert_int_equal(chp_ptline_parse("VERSION \0001", 10, &p), CHP_E_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_obfs4proxy_lines),
        cmocka_unit_test(test_errors_and_others),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
