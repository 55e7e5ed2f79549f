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

int chp_addr_parse(const char *s, size_t len, chp_addr *out)
{
    assert((s || len == 0) && out);
    memset(out, 0, sizeof *out);
    const char *slash = len ? memchr(s, '/', len) : NULL;
    if (!slash)
        return CHP_E_ADDR_FORMAT;
    size_t hp = (size_t)(slash - s); /* HOST:PORT part */
    const char *colon = NULL;
    for (size_t i = hp; i > 0; i--)
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
        memcpy(out->host, tmp, hl - 1);
        out->ipv6 = 1;
    } else {
        if (!host_ok(h, hl))
            return CHP_E_ADDR_HOST;
        memcpy(out->host, h, hl);
        out->host[hl] = '\0';
    }
    const char *p = colon + 1;
    size_t pl = (size_t)(slash - p);
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
    out->port = (uint16_t)port;
    const char *k = slash + 1;
    size_t kl = len - hp - 1;
    if (chp_b32key_parse(CHP_NODEKEY_HRP, k, kl, out->key) != CHP_OK) {
        memset(out, 0, sizeof *out);
        return CHP_E_ADDR_KEY;
    }
    return CHP_OK;
}

int chp_addr_format(const chp_addr *a, char *out, size_t cap)
{
    assert(a && out);
    char key[CHP_B32KEY_HRP_MAX + 61];
    chp_b32key_encode(CHP_NODEKEY_HRP, a->key, key);
    int n =
        snprintf(out, cap, a->ipv6 ? "[%s]:%u/%s" : "%s:%u/%s", a->host, (unsigned)a->port, key);
    return n < 0 || (size_t)n >= cap ? CHP_E_OVERFLOW : CHP_OK;
}

int chp_addr_endpoint(const chp_addr *a, char *out, size_t cap)
{
    assert(a && out);
    int n =
        snprintf(out, cap, a->ipv6 ? "tcp://[%s]:%u" : "tcp://%s:%u", a->host, (unsigned)a->port);
    return n < 0 || (size_t)n >= cap ? CHP_E_OVERFLOW : CHP_OK;
}
