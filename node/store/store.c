/* store.c - the store's base: open and close, read and write transactions,
 * the meta counters, node settings, stats, and the panic wipe. */
#include "node/store/store_int.h"

#include "proto/crypto.h"
#include "proto/cursor.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int chp_st_lmdb_err(int rc)
{
    switch (rc) {
    case 0:
        return CHP_OK;
    case MDB_NOTFOUND:
        return CHP_E_NOT_FOUND;
    case MDB_KEYEXIST:
        return CHP_E_DUP;
    case MDB_MAP_FULL:
    case ENOSPC:
        return CHP_E_STORE_FULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return CHP_E_CORRUPT;
    case ENOMEM:
        return CHP_E_NOMEM;
    default:
        return CHP_E_STORE;
    }
}

/* ---- meta counters ---- */

uint64_t chp_st_meta_u64(MDB_txn *t, MDB_dbi dbi, const char *name)
{
    MDB_val k = val(name, strlen(name)), v;
    if (mdb_get(t, dbi, &k, &v) != 0 || v.mv_size != 8)
        return 0;
    return chp_be64(v.mv_data);
}

int chp_st_meta_put_u64(MDB_txn *t, MDB_dbi dbi, const char *name, uint64_t x)
{
    uint8_t b[8];
    chp_put_be64(b, x);
    MDB_val k = val(name, strlen(name)), v = val(b, 8);
    return mdb_put(t, dbi, &k, &v, 0);
}

void chp_st_settle(chp_store *s)
{
    if (s->bg.settle)
        s->bg.settle(s);
}

/* ---- read transactions ---- */

/* Read transactions: the handle's cached one, reset between uses; a read
 * nested inside another (a range callback reading the store) gets a
 * transaction of its own, so it cannot reset the outer walk's. */
int chp_st_rbegin(chp_store *s, MDB_txn **t)
{
    if (s->rbusy)
        return chp_st_lmdb_err(mdb_txn_begin(s->env, NULL, MDB_RDONLY, t));
    int rc = s->rtxn ? mdb_txn_renew(s->rtxn) : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map: adopt its size and retry (no write
         * transaction of ours may be running meanwhile). */
        chp_st_settle(s);
        if (s->rtxn) {
            mdb_txn_abort(s->rtxn);
            s->rtxn = NULL;
        }
        mdb_env_set_mapsize(s->env, 0);
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
    }
    if (rc) {
        s->rtxn = NULL;
        return chp_st_lmdb_err(rc);
    }
    s->rbusy = 1;
    *t = s->rtxn;
    return CHP_OK;
}

void chp_st_rend(chp_store *s, MDB_txn *t)
{
    if (t == s->rtxn) {
        mdb_txn_reset(t);
        s->rbusy = 0;
    } else {
        mdb_txn_abort(t);
    }
}

int chp_st_rcur_open(chp_store *s, MDB_dbi dbi, MDB_txn **t, MDB_cursor **c)
{
    int rc = chp_st_rbegin(s, t);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(*t, dbi, c))) {
        chp_st_rend(s, *t);
        return chp_st_lmdb_err(rc);
    }
    return CHP_OK;
}

void chp_st_rcur_close(chp_store *s, MDB_txn *t, MDB_cursor *c)
{
    mdb_cursor_close(c);
    chp_st_rend(s, t);
}

static void drop_reader(chp_store *s)
{
    assert(!s->rbusy); /* no write (map resize) inside a range callback */
    if (s->rtxn) {
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
    }
}

/* Begins a write transaction (child of parent, or top-level). When another
 * process grew the map since we last looked, adopt its size and retry. */
int chp_st_wbegin(chp_store *s, MDB_txn *parent, MDB_txn **t)
{
    int rc = mdb_txn_begin(s->env, parent, 0, t);
    /* The writer thread leaves a map grown by another process to the
     * owning thread (no transaction of ours may be open while adopting). */
    if (rc == MDB_MAP_RESIZED && !parent && !s->bg.thread_txn) {
        MDB_envinfo info;
        drop_reader(s);
        mdb_env_set_mapsize(s->env, 0);
        if (mdb_env_info(s->env, &info) == 0 && info.me_mapsize > s->map_size)
            s->map_size = info.me_mapsize;
        if (s->map_size > s->map_max)
            s->map_max = s->map_size;
        rc = mdb_txn_begin(s->env, NULL, 0, t);
    }
    return rc;
}

/* ---- the Bloom filter of ids ---- */

#define BLOOM_MIN_BITS (1ull << 20) /* 128 KiB */
#define BLOOM_PER_ID   16           /* bits per id it is sized for: ~0.2% maybe */

/* Three bit positions from the id's first 24 bytes: ids are BLAKE2b
 * outputs, so their words are already uniform (one crafted to collide
 * costs its sender nothing but us one lookup). */
static void bloom_pos(const chp_store *s, const uint8_t id[32], uint64_t pos[3])
{
    for (int k = 0; k < 3; k++) {
        uint64_t w;
        memcpy(&w, id + 8 * k, 8);
        pos[k] = w & (s->bloom_bits - 1);
    }
}

void chp_st_bloom_set(chp_store *s, const uint8_t id[32])
{
    if (!s->bloom)
        return;
    uint64_t pos[3];
    bloom_pos(s, id, pos);
    for (int k = 0; k < 3; k++)
        __atomic_fetch_or(&s->bloom[pos[k] >> 6], 1ull << (pos[k] & 63), __ATOMIC_RELAXED);
    s->bloom_added++;
}

int chp_st_bloom_maybe(const chp_store *s, const uint8_t id[32])
{
    if (!s->bloom)
        return 1;
    uint64_t pos[3];
    bloom_pos(s, id, pos);
    for (int k = 0; k < 3; k++)
        if (!(__atomic_load_n(&s->bloom[pos[k] >> 6], __ATOMIC_RELAXED) & (1ull << (pos[k] & 63))))
            return 0;
    return 1;
}

/* A filter sized for twice the ids stored, filled from the ids table; on
 * any failure there is none (every lookup goes to LMDB). */
static void bloom_build(chp_store *s)
{
    free(s->bloom);
    s->bloom = NULL;
    s->bloom_tried = 1;
    uint64_t bits = BLOOM_MIN_BITS;
    while (bits / BLOOM_PER_ID < 2 * s->st.envelopes && bits < (1ull << 36))
        bits <<= 1;
    MDB_txn *t;
    MDB_cursor *c;
    if (chp_st_rcur_open(s, s->ids, &t, &c) != CHP_OK)
        return;
    s->bloom = calloc(bits / 64, sizeof *s->bloom);
    s->bloom_bits = bits;
    s->bloom_added = 0;
    MDB_val k, v;
    int rc;
    for (rc = s->bloom ? mdb_cursor_get(c, &k, &v, MDB_FIRST) : MDB_NOTFOUND; rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        if (k.mv_size == 32)
            chp_st_bloom_set(s, k.mv_data);
    chp_st_rcur_close(s, t, c);
    if (rc != MDB_NOTFOUND) {
        free(s->bloom);
        s->bloom = NULL;
    }
}

void chp_st_bloom_check(chp_store *s)
{
    if (s->bloom ? s->bloom_added > s->bloom_bits / BLOOM_PER_ID : !s->bloom_tried)
        bloom_build(s);
}

/* ---- open / close ---- */

/* Schema 1 had no mine flag and no `kept` byte counter: derive it from
 * the envelopes (one walk, once). */
static int migrate_1(chp_store *s, MDB_txn *t, MDB_dbi envs)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint64_t kept = 0, mine = 0;
    int rc = mdb_cursor_open(t, envs, &c);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (v.mv_size < OLD_META) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint8_t flags = ((const uint8_t *)v.mv_data)[28];
        if (flags & FLAG_KEPT)
            kept += v.mv_size - OLD_META;
        mine += (flags & FLAG_MINE) != 0;
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return rc;
    if ((rc = chp_st_meta_put_u64(t, s->meta, "kept", kept)) ||
        (rc = chp_st_meta_put_u64(t, s->meta, "mine", mine)))
        return rc;
    return 0;
}

/* Schema 2 kept each envelope under its id; schema 3 keeps it under its
 * insertion sequence (appended, one page write per page of envelopes)
 * with a small id -> sequence table beside it. Every record moves in the
 * opening transaction: a crash leaves the old store or the new one. */
static int migrate_2(chp_store *s, MDB_txn *t, MDB_dbi envs)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc = mdb_cursor_open(t, envs, &c);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 32 || v.mv_size < OLD_META) {
            rc = MDB_CORRUPTED;
            break;
        }
        const uint8_t *m = v.mv_data;
        MDB_val ks = val(m + 29, 8), body = val(NULL, v.mv_size - OLD_META + BODY_META);
        if ((rc = mdb_put(t, s->ids, &k, &ks, MDB_NOOVERWRITE)) ||
            (rc = mdb_put(t, s->bodies, &ks, &body, MDB_RESERVE | MDB_NOOVERWRITE)))
            break;
        uint8_t *b = body.mv_data;
        memcpy(b, m, BODY_ID);
        memcpy(b + BODY_ID, k.mv_data, 32);
        memcpy(b + BODY_META, m + OLD_META, v.mv_size - OLD_META);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return rc;
    return mdb_drop(t, envs, 1);
}

/* Brings a schema-1 or -2 store to the current schema, in t. */
static int migrate(chp_store *s, MDB_txn *t, uint32_t found)
{
    MDB_dbi envs;
    int rc = mdb_dbi_open(t, "envelopes", 0, &envs);
    if (rc == MDB_NOTFOUND)
        return MDB_CORRUPTED; /* a schema 1 or 2 store always has it */
    if (rc || (found == 1 && (rc = migrate_1(s, t, envs))) || (rc = migrate_2(s, t, envs)))
        return rc;
    uint8_t b[4];
    chp_put_be32(b, CHP_STORE_SCHEMA);
    MDB_val ks = val("schema", 6), vs = val(b, 4);
    return mdb_put(t, s->meta, &ks, &vs, 0);
}

/* Bytes of the local tables (keys and values), summed at every open: one
 * walk of a table that holds the user's own records only, so no counter
 * on disk has to be kept in step (an older chapard would not). */
static int local_sum(chp_store *s, MDB_txn *t, uint64_t *sum)
{
    MDB_cursor *c;
    MDB_val k, v;
    *sum = 0;
    int rc = mdb_cursor_open(t, s->local, &c);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        *sum += k.mv_size + v.mv_size;
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int open_dbs(chp_store *s, uint32_t *found_schema)
{
    MDB_txn *t;
    int rc = chp_st_wbegin(s, NULL, &t);
    if (rc)
        return chp_st_lmdb_err(rc);
    if ((rc = mdb_dbi_open(t, "meta", MDB_CREATE, &s->meta)) ||
        (rc = mdb_dbi_open(t, "ids", MDB_CREATE, &s->ids)) ||
        (rc = mdb_dbi_open(t, "bodies", MDB_CREATE, &s->bodies)) ||
        (rc = mdb_dbi_open(t, "by_created", MDB_CREATE, &s->by_created)) ||
        (rc = mdb_dbi_open(t, "by_expiry", MDB_CREATE, &s->by_expiry)) ||
        (rc = mdb_dbi_open(t, "local", MDB_CREATE, &s->local)))
        goto abort_txn;
    MDB_val k = val("schema", 6), v;
    rc = mdb_get(t, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        uint8_t b[4];
        chp_put_be32(b, CHP_STORE_SCHEMA);
        v = val(b, 4);
        if ((rc = mdb_put(t, s->meta, &k, &v, 0)))
            goto abort_txn;
    } else if (rc) {
        goto abort_txn;
    } else {
        uint32_t found = v.mv_size == 4 ? chp_be32(v.mv_data) : 0;
        if (found_schema)
            *found_schema = found;
        if (found == 1 || found == 2) {
            if ((rc = migrate(s, t, found)))
                goto abort_txn;
            if (found_schema)
                *found_schema = CHP_STORE_SCHEMA;
        } else if (found != CHP_STORE_SCHEMA) {
            mdb_txn_abort(t);
            return CHP_E_STORE_SCHEMA;
        }
    }
    s->st.envelopes = chp_st_meta_u64(t, s->meta, "count");
    s->st.bytes = chp_st_meta_u64(t, s->meta, "bytes");
    s->st.own = chp_st_meta_u64(t, s->meta, "own");
    s->st.mine = chp_st_meta_u64(t, s->meta, "mine");
    s->st.kept = chp_st_meta_u64(t, s->meta, "kept");
    s->seq = chp_st_meta_u64(t, s->meta, "seq");
    if ((rc = local_sum(s, t, &s->st.local)))
        goto abort_txn;
    rc = mdb_txn_commit(t);
    return chp_st_lmdb_err(rc);
abort_txn:
    mdb_txn_abort(t);
    return chp_st_lmdb_err(rc);
}

int chp_store_open(const char *dir, const chp_store_opts *opts, chp_store **out,
                   uint32_t *found_schema)
{
    assert(dir && out);
    *out = NULL;
    if (found_schema)
        *found_schema = CHP_STORE_SCHEMA;
    struct stat db;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return CHP_E_IO;
    if (stat(dir, &db) != 0 || !S_ISDIR(db.st_mode))
        return CHP_E_IO;
    chp_store *s = calloc(1, sizeof *s);
    if (!s)
        return CHP_E_NOMEM;
    s->dir = strdup(dir);
    s->vfd = -1;
    s->rng = chp_rng_system();
    s->quota = opts && opts->quota ? opts->quota : CHP_STORE_QUOTA_DEFAULT;
    s->map_max = opts && opts->map_max ? opts->map_max : 2 * s->quota + MAP_MIN;
    int rc = CHP_E_NOMEM;
    if (!s->dir)
        goto close_fail;
    /* Start at the data file's size (or 64 MiB) and grow on demand. */
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    s->map_size = MAP_MIN < s->map_max ? MAP_MIN : s->map_max;
    if (stat(path, &sb) == 0 && (uint64_t)sb.st_size > s->map_size)
        s->map_size = (uint64_t)sb.st_size;
    if (s->map_size > s->map_max)
        s->map_max = s->map_size;
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (opts && opts->nosync ? MDB_NOSYNC : 0);
    if ((rc = mdb_env_create(&s->env)) || (rc = mdb_env_set_maxdbs(s->env, 8)) ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)s->map_size)) ||
        (rc = mdb_env_set_maxreaders(s->env, 126))) {
        rc = chp_st_lmdb_err(rc);
        goto close_fail;
    }
    rc = mdb_env_open(s->env, dir, flags, 0600);
    if (rc) {
        rc = rc == ENOENT || rc == EACCES || rc == ENOTDIR || rc == EPERM || rc == EROFS
                 ? CHP_E_IO
                 : chp_st_lmdb_err(rc);
        goto close_fail;
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead); /* slots of killed processes */
    if ((rc = open_dbs(s, found_schema)) != CHP_OK)
        goto close_fail;
    *out = s;
    return CHP_OK;
close_fail:
    chp_store_close(&s);
    return rc;
}

void chp_store_close(chp_store **sp)
{
    if (!sp || !*sp)
        return;
    chp_store *s = *sp;
    if (s->bg.stop)
        s->bg.stop(s);
    if (s->lq.n && s->keys) { /* best effort: the layer above flushes first */
        int rc = s->lqh.flush(s);
        (void)rc;
    }
    chp_st_lq_free(&s->lq);
    chp_st_lq_free(&s->blq);
    drop_reader(s);
    if (s->env)
        mdb_env_close(s->env);
    if (s->keys)
        chp_secure_free(s->keys);
    if (s->vfd >= 0)
        close(s->vfd);
    free(s->bloom);
    free(s->dir);
    free(s);
    *sp = NULL;
}

/* ---- write transactions ---- */

/* Runs fn(s, t, ctx) in one write transaction, then writes the counters
 * and commits; on any failure the in-memory counters are restored. Returns
 * the raw LMDB code (callers that must tell MDB_MAP_FULL apart need it). */
int chp_st_write_txn_raw(chp_store *s, chp_st_txn_fn fn, void *ctx)
{
    chp_store_stats saved = s->st;
    uint64_t saved_seq = s->seq;
    MDB_txn *t;
    int rc = chp_st_wbegin(s, NULL, &t);
    if (rc)
        return rc;
    rc = fn(s, t, ctx);
    if (rc == 0 && (rc = chp_st_meta_put_u64(t, s->meta, "count", s->st.envelopes)) == 0 &&
        (rc = chp_st_meta_put_u64(t, s->meta, "bytes", s->st.bytes)) == 0 &&
        (rc = chp_st_meta_put_u64(t, s->meta, "own", s->st.own)) == 0 &&
        (rc = chp_st_meta_put_u64(t, s->meta, "mine", s->st.mine)) == 0 &&
        (rc = chp_st_meta_put_u64(t, s->meta, "kept", s->st.kept)) == 0 &&
        (rc = chp_st_meta_put_u64(t, s->meta, "seq", s->seq)) == 0)
        rc = mdb_txn_commit(t);
    else
        mdb_txn_abort(t);
    if (rc) {
        s->st = saved;
        s->seq = saved_seq;
    }
    return rc;
}

/* Doubles the map (up to map_max); no read transaction of ours may be
 * open meanwhile. */
int chp_st_grow_map(chp_store *s)
{
    if (s->map_size >= s->map_max)
        return 0;
    uint64_t next = s->map_size * 2 < s->map_max ? s->map_size * 2 : s->map_max;
    drop_reader(s);
    if (mdb_env_set_mapsize(s->env, (size_t)next) != 0)
        return 0;
    s->map_size = next;
    return 1;
}

int chp_st_write_txn(chp_store *s, chp_st_txn_fn fn, void *ctx)
{
    chp_st_settle(s);
    return chp_st_lmdb_err(chp_st_write_txn_raw(s, fn, ctx));
}

/* For writes that are never refused for want of room (local records, a
 * mark): a full map grows and the transaction runs again. */
void chp_st_lq_free(struct chp_st_lq *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->rec[i]);
    free(q->lk);
    free(q->rec);
    free(q->total);
    memset(q, 0, sizeof *q);
}

int chp_st_write_grow(chp_store *s, chp_st_txn_fn fn, void *ctx)
{
    chp_st_settle(s);
    /* Local records waiting for a batch go first: a later put or delete
     * of the same key must not be undone by them. A failure is kept for
     * the next chp_store_local_flush to say. */
    if (s->lq.n && s->lqh.flush(s) != CHP_OK)
        s->lq_lost = 1;
    for (;;) {
        int rc = chp_st_write_txn_raw(s, fn, ctx);
        if (rc != MDB_MAP_FULL || !chp_st_grow_map(s))
            return chp_st_lmdb_err(rc);
    }
}

/* ---- node settings ---- */

struct setting {
    char key[64];
    size_t klen;
    const void *val;
    size_t len;
};

static int setting_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    struct setting *st = ctx;
    MDB_val k = val(st->key, st->klen), v = val(st->val, st->len);
    return mdb_put(t, s->meta, &k, &v, 0);
}

static int setting_key(const char *name, char key[64], size_t *klen)
{
    size_t n = strlen(name);
    if (n == 0 || n > 58)
        return CHP_E_ARG;
    memcpy(key, "node.", 5);
    memcpy(key + 5, name, n);
    *klen = n + 5;
    return CHP_OK;
}

int chp_store_setting_put(chp_store *s, const char *name, const void *v, size_t len)
{
    assert(s && name && (v || len == 0));
    struct setting st = {.val = v, .len = len};
    int rc = setting_key(name, st.key, &st.klen);
    return rc == CHP_OK ? chp_st_write_txn(s, setting_fn, &st) : rc;
}

int chp_store_setting_get(chp_store *s, const char *name, void *buf, size_t cap, size_t *len)
{
    assert(s && name && (buf || cap == 0) && len);
    char key[64];
    size_t klen;
    MDB_txn *t;
    int rc = setting_key(name, key, &klen);
    if (rc != CHP_OK || (rc = chp_st_rbegin(s, &t)) != CHP_OK)
        return rc;
    MDB_val k = val(key, klen), v;
    rc = mdb_get(t, s->meta, &k, &v);
    if (rc == 0) {
        *len = v.mv_size;
        if (cap < v.mv_size)
            rc = CHP_E_OVERFLOW;
        else
            memcpy(buf, v.mv_data, v.mv_size);
    } else {
        rc = chp_st_lmdb_err(rc);
    }
    chp_st_rend(s, t);
    return rc;
}

/* ---- stats, wipe ---- */

void chp_store_stats_get(chp_store *s, chp_store_stats *out)
{
    assert(s && out);
    /* While the writer thread owns s->st, the counters as of the last
     * settled batch: a status request must not stall the loop for a
     * commit (the caller's own counters say what was accepted). */
    *out = s->bg.started && !s->bg.settled ? s->st_done : s->st;
    out->bytes += out->local; /* what the quota counts, all of it */
    out->kept += out->local;
    out->quota = s->quota;
    out->map_size = s->map_size;
    /* No foreign byte fits beside own and mine ones that fill the quota. */
    if (out->kept >= s->quota)
        out->full = 1;
}

int chp_store_wipe(chp_store **sp)
{
    assert(sp && *sp);
    chp_store *s = *sp;
    char *dir = s->dir;
    s->dir = NULL;
    chp_st_lq_free(&s->lq); /* nothing waiting is written into what goes */
    chp_store_close(sp);
    char path[4096];
    int rc = CHP_OK;
    static const char *const files[] = {"data.mdb", "lock.mdb", VAULT_FILE};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            rc = CHP_E_IO;
    }
    free(dir);
    return rc;
}

void chp_store_set_quota(chp_store *s, uint64_t quota)
{
    assert(s && quota);
    chp_st_settle(s); /* the writer thread reads the quota while it evicts */
    s->quota = quota;
    if (s->map_max < 2 * quota + MAP_MIN)
        s->map_max = 2 * quota + MAP_MIN;
}
