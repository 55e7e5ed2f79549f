/* cursor.c - bounded big-endian reader/writer cursors. */
#include "proto/cursor.h"

#include <assert.h>
#include <string.h>

void chp_rd_init(chp_rd *r, const void *buf, size_t len)
{
    assert(r && (buf || len == 0));
    r->p = buf;
    r->len = len;
    r->off = 0;
    r->err = CHP_OK;
}

/* Where zero-length reads and writes on a (NULL, 0) buffer point: never
 * NULL (NULL means error) and no arithmetic on a null pointer. */
static uint8_t empty_area[1];

/* Reserves n input bytes; returns a pointer to them or NULL on error. */
static const uint8_t *take(chp_rd *r, size_t n)
{
    if (r->err)
        return NULL;
    if (n > r->len - r->off) {
        r->err = CHP_E_TRUNCATED;
        return NULL;
    }
    if (!r->p)
        return empty_area;
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

int chp_rd_u8(chp_rd *r, uint8_t *v)
{
    const uint8_t *p = take(r, 1);
    if (!p)
        return r->err;
    *v = p[0];
    return CHP_OK;
}

int chp_rd_u16(chp_rd *r, uint16_t *v)
{
    const uint8_t *p = take(r, 2);
    if (!p)
        return r->err;
    *v = (uint16_t)((p[0] << 8) | p[1]);
    return CHP_OK;
}

int chp_rd_u32(chp_rd *r, uint32_t *v)
{
    const uint8_t *p = take(r, 4);
    if (!p)
        return r->err;
    *v = chp_be32(p);
    return CHP_OK;
}

int chp_rd_u64(chp_rd *r, uint64_t *v)
{
    const uint8_t *p = take(r, 8);
    if (!p)
        return r->err;
    *v = chp_be64(p);
    return CHP_OK;
}

int chp_rd_bytes(chp_rd *r, void *out, size_t n)
{
    const uint8_t *p = take(r, n);
    if (!p)
        return r->err;
    if (n)
        memcpy(out, p, n);
    return CHP_OK;
}

int chp_rd_ref(chp_rd *r, const uint8_t **out, size_t n)
{
    const uint8_t *p = take(r, n);
    if (!p)
        return r->err;
    *out = p;
    return CHP_OK;
}

size_t chp_rd_left(const chp_rd *r)
{
    return r->len - r->off;
}

int chp_rd_done(const chp_rd *r)
{
    if (r->err)
        return r->err;
    return r->off == r->len ? CHP_OK : CHP_E_TRAILING;
}

void chp_wr_init(chp_wr *w, void *buf, size_t cap)
{
    assert(w && (buf || cap == 0));
    w->p = buf;
    w->cap = cap;
    w->off = 0;
    w->err = CHP_OK;
}

static uint8_t *put(chp_wr *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n > w->cap - w->off) {
        w->err = CHP_E_OVERFLOW;
        return NULL;
    }
    if (!w->p)
        return empty_area;
    uint8_t *p = w->p + w->off;
    w->off += n;
    return p;
}

int chp_wr_u8(chp_wr *w, uint8_t v)
{
    uint8_t *p = put(w, 1);
    if (!p)
        return w->err;
    p[0] = v;
    return CHP_OK;
}

int chp_wr_u16(chp_wr *w, uint16_t v)
{
    uint8_t *p = put(w, 2);
    if (!p)
        return w->err;
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return CHP_OK;
}

int chp_wr_u32(chp_wr *w, uint32_t v)
{
    uint8_t *p = put(w, 4);
    if (!p)
        return w->err;
    chp_put_be32(p, v);
    return CHP_OK;
}

int chp_wr_u64(chp_wr *w, uint64_t v)
{
    uint8_t *p = put(w, 8);
    if (!p)
        return w->err;
    chp_put_be64(p, v);
    return CHP_OK;
}

int chp_wr_bytes(chp_wr *w, const void *src, size_t n)
{
    uint8_t *p = put(w, n);
    if (!p)
        return w->err;
    if (n)
        memcpy(p, src, n);
    return CHP_OK;
}

int chp_wr_zero(chp_wr *w, size_t n)
{
    uint8_t *p = put(w, n);
    if (!p)
        return w->err;
    memset(p, 0, n);
    return CHP_OK;
}
