/* want.c - want summaries: ranges with fingerprints and an IBLT of id
 * prefixes (want.h, PROTOCOL.md §18.4). */
#include "proto/want.h"

#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/negentropy.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define RANGE_ITEMS 64 /* items per range at least, before the range count is capped */
#define CELL_ITEMS  4  /* items per table cell, before the cell count is clamped */
#define RANGE_BYTES (8 + 8 + 4 + 16)
#define CELL_BYTES  (2 + 8 + 4)

/* ---- the table ---- */

struct cell_pos {
    uint32_t check;
    uint32_t idx[3];
};

static void cell_pos(const uint8_t salt[CHP_WANT_SALT], uint32_t ncells, uint64_t key,
                     struct cell_pos *p)
{
    uint8_t k[8], h[16];
    chp_put_be64(k, key);
    chp_hash(h, sizeof h, k, sizeof k, salt, CHP_WANT_SALT);
    uint32_t third = ncells / 3;
    p->check = chp_be32(h);
    for (uint32_t j = 0; j < 3; j++)
        p->idx[j] = chp_be32(h + 4 + 4 * j) % third + j * third;
}

static void cells_toggle(chp_want_cell *cells, const struct cell_pos *p, uint64_t key, int sign)
{
    for (int j = 0; j < 3; j++) {
        chp_want_cell *c = &cells[p->idx[j]];
        c->count = (uint16_t)(c->count + (sign > 0 ? 1 : 0xffff));
        c->key ^= key;
        c->check ^= p->check;
    }
}

static uint32_t cells_for(uint64_t total)
{
    uint64_t c = total / CELL_ITEMS;
    c = c < CHP_WANT_CELLS_MIN   ? CHP_WANT_CELLS_MIN
        : c > CHP_WANT_CELLS_MAX ? CHP_WANT_CELLS_MAX
                                 : c;
    return (uint32_t)(c - c % 3);
}

/* ---- building ---- */

int chp_want_init(chp_want *w, uint64_t total, const uint8_t salt[CHP_WANT_SALT])
{
    memset(w, 0, sizeof *w);
    memcpy(w->salt, salt, CHP_WANT_SALT);
    w->total = total;
    uint64_t r = total / RANGE_ITEMS;
    w->nranges = (uint16_t)(r < 1 ? 1 : r > CHP_WANT_RANGES_MAX ? CHP_WANT_RANGES_MAX : r);
    for (uint16_t i = 0; i < w->nranges; i++) {
        w->range[i].hi_created = UINT64_MAX;
        memset(w->range[i].hi_id, 0xff, 8);
    }
    if (!total) /* nothing will be added: the one range is closed empty */
        chp_neg_fp_final(w->sum, 0, w->range[0].fp);
    w->ncells = cells_for(total);
    w->cells = calloc(w->ncells, sizeof *w->cells);
    return w->cells ? CHP_OK : CHP_E_NOMEM;
}

void chp_want_fini(chp_want *w)
{
    free(w->cells);
    w->cells = NULL;
}

static void range_close(chp_want *w, uint16_t r)
{
    chp_neg_fp_final(w->sum, w->range[r].count, w->range[r].fp);
    memset(w->sum, 0, sizeof w->sum);
}

/* Range r of nranges starts at item floor(r * total / nranges); its bound
 * is that item's (created, 8-byte prefix), moved on to a later item while
 * it would not be above the item before (equal prefixes), so an item
 * falls in the range its bounds say. */
void chp_want_add(chp_want *w, uint64_t created, const uint8_t id[32])
{
    assert(w->added < w->total);
    uint16_t r = w->cur;
    uint64_t start = (r + 1) * w->total / w->nranges;
    int above = w->added == 0 || created > w->last_created ||
                (created == w->last_created && memcmp(id, w->last_id, 8) > 0);
    if (r + 1 < w->nranges && w->added >= start && above && w->range[r].count) {
        w->range[r].hi_created = created;
        memcpy(w->range[r].hi_id, id, 8);
        range_close(w, r);
        w->cur = ++r;
    }
    w->range[r].count++;
    chp_neg_fp_add(w->sum, id);
    struct cell_pos p;
    uint64_t key = chp_be64(id);
    cell_pos(w->salt, w->ncells, key, &p);
    cells_toggle(w->cells, &p, key, 1);
    w->last_created = created;
    memcpy(w->last_id, id, 8);
    if (++w->added == w->total)
        range_close(w, r);
}

int chp_want_encode(const chp_want *w, chp_buf *out)
{
    /* ranges whose start moved past the last item (equal prefixes) are
     * left out: the last one written is the open one, bounded by the max */
    uint16_t nr = w->total ? (uint16_t)(w->cur + 1) : 1;
    size_t n =
        CHP_WANT_SALT + 8 + 2 + (size_t)nr * RANGE_BYTES + 4 + (size_t)w->ncells * CELL_BYTES;
    if (chp_buf_reserve(out, n) != CHP_OK)
        return CHP_E_NOMEM;
    chp_wr wr;
    chp_wr_init(&wr, out->p + out->len, n);
    chp_wr_bytes(&wr, w->salt, CHP_WANT_SALT);
    chp_wr_u64(&wr, w->total);
    chp_wr_u16(&wr, nr);
    for (uint16_t i = 0; i < nr; i++) {
        const chp_want_range *g = &w->range[i];
        chp_wr_u64(&wr, g->hi_created);
        chp_wr_bytes(&wr, g->hi_id, 8);
        chp_wr_u32(&wr, g->count);
        chp_wr_bytes(&wr, g->fp, 16);
    }
    chp_wr_u32(&wr, w->ncells);
    for (uint32_t i = 0; i < w->ncells; i++) {
        chp_wr_u16(&wr, w->cells[i].count);
        chp_wr_u64(&wr, w->cells[i].key);
        chp_wr_u32(&wr, w->cells[i].check);
    }
    assert(wr.err == CHP_OK && wr.off == n);
    out->len += n;
    return CHP_OK;
}

/* ---- parsing ---- */

static int bound_gt(const chp_want_range *a, const chp_want_range *b)
{
    if (a->hi_created != b->hi_created)
        return a->hi_created > b->hi_created;
    return memcmp(a->hi_id, b->hi_id, 8) > 0;
}

static int ranges_ok(const chp_want *w)
{
    uint64_t sum = 0;
    for (uint16_t i = 0; i < w->nranges; i++) {
        sum += w->range[i].count;
        if (i && !bound_gt(&w->range[i], &w->range[i - 1]))
            return 0;
    }
    static const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const chp_want_range *last = &w->range[w->nranges - 1];
    return sum == w->total && last->hi_created == UINT64_MAX && !memcmp(last->hi_id, ff, 8);
}

int chp_want_decode(const uint8_t *p, size_t len, chp_want *w)
{
    memset(w, 0, sizeof *w);
    chp_rd r;
    chp_rd_init(&r, p, len);
    chp_rd_bytes(&r, w->salt, CHP_WANT_SALT);
    chp_rd_u64(&r, &w->total);
    chp_rd_u16(&r, &w->nranges);
    if (r.err)
        return r.err;
    if (w->nranges < 1 || w->nranges > CHP_WANT_RANGES_MAX)
        return CHP_E_MALFORMED;
    for (uint16_t i = 0; i < w->nranges; i++) {
        chp_want_range *g = &w->range[i];
        chp_rd_u64(&r, &g->hi_created);
        chp_rd_bytes(&r, g->hi_id, 8);
        chp_rd_u32(&r, &g->count);
        chp_rd_bytes(&r, g->fp, 16);
    }
    chp_rd_u32(&r, &w->ncells);
    if (r.err)
        return r.err;
    if (!ranges_ok(w) || w->ncells < 3 || w->ncells > CHP_WANT_CELLS_MAX || w->ncells % 3)
        return CHP_E_MALFORMED;
    if (chp_rd_left(&r) < (size_t)w->ncells * CELL_BYTES)
        return CHP_E_TRUNCATED;
    if (!(w->cells = calloc(w->ncells, sizeof *w->cells)))
        return CHP_E_NOMEM;
    for (uint32_t i = 0; i < w->ncells; i++) {
        chp_rd_u16(&r, &w->cells[i].count);
        chp_rd_u64(&r, &w->cells[i].key);
        chp_rd_u32(&r, &w->cells[i].check);
    }
    int rc = chp_rd_done(&r);
    if (rc != CHP_OK)
        chp_want_fini(w);
    return rc;
}

/* ---- comparing ---- */

struct chp_want_cmp {
    const chp_want *w;
    chp_want_cell *cells; /* the exporter's table, then the difference */
    uint32_t count[CHP_WANT_RANGES_MAX];
    uint8_t sum[CHP_WANT_RANGES_MAX][32];
    uint8_t equal[CHP_WANT_RANGES_MAX];
    uint16_t r;     /* the range the last item fell in */
    uint64_t *only; /* sorted keys the exporter alone holds (peeled) */
    size_t nonly, caponly;
    int decoded;
};

int chp_want_cmp_new(const chp_want *w, chp_want_cmp **out)
{
    chp_want_cmp *c = calloc(1, sizeof *c);
    if (!c || !(c->cells = calloc(w->ncells, sizeof *c->cells))) {
        free(c);
        return CHP_E_NOMEM;
    }
    c->w = w;
    *out = c;
    return CHP_OK;
}

void chp_want_cmp_destroy(chp_want_cmp **cp)
{
    if (!cp || !*cp)
        return;
    free((*cp)->cells);
    free((*cp)->only);
    free(*cp);
    *cp = NULL;
}

/* The range an item falls in; items come ascending, so r only grows. */
static uint16_t range_of(chp_want_cmp *c, uint64_t created, const uint8_t id[32])
{
    while (c->r + 1 < c->w->nranges) {
        const chp_want_range *g = &c->w->range[c->r];
        chp_neg_bound b = {.ts = g->hi_created, .idlen = 8};
        memcpy(b.id, g->hi_id, 8);
        if (chp_neg_cmp(created, id, &b) < 0)
            break;
        c->r++;
    }
    return c->r;
}

void chp_want_cmp_add(chp_want_cmp *c, uint64_t created, const uint8_t id[32])
{
    uint16_t r = range_of(c, created, id);
    c->count[r]++;
    chp_neg_fp_add(c->sum[r], id);
    struct cell_pos p;
    uint64_t key = chp_be64(id);
    cell_pos(c->w->salt, c->w->ncells, key, &p);
    cells_toggle(c->cells, &p, key, 1);
}

static int only_add(chp_want_cmp *c, uint64_t key)
{
    if (chp_grow(&c->only, &c->caponly, c->nonly + 1, sizeof *c->only) != CHP_OK)
        return CHP_E_NOMEM;
    c->only[c->nonly++] = key;
    return CHP_OK;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Peels the difference (wanting node minus exporter): a cell holding one
 * item (count +-1 and its key's check) names it; removing it from its
 * three cells may make others pure. */
static int pure(const struct cell_pos *p, uint32_t i, const chp_want_cell *d)
{
    return (d->count == 1 || d->count == 0xffff) && p->check == d->check &&
           (p->idx[0] == i || p->idx[1] == i || p->idx[2] == i);
}

static int peel(chp_want_cmp *c, chp_want_result *res)
{
    const chp_want *w = c->w;
    /* A hostile table cannot keep this going: an honest difference that
     * peels has fewer items than cells. */
    uint64_t budget = 2ull * w->ncells;
    int more = 1;
    while (more && res->peeled < budget) {
        more = 0;
        for (uint32_t i = 0; i < w->ncells && res->peeled < budget; i++) {
            chp_want_cell *d = &c->cells[i];
            if (d->count != 1 && d->count != 0xffff)
                continue;
            struct cell_pos p;
            cell_pos(w->salt, w->ncells, d->key, &p);
            if (!pure(&p, i, d))
                continue;
            uint64_t key = d->key;
            int sign = d->count == 1 ? 1 : -1;
            if (sign < 0 && only_add(c, key) != CHP_OK)
                return CHP_E_NOMEM;
            cells_toggle(c->cells, &p, key, -sign);
            res->peeled++;
            more = 1;
        }
    }
    c->decoded = 1;
    for (uint32_t i = 0; i < w->ncells; i++)
        if (c->cells[i].count || c->cells[i].key || c->cells[i].check)
            c->decoded = 0;
    return CHP_OK;
}

int chp_want_cmp_finish(chp_want_cmp *c, chp_want_result *res)
{
    const chp_want *w = c->w;
    memset(res, 0, sizeof *res);
    for (uint16_t r = 0; r < w->nranges; r++) {
        uint8_t fp[16];
        chp_neg_fp_final(c->sum[r], c->count[r], fp);
        c->equal[r] = c->count[r] == w->range[r].count && !memcmp(fp, w->range[r].fp, 16);
        res->ranges_equal += c->equal[r];
        res->ranges_empty += w->range[r].count == 0;
    }
    /* difference = theirs - ours: ours counted +1, so theirs minus it */
    for (uint32_t i = 0; i < w->ncells; i++) {
        chp_want_cell *d = &c->cells[i];
        const chp_want_cell *t = &w->cells[i];
        d->count = (uint16_t)(t->count - d->count);
        d->key ^= t->key;
        d->check ^= t->check;
    }
    int rc = peel(c, res);
    if (rc != CHP_OK)
        return rc;
    if (c->nonly)
        qsort(c->only, c->nonly, sizeof *c->only, u64_cmp);
    res->decoded = c->decoded;
    c->r = 0;
    return CHP_OK;
}

int chp_want_cmp_missing(chp_want_cmp *c, uint64_t created, const uint8_t id[32], int *proven)
{
    uint16_t r = range_of(c, created, id);
    int send, sure;
    if (c->equal[r]) {
        send = 0, sure = 1;
    } else if (c->w->range[r].count == 0) {
        send = 1, sure = 1;
    } else if (c->decoded) {
        uint64_t key = chp_be64(id);
        send = c->nonly && bsearch(&key, c->only, c->nonly, sizeof key, u64_cmp) != NULL;
        sure = 1;
    } else {
        send = 1, sure = 0;
    }
    if (proven)
        *proven = sure;
    return send;
}
