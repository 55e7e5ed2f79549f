/* test_dm_offline.c - store and forward of direct messages: Alice writes
 * while Bob is off, then goes away herself; Bob comes up connected only
 * to the relay and reads it; Alice comes back and sees it delivered. And
 * the same for a message written before the contact handshake could even
 * start: it waits in Alice's outbox until Bob has added her. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_relay_carries_dm(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1], m[33];
    h_node *r = h_start(h, "relay", "--relay", H_END);
    h_node *a = h_node_get(h, "alice"), *b = h_node_get(h, "bob");
    h_init(h, a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, b, "bob-nick", bid, "--no-passphrase", H_END);
    h_start(h, "alice", "--peer", r->addr, H_END);
    h_start(h, "bob", "--peer", r->addr, H_END);
    h_befriend(h, a, "alice", aid, b, "bob", bid);

    /* Bob goes off; Alice writes; the relay holds it; Alice goes off. */
    h_stop(h, b);
    long long before = h_status(h, r, "envelopes stored");
    h_send(h, a, "bob", "written while you were away", m);
    h_await_state(h, a, m, "sent");
    h_expect(h, r, "envelopes stored", H_GT, before);
    h_stop(h, a);

    /* Bob comes back with the relay as his only neighbour. */
    h_start(h, "bob", H_END); /* the relay is a remembered peer */
    char *out = h_ok(h, b, "peer", "list", H_END);
    assert_int_equal(h_lines(out), 1);
    free(out);
    free(h_await(h, b, "\talice\talice\twritten while you were away\n", "inbox", "--tsv", H_END));

    /* Alice returns later and learns it arrived (Bob's receipt waited at
     * the relay for her). */
    h_start(h, "alice", H_END);
    h_await_state(h, a, m, "delivered");
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

static void test_queued_before_handshake(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1], m[33];
    h_node *r = h_start(h, "relay", "--relay", H_END);
    h_node *a = h_node_get(h, "alice"), *b = h_node_get(h, "bob");
    h_init(h, a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, b, "bob-nick", bid, "--no-passphrase", H_END);
    h_start(h, "alice", "--peer", r->addr, H_END);

    /* Bob has never run: Alice adds him and writes at once. */
    free(h_ok(h, a, "contact", "add", bid, "bob", H_END));
    h_send(h, a, "bob", "first words before we even met", m);
    char *out = h_ok(h, a, "outbox", H_END);
    char line[128];
    snprintf(line, sizeof line, "%s\tbob\tqueued\t", m);
    assert_non_null(strstr(out, line));
    free(out);

    /* Bob starts, finds Alice's request (kept by the relay), adds her. */
    h_start(h, "bob", "--peer", r->addr, H_END);
    free(h_await(h, b, aid, "contact", "requests", H_END));
    free(h_ok(h, b, "contact", "add", aid, "alice", H_END));
    h_established(h, a, "bob", bid);
    free(
        h_await(h, b, "\talice\talice\tfirst words before we even met\n", "inbox", "--tsv", H_END));
    h_await_state(h, a, m, "delivered");
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relay_carries_dm, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_queued_before_handshake, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
