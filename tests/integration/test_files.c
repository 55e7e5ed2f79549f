/* test_files.c - files (issue 16, PROTOCOL.md §18.8) between real
 * chapard processes: 5 MiB both ways between contacts through a relay
 * while the recipient is off at first, byte for byte, "delivered" only
 * once complete; a link cut (the relay killed) in the middle costs only
 * the missing pieces; a file in a room from a stranger is listed but not
 * written until `file save`. Production proof of work throughout. */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_DEADLINE_MS 90000 /* 5 MiB of production proof of work on a busy machine */

/* DIR/name filled with size pseudo-random bytes (seeded); its path. */
static char *random_file(h_ctx *h, const char *name, size_t size, unsigned seed)
{
    uint8_t *b = malloc(size);
    assert_non_null(b);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (uint8_t)x;
    }
    char *p = h_write_file(h, name, b, size);
    free(b);
    return p;
}

static void assert_same(const char *a, const char *b)
{
    assert_int_equal(h_sh("cmp -s '%s' '%s'", a, b), 0);
}

/* The field k (0-based) of the `files --tsv` line of file id at n, into
 * buf; NULL when there is none. */
static char *files_field(h_ctx *h, const h_node *n, const char *id, int k, char *buf, size_t cap)
{
    char *out = h_ok(h, n, "files", "--tsv", H_END), *line = strstr(out, id), *ret = NULL;
    if (line) {
        for (int i = 0; i < k && line; i++)
            if ((line = strchr(line, '\t')))
                line++;
        if (line) {
            size_t l = strcspn(line, "\t\n");
            snprintf(buf, cap, "%.*s", (int)(l < cap ? l : cap - 1), line);
            ret = buf;
        }
    }
    free(out);
    return ret;
}

/* A relay, and Alice and Bob dialling it, contacts of each other. */
static void contacts_via_relay(h_ctx *h, h_node **r, h_node **a, h_node **b)
{
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1];
    *r = h_start(h, "relay", "--relay", H_END);
    *a = h_node_get(h, "alice");
    *b = h_node_get(h, "bob");
    h_init(h, *a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, *b, "bob-nick", bid, "--no-passphrase", H_END);
    h_start(h, "alice", "--peer", (*r)->addr, H_END);
    h_start(h, "bob", "--peer", (*r)->addr, H_END);
    h_befriend(h, *a, "alice", aid, *b, "bob", bid);
}

static void test_contacts_both_ways(void **state)
{
    h_ctx *h = *state;
    char id[33], st[600];
    h_node *r, *a, *b;
    contacts_via_relay(h, &r, &a, &b);

    /* Bob is off while Alice sends; the original is deleted at once. */
    h_stop(h, b);
    char *src = random_file(h, "photo.bin", 5u << 20, 1), copy[600];
    snprintf(copy, sizeof copy, "%s.orig", src);
    assert_int_equal(h_sh("cp '%s' '%s'", src, copy), 0);
    h_send_file(h, a, "bob", src, id);
    assert_int_equal(unlink(src), 0);
    char *out = h_ok(h, a, "outbox", "--tsv", H_END);
    assert_non_null(strstr(out, "[file] photo.bin (5.0 MiB)"));
    assert_non_null(strstr(out, "/323\n"));
    assert_null(strstr(out, "delivered"));
    free(out);
    h_await_state_(h, a, id, "sent", FILE_DEADLINE_MS, __FILE__, __LINE__);
    out = h_ok(h, a, "outbox", "--tsv", H_END);
    assert_non_null(strstr(out, "\tsent\t"));
    assert_non_null(strstr(out, " 323/323\n"));
    free(out);

    /* Bob comes back: the relay hands him every piece. */
    h_start(h, "bob", H_END);
    char saved[600];
    snprintf(saved, sizeof saved, "saved %s/files/alice/photo.bin", b->home);
    free(h_await_(h, b, saved, FILE_DEADLINE_MS, __FILE__, __LINE__, "files", "--tsv", H_END));
    assert_non_null(files_field(h, b, id, 4, st, sizeof st));
    assert_string_equal(st, "5242880");
    snprintf(saved, sizeof saved, "%s/files/alice/photo.bin", b->home);
    assert_same(copy, saved);
    out = h_ok(h, b, "inbox", "--tsv", H_END);
    assert_non_null(strstr(out, "[file] photo.bin (5.0 MiB) saved to "));
    free(out);
    h_await_state_(h, a, id, "delivered", FILE_DEADLINE_MS, __FILE__, __LINE__);

    /* And back, both online: same name twice is numbered. */
    char *src2 = random_file(h, "photo.bin", 5u << 20, 2), copy2[600];
    snprintf(copy2, sizeof copy2, "%s.2", src2);
    assert_int_equal(h_sh("cp '%s' '%s'", src2, copy2), 0);
    h_send_file(h, b, "alice", src2, id);
    snprintf(saved, sizeof saved, "saved %s/files/bob/photo.bin", a->home);
    free(h_await_(h, a, saved, FILE_DEADLINE_MS, __FILE__, __LINE__, "files", "--tsv", H_END));
    snprintf(saved, sizeof saved, "%s/files/bob/photo.bin", a->home);
    assert_same(copy2, saved);
    h_await_state_(h, b, id, "delivered", FILE_DEADLINE_MS, __FILE__, __LINE__);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

/* Three more files to #lan a second apart: `files` lists them by time,
 * the newest last (the daemon sorts them), in both forms,
 * seven TSV columns; the inbox line keeps the hint apart from the caption. */
static void files_by_time(h_ctx *h, const h_node *a, const h_node *b)
{
    static const char *const names[] = {"c-first.txt", "b-second.txt", "a-third.txt"};
    for (int i = 0; i < 3; i++) {
        char *src = random_file(h, names[i], 100, 10 + (uint32_t)i);
        if (i)
            h_sleep_ms(1100);
        char *out = h_ok(h, a, "send-file", "#lan", src, "--caption", "look", H_END);
        free(out);
    }
    /* complete, not only listed: a file is listed from its manifest on */
    free(h_await(h, b, "\ta-third.txt\t100\tcomplete\t", "files", "--tsv", H_END));
    char *tsv = h_ok(h, b, "files", "--tsv", H_END), *human = h_ok(h, b, "files", H_END);
    unsigned long long last = 0;
    int lines = 0;
    for (char *l = tsv; *l; lines++) {
        char *e = strchr(l, '\n'), *f = l;
        assert_non_null(e);
        int tabs = 0;
        for (char *t = l; t < e; t++)
            tabs += *t == '\t';
        assert_int_equal(tabs, 6); /* id conv sender name size state time */
        for (int k = 0; k < 6; k++)
            f = strchr(f, '\t') + 1;
        unsigned long long t = strtoull(f, NULL, 10);
        assert_true(t >= last);
        last = t;
        l = e + 1;
    }
    assert_int_equal(lines, 4);
    assert_true(strstr(tsv, names[0]) < strstr(tsv, names[1]));
    assert_true(strstr(tsv, names[1]) < strstr(tsv, names[2]));
    assert_true(strstr(human, names[0]) < strstr(human, names[1]));
    assert_true(strstr(human, names[1]) < strstr(human, names[2]));
    free(tsv);
    free(human);
    char *in = h_ok(h, b, "inbox", H_END);
    assert_non_null(strstr(in, "[file] a-third.txt (100 B) (kept: chapar file save "));
    assert_non_null(strstr(in, " PATH) — look"));
    free(in);
}

static void test_room_stranger(void **state)
{
    h_ctx *h = *state;
    char id[33], st[900], dst[600], path[900];
    h_node *a = h_node_get(h, "alice"), *b = h_node_get(h, "bob");
    h_init(h, a, "alice-nick", NULL, "--no-passphrase", H_END);
    h_init(h, b, "bob-nick", NULL, "--no-passphrase", H_END);
    h_start(h, "alice", H_END);
    h_start(h, "bob", "--peer", a->addr, H_END);
    char *src = random_file(h, ".evil name.jpg", 40000, 3);
    h_send_file(h, a, "#lan", src, id);
    /* above max-file (16 MiB by default): one line, exit 1 */
    char *big = h_write_file(h, "big.bin", "", 0), *err = NULL;
    assert_int_equal(h_sh("truncate -s 17M '%s'", big), 0);
    assert_int_equal(h_chapar(h, a, NULL, &err, "send-file", "#lan", big, H_END), 1);
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "max-file"));
    free(err);

    /* Listed, complete, not written anywhere. */
    free(h_await(h, b, "\tcomplete\t", "files", "--tsv", H_END));
    assert_non_null(files_field(h, b, id, 3, st, sizeof st));
    assert_string_equal(st, "evil name.jpg");
    snprintf(path, sizeof path, "%s/files", b->home);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0);

    /* Saved on request, byte for byte; a second save is refused. */
    snprintf(dst, sizeof dst, "%s/saved.jpg", h->dir);
    free(h_ok(h, b, "file", "save", id, dst, H_END));
    assert_same(src, dst);
    assert_non_null(files_field(h, b, id, 5, st, sizeof st));
    snprintf(path, sizeof path, "saved %s", dst);
    assert_string_equal(st, path);
    assert_int_equal(
        h_chapar(h, b, NULL, &err, "file", "save", "00112233445566778899aabbccddeeff", dst, H_END),
        1);
    assert_int_equal(h_lines(err), 1);
    free(err);
    files_by_time(h, a, b);
    h_stop(h, a);
    h_stop(h, b);
}

/* A link cut in the middle: the relay between them is killed once it
 * holds over 40% of the pieces (45%) and comes back on the same port; the file
 * completes, and the relay takes in fewer than 60% of the pieces again. */
static void test_link_cut(void **state)
{
    h_ctx *h = *state;
    char id[33], listen[64], saved[700];
    h_node *r, *a, *b;
    contacts_via_relay(h, &r, &a, &b);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)r->port);

    const long long pieces = 323; /* 5 MiB / 16256 */
    char *src = random_file(h, "cut.bin", 5u << 20, 4);
    long long base = h_status(h, r, "envelopes stored");
    h_send_file(h, a, "bob", src, id);
    h_expect_(h, r, "envelopes stored", H_GE, base + pieces * 9 / 20, FILE_DEADLINE_MS, __FILE__,
              __LINE__);
    h_kill9(h, r);
    long long held = 0;
    h_sleep_ms(300);
    r = h_start(h, "relay", "--relay", "--listen", listen, H_END);
    held = h_status(h, r, "envelopes stored") - base;
    h_note(h, "the relay held %lld of %lld pieces when killed", held, pieces);
    assert_true(held >= pieces * 2 / 5);

    snprintf(saved, sizeof saved, "saved %s/files/alice/cut.bin", b->home);
    free(h_await_(h, b, saved, FILE_DEADLINE_MS, __FILE__, __LINE__, "files", "--tsv", H_END));
    snprintf(saved, sizeof saved, "%s/files/alice/cut.bin", b->home);
    assert_same(src, saved);
    h_await_state_(h, a, id, "delivered", FILE_DEADLINE_MS, __FILE__, __LINE__);
    long long again = h_status(h, r, "accepted");
    h_note(h, "the relay took in %lld envelopes after its restart", again);
    assert_true(again < pieces * 3 / 5);
    h_stop(h, a);
    h_stop(h, b);
    h_stop(h, r);
}

/* One scenario per process (each has the harness's 110 s watchdog, and
 * each solves megabytes of production proof of work): ARGV[1] is both
 * (the default), room or cut; ctest runs the three. */
int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "both";
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_contacts_both_ways, h_setup, h_teardown)};
    const struct CMUnitTest room[] = {
        cmocka_unit_test_setup_teardown(test_room_stranger, h_setup, h_teardown)};
    const struct CMUnitTest cut[] = {
        cmocka_unit_test_setup_teardown(test_link_cut, h_setup, h_teardown)};
    if (!strcmp(which, "room"))
        return cmocka_run_group_tests(room, NULL, NULL);
    if (!strcmp(which, "cut"))
        return cmocka_run_group_tests(cut, NULL, NULL);
    return cmocka_run_group_tests(both, NULL, NULL);
}
