/* addr.c - parsing and formatting peer addresses. */
#include "proto/addr.h"

#include "proto/id.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 1123 host name: dot-separated labels of 1..63 letters, digits and
 * inner hyphens. An all-numeric dotted name must be a valid IPv4. */
/* An IPv6 zone: an interface name, 1..15 of [A-Za-z0-9._-]. */
static int scope_ok(const char *z)
{
    size_t n = strlen(z);
    if (n == 0 || n > 15)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(z[i]) && z[i] != '.' && z[i] != '_' && z[i] != '-')
            return 0;
    return 1;
}

static int host_ok(const char *h, size_t n)
{
    if (n == 0 || n > CHP_ADDR_HOST_MAX)
        return 0;
    size_t label = 0;
    int digits_only = 1;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-')
            return 0;
        if (c == '-' && label == 0)
            return 0;
        if (!(c >= '0' && c <= '9'))
            digits_only = 0;
        if (++label > 63)
            return 0;
    }
    if (label == 0 || h[n - 1] == '-')
        return 0;
    if (digits_only) {
        char tmp[CHP_ADDR_HOST_MAX + 1];
        struct in_addr a4;
        memcpy(tmp, h, n);
        tmp[n] = '\0';
        return inet_pton(AF_INET, tmp, &a4) == 1;
    }
    return 1;
}

int chp_addr_parse_hostport(const char *s, size_t n, char host[CHP_ADDR_HOST_MAX + 1], int *ipv6,
                            uint16_t *port_out)
{
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    if (!colon)
        return CHP_E_ADDR_FORMAT;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        char tmp[64];
        struct in6_addr a6;
        if (hl - 2 >= sizeof tmp)
            return CHP_E_ADDR_HOST;
        memcpy(tmp, h + 1, hl - 2);
        tmp[hl - 2] = '\0';
        char *pct = strchr(tmp, '%');
        if (pct && !scope_ok(pct + 1))
            return CHP_E_ADDR_HOST;
        if (pct)
            *pct = '\0';
        /* a zone (%eth0) only on a link-local address, where it is needed */
        if (inet_pton(AF_INET6, tmp, &a6) != 1 || (pct && !IN6_IS_ADDR_LINKLOCAL(&a6)))
            return CHP_E_ADDR_HOST;
        if (pct)
            *pct = '%';
        memcpy(host, tmp, hl - 1);
        *ipv6 = 1;
    } else {
        if (!host_ok(h, hl))
            return CHP_E_ADDR_HOST;
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    const char *p = colon + 1;
    size_t pl = n - hl - 1;
    if (pl == 0 || pl > 5 || p[0] == '0')
        return CHP_E_ADDR_PORT;
    unsigned port = 0;
    for (size_t i = 0; i < pl; i++) {
        if (p[i] < '0' || p[i] > '9')
            return CHP_E_ADDR_PORT;
        port = port * 10 + (unsigned)(p[i] - '0');
    }
    if (port > 65535)
        return CHP_E_ADDR_PORT;
    *port_out = (uint16_t)port;
    return CHP_OK;
}

static int has_prefix(const char *s, size_t len, const char *pre)
{
    size_t n = strlen(pre);
    return len >= n && !memcmp(s, pre, n);
}

/* A Tor v3 onion service name: 56 base32 letters and ".onion". */
static int is_onion(const char *host)
{
    size_t n = strlen(host);
    if (n < 6 || strcmp(host + n - 6, ".onion") != 0)
        return 0;
    return 1;
}

static int onion_ok(const char *host)
{
    if (strlen(host) != 56 + 6)
        return 0;
    for (size_t i = 0; i < 56; i++)
        if (!((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= '2' && host[i] <= '7')))
            return 0;
    return 1;
}

static int b64_val(char c)
{
    return c >= 'A' && c <= 'Z'   ? c - 'A'
           : c >= 'a' && c <= 'z' ? c - 'a' + 26
           : c >= '0' && c <= '9' ? c - '0' + 52
           : c == '+'             ? 62
           : c == '/'             ? 63
                                  : -1;
}

/* obfs4's cert: 52 bytes (node id and public key) in unpadded base64, so
 * 70 characters whose last one carries 2 data bits and 4 zero bits. */
int chp_obfs4_cert_ok(const char *c, size_t n)
{
    if (n != CHP_OBFS4_CERT_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (b64_val(c[i]) < 0)
            return 0;
    return (b64_val(c[n - 1]) & 0x0f) == 0;
}

/* "?cert=" CERT "&iat-mode=" N, exactly n bytes. */
static int parse_obfs4_args(const char *s, size_t n, chp_addr *out)
{
    static const char cp[] = "?cert=", ip[] = "&iat-mode=";
    if (!has_prefix(s, n, cp))
        return CHP_E_ADDR_CERT;
    s += sizeof cp - 1;
    n -= sizeof cp - 1;
    const char *amp = memchr(s, '&', n);
    size_t cl = amp ? (size_t)(amp - s) : n;
    if (!chp_obfs4_cert_ok(s, cl))
        return CHP_E_ADDR_CERT;
    memcpy(out->cert, s, cl);
    out->cert[cl] = '\0';
    s += cl;
    n -= cl;
    if (!has_prefix(s, n, ip) || n != sizeof ip || s[n - 1] < '0' || s[n - 1] > '2')
        return CHP_E_ADDR_IAT;
    out->iat_mode = s[n - 1] - '0';
    return CHP_OK;
}

/* "socks5://" PROXYHOST ":" PORT "/": the proxy into out; *skip = its length. */
static int parse_proxy(const char *s, size_t len, chp_addr *out, size_t *skip)
{
    static const char sp[] = "socks5://";
    *skip = 0;
    if (!has_prefix(s, len, sp))
        return CHP_OK;
    const char *p = s + sizeof sp - 1;
    const char *slash = memchr(p, '/', len - (sizeof sp - 1));
    if (!slash)
        return CHP_E_ADDR_PROXY;
    char host[CHP_ADDR_HOST_MAX + 1];
    int v6 = 0;
    if (chp_addr_parse_hostport(p, (size_t)(slash - p), host, &v6, &out->proxy_port) != CHP_OK)
        return CHP_E_ADDR_PROXY;
    snprintf(out->proxy, sizeof out->proxy, v6 ? "[%s]" : "%s", host);
    *skip = (size_t)(slash + 1 - s);
    return CHP_OK;
}

static int parse_inner(const char *s, size_t len, chp_addr *out)
{
    if (has_prefix(s, len, "obfs4:")) {
        out->transport = CHP_TRANSPORT_OBFS4;
        s += 6;
        len -= 6;
    }
    /* the key ends where the arguments start (obfs4's), else at the end */
    size_t body = 0;
    while (body < len && s[body] != '?' && s[body] != '&')
        body++;
    if (body < len && out->transport != CHP_TRANSPORT_OBFS4)
        return CHP_E_ADDR_KEY; /* a plain address ends with its key */
    const char *slash = body ? memchr(s, '/', body) : NULL;
    if (!slash)
        return CHP_E_ADDR_FORMAT;
    size_t hp = (size_t)(slash - s); /* HOST:PORT part */
    int rc = chp_addr_parse_hostport(s, hp, out->host, &out->ipv6, &out->port);
    if (rc != CHP_OK)
        return rc;
    if (chp_b32key_parse(CHP_NODEKEY_HRP, slash + 1, body - hp - 1, out->key) != CHP_OK)
        return CHP_E_ADDR_KEY;
    if (out->transport == CHP_TRANSPORT_OBFS4)
        return parse_obfs4_args(s + body, len - body, out);
    return CHP_OK;
}

int chp_addr_parse(const char *s, size_t len, chp_addr *out)
{
    assert((s || len == 0) && out);
    memset(out, 0, sizeof *out);
    size_t skip = 0;
    int rc = parse_proxy(s, len, out, &skip);
    if (rc == CHP_OK)
        rc = parse_inner(s + skip, len - skip, out);
    /* An onion service is reached through Tor only, and only with its
     * well-formed name; obfs4 has its own dialler (the PT's SOCKS). */
    if (rc == CHP_OK && is_onion(out->host) && (!out->proxy[0] || !onion_ok(out->host)))
        rc = out->proxy[0] ? CHP_E_ADDR_HOST : CHP_E_ADDR_PROXY;
    if (rc == CHP_OK && out->proxy[0] && out->transport != CHP_TRANSPORT_PLAIN)
        rc = CHP_E_ADDR_PROXY;
    if (rc != CHP_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int chp_addr_format(const chp_addr *a, char *out, size_t cap)
{
    assert(a && out);
    char key[CHP_B32KEY_HRP_MAX + 61], proxy[CHP_ADDR_HOST_MAX + 20] = "";
    chp_b32key_encode(CHP_NODEKEY_HRP, a->key, key);
    if (a->proxy[0])
        snprintf(proxy, sizeof proxy, "socks5://%s:%u/", a->proxy, (unsigned)a->proxy_port);
    int n = snprintf(out, cap, a->ipv6 ? "%s%s[%s]:%u/%s" : "%s%s%s:%u/%s", proxy,
                     a->transport == CHP_TRANSPORT_OBFS4 ? "obfs4:" : "", a->host,
                     (unsigned)a->port, key);
    if (n >= 0 && (size_t)n < cap && a->transport == CHP_TRANSPORT_OBFS4) {
        int k = snprintf(out + n, cap - (size_t)n, "?cert=%s&iat-mode=%d", a->cert, a->iat_mode);
        n = k < 0 ? k : n + k;
    }
    return n < 0 || (size_t)n >= cap ? CHP_E_OVERFLOW : CHP_OK;
}

int chp_addr_proxy(const chp_addr *a, char *out, size_t cap)
{
    assert(a && out);
    int n = snprintf(out, cap, "%s:%u", a->proxy, (unsigned)a->proxy_port);
    return !a->proxy[0] || n < 0 || (size_t)n >= cap ? CHP_E_ARG : CHP_OK;
}

int chp_addr_endpoint(const chp_addr *a, char *out, size_t cap)
{
    assert(a && out);
    int n =
        snprintf(out, cap, a->ipv6 ? "tcp://[%s]:%u" : "tcp://%s:%u", a->host, (unsigned)a->port);
    return n < 0 || (size_t)n >= cap ? CHP_E_OVERFLOW : CHP_OK;
}
