/* test_sent_after_restart.c - a text after a file reaches its contact
 * across a restart: a 1 MiB file is 66 envelopes, past the 64 tags a node
 * computes ahead per contact and epoch (PROTOCOL.md §18.1), and the node
 * of the side that restarts (or otherwise rebuilds its tag table: a room
 * joined) must still recognise the sender's next envelopes. Before the
 * fix the table came back with seq 0..63 only, so the text stayed `sent`
 * for good (and every later one too, until the epoch turned): Bob's node
 * held it but never read it (Bob restarted), or Bob read it and Alice
 * never read his receipt (Alice restarted after a file from Bob); the
 * same through a relay.
 * Nodes are linked with `peer add`, as users do. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Alice and Bob, contacts, Alice's node dialling Bob's through `peer add`
 * (remembered across her restarts); Bob's listen address into listen. */
static void pair(h_ctx *h, h_node **a, h_node **b, char *listen, size_t cap)
{
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1];
    *a = h_node_get(h, "alice");
    *b = h_node_get(h, "bob");
    h_init(h, *a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, *b, "bob-nick", bid, "--no-passphrase", H_END);
    h_start(h, "alice", H_END);
    h_start(h, "bob", H_END);
    free(h_ok(h, *a, "peer", "add", (*b)->addr, H_END));
    h_expect(h, *a, "peers connected", H_EQ, 1);
    h_befriend(h, *a, "alice", aid, *b, "bob", bid);
    snprintf(listen, cap, "127.0.0.1:%u", (unsigned)(*b)->port);
}

/* from sends a 1 MiB file to contact to; returns when it is delivered. */
static void file_delivered(h_ctx *h, const h_node *from, const char *to, unsigned n)
{
    char name[32], id[33];
    snprintf(name, sizeof name, "photo%u.bin", n);
    char *src = h_write_file(h, name, "", 0);
    assert_int_equal(h_sh("truncate -s 1M '%s'", src), 0); /* 65 pieces and a manifest */
    char *out = h_ok(h, from, "send-file", to, src, H_END);
    assert_int_equal(strlen(out), 33);
    memcpy(id, out, 32);
    id[32] = '\0';
    free(out);
    h_await_state_(h, from, id, "delivered", 60000, __FILE__, __LINE__);
}

/* Alice's text to Bob: in his inbox and `delivered` at hers. */
static void text_delivered(h_ctx *h, const h_node *a, const h_node *b, const char *text)
{
    char id[33];
    h_send(h, a, "bob", text, id);
    free(h_await(h, b, text, "inbox", "--tsv", H_END));
    h_await_state(h, a, id, "delivered");
}

/* How far a node examined its store is saved once a second (msg_in.c):
 * wait past it, so a restart does not examine the file's pieces again
 * (which would widen the tag window by chance). */
static void let_examined_save(void)
{
    h_sleep_ms(1500);
}

/* Bob's node restarts (clean stop) after Alice's file: her next text must
 * still be recognised as hers. */
static void test_bob_restarted(void **state)
{
    h_ctx *h = *state;
    char listen[64];
    h_node *a, *b;
    pair(h, &a, &b, listen, sizeof listen);
    file_delivered(h, a, "bob", 1);
    let_examined_save();
    h_stop(h, b);
    h_start(h, "bob", "--listen", listen, H_END);
    h_expect(h, a, "peers connected", H_EQ, 1);
    text_delivered(h, a, b, "after bob's restart");
    h_stop(h, a);
    h_stop(h, b);
}

/* Files both ways, then Alice's node is killed and started again: Bob's
 * receipt for her next text comes under a tag past his 66 envelopes. */
static void test_alice_restarted(void **state)
{
    h_ctx *h = *state;
    char listen[64];
    h_node *a, *b;
    pair(h, &a, &b, listen, sizeof listen);
    file_delivered(h, b, "alice", 2);
    file_delivered(h, a, "bob", 3);
    let_examined_save();
    h_kill9(h, a);
    h_start(h, "alice", H_END);
    h_expect(h, a, "peers connected", H_EQ, 1);
    text_delivered(h, a, b, "after alice's restart");
    h_stop(h, a);
    h_stop(h, b);
}

/* The same through a relay both dial (`peer add`): the relay holds the
 * text (so `sent`), and Bob's node must still read it after his restart. */
static void test_bob_restarted_relay(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1];
    h_node *r = h_start(h, "relay", "--relay", H_END);
    h_node *a = h_node_get(h, "alice"), *b = h_node_get(h, "bob");
    h_init(h, a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, b, "bob-nick", bid, "--no-passphrase", H_END);
    h_start(h, "alice", H_END);
    h_start(h, "bob", H_END);
    free(h_ok(h, a, "peer", "add", r->addr, H_END));
    free(h_ok(h, b, "peer", "add", r->addr, H_END));
    h_expect(h, r, "peers connected", H_EQ, 2);
    h_befriend(h, a, "alice", aid, b, "bob", bid);
    file_delivered(h, a, "bob", 5);
    let_examined_save();
    h_stop(h, b);
    h_start(h, "bob", H_END);
    h_expect(h, r, "peers connected", H_EQ, 2);
    text_delivered(h, a, b, "through the relay after bob's restart");
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

/* No restart: Bob joins a room, which rebuilds his tag table in place. */
static void test_bob_joins_room(void **state)
{
    h_ctx *h = *state;
    char listen[64];
    h_node *a, *b;
    pair(h, &a, &b, listen, sizeof listen);
    file_delivered(h, a, "bob", 4);
    free(h_ok(h, b, "join", "#kitchen", H_END));
    text_delivered(h, a, b, "after bob joined a room");
    h_stop(h, a);
    h_stop(h, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bob_restarted, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_alice_restarted, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_bob_joins_room, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_bob_restarted_relay, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
