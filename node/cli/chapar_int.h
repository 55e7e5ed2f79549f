/* chapar_int.h - what the files of the chapar CLI share: requests to the
 * daemon through node/client and the one-line messages about them,
 * argument checks, and the commands chapar_show.c implements. Nothing
 * outside chapar*.c includes it; everything here is cli_ prefixed. */
#ifndef CHP_CHAPAR_INT_H
#define CHP_CHAPAR_INT_H

#include "node/client/ctl.h"
#include "node/common/i18n.h"
#include "proto/buf.h"

#include <stddef.h>
#include <stdint.h>

/* A nick refused, and the rule in words (chp_nick_check); takes CHP_NICK_MAX
 * as its one %d. Written _(CHP_NICK_BAD) where it is printed. */
#define CHP_NICK_BAD                                                                               \
    N_("bad nick: 1 to %d bytes of UTF-8, no control, invisible or bidi characters, no spaces "    \
       "at an end, not starting with '~' or '*'")

#define REPLY_TIMEOUT_MS 5000
#define WIPE_TIMEOUT_MS  5000
#define STOP_TIMEOUT_MS  30000 /* a proof of work being solved finishes first */
#define TEXT_MAX         65536 /* bytes of UTF-8 per message (CONTROL.md) */
#define MAX_ARGS         4     /* argument frames of the largest request */
#define PROMPT_TRIES     3     /* passphrases asked on a terminal before giving up */
#define EXIT_CANCEL      130   /* Ctrl-C at a prompt, as a shell reports an interrupt */

/* One option of a subcommand: a value (val set) or a flag (flag set). */
typedef struct cli_opt {
    const char *name;
    const char **val;
    int *flag;
} cli_opt;

/* chapar_ctl.c: messages. cli_fail prints "chapar: ..." and returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* chapar_ctl.c: requests. Each returns 0, or the exit code after one line
 * on stderr. */
/* Connects to home's daemon (*c: chp_ctl_destroy it); 1 after saying it
 * is not running. */
int cli_open(const char *home, chp_ctl **c);
/* Sends [cmd, args[0..n)] and waits for the reply: 0 with *r filled (ok
 * or error; chp_ctl_answer_free it), or 1 after saying why there is none. */
int cli_call(chp_ctl *c, chp_ctl_answer *r, const char *cmd, int n, const char *const *args,
             const size_t *lens);
/* cli_call whose last argument is a passphrase: its frame is wiped. */
int cli_call_secret(chp_ctl *c, chp_ctl_answer *r, const char *cmd, int n, const char *const *args,
                    const size_t *lens);
/* How long the requests of this run wait for a reply (REPLY_TIMEOUT_MS
 * unless a command that makes the daemon work longer says otherwise). */
void cli_set_reply_timeout(long ms);
/* Prints an error reply as our one line on stderr; returns 1. */
int cli_reply_error(const chp_ctl_answer *r);
/* Prints a payload with exactly one final newline (none if empty). */
void cli_print_payload(const char *p, size_t len);

/* What a command does with an ok payload (body may be cut up in place):
 * 0, or the exit code after one line. */
typedef int (*cli_print_fn)(char *body, size_t len, void *ctx);
/* One request, the whole command: open, call, print an ok payload with
 * print (ctx handed through), an error reply as our one line, close. */
int cli_run_with(const char *home, const char *cmd, int n, const char *const *args,
                 const size_t *lens, cli_print_fn print, void *ctx);
/* cli_run_with printing the payload as it is. */
int cli_run(const char *home, const char *cmd, int n, const char *const *args, const size_t *lens);
/* cli_run with NUL-terminated string arguments (up to MAX_ARGS). */
int cli_run_str(const char *home, const char *cmd, int n, ...);

/* chapar_ctl.c: arguments. Each check returns 0, or 2 after one line. */
int cli_parse_opts(int argc, char **argv, const cli_opt *opts, int nopts, char **pos, int maxpos,
                   int *npos, const char *use);
int cli_check_id(const char *s);
int cli_check_who(const char *who);
int cli_check_room(const char *room);
int cli_room_arg(const char *in, char *out, size_t cap);
int cli_check_name(const char *name);
int cli_have_tty(void);
/* A passphrase from file, or asked on the terminal; 0 or the exit code. */
int cli_get_passphrase(const char *file, const char *prompt, int confirm, char *buf, size_t cap,
                       size_t *len, const char *flags);

/* chapar_show.c: commands that show what the daemon knows, and stop. */
int cli_cmd_inbox(const char *home, int argc, char **argv);
int cli_cmd_history(const char *home, int argc, char **argv);
int cli_cmd_conversations(const char *home, int argc, char **argv);
int cli_cmd_outbox(const char *home, int argc, char **argv);
int cli_cmd_files(const char *home, int argc, char **argv);
/* chapar_file.c: send-file and file save. */
int cli_cmd_send_file(const char *home, int argc, char **argv);
int cli_cmd_file(const char *home, int argc, char **argv);
int cli_cmd_nick(const char *home, int argc, char **argv);
int cli_cmd_read(const char *home, int argc, char **argv);
int cli_cmd_status(const char *home, int argc, char **argv);
int cli_cmd_stop(const char *home, int argc, char **argv);
/* chapar_verify.c: verify-app (no data dir, no daemon), and the SHA-256
 * of what fd reads to its end (0, or -1 with errno). */
int cli_cmd_verify_app(int argc, char **argv);
int cli_hash_fd(int fd, uint8_t out[32], uint64_t *size);
/* chapar_share.c: share-app. */
int cli_cmd_share_app(const char *home, int argc, char **argv);
/* chapar_page.c: the shared page (HTML) appended to out; 0 or 1 after a
 * line. Values must need no HTML escaping (IDs, manifest file names). */
int cli_share_page(chp_buf *out, const char *id, const char *deb, uint64_t debsize, const char *src,
                   uint64_t srcsize, const char *manifest, const char *arch);

/* chapar_bundle.c: bundle want|export|import. */
int cli_cmd_bundle(const char *home, int argc, char **argv);

#endif
