/* fuzz_socks5.c - what a SOCKS5 proxy answers (proto/socks5.c): the
 * method, auth and CONNECT reply parsers never crash and agree with the
 * layout: a reply accepted as OK has its whole length within the input
 * (at least 8 bytes: a name is never empty),
 * TRUNCATED only while shorter than that length, a refusal code 1-255. */
#include "fuzz.h"

#include "proto/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    size_t used = 7;
    int rep = -1;
    if (!data)
        data = none;
    int m0 = chp_socks5_method(data, size, 0), m1 = chp_socks5_method(data, size, 1);
    FUZZ_CHECK(size >= 2 || (m0 == CHP_E_TRUNCATED && m1 == CHP_E_TRUNCATED));
    FUZZ_CHECK(!(m0 == CHP_OK && m1 == CHP_OK));
    int a = chp_socks5_auth_reply(data, size);
    FUZZ_CHECK(a == CHP_OK ? data[0] == 1 && data[1] == 0 : a == CHP_E_TRUNCATED ? size < 2 : 1);
    int rc = chp_socks5_reply(data, size, &used, &rep);
    FUZZ_CHECK(rc == CHP_OK || rc == CHP_E_TRUNCATED || rc == CHP_E_MALFORMED || rc == CHP_E_IO);
    if (rc == CHP_OK)
        FUZZ_CHECK(used >= 8 && used <= size && data[0] == 5 && data[1] == 0 && rep == 0);
    else
        FUZZ_CHECK(used == 0);
    if (rc == CHP_E_IO)
        FUZZ_CHECK(rep >= 1 && rep <= 255 && data[1] == rep);
    if (rc == CHP_E_TRUNCATED)
        FUZZ_CHECK(size < 5 + 255 + 2);
    return 0;
}
