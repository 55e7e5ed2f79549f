/* test_peer_state.c - `peer add` says what is wrong with an address
 * (issue 12, finding 4): a host name that does not resolve is refused in
 * one line (exit 1) and not remembered; a closed port shows in `peer list`
 * as `unreachable` and a wrong node key as `handshake-failed`, each with
 * its reason and one log line, instead of `connecting` forever. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The line of `peer list` at n whose address column is addr, or NULL. */
static char *peer_line(h_ctx *h, const h_node *n, const char *addr)
{
    char *out = h_ok(h, n, "peer", "list", H_END);
    char *found = NULL;
    for (char *line = strtok(out, "\n"); line && !found; line = strtok(NULL, "\n")) {
        /* KEY STATE DIR ADDR RX TX REASON: 7 columns, the address 4th. */
        const char *f[7];
        int k = 0;
        f[k++] = line;
        for (char *p = line; *p && k < 7; p++)
            if (*p == '\t')
                f[k++] = p + 1;
        size_t al = strlen(addr);
        if (k == 7 && !strncmp(f[3], addr, al) && f[3][al] == '\t')
            found = strdup(line);
    }
    free(out);
    return found;
}

struct want {
    const h_node *n;
    const char *addr, *state, *reason;
};

static int has_state(h_ctx *h, void *arg)
{
    const struct want *w = arg;
    char *line = peer_line(h, w->n, w->addr);
    char needle[64];
    snprintf(needle, sizeof needle, "\t%s\t", w->state);
    int ok = line && strstr(line, needle) && strstr(line, w->reason);
    free(line);
    return ok;
}

static int log_has(const h_node *n, const char *s)
{
    size_t len;
    char *log = (char *)h_read_file(n->log, &len);
    int ok = log && strstr(log, s);
    free(log);
    return ok;
}

static void test_unresolvable_host(void **state)
{
    h_ctx *h = *state;
    h_node *a = h_start(h, "a", H_END);
    h_node *b = h_start(h, "b", H_END);
    char addr[H_ADDR_MAX + 32];
    snprintf(addr, sizeof addr, "no-such-host.invalid:%u/%s", (unsigned)b->port, b->key);
    char *out = NULL, *err = NULL;
    int rc = h_chapar(h, a, &out, &err, "peer", "add", addr, H_END);
    assert_int_equal(rc, 1);
    assert_string_equal(out, "");
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "host no-such-host.invalid does not resolve"));
    free(out);
    free(err);
    out = h_ok(h, a, "peer", "list", H_END);
    assert_string_equal(out, ""); /* neither dialled nor remembered */
    free(out);
    h_stop(h, a);
    h_stop(h, b);
}

static void test_closed_port_and_wrong_key(void **state)
{
    h_ctx *h = *state;
    h_node *a = h_start(h, "a", H_END);
    h_node *b = h_start(h, "b", H_END);
    h_node *c = h_start(h, "c", H_END);

    /* b goes away: its port is closed now. */
    char baddr[H_ADDR_MAX];
    snprintf(baddr, sizeof baddr, "%s", b->addr);
    h_stop(h, b);
    free(h_ok(h, a, "peer", "add", baddr, H_END));
    struct want w = {a, baddr, "unreachable", "connection refused"};
    assert_true(h_wait(h, H_DEADLINE_MS, has_state, &w));
    assert_true(log_has(a, "no answer: connection refused"));

    /* c's host and port, with b's key: c cannot complete the handshake. */
    char wrong[H_ADDR_MAX + 32];
    snprintf(wrong, sizeof wrong, "127.0.0.1:%u/%s", (unsigned)c->port, b->key);
    free(h_ok(h, a, "peer", "add", wrong, H_END));
    struct want w2 = {a, wrong, "handshake-failed", "wrong node key"};
    assert_true(h_wait(h, H_DEADLINE_MS, has_state, &w2));
    assert_true(log_has(a, "CURVE handshake failed"));

    /* A good address next to them is `connected`, with no reason. */
    free(h_ok(h, a, "peer", "add", c->addr, H_END));
    h_expect(h, a, "peers connected", H_EQ, 1);
    char *line = peer_line(h, a, c->addr);
    assert_non_null(line);
    assert_non_null(strstr(line, "\tconnected\t"));
    assert_non_null(strstr(line, "\t-\ttcp")); /* no reason, then the transport */
    free(line);
    h_stop(h, a);
    h_stop(h, c);
}

/* Two users on one machine: the second chapard finds the port taken and
 * listens on another, saying so; a relay (its address is published)
 * refuses to move and says why. */
static void test_busy_port(void **state)
{
    h_ctx *h = *state;
    h_node *a = h_start(h, "a", H_END);
    char listen[64], home[600];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)a->port);
    h_node *b = h_start(h, "b", "--listen", listen, H_END);
    assert_int_not_equal(b->port, a->port);
    assert_true(log_has(b, "is in use (another chapard on this machine?): listening on port"));
    h_expect(h, b, "uptime", H_GE, 0);
    free(h_ok(h, b, "peer", "add", a->addr, H_END));
    h_expect(h, a, "peers connected", H_EQ, 1);

    char *out = NULL, *err = NULL;
    int rc = h_run(h, &out, &err, h_bin("CHAPARD"), "--home", h_path(h, home, sizeof home, "r"),
                   "--relay", "--listen", listen, "--no-discovery", H_END);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "Address already in use (another chapard on this machine?"));
    free(out);
    free(err);
    h_stop(h, a);
    h_stop(h, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unresolvable_host, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_closed_port_and_wrong_key, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_busy_port, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
