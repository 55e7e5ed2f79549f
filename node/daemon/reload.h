/* reload.h - chapard reads its flags and DIR/chapard.conf again on SIGHUP
 * and applies what changed to the running node: peers, the allow-list,
 * the quota, the log level and LAN discovery, without dropping a link
 * (but those of nodes taken off the allow-list).
 * Visible to node/daemon only. */
#ifndef CHP_RELOAD_H
#define CHP_RELOAD_H

#include "node/daemon/config.h"
#include "node/daemon/node.h"

/* What a reload needs: the node, the settings it runs with (replaced by
 * the new ones after a reload that parsed), and the command line, which
 * is parsed again so its flags still win over the file. */
typedef struct chp_reload_ctx {
    chp_node *node;
    chp_config *cur; /* owned by the caller; its strings must outlive the node */
    int argc;
    char **argv;
    int (*ipv6)(void); /* whether [::] binds: the default listen address */
} chp_reload_ctx;

/* The SIGHUP handler the node's loop calls (chp_node_on_hup; ctx is a
 * chp_reload_ctx). Logs one line per change; listen and relay only take
 * effect at the next start, and say so. A config that does not parse is
 * one error line and changes nothing. */
void chp_reload(void *ctx);

/* The part of chp_reload after parsing: applies to node n what differs
 * between the settings it runs with (cur) and next, one log line per
 * change, and copies into next what cannot change while it runs (listen,
 * relay). Returns the number of changes. */
int chp_reload_apply(chp_node *n, const chp_config *cur, chp_config *next);

#endif
