/* store_int.h - the store's insides, shared by its files only (nothing
 * outside node/store/ includes it): the struct, the envelope record
 * layout, and the transaction helpers of store.c.
 *
 * The files, lowest first: store.c (open, close, transactions, counters,
 * settings), store_env.c (envelopes, ranges, eviction and quota),
 * store_local.c (encrypted local tables, the vault), store_writer.c (the
 * commit writer thread), store_neg.c (the Negentropy adapter). Each calls
 * only files before it; store.c reaches the writer thread through the
 * hooks the thread registers in s->bg. */
#ifndef CHP_STORE_INT_H
#define CHP_STORE_INT_H

#include "node/store/store.h"
#include "proto/crypto.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>

/* An envelope's value in the bodies table (keyed by its insertion
 * sequence): this metadata, then the envelope bytes (STORAGE.md). */
#define BODY_META 61 /* created 8, expiry 8, received 8, link 4, flags 1, id 32 */
#define BODY_ID   29 /* where the id sits in it */
/* Schema 1 and 2 kept them keyed by id in `envelopes`, the sequence where
 * the id is now; opening such a store moves them (store.c). */
#define OLD_META   37 /* created 8, expiry 8, received 8, link 4, flags 1, seq 8 */
#define FLAG_OWN   1  /* the user's own (made here) */
#define FLAG_MINE  2  /* addressed to the user (a contact's tag) */
#define FLAG_KEPT  (FLAG_OWN | FLAG_MINE) /* never evicted or refused by quota */
#define MAP_MIN    (64ull << 20)
#define VAULT_FILE "vault" /* DIR/vault: the key of the contacts and rooms tables */

enum { BG_IDLE, BG_RUN, BG_DONE, BG_QUIT };

struct chp_store {
    MDB_env *env;
    MDB_dbi meta, ids, bodies, by_created, by_expiry, local;
    MDB_txn *rtxn; /* reusable read transaction (reset between uses) */
    int rbusy;     /* rtxn is in use (a nested read gets its own) */
    char *dir;
    uint64_t quota, map_max, map_size;
    uint64_t seq; /* insertion counter: makes expiry-index inserts appends */
    /* A Bloom filter of every id in `ids` (store.c), so that the duplicate
     * lookup of a new envelope, almost every pushed one, needs no B-tree
     * descent. Bits are only ever set (by whichever thread commits; atomic
     * word ORs), never cleared: deleted ids read as "maybe", and cost the
     * lookup they would have cost anyway. Rebuilt from `ids` when more
     * ids were added than it was sized for. Only a handle that writes has
     * one (built at its first batch): a reader's would miss what the
     * writing process adds. NULL: always look up. */
    uint64_t *bloom;
    int bloom_tried;      /* built once (NULL after that: no memory) */
    uint64_t bloom_bits;  /* a power of two */
    uint64_t bloom_added; /* ids set since it was built */
    chp_store_stats st;
    chp_store_stats st_done; /* st before the batch in the writer thread */
    uint8_t *keys;           /* guarded: KEYS_LEN bytes (K_IDX ...), or NULL while locked */
    uint64_t vgen;           /* generation of the vault key (0: none yet) */
    int vfd;                 /* DIR/vault, or -1 (not opened yet) */
    const chp_rng *rng;
    /* Local records sealed and waiting to ride the next batch's write
     * transaction (chp_store_local_put_later): lq, filled by the owning
     * thread; blq, taken by the batch under way (its writer's until it
     * settles). */
    struct chp_st_lq {
        uint8_t (*lk)[17]; /* LOCAL_KEY */
        uint8_t **rec;
        size_t *total, n, cap;
    } lq, blq;
    int lq_lost; /* waiting records were dropped (no memory to keep them) */
    /* Set by store_local.c at the first chp_store_local_put_later (NULL
     * before, when nothing can wait), so the batch paths reach it without
     * a call back up: take (lq becomes the batch's blq, before its first
     * attempt), write (blq in the batch's transaction t, raw LMDB code),
     * done (after the batch settled: freed, or back in lq when !ok),
     * flush (chp_store_local_flush). */
    struct {
        void (*take)(chp_store *s);
        int (*write)(chp_store *s, MDB_txn *t);
        void (*done)(chp_store *s, int ok);
        int (*flush)(chp_store *s);
    } lqh;
    /* Background commit (chp_store_put_start): one writer thread, started
     * on first use, runs one batch's write transaction at a time. */
    struct {
        int on; /* thread and pipe exist */
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int fd[2]; /* a byte in fd[0] per finished batch */
        chp_store_item *items;
        size_t n;
        int state;      /* BG_IDLE, BG_RUN (thread owns the store), BG_DONE, BG_QUIT */
        int thread_txn; /* set by the writer thread around its transaction */
        int lmdb_rc;    /* the thread's attempt, raw LMDB code */
        int started;    /* a batch started whose result is not picked up */
        int settled;    /* ...and its outcome is final: rc below */
        int rc;
        /* Set by store_writer.c when it starts the thread (NULL before,
         * when there is nothing to wait for): settle waits for a started
         * batch and makes its outcome final, stop also ends the thread. */
        void (*settle)(chp_store *s);
        void (*stop)(chp_store *s);
    } bg;
};

static inline MDB_val val(const void *p, size_t n)
{
    MDB_val v = {n, (void *)p};
    return v;
}

/* A step run inside a write transaction; returns a raw LMDB code. */
typedef int (*chp_st_txn_fn)(chp_store *s, MDB_txn *t, void *ctx);

/* ---- store.c ---- */

/* The Bloom filter of ids (struct chp_store): set after an id is put,
 * asked before looking one up (0: certainly not stored); check builds it
 * before the handle's first batch and rebuilds it from the ids table when
 * grown past its size (owning thread, no batch running). */
void chp_st_bloom_set(chp_store *s, const uint8_t id[32]);
int chp_st_bloom_maybe(const chp_store *s, const uint8_t id[32]);
void chp_st_bloom_check(chp_store *s);

/* An LMDB (or errno) code as a chp_err. */
int chp_st_lmdb_err(int rc);

/* A u64 counter of the meta table (0 when missing); raw LMDB code. */
uint64_t chp_st_meta_u64(MDB_txn *t, MDB_dbi dbi, const char *name);
int chp_st_meta_put_u64(MDB_txn *t, MDB_dbi dbi, const char *name, uint64_t x);

/* Waits for a batch the writer thread runs, if any (s->bg.settle). */
void chp_st_settle(chp_store *s);

/* A read transaction, ended by chp_st_rend: the handle's cached one, or
 * one of its own for a read nested in another (a range callback reading
 * the store). chp_err. */
CHP_WUR int chp_st_rbegin(chp_store *s, MDB_txn **t);
void chp_st_rend(chp_store *s, MDB_txn *t);
/* A read transaction and a cursor on dbi, ended together by
 * chp_st_rcur_close. chp_err. */
CHP_WUR int chp_st_rcur_open(chp_store *s, MDB_dbi dbi, MDB_txn **t, MDB_cursor **c);
void chp_st_rcur_close(chp_store *s, MDB_txn *t, MDB_cursor *c);

/* A write transaction (a child of parent, or top-level); raw LMDB code. */
int chp_st_wbegin(chp_store *s, MDB_txn *parent, MDB_txn **t);
/* Runs fn in one write transaction, then writes the counters and commits;
 * on any failure the in-memory counters are restored. Raw LMDB code. */
int chp_st_write_txn_raw(chp_store *s, chp_st_txn_fn fn, void *ctx);
/* The same after settling the writer thread's batch; chp_err. */
CHP_WUR int chp_st_write_txn(chp_store *s, chp_st_txn_fn fn, void *ctx);
/* chp_st_write_txn, growing the map while it is full; chp_err. */
/* Frees the records of q and its arrays. */
void chp_st_lq_free(struct chp_st_lq *q);
CHP_WUR int chp_st_write_grow(chp_store *s, chp_st_txn_fn fn, void *ctx);
/* Doubles the map up to map_max: 1 if it grew. Owning thread only. */
int chp_st_grow_map(chp_store *s);

/* ---- store_env.c ---- */

/* Evicts foreign envelopes, nearest expiry first, until what the quota
 * counts fits under it again or none is left (local records and own
 * envelopes are never refused by quota). Raw LMDB code. */
int chp_st_local_room(chp_store *s, MDB_txn *t);
/* Readies a batch's results before a commit attempt. */
void chp_st_batch_prep(chp_store_item *items, size_t n);
/* One attempt at the whole batch in one write transaction; raw LMDB code.
 * The writer thread runs it while the owning thread waits. */
int chp_st_try_batch(chp_store *s, chp_store_item *items, size_t n, int refuse_foreign);
/* Given the first attempt's raw code: grows the map, retries with foreign
 * envelopes refused when it cannot, sets results and counters; chp_err.
 * Owning thread only. */
CHP_WUR int chp_st_batch_finish(chp_store *s, chp_store_item *items, size_t n, int rc);

#endif
