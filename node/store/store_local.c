/* store_local.c - the user's local tables, encrypted at rest, and the
 * vault (DIR/vault) whose key the contacts and rooms tables are under. */
#include "node/store/store_int.h"

#include "proto/buf.h"
#include "proto/crypto.h"
#include "proto/cursor.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOCAL_KEY 17 /* table u8 || keyed hash 16 */

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
    return table >= CHP_TABLE_OUTBOX && table <= CHP_TABLE_PIECES;
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
    return chp_st_meta_put_u64(t, s->meta, "vault-due", 1);
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
        /* The array holds pointers to plaintexts, not plaintexts: plain
         * growth moves them (rot_free wipes what they point to). */
        if (chp_grow(&r, &cap, n + 1, sizeof *r) != CHP_OK) {
            rc = ENOMEM;
            break;
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
        (rc = chp_st_meta_put_u64(t, s->meta, "vault", ro->gen)))
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
    if (rc == CHP_OK && (rc = chp_st_write_grow(s, rot_fn, &ro)) != CHP_OK)
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
    int rc = chp_st_rbegin(s, &t);
    if (rc)
        return rc;
    uint64_t gen = chp_st_meta_u64(t, s->meta, "vault"),
             due = chp_st_meta_u64(t, s->meta, "vault-due");
    chp_st_rend(s, t);
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
    int rc = chp_st_write_txn(s, unlock_fn, check);
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
    return rc ? rc : chp_st_local_room(s, t);
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
    rc = chp_st_write_grow(s, lput_fn, &p);
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

struct lputs {
    uint8_t (*lk)[LOCAL_KEY];
    uint8_t **rec;
    size_t *total, n;
};

static int lputs_fn(chp_store *s, MDB_txn *t, void *ctx)
{
    const struct lputs *p = ctx;
    for (size_t i = 0; i < p->n; i++) {
        int rc = local_put_in(s, t, p->lk[i], p->rec[i], p->total[i]);
        if (rc)
            return rc;
    }
    return chp_st_local_room(s, t);
}

static void lputs_free(struct lputs *p)
{
    for (size_t i = 0; p->rec && i < p->n; i++)
        free(p->rec[i]);
    free(p->lk);
    free(p->rec);
    free(p->total);
}

/* Each of recs' LMDB key into lk[i] and its sealed value into rec[i]
 * (total[i] bytes), in order; *sealed: how many, up to an error. */
static int seal_recs(chp_store *s, int table, const chp_store_lrec *recs, size_t n,
                     uint8_t (*lk)[LOCAL_KEY], uint8_t **rec, size_t *total, size_t *sealed)
{
    for (*sealed = 0; *sealed < n; ++*sealed) {
        const chp_store_lrec *r = &recs[*sealed];
        if (r->klen > UINT32_MAX || r->vlen > (64u << 20))
            return CHP_E_ARG;
        local_key(idx_key_of(s, table), table, r->key, r->klen, lk[*sealed]);
        int rc = local_seal(s, enc_key_of(s, table), lk[*sealed], r->key, r->klen, r->val, r->vlen,
                            &rec[*sealed], &total[*sealed]);
        if (rc != CHP_OK)
            return rc;
    }
    return CHP_OK;
}

int chp_store_local_put_many(chp_store *s, int table, const chp_store_lrec *recs, size_t n)
{
    assert(s && (recs || n == 0));
    if (!s->keys)
        return CHP_E_LOCKED;
    if (!table_ok(table) || key_table(table))
        return CHP_E_ARG;
    struct lputs p = {calloc(n + 1, LOCAL_KEY), calloc(n + 1, sizeof *p.rec),
                      calloc(n + 1, sizeof *p.total), n};
    size_t sealed = 0;
    int rc = p.lk && p.rec && p.total ? seal_recs(s, table, recs, n, p.lk, p.rec, p.total, &sealed)
                                      : CHP_E_NOMEM;
    if (rc == CHP_OK && n)
        rc = chp_st_write_grow(s, lputs_fn, &p);
    lputs_free(&p);
    return rc;
}

/* ---- records that ride the next batch ---- */

#define LQ_MAX 64u /* records waiting at most: then they are written at once */

static int lq_room(struct chp_st_lq *q, size_t more)
{
    if (q->n + more <= q->cap)
        return CHP_OK;
    size_t cap = q->n + more > 2 * q->cap ? q->n + more : 2 * q->cap;
    uint8_t(*lk)[LOCAL_KEY] = realloc(q->lk, cap * sizeof *lk);
    if (lk)
        q->lk = lk;
    uint8_t **rec = realloc(q->rec, cap * sizeof *rec);
    if (rec)
        q->rec = rec;
    size_t *total = realloc(q->total, cap * sizeof *total);
    if (total)
        q->total = total;
    if (!lk || !rec || !total)
        return CHP_E_NOMEM;
    q->cap = cap;
    return CHP_OK;
}

static void lq_take(chp_store *s)
{
    assert(!s->blq.n);
    struct chp_st_lq t = s->blq;
    s->blq = s->lq;
    s->lq = t; /* its arrays, empty, reused */
}

static int lq_write(chp_store *s, MDB_txn *t)
{
    for (size_t i = 0; i < s->blq.n; i++) {
        int rc = local_put_in(s, t, s->blq.lk[i], s->blq.rec[i], s->blq.total[i]);
        if (rc)
            return rc;
    }
    return s->blq.n ? chp_st_local_room(s, t) : 0;
}

static void lq_done(chp_store *s, int ok)
{
    if (!s->blq.n)
        return;
    if (!ok && lq_room(&s->blq, s->lq.n) != CHP_OK) {
        s->lq_lost = 1; /* chp_store_local_flush says so */
    } else if (!ok) {
        /* tried again by the next batch or flush, before what came since
         * (a later record of a key wins) */
        for (size_t i = 0; i < s->lq.n; i++) {
            memcpy(s->blq.lk[s->blq.n], s->lq.lk[i], LOCAL_KEY);
            s->blq.rec[s->blq.n] = s->lq.rec[i];
            s->blq.total[s->blq.n++] = s->lq.total[i];
        }
        s->lq.n = 0;
        struct chp_st_lq t = s->lq;
        s->lq = s->blq;
        s->blq = t;
        return;
    }
    for (size_t i = 0; i < s->blq.n; i++)
        free(s->blq.rec[i]);
    s->blq.n = 0;
}

int chp_store_local_flush(chp_store *s)
{
    assert(s);
    if (!s->lq.n && !s->blq.n && !s->lq_lost)
        return CHP_OK; /* nothing to wait for (the writer only reads blq) */
    chp_st_settle(s);
    int rc = s->lq_lost ? CHP_E_NOMEM : CHP_OK;
    s->lq_lost = 0;
    if (!s->lq.n)
        return rc;
    struct chp_st_lq q = s->lq; /* out of the way of chp_st_write_grow */
    memset(&s->lq, 0, sizeof s->lq);
    struct lputs p = {q.lk, q.rec, q.total, q.n};
    int wrc = chp_st_write_grow(s, lputs_fn, &p);
    chp_st_lq_free(&q);
    return rc != CHP_OK ? rc : wrc;
}

int chp_store_local_put_later(chp_store *s, int table, const chp_store_lrec *recs, size_t n)
{
    assert(s && (recs || n == 0));
    if (!s->keys)
        return CHP_E_LOCKED;
    if (!table_ok(table) || key_table(table))
        return CHP_E_ARG;
    if (!s->lqh.take) { /* the batch paths take the records from now on */
        s->lqh.take = lq_take;
        s->lqh.write = lq_write;
        s->lqh.done = lq_done;
        s->lqh.flush = chp_store_local_flush;
    }
    /* kept even when that write failed (its error is returned): they may
     * fit later */
    int frc = s->lq.n + n > LQ_MAX ? chp_store_local_flush(s) : CHP_OK;
    struct chp_st_lq *q = &s->lq;
    size_t sealed = 0;
    int rc = lq_room(q, n);
    if (rc == CHP_OK)
        rc = seal_recs(s, table, recs, n, q->lk + q->n, q->rec + q->n, q->total + q->n, &sealed);
    q->n += sealed;
    return rc != CHP_OK ? rc : frc;
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
    int rc = chp_st_rbegin(s, &t);
    if (rc)
        return rc;
    MDB_val k = val(lk, LOCAL_KEY), v;
    rc = mdb_get(t, s->local, &k, &v);
    if (rc) {
        chp_st_rend(s, t);
        return chp_st_lmdb_err(rc);
    }
    rc = local_open(enc_key_of(s, table), lk, &v, &pt, &ptlen);
    chp_st_rend(s, t);
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
    int rc = n ? chp_st_write_grow(s, ldel_fn, &d) : CHP_OK;
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
    int rc = chp_st_rcur_open(s, s->local, &t, &c), ret = 0;
    if (rc)
        return rc;
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
    chp_st_rcur_close(s, t, c);
    if (rc && rc != MDB_NOTFOUND && !ret)
        return chp_st_lmdb_err(rc);
    return ret;
}

void chp_store_local_free(uint8_t *val_, size_t vlen)
{
    if (!val_)
        return;
    chp_memzero(val_, vlen);
    free(val_);
}
