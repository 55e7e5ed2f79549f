/* jalali.h - the Solar Hijri (Jalali) calendar of Iran and Afghanistan,
 * and Persian digits, for showing dates to Persian readers (issue 21).
 *
 * The arithmetic is Kazimierz Borkowski's: the leap years follow the
 * 2820-year grand cycle pinned to the observed break years, valid for
 * Jalali years -61 to 3177 (Gregorian 560 to 3798). */
#ifndef CHP_JALALI_H
#define CHP_JALALI_H

#include <stddef.h>

/* A Gregorian date to the Jalali one. 0, or -1 for a date out of range
 * or one that does not exist (30 February). */
int chp_jalali_from_gregorian(int gy, int gm, int gd, int *jy, int *jm, int *jd);
/* A Jalali date to the Gregorian one; 0 or -1 as above (31 Mehr, 30
 * Esfand of a common year). */
int chp_jalali_to_gregorian(int jy, int jm, int jd, int *gy, int *gm, int *gd);
/* 1 if Jalali year jy is a leap year (Esfand has 30 days), 0 if not, -1
 * out of range. */
int chp_jalali_leap(int jy);
/* Copies the NUL-terminated s to out (cap bytes) with the ASCII digits
 * 0-9 replaced by the Persian ones (U+06F0..U+06F9, two bytes each in
 * UTF-8). The bytes written without the NUL, or -1 when cap is too small
 * (out is then the empty string). */
int chp_fa_digits(const char *s, char *out, size_t cap);

#endif
