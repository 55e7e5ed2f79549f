/* cmd.h - the TUI's slash commands: one table that parses input lines and
 * writes /help and --help. Curses-free, unit tested. */
#ifndef CHP_CMD_H
#define CHP_CMD_H

#include "proto/err.h"

#include <stddef.h>

typedef enum chp_cmd_kind {
    CHP_CMD_TEXT = 0, /* not a command: a line to send (text) */
    CHP_CMD_HELP,
    CHP_CMD_MSG,
    CHP_CMD_JOIN,
    CHP_CMD_LEAVE,
    CHP_CMD_ADD,
    CHP_CMD_ACCEPT,
    CHP_CMD_BLOCK,
    CHP_CMD_CONTACTS,
    CHP_CMD_ID,
    CHP_CMD_PEER,
    CHP_CMD_NICK,
    CHP_CMD_DISCOVERY,
    CHP_CMD_BUNDLE,
    CHP_CMD_WIPE,
    CHP_CMD_QUIT,
    CHP_CMD_SHARE,
    CHP_CMD_SET,
    CHP_CMD_FILE,
    CHP_CMD_FILES,
    CHP_CMD_SAVE,
    CHP_CMD_OPEN,
    CHP_CMD_UNKNOWN, /* "/something" not in the table: argv[0] is the name */
    CHP_CMD_USAGE,   /* a known command with the wrong arguments: text is its usage */
} chp_cmd_kind;

#define CHP_CMD_ARGS 3

/* A parsed line. Strings point into the struct's own copy of the line and
 * live until chp_cmd_fini. */
typedef struct chp_cmd {
    chp_cmd_kind kind;
    int argc;
    const char *argv[CHP_CMD_ARGS]; /* arguments; the last may hold spaces */
    const char *text;               /* TEXT: the line to send; USAGE: the usage */
    char *copy_;                    /* owned copy of the line */
    size_t copylen_;                /* its size, for the wipe */
} chp_cmd;

/* One command of the table. */
typedef struct chp_cmd_spec {
    const char *name;  /* "/msg" */
    chp_cmd_kind kind; /* */
    int min, max;      /* arguments */
    int rest;          /* the last argument takes the rest of the line */
    const char *usage; /* "/msg WHO [TEXT]" */
    const char *help;  /* one line */
} chp_cmd_spec;

/* The command table (n entries, static storage). */
const chp_cmd_spec *chp_cmd_table(size_t *n);

/* Parses line (UTF-8, NUL-terminated, no line end). A line not starting
 * with '/' is TEXT as it is; "//..." is TEXT with one slash removed; an
 * empty or blank line is TEXT "" (the caller ignores it). Room names of
 * /join and /leave get a '#' in front when they lack one. CHP_OK or
 * CHP_E_NOMEM; *out must be released with chp_cmd_fini either way. */
CHP_WUR int chp_cmd_parse(const char *line, chp_cmd *out);
/* Frees what parse kept (wiping it: a /join line holds a passphrase).
 * Accepts a zeroed or finished struct. */
void chp_cmd_fini(chp_cmd *c);

#endif
