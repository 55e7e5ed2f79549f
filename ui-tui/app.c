/* app.c - chapar-tui's state, requests, replies, events and node life,
 * without curses (app.h); what is typed is in app_cmd.c. */
#include "ui-tui/app.h"

#include "proto/audio.h"
#include "proto/crypto.h"
#include "ui-tui/app_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int chp_app_new(const char *home, int spawned, const chp_app_io *io, const chp_clock *clock,
                chp_app **out)
{
    chp_app *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a || !(a->m = chp_model_new()) || !(a->in = chp_input_new())) {
        chp_app_destroy(&a);
        return CHP_E_NOMEM;
    }
    snprintf(a->home, sizeof a->home, "%s", home);
    a->io = *io;
    a->clock = clock;
    a->spawned = spawned;
    a->peers = -1;
    a->ph = CHP_PH_CONNECTING;
    a->t_start = chp_clock_ms(clock);
    chp_life_init(&a->life, spawned);
    chp_prefs_init(&a->prefs, CHP_BIDI_AUTO, NULL);
    a->dirty = 1;
    *out = a;
    return CHP_OK;
}

void chp_app_destroy(chp_app **ap)
{
    chp_app *a = ap ? *ap : NULL;
    if (!a)
        return;
    chp_app_wipe_pass(a);
    for (size_t i = 0; i < a->nunsent; i++)
        free(a->unsent[i].text);
    chp_input_destroy(&a->in);
    chp_model_destroy(&a->m);
    free(a);
    *ap = NULL;
}

void chp_app_start(chp_app *a)
{
    REQ0(a, CHP_R_ID, NULL, "id");
    a->dirty = 1;
}

/* ---------------------------------------------------------------- notices */

void chp_app_notice(chp_app *a, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    chp_model_notice(a->m, (int64_t)chp_clock_unix(a->clock), buf);
    a->dirty = 1;
}

/* ---------------------------------------------------------------- requests */

void chp_app_request(chp_app *a, int kind, const char *tag, int secret, const char *cmd, int nargs,
                     const char *a0, const char *a1, const char *a2)
{
    const char *args[3] = {a0, a1, a2};
    size_t lens[3] = {0, 0, 0};
    for (int i = 0; i < nargs; i++)
        lens[i] = strlen(args[i]);
    int rc = a->io.send(a->io.ctx, kind, tag ? tag : "", cmd, nargs, args, lens, secret);
    if (rc != CHP_OK)
        chp_app_notice(a, _("cannot send '%s' to chapard: %s"), cmd, chp_strerror(rc));
}

void chp_app_send_line(chp_app *a, int kind, const char *conv, const char *text)
{
    char *copy = strdup(text);
    if (a->nunsent == CHP_APP_UNSENT_MAX || !copy) {
        free(copy);
        chp_app_notice(a, _("chapard has not taken the last %zu lines yet: not sent, try again"),
                       a->nunsent);
        if (chp_input_len(a->in) == 0)
            chp_input_insert_utf8(a->in, text);
        return;
    }
    chp_unsent *u = &a->unsent[a->nunsent++];
    snprintf(u->conv, sizeof u->conv, "%s", conv);
    u->text = copy;
    REQ2(a, kind, conv, "send", conv, text);
}

/* chapard answered the oldest line sent. */
static void line_answered(chp_app *a)
{
    if (!a->nunsent)
        return;
    free(a->unsent[0].text);
    memmove(a->unsent, a->unsent + 1, --a->nunsent * sizeof a->unsent[0]);
}

/* chapard stopped answering: every line not answered is said to be
 * unsent, and the newest goes back on an empty input line. */
static void lines_unsent(chp_app *a)
{
    for (size_t i = 0; i < a->nunsent; i++) {
        int back = i + 1 == a->nunsent && chp_input_len(a->in) == 0;
        chp_app_notice(a, _("chapard did not confirm this line to %s (it may have stopped): %s%s"),
                       a->unsent[i].conv, a->unsent[i].text,
                       back ? _(" (back on the input line)") : "");
        if (back)
            chp_input_insert_utf8(a->in, a->unsent[i].text);
        free(a->unsent[i].text);
    }
    a->nunsent = 0;
}

static void request_history(chp_app *a, const char *conv)
{
    REQ2(a, CHP_R_HISTORY, conv, "history", conv, CHP_APP_HISTORY_MAX);
}

/* Loads the selected conversation and marks it read. */
static void open_conv(chp_app *a)
{
    int cur = chp_model_current(a->m);
    if (cur < 0)
        return;
    const char *name = chp_model_conv(a->m, (size_t)cur)->name;
    request_history(a, name);
    REQ1(a, CHP_R_READ, name, "read", name);
}

void chp_app_select(chp_app *a, int i)
{
    int before = chp_model_current(a->m);
    chp_model_select(a->m, i);
    if (chp_model_current(a->m) != before)
        open_conv(a);
    a->dirty = 1;
}

void chp_app_cycle(chp_app *a, int dir)
{
    size_t n = chp_model_count(a->m);
    int c = chp_model_current(a->m);
    if (!n)
        return;
    if (dir > 0)
        chp_app_select(a, (int)(((size_t)c + 1) % n));
    else
        chp_app_select(a, c <= 0 ? (int)n - 1 : c - 1);
}

void chp_app_type(chp_app *a, wchar_t c)
{
    if (chp_input_insert(a->in, c) == CHP_E_OVERFLOW && !a->full_said) {
        chp_app_notice(a, _("the input line is full (%d characters): the rest was not taken"),
                       CHP_INPUT_MAX);
        a->full_said = 1; /* once per line, not once per pasted character */
    }
}

void chp_app_set_phase(chp_app *a, chp_phase ph)
{
    a->ph = ph;
    chp_input_set_secret(a->in, ph == CHP_PH_ASK_PASS || ph == CHP_PH_ASK_PASS2 ||
                                    ph == CHP_PH_ASK_UNLOCK);
    chp_input_clear(a->in);
    a->dirty = 1;
}

void chp_app_wipe_pass(chp_app *a)
{
    chp_memzero(a->pass, sizeof a->pass);
    a->passlen = 0;
}

/* The conversations, the peers count and the contact requests. */
static void reload(chp_app *a)
{
    REQ0(a, CHP_R_CONVS, NULL, "conversations");
    REQ0(a, CHP_R_STATUS, NULL, "status");
    REQ0(a, CHP_R_REQUESTS, NULL, "contact-requests");
}

/* Identity known and unlocked: load the conversations. The daemon joined
 * #lan itself on the first unlock; someone who left it stays out. */
static void on_ready(chp_app *a)
{
    chp_app_set_phase(a, CHP_PH_READY);
    a->first_convs = 1;
    reload(a);
}

static int contains(const char *s, const char *what)
{
    return s && strstr(s, what) != NULL;
}

/* ---------------------------------------------------------------- node life */

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
static const char *log_hint(const chp_app *a, char *buf, size_t cap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/chapard.log", a->home);
    if (access(path, F_OK) != 0)
        return "";
    snprintf(buf, cap, _(" (its log: %s)"), path);
    return buf;
}

/* Forgets the requests not answered; the lines among them go back. */
static void forget_pending(chp_app *a)
{
    lines_unsent(a);
    if (a->io.reset(a->io.ctx) != CHP_OK)
        chp_app_notice(a, _("cannot reconnect to chapard"));
}

void chp_app_node_down(chp_app *a, uint64_t now, const char *how)
{
    if (a->life.down)
        return;
    int ran = a->life.ever_answered, fresh = !a->life.answered;
    uint64_t delay = chp_life_down(&a->life, now);
    forget_pending(a);
    a->away = 0;
    a->peers = -1;
    a->relays = 0;
    a->store_full = 0;
    if (a->ph == CHP_PH_CREATING || a->ph == CHP_PH_UNLOCKING)
        chp_app_set_phase(a, CHP_PH_CONNECTING);
    char last[400], hint[4300];
    int tail = log_tail(a->home, last, sizeof last);
    if (a->life.ours && !ran) {
        /* the chapard we started never answered: its log says why */
        chp_app_notice(a, _("chapard stopped at once: %s"), tail ? last : _("(its log is empty)"));
        chp_app_notice(a, _("Fix that%s and start chapar-tui again; /quit leaves."),
                       log_hint(a, hint, sizeof hint));
    } else if (delay) {
        chp_app_notice(a, _("node down%s%s%s, restarting in %llu s"), how ? " (" : "",
                       how ? how : "", how ? ")" : "", (unsigned long long)(delay / 1000));
        if (fresh && tail) /* a restart that did not come up: why */
            chp_app_notice(a, _("chapard's log says: %s"), last);
    } else {
        chp_app_notice(
            a, _("node down: start chapard --home %s (this window reconnects when it is back)"),
            a->home);
    }
    a->dirty = 1;
}

/* The node answers again: what happened while it was down is reloaded. */
static void node_back(chp_app *a)
{
    chp_app_notice(a, "%s", a->life.ours ? _("node restarted") : _("node is back"));
    a->t_start = chp_clock_ms(a->clock);
    int cur = chp_model_current(a->m);
    if (cur >= 0) /* stay in the conversation that was open */
        snprintf(a->want, sizeof a->want, "%s", chp_model_conv(a->m, (size_t)cur)->name);
    a->reload = 1; /* on the `id` answer: it may come back locked */
    a->dirty = 1;
}

void chp_app_node_started(chp_app *a, uint64_t now, int ours)
{
    chp_life_started(&a->life, ours);
    a->answered = 0;
    a->t_start = now;
    REQ0(a, CHP_R_ID, NULL, "id");
    a->dirty = 1;
}

void chp_app_node_found(chp_app *a)
{
    chp_life_started(&a->life, 0);
    REQ0(a, CHP_R_ID, NULL, "id"); /* its answer says "node is back" */
}

/* The phases in which a timeout leaves the prompt alone: the user is
 * typing an answer that does not need the daemon yet. */
static int asking(chp_phase ph)
{
    return ph == CHP_PH_READY || ph == CHP_PH_ASK_NICK || ph == CHP_PH_ASK_PASS ||
           ph == CHP_PH_ASK_PASS2 || ph == CHP_PH_ASK_NONE || ph == CHP_PH_ASK_UNLOCK;
}

/* The oldest request went unanswered: the daemon is away. */
static void timed_out(chp_app *a, uint64_t now)
{
    char hint[4300];
    if (!a->away)
        chp_app_notice(a, _("chapard is not answering for %s%s; retrying"), a->home,
                       log_hint(a, hint, sizeof hint));
    a->away = 1;
    forget_pending(a);
    if (!asking(a->ph))
        chp_app_set_phase(a, CHP_PH_CONNECTING);
    a->next_retry = now;
    a->dirty = 1;
}

void chp_app_tick(chp_app *a, uint64_t now)
{
    uint64_t limit = CHP_APP_TIMEOUT_MS;
    if (a->life.down)
        return; /* nothing to ask until it is back */
    if (a->ph == CHP_PH_CREATING || a->ph == CHP_PH_UNLOCKING ||
        (a->spawned && !a->answered && now - a->t_start < 20000))
        limit = CHP_APP_SLOW_MS;
    if (a->io.overdue(a->io.ctx, now, limit))
        timed_out(a, now);
    if (a->away && now >= a->next_retry && a->io.pending(a->io.ctx) == 0) {
        REQ0(a, CHP_R_ID, NULL, "id");
        a->next_retry = now + CHP_APP_RETRY_MS;
    }
    if (a->bundle_job[0] && a->next_bundle && now >= a->next_bundle) {
        REQ1(a, CHP_R_BUNDLE, a->bundle_job, "bundle-status", a->bundle_job);
        a->next_bundle = 0;
    }
    if (!a->away && now >= a->next_status && (a->ph == CHP_PH_READY || a->ph == CHP_PH_NO_USER)) {
        REQ0(a, CHP_R_STATUS, NULL, "status");
        a->next_status = now + CHP_APP_STATUS_MS;
    }
}

/* ---------------------------------------------------------------- replies */

/* One reply handler per request kind (chp_req); tag is what the request
 * was sent with. */
typedef void reply_fn(chp_app *a, const char *tag, int ok, char *p, size_t len);

static void on_id(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag, (void)len;
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
        if (a->ph != CHP_PH_READY)
            on_ready(a);
        else if (a->reload)
            reload(a);
        a->reload = 0;
        a->dirty = 1;
        return;
    }
    if (contains(p, "no identity")) {
        a->no_identity = 1;
        if (a->ph == CHP_PH_ASK_NICK || a->ph == CHP_PH_ASK_PASS || a->ph == CHP_PH_ASK_PASS2 ||
            a->ph == CHP_PH_ASK_NONE)
            return; /* the node came back while the wizard runs: go on with it */
        chp_app_notice(a, _("Welcome to Chapar. No identity lives in %s yet: let's make one."),
                       a->home);
        /* whether others on this network can see the node, before anything else */
        REQ0(a, CHP_R_DISC_WIZ, NULL, "discovery");
        chp_app_set_phase(a, CHP_PH_ASK_NICK);
    } else if (contains(p, "locked")) {
        chp_app_notice(a, _("Your identity is locked. Type its passphrase (Ctrl-C quits)."));
        chp_app_set_phase(a, CHP_PH_ASK_UNLOCK);
    } else {
        chp_app_notice(a, _("chapard: %s"), p);
        chp_app_notice(a, _("No messaging here; node commands still work: /peer, /help, /quit."));
        chp_app_set_phase(a, CHP_PH_NO_USER);
        REQ0(a, CHP_R_STATUS, NULL, "status");
    }
}

static void on_init(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag, (void)len;
    if (ok) {
        a->no_identity = 0;
        chp_app_notice(a, _("Your identity is ready. Your ID (give it to friends): %s"), p);
        REQ0(a, CHP_R_ID, NULL, "id");
    } else if (contains(p, "already exists")) {
        /* another window on this data dir was quicker: use its identity */
        chp_app_notice(a, _("An identity was just created in %s (another window?): using it."),
                       a->home);
        REQ0(a, CHP_R_ID, NULL, "id");
    } else {
        chp_app_notice(a, _("Could not create the identity: %s"), p);
        chp_app_notice(a, _("Choose a nickname."));
        chp_app_set_phase(a, CHP_PH_ASK_NICK);
    }
}

static void on_unlock(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag, (void)len;
    if (ok) {
        REQ0(a, CHP_R_ID, NULL, "id");
    } else {
        chp_app_notice(a, _("Not unlocked: %s. Try again."), p);
        chp_app_set_phase(a, CHP_PH_ASK_UNLOCK);
    }
}

static void on_convs(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag;
    if (!ok) {
        chp_app_notice(a, _("conversations: %s"), p);
        return;
    }
    int before = chp_model_current(a->m);
    if (chp_model_load_conversations(a->m, p, len) != CHP_OK)
        chp_app_notice(a, _("chapard sent a conversation list that does not parse"));
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
    REQ0(a, CHP_R_ROOMS, NULL, "rooms"); /* kinds and fingerprints for the titles */
    a->dirty = 1;
}

/* A kept file's line says what the command line takes, "(kept: chapar
 * file save ID PATH)"; here that is /save of the number /files shows.
 * The payload p with each such hint replaced, in a new block (*outlen
 * its length), or NULL when there is none (or no memory). */
static char *tui_hints(const char *p, size_t len, size_t *outlen)
{
    static const char cli[] = "(kept: chapar file save ";
    const size_t cl = sizeof cli - 1, tail = 32 + sizeof " PATH)" - 1;
    const char *hint = _("(kept: /files, then /save N)");
    size_t hl = strlen(hint), k = 0, o = 0;
    for (size_t i = 0; i + cl <= len; i++)
        k += !memcmp(p + i, cli, cl);
    char *out = k ? malloc(len + k * hl + 1) : NULL;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        int hex = i + cl + tail <= len && !memcmp(p + i, cli, cl) &&
                  !memcmp(p + i + cl + 32, " PATH)", 6);
        for (size_t j = 0; hex && j < 32; j++)
            hex = strchr("0123456789abcdef", p[i + cl + j]) && p[i + cl + j];
        if (hex) {
            memcpy(out + o, hint, hl);
            o += hl;
            i += cl + tail;
        } else {
            out[o++] = p[i++];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static void on_history(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    size_t hlen = 0;
    char *h = ok ? tui_hints(p, len, &hlen) : NULL;
    if (!ok)
        chp_app_notice(a, "%s: %s", tag, p);
    else if (chp_model_load_history(a->m, tag, h ? h : p, h ? hlen : len) != CHP_OK)
        chp_app_notice(a, _("chapard sent a history that does not parse"));
    free(h);
    a->dirty = 1;
}

/* A line sent (kind CHP_R_SEND) or a /msg (CHP_R_MSG) answered. */
static void on_sent(chp_app *a, int kind, const char *tag, int ok, const char *p)
{
    if (!ok && kind == CHP_R_SEND && a->nunsent && chp_input_len(a->in) == 0) {
        chp_input_insert_utf8(a->in, a->unsent[0].text); /* to fix and send again */
        a->dirty = 1;
    }
    line_answered(a);
    if (!ok) {
        chp_app_notice(a, _("not sent to %s: %s"), tag, p);
    } else if (kind == CHP_R_MSG) { /* open the conversation it went to */
        snprintf(a->want, sizeof a->want, "%s", tag);
        REQ0(a, CHP_R_CONVS, NULL, "conversations");
    } else {
        request_history(a, tag);
    }
}

static void on_send(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)len;
    on_sent(a, CHP_R_SEND, tag, ok, p);
}

static void on_msg(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)len;
    on_sent(a, CHP_R_MSG, tag, ok, p);
}

static void on_status(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag;
    if (!ok)
        return;
    chp_status st;
    chp_status_parse(p, len, &st);
    if (st.peers >= 0)
        a->peers = st.peers;
    if (st.relays >= 0)
        a->relays = st.relays;
    if (st.store_full == 1 && !a->store_full)
        chp_app_notice(a, _("chapard's store is full: it refuses mail it carries for others until "
                            "some expires (a larger --quota helps)"));
    if (st.store_full >= 0)
        a->store_full = st.store_full;
    a->dirty = 1;
}

static void on_join(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)len;
    if (!ok) {
        chp_app_notice(a, _("cannot join %s: %s"), tag, p);
        return;
    }
    /* open it now, so the notice lands in the room it is about */
    chp_app_select(a, chp_model_add(a->m, tag));
    if (p[0])
        chp_app_notice(a,
                       _("joined %s (fingerprint %s: whoever sees the same fingerprint is in "
                         "the same room)"),
                       tag, p);
    else
        chp_app_notice(a, _("joined %s"), tag);
    snprintf(a->want, sizeof a->want, "%s", tag);
    REQ0(a, CHP_R_CONVS, NULL, "conversations");
}

static void on_leave(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)len;
    if (!ok) {
        chp_app_notice(a, _("cannot leave %s: %s"), tag, p);
        return;
    }
    chp_model_remove(a->m, tag);
    chp_app_notice(a, _("left %s"), tag);
    open_conv(a);
    REQ0(a, CHP_R_CONVS, NULL, "conversations");
}

static void on_done(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)len;
    if (ok) {
        chp_app_notice(a, "%s", tag);
        REQ0(a, CHP_R_CONVS, NULL, "conversations");
    } else {
        chp_app_notice(a, _("error: %s"), p);
    }
}

static void on_peer(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)len;
    chp_app_notice(a, ok ? "%s" : "peer not added: %s", ok ? tag : p);
}

/* Each line of p as a notice, tabs as spaces, after head when it is not
 * empty. */
/* /bundle import: the job number, then bundle-status until it is done;
 * the outcome is one notice. */
static void on_bundle(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag, (void)len;
    int running = ok && (!strncmp(p, "running ", 8) || (p[0] >= '0' && p[0] <= '9'));
    if (running && p[0] != 'r')
        snprintf(a->bundle_job, sizeof a->bundle_job, "%.20s", p);
    if (running) {
        a->next_bundle = chp_clock_ms(a->clock) + 250;
        return;
    }
    a->bundle_job[0] = '\0';
    chp_app_notice(a, _("bundle: %s"), ok && !strncmp(p, "done ", 5) ? p + 5 : p);
    if (ok)
        REQ0(a, CHP_R_CONVS, NULL, "conversations");
}

static void on_lines(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)len;
    if (!ok) {
        chp_app_notice(a, _("error: %s"), p);
        return;
    }
    if (tag[0])
        chp_app_notice(a, "%s", tag);
    int any = 0;
    for (char *line = strtok(p, "\n"); line; line = strtok(NULL, "\n")) {
        for (char *t = line; *t; t++)
            if (*t == '\t')
                *t = ' ';
        chp_app_notice(a, "  %s", line);
        any = 1;
    }
    if (!any)
        chp_app_notice(a, _("  (none)"));
}

static void on_files(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    if (a->files_reply)
        a->files_reply(a, tag, ok, p, len);
}

static void on_idshow(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag, (void)len;
    char *f[3];
    if (!ok) {
        chp_app_notice(a, _("error: %s"), p);
    } else if (chp_split_tabs(p, f, 3) == 3) {
        chp_app_notice(a, _("your ID: %s"), f[0]);
        chp_app_notice(a, _("nick: %s   fingerprint: %s"), f[1], f[2]);
        chp_app_notice(a, _("/id NAME shows a contact's safety number: compare it with theirs."));
    }
}

static void on_nick(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)len;
    if (ok) {
        chp_app_notice(a, _("you are now %s"), tag);
        REQ0(a, CHP_R_ID, NULL, "id");
    } else {
        chp_app_notice(a, _("nick not changed: %s"), p);
    }
}

static void on_wipe(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag, (void)len;
    if (ok) {
        a->wiped = 1;
        a->quit = 1;
    } else {
        chp_app_notice(a, _("not wiped: %s"), p);
    }
}

static void on_rooms(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag;
    /* an older daemon's answer, or none: titles without kinds */
    if (ok && chp_model_load_rooms(a->m, p, len) == CHP_OK)
        a->dirty = 1;
}

static void on_discovery(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)len;
    if (!ok)
        chp_app_notice(a, _("discovery: %s"), p);
    else if (!tag[0])
        chp_app_notice(
            a, _("LAN discovery is %s: this node is %s on the local network (/discovery %s)"), p,
            !strcmp(p, "on") ? _("visible") : _("invisible"),
            !strcmp(p, "on") ? _("off hides it") : _("on shows it"));
    else if (!strcmp(tag, "off"))
        chp_app_notice(a,
                       _("You are invisible on the local network now: no more LAN beacons (%s). "
                         "Friends reach you by /peer ADDRESS."),
                       p);
    else
        chp_app_notice(
            a,
            _("You are visible on the local network now: chapard announces itself by LAN "
              "beacons (%s)."),
            p);
}

/* The wizard's line on being seen: a node announces itself on the LAN by
 * default, and on a café or campus network that tells everyone there that
 * someone runs Chapar. */
static void on_disc_wiz(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag, (void)len;
    if (ok && !strcmp(p, "off"))
        chp_app_notice(a, _("This node is invisible on the local network (no LAN beacons); "
                            "/discovery on lets Chapar users nearby find it."));
    else
        chp_app_notice(a, _("This node is visible on the local network: it announces itself by LAN "
                            "beacons, which anyone on this network (a cafe's or a campus's "
                            "operator too) can recognise as Chapar's. To be invisible: /discovery "
                            "off (or chapard --no-discovery)."));
    chp_app_notice(a, _("Choose a nickname (others see it next to your ID; 1 to 32 bytes)."));
}

static void on_requests(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    (void)tag;
    if (ok && chp_model_load_requests(a->m, p, len) != CHP_OK)
        chp_app_notice(a, _("chapard sent a list of contact requests that does not parse"));
}

/* CHP_R_READ needs nothing: the reply only says the node marked it read. */
static reply_fn *const reply_fns[CHP_R_COUNT] = {
    [CHP_R_ID] = on_id,
    [CHP_R_INIT] = on_init,
    [CHP_R_UNLOCK] = on_unlock,
    [CHP_R_CONVS] = on_convs,
    [CHP_R_HISTORY] = on_history,
    [CHP_R_SEND] = on_send,
    [CHP_R_MSG] = on_msg,
    [CHP_R_STATUS] = on_status,
    [CHP_R_JOIN] = on_join,
    [CHP_R_LEAVE] = on_leave,
    [CHP_R_DONE] = on_done,
    [CHP_R_LINES] = on_lines,
    [CHP_R_IDSHOW] = on_idshow,
    [CHP_R_PEER] = on_peer,
    [CHP_R_NICK] = on_nick,
    [CHP_R_WIPE] = on_wipe,
    [CHP_R_ROOMS] = on_rooms,
    [CHP_R_DISC] = on_discovery,
    [CHP_R_DISC_WIZ] = on_disc_wiz,
    [CHP_R_REQUESTS] = on_requests,
    [CHP_R_BUNDLE] = on_bundle,
    [CHP_R_FILES] = on_files,
};

void chp_app_on_reply(chp_app *a, int kind, const char *tag, int ok, char *p, size_t len)
{
    a->away = 0;
    a->answered = 1;
    if (chp_life_answered(&a->life, chp_clock_ms(a->clock)))
        node_back(a);
    if (kind >= 0 && kind < CHP_R_COUNT && reply_fns[kind])
        reply_fns[kind](a, tag, ok, p, len);
}

/* ---------------------------------------------------------------- events */

/* The conversation an event names first (unescaped, a new string), or
 * NULL when it names none. */
static char *event_conv(const char *field)
{
    char *conv = chp_unescape(field, strlen(field));
    if (conv && !conv[0]) {
        free(conv);
        return NULL;
    }
    return conv;
}

static void ev_message(chp_app *a, char *body)
{
    char *f[3];
    int nf = chp_split_tabs(body, f, 3);
    if (nf < 1 || a->ph != CHP_PH_READY)
        return;
    char *conv = event_conv(f[0]);
    if (!conv)
        return;
    /* a nick change (sender "*") is no news to count */
    int i = chp_model_on_message(a->m, conv, nf >= 2 ? f[1] : "");
    if (i >= 0 && i == chp_model_current(a->m)) {
        request_history(a, conv);
        REQ1(a, CHP_R_READ, conv, "read", conv);
    }
    free(conv);
    a->dirty = 1;
}

/* sent from this window or another one on the same node */
static void ev_queued(chp_app *a, char *body)
{
    char *f[2];
    if (chp_split_tabs(body, f, 2) < 1 || a->ph != CHP_PH_READY)
        return;
    char *conv = event_conv(f[0]);
    int i = conv ? chp_model_add(a->m, conv) : -1;
    if (i >= 0 && i == chp_model_current(a->m))
        request_history(a, conv);
    free(conv);
    a->dirty = 1;
}

static void ev_state(chp_app *a, char *body)
{
    char *f[2];
    if (chp_split_tabs(body, f, 2) == 2 && chp_model_set_state(a->m, f[0], f[1]))
        a->dirty = 1;
}

/* "12.3 KiB" as the node writes sizes in a file's message. */
static void human_size(unsigned long long n, char *out, size_t cap)
{
    if (n < 1024)
        snprintf(out, cap, "%llu B", n);
    else if (n < (1u << 20))
        snprintf(out, cap, "%.1f KiB", (double)n / 1024.0);
    else
        snprintf(out, cap, "%.1f MiB", (double)n / 1048576.0);
}

/* The `file` event of an incoming file, split into its n fields (ID HAVE
 * COUNT "in" CONV SENDER NAME SIZE, CONTROL.md): its line in CONV shows
 * a bar. 1 when the screen changed. */
static int ev_file_in(chp_app *a, char **f, int n)
{
    if (n < 8 || strcmp(f[3], "in") || a->ph != CHP_PH_READY)
        return 0;
    char *conv = chp_unescape(f[4], strlen(f[4]));
    char *who = chp_unescape(f[5], strlen(f[5]));
    char *name = chp_unescape(f[6], strlen(f[6]));
    char sz[32], text[400];
    int changed = 0;
    if (conv && conv[0] && who && name) {
        human_size(strtoull(f[7], NULL, 10), sz, sizeof sz);
        snprintf(text, sizeof text, "[file] %s%s (%s)",
                 chp_audio_is_voice(name, NULL) ? _("[voice note] ") : "", name, sz);
        changed =
            chp_model_file_in(a->m, conv, who, f[0], text, (int64_t)chp_clock_unix(a->clock),
                              (uint32_t)strtoul(f[1], NULL, 10), (uint32_t)strtoul(f[2], NULL, 10));
    }
    free(conv);
    free(who);
    free(name);
    return changed;
}

/* `file` ID DONE TOTAL: an outgoing file's progress; ID HAVE COUNT in
 * CONV SENDER NAME SIZE: an incoming one's (ev_file_in). */
static void ev_file(chp_app *a, char *body)
{
    char *f[8];
    int n = chp_split_tabs(body, f, 8);
    if (n >= 8)
        a->dirty |= ev_file_in(a, f, n);
    else if (n == 3 && chp_model_set_progress(a->m, f[0], (uint32_t)strtoul(f[1], NULL, 10),
                                              (uint32_t)strtoul(f[2], NULL, 10)))
        a->dirty = 1;
}

static void ev_request(chp_app *a, char *body)
{
    char *f[2];
    if (chp_split_tabs(body, f, 2) != 2)
        return;
    /* "~nick": not a contact's name, which the nick may equal */
    char *nick = chp_unescape(f[1], strlen(f[1]));
    int named = nick && nick[0];
    chp_app_notice(a, _("contact request from ~%s (%s): /accept %s%s"), named ? nick : "?", f[0],
                   named ? "~" : "", named ? nick : f[0]);
    free(nick);
    REQ0(a, CHP_R_REQUESTS, NULL, "contact-requests");
}

static void ev_contact(chp_app *a, char *body)
{
    char *f[2];
    if (chp_split_tabs(body, f, 2) != 2)
        return;
    char *name = chp_unescape(f[0], strlen(f[0]));
    if (!strcmp(f[1], "established"))
        chp_app_notice(a, _("%s is now a contact"), name ? name : "?");
    else
        chp_app_notice(a, _("contact %s: %s"), name ? name : "?", f[1]);
    free(name);
    if (a->ph != CHP_PH_READY)
        return;
    REQ0(a, CHP_R_CONVS, NULL, "conversations");
    REQ0(a, CHP_R_REQUESTS, NULL, "contact-requests");
    /* a stranger who became a contact shows by name from now on, one who
     * was blocked or removed as a stranger again */
    int cur = chp_model_current(a->m);
    if (cur >= 0)
        request_history(a, chp_model_conv(a->m, (size_t)cur)->name);
}

/* joined or left here or by another client (chapar join) */
static void ev_room(chp_app *a, char *body)
{
    if (a->ph != CHP_PH_READY)
        return;
    int cur = chp_model_current(a->m);
    char *was = cur >= 0 ? strdup(chp_model_conv(a->m, (size_t)cur)->name) : NULL;
    chp_model_on_room(a->m, body, strlen(body));
    cur = chp_model_current(a->m);
    if (cur >= 0 && (!was || strcmp(was, chp_model_conv(a->m, (size_t)cur)->name)))
        open_conv(a); /* the open room was left: show the one selected now */
    free(was);
    REQ0(a, CHP_R_CONVS, NULL, "conversations"); /* the kind, and the room's place */
    a->dirty = 1;
}

static void ev_nick(chp_app *a, char *body)
{
    (void)body;
    if (a->ph == CHP_PH_READY)
        REQ0(a, CHP_R_ID, NULL, "id"); /* changed from another window: the status bar */
}

static void ev_peer(chp_app *a, char *body)
{
    chp_app_notice(a, "%s", !strcmp(body, "up") ? _("a peer connected") : _("a peer disconnected"));
    REQ0(a, CHP_R_STATUS, NULL, "status");
}

static const struct event_fn {
    const char *topic;
    void (*fn)(chp_app *a, char *body);
} event_fns[] = {
    {"message", ev_message}, {"queued", ev_queued},   {"state", ev_state},
    {"request", ev_request}, {"contact", ev_contact}, {"room", ev_room},
    {"nick", ev_nick},       {"peer", ev_peer},       {"file", ev_file},
};

void chp_app_on_event(chp_app *a, const char *topic, char *body)
{
    for (size_t i = 0; i < sizeof event_fns / sizeof event_fns[0]; i++)
        if (!strcmp(topic, event_fns[i].topic)) {
            event_fns[i].fn(a, body);
            return;
        }
}

/* ---------------------------------------------------------------- what shows */

const char *chp_app_prompt(const chp_app *a, char *buf, size_t cap)
{
    int cur = chp_model_current(a->m);
    switch (a->ph) {
    case CHP_PH_ASK_NICK:
        return _("nickname: ");
    case CHP_PH_ASK_PASS:
        return _("passphrase (Enter: none): ");
    case CHP_PH_ASK_PASS2:
        return _("passphrase again: ");
    case CHP_PH_ASK_NONE:
        return _("type none to confirm: ");
    case CHP_PH_ASK_UNLOCK:
        return _("passphrase: ");
    case CHP_PH_CONFIRM_WIPE:
        return _("wipe everything? type yes: ");
    case CHP_PH_CREATING:
    case CHP_PH_UNLOCKING:
        return _("wait... ");
    default:
        snprintf(buf, cap, "[%s] ", cur >= 0 ? chp_model_conv(a->m, (size_t)cur)->name : "-");
        return buf;
    }
}

void chp_app_status_bar(const chp_app *a, char *buf, size_t cap)
{
    char peers[32];
    if (a->peers >= 0 && a->relays > 0)
        snprintf(peers, sizeof peers, _("%d (relays %d)"), a->peers, a->relays);
    else if (a->peers >= 0)
        snprintf(peers, sizeof peers, "%d", a->peers);
    else
        snprintf(peers, sizeof peers, "?");
    const char *state = a->away                      ? _(" | chapard not answering")
                        : a->ph == CHP_PH_CONNECTING ? _(" | connecting to chapard")
                        : a->ph == CHP_PH_NO_USER    ? _(" | node only")
                                                     : "";
    char who[160];
    snprintf(who, sizeof who, " %s%s%s%s", a->nick[0] ? a->nick : _("(no identity)"),
             a->fp[0] ? " (" : "", a->fp, a->fp[0] ? ")" : "");
    if (a->life.down) /* no peers to count: the numbers of the dead node would lie */
        snprintf(buf, cap, _("%s | node down%s"), who, a->life.restart_at ? _(", restarting") : "");
    else
        snprintf(buf, cap, _("%s | peers: %s%s%s%s%s"), who, peers, state,
                 a->store_full ? _(" | store full") : "", a->share_url[0] ? _(" | sharing ") : "",
                 a->share_url);
    if (a->hint[0]) { /* what Tab found, after all the rest */
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, " | %s", a->hint);
    }
}
