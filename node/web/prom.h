/* prom.h - the node's `status` lines (docs/CONTROL.md) as Prometheus text
 * exposition (format 0.0.4): one function, used by `chapar status
 * --prometheus` and by chapard's /metrics, so both print the same. */
#ifndef CHP_PROM_H
#define CHP_PROM_H

#include "proto/buf.h"
#include "proto/err.h"

#include <stddef.h>

/* The content type of what chp_prom_render writes. */
#define CHP_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends to out the exposition of status (len bytes of "key: value\n"
 * lines, as the `status` command answers): every numeric key as a metric
 * chapar_<key> with its # HELP and # TYPE (counters end in _total, sizes
 * in _bytes); "yes"/"no" keys as 1/0; the text keys mode, identity and
 * version as labels of the gauge chapar_info (always 1); address and nick
 * are left out (a nick is personal; the address is in `chapar address`).
 * A key this table does not know yet becomes a gauge chapar_<key>; lines
 * that are not "key: value" are skipped. CHP_OK or CHP_E_NOMEM. */
CHP_WUR int chp_prom_render(const char *status, size_t len, chp_buf *out);

#endif
