/* store_neg.c - the store's (created, id) index as Negentropy sees it:
 * counts and fingerprints of ranges, and the chp_neg_storage a session
 * reconciles. */
#include "node/store/store.h"

#include "proto/negentropy.h"

#include <assert.h>
#include <string.h>

/* ---- counts and fingerprints ---- */

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
