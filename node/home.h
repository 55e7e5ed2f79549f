/* home.h - where a user's Chapar data lives, and size arguments. */
#ifndef CHP_HOME_H
#define CHP_HOME_H

#include <stddef.h>
#include <stdint.h>

/* $CHAPAR_HOME, else $XDG_DATA_HOME/chapar, else ~/.local/share/chapar.
 * 0 on success, -1 when no home can be found or it does not fit. */
int chp_home_default(char *out, size_t cap);

/* Creates home and any missing parents (mode 0700). 0, or -1 with errno
 * (ENOTDIR when home or a parent is a file). */
int chp_home_make(const char *home);

/* Takes home's daemon lock (an flock on DIR/chapard.lock, held until the
 * process exits): the fd, or -1 with errno EWOULDBLOCK when another
 * process holds it, another errno when the file cannot be opened. */
int chp_home_lock(const char *home);

/* "512", "64K", "256M", "4G", "1T" (binary units) -> bytes; -1 if invalid. */
int chp_parse_size(const char *s, uint64_t *out);

#endif
