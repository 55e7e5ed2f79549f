/* test_contacts_readd.c - removing a contact and adding it again, on
 * either side and at any stage of the handshake, ends with both sides
 * established on the same keys: direct messages reach `delivered` both
 * ways. The steps follow each other as fast as the CLI runs, so the old
 * and the new introduction usually carry the same `created` second (the
 * case that used to leave the two sides on different keys, silently). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* Sleeps until just after a wall-clock second begins, so the steps that
 * follow share their `created` second. */
static void second_start(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    h_sleep_ms(1000 - (int)(tv.tv_usec / 1000) + 5);
}

/* x calls y `yname`, y calls x `xname`: a message each way arrives and is
 * marked delivered at its sender. */
static void both_ways(h_ctx *h, const h_node *x, const char *yname, const h_node *y,
                      const char *xname, const char *tag)
{
    char m1[33], m2[33], t1[128], t2[128], want[300];
    snprintf(t1, sizeof t1, "x to y %s", tag);
    snprintf(t2, sizeof t2, "y to x %s", tag);
    h_send(h, x, yname, t1, m1);
    h_send(h, y, xname, t2, m2);
    snprintf(want, sizeof want, "\t%s\t%s\t%s\n", xname, xname, t1);
    free(h_await(h, y, want, "inbox", "--tsv", H_END));
    snprintf(want, sizeof want, "\t%s\t%s\t%s\n", yname, yname, t2);
    free(h_await(h, x, want, "inbox", "--tsv", H_END));
    h_await_state(h, x, m1, "delivered");
    h_await_state(h, y, m2, "delivered");
}

static void two_nodes(h_ctx *h, h_node **x, h_node **y, char xid[H_ID_LEN + 1],
                      char yid[H_ID_LEN + 1])
{
    *x = h_node_get(h, "x");
    *y = h_node_get(h, "y");
    h_init(h, *x, "x-nick", xid, "--no-passphrase", H_END);
    h_init(h, *y, "y-nick", yid, "--no-passphrase", H_END);
    h_start(h, "x", H_END);
    h_start(h, "y", "--peer", (*x)->addr, H_END);
    h_expect(h, *x, "peers connected", H_EQ, 1);
}

/* The reviewer's case: X removes and re-adds Y while Y still holds X's
 * first request; Y then adds X. Y must answer the newest request. */
static void test_readd_while_requested(void **state)
{
    h_ctx *h = *state;
    char xid[H_ID_LEN + 1], yid[H_ID_LEN + 1];
    h_node *x, *y;
    two_nodes(h, &x, &y, xid, yid);
    second_start();
    free(h_ok(h, x, "contact", "add", yid, "yy", H_END));
    free(h_await(h, y, xid, "contact", "requests", H_END));
    free(h_ok(h, x, "contact", "remove", "yy", H_END));
    free(h_ok(h, x, "contact", "add", yid, "yy2", H_END));
    free(h_ok(h, y, "contact", "add", xid, "xx", H_END));
    both_ways(h, x, "yy2", y, "xx", "after re-add");
    h_stop(h, y);
    h_stop(h, x);
}

/* Y accepts X's first request before the second one reaches it: the
 * answer to the stale key must not establish X; Y re-keys on the newer
 * request. */
static void test_readd_answer_crosses(void **state)
{
    h_ctx *h = *state;
    char xid[H_ID_LEN + 1], yid[H_ID_LEN + 1];
    h_node *x, *y;
    two_nodes(h, &x, &y, xid, yid);
    second_start();
    free(h_ok(h, x, "contact", "add", yid, "yy", H_END));
    free(h_await(h, y, xid, "contact", "requests", H_END));
    free(h_ok(h, y, "contact", "accept", xid, "xx", H_END));
    free(h_ok(h, x, "contact", "remove", "yy", H_END));
    free(h_ok(h, x, "contact", "add", yid, "yy2", H_END));
    both_ways(h, x, "yy2", y, "xx", "crossed");
    h_stop(h, y);
    h_stop(h, x);
}

/* Established contacts: X removes and re-adds Y (once, then twice in a
 * second); later Y removes and re-adds X; both times messages flow again both ways. Then both
 * remove and both add at once (the requests cross). */
static void test_readd_after_established(void **state)
{
    h_ctx *h = *state;
    char xid[H_ID_LEN + 1], yid[H_ID_LEN + 1], line[200];
    h_node *x, *y;
    two_nodes(h, &x, &y, xid, yid);
    free(h_ok(h, x, "contact", "add", yid, "yy", H_END));
    free(h_await(h, y, xid, "contact", "requests", H_END));
    free(h_ok(h, y, "contact", "accept", xid, "xx", H_END));
    both_ways(h, x, "yy", y, "xx", "first");

    second_start();
    free(h_ok(h, x, "contact", "remove", "yy", H_END));
    free(h_ok(h, x, "contact", "add", yid, "yy", H_END));
    snprintf(line, sizeof line, "yy\t%s\testablished", yid);
    free(h_await(h, x, line, "contact", "list", H_END));
    both_ways(h, x, "yy", y, "xx", "x re-added");

    /* twice within a second: Y must re-key on the second request */
    second_start();
    free(h_ok(h, x, "contact", "remove", "yy", H_END));
    free(h_ok(h, x, "contact", "add", yid, "yy", H_END));
    free(h_ok(h, x, "contact", "remove", "yy", H_END));
    free(h_ok(h, x, "contact", "add", yid, "yy", H_END));
    both_ways(h, x, "yy", y, "xx", "x re-added twice");

    second_start();
    free(h_ok(h, y, "contact", "remove", "xx", H_END));
    free(h_ok(h, y, "contact", "add", xid, "xx", H_END));
    snprintf(line, sizeof line, "xx\t%s\testablished", xid);
    free(h_await(h, y, line, "contact", "list", H_END));
    both_ways(h, x, "yy", y, "xx", "y re-added");

    second_start();
    free(h_ok(h, x, "contact", "remove", "yy", H_END));
    free(h_ok(h, y, "contact", "remove", "xx", H_END));
    free(h_ok(h, x, "contact", "add", yid, "yy", H_END));
    free(h_ok(h, y, "contact", "add", xid, "xx", H_END));
    both_ways(h, x, "yy", y, "xx", "both re-added");
    h_stop(h, y);
    h_stop(h, x);
}

/* Names that would look like another are refused: a nick or a contact
 * name with an invisible or bidi code point, and accepting a request
 * under a nick that is already a contact's name. */
static void test_lookalike_names(void **state)
{
    h_ctx *h = *state;
    char xid[H_ID_LEN + 1], yid[H_ID_LEN + 1], zid[H_ID_LEN + 1];
    h_node *x, *y, *z = h_node_get(h, "z");
    char *out = NULL, *err = NULL;
    assert_int_not_equal(
        h_chapar(h, z, &out, &err, "init", "--nick", "sara\xe2\x80\x8b", "--no-passphrase", H_END),
        0);
    free(out);
    free(err);
    two_nodes(h, &x, &y, xid, yid);
    h_init(h, z, "y-nick", zid, "--no-passphrase", H_END);
    h_start(h, "z", "--peer", x->addr, H_END);
    assert_int_not_equal(
        h_chapar(h, x, &out, &err, "contact", "add", yid, "sara\xe2\x80\xae", H_END), 0);
    free(out);
    free(err);
    free(h_ok(h, x, "contact", "add", yid, "y-nick", H_END));
    free(h_ok(h, z, "contact", "add", xid, "x", H_END));
    free(h_await(h, x, zid, "contact", "requests", H_END));
    assert_int_not_equal(h_chapar(h, x, &out, &err, "contact", "accept", zid, H_END), 0);
    assert_non_null(strstr(err, "give a name"));
    free(out);
    free(err);
    /* a Persian name with ZWNJ inside is fine: "نیک‌نام" */
    free(h_ok(h, x, "contact", "accept", zid,
              "\xd9\x86\xdb\x8c\xda\xa9\xe2\x80\x8c\xd9\x86\xd8\xa7\xd9\x85", H_END));
    h_stop(h, z);
    h_stop(h, y);
    h_stop(h, x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readd_while_requested, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_readd_answer_crosses, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_readd_after_established, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_lookalike_names, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
