/* test_partition.c - two groups of three nodes fill up apart (200
 * different envelopes each), then one `chapar peer add` joins them: within
 * seconds all six hold all 400, and the sync counters show that the
 * reconciliation, not luck, did it. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

enum { PER_GROUP = 200, ALL = 2 * PER_GROUP };

static void expect_all(h_ctx *h, h_node **nodes, int count, long long v)
{
    for (int i = 0; i < count; i++)
        h_expect(h, nodes[i], "envelopes stored", H_EQ, v);
}

static void test_partition_heals(void **state)
{
    h_ctx *h = *state;
    /* Proofs of work take a while: two solvers in parallel, meanwhile
     * start the nodes. */
    pid_t mk1 = h_mkenv_async(h, "g1-", PER_GROUP, H_END);
    pid_t mk2 = h_mkenv_async(h, "g2-", PER_GROUP, H_END);

    /* Group 1, a line: a1 - r1 - b1. */
    h_node *r1 = h_start(h, "r1", H_END);
    h_node *a1 = h_start(h, "a1", "--peer", r1->addr, H_END);
    h_node *b1 = h_start(h, "b1", "--peer", r1->addr, H_END);
    /* Group 2, a star around c2 that also dials out: a2 <- c2 -> b2. */
    h_node *a2 = h_start(h, "a2", H_END);
    h_node *b2 = h_start(h, "b2", H_END);
    h_node *c2 = h_start(h, "c2", "--peer", a2->addr, "--peer", b2->addr, H_END);
    h_node *g1[] = {a1, r1, b1}, *g2[] = {a2, c2, b2}, *all[] = {a1, r1, b1, a2, c2, b2};
    h_expect(h, r1, "peers connected", H_EQ, 2);
    h_expect(h, c2, "peers connected", H_EQ, 2);

    h_wait_exit0(h, mk1, "chapar-mkenv group 1");
    h_publish_range(h, a1, "g1-", 0, PER_GROUP);
    h_wait_exit0(h, mk2, "chapar-mkenv group 2");
    h_publish_range(h, c2, "g2-", 0, PER_GROUP);
    expect_all(h, g1, 3, PER_GROUP);
    expect_all(h, g2, 3, PER_GROUP);
    long long b1_fetched = h_status(h, b1, "sync fetched");
    long long a2_rounds = h_status(h, a2, "sync rounds");

    /* Heal: b1 (a leaf of group 1) dials a2 (a leaf of group 2). */
    uint64_t t0 = chp_mono_ms();
    char *out = NULL, *err = NULL;
    int rc = h_chapar(h, b1, &out, &err, "peer", "add", a2->addr, H_END);
    if (rc != 0)
        fail_msg("peer add: exit %d: %s", rc, err);
    free(out);
    free(err);
    /* Group 1 gets group 2's envelopes by asking for them (IWANT). */
    expect_all(h, g1, 3, ALL);
    /* Group 2 gets group 1's as the pushes b1 sends for the ids the sync
     * found a2 lacking. */
    h_expect_(h, a2, "envelopes stored", H_EQ, ALL, 3000, __FILE__, __LINE__);
    expect_all(h, g2, 3, ALL);
    uint64_t took = chp_mono_ms() - t0;
    h_note(h, "partition healed in %llu ms", (unsigned long long)took);
    assert_true(took < 15000);

    /* b1 initiated the reconciliation and fetched group 2's envelopes; a2
     * answered it and was sent group 1's. */
    assert_true(h_status(h, b1, "syncs completed") > 0);
    assert_true(h_status(h, b1, "sync fetched") - b1_fetched >= PER_GROUP);
    assert_true(h_status(h, a2, "sync rounds") > a2_rounds);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(h_status(h, all[i], "accepted"), ALL);
        assert_int_equal(h_status(h, all[i], "rejected"), 0);
    }
    for (int i = 0; i < 6; i++)
        h_stop(h, all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_partition_heals, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
