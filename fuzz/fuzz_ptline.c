/* fuzz_ptline.c - a pluggable transport's stdout lines (proto/ptline.c):
 * chp_ptline_parse never crashes; what it accepts is consistent: an
 * address line has a port and a host, an SMETHOD's cert is a valid obfs4
 * cert, iat-mode is -1..2, every string is terminated; an error leaves the
 * result empty. */
#include "fuzz.h"

#include "proto/ptline.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    chp_ptline p;
    if (!data)
        data = none;
    int rc = chp_ptline_parse((const char *)data, size, &p);
    FUZZ_CHECK(rc == CHP_OK || rc == CHP_E_MALFORMED);
    FUZZ_CHECK(memchr(p.method, 0, sizeof p.method) && memchr(p.proto, 0, sizeof p.proto) &&
               memchr(p.host, 0, sizeof p.host) && memchr(p.cert, 0, sizeof p.cert) &&
               memchr(p.msg, 0, sizeof p.msg));
    FUZZ_CHECK(p.iat_mode >= -1 && p.iat_mode <= 2);
    if (rc != CHP_OK) {
        FUZZ_CHECK(p.kind == CHP_PT_UNKNOWN && !p.host[0] && !p.port);
        return 0;
    }
    if (p.kind == CHP_PT_CMETHOD || p.kind == CHP_PT_SMETHOD)
        FUZZ_CHECK(p.port != 0 && p.host[0] && p.method[0]);
    if (p.cert[0])
        FUZZ_CHECK(p.kind == CHP_PT_SMETHOD && chp_obfs4_cert_ok(p.cert, strlen(p.cert)));
    return 0;
}
