/* test_bundle.c - mail on a USB stick: two users whose nodes never link
 * become contacts, talk and get their receipts by bundles alone; three
 * hops through a courier with sealed bundles and a wrong passphrase; a
 * spool directory answering a stick; hostile bundle files; kill -9 in the
 * middle of an import. Real chapard processes, the chapar CLI. */
#include "harness.h"
#include "node/client/ctl.h"
#include "proto/bundle.h"
#include "proto/cursor.h"
#include "proto/envelope.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* One trip of a stick: `to` writes its want, `from` exports what it lacks,
 * `to` imports it. pass: a passphrase file for all three, or NULL.
 * Returns the import's line (caller frees). */
static char *trip(h_ctx *h, const h_node *from, const h_node *to, const char *pass)
{
    char want[600], bundle[600];
    h_path(h, want, sizeof want, "stick.want");
    h_path(h, bundle, sizeof bundle, "stick.bundle");
    const char *pf = pass ? "--passphrase-file" : H_END;
    free(h_ok(h, to, "bundle", "want", want, pf, pass, H_END));
    free(h_ok(h, from, "bundle", "export", bundle, "--for", want, pf, pass, H_END));
    return h_ok(h, to, "bundle", "import", bundle, pf, pass, H_END);
}

static int established(h_ctx *h, const h_node *n, const char *name)
{
    char *out = h_ok(h, n, "contact", "list", H_END), line[64];
    snprintf(line, sizeof line, "%s\t", name);
    char *l = strstr(out, line);
    int ok = l && strstr(l, "\testablished\t") && strchr(l, '\n') > strstr(l, "\testablished\t");
    free(out);
    return ok;
}

/* Contacts of each other by sticks only: requests and answers travel by
 * trips until both say established. */
static void befriend_by_stick(h_ctx *h, h_node *a, const char *aid, h_node *b, const char *bid)
{
    free(h_ok(h, a, "contact", "add", bid, "bob", H_END));
    free(h_ok(h, b, "contact", "add", aid, "alice", H_END));
    h_expect(h, a, "envelopes stored", H_GE, 1); /* the requests sealed */
    h_expect(h, b, "envelopes stored", H_GE, 1);
    /* each answer needs a proof of work first: trips until both are done */
    for (int i = 0; i < 40 && !(established(h, a, "bob") && established(h, b, "alice")); i++) {
        free(trip(h, i % 2 ? b : a, i % 2 ? a : b, NULL));
        h_sleep_ms(100);
    }
    assert_true(established(h, a, "bob") && established(h, b, "alice"));
}

static int delivered(h_ctx *h, const h_node *n, const char *msgid)
{
    char *out = h_ok(h, n, "outbox", "--tsv", H_END), line[64];
    snprintf(line, sizeof line, "%s\tbob\tdelivered\t", msgid);
    int ok = strstr(out, line) != NULL;
    free(out);
    return ok;
}

static void users(h_ctx *h, h_node **a, h_node **b, char *aid, char *bid)
{
    *a = h_node_get(h, "alice");
    *b = h_node_get(h, "bob");
    h_init(h, *a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, *b, "bob-nick", bid, "--no-passphrase", H_END);
    h_start(h, "alice", H_END);
    h_start(h, "bob", H_END);
    befriend_by_stick(h, *a, aid, *b, bid);
}

static void test_two_nodes_never_linked(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1], m[33], p[33];
    h_node *a, *b;
    users(h, &a, &b, aid, bid);
    /* both are in #lan from the start */
    long long stored = h_status(h, a, "envelopes stored");
    h_send(h, a, "bob", "hello by stick", m);
    h_send(h, a, "#lan", "a post by stick", p);
    h_expect(h, a, "envelopes stored", H_EQ, stored + 2); /* both sealed and stored */

    char *out = trip(h, a, b, NULL);
    assert_non_null(strstr(out, "imported 2 new, 0 already held, 0 rejected"));
    free(out);
    free(h_await(h, b, "\talice\talice\thello by stick\n", "inbox", "--tsv", H_END));
    free(h_await(h, b, "\t#lan\talice\ta post by stick\n", "inbox", "--tsv", H_END));
    /* the same stick again: nothing new */
    char bundle[600];
    out = h_ok(h, b, "bundle", "import", h_path(h, bundle, sizeof bundle, "stick.bundle"), H_END);
    assert_string_equal(out, "imported 0 new, 2 already held, 0 rejected\n");
    free(out);
    /* not delivered before Bob's receipt comes back by another stick */
    out = h_ok(h, a, "outbox", H_END);
    assert_null(strstr(out, "delivered"));
    free(out);
    /* Bob's receipt needs its proof of work: sticks until it came back */
    for (int i = 0; i < 40 && !delivered(h, a, m); i++) {
        free(trip(h, b, a, NULL));
        h_sleep_ms(100);
    }
    assert_true(delivered(h, a, m));
    assert_int_equal(h_status(h, a, "peers connected"), 0);
    assert_int_equal(h_status(h, b, "peers connected"), 0);
}

static void test_three_hops_sealed(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1], m[33];
    h_node *a, *b;
    users(h, &a, &b, aid, bid);
    h_node *c = h_start(h, "courier", "--relay", H_END);
    /* a neighbour of the courier's: what comes in by stick is gossiped on */
    h_node *d = h_start(h, "neighbour", "--relay", "--peer", c->addr, H_END);
    h_expect(h, c, "peers connected", H_EQ, 1);
    const char *pass = h_write_file(h, "pass", "carry me\n", 9);
    char pass_path[600], wrong_path[600];
    snprintf(pass_path, sizeof pass_path, "%s", pass);
    snprintf(wrong_path, sizeof wrong_path, "%s", h_write_file(h, "wrong", "carry you\n", 10));
    long long stored = h_status(h, a, "envelopes stored");
    h_send(h, a, "bob", "over two sticks", m);
    h_expect(h, a, "envelopes stored", H_EQ, stored + 1);
    char *out = trip(h, a, c, pass_path); /* the contact handshake's envelopes too */
    assert_non_null(strstr(out, "new, 0 already held, 0 rejected"));
    free(out);
    h_expect(h, d, "envelopes stored", H_EQ, h_status(h, c, "envelopes stored"));

    /* the sealed stick: no magic, a whole number of chunks after the salt */
    char bundle[600];
    h_path(h, bundle, sizeof bundle, "stick.bundle");
    size_t len;
    uint8_t *bytes = h_read_file(bundle, &len);
    assert_false(chp_bundle_is_open(bytes, len));
    assert_int_equal((len - CHP_SEAL_SALT) % CHP_SEAL_CT, 0);
    free(bytes);

    /* C to B; at B first with the wrong passphrase: one line, nothing in */
    char want[600];
    h_path(h, want, sizeof want, "stick.want");
    free(h_ok(h, b, "bundle", "want", want, "--passphrase-file", pass_path, H_END));
    free(h_ok(h, c, "bundle", "export", bundle, "--for", want, "--passphrase-file", pass_path,
              H_END));
    long long before = h_status(h, b, "envelopes stored");
    char *err = NULL;
    int rc = h_chapar(h, b, &out, &err, "bundle", "import", bundle, "--passphrase-file", wrong_path,
                      H_END);
    assert_int_equal(rc, 1);
    assert_string_equal(err, "chapar: wrong passphrase, or not a bundle\n");
    assert_string_equal(out, "");
    free(out);
    free(err);
    assert_int_equal(h_status(h, b, "envelopes stored"), before);
    out = h_ok(h, b, "bundle", "import", bundle, "--passphrase-file", pass_path, H_END);
    assert_non_null(strstr(out, "imported 1 new, 0 already held, 0 rejected"));
    free(out);
    free(h_await(h, b, "\talice\talice\tover two sticks\n", "inbox", "--tsv", H_END));
}

static void test_spool(void **state)
{
    h_ctx *h = *state;
    char spool[600], stage[600], inside[700], path[800];
    h_path(h, spool, sizeof spool, "media");
    h_path(h, stage, sizeof stage, "stick");
    assert_int_equal(mkdir(spool, 0700), 0);
    assert_int_equal(mkdir(stage, 0700), 0);
    h_node *a = h_start(h, "a", "--relay", H_END);
    h_node *b = h_start(h, "b", "--relay", "--spool", spool, H_END);
    h_mkenv(h, "env", 3, H_END);
    for (int i = 0; i < 3; i++)
        h_publish(h, a, "env", i, NULL);
    h_mkenv(h, "benv", 1, H_END);
    h_publish(h, b, "benv", 0, NULL);
    snprintf(path, sizeof path, "%s/from-a.bundle", stage);
    free(h_ok(h, a, "bundle", "export", path, H_END));
    snprintf(path, sizeof path, "%s/a.want", stage);
    free(h_ok(h, a, "bundle", "want", path, H_END));
    /* the stick is mounted: it appears in the spool directory */
    snprintf(inside, sizeof inside, "%s/stick", spool);
    assert_int_equal(rename(stage, inside), 0);
    h_expect(h, b, "envelopes stored", H_EQ, 4);
    /* its answer: a bundle for a's want and b's own want */
    int found = 0;
    for (int t = 0; t < 200 && !found; t++) {
        h_sleep_ms(50);
        found = h_file_has(b->log, "left our want");
    }
    assert_true(found);
    assert_true(h_file_has(b->log, "imported 3 new, 0 already held, 0 rejected"));
    char answer[1100] = "";
    DIR *d = opendir(inside);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".bundle") && strcmp(e->d_name, "from-a.bundle"))
            snprintf(answer, sizeof answer, "%s/%s", inside, e->d_name);
    closedir(d);
    assert_true(answer[0]);
    char *out = h_ok(h, a, "bundle", "import", answer, H_END);
    assert_string_equal(out, "imported 1 new, 0 already held, 0 rejected\n");
    free(out);

    /* a medium nothing can be written to (sysfs: no room, no files) is one
     * log line, and the node goes on */
    snprintf(path, sizeof path, "%s/readonly", spool);
    assert_int_equal(symlink("/sys/kernel", path), 0);
    found = 0;
    for (int t = 0; t < 200 && !found; t++) {
        h_sleep_ms(50);
        found = h_file_has(b->log, "readonly: new medium; cannot write the answer");
    }
    assert_true(found);
    assert_int_equal(h_status(h, b, "envelopes stored"), 4);
}

/* ---- hostile files ---- */

/* A bundle of the given envelope files, built with the format's writer. */
static void write_bundle(h_ctx *h, const char *name, const char *const *envs, int n, char *path,
                         size_t cap)
{
    chp_buf b = {0};
    chp_bundle_wr w;
    assert_int_equal(chp_bundle_wr_begin(&w, CHP_BUNDLE_KIND_ENVELOPES, &b), CHP_OK);
    for (int i = 0; i < n; i++) {
        char p[600];
        size_t len;
        uint8_t *e = h_read_file(h_path(h, p, sizeof p, envs[i]), &len);
        assert_int_equal(chp_bundle_wr_rec(&w, CHP_REC_ENVELOPE, e, len, &b), CHP_OK);
        free(e);
    }
    assert_int_equal(chp_bundle_wr_end(&w, &b), CHP_OK);
    snprintf(path, cap, "%s", h_write_file(h, name, b.p, b.len));
    chp_buf_free(&b);
}

/* Imports path at n: asserts the exit code and that stderr is empty or one
 * line containing why; returns stdout + stderr (caller frees). */
static char *import_expect(h_ctx *h, const h_node *n, const char *path, int code, const char *why)
{
    char *out = NULL, *err = NULL;
    int rc = h_chapar(h, n, &out, &err, "bundle", "import", path, H_END);
    if (rc != code || (why && !strstr(err, why)))
        fail_msg("import %s: exit %d, stdout '%s', stderr '%s'", path, rc, out, err);
    assert_true(h_lines(err) <= 1 && h_lines(out) <= 1);
    size_t l = strlen(out) + strlen(err) + 1;
    char *all = malloc(l);
    snprintf(all, l, "%s%s", out, err);
    free(out);
    free(err);
    return all;
}

static void test_hostile(void **state)
{
    h_ctx *h = *state;
    h_node *n = h_start(h, "n", "--relay", H_END);
    h_mkenv(h, "ok", 3, H_END);
    h_mkenv(h, "pow", 1, "-k", "badpow", H_END);
    h_mkenv(h, "old", 1, "-a", "7200", "-t", "3600", H_END);
    const char *mixed[] = {"ok0", "pow0", "old0", "ok1"};
    char path[700], *out;
    write_bundle(h, "mixed.bundle", mixed, 4, path, sizeof path);
    out = import_expect(h, n, path, 0, NULL);
    assert_string_equal(out, "imported 2 new, 0 already held, 2 rejected (expired: 1, pow: 1)\n");
    free(out);

    const char *three[] = {"ok0", "ok1", "ok2"};
    write_bundle(h, "three.bundle", three, 3, path, sizeof path);
    size_t len;
    uint8_t *b = h_read_file(path, &len);
    /* cut short: the whole records before the cut are proven, imported */
    size_t first = CHP_BUNDLE_HDR_BYTES + chp_bundle_rec_size(chp_be32(b + 9));
    out = import_expect(h, n, h_write_file(h, "cut.bundle", b, first + 10), 1, "cut short");
    assert_non_null(strstr(out, "imported 0 new, 1 already held"));
    free(out);
    /* a flipped bit in the second record: its check fails, the first counts */
    b[first + 100] ^= 0x10;
    out = import_expect(h, n, h_write_file(h, "flip.bundle", b, len), 1, "record 2 fails");
    free(out);
    b[first + 100] ^= 0x10;
    /* a 4 GiB length (the largest a record can claim), and an over-limit one */
    chp_put_be32(b + first + 1, 0xffffffffu);
    out = import_expect(h, n, h_write_file(h, "huge.bundle", b, len), 1, "over the limit");
    free(out);
    chp_put_be32(b + first + 1, CHP_BUNDLE_REC_MAX + 1);
    out = import_expect(h, n, h_write_file(h, "over.bundle", b, len), 1, "over the limit");
    free(out);
    free(b);
    /* random bytes without a passphrase; and an empty file */
    uint8_t junk[3000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    out = import_expect(h, n, h_write_file(h, "junk.bundle", junk, sizeof junk), 1, "not a bundle");
    free(out);
    out = import_expect(h, n, h_write_file(h, "empty.bundle", "", 0), 1, "not a bundle");
    free(out);
    /* a want file is not a bundle; a relative path is refused by the CLI's
     * own absolutising, a missing file by the daemon */
    char want[600];
    free(h_ok(h, n, "bundle", "want", h_path(h, want, sizeof want, "n.want"), H_END));
    out = import_expect(h, n, want, 1, "want file");
    free(out);
    out = import_expect(h, n, "/nonexistent/x.bundle", 1, "No such file");
    free(out);
    assert_int_equal(h_status(h, n, "envelopes stored"), 2); /* ok0, ok1 */

    /* a blind export is bounded by --since and --max-size */
    char blind[600];
    h_path(h, blind, sizeof blind, "blind.bundle");
    h_sleep_ms(2100); /* whole seconds: created S, now S + 2 or later */
    out = h_ok(h, n, "bundle", "export", blind, "--since", "1s", H_END);
    if (!strstr(out, "exported 0 envelopes"))
        fail_msg("--since 1s: %s", out);
    free(out);
    out = h_ok(h, n, "bundle", "export", blind, "--since", "1h", "--max-size", "4K", H_END);
    assert_non_null(strstr(out, "exported 2 envelopes"));
    free(out);
    struct stat st;
    assert_int_equal(stat(blind, &st), 0);
    assert_true(st.st_size <= 4096);
    char *err = NULL; /* sealed, the smallest file is 64 KiB */
    assert_int_equal(h_chapar(h, n, &out, &err, "bundle", "export", blind, "--max-size", "4K",
                              "--passphrase-file", h_write_file(h, "p", "pw\n", 3), H_END),
                     1);
    assert_string_equal(err, "chapar: --max-size 4096 is below the smallest sealed bundle "
                             "(65536 bytes)\n");
    free(out);
    free(err);
}

/* ---- kill -9 during an import ---- */

/* 200 valid envelopes spread among 120,000 records that fail their proof
 * of work: the import takes long enough to be killed in its middle, while
 * the test makes only 200 real proofs of work (each costs ~10 ms of CPU;
 * the 50,000 would take minutes on the test machines). */
#define K_VALID 200
#define K_BAD   600

static void test_kill9_then_rerun(void **state)
{
    h_ctx *h = *state;
    h_node *n = h_start(h, "n", "--relay", H_END);
    pid_t pa = h_mkenv_async(h, "k", K_VALID / 2, H_END);
    pid_t pb = h_mkenv_async(h, "l", K_VALID / 2, H_END);
    h_wait_exit0(h, pa, "mkenv");
    h_wait_exit0(h, pb, "mkenv");
    chp_buf b = {0};
    chp_bundle_wr w;
    int bad_lucky = 0;
    assert_int_equal(chp_bundle_wr_begin(&w, CHP_BUNDLE_KIND_ENVELOPES, &b), CHP_OK);
    for (int i = 0; i < K_VALID; i++) {
        char name[32], p[600];
        size_t len;
        snprintf(name, sizeof name, "%c%d", i % 2 ? 'l' : 'k', i / 2);
        uint8_t *e = h_read_file(h_path(h, p, sizeof p, name), &len);
        assert_int_equal(chp_bundle_wr_rec(&w, CHP_REC_ENVELOPE, e, len, &b), CHP_OK);
        for (int k = 0; k < K_BAD; k++) { /* the nonce changed: the PoW fails */
            e[len - 1] ^= (uint8_t)(k + 1);
            e[len - 2] ^= (uint8_t)(k >> 8);
            /* (now and then a changed nonce still meets the target) */
            if (chp_envelope_check(e, len, (uint64_t)time(NULL), NULL, NULL, NULL) == CHP_E_ENV_POW)
                assert_int_equal(chp_bundle_wr_rec(&w, CHP_REC_ENVELOPE, e, len, &b), CHP_OK);
            else
                bad_lucky++;
            e[len - 1] ^= (uint8_t)(k + 1);
            e[len - 2] ^= (uint8_t)(k >> 8);
        }
        free(e);
    }
    assert_int_equal(chp_bundle_wr_end(&w, &b), CHP_OK);
    char path[700];
    snprintf(path, sizeof path, "%s", h_write_file(h, "big.bundle", b.p, b.len));
    chp_buf_free(&b);

    /* start the import in the background and kill the node in its middle */
    const char *argv[] = {h_bin("CHAPAR"), "--home", n->home, "bundle", "import", path, NULL};
    pid_t imp = h_spawn_aux(h, "import.log", argv);
    /* status straight on the control socket (no process to start): the
     * node answers while it imports, one slice per loop round */
    chp_ctl *c;
    assert_int_equal(chp_ctl_open(n->home, NULL, &c), CHP_OK);
    long long got = 0;
    uint64_t slowest = 0;
    for (int t = 0; t < 20000 && got < 1; t++) {
        chp_ctl_answer r;
        uint64_t t0 = chp_mono_ms();
        assert_int_equal(chp_ctl_call(c, 5000, "status", 0, NULL, NULL, &r), 1);
        if (chp_mono_ms() - t0 > slowest)
            slowest = chp_mono_ms() - t0;
        got = h_status_value(r.body, "accepted");
        chp_ctl_answer_free(&r);
    }
    chp_ctl_destroy(&c);
    assert_true(slowest < 1000);
    h_kill9(h, n);
    h_reap(h, imp, 10000);
    assert_true(got > 0);
    h_start(h, "n", H_END);
    long long kept = h_status(h, n, "envelopes stored");
    assert_true(kept > 0 && kept < K_VALID); /* killed in the middle */
    char *out = h_ok(h, n, "bundle", "import", path, "--quiet", H_END);
    char expect[200];
    snprintf(expect, sizeof expect, "imported %lld new, %lld already held, %d rejected (pow: %d)\n",
             K_VALID - kept, kept, K_VALID * K_BAD - bad_lucky, K_VALID * K_BAD - bad_lucky);
    assert_string_equal(out, expect);
    free(out);
    assert_int_equal(h_status(h, n, "envelopes stored"), K_VALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_nodes_never_linked, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_three_hops_sealed, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_spool, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_hostile, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_kill9_then_rerun, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
