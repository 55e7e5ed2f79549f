/* test_manifest.c - proto/manifest: the byte-exact form docs/SHARE.md
 * gives, a signature that covers it (and nothing else), and the strict
 * parser's refusals; also the Prometheus exposition of node/web/prom.c,
 * whose only input is text, and the streaming SHA-256. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "node/web/prom.h"
#include "proto/crypto.h"
#include "proto/id.h"
#include "proto/identity.h"
#include "proto/manifest.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

/* A manifest with two files signed by the identity of seed fill. */
static void make(chp_buf *out, uint8_t fill, chp_identity **idp)
{
    chp_identity *id = tu_identity(fill);
    chp_manifest m = {.nfiles = 2};
    memcpy(m.signer, chp_identity_pk(id), 32);
    snprintf(m.files[0].name, sizeof m.files[0].name, "chapar_0.1.0_amd64.deb");
    snprintf(m.files[1].name, sizeof m.files[1].name, "chapar-0.1.0.tar.xz");
    chp_sha256(m.files[0].sha256, "deb", 3);
    chp_sha256(m.files[1].sha256, "src", 3);
    assert_int_equal(chp_manifest_write_body(&m, out), CHP_OK);
    chp_buf msg = {0};
    uint8_t sig[64];
    char hex[129], line[160];
    assert_int_equal(chp_manifest_sig_msg(out->p, out->len, &msg), CHP_OK);
    chp_identity_sign(id, msg.p, msg.len, sig);
    chp_buf_free(&msg);
    for (int i = 0; i < 64; i++)
        snprintf(hex + 2 * i, 3, "%02x", sig[i]);
    snprintf(line, sizeof line, "# signature %s\n", hex);
    assert_int_equal(chp_buf_put(out, line, strlen(line)), CHP_OK);
    *idp = id;
}

static void test_form(void **state)
{
    (void)state;
    chp_buf b = {0};
    chp_identity *id;
    make(&b, 7, &id);
    char idstr[CHP_ID_STR_LEN + 1], want[1024], hx[65];
    chp_id_encode(chp_identity_pk(id), idstr);
    uint8_t h[32];
    chp_sha256(h, "deb", 3);
    for (int i = 0; i < 32; i++)
        snprintf(hx + 2 * i, 3, "%02x", h[i]);
    /* the lines as sha256sum writes them: hex, two spaces, name */
    snprintf(want, sizeof want,
             "# chapar app manifest v1\n# signer %s\n%s  chapar_0.1.0_amd64.deb\n", idstr, hx);
    assert_memory_equal(b.p, want, strlen(want));
    chp_manifest m;
    assert_int_equal(chp_manifest_parse(b.p, b.len, 1, &m), CHP_OK);
    assert_int_equal(m.nfiles, 2);
    assert_string_equal(m.files[1].name, "chapar-0.1.0.tar.xz");
    assert_memory_equal(m.signer, chp_identity_pk(id), 32);
    assert_int_equal(chp_manifest_verify(b.p, b.len, &m), CHP_OK);
    assert_non_null(chp_manifest_find(&m, "chapar_0.1.0_amd64.deb"));
    assert_null(chp_manifest_find(&m, "other.deb"));
    /* without the signature line it is a body, refused where one is needed */
    size_t body = m.body_len;
    assert_int_equal(chp_manifest_parse(b.p, body, 0, &m), CHP_OK);
    assert_int_not_equal(chp_manifest_parse(b.p, body, 1, &m), CHP_OK);
    assert_int_not_equal(chp_manifest_parse(b.p, b.len, 0, &m), CHP_OK);
    chp_identity_destroy(&id);
    chp_buf_free(&b);
}

static void test_tamper(void **state)
{
    (void)state;
    chp_buf b = {0};
    chp_identity *id;
    make(&b, 9, &id);
    chp_manifest m;
    /* one hex digit of a sum changed: still well-formed, signature fails */
    uint8_t *p = (uint8_t *)strstr((char *)b.p, "\n") + 1;
    p = (uint8_t *)strstr((char *)p, "\n") + 1;
    p[0] = p[0] == 'a' ? 'b' : 'a';
    assert_int_equal(chp_manifest_parse(b.p, b.len, 1, &m), CHP_OK);
    assert_int_equal(chp_manifest_verify(b.p, b.len, &m), CHP_E_SIGNATURE);
    chp_identity_destroy(&id);
    chp_buf_free(&b);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "# chapar app manifest v2\n",
                                      "# chapar app manifest v1\n# signer chp1\n"};
    chp_manifest m;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_not_equal(chp_manifest_parse((const uint8_t *)bad[i], strlen(bad[i]), 0, &m),
                             CHP_OK);
    assert_false(chp_manifest_name_ok("../x", 4));
    assert_false(chp_manifest_name_ok(".hidden", 7));
    assert_false(chp_manifest_name_ok("-rf", 3));
    assert_false(chp_manifest_name_ok("a b", 3));
    assert_false(chp_manifest_name_ok("a/b", 3));
    assert_true(chp_manifest_name_ok("chapar_0.1.0+1~x_amd64.deb", 26));
    chp_manifest two = {.nfiles = 2};
    snprintf(two.files[0].name, sizeof two.files[0].name, "same");
    snprintf(two.files[1].name, sizeof two.files[1].name, "same");
    chp_buf b = {0};
    assert_int_equal(chp_manifest_write_body(&two, &b), CHP_E_ARG);
    chp_buf_free(&b);
}

static void test_sha256_stream(void **state)
{
    (void)state;
    uint8_t data[1000], one[32], two[32];
    tu_pattern(data, sizeof data, 3);
    chp_sha256(one, data, sizeof data);
    chp_sha256_ctx c;
    chp_sha256_init(&c);
    chp_sha256_update(&c, data, 1);
    chp_sha256_update(&c, data + 1, 500);
    chp_sha256_update(&c, data + 501, 499);
    chp_sha256_final(&c, two);
    assert_memory_equal(one, two, 32);
}

static void test_prom(void **state)
{
    (void)state;
    static const char st[] = "mode: relay\naddress: 127.0.0.1:1/chpn1x\npeers connected: 3\n"
                             "store full: yes\naccepted: 42\nnew key: 5\nnick: a\"b\n"
                             "identity: none\nversion: 0.1.0\nbroken line\n";
    chp_buf b = {0};
    assert_int_equal(chp_prom_render(st, sizeof st - 1, &b), CHP_OK);
    assert_int_equal(chp_buf_put(&b, "", 1), CHP_OK);
    const char *t = (const char *)b.p;
    assert_non_null(strstr(t, "# TYPE chapar_peers_connected gauge\nchapar_peers_connected 3\n"));
    assert_non_null(strstr(t, "# TYPE chapar_accepted_total counter\nchapar_accepted_total 42\n"));
    assert_non_null(strstr(t, "chapar_store_full 1\n"));
    assert_non_null(strstr(t, "# TYPE chapar_new_key gauge\nchapar_new_key 5\n"));
    assert_non_null(
        strstr(t, "chapar_info{mode=\"relay\",identity=\"none\",version=\"0.1.0\"} 1\n"));
    assert_null(strstr(t, "chpn1x")); /* the address is left out */
    assert_null(strstr(t, "a\"b"));   /* and the nick */
    chp_buf_free(&b);
}

int main(void)
{
    assert_int_equal(chp_crypto_init(), CHP_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form),    cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_refused), cmocka_unit_test(test_sha256_stream),
        cmocka_unit_test(test_prom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
