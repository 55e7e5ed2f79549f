/* node.h - chapard's core: one single-threaded zmq_poll loop owning the
 * store, the CURVE links to neighbours, sync, and the control API. */
#ifndef CHP_NODE_H
#define CHP_NODE_H

#include "proto/err.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define CHP_NODE_PORT_DEFAULT 7667
#define CHP_NODE_QUOTA_USER   (256ull << 20)
#define CHP_NODE_QUOTA_RELAY  (4ull << 30)
#define CHP_NODE_MAX_PEERS    64

typedef struct chp_node chp_node;

typedef struct chp_node_opts {
    const char *home;   /* data dir (created 0700) */
    const char *listen; /* "HOST:PORT"; port 0 = any free port */
    const char *peers[CHP_NODE_MAX_PEERS];
    size_t npeers;           /* addresses to connect to at start */
    int discovery;           /* LAN beacons on/off */
    uint16_t discovery_port; /* UDP port of beacons, 0 = 7668 */
    int relay;               /* headless relay mode */
    uint64_t quota;
    uint8_t allow[CHP_NODE_MAX_PEERS][32]; /* transport keys allowed in; */
    size_t nallow;                         /* 0 = anyone (not banned) */
    struct chp_identity *identity;         /* unlocked user identity, owned by the node
                                              from chp_node_new on; NULL = none/locked */
} chp_node_opts;

/* Opens the store, loads or creates the node's transport key, binds the
 * listen and control sockets. Errors are logged with the reason. */
CHP_WUR int chp_node_new(const chp_node_opts *o, chp_node **out);
/* What is wrong with a --listen HOST:PORT, in words, or NULL if nothing. */
const char *chp_node_listen_problem(const char *spec);

/* Runs until *stop becomes non-zero (set from a signal handler), then
 * commits what is pending and returns CHP_OK. */
CHP_WUR int chp_node_run(chp_node *n, volatile sig_atomic_t *stop);

void chp_node_destroy(chp_node **np);
/* Whether the run ended because the user wiped the identity (the caller
 * then deletes the data dir once the node is destroyed). */
int chp_node_wiped(const chp_node *n);

#endif
