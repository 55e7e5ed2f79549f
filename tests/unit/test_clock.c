/* test_clock.c - the clocks (node/common/clock.c): a chp_clock with
 * injected functions says exactly what they say and passes them its
 * context; a NULL clock or NULL function is the real clock, which agrees
 * with the system's and moves forward. */
#include "node/common/clock.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

/* A virtual clock a test drives by hand; counts how often it is read. */
typedef struct vclock {
    uint64_t ms, s;
    int ms_reads, s_reads;
} vclock;

static uint64_t v_ms(void *ctx)
{
    vclock *v = ctx;
    v->ms_reads++;
    return v->ms;
}

static uint64_t v_s(void *ctx)
{
    vclock *v = ctx;
    v->s_reads++;
    return v->s;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void test_injected_functions_and_context(void **state)
{
    (void)state;
    vclock v = {.ms = 5, .s = 1700000000};
    chp_clock c = {&v, v_ms, v_s};
    assert_int_equal(chp_clock_ms(&c), 5);
    assert_int_equal(chp_clock_unix(&c), 1700000000);
    assert_int_equal(v.ms_reads, 1);
    assert_int_equal(v.s_reads, 1);
    /* Time moves only when the test moves it, even backwards. */
    v.ms = UINT64_C(1) << 40;
    v.s = 3;
    assert_int_equal(chp_clock_ms(&c), UINT64_C(1) << 40);
    assert_int_equal(chp_clock_unix(&c), 3);
    sleep_ms(20);
    assert_int_equal(chp_clock_ms(&c), UINT64_C(1) << 40);
    v.ms = 0;
    assert_int_equal(chp_clock_ms(&c), 0);
    assert_int_equal(v.ms_reads, 4);
    assert_int_equal(v.s_reads, 2);
}

/* Each NULL function falls back to the real clock on its own. */
static void test_null_function_is_real(void **state)
{
    (void)state;
    vclock v = {.ms = 7, .s = 11};
    chp_clock only_ms = {&v, v_ms, NULL}, only_s = {&v, NULL, v_s};
    assert_int_equal(chp_clock_ms(&only_ms), 7);
    assert_int_equal(chp_clock_unix(&only_s), 11);
    uint64_t before = chp_unix_s(), u = chp_clock_unix(&only_ms), after = chp_unix_s();
    assert_true(before <= u && u <= after);
    uint64_t m0 = chp_mono_ms(), m = chp_clock_ms(&only_s), m1 = chp_mono_ms();
    assert_true(m0 <= m && m <= m1);
    assert_int_equal(v.ms_reads, 1);
    assert_int_equal(v.s_reads, 1);
}

static void test_null_clock_is_real(void **state)
{
    (void)state;
    uint64_t m0 = chp_mono_ms(), m = chp_clock_ms(NULL), m1 = chp_mono_ms();
    assert_true(m0 <= m && m <= m1);
    chp_clock empty = {0};
    uint64_t e = chp_clock_ms(&empty);
    assert_true(m1 <= e && e <= chp_mono_ms());
    uint64_t s0 = chp_unix_s(), s = chp_clock_unix(NULL), s1 = chp_unix_s();
    assert_true(s0 <= s && s <= s1);
    assert_true(chp_clock_unix(&empty) >= s1);
}

/* The real monotonic clock agrees with CLOCK_MONOTONIC in milliseconds,
 * never goes back and sees a sleep. */
static void test_mono_agrees_and_advances(void **state)
{
    (void)state;
    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    uint64_t sys = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t t0 = chp_mono_ms();
    assert_true(t0 >= sys && t0 - sys < 1000);
    uint64_t prev = t0;
    for (int i = 0; i < 1000; i++) {
        uint64_t t = chp_mono_ms();
        assert_true(t >= prev);
        prev = t;
    }
    sleep_ms(30);
    uint64_t t1 = chp_mono_ms();
    assert_true(t1 - t0 >= 30);
    assert_true(t1 - t0 < 5000);
}

/* The wall clock is the Unix time: seconds since 1970, as time() says. */
static void test_unix_is_wall_time(void **state)
{
    (void)state;
    uint64_t before = (uint64_t)time(NULL);
    uint64_t s = chp_unix_s();
    uint64_t after = (uint64_t)time(NULL);
    assert_true(before <= s && s <= after);
    assert_true(s > UINT64_C(1700000000)); /* after November 2023 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_injected_functions_and_context),
        cmocka_unit_test(test_null_function_is_real),
        cmocka_unit_test(test_null_clock_is_real),
        cmocka_unit_test(test_mono_agrees_and_advances),
        cmocka_unit_test(test_unix_is_wall_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
