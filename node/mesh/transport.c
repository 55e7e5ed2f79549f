/* transport.c - links that do not go straight over TCP (issue 17):
 * through a SOCKS5 proxy the address names (socks5://, e.g. Tor), or
 * through the obfs4 pluggable transport, whose client the daemon runs and
 * whose SOCKS listener it hands the mesh (chp_mesh_obfs4_socks). The
 * node's own SOCKS5 client (socks.c) carries such a link: its DEALER dials
 * a loopback port of the relay; the obfs4 arguments of the bridge travel,
 * as the PT spec says, in the SOCKS username and password.
 * The CURVE link inside is the same as over TCP. On the server side the
 * PT forwards what it unwraps to a loopback port of our ROUTER
 * (chp_mesh_pt_orport), so ZAP, bans and HELLO see the link as any other. */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A route for l through proxy phost:pport to a's host and port. */
static int route(chp_mesh *n, struct chp_link *l, const chp_addr *a, const char *phost,
                 uint16_t pport, const char *user, const char *pass, char *ep, size_t cap)
{
    uint16_t port;
    int rc = chp_socks_route(n, phost, pport, a->host, a->port, user, pass, &l->route, &port);
    if (rc != CHP_OK) {
        chp_err_log("cannot open a route through the SOCKS proxy %s:%u: %s", phost, (unsigned)pport,
                    chp_strerror(rc));
        return rc;
    }
    l->relay = n->socks;
    int k = snprintf(ep, cap, "tcp://127.0.0.1:%u", (unsigned)port);
    return k < 0 || (size_t)k >= cap ? CHP_E_OVERFLOW : CHP_OK;
}

int chp_transport_endpoint(chp_mesh *n, struct chp_link *l, const chp_addr *a, char *ep, size_t cap,
                           int *connect_now)
{
    *connect_now = 1;
    l->pt_wait = 0;
    ep[0] = '\0';
    if (a->proxy[0]) {
        l->via = CHP_VIA_SOCKS5;
        return route(n, l, a, a->proxy, a->proxy_port, NULL, NULL, ep, cap);
    }
    if (a->transport != CHP_TRANSPORT_OBFS4) {
        l->via = CHP_VIA_TCP;
        return chp_addr_endpoint(a, ep, cap);
    }
    l->via = CHP_VIA_OBFS4;
    char host[CHP_ADDR_HOST_MAX + 1], phost[CHP_ADDR_HOST_MAX + 3];
    uint16_t pport;
    int v6 = 0;
    if (!n->obfs4_socks[0] ||
        chp_addr_parse_hostport(n->obfs4_socks, strlen(n->obfs4_socks), host, &v6, &pport) !=
            CHP_OK) { /* dialled once the PT client says where it listens */
        l->pt_wait = 1;
        *connect_now = 0;
        return CHP_OK;
    }
    snprintf(phost, sizeof phost, v6 ? "[%s]" : "%s", host);
    /* "cert=C;iat-mode=N" split over the two fields (each must be 1-255
     * bytes, RFC 1929); the PT joins them again (pt-spec v1). */
    char user[CHP_OBFS4_CERT_LEN + 8], pass[16];
    snprintf(user, sizeof user, "cert=%s;", a->cert);
    snprintf(pass, sizeof pass, "iat-mode=%d", a->iat_mode);
    return route(n, l, a, phost, pport, user, pass, ep, cap);
}

void chp_transport_release(struct chp_link *l)
{
    chp_socks_unroute(l->relay, l->route);
    l->route = 0;
    l->relay = NULL;
}

static uint16_t local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

int chp_transport_of(const chp_mesh *n, const struct chp_link *l)
{
    if (l->dealer)
        return l->via;
    if (n->pt_orport && l->router_seen && local_port(l->router_fd) == n->pt_orport)
        return CHP_VIA_OBFS4;
    return CHP_VIA_TCP;
}

const char *chp_mesh_transport_name(int via)
{
    return via == CHP_VIA_OBFS4 ? "obfs4" : via == CHP_VIA_SOCKS5 ? "socks5" : "tcp";
}

size_t chp_mesh_obfs4_wanted(const chp_mesh *n)
{
    size_t k = 0;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++)
        k += n->links[i].used && n->links[i].dealer && n->links[i].via == CHP_VIA_OBFS4;
    return k;
}

int chp_mesh_pt_orport(chp_mesh *n, char *out, size_t cap)
{
    if (!n->pt_orport) {
        char last[300];
        size_t ll = sizeof last;
        if (zmq_bind(n->router, "tcp://127.0.0.1:*") != 0 ||
            zmq_getsockopt(n->router, ZMQ_LAST_ENDPOINT, last, &ll) != 0) {
            chp_err_log("cannot open the loopback port behind the PT: %s", zmq_strerror(errno));
            return CHP_E_IO;
        }
        const char *pc = strrchr(last, ':');
        n->pt_orport = pc ? (uint16_t)atoi(pc + 1) : 0;
        if (!n->pt_orport)
            return CHP_E_IO;
    }
    int k = snprintf(out, cap, "127.0.0.1:%u", (unsigned)n->pt_orport);
    return k < 0 || (size_t)k >= cap ? CHP_E_OVERFLOW : CHP_OK;
}
