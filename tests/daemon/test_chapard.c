/* test_chapard.c - the chapard program (node/daemon/chapard.c) as a user
 * starts it: --help and --version, the exit codes and single lines of bad
 * usage and of a data dir that cannot be used, one daemon per data dir,
 * SIGTERM and `chapar stop`, the ways to unlock a passphrase identity
 * (file, environment, none: locked), a damaged identity, a listen address
 * that cannot be bound, and `wipe`. Real processes on 127.0.0.1, each up
 * for well under a second. */
#include "harness.h"

#include "node/common/version.h"
#include "node/msg/account.h"
#include "proto/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PASS "correct horse battery"

static int setup(void **state)
{
    if (chp_crypto_init() != CHP_OK)
        return -1;
    return h_setup(state);
}

/* cmocka's fail_msg with the caller's place. */
#define fail_at(file, line, ...)                                                                   \
    do {                                                                                           \
        print_error("%s:%d: ", (file), (line));                                                    \
        fail_msg(__VA_ARGS__);                                                                     \
    } while (0)

/* Runs chapard with args; asserts exit code want, nothing on stdout and
 * exactly one stderr line that starts with "chapard: " + want_line. */
#define refused(h, want, want_line, ...)                                                           \
    refused_((h), (want), (want_line), __FILE__, __LINE__, __VA_ARGS__, H_END)
static void refused_(h_ctx *h, int want, const char *want_line, const char *file, int line, ...)
{
    const char *argv[32] = {h_bin("CHAPARD")};
    int argc = 1;
    va_list ap;
    va_start(ap, line);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char *out = NULL, *err = NULL, prefix[1200];
    int rc = h_runv(h, &out, &err, argv);
    snprintf(prefix, sizeof prefix, "chapard: %s", want_line);
    if (rc != want || strcmp(out, "") != 0 || h_lines(err) != 1 ||
        strncmp(err, prefix, strlen(prefix)) != 0)
        fail_at(file, line,
                "chapard %s: exit %d, stdout '%s', stderr '%s'; want exit %d and "
                "one line '%s...'",
                argc > 1 ? argv[1] : "", rc, out, err, want, prefix);
    free(out);
    free(err);
}

static void test_help_and_version(void **state)
{
    h_ctx *h = *state;
    char *out = NULL, *err = NULL;
    assert_int_equal(h_run(h, &out, &err, h_bin("CHAPARD"), "--help", H_END), 0);
    assert_int_equal(strncmp(out, "usage: chapard [options]\n", 25), 0);
    static const char *const flags[] = {
        "--home DIR",     "--listen HOST:PORT",  "--peer ADDRESS",    "--no-discovery",
        "--relay",        "--quota SIZE",        "--allow KEY",       "--log-level LEVEL",
        "--log-max SIZE", "--passphrase-file F", "--help, --version", "DIR/chapard.conf"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strstr(out, flags[i]))
            fail_msg("--help does not mention %s:\n%s", flags[i], out);
    /* every key config.c takes from chapard.conf, as "KEY = " */
    static const char *const keys[] = {
        "listen",    "peer",    "allow",         "relay", "discovery",    "quota",
        "log-level", "metrics", "summary-every", "spool", "listen-obfs4", "transport obfs4",
        "max-file",  "save-dir"};
    const char *conf = strstr(out, "DIR/chapard.conf may hold");
    assert_non_null(conf);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char k[40];
        snprintf(k, sizeof k, "%s = ", keys[i]);
        if (!strstr(conf, k))
            fail_msg("--help does not list the setting %s:\n%s", keys[i], conf);
    }
    assert_string_equal(err, "");
    free(out);
    free(err);
    /* -h is --help; flags after it are not looked at. */
    assert_int_equal(h_run(h, &out, &err, h_bin("CHAPARD"), "-h", "--frobnicate", H_END), 0);
    assert_int_equal(strncmp(out, "usage: chapard", 14), 0);
    free(out);
    free(err);
    assert_int_equal(h_run(h, &out, &err, h_bin("CHAPARD"), "--version", H_END), 0);
    assert_string_equal(out, "chapard " CHP_VERSION "\n");
    assert_string_equal(err, "");
    free(out);
    free(err);
}

/* Bad usage: exit 2, one line, and no data dir made. */
static void test_bad_usage(void **state)
{
    h_ctx *h = *state;
    char home[300];
    h_path(h, home, sizeof home, "never");
    refused(h, 2, "unknown option '--frobnicate' (try --help)", "--home", home, "--frobnicate");
    refused(h, 2, "--quota needs a value (try --help)", "--home", home, "--quota");
    refused(h, 2, "--quota 1K: expected a size from 1M to 64T", "--home", home, "--quota", "1K");
    refused(h, 2, "--listen garbage: expected HOST:PORT", "--home", home, "--listen", "garbage");
    refused(h, 2, "peer nonsense: ", "--home", home, "--peer", "nonsense");
    assert_int_equal(access(home, F_OK), -1);

    /* chapard.conf: the file and the line. */
    h_path(h, home, sizeof home, "conf");
    assert_int_equal(mkdir(home, 0700), 0);
    h_write_file(h, "conf/chapard.conf", "# mine\nquota = lots\n", 20);
    char want[600];
    snprintf(want, sizeof want, "%s/chapard.conf:2: unknown setting or bad value: quota = lots",
             home);
    refused(h, 2, want, "--home", home, "--no-discovery");
    h_write_file(h, "conf/chapard.conf", "listen = 127.0.0.1:99999\n", 25);
    refused(h, 2, "--listen 127.0.0.1:99999: ", "--home", home);
    /* Nothing but the file is in the dir: not locked, no store made. */
    assert_int_equal(access(h_path(h, want, sizeof want, "conf/chapard.lock"), F_OK), -1);
}

/* A copy of an environment variable (NULL if unset), to restore it. */
static char *env_copy(const char *var)
{
    const char *v = getenv(var);
    return v ? strdup(v) : NULL;
}

/* A data dir that cannot be one: exit 1; none at all: exit 2. */
static void test_no_data_dir(void **state)
{
    h_ctx *h = *state;
    char path[300];
    h_write_file(h, "plain", "x", 1);
    h_path(h, path, sizeof path, "plain");
    char want[400];
    snprintf(want, sizeof want, "%s is not a directory", path);
    refused(h, 1, want, "--home", path, "--no-discovery");

    /* $CHAPAR_HOME is the default data dir... */
    h_path(h, path, sizeof path, "envhome");
    assert_int_equal(mkdir(path, 0700), 0);
    h_write_file(h, "envhome/chapard.conf", "bogus\n", 6);
    char *saved_home = env_copy("HOME"), *saved_ch = env_copy("CHAPAR_HOME"),
         *saved_xdg = env_copy("XDG_DATA_HOME");
    setenv("CHAPAR_HOME", path, 1);
    snprintf(want, sizeof want, "%s/chapard.conf:1: expected key = value", path);
    refused(h, 2, want, "--no-discovery");
    /* ...and with neither it nor $HOME there is none. */
    unsetenv("CHAPAR_HOME");
    unsetenv("HOME");
    unsetenv("XDG_DATA_HOME");
    refused(h, 2, "no data dir: set --home, CHAPAR_HOME or HOME", "--no-discovery");
    if (saved_home)
        setenv("HOME", saved_home, 1);
    if (saved_ch)
        setenv("CHAPAR_HOME", saved_ch, 1);
    if (saved_xdg)
        setenv("XDG_DATA_HOME", saved_xdg, 1);
    free(saved_home);
    free(saved_ch);
    free(saved_xdg);
}

/* SIGTERM: exit 0; a second chapard on the same dir: exit 1; `chapar
 * stop`: exit 0. */
static void test_run_and_stop(void **state)
{
    h_ctx *h = *state;
    h_node *r = h_start(h, "r", "--relay", "--quota", "8M", "--log-level", "debug", H_END);
    assert_true(h_status_has(h, r, "mode: relay\n"));
    assert_int_equal(h_status(h, r, "quota"), 8388608);
    assert_true(h_status_has(h, r, "identity: none\n"));
    char want[600];
    snprintf(want, sizeof want, "a chapard is already running for %s", r->home);
    refused(h, 1, want, "--home", r->home, "--listen", "127.0.0.1:0", "--no-discovery");
    h_stop(h, r); /* asserts exit 0 */

    /* The settings of chapard.conf are used; flags win. */
    h_write_file(h, "r/chapard.conf", "relay = yes\nquota = 16M\n", 24);
    r = h_start(h, "r", H_END);
    assert_true(h_status_has(h, r, "mode: relay\n"));
    assert_int_equal(h_status(h, r, "quota"), 16777216);
    h_stop(h, r);
    r = h_start(h, "r", "--quota", "32M", H_END);
    assert_int_equal(h_status(h, r, "quota"), 33554432);
    /* A second chapard with the default listen address finds the dir
     * locked before it binds anything. */
    snprintf(want, sizeof want, "a chapard is already running for %s", r->home);
    refused(h, 1, want, "--home", r->home, "--no-discovery");
    char *out = NULL, *err = NULL;
    assert_int_equal(h_chapar(h, r, &out, &err, "stop", H_END), 0);
    free(out);
    free(err);
    assert_int_equal(h_reap_node(h, r, 10000), 0);
}

/* A lock that cannot be taken for another reason than a running
 * chapard: exit 1, the reason. */
static void test_lock_refused(void **state)
{
    h_ctx *h = *state;
    char home[300], lock[400], want[600];
    h_path(h, home, sizeof home, "r");
    snprintf(lock, sizeof lock, "%s/chapard.lock", home);
    assert_int_equal(mkdir(home, 0700), 0);
    assert_int_equal(mkdir(lock, 0700), 0);
    snprintf(want, sizeof want, "cannot lock %s/chapard.lock: Is a directory", home);
    refused(h, 1, want, "--home", home, "--listen", "127.0.0.1:0", "--no-discovery");
}

/* A listen address this machine does not have: the node cannot start,
 * exit 1, the log line says why (and no second line repeats it). */
static void test_cannot_bind(void **state)
{
    h_ctx *h = *state;
    char home[300], *out = NULL, *err = NULL;
    h_path(h, home, sizeof home, "r");
    int rc = h_run(h, &out, &err, h_bin("CHAPARD"), "--home", home, "--relay", "--listen",
                   "192.0.2.1:7667", "--no-discovery", H_END);
    if (rc != 1 || !strstr(err, "192.0.2.1") || strstr(err, "cannot start"))
        fail_msg("chapard --listen 192.0.2.1:7667: exit %d, stderr '%s'; want exit 1 and the "
                 "reason",
                 rc, err);
    free(out);
    free(err);
}

/* A user node with no identity yet runs and relays; `chapar init` or the
 * TUI makes one. */
static void test_no_identity(void **state)
{
    h_ctx *h = *state;
    h_node *n = h_start(h, "u", H_END);
    assert_true(h_status_has(h, n, "mode: node\n"));
    assert_true(h_status_has(h, n, "identity: none\n"));
    h_stop(h, n);
}

/* A key-file identity needs nothing; `wipe` ends chapard with exit 0,
 * one line, and the data dir gone. */
static void test_keyfile_identity_and_wipe(void **state)
{
    h_ctx *h = *state;
    h_node *n = h_node_get(h, "u");
    assert_int_equal(mkdir(n->home, 0700), 0);
    assert_int_equal(chp_account_create(n->home, NULL, 0, NULL), CHP_OK);
    n = h_start(h, "u", H_END);
    assert_true(h_status_has(h, n, "mode: node\n"));
    assert_true(h_status_has(h, n, "identity: unlocked\n"));
    h_stop(h, n);
    /* Its key file gone: the identity cannot be opened, exit 1. */
    char key[600], moved[600], want[800];
    snprintf(key, sizeof key, "%s/identity.key", n->home);
    h_path(h, moved, sizeof moved, "identity.key");
    assert_int_equal(rename(key, moved), 0);
    snprintf(want, sizeof want, "cannot open the identity in %s: ", n->home);
    refused(h, 1, want, "--home", n->home, "--listen", "127.0.0.1:0", "--no-discovery");
    assert_int_equal(rename(moved, key), 0);
    n = h_start(h, "u", H_END);
    assert_true(h_status_has(h, n, "identity: unlocked\n"));
    char *out = NULL, *err = NULL;
    assert_int_equal(h_chapar(h, n, &out, &err, "wipe", "--yes", H_END), 0);
    free(out);
    free(err);
    assert_int_equal(h_reap_node(h, n, 10000), 0);
    size_t len = 0;
    char *log = (char *)h_read_file(n->log, &len);
    snprintf(want, sizeof want, "chapard: identity and data in %s wiped\n", n->home);
    if (!strstr(log, want))
        fail_msg("chapard's log after a wipe:\n%s", log);
    free(log);
    assert_int_equal(access(n->home, F_OK), -1);
}

/* A passphrase identity: from --passphrase-file, from $CHAPAR_PASSPHRASE,
 * or (neither, no terminal) locked; a wrong one or an unreadable file is
 * exit 1 and one line. A relay never asks. */
static void test_passphrase_identity(void **state)
{
    h_ctx *h = *state;
    h_node *n = h_node_get(h, "p");
    assert_int_equal(mkdir(n->home, 0700), 0);
    assert_int_equal(chp_account_create(n->home, PASS, strlen(PASS), NULL), CHP_OK);
    const char *good = h_write_file(h, "good", PASS "\n", strlen(PASS) + 1);
    char goodp[300], badp[300], missing[300], want[800];
    snprintf(goodp, sizeof goodp, "%s", good);
    snprintf(badp, sizeof badp, "%s", h_write_file(h, "bad", "wrong\n", 6));
    h_path(h, missing, sizeof missing, "missing");

    n = h_start(h, "p", "--passphrase-file", goodp, H_END);
    assert_true(h_status_has(h, n, "identity: unlocked\n"));
    h_stop(h, n);

    snprintf(want, sizeof want, "wrong passphrase for %s/identity (or the file is damaged)",
             n->home);
    refused(h, 1, want, "--home", n->home, "--listen", "127.0.0.1:0", "--no-discovery",
            "--passphrase-file", badp);
    snprintf(want, sizeof want, "cannot read a passphrase from %s", missing);
    refused(h, 1, want, "--home", n->home, "--listen", "127.0.0.1:0", "--no-discovery",
            "--passphrase-file", missing);

    setenv("CHAPAR_PASSPHRASE", PASS, 1);
    n = h_start(h, "p", H_END);
    unsetenv("CHAPAR_PASSPHRASE");
    assert_true(h_status_has(h, n, "identity: unlocked\n"));
    h_stop(h, n);
    setenv("CHAPAR_PASSPHRASE", "wrong", 1);
    snprintf(want, sizeof want, "wrong passphrase for %s/identity", n->home);
    refused(h, 1, want, "--home", n->home, "--listen", "127.0.0.1:0", "--no-discovery");
    unsetenv("CHAPAR_PASSPHRASE");

    /* Nothing to unlock with: it runs, locked. */
    n = h_start(h, "p", H_END);
    assert_true(h_status_has(h, n, "identity: locked\n"));
    h_stop(h, n);
    /* A relay has no user identity and asks for none. */
    n = h_start(h, "p", "--relay", "--passphrase-file", missing, H_END);
    assert_true(h_status_has(h, n, "identity: none\n"));
    h_stop(h, n);

    /* A damaged identity file: the reason, exit 1. */
    h_write_file(h, "p/identity", "not an identity", 15);
    snprintf(want, sizeof want, "%s/identity: ", n->home);
    refused(h, 1, want, "--home", n->home, "--listen", "127.0.0.1:0", "--no-discovery");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help_and_version, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_bad_usage, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_no_data_dir, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_run_and_stop, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_lock_refused, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_cannot_bind, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_no_identity, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_keyfile_identity_and_wipe, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_passphrase_identity, setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
