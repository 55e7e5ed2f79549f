/* app_cmd.c - what Enter and Tab do (app.h): the wizard's and the unlock
 * prompt's answers, the slash commands (one table row and one function
 * each), lines to send, completion. No curses. */
#include "ui-tui/app.h"

#include "proto/crypto.h"
#include "proto/keys.h"
#include "ui-tui/app_file.h"
#include "ui-tui/app_int.h"
#include "ui-tui/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The open conversation's name, or NULL. */
static const char *current_name(const chp_app *a)
{
    int cur = chp_model_current(a->m);
    return cur >= 0 ? chp_model_conv(a->m, (size_t)cur)->name : NULL;
}

/* ---------------------------------------------------------------- commands */

/* One command's work. who: the command's WHO as the daemon takes it (see
 * who_arg) for the rows that resolve one, else its first argument. */
typedef void cmd_fn(chp_app *a, const chp_cmd *c, const char *who);

static void cmd_help(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)c, (void)who;
    size_t n;
    const chp_cmd_spec *t = chp_cmd_table(&n);
    chp_app_notice(a, _("Commands (a line without / is sent to this conversation; //x sends /x):"));
    for (size_t i = 0; i < n; i++)
        chp_app_notice(a, "  %s  - %s", t[i].usage, _(t[i].help));
    chp_app_notice(a,
                   _("Keys: Alt+1..9 / Ctrl-N / Ctrl-P switch, PgUp/PgDn scroll, Tab completes,"));
    chp_app_notice(
        a, _("  Up/Down history, Ctrl-A/E home/end, Ctrl-W word, Ctrl-U/K line, Ctrl-C quit."));
}

static void cmd_quit(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)c, (void)who;
    a->quit = 1;
}

static void cmd_unknown(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    chp_app_notice(a, _("unknown command %s (try /help)"), c->argv[0]);
}

static void cmd_usage(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    chp_app_notice(a, _("usage: %s"), c->text);
}

static void cmd_text(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    int ready = a->ph == CHP_PH_READY;
    const char *curname = current_name(a);
    if (!ready || !curname) {
        chp_app_notice(a, _("not sent: %s"),
                       ready ? "no conversation open (/join #lan)" : "not ready");
        return;
    }
    chp_app_send_line(a, CHP_R_SEND, curname, c->text);
}

static void cmd_discovery(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    if (c->argc && strcmp(c->argv[0], "on") && strcmp(c->argv[0], "off")) {
        chp_app_notice(a, _("usage: /discovery [on|off]"));
        return;
    }
    chp_app_request(a, CHP_R_DISC, c->argc ? c->argv[0] : "", 0, "discovery", c->argc,
                    c->argc ? c->argv[0] : NULL, NULL, NULL);
}

static void cmd_peer(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    char tag[256];
    if (c->argc == 1) {
        snprintf(tag, sizeof tag, "connecting to %.200s", c->argv[0]);
        REQ1(a, CHP_R_PEER, tag, "peer-add", c->argv[0]);
    } else {
        REQ0(a, CHP_R_LINES, "your node's address (others /peer it):", "address");
        REQ0(a, CHP_R_LINES,
             "peers (key, state, direction, address, received, sent, reason, transport):", "peers");
    }
}

/* /bundle export|import PATH: a blind export, or an import followed by
 * bundle-status (CONTROL.md "Bundles"); the daemon wants an absolute path. */
static void cmd_bundle(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    char path[4200], cwd[4096];
    int exp = !strcmp(c->argv[0], "export");
    if (!exp && strcmp(c->argv[0], "import")) {
        chp_app_notice(a, _("usage: /bundle export|import PATH"));
        return;
    }
    if (c->argv[1][0] == '/')
        snprintf(path, sizeof path, "%s", c->argv[1]);
    else if (getcwd(cwd, sizeof cwd))
        snprintf(path, sizeof path, "%s/%s", cwd, c->argv[1]);
    else
        snprintf(path, sizeof path, "%s", c->argv[1]);
    if (exp) {
        REQ1(a, CHP_R_LINES, "bundle:", "bundle-export", path);
    } else if (a->bundle_job[0]) {
        chp_app_notice(a, _("a bundle import is still running"));
    } else {
        chp_app_notice(a, _("bundle: importing %s"), path);
        REQ2(a, CHP_R_BUNDLE, "", "bundle-import", path, "");
    }
}

static void cmd_msg(chp_app *a, const chp_cmd *c, const char *who)
{
    /* A conversation appears only once chapard took the message (or
     * already exists): a typo must not leave an empty one behind. */
    int i = chp_model_find(a->m, who);
    if (c->argc == 2)
        chp_app_send_line(a, CHP_R_MSG, who, c->argv[1]);
    else if (i < 0)
        chp_app_notice(
            a,
            _("no conversation called %s: /add ID NAME adds a contact, /join #ROOM joins a room"),
            c->argv[0]);
    if (i >= 0)
        chp_app_select(a, i);
}

static void cmd_join(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who; /* with a passphrase, the last argument is secret */
    chp_app_request(a, CHP_R_JOIN, c->argv[0], c->argc == 2, "join", c->argc, c->argv[0],
                    c->argv[1], NULL);
}

static void cmd_leave(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    const char *room = c->argc ? c->argv[0] : current_name(a);
    if (!room || room[0] != '#') {
        chp_app_notice(a, _("usage: /leave #ROOM"));
        return;
    }
    REQ1(a, CHP_R_LEAVE, room, "leave", room);
}

static void cmd_add(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    char tag[256];
    snprintf(tag, sizeof tag, "added %.200s: they see a contact request", c->argv[1]);
    REQ2(a, CHP_R_DONE, tag, "contact-add", c->argv[0], c->argv[1]);
}

static void cmd_accept(chp_app *a, const chp_cmd *c, const char *who)
{
    char tag[256];
    snprintf(tag, sizeof tag, "accepted %.200s", c->argv[0]);
    chp_app_request(a, CHP_R_DONE, tag, 0, "contact-accept", c->argc, who, c->argv[1], NULL);
}

static void cmd_block(chp_app *a, const chp_cmd *c, const char *who)
{
    char tag[256];
    snprintf(tag, sizeof tag, "blocked %.200s", c->argv[0]);
    REQ1(a, CHP_R_DONE, tag, "contact-block", who);
}

static void cmd_contacts(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)c, (void)who;
    REQ0(a, CHP_R_LINES, "contacts (name, ID, state, fingerprint):", "contact-list");
    REQ0(a, CHP_R_LINES, "contact requests (ID, nick, fingerprint, time):", "contact-requests");
}

static void cmd_id(chp_app *a, const chp_cmd *c, const char *who)
{
    if (c->argc)
        REQ1(a, CHP_R_LINES, "", "contact-show", who);
    else
        REQ0(a, CHP_R_IDSHOW, NULL, "id");
}

static void cmd_nickname(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    REQ1(a, CHP_R_NICK, c->argv[0], "nick", c->argv[0]);
}

static void cmd_wipe(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)c, (void)who;
    chp_app_notice(a,
                   _("/wipe deletes your identity, contacts, messages and this node's store in "
                     "%s. It cannot be undone."),
                   a->home);
    chp_app_set_phase(a, CHP_PH_CONFIRM_WIPE);
}

/* /share-app [stop | HOST:PORT]: the front end runs `chapar share-app`,
 * which asks this node to sign the manifest (so the identity must be
 * unlocked); HOST:PORT is where it listens (default: the LAN address). */
static void cmd_share(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    int stop = c->argc && !strcmp(c->argv[0], "stop");
    const char *listen = c->argc && !stop ? c->argv[0] : NULL;
    if (listen && (!strchr(listen, ':') || strchr(listen, ' '))) {
        chp_app_notice(a, _("usage: /share-app [stop | HOST:PORT]"));
    } else if (!a->io.share) {
        chp_app_notice(a, _("sharing the app is not offered here"));
    } else if (stop != a->sharing) {
        chp_app_notice(
            a, stop ? _("not sharing") : _("already sharing at %s (/share-app stop ends it)"),
            a->share_url[0] ? a->share_url : _("(starting)"));
    } else if (a->io.share(a->io.share_ctx, !stop, listen) != CHP_OK) {
        chp_app_notice(
            a, "%s", stop ? _("cannot stop chapar share-app") : _("cannot start chapar share-app"));
    } else if (!stop) {
        a->sharing = 1;
        a->share_url[0] = '\0';
        chp_app_notice(a,
                       _("starting chapar share-app (it looks for the .deb in dist/: make deb)"));
    }
    a->dirty = 1;
}

void chp_app_share_line(chp_app *a, const char *line)
{
    if (a->sharing && !a->share_url[0] && !strncmp(line, "http://", 7) &&
        strlen(line) < sizeof a->share_url) {
        snprintf(a->share_url, sizeof a->share_url, "%s", line);
        chp_app_notice(a,
                       _("sharing Chapar at %s : people near you open it in a browser and check "
                         "the files against your ID %s (/share-app stop ends it)"),
                       line, a->uid);
    } else if (line[0]) {
        chp_app_notice(a, _("share-app: %s"), line);
    }
    a->dirty = 1;
}

/* /set alone shows the settings; /set NAME VALUE changes one (prefs.h). */
static void cmd_set(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    char now[160];
    if (c->argc == 2 && chp_prefs_set(&a->prefs, c->argv[0], c->argv[1]) != 0) {
        chp_app_notice(a, _("usage: /set bidi auto|app|terminal, /set calendar gregorian|jalali, "
                            "/set digits latin|persian"));
        return;
    }
    if (c->argc == 1) {
        cmd_usage(a, &(chp_cmd){.text = "/set [NAME VALUE]"}, NULL);
        return;
    }
    chp_prefs_describe(&a->prefs, now, sizeof now);
    chp_app_notice(a, _("settings: %s"), now);
    a->dirty = 1;
}

void chp_app_share_ended(chp_app *a, const char *how)
{
    chp_app_notice(a, _("share-app stopped (%s)"), how);
    a->sharing = 0;
    a->share_url[0] = '\0';
    a->dirty = 1;
}

static void cmd_file(chp_app *a, const chp_cmd *c, const char *who)
{
    (void)who;
    switch (c->kind) {
    case CHP_CMD_FILE:
        chp_app_cmd_file(a, c, current_name(a));
        break;
    case CHP_CMD_FILES:
        chp_app_cmd_files(a, c);
        break;
    case CHP_CMD_SAVE:
        chp_app_cmd_save(a, c);
        break;
    default:
        chp_app_cmd_open(a, c);
        break;
    }
}

/* When a command may run: always, while the node is up, or once the
 * identity is unlocked as well. */
enum gate { G_ANY, G_UP, G_READY };

/* one command a row */
/* clang-format off */
static const struct cmd_row {
    chp_cmd_kind kind;
    enum gate gate;
    int who; /* its first argument is a WHO ("~nick" resolves to an ID) */
    cmd_fn *handler;
} cmd_rows[] = {
    {CHP_CMD_HELP, G_ANY, 0, cmd_help},
    {CHP_CMD_QUIT, G_ANY, 0, cmd_quit},
    {CHP_CMD_UNKNOWN, G_ANY, 0, cmd_unknown},
    {CHP_CMD_USAGE, G_ANY, 0, cmd_usage},
    {CHP_CMD_TEXT, G_UP, 0, cmd_text},
    {CHP_CMD_DISCOVERY, G_UP, 0, cmd_discovery},
    {CHP_CMD_PEER, G_UP, 0, cmd_peer},
    {CHP_CMD_BUNDLE, G_UP, 0, cmd_bundle},
    {CHP_CMD_MSG, G_READY, 1, cmd_msg},
    {CHP_CMD_JOIN, G_READY, 0, cmd_join},
    {CHP_CMD_LEAVE, G_READY, 0, cmd_leave},
    {CHP_CMD_ADD, G_READY, 0, cmd_add},
    {CHP_CMD_ACCEPT, G_READY, 1, cmd_accept},
    {CHP_CMD_BLOCK, G_READY, 1, cmd_block},
    {CHP_CMD_CONTACTS, G_READY, 0, cmd_contacts},
    {CHP_CMD_ID, G_READY, 1, cmd_id},
    {CHP_CMD_NICK, G_READY, 0, cmd_nickname},
    {CHP_CMD_WIPE, G_READY, 0, cmd_wipe},
    {CHP_CMD_SHARE, G_READY, 0, cmd_share},
    {CHP_CMD_SET, G_ANY, 0, cmd_set},
    {CHP_CMD_FILE, G_READY, 0, cmd_file},
    {CHP_CMD_FILES, G_READY, 0, cmd_file},
    {CHP_CMD_SAVE, G_READY, 0, cmd_file},
    {CHP_CMD_OPEN, G_READY, 0, cmd_file},
};
/* clang-format on */

/* WHO of a command as the daemon takes it: who itself, or for "~nick"
 * (how a stranger shows, and what Tab completes them to) the ID of the
 * request they sent, in buf. NULL after saying why when it names nobody
 * known. */
static const char *who_arg(chp_app *a, const char *who, char *buf, size_t cap)
{
    if (who[0] != '~')
        return who;
    int r = chp_model_resolve_who(a->m, who, buf, cap);
    if (r == 0)
        chp_app_notice(
            a,
            _("%s sent you no contact request, and your node knows a stranger only by "
              "nick and fingerprint: ask them for their ID (chp1...), then /add ID NAME"),
            who);
    else if (r < 0)
        chp_app_notice(a,
                       _("more than one contact request comes from someone called %s: use the ID "
                         "(/contacts lists them)"),
                       who + 1);
    return r == 1 ? buf : NULL;
}

/* 1 when the row's gate lets the command run now; else says why. */
static int gate_open(chp_app *a, const struct cmd_row *r, const chp_cmd *c)
{
    if (r->gate == G_ANY)
        return 1;
    if (a->life.down) {
        chp_app_notice(a, _("the node is down: %s"),
                       a->life.restart_at ? "wait until it is restarted"
                                          : "start it again (chapard --home DIR), then try again");
        if (c->kind == CHP_CMD_TEXT && chp_input_len(a->in) == 0)
            chp_input_insert_utf8(a->in, c->text); /* not lost: back on the line */
        return 0;
    }
    if (r->gate == G_READY && a->ph != CHP_PH_READY) {
        chp_app_notice(a, _("not ready yet: only /peer, /discovery, /help and /quit work now"));
        return 0;
    }
    return 1;
}

static void run_command(chp_app *a, const chp_cmd *c)
{
    const struct cmd_row *r = NULL;
    for (size_t i = 0; i < sizeof cmd_rows / sizeof cmd_rows[0] && !r; i++)
        if (cmd_rows[i].kind == c->kind)
            r = &cmd_rows[i];
    if (!r || (c->kind == CHP_CMD_TEXT && !c->text[0]) || !gate_open(a, r, c))
        return;
    char idbuf[160];
    const char *who = c->argc ? c->argv[0] : NULL;
    if (r->who && c->argc && !(who = who_arg(a, c->argv[0], idbuf, sizeof idbuf)))
        return;
    r->handler(a, c, who);
}

/* ---------------------------------------------------------------- Enter */

/* What Enter does with line (len bytes) in one phase. */
typedef void enter_fn(chp_app *a, const char *line, size_t len);

static void enter_nick(chp_app *a, const char *line, size_t len)
{
    if (len == 0 || len > CHP_APP_NICK_BYTES - 1) {
        chp_app_notice(a, _("A nickname is 1 to %d bytes."), CHP_APP_NICK_BYTES - 1);
    } else if (!chp_text_name_ok(line, len)) {
        chp_app_notice(a, _("Not as a nickname: no spaces at either end, no invisible or "
                            "direction-changing characters (they let one name pass for another)."));
    } else {
        snprintf(a->wizard_nick, sizeof a->wizard_nick, "%s", line);
        chp_app_notice(a,
                       _("Nickname: %s. Now a passphrase: it locks your identity on this disk. "
                         "Press Enter alone for none."),
                       line);
        chp_app_set_phase(a, CHP_PH_ASK_PASS);
    }
}

static void enter_pass(chp_app *a, const char *line, size_t len)
{
    if (len == 0) {
        chp_app_notice(a, _("Without a passphrase anyone who gets this disk can read your messages "
                            "and be you."));
        chp_app_notice(a, _("Type none to confirm, or Enter to choose a passphrase after all."));
        chp_app_set_phase(a, CHP_PH_ASK_NONE);
    } else if (len >= sizeof a->pass) {
        chp_app_notice(a, _("That passphrase is too long (at most %zu bytes)."),
                       sizeof a->pass - 1);
    } else {
        memcpy(a->pass, line, len);
        a->passlen = len;
        chp_app_set_phase(a, CHP_PH_ASK_PASS2);
    }
}

static void enter_pass2(chp_app *a, const char *line, size_t len)
{
    if (len == a->passlen && chp_memeq(line, a->pass, len)) {
        chp_app_notice(a,
                       _("Creating your identity (a few seconds: the passphrase is stretched)..."));
        chp_app_request(a, CHP_R_INIT, NULL, 1, "init", 3, a->wizard_nick, "passphrase", line);
        chp_app_set_phase(a, CHP_PH_CREATING);
    } else {
        chp_app_notice(a,
                       _("The two entries differ. Type the passphrase again (Enter alone: none)."));
        chp_app_set_phase(a, CHP_PH_ASK_PASS);
    }
    chp_app_wipe_pass(a);
}

static void enter_none(chp_app *a, const char *line, size_t len)
{
    (void)len;
    if (!strcmp(line, "none")) {
        chp_app_notice(a, _("Creating your identity without a passphrase..."));
        REQ2(a, CHP_R_INIT, NULL, "init", a->wizard_nick, "none");
        chp_app_set_phase(a, CHP_PH_CREATING);
    } else {
        chp_app_notice(a, _("Type a passphrase (Enter alone: none)."));
        chp_app_set_phase(a, CHP_PH_ASK_PASS);
    }
}

static void enter_unlock(chp_app *a, const char *line, size_t len)
{
    if (len) {
        chp_app_notice(a, _("Unlocking..."));
        chp_app_request(a, CHP_R_UNLOCK, NULL, 1, "unlock", 1, line, NULL, NULL);
        chp_app_set_phase(a, CHP_PH_UNLOCKING);
    }
}

static void enter_wipe(chp_app *a, const char *line, size_t len)
{
    (void)len;
    if (!strcmp(line, "yes")) {
        REQ1(a, CHP_R_WIPE, NULL, "wipe", "yes");
        chp_app_notice(a, _("wiping..."));
    } else {
        chp_app_notice(a, _("not wiped"));
    }
    chp_app_set_phase(a, CHP_PH_READY);
}

/* A command, or a line to send. */
static void enter_command(chp_app *a, const char *line, size_t len)
{
    (void)len;
    chp_cmd c;
    if (chp_cmd_parse(line, &c) == CHP_OK)
        run_command(a, &c);
    chp_cmd_fini(&c);
}

/* The phases with a question of their own; the others take commands. */
static enter_fn *const enter_fns[] = {
    [CHP_PH_ASK_NICK] = enter_nick,     [CHP_PH_ASK_PASS] = enter_pass,
    [CHP_PH_ASK_PASS2] = enter_pass2,   [CHP_PH_ASK_NONE] = enter_none,
    [CHP_PH_ASK_UNLOCK] = enter_unlock, [CHP_PH_CONFIRM_WIPE] = enter_wipe,
};

void chp_app_submit(chp_app *a)
{
    size_t len;
    a->full_said = 0;
    char *line = chp_input_take(a->in, &len);
    if (!line) {
        chp_app_notice(a, _("out of memory"));
        return;
    }
    if (!chp_input_secret(a->in) && !strcmp(line, "/quit")) {
        a->quit = 1; /* also from the wizard's plain prompts */
        free(line);
        return;
    }
    chp_phase ph = a->ph;
    if ((ph == CHP_PH_ASK_NICK || ph == CHP_PH_ASK_NONE) && line[0] == '/' && line[1] != '/')
        ph = CHP_PH_READY; /* a command, such as /discovery off, not a nickname */
    enter_fn *fn = (size_t)ph < sizeof enter_fns / sizeof enter_fns[0] ? enter_fns[ph] : NULL;
    (fn ? fn : enter_command)(a, line, len);
    chp_memzero(line, len);
    free(line);
    a->dirty = 1;
}

/* ---------------------------------------------------------------- Tab */

void chp_app_complete(chp_app *a)
{
    if (chp_app_file_complete(a))
        return;
    size_t n, nn = 0, nc = chp_model_count(a->m);
    const chp_cmd_spec *t = chp_cmd_table(&n);
    const char *cmds[32];
    const char **names = calloc(nc + 600, sizeof *names), **keys = calloc(nc + 600, sizeof *keys);
    char(*bare)[96] = calloc(500, sizeof *bare); /* a name, "~nick" or an ID */
    if (!names || !keys || !bare)
        goto out;
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
out:
    free(names);
    free(keys);
    free(bare);
}
