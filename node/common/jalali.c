/* jalali.c - Jalali <-> Gregorian by day numbers (Julian Day Numbers),
 * after Kazimierz Borkowski's algorithm. All divisions truncate toward
 * zero, as the algorithm is stated. */
#include "node/common/jalali.h"

#include <string.h>

/* Jalali years where the leap-year pattern of the 33-year cycles breaks. */
static const int breaks[] = {-61,  9,    38,   199,  426,  686,  756,  818,  1111, 1181,
                             1210, 1635, 2060, 2097, 2192, 2262, 2324, 2394, 2456, 3178};
#define NBREAKS ((int)(sizeof breaks / sizeof breaks[0]))

struct jal_year {
    int leap;  /* years since the last leap year, 0 = this one is leap */
    int gy;    /* the Gregorian year in which it starts */
    int march; /* the day of March on which 1 Farvardin falls */
};

static int jal_cal(int jy, struct jal_year *out)
{
    if (jy < breaks[0] || jy >= breaks[NBREAKS - 1])
        return -1;
    int gy = jy + 621, leap_j = -14, jp = breaks[0], jump = 0;
    for (int i = 1; i < NBREAKS; i++) {
        int jm = breaks[i];
        jump = jm - jp;
        if (jy < jm)
            break;
        leap_j += jump / 33 * 8 + jump % 33 / 4;
        jp = jm;
    }
    int n = jy - jp;
    leap_j += n / 33 * 8 + (n % 33 + 3) / 4;
    if (jump % 33 == 4 && jump - n == 4)
        leap_j++;
    int leap_g = gy / 4 - (gy / 100 + 1) * 3 / 4 - 150;
    out->march = 20 + leap_j - leap_g;
    if (jump - n < 6)
        n = n - jump + (jump + 4) / 33 * 33;
    int leap = ((n + 1) % 33 - 1) % 4;
    out->leap = leap == -1 ? 4 : leap;
    out->gy = gy;
    return 0;
}

static long g2d(int gy, int gm, int gd)
{
    long d = ((long)gy + (gm - 8) / 6 + 100100) * 1461 / 4 + (153 * ((gm + 9) % 12) + 2) / 5 + gd -
             34840408;
    return d - ((long)gy + 100100 + (gm - 8) / 6) / 100 * 3 / 4 + 752;
}

static void d2g(long jdn, int *gy, int *gm, int *gd)
{
    long j = 4 * jdn + 139361631;
    j += (4 * jdn + 183187720) / 146097 * 3 / 4 * 4 - 3908;
    long i = j % 1461 / 4 * 5 + 308;
    *gd = (int)(i % 153 / 5 + 1);
    *gm = (int)(i / 153 % 12 + 1);
    *gy = (int)(j / 1461 - 100100 + (8 - *gm) / 6);
}

static int gregorian_ok(int gy, int gm, int gd)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (gy < 560 || gy > 3797 || gm < 1 || gm > 12 || gd < 1)
        return 0;
    int leap = (gy % 4 == 0 && gy % 100 != 0) || gy % 400 == 0;
    return gd <= days[gm - 1] + (gm == 2 && leap);
}

int chp_jalali_leap(int jy)
{
    struct jal_year y;
    return jal_cal(jy, &y) ? -1 : y.leap == 0;
}

int chp_jalali_to_gregorian(int jy, int jm, int jd, int *gy, int *gm, int *gd)
{
    struct jal_year y;
    if (jal_cal(jy, &y) || jm < 1 || jm > 12 || jd < 1 ||
        jd > (jm <= 6    ? 31
              : jm <= 11 ? 30
                         : 29 + (y.leap == 0)))
        return -1;
    long jdn = g2d(y.gy, 3, y.march) + (jm - 1) * 31 - jm / 7 * (jm - 7) + jd - 1;
    d2g(jdn, gy, gm, gd);
    return 0;
}

int chp_jalali_from_gregorian(int gy, int gm, int gd, int *jy, int *jm, int *jd)
{
    if (!gregorian_ok(gy, gm, gd))
        return -1;
    long jdn = g2d(gy, gm, gd);
    struct jal_year y;
    int year = gy - 621;
    if (jal_cal(year, &y))
        return -1;
    long k = jdn - g2d(gy, 3, y.march); /* days since 1 Farvardin of year */
    if (k >= 0 && k <= 185) {
        *jy = year;
        *jm = (int)(1 + k / 31);
        *jd = (int)(k % 31 + 1);
        return 0;
    }
    if (k >= 0) {
        k -= 186;
    } else { /* before 1 Farvardin: the end of the year before */
        year--;
        k += 179 + (y.leap == 1);
        if (year < breaks[0])
            return -1;
    }
    *jy = year;
    *jm = (int)(7 + k / 30);
    *jd = (int)(k % 30 + 1);
    return 0;
}

int chp_fa_digits(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s; s++) {
        size_t need = *s >= '0' && *s <= '9' ? 2 : 1;
        if (o + need + 1 > cap) {
            if (cap)
                out[0] = '\0';
            return -1;
        }
        if (need == 2) { /* U+06F0 + d = 0xDB 0xB0+d */
            out[o++] = (char)0xDB;
            out[o++] = (char)(0xB0 + (*s - '0'));
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
    return (int)o;
}
