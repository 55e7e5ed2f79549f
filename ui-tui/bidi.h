/* bidi.h - right-to-left text for the TUI, without curses: a logical line
 * (the order it is typed and sent in) is wrapped into rows of a width,
 * and each row is put in visual order (the order of the cells on the
 * screen) by the Unicode Bidirectional Algorithm of GNU FriBidi, with
 * Arabic-script letters joined (presentation forms) and brackets mirrored,
 * for terminals that do none of this themselves (xterm, the Linux console,
 * tmux). A terminal that does BiDi itself (VTE, Konsole, mlterm) gets the
 * logical order untouched: reordering twice would undo it. */
#ifndef CHP_BIDI_H
#define CHP_BIDI_H

#include <stddef.h>
#include <wchar.h>

typedef enum chp_bidi_mode {
    CHP_BIDI_AUTO,     /* a setting only: chp_bidi_resolve picks one of the two below */
    CHP_BIDI_APP,      /* Chapar reorders, shapes and right-aligns */
    CHP_BIDI_TERMINAL, /* logical order: the terminal does BiDi */
    CHP_BIDI_REORDER,  /* APP without the joining of letters: FriBidi's own test
                        * data is of this; not a setting (chp_bidi_mode_parse) */
} chp_bidi_mode;

/* "auto", "app" or "terminal" to the mode; -1 for anything else. */
int chp_bidi_mode_parse(const char *s);
/* The mode's name ("auto", "app", "terminal", "reorder"). */
const char *chp_bidi_mode_name(chp_bidi_mode m);
/* AUTO to what the environment says of the terminal (getenv-like env;
 * NULL: getenv): TERMINAL under VTE (VTE_VERSION), Konsole
 * (KONSOLE_VERSION) or mlterm (MLTERM, or TERM starting "mlterm"), else
 * APP. Other modes stay as they are. */
chp_bidi_mode chp_bidi_resolve(chp_bidi_mode m, const char *(*env)(const char *name));

/* One row of a laid out paragraph. */
typedef struct chp_bidi_row {
    wchar_t *vis; /* the row's characters left to right on the screen (owned) */
    size_t *map;  /* vis[i] is the paragraph's logical character map[i] (owned) */
    size_t n;     /* characters in vis */
    int cells;    /* terminal cells they take */
    int pad;      /* blank cells to put before them: right alignment (app mode) */
} chp_bidi_row;

typedef struct chp_bidi_para {
    chp_bidi_row *rows;
    size_t nrows;
    int rtl; /* the paragraph is right-to-left: its first strong letter is */
} chp_bidi_para;

/* Lays out the logical paragraph w (n characters, sanitized: chp_wt_sanitize)
 * in rows of at most width cells (width >= 2): wrapped first, at spaces
 * where it can, never between a character and its combining marks
 * (chp_wt_wrap), then each row on its own in visual order. The direction
 * is that of the first strong letter in w[dir_from, dir_to) (a message's
 * text, not its sender's name in front of it), left-to-right when there
 * is none. mode APP: rows reordered, shaped, mirrored, and right-aligned
 * in width when the paragraph is right-to-left (REORDER: the same without
 * joining the letters; AUTO counts as APP); TERMINAL: rows stay in
 * logical order, unpadded (map says so too). *out is owned by the caller
 * (chp_bidi_para_fini). 0, or -1 when out of memory (*out then empty). */
int chp_bidi_layout(const wchar_t *w, size_t n, size_t dir_from, size_t dir_to, int width,
                    chp_bidi_mode mode, chp_bidi_para *out);
/* Frees the rows; accepts an empty or zeroed paragraph. */
void chp_bidi_para_fini(chp_bidi_para *p);

/* The screen column (cells from the row's left edge, its pad included)
 * where the cursor shows when it stands before logical character cur of
 * the one-row paragraph p of n characters; cur == n is the end, which in
 * right-to-left text is left of the last letter (0 at the least). */
int chp_bidi_cursor_col(const chp_bidi_para *p, size_t cur, size_t n);

#endif
