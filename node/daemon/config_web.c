/* config_web.c - the settings of metrics.c: where /metrics listens and how
 * often a relay logs its summary line (flags and chapard.conf keys share
 * these checks). */
#include "node/daemon/config.h"
#include "node/web/httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int chp_config_set_metrics(chp_config *c, const char *v)
{
    char host[64];
    uint16_t port;
    if (strlen(v) >= sizeof c->metrics || chp_httpd_parse_addr(v, host, sizeof host, &port))
        return CHP_E_ARG;
    snprintf(c->metrics, sizeof c->metrics, "%s", v);
    return CHP_OK;
}

int chp_config_set_summary(chp_config *c, const char *v)
{
    size_t digits = strspn(v, "0123456789");
    if (!digits || digits > 6 || (v[digits] && v[digits + 1]))
        return CHP_E_ARG;
    uint64_t n = strtoull(v, NULL, 10), unit;
    switch (v[digits]) {
    case 's':
        unit = 1000;
        break;
    case '\0':
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    default:
        return CHP_E_ARG;
    }
    c->summary_ms = n * unit;
    return CHP_OK;
}
