/* test_link.c - two nodes in this process linked over 127.0.0.1 with
 * `peer-add`: the `peer` events up and down, `peers` and
 * `status` while linked, an envelope published at one arriving at the
 * other, a second address for a linked node refused, and a room post
 * from one user node received by the other (the hooks node.c sets between
 * the mesh and the messaging layer). */
#include "dtest.h"
#include "harness.h"

#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    if (chp_crypto_init() != CHP_OK)
        return -1;
    return h_setup(state);
}

/* The node key (chpn1...) of a node's address, into key (80 bytes). */
static void key_of(const char *addr, char key[80])
{
    const char *slash = strrchr(addr, '/');
    assert_non_null(slash);
    snprintf(key, 80, "%s", slash + 1);
}

static void await_event(dt_node *t, const char *topic, const char *body)
{
    char *ev = dt_event(t, topic, body, DT_WAIT_MS);
    if (!ev)
        fail_msg("no `%s` event '%s' at %s within %d ms", topic, body, t->home, DT_WAIT_MS);
    free(ev);
}

/* The `peers` line of key at t, with state and direction. */
static void assert_peer(dt_node *t, const char *key, const char *state, const char *dir)
{
    char *p = dt_ok(t, "peers", DT_END), want[200];
    snprintf(want, sizeof want, "%s\t%s\t%s\t", key, state, dir);
    if (!strstr(p, want))
        fail_msg("peers at %s: '%s'; want a line starting '%s'", t->home, p, want);
    free(p);
}

/* Links a to b (a dials); returns once both say `peer up`. */
static void link_nodes(dt_node *a, dt_node *b, char akey[80], char bkey[80])
{
    char *aaddr = dt_ok(a, "address", DT_END), *baddr = dt_ok(b, "address", DT_END);
    key_of(aaddr, akey);
    key_of(baddr, bkey);
    char *r = dt_ok(a, "peer-add", baddr, DT_END);
    assert_string_equal(r, "");
    free(r);
    await_event(a, "peer", "up");
    await_event(b, "peer", "up");
    free(aaddr);
    free(baddr);
}

static void test_two_relays(void **state)
{
    h_ctx *h = *state;
    char ha[300], hb[300], akey[80], bkey[80];
    dt_node a, b;
    dt_start(&a, h_path(h, ha, sizeof ha, "a"), 1, NULL);
    dt_start(&b, h_path(h, hb, sizeof hb, "b"), 1, NULL);
    link_nodes(&a, &b, akey, bkey);

    assert_int_equal(dt_await_status(&a, "peers connected", 1), 1);
    assert_int_equal(dt_await_status(&b, "peers connected", 1), 1);
    assert_int_equal(dt_await_status(&a, "relays connected", 1), 1);
    assert_peer(&a, bkey, "connected", "out");
    assert_peer(&b, akey, "connected", "in");

    /* Another address for the linked node is refused while it lives. */
    char other[200];
    snprintf(other, sizeof other, "127.0.0.1:9/%s", bkey);
    char *e = dt_error(&a, "peer-add", other, DT_END);
    assert_string_equal(e, "already linked to that node at another address (see peer list); "
                           "peer remove that one first");
    free(e);
    e = dt_error(&a, "peer-remove", other, DT_END);
    assert_string_equal(e, "no such peer");
    free(e);

    /* An envelope published at a is pushed to b. */
    uint8_t env[CHP_ENV_MAX_BYTES];
    size_t len = dt_envelope(env, sizeof env);
    char id[65];
    dt_envelope_hex(env, len, id);
    const void *args[] = {env};
    size_t lens[] = {len};
    char *got = NULL;
    assert_true(dt_call(&a, &got, NULL, "publish", 1, args, lens));
    assert_string_equal(got, id);
    free(got);
    await_event(&b, "envelope", id);
    assert_int_equal(dt_await_status(&b, "envelopes stored", 1), 1);
    assert_int_equal(dt_status_num(&b, "accepted"), 1);
    assert_true(dt_status_num(&a, "bytes sent") > 0);
    assert_true(dt_status_num(&b, "bytes received") > 0);

    /* peer-remove at the address it is known at: down on both sides. */
    char *baddr = dt_ok(&b, "address", DT_END);
    e = dt_ok(&a, "peer-remove", baddr, DT_END);
    assert_string_equal(e, "");
    free(e);
    free(baddr);
    /* b sees its neighbour go, and a's own UI hears that it dropped it */
    await_event(&a, "peer", "down");
    await_event(&b, "peer", "down");
    char *p = dt_ok(&a, "peers", DT_END);
    assert_null(strstr(p, bkey));
    free(p);
    assert_int_equal(dt_status_num(&a, "peers connected"), 0);
    assert_int_equal(dt_stop(&a), CHP_OK);
    assert_int_equal(dt_stop(&b), CHP_OK);
}

/* One node stopping is `peer down` at the other. */
static void test_neighbour_stops(void **state)
{
    h_ctx *h = *state;
    char ha[300], hb[300], akey[80], bkey[80];
    dt_node a, b;
    dt_start(&a, h_path(h, ha, sizeof ha, "a"), 1, NULL);
    dt_start(&b, h_path(h, hb, sizeof hb, "b"), 0, NULL);
    link_nodes(&a, &b, akey, bkey);
    assert_int_equal(dt_await_status(&b, "relays connected", 1), 1);
    assert_int_equal(dt_status_num(&a, "relays connected"), 0); /* b is a user node */
    assert_int_equal(dt_stop(&b), CHP_OK);
    await_event(&a, "peer", "down");
    /* a keeps the address and dials again. */
    char *p = dt_ok(&a, "peers", DT_END);
    assert_non_null(strstr(p, bkey));
    assert_non_null(strstr(p, "\tout\t"));
    assert_null(strstr(p, "\tconnected\t"));
    free(p);
    assert_int_equal(dt_stop(&a), CHP_OK);
}

/* A #lan post from one user node is a `message` event at the other: the
 * envelope goes through the mesh of both, and the receiving daemon hands
 * it to its messaging layer. */
static void test_room_post_arrives(void **state)
{
    h_ctx *h = *state;
    char ha[300], hb[300], akey[80], bkey[80];
    dt_node a, b;
    h_path(h, ha, sizeof ha, "ali");
    h_path(h, hb, sizeof hb, "bob");
    dt_start(&a, ha, 0, dt_identity(ha));
    dt_start(&b, hb, 0, dt_identity(hb));
    free(dt_ok(&a, "nick", "ali", DT_END));
    free(dt_ok(&b, "nick", "bob", DT_END));
    link_nodes(&a, &b, akey, bkey);

    char *msgid = dt_ok(&a, "send", "#lan", "hi bob, from ali", DT_END);
    char *ev = dt_event(&b, "message", "#lan\t", DT_WAIT_MS);
    if (!ev)
        fail_msg("bob got no `message` event within %d ms", DT_WAIT_MS);
    /* CONV, SENDER (a stranger: ~nick (fingerprint)), MSGID, TIME, TEXT */
    assert_non_null(strstr(ev, "\t~ali ("));
    assert_non_null(strstr(ev, msgid));
    size_t el = strlen(ev);
    assert_true(el > 16);
    assert_string_equal(ev + el - 16, "hi bob, from ali");
    free(ev);
    char *inbox = dt_ok(&b, "inbox", DT_END);
    assert_non_null(strstr(inbox, "\t#lan\t~ali ("));
    assert_non_null(strstr(inbox, "\thi bob, from ali\t"));
    free(inbox);
    free(msgid);
    assert_int_equal(dt_stop(&a), CHP_OK);
    assert_int_equal(dt_stop(&b), CHP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_relays, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_neighbour_stops, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_room_post_arrives, setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
