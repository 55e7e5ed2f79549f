/* hex.h - lower-case hexadecimal, as ids appear in the control API and logs. */
#ifndef CHP_HEX_H
#define CHP_HEX_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

/* Writes 2n hex digits and a NUL to out (2n + 1 bytes). */
void chp_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2n hex digits (either case) from s (slen bytes) into out
 * (n bytes). CHP_OK, or CHP_E_ARG for a wrong length or a non-digit (out
 * then holds garbage). */
CHP_WUR int chp_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);

#endif
