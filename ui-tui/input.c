/* input.c - the input line editor (input.h). The line is a fixed wide
 * buffer so that a passphrase typed into it never leaves copies behind in
 * freed heap blocks. */
#define _XOPEN_SOURCE 700 /* wcwidth via wtext, towlower */
#include "ui-tui/input.h"

#include "proto/crypto.h"
#include "ui-tui/wtext.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

struct chp_input {
    wchar_t buf[CHP_INPUT_MAX + 1];
    size_t len, cur;
    wchar_t *hist[CHP_HISTORY_MAX]; /* oldest first */
    size_t nhist;
    size_t hpos;    /* the entry shown; nhist while editing the draft */
    wchar_t *draft; /* the unfinished line saved while browsing history */
    int secret;
    size_t first; /* horizontal scroll: first character drawn */
    /* Tab cycling: the word began at comp_start with comp_prefix; the
     * match inserted last ends at comp_end. */
    int comp_active;
    size_t comp_start, comp_end, comp_idx;
    wchar_t comp_prefix[64];
};

chp_input *chp_input_new(void)
{
    return calloc(1, sizeof(chp_input));
}

static void wipe_line(chp_input *in)
{
    chp_memzero(in->buf, (in->len + 1) * sizeof(wchar_t));
    in->len = in->cur = in->first = 0;
}

void chp_input_destroy(chp_input **ip)
{
    if (!ip || !*ip)
        return;
    chp_input *in = *ip;
    wipe_line(in);
    for (size_t i = 0; i < in->nhist; i++)
        free(in->hist[i]);
    free(in->draft);
    free(in);
    *ip = NULL;
}

static void comp_reset(chp_input *in)
{
    in->comp_active = 0;
}

static int is_mark(wchar_t c)
{
    return chp_wt_cwidth(c) == 0;
}

int chp_input_insert(chp_input *in, wchar_t c)
{
    assert(in);
    if (c < 0x20 || (c >= 0x7F && c < 0xA0) || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
        return CHP_E_ARG;
    if (in->len >= CHP_INPUT_MAX)
        return CHP_E_OVERFLOW;
    comp_reset(in);
    memmove(in->buf + in->cur + 1, in->buf + in->cur, (in->len - in->cur) * sizeof(wchar_t));
    in->buf[in->cur++] = c;
    in->buf[++in->len] = 0;
    return CHP_OK;
}

void chp_input_insert_utf8(chp_input *in, const char *s)
{
    size_t n;
    wchar_t *w = chp_wt_decode(s, strlen(s), &n);
    if (!w)
        return;
    for (size_t i = 0; i < n; i++)
        if (chp_input_insert(in, w[i]) == CHP_E_OVERFLOW)
            break;
    free(w);
}

void chp_input_left(chp_input *in)
{
    comp_reset(in);
    if (in->cur == 0)
        return;
    in->cur--;
    while (in->cur > 0 && is_mark(in->buf[in->cur]))
        in->cur--;
}

void chp_input_right(chp_input *in)
{
    comp_reset(in);
    if (in->cur >= in->len)
        return;
    in->cur++;
    while (in->cur < in->len && is_mark(in->buf[in->cur]))
        in->cur++;
}

void chp_input_home(chp_input *in)
{
    comp_reset(in);
    in->cur = 0;
}

void chp_input_end(chp_input *in)
{
    comp_reset(in);
    in->cur = in->len;
}

/* Removes characters [a, b) and puts the cursor at a. */
static void cut(chp_input *in, size_t a, size_t b)
{
    assert(a <= b && b <= in->len);
    comp_reset(in);
    memmove(in->buf + a, in->buf + b, (in->len - b) * sizeof(wchar_t));
    in->len -= b - a;
    chp_memzero(in->buf + in->len, (b - a) * sizeof(wchar_t));
    in->buf[in->len] = 0;
    in->cur = a;
}

void chp_input_backspace(chp_input *in)
{
    if (in->cur > 0)
        cut(in, in->cur - 1, in->cur);
    else
        comp_reset(in);
}

void chp_input_delete(chp_input *in)
{
    if (in->cur >= in->len) {
        comp_reset(in);
        return;
    }
    size_t e = in->cur + 1;
    while (e < in->len && is_mark(in->buf[e]))
        e++;
    cut(in, in->cur, e);
}

void chp_input_word_delete(chp_input *in)
{
    size_t a = in->cur;
    while (a > 0 && iswspace((wint_t)in->buf[a - 1]))
        a--;
    while (a > 0 && !iswspace((wint_t)in->buf[a - 1]))
        a--;
    cut(in, a, in->cur);
}

void chp_input_kill_start(chp_input *in)
{
    cut(in, 0, in->cur);
}

void chp_input_kill_end(chp_input *in)
{
    cut(in, in->cur, in->len);
}

static void load(chp_input *in, const wchar_t *w)
{
    wipe_line(in);
    size_t n = wcslen(w);
    if (n > CHP_INPUT_MAX)
        n = CHP_INPUT_MAX;
    memcpy(in->buf, w, n * sizeof(wchar_t));
    in->buf[n] = 0;
    in->len = in->cur = n;
}

static wchar_t *wdup(const wchar_t *w, size_t n)
{
    wchar_t *d = malloc((n + 1) * sizeof *d);
    if (d) {
        memcpy(d, w, n * sizeof *d);
        d[n] = 0;
    }
    return d;
}

void chp_input_history_prev(chp_input *in)
{
    comp_reset(in);
    if (in->secret || in->hpos == 0)
        return;
    if (in->hpos == in->nhist) {
        free(in->draft);
        if (!(in->draft = wdup(in->buf, in->len)))
            return;
    }
    load(in, in->hist[--in->hpos]);
}

void chp_input_history_next(chp_input *in)
{
    comp_reset(in);
    if (in->secret || in->hpos >= in->nhist)
        return;
    if (++in->hpos == in->nhist) {
        load(in, in->draft ? in->draft : L"");
        free(in->draft);
        in->draft = NULL;
    } else {
        load(in, in->hist[in->hpos]);
    }
}

void chp_input_set_secret(chp_input *in, int on)
{
    comp_reset(in);
    in->secret = on;
}

int chp_input_secret(const chp_input *in)
{
    return in->secret;
}

/* "/join ROOM PASSPHRASE": a line that carries a room's passphrase. */
static int carries_passphrase(const wchar_t *b, size_t len)
{
    static const wchar_t join[] = L"/join ";
    size_t jl = wcslen(join), i = jl;
    if (len <= jl || wcsncmp(b, join, jl) != 0)
        return 0;
    while (i < len && b[i] == L' ')
        i++;
    while (i < len && b[i] != L' ')
        i++; /* the room */
    while (i < len && b[i] == L' ')
        i++;
    return i < len;
}

static void remember(chp_input *in)
{
    if (in->secret || in->len == 0 || carries_passphrase(in->buf, in->len))
        return;
    if (in->nhist && !wcscmp(in->hist[in->nhist - 1], in->buf))
        return;
    wchar_t *d = wdup(in->buf, in->len);
    if (!d)
        return;
    if (in->nhist == CHP_HISTORY_MAX) {
        free(in->hist[0]);
        memmove(in->hist, in->hist + 1, (CHP_HISTORY_MAX - 1) * sizeof in->hist[0]);
        in->nhist--;
    }
    in->hist[in->nhist++] = d;
}

char *chp_input_take(chp_input *in, size_t *len)
{
    char *s = chp_wt_encode(in->buf, in->len, len);
    if (!s)
        return NULL;
    remember(in);
    free(in->draft);
    in->draft = NULL;
    in->hpos = in->nhist;
    chp_input_clear(in);
    return s;
}

void chp_input_clear(chp_input *in)
{
    comp_reset(in);
    wipe_line(in);
}

const wchar_t *chp_input_text(const chp_input *in)
{
    return in->buf;
}

size_t chp_input_len(const chp_input *in)
{
    return in->len;
}

size_t chp_input_cursor(const chp_input *in)
{
    return in->cur;
}

void chp_input_view(chp_input *in, int width, size_t *first, int *col)
{
    if (width < 2)
        width = 2;
    if (in->first > in->cur)
        in->first = in->cur;
    if (in->first > in->len)
        in->first = 0;
    /* Keep the cursor cell inside the field, with room for a wide char. */
    while (in->first < in->cur &&
           chp_wt_width(in->buf + in->first, in->cur - in->first) + 2 > (size_t)width) {
        in->first++;
        while (in->first < in->cur && is_mark(in->buf[in->first]))
            in->first++;
    }
    /* Never start on a mark: it would be drawn on nothing. */
    while (in->first > 0 && in->first < in->len && is_mark(in->buf[in->first]))
        in->first--;
    *first = in->first;
    *col = (int)chp_wt_width(in->buf + in->first, in->cur - in->first);
}

/* Whether name (wide) starts with prefix, ignoring case. */
static int has_prefix(const wchar_t *name, const wchar_t *prefix)
{
    for (; *prefix; prefix++, name++)
        if (!*name || towlower((wint_t)*name) != towlower((wint_t)*prefix))
            return 0;
    return 1;
}

/* The idx-th candidate whose key (keys NULL: the candidate itself)
 * matches prefix, decoded into a new string, and the number of matches in
 * *count. */
static wchar_t *nth_match(const char *const *c, const char *const *keys, size_t nc,
                          const wchar_t *prefix, size_t idx, size_t *count)
{
    wchar_t *found = NULL;
    *count = 0;
    for (size_t i = 0; i < nc; i++) {
        const char *k = keys ? keys[i] : c[i];
        wchar_t *w = chp_wt_decode(k, strlen(k), NULL);
        if (!w)
            continue;
        if (has_prefix(w, prefix) && (*count)++ == idx && !found) {
            if (k != c[i]) {
                free(w);
                w = chp_wt_decode(c[i], strlen(c[i]), NULL);
            }
            found = w;
            continue;
        }
        free(w);
    }
    return found;
}

size_t chp_input_complete(chp_input *in, const char *const *cmds, size_t ncmds,
                          const char *const *names, size_t nnames)
{
    return chp_input_complete_keyed(in, cmds, ncmds, names, NULL, nnames);
}

size_t chp_input_complete_keyed(chp_input *in, const char *const *cmds, size_t ncmds,
                                const char *const *names, const char *const *keys, size_t nnames)
{
    if (in->secret)
        return 0;
    if (!in->comp_active || in->cur != in->comp_end) {
        size_t ws = in->cur;
        while (ws > 0 && !iswspace((wint_t)in->buf[ws - 1]))
            ws--;
        if (in->cur - ws >= sizeof in->comp_prefix / sizeof(wchar_t))
            return 0;
        memcpy(in->comp_prefix, in->buf + ws, (in->cur - ws) * sizeof(wchar_t));
        in->comp_prefix[in->cur - ws] = 0;
        in->comp_start = ws;
        in->comp_end = in->cur;
        in->comp_idx = 0;
    } else {
        in->comp_idx++;
    }
    int is_cmd = in->comp_start == 0 && in->comp_prefix[0] == L'/';
    const char *const *c = is_cmd ? cmds : names, *const *k = is_cmd ? NULL : keys;
    size_t nc = is_cmd ? ncmds : nnames, count;
    wchar_t *m = nth_match(c, k, nc, in->comp_prefix, 0, &count);
    if (count == 0) {
        free(m);
        comp_reset(in);
        return 0;
    }
    if (in->comp_active && in->cur == in->comp_end) {
        free(m);
        m = nth_match(c, k, nc, in->comp_prefix, in->comp_idx % count, &count);
        if (!m)
            return 0;
    }
    size_t mlen = wcslen(m), start = in->comp_start, old = in->comp_end - start;
    if (in->len - old + mlen + 1 > CHP_INPUT_MAX) {
        free(m);
        return 0;
    }
    memmove(in->buf + start + mlen + 1, in->buf + in->comp_end,
            (in->len - in->comp_end) * sizeof(wchar_t));
    memcpy(in->buf + start, m, mlen * sizeof(wchar_t));
    in->buf[start + mlen] = L' ';
    in->len = in->len - old + mlen + 1;
    in->buf[in->len] = 0;
    in->cur = in->comp_end = start + mlen + 1;
    in->comp_active = 1;
    free(m);
    return count;
}
