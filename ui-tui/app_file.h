/* app_file.h - files in the TUI (app_file.c): the handlers of /file,
 * /files, /save and /open that app_cmd.c's table calls. */
#ifndef CHP_APP_FILE_H
#define CHP_APP_FILE_H

#include "ui-tui/app.h"
#include "ui-tui/cmd.h"

/* /file PATH to the conversation conv (NULL: none is open). */
void chp_app_cmd_file(chp_app *a, const chp_cmd *c, const char *conv);
void chp_app_cmd_files(chp_app *a, const chp_cmd *c);
void chp_app_cmd_save(chp_app *a, const chp_cmd *c);
void chp_app_cmd_open(chp_app *a, const chp_cmd *c);
/* Tab on a /file line: completes the path from the file system (the
 * common start of the names that match; a directory gets its '/').
 * 1 when the line was a /file line, else 0 (other completions apply). */
int chp_app_file_complete(chp_app *a);
/* 1 when a file of this name is shown as a voice note (.opus, .ogg,
 * .oga, .m4a). */
int chp_app_file_voice(const char *name);

#endif
