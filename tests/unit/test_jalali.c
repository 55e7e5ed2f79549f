/* test_jalali.c - the Jalali calendar (node/common/jalali.c): known dates
 * both ways, the leap years around today, every day from 1900 to 2100
 * round-tripped and consecutive, refused dates, and Persian digits. */
#include "node/common/jalali.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

struct known {
    int gy, gm, gd, jy, jm, jd;
};

/* Dates as Iran's official calendar gives them. */
static const struct known known[] = {
    {2025, 3, 21, 1404, 1, 1},   /* Nowruz 1404 (the example) */
    {2025, 3, 20, 1403, 12, 30}, /* 30 Esfand: 1403 is a leap year */
    {2024, 3, 20, 1403, 1, 1},   /* Nowruz 1403 */
    {2021, 3, 21, 1400, 1, 1},   /* Nowruz 1400 */
    {2021, 3, 20, 1399, 12, 30}, /* 1399 is a leap year */
    {2020, 3, 20, 1399, 1, 1},
    {2019, 3, 21, 1398, 1, 1},
    {1979, 2, 11, 1357, 11, 22}, /* 22 Bahman 1357 */
    {1970, 1, 1, 1348, 10, 11},  /* the Unix epoch */
    {1981, 8, 17, 1360, 5, 26},
    {2026, 12, 2, 1405, 9, 11},
    {2000, 1, 1, 1378, 10, 11},
    /* days of history as Iran marks them */
    {1951, 3, 20, 1329, 12, 29}, /* oil nationalised, 29 Esfand */
    {1953, 8, 19, 1332, 5, 28},  /* 28 Mordad */
    {1978, 9, 8, 1357, 6, 17},   /* 17 Shahrivar */
    {1979, 4, 1, 1358, 1, 12},   /* 12 Farvardin */
    {1979, 11, 4, 1358, 8, 13},  /* 13 Aban */
    {1980, 9, 22, 1359, 6, 31},  /* 31 Shahrivar: the war begins */
    {1982, 5, 24, 1361, 3, 3},   /* 3 Khordad: Khorramshahr */
    {1988, 7, 18, 1367, 4, 27},  /* 27 Tir: resolution 598 accepted */
    {1989, 6, 4, 1368, 3, 14},   /* 14 Khordad, the day after he died */
    {1997, 5, 23, 1376, 3, 2},   /* 2 Khordad */
    {1999, 7, 9, 1378, 4, 18},   /* 18 Tir */
    {2009, 6, 12, 1388, 3, 22},  /* 22 Khordad: the election */
    {2022, 9, 16, 1401, 6, 25},  /* 25 Shahrivar */
    /* Nowruz: the day whose noon in Tehran (UTC+3:30) follows the March
     * equinox (equinox times of the astronomical almanacs) */
    {2008, 3, 20, 1387, 1, 1},
    {2009, 3, 21, 1388, 1, 1},
    {2010, 3, 21, 1389, 1, 1},
    {2012, 3, 20, 1391, 1, 1},
    {2013, 3, 21, 1392, 1, 1},
    {2014, 3, 21, 1393, 1, 1},
    {2015, 3, 21, 1394, 1, 1},
    {2016, 3, 20, 1395, 1, 1},
    {2017, 3, 21, 1396, 1, 1},
    {2018, 3, 21, 1397, 1, 1},
    {2022, 3, 21, 1401, 1, 1},
    {2023, 3, 21, 1402, 1, 1},
    {2026, 3, 21, 1405, 1, 1},
    {2027, 3, 21, 1406, 1, 1},
    {2028, 3, 20, 1407, 1, 1},
    {2029, 3, 20, 1408, 1, 1},
    {2030, 3, 21, 1409, 1, 1},
    /* Sizdah Bedar, the last days of a year, Mehr, Yalda, Dey */
    {2024, 4, 1, 1403, 1, 13},
    {2025, 4, 2, 1404, 1, 13},
    {2023, 3, 20, 1401, 12, 29},
    {2024, 3, 19, 1402, 12, 29},
    {2023, 9, 23, 1402, 7, 1},
    {2024, 9, 22, 1403, 7, 1},
    {2023, 12, 21, 1402, 9, 30},
    {2023, 12, 22, 1402, 10, 1},
    {2024, 12, 20, 1403, 9, 30},
};

static void test_known_dates(void **state)
{
    (void)state;
    assert_true(sizeof known / sizeof known[0] >= 50);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const struct known *k = &known[i];
        int jy, jm, jd, gy, gm, gd;
        assert_int_equal(chp_jalali_from_gregorian(k->gy, k->gm, k->gd, &jy, &jm, &jd), 0);
        if (jy != k->jy || jm != k->jm || jd != k->jd)
            fail_msg("%d-%02d-%02d gave %d/%d/%d, want %d/%d/%d", k->gy, k->gm, k->gd, jy, jm, jd,
                     k->jy, k->jm, k->jd);
        assert_int_equal(chp_jalali_to_gregorian(k->jy, k->jm, k->jd, &gy, &gm, &gd), 0);
        assert_int_equal(gy, k->gy);
        assert_int_equal(gm, k->gm);
        assert_int_equal(gd, k->gd);
    }
}

static void test_leap_years(void **state)
{
    (void)state;
    /* the 33-year cycle: 1403 then 1408 (five years), then every four */
    static const int leap[] = {1387, 1391, 1395, 1399, 1403, 1408, 1412};
    static const int common[] = {1396, 1400, 1401, 1402, 1404, 1405, 1406, 1407, 1409};
    for (size_t i = 0; i < sizeof leap / sizeof leap[0]; i++)
        assert_int_equal(chp_jalali_leap(leap[i]), 1);
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        assert_int_equal(chp_jalali_leap(common[i]), 0);
    assert_int_equal(chp_jalali_leap(-62), -1);
    assert_int_equal(chp_jalali_leap(3178), -1);
}

static int days_in(int gy, int gm)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return d[gm - 1] + (gm == 2 && ((gy % 4 == 0 && gy % 100) || gy % 400 == 0));
}

/* Every Gregorian day of 1900-2100 maps to a Jalali date that maps back,
 * and consecutive days give consecutive Jalali dates (months of 31 x 6,
 * 30 x 5, then 29 or 30 by the leap year). */
static void test_every_day(void **state)
{
    (void)state;
    int py = 0, pm = 0, pd = 0, days = 0;
    for (int gy = 1900; gy <= 2100; gy++)
        for (int gm = 1; gm <= 12; gm++)
            for (int gd = 1; gd <= days_in(gy, gm); gd++) {
                int jy, jm, jd, by, bm, bd;
                assert_int_equal(chp_jalali_from_gregorian(gy, gm, gd, &jy, &jm, &jd), 0);
                assert_int_equal(chp_jalali_to_gregorian(jy, jm, jd, &by, &bm, &bd), 0);
                if (by != gy || bm != gm || bd != gd)
                    fail_msg("%d-%d-%d -> %d/%d/%d -> %d-%d-%d", gy, gm, gd, jy, jm, jd, by, bm,
                             bd);
                if (days++) {
                    int len = pm <= 6 ? 31 : pm <= 11 ? 30 : 29 + chp_jalali_leap(py);
                    int next = pd < len  ? (jy == py && jm == pm && jd == pd + 1)
                               : pm < 12 ? (jy == py && jm == pm + 1 && jd == 1)
                                         : (jy == py + 1 && jm == 1 && jd == 1);
                    if (!next)
                        fail_msg("%d/%d/%d follows %d/%d/%d", jy, jm, jd, py, pm, pd);
                }
                py = jy, pm = jm, pd = jd;
            }
    assert_int_equal(days, 73414);
}

static void test_refused(void **state)
{
    (void)state;
    int a, b, c;
    assert_int_equal(chp_jalali_from_gregorian(2023, 2, 29, &a, &b, &c), -1);
    assert_int_equal(chp_jalali_from_gregorian(2024, 13, 1, &a, &b, &c), -1);
    assert_int_equal(chp_jalali_from_gregorian(2024, 4, 31, &a, &b, &c), -1);
    assert_int_equal(chp_jalali_from_gregorian(2024, 1, 0, &a, &b, &c), -1);
    assert_int_equal(chp_jalali_from_gregorian(100, 1, 1, &a, &b, &c), -1);
    assert_int_equal(chp_jalali_to_gregorian(1404, 12, 30, &a, &b, &c), -1); /* common year */
    assert_int_equal(chp_jalali_to_gregorian(1403, 12, 30, &a, &b, &c), 0);
    assert_int_equal(chp_jalali_to_gregorian(1404, 7, 31, &a, &b, &c), -1);
    assert_int_equal(chp_jalali_to_gregorian(1404, 6, 31, &a, &b, &c), 0);
    assert_int_equal(chp_jalali_to_gregorian(1404, 0, 1, &a, &b, &c), -1);
    assert_int_equal(chp_jalali_to_gregorian(4000, 1, 1, &a, &b, &c), -1);
}

static void test_fa_digits(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(chp_fa_digits("1404/01/01 12:05", out, sizeof out), 16 + 12);
    assert_string_equal(out, "\xdb\xb1\xdb\xb4\xdb\xb0\xdb\xb4/\xdb\xb0\xdb\xb1/\xdb\xb0\xdb\xb1 "
                             "\xdb\xb1\xdb\xb2:\xdb\xb0\xdb\xb5");
    assert_int_equal(chp_fa_digits("0123456789", out, sizeof out), 20);
    assert_memory_equal(out + 18, "\xdb\xb9", 2);
    assert_int_equal(chp_fa_digits("سلام", out, sizeof out), (int)strlen("سلام"));
    assert_string_equal(out, "سلام");
    assert_int_equal(chp_fa_digits("12", out, 4), -1); /* 4 bytes + NUL do not fit */
    assert_string_equal(out, "");
    assert_int_equal(chp_fa_digits("12", out, 5), 4);
    assert_int_equal(chp_fa_digits("", out, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_dates), cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_every_day),   cmocka_unit_test(test_refused),
        cmocka_unit_test(test_fa_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
