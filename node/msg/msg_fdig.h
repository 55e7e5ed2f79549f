/* msg_fdig.h - what msg_file.c asks of msg_fdig.c: an incoming file's
 * piece digests and the check of a complete file from them. Internal to
 * node/msg (msg_int.h's rules). */
#ifndef CHP_MSG_FDIG_H
#define CHP_MSG_FDIG_H

#include "node/msg/msg_int.h"

/* Frees x's digests, wiped. */
void chp_msgi_fdig_free(struct xfile *x);
/* Frees them and marks them not known: x is read back when complete. */
void chp_msgi_fdig_drop(struct xfile *x);
/* Keeps piece i's digest d (its len data bytes), or drops them all (a
 * piece far ahead of the manifest, a second short piece, no memory). */
void chp_msgi_fdig_put(struct xfile *x, uint32_t i, const uint8_t d[32], size_t len);
/* 1 when the digest of every piece of complete x is known. */
int chp_msgi_fdig_known(const struct xfile *x);
/* The check of complete x from its digests (chp_msgi_fdig_known): CHP_OK,
 * CHP_E_MALFORMED (a piece's length) or CHP_E_CORRUPT (the hash). */
int chp_msgi_fdig_check(const struct xfile *x);

#endif
