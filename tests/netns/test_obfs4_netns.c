/* test_obfs4_netns.c - two users in different network namespaces reach
 * each other only through a relay's obfs4 address (issue 17).
 *
 * Three namespaces: A (alice) and B (bob), each joined to R (the relay)
 * by its own veth pair, 10.81.1.0/24 and 10.81.2.0/24; R does not route
 * between them, and its plain listener is on R's loopback only, so the
 * one way from A or B to anything is R's obfs4 port. Alice and Bob are
 * friends, write DMs both ways and post to #lan. A capture on R's side of
 * Alice's veth (tcpdump, read with tshark) holds no ZMTP greeting and no
 * "CURVE", and the first 200 bytes of each direction pass the chi-square
 * randomness test (tests/integration/hcapture.c).
 *
 * The relay's `chapar address` names its own loopback host (the plain
 * listener's); each user dials the obfs4 line with the host replaced by
 * R's address on that user's link. Needs root, iproute2, obfs4proxy,
 * tcpdump and tshark; without them the test says SKIPPED and why. */
#include "tests/integration/harness.h"
#include "tests/integration/hcapture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ns[3][32]; /* A, B, R */

static int setup(void **state)
{
    for (int i = 0; i < 3; i++)
        snprintf(ns[i], sizeof ns[i], "chpo%c%d", "ABR"[i], (int)getpid());
    return h_setup(state);
}

static int teardown(void **state)
{
    int rc = h_teardown(state); /* the daemons first */
    for (int i = 0; i < 3; i++)
        h_sh("ip netns del %s 2>/dev/null", ns[i]);
    return rc;
}

static void need(void)
{
    const char *tools[] = {"/usr/bin/obfs4proxy", "/usr/bin/tshark"};
    for (size_t i = 0; i < 2; i++)
        if (access(tools[i], X_OK) != 0) {
            print_message("SKIPPED: %s is not installed (scripts/install-deps --test)\n", tools[i]);
            skip();
        }
    if (getuid() != 0 || h_sh("command -v ip >/dev/null && command -v tcpdump >/dev/null") != 0 ||
        h_sh("ip netns add %s 2>/dev/null", ns[2]) != 0) {
        print_message("SKIPPED: network namespaces cannot be created here (needs root, "
                      "iproute2 and tcpdump)\n");
        skip();
    }
    assert_int_equal(h_sh("ip -n %s link set lo up", ns[2]), 0);
}

/* User namespace u (0 = A, 1 = B) and its veth pair to R: 10.81.<u+1>.2
 * on the user's end (o<u>u), .1 on R's (o<u>r). */
static void link_user(int u)
{
    int v = (int)(getpid() % 1000);
    assert_int_equal(h_sh("ip netns add %s", ns[u]), 0);
    assert_int_equal(h_sh("ip link add o%d%du type veth peer name o%d%dr && "
                          "ip link set o%d%du netns %s && ip link set o%d%dr netns %s && "
                          "ip -n %s addr add 10.81.%d.2/24 dev o%d%du && "
                          "ip -n %s addr add 10.81.%d.1/24 dev o%d%dr && "
                          "ip -n %s link set o%d%du up && ip -n %s link set o%d%dr up && "
                          "ip -n %s link set lo up",
                          v, u, v, u, v, u, ns[u], v, u, ns[2], ns[u], u + 1, v, u, ns[2], u + 1, v,
                          u, ns[u], v, u, ns[2], v, u, ns[u]),
                     0);
}

/* chapard in namespace nsname for node n with the extra arguments. */
static void start_in(h_ctx *h, h_node *n, const char *nsname, const char *a1, const char *a2)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(n->log, "a", stderr) || !freopen(n->log, "a", stdout))
            _exit(126);
        /* ip netns exec sets the namespace and execs chapard (same pid) */
        execlp("ip", "ip", "netns", "exec", nsname, h_bin("CHAPARD"), "--home", n->home, "--listen",
               "127.0.0.1:0", "--no-discovery", a1, a2, (char *)NULL);
        _exit(127);
    }
    n->pid = pid;
    h_await_up(h, n);
}

/* The relay's obfs4 address with its host replaced by host. */
static void obfs4_for(h_ctx *h, const h_node *r, const char *host, char *out, size_t cap)
{
    char *s = h_await(h, r, "\nobfs4:", "address", H_END);
    const char *o = strstr(s, "\nobfs4:") + 1, *colon = strchr(o + 6, ':');
    int k = snprintf(out, cap, "obfs4:%s%.*s", host, (int)strcspn(colon, "\n"), colon);
    assert_true(k > 0 && (size_t)k < cap);
    free(s);
}

static void test_users_meet_through_obfs4(void **state)
{
    h_ctx *h = *state;
    need();
    link_user(0);
    link_user(1);
    /* A cannot reach B, nor R's plain port */
    assert_true(h_sh("ip netns exec %s ping -c1 -W1 10.81.2.2 >/dev/null 2>&1", ns[0]) != 0);

    h_node *r = h_node_get(h, "relay"), *a = h_node_get(h, "alice"), *b = h_node_get(h, "bob");
    start_in(h, r, ns[2], "--listen-obfs4", "0.0.0.0:4430");
    char oa[H_ADDR_MAX], ob[H_ADDR_MAX], aid[H_ID_LEN + 1], bid[H_ID_LEN + 1];
    obfs4_for(h, r, "10.81.1.1", oa, sizeof oa);
    obfs4_for(h, r, "10.81.2.1", ob, sizeof ob);

    char pcap[300], cap_dev[16];
    h_path(h, pcap, sizeof pcap, "obfs4.pcap");
    snprintf(cap_dev, sizeof cap_dev, "o%d0r", (int)(getpid() % 1000));
    char ns_r[40], tcpdump[256], tlog[300];
    snprintf(ns_r, sizeof ns_r, "%s", ns[2]);
    h_which("tcpdump", tcpdump, sizeof tcpdump);
    /* --immediate-mode: without it the kernel hands packets over in blocks
     * (up to a second late), and a conversation that is over in a second
     * was still in the ring when SIGINT came: "0 packets captured, 42
     * received by filter" on a quiet machine. */
    const char *argv[] = {
        "/usr/bin/ip",      "netns", "exec", ns_r, tcpdump, "-i",  cap_dev, "-n", "-U",
        "--immediate-mode", "-s",    "0",    "-w", pcap,    "tcp", NULL};
    pid_t cap = h_spawn_aux(h, "tcpdump.log", argv);
    h_path(h, tlog, sizeof tlog, "tcpdump.log");
    for (int i = 0; i < 400 && !h_file_has(tlog, "listening on"); i++)
        h_sleep_ms(25);
    assert_true(h_file_has(tlog, "listening on"));

    h_init(h, a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, b, "bob-nick", bid, "--no-passphrase", H_END);
    start_in(h, a, ns[0], "--peer", oa);
    start_in(h, b, ns[1], "--peer", ob);
    h_expect(h, r, "links obfs4", H_EQ, 2);
    h_befriend(h, a, "alice", aid, b, "bob", bid);
    h_talk(h, a, b, "from another city");
    assert_int_equal(h_status(h, r, "links tcp"), 0);

    kill(cap, SIGINT);
    assert_true(h_reap(h, cap, 10000) >= 0);
    char *text = h_tshark_payloads(h, pcap);
    struct h_flow f[8];
    int zmtp = 0, curve = 0;
    size_t nf = h_flows(text, f, 8, 4430, &zmtp, &curve);
    assert_true(nf >= 2);
    assert_false(zmtp);
    assert_false(curve);
    for (size_t i = 0; i < nf; i++) {
        double x = h_chi_square(f[i].head, f[i].n);
        print_message("obfs4 %u->%u: %zu bytes, chi-square %.1f\n", f[i].from, f[i].to, f[i].n, x);
        assert_int_equal(f[i].n, H_FLOW_HEAD);
        assert_true(x < H_CHI_LIMIT);
    }
    free(text);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users_meet_through_obfs4, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
