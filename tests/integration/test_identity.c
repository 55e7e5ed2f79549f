/* test_identity.c - the identity's life through chapar and chapard: a
 * passphrase-sealed identity starts locked without its passphrase and
 * `chapar unlock` opens it (a wrong one is one line); --passphrase-file
 * and CHAPAR_PASSPHRASE unlock at start; `chapar wipe` destroys it with
 * and without a running daemon. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void expect_fail(h_ctx *h, const h_node *n, int want, const char *hint, const char *a1,
                        const char *a2, const char *a3)
{
    char *out = NULL, *err = NULL;
    int rc = h_chapar(h, n, &out, &err, a1, a2, a3, H_END);
    int ok = rc == want && strstr(err, hint) && strchr(err, '\n') == err + strlen(err) - 1;
    if (!ok)
        print_error("chapar %s: exit %d (want %d), stderr '%s' (want '%s')\n", a1, rc, want, err,
                    hint);
    free(out);
    free(err);
    if (!ok)
        fail();
}

static void assert_id(h_ctx *h, const h_node *n, const char *id)
{
    char *out = h_ok(h, n, "id", H_END);
    assert_memory_equal(out, id, H_ID_LEN);
    assert_string_equal(out + H_ID_LEN, "\n");
    free(out);
}

static void test_passphrase_unlock(void **state)
{
    h_ctx *h = *state;
    char id[H_ID_LEN + 1];
    char *good = h_write_file(h, "good.pass", "a long passphrase\n", 18);
    char *bad = h_write_file(h, "bad.pass", "a wrong passphrase\n", 19);
    h_node *n = h_node_get(h, "n");
    h_init(h, n, "n-nick", id, "--passphrase-file", good, H_END);

    /* No passphrase at start (no terminal either): locked, and says so. */
    h_start(h, "n", H_END);
    expect_fail(h, n, 1, "locked", "id", NULL, NULL);
    expect_fail(h, n, 1, "locked", "send", "#lan", "hi");
    expect_fail(h, n, 1, "wrong passphrase", "unlock", "--passphrase-file", bad);
    expect_fail(h, n, 2, "--passphrase-file", "unlock", NULL, NULL); /* no terminal */
    char *out = h_ok(h, n, "unlock", "--passphrase-file", good, H_END);
    assert_memory_equal(out, id, H_ID_LEN);
    free(out);
    assert_id(h, n, id);
    free(h_ok(h, n, "send", "#lan", "written after unlock", H_END));
    h_stop(h, n);

    /* --passphrase-file, then CHAPAR_PASSPHRASE, at start. */
    h_start(h, "n", "--passphrase-file", good, H_END);
    assert_id(h, n, id);
    h_stop(h, n);
    setenv("CHAPAR_PASSPHRASE", "a long passphrase", 1);
    h_start(h, "n", H_END);
    unsetenv("CHAPAR_PASSPHRASE");
    assert_id(h, n, id);
    out = h_ok(h, n, "outbox", H_END);
    assert_int_equal(h_lines(out), 1); /* the message outlived two restarts */
    free(out);
    h_stop(h, n);
}

static void test_wipe(void **state)
{
    h_ctx *h = *state;
    struct stat st;
    h_node *a = h_node_get(h, "a"), *b = h_node_get(h, "b");
    h_init(h, a, "a-nick", NULL, "--no-passphrase", H_END);
    h_init(h, b, "b-nick", NULL, "--no-passphrase", H_END);

    /* With the daemon running: it goes away with the data. */
    h_start(h, "a", H_END);
    free(h_ok(h, a, "send", "#lan", "soon gone", H_END));
    char *out = h_ok(h, a, "wipe", "--yes", H_END);
    assert_non_null(strstr(out, "wiped"));
    free(out);
    assert_int_equal(h_reap_node(h, a, 5000), 0);
    assert_int_equal(stat(a->home, &st), -1);

    /* Without a daemon: chapar does it itself. */
    out = h_ok(h, b, "wipe", "--yes", H_END);
    assert_non_null(strstr(out, "wiped"));
    free(out);
    assert_int_equal(stat(b->home, &st), -1);
    /* A new identity can be made afterwards. */
    h_init(h, b, "b-again", NULL, "--no-passphrase", H_END);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passphrase_unlock, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_wipe, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
