/* i18n.c - see i18n.h. */
#include "node/common/i18n.h"

#include <locale.h>
#include <stdlib.h>

#ifndef CHP_LOCALEDIR
#define CHP_LOCALEDIR "/usr/local/share/locale"
#endif

void chp_i18n_init(void)
{
    setlocale(LC_CTYPE, "");
    setlocale(LC_MESSAGES, "");
    const char *dir = getenv("CHAPAR_LOCALEDIR");
    bindtextdomain(CHP_TEXTDOMAIN, dir && *dir ? dir : CHP_LOCALEDIR);
    bind_textdomain_codeset(CHP_TEXTDOMAIN, "UTF-8");
    textdomain(CHP_TEXTDOMAIN);
}
