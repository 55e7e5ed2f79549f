/* benchlib.h - what the benches share: a sub-millisecond clock and
 * percentiles, child processes that die with the bench, temp dirs,
 * envelopes made by chapar-mkenv, and chapard nodes on loopback reached
 * through node/client. Messages start with the name bench_init gave. */
#ifndef CHP_BENCHLIB_H
#define CHP_BENCHLIB_H

#include "node/client/ctl.h"
#include "proto/addr.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_PROCS_MAX 128  /* children alive at once */
#define BENCH_CTL_MS    5000 /* ms for one control request */

/* ---- clock and figures ---- */

/* CLOCK_MONOTONIC in milliseconds or seconds, with the fraction: latency
 * figures want better than chp_mono_ms's whole milliseconds. */
double bench_now_ms(void);
double bench_now_s(void);
/* Sorts v ascending, for bench_pct. */
void bench_sort(double *v, size_t n);
/* Nearest-rank percentile p (0 to 100) of the sorted v; NAN when n is 0. */
double bench_pct(const double *v, size_t n, double p);

/* ---- processes ---- */

/* Names this bench in messages (prog is borrowed for the whole run). */
void bench_init(const char *prog);
/* Initialises libsodium, then catches SIGINT, SIGTERM and SIGHUP: they
 * SIGKILL every child still tracked and set bench_stopped(), which the
 * bench's loops check; SIGPIPE is ignored. 0, or -1 after a message. */
int bench_setup(void);
int bench_stopped(void);
/* The exit code of a run that returned rc (0 or -1): 0 or 1, after
 * "interrupted" when a signal stopped it. */
int bench_exit_code(int rc);
/* Starts argv[0] with stdout and stderr appended to log (NULL: this
 * process's). The child dies with this process (PR_SET_PDEATHSIG),
 * whatever kills it, and is tracked until reaped. -1 when the table is
 * full or fork fails. */
pid_t bench_spawn(const char *const *argv, const char *log);
/* Waits up to timeout_ms (negative: as long as it takes) for pid: its exit
 * code, or 128 + the signal that killed it; -1 when it still runs then, or
 * cannot be waited for. */
int bench_reap(pid_t pid, long timeout_ms);
/* SIGKILL and reap (pid <= 0: nothing). */
void bench_kill_reap(pid_t pid);

/* ---- files ---- */

/* Removes path and everything below it. */
void bench_rm_tree(const char *path);
/* Removes an LMDB store's directory: its data.mdb and lock.mdb, then the
 * directory if nothing else is left in it (a path given by the user is
 * never emptied of anything else). 0 when it is gone. */
int bench_rm_store(const char *dir);
/* A new directory $TMPDIR/stem-XXXXXX (else /tmp), at most 60 bytes so
 * that the daemons' socket paths fit; 0, or -1 after a message (dir is
 * then ""). */
int bench_temp_dir(const char *stem, char *dir, size_t cap);
/* Removes dir, or with keep says where it stays (dir "": nothing). */
void bench_temp_done(const char *dir, int keep);

/* ---- envelopes ---- */

/* An envelope in memory. */
struct bench_env {
    uint8_t *bytes; /* malloc'ed */
    size_t len;
    uint8_t id[32];
};

/* n envelopes of payload bytes from chapar-mkenv (mkenv), run on every
 * core (8 at most) in dir (log: dir/mkenv.log), read into env[0..n) and
 * their files removed. 0, or -1 after a message. */
int bench_make_envelopes(const char *mkenv, const char *dir, int n, int payload,
                         struct bench_env *env);
/* Frees the bytes of env[0..n) and env itself. Accepts NULL. */
void bench_free_envelopes(struct bench_env *env, int n);

/* ---- chapard on loopback ---- */

/* A chapard a bench runs, and its control connection. */
struct bench_node {
    char home[300];
    pid_t pid;
    chp_ctl *ctl; /* requests, and its `envelope` events */
    char addr[CHP_ADDR_STR_MAX + 1];
    uint8_t key[32]; /* its node key, from addr */
};

/* Starts chapard (--listen 127.0.0.1:0 --no-discovery) in d->home, which
 * the caller has set, logging to d->home + ".log"; connects on zctx
 * (shared), subscribes to `envelope` and asks for the address: the
 * request waits until the daemon binds. 0, or -1 after a message. */
int bench_node_start(struct bench_node *d, const char *chapard, void *zctx);
/* Takes the address reply into d->addr and d->key, waiting up to
 * timeout_ms; 0, or -1 after "node NAME did not start". */
int bench_node_ready(struct bench_node *d, const char *name, long timeout_ms);
/* Kills the daemon and closes the connection. */
void bench_node_stop(struct bench_node *d);

/* Takes d's events until one says an envelope was stored: 1 with its id,
 * 0 when none is waiting (other events are dropped). */
int bench_next_envelope(struct bench_node *d, uint8_t id[32]);

/* One request with at most one argument (arg NULL: none), waiting up to
 * BENCH_CTL_MS: 0 for "ok", 1 for "error", -1 when no reply came (or
 * bench_stopped). The payload, cut to cap - 1 bytes, goes to out,
 * NUL-terminated ("" when none came). */
int bench_call(chp_ctl *c, const char *cmd, const void *arg, size_t len, char *out, size_t cap);
/* bench_call's ending for a request already sent: the reply to it,
 * waiting up to timeout_ms. */
int bench_reply(chp_ctl *c, long timeout_ms, char *out, size_t cap);
/* Sends a request (arg NULL: none) without waiting; 0 or -1. */
int bench_send(chp_ctl *c, const char *cmd, const void *arg, size_t len);
/* The integer after "key: " at the start of a line of a status reply, or
 * -1 when there is none. */
long long bench_status_value(const char *text, const char *key);

#endif
