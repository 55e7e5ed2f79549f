/* home.h - where a user's Chapar data lives, and size arguments. */
#ifndef CHP_HOME_H
#define CHP_HOME_H

#include <stddef.h>
#include <stdint.h>

/* $CHAPAR_HOME, else $XDG_DATA_HOME/chapar, else ~/.local/share/chapar.
 * 0 on success, -1 when no home can be found or it does not fit. */
int chp_home_default(char *out, size_t cap);

/* "512", "64K", "256M", "4G", "1T" (binary units) -> bytes; -1 if invalid. */
int chp_parse_size(const char *s, uint64_t *out);

#endif
