/* config_pt.c - the settings of pt.c (issue 17): where the obfs4 server
 * listens (--listen-obfs4 / listen-obfs4 =) and which PT binary runs
 * (transport obfs4 = PATH in chapard.conf). */
#include "node/common/i18n.h"
#include "node/daemon/config.h"
#include "node/mesh/mesh.h"

#include <stdio.h>
#include <string.h>

int chp_config_set_listen_obfs4(chp_config *c, const char *v)
{
    const char *bad = chp_mesh_listen_problem(v);
    if (bad || strlen(v) >= sizeof c->listen_obfs4) {
        snprintf(c->err, sizeof c->err, "--listen-obfs4 %.200s: %s", v, bad ? bad : "too long");
        return CHP_E_ARG;
    }
    snprintf(c->listen_obfs4, sizeof c->listen_obfs4, "%s", v);
    return CHP_OK;
}

int chp_config_set_obfs4_bin(chp_config *c, const char *v)
{
    if (!v[0] || strlen(v) >= sizeof c->obfs4_bin) {
        snprintf(c->err, sizeof c->err,
                 "transport obfs4 = %.200s: expected the path of obfs4proxy (or another "
                 "pluggable transport), e.g. /usr/bin/obfs4proxy",
                 v);
        return CHP_E_ARG;
    }
    snprintf(c->obfs4_bin, sizeof c->obfs4_bin, "%s", v);
    return CHP_OK;
}
