/* chapar_ctl.c - the chapar CLI's client of the control socket (a
 * request, its two-frame reply, "not running" when nobody answers), its
 * one-line messages and its argument checks. */
#include "node/msg/account.h"
#include "proto/addr.h"
#include "node/cli/chapar_int.h"
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static const char *prog = "chapar";

int fail(int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int not_running(const char *home)
{
    char why[4400];
    if (chp_home_problem(home, why, sizeof why)) /* chapard could not start there */
        return fail(1, "%s", why);
    return fail(1, "chapard is not running for %s (start it with: chapard --home %s)", home, home);
}

/* ---- the control socket ---- */

/* Whether something accepts connections on the control socket: a socket
 * file left by a killed daemon refuses at once, instead of making us wait
 * for a reply that never comes. */
static int daemon_listening(const char *path)
{
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof sa.sun_path)
        return 1; /* cannot tell: let ZeroMQ try */
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return 1;
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

void sock_path(const char *home, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", home, name);
}

/* Whether a daemon serves home's control socket right now. */
int daemon_up(const char *home)
{
    char sock[4200];
    struct stat st;
    sock_path(home, "control", sock, sizeof sock);
    return stat(sock, &st) == 0 && daemon_listening(sock);
}

void reply_free(reply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

void ctl_close(ctl *c)
{
    if (c->sub)
        zmq_close(c->sub);
    if (c->req)
        zmq_close(c->req);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    memset(c, 0, sizeof *c);
}

void *ctl_socket(ctl *c, int type, const char *name)
{
    char sock[4200], ep[4300];
    int zero = 0;
    sock_path(c->home, name, sock, sizeof sock);
    snprintf(ep, sizeof ep, "ipc://%s", sock);
    void *s = zmq_socket(c->zctx, type);
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(s, ep) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Connects to home's daemon; 0, or 1 after saying it is not running. */
int ctl_open(ctl *c, const char *home)
{
    memset(c, 0, sizeof *c);
    c->home = home;
    if (!daemon_up(home))
        return not_running(home);
    c->zctx = zmq_ctx_new();
    c->req = c->zctx ? ctl_socket(c, ZMQ_DEALER, "control") : NULL;
    if (!c->req) {
        ctl_close(c);
        return fail(1, "cannot reach chapard in %s: %s", home, zmq_strerror(errno));
    }
    return 0;
}

/* Receives one frame into a malloc'ed NUL-terminated buffer. */
int recv_frame(void *s, char **buf, size_t *len, int *more)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, 0) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    *len = zmq_msg_size(&m);
    *buf = malloc(*len + 1);
    if (*buf) {
        memcpy(*buf, zmq_msg_data(&m), *len);
        (*buf)[*len] = '\0';
    }
    *more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    return *buf ? 0 : -1;
}

/* Sends [cmd, args[0..n)] and waits for the two-frame reply. Returns 0
 * with *r filled (ok or error), or 1 after printing why there is none. */
int ctl_call(ctl *c, reply *r, const char *cmd, int n, const char *const *args, const size_t *lens)
{
    memset(r, 0, sizeof *r);
    int bad = zmq_send(c->req, cmd, strlen(cmd), n ? ZMQ_SNDMORE : 0) < 0;
    for (int i = 0; i < n && !bad; i++)
        bad = zmq_send(c->req, args[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0;
    if (bad)
        return fail(1, "cannot reach chapard in %s: %s", c->home, zmq_strerror(errno));
    zmq_pollitem_t pi = {c->req, 0, ZMQ_POLLIN, 0};
    int ready = zmq_poll(&pi, 1, REPLY_TIMEOUT_MS);
    if (ready < 0)
        return fail(1, "cannot reach chapard in %s: %s", c->home, zmq_strerror(errno));
    if (ready == 0)
        return not_running(c->home);
    char *status = NULL;
    size_t slen;
    int more = 0;
    if (recv_frame(c->req, &status, &slen, &more) != 0 || !more ||
        recv_frame(c->req, &r->body, &r->len, &more) != 0 || more) {
        free(status);
        reply_free(r);
        return fail(1, "malformed reply from chapard");
    }
    r->ok = slen == 2 && !memcmp(status, "ok", 2);
    free(status);
    return 0;
}

/* Prints an error reply as our one line on stderr; returns 1. */
int reply_error(const reply *r)
{
    return fail(1, "%.*s", (int)strcspn(r->body, "\n"), r->body);
}

/* Prints a payload with exactly one final newline (none if empty). */
void print_payload(const char *p, size_t len)
{
    fwrite(p, 1, len, stdout);
    if (len && p[len - 1] != '\n')
        fputc('\n', stdout);
}

/* One request whose ok payload is printed as it is: the whole command. */
int run(const char *home, const char *cmd, int n, const char *const *args, const size_t *lens)
{
    ctl c;
    reply r;
    int rc = ctl_open(&c, home);
    if (rc)
        return rc;
    if ((rc = ctl_call(&c, &r, cmd, n, args, lens)) == 0) {
        if (r.ok)
            print_payload(r.body, r.len);
        else
            rc = reply_error(&r);
        reply_free(&r);
    }
    ctl_close(&c);
    return rc;
}

/* run() with NUL-terminated string arguments (up to MAX_ARGS). */
int run_str(const char *home, const char *cmd, int n, ...)
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
    return run(home, cmd, n, args, lens);
}

/* ---- arguments ---- */

/* Splits args into the options in opts and up to maxpos positionals.
 * 0, or 2 after printing the usage line. */
int parse_opts(int argc, char **argv, const opt *opts, int nopts, char **pos, int maxpos, int *npos,
               const char *use)
{
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1] || (a[1] >= '0' && a[1] <= '9')) {
            if (*npos == maxpos)
                return fail(2, "usage: chapar %s", use);
            pos[(*npos)++] = argv[i];
            continue;
        }
        int k = 0;
        while (k < nopts && strcmp(a, opts[k].name))
            k++;
        if (k == nopts)
            return fail(2, "unknown option '%s'; usage: chapar %s", a, use);
        if (opts[k].flag) {
            *opts[k].flag = 1;
        } else if (i + 1 < argc) {
            *opts[k].val = argv[++i];
        } else {
            return fail(2, "%s needs a value; usage: chapar %s", a, use);
        }
    }
    return 0;
}

/* A user ID is checked here, so a typo never reaches the daemon. */
int check_id(const char *s)
{
    uint8_t pk[32];
    int rc = chp_id_parse(s, strlen(s), pk);
    if (rc != CHP_OK)
        return fail(2, "bad user ID '%s': %s", s, chp_strerror(rc));
    return 0;
}

/* WHO is a contact name or an ID; anything that starts like an ID is one. */
int looks_like_id(const char *s)
{
    return !strncmp(s, "chp1", 4) || !strncmp(s, "CHP1", 4);
}

int check_who(const char *who)
{
    if (!*who)
        return fail(2, "empty contact name");
    return looks_like_id(who) ? check_id(who) : 0;
}

int check_room(const char *room)
{
    char canon[CHP_ROOM_NAME_MAX + 1];
    size_t cl;
    int rc = chp_room_canon(room, strlen(room), canon, &cl);
    if (rc != CHP_OK)
        return fail(2, "bad room name '%s': %s (a room is '#' and a word)", room, chp_strerror(rc));
    return 0;
}

/* ROOM may be given without its '#' (the shell takes an unquoted #lan for
 * a comment): "lan" becomes "#lan". */
int room_arg(const char *in, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", in[0] == '#' ? "" : "#", in);
    return check_room(out);
}

/* A contact name: printable UTF-8, and not mistakable for a room or ID. */
int check_name(const char *name)
{
    size_t len = strlen(name);
    if (!len || !chp_utf8_valid(name, len))
        return fail(2, "bad contact name '%s': empty or not UTF-8", name);
    if (!chp_text_name_ok(name, len))
        return fail(2, "bad contact name: control, invisible or bidi characters, or spaces at "
                       "an end (they make names that look like others)");
    if (name[0] == '#' || looks_like_id(name))
        return fail(2, "bad contact name '%s': it would read as a room or a user ID", name);
    if (name[0] == '~' || name[0] == '*')
        return fail(2, "bad contact name '%s': '~' and '*' mark strangers and notices", name);
    return 0;
}

/* Whether this process may prompt: stdin is a terminal and /dev/tty opens. */
int have_tty(void)
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
int get_passphrase(const char *file, const char *prompt, int confirm, char *buf, size_t cap,
                   size_t *len, const char *flags)
{
    if (!file && !have_tty())
        return fail(2, "no terminal to ask for a passphrase: use %s", flags);
    for (int tries = 1;; tries++) {
        int rc = chp_passphrase_read(file, prompt, confirm, buf, cap, len);
        if (rc == CHP_OK)
            return 0;
        if (file)
            return fail(1, "cannot read a passphrase from %s: %s", file,
                        rc == CHP_E_IO ? strerror(errno) : "its first line is empty");
        if (rc == CHP_E_IO && errno == ECANCELED)
            return fail(EXIT_CANCEL, "cancelled: nothing was changed");
        if (rc == CHP_E_IO)
            return fail(1, "cannot read from the terminal");
        const char *why = confirm ? "the passphrases are empty or differ" : "empty passphrase";
        if (tries == PROMPT_TRIES)
            return fail(1, "%s", why);
        fprintf(stderr, "%s, try again\n", why);
    }
}
