/* chapar.c - the scriptable command-line client of chapard, over its
 * control socket (docs/CONTROL.md). Only `init` and `wipe` work without a
 * running daemon; everything else is a request and its reply. */
#include "account.h"
#include "addr.h"
#include "crypto.h"
#include "home.h"
#include "id.h"
#include "keys.h"

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

#define REPLY_TIMEOUT_MS 5000
#define WIPE_TIMEOUT_MS  5000
#define STOP_TIMEOUT_MS  30000 /* a proof of work being solved finishes first */
#define TEXT_MAX         65536 /* bytes of UTF-8 per message (CONTROL.md) */
#define MAX_ARGS         4     /* argument frames of the largest request */
#define PROMPT_TRIES     3     /* passphrases asked on a terminal before giving up */
#define EXIT_CANCEL      130   /* Ctrl-C at a prompt, as a shell reports an interrupt */

static const char *prog = "chapar";

static void usage(FILE *f)
{
    fprintf(f, "usage: chapar [--home DIR] COMMAND [ARGS]\n"
               "Talks to the chapard of DIR (default $CHAPAR_HOME, $XDG_DATA_HOME/chapar,\n"
               "~/.local/share/chapar).\n"
               "\n"
               "identity:\n"
               "  init [--nick NAME] [--passphrase-file F | --no-passphrase]\n"
               "                         create your identity; prints your user ID\n"
               "  unlock [--passphrase-file F]   unlock a daemon that started locked\n"
               "  id                     your user ID (give it to your friends)\n"
               "  wipe [--yes]           destroy the identity, keys and all data of DIR\n"
               "contacts and messages:\n"
               "  contact add ID NAME    contact accept WHO [NAME]   contact block WHO\n"
               "  contact list           contact show WHO            contact requests\n"
               "  contact remove WHO\n"
               "  send TO TEXT           TO: contact name, user ID or #room; TEXT - reads stdin\n"
               "  inbox [--new] [--since TIME] [--wait SECONDS] [--tsv]\n"
               "                         received messages, in order of arrival\n"
               "  outbox [--tsv]         sent messages: ID, TO, STATE, TIME, first words\n"
               "  history NAME|#ROOM [--tsv] [--limit N]   one conversation\n"
               "  conversations [--tsv]  contacts and rooms: unread, last message\n"
               "  read NAME|#ROOM        mark a conversation read\n"
               "  nick [NEW]             show or change your nick\n"
               "  join ROOM [--passphrase-file F]  leave ROOM  rooms\n"
               "node:\n"
               "  status [--raw]         node counters as `key: value` lines\n"
               "  stop                   stop the chapard of DIR and wait until it is gone\n"
               "  address                this node's address, for others' `peer add`\n"
               "  peer add ADDRESS       connect to a node and remember it\n"
               "  peer list              neighbours: key, state, direction, address,\n"
               "                         envelopes received, sent (tab-separated)\n"
               "  peer remove ADDRESS    disconnect and forget\n"
               "  debug publish FILE     inject a raw envelope (for tests)\n"
               "\n"
               "  --help, --version      COMMAND --help describes one command\n"
               "Exit 0 on success; otherwise 1 (or 2 for bad usage) with one line on stderr.\n");
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static int not_running(const char *home)
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

static void sock_path(const char *home, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", home, name);
}

/* Whether a daemon serves home's control socket right now. */
static int daemon_up(const char *home)
{
    char sock[4200];
    struct stat st;
    sock_path(home, "control", sock, sizeof sock);
    return stat(sock, &st) == 0 && daemon_listening(sock);
}

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

static void reply_free(reply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

static void ctl_close(ctl *c)
{
    if (c->sub)
        zmq_close(c->sub);
    if (c->req)
        zmq_close(c->req);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    memset(c, 0, sizeof *c);
}

static void *ctl_socket(ctl *c, int type, const char *name)
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
static int ctl_open(ctl *c, const char *home)
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
static int recv_frame(void *s, char **buf, size_t *len, int *more)
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
static int ctl_call(ctl *c, reply *r, const char *cmd, int n, const char *const *args,
                    const size_t *lens)
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
static int reply_error(const reply *r)
{
    return fail(1, "%.*s", (int)strcspn(r->body, "\n"), r->body);
}

/* Prints a payload with exactly one final newline (none if empty). */
static void print_payload(const char *p, size_t len)
{
    fwrite(p, 1, len, stdout);
    if (len && p[len - 1] != '\n')
        fputc('\n', stdout);
}

/* One request whose ok payload is printed as it is: the whole command. */
static int run(const char *home, const char *cmd, int n, const char *const *args,
               const size_t *lens)
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
static int run_str(const char *home, const char *cmd, int n, ...)
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

/* One option of a subcommand: a value (val set) or a flag (flag set). */
typedef struct opt {
    const char *name;
    const char **val;
    int *flag;
} opt;

/* Splits args into the options in opts and up to maxpos positionals.
 * 0, or 2 after printing the usage line. */
static int parse_opts(int argc, char **argv, const opt *opts, int nopts, char **pos, int maxpos,
                      int *npos, const char *use)
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
static int check_id(const char *s)
{
    uint8_t pk[32];
    int rc = chp_id_parse(s, strlen(s), pk);
    if (rc != CHP_OK)
        return fail(2, "bad user ID '%s': %s", s, chp_strerror(rc));
    return 0;
}

/* WHO is a contact name or an ID; anything that starts like an ID is one. */
static int looks_like_id(const char *s)
{
    return !strncmp(s, "chp1", 4) || !strncmp(s, "CHP1", 4);
}

static int check_who(const char *who)
{
    if (!*who)
        return fail(2, "empty contact name");
    return looks_like_id(who) ? check_id(who) : 0;
}

static int check_room(const char *room)
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
static int room_arg(const char *in, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", in[0] == '#' ? "" : "#", in);
    return check_room(out);
}

/* A contact name: printable UTF-8, and not mistakable for a room or ID. */
static int check_name(const char *name)
{
    size_t len = strlen(name);
    if (!len || !chp_utf8_valid(name, len))
        return fail(2, "bad contact name '%s': empty or not UTF-8", name);
    if (!chp_text_name_ok(name, len))
        return fail(2, "bad contact name: control, invisible or bidi characters, or spaces at "
                       "an end (they make names that look like others)");
    if (name[0] == '#' || looks_like_id(name))
        return fail(2, "bad contact name '%s': it would read as a room or a user ID", name);
    return 0;
}

/* Whether this process may prompt: stdin is a terminal and /dev/tty opens. */
static int have_tty(void)
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
static int get_passphrase(const char *file, const char *prompt, int confirm, char *buf, size_t cap,
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

/* ---- init, unlock, id, wipe ---- */

/* $USER cut to a valid nick (at a UTF-8 boundary), else "anon". */
static void default_nick(char out[CHP_NICK_MAX + 1])
{
    const char *u = getenv("USER");
    size_t l = u ? strlen(u) : 0;
    if (l > CHP_NICK_MAX)
        l = CHP_NICK_MAX;
    while (l > 0 && ((unsigned char)u[l] & 0xc0) == 0x80)
        l--;
    if (l && chp_nick_check(u, l) == CHP_OK) {
        memcpy(out, u, l);
        out[l] = '\0';
    } else {
        strcpy(out, "anon");
    }
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_home(const char *home)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", home);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Creates the identity in home with no daemon running: the identity files,
 * then the nick in the store sealed with the identity's storage key. */
static int init_local(const char *home, const char *nick, const char *pass, size_t plen)
{
    chp_identity *id = NULL;
    chp_store *s = NULL;
    uint8_t key[32];
    const char *what = "cannot create the identity";
    if (make_home(home) != 0)
        return fail(1, "cannot create %s: %s", home, strerror(errno));
    int rc = chp_account_create(home, pass, plen, &id);
    if (rc == CHP_OK) {
        what = "cannot open the store";
        rc = chp_store_open(home, NULL, &s, NULL);
    }
    if (rc == CHP_OK) {
        chp_identity_storage_key(id, key);
        rc = chp_store_unlock(s, key);
        chp_memzero(key, sizeof key);
    }
    if (rc == CHP_OK) {
        what = "cannot save the nick";
        rc = chp_account_set_nick(s, nick, strlen(nick));
    }
    chp_store_close(&s);
    if (rc != CHP_OK) {
        chp_identity_destroy(&id);
        return fail(1, "%s in %s: %s", what, home, chp_strerror(rc));
    }
    char ids[CHP_ID_STR_LEN + 1];
    chp_id_encode(chp_identity_pk(id), ids);
    chp_identity_destroy(&id);
    printf("%s\n", ids);
    return 0;
}

/* Whether the running daemon already has an identity (locked or not). */
static int daemon_has_identity(ctl *c, int *has)
{
    reply r;
    int rc = ctl_call(c, &r, "id", 0, NULL, NULL);
    if (rc)
        return rc;
    *has = r.ok || strstr(r.body, "locked") != NULL;
    reply_free(&r);
    return 0;
}

static int init_daemon(ctl *c, const char *nick, const char *pass, size_t plen)
{
    const char *args[3] = {nick, pass ? "passphrase" : "none", pass};
    size_t lens[3] = {strlen(nick), strlen(args[1]), plen};
    reply r;
    int rc = ctl_call(c, &r, "init", pass ? 3 : 2, args, lens);
    if (rc)
        return rc;
    if (r.ok)
        print_payload(r.body, r.len);
    else
        rc = reply_error(&r);
    reply_free(&r);
    return rc;
}

static int cmd_init(const char *home, int argc, char **argv)
{
    static const char use[] = "init [--nick NAME] [--passphrase-file F | --no-passphrase]";
    const char *nick_arg = NULL, *file = NULL;
    char *pos[1], nick[CHP_NICK_MAX + 1], pass[CHP_PASS_MAX + 1];
    int nopass = 0, npos, has = 0, up = daemon_up(home);
    opt o[] = {{"--nick", &nick_arg, NULL},
               {"--passphrase-file", &file, NULL},
               {"--no-passphrase", NULL, &nopass}};
    int rc = parse_opts(argc, argv, o, 3, pos, 0, &npos, use);
    if (rc)
        return rc;
    if (nopass && file)
        return fail(2, "--passphrase-file and --no-passphrase exclude each other");
    if (nick_arg && chp_nick_check(nick_arg, strlen(nick_arg)) != CHP_OK)
        return fail(2,
                    "bad nick: 1 to %d bytes of UTF-8, no control, invisible or bidi characters, "
                    "no spaces at an end",
                    CHP_NICK_MAX);
    if (nick_arg)
        snprintf(nick, sizeof nick, "%s", nick_arg);
    else
        default_nick(nick);
    ctl c = {0};
    if (up && (rc = ctl_open(&c, home)) == 0)
        rc = daemon_has_identity(&c, &has);
    if (!rc && !up)
        has = chp_account_exists(home);
    if (!rc && has)
        rc = fail(1, "an identity already exists in %s", home);
    size_t plen = 0;
    if (!rc && !nopass)
        rc = get_passphrase(file, "passphrase for the new identity: ", 1, pass, sizeof pass, &plen,
                            "--passphrase-file F or --no-passphrase");
    if (!rc)
        rc = up ? init_daemon(&c, nick, nopass ? NULL : pass, plen)
                : init_local(home, nick, nopass ? NULL : pass, plen);
    chp_memzero(pass, sizeof pass);
    ctl_close(&c);
    return rc;
}

static int cmd_unlock(const char *home, int argc, char **argv)
{
    const char *file = NULL;
    char *pos[1], pass[CHP_PASS_MAX + 1];
    int npos;
    size_t plen = 0;
    opt o[] = {{"--passphrase-file", &file, NULL}};
    int rc = parse_opts(argc, argv, o, 1, pos, 0, &npos, "unlock [--passphrase-file F]");
    if (rc)
        return rc;
    ctl c;
    if ((rc = ctl_open(&c, home)) != 0)
        return rc;
    /* On a terminal a wrong passphrase is asked again; from a file, once. */
    for (int tries = 1; !rc; tries++) {
        reply r;
        rc = get_passphrase(file, "passphrase: ", 0, pass, sizeof pass, &plen,
                            "--passphrase-file F");
        const char *a[1] = {pass};
        if (!rc && (rc = ctl_call(&c, &r, "unlock", 1, a, &plen)) == 0) {
            if (r.ok) {
                print_payload(r.body, r.len);
                reply_free(&r);
                break;
            }
            if (!file && tries < PROMPT_TRIES && !strncmp(r.body, "wrong passphrase", 16))
                fprintf(stderr, "wrong passphrase, try again (%d more)\n", PROMPT_TRIES - tries);
            else
                rc = reply_error(&r);
            reply_free(&r);
        }
    }
    chp_memzero(pass, sizeof pass);
    ctl_close(&c);
    return rc;
}

static int cmd_id(const char *home, int argc, char **argv)
{
    (void)argv;
    if (argc)
        return fail(2, "usage: chapar id");
    ctl c;
    reply r;
    int rc = ctl_open(&c, home);
    if (!rc && !(rc = ctl_call(&c, &r, "id", 0, NULL, NULL))) {
        if (r.ok)
            printf("%.*s\n", (int)strcspn(r.body, "\t\n"), r.body);
        else
            rc = reply_error(&r);
        reply_free(&r);
    }
    ctl_close(&c);
    return rc;
}

/* "type yes" on the terminal; 1 if the user did. */
static int confirm_wipe(const char *home)
{
    FILE *t = fopen("/dev/tty", "r+");
    if (!t)
        return 0;
    fprintf(t,
            "This destroys your identity, keys, contacts and messages in %s.\n"
            "Nothing can bring them back. Type yes to go on: ",
            home);
    fflush(t);
    char line[16] = "";
    int yes = fgets(line, sizeof line, t) && !strcmp(line, "yes\n");
    fclose(t);
    return yes;
}

/* Asks the daemon to wipe, then waits for it to take its socket away. */
static int wipe_daemon(const char *home)
{
    int rc = run_str(home, "wipe", 1, "yes");
    if (rc)
        return rc;
    char sock[4200];
    struct stat st;
    sock_path(home, "control", sock, sizeof sock);
    for (int waited = 0; stat(sock, &st) == 0; waited += 20) {
        if (waited >= WIPE_TIMEOUT_MS)
            return fail(1, "chapard accepted the wipe but still runs after %d s",
                        WIPE_TIMEOUT_MS / 1000);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int cmd_wipe(const char *home, int argc, char **argv)
{
    char *pos[1];
    int yes = 0, npos;
    opt o[] = {{"--yes", NULL, &yes}};
    int rc = parse_opts(argc, argv, o, 1, pos, 0, &npos, "wipe [--yes]");
    if (rc)
        return rc;
    if (!yes && !have_tty())
        return fail(2, "no terminal to confirm the wipe: add --yes");
    if (!yes && !confirm_wipe(home))
        return fail(1, "not confirmed: nothing was wiped");
    struct stat st;
    if (daemon_up(home)) {
        if ((rc = wipe_daemon(home)) != 0)
            return rc;
    } else if (stat(home, &st) != 0) {
        printf("nothing to wipe: %s does not exist\n", home);
        return 0;
    } else if (!chp_home_is_data_dir(home)) {
        return fail(1, "%s is not a Chapar data dir (no identity, no store): nothing wiped", home);
    } else {
        int lock = chp_home_lock(home);
        if (lock < 0 && errno == EWOULDBLOCK)
            return fail(1, "a chapard holds %s but does not answer: stop it, then wipe again",
                        home);
        rc = chp_account_wipe(home);
        if (lock >= 0)
            close(lock);
        if (rc != CHP_OK)
            return fail(1, "wipe of %s incomplete: %s", home, chp_strerror(rc));
    }
    printf("wiped %s: identity, keys and data are gone\n", home);
    return 0;
}

/* ---- contacts ---- */

static int cmd_contact(const char *home, int argc, char **argv)
{
    const char *sub = argc ? argv[0] : "";
    int rc;
    if (!strcmp(sub, "add") && argc == 3) {
        if ((rc = check_id(argv[1])) || (rc = check_name(argv[2])))
            return rc;
        return run_str(home, "contact-add", 2, argv[1], argv[2]);
    }
    if (!strcmp(sub, "accept") && (argc == 2 || argc == 3)) {
        if ((rc = check_who(argv[1])) || (argc == 3 && (rc = check_name(argv[2]))))
            return rc;
        return argc == 3 ? run_str(home, "contact-accept", 2, argv[1], argv[2])
                         : run_str(home, "contact-accept", 1, argv[1]);
    }
    static const char *const one[] = {"block", "show", "remove"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(sub, one[i]) && argc == 2) {
            char cmd[32];
            snprintf(cmd, sizeof cmd, "contact-%s", one[i]);
            return check_who(argv[1]) ? 2 : run_str(home, cmd, 1, argv[1]);
        }
    if (!strcmp(sub, "list") && argc == 1)
        return run_str(home, "contact-list", 0);
    if (!strcmp(sub, "requests") && argc == 1)
        return run_str(home, "contact-requests", 0);
    static const char *const subs[] = {"add",  "accept",   "block", "show",
                                       "list", "requests", "remove"};
    int known = !argc;
    for (size_t k = 0; k < sizeof subs / sizeof subs[0]; k++)
        known |= !strcmp(sub, subs[k]);
    return fail(2,
                "%s%s%susage: chapar contact add ID NAME | accept WHO [NAME] | block WHO | "
                "list | show WHO | requests | remove WHO",
                known ? "" : "'", known ? "" : sub, known ? "" : "' is not a contact subcommand; ");
}

/* ---- send ---- */

/* Reads stdin up to TEXT_MAX + 1 bytes (one more says it is too long) and
 * drops one final line end, as `echo text |` adds it. */
static int read_stdin(char *buf, size_t *len)
{
    size_t n = 0, k;
    while (n < TEXT_MAX + 1 && (k = fread(buf + n, 1, TEXT_MAX + 1 - n, stdin)) > 0)
        n += k;
    if (ferror(stdin))
        return fail(1, "cannot read the text from stdin: %s", strerror(errno));
    if (n && n <= TEXT_MAX && buf[n - 1] == '\n')
        n -= n > 1 && buf[n - 2] == '\r' ? 2 : 1;
    *len = n;
    return 0;
}

static int check_text(const char *t, size_t len)
{
    if (len == 0)
        return fail(2, "empty message: nothing to send");
    if (len > TEXT_MAX)
        return fail(2, "message too long: more than %d bytes", TEXT_MAX);
    if (!chp_utf8_valid(t, len))
        return fail(2, "message is not valid UTF-8");
    return 0;
}

static int cmd_send(const char *home, int argc, char **argv)
{
    if (argc != 2)
        return fail(2, "usage: chapar send TO TEXT (TO: contact name, user ID or #room; "
                       "TEXT - reads stdin)");
    const char *to = argv[0];
    int rc = to[0] == '#' ? check_room(to) : check_who(to);
    if (rc)
        return rc;
    static char buf[TEXT_MAX + 1];
    const char *text = argv[1];
    size_t len = strlen(text);
    if (!strcmp(text, "-")) {
        if ((rc = read_stdin(buf, &len)) != 0)
            return rc;
        text = buf;
    }
    if ((rc = check_text(text, len)) != 0)
        return rc;
    const char *a[2] = {to, text};
    size_t l[2] = {strlen(to), len};
    return run(home, "send", 2, a, l);
}

/* ---- rooms ---- */

static int cmd_join(const char *home, int argc, char **argv)
{
    static const char use[] = "join ROOM [--passphrase-file F]";
    const char *file = NULL;
    char *pos[1], room[CHP_ROOM_NAME_MAX + 2], pass[CHP_PASS_MAX + 1];
    int npos;
    size_t plen = 0;
    opt o[] = {{"--passphrase-file", &file, NULL}};
    int rc = parse_opts(argc, argv, o, 1, pos, 1, &npos, use);
    if (!rc && npos != 1)
        rc = fail(2, "usage: chapar %s", use);
    if (!rc)
        rc = room_arg(pos[0], room, sizeof room);
    if (!rc && file)
        rc = get_passphrase(file, NULL, 0, pass, sizeof pass, &plen, "--passphrase-file F");
    if (!rc) {
        const char *a[2] = {room, pass};
        size_t l[2] = {strlen(room), plen};
        rc = run(home, "join", file ? 2 : 1, a, l);
    }
    chp_memzero(pass, sizeof pass);
    return rc;
}

static int cmd_leave(const char *home, int argc, char **argv)
{
    char room[CHP_ROOM_NAME_MAX + 2];
    if (argc != 1)
        return fail(2, "usage: chapar leave ROOM");
    int rc = room_arg(argv[0], room, sizeof room);
    return rc ? rc : run_str(home, "leave", 1, room);
}

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

/* Unix seconds (a decimal field) as local "YYYY-MM-DD HH:MM". */
static const char *local_time(const char *field, char *buf, size_t cap)
{
    time_t t = (time_t)strtoll(field, NULL, 10);
    struct tm tm;
    snprintf(buf, cap, "?");
    if (localtime_r(&t, &tm))
        strftime(buf, cap, "%Y-%m-%d %H:%M", &tm);
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
    char when[32], here[32];
    printf("%s", local_time(f[0], when, sizeof when));
    long long sent = strtoll(f[0], NULL, 10), arrived = n >= 6 ? strtoll(f[5], NULL, 10) : sent;
    if (arrived - sent > 300 || sent - arrived > 300)
        printf(" (arrived %s)", local_time(f[5], here, sizeof here));
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
static int ctl_subscribe(ctl *c, const char *topic)
{
    c->sub = ctl_socket(c, ZMQ_SUB, "events");
    if (!c->sub || zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, topic, strlen(topic)) != 0)
        return fail(1, "cannot subscribe to chapard's events: %s", zmq_strerror(errno));
    return 0;
}

/* Drains pending events; 1 if there was one. */
static int drain_events(void *sub)
{
    int got = 0;
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, sub, ZMQ_DONTWAIT) >= 0)
        got = 1;
    zmq_msg_close(&m);
    return got;
}

/* The inbox request: [WHICH [SINCE]] (CONTROL.md). */
struct inbox_req {
    int only_new;
    char since[24]; /* unix seconds, "" for all */
    const char *args[2];
    size_t lens[2];
    int nargs;
};

static int inbox_call(ctl *c, reply *r, struct inbox_req *q)
{
    return ctl_call(c, r, "inbox", q->nargs, q->args, q->lens);
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
static int wait_new(ctl *c, reply *r, double secs, struct inbox_req *q)
{
    int rc = ctl_subscribe(c, "message");
    uint64_t end_ms = (uint64_t)(secs * 1000);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!rc) {
        reply_free(r);
        if ((rc = inbox_call(c, r, q)) || !r->ok || inbox_has_news(q, r->body))
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t el = (uint64_t)(now.tv_sec - t0.tv_sec) * 1000 +
                      (uint64_t)((now.tv_nsec - t0.tv_nsec) / 1000000);
        if (el >= end_ms)
            break;
        uint64_t slice = end_ms - el < 1000 ? end_ms - el : 1000;
        zmq_pollitem_t pi = {c->sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&pi, 1, (long)slice) > 0)
            drain_events(c->sub);
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
    return fail(2,
                "--since %s: expected unix seconds, a local time YYYY-MM-DD[ HH:MM[:SS]] or "
                "an age like 10m, 2h, 1d",
                s);
}

static int cmd_inbox(const char *home, int argc, char **argv)
{
    static const char use[] = "inbox [--new] [--since TIME] [--wait SECONDS] [--tsv]";
    const char *wait_s = NULL, *since_s = NULL;
    char *pos[1], *end = NULL;
    int tsv = 0, npos;
    struct inbox_req q;
    memset(&q, 0, sizeof q);
    opt o[] = {{"--wait", &wait_s, NULL},
               {"--tsv", NULL, &tsv},
               {"--new", NULL, &q.only_new},
               {"--since", &since_s, NULL}};
    int rc = parse_opts(argc, argv, o, 4, pos, 0, &npos, use);
    if (rc)
        return rc;
    double secs = wait_s ? strtod(wait_s, &end) : 0;
    if (wait_s && (end == wait_s || *end || !(secs >= 0 && secs <= 86400)))
        return fail(2, "--wait %s: expected seconds (0 to 86400)", wait_s);
    unsigned long long since = 0;
    if (since_s && (rc = parse_since(since_s, &since)) != 0)
        return rc;
    snprintf(q.since, sizeof q.since, "%llu", since);
    q.args[0] = q.only_new ? "new" : "all";
    q.args[1] = q.since;
    q.lens[0] = strlen(q.args[0]);
    q.lens[1] = strlen(q.since);
    q.nargs = since_s ? 2 : q.only_new ? 1 : 0; /* no arguments: as older daemons know it */
    ctl c;
    reply r = {0};
    if ((rc = ctl_open(&c, home)) != 0)
        return rc;
    rc = inbox_call(&c, &r, &q);
    if (!rc && r.ok && secs > 0 && !inbox_has_news(&q, r.body))
        rc = wait_new(&c, &r, secs, &q);
    if (!rc && r.ok)
        print_inbox(r.body, r.len, tsv);
    else if (!rc)
        rc = reply_error(&r);
    reply_free(&r);
    ctl_close(&c);
    return rc;
}

/* ---- history, conversations, outbox, nick, read ---- */

/* CONV: a contact name, a user ID or a #room. */
static int check_conv(const char *conv)
{
    return conv[0] == '#' ? check_room(conv) : check_who(conv);
}

/* A --limit or similar count: 1 to max; 0, or 2 after one line. */
static int parse_count(const char *opt_name, const char *s, unsigned long max)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || s[0] == '-' || v < 1 || v > max)
        return fail(2, "%s %s: expected a number from 1 to %lu", opt_name, s, max);
    return 0;
}

/* A request with string arguments whose ok payload goes to print (tsv
 * says how); the whole command. */
static int run_lines(const char *home, const char *cmd, int n, const char *const *args,
                     line_fn print, int tsv)
{
    size_t lens[MAX_ARGS];
    for (int i = 0; i < n; i++)
        lens[i] = strlen(args[i]);
    ctl c;
    reply r;
    int rc = ctl_open(&c, home);
    if (rc)
        return rc;
    if ((rc = ctl_call(&c, &r, cmd, n, args, lens)) == 0) {
        if (r.ok)
            each_line(r.body, r.len, print, &tsv);
        else
            rc = reply_error(&r);
        reply_free(&r);
    }
    ctl_close(&c);
    return rc;
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
    char when[32];
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

static int cmd_history(const char *home, int argc, char **argv)
{
    static const char use[] = "history NAME|#ROOM [--tsv] [--limit N]";
    const char *limit = NULL;
    char *pos[1];
    int tsv = 0, npos;
    opt o[] = {{"--tsv", NULL, &tsv}, {"--limit", &limit, NULL}};
    int rc = parse_opts(argc, argv, o, 2, pos, 1, &npos, use);
    if (!rc && npos != 1)
        rc = fail(2, "usage: chapar %s", use);
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
    char when[32];
    put_human(f[0]);
    printf(" (%s)  %s unread  ", !strcmp(f[1], "room") ? "room" : "contact", f[2]);
    if (strtoll(f[3], NULL, 10) > 0)
        printf("last %s\n", local_time(f[3], when, sizeof when));
    else
        fputs("no messages\n", stdout);
}

static int cmd_conversations(const char *home, int argc, char **argv)
{
    char *pos[1];
    int tsv = 0, npos;
    opt o[] = {{"--tsv", NULL, &tsv}};
    int rc = parse_opts(argc, argv, o, 1, pos, 0, &npos, "conversations [--tsv]");
    return rc ? rc : run_lines(home, "conversations", 0, NULL, print_conv_line, tsv);
}

/* MSGID TO STATE TIME TEXT: the first three as the daemon gives them, TIME
 * as unix seconds (--tsv) or local time, TEXT (the first words) escaped
 * (--tsv) or on one line. */
static void print_outbox_line(char **f, int n, void *ctx)
{
    int tsv = *(int *)ctx;
    for (int k = 0; k < n && k < 5; k++) {
        char when[32];
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

static int cmd_outbox(const char *home, int argc, char **argv)
{
    char *pos[1];
    int tsv = 0, npos;
    opt o[] = {{"--tsv", NULL, &tsv}};
    int rc = parse_opts(argc, argv, o, 1, pos, 0, &npos, "outbox [--tsv]");
    return rc ? rc : run_lines(home, "outbox", 0, NULL, print_outbox_line, tsv);
}

/* `nick`: shows the nick (the second field of `id`); `nick NEW` sets it. */
static int cmd_nick(const char *home, int argc, char **argv)
{
    if (argc > 1)
        return fail(2, "usage: chapar nick [NEW]");
    if (argc == 1) {
        if (chp_nick_check(argv[0], strlen(argv[0])) != CHP_OK)
            return fail(2,
                        "bad nick: 1 to %d bytes of UTF-8, no control, invisible or bidi "
                        "characters, no spaces at an end",
                        CHP_NICK_MAX);
        return run_str(home, "nick", 1, argv[0]);
    }
    ctl c;
    reply r;
    int rc = ctl_open(&c, home);
    if (!rc && !(rc = ctl_call(&c, &r, "id", 0, NULL, NULL))) {
        char *nick = r.ok ? strchr(r.body, '\t') : NULL;
        if (nick) {
            nick++;
            nick[strcspn(nick, "\t\n")] = '\0';
            put_human(nick);
            fputc('\n', stdout);
        } else {
            rc = r.ok ? fail(1, "malformed reply from chapard") : reply_error(&r);
        }
        reply_free(&r);
    }
    ctl_close(&c);
    return rc;
}

static int cmd_read(const char *home, int argc, char **argv)
{
    if (argc != 1)
        return fail(2, "usage: chapar read NAME|#ROOM");
    int rc = check_conv(argv[0]);
    return rc ? rc : run_str(home, "read", 1, argv[0]);
}

/* ---- node commands ---- */

static int check_address(const char *a)
{
    chp_addr ad;
    int rc = chp_addr_parse(a, strlen(a), &ad);
    if (rc != CHP_OK)
        return fail(2, "bad address '%s': %s", a, chp_strerror(rc));
    return 0;
}

static int cmd_peer(const char *home, int argc, char **argv)
{
    if (argc == 1 && !strcmp(argv[0], "list"))
        return run_str(home, "peers", 0);
    if (argc == 2 && (!strcmp(argv[0], "add") || !strcmp(argv[0], "remove"))) {
        int rc = check_address(argv[1]);
        if (rc)
            return rc;
        return run_str(home, argv[0][0] == 'a' ? "peer-add" : "peer-remove", 1, argv[1]);
    }
    return fail(2, "usage: chapar peer add ADDRESS | peer list | peer remove ADDRESS");
}

static int cmd_debug(const char *home, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "publish"))
        return fail(2, "usage: chapar debug publish FILE");
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return fail(1, "%s: %s", argv[1], strerror(errno));
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    int big = fgetc(f) != EOF;
    fclose(f);
    if (big)
        return fail(1, "%s: %s", argv[1], "too large for an envelope");
    const char *a[1] = {buf};
    return run(home, "publish", 1, a, &n);
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

static int cmd_status(const char *home, int argc, char **argv)
{
    char *pos[1];
    int raw = 0, npos;
    opt o[] = {{"--raw", NULL, &raw}};
    int rc = parse_opts(argc, argv, o, 1, pos, 0, &npos, "status [--raw]");
    if (rc)
        return rc;
    if (raw)
        return run_str(home, "status", 0);
    ctl c;
    reply r;
    if ((rc = ctl_open(&c, home)) != 0)
        return rc;
    if ((rc = ctl_call(&c, &r, "status", 0, NULL, NULL)) == 0) {
        if (r.ok)
            for (size_t i = 0; i < r.len;) {
                size_t e = i;
                while (e < r.len && r.body[e] != '\n')
                    e++;
                print_status_line(r.body + i, e - i);
                i = e + 1;
            }
        else
            rc = reply_error(&r);
        reply_free(&r);
    }
    ctl_close(&c);
    return rc;
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
static int cmd_stop(const char *home, int argc, char **argv)
{
    (void)argv;
    if (argc)
        return fail(2, "usage: chapar stop");
    ctl c;
    reply r = {0};
    int rc = ctl_open(&c, home);
    if (rc)
        return rc;
    if (zmq_send(c.req, "stop", 4, 0) < 0) {
        ctl_close(&c);
        return fail(1, "cannot reach chapard in %s: %s", home, zmq_strerror(errno));
    }
    zmq_pollitem_t pi = {c.req, 0, ZMQ_POLLIN, 0};
    uint64_t waited = 0;
    int answered = 0;
    while (waited < STOP_TIMEOUT_MS) {
        if (!answered && zmq_poll(&pi, 1, 20) > 0) {
            char *st = NULL;
            size_t sl;
            int more = 0;
            if (recv_frame(c.req, &st, &sl, &more) == 0 && more &&
                recv_frame(c.req, &r.body, &r.len, &more) == 0) {
                answered = 1;
                if (sl != 2 || memcmp(st, "ok", 2)) { /* an older daemon */
                    free(st);
                    rc = reply_error(&r);
                    reply_free(&r);
                    ctl_close(&c);
                    return rc;
                }
            }
            free(st);
            reply_free(&r);
        } else if (answered) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
        waited += 20;
        if (!daemon_holds_lock(home))
            break;
    }
    ctl_close(&c);
    if (daemon_holds_lock(home))
        return fail(1, "chapard in %s %s but still runs after %d s", home,
                    answered ? "accepted the stop" : "did not answer the stop",
                    STOP_TIMEOUT_MS / 1000);
    return 0;
}

/* Commands that take no arguments and print the daemon's payload. */
static int plain(const char *home, const char *cmd, const char *daemon_cmd, int argc)
{
    if (argc)
        return fail(2, "usage: chapar %s", cmd);
    return run_str(home, daemon_cmd, 0);
}

/* ---- dispatch ---- */

typedef int (*cmd_fn)(const char *home, int argc, char **argv);

static const struct command {
    const char *name;
    cmd_fn fn;          /* NULL: a plain() command */
    const char *daemon; /* plain(): the control command */
    const char *help;
} commands[] = {
    {"init", cmd_init, NULL,
     "usage: chapar init [--nick NAME] [--passphrase-file F | --no-passphrase]\n"
     "Creates your identity in DIR and prints your user ID. The secret keys are\n"
     "sealed with a passphrase (asked twice on the terminal, or the first line\n"
     "of F); --no-passphrase seals them with a key file beside them instead.\n"
     "The nick (default $USER) is what strangers see before they add you.\n"
     "Asks the running chapard if there is one, else writes DIR itself.\n"},
    {"unlock", cmd_unlock, NULL,
     "usage: chapar unlock [--passphrase-file F]\n"
     "Unlocks the identity of a chapard that started without its passphrase.\n"},
    {"id", cmd_id, NULL, "usage: chapar id\nPrints your user ID: give it to your friends.\n"},
    {"wipe", cmd_wipe, NULL,
     "usage: chapar wipe [--yes]\n"
     "Panic button: destroys the identity, keys, contacts, messages and store\n"
     "in DIR (and stops its chapard). Asks you to type yes unless --yes.\n"},
    {"contact", cmd_contact, NULL,
     "usage: chapar contact SUBCOMMAND\n"
     "  add ID NAME          add someone by user ID; they see a request\n"
     "  accept WHO [NAME]    accept a request (WHO: their ID or nick)\n"
     "  block WHO            drop their requests and messages from now on\n"
     "  list                 NAME, ID, STATE, FINGERPRINT (tab-separated)\n"
     "  show WHO             details and the safety number to compare\n"
     "  requests             ID, NICK, FINGERPRINT, TIME of pending requests\n"
     "  remove WHO           forget the contact and its keys\n"
     "WHO is a contact name or a user ID (chp1...).\n"},
    {"send", cmd_send, NULL,
     "usage: chapar send TO TEXT\n"
     "TO is a contact name, a user ID or a #room (a user ID that is no contact\n"
     "yet becomes one, named by its fingerprint, as `contact add ID FPR`: the\n"
     "message waits in the outbox until they accept); TEXT is 1 to 65536 bytes of\n"
     "UTF-8, or - to read it from stdin (one final newline dropped). Prints the\n"
     "message id once the message is safely in the outbox.\n"},
    {"inbox", cmd_inbox, NULL,
     "usage: chapar inbox [--new] [--since TIME] [--wait SECONDS] [--tsv]\n"
     "Received messages in the order they arrived here, each with the time its\n"
     "sender wrote it (and the time it arrived, when that was much later).\n"
     "--new: only what no earlier `inbox --new` printed (plain `inbox` does not\n"
     "count). --since TIME: only what arrived at or after TIME: unix seconds, a\n"
     "local time YYYY-MM-DD[ HH:MM[:SS]], or an age: 30s, 10m, 2h, 1d, 1w.\n"
     "--wait: if none is new, wait up to SECONDS for one.\n"
     "--tsv: TIME, CONVERSATION, SENDER, TEXT tab-separated\n"
     "(TIME in unix seconds; tab, newline, CR and backslash in TEXT escaped as\n"
     "\\t \\n \\r \\\\, other control characters as \\xHH or \\u00HH). For\n"
     "humans, control characters show as ^X and a message's further lines start\n"
     "with \"    | \": nothing a sender writes can act on your terminal or pass\n"
     "for another message.\n"},
    {"outbox", cmd_outbox, NULL,
     "usage: chapar outbox [--tsv]\n"
     "Sent messages, oldest first, tab-separated: ID, TO, STATE (queued, sent,\n"
     "delivered), TIME written (local time; --tsv: unix seconds), and the first\n"
     "words of the text (a cut text ends in \"\xe2\x80\xa6\"; --tsv: escaped as in\n"
     "inbox --tsv, else on one line).\n"},
    {"history", cmd_history, NULL,
     "usage: chapar history NAME|#ROOM [--tsv] [--limit N]\n"
     "The last N (default 200) messages of a conversation, both ways, in the\n"
     "order they were written or arrived here: \"TIME  SENDER [STATE]: TEXT\",\n"
     "the state (queued, sent, delivered) on your own messages. --tsv: TIME, DIR\n"
     "(in, out), SENDER, STATE (- for in), MSGID, TEXT, escaped as in inbox --tsv.\n"},
    {"conversations", cmd_conversations, NULL,
     "usage: chapar conversations [--tsv]\n"
     "Every contact and joined room, with unread messages and the time of the\n"
     "last one. --tsv: CONV, KIND (contact, room), UNREAD, LAST (unix seconds,\n"
     "0 if none).\n"},
    {"read", cmd_read, NULL,
     "usage: chapar read NAME|#ROOM\nMarks the conversation read (its unread count drops to 0).\n"},
    {"nick", cmd_nick, NULL,
     "usage: chapar nick [NEW]\n"
     "Shows your nick, or changes it to NEW (what strangers and rooms see).\n"},
    {"join", cmd_join, NULL,
     "usage: chapar join ROOM [--passphrase-file F]\n"
     "Joins #ROOM: public (anyone who knows the name reads it), or with a\n"
     "passphrase (first line of F) that every member must know.\n"},
    {"leave", cmd_leave, NULL, "usage: chapar leave ROOM\n"},
    {"rooms", NULL, "rooms", "usage: chapar rooms\nJoined rooms: ROOM, KIND.\n"},
    {"status", cmd_status, NULL,
     "usage: chapar status [--raw]\n"
     "Node counters and state as `key: value` lines (docs/CONTROL.md). Sizes and\n"
     "durations get a human reading after the number: `quota: 268435456 (256.0 MiB)`,\n"
     "`uptime: 3725 (1h 2m 5s)`; --raw prints the daemon's lines as they are.\n"},
    {"stop", cmd_stop, NULL,
     "usage: chapar stop\n"
     "Stops the chapard of DIR as SIGTERM does (everything committed, the store\n"
     "closed) and waits until it has exited (30 s at most). Exit 0 once it is\n"
     "gone; 1 if none is running or it does not stop.\n"},
    {"address", NULL, "address",
     "usage: chapar address\nThis node's address, for others' `chapar peer add`.\n"},
    {"peer", cmd_peer, NULL,
     "usage: chapar peer add ADDRESS | peer list | peer remove ADDRESS\n"
     "Neighbours to connect to (remembered across restarts).\n"},
    {"debug", cmd_debug, NULL,
     "usage: chapar debug publish FILE\nInjects a raw envelope (tests).\n"},
};

/* COMMAND --help, or ... --help at the end, except where the last word is
 * free text (`send bob --help` sends the words "--help"). */
static int wants_help(const char *cmd, int argc, char **argv)
{
    if (!argc)
        return 0;
    return !strcmp(argv[0], "--help") || (strcmp(cmd, "send") && !strcmp(argv[argc - 1], "--help"));
}

int main(int argc, char **argv)
{
    char home[4096] = "";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("chapar %s\n", CHP_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--home")) {
            if (i + 1 >= argc)
                return fail(2, "--home needs a directory");
            snprintf(home, sizeof home, "%s", argv[++i]);
        } else {
            return fail(2, "unknown option '%s' (try --help)", argv[i]);
        }
    }
    if (i >= argc)
        return fail(2, "no command given (usage: chapar [--home DIR] COMMAND ...; try --help)");
    const char *name = argv[i++];
    const struct command *c = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof *commands && !c; k++)
        if (!strcmp(name, commands[k].name))
            c = &commands[k];
    if (!c)
        return fail(2, "unknown command '%s' (try --help)", name);
    for (int k = i; k < argc && strcmp(name, "send"); k++)
        if (!strcmp(argv[k], "--home"))
            return fail(2, "--home goes before the command: chapar --home DIR %s ...", name);
    if (wants_help(name, argc - i, argv + i)) {
        fputs(c->help, stdout);
        return 0;
    }
    if (!home[0] && chp_home_default(home, sizeof home) != 0)
        return fail(2, "no data dir: set --home, CHAPAR_HOME or HOME");
    char why[4400];
    if (chp_home_problem(home, why, sizeof why) && (errno != EEXIST || !strcmp(c->name, "init")))
        return fail(1, "%s", why);
    if (chp_crypto_init() != CHP_OK)
        return fail(1, "libsodium failed to initialise");
    if (!c->fn)
        return plain(home, c->name, c->daemon, argc - i);
    return c->fn(home, argc - i, argv + i);
}
