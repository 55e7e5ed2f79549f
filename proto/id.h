/* id.h - the user-facing identity string, short fingerprints and safety
 * numbers.
 *
 * The ID is Bech32m (BIP-350) with human-readable part "chp" over the 32-byte
 * Ed25519 public key: "chp1" + 52 data characters + 6 checksum characters.
 * Bech32m detects every error touching up to 4 characters and all but about
 * one in a billion of the rest, so a mistyped ID is refused, never
 * silently taken for somebody else's. */
#ifndef CHP_ID_H
#define CHP_ID_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_ID_STR_LEN     62 /* characters, without the terminating NUL */
#define CHP_FPR_STR_LEN    8  /* short fingerprint characters */
#define CHP_SAFETY_STR_LEN 35 /* "12345 12345 12345 12345 12345 12345" */

/* Writes the NUL-terminated ID of pk into out (CHP_ID_STR_LEN + 1 bytes). */
void chp_id_encode(const uint8_t pk[32], char out[CHP_ID_STR_LEN + 1]);

/* Parses exactly len characters (no surrounding space) into pk. Accepts all
 * lower or all upper case. Errors, in the order checked: CHP_E_ID_LENGTH,
 * CHP_E_ID_PREFIX, CHP_E_ID_CHARSET (also mixed case), CHP_E_ID_CHECKSUM,
 * CHP_E_ID_KEY (non-zero padding bits or not a usable Ed25519 key). */
CHP_WUR int chp_id_parse(const char *s, size_t len, uint8_t pk[32]);

/* The same Bech32m form for any 32-byte key under another human-readable
 * part (lower-case ASCII, 1..CHP_B32KEY_HRP_MAX characters): node transport
 * keys use "chpn". out needs strlen(hrp) + 60 bytes. Parse errors as
 * chp_id_parse, without the Ed25519 validity check. */
#define CHP_B32KEY_HRP_MAX 8
void chp_b32key_encode(const char *hrp, const uint8_t key[32], char *out);
CHP_WUR int chp_b32key_parse(const char *hrp, const char *s, size_t len, uint8_t key[32]);

/* Short fingerprint shown beside nicknames ("ali (q8x3k2dd)"): 8 characters
 * of the Bech32 alphabet, 40 bits of BLAKE2b over the key. */
void chp_id_fingerprint(const uint8_t pk[32], char out[CHP_FPR_STR_LEN + 1]);

/* Safety number two users compare out of band: the same for (a, b) and
 * (b, a); 30 decimal digits in six groups of five. */
void chp_safety_number(const uint8_t a[32], const uint8_t b[32], char out[CHP_SAFETY_STR_LEN + 1]);

#endif
