/* store.c - LMDB store-and-forward queue and encrypted local tables. */
#include "node/store/store.h"

#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/negentropy.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENV_META  37 /* created 8, expiry 8, received 8, link 4, flags 1, seq 8 */
#define EXP_KEY   16 /* u64 expiry || u64 insertion sequence */
#define EXP_VAL   33 /* flags u8 || id */
#define IDX_KEY   40 /* u64 time || id */
#define MAP_MIN   (64ull << 20)
#define LOCAL_KEY 17                     /* table u8 || keyed hash 16 */
#define FLAG_OWN  1                      /* the user's own (made here) */
#define FLAG_MINE 2                      /* addressed to the user (a contact's tag) */
#define FLAG_KEPT (FLAG_OWN | FLAG_MINE) /* never evicted or refused by quota */
/* Bytes the quota counts: envelopes and local records. Local records are
 * the user's own data, kept like own envelopes. */
#define USED(s)      ((s)->st.bytes + (s)->st.local)
#define KEPT_USED(s) ((s)->st.kept + (s)->st.local)

struct chp_store {
    MDB_env *env;
    MDB_dbi meta, envs, by_created, by_expiry, local;
    MDB_txn *rtxn; /* reusable read transaction (reset between uses) */
    int rbusy;     /* rtxn is in use (a nested read gets its own) */
    char *dir;
    uint64_t quota, map_max, map_size;
    uint64_t seq; /* insertion counter: makes expiry-index inserts appends */
    chp_store_stats st;
    chp_store_stats st_done; /* st before the batch in the writer thread */
    uint8_t *keys;           /* guarded: KEYS_LEN bytes (K_IDX ...), or NULL while locked */
    uint64_t vgen;           /* generation of the vault key (0: none yet) */
    int vfd;                 /* DIR/vault, or -1 (not opened yet) */
    const chp_rng *rng;
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
    } bg;
};

enum { BG_IDLE, BG_RUN, BG_DONE, BG_QUIT };

static void bg_settle(chp_store *s);
static void bg_close(chp_store *s);

static int lmdb_err(int rc)
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

static MDB_val val(const void *p, size_t n)
{
    MDB_val v = {n, (void *)p};
    return v;
}

/* ---- meta counters ---- */

static uint64_t meta_u64(MDB_txn *t, MDB_dbi dbi, const char *name)
{
    MDB_val k = val(name, strlen(name)), v;
    if (mdb_get(t, dbi, &k, &v) != 0 || v.mv_size != 8)
        return 0;
    return chp_be64(v.mv_data);
}

static int meta_put_u64(MDB_txn *t, MDB_dbi dbi, const char *name, uint64_t x)
{
    uint8_t b[8];
    chp_put_be64(b, x);
    MDB_val k = val(name, strlen(name)), v = val(b, 8);
    return mdb_put(t, dbi, &k, &v, 0);
}

/* ---- read transactions ---- */

/* Read transactions: the handle's cached one, reset between uses; a read
 * nested inside another (a range callback reading the store) gets a
 * transaction of its own, so it cannot reset the outer walk's. */
static int rbegin(chp_store *s, MDB_txn **t)
{
    if (s->rbusy)
        return lmdb_err(mdb_txn_begin(s->env, NULL, MDB_RDONLY, t));
    int rc = s->rtxn ? mdb_txn_renew(s->rtxn) : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map: adopt its size and retry (no write
         * transaction of ours may be running meanwhile). */
        bg_settle(s);
        if (s->rtxn) {
            mdb_txn_abort(s->rtxn);
            s->rtxn = NULL;
        }
        mdb_env_set_mapsize(s->env, 0);
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
    }
    if (rc) {
        s->rtxn = NULL;
        return lmdb_err(rc);
    }
    s->rbusy = 1;
    *t = s->rtxn;
    return CHP_OK;
}

static void rend(chp_store *s, MDB_txn *t)
{
    if (t == s->rtxn) {
        mdb_txn_reset(t);
        s->rbusy = 0;
    } else {
        mdb_txn_abort(t);
    }
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
static int wbegin(chp_store *s, MDB_txn *parent, MDB_txn **t)
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

/* ---- open / close ---- */

/* Schema 1 had no mine flag and no `kept` byte counter: derive it from
 * the envelopes (one walk, once) inside the opening transaction, so a
 * crash leaves either a schema-1 or a complete schema-2 store. */
static int migrate_1(chp_store *s, MDB_txn *t)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint64_t kept = 0, mine = 0;
    int rc = mdb_cursor_open(t, s->envs, &c);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (v.mv_size < ENV_META) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint8_t flags = ((const uint8_t *)v.mv_data)[28];
        if (flags & FLAG_KEPT)
            kept += v.mv_size - ENV_META;
        mine += (flags & FLAG_MINE) != 0;
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return rc;
    uint8_t b[4];
    chp_put_be32(b, CHP_STORE_SCHEMA);
    MDB_val ks = val("schema", 6), vs = val(b, 4);
    if ((rc = meta_put_u64(t, s->meta, "kept", kept)) ||
        (rc = meta_put_u64(t, s->meta, "mine", mine)))
        return rc;
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
    int rc = wbegin(s, NULL, &t);
    if (rc)
        return lmdb_err(rc);
    if ((rc = mdb_dbi_open(t, "meta", MDB_CREATE, &s->meta)) ||
        (rc = mdb_dbi_open(t, "envelopes", MDB_CREATE, &s->envs)) ||
        (rc = mdb_dbi_open(t, "by_created", MDB_CREATE, &s->by_created)) ||
        (rc = mdb_dbi_open(t, "by_expiry", MDB_CREATE, &s->by_expiry)) ||
        (rc = mdb_dbi_open(t, "local", MDB_CREATE, &s->local)))
        goto fail;
    MDB_val k = val("schema", 6), v;
    rc = mdb_get(t, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        uint8_t b[4];
        chp_put_be32(b, CHP_STORE_SCHEMA);
        v = val(b, 4);
        if ((rc = mdb_put(t, s->meta, &k, &v, 0)))
            goto fail;
    } else if (rc) {
        goto fail;
    } else {
        uint32_t found = v.mv_size == 4 ? chp_be32(v.mv_data) : 0;
        if (found_schema)
            *found_schema = found;
        if (found == 1) {
            if ((rc = migrate_1(s, t)))
                goto fail;
            if (found_schema)
                *found_schema = CHP_STORE_SCHEMA;
        } else if (found != CHP_STORE_SCHEMA) {
            mdb_txn_abort(t);
            return CHP_E_STORE_SCHEMA;
        }
    }
    s->st.envelopes = meta_u64(t, s->meta, "count");
    s->st.bytes = meta_u64(t, s->meta, "bytes");
    s->st.own = meta_u64(t, s->meta, "own");
    s->st.mine = meta_u64(t, s->meta, "mine");
    s->st.kept = meta_u64(t, s->meta, "kept");
    s->seq = meta_u64(t, s->meta, "seq");
    if ((rc = local_sum(s, t, &s->st.local)))
        goto fail;
    rc = mdb_txn_commit(t);
    return lmdb_err(rc);
fail:
    mdb_txn_abort(t);
    return lmdb_err(rc);
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
        goto fail;
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
        rc = lmdb_err(rc);
        goto fail;
    }
    rc = mdb_env_open(s->env, dir, flags, 0600);
    if (rc) {
        rc = rc == ENOENT || rc == EACCES || rc == ENOTDIR || rc == EPERM || rc == EROFS
                 ? CHP_E_IO
                 : lmdb_err(rc);
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead); /* slots of killed processes */
    if ((rc = open_dbs(s, found_schema)) != CHP_OK)
        goto fail;
    *out = s;
    return CHP_OK;
fail:
    chp_store_close(&s);
    return rc;
}

void chp_store_close(chp_store **sp)
{
    if (!sp || !*sp)
        return;
    chp_store *s = *sp;
    bg_close(s);
    drop_reader(s);
    if (s->env)
        mdb_env_close(s->env);
    if (s->keys)
        chp_secure_free(s->keys);
    if (s->vfd >= 0)
        close(s->vfd);
    free(s->dir);
    free(s);
    *sp = NULL;
}

/* ---- envelopes ---- */

static void idx_key(uint8_t k[IDX_KEY], uint64_t t, const uint8_t id[32])
{
    chp_put_be64(k, t);
    memcpy(k + 8, id, 32);
}

/* Deletes one envelope inside write txn t, keeping the counters. */
static int del_in(chp_store *s, MDB_txn *t, const uint8_t id[32])
{
    MDB_val k = val(id, 32), v;
    int rc = mdb_get(t, s->envs, &k, &v);
    if (rc)
        return rc;
    if (v.mv_size < ENV_META)
        return MDB_CORRUPTED;
    const uint8_t *m = v.mv_data;
    uint64_t created = chp_be64(m), expiry = chp_be64(m + 8);
    uint8_t flags = m[28];
    size_t len = v.mv_size - ENV_META;
    uint8_t ik[IDX_KEY], ek[EXP_KEY];
    idx_key(ik, created, id);
    chp_put_be64(ek, expiry);
    memcpy(ek + 8, m + 29, 8);
    MDB_val kc = val(ik, IDX_KEY), ke = val(ek, EXP_KEY);
    if ((rc = mdb_del(t, s->by_created, &kc, NULL)) && rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_del(t, s->by_expiry, &ke, NULL)) && rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_del(t, s->envs, &k, NULL)))
        return rc;
    s->st.envelopes--;
    s->st.bytes -= len;
    if (flags & FLAG_OWN)
        s->st.own--;
    if (flags & FLAG_MINE)
        s->st.mine--;
    if (flags & FLAG_KEPT)
        s->st.kept -= len;
    return 0;
}

/* Evicts foreign envelopes in expiry order (so expired ones first), none
 * that expires after limit, until need more bytes fit under the quota;
 * *fits stays 0 when nothing evictable is left. The walk resumes after
 * each victim, so own and mine entries are passed over once per call. */
static int evict_in(chp_store *s, MDB_txn *t, size_t need, uint64_t limit, int *fits)
{
    uint8_t from[EXP_KEY] = {0};
    *fits = USED(s) + need <= s->quota;
    while (!*fits) {
        MDB_cursor *c;
        MDB_val k = val(from, EXP_KEY), v;
        int rc = mdb_cursor_open(t, s->by_expiry, &c);
        if (rc)
            return rc;
        uint8_t victim[32];
        int found = 0;
        for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (k.mv_size != EXP_KEY || v.mv_size != EXP_VAL)
                continue;
            if (((const uint8_t *)v.mv_data)[0] & FLAG_KEPT)
                continue;
            if (chp_be64(k.mv_data) <= limit) {
                memcpy(victim, (const uint8_t *)v.mv_data + 1, 32);
                memcpy(from, k.mv_data, EXP_KEY);
                found = 1;
            }
            break;
        }
        mdb_cursor_close(c);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
        if (!found)
            return 0; /* nothing evictable: *fits stays 0 */
        if ((rc = del_in(s, t, victim)))
            return rc;
        s->st.evicted++;
        *fits = USED(s) + need <= s->quota;
    }
    return 0;
}

/* Frees room for a foreign newcomer of need bytes by evicting foreign
 * envelopes nearest expiry, but never one that lives longer than the
 * newcomer (expiry). The evictions run in a child transaction that is
 * kept only if the newcomer then fits: a refused newcomer costs nobody
 * their place. Own and mine bytes are never evicted, so a newcomer that
 * does not fit beside them alone is refused without a walk. */
static int evict_for(chp_store *s, MDB_txn *parent, size_t need, uint64_t expiry, int *fits)
{
    *fits = USED(s) + need <= s->quota;
    if (*fits || KEPT_USED(s) + need > s->quota)
        return 0;
    MDB_txn *t;
    int rc = wbegin(s, parent, &t);
    if (rc)
        return rc;
    chp_store_stats saved = s->st;
    rc = evict_in(s, t, need, expiry, fits);
    if (rc == 0 && *fits) {
        rc = mdb_txn_commit(t);
    } else {
        mdb_txn_abort(t);
        *fits = 0;
    }
    if (rc || !*fits)
        s->st = saved;
    return rc;
}

static int put_one(chp_store *s, MDB_txn *t, chp_store_item *it, int refuse_foreign)
{
    MDB_val k = val(it->id, 32), v;
    int kept = it->own || it->mine;
    int over = USED(s) + it->len > s->quota || (!kept && refuse_foreign);
    /* Under quota the NOOVERWRITE put below is the duplicate check (one
     * lookup); over quota, look first so a duplicate evicts nothing. */
    if (over && mdb_get(t, s->envs, &k, &v) == 0) {
        it->result = CHP_E_DUP;
        return 0;
    }
    if (over && kept) {
        /* Never refused by quota: it takes foreign envelopes' room, any
         * expiry, as far as there are any, and is stored either way. */
        int fits, rc = evict_in(s, t, it->len, UINT64_MAX, &fits);
        if (rc)
            return rc;
    } else if (over) {
        int fits = 0, rc = refuse_foreign ? 0 : evict_for(s, t, it->len, it->expiry, &fits);
        if (rc)
            return rc;
        if (!fits) {
            it->result = CHP_E_STORE_FULL;
            return 0;
        }
    }
    v.mv_size = ENV_META + it->len;
    int rc = mdb_put(t, s->envs, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        it->result = CHP_E_DUP;
        return 0;
    }
    if (rc)
        return rc;
    uint8_t *m = v.mv_data;
    chp_put_be64(m, it->created);
    chp_put_be64(m + 8, it->expiry);
    chp_put_be64(m + 16, it->received);
    chp_put_be32(m + 24, it->link);
    m[28] = (uint8_t)((it->own ? FLAG_OWN : 0) | (it->mine ? FLAG_MINE : 0));
    chp_put_be64(m + 29, ++s->seq);
    it->seq = s->seq;
    memcpy(m + ENV_META, it->env, it->len);
    uint8_t ik[IDX_KEY], ek[EXP_KEY], ev[EXP_VAL];
    idx_key(ik, it->created, it->id);
    MDB_val kc = val(ik, IDX_KEY), empty = val("", 0);
    if ((rc = mdb_put(t, s->by_created, &kc, &empty, 0)))
        return rc;
    chp_put_be64(ek, it->expiry);
    memcpy(ek + 8, m + 29, 8);
    ev[0] = m[28];
    memcpy(ev + 1, it->id, 32);
    MDB_val ke = val(ek, EXP_KEY), ve = val(ev, EXP_VAL);
    if ((rc = mdb_put(t, s->by_expiry, &ke, &ve, MDB_APPEND)) == MDB_KEYEXIST)
        rc = mdb_put(t, s->by_expiry, &ke, &ve, 0); /* not the last key: insert */
    if (rc)
        return rc;
    s->st.envelopes++;
    s->st.bytes += it->len;
    if (it->own)
        s->st.own++;
    if (it->mine)
        s->st.mine++;
    if (kept)
        s->st.kept += it->len;
    it->result = CHP_OK;
    return 0;
}

/* Runs fn(s, t, ctx) in one write transaction, then writes the counters
 * and commits; on any failure the in-memory counters are restored. Returns
 * the raw LMDB code (callers that must tell MDB_MAP_FULL apart need it). */
static int write_txn_raw(chp_store *s, int (*fn)(chp_store *, MDB_txn *, void *), void *ctx)
{
    chp_store_stats saved = s->st;
    uint64_t saved_seq = s->seq;
    MDB_txn *t;
    int rc = wbegin(s, NULL, &t);
    if (rc)
        return rc;
    rc = fn(s, t, ctx);
    if (rc == 0 && (rc = meta_put_u64(t, s->meta, "count", s->st.envelopes)) == 0 &&
        (rc = meta_put_u64(t, s->meta, "bytes", s->st.bytes)) == 0 &&
        (rc = meta_put_u64(t, s->meta, "own", s->st.own)) == 0 &&
        (rc = meta_put_u64(t, s->meta, "mine", s->st.mine)) == 0 &&
        (rc = meta_put_u64(t, s->meta, "kept", s->st.kept)) == 0 &&
        (rc = meta_put_u64(t, s->meta, "seq", s->seq)) == 0)
        rc = mdb_txn_commit(t);
    else
        mdb_txn_abort(t);
    if (rc) {
        s->st = saved;
        s->seq = saved_seq;
    }
    return rc;
}

struct batch {
    chp_store_item *items;
    size_t n;
    int refuse_foreign;
};

static int batch_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    struct batch *b = ctx;
    int rc = 0;
    for (size_t i = 0; i < b->n && rc == 0; i++)
        rc = put_one(s, t, &b->items[i], b->refuse_foreign);
    return rc;
}

/* One attempt at the whole batch (raw LMDB code). */
static int try_batch(chp_store *s, chp_store_item *items, size_t n, int refuse_foreign)
{
    struct batch b = {items, n, refuse_foreign};
    return write_txn_raw(s, batch_fn, &b);
}

static int grow_map(chp_store *s)
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

static void batch_prep(chp_store_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert(items[i].env && items[i].id);
        items[i].result = CHP_E_STORE;
    }
}

/* Given the first attempt's raw code: grows the map on MDB_MAP_FULL, and
 * when it cannot grow (or the disk is full) retries with foreign envelopes
 * refused; then sets the results and counters. Owning thread only. */
static int batch_finish(chp_store *s, chp_store_item *items, size_t n, int rc)
{
    int refuse = 0;
    for (;;) {
        if (rc == MDB_MAP_RESIZED) { /* met by the writer thread: adopt and redo */
            rc = try_batch(s, items, n, refuse);
            continue;
        }
        if (rc != MDB_MAP_FULL && rc != ENOSPC)
            break;
        if (rc == MDB_MAP_FULL && grow_map(s)) {
            rc = try_batch(s, items, n, refuse);
            continue;
        }
        if (refuse)
            break;  /* even the user's own envelopes do not fit */
        refuse = 1; /* disk or map full: keep own traffic, refuse foreign */
        rc = try_batch(s, items, n, refuse);
    }
    if (rc) {
        for (size_t i = 0; i < n; i++)
            items[i].result = lmdb_err(rc);
        return lmdb_err(rc);
    }
    /* Full while foreign envelopes are refused: any refusal sets it; an
     * accepted foreign envelope (and no refusal) clears it. */
    int refused = refuse, took = 0;
    for (size_t i = 0; i < n; i++) {
        int foreign = !items[i].own && !items[i].mine;
        if (items[i].result == CHP_OK) {
            s->st.accepted++;
            took |= foreign;
        } else if (items[i].result == CHP_E_DUP) {
            s->st.duplicates++;
        } else if (items[i].result == CHP_E_STORE_FULL) {
            s->st.refused_full++;
            refused = 1;
        }
    }
    if (refused)
        s->st.full = 1;
    else if (took)
        s->st.full = 0;
    return CHP_OK;
}

int chp_store_put_batch(chp_store *s, chp_store_item *items, size_t n)
{
    assert(s && (items || n == 0));
    bg_settle(s);
    batch_prep(items, n);
    if (n == 0)
        return CHP_OK;
    return batch_finish(s, items, n, try_batch(s, items, n, 0));
}

/* ---- background commit ---- */

static void *bg_main(void *arg)
{
    chp_store *s = arg;
    pthread_mutex_lock(&s->bg.mu);
    for (;;) {
        while (s->bg.state != BG_RUN && s->bg.state != BG_QUIT)
            pthread_cond_wait(&s->bg.cv, &s->bg.mu);
        if (s->bg.state == BG_QUIT)
            break;
        pthread_mutex_unlock(&s->bg.mu);
        /* The owning thread touches nothing but read transactions until
         * it settles this batch (bg_settle), so the store is ours. */
        s->bg.thread_txn = 1;
        int rc = try_batch(s, s->bg.items, s->bg.n, 0);
        s->bg.thread_txn = 0;
        pthread_mutex_lock(&s->bg.mu);
        s->bg.lmdb_rc = rc;
        s->bg.state = BG_DONE;
        pthread_cond_broadcast(&s->bg.cv);
        ssize_t w;
        do
            w = write(s->bg.fd[1], "", 1);
        while (w < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&s->bg.mu);
    return NULL;
}

static int bg_open(chp_store *s)
{
    if (s->bg.on)
        return CHP_OK;
    if (pipe(s->bg.fd) != 0)
        return CHP_E_IO;
    for (int i = 0; i < 2; i++) {
        fcntl(s->bg.fd[i], F_SETFD, FD_CLOEXEC);
        fcntl(s->bg.fd[i], F_SETFL, O_NONBLOCK);
    }
    if (pthread_mutex_init(&s->bg.mu, NULL) != 0)
        goto fail_pipe;
    if (pthread_cond_init(&s->bg.cv, NULL) != 0)
        goto fail_mu;
    s->bg.state = BG_IDLE;
    if (pthread_create(&s->bg.thread, NULL, bg_main, s) != 0)
        goto fail_cv;
    s->bg.on = 1;
    return CHP_OK;
fail_cv:
    pthread_cond_destroy(&s->bg.cv);
fail_mu:
    pthread_mutex_destroy(&s->bg.mu);
fail_pipe:
    close(s->bg.fd[0]);
    close(s->bg.fd[1]);
    return CHP_E_IO;
}

static void bg_close(chp_store *s)
{
    if (!s->bg.on)
        return;
    bg_settle(s);
    pthread_mutex_lock(&s->bg.mu);
    s->bg.state = BG_QUIT;
    pthread_cond_broadcast(&s->bg.cv);
    pthread_mutex_unlock(&s->bg.mu);
    pthread_join(s->bg.thread, NULL);
    pthread_cond_destroy(&s->bg.cv);
    pthread_mutex_destroy(&s->bg.mu);
    close(s->bg.fd[0]);
    close(s->bg.fd[1]);
    s->bg.on = 0;
}

/* Waits for a started batch and makes its outcome final (retries that need
 * the owning thread included). Every call that writes, or reads the
 * counters, settles first; the result stays for chp_store_put_wait. */
static void bg_settle(chp_store *s)
{
    if (!s->bg.started || s->bg.settled)
        return;
    pthread_mutex_lock(&s->bg.mu);
    while (s->bg.state != BG_DONE)
        pthread_cond_wait(&s->bg.cv, &s->bg.mu);
    s->bg.state = BG_IDLE;
    int rc = s->bg.lmdb_rc;
    pthread_mutex_unlock(&s->bg.mu);
    s->bg.rc = batch_finish(s, s->bg.items, s->bg.n, rc);
    s->bg.settled = 1;
}

int chp_store_put_start(chp_store *s, chp_store_item *items, size_t n)
{
    assert(s && (items || n == 0) && !s->bg.started);
    batch_prep(items, n);
    int rc = bg_open(s);
    if (rc != CHP_OK)
        return rc;
    s->bg.items = items;
    s->bg.n = n;
    s->st_done = s->st; /* what stats_get shows until this batch settles */
    s->bg.started = 1;
    s->bg.settled = 0;
    pthread_mutex_lock(&s->bg.mu);
    s->bg.state = BG_RUN;
    pthread_cond_broadcast(&s->bg.cv);
    pthread_mutex_unlock(&s->bg.mu);
    return CHP_OK;
}

int chp_store_put_ready(chp_store *s)
{
    assert(s);
    if (!s->bg.started)
        return 0;
    if (s->bg.settled)
        return 1;
    pthread_mutex_lock(&s->bg.mu);
    int done = s->bg.state == BG_DONE;
    pthread_mutex_unlock(&s->bg.mu);
    return done;
}

int chp_store_put_fd(chp_store *s)
{
    assert(s);
    return s->bg.on ? s->bg.fd[0] : -1;
}

int chp_store_put_wait(chp_store *s)
{
    assert(s && s->bg.started);
    bg_settle(s);
    char buf[64];
    while (read(s->bg.fd[0], buf, sizeof buf) > 0) {
    }
    s->bg.started = 0;
    return s->bg.rc;
}

int chp_store_has(chp_store *s, const uint8_t id[32])
{
    assert(s && id);
    MDB_txn *t;
    int rc = rbegin(s, &t);
    if (rc)
        return rc;
    MDB_val k = val(id, 32), v;
    rc = mdb_get(t, s->envs, &k, &v);
    rend(s, t);
    return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : lmdb_err(rc);
}

int chp_store_get(chp_store *s, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len,
                  chp_store_meta *meta)
{
    assert(s && id && (buf || cap == 0) && len);
    MDB_txn *t;
    int rc = rbegin(s, &t);
    if (rc)
        return rc;
    MDB_val k = val(id, 32), v;
    rc = mdb_get(t, s->envs, &k, &v);
    if (rc) {
        rc = lmdb_err(rc);
        goto out;
    }
    if (v.mv_size < ENV_META) {
        rc = CHP_E_CORRUPT;
        goto out;
    }
    const uint8_t *m = v.mv_data;
    *len = v.mv_size - ENV_META;
    if (meta) {
        meta->created = chp_be64(m);
        meta->expiry = chp_be64(m + 8);
        meta->received = chp_be64(m + 16);
        meta->link = chp_be32(m + 24);
        meta->own = (m[28] & FLAG_OWN) != 0;
        meta->mine = (m[28] & FLAG_MINE) != 0;
        meta->seq = chp_be64(m + 29);
    }
    if (cap < *len) {
        rc = CHP_E_OVERFLOW;
        goto out;
    }
    if (*len) /* buf may be NULL with cap 0 (chp_store_mark_mine) */
        memcpy(buf, m + ENV_META, *len);
    rc = CHP_OK;
out:
    rend(s, t);
    return rc;
}

static int write_txn(chp_store *s, int (*fn)(chp_store *, MDB_txn *, void *), void *ctx)
{
    bg_settle(s);
    return lmdb_err(write_txn_raw(s, fn, ctx));
}

static int del_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    return del_in(s, t, ctx);
}

int chp_store_del(chp_store *s, const uint8_t id[32])
{
    assert(s && id);
    return write_txn(s, del_fn, (void *)id);
}

static int mark_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    const uint8_t *id = ctx;
    MDB_val k = val(id, 32), v;
    int rc = mdb_get(t, s->envs, &k, &v);
    if (rc)
        return rc;
    if (v.mv_size < ENV_META)
        return MDB_CORRUPTED;
    const uint8_t *m = v.mv_data;
    uint8_t flags = m[28];
    if (flags & FLAG_MINE)
        return 0;
    size_t len = v.mv_size - ENV_META;
    uint8_t ek[EXP_KEY], ev[EXP_VAL];
    chp_put_be64(ek, chp_be64(m + 8));
    memcpy(ek + 8, m + 29, 8);
    /* A value LMDB returned is read-only: write a changed copy. */
    uint8_t *rec = malloc(v.mv_size);
    if (!rec)
        return ENOMEM;
    memcpy(rec, m, v.mv_size);
    rec[28] = flags | FLAG_MINE;
    MDB_val nv = val(rec, v.mv_size);
    rc = mdb_put(t, s->envs, &k, &nv, 0);
    free(rec);
    if (rc)
        return rc;
    ev[0] = flags | FLAG_MINE;
    memcpy(ev + 1, id, 32);
    MDB_val ke = val(ek, EXP_KEY), ve = val(ev, EXP_VAL);
    if ((rc = mdb_put(t, s->by_expiry, &ke, &ve, 0)))
        return rc;
    s->st.mine++;
    if (!(flags & FLAG_KEPT))
        s->st.kept += len;
    return 0;
}

int chp_store_mark_mine(chp_store *s, const uint8_t id[32])
{
    assert(s && id);
    chp_store_meta m;
    size_t len;
    /* Already marked (or gone): answered by a read, no commit. */
    int rc = chp_store_get(s, id, NULL, 0, &len, &m);
    if (rc != CHP_OK && rc != CHP_E_OVERFLOW)
        return rc;
    if (m.mine)
        return CHP_OK;
    bg_settle(s);
    for (;;) {
        rc = write_txn_raw(s, mark_fn, (void *)id);
        if (rc != MDB_MAP_FULL || !grow_map(s))
            return lmdb_err(rc);
    }
}

/* Deletions per sweep transaction: a transaction cannot reuse the pages it
 * frees, so one huge sweep of a full map would never fit. */
#define SWEEP_CHUNK 1024

struct sweep {
    uint64_t now;
    uint64_t limit, n; /* deletions allowed / done in this transaction */
};

static int sweep_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    struct sweep *w = ctx;
    while (w->n < w->limit) {
        MDB_cursor *c;
        MDB_val k, v;
        int rc = mdb_cursor_open(t, s->by_expiry, &c);
        if (rc)
            return rc;
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        uint8_t id[32];
        int expired = rc == 0 && k.mv_size == EXP_KEY && v.mv_size == EXP_VAL &&
                      chp_be64(k.mv_data) <= w->now;
        if (expired)
            memcpy(id, (const uint8_t *)v.mv_data + 1, 32);
        mdb_cursor_close(c);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
        if (!expired)
            return 0;
        if ((rc = del_in(s, t, id)))
            return rc;
        w->n++;
    }
    return 0;
}

int chp_store_sweep(chp_store *s, uint64_t now, uint64_t *removed)
{
    assert(s);
    uint64_t total = 0, chunk = SWEEP_CHUNK;
    int rc;
    for (;;) {
        struct sweep w = {now, chunk, 0};
        rc = write_txn(s, sweep_fn, &w);
        if (rc == CHP_E_STORE_FULL && chunk > 1) {
            chunk /= 2; /* fewer deletions need fewer fresh pages */
            continue;
        }
        if (rc != CHP_OK)
            break;
        total += w.n;
        s->st.expired += w.n;
        if (w.n)
            s->st.full = 0;
        if (w.n < chunk)
            break; /* nothing expired is left */
    }
    if (removed)
        *removed = total;
    return rc;
}

/* ---- ranges ---- */

chp_store_bound chp_store_bound_min(void)
{
    chp_store_bound b;
    memset(&b, 0, sizeof b);
    return b;
}

chp_store_bound chp_store_bound_max(void)
{
    chp_store_bound b;
    memset(&b, 0, sizeof b);
    b.created = UINT64_MAX;
    return b;
}

int chp_store_range(chp_store *s, const chp_store_bound *lo, const chp_store_bound *hi,
                    chp_store_range_fn fn, void *ctx)
{
    assert(s && lo && hi && fn);
    uint8_t lk[IDX_KEY], hk[IDX_KEY];
    idx_key(lk, lo->created, lo->id);
    idx_key(hk, hi->created, hi->id);
    MDB_txn *t;
    MDB_cursor *c;
    int rc = rbegin(s, &t);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(t, s->by_created, &c))) {
        rend(s, t);
        return lmdb_err(rc);
    }
    MDB_val k = val(lk, IDX_KEY), v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != IDX_KEY || memcmp(k.mv_data, hk, IDX_KEY) >= 0)
            break;
        const uint8_t *p = k.mv_data;
        if ((ret = fn(ctx, chp_be64(p), p + 8)) != 0)
            break;
    }
    mdb_cursor_close(c);
    rend(s, t);
    if (rc && rc != MDB_NOTFOUND)
        return lmdb_err(rc);
    return ret;
}

struct since_ent {
    uint64_t created, seq;
    uint8_t id[32];
};

static int since_cmp(const void *a, const void *b)
{
    const struct since_ent *x = a, *y = b;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int chp_store_since(chp_store *s, uint64_t after, chp_store_since_fn fn, void *ctx)
{
    assert(s && fn);
    struct since_ent *e = NULL;
    size_t n = 0, cap = 0;
    MDB_txn *t;
    MDB_cursor *c;
    int rc = rbegin(s, &t);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(t, s->envs, &c))) {
        rend(s, t);
        return lmdb_err(rc);
    }
    MDB_val k, v;
    int ret = CHP_OK;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 32 || v.mv_size < ENV_META)
            continue;
        const uint8_t *m = v.mv_data;
        uint64_t seq = chp_be64(m + 29);
        if (seq <= after)
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 256;
            struct since_ent *ne = realloc(e, nc * sizeof *e);
            if (!ne) {
                ret = CHP_E_NOMEM;
                break;
            }
            e = ne;
            cap = nc;
        }
        e[n].created = chp_be64(m);
        e[n].seq = seq;
        memcpy(e[n].id, k.mv_data, 32);
        n++;
    }
    mdb_cursor_close(c);
    rend(s, t);
    if (ret == CHP_OK && rc && rc != MDB_NOTFOUND)
        ret = lmdb_err(rc);
    if (ret == CHP_OK && n)
        qsort(e, n, sizeof *e, since_cmp);
    for (size_t i = 0; ret == CHP_OK && i < n; i++)
        ret = fn(ctx, e[i].id, e[i].seq);
    free(e);
    return ret;
}

void chp_fingerprint_ids(const uint8_t (*ids)[32], size_t n, uint8_t fp[16])
{
    uint8_t sum[32] = {0};
    for (size_t i = 0; i < n; i++)
        chp_neg_fp_add(sum, ids[i]);
    chp_neg_fp_final(sum, n, fp);
}

struct fpacc {
    uint8_t sum[32];
    uint64_t n;
};

static int fp_fn(void *ctx, uint64_t created, const uint8_t id[32])
{
    (void)created;
    struct fpacc *a = ctx;
    chp_neg_fp_add(a->sum, id);
    a->n++;
    return 0;
}

static int count_fn(void *ctx, uint64_t created, const uint8_t id[32])
{
    (void)created;
    (void)id;
    (*(uint64_t *)ctx)++;
    return 0;
}

int chp_store_count(chp_store *s, const chp_store_bound *lo, const chp_store_bound *hi,
                    uint64_t *count)
{
    assert(count);
    *count = 0;
    int rc = chp_store_range(s, lo, hi, count_fn, count);
    return rc < 0 ? rc : CHP_OK;
}

int chp_store_fingerprint(chp_store *s, const chp_store_bound *lo, const chp_store_bound *hi,
                          uint8_t fp[16], uint64_t *count)
{
    struct fpacc a;
    memset(&a, 0, sizeof a);
    int rc = chp_store_range(s, lo, hi, fp_fn, &a);
    if (rc != CHP_OK)
        return rc;
    chp_neg_fp_final(a.sum, a.n, fp);
    if (count)
        *count = a.n;
    return CHP_OK;
}

/* ---- the store as a Negentropy storage ---- */

static void to_store_bound(const chp_neg_bound *b, chp_store_bound *s)
{
    s->created = b->ts;
    memcpy(s->id, b->id, 32);
}

static int st_iterate(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi,
                      chp_neg_item_fn fn, void *fnctx)
{
    chp_store_bound a, b;
    to_store_bound(lo, &a);
    to_store_bound(hi, &b);
    int rc = chp_store_range(ctx, &a, &b, fn, fnctx);
    return rc < 0 ? rc : CHP_OK;
}

static int st_count(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi, uint64_t *cnt)
{
    chp_store_bound a, b;
    to_store_bound(lo, &a);
    to_store_bound(hi, &b);
    return chp_store_count(ctx, &a, &b, cnt);
}

static int st_fingerprint(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi,
                          uint8_t fp[16])
{
    chp_store_bound a, b;
    to_store_bound(lo, &a);
    to_store_bound(hi, &b);
    return chp_store_fingerprint(ctx, &a, &b, fp, NULL);
}

void chp_store_neg_storage(chp_store *s, chp_neg_storage *out)
{
    assert(s && out);
    out->ctx = s;
    out->iterate = st_iterate;
    out->count = st_count;
    out->fingerprint = st_fingerprint;
}

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
    return rc == CHP_OK ? write_txn(s, setting_fn, &st) : rc;
}

int chp_store_setting_get(chp_store *s, const char *name, void *buf, size_t cap, size_t *len)
{
    assert(s && name && (buf || cap == 0) && len);
    char key[64];
    size_t klen;
    MDB_txn *t;
    int rc = setting_key(name, key, &klen);
    if (rc != CHP_OK || (rc = rbegin(s, &t)) != CHP_OK)
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
        rc = lmdb_err(rc);
    }
    rend(s, t);
    return rc;
}

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

/* ---- local tables ---- */

/* s->keys, guarded memory: the index and encryption keys of the plain
 * tables, those of the key tables (contacts, rooms: derived from the
 * vault key, or the plain ones while there is no vault yet), and the key
 * that seals the vault file's slots. */
#define K_IDX    0
#define K_ENC    32
#define K_VIDX   64
#define K_VENC   96
#define K_SEAL   128
#define KEYS_LEN 160

/* DIR/vault: two slots of VAULT_SLOT bytes, overwritten in place. A slot
 * is nonce 24 || XAEAD(seal key, ad = "chapar-vault-v1" || slot number,
 * generation u64 || vault key 32), zero-padded; a wiped slot is zeros.
 * Generation g lives in slot g % 2, so replacing the key never writes
 * over the current one before the store has moved to the next. */
#define VAULT_FILE "vault"
#define VAULT_SLOT 512
#define VAULT_PT   40
#define VAULT_USED (CHP_AEAD_NONCE_BYTES + VAULT_PT + CHP_AEAD_TAG_BYTES)

static void sub_key(uint8_t out[32], const uint8_t key[32], const char *label)
{
    size_t ll = strlen(label) + 1; /* label and its 0x00, as chp_kdf */
    chp_hash(out, 32, label, ll, key, 32);
}

static int key_table(int table)
{
    return table == CHP_TABLE_CONTACTS || table == CHP_TABLE_ROOMS;
}

/* The index key 32 || encryption key 32 of the key tables under vault key
 * v, into out (64 bytes). */
static void vault_derive(uint8_t out[64], const uint8_t enc[32], const uint8_t v[32])
{
    uint8_t mixed[32];
    chp_hash(mixed, 32, v, 32, enc, 32);
    sub_key(out, mixed, "chapar-store-index-v1");
    sub_key(out + 32, mixed, "chapar-store-enc-v1");
    chp_memzero(mixed, sizeof mixed);
}

static const uint8_t *idx_key_of(const chp_store *s, int table)
{
    return s->keys + (key_table(table) ? K_VIDX : K_IDX);
}

static const uint8_t *enc_key_of(const chp_store *s, int table)
{
    return s->keys + (key_table(table) ? K_VENC : K_ENC);
}

static int unlock_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    const uint8_t *check = ctx;
    MDB_val k = val("keycheck", 8), v;
    int rc = mdb_get(t, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        v = val(check, 32);
        return mdb_put(t, s->meta, &k, &v, 0);
    }
    if (rc)
        return rc;
    if (v.mv_size != 32 || !chp_memeq(v.mv_data, check, 32))
        return MDB_KEYEXIST; /* mapped to a wrong-key error below */
    return 0;
}

static int table_ok(int table)
{
    return table >= CHP_TABLE_OUTBOX && table <= CHP_TABLE_CONFIG;
}

/* The LMDB key of (table, key) under index key idx. */
static void local_key(const uint8_t idx[32], int table, const void *key, size_t klen,
                      uint8_t out[LOCAL_KEY])
{
    uint8_t tb = (uint8_t)table;
    uint8_t h[64];
    /* H16(table || key) under the index key; table first so records of one
     * table are contiguous for iteration. */
    out[0] = tb;
    uint8_t *buf = malloc(klen + 1);
    assert(buf);
    buf[0] = tb;
    if (klen)
        memcpy(buf + 1, key, klen);
    chp_hash(h, 16, buf, klen + 1, idx, 32);
    chp_memzero(buf, klen + 1);
    free(buf);
    memcpy(out + 1, h, 16);
}

/* A record's LMDB value: nonce || XAEAD(enc, ad = lk, u32 klen || key ||
 * value), malloc'ed into *rec. */
static int local_seal(const chp_store *s, const uint8_t enc[32], const uint8_t lk[LOCAL_KEY],
                      const void *key, size_t klen, const void *val_, size_t vlen, uint8_t **rec,
                      size_t *total)
{
    size_t ptlen = 4 + klen + vlen;
    *total = CHP_AEAD_NONCE_BYTES + ptlen + CHP_AEAD_TAG_BYTES;
    uint8_t *r = malloc(*total);
    if (!r)
        return CHP_E_NOMEM;
    uint8_t *pt = r + CHP_AEAD_NONCE_BYTES;
    chp_rng_fill(s->rng, r, CHP_AEAD_NONCE_BYTES);
    chp_put_be32(pt, (uint32_t)klen);
    if (klen)
        memcpy(pt + 4, key, klen);
    if (vlen)
        memcpy(pt + 4 + klen, val_, vlen);
    chp_aead_encrypt(pt, pt, ptlen, lk, LOCAL_KEY, r, enc);
    *rec = r;
    return CHP_OK;
}

/* Decrypts one record into a fresh buffer: u32 klen || key || value. */
static int local_open(const uint8_t enc[32], const uint8_t lk[LOCAL_KEY], const MDB_val *v,
                      uint8_t **pt, size_t *ptlen)
{
    if (v->mv_size < CHP_AEAD_NONCE_BYTES + 4 + CHP_AEAD_TAG_BYTES)
        return CHP_E_CORRUPT;
    const uint8_t *rec = v->mv_data;
    *ptlen = v->mv_size - CHP_AEAD_NONCE_BYTES - CHP_AEAD_TAG_BYTES;
    *pt = malloc(*ptlen);
    if (!*pt)
        return CHP_E_NOMEM;
    if (chp_aead_decrypt(*pt, rec + CHP_AEAD_NONCE_BYTES, v->mv_size - CHP_AEAD_NONCE_BYTES, lk,
                         LOCAL_KEY, rec, enc) != CHP_OK ||
        chp_be32(*pt) > *ptlen - 4) {
        free(*pt);
        *pt = NULL;
        return CHP_E_CORRUPT;
    }
    return CHP_OK;
}

/* Runs a local-table write transaction, growing the map when it is full.
 * A record that takes the store over its quota evicts foreign envelopes
 * inside the same transaction (local_room). */
static int local_write(chp_store *s, int (*fn)(chp_store *, MDB_txn *, void *), void *ctx)
{
    bg_settle(s);
    for (;;) {
        int rc = write_txn_raw(s, fn, ctx);
        if (rc != MDB_MAP_FULL || !grow_map(s))
            return lmdb_err(rc);
    }
}

/* Local records are never refused by quota; foreign envelopes make room
 * for them, nearest expiry first, as for the user's own envelopes. */
static int local_room(chp_store *s, MDB_txn *t)
{
    int fits;
    return USED(s) > s->quota ? evict_in(s, t, 0, UINT64_MAX, &fits) : 0;
}

/* Puts (LMDB key, value) keeping st.local; old size from a lookup. */
static int local_put_in(chp_store *s, MDB_txn *t, const uint8_t lk[LOCAL_KEY], const uint8_t *rec,
                        size_t total)
{
    MDB_val k = val(lk, LOCAL_KEY), v;
    int rc = mdb_get(t, s->local, &k, &v);
    if (rc == 0)
        s->st.local -= LOCAL_KEY + v.mv_size;
    else if (rc != MDB_NOTFOUND)
        return rc;
    v = val(rec, total);
    if ((rc = mdb_put(t, s->local, &k, &v, 0)))
        return rc;
    s->st.local += LOCAL_KEY + total;
    return 0;
}

static int local_del_in(chp_store *s, MDB_txn *t, const uint8_t lk[LOCAL_KEY])
{
    MDB_val k = val(lk, LOCAL_KEY), v;
    int rc = mdb_get(t, s->local, &k, &v);
    if (rc)
        return rc;
    if ((rc = mdb_del(t, s->local, &k, NULL)))
        return rc;
    s->st.local -= LOCAL_KEY + v.mv_size;
    return 0;
}

/* The vault key must be replaced (set in the transaction that drops a
 * secret, cleared by the one that moves to the new key): a crash in
 * between is finished at the next unlock. */
static int set_due(chp_store *s, MDB_txn *t)
{
    return meta_put_u64(t, s->meta, "vault-due", 1);
}

/* ---- the vault ---- */

static int vault_fd(chp_store *s, int create)
{
    if (s->vfd >= 0)
        return CHP_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s->dir, VAULT_FILE);
    s->vfd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (s->vfd < 0)
        return errno == ENOENT ? CHP_E_NOT_FOUND : CHP_E_IO;
    return CHP_OK;
}

/* Overwrites slot i in place with b (VAULT_SLOT bytes) and syncs. */
static int slot_put(chp_store *s, unsigned i, const uint8_t *b)
{
    ssize_t w;
    do
        w = pwrite(s->vfd, b, VAULT_SLOT, (off_t)i * VAULT_SLOT);
    while (w < 0 && errno == EINTR);
    if (w != VAULT_SLOT || fdatasync(s->vfd) != 0)
        return CHP_E_IO;
    return CHP_OK;
}

static int slot_wipe(chp_store *s, unsigned i)
{
    uint8_t z[VAULT_SLOT] = {0};
    return slot_put(s, i, z);
}

static void slot_ad(uint8_t ad[16], unsigned i)
{
    memcpy(ad, "chapar-vault-v1", 15);
    ad[15] = (uint8_t)i;
}

static int slot_write(chp_store *s, uint64_t gen, const uint8_t v[32])
{
    uint8_t b[VAULT_SLOT] = {0}, pt[VAULT_PT], ad[16];
    unsigned i = (unsigned)(gen % 2);
    slot_ad(ad, i);
    chp_put_be64(pt, gen);
    memcpy(pt + 8, v, 32);
    chp_rng_fill(s->rng, b, CHP_AEAD_NONCE_BYTES);
    chp_aead_encrypt(b + CHP_AEAD_NONCE_BYTES, pt, VAULT_PT, ad, sizeof ad, b, s->keys + K_SEAL);
    chp_memzero(pt, sizeof pt);
    int rc = slot_put(s, i, b);
    chp_memzero(b, sizeof b);
    return rc;
}

/* Slot i: 1 and (gen, key) when it opens under the seal key, 0 when it is
 * zeros (wiped or never written), -1 when it holds anything else. */
static int slot_read(chp_store *s, const uint8_t *b, unsigned i, uint64_t *gen, uint8_t v[32])
{
    static const uint8_t zero[VAULT_SLOT];
    uint8_t pt[VAULT_PT], ad[16];
    if (!memcmp(b, zero, VAULT_SLOT))
        return 0;
    slot_ad(ad, i);
    if (chp_aead_decrypt(pt, b + CHP_AEAD_NONCE_BYTES, VAULT_PT + CHP_AEAD_TAG_BYTES, ad, sizeof ad,
                         b, s->keys + K_SEAL) != CHP_OK)
        return -1;
    *gen = chp_be64(pt);
    memcpy(v, pt + 8, 32);
    chp_memzero(pt, sizeof pt);
    return 1;
}

/* Moving the key tables to a new vault key: every record decrypted under
 * the current keys and written under the new ones (a new LMDB key too,
 * the index key changes with them), in one transaction that also names
 * the new generation. A record that does not decrypt cannot be carried
 * over and is dropped: nothing could read it anyway. */
struct rot {
    const uint8_t *nk; /* new index key 32 || encryption key 32 */
    uint64_t gen;
};

struct rot_rec {
    uint8_t lk[LOCAL_KEY];
    uint8_t *pt;
    size_t ptlen;
};

static void rot_free(struct rot_rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].pt) {
            chp_memzero(r[i].pt, r[i].ptlen);
            free(r[i].pt);
        }
    free(r);
}

static int rot_table(chp_store *s, MDB_txn *t, const struct rot *ro, int table)
{
    struct rot_rec *r = NULL;
    size_t n = 0, cap = 0;
    MDB_cursor *c;
    uint8_t first = (uint8_t)table;
    MDB_val k = val(&first, 1), v;
    int rc = mdb_cursor_open(t, s->local, &c);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != LOCAL_KEY || ((const uint8_t *)k.mv_data)[0] != first)
            break;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            struct rot_rec *nr = calloc(nc, sizeof *nr);
            if (!nr) {
                rc = ENOMEM;
                break;
            }
            if (n)
                memcpy(nr, r, n * sizeof *r);
            free(r); /* plaintext pointers moved, not copied */
            r = nr;
            cap = nc;
        }
        memcpy(r[n].lk, k.mv_data, LOCAL_KEY);
        int orc = local_open(enc_key_of(s, table), r[n].lk, &v, &r[n].pt, &r[n].ptlen);
        if (orc == CHP_E_NOMEM) {
            rc = ENOMEM;
            break;
        }
        n++; /* a damaged one (pt NULL) is deleted below, not carried */
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) {
        rot_free(r, n);
        return rc;
    }
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = local_del_in(s, t, r[i].lk);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!r[i].pt)
            continue;
        uint32_t kl = chp_be32(r[i].pt);
        const uint8_t *key = r[i].pt + 4, *vv = key + kl;
        uint8_t lk[LOCAL_KEY], *rec;
        size_t total;
        local_key(ro->nk, table, key, kl, lk);
        if (local_seal(s, ro->nk + 32, lk, key, kl, vv, r[i].ptlen - 4 - kl, &rec, &total) !=
            CHP_OK) {
            rc = ENOMEM;
            break;
        }
        rc = local_put_in(s, t, lk, rec, total);
        free(rec);
    }
    rot_free(r, n);
    return rc;
}

static int rot_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    const struct rot *ro = ctx;
    int rc;
    if ((rc = rot_table(s, t, ro, CHP_TABLE_CONTACTS)) ||
        (rc = rot_table(s, t, ro, CHP_TABLE_ROOMS)) ||
        (rc = meta_put_u64(t, s->meta, "vault", ro->gen)))
        return rc;
    MDB_val k = val("vault-due", 9);
    rc = mdb_del(t, s->meta, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Replaces the vault key: the next generation's key is written to its
 * slot first, then the key tables move to it in one transaction, then
 * the old slot is overwritten with zeros. A crash leaves the store on
 * one of the two keys, both in the file; the unlock wipes the other. */
static int vault_rotate(chp_store *s)
{
    uint8_t v[32];
    uint64_t old = s->vgen, gen = old + 1;
    uint8_t *nk = chp_secure_alloc(64);
    if (!nk)
        return CHP_E_NOMEM;
    chp_rng_fill(s->rng, v, sizeof v);
    vault_derive(nk, s->keys + K_ENC, v);
    int rc = vault_fd(s, 1);
    if (rc == CHP_OK)
        rc = slot_write(s, gen, v);
    chp_memzero(v, sizeof v);
    struct rot ro = {nk, gen};
    if (rc == CHP_OK && (rc = local_write(s, rot_fn, &ro)) != CHP_OK)
        (void)slot_wipe(s, (unsigned)(gen % 2));
    if (rc == CHP_OK) {
        memcpy(s->keys + K_VIDX, nk, 64);
        s->vgen = gen;
        if (old)
            rc = slot_wipe(s, (unsigned)(old % 2));
    }
    chp_secure_free(nk);
    return rc;
}

/* At unlock: the vault key the store names (meta `vault`), the other
 * slot wiped if a crash left anything in it, and a replacement a crash
 * interrupted (meta `vault-due`) finished. */
static int vault_load(chp_store *s)
{
    MDB_txn *t;
    int rc = rbegin(s, &t);
    if (rc)
        return rc;
    uint64_t gen = meta_u64(t, s->meta, "vault"), due = meta_u64(t, s->meta, "vault-due");
    rend(s, t);
    s->vgen = 0;
    memcpy(s->keys + K_VIDX, s->keys + K_IDX, 64); /* no vault yet: the plain keys */
    rc = vault_fd(s, 0);
    if (rc == CHP_E_NOT_FOUND && !gen)
        return vault_rotate(s); /* the first: records never rest under the plain keys */
    if (rc != CHP_OK)
        return rc == CHP_E_NOT_FOUND ? CHP_E_CORRUPT : rc;
    uint8_t b[2 * VAULT_SLOT] = {0}, v[32];
    ssize_t got;
    do
        got = pread(s->vfd, b, sizeof b, 0);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return CHP_E_IO;
    int found = 0;
    for (unsigned i = 0; i < 2 && rc == CHP_OK; i++) {
        uint64_t g = 0;
        int st = slot_read(s, b + i * VAULT_SLOT, i, &g, v);
        if (st == 1 && gen && g == gen && !found) {
            vault_derive(s->keys + K_VIDX, s->keys + K_ENC, v);
            found = 1;
        } else if (st != 0) {
            rc = slot_wipe(s, i); /* a key the store does not use: destroy it */
        }
    }
    chp_memzero(v, sizeof v);
    chp_memzero(b, sizeof b);
    if (rc != CHP_OK)
        return rc;
    if (gen && !found)
        return CHP_E_CORRUPT;
    s->vgen = gen;
    return due || !gen ? vault_rotate(s) : CHP_OK;
}

int chp_store_unlock(chp_store *s, const uint8_t key[32])
{
    assert(s && key);
    uint8_t check[32];
    sub_key(check, key, "chapar-store-check-v1");
    int rc = write_txn(s, unlock_fn, check);
    if (rc == CHP_E_DUP) /* a check value from another key is on file */
        return CHP_E_PASSPHRASE;
    if (rc != CHP_OK)
        return rc;
    if (!s->keys && !(s->keys = chp_secure_alloc(KEYS_LEN)))
        return CHP_E_NOMEM;
    sub_key(s->keys + K_IDX, key, "chapar-store-index-v1");
    sub_key(s->keys + K_ENC, key, "chapar-store-enc-v1");
    sub_key(s->keys + K_SEAL, key, "chapar-store-vault-v1");
    if ((rc = vault_load(s)) != CHP_OK) {
        chp_secure_free(s->keys);
        s->keys = NULL;
    }
    return rc;
}

struct lput {
    const uint8_t *lk, *rec;
    size_t total;
    int forget;
};

static int lput_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    const struct lput *p = ctx;
    int rc = local_put_in(s, t, p->lk, p->rec, p->total);
    if (rc == 0 && p->forget)
        rc = set_due(s, t);
    return rc ? rc : local_room(s, t);
}

static int local_put(chp_store *s, int table, const void *key, size_t klen, const void *val_,
                     size_t vlen, int forget)
{
    assert(s && (key || klen == 0) && (val_ || vlen == 0));
    if (!s->keys)
        return CHP_E_LOCKED;
    if (!table_ok(table) || klen > UINT32_MAX || vlen > (64u << 20))
        return CHP_E_ARG;
    uint8_t lk[LOCAL_KEY], *rec;
    size_t total;
    local_key(idx_key_of(s, table), table, key, klen, lk);
    int rc = local_seal(s, enc_key_of(s, table), lk, key, klen, val_, vlen, &rec, &total);
    if (rc != CHP_OK)
        return rc;
    struct lput p = {lk, rec, total, forget};
    rc = local_write(s, lput_fn, &p);
    free(rec);
    return rc == CHP_OK && forget ? vault_rotate(s) : rc;
}

int chp_store_local_put(chp_store *s, int table, const void *key, size_t klen, const void *val_,
                        size_t vlen)
{
    return local_put(s, table, key, klen, val_, vlen, 0);
}

int chp_store_local_put_forget(chp_store *s, int table, const void *key, size_t klen,
                               const void *val_, size_t vlen)
{
    return local_put(s, table, key, klen, val_, vlen, 1);
}

int chp_store_local_get(chp_store *s, int table, const void *key, size_t klen, uint8_t **out,
                        size_t *vlen)
{
    assert(s && (key || klen == 0) && out && vlen);
    *out = NULL;
    if (!s->keys)
        return CHP_E_LOCKED;
    if (!table_ok(table))
        return CHP_E_ARG;
    uint8_t lk[LOCAL_KEY], *pt;
    size_t ptlen;
    local_key(idx_key_of(s, table), table, key, klen, lk);
    MDB_txn *t;
    int rc = rbegin(s, &t);
    if (rc)
        return rc;
    MDB_val k = val(lk, LOCAL_KEY), v;
    rc = mdb_get(t, s->local, &k, &v);
    if (rc) {
        rend(s, t);
        return lmdb_err(rc);
    }
    rc = local_open(enc_key_of(s, table), lk, &v, &pt, &ptlen);
    rend(s, t);
    if (rc)
        return rc;
    uint32_t kl = chp_be32(pt);
    if (kl != klen || (klen && memcmp(pt + 4, key, klen) != 0)) {
        chp_store_local_free(pt, ptlen);
        return CHP_E_CORRUPT;
    }
    *vlen = ptlen - 4 - kl;
    memmove(pt, pt + 4 + kl, *vlen);
    chp_memzero(pt + *vlen, ptlen - *vlen);
    *out = pt;
    return CHP_OK;
}

struct ldel {
    int table;
    const chp_store_lkey *keys;
    size_t n, deleted;
};

static int ldel_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    struct ldel *d = ctx;
    d->deleted = 0;
    for (size_t i = 0; i < d->n; i++) {
        uint8_t lk[LOCAL_KEY];
        local_key(idx_key_of(s, d->table), d->table, d->keys[i].key, d->keys[i].klen, lk);
        int rc = local_del_in(s, t, lk);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc)
            return rc;
        d->deleted++;
    }
    return d->deleted && key_table(d->table) ? set_due(s, t) : 0;
}

int chp_store_local_del_many(chp_store *s, int table, const chp_store_lkey *keys, size_t n,
                             size_t *deleted)
{
    assert(s && (keys || n == 0));
    if (deleted)
        *deleted = 0;
    if (!s->keys)
        return CHP_E_LOCKED;
    if (!table_ok(table))
        return CHP_E_ARG;
    for (size_t i = 0; i < n; i++)
        assert(keys[i].key || keys[i].klen == 0);
    struct ldel d = {table, keys, n, 0};
    int rc = n ? local_write(s, ldel_fn, &d) : CHP_OK;
    if (rc == CHP_OK && d.deleted && key_table(table))
        rc = vault_rotate(s); /* its earlier versions die with the old key */
    if (deleted)
        *deleted = d.deleted;
    return rc;
}

int chp_store_local_del(chp_store *s, int table, const void *key, size_t klen)
{
    assert(s && (key || klen == 0));
    chp_store_lkey k = {key, klen};
    size_t n = 0;
    int rc = chp_store_local_del_many(s, table, &k, 1, &n);
    return rc == CHP_OK && n == 0 ? CHP_E_NOT_FOUND : rc;
}

int chp_store_local_each(chp_store *s, int table, chp_store_local_fn fn, void *ctx)
{
    assert(s && fn);
    if (!s->keys)
        return CHP_E_LOCKED;
    if (!table_ok(table))
        return CHP_E_ARG;
    MDB_txn *t;
    MDB_cursor *c;
    int rc = rbegin(s, &t), ret = 0;
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(t, s->local, &c))) {
        rend(s, t);
        return lmdb_err(rc);
    }
    uint8_t first = (uint8_t)table;
    MDB_val k = val(&first, 1), v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != LOCAL_KEY || ((const uint8_t *)k.mv_data)[0] != first)
            break;
        uint8_t *pt;
        size_t ptlen;
        if ((ret = local_open(enc_key_of(s, table), k.mv_data, &v, &pt, &ptlen)) != CHP_OK)
            break;
        uint32_t kl = chp_be32(pt);
        ret = fn(ctx, pt + 4, kl, pt + 4 + kl, ptlen - 4 - kl);
        chp_store_local_free(pt, ptlen);
        if (ret)
            break;
    }
    mdb_cursor_close(c);
    rend(s, t);
    if (rc && rc != MDB_NOTFOUND && !ret)
        return lmdb_err(rc);
    return ret;
}

void chp_store_local_free(uint8_t *val_, size_t vlen)
{
    if (!val_)
        return;
    chp_memzero(val_, vlen);
    free(val_);
}

int chp_store_wipe(chp_store **sp)
{
    assert(sp && *sp);
    chp_store *s = *sp;
    char *dir = s->dir;
    s->dir = NULL;
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
