/* datefmt.c - see datefmt.h. */
#include "node/common/datefmt.h"

#include "node/common/i18n.h"
#include "node/common/jalali.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *real_env(const char *name)
{
    return getenv(name);
}

void chp_datefmt_default(chp_datefmt *f, const char *(*env)(const char *name))
{
    static const char *const vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};
    if (!env)
        env = real_env;
    const char *lang = NULL;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0] && !lang; i++) {
        const char *v = env(vars[i]);
        if (v && *v)
            lang = v;
    }
    int fa = lang && !strncmp(lang, "fa", 2) &&
             (lang[2] == '\0' || lang[2] == '_' || lang[2] == '.' || lang[2] == '@');
    f->jalali = f->persian = fa;
    /* the variables win when they name a choice; unset or unknown leaves
     * the locale's */
    (void)chp_datefmt_set_calendar(f, env("CHAPAR_CALENDAR"));
    (void)chp_datefmt_set_digits(f, env("CHAPAR_DIGITS"));
}

/* *field = 0 for word no, 1 for word yes; 0, or -1 (unchanged) for another. */
static int set_word(int *field, const char *word, const char *no, const char *yes)
{
    if (!word || (strcmp(word, no) && strcmp(word, yes)))
        return -1;
    *field = !strcmp(word, yes);
    return 0;
}

int chp_datefmt_set_calendar(chp_datefmt *f, const char *word)
{
    return set_word(&f->jalali, word, "gregorian", "jalali");
}

int chp_datefmt_set_digits(chp_datefmt *f, const char *word)
{
    return set_word(&f->persian, word, "latin", "persian");
}

/* The Jalali months, translated where they are shown. */
static const char *const jmonths[12] = {
    N_("Farvardin"), N_("Ordibehesht"), N_("Khordad"), N_("Tir"), N_("Mordad"), N_("Shahrivar"),
    N_("Mehr"),      N_("Aban"),        N_("Azar"),    N_("Dey"), N_("Bahman"), N_("Esfand"),
};

/* The day of tm in f's calendar, as what says (no time). */
static int day_of(const chp_datefmt *f, const struct tm *tm, chp_date_what what, char *buf,
                  size_t cap)
{
    int y = tm->tm_year + 1900, m = tm->tm_mon + 1, d = tm->tm_mday;
    if (f->jalali && chp_jalali_from_gregorian(y, m, d, &y, &m, &d) != 0)
        return -1;
    if (what == CHP_DATE_LONG && f->jalali)
        return snprintf(buf, cap, "%d %s %d", d, _(jmonths[m - 1]), y);
    return snprintf(buf, cap, f->jalali ? "%04d/%02d/%02d" : "%04d-%02d-%02d", y, m, d);
}

int chp_datefmt_format(const chp_datefmt *f, int64_t t, chp_date_what what, char *buf, size_t cap)
{
    char tmp[128], day[96] = "";
    time_t tt = (time_t)t;
    struct tm tm;
    int n = -1;
    if (localtime_r(&tt, &tm)) {
        n = 0;
        if (what != CHP_DATE_TIME)
            n = day_of(f, &tm, what, day, sizeof day);
        if (n >= 0 && (size_t)n < sizeof day) {
            if (what == CHP_DATE_TIME)
                n = snprintf(tmp, sizeof tmp, "%02d:%02d", tm.tm_hour, tm.tm_min);
            else if (what == CHP_DATE_FULL)
                n = snprintf(tmp, sizeof tmp, "%s %02d:%02d", day, tm.tm_hour, tm.tm_min);
            else
                n = snprintf(tmp, sizeof tmp, "%s", day);
        } else {
            n = -1;
        }
    }
    if (n >= 0 && (size_t)n < sizeof tmp)
        n = f->persian ? chp_fa_digits(tmp, buf, cap)
                       : ((size_t)n < cap ? (memcpy(buf, tmp, (size_t)n + 1), n) : -1);
    else
        n = -1;
    if (n < 0 && cap >= 2)
        memcpy(buf, "?", 2);
    return n;
}
