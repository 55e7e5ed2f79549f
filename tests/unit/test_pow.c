/* test_pow.c - proof of work (PROTOCOL.md section 8): the target formula
 * worked by hand, its monotonicity and saturation, the trial hash against
 * its definition, and the solver's "smallest nonce >= start" contract. */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/err.h"
#include "proto/pow.h"
#include "tests/unit/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void initial_n(uint8_t k, uint8_t initial[32])
{
    tu_ctr c = {.ctr = k};
    chp_rng rng = tu_ctr_rng(&c);
    uint8_t raw[32];
    chp_rng_fill(&rng, raw, sizeof raw);
    chp_hash(initial, 32, raw, sizeof raw, NULL, 0); /* as the envelope makes it */
}

/* The target straight from the document, for inputs where nothing
 * overflows. */
static uint64_t doc_target(uint64_t len, uint64_t ttl, uint64_t ntpb)
{
    uint64_t w = len + 1000;
    uint64_t d = ntpb * (w + (ttl * w) / 65536);
    return UINT64_MAX / d;
}

static void test_crypto_init(void **state)
{
    (void)state;
    assert_int_equal(chp_crypto_init(), CHP_OK);
}

/* ---- target ---- */

static void test_target_worked_example(void **state)
{
    (void)state;
    /* len 1113, one day, ntpb 16: w = 2113,
     * floor(86400 * 2113 / 65536) = floor(182563200 / 65536) = 2785,
     * d = 16 * (2113 + 2785) = 78368. */
    assert_true(chp_pow_target(1113, 86400, 16) == UINT64_MAX / 78368u);
    assert_true(chp_pow_target(1113, 86400, 16) == UINT64_C(235386178972406));
    /* The network's ntpb 32: d = 156736 as PROTOCOL.md states. */
    assert_int_equal(CHP_POW_NTPB_DEFAULT, 32);
    assert_true(chp_pow_target(1113, 86400, CHP_POW_NTPB_DEFAULT) == UINT64_MAX / 156736u);
    assert_true(chp_pow_target(1113, 86400, 32) == UINT64_C(117693089486203));
    /* No lifetime: d = ntpb * w. */
    assert_true(chp_pow_target(0, 0, 1) == UINT64_MAX / 1000u);
    assert_true(chp_pow_target(24, 0, 2) == UINT64_MAX / 2048u);
    /* The floor: 65535 * 1000 / 65536 = 999.98 -> 999, 65536 * 1000 / 65536 = 1000. */
    assert_true(chp_pow_target(0, 65535, 1) == UINT64_MAX / 1999u);
    assert_true(chp_pow_target(0, 65536, 1) == UINT64_MAX / 2000u);
}

static void test_target_matches_formula(void **state)
{
    (void)state;
    static const uint64_t lens[] = {0, 1, 100, 1000, 1113, 4096, 65535, 1u << 20};
    static const uint64_t ttls[] = {0, 1, 60, 3600, 65535, 65536, 86400, 2592000, 0xffffffffu};
    static const uint32_t ntpbs[] = {1, 2, 16, 32, 1000};
    for (size_t a = 0; a < sizeof lens / sizeof lens[0]; a++)
        for (size_t b = 0; b < sizeof ttls / sizeof ttls[0]; b++)
            for (size_t c = 0; c < sizeof ntpbs / sizeof ntpbs[0]; c++)
                assert_true(chp_pow_target((size_t)lens[a], ttls[b], ntpbs[c]) ==
                            doc_target(lens[a], ttls[b], ntpbs[c]));
}

static void test_target_monotonic(void **state)
{
    (void)state;
    /* Bigger envelopes cost more at every lifetime... */
    for (uint64_t ttl = 0; ttl <= 30 * 86400; ttl += 86400 / 4) {
        uint64_t prev = chp_pow_target(0, ttl, 32);
        for (size_t len = 1; len <= 70000; len += 997) {
            uint64_t t = chp_pow_target(len, ttl, 32);
            assert_true(t < prev);
            prev = t;
        }
    }
    /* ...and longer lifetimes cost more at every size (strictly once the
     * floor moves). */
    for (size_t len = 0; len <= 70000; len += 4999) {
        uint64_t prev = chp_pow_target(len, 0, 32);
        for (uint64_t ttl = 1; ttl <= 40 * 86400; ttl += 6007) {
            uint64_t t = chp_pow_target(len, ttl, 32);
            assert_true(t <= prev);
            prev = t;
        }
        assert_true(chp_pow_target(len, 65536, 32) < chp_pow_target(len, 0, 32));
    }
    /* More trials per byte, a lower target. */
    assert_true(chp_pow_target(1113, 86400, 33) < chp_pow_target(1113, 86400, 32));
}

static void test_target_ntpb_zero(void **state)
{
    (void)state;
    assert_true(chp_pow_target(0, 0, 0) == UINT64_MAX);
    assert_true(chp_pow_target(1113, 86400, 0) == UINT64_MAX);
    assert_true(chp_pow_target(1u << 20, UINT64_MAX, 0) == UINT64_MAX);
}

static void test_target_saturates(void **state)
{
    (void)state;
    /* ttl * w overflows. */
    assert_true(chp_pow_target(0, UINT64_MAX, 1) == 0);
    assert_true(chp_pow_target(1113, UINT64_MAX / 2, 32) == 0);
    assert_true(chp_pow_target(1u << 20, UINT64_C(1) << 60, 1) == 0);
    /* ttl * w fits, but ntpb * (w + ...) does not. */
    assert_true(chp_pow_target(0, UINT64_MAX / 1000, UINT32_MAX) == 0);
    /* Just inside: no wrap-around to an easy target. */
    uint64_t t = chp_pow_target(0, UINT64_MAX / 1000, 1);
    assert_true(t < 70000);
}

/* ---- trial ---- */

static void test_trial_known_answers(void **state)
{
    (void)state;
    uint8_t initial[32];
    for (size_t i = 0; i < 32; i++)
        initial[i] = (uint8_t)i;
    /* BLAKE2b-256(be64(nonce) || 00..1f), first 8 bytes, from Python's
     * hashlib. */
    assert_true(chp_pow_trial(initial, 0) == UINT64_C(0xcf9e767e2c7a0213));
    assert_true(chp_pow_trial(initial, 1) == UINT64_C(0xc188908e860e6288));
    assert_true(chp_pow_trial(initial, UINT64_C(0x0102030405060708)) ==
                UINT64_C(0x02eba456d8e80b39));
    assert_true(chp_pow_trial(initial, UINT64_MAX) == UINT64_C(0xe554222900f9e9c2));
}

static void test_trial_matches_definition(void **state)
{
    (void)state;
    static const uint64_t nonces[] = {0,         1, 255, 256, 0x100000000ull, 0x8000000000000000ull,
                                      UINT64_MAX};
    for (uint8_t k = 0; k < 4; k++) {
        uint8_t initial[32];
        initial_n(k, initial);
        for (size_t i = 0; i < sizeof nonces / sizeof nonces[0]; i++) {
            uint8_t in[40], h[32];
            for (int b = 0; b < 8; b++)
                in[b] = (uint8_t)(nonces[i] >> (56 - 8 * b));
            memcpy(in + 8, initial, 32);
            chp_hash(h, 32, in, sizeof in, NULL, 0);
            uint64_t want = 0;
            for (int b = 0; b < 8; b++)
                want = (want << 8) | h[b];
            assert_true(chp_pow_trial(initial, nonces[i]) == want);
            assert_true(chp_pow_trial(initial, nonces[i]) == want); /* deterministic */
        }
    }
}

static void test_trial_depends_on_both_inputs(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    initial_n(1, a);
    memcpy(b, a, 32);
    b[31] ^= 1;
    assert_true(chp_pow_trial(a, 7) != chp_pow_trial(b, 7));
    assert_true(chp_pow_trial(a, 7) != chp_pow_trial(a, 8));
    /* Nonce byte order matters (big-endian, not little). */
    assert_true(chp_pow_trial(a, 1) != chp_pow_trial(a, UINT64_C(1) << 56));
}

/* ---- solve ---- */

/* result is the smallest nonce >= start that meets target. */
static void check_smallest(const uint8_t initial[32], uint64_t target, uint64_t start,
                           uint64_t result)
{
    assert_true(result >= start);
    assert_true(chp_pow_trial(initial, result) <= target);
    for (uint64_t n = start; n < result; n++)
        assert_true(chp_pow_trial(initial, n) > target);
}

static void test_solve_smallest_from_start(void **state)
{
    (void)state;
    const uint64_t target = UINT64_MAX / 64; /* about 64 trials */
    static const uint64_t starts[] = {0, 1, 1000, UINT64_C(1) << 40};
    for (uint8_t k = 0; k < 6; k++) {
        uint8_t initial[32];
        initial_n(k, initial);
        for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
            uint64_t n = chp_pow_solve(initial, target, starts[i]);
            check_smallest(initial, target, starts[i], n);
            /* Searching on from just past it finds the next one. */
            uint64_t m = chp_pow_solve(initial, target, n + 1);
            assert_true(m > n);
            check_smallest(initial, target, n + 1, m);
            /* Starting on a solution returns it. */
            assert_true(chp_pow_solve(initial, target, n) == n);
        }
    }
}

static void test_solve_easiest_target(void **state)
{
    (void)state;
    uint8_t initial[32];
    initial_n(9, initial);
    assert_true(chp_pow_solve(initial, UINT64_MAX, 0) == 0);
    assert_true(chp_pow_solve(initial, UINT64_MAX, 12345) == 12345);
    assert_true(chp_pow_solve(initial, UINT64_MAX, UINT64_MAX) == UINT64_MAX);
}

/* "valid iff trial <= target": a trial equal to the target passes. */
static void test_solve_accepts_trial_equal_to_target(void **state)
{
    (void)state;
    uint8_t initial[32];
    initial_n(11, initial);
    for (uint64_t n = 5; n < 9; n++) {
        uint64_t t = chp_pow_trial(initial, n);
        assert_true(chp_pow_solve(initial, t, n) == n);
        /* One below it, n no longer qualifies. */
        uint64_t m = chp_pow_solve(initial, t - 1, n);
        assert_true(m > n);
        check_smallest(initial, t - 1, n, m);
    }
}

static void test_solve_meets_network_target(void **state)
{
    (void)state;
    /* A small envelope, one hour, ntpb 1: d = 1100 + 60 = 1160 trials
     * expected, cheap even under sanitizers. */
    uint64_t target = chp_pow_target(100, 3600, 1);
    assert_true(target == UINT64_MAX / 1160u);
    uint8_t initial[32];
    initial_n(10, initial);
    uint64_t n = chp_pow_solve(initial, target, 0);
    check_smallest(initial, target, 0, n);
    /* The proof is tied to its input. */
    initial[0] ^= 1;
    uint64_t n2 = chp_pow_solve(initial, target, 0);
    check_smallest(initial, target, 0, n2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_init),
        cmocka_unit_test(test_target_worked_example),
        cmocka_unit_test(test_target_matches_formula),
        cmocka_unit_test(test_target_monotonic),
        cmocka_unit_test(test_target_ntpb_zero),
        cmocka_unit_test(test_target_saturates),
        cmocka_unit_test(test_trial_known_answers),
        cmocka_unit_test(test_trial_matches_definition),
        cmocka_unit_test(test_trial_depends_on_both_inputs),
        cmocka_unit_test(test_solve_smallest_from_start),
        cmocka_unit_test(test_solve_easiest_target),
        cmocka_unit_test(test_solve_accepts_trial_equal_to_target),
        cmocka_unit_test(test_solve_meets_network_target),
    };
    if (chp_crypto_init() != CHP_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
