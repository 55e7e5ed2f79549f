/* negentropy.h - range-based set reconciliation, byte-compatible with
 * hoytech/negentropy protocol v1 (docs/negentropy-protocol-v1.md there;
 * docs/PROTOCOL.md §14 here).
 *
 * Pure: the items live behind a storage interface the caller provides (the
 * node adapts its LMDB (created, id) index; the conformance harness a sorted
 * array). The engine addresses items by bounds, never by index, so a store
 * without positional access (LMDB) works without loading the set into
 * memory: each range operation is one ordered walk. */
#ifndef CHP_NEGENTROPY_H
#define CHP_NEGENTROPY_H

#include "proto/buf.h"
#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_NEG_VERSION     0x61
#define CHP_NEG_ID_BYTES    32
#define CHP_NEG_TS_INFINITY UINT64_MAX

/* A position in (timestamp, id) order; id bytes past idlen are zero. */
typedef struct chp_neg_bound {
    uint64_t ts;
    uint8_t id[CHP_NEG_ID_BYTES];
    uint8_t idlen; /* significant prefix length when encoded, 0..32 */
} chp_neg_bound;

typedef int (*chp_neg_item_fn)(void *ctx, uint64_t ts, const uint8_t id[32]);

/* What the engine needs of a sorted set. Ranges are [lo, hi), compared on
 * (ts, 32-byte zero-padded id). Every function returns CHP_OK or an error,
 * which the engine passes up. iterate stops early when fn returns non-zero
 * and then returns CHP_OK. */
typedef struct chp_neg_storage {
    void *ctx;
    int (*iterate)(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi, chp_neg_item_fn fn,
                   void *fnctx);
    int (*count)(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi, uint64_t *n);
    /* Optional (NULL = computed with iterate). */
    int (*fingerprint)(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi, uint8_t fp[16]);
} chp_neg_storage;


typedef struct chp_neg chp_neg;

/* frame_size_limit: 0 = none, else >= 4096; outgoing messages stay within
 * it (the protocol continues over more round trips instead). The storage
 * struct is copied; its ctx must outlive the session. */
CHP_WUR int chp_neg_new(const chp_neg_storage *st, uint64_t frame_size_limit, chp_neg **out);
void chp_neg_destroy(chp_neg **np);

/* Off (the default): ranges are split as the reference implementation
 * splits them (16 buckets, id lists below 32 items), so messages are
 * byte-identical to its. On: the staged split of PROTOCOL.md §14, the same
 * message format with fewer bytes when differences are scattered; either
 * side may use it whatever the other does. Set before the first message. */
void chp_neg_set_staged(chp_neg *n, int on);

/* Client: the first message, written to out (replacing its content). */
CHP_WUR int chp_neg_initiate(chp_neg *n, chp_buf *out);

/* Server: the reply to msg in out. A message of an unsupported version
 * gets the one-byte reply the spec asks for. */
CHP_WUR int chp_neg_respond(chp_neg *n, const uint8_t *msg, size_t len, chp_buf *out);

/* Client: processes the server's reply; reports ids only the client has
 * (have) and only the server has (need); writes the next query to out, or
 * leaves out->len == 0 when reconciliation is complete. */
CHP_WUR int chp_neg_reconcile(chp_neg *n, const uint8_t *msg, size_t len, chp_buf *out,
                              chp_neg_item_fn have, chp_neg_item_fn need, void *ctx);

/* Negentropy fingerprint helpers (also used by the store). */
void chp_neg_fp_add(uint8_t sum[32], const uint8_t id[32]);
void chp_neg_fp_final(const uint8_t sum[32], uint64_t count, uint8_t fp[16]);

/* Compares an item with a bound: <0, 0, >0. */
int chp_neg_cmp(uint64_t ts, const uint8_t id[32], const chp_neg_bound *b);

#endif
