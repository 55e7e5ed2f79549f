/* app_int.h - what app.c lends app_cmd.c (requests, the lines on their
 * way, phase changes); visible to the app's two files only. */
#ifndef CHP_APP_INT_H
#define CHP_APP_INT_H

#include "node/common/i18n.h"
#include "ui-tui/app.h"

/* Sends cmd with up to 3 string arguments (a0..a2, nargs of them) through
 * the io; secret: the last is a passphrase. A refusal becomes a notice. */
void chp_app_request(chp_app *a, int kind, const char *tag, int secret, const char *cmd, int nargs,
                     const char *a0, const char *a1, const char *a2);

#define REQ0(a, k, tag, cmd)       chp_app_request(a, k, tag, 0, cmd, 0, NULL, NULL, NULL)
#define REQ1(a, k, tag, cmd, x)    chp_app_request(a, k, tag, 0, cmd, 1, x, NULL, NULL)
#define REQ2(a, k, tag, cmd, x, y) chp_app_request(a, k, tag, 0, cmd, 2, x, y, NULL)

/* Sends a typed line to conv (kind CHP_R_SEND or CHP_R_MSG), keeping a
 * copy until chapard answers; when too many wait, says so and puts the
 * line back on an empty input line. */
void chp_app_send_line(chp_app *a, int kind, const char *conv, const char *text);
/* Enters phase ph: the input line is cleared, and hides what is typed
 * while a passphrase is asked. */
void chp_app_set_phase(chp_app *a, chp_phase ph);
/* Forgets the first passphrase entry (wiped). */
void chp_app_wipe_pass(chp_app *a);

#endif
