/* app.h - chapar-tui without curses: the phases (connecting, the first-start
 * wizard, unlock, ready), what it asks chapard and does with the replies
 * and events, the lines and commands typed, the node going down and coming
 * back. The front end (draw.h, keymap.h, tui.c) shows it and feeds it keys;
 * chapard is reached through chp_app_io, so tests drive it without sockets,
 * and time through a chp_clock. */
#ifndef CHP_APP_H
#define CHP_APP_H

#include "node/common/clock.h"
#include "proto/err.h"
#include "ui-tui/input.h"
#include "ui-tui/life.h"
#include "ui-tui/model.h"
#include "ui-tui/prefs.h"

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#define CHP_APP_UNSENT_MAX  16    /* lines on their way to chapard at once */
#define CHP_APP_PASS_CAP    1024  /* a passphrase typed in the wizard, with its NUL */
#define CHP_APP_NICK_BYTES  33    /* CHP_NICK_MAX (node/msg/account.h) + NUL */
#define CHP_APP_TIMEOUT_MS  6000  /* a request the daemon has not answered by then */
#define CHP_APP_SLOW_MS     60000 /* init / unlock run Argon2id; a new daemon starts */
#define CHP_APP_STATUS_MS   10000 /* peers count refresh, besides `peer` events */
#define CHP_APP_RETRY_MS    3000  /* asking `id` again while the daemon is away */
#define CHP_APP_HISTORY_MAX "500" /* messages a `history` request asks for */

typedef enum chp_phase {
    CHP_PH_CONNECTING, /* `id` sent, waiting */
    CHP_PH_ASK_NICK,   /* first start: the wizard */
    CHP_PH_ASK_PASS,
    CHP_PH_ASK_PASS2,
    CHP_PH_ASK_NONE,
    CHP_PH_CREATING, /* `init` sent */
    CHP_PH_ASK_UNLOCK,
    CHP_PH_UNLOCKING, /* `unlock` sent */
    CHP_PH_READY,
    CHP_PH_NO_USER, /* a relay, or a daemon without messaging: node commands only */
    CHP_PH_CONFIRM_WIPE,
} chp_phase;

/* What a reply answers: the kind a request went out with. */
typedef enum chp_req {
    CHP_R_ID,
    CHP_R_INIT,
    CHP_R_UNLOCK,
    CHP_R_CONVS,
    CHP_R_HISTORY,
    CHP_R_READ,
    CHP_R_SEND,
    CHP_R_MSG, /* a /msg: like CHP_R_SEND, and on success opens the conversation */
    CHP_R_STATUS,
    CHP_R_JOIN,
    CHP_R_LEAVE,
    CHP_R_DONE,  /* ok: show ctx as a notice; error: show the error */
    CHP_R_LINES, /* ok: show each line of the payload as a notice, after ctx */
    CHP_R_IDSHOW,
    CHP_R_PEER, /* like CHP_R_DONE, without reloading the conversations */
    CHP_R_NICK,
    CHP_R_WIPE,
    CHP_R_ROOMS,
    CHP_R_DISC,     /* /discovery: ctx is the argument ("" asks) */
    CHP_R_DISC_WIZ, /* the wizard asks whether the node is visible */
    CHP_R_REQUESTS, /* pending contact requests: what "~nick" stands for */
    CHP_R_BUNDLE,   /* /bundle import: the job, then its bundle-status */
    CHP_R_FILES,    /* `files` for /files, /save, /open: through chp_app.files_reply */
    CHP_R_COUNT,
} chp_req;

/* How the app reaches chapard's control API (docs/CONTROL.md); the front
 * end wires it to node/client, a test to a recorder. Replies come back in
 * the order of the requests, through chp_app_on_reply. */
typedef struct chp_app_io {
    void *ctx;
    /* Sends cmd with nargs arguments (args[i], lens[i] bytes); kind
     * (chp_req) and tag (a conversation name, at most 255 bytes) come back
     * with the reply. secret_last: the last argument is a passphrase.
     * CHP_OK, or an error when the request cannot go out. */
    int (*send)(void *ctx, int kind, const char *tag, const char *cmd, int nargs,
                const char *const *args, const size_t *lens, int secret_last);
    /* Forgets the requests not answered yet and reconnects. */
    int (*reset)(void *ctx);
    /* Requests sent and not answered yet. */
    size_t (*pending)(void *ctx);
    /* 1 when the oldest pending request is older than timeout_ms at now. */
    int (*overdue)(void *ctx, uint64_t now, uint64_t timeout_ms);
    /* /share-app: starts (start 1; listen: its --listen, NULL for the
     * default) or stops (0) `chapar share-app` as a child of the front
     * end; what it prints comes back line by line through
     * chp_app_share_line, its end through chp_app_share_ended. CHP_OK,
     * or an error when it cannot start. NULL: not offered. */
    void *share_ctx;
    int (*share)(void *share_ctx, int start, const char *listen);
} chp_app_io;

/* A line sent and not answered yet: given back if chapard stops
 * answering, never lost. */
typedef struct chp_unsent {
    char conv[256];
    char *text; /* owned */
} chp_unsent;

/* The front end reads these fields to draw. It sets quit and dirty, and
 * life (life.h) while it watches the node's process; the rest changes
 * through the functions below. */
typedef struct chp_app chp_app;
struct chp_app {
    char home[4096];               /* the data dir */
    chp_model *m;                  /* conversations and notices (owned) */
    chp_input *in;                 /* the input line (owned) */
    chp_phase ph;                  /* what Enter does now */
    char nick[CHP_APP_NICK_BYTES]; /* the user's, from `id` */
    char fp[64];                   /* their fingerprint */
    char uid[160];                 /* their ID */
    int peers;                     /* -1: unknown */
    int relays;                    /* of them relays (reachability of stored mail) */
    int store_full;                /* the last status said `store full: yes` */
    int quit;                      /* leave the loop */
    int wiped;                     /* /wipe went through: say so on the way out */
    int dirty;                     /* something changed: the front end redraws */
    int spawned;                   /* the UI started the first chapard */
    int no_identity;               /* the node said it has no identity yet (the wizard runs) */
    int away;                      /* the daemon stopped answering */
    int answered;                  /* the daemon has answered once: it is up */
    chp_life life;                 /* up, down, ours, restart backoff (life.h) */
    uint64_t t_start;              /* ms: when the node was started or came back */
    chp_app_io io;                 /* a copy of what chp_app_new was given */
    const chp_clock *clock;        /* NULL: the real one */
    char pass[CHP_APP_PASS_CAP];   /* the first passphrase entry while the second is typed */
    size_t passlen;                /* its length */
    char wizard_nick[CHP_APP_NICK_BYTES]; /* the nickname the wizard took */
    int first_convs;                      /* the first conversation list selects #lan */
    char want[256];                       /* select this conversation when the list next arrives */
    int full_said;                        /* "the input line is full" shown for this line */
    int reload; /* the node is back: reload the conversations once it answers `id` */
    uint64_t next_status, next_retry;      /* ms: the next `status`, the next `id` while away */
    char bundle_job[24];                   /* a /bundle import running: its job, else "" */
    uint64_t next_bundle;                  /* ms: its next `bundle-status`, 0 = one is asked */
    chp_unsent unsent[CHP_APP_UNSENT_MAX]; /* oldest first: replies come in order */
    size_t nunsent;
    int sharing;         /* a `chapar share-app` child runs (/share-app) */
    char share_url[128]; /* the page's address it printed, "" until then */
    char hint[256];      /* the status bar's: the names Tab found, "" once a key is pressed */
    chp_prefs prefs;     /* right-to-left display, calendar, digits (/set) */
    /* The handler of CHP_R_FILES replies (app_file.c sets it). */
    void (*files_reply)(struct chp_app *a, const char *tag, int ok, char *p, size_t len);
};

/* A new app for the data dir home, connecting (chp_app_start sends the
 * first request). spawned: the UI started the chapard it talks to. io is
 * copied; clock (NULL: the real one) must outlive the app. CHP_OK or
 * CHP_E_NOMEM. */
CHP_WUR int chp_app_new(const char *home, int spawned, const chp_app_io *io, const chp_clock *clock,
                        chp_app **out);
/* Wipes the passphrase held, frees the lines not answered. Accepts NULL;
 * sets *ap NULL. */
void chp_app_destroy(chp_app **ap);
/* Asks chapard who it is: its answer starts the wizard, the unlock prompt
 * or the conversations. */
void chp_app_start(chp_app *a);

/* Appends a notice (printf format, one line) to the open conversation. */
void chp_app_notice(chp_app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A reply to a request sent with kind and tag: ok (the daemon said "ok")
 * and its payload p (len bytes, NUL-terminated; the app may change it in
 * place, the caller still owns and frees it). */
void chp_app_on_reply(chp_app *a, int kind, const char *tag, int ok, char *p, size_t len);
/* An event (docs/CONTROL.md): topic and body, NUL-terminated; the app may
 * change body in place, the caller owns both. */
void chp_app_on_event(chp_app *a, const char *topic, char *body);
/* Timers at now (ms): a request not answered in time (the daemon is away:
 * lines unsent are given back), asking `id` again while away, the periodic
 * `status`. Does nothing while the node is down. */
void chp_app_tick(chp_app *a, uint64_t now);

/* The node is gone at now (how: what its exit status says, or NULL): says
 * so, gives back the lines not answered, and (a node the UI started that
 * had run) schedules its restart in life. Once per going down. */
void chp_app_node_down(chp_app *a, uint64_t now, const char *how);
/* A chapard was started at now, by the front end (ours) or by someone
 * else meanwhile: not answered yet; ask it who it is. */
void chp_app_node_started(chp_app *a, uint64_t now, int ours);
/* A node the UI did not start answers on the control socket again. */
void chp_app_node_found(chp_app *a);

/* A line the share-app child printed: its URL (shown in the status bar
 * and as a notice), or what went wrong. app_cmd.c */
void chp_app_share_line(chp_app *a, const char *line);
/* The child is gone (how: its exit status in words). app_cmd.c */
void chp_app_share_ended(chp_app *a, const char *how);

/* Selects conversation i (ignored when out of range) and loads it. */
void chp_app_select(chp_app *a, int i);
/* Selects the next (dir > 0) or previous conversation, wrapping around. */
void chp_app_cycle(chp_app *a, int dir);
/* A character typed: inserted, or (once per line) a notice that the line
 * is full. */
void chp_app_type(chp_app *a, wchar_t c);

/* Enter: what the input line means in this phase (a wizard answer, a
 * passphrase, a command, a line to send). app_cmd.c */
void chp_app_submit(chp_app *a);
/* Tab: completes a command, a sender seen in this conversation or a
 * conversation name. app_cmd.c */
void chp_app_complete(chp_app *a);

/* The input line's prompt into buf (cap bytes); returns buf or a static
 * string. */
const char *chp_app_prompt(const chp_app *a, char *buf, size_t cap);
/* The status bar's text: who, peers, the node's state. */
void chp_app_status_bar(const chp_app *a, char *buf, size_t cap);

#endif
