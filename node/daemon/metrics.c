/* metrics.c - what chapard tells an operator besides `status`: the same
 * counters over HTTP at /metrics (--metrics HOST:PORT; Prometheus text,
 * node/web/prom.c) and, on a relay, one summary line in the log every
 * --summary-every (accepted, stored, quota use, peers). The HTTP server
 * runs inside the node's zmq_poll loop, so a scrape reads the counters
 * the loop owns without a lock. */
#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/daemon/config.h"
#include "node/daemon/node_int.h"
#include "node/web/httpd.h"
#include "node/web/prom.h"

#include <stdio.h>
#include <string.h>

#define METRICS_CONNS    16 /* scrapers at once: Prometheus needs one */
#define METRICS_PER_IP   8
#define METRICS_IDLE_S   10
#define METRICS_HEADER_S 5
#define METRICS_HEADERS  8192 /* bytes of a request's headers */
#define STATUS_MAX       4096 /* bytes of the status text, as the control reply */

static void serve(void *ctx, const char *path, chp_httpd_reply *r)
{
    chp_node *n = ctx;
    static const char index_[] = "chapard: the metrics are at /metrics\n";
    if (!strcmp(path, "/")) {
        *r = (chp_httpd_reply){.status = 200, .fd = -1, .body = index_, .len = sizeof index_ - 1};
        return;
    }
    if (strcmp(path, "/metrics"))
        return; /* 404 */
    char st[STATUS_MAX];
    size_t len = chp_node_status_text(n, st, sizeof st);
    chp_buf_free(&n->metrics_text);
    if (chp_prom_render(st, len, &n->metrics_text) != CHP_OK) {
        *r = (chp_httpd_reply){.status = 500, .fd = -1, .body = "out of memory\n", .len = 14};
        return;
    }
    *r = (chp_httpd_reply){.status = 200,
                           .type = CHP_PROM_CONTENT_TYPE,
                           .fd = -1,
                           .body = n->metrics_text.p,
                           .len = n->metrics_text.len};
}

int chp_metrics_start(chp_node *n, const chp_node_opts *o)
{
    n->summary_ms = o->summary_ms;
    n->next_summary = n->started_ms + o->summary_ms;
    if (!o->metrics || !o->metrics[0])
        return CHP_OK;
    chp_httpd_opts ho = {.listen = o->metrics,
                         .max_conns = METRICS_CONNS,
                         .per_ip = METRICS_PER_IP,
                         .idle_s = METRICS_IDLE_S,
                         .header_s = METRICS_HEADER_S,
                         .header_bytes = METRICS_HEADERS,
                         .fn = serve,
                         .ctx = n};
    char err[300];
    int rc = chp_httpd_new(&ho, &n->metrics, err, sizeof err);
    if (rc != CHP_OK) {
        chp_err_log("metrics: %s", err);
        return rc;
    }
    chp_info("metrics at http://%s/metrics", chp_httpd_addr(n->metrics));
    return CHP_OK;
}

void chp_metrics_stop(chp_node *n)
{
    chp_httpd_destroy(&n->metrics);
    chp_buf_free(&n->metrics_text);
}

size_t chp_metrics_poll_item(chp_node *n, zmq_pollitem_t *it, long *timeout)
{
    if (!n->metrics)
        return 0;
    long t = chp_httpd_timeout_ms(n->metrics);
    if (t >= 0 && t < *timeout)
        *timeout = t;
    *it = (zmq_pollitem_t){NULL, chp_httpd_fd(n->metrics), ZMQ_POLLIN, 0};
    return 1;
}

void chp_metrics_poll_done(chp_node *n)
{
    if (n->metrics)
        chp_httpd_run(n->metrics);
}

/* The relay's summary line, every summary_ms (0: never). */
void chp_metrics_tick(chp_node *n, uint64_t t)
{
    if (!n->relay || !n->summary_ms || t < n->next_summary)
        return;
    n->next_summary = t + n->summary_ms;
    chp_store_stats st;
    chp_store_stats_get(n->store, &st);
    chp_mesh_stats ms;
    chp_mesh_stats_get(n->mesh, &ms);
    uint64_t acc = ms.ctr.accepted;
    double use = st.quota ? 100.0 * (double)st.bytes / (double)st.quota : 0;
    chp_info("summary: accepted %llu (+%llu in %llu s), stored %llu envelopes, %llu of %llu "
             "bytes (%.1f%% of quota%s), peers %zu (%zu relays)",
             (unsigned long long)acc, (unsigned long long)(acc - n->summary_accepted),
             (unsigned long long)(n->summary_ms / 1000), (unsigned long long)st.envelopes,
             (unsigned long long)st.bytes, (unsigned long long)st.quota, use,
             st.full ? ", full" : "", ms.connected, ms.relays);
    n->summary_accepted = acc;
}

int chp_metrics_reload(chp_node *n, const chp_config *cur, chp_config *next)
{
    int changes = 0;
    if (strcmp(cur->metrics, next->metrics)) {
        chp_warn("reload: metrics %s -> %s takes effect at the next start",
                 cur->metrics[0] ? cur->metrics : "off", next->metrics[0] ? next->metrics : "off");
        memcpy(next->metrics, cur->metrics, sizeof next->metrics);
        changes++;
    }
    if (cur->summary_ms != next->summary_ms) {
        chp_info("reload: summary-every %llu -> %llu s",
                 (unsigned long long)(cur->summary_ms / 1000),
                 (unsigned long long)(next->summary_ms / 1000));
        n->summary_ms = next->summary_ms;
        n->next_summary = chp_mono_ms() + next->summary_ms;
        changes++;
    }
    return changes;
}
