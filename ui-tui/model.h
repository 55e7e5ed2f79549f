/* model.h - what the TUI shows, without curses: the conversations (rooms
 * and contacts) with unread counts, each one's messages with delivery
 * state, notices, and the scroll position. It is filled from control-API
 * replies and events (docs/CONTROL.md), whose parsers live here so they
 * are unit tested. */
#ifndef CHP_MODEL_H
#define CHP_MODEL_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

typedef enum chp_conv_kind { CHP_CONV_ROOM, CHP_CONV_CONTACT } chp_conv_kind;

/* Delivery state of a line; NOTICE lines come from the UI itself. */
typedef enum chp_line_state {
    CHP_LINE_IN = 0, /* a received message */
    CHP_LINE_QUEUED,
    CHP_LINE_SENT,
    CHP_LINE_DELIVERED,
    CHP_LINE_NOTICE,
    CHP_LINE_SYSTEM, /* the node's own line in a room (SENDER "*"): a nick change */
} chp_line_state;

/* Who a SENDER (docs/CONTROL.md) is: the node itself ("*"), someone who
 * is no contact ("~nick (fingerprint)"), or a contact (or the user). */
typedef enum chp_sender_kind {
    CHP_SENDER_CONTACT,
    CHP_SENDER_STRANGER,
    CHP_SENDER_SYSTEM,
} chp_sender_kind;

chp_sender_kind chp_sender_kind_of(const char *sender);

/* One line of a conversation. Strings are owned by the model. */
typedef struct chp_line {
    int64_t time; /* unix seconds */
    chp_line_state state;
    char *sender; /* as the daemon names it; "" for notices */
    char *text;   /* UTF-8, unescaped */
    char msgid[33];
    uint64_t seq;         /* when the UI first learnt of it: orders lines of one second */
    uint32_t done, total; /* a file's pieces sent (or received) of total (0: not a file) */
    int partial;          /* an incoming file still arriving: replaced by its message */
} chp_line;

/* One conversation; pointers stay valid until the model changes. */
typedef struct chp_conv {
    char *name; /* "#lan" or a contact name */
    chp_conv_kind kind;
    unsigned unread;
    chp_line *lines;
    size_t nlines, cap;
    size_t scroll;      /* rows scrolled up from the bottom; the front end clamps it */
    char room_kind[16]; /* rooms: "public" or "passphrase" from `rooms`; "" unknown */
    char room_fp[24];   /* rooms: the room key's short fingerprint; "" unknown */
} chp_conv;

typedef struct chp_model chp_model;

/* A new empty model; NULL when out of memory. */
chp_model *chp_model_new(void);
/* Accepts NULL; sets *mp NULL. */
void chp_model_destroy(chp_model **mp);

size_t chp_model_count(const chp_model *m);
/* Conversation i (< count); borrowed, valid until the model changes. */
const chp_conv *chp_model_conv(const chp_model *m, size_t i);
/* Index of the conversation called name, or -1. */
int chp_model_find(const chp_model *m, const char *name);
/* The selected conversation's index, or -1 when there is none. */
int chp_model_current(const chp_model *m);

/* Adds a conversation (or finds it) and returns its index, -1 when out of
 * memory. Kind: a name starting with '#' is a room. New conversations go
 * at the end, so Alt+digit numbers stay put; the first one added is
 * selected, and takes the notices shown so far. */
int chp_model_add(chp_model *m, const char *name);
/* Removes a conversation; the selection moves to a neighbour. */
void chp_model_remove(chp_model *m, const char *name);

/* Selects conversation i (ignored when out of range) and clears its
 * unread count. next/prev wrap around. */
void chp_model_select(chp_model *m, int i);
void chp_model_next(chp_model *m);
void chp_model_prev(chp_model *m);

/* Applies a `conversations` reply: adds the ones not known yet, removes
 * the ones gone, takes the unread counts (the selected one stays 0).
 * CHP_E_MALFORMED for a line that does not parse: the other lines still
 * apply, but nothing is removed. */
CHP_WUR int chp_model_load_conversations(chp_model *m, const char *payload, size_t len);
/* Applies a `rooms` reply (lines ROOM\tKIND, or ROOM\tKIND\tFINGERPRINT
 * from daemons that give a room fingerprint): sets room_kind and room_fp
 * of the rooms already known; a room absent from the reply keeps what it
 * had. CHP_E_MALFORMED for a line that does not parse (the rest apply). */
CHP_WUR int chp_model_load_rooms(chp_model *m, const char *payload, size_t len);
/* The title of conversation i (< count) into out: a room's name, kind and
 * fingerprint as far as known ("#kitchen · passphrase · abcd1234"), a
 * contact's name. */
void chp_model_title(const chp_model *m, size_t i, char *out, size_t cap);

/* Applies a `history CONV` reply: the conversation's messages become the
 * reply's, with the notices shown in it kept. Lines are ordered by time,
 * and within one second by when the UI first learnt of them (a message
 * keeps that moment across reloads, by its id), so a message that
 * arrives after a notice shows below it. Adds the conversation when it is
 * new. CHP_E_MALFORMED for a line that does not parse (the rest apply). */
CHP_WUR int chp_model_load_history(chp_model *m, const char *conv, const char *payload, size_t len);
/* A `message` event for conv from sender (as the event names it): adds
 * the conversation if new; counts it unread unless it is the selected one
 * or the line is the node's own (sender "*", which the node counts read).
 * Returns its index (-1: OOM). */
int chp_model_on_message(chp_model *m, const char *conv, const char *sender);
/* A `room` event (ROOM\tjoined\tFINGERPRINT or ROOM\tleft, escaped as in
 * replies): a joined room is added (or found) and takes the fingerprint,
 * a left one is removed. Returns the joined room's index; -1 for a room
 * left, a body that does not parse, or no memory. */
int chp_model_on_room(chp_model *m, const char *body, size_t len);

/* Applies a `contact-requests` reply (lines ID\tNICK\tFINGERPRINT\tTIME):
 * the pending requests become the reply's. CHP_E_MALFORMED for a line that
 * does not parse (the rest apply). */
CHP_WUR int chp_model_load_requests(chp_model *m, const char *payload, size_t len);
/* The word Tab completes a line's sender to, the way /accept, /block, /id
 * and /msg take it, into out; 0 when there is none (notices, the node's
 * own lines). A contact: its name. A stranger "~ali (jqn8znuw)": "~ali",
 * which chp_model_resolve_who turns into the ID of their request (or
 * explains that they sent none); their ID itself when "~ali" would not
 * name them alone (another request under that nick, or they asked under
 * another nick); none when they sent no request and someone else asked
 * as ali (the word would name that other person). */
int chp_model_sender_word(const chp_model *m, const char *sender, char *out, size_t cap);
/* A WHO typed in a command, as the daemon takes it, into out: "~nick" is
 * the ID of the one pending request under that nick; anything else stays
 * as typed. 1: out is set; 0: nobody who asked is called so (a stranger
 * in a room whose ID the node does not know); -1: several requests carry
 * that nick. */
int chp_model_resolve_who(const chp_model *m, const char *who, char *out, size_t cap);
/* A `state` event: sets the state of the outgoing message msgid (never
 * backwards: delivered stays delivered). Returns 1 if it was found. */
int chp_model_set_state(chp_model *m, const char *msgid, const char *state);
/* A `file` event: pieces done of total of the outgoing file msgid, for its
 * line's progress bar. Returns 1 if it was found. */
int chp_model_set_progress(chp_model *m, const char *msgid, uint32_t done, uint32_t total);
/* An incoming file's progress (the `file` event with "in"): its line in
 * conv (the message msgid, once it came) gets done of total pieces;
 * until then a partial line from sender with text stands for it, at time
 * now, and survives history reloads. Returns 1 when a line changed. */
int chp_model_file_in(chp_model *m, const char *conv, const char *sender, const char *msgid,
                      const char *text, int64_t now, uint32_t done, uint32_t total);

/* Appends a notice (one UTF-8 line) to the selected conversation, or to a
 * holding list while there is none. */
void chp_model_notice(chp_model *m, int64_t time, const char *text);
/* The notices held while no conversation existed. */
const chp_line *chp_model_orphans(const chp_model *m, size_t *n);

/* Scrolls the selected conversation by delta rows (positive: back in
 * time); clamps at 0 and at max_rows. */
void chp_model_scroll(chp_model *m, long delta, size_t max_rows);

/* What the status bar shows of a `status` reply (docs/CONTROL.md). */
typedef struct chp_status {
    int peers;      /* peers connected; -1 absent */
    int relays;     /* relays connected; -1 absent */
    int store_full; /* 1: the store refuses others' mail; 0 no; -1 absent */
} chp_status;
/* Parses a `status` reply; keys it lacks stay -1. */
void chp_status_parse(const char *payload, size_t len, chp_status *st);

/* Unescapes a CONTROL.md text field (\t \n \r \\) into a new string. */
char *chp_unescape(const char *s, size_t len);

/* Splits a tab-separated line into at most max fields (in place: tabs
 * become NULs); returns the number found. */
int chp_split_tabs(char *line, char **fields, int max);

#endif
