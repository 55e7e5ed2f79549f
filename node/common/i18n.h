/* i18n.h - translations of what people read (issue 21).
 *
 * Every user-facing string of chapar, chapar-tui and chapard's messages to
 * people is written _("...") (or N_("...") where it sits in a static table
 * and is translated where it is printed: _(table[i].help)). Log keys, the
 * `status` contract keys and TSV are never translated.
 *
 * chp_i18n_init() is called first thing in main(): it takes the locale from
 * the environment (LANG, LC_ALL, LC_MESSAGES) for messages and character
 * type only, so numbers in `status`, TSV and logs keep their C form under
 * any locale, and binds the "chapar" catalogue (CHAPAR_LOCALEDIR overrides
 * the installed place, for tests run from the build tree). */
#ifndef CHP_I18N_H
#define CHP_I18N_H

#include <libintl.h>

#define CHP_TEXTDOMAIN "chapar"

#define _(s)  gettext(s)
#define N_(s) (s)

void chp_i18n_init(void);

#endif
