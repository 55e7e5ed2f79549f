/* test_msg.c - the messaging layer (node/msg/) end to end in one
 * process: two or three users, each with a real LMDB store, their
 * envelopes carried between them by hand, a clock the test moves. */
#define _GNU_SOURCE /* memmem */
#include "node/msg/account.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/file.h"
#include "proto/hex.h"
#include "proto/id.h"
#include "proto/keys.h"
#include "node/msg/msg.h"
#include "node/store/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/testutil.h"

static uint64_t g_now = 1790000000; /* the tests' clock */

static uint64_t fake_now(void *ctx)
{
    (void)ctx;
    return g_now;
}

struct user {
    char dir[256];
    chp_store *s;
    chp_msg *m;
    char id[CHP_ID_STR_LEN + 1];
    int events;          /* "message" events seen */
    char last_msg[1024]; /* the last one's body */
    char last_room[256]; /* the last "room" event's body */
    char last_file[512]; /* the last "file" event's body */
};

static void on_event(void *ctx, const char *topic, const char *body, size_t len)
{
    struct user *u = ctx;
    if (!strcmp(topic, "message")) {
        u->events++;
        snprintf(u->last_msg, sizeof u->last_msg, "%.*s", (int)len, body);
    } else if (!strcmp(topic, "room")) {
        snprintf(u->last_room, sizeof u->last_room, "%.*s", (int)len, body);
    } else if (!strcmp(topic, "file")) {
        snprintf(u->last_file, sizeof u->last_file, "%.*s", (int)len, body);
    }
}

static void open_user(struct user *u)
{
    assert_int_equal(chp_store_open(u->dir, NULL, &u->s, NULL), CHP_OK);
    chp_msg_host h = {.ctx = u, .event = on_event, .now = fake_now, .pow_ntpb = 1};
    assert_int_equal(chp_msg_new(u->s, u->dir, &h, &u->m), CHP_OK);
}

/* What chapard does at start: the identity from its (key-file) file. */
static void unlock_user(struct user *u)
{
    chp_identity *id = NULL;
    assert_int_equal(chp_account_load(u->dir, NULL, 0, &id), CHP_OK);
    assert_int_equal(chp_msg_unlock(u->m, id), CHP_OK);
}

static void close_user(struct user *u)
{
    chp_msg_free(&u->m);
    chp_store_close(&u->s);
}

/* One control request; returns whether it answered ok, *out its payload
 * (static buffer). */
static int ctl(struct user *u, char **out, const char *cmd, ...)
{
    static char buf[1 << 20];
    const uint8_t *args[4];
    size_t lens[4];
    int n = 0;
    va_list ap;
    va_start(ap, cmd);
    const char *a;
    while (n < 4 && (a = va_arg(ap, const char *))) {
        args[n] = (const uint8_t *)a;
        lens[n++] = strlen(a);
    }
    va_end(ap);
    int ok = 0, wiped = 0;
    char *p = NULL;
    size_t pl = 0;
    assert_int_equal(chp_msg_control(u->m, cmd, n, args, lens, &ok, &p, &pl, &wiped), 1);
    assert_non_null(p);
    assert_true(pl < sizeof buf);
    memcpy(buf, p, pl);
    buf[pl] = '\0';
    free(p);
    if (out)
        *out = buf;
    return ok;
}

static void new_user(struct user *u, const char *nick)
{
    snprintf(u->dir, sizeof u->dir, "/tmp/chp-msg-XXXXXX");
    assert_non_null(mkdtemp(u->dir));
    u->events = 0;
    u->last_msg[0] = u->last_room[0] = '\0';
    open_user(u);
    assert_int_equal(chp_msg_lock_state(u->m), CHP_MSG_NO_IDENTITY);
    char *out;
    assert_true(ctl(u, &out, "init", nick, "none", NULL));
    snprintf(u->id, sizeof u->id, "%s", out);
    assert_int_equal(chp_msg_lock_state(u->m), CHP_MSG_READY);
}

static void drop_user(struct user *u)
{
    close_user(u);
    assert_int_equal(chp_account_wipe(u->dir), CHP_OK);
}

/* Envelopes kept for replays. */
static uint8_t *g_kept[64];
static size_t g_keptlen[64], g_nkept;

/* The next envelope u wants out, waiting for its sealing thread. */
static int take(struct user *u, uint8_t **env, size_t *len)
{
    for (;;) {
        if (chp_msg_take(u->m, env, len))
            return 1;
        if (!chp_msg_pending(u->m))
            return 0;
        struct pollfd p = {.fd = chp_msg_fd(u->m), .events = POLLIN};
        assert_true(p.fd >= 0);
        (void)poll(&p, 1, 200);
    }
}

/* Carries everything `from` wants to publish to every user in to[]. */
static size_t carry(struct user *from, struct user **to, size_t nto)
{
    uint8_t *env;
    size_t len, n = 0;
    while (take(from, &env, &len)) {
        uint8_t id[32];
        chp_env_hdr h;
        assert_int_equal(chp_envelope_parse(env, len, &h, NULL, NULL, NULL), CHP_OK);
        assert_true(h.expiry > h.created);
        chp_envelope_id(env, len, id);
        chp_msg_on_held(from->m, id);
        for (size_t i = 0; i < nto; i++)
            chp_msg_on_envelope(to[i]->m, env, len, id, 0);
        if (g_nkept < 64) {
            g_kept[g_nkept] = env;
            g_keptlen[g_nkept++] = len;
        } else {
            free(env);
        }
        n++;
    }
    return n;
}

static void kept_free(void)
{
    for (size_t i = 0; i < g_nkept; i++)
        free(g_kept[i]);
    g_nkept = 0;
}

/* Carries both ways until nothing moves. */
static void settle(struct user *a, struct user *b)
{
    for (int round = 0; round < 10; round++) {
        struct user *ta[1] = {b}, *tb[1] = {a};
        if (!carry(a, ta, 1) + !carry(b, tb, 1) == 2)
            return;
    }
}

static int has_line(const char *text, const char *needle)
{
    return strstr(text, needle) != NULL;
}

static void befriend(struct user *a, struct user *b)
{
    char *out;
    assert_true(ctl(a, &out, "contact-add", b->id, "bob", NULL));
    assert_true(ctl(b, &out, "contact-add", a->id, "alice", NULL));
    settle(a, b);
    assert_true(ctl(a, &out, "contact-list", NULL));
    assert_true(has_line(out, "bob\t") && has_line(out, "\testablished\t"));
    assert_true(ctl(b, &out, "contact-list", NULL));
    assert_true(has_line(out, "alice\t") && has_line(out, "\testablished\t"));
}

static void test_dm_both_ways(void **st)
{
    (void)st;
    struct user a, b;
    char *out;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    befriend(&a, &b);
    assert_true(ctl(&a, &out, "send", "bob", "salaam bob", NULL));
    char mid[64];
    snprintf(mid, sizeof mid, "%s", out);
    assert_int_equal(strlen(mid), 32);
    assert_true(ctl(&a, &out, "outbox", NULL));
    assert_true(has_line(out, "\tbob\tqueued"));
    settle(&a, &b);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "\talice\talice\tsalaam bob\t1\t"));
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "\tsalaam bob\t0\t")); /* listed once */
    assert_true(ctl(&a, &out, "outbox", NULL));
    assert_true(has_line(out, mid) && has_line(out, "\tbob\tdelivered"));
    assert_true(ctl(&b, &out, "send", "alice", "line one\nline\ttwo \\ end", NULL));
    settle(&a, &b);
    assert_true(ctl(&a, &out, "inbox", NULL));
    assert_true(has_line(out, "\tbob\tbob\tline one\\nline\\ttwo \\\\ end\t1\t"));
    assert_true(ctl(&a, &out, "history", "bob", NULL));
    assert_true(has_line(out, "\tout\tali\tdelivered\t"));
    assert_true(has_line(out, "\tin\tbob\t-\t"));
    assert_true(ctl(&a, &out, "conversations", NULL));
    assert_true(has_line(out, "bob\tcontact\t1\t"));
    assert_true(ctl(&a, &out, "read", "bob", NULL));
    assert_true(ctl(&a, &out, "conversations", NULL));
    assert_true(has_line(out, "bob\tcontact\t0\t"));
    /* the safety number is the same on both sides */
    char sn[64];
    assert_true(ctl(&a, &out, "contact-show", "bob", NULL));
    const char *p = strstr(out, "safety number: ");
    assert_non_null(p);
    snprintf(sn, sizeof sn, "%.35s", p + 15);
    assert_true(ctl(&b, &out, "contact-show", "alice", NULL));
    assert_true(has_line(out, sn));
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

static void test_request_accept_and_queue(void **st)
{
    (void)st;
    struct user a, b;
    char *out;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    assert_true(ctl(&a, &out, "contact-add", b.id, "bob", NULL));
    /* written before the handshake completes: waits in the outbox */
    assert_true(ctl(&a, &out, "send", "bob", "early bird", NULL));
    settle(&a, &b);
    assert_true(ctl(&b, &out, "contact-requests", NULL));
    assert_true(has_line(out, a.id) && has_line(out, "\tali\t"));
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_string_equal(out, "");
    assert_true(ctl(&a, &out, "outbox", NULL));
    assert_true(has_line(out, "\tbob\tqueued"));
    assert_false(ctl(&b, &out, "contact-accept", "nobody", NULL));
    assert_true(has_line(out, "unknown contact"));
    assert_true(ctl(&b, &out, "contact-accept", "ali", NULL));
    settle(&a, &b);
    assert_true(ctl(&b, &out, "contact-requests", NULL));
    assert_string_equal(out, "");
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "\tali\tali\tearly bird\t1\t"));
    assert_true(ctl(&a, &out, "outbox", NULL));
    assert_true(has_line(out, "\tbob\tdelivered"));
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

static void test_rooms(void **st)
{
    (void)st;
    struct user a, b, c;
    char *out;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    new_user(&c, "cyrus");
    assert_true(ctl(&a, &out, "rooms", NULL));
    assert_string_equal(out, "#lan\tpublic\ts84qgkpe\n"); /* room.#lan.fingerprint */
    struct user *to_bc[2] = {&b, &c};
    assert_true(ctl(&a, &out, "send", "#lan", "hello lan", NULL));
    assert_int_equal(carry(&a, to_bc, 2), 1);
    assert_true(ctl(&b, &out, "inbox", NULL));
    char fpr[CHP_FPR_STR_LEN + 1];
    uint8_t pk[32];
    assert_int_equal(chp_id_parse(a.id, strlen(a.id), pk), CHP_OK);
    chp_id_fingerprint(pk, fpr);
    char want[128];
    snprintf(want, sizeof want, "\t#lan\t~ali (%s)\thello lan\t1\t", fpr);
    assert_true(has_line(out, want));
    assert_true(ctl(&c, &out, "inbox", NULL));
    assert_true(has_line(out, want));
    /* a passphrase room: c does not know the passphrase */
    assert_true(ctl(&a, &out, "join", "#Secret", "open sesame", NULL));
    assert_true(ctl(&b, &out, "join", "#secret", "open sesame", NULL));
    assert_true(ctl(&c, &out, "join", "#secret", "wrong guess", NULL));
    assert_true(ctl(&a, &out, "send", "#secret", "for members", NULL));
    assert_int_equal(carry(&a, to_bc, 2), 1);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "\t#secret\t") && has_line(out, "for members"));
    assert_true(ctl(&c, &out, "inbox", NULL));
    assert_false(has_line(out, "for members"));
    assert_false(ctl(&c, &out, "send", "#nowhere", "x", NULL));
    assert_true(has_line(out, "not in room #nowhere"));
    assert_true(ctl(&c, &out, "leave", "#lan", NULL));
    assert_false(ctl(&c, &out, "leave", "#lan", NULL));
    kept_free();
    drop_user(&a);
    drop_user(&b);
    drop_user(&c);
}

/* The tag of the next envelope u publishes (the envelope is dropped). */
static void next_tag(struct user *u, uint8_t tag[16])
{
    uint8_t *env;
    size_t len;
    chp_env_hdr h;
    assert_true(take(u, &env, &len));
    assert_int_equal(chp_envelope_parse(env, len, &h, NULL, NULL, NULL), CHP_OK);
    memcpy(tag, h.tag, 16);
    free(env);
}

/* chp_msg_tag_mine, what the store's quota keeps for the user: a
 * contact's tags for us, not room or request tags (anyone may make
 * those), and nothing while locked. */
static void test_tag_mine(void **st)
{
    (void)st;
    struct user a, b, c;
    char *out;
    uint8_t dm[16], post[16], req[16];
    new_user(&a, "ali");
    new_user(&b, "bahar");
    new_user(&c, "cyrus");
    befriend(&a, &b);
    assert_true(ctl(&a, &out, "send", "bob", "for bob", NULL));
    next_tag(&a, dm);
    assert_true(ctl(&a, &out, "send", "#lan", "for everyone", NULL));
    next_tag(&a, post);
    assert_true(ctl(&c, &out, "contact-add", b.id, "bob", NULL));
    next_tag(&c, req);
    assert_int_equal(chp_msg_tag_mine(b.m, dm), 1);
    assert_int_equal(chp_msg_tag_mine(a.m, dm), 0); /* the sender's: not for her */
    assert_int_equal(chp_msg_tag_mine(b.m, post), 0);
    assert_int_equal(chp_msg_tag_mine(a.m, post), 0);
    assert_int_equal(chp_msg_tag_mine(b.m, req), 0);
    assert_int_equal(chp_msg_tag_mine(NULL, dm), 0);
    close_user(&b);
    open_user(&b);
    assert_int_equal(chp_msg_lock_state(b.m), CHP_MSG_LOCKED);
    assert_int_equal(chp_msg_tag_mine(b.m, dm), 0);
    unlock_user(&b);
    assert_int_equal(chp_msg_tag_mine(b.m, dm), 1);
    kept_free();
    drop_user(&a);
    drop_user(&b);
    drop_user(&c);
}

static void test_long_persian_text_chunked(void **st)
{
    (void)st;
    struct user a, b;
    char *out;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    befriend(&a, &b);
    const char *line = "سلام، حالت چطوره؟ ";
    size_t ll = strlen(line), n = 40000 / ll + 1;
    char *text = malloc(n * ll + 4);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        memcpy(text + i * ll, line, ll);
    memcpy(text + n * ll, "END", 4); /* order is checked by the ending */
    struct user *tb[1] = {&b};
    assert_true(ctl(&a, &out, "send", "bob", text, NULL));
    assert_true(carry(&a, tb, 1) >= 3);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, text));
    assert_int_equal(b.events, 1);
    free(text);
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

static void test_bad_input(void **st)
{
    (void)st;
    struct user a;
    char *out, before[4096];
    new_user(&a, "ali");
    assert_true(ctl(&a, &out, "outbox", NULL));
    snprintf(before, sizeof before, "%s", out);
    assert_false(ctl(&a, &out, "send", "nobody", "hi", NULL));
    assert_true(has_line(out, "unknown contact 'nobody'"));
    assert_false(ctl(&a, &out, "send", "chp1qqqq", "hi", NULL));
    assert_true(has_line(out, "malformed ID"));
    assert_false(ctl(&a, &out, "contact-add", "chp1notanid", "x", NULL));
    assert_true(has_line(out, "malformed ID"));
    assert_false(ctl(&a, &out, "contact-add", a.id, "me", NULL));
    assert_false(ctl(&a, &out, "send", "#lan", "", NULL));
    assert_true(has_line(out, "empty message"));
    assert_false(ctl(&a, &out, "send", "#lan", "\xff\xfe bad", NULL));
    assert_true(has_line(out, "not valid UTF-8"));
    char *big = malloc(70000);
    assert_non_null(big);
    memset(big, 'a', 69999);
    big[69999] = '\0';
    assert_false(ctl(&a, &out, "send", "#lan", big, NULL));
    assert_true(has_line(out, "too long"));
    free(big);
    assert_false(ctl(&a, &out, "send", "#lan", NULL));
    assert_true(has_line(out, "wrong arguments"));
    assert_false(ctl(&a, &out, "init", "again", "none", NULL));
    assert_true(has_line(out, "already exists"));
    assert_true(ctl(&a, &out, "outbox", NULL));
    assert_string_equal(out, before);
    uint8_t *env;
    size_t len;
    assert_int_equal(take(&a, &env, &len), 0);
    /* hostile envelopes: garbage with one of our tags does not open */
    uint8_t junk[345] = {1};
    chp_msg_on_envelope(a.m, junk, sizeof junk, junk, 0);
    assert_true(ctl(&a, &out, "inbox", NULL));
    assert_string_equal(out, "");
    drop_user(&a);
}

/* Whether u's outbox shows the message it sent last as delivered. */
static int last_delivered(struct user *u)
{
    char *out;
    assert_true(ctl(u, &out, "outbox", NULL));
    const char *last = out, *p;
    while ((p = strchr(last, '\n')) && p[1])
        last = p + 1;
    return strstr(last, "\tdelivered\t") != NULL;
}

/* Alice writes Bob more than TAG_WINDOW envelopes in one epoch (as one
 * file does): Bob's node must still recognise her next one after his tag
 * table is rebuilt, by a restart or in place (a room joined). It came
 * back with seq 0..63 only, so her next text stayed `sent` for good
 * (it_sent_after_restart). */
static void test_tag_window_survives_rebuild(void **st)
{
    (void)st;
    struct user a, b;
    char *out, text[64];
    new_user(&a, "ali");
    new_user(&b, "bahar");
    befriend(&a, &b);
    for (int i = 0; i < 70; i++) {
        snprintf(text, sizeof text, "before %d", i);
        assert_true(ctl(&a, &out, "send", "bob", text, NULL));
    }
    settle(&a, &b);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "\tbefore 69\t"));
    chp_msg_tick(b.m); /* what chapard does every second: the window is saved */
    close_user(&b);
    open_user(&b);
    unlock_user(&b);
    assert_true(ctl(&a, &out, "send", "bob", "after bob's restart", NULL));
    settle(&a, &b);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "\tafter bob's restart\t"));
    assert_true(last_delivered(&a));
    assert_true(ctl(&b, &out, "join", "#kitchen", NULL));
    assert_true(ctl(&a, &out, "send", "bob", "after bob joined a room", NULL));
    settle(&a, &b);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "\tafter bob joined a room\t"));
    assert_true(last_delivered(&a));
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

/* A file of FR_PIECES pieces from Alice to Bob, its envelopes taken out
 * of her node in the order she sends them (0: the manifest, k: piece
 * k - 1), so a test hands them to Bob's node in the order sync might. */
#define FR_PIECES 100u
static uint8_t *g_fr[FR_PIECES + 1];
static size_t g_frlen[FR_PIECES + 1];

static void fr_send(struct user *a, char id[33])
{
    char path[300], *out;
    snprintf(path, sizeof path, "%s/big.bin", a->dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < (size_t)(FR_PIECES - 1) * CHP_FILE_PIECE + 100; i++)
        fputc((int)(i * 7 % 251), f);
    assert_int_equal(fclose(f), 0);
    assert_true(ctl(a, &out, "send-file", "bob", path, NULL));
    snprintf(id, 33, "%.32s", out);
    for (size_t k = 0; k <= FR_PIECES; k++) {
        uint8_t eid[32];
        assert_true(take(a, &g_fr[k], &g_frlen[k]));
        chp_envelope_id(g_fr[k], g_frlen[k], eid);
        chp_msg_on_held(a->m, eid);
    }
}

/* Envelopes from .. to - 1 of the file into Bob's store and node, as
 * chapard's ingest does (stored first, then examined with its seq). */
static void fr_deliver(struct user *b, size_t from, size_t to)
{
    static chp_store_item it[FR_PIECES + 1];
    static uint8_t id[FR_PIECES + 1][32];
    for (size_t k = from; k < to; k++) {
        chp_env_hdr h;
        assert_int_equal(chp_envelope_parse(g_fr[k], g_frlen[k], &h, NULL, NULL, NULL), CHP_OK);
        chp_envelope_id(g_fr[k], g_frlen[k], id[k]);
        it[k] = (chp_store_item){.env = g_fr[k],
                                 .len = g_frlen[k],
                                 .id = id[k],
                                 .created = h.created,
                                 .expiry = h.expiry,
                                 .received = g_now,
                                 .link = 1,
                                 .mine = chp_msg_tag_mine(b->m, h.tag)};
    }
    assert_int_equal(chp_store_put_batch(b->s, it + from, to - from), CHP_OK); /* one commit */
    for (size_t k = from; k < to; k++) {
        assert_int_equal(it[k].result, CHP_OK);
        chp_msg_on_envelope(b->m, g_fr[k], g_frlen[k], id[k], it[k].seq);
    }
}

static void fr_free(void)
{
    for (size_t k = 0; k <= FR_PIECES; k++) {
        free(g_fr[k]);
        g_fr[k] = NULL;
    }
}

/* Pieces of file id Bob holds (`files`: "incoming N/M"); FR_PIECES once
 * saved. */
static unsigned fr_held(struct user *b, const char *id)
{
    char *out;
    assert_true(ctl(b, &out, "files", NULL));
    const char *line = strstr(out, id);
    assert_non_null(line);
    const char *st = strstr(line, "\tincoming ");
    if (st && st < strchr(line, '\n'))
        return (unsigned)atoi(st + 10);
    assert_non_null(strstr(line, "\tsaved "));
    return FR_PIECES;
}

/* Alice's next text reaches Bob, and her node hears his receipt. */
static void fr_text_after(struct user *a, struct user *b, const char *text)
{
    char *out, needle[128];
    assert_true(ctl(a, &out, "send", "bob", text, NULL));
    settle(a, b);
    snprintf(needle, sizeof needle, "\t%s\t", text);
    assert_true(ctl(b, &out, "inbox", NULL));
    assert_true(has_line(out, needle));
    assert_true(last_delivered(a));
}

/* Alice and Bob, contacts, and Alice's file sent (not yet delivered). */
static void fr_begin(struct user *a, struct user *b, char id[33])
{
    new_user(a, "ali");
    new_user(b, "bahar");
    befriend(a, b);
    fr_send(a, id);
}

static void fr_end(struct user *a, struct user *b)
{
    fr_free();
    kept_free();
    drop_user(a);
    drop_user(b);
}

/* Sync hands a file's pieces over in (created, id) order, not Alice's:
 * pieces past the 64 tags Bob's node computes ahead come first and are
 * read only once the window reaches them. Bob's node stops before its
 * next tick: what it held must still be there after the restart (it went
 * back: received pieces waited in memory), and the rest completes the
 * file (it stayed `incoming` for good), and Alice's next text reaches him. */
static void test_file_pieces_survive_restart(void **st)
{
    (void)st;
    struct user a, b;
    char id[33];
    fr_begin(&a, &b, id);
    fr_deliver(&b, FR_PIECES - 19, FR_PIECES + 1); /* pieces 80..99: not yet Bob's */
    chp_msg_tick(b.m);
    fr_deliver(&b, 0, 31); /* the manifest and pieces 0..29: the window reaches 80..99 */
    unsigned before = fr_held(&b, id);
    assert_int_equal(before, 50);
    close_user(&b); /* a clean stop, no tick since */
    open_user(&b);
    unlock_user(&b);
    assert_int_equal(fr_held(&b, id), before);
    fr_deliver(&b, 31, FR_PIECES - 19);
    assert_int_equal(fr_held(&b, id), FR_PIECES);
    fr_text_after(&a, &b, "after the file and bob's restart");
    fr_end(&a, &b);
}

/* The same, but Bob's node stops before anything of the file was read as
 * his (pieces 80..99 were stored, not recognised): once the manifest and
 * the rest come after the restart, those stored pieces are read too
 * (sync will not bring them again: the store holds them). */
static void test_file_pieces_stored_before_restart(void **st)
{
    (void)st;
    struct user a, b;
    char id[33];
    fr_begin(&a, &b, id);
    fr_deliver(&b, FR_PIECES - 19, FR_PIECES + 1);
    chp_msg_tick(b.m);
    close_user(&b);
    open_user(&b);
    unlock_user(&b);
    fr_deliver(&b, 0, FR_PIECES - 19);
    assert_int_equal(fr_held(&b, id), FR_PIECES);
    fr_text_after(&a, &b, "after the file stored across a restart");
    fr_end(&a, &b);
}

/* Field k (0-based) of a tab-separated line into out. */
static void tsv_field(const char *line, int k, char *out, size_t cap)
{
    for (int i = 0; i < k; i++) {
        line = strchr(line, '\t');
        assert_non_null(line);
        line++;
    }
    size_t n = strcspn(line, "\t\n");
    assert_true(n < cap);
    memcpy(out, line, n);
    out[n] = '\0';
}

/* A stranger's #lan file: the "file" progress event names its conversation
 * and sender as `files` does (the sender under the nick of their posts;
 * the event gave the bare key's label). */
static void test_file_event_names_as_files(void **st)
{
    (void)st;
    struct user a, b, *to_b[1] = {&b};
    char *out, path[300], ev_who[128], ev_conv[128], who[128], conv[128];
    new_user(&a, "ali");
    new_user(&b, "bahar");
    assert_true(ctl(&a, &out, "send", "#lan", "hello from ali", NULL));
    assert_int_equal(carry(&a, to_b, 1), 1);
    snprintf(path, sizeof path, "%s/note.txt", a.dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("a short file\n", f);
    assert_int_equal(fclose(f), 0);
    assert_true(ctl(&a, &out, "send-file", "#lan", path, NULL));
    assert_true(carry(&a, to_b, 1) >= 2); /* the manifest and its piece */
    assert_true(b.last_file[0]);
    tsv_field(b.last_file, 4, ev_conv, sizeof ev_conv);
    tsv_field(b.last_file, 5, ev_who, sizeof ev_who);
    assert_true(ctl(&b, &out, "files", NULL));
    tsv_field(out, 1, conv, sizeof conv);
    tsv_field(out, 2, who, sizeof who);
    assert_string_equal(ev_conv, conv);
    assert_string_equal(ev_who, who);
    assert_non_null(strstr(who, "ali"));
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

/* As test_file_pieces_survive_restart, but Bob's node dies (a child
 * process that _exits, as kill -9) instead of stopping: the pieces read
 * from the misses (marked his, examined before the last tick) and not
 * yet written are read again at the next unlock, as the rest are. */
static void test_file_pieces_survive_crash(void **st)
{
    (void)st;
    struct user a, b;
    char id[33];
    fr_begin(&a, &b, id);
    close_user(&b);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        open_user(&b);
        unlock_user(&b);
        fr_deliver(&b, FR_PIECES - 19, FR_PIECES + 1);
        chp_msg_tick(b.m);
        fr_deliver(&b, 0, 31);
        _exit(fr_held(&b, id) == 50 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    open_user(&b);
    unlock_user(&b);
    assert_int_equal(fr_held(&b, id), 50);
    fr_deliver(&b, 31, FR_PIECES - 19);
    assert_int_equal(fr_held(&b, id), FR_PIECES);
    fr_text_after(&a, &b, "after the file and bob's crash");
    fr_end(&a, &b);
}

/* Only the manifest and the first pieces of Alice's file reach Bob (the
 * rest is lost, or his node refuses the file and they never matter): her
 * next text, 100 tags further on, must still be read as hers. */
static void test_text_after_file_gap(void **st)
{
    (void)st;
    struct user a, b;
    char id[33];
    fr_begin(&a, &b, id);
    fr_deliver(&b, 0, 6);
    assert_int_equal(fr_held(&b, id), 5);
    fr_text_after(&a, &b, "after a file cut short");
    chp_msg_tick(b.m);
    close_user(&b);
    open_user(&b);
    unlock_user(&b);
    fr_text_after(&a, &b, "and after bob's restart");
    fr_end(&a, &b);
}

static void test_persistence_and_locking(void **st)
{
    (void)st;
    struct user a, b;
    char *out;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    befriend(&a, &b);
    assert_true(ctl(&a, &out, "send", "bob", "kept across restarts", NULL));
    settle(&a, &b);
    /* three in one second: the order they were written survives a restart */
    char before[4096];
    assert_true(ctl(&b, &out, "send", "#lan", "first", NULL));
    assert_true(ctl(&b, &out, "send", "alice", "second", NULL));
    assert_true(ctl(&b, &out, "send", "#lan", "third", NULL));
    assert_true(ctl(&b, &out, "outbox", NULL));
    snprintf(before, sizeof before, "%s", out);
    close_user(&b);
    open_user(&b);
    assert_int_equal(chp_msg_lock_state(b.m), CHP_MSG_LOCKED);
    assert_false(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "identity locked"));
    unlock_user(&b);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "\talice\talice\tkept across restarts\t"));
    assert_true(ctl(&b, &out, "outbox", NULL));
    assert_string_equal(out, before);
    assert_true(strstr(out, "\t#lan\t") < strstr(out, "\talice\t"));
    assert_true(ctl(&b, &out, "send", "alice", "after restart", NULL));
    settle(&a, &b);
    assert_true(ctl(&a, &out, "inbox", NULL));
    assert_true(has_line(out, "after restart"));
    /* the disk holds none of it in the clear */
    char path[300];
    snprintf(path, sizeof path, "%s/data.mdb", b.dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t disk[8 << 20];
    size_t got = fread(disk, 1, sizeof disk, f);
    fclose(f);
    assert_true(got > 0);
    assert_null(memmem(disk, got, "kept across restarts", 20));
    assert_null(memmem(disk, got, "alice", 5));
    assert_null(memmem(disk, got, "bahar", 5));
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

/* Every envelope a user node makes has the same lifetime, so a relay
 * cannot sort its store into DMs, receipts, room posts and contact
 * requests by it (issue 13, finding 10: they were 3, 3, 1 and 7 days). A
 * pending request is renewed at half its lifetime while the node runs. */
static void test_one_lifetime(void **st)
{
    (void)st;
    struct user a, b, c;
    char *out;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    new_user(&c, "cyrus");
    befriend(&a, &b);
    assert_true(ctl(&a, &out, "send", "bob", "a direct message", NULL));
    assert_true(ctl(&a, &out, "send", "#lan", "a room post", NULL));
    assert_true(ctl(&a, &out, "contact-add", c.id, "cyrus", NULL));
    uint8_t *env;
    size_t len, n = 0;
    uint64_t life = 0;
    while (take(&a, &env, &len)) {
        chp_env_hdr h;
        assert_int_equal(chp_envelope_parse(env, len, &h, NULL, NULL, NULL), CHP_OK);
        if (!n++)
            life = h.expiry - h.created;
        assert_int_equal(h.expiry - h.created, life);
        free(env);
    }
    assert_int_equal(n, 3);
    assert_int_equal(life, 3 * 86400);
    /* cyrus never answers: a day later nothing, two days later (past
     * half the lifetime) a renewed request under a new key */
    g_now += 86400;
    chp_msg_tick(a.m);
    assert_int_equal(take(&a, &env, &len), 0);
    g_now += 86400;
    chp_msg_tick(a.m);
    assert_int_equal(take(&a, &env, &len), 1);
    free(env);
    chp_msg_tick(a.m); /* once, not every tick */
    assert_int_equal(take(&a, &env, &len), 0);
    kept_free();
    drop_user(&a);
    drop_user(&b);
    drop_user(&c);
}

/* An own envelope waits for a neighbour's HELD while it is in the store;
 * one that left the store unconfirmed (expired) is forgotten, a fresh one
 * (maybe still on its way into the store) is not. */
static void test_unconfirmed_pruned(void **st)
{
    (void)st;
    struct user a, b;
    char *out;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    befriend(&a, &b);
    assert_true(ctl(&a, &out, "send", "bob", "never stored here", NULL));
    uint8_t *env, ids[4][32];
    size_t len;
    assert_int_equal(take(&a, &env, &len), 1);
    free(env);
    assert_int_equal(chp_msg_unconfirmed(a.m, ids, 4), 1);
    chp_msg_tick(a.m); /* young: kept although the store lacks it */
    assert_int_equal(chp_msg_unconfirmed(a.m, ids, 4), 1);
    g_now += 120;
    chp_msg_tick(a.m);
    assert_int_equal(chp_msg_unconfirmed(a.m, ids, 4), 0);
    /* and across a restart too (the record went with it) */
    close_user(&a);
    open_user(&a);
    unlock_user(&a);
    assert_int_equal(chp_msg_unconfirmed(a.m, ids, 4), 0);
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

/* Forward secrecy: once the epoch keys of a day are deleted (max TTL
 * later), an envelope of that day no longer opens with anything on disk. */
static void test_old_keys_deleted(void **st)
{
    (void)st;
    struct user a, b;
    char *out;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    befriend(&a, &b);
    assert_true(ctl(&a, &out, "send", "bob", "captured today", NULL));
    uint8_t *env;
    size_t len;
    assert_int_equal(take(&a, &env, &len), 1); /* captured, not delivered */
    uint8_t id[32];
    chp_envelope_id(env, len, id);
    /* still readable within the week */
    g_now += 6 * 86400;
    chp_msg_tick(b.m);
    close_user(&b);
    open_user(&b);
    unlock_user(&b);
    /* a week and a bit later the keys are gone, also from disk */
    g_now += 3 * 86400;
    chp_msg_tick(b.m);
    close_user(&b);
    open_user(&b);
    unlock_user(&b);
    chp_msg_on_envelope(b.m, env, len, id, 0);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_false(has_line(out, "captured today"));
    assert_int_equal(b.events, 0);
    /* ...while new messages still flow */
    assert_true(ctl(&a, &out, "send", "bob", "a new week", NULL));
    settle(&a, &b);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "a new week"));
    free(env);
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

/* ---- what a seized data dir still holds (issue 13, finding 12) ---- */

/* Calls fn for the plaintext of every record of table that someone
 * holding u's identity seed decrypts from anything left in its data dir. */
static void seized_records(const struct user *u, int table,
                           void (*fn)(void *ctx, const uint8_t *pt, size_t n), void *ctx)
{
    chp_identity *id = NULL;
    uint8_t skey[32];
    assert_int_equal(chp_account_load(u->dir, NULL, 0, &id), CHP_OK);
    chp_identity_storage_key(id, skey);
    chp_identity_destroy(&id);
    tu_seized_each(u->dir, skey, table, fn, ctx);
}

struct opener {
    const uint8_t *env, *sender;
    size_t len;
    int opened, versions;
};

/* A contact record version (msg_rec.c's layout): does its chain key,
 * carried forward to the envelope's epoch, open the envelope? */
static void try_open(void *ctx, const uint8_t *pt, size_t n)
{
    struct opener *o = ctx;
    if (n < 4 + 32 + 3 || memcmp(pt + 4, o->sender, 32))
        return;
    const uint8_t *r = pt + 4 + 32 + 2;
    size_t off = (size_t)(r - pt);
    off += 1 + r[0];
    if (off >= n)
        return;
    off += 1 + pt[off];          /* nick */
    off += 32 + 32 + 8 + 32 + 8; /* my_esk, my_epk, my_time, their_epk, their_time */
    if (off + 8 + 32 > n)
        return;
    o->versions++;
    uint64_t base = 0;
    for (int i = 0; i < 8; i++)
        base = base << 8 | pt[off + i];
    uint8_t k[32], key[32];
    memcpy(k, pt + off + 8, 32);
    chp_env_hdr hdr;
    assert_int_equal(chp_envelope_parse(o->env, o->len, &hdr, NULL, NULL, NULL), CHP_OK);
    uint64_t e = chp_epoch_of(hdr.created);
    if (base > e)
        return;
    for (uint64_t i = base; i < e; i++)
        chp_ks_epoch_next(k, k);
    chp_ks_msg_key(k, o->sender, key);
    uint8_t *out = malloc(o->len);
    chp_inner in;
    if (chp_envelope_open(o->env, o->len, key, out, o->len, &hdr, &in) == CHP_OK)
        o->opened++;
    free(out);
}

/* Forward secrecy on disk: once the epoch keys of a day are forgotten,
 * no version of the contact record left anywhere in data.mdb opens an
 * envelope captured that day (finding 12: earlier versions stayed in
 * LMDB's free pages, decryptable with the identity seed), and after
 * `contact remove` no version of the record decrypts at all. */
static void test_forgotten_keys_gone_from_disk(void **st)
{
    (void)st;
    struct user a, b;
    char *out;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    befriend(&a, &b);
    assert_true(ctl(&a, &out, "send", "bob", "captured today", NULL));
    uint8_t *env, apk[32];
    size_t len;
    assert_int_equal(take(&a, &env, &len), 1); /* captured, not delivered */
    assert_int_equal(chp_id_parse(a.id, strlen(a.id), apk), CHP_OK);
    struct opener o = {env, apk, len, 0, 0};
    seized_records(&b, 3, try_open, &o); /* the scan does open it today */
    assert_true(o.versions >= 1);
    assert_true(o.opened >= 1);
    /* A few days of traffic, then the day's keys expire. */
    for (int day = 0; day < 9; day++) {
        g_now += 86400;
        chp_msg_tick(b.m);
        assert_true(ctl(&a, &out, "send", "bob", "another day", NULL));
        settle(&a, &b);
    }
    o.opened = o.versions = 0;
    seized_records(&b, 3, try_open, &o);
    assert_true(o.versions >= 1); /* the live record */
    assert_int_equal(o.opened, 0);
    /* The contact removed: no version of the record is left. */
    assert_true(ctl(&b, &out, "contact-remove", "alice", NULL));
    o.opened = o.versions = 0;
    seized_records(&b, 3, try_open, &o);
    assert_int_equal(o.versions, 0);
    free(env);
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

/* ---- bounded room history (issue 13, finding 6) ---- */

static int lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* Every post of anyone in a room went into the history and memory for
 * good, outside the quota. Now the others' lines of a room are bounded
 * by the quota (1/16 of it here: 64 KiB), strangers' oldest first, and
 * counted in the store's bytes; a contact's room lines outlast the
 * strangers', own lines and DMs are never evicted. */
static void test_room_history_bounded(void **st)
{
    (void)st;
    struct user a, b, c;
    char *out, text[2100];
    new_user(&a, "ali");   /* a stranger to b */
    new_user(&b, "bahar"); /* the reader, with a 1 MiB quota */
    new_user(&c, "cyrus"); /* b's contact */
    close_user(&b);
    chp_store_opts so = {.quota = 1 << 20};
    assert_int_equal(chp_store_open(b.dir, &so, &b.s, NULL), CHP_OK);
    chp_msg_host hh = {.ctx = &b, .event = on_event, .now = fake_now, .pow_ntpb = 1};
    assert_int_equal(chp_msg_new(b.s, b.dir, &hh, &b.m), CHP_OK);
    unlock_user(&b);
    befriend(&b, &c);
    struct user *tb[1] = {&b};
    assert_true(ctl(&b, &out, "send", "#lan", "my own post", NULL));
    assert_true(ctl(&c, &out, "send", "alice", "a dm for bahar", NULL));
    assert_true(ctl(&c, &out, "send", "#lan", "cyrus in the room", NULL));
    settle(&b, &c);
    for (int i = 0; i < 60; i++) {
        memset(text, 'x', sizeof text);
        int k = snprintf(text, sizeof text, "stranger post %02d ", i);
        text[k] = 'x';
        text[2000] = '\0';
        assert_true(ctl(&a, &out, "send", "#lan", text, NULL));
        g_now += 7; /* a paces its own posts: 8 at once, then one per 7 s */
        chp_msg_tick(a.m);
        carry(&a, tb, 1);
    }
    kept_free();
    assert_true(ctl(&b, &out, "history", "#lan", "1000", NULL));
    int kept = lines_with(out, "stranger post ");
    assert_true(kept >= 20);
    assert_true(kept <= (64 << 10) / 2000);
    assert_true(has_line(out, "stranger post 59 "));
    assert_false(has_line(out, "stranger post 00 "));
    assert_true(has_line(out, "my own post"));
    assert_true(has_line(out, "cyrus in the room"));
    assert_true(ctl(&b, &out, "history", "bob", NULL)); /* c, as b named it */
    assert_true(has_line(out, "a dm for bahar"));
    /* The store counts the history: its bytes are in bytes stored. */
    chp_store_stats ss;
    chp_store_stats_get(b.s, &ss);
    assert_true(ss.local >= (uint64_t)kept * 2000);
    assert_true(ss.local < (64 << 10) + (32 << 10));
    assert_true(ss.bytes >= ss.local && ss.kept >= ss.local);
    /* The same after a restart. */
    close_user(&b);
    assert_int_equal(chp_store_open(b.dir, &so, &b.s, NULL), CHP_OK);
    assert_int_equal(chp_msg_new(b.s, b.dir, &hh, &b.m), CHP_OK);
    unlock_user(&b);
    assert_true(ctl(&b, &out, "history", "#lan", "1000", NULL));
    assert_int_equal(lines_with(out, "stranger post "), kept);
    assert_true(has_line(out, "my own post"));
    drop_user(&a);
    drop_user(&b);
    drop_user(&c);
}

/* The fingerprint a user's ID shows with. */
static void fpr_of(const struct user *u, char fpr[CHP_FPR_STR_LEN + 1])
{
    uint8_t pk[32];
    assert_int_equal(chp_id_parse(u->id, strlen(u->id), pk), CHP_OK);
    chp_id_fingerprint(pk, fpr);
}

/* How many times needle occurs in text. */
static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Issue 12, finding 5: a mistyped passphrase made a second, silent room
 * under the name of the first. Rooms now show a fingerprint of their key,
 * and a name already joined under another key is refused. */
static void test_room_fingerprint_and_rejoin(void **st)
{
    (void)st;
    struct user a, b, c;
    char *out, fa[16], want[512];
    new_user(&a, "ali");
    new_user(&b, "bahar");
    new_user(&c, "cyrus");
    assert_true(ctl(&a, &out, "join", "#Kitchen", "open sesame", NULL));
    assert_int_equal(strlen(out), CHP_FPR_STR_LEN);
    snprintf(fa, sizeof fa, "%s", out);
    snprintf(want, sizeof want, "#kitchen\tjoined\t%s", fa);
    assert_string_equal(a.last_room, want);
    uint8_t key[32];
    char fk[CHP_FPR_STR_LEN + 1];
    assert_int_equal(chp_ks_room_passphrase("#kitchen", 8, "open sesame", 11, key), CHP_OK);
    chp_ks_room_fingerprint(key, fk);
    assert_string_equal(fa, fk);
    /* the same passphrase elsewhere: the same fingerprint; another: not */
    assert_true(ctl(&b, &out, "join", "#kitchen", "open sesame", NULL));
    assert_string_equal(out, fa);
    assert_true(ctl(&c, &out, "join", "#kitchen", "open sesam", NULL));
    char fc[16];
    snprintf(fc, sizeof fc, "%s", out);
    assert_int_equal(strlen(fc), CHP_FPR_STR_LEN);
    assert_string_not_equal(fc, fa);
    assert_true(ctl(&a, &out, "rooms", NULL));
    snprintf(want, sizeof want, "#lan\tpublic\ts84qgkpe\n#kitchen\tpassphrase\t%s\n", fa);
    assert_string_equal(out, want);

    /* a mistyped passphrase for a room we are in: refused, both named */
    assert_false(ctl(&a, &out, "join", "#kitchen", "open sesam", NULL));
    snprintf(want, sizeof want,
             "already in #kitchen (fingerprint %s) with another passphrase (this one gives "
             "fingerprint %s); leave it first, or check the passphrase",
             fa, fc);
    assert_string_equal(out, want);
    assert_false(ctl(&a, &out, "join", "#kitchen", "open sesame", NULL));
    assert_string_equal(out, "already in #kitchen");
    assert_false(ctl(&a, &out, "join", "#kitchen", NULL));
    assert_true(has_line(out, "as a passphrase room (fingerprint ") && has_line(out, fa) &&
                has_line(out, "leave it first"));
    assert_false(ctl(&a, &out, "join", "#lan", "a pass", NULL));
    assert_true(has_line(out, "already in #lan as a public room (fingerprint s84qgkpe)") &&
                has_line(out, "leave it first"));
    assert_false(ctl(&a, &out, "join", "#lan", NULL));
    assert_string_equal(out, "already in #lan");
    /* nothing changed: still one kitchen, and it still reaches b */
    assert_true(ctl(&a, &out, "rooms", NULL));
    assert_int_equal(count_of(out, "#kitchen"), 1);
    assert_true(has_line(out, fa));
    struct user *to_bc[2] = {&b, &c};
    assert_true(ctl(&a, &out, "send", "#kitchen", "soup is ready", NULL));
    assert_int_equal(carry(&a, to_bc, 2), 1);
    assert_true(ctl(&b, &out, "inbox", NULL));
    assert_true(has_line(out, "soup is ready"));
    assert_true(ctl(&c, &out, "inbox", NULL));
    assert_false(has_line(out, "soup is ready"));
    /* the fingerprint survives a restart; leaving frees the name */
    close_user(&a);
    open_user(&a);
    unlock_user(&a);
    assert_true(ctl(&a, &out, "rooms", NULL));
    snprintf(want, sizeof want, "#kitchen\tpassphrase\t%s\n", fa);
    assert_true(has_line(out, want));
    assert_true(ctl(&a, &out, "history", "#kitchen", NULL));
    assert_true(has_line(out, "soup is ready"));
    assert_true(ctl(&a, &out, "leave", "#kitchen", NULL));
    assert_true(ctl(&a, &out, "join", "#kitchen", "open sesam", NULL));
    assert_string_equal(out, fc);
    /* another key under the same name is another room: the old room's
     * messages are not shown as this one's (they were, in its window) */
    assert_true(ctl(&a, &out, "history", "#kitchen", NULL));
    assert_false(has_line(out, "soup is ready"));
    assert_true(ctl(&a, &out, "conversations", NULL));
    assert_true(has_line(out, "#kitchen\troom\t0\t0\n"));
    /* back under the old passphrase, also after a restart: there they are */
    assert_true(ctl(&a, &out, "leave", "#kitchen", NULL));
    assert_true(ctl(&a, &out, "join", "#kitchen", "open sesame", NULL));
    close_user(&a);
    open_user(&a);
    unlock_user(&a);
    assert_true(ctl(&a, &out, "history", "#kitchen", NULL));
    assert_true(has_line(out, "soup is ready"));
    kept_free();
    drop_user(&a);
    drop_user(&b);
    drop_user(&c);
}

/* The one envelope from wants out next, taken but not delivered. */
static void take_one(struct user *from, uint8_t **env, size_t *len)
{
    assert_int_equal(take(from, env, len), 1);
    uint8_t id[32];
    chp_envelope_id(*env, *len, id);
    chp_msg_on_held(from->m, id);
}

static void deliver_to(struct user *to, uint8_t *env, size_t len)
{
    uint8_t id[32];
    chp_envelope_id(env, len, id);
    chp_msg_on_envelope(to->m, env, len, id, 0);
    free(env);
}

/* Issue 12, finding 6: a stranger who took a contact's nick showed as
 * "bob (fpr)" beside the contact's "bob", and nick changes went unsaid. */
static void test_strangers_marked_and_nick_changes(void **st)
{
    (void)st;
    struct user a, b, c;
    char *out, fc[CHP_FPR_STR_LEN + 1], want[512];
    new_user(&a, "ali");
    new_user(&b, "bahar");
    new_user(&c, "cyrus");
    befriend(&a, &b); /* a calls b "bob" */
    fpr_of(&c, fc);
    /* no contact name or nick can start with the stranger or notice mark */
    assert_false(ctl(&a, &out, "contact-add", c.id, "~bob", NULL));
    assert_true(has_line(out, "bad name"));
    assert_false(ctl(&a, &out, "contact-add", c.id, "*", NULL));
    assert_false(ctl(&c, &out, "nick", "~bob", NULL));
    assert_true(has_line(out, "not starting with '~' or '*'"));
    assert_false(ctl(&c, &out, "nick", "*", NULL));

    /* c, a stranger to a, takes the name a knows b by */
    assert_true(ctl(&c, &out, "nick", "bob", NULL));
    struct user *to_a[1] = {&a};
    assert_true(ctl(&b, &out, "send", "#lan", "from the real bob", NULL));
    assert_int_equal(carry(&b, to_a, 1), 1);
    assert_true(ctl(&c, &out, "send", "#lan", "from the fake bob", NULL));
    assert_int_equal(carry(&c, to_a, 1), 1);
    snprintf(want, sizeof want, "#lan\t~bob (%s)\t", fc);
    assert_true(has_line(a.last_msg, want)); /* the event too */
    assert_true(ctl(&a, &out, "inbox", NULL));
    assert_true(has_line(out, "\t#lan\tbob\tfrom the real bob\t1\t"));
    snprintf(want, sizeof want, "\t#lan\t~bob (%s)\tfrom the fake bob\t1\t", fc);
    assert_true(has_line(out, want));
    assert_true(ctl(&a, &out, "history", "#lan", NULL));
    assert_true(has_line(out, "\tin\tbob\t-\t"));
    snprintf(want, sizeof want, "\tin\t~bob (%s)\t-\t", fc);
    assert_true(has_line(out, want));

    /* c changes nick: a line of a's own says so, before the post */
    g_now += 10;
    assert_true(ctl(&c, &out, "nick", "carol", NULL));
    assert_true(ctl(&c, &out, "send", "#lan", "new name, same key", NULL));
    int ev = a.events;
    assert_int_equal(carry(&c, to_a, 1), 1);
    assert_int_equal(a.events, ev + 2);
    char notice[256];
    snprintf(notice, sizeof notice, "~bob (%s) is now known as ~carol (%s)", fc, fc);
    assert_true(ctl(&a, &out, "history", "#lan", NULL));
    snprintf(want, sizeof want, "\tin\t*\t-\t");
    const char *n1 = strstr(out, want);
    assert_non_null(n1);
    assert_true(has_line(n1, notice));
    const char *post = strstr(out, "new name, same key");
    assert_true(post && post > n1);
    assert_true(ctl(&a, &out, "inbox", NULL));
    snprintf(want, sizeof want, "\t#lan\t*\t%s\t1\t", notice);
    assert_true(has_line(out, want));
    snprintf(want, sizeof want, "\t#lan\t~carol (%s)\tnew name, same key\t1\t", fc);
    assert_true(has_line(out, want));
    /* a notice is nothing to read: #lan's unread count is the posts' */
    assert_true(ctl(&a, &out, "conversations", NULL));
    assert_true(has_line(out, "#lan\troom\t3\t"));

    /* a post's text cannot pass for a notice: its sender is the poster */
    g_now += 10;
    assert_true(ctl(&c, &out, "send", "#lan", notice, NULL));
    assert_int_equal(carry(&c, to_a, 1), 1);
    assert_true(ctl(&a, &out, "history", "#lan", NULL));
    assert_int_equal(count_of(out, "\tin\t*\t"), 1);
    assert_int_equal(count_of(out, notice), 2);

    /* a contact's nick change names the contact */
    g_now += 10;
    assert_true(ctl(&b, &out, "nick", "bobby", NULL));
    assert_true(ctl(&b, &out, "send", "#lan", "still me", NULL));
    assert_int_equal(carry(&b, to_a, 1), 1);
    assert_true(has_line(a.last_msg, "still me"));
    assert_true(ctl(&a, &out, "history", "#lan", NULL));
    assert_true(has_line(out, "\tin\t*\t-\t"));
    assert_true(has_line(out, "\tbob changed nick from bahar to bobby\n"));

    /* after a restart the last nicks are known: no second notice */
    close_user(&a);
    open_user(&a);
    unlock_user(&a);
    g_now += 10;
    assert_true(ctl(&c, &out, "send", "#lan", "after a's restart", NULL));
    assert_int_equal(carry(&c, to_a, 1), 1);
    assert_true(ctl(&a, &out, "history", "#lan", NULL));
    assert_int_equal(count_of(out, "\tin\t*\t"), 2);
    assert_true(ctl(&a, &out, "history", "#lan", NULL));
    assert_true(has_line(out, "\tin\t*\t-\t") && has_line(out, notice));

    /* posts arrive out of order (sync fills gaps late): only a newer
     * post changes the nick */
    uint8_t *e_old, *e_new;
    size_t l_old, l_new;
    g_now += 10;
    assert_true(ctl(&c, &out, "nick", "dara", NULL));
    assert_true(ctl(&c, &out, "send", "#lan", "written as dara", NULL));
    take_one(&c, &e_old, &l_old);
    g_now += 10;
    assert_true(ctl(&c, &out, "nick", "ela", NULL));
    assert_true(ctl(&c, &out, "send", "#lan", "written as ela", NULL));
    take_one(&c, &e_new, &l_new);
    deliver_to(&a, e_new, l_new);
    deliver_to(&a, e_old, l_old);
    assert_true(ctl(&a, &out, "history", "#lan", NULL));
    assert_int_equal(count_of(out, "\tin\t*\t"), 3);
    snprintf(want, sizeof want, "~carol (%s) is now known as ~ela (%s)", fc, fc);
    assert_true(has_line(out, want));
    snprintf(want, sizeof want, "~dara (%s)\t-\t", fc);
    assert_true(has_line(out, want)); /* the late post, under its own nick */
    kept_free();
    drop_user(&a);
    drop_user(&b);
    drop_user(&c);
}

/* A file from a (hostile) contact, sent raw: its manifest with name and
 * hash as given, then its pieces. */
static void raw_file_to(struct user *from, const char *to, const uint8_t id[16], const char *name,
                        const uint8_t *data, size_t size, const uint8_t hash[32])
{
    static uint8_t buf[CHP_PAYLOAD_MAX];
    chp_file_manifest mf = {.size = size,
                            .piece_size = CHP_FILE_PIECE,
                            .count = chp_file_count(size),
                            .name = (const uint8_t *)name,
                            .name_len = strlen(name)};
    memcpy(mf.id, id, 16);
    memcpy(mf.hash, hash, 32);
    size_t len = 0;
    assert_int_equal(chp_file_manifest_encode(&mf, buf, sizeof buf, &len), CHP_OK);
    assert_int_equal(chp_msg_queue_raw(from->m, to, CHP_CT_FILE, buf, len), CHP_OK);
    for (uint32_t i = 0; i < mf.count; i++) {
        chp_file_piece pc = {.index = i,
                             .data = data + (size_t)i * CHP_FILE_PIECE,
                             .len = chp_file_piece_len(size, i)};
        memcpy(pc.id, id, 16);
        assert_int_equal(chp_file_piece_encode(&pc, buf, sizeof buf, &len), CHP_OK);
        assert_int_equal(chp_msg_queue_raw(from->m, to, CHP_CT_PIECE, buf, len), CHP_OK);
    }
}

static void raw_file(struct user *from, const uint8_t id[16], const char *name, const uint8_t *data,
                     size_t size, const uint8_t hash[32])
{
    raw_file_to(from, "bob", id, name, data, size, hash);
}

/* Hostile files from a contact: a wrong whole-file hash is dropped and
 * nothing is written; a piece past the count is ignored; a name with
 * "../" and a leading dot is cleaned and the file lands inside the save
 * directory, byte for byte. */
static void test_hostile_files(void **st)
{
    (void)st;
    struct user a, b;
    new_user(&a, "alice");
    new_user(&b, "bob");
    befriend(&a, &b);
    static uint8_t data[40000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    uint8_t hash[32], bad[32] = {0}, id1[16] = {1}, id2[16] = {2}, id3[16] = {3}, id4[16] = {4},
                      h3[32], h4[32];
    chp_file_hash(id2, data, sizeof data, hash);

    raw_file(&a, id1, "wrong.bin", data, sizeof data, bad);
    /* pieces 0 and 1 swapped under the manifest of the file in order, and
     * a piece altered after the manifest was made: both signed by alice,
     * both refused whole */
    static uint8_t swapped[sizeof data], altered[sizeof data];
    memcpy(swapped, data + CHP_FILE_PIECE, CHP_FILE_PIECE);
    memcpy(swapped + CHP_FILE_PIECE, data, CHP_FILE_PIECE);
    memcpy(swapped + 2 * CHP_FILE_PIECE, data + 2 * CHP_FILE_PIECE,
           sizeof data - 2 * CHP_FILE_PIECE);
    chp_file_hash(id3, data, sizeof data, h3);
    raw_file(&a, id3, "swapped.bin", swapped, sizeof data, h3);
    memcpy(altered, data, sizeof data);
    altered[CHP_FILE_PIECE + 5] ^= 0x20;
    chp_file_hash(id4, data, sizeof data, h4);
    raw_file(&a, id4, "altered.bin", altered, sizeof data, h4);
    /* a piece past the end of file 2, before its manifest */
    uint8_t buf[64];
    chp_file_piece extra = {.index = 7, .data = data, .len = 10};
    memcpy(extra.id, id2, 16);
    size_t len = 0;
    assert_int_equal(chp_file_piece_encode(&extra, buf, sizeof buf, &len), CHP_OK);
    assert_int_equal(chp_msg_queue_raw(a.m, "bob", CHP_CT_PIECE, buf, len), CHP_OK);
    raw_file(&a, id2,
             "../x/../.hidden\xe2\x80\xae"
             "gpj.exe",
             data, sizeof data, hash);
    settle(&a, &b);

    char *out, path[512];
    assert_true(ctl(&b, &out, "files", NULL));
    assert_false(has_line(out, "wrong.bin")); /* refused whole */
    assert_false(has_line(out, "swapped.bin"));
    assert_false(has_line(out, "altered.bin"));
    assert_true(has_line(out, "\t_x_.._.hidden_gpj.exe\t40000\tsaved "));
    assert_int_equal(count_of(out, "\n"), 1);
    snprintf(path, sizeof path, "%s/files/alice/_x_.._.hidden_gpj.exe", b.dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t back[40001];
    assert_int_equal(fread(back, 1, sizeof back, f), sizeof data);
    fclose(f);
    assert_memory_equal(back, data, sizeof data);
    /* nothing but that one file in the save directory */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(find '%s/files' -type f | wc -l) -eq 1", b.dir);
    assert_int_equal(system(cmd), 0);
    drop_user(&a);
    drop_user(&b);
    kept_free();
}

/* A member of the room forges a piece of someone else's file (same file
 * id and index, its own signature), before the real one: it is filed
 * under the forger, and the real file completes, checked, byte for byte. */
static void test_room_file_forged_piece(void **st)
{
    (void)st;
    struct user a, b, c;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    new_user(&c, "cyrus");
    static uint8_t data[40000], forged[CHP_FILE_PIECE], buf[CHP_PAYLOAD_MAX];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    memset(forged, 0x66, sizeof forged);
    uint8_t id[16] = {0x51, 0x52}, hash[32];
    chp_file_hash(id, data, sizeof data, hash);
    chp_file_piece pc = {.index = 1, .data = forged, .len = sizeof forged};
    memcpy(pc.id, id, 16);
    size_t len = 0;
    assert_int_equal(chp_file_piece_encode(&pc, buf, sizeof buf, &len), CHP_OK);
    assert_int_equal(chp_msg_queue_raw(c.m, "#lan", CHP_CT_PIECE, buf, len), CHP_OK);
    struct user *to_b[1] = {&b};
    assert_int_equal(carry(&c, to_b, 1), 1);
    raw_file_to(&a, "#lan", id, "real.bin", data, sizeof data, hash);
    assert_int_equal(carry(&a, to_b, 1), 4);

    char *out, idhex[33], path[512], line[256];
    assert_true(ctl(&b, &out, "files", NULL));
    chp_hex_encode(id, 16, idhex);
    snprintf(line, sizeof line, "%s	#lan	", idhex);
    assert_true(has_line(out, line));
    assert_true(has_line(out, "	real.bin	40000	complete	"));
    snprintf(path, sizeof path, "%s/real.bin", b.dir);
    assert_true(ctl(&b, &out, "file-save", idhex, path, NULL));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t back[40001];
    assert_int_equal(fread(back, 1, sizeof back, f), sizeof data);
    fclose(f);
    assert_memory_equal(back, data, sizeof data);
    unlink(path);
    kept_free();
    drop_user(&a);
    drop_user(&b);
    drop_user(&c);
}

/* Everything from wants out, to `to` as chapard hands a neighbour's
 * envelopes over: the refuse hook first, with the id the mesh's check
 * made (none refused here), then examined; with manifest_last the first
 * envelope (a file's manifest) goes after the rest. */
static void carry_judged(struct user *from, struct user *to, int manifest_last)
{
    uint8_t *env[64];
    size_t len[64], n = 0;
    while (n < 64 && take(from, &env[n], &len[n]))
        n++;
    assert_true(n > 0 && n < 64);
    uint8_t src[16] = {7};
    for (size_t k = 0; k < n; k++) {
        size_t i = manifest_last ? (k + 1) % n : k;
        uint8_t id[32];
        chp_envelope_id(env[i], len[i], id);
        chp_msg_on_held(from->m, id);
        assert_int_equal(chp_msg_refuse(to->m, env[i], len[i], id, src), 0);
        chp_msg_on_envelope(to->m, env[i], len[i], id, 0);
    }
    for (size_t i = 0; i < n; i++)
        free(env[i]);
}

/* A stranger's room files are checked, once every piece is there, from
 * the digests their pieces' signatures were verified against (opened
 * once by the refuse hook, not verified again when examined), not read
 * back: a wrong whole-file hash, two pieces swapped, a piece altered
 * after the manifest was made, and a last piece short of the manifest's
 * size (sent before the manifest, so nothing checked its length) are
 * dropped whole; the honest file is complete and saves byte for byte. */
static void test_room_files_checked_from_digests(void **st)
{
    (void)st;
    struct user a, b;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    static uint8_t data[40000], swapped[sizeof data], altered[sizeof data];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 11 + 3);
    uint8_t id1[16] = {0x61}, id2[16] = {0x62}, id3[16] = {0x63}, id4[16] = {0x64},
            id5[16] = {0x65}, bad[32] = {1}, h[32];
    raw_file_to(&a, "#lan", id1, "wrong.bin", data, sizeof data, bad);
    carry_judged(&a, &b, 0);
    memcpy(swapped, data + CHP_FILE_PIECE, CHP_FILE_PIECE);
    memcpy(swapped + CHP_FILE_PIECE, data, CHP_FILE_PIECE);
    memcpy(swapped + 2 * CHP_FILE_PIECE, data + 2 * CHP_FILE_PIECE,
           sizeof data - 2 * CHP_FILE_PIECE);
    chp_file_hash(id2, data, sizeof data, h);
    raw_file_to(&a, "#lan", id2, "swapped.bin", swapped, sizeof data, h);
    carry_judged(&a, &b, 1);
    memcpy(altered, data, sizeof data);
    altered[2 * CHP_FILE_PIECE + 9] ^= 0x04;
    chp_file_hash(id3, data, sizeof data, h);
    raw_file_to(&a, "#lan", id3, "altered.bin", altered, sizeof data, h);
    carry_judged(&a, &b, 0);
    /* the manifest says 40000 bytes; the pieces (and the hash) hold 39990 */
    static uint8_t buf[CHP_PAYLOAD_MAX];
    chp_file_hash(id4, data, sizeof data - 10, h);
    chp_file_manifest mf = {.size = sizeof data,
                            .piece_size = CHP_FILE_PIECE,
                            .count = chp_file_count(sizeof data),
                            .name = (const uint8_t *)"short.bin",
                            .name_len = 9};
    memcpy(mf.id, id4, 16);
    memcpy(mf.hash, h, 32);
    size_t len = 0;
    assert_int_equal(chp_file_manifest_encode(&mf, buf, sizeof buf, &len), CHP_OK);
    assert_int_equal(chp_msg_queue_raw(a.m, "#lan", CHP_CT_FILE, buf, len), CHP_OK);
    for (uint32_t i = 0; i < mf.count; i++) {
        chp_file_piece pc = {.index = i,
                             .data = data + (size_t)i * CHP_FILE_PIECE,
                             .len = chp_file_piece_len(sizeof data - 10, i)};
        memcpy(pc.id, id4, 16);
        assert_int_equal(chp_file_piece_encode(&pc, buf, sizeof buf, &len), CHP_OK);
        assert_int_equal(chp_msg_queue_raw(a.m, "#lan", CHP_CT_PIECE, buf, len), CHP_OK);
    }
    carry_judged(&a, &b, 1);
    chp_file_hash(id5, data, sizeof data, h);
    raw_file_to(&a, "#lan", id5, "good.bin", data, sizeof data, h);
    carry_judged(&a, &b, 1);

    char *out, idhex[33], path[512];
    assert_true(ctl(&b, &out, "files", NULL));
    assert_false(has_line(out, "wrong.bin"));
    assert_false(has_line(out, "swapped.bin"));
    assert_false(has_line(out, "altered.bin"));
    assert_false(has_line(out, "short.bin"));
    assert_true(has_line(out, "\tgood.bin\t40000\tcomplete\t"));
    assert_int_equal(count_of(out, "\n"), 1);
    chp_hex_encode(id5, 16, idhex);
    snprintf(path, sizeof path, "%s/good.bin", b.dir);
    assert_true(ctl(&b, &out, "file-save", idhex, path, NULL));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t back[sizeof data + 1];
    assert_int_equal(fread(back, 1, sizeof back, f), sizeof data);
    fclose(f);
    assert_memory_equal(back, data, sizeof data);
    unlink(path);
    drop_user(&a);
    drop_user(&b);
}

/* The pieces and the hash of a file cut as cut[0..n) (pieces of those
 * lengths, not the usual split) sent by from to a room, pieces first (a
 * hostile poster: nothing checks a piece's length before the manifest). */
static void raw_cut_file(struct user *from, const uint8_t id[16], const char *name,
                         const uint8_t *data, const size_t *cut, size_t n)
{
    static uint8_t buf[CHP_PAYLOAD_MAX];
    chp_file_hash_ctx hc;
    chp_file_hash_init(&hc, id);
    size_t off = 0, len = 0;
    for (uint32_t i = 0; i < n; i++) {
        chp_file_piece pc = {.index = i, .data = data + off, .len = cut[i]};
        memcpy(pc.id, id, 16);
        uint8_t d[32];
        chp_file_piece_digest(id, i, data + off, cut[i], d);
        chp_file_hash_digest(&hc, d);
        assert_int_equal(chp_file_piece_encode(&pc, buf, sizeof buf, &len), CHP_OK);
        assert_int_equal(chp_msg_queue_raw(from->m, "#lan", CHP_CT_PIECE, buf, len), CHP_OK);
        off += cut[i];
    }
    chp_file_manifest mf = {.size = off,
                            .piece_size = CHP_FILE_PIECE,
                            .count = chp_file_count(off),
                            .name = (const uint8_t *)name,
                            .name_len = strlen(name)};
    assert_int_equal(mf.count, n);
    memcpy(mf.id, id, 16);
    chp_file_hash_final(&hc, mf.hash);
    assert_int_equal(chp_file_manifest_encode(&mf, buf, sizeof buf, &len), CHP_OK);
    assert_int_equal(chp_msg_queue_raw(from->m, "#lan", CHP_CT_FILE, buf, len), CHP_OK);
}

/* Review of the digest check (2026-12-03): pieces of the wrong lengths
 * that add up to the manifest's size (16156 + 16256 + 7588 = 40000, sent
 * before the manifest, with the hash over their digests) were taken as
 * complete; and a file of 70 pieces that comes last piece first, before
 * its manifest (digests far ahead of what is held are not kept), is
 * read back to be checked, and completes byte for byte. */
static void test_room_file_piece_lengths(void **st)
{
    (void)st;
    struct user a, b;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    static uint8_t data[70 * CHP_FILE_PIECE];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 5 + 1);
    uint8_t id1[16] = {0x71}, id2[16] = {0x72};
    size_t cut[3] = {16156, 16256, 7588};
    raw_cut_file(&a, id1, "odd.bin", data, cut, 3);
    struct user *to_b[1] = {&b};
    assert_int_equal(carry(&a, to_b, 1), 4); /* pieces, then the manifest */
    char *out;
    assert_true(ctl(&b, &out, "files", NULL));
    assert_false(has_line(out, "odd.bin\t40000\tcomplete"));
    /* 70 pieces, the last (shorter) first, the manifest last */
    size_t cuts[70];
    size_t size = 69 * (size_t)CHP_FILE_PIECE + 1000;
    for (size_t i = 0; i < 69; i++)
        cuts[i] = CHP_FILE_PIECE;
    cuts[69] = 1000;
    raw_cut_file(&a, id2, "late.bin", data, cuts, 70);
    uint8_t *env[71];
    size_t len[71];
    for (size_t k = 0; k < 71; k++)
        assert_true(take(&a, &env[k], &len[k]));
    for (size_t k = 0; k < 71; k++) {
        size_t i = k < 70 ? 69 - k : 70; /* pieces 69 .. 0, then the manifest */
        uint8_t eid[32];
        chp_envelope_id(env[i], len[i], eid);
        chp_msg_on_envelope(b.m, env[i], len[i], eid, 0);
        free(env[i]);
    }
    char want[64], idhex[33], path[512];
    snprintf(want, sizeof want, "\tlate.bin\t%zu\tcomplete\t", size);
    assert_true(ctl(&b, &out, "files", NULL));
    assert_true(has_line(out, want));
    chp_hex_encode(id2, 16, idhex);
    snprintf(path, sizeof path, "%s/late.bin", b.dir);
    assert_true(ctl(&b, &out, "file-save", idhex, path, NULL));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t back[sizeof data];
    assert_int_equal(fread(back, 1, sizeof back, f), size);
    fclose(f);
    assert_memory_equal(back, data, size);
    unlink(path);
    kept_free();
    drop_user(&a);
    drop_user(&b);
}

/* Review of the digest check (2026-12-03): when the received pieces could
 * not be written (the disk or the store's map full) the file was still
 * taken as complete from its digests; now it is read back, found short
 * and dropped. */
static void test_room_file_unwritten_pieces(void **st)
{
    (void)st;
    struct user a, b;
    new_user(&a, "ali");
    new_user(&b, "bahar");
    close_user(&b);
    chp_store_opts o = {.map_max = 4u << 20};
    assert_int_equal(chp_store_open(b.dir, &o, &b.s, NULL), CHP_OK);
    chp_msg_host h = {.ctx = &b, .event = on_event, .now = fake_now, .pow_ntpb = 1};
    assert_int_equal(chp_msg_new(b.s, b.dir, &h, &b.m), CHP_OK);
    unlock_user(&b);
    static uint8_t blob[32768];
    size_t sizes[3] = {sizeof blob, 4096, 256};
    unsigned k = 0;
    for (size_t j = 0; j < 3; j++) /* the map filled, to its last bytes */
        for (;; k++) {
            char key[32];
            snprintf(key, sizeof key, "fill%u", k);
            if (chp_store_local_put(b.s, CHP_TABLE_CONFIG, key, strlen(key), blob, sizes[j]) !=
                CHP_OK)
                break;
            assert_true(k < 100000);
        }
    static uint8_t data[40000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 3 + 7);
    uint8_t id[16] = {0x73}, hash[32];
    chp_file_hash(id, data, sizeof data, hash);
    raw_file_to(&a, "#lan", id, "lost.bin", data, sizeof data, hash);
    carry_judged(&a, &b, 0);
    char *out;
    assert_true(ctl(&b, &out, "files", NULL));
    assert_false(has_line(out, "lost.bin\t40000\tcomplete"));
    drop_user(&a);
    drop_user(&b);
}

int main(void)
{
    if (chp_crypto_init() != CHP_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dm_both_ways),
        cmocka_unit_test(test_request_accept_and_queue),
        cmocka_unit_test(test_rooms),
        cmocka_unit_test(test_forgotten_keys_gone_from_disk),
        cmocka_unit_test(test_room_history_bounded),
        cmocka_unit_test(test_tag_mine),
        cmocka_unit_test(test_long_persian_text_chunked),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_persistence_and_locking),
        cmocka_unit_test(test_tag_window_survives_rebuild),
        cmocka_unit_test(test_file_pieces_survive_restart),
        cmocka_unit_test(test_file_pieces_stored_before_restart),
        cmocka_unit_test(test_file_pieces_survive_crash),
        cmocka_unit_test(test_file_event_names_as_files),
        cmocka_unit_test(test_text_after_file_gap),
        cmocka_unit_test(test_old_keys_deleted),
        cmocka_unit_test(test_one_lifetime),
        cmocka_unit_test(test_unconfirmed_pruned),
        cmocka_unit_test(test_room_fingerprint_and_rejoin),
        cmocka_unit_test(test_strangers_marked_and_nick_changes),
        cmocka_unit_test(test_hostile_files),
        cmocka_unit_test(test_room_file_forged_piece),
        cmocka_unit_test(test_room_files_checked_from_digests),
        cmocka_unit_test(test_room_file_piece_lengths),
        cmocka_unit_test(test_room_file_unwritten_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
