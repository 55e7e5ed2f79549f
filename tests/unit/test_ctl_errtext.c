/* test_ctl_errtext.c - chp_ctl_error_text (node/client/ctl_errtext.c):
 * chapard's English error lines in Persian through the build tree's
 * catalogue (po/fa.po), and byte for byte as they came under C. The
 * Persian is taken with LANGUAGE=fa under C.UTF-8, which needs no fa_IR
 * locale on the machine. */
#include "node/client/ctl_errtext.h"
#include "node/common/i18n.h"

#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char out[1024];

static const char *tr(const char *english)
{
    return chp_ctl_error_text(english, out, sizeof out);
}

static int persian(void **state)
{
    (void)state;
    setenv("LANGUAGE", "fa", 1);
    if (!setlocale(LC_MESSAGES, "C.UTF-8"))
        return -1;
    bindtextdomain(CHP_TEXTDOMAIN, CHP_TEST_LOCALEDIR);
    bind_textdomain_codeset(CHP_TEXTDOMAIN, "UTF-8");
    textdomain(CHP_TEXTDOMAIN);
    return 0;
}

/* A whole line that is a msgid. */
static void test_exact(void **state)
{
    (void)state;
    assert_string_equal(tr("no such peer"), "چنین همتایی نیست");
    assert_string_equal(tr("unknown command or wrong arguments\nmore"),
                        "فرمان ناشناخته یا آرگومان‌های نادرست");
}

/* A printf-made line: the fixed part translated, the details kept. */
static void test_format(void **state)
{
    (void)state;
    assert_string_equal(tr("unknown contact 'bob'"), "مخاطب ناشناخته 'bob'");
    assert_string_equal(tr("cannot queue the message: store full: try later"),
                        "گذاشتن پیام در صف ممکن نشد: store full: try later");
    assert_string_equal(tr("message too long: 70000 bytes (at most 65536)"),
                        "پیام بیش از حد بلند است: 70000 بایت (حداکثر 65536)");
    /* a %u wants digits: a word there is no match, so the line stays */
    assert_string_equal(tr("message too long: many bytes (at most 65536)"),
                        "message too long: many bytes (at most 65536)");
}

/* The longest format that matches wins over a shorter one that also does. */
static void test_longest(void **state)
{
    (void)state;
    assert_string_equal(tr("already in #lan"), "از پیش در #lan هستید");
    assert_string_equal(
        tr("already in #lan as a public room (fingerprint aaaa), not a passphrase room (this "
           "passphrase gives fingerprint bbbb); leave it first"),
        "از پیش در #lan هستید، به‌عنوان اتاق عمومی (اثر انگشت aaaa)، نه اتاق با عبارت "
        "عبور "
        "(این عبارت عبور اثر انگشت bbbb می‌دهد)؛ اول از آن بیرون "
        "بیایید");
}

/* What is not in the catalogue comes out as it came. */
static void test_unknown(void **state)
{
    (void)state;
    assert_string_equal(tr("something new: x"), "something new: x");
    assert_string_equal(tr(""), "");
    assert_string_equal(tr("%s %d %%"), "%s %d %%");
}

/* A short buffer cuts at a character boundary, never inside a letter. */
static void test_cut(void **state)
{
    (void)state;
    char small[6]; /* "مخ" is 4 bytes; a third letter would need 6 */
    assert_string_equal(chp_ctl_error_text("unknown contact 'bob'", small, sizeof small), "مخ");
    char one[1];
    assert_string_equal(chp_ctl_error_text("no such peer", one, sizeof one), "");
}

/* Under C every byte is the daemon's. */
static void test_c_locale(void **state)
{
    (void)state;
    unsetenv("LANGUAGE");
    assert_non_null(setlocale(LC_MESSAGES, "C"));
    const char *lines[] = {"no such peer", "unknown contact 'bob'", "already in #lan",
                           "message too long: 70000 bytes (at most 65536)"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        assert_string_equal(tr(lines[i]), lines[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),   cmocka_unit_test(test_format),
        cmocka_unit_test(test_longest), cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_cut),     cmocka_unit_test(test_c_locale),
    };
    return cmocka_run_group_tests(tests, persian, NULL);
}
