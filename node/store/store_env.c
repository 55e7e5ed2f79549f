/* store_env.c - envelopes: the batched put with its quota and eviction,
 * get, delete, mark, expiry sweep, and walks in (created, id) and
 * insertion order. */
#include "node/store/store_int.h"

#include "proto/buf.h"
#include "proto/cursor.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#define EXP_KEY 16 /* u64 expiry || u64 insertion sequence */
#define EXP_VAL 33 /* flags u8 || id */
#define IDX_KEY 40 /* u64 time || id */
/* Bytes the quota counts: envelopes and local records. Local records are
 * the user's own data, kept like own envelopes. */
#define USED(s)      ((s)->st.bytes + (s)->st.local)
#define KEPT_USED(s) ((s)->st.kept + (s)->st.local)

/* ---- envelopes ---- */

static void idx_key(uint8_t k[IDX_KEY], uint64_t t, const uint8_t id[32])
{
    chp_put_be64(k, t);
    memcpy(k + 8, id, 32);
}

/* The stored record of envelope id (metadata, then the envelope) into
 * *v, pointing into the map: read-only, valid while t lives and writes
 * nothing; its sequence (the key in bodies, 8 bytes big-endian) into
 * seq. Raw LMDB code; MDB_CORRUPTED when the two tables disagree. */
static int env_rec(chp_store *s, MDB_txn *t, const uint8_t id[32], MDB_val *v, uint8_t seq[8])
{
    MDB_val k = val(id, 32), sv;
    int rc = mdb_get(t, s->ids, &k, &sv);
    if (rc)
        return rc;
    if (sv.mv_size != 8)
        return MDB_CORRUPTED;
    memcpy(seq, sv.mv_data, 8);
    MDB_val ks = val(seq, 8);
    if ((rc = mdb_get(t, s->bodies, &ks, v)))
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    if (v->mv_size < BODY_META || memcmp((const uint8_t *)v->mv_data + BODY_ID, id, 32))
        return MDB_CORRUPTED;
    return 0;
}

/* Deletes one envelope inside write txn t, keeping the counters. */
static int del_in(chp_store *s, MDB_txn *t, const uint8_t id[32])
{
    MDB_val k = val(id, 32), v;
    uint8_t seq[8];
    int rc = env_rec(s, t, id, &v, seq);
    if (rc)
        return rc;
    const uint8_t *m = v.mv_data;
    uint64_t created = chp_be64(m), expiry = chp_be64(m + 8);
    uint8_t flags = m[28];
    size_t len = v.mv_size - BODY_META;
    uint8_t ik[IDX_KEY], ek[EXP_KEY];
    idx_key(ik, created, id);
    chp_put_be64(ek, expiry);
    memcpy(ek + 8, seq, 8);
    MDB_val kc = val(ik, IDX_KEY), ke = val(ek, EXP_KEY), ks = val(seq, 8);
    if ((rc = mdb_del(t, s->by_created, &kc, NULL)) && rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_del(t, s->by_expiry, &ke, NULL)) && rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_del(t, s->bodies, &ks, NULL)) || (rc = mdb_del(t, s->ids, &k, NULL)))
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
    int rc = chp_st_wbegin(s, parent, &t);
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

/* Local records are never refused by quota; foreign envelopes make room
 * for them, nearest expiry first, as for the user's own envelopes. */
int chp_st_local_room(chp_store *s, MDB_txn *t)
{
    int fits;
    return USED(s) > s->quota ? evict_in(s, t, 0, UINT64_MAX, &fits) : 0;
}

static int put_one(chp_store *s, MDB_txn *t, chp_store_item *it, int refuse_foreign)
{
    MDB_val k = val(it->id, 32), v;
    int kept = it->own || it->mine;
    int over = USED(s) + it->len > s->quota || (!kept && refuse_foreign);
    /* Under quota the NOOVERWRITE put below is the duplicate check (one
     * lookup); over quota, look first so a duplicate evicts nothing. */
    if (over && mdb_get(t, s->ids, &k, &v) == 0) {
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
    /* The id -> sequence put is the duplicate check; the body goes after
     * the last one (an append: no page but the last is touched). */
    uint8_t seq[8];
    chp_put_be64(seq, s->seq + 1);
    MDB_val ks = val(seq, 8);
    int rc = mdb_put(t, s->ids, &k, &ks, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        it->result = CHP_E_DUP;
        return 0;
    }
    if (rc)
        return rc;
    chp_st_bloom_set(s, it->id); /* before the commit: an aborted one only adds a "maybe" */
    v.mv_size = BODY_META + it->len;
    if ((rc = mdb_put(t, s->bodies, &ks, &v, MDB_RESERVE | MDB_APPEND)) == MDB_KEYEXIST)
        rc = mdb_put(t, s->bodies, &ks, &v, MDB_RESERVE | MDB_NOOVERWRITE); /* not the last */
    if (rc)
        return rc;
    uint8_t *m = v.mv_data;
    chp_put_be64(m, it->created);
    chp_put_be64(m + 8, it->expiry);
    chp_put_be64(m + 16, it->received);
    chp_put_be32(m + 24, it->link);
    m[28] = (uint8_t)((it->own ? FLAG_OWN : 0) | (it->mine ? FLAG_MINE : 0));
    memcpy(m + BODY_ID, it->id, 32);
    memcpy(m + BODY_META, it->env, it->len);
    it->seq = ++s->seq;
    uint8_t ik[IDX_KEY], ek[EXP_KEY], ev[EXP_VAL];
    idx_key(ik, it->created, it->id);
    MDB_val kc = val(ik, IDX_KEY), empty = val("", 0);
    if ((rc = mdb_put(t, s->by_created, &kc, &empty, 0)))
        return rc;
    chp_put_be64(ek, it->expiry);
    memcpy(ek + 8, seq, 8);
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
    return rc || !s->lqh.write ? rc : s->lqh.write(s, t); /* local records riding it */
}

/* One attempt at the whole batch (raw LMDB code): run by the owning
 * thread, or by the writer thread while the owning one only reads. */
int chp_st_try_batch(chp_store *s, chp_store_item *items, size_t n, int refuse_foreign)
{
    struct batch b = {items, n, refuse_foreign};
    return chp_st_write_txn_raw(s, batch_fn, &b);
}

void chp_st_batch_prep(chp_store_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert(items[i].env && items[i].id);
        items[i].result = CHP_E_STORE;
    }
}

static int touch_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    (void)s, (void)t, (void)ctx;
    return 0; /* the counters chp_st_write_txn_raw rewrites are the change */
}

/* Given the first attempt's raw code: grows the map on MDB_MAP_FULL, and
 * when it cannot grow (or the disk is full) retries with foreign envelopes
 * refused; then sets the results and counters. Owning thread only.
 *
 * LMDB reuses the pages a commit freed only from the commit after it on
 * (the last snapshot may still be read), so a full map just swept or
 * evicted has room that the next batch cannot use yet: one small commit
 * (the counters, unchanged) makes it usable, and the batch is tried again
 * before any foreign envelope is refused. */
int chp_st_batch_finish(chp_store *s, chp_store_item *items, size_t n, int rc)
{
    int refuse = 0, touched = 0;
    for (;;) {
        if (rc == MDB_MAP_RESIZED) { /* met by the writer thread: adopt and redo */
            rc = chp_st_try_batch(s, items, n, refuse);
            continue;
        }
        if (rc != MDB_MAP_FULL && rc != ENOSPC)
            break;
        if (rc == MDB_MAP_FULL && chp_st_grow_map(s)) {
            rc = chp_st_try_batch(s, items, n, refuse);
            continue;
        }
        if (rc == MDB_MAP_FULL && !touched++ && chp_st_write_txn_raw(s, touch_fn, NULL) == 0) {
            rc = chp_st_try_batch(s, items, n, refuse);
            continue;
        }
        if (s->blq.n) { /* first without the local records riding it */
            s->lqh.done(s, 0);
            rc = chp_st_try_batch(s, items, n, refuse);
            continue;
        }
        if (refuse)
            break;  /* even the user's own envelopes do not fit */
        refuse = 1; /* disk or map full: keep own traffic, refuse foreign */
        rc = chp_st_try_batch(s, items, n, refuse);
    }
    if (rc) {
        for (size_t i = 0; i < n; i++)
            items[i].result = chp_st_lmdb_err(rc);
        return chp_st_lmdb_err(rc);
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
    chp_st_settle(s);
    chp_st_batch_prep(items, n);
    if (n == 0)
        return CHP_OK;
    chp_st_bloom_check(s);
    if (s->lqh.take)
        s->lqh.take(s); /* the local records waiting ride this batch */
    int rc = chp_st_batch_finish(s, items, n, chp_st_try_batch(s, items, n, 0));
    if (s->lqh.done)
        s->lqh.done(s, rc == CHP_OK);
    return rc;
}

int chp_store_has(chp_store *s, const uint8_t id[32])
{
    assert(s && id);
    if (!chp_st_bloom_maybe(s, id))
        return 0;
    MDB_txn *t;
    int rc = chp_st_rbegin(s, &t);
    if (rc)
        return rc;
    MDB_val k = val(id, 32), v;
    rc = mdb_get(t, s->ids, &k, &v);
    chp_st_rend(s, t);
    return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : chp_st_lmdb_err(rc);
}

int chp_store_get(chp_store *s, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len,
                  chp_store_meta *meta)
{
    assert(s && id && (buf || cap == 0) && len);
    MDB_txn *t;
    int rc = chp_st_rbegin(s, &t);
    if (rc)
        return rc;
    MDB_val v;
    uint8_t seq[8];
    if ((rc = env_rec(s, t, id, &v, seq))) {
        rc = chp_st_lmdb_err(rc);
        goto out;
    }
    const uint8_t *m = v.mv_data;
    *len = v.mv_size - BODY_META;
    if (meta) {
        meta->created = chp_be64(m);
        meta->expiry = chp_be64(m + 8);
        meta->received = chp_be64(m + 16);
        meta->link = chp_be32(m + 24);
        meta->own = (m[28] & FLAG_OWN) != 0;
        meta->mine = (m[28] & FLAG_MINE) != 0;
        meta->seq = chp_be64(seq);
    }
    if (cap < *len) {
        rc = CHP_E_OVERFLOW;
        goto out;
    }
    if (*len) /* buf may be NULL with cap 0 (chp_store_mark_mine) */
        memcpy(buf, m + BODY_META, *len);
    rc = CHP_OK;
out:
    chp_st_rend(s, t);
    return rc;
}

static int del_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    return del_in(s, t, ctx);
}

int chp_store_del(chp_store *s, const uint8_t id[32])
{
    assert(s && id);
    return chp_st_write_txn(s, del_fn, (void *)id);
}

static int mark_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    const uint8_t *id = ctx;
    MDB_val v;
    uint8_t seq[8];
    int rc = env_rec(s, t, id, &v, seq);
    if (rc)
        return rc;
    const uint8_t *m = v.mv_data;
    uint8_t flags = m[28];
    if (flags & FLAG_MINE)
        return 0;
    size_t len = v.mv_size - BODY_META;
    uint8_t ek[EXP_KEY], ev[EXP_VAL];
    chp_put_be64(ek, chp_be64(m + 8));
    memcpy(ek + 8, seq, 8);
    /* A value LMDB returned is read-only: write a changed copy. */
    uint8_t *rec = malloc(v.mv_size);
    if (!rec)
        return ENOMEM;
    memcpy(rec, m, v.mv_size);
    rec[28] = flags | FLAG_MINE;
    MDB_val nv = val(rec, v.mv_size), ks = val(seq, 8);
    rc = mdb_put(t, s->bodies, &ks, &nv, 0);
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
    chp_store_meta m = {0}; /* set by chp_store_get on CHP_OK and CHP_E_OVERFLOW */
    size_t len;
    /* Already marked (or gone): answered by a read, no commit. */
    int rc = chp_store_get(s, id, NULL, 0, &len, &m);
    if (rc != CHP_OK && rc != CHP_E_OVERFLOW)
        return rc;
    if (m.mine)
        return CHP_OK;
    return chp_st_write_grow(s, mark_fn, (void *)id);
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
        rc = chp_st_write_txn(s, sweep_fn, &w);
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
    int rc = chp_st_rcur_open(s, s->by_created, &t, &c);
    if (rc)
        return rc;
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
    chp_st_rcur_close(s, t, c);
    if (rc && rc != MDB_NOTFOUND)
        return chp_st_lmdb_err(rc);
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
    if (after == UINT64_MAX)
        return CHP_OK;
    int rc = chp_st_rcur_open(s, s->bodies, &t, &c);
    if (rc)
        return rc;
    uint8_t from[8];
    chp_put_be64(from, after + 1);
    MDB_val k = val(from, 8), v;
    int ret = CHP_OK;
    /* bodies are in insertion order: the walk starts after `after` */
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || v.mv_size < BODY_META)
            continue;
        const uint8_t *m = v.mv_data;
        if ((ret = chp_grow(&e, &cap, n + 1, sizeof *e)) != CHP_OK)
            break;
        e[n].created = chp_be64(m);
        e[n].seq = chp_be64(k.mv_data);
        memcpy(e[n].id, m + BODY_ID, 32);
        n++;
    }
    chp_st_rcur_close(s, t, c);
    if (ret == CHP_OK && rc && rc != MDB_NOTFOUND)
        ret = chp_st_lmdb_err(rc);
    if (ret == CHP_OK && n)
        qsort(e, n, sizeof *e, since_cmp);
    for (size_t i = 0; ret == CHP_OK && i < n; i++)
        ret = fn(ctx, e[i].id, e[i].seq);
    free(e);
    return ret;
}
