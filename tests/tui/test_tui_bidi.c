/* test_tui_bidi.c - right-to-left lines (ui-tui/bidi.c) and the TUI's
 * settings (ui-tui/prefs.c): logical -> visual order against FriBidi's own
 * test data (test/test_UTF-8_persian.{input,reference} of the fribidi
 * source, reordering without shaping) and against mixed lines worked out
 * by hand with the Unicode Bidirectional Algorithm (UAX #9: rules W1-W7,
 * N1-N2, L1-L2, mirroring by L4), Arabic joining, right alignment, and
 * wrapping of long Persian lines at 20, 40 and 80 columns before the
 * reordering, never between a letter and its marks. */
#include "ui-tui/bidi.h"
#include "ui-tui/prefs.h"
#include "ui-tui/wtext.h"

#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* s (UTF-8) laid out in mode at width. */
static void lay(const char *s, int width, chp_bidi_mode mode, chp_bidi_para *p, wchar_t **w,
                size_t *n)
{
    *w = chp_wt_decode(s, strlen(s), n);
    assert_non_null(*w);
    assert_int_equal(chp_bidi_layout(*w, *n, 0, *n, width, mode, p), 0);
}

/* Row r of p as UTF-8 (static buffer), without its pad. */
static const char *row_utf8(const chp_bidi_para *p, size_t r)
{
    static char buf[8192];
    char *s = chp_wt_encode(p->rows[r].vis, p->rows[r].n, NULL);
    assert_non_null(s);
    snprintf(buf, sizeof buf, "%s", s);
    free(s);
    return buf;
}

/* One row, the way it shows: logical in, visual out. */
static void expect_visual(const char *logical, chp_bidi_mode mode, const char *visual, int rtl)
{
    chp_bidi_para p;
    wchar_t *w;
    size_t n;
    lay(logical, 200, mode, &p, &w, &n);
    assert_int_equal(p.nrows, 1);
    assert_string_equal(row_utf8(&p, 0), visual);
    assert_int_equal(p.rtl, rtl);
    chp_bidi_para_fini(&p);
    free(w);
}

/* fribidi test/test_UTF-8_persian: Hafez's first ghazal, reordered
 * (the reference is FriBidi's CLI output: no shaping). */
static void test_fribidi_persian_reference(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"الا يا ايها الساقی ادر کاسا و ناولها", "اهلوان و اساک ردا یقاسلا اهيا اي الا"},
        {"که عشق آسان نمود اول ولی افتاد مشکلها", "اهلکشم داتفا یلو لوا دومن ناسآ قشع هک"},
        {"جرس فرياد میدارد که بربنديد محملها", "اهلمحم ديدنبرب هک درادیم دايرف سرج"},
        {"کجا دانند حال ما سبکباران ساحلها", "اهلحاس نارابکبس ام لاح دنناد اجک"},
        {"حضوری گر همیخواهی از او غايب مشو حافظ", "ظفاح وشم بياغ وا زا یهاوخیمه رگ یروضح"},
        {"متی ما تلق من تهوی دع الدنيا و اهملها", "اهلمها و ايندلا عد یوهت نم قلت ام یتم"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_visual(cases[i][0], CHP_BIDI_REORDER, cases[i][1], 1);
}

/* Mixed lines, by the UBA by hand: Latin words, numbers, a URL and
 * brackets inside Persian keep their own order. */
static void test_mixed_by_hand(void **state)
{
    (void)state;
    /* L paragraph: the Persian run alone is reversed */
    expect_visual("hello سلام world", CHP_BIDI_REORDER, "hello مالس world", 0);
    /* R paragraph: runs in reverse order, the Latin one kept */
    expect_visual("سلام hello دنیا", CHP_BIDI_REORDER, "ایند hello مالس", 1);
    /* W2/W7 are not in play: European digits keep their order (I2) */
    expect_visual("قیمت 12345 تومان", CHP_BIDI_REORDER, "ناموت 12345 تمیق", 1);
    /* Persian digits are AN: they too read left to right */
    expect_visual("ساعت ۱۲:۳۰ است", CHP_BIDI_REORDER, "تسا ۱۲:۳۰ تعاس", 1);
    /* a URL: its neutrals sit between L letters (N1) and stay in it */
    expect_visual("ببین https://example.org/a?b=1 را", CHP_BIDI_REORDER,
                  "ار https://example.org/a?b=1 نیبب", 1);
    /* brackets at level 1 are mirrored (L4), so they still enclose */
    expect_visual("(سلام)", CHP_BIDI_REORDER, "(مالس)", 1);
    /* a nick prefix in front of Persian text: the first strong letter
     * of the whole line is Latin, so this one stays left-to-right */
    expect_visual("ali: سلام", CHP_BIDI_REORDER, "ali: مالس", 0);
    /* terminal mode: logical order untouched */
    expect_visual("سلام hello", CHP_BIDI_TERMINAL, "سلام hello", 1);
}

/* The direction comes from the text, not from the sender in front. */
static void test_direction_of_text(void **state)
{
    (void)state;
    chp_bidi_para p;
    size_t n;
    wchar_t *w = chp_wt_decode("ali: سلام دنیا", strlen("ali: سلام دنیا"), &n);
    assert_non_null(w);
    assert_int_equal(chp_bidi_layout(w, n, 5, n, 40, CHP_BIDI_REORDER, &p), 0);
    assert_true(p.rtl);
    /* UBA in an R paragraph: "ali" (L, level 2) shows at the right end */
    assert_string_equal(row_utf8(&p, 0), "ایند مالس :ali");
    assert_int_equal(p.rows[0].pad, 40 - 14);
    /* map: the visual "a" is logical 0, the visual first letter logical 13 */
    assert_int_equal(p.rows[0].map[p.rows[0].n - 3], 0);
    assert_int_equal(p.rows[0].map[0], n - 1);
    chp_bidi_para_fini(&p);
    free(w);
}

/* App mode joins letters: presentation forms, lam-alef a ligature. */
static void test_shaping(void **state)
{
    (void)state;
    /* "سلام": seen initial, lam-alef final ligature, meem isolated; in
     * visual order (right to left reversed) */
    expect_visual("سلام", CHP_BIDI_APP, "\uFEE1\uFEFC\uFEB3", 1);
    /* "من": meem initial, noon final */
    expect_visual("من", CHP_BIDI_APP, "\uFEE6\uFEE3", 1);
    /* Latin is untouched by shaping */
    expect_visual("abc", CHP_BIDI_APP, "abc", 0);
}

/* Every logical character of w shows exactly once across the rows (the
 * spaces a row is broken at aside), each row fits in width, right-to-left
 * rows are right-aligned, and (pure Persian, no shaping) each row is its
 * logical slice reversed, a combining mark still after its letter. */
static void check_wrapped(const char *s, int width)
{
    chp_bidi_para p;
    wchar_t *w;
    size_t n;
    lay(s, width, CHP_BIDI_REORDER, &p, &w, &n);
    assert_true(p.rtl);
    assert_true(p.nrows >= 2);
    char *seen = calloc(n, 1);
    assert_non_null(seen);
    for (size_t r = 0; r < p.nrows; r++) {
        const chp_bidi_row *row = &p.rows[r];
        assert_true(row->cells <= width);
        assert_int_equal(row->pad + row->cells, width);
        size_t lo = n, hi = 0, last = SIZE_MAX;
        for (size_t i = 0; i < row->n; i++) {
            assert_false(seen[row->map[i]]);
            seen[row->map[i]] = 1;
            lo = row->map[i] < lo ? row->map[i] : lo;
            hi = row->map[i] > hi ? row->map[i] : hi;
            if (chp_wt_cwidth(row->vis[i]) == 0 &&
                row->vis[i] != 0x200C) { /* a mark: after its letter */
                assert_int_equal(row->map[i], row->map[i - 1] + 1);
                continue;
            }
            assert_true(row->map[i] < last); /* the letters reversed */
            last = row->map[i];
        }
        assert_int_equal(hi - lo + 1, row->n); /* one slice */
        if (r + 1 < p.nrows)                   /* broken at a space, not inside a word */
            assert_true(hi + 1 >= n || w[hi + 1] == L' ');
    }
    for (size_t i = 0; i < n; i++)
        assert_true(seen[i] || w[i] == L' ');
    free(seen);
    chp_bidi_para_fini(&p);
    free(w);
}

static void test_wrap_20_40_80(void **state)
{
    (void)state;
    static const char line[] = "چاپار پیام‌رسانی است برای روزهایی که اینترنت قطع است و "
                               "پیام‌ها "
                               "از گوشی به گوشی و از "
                               "رایانه به رایانه در شبکهٔ محلی می‌روند تا به دست گیرنده "
                               "برسند، "
                               "بی‌آنکه کسی در میانه "
                               "بتواند آن‌ها را بخواند یا عوض کند؛ هر گره پاکت‌ها را تا "
                               "زمان "
                               "انقضا نگه می‌دارد";
    check_wrapped(line, 20);
    check_wrapped(line, 40);
    check_wrapped(line, 80);
}

/* A word with marks (fatha, shadda) wider than the row: cut, but never
 * between a letter and its marks, and the marks follow their letter in
 * visual order too (FriBidi's REORDER_NSM), so the terminal puts them on it. */
static void test_marks_stay(void **state)
{
    (void)state;
    chp_bidi_para p;
    wchar_t *w;
    size_t n;
    lay("مُحَمَّدمُحَمَّدمُحَمَّد", 4, CHP_BIDI_REORDER, &p, &w, &n);
    for (size_t r = 0; r < p.nrows; r++) {
        const chp_bidi_row *row = &p.rows[r];
        assert_true(row->cells <= 4);
        assert_true(row->n > 0);
        /* a row's first character (visually) is a letter, never a mark */
        assert_int_not_equal(chp_wt_cwidth(row->vis[0]), 0);
        for (size_t i = 1; i < row->n; i++)
            if (chp_wt_cwidth(row->vis[i]) == 0) /* a mark: its letter is just left of it */
                assert_true(row->map[i] > row->map[i - 1] && row->map[i] - row->map[i - 1] <= 2);
    }
    chp_bidi_para_fini(&p);
    free(w);
}

/* The cursor: after the last letter typed, on the letter it is before. */
static void test_cursor(void **state)
{
    (void)state;
    chp_bidi_para p;
    wchar_t *w;
    size_t n;
    lay("abc", 10, CHP_BIDI_APP, &p, &w, &n);
    assert_int_equal(chp_bidi_cursor_col(&p, 3, n), 3);
    assert_int_equal(chp_bidi_cursor_col(&p, 0, n), 0);
    chp_bidi_para_fini(&p);
    free(w);
    lay("سلام", 10, CHP_BIDI_REORDER, &p, &w, &n);      /* pad 6, then "مالس" */
    assert_int_equal(chp_bidi_cursor_col(&p, 0, n), 9); /* on the first letter: rightmost */
    assert_int_equal(chp_bidi_cursor_col(&p, 4, n), 5); /* the end: left of the last */
    chp_bidi_para_fini(&p);
    free(w);
}

static const char *env_none(const char *name)
{
    (void)name;
    return NULL;
}

static const char *env_vte(const char *name)
{
    return !strcmp(name, "VTE_VERSION") ? "7006" : NULL;
}

static const char *env_konsole(const char *name)
{
    return !strcmp(name, "KONSOLE_VERSION") ? "230804" : NULL;
}

static const char *env_mlterm(const char *name)
{
    return !strcmp(name, "TERM") ? "mlterm-256color" : NULL;
}

static const char *env_fa(const char *name)
{
    return !strcmp(name, "LANG") ? "fa_IR.UTF-8" : NULL;
}

static const char *env_fa_latin(const char *name)
{
    return !strcmp(name, "LANG") ? "fa_IR.UTF-8" : !strcmp(name, "CHAPAR_DIGITS") ? "latin" : NULL;
}

/* auto picks terminal where the environment names a BiDi terminal. */
static void test_auto_mode(void **state)
{
    (void)state;
    assert_int_equal(chp_bidi_resolve(CHP_BIDI_AUTO, env_none), CHP_BIDI_APP);
    assert_int_equal(chp_bidi_resolve(CHP_BIDI_AUTO, env_vte), CHP_BIDI_TERMINAL);
    assert_int_equal(chp_bidi_resolve(CHP_BIDI_AUTO, env_konsole), CHP_BIDI_TERMINAL);
    assert_int_equal(chp_bidi_resolve(CHP_BIDI_AUTO, env_mlterm), CHP_BIDI_TERMINAL);
    assert_int_equal(chp_bidi_resolve(CHP_BIDI_APP, env_vte), CHP_BIDI_APP);
    assert_int_equal(chp_bidi_mode_parse("terminal"), CHP_BIDI_TERMINAL);
    assert_int_equal(chp_bidi_mode_parse("reorder"), -1);
    assert_int_equal(chp_bidi_mode_parse("APP"), -1);
}

/* /set: bidi, calendar, digits; the defaults of a Persian locale. */
static void test_prefs(void **state)
{
    (void)state;
    chp_prefs p;
    char buf[160];
    chp_prefs_init(&p, CHP_BIDI_AUTO, env_none);
    chp_prefs_describe(&p, buf, sizeof buf);
    assert_string_equal(buf, "bidi auto (app), calendar gregorian, digits latin");
    chp_prefs_init(&p, CHP_BIDI_AUTO, env_fa);
    chp_prefs_describe(&p, buf, sizeof buf);
    assert_string_equal(buf, "bidi auto (app), calendar jalali, digits persian");
    chp_prefs_init(&p, CHP_BIDI_AUTO, env_fa_latin);
    assert_int_equal(p.date.jalali, 1);
    assert_int_equal(p.date.persian, 0);
    assert_int_equal(chp_prefs_set(&p, "bidi", "terminal"), 0);
    assert_int_equal(chp_prefs_set(&p, "calendar", "gregorian"), 0);
    assert_int_equal(chp_prefs_set(&p, "digits", "persian"), 0);
    assert_int_equal(chp_prefs_set(&p, "digits", "roman"), -1);
    assert_int_equal(chp_prefs_set(&p, "colour", "red"), -1);
    chp_prefs_describe(&p, buf, sizeof buf);
    assert_string_equal(buf, "bidi terminal, calendar gregorian, digits persian");
}

/* Times and days in both calendars (TZ=UTC; 1742553000 is 2025-03-21
 * 10:30 UTC, 1 Farvardin 1404). */
static void test_dates(void **state)
{
    (void)state;
    chp_datefmt f = {0, 0};
    char buf[96];
    assert_int_equal(chp_datefmt_format(&f, 1742553000, CHP_DATE_FULL, buf, sizeof buf), 16);
    assert_string_equal(buf, "2025-03-21 10:30");
    f.jalali = 1;
    chp_datefmt_format(&f, 1742553000, CHP_DATE_FULL, buf, sizeof buf);
    assert_string_equal(buf, "1404/01/01 10:30");
    chp_datefmt_format(&f, 1742553000, CHP_DATE_LONG, buf, sizeof buf);
    assert_string_equal(buf, "1 Farvardin 1404");
    f.persian = 1;
    chp_datefmt_format(&f, 1742553000, CHP_DATE_TIME, buf, sizeof buf);
    assert_string_equal(buf, "۱۰:۳۰");
    chp_datefmt_format(&f, 1742553000, CHP_DATE_DAY, buf, sizeof buf);
    assert_string_equal(buf, "۱۴۰۴/۰۱/۰۱");
    /* too small a buffer: "?" and -1, never a cut digit */
    assert_int_equal(chp_datefmt_format(&f, 1742553000, CHP_DATE_DAY, buf, 6), -1);
    assert_string_equal(buf, "?");
}

int main(void)
{
    if (!setlocale(LC_ALL, "C.UTF-8") && !setlocale(LC_ALL, "en_US.UTF-8")) {
        fprintf(stderr, "no UTF-8 locale\n");
        return 1;
    }
    setenv("TZ", "UTC", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fribidi_persian_reference),
        cmocka_unit_test(test_mixed_by_hand),
        cmocka_unit_test(test_direction_of_text),
        cmocka_unit_test(test_shaping),
        cmocka_unit_test(test_wrap_20_40_80),
        cmocka_unit_test(test_marks_stay),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_auto_mode),
        cmocka_unit_test(test_prefs),
        cmocka_unit_test(test_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
