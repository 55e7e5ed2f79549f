/* dtest.h - fast tests of node/daemon: a whole chp_node running in a
 * thread of the test process, on loopback, driven over its real control
 * socket with the one control-API client (node/client, docs/CONTROL.md)
 * and watched on its event socket.
 * Temp dirs, files and clocks come from the integration harness
 * (tests/integration/harness.h: h_setup, h_path...).
 *
 * Every function that can fail fails the running cmocka test itself. */
#ifndef CHP_DTEST_H
#define CHP_DTEST_H

#include "node/daemon/node.h"
#include "proto/identity.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define DT_END        ((const char *)NULL) /* ends a string argument list */
#define DT_REPLY_MS   5000                 /* a control reply takes far less */
#define DT_WAIT_MS    10000                /* links, events, the sealer */
#define DT_LOOPBACK   "127.0.0.1:0"
#define DT_SENTINEL   __attribute__((sentinel))
#define DT_MAX_EVENTS 64

/* One node in this process, and the test's two sockets to it. */
typedef struct dt_node {
    char home[512];
    chp_node *node;
    pthread_t thread;
    volatile sig_atomic_t stop; /* the flag chp_node_run watches */
    atomic_int done;            /* chp_node_run returned */
    int run_rc;                 /* what it returned */
    int wiped;                  /* chp_node_wiped after the run */
    struct chp_ctl *ctl;        /* the test's side (node/client), every event topic */
} dt_node;

/* Options for a node at home listening on 127.0.0.1:0 with discovery off
 * (beacons never leave this machine): relay or user mode, the mode's
 * default quota, no peers, no identity. */
void dt_opts(chp_node_opts *o, const char *home, int relay);

/* chp_node_new(o) and, when it succeeds, chp_node_run in a new thread and
 * the control and event sockets connected. Returns chp_node_new's code
 * (the test goes on either way: a failure to start is what some test). */
int dt_open(dt_node *t, const chp_node_opts *o);
/* dt_open that asserts CHP_OK; identity (may be NULL) goes to the node. */
void dt_start(dt_node *t, const char *home, int relay, chp_identity *id);
/* Sets the stop flag (unless the run ended already), joins the thread,
 * destroys the node and closes the sockets; returns chp_node_run's code. */
int dt_stop(dt_node *t);
/* 1 when chp_node_run has returned by itself (stop, wipe) within ms. */
int dt_ended(dt_node *t, int ms);

/* One request: cmd and nargs binary arguments. Returns 1 for "ok", 0 for
 * "error"; *payload (malloc'd, NUL-terminated, may be NULL) and *len get
 * the second frame. Fails the test if no two-frame reply comes. */
int dt_call(dt_node *t, char **payload, size_t *len, const char *cmd, int nargs,
            const void *const *args, const size_t *lens);
/* String arguments, DT_END-terminated: asserts "ok" (dt_ok) or "error"
 * (dt_error) and returns the payload (the caller frees). */
char *dt_ok(dt_node *t, const char *cmd, ...) DT_SENTINEL;
char *dt_error(dt_node *t, const char *cmd, ...) DT_SENTINEL;

/* The value of key in `status` (malloc'd), NULL when absent. */
char *dt_status(dt_node *t, const char *key);
/* The value as a number, -1 when absent. */
long long dt_status_num(dt_node *t, const char *key);
/* Polls status until key >= min (DT_WAIT_MS); returns the value. */
long long dt_await_status(dt_node *t, const char *key, long long min);

/* Waits up to ms for an event with topic (exactly) whose body starts with
 * prefix (NULL: any); other events are dropped. Returns the body
 * (malloc'd) or NULL at the deadline. */
char *dt_event(dt_node *t, const char *topic, const char *prefix, int ms);

/* A valid envelope (text type, random tag and key, lifetime 1 h, proof
 * of work solved) into out (cap bytes); returns its length. */
size_t dt_envelope(uint8_t *out, size_t cap);
/* chp_envelope_id in lowercase hex (65 bytes). */
void dt_envelope_hex(const uint8_t *env, size_t len, char hex[65]);

/* A node key chpn1... of 32 random bytes (80 bytes). */
void dt_random_key(char key[80]);

/* Creates dir (mode 0700) and a key-file identity in it (no passphrase);
 * returns the unlocked identity. */
chp_identity *dt_identity(const char *dir);

#endif
