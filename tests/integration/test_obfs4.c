/* test_obfs4.c - links a censor cannot fingerprint (issue 17), with
 * Debian's obfs4proxy and microsocks, real chapard processes on loopback:
 *
 * - two users reach each other only through a relay's obfs4 address
 *   (`chapar address` prints it as `obfs4:HOST:PORT/chpn1…?cert=…&iat-mode=0`
 *   and `peer add` / --peer take it as it is); DMs and #lan posts flow;
 *   peer list and status name the transport. The user's PT client is
 *   killed mid-conversation: chapard starts it again, the link comes back
 *   and nothing written meanwhile is lost.
 * - a capture (tcpdump, read back with tshark) of that link holds no ZMTP
 *   greeting and no "CURVE", and the first 200 bytes of each direction
 *   pass a byte-frequency chi-square test, which a plain link fails.
 * - socks5://: a node dials the relay through microsocks.
 * - bad input: obfs4 addresses with each part mistyped, a PT binary that
 *   is not a PT (/bin/true, a script printing garbage), a SOCKS proxy that
 *   answers garbage: one clear error each, the node keeps answering.
 *
 * Without obfs4proxy, microsocks or tshark (scripts/install-deps --test),
 * or without root for the capture, a test says SKIPPED and why. */
#include "harness.h"
#include "hcapture.h"
#include "proto/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void need_tool(const char *name, const char *path)
{
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "SKIPPED: %s is not installed (scripts/install-deps --test)\n", name);
        skip();
    }
}

/* The obfs4 line of `chapar address` at r (waits for the PT server). */
static void obfs4_address(h_ctx *h, const h_node *r, char *out, size_t cap)
{
    char *s = h_await(h, r, "\nobfs4:", "address", H_END);
    assert_int_equal(h_lines(s), 2);
    char *o = strstr(s, "\nobfs4:") + 1;
    o[strcspn(o, "\n")] = '\0';
    snprintf(out, cap, "%s", o);
    free(s);
    chp_addr a;
    assert_int_equal(chp_addr_parse(out, strlen(out), &a), CHP_OK);
    assert_int_equal(a.transport, CHP_TRANSPORT_OBFS4);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.iat_mode, 0);
    assert_non_null(strstr(out, "?cert="));
    assert_non_null(strstr(out, "&iat-mode=0"));
}

static uint16_t addr_port(const char *addr)
{
    chp_addr a;
    assert_int_equal(chp_addr_parse(addr, strlen(addr), &a), CHP_OK);
    return a.port;
}

/* Relay r with an obfs4 server; alice and bob, friends, dialling only its
 * obfs4 address. */
static void obfs4_trio(h_ctx *h, h_node **r, h_node **a, h_node **b, char *oaddr, size_t cap,
                       char aid[H_ID_LEN + 1], char bid[H_ID_LEN + 1])
{
    *r = h_start(h, "relay", "--relay", "--listen-obfs4", "127.0.0.1:0", H_END);
    obfs4_address(h, *r, oaddr, cap);
    *a = h_node_get(h, "alice");
    *b = h_node_get(h, "bob");
    h_init(h, *a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, *b, "bob-nick", bid, "--no-passphrase", H_END);
    h_start(h, "alice", "--peer", oaddr, H_END);
    h_start(h, "bob", H_END);
    free(h_ok(h, *b, "peer", "add", oaddr, H_END)); /* as it is, from the CLI */
    h_expect(h, *r, "links obfs4", H_EQ, 2);
    h_expect(h, *r, "links tcp", H_EQ, 0);
    h_befriend(h, *a, "alice", aid, *b, "bob", bid);
}

/* The pid of n's obfs4proxy (its child), 0 if none. */
static pid_t pt_child(const h_node *n)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)n->pid, (int)n->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = '\0';
    return (pid_t)atoi(buf);
}

static void test_obfs4_dm_and_pt_restart(void **state)
{
    h_ctx *h = *state;
    need_tool("obfs4proxy", "/usr/bin/obfs4proxy");
    h_node *r, *a, *b;
    char oaddr[H_ADDR_MAX], aid[H_ID_LEN + 1], bid[H_ID_LEN + 1];
    obfs4_trio(h, &r, &a, &b, oaddr, sizeof oaddr, aid, bid);

    /* peer list: the address as given, and the transport */
    char *pl = h_ok(h, b, "peer", "list", H_END);
    assert_non_null(strstr(pl, oaddr));
    assert_non_null(strstr(pl, "\tobfs4\n"));
    free(pl);
    pl = h_ok(h, r, "peer", "list", H_END);
    assert_non_null(strstr(pl, "\tin\t-\t"));
    assert_null(strstr(pl, "\ttcp\n")); /* both came through the PT server */
    free(pl);
    assert_int_equal(h_status(h, a, "links obfs4"), 1);

    h_talk(h, a, b, "through obfs4");

    /* Alice's PT client dies mid-conversation. */
    pid_t pt = pt_child(a);
    assert_true(pt > 0);
    assert_int_equal(kill(pt, SIGKILL), 0);
    h_send(h, a, "bob", "written while the PT was down", NULL);
    h_send(h, b, "alice", "and an answer meanwhile", NULL);
    h_expect(h, a, "obfs4 starts", H_EQ, 2);
    h_expect(h, a, "links obfs4", H_EQ, 1);
    assert_true(pt_child(a) > 0 && pt_child(a) != pt);
    free(h_await(h, b, "written while the PT was down", "inbox", "--tsv", H_END));
    free(h_await(h, a, "and an answer meanwhile", "inbox", "--tsv", H_END));
    assert_true(h_file_has(a->log, "obfs4 client: /usr/bin/obfs4proxy exited") ||
                h_file_has(a->log, "obfs4 client: obfs4proxy exited"));

    /* The relay's PT server too: same port, same address. */
    pid_t spt = pt_child(r);
    assert_true(spt > 0);
    assert_int_equal(kill(spt, SIGKILL), 0);
    h_expect(h, r, "obfs4 starts", H_EQ, 2);
    char again[H_ADDR_MAX];
    obfs4_address(h, r, again, sizeof again);
    assert_string_equal(again, oaddr);
    h_expect(h, r, "links obfs4", H_EQ, 2);
    h_send(h, b, "alice", "after the server came back", NULL);
    free(h_await(h, a, "after the server came back", "inbox", "--tsv", H_END));
    spt = pt_child(r);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
    assert_true(kill(spt, 0) != 0); /* chapard took its PT with it */
}

/* ---- the capture ---- */

static void test_capture_looks_random(void **state)
{
    h_ctx *h = *state;
    need_tool("obfs4proxy", "/usr/bin/obfs4proxy");
    need_tool("tshark", "/usr/bin/tshark");
    h_node *r = h_start(h, "relay", "--relay", "--listen-obfs4", "127.0.0.1:0", H_END);
    char oaddr[H_ADDR_MAX];
    obfs4_address(h, r, oaddr, sizeof oaddr);
    /* the capture sees the obfs4 port and the relay's plain one */
    h_node obfs = {.port = addr_port(oaddr)};
    h_node *const ports[] = {r, &obfs};
    char pcap[300], why[600];
    pid_t cap = h_capture_start(h, ports, 2, pcap, sizeof pcap, why, sizeof why);
    if (!cap) {
        fprintf(stderr, "SKIPPED: %s\n", why);
        skip();
    }
    h_node *a = h_start(h, "a", "--peer", oaddr, H_END);
    h_node *p = h_start(h, "p", "--peer", r->addr, H_END); /* the plain link, for contrast */
    h_expect(h, r, "links obfs4", H_EQ, 1);
    h_expect(h, r, "links tcp", H_EQ, 1);
    h_expect(h, a, "peers connected", H_EQ, 1);
    h_sleep_ms(300); /* a HELLO each way and a sync */
    size_t len;
    free(h_capture_stop(h, cap, pcap, &len));
    char *text = h_tshark_payloads(h, pcap);

    struct h_flow f[8];
    int zmtp = 0, curve = 0;
    size_t nf = h_flows(text, f, 8, obfs.port, &zmtp, &curve);
    assert_int_equal(nf, 2); /* one connection, both directions */
    assert_false(zmtp);
    assert_false(curve);
    for (size_t i = 0; i < nf; i++) {
        double x = h_chi_square(f[i].head, f[i].n);
        h_note(h, "obfs4 %u->%u: %zu bytes, chi-square %.1f", f[i].from, f[i].to, f[i].n, x);
        assert_int_equal(f[i].n, H_FLOW_HEAD);
        assert_true(x < H_CHI_LIMIT);
    }
    free(text);
    /* the plain link, read the same way, is plainly ZMTP and not random */
    text = h_tshark_payloads(h, pcap);
    zmtp = curve = 0;
    nf = h_flows(text, f, 8, r->port, &zmtp, &curve);
    assert_true(nf >= 2);
    assert_true(zmtp && curve);
    for (size_t i = 0; i < nf; i++) {
        double x = h_chi_square(f[i].head, f[i].n);
        h_note(h, "plain %u->%u: %zu bytes, chi-square %.1f", f[i].from, f[i].to, f[i].n, x);
        assert_true(x > H_CHI_LIMIT);
    }
    free(text);
    h_stop(h, a);
    h_stop(h, p);
    h_stop(h, r);
}

/* ---- socks5:// ---- */

/* A free loopback TCP port (bound, then let go). */
static uint16_t free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof in;
    assert_int_equal(bind(s, (struct sockaddr *)&in, sizeof in), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&in, &sl), 0);
    close(s);
    return ntohs(in.sin_port);
}

static void test_socks5(void **state)
{
    h_ctx *h = *state;
    need_tool("microsocks", "/usr/bin/microsocks");
    char port[8], addr[H_ADDR_MAX + 40];
    snprintf(port, sizeof port, "%u", (unsigned)free_port());
    const char *argv[] = {"/usr/bin/microsocks", "-i", "127.0.0.1", "-p", port, NULL};
    h_spawn_aux(h, "microsocks.log", argv);
    h_node *r = h_start(h, "relay", "--relay", H_END);
    h_node *a = h_start(h, "a", H_END);
    snprintf(addr, sizeof addr, "socks5://127.0.0.1:%s/%s", port, r->addr);
    /* microsocks may not listen yet: libzmq retries the proxy */
    free(h_ok(h, a, "peer", "add", addr, H_END));
    h_expect(h, a, "links socks5", H_EQ, 1);
    h_expect(h, r, "peers connected", H_EQ, 1);
    char *pl = h_ok(h, a, "peer", "list", H_END);
    assert_non_null(strstr(pl, addr));
    assert_non_null(strstr(pl, "\tsocks5\n"));
    free(pl);
    h_mkenv(h, "env", 1, H_END);
    h_publish(h, r, "env", 0, NULL);
    h_expect(h, a, "envelopes stored", H_EQ, 1);
    h_stop(h, a);
    h_stop(h, r);
}

/* ---- bad input ---- */

#define CERT "otZm7cKcMEwW22+/i+7Rk3eQjQmtutXtm6rslilwkFGaPN+17xXwycBfNUpnOI13zce4Gg"

static void refused(h_ctx *h, const h_node *n, const char *addr, const char *part)
{
    char *err = NULL;
    assert_int_equal(h_chapar(h, n, NULL, &err, "peer", "add", addr, H_END), 2);
    const char *why = strstr(err, "': "); /* after the address it quotes */
    if (!why || !strstr(why, part) || h_lines(err) != 1)
        fail_msg("peer add %s: expected one line naming '%s', got: %s", addr, part, err);
    free(err);
}

/* A TCP server on loopback that answers anything with garbage. */
static uint16_t garbage_proxy(h_ctx *h)
{
    uint16_t p = free_port();
    char code[400];
    snprintf(code, sizeof code,
             "import socket\n"
             "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "s.bind(('127.0.0.1', %u)); s.listen(8)\n"
             "while True:\n"
             "    c,_=s.accept(); c.recv(64); c.sendall(b'\\x47\\x41\\x52\\x42' * 64); c.close()\n",
             (unsigned)p);
    const char *argv[] = {"/usr/bin/python3", "-c", code, NULL};
    h_spawn_aux(h, "garbage.log", argv);
    return p;
}

static int node_answers(h_ctx *h, const h_node *n)
{
    return h_status(h, n, "uptime") >= 0;
}

static void test_bad_input(void **state)
{
    h_ctx *h = *state;
    h_node *r = h_start(h, "relay", "--relay", H_END);
    /* every obfs4 client here runs a binary that is not a PT */
    h_node *a = h_node_get(h, "a");
    assert_int_equal(h_sh("mkdir -p %s", a->home), 0);
    h_write_file(h, "a/chapard.conf", "transport obfs4 = /bin/true\n", 28);
    h_start(h, "a", H_END);
    char k[H_ADDR_MAX], s[H_ADDR_MAX * 2];
    snprintf(k, sizeof k, "%s", r->key);
    const char *args = "?cert=" CERT "&iat-mode=0";
    snprintf(s, sizeof s, "obfs4:bad_host:443/%s%s", k, args);
    refused(h, a, s, "host");
    snprintf(s, sizeof s, "obfs4:127.0.0.1:0/%s%s", k, args);
    refused(h, a, s, "port");
    snprintf(s, sizeof s, "obfs4:127.0.0.1:443/%s%s", k, args);
    s[strlen("obfs4:127.0.0.1:443/") + 12] ^= 1; /* a typo in the key */
    refused(h, a, s, "key");
    snprintf(s, sizeof s, "obfs4:127.0.0.1:443/%s?cert=%.69s&iat-mode=0", k, CERT);
    refused(h, a, s, "cert");
    snprintf(s, sizeof s, "obfs4:127.0.0.1:443/%s?cert=%s&iat-mode=5", k, CERT);
    refused(h, a, s, "iat-mode");
    snprintf(s, sizeof s, "socks5://127.0.0.1/%s", r->addr);
    refused(h, a, s, "proxy");

    /* A well-formed obfs4 address: the "PT" exits at once, chapard says so
     * and keeps going. */
    snprintf(s, sizeof s, "obfs4:127.0.0.1:9/%s%s", k, args);
    free(h_ok(h, a, "peer", "add", s, H_END));
    char *why = h_await(h, a, "waiting for the obfs4 client", "peer", "list", H_END);
    free(why);
    struct {
        const char *path, *text;
    } want = {a->log, "/bin/true exited without speaking the PT protocol"};
    for (int i = 0; i < 200 && !h_file_has(want.path, want.text); i++)
        h_sleep_ms(25);
    assert_true(h_file_has(want.path, want.text));
    assert_true(h_status_has(h, a, "obfs4 client: failed\n") ||
                h_status_has(h, a, "obfs4 client: starting\n"));

    /* A script that prints garbage, on a node of its own. */
    h_node *g = h_node_get(h, "g");
    assert_int_equal(h_sh("mkdir -p %s", g->home), 0);
    static const char script[] = "#!/bin/sh\necho 'hello from some program'\nsleep 30\n";
    char *sp = h_write_file(h, "garbage-pt.sh", script, sizeof script - 1);
    assert_int_equal(h_sh("chmod +x %s", sp), 0);
    char conf[400];
    int cl = snprintf(conf, sizeof conf, "transport obfs4 = %s\n", sp);
    h_write_file(h, "g/chapard.conf", conf, (size_t)cl);
    h_start(h, "g", "--relay", "--listen-obfs4", "127.0.0.1:0", H_END);
    for (int i = 0; i < 200 && !h_file_has(g->log, "is not a pluggable transport"); i++)
        h_sleep_ms(25);
    assert_true(h_file_has(g->log, "it printed 'hello from some program' instead of 'VERSION 1'"));
    char *addrs = h_ok(h, g, "address", H_END);
    assert_int_equal(h_lines(addrs), 1); /* no obfs4 address without a PT */
    free(addrs);

    /* A SOCKS proxy that answers garbage: the link never comes up, the
     * node's loop goes on. */
    uint16_t gp = garbage_proxy(h);
    snprintf(s, sizeof s, "socks5://127.0.0.1:%u/%s", (unsigned)gp, r->addr);
    free(h_ok(h, a, "peer", "add", s, H_END));
    for (int i = 0; i < 20; i++) {
        assert_true(node_answers(h, a));
        h_sleep_ms(50);
    }
    assert_int_equal(h_status(h, a, "links socks5"), 0);
    assert_int_equal(h_status(h, r, "peers connected"), 0);
    h_stop(h, a);
    h_stop(h, g);
    h_stop(h, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_obfs4_dm_and_pt_restart, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_capture_looks_random, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_socks5, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
