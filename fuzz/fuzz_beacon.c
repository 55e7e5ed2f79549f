/* fuzz_beacon.c - LAN beacons (PROTOCOL.md §17): chp_beacon_parse never
 * crashes, accepts exactly 40-byte "CHPB" version-1 datagrams, and what it
 * accepts builds back to the same bytes (flag bits other than relay aside). */
#include "fuzz.h"

#include "node/mesh/beacon.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    chp_beacon b;
    uint8_t out[CHP_BEACON_LEN];
    fuzz_init();
    if (chp_beacon_parse(data, size, &b) != 0) {
        FUZZ_CHECK(!data || size != CHP_BEACON_LEN || memcmp(data, "CHPB", 4) != 0 || data[4] != 1);
        return 0;
    }
    FUZZ_CHECK(size == CHP_BEACON_LEN);
    chp_beacon_build(&b, out);
    FUZZ_CHECK(!memcmp(out, data, 5) && out[5] == (data[5] & 1) && !memcmp(out + 6, data + 6, 34));
    return 0;
}
