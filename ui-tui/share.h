/* share.h - the front end's `chapar share-app` child for /share-app: it
 * starts the chapar next to chapar-tui with its output on a pipe the loop
 * polls, hands the app each line it prints, and stops it (SIGINT) on
 * /share-app stop and when the UI quits. */
#ifndef CHP_TUI_SHARE_H
#define CHP_TUI_SHARE_H

#include "ui-tui/app.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct chp_share_child {
    const char *home; /* borrowed: the UI's data dir */
    pid_t pid;        /* 0: none runs */
    int fd;           /* its stdout and stderr, -1 when closed */
    char buf[1024];   /* a line being read */
    size_t len;
} chp_share_child;

/* No child yet; home must outlive s. */
void chp_share_child_init(chp_share_child *s, const char *home);
/* chp_app_io.share: start 1 runs `chapar --home HOME share-app` (with
 * --listen listen unless NULL), 0 sends it SIGINT. CHP_OK or CHP_E_IO. */
int chp_share_child_ctl(void *s, int start, const char *listen);
/* The descriptor to poll (-1: none). */
int chp_share_child_fd(const chp_share_child *s);
/* Reads what the child printed: each whole line to chp_app_share_line;
 * at its end, reaps it and tells chp_app_share_ended. */
void chp_share_child_read(chp_share_child *s, chp_app *a);
/* Stops a child still running (SIGINT, then SIGKILL after 2 s). */
void chp_share_child_stop(chp_share_child *s);

#endif
