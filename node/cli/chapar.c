/* chapar.c - the scriptable command-line client of chapard, over its
 * control socket (docs/CONTROL.md). Only `init` and `wipe` work without a
 * running daemon; everything else is a request and its reply. */
#include "node/msg/account.h"
#include "proto/addr.h"
#include "node/cli/chapar_int.h"
#include "proto/crypto.h"
#include "node/common/version.h"
#include "node/common/home.h"
#include "proto/id.h"
#include "proto/keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, _("usage: chapar [--home DIR] COMMAND [ARGS]\n"
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
                 "  send-file TO PATH [--caption TEXT]   send a file (photo, voice note...)\n"
                 "  files [--tsv]          received files: ID, CONV, SENDER, NAME, SIZE, STATE\n"
                 "  file save ID PATH      write a received file (one from a stranger) to PATH\n"
                 "  history NAME|#ROOM [--tsv] [--limit N]   one conversation\n"
                 "  conversations [--tsv]  contacts and rooms: unread, last message\n"
                 "  read NAME|#ROOM        mark a conversation read\n"
                 "  nick [NEW]             show or change your nick\n"
                 "  join ROOM [--passphrase-file F]  leave ROOM  rooms\n"
                 "node:\n"
                 "  status [--raw | --prometheus]  node counters (`key: value`, Prometheus)\n"
                 "  stop                   stop the chapard of DIR and wait until it is gone\n"
                 "  address                this node's address, for others' `peer add`\n"
                 "  peer add ADDRESS       connect to a node and remember it\n"
                 "  peer list              neighbours: key, state, direction, address,\n"
                 "                         envelopes received, sent (tab-separated)\n"
                 "  peer remove ADDRESS    disconnect and forget\n"
                 "  debug publish FILE     inject a raw envelope (for tests)\n"
                 "bundles (mail on a USB stick):\n"
                 "  bundle want FILE       what this node holds, for the other side's export\n"
                 "  bundle export FILE [--for WANTFILE] [--since DURATION] [--max-size SIZE]\n"
                 "  bundle import FILE     both take [--passphrase-file F] (sealed) [--quiet]\n"
                 "sharing the app offline:\n"
                 "  share-app [--listen HOST:PORT] [--files DIR]  serve the .deb, source and\n"
                 "                         a manifest signed by you on the LAN\n"
                 "  verify-app MANIFEST FILE... --from USER-ID   check a download\n"
                 "\n"
                 "  --help, --version      COMMAND --help describes one command\n"
                 "Exit 0 on success; otherwise 1 (2 for bad usage, 130 for Ctrl-C at a passphrase\n"
                 "prompt) with one line on stderr.\n"));
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

/* Creates the identity in home with no daemon running: the identity files,
 * then the nick in the store sealed with the identity's storage key. */
static int init_local(const char *home, const char *nick, const char *pass, size_t plen)
{
    chp_identity *id = NULL;
    chp_store *s = NULL;
    uint8_t key[32];
    const char *what = _("cannot create the identity");
    if (chp_home_make(home) != 0)
        return cli_fail(1, _("cannot create %s: %s"), home, strerror(errno));
    int rc = chp_account_create(home, pass, plen, &id);
    if (rc == CHP_OK) {
        what = _("cannot open the store");
        rc = chp_store_open(home, NULL, &s, NULL);
    }
    if (rc == CHP_OK) {
        chp_identity_storage_key(id, key);
        rc = chp_store_unlock(s, key);
        chp_memzero(key, sizeof key);
    }
    if (rc == CHP_OK) {
        what = _("cannot save the nick");
        rc = chp_account_set_nick(s, nick, strlen(nick));
    }
    chp_store_close(&s);
    if (rc != CHP_OK) {
        chp_identity_destroy(&id);
        return cli_fail(1, _("%s in %s: %s"), what, home, chp_strerror(rc));
    }
    char ids[CHP_ID_STR_LEN + 1];
    chp_id_encode(chp_identity_pk(id), ids);
    chp_identity_destroy(&id);
    printf("%s\n", ids);
    return 0;
}

/* Whether the running daemon already has an identity (locked or not). */
static int daemon_has_identity(chp_ctl *c, int *has)
{
    chp_ctl_answer r;
    int rc = cli_call(c, &r, "id", 0, NULL, NULL);
    if (rc)
        return rc;
    *has = r.ok || strstr(r.body, "locked") != NULL;
    chp_ctl_answer_free(&r);
    return 0;
}

static int init_daemon(chp_ctl *c, const char *nick, const char *pass, size_t plen)
{
    const char *args[3] = {nick, pass ? "passphrase" : "none", pass};
    size_t lens[3] = {strlen(nick), strlen(args[1]), plen};
    chp_ctl_answer r;
    int rc = pass ? cli_call_secret(c, &r, "init", 3, args, lens)
                  : cli_call(c, &r, "init", 2, args, lens);
    if (rc)
        return rc;
    if (r.ok)
        cli_print_payload(r.body, r.len);
    else
        rc = cli_reply_error(&r);
    chp_ctl_answer_free(&r);
    return rc;
}

static int cmd_init(const char *home, int argc, char **argv)
{
    static const char use[] = "init [--nick NAME] [--passphrase-file F | --no-passphrase]";
    const char *nick_arg = NULL, *file = NULL;
    char *pos[1], nick[CHP_NICK_MAX + 1], pass[CHP_PASS_MAX + 1];
    int nopass = 0, npos, has = 0, up = chp_ctl_daemon_running(home);
    cli_opt o[] = {{"--nick", &nick_arg, NULL},
                   {"--passphrase-file", &file, NULL},
                   {"--no-passphrase", NULL, &nopass}};
    int rc = cli_parse_opts(argc, argv, o, 3, pos, 0, &npos, use);
    if (rc)
        return rc;
    if (nopass && file)
        return cli_fail(2, _("--passphrase-file and --no-passphrase exclude each other"));
    if (nick_arg && chp_nick_check(nick_arg, strlen(nick_arg)) != CHP_OK)
        return cli_fail(2, _(CHP_NICK_BAD), CHP_NICK_MAX);
    if (nick_arg)
        snprintf(nick, sizeof nick, "%s", nick_arg);
    else
        default_nick(nick);
    chp_ctl *c = NULL;
    if (up && (rc = cli_open(home, &c)) == 0)
        rc = daemon_has_identity(c, &has);
    if (!rc && !up)
        has = chp_account_exists(home);
    if (!rc && has)
        rc = cli_fail(1, _("an identity already exists in %s"), home);
    size_t plen = 0;
    if (!rc && !nopass)
        rc = cli_get_passphrase(file, _("passphrase for the new identity: "), 1, pass, sizeof pass,
                                &plen, _("--passphrase-file F or --no-passphrase"));
    if (!rc)
        rc = up ? init_daemon(c, nick, nopass ? NULL : pass, plen)
                : init_local(home, nick, nopass ? NULL : pass, plen);
    chp_memzero(pass, sizeof pass);
    chp_ctl_destroy(&c);
    return rc;
}

static int cmd_unlock(const char *home, int argc, char **argv)
{
    const char *file = NULL;
    char *pos[1], pass[CHP_PASS_MAX + 1];
    int npos;
    size_t plen = 0;
    cli_opt o[] = {{"--passphrase-file", &file, NULL}};
    int rc = cli_parse_opts(argc, argv, o, 1, pos, 0, &npos, "unlock [--passphrase-file F]");
    if (rc)
        return rc;
    chp_ctl *c;
    if ((rc = cli_open(home, &c)) != 0)
        return rc;
    /* On a terminal a wrong passphrase is asked again; from a file, once. */
    for (int tries = 1; !rc; tries++) {
        chp_ctl_answer r;
        rc = cli_get_passphrase(file, _("passphrase: "), 0, pass, sizeof pass, &plen,
                                "--passphrase-file F");
        const char *a[1] = {pass};
        if (!rc && (rc = cli_call_secret(c, &r, "unlock", 1, a, &plen)) == 0) {
            if (r.ok) {
                cli_print_payload(r.body, r.len);
                chp_ctl_answer_free(&r);
                break;
            }
            if (!file && tries < PROMPT_TRIES && !strncmp(r.body, "wrong passphrase", 16))
                fprintf(stderr, _("wrong passphrase, try again (%d more)\n"), PROMPT_TRIES - tries);
            else
                rc = cli_reply_error(&r);
            chp_ctl_answer_free(&r);
        }
    }
    chp_memzero(pass, sizeof pass);
    chp_ctl_destroy(&c);
    return rc;
}

/* The user ID: the first field of `id`. */
static int print_id(char *body, size_t len, void *ctx)
{
    (void)len;
    (void)ctx;
    printf("%.*s\n", (int)strcspn(body, "\t\n"), body);
    return 0;
}

static int cmd_id(const char *home, int argc, char **argv)
{
    (void)argv;
    if (argc)
        return cli_fail(2, _("usage: chapar id"));
    return cli_run_with(home, "id", 0, NULL, NULL, print_id, NULL);
}

/* "type yes" on the terminal; 1 if the user did. */
static int confirm_wipe(const char *home)
{
    FILE *t = fopen("/dev/tty", "r+");
    if (!t)
        return 0;
    fprintf(t,
            _("This destroys your identity, keys, contacts and messages in %s.\n"
              "Nothing can bring them back. Type yes to go on: "),
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
    int rc = cli_run_str(home, "wipe", 1, "yes");
    if (rc)
        return rc;
    char sock[4200];
    struct stat st;
    snprintf(sock, sizeof sock, "%s/control", home);
    for (int waited = 0; stat(sock, &st) == 0; waited += 20) {
        if (waited >= WIPE_TIMEOUT_MS)
            return cli_fail(1, _("chapard accepted the wipe but still runs after %d s"),
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
    cli_opt o[] = {{"--yes", NULL, &yes}};
    int rc = cli_parse_opts(argc, argv, o, 1, pos, 0, &npos, "wipe [--yes]");
    if (rc)
        return rc;
    if (!yes && !cli_have_tty())
        return cli_fail(2, _("no terminal to confirm the wipe: add --yes"));
    if (!yes && !confirm_wipe(home))
        return cli_fail(1, _("not confirmed: nothing was wiped"));
    struct stat st;
    if (chp_ctl_daemon_running(home)) {
        if ((rc = wipe_daemon(home)) != 0)
            return rc;
    } else if (stat(home, &st) != 0) {
        printf(_("nothing to wipe: %s does not exist\n"), home);
        return 0;
    } else if (!chp_home_is_data_dir(home)) {
        return cli_fail(1, _("%s is not a Chapar data dir (no identity, no store): nothing wiped"),
                        home);
    } else {
        int lock = chp_home_lock(home);
        if (lock < 0 && errno == EWOULDBLOCK)
            return cli_fail(
                1, _("a chapard holds %s but does not answer: stop it, then wipe again"), home);
        rc = chp_account_wipe(home);
        if (lock >= 0)
            close(lock);
        if (rc != CHP_OK)
            return cli_fail(1, _("wipe of %s incomplete: %s"), home, chp_strerror(rc));
    }
    printf(_("wiped %s: identity, keys and data are gone\n"), home);
    return 0;
}

/* ---- contacts ---- */

static int cmd_contact(const char *home, int argc, char **argv)
{
    const char *sub = argc ? argv[0] : "";
    int rc;
    if (!strcmp(sub, "add") && argc == 3) {
        if ((rc = cli_check_id(argv[1])) || (rc = cli_check_name(argv[2])))
            return rc;
        return cli_run_str(home, "contact-add", 2, argv[1], argv[2]);
    }
    if (!strcmp(sub, "accept") && (argc == 2 || argc == 3)) {
        if ((rc = cli_check_who(argv[1])) || (argc == 3 && (rc = cli_check_name(argv[2]))))
            return rc;
        return argc == 3 ? cli_run_str(home, "contact-accept", 2, argv[1], argv[2])
                         : cli_run_str(home, "contact-accept", 1, argv[1]);
    }
    static const char *const one[] = {"block", "show", "remove"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(sub, one[i]) && argc == 2) {
            char cmd[32];
            snprintf(cmd, sizeof cmd, "contact-%s", one[i]);
            return cli_check_who(argv[1]) ? 2 : cli_run_str(home, cmd, 1, argv[1]);
        }
    if (!strcmp(sub, "list") && argc == 1)
        return cli_run_str(home, "contact-list", 0);
    if (!strcmp(sub, "requests") && argc == 1)
        return cli_run_str(home, "contact-requests", 0);
    static const char *const subs[] = {"add",  "accept",   "block", "show",
                                       "list", "requests", "remove"};
    int known = !argc;
    for (size_t k = 0; k < sizeof subs / sizeof subs[0]; k++)
        known |= !strcmp(sub, subs[k]);
    return cli_fail(2,
                    _("%s%s%susage: chapar contact add ID NAME | accept WHO [NAME] | block WHO | "
                      "list | show WHO | requests | remove WHO"),
                    known ? "" : "'", known ? "" : sub,
                    known ? "" : "' is not a contact subcommand; ");
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
        return cli_fail(1, _("cannot read the text from stdin: %s"), strerror(errno));
    if (n && n <= TEXT_MAX && buf[n - 1] == '\n')
        n -= n > 1 && buf[n - 2] == '\r' ? 2 : 1;
    *len = n;
    return 0;
}

static int check_text(const char *t, size_t len)
{
    if (len == 0)
        return cli_fail(2, _("empty message: nothing to send"));
    if (len > TEXT_MAX)
        return cli_fail(2, _("message too long: more than %d bytes"), TEXT_MAX);
    if (!chp_utf8_valid(t, len))
        return cli_fail(2, _("message is not valid UTF-8"));
    return 0;
}

static int cmd_send(const char *home, int argc, char **argv)
{
    if (argc != 2)
        return cli_fail(2, _("usage: chapar send TO TEXT (TO: contact name, user ID or #room; "
                             "TEXT - reads stdin)"));
    const char *to = argv[0];
    int rc = to[0] == '#' ? cli_check_room(to) : cli_check_who(to);
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
    return cli_run(home, "send", 2, a, l);
}

/* ---- rooms ---- */

static int cmd_join(const char *home, int argc, char **argv)
{
    static const char use[] = "join ROOM [--passphrase-file F]";
    const char *file = NULL;
    char *pos[1], room[CHP_ROOM_NAME_MAX + 2], pass[CHP_PASS_MAX + 1];
    int npos;
    size_t plen = 0;
    cli_opt o[] = {{"--passphrase-file", &file, NULL}};
    int rc = cli_parse_opts(argc, argv, o, 1, pos, 1, &npos, use);
    if (!rc && npos != 1)
        rc = cli_fail(2, _("usage: chapar %s"), use);
    if (!rc)
        rc = cli_room_arg(pos[0], room, sizeof room);
    if (!rc && file)
        rc = cli_get_passphrase(file, NULL, 0, pass, sizeof pass, &plen, "--passphrase-file F");
    chp_ctl *c;
    chp_ctl_answer r;
    if (!rc && !(rc = cli_open(home, &c))) {
        const char *a[2] = {room, pass};
        size_t l[2] = {strlen(room), plen};
        if (!(rc = file ? cli_call_secret(c, &r, "join", 2, a, l)
                        : cli_call(c, &r, "join", 1, a, l))) {
            /* the fingerprint members compare: a mistyped passphrase
             * shows as another one */
            char canon[sizeof room];
            size_t cl;
            if (chp_room_canon(room, strlen(room), canon, &cl) != CHP_OK)
                memcpy(canon, room, sizeof room); /* checked above: cannot happen */
            if (r.ok)
                printf(_("joined %s (%s room, fingerprint %s)\n"), canon,
                       file ? _("passphrase") : _("public"), r.body);
            else
                rc = cli_reply_error(&r);
            chp_ctl_answer_free(&r);
        }
        chp_ctl_destroy(&c);
    }
    chp_memzero(pass, sizeof pass);
    return rc;
}

static int cmd_leave(const char *home, int argc, char **argv)
{
    char room[CHP_ROOM_NAME_MAX + 2];
    if (argc != 1)
        return cli_fail(2, _("usage: chapar leave ROOM"));
    int rc = cli_room_arg(argv[0], room, sizeof room);
    return rc ? rc : cli_run_str(home, "leave", 1, room);
}

/* ---- node commands ---- */

static int check_address(const char *a)
{
    chp_addr ad;
    int rc = chp_addr_parse(a, strlen(a), &ad);
    if (rc != CHP_OK)
        return cli_fail(2, _("bad address '%s': %s"), a, chp_strerror(rc));
    return 0;
}

static int cmd_peer(const char *home, int argc, char **argv)
{
    if (argc == 1 && !strcmp(argv[0], "list"))
        return cli_run_str(home, "peers", 0);
    if (argc == 2 && (!strcmp(argv[0], "add") || !strcmp(argv[0], "remove"))) {
        int rc = check_address(argv[1]);
        if (rc)
            return rc;
        return cli_run_str(home, argv[0][0] == 'a' ? "peer-add" : "peer-remove", 1, argv[1]);
    }
    return cli_fail(2, _("usage: chapar peer add ADDRESS | peer list | peer remove ADDRESS"));
}

static int cmd_debug(const char *home, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "publish"))
        return cli_fail(2, _("usage: chapar debug publish FILE"));
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return cli_fail(1, "%s: %s", argv[1], strerror(errno));
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    int big = fgetc(f) != EOF;
    fclose(f);
    if (big)
        return cli_fail(1, "%s: %s", argv[1], "too large for an envelope");
    const char *a[1] = {buf};
    return cli_run(home, "publish", 1, a, &n);
}

/* Commands that take no arguments and print the daemon's payload. */
static int plain(const char *home, const char *cmd, const char *daemon_cmd, int argc)
{
    if (argc)
        return cli_fail(2, _("usage: chapar %s"), cmd);
    return cli_run_str(home, daemon_cmd, 0);
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
     N_("usage: chapar init [--nick NAME] [--passphrase-file F | --no-passphrase]\n"
        "Creates your identity in DIR and prints your user ID. The secret keys are\n"
        "sealed with a passphrase (asked twice on the terminal, or the first line\n"
        "of F); --no-passphrase seals them with a key file beside them instead.\n"
        "The nick (default $USER) is what strangers see before they add you.\n"
        "Asks the running chapard if there is one, else writes DIR itself.\n")},
    {"unlock", cmd_unlock, NULL,
     N_("usage: chapar unlock [--passphrase-file F]\n"
        "Unlocks the identity of a chapard that started without its passphrase.\n")},
    {"id", cmd_id, NULL, N_("usage: chapar id\nPrints your user ID: give it to your friends.\n")},
    {"wipe", cmd_wipe, NULL,
     N_("usage: chapar wipe [--yes]\n"
        "Panic button: destroys the identity, keys, contacts, messages and store\n"
        "in DIR (and stops its chapard). Asks you to type yes unless --yes.\n")},
    {"contact", cmd_contact, NULL,
     N_("usage: chapar contact SUBCOMMAND\n"
        "  add ID NAME          add someone by user ID; they see a request\n"
        "  accept WHO [NAME]    accept a request (WHO: their ID or nick)\n"
        "  block WHO            drop their requests and messages from now on\n"
        "  list                 NAME, ID, STATE, FINGERPRINT (tab-separated)\n"
        "  show WHO             details and the safety number to compare\n"
        "  requests             ID, NICK, FINGERPRINT, TIME of pending requests\n"
        "  remove WHO           forget the contact and its keys\n"
        "WHO is a contact name or a user ID (chp1...).\n")},
    {"send", cmd_send, NULL,
     N_("usage: chapar send TO TEXT\n"
        "TO is a contact name, a user ID or a #room (a user ID that is no contact\n"
        "yet becomes one, named by its fingerprint, as `contact add ID FPR`: the\n"
        "message waits in the outbox until they accept); TEXT is 1 to 65536 bytes of\n"
        "UTF-8, or - to read it from stdin (one final newline dropped). Prints the\n"
        "message id once the message is safely in the outbox.\n")},
    {"inbox", cli_cmd_inbox, NULL,
     N_("usage: chapar inbox [--new] [--since TIME] [--wait SECONDS] [--tsv]\n"
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
        "for another message.\n")},
    {"outbox", cli_cmd_outbox, NULL,
     N_("usage: chapar outbox [--tsv]\n"
        "Sent messages, oldest first, tab-separated: ID, TO, STATE (queued, sent,\n"
        "delivered), TIME written (local time; --tsv: unix seconds), and the first\n"
        "words of the text (a cut text ends in \"\xe2\x80\xa6\"; --tsv: escaped as in\n"
        "inbox --tsv, else on one line).\n")},
    {"send-file", cli_cmd_send_file, NULL,
     N_("usage: chapar send-file TO PATH [--caption TEXT]\n"
        "Sends a file to a contact or a #room, end-to-end encrypted, in pieces that\n"
        "look like any other message. The file is copied into the node first (later\n"
        "changes to PATH change nothing); prints the message id once it is safely\n"
        "queued. `chapar outbox` shows PIECES SENT/TOTAL, then delivered. Files\n"
        "above the daemon's max-file (default 16 MiB) are refused.\n")},
    {"files", cli_cmd_files, NULL,
     N_("usage: chapar files [--tsv]\n"
        "Received files: ID, CONVERSATION, SENDER, NAME, SIZE (bytes), STATE\n"
        "(incoming N/M, complete, or saved PATH), TIME; by time, the newest last.\n"
        "Files from contacts are saved under DIR/files/CONVERSATION/ once complete\n"
        "and checked; others wait for `chapar file save`. A voice note (.opus, .ogg,\n"
        ".m4a) shows how long it plays after its size, when its container says it\n"
        "(not in --tsv).\n")},
    {"file", cli_cmd_file, NULL,
     N_("usage: chapar file save ID PATH\n"
        "Writes the complete, checked file ID (see `chapar files`) to PATH.\n"
        "Exit 1 with one line if it is not complete yet.\n")},
    {"history", cli_cmd_history, NULL,
     N_("usage: chapar history NAME|#ROOM [--tsv] [--limit N]\n"
        "The last N (default 200) messages of a conversation, both ways, in the\n"
        "order they were written or arrived here: \"TIME  SENDER [STATE]: TEXT\",\n"
        "the state (queued, sent, delivered) on your own messages. --tsv: TIME, DIR\n"
        "(in, out), SENDER, STATE (- for in), MSGID, TEXT, escaped as in inbox --tsv.\n")},
    {"conversations", cli_cmd_conversations, NULL,
     N_("usage: chapar conversations [--tsv]\n"
        "Every contact and joined room, with unread messages and the time of the\n"
        "last one. --tsv: CONV, KIND (contact, room), UNREAD, LAST (unix seconds,\n"
        "0 if none).\n")},
    {"read", cli_cmd_read, NULL,
     N_("usage: chapar read NAME|#ROOM\nMarks the conversation read (its unread count drops to "
        "0).\n")},
    {"nick", cli_cmd_nick, NULL,
     N_("usage: chapar nick [NEW]\n"
        "Shows your nick, or changes it to NEW (what strangers and rooms see).\n")},
    {"join", cmd_join, NULL,
     N_("usage: chapar join ROOM [--passphrase-file F]\n"
        "Joins #ROOM: public (anyone who knows the name reads it), or with a\n"
        "passphrase (first line of F) that every member must know. Prints the\n"
        "room's fingerprint: members who see the same one share the room (another\n"
        "passphrase gives another). A room already joined under another key is\n"
        "refused: leave it first.\n")},
    {"leave", cmd_leave, NULL, N_("usage: chapar leave ROOM\n")},
    {"rooms", NULL, "rooms",
     N_("usage: chapar rooms\nJoined rooms: ROOM, KIND (public or passphrase), FINGERPRINT.\n")},
    {"status", cli_cmd_status, NULL,
     N_("usage: chapar status [--raw | --prometheus]\n"
        "Node counters and state as `key: value` lines (docs/CONTROL.md). Sizes and\n"
        "durations get a human reading after the number: `quota: 268435456 (256.0 MiB)`,\n"
        "`uptime: 3725 (1h 2m 5s)`; --raw prints the daemon's lines as they are;\n"
        "--prometheus prints them in the Prometheus text format (as chapard --metrics).\n")},
    {"stop", cli_cmd_stop, NULL,
     N_("usage: chapar stop\n"
        "Stops the chapard of DIR as SIGTERM does (everything committed, the store\n"
        "closed) and waits until it has exited (30 s at most). Exit 0 once it is\n"
        "gone; 1 if none is running or it does not stop.\n")},
    {"address", NULL, "address",
     N_("usage: chapar address\nThis node's address, for others' `chapar peer add`.\n")},
    {"peer", cmd_peer, NULL,
     N_("usage: chapar peer add ADDRESS | peer list | peer remove ADDRESS\n"
        "Neighbours to connect to (remembered across restarts).\n")},
    {"bundle", cli_cmd_bundle, NULL,
     N_("usage: chapar bundle want FILE [--passphrase-file F]\n"
        "       chapar bundle export FILE [--for WANTFILE] [--since DURATION] [--max-size SIZE]\n"
        "                                 [--passphrase-file F] [--quiet]\n"
        "       chapar bundle import FILE [--passphrase-file F] [--quiet]\n"
        "Envelopes on removable media. `want` writes a summary of what this node holds\n"
        "(under 64 KiB for 100,000 envelopes); `export --for` it writes only what it\n"
        "lacks; a blind export takes the newest first, bounded by --since and --max-size.\n"
        "`import` checks every envelope as if a neighbour had sent it and prints\n"
        "`imported N new, M already held, K rejected (reason: count ...)`. With\n"
        "--passphrase-file the file is sealed and looks like random bytes.\n")},
    {"share-app", cli_cmd_share_app, NULL,
     N_("usage: chapar share-app [--listen HOST:PORT] [--files DIR] [--idle SECONDS]\n"
        "                        [--passphrase-file F]\n"
        "Shares Chapar with people near you who have no internet: serves a page\n"
        "(Persian and English) with this machine's .deb, the source tarball and a\n"
        "list of their SHA-256 sums signed with your identity, and prints the\n"
        "page's address (http://HOST:PORT/) first. The running chapard signs; with\n"
        "none running, the identity is opened here (a passphrase from F or the\n"
        "terminal). HOST defaults to this machine's LAN address, PORT to 7680\n"
        "(0 = any free port). Files come from DIR, else $CHAPAR_DIST, else dist/\n"
        "of the source tree (where `make deb` puts them). Stops on Ctrl-C, or\n"
        "after SECONDS without a request (default 1800; 0 = never).\n")},
    {"verify-app", NULL, NULL,
     N_("usage: chapar verify-app MANIFEST FILE... --from USER-ID\n"
        "Checks downloaded files against a manifest from `share-app`: exit 0 when\n"
        "MANIFEST is signed by USER-ID and lists every FILE with its SHA-256; else\n"
        "exit 1 with one line naming the file or the signature that failed. Needs\n"
        "no running chapard.\n")},
    {"debug", cmd_debug, NULL,
     N_("usage: chapar debug publish FILE\nInjects a raw envelope (tests).\n")},
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
    chp_i18n_init();
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("chapar %s\n", CHP_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--home")) {
            if (i + 1 >= argc)
                return cli_fail(2, _("--home needs a directory"));
            snprintf(home, sizeof home, "%s", argv[++i]);
        } else {
            return cli_fail(2, _("unknown option '%s' (try --help)"), argv[i]);
        }
    }
    if (i >= argc)
        return cli_fail(2,
                        _("no command given (usage: chapar [--home DIR] COMMAND ...; try --help)"));
    const char *name = argv[i++];
    const struct command *c = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof *commands && !c; k++)
        if (!strcmp(name, commands[k].name))
            c = &commands[k];
    if (!c)
        return cli_fail(2, _("unknown command '%s' (try --help)"), name);
    for (int k = i; k < argc && strcmp(name, "send"); k++)
        if (!strcmp(argv[k], "--home"))
            return cli_fail(2, _("--home goes before the command: chapar --home DIR %s ..."), name);
    if (wants_help(name, argc - i, argv + i)) {
        fputs(_(c->help), stdout);
        return 0;
    }
    if (!strcmp(c->name, "verify-app")) /* needs no data dir */
        return cli_cmd_verify_app(argc - i, argv + i);
    if (!home[0] && chp_home_default(home, sizeof home) != 0)
        return cli_fail(2, _("no data dir: set --home, CHAPAR_HOME or HOME"));
    char why[4400];
    if (chp_home_problem(home, why, sizeof why) && (errno != EEXIST || !strcmp(c->name, "init")))
        return cli_fail(1, "%s", why);
    if (chp_crypto_init() != CHP_OK)
        return cli_fail(1, _("libsodium failed to initialise"));
    if (!c->fn)
        return plain(home, c->name, c->daemon, argc - i);
    return c->fn(home, argc - i, argv + i);
}
