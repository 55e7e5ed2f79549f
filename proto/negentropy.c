/* negentropy.c - Negentropy protocol v1 reconciliation engine. */
#include "proto/negentropy.h"

#include "proto/crypto.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS     16
#define FRAME_SLACK 200 /* the reference keeps this much below the limit */

/* The staged split (chp_neg_set_staged): the differences are located in
 * STAGED_LAST messages, the last one carrying id lists of about STAGED_LEAF
 * items; each message before it divides a range by about the same factor. */
#define STAGED_LAST     6
#define STAGED_LEAF     4
#define STAGED_LIST_MAX 6 /* ranges this small are listed, not split */
#define STAGED_MAX_B    64

struct chp_neg {
    chp_neg_storage st;
    uint64_t frame_limit;
    int initiator;
    int staged;
    unsigned msg; /* index of the message being written: 1 = initiate, 2 = reply, ... */
    uint64_t last_ts_out, last_ts_in; /* per-message timestamp delta state */
    chp_buf o;                        /* scratch for one range's output */
};

/* ---- buffers ---- */

static int buf_varint(chp_buf *b, uint64_t v)
{
    uint8_t tmp[10], out[10];
    size_t k = 0;
    do {
        tmp[k++] = (uint8_t)(v & 0x7f);
        v >>= 7;
    } while (v);
    for (size_t i = 0; i < k; i++)
        out[i] = (uint8_t)(tmp[k - 1 - i] | (i + 1 < k ? 0x80 : 0));
    return chp_buf_put(b, out, k);
}

/* ---- reading ---- */

struct in {
    const uint8_t *p;
    size_t len, off;
};

static int get_varint(struct in *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->off >= r->len)
            return CHP_E_MALFORMED;
        uint8_t b = r->p[r->off++];
        if (x > (UINT64_MAX >> 7))
            return CHP_E_MALFORMED;
        x = (x << 7) | (b & 0x7f);
        if (!(b & 0x80)) {
            *v = x;
            return CHP_OK;
        }
    }
    return CHP_E_MALFORMED;
}

static int get_bytes(struct in *r, const uint8_t **p, size_t n)
{
    if (n > r->len - r->off)
        return CHP_E_MALFORMED;
    *p = r->p + r->off;
    r->off += n;
    return CHP_OK;
}

/* ---- fingerprints and bounds ---- */

void chp_neg_fp_add(uint8_t sum[32], const uint8_t id[32])
{
    unsigned carry = 0;
    for (int i = 0; i < 32; i++) {
        unsigned x = (unsigned)sum[i] + id[i] + carry;
        sum[i] = (uint8_t)x;
        carry = x >> 8;
    }
}

void chp_neg_fp_final(const uint8_t sum[32], uint64_t count, uint8_t fp[16])
{
    uint8_t tmp[32 + 10], h[32];
    memcpy(tmp, sum, 32);
    /* Encode the count varint on the stack: at most 10 bytes. */
    uint8_t v[10];
    size_t k = 0;
    do {
        v[k++] = (uint8_t)(count & 0x7f);
        count >>= 7;
    } while (count);
    for (size_t i = 0; i < k; i++)
        tmp[32 + i] = (uint8_t)(v[k - 1 - i] | (i + 1 < k ? 0x80 : 0));
    chp_sha256(h, tmp, 32 + k);
    memcpy(fp, h, 16);
}

int chp_neg_cmp(uint64_t ts, const uint8_t id[32], const chp_neg_bound *b)
{
    if (ts != b->ts)
        return ts < b->ts ? -1 : 1;
    return memcmp(id, b->id, 32);
}

static int bound_cmp(const chp_neg_bound *a, const chp_neg_bound *b)
{
    return chp_neg_cmp(a->ts, a->id, b);
}

static chp_neg_bound bound_of(uint64_t ts, const uint8_t *id, size_t idlen)
{
    chp_neg_bound b;
    memset(&b, 0, sizeof b);
    b.ts = ts;
    if (idlen)
        memcpy(b.id, id, idlen);
    b.idlen = (uint8_t)idlen;
    return b;
}

static int encode_bound(chp_neg *n, chp_buf *b, const chp_neg_bound *bd)
{
    int rc;
    if (bd->ts == CHP_NEG_TS_INFINITY) {
        n->last_ts_out = CHP_NEG_TS_INFINITY;
        rc = buf_varint(b, 0);
    } else {
        uint64_t delta = bd->ts - n->last_ts_out;
        n->last_ts_out = bd->ts;
        rc = buf_varint(b, delta + 1);
    }
    if (rc == CHP_OK)
        rc = buf_varint(b, bd->idlen);
    if (rc == CHP_OK)
        rc = chp_buf_put(b, bd->id, bd->idlen);
    return rc;
}

static int decode_bound(chp_neg *n, struct in *r, chp_neg_bound *bd)
{
    uint64_t ts = 0, len = 0;
    const uint8_t *p;
    int rc = get_varint(r, &ts);
    if (rc == CHP_OK)
        rc = get_varint(r, &len);
    if (rc != CHP_OK || len > 32 || (rc = get_bytes(r, &p, (size_t)len)) != CHP_OK)
        return CHP_E_MALFORMED;
    /* 0 is infinity, else 1 + delta; the sum saturates at infinity, as in
     * the reference implementation. */
    ts = ts == 0 ? CHP_NEG_TS_INFINITY : ts - 1;
    ts = ts > CHP_NEG_TS_INFINITY - n->last_ts_in ? CHP_NEG_TS_INFINITY : ts + n->last_ts_in;
    n->last_ts_in = ts;
    *bd = bound_of(ts, p, (size_t)len);
    return CHP_OK;
}

static int exceeded(const chp_neg *n, size_t size)
{
    return n->frame_limit && size > n->frame_limit - FRAME_SLACK;
}

/* ---- storage helpers ---- */

struct fpacc {
    uint8_t sum[32];
    uint64_t count;
};

static int fp_item(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    struct fpacc *a = ctx;
    chp_neg_fp_add(a->sum, id);
    a->count++;
    return 0;
}

static int range_fp(chp_neg *n, const chp_neg_bound *lo, const chp_neg_bound *hi, uint8_t fp[16])
{
    if (n->st.fingerprint)
        return n->st.fingerprint(n->st.ctx, lo, hi, fp);
    struct fpacc a;
    memset(&a, 0, sizeof a);
    int rc = n->st.iterate(n->st.ctx, lo, hi, fp_item, &a);
    if (rc == CHP_OK)
        chp_neg_fp_final(a.sum, a.count, fp);
    return rc;
}

struct idlist {
    chp_buf *b;
    uint64_t count;
    int rc;
};

static int list_item(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    struct idlist *l = ctx;
    l->rc = chp_buf_put(l->b, id, 32);
    l->count++;
    return l->rc != CHP_OK;
}

/* Splitting a range into BUCKETS fingerprints in one ordered walk. */
struct split {
    chp_neg *n;
    chp_buf *o;
    uint64_t buckets, per, extra, bucket, in_bucket;
    uint8_t sum[32];
    uint64_t prev_ts;
    uint8_t prev_id[32];
    int rc;
};

static int emit_bucket(struct split *s, const chp_neg_bound *bd)
{
    uint8_t fp[16];
    chp_neg_fp_final(s->sum, s->in_bucket, fp);
    int rc = encode_bound(s->n, s->o, bd);
    if (rc == CHP_OK)
        rc = buf_varint(s->o, 1);
    if (rc == CHP_OK)
        rc = chp_buf_put(s->o, fp, 16);
    memset(s->sum, 0, 32);
    s->in_bucket = 0;
    s->bucket++;
    return rc;
}

static int split_item(void *ctx, uint64_t ts, const uint8_t id[32])
{
    struct split *s = ctx;
    uint64_t size = s->per + (s->bucket < s->extra ? 1 : 0);
    if (s->in_bucket >= size && s->bucket + 1 < s->buckets) {
        /* The shortest bound separating the previous item from this one. */
        chp_neg_bound bd;
        if (ts != s->prev_ts) {
            bd = bound_of(ts, NULL, 0);
        } else {
            size_t shared = 0;
            while (shared < 32 && s->prev_id[shared] == id[shared])
                shared++;
            bd = bound_of(ts, id, shared < 32 ? shared + 1 : 32);
        }
        if ((s->rc = emit_bucket(s, &bd)) != CHP_OK)
            return 1;
    }
    chp_neg_fp_add(s->sum, id);
    s->in_bucket++;
    s->prev_ts = ts;
    memcpy(s->prev_id, id, 32);
    return 0;
}

/* How many buckets a range of num items is split into; 0 = list its ids.
 * The reference: 16 buckets, lists below 32 items. Staged: the remaining
 * messages up to STAGED_LAST each divide by b, b^remaining >= num / LEAF,
 * so that one difference among n items costs about b fingerprints per
 * message and a short list at the end (docs/PROTOCOL.md §14). */
static uint64_t buckets_for(const chp_neg *n, uint64_t num)
{
    if (!n->staged || n->msg >= STAGED_LAST)
        return num < 2 * BUCKETS ? 0 : BUCKETS;
    if (num <= STAGED_LIST_MAX)
        return 0;
    unsigned rem = STAGED_LAST - n->msg;
    uint64_t want = (num + STAGED_LEAF - 1) / STAGED_LEAF, b;
    for (b = 2; b < STAGED_MAX_B; b++) {
        uint64_t p = 1;
        for (unsigned i = 0; i < rem && p < want; i++)
            p *= b;
        if (p >= want)
            break;
    }
    return b < num ? b : num;
}

static int split_range(chp_neg *n, const chp_neg_bound *lo, const chp_neg_bound *hi, chp_buf *o)
{
    uint64_t num;
    int rc = n->st.count(n->st.ctx, lo, hi, &num);
    if (rc != CHP_OK)
        return rc;
    uint64_t buckets = buckets_for(n, num);
    if (buckets == 0) {
        /* Few items: send them all. Counted again while listing, since the
         * store may have changed between the two walks. */
        chp_buf ids = {0};
        struct idlist l = {&ids, 0, CHP_OK};
        rc = n->st.iterate(n->st.ctx, lo, hi, list_item, &l);
        if (rc == CHP_OK)
            rc = l.rc;
        if (rc == CHP_OK)
            rc = encode_bound(n, o, hi);
        if (rc == CHP_OK)
            rc = buf_varint(o, 2);
        if (rc == CHP_OK)
            rc = buf_varint(o, l.count);
        if (rc == CHP_OK)
            rc = chp_buf_put(o, ids.p, ids.len);
        chp_buf_free(&ids);
        return rc;
    }
    struct split s;
    memset(&s, 0, sizeof s);
    s.n = n;
    s.o = o;
    s.buckets = buckets;
    s.per = num / buckets;
    s.extra = num % buckets;
    rc = n->st.iterate(n->st.ctx, lo, hi, split_item, &s);
    if (rc == CHP_OK)
        rc = s.rc;
    if (rc == CHP_OK)
        rc = emit_bucket(&s, hi); /* the last bucket ends at the range's end */
    return rc;
}

/* ---- sessions ---- */

int chp_neg_new(const chp_neg_storage *st, uint64_t frame_size_limit, chp_neg **out)
{
    assert(st && st->iterate && st->count && out);
    *out = NULL;
    if (frame_size_limit != 0 && frame_size_limit < 4096)
        return CHP_E_ARG;
    chp_neg *n = calloc(1, sizeof *n);
    if (!n)
        return CHP_E_NOMEM;
    n->st = *st;
    n->frame_limit = frame_size_limit;
    *out = n;
    return CHP_OK;
}

void chp_neg_set_staged(chp_neg *n, int on)
{
    assert(n);
    n->staged = on != 0;
}

void chp_neg_destroy(chp_neg **np)
{
    if (!np || !*np)
        return;
    chp_buf_free(&(*np)->o);
    free(*np);
    *np = NULL;
}

int chp_neg_initiate(chp_neg *n, chp_buf *out)
{
    assert(n && out);
    if (n->initiator)
        return CHP_E_ARG;
    n->initiator = 1;
    n->msg = 1;
    n->last_ts_out = 0;
    out->len = 0;
    uint8_t v = CHP_NEG_VERSION;
    chp_neg_bound lo = bound_of(0, NULL, 0), hi = bound_of(CHP_NEG_TS_INFINITY, NULL, 0);
    int rc = chp_buf_put(out, &v, 1);
    if (rc == CHP_OK)
        rc = split_range(n, &lo, &hi, out);
    return rc;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Their IdList against ours in [lo, hi): the client reports have/need. */
struct theirs {
    uint8_t (*ids)[32];
    uint8_t *seen;
    uint64_t k;
    chp_neg_item_fn have;
    void *ctx;
};

static int match_item(void *ctx, uint64_t ts, const uint8_t id[32])
{
    struct theirs *t = ctx;
    uint8_t(*hit)[32] = t->k ? bsearch(id, t->ids, (size_t)t->k, 32, id_cmp) : NULL;
    if (hit)
        t->seen[hit - t->ids] = 1;
    else if (t->have)
        return t->have(t->ctx, ts, id);
    return 0;
}

/* Server's answer to an IdList: its own ids in the range, cut at the frame
 * limit (the rest of the range is then covered by a fingerprint). */
struct answer {
    chp_neg *n;
    size_t base; /* bytes already in the full output */
    chp_buf ids;
    uint64_t count;
    chp_neg_bound end;
    int cut, rc;
};

static int answer_item(void *ctx, uint64_t ts, const uint8_t id[32])
{
    struct answer *a = ctx;
    if (exceeded(a->n, a->base + a->ids.len)) {
        a->end = bound_of(ts, id, 32);
        a->cut = 1;
        return 1;
    }
    a->rc = chp_buf_put(&a->ids, id, 32);
    a->count++;
    return a->rc != CHP_OK;
}

static int do_skip(chp_neg *n, int *skip, const chp_neg_bound *prev, chp_buf *o)
{
    if (!*skip)
        return CHP_OK;
    *skip = 0;
    int rc = encode_bound(n, o, prev);
    return rc == CHP_OK ? buf_varint(o, 0) : rc;
}

static int idlist_range(chp_neg *n, struct in *r, const chp_neg_bound *prev,
                        const chp_neg_bound *curr, int *skip, chp_buf *out, chp_neg_bound *upper,
                        chp_neg_item_fn have, chp_neg_item_fn need, void *ctx)
{
    uint64_t k;
    const uint8_t *raw;
    int rc = get_varint(r, &k);
    if (rc != CHP_OK || k > (r->len - r->off) / 32 || get_bytes(r, &raw, (size_t)k * 32))
        return CHP_E_MALFORMED;
    struct theirs t = {NULL, NULL, k, n->initiator ? have : NULL, ctx};
    if (k) {
        t.ids = malloc((size_t)k * 32);
        t.seen = calloc((size_t)k, 1);
        if (!t.ids || !t.seen) {
            rc = CHP_E_NOMEM;
            goto out;
        }
        memcpy(t.ids, raw, (size_t)k * 32);
        qsort(t.ids, (size_t)k, 32, id_cmp);
        /* A repeated id counts once, as in the reference's set. */
        uint64_t u = 1;
        for (uint64_t i = 1; i < k; i++)
            if (memcmp(t.ids[i], t.ids[u - 1], 32) != 0)
                memmove(t.ids[u++], t.ids[i], 32);
        t.k = u;
    }
    if ((rc = n->st.iterate(n->st.ctx, prev, curr, match_item, &t)) != CHP_OK)
        goto out;
    if (n->initiator) {
        *skip = 1;
        for (uint64_t i = 0; i < t.k; i++)
            if (!t.seen[i] && need)
                need(ctx, 0, t.ids[i]);
        goto out;
    }
    /* Server: answer with everything we have in the range. */
    if ((rc = do_skip(n, skip, prev, &n->o)) != CHP_OK)
        goto out;
    struct answer a;
    memset(&a, 0, sizeof a);
    a.n = n;
    a.base = out->len; /* the reference does not count the pending skip */
    a.end = *curr;
    rc = n->st.iterate(n->st.ctx, prev, curr, answer_item, &a);
    if (rc == CHP_OK)
        rc = a.rc;
    if (rc == CHP_OK)
        rc = encode_bound(n, &n->o, &a.end);
    if (rc == CHP_OK)
        rc = buf_varint(&n->o, 2);
    if (rc == CHP_OK)
        rc = buf_varint(&n->o, a.count);
    if (rc == CHP_OK)
        rc = chp_buf_put(&n->o, a.ids.p, a.ids.len);
    if (rc == CHP_OK)
        rc = chp_buf_put(out, n->o.p, n->o.len);
    n->o.len = 0;
    *upper = a.end;
    chp_buf_free(&a.ids);
out:
    free(t.ids);
    free(t.seen);
    return rc;
}

static int reconcile_aux(chp_neg *n, const uint8_t *msg, size_t len, chp_buf *out,
                         chp_neg_item_fn have, chp_neg_item_fn need, void *ctx)
{
    struct in r = {msg, len, 0};
    uint8_t v = CHP_NEG_VERSION;
    out->len = 0;
    if (n->msg < 1000) /* the reply to message k is k + 1 */
        n->msg += 2;
    n->last_ts_in = 0;
    n->last_ts_out = 0;
    int rc = chp_buf_put(out, &v, 1);
    if (rc != CHP_OK)
        return rc;
    if (len < 1 || msg[0] < 0x60 || msg[0] > 0x6f)
        return CHP_E_MALFORMED;
    if (msg[0] != CHP_NEG_VERSION)
        return n->initiator ? CHP_E_VERSION : CHP_OK; /* reply: our version */
    r.off = 1;
    chp_neg_bound prev = bound_of(0, NULL, 0), curr;
    chp_neg_bound written = prev; /* the upper bound of the last range in out */
    int skip = 0;
    while (r.off < r.len) {
        uint64_t mode;
        n->o.len = 0;
        if (decode_bound(n, &r, &curr) != CHP_OK || get_varint(&r, &mode) != CHP_OK)
            return CHP_E_MALFORMED;
        if (bound_cmp(&curr, &prev) < 0)
            return CHP_E_MALFORMED; /* ranges must ascend */
        chp_neg_bound upper = curr;
        if (mode == 0) {
            skip = 1;
        } else if (mode == 1) {
            const uint8_t *theirs;
            uint8_t ours[16];
            if (get_bytes(&r, &theirs, 16) != CHP_OK)
                return CHP_E_MALFORMED;
            if ((rc = range_fp(n, &prev, &curr, ours)) != CHP_OK)
                return rc;
            if (memcmp(theirs, ours, 16) != 0) {
                if ((rc = do_skip(n, &skip, &prev, &n->o)) != CHP_OK ||
                    (rc = split_range(n, &prev, &curr, &n->o)) != CHP_OK)
                    return rc;
            } else {
                skip = 1;
            }
        } else if (mode == 2) {
            rc = idlist_range(n, &r, &prev, &curr, &skip, out, &upper, have, need, ctx);
            if (rc != CHP_OK)
                return rc;
            if (!n->initiator)
                written = upper; /* the answer went straight to out */
        } else {
            return CHP_E_MALFORMED;
        }
        if (exceeded(n, out->len + n->o.len)) {
            /* Out of room: one fingerprint covers everything not yet
             * reconciled; the peer continues from there next round. */
            uint8_t fp[16];
            chp_neg_bound inf = bound_of(CHP_NEG_TS_INFINITY, NULL, 0);
            /* The fingerprint covers exactly the range it announces:
             * from the last bound written to infinity. */
            if ((rc = range_fp(n, &written, &inf, fp)) != CHP_OK ||
                (rc = encode_bound(n, out, &inf)) != CHP_OK ||
                (rc = buf_varint(out, 1)) != CHP_OK || (rc = chp_buf_put(out, fp, 16)) != CHP_OK)
                return rc;
            break;
        }
        if ((rc = chp_buf_put(out, n->o.p, n->o.len)) != CHP_OK)
            return rc;
        if (n->o.len)
            written = curr;
        prev = curr;
    }
    return CHP_OK;
}

int chp_neg_respond(chp_neg *n, const uint8_t *msg, size_t len, chp_buf *out)
{
    assert(n && (msg || len == 0) && out);
    if (n->initiator)
        return CHP_E_ARG;
    int rc = reconcile_aux(n, msg, len, out, NULL, NULL, NULL);
    if (rc != CHP_OK)
        out->len = 0;
    return rc;
}

int chp_neg_reconcile(chp_neg *n, const uint8_t *msg, size_t len, chp_buf *out,
                      chp_neg_item_fn have, chp_neg_item_fn need, void *ctx)
{
    assert(n && (msg || len == 0) && out);
    if (!n->initiator)
        return CHP_E_ARG;
    int rc = reconcile_aux(n, msg, len, out, have, need, ctx);
    if (rc != CHP_OK || out->len == 1)
        out->len = 0; /* nothing left to ask: done */
    return rc;
}
