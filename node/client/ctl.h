/* ctl.h - the one client of chapard's control API (docs/CONTROL.md), for
 * chapar, chapar-tui and the benches: a DEALER on ipc://DIR/control for
 * requests ([command, args...] -> ["ok" | "error", payload]), a SUB on
 * ipc://DIR/events for the topics asked for, whether a daemon serves a
 * data dir, and starting one next to this program.
 *
 * Requests are answered in the order they were sent. Asynchronous callers
 * (the TUI) send with chp_ctl_send, poll the two sockets and take replies
 * with chp_ctl_reply, each handed back with the tag it was sent with;
 * blocking callers (the CLI, the benches) use chp_ctl_call, or
 * chp_ctl_send and then chp_ctl_recv. A chp_ctl is used by one thread. */
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

/* A reply taken with chp_ctl_recv or chp_ctl_call. */
typedef struct chp_ctl_answer {
    int ok;     /* 1 for "ok", 0 for "error" */
    char *body; /* the payload with a NUL after it (malloc'ed; chp_ctl_answer_free) */
    size_t len; /* payload bytes, the NUL not counted */
} chp_ctl_answer;

/* ---- connections ---- */

/* Connects a request socket to ipc://home/control, subscribed to nothing
 * yet. ZeroMQ connects lazily: the daemon may come up later, and requests
 * sent before wait for it. zctx is a ZeroMQ context to share (borrowed: it
 * must outlive the connection; a bench runs many connections on one), or
 * NULL for one of its own. home is copied. CHP_OK; CHP_E_ARG when the
 * endpoint does not fit; CHP_E_NOMEM; CHP_E_IO with errno set by ZeroMQ. */
CHP_WUR int chp_ctl_open(const char *home, void *zctx, chp_ctl **out);
/* chp_ctl_open with a context of its own, subscribed to the events a
 * messaging client shows: message, queued, state, request, contact, peer,
 * room, nick. */
CHP_WUR int chp_ctl_new(const char *home, chp_ctl **out);
/* Closes the sockets (unsent requests are dropped) and the context if it
 * is the connection's own. Accepts NULL; sets *cp NULL. */
void chp_ctl_destroy(chp_ctl **cp);

/* The data dir (borrowed, valid until destroy). */
const char *chp_ctl_home(const chp_ctl *c);

/* The two sockets, for zmq_poll beside other sockets (borrowed, valid
 * until destroy or chp_ctl_reset, which replaces the request socket). The
 * events socket is NULL until the first chp_ctl_subscribe. */
void *chp_ctl_req_socket(chp_ctl *c);
void *chp_ctl_evt_socket(chp_ctl *c);

/* ---- requests ---- */

/* Sends cmd with nargs arguments (args[i], lens[i] bytes), without
 * blocking. tag (may be NULL: a zeroed tag) comes back with the reply.
 * When secret_last, the last argument is a passphrase: the message buffer
 * that holds it is wiped when ZeroMQ lets go of it. now_ms stamps the
 * request for chp_ctl_overdue. CHP_E_OVERFLOW with 256 requests
 * unanswered; CHP_E_IO (errno set) when the socket refuses. */
CHP_WUR int chp_ctl_send(chp_ctl *c, const chp_ctl_tag *tag, uint64_t now_ms, const char *cmd,
                         int nargs, const char *const *args, const size_t *lens, int secret_last);
/* A reply, if one is waiting: returns 1 and fills *tag, *ok (1 for "ok"),
 * *payload (a new NUL-terminated string the caller frees) and *len;
 * 0 when none; CHP_E_MALFORMED when a reply does not parse (dropped).
 * Frames past the payload are dropped with it. */
int chp_ctl_reply(chp_ctl *c, chp_ctl_tag *tag, int *ok, char **payload, size_t *len);
/* Waits up to timeout_ms (0: only looks, negative: forever) for the reply
 * to the oldest request. 1 with *ans filled (the caller frees it with
 * chp_ctl_answer_free); 0 when none came in time; CHP_E_MALFORMED when
 * it is not exactly two frames; CHP_E_IO (errno set, EINTR when a signal
 * came) when polling fails. *ans is zeroed unless 1. */
CHP_WUR int chp_ctl_recv(chp_ctl *c, long timeout_ms, chp_ctl_answer *ans);
/* chp_ctl_send (no tag, no secret) then chp_ctl_recv: the whole request.
 * 1 with *ans filled, 0 when no reply came within timeout_ms, or an error
 * of either. */
CHP_WUR int chp_ctl_call(chp_ctl *c, long timeout_ms, const char *cmd, int nargs,
                         const char *const *args, const size_t *lens, chp_ctl_answer *ans);
/* Frees ans->body and zeroes *ans. Accepts NULL. */
void chp_ctl_answer_free(chp_ctl_answer *ans);

/* Requests sent and not answered yet. */
size_t chp_ctl_pending(const chp_ctl *c);
/* 1 when the oldest pending request is older than timeout_ms. */
int chp_ctl_overdue(const chp_ctl *c, uint64_t now_ms, uint64_t timeout_ms);
/* Forgets the pending requests and reconnects the request socket, so a
 * late answer to one of them cannot be taken for the answer to a new one. */
CHP_WUR int chp_ctl_reset(chp_ctl *c);

/* ---- events ---- */

/* Subscribes to the events whose topic starts with topic ("" for all),
 * connecting the events socket to ipc://home/events on first use. The
 * subscription reaches the daemon asynchronously: an event published right
 * after this returns may be missed. CHP_OK, or CHP_E_IO (errno set). */
CHP_WUR int chp_ctl_subscribe(chp_ctl *c, const char *topic);
/* An event, if one is waiting: 1 with a new topic and body (NUL-
 * terminated, the caller frees both); 0 when none (or a malformed one was
 * dropped). */
int chp_ctl_event(chp_ctl *c, char **topic, char **body, size_t *len);

/* What chp_ctl_poll finds readable. */
#define CHP_CTL_POLL_REPLY 1
#define CHP_CTL_POLL_EVENT 2
/* Waits up to timeout_ms (negative: forever) until a reply or an event can
 * be read: the CHP_CTL_POLL_* bits of what can, 0 after the timeout, or
 * CHP_E_IO (errno set, EINTR when a signal came). */
int chp_ctl_poll(chp_ctl *c, long timeout_ms);

/* Why the latest CHP_E_IO from this module happened, in words: errno's
 * reason, ZeroMQ's own codes included. Ask before anything else changes
 * errno; the string is static. */
const char *chp_ctl_io_reason(void);

/* ---- the daemon ---- */

/* 1 when something accepts connections on home/control. A socket file
 * left behind by a killed daemon refuses at once, so this does not wait;
 * no file means no daemon. 1 too when the path is too long to try. */
int chp_ctl_daemon_running(const char *home);
/* The program name installed or built next to this one (build/bin and
 * an installed bindir keep chapar, chapard and chapar-tui side by side)
 * into path (cap bytes), else name itself (found on PATH by execvp). */
void chp_ctl_find_program(const char *name, char *path, size_t cap);

/* Starts `chapard --home home` plus the words of $CHAPARD_ARGS as a child
 * of this process in a session of its own (stdin and stdout /dev/null,
 * stderr appended to home/chapard.log), so the caller can wait for it and
 * signal it; it outlives the caller. The binary is the chapard next to
 * this program (/proc/self/exe: build/bin and an installed bindir keep the
 * programs side by side), else the one on PATH. Creates home and its
 * missing parents (0700) first. *path gets what was started, *child its
 * pid (the caller reaps it). CHP_OK, or CHP_E_IO with errno (an exec error
 * comes back from the child). */
CHP_WUR int chp_ctl_spawn_daemon(const char *home, char *path, size_t cap, pid_t *child);

/* Milliseconds on the monotonic clock (chp_mono_ms, node/common/clock.h). */
uint64_t chp_ctl_now_ms(void);

#endif
