/* test_reload.c - chapard reads chapard.conf again on SIGHUP (issue 18):
 * a friends-only relay gets a larger quota, a second friend and the debug
 * log level without dropping the link it has; a broken file is one log
 * line and the running settings stay; a friend taken off the list is
 * cut at once and refused after. A relay with `--relay` on the
 * command line keeps it: flags still win over the file after a reload. */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

static void write_conf(h_ctx *h, const h_node *n, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/chapard.conf", n->home);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    (void)h;
}

/* SIGHUP to n, then waits for its log to say line. */
static void hup_and_await(h_ctx *h, const h_node *n, const char *line)
{
    assert_int_equal(kill(n->pid, SIGHUP), 0);
    uint64_t end = chp_mono_ms() + H_DEADLINE_MS;
    while (!h_file_has(n->log, line) && chp_mono_ms() < end)
        h_sleep_ms(25);
    if (!h_file_has(n->log, line)) {
        h_dump_logs(h);
        fail_msg("no '%s' in %s's log after SIGHUP", line, n->name);
    }
}

/* Reads peer events until one says "up" (flags 0: waiting up to the
 * deadline) or none is left (ZMQ_DONTWAIT); returns how many said "down". */
static int downs_until(void *s, int flags)
{
    int downs = 0;
    for (;;) {
        char topic[16], body[16];
        if (zmq_recv(s, topic, sizeof topic, flags) < 0) {
            assert_true(flags == ZMQ_DONTWAIT); /* else no "up" in time */
            return downs;
        }
        int n = zmq_recv(s, body, sizeof body - 1, 0);
        assert_true(n >= 0);
        body[n < (int)sizeof body - 1 ? n : (int)sizeof body - 1] = '\0';
        if (!strcmp(body, "down"))
            downs++;
        else if (!strcmp(body, "up") && flags == 0)
            return downs;
    }
}

static void test_sighup_reload(void **state)
{
    h_ctx *h = *state;
    char conf[1024];
    h_node *b = h_start(h, "b", H_END), *c = h_start(h, "c", H_END);
    h_node *a = h_node_get(h, "a");
    assert_int_equal(mkdir(a->home, 0700), 0);
    snprintf(conf, sizeof conf, "# friends only\nquota = 2M\nallow = %s\nrelay = no\n", b->key);
    write_conf(h, a, conf);
    a = h_start(h, "a", "--relay", H_END);
    assert_int_equal(h_status(h, a, "quota"), 2 << 20);

    void *z = zmq_ctx_new();
    void *ev = h_events(z, a, "peer"); /* "up" and "down" of every link */
    free(h_ok(h, b, "peer", "add", a->addr, H_END));
    h_expect(h, a, "peers connected", H_EQ, 1);
    free(h_ok(h, c, "peer", "add", a->addr, H_END));
    h_expect(h, a, "rejected not allowed", H_GE, 1);

    /* A second friend, a larger quota, the debug level. */
    snprintf(conf, sizeof conf, "quota = 3M\nallow = %s\nallow = %s\nlog-level = debug\n", b->key,
             c->key);
    write_conf(h, a, conf);
    hup_and_await(h, a, "reload: quota 2097152 -> 3145728 bytes");
    char line[300];
    snprintf(line, sizeof line, "reload: allow-list 1 -> 2 keys, added %s; links cut: 0\n", c->key);
    assert_true(h_file_has(a->log, line));
    assert_true(h_file_has(a->log, "reload: log-level info -> debug\n"));
    assert_int_equal(h_status(h, a, "quota"), 3 << 20);
    assert_true(h_status_has(h, a, "mode: relay\n")); /* --relay still wins */
    assert_false(h_file_has(a->log, "reload: relay"));

    /* c's next dial (5 s after the refusal) is let in; b never left. */
    h_expect(h, a, "peers connected", H_EQ, 2);
    assert_int_equal(downs_until(ev, 0), 0); /* up to c's "up" */
    assert_int_equal(downs_until(ev, ZMQ_DONTWAIT), 0);

    /* A broken file: one line, the running settings stay. */
    write_conf(h, a, "quota = 3M\nquota = lots\n");
    hup_and_await(h, a,
                  "/chapard.conf:2: unknown setting or bad value: quota = lots; the running "
                  "settings stay\n");
    assert_int_equal(h_status(h, a, "quota"), 3 << 20);
    assert_int_equal(h_status(h, a, "peers connected"), 2);
    /* Nothing changed: the same file again says so. */
    write_conf(h, a, conf);
    hup_and_await(h, a, "/chapard.conf unchanged\n");
    assert_int_equal(downs_until(ev, ZMQ_DONTWAIT), 0);
    assert_int_equal(h_status(h, a, "peers connected"), 2);

    /* b taken off the list: its link is cut at once, its redials refused;
     * c's link stays. */
    long long refused = h_status(h, a, "rejected not allowed");
    snprintf(conf, sizeof conf, "quota = 3M\nallow = %s\n", c->key);
    write_conf(h, a, conf);
    snprintf(line, sizeof line, "reload: allow-list 2 -> 1 keys, removed %s; links cut: 1\n",
             b->key);
    hup_and_await(h, a, line);
    h_expect(h, a, "peers connected", H_EQ, 1);
    h_expect(h, a, "rejected not allowed", H_GT, refused);
    assert_int_equal(downs_until(ev, ZMQ_DONTWAIT), 1);
    char *peers = h_ok(h, a, "peer", "list", H_END);
    snprintf(line, sizeof line, "%s\tconnected", c->key);
    assert_non_null(strstr(peers, line));
    assert_null(strstr(peers, b->key));
    free(peers);

    zmq_close(ev);
    zmq_ctx_term(z);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sighup_reload, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
