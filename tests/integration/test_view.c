/* test_view.c - the passive view (node/mesh/view.c): a node linked to one relay
 * learns of another relay from it (PEERS) and dials it, so when its relay
 * dies it still reaches the mesh; user nodes' addresses are never passed
 * on; a friends-only relay (--allow) dials no one it heard of. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_relay_learned_from_relay(void **state)
{
    h_ctx *h = *state;
    pid_t mk = h_mkenv_async(h, "env", 2, H_END);
    h_node *r2 = h_start(h, "r2", "--relay", H_END);
    h_node *r1 = h_start(h, "r1", "--relay", "--peer", r2->addr, H_END);
    h_expect(h, r1, "peers connected", H_EQ, 1);
    h_node *b = h_start(h, "b", "--peer", r1->addr, H_END);
    h_expect(h, r1, "peers connected", H_EQ, 2);

    /* A is given only R1. R1 tells it about R2 (a relay), and with one
     * live link A dials it: its active view fills from the passive one. */
    h_node *a = h_start(h, "a", "--peer", r1->addr, H_END);
    h_expect(h, a, "peers connected", H_EQ, 2);
    char *peers = h_ok(h, a, "peer", "list", H_END);
    const char *k2 = strchr(r2->addr, '/'), *kb = strchr(b->addr, '/');
    assert_non_null(k2);
    assert_non_null(kb);
    /* peer list shows dial addresses: R2's, learned; never B's (a user
     * node R1 knows only because B dialled it). */
    assert_non_null(strstr(peers, k2 + 1));
    assert_null(strstr(peers, kb + 1));
    free(peers);

    /* R1 dies: what A publishes still reaches R2, and from there B (which
     * learned of R2 the same way). */
    h_kill9(h, r1);
    h_expect(h, a, "peers connected", H_EQ, 1);
    h_wait_exit0(h, mk, "chapar-mkenv");
    h_publish(h, a, "env", 0, NULL);
    h_expect(h, r2, "envelopes stored", H_EQ, 1);
    h_expect(h, b, "envelopes stored", H_EQ, 1);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r2);
}

/* A friends-only relay (--allow) links only with its friends: what a
 * friend tells it about other nodes (PEERS) does not make it dial them,
 * and a stranger that dials it is refused and counted. */
static void test_friends_only_relay(void **state)
{
    h_ctx *h = *state;
    pid_t mk = h_mkenv_async(h, "env", 1, H_END);
    h_node *r2 = h_start(h, "r2", "--relay", H_END);
    h_node *a = h_start(h, "a", "--peer", r2->addr, H_END);
    h_expect(h, a, "peers connected", H_EQ, 1);
    h_node *f = h_start(h, "f", "--relay", "--allow", a->addr, H_END);
    free(h_ok(h, a, "peer", "add", f->addr, H_END));
    h_expect(h, f, "peers connected", H_EQ, 1);
    h_node *s = h_start(h, "s", "--peer", f->addr, H_END);
    h_expect(h, f, "rejected not allowed", H_GE, 1);

    /* A passes R2 on to F (a relay neighbour), and F, with one live link,
     * would dial it within 3 s if it took it into its passive view. */
    h_sleep_ms(4000);
    assert_int_equal(h_status(h, f, "passive peers"), 0);
    assert_int_equal(h_status(h, f, "peers connected"), 1);
    char *peers = h_ok(h, f, "peer", "list", H_END);
    assert_null(strstr(peers, strchr(r2->addr, '/') + 1));
    assert_null(strstr(peers, strchr(s->addr, '/') + 1));
    free(peers);

    /* The friend's mail is still carried. */
    h_wait_exit0(h, mk, "chapar-mkenv");
    h_publish(h, a, "env", 0, NULL);
    h_expect(h, f, "envelopes stored", H_EQ, 1);
    h_stop(h, s);
    h_stop(h, f);
    h_stop(h, a);
    h_stop(h, r2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relay_learned_from_relay, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_friends_only_relay, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
