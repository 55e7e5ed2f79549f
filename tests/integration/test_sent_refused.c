/* test_sent_refused.c - "sent" means a neighbour durably holds the
 * envelope (issue 12, finding 3 and the quota part of "What to build"): a
 * neighbour whose store refuses it (full of its own mail) never makes
 * Alice's message `sent`; once it has room and takes it by sync, it is.
 * The bulk of the neighbour's own mail is made as in test_quota.c. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BULK      33    /* envelopes per mkenv process, two processes */
#define BULK_SIZE 16000 /* payload bytes: a 16473-byte envelope */

/* "sent" means a neighbour holds it: a neighbour that refuses the
 * envelope (its store is full) never makes it `sent`; once it has room
 * and takes it by sync, it is. */
static void test_refusal_is_not_sent(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], cid[H_ID_LEN + 1], nid[H_ID_LEN + 1], m[33], size[16];
    snprintf(size, sizeof size, "%d", BULK_SIZE);
    pid_t pw[2] = {h_mkenv_async(h, "own-a", BULK, "-s", size, H_END),
                   h_mkenv_async(h, "own-b", BULK, "-s", size, H_END)};
    h_node *a = h_node_get(h, "alice"), *c = h_node_get(h, "carol"), *n = h_node_get(h, "nima");
    h_init(h, a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, c, "carol-nick", cid, "--no-passphrase", H_END);
    h_init(h, n, "nima-nick", nid, "--no-passphrase", H_END);
    h_start(h, "nima", "--quota", "1M", H_END);
    h_start(h, "alice", "--peer", n->addr, H_END);
    h_start(h, "carol", "--peer", n->addr, H_END);
    h_befriend(h, a, "alice", aid, c, "carol", cid);
    h_stop(h, c);

    /* Nima's own mail fills his quota: he refuses everything foreign. */
    h_wait_exit0(h, pw[0], "chapar-mkenv own-a");
    h_wait_exit0(h, pw[1], "chapar-mkenv own-b");
    h_publish_par(h, n, "own-a", BULK);
    h_publish_par(h, n, "own-b", BULK);
    assert_true(h_status_has(h, n, "store full: yes\n"));

    long long refused = h_status(h, n, "rejected full");
    h_send(h, a, "carol", "nobody may hold this yet", m);
    h_expect(h, n, "rejected full", H_GT, refused);
    /* Several QUERY rounds (every 2 s) later, still not sent. */
    h_sleep_ms(5000);
    char *out = h_ok(h, a, "outbox", H_END);
    char line[128];
    snprintf(line, sizeof line, "%s\tcarol\tqueued", m);
    if (!strstr(out, line))
        fail_msg("a refused message is not 'queued' in Alice's outbox:\n%s", out);
    free(out);

    /* Nima gets a larger quota: the next sync gives him the envelope, and
     * only now is it sent. */
    char listen[64]; /* the same port: Alice dials the address she knows */
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)n->port);
    h_stop(h, n);
    h_start(h, "nima", "--quota", "64M", "--listen", listen, H_END);
    h_await_state(h, a, m, "sent");
    h_stop(h, a);
    h_stop(h, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refusal_is_not_sent, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
