/* input.h - the TUI's input line: readline-like editing on wide
 * characters (the cursor moves by what the terminal shows as one
 * character: a base character with its zero-width marks), a history, and
 * Tab completion of commands and nicks. Curses-free, unit tested. */
#ifndef CHP_INPUT_H
#define CHP_INPUT_H

#include "proto/err.h"

#include <stddef.h>
#include <wchar.h>

#define CHP_INPUT_MAX   65536 /* characters: a 64 KiB text of ASCII (chapard refuses more bytes) */
#define CHP_HISTORY_MAX 200

typedef struct chp_input chp_input;

/* A new empty line; NULL when out of memory. */
chp_input *chp_input_new(void);
/* Wipes the line and the history and frees; accepts NULL, sets *ip NULL. */
void chp_input_destroy(chp_input **ip);

/* Inserts c at the cursor. CHP_E_ARG for control characters (and other
 * characters that cannot be shown), CHP_E_OVERFLOW when the line is full. */
CHP_WUR int chp_input_insert(chp_input *in, wchar_t c);
/* Inserts UTF-8 text (pasted or from tests), skipping what insert refuses. */
void chp_input_insert_utf8(chp_input *in, const char *s);

void chp_input_left(chp_input *in);
void chp_input_right(chp_input *in);
void chp_input_home(chp_input *in);
void chp_input_end(chp_input *in);
/* Deletes the code point before the cursor (a mark alone, as editors do). */
void chp_input_backspace(chp_input *in);
/* Deletes the character under the cursor with its zero-width marks. */
void chp_input_delete(chp_input *in);
/* Ctrl-W: deletes the spaces before the cursor, then the word before them. */
void chp_input_word_delete(chp_input *in);
/* Ctrl-U / Ctrl-K: deletes from the start to the cursor / cursor to end. */
void chp_input_kill_start(chp_input *in);
void chp_input_kill_end(chp_input *in);

/* Up / Down: older / newer history line; the line being typed is kept and
 * comes back below the newest entry. */
void chp_input_history_prev(chp_input *in);
void chp_input_history_next(chp_input *in);

/* Secret mode (passphrases): the line is kept out of the history, shown as
 * stars by the front end, and wiped when taken or cleared. */
void chp_input_set_secret(chp_input *in, int on);
int chp_input_secret(const chp_input *in);

/* The line as UTF-8 in a new string the caller frees (in secret mode the
 * caller must wipe it with sodium_memzero before freeing); the line is
 * cleared and, unless secret, empty or a "/join ROOM PASSPHRASE", added
 * to the history (a repeat of the newest entry is not added twice). NULL
 * when out of memory. */
char *chp_input_take(chp_input *in, size_t *len);
/* Empties (and wipes) the line. */
void chp_input_clear(chp_input *in);

/* The line (NUL-terminated, valid until the next call on in), its length
 * in characters and the cursor index (0..len). */
const wchar_t *chp_input_text(const chp_input *in);
size_t chp_input_len(const chp_input *in);
size_t chp_input_cursor(const chp_input *in);

/* Horizontal scrolling for a field width cells wide: *first gets the
 * first character to draw and *col the cursor's cell column inside the
 * field; keeps the cursor visible. */
void chp_input_view(chp_input *in, int width, size_t *first, int *col);

/* Tab: completes the word before the cursor - a command from cmds when it
 * is the first word and starts with '/', else a name from names (rooms,
 * contacts, nicks) - case-insensitively, appending a space. Pressing Tab
 * again right after cycles through the other matches in the order given.
 * Returns the number of matches (0: nothing changed). Any other edit ends
 * the cycle. Names are UTF-8. */
size_t chp_input_complete(chp_input *in, const char *const *cmds, size_t ncmds,
                          const char *const *names, size_t nnames);
/* The same, but a name is chosen when its key (keys[i], for names[i])
 * starts with the word, and names[i] is what goes in: a stranger shown as
 * "~ali (jqn8znuw)" is found by what the screen shows and completes to
 * their ID. keys NULL: the names are their own keys. */
size_t chp_input_complete_keyed(chp_input *in, const char *const *cmds, size_t ncmds,
                                const char *const *names, const char *const *keys, size_t nnames);

#endif
