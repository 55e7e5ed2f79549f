/* test_dm.c - direct messages between two people through a relay, driven
 * only through the chapar CLI: Alice (no passphrase, created before her
 * daemon starts) adds Bob (passphrase, created through his running
 * daemon); Bob accepts her request; they write both ways, in English and
 * Persian, one text of 20 KB that travels in chunks; Bob's inbox names
 * Alice, and Alice's outbox reaches `delivered`. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define PERSIAN "سلام، حالت چطوره؟"

/* The `inbox --tsv` line (without TIME) that Bob should see: CONV,
 * SENDER, TEXT. */
static char *tsv_tail(const char *conv, const char *sender, const char *text)
{
    size_t n = strlen(conv) + strlen(sender) + strlen(text) + 8;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "\t%s\t%s\t%s\n", conv, sender, text);
    return s;
}

/* A 20 KB text with numbered pieces, so a chunk out of order or missing
 * shows; one tab and one newline in it exercise the TSV escaping. */
static void big_text(char *raw, size_t cap, char *escaped, size_t ecap)
{
    size_t n = 0;
    for (int i = 0; n + 16 < cap - 1 && n < 20000; i++)
        n += (size_t)snprintf(raw + n, cap - n, "piece-%05d|", i);
    memcpy(raw + 5000, "\tTAB", 4);
    memcpy(raw + 12000, "\nNL!", 4);
    size_t e = 0;
    for (size_t i = 0; i < n && e + 3 < ecap; i++) {
        if (raw[i] == '\t' || raw[i] == '\n') {
            escaped[e++] = '\\';
            escaped[e++] = raw[i] == '\t' ? 't' : 'n';
        } else {
            escaped[e++] = raw[i];
        }
    }
    escaped[e] = '\0';
}

static void test_dm_both_ways(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1], line[512];
    h_node *r = h_start(h, "relay", "--relay", H_END);

    /* Alice: identity written by chapar itself, no daemon yet. */
    h_node *a = h_node_get(h, "alice");
    h_init(h, a, "alice-nick", aid, "--no-passphrase", H_END);
    h_start(h, "alice", "--peer", r->addr, H_END);
    char *out = h_ok(h, a, "id", H_END);
    snprintf(line, sizeof line, "%s\n", aid);
    assert_string_equal(out, line);
    free(out);

    /* Bob: a daemon without identity first; init goes through it. */
    static const char pass[] = "correct horse battery staple\n";
    char *pf = h_write_file(h, "bob.pass", pass, sizeof pass - 1);
    h_node *b = h_start(h, "bob", "--peer", r->addr, H_END);
    h_init(h, b, "bob-nick", bid, "--passphrase-file", pf, H_END);
    out = h_ok(h, b, "id", H_END);
    snprintf(line, sizeof line, "%s\n", bid);
    assert_string_equal(out, line);
    free(out);
    h_expect(h, r, "peers connected", H_EQ, 2);

    /* Alice adds Bob; Bob sees her request under her nick and accepts. */
    free(h_ok(h, a, "contact", "add", bid, "bob", H_END));
    out = h_await(h, b, aid, "contact", "requests", H_END);
    assert_non_null(strstr(out, "\talice-nick\t"));
    free(out);
    free(h_ok(h, b, "contact", "accept", aid, "alice", H_END));
    snprintf(line, sizeof line, "bob\t%s\testablished", bid);
    free(h_await(h, a, line, "contact", "list", H_END));
    snprintf(line, sizeof line, "alice\t%s\testablished", aid);
    free(h_await(h, b, line, "contact", "list", H_END));
    out = h_ok(h, b, "contact", "show", "alice", H_END);
    assert_non_null(strstr(out, "safety number: "));
    free(out);

    /* Alice -> Bob, and Bob -> Alice in Persian. */
    char m1[33], m2[33], m3[33];
    h_send(h, a, "bob", "hello bob, it is alice", m1);
    char *want = tsv_tail("alice", "alice", "hello bob, it is alice");
    free(h_await(h, b, want, "inbox", "--tsv", H_END));
    free(want);
    h_send(h, b, aid, PERSIAN, m2); /* by ID this time */
    want = tsv_tail("bob", "bob", PERSIAN);
    free(h_await(h, a, want, "inbox", "--tsv", H_END));
    free(want);
    h_await_state(h, a, m1, "delivered");
    h_await_state(h, b, m2, "delivered");

    /* The human form shows the same, unescaped. */
    out = h_ok(h, a, "inbox", H_END);
    assert_non_null(strstr(out, "  bob  bob: " PERSIAN "\n"));
    free(out);

    /* 20 KB from stdin: chunked, reassembled in order, escaped in TSV. */
    static char raw[20100], esc[20200];
    big_text(raw, sizeof raw, esc, sizeof esc);
    char *in = h_write_file(h, "big.txt", raw, strlen(raw));
    const char *argv[] = {h_bin("CHAPAR"), "--home", a->home, "send", "bob", "-", NULL};
    char *err = NULL;
    assert_int_equal(h_runv_in(h, in, &out, &err, argv), 0);
    assert_int_equal(strspn(out, "0123456789abcdef"), 32);
    memcpy(m3, out, 32);
    m3[32] = '\0';
    free(out);
    free(err);
    want = tsv_tail("alice", "alice", esc);
    out = h_await(h, b, want, "inbox", "--tsv", H_END);
    free(want);
    /* Exactly the two messages, 4 columns each. */
    assert_int_equal(h_lines(out), 2);
    for (char *p = out; *p; p = strchr(p, '\n') + 1) {
        int tabs = 0;
        for (char *q = p; *q != '\n'; q++)
            tabs += *q == '\t';
        assert_int_equal(tabs, 3);
    }
    free(out);
    h_await_state(h, a, m3, "delivered");

    /* Outbox lines: ID, TO, STATE. */
    out = h_ok(h, a, "outbox", H_END);
    snprintf(line, sizeof line, "%s\tbob\tdelivered\t", m1);
    assert_non_null(strstr(out, line));
    free(out);

    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

/* `inbox --wait` returns as soon as a message arrives, not at its
 * deadline. */
static void test_inbox_wait(void **state)
{
    h_ctx *h = *state;
    char m[33];
    h_node *a, *b;
    h_pair(h, &a, &b, NULL, NULL);

    /* Nothing new: --wait 1 returns after about a second, exit 0. */
    free(h_ok(h, b, "inbox", H_END));
    uint64_t t0 = chp_mono_ms();
    free(h_ok(h, b, "inbox", "--wait", "1", "--tsv", H_END));
    uint64_t idle = chp_mono_ms() - t0;
    assert_true(idle >= 900 && idle < 5000);

    const char *argv[] = {h_bin("CHAPAR"), "--home", b->home, "inbox",
                          "--wait",        "30",     "--tsv", NULL};
    pid_t w = h_spawn_aux(h, "wait.out", argv);
    /* Let it get through its first fetches (either way it must see it). */
    h_sleep_ms(300);
    t0 = chp_mono_ms();
    h_send(h, a, "bob", "are you there?", m);
    int st = h_reap(h, w, 20000);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    h_note(h, "inbox --wait returned %llu ms after the send",
           (unsigned long long)(chp_mono_ms() - t0));
    assert_true(chp_mono_ms() - t0 < 15000);
    char p[300];
    char *o = (char *)h_read_file(h_path(h, p, sizeof p, "wait.out"), NULL);
    assert_non_null(strstr(o, "\talice\talice\tare you there?\n"));
    free(o);
    h_stop(h, b);
    h_stop(h, a);
}

/* The line of `contact list` at n for id, or fails; name and state
 * filled from its fields (NAME, ID, STATE, FINGERPRINT). */
static void contact_line(h_ctx *h, const h_node *n, const char *id, char name[64], char st[32],
                         char fpr[32])
{
    char *out = h_ok(h, n, "contact", "list", H_END), idf[H_ID_LEN + 1];
    int found = 0;
    for (char *l = strtok(out, "\n"); l && !found; l = strtok(NULL, "\n"))
        found = sscanf(l, "%63[^\t]\t%62[^\t]\t%31[^\t]\t%31s", name, idf, st, fpr) == 4 &&
                !strcmp(idf, id);
    free(out);
    assert_true(found);
}

/* `send` to a user ID that is no contact yet: the contact is added under
 * its fingerprint, the message waits for the handshake and arrives once
 * the other side accepts. A request that is blocked is listed under the
 * nick it came with, never a blank name. */
static void test_send_to_id(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1], cid[H_ID_LEN + 1], m[33];
    char name[64], st[32], fpr[32];
    h_node *a = h_node_get(h, "alice"), *b = h_node_get(h, "bob"), *c = h_node_get(h, "carol");
    h_init(h, a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, b, "bob-nick", bid, "--no-passphrase", H_END);
    h_init(h, c, "carol-nick", cid, "--no-passphrase", H_END);
    h_start(h, "alice", H_END);
    h_start(h, "bob", "--peer", a->addr, H_END);
    h_start(h, "carol", "--peer", a->addr, H_END);

    h_send(h, a, bid, "hello by ID", m);
    contact_line(h, a, bid, name, st, fpr);
    assert_string_equal(st, "pending");
    assert_string_equal(name, fpr);
    char *out = h_await(h, b, aid, "contact", "requests", H_END);
    free(out);
    free(h_ok(h, b, "contact", "accept", aid, "alice", H_END));
    free(h_await(h, b, "\talice\talice\thello by ID\n", "inbox", "--tsv", H_END));
    h_await_state(h, a, m, "delivered");
    /* the name it was given is the one to use from now on */
    h_send(h, a, fpr, "and by name", m);
    free(h_await(h, b, "\talice\talice\tand by name\n", "inbox", "--tsv", H_END));

    /* Carol writes to Bob; Bob blocks her request. */
    free(h_ok(h, c, "contact", "add", bid, "bob", H_END));
    free(h_await(h, b, cid, "contact", "requests", H_END));
    free(h_ok(h, b, "contact", "block", cid, H_END));
    contact_line(h, b, cid, name, st, fpr);
    assert_string_equal(st, "blocked");
    assert_string_equal(name, "carol-nick");
    /* Blocked means her room posts too: Bob gets Alice's post written
     * after Carol's, never Carol's. */
    h_send(h, c, "#lan", "carol in the room", NULL);
    free(h_await(h, a, "\tcarol in the room\n", "inbox", "--tsv", H_END));
    h_send(h, a, "#lan", "alice after carol", NULL);
    char *inbox = h_await(h, b, "\talice after carol\n", "inbox", "--tsv", H_END);
    assert_null(strstr(inbox, "carol in the room"));
    free(inbox);

    h_stop(h, c);
    h_stop(h, b);
    h_stop(h, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dm_both_ways, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_inbox_wait, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_send_to_id, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
