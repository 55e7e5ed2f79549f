/* test_tui_app.c - chapar-tui's app without curses or sockets: replies
 * move it through its phases (wizard, unlock, ready) and fill the state the
 * screen shows, events become notices and reloads, typed lines and
 * commands become control-API requests (passphrases marked secret), and
 * the node going away gives back what it had not confirmed. The control
 * API is a recorder, the clock one the test sets. */
#include "ui-tui/app.h"

#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* ---------------------------------------------------------------- the fakes */

typedef struct req {
    int kind;
    char tag[256];
    char cmd[32];
    int nargs;
    char args[3][256];
    int secret;
} req;

typedef struct fake {
    req r[128];
    size_t n;   /* requests recorded */
    int refuse; /* send fails with CHP_E_IO */
    int resets; /* reset calls */
    size_t pending;
    int overdue;    /* what overdue answers */
    uint64_t limit; /* the timeout overdue was last asked about */
    uint64_t mono, unix_s;
    int share[4]; /* /share-app: what the front end was asked (1 start, 0 stop) */
    size_t nshare;
    char share_listen[64]; /* the last start's --listen, "" for none */
} fake;

static int f_share(void *ctx, int start, const char *listen)
{
    fake *f = ctx;
    if (f->nshare < 4)
        f->share[f->nshare++] = start;
    if (start)
        snprintf(f->share_listen, sizeof f->share_listen, "%s", listen ? listen : "");
    return CHP_OK;
}

static int f_send(void *ctx, int kind, const char *tag, const char *cmd, int nargs,
                  const char *const *args, const size_t *lens, int secret_last)
{
    fake *f = ctx;
    if (f->refuse)
        return CHP_E_IO;
    assert_true(f->n < sizeof f->r / sizeof f->r[0]);
    assert_true(nargs >= 0 && nargs <= 3);
    req *r = &f->r[f->n++];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    snprintf(r->tag, sizeof r->tag, "%s", tag);
    snprintf(r->cmd, sizeof r->cmd, "%s", cmd);
    r->nargs = nargs;
    for (int i = 0; i < nargs; i++) {
        assert_int_equal(strlen(args[i]), lens[i]);
        snprintf(r->args[i], sizeof r->args[i], "%s", args[i]);
    }
    r->secret = secret_last;
    f->pending++;
    return CHP_OK;
}

static int f_reset(void *ctx)
{
    fake *f = ctx;
    f->resets++;
    f->pending = 0;
    return CHP_OK;
}

static size_t f_pending(void *ctx)
{
    return ((fake *)ctx)->pending;
}

static int f_overdue(void *ctx, uint64_t now, uint64_t timeout_ms)
{
    fake *f = ctx;
    (void)now;
    f->limit = timeout_ms;
    return f->overdue;
}

static uint64_t f_mono(void *ctx)
{
    return ((fake *)ctx)->mono;
}

static uint64_t f_unix(void *ctx)
{
    return ((fake *)ctx)->unix_s;
}

typedef struct fixture {
    fake f;
    chp_clock clock;
    chp_app *a;
    char home[64];
} fixture;

static fixture *fx_new(int spawned)
{
    fixture *x = calloc(1, sizeof *x);
    assert_non_null(x);
    x->f.mono = 100000;
    x->f.unix_s = 1700000000;
    x->clock = (chp_clock){&x->f, f_mono, f_unix};
    snprintf(x->home, sizeof x->home, "/tmp/chp_tui_app_XXXXXX");
    assert_non_null(mkdtemp(x->home));
    chp_app_io io = {.ctx = &x->f,
                     .send = f_send,
                     .reset = f_reset,
                     .pending = f_pending,
                     .overdue = f_overdue,
                     .share_ctx = &x->f,
                     .share = f_share};
    assert_int_equal(chp_app_new(x->home, spawned, &io, &x->clock, &x->a), CHP_OK);
    return x;
}

static void fx_free(fixture *x)
{
    char path[128];
    snprintf(path, sizeof path, "%s/chapard.log", x->home);
    unlink(path);
    rmdir(x->home);
    chp_app_destroy(&x->a);
    assert_null(x->a);
    free(x);
}

/* The request sent i-th from the end (0: the last). */
static const req *last(const fixture *x, size_t back)
{
    assert_true(x->f.n > back);
    return &x->f.r[x->f.n - 1 - back];
}

/* How many requests of cmd were sent from request from on. */
static int count_cmd(const fixture *x, size_t from, const char *cmd)
{
    int k = 0;
    for (size_t i = from; i < x->f.n; i++)
        k += !strcmp(x->f.r[i].cmd, cmd);
    return k;
}

/* The lines the screen shows now: the open conversation's, or the
 * notices held while there is none. */
static const chp_line *shown(const chp_app *a, size_t *n)
{
    int cur = chp_model_current(a->m);
    if (cur < 0)
        return chp_model_orphans(a->m, n);
    const chp_conv *c = chp_model_conv(a->m, (size_t)cur);
    *n = c->nlines;
    return c->lines;
}

/* 1 when a notice shown contains what. */
static int has_notice(const chp_app *a, const char *what)
{
    size_t n;
    const chp_line *l = shown(a, &n);
    for (size_t i = 0; i < n; i++)
        if (l[i].state == CHP_LINE_NOTICE && strstr(l[i].text, what))
            return 1;
    return 0;
}

static const char *last_notice(const chp_app *a)
{
    size_t n;
    const chp_line *l = shown(a, &n);
    assert_true(n > 0);
    return l[n - 1].text;
}

/* The input line as UTF-8, in a static buffer. */
static const char *input_of(const chp_app *a)
{
    static char buf[1024];
    size_t k = 0;
    const wchar_t *w = chp_input_text(a->in);
    for (size_t i = 0; i < chp_input_len(a->in) && k + 1 < sizeof buf; i++)
        buf[k++] = (char)w[i]; /* the tests type ASCII */
    buf[k] = 0;
    return buf;
}

/* Types s and presses Enter. */
static void enter(chp_app *a, const char *s)
{
    chp_input_clear(a->in);
    chp_input_insert_utf8(a->in, s);
    chp_app_submit(a);
}

static void reply(fixture *x, int kind, const char *tag, int ok, const char *payload)
{
    char *p = strdup(payload);
    assert_non_null(p);
    if (x->f.pending)
        x->f.pending--;
    chp_app_on_reply(x->a, kind, tag, ok, p, strlen(p));
    free(p);
}

static void event(fixture *x, const char *topic, const char *body)
{
    char *b = strdup(body);
    assert_non_null(b);
    chp_app_on_event(x->a, topic, b);
    free(b);
}

/* An app that is ready, with #lan and ali, #lan open and loaded. */
static fixture *ready(void)
{
    fixture *x = fx_new(0);
    chp_app_start(x->a);
    reply(x, CHP_R_ID, "", 1, "chp1me\tme\tfp000001");
    reply(x, CHP_R_CONVS, "", 1, "ali\tcontact\t2\t0\n#lan\troom\t0\t0\n");
    reply(x, CHP_R_HISTORY, "#lan", 1, "100\tin\tali\t-\tm1\thello\n");
    assert_int_equal(chp_model_current(x->a->m), chp_model_find(x->a->m, "#lan"));
    return x;
}

/* ---------------------------------------------------------------- replies */

/* /share-app: the front end starts the child; its URL shows in the status
 * bar; /share-app stop stops it; its end clears the bar. */
static void test_share_app(void **state)
{
    (void)state;
    fixture *x = ready();
    char bar[512];
    size_t n0 = x->f.n;
    enter(x->a, "/share-app");
    assert_int_equal(x->f.nshare, 1);
    assert_int_equal(x->f.share[0], 1);
    assert_int_equal(x->f.n, n0); /* nothing asked of the daemon: the child asks */
    enter(x->a, "/share-app");
    assert_int_equal(x->f.nshare, 1);
    assert_true(has_notice(x->a, "already sharing at (starting)"));
    chp_app_share_line(x->a, "http://192.168.1.5:7680/");
    chp_app_status_bar(x->a, bar, sizeof bar);
    assert_non_null(strstr(bar, "| sharing http://192.168.1.5:7680/"));
    assert_non_null(strstr(last_notice(x->a), "sharing Chapar at http://192.168.1.5:7680/"));
    assert_non_null(strstr(last_notice(x->a), "chp1me"));
    chp_app_share_line(x->a, "chapar: sharing chapar_0.1.0_amd64.deb ...");
    assert_string_equal(last_notice(x->a), "share-app: chapar: sharing chapar_0.1.0_amd64.deb ...");
    assert_string_equal(x->f.share_listen, "");
    enter(x->a, "/share-app later");
    assert_string_equal(last_notice(x->a), "usage: /share-app [stop | HOST:PORT]");
    enter(x->a, "/share-app stop");
    assert_int_equal(x->f.nshare, 2);
    assert_int_equal(x->f.share[1], 0);
    chp_app_share_ended(x->a, "exit 0");
    assert_string_equal(last_notice(x->a), "share-app stopped (exit 0)");
    chp_app_status_bar(x->a, bar, sizeof bar);
    assert_null(strstr(bar, "sharing"));
    enter(x->a, "/share-app stop");
    assert_string_equal(last_notice(x->a), "not sharing");
    /* a child that fails says why, and sharing ends */
    enter(x->a, "/share-app 127.0.0.1:0");
    assert_string_equal(x->f.share_listen, "127.0.0.1:0");
    chp_app_share_line(x->a,
                       "chapar: no chapar_*_amd64.deb in /x: run `make deb`, or give --files DIR");
    assert_non_null(strstr(last_notice(x->a), "make deb"));
    chp_app_share_ended(x->a, "exit 1");
    assert_false(x->a->sharing);
    fx_free(x);
}

static void test_id_makes_ready(void **state)
{
    (void)state;
    fixture *x = fx_new(0);
    char buf[512];
    assert_int_equal(x->a->ph, CHP_PH_CONNECTING);
    chp_app_status_bar(x->a, buf, sizeof buf);
    assert_string_equal(buf, " (no identity) | peers: ? | connecting to chapard");
    chp_app_start(x->a);
    assert_int_equal(x->f.n, 1);
    assert_string_equal(last(x, 0)->cmd, "id");
    assert_int_equal(last(x, 0)->kind, CHP_R_ID);

    reply(x, CHP_R_ID, "", 1, "chp1abc\tal\\ti\tfp123456");
    assert_int_equal(x->a->ph, CHP_PH_READY);
    assert_string_equal(x->a->nick, "al\ti"); /* unescaped */
    assert_string_equal(x->a->uid, "chp1abc");
    assert_string_equal(x->a->fp, "fp123456");
    assert_int_equal(x->f.n, 4);
    assert_string_equal(x->f.r[1].cmd, "conversations");
    assert_string_equal(x->f.r[2].cmd, "status");
    assert_string_equal(x->f.r[3].cmd, "contact-requests");

    reply(x, CHP_R_STATUS, "", 1, "peers connected: 3\nrelays connected: 1\nstore full: yes\n");
    assert_int_equal(x->a->peers, 3);
    assert_int_equal(x->a->relays, 1);
    assert_true(has_notice(x->a, "store is full"));
    chp_app_status_bar(x->a, buf, sizeof buf);
    assert_string_equal(buf, " al\ti (fp123456) | peers: 3 (relays 1) | store full");

    /* the first list opens #lan, wherever it is in the list */
    size_t n0 = x->f.n;
    reply(x, CHP_R_CONVS, "", 1, "ali\tcontact\t2\t0\n#lan\troom\t1\t0\n");
    assert_int_equal(chp_model_count(x->a->m), 2);
    assert_int_equal(chp_model_current(x->a->m), 1);
    assert_string_equal(x->f.r[n0].cmd, "history");
    assert_string_equal(x->f.r[n0].args[0], "#lan");
    assert_string_equal(x->f.r[n0].args[1], CHP_APP_HISTORY_MAX);
    assert_string_equal(x->f.r[n0 + 1].cmd, "read");
    assert_string_equal(x->f.r[n0 + 2].cmd, "rooms");
    char pb[64];
    assert_string_equal(chp_app_prompt(x->a, pb, sizeof pb), "[#lan] ");

    reply(x, CHP_R_HISTORY, "#lan", 1, "100\tin\tali\t-\tm1\tsalam\n");
    const chp_conv *c = chp_model_conv(x->a->m, 1);
    assert_string_equal(c->lines[c->nlines - 1].text, "salam");
    reply(x, CHP_R_HISTORY, "#lan", 0, "no such conversation");
    assert_string_equal(last_notice(x->a), "#lan: no such conversation");
    fx_free(x);
}

static void test_wizard(void **state)
{
    (void)state;
    fixture *x = fx_new(1);
    chp_app_start(x->a);
    reply(x, CHP_R_ID, "", 0, "no identity yet");
    assert_int_equal(x->a->ph, CHP_PH_ASK_NICK);
    assert_int_equal(x->a->no_identity, 1);
    assert_true(has_notice(x->a, "Welcome to Chapar"));
    assert_int_equal(last(x, 0)->kind, CHP_R_DISC_WIZ);
    assert_string_equal(last(x, 0)->cmd, "discovery");
    assert_int_equal(last(x, 0)->nargs, 0);
    reply(x, CHP_R_DISC_WIZ, "", 1, "off");
    assert_true(has_notice(x->a, "invisible on the local network"));
    assert_true(has_notice(x->a, "Choose a nickname"));

    enter(x->a, " ali"); /* a space in front passes for another name */
    assert_int_equal(x->a->ph, CHP_PH_ASK_NICK);
    assert_true(has_notice(x->a, "Not as a nickname"));
    enter(x->a, "ali");
    assert_int_equal(x->a->ph, CHP_PH_ASK_PASS);
    assert_true(chp_input_secret(x->a->in));
    char pb[64];
    assert_string_equal(chp_app_prompt(x->a, pb, sizeof pb), "passphrase (Enter: none): ");

    enter(x->a, "one");
    assert_int_equal(x->a->ph, CHP_PH_ASK_PASS2);
    enter(x->a, "two");
    assert_int_equal(x->a->ph, CHP_PH_ASK_PASS);
    assert_true(has_notice(x->a, "The two entries differ"));
    assert_int_equal(x->a->passlen, 0);

    size_t n0 = x->f.n;
    enter(x->a, "s3cret");
    enter(x->a, "s3cret");
    assert_int_equal(x->f.n, n0 + 1);
    const req *r = last(x, 0);
    assert_string_equal(r->cmd, "init");
    assert_int_equal(r->nargs, 3);
    assert_string_equal(r->args[0], "ali");
    assert_string_equal(r->args[1], "passphrase");
    assert_string_equal(r->args[2], "s3cret");
    assert_int_equal(r->secret, 1);
    assert_int_equal(x->a->ph, CHP_PH_CREATING);
    assert_false(chp_input_secret(x->a->in));
    /* the first entry is gone from memory */
    for (size_t i = 0; i < sizeof x->a->pass; i++)
        assert_int_equal(x->a->pass[i], 0);
    /* no passphrase is ever shown */
    assert_false(has_notice(x->a, "s3cret"));

    reply(x, CHP_R_INIT, "", 1, "chp1new");
    assert_true(has_notice(x->a, "Your ID (give it to friends): chp1new"));
    assert_string_equal(last(x, 0)->cmd, "id");
    assert_int_equal(x->a->no_identity, 0);
    fx_free(x);
}

static void test_wizard_without_passphrase(void **state)
{
    (void)state;
    fixture *x = fx_new(0);
    chp_app_start(x->a);
    reply(x, CHP_R_ID, "", 0, "no identity");
    enter(x->a, "/discovery off"); /* a command, not a nickname */
    assert_int_equal(x->a->ph, CHP_PH_ASK_NICK);
    assert_string_equal(last(x, 0)->cmd, "discovery");
    assert_string_equal(last(x, 0)->args[0], "off");
    assert_string_equal(last(x, 0)->tag, "off");
    reply(x, CHP_R_DISC, "off", 1, "saved");
    assert_true(has_notice(x->a, "You are invisible on the local network now"));

    enter(x->a, "ali");
    enter(x->a, "");
    assert_int_equal(x->a->ph, CHP_PH_ASK_NONE);
    assert_true(has_notice(x->a, "Without a passphrase"));
    enter(x->a, "nah");
    assert_int_equal(x->a->ph, CHP_PH_ASK_PASS);
    enter(x->a, "");
    enter(x->a, "none");
    const req *r = last(x, 0);
    assert_string_equal(r->cmd, "init");
    assert_int_equal(r->nargs, 2);
    assert_string_equal(r->args[1], "none");
    assert_int_equal(r->secret, 0);
    assert_int_equal(x->a->ph, CHP_PH_CREATING);
    /* another window made one meanwhile: use it */
    reply(x, CHP_R_INIT, "", 0, "an identity already exists");
    assert_true(has_notice(x->a, "(another window?)"));
    assert_string_equal(last(x, 0)->cmd, "id");
    /* a refusal of another kind goes back to the nickname */
    reply(x, CHP_R_INIT, "", 0, "disk full");
    assert_int_equal(x->a->ph, CHP_PH_ASK_NICK);
    assert_true(has_notice(x->a, "Could not create the identity: disk full"));
    fx_free(x);
}

static void test_unlock(void **state)
{
    (void)state;
    fixture *x = fx_new(0);
    chp_app_start(x->a);
    reply(x, CHP_R_ID, "", 0, "identity locked");
    assert_int_equal(x->a->ph, CHP_PH_ASK_UNLOCK);
    assert_true(chp_input_secret(x->a->in));
    size_t n0 = x->f.n;
    enter(x->a, ""); /* nothing typed: nothing sent */
    assert_int_equal(x->f.n, n0);
    enter(x->a, "/quit"); /* a passphrase may be "/quit" */
    assert_int_equal(x->a->quit, 0);
    const req *r = last(x, 0);
    assert_string_equal(r->cmd, "unlock");
    assert_string_equal(r->args[0], "/quit");
    assert_int_equal(r->secret, 1);
    assert_int_equal(x->a->ph, CHP_PH_UNLOCKING);
    reply(x, CHP_R_UNLOCK, "", 0, "wrong passphrase");
    assert_int_equal(x->a->ph, CHP_PH_ASK_UNLOCK);
    assert_string_equal(last_notice(x->a), "Not unlocked: wrong passphrase. Try again.");
    enter(x->a, "right");
    reply(x, CHP_R_UNLOCK, "", 1, "");
    assert_string_equal(last(x, 0)->cmd, "id");
    reply(x, CHP_R_ID, "", 1, "chp1me\tme\tfp");
    assert_int_equal(x->a->ph, CHP_PH_READY);

    /* a daemon without messaging: node commands only */
    fixture *y = fx_new(0);
    chp_app_start(y->a);
    reply(y, CHP_R_ID, "", 0, "relay mode");
    assert_int_equal(y->a->ph, CHP_PH_NO_USER);
    assert_string_equal(last(y, 0)->cmd, "status");
    n0 = y->f.n;
    enter(y->a, "/join #x");
    assert_int_equal(y->f.n, n0);
    assert_true(has_notice(y->a, "not ready yet"));
    enter(y->a, "/peer 10.0.0.1:7000");
    assert_string_equal(last(y, 0)->cmd, "peer-add");
    fx_free(y);
    fx_free(x);
}

/* ---------------------------------------------------------------- typed lines */

static void test_send_line(void **state)
{
    (void)state;
    fixture *x = ready();
    size_t n0 = x->f.n;
    enter(x->a, "salam");
    assert_int_equal(x->f.n, n0 + 1);
    const req *r = last(x, 0);
    assert_int_equal(r->kind, CHP_R_SEND);
    assert_string_equal(r->cmd, "send");
    assert_string_equal(r->tag, "#lan");
    assert_string_equal(r->args[0], "#lan");
    assert_string_equal(r->args[1], "salam");
    assert_int_equal(x->a->nunsent, 1);
    assert_string_equal(input_of(x->a), "");
    /* refused: back on the input line, to fix and send again */
    reply(x, CHP_R_SEND, "#lan", 0, "too long");
    assert_int_equal(x->a->nunsent, 0);
    assert_string_equal(input_of(x->a), "salam");
    assert_string_equal(last_notice(x->a), "not sent to #lan: too long");
    /* taken: the conversation reloads */
    chp_app_submit(x->a);
    reply(x, CHP_R_SEND, "#lan", 1, "");
    assert_string_equal(last(x, 0)->cmd, "history");
    assert_string_equal(last(x, 0)->args[0], "#lan");
    /* "//x" sends "/x"; a blank line sends nothing */
    enter(x->a, "//me waves");
    assert_string_equal(last(x, 0)->args[1], "/me waves");
    n0 = x->f.n;
    enter(x->a, "   ");
    assert_int_equal(x->f.n, n0);

    /* a socket that refuses: said, not lost silently */
    x->f.refuse = 1;
    enter(x->a, "lost?");
    assert_string_equal(last_notice(x->a), "cannot send 'send' to chapard: file system error");
    fx_free(x);
}

static void test_too_many_unsent(void **state)
{
    (void)state;
    fixture *x = ready();
    for (int i = 0; i < CHP_APP_UNSENT_MAX; i++)
        enter(x->a, "line");
    size_t n0 = x->f.n;
    enter(x->a, "one more");
    assert_int_equal(x->f.n, n0);
    assert_true(has_notice(x->a, "has not taken the last 16 lines yet"));
    assert_string_equal(input_of(x->a), "one more");
    fx_free(x);
}

static void test_commands(void **state)
{
    (void)state;
    fixture *x = ready();
    enter(x->a, "/join kitchen secret words");
    const req *r = last(x, 0);
    assert_string_equal(r->cmd, "join");
    assert_int_equal(r->nargs, 2);
    assert_string_equal(r->args[0], "#kitchen");
    assert_string_equal(r->args[1], "secret words");
    assert_int_equal(r->secret, 1);
    reply(x, CHP_R_JOIN, "#kitchen", 1, "abcd1234");
    assert_int_equal(chp_model_current(x->a->m), chp_model_find(x->a->m, "#kitchen"));
    assert_true(has_notice(x->a, "joined #kitchen (fingerprint abcd1234"));
    assert_string_equal(last(x, 0)->cmd, "conversations");
    assert_string_equal(x->a->want, "#kitchen");

    enter(x->a, "/join #pub");
    assert_int_equal(last(x, 0)->nargs, 1);
    assert_int_equal(last(x, 0)->secret, 0);

    enter(x->a, "/leave");
    assert_string_equal(last(x, 0)->cmd, "leave");
    assert_string_equal(last(x, 0)->args[0], "#kitchen");
    reply(x, CHP_R_LEAVE, "#kitchen", 1, "");
    assert_int_equal(chp_model_find(x->a->m, "#kitchen"), -1);

    enter(x->a, "/peer");
    assert_string_equal(last(x, 1)->cmd, "address");
    assert_string_equal(last(x, 0)->cmd, "peers");
    reply(x, CHP_R_LINES, "peers (key, state):", 1, "k1\tup\nk2\tdown");
    assert_true(has_notice(x->a, "peers (key, state):"));
    assert_string_equal(last_notice(x->a), "  k2 down");
    reply(x, CHP_R_LINES, "peers:", 1, "");
    assert_string_equal(last_notice(x->a), "  (none)");

    enter(x->a, "/add chp1xyz sara");
    assert_string_equal(last(x, 0)->cmd, "contact-add");
    assert_string_equal(last(x, 0)->args[1], "sara");
    reply(x, CHP_R_DONE, last(x, 0)->tag, 1, "");
    assert_string_equal(last_notice(x->a), "added sara: they see a contact request");

    enter(x->a, "/nick bob");
    assert_string_equal(last(x, 0)->cmd, "nick");
    reply(x, CHP_R_NICK, "bob", 1, "");
    assert_string_equal(last_notice(x->a), "you are now bob");
    assert_string_equal(last(x, 0)->cmd, "id");

    size_t n0 = x->f.n;
    enter(x->a, "/discovery maybe");
    assert_int_equal(x->f.n, n0);
    assert_string_equal(last_notice(x->a), "usage: /discovery [on|off]");
    enter(x->a, "/frobnicate");
    assert_string_equal(last_notice(x->a), "unknown command /frobnicate (try /help)");
    enter(x->a, "/nick");
    assert_string_equal(last_notice(x->a), "usage: /nick NAME");
    enter(x->a, "/help");
    assert_true(has_notice(x->a, "/msg WHO [TEXT]"));
    assert_true(has_notice(x->a, "/set [NAME VALUE]"));
    assert_int_equal(x->f.n, n0);

    /* /set: shown, changed, refused; nothing goes to chapard */
    x->a->prefs.env = NULL;
    enter(x->a, "/set bidi app");
    assert_int_equal(x->a->prefs.bidi, CHP_BIDI_APP);
    enter(x->a, "/set calendar jalali");
    enter(x->a, "/set digits persian");
    assert_string_equal(last_notice(x->a), "settings: bidi app, calendar jalali, digits persian");
    assert_true(x->a->prefs.date.jalali && x->a->prefs.date.persian);
    enter(x->a, "/set bidi terminal");
    assert_int_equal(x->a->prefs.bidi, CHP_BIDI_TERMINAL);
    enter(x->a, "/set digits roman");
    assert_non_null(strstr(last_notice(x->a), "usage: /set bidi auto|app|terminal"));
    assert_true(x->a->prefs.date.persian);
    enter(x->a, "/set digits");
    assert_string_equal(last_notice(x->a), "usage: /set [NAME VALUE]");
    enter(x->a, "/set");
    assert_string_equal(last_notice(x->a),
                        "settings: bidi terminal, calendar jalali, digits persian");
    assert_int_equal(x->f.n, n0);

    /* /msg opens a conversation that exists, and creates none on a typo */
    enter(x->a, "/msg ali");
    assert_int_equal(chp_model_current(x->a->m), chp_model_find(x->a->m, "ali"));
    enter(x->a, "/msg alli");
    assert_true(has_notice(x->a, "no conversation called alli"));
    assert_int_equal(chp_model_find(x->a->m, "alli"), -1);
    enter(x->a, "/msg sara hi there");
    assert_int_equal(last(x, 0)->kind, CHP_R_MSG);
    assert_string_equal(last(x, 0)->args[0], "sara");
    assert_string_equal(last(x, 0)->args[1], "hi there");
    reply(x, CHP_R_MSG, "sara", 1, "");
    assert_string_equal(x->a->want, "sara");
    assert_string_equal(last(x, 0)->cmd, "conversations");
    fx_free(x);
}

/* /bundle: an export is one request and its line; an import is followed
 * with bundle-status on the clock until it is done, then one notice. */
static void test_bundle(void **state)
{
    (void)state;
    fixture *x = ready();
    enter(x->a, "/bundle export /media/stick/out.bundle");
    assert_string_equal(last(x, 0)->cmd, "bundle-export");
    assert_int_equal(last(x, 0)->nargs, 1);
    assert_string_equal(last(x, 0)->args[0], "/media/stick/out.bundle");
    reply(x, CHP_R_LINES, "bundle:", 1,
          "exported 3 envelopes, 1200 bytes, to /media/stick/out.bundle");
    assert_string_equal(last_notice(x->a),
                        "  exported 3 envelopes, 1200 bytes, to /media/stick/out.bundle");

    enter(x->a, "/bundle import /media/stick/in.bundle");
    assert_string_equal(last(x, 0)->cmd, "bundle-import");
    assert_int_equal(last(x, 0)->nargs, 2);
    assert_string_equal(last(x, 0)->args[1], "");
    reply(x, CHP_R_BUNDLE, "", 1, "4");
    size_t n0 = x->f.n;
    chp_app_tick(x->a, x->f.mono); /* not yet due */
    assert_int_equal(count_cmd(x, n0, "bundle-status"), 0);
    x->f.mono += 300;
    chp_app_tick(x->a, x->f.mono);
    assert_int_equal(count_cmd(x, n0, "bundle-status"), 1);
    assert_string_equal(last(x, 0)->args[0], "4");
    reply(x, CHP_R_BUNDLE, "4", 1, "running 100 2000 1 0 0");
    x->f.mono += 300;
    chp_app_tick(x->a, x->f.mono);
    assert_int_equal(count_cmd(x, n0, "bundle-status"), 2);
    reply(x, CHP_R_BUNDLE, "4", 1, "done imported 2 new, 1 already held, 0 rejected");
    assert_true(has_notice(x->a, "bundle: imported 2 new, 1 already held, 0 rejected"));
    x->f.mono += 300;
    chp_app_tick(x->a, x->f.mono);
    assert_int_equal(count_cmd(x, n0, "bundle-status"), 2); /* finished: no more asking */

    enter(x->a, "/bundle import /x.bundle");
    reply(x, CHP_R_BUNDLE, "", 0, "wrong passphrase, or not a bundle");
    assert_string_equal(last_notice(x->a), "bundle: wrong passphrase, or not a bundle");
    enter(x->a, "/bundle eat /x");
    assert_string_equal(last_notice(x->a), "usage: /bundle export|import PATH");
    fx_free(x);
}

static void test_strangers_by_nick(void **state)
{
    (void)state;
    fixture *x = ready();
    reply(x, CHP_R_REQUESTS, "", 1,
          "chp1aaaa\tali2\taaaa1111\t1700000000\n"
          "chp1bbbb\tsam\tbbbb2222\t1700000000\nchp1cccc\tsam\tcccc3333\t1700000000\n");
    enter(x->a, "/accept ~ali2 Ali");
    const req *r = last(x, 0);
    assert_string_equal(r->cmd, "contact-accept");
    assert_string_equal(r->args[0], "chp1aaaa");
    assert_string_equal(r->args[1], "Ali");
    assert_string_equal(r->tag, "accepted ~ali2");
    enter(x->a, "/block ~ali2");
    assert_string_equal(last(x, 0)->cmd, "contact-block");
    assert_string_equal(last(x, 0)->args[0], "chp1aaaa");
    size_t n0 = x->f.n;
    enter(x->a, "/accept ~sam");
    assert_true(has_notice(x->a, "more than one contact request comes from someone called sam"));
    enter(x->a, "/id ~nobody");
    assert_true(has_notice(x->a, "~nobody sent you no contact request"));
    assert_int_equal(x->f.n, n0);
    enter(x->a, "/id");
    assert_int_equal(last(x, 0)->kind, CHP_R_IDSHOW);
    reply(x, CHP_R_IDSHOW, "", 1, "chp1me\tme\tfp000001");
    assert_true(has_notice(x->a, "your ID: chp1me"));
    assert_true(has_notice(x->a, "nick: me   fingerprint: fp000001"));
    fx_free(x);
}

static void test_wipe_and_quit(void **state)
{
    (void)state;
    fixture *x = ready();
    enter(x->a, "/wipe");
    assert_int_equal(x->a->ph, CHP_PH_CONFIRM_WIPE);
    char pb[64];
    assert_string_equal(chp_app_prompt(x->a, pb, sizeof pb), "wipe everything? type yes: ");
    size_t n0 = x->f.n;
    enter(x->a, "no");
    assert_int_equal(x->f.n, n0);
    assert_string_equal(last_notice(x->a), "not wiped");
    assert_int_equal(x->a->ph, CHP_PH_READY);
    enter(x->a, "/wipe");
    enter(x->a, "yes");
    assert_string_equal(last(x, 0)->cmd, "wipe");
    assert_string_equal(last(x, 0)->args[0], "yes");
    reply(x, CHP_R_WIPE, "", 0, "busy");
    assert_string_equal(last_notice(x->a), "not wiped: busy");
    assert_int_equal(x->a->quit, 0);
    reply(x, CHP_R_WIPE, "", 1, "");
    assert_int_equal(x->a->wiped, 1);
    assert_int_equal(x->a->quit, 1);

    fixture *y = ready();
    enter(y->a, "/quit");
    assert_int_equal(y->a->quit, 1);
    fx_free(y);
    fx_free(x);
}

static void test_switch_and_type(void **state)
{
    (void)state;
    fixture *x = ready(); /* ali 0, #lan 1 (open) */
    size_t n0 = x->f.n;
    chp_app_cycle(x->a, 1);
    assert_int_equal(chp_model_current(x->a->m), 0); /* wraps */
    assert_string_equal(x->f.r[n0].cmd, "history");
    assert_string_equal(x->f.r[n0].args[0], "ali");
    assert_string_equal(x->f.r[n0 + 1].cmd, "read");
    assert_int_equal(chp_model_conv(x->a->m, 0)->unread, 0);
    chp_app_cycle(x->a, -1);
    assert_int_equal(chp_model_current(x->a->m), 1);
    n0 = x->f.n;
    chp_app_select(x->a, 1); /* already open: nothing to load */
    chp_app_select(x->a, 7); /* none there */
    assert_int_equal(x->f.n, n0);
    assert_int_equal(chp_model_current(x->a->m), 1);

    /* a paste longer than the line: said once, not once per character */
    for (int i = 0; i < CHP_INPUT_MAX + 10; i++)
        chp_app_type(x->a, L'x');
    assert_int_equal(chp_input_len(x->a->in), CHP_INPUT_MAX);
    size_t n;
    const chp_line *l = shown(x->a, &n);
    int full = 0;
    for (size_t i = 0; i < n; i++)
        full += strstr(l[i].text, "the input line is full") != NULL;
    assert_int_equal(full, 1);

    chp_input_clear(x->a->in);
    chp_input_insert_utf8(x->a->in, "/jo");
    chp_app_complete(x->a);
    assert_string_equal(input_of(x->a), "/join ");
    fx_free(x);
}

/* Files: "~/" is $HOME for /file, Tab and /save; Tab with several names
 * lists them in the status bar; /files numbers by time, the newest last;
 * /save says where it wrote; a kept file's hint is /save, not the CLI. */
static void test_files(void **state)
{
    (void)state;
    fixture *x = ready();
    char path[256], bar[512], *old = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    static const char *const names[] = {"note-a.txt", "note-b.txt", "other"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", x->home, names[i]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fclose(f);
    }
    setenv("HOME", x->home, 1);

    enter(x->a, "/file ~/other");
    assert_string_equal(last(x, 0)->cmd, "send-file");
    snprintf(path, sizeof path, "%s/other", x->home);
    assert_string_equal(last(x, 0)->args[1], path);

    chp_input_clear(x->a->in);
    chp_input_insert_utf8(x->a->in, "/file ~/no");
    chp_app_complete(x->a);
    assert_string_equal(input_of(x->a), "/file ~/note-");
    assert_string_equal(x->a->hint, "note-a.txt  note-b.txt");
    chp_app_status_bar(x->a, bar, sizeof bar);
    assert_non_null(strstr(bar, " | note-a.txt  note-b.txt"));
    chp_input_insert_utf8(x->a->in, "b");
    chp_app_complete(x->a); /* one match: completed, no list */
    assert_string_equal(input_of(x->a), "/file ~/note-b.txt");
    assert_string_equal(x->a->hint, "");

    /* the node lists by time, the newest last; the UI numbers in that order */
    static const char list[] = "aa\t#lan\tali\tearly.txt\t5\tcomplete\t100\n"
                               "cc\t#lan\tali\tmiddle.txt\t5\tcomplete\t200\n"
                               "bb\t#lan\tali\tlate.txt\t5\tcomplete\t300\n";
    enter(x->a, "/files");
    assert_string_equal(last(x, 0)->cmd, "files");
    reply(x, CHP_R_FILES, "", 1, list);
    assert_true(has_notice(x->a, "1. early.txt (5 B)"));
    assert_true(has_notice(x->a, "2. middle.txt (5 B)"));
    assert_true(has_notice(x->a, "3. late.txt (5 B)"));

    enter(x->a, "/save 3 ~/kept.txt");
    reply(x, CHP_R_FILES, "", 1, list);
    assert_string_equal(last(x, 0)->cmd, "file-save");
    assert_string_equal(last(x, 0)->args[0], "bb");
    snprintf(path, sizeof path, "%s/kept.txt", x->home);
    assert_string_equal(last(x, 0)->args[1], path);
    reply(x, CHP_R_FILES, "save", 1, path);
    char want[300];
    snprintf(want, sizeof want, "saved to %s", path);
    assert_string_equal(last_notice(x->a), want);

    reply(x, CHP_R_HISTORY, "#lan", 1,
          "100\tin\tali\t-\tm9\t[file] a.txt (5 B) (kept: chapar file save "
          "00112233445566778899aabbccddeeff PATH) \xe2\x80\x94 look\n");
    size_t n;
    const chp_line *l = shown(x->a, &n);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |=
            !strcmp(l[i].text, "[file] a.txt (5 B) (kept: /files, then /save N) \xe2\x80\x94 look");
    assert_true(found);

    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", x->home, names[i]);
        unlink(path);
    }
    if (old)
        setenv("HOME", old, 1);
    free(old);
    fx_free(x);
}

/* ---------------------------------------------------------------- events */

static void test_events(void **state)
{
    (void)state;
    fixture *x = ready();
    size_t n0 = x->f.n;
    event(x, "message", "ali\tali\tm2");
    /* ali was selected while the list loaded (read), then #lan opened */
    assert_int_equal(chp_model_conv(x->a->m, 0)->unread, 1);
    event(x, "message", "ali\t*\tm2b"); /* the node's own line: no news */
    assert_int_equal(chp_model_conv(x->a->m, 0)->unread, 1);
    assert_int_equal(x->f.n, n0);
    event(x, "message", "#lan\tali\tm3");
    assert_string_equal(x->f.r[n0].cmd, "history");
    assert_string_equal(x->f.r[n0].args[0], "#lan");
    assert_string_equal(x->f.r[n0 + 1].cmd, "read");
    event(x, "message", "\tali\tm4"); /* no conversation: nothing */
    assert_int_equal(x->f.n, n0 + 2);

    event(x, "queued", "bob\tm5");
    assert_true(chp_model_find(x->a->m, "bob") >= 0);

    event(x, "request", "chp1dddd\tdana");
    assert_string_equal(last_notice(x->a), "contact request from ~dana (chp1dddd): /accept ~dana");
    assert_string_equal(last(x, 0)->cmd, "contact-requests");
    event(x, "request", "chp1eeee\t");
    assert_string_equal(last_notice(x->a), "contact request from ~? (chp1eeee): /accept chp1eeee");

    n0 = x->f.n;
    event(x, "contact", "dana\testablished");
    assert_string_equal(last_notice(x->a), "dana is now a contact");
    assert_int_equal(count_cmd(x, n0, "conversations"), 1);
    assert_int_equal(count_cmd(x, n0, "contact-requests"), 1);
    assert_int_equal(count_cmd(x, n0, "history"), 1);
    event(x, "contact", "dana\tblocked");
    assert_string_equal(last_notice(x->a), "contact dana: blocked");

    event(x, "peer", "up");
    assert_string_equal(last_notice(x->a), "a peer connected");
    assert_string_equal(last(x, 0)->cmd, "status");
    event(x, "peer", "down");
    assert_string_equal(last_notice(x->a), "a peer disconnected");

    /* a room joined elsewhere appears; the open one left: the next shows */
    event(x, "room", "#far\tjoined\tffff0000");
    int far = chp_model_find(x->a->m, "#far");
    assert_true(far >= 0);
    assert_string_equal(chp_model_conv(x->a->m, (size_t)far)->room_fp, "ffff0000");
    n0 = x->f.n;
    event(x, "room", "#lan\tleft");
    assert_int_equal(chp_model_find(x->a->m, "#lan"), -1);
    assert_int_equal(count_cmd(x, n0, "history"), 1);
    assert_int_equal(count_cmd(x, n0, "conversations"), 1);

    /* delivery marks move forward */
    int cur = chp_model_current(x->a->m);
    const char *name = chp_model_conv(x->a->m, (size_t)cur)->name;
    char conv[64];
    snprintf(conv, sizeof conv, "%s", name);
    reply(x, CHP_R_HISTORY, conv, 1,
          "200\tout\tme\tqueued\t0123456789abcdef0123456789abcdef\thi\n");
    x->a->dirty = 0;
    event(x, "state", "0123456789abcdef0123456789abcdef\tdelivered");
    const chp_conv *c = chp_model_conv(x->a->m, (size_t)cur);
    const chp_line *mine = NULL;
    for (size_t i = 0; i < c->nlines; i++)
        if (!strcmp(c->lines[i].msgid, "0123456789abcdef0123456789abcdef"))
            mine = &c->lines[i];
    assert_non_null(mine);
    assert_int_equal(mine->state, CHP_LINE_DELIVERED);
    assert_int_equal(x->a->dirty, 1);

    n0 = x->f.n;
    event(x, "nick", "");
    assert_string_equal(last(x, 0)->cmd, "id");
    event(x, "no-such-topic", "x");
    assert_int_equal(x->f.n, n0 + 1);
    fx_free(x);
}

static void test_events_before_ready(void **state)
{
    (void)state;
    fixture *x = fx_new(0);
    chp_app_start(x->a);
    size_t n0 = x->f.n;
    event(x, "message", "ali\tali\tm1");
    event(x, "queued", "ali\tm1");
    event(x, "room", "#x\tjoined\tffff");
    event(x, "nick", "");
    assert_int_equal(chp_model_count(x->a->m), 0);
    assert_int_equal(x->f.n, n0);
    /* a contact event still says so, before anything is loaded */
    event(x, "contact", "ali\testablished");
    assert_string_equal(last_notice(x->a), "ali is now a contact");
    assert_int_equal(x->f.n, n0);
    fx_free(x);
}

/* ---------------------------------------------------------------- node life */

static void test_timeout_gives_lines_back(void **state)
{
    (void)state;
    fixture *x = ready();
    x->a->next_status = x->f.mono + 100000; /* no periodic status in the way */
    enter(x->a, "first");
    enter(x->a, "second");
    chp_app_tick(x->a, x->f.mono);
    assert_int_equal(x->f.limit, CHP_APP_TIMEOUT_MS);
    assert_int_equal(x->a->away, 0);

    x->f.overdue = 1;
    size_t n0 = x->f.n;
    chp_app_tick(x->a, x->f.mono);
    assert_int_equal(x->a->away, 1);
    assert_int_equal(x->f.resets, 1);
    assert_int_equal(x->a->nunsent, 0);
    assert_true(has_notice(x->a, "is not answering for"));
    assert_true(has_notice(x->a, "did not confirm this line to #lan (it may have stopped): first"));
    assert_true(has_notice(x->a, "second (back on the input line)"));
    assert_string_equal(input_of(x->a), "second");
    assert_int_equal(x->a->ph, CHP_PH_READY); /* the prompt stays */
    /* reset left nothing pending: ask `id` at once, then every RETRY_MS */
    assert_int_equal(count_cmd(x, n0, "id"), 1);
    char buf[512];
    chp_app_status_bar(x->a, buf, sizeof buf);
    assert_non_null(strstr(buf, "| chapard not answering"));

    x->f.overdue = 0;
    n0 = x->f.n;
    chp_app_tick(x->a, x->f.mono + 1000);
    assert_int_equal(x->f.n, n0); /* `id` still pending */
    x->f.pending = 0;
    chp_app_tick(x->a, x->f.mono + CHP_APP_RETRY_MS);
    assert_int_equal(count_cmd(x, n0, "id"), 1);

    reply(x, CHP_R_ID, "", 1, "chp1me\tme\tfp000001");
    assert_int_equal(x->a->away, 0);
    fx_free(x);
}

static void test_slow_requests_and_status(void **state)
{
    (void)state;
    fixture *x = fx_new(1); /* a chapard just started for us */
    chp_app_start(x->a);
    chp_app_tick(x->a, x->f.mono + 1000);
    assert_int_equal(x->f.limit, CHP_APP_SLOW_MS);
    chp_app_tick(x->a, x->f.mono + 30000);
    assert_int_equal(x->f.limit, CHP_APP_TIMEOUT_MS);
    reply(x, CHP_R_ID, "", 0, "locked");
    enter(x->a, "pw");
    chp_app_tick(x->a, x->f.mono + 30000);
    assert_int_equal(x->f.limit, CHP_APP_SLOW_MS); /* unlocking runs Argon2id */
    /* unlock timing out: back to connecting */
    x->f.overdue = 1;
    chp_app_tick(x->a, x->f.mono + 90000);
    assert_int_equal(x->a->ph, CHP_PH_CONNECTING);
    x->f.overdue = 0;

    fixture *y = ready();
    size_t n0 = y->f.n;
    chp_app_tick(y->a, y->f.mono);
    assert_int_equal(count_cmd(y, n0, "status"), 1);
    chp_app_tick(y->a, y->f.mono + 1000);
    assert_int_equal(count_cmd(y, n0, "status"), 1);
    chp_app_tick(y->a, y->f.mono + CHP_APP_STATUS_MS);
    assert_int_equal(count_cmd(y, n0, "status"), 2);
    fx_free(y);
    fx_free(x);
}

static void write_log(const fixture *x, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/chapard.log", x->home);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_node_down_and_back(void **state)
{
    (void)state;
    fixture *x = fx_new(1);
    chp_app_start(x->a);
    reply(x, CHP_R_ID, "", 1, "chp1me\tme\tfp000001");
    reply(x, CHP_R_CONVS, "", 1, "#lan\troom\t0\t0\n");
    reply(x, CHP_R_STATUS, "", 1, "peers connected: 2\n");
    enter(x->a, "on its way");
    write_log(x, "12:00:00.123 info  up\n12:00:09.456 error disk \x1b[31mfull\n\n");

    int resets = x->f.resets;
    chp_app_node_down(x->a, x->f.mono, "chapard exited with status 1");
    assert_int_equal(x->f.resets, resets + 1);
    assert_int_equal(x->a->life.down, 1);
    assert_int_equal(x->a->peers, -1);
    assert_string_equal(last_notice(x->a),
                        "node down (chapard exited with status 1), restarting in 1 s");
    assert_string_equal(input_of(x->a), "on its way");
    char buf[512];
    chp_app_status_bar(x->a, buf, sizeof buf);
    assert_string_equal(buf, " me (fp000001) | node down, restarting");
    /* a second report changes nothing */
    size_t n0 = x->f.n;
    chp_app_node_down(x->a, x->f.mono, NULL);
    assert_int_equal(x->f.resets, resets + 1);
    /* nothing goes out while down, and what is typed stays */
    chp_app_tick(x->a, x->f.mono + 500);
    enter(x->a, "still here");
    assert_int_equal(x->f.n, n0);
    assert_true(has_notice(x->a, "the node is down: wait until it is restarted"));
    assert_string_equal(input_of(x->a), "still here");

    /* restarted: it did not come up, and its log says why (no escapes) */
    assert_true(chp_life_restart_due(&x->a->life, x->f.mono + 1000));
    chp_app_node_started(x->a, x->f.mono + 1000, 1);
    assert_string_equal(last(x, 0)->cmd, "id");
    chp_app_node_down(x->a, x->f.mono + 1500, "chapard exited with status 1");
    assert_string_equal(last_notice(x->a), "chapard's log says: disk ?[31mfull");

    /* up again: said, and reloaded once it says who it is */
    chp_app_node_started(x->a, x->f.mono + 5000, 1);
    x->f.mono += 5100;
    reply(x, CHP_R_ID, "", 1, "chp1me\tme\tfp000001");
    assert_true(has_notice(x->a, "node restarted"));
    assert_int_equal(x->a->life.down, 0);
    assert_string_equal(last(x, 0)->cmd, "contact-requests");
    assert_string_equal(last(x, 1)->cmd, "status");
    assert_string_equal(last(x, 2)->cmd, "conversations");
    assert_string_equal(x->a->want, "#lan");
    fx_free(x);
}

static void test_node_fails_at_start(void **state)
{
    (void)state;
    fixture *x = fx_new(1);
    chp_app_start(x->a);
    write_log(x, "12:00:00.123 error cannot listen on 0.0.0.0:7000\n");
    chp_app_node_down(x->a, x->f.mono, "chapard exited with status 1");
    assert_true(has_notice(x->a, "chapard stopped at once: cannot listen on 0.0.0.0:7000"));
    assert_true(has_notice(x->a, "/chapard.log) and start chapar-tui again"));
    assert_int_equal(x->a->life.restart_at, 0); /* it would fail the same way */

    /* a node not ours: nothing to restart, the window waits for it */
    fixture *y = fx_new(0);
    chp_app_start(y->a);
    reply(y, CHP_R_ID, "", 1, "chp1me\tme\tfp");
    chp_app_node_down(y->a, y->f.mono, NULL);
    assert_true(has_notice(y->a, "node down: start chapard --home"));
    chp_app_node_found(y->a);
    assert_string_equal(last(y, 0)->cmd, "id");
    reply(y, CHP_R_ID, "", 1, "chp1me\tme\tfp");
    assert_true(has_notice(y->a, "node is back"));
    fx_free(y);
    fx_free(x);
}

int main(void)
{
    if (!setlocale(LC_ALL, "C.UTF-8") && !setlocale(LC_ALL, "en_US.UTF-8")) {
        fprintf(stderr, "no UTF-8 locale\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_makes_ready),
        cmocka_unit_test(test_wizard),
        cmocka_unit_test(test_wizard_without_passphrase),
        cmocka_unit_test(test_unlock),
        cmocka_unit_test(test_send_line),
        cmocka_unit_test(test_too_many_unsent),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_bundle),
        cmocka_unit_test(test_strangers_by_nick),
        cmocka_unit_test(test_wipe_and_quit),
        cmocka_unit_test(test_switch_and_type),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_events_before_ready),
        cmocka_unit_test(test_timeout_gives_lines_back),
        cmocka_unit_test(test_slow_requests_and_status),
        cmocka_unit_test(test_node_down_and_back),
        cmocka_unit_test(test_node_fails_at_start),
        cmocka_unit_test(test_share_app),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
