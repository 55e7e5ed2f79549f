/* beacon.c - LAN beacon encoding (beacon.h, PROTOCOL.md §17). */
#include "node/mesh/beacon.h"

#include <string.h>

void chp_beacon_build(const chp_beacon *b, uint8_t out[CHP_BEACON_LEN])
{
    memcpy(out, "CHPB", 4);
    out[4] = 1;
    out[5] = b->relay ? 1 : 0;
    out[6] = (uint8_t)(b->port >> 8);
    out[7] = (uint8_t)b->port;
    memcpy(out + 8, b->key, 32);
}

int chp_beacon_parse(const uint8_t *d, size_t len, chp_beacon *b)
{
    if (!d || len != CHP_BEACON_LEN || memcmp(d, "CHPB", 4) != 0 || d[4] != 1)
        return -1;
    b->relay = d[5] & 1;
    b->port = (uint16_t)((d[6] << 8) | d[7]);
    memcpy(b->key, d + 8, 32);
    return 0;
}
