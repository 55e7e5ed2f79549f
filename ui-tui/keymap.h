/* keymap.h - chapar-tui's keys (ncursesw get_wch codes): editing the input
 * line, Enter, Tab, scrolling, switching conversations, Alt+digit. */
#ifndef CHP_KEYMAP_H
#define CHP_KEYMAP_H

#include "ui-tui/app.h"

#include <wchar.h>

/* What the keys remember between two get_wch calls. */
typedef struct chp_keymap {
    int meta;    /* ESC seen: the next key is Alt+key */
    int resized; /* KEY_RESIZE came: the front end takes the new size */
} chp_keymap;

/* Keypad mode, non-blocking reads, and the Home/End/Delete/PgUp/PgDn
 * sequences the terminal's entry may lack; once curses has started. */
void chp_keymap_setup(void);
/* One key as get_wch returned it (type KEY_CODE_YES: k is a KEY_ code,
 * else a character). */
void chp_keymap_on(chp_keymap *ks, chp_app *a, int type, wint_t k);

#endif
