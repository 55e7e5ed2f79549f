/* prefs.h - how chapar-tui shows text and time, set by --bidi and /set:
 * right-to-left display (bidi.h), the calendar and the digits
 * (node/common/datefmt.h). Curses-free. */
#ifndef CHP_PREFS_H
#define CHP_PREFS_H

#include "node/common/datefmt.h"
#include "ui-tui/bidi.h"

#include <stddef.h>

typedef struct chp_prefs {
    chp_bidi_mode bidi_set;               /* what was asked: auto, app or terminal */
    chp_bidi_mode bidi;                   /* what is done: app or terminal (auto resolved) */
    chp_datefmt date;                     /* calendar and digits */
    const char *(*env)(const char *name); /* getenv, or a test's */
} chp_prefs;

/* Defaults from the environment (env NULL: getenv): bidi as asked (auto
 * resolved by chp_bidi_resolve), the calendar and digits of the locale
 * (chp_datefmt_default). env must outlive p. */
void chp_prefs_init(chp_prefs *p, chp_bidi_mode bidi, const char *(*env)(const char *name));

/* /set NAME VALUE: bidi auto|app|terminal, calendar gregorian|jalali,
 * digits latin|persian. 0, or -1 with nothing changed. */
int chp_prefs_set(chp_prefs *p, const char *name, const char *value);

/* The settings in words, for /set alone: "bidi auto (app), calendar
 * jalali, digits persian". */
void chp_prefs_describe(const chp_prefs *p, char *buf, size_t cap);

#endif
