/* test_discovery.c - two chapard processes in two network namespaces joined
 * by a veth pair find each other with no --peer (LAN discovery) and pass an
 * envelope. Needs root and iproute2; where namespaces cannot be created the
 * test says so and is skipped (ctest shows it as skipped, never passed). */
#define _DEFAULT_SOURCE /* SO_REUSEPORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/common/clock.h"
#include "proto/addr.h"
#include "proto/buf.h"
#include "proto/hex.h"
#include "tests/integration/harness.h" /* h_sleep_ms, h_read_file */

static char ns_a[32], ns_b[32], dir[64];
static pid_t pa = -1, pb = -1;
static const char *lan_seconds; /* CHAPAR_LAN_KEY_SECONDS for the nodes started */

/* The whole stdout of `chapar --home HOME ARGS` run inside ns (malloc'd,
 * NUL-terminated; empty when it fails). */
static char *chapar_in(const char *ns, const char *home, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ip netns exec %s %s --home %s %s 2>/dev/null", ns, getenv("CHAPAR"),
             home, args);
    FILE *p = popen(cmd, "r");
    chp_buf out = {0};
    char chunk[512];
    size_t k;
    while (p && (k = fread(chunk, 1, sizeof chunk, p)) > 0)
        assert_int_equal(chp_buf_put(&out, chunk, k), CHP_OK);
    if (p)
        pclose(p);
    assert_int_equal(chp_buf_put(&out, "", 1), CHP_OK);
    return (char *)out.p;
}

/* The value of `key: value` in `chapar status` run inside ns; -1 if none. */
static long status_key(const char *ns, const char *home, const char *key)
{
    char *out = chapar_in(ns, home, "status");
    long long v = h_status_value(out, key);
    free(out);
    return (long)v;
}

/* Polls status_key every step_ms until it reaches want or ms pass;
 * returns the last value. */
static long wait_key(const char *ns, const char *home, const char *key, long want, long ms,
                     int step_ms)
{
    uint64_t t0 = chp_mono_ms();
    long v;
    while ((v = status_key(ns, home, key)) < want && chp_mono_ms() - t0 < (uint64_t)ms)
        h_sleep_ms(step_ms);
    return v;
}

/* The first line of `chapar ARGS` in ns, without its newline. */
static void first_line(const char *ns, const char *home, const char *args, char *out, size_t cap)
{
    char *all = chapar_in(ns, home, args);
    all[strcspn(all, "\r\n")] = '\0';
    snprintf(out, cap, "%s", all);
    free(all);
}

static const char *allow; /* --allow for the nodes started, NULL none */

static pid_t start(const char *ns, const char *home, const char *log, const char *listen)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "a", stderr))
            _exit(126);
        if (lan_seconds)
            setenv("CHAPAR_LAN_KEY_SECONDS", lan_seconds, 1);
        if (allow)
            execlp("ip", "ip", "netns", "exec", ns, getenv("CHAPARD"), "--home", home, "--listen",
                   listen, "--allow", allow, (char *)NULL);
        execlp("ip", "ip", "netns", "exec", ns, getenv("CHAPARD"), "--home", home, "--listen",
               listen, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int setup(void **state)
{
    (void)state;
    snprintf(ns_a, sizeof ns_a, "chpA%d", (int)getpid());
    snprintf(ns_b, sizeof ns_b, "chpB%d", (int)getpid());
    snprintf(dir, sizeof dir, "/tmp/chapar-netns-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (pa > 0) {
        kill(pa, SIGTERM);
        waitpid(pa, NULL, 0);
    }
    if (pb > 0) {
        kill(pb, SIGTERM);
        waitpid(pb, NULL, 0);
    }
    pa = pb = -1;
    lan_seconds = NULL;
    allow = NULL;
    h_sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; rm -rf %s", ns_a, ns_b, dir);
    return 0;
}

static void need_netns(void)
{
    if (getuid() != 0 || h_sh("command -v ip >/dev/null") != 0 ||
        h_sh("ip netns add %s 2>/dev/null", ns_a) != 0) {
        print_message("SKIPPED: network namespaces cannot be created here (needs root and "
                      "iproute2); .ci/run runs as root and installs iproute2\n");
        skip();
    }
}

/* ns_b, and a veth pair <p>a<v> in ns_a and <p>b<v> in ns_b, both ends
 * and both loopbacks up. With net ("10.77.0"), net.1/24 on A's end and
 * net.2/24 on B's; without, no IPv4 at all and no duplicate address
 * detection, so the IPv6 link-local addresses are usable at once. */
static void make_lan(char p, int v, const char *net)
{
    assert_int_equal(h_sh("ip netns add %s", ns_b), 0);
    if (!net)
        assert_int_equal(h_sh("ip netns exec %s sysctl -qw net.ipv6.conf.default.accept_dad=0 && "
                              "ip netns exec %s sysctl -qw net.ipv6.conf.default.accept_dad=0",
                              ns_a, ns_b),
                         0);
    assert_int_equal(h_sh("ip link add %ca%d type veth peer name %cb%d && "
                          "ip link set %ca%d netns %s && ip link set %cb%d netns %s",
                          p, v, p, v, p, v, ns_a, p, v, ns_b),
                     0);
    if (net)
        assert_int_equal(h_sh("ip -n %s addr add %s.1/24 brd + dev %ca%d && "
                              "ip -n %s addr add %s.2/24 brd + dev %cb%d",
                              ns_a, net, p, v, ns_b, net, p, v),
                         0);
    assert_int_equal(h_sh("ip -n %s link set %ca%d up && ip -n %s link set %cb%d up && "
                          "ip -n %s link set lo up && ip -n %s link set lo up",
                          ns_a, p, v, ns_b, p, v, ns_a, ns_b),
                     0);
}

/* Home dirs and logs of the two nodes of a test: DIR/<a>, DIR/<b>. */
typedef struct homes {
    char ha[128], hb[128], la[128], lb[128];
} homes;

static void homes_init(homes *o, const char *a, const char *b)
{
    snprintf(o->ha, sizeof o->ha, "%s/%s", dir, a);
    snprintf(o->hb, sizeof o->hb, "%s/%s", dir, b);
    snprintf(o->la, sizeof o->la, "%s/%s.log", dir, a);
    snprintf(o->lb, sizeof o->lb, "%s/%s.log", dir, b);
}

/* `chapar debug publish PATH` at A's node; asserts it succeeds. */
static void publish_at_a(const homes *o, const char *path)
{
    assert_int_equal(h_sh("ip netns exec %s %s --home %s debug publish %s >/dev/null", ns_a,
                          getenv("CHAPAR"), o->ha, path),
                     0);
}

static void test_discovery(void **state)
{
    (void)state;
    need_netns();
    make_lan('v', (int)(getpid() % 10000), "10.77.0");
    homes o;
    char env[128];
    homes_init(&o, "a", "b");
    uint64_t t0 = chp_mono_ms();
    pa = start(ns_a, o.ha, o.la, "0.0.0.0:7667");
    pb = start(ns_b, o.hb, o.lb, "0.0.0.0:7667");
    /* They must link through beacons alone, within a few seconds. */
    long up = wait_key(ns_b, o.hb, "peers connected", 1, 10000, 50);
    print_message("linked after %llu ms\n", (unsigned long long)(chp_mono_ms() - t0));
    assert_true(up >= 1);
    /* The link came from a beacon: at least one side heard the other's. */
    assert_true(status_key(ns_a, o.ha, "beacons received") +
                    status_key(ns_b, o.hb, "beacons received") >=
                1);

    snprintf(env, sizeof env, "%s/env", dir);
    assert_int_equal(h_sh("%s %s >/dev/null", getenv("CHAPAR_MKENV"), env), 0);
    snprintf(env, sizeof env, "%s/env0", dir);
    publish_at_a(&o, env);
    assert_int_equal(wait_key(ns_b, o.hb, "envelopes stored", 1, 5000, 20), 1);
}

/* A bare LAN with no DHCP server: no IPv4 address at all, only the IPv6
 * link-local ones every interface gets. The nodes must still find each
 * other (multicast beacons) and dial [fe80::...%iface]. */
static void test_discovery_ipv6_link_local(void **state)
{
    (void)state;
    need_netns();
    if (h_sh("test -e /proc/net/if_inet6") != 0) {
        print_message("SKIPPED: this kernel has no IPv6\n");
        skip();
    }
    int v = (int)(getpid() % 10000) + 1;
    make_lan('w', v, NULL);
    uint64_t t0 = chp_mono_ms();
    while (chp_mono_ms() - t0 < 5000 &&
           h_sh("ip -n %s -6 addr show dev wb%d scope link | grep -q 'inet6 fe80' && "
                "! ip -n %s -6 addr show dev wb%d | grep -q tentative",
                ns_b, v, ns_b, v) != 0)
        h_sleep_ms(50);
    assert_int_equal(h_sh("ip -n %s -4 addr show dev wa%d | grep -q inet", ns_a, v), 1);
    homes o;
    char env[128], peers[1024];
    homes_init(&o, "a6", "b6");
    t0 = chp_mono_ms();
    pa = start(ns_a, o.ha, o.la, "[::]:7667");
    pb = start(ns_b, o.hb, o.lb, "[::]:7667");
    long up = wait_key(ns_b, o.hb, "peers connected", 1, 10000, 50);
    print_message("linked over IPv6 link-local after %llu ms\n",
                  (unsigned long long)(chp_mono_ms() - t0));
    assert_true(up >= 1);
    first_line(ns_b, o.hb, "peer list", peers, sizeof peers);
    first_line(ns_a, o.ha, "peer list", peers + strlen(peers), sizeof peers - strlen(peers));
    assert_non_null(strstr(peers, "[fe80::"));
    assert_non_null(strstr(peers, "%w"));
    snprintf(env, sizeof env, "%s/env6", dir);
    assert_int_equal(h_sh("%s %s >/dev/null", getenv("CHAPAR_MKENV"), env), 0);
    snprintf(env, sizeof env, "%s/env60", dir);
    publish_at_a(&o, env);
    assert_int_equal(wait_key(ns_b, o.hb, "envelopes stored", 1, 5000, 20), 1);
}

/* The spoofer (run as `test_discovery --spoof SRC BCAST PORT SECONDS` in
 * a namespace): 300 beacons a second from SRC to BCAST, each with a
 * random key and port, as the review's attacker sent. */
static int spoof(const char *src, const char *bcast, int port, int seconds)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    struct sockaddr_in me = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &me.sin_addr);
    inet_pton(AF_INET, bcast, &to.sin_addr);
    to.sin_port = htons((uint16_t)port);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&me, sizeof me) != 0)
        return 1;
    FILE *r = fopen("/dev/urandom", "rb");
    uint64_t end = chp_mono_ms() + (uint64_t)seconds * 1000u;
    while (r && chp_mono_ms() < end) {
        for (int i = 0; i < 30; i++) {
            uint8_t b[40] = {'C', 'H', 'P', 'B', 1, 0};
            if (fread(b + 6, 1, 34, r) != 34)
                return 1;
            if (!b[6] && !b[7])
                b[7] = 1;
            (void)sendto(fd, b, sizeof b, 0, (struct sockaddr *)&to, sizeof to);
        }
        h_sleep_ms(100);
    }
    return 0;
}

/* Finding 8: beacons at 300/s with random keys used to fill the six
 * discovered slots with dead addresses for good (and the passive view
 * with junk), so two honest nodes on the LAN stayed at 0 peers. A beacon
 * now only makes a candidate; one heard twice the same is dialled, and
 * takes a slot only once its handshake succeeds. */
static void test_discovery_spoofed_beacons(void **state)
{
    (void)state;
    need_netns();
    int veth = (int)(getpid() % 10000) + 2;
    make_lan('x', veth, "10.78.0");
    /* A second address on each side, for the spoofers. */
    assert_int_equal(h_sh("ip -n %s addr add 10.78.0.3/24 brd + dev xa%d && "
                          "ip -n %s addr add 10.78.0.4/24 brd + dev xb%d",
                          ns_a, veth, ns_b, veth),
                     0);
    homes o;
    char self[64];
    homes_init(&o, "sa", "sb");
    snprintf(self, sizeof self, "/proc/%d/exe", (int)getpid());
    /* One spoofer on each side: every node hears the junk. */
    pid_t sp[2];
    for (int i = 0; i < 2; i++)
        if ((sp[i] = fork()) == 0) {
            execlp("ip", "ip", "netns", "exec", i ? ns_b : ns_a, self, "--spoof",
                   i ? "10.78.0.4" : "10.78.0.3", "10.78.0.255", "7668", "25", (char *)NULL);
            _exit(127);
        }
    h_sleep_ms(500);
    uint64_t t0 = chp_mono_ms();
    pa = start(ns_a, o.ha, o.la, "0.0.0.0:7667");
    pb = start(ns_b, o.hb, o.lb, "0.0.0.0:7667");
    long up = wait_key(ns_b, o.hb, "peers connected", 1, 15000, 100);
    print_message("linked after %llu ms among 300 spoofed beacons/s; beacons heard %ld\n",
                  (unsigned long long)(chp_mono_ms() - t0),
                  status_key(ns_b, o.hb, "beacons received"));
    long passive = status_key(ns_b, o.hb, "passive peers");
    long heard = status_key(ns_b, o.hb, "beacons received");
    for (int i = 0; i < 2; i++) {
        kill(sp[i], SIGTERM);
        waitpid(sp[i], NULL, 0);
    }
    assert_true(up >= 1);
    assert_true(heard > 100);
    assert_int_equal(passive, 0); /* no junk in the passive view either */
}

/* The capturer (run as `test_discovery --capture SRC PORT SECONDS FILE` in
 * a namespace): every beacon from SRC heard on PORT, as one line
 * "KEYHEX PORT", as any machine on the LAN could log them. */
static int capture(const char *src, int port, int seconds, const char *file)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct in_addr want;
    inet_pton(AF_INET, src, &want);
    FILE *out = fopen(file, "w");
    struct timeval tv = {0, 200000};
    if (fd < 0 || !out || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
        bind(fd, (struct sockaddr *)&me, sizeof me) != 0)
        return 1;
    uint64_t end = chp_mono_ms() + (uint64_t)seconds * 1000u;
    while (chp_mono_ms() < end) {
        uint8_t b[64];
        char hex[65];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(fd, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
        if (r != 40 || from.sin_addr.s_addr != want.s_addr || memcmp(b, "CHPB", 4) != 0)
            continue;
        chp_hex_encode(b + 8, 32, hex);
        fprintf(out, "%s %u\n", hex, (unsigned)(b[6] << 8 | b[7]));
        fflush(out);
    }
    return 0;
}

/* Distinct "KEYHEX PORT" lines of the capture file, in order heard. */
static size_t captured(const char *file, char keys[][65], uint16_t *ports, size_t cap)
{
    FILE *f = fopen(file, "r");
    char line[128];
    size_t n = 0;
    while (f && fgets(line, sizeof line, f)) {
        char k[65];
        unsigned p;
        if (sscanf(line, "%64s %u", k, &p) != 2)
            continue;
        int seen = 0;
        for (size_t i = 0; i < n && !seen; i++)
            seen = !strcmp(keys[i], k);
        if (!seen && n < cap) {
            snprintf(keys[n], 65, "%s", k);
            ports[n++] = (uint16_t)p;
        }
    }
    if (f)
        fclose(f);
    return n;
}

/* Polls the capture file until it holds more than `than` distinct keys or
 * ms pass; returns how many it holds. */
static size_t wait_captured(const char *file, char keys[][65], uint16_t *ports, size_t than,
                            long ms)
{
    uint64_t t0 = chp_mono_ms();
    size_t nk;
    while ((nk = captured(file, keys, ports, 16)) <= than && chp_mono_ms() - t0 < (uint64_t)ms)
        h_sleep_ms(100);
    return nk;
}

/* `chapar address` of the node in ns: its transport key, in hex. */
static int permanent_key(const char *ns, const char *home, char hex[65])
{
    char line[512];
    chp_addr a;
    first_line(ns, home, "address", line, sizeof line);
    if (chp_addr_parse(line, strlen(line), &a) != CHP_OK)
        return 0;
    chp_hex_encode(a.key, 32, hex);
    return 1;
}

/* Finding 11: beacons carried the node's permanent transport key, a
 * tracking id on every LAN. A user node now beacons the key and port of a
 * LAN listener that is new at each start, rotates (here every 6 s) and
 * when the machine's addresses change, dials discovered nodes with that
 * key, and still links and carries envelopes across a rotation. */
static void test_discovery_beacon_rotates(void **state)
{
    (void)state;
    need_netns();
    int veth = (int)(getpid() % 10000) + 3;
    make_lan('y', veth, "10.79.0");
    homes o;
    char env[128], cap[128], self[64], perm[65] = "";
    homes_init(&o, "ra", "rb");
    snprintf(env, sizeof env, "%s/renv", dir);
    snprintf(cap, sizeof cap, "%s/beacons", dir);
    snprintf(self, sizeof self, "/proc/%d/exe", (int)getpid());
    assert_int_equal(h_sh("%s -n 2 %s >/dev/null", getenv("CHAPAR_MKENV"), env), 0);
    pid_t cp = fork();
    if (cp == 0) {
        execlp("ip", "ip", "netns", "exec", ns_b, self, "--capture", "10.79.0.1", "7668", "60", cap,
               (char *)NULL);
        _exit(127);
    }
    h_sleep_ms(300);
    lan_seconds = "6";
    pa = start(ns_a, o.ha, o.la, "0.0.0.0:7667");
    pb = start(ns_b, o.hb, o.lb, "0.0.0.0:7667");
    assert_true(wait_key(ns_b, o.hb, "peers connected", 1, 10000, 50) >= 1);
    assert_true(permanent_key(ns_a, o.ha, perm));
    char keys[16][65];
    uint16_t ports[16];
    size_t nk = captured(cap, keys, ports, 16);
    assert_true(nk >= 1);
    /* a forced rotation: a second key from the same node */
    uint64_t t0 = chp_mono_ms();
    nk = wait_captured(cap, keys, ports, 1, 12000);
    print_message("%zu beacon keys after %llu ms\n", nk, (unsigned long long)(chp_mono_ms() - t0));
    assert_true(nk >= 2);
    /* after the rotation the nodes are linked and an envelope flows */
    h_sleep_ms(1500);
    assert_true(wait_key(ns_b, o.hb, "peers connected", 1, 10000, 50) >= 1);
    snprintf(env, sizeof env, "%s/renv0", dir);
    publish_at_a(&o, env);
    assert_int_equal(wait_key(ns_b, o.hb, "envelopes stored", 1, 8000, 50), 1);
    /* a restart: a key never announced before */
    size_t before = captured(cap, keys, ports, 16);
    kill(pa, SIGTERM);
    waitpid(pa, NULL, 0);
    lan_seconds = NULL;
    pa = start(ns_a, o.ha, o.la, "0.0.0.0:7667");
    nk = wait_captured(cap, keys, ports, before, 8000);
    assert_true(nk > before);
    assert_true(wait_key(ns_b, o.hb, "peers connected", 1, 10000, 50) >= 1);
    snprintf(env, sizeof env, "%s/renv1", dir);
    publish_at_a(&o, env);
    assert_int_equal(wait_key(ns_b, o.hb, "envelopes stored", 2, 8000, 50), 2);
    /* joining another network (an address comes or goes) is a new key at
     * once, not up to an hour later (this node rotates hourly now) */
    before = captured(cap, keys, ports, 16);
    assert_int_equal(h_sh("ip -n %s addr add 10.80.0.1/24 dev ya%d", ns_a, veth), 0);
    nk = wait_captured(cap, keys, ports, before, 5000);
    assert_true(nk > before);
    kill(cp, SIGTERM);
    waitpid(cp, NULL, 0);
    /* nothing the LAN heard names the permanent key or port */
    for (size_t i = 0; i < nk; i++) {
        print_message("beacon key %.16s... port %u\n", keys[i], (unsigned)ports[i]);
        assert_string_not_equal(keys[i], perm);
        assert_int_not_equal(ports[i], 7667);
    }
}

/* With LAN keys, a friends-only node (--allow) is still friends-only: a
 * node reaching its LAN listener with a LAN key is a stranger, refused,
 * and the friend on the list still links by dialling its address. */
static void test_discovery_allow_list(void **state)
{
    (void)state;
    need_netns();
    make_lan('z', (int)(getpid() % 10000) + 4, "10.81.0");
    homes o;
    char aaddr[512] = "", baddr[512] = "";
    homes_init(&o, "wa", "wb");
    pa = start(ns_a, o.ha, o.la, "0.0.0.0:7667");
    uint64_t t0 = chp_mono_ms();
    while (chp_mono_ms() - t0 < 5000 && !aaddr[0]) {
        first_line(ns_a, o.ha, "address", aaddr, sizeof aaddr);
        h_sleep_ms(50);
    }
    assert_true(aaddr[0] != '\0');
    allow = aaddr; /* B is friends-only: A's transport key alone */
    pb = start(ns_b, o.hb, o.lb, "0.0.0.0:7667");
    allow = NULL;
    long refused = wait_key(ns_b, o.hb, "rejected not allowed", 1, 10000, 100);
    assert_true(refused >= 1); /* A's LAN key at B's LAN listener: a stranger */
    assert_true(status_key(ns_b, o.hb, "peers connected") < 1);
    first_line(ns_b, o.hb, "address", baddr, sizeof baddr);
    assert_non_null(strstr(baddr, "10.81.0.2:7667/"));
    assert_int_equal(h_sh("ip netns exec %s %s --home %s peer add %s >/dev/null", ns_a,
                          getenv("CHAPAR"), o.ha, baddr),
                     0);
    long up = wait_key(ns_b, o.hb, "peers connected", 1, 10000, 100);
    assert_true(up >= 1); /* the friend, by address, with its transport key */
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "--capture"))
        return capture(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5]);
    if (argc == 6 && !strcmp(argv[1], "--spoof"))
        return spoof(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (!getenv("CHAPARD") || !getenv("CHAPAR") || !getenv("CHAPAR_MKENV")) {
        fprintf(stderr, "set CHAPARD, CHAPAR and CHAPAR_MKENV (ctest does)\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_ipv6_link_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_spoofed_beacons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_beacon_rotates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_allow_list, setup, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
