/* account.h - the user's identity in a data dir: the sealed identity file
 * (DIR/identity) and, only in the explicit no-passphrase mode, the random
 * key that seals it (DIR/identity.key, 0600). Used by chapard, by
 * `chapar init` / `wipe` when no daemon runs, and by the TUI. */
#ifndef CHP_ACCOUNT_H
#define CHP_ACCOUNT_H

#include "proto/err.h"
#include "proto/identity.h"
#include "node/store/store.h"

#include <stddef.h>

#define CHP_ACCOUNT_FILE    "identity"
#define CHP_ACCOUNT_KEYFILE "identity.key"
#define CHP_NICK_MAX        32 /* bytes of UTF-8 */
#define CHP_PASS_MAX        1024

/* 1 if DIR holds an identity file, else 0. */
int chp_account_exists(const char *home);
/* 1 if the identity file is passphrase-sealed, 0 if key-file sealed,
 * negative (CHP_E_NOT_FOUND, CHP_E_KEYFILE, CHP_E_IO) otherwise. */
int chp_account_needs_passphrase(const char *home);
/* Whether nick is acceptable: 1..CHP_NICK_MAX bytes of valid UTF-8 that
 * chp_text_name_ok accepts (no control, invisible or bidi look-alikes),
 * not starting with '~' or '*' (the stranger and notice marks).
 * CHP_OK, CHP_E_UTF8 or CHP_E_ARG. */
CHP_WUR int chp_nick_check(const char *nick, size_t len);
/* Creates a new identity in home (which must exist): pass NULL means the
 * explicit no-passphrase mode. Refuses (CHP_E_ARG) if one exists. *out
 * gets the unlocked identity (may be NULL). Writes are atomic (temp file,
 * fsync, rename). */
CHP_WUR int chp_account_create(const char *home, const char *pass, size_t passlen,
                               chp_identity **out);
/* Opens the identity: pass is ignored in key-file mode. CHP_E_NOT_FOUND
 * (no identity), CHP_E_LOCKED (passphrase needed, pass NULL),
 * CHP_E_PASSPHRASE (wrong), CHP_E_KEYFILE (damaged). */
CHP_WUR int chp_account_load(const char *home, const char *pass, size_t passlen,
                             chp_identity **out);
/* The user's nick, kept in the store's encrypted config table (the store
 * must be unlocked). get: CHP_E_NOT_FOUND if none was set. */
CHP_WUR int chp_account_set_nick(chp_store *s, const char *nick, size_t len);
CHP_WUR int chp_account_get_nick(chp_store *s, char out[CHP_NICK_MAX + 1]);
/* Panic: overwrites and deletes the identity files, then deletes the other
 * files chapar keeps in home (store, config, log, lock, sockets) and home
 * itself if it is then empty; files that are not chapar's stay.
 * CHP_E_NOT_FOUND (nothing touched) if home is not a Chapar data dir;
 * CHP_OK if it does not exist. The store must not be open in this process. */
CHP_WUR int chp_account_wipe(const char *home);

/* Reads a passphrase: from the first line of file (without the line end),
 * or, file NULL, from the terminal without echo (prompt on /dev/tty; twice
 * when confirm, which must match). CHP_E_IO: no terminal or unreadable
 * file, or (errno ECANCELED) the user pressed Ctrl-C, Ctrl-\ or Ctrl-D at
 * the prompt, or a signal interrupted it; CHP_E_ARG: empty or the two
 * entries differ. The terminal's settings are restored in every case. */
CHP_WUR int chp_passphrase_read(const char *file, const char *prompt, int confirm, char *buf,
                                size_t cap, size_t *len);

#endif
