/* want.h - a want summary: what a node holds, in one small record, so that
 * `chapar bundle export --for WANT` writes only the envelopes the wanting
 * node lacks (PROTOCOL.md §19.3).
 *
 * Two parts over the node's (created, id) items:
 * - up to 256 ranges of about equal count, each with its count and its
 *   Negentropy fingerprint: a range the exporter holds identically is
 *   skipped whole, and one the wanting node has nothing in is sent whole;
 * - an invertible Bloom lookup table (IBLT, Eppstein et al. 2011) of the
 *   items' 8-byte id prefixes: the exporter subtracts its own table and
 *   peels the difference, which names exactly the items it must send as
 *   long as the two sets differ by fewer than about 0.8 cells (3,000 items
 *   at the largest size).
 * When the table does not peel, the items of the ranges that differ are
 * sent without proof that they are missing (the overhead the exporter
 * reports). 100,000 items summarise in 63,064 bytes of file. */
#ifndef CHP_WANT_H
#define CHP_WANT_H

#include "proto/buf.h"
#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_WANT_RANGES_MAX 256
#define CHP_WANT_CELLS_MIN  96
#define CHP_WANT_CELLS_MAX  3840 /* a multiple of 3: one third per hash */
#define CHP_WANT_SALT       16

typedef struct chp_want_range {
    uint64_t hi_created; /* exclusive upper bound (created, id prefix); the */
    uint8_t hi_id[8];    /* last range's is (UINT64_MAX, ff..ff), unbounded */
    uint32_t count;
    uint8_t fp[16]; /* Negentropy fingerprint of its ids */
} chp_want_range;

typedef struct chp_want_cell {
    uint16_t count; /* items added minus removed, mod 2^16 */
    uint64_t key;   /* XOR of their 8-byte id prefixes (big-endian) */
    uint32_t check; /* XOR of check(key) */
} chp_want_cell;

typedef struct chp_want {
    uint8_t salt[CHP_WANT_SALT]; /* keys the table's hashes (random per file) */
    uint64_t total;              /* items summarised */
    uint16_t nranges;
    chp_want_range range[CHP_WANT_RANGES_MAX];
    uint32_t ncells;
    chp_want_cell *cells; /* malloc'ed, ncells */
    /* building: */
    uint64_t added;
    uint16_t cur;    /* the open range */
    uint8_t sum[32]; /* the open range's fingerprint sum */
    uint64_t last_created;
    uint8_t last_id[8];
} chp_want;

/* Starts a summary of total items (sizes the ranges and the table).
 * CHP_OK or CHP_E_NOMEM. chp_want_fini releases it. */
CHP_WUR int chp_want_init(chp_want *w, uint64_t total, const uint8_t salt[CHP_WANT_SALT]);
void chp_want_fini(chp_want *w);
/* Adds the next item, in ascending (created, id) order; exactly total of
 * them, then chp_want_encode. */
void chp_want_add(chp_want *w, uint64_t created, const uint8_t id[32]);
/* The summary as a CHP_REC_WANT payload, appended to out. */
CHP_WUR int chp_want_encode(const chp_want *w, chp_buf *out);
/* Parses a CHP_REC_WANT payload into w (chp_want_fini it on CHP_OK).
 * Strict: CHP_E_MALFORMED for bounds out of order, counts that do not add
 * up, a bad last bound, a table size out of range; CHP_E_TRUNCATED,
 * CHP_E_TRAILING; CHP_E_NOMEM. */
CHP_WUR int chp_want_decode(const uint8_t *p, size_t len, chp_want *w);

/* ---- the exporter's side: which of its items the summary lacks ---- */

typedef struct chp_want_cmp chp_want_cmp;

typedef struct chp_want_result {
    uint32_t ranges_equal; /* ranges held identically: skipped */
    uint32_t ranges_empty; /* ranges the wanting node has nothing in: sent whole */
    int decoded;           /* 1: the table peeled, what is sent is exactly missing */
    uint64_t peeled;       /* items the table named (either side) */
} chp_want_result;

/* Compares against w (borrowed until destroy). CHP_OK or CHP_E_NOMEM. */
CHP_WUR int chp_want_cmp_new(const chp_want *w, chp_want_cmp **out);
void chp_want_cmp_destroy(chp_want_cmp **cp);
/* First pass: every item of the exporter, ascending. */
void chp_want_cmp_add(chp_want_cmp *c, uint64_t created, const uint8_t id[32]);
/* Between the passes: peels the table. CHP_OK or CHP_E_NOMEM. */
CHP_WUR int chp_want_cmp_finish(chp_want_cmp *c, chp_want_result *res);
/* Second pass, the same items ascending: 1 to send the item, 0 when the
 * wanting node holds it. *proven (may be NULL) gets 1 when the summary
 * proves the item missing, 0 when it is sent because it could not tell. */
int chp_want_cmp_missing(chp_want_cmp *c, uint64_t created, const uint8_t id[32], int *proven);

#endif
