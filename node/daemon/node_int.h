/* node_int.h - the daemon's state, shared by node.c (lifecycle, the loop)
 * and control.c (the control API); visible to node/daemon only. */
#ifndef CHP_NODE_INT_H
#define CHP_NODE_INT_H

#include "node/daemon/node.h"
#include "node/mesh/mesh.h"
#include "node/msg/msg.h"
#include "node/store/store.h"
#include "proto/buf.h"

#include <zmq.h>

#include <stdint.h>

struct chp_node {
    char home[4096];
    char save_dir[4096]; /* files from contacts (chp_node_opts.save_dir) */
    uint64_t max_file;
    int relay;
    chp_store *store;
    chp_mesh *mesh;
    chp_msg *msg;                /* the messaging layer; NULL on a relay */
    struct chp_bundles *bundles; /* bundle.c: the bundle import */
    struct chp_spool *spool;     /* spool.c: spool directories, NULL without */
    void *zctx, *control, *events;
    uint64_t started_ms, next_sweep, msg_tick_ms;
    int wiped;                  /* the user pressed the panic button: exit */
    int stop_asked;             /* `chapar stop`: leave the loop as on SIGTERM */
    volatile sig_atomic_t *hup; /* chp_node_on_hup: reload when set */
    void (*on_hup)(void *ctx);
    void *hup_ctx;
    /* metrics.c: /metrics (NULL when off), the text of the last scrape,
     * the relay's summary line: period, when next, accepted at the last */
    struct chp_httpd *metrics;
    chp_buf metrics_text;
    uint64_t summary_ms, next_summary, summary_accepted;
    struct chp_pts *pts; /* pt.c: the pluggable transports it runs */
};

/* control.c: answers every request waiting on the control socket. */
void chp_control_handle(chp_node *n);
/* control.c: the `status` lines (CONTROL.md) into b (cap bytes, NUL-
 * terminated); returns their length. */
size_t chp_node_status_text(chp_node *n, char *b, size_t cap);

/* metrics.c: starts /metrics when o->metrics is set (CHP_OK, or an error
 * after a log line), and the summary timer; stop frees both. The loop
 * polls one more item (chp_metrics_poll_item: 0 or 1 items, lowers
 * *timeout to what the server needs), then calls poll_done and tick. */
CHP_WUR int chp_metrics_start(chp_node *n, const chp_node_opts *o);
void chp_metrics_stop(chp_node *n);
size_t chp_metrics_poll_item(chp_node *n, zmq_pollitem_t *it, long *timeout);
void chp_metrics_poll_done(chp_node *n);
void chp_metrics_tick(chp_node *n, uint64_t t);
/* SIGHUP (reload.c): a new summary-every applies at once; a new metrics
 * address at the next start (next keeps the running one, so the line
 * comes once). Returns the settings that changed. */
struct chp_config;
int chp_metrics_reload(chp_node *n, const struct chp_config *cur, struct chp_config *next);
/* pt.c: pluggable transports (obfs4) as child processes. start runs the
 * server when o->listen_obfs4 is set (the client starts once the mesh
 * has an obfs4 address to dial); CHP_OK or CHP_E_NOMEM: a PT that fails
 * is logged and tried again, it never stops the node. The loop polls up
 * to CHP_PT_POLL_MAX items, then calls poll_done; tick runs the timers
 * (start timeout, restarts). addresses writes the obfs4 address others
 * dial (0 bytes while the server is not up); status its `status` lines. */
#define CHP_PT_POLL_MAX 2
CHP_WUR int chp_pt_start(chp_node *n, const chp_node_opts *o);
void chp_pt_stop(chp_node *n);
size_t chp_pt_poll_items(chp_node *n, zmq_pollitem_t *it);
void chp_pt_poll_done(chp_node *n, const zmq_pollitem_t *it, size_t k);
void chp_pt_tick(chp_node *n, uint64_t t);
size_t chp_pt_addresses(chp_node *n, char *out, size_t cap);
size_t chp_pt_status(chp_node *n, char *b, size_t cap);
/* control_reply.c: a reply to the client of routing id rid. */
void chp_control_reply(chp_node *n, const void *rid, size_t ridlen, const char *status,
                       const char *body, size_t len);
/* control_reply.c: an event (CONTROL.md "Events"). */
void chp_control_event(chp_node *n, const char *topic, const char *body);

#endif
