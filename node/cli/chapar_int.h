/* chapar_int.h - what the files of the chapar CLI share: the control
 * socket client (requests and their replies), argument checks and
 * messages, and the commands chapar_show.c implements. Nothing outside
 * chapar*.c includes it. */
#ifndef CHP_CHAPAR_INT_H
#define CHP_CHAPAR_INT_H

/* The nick rule in words (chp_nick_check), for "bad nick: " errors; takes
 * CHP_NICK_MAX as its one %d. */
#define CHP_NICK_RULE                                                                              \
    "1 to %d bytes of UTF-8, no control, invisible or bidi characters, no spaces at an end, "      \
    "not starting with '~' or '*'"

#include <stddef.h>

#define REPLY_TIMEOUT_MS 5000
#define WIPE_TIMEOUT_MS  5000
#define STOP_TIMEOUT_MS  30000 /* a proof of work being solved finishes first */
#define TEXT_MAX         65536 /* bytes of UTF-8 per message (CONTROL.md) */
#define MAX_ARGS         4     /* argument frames of the largest request */
#define PROMPT_TRIES     3     /* passphrases asked on a terminal before giving up */
#define EXIT_CANCEL      130   /* Ctrl-C at a prompt, as a shell reports an interrupt */

/* A connection to one daemon: a DEALER for requests and, once asked for,
 * a SUB for events. */
typedef struct ctl {
    const char *home;
    void *zctx;
    void *req;
    void *sub; /* NULL until ctl_subscribe */
} ctl;

/* A reply: ok or error, and its payload (malloc'ed, NUL-terminated). */
typedef struct reply {
    int ok;
    char *body;
    size_t len;
} reply;

/* One option of a subcommand: a value (val set) or a flag (flag set). */
typedef struct opt {
    const char *name;
    const char **val;
    int *flag;
} opt;

/* chapar_ctl.c: messages. fail prints "chapar: ..." and returns code. */
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int not_running(const char *home);

/* chapar_ctl.c: the control socket. */
void sock_path(const char *home, const char *name, char *out, size_t cap);
/* Whether a daemon serves home's control socket right now. */
int daemon_up(const char *home);
void reply_free(reply *r);
void ctl_close(ctl *c);
/* A socket of type connected to DIR/name (control or events), or NULL. */
void *ctl_socket(ctl *c, int type, const char *name);
/* Connects to home's daemon; 0, or 1 after saying it is not running. */
int ctl_open(ctl *c, const char *home);
/* Receives one frame into a malloc'ed NUL-terminated buffer. */
int recv_frame(void *s, char **buf, size_t *len, int *more);
/* Sends [cmd, args[0..n)] and waits for the two-frame reply. Returns 0
 * with *r filled (ok or error), or 1 after printing why there is none. */
int ctl_call(ctl *c, reply *r, const char *cmd, int n, const char *const *args, const size_t *lens);
/* Prints an error reply as our one line on stderr; returns 1. */
int reply_error(const reply *r);
/* Prints a payload with exactly one final newline (none if empty). */
void print_payload(const char *p, size_t len);
/* One request whose ok payload is printed as it is: the whole command. */
int run(const char *home, const char *cmd, int n, const char *const *args, const size_t *lens);
/* run() with NUL-terminated string arguments (up to MAX_ARGS). */
int run_str(const char *home, const char *cmd, int n, ...);

/* chapar_ctl.c: arguments. Each check returns 0, or 2 after one line. */
int parse_opts(int argc, char **argv, const opt *opts, int nopts, char **pos, int maxpos, int *npos,
               const char *use);
int check_id(const char *s);
int looks_like_id(const char *s);
int check_who(const char *who);
int check_room(const char *room);
int room_arg(const char *in, char *out, size_t cap);
int check_name(const char *name);
int have_tty(void);
/* A passphrase from file, or asked on the terminal; 0 or the exit code. */
int get_passphrase(const char *file, const char *prompt, int confirm, char *buf, size_t cap,
                   size_t *len, const char *flags);

/* chapar_show.c: commands that show what the daemon knows, and stop. */
int cmd_inbox(const char *home, int argc, char **argv);
int cmd_history(const char *home, int argc, char **argv);
int cmd_conversations(const char *home, int argc, char **argv);
int cmd_outbox(const char *home, int argc, char **argv);
int cmd_nick(const char *home, int argc, char **argv);
int cmd_read(const char *home, int argc, char **argv);
int cmd_status(const char *home, int argc, char **argv);
int cmd_stop(const char *home, int argc, char **argv);

#endif
