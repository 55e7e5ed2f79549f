/* ctl.h - the TUI's client of chapard's control API (docs/CONTROL.md):
 * requests on a DEALER socket answered asynchronously in order, events
 * from a SUB socket, and starting a daemon for the data dir when none
 * answers. Nothing here blocks: the front end polls the two sockets. */
#ifndef CHP_CTL_H
#define CHP_CTL_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct chp_ctl chp_ctl;

/* What a reply is for: the caller's kind and a short context string (a
 * conversation name), handed back with the reply. */
typedef struct chp_ctl_tag {
    int kind;
    char ctx[256];
} chp_ctl_tag;

/* Connects to ipc://home/control and ipc://home/events (ZeroMQ connects
 * lazily, so the daemon may come up later; queued requests go out then)
 * and subscribes to the messaging and peer events. */
CHP_WUR int chp_ctl_new(const char *home, chp_ctl **out);
/* Accepts NULL; sets *cp NULL. */
void chp_ctl_destroy(chp_ctl **cp);

/* The two sockets, for zmq_poll (borrowed, valid until destroy). */
void *chp_ctl_req_socket(chp_ctl *c);
void *chp_ctl_evt_socket(chp_ctl *c);

/* Sends cmd with nargs arguments (args[i], lens[i] bytes). When
 * secret_last, the last argument is a passphrase: the message buffer that
 * holds it is wiped when ZeroMQ lets go of it. now_ms stamps the request
 * for chp_ctl_overdue. CHP_E_IO when the socket refuses. */
CHP_WUR int chp_ctl_send(chp_ctl *c, const chp_ctl_tag *tag, uint64_t now_ms, const char *cmd,
                         int nargs, const char *const *args, const size_t *lens, int secret_last);
/* A reply, if one is waiting: returns 1 and fills *tag, *ok (1 for "ok"),
 * *payload (a new NUL-terminated string the caller frees) and *len;
 * 0 when none; CHP_E_MALFORMED when a reply does not parse (dropped). */
int chp_ctl_reply(chp_ctl *c, chp_ctl_tag *tag, int *ok, char **payload, size_t *len);
/* An event, if one is waiting: 1 with a new topic and body (NUL-
 * terminated, the caller frees both); 0 when none. */
int chp_ctl_event(chp_ctl *c, char **topic, char **body, size_t *len);

/* Requests sent and not answered yet. */
size_t chp_ctl_pending(const chp_ctl *c);
/* 1 when the oldest pending request is older than timeout_ms. */
int chp_ctl_overdue(const chp_ctl *c, uint64_t now_ms, uint64_t timeout_ms);
/* Forgets the pending requests and reconnects the request socket, so a
 * late answer to one of them cannot be taken for the answer to a new one. */
CHP_WUR int chp_ctl_reset(chp_ctl *c);

/* 1 when something accepts connections on home/control. A socket file
 * left behind by a killed daemon refuses at once, so this does not wait. */
int chp_ctl_daemon_running(const char *home);
/* Starts `chapard --home home` plus the words of $CHAPARD_ARGS as a child
 * of this process in a session of its own (stdin and stdout /dev/null,
 * stderr appended to home/chapard.log), so the caller can wait for it and
 * signal it; it outlives the caller. The binary is looked for next to this
 * program (/proc/self/exe), then in ../node/ (the build tree), then on
 * PATH. Creates home (0700) first. *path gets what was started, *child its
 * pid (the caller reaps it). */
CHP_WUR int chp_ctl_spawn_daemon(const char *home, char *path, size_t cap, pid_t *child);

/* Milliseconds on a monotonic clock. */
uint64_t chp_ctl_now_ms(void);

#endif
