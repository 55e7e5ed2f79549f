/* tui.c - chapar-tui's main: the options, a chapard started when none
 * runs, the terminal, and one zmq_poll loop over the terminal, a signal
 * pipe and the two control-API sockets. The app (app.h) decides what
 * happens, draw.h and keymap.h are the screen, ctl.h reaches chapard. */
#include "ui-tui/wcurses.h" /* first: it sets feature macros */

#include "node/common/clock.h"
#include "node/common/home.h"
#include "node/common/i18n.h"
#include "node/common/version.h"
#include "proto/crypto.h"
#include "ui-tui/app.h"
#include "ui-tui/cmd.h"
#include "node/client/ctl.h"
#include "node/client/ctl_errtext.h"
#include "ui-tui/draw.h"
#include "ui-tui/keymap.h"
#include "ui-tui/share.h"

#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define PROBE_MS     1000 /* is a node we did not start still there? */
#define STOP_WAIT_MS 5000 /* for the chapard we stop on quit to exit */

typedef struct tui {
    char home[4096];
    chp_app *a;
    chp_ctl *ctl;
    chp_keymap keys;
    int spawned;             /* a chapard was started for this window */
    chp_bidi_mode bidi;      /* --bidi */
    char spawned_path[4200]; /* which binary */
    pid_t child;             /* the chapard we started and have not reaped; 0: none */
    uint64_t next_probe;     /* ms: when to look again whether a node not ours is up */
    chp_share_child share;   /* /share-app's chapar share-app */
} tui;

/* The signal handler's way to wake zmq_poll: it may touch nothing else. */
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

/* ---------------------------------------------------------------- the app's io */

static int io_send(void *ctx, int kind, const char *tag, const char *cmd, int nargs,
                   const char *const *args, const size_t *lens, int secret_last)
{
    chp_ctl_tag t;
    memset(&t, 0, sizeof t);
    t.kind = kind;
    snprintf(t.ctx, sizeof t.ctx, "%s", tag);
    return chp_ctl_send(ctx, &t, chp_mono_ms(), cmd, nargs, args, lens, secret_last);
}

static int io_reset(void *ctx)
{
    return chp_ctl_reset(ctx);
}

static size_t io_pending(void *ctx)
{
    return chp_ctl_pending(ctx);
}

static int io_overdue(void *ctx, uint64_t now, uint64_t timeout_ms)
{
    return chp_ctl_overdue(ctx, now, timeout_ms);
}

/* Replies and events waiting on the two sockets, to the app. */
static void pump(tui *t)
{
    chp_ctl_tag tag;
    int ok, r;
    char *p, *topic;
    size_t len;
    while ((r = chp_ctl_reply(t->ctl, &tag, &ok, &p, &len)) != 0) {
        if (r < 0)
            continue;
        /* an error line in the reader's language, except where the app
         * tells the identity's state by the English words */
        char line[1024];
        if (ok || tag.kind == CHP_R_ID || tag.kind == CHP_R_INIT)
            chp_app_on_reply(t->a, tag.kind, tag.ctx, ok, p, len);
        else
            chp_app_on_reply(t->a, tag.kind, tag.ctx, ok, chp_ctl_error_text(p, line, sizeof line),
                             strlen(line));
        chp_memzero(p, len);
        free(p);
    }
    while (chp_ctl_event(t->ctl, &topic, &p, &len) == 1) {
        chp_app_on_event(t->a, topic, p);
        free(topic);
        free(p);
    }
}

/* ---------------------------------------------------------------- the node's process */

/* Whether some chapard serves this data dir: its control socket accepts,
 * or it holds the lock (it is starting up). */
static int someone_serves(const char *home)
{
    if (chp_ctl_daemon_running(home))
        return 1;
    int lock = chp_home_lock(home);
    if (lock >= 0) {
        close(lock);
        return 0;
    }
    return errno == EWOULDBLOCK;
}

/* Reaps the chapard we started when it exited; NULL while it runs, else
 * how it ended. */
static const char *reap(tui *t, char *how, size_t cap)
{
    int st;
    if (t->child <= 0 || waitpid(t->child, &st, WNOHANG) != t->child)
        return NULL;
    t->child = 0;
    if (WIFSIGNALED(st))
        snprintf(how, cap, _("chapard was killed by signal %d"), WTERMSIG(st));
    else
        snprintf(how, cap, _("chapard exited with status %d"), WEXITSTATUS(st));
    return how;
}

/* The restart the node's life asks for: ours again, unless another
 * window's node took the data dir meanwhile. */
static void restart(tui *t, uint64_t now)
{
    char path[4200];
    pid_t pid = 0;
    if (someone_serves(t->home)) {
        chp_app_node_started(t->a, now, 0); /* someone else started one meanwhile */
    } else if (chp_ctl_spawn_daemon(t->home, path, sizeof path, &pid) == CHP_OK) {
        t->child = pid;
        chp_app_node_started(t->a, now, 1);
    } else {
        const char *why = strerror(errno);
        chp_life_started(&t->a->life, 1);
        chp_app_node_down(t->a, now, why); /* again, later */
    }
}

/* Notices the node going and coming back, and restarts ours. */
static void watch_node(tui *t, uint64_t now)
{
    chp_app *a = t->a;
    char how[80];
    const char *ended = reap(t, how, sizeof how);
    if (ended) {
        if (!a->life.answered && someone_serves(t->home)) {
            /* ours lost the race for the data dir to another window's: use that one */
            chp_life_started(&a->life, 0);
        } else {
            chp_app_node_down(a, now, ended);
        }
    } else if (t->child <= 0 && (a->life.ever_answered || a->life.down) && now >= t->next_probe) {
        /* a node we did not start (or no longer have): its socket tells */
        t->next_probe = now + PROBE_MS;
        int up = chp_ctl_daemon_running(t->home);
        if (!up && !a->life.down)
            chp_app_node_down(a, now, NULL);
        else if (up && a->life.down && !a->life.restart_at)
            chp_app_node_found(a);
    }
    if (chp_life_restart_due(&a->life, now))
        restart(t, now);
}

/* Quitting with no identity made (the wizard abandoned): the chapard this
 * window started would run on with nobody to use it, beaconing on the
 * LAN. SIGTERM makes it commit and exit; we wait for that. */
static void stop_child(tui *t)
{
    if (kill(t->child, SIGTERM) != 0)
        return;
    uint64_t end = chp_mono_ms() + STOP_WAIT_MS;
    while (waitpid(t->child, NULL, WNOHANG) == 0) {
        if (chp_mono_ms() > end) {
            fprintf(stderr, _("chapar-tui: the chapard it started (pid %d) has not stopped yet\n"),
                    (int)t->child);
            return;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf(_("chapar-tui: no identity was made: stopped the chapard it had started for %s\n"),
           t->home);
}

/* ---------------------------------------------------------------- the loop */

/* The keys typed; -1 when the terminal went away. */
static int read_keys(tui *t, short revents)
{
    wint_t k;
    int type, got = 0;
    while ((type = get_wch(&k)) != ERR) {
        chp_keymap_on(&t->keys, t->a, type, k);
        got = 1;
        if (t->a->quit)
            break;
    }
    return !got && (revents & ZMQ_POLLERR) ? -1 : 0;
}

static int loop(tui *t)
{
    chp_app *a = t->a;
    while (!a->quit && !got_term) {
        if (got_winch || t->keys.resized) {
            got_winch = t->keys.resized = 0;
            chp_draw_resize();
            a->dirty = 1;
        }
        if (a->dirty) {
            a->dirty = 0;
            chp_draw(a);
        }
        int sfd = chp_share_child_fd(&t->share);
        zmq_pollitem_t it[5] = {
            {NULL, STDIN_FILENO, ZMQ_POLLIN, 0},
            {NULL, sigpipe_fd[0], ZMQ_POLLIN, 0},
            {chp_ctl_req_socket(t->ctl), 0, ZMQ_POLLIN, 0},
            {chp_ctl_evt_socket(t->ctl), 0, ZMQ_POLLIN, 0},
            {NULL, sfd, sfd >= 0 ? ZMQ_POLLIN : 0, 0},
        };
        int rc = zmq_poll(it, 5, 500);
        if (rc > 0 && (it[4].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            chp_share_child_read(&t->share, a);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc > 0 && (it[1].revents & ZMQ_POLLIN)) {
            char b[64];
            while (read(sigpipe_fd[0], b, sizeof b) > 0) {
            }
        }
        if (rc > 0 && (it[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) &&
            read_keys(t, it[0].revents) < 0)
            return -1;
        pump(t);
        watch_node(t, chp_mono_ms());
        chp_app_tick(a, chp_mono_ms()); /* after watch_node, which may have sent `id` */
    }
    return 0;
}

/* ---------------------------------------------------------------- startup */

static void usage(FILE *f)
{
    size_t n;
    const chp_cmd_spec *t = chp_cmd_table(&n);
    fprintf(f, _("usage: chapar-tui [--home DIR] [--bidi auto|app|terminal]\n"
                 "The Chapar terminal UI. Talks to the chapard of DIR (default $CHAPAR_HOME,\n"
                 "$XDG_DATA_HOME/chapar, ~/.local/share/chapar); starts one in the background\n"
                 "when none runs (log in DIR/chapard.log), and walks you through creating an\n"
                 "identity on first start. Opens in #lan: type a line and Enter posts it.\n"
                 "\n"
                 "options:\n"
                 "  --home DIR      data dir\n"
                 "  --bidi MODE     right-to-left text: auto (the default: terminal when\n"
                 "                  it does BiDi itself, as VTE, Konsole and mlterm do),\n"
                 "                  app (chapar-tui reorders and joins the letters) or\n"
                 "                  terminal (left as typed); /set bidi MODE later\n"
                 "  --help          this text\n"
                 "  --version       print the version\n"
                 "\n"
                 "environment:\n"
                 "  CHAPARD_ARGS    extra words for a chapard this program starts,\n"
                 "                  e.g. \"--no-discovery --listen 127.0.0.1:0\"\n"
                 "  CHAPAR_CALENDAR gregorian or jalali, CHAPAR_DIGITS latin or persian\n"
                 "                  (default: jalali and persian under a Persian locale;\n"
                 "                  /set calendar, /set digits)\n"
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
                 "commands:\n"));
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-26s %s\n", t[i].usage, _(t[i].help));
    fprintf(f, _("A line without a leading / is sent to the open conversation; //text sends "
                 "/text.\nMessage marks: \u25cb queued, \u2713 sent, \u2713\u2713 delivered.\n"));
}

/* The command line; -1 to go on, else the exit status. */
static int options(tui *t, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("chapar-tui %s\n", CHP_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--home")) {
            if (i + 1 >= argc) {
                fprintf(stderr, _("chapar-tui: --home needs a directory\n"));
                return 2;
            }
            snprintf(t->home, sizeof t->home, "%s", argv[++i]);
        } else if (!strcmp(argv[i], "--bidi")) {
            int m = i + 1 < argc ? chp_bidi_mode_parse(argv[i + 1]) : -1;
            if (m < 0) {
                fprintf(stderr, _("chapar-tui: --bidi takes auto, app or terminal\n"));
                return 2;
            }
            t->bidi = (chp_bidi_mode)m;
            i++;
        } else {
            fprintf(stderr, _("chapar-tui: unknown option '%s' (try --help)\n"), argv[i]);
            return 2;
        }
    }
    return -1;
}

static int utf8_locale(void)
{
    const char *cs = nl_langinfo(CODESET);
    return cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
}

/* The data dir, a UTF-8 locale, a terminal, libsodium; -1 when all is
 * there, else the exit status after saying what is missing. */
static int prepare(tui *t)
{
    if (!t->home[0] && chp_home_default(t->home, sizeof t->home) != 0) {
        fprintf(stderr, _("chapar-tui: no data dir: set --home, CHAPAR_HOME or HOME\n"));
        return 2;
    }
    char why[4400];
    if (chp_home_problem(t->home, why, sizeof why)) {
        fprintf(stderr, "chapar-tui: %s\n", why);
        return 1;
    }
    setlocale(LC_ALL, "");
    if (!utf8_locale())
        setlocale(LC_ALL, "C.UTF-8");
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, _("chapar-tui: needs a terminal (use chapar for scripts)\n"));
        return 1;
    }
    if (chp_crypto_init() != CHP_OK) {
        fprintf(stderr, _("chapar-tui: libsodium failed to initialise\n"));
        return 1;
    }
    return -1;
}

/* Starts a chapard when none serves the data dir (and none is starting:
 * it would hold the lock). -1 to go on, else the exit status. */
static int start_daemon(tui *t)
{
    int lock = -1;
    if (!chp_ctl_daemon_running(t->home) && chp_home_make(t->home) != 0) {
        fprintf(stderr, _("chapar-tui: cannot create %s: %s\n"), t->home, strerror(errno));
        return 1;
    }
    if (chp_ctl_daemon_running(t->home) ||
        ((lock = chp_home_lock(t->home)) < 0 && errno == EWOULDBLOCK))
        return -1;
    if (lock >= 0)
        close(lock);
    if (chp_ctl_spawn_daemon(t->home, t->spawned_path, sizeof t->spawned_path, &t->child) !=
        CHP_OK) {
        fprintf(stderr, _("chapar-tui: cannot start chapard for %s: %s\n"), t->home,
                strerror(errno));
        return 1;
    }
    t->spawned = 1;
    return -1;
}

static void fcntl_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* The signal pipe and the handlers; 0, or -1 when there is no pipe. */
static int set_signals(void)
{
    if (pipe(sigpipe_fd) != 0)
        return -1;
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
    return 0;
}

static void start_screen(void)
{
    set_escdelay(50);
    initscr();
    raw();
    noecho();
    nonl();
    chp_keymap_setup();
    chp_draw_setup();
}

/* The app on the control API, the screen, the loop; the exit status. */
static int run_tui(tui *t)
{
    int rc = 1;
    chp_app_io io = {
        .send = io_send, .reset = io_reset, .pending = io_pending, .overdue = io_overdue};
    int ok = chp_ctl_new(t->home, &t->ctl) == CHP_OK;
    io.ctx = t->ctl;
    chp_share_child_init(&t->share, t->home);
    io.share_ctx = &t->share;
    io.share = chp_share_child_ctl;
    if (!ok || chp_app_new(t->home, t->spawned, &io, NULL, &t->a) != CHP_OK || set_signals() != 0) {
        fprintf(stderr, _("chapar-tui: cannot set up (out of memory or sockets)\n"));
        goto out;
    }
    chp_prefs_init(&t->a->prefs, t->bidi, NULL);
    start_screen();
    if (t->spawned)
        chp_app_notice(t->a,
                       _("started chapard in the background for %s (%s; log: %s/chapard.log)"),
                       t->home, t->spawned_path, t->home);
    chp_app_notice(t->a, _("chapar-tui %s: /help lists commands and keys"), CHP_VERSION);
    chp_app_start(t->a);
    rc = loop(t) == 0 ? 0 : 1;
    endwin();
    chp_share_child_stop(&t->share);
    if (t->a->wiped)
        printf(_("chapar-tui: identity and data in %s wiped\n"), t->home);
    else if (t->child > 0 && t->a->no_identity && t->a->ph != CHP_PH_CREATING)
        stop_child(t);
out:
    chp_app_destroy(&t->a);
    chp_ctl_destroy(&t->ctl);
    for (int i = 0; i < 2; i++)
        if (sigpipe_fd[i] >= 0)
            close(sigpipe_fd[i]);
    return rc;
}

int main(int argc, char **argv)
{
    chp_i18n_init();
    tui *t = calloc(1, sizeof *t);
    if (!t)
        return 1;
    int rc = options(t, argc, argv);
    if (rc < 0)
        rc = prepare(t);
    if (rc < 0)
        rc = start_daemon(t);
    if (rc < 0)
        rc = run_tui(t);
    free(t);
    return rc;
}
