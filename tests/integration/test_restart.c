/* test_restart.c - kill -9 loses nothing acknowledged: a node killed right
 * after 50 publishes came back "ok" restarts on the same data dir with all
 * 50, and catches up with the 30 its neighbour received meanwhile. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void test_kill9_and_resync(void **state)
{
    h_ctx *h = *state;
    pid_t mk1 = h_mkenv_async(h, "first", 50, H_END);
    pid_t mk2 = h_mkenv_async(h, "later", 30, H_END);
    h_node *m = h_start(h, "m", H_END);
    h_node *n = h_start(h, "n", "--peer", m->addr, H_END);
    h_expect(h, n, "peers connected", H_EQ, 1);
    h_wait_exit0(h, mk1, "chapar-mkenv");

    /* Each publish returns after its commit; kill at once after the last. */
    h_publish_range(h, n, "first", 0, 50);
    h_kill9(h, n);

    /* While n is down, m receives 30 more. */
    h_wait_exit0(h, mk2, "chapar-mkenv");
    h_publish_range(h, m, "later", 0, 30);

    /* The stale control socket left by the kill: the CLI says the daemon
     * is not running, in one line, with exit 1. */
    char *out = NULL, *err = NULL;
    assert_int_equal(h_chapar(h, n, &out, &err, "status", H_END), 1);
    assert_non_null(strstr(err, "chapard is not running for"));
    assert_int_equal(h_lines(err), 1);
    free(out);
    free(err);

    h_start(h, "n", "--peer", m->addr, H_END);
    assert_true(h_status(h, n, "envelopes stored") >= 50);
    h_expect(h, n, "envelopes stored", H_EQ, 80);
    /* It fetched exactly the 30 it lacked: none of its own 50 was lost. */
    h_expect(h, n, "syncs completed", H_GE, 1);
    assert_int_equal(h_status(h, n, "sync fetched"), 30);
    h_expect(h, m, "envelopes stored", H_EQ, 80);
    h_stop(h, n);
    h_stop(h, m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_and_resync, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
