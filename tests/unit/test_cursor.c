/* test_cursor.c - the bounded big-endian cursors every wire format goes
 * through: exact bytes per width, sticky truncation and overflow, trailing
 * bytes, zero-length operations; plus the error names of err.h. */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* 00 01 02 ... so every byte is distinguishable and its offset is its value. */
static void seq(uint8_t *b, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(start + i);
}

static void test_crypto_init(void **state)
{
    (void)state;
    assert_int_equal(chp_crypto_init(), CHP_OK);
}

/* ---- reader: values ---- */

static void test_rd_every_width_big_endian(void **state)
{
    (void)state;
    static const uint8_t in[] = {0xa1, 0xb1, 0xb2, 0xc1, 0xc2, 0xc3, 0xc4, 0xd1,
                                 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8};
    chp_rd r;
    uint8_t v8 = 0;
    uint16_t v16 = 0;
    uint32_t v32 = 0;
    uint64_t v64 = 0;
    chp_rd_init(&r, in, sizeof in);
    assert_int_equal(chp_rd_left(&r), 15);
    assert_int_equal(chp_rd_u8(&r, &v8), CHP_OK);
    assert_int_equal(v8, 0xa1);
    assert_int_equal(chp_rd_left(&r), 14);
    assert_int_equal(chp_rd_u16(&r, &v16), CHP_OK);
    assert_int_equal(v16, 0xb1b2);
    assert_int_equal(chp_rd_left(&r), 12);
    assert_int_equal(chp_rd_u32(&r, &v32), CHP_OK);
    assert_int_equal(v32, 0xc1c2c3c4u);
    assert_int_equal(chp_rd_left(&r), 8);
    assert_int_equal(chp_rd_u64(&r, &v64), CHP_OK);
    assert_true(v64 == 0xd1d2d3d4d5d6d7d8ull);
    assert_int_equal(chp_rd_left(&r), 0);
    assert_int_equal(r.off, 15);
    assert_int_equal(chp_rd_done(&r), CHP_OK);
}

static void test_rd_extreme_values(void **state)
{
    (void)state;
    uint8_t ones[15], zeros[15] = {0};
    memset(ones, 0xff, sizeof ones);
    chp_rd r;
    uint8_t v8;
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;

    chp_rd_init(&r, ones, sizeof ones);
    assert_int_equal(chp_rd_u8(&r, &v8), CHP_OK);
    assert_int_equal(chp_rd_u16(&r, &v16), CHP_OK);
    assert_int_equal(chp_rd_u32(&r, &v32), CHP_OK);
    assert_int_equal(chp_rd_u64(&r, &v64), CHP_OK);
    assert_int_equal(v8, UINT8_MAX);
    assert_int_equal(v16, UINT16_MAX);
    assert_true(v32 == UINT32_MAX);
    assert_true(v64 == UINT64_MAX);
    assert_int_equal(chp_rd_done(&r), CHP_OK);

    chp_rd_init(&r, zeros, sizeof zeros);
    v8 = 1;
    v16 = 1;
    v32 = 1;
    v64 = 1;
    assert_int_equal(chp_rd_u8(&r, &v8), CHP_OK);
    assert_int_equal(chp_rd_u16(&r, &v16), CHP_OK);
    assert_int_equal(chp_rd_u32(&r, &v32), CHP_OK);
    assert_int_equal(chp_rd_u64(&r, &v64), CHP_OK);
    assert_int_equal(v8, 0);
    assert_int_equal(v16, 0);
    assert_int_equal(v32, 0);
    assert_true(v64 == 0);
    assert_int_equal(chp_rd_done(&r), CHP_OK);
}

static void test_rd_bytes_copies(void **state)
{
    (void)state;
    uint8_t in[10], out[6];
    seq(in, sizeof in, 0x10);
    memset(out, 0xee, sizeof out);
    chp_rd r;
    chp_rd_init(&r, in, sizeof in);
    assert_int_equal(chp_rd_bytes(&r, out, 4), CHP_OK);
    assert_memory_equal(out, in, 4);
    assert_int_equal(out[4], 0xee); /* nothing beyond n */
    assert_int_equal(chp_rd_bytes(&r, out, 6), CHP_OK);
    assert_memory_equal(out, in + 4, 6);
    assert_int_equal(chp_rd_done(&r), CHP_OK);
}

static void test_rd_ref_points_into_input(void **state)
{
    (void)state;
    uint8_t in[12];
    seq(in, sizeof in, 0);
    chp_rd r;
    const uint8_t *p = NULL;
    uint8_t v8;
    chp_rd_init(&r, in, sizeof in);
    assert_int_equal(chp_rd_u8(&r, &v8), CHP_OK);
    assert_int_equal(chp_rd_ref(&r, &p, 5), CHP_OK);
    assert_ptr_equal(p, in + 1); /* borrowed, not copied */
    assert_int_equal(chp_rd_left(&r), 6);
    assert_int_equal(chp_rd_ref(&r, &p, 6), CHP_OK);
    assert_ptr_equal(p, in + 6);
    assert_int_equal(chp_rd_done(&r), CHP_OK);
}

/* ---- reader: truncation, one test per getter ---- */

/* Input one byte short of what the getter wants: CHP_E_TRUNCATED, nothing
 * consumed, the output untouched. */
static void test_rd_u8_truncated(void **state)
{
    (void)state;
    uint8_t in[1] = {0x42}, v = 0x5a;
    chp_rd r;
    chp_rd_init(&r, in, 0);
    assert_int_equal(chp_rd_u8(&r, &v), CHP_E_TRUNCATED);
    assert_int_equal(v, 0x5a);
    assert_int_equal(r.off, 0);
    assert_int_equal(r.err, CHP_E_TRUNCATED);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRUNCATED);
}

static void test_rd_u16_truncated(void **state)
{
    (void)state;
    uint8_t in[2] = {0x12, 0x34};
    uint16_t v = 0x5a5a;
    chp_rd r;
    chp_rd_init(&r, in, 1);
    assert_int_equal(chp_rd_u16(&r, &v), CHP_E_TRUNCATED);
    assert_int_equal(v, 0x5a5a);
    assert_int_equal(r.off, 0);
    assert_int_equal(chp_rd_left(&r), 1);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRUNCATED);
}

static void test_rd_u32_truncated(void **state)
{
    (void)state;
    uint8_t in[4] = {1, 2, 3, 4};
    uint32_t v = 0x5a5a5a5au;
    chp_rd r;
    chp_rd_init(&r, in, 3);
    assert_int_equal(chp_rd_u32(&r, &v), CHP_E_TRUNCATED);
    assert_true(v == 0x5a5a5a5au);
    assert_int_equal(r.off, 0);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRUNCATED);
}

static void test_rd_u64_truncated(void **state)
{
    (void)state;
    uint8_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint64_t v = 0x5a5a5a5a5a5a5a5aull;
    chp_rd r;
    chp_rd_init(&r, in, 7);
    assert_int_equal(chp_rd_u64(&r, &v), CHP_E_TRUNCATED);
    assert_true(v == 0x5a5a5a5a5a5a5a5aull);
    assert_int_equal(r.off, 0);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRUNCATED);
}

static void test_rd_bytes_truncated(void **state)
{
    (void)state;
    uint8_t in[8], out[9];
    seq(in, sizeof in, 1);
    memset(out, 0xee, sizeof out);
    chp_rd r;
    chp_rd_init(&r, in, sizeof in);
    assert_int_equal(chp_rd_bytes(&r, out, 9), CHP_E_TRUNCATED);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], 0xee); /* no partial copy */
    assert_int_equal(r.off, 0);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRUNCATED);
}

static void test_rd_ref_truncated(void **state)
{
    (void)state;
    uint8_t in[8];
    seq(in, sizeof in, 1);
    const uint8_t *p = in + 3;
    chp_rd r;
    chp_rd_init(&r, in, sizeof in);
    assert_int_equal(chp_rd_ref(&r, &p, 9), CHP_E_TRUNCATED);
    assert_ptr_equal(p, in + 3);
    assert_int_equal(r.off, 0);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRUNCATED);
}

/* A length that would wrap an "off + n" check must still be refused. */
static void test_rd_huge_length_truncated(void **state)
{
    (void)state;
    uint8_t in[4] = {1, 2, 3, 4}, out[1] = {0xee};
    const uint8_t *p = NULL;
    chp_rd r;
    chp_rd_init(&r, in, sizeof in);
    assert_int_equal(chp_rd_bytes(&r, out, SIZE_MAX), CHP_E_TRUNCATED);
    assert_int_equal(out[0], 0xee);
    chp_rd_init(&r, in, sizeof in);
    uint8_t v;
    assert_int_equal(chp_rd_u8(&r, &v), CHP_OK);
    assert_int_equal(chp_rd_ref(&r, &p, SIZE_MAX), CHP_E_TRUNCATED);
    assert_null(p);
    assert_int_equal(r.off, 1);
}

/* After the first failure every getter is a no-op returning that error,
 * even for reads that would fit, and done() reports it, not TRAILING. */
static void test_rd_truncation_is_sticky(void **state)
{
    (void)state;
    uint8_t in[6];
    seq(in, sizeof in, 0x30);
    chp_rd r;
    uint8_t v8 = 0xee, buf[2] = {0xee, 0xee};
    uint16_t v16 = 0xeeee;
    uint32_t v32 = 0xeeeeeeeeu;
    uint64_t v64 = 0;
    const uint8_t *p = NULL;
    chp_rd_init(&r, in, sizeof in);
    assert_int_equal(chp_rd_u16(&r, &v16), CHP_OK);
    assert_int_equal(v16, 0x3031);
    assert_int_equal(chp_rd_u64(&r, &v64), CHP_E_TRUNCATED); /* 4 left */
    assert_int_equal(r.off, 2);
    v16 = 0xeeee;
    assert_int_equal(chp_rd_u8(&r, &v8), CHP_E_TRUNCATED);
    assert_int_equal(chp_rd_u16(&r, &v16), CHP_E_TRUNCATED);
    assert_int_equal(chp_rd_u32(&r, &v32), CHP_E_TRUNCATED);
    assert_int_equal(chp_rd_bytes(&r, buf, 2), CHP_E_TRUNCATED);
    assert_int_equal(chp_rd_ref(&r, &p, 1), CHP_E_TRUNCATED);
    assert_int_equal(chp_rd_bytes(&r, buf, 0), CHP_E_TRUNCATED);
    assert_int_equal(v8, 0xee);
    assert_int_equal(v16, 0xeeee);
    assert_true(v32 == 0xeeeeeeeeu);
    assert_int_equal(buf[0], 0xee);
    assert_null(p);
    assert_int_equal(r.off, 2); /* nothing consumed after the error */
    assert_int_equal(chp_rd_left(&r), 4);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRUNCATED);
}

/* ---- reader: done ---- */

static void test_rd_done_trailing(void **state)
{
    (void)state;
    uint8_t in[5] = {0, 0, 0, 7, 0x99}, last;
    uint32_t v;
    chp_rd r;
    chp_rd_init(&r, in, sizeof in);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRAILING); /* nothing read yet */
    assert_int_equal(chp_rd_u32(&r, &v), CHP_OK);
    assert_int_equal(v, 7);
    assert_int_equal(chp_rd_left(&r), 1);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRAILING);
    /* done() only looks: the cursor is still healthy and can finish. */
    assert_int_equal(r.err, CHP_OK);
    assert_int_equal(chp_rd_u8(&r, &last), CHP_OK);
    assert_int_equal(last, 0x99);
    assert_int_equal(chp_rd_done(&r), CHP_OK);
}

static void test_rd_empty_input(void **state)
{
    (void)state;
    chp_rd r;
    uint8_t v;
    chp_rd_init(&r, NULL, 0);
    assert_int_equal(chp_rd_left(&r), 0);
    assert_int_equal(chp_rd_done(&r), CHP_OK);
    assert_int_equal(chp_rd_u8(&r, &v), CHP_E_TRUNCATED);
    assert_int_equal(chp_rd_done(&r), CHP_E_TRUNCATED);
}

static void test_rd_zero_length_ops(void **state)
{
    (void)state;
    uint8_t in[3] = {7, 8, 9}, out[3] = {0xee, 0xee, 0xee};
    const uint8_t *p = NULL;
    chp_rd r;
    chp_rd_init(&r, in, sizeof in);
    assert_int_equal(chp_rd_bytes(&r, out, 0), CHP_OK);
    assert_int_equal(out[0], 0xee);
    assert_int_equal(chp_rd_ref(&r, &p, 0), CHP_OK);
    assert_ptr_equal(p, in);
    assert_int_equal(r.off, 0);
    assert_int_equal(chp_rd_bytes(&r, out, 3), CHP_OK);
    assert_memory_equal(out, in, 3);
    /* At the very end a zero-length read still succeeds. */
    assert_int_equal(chp_rd_bytes(&r, out, 0), CHP_OK);
    assert_int_equal(chp_rd_ref(&r, &p, 0), CHP_OK);
    assert_ptr_equal(p, in + 3);
    assert_int_equal(chp_rd_done(&r), CHP_OK);
    /* And on an empty input. */
    chp_rd_init(&r, in, 0);
    assert_int_equal(chp_rd_bytes(&r, out, 0), CHP_OK);
    assert_int_equal(chp_rd_done(&r), CHP_OK);
}

/* ---- writer ---- */

static void test_wr_every_width_big_endian(void **state)
{
    (void)state;
    static const uint8_t want[] = {0xa1, 0xb1, 0xb2, 0xc1, 0xc2, 0xc3, 0xc4, 0xd1,
                                   0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0x01,
                                   0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0xee};
    uint8_t out[sizeof want];
    memset(out, 0xee, sizeof out);
    chp_wr w;
    chp_wr_init(&w, out, sizeof out);
    assert_int_equal(chp_wr_u8(&w, 0xa1), CHP_OK);
    assert_int_equal(w.off, 1);
    assert_int_equal(chp_wr_u16(&w, 0xb1b2), CHP_OK);
    assert_int_equal(w.off, 3);
    assert_int_equal(chp_wr_u32(&w, 0xc1c2c3c4u), CHP_OK);
    assert_int_equal(w.off, 7);
    assert_int_equal(chp_wr_u64(&w, 0xd1d2d3d4d5d6d7d8ull), CHP_OK);
    assert_int_equal(w.off, 15);
    assert_int_equal(chp_wr_bytes(&w, "\x01\x02\x03", 3), CHP_OK);
    assert_int_equal(chp_wr_zero(&w, 4), CHP_OK);
    assert_int_equal(w.off, 22);
    assert_int_equal(w.err, CHP_OK);
    assert_memory_equal(out, want, sizeof want); /* last byte untouched */
}

static void test_wr_rd_round_trip(void **state)
{
    (void)state;
    static const uint16_t v16s[] = {0, 1, 0x00ff, 0x0100, 0x8000, 0xffff};
    static const uint32_t v32s[] = {0, 1, 0xff, 0x100, 0x10000, 0x80000000u, 0xffffffffu};
    static const uint64_t v64s[] = {
        0, 1, 0xff, 0x100000000ull, 0x8000000000000000ull, 0x0123456789abcdefull, UINT64_MAX};
    uint8_t buf[256];
    chp_wr w;
    chp_wr_init(&w, buf, sizeof buf);
    for (unsigned v = 0; v < 256; v += 51)
        assert_int_equal(chp_wr_u8(&w, (uint8_t)v), CHP_OK);
    for (size_t i = 0; i < sizeof v16s / sizeof v16s[0]; i++)
        assert_int_equal(chp_wr_u16(&w, v16s[i]), CHP_OK);
    for (size_t i = 0; i < sizeof v32s / sizeof v32s[0]; i++)
        assert_int_equal(chp_wr_u32(&w, v32s[i]), CHP_OK);
    for (size_t i = 0; i < sizeof v64s / sizeof v64s[0]; i++)
        assert_int_equal(chp_wr_u64(&w, v64s[i]), CHP_OK);
    assert_int_equal(chp_wr_bytes(&w, "hello", 5), CHP_OK);
    assert_int_equal(chp_wr_zero(&w, 3), CHP_OK);
    assert_int_equal(w.err, CHP_OK);

    chp_rd r;
    chp_rd_init(&r, buf, w.off);
    uint8_t v8, tail[8];
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    for (unsigned v = 0; v < 256; v += 51) {
        assert_int_equal(chp_rd_u8(&r, &v8), CHP_OK);
        assert_int_equal(v8, v);
    }
    for (size_t i = 0; i < sizeof v16s / sizeof v16s[0]; i++) {
        assert_int_equal(chp_rd_u16(&r, &v16), CHP_OK);
        assert_int_equal(v16, v16s[i]);
    }
    for (size_t i = 0; i < sizeof v32s / sizeof v32s[0]; i++) {
        assert_int_equal(chp_rd_u32(&r, &v32), CHP_OK);
        assert_true(v32 == v32s[i]);
    }
    for (size_t i = 0; i < sizeof v64s / sizeof v64s[0]; i++) {
        assert_int_equal(chp_rd_u64(&r, &v64), CHP_OK);
        assert_true(v64 == v64s[i]);
    }
    assert_int_equal(chp_rd_bytes(&r, tail, 8), CHP_OK);
    assert_memory_equal(tail, "hello\0\0\0", 8);
    assert_int_equal(chp_rd_done(&r), CHP_OK);
}

static void test_wr_zero_writes_zeros(void **state)
{
    (void)state;
    uint8_t out[10];
    memset(out, 0xaa, sizeof out);
    chp_wr w;
    chp_wr_init(&w, out, sizeof out);
    assert_int_equal(chp_wr_u8(&w, 0x11), CHP_OK);
    assert_int_equal(chp_wr_zero(&w, 8), CHP_OK);
    assert_int_equal(out[0], 0x11);
    for (size_t i = 1; i < 9; i++)
        assert_int_equal(out[i], 0);
    assert_int_equal(out[9], 0xaa);
    assert_int_equal(w.off, 9);
}

static void test_wr_exact_fill(void **state)
{
    (void)state;
    uint8_t out[8];
    chp_wr w;
    chp_wr_init(&w, out, sizeof out);
    assert_int_equal(chp_wr_u32(&w, 0x01020304u), CHP_OK);
    assert_int_equal(chp_wr_u16(&w, 0x0506), CHP_OK);
    assert_int_equal(chp_wr_u8(&w, 0x07), CHP_OK);
    assert_int_equal(chp_wr_u8(&w, 0x08), CHP_OK);
    assert_int_equal(w.off, w.cap);
    assert_int_equal(w.err, CHP_OK);
    static const uint8_t want[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(out, want, 8);
    assert_int_equal(chp_wr_u8(&w, 0x09), CHP_E_OVERFLOW);
}

/* ---- writer: overflow, one test per putter ---- */

/* A buffer one byte too small: CHP_E_OVERFLOW, not a byte written. */
static void check_overflow_untouched(const chp_wr *w, const uint8_t *buf, size_t n)
{
    assert_int_equal(w->err, CHP_E_OVERFLOW);
    assert_int_equal(w->off, 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buf[i], 0xee);
}

static void test_wr_u8_overflow(void **state)
{
    (void)state;
    uint8_t out[1] = {0xee};
    chp_wr w;
    chp_wr_init(&w, out, 0);
    assert_int_equal(chp_wr_u8(&w, 0x42), CHP_E_OVERFLOW);
    check_overflow_untouched(&w, out, sizeof out);
}

static void test_wr_u16_overflow(void **state)
{
    (void)state;
    uint8_t out[2] = {0xee, 0xee};
    chp_wr w;
    chp_wr_init(&w, out, 1);
    assert_int_equal(chp_wr_u16(&w, 0x4242), CHP_E_OVERFLOW);
    check_overflow_untouched(&w, out, sizeof out);
}

static void test_wr_u32_overflow(void **state)
{
    (void)state;
    uint8_t out[4];
    memset(out, 0xee, sizeof out);
    chp_wr w;
    chp_wr_init(&w, out, 3);
    assert_int_equal(chp_wr_u32(&w, 0x42424242u), CHP_E_OVERFLOW);
    check_overflow_untouched(&w, out, sizeof out);
}

static void test_wr_u64_overflow(void **state)
{
    (void)state;
    uint8_t out[8];
    memset(out, 0xee, sizeof out);
    chp_wr w;
    chp_wr_init(&w, out, 7);
    assert_int_equal(chp_wr_u64(&w, 0x4242424242424242ull), CHP_E_OVERFLOW);
    check_overflow_untouched(&w, out, sizeof out);
}

static void test_wr_bytes_overflow(void **state)
{
    (void)state;
    uint8_t out[6], src[6];
    memset(out, 0xee, sizeof out);
    memset(src, 0x42, sizeof src);
    chp_wr w;
    chp_wr_init(&w, out, 5);
    assert_int_equal(chp_wr_bytes(&w, src, 6), CHP_E_OVERFLOW);
    check_overflow_untouched(&w, out, sizeof out);
}

static void test_wr_zero_overflow(void **state)
{
    (void)state;
    uint8_t out[6];
    memset(out, 0xee, sizeof out);
    chp_wr w;
    chp_wr_init(&w, out, 5);
    assert_int_equal(chp_wr_zero(&w, 6), CHP_E_OVERFLOW);
    check_overflow_untouched(&w, out, sizeof out);
    /* A wrapping length is refused too. */
    chp_wr_init(&w, out, 5);
    assert_int_equal(chp_wr_zero(&w, SIZE_MAX), CHP_E_OVERFLOW);
    check_overflow_untouched(&w, out, sizeof out);
}

static void test_wr_overflow_is_sticky(void **state)
{
    (void)state;
    uint8_t out[8];
    memset(out, 0xee, sizeof out);
    chp_wr w;
    chp_wr_init(&w, out, 6);
    assert_int_equal(chp_wr_u16(&w, 0x0102), CHP_OK);
    assert_int_equal(chp_wr_u64(&w, 1), CHP_E_OVERFLOW); /* 4 left */
    assert_int_equal(w.off, 2);
    /* Everything after, even what would fit, writes nothing. */
    assert_int_equal(chp_wr_u8(&w, 0x33), CHP_E_OVERFLOW);
    assert_int_equal(chp_wr_u16(&w, 0x3333), CHP_E_OVERFLOW);
    assert_int_equal(chp_wr_u32(&w, 0x33333333u), CHP_E_OVERFLOW);
    assert_int_equal(chp_wr_bytes(&w, "\x33", 1), CHP_E_OVERFLOW);
    assert_int_equal(chp_wr_zero(&w, 1), CHP_E_OVERFLOW);
    assert_int_equal(chp_wr_zero(&w, 0), CHP_E_OVERFLOW);
    assert_int_equal(chp_wr_bytes(&w, "", 0), CHP_E_OVERFLOW);
    assert_int_equal(w.off, 2);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(out[1], 0x02);
    for (size_t i = 2; i < sizeof out; i++)
        assert_int_equal(out[i], 0xee);
}

static void test_wr_zero_length_ops(void **state)
{
    (void)state;
    uint8_t out[2] = {0xee, 0xee};
    chp_wr w;
    chp_wr_init(&w, out, sizeof out);
    assert_int_equal(chp_wr_bytes(&w, "x", 0), CHP_OK);
    assert_int_equal(chp_wr_zero(&w, 0), CHP_OK);
    assert_int_equal(w.off, 0);
    assert_int_equal(out[0], 0xee);
    assert_int_equal(chp_wr_u16(&w, 0x0102), CHP_OK);
    /* On a full buffer a zero-length write still fits. */
    assert_int_equal(chp_wr_bytes(&w, "x", 0), CHP_OK);
    assert_int_equal(chp_wr_zero(&w, 0), CHP_OK);
    assert_int_equal(w.off, 2);
    assert_int_equal(w.err, CHP_OK);
    /* And on a zero-capacity one. */
    chp_wr_init(&w, out, 0);
    assert_int_equal(chp_wr_zero(&w, 0), CHP_OK);
    assert_int_equal(chp_wr_bytes(&w, "x", 0), CHP_OK);
    assert_int_equal(w.err, CHP_OK);
}

/* ---- fixed-layout helpers ---- */

static void test_be_helpers(void **state)
{
    (void)state;
    uint8_t b[8];
    chp_put_be64(b, 0x0102030405060708ull);
    static const uint8_t want64[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(b, want64, 8);
    assert_true(chp_be64(b) == 0x0102030405060708ull);
    chp_put_be64(b, UINT64_MAX);
    assert_true(chp_be64(b) == UINT64_MAX);

    uint8_t c[5] = {0, 0, 0, 0, 0xee};
    chp_put_be32(c, 0xa0b0c0d0u);
    static const uint8_t want32[5] = {0xa0, 0xb0, 0xc0, 0xd0, 0xee};
    assert_memory_equal(c, want32, 5);
    assert_true(chp_be32(c) == 0xa0b0c0d0u);
    chp_put_be32(c, 0x80000001u);
    assert_true(chp_be32(c) == 0x80000001u);

    /* The helpers agree with the cursors. */
    uint8_t w8[8];
    chp_wr w;
    chp_wr_init(&w, w8, sizeof w8);
    assert_int_equal(chp_wr_u64(&w, 0xfedcba9876543210ull), CHP_OK);
    assert_true(chp_be64(w8) == 0xfedcba9876543210ull);
    assert_true(chp_be32(w8) == 0xfedcba98u);
}

/* ---- err.h ---- */

static void test_err_names_and_texts(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *name;
    } known[] = {
        {CHP_OK, "CHP_OK"},
        {CHP_E_NOMEM, "CHP_E_NOMEM"},
        {CHP_E_ARG, "CHP_E_ARG"},
        {CHP_E_CRYPTO_INIT, "CHP_E_CRYPTO_INIT"},
        {CHP_E_TRUNCATED, "CHP_E_TRUNCATED"},
        {CHP_E_TRAILING, "CHP_E_TRAILING"},
        {CHP_E_OVERFLOW, "CHP_E_OVERFLOW"},
        {CHP_E_MALFORMED, "CHP_E_MALFORMED"},
        {CHP_E_ENV_SIZE, "CHP_E_ENV_SIZE"},
        {CHP_E_ENV_VERSION, "CHP_E_ENV_VERSION"},
        {CHP_E_ENV_TTL, "CHP_E_ENV_TTL"},
        {CHP_E_ENV_EXPIRED, "CHP_E_ENV_EXPIRED"},
        {CHP_E_ENV_FUTURE, "CHP_E_ENV_FUTURE"},
        {CHP_E_ENV_POW, "CHP_E_ENV_POW"},
        {CHP_E_DECRYPT, "CHP_E_DECRYPT"},
        {CHP_E_SIGNATURE, "CHP_E_SIGNATURE"},
        {CHP_E_PADDING, "CHP_E_PADDING"},
        {CHP_E_TOO_BIG, "CHP_E_TOO_BIG"},
        {CHP_E_ID_CHARSET, "CHP_E_ID_CHARSET"},
        {CHP_E_ID_CHECKSUM, "CHP_E_ID_CHECKSUM"},
        {CHP_E_ID_PREFIX, "CHP_E_ID_PREFIX"},
        {CHP_E_ID_LENGTH, "CHP_E_ID_LENGTH"},
        {CHP_E_ID_KEY, "CHP_E_ID_KEY"},
        {CHP_E_KEYFILE, "CHP_E_KEYFILE"},
        {CHP_E_PASSPHRASE, "CHP_E_PASSPHRASE"},
        {CHP_E_KDF, "CHP_E_KDF"},
        {CHP_E_DH, "CHP_E_DH"},
        {CHP_E_ROOM_NAME, "CHP_E_ROOM_NAME"},
        {CHP_E_UTF8, "CHP_E_UTF8"},
    };
    const char *unknown_text = chp_strerror(-9999);
    assert_non_null(unknown_text);
    assert_string_equal(chp_errname(-9999), "CHP_E_UNKNOWN");
    assert_string_equal(chp_errname(1), "CHP_E_UNKNOWN");
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        assert_string_equal(chp_errname(known[i].code), known[i].name);
        const char *t = chp_strerror(known[i].code);
        assert_non_null(t);
        assert_true(strlen(t) > 0);
        assert_string_not_equal(t, unknown_text);
        /* Texts tell the codes apart. */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(t, chp_strerror(known[j].code));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_init),
        cmocka_unit_test(test_rd_every_width_big_endian),
        cmocka_unit_test(test_rd_extreme_values),
        cmocka_unit_test(test_rd_bytes_copies),
        cmocka_unit_test(test_rd_ref_points_into_input),
        cmocka_unit_test(test_rd_u8_truncated),
        cmocka_unit_test(test_rd_u16_truncated),
        cmocka_unit_test(test_rd_u32_truncated),
        cmocka_unit_test(test_rd_u64_truncated),
        cmocka_unit_test(test_rd_bytes_truncated),
        cmocka_unit_test(test_rd_ref_truncated),
        cmocka_unit_test(test_rd_huge_length_truncated),
        cmocka_unit_test(test_rd_truncation_is_sticky),
        cmocka_unit_test(test_rd_done_trailing),
        cmocka_unit_test(test_rd_empty_input),
        cmocka_unit_test(test_rd_zero_length_ops),
        cmocka_unit_test(test_wr_every_width_big_endian),
        cmocka_unit_test(test_wr_rd_round_trip),
        cmocka_unit_test(test_wr_zero_writes_zeros),
        cmocka_unit_test(test_wr_exact_fill),
        cmocka_unit_test(test_wr_u8_overflow),
        cmocka_unit_test(test_wr_u16_overflow),
        cmocka_unit_test(test_wr_u32_overflow),
        cmocka_unit_test(test_wr_u64_overflow),
        cmocka_unit_test(test_wr_bytes_overflow),
        cmocka_unit_test(test_wr_zero_overflow),
        cmocka_unit_test(test_wr_overflow_is_sticky),
        cmocka_unit_test(test_wr_zero_length_ops),
        cmocka_unit_test(test_be_helpers),
        cmocka_unit_test(test_err_names_and_texts),
    };
    if (chp_crypto_init() != CHP_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
