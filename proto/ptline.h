/* ptline.h - one line a pluggable transport prints on its stdout in
 * managed mode (Tor's pt-spec v1, "Pluggable Transport Configuration
 * Protocol"): what chapard learns from the obfs4 client and server it
 * runs. Pure: the caller reads the lines, this only parses one.
 *
 *   VERSION 1                      VERSION-ERROR MSG      ENV-ERROR MSG
 *   CMETHOD NAME socks5 HOST:PORT  CMETHOD-ERROR NAME MSG CMETHODS DONE
 *   SMETHOD NAME HOST:PORT [ARGS:K=V,K=V...]  SMETHOD-ERROR NAME MSG
 *   SMETHODS DONE                  PROXY DONE             PROXY-ERROR MSG
 *   LOG ...                        STATUS ...
 *
 * In ARGS a backslash escapes ',', '=' and '\'. Of the args, obfs4's
 * cert and iat-mode are kept. */
#ifndef CHP_PTLINE_H
#define CHP_PTLINE_H

#include "proto/addr.h"
#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_PTLINE_MAX 4096 /* bytes of one line; a longer one is malformed */

enum chp_ptline_kind {
    CHP_PT_UNKNOWN = 0, /* a keyword this version does not know: ignored by the spec */
    CHP_PT_VERSION,
    CHP_PT_VERSION_ERROR,
    CHP_PT_ENV_ERROR,
    CHP_PT_CMETHOD,
    CHP_PT_CMETHOD_ERROR,
    CHP_PT_CMETHODS_DONE,
    CHP_PT_SMETHOD,
    CHP_PT_SMETHOD_ERROR,
    CHP_PT_SMETHODS_DONE,
    CHP_PT_PROXY_DONE,
    CHP_PT_PROXY_ERROR,
    CHP_PT_LOG, /* LOG and STATUS lines */
};

typedef struct chp_ptline {
    int kind;        /* enum chp_ptline_kind */
    char method[33]; /* *METHOD*: the transport's name */
    char proto[8];   /* CMETHOD: "socks5" or "socks4" */
    char host[CHP_ADDR_HOST_MAX + 1];
    uint16_t port; /* CMETHOD, SMETHOD: where it listens (port > 0) */
    int ipv6;
    char cert[CHP_OBFS4_CERT_LEN + 1]; /* SMETHOD ARGS cert, "" if none */
    int iat_mode;                      /* SMETHOD ARGS iat-mode, -1 if none */
    char msg[256];                     /* VERSION's version, an error's message (cut) */
} chp_ptline;

/* Parses one line of len bytes (no line end; a trailing '\r' is
 * allowed). CHP_OK with out filled, or CHP_E_MALFORMED (a known keyword
 * with bad fields, a bad address or cert, a control byte, too long). An
 * empty line or an unknown keyword is CHP_OK with kind CHP_PT_UNKNOWN. */
CHP_WUR int chp_ptline_parse(const char *line, size_t len, chp_ptline *out);

#endif
