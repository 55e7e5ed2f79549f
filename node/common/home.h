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

/* Longest data dir path: its control socket path must fit a sockaddr_un. */
#define CHP_HOME_PATH_MAX 99

/* Whether name is a file Chapar keeps in a data dir (the identity, the
 * store, the config, the log, the lock, the sockets, temp files). */
int chp_home_owns(const char *name);
/* 1 if home holds an identity or a store (it is someone's Chapar data). */
int chp_home_is_data_dir(const char *home);
/* Whether home may be used as a data dir: it does not exist yet, or it is
 * a directory that holds Chapar data, or only Chapar's files, or nothing.
 * 0, or -1 with errno: ENOTDIR (a file), ENAMETOOLONG (longer than
 * CHP_HOME_PATH_MAX), EEXIST (a directory of other things: the first such
 * name goes to what), or another errno from reading it. */
int chp_home_check(const char *home, char *what, size_t cap);

/* chp_home_check as one line for the user ("DIR is not a directory",
 * ...) in buf, or NULL when home is fine. */
const char *chp_home_problem(const char *home, char *buf, size_t cap);

/* Takes home's daemon lock (an flock on DIR/chapard.lock, held until the
 * process exits): the fd, or -1 with errno EWOULDBLOCK when another
 * process holds it, another errno when the file cannot be opened. */
int chp_home_lock(const char *home);

/* "512", "64K", "256M", "4G", "1T" (binary units) -> bytes; -1 if invalid. */
int chp_parse_size(const char *s, uint64_t *out);

#endif
