/* test_cli_errors.c - bad input to `chapar` and to the control socket:
 * each is refused with exactly one line on stderr and a non-zero exit
 * (2 for what the CLI itself can tell is wrong, 1 for what the daemon
 * refuses), nothing is queued, and what was there before stays, also
 * across a restart. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

/* Runs chapar with argv (NULL-terminated, after --home) at n and asserts
 * exit code want, an empty stdout and one "chapar: ..." line on stderr
 * containing hint (may be NULL). */
static void refused_(h_ctx *h, const h_node *n, int want, const char *hint, const char *in,
                     const char *const *args)
{
    const char *argv[16] = {h_bin("CHAPAR"), "--home", n->home};
    int k = 3;
    for (; args[k - 3] && k < 15; k++)
        argv[k] = args[k - 3];
    argv[k] = NULL;
    char *out = NULL, *err = NULL;
    int rc = h_runv_in(h, in, &out, &err, argv);
    int lines = 0;
    for (char *p = err; *p; p++)
        lines += *p == '\n';
    int ok = rc == want && !*out && lines == 1 && err[strlen(err) - 1] == '\n' &&
             !strncmp(err, "chapar: ", 8) && (!hint || strstr(err, hint));
    if (!ok)
        print_error("chapar %s %s: exit %d (want %d), stdout '%.200s', stderr '%s' (want one "
                    "line with '%s')\n",
                    args[0], args[1] ? args[1] : "", rc, want, out, err, hint ? hint : "");
    free(out);
    free(err);
    if (!ok)
        fail();
}

#define refused(h, n, want, hint, ...)                                                             \
    do {                                                                                           \
        const char *args_[] = {__VA_ARGS__, NULL};                                                 \
        refused_((h), (n), (want), (hint), NULL, args_);                                           \
    } while (0)

/* Every line of a is a line of b (the order of messages sent within the
 * same second may differ after a restart). */
static void assert_all_lines_in(const char *a, const char *b)
{
    for (const char *l = a; *l;) {
        size_t n = strcspn(l, "\n") + 1;
        int found = 0;
        for (const char *m = b; *m && !found;) {
            size_t k = strcspn(m, "\n") + 1;
            found = k == n && !memcmp(l, m, n);
            m += k - (m[k - 1] == '\0');
        }
        if (!found)
            fail_msg("line '%.*s' is missing from:\n%s", (int)n - 1, l, b);
        l += n - (l[n - 1] == '\0');
    }
}

/* One raw control request [cmd, a1, a2]; returns 1 if the daemon answered
 * "error". */
static int control_error(const h_node *n, const char *cmd, const void *a1, size_t l1,
                         const void *a2, size_t l2)
{
    char ep[600], status[8] = "";
    snprintf(ep, sizeof ep, "ipc://%s/control", n->home);
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, timeout = 5000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal(zmq_connect(s, ep), 0);
    zmq_send(s, cmd, strlen(cmd), ZMQ_SNDMORE);
    zmq_send(s, a1, l1, ZMQ_SNDMORE);
    zmq_send(s, a2, l2, 0);
    int got = zmq_recv(s, status, sizeof status - 1, 0);
    zmq_msg_t body;
    zmq_msg_init(&body);
    if (got > 0)
        zmq_msg_recv(&body, s, 0);
    zmq_msg_close(&body);
    zmq_close(s);
    zmq_ctx_term(ctx);
    assert_true(got > 0);
    return got == 5 && !memcmp(status, "error", 5);
}

static void test_bad_input_changes_nothing(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1];
    h_node *a = h_node_get(h, "a"), *b = h_node_get(h, "b");
    h_init(h, a, "a-nick", aid, "--no-passphrase", H_END);
    h_init(h, b, "b-nick", bid, "--no-passphrase", H_END);
    h_start(h, "a", H_END);
    free(h_ok(h, a, "contact", "add", bid, "bob", H_END)); /* pending: b never runs */
    free(h_ok(h, a, "send", "#lan", "one good message", H_END));
    free(h_ok(h, a, "send", "bob", "one for bob, queued", H_END));
    char *outbox = h_ok(h, a, "outbox", H_END);
    char *contacts = h_ok(h, a, "contact", "list", H_END);
    int queued = h_lines(outbox);
    assert_true(queued >= 1); /* bob's, and the room post if rooms count */

    /* What the CLI refuses itself (exit 2, the daemon never asked). */
    char bad_id[H_ID_LEN + 1];
    memcpy(bad_id, bid, sizeof bad_id);
    bad_id[20] = bad_id[20] == 'q' ? 'p' : 'q'; /* one typo */
    refused(h, a, 2, "checksum", "send", bad_id, "hi");
    refused(h, a, 2, "bad user ID", "contact", "add", bad_id, "bobby");
    refused(h, a, 2, "bad user ID", "contact", "add", "chp1short", "bobby");
    refused(h, a, 2, "bad user ID", "contact", "show", "chp1nothing");
    refused(h, a, 2, "empty", "send", "bob", "");
    refused(h, a, 2, "UTF-8", "send", "bob", "caf\xe9");
    refused(h, a, 2, "UTF-8", "send", "#lan", "\xc0\xaf overlong slash");
    refused(h, a, 2, "room", "send", "#two words", "hi");
    refused(h, a, 2, "room", "join", "#");
    refused(h, a, 2, "usage", "send", "bob");
    refused(h, a, 2, "usage", "contact", "frobnicate");
    refused(h, a, 2, "unknown option", "inbox", "--later");
    refused(h, a, 2, "--wait", "inbox", "--wait", "soon");
    refused(h, a, 2, "unknown command", "sendd", "bob", "hi");
    refused(h, a, 2, "--yes", "wipe");
    static char big[65537 + 1];
    memset(big, 'x', sizeof big - 1);
    refused(h, a, 2, "too long", "send", "bob", big);
    char *in = h_write_file(h, "big.txt", big, sizeof big - 1);
    const char *stdin_args[] = {"send", "bob", "-", NULL};
    refused_(h, a, 2, "too long", in, stdin_args);
    char *empty = h_write_file(h, "empty.txt", "\n", 1);
    refused_(h, a, 2, "empty", empty, stdin_args);

    /* What only the daemon knows (exit 1, its one line). */
    refused(h, a, 1, NULL, "send", "nobody", "hi");
    refused(h, a, 1, NULL, "send", "#nosuchroom", "hi");
    refused(h, a, 1, NULL, "contact", "show", "nobody");
    refused(h, a, 1, NULL, "contact", "accept", "nobody");
    refused(h, a, 1, "already exists", "init", "--no-passphrase");

    /* The daemon checks on its own too (other clients than chapar). */
    assert_true(control_error(a, "send", "#lan", 4, "", 0));
    assert_true(control_error(a, "send", "#lan", 4, "\xff\xfe", 2));
    assert_true(control_error(a, "send", "#lan", 4, big, 65537));
    assert_true(control_error(a, "send", "nobody", 6, "hi", 2));
    assert_true(control_error(a, "contact-add", "chp1", 4, "x", 1));

    /* Nothing queued, nothing lost; the 64 KiB limit itself is fine. */
    char *now = h_ok(h, a, "outbox", H_END);
    assert_string_equal(now, outbox);
    free(now);
    now = h_ok(h, a, "contact", "list", H_END);
    assert_string_equal(now, contacts);
    free(now);
    big[65536] = '\0';
    char *msgid = h_ok(h, a, "send", "#lan", big, H_END);
    msgid[strcspn(msgid, "\n")] = '\0';
    /* The daemon is busy with proofs of work for a while: poll. */
    now = h_await(h, a, msgid, "outbox", H_END);
    free(msgid);
    assert_int_equal(h_lines(now), queued + 1);
    free(now);

    /* Daemon not running: the same single line every time, and how to
     * start it. */
    h_stop(h, a);
    char hint[1200];
    snprintf(hint, sizeof hint, "chapard is not running for %s (start it with: chapard --home %s)",
             a->home, a->home);
    refused(h, a, 1, hint, "send", "bob", "hi");
    refused(h, a, 1, hint, "inbox");
    refused(h, a, 1, hint, "id");
    refused(h, a, 1, hint, "contact", "list");
    refused(h, a, 1, "already exists", "init", "--no-passphrase"); /* the local path */
    /* No identity, no terminal, no flag: init cannot ask, creates nothing. */
    h_node *c = h_node_get(h, "c");
    refused(h, c, 2, "--passphrase-file F or --no-passphrase", "init");
    char idf[600];
    snprintf(idf, sizeof idf, "%s/identity", c->home);
    assert_int_equal(access(idf, F_OK), -1);

    /* Everything is still there after the restart. */
    h_start(h, "a", H_END);
    now = h_ok(h, a, "outbox", H_END);
    assert_int_equal(h_lines(now), queued + 1);
    assert_all_lines_in(outbox, now);
    free(now);
    now = h_ok(h, a, "contact", "list", H_END);
    assert_string_equal(now, contacts);
    free(now);
    free(outbox);
    free(contacts);
    h_stop(h, a);
}

/* A relay has no user: messaging commands say so. */
static void test_relay_has_no_user(void **state)
{
    h_ctx *h = *state;
    h_node *r = h_start(h, "relay", "--relay", H_END);
    refused(h, r, 1, "relay", "send", "#lan", "hi");
    refused(h, r, 1, "relay", "id");
    refused(h, r, 1, "relay", "inbox");
    h_stop(h, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_input_changes_nothing, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_relay_has_no_user, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
