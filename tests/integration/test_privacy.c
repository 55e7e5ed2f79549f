/* test_privacy.c - what an observer of the wire sees: the loopback traffic
 * of three nodes (handshakes, pushes and a sync) is captured with tcpdump
 * and searched. Every link must be CURVE; no envelope byte pattern, id,
 * test payload or node key may appear in the clear. Skipped with a printed
 * reason where no capture tool can run (not installed, or not root). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/addr.h"
#include "proto/hex.h"

static int count(const uint8_t *hay, size_t hl, const void *needle, size_t nl)
{
    int n = 0;
    for (size_t i = 0; nl <= hl && i <= hl - nl; i++)
        if (hay[i] == *(const uint8_t *)needle && !memcmp(hay + i, needle, nl))
            n++;
    return n;
}

static int contains(const uint8_t *hay, size_t hl, const void *needle, size_t nl)
{
    return count(hay, hl, needle, nl) > 0;
}

static void test_wire_reveals_nothing(void **state)
{
    h_ctx *h = *state;
    enum { NENV = 4 };
    pid_t mk = h_mkenv_async(h, "env", NENV, H_END);
    h_node *r = h_start(h, "r", H_END);
    h_node *a = h_start(h, "a", H_END);
    h_node *b = h_start(h, "b", H_END);

    /* The capture starts before any of them talk. */
    h_node *const nodes[] = {r, a, b};
    char pcap[300], why[600];
    pid_t cap = h_capture_start(h, nodes, 3, pcap, sizeof pcap, why, sizeof why);
    if (!cap) {
        fprintf(stderr, "SKIPPED: %s\n", why);
        skip();
    }

    assert_int_equal(h_chapar(h, a, NULL, NULL, "peer", "add", r->addr, H_END), 0);
    assert_int_equal(h_chapar(h, b, NULL, NULL, "peer", "add", r->addr, H_END), 0);
    h_expect(h, r, "peers connected", H_EQ, 2);
    h_wait_exit0(h, mk, "chapar-mkenv");

    char ids[NENV][65];
    h_publish(h, a, "env", 0, ids[0]);
    h_publish(h, a, "env", 1, ids[1]);
    h_expect(h, b, "envelopes stored", H_EQ, 2);
    h_publish(h, b, "env", 2, ids[2]);
    h_expect(h, a, "envelopes stored", H_EQ, 3);
    /* And one that b gets by sync after a restart. */
    h_stop(h, b);
    h_publish(h, a, "env", 3, ids[3]);
    h_expect(h, r, "envelopes stored", H_EQ, 4);
    h_start(h, "b", H_END); /* dials r again: a remembered peer */
    h_expect(h, b, "envelopes stored", H_EQ, 4);
    h_expect(h, b, "syncs completed", H_GE, 1);

    size_t len;
    uint8_t *wire = h_capture_stop(h, cap, pcap, &len);

    /* Positive control: the capture holds the ZMTP greetings of all three
     * connections, both sides, and they name CURVE (the mechanism field is
     * the name padded with zeros to 20 bytes). */
    static const char curve[20] = "CURVE", null_mech[20] = "NULL", plain[20] = "PLAIN";
    int greetings = count(wire, len, curve, sizeof curve);
    h_note(h, "%d CURVE greetings", greetings);
    assert_true(greetings >= 6);
    assert_false(contains(wire, len, null_mech, sizeof null_mech));
    assert_false(contains(wire, len, plain, sizeof plain));

    static const char payload[] = "chapar-test-payload-";
    assert_false(contains(wire, len, payload, sizeof payload - 1));
    for (int i = 0; i < NENV; i++) {
        char name[32], p[300];
        size_t el;
        snprintf(name, sizeof name, "env%d", i);
        uint8_t *env = h_read_file(h_path(h, p, sizeof p, name), &el);
        assert_true(el > 200);
        /* Header (times, tag, key field), a stretch of ciphertext, the
         * proof-of-work nonce with its neighbours, and the id. */
        assert_false(contains(wire, len, env, 65));
        assert_false(contains(wire, len, env + el / 2, 24));
        assert_false(contains(wire, len, env + el - 24, 24));
        uint8_t id[32];
        assert_int_equal(chp_hex_decode(ids[i], 64, id, 32), CHP_OK);
        assert_false(contains(wire, len, id, 32));
        free(env);
    }
    /* Nor do the nodes' long-term transport keys: CURVE never sends the
     * server's and sends the client's only inside a box. */
    for (int i = 0; i < 3; i++) {
        chp_addr ad;
        assert_int_equal(chp_addr_parse(nodes[i]->addr, strlen(nodes[i]->addr), &ad), CHP_OK);
        assert_false(contains(wire, len, ad.key, 32));
    }
    free(wire);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wire_reveals_nothing, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
