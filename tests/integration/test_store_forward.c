/* test_store_forward.c - store and forward: B is down while A publishes
 * through R; A goes away; B starts later, peered with R only, and gets
 * everything from R by sync. */
#include "harness.h"

static void test_late_node_gets_everything(void **state)
{
    h_ctx *h = *state;
    enum { N = 100 };
    pid_t mk = h_mkenv_async(h, "env", N, H_END);
    h_node *r = h_start(h, "r", H_END);
    h_node *a = h_start(h, "a", "--peer", r->addr, H_END);
    h_expect(h, r, "peers connected", H_EQ, 1);
    h_wait_exit0(h, mk, "chapar-mkenv");

    h_publish_range(h, a, "env", 0, N);
    assert_int_equal(h_status(h, a, "envelopes stored"), N);
    h_expect(h, r, "envelopes stored", H_EQ, N);
    h_stop(h, a); /* SIGTERM: exit 0 */

    h_node *b = h_start(h, "b", "--peer", r->addr, H_END);
    h_expect(h, b, "envelopes stored", H_EQ, N);
    /* They came by sync, not by chance: B asked for every one of them. */
    h_expect(h, b, "syncs completed", H_GE, 1);
    assert_true(h_status(h, b, "sync fetched") >= N);
    assert_int_equal(h_status(h, b, "accepted"), N);
    assert_int_equal(h_status(h, b, "rejected"), 0);
    assert_int_equal(h_status(h, r, "envelopes stored"), N);
    h_stop(h, b);
    h_stop(h, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_late_node_gets_everything, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
