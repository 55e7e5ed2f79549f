/* buf.h - growable memory: a byte buffer, array growth, and the growth of
 * arrays that hold secrets (copy, wipe the old block, free it: never
 * realloc, which may leave a copy of the secrets in freed memory). */
#ifndef CHP_BUF_H
#define CHP_BUF_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer owned by the caller; zero-initialise it, release
 * it with chp_buf_free. p may move on every append. */
typedef struct chp_buf {
    uint8_t *p;
    size_t len, cap;
} chp_buf;

/* Makes room for n more bytes after len. CHP_OK or CHP_E_NOMEM (b unchanged). */
CHP_WUR int chp_buf_reserve(chp_buf *b, size_t n);
/* Appends n bytes (src may be NULL when n is 0). CHP_OK or CHP_E_NOMEM. */
CHP_WUR int chp_buf_put(chp_buf *b, const void *src, size_t n);
/* Appends the printf-formatted text (no NUL counted in len; one is kept
 * after it in the buffer). CHP_OK, CHP_E_NOMEM, or CHP_E_ARG for a bad
 * format. */
CHP_WUR int chp_buf_printf(chp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Frees p and zeroes b; accepts NULL and a zeroed b. */
void chp_buf_free(chp_buf *b);

/* Grows *arr (elements of elem bytes, *cap of them) to hold at least need
 * elements, doubling; new elements are zeroed. CHP_OK or CHP_E_NOMEM
 * (*arr and *cap unchanged). */
CHP_WUR int chp_grow(void *arr, size_t *cap, size_t need, size_t elem);
/* The same for an array of secrets: a new block, the old one copied, then
 * wiped and freed. */
CHP_WUR int chp_grow_secret(void *arr, size_t *cap, size_t need, size_t elem);

#endif
