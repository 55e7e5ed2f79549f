/* node.h - chapard's core: the store, the mesh (node/mesh), the messaging
 * layer (node/msg) and the control API, wired together in one zmq_poll
 * loop. The loop is single-threaded; two worker threads sit behind it:
 * the store's commit writer (fdatasync off the loop) and the messaging
 * layer's sealer (proof of work off the loop). Each hands its results back
 * through a descriptor the loop polls. */
#ifndef CHP_NODE_H
#define CHP_NODE_H

#include "node/mesh/mesh.h"
#include "proto/err.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define CHP_NODE_PORT_DEFAULT CHP_MESH_PORT_DEFAULT
#define CHP_NODE_QUOTA_USER   (256ull << 20)
#define CHP_NODE_QUOTA_RELAY  (4ull << 30)
#define CHP_NODE_MAX_PEERS    CHP_MESH_PEERS_MAX
#define CHP_NODE_SPOOLS_MAX   16

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
    uint8_t allow[CHP_NODE_MAX_PEERS][32];   /* transport keys allowed in; */
    size_t nallow;                           /* 0 = anyone (not banned) */
    const char *metrics;                     /* --metrics HOST:PORT, NULL or "" = off */
    uint64_t summary_ms;                     /* relay summary line period, 0 = off */
    const char *spools[CHP_NODE_SPOOLS_MAX]; /* spool directories (bundles.h) */
    const char *listen_obfs4;                /* obfs4 server HOST:PORT (pt.c), NULL or "" = none */
    const char *obfs4_bin;                   /* the PT binary, NULL or "" = obfs4proxy on PATH */
    size_t nspools;
    uint64_t max_file;    /* largest file sent or accepted, 0 = 16 MiB (PROTOCOL.md §18.8) */
    const char *save_dir; /* where files from contacts go, NULL or "" = HOME/files */
    struct chp_identity *identity; /* unlocked user identity, owned by the node
                                      from chp_node_new on; NULL = none/locked */
} chp_node_opts;

/* Opens the store, loads or creates the node's transport key, binds the
 * listen and control sockets. Errors are logged with the reason. */
CHP_WUR int chp_node_new(const chp_node_opts *o, chp_node **out);

/* Runs until *stop becomes non-zero (set from a signal handler), then
 * commits what is pending and returns CHP_OK. */
CHP_WUR int chp_node_run(chp_node *n, volatile sig_atomic_t *stop);

/* While the node runs, each time *flag is found non-zero (set by a
 * SIGHUP handler) the loop clears it and calls fn(ctx) between two
 * rounds. flag and ctx are borrowed for the node's life. */
void chp_node_on_hup(chp_node *n, volatile sig_atomic_t *flag, void (*fn)(void *ctx), void *ctx);

void chp_node_destroy(chp_node **np);
/* Whether the run ended because the user wiped the identity (the caller
 * then deletes the data dir once the node is destroyed). */
int chp_node_wiped(const chp_node *n);

#endif
