/* test_buf.c - growable memory (proto/buf.c): the byte buffer keeps what
 * was appended across every reallocation, array growth doubles and zeroes
 * the new elements, overflowing sizes fail with nothing changed, and the
 * growth of a secret array wipes the old block before it is freed (seen
 * through free, wrapped at link time: -Wl,--wrap=free). */
#include "proto/buf.h"
#include "proto/err.h"
#include "tests/unit/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- free, observed ---- */

void __real_free(void *p);
void __wrap_free(void *p);

/* The block whose release the test waits for, its size, and what it held
 * when free was called. */
static struct {
    const void *p;
    size_t len;
    int freed; /* free(p) was called */
    int wiped; /* ... and all len bytes were zero then */
} watch;

void __wrap_free(void *p)
{
    if (p && p == watch.p) {
        watch.freed = 1;
        watch.wiped = tu_all_zero(p, watch.len);
    }
    __real_free(p);
}

static void watch_block(const void *p, size_t len)
{
    watch.p = p;
    watch.len = len;
    watch.freed = watch.wiped = 0;
}

/* ---- chp_buf ---- */

static void test_buf_put_keeps_content_across_growth(void **state)
{
    (void)state;
    chp_buf b = {0};
    uint8_t chunk[100], want[5000];
    size_t n = 0;
    /* 50 appends of 100 bytes: from nothing through several reallocations. */
    for (int i = 0; i < 50; i++) {
        tu_pattern(chunk, sizeof chunk, (uint8_t)i);
        assert_rc(chp_buf_put(&b, chunk, sizeof chunk), CHP_OK);
        memcpy(want + n, chunk, sizeof chunk);
        n += sizeof chunk;
        assert_int_equal(b.len, n);
        assert_true(b.cap >= b.len);
        assert_memory_equal(b.p, want, n);
    }
    assert_int_equal(b.cap & (b.cap - 1), 0); /* doubled from a power of two */
    chp_buf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_buf_put_empty(void **state)
{
    (void)state;
    chp_buf b = {0};
    assert_rc(chp_buf_put(&b, NULL, 0), CHP_OK); /* NULL source with no bytes */
    assert_int_equal(b.len, 0);
    assert_rc(chp_buf_put(&b, "ab", 2), CHP_OK);
    assert_rc(chp_buf_put(&b, NULL, 0), CHP_OK);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.p, "ab", 2);
    chp_buf_free(&b);
}

static void test_buf_reserve(void **state)
{
    (void)state;
    chp_buf b = {0};
    assert_rc(chp_buf_reserve(&b, 1000), CHP_OK);
    assert_int_equal(b.len, 0);
    assert_true(b.cap >= 1000);
    uint8_t *p = b.p;
    size_t cap = b.cap;
    /* Room already there: no reallocation, the pointer stays. */
    assert_rc(chp_buf_put(&b, "xyz", 3), CHP_OK);
    assert_rc(chp_buf_reserve(&b, cap - 3), CHP_OK);
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.cap, cap);
    chp_buf_free(&b);
}

static void test_buf_overflow_leaves_buffer(void **state)
{
    (void)state;
    chp_buf b = {0};
    assert_rc(chp_buf_put(&b, "hello", 5), CHP_OK);
    uint8_t *p = b.p;
    size_t cap = b.cap;
    assert_rc(chp_buf_reserve(&b, SIZE_MAX), CHP_E_NOMEM);
    assert_rc(chp_buf_reserve(&b, SIZE_MAX / 2), CHP_E_NOMEM);
    assert_rc(chp_buf_put(&b, "x", SIZE_MAX - 2), CHP_E_NOMEM);
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.len, 5);
    assert_int_equal(b.cap, cap);
    assert_memory_equal(b.p, "hello", 5);
    chp_buf_free(&b);
}

static void test_buf_free_null_and_zeroed(void **state)
{
    (void)state;
    chp_buf_free(NULL);
    chp_buf b = {0};
    chp_buf_free(&b);
    chp_buf_free(&b); /* twice: still a zeroed buffer */
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

/* ---- chp_grow / chp_grow_secret ---- */

typedef struct item {
    uint64_t a;
    uint8_t b[24];
} item;

typedef int (*grow_fn)(void *arr, size_t *cap, size_t need, size_t elem);

/* Grows an array of items one element at a time up to 100, filling each
 * as it comes: old elements keep their values, new ones arrive zeroed,
 * the capacity starts at 8 and doubles. */
static void grows_and_zeroes(grow_fn grow)
{
    item *arr = NULL;
    size_t cap = 0;
    for (size_t n = 1; n <= 100; n++) {
        size_t before = cap;
        assert_rc(grow(&arr, &cap, n, sizeof *arr), CHP_OK);
        assert_non_null(arr);
        assert_true(cap >= n);
        if (before == 0)
            assert_int_equal(cap, 8);
        else if (cap != before)
            assert_int_equal(cap, 2 * before);
        for (size_t i = before; i < cap; i++)
            assert_true(tu_all_zero(&arr[i], sizeof arr[i]));
        for (size_t i = 0; i + 1 < n; i++) {
            assert_int_equal(arr[i].a, i * 1000 + 7);
            assert_int_equal(arr[i].b[23], (uint8_t)i);
        }
        arr[n - 1].a = (n - 1) * 1000 + 7;
        arr[n - 1].b[23] = (uint8_t)(n - 1);
    }
    assert_int_equal(cap, 128);
    free(arr);
}

static void test_grow_zeroes_new_keeps_old(void **state)
{
    (void)state;
    grows_and_zeroes(chp_grow);
}

static void test_grow_secret_zeroes_new_keeps_old(void **state)
{
    (void)state;
    grows_and_zeroes(chp_grow_secret);
}

/* need at or below the capacity: nothing moves, nothing is zeroed. */
static void no_op_within_capacity(grow_fn grow)
{
    uint32_t *arr = NULL;
    size_t cap = 0;
    assert_rc(grow(&arr, &cap, 3, sizeof *arr), CHP_OK);
    arr[7] = 0xdeadbeef;
    uint32_t *p = arr;
    assert_rc(grow(&arr, &cap, 8, sizeof *arr), CHP_OK);
    assert_rc(grow(&arr, &cap, 0, sizeof *arr), CHP_OK);
    assert_ptr_equal(arr, p);
    assert_int_equal(cap, 8);
    assert_int_equal(arr[7], 0xdeadbeef);
    /* A jump past double goes straight to the next power of two. */
    assert_rc(grow(&arr, &cap, 33, sizeof *arr), CHP_OK);
    assert_int_equal(cap, 64);
    assert_int_equal(arr[7], 0xdeadbeef);
    free(arr);
}

static void test_grow_no_op_within_capacity(void **state)
{
    (void)state;
    no_op_within_capacity(chp_grow);
    no_op_within_capacity(chp_grow_secret);
}

/* Sizes that overflow fail with the array and capacity as they were. */
static void overflow_leaves_array(grow_fn grow)
{
    uint64_t *arr = NULL;
    size_t cap = 0;
    assert_rc(grow(&arr, &cap, 5, sizeof *arr), CHP_OK);
    arr[4] = 42;
    uint64_t *p = arr;
    assert_rc(grow(&arr, &cap, SIZE_MAX, sizeof *arr), CHP_E_NOMEM);
    assert_rc(grow(&arr, &cap, SIZE_MAX / 8 + 1, sizeof *arr), CHP_E_NOMEM);
    assert_rc(grow(&arr, &cap, 9, SIZE_MAX / 8), CHP_E_NOMEM); /* count fits, bytes do not */
    assert_ptr_equal(arr, p);
    assert_int_equal(cap, 8);
    assert_int_equal(arr[4], 42);
    free(arr);
}

static void test_grow_overflow_leaves_array(void **state)
{
    (void)state;
    overflow_leaves_array(chp_grow);
    overflow_leaves_array(chp_grow_secret);
}

/* The block a secret array leaves behind is all zero when it is freed. */
static void test_grow_secret_wipes_old_block(void **state)
{
    (void)state;
    uint8_t(*keys)[32] = NULL;
    size_t cap = 0;
    assert_rc(chp_grow_secret(&keys, &cap, 8, sizeof *keys), CHP_OK);
    for (size_t i = 0; i < cap; i++)
        tu_pattern(keys[i], 32, (uint8_t)(i + 1));
    uint8_t saved[8][32];
    memcpy(saved, keys, sizeof saved);
    for (int round = 0; round < 3; round++) {
        size_t old_cap = cap;
        watch_block(keys, old_cap * sizeof *keys);
        assert_rc(chp_grow_secret(&keys, &cap, old_cap + 1, sizeof *keys), CHP_OK);
        assert_true(watch.freed);
        assert_true(watch.wiped);
        assert_ptr_not_equal(keys, watch.p);
        assert_int_equal(cap, 2 * old_cap);
        assert_memory_equal(keys, saved, sizeof saved); /* copied before the wipe */
        watch_block(NULL, 0);
    }
    /* The first growth (from nothing) frees nothing. */
    uint8_t(*none)[32] = NULL;
    size_t ncap = 0;
    watch_block(NULL, 0);
    assert_rc(chp_grow_secret(&none, &ncap, 1, sizeof *none), CHP_OK);
    assert_false(watch.freed);
    free(none);
    free(keys);
}

/* The wrap itself sees what it should: a block freed with bytes in it is
 * reported as not wiped (so the test above cannot pass by accident). */
static void test_free_watch_sees_unwiped_block(void **state)
{
    (void)state;
    uint8_t *p = malloc(64);
    assert_non_null(p);
    memset(p, 0, 64);
    p[63] = 1;
    watch_block(p, 64);
    __wrap_free(p); /* directly: a compiler may drop a malloc/free pair */
    assert_true(watch.freed);
    assert_false(watch.wiped);
    watch_block(NULL, 0);
}

/* chp_buf_printf appends, keeps a NUL after the text, grows as needed. */
static void test_printf_appends(void **state)
{
    (void)state;
    chp_buf b = {0};
    assert_int_equal(chp_buf_printf(&b, "%s=%d;", "a", 1), CHP_OK);
    assert_int_equal(chp_buf_printf(&b, "%s", ""), CHP_OK);
    assert_int_equal(b.len, 4);
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(chp_buf_printf(&b, "%s", big), CHP_OK);
    assert_int_equal(b.len, 4 + sizeof big - 1);
    assert_memory_equal(b.p, "a=1;xx", 6);
    assert_int_equal(b.p[b.len], 0);
    chp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_put_keeps_content_across_growth),
        cmocka_unit_test(test_buf_put_empty),
        cmocka_unit_test(test_buf_reserve),
        cmocka_unit_test(test_buf_overflow_leaves_buffer),
        cmocka_unit_test(test_buf_free_null_and_zeroed),
        cmocka_unit_test(test_grow_zeroes_new_keeps_old),
        cmocka_unit_test(test_grow_secret_zeroes_new_keeps_old),
        cmocka_unit_test(test_grow_no_op_within_capacity),
        cmocka_unit_test(test_grow_overflow_leaves_array),
        cmocka_unit_test(test_grow_secret_wipes_old_block),
        cmocka_unit_test(test_free_watch_sees_unwiped_block),
        cmocka_unit_test(test_printf_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
