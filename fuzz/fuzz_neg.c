/* fuzz_neg.c - Negentropy messages from a hostile peer, to both roles: a
 * server answering them and a client that initiated and gets them as the
 * reply. Neither may crash, loop or exceed its frame limit. */
#include "fuzz.h"

#include "proto/negentropy.h"

#include <string.h>

#define ITEMS 64

struct set {
    uint64_t ts[ITEMS];
    uint8_t id[ITEMS][32];
    size_t n;
};

static int in_range(const struct set *s, size_t i, const chp_neg_bound *lo,
                    const chp_neg_bound *hi)
{
    return chp_neg_cmp(s->ts[i], s->id[i], lo) >= 0 && chp_neg_cmp(s->ts[i], s->id[i], hi) < 0;
}

static int iterate(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi,
                   chp_neg_item_fn fn, void *fnctx)
{
    const struct set *s = ctx;
    for (size_t i = 0; i < s->n; i++)
        if (in_range(s, i, lo, hi) && fn(fnctx, s->ts[i], s->id[i]))
            break;
    return CHP_OK;
}

static int count(void *ctx, const chp_neg_bound *lo, const chp_neg_bound *hi, uint64_t *n)
{
    const struct set *s = ctx;
    *n = 0;
    for (size_t i = 0; i < s->n; i++)
        *n += (uint64_t)in_range(s, i, lo, hi);
    return CHP_OK;
}

static int noop(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ctx;
    (void)ts;
    (void)id;
    return 0;
}

/* A fixed sorted set: timestamps in runs, so bounds need id prefixes. */
static void fill(struct set *s)
{
    s->n = ITEMS;
    for (size_t i = 0; i < ITEMS; i++) {
        s->ts[i] = 1000 + i / 4;
        memset(s->id[i], 0, 32);
        s->id[i][0] = (uint8_t)(i % 4);
        s->id[i][1] = (uint8_t)i;
        s->id[i][31] = 0x5a;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct set s;
    static const uint8_t none[1];
    fuzz_init();
    if (!data)
        data = none;
    if (!s.n)
        fill(&s);
    chp_neg_storage st = {&s, iterate, count, NULL};
    for (int role = 0; role < 2; role++) {
        chp_neg *n = NULL;
        chp_buf out = {0};
        FUZZ_CHECK(chp_neg_new(&st, 4096, &n) == CHP_OK);
        int rc;
        if (role == 0) {
            rc = chp_neg_respond(n, data, size, &out);
        } else {
            FUZZ_CHECK(chp_neg_initiate(n, &out) == CHP_OK);
            rc = chp_neg_reconcile(n, data, size, &out, noop, noop, NULL);
        }
        FUZZ_CHECK(rc == CHP_OK || rc == CHP_E_MALFORMED || rc == CHP_E_VERSION);
        FUZZ_CHECK(out.len <= 4096);
        if (rc != CHP_OK)
            FUZZ_CHECK(out.len == 0);
        chp_buf_free(&out);
        chp_neg_destroy(&n);
    }
    return 0;
}
