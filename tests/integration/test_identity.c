/* test_identity.c - the identity's life through chapar and chapard: a
 * passphrase-sealed identity starts locked without its passphrase and
 * `chapar unlock` opens it (a wrong one is one line); --passphrase-file
 * and CHAPAR_PASSPHRASE unlock at start; `chapar wipe` destroys it with
 * and without a running daemon, and only what is Chapar's; one chapard
 * per data dir. */
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

/* wipe deletes Chapar's files and no others: a directory that holds no
 * identity and no store is refused untouched; a data dir keeps the files
 * someone else put there. */
static void test_wipe_touches_only_chapar(void **state)
{
    h_ctx *h = *state;
    struct stat st;
    char p[600];
    h_node *o = h_node_get(h, "other");
    assert_int_equal(mkdir(o->home, 0700), 0);
    snprintf(p, sizeof p, "%s/precious.txt", o->home);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("not chapar's\n", f);
    assert_int_equal(fclose(f), 0);
    expect_fail(h, o, 1, "not a Chapar data dir", "wipe", "--yes", NULL);
    assert_int_equal(stat(p, &st), 0);
    /* Nor does chapard or init move into it (or chmod it). */
    assert_int_equal(chmod(o->home, 0755), 0);
    char *err = NULL;
    int rc = h_run(h, NULL, &err, h_bin("CHAPARD"), "--home", o->home, "--no-discovery", H_END);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "holds other files (precious.txt)"));
    assert_int_equal(h_lines(err), 1);
    free(err);
    expect_fail(h, o, 1, "holds other files", "init", "--no-passphrase", NULL);
    expect_fail(h, o, 1, "holds other files", "status", NULL, NULL);
    assert_int_equal(stat(o->home, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    snprintf(p, sizeof p, "%s/data.mdb", o->home);
    assert_int_equal(stat(p, &st), -1);
    snprintf(p, sizeof p, "%s/identity", o->home);
    assert_int_equal(stat(p, &st), -1);

    /* A path too long for the control socket: said at once, by both. */
    char lng[400];
    snprintf(lng, sizeof lng, "%s/%0120d", h->dir, 7);
    const char *argv_init[] = {h_bin("CHAPAR"), "--home", lng, "init", "--no-passphrase", NULL};
    rc = h_runv(h, NULL, &err, argv_init);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "too long"));
    free(err);
    rc = h_run(h, NULL, &err, h_bin("CHAPARD"), "--home", lng, "--no-discovery", H_END);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "too long"));
    free(err);

    h_node *c = h_node_get(h, "c");
    h_init(h, c, "c-nick", NULL, "--no-passphrase", H_END);
    snprintf(p, sizeof p, "%s/notes.txt", c->home);
    assert_non_null(f = fopen(p, "w"));
    assert_int_equal(fclose(f), 0);
    h_start(h, "c", H_END);
    h_stop(h, c);
    char *out = h_ok(h, c, "wipe", "--yes", H_END);
    free(out);
    assert_int_equal(stat(p, &st), 0); /* theirs stays, with the dir */
    snprintf(p, sizeof p, "%s/identity", c->home);
    assert_int_equal(stat(p, &st), -1);
    snprintf(p, sizeof p, "%s/data.mdb", c->home);
    assert_int_equal(stat(p, &st), -1);

    /* --home naming a file: said so, for chapar and chapard alike. */
    h_node *fl = h_node_get(h, "afile");
    h_write_file(h, "afile", "x", 1);
    expect_fail(h, fl, 1, "not a directory", "status", NULL, NULL);
    expect_fail(h, fl, 1, "not a directory", "wipe", "--yes", NULL);
    rc = h_run(h, NULL, &err, h_bin("CHAPARD"), "--home", fl->home, "--no-discovery", H_END);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "not a directory"));
    free(err);
}

/* One chapard per data dir: a second one says the first runs and leaves
 * it alone (it must not take over the control socket). */
static void test_one_daemon_per_home(void **state)
{
    h_ctx *h = *state;
    h_node *d = h_node_get(h, "d");
    h_init(h, d, "d-nick", NULL, "--no-passphrase", H_END);
    h_start(h, "d", H_END);
    char *out = NULL, *err = NULL;
    int rc = h_run(h, &out, &err, h_bin("CHAPARD"), "--home", d->home, "--no-discovery", "--listen",
                   "127.0.0.1:0", H_END);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "already running"));
    assert_int_equal(h_lines(err), 1);
    free(out);
    free(err);
    /* the first still answers, on its own socket */
    out = h_ok(h, d, "address", H_END);
    assert_non_null(strstr(out, d->addr));
    free(out);
    h_stop(h, d);
    /* and once it stopped, a new one starts */
    h_start(h, "d", H_END);
    h_stop(h, d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passphrase_unlock, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_wipe, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_wipe_touches_only_chapar, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_one_daemon_per_home, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
