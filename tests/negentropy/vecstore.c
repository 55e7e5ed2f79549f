/* vecstore.c - sorted-array storage for the Negentropy engine (tests). */
#include "vecstore.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct item {
    uint64_t ts;
    uint8_t id[32];
};

struct vecstore {
    struct item *items;
    size_t n, cap;
    /* sums[i] = sum of ids[0..i) mod 2^256, little-endian; a range's sum is
     * sums[hi] - sums[lo], so fingerprints cost O(log n). */
    uint8_t (*sums)[32];
    int sealed;
};

vecstore *vecstore_new(void)
{
    return calloc(1, sizeof(vecstore));
}

void vecstore_destroy(vecstore **vp)
{
    if (!vp || !*vp)
        return;
    free((*vp)->items);
    free((*vp)->sums);
    free(*vp);
    *vp = NULL;
}

int vecstore_add(vecstore *v, uint64_t ts, const uint8_t id[32])
{
    assert(v && id);
    if (v->sealed || ts == CHP_NEG_TS_INFINITY)
        return CHP_E_ARG;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        struct item *p = realloc(v->items, cap * sizeof *p);
        if (!p)
            return CHP_E_NOMEM;
        v->items = p;
        v->cap = cap;
    }
    v->items[v->n].ts = ts;
    memcpy(v->items[v->n].id, id, 32);
    v->n++;
    return CHP_OK;
}

static int item_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return memcmp(x->id, y->id, 32);
}

int vecstore_seal(vecstore *v)
{
    assert(v);
    if (v->sealed)
        return CHP_E_ARG;
    if (v->n)
        qsort(v->items, v->n, sizeof *v->items, item_cmp);
    for (size_t i = 1; i < v->n; i++)
        if (item_cmp(&v->items[i - 1], &v->items[i]) == 0)
            return CHP_E_DUP;
    v->sums = calloc(v->n + 1, 32);
    if (!v->sums)
        return CHP_E_NOMEM;
    for (size_t i = 0; i < v->n; i++) {
        memcpy(v->sums[i + 1], v->sums[i], 32);
        chp_neg_fp_add(v->sums[i + 1], v->items[i].id);
    }
    v->sealed = 1;
    return CHP_OK;
}

size_t vecstore_size(const vecstore *v)
{
    assert(v);
    return v->n;
}

void vecstore_item(const vecstore *v, size_t i, uint64_t *ts, const uint8_t **id)
{
    assert(v && v->sealed && i < v->n);
    *ts = v->items[i].ts;
    *id = v->items[i].id;
}

/* The index of the first item >= b. */
static size_t lower_bound(const vecstore *v, const chp_neg_bound *b)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (chp_neg_cmp(v->items[mid].ts, v->items[mid].id, b) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* [lo, hi) as indexes; an inverted range is empty. */
static void span(const vecstore *v, const chp_neg_bound *lo, const chp_neg_bound *hi, size_t *a,
                 size_t *b)
{
    *a = lower_bound(v, lo);
    *b = lower_bound(v, hi);
    if (*b < *a)
        *b = *a;
}

static int st_iterate(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi,
                      chp_neg_item_fn fn, void *fnctx)
{
    vecstore *v = ctx;
    assert(v->sealed);
    size_t a, b;
    span(v, lo, hi, &a, &b);
    for (size_t i = a; i < b; i++)
        if (fn(fnctx, v->items[i].ts, v->items[i].id) != 0)
            break;
    return CHP_OK;
}

static int st_count(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi, uint64_t *n)
{
    vecstore *v = ctx;
    assert(v->sealed);
    size_t a, b;
    span(v, lo, hi, &a, &b);
    *n = b - a;
    return CHP_OK;
}

/* sum = x - y mod 2^256: x + (~y + 1). */
static void sub256(uint8_t out[32], const uint8_t x[32], const uint8_t y[32])
{
    unsigned borrow = 0;
    for (int i = 0; i < 32; i++) {
        int d = (int)x[i] - (int)y[i] - (int)borrow;
        borrow = d < 0;
        out[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

static int st_fingerprint(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi,
                          uint8_t fp[16])
{
    vecstore *v = ctx;
    assert(v->sealed);
    size_t a, b;
    span(v, lo, hi, &a, &b);
    uint8_t sum[32];
    sub256(sum, v->sums[b], v->sums[a]);
    chp_neg_fp_final(sum, b - a, fp);
    return CHP_OK;
}

chp_neg_storage vecstore_storage(vecstore *v, int with_fp)
{
    assert(v && v->sealed);
    chp_neg_storage st = {v, st_iterate, st_count, with_fp ? st_fingerprint : NULL};
    return st;
}
