/* test_line.c - three real nodes in a line A - R - B: an envelope published
 * at A reaches B through R; peers added, listed and removed at run time
 * through the CLI; the CLI's and the daemon's answers to bad input. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Line contains `want` as a whole tab-separated field. */
static int has_field(const char *line, size_t len, const char *want)
{
    size_t wl = strlen(want);
    for (size_t i = 0; i + wl <= len; i++)
        if ((i == 0 || line[i - 1] == '\t') && !memcmp(line + i, want, wl) &&
            (i + wl == len || line[i + wl] == '\t'))
            return 1;
    return 0;
}

/* The `peer list` line of key, or fails. Returns a malloc'd copy. */
static char *peer_line(h_ctx *h, const h_node *at, const char *key)
{
    char *out = NULL, *err = NULL, *res = NULL;
    int rc = h_chapar(h, at, &out, &err, "peer", "list", H_END);
    if (rc != 0)
        fail_msg("peer list at %s: exit %d: %s", at->name, rc, err);
    for (char *p = out; *p;) {
        size_t l = strcspn(p, "\n");
        if (!strncmp(p, key, strlen(key)) && p[strlen(key)] == '\t') {
            res = strndup(p, l);
            break;
        }
        p += l + (p[l] == '\n');
    }
    if (!res)
        fail_msg("peer list at %s has no line for %.16s...:\n%s", at->name, key, out);
    free(out);
    free(err);
    return res;
}

static void test_envelope_crosses_the_line(void **state)
{
    h_ctx *h = *state;
    pid_t mk = h_mkenv_async(h, "env", 1, H_END);
    h_node *r = h_start(h, "r", H_END);
    h_node *a = h_start(h, "a", "--peer", r->addr, H_END);
    h_node *b = h_start(h, "b", "--peer", r->addr, H_END);
    h_expect(h, a, "peers connected", H_EQ, 1);
    h_expect(h, b, "peers connected", H_EQ, 1);
    h_expect(h, r, "peers connected", H_EQ, 2);
    h_wait_exit0(h, mk, "chapar-mkenv");

    char id_a[65], id_b[65];
    h_publish(h, a, "env", 0, id_a);
    h_expect(h, b, "envelopes stored", H_EQ, 1);
    h_expect(h, r, "envelopes stored", H_EQ, 1);
    assert_int_equal(h_status(h, a, "envelopes stored"), 1);
    assert_int_equal(h_status(h, b, "accepted"), 1);
    assert_int_equal(h_status(h, b, "rejected"), 0);

    /* The same bytes published at B: the same id, counted as a duplicate,
     * nothing stored twice. */
    long long dups = h_status(h, b, "duplicates");
    h_publish(h, b, "env", 0, id_b);
    assert_string_equal(id_a, id_b);
    h_expect(h, b, "duplicates", H_GE, dups + 1);
    assert_int_equal(h_status(h, b, "envelopes stored"), 1);
    assert_int_equal(h_status(h, b, "accepted"), 1);

    /* A published it, so it went A -> R -> B: B's line for R (key,
     * state, direction, address, received, sent) counts it received. */
    char *line = peer_line(h, b, r->key), addr[H_ADDR_MAX], st[32], dir[16];
    unsigned long long rx = 0, tx = 0;
    assert_int_equal(sscanf(line + strlen(r->key) + 1, "%31[^\t]\t%15[^\t]\t%399[^\t]\t%llu\t%llu",
                            st, dir, addr, &rx, &tx),
                     5);
    assert_string_equal(st, "connected");
    assert_string_equal(dir, "out");
    assert_string_equal(addr, r->addr);
    assert_int_equal(rx, 1);
    assert_int_equal(tx, 0);
    free(line);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

static void test_peer_add_list_remove(void **state)
{
    h_ctx *h = *state;
    h_node *x = h_start(h, "x", H_END);
    h_node *y = h_start(h, "y", H_END);
    assert_int_equal(h_status(h, x, "peers connected"), 0);

    char *out = NULL, *err = NULL;
    assert_int_equal(h_chapar(h, x, &out, &err, "peer", "add", y->addr, H_END), 0);
    assert_string_equal(err, "");
    free(out);
    free(err);
    h_expect(h, x, "peers connected", H_EQ, 1);
    h_expect(h, y, "peers connected", H_EQ, 1);

    char *line = peer_line(h, x, y->key);
    size_t ll = strlen(line);
    assert_true(has_field(line, ll, "connected"));
    assert_true(has_field(line, ll, "out"));
    assert_true(has_field(line, ll, y->addr));
    free(line);
    line = peer_line(h, y, x->key);
    assert_true(has_field(line, strlen(line), "connected"));
    assert_true(has_field(line, strlen(line), "in"));
    free(line);

    /* Adding it again is harmless: still one neighbour. */
    assert_int_equal(h_chapar(h, x, NULL, NULL, "peer", "add", y->addr, H_END), 0);
    assert_int_equal(h_status(h, x, "peers connected"), 1);

    /* Its own address is refused with a reason. */
    assert_int_equal(h_chapar(h, x, &out, &err, "peer", "add", x->addr, H_END), 1);
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "own address"));
    free(out);
    free(err);

    /* Y's key at an address it is not known at: nothing to remove, and
     * the link to Y stays. */
    char moved[H_ADDR_MAX];
    assert_int_equal(strncmp(y->addr, "127.0.0.1:", 10), 0);
    snprintf(moved, sizeof moved, "127.0.0.1:%u/%s", y->port == 65535 ? 1u : y->port + 1u, y->key);
    assert_int_equal(h_chapar(h, x, &out, &err, "peer", "remove", moved, H_END), 1);
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "no such peer"));
    free(out);
    free(err);
    assert_int_equal(h_status(h, x, "peers connected"), 1);

    /* Its key at another address while the link lives: refused (a typo
     * must not cost a working link), and nothing changes. */
    assert_int_equal(h_chapar(h, x, &out, &err, "peer", "add", moved, H_END), 1);
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "already linked"));
    free(out);
    free(err);
    line = peer_line(h, x, y->key);
    assert_true(has_field(line, strlen(line), y->addr));
    free(line);
    assert_int_equal(h_status(h, x, "peers connected"), 1);

    /* Y moves (restarts on another port): X cannot reach the old address,
     * so the new one replaces it, and the link comes back. */
    char old_addr[H_ADDR_MAX];
    snprintf(old_addr, sizeof old_addr, "%s", y->addr);
    h_stop(h, y);
    h_expect(h, x, "peers connected", H_EQ, 0);
    y = h_start(h, "y", H_END);
    assert_string_not_equal(y->addr, old_addr);
    assert_int_equal(h_chapar(h, x, NULL, NULL, "peer", "add", y->addr, H_END), 0);
    h_expect(h, x, "peers connected", H_EQ, 1);
    line = peer_line(h, x, y->key);
    assert_true(has_field(line, strlen(line), y->addr));
    free(line);
    /* only the new address is remembered: the old one is no peer now */
    assert_int_equal(h_chapar(h, x, &out, &err, "peer", "remove", old_addr, H_END), 1);
    assert_non_null(strstr(err, "no such peer"));
    free(out);
    free(err);

    assert_int_equal(h_chapar(h, x, &out, &err, "peer", "remove", y->addr, H_END), 0);
    free(out);
    free(err);
    h_expect(h, x, "peers connected", H_EQ, 0);
    assert_int_equal(h_chapar(h, x, &out, NULL, "peer", "list", H_END), 0);
    assert_null(strstr(out, y->key));
    free(out);

    /* Removing it again: no such peer, exit 1, one line. */
    assert_int_equal(h_chapar(h, x, &out, &err, "peer", "remove", y->addr, H_END), 1);
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "no such peer"));
    free(out);
    free(err);
    h_stop(h, x);
    h_stop(h, y);
}

/* After `peer remove` at X, Y must not go on reporting X as connected. */
static void test_peer_remove_seen_by_other_side(void **state)
{
    h_ctx *h = *state;
    h_node *x = h_start(h, "x", H_END);
    h_node *y = h_start(h, "y", H_END);
    assert_int_equal(h_chapar(h, x, NULL, NULL, "peer", "add", y->addr, H_END), 0);
    h_expect(h, y, "peers connected", H_EQ, 1);
    assert_int_equal(h_chapar(h, x, NULL, NULL, "peer", "remove", y->addr, H_END), 0);
    h_expect(h, x, "peers connected", H_EQ, 0);
    /* ZMTP heartbeats time out a dead link within 6 s. */
    h_expect_(h, y, "peers connected", H_EQ, 0, 10000, __FILE__, __LINE__);
    h_stop(h, x);
    h_stop(h, y);
}

struct bad_addr {
    const char *addr;
    const char *part; /* the word the error line must contain */
};

static void test_malformed_addresses(void **state)
{
    h_ctx *h = *state;
    h_node *x = h_start(h, "x", H_END);
    const char *key = strchr(x->addr, '/') + 1;
    char typo[H_ADDR_MAX], noport[H_ADDR_MAX], bigport[H_ADDR_MAX], zeroport[H_ADDR_MAX],
        badhost[H_ADDR_MAX], badv6[H_ADDR_MAX], shortkey[H_ADDR_MAX], lead0[H_ADDR_MAX];
    snprintf(typo, sizeof typo, "%s", x->addr);
    char *last = typo + strlen(typo) - 1;
    *last = *last == 'q' ? 'p' : 'q'; /* one mistyped character of the key */
    snprintf(noport, sizeof noport, "127.0.0.1:/%s", key);
    snprintf(bigport, sizeof bigport, "127.0.0.1:99999/%s", key);
    snprintf(zeroport, sizeof zeroport, "127.0.0.1:0/%s", key);
    snprintf(lead0, sizeof lead0, "127.0.0.1:07667/%s", key);
    snprintf(badhost, sizeof badhost, "bad_host!:7667/%s", key);
    snprintf(badv6, sizeof badv6, "[::1:7667/%s", key);
    snprintf(shortkey, sizeof shortkey, "127.0.0.1:7667/chpn1qqqqqq");
    const struct bad_addr cases[] = {
        {typo, "key"},      {shortkey, "key"}, {noport, "port"},  {bigport, "port"},
        {zeroport, "port"}, {lead0, "port"},   {badhost, "host"}, {badv6, "host"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int verb = 0; verb < 2; verb++) {
            char *out = NULL, *err = NULL;
            int rc =
                h_chapar(h, x, &out, &err, "peer", verb ? "remove" : "add", cases[i].addr, H_END);
            /* The echoed address may hold anything: look after it. */
            const char *tail = strstr(err, "': ");
            if (rc != 2 || h_lines(err) != 1 || !tail || !strstr(tail, cases[i].part) ||
                strcmp(out, "") != 0)
                fail_msg("peer %s '%s': exit %d, stderr '%s', want exit 2 and one line naming "
                         "the %s",
                         verb ? "remove" : "add", cases[i].addr, rc, err, cases[i].part);
            free(out);
            free(err);
        }
    }
    /* Not an address at all. */
    char *out = NULL, *err = NULL;
    assert_int_equal(h_chapar(h, x, &out, &err, "peer", "add", "nonsense", H_END), 2);
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "HOST:PORT/"));
    free(out);
    free(err);
    /* None of it reached the daemon. */
    assert_int_equal(h_status(h, x, "peers connected"), 0);
    assert_int_equal(h_chapar(h, x, &out, NULL, "peer", "list", H_END), 0);
    assert_string_equal(out, "");
    free(out);
    h_stop(h, x);
}

static void test_no_daemon(void **state)
{
    h_ctx *h = *state;
    h_node ghost;
    memset(&ghost, 0, sizeof ghost);
    h_path(h, ghost.home, sizeof ghost.home, "nobody-home");
    const char *cmds[][3] = {
        {"status", NULL, NULL}, {"address", NULL, NULL}, {"peer", "list", NULL}};
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL, *err = NULL, want[1200];
        int rc = h_chapar(h, &ghost, &out, &err, cmds[i][0], cmds[i][1], H_END);
        snprintf(want, sizeof want,
                 "chapar: chapard is not running for %s (start it with: chapard --home %s)\n",
                 ghost.home, ghost.home);
        assert_int_equal(rc, 1);
        assert_string_equal(err, want);
        assert_string_equal(out, "");
        free(out);
        free(err);
    }
}

static void test_cli_flags(void **state)
{
    h_ctx *h = *state;
    const char *chapard = h_bin("CHAPARD"), *chapar = h_bin("CHAPAR");
    char *out = NULL, *err = NULL;

    assert_int_equal(h_run(h, &out, &err, chapard, "--help", H_END), 0);
    assert_non_null(strstr(out, "usage: chapard"));
    assert_non_null(strstr(out, "--no-discovery"));
    assert_string_equal(err, "");
    free(out);
    free(err);
    assert_int_equal(h_run(h, &out, &err, chapard, "--version", H_END), 0);
    assert_string_equal(out, "chapard 0.1.0\n");
    assert_string_equal(err, "");
    free(out);
    free(err);

    /* Bad flags: exit 2, nothing on stdout, one line on stderr naming it,
     * and no data dir created. */
    char home[300];
    h_path(h, home, sizeof home, "never");
    const char *bad[][4] = {
        {"--frobnicate", NULL, NULL, "--frobnicate"},
        {"--listen", NULL, NULL, "--listen"},
        {"--quota", "lots", NULL, "--quota"},
        {"--log-level", "loud", NULL, "--log-level"},
        {"--allow", "nonsense", NULL, "nonsense"},
        {"--listen", "garbage", NULL, "expected HOST:PORT"},
        {"--listen", "127.0.0.1:70000", NULL, "0 to 65535"},
        {"--quota", "1K", NULL, "from 1M to 64T"},
        {"--quota", "99999999G", NULL, "from 1M to 64T"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = h_run(h, &out, &err, chapard, "--home", home, "--no-discovery", bad[i][0],
                       bad[i][1], H_END);
        if (rc != 2 || h_lines(err) != 1 || !strstr(err, bad[i][3]) || strcmp(out, "") != 0)
            fail_msg("chapard %s %s: exit %d, stdout '%s', stderr '%s'; want exit 2 and one "
                     "line naming %s",
                     bad[i][0], bad[i][1] ? bad[i][1] : "", rc, out, err, bad[i][3]);
        free(out);
        free(err);
        assert_int_equal(access(home, F_OK), -1);
    }

    assert_int_equal(h_run(h, &out, &err, chapar, "--help", H_END), 0);
    assert_non_null(strstr(out, "usage: chapar"));
    free(out);
    free(err);
    assert_int_equal(h_run(h, &out, &err, chapar, "--version", H_END), 0);
    assert_string_equal(out, "chapar 0.1.0\n");
    free(out);
    free(err);
    assert_int_equal(h_run(h, &out, &err, chapar, "--home", home, "frobnicate", H_END), 2);
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "frobnicate"));
    free(out);
    free(err);
    /* --home after the command: said where it goes; a send's text may be
     * "--help" (it is not a request for help there). */
    assert_int_equal(h_run(h, &out, &err, chapar, "status", "--home", home, H_END), 2);
    assert_non_null(strstr(err, "--home goes before the command"));
    free(out);
    free(err);
    assert_int_equal(h_run(h, &out, &err, chapar, "--home", home, "send", "bob", "--help", H_END),
                     1);
    assert_non_null(strstr(err, "not running"));
    free(out);
    free(err);
    assert_int_equal(h_run(h, &out, &err, chapar, "--home", home, "contact", "bogus", H_END), 2);
    assert_non_null(strstr(err, "'bogus' is not a contact subcommand"));
    free(out);
    free(err);
    assert_int_equal(h_run(h, &out, &err, chapar, "--bogus", H_END), 2);
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "--bogus"));
    free(out);
    free(err);
}

/* A malformed --peer is bad usage like any other bad flag: exit 2, one
 * line, before a data dir, a key or a listening socket is made. */
static void test_bad_peer_flag(void **state)
{
    h_ctx *h = *state;
    char home[300], *out = NULL, *err = NULL, detail[600];
    h_path(h, home, sizeof home, "never");
    int rc = h_run(h, &out, &err, h_bin("CHAPARD"), "--home", home, "--no-discovery", "--listen",
                   "127.0.0.1:0", "--peer", "nonsense", H_END);
    snprintf(detail, sizeof detail, "exit %d, stderr '%.400s'", rc, err);
    int created = access(home, F_OK) == 0;
    free(out);
    free(err);
    if (rc != 2 || created)
        fail_msg("chapard --peer nonsense: %s; want exit 2, one line, no data dir", detail);
}

/* A user node keeps at most 12 live links (CONTROL.md). Neighbours that
 * came and went must not use up that view, or the node would refuse every
 * newcomer for ever. */
static void test_departed_peers_free_the_view(void **state)
{
    h_ctx *h = *state;
    h_node *hub = h_start(h, "hub", H_END);
    h_node *leaf[12];
    for (int i = 0; i < 12; i++) {
        char name[16];
        snprintf(name, sizeof name, "leaf%d", i);
        leaf[i] = h_start(h, name, "--peer", hub->addr, H_END);
    }
    h_expect(h, hub, "peers connected", H_EQ, 12);
    for (int i = 0; i < 12; i++)
        h_stop(h, leaf[i]);
    /* The hub notices they left (its pings go unanswered for 6 s)... */
    h_expect_(h, hub, "peers connected", H_EQ, 0, 8000, __FILE__, __LINE__);
    /* ...and takes a newcomer at once. */
    h_node *late = h_start(h, "late", "--peer", hub->addr, H_END);
    h_expect(h, late, "peers connected", H_EQ, 1);
    assert_int_equal(h_status(h, hub, "rejected view full"), 0);
    h_stop(h, late);
    h_stop(h, hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_envelope_crosses_the_line, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_peer_add_list_remove, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_peer_remove_seen_by_other_side, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_addresses, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_no_daemon, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_cli_flags, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_bad_peer_flag, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_departed_peers_free_the_view, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
