/* fuzz_bundle.c - bundle and want files (proto/bundle.c, proto/want.c,
 * PROTOCOL.md §19): the bytes of a file found on a stick. Byte 0 picks how
 * the rest is read: its low bits the size of the pieces the record reader
 * is fed (as the daemon reads a file in pieces), bit 7 a sealed chunk
 * opened under a fixed key first. Every record handed out is proven; a
 * want record that decodes re-encodes to the same bytes and is compared
 * with a fixed set of 64 items. */
#include "fuzz.h"
#include "proto/bundle.h"
#include "proto/cursor.h"
#include "proto/want.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

/* The fixed exporter: 64 items over 4 seconds. */
static void compare(const chp_want *w)
{
    chp_want_cmp *c;
    if (chp_want_cmp_new(w, &c) != CHP_OK)
        return;
    uint8_t id[32] = {0};
    for (int pass = 0; pass < 2; pass++) {
        chp_want_result res;
        for (int i = 0; i < 64; i++) {
            id[0] = (uint8_t)(i * 4);
            if (pass == 0)
                chp_want_cmp_add(c, 1800000000 + (uint64_t)(i / 16), id);
            else
                (void)chp_want_cmp_missing(c, 1800000000 + (uint64_t)(i / 16), id, NULL);
        }
        if (pass == 0 && chp_want_cmp_finish(c, &res) == CHP_OK)
            FUZZ_CHECK(res.ranges_equal <= w->nranges && res.peeled <= 2ull * w->ncells);
    }
    chp_want_cmp_destroy(&c);
}

static void want_record(const uint8_t *p, size_t len)
{
    chp_want w;
    if (chp_want_decode(p, len, &w) != CHP_OK)
        return;
    chp_buf b = {0};
    FUZZ_CHECK(chp_want_encode(&w, &b) == CHP_OK);
    FUZZ_CHECK(b.len == len && !memcmp(b.p, p, len)); /* one encoding */
    chp_buf_free(&b);
    compare(&w);
    chp_want_fini(&w);
}

static void records(const uint8_t *data, size_t size, size_t piece)
{
    chp_bundle_rd r;
    chp_bundle_rd_init(&r);
    size_t off = 0, avail = piece < size ? piece : size;
    for (;;) {
        chp_bundle_rec rec;
        size_t used;
        int rc = chp_bundle_rd_next(&r, data + off, avail - off, &used, &rec);
        if (rc == CHP_E_TRUNCATED && avail < size) {
            FUZZ_CHECK(used == 0);
            avail = avail + piece < size ? avail + piece : size;
            continue;
        }
        if (rc != CHP_OK) {
            FUZZ_CHECK(rc == CHP_E_TRUNCATED || rc == CHP_E_MALFORMED || rc == CHP_E_TOO_BIG ||
                       rc == CHP_E_CORRUPT);
            return;
        }
        FUZZ_CHECK(used > 0 && off + used <= avail);
        FUZZ_CHECK(rec.p >= data + off && rec.p + rec.len <= data + off + used);
        if (rec.type == CHP_REC_WANT)
            want_record(rec.p, rec.len);
        off += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size < 1)
        return 0;
    size_t piece = (size_t)1 << (data[0] & 15);
    int sealed = data[0] & 0x80;
    data++;
    size--;
    if (!sealed) {
        records(data, size, piece);
        return 0;
    }
    if (size < CHP_SEAL_CT)
        return 0;
    uint8_t *pt = malloc(CHP_SEAL_CHUNK);
    if (!pt)
        return 0;
    if (chp_open_chunk(key, 0, 1, data, pt) == CHP_OK)
        records(pt, CHP_SEAL_CHUNK, piece);
    free(pt);
    return 0;
}
