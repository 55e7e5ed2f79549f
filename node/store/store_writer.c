/* store_writer.c - the commit writer thread: chp_store_put_start hands
 * it a batch, it runs the batch's write transaction while the owning
 * thread goes on reading, and the owning thread settles the outcome. */
#include "node/store/store_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

static void *bg_main(void *arg)
{
    chp_store *s = arg;
    pthread_mutex_lock(&s->bg.mu);
    for (;;) {
        while (s->bg.state != BG_RUN && s->bg.state != BG_QUIT)
            pthread_cond_wait(&s->bg.cv, &s->bg.mu);
        if (s->bg.state == BG_QUIT)
            break;
        pthread_mutex_unlock(&s->bg.mu);
        /* The owning thread touches nothing but read transactions until
         * it settles this batch (bg_settle), so the store is ours. */
        s->bg.thread_txn = 1;
        int rc = chp_st_try_batch(s, s->bg.items, s->bg.n, 0);
        s->bg.thread_txn = 0;
        pthread_mutex_lock(&s->bg.mu);
        s->bg.lmdb_rc = rc;
        s->bg.state = BG_DONE;
        pthread_cond_broadcast(&s->bg.cv);
        ssize_t w;
        do
            w = write(s->bg.fd[1], "", 1);
        while (w < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&s->bg.mu);
    return NULL;
}

/* Waits for a started batch and makes its outcome final (retries that need
 * the owning thread included). Every call that writes, or reads the
 * counters, settles first; the result stays for chp_store_put_wait. */
static void bg_settle(chp_store *s)
{
    if (!s->bg.started || s->bg.settled)
        return;
    pthread_mutex_lock(&s->bg.mu);
    while (s->bg.state != BG_DONE)
        pthread_cond_wait(&s->bg.cv, &s->bg.mu);
    s->bg.state = BG_IDLE;
    int rc = s->bg.lmdb_rc;
    pthread_mutex_unlock(&s->bg.mu);
    s->bg.rc = chp_st_batch_finish(s, s->bg.items, s->bg.n, rc);
    if (s->lqh.done)
        s->lqh.done(s, s->bg.rc == CHP_OK);
    s->bg.settled = 1;
}

/* Ends the thread (after settling its batch): chp_store_close. */
static void bg_close(chp_store *s)
{
    if (!s->bg.on)
        return;
    bg_settle(s);
    pthread_mutex_lock(&s->bg.mu);
    s->bg.state = BG_QUIT;
    pthread_cond_broadcast(&s->bg.cv);
    pthread_mutex_unlock(&s->bg.mu);
    pthread_join(s->bg.thread, NULL);
    pthread_cond_destroy(&s->bg.cv);
    pthread_mutex_destroy(&s->bg.mu);
    close(s->bg.fd[0]);
    close(s->bg.fd[1]);
    s->bg.on = 0;
}

/* Starts the thread on first use and gives the rest of the store the way
 * to wait for it (s->bg.settle, s->bg.stop). */
static int bg_open(chp_store *s)
{
    if (s->bg.on)
        return CHP_OK;
    if (pipe(s->bg.fd) != 0)
        return CHP_E_IO;
    for (int i = 0; i < 2; i++) {
        fcntl(s->bg.fd[i], F_SETFD, FD_CLOEXEC);
        fcntl(s->bg.fd[i], F_SETFL, O_NONBLOCK);
    }
    if (pthread_mutex_init(&s->bg.mu, NULL) != 0)
        goto fail_pipe;
    if (pthread_cond_init(&s->bg.cv, NULL) != 0)
        goto fail_mu;
    s->bg.state = BG_IDLE;
    if (pthread_create(&s->bg.thread, NULL, bg_main, s) != 0)
        goto fail_cv;
    s->bg.on = 1;
    s->bg.settle = bg_settle;
    s->bg.stop = bg_close;
    return CHP_OK;
fail_cv:
    pthread_cond_destroy(&s->bg.cv);
fail_mu:
    pthread_mutex_destroy(&s->bg.mu);
fail_pipe:
    close(s->bg.fd[0]);
    close(s->bg.fd[1]);
    return CHP_E_IO;
}

int chp_store_put_start(chp_store *s, chp_store_item *items, size_t n)
{
    assert(s && (items || n == 0) && !s->bg.started);
    chp_st_batch_prep(items, n);
    chp_st_bloom_check(s);
    int rc = bg_open(s);
    if (rc != CHP_OK)
        return rc;
    if (s->lqh.take)
        s->lqh.take(s); /* the local records waiting ride this batch */
    s->bg.items = items;
    s->bg.n = n;
    s->st_done = s->st; /* what stats_get shows until this batch settles */
    s->bg.started = 1;
    s->bg.settled = 0;
    pthread_mutex_lock(&s->bg.mu);
    s->bg.state = BG_RUN;
    pthread_cond_broadcast(&s->bg.cv);
    pthread_mutex_unlock(&s->bg.mu);
    return CHP_OK;
}

int chp_store_put_ready(chp_store *s)
{
    assert(s);
    if (!s->bg.started)
        return 0;
    if (s->bg.settled)
        return 1;
    pthread_mutex_lock(&s->bg.mu);
    int done = s->bg.state == BG_DONE;
    pthread_mutex_unlock(&s->bg.mu);
    return done;
}

int chp_store_put_fd(chp_store *s)
{
    assert(s);
    return s->bg.on ? s->bg.fd[0] : -1;
}

int chp_store_put_wait(chp_store *s)
{
    assert(s && s->bg.started);
    bg_settle(s);
    char buf[64];
    while (read(s->bg.fd[0], buf, sizeof buf) > 0) {
    }
    s->bg.started = 0;
    return s->bg.rc;
}
