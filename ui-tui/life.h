/* life.h - what the TUI knows of its node's life, without curses or
 * processes: up or down, whether the UI started it (and so restarts it),
 * and when the next restart is due (backoff 1 s, 2 s, 4 s ... 30 s; back
 * to 1 s after a node that ran a while). The front end reports what it
 * sees (the child exited, the control socket refuses or answers again)
 * and does what this says; unit tested on a clock the test drives. */
#ifndef CHP_LIFE_H
#define CHP_LIFE_H

#include <stdint.h>

#define CHP_LIFE_BACKOFF_MIN 1000  /* ms before the first restart */
#define CHP_LIFE_BACKOFF_MAX 30000 /* ms between restarts at most */
#define CHP_LIFE_STABLE_MS   60000 /* a node up this long starts the backoff afresh */

typedef struct chp_life {
    int ours;            /* the UI started the node: it restarts it */
    int down;            /* the node is known to be gone */
    int answered;        /* the node answered since it was (re)started */
    int ever_answered;   /* some node has answered this UI */
    uint64_t up_ms;      /* when the running node first answered */
    uint64_t backoff_ms; /* delay of the next restart */
    uint64_t restart_at; /* ms; 0: no restart scheduled */
} chp_life;

/* A node the UI started itself (ours) or found running. */
void chp_life_init(chp_life *l, int ours);

/* The node is gone (the child exited, or the control socket refuses) at
 * now. Returns the ms until the UI restarts it, or 0 when it will not:
 * not ours, or ours but it never answered (it fails at start: a restart
 * would fail the same way). A second report while down changes nothing
 * and returns 0. */
uint64_t chp_life_down(chp_life *l, uint64_t now);

/* 1 when a restart is due: ours, down, and its time has come. The caller
 * starts a node then and reports chp_life_started. */
int chp_life_restart_due(const chp_life *l, uint64_t now);

/* A node was started (by the UI: it is ours), or one is back that the UI
 * found running: not down any more, not answered yet. */
void chp_life_started(chp_life *l, int ours);

/* The node answered at now. Returns 1 when this is the first answer
 * after it was down (say that it is back), else 0. */
int chp_life_answered(chp_life *l, uint64_t now);

#endif
