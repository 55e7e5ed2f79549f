/* chapar_ctl.c - the chapar CLI's requests through node/client (a
 * request, its reply, "not running" when nobody answers), its one-line
 * messages and its argument checks. */
#include "node/msg/account.h"
#include "proto/addr.h"
#include "node/cli/chapar_int.h"
#include "node/client/ctl_errtext.h"
#include "proto/crypto.h"
#include "node/common/home.h"
#include "proto/id.h"
#include "proto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "chapar";

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* "chapard is not running for DIR ..." (or why it cannot run there); 1. */
static int not_running(const char *home)
{
    char why[4400];
    if (chp_home_problem(home, why, sizeof why)) /* chapard could not start there */
        return cli_fail(1, "%s", why);
    return cli_fail(1, _("chapard is not running for %s (start it with: chapard --home %s)"), home,
                    home);
}

/* ---- requests ---- */

int cli_open(const char *home, chp_ctl **c)
{
    *c = NULL;
    if (!chp_ctl_daemon_running(home))
        return not_running(home);
    int rc = chp_ctl_open(home, NULL, c);
    if (rc != CHP_OK)
        return cli_fail(1, _("cannot reach chapard in %s: %s"), home,
                        rc == CHP_E_IO ? chp_ctl_io_reason() : chp_strerror(rc));
    return 0;
}

static long g_reply_ms = REPLY_TIMEOUT_MS;

void cli_set_reply_timeout(long ms)
{
    g_reply_ms = ms;
}

static int call(chp_ctl *c, chp_ctl_answer *r, const char *cmd, int n, const char *const *args,
                const size_t *lens, int secret)
{
    memset(r, 0, sizeof *r);
    int rc = chp_ctl_send(c, NULL, chp_ctl_now_ms(), cmd, n, args, lens, secret);
    if (rc == CHP_OK)
        rc = chp_ctl_recv(c, g_reply_ms, r);
    if (rc == 1)
        return 0;
    if (rc == 0)
        return not_running(chp_ctl_home(c));
    if (rc == CHP_E_MALFORMED)
        return cli_fail(1, _("malformed reply from chapard"));
    return cli_fail(1, _("cannot reach chapard in %s: %s"), chp_ctl_home(c),
                    rc == CHP_E_IO ? chp_ctl_io_reason() : chp_strerror(rc));
}

int cli_call(chp_ctl *c, chp_ctl_answer *r, const char *cmd, int n, const char *const *args,
             const size_t *lens)
{
    return call(c, r, cmd, n, args, lens, 0);
}

int cli_call_secret(chp_ctl *c, chp_ctl_answer *r, const char *cmd, int n, const char *const *args,
                    const size_t *lens)
{
    return call(c, r, cmd, n, args, lens, 1);
}

int cli_reply_error(const chp_ctl_answer *r)
{
    char line[1024];
    return cli_fail(1, "%s", chp_ctl_error_text(r->body, line, sizeof line));
}

void cli_print_payload(const char *p, size_t len)
{
    fwrite(p, 1, len, stdout);
    if (len && p[len - 1] != '\n')
        fputc('\n', stdout);
}

int cli_run_with(const char *home, const char *cmd, int n, const char *const *args,
                 const size_t *lens, cli_print_fn print, void *ctx)
{
    chp_ctl *c;
    chp_ctl_answer r;
    int rc = cli_open(home, &c);
    if (!rc && !(rc = cli_call(c, &r, cmd, n, args, lens))) {
        rc = r.ok ? print(r.body, r.len, ctx) : cli_reply_error(&r);
        chp_ctl_answer_free(&r);
    }
    chp_ctl_destroy(&c);
    return rc;
}

static int print_as_is(char *body, size_t len, void *ctx)
{
    (void)ctx;
    cli_print_payload(body, len);
    return 0;
}

int cli_run(const char *home, const char *cmd, int n, const char *const *args, const size_t *lens)
{
    return cli_run_with(home, cmd, n, args, lens, print_as_is, NULL);
}

int cli_run_str(const char *home, const char *cmd, int n, ...)
{
    const char *args[MAX_ARGS];
    size_t lens[MAX_ARGS];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < MAX_ARGS; i++) {
        args[i] = va_arg(ap, const char *);
        lens[i] = strlen(args[i]);
    }
    va_end(ap);
    return cli_run(home, cmd, n, args, lens);
}

/* ---- arguments ---- */

/* Splits args into the options in opts and up to maxpos positionals.
 * 0, or 2 after printing the usage line. */
int cli_parse_opts(int argc, char **argv, const cli_opt *opts, int nopts, char **pos, int maxpos,
                   int *npos, const char *use)
{
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1] || (a[1] >= '0' && a[1] <= '9')) {
            if (*npos == maxpos)
                return cli_fail(2, _("usage: chapar %s"), use);
            pos[(*npos)++] = argv[i];
            continue;
        }
        int k = 0;
        while (k < nopts && strcmp(a, opts[k].name))
            k++;
        if (k == nopts)
            return cli_fail(2, _("unknown option '%s'; usage: chapar %s"), a, use);
        if (opts[k].flag) {
            *opts[k].flag = 1;
        } else if (i + 1 < argc) {
            *opts[k].val = argv[++i];
        } else {
            return cli_fail(2, _("%s needs a value; usage: chapar %s"), a, use);
        }
    }
    return 0;
}

/* A user ID is checked here, so a typo never reaches the daemon. */
int cli_check_id(const char *s)
{
    uint8_t pk[32];
    int rc = chp_id_parse(s, strlen(s), pk);
    if (rc != CHP_OK)
        return cli_fail(2, _("bad user ID '%s': %s"), s, chp_strerror(rc));
    return 0;
}

/* WHO is a contact name or an ID; anything that starts like an ID is one. */
static int looks_like_id(const char *s)
{
    return !strncmp(s, "chp1", 4) || !strncmp(s, "CHP1", 4);
}

int cli_check_who(const char *who)
{
    if (!*who)
        return cli_fail(2, _("empty contact name"));
    return looks_like_id(who) ? cli_check_id(who) : 0;
}

int cli_check_room(const char *room)
{
    char canon[CHP_ROOM_NAME_MAX + 1];
    size_t cl;
    int rc = chp_room_canon(room, strlen(room), canon, &cl);
    if (rc != CHP_OK)
        return cli_fail(2, _("bad room name '%s': %s (a room is '#' and a word)"), room,
                        chp_strerror(rc));
    return 0;
}

/* ROOM may be given without its '#' (the shell takes an unquoted #lan for
 * a comment): "lan" becomes "#lan". */
int cli_room_arg(const char *in, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", in[0] == '#' ? "" : "#", in);
    return cli_check_room(out);
}

/* A contact name: printable UTF-8, and not mistakable for a room or ID. */
int cli_check_name(const char *name)
{
    size_t len = strlen(name);
    if (!len || !chp_utf8_valid(name, len))
        return cli_fail(2, _("bad contact name '%s': empty or not UTF-8"), name);
    if (!chp_text_name_ok(name, len))
        return cli_fail(2,
                        _("bad contact name: control, invisible or bidi characters, or spaces at "
                          "an end (they make names that look like others)"));
    if (name[0] == '#' || looks_like_id(name))
        return cli_fail(2, _("bad contact name '%s': it would read as a room or a user ID"), name);
    if (name[0] == '~' || name[0] == '*')
        return cli_fail(2, _("bad contact name '%s': '~' and '*' mark strangers and notices"),
                        name);
    return 0;
}

/* Whether this process may prompt: stdin is a terminal and /dev/tty opens. */
int cli_have_tty(void)
{
    if (!isatty(STDIN_FILENO))
        return 0;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* A passphrase from file, or asked on the terminal (where an empty one,
 * or two that differ, are asked again, PROMPT_TRIES times at most); 0 or
 * the exit code: EXIT_CANCEL when the user pressed Ctrl-C. */
int cli_get_passphrase(const char *file, const char *prompt, int confirm, char *buf, size_t cap,
                       size_t *len, const char *flags)
{
    if (!file && !cli_have_tty())
        return cli_fail(2, _("no terminal to ask for a passphrase: use %s"), flags);
    for (int tries = 1;; tries++) {
        int rc = chp_passphrase_read(file, prompt, confirm, buf, cap, len);
        if (rc == CHP_OK)
            return 0;
        if (file)
            return cli_fail(1, _("cannot read a passphrase from %s: %s"), file,
                            rc == CHP_E_IO ? strerror(errno) : _("its first line is empty"));
        if (rc == CHP_E_IO && errno == ECANCELED)
            return cli_fail(EXIT_CANCEL, _("cancelled: nothing was changed"));
        if (rc == CHP_E_IO)
            return cli_fail(1, _("cannot read from the terminal"));
        const char *why =
            confirm ? _("the passphrases are empty or differ") : _("empty passphrase");
        if (tries == PROMPT_TRIES)
            return cli_fail(1, "%s", why);
        fprintf(stderr, _("%s, try again\n"), why);
    }
}
