/* test_store_limits.c - what a seized data dir holds and what the store
 * counts (issue 13, findings 12 and 6), with real daemons.
 *
 * Finding 12 was found by decrypting data.mdb with the identity seed:
 * after `contact remove` the removed contact's record, chain key
 * included, was still there in LMDB's free pages. This test does the
 * same to Bob's data dir while his chapard runs: every LMDB leaf node in
 * data.mdb whose value decrypts under the storage key (or under a key
 * from a vault slot that opens) and is a contacts record of Alice's key
 * counts, before and after the removal.
 *
 * Finding 6: `bytes stored` counts the local tables too (a room post of
 * 3 KB shows in it beside its envelope), so `store full` tells the truth.
 * The flood itself (bounded room history) is tested in test_msg.c: each
 * post here costs seconds of proof of work. */
#include "harness.h"
#include "tests/unit/testutil.h"

#include "node/msg/account.h"
#include "proto/crypto.h"
#include "proto/id.h"
#include "proto/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct contact_of {
    const uint8_t *pk;
    int found;
};

/* A contacts record (u32 klen || key = the contact's key || value). */
static void count_contact(void *ctx, const uint8_t *pt, size_t n)
{
    struct contact_of *c = ctx;
    c->found += n >= 36 && !memcmp(pt + 4, c->pk, 32);
}

/* Records of the contacts table (3) in n's data dir that decrypt with its
 * identity seed and whose record key is pk. */
static int seized_contact(h_ctx *h, const h_node *n, const uint8_t pk[32])
{
    (void)h;
    chp_identity *id = NULL;
    uint8_t skey[32];
    assert_int_equal(chp_account_load(n->home, NULL, 0, &id), CHP_OK);
    chp_identity_storage_key(id, skey);
    chp_identity_destroy(&id);
    struct contact_of c = {pk, 0};
    tu_seized_each(n->home, skey, 3, count_contact, &c);
    return c.found;
}

static void test_removed_contact_unrecoverable(void **state)
{
    h_ctx *h = *state;
    char aid[H_ID_LEN + 1], bid[H_ID_LEN + 1], line[512];
    h_node *a = h_node_get(h, "alice"), *b = h_node_get(h, "bob");
    h_init(h, a, "alice-nick", aid, "--no-passphrase", H_END);
    h_init(h, b, "bob-nick", bid, "--no-passphrase", H_END);
    h_start(h, "alice", H_END);
    h_start(h, "bob", "--peer", a->addr, H_END);
    h_expect(h, b, "peers connected", H_EQ, 1);
    free(h_ok(h, a, "contact", "add", bid, "bob", H_END));
    free(h_await(h, b, aid, "contact", "requests", H_END));
    free(h_ok(h, b, "contact", "accept", aid, "alice", H_END));
    snprintf(line, sizeof line, "alice\t%s\testablished", aid);
    free(h_await(h, b, line, "contact", "list", H_END));
    h_send(h, a, "bob", "before the removal", NULL);
    free(h_await(h, b, "before the removal", "inbox", "--tsv", H_END));

    uint8_t apk[32];
    assert_int_equal(chp_id_parse(aid, strlen(aid), apk), CHP_OK);
    assert_true(seized_contact(h, b, apk) >= 1); /* the scan sees the live record */

    /* A room post of 3000 bytes: one envelope of the 4 KiB bucket (4185
     * bytes), and its history record, which `bytes stored` counts too
     * (finding 6: it did not). */
    long long before = h_status(h, b, "bytes stored");
    char text[3001];
    memset(text, 'r', 3000);
    text[3000] = '\0';
    memcpy(text, "ROOMPOST", 8);
    h_send(h, a, "#lan", text, NULL);
    free(h_await(h, b, "ROOMPOST", "inbox", "--tsv", H_END));
    long long after = h_status(h, b, "bytes stored");
    assert_true(after - before >= 4185 + 3000);

    free(h_ok(h, b, "contact", "remove", "alice", H_END));
    assert_int_equal(seized_contact(h, b, apk), 0);
    h_stop(h, b);
    assert_int_equal(seized_contact(h, b, apk), 0);
    /* Bob's node still opens and reads what it kept. */
    h_start(h, "bob", H_END);
    char *out = h_ok(h, b, "history", "#lan", H_END);
    assert_non_null(strstr(out, "ROOMPOST"));
    free(out);
}

int main(void)
{
    if (chp_crypto_init() != CHP_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_removed_contact_unrecoverable, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
