/* datefmt.h - times and dates for people to read (never for TSV, logs or
 * the control API): the Gregorian or the Solar Hijri (Jalali) calendar,
 * Latin or Persian digits, both Persian by default under a Persian locale
 * (issue 21). */
#ifndef CHP_DATEFMT_H
#define CHP_DATEFMT_H

#include <stddef.h>
#include <stdint.h>

typedef struct chp_datefmt {
    int jalali;  /* the Solar Hijri calendar, else the Gregorian one */
    int persian; /* Persian digits (U+06F0..06F9), else 0-9 */
} chp_datefmt;

/* What chp_datefmt_format writes. */
typedef enum chp_date_what {
    CHP_DATE_TIME, /* "14:05" */
    CHP_DATE_DAY,  /* "2026-12-02", Jalali "1405/09/11" */
    CHP_DATE_FULL, /* the day and the time: "2026-12-02 14:05" */
    CHP_DATE_LONG, /* the day in words: "2026-12-02", Jalali "11 Azar 1405" (month translated) */
} chp_date_what;

/* The defaults: Jalali and Persian digits when the language of messages
 * is Persian (the first set of LC_ALL, LC_MESSAGES, LANG starts "fa"),
 * else Gregorian and Latin; CHAPAR_CALENDAR (gregorian, jalali) and
 * CHAPAR_DIGITS (latin, persian) override them. env: a getenv (NULL:
 * getenv itself). */
void chp_datefmt_default(chp_datefmt *f, const char *(*env)(const char *name));

/* Sets the calendar from "gregorian" or "jalali", the digits from "latin"
 * or "persian"; 0, or -1 (f unchanged) for another word. */
int chp_datefmt_set_calendar(chp_datefmt *f, const char *word);
int chp_datefmt_set_digits(chp_datefmt *f, const char *word);

/* Unix time t in the local time zone, as what says, into buf (cap bytes,
 * NUL-terminated). The bytes written, or -1 when cap is too small or t
 * is outside the calendar (buf is then "?"). */
int chp_datefmt_format(const chp_datefmt *f, int64_t t, chp_date_what what, char *buf, size_t cap);

#endif
