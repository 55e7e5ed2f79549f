/* test_tui_model.c - the TUI's curses-free parts: wide-char input editing
 * over Persian and CJK, word delete, history, completion, command
 * parsing, conversations and unread counts, history replies, room titles,
 * the status bar's reading of `status`, the node's life (down, restart
 * backoff), wrapping, and random input that must never crash any of them. */
#include "ui-tui/cmd.h"
#include "ui-tui/input.h"
#include "ui-tui/life.h"
#include "ui-tui/model.h"
#include "ui-tui/wtext.h"

#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The line as UTF-8, in a static buffer. */
static const char *line_of(const chp_input *in)
{
    static char buf[4096];
    char *s = chp_wt_encode(chp_input_text(in), chp_input_len(in), NULL);
    assert_non_null(s);
    snprintf(buf, sizeof buf, "%s", s);
    free(s);
    return buf;
}

static chp_input *with_text(const char *s)
{
    chp_input *in = chp_input_new();
    assert_non_null(in);
    chp_input_insert_utf8(in, s);
    return in;
}

static void test_persian_cursor(void **state)
{
    (void)state;
    chp_input *in = with_text("سلام دنیا");
    assert_int_equal(chp_input_len(in), 9); /* 9 code points, 2 bytes each but the space */
    assert_int_equal(chp_input_cursor(in), 9);
    chp_input_left(in);
    chp_input_left(in);
    assert_int_equal(chp_input_cursor(in), 7);
    assert_int_equal(chp_input_insert(in, L'x'), CHP_OK);
    assert_string_equal(line_of(in), "سلام دنxیا");
    chp_input_home(in);
    assert_int_equal(chp_input_cursor(in), 0);
    chp_input_right(in);
    chp_input_delete(in); /* the lam */
    assert_string_equal(line_of(in), "سام دنxیا");
    chp_input_end(in);
    chp_input_backspace(in);
    assert_string_equal(line_of(in), "سام دنxی");
    /* cells: every Persian letter is one cell wide */
    size_t first;
    int col;
    chp_input_view(in, 40, &first, &col);
    assert_int_equal(first, 0);
    assert_int_equal(col, 8);
    chp_input_destroy(&in);
    assert_null(in);
}

static void test_marks_move_with_their_letter(void **state)
{
    (void)state;
    /* seen with a fatha (U+064E), a zero-width combining mark */
    chp_input *in = with_text("سَلام");
    assert_int_equal(chp_input_len(in), 5);
    chp_input_home(in);
    chp_input_right(in);
    assert_int_equal(chp_input_cursor(in), 2); /* over seen and its fatha */
    chp_input_left(in);
    assert_int_equal(chp_input_cursor(in), 0);
    chp_input_delete(in); /* deletes seen with its fatha */
    assert_string_equal(line_of(in), "لام");
    chp_input_destroy(&in);

    in = with_text("سَ");
    chp_input_backspace(in); /* backspace takes the mark alone */
    assert_string_equal(line_of(in), "س");
    chp_input_destroy(&in);
}

static void test_cjk_width(void **state)
{
    (void)state;
    chp_input *in = with_text("世界");
    size_t first;
    int col;
    chp_input_view(in, 40, &first, &col);
    assert_int_equal(col, 4); /* two double-width characters */
    chp_input_left(in);
    chp_input_view(in, 40, &first, &col);
    assert_int_equal(chp_input_cursor(in), 1);
    assert_int_equal(col, 2);
    assert_int_equal(chp_input_insert(in, L'a'), CHP_OK);
    assert_string_equal(line_of(in), "世a界");
    /* A narrow field scrolls so that the cursor stays visible. */
    chp_input_clear(in);
    chp_input_insert_utf8(in, "世界世界世界世界世界");
    chp_input_view(in, 8, &first, &col);
    assert_true(first > 0);
    assert_true(col >= 0 && col <= 6);
    assert_int_equal(chp_wt_width(chp_input_text(in) + first, chp_input_len(in) - first),
                     (size_t)col);
    chp_input_destroy(&in);
}

static void test_word_delete(void **state)
{
    (void)state;
    chp_input *in = with_text("hello  big world");
    chp_input_word_delete(in);
    assert_string_equal(line_of(in), "hello  big ");
    chp_input_word_delete(in);
    assert_string_equal(line_of(in), "hello  ");
    chp_input_word_delete(in);
    assert_string_equal(line_of(in), "");
    chp_input_word_delete(in); /* at the start: nothing happens */
    assert_string_equal(line_of(in), "");
    chp_input_destroy(&in);

    in = with_text("سلام دنیا");
    chp_input_word_delete(in);
    assert_string_equal(line_of(in), "سلام ");
    chp_input_destroy(&in);

    /* in the middle: only what is before the cursor goes */
    in = with_text("one two three");
    for (int i = 0; i < 6; i++)
        chp_input_left(in);
    chp_input_word_delete(in);
    assert_string_equal(line_of(in), "one  three");
    assert_int_equal(chp_input_cursor(in), 4);
    chp_input_kill_end(in);
    assert_string_equal(line_of(in), "one ");
    chp_input_left(in);
    chp_input_kill_start(in);
    assert_string_equal(line_of(in), " ");
    chp_input_destroy(&in);
}

static char *take(chp_input *in)
{
    size_t len;
    char *s = chp_input_take(in, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    assert_int_equal(chp_input_len(in), 0);
    return s;
}

static void test_history(void **state)
{
    (void)state;
    chp_input *in = chp_input_new();
    const char *lines[] = {"one", "دو", "two", "two"};
    for (int i = 0; i < 4; i++) {
        chp_input_insert_utf8(in, lines[i]);
        free(take(in));
    }
    chp_input_insert_utf8(in, "draft");
    chp_input_history_prev(in);
    assert_string_equal(line_of(in), "two");
    chp_input_history_prev(in); /* "two" twice in a row is kept once */
    assert_string_equal(line_of(in), "دو");
    chp_input_history_prev(in);
    assert_string_equal(line_of(in), "one");
    chp_input_history_prev(in); /* the oldest stays */
    assert_string_equal(line_of(in), "one");
    chp_input_history_next(in);
    chp_input_history_next(in);
    assert_string_equal(line_of(in), "two");
    chp_input_history_next(in);
    assert_string_equal(line_of(in), "draft");
    chp_input_history_next(in);
    assert_string_equal(line_of(in), "draft");

    /* secret lines never reach the history */
    chp_input_clear(in);
    chp_input_set_secret(in, 1);
    chp_input_insert_utf8(in, "hunter2");
    char *s = take(in);
    assert_string_equal(s, "hunter2");
    free(s);
    chp_input_history_prev(in); /* disabled while secret */
    assert_string_equal(line_of(in), "");
    chp_input_set_secret(in, 0);
    chp_input_history_prev(in);
    assert_string_equal(line_of(in), "two");

    /* nor does a room's passphrase typed with /join; the room alone does */
    chp_input_clear(in);
    chp_input_insert_utf8(in, "/join #kitchen open sesame");
    free(take(in));
    chp_input_history_prev(in);
    assert_string_equal(line_of(in), "two");
    chp_input_clear(in);
    chp_input_insert_utf8(in, "/join #kitchen");
    free(take(in));
    chp_input_history_prev(in);
    assert_string_equal(line_of(in), "/join #kitchen");
    chp_input_destroy(&in);
}

static void test_completion(void **state)
{
    (void)state;
    size_t n;
    const chp_cmd_spec *t = chp_cmd_table(&n);
    const char *cmds[32];
    for (size_t i = 0; i < n; i++)
        cmds[i] = t[i].name;
    const char *names[] = {"ali", "Alice", "#lan", "سارا"};

    chp_input *in = with_text("/jo");
    assert_int_equal(chp_input_complete(in, cmds, n, names, 4), 1);
    assert_string_equal(line_of(in), "/join ");
    chp_input_insert_utf8(in, "#l");
    assert_int_equal(chp_input_complete(in, cmds, n, names, 4), 1);
    assert_string_equal(line_of(in), "/join #lan ");
    chp_input_destroy(&in);

    in = with_text("hi AL");
    assert_int_equal(chp_input_complete(in, cmds, n, names, 4), 2);
    assert_string_equal(line_of(in), "hi ali ");
    assert_int_equal(chp_input_complete(in, cmds, n, names, 4), 2);
    assert_string_equal(line_of(in), "hi Alice ");
    assert_int_equal(chp_input_complete(in, cmds, n, names, 4), 2);
    assert_string_equal(line_of(in), "hi ali ");
    chp_input_insert_utf8(in, "سا");
    assert_int_equal(chp_input_complete(in, cmds, n, names, 4), 1);
    assert_string_equal(line_of(in), "hi ali سارا ");
    chp_input_insert_utf8(in, "zz");
    assert_int_equal(chp_input_complete(in, cmds, n, names, 4), 0);
    assert_string_equal(line_of(in), "hi ali سارا zz");
    chp_input_destroy(&in);

    /* a "/" word that is not first is a name, not a command */
    in = with_text("x /h");
    assert_int_equal(chp_input_complete(in, cmds, n, names, 4), 0);
    chp_input_destroy(&in);
    /* the completion lands before the text after the cursor */
    in = with_text("/he tail");
    for (int i = 0; i < 5; i++)
        chp_input_left(in);
    assert_int_equal(chp_input_complete(in, cmds, n, names, 4), 1);
    assert_string_equal(line_of(in), "/help  tail");
    chp_input_destroy(&in);
}

static void test_commands(void **state)
{
    (void)state;
    chp_cmd c;
    assert_int_equal(chp_cmd_parse("/msg ali hello there ", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_MSG);
    assert_int_equal(c.argc, 2);
    assert_string_equal(c.argv[0], "ali");
    assert_string_equal(c.argv[1], "hello there");
    chp_cmd_fini(&c);

    assert_int_equal(chp_cmd_parse("/join lan", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_JOIN);
    assert_string_equal(c.argv[0], "#lan");
    chp_cmd_fini(&c);
    assert_int_equal(chp_cmd_parse("/join #secret two words", &c), CHP_OK);
    assert_int_equal(c.argc, 2);
    assert_string_equal(c.argv[0], "#secret");
    assert_string_equal(c.argv[1], "two words");
    chp_cmd_fini(&c);
    assert_int_equal(chp_cmd_parse("/leave", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_LEAVE);
    assert_int_equal(c.argc, 0);
    chp_cmd_fini(&c);
    assert_int_equal(chp_cmd_parse("/leave   x", &c), CHP_OK);
    assert_string_equal(c.argv[0], "#x");
    chp_cmd_fini(&c);

    assert_int_equal(chp_cmd_parse("/add chp1abc Sara Tehrani", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_ADD);
    assert_string_equal(c.argv[0], "chp1abc");
    assert_string_equal(c.argv[1], "Sara Tehrani");
    chp_cmd_fini(&c);
    assert_int_equal(chp_cmd_parse("/add chp1abc", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_USAGE);
    assert_string_equal(c.text, "/add ID NAME");
    chp_cmd_fini(&c);
    assert_int_equal(chp_cmd_parse("/quit now", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_USAGE);
    chp_cmd_fini(&c);
    assert_int_equal(chp_cmd_parse("/frobnicate x", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_UNKNOWN);
    assert_string_equal(c.argv[0], "/frobnicate");
    chp_cmd_fini(&c);
    assert_int_equal(chp_cmd_parse("/nick  دریا ", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_NICK);
    assert_string_equal(c.argv[0], "دریا");
    chp_cmd_fini(&c);

    const struct {
        const char *line;
        chp_cmd_kind kind;
    } simple[] = {{"/help", CHP_CMD_HELP},
                  {"/contacts", CHP_CMD_CONTACTS},
                  {"/id", CHP_CMD_ID},
                  {"/id ali", CHP_CMD_ID},
                  {"/peer", CHP_CMD_PEER},
                  {"/peer 1.2.3.4:7667/chpn1x", CHP_CMD_PEER},
                  {"/wipe", CHP_CMD_WIPE},
                  {"/quit", CHP_CMD_QUIT},
                  {"/accept ali", CHP_CMD_ACCEPT},
                  {"/block ali", CHP_CMD_BLOCK},
                  {"/discovery", CHP_CMD_DISCOVERY},
                  {"/discovery off", CHP_CMD_DISCOVERY},
                  {"/discovery on now", CHP_CMD_USAGE},
                  {"/bundle import /media/s/x.bundle", CHP_CMD_BUNDLE},
                  {"/bundle export", CHP_CMD_USAGE},
                  {"/msg", CHP_CMD_USAGE},
                  {"/", CHP_CMD_UNKNOWN}};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        assert_int_equal(chp_cmd_parse(simple[i].line, &c), CHP_OK);
        assert_int_equal(c.kind, simple[i].kind);
        chp_cmd_fini(&c);
    }

    assert_int_equal(chp_cmd_parse("سلام دنیا", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_TEXT);
    assert_string_equal(c.text, "سلام دنیا");
    chp_cmd_fini(&c);
    assert_int_equal(chp_cmd_parse("//not a command", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_TEXT);
    assert_string_equal(c.text, "/not a command");
    chp_cmd_fini(&c);
    assert_int_equal(chp_cmd_parse("   ", &c), CHP_OK);
    assert_int_equal(c.kind, CHP_CMD_TEXT);
    assert_string_equal(c.text, "");
    chp_cmd_fini(&c);
    chp_cmd_fini(&c); /* twice is fine */
}

static void test_conversations_and_unread(void **state)
{
    (void)state;
    chp_model *m = chp_model_new();
    assert_int_equal(chp_model_current(m), -1);
    chp_model_notice(m, 5, "before anything");
    size_t no;
    chp_model_orphans(m, &no);
    assert_int_equal(no, 1);

    const char *convs = "#lan\troom\t2\t0\nali\tcontact\t3\t1700000000\n#x\troom\t0\t0\n";
    assert_int_equal(chp_model_load_conversations(m, convs, strlen(convs)), CHP_OK);
    assert_int_equal(chp_model_count(m), 3);
    assert_int_equal(chp_model_current(m), 0); /* the first one is selected */
    chp_model_orphans(m, &no);
    assert_int_equal(no, 0); /* the notice moved into #lan */
    assert_int_equal(chp_model_conv(m, 0)->nlines, 1);
    assert_int_equal(chp_model_conv(m, 0)->unread, 0); /* selected: read */
    assert_int_equal(chp_model_conv(m, 1)->unread, 3);
    assert_int_equal(chp_model_conv(m, 1)->kind, CHP_CONV_CONTACT);
    assert_int_equal(chp_model_conv(m, 2)->kind, CHP_CONV_ROOM);

    assert_int_equal(chp_model_on_message(m, "ali", "ali"), 1);
    assert_int_equal(chp_model_conv(m, 1)->unread, 4);
    assert_int_equal(chp_model_on_message(m, "#lan", "ali"), 0);
    assert_int_equal(chp_model_conv(m, 0)->unread, 0);            /* the open one stays read */
    assert_int_equal(chp_model_on_message(m, "sara", "sara"), 3); /* a new conversation */
    assert_int_equal(chp_model_conv(m, 3)->unread, 1);
    /* a stranger's post counts; the node's line on a nick change does not */
    assert_int_equal(chp_model_on_message(m, "#x", "~ali (jqn8znuw)"), 2);
    assert_int_equal(chp_model_conv(m, 2)->unread, 1);
    assert_int_equal(chp_model_on_message(m, "#x", "*"), 2);
    assert_int_equal(chp_model_conv(m, 2)->unread, 1);

    chp_model_select(m, 1);
    assert_int_equal(chp_model_current(m), 1);
    assert_int_equal(chp_model_conv(m, 1)->unread, 0);
    chp_model_next(m);
    chp_model_next(m);
    chp_model_next(m);
    assert_int_equal(chp_model_current(m), 0); /* wrapped */
    chp_model_prev(m);
    assert_int_equal(chp_model_current(m), 3);
    chp_model_select(m, 42); /* ignored */
    assert_int_equal(chp_model_current(m), 3);

    /* A malformed line is reported, the rest apply, and nothing is
     * forgotten on the strength of a list that did not parse. */
    const char *bad = "#lan\troom\t1\t0\nali\tcontact\tlots\t0\nbroken\n";
    assert_int_equal(chp_model_load_conversations(m, bad, strlen(bad)), CHP_E_MALFORMED);
    assert_int_equal(chp_model_count(m), 4);
    /* The daemon no longer lists #x and sara: they go, the selection
     * moves to a neighbour. */
    const char *later = "#lan\troom\t7\t0\nali\tcontact\t0\t0\n";
    assert_int_equal(chp_model_load_conversations(m, later, strlen(later)), CHP_OK);
    assert_int_equal(chp_model_count(m), 2);
    assert_int_equal(chp_model_find(m, "#x"), -1);
    assert_true(chp_model_current(m) >= 0 && chp_model_current(m) < 2);
    chp_model_select(m, 1);
    assert_int_equal(chp_model_conv(m, 0)->unread, 7);
    chp_model_remove(m, "ali");
    assert_int_equal(chp_model_current(m), 0);
    assert_int_equal(chp_model_conv(m, 0)->unread, 0);
    chp_model_destroy(&m);
    assert_null(m);
}

static void test_history_and_states(void **state)
{
    (void)state;
    chp_model *m = chp_model_new();
    assert_int_equal(chp_model_add(m, "#lan"), 0);
    chp_model_notice(m, 150, "a peer connected");
    const char *h = "100\tin\tali (3f9a61c2)\t-\tmsgid1\tsalam\\tdonya\\nline 2\n"
                    "200\tout\tme\tqueued\t0123456789abcdef0123456789abcdef\tسلام دنیا\n";
    assert_int_equal(chp_model_load_history(m, "#lan", h, strlen(h)), CHP_OK);
    const chp_conv *c = chp_model_conv(m, 0);
    assert_int_equal(c->nlines, 3);
    /* lines keep the order the UI learnt of them: the notice came first */
    assert_int_equal(c->lines[0].state, CHP_LINE_NOTICE);
    assert_int_equal(c->lines[1].state, CHP_LINE_IN);
    assert_string_equal(c->lines[1].sender, "ali (3f9a61c2)");
    assert_string_equal(c->lines[1].text, "salam\tdonya\nline 2");
    assert_int_equal(c->lines[2].state, CHP_LINE_QUEUED);
    assert_string_equal(c->lines[2].text, "سلام دنیا");

    assert_int_equal(chp_model_set_state(m, "0123456789abcdef0123456789abcdef", "delivered"), 1);
    assert_int_equal(c->lines[2].state, CHP_LINE_DELIVERED);
    /* never backwards */
    assert_int_equal(chp_model_set_state(m, "0123456789abcdef0123456789abcdef", "sent"), 1);
    assert_int_equal(c->lines[2].state, CHP_LINE_DELIVERED);
    assert_int_equal(chp_model_set_state(m, "ffff", "sent"), 0);
    assert_int_equal(chp_model_set_state(m, "msgid1", "sent"), 0); /* incoming: no state */

    /* reloading replaces the messages, keeps the notice */
    const char *h2 = "100\tin\tali (3f9a61c2)\t-\tmsgid1\tsalam\n"
                     "200\tout\tme\tsent\t0123456789abcdef0123456789abcdef\tسلام دنیا\n"
                     "300\tin\tsara\t-\tm3\tbye\n"
                     "bad line\n"
                     "x\tin\ta\t-\tm\tt\n";
    assert_int_equal(chp_model_load_history(m, "#lan", h2, strlen(h2)), CHP_E_MALFORMED);
    c = chp_model_conv(m, 0);
    assert_int_equal(c->nlines, 4);
    assert_int_equal(c->lines[0].state, CHP_LINE_NOTICE);
    assert_string_equal(c->lines[3].text, "bye");
    /* Lines keep the order the UI learnt of them: a notice shown after
     * "bye" stays below it and above a message that arrives after it,
     * and mail that arrives late (written at 50, long before the rest,
     * carried by a relay) shows at the bottom, not up in the scrollback. */
    chp_model_notice(m, 300, "sara left");
    const char *h3 = "300\tin\tsara\t-\tm3\tbye\n300\tin\tsara\t-\tm4\tback\n"
                     "50\tin\tdana\t-\tm5\twritten long ago\n";
    assert_int_equal(chp_model_load_history(m, "#lan", h3, strlen(h3)), CHP_OK);
    c = chp_model_conv(m, 0);
    assert_int_equal(c->nlines, 5);
    assert_string_equal(c->lines[0].text, "a peer connected");
    assert_string_equal(c->lines[1].text, "bye");
    assert_string_equal(c->lines[2].text, "sara left");
    assert_string_equal(c->lines[3].text, "back");
    assert_string_equal(c->lines[4].text, "written long ago");
    assert_int_equal(c->lines[4].time, 50); /* shown under its own time */
    /* history for an unknown conversation adds it */
    assert_int_equal(chp_model_load_history(m, "sara", "", 0), CHP_OK);
    assert_int_equal(chp_model_find(m, "sara"), 1);

    chp_model_scroll(m, 5, 3);
    assert_int_equal(chp_model_conv(m, 0)->scroll, 3);
    chp_model_scroll(m, -10, 3);
    assert_int_equal(chp_model_conv(m, 0)->scroll, 0);
    chp_model_destroy(&m);
}

static void test_wrap_and_sanitize(void **state)
{
    (void)state;
    size_t n, starts[16];
    wchar_t *w = chp_wt_decode("hello world foo", 15, &n);
    assert_int_equal(chp_wt_wrap(w, n, 11, starts, 16), 2);
    assert_int_equal(starts[1], 12);
    assert_int_equal(chp_wt_row_end(w, 0, 12), 11);
    free(w);

    w = chp_wt_decode("世界世界世界", strlen("世界世界世界"), &n);
    assert_int_equal(chp_wt_wrap(w, n, 5, starts, 16), 3); /* 2 wide chars per 5 cells */
    assert_int_equal(starts[1], 2);
    assert_int_equal(chp_wt_width(w, n), 12);
    free(w);

    /* a mark never starts a row */
    w = chp_wt_decode("سَسَسَ", strlen("سَسَسَ"), &n);
    assert_int_equal(n, 6);
    assert_int_equal(chp_wt_width(w, n), 3);
    assert_int_equal(chp_wt_wrap(w, n, 2, starts, 16), 2);
    assert_int_equal(starts[1], 4);
    free(w);

    w = chp_wt_decode("a\nb", 3, &n);
    assert_int_equal(chp_wt_wrap(w, n, 10, starts, 16), 2);
    assert_int_equal(starts[1], 2);
    free(w);

    /* invalid UTF-8 and embedded NULs become replacement characters */
    w = chp_wt_decode("\xff\xfe"
                      "a\0b\xe2\x82",
                      7, &n);
    assert_int_equal(n, 7);
    assert_true(w[0] == 0xFFFD && w[1] == 0xFFFD && w[2] == L'a' && w[3] == 0xFFFD);
    free(w);

    /* RLO and control characters never reach the terminal */
    wchar_t bad[] = {L'a', 0x202E, 0x1B, L'\t', 0x2067, L'\n', L'b', 0};
    chp_wt_sanitize(bad, 7);
    assert_true(bad[1] == 0xFFFD && bad[2] == 0xFFFD && bad[3] == L' ' && bad[4] == 0xFFFD &&
                bad[5] == L'\n' && bad[6] == L'b');

    char *s = chp_unescape("a\\\\b\\tc\\", 8);
    assert_string_equal(s, "a\\b\tc\\");
    free(s);
}

/* xorshift: deterministic "random" bytes */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_random_input_never_crashes(void **state)
{
    (void)state;
    uint32_t seed = 0x9e3779b9u;
    chp_input *in = chp_input_new();
    chp_model *m = chp_model_new();
    const char *names[] = {"ali", "#lan"};
    const char *cmds[] = {"/help", "/join"};
    char buf[256];
    for (int round = 0; round < 3000; round++) {
        size_t len = rnd(&seed) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            uint32_t r = rnd(&seed);
            /* mostly tabs, newlines, slashes and UTF-8 lead bytes */
            const char pick[] = "\t\n/ #a\\\xd8\xb3\xe4\xb8\x96\xff";
            buf[i] = r & 1 ? pick[r % (sizeof pick - 1)] : (char)(r >> 8);
        }
        buf[len] = 0;
        int op = (int)(rnd(&seed) % 14);
        switch (op) {
        case 0:
            chp_input_insert_utf8(in, buf);
            break;
        case 1:
            chp_input_left(in);
            chp_input_backspace(in);
            break;
        case 2:
            chp_input_word_delete(in);
            break;
        case 3:
            chp_input_history_prev(in);
            chp_input_delete(in);
            break;
        case 4: {
            char word[64];
            chp_input_complete(in, cmds, 2, names, 2);
            if (chp_model_sender_word(m, buf, word, sizeof word))
                assert_true(strlen(word) < sizeof word && word[0] != '*');
            (void)chp_model_resolve_who(m, buf, word, sizeof word);
            break;
        }
        case 5: {
            size_t n;
            char *s = chp_input_take(in, &n);
            chp_cmd c = {0};
            if (s && chp_cmd_parse(s, &c) == CHP_OK)
                assert_true(c.kind <= CHP_CMD_USAGE);
            chp_cmd_fini(&c);
            free(s);
            break;
        }
        case 6:
            if (chp_model_load_conversations(m, buf, len) == CHP_E_NOMEM)
                fail();
            break;
        case 7:
            if (chp_model_load_history(m, "#lan", buf, len) == CHP_E_NOMEM)
                fail();
            break;
        case 8:
            if (chp_model_load_requests(m, buf, len) == CHP_E_NOMEM)
                fail();
            (void)chp_model_on_room(m, buf, len);
            chp_model_notice(m, round, buf);
            chp_model_on_message(m, "ali", buf);
            break;
        case 9: {
            size_t n, starts[64];
            wchar_t *w = chp_wt_decode(buf, len, &n);
            chp_wt_sanitize(w, n);
            size_t rows = chp_wt_wrap(w, n, 2 + (int)(rnd(&seed) % 30), starts, 64);
            assert_true(rows >= 1);
            for (size_t r = 1; r < rows && r < 64; r++)
                assert_true(starts[r] > starts[r - 1] && starts[r] <= n);
            free(w);
            break;
        }
        case 10: {
            size_t first;
            int col;
            chp_input_view(in, 1 + (int)(rnd(&seed) % 40), &first, &col);
            assert_true(first <= chp_input_cursor(in));
            break;
        }
        case 11:
            chp_model_select(m, (int)(rnd(&seed) % 5) - 1);
            chp_model_scroll(m, (long)(rnd(&seed) % 21) - 10, 100);
            break;
        case 12:
            chp_input_history_next(in);
            chp_input_right(in);
            break;
        default:
            chp_input_home(in);
            chp_input_kill_end(in);
            break;
        }
        assert_true(chp_input_cursor(in) <= chp_input_len(in));
        assert_true(chp_input_len(in) <= CHP_INPUT_MAX);
        assert_true(chp_model_current(m) < (int)chp_model_count(m));
    }
    chp_input_destroy(&in);
    chp_model_destroy(&m);
}

/* Room titles: kind and fingerprint from `rooms`, with or without the
 * FINGERPRINT column; contacts are their name. */
static void test_room_titles(void **state)
{
    (void)state;
    chp_model *m = chp_model_new();
    const char convs[] = "#lan\troom\t0\t0\n#kitchen\troom\t0\t0\nsara\tcontact\t0\t0\n";
    assert_int_equal(chp_model_load_conversations(m, convs, sizeof convs - 1), CHP_OK);
    char t[256];
    chp_model_title(m, 1, t, sizeof t);
    assert_string_equal(t, "#kitchen"); /* nothing known yet */

    /* today's daemon: two columns */
    const char two[] = "#lan\tpublic\n#kitchen\tpassphrase\n";
    assert_int_equal(chp_model_load_rooms(m, two, sizeof two - 1), CHP_OK);
    chp_model_title(m, 0, t, sizeof t);
    assert_string_equal(t, "#lan \u00b7 public");
    chp_model_title(m, 1, t, sizeof t);
    assert_string_equal(t, "#kitchen \u00b7 passphrase");

    /* with the fingerprint column; a room not in the list is skipped */
    const char three[] = "#lan\tpublic\tq2w3e4r5\n#kitchen\tpassphrase\tabcd1234\n"
                         "#elsewhere\tpublic\tzzzzzzzz\n";
    assert_int_equal(chp_model_load_rooms(m, three, sizeof three - 1), CHP_OK);
    chp_model_title(m, 1, t, sizeof t);
    assert_string_equal(t, "#kitchen \u00b7 passphrase \u00b7 abcd1234");
    assert_int_equal(chp_model_find(m, "#elsewhere"), -1);
    chp_model_title(m, 2, t, sizeof t);
    assert_string_equal(t, "sara");

    /* a line without a kind does not parse; the others still apply */
    const char bad[] = "#lan\n#kitchen\tpublic\n";
    assert_int_equal(chp_model_load_rooms(m, bad, sizeof bad - 1), CHP_E_MALFORMED);
    assert_string_equal(chp_model_conv(m, 1)->room_kind, "public");
    /* an overlong field is not taken */
    const char longfp[] = "#kitchen\tpassphrase\t0123456789012345678901234567890123456789\n";
    assert_int_equal(chp_model_load_rooms(m, longfp, sizeof longfp - 1), CHP_OK);
    assert_string_equal(chp_model_conv(m, 1)->room_fp, "abcd1234");
    /* a small buffer truncates, never overflows */
    char small[12];
    chp_model_title(m, 1, small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    chp_model_destroy(&m);
}

/* Senders as the daemon names them: "*" is the node's own line (a nick
 * change), drawn as a notice and never a post; "~nick (fpr)" a stranger,
 * kept whole (the mark and the fingerprint are what set them apart). */
static void test_strangers_and_nick_changes(void **state)
{
    (void)state;
    assert_int_equal(chp_sender_kind_of("*"), CHP_SENDER_SYSTEM);
    assert_int_equal(chp_sender_kind_of("~ali (jqn8znuw)"), CHP_SENDER_STRANGER);
    assert_int_equal(chp_sender_kind_of("ali"), CHP_SENDER_CONTACT);
    assert_int_equal(chp_sender_kind_of("**"), CHP_SENDER_CONTACT); /* no name starts so */

    chp_model *m = chp_model_new();
    const char *h = "100\tin\tali\t-\tm1\thi\n"
                    "110\tin\t~ali (jqn8znuw)\t-\tm2\ti am ali too\n"
                    "120\tin\t*\t-\tm3\t~ali (jqn8znuw) is now known as ~bob (jqn8znuw)\n"
                    "120\tin\t~bob (jqn8znuw)\t-\tm4\tbob here\n"
                    "130\tout\tme\tsent\tm5\t* not a notice\n";
    assert_int_equal(chp_model_load_history(m, "#lan", h, strlen(h)), CHP_OK);
    const chp_conv *c = chp_model_conv(m, 0);
    assert_int_equal(c->nlines, 5);
    assert_int_equal(c->lines[0].state, CHP_LINE_IN);
    assert_int_equal(c->lines[1].state, CHP_LINE_IN);
    assert_string_equal(c->lines[1].sender, "~ali (jqn8znuw)");
    assert_int_equal(c->lines[2].state, CHP_LINE_SYSTEM);
    assert_string_equal(c->lines[2].text, "~ali (jqn8znuw) is now known as ~bob (jqn8znuw)");
    assert_int_equal(c->lines[3].state, CHP_LINE_IN);
    assert_int_equal(c->lines[4].state, CHP_LINE_SENT);
    /* they come from the history: a reload replaces them (notices stay) */
    const char *h2 = "100\tin\tali\t-\tm1\thi\n";
    assert_int_equal(chp_model_load_history(m, "#lan", h2, strlen(h2)), CHP_OK);
    assert_int_equal(chp_model_conv(m, 0)->nlines, 1);
    chp_model_destroy(&m);
}

/* An incoming file's progress events: a partial line with a bar until its
 * message comes, kept across history reloads, then replaced by the
 * message, which keeps the full bar; an outgoing file's progress never
 * lands on a received line of the same id. */
static void test_incoming_file(void **state)
{
    (void)state;
    chp_model *m = chp_model_new();
    const char *id = "00112233445566778899aabbccddeeff";
    assert_int_equal(chp_model_add(m, "ali"), 0);
    assert_int_equal(chp_model_file_in(m, "ali", "ali", id, "[file] v.opus (40.0 KiB)", 50, 0, 3),
                     1);
    const chp_conv *c = chp_model_conv(m, 0);
    assert_int_equal(c->nlines, 1);
    assert_true(c->lines[0].partial);
    assert_int_equal(c->lines[0].state, CHP_LINE_IN);
    assert_int_equal(c->lines[0].total, 3);
    /* an unrelated reload keeps it in its place (learnt first); the bar moves */
    const char *h = "40\tin\tali\t-\tm1\thi\n";
    assert_int_equal(chp_model_load_history(m, "ali", h, strlen(h)), CHP_OK);
    c = chp_model_conv(m, 0);
    assert_int_equal(c->nlines, 2);
    assert_int_equal(chp_model_file_in(m, "ali", "ali", id, "x", 51, 2, 3), 1);
    c = chp_model_conv(m, 0);
    assert_int_equal(c->nlines, 2);
    assert_int_equal(c->lines[0].done, 2);
    /* more than done, a zero total, no id: ignored */
    assert_int_equal(chp_model_file_in(m, "ali", "ali", id, "x", 51, 4, 3), 0);
    assert_int_equal(chp_model_file_in(m, "ali", "ali", id, "x", 51, 0, 0), 0);
    assert_int_equal(chp_model_file_in(m, "ali", "ali", "", "x", 51, 1, 3), 0);
    assert_int_equal(chp_model_file_in(m, "ali", "ali", id, "x", 52, 3, 3), 1);
    /* its message came: it takes the partial line's place and its full bar */
    const char *h2 = "40\tin\tali\t-\tm1\thi\n"
                     "52\tin\tali\t-\t00112233445566778899aabbccddeeff\t[file] v.opus (40.0 KiB) "
                     "voice note 0:42 saved to /x\n";
    assert_int_equal(chp_model_load_history(m, "ali", h2, strlen(h2)), CHP_OK);
    c = chp_model_conv(m, 0);
    assert_int_equal(c->nlines, 2);
    assert_false(c->lines[0].partial);
    assert_int_equal(c->lines[0].done, 3);
    assert_int_equal(c->lines[0].total, 3);
    /* an outgoing progress of that id leaves the received line alone */
    assert_int_equal(chp_model_set_progress(m, id, 1, 9), 0);
    assert_int_equal(chp_model_conv(m, 0)->lines[0].total, 3);
    chp_model_destroy(&m);
}

/* What Tab puts in for a sender, and what a "~nick" in a command stands
 * for: never a word that names someone else. */
static void test_sender_words(void **state)
{
    (void)state;
    chp_model *m = chp_model_new();
    char w[96];
    assert_int_equal(chp_model_sender_word(m, "ali", w, sizeof w), 1);
    assert_string_equal(w, "ali"); /* a contact: its name */
    assert_int_equal(chp_model_sender_word(m, "~ali (jqn8znuw)", w, sizeof w), 1);
    assert_string_equal(w, "~ali");
    assert_int_equal(chp_model_sender_word(m, "~Ali (Reza) Z (abcd1234)", w, sizeof w), 1);
    assert_string_equal(w, "~Ali (Reza) Z");
    assert_int_equal(chp_model_sender_word(m, "~? (abcd1234)", w, sizeof w), 1);
    assert_string_equal(w, "~?");
    assert_int_equal(chp_model_sender_word(m, "*", w, sizeof w), 0);
    assert_int_equal(chp_model_sender_word(m, "", w, sizeof w), 0);
    assert_int_equal(chp_model_sender_word(m, "~ali (jqn8znuw", w, sizeof w), 0);
    assert_int_equal(chp_model_sender_word(m, "~ (jqn8znuw)", w, sizeof w), 0);
    assert_int_equal(chp_model_sender_word(m, "~ali ()", w, sizeof w), 0);
    char small[4];
    assert_int_equal(chp_model_sender_word(m, "~ali (jqn8znuw)", small, sizeof small), 0);
    /* nobody asked yet: "~ali" names nobody the node can reach */
    assert_int_equal(chp_model_resolve_who(m, "~ali", w, sizeof w), 0);
    assert_int_equal(chp_model_resolve_who(m, "sara", w, sizeof w), 1);
    assert_string_equal(w, "sara");

    const char reqs[] = "chp1aaaa\tali\tjqn8znuw\t1700000000\n"
                        "chp1bbbb\tbob\tzzzz1111\t1700000000\n"
                        "chp1cccc\tsam\tcccc2222\t1700000000\n"
                        "chp1dddd\tsam\tdddd3333\t1700000000\n"
                        "chp1eeee\tal\\ti\teeee4444\t1700000000\n";
    assert_int_equal(chp_model_load_requests(m, reqs, sizeof reqs - 1), CHP_OK);
    /* the one request under that nick: "~ali", which stands for its ID */
    assert_int_equal(chp_model_sender_word(m, "~ali (jqn8znuw)", w, sizeof w), 1);
    assert_string_equal(w, "~ali");
    assert_int_equal(chp_model_resolve_who(m, "~ali", w, sizeof w), 1);
    assert_string_equal(w, "chp1aaaa");
    assert_int_equal(chp_model_resolve_who(m, "~al\ti", w, sizeof w), 1);
    assert_string_equal(w, "chp1eeee");
    /* another stranger who calls himself ali: "~ali" would be the other */
    assert_int_equal(chp_model_sender_word(m, "~ali (other123)", w, sizeof w), 0);
    /* two requests under one nick: the ID; "~sam" is ambiguous */
    assert_int_equal(chp_model_sender_word(m, "~sam (dddd3333)", w, sizeof w), 1);
    assert_string_equal(w, "chp1dddd");
    assert_int_equal(chp_model_resolve_who(m, "~sam", w, sizeof w), -1);
    /* asked as bob, shows as robert now: the ID */
    assert_int_equal(chp_model_sender_word(m, "~robert (zzzz1111)", w, sizeof w), 1);
    assert_string_equal(w, "chp1bbbb");
    assert_int_equal(chp_model_resolve_who(m, "~robert", w, sizeof w), 0);
    assert_int_equal(chp_model_resolve_who(m, "~", w, sizeof w), 0);
    /* a contact's name is never rewritten, whatever the requests */
    assert_int_equal(chp_model_sender_word(m, "ali", w, sizeof w), 1);
    assert_string_equal(w, "ali");
    assert_int_equal(chp_model_resolve_who(m, "ali", w, sizeof w), 1);
    assert_string_equal(w, "ali");

    /* a new list replaces the old; lines that do not parse are skipped */
    const char bad[] = "chp1ffff\tfa\tffff5555\t1\nnot an id\tx\ty\t1\nchp1gggg\tga\n"
                       "chp1hhhh\tha\t\t1\n";
    assert_int_equal(chp_model_load_requests(m, bad, sizeof bad - 1), CHP_E_MALFORMED);
    assert_int_equal(chp_model_resolve_who(m, "~ali", w, sizeof w), 0);
    assert_int_equal(chp_model_resolve_who(m, "~fa", w, sizeof w), 1);
    assert_string_equal(w, "chp1ffff");
    assert_int_equal(chp_model_load_requests(m, "", 0), CHP_OK);
    assert_int_equal(chp_model_resolve_who(m, "~fa", w, sizeof w), 0);
    chp_model_destroy(&m);
}

/* Tab finds a name by what the screen shows and puts in what a command
 * takes: "~b" finds "~bob (abcd1234)" and completes to their ID. */
static void test_completion_by_key(void **state)
{
    (void)state;
    const char *cmds[] = {"/accept"};
    const char *names[] = {"chp1xyz", "ali", "#lan"};
    const char *keys[] = {"~bob (abcd1234)", "ali", "#lan"};
    chp_input *in = with_text("/accept ~b");
    assert_int_equal(chp_input_complete_keyed(in, cmds, 1, names, keys, 3), 1);
    assert_string_equal(line_of(in), "/accept chp1xyz ");
    chp_input_destroy(&in);
    in = with_text("/accept a");
    assert_int_equal(chp_input_complete_keyed(in, cmds, 1, names, keys, 3), 1);
    assert_string_equal(line_of(in), "/accept ali ");
    chp_input_destroy(&in);
    in = with_text("/accept chp");
    assert_int_equal(chp_input_complete_keyed(in, cmds, 1, names, keys, 3), 0);
    chp_input_destroy(&in);
}

/* A `room` event: a room joined here or by another client appears with
 * its fingerprint in the title; a left one goes. */
static void test_room_events(void **state)
{
    (void)state;
    chp_model *m = chp_model_new();
    assert_int_equal(chp_model_add(m, "#lan"), 0);
    const char j[] = "#kitchen\tjoined\tabcd1234";
    assert_int_equal(chp_model_on_room(m, j, sizeof j - 1), 1);
    char t[128];
    chp_model_title(m, 1, t, sizeof t);
    assert_string_equal(t, "#kitchen \u00b7 abcd1234");
    /* joined again under another key (after a leave elsewhere): the new one */
    const char j2[] = "#kitchen\tjoined\tq2w3e4r5";
    assert_int_equal(chp_model_on_room(m, j2, sizeof j2 - 1), 1);
    assert_string_equal(chp_model_conv(m, 1)->room_fp, "q2w3e4r5");
    const char l[] = "#kitchen\tleft";
    assert_int_equal(chp_model_on_room(m, l, sizeof l - 1), -1);
    assert_int_equal(chp_model_find(m, "#kitchen"), -1);
    assert_int_equal(chp_model_count(m), 1);
    /* what does not parse changes nothing */
    const char *bad[] = {
        "#x", "#x\tjoined", "x\tjoined\tabcd1234", "#x\tgone\tabcd1234", "#lan\tleft\tabcd1234",
        ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(chp_model_on_room(m, bad[i], strlen(bad[i])), -1);
    assert_int_equal(chp_model_count(m), 1);
    chp_model_destroy(&m);
}

static void test_status_parse(void **state)
{
    (void)state;
    chp_status st;
    const char full[] = "mode: node\naddress: 127.0.0.1:1/chpn1x\npeers connected: 3\n"
                        "relays connected: 1\npassive peers: 0\nstore full: yes\nuptime: 5\n";
    chp_status_parse(full, sizeof full - 1, &st);
    assert_int_equal(st.peers, 3);
    assert_int_equal(st.relays, 1);
    assert_int_equal(st.store_full, 1);
    const char notfull[] = "store full: no\npeers connected: 0";
    chp_status_parse(notfull, sizeof notfull - 1, &st);
    assert_int_equal(st.peers, 0);
    assert_int_equal(st.relays, -1);
    assert_int_equal(st.store_full, 0);
    const char junk[] = "peers connected: many\nstore full: perhaps\npeers connected: \n";
    chp_status_parse(junk, sizeof junk - 1, &st);
    assert_int_equal(st.peers, -1);
    assert_int_equal(st.store_full, -1);
    chp_status_parse("", 0, &st);
    assert_int_equal(st.peers, -1);
}

/* The node the UI started: restarts back off 1, 2, 4 ... 30 s, and start
 * afresh after a node that ran a while; one it never saw answer is not
 * restarted; one it did not start never is. */
static void test_life(void **state)
{
    (void)state;
    chp_life l;
    chp_life_init(&l, 1);
    assert_false(l.down);
    /* dies before it ever answered: no restart (it would fail the same way) */
    assert_int_equal(chp_life_down(&l, 100), 0);
    assert_true(l.down);
    assert_false(chp_life_restart_due(&l, 1000000));

    chp_life_init(&l, 1);
    assert_int_equal(chp_life_answered(&l, 1000), 0); /* the first answer: not "back" */
    assert_int_equal(chp_life_answered(&l, 1100), 0);
    uint64_t t = 5000;
    assert_int_equal(chp_life_down(&l, t), 1000);
    assert_int_equal(chp_life_down(&l, t + 1), 0); /* said once */
    assert_false(chp_life_restart_due(&l, t + 999));
    assert_true(chp_life_restart_due(&l, t + 1000));
    chp_life_started(&l, 1);
    assert_false(l.down);
    assert_false(chp_life_restart_due(&l, t + 1000));
    assert_int_equal(chp_life_answered(&l, t + 1500), 1); /* "node restarted" */
    assert_int_equal(chp_life_answered(&l, t + 1600), 0);
    t += 1600;
    /* dies again soon, and again before answering: 2 s, 4 s, ... 30 s */
    uint64_t want[] = {2000, 4000, 8000, 16000, 30000, 30000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        t += 10;
        assert_int_equal(chp_life_down(&l, t), want[i]);
        t += want[i];
        assert_true(chp_life_restart_due(&l, t));
        chp_life_started(&l, 1);
    }
    /* it comes up and runs a while: the next death starts at 1 s again */
    assert_int_equal(chp_life_answered(&l, t), 1);
    assert_int_equal(chp_life_down(&l, t + CHP_LIFE_STABLE_MS), 1000);

    /* a node the UI found running: down is said, never restarted; when
     * it answers again that is "back" */
    chp_life_init(&l, 0);
    assert_int_equal(chp_life_answered(&l, 10), 0);
    assert_int_equal(chp_life_down(&l, 20), 0);
    assert_true(l.down);
    assert_false(chp_life_restart_due(&l, 1000000));
    chp_life_started(&l, 0);
    assert_int_equal(chp_life_answered(&l, 5000), 1);
    assert_false(l.down);
}

int main(void)
{
    if (!setlocale(LC_ALL, "C.UTF-8") && !setlocale(LC_ALL, "en_US.UTF-8")) {
        fprintf(stderr, "no UTF-8 locale\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_persian_cursor),
        cmocka_unit_test(test_marks_move_with_their_letter),
        cmocka_unit_test(test_cjk_width),
        cmocka_unit_test(test_word_delete),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_completion),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_conversations_and_unread),
        cmocka_unit_test(test_history_and_states),
        cmocka_unit_test(test_room_titles),
        cmocka_unit_test(test_strangers_and_nick_changes),
        cmocka_unit_test(test_sender_words),
        cmocka_unit_test(test_completion_by_key),
        cmocka_unit_test(test_room_events),
        cmocka_unit_test(test_status_parse),
        cmocka_unit_test(test_life),
        cmocka_unit_test(test_incoming_file),
        cmocka_unit_test(test_wrap_and_sanitize),
        cmocka_unit_test(test_random_input_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
