/* wcurses.h - <curses.h> with its wide-character API (get_wch, addnwstr),
 * whatever feature macros ncursesw's pkg-config flags bring (they bring
 * _DEFAULT_SOURCE and _XOPEN_SOURCE). Include it before anything else:
 * the macros must come before the first system header. */
#ifndef CHP_WCURSES_H
#define CHP_WCURSES_H

#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#define NCURSES_WIDECHAR 1
#include <curses.h>

#endif
