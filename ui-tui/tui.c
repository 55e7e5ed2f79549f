/* tui.c - chapar-tui: the ncurses (wide-character) front end. One thread,
 * one zmq_poll over the terminal, a signal pipe and the two control-API
 * sockets; everything it shows lives in the curses-free model (model.h,
 * input.h), everything it asks goes through ctl.h. */
/* ncursesw's pkg-config flags bring _DEFAULT_SOURCE and _XOPEN_SOURCE */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#define NCURSES_WIDECHAR 1
#include "ui-tui/cmd.h"
#include "proto/crypto.h"
#include "ui-tui/ctl.h"
#include "node/common/home.h"
#include "node/common/version.h"
#include "ui-tui/input.h"
#include "proto/keys.h"
#include "ui-tui/life.h"
#include "ui-tui/model.h"
#include "ui-tui/wtext.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wctype.h>
#include <zmq.h>


#define TIMEOUT_MS    6000  /* a request the daemon has not answered by then */
#define UNSENT_MAX    16    /* lines on their way to chapard at once */
#define SLOW_MS       60000 /* init / unlock run Argon2id; a new daemon starts */
#define STATUS_MS     10000 /* peers count refresh, besides `peer` events */
#define RETRY_MS      3000  /* asking `id` again while the daemon is away */
#define PROBE_MS      1000  /* is a node we did not start still there? */
#define STOP_WAIT_MS  5000  /* for the chapard we stop on quit to exit */
#define LIST_W        18    /* conversation list width, when the screen has room */
#define HISTORY_LIMIT "500"
#define PASS_CAP      1024
#define NICK_BYTES    33 /* CHP_NICK_MAX (node/account.h) + NUL */

typedef enum phase {
    PH_CONNECTING, /* `id` sent, waiting */
    PH_ASK_NICK,   /* first start: the wizard */
    PH_ASK_PASS,
    PH_ASK_PASS2,
    PH_ASK_NONE,
    PH_CREATING, /* `init` sent */
    PH_ASK_UNLOCK,
    PH_UNLOCKING, /* `unlock` sent */
    PH_READY,
    PH_NO_USER, /* a relay, or a daemon without messaging: node commands only */
    PH_CONFIRM_WIPE,
} phase;

/* What a reply answers (chp_ctl_tag.kind). */
enum req {
    R_ID,
    R_INIT,
    R_UNLOCK,
    R_CONVS,
    R_HISTORY,
    R_READ,
    R_SEND,
    R_MSG, /* a /msg: like R_SEND, and on success opens the conversation */
    R_STATUS,
    R_JOIN,
    R_LEAVE,
    R_DONE,  /* ok: show ctx as a notice; error: show the error */
    R_LINES, /* ok: show each line of the payload as a notice, after ctx */
    R_IDSHOW,
    R_PEER, /* like R_DONE, without reloading the conversations */
    R_NICK,
    R_WIPE,
    R_ROOMS,
    R_DISC,     /* /discovery: ctx is the argument ("" asks) */
    R_DISC_WIZ, /* the wizard asks whether the node is visible */
    R_REQUESTS, /* pending contact requests: what "~nick" stands for */
};

typedef struct app {
    char home[4096];
    chp_model *m;
    chp_input *in;
    chp_ctl *ctl;
    phase ph;
    char nick[NICK_BYTES];
    char fp[64];
    char uid[160];
    int peers;           /* -1: unknown */
    int relays;          /* of them relays (reachability of stored mail) */
    char pass[PASS_CAP]; /* the first passphrase entry while the second is typed */
    size_t passlen;
    char wizard_nick[NICK_BYTES];
    int quit, wiped, dirty;
    int first_convs; /* the first conversation list selects #lan */
    char want[256];  /* select this conversation when the list next arrives */
    int meta;        /* ESC seen: the next key is Alt+key */
    int spawned;
    pid_t child;     /* the chapard we started and have not reaped; 0: none */
    chp_life life;   /* up, down, ours, restart backoff (life.h) */
    int no_identity; /* the node said it has no identity yet (the wizard runs) */
    int store_full;  /* the last status said `store full: yes` */
    uint64_t t_start, next_status, next_retry, next_probe;
    int away;      /* the daemon stopped answering */
    int answered;  /* the daemon has answered once: it is up */
    int full_said; /* "the input line is full" shown for this line */
    int reload;    /* the node is back: reload the conversations once it answers `id` */
    /* Lines sent and not answered yet, oldest first (replies come in
     * order): given back if chapard stops answering, never lost. */
    struct unsent {
        char conv[256];
        char *text;
    } unsent[UNSENT_MAX];
    size_t nunsent;
} app;

static int sigpipe_fd[2] = {-1, -1};
static volatile sig_atomic_t got_winch, got_term;

static void on_signal(int sig)
{
    int e = errno;
    if (sig == SIGWINCH)
        got_winch = 1;
    else if (sig != SIGCHLD) /* SIGCHLD only wakes the loop: it reaps */
        got_term = 1;
    if (sigpipe_fd[1] >= 0 && write(sigpipe_fd[1], "s", 1) < 0) {
        /* the pipe is full: a wakeup is pending anyway */
    }
    errno = e;
}

/* ---------------------------------------------------------------- notices */

static void notice(app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notice(app *a, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    chp_model_notice(a->m, (int64_t)time(NULL), buf);
    a->dirty = 1;
}

/* ---------------------------------------------------------------- requests */

/* Sends cmd with up to 3 string arguments; secret: the last is a
 * passphrase. */
static void request(app *a, int kind, const char *ctx, int secret, const char *cmd, int nargs,
                    const char *a0, const char *a1, const char *a2)
{
    const char *args[3] = {a0, a1, a2};
    size_t lens[3] = {0, 0, 0};
    chp_ctl_tag tag;
    for (int i = 0; i < nargs; i++)
        lens[i] = strlen(args[i]);
    memset(&tag, 0, sizeof tag);
    tag.kind = kind;
    snprintf(tag.ctx, sizeof tag.ctx, "%s", ctx ? ctx : "");
    int rc = chp_ctl_send(a->ctl, &tag, chp_ctl_now_ms(), cmd, nargs, args, lens, secret);
    if (rc != CHP_OK)
        notice(a, "cannot send '%s' to chapard: %s", cmd, chp_strerror(rc));
}

#define REQ0(a, k, ctx, cmd)       request(a, k, ctx, 0, cmd, 0, NULL, NULL, NULL)
#define REQ1(a, k, ctx, cmd, x)    request(a, k, ctx, 0, cmd, 1, x, NULL, NULL)
#define REQ2(a, k, ctx, cmd, x, y) request(a, k, ctx, 0, cmd, 2, x, y, NULL)

/* Sends a typed line to conv, keeping a copy until chapard answers. */
static void send_line(app *a, int kind, const char *conv, const char *text)
{
    char *copy = strdup(text);
    if (a->nunsent == UNSENT_MAX || !copy) {
        free(copy);
        notice(a, "chapard has not taken the last %zu lines yet: not sent, try again", a->nunsent);
        if (chp_input_len(a->in) == 0)
            chp_input_insert_utf8(a->in, text);
        return;
    }
    struct unsent *u = &a->unsent[a->nunsent++];
    snprintf(u->conv, sizeof u->conv, "%s", conv);
    u->text = copy;
    REQ2(a, kind, conv, "send", conv, text);
}

/* chapard answered the oldest line sent. */
static void line_answered(app *a)
{
    if (!a->nunsent)
        return;
    free(a->unsent[0].text);
    memmove(a->unsent, a->unsent + 1, --a->nunsent * sizeof a->unsent[0]);
}

/* chapard stopped answering: every line not answered is said to be
 * unsent, and the newest goes back on an empty input line. */
static void lines_unsent(app *a)
{
    for (size_t i = 0; i < a->nunsent; i++) {
        int back = i + 1 == a->nunsent && chp_input_len(a->in) == 0;
        notice(a, "chapard did not confirm this line to %s (it may have stopped): %s%s",
               a->unsent[i].conv, a->unsent[i].text, back ? " (back on the input line)" : "");
        if (back)
            chp_input_insert_utf8(a->in, a->unsent[i].text);
        free(a->unsent[i].text);
    }
    a->nunsent = 0;
}

static void open_conv(app *a)
{
    int cur = chp_model_current(a->m);
    if (cur < 0)
        return;
    const char *name = chp_model_conv(a->m, (size_t)cur)->name;
    REQ2(a, R_HISTORY, name, "history", name, HISTORY_LIMIT);
    REQ1(a, R_READ, name, "read", name);
}

static void select_conv(app *a, int i)
{
    int before = chp_model_current(a->m);
    chp_model_select(a->m, i);
    if (chp_model_current(a->m) != before)
        open_conv(a);
    a->dirty = 1;
}

static void set_phase(app *a, phase ph)
{
    a->ph = ph;
    chp_input_set_secret(a->in, ph == PH_ASK_PASS || ph == PH_ASK_PASS2 || ph == PH_ASK_UNLOCK);
    chp_input_clear(a->in);
    a->dirty = 1;
}

static void wipe_pass(app *a)
{
    chp_memzero(a->pass, sizeof a->pass);
    a->passlen = 0;
}

/* Identity known and unlocked: load the conversations. The daemon joined
 * #lan itself on the first unlock; someone who left it stays out. */
static void on_ready(app *a)
{
    set_phase(a, PH_READY);
    a->first_convs = 1;
    REQ0(a, R_CONVS, NULL, "conversations");
    REQ0(a, R_STATUS, NULL, "status");
    REQ0(a, R_REQUESTS, NULL, "contact-requests");
}

static int contains(const char *s, const char *what)
{
    return s && strstr(s, what) != NULL;
}

static void on_id(app *a, int ok, char *p)
{
    if (ok) {
        char *f[3];
        if (chp_split_tabs(p, f, 3) == 3) {
            snprintf(a->uid, sizeof a->uid, "%s", f[0]);
            char *nick = chp_unescape(f[1], strlen(f[1]));
            snprintf(a->nick, sizeof a->nick, "%s", nick ? nick : f[1]);
            free(nick);
            snprintf(a->fp, sizeof a->fp, "%s", f[2]);
        }
        a->no_identity = 0;
        if (a->ph != PH_READY) {
            on_ready(a);
        } else if (a->reload) {
            REQ0(a, R_CONVS, NULL, "conversations");
            REQ0(a, R_STATUS, NULL, "status");
            REQ0(a, R_REQUESTS, NULL, "contact-requests");
        }
        a->reload = 0;
        a->dirty = 1;
        return;
    }
    if (contains(p, "no identity")) {
        a->no_identity = 1;
        if (a->ph == PH_ASK_NICK || a->ph == PH_ASK_PASS || a->ph == PH_ASK_PASS2 ||
            a->ph == PH_ASK_NONE)
            return; /* the node came back while the wizard runs: go on with it */
        notice(a, "Welcome to Chapar. No identity lives in %s yet: let's make one.", a->home);
        /* whether others on this network can see the node, before anything else */
        REQ0(a, R_DISC_WIZ, NULL, "discovery");
        set_phase(a, PH_ASK_NICK);
    } else if (contains(p, "locked")) {
        notice(a, "Your identity is locked. Type its passphrase (Ctrl-C quits).");
        set_phase(a, PH_ASK_UNLOCK);
    } else {
        notice(a, "chapard: %s", p);
        notice(a, "No messaging here; node commands still work: /peer, /help, /quit.");
        set_phase(a, PH_NO_USER);
        REQ0(a, R_STATUS, NULL, "status");
    }
}

static void on_status(app *a, const char *p, size_t len)
{
    chp_status st;
    chp_status_parse(p, len, &st);
    if (st.peers >= 0)
        a->peers = st.peers;
    if (st.relays >= 0)
        a->relays = st.relays;
    if (st.store_full == 1 && !a->store_full)
        notice(a, "chapard's store is full: it refuses mail it carries for others until "
                  "some expires (a larger --quota helps)");
    if (st.store_full >= 0)
        a->store_full = st.store_full;
    a->dirty = 1;
}

/* The wizard's line on being seen: a node announces itself on the LAN by
 * default, and on a café or campus network that tells everyone there that
 * someone runs Chapar. on: the daemon's answer ("on", "off", or NULL when
 * it cannot say). */
static void say_visibility(app *a, const char *on)
{
    if (on && !strcmp(on, "off"))
        notice(a, "This node is invisible on the local network (no LAN beacons); "
                  "/discovery on lets Chapar users nearby find it.");
    else
        notice(a, "This node is visible on the local network: it announces itself by LAN "
                  "beacons. To be invisible: /discovery off (or chapard --no-discovery).");
}

static void on_discovery(app *a, const chp_ctl_tag *t, int ok, const char *p)
{
    if (!ok)
        notice(a, "discovery: %s", p);
    else if (!t->ctx[0])
        notice(a, "LAN discovery is %s: this node is %s on the local network (/discovery %s)", p,
               !strcmp(p, "on") ? "visible" : "invisible",
               !strcmp(p, "on") ? "off hides it" : "on shows it");
    else if (!strcmp(t->ctx, "off"))
        notice(a,
               "You are invisible on the local network now: no more LAN beacons (%s). "
               "Friends reach you by /peer ADDRESS.",
               p);
    else
        notice(a,
               "You are visible on the local network now: chapard announces itself by LAN "
               "beacons (%s).",
               p);
}

static void on_convs(app *a, const char *p, size_t len)
{
    int before = chp_model_current(a->m);
    if (chp_model_load_conversations(a->m, p, len) != CHP_OK)
        notice(a, "chapard sent a conversation list that does not parse");
    int want = -1;
    if (a->want[0])
        want = chp_model_find(a->m, a->want);
    else if (a->first_convs)
        want = chp_model_find(a->m, "#lan");
    a->want[0] = 0;
    a->first_convs = 0;
    if (want >= 0)
        chp_model_select(a->m, want);
    if (chp_model_current(a->m) != before || want >= 0)
        open_conv(a);
    REQ0(a, R_ROOMS, NULL, "rooms"); /* kinds and fingerprints for the titles */
    a->dirty = 1;
}

static void show_lines(app *a, const char *head, char *p)
{
    if (head[0])
        notice(a, "%s", head);
    int any = 0;
    for (char *line = strtok(p, "\n"); line; line = strtok(NULL, "\n")) {
        for (char *t = line; *t; t++)
            if (*t == '\t')
                *t = ' ';
        notice(a, "  %s", line);
        any = 1;
    }
    if (!any)
        notice(a, "  (none)");
}

static void node_back(app *a);

static void on_reply(app *a, const chp_ctl_tag *t, int ok, char *p, size_t len)
{
    a->away = 0;
    a->answered = 1;
    if (chp_life_answered(&a->life, chp_ctl_now_ms()))
        node_back(a);
    switch (t->kind) {
    case R_ID:
        on_id(a, ok, p);
        return;
    case R_INIT:
        if (ok) {
            a->no_identity = 0;
            notice(a, "Your identity is ready. Your ID (give it to friends): %s", p);
            REQ0(a, R_ID, NULL, "id");
        } else if (contains(p, "already exists")) {
            /* another window on this data dir was quicker: use its identity */
            notice(a, "An identity was just created in %s (another window?): using it.", a->home);
            REQ0(a, R_ID, NULL, "id");
        } else {
            notice(a, "Could not create the identity: %s", p);
            notice(a, "Choose a nickname.");
            set_phase(a, PH_ASK_NICK);
        }
        return;
    case R_UNLOCK:
        if (ok) {
            REQ0(a, R_ID, NULL, "id");
        } else {
            notice(a, "Not unlocked: %s. Try again.", p);
            set_phase(a, PH_ASK_UNLOCK);
        }
        return;
    case R_READ:
        return;
    case R_CONVS:
        if (ok)
            on_convs(a, p, len);
        else
            notice(a, "conversations: %s", p);
        return;
    case R_HISTORY:
        if (!ok)
            notice(a, "%s: %s", t->ctx, p);
        else if (chp_model_load_history(a->m, t->ctx, p, len) != CHP_OK)
            notice(a, "chapard sent a history that does not parse");
        a->dirty = 1;
        return;
    case R_SEND:
    case R_MSG:
        if (!ok && t->kind == R_SEND && a->nunsent && chp_input_len(a->in) == 0) {
            chp_input_insert_utf8(a->in, a->unsent[0].text); /* to fix and send again */
            a->dirty = 1;
        }
        line_answered(a);
        if (!ok) {
            notice(a, "not sent to %s: %s", t->ctx, p);
        } else if (t->kind == R_MSG) { /* open the conversation it went to */
            snprintf(a->want, sizeof a->want, "%s", t->ctx);
            REQ0(a, R_CONVS, NULL, "conversations");
        } else {
            REQ2(a, R_HISTORY, t->ctx, "history", t->ctx, HISTORY_LIMIT);
        }
        return;
    case R_STATUS:
        if (ok)
            on_status(a, p, len);
        return;
    case R_JOIN:
        if (!ok) {
            notice(a, "cannot join %s: %s", t->ctx, p);
            return;
        }
        /* open it now, so the notice lands in the room it is about */
        select_conv(a, chp_model_add(a->m, t->ctx));
        if (p[0])
            notice(a,
                   "joined %s (fingerprint %s: whoever sees the same fingerprint is in "
                   "the same room)",
                   t->ctx, p);
        else
            notice(a, "joined %s", t->ctx);
        snprintf(a->want, sizeof a->want, "%s", t->ctx);
        REQ0(a, R_CONVS, NULL, "conversations");
        return;
    case R_LEAVE:
        if (!ok) {
            notice(a, "cannot leave %s: %s", t->ctx, p);
            return;
        }
        chp_model_remove(a->m, t->ctx);
        notice(a, "left %s", t->ctx);
        open_conv(a);
        REQ0(a, R_CONVS, NULL, "conversations");
        return;
    case R_DONE:
        if (ok) {
            notice(a, "%s", t->ctx);
            REQ0(a, R_CONVS, NULL, "conversations");
        } else {
            notice(a, "error: %s", p);
        }
        return;
    case R_PEER:
        notice(a, ok ? "%s" : "peer not added: %s", ok ? t->ctx : p);
        return;
    case R_LINES:
        if (ok)
            show_lines(a, t->ctx, p);
        else
            notice(a, "error: %s", p);
        return;
    case R_IDSHOW:
        if (ok) {
            char *f[3];
            if (chp_split_tabs(p, f, 3) == 3) {
                notice(a, "your ID: %s", f[0]);
                notice(a, "nick: %s   fingerprint: %s", f[1], f[2]);
                notice(a, "/id NAME shows a contact's safety number: compare it with theirs.");
            }
        } else {
            notice(a, "error: %s", p);
        }
        return;
    case R_NICK:
        if (ok) {
            notice(a, "you are now %s", t->ctx);
            REQ0(a, R_ID, NULL, "id");
        } else {
            notice(a, "nick not changed: %s", p);
        }
        return;
    case R_WIPE:
        if (ok) {
            a->wiped = 1;
            a->quit = 1;
        } else {
            notice(a, "not wiped: %s", p);
        }
        return;
    case R_ROOMS:
        /* an older daemon's answer, or none: titles without kinds */
        if (ok && chp_model_load_rooms(a->m, p, len) == CHP_OK)
            a->dirty = 1;
        return;
    case R_DISC:
        on_discovery(a, t, ok, p);
        return;
    case R_DISC_WIZ:
        say_visibility(a, ok ? p : NULL);
        notice(a, "Choose a nickname (others see it next to your ID; 1 to 32 bytes).");
        return;
    case R_REQUESTS:
        if (ok && chp_model_load_requests(a->m, p, len) != CHP_OK)
            notice(a, "chapard sent a list of contact requests that does not parse");
        return;
    }
}

/* ---------------------------------------------------------------- events */

static void on_event(app *a, const char *topic, char *body)
{
    char *f[3];
    if (!strcmp(topic, "message")) {
        int nf = chp_split_tabs(body, f, 3);
        if (nf < 1 || a->ph != PH_READY)
            return;
        char *conv = chp_unescape(f[0], strlen(f[0]));
        if (!conv || !conv[0]) {
            free(conv);
            return;
        }
        /* a nick change (sender "*") is no news to count */
        int i = chp_model_on_message(a->m, conv, nf >= 2 ? f[1] : "");
        if (i >= 0 && i == chp_model_current(a->m)) {
            REQ2(a, R_HISTORY, conv, "history", conv, HISTORY_LIMIT);
            REQ1(a, R_READ, conv, "read", conv);
        }
        free(conv);
        a->dirty = 1;
    } else if (!strcmp(topic, "queued")) {
        /* sent from this window or another one on the same node */
        if (chp_split_tabs(body, f, 2) < 1 || a->ph != PH_READY)
            return;
        char *conv = chp_unescape(f[0], strlen(f[0]));
        int i = conv && conv[0] ? chp_model_add(a->m, conv) : -1;
        if (i >= 0 && i == chp_model_current(a->m))
            REQ2(a, R_HISTORY, conv, "history", conv, HISTORY_LIMIT);
        free(conv);
        a->dirty = 1;
    } else if (!strcmp(topic, "state")) {
        if (chp_split_tabs(body, f, 2) == 2 && chp_model_set_state(a->m, f[0], f[1]))
            a->dirty = 1;
    } else if (!strcmp(topic, "request")) {
        if (chp_split_tabs(body, f, 2) != 2)
            return;
        /* "~nick": not a contact's name, which the nick may equal */
        char *nick = chp_unescape(f[1], strlen(f[1]));
        int named = nick && nick[0];
        notice(a, "contact request from ~%s (%s): /accept %s%s", named ? nick : "?", f[0],
               named ? "~" : "", named ? nick : f[0]);
        free(nick);
        REQ0(a, R_REQUESTS, NULL, "contact-requests");
    } else if (!strcmp(topic, "contact")) {
        if (chp_split_tabs(body, f, 2) != 2)
            return;
        char *name = chp_unescape(f[0], strlen(f[0]));
        if (!strcmp(f[1], "established"))
            notice(a, "%s is now a contact", name ? name : "?");
        else
            notice(a, "contact %s: %s", name ? name : "?", f[1]);
        free(name);
        if (a->ph == PH_READY) {
            REQ0(a, R_CONVS, NULL, "conversations");
            REQ0(a, R_REQUESTS, NULL, "contact-requests");
            /* a stranger who became a contact shows by name from now on,
             * one who was blocked or removed as a stranger again */
            int cur = chp_model_current(a->m);
            if (cur >= 0) {
                const char *cn = chp_model_conv(a->m, (size_t)cur)->name;
                REQ2(a, R_HISTORY, cn, "history", cn, HISTORY_LIMIT);
            }
        }
    } else if (!strcmp(topic, "room")) {
        /* joined or left here or by another client (chapar join) */
        if (a->ph != PH_READY)
            return;
        int cur = chp_model_current(a->m);
        char *was = cur >= 0 ? strdup(chp_model_conv(a->m, (size_t)cur)->name) : NULL;
        chp_model_on_room(a->m, body, strlen(body));
        cur = chp_model_current(a->m);
        if (cur >= 0 && (!was || strcmp(was, chp_model_conv(a->m, (size_t)cur)->name)))
            open_conv(a); /* the open room was left: show the one selected now */
        free(was);
        REQ0(a, R_CONVS, NULL, "conversations"); /* the kind, and the room's place */
        a->dirty = 1;
    } else if (!strcmp(topic, "nick")) {
        if (a->ph == PH_READY)
            REQ0(a, R_ID, NULL, "id"); /* changed from another window: the status bar */
    } else if (!strcmp(topic, "peer")) {
        notice(a, "a peer %s", !strcmp(body, "up") ? "connected" : "disconnected");
        REQ0(a, R_STATUS, NULL, "status");
    }
}

/* ---------------------------------------------------------------- commands */

static void help(app *a)
{
    size_t n;
    const chp_cmd_spec *t = chp_cmd_table(&n);
    notice(a, "Commands (a line without / is sent to this conversation; //x sends /x):");
    for (size_t i = 0; i < n; i++)
        notice(a, "  %s  - %s", t[i].usage, t[i].help);
    notice(a, "Keys: Alt+1..9 / Ctrl-N / Ctrl-P switch, PgUp/PgDn scroll, Tab completes,");
    notice(a, "  Up/Down history, Ctrl-A/E home/end, Ctrl-W word, Ctrl-U/K line, Ctrl-C quit.");
}

/* WHO of a command as the daemon takes it: who itself, or for "~nick"
 * (how a stranger shows, and what Tab completes them to) the ID of the
 * request they sent, in buf. NULL after saying why when it names nobody
 * known. */
static const char *who_arg(app *a, const char *who, char *buf, size_t cap)
{
    if (who[0] != '~')
        return who;
    int r = chp_model_resolve_who(a->m, who, buf, cap);
    if (r == 0)
        notice(a,
               "%s sent you no contact request, and your node knows a stranger only by nick and "
               "fingerprint: ask them for their ID (chp1...), then /add ID NAME",
               who);
    else if (r < 0)
        notice(a,
               "more than one contact request comes from someone called %s: use the ID "
               "(/contacts lists them)",
               who + 1);
    return r == 1 ? buf : NULL;
}

static void run_command(app *a, chp_cmd *c)
{
    int cur = chp_model_current(a->m);
    const char *curname = cur >= 0 ? chp_model_conv(a->m, (size_t)cur)->name : NULL;
    char ctx[256], idbuf[160];
    const char *who = c->argc ? c->argv[0] : NULL;
    int ready = a->ph == PH_READY;
    switch (c->kind) {
    case CHP_CMD_TEXT:
        if (!c->text[0])
            return;
        break;
    case CHP_CMD_HELP:
        help(a);
        return;
    case CHP_CMD_QUIT:
        a->quit = 1;
        return;
    case CHP_CMD_UNKNOWN:
        notice(a, "unknown command %s (try /help)", c->argv[0]);
        return;
    case CHP_CMD_USAGE:
        notice(a, "usage: %s", c->text);
        return;
    default:
        break;
    }
    if (a->life.down) {
        notice(a, "the node is down: %s",
               a->life.restart_at ? "wait until it is restarted"
                                  : "start it again (chapard --home DIR), then try again");
        if (c->kind == CHP_CMD_TEXT && chp_input_len(a->in) == 0)
            chp_input_insert_utf8(a->in, c->text); /* not lost: back on the line */
        return;
    }
    switch (c->kind) {
    case CHP_CMD_TEXT:
        if (!ready || !curname) {
            notice(a, "not sent: %s", ready ? "no conversation open (/join #lan)" : "not ready");
            return;
        }
        send_line(a, R_SEND, curname, c->text);
        return;
    case CHP_CMD_DISCOVERY:
        if (c->argc && strcmp(c->argv[0], "on") && strcmp(c->argv[0], "off")) {
            notice(a, "usage: /discovery [on|off]");
            return;
        }
        request(a, R_DISC, c->argc ? c->argv[0] : "", 0, "discovery", c->argc,
                c->argc ? c->argv[0] : NULL, NULL, NULL);
        return;
    case CHP_CMD_PEER:
        if (c->argc == 1) {
            snprintf(ctx, sizeof ctx, "connecting to %.200s", c->argv[0]);
            request(a, R_PEER, ctx, 0, "peer-add", 1, c->argv[0], NULL, NULL);
        } else {
            REQ0(a, R_LINES, "your node's address (others /peer it):", "address");
            REQ0(a, R_LINES, "peers (key, state, direction, address, received, sent):", "peers");
        }
        return;
    default:
        break;
    }
    if (!ready) {
        notice(a, "not ready yet: only /peer, /discovery, /help and /quit work now");
        return;
    }
    if ((c->kind == CHP_CMD_MSG || c->kind == CHP_CMD_ACCEPT || c->kind == CHP_CMD_BLOCK ||
         c->kind == CHP_CMD_ID) &&
        c->argc && !(who = who_arg(a, c->argv[0], idbuf, sizeof idbuf)))
        return;
    switch (c->kind) {
    case CHP_CMD_MSG: {
        /* A conversation appears only once chapard took the message (or
         * already exists): a typo must not leave an empty one behind. */
        int i = chp_model_find(a->m, who);
        if (c->argc == 2)
            send_line(a, R_MSG, who, c->argv[1]);
        else if (i < 0)
            notice(
                a,
                "no conversation called %s: /add ID NAME adds a contact, /join #ROOM joins a room",
                c->argv[0]);
        if (i >= 0)
            select_conv(a, i);
        return;
    }
    case CHP_CMD_JOIN:
        request(a, R_JOIN, c->argv[0], c->argc == 2, "join", c->argc, c->argv[0], c->argv[1], NULL);
        return;
    case CHP_CMD_LEAVE: {
        const char *room = c->argc ? c->argv[0] : curname;
        if (!room || room[0] != '#') {
            notice(a, "usage: /leave #ROOM");
            return;
        }
        REQ1(a, R_LEAVE, room, "leave", room);
        return;
    }
    case CHP_CMD_ADD:
        snprintf(ctx, sizeof ctx, "added %.200s: they see a contact request", c->argv[1]);
        REQ2(a, R_DONE, ctx, "contact-add", c->argv[0], c->argv[1]);
        return;
    case CHP_CMD_ACCEPT:
        snprintf(ctx, sizeof ctx, "accepted %.200s", c->argv[0]);
        request(a, R_DONE, ctx, 0, "contact-accept", c->argc, who, c->argv[1], NULL);
        return;
    case CHP_CMD_BLOCK:
        snprintf(ctx, sizeof ctx, "blocked %.200s", c->argv[0]);
        REQ1(a, R_DONE, ctx, "contact-block", who);
        return;
    case CHP_CMD_CONTACTS:
        REQ0(a, R_LINES, "contacts (name, ID, state, fingerprint):", "contact-list");
        REQ0(a, R_LINES, "contact requests (ID, nick, fingerprint, time):", "contact-requests");
        return;
    case CHP_CMD_ID:
        if (c->argc)
            REQ1(a, R_LINES, "", "contact-show", who);
        else
            REQ0(a, R_IDSHOW, NULL, "id");
        return;
    case CHP_CMD_NICK:
        REQ1(a, R_NICK, c->argv[0], "nick", c->argv[0]);
        return;
    case CHP_CMD_WIPE:
        notice(a,
               "/wipe deletes your identity, contacts, messages and this node's store in "
               "%s. It cannot be undone.",
               a->home);
        set_phase(a, PH_CONFIRM_WIPE);
        return;
    default:
        return;
    }
}

/* Enter in each phase. */
static void submit(app *a)
{
    size_t len;
    a->full_said = 0;
    char *line = chp_input_take(a->in, &len);
    if (!line) {
        notice(a, "out of memory");
        return;
    }
    if (!chp_input_secret(a->in) && !strcmp(line, "/quit")) {
        a->quit = 1; /* also from the wizard's plain prompts */
        free(line);
        return;
    }
    phase ph = a->ph;
    if ((ph == PH_ASK_NICK || ph == PH_ASK_NONE) && line[0] == '/' && line[1] != '/')
        ph = PH_READY; /* a command, such as /discovery off, not a nickname */
    switch (ph) {
    case PH_ASK_NICK:
        if (len == 0 || len > NICK_BYTES - 1) {
            notice(a, "A nickname is 1 to %d bytes.", NICK_BYTES - 1);
        } else if (!chp_text_name_ok(line, len)) {
            notice(a, "Not as a nickname: no spaces at either end, no invisible or "
                      "direction-changing characters (they let one name pass for another).");
        } else {
            snprintf(a->wizard_nick, sizeof a->wizard_nick, "%s", line);
            notice(a,
                   "Nickname: %s. Now a passphrase: it locks your identity on this disk. "
                   "Press Enter alone for none.",
                   line);
            set_phase(a, PH_ASK_PASS);
        }
        break;
    case PH_ASK_PASS:
        if (len == 0) {
            notice(a, "Without a passphrase anyone who gets this disk can read your messages "
                      "and be you.");
            notice(a, "Type none to confirm, or Enter to choose a passphrase after all.");
            set_phase(a, PH_ASK_NONE);
        } else if (len >= sizeof a->pass) {
            notice(a, "That passphrase is too long (at most %zu bytes).", sizeof a->pass - 1);
        } else {
            memcpy(a->pass, line, len);
            a->passlen = len;
            set_phase(a, PH_ASK_PASS2);
        }
        break;
    case PH_ASK_PASS2:
        if (len == a->passlen && chp_memeq(line, a->pass, len)) {
            notice(a, "Creating your identity (a few seconds: the passphrase is stretched)...");
            request(a, R_INIT, NULL, 1, "init", 3, a->wizard_nick, "passphrase", line);
            set_phase(a, PH_CREATING);
        } else {
            notice(a, "The two entries differ. Type the passphrase again (Enter alone: none).");
            set_phase(a, PH_ASK_PASS);
        }
        wipe_pass(a);
        break;
    case PH_ASK_NONE:
        if (!strcmp(line, "none")) {
            notice(a, "Creating your identity without a passphrase...");
            REQ2(a, R_INIT, NULL, "init", a->wizard_nick, "none");
            set_phase(a, PH_CREATING);
        } else {
            notice(a, "Type a passphrase (Enter alone: none).");
            set_phase(a, PH_ASK_PASS);
        }
        break;
    case PH_ASK_UNLOCK:
        if (len) {
            notice(a, "Unlocking...");
            request(a, R_UNLOCK, NULL, 1, "unlock", 1, line, NULL, NULL);
            set_phase(a, PH_UNLOCKING);
        }
        break;
    case PH_CONFIRM_WIPE:
        if (!strcmp(line, "yes")) {
            REQ1(a, R_WIPE, NULL, "wipe", "yes");
            notice(a, "wiping...");
        } else {
            notice(a, "not wiped");
        }
        set_phase(a, PH_READY);
        break;
    default: {
        chp_cmd c;
        if (chp_cmd_parse(line, &c) == CHP_OK)
            run_command(a, &c);
        chp_cmd_fini(&c);
        break;
    }
    }
    chp_memzero(line, len);
    free(line);
    a->dirty = 1;
}

static void complete(app *a)
{
    size_t n, nn = 0, nc = chp_model_count(a->m);
    const chp_cmd_spec *t = chp_cmd_table(&n);
    const char *cmds[32];
    const char **names = calloc(nc + 600, sizeof *names), **keys = calloc(nc + 600, sizeof *keys);
    char(*bare)[96] = calloc(500, sizeof *bare); /* a name, "~nick" or an ID */
    if (!names || !keys || !bare) {
        free(names);
        free(keys);
        free(bare);
        return;
    }
    for (size_t i = 0; i < n && i < 32; i++)
        cmds[i] = t[i].name;
    /* Senders seen in this conversation (newest first), found by what the
     * screen shows, then every conversation name. */
    int cur = chp_model_current(a->m);
    if (cur >= 0) {
        const chp_conv *c = chp_model_conv(a->m, (size_t)cur);
        for (size_t i = c->nlines; i-- > 0 && nn < 500;) {
            /* a contact completes to its name, a stranger "~ali (jqn8znuw)"
             * to what /accept, /block, /id and /msg take for them */
            const chp_line *l = &c->lines[i];
            if (l->state == CHP_LINE_NOTICE ||
                !chp_model_sender_word(a->m, l->sender, bare[nn], sizeof bare[nn]))
                continue;
            const char *s = bare[nn];
            int dup = !s[0];
            for (size_t k = 0; k < nn && !dup; k++)
                dup = !strcmp(names[k], s);
            if (!dup) {
                keys[nn] = l->sender;
                names[nn++] = s;
            }
        }
    }
    for (size_t i = 0; i < nc; i++) {
        keys[nn] = names[nn] = chp_model_conv(a->m, i)->name;
        nn++;
    }
    chp_input_complete_keyed(a->in, cmds, n < 32 ? n : 32, names, keys, nn);
    free(names);
    free(keys);
    free(bare);
}

/* ---------------------------------------------------------------- drawing */

enum { C_OWN = 1, C_OTHER, C_NOTICE, C_MARK, C_BAR, C_STRANGER };

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

/* Draws UTF-8 text (sanitized) in at most maxw cells. */
static int put_s(const char *s, int maxw)
{
    size_t n;
    wchar_t *w = chp_wt_decode(s, strlen(s), &n);
    int used = 0;
    if (w) {
        chp_wt_sanitize(w, n);
        for (size_t i = 0; i < n; i++)
            if (w[i] == L'\n')
                w[i] = L' ';
        used = put_w(w, n, maxw);
        free(w);
    }
    return used;
}

static void draw_list(app *a, int h, int lw)
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
        int used = put_s(num, lw - 1);
        used += put_s(c->name, lw - 1 - used - uw);
        if (c->unread) {
            attron(A_BOLD);
            used += put_s(unread, lw - 1 - used);
            attroff(A_BOLD);
        }
        for (; used < lw - 1; used++)
            addch(' ');
        attroff(A_REVERSE);
    }
    for (int y = 0; y < h; y++)
        mvaddwstr(y, lw - 1, L"\u2502");
}

/* One line of the pane as wide text: "sender: text mark", "-!- text" for
 * the UI's notices, "-- text" for the node's own lines in a room (a nick
 * change). *sender_n and *mark_at say where the coloured parts are. */
static wchar_t *compose(const app *a, const chp_line *l, size_t *n, size_t *sender_n,
                        size_t *mark_at)
{
    const char *mark = l->state == CHP_LINE_QUEUED      ? " \u25cb"
                       : l->state == CHP_LINE_SENT      ? " \u2713"
                       : l->state == CHP_LINE_DELIVERED ? " \u2713\u2713"
                                                        : "";
    int plain = l->state == CHP_LINE_NOTICE || l->state == CHP_LINE_SYSTEM;
    const char *sender = l->state == CHP_LINE_NOTICE   ? "-!-"
                         : l->state == CHP_LINE_SYSTEM ? "--"
                                                       : l->sender;
    if (!plain && l->state != CHP_LINE_IN && !sender[0])
        sender = a->nick;
    size_t need = strlen(sender) + strlen(l->text) + strlen(mark) + 4;
    char *s = malloc(need);
    if (!s)
        return NULL;
    snprintf(s, need, "%s%s%s%s", sender, plain ? " " : ": ", l->text, mark);
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

static void draw_row(const wchar_t *w, size_t a0, size_t b0, size_t sender_n, size_t mark_at,
                     const chp_line *l, int maxw)
{
    /* three parts: [a0, sender_n) sender, [.., mark_at) text, rest mark */
    size_t cuts[4] = {a0, sender_n, mark_at, b0};
    int attrs[3] = {0, 0, COLOR_PAIR(C_MARK)};
    line_attrs(l, &attrs[0], &attrs[1]);
    int used = 0;
    for (int p = 0; p < 3; p++) {
        size_t s = cuts[p] < a0 ? a0 : cuts[p], e = cuts[p + 1] > b0 ? b0 : cuts[p + 1];
        if (p == 2)
            e = b0;
        if (s >= e)
            continue;
        attron(attrs[p]);
        used += put_w(w + s, e - s, maxw - used);
        attroff(attrs[p]);
    }
}

static void draw_pane(app *a, int x0, int h, int pw)
{
    for (int y = 0; y < h; y++) {
        move(y, x0);
        clrtoeol();
    }
    int cur = chp_model_current(a->m);
    const chp_line *lines;
    size_t nlines;
    chp_conv *conv = NULL;
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
        /* the title: which room this is, and (fingerprint) which of the
         * rooms of that name, so a mistyped passphrase shows */
        char title[512];
        chp_model_title(a->m, (size_t)cur, title, sizeof title);
        move(0, x0);
        attron(A_BOLD | A_UNDERLINE);
        put_s(title, pw - 1);
        attroff(A_BOLD | A_UNDERLINE);
        top = 1;
    }
    size_t skip = conv ? conv->scroll : 0, rows_seen = 0;
    int y = h - 1;
    static size_t starts[4096];
    for (size_t i = nlines; i-- > 0 && y >= top;) {
        const chp_line *l = &lines[i];
        size_t n, sn, ma;
        wchar_t *w = compose(a, l, &n, &sn, &ma);
        if (!w)
            continue;
        size_t rows = chp_wt_wrap(w, n, tw, starts, 4096);
        if (rows > 4096)
            rows = 4096;
        for (size_t r = rows; r-- > 0 && y >= top;) {
            rows_seen++;
            if (skip) {
                skip--;
                continue;
            }
            size_t next = r + 1 < rows ? starts[r + 1] : n;
            size_t end = chp_wt_row_end(w, starts[r], next);
            move(y, x0);
            if (r == 0) {
                char ts[16];
                time_t t = (time_t)l->time;
                struct tm tm;
                localtime_r(&t, &tm);
                strftime(ts, sizeof ts, "%H:%M ", &tm);
                attron(A_DIM);
                addstr(ts);
                attroff(A_DIM);
            } else {
                addstr("      ");
            }
            draw_row(w, starts[r], end, sn, ma, l, tw);
            y--;
        }
        free(w);
    }
    /* Scrolled further back than there is: pull the view down next time. */
    if (conv && y >= top && conv->scroll > 0) {
        size_t over = (size_t)(y - top) + 1;
        conv->scroll = conv->scroll > over ? conv->scroll - over : 0;
        a->dirty = 1;
    }
    if (conv && conv->scroll) {
        attron(A_REVERSE);
        mvaddstr(top, x0 + pw - 12, " -- more -- ");
        attroff(A_REVERSE);
    }
}

static const char *prompt_of(const app *a, char *buf, size_t cap)
{
    int cur = chp_model_current(a->m);
    switch (a->ph) {
    case PH_ASK_NICK:
        return "nickname: ";
    case PH_ASK_PASS:
        return "passphrase (Enter: none): ";
    case PH_ASK_PASS2:
        return "passphrase again: ";
    case PH_ASK_NONE:
        return "type none to confirm: ";
    case PH_ASK_UNLOCK:
        return "passphrase: ";
    case PH_CONFIRM_WIPE:
        return "wipe everything? type yes: ";
    case PH_CREATING:
    case PH_UNLOCKING:
        return "wait... ";
    default:
        snprintf(buf, cap, "[%s] ", cur >= 0 ? chp_model_conv(a->m, (size_t)cur)->name : "-");
        return buf;
    }
}

static void draw(app *a)
{
    int H = LINES, W = COLS;
    if (H < 3 || W < 10) {
        erase();
        mvaddstr(0, 0, "too small");
        refresh();
        return;
    }
    int lw = W >= 60 ? LIST_W : 0, body = H - 2;
    if (lw)
        draw_list(a, body, lw);
    draw_pane(a, lw, body, W - lw);

    /* status bar */
    char bar[512], peers[32];
    if (a->peers >= 0 && a->relays > 0)
        snprintf(peers, sizeof peers, "%d (relays %d)", a->peers, a->relays);
    else if (a->peers >= 0)
        snprintf(peers, sizeof peers, "%d", a->peers);
    else
        snprintf(peers, sizeof peers, "?");
    const char *state = a->away                  ? " | chapard not answering"
                        : a->ph == PH_CONNECTING ? " | connecting to chapard"
                        : a->ph == PH_NO_USER    ? " | node only"
                                                 : "";
    char who[160];
    snprintf(who, sizeof who, " %s%s%s%s", a->nick[0] ? a->nick : "(no identity)",
             a->fp[0] ? " (" : "", a->fp, a->fp[0] ? ")" : "");
    if (a->life.down) /* no peers to count: the numbers of the dead node would lie */
        snprintf(bar, sizeof bar, "%s | node down%s", who,
                 a->life.restart_at ? ", restarting" : "");
    else
        snprintf(bar, sizeof bar, "%s | peers: %s%s%s", who, peers, state,
                 a->store_full ? " | store full" : "");
    attron(COLOR_PAIR(C_BAR) | A_REVERSE);
    move(H - 2, 0);
    int used = put_s(bar, W);
    for (; used < W; used++)
        addch(' ');
    attroff(COLOR_PAIR(C_BAR) | A_REVERSE);

    /* input line */
    char pb[300];
    const char *prompt = prompt_of(a, pb, sizeof pb);
    move(H - 1, 0);
    clrtoeol();
    attron(A_BOLD);
    int pw = put_s(prompt, W / 2);
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
        wchar_t *w = malloc((len - first + 1) * sizeof *w);
        if (w) {
            memcpy(w, text + first, (len - first) * sizeof *w);
            chp_wt_sanitize(w, len - first);
            put_w(w, len - first, W - pw);
            free(w);
        }
    }
    move(H - 1, pw + col < W ? pw + col : W - 1);
    refresh();
}

/* ---------------------------------------------------------------- keys */

static void on_key(app *a, int type, wint_t k)
{
    int meta = a->meta;
    a->meta = 0;
    a->dirty = 1;
    if (type == KEY_CODE_YES) {
        switch (k) {
        case KEY_LEFT:
            chp_input_left(a->in);
            break;
        case KEY_RIGHT:
            chp_input_right(a->in);
            break;
        case KEY_HOME:
            chp_input_home(a->in);
            break;
        case KEY_END:
            chp_input_end(a->in);
            break;
        case KEY_BACKSPACE:
            chp_input_backspace(a->in);
            break;
        case KEY_DC:
            chp_input_delete(a->in);
            break;
        case KEY_UP:
            chp_input_history_prev(a->in);
            break;
        case KEY_DOWN:
            chp_input_history_next(a->in);
            break;
        case KEY_PPAGE:
            chp_model_scroll(a->m, LINES / 2, (size_t)1 << 20);
            break;
        case KEY_NPAGE:
            chp_model_scroll(a->m, -(LINES / 2), (size_t)1 << 20);
            break;
        case KEY_ENTER:
            submit(a);
            break;
        case KEY_RESIZE:
            got_winch = 1;
            break;
        default:
            break;
        }
        return;
    }
    if (meta && k >= L'0' && k <= L'9') {
        select_conv(a, k == L'0' ? 9 : (int)(k - L'1'));
        return;
    }
    switch (k) {
    case 27:
        a->meta = 1;
        return;
    case L'\r':
    case L'\n':
        submit(a);
        return;
    case L'\t':
        complete(a);
        return;
    case 127:
    case 8:
        chp_input_backspace(a->in);
        return;
    case 1:
        chp_input_home(a->in);
        return;
    case 5:
        chp_input_end(a->in);
        return;
    case 2:
        chp_input_left(a->in);
        return;
    case 6:
        chp_input_right(a->in);
        return;
    case 4:
        chp_input_delete(a->in);
        return;
    case 23:
        chp_input_word_delete(a->in);
        return;
    case 21:
        chp_input_kill_start(a->in);
        return;
    case 11:
        chp_input_kill_end(a->in);
        return;
    case 14: /* Ctrl-N */
        if (chp_model_count(a->m))
            select_conv(a, (int)(((size_t)chp_model_current(a->m) + 1) % chp_model_count(a->m)));
        return;
    case 16: /* Ctrl-P */
        if (chp_model_count(a->m)) {
            int c = chp_model_current(a->m);
            select_conv(a, c <= 0 ? (int)chp_model_count(a->m) - 1 : c - 1);
        }
        return;
    case 12: /* Ctrl-L */
        clearok(curscr, TRUE);
        return;
    case 3: /* Ctrl-C */
        a->quit = 1;
        return;
    default:
        if (chp_input_insert(a->in, (wchar_t)k) == CHP_E_OVERFLOW && !a->full_said) {
            notice(a, "the input line is full (%d characters): the rest was not taken",
                   CHP_INPUT_MAX);
            a->full_said = 1; /* once per line, not once per pasted character */
        }
    }
}

/* ---------------------------------------------------------------- main */

static void fcntl_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void usage(FILE *f)
{
    size_t n;
    const chp_cmd_spec *t = chp_cmd_table(&n);
    fprintf(f, "usage: chapar-tui [--home DIR]\n"
               "The Chapar terminal UI. Talks to the chapard of DIR (default $CHAPAR_HOME,\n"
               "$XDG_DATA_HOME/chapar, ~/.local/share/chapar); starts one in the background\n"
               "when none runs (log in DIR/chapard.log), and walks you through creating an\n"
               "identity on first start. Opens in #lan: type a line and Enter posts it.\n"
               "\n"
               "options:\n"
               "  --home DIR      data dir\n"
               "  --help          this text\n"
               "  --version       print the version\n"
               "\n"
               "environment:\n"
               "  CHAPARD_ARGS    extra words for a chapard this program starts,\n"
               "                  e.g. \"--no-discovery --listen 127.0.0.1:0\"\n"
               "\n"
               "keys:\n"
               "  Enter           send the line / run the command\n"
               "  Alt+1..9, Alt+0 go to conversation 1..9, 10\n"
               "  Ctrl-N, Ctrl-P  next / previous conversation\n"
               "  PgUp, PgDn      scroll the messages\n"
               "  Tab             complete a command, a name, or after ~ a stranger\n"
               "                  (again: next match)\n"
               "  Left, Right, Home, End (Ctrl-B, Ctrl-F, Ctrl-A, Ctrl-E)  move\n"
               "  Backspace, Delete (Ctrl-D)  delete a character\n"
               "  Ctrl-W          delete the word before the cursor\n"
               "  Ctrl-U, Ctrl-K  delete to the start / to the end of the line\n"
               "  Up, Down        input history\n"
               "  Ctrl-L          redraw\n"
               "  Ctrl-C          quit (the node keeps running; one this program\n"
               "                  started is stopped when no identity was made)\n"
               "\n"
               "commands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-26s %s\n", t[i].usage, t[i].help);
    fprintf(f, "A line without a leading / is sent to the open conversation; //text sends "
               "/text.\nMessage marks: \u25cb queued, \u2713 sent, \u2713\u2713 delivered.\n");
}

static int utf8_locale(void)
{
    const char *cs = nl_langinfo(CODESET);
    return cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
}

static void resize(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
        resizeterm(ws.ws_row, ws.ws_col);
    clearok(curscr, TRUE);
}

/* The last non-empty line of DIR/chapard.log, without its time and
 * level; 0 if there is none. */
static int log_tail(const char *home, char *out, size_t cap)
{
    char path[4200], buf[4096];
    snprintf(path, sizeof path, "%s/chapard.log", home);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        (void)fseek(f, sz > (long)sizeof buf - 1 ? sz - (long)sizeof buf + 1 : 0, SEEK_SET);
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    char *line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;
    /* "HH:MM:SS.mmm level message" from chapard's logger */
    if (strlen(line) > 19 && line[2] == ':' && line[8] == '.')
        line += 19;
    while (*line == ' ')
        line++;
    if (!*line)
        return 0;
    size_t k = 0;
    for (; line[k] && k + 1 < cap; k++) /* nothing from the file acts on the terminal */
        out[k] = (unsigned char)line[k] < 0x20 || line[k] == 0x7f ? '?' : line[k];
    out[k] = '\0';
    return 1;
}

/* " (its log: DIR/chapard.log)" when that file exists, else "": a node
 * started by hand logs to its own terminal. */
static const char *log_hint(const app *a, char *buf, size_t cap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/chapard.log", a->home);
    if (access(path, F_OK) != 0)
        return "";
    snprintf(buf, cap, " (its log: %s)", path);
    return buf;
}

/* Whether some chapard serves this data dir: its control socket accepts,
 * or it holds the lock (it is starting up). */
static int someone_serves(const app *a)
{
    if (chp_ctl_daemon_running(a->home))
        return 1;
    int lock = chp_home_lock(a->home);
    if (lock >= 0) {
        close(lock);
        return 0;
    }
    return errno == EWOULDBLOCK;
}

/* The node is gone: say so at once, forget what it had not answered, and
 * (a node the UI started that had run) schedule a restart. how: what the
 * exit status says, or NULL. */
static void node_down(app *a, uint64_t now, const char *how)
{
    if (a->life.down)
        return;
    int ran = a->life.ever_answered, fresh = !a->life.answered;
    uint64_t delay = chp_life_down(&a->life, now);
    lines_unsent(a);
    if (chp_ctl_reset(a->ctl) != CHP_OK)
        notice(a, "cannot reconnect to chapard");
    a->away = 0;
    a->peers = -1;
    a->relays = 0;
    a->store_full = 0;
    if (a->ph == PH_CREATING || a->ph == PH_UNLOCKING)
        set_phase(a, PH_CONNECTING);
    char last[400], hint[4300];
    int tail = log_tail(a->home, last, sizeof last);
    if (a->life.ours && !ran) {
        /* the chapard we started never answered: its log says why */
        notice(a, "chapard stopped at once: %s", tail ? last : "(its log is empty)");
        notice(a, "Fix that%s and start chapar-tui again; /quit leaves.",
               log_hint(a, hint, sizeof hint));
    } else if (delay) {
        notice(a, "node down%s%s%s, restarting in %llu s", how ? " (" : "", how ? how : "",
               how ? ")" : "", (unsigned long long)(delay / 1000));
        if (fresh && tail) /* a restart that did not come up: why */
            notice(a, "chapard's log says: %s", last);
    } else {
        notice(a, "node down: start chapard --home %s (this window reconnects when it is back)",
               a->home);
    }
    a->dirty = 1;
}

/* The node answers again: what happened while it was down is reloaded. */
static void node_back(app *a)
{
    notice(a, a->life.ours ? "node restarted" : "node is back");
    a->t_start = chp_ctl_now_ms();
    int cur = chp_model_current(a->m);
    if (cur >= 0) /* stay in the conversation that was open */
        snprintf(a->want, sizeof a->want, "%s", chp_model_conv(a->m, (size_t)cur)->name);
    a->reload = 1; /* on the `id` answer: it may come back locked */
    a->dirty = 1;
}

/* Reaps the chapard we started when it exited; NULL while it runs, else
 * how it ended. */
static const char *reap(app *a, char *how, size_t cap)
{
    int st;
    if (a->child <= 0 || waitpid(a->child, &st, WNOHANG) != a->child)
        return NULL;
    a->child = 0;
    if (WIFSIGNALED(st))
        snprintf(how, cap, "chapard was killed by signal %d", WTERMSIG(st));
    else
        snprintf(how, cap, "chapard exited with status %d", WEXITSTATUS(st));
    return how;
}

/* Notices the node going and coming back, and restarts ours. */
static void watch_node(app *a, uint64_t now)
{
    char how[80];
    const char *ended = reap(a, how, sizeof how);
    if (ended) {
        if (!a->life.answered && someone_serves(a)) {
            /* ours lost the race for the data dir to another window's: use that one */
            chp_life_started(&a->life, 0);
        } else {
            node_down(a, now, ended);
        }
    } else if (a->child <= 0 && (a->life.ever_answered || a->life.down) && now >= a->next_probe) {
        /* a node we did not start (or no longer have): its socket tells */
        a->next_probe = now + PROBE_MS;
        int up = chp_ctl_daemon_running(a->home);
        if (!up && !a->life.down)
            node_down(a, now, NULL);
        else if (up && a->life.down && !a->life.restart_at) {
            chp_life_started(&a->life, 0);
            REQ0(a, R_ID, NULL, "id"); /* its answer says "node is back" */
        }
    }
    if (chp_life_restart_due(&a->life, now)) {
        char path[4200];
        pid_t pid = 0;
        if (someone_serves(a)) {
            chp_life_started(&a->life, 0); /* someone else started one meanwhile */
        } else if (chp_ctl_spawn_daemon(a->home, path, sizeof path, &pid) == CHP_OK) {
            a->child = pid;
            chp_life_started(&a->life, 1);
        } else {
            chp_life_started(&a->life, 1);
            node_down(a, now, strerror(errno)); /* again, later */
            return;
        }
        a->answered = 0;
        a->t_start = now;
        REQ0(a, R_ID, NULL, "id");
        a->dirty = 1;
    }
}

static void timers(app *a, uint64_t now)
{
    uint64_t limit = TIMEOUT_MS;
    watch_node(a, now);
    if (a->life.down)
        return;             /* nothing to ask until it is back */
    now = chp_ctl_now_ms(); /* watch_node may have sent `id` just now */
    if (a->ph == PH_CREATING || a->ph == PH_UNLOCKING ||
        (a->spawned && !a->answered && now - a->t_start < 20000))
        limit = SLOW_MS;
    if (chp_ctl_overdue(a->ctl, now, limit)) {
        char hint[4300];
        if (!a->away)
            notice(a, "chapard is not answering for %s%s; retrying", a->home,
                   log_hint(a, hint, sizeof hint));
        a->away = 1;
        lines_unsent(a);
        if (chp_ctl_reset(a->ctl) != CHP_OK)
            notice(a, "cannot reconnect to chapard");
        if (a->ph == PH_CREATING)
            set_phase(a, PH_CONNECTING);
        if (a->ph != PH_READY && a->ph != PH_ASK_NICK && a->ph != PH_ASK_PASS &&
            a->ph != PH_ASK_PASS2 && a->ph != PH_ASK_NONE && a->ph != PH_ASK_UNLOCK)
            set_phase(a, PH_CONNECTING);
        a->next_retry = now;
        a->dirty = 1;
    }
    if (a->away && now >= a->next_retry && chp_ctl_pending(a->ctl) == 0) {
        REQ0(a, R_ID, NULL, "id");
        a->next_retry = now + RETRY_MS;
    }
    if (!a->away && now >= a->next_status && (a->ph == PH_READY || a->ph == PH_NO_USER)) {
        REQ0(a, R_STATUS, NULL, "status");
        a->next_status = now + STATUS_MS;
    }
}

static void pump(app *a)
{
    chp_ctl_tag tag;
    int ok, r;
    char *p, *topic;
    size_t len;
    while ((r = chp_ctl_reply(a->ctl, &tag, &ok, &p, &len)) != 0) {
        if (r < 0)
            continue;
        on_reply(a, &tag, ok, p, len);
        chp_memzero(p, len);
        free(p);
    }
    while (chp_ctl_event(a->ctl, &topic, &p, &len) == 1) {
        on_event(a, topic, p);
        free(topic);
        free(p);
    }
}

/* Quitting with no identity made (the wizard abandoned): the chapard this
 * window started would run on with nobody to use it, beaconing on the
 * LAN. SIGTERM makes it commit and exit; we wait for that. */
static void stop_child(app *a)
{
    if (kill(a->child, SIGTERM) != 0)
        return;
    uint64_t end = chp_ctl_now_ms() + STOP_WAIT_MS;
    while (waitpid(a->child, NULL, WNOHANG) == 0) {
        if (chp_ctl_now_ms() > end) {
            fprintf(stderr, "chapar-tui: the chapard it started (pid %d) has not stopped yet\n",
                    (int)a->child);
            return;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("chapar-tui: no identity was made: stopped the chapard it had started for %s\n",
           a->home);
}

static int loop(app *a)
{
    while (!a->quit && !got_term) {
        if (got_winch) {
            got_winch = 0;
            resize();
            a->dirty = 1;
        }
        if (a->dirty) {
            a->dirty = 0;
            draw(a);
        }
        zmq_pollitem_t it[4] = {
            {NULL, STDIN_FILENO, ZMQ_POLLIN, 0},
            {NULL, sigpipe_fd[0], ZMQ_POLLIN, 0},
            {chp_ctl_req_socket(a->ctl), 0, ZMQ_POLLIN, 0},
            {chp_ctl_evt_socket(a->ctl), 0, ZMQ_POLLIN, 0},
        };
        int rc = zmq_poll(it, 4, 500);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc > 0 && (it[1].revents & ZMQ_POLLIN)) {
            char b[64];
            while (read(sigpipe_fd[0], b, sizeof b) > 0) {
            }
        }
        if (rc > 0 && (it[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) {
            wint_t k;
            int type, got = 0;
            while ((type = get_wch(&k)) != ERR) {
                on_key(a, type, k);
                got = 1;
                if (a->quit)
                    break;
            }
            if (!got && (it[0].revents & ZMQ_POLLERR))
                return -1; /* the terminal went away */
        }
        pump(a);
        timers(a, chp_ctl_now_ms());
    }
    return 0;
}

int main(int argc, char **argv)
{
    app *a = calloc(1, sizeof *a);
    int rc = 1;
    if (!a)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(a);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("chapar-tui %s\n", CHP_VERSION);
            free(a);
            return 0;
        } else if (!strcmp(argv[i], "--home")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "chapar-tui: --home needs a directory\n");
                free(a);
                return 2;
            }
            snprintf(a->home, sizeof a->home, "%s", argv[++i]);
        } else {
            fprintf(stderr, "chapar-tui: unknown option '%s' (try --help)\n", argv[i]);
            free(a);
            return 2;
        }
    }
    if (!a->home[0] && chp_home_default(a->home, sizeof a->home) != 0) {
        fprintf(stderr, "chapar-tui: no data dir: set --home, CHAPAR_HOME or HOME\n");
        free(a);
        return 2;
    }
    char why[4400];
    if (chp_home_problem(a->home, why, sizeof why)) {
        fprintf(stderr, "chapar-tui: %s\n", why);
        free(a);
        return 1;
    }
    setlocale(LC_ALL, "");
    if (!utf8_locale())
        setlocale(LC_ALL, "C.UTF-8");
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "chapar-tui: needs a terminal (use chapar for scripts)\n");
        free(a);
        return 1;
    }
    if (chp_crypto_init() != CHP_OK) {
        fprintf(stderr, "chapar-tui: libsodium failed to initialise\n");
        free(a);
        return 1;
    }
    char spawned_path[4200] = "";
    int lock = -1;
    if (!chp_ctl_daemon_running(a->home) && chp_home_make(a->home) != 0) {
        fprintf(stderr, "chapar-tui: cannot create %s: %s\n", a->home, strerror(errno));
        free(a);
        return 1;
    }
    if (!chp_ctl_daemon_running(a->home) &&
        ((lock = chp_home_lock(a->home)) >= 0 || errno != EWOULDBLOCK)) {
        /* No daemon, and none starting (it would hold the lock): start one. */
        if (lock >= 0)
            close(lock);
        if (chp_ctl_spawn_daemon(a->home, spawned_path, sizeof spawned_path, &a->child) != CHP_OK) {
            fprintf(stderr, "chapar-tui: cannot start chapard for %s: %s\n", a->home,
                    strerror(errno));
            free(a);
            return 1;
        }
        a->spawned = 1;
    }
    a->peers = -1;
    a->t_start = chp_ctl_now_ms();
    if (!(a->m = chp_model_new()) || !(a->in = chp_input_new()) ||
        chp_ctl_new(a->home, &a->ctl) != CHP_OK || pipe(sigpipe_fd) != 0) {
        fprintf(stderr, "chapar-tui: cannot set up (out of memory or sockets)\n");
        goto out;
    }
    for (int i = 0; i < 2; i++)
        fcntl_nonblock(sigpipe_fd[i]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL); /* the chapard we started exited: wake up and reap */
    signal(SIGPIPE, SIG_IGN);

    set_escdelay(50);
    initscr();
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    /* Home/End as other terminals send them: TERM is often wrong (xterm
     * inside tmux or screen), and a key typed as "[4~" confuses people. */
    static const struct {
        const char *seq;
        int key;
    } extra[] = {{"\033[1~", KEY_HOME},  {"\033[7~", KEY_HOME}, {"\033[H", KEY_HOME},
                 {"\033OH", KEY_HOME},   {"\033[4~", KEY_END},  {"\033[8~", KEY_END},
                 {"\033[F", KEY_END},    {"\033OF", KEY_END},   {"\033[3~", KEY_DC},
                 {"\033[5~", KEY_PPAGE}, {"\033[6~", KEY_NPAGE}};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (key_defined(extra[i].seq) == 0)
            define_key(extra[i].seq, extra[i].key);
    nodelay(stdscr, TRUE);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(C_OWN, COLOR_CYAN, -1);
        init_pair(C_OTHER, COLOR_MAGENTA, -1);
        init_pair(C_NOTICE, COLOR_YELLOW, -1);
        init_pair(C_MARK, COLOR_GREEN, -1);
        init_pair(C_BAR, COLOR_BLUE, -1);
        init_pair(C_STRANGER, COLOR_RED, -1);
    }
    if (a->spawned)
        notice(a, "started chapard in the background for %s (%s; log: %s/chapard.log)", a->home,
               spawned_path, a->home);
    chp_life_init(&a->life, a->spawned);
    notice(a, "chapar-tui %s: /help lists commands and keys", CHP_VERSION);
    a->ph = PH_CONNECTING;
    REQ0(a, R_ID, NULL, "id");
    a->dirty = 1;
    rc = loop(a) == 0 ? 0 : 1;
    endwin();
    if (a->wiped)
        printf("chapar-tui: identity and data in %s wiped\n", a->home);
    else if (a->child > 0 && a->no_identity && a->ph != PH_CREATING)
        stop_child(a);
out:
    wipe_pass(a);
    for (size_t i = 0; i < a->nunsent; i++)
        free(a->unsent[i].text);
    chp_ctl_destroy(&a->ctl);
    chp_input_destroy(&a->in);
    chp_model_destroy(&a->m);
    for (int i = 0; i < 2; i++)
        if (sigpipe_fd[i] >= 0)
            close(sigpipe_fd[i]);
    free(a);
    return rc;
}
