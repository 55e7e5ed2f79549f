/* msg_seal.c - sealing envelopes (proof of work: tens of milliseconds for
 * a short message, around a second for a 16 KiB chunk) on a worker thread,
 * so the node's loop keeps answering the network and the control socket
 * meanwhile. The main thread prepares each envelope (keys, tag, counters)
 * and takes the sealed ones back in order; the worker only runs
 * chp_envelope_seal on what it was handed, with the identity read-only.
 * An eventfd tells the loop when something is done. Tests and benchmarks
 * may seal inline (chp_msg_host.seal_inline) and stay single-threaded.
 * The sealer owns no envelope: whatever it is handed goes back to its
 * caller, sealed (pop) or not (cancel), and the caller frees it. */
#include "node/msg/msg_int.h"

#include "proto/crypto.h"
#include "node/common/log.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void run(struct seal *s)
{
    if (s->job && s->job->has_hash) /* a file piece: hashed when copied in */
        s->a.payload_hash = s->job->hash;
    s->rc = chp_envelope_seal_id(&s->a, s->me, chp_rng_system(), s->out, s->cap, &s->outlen, s->id);
}

static void *worker(void *arg)
{
    struct sealer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->todo && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        struct seal *s = w->todo;
        w->todo = s->next;
        if (!w->todo)
            w->todo_tail = NULL;
        w->busy = 1;
        pthread_mutex_unlock(&w->mu);
        run(s);
        pthread_mutex_lock(&w->mu);
        w->busy = 0;
        s->next = NULL;
        if (w->done_tail)
            w->done_tail->next = s;
        else
            w->done = s;
        w->done_tail = s;
        uint64_t one = 1;
        if (write(w->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            chp_warn("sealer: cannot signal the loop: %s", strerror(errno));
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int chp_sealer_start(struct sealer *w, int inline_only)
{
    memset(w, 0, sizeof *w);
    w->efd = -1;
    w->inline_only = inline_only;
    if (inline_only)
        return CHP_OK;
    if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return CHP_E_IO;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, worker, w) != 0) {
        close(w->efd);
        w->efd = -1;
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        return CHP_E_NOMEM;
    }
    w->running = 1;
    return CHP_OK;
}

/* Appends list b to list a; returns a. */
static struct seal *concat(struct seal *a, struct seal *b)
{
    struct seal **pp = &a;
    while (*pp)
        pp = &(*pp)->next;
    *pp = b;
    return a;
}

struct seal *chp_sealer_cancel(struct sealer *w)
{
    struct seal *back;
    if (!w->running) {
        back = w->done;
        w->done = w->done_tail = NULL;
        return back;
    }
    pthread_mutex_lock(&w->mu);
    struct seal *todo = w->todo;
    w->todo = w->todo_tail = NULL;
    while (w->busy) /* the identity it reads is about to go */
        pthread_cond_wait(&w->cv, &w->mu);
    back = concat(w->done, todo);
    w->done = w->done_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    return back;
}

void chp_sealer_stop(struct sealer *w)
{
    assert(!w->todo && !w->done); /* chp_sealer_cancel handed them back */
    if (w->running) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        w->running = 0;
    }
    if (w->efd >= 0)
        close(w->efd);
    w->efd = -1;
}

void chp_sealer_push(struct sealer *w, struct seal *s)
{
    s->next = NULL;
    if (!w->running) {
        run(s);
        if (w->done_tail)
            w->done_tail->next = s;
        else
            w->done = s;
        w->done_tail = s;
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (w->todo_tail)
        w->todo_tail->next = s;
    else
        w->todo = s;
    w->todo_tail = s;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

struct seal *chp_sealer_pop(struct sealer *w)
{
    if (w->running) {
        uint64_t v;
        if (read(w->efd, &v, sizeof v) < 0 && errno != EAGAIN)
            chp_warn("sealer: %s", strerror(errno));
        pthread_mutex_lock(&w->mu);
    }
    struct seal *s = w->done;
    if (s) {
        w->done = s->next;
        if (!w->done)
            w->done_tail = NULL;
        s->next = NULL;
    }
    if (w->running)
        pthread_mutex_unlock(&w->mu);
    return s;
}

int chp_sealer_has_done(struct sealer *w)
{
    if (!w->running)
        return w->done != NULL;
    pthread_mutex_lock(&w->mu);
    int r = w->done != NULL;
    pthread_mutex_unlock(&w->mu);
    return r;
}

int chp_sealer_pending(struct sealer *w)
{
    if (!w->running)
        return w->done != NULL;
    pthread_mutex_lock(&w->mu);
    int r = w->todo || w->busy || w->done;
    pthread_mutex_unlock(&w->mu);
    return r;
}
