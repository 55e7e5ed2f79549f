/* testutil.h - what the tests share: an error-code assertion that names
 * both codes, deterministic randomness (a chp_rng stream and splitmix64)
 * so a failing run reproduces byte for byte, and small byte helpers.
 * Library chapar-testutil (links cmocka); fuzz/gen_corpus.c draws its
 * seeds from the same chp_rng stream. */
#ifndef CHP_TESTUTIL_H
#define CHP_TESTUTIL_H

#include "proto/crypto.h"
#include "proto/err.h"
#include "proto/identity.h"

#include <stddef.h>
#include <stdint.h>

/* Fails the running cmocka test unless expr returns the chp_err want,
 * printing both by name. Include <cmocka.h> before using it. */
#define assert_rc(expr, want)                                                                      \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        int want_ = (want);                                                                        \
        if (rc_ != want_)                                                                          \
            fail_msg("%s = %s, want %s", #expr, chp_errname(rc_), chp_errname(want_));             \
    } while (0)

/* A deterministic random stream for a chp_rng: block i is BLAKE2b-256 of
 * the big-endian counter i, keyed with label (NULL: unkeyed); each fill
 * starts a new block. Two streams with the same ctr and label give the
 * same bytes, and no block repeats. Zero-initialise, set ctr (and label). */
typedef struct tu_ctr {
    uint64_t ctr;      /* the next block's number */
    const char *label; /* hash key (16..64 bytes) or NULL; borrowed */
    size_t calls;      /* fills so far */
    size_t bytes;      /* bytes drawn so far */
} tu_ctr;

/* The chp_rng fill function; ctx is a tu_ctr. */
void tu_ctr_fill(void *ctx, uint8_t *buf, size_t n);
/* A chp_rng drawing from c, which must outlive it. */
chp_rng tu_ctr_rng(tu_ctr *c);

/* splitmix64: the next value of the stream whose state is *s (any seed). */
uint64_t tu_splitmix(uint64_t *s);

/* p[i] = i * 7 + seed: recognisable, distinct bytes. */
void tu_pattern(uint8_t *p, size_t n, uint8_t seed);
/* 1 if all n bytes of p are zero (n 0 included). */
int tu_all_zero(const void *p, size_t n);
/* 1 if the k bytes of needle occur in the n bytes of hay (k 0: yes). */
int tu_contains(const void *hay, size_t n, const void *needle, size_t k);

/* Decodes the 2n hex digits of hex into out; fails the test on any other
 * length or a non-digit. */
void tu_unhex(uint8_t *out, size_t n, const char *hex);

/* The identity whose seed is 32 bytes of fill; fails the test if it cannot
 * be made. The caller destroys it. */
chp_identity *tu_identity(uint8_t fill);

/* What whoever holds a copy of data dir `dir` and the storage key of its
 * identity can decrypt (issue 13, finding 12): fn gets the plaintext
 * (u32 klen || key || value) of every LMDB leaf anywhere in dir/data.mdb,
 * live page, free page or stale bytes between nodes, whose value opens
 * under the plain key of its local table or under the key of any vault
 * slot of dir/vault that opens (STORAGE.md, "Local table records").
 * table: that local table only, 0 any (1..6). */
void tu_seized_each(const char *dir, const uint8_t skey[32], int table,
                    void (*fn)(void *ctx, const uint8_t *pt, size_t n), void *ctx);

#endif
