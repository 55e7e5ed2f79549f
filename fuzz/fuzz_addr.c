/* fuzz_addr.c - peer address strings (plain, obfs4:, socks5://):
 * chp_addr_parse never crashes, and an accepted address formats back to a
 * string that parses to the same thing (transport, cert, iat-mode and
 * proxy included); an .onion host always has a proxy. */
#include "fuzz.h"

#include "proto/addr.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    chp_addr a, b;
    char s[CHP_ADDR_STR_MAX + 1];
    fuzz_init();
    if (!data)
        data = none;
    if (chp_addr_parse((const char *)data, size, &a) != CHP_OK)
        return 0;
    FUZZ_CHECK(a.port != 0 && a.host[0] != '\0');
    FUZZ_CHECK(chp_addr_format(&a, s, sizeof s) == CHP_OK);
    FUZZ_CHECK(chp_addr_parse(s, strlen(s), &b) == CHP_OK);
    FUZZ_CHECK(!strcmp(a.host, b.host) && a.port == b.port && a.ipv6 == b.ipv6 &&
               !memcmp(a.key, b.key, 32));
    FUZZ_CHECK(a.transport == b.transport && !strcmp(a.cert, b.cert) && a.iat_mode == b.iat_mode &&
               !strcmp(a.proxy, b.proxy) && a.proxy_port == b.proxy_port);
    FUZZ_CHECK(a.transport != CHP_TRANSPORT_OBFS4 ||
               (strlen(a.cert) == CHP_OBFS4_CERT_LEN && a.iat_mode >= 0 && a.iat_mode <= 2));
    FUZZ_CHECK(!a.proxy[0] || a.proxy_port != 0);
    size_t hl = strlen(a.host);
    FUZZ_CHECK(hl < 6 || strcmp(a.host + hl - 6, ".onion") || a.proxy[0]);
    /* canonical: what parsed is exactly what formats */
    FUZZ_CHECK(strlen(s) <= CHP_ADDR_STR_MAX);
    return 0;
}
