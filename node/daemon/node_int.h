/* node_int.h - the daemon's state, shared by node.c (lifecycle, the loop)
 * and control.c (the control API); visible to node/daemon only. */
#ifndef CHP_NODE_INT_H
#define CHP_NODE_INT_H

#include "node/daemon/node.h"
#include "node/mesh/mesh.h"
#include "node/msg/msg.h"
#include "node/store/store.h"

#include <stdint.h>

struct chp_node {
    char home[4096];
    int relay;
    chp_store *store;
    chp_mesh *mesh;
    chp_msg *msg; /* the messaging layer; NULL on a relay */
    void *zctx, *control, *events;
    uint64_t started_ms, next_sweep, msg_tick_ms;
    int wiped;                  /* the user pressed the panic button: exit */
    int stop_asked;             /* `chapar stop`: leave the loop as on SIGTERM */
    volatile sig_atomic_t *hup; /* chp_node_on_hup: reload when set */
    void (*on_hup)(void *ctx);
    void *hup_ctx;
};

/* control.c: answers every request waiting on the control socket. */
void chp_control_handle(chp_node *n);

#endif
