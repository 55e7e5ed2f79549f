/* bidi.c - wrapping, reordering and shaping of right-to-left text (bidi.h). */
#include "ui-tui/bidi.h"

#include "ui-tui/wtext.h"

#include <fribidi.h>
#include <stdlib.h>
#include <string.h>

int chp_bidi_mode_parse(const char *s)
{
    static const char *const names[] = {"auto", "app", "terminal"};
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, names[i]))
            return i;
    return -1;
}

const char *chp_bidi_mode_name(chp_bidi_mode m)
{
    static const char *const names[] = {"auto", "app", "terminal", "reorder"};
    return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "auto";
}

static const char *real_env(const char *name)
{
    return getenv(name);
}

chp_bidi_mode chp_bidi_resolve(chp_bidi_mode m, const char *(*env)(const char *name))
{
    if (m != CHP_BIDI_AUTO)
        return m;
    if (!env)
        env = real_env;
    const char *term = env("TERM");
    static const char *const bidi_terms[] = {"VTE_VERSION", "KONSOLE_VERSION", "MLTERM"};
    for (size_t i = 0; i < sizeof bidi_terms / sizeof bidi_terms[0]; i++) {
        const char *v = env(bidi_terms[i]);
        if (v && *v)
            return CHP_BIDI_TERMINAL;
    }
    if (term && !strncmp(term, "mlterm", 6))
        return CHP_BIDI_TERMINAL;
    return CHP_BIDI_APP;
}

void chp_bidi_para_fini(chp_bidi_para *p)
{
    for (size_t i = 0; p->rows && i < p->nrows; i++) {
        free(p->rows[i].vis);
        free(p->rows[i].map);
    }
    free(p->rows);
    memset(p, 0, sizeof *p);
}

/* The paragraph's UBA data: types, levels and (app mode) joining. */
typedef struct uba {
    FriBidiChar *str;
    FriBidiCharType *types;
    FriBidiBracketType *brackets;
    FriBidiLevel *levels;
    FriBidiArabicProp *ar;
    FriBidiParType base;
} uba;

static void uba_fini(uba *u)
{
    free(u->str);
    free(u->types);
    free(u->brackets);
    free(u->levels);
    free(u->ar);
}

/* The embedding levels of w (n > 0) with the direction of its first
 * strong letter in [from, to). 0 or -1 (out of memory). */
static int uba_run(uba *u, const wchar_t *w, size_t n, size_t from, size_t to)
{
    memset(u, 0, sizeof *u);
    u->str = malloc(n * sizeof *u->str);
    u->types = malloc(n * sizeof *u->types);
    u->brackets = malloc(n * sizeof *u->brackets);
    u->levels = malloc(n * sizeof *u->levels);
    u->ar = malloc(n * sizeof *u->ar);
    if (!u->str || !u->types || !u->brackets || !u->levels || !u->ar)
        return -1;
    for (size_t i = 0; i < n; i++)
        u->str[i] = (FriBidiChar)w[i];
    FriBidiStrIndex len = (FriBidiStrIndex)n;
    fribidi_get_bidi_types(u->str, len, u->types);
    fribidi_get_bracket_types(u->str, len, u->types, u->brackets);
    if (to > n)
        to = n;
    u->base = from < to ? fribidi_get_par_direction(u->types + from, (FriBidiStrIndex)(to - from))
                        : FRIBIDI_PAR_ON;
    if (u->base != FRIBIDI_PAR_RTL)
        u->base = FRIBIDI_PAR_LTR;
    if (!fribidi_get_par_embedding_levels_ex(u->types, u->brackets, len, &u->base, u->levels))
        return -1;
    return 0;
}

/* Row [s, e) of the paragraph into r: logical (terminal mode) or shaped,
 * mirrored and reordered (app mode). vis and map span the paragraph
 * (FriBidi takes a row as an offset into it); the row's part of them is
 * changed. 0 or -1. */
static int lay_row(uba *u, FriBidiChar *vis, FriBidiStrIndex *map, size_t s, size_t e,
                   chp_bidi_mode mode, chp_bidi_row *r)
{
    size_t n = e - s;
    r->vis = malloc((n + 1) * sizeof *r->vis);
    r->map = malloc((n + 1) * sizeof *r->map);
    if (!r->vis || !r->map)
        return -1;
    if (mode != CHP_BIDI_TERMINAL && n) {
        FriBidiFlags fl = FRIBIDI_FLAGS_DEFAULT | (mode == CHP_BIDI_APP ? FRIBIDI_FLAGS_ARABIC : 0);
        /* joining per row: a word cut by the wrap ends and starts unjoined */
        fribidi_get_joining_types(vis + s, (FriBidiStrIndex)n, u->ar + s);
        fribidi_join_arabic(u->types + s, (FriBidiStrIndex)n, u->levels + s, u->ar + s);
        fribidi_shape(fl, u->levels + s, (FriBidiStrIndex)n, u->ar + s, vis + s);
        if (!fribidi_reorder_line(fl, u->types, (FriBidiStrIndex)n, (FriBidiStrIndex)s, u->base,
                                  u->levels, vis, map))
            return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (vis[s + i] == 0xFEFF && mode == CHP_BIDI_APP)
            continue; /* what a lam-alef ligature left of its alef */
        r->vis[k] = (wchar_t)vis[s + i];
        r->map[k++] = (size_t)map[s + i];
    }
    r->vis[k] = 0;
    r->n = k;
    r->cells = (int)chp_wt_width(r->vis, k);
    return 0;
}

/* Wraps w and lays out each row (u and the paragraph-wide vis and map
 * ready); 0 or -1. */
static int lay_rows(uba *u, const wchar_t *w, size_t n, int width, chp_bidi_mode mode,
                    FriBidiChar *vis, FriBidiStrIndex *map, chp_bidi_para *out)
{
    size_t cap = 16, rows;
    size_t *starts = malloc(cap * sizeof *starts);
    if (!starts)
        return -1;
    while ((rows = chp_wt_wrap(w, n, width, starts, cap)) > cap) {
        free(starts);
        cap = rows;
        if (!(starts = malloc(cap * sizeof *starts)))
            return -1;
    }
    int rc = -1;
    out->rows = calloc(rows, sizeof *out->rows);
    if (!out->rows)
        goto out;
    out->nrows = rows;
    for (size_t r = 0; r < rows; r++) {
        size_t next = r + 1 < rows ? starts[r + 1] : n;
        size_t end = chp_wt_row_end(w, starts[r], next);
        chp_bidi_row *row = &out->rows[r];
        if (lay_row(u, vis, map, starts[r], end, mode, row) != 0)
            goto out;
        if (mode != CHP_BIDI_TERMINAL && out->rtl && row->cells < width)
            row->pad = width - row->cells;
    }
    rc = 0;
out:
    free(starts);
    return rc;
}

int chp_bidi_layout(const wchar_t *w, size_t n, size_t dir_from, size_t dir_to, int width,
                    chp_bidi_mode mode, chp_bidi_para *out)
{
    uba u;
    memset(&u, 0, sizeof u);
    memset(out, 0, sizeof *out);
    if (width < 2)
        width = 2;
    static const wchar_t nothing[1] = {L' '};
    if (n == 0) { /* one empty row, as chp_wt_wrap gives */
        w = nothing;
        dir_from = dir_to = 0;
    }
    size_t len = n ? n : 1;
    FriBidiChar *vis = malloc(len * sizeof *vis);
    FriBidiStrIndex *map = malloc(len * sizeof *map);
    int rc = -1;
    if (vis && map && uba_run(&u, w, len, dir_from, dir_to) == 0) {
        out->rtl = u.base == FRIBIDI_PAR_RTL;
        memcpy(vis, u.str, len * sizeof *vis);
        for (size_t i = 0; i < len; i++)
            map[i] = (FriBidiStrIndex)i;
        rc = lay_rows(&u, w, n, width, mode == CHP_BIDI_AUTO ? CHP_BIDI_APP : mode, vis, map, out);
    }
    uba_fini(&u);
    free(vis);
    free(map);
    if (rc != 0)
        chp_bidi_para_fini(out);
    return rc;
}

int chp_bidi_cursor_col(const chp_bidi_para *p, size_t cur, size_t n)
{
    if (!p->nrows)
        return 0;
    const chp_bidi_row *r = &p->rows[0];
    size_t want = cur < n ? cur : n - (n > 0);
    int col = r->pad;
    for (size_t i = 0; i < r->n; i++) {
        if (r->map[i] == want) {
            if (cur < n)
                return col;
            /* the end: after the last letter in its direction */
            int rtl_here = (i + 1 < r->n && r->map[i + 1] + 1 == want) || (r->n == 1 && p->rtl) ||
                           (i == 0 && r->n > 1 && p->rtl);
            if (rtl_here)
                return col > 0 ? col - 1 : 0;
            return col + chp_wt_cwidth(r->vis[i]);
        }
        col += chp_wt_cwidth(r->vis[i]);
    }
    return p->rtl ? (r->pad > 0 ? r->pad - 1 : 0) : r->pad + r->cells;
}
