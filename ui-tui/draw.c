/* draw.c - chapar-tui's curses drawing (draw.h): list, pane, bar, input. */
#include "ui-tui/wcurses.h" /* first: it sets feature macros */

#include "ui-tui/draw.h"

#include "node/common/i18n.h"
#include "ui-tui/bidi.h"
#include "ui-tui/wtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define LIST_W 18 /* conversation list width, when the screen has room */

enum { C_OWN = 1, C_OTHER, C_NOTICE, C_MARK, C_BAR, C_STRANGER };

void chp_draw_setup(void)
{
    if (!has_colors())
        return;
    start_color();
    use_default_colors();
    init_pair(C_OWN, COLOR_CYAN, -1);
    init_pair(C_OTHER, COLOR_MAGENTA, -1);
    init_pair(C_NOTICE, COLOR_YELLOW, -1);
    init_pair(C_MARK, COLOR_GREEN, -1);
    init_pair(C_BAR, COLOR_BLUE, -1);
    init_pair(C_STRANGER, COLOR_RED, -1);
}

void chp_draw_resize(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
        resizeterm(ws.ws_row, ws.ws_col);
    clearok(curscr, TRUE);
}

/* Draws w (n chars) at the cursor, at most maxw cells; returns cells used. */
static int put_w(const wchar_t *w, size_t n, int maxw)
{
    size_t k = 0;
    int used = 0;
    while (k < n) {
        int cw = chp_wt_cwidth(w[k]);
        if (used + cw > maxw)
            break;
        used += cw;
        k++;
    }
    if (k)
        addnwstr(w, (int)k);
    return used;
}

/* Draws UTF-8 text (sanitized) in at most maxw cells: one row, in visual
 * order and joined when chapar-tui does the BiDi (prefs.h). */
static int put_s(const chp_app *a, const char *s, int maxw)
{
    size_t n;
    wchar_t *w = chp_wt_decode(s, strlen(s), &n);
    int used = 0;
    chp_bidi_para p;
    if (w) {
        chp_wt_sanitize(w, n);
        for (size_t i = 0; i < n; i++)
            if (w[i] == L'\n')
                w[i] = L' ';
        int wide = (int)chp_wt_width(w, n) + 2; /* one row: no wrap */
        if (a->prefs.bidi == CHP_BIDI_APP && n &&
            chp_bidi_layout(w, n, 0, n, wide, CHP_BIDI_APP, &p) == 0) {
            for (size_t r = 0; r < p.nrows; r++) /* one, unless out of memory */
                used += put_w(p.rows[r].vis, p.rows[r].n, maxw - used);
            chp_bidi_para_fini(&p);
            for (int k = wide - 2 - used; k > 0 && used < maxw; k--, used++)
                addch(' '); /* the spaces at its end the layout left out */
        } else {
            used = put_w(w, n, maxw);
        }
        free(w);
    }
    return used;
}

/* ---------------------------------------------------------------- the list */

static void draw_list(const chp_app *a, int h, int lw)
{
    size_t n = chp_model_count(a->m);
    int cur = chp_model_current(a->m);
    for (int y = 0; y < h; y++) {
        move(y, 0);
        for (int x = 0; x < lw; x++)
            addch(' ');
    }
    for (size_t i = 0; i < n && (int)i < h; i++) {
        const chp_conv *c = chp_model_conv(a->m, i);
        char num[16], unread[24] = "";
        if (i < 9)
            snprintf(num, sizeof num, "%zu ", i + 1);
        else
            snprintf(num, sizeof num, "%s", i == 9 ? "0 " : "  ");
        if (c->unread)
            snprintf(unread, sizeof unread, " %u", c->unread);
        int uw = (int)strlen(unread);
        if ((int)i == cur)
            attron(A_REVERSE);
        move((int)i, 0);
        int used = put_s(a, num, lw - 1);
        used += put_s(a, c->name, lw - 1 - used - uw);
        if (c->unread) {
            attron(A_BOLD);
            used += put_s(a, unread, lw - 1 - used);
            attroff(A_BOLD);
        }
        for (; used < lw - 1; used++)
            addch(' ');
        attroff(A_REVERSE);
    }
    for (int y = 0; y < h; y++)
        mvaddwstr(y, lw - 1, L"\u2502");
}

/* ---------------------------------------------------------------- the pane */

/* One line of the pane as wide text: "sender: text mark", "-!- text" for
 * the UI's notices, "-- text" for the node's own lines in a room (a nick
 * change). *sender_n and *mark_at say where the coloured parts are. */
static wchar_t *compose(const chp_app *a, const chp_line *l, size_t *n, size_t *sender_n,
                        size_t *mark_at)
{
    /* an outgoing file whose pieces are going out shows its bar, not "queued" */
    int going = l->state == CHP_LINE_QUEUED && l->total && l->done;
    const char *mark = going                            ? ""
                       : l->state == CHP_LINE_QUEUED    ? " \u25cb"
                       : l->state == CHP_LINE_SENT      ? " \u2713"
                       : l->state == CHP_LINE_DELIVERED ? " \u2713\u2713"
                                                        : "";
    int plain = l->state == CHP_LINE_NOTICE || l->state == CHP_LINE_SYSTEM;
    const char *sender = l->state == CHP_LINE_NOTICE   ? "-!-"
                         : l->state == CHP_LINE_SYSTEM ? "--"
                                                       : l->sender;
    if (!plain && l->state != CHP_LINE_IN && !sender[0])
        sender = a->nick;
    char bar[128] = "";
    if (l->total) { /* a file: [█████░░░░░] done/total */
        size_t k = 0, full = (size_t)((uint64_t)l->done * 10 / l->total);
        k += (size_t)snprintf(bar + k, sizeof bar - k, " [");
        for (size_t i = 0; i < 10; i++)
            k += (size_t)snprintf(bar + k, sizeof bar - k, "%s", i < full ? "\u2588" : "\u2591");
        snprintf(bar + k, sizeof bar - k, "] %u/%u", l->done, l->total);
    }
    size_t need = strlen(sender) + strlen(l->text) + strlen(bar) + strlen(mark) + 4;
    char *s = malloc(need);
    if (!s)
        return NULL;
    snprintf(s, need, "%s%s%s%s%s", sender, plain ? " " : ": ", l->text, bar, mark);
    size_t sn, tn;
    wchar_t *ws = chp_wt_decode(sender, strlen(sender), &sn);
    wchar_t *wm = chp_wt_decode(mark, strlen(mark), &tn);
    wchar_t *w = chp_wt_decode(s, strlen(s), n);
    free(s);
    free(ws);
    free(wm);
    if (w)
        chp_wt_sanitize(w, *n);
    *sender_n = sn;
    *mark_at = *n - tn;
    return w;
}

/* How line l's sender and text are drawn: notices and the node's own
 * lines in the notice colour; a stranger's name in its own colour, never
 * the one contacts have, so a look-alike nick stands out. */
static void line_attrs(const chp_line *l, int *sender, int *text)
{
    *text = 0;
    if (l->state == CHP_LINE_NOTICE || l->state == CHP_LINE_SYSTEM)
        *sender = *text = COLOR_PAIR(C_NOTICE);
    else if (l->state != CHP_LINE_IN)
        *sender = COLOR_PAIR(C_OWN) | A_BOLD;
    else if (chp_sender_kind_of(l->sender) == CHP_SENDER_STRANGER)
        *sender = COLOR_PAIR(C_STRANGER);
    else
        *sender = COLOR_PAIR(C_OTHER) | A_BOLD;
}

/* Draws row r of a laid out line: its pad, then its characters coloured
 * by the part of the logical line each comes from: [0, sender_n) the
 * sender, [.., mark_at) the text, the rest the delivery mark. */
static void draw_row(const chp_bidi_row *r, size_t sender_n, size_t mark_at, const chp_line *l,
                     int maxw)
{
    int attrs[3] = {0, 0, COLOR_PAIR(C_MARK)};
    line_attrs(l, &attrs[0], &attrs[1]);
    int used = 0;
    for (; used < r->pad && used < maxw; used++)
        addch(' ');
    size_t i = 0;
    while (i < r->n && used < maxw) {
        int part = r->map[i] < sender_n ? 0 : r->map[i] < mark_at ? 1 : 2;
        size_t j = i + 1;
        while (j < r->n && (r->map[j] < sender_n ? 0 : r->map[j] < mark_at ? 1 : 2) == part)
            j++;
        attron(attrs[part]);
        used += put_w(r->vis + i, j - i, maxw - used);
        attroff(attrs[part]);
        i = j;
    }
}

/* The time in front of a line's first row: "HH:MM " in the calendar's
 * digits (prefs.h). */
static void draw_time(const chp_app *a, int64_t t)
{
    char ts[64];
    chp_datefmt_format(&a->prefs.date, t, CHP_DATE_TIME, ts, sizeof ts);
    attron(A_DIM);
    put_s(a, ts, 5);
    addch(' ');
    attroff(A_DIM);
}

/* Draws line l's rows bottom up from row *y (none above top), the time in
 * front of its first; the *skip bottom rows are scrolled away. */
static void draw_line(const chp_app *a, const chp_line *l, int x0, int top, int tw, int *y,
                      size_t *skip)
{
    size_t n, sn, ma;
    chp_bidi_para p;
    wchar_t *w = compose(a, l, &n, &sn, &ma);
    if (!w)
        return;
    int plain = l->state == CHP_LINE_NOTICE || l->state == CHP_LINE_SYSTEM;
    /* the direction is the text's, not the sender's name in front of it */
    size_t text_at = plain ? sn + 1 : sn + 2;
    if (chp_bidi_layout(w, n, text_at < ma ? text_at : ma, ma, tw, a->prefs.bidi, &p) != 0) {
        free(w);
        return;
    }
    for (size_t r = p.nrows; r-- > 0 && *y >= top;) {
        if (*skip) {
            (*skip)--;
            continue;
        }
        move(*y, x0);
        if (r == 0)
            draw_time(a, l->time);
        else
            addstr("      ");
        draw_row(&p.rows[r], sn, ma, l, tw);
        (*y)--;
    }
    chp_bidi_para_fini(&p);
    free(w);
}

/* Between lines of two days, a row naming the later day (the calendar
 * and digits of prefs.h), unless scrolled away. */
static void draw_day(const chp_app *a, int64_t t, int x0, int pw, int *y, size_t *skip)
{
    if (*skip) {
        (*skip)--;
        return;
    }
    char day[96], row[128];
    chp_datefmt_format(&a->prefs.date, t, CHP_DATE_LONG, day, sizeof day);
    snprintf(row, sizeof row, "\u2500\u2500 %s \u2500\u2500", day);
    move(*y, x0);
    attron(A_DIM);
    put_s(a, row, pw);
    attroff(A_DIM);
    (*y)--;
}

/* The local day of t, to tell two lines' days apart. */
static long day_number(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm))
        return 0;
    return (long)(tm.tm_year + 1900) * 400 + tm.tm_yday;
}

/* The title: which room this is, and (fingerprint) which of the rooms of
 * that name, so a mistyped passphrase shows. */
static void draw_title(const chp_app *a, int cur, int x0, int pw)
{
    char title[512];
    chp_model_title(a->m, (size_t)cur, title, sizeof title);
    move(0, x0);
    attron(A_BOLD | A_UNDERLINE);
    put_s(a, title, pw - 1);
    attroff(A_BOLD | A_UNDERLINE);
}

static void draw_pane(chp_app *a, int x0, int h, int pw)
{
    for (int y = 0; y < h; y++) {
        move(y, x0);
        clrtoeol();
    }
    int cur = chp_model_current(a->m);
    const chp_line *lines;
    size_t nlines;
    chp_conv *conv = NULL; /* its scroll is clamped here */
    if (cur >= 0) {
        conv = (chp_conv *)chp_model_conv(a->m, (size_t)cur);
        lines = conv->lines;
        nlines = conv->nlines;
    } else {
        lines = chp_model_orphans(a->m, &nlines);
    }
    int tw = pw - 6; /* "HH:MM " in front */
    if (tw < 4)
        return;
    int top = 0;
    if (conv && h >= 4) {
        draw_title(a, cur, x0, pw);
        top = 1;
    }
    size_t skip = conv ? conv->scroll : 0;
    int y = h - 1;
    for (size_t i = nlines; i-- > 0 && y >= top;) {
        draw_line(a, &lines[i], x0, top, tw, &y, &skip);
        if (i > 0 && y >= top && day_number(lines[i - 1].time) != day_number(lines[i].time))
            draw_day(a, lines[i].time, x0, pw, &y, &skip);
    }
    /* Scrolled further back than there is: pull the view down next time. */
    if (conv && y >= top && conv->scroll > 0) {
        size_t over = (size_t)(y - top) + 1;
        conv->scroll = conv->scroll > over ? conv->scroll - over : 0;
        a->dirty = 1;
    }
    if (conv && conv->scroll) {
        attron(A_REVERSE);
        const char *more = _(" -- more -- ");
        size_t mn;
        wchar_t *mw = chp_wt_decode(more, strlen(more), &mn);
        int mcells = mw ? (int)chp_wt_width(mw, mn) : 12;
        free(mw);
        move(top, x0 + (pw > mcells ? pw - mcells : 0));
        put_s(a, more, pw);
        attroff(A_REVERSE);
    }
}

/* ---------------------------------------------------------------- bar, input */

static void draw_bar(const chp_app *a, int y, int W)
{
    char bar[512];
    chp_app_status_bar(a, bar, sizeof bar);
    attron(COLOR_PAIR(C_BAR) | A_REVERSE);
    move(y, 0);
    int used = put_s(a, bar, W);
    for (; used < W; used++)
        addch(' ');
    attroff(COLOR_PAIR(C_BAR) | A_REVERSE);
}

/* What is typed (w, n characters from the first shown; the cursor
 * before character cur), at most maxw cells: in visual order in app
 * mode, as it is otherwise. Returns the cursor's column (col: where it is
 * in logical order). */
static int draw_typed(const chp_app *a, const wchar_t *text, size_t n, size_t cur, int maxw,
                      int col)
{
    wchar_t *w = malloc((n + 1) * sizeof *w);
    size_t k = 0;
    int used = 0;
    if (!w)
        return col;
    memcpy(w, text, n * sizeof *w);
    chp_wt_sanitize(w, n);
    while (k < n && used + chp_wt_cwidth(w[k]) <= maxw - 1) /* a cell for the cursor */
        used += chp_wt_cwidth(w[k++]);
    chp_bidi_para p;
    if (a->prefs.bidi == CHP_BIDI_APP && k &&
        chp_bidi_layout(w, k, 0, k, maxw, CHP_BIDI_APP, &p) == 0) {
        if (p.nrows == 1) { /* it fits: one row */
            p.rows[0].pad = p.rtl ? maxw - 1 - p.rows[0].cells : 0;
            for (int i = 0; i < p.rows[0].pad; i++)
                addch(' ');
            put_w(p.rows[0].vis, p.rows[0].n, maxw - p.rows[0].pad);
            col = chp_bidi_cursor_col(&p, cur, k);
        } else {
            put_w(w, k, maxw);
        }
        chp_bidi_para_fini(&p);
    } else {
        put_w(w, k, maxw);
    }
    free(w);
    return col;
}

/* The prompt and the input line (stars while a passphrase is typed),
 * with the cursor where the input's cursor is. */
static void draw_input(const chp_app *a, int y, int W)
{
    char pb[300];
    const char *prompt = chp_app_prompt(a, pb, sizeof pb);
    move(y, 0);
    clrtoeol();
    attron(A_BOLD);
    int pw = put_s(a, prompt, W / 2);
    attroff(A_BOLD);
    size_t first;
    int col;
    chp_input_view(a->in, W - pw, &first, &col);
    const wchar_t *text = chp_input_text(a->in);
    size_t len = chp_input_len(a->in);
    if (chp_input_secret(a->in)) {
        for (size_t i = first; i < len && pw + (int)(i - first) < W - 1; i++)
            addch('*');
        col = (int)(chp_input_cursor(a->in) - first);
    } else {
        col =
            draw_typed(a, text + first, len - first, chp_input_cursor(a->in) - first, W - pw, col);
    }
    move(y, pw + col < W ? pw + col : W - 1);
}

void chp_draw(chp_app *a)
{
    int H = LINES, W = COLS;
    if (H < 3 || W < 10) {
        erase();
        mvaddstr(0, 0, _("too small"));
        refresh();
        return;
    }
    int lw = W >= 60 ? LIST_W : 0, body = H - 2;
    if (lw)
        draw_list(a, body, lw);
    draw_pane(a, lw, body, W - lw);
    draw_bar(a, H - 2, W);
    draw_input(a, H - 1, W);
    refresh();
}
