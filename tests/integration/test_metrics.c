/* test_metrics.c - what an operator reads: `chapar status --prometheus`
 * and chapard --metrics pass `promtool check metrics`, also scraped while
 * envelopes flow between two real daemons; the log carries the date,
 * names neighbours as `peer list` does and, on a relay, a summary line
 * every --summary-every; hostile requests to /metrics leave the node
 * working. */
#include "harness.h"
#include "hhttp.h"

#include <regex.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENVELOPES 12

/* promtool check metrics on text: its exit code; its complaints printed. */
static int promtool(h_ctx *h, const char *text)
{
    char tool[512], *out = NULL, *err = NULL;
    const char *file = h_write_file(h, "metrics.txt", text, strlen(text));
    const char *argv[] = {h_which("promtool", tool, sizeof tool), "check", "metrics", NULL};
    int rc = h_runv_in(h, file, &out, &err, argv);
    if (rc != 0)
        print_message("promtool: %s%s\n--- input ---\n%s", out, err, text);
    free(out);
    free(err);
    return rc;
}

/* The port of n's /metrics, from its log line "metrics at http://...". */
static uint16_t metrics_port(const h_node *n)
{
    size_t len;
    char *log = (char *)h_read_file(n->log, &len), host[64];
    const char *at = log ? strstr(log, "metrics at http://") : NULL;
    uint16_t port = 0;
    if (!at || hh_parse_url(at + strlen("metrics at "), host, sizeof host, &port) != 0)
        fail_msg("no 'metrics at' line in %s", n->log);
    free(log);
    return port;
}

static long long metric(const char *text, const char *name)
{
    char want[128];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *p = strstr(text, want);
    return p ? strtoll(p + strlen(want), NULL, 10) : -1;
}

static char *scrape(uint16_t port)
{
    char *head = NULL, *body = NULL;
    size_t len;
    int st = hh_get("127.0.0.1", port, "/metrics", &head, &body, &len);
    assert_int_equal(st, 200);
    assert_non_null(strstr(head, "Content-Type: text/plain; version=0.0.4"));
    free(head);
    return body;
}

static void test_scrape_while_envelopes_flow(void **state)
{
    h_ctx *h = *state;
    pid_t mk = h_mkenv_async(h, "env", ENVELOPES, H_END);
    h_node *r =
        h_start(h, "r", "--relay", "--metrics", "127.0.0.1:0", "--summary-every", "1s", H_END);
    h_node *a = h_start(h, "a", "--peer", r->addr, H_END);
    h_expect(h, r, "peers connected", H_EQ, 1);
    uint16_t port = metrics_port(r);
    h_wait_exit0(h, mk, "chapar-mkenv");

    /* publish at a in the background, scrape r meanwhile */
    char script[1024], sh[] = "/bin/sh";
    snprintf(script, sizeof script,
             "for i in $(seq 0 %d); do \"$CHAPAR\" --home %s debug publish %s/env$i || exit 1; "
             "sleep 0.05; done",
             ENVELOPES - 1, a->home, h->dir);
    const char *argv[] = {sh, "-c", script, NULL};
    pid_t pub = h_spawn_aux(h, "publish.log", argv);
    long long last = 0;
    int scrapes = 0, midflow = 0;
    while (last < ENVELOPES && scrapes < 400) {
        char *text = scrape(port);
        long long acc = metric(text, "chapar_accepted_total");
        assert_true(acc >= last); /* a counter never goes back */
        if (acc > 0 && acc < ENVELOPES && !midflow++)
            assert_int_equal(promtool(h, text), 0); /* one taken mid-flow */
        last = acc;
        scrapes++;
        free(text);
        h_sleep_ms(20);
    }
    assert_int_equal(last, ENVELOPES);
    assert_true(midflow >= 1); /* scraped while they were flowing */
    assert_int_equal(h_reap(h, pub, 30000), 0);
    char *text = scrape(port);
    assert_int_equal(promtool(h, text), 0);
    assert_int_equal(metric(text, "chapar_envelopes_stored"), ENVELOPES);
    assert_int_equal(metric(text, "chapar_peers_connected"), 1);
    assert_non_null(strstr(text, "# TYPE chapar_accepted_total counter\n"));
    assert_non_null(strstr(text, "chapar_info{mode=\"relay\""));
    free(text);

    /* the CLI prints the same exposition */
    char *out = h_ok(h, r, "status", "--prometheus", H_END);
    assert_int_equal(promtool(h, out), 0);
    assert_int_equal(metric(out, "chapar_accepted_total"), ENVELOPES);
    free(out);
    out = h_ok(h, a, "status", "--prometheus", H_END);
    assert_int_equal(promtool(h, out), 0);
    assert_non_null(strstr(out, "chapar_info{mode=\"node\""));
    free(out);
}

/* Every log line starts with the date and time in UTC; neighbours are
 * named by the key `peer list` shows; a relay logs its summary. */
static void test_log_lines(void **state)
{
    h_ctx *h = *state;
    pid_t mk = h_mkenv_async(h, "env", 2, H_END);
    h_node *r = h_start(h, "r", "--relay", "--summary-every", "1s", H_END);
    h_node *a = h_start(h, "a", "--peer", r->addr, H_END);
    h_expect(h, r, "peers connected", H_EQ, 1);
    h_wait_exit0(h, mk, "chapar-mkenv");
    h_publish(h, a, "env", 0, NULL);
    h_publish(h, a, "env", 1, NULL);
    h_expect(h, r, "accepted", H_EQ, 2);
    char up[200];
    snprintf(up, sizeof up, "neighbour %s up", a->key);
    uint64_t end = chp_mono_ms() + 5000;
    while ((!h_file_has(r->log, "summary: accepted 2 ") || !h_file_has(r->log, up)) &&
           chp_mono_ms() < end)
        h_sleep_ms(50);
    assert_true(h_file_has(r->log, up));
    assert_true(h_file_has(r->log, "summary: accepted 2 "));
    assert_true(h_file_has(r->log, "stored 2 envelopes"));
    assert_true(h_file_has(r->log, "peers 1 (0 relays)"));
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
                             "\\.[0-9]{3}Z (error|warn |info |debug) ",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    size_t len;
    char *log = (char *)h_read_file(r->log, &len);
    int lines = 0;
    for (char *l = strtok(log, "\n"); l; l = strtok(NULL, "\n"), lines++)
        if (regexec(&re, l, 0, NULL, 0) != 0)
            fail_msg("log line without an ISO 8601 UTC stamp: %s", l);
    assert_true(lines >= 4);
    regfree(&re);
    free(log);
}

/* 1 MB of headers, other methods, paths that try to climb: refused, and
 * the node and its /metrics keep answering. */
static void test_hostile_scrapes(void **state)
{
    h_ctx *h = *state;
    h_node *r = h_start(h, "r", "--relay", "--metrics", "127.0.0.1:0", H_END);
    uint16_t port = metrics_port(r);
    size_t big = 1 << 20;
    char *req = malloc(big + 64);
    int k = snprintf(req, 64, "GET /metrics HTTP/1.0\r\nX-Big: ");
    memset(req + k, 'a', big);
    memcpy(req + k + big, "\r\n\r\n", 4);
    int st = hh_request("127.0.0.1", port, req, (size_t)k + big + 4, NULL, NULL, NULL);
    print_message("1 MB of headers: status %d\n", st);
    assert_true(st == 0 || st == 431 || st == 413 || st == 400);
    free(req);
    static const char post[] = "POST /metrics HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(hh_request("127.0.0.1", port, post, sizeof post - 1, NULL, NULL, NULL), 405);
    char *body = NULL;
    assert_int_equal(hh_get("127.0.0.1", port, "/../../etc/passwd", NULL, &body, NULL), 404);
    assert_null(strstr(body, "root:"));
    free(body);
    assert_int_equal(hh_get("127.0.0.1", port, "/metrics/../x", NULL, NULL, NULL), 404);
    char *text = scrape(port);
    assert_true(metric(text, "chapar_uptime_seconds") >= 0);
    free(text);
    assert_true(h_status(h, r, "uptime") >= 0);
    /* a bad --metrics value: one line, exit 2 */
    char *err = NULL;
    assert_int_equal(h_run(h, NULL, &err, h_bin("CHAPARD"), "--home", r->home, "--metrics",
                           "localhost:x", H_END),
                     2);
    assert_non_null(strstr(err, "--metrics localhost:x"));
    assert_int_equal(h_lines(err), 1);
    free(err);
}

/* SIGHUP: a new summary-every applies at once, a new metrics address at
 * the next start (said once). */
static void test_reload(void **state)
{
    h_ctx *h = *state;
    h_node *r = h_node_get(h, "r");
    char conf[700];
    assert_int_equal(mkdir(r->home, 0700), 0);
    snprintf(conf, sizeof conf, "%s/chapard.conf", r->home);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs("summary-every = 0\nmetrics = 127.0.0.1:0\n", f);
    fclose(f);
    r = h_start(h, "r", "--relay", H_END);
    uint16_t port = metrics_port(r);
    h_sleep_ms(1200);
    assert_false(h_file_has(r->log, "summary: "));
    f = fopen(conf, "w");
    assert_non_null(f);
    fputs("summary-every = 1s\nmetrics = 127.0.0.1:1\n", f);
    fclose(f);
    assert_int_equal(kill(r->pid, SIGHUP), 0);
    uint64_t end = chp_mono_ms() + 5000;
    while (!h_file_has(r->log, "summary: accepted 0 ") && chp_mono_ms() < end)
        h_sleep_ms(50);
    assert_true(h_file_has(r->log, "reload: summary-every 0 -> 1 s"));
    assert_true(h_file_has(r->log, "reload: metrics 127.0.0.1:0 -> 127.0.0.1:1 takes effect at "
                                   "the next start"));
    assert_true(h_file_has(r->log, "summary: accepted 0 "));
    char *text = scrape(port); /* still served where it was */
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scrape_while_envelopes_flow, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_log_lines, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_scrapes, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_reload, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
