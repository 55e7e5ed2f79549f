/* discovery.c - LAN discovery: a UDP broadcast beacon about every second
 * carrying the node's listen port and transport key; nodes dial what they
 * hear. A beacon is not trusted for identity: the key it names is the one
 * the CURVE handshake must then prove, so a spoofed beacon can at worst
 * make a node try a connection that fails, never talk to a wrong key.
 *
 * Beacon (PROTOCOL.md §17): "CHPB" | version u8 (1) | flags u8 | port u16 |
 * transport key [32]  = 40 bytes. */
#define _DEFAULT_SOURCE /* SO_REUSEPORT, IFF_* flags, SOCK_NONBLOCK */
#include "crypto.h"
#include "cursor.h"
#include "log.h"
#include "node_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BEACON_LEN 40
#define BEACON_MS  1000
/* Discovered neighbours dialled at most: a bounded active view even when
 * the whole LAN answers (the rest stay reachable through them). */
#define DISCOVERED_MAX 6

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int chp_discovery_open(chp_node *n, uint16_t port)
{
    int one = 1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return CHP_E_IO;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        chp_warn("LAN discovery off: cannot use UDP port %u: %s", port, strerror(errno));
        close(fd);
        return CHP_E_IO;
    }
    n->disc_fd = fd;
    n->disc_port = port;
    n->next_beacon = 0;
    chp_info("LAN discovery on UDP port %u", port);
    return CHP_OK;
}

void chp_discovery_close(chp_node *n)
{
    if (n->disc_fd >= 0)
        close(n->disc_fd);
    n->disc_fd = -1;
}

static void send_to_addr(chp_node *n, const uint8_t *b, uint32_t ip)
{
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(n->disc_port);
    to.sin_addr.s_addr = ip;
    if (sendto(n->disc_fd, b, BEACON_LEN, 0, (struct sockaddr *)&to, sizeof to) < 0)
        chp_debug("beacon to %s: %s", inet_ntoa(to.sin_addr), strerror(errno));
}

/* One beacon to every broadcast-capable interface, and to the limited
 * broadcast address for interfaces without one configured. */
static void beacon(chp_node *n)
{
    uint8_t b[BEACON_LEN];
    memcpy(b, "CHPB", 4);
    b[4] = 1;
    b[5] = n->relay ? 1 : 0;
    b[6] = (uint8_t)(n->port >> 8);
    b[7] = (uint8_t)n->port;
    memcpy(b + 8, n->tpk, 32);
    struct ifaddrs *ifs = NULL;
    int sent = 0;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
                !(i->ifa_flags & IFF_BROADCAST) || !(i->ifa_flags & IFF_UP) || !i->ifa_broadaddr)
                continue;
            send_to_addr(n, b, ((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr.s_addr);
            sent++;
        }
        freeifaddrs(ifs);
    }
    if (!sent)
        send_to_addr(n, b, htonl(INADDR_BROADCAST));
}

static size_t discovered(const chp_node *n)
{
    size_t c = 0;
    for (size_t i = 0; i < CHP_NODE_LINKS_MAX; i++)
        if (n->links[i].used && n->links[i].discovered)
            c++;
    return c;
}

void chp_discovery_recv(chp_node *n)
{
    for (int k = 0; k < 64; k++) {
        uint8_t b[64];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(n->disc_fd, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
        if (r < 0)
            return;
        if (r != BEACON_LEN || memcmp(b, "CHPB", 4) != 0 || b[4] != 1) {
            n->ctr.beacons_bad++;
            continue;
        }
        uint16_t port = (uint16_t)((b[6] << 8) | b[7]);
        const uint8_t *key = b + 8;
        if (port == 0 || !memcmp(key, n->tpk, 32))
            continue; /* our own beacon, or a node that does not listen */
        n->ctr.beacons_rx++;
        if (chp_link_known(n, key) || discovered(n) >= DISCOVERED_MAX ||
            chp_link_banned(n, key, now_ms()))
            continue;
        chp_addr a;
        memset(&a, 0, sizeof a);
        snprintf(a.host, sizeof a.host, "%s", inet_ntoa(from.sin_addr));
        a.port = port;
        memcpy(a.key, key, 32);
        char s[CHP_ADDR_STR_MAX + 1];
        if (chp_addr_format(&a, s, sizeof s) == CHP_OK &&
            chp_link_add_address(n, s, strlen(s), 0) == CHP_OK) {
            chp_link_mark_discovered(n, key);
            chp_info("discovered %s on the LAN", s);
        }
    }
}

uint64_t chp_discovery_due(chp_node *n, uint64_t t)
{
    if (n->disc_fd < 0)
        return UINT64_MAX;
    if (t >= n->next_beacon) {
        beacon(n);
        n->next_beacon = t + BEACON_MS;
    }
    return n->next_beacon;
}
