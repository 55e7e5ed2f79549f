/* test_privacy.c - what an observer of the wire sees: the loopback traffic
 * of three nodes (handshakes, pushes and a sync) is captured with tcpdump
 * and searched. Every link must be CURVE; no envelope byte pattern, id,
 * test payload or node key may appear in the clear. Skipped with a printed
 * reason where no capture tool can run (not installed, or not root). */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/addr.h"

static const char *find_tool(const char *name, char *buf, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin:/usr/bin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, cap, "%s/%s", d, name);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

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

struct log_has {
    const char *path, *text;
};

static int log_has(h_ctx *h, void *arg)
{
    (void)h;
    struct log_has *l = arg;
    char *s = (char *)h_read_file(l->path, NULL);
    int yes = strstr(s, l->text) != NULL;
    free(s);
    return yes;
}

static void hex_to_bin(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void test_wire_reveals_nothing(void **state)
{
    h_ctx *h = *state;
    char tcpdump[512];
    if (!find_tool("tcpdump", tcpdump, sizeof tcpdump)) {
        fprintf(stderr, "SKIPPED: tcpdump is not installed (apt-get install tcpdump to run this "
                        "capture test)\n");
        skip();
    }
    if (geteuid() != 0) {
        fprintf(stderr, "SKIPPED: capturing loopback traffic needs root\n");
        skip();
    }
    enum { NENV = 4 };
    pid_t mk = h_mkenv_async(h, "env", NENV, H_END);
    h_node *r = h_start(h, "r", H_END);
    h_node *a = h_start(h, "a", H_END);
    h_node *b = h_start(h, "b", H_END);

    /* Capture only these nodes' connections (other tests may run beside
     * us), starting before any of them talk. */
    char pcap[300], tlog[300], filter[200];
    h_path(h, pcap, sizeof pcap, "wire.pcap");
    h_path(h, tlog, sizeof tlog, "tcpdump.log");
    snprintf(filter, sizeof filter, "tcp and (port %u or port %u or port %u)", r->port, a->port,
             b->port);
    const char *argv[] = {tcpdump, "-i", "lo", "-n",   "-U", "--immediate-mode", "-Z", "root", "-s",
                          "0",     "-w", pcap, filter, NULL};
    pid_t cap = h_spawn_aux(h, "tcpdump.log", argv);
    struct log_has ready = {tlog, "listening on"};
    if (!h_wait(h, 10000, log_has, &ready)) {
        char *why = (char *)h_read_file(tlog, NULL);
        fprintf(stderr, "SKIPPED: tcpdump could not capture on lo: %s\n", why);
        free(why);
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

    kill(cap, SIGINT);
    int st = h_reap(h, cap, 10000);
    assert_true(st >= 0 && WIFEXITED(st));
    size_t len;
    uint8_t *wire = h_read_file(pcap, &len);
    h_note(h, "captured %zu bytes", len);

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
        hex_to_bin(ids[i], id, 32);
        assert_false(contains(wire, len, id, 32));
        free(env);
    }
    /* Nor do the nodes' long-term transport keys: CURVE never sends the
     * server's and sends the client's only inside a box. */
    h_node *nodes[] = {r, a, b};
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
