/* test_quota.c - the user's own queued mail must not make a node refuse
 * mail for its user (issue 12, finding 2). Alice runs with the smallest
 * quota (1M) and holds more than that of her own envelopes, as when she
 * has written a lot to a contact who is offline; her contact Bob's DMs
 * still reach her inbox. A foreign envelope, which has no claim on her
 * disk, is refused, and the refusal shows: `store full: yes`, the
 * `rejected full` counter and one (rate-limited) line in her log.
 *
 * Over a megabyte of envelopes costs proof of work: the bulk of Alice's
 * own envelopes comes from chapar-mkenv (one-hour lifetime, the cheapest
 * proof for the bytes) on two processes while the contacts are made, and
 * goes into her store through `chapar debug publish`, the path of her own
 * envelopes (never evicted, never refused by quota). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define BULK      33    /* envelopes per mkenv process, two processes */
#define BULK_SIZE 16000 /* payload bytes: a 16473-byte envelope */
#define FOREIGN   3

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_own_mail_does_not_block_incoming(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1], cid[H_ID_LEN + 1], m[33], size[16];
    snprintf(size, sizeof size, "%d", BULK_SIZE);
    pid_t pw[2] = {h_mkenv_async(h, "own-a", BULK, "-s", size, H_END),
                   h_mkenv_async(h, "own-b", BULK, "-s", size, H_END)};
    h_mkenv(h, "foreign", FOREIGN, H_END);

    h_node *a = h_node_get(h, "alice"), *b = h_node_get(h, "bob"), *c = h_node_get(h, "carol");
    h_init(h, a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, b, "bob-nick", bid, "--no-passphrase", H_END);
    h_init(h, c, "carol-nick", cid, "--no-passphrase", H_END);
    h_start(h, "alice", "--quota", "1M", H_END);
    h_start(h, "bob", "--peer", a->addr, H_END);
    h_start(h, "carol", "--peer", a->addr, H_END);
    h_befriend(h, a, "alice", aid, b, "bob", bid);
    h_befriend(h, a, "alice", aid, c, "carol", cid);

    /* Carol goes away; Alice writes to her, and more than her quota of
     * her own envelopes piles up. */
    h_stop(h, c);
    h_send(h, a, "carol", "written while you were away", m);
    h_wait_exit0(h, pw[0], "chapar-mkenv own-a");
    h_wait_exit0(h, pw[1], "chapar-mkenv own-b");
    h_publish_par(h, a, "own-a", BULK);
    h_publish_par(h, a, "own-b", BULK);
    long long quota = h_status(h, a, "quota");
    assert_int_equal(quota, 1 << 20);
    assert_true(h_status(h, a, "bytes stored") > quota);

    /* Bob's DMs are mail for Alice: they reach her inbox. */
    static const char *const texts[] = {"are you there?", "the bakery is open", "سلام علی"};
    char sent[3][33];
    for (size_t i = 0; i < 3; i++)
        h_send(h, b, "alice", texts[i], sent[i]);
    for (size_t i = 0; i < 3; i++) {
        char line[128];
        snprintf(line, sizeof line, "\tbob\tbob\t%s\n", texts[i]);
        free(h_await(h, a, line, "inbox", "--tsv", H_END));
    }
    /* (Foreign envelopes her own evicted, the contact requests, may come
     * back from Bob in a sync meanwhile and be refused: that is right.) */
    /* Her own mail for Carol is all still there. */
    assert_true(h_status(h, a, "bytes stored") > quota);

    /* Her own envelopes fill the quota: she says so before refusing. */
    assert_true(h_status_has(h, a, "store full: yes\n"));

    /* Her receipts for them are her own envelopes, stored before they
     * leave: once Bob sees all three delivered, none is still to come
     * and the count below moves only with what she accepts. */
    for (size_t i = 0; i < 3; i++)
        h_await_state(h, b, sent[i], "delivered");

    /* Envelopes Alice would only carry for others: refused, counted and
     * logged once (rate-limited), not once per envelope. */
    long long stored = h_status(h, a, "envelopes stored");
    long long refused = h_status(h, a, "rejected full");
    h_publish_range(h, b, "foreign", 0, FOREIGN);
    refused = h_expect(h, a, "rejected full", H_GE, refused + FOREIGN);
    assert_true(h_status(h, a, "envelopes stored") < stored + FOREIGN);
    assert_true(h_status_has(h, a, "store full: yes\n"));
    size_t len;
    char *log = (char *)h_read_file(a->log, &len);
    assert_non_null(log);
    int lines = count_of(log, "store full: refused");
    free(log);
    /* One line, or two if the first refusal was over a minute ago. */
    assert_true(lines >= 1 && lines <= 2 && lines < refused);

    h_stop(h, a);
    h_stop(h, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_own_mail_does_not_block_incoming, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
