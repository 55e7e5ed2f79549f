/* fuzz_addr.c - peer address strings: chp_addr_parse never crashes, and an
 * accepted address formats back to a string that parses to the same thing. */
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
    return 0;
}
