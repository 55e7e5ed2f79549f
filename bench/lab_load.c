/* lab_load.c - the honest users of bench/lab (issue 19): sends DMs and
 * #lan posts through each node's control socket at a steady random rate,
 * and records what every node sees, for the lab's figures.
 *
 *   chapar-lab-load [-d DM_MS] [-p POST_MS] [-s SAMPLE_MS] [-r SEED]
 *                   SPEC SECONDS TAIL OUT
 *
 * SPEC has lines "node NAME HOME" and "dm FROM TO CONTACT" (FROM may DM
 * TO, who is CONTACT in FROM's contact list). Each user sends a DM to one
 * of its contacts about every DM_MS (default 10000) and a #lan post about
 * every POST_MS (default 30000), exponentially spaced, for SECONDS; then
 * it watches up to TAIL more seconds, or until every message arrived and
 * every DM's receipt came back. A user whose node does not answer (down,
 * in churn) sends nothing then, as a real user could not.
 *
 * OUT gets tab-separated lines, times in unix milliseconds:
 *   send T FROM KIND TO SEQ MSGID     (KIND dm or post; TO "-" for posts)
 *   recv T NODE SEQ                   (a `message` event of this run's text)
 *   late T NODE SEQ                   (in `inbox` at the end but missed as an
 *                                      event; T is its arrival, whole seconds)
 *   state T NODE MSGID STATE          (sent, delivered)
 *   stat T NODE KEY=VALUE...          (the node's status counters)
 * The nodes' control and event sockets are ipc files in their homes, so
 * this runs outside the lab's namespaces. Exit 0, 1 when it cannot run,
 * 2 on bad usage. */
#define _DEFAULT_SOURCE
#include "bench/benchlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define NODES_MAX 64
#define DMS_MAX   256
#define SENT_MAX  50000
#define TAG_SEND  1
#define TAG_STAT  2
#define TAG_INBOX 3

struct lnode {
    char name[32], home[300];
    chp_ctl *ctl;
    double next_dm, next_post, next_stat; /* unix ms */
    int busy;                             /* a request is unanswered */
    double asked;                         /* when it was sent */
    long seq_asked;                       /* the message it sends, or -1 */
};

struct dm {
    int from, to;
    char contact[64];
};

struct msg {
    int from, to; /* to -1: a post, to every other node */
    double t;
    int got; /* recipients that have it */
};

struct load {
    struct lnode n[NODES_MAX];
    int nn;
    struct dm dm[DMS_MAX];
    int ndm;
    struct msg *m;
    long nm;
    uint8_t *rx; /* rx[seq * nn + node]: node has message seq */
    long want_rx, got_rx, dms, receipts;
    double dm_ms, post_ms, stat_ms;
    unsigned seed;
    FILE *out;
    void *zctx;
};

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Exponentially spaced gaps of mean ms. */
static double gap(struct load *l, double ms)
{
    double u = (rand_r(&l->seed) + 1.0) / ((double)RAND_MAX + 2.0);
    return -log(u) * ms;
}

static int find_node(const struct load *l, const char *name)
{
    for (int i = 0; i < l->nn; i++)
        if (!strcmp(l->n[i].name, name))
            return i;
    return -1;
}

static int read_spec(struct load *l, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512], a[32], b[300], c[64];
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "node %31s %299s", a, b) == 2 && l->nn < NODES_MAX) {
            snprintf(l->n[l->nn].name, sizeof l->n[0].name, "%s", a);
            snprintf(l->n[l->nn++].home, sizeof l->n[0].home, "%s", b);
        } else if (sscanf(line, "dm %31s %63s %63s", a, c, b) == 3 && l->ndm < DMS_MAX) {
            struct dm *d = &l->dm[l->ndm];
            d->from = find_node(l, a);
            d->to = find_node(l, c);
            snprintf(d->contact, sizeof d->contact, "%.63s", b);
            if (d->from < 0 || d->to < 0) {
                fprintf(stderr, "chapar-lab-load: %s: unknown node in: %s", path, line);
                fclose(f);
                return -1;
            }
            l->ndm++;
        }
    }
    if (f)
        fclose(f);
    if (!f || l->nn < 2) {
        fprintf(stderr, "chapar-lab-load: %s: no spec of two nodes or more\n", path);
        return -1;
    }
    return 0;
}

/* ---- sending ---- */

static int send_req(struct lnode *n, int kind, const char *cmd, int nargs, const char **args)
{
    size_t lens[2] = {0, 0};
    for (int i = 0; i < nargs; i++)
        lens[i] = strlen(args[i]);
    chp_ctl_tag tag = {.kind = kind};
    if (chp_ctl_send(n->ctl, &tag, chp_ctl_now_ms(), cmd, nargs, args, lens, 0) != CHP_OK)
        return -1;
    n->busy = 1;
    n->asked = wall_ms();
    return 0;
}

/* A DM to one of i's contacts (dm >= 0) or a post to #lan (dm < 0). */
static void send_msg(struct load *l, int i, int dm)
{
    if (l->nm == SENT_MAX)
        return;
    char text[128];
    struct msg *m = &l->m[l->nm];
    m->from = i;
    m->to = dm >= 0 ? l->dm[dm].to : -1;
    m->got = 0;
    snprintf(text, sizeof text, "lab:%ld:%s %s", l->nm, l->n[i].name,
             dm >= 0 ? "hello, are you there?" : "the bakery on the corner has bread again");
    const char *args[2] = {dm >= 0 ? l->dm[dm].contact : "#lan", text};
    if (send_req(&l->n[i], TAG_SEND, "send", 2, args) == 0)
        l->n[i].seq_asked = l->nm++;
}

static void tick_node(struct load *l, int i, double now, int sending)
{
    struct lnode *n = &l->n[i];
    if (n->busy)
        return;
    if (sending && now >= n->next_dm) {
        int cand[DMS_MAX], k = 0;
        for (int d = 0; d < l->ndm; d++)
            if (l->dm[d].from == i)
                cand[k++] = d;
        n->next_dm = now + gap(l, l->dm_ms);
        if (k) {
            send_msg(l, i, cand[rand_r(&l->seed) % k]);
            return;
        }
    }
    if (sending && now >= n->next_post) {
        n->next_post = now + gap(l, l->post_ms);
        send_msg(l, i, -1);
        return;
    }
    if (now >= n->next_stat) {
        n->next_stat = now + l->stat_ms;
        n->seq_asked = -1;
        (void)send_req(n, TAG_STAT, "status", 0, NULL);
    }
}

/* ---- what comes back ---- */

static const char *const stat_keys[] = {
    "peers connected", "envelopes stored", "bytes stored", "bytes sent",        "bytes received",
    "accepted",        "duplicates",       "rejected",     "rejected rate",     "bans",
    "evictions",       "passive peers",    "sync rounds",  "rejected view full"};

static void on_stat(struct load *l, int i, const char *body)
{
    fprintf(l->out, "stat\t%.0f\t%s", wall_ms(), l->n[i].name);
    for (size_t k = 0; k < sizeof stat_keys / sizeof stat_keys[0]; k++) {
        char key[40];
        snprintf(key, sizeof key, "%s", stat_keys[k]);
        for (char *p = key; *p; p++)
            if (*p == ' ')
                *p = '_';
        fprintf(l->out, "\t%s=%lld", key, bench_status_value(body, stat_keys[k]));
    }
    fputc('\n', l->out);
}

static void got(struct load *l, int node, long seq, double t, const char *what)
{
    if (seq < 0 || seq >= l->nm || l->m[seq].from == node)
        return;
    uint8_t *seen = &l->rx[(size_t)seq * (size_t)l->nn + (size_t)node];
    if (l->m[seq].from < 0 || *seen)
        return;
    *seen = 1;
    fprintf(l->out, "%s\t%.0f\t%s\t%ld\n", what, t, l->n[node].name, seq);
    l->m[seq].got++;
    l->got_rx++;
}

/* The sequence number of this run's text "lab:SEQ:..." in s, or -1. */
static long seq_of(const char *s)
{
    const char *p = strstr(s, "lab:");
    return p ? strtol(p + 4, NULL, 10) : -1;
}

static void on_reply(struct load *l, int i, const chp_ctl_tag *tag, int ok, const char *body)
{
    struct lnode *n = &l->n[i];
    n->busy = 0;
    if (tag->kind == TAG_STAT && ok) {
        on_stat(l, i, body);
    } else if (tag->kind == TAG_SEND && n->seq_asked >= 0) {
        struct msg *m = &l->m[n->seq_asked];
        m->t = n->asked;
        if (!ok) {
            fprintf(l->out, "refused\t%.0f\t%s\t%s\n", n->asked, n->name, body);
            m->from = -1; /* never counted */
            return;
        }
        fprintf(l->out, "send\t%.0f\t%s\t%s\t%s\t%ld\t%.32s\n", n->asked, n->name,
                m->to >= 0 ? "dm" : "post", m->to >= 0 ? l->n[m->to].name : "-", n->seq_asked,
                body);
        l->want_rx += m->to >= 0 ? 1 : l->nn - 1;
        l->dms += m->to >= 0;
    }
}

static void on_event(struct load *l, int i, const char *topic, char *body)
{
    double t = wall_ms();
    if (!strcmp(topic, "message")) {
        got(l, i, seq_of(body), t, "recv");
    } else if (!strcmp(topic, "state")) {
        char *tab = strchr(body, '\t');
        if (!tab)
            return;
        *tab = '\0';
        fprintf(l->out, "state\t%.0f\t%s\t%s\t%s\n", t, l->n[i].name, body, tab + 1);
        l->receipts += !strcmp(tab + 1, "delivered");
    }
}

static void pump(struct load *l, int i)
{
    struct lnode *n = &l->n[i];
    chp_ctl_tag tag;
    int ok;
    char *body, *topic;
    size_t len;
    while (chp_ctl_reply(n->ctl, &tag, &ok, &body, &len) == 1) {
        on_reply(l, i, &tag, ok, body);
        free(body);
    }
    while (chp_ctl_event(n->ctl, &topic, &body, &len) == 1) {
        on_event(l, i, topic, body);
        free(topic);
        free(body);
    }
    /* a node that does not answer (down, restarting): forget the request */
    if (n->busy && chp_ctl_overdue(n->ctl, chp_ctl_now_ms(), 5000)) {
        if (n->seq_asked >= 0)
            l->m[n->seq_asked].from = -1;
        fprintf(l->out, "nosend\t%.0f\t%s\n", n->asked, n->name);
        n->busy = 0;
        if (chp_ctl_reset(n->ctl) != CHP_OK)
            fprintf(stderr, "chapar-lab-load: %s: cannot reconnect\n", n->name);
    }
}

/* Whether a message was asked for and its answer has not come yet (its
 * arrivals are not counted as wanted until it has). */
static int sends_pending(const struct load *l)
{
    for (int i = 0; i < l->nn; i++)
        if (l->n[i].busy && l->n[i].seq_asked >= 0)
            return 1;
    return 0;
}

/* One round: every node's sockets, waiting at most 20 ms in all. */
static void round_all(struct load *l, int sending)
{
    zmq_pollitem_t pi[2 * NODES_MAX];
    int k = 0;
    for (int i = 0; i < l->nn; i++) {
        pi[k++] = (zmq_pollitem_t){chp_ctl_req_socket(l->n[i].ctl), 0, ZMQ_POLLIN, 0};
        pi[k++] = (zmq_pollitem_t){chp_ctl_evt_socket(l->n[i].ctl), 0, ZMQ_POLLIN, 0};
    }
    (void)zmq_poll(pi, k, 20);
    double now = wall_ms();
    for (int i = 0; i < l->nn; i++) {
        pump(l, i);
        tick_node(l, i, now, sending);
    }
}

/* ---- the end: what the inboxes hold that no event said ---- */

static void inbox_sweep(struct load *l)
{
    for (int i = 0; i < l->nn; i++) {
        chp_ctl_answer a;
        const char *args[1] = {"all"};
        size_t lens[1] = {3};
        if (chp_ctl_call(l->n[i].ctl, 20000, "inbox", 1, args, lens, &a) != 1 || !a.ok) {
            chp_ctl_answer_free(&a);
            continue;
        }
        for (char *line = a.body, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            if ((nl = strchr(line, '\n')) != NULL)
                *nl = '\0';
            char *arrived = strrchr(line, '\t');
            if (arrived)
                got(l, i, seq_of(line), atof(arrived + 1) * 1e3, "late");
        }
        chp_ctl_answer_free(&a);
    }
}

int main(int argc, char **argv)
{
    static struct load l = {.dm_ms = 10000, .post_ms = 30000, .stat_ms = 2000, .seed = 1};
    int opt;
    bench_init("chapar-lab-load");
    while ((opt = getopt(argc, argv, "d:p:s:r:")) != -1) {
        double v = atof(optarg);
        if (opt == 'd')
            l.dm_ms = v;
        else if (opt == 'p')
            l.post_ms = v;
        else if (opt == 's')
            l.stat_ms = v;
        else if (opt == 'r')
            l.seed = (unsigned)v;
        else
            return 2;
    }
    if (argc - optind != 4 || l.dm_ms < 10 || l.post_ms < 10 || l.stat_ms < 100) {
        fprintf(stderr, "usage: chapar-lab-load [-d DM_MS] [-p POST_MS] [-s SAMPLE_MS] "
                        "[-r SEED] SPEC SECONDS TAIL OUT\n");
        return 2;
    }
    if (bench_setup() != 0 || read_spec(&l, argv[optind]) != 0)
        return 1;
    double secs = atof(argv[optind + 1]), tail = atof(argv[optind + 2]);
    l.out = fopen(argv[optind + 3], "w");
    l.m = calloc(SENT_MAX, sizeof *l.m);
    l.rx = calloc((size_t)SENT_MAX * (size_t)l.nn, 1);
    l.zctx = zmq_ctx_new();
    if (!l.out || !l.m || !l.rx || !l.zctx)
        return 1;
    double t0 = wall_ms();
    for (int i = 0; i < l.nn; i++) {
        struct lnode *n = &l.n[i];
        if (chp_ctl_open(n->home, l.zctx, &n->ctl) != CHP_OK ||
            chp_ctl_subscribe(n->ctl, "message") != CHP_OK ||
            chp_ctl_subscribe(n->ctl, "state") != CHP_OK)
            return 1;
        n->next_dm = t0 + 1000 + gap(&l, l.dm_ms);
        n->next_post = t0 + 1000 + gap(&l, l.post_ms);
        n->next_stat = t0;
    }
    fprintf(l.out, "start\t%.0f\t%d\t%.0f\t%.0f\n", t0, l.nn, secs, tail);
    while (!bench_stopped() && wall_ms() < t0 + secs * 1e3)
        round_all(&l, 1);
    double stop = wall_ms();
    fprintf(l.out, "stop\t%.0f\n", stop);
    while (!bench_stopped() && wall_ms() < stop + tail * 1e3 &&
           (l.got_rx < l.want_rx || l.receipts < l.dms || sends_pending(&l)))
        round_all(&l, 0);
    for (int i = 0; i < l.nn; i++) /* a last sample of every node */
        l.n[i].next_stat = 0;
    for (double until = wall_ms() + 3000; wall_ms() < until && !bench_stopped();) {
        round_all(&l, 0);
        int busy = 0;
        for (int i = 0; i < l.nn; i++)
            busy |= l.n[i].busy || l.n[i].next_stat == 0;
        if (!busy)
            break;
    }
    inbox_sweep(&l);
    fprintf(l.out, "end\t%.0f\n", wall_ms());
    printf("lab-load: %ld messages sent, %ld of %ld arrivals, %ld of %ld receipts\n", l.nm,
           l.got_rx, l.want_rx, l.receipts, l.dms);
    fclose(l.out);
    for (int i = 0; i < l.nn; i++)
        chp_ctl_destroy(&l.n[i].ctl);
    zmq_ctx_term(l.zctx);
    free(l.m);
    free(l.rx);
    return bench_exit_code(0);
}
