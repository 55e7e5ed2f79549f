/* ctl_errtext.c - chapard's error replies in the reader's language
 * (ctl_errtext.h, docs/I18N.md "Errors from chapard"). */
#include "node/client/ctl_errtext.h"

#include "node/common/i18n.h"

#include <string.h>

#define LINE_MAX_   1024 /* the daemon's lines are at most 512 bytes */
#define DETAILS_MAX 4

/* Every error format chapard sends over the control API (the N_() texts
 * with a printf directive in node/msg/msg_ctl.c, node/daemon/control.c,
 * bundle_ctl.c, bundle.c and bundle_io.c): the test i18n_ctl_errors (po/ctl_errors.py)
 * fails when this table and the daemon's differ. */
static const char *const formats[] = {
    N_("cannot send to %s: not an established contact"),
    N_("send-file: the caption must be UTF-8 of at most %u bytes"),
    N_("%.200s is a bundle, not a want file"),
    N_("--max-size %llu is below the smallest %s bundle (%llu bytes)"),
    N_("cannot read %.200s: %s"),
    N_("cannot read %.200s: not a regular file"),
    N_("cannot read: %s"),
    N_("cannot rename to %.200s: %s"),
    N_("cannot write %.200s: %s"),
    N_("sealed chunk %llu of %llu is damaged"),
    N_("want file %.200s is damaged (%s)"),
    N_("'%.70s' asked to be your contact: contact accept first"),
    N_("'%.70s' is blocked"),
    N_("already a contact (as %s)"),
    N_("already in %s"),
    N_("already in %s (fingerprint %s) with another passphrase (this one gives fingerprint %s); "
       "leave it first, or check the passphrase"),
    N_("already in %s as a passphrase room (fingerprint %s), not the public room (fingerprint %s); "
       "leave it first, or give the passphrase"),
    N_("already in %s as a public room (fingerprint %s), not a passphrase room (this passphrase "
       "gives fingerprint %s); leave it first"),
    N_("an identity already exists in %s"),
    N_("bad name: 1 to %u bytes of UTF-8, no control, invisible or direction-changing characters, "
       "not starting with '#', '~', '*' or 'chp1'"),
    N_("bad nick: 1 to %d bytes of UTF-8, no control, invisible or direction-changing characters, "
       "no space at either end, not starting with '~' or '*'"),
    N_("bad room name '%.70s': %s"),
    N_("cannot accept: %s"),
    N_("cannot add the contact: %s"),
    N_("cannot block: %s"),
    N_("cannot create the identity: %s"),
    N_("cannot join %s: %s"),
    N_("cannot leave: %s"),
    N_("cannot open the new identity: %s"),
    N_("cannot queue the message: %s"),
    N_("cannot remove: %s"),
    N_("cannot store the nick: %s"),
    N_("cannot unlock: %s"),
    N_("discovery %s until chapard stops (cannot write %s/chapard.conf: %s)"),
    N_("discovery %s, saved in %s/chapard.conf"),
    N_("give a name: contact accept %.70s NAME"),
    N_("host %s does not resolve (a typo, or no name service here?)"),
    N_("LIMIT must be a number from 1 to %u"),
    N_("malformed ID '%.70s': %s"),
    N_("message too long: %zu bytes (at most %u)"),
    N_("more than one request from '%s': use the ID"),
    N_("no identity in %s: run chapar init"),
    N_("no pending request from '%.70s'"),
    N_("not an unsigned app manifest: %s"),
    N_("not in room %s"),
    N_("not in room %s: join it first"),
    N_("the name '%s' is taken by another contact"),
    N_("their nick '%s' is the name of another contact: give a name: contact accept %s NAME"),
    N_("unknown contact '%.70s'"),
};

struct span {
    const char *p;
    size_t n;
};

/* The length of the printf directive after a '%' at f ("s", ".70s", "zu",
 * "1$s"), or 0 when there is none; *num says it prints a number. */
static size_t directive(const char *f, int *num)
{
    size_t i = strspn(f, "0123456789");
    i = f[i] == '$' ? i + 1 : 0;
    i += strspn(f + i, "-+ #0");
    i += strspn(f + i, "0123456789");
    if (f[i] == '.')
        i += 1 + strspn(f + i + 1, "0123456789");
    i += strspn(f + i, "hlzjt");
    if (!f[i] || !strchr("diouxXsc", f[i]))
        return 0;
    *num = f[i] != 's' && f[i] != 'c';
    return i + 1;
}

static int number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-';
}

/* Whether s..end is what format f prints, the text of each directive from
 * k on into d: the number of details, or -1. A detail is the shortest
 * text that lets the rest match. */
static int match(const char *f, const char *s, const char *end, struct span *d, int k)
{
    while (*f) {
        int num = 0;
        size_t dl = *f == '%' ? directive(f + 1, &num) : 0;
        if (dl) {
            if (k == DETAILS_MAX)
                return -1;
            for (const char *e = s + num; e <= end; e++) {
                if (num && !number_char(e[-1]))
                    break;
                d[k] = (struct span){s, (size_t)(e - s)};
                int got = match(f + 1 + dl, e, end, d, k + 1);
                if (got >= 0)
                    return got;
            }
            return -1;
        }
        size_t lit = f[0] == '%' && f[1] == '%' ? 2 : 1;
        if (s == end || *s != f[lit - 1])
            return -1;
        f += lit, s++;
    }
    return s == end ? k : -1;
}

/* Appends n bytes of p to out at *o; what does not fit is cut at a
 * character boundary, and nothing is appended after a cut (*o = cap). */
static void put(char *out, size_t cap, size_t *o, const char *p, size_t n)
{
    if (*o >= cap)
        return;
    size_t room = cap - 1 - *o;
    int cut = n > room;
    memcpy(out + *o, p, cut ? room : n);
    size_t end = *o + (cut ? room : n);
    if (cut) { /* drop a character the cut left unfinished */
        size_t k = end;
        while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0 && (unsigned char)out[k - 1] >= 0xC0) {
            unsigned char lead = (unsigned char)out[k - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (end - (k - 1) < need)
                end = k - 1;
        }
    }
    out[end] = '\0';
    *o = cut ? cap : end;
}

/* The detail "%N$s" names (N - 1), or -1 for one taken in order. */
static int positional(const char *f)
{
    int v = 0;
    size_t i = 0;
    for (; f[i] >= '0' && f[i] <= '9' && v < DETAILS_MAX + 1; i++)
        v = v * 10 + (f[i] - '0');
    return i && f[i] == '$' ? v - 1 : -1;
}

/* The translated format tr with the details put in ("%2$s" picks one). */
static void fill(const char *tr, const struct span *d, int nd, char *out, size_t cap)
{
    size_t o = 0;
    int next = 0;
    out[0] = '\0';
    while (*tr) {
        int num;
        size_t dl = *tr == '%' ? directive(tr + 1, &num) : 0;
        if (!dl) {
            size_t lit = tr[0] == '%' && tr[1] == '%' ? 2 : 1;
            put(out, cap, &o, tr + lit - 1, 1);
            tr += lit;
            continue;
        }
        int i = positional(tr + 1);
        if (i < 0)
            i = next++;
        if (i >= 0 && i < nd)
            put(out, cap, &o, d[i].p, d[i].n);
        tr += 1 + dl;
    }
}

char *chp_ctl_error_text(const char *english, char *out, size_t cap)
{
    char line[LINE_MAX_];
    size_t n = strcspn(english, "\n");
    if (n >= sizeof line)
        n = sizeof line - 1;
    memcpy(line, english, n);
    line[n] = '\0';
    const char *tr = n ? gettext(line) : line;
    const char *best = NULL;
    struct span d[DETAILS_MAX], bd[DETAILS_MAX];
    int nd = -1;
    for (size_t i = 0; tr == line && i < sizeof formats / sizeof formats[0]; i++) {
        int got = match(formats[i], line, line + n, d, 0);
        if (got >= 0 && (!best || strlen(formats[i]) > strlen(best))) {
            best = formats[i], nd = got;
            memcpy(bd, d, sizeof d);
        }
    }
    if (best && gettext(best) != best) {
        fill(gettext(best), bd, nd, out, cap);
        return out;
    }
    size_t o = 0;
    out[0] = '\0';
    put(out, cap, &o, tr, strlen(tr));
    return out;
}
