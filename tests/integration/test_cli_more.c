/* test_cli_more.c - the CLI for what the daemon already knows (issue 12,
 * findings 7 to 9): `chapar stop` ends the daemon cleanly and waits for
 * it; `status` says whether the identity is locked, the nick and the
 * version, with human units after the raw numbers (`--raw` without);
 * `history`, `conversations`, `nick` and `read`; `outbox` with the time
 * and first words of each message; `inbox --new` (only what no earlier
 * `inbox --new` printed, also after a restart) and `inbox --since`. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Runs `chapar ARGS` at n and asserts exit code want, an empty stdout and
 * one "chapar: " line on stderr that contains hint. */
static void refused_(h_ctx *h, const h_node *n, int want, const char *hint, const char *const *args)
{
    const char *argv[16] = {h_bin("CHAPAR"), "--home", n->home};
    int k = 3;
    for (; args[k - 3] && k < 15; k++)
        argv[k] = args[k - 3];
    argv[k] = NULL;
    char *out = NULL, *err = NULL;
    int rc = h_runv(h, &out, &err, argv);
    int ok = rc == want && !*out && h_lines(err) == 1 && !strncmp(err, "chapar: ", 8) &&
             strstr(err, hint);
    if (!ok)
        print_error("chapar %s: exit %d (want %d), stdout '%s', stderr '%s' (want '%s')\n", args[0],
                    rc, want, out, err, hint);
    free(out);
    free(err);
    if (!ok)
        fail();
}

#define refused(h, n, want, hint, ...)                                                             \
    do {                                                                                           \
        const char *args_[] = {__VA_ARGS__, NULL};                                                 \
        refused_((h), (n), (want), (hint), args_);                                                 \
    } while (0)

/* The line of text that starts with prefix (a copy, malloc'ed), or NULL. */
static char *line_starting(const char *text, const char *prefix)
{
    for (const char *l = text; *l;) {
        size_t n = strcspn(l, "\n");
        if (!strncmp(l, prefix, strlen(prefix))) {
            char *c = malloc(n + 1);
            assert_non_null(c);
            memcpy(c, l, n);
            c[n] = '\0';
            return c;
        }
        l += n + (l[n] == '\n');
    }
    return NULL;
}

/* Field k (from 0) of a tab-separated line as a number; -1 if absent. */
static long long field_num(const char *l, int k)
{
    for (; k > 0 && l; k--)
        if ((l = strchr(l, '\t')))
            l++;
    return l ? strtoll(l, NULL, 10) : -1;
}

/* Asserts that `status` (human) at n has the line "key: want". */
static void assert_status_line(h_ctx *h, const h_node *n, const char *key, const char *want)
{
    char *out = h_ok(h, n, "status", H_END), pre[64];
    snprintf(pre, sizeof pre, "%s: ", key);
    char *l = line_starting(out, pre);
    if (!l || strcmp(l + strlen(pre), want))
        fail_msg("status of %s: '%s' is '%s', want '%s'\n%s", n->name, key, l ? l : "(none)", want,
                 out);
    free(l);
    free(out);
}

/* ---- stop ---- */

static void test_stop(void **state)
{
    h_ctx *h = *state;
    /* A node with an identity and a message queued for a contact that
     * never comes: stop must commit it, as SIGTERM does. */
    h_node *n = h_node_get(h, "n");
    h_init(h, n, "nina", NULL, "--no-passphrase", H_END);
    h_start(h, "n", H_END);
    char pid[H_ID_LEN + 1];
    h_node *p = h_node_get(h, "p");
    h_init(h, p, "pat", pid, "--no-passphrase", H_END);
    free(h_ok(h, n, "contact", "add", pid, "pat", H_END));
    char m[33];
    h_send(h, n, "pat", "kept across the stop", m);

    uint64_t t0 = chp_mono_ms();
    char *out = NULL, *err = NULL;
    int rc = h_chapar(h, n, &out, &err, "stop", H_END);
    if (rc != 0)
        fail_msg("chapar stop: exit %d, stderr '%s'", rc, err);
    assert_string_equal(out, "");
    free(out);
    free(err);
    /* Gone when stop returns: reaped at once, with exit status 0. */
    assert_int_equal(h_reap_node(h, n, 200), 0);
    h_note(h, "stop took %llu ms", (unsigned long long)(chp_mono_ms() - t0));

    /* No daemon: one line, exit 1, like every other command. */
    char hint[1200];
    snprintf(hint, sizeof hint, "chapard is not running for %s", n->home);
    refused(h, n, 1, hint, "stop");
    refused(h, n, 1, hint, "status");
    refused(h, n, 2, "usage: chapar stop", "stop", "now");

    /* What was queued is still there; a relay stops the same way. */
    h_start(h, "n", H_END);
    out = h_ok(h, n, "outbox", H_END);
    assert_non_null(strstr(out, m));
    free(out);
    h_stop(h, n);
    h_node *r = h_start(h, "relay", "--relay", H_END);
    free(h_ok(h, r, "stop", H_END));
    assert_int_equal(h_reap_node(h, r, 200), 0);
}

/* A daemon whose identity is still locked stops too (the TUI's case:
 * started, the passphrase never typed). */
static void test_stop_locked(void **state)
{
    h_ctx *h = *state;
    static const char pass[] = "a passphrase\n";
    char *pf = h_write_file(h, "pass", pass, sizeof pass - 1);
    h_node *n = h_node_get(h, "n");
    h_init(h, n, "nina", NULL, "--passphrase-file", pf, H_END);
    h_start(h, "n", H_END);
    assert_status_line(h, n, "identity", "locked");
    free(h_ok(h, n, "stop", H_END));
    assert_int_equal(h_reap_node(h, n, 200), 0);
}

/* ---- status ---- */

static void test_status_keys(void **state)
{
    h_ctx *h = *state;
    char *version = NULL;
    assert_int_equal(h_run(h, &version, NULL, h_bin("CHAPAR"), "--version", H_END), 0);
    char *v = strchr(version, ' ');
    assert_non_null(v);
    v++;
    v[strcspn(v, "\n")] = '\0';

    /* No identity yet. */
    h_node *n = h_start(h, "n", "--quota", "1M", H_END);
    assert_status_line(h, n, "identity", "none");
    assert_status_line(h, n, "nick", "-");
    assert_status_line(h, n, "version", v);
    /* The raw number first, a human reading after it. */
    assert_status_line(h, n, "quota", "1048576 (1.0 MiB)");
    assert_status_line(h, n, "bytes stored", "0 (0 B)");
    char *out = h_ok(h, n, "status", H_END);
    char *l = line_starting(out, "uptime: ");
    assert_non_null(l);
    long long up = -1;
    char human[32] = "";
    assert_int_equal(sscanf(l, "uptime: %lld (%31[^)])", &up, human), 2);
    assert_true(up >= 0 && up < 60);
    char want[32];
    snprintf(want, sizeof want, "%llds", up);
    assert_string_equal(human, up ? want : "0s");
    free(l);
    free(out);
    /* The harness's own reading (first token) still works. */
    assert_int_equal(h_status(h, n, "quota"), 1048576);
    /* --raw: the daemon's lines, numbers only. */
    out = h_ok(h, n, "status", "--raw", H_END);
    assert_non_null(strstr(out, "\nquota: 1048576\n"));
    assert_null(strchr(out, '('));
    assert_non_null(strstr(out, "\nidentity: none\n"));
    free(out);

    /* With an identity: unlocked, the nick. */
    free(h_ok(h, n, "init", "--nick", "sara", "--no-passphrase", H_END));
    assert_status_line(h, n, "identity", "unlocked");
    assert_status_line(h, n, "nick", "sara");
    free(h_ok(h, n, "nick", "sara2", H_END));
    assert_status_line(h, n, "nick", "sara2");

    /* A relay has no user identity. */
    h_node *r = h_start(h, "relay", "--relay", H_END);
    assert_status_line(h, r, "identity", "none");
    assert_status_line(h, r, "quota", "4294967296 (4.0 GiB)");
    free(version);
}

/* ---- history, conversations, nick, read ---- */

static void test_history_conversations(void **state)
{
    h_ctx *h = *state;
    h_node *a, *b;
    h_pair(h, &a, &b, NULL, NULL);
    char m1[33], m2[33], m3[33];
    h_send(h, a, "bob", "first from alice", m1);
    h_send(h, b, "alice", "reply from bob", m2);
    /* An escape sequence and a line break: inert in every output. */
    h_send(h, b, "alice", "evil \x1b[2J\nsecond line", m3);
    free(h_await(h, a, "second line", "inbox", "--tsv", H_END));
    h_await_state(h, a, m1, "delivered");

    /* TSV: TIME DIR SENDER STATE MSGID TEXT, oldest first. */
    char *out = h_ok(h, a, "history", "bob", "--tsv", H_END);
    assert_int_equal(h_lines(out), 3);
    char want[256];
    snprintf(want, sizeof want, "\tout\talice-nick\tdelivered\t%s\tfirst from alice\n", m1);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "\tin\tbob\t-\t%s\treply from bob\n", m2);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "\tin\tbob\t-\t%s\tevil \\x1b[2J\\nsecond line\n", m3);
    assert_non_null(strstr(out, want));
    assert_true(strstr(out, m1) < strstr(out, m2));
    assert_null(strchr(out, '\x1b'));
    free(out);
    /* --limit: the last N. */
    out = h_ok(h, a, "history", "bob", "--tsv", "--limit", "1", H_END);
    assert_int_equal(h_lines(out), 1);
    assert_non_null(strstr(out, m3));
    free(out);
    /* For humans: local time, sender, the state of one's own. */
    out = h_ok(h, a, "history", "bob", H_END);
    assert_non_null(strstr(out, "  alice-nick [delivered]: first from alice\n"));
    assert_non_null(strstr(out, "  bob: reply from bob\n"));
    assert_non_null(strstr(out, "  bob: evil ^[[2J\n    | second line\n"));
    assert_null(strchr(out, '\x1b'));
    free(out);
    /* A room by name, with its '#'. */
    h_send(h, a, "#lan", "hello room", NULL);
    out = h_ok(h, a, "history", "#lan", "--tsv", H_END);
    assert_non_null(strstr(out, "\tout\talice-nick\t"));
    assert_non_null(strstr(out, "\thello room\n"));
    free(out);
    refused(h, a, 1, "unknown contact 'nobody'", "history", "nobody");
    refused(h, a, 2, "--limit 0", "history", "bob", "--limit", "0");
    refused(h, a, 2, "usage: chapar history", "history");

    /* conversations: two unread from bob until `read bob`. */
    out = h_ok(h, a, "conversations", "--tsv", H_END);
    assert_non_null(strstr(out, "bob\tcontact\t2\t"));
    assert_non_null(strstr(out, "#lan\troom\t0\t"));
    free(out);
    out = h_ok(h, a, "conversations", H_END);
    assert_non_null(strstr(out, "bob (contact)  2 unread  last "));
    free(out);
    free(h_ok(h, a, "read", "bob", H_END));
    out = h_ok(h, a, "conversations", "--tsv", H_END);
    assert_non_null(strstr(out, "bob\tcontact\t0\t"));
    free(out);

    /* nick: shown, changed, refused when bad. */
    out = h_ok(h, a, "nick", H_END);
    assert_string_equal(out, "alice-nick\n");
    free(out);
    free(h_ok(h, a, "nick", "ali", H_END));
    out = h_ok(h, a, "nick", H_END);
    assert_string_equal(out, "ali\n");
    free(out);
    refused(h, a, 2, "bad nick", "nick", " spaced ");
    h_stop(h, b);
    h_stop(h, a);
}

/* ---- outbox ---- */

static void test_outbox_time_text(void **state)
{
    h_ctx *h = *state;
    h_node *n = h_node_get(h, "n");
    h_init(h, n, "nina", NULL, "--no-passphrase", H_END);
    h_start(h, "n", H_END);
    char pid[H_ID_LEN + 1], m1[33], m2[33];
    h_node *p = h_node_get(h, "p");
    h_init(h, p, "pat", pid, "--no-passphrase", H_END);
    free(h_ok(h, n, "contact", "add", pid, "pat", H_END));
    long long t0 = (long long)time(NULL);
    h_send(h, n, "pat", "short one", m1);
    /* 68 bytes with a line break and a tab: cut to 60, ending in an ellipsis */
    h_send(h, n, "pat", "line one\tand a tab\nline two goes on and on past the cut, far past it",
           m2);
    long long t1 = (long long)time(NULL);

    /* --tsv: MSGID TO STATE TIME TEXT, TIME in unix seconds. */
    char *out = h_ok(h, n, "outbox", "--tsv", H_END);
    assert_int_equal(h_lines(out), 2);
    char want[256];
    long long t = 0;
    char *l = line_starting(out, m1);
    assert_non_null(l);
    t = field_num(l, 3);
    assert_true(t >= t0 && t <= t1);
    snprintf(want, sizeof want, "%s\tpat\tqueued\t%lld\tshort one", m1, t);
    assert_string_equal(l, want);
    free(l);
    l = line_starting(out, m2);
    assert_non_null(l);
    long long t2 = 0;
    snprintf(want, sizeof want, "%s\tpat\tqueued\t", m2);
    assert_int_equal(strncmp(l, want, strlen(want)), 0);
    t2 = field_num(l, 3);
    assert_true(t2 >= t && t2 <= t1);
    char *text = strrchr(l, '\t') + 1;
    /* 60 bytes of 68, escaped, then the one character of an ellipsis */
    assert_string_equal(text, "line one\\tand a tab\\nline two goes on and on past the cut, far"
                              "\xe2\x80\xa6");
    free(l);
    free(out);

    /* For humans: the same columns, local time, the text on one line. */
    out = h_ok(h, n, "outbox", H_END);
    assert_int_equal(h_lines(out), 2);
    l = line_starting(out, m2);
    assert_non_null(l);
    char when[32];
    time_t tt = (time_t)t2;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    snprintf(want, sizeof want,
             "%s\tpat\tqueued\t%s\tline one and a tab line two goes on and on past the cut, "
             "far\xe2\x80\xa6",
             m2, when);
    assert_string_equal(l, want);
    free(l);
    free(out);
    h_stop(h, n);
}

/* ---- inbox --new, --since ---- */

static void test_inbox_new_since(void **state)
{
    h_ctx *h = *state;
    h_node *a, *b;
    h_pair(h, &a, &b, NULL, NULL);
    h_send(h, b, "alice", "one", NULL);
    h_send(h, b, "alice", "two", NULL);
    free(h_await(h, a, "\ttwo\n", "inbox", "--tsv", H_END)); /* plain inbox, before --new */

    /* The first --new shows both although plain inbox listed them. */
    char *out = h_ok(h, a, "inbox", "--new", "--tsv", H_END);
    assert_int_equal(h_lines(out), 2);
    assert_non_null(strstr(out, "\tbob\tbob\tone\n"));
    assert_true(strstr(out, "\tone\n") < strstr(out, "\ttwo\n"));
    free(out);
    /* ... then nothing, and plain inbox still shows everything. */
    out = h_ok(h, a, "inbox", "--new", H_END);
    assert_string_equal(out, "");
    free(out);
    out = h_ok(h, a, "inbox", "--tsv", H_END);
    assert_int_equal(h_lines(out), 2);
    free(out);
    out = h_ok(h, a, "inbox", "--new", H_END);
    assert_string_equal(out, "");
    free(out);

    /* A third message, sent in a later second than the first two arrived. */
    long long mid = (long long)time(NULL) + 1;
    while ((long long)time(NULL) < mid)
        h_sleep_ms(50);
    h_send(h, b, "alice", "three", NULL);
    free(h_await(h, a, "\tthree\n", "inbox", "--tsv", H_END));
    out = h_ok(h, a, "inbox", "--new", H_END);
    assert_int_equal(h_lines(out), 1);
    assert_non_null(strstr(out, "  bob  bob: three\n"));
    free(out);
    /* The mark survives a restart. */
    h_stop(h, a);
    h_start(h, "alice", H_END);
    out = h_ok(h, a, "inbox", "--new", H_END);
    assert_string_equal(out, "");
    free(out);

    /* --since: what arrived at or after a time. */
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", mid);
    out = h_ok(h, a, "inbox", "--since", ts, "--tsv", H_END);
    assert_int_equal(h_lines(out), 1);
    assert_non_null(strstr(out, "\tthree\n"));
    free(out);
    out = h_ok(h, a, "inbox", "--since", "1h", "--tsv", H_END);
    assert_int_equal(h_lines(out), 3);
    free(out);
    out = h_ok(h, a, "inbox", "--since", "2000-01-01", "--tsv", H_END);
    assert_int_equal(h_lines(out), 3);
    free(out);
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL) + 3600);
    out = h_ok(h, a, "inbox", "--since", ts, H_END);
    assert_string_equal(out, "");
    free(out);
    /* A local date and time: this minute's start is at most 60 s back. */
    char when[32];
    time_t later = (time_t)(mid + 2 * 86400);
    struct tm tm;
    localtime_r(&later, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    out = h_ok(h, a, "inbox", "--since", when, H_END);
    assert_string_equal(out, "");
    free(out);
    /* --new and --since together: the new ones among the recent ones. */
    out = h_ok(h, a, "inbox", "--new", "--since", "1d", H_END);
    assert_string_equal(out, "");
    free(out);

    refused(h, a, 2, "--since yesterday", "inbox", "--since", "yesterday");
    refused(h, a, 2, "--since 2025-02-30", "inbox", "--since", "2025-02-30");
    refused(h, a, 2, "--since 10x", "inbox", "--since", "10x");
    refused(h, a, 2, "--since 2025-01-01 25:00", "inbox", "--since", "2025-01-01 25:00");
    h_stop(h, b);
    h_stop(h, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stop, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_stop_locked, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_status_keys, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_history_conversations, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_time_text, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_inbox_new_since, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
