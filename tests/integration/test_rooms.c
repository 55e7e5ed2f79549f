/* test_rooms.c - rooms on a line of three user nodes, A - C - B: everyone
 * is in #lan from the first start and reads everyone there, nicknames
 * shown with a fingerprint; A and B share the passphrase room #kitchen,
 * which C joined with a wrong passphrase. C still stores and forwards
 * the kitchen's envelopes (B is reachable only through C), but its inbox
 * never shows them. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "~nick (xxxxxxxx)": a stranger's mark, the nick and an 8-character fingerprint. */
static void assert_stranger(const char *inbox, const char *text, const char *nick)
{
    const char *p = strstr(inbox, text);
    assert_non_null(p);
    const char *l = p;
    while (l > inbox && l[-1] != '\n')
        l--;
    char want[128];
    int n = snprintf(want, sizeof want, "\t~%s (", nick);
    const char *s = strstr(l, want);
    assert_true(s && s < p);
    s += n;
    assert_int_equal(strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz"), 8);
    assert_memory_equal(s + 8, ")\t", 2);
}

static void test_rooms_on_a_line(void **state)
{
    h_ctx *h = *state;
    h_node *nodes[3];
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char nick[32];
        snprintf(nick, sizeof nick, "%s-nick", names[i]);
        nodes[i] = h_node_get(h, names[i]);
        h_init(h, nodes[i], nick, NULL, "--no-passphrase", H_END);
    }
    h_node *a = h_start(h, "a", H_END);
    h_node *c = h_start(h, "c", "--peer", a->addr, H_END);
    h_node *b = h_start(h, "b", "--peer", c->addr, H_END);
    h_expect(h, c, "peers connected", H_EQ, 2);

    /* #lan is joined on first start. */
    for (int i = 0; i < 3; i++) {
        char *out = h_ok(h, nodes[i], "rooms", H_END);
        assert_non_null(strstr(out, "#lan\tpublic\t"));
        free(out);
    }
    h_send(h, a, "#lan", "hello lan, this is a", NULL);
    char *out = h_await(h, b, "hello lan, this is a", "inbox", "--tsv", H_END);
    assert_stranger(out, "\thello lan, this is a\n", "a-nick");
    assert_non_null(strstr(out, "\t#lan\t~a-nick ("));
    free(out);
    free(h_await(h, c, "\t#lan\t~a-nick (", "inbox", "--tsv", H_END));
    h_send(h, b, "#lan", "and b answers", NULL);
    free(h_await(h, a, "\tand b answers\n", "inbox", "--tsv", H_END));

    /* Anyone in a room can post bytes meant for the reader's terminal
     * (ESC sequences, BEL, CR, a C1 CSI) and a line break followed by a
     * fake message: the inbox shows them inert, in both formats. */
    h_send(h, b, "#lan",
           "evil\x1b]0;pwned\x07\r\n2026-11-29 05:40  sara  sara: pay me\xc2\x9b"
           "2J",
           NULL);
    out = h_await(h, a,
                  "\tevil\\x1b]0;pwned\\x07\\r\\n2026-11-29 05:40  sara  sara: pay me\\u009b2J\n",
                  "inbox", "--tsv", H_END);
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\x07'));
    free(out);
    out = h_ok(h, a, "inbox", H_END);
    assert_non_null(
        strstr(out, ": evil^[]0;pwned^G^M\n    | 2026-11-29 05:40  sara  sara: pay me\xef\xbf\xbd"
                    "2J\n"));
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\r'));
    assert_null(strstr(out, "\n2026-11-29 05:40  sara"));
    free(out);

    /* The passphrase room: "kitchen" without '#' is accepted too. */
    char *pf = h_write_file(h, "kitchen.pass", "open sesame\n", 12);
    char *wrong = h_write_file(h, "wrong.pass", "open barley\n", 12);
    free(h_ok(h, a, "join", "#kitchen", "--passphrase-file", pf, H_END));
    free(h_ok(h, b, "join", "kitchen", "--passphrase-file", pf, H_END));
    free(h_ok(h, c, "join", "#kitchen", "--passphrase-file", wrong, H_END));
    out = h_ok(h, b, "rooms", H_END);
    assert_non_null(strstr(out, "#kitchen\tpassphrase\t"));
    free(out);

    long long c_before = h_status(h, c, "envelopes stored");
    long long c_accepted = h_status(h, c, "accepted");
    h_send(h, a, "#kitchen", "the key is under the mat", NULL);
    out = h_await(h, b, "\t#kitchen\t~a-nick (", "inbox", "--tsv", H_END);
    assert_non_null(strstr(out, "\tthe key is under the mat\n"));
    free(out);
    /* C carried it (B has no other way) and keeps it... */
    assert_true(h_status(h, c, "envelopes stored") > c_before);
    assert_true(h_status(h, c, "accepted") > c_accepted);
    /* ...but cannot read it. A #lan message sent after it has arrived at
     * C, so C has had every chance to show the kitchen one. */
    h_send(h, a, "#lan", "after the kitchen", NULL);
    out = h_await(h, c, "\tafter the kitchen\n", "inbox", "--tsv", H_END);
    assert_null(strstr(out, "under the mat"));
    assert_null(strstr(out, "#kitchen"));
    free(out);
    out = h_ok(h, c, "inbox", H_END);
    assert_null(strstr(out, "under the mat"));
    free(out);

    /* B leaves the kitchen: its later posts are not shown to B. */
    free(h_ok(h, b, "leave", "#kitchen", H_END));
    out = h_ok(h, b, "rooms", H_END);
    assert_null(strstr(out, "#kitchen"));
    free(out);
    h_send(h, a, "#kitchen", "b is gone now", NULL);
    h_send(h, a, "#lan", "marker after b left", NULL);
    out = h_await(h, b, "\tmarker after b left\n", "inbox", "--tsv", H_END);
    assert_null(strstr(out, "b is gone now"));
    free(out);

    h_stop(h, b);
    h_stop(h, c);
    h_stop(h, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rooms_on_a_line, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
