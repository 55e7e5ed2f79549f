/* prefs.c - see prefs.h. */
#include "ui-tui/prefs.h"

#include <stdio.h>
#include <string.h>

void chp_prefs_init(chp_prefs *p, chp_bidi_mode bidi, const char *(*env)(const char *name))
{
    p->env = env;
    p->bidi_set = bidi;
    p->bidi = chp_bidi_resolve(bidi, env);
    chp_datefmt_default(&p->date, env);
}

int chp_prefs_set(chp_prefs *p, const char *name, const char *value)
{
    if (!name || !value)
        return -1;
    if (!strcmp(name, "bidi")) {
        int m = chp_bidi_mode_parse(value);
        if (m < 0)
            return -1;
        p->bidi_set = (chp_bidi_mode)m;
        p->bidi = chp_bidi_resolve(p->bidi_set, p->env);
        return 0;
    }
    if (!strcmp(name, "calendar"))
        return chp_datefmt_set_calendar(&p->date, value);
    if (!strcmp(name, "digits"))
        return chp_datefmt_set_digits(&p->date, value);
    return -1;
}

void chp_prefs_describe(const chp_prefs *p, char *buf, size_t cap)
{
    char how[32] = "";
    if (p->bidi_set == CHP_BIDI_AUTO)
        snprintf(how, sizeof how, " (%s)", chp_bidi_mode_name(p->bidi));
    snprintf(buf, cap, "bidi %s%s, calendar %s, digits %s", chp_bidi_mode_name(p->bidi_set), how,
             p->date.jalali ? "jalali" : "gregorian", p->date.persian ? "persian" : "latin");
}
