/* socks5.h - the client side of SOCKS5 (RFC 1928) with username/password
 * authentication (RFC 1929), as far as chapard dials through a proxy: Tor's
 * SocksPort (socks5:// addresses) and a pluggable transport's SOCKS
 * listener (obfs4, whose bridge arguments ride in the username and
 * password, pt-spec v1). Pure: messages are built into and parsed from
 * buffers; node/mesh/socks.c moves them. */
#ifndef CHP_SOCKS5_H
#define CHP_SOCKS5_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_SOCKS5_MSG_MAX 520 /* the largest message built here */

/* Version/method selection: "no authentication" or, with auth set,
 * "username/password". 3 bytes into out. */
size_t chp_socks5_greeting(uint8_t out[3], int auth);
/* The method the proxy chose (2 bytes): CHP_OK if it is the one asked
 * for (auth or not), CHP_E_TRUNCATED (need more bytes), else
 * CHP_E_MALFORMED (not SOCKS5, or no acceptable method). */
CHP_WUR int chp_socks5_method(const uint8_t *in, size_t len, int auth);
/* Username/password request: user and pass 1-255 bytes each. CHP_OK or
 * CHP_E_ARG; *len gets the length. */
CHP_WUR int chp_socks5_auth(uint8_t *out, size_t cap, const char *user, const char *pass,
                            size_t *len);
/* The auth reply (2 bytes): CHP_OK, CHP_E_TRUNCATED or CHP_E_MALFORMED
 * (refused, or not a reply). */
CHP_WUR int chp_socks5_auth_reply(const uint8_t *in, size_t len);
/* CONNECT to host (an IPv4 or IPv6 literal, or a name the proxy resolves,
 * 1-255 bytes) and port. CHP_OK or CHP_E_ARG. */
CHP_WUR int chp_socks5_connect(uint8_t *out, size_t cap, const char *host, uint16_t port,
                               size_t *len);
/* The CONNECT reply: CHP_OK with *used its length (what follows is the
 * peer's data), CHP_E_TRUNCATED (need more), CHP_E_MALFORMED (not a
 * reply), or CHP_E_IO with *rep the proxy's refusal code (1-255). */
CHP_WUR int chp_socks5_reply(const uint8_t *in, size_t len, size_t *used, int *rep);
/* The refusal code in words ("connection refused", ...). */
const char *chp_socks5_rep_text(int rep);

#endif
