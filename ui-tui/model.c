/* model.c - conversations, lines and notices of the TUI (model.h). */
#include "ui-tui/model.h"

#include "proto/buf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINES_MAX 2000 /* per conversation: the oldest go first */

/* A pending contact request, as `contact-requests` lists it. */
struct request {
    char id[96];    /* chp1... */
    char nick[136]; /* unescaped; "" when they gave none */
    char fpr[24];
};

struct chp_model {
    chp_conv *convs;
    size_t n, cap;
    int cur;        /* -1: none */
    chp_line *orph; /* notices from before the first conversation */
    size_t norph, corph;
    uint64_t seq; /* last chp_line.seq handed out */
    struct request *req;
    size_t nreq;
    /* The last file progress events, for lines loaded after them. */
    struct progress {
        char msgid[33];
        uint32_t done, total;
        int in; /* an incoming file's */
    } prog[8];
    size_t nprog;
};

chp_model *chp_model_new(void)
{
    chp_model *m = calloc(1, sizeof *m);
    if (m)
        m->cur = -1;
    return m;
}

static void line_free(chp_line *l)
{
    free(l->sender);
    free(l->text);
    l->sender = l->text = NULL;
}

static void conv_free(chp_conv *c)
{
    for (size_t i = 0; i < c->nlines; i++)
        line_free(&c->lines[i]);
    free(c->lines);
    free(c->name);
}

void chp_model_destroy(chp_model **mp)
{
    if (!mp || !*mp)
        return;
    chp_model *m = *mp;
    for (size_t i = 0; i < m->n; i++)
        conv_free(&m->convs[i]);
    for (size_t i = 0; i < m->norph; i++)
        line_free(&m->orph[i]);
    free(m->orph);
    free(m->convs);
    free(m->req);
    free(m);
    *mp = NULL;
}

size_t chp_model_count(const chp_model *m)
{
    return m->n;
}

const chp_conv *chp_model_conv(const chp_model *m, size_t i)
{
    assert(i < m->n);
    return &m->convs[i];
}

int chp_model_find(const chp_model *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->convs[i].name, name))
            return (int)i;
    return -1;
}

int chp_model_current(const chp_model *m)
{
    return m->cur;
}

/* Appends l (taking its strings) to an array; drops the oldest beyond
 * LINES_MAX. On OOM the line is freed and dropped. */
static void push_line(chp_line **arr, size_t *n, size_t *cap, chp_line *l)
{
    if (*n == LINES_MAX) {
        line_free(&(*arr)[0]);
        memmove(*arr, *arr + 1, (*n - 1) * sizeof **arr);
        (*n)--;
    }
    if (chp_grow(arr, cap, *n + 1, sizeof **arr) != CHP_OK) {
        line_free(l);
        return;
    }
    (*arr)[(*n)++] = *l;
}

int chp_model_add(chp_model *m, const char *name)
{
    int i = chp_model_find(m, name);
    if (i >= 0)
        return i;
    if (chp_grow(&m->convs, &m->cap, m->n + 1, sizeof *m->convs) != CHP_OK)
        return -1;
    chp_conv *c = &m->convs[m->n];
    memset(c, 0, sizeof *c);
    if (!(c->name = strdup(name)))
        return -1;
    c->kind = name[0] == '#' ? CHP_CONV_ROOM : CHP_CONV_CONTACT;
    i = (int)m->n++;
    if (m->cur < 0) {
        m->cur = i;
        for (size_t k = 0; k < m->norph; k++)
            push_line(&c->lines, &c->nlines, &c->cap, &m->orph[k]);
        m->norph = 0;
    }
    return i;
}

void chp_model_remove(chp_model *m, const char *name)
{
    int i = chp_model_find(m, name);
    if (i < 0)
        return;
    conv_free(&m->convs[i]);
    memmove(m->convs + i, m->convs + i + 1, (m->n - (size_t)i - 1) * sizeof *m->convs);
    m->n--;
    if (m->n == 0)
        m->cur = -1;
    else if (m->cur > i || m->cur >= (int)m->n)
        m->cur--;
    if (m->cur >= 0)
        m->convs[m->cur].unread = 0;
}

void chp_model_select(chp_model *m, int i)
{
    if (i < 0 || (size_t)i >= m->n)
        return;
    m->cur = i;
    m->convs[i].unread = 0;
}

void chp_model_next(chp_model *m)
{
    if (m->n)
        chp_model_select(m, (int)(((size_t)m->cur + 1) % m->n));
}

void chp_model_prev(chp_model *m)
{
    if (m->n)
        chp_model_select(m, m->cur <= 0 ? (int)m->n - 1 : m->cur - 1);
}

char *chp_unescape(const char *s, size_t len)
{
    char *o = malloc(len + 1);
    size_t k = 0;
    if (!o)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < len) {
            char e = s[++i];
            c = e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : e;
        }
        o[k++] = c;
    }
    o[k] = 0;
    return o;
}

int chp_split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    if (max <= 0)
        return 0;
    fields[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = 0;
            fields[n++] = p + 1;
        }
    return n;
}

/* Calls fn on every line of payload (a NUL-terminated copy, modifiable). */
static int each_line(const char *payload, size_t len, int (*fn)(void *, char *), void *arg)
{
    char *copy = malloc(len + 1);
    int rc = CHP_OK;
    if (!copy)
        return CHP_E_NOMEM;
    memcpy(copy, payload, len);
    copy[len] = 0;
    for (char *p = copy; *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        if (*p) {
            int r = fn(arg, p);
            if (r != CHP_OK)
                rc = r;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    free(copy);
    return rc;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (max - (unsigned)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    *out = v;
    return 0;
}

struct conv_load {
    chp_model *m;
    char *seen; /* one flag per conversation known before the load */
    size_t nseen;
};

static int conv_line(void *arg, char *line)
{
    struct conv_load *cl = arg;
    char *f[4];
    unsigned long long unread;
    if (chp_split_tabs(line, f, 4) != 4 || parse_uint(f[2], 1000000000ULL, &unread) != 0)
        return CHP_E_MALFORMED;
    char *name = chp_unescape(f[0], strlen(f[0]));
    if (!name)
        return CHP_E_NOMEM;
    int empty = !name[0], i = empty ? -1 : chp_model_add(cl->m, name);
    free(name);
    if (i < 0)
        return empty ? CHP_E_MALFORMED : CHP_E_NOMEM;
    if ((size_t)i < cl->nseen)
        cl->seen[i] = 1;
    if (!strcmp(f[1], "contact"))
        cl->m->convs[i].kind = CHP_CONV_CONTACT;
    else if (!strcmp(f[1], "room"))
        cl->m->convs[i].kind = CHP_CONV_ROOM;
    cl->m->convs[i].unread = i == cl->m->cur ? 0 : (unsigned)unread;
    return CHP_OK;
}

int chp_model_load_conversations(chp_model *m, const char *payload, size_t len)
{
    struct conv_load cl = {m, calloc(m->n + 1, 1), m->n};
    if (!cl.seen)
        return CHP_E_NOMEM;
    int rc = each_line(payload, len, conv_line, &cl);
    if (rc != CHP_OK) {
        free(cl.seen);
        return rc;
    }
    /* Forget the ones the daemon no longer lists (left rooms, removed
     * contacts); back to front so the indexes stay right. */
    for (size_t i = cl.nseen; i-- > 0;)
        if (!cl.seen[i]) {
            char *name = strdup(m->convs[i].name);
            if (name)
                chp_model_remove(m, name);
            free(name);
        }
    free(cl.seen);
    return rc;
}

static int room_line(void *arg, char *line)
{
    chp_model *m = arg;
    char *f[3];
    int nf = chp_split_tabs(line, f, 3);
    if (nf < 2 || !f[0][0])
        return CHP_E_MALFORMED;
    char *name = chp_unescape(f[0], strlen(f[0]));
    if (!name)
        return CHP_E_NOMEM;
    int i = chp_model_find(m, name);
    free(name);
    if (i < 0)
        return CHP_OK; /* a room the conversation list does not have yet */
    chp_conv *c = &m->convs[i];
    /* only what fits: the daemon's words, not a line's worth of text */
    if (strlen(f[1]) < sizeof c->room_kind)
        snprintf(c->room_kind, sizeof c->room_kind, "%s", f[1]);
    if (nf == 3 && strlen(f[2]) < sizeof c->room_fp)
        snprintf(c->room_fp, sizeof c->room_fp, "%s", f[2]);
    return CHP_OK;
}

int chp_model_load_rooms(chp_model *m, const char *payload, size_t len)
{
    return each_line(payload, len, room_line, m);
}

void chp_model_title(const chp_model *m, size_t i, char *out, size_t cap)
{
    const chp_conv *c = chp_model_conv(m, i);
    int k = snprintf(out, cap, "%s", c->name);
    if (c->kind != CHP_CONV_ROOM || k < 0 || (size_t)k >= cap)
        return;
    if (c->room_kind[0])
        k += snprintf(out + k, cap - (size_t)k, " \u00b7 %s", c->room_kind);
    if (c->room_fp[0] && (size_t)k < cap)
        snprintf(out + k, cap - (size_t)k, " \u00b7 %s", c->room_fp);
}

void chp_status_parse(const char *payload, size_t len, chp_status *st)
{
    static const char *const keys[] = {"peers connected: ", "relays connected: ", "store full: "};
    int *vals[] = {&st->peers, &st->relays, &st->store_full};
    st->peers = st->relays = st->store_full = -1;
    for (size_t off = 0; off < len;) {
        const char *line = payload + off, *nl = memchr(line, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - line) : len - off;
        for (size_t k = 0; k < 3; k++) {
            size_t kl = strlen(keys[k]);
            if (ll <= kl || memcmp(line, keys[k], kl))
                continue;
            char v[24];
            size_t vl = ll - kl < sizeof v - 1 ? ll - kl : sizeof v - 1;
            memcpy(v, line + kl, vl);
            v[vl] = 0;
            unsigned long long u;
            if (k == 2)
                *vals[k] = !strcmp(v, "yes") ? 1 : !strcmp(v, "no") ? 0 : -1;
            else if (parse_uint(v, 1000000, &u) == 0)
                *vals[k] = (int)u;
        }
        off += ll + 1;
    }
}

struct hist_load {
    chp_line *lines;
    size_t n, cap;
};

static chp_line_state parse_state(const char *s)
{
    if (!strcmp(s, "queued"))
        return CHP_LINE_QUEUED;
    if (!strcmp(s, "sent"))
        return CHP_LINE_SENT;
    if (!strcmp(s, "delivered"))
        return CHP_LINE_DELIVERED;
    return CHP_LINE_IN;
}

static int hist_line(void *arg, char *line)
{
    struct hist_load *hl = arg;
    char *f[6];
    unsigned long long t;
    if (chp_split_tabs(line, f, 6) != 6 || parse_uint(f[0], INT64_MAX, &t) != 0 ||
        (strcmp(f[1], "in") && strcmp(f[1], "out")))
        return CHP_E_MALFORMED;
    chp_line l = {0};
    l.time = (int64_t)t;
    l.state = !strcmp(f[1], "out") ? parse_state(f[3]) : CHP_LINE_IN;
    if (!strcmp(f[1], "out") && l.state == CHP_LINE_IN)
        l.state = CHP_LINE_QUEUED;
    if (!strcmp(f[1], "in") && !strcmp(f[2], "*"))
        l.state = CHP_LINE_SYSTEM;
    snprintf(l.msgid, sizeof l.msgid, "%.32s", f[4]);
    l.sender = chp_unescape(f[2], strlen(f[2]));
    l.text = chp_unescape(f[5], strlen(f[5]));
    if (!l.sender || !l.text) {
        line_free(&l);
        return CHP_E_NOMEM;
    }
    push_line(&hl->lines, &hl->n, &hl->cap, &l);
    return CHP_OK;
}

/* Lines stay in the order the UI learnt of them (a history lists messages
 * in the order they were written or arrived here): mail that arrives
 * hours late through a relay shows at the bottom, under its own time, not
 * up in the scrollback where its sender's clock would put it. */
static int line_order(const void *x, const void *y)
{
    const chp_line *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

int chp_model_load_history(chp_model *m, const char *conv, const char *payload, size_t len)
{
    struct hist_load hl = {0};
    int rc = each_line(payload, len, hist_line, &hl);
    int i = chp_model_add(m, conv);
    if (i < 0 || rc == CHP_E_NOMEM) {
        for (size_t k = 0; k < hl.n; k++)
            line_free(&hl.lines[k]);
        free(hl.lines);
        return CHP_E_NOMEM;
    }
    chp_conv *c = &m->convs[i];
    /* A message seen before keeps its place among the notices; a file
     * its progress. */
    for (size_t k = 0; k < hl.n; k++) {
        chp_line *l = &hl.lines[k];
        for (size_t j = 0; j < 8; j++)
            if (l->msgid[0] && !strcmp(m->prog[j].msgid, l->msgid) &&
                m->prog[j].in == (l->state == CHP_LINE_IN)) {
                l->done = m->prog[j].done;
                l->total = m->prog[j].total;
            }
        for (size_t j = 0; j < c->nlines && !l->seq; j++)
            if (c->lines[j].state != CHP_LINE_NOTICE && l->msgid[0] &&
                !strcmp(c->lines[j].msgid, l->msgid))
                l->seq = c->lines[j].seq;
        if (!l->seq)
            l->seq = ++m->seq;
    }
    /* The old messages go; the notices join the new ones, and so do the
     * files still arriving whose message is not among them. */
    size_t keep = 0;
    for (size_t j = 0; j < c->nlines; j++) {
        int came = 0;
        for (size_t k = 0; k < hl.n && c->lines[j].partial; k++)
            came |= !strcmp(hl.lines[k].msgid, c->lines[j].msgid);
        if (c->lines[j].state == CHP_LINE_NOTICE || (c->lines[j].partial && !came))
            c->lines[keep++] = c->lines[j];
        else
            line_free(&c->lines[j]);
    }
    c->nlines = keep;
    for (size_t k = 0; k < hl.n; k++)
        push_line(&c->lines, &c->nlines, &c->cap, &hl.lines[k]);
    free(hl.lines);
    if (c->nlines > 1)
        qsort(c->lines, c->nlines, sizeof *c->lines, line_order);
    return rc;
}

int chp_model_on_message(chp_model *m, const char *conv, const char *sender)
{
    int i = chp_model_add(m, conv);
    if (i >= 0 && i != m->cur && chp_sender_kind_of(sender) != CHP_SENDER_SYSTEM)
        m->convs[i].unread++;
    return i;
}

int chp_model_on_room(chp_model *m, const char *body, size_t len)
{
    char *copy = malloc(len + 1), *f[3];
    int i = -1;
    if (!copy)
        return -1;
    memcpy(copy, body, len);
    copy[len] = 0;
    int nf = chp_split_tabs(copy, f, 3);
    char *room = nf >= 2 ? chp_unescape(f[0], strlen(f[0])) : NULL;
    if (room && room[0] == '#') {
        if (nf == 3 && !strcmp(f[1], "joined") && (i = chp_model_add(m, room)) >= 0 &&
            strlen(f[2]) < sizeof m->convs[i].room_fp)
            snprintf(m->convs[i].room_fp, sizeof m->convs[i].room_fp, "%s", f[2]);
        else if (nf == 2 && !strcmp(f[1], "left"))
            chp_model_remove(m, room);
    }
    free(room);
    free(copy);
    return i;
}

chp_sender_kind chp_sender_kind_of(const char *sender)
{
    if (!strcmp(sender, "*"))
        return CHP_SENDER_SYSTEM;
    return sender[0] == '~' ? CHP_SENDER_STRANGER : CHP_SENDER_CONTACT;
}

struct req_load {
    struct request *r;
    size_t n, cap;
};

static int req_line(void *arg, char *line)
{
    struct req_load *rl = arg;
    char *f[4];
    if (chp_split_tabs(line, f, 4) != 4 || strncmp(f[0], "chp1", 4) ||
        strlen(f[0]) >= sizeof rl->r->id || !f[2][0] || strlen(f[2]) >= sizeof rl->r->fpr)
        return CHP_E_MALFORMED;
    char *nick = chp_unescape(f[1], strlen(f[1]));
    if (!nick)
        return CHP_E_NOMEM;
    int rc = CHP_E_MALFORMED;
    if (strlen(nick) < sizeof rl->r->nick) {
        rc = CHP_E_NOMEM;
        if (chp_grow(&rl->r, &rl->cap, rl->n + 1, sizeof *rl->r) == CHP_OK) {
            struct request *q = &rl->r[rl->n++];
            snprintf(q->id, sizeof q->id, "%s", f[0]);
            snprintf(q->nick, sizeof q->nick, "%s", nick);
            snprintf(q->fpr, sizeof q->fpr, "%s", f[2]);
            rc = CHP_OK;
        }
    }
    free(nick);
    return rc;
}

int chp_model_load_requests(chp_model *m, const char *payload, size_t len)
{
    struct req_load rl = {0};
    int rc = each_line(payload, len, req_line, &rl);
    if (rc == CHP_E_NOMEM) {
        free(rl.r);
        return rc; /* the old list stays */
    }
    free(m->req);
    m->req = rl.r;
    m->nreq = rl.n;
    return rc;
}

/* How many pending requests carry nick; *one gets the last of them. */
static size_t requests_named(const chp_model *m, const char *nick, const struct request **one)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nreq; i++)
        if (!strcmp(m->req[i].nick, nick)) {
            *one = &m->req[i];
            n++;
        }
    return n;
}

int chp_model_sender_word(const chp_model *m, const char *sender, char *out, size_t cap)
{
    chp_sender_kind k = chp_sender_kind_of(sender);
    size_t len = strlen(sender);
    if (k == CHP_SENDER_SYSTEM || !len || len >= cap)
        return 0;
    if (k == CHP_SENDER_CONTACT) {
        memcpy(out, sender, len + 1);
        return 1;
    }
    /* "~NICK (FPR)": the nick may hold spaces and brackets, the
     * fingerprint neither, so the last " (" splits them */
    const char *open = NULL;
    for (const char *p = strstr(sender, " ("); p; p = strstr(p + 1, " ("))
        open = p;
    if (!open || sender[len - 1] != ')' || open == sender + 1)
        return 0;
    char nick[sizeof m->req->nick], fpr[sizeof m->req->fpr];
    size_t nl = (size_t)(open - sender) - 1, fl = len - (size_t)(open - sender) - 3;
    if (nl >= sizeof nick || fl >= sizeof fpr || fl == 0)
        return 0;
    memcpy(nick, sender + 1, nl);
    nick[nl] = 0;
    memcpy(fpr, open + 2, fl);
    fpr[fl] = 0;
    const struct request *theirs = NULL, *named = NULL;
    for (size_t i = 0; i < m->nreq && !theirs; i++)
        if (!strcmp(m->req[i].fpr, fpr))
            theirs = &m->req[i];
    size_t same = requests_named(m, nick, &named);
    if (theirs && (same != 1 || named != theirs)) {
        snprintf(out, cap, "%s", theirs->id);
        return 1;
    }
    if (!theirs && same)
        return 0;
    memcpy(out, sender, nl + 1); /* "~NICK" */
    out[nl + 1] = 0;
    return 1;
}

int chp_model_resolve_who(const chp_model *m, const char *who, char *out, size_t cap)
{
    const struct request *one = NULL;
    if (who[0] != '~') {
        snprintf(out, cap, "%s", who);
        return 1;
    }
    size_t n = who[1] ? requests_named(m, who + 1, &one) : 0;
    if (n != 1)
        return n ? -1 : 0;
    snprintf(out, cap, "%s", one->id);
    return 1;
}

int chp_model_set_state(chp_model *m, const char *msgid, const char *state)
{
    chp_line_state st = parse_state(state);
    int found = 0;
    if (st == CHP_LINE_IN || !msgid[0])
        return 0;
    for (size_t i = 0; i < m->n; i++)
        for (size_t k = 0; k < m->convs[i].nlines; k++) {
            chp_line *l = &m->convs[i].lines[k];
            if (l->state >= CHP_LINE_QUEUED && l->state <= CHP_LINE_DELIVERED &&
                !strcmp(l->msgid, msgid)) {
                if (st > l->state)
                    l->state = st;
                found = 1;
            }
        }
    return found;
}

int chp_model_set_progress(chp_model *m, const char *msgid, uint32_t done, uint32_t total)
{
    int found = 0;
    struct progress *p = &m->prog[m->nprog++ % 8];
    snprintf(p->msgid, sizeof p->msgid, "%s", msgid);
    p->done = done;
    p->total = total;
    p->in = 0;
    for (size_t i = 0; i < m->n && msgid[0]; i++)
        for (size_t k = 0; k < m->convs[i].nlines; k++) {
            chp_line *l = &m->convs[i].lines[k];
            if (l->state != CHP_LINE_IN && !strcmp(l->msgid, msgid) && done <= total) {
                l->done = done;
                l->total = total;
                found = 1;
            }
        }
    return found;
}

int chp_model_file_in(chp_model *m, const char *conv, const char *sender, const char *msgid,
                      const char *text, int64_t now, uint32_t done, uint32_t total)
{
    if (!msgid[0] || done > total || !total)
        return 0;
    struct progress *p = NULL;
    for (size_t j = 0; j < 8 && !p; j++)
        if (m->prog[j].in && !strcmp(m->prog[j].msgid, msgid))
            p = &m->prog[j];
    if (!p)
        p = &m->prog[m->nprog++ % 8];
    snprintf(p->msgid, sizeof p->msgid, "%s", msgid);
    p->done = done;
    p->total = total;
    p->in = 1;
    int i = chp_model_add(m, conv);
    if (i < 0)
        return 0;
    chp_conv *c = &m->convs[i];
    for (size_t k = 0; k < c->nlines; k++) {
        chp_line *l = &c->lines[k];
        if (l->state == CHP_LINE_IN && !strcmp(l->msgid, msgid)) {
            l->done = done;
            l->total = total;
            return 1;
        }
    }
    chp_line l = {.time = now, .state = CHP_LINE_IN, .done = done, .total = total, .partial = 1};
    snprintf(l.msgid, sizeof l.msgid, "%s", msgid);
    l.seq = ++m->seq;
    l.sender = strdup(sender);
    l.text = strdup(text);
    if (!l.sender || !l.text) {
        line_free(&l);
        return 0;
    }
    push_line(&c->lines, &c->nlines, &c->cap, &l);
    return 1;
}

void chp_model_notice(chp_model *m, int64_t time, const char *text)
{
    chp_line l = {0};
    l.time = time;
    l.state = CHP_LINE_NOTICE;
    l.seq = ++m->seq;
    l.sender = strdup("");
    l.text = strdup(text);
    if (!l.sender || !l.text) {
        line_free(&l);
        return;
    }
    if (m->cur >= 0) {
        chp_conv *c = &m->convs[m->cur];
        push_line(&c->lines, &c->nlines, &c->cap, &l);
    } else {
        push_line(&m->orph, &m->norph, &m->corph, &l);
    }
}

const chp_line *chp_model_orphans(const chp_model *m, size_t *n)
{
    *n = m->norph;
    return m->orph;
}

void chp_model_scroll(chp_model *m, long delta, size_t max_rows)
{
    if (m->cur < 0)
        return;
    chp_conv *c = &m->convs[m->cur];
    long s = (long)c->scroll + delta;
    if (s < 0)
        s = 0;
    if ((size_t)s > max_rows)
        s = (long)max_rows;
    c->scroll = (size_t)s;
}
