/* buf.c - growable memory (see buf.h). */
#include "proto/buf.h"
#include "proto/crypto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int chp_buf_reserve(chp_buf *b, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len)
        return CHP_E_NOMEM;
    if (b->len + n <= b->cap)
        return CHP_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return CHP_E_NOMEM;
    b->p = p;
    b->cap = cap;
    return CHP_OK;
}

int chp_buf_put(chp_buf *b, const void *src, size_t n)
{
    int rc = chp_buf_reserve(b, n);
    if (rc != CHP_OK)
        return rc;
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
    return CHP_OK;
}

void chp_buf_free(chp_buf *b)
{
    if (!b)
        return;
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* The new capacity for need elements, or 0 if it would overflow. */
static size_t grown(size_t cap, size_t need, size_t elem)
{
    size_t nc = cap ? cap : 8;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return 0;
        nc *= 2;
    }
    return nc > SIZE_MAX / elem ? 0 : nc;
}

/* Grows *arr to at least need elements: by realloc, or (secret) by a new
 * block, the old one copied, wiped and freed. */
static int grow(void **a, size_t *cap, size_t need, size_t elem, int secret)
{
    if (need <= *cap)
        return CHP_OK;
    size_t nc = grown(*cap, need, elem);
    uint8_t *q = !nc ? NULL : secret ? calloc(nc, elem) : realloc(*a, nc * elem);
    if (!q)
        return CHP_E_NOMEM;
    if (!secret) {
        memset(q + *cap * elem, 0, (nc - *cap) * elem);
    } else if (*a) {
        memcpy(q, *a, *cap * elem);
        chp_memzero(*a, *cap * elem);
        free(*a);
    }
    *a = q;
    *cap = nc;
    return CHP_OK;
}

int chp_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    return grow(arr, cap, need, elem, 0);
}

int chp_grow_secret(void *arr, size_t *cap, size_t need, size_t elem)
{
    return grow(arr, cap, need, elem, 1);
}

int chp_buf_printf(chp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0)
        return CHP_E_ARG;
    int rc = chp_buf_reserve(b, (size_t)k + 1);
    if (rc != CHP_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
    return CHP_OK;
}
