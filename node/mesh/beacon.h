/* beacon.h - the LAN beacon (PROTOCOL.md §17): "CHPB" | version u8 (1) |
 * flags u8 (bit 0 relay) | port u16 big-endian | key [32] = 40 bytes.
 * A user node's key and port are those of its LAN listener (a key pair
 * that is random per start and rotated, not its transport key); a relay's
 * are its published ones. Shared by discovery.c and fuzz/fuzz_beacon.c. */
#ifndef CHP_BEACON_H
#define CHP_BEACON_H

#include <stddef.h>
#include <stdint.h>

#define CHP_BEACON_LEN 40

typedef struct {
    int relay;
    uint16_t port; /* 0 = not listening */
    uint8_t key[32];
} chp_beacon;

/* Writes the 40 bytes of b into out. */
void chp_beacon_build(const chp_beacon *b, uint8_t out[CHP_BEACON_LEN]);
/* 0 and *b filled if the datagram is a beacon of version 1 (other flag
 * bits ignored); -1 for any other length, magic or version. */
int chp_beacon_parse(const uint8_t *d, size_t len, chp_beacon *b);

#endif
