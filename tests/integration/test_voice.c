/* test_voice.c - voice notes (issue 16) between real chapard processes:
 * a 42.5 s Ogg Opus file built page by page (tests/unit/audio_build.c)
 * goes from Alice to Bob; both nodes work out its duration from the
 * bytes they hold, so `inbox`, `outbox` and `files` say "voice note
 * 0:42" while `files --tsv` keeps its seven columns. A file named .opus
 * that is no Ogg says no duration; an M4A from Bob says its own; a
 * stranger's Ogg in #lan, kept in the store, says its own before and
 * after `file save`. */
#include "harness.h"
#include "tests/unit/audio_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VOICE_DEADLINE_MS 60000 /* a few pieces of production proof of work */

static uint8_t buf[200000];

/* The `files --tsv` line of file id in out, with its tab count. */
static int tsv_tabs(const char *out, const char *id)
{
    const char *l = strstr(out, id);
    assert_non_null(l);
    int tabs = 0;
    for (; *l && *l != '\n'; l++)
        tabs += *l == '\t';
    return tabs;
}

static void test_voice_note(void **state)
{
    h_ctx *h = *state;
    h_node *a, *b;
    char vid[33], fid[33], mid[33], want[700];
    h_pair(h, &a, &b, NULL, NULL);

    /* 42.5 s after a pre-skip of 312 samples, 3 pieces (a bar's worth) */
    size_t n = ab_opus(buf, 312, 42500u * 48 + 312, 24, 1800);
    assert_true(n > 2 * 16256 && n < 3 * 16256);
    char *voice = strdup(h_write_file(h, "voice.opus", buf, n));
    /* random bytes under an audio name: no duration, the contract line as before */
    for (size_t i = 0; i < 5000; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    char *fake = strdup(h_write_file(h, "fake.opus", buf, 5000));
    h_send_file(h, a, "bob", voice, vid);
    h_send_file(h, a, "bob", fake, fid);
    char *out = h_ok(h, a, "history", "bob", "--tsv", H_END);
    assert_non_null(strstr(out, "[file] voice.opus (43.1 KiB) voice note 0:42"));
    assert_non_null(strstr(out, "[file] fake.opus (4.9 KiB)"));
    assert_null(strstr(out, "fake.opus (4.9 KiB) voice"));
    free(out);

    snprintf(want, sizeof want, "saved %s/files/alice/voice.opus", b->home);
    free(h_await_(h, b, want, VOICE_DEADLINE_MS, __FILE__, __LINE__, "files", "--tsv", H_END));
    snprintf(want, sizeof want, "saved %s/files/alice/fake.opus", b->home);
    out = h_await_(h, b, want, VOICE_DEADLINE_MS, __FILE__, __LINE__, "files", "--tsv", H_END);
    assert_int_equal(tsv_tabs(out, vid), 6); /* seven columns, no more */
    assert_int_equal(tsv_tabs(out, fid), 6);
    assert_null(strstr(out, "voice note"));
    free(out);
    out = h_ok(h, b, "files", H_END);
    assert_non_null(strstr(out, "voice.opus ("));
    snprintf(want, sizeof want, "voice.opus (%zu B) voice note 0:42  saved ", n);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "fake.opus (5000 B)  saved "));
    free(out);
    out = h_ok(h, b, "inbox", H_END);
    assert_non_null(strstr(out, "[file] voice.opus (43.1 KiB) voice note 0:42 saved to "));
    assert_non_null(strstr(out, "[file] fake.opus (4.9 KiB) saved to "));
    free(out);
    h_await_state_(h, a, vid, "delivered", VOICE_DEADLINE_MS, __FILE__, __LINE__);

    /* An M4A (moov after mdat, version 1 boxes) back from Bob: 1:15. */
    n = ab_m4a(buf, 1, 44100, 44100ull * 75 + 100, 0, 0, 20000, 1);
    char *m4a = strdup(h_write_file(h, "reply.m4a", buf, n));
    h_send_file(h, b, "alice", m4a, mid);
    snprintf(want, sizeof want, "saved %s/files/bob/reply.m4a", a->home);
    free(h_await_(h, a, want, VOICE_DEADLINE_MS, __FILE__, __LINE__, "files", "--tsv", H_END));
    out = h_ok(h, a, "files", H_END);
    assert_non_null(strstr(out, "reply.m4a ("));
    assert_non_null(strstr(out, " B) voice note 1:15  saved "));
    free(out);
    out = h_ok(h, a, "inbox", "--tsv", H_END);
    assert_non_null(strstr(out, "[file] reply.m4a (19.6 KiB) voice note 1:15 saved to "));
    free(out);

    /* From Carol, a stranger, in #lan: kept in Bob's node, not saved; the
     * duration is read from the pieces in its store, then from the file
     * `file save` wrote. */
    h_node *c = h_node_get(h, "carol");
    char cid[33];
    h_init(h, c, "carol-nick", NULL, "--no-passphrase", H_END);
    h_start(h, "carol", "--peer", a->addr, H_END);
    n = ab_opus(buf, 0, 48000u * 125, 6, 3000);
    char *room = strdup(h_write_file(h, "room.ogg", buf, n));
    h_send_file(h, c, "#lan", room, cid);
    free(
        h_await_(h, b, "room.ogg", VOICE_DEADLINE_MS, __FILE__, __LINE__, "files", "--tsv", H_END));
    out = h_await_(h, b, "voice note 2:05  complete", VOICE_DEADLINE_MS, __FILE__, __LINE__,
                   "files", H_END);
    free(out);
    out = h_ok(h, b, "inbox", "--tsv", H_END);
    assert_non_null(strstr(out, " KiB) voice note 2:05 (kept: chapar file save "));
    free(out);
    char dst[600];
    snprintf(dst, sizeof dst, "%s/kept.ogg", b->home);
    free(h_ok(h, b, "file", "save", cid, dst, H_END));
    out = h_ok(h, b, "files", H_END);
    snprintf(want, sizeof want, "room.ogg (%zu B) voice note 2:05  saved %s", n, dst);
    assert_non_null(strstr(out, want));
    free(out);
    free(room);
    free(voice);
    free(fake);
    free(m4a);
    h_stop(h, c);
    h_stop(h, a);
    h_stop(h, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_voice_note, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
