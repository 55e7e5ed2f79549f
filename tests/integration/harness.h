/* harness.h - integration-test harness: real chapard processes on
 * loopback, the chapar CLI as a user runs it, status counters polled
 * against deadlines, and a temp dir per test that is always cleaned up.
 *
 * Binaries come from the environment (CMake sets them for ctest):
 * CHAPARD, CHAPAR, CHAPAR_MKENV. CHP_IT_KEEP=1 keeps the temp dirs;
 * CHP_IT_VERBOSE=1 prints every wait with its duration.
 *
 * Every function that can fail fails the running cmocka test itself (with
 * the daemons' log tails), so test code reads as a plain script. */
#ifndef CHP_HARNESS_H
#define CHP_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "node/common/clock.h" /* chp_mono_ms: the clock of every deadline here */

#define H_MAX_NODES    16
#define H_MAX_AUX      16
#define H_DEADLINE_MS  20000 /* for conditions that take well under a second when healthy */
#define H_WATCHDOG_S   110   /* under ctest's TIMEOUT 120: kill daemons ourselves */
#define H_ADDR_MAX     400
#define H_SENTINEL     __attribute__((sentinel))
#define H_END          ((const char *)NULL) /* ends an argument list (NULL may be a plain 0) */
#define H_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* One chapard: its data dir, log and (while running) its pid. */
typedef struct h_node {
    char name[32];
    char home[512];
    char log[520];
    char addr[H_ADDR_MAX]; /* `chapar address` of the last start */
    char key[80];          /* its transport key chpn1..., as `peer list` shows it */
    uint16_t port;
    pid_t pid; /* 0 when not running */
} h_node;

/* Per-test state: the temp dir and every process started in it. */
typedef struct h_ctx {
    char dir[256];
    h_node nodes[H_MAX_NODES];
    size_t nnodes;
    pid_t aux[H_MAX_AUX]; /* other processes (mkenv, capture tools) */
    size_t naux;
    uint64_t t0_ms;
} h_ctx;

/* cmocka setup/teardown: *state becomes an h_ctx with a fresh temp dir;
 * teardown kills (SIGKILL) whatever still runs and removes the dir, also
 * after a failed assertion. */
int h_setup(void **state);
int h_teardown(void **state);

/* Sleeps ms milliseconds (a backoff, never a wait for a condition). */
void h_sleep_ms(int ms);

/* The path in environment variable var (CHAPARD, CHAPAR, CHAPAR_MKENV);
 * fails the test when it is not set. */
const char *h_bin(const char *var);

/* dir/name into buf (cap bytes); returns buf. */
char *h_path(const h_ctx *h, char *buf, size_t cap, const char *name);

/* Starts chapard --home DIR/name --listen 127.0.0.1:0 --no-discovery plus
 * the extra arguments (NULL-terminated), stdout and stderr appended to
 * DIR/name.log, and waits until its control socket answers. Starting a
 * name again restarts that node with the same home. The node lives until
 * teardown; the pointer stays valid until then. */
h_node *h_start(h_ctx *h, const char *name, ...) H_SENTINEL;

/* Waits until n (its pid set by whoever started it) answers on its control
 * socket, then fills n->addr, key and port; fails the test if it exits or
 * stays silent for 15 s. */
void h_await_up(h_ctx *h, h_node *n);

/* The node called name, registered (home DIR/name, log DIR/name.log) but
 * not started if it is new: for `chapar init` before the first start. */
h_node *h_node_get(h_ctx *h, const char *name);

/* SIGTERM, then asserts a clean exit with status 0 within 10 s. */
void h_stop(h_ctx *h, h_node *n);
/* Waits up to deadline_ms for n to exit by itself (after `wipe`, say);
 * its exit code, or -1 if it still runs. */
int h_reap_node(h_ctx *h, h_node *n, int deadline_ms);
/* SIGKILL and reap: a crash at an arbitrary moment. */
void h_kill9(h_ctx *h, h_node *n);

/* Runs a program (argv NULL-terminated, argv[0] a path) and waits for it
 * (30 s at most). Returns the exit code (128 + signal if killed). *out and
 * *err, when not NULL, receive malloc'd NUL-terminated copies of stdout and
 * stderr that the caller frees. */
int h_run(h_ctx *h, char **out, char **err, const char *prog, ...) H_SENTINEL;
int h_runv(h_ctx *h, char **out, char **err, const char *const *argv);
/* h_runv with stdin read from the file in_path (NULL: /dev/null). */
int h_runv_in(h_ctx *h, const char *in_path, char **out, char **err, const char *const *argv);

/* `chapar --home <n's home> ARGS...`; as h_run. */
int h_chapar(h_ctx *h, const h_node *n, char **out, char **err, ...) H_SENTINEL;

/* The integer value of "key: value" in `chapar status` of n, or -1 when
 * the command fails or the key is missing. */
long long h_status(h_ctx *h, const h_node *n, const char *key);
/* The same from status text already read (a line "key: value"). */
long long h_status_value(const char *text, const char *key);

/* 1 if `chapar status` of n prints line (e.g. "store full: yes\n"). */
int h_status_has(h_ctx *h, const h_node *n, const char *line);

/* ---- a raw neighbour: libzmq with CURVE, no chapard ---- */

#define H_RAW_TIMEOUT_MS 10000 /* send and receive timeout of a raw socket */

/* Waits up to deadline_ms on a libzmq socket monitor (a PAIR connected to
 * zmq_socket_monitor's endpoint) for an event of kind want; 1 when seen. */
int h_zmq_event(void *mon, int want, int deadline_ms);
/* Monitors every event of socket s: returns the PAIR to read them from
 * (h_zmq_event); the caller closes it after zmq_socket_monitor(s, NULL, 0). */
void *h_zmq_monitor(void *zctx, void *s);

/* A SUB socket in zctx on n's event socket (CONTROL.md "Events"),
 * subscribed to topic, with a receive timeout of H_DEADLINE_MS; the
 * caller closes it. */
void *h_events(void *zctx, const h_node *n, const char *topic);

/* A fresh CURVE key pair. */
void h_curve_keys(uint8_t pk[32], uint8_t sk[32]);
/* A CURVE DEALER in zctx dialling node n, as a neighbour would: key pair
 * pk/sk (pk NULL: a fresh pair), routing id rid (32 bytes; NULL: none set),
 * from source address src ("127.0.0.2"; NULL: the default); linger 0 and
 * H_RAW_TIMEOUT_MS to send and receive. When mon is not NULL, *mon gets a
 * monitor of its events (h_zmq_monitor). Close both with h_raw_close. */
void *h_raw_dial(void *zctx, const h_node *n, const uint8_t *pk, const uint8_t *sk,
                 const uint8_t *rid, const char *src, void **mon);
/* Stops the monitor (mon may be NULL) and closes both sockets. */
void h_raw_close(void *s, void *mon);
/* Sends one frame on s; fails the test if it cannot. */
void h_raw_send(void *s, const void *f, size_t len);
/* Sends a HELLO with capabilities caps and the largest frame size. */
void h_raw_hello(void *s, uint32_t caps);
/* A post to room (e.g. "#lan") by me, sealed as a node's messaging layer
 * seals it (PROTOCOL.md §18.4: msgid | nick length | nick | text, under
 * the room's tag and key of this epoch, with its proof of work), expiring
 * ttl seconds from now, into env (cap bytes; *len its length): CHP_OK or
 * why not. */
struct chp_identity;
int h_room_post(const struct chp_identity *me, const char *room, const char *nick, const char *text,
                uint64_t ttl, uint8_t *env, size_t cap, size_t *len);
/* A flow PING, then reads until its PONG, for up to deadline_ms (else
 * fails the test): a node handles one link's frames in order and answers
 * a flow PING once what came before it is stored and examined, so
 * everything sent before has been dealt with. Other frames read meanwhile
 * are dropped. */
void h_raw_barrier(void *s, int deadline_ms);

enum h_op { H_EQ, H_GE, H_GT, H_LE };

/* Polls `status` of n every 25 ms until key OP v holds; fails the test
 * with the last value and the daemons' logs at the deadline. Returns the
 * value that satisfied it. */
#define h_expect(h, n, key, op, v)                                                                 \
    h_expect_((h), (n), (key), (op), (v), H_DEADLINE_MS, __FILE__, __LINE__)
long long h_expect_(h_ctx *h, const h_node *n, const char *key, enum h_op op, long long v,
                    int deadline_ms, const char *file, int line);

/* Polls cond(h, arg) every 25 ms until it returns non-zero or deadline_ms
 * passes. Returns 1 when it held, 0 on timeout (the caller asserts). */
int h_wait(h_ctx *h, int deadline_ms, int (*cond)(h_ctx *h, void *arg), void *arg);

/* chapar-mkenv with COUNT, a lifetime of one hour (cheaper proofs of work
 * than the tool's default day) and the extra arguments, which may override
 * it: writes DIR/prefix0 ...
 * Synchronous variant asserts exit 0; the async one returns the pid for
 * h_wait_exit0 (mkenv solves proofs of work: run several in parallel). */
void h_mkenv(h_ctx *h, const char *prefix, int count, ...) H_SENTINEL;
pid_t h_mkenv_async(h_ctx *h, const char *prefix, int count, ...) H_SENTINEL;
void h_wait_exit0(h_ctx *h, pid_t pid, const char *what);

/* Starts a helper process whose output goes to DIR/logname; killed in
 * teardown unless reaped by h_reap. */
pid_t h_spawn_aux(h_ctx *h, const char *logname, const char *const *argv);
/* Waits for an aux process (deadline_ms), returns its wait status or -1. */
int h_reap(h_ctx *h, pid_t pid, int deadline_ms);

/* `chapar debug publish DIR/prefix<i>` at n; asserts exit 0 and a 64-hex
 * id on stdout, copied to id (65 bytes) when not NULL. */
void h_publish(h_ctx *h, const h_node *n, const char *prefix, int i, char *id);
/* `chapar debug publish` of prefix0 .. prefix<count-1> at n, three at a
 * time (under the sanitizers most of the cost is starting chapar). */
void h_publish_par(h_ctx *h, const h_node *n, const char *prefix, int count);
/* Publishes prefix<from> ... prefix<to-1>. */
void h_publish_range(h_ctx *h, const h_node *n, const char *prefix, int from, int to);

/* Reads a whole file; malloc'd, NUL-terminated; *len gets the size. */
uint8_t *h_read_file(const char *path, size_t *len);
/* 1 if the file at path (read now) contains text. */
int h_file_has(const char *path, const char *text);

/* Starts tcpdump capturing the TCP traffic of the n nodes' ports on lo to
 * DIR/wire.pcap (its path copied to pcap, cap bytes), and waits until it
 * listens. Returns its pid, or 0 with the reason in why (whycap bytes)
 * where it cannot run: not installed, not root, or refused by the
 * kernel. */
pid_t h_capture_start(h_ctx *h, h_node *const *nodes, size_t n, char *pcap, size_t cap, char *why,
                      size_t whycap);
/* Stops the capture (SIGINT, asserting a clean exit) and returns the
 * capture file's bytes (malloc'd; *len gets the size). */
uint8_t *h_capture_stop(h_ctx *h, pid_t pid, const char *pcap, size_t *len);

/* Number of lines in s (a final line without newline counts). */
int h_lines(const char *s);

/* ---- messaging ---- */

#define H_ID_LEN 62 /* characters of a user ID (chp1...) */

/* `chapar --home <n's home> ARGS...`: asserts exit 0 (else fails with its
 * stderr and the logs) and returns stdout (malloc'ed; the caller frees). */
#define h_ok(h, n, ...) h_ok_((h), (n), __FILE__, __LINE__, __VA_ARGS__)
char *h_ok_(h_ctx *h, const h_node *n, const char *file, int line, ...) H_SENTINEL;

/* `chapar send-file TO PATH` at n: asserts exit 0 and one line of a
 * 32-hex message id, which goes into id. */
void h_send_file(h_ctx *h, const h_node *n, const char *to, const char *path, char id[33]);

/* `chapar init --nick NICK ARGS...` (with or without a running daemon):
 * asserts exit 0 and one user ID line, copied to id (may be NULL). */
void h_init(h_ctx *h, const h_node *n, const char *nick, char id[H_ID_LEN + 1], ...) H_SENTINEL;

/* Runs `chapar ARGS...` at n, with a growing backoff (25..200 ms), until it
 * exits 0 with needle in its stdout; returns that stdout (caller frees).
 * Fails the test at the deadline with the last output and the logs. */
#define h_await(h, n, needle, ...)                                                                 \
    h_await_((h), (n), (needle), H_DEADLINE_MS, __FILE__, __LINE__, __VA_ARGS__)
char *h_await_(h_ctx *h, const h_node *n, const char *needle, int deadline_ms, const char *file,
               int line, ...) H_SENTINEL;

/* Polls `chapar contact list` at n until contact name (user ID id) is
 * established. */
void h_established(h_ctx *h, const h_node *n, const char *name, const char *id);

/* `contact add` both ways (a adds b as bname, b adds a as aname), then
 * waits until each lists the other as established. */
void h_befriend(h_ctx *h, const h_node *a, const char *aname, const char *aid, const h_node *b,
                const char *bname, const char *bid);

/* The usual two users: "alice" and "bob" (nicks alice-nick, bob-nick, no
 * passphrase), Bob's daemon dialling Alice's, contacts of each other as
 * "alice" and "bob". Their IDs go to aid and bid unless NULL. */
void h_pair(h_ctx *h, h_node **a, h_node **b, char aid[H_ID_LEN + 1], char bid[H_ID_LEN + 1]);

/* Polls `chapar outbox` at n until message msgid is in state (`sent`,
 * `delivered`...). */
#define h_await_state(h, n, msgid, state)                                                          \
    h_await_state_((h), (n), (msgid), (state), H_DEADLINE_MS, __FILE__, __LINE__)
void h_await_state_(h_ctx *h, const h_node *n, const char *msgid, const char *state,
                    int deadline_ms, const char *file, int line);

/* `chapar send TO TEXT` at n, which must print a 32-hex message id and
 * exit 0; the id goes to id (33 bytes) unless id is NULL. */
void h_send(h_ctx *h, const h_node *n, const char *to, const char *text, char id[33]);

/* Writes DIR/name; returns its path (a static buffer, one of 16 reused). */
char *h_write_file(h_ctx *h, const char *name, const void *data, size_t len);

/* Prints the last lines of every node's log to stderr. */
void h_dump_logs(const h_ctx *h);
/* Prints the main `status` counters of every running node to stderr. */
void h_dump_status(h_ctx *h);

/* Runs the shell command fmt... (system(3)); its exit status, -1 when it
 * did not exit. */
int h_sh(const char *fmt, ...) H_PRINTF(1, 2);
/* The program name found on PATH (then /usr/sbin, /sbin), its path in buf
 * (cap bytes); fails the test when it is not installed. */
const char *h_which(const char *name, char *buf, size_t cap);

/* Prints a progress line when CHP_IT_VERBOSE is set. */
void h_note(const h_ctx *h, const char *fmt, ...) H_PRINTF(2, 3);

#endif
