/* draw.h - chapar-tui's screen (ncursesw): the conversation list, the open
 * conversation, the status bar and the input line, drawn from the app. */
#ifndef CHP_DRAW_H
#define CHP_DRAW_H

#include "ui-tui/app.h"

/* Colour pairs, once curses has started. */
void chp_draw_setup(void);
/* Takes the terminal's new size (after SIGWINCH) and repaints it all on
 * the next draw. */
void chp_draw_resize(void);
/* Draws everything. A conversation scrolled back further than it has
 * lines is pulled down, which marks the app dirty again. */
void chp_draw(chp_app *a);

#endif
