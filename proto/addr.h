/* addr.h - peer addresses: one copy-pasteable string with the host, the
 * port and the node's public transport (CURVE) key:
 *
 *   ADDRESS = HOST ":" PORT "/" NODEKEY
 *   HOST    = IPv4 dotted quad | "[" IPv6 "]" | host name (RFC 1123)
 *             a link-local IPv6 may carry its zone: "[fe80::1%eth0]"
 *   PORT    = 1..65535, decimal, no leading zero
 *   NODEKEY = Bech32m with human-readable part "chpn" of the 32-byte key
 *
 * e.g. 192.168.1.20:7667/chpn1qg...  The key is self-checking, so a
 * mistyped address fails here instead of connecting to the wrong node.
 *
 * Two more forms choose how the node is dialled (issue 17):
 *
 *   OBFS4   = "obfs4:" HOST ":" PORT "/" NODEKEY "?cert=" CERT "&iat-mode=" ("0"|"1"|"2")
 *             CERT = the bridge's obfs4 cert, 70 characters of unpadded base64
 *   SOCKS   = "socks5://" PROXYHOST ":" PORT "/" ADDRESS
 *             dialled through that SOCKS5 proxy (Tor's SocksPort); HOST may
 *             then be an onion service, 56 base32 letters ".onion", which
 *             is refused without a proxy. obfs4 is never given a proxy here
 *             (the PT client is its SOCKS proxy). */
#ifndef CHP_ADDR_H
#define CHP_ADDR_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_ADDR_HOST_MAX  253
#define CHP_OBFS4_CERT_LEN 70
/* the plain form, then a proxy prefix and the obfs4 parts (without NUL) */
#define CHP_ADDR_PLAIN_MAX (CHP_ADDR_HOST_MAX + 2 + 1 + 5 + 1 + 63)
#define CHP_ADDR_STR_MAX                                                                           \
    (9 + CHP_ADDR_HOST_MAX + 2 + 1 + 5 + 1 + 6 + CHP_ADDR_PLAIN_MAX + 6 + CHP_OBFS4_CERT_LEN + 11)
#define CHP_NODEKEY_HRP "chpn"

enum { CHP_TRANSPORT_PLAIN = 0, CHP_TRANSPORT_OBFS4 = 1 };

typedef struct chp_addr {
    char host[CHP_ADDR_HOST_MAX + 1]; /* without brackets, NUL-terminated */
    uint16_t port;
    uint8_t key[32];
    int ipv6;
    int transport;                     /* CHP_TRANSPORT_* */
    char cert[CHP_OBFS4_CERT_LEN + 1]; /* obfs4 only */
    int iat_mode;                      /* obfs4 only: 0..2 */
    char proxy[CHP_ADDR_HOST_MAX + 3]; /* socks5 proxy host ([v6] bracketed), "" = none */
    uint16_t proxy_port;
} chp_addr;

/* Parses exactly len bytes. Errors name the faulty part:
 * CHP_E_ADDR_FORMAT, CHP_E_ADDR_HOST, CHP_E_ADDR_PORT, CHP_E_ADDR_KEY,
 * CHP_E_ADDR_CERT, CHP_E_ADDR_IAT, CHP_E_ADDR_PROXY. */
CHP_WUR int chp_addr_parse(const char *s, size_t len, chp_addr *out);

/* The canonical string (CHP_ADDR_STR_MAX + 1 bytes is always enough). */
CHP_WUR int chp_addr_format(const chp_addr *a, char *out, size_t cap);

/* HOST ":" PORT, exactly n bytes (HOST as in ADDRESS, PORT 1-65535):
 * host (NUL-terminated, brackets removed), *ipv6, *port. CHP_OK,
 * CHP_E_ADDR_FORMAT (no colon), CHP_E_ADDR_HOST or CHP_E_ADDR_PORT. */
CHP_WUR int chp_addr_parse_hostport(const char *s, size_t n, char host[CHP_ADDR_HOST_MAX + 1],
                                    int *ipv6, uint16_t *port);

/* 1 if c (n bytes) is an obfs4 cert: 52 bytes in unpadded base64. */
int chp_obfs4_cert_ok(const char *c, size_t n);

/* The SOCKS proxy as "HOST:PORT" for ZMQ_SOCKS_PROXY; CHP_E_ARG if none. */
CHP_WUR int chp_addr_proxy(const chp_addr *a, char *out, size_t cap);

/* "tcp://HOST:PORT" (IPv6 in brackets) for zmq_connect. */
CHP_WUR int chp_addr_endpoint(const chp_addr *a, char *out, size_t cap);

#endif
