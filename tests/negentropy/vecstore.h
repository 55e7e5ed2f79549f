/* vecstore.h - a sorted in-memory array behind chp_neg_storage, for the
 * Negentropy conformance harness and unit tests (the analogue of the
 * reference's storage::Vector). Items are added, then sealed (sorted, with
 * duplicates refused); ranges are found by binary search. */
#ifndef CHP_TEST_VECSTORE_H
#define CHP_TEST_VECSTORE_H

#include "proto/err.h"
#include "proto/negentropy.h"

#include <stddef.h>
#include <stdint.h>

typedef struct vecstore vecstore;

/* NULL when out of memory. */
vecstore *vecstore_new(void);
/* Accepts NULL; sets *vp = NULL. Sessions using the store must be gone. */
void vecstore_destroy(vecstore **vp);

/* Copies the item in. CHP_E_ARG after seal or for the reserved infinity
 * timestamp (UINT64_MAX); CHP_E_NOMEM. */
CHP_WUR int vecstore_add(vecstore *v, uint64_t ts, const uint8_t id[32]);

/* Sorts by (ts, id) and builds the fingerprint prefix sums. CHP_E_DUP when
 * the same (ts, id) was added twice; CHP_E_ARG when already sealed. */
CHP_WUR int vecstore_seal(vecstore *v);

size_t vecstore_size(const vecstore *v);
/* The i-th item in order (sealed store, i < size); the id pointer lives as
 * long as the store. */
void vecstore_item(const vecstore *v, size_t i, uint64_t *ts, const uint8_t **id);

/* The storage interface over a sealed store. with_fp = 0 leaves the
 * fingerprint hook NULL so the engine's iterate-based fallback runs. The
 * store must outlive every session made from it. */
chp_neg_storage vecstore_storage(vecstore *v, int with_fp);

#endif
