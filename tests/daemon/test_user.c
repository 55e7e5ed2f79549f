/* test_user.c - a user node in this process: started with an identity
 * made by the account API (unlocked), with none, or with a passphrase one
 * it must unlock; the messaging commands reach the messaging layer over
 * the control socket, what it seals is published, and `wipe` ends the
 * loop. */
#include "dtest.h"
#include "harness.h"

#include "node/msg/account.h"
#include "proto/crypto.h"
#include "proto/id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int setup(void **state)
{
    if (chp_crypto_init() != CHP_OK)
        return -1;
    return h_setup(state);
}

static void assert_status(dt_node *t, const char *key, const char *want)
{
    char *v = dt_status(t, key);
    if (!v || strcmp(v, want) != 0)
        fail_msg("status '%s' is '%s', want '%s'", key, v ? v : "(missing)", want);
    free(v);
}

/* An identity from chp_account_create, handed to chp_node_new unlocked. */
static void test_unlocked(void **state)
{
    h_ctx *h = *state;
    char home[300];
    h_path(h, home, sizeof home, "u");
    chp_identity *id = dt_identity(home);
    char uid[CHP_ID_STR_LEN + 1];
    chp_id_encode(chp_identity_pk(id), uid);

    dt_node t;
    dt_start(&t, home, 0, id); /* the node owns id from here */
    assert_status(&t, "mode", "node");
    assert_status(&t, "identity", "unlocked");
    assert_status(&t, "nick", "anon"); /* the messaging layer's until one is set */
    assert_int_equal(dt_status_num(&t, "quota"), CHP_NODE_QUOTA_USER);

    char *a = dt_ok(&t, "nick", "alice", DT_END);
    assert_string_equal(a, "");
    free(a);
    assert_status(&t, "nick", "alice");
    a = dt_ok(&t, "id", DT_END);
    char want[400];
    snprintf(want, sizeof want, "%s\talice\t", uid);
    if (strncmp(a, want, strlen(want)) != 0)
        fail_msg("id: '%s', want '%s...'", a, want);
    free(a);
    /* The messaging layer's own refusals come through as they are. */
    a = dt_error(&t, "nick", "", DT_END);
    assert_true(strlen(a) > 0);
    free(a);
    a = dt_error(&t, "id", "extra", DT_END);
    assert_string_equal(a, "unknown command or wrong arguments");
    free(a);
    a = dt_error(&t, "init", "bob", "none", DT_END);
    snprintf(want, sizeof want, "an identity already exists in %s", home);
    assert_string_equal(a, want);
    free(a);
    /* The node joined #lan by itself. */
    a = dt_ok(&t, "rooms", DT_END);
    assert_non_null(strstr(a, "#lan\tpublic\t"));
    free(a);
    assert_int_equal(dt_stop(&t), CHP_OK);

    /* Restarted with the identity loaded again: the nick is kept. */
    chp_identity *again = NULL;
    assert_int_equal(chp_account_load(home, NULL, 0, &again), CHP_OK);
    dt_start(&t, home, 0, again);
    assert_status(&t, "nick", "alice");
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* No identity: the node runs (and relays) and says how to make one; a
 * passphrase identity starts locked until `unlock`. */
static void test_none_then_locked(void **state)
{
    h_ctx *h = *state;
    char home[300], want[400];
    h_path(h, home, sizeof home, "n");
    dt_node t;
    dt_start(&t, home, 0, NULL);
    assert_status(&t, "mode", "node");
    assert_status(&t, "identity", "none");
    char *a = dt_error(&t, "id", DT_END);
    snprintf(want, sizeof want, "no identity in %s: run chapar init", home);
    assert_string_equal(a, want);
    free(a);
    a = dt_ok(&t, "init", "ali", "none", DT_END);
    assert_int_equal(strlen(a), CHP_ID_STR_LEN);
    assert_int_equal(strncmp(a, "chp1", 4), 0);
    free(a);
    assert_status(&t, "identity", "unlocked");
    assert_status(&t, "nick", "ali");
    assert_int_equal(dt_stop(&t), CHP_OK);

    /* A passphrase identity, not unlocked at start. */
    h_path(h, home, sizeof home, "p");
    assert_int_equal(mkdir(home, 0700), 0);
    assert_int_equal(chp_account_create(home, "correct horse", 13, NULL), CHP_OK);
    dt_start(&t, home, 0, NULL);
    assert_status(&t, "identity", "locked");
    assert_status(&t, "nick", "-");
    a = dt_error(&t, "send", "#lan", "hi", DT_END);
    assert_string_equal(a, "identity locked: run chapar unlock");
    free(a);
    a = dt_error(&t, "unlock", "wrong", DT_END);
    assert_string_equal(a, "wrong passphrase (or a damaged identity file)");
    free(a);
    assert_status(&t, "identity", "locked");
    a = dt_ok(&t, "unlock", "correct horse", DT_END);
    assert_int_equal(strncmp(a, "chp1", 4), 0);
    free(a);
    assert_status(&t, "identity", "unlocked");
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* The store is sealed for its identity: another one is refused at start,
 * with the node's resources released (the same dir starts again). */
static void test_other_identity_refused(void **state)
{
    h_ctx *h = *state;
    char home[300], other[300];
    h_path(h, home, sizeof home, "u");
    h_path(h, other, sizeof other, "other");
    dt_node t;
    dt_start(&t, home, 0, dt_identity(home));
    assert_int_equal(dt_stop(&t), CHP_OK);

    chp_node_opts o;
    dt_opts(&o, home, 0);
    o.identity = dt_identity(other); /* the node owns it, and frees it on failure */
    assert_int_equal(dt_open(&t, &o), CHP_E_PASSPHRASE);
    assert_null(t.node);

    chp_identity *mine = NULL;
    assert_int_equal(chp_account_load(home, NULL, 0, &mine), CHP_OK);
    dt_start(&t, home, 0, mine);
    assert_status(&t, "identity", "unlocked");
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* A post to #lan: queued (event), sealed by the worker thread, then
 * published by the loop as the user's own envelope (stored, `envelope`
 * event), and listed in the room's history. */
static void test_send_is_published(void **state)
{
    h_ctx *h = *state;
    char home[300];
    h_path(h, home, sizeof home, "u");
    dt_node t;
    dt_start(&t, home, 0, dt_identity(home));
    free(dt_ok(&t, "nick", "ali", DT_END));
    long long before = dt_status_num(&t, "envelopes stored");
    char *msgid = dt_ok(&t, "send", "#lan", "hello from a test", DT_END);
    assert_int_equal(strlen(msgid), 32);
    char want[100];
    snprintf(want, sizeof want, "#lan\t%s", msgid);
    char *ev = dt_event(&t, "queued", want, DT_WAIT_MS);
    if (!ev)
        fail_msg("no `queued` event '%s'", want);
    free(ev);
    ev = dt_event(&t, "envelope", NULL, DT_WAIT_MS);
    if (!ev)
        fail_msg("the sealed post was not published within %d ms", DT_WAIT_MS);
    assert_int_equal(strlen(ev), 64);
    free(ev);
    assert_true(dt_await_status(&t, "envelopes stored", before + 1) >= before + 1);
    char *hist = dt_ok(&t, "history", "#lan", DT_END);
    assert_non_null(strstr(hist, msgid));
    assert_non_null(strstr(hist, "\thello from a test"));
    free(hist);
    free(msgid);
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* `wipe yes`: ok, then the loop ends by itself and says why; the caller
 * (chapard) deletes the dir once the node is destroyed. */
static void test_wipe_ends_the_loop(void **state)
{
    h_ctx *h = *state;
    char home[300];
    h_path(h, home, sizeof home, "u");
    dt_node t;
    dt_start(&t, home, 0, dt_identity(home));
    char *a = dt_error(&t, "wipe", "no", DT_END);
    assert_true(strlen(a) > 0);
    free(a);
    assert_false(dt_ended(&t, 100));
    a = dt_ok(&t, "wipe", "yes", DT_END);
    assert_string_equal(a, "");
    free(a);
    if (!dt_ended(&t, DT_WAIT_MS))
        fail_msg("the loop still runs %d ms after `wipe yes`", DT_WAIT_MS);
    assert_int_equal(dt_stop(&t), CHP_OK);
    assert_int_equal(t.wiped, 1);
    assert_int_equal(chp_account_wipe(home), CHP_OK);
    struct stat sb;
    assert_int_equal(stat(home, &sb), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unlocked, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_none_then_locked, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_other_identity_refused, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_send_is_published, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_wipe_ends_the_loop, setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
