/* socks5.c - SOCKS5 client messages (RFC 1928, RFC 1929). */
#include "proto/socks5.h"

#include <arpa/inet.h>
#include <assert.h>
#include <string.h>

size_t chp_socks5_greeting(uint8_t out[3], int auth)
{
    out[0] = 5;
    out[1] = 1;
    out[2] = auth ? 2 : 0;
    return 3;
}

int chp_socks5_method(const uint8_t *in, size_t len, int auth)
{
    assert(in || len == 0);
    if (len < 2)
        return CHP_E_TRUNCATED;
    return in[0] == 5 && in[1] == (auth ? 2 : 0) ? CHP_OK : CHP_E_MALFORMED;
}

int chp_socks5_auth(uint8_t *out, size_t cap, const char *user, const char *pass, size_t *len)
{
    size_t ul = strlen(user), pl = strlen(pass);
    if (ul == 0 || ul > 255 || pl == 0 || pl > 255 || cap < 3 + ul + pl)
        return CHP_E_ARG;
    out[0] = 1;
    out[1] = (uint8_t)ul;
    memcpy(out + 2, user, ul);
    out[2 + ul] = (uint8_t)pl;
    memcpy(out + 3 + ul, pass, pl);
    *len = 3 + ul + pl;
    return CHP_OK;
}

int chp_socks5_auth_reply(const uint8_t *in, size_t len)
{
    assert(in || len == 0);
    if (len < 2)
        return CHP_E_TRUNCATED;
    return in[0] == 1 && in[1] == 0 ? CHP_OK : CHP_E_MALFORMED;
}

int chp_socks5_connect(uint8_t *out, size_t cap, const char *host, uint16_t port, size_t *len)
{
    uint8_t ip[16];
    size_t hl = strlen(host), o = 4;
    if (cap < 4 + 1 + 255 + 2)
        return CHP_E_ARG;
    out[0] = 5;
    out[1] = 1; /* CONNECT */
    out[2] = 0;
    if (inet_pton(AF_INET, host, ip) == 1) {
        out[3] = 1;
        memcpy(out + o, ip, 4);
        o += 4;
    } else if (inet_pton(AF_INET6, host, ip) == 1) {
        out[3] = 4;
        memcpy(out + o, ip, 16);
        o += 16;
    } else {
        if (hl == 0 || hl > 255)
            return CHP_E_ARG;
        out[3] = 3;
        out[o++] = (uint8_t)hl;
        memcpy(out + o, host, hl);
        o += hl;
    }
    out[o++] = (uint8_t)(port >> 8);
    out[o++] = (uint8_t)port;
    *len = o;
    return CHP_OK;
}

int chp_socks5_reply(const uint8_t *in, size_t len, size_t *used, int *rep)
{
    assert((in || len == 0) && used && rep);
    *used = 0;
    *rep = 0;
    if (len < 5)
        return CHP_E_TRUNCATED;
    if (in[0] != 5 || in[2] != 0)
        return CHP_E_MALFORMED;
    /* a name is 1-255 bytes: an empty one is no address */
    size_t need = in[3] == 1                ? 4 + 4 + 2
                  : in[3] == 4              ? 4 + 16 + 2
                  : in[3] == 3 && in[4] > 0 ? 5 + (size_t)in[4] + 2
                                            : 0;
    if (!need)
        return CHP_E_MALFORMED;
    if (in[1] != 0) { /* refused: the code is known before the address */
        *rep = in[1];
        return CHP_E_IO;
    }
    if (len < need)
        return CHP_E_TRUNCATED;
    *used = need;
    return CHP_OK;
}

const char *chp_socks5_rep_text(int rep)
{
    static const char *const t[] = {
        "succeeded",           "general failure",       "not allowed by its rules",
        "network unreachable", "host unreachable",      "connection refused",
        "TTL expired",         "command not supported", "address type not supported"};
    return rep >= 0 && rep < (int)(sizeof t / sizeof *t) ? t[rep] : "unknown error";
}
