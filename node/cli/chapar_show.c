/* chapar_show.c - the chapar commands that show what the daemon knows
 * (inbox, outbox, history, conversations, nick, status) or change little
 * (read, stop): replies split into lines and fields, printed as TSV or
 * for people, with nothing a sender wrote able to act on the terminal. */
#include "node/msg/account.h"
#include "node/cli/chapar_int.h"
#include "node/common/datefmt.h"
#include "node/common/home.h"
#include "node/web/prom.h"
#include "proto/audio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- inbox ---- */

/* Whether an inbox payload has a line whose fifth field (NEW) is 1. */
static int has_new(const char *p)
{
    for (const char *l = p; *l;) {
        size_t n = strcspn(l, "\n"), tabs = 0, i = 0;
        for (; i < n && tabs < 4; i++)
            tabs += l[i] == '\t';
        if (tabs == 4 && i < n && l[i] == '1' && (i + 1 == n || l[i + 1] == '\t'))
            return 1;
        l += n;
        l += *l == '\n';
    }
    return 0;
}

/* Undoes the daemon's escaping (\t \n \r \\) for human eyes, in place. */
static void unescape(char *s, size_t *len)
{
    size_t o = 0;
    for (size_t i = 0; i < *len; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < *len) {
            char n = s[++i];
            c = n == 't' ? '\t' : n == 'n' ? '\n' : n == 'r' ? '\r' : n;
        }
        s[o++] = c;
    }
    *len = o;
}

/* Writes n bytes of message text (or a name) so that nothing in it can
 * act on the terminal or pass for another line: C0 controls and DEL, which
 * the daemon leaves as they are (ESC starts terminal escape sequences),
 * become \xHH in TSV and ^X for humans; C1 controls (U+0080..U+009F)
 * become \u00HH and U+FFFD. For humans a line break inside a message
 * continues on an indented "    | " line, never one that looks like the
 * start of another message. */
static void put_clean(const char *s, size_t n, int tsv)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!tsv && c == '\n') {
            fputs("\n    | ", stdout);
        } else if (!tsv && c == '\t') {
            fputc('\t', stdout);
        } else if (c < 0x20 || c == 0x7f) {
            if (tsv)
                printf("\\x%02x", c);
            else
                printf("^%c", c ^ 0x40);
        } else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            if (tsv)
                printf("\\u%04x", (unsigned char)s[i + 1]);
            else
                fputs("\xef\xbf\xbd", stdout);
            i++;
        } else {
            fputc(c, stdout);
        }
    }
}

/* ---- replies as lines of tab-separated fields ---- */

#define FIELDS_MAX 8

typedef void (*line_fn)(char **f, int n, void *ctx);

/* Calls fn for every line of a payload, split at tabs into at most
 * FIELDS_MAX NUL-terminated fields (the payload is cut up in place). */
static void each_line(char *p, size_t len, line_fn fn, void *ctx)
{
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && p[e] != '\n')
            e++;
        p[e] = '\0';
        char *f[FIELDS_MAX];
        int n = 0;
        f[n++] = p + i;
        for (size_t k = i; k < e && n < FIELDS_MAX; k++)
            if (p[k] == '\t') {
                p[k] = '\0';
                f[n++] = p + k + 1;
            }
        fn(f, n, ctx);
        i = e + 1;
    }
}

/* A field as the daemon escaped it, made inert (TSV). */
static void put_tsv(const char *s)
{
    put_clean(s, strlen(s), 1);
}

/* A field for human eyes: unescaped (in place), then made inert; a line
 * break continues on an indented "    | " line. */
static void put_human(char *s)
{
    size_t l = strlen(s);
    unescape(s, &l);
    put_clean(s, l, 0);
}

/* A field on one line for human eyes: tabs and line breaks become spaces. */
static void put_one_line(char *s)
{
    size_t l = strlen(s);
    unescape(s, &l);
    for (size_t i = 0; i < l; i++)
        if (s[i] == '\n' || s[i] == '\t' || s[i] == '\r')
            s[i] = ' ';
    put_clean(s, l, 0);
}

/* Unix seconds (a decimal field) as local "YYYY-MM-DD HH:MM", or in the
 * Jalali calendar and Persian digits under a Persian locale (datefmt.h). */
static const char *local_time(const char *field, char *buf, size_t cap)
{
    chp_datefmt f;
    chp_datefmt_default(&f, NULL);
    chp_datefmt_format(&f, (int64_t)strtoll(field, NULL, 10), CHP_DATE_FULL, buf, cap);
    return buf;
}

/* One inbox line, TIME CONV SENDER TEXT NEW ARRIVED, printed as the 4
 * TSV columns TIME CONV SENDER TEXT or for humans: the sender's time,
 * and when it came here much later (synced, carried), that time too. */
static void print_inbox_line(char **f, int n, void *ctx)
{
    int tsv = *(int *)ctx;
    if (n < 4)
        return; /* not an inbox line: a newer daemon? show nothing wrong */
    if (tsv) {
        for (int k = 0; k < 4; k++) {
            put_tsv(f[k]);
            fputc(k < 3 ? '\t' : '\n', stdout);
        }
        return;
    }
    char when[64], here[64];
    printf("%s", local_time(f[0], when, sizeof when));
    long long sent = strtoll(f[0], NULL, 10), arrived = n >= 6 ? strtoll(f[5], NULL, 10) : sent;
    if (arrived - sent > 300 || sent - arrived > 300)
        printf(_(" (arrived %s)"), local_time(f[5], here, sizeof here));
    fputs("  ", stdout);
    put_human(f[1]);
    fputs("  ", stdout);
    put_human(f[2]);
    fputs(": ", stdout);
    put_human(f[3]);
    fputc('\n', stdout);
}

static void print_inbox(char *p, size_t len, int tsv)
{
    each_line(p, len, print_inbox_line, &tsv);
}

/* Subscribes to events of topic on the daemon's PUB socket. */
static int subscribe(chp_ctl *c, const char *topic)
{
    if (chp_ctl_subscribe(c, topic) != CHP_OK)
        return cli_fail(1, _("cannot subscribe to chapard's events: %s"), chp_ctl_io_reason());
    return 0;
}

/* Drops the events that came: the wait only needs to know there were. */
static void drain_events(chp_ctl *c)
{
    char *topic, *body;
    size_t len;
    while (chp_ctl_event(c, &topic, &body, &len) == 1) {
        free(topic);
        free(body);
    }
}

/* The inbox request: [WHICH [SINCE]] (CONTROL.md). */
struct inbox_req {
    int only_new;
    char since[24]; /* unix seconds, "" for all */
    const char *args[2];
    size_t lens[2];
    int nargs;
};

static int inbox_call(chp_ctl *c, chp_ctl_answer *r, struct inbox_req *q)
{
    return cli_call(c, r, "inbox", q->nargs, q->args, q->lens);
}

/* Whether a reply holds what the wait is for: any line for --new (each
 * is new to it), else a line no earlier plain `inbox` returned. */
static int inbox_has_news(const struct inbox_req *q, const char *body)
{
    return q->only_new ? body[0] != '\0' : has_new(body);
}

/* Waits up to secs for a new message: subscribed first, then fetched
 * again, so one arriving in between is not missed; the subscription takes
 * effect asynchronously, so it also looks again every second. */
static int wait_new(chp_ctl *c, chp_ctl_answer *r, double secs, struct inbox_req *q)
{
    int rc = subscribe(c, "message");
    uint64_t end_ms = (uint64_t)(secs * 1000);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!rc) {
        chp_ctl_answer_free(r);
        if ((rc = inbox_call(c, r, q)) || !r->ok || inbox_has_news(q, r->body))
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t el = (uint64_t)(now.tv_sec - t0.tv_sec) * 1000 +
                      (uint64_t)((now.tv_nsec - t0.tv_nsec) / 1000000);
        if (el >= end_ms)
            break;
        uint64_t slice = end_ms - el < 1000 ? end_ms - el : 1000;
        if (chp_ctl_poll(c, (long)slice) > 0)
            drain_events(c);
    }
    return rc;
}

/* A local date and time "YYYY-MM-DD[ HH:MM[:SS]]" ('T' may join them);
 * 0 and *out, or -1. Dates that do not exist (02-30) are refused. */
static int parse_date(const char *s, time_t *out)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    s += n;
    if (*s == ' ' || *s == 'T') {
        int k = 0;
        if (sscanf(s + 1, "%2d:%2d%n", &h, &mi, &k) != 2 || k != 5)
            return -1;
        s += 1 + k;
        if (*s == ':') {
            if (sscanf(s + 1, "%2d%n", &se, &k) != 1 || k != 2)
                return -1;
            s += 1 + k;
        }
    }
    if (*s)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1 || tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d ||
        tm.tm_hour != h || tm.tm_min != mi || se > 59)
        return -1;
    *out = t;
    return 0;
}

/* --since TIME: unix seconds, a local date and time, or an age ("10m",
 * "2h", "1d", also s and w) counted back from now. 0, or 2 after one
 * line on stderr. */
static int parse_since(const char *s, unsigned long long *out)
{
    size_t digits = strspn(s, "0123456789");
    time_t now = time(NULL), t;
    if (digits && digits <= 12 && !s[digits]) {
        *out = strtoull(s, NULL, 10);
        return 0;
    }
    static const struct {
        char c;
        unsigned long long secs;
    } unit[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    if (digits && digits <= 6 && s[digits] && !s[digits + 1])
        for (size_t k = 0; k < sizeof unit / sizeof *unit; k++)
            if (s[digits] == unit[k].c) {
                unsigned long long age = strtoull(s, NULL, 10) * unit[k].secs;
                *out = age < (unsigned long long)now ? (unsigned long long)now - age : 0;
                return 0;
            }
    if (parse_date(s, &t) == 0 && t >= 0) {
        *out = (unsigned long long)t;
        return 0;
    }
    return cli_fail(2,
                    _("--since %s: expected unix seconds, a local time YYYY-MM-DD[ HH:MM[:SS]] or "
                      "an age like 10m, 2h, 1d"),
                    s);
}

int cli_cmd_inbox(const char *home, int argc, char **argv)
{
    static const char use[] = "inbox [--new] [--since TIME] [--wait SECONDS] [--tsv]";
    const char *wait_s = NULL, *since_s = NULL;
    char *pos[1], *end = NULL;
    int tsv = 0, npos;
    struct inbox_req q;
    memset(&q, 0, sizeof q);
    cli_opt o[] = {{"--wait", &wait_s, NULL},
                   {"--tsv", NULL, &tsv},
                   {"--new", NULL, &q.only_new},
                   {"--since", &since_s, NULL}};
    int rc = cli_parse_opts(argc, argv, o, 4, pos, 0, &npos, use);
    if (rc)
        return rc;
    double secs = wait_s ? strtod(wait_s, &end) : 0;
    if (wait_s && (end == wait_s || *end || !(secs >= 0 && secs <= 86400)))
        return cli_fail(2, _("--wait %s: expected seconds (0 to 86400)"), wait_s);
    unsigned long long since = 0;
    if (since_s && (rc = parse_since(since_s, &since)) != 0)
        return rc;
    snprintf(q.since, sizeof q.since, "%llu", since);
    q.args[0] = q.only_new ? "new" : "all";
    q.args[1] = q.since;
    q.lens[0] = strlen(q.args[0]);
    q.lens[1] = strlen(q.since);
    q.nargs = since_s ? 2 : q.only_new ? 1 : 0; /* no arguments: as older daemons know it */
    chp_ctl *c;
    chp_ctl_answer r = {0};
    if ((rc = cli_open(home, &c)) != 0)
        return rc;
    rc = inbox_call(c, &r, &q);
    if (!rc && r.ok && secs > 0 && !inbox_has_news(&q, r.body))
        rc = wait_new(c, &r, secs, &q);
    if (!rc && r.ok)
        print_inbox(r.body, r.len, tsv);
    else if (!rc)
        rc = cli_reply_error(&r);
    chp_ctl_answer_free(&r);
    chp_ctl_destroy(&c);
    return rc;
}

/* ---- history, conversations, outbox, nick, read ---- */

/* CONV: a contact name, a user ID or a #room. */
static int check_conv(const char *conv)
{
    return conv[0] == '#' ? cli_check_room(conv) : cli_check_who(conv);
}

/* A --limit or similar count: 1 to max; 0, or 2 after one line. */
static int parse_count(const char *opt_name, const char *s, unsigned long max)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || s[0] == '-' || v < 1 || v > max)
        return cli_fail(2, _("%s %s: expected a number from 1 to %lu"), opt_name, s, max);
    return 0;
}

/* How run_lines prints: each line goes to print, tsv says how. */
struct lines {
    line_fn print;
    int tsv;
};

static int print_lines(char *body, size_t len, void *ctx)
{
    struct lines *l = ctx;
    each_line(body, len, l->print, &l->tsv);
    return 0;
}

/* A request with string arguments whose ok payload goes to print (tsv
 * says how); the whole command. */
static int run_lines(const char *home, const char *cmd, int n, const char *const *args,
                     line_fn print, int tsv)
{
    size_t lens[MAX_ARGS];
    struct lines l = {print, tsv};
    for (int i = 0; i < n; i++)
        lens[i] = strlen(args[i]);
    return cli_run_with(home, cmd, n, args, lens, print_lines, &l);
}

/* TIME DIR SENDER STATE MSGID TEXT: as TSV, or "when  sender: text" with
 * the state of one's own messages in brackets. */
static void print_history_line(char **f, int n, void *ctx)
{
    if (n < 6)
        return;
    if (*(int *)ctx) {
        for (int k = 0; k < 6; k++) {
            put_tsv(f[k]);
            fputc(k < 5 ? '\t' : '\n', stdout);
        }
        return;
    }
    char when[64];
    printf("%s  ", local_time(f[0], when, sizeof when));
    put_human(f[2]);
    if (!strcmp(f[1], "out")) {
        fputs(" [", stdout);
        put_human(f[3]);
        fputc(']', stdout);
    }
    fputs(": ", stdout);
    put_human(f[5]);
    fputc('\n', stdout);
}

int cli_cmd_history(const char *home, int argc, char **argv)
{
    static const char use[] = "history NAME|#ROOM [--tsv] [--limit N]";
    const char *limit = NULL;
    char *pos[1];
    int tsv = 0, npos;
    cli_opt o[] = {{"--tsv", NULL, &tsv}, {"--limit", &limit, NULL}};
    int rc = cli_parse_opts(argc, argv, o, 2, pos, 1, &npos, use);
    if (!rc && npos != 1)
        rc = cli_fail(2, _("usage: chapar %s"), use);
    if (!rc)
        rc = check_conv(pos[0]);
    if (!rc && limit)
        rc = parse_count("--limit", limit, 1000000);
    if (rc)
        return rc;
    const char *a[2] = {pos[0], limit};
    return run_lines(home, "history", limit ? 2 : 1, a, print_history_line, tsv);
}

/* CONV KIND UNREAD LAST: as TSV, or "CONV (KIND)  N unread  last TIME". */
static void print_conv_line(char **f, int n, void *ctx)
{
    if (n < 4)
        return;
    if (*(int *)ctx) {
        for (int k = 0; k < 4; k++) {
            put_tsv(f[k]);
            fputc(k < 3 ? '\t' : '\n', stdout);
        }
        return;
    }
    char when[64];
    put_human(f[0]);
    printf(_(" (%s)  %s unread  "), !strcmp(f[1], "room") ? _("room") : _("contact"), f[2]);
    if (strtoll(f[3], NULL, 10) > 0)
        printf(_("last %s\n"), local_time(f[3], when, sizeof when));
    else
        fputs(_("no messages\n"), stdout);
}

int cli_cmd_conversations(const char *home, int argc, char **argv)
{
    char *pos[1];
    int tsv = 0, npos;
    cli_opt o[] = {{"--tsv", NULL, &tsv}};
    int rc = cli_parse_opts(argc, argv, o, 1, pos, 0, &npos, "conversations [--tsv]");
    return rc ? rc : run_lines(home, "conversations", 0, NULL, print_conv_line, tsv);
}

/* MSGID TO STATE TIME TEXT: the first three as the daemon gives them, TIME
 * as unix seconds (--tsv) or local time, TEXT (the first words) escaped
 * (--tsv) or on one line. */
static void print_outbox_line(char **f, int n, void *ctx)
{
    int tsv = *(int *)ctx;
    for (int k = 0; k < n && k < 5; k++) {
        char when[64];
        if (k)
            fputc('\t', stdout);
        if (k == 3 && !tsv)
            fputs(local_time(f[k], when, sizeof when), stdout);
        else if (k == 4 && !tsv)
            put_one_line(f[k]);
        else
            put_tsv(f[k]);
    }
    fputc('\n', stdout);
}

int cli_cmd_outbox(const char *home, int argc, char **argv)
{
    char *pos[1];
    int tsv = 0, npos;
    cli_opt o[] = {{"--tsv", NULL, &tsv}};
    int rc = cli_parse_opts(argc, argv, o, 1, pos, 0, &npos, "outbox [--tsv]");
    return rc ? rc : run_lines(home, "outbox", 0, NULL, print_outbox_line, tsv);
}

/* ID CONV SENDER NAME SIZE STATE TIME [MS] (PROTOCOL.md §18.8): as TSV
 * (the first seven only), or "NAME (SIZE) [voice note M:SS]  STATE
 * SENDER / CONV  TIME  ID" for people. */
static void print_file_line(char **f, int n, void *ctx)
{
    if (n < 7)
        return;
    if (*(int *)ctx) {
        for (int k = 0; k < 7; k++) {
            put_tsv(f[k]);
            fputc(k < 6 ? '\t' : '\n', stdout);
        }
        return;
    }
    char when[32];
    put_human(f[3]);
    printf(" (%s B)", f[4]);
    if (n > 7 && f[7][0]) { /* the daemon's duration of a voice note, in ms */
        char len[16];
        chp_audio_fmt((uint32_t)strtoul(f[7], NULL, 10), len, sizeof len);
        printf(_(" voice note %s"), len);
    }
    fputs("  ", stdout);
    put_human(f[5]);
    fputs("  ", stdout);
    put_human(f[2]);
    fputs(" / ", stdout);
    put_human(f[1]);
    printf("  %s  %s\n", local_time(f[6], when, sizeof when), f[0]);
}

int cli_cmd_files(const char *home, int argc, char **argv)
{
    char *pos[1];
    int tsv = 0, npos;
    cli_opt o[] = {{"--tsv", NULL, &tsv}};
    int rc = cli_parse_opts(argc, argv, o, 1, pos, 0, &npos, "files [--tsv]");
    struct lines l = {print_file_line, tsv};
    return rc ? rc : cli_run_with(home, "files", 0, NULL, NULL, print_lines, &l);
}

/* The nick: the second field of `id`. */
static int print_nick(char *body, size_t len, void *ctx)
{
    (void)len;
    (void)ctx;
    char *nick = strchr(body, '\t');
    if (!nick)
        return cli_fail(1, _("malformed reply from chapard"));
    nick++;
    nick[strcspn(nick, "\t\n")] = '\0';
    put_human(nick);
    fputc('\n', stdout);
    return 0;
}

/* `nick`: shows the nick (the second field of `id`); `nick NEW` sets it. */
int cli_cmd_nick(const char *home, int argc, char **argv)
{
    if (argc > 1)
        return cli_fail(2, _("usage: chapar nick [NEW]"));
    if (argc == 1) {
        if (chp_nick_check(argv[0], strlen(argv[0])) != CHP_OK)
            return cli_fail(2, _(CHP_NICK_BAD), CHP_NICK_MAX);
        return cli_run_str(home, "nick", 1, argv[0]);
    }
    return cli_run_with(home, "id", 0, NULL, NULL, print_nick, NULL);
}

int cli_cmd_read(const char *home, int argc, char **argv)
{
    if (argc != 1)
        return cli_fail(2, _("usage: chapar read NAME|#ROOM"));
    int rc = check_conv(argv[0]);
    return rc ? rc : cli_run_str(home, "read", 1, argv[0]);
}

/* ---- status and stop ---- */

/* bytes as "1.5 MiB" (binary units, as --quota takes them). */
static void human_size(unsigned long long v, char *out, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 6) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%llu B", v);
    else
        snprintf(out, cap, "%.1f %s", d, unit[u]);
}

/* seconds as "1d 2h 3m 4s", zero parts left out ("0s" for none). */
static void human_duration(unsigned long long s, char *out, size_t cap)
{
    static const struct {
        unsigned long long secs;
        char c;
    } part[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < 4; i++) {
        unsigned long long k = s / part[i].secs;
        s %= part[i].secs;
        if (k && o < cap)
            o += (size_t)snprintf(out + o, cap - o, "%s%llu%c", o ? " " : "", k, part[i].c);
    }
    if (!out[0])
        snprintf(out, cap, "0s");
}

/* One status line with the human reading of a size or a duration after
 * the raw number, which stays the value's first token. */
static void print_status_line(const char *l, size_t n)
{
    static const char *const sizes[] = {"bytes stored", "quota", "bytes received", "bytes sent"};
    static const char *const durations[] = {"uptime"};
    char extra[64] = "";
    const char *colon = memchr(l, ':', n);
    if (colon && colon + 2 < l + n && colon[1] == ' ') {
        size_t kl = (size_t)(colon - l), vl = n - kl - 2;
        char v[24];
        if (vl < sizeof v && strspn(colon + 2, "0123456789") == vl) {
            memcpy(v, colon + 2, vl);
            v[vl] = '\0';
            unsigned long long x = strtoull(v, NULL, 10);
            for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
                if (strlen(sizes[k]) == kl && !memcmp(l, sizes[k], kl))
                    human_size(x, extra, sizeof extra);
            for (size_t k = 0; k < sizeof durations / sizeof *durations; k++)
                if (strlen(durations[k]) == kl && !memcmp(l, durations[k], kl))
                    human_duration(x, extra, sizeof extra);
        }
    }
    fwrite(l, 1, n, stdout);
    if (extra[0])
        printf(" (%s)", extra);
    fputc('\n', stdout);
}

static int print_status(char *body, size_t len, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && body[e] != '\n')
            e++;
        print_status_line(body + i, e - i);
        i = e + 1;
    }
    return 0;
}

/* The status lines as Prometheus text (node/web/prom.c, as /metrics). */
static int print_prometheus(char *body, size_t len, void *ctx)
{
    (void)ctx;
    chp_buf b = {0};
    if (chp_prom_render(body, len, &b) != CHP_OK) {
        chp_buf_free(&b);
        return cli_fail(1, _("out of memory"));
    }
    fwrite(b.p, 1, b.len, stdout);
    chp_buf_free(&b);
    return 0;
}

int cli_cmd_status(const char *home, int argc, char **argv)
{
    char *pos[1];
    int raw = 0, prom = 0, npos;
    cli_opt o[] = {{"--raw", NULL, &raw}, {"--prometheus", NULL, &prom}};
    int rc = cli_parse_opts(argc, argv, o, 2, pos, 0, &npos, "status [--raw | --prometheus]");
    if (rc)
        return rc;
    if (raw && prom)
        return cli_fail(2, _("usage: chapar status [--raw | --prometheus]"));
    if (prom)
        return cli_run_with(home, "status", 0, NULL, NULL, print_prometheus, NULL);
    if (raw)
        return cli_run_str(home, "status", 0);
    return cli_run_with(home, "status", 0, NULL, NULL, print_status, NULL);
}

/* Whether a chapard still holds home's lock: it runs until the process
 * ends, so a free lock means the daemon is gone. */
static int daemon_holds_lock(const char *home)
{
    int fd = chp_home_lock(home);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return errno == EWOULDBLOCK;
}

/* Asks the daemon to shut down as on SIGTERM and waits until its lock is
 * free. The reply may be lost when the daemon closes its socket at once:
 * the lock says whether it stopped. */
int cli_cmd_stop(const char *home, int argc, char **argv)
{
    (void)argv;
    if (argc)
        return cli_fail(2, _("usage: chapar stop"));
    chp_ctl *c;
    int rc = cli_open(home, &c);
    if (rc)
        return rc;
    if ((rc = chp_ctl_send(c, NULL, chp_ctl_now_ms(), "stop", 0, NULL, NULL, 0)) != CHP_OK) {
        cli_fail(1, _("cannot reach chapard in %s: %s"), home,
                 rc == CHP_E_IO ? chp_ctl_io_reason() : chp_strerror(rc));
        chp_ctl_destroy(&c);
        return 1;
    }
    uint64_t waited = 0;
    int answered = 0;
    while (waited < STOP_TIMEOUT_MS) {
        chp_ctl_answer r;
        if (!answered && chp_ctl_recv(c, 20, &r) == 1) {
            answered = 1;
            rc = r.ok ? 0 : cli_reply_error(&r); /* an older daemon */
            chp_ctl_answer_free(&r);
            if (rc) {
                chp_ctl_destroy(&c);
                return rc;
            }
        } else if (answered) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
        waited += 20;
        if (!daemon_holds_lock(home))
            break;
    }
    chp_ctl_destroy(&c);
    if (daemon_holds_lock(home))
        return cli_fail(1, _("chapard in %s %s but still runs after %d s"), home,
                        answered ? _("accepted the stop") : _("did not answer the stop"),
                        STOP_TIMEOUT_MS / 1000);
    return 0;
}
