/* wtext.h - wide-character text helpers of the TUI: UTF-8 <-> wchar_t,
 * terminal cell widths and word wrapping. Curses-free; the process locale
 * must be a UTF-8 one (chapar-tui and the tests make sure of it). */
#ifndef CHP_WTEXT_H
#define CHP_WTEXT_H

#include "proto/err.h"

#include <stddef.h>
#include <wchar.h>

/* Decodes len bytes of UTF-8 into a new NUL-terminated wide string (the
 * caller frees it). Invalid or truncated sequences become U+FFFD, so any
 * bytes decode. *n (may be NULL) gets the number of wide characters.
 * NULL only when out of memory. */
wchar_t *chp_wt_decode(const char *s, size_t len, size_t *n);

/* Encodes n wide characters as a new NUL-terminated UTF-8 string (the
 * caller frees it); characters that cannot be encoded are skipped. *len
 * (may be NULL) gets its length in bytes. NULL only when out of memory. */
char *chp_wt_encode(const wchar_t *w, size_t n, size_t *len);

/* Replaces what must never reach the terminal: control characters, and
 * the bidi embedding/override/isolate controls that let a sender make text
 * display in another order than it reads (U+202A..202E, U+2066..2069).
 * Tabs become a space; the rest become U+FFFD. In place. */
void chp_wt_sanitize(wchar_t *w, size_t n);

/* Cells c occupies: 0 for combining marks and zero-width joiners, 2 for
 * wide CJK, 1 for the rest (also for unprintable characters, which
 * chp_wt_sanitize has replaced before anything is drawn). */
int chp_wt_cwidth(wchar_t c);

/* Cells of the first n characters of w. */
size_t chp_wt_width(const wchar_t *w, size_t n);

/* Breaks w (n characters) into rows of at most width cells (width >= 2),
 * at spaces where it can, inside a word where it must, never between a
 * character and its zero-width marks. starts[i] gets the index where row i
 * begins (the spaces a row ends on are skipped); returns the number of
 * rows (at least 1), of which at most cap are stored. */
size_t chp_wt_wrap(const wchar_t *w, size_t n, int width, size_t *starts, size_t cap);

/* The index where the row starting at start ends (exclusive), given the
 * next row's start (or n) - trailing spaces excluded. */
size_t chp_wt_row_end(const wchar_t *w, size_t start, size_t next);

#endif
