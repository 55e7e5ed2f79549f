/* cursor.h - bounded big-endian reader/writer cursors for every wire format.
 *
 * A cursor never reads or writes outside its buffer. On the first failure it
 * records the error and every later call becomes a no-op returning the same
 * error, so a decoder may read all fields and check once at the end. */
#ifndef CHP_CURSOR_H
#define CHP_CURSOR_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct chp_rd {
    const uint8_t *p; /* borrowed input, must outlive the cursor */
    size_t len;
    size_t off;
    int err; /* first error, CHP_OK while healthy */
} chp_rd;

typedef struct chp_wr {
    uint8_t *p; /* borrowed output buffer */
    size_t cap;
    size_t off; /* bytes written so far */
    int err;
} chp_wr;

void chp_rd_init(chp_rd *r, const void *buf, size_t len);
int chp_rd_u8(chp_rd *r, uint8_t *v);
int chp_rd_u16(chp_rd *r, uint16_t *v);
int chp_rd_u32(chp_rd *r, uint32_t *v);
int chp_rd_u64(chp_rd *r, uint64_t *v);
/* Copies n bytes into out. */
int chp_rd_bytes(chp_rd *r, void *out, size_t n);
/* Points *out at the next n bytes of the input (borrowed, valid as long as
 * the input buffer) and advances. */
int chp_rd_ref(chp_rd *r, const uint8_t **out, size_t n);
size_t chp_rd_left(const chp_rd *r);
/* CHP_OK when no error happened and every byte was consumed;
 * CHP_E_TRAILING when bytes remain; otherwise the first error. */
int chp_rd_done(const chp_rd *r);

void chp_wr_init(chp_wr *w, void *buf, size_t cap);
int chp_wr_u8(chp_wr *w, uint8_t v);
int chp_wr_u16(chp_wr *w, uint16_t v);
int chp_wr_u32(chp_wr *w, uint32_t v);
int chp_wr_u64(chp_wr *w, uint64_t v);
int chp_wr_bytes(chp_wr *w, const void *src, size_t n);
/* Writes n zero bytes. */
int chp_wr_zero(chp_wr *w, size_t n);

/* Plain big-endian helpers for fixed layouts. */
static inline uint64_t chp_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline uint32_t chp_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void chp_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline void chp_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif
