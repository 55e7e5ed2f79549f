/* wtext.c - wide-character text helpers (wtext.h). */
#define _XOPEN_SOURCE 700 /* wcwidth */
#include "ui-tui/wtext.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

wchar_t *chp_wt_decode(const char *s, size_t len, size_t *n)
{
    wchar_t *w = malloc((len + 1) * sizeof *w);
    size_t k = 0, i = 0;
    mbstate_t st;
    if (!w)
        return NULL;
    memset(&st, 0, sizeof st);
    while (i < len) {
        wchar_t c;
        size_t r = mbrtowc(&c, s + i, len - i, &st);
        if (r == (size_t)-1 || r == (size_t)-2) {
            /* one bad byte becomes one replacement character */
            c = 0xFFFD;
            r = 1;
            memset(&st, 0, sizeof st);
        } else if (r == 0) {
            c = 0xFFFD; /* an embedded NUL: it would end the string early */
            r = 1;
        }
        w[k++] = c;
        i += r;
    }
    w[k] = 0;
    if (n)
        *n = k;
    return w;
}

char *chp_wt_encode(const wchar_t *w, size_t n, size_t *len)
{
    char *s = malloc(n * MB_LEN_MAX + 1);
    size_t k = 0;
    mbstate_t st;
    if (!s)
        return NULL;
    memset(&st, 0, sizeof st);
    for (size_t i = 0; i < n; i++) {
        size_t r = wcrtomb(s + k, w[i], &st);
        if (r == (size_t)-1) {
            memset(&st, 0, sizeof st);
            continue;
        }
        k += r;
    }
    s[k] = 0;
    if (len)
        *len = k;
    return s;
}

static int is_bidi_control(wchar_t c)
{
    return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

void chp_wt_sanitize(wchar_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (w[i] == L'\n')
            continue; /* chp_wt_wrap breaks rows on it */
        if (w[i] == L'\t')
            w[i] = L' ';
        else if (w[i] < 0x20 || (w[i] >= 0x7F && w[i] < 0xA0) || is_bidi_control(w[i]) ||
                 (w[i] >= 0xD800 && w[i] <= 0xDFFF) || w[i] > 0x10FFFF)
            w[i] = 0xFFFD;
    }
}

int chp_wt_cwidth(wchar_t c)
{
    int cw = wcwidth(c);
    if (cw < 0)
        return 1;
    return cw > 2 ? 2 : cw;
}

size_t chp_wt_width(const wchar_t *w, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (size_t)chp_wt_cwidth(w[i]);
    return total;
}

size_t chp_wt_row_end(const wchar_t *w, size_t start, size_t next)
{
    size_t e = next;
    while (e > start && (w[e - 1] == L' ' || w[e - 1] == L'\n'))
        e--;
    return e;
}

size_t chp_wt_wrap(const wchar_t *w, size_t n, int width, size_t *starts, size_t cap)
{
    size_t rows = 0, i = 0;
    if (width < 2)
        width = 2;
    for (;;) {
        if (rows < cap)
            starts[rows] = i;
        rows++;
        size_t j = i, space = 0;
        int used = 0, have_space = 0;
        while (j < n && w[j] != L'\n') {
            int cw = chp_wt_cwidth(w[j]);
            if (used + cw > width)
                break;
            if (w[j] == L' ') {
                space = j;
                have_space = 1;
            }
            used += cw;
            j++;
        }
        if (j >= n)
            break;
        size_t next;
        if (w[j] == L'\n') {
            next = j + 1;
        } else if (w[j] == L' ') {
            next = j; /* the overflow is a space: break right there */
        } else if (have_space && space > i) {
            next = space + 1;
        } else {
            next = j > i ? j : i + 1; /* one word wider than the row */
            while (next < n && chp_wt_cwidth(w[next]) == 0 && w[next] != L'\n')
                next++;
        }
        if (w[j] != L'\n')
            while (next < n && w[next] == L' ')
                next++;
        if (next >= n)
            break;
        i = next;
    }
    return rows;
}
