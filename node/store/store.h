/* store.h - the LMDB store-and-forward queue of a node, and the user's
 * encrypted local tables. docs/STORAGE.md describes the layout.
 *
 * One store per data dir, one writer process (the daemon); other processes
 * (CLI, TUI) may open the same dir read-only-in-practice at the same time:
 * LMDB readers never block the writer. A chp_store handle is used by one
 * thread only (chp_store_put_start commits in a thread of the store's own). */
#ifndef CHP_STORE_H
#define CHP_STORE_H

#include "proto/err.h"
#include "proto/negentropy.h"

#include <stddef.h>
#include <stdint.h>

typedef struct chp_store chp_store;

#define CHP_STORE_SCHEMA        3              /* schema-1 and -2 stores are migrated on open */
#define CHP_STORE_QUOTA_DEFAULT (256ull << 20) /* bytes of envelopes */

typedef struct chp_store_opts {
    uint64_t quota;   /* max bytes of stored envelopes; 0 = default */
    uint64_t map_max; /* max LMDB map size; 0 = 2 * quota + 64 MiB */
    int nosync;       /* 1 = no fsync per commit (benchmarks only) */
} chp_store_opts;

/* Opens (creating it, mode 0700, if missing) the store in dir. Clears stale
 * reader slots left by killed processes. A schema-1 or -2 store is migrated to
 * the current schema in place (STORAGE.md). CHP_E_STORE_SCHEMA when the
 * store has another schema version; *found_schema (may be NULL) gets it.
 * CHP_E_IO when dir cannot be created or opened. */
CHP_WUR int chp_store_open(const char *dir, const chp_store_opts *opts, chp_store **out,
                           uint32_t *found_schema);
/* Closes; accepts NULL; sets *sp = NULL. Everything committed stays. */
void chp_store_close(chp_store **sp);

/* ---- envelopes ---- */

/* One envelope to ingest. The caller has run chp_envelope_check on it. */
typedef struct chp_store_item {
    const uint8_t *env; /* borrowed until chp_store_put_batch returns */
    size_t len;
    const uint8_t *id; /* 32 bytes */
    uint64_t created, expiry;
    uint64_t received; /* unix time it arrived */
    uint32_t link;     /* peer link it came from, 0 = made here */
    int own;           /* 1 = the user's own: never evicted or refused by quota */
    int mine;          /* 1 = addressed to the user (a contact's tag): as own */
    int result;        /* out: CHP_OK stored, CHP_E_DUP, CHP_E_STORE_FULL */
    uint64_t seq;      /* out, with CHP_OK: its insertion sequence (> 0) */
} chp_store_item;

/* Stores a batch in ONE write transaction (group commit). Returns CHP_OK
 * once the transaction is durably committed; only then is an item with
 * result CHP_OK accepted. Any other return means nothing of the batch was
 * stored. Quota (STORAGE.md): own and mine envelopes are never refused by
 * it; over quota they evict foreign ones (nearest expiry first) as far as
 * there are any. A foreign envelope evicts foreign ones that expire no
 * later than itself; if it still does not fit (or own and mine bytes
 * alone fill the quota) it gets CHP_E_STORE_FULL, as do all foreign
 * envelopes when the map cannot grow (disk full). */
CHP_WUR int chp_store_put_batch(chp_store *s, chp_store_item *items, size_t n);

/* The same, committed by the store's writer thread while the caller goes
 * on (receiving and checking the next batch). items and the bytes they
 * point to are borrowed until chp_store_put_wait returns; one batch at a
 * time. Meanwhile the caller may read (has, get, range, count,
 * fingerprint, setting_get, local_get, local_each); every other call waits
 * for the batch first. CHP_E_IO if the thread cannot be started (nothing
 * was started then). */
CHP_WUR int chp_store_put_start(chp_store *s, chp_store_item *items, size_t n);
/* 1 when the started batch is done (chp_store_put_wait will not block). */
int chp_store_put_ready(chp_store *s);
/* A descriptor that turns readable when a started batch is done, for the
 * caller's poll; -1 before the first chp_store_put_start. */
int chp_store_put_fd(chp_store *s);
/* Waits for the batch of chp_store_put_start and returns what
 * chp_store_put_batch would have: CHP_OK once it is durably committed, and
 * only then is an item with result CHP_OK accepted. */
CHP_WUR int chp_store_put_wait(chp_store *s);

/* Bookkeeping kept with every envelope. */
typedef struct chp_store_meta {
    uint64_t created, expiry, received;
    uint32_t link;
    int own, mine;
    uint64_t seq; /* insertion sequence: later envelopes have larger ones */
} chp_store_meta;

/* 1 if stored, 0 if not (one id lookup), negative on error. */
int chp_store_has(chp_store *s, const uint8_t id[32]);
/* Copies the envelope into buf; *len gets its size. meta may be NULL.
 * CHP_E_NOT_FOUND, CHP_E_OVERFLOW (cap too small, *len set). */
CHP_WUR int chp_store_get(chp_store *s, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len,
                          chp_store_meta *meta);
/* Removes one envelope (and its index entries). CHP_E_NOT_FOUND. */
CHP_WUR int chp_store_del(chp_store *s, const uint8_t id[32]);

/* Marks a stored envelope as addressed to the user (flags bit 1), for one
 * recognised only after it was stored (it arrived while the identity was
 * locked): from then on it counts as kept, never evicted or refused by
 * quota. Idempotent. CHP_E_NOT_FOUND when it is not stored. */
CHP_WUR int chp_store_mark_mine(chp_store *s, const uint8_t id[32]);

/* Removes every envelope with expiry <= now; *removed (may be NULL) gets
 * the count. */
CHP_WUR int chp_store_sweep(chp_store *s, uint64_t now, uint64_t *removed);

/* Calls fn for every stored envelope whose insertion sequence is above
 * `after`, in (created, seq) order, until fn returns non-zero (then
 * returns that value); CHP_E_NOMEM. The messaging layer uses it to examine
 * what arrived while it could not (a locked identity, a crash). The id
 * pointer is valid only during the call; fn may read the store and write
 * local tables, not envelopes. One pass over the envelopes table. */
typedef int (*chp_store_since_fn)(void *ctx, const uint8_t id[32], uint64_t seq);
int chp_store_since(chp_store *s, uint64_t after, chp_store_since_fn fn, void *ctx);

/* ---- ranges for sync, in (created, id) order ---- */

/* A position in (created, id) order. id is compared as 32 bytes; a
 * Negentropy bound with a shorter id prefix is the prefix zero-padded. */
typedef struct chp_store_bound {
    uint64_t created;
    uint8_t id[32];
} chp_store_bound;

/* The lowest and past-the-highest bounds. */
chp_store_bound chp_store_bound_min(void);
chp_store_bound chp_store_bound_max(void); /* created = UINT64_MAX */

/* Calls fn for every item with lo <= (created, id) < hi, ascending, until
 * fn returns non-zero (then returns that value). The id pointer is valid
 * only during the call. fn may read the store (has/get/range) but must not
 * write to it. */
typedef int (*chp_store_range_fn)(void *ctx, uint64_t created, const uint8_t id[32]);
int chp_store_range(chp_store *s, const chp_store_bound *lo, const chp_store_bound *hi,
                    chp_store_range_fn fn, void *ctx);

/* Number of items with lo <= (created, id) < hi. */
CHP_WUR int chp_store_count(chp_store *s, const chp_store_bound *lo, const chp_store_bound *hi,
                            uint64_t *count);

/* Negentropy v1 fingerprint of [lo, hi): SHA-256(sum of ids as 256-bit
 * little-endian integers mod 2^256 || varint(count)), first 16 bytes.
 * *count (may be NULL) gets the number of items. */
CHP_WUR int chp_store_fingerprint(chp_store *s, const chp_store_bound *lo,
                                  const chp_store_bound *hi, uint8_t fp[16], uint64_t *count);
/* The same fingerprint over an explicit id array (for the sync engine and
 * for tests comparing with the store). */
void chp_fingerprint_ids(const uint8_t (*ids)[32], size_t n, uint8_t fp[16]);

/* The store's (created, id) index as the storage a Negentropy session
 * reconciles (proto/negentropy.h); valid while the store is open. */
void chp_store_neg_storage(chp_store *s, chp_neg_storage *out);

/* ---- counters ---- */

typedef struct chp_store_stats {
    uint64_t envelopes; /* stored now */
    uint64_t bytes;     /* bytes stored now: envelopes and local tables */
    uint64_t own;       /* of which the user's own */
    uint64_t mine;      /* of which addressed to the user */
    uint64_t kept;      /* bytes never evicted: own and mine envelopes, local tables */
    uint64_t local;     /* bytes of the local tables (LMDB keys and values) */
    uint64_t quota;
    uint64_t map_size; /* current LMDB map size */
    /* since open: */
    uint64_t accepted, duplicates, refused_full, evicted, expired;
    /* 1 while foreign envelopes are refused: the last foreign outcome was
     * a refusal (quota, map or disk full) and no sweep freed room since,
     * or own and mine envelopes alone fill the quota. */
    int full;
} chp_store_stats;

void chp_store_stats_get(chp_store *s, chp_store_stats *out);

/* A new quota (bytes) for a store that is open: chapard's reload on
 * SIGHUP. Waits for a batch the writer thread runs; the map may grow to
 * 2 * quota + 64 MiB from then on. A lower quota evicts at the next put. */
void chp_store_set_quota(chp_store *s, uint64_t quota);

/* ---- node settings (not encrypted: a relay has no storage key) ---- */

/* Small named values of the node itself, e.g. its transport key pair,
 * which is not the user's identity and must exist before any unlock.
 * name is an ASCII word prefixed "node." by the store. get copies up to
 * cap bytes and sets *len; CHP_E_NOT_FOUND, CHP_E_OVERFLOW. */
CHP_WUR int chp_store_setting_put(chp_store *s, const char *name, const void *val, size_t len);
CHP_WUR int chp_store_setting_get(chp_store *s, const char *name, void *buf, size_t cap,
                                  size_t *len);

/* ---- local tables, encrypted at rest ----
 *
 * Local records count against the quota like own envelopes (stats.bytes
 * and stats.kept include them): never refused or evicted by it, and a
 * record that does not fit evicts foreign envelopes, nearest expiry
 * first. The contacts and rooms tables hold keys: their records are
 * encrypted under a vault key that chp_store_local_del and
 * chp_store_local_put_forget replace, destroying the old one, so that no
 * earlier version of them left in the data file can be decrypted
 * (STORAGE.md, "Deleted secrets"). */

enum chp_store_table {
    CHP_TABLE_OUTBOX = 1,
    CHP_TABLE_HISTORY = 2,
    CHP_TABLE_CONTACTS = 3,
    CHP_TABLE_ROOMS = 4,
    CHP_TABLE_PEERS = 5,
    CHP_TABLE_CONFIG = 6,
    CHP_TABLE_FILES = 7,  /* file records (node/msg/msg_file.c) */
    CHP_TABLE_PIECES = 8, /* file pieces, sent and received */
};

/* Gives the store the 32-byte storage key (chp_identity_storage_key);
 * copied into guarded memory. Until then local-table calls fail with
 * CHP_E_LOCKED. The first key ever given is remembered by a check value;
 * a different key later is CHP_E_PASSPHRASE. Reads DIR/vault (the key of
 * the contacts and rooms tables) and finishes a vault key replacement a
 * crash interrupted; CHP_E_CORRUPT when the vault the store names is
 * missing or damaged (those tables cannot be read then), CHP_E_IO when
 * it cannot be opened. */
CHP_WUR int chp_store_unlock(chp_store *s, const uint8_t key[32]);

/* Records are (key, value) byte strings; both are encrypted on disk, and
 * the LMDB key is a keyed hash of (table, key). */
CHP_WUR int chp_store_local_put(chp_store *s, int table, const void *key, size_t klen,
                                const void *val, size_t vlen);
/* n records of one table written in one transaction (file pieces). */
typedef struct chp_store_lrec {
    const void *key, *val;
    size_t klen, vlen;
} chp_store_lrec;
CHP_WUR int chp_store_local_put_many(chp_store *s, int table, const chp_store_lrec *recs, size_t n);
/* The same records sealed now but written by the next batch's transaction
 * (chp_store_put_start, chp_store_put_batch: one commit and one fsync for
 * both), or by chp_store_local_flush, or before any other write of local
 * records (so a later put or delete of the same key wins); not read by
 * chp_store_local_get until then. About 64 wait: more are written at
 * once first. Not for the contacts and rooms tables. */
CHP_WUR int chp_store_local_put_later(chp_store *s, int table, const chp_store_lrec *recs,
                                      size_t n);
/* Writes the records still waiting, in a transaction of its own (a no-op
 * when none wait). An error (also for records a failed batch could not
 * keep waiting) means some may be lost. */
CHP_WUR int chp_store_local_flush(chp_store *s);
/* *val is malloc'ed plaintext (caller frees with chp_store_local_free,
 * which wipes it). CHP_E_NOT_FOUND, CHP_E_CORRUPT. */
CHP_WUR int chp_store_local_get(chp_store *s, int table, const void *key, size_t klen,
                                uint8_t **val, size_t *vlen);
/* Deletes one record; in the contacts and rooms tables the vault key is
 * replaced before it returns (every earlier version of their records
 * becomes undecryptable). CHP_E_NOT_FOUND. */
CHP_WUR int chp_store_local_del(chp_store *s, int table, const void *key, size_t klen);
/* chp_store_local_put for a record that drops key material its earlier
 * version held (a chain key advanced, a handshake secret wiped): once it
 * returns CHP_OK, no earlier version of any contacts or rooms record can
 * be decrypted from the data file. A crash in between is finished at the
 * next chp_store_unlock. */
CHP_WUR int chp_store_local_put_forget(chp_store *s, int table, const void *key, size_t klen,
                                       const void *val, size_t vlen);

/* One key of chp_store_local_del_many (borrowed for the call). */
typedef struct chp_store_lkey {
    const void *key;
    size_t klen;
} chp_store_lkey;
/* Deletes n records of table in one transaction (missing ones are
 * skipped); *deleted (may be NULL) gets how many were there. */
CHP_WUR int chp_store_local_del_many(chp_store *s, int table, const chp_store_lkey *keys, size_t n,
                                     size_t *deleted);
/* Calls fn for every record of table (in no meaningful order) until fn
 * returns non-zero. Pointers are valid only during the call. */
typedef int (*chp_store_local_fn)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
                                  size_t vlen);
int chp_store_local_each(chp_store *s, int table, chp_store_local_fn fn, void *ctx);
void chp_store_local_free(uint8_t *val, size_t vlen);

/* Panic button: closes the store and deletes its files (data.mdb,
 * lock.mdb, vault). Local tables were only ever on disk encrypted, under
 * a key that dies with the identity file (the caller deletes that first).
 * Sets *sp = NULL. */
CHP_WUR int chp_store_wipe(chp_store **sp);

#endif
