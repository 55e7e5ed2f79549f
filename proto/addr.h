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
 * mistyped address fails here instead of connecting to the wrong node. */
#ifndef CHP_ADDR_H
#define CHP_ADDR_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_ADDR_HOST_MAX 253
#define CHP_ADDR_STR_MAX  (CHP_ADDR_HOST_MAX + 2 + 1 + 5 + 1 + 63) /* without NUL */
#define CHP_NODEKEY_HRP   "chpn"

typedef struct chp_addr {
    char host[CHP_ADDR_HOST_MAX + 1]; /* without brackets, NUL-terminated */
    uint16_t port;
    uint8_t key[32];
    int ipv6;
} chp_addr;

/* Parses exactly len bytes. Errors name the faulty part:
 * CHP_E_ADDR_FORMAT, CHP_E_ADDR_HOST, CHP_E_ADDR_PORT, CHP_E_ADDR_KEY. */
CHP_WUR int chp_addr_parse(const char *s, size_t len, chp_addr *out);

/* The canonical string (CHP_ADDR_STR_MAX + 1 bytes is always enough). */
CHP_WUR int chp_addr_format(const chp_addr *a, char *out, size_t cap);

/* "tcp://HOST:PORT" (IPv6 in brackets) for zmq_connect. */
CHP_WUR int chp_addr_endpoint(const chp_addr *a, char *out, size_t cap);

#endif
