/* node.c - chapard's core: opens the store, the messaging layer and the
 * mesh, wires them together with hooks (the mesh never calls the messaging
 * layer, nor it the mesh), binds the control and event sockets, and runs
 * the zmq_poll loop. */
#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/daemon/bundles.h"
#include "node/daemon/node_int.h"
#include "proto/crypto.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define SWEEP_MS        60000     /* expiry sweep period */
#define MSG_TICK_MS     1000      /* the messaging layer's timers */
#define CONTROL_MSG_MAX (1 << 20) /* bytes of one control request frame */

/* ---- the hooks: the mesh and the messaging layer meet here ---- */

/* Both layers' events go out on the event socket (CONTROL.md "Events"). */
static void on_event(void *ctx, const char *topic, const char *body, size_t len)
{
    chp_node *n = ctx;
    zmq_send(n->events, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->events, body, len, ZMQ_DONTWAIT);
}

static void on_committed(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32],
                         uint64_t seq)
{
    chp_node *n = ctx;
    chp_msg_on_envelope(n->msg, env, len, id, seq);
}

static int on_refuse(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32],
                     const uint8_t *src)
{
    chp_node *n = ctx;
    return chp_msg_refuse(n->msg, env, len, id, src);
}

static int on_tag_mine(void *ctx, const uint8_t *tag)
{
    chp_node *n = ctx;
    return chp_msg_tag_mine(n->msg, tag);
}

static size_t on_unconfirmed(void *ctx, uint8_t (*ids)[32], size_t cap)
{
    chp_node *n = ctx;
    return chp_msg_unconfirmed(n->msg, ids, cap);
}

static void on_held(void *ctx, const uint8_t id[32])
{
    chp_node *n = ctx;
    chp_msg_on_held(n->msg, id);
}

/* Publishes what the messaging layer sealed: stored as the user's own
 * (never evicted), then pushed like any envelope. */
static void msg_pump(chp_node *n)
{
    uint8_t *e = NULL;
    size_t len = 0;
    int k = 0;
    for (; n->msg && k < 64 && chp_msg_take(n->msg, &e, &len); k++) {
        int rc = chp_mesh_publish_later(n->mesh, e, len);
        if (rc != CHP_OK && rc != CHP_E_DUP)
            chp_err_log("cannot publish an own envelope: %s", chp_strerror(rc));
        free(e);
    }
    if (k) /* the user's own go out at once, not after the next round */
        (void)chp_mesh_flush(n->mesh);
}

/* Takes ownership of *id (sets it NULL once consumed). */
static int open_msg(chp_node *n, chp_identity **id)
{
    chp_msg_host host = {
        .ctx = n, .event = on_event, .max_file = n->max_file, .save_dir = n->save_dir};
    int rc = chp_msg_new(n->store, n->home, &host, &n->msg);
    if (rc != CHP_OK)
        return rc;
    if (*id) {
        rc = chp_msg_unlock(n->msg, *id);
        *id = NULL;
        if (rc == CHP_E_PASSPHRASE)
            chp_err_log("the identity in %s does not match this store", n->home);
    }
    return rc;
}

/* ---- sockets ---- */

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v);
}

static int bind_control(chp_node *n)
{
    char ep[4200];
    snprintf(ep, sizeof ep, "ipc://%s/control", n->home);
    /* A request frame over CONTROL_MSG_MAX closes that client's
     * connection (the longest real one, a 64 KiB text, fits many times). */
    int64_t maxmsg = CONTROL_MSG_MAX;
    n->control = zmq_socket(n->zctx, ZMQ_ROUTER);
    if (!n->control || set_int(n->control, ZMQ_LINGER, 0) ||
        zmq_setsockopt(n->control, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        set_int(n->control, ZMQ_RCVHWM, 64) || zmq_bind(n->control, ep) != 0) {
        chp_err_log("cannot bind control socket %s: %s", ep, zmq_strerror(errno));
        return CHP_E_IO;
    }
    snprintf(ep, sizeof ep, "ipc://%s/events", n->home);
    n->events = zmq_socket(n->zctx, ZMQ_PUB);
    if (!n->events || set_int(n->events, ZMQ_LINGER, 0) || zmq_bind(n->events, ep) != 0) {
        chp_err_log("cannot bind event socket %s: %s", ep, zmq_strerror(errno));
        return CHP_E_IO;
    }
    return CHP_OK;
}

/* ---- lifecycle ---- */

static int open_store(chp_node *n, const chp_node_opts *o)
{
    if (mkdir(o->home, 0700) != 0 && errno != EEXIST) {
        chp_err_log("cannot create %s: %s", o->home, strerror(errno));
        return CHP_E_IO;
    }
    chmod(o->home, 0700); /* only the owner may reach the control socket */
    uint32_t found = 0;
    chp_store_opts so = {.quota = o->quota};
    int rc = chp_store_open(o->home, &so, &n->store, &found);
    if (rc == CHP_E_STORE_SCHEMA)
        chp_err_log("store in %s has schema %u; this chapard understands %u", o->home, found,
                    CHP_STORE_SCHEMA);
    else if (rc != CHP_OK)
        chp_err_log("cannot open the store in %s: %s", o->home, chp_strerror(rc));
    return rc;
}

static int open_mesh(chp_node *n, const chp_node_opts *o)
{
    chp_mesh_opts mo = {.listen = o->listen,
                        .npeers = o->npeers,
                        .discovery = o->discovery,
                        .discovery_port = o->discovery_port,
                        .relay = o->relay,
                        .nallow = o->nallow,
                        .zctx = n->zctx,
                        .store = n->store};
    memcpy(mo.peers, o->peers, sizeof mo.peers);
    memcpy(mo.allow, o->allow, sizeof mo.allow);
    if (n->msg)
        mo.hooks = (chp_mesh_hooks){.ctx = n,
                                    .committed = on_committed,
                                    .refuse = on_refuse,
                                    .tag_mine = on_tag_mine,
                                    .unconfirmed = on_unconfirmed,
                                    .held = on_held,
                                    .event = on_event};
    else
        mo.hooks = (chp_mesh_hooks){.ctx = n, .event = on_event};
    return chp_mesh_new(&mo, &n->mesh);
}

int chp_node_new(const chp_node_opts *o, chp_node **out)
{
    assert(o && o->home && out);
    *out = NULL;
    chp_identity *id = o->identity;
    int rc = CHP_E_NOMEM;
    chp_node *n = calloc(1, sizeof *n);
    if (!n)
        goto out;
    n->relay = o->relay;
    n->started_ms = chp_mono_ms();
    snprintf(n->home, sizeof n->home, "%s", o->home);
    snprintf(n->save_dir, sizeof n->save_dir, "%s", o->save_dir ? o->save_dir : "");
    n->max_file = o->max_file;
    rc = CHP_E_CRYPTO_INIT;
    if (!zmq_has("curve")) {
        /* Never fall back to plaintext links. */
        chp_err_log("this libzmq has no CURVE support; install Debian's libzmq5 (with libsodium)");
        goto out;
    }
    if ((rc = open_store(n, o)) != CHP_OK)
        goto out;
    if (!o->relay && (rc = open_msg(n, &id)) != CHP_OK)
        goto out;
    rc = CHP_E_IO;
    if (!(n->zctx = zmq_ctx_new()))
        goto out;
    if ((rc = open_mesh(n, o)) != CHP_OK || (rc = bind_control(n)) != CHP_OK ||
        (rc = chp_metrics_start(n, o)) != CHP_OK ||
        (rc = chp_bundles_new(n, &n->bundles)) != CHP_OK || (rc = chp_pt_start(n, o)) != CHP_OK ||
        (o->nspools &&
         (rc = chp_spool_new(n, n->bundles, o->spools, o->nspools, &n->spool)) != CHP_OK))
        goto out;
    n->next_sweep = chp_mono_ms() + SWEEP_MS;
    *out = n;
    n = NULL;
out:
    chp_identity_destroy(&id); /* a relay keeps no user identity */
    chp_node_destroy(&n);
    return rc;
}

void chp_node_destroy(chp_node **np)
{
    if (!np || !*np)
        return;
    chp_node *n = *np;
    chp_spool_destroy(&n->spool);
    chp_pt_stop(n);
    chp_bundles_destroy(&n->bundles);
    chp_metrics_stop(n);
    chp_mesh_destroy(&n->mesh); /* commits what is pending first */
    chp_msg_free(&n->msg);
    if (n->control)
        zmq_close(n->control);
    if (n->events)
        zmq_close(n->events);
    if (n->zctx)
        zmq_ctx_term(n->zctx);
    chp_store_close(&n->store);
    free(n);
    *np = NULL;
}

int chp_node_wiped(const chp_node *n)
{
    return n->wiped;
}

/* ---- the loop ---- */

static void periodic(chp_node *n, uint64_t t)
{
    if (t >= n->next_sweep) {
        uint64_t removed = 0;
        if (chp_store_sweep(n->store, chp_unix_s(), &removed) == CHP_OK && removed)
            chp_info("expired %llu envelopes", (unsigned long long)removed);
        n->next_sweep = t + SWEEP_MS;
    }
    chp_mesh_periodic(n->mesh, t);
    chp_metrics_tick(n, t);
    chp_pt_tick(n, t);
    if (n->msg && t >= n->msg_tick_ms) {
        chp_msg_tick(n->msg);
        n->msg_tick_ms = t + MSG_TICK_MS;
    }
}

/* One round: poll the control socket, the sealer's descriptor and the
 * mesh, then handle what came. CHP_OK, or CHP_E_IO when polling fails. */
static int round_once(chp_node *n)
{
    zmq_pollitem_t items[3 + CHP_PT_POLL_MAX + CHP_MESH_POLL_MAX];
    uint64_t t = chp_mono_ms();
    uint64_t due = n->next_sweep;
    if (n->msg && n->msg_tick_ms < due)
        due = n->msg_tick_ms;
    items[0] = (zmq_pollitem_t){n->control, 0, ZMQ_POLLIN, 0};
    /* The sealing worker says when an envelope's proof of work is done. */
    int sfd = n->msg ? chp_msg_fd(n->msg) : -1;
    items[1] = (zmq_pollitem_t){NULL, sfd, sfd >= 0 ? ZMQ_POLLIN : 0, 0};
    size_t nm = chp_mesh_poll_items(n->mesh, items + 2, t, &due), ni = 2 + nm;
    long timeout = due <= t ? 0 : due - t > 1000 ? 1000 : (long)(due - t);
    if ((n->msg && chp_msg_has_outgoing(n->msg)) || chp_bundles_busy(n->bundles))
        timeout = 0;
    ni += chp_metrics_poll_item(n, items + ni, &timeout);
    size_t np = chp_pt_poll_items(n, items + ni), pi = ni;
    ni += np;
    if (zmq_poll(items, (int)ni, timeout) < 0) {
        if (errno == EINTR)
            return CHP_OK;
        chp_err_log("zmq_poll: %s", zmq_strerror(errno));
        return CHP_E_IO;
    }
    chp_mesh_poll_done(n->mesh, items + 2, nm);
    chp_metrics_poll_done(n);
    chp_pt_poll_done(n, items + pi, np);
    if (items[0].revents & ZMQ_POLLIN)
        chp_control_handle(n);
    periodic(n, chp_mono_ms());
    msg_pump(n);
    chp_bundles_step(n->bundles);
    if (n->spool)
        chp_spool_step(n->spool, chp_mono_ms());
    return CHP_OK;
}

void chp_node_on_hup(chp_node *n, volatile sig_atomic_t *flag, void (*fn)(void *ctx), void *ctx)
{
    assert(n && flag && fn);
    n->hup = flag;
    n->on_hup = fn;
    n->hup_ctx = ctx;
}

int chp_node_run(chp_node *n, volatile sig_atomic_t *stop)
{
    assert(n && stop);
    int rc = CHP_OK;
    while (rc == CHP_OK && !*stop && !n->wiped && !n->stop_asked) {
        if (n->hup && *n->hup) {
            *n->hup = 0;
            n->on_hup(n->hup_ctx);
        }
        rc = round_once(n);
    }
    chp_info("shutting down");
    int frc = chp_mesh_flush(n->mesh);
    return rc != CHP_OK ? rc : frc;
}
