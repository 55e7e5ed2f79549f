/* test_locked.c - "if it reached my laptop, I will read it; if it says
 * sent, a neighbour holds it" (issue 12, findings 1 and 3): mail that
 * reaches a passphrase user's store while the identity is locked is read
 * once she unlocks, also across a kill -9 while locked; and a message
 * that reaches the neighbour by sync (the neighbour dialled and asked for
 * it), not by push, turns `sent`. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char pass[] = "correct horse battery staple\n";

/* Alice (no passphrase) and Bob (passphrase) are contacts through a relay. */
static void pair(h_ctx *h, h_node **r, h_node **a, h_node **b, char *pf)
{
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1];
    *r = h_start(h, "relay", "--relay", H_END);
    *a = h_node_get(h, "alice");
    *b = h_node_get(h, "bob");
    h_init(h, *a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, *b, "bob-nick", bid, "--passphrase-file", pf, H_END);
    h_start(h, "alice", "--peer", (*r)->addr, H_END);
    h_start(h, "bob", "--peer", (*r)->addr, H_END);
    free(h_ok(h, *b, "unlock", "--passphrase-file", pf, H_END));
    h_befriend(h, *a, "alice", aid, *b, "bob", bid);
}

static void assert_locked_inbox_empty(h_ctx *h, const h_node *n)
{
    char *out = NULL, *err = NULL;
    int rc = h_chapar(h, n, &out, &err, "inbox", "--tsv", H_END);
    /* Locked: the inbox cannot be read (an error), never a wrong answer. */
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "lock"));
    free(out);
    free(err);
}

static void test_mail_stored_while_locked_is_read(void **state)
{
    h_ctx *h = *state;
    char *pf = h_write_file(h, "bob.pass", pass, sizeof pass - 1);
    h_node *r, *a, *b;
    pair(h, &r, &a, &b, pf);

    /* Bob's node restarts, locked: it syncs with the relay, and what Alice
     * writes now reaches his store before he types his passphrase. */
    h_stop(h, b);
    h_start(h, "bob", H_END);
    h_expect(h, b, "peers connected", H_EQ, 1);
    long long before = h_status(h, b, "envelopes stored");
    char m[5][33], text[64], want[128];
    for (int i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "while you were locked %d", i);
        h_send(h, a, "bob", text, m[i]);
    }
    for (int i = 0; i < 5; i++)
        h_await_state(h, a, m[i], "sent");
    h_expect(h, b, "envelopes stored", H_GE, before + 5);
    assert_locked_inbox_empty(h, b);

    /* He unlocks: every one of them is read, and Alice sees them arrive. */
    free(h_ok(h, b, "unlock", "--passphrase-file", pf, H_END));
    for (int i = 0; i < 5; i++) {
        snprintf(want, sizeof want, "\talice\talice\twhile you were locked %d\n", i);
        free(h_await(h, b, want, "inbox", "--tsv", H_END));
    }
    for (int i = 0; i < 5; i++)
        h_await_state(h, a, m[i], "delivered");

    /* Locked again, mail arrives, and the node is killed before anyone
     * unlocks it: the next start still reads it. */
    h_stop(h, b);
    h_start(h, "bob", H_END);
    h_expect(h, b, "peers connected", H_EQ, 1);
    before = h_status(h, b, "envelopes stored");
    char late[33];
    h_send(h, a, "bob", "after the crash", late);
    h_await_state(h, a, late, "sent");
    h_expect(h, b, "envelopes stored", H_GE, before + 1);
    h_kill9(h, b);
    h_start(h, "bob", H_END);
    free(h_ok(h, b, "unlock", "--passphrase-file", pf, H_END));
    free(h_await(h, b, "\talice\talice\tafter the crash\n", "inbox", "--tsv", H_END));
    h_await_state(h, a, late, "delivered");

    /* Exactly once each: 6 messages, no copies from the re-examination. */
    char *out = h_ok(h, b, "inbox", "--tsv", H_END);
    assert_int_equal(h_lines(out), 6);
    free(out);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

/* Alice writes while she has no neighbour; the relay then dials her and
 * fetches the message by sync (it initiates; Alice pushes nothing on her
 * own). The relay holds it, so Alice's outbox must say `sent`. */
static void test_sent_by_sync(void **state)
{
    h_ctx *h = *state;
    char *pf = h_write_file(h, "bob.pass", pass, sizeof pass - 1);
    h_node *r, *a, *b;
    pair(h, &r, &a, &b, pf);
    h_stop(h, b);

    free(h_ok(h, a, "peer", "remove", r->addr, H_END));
    h_expect(h, a, "peers connected", H_EQ, 0);
    char m[33];
    h_send(h, a, "bob", "carried by sync", m);
    char *out = h_ok(h, a, "outbox", H_END);
    char line[128];
    snprintf(line, sizeof line, "%s\tbob\tqueued", m);
    assert_non_null(strstr(out, line));
    free(out);

    long long before = h_status(h, r, "envelopes stored");
    free(h_ok(h, r, "peer", "add", a->addr, H_END));
    h_expect(h, r, "envelopes stored", H_GT, before);
    h_await_state(h, a, m, "sent");

    /* And Bob, back later and unlocked, gets it from the relay. */
    h_start(h, "bob", H_END);
    free(h_ok(h, b, "unlock", "--passphrase-file", pf, H_END));
    free(h_await(h, b, "\talice\talice\tcarried by sync\n", "inbox", "--tsv", H_END));
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

/* Occurrences of needle in hay. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* 20 rounds of Bob's node going down (cleanly or by kill -9), coming back
 * locked and being unlocked, while Alice keeps writing to him and to
 * #lan: every message is in his inbox exactly once at the end. */
static void test_soak_lock_cycles(void **state)
{
    h_ctx *h = *state;
    char *pf = h_write_file(h, "bob.pass", pass, sizeof pass - 1);
    h_node *r, *a, *b;
    pair(h, &r, &a, &b, pf);
    enum { ROUNDS = 20 };
    char text[64];
    int sent = 0;
    for (int i = 0; i < ROUNDS; i++) {
        if (i % 3 == 1)
            h_kill9(h, b); /* a crash at an arbitrary moment */
        else
            h_stop(h, b);
        snprintf(text, sizeof text, "dm %d while down", i);
        h_send(h, a, "bob", text, NULL);
        h_start(h, "bob", H_END);
        snprintf(text, sizeof text, "post %d while locked", i);
        if (i % 2 == 0) /* every other round: a node paces its own posts (8, then one per 7 s) */
            free(h_ok(h, a, "send", "#lan", text, H_END));
        snprintf(text, sizeof text, "dm %d while locked", i);
        h_send(h, a, "bob", text, NULL);
        if (i % 2 == 0) /* every other round the node restarts still locked */
            free(h_ok(h, b, "unlock", "--passphrase-file", pf, H_END));
        snprintf(text, sizeof text, "dm %d after", i);
        h_send(h, a, "bob", text, NULL);
        sent += 3;
    }
    h_stop(h, b);
    h_start(h, "bob", H_END);
    free(h_ok(h, b, "unlock", "--passphrase-file", pf, H_END));
    snprintf(text, sizeof text, "\tdm %d after\n", ROUNDS - 1);
    free(h_await(h, b, text, "inbox", "--tsv", H_END));
    snprintf(text, sizeof text, "\tpost %d while locked\n", ROUNDS - 2);
    char *out = h_await(h, b, text, "inbox", "--tsv", H_END);
    for (int i = 0; i < ROUNDS; i++) {
        static const char *const what[][2] = {{"dm", "while down"},
                                              {"dm", "while locked"},
                                              {"dm", "after"},
                                              {"post", "while locked"}};
        for (size_t k = 0; k < (i % 2 ? 3u : 4u); k++) {
            char needle[64];
            snprintf(needle, sizeof needle, "\t%s %d %s\n", what[k][0], i, what[k][1]);
            if (count(out, needle) != 1)
                fail_msg("round %d: '%s' is in Bob's inbox %d times", i, needle + 1,
                         count(out, needle));
        }
    }
    assert_int_equal(sent, 3 * ROUNDS);
    free(out);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mail_stored_while_locked_is_read, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_sent_by_sync, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_soak_lock_cycles, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
