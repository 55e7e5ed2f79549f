/* cmd.c - slash command table and parser (cmd.h). */
#include "ui-tui/cmd.h"

#include "node/common/i18n.h"
#include "proto/crypto.h"

#include <stdlib.h>
#include <string.h>

static const chp_cmd_spec table[] = {
    {"/help", CHP_CMD_HELP, 0, 1, 0, "/help", N_("list commands and keys")},
    {"/msg", CHP_CMD_MSG, 1, 2, 1, "/msg WHO [TEXT]",
     N_("open the conversation with a contact or #room, and send TEXT")},
    {"/join", CHP_CMD_JOIN, 1, 2, 1, "/join #ROOM [PASSPHRASE]",
     N_("join a public room, or a passphrase room")},
    {"/leave", CHP_CMD_LEAVE, 0, 1, 0, "/leave [#ROOM]", N_("leave a room (default: this one)")},
    {"/add", CHP_CMD_ADD, 2, 2, 1, "/add ID NAME", N_("add a contact by their chp1... ID")},
    {"/accept", CHP_CMD_ACCEPT, 1, 2, 1, "/accept WHO [NAME]",
     N_("accept a contact request (WHO: ~nick as shown, or their ID)")},
    {"/block", CHP_CMD_BLOCK, 1, 1, 1, "/block WHO", N_("drop a contact's requests and messages")},
    {"/contacts", CHP_CMD_CONTACTS, 0, 0, 0, "/contacts", N_("list contacts and pending requests")},
    {"/id", CHP_CMD_ID, 0, 1, 1, "/id [WHO]",
     N_("show your ID, or a contact's ID and safety number")},
    {"/peer", CHP_CMD_PEER, 0, 1, 0, "/peer [ADDRESS]",
     N_("connect to a node by address; alone: show yours and the peers")},
    {"/discovery", CHP_CMD_DISCOVERY, 0, 1, 0, "/discovery [on|off]",
     N_("off: invisible on the local network (no LAN beacons); alone: say which")},
    {"/bundle", CHP_CMD_BUNDLE, 2, 2, 1, "/bundle export|import PATH",
     N_("write your node's envelopes to a file for a USB stick, or import one")},
    {"/nick", CHP_CMD_NICK, 1, 1, 1, "/nick NAME", N_("change your nickname")},
    {"/share-app", CHP_CMD_SHARE, 0, 1, 0, "/share-app [stop|HOST:PORT]",
     N_("share Chapar with people near you: a LAN page with the .deb, signed by you")},
    {"/set", CHP_CMD_SET, 0, 2, 0, "/set [NAME VALUE]",
     N_("show or change a setting: bidi auto|app|terminal, calendar gregorian|jalali, digits "
        "latin|persian")},
    {"/file", CHP_CMD_FILE, 1, 1, 1, N_("/file PATH"), N_("send a file (photo, voice note) here")},
    {"/files", CHP_CMD_FILES, 0, 0, 0, N_("/files"), N_("received files, numbered")},
    {"/save", CHP_CMD_SAVE, 1, 2, 1, N_("/save N [PATH]"), N_("write received file N to PATH")},
    {"/open", CHP_CMD_OPEN, 1, 1, 0, N_("/open N"), N_("open received file N (xdg-open)")},
    {"/wipe", CHP_CMD_WIPE, 0, 0, 0, "/wipe", N_("delete identity and all data (asks first)")},
    {"/quit", CHP_CMD_QUIT, 0, 0, 0, "/quit",
     N_("leave chapar-tui (the node keeps running once you have an identity)")},
};

const chp_cmd_spec *chp_cmd_table(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Strips spaces at both ends, in place. */
static char *trim(char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = 0;
    return s;
}

/* A line to send: s without the escaping slash of "//", or "" when blank. */
static void parse_text(const char *s, chp_cmd *out)
{
    out->kind = CHP_CMD_TEXT;
    out->text = s[0] == '/' ? s + 1 : s;
    const char *t = out->text;
    while (is_space(*t))
        t++;
    if (!*t)
        out->text = t; /* blank: "" */
}

/* Splits the arguments after the command name (in place) into argv:
 * words, the last one taking the rest when the command says so. Returns
 * how many there are, sp->max + 1 when there are too many. */
static int split_args(const chp_cmd_spec *sp, char *p, const char **argv)
{
    int argc = 0;
    for (;;) {
        while (is_space(*p))
            p++;
        if (!*p)
            return argc;
        if (argc == sp->max)
            return sp->max + 1; /* too many */
        if (sp->rest && argc == sp->max - 1) {
            argv[argc++] = trim(p);
            return argc;
        }
        argv[argc++] = p;
        while (*p && !is_space(*p))
            p++;
        if (*p)
            *p++ = 0;
    }
}

int chp_cmd_parse(const char *line, chp_cmd *out)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(line);
    /* one spare byte in front, so roomify has a slot even for "/join x" */
    if (!(out->copy_ = malloc(n + 2)))
        return CHP_E_NOMEM;
    out->copylen_ = n + 2;
    out->copy_[0] = ' ';
    memcpy(out->copy_ + 1, line, n + 1);
    char *s = out->copy_ + 1;
    if (s[0] != '/' || s[1] == '/') {
        parse_text(s, out);
        return CHP_OK;
    }
    char *name = s, *p = s;
    while (*p && !is_space(*p))
        p++;
    if (*p)
        *p++ = 0;
    const chp_cmd_spec *sp = NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(name, table[i].name))
            sp = &table[i];
    if (!sp) {
        out->kind = CHP_CMD_UNKNOWN;
        out->argv[0] = name;
        out->argc = 1;
        return CHP_OK;
    }
    int argc = split_args(sp, p, out->argv);
    if (argc < sp->min || argc > sp->max) {
        memset(out->argv, 0, sizeof out->argv);
        out->argc = 0;
        out->kind = CHP_CMD_USAGE;
        out->text = sp->usage;
        return CHP_OK;
    }
    out->kind = sp->kind;
    out->argc = argc;
    if ((sp->kind == CHP_CMD_JOIN || sp->kind == CHP_CMD_LEAVE) && argc >= 1 &&
        out->argv[0][0] != '#') {
        /* "lan" -> "#lan": the byte before the word (a space or the NUL
         * that ended the command name, no longer needed) becomes the '#' */
        char *w = (char *)out->argv[0] - 1;
        *w = '#';
        out->argv[0] = w;
    }
    return CHP_OK;
}

void chp_cmd_fini(chp_cmd *c)
{
    if (c->copy_) {
        chp_memzero(c->copy_, c->copylen_);
        free(c->copy_);
    }
    memset(c, 0, sizeof *c);
}
