/* test_vectors.c - known-answer vectors: recomputes every derivation of
 * docs/PROTOCOL.md from fixed inputs and compares it byte for byte with
 * tests/vectors/proto.exp. `test_vectors --write FILE` regenerates the file
 * (only when the protocol changes on purpose, with a version bump). */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/envelope.h"
#include "proto/id.h"
#include "proto/identity.h"
#include "proto/keys.h"
#include "proto/pow.h"
#include "proto/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Deterministic randomness: BLAKE2b(counter) keyed by a label, so vectors
 * are reproducible and documented (PROTOCOL.md "Test vectors"). */
struct det_rng {
    uint64_t counter;
};

static void det_fill(void *ctx, uint8_t *buf, size_t n)
{
    struct det_rng *r = ctx;
    static const char key[] = "chapar-test-vector-rng";
    while (n) {
        uint8_t c[8], block[64];
        chp_put_be64(c, r->counter++);
        chp_hash(block, sizeof block, c, sizeof c, key, sizeof key - 1);
        size_t k = n < sizeof block ? n : sizeof block;
        memcpy(buf, block, k);
        buf += k;
        n -= k;
    }
}

#define MAX_LINES 128
struct vec {
    char name[64];
    char *hex;
};
struct vecset {
    struct vec v[MAX_LINES];
    size_t n;
};

static void add(struct vecset *s, const char *name, const uint8_t *b, size_t n)
{
    assert_true(s->n < MAX_LINES);
    struct vec *v = &s->v[s->n++];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->hex = malloc(2 * n + 1);
    assert_non_null(v->hex);
    for (size_t i = 0; i < n; i++)
        sprintf(v->hex + 2 * i, "%02x", b[i]);
    v->hex[2 * n] = 0;
}

static void add_str(struct vecset *s, const char *name, const char *str)
{
    add(s, name, (const uint8_t *)str, strlen(str));
}

static void add_u64(struct vecset *s, const char *name, uint64_t x)
{
    uint8_t b[8];
    chp_put_be64(b, x);
    add(s, name, b, sizeof b);
}

static void seq_bytes(uint8_t *b, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(start + i);
}

/* Every vector, in file order. Inputs are listed too, so another
 * implementation needs nothing but the file and PROTOCOL.md. */
static void compute(struct vecset *s)
{
    uint8_t seed_a[32], seed_b[32], k[32], t16[16], out[64];
    seq_bytes(seed_a, 32, 0x00);
    seq_bytes(seed_b, 32, 0x20);
    chp_identity *a = NULL, *b = NULL;
    assert_int_equal(chp_identity_from_seed(seed_a, &a), CHP_OK);
    assert_int_equal(chp_identity_from_seed(seed_b, &b), CHP_OK);
    const uint8_t *pa = chp_identity_pk(a), *pb = chp_identity_pk(b);
    char id[CHP_ID_STR_LEN + 1], fpr[CHP_FPR_STR_LEN + 1], sn[CHP_SAFETY_STR_LEN + 1];

    add(s, "alice.seed", seed_a, 32);
    add(s, "alice.pk", pa, 32);
    add(s, "alice.xpk", chp_identity_xpk(a), 32);
    chp_id_encode(pa, id);
    add_str(s, "alice.id", id);
    chp_id_fingerprint(pa, fpr);
    add_str(s, "alice.fingerprint", fpr);
    add(s, "bob.seed", seed_b, 32);
    add(s, "bob.pk", pb, 32);
    add(s, "bob.xpk", chp_identity_xpk(b), 32);
    chp_id_encode(pb, id);
    add_str(s, "bob.id", id);
    chp_safety_number(pa, pb, sn);
    add_str(s, "safety_number.alice_bob", sn);

    /* Generic KDF. */
    seq_bytes(k, 32, 0x40);
    add(s, "kdf.key", k, 32);
    chp_kdf(out, 32, k, "chapar-example-v1", "abc", 3);
    add(s, "kdf.chapar-example-v1.abc", out, 32);

    /* Contact root from ephemeral X25519 keys. */
    uint8_t ea_sk[32], eb_sk[32], ea_pk[32], eb_pk[32], root_a[32], root_b[32];
    seq_bytes(ea_sk, 32, 0x60);
    seq_bytes(eb_sk, 32, 0x80);
    chp_x25519_base(ea_pk, ea_sk);
    chp_x25519_base(eb_pk, eb_sk);
    add(s, "contact.alice_eph_sk", ea_sk, 32);
    add(s, "contact.alice_eph_pk", ea_pk, 32);
    add(s, "contact.bob_eph_sk", eb_sk, 32);
    add(s, "contact.bob_eph_pk", eb_pk, 32);
    assert_int_equal(chp_ks_root(ea_sk, ea_pk, eb_pk, pa, pb, root_a), CHP_OK);
    assert_int_equal(chp_ks_root(eb_sk, eb_pk, ea_pk, pb, pa, root_b), CHP_OK);
    assert_memory_equal(root_a, root_b, 32);
    add(s, "contact.root", root_a, 32);
    uint8_t ek[32];
    chp_ks_epoch_first(root_a, ek);
    add(s, "contact.epoch0", ek, 32);
    chp_ks_msg_key(ek, pa, k);
    add(s, "contact.epoch0.msg_key_from_alice", k, 32);
    chp_ks_tag(ek, pb, 0, t16);
    add(s, "contact.epoch0.tag_to_bob.seq0", t16, 16);
    chp_ks_tag(ek, pb, 1, t16);
    add(s, "contact.epoch0.tag_to_bob.seq1", t16, 16);
    chp_ks_epoch_next(ek, ek);
    add(s, "contact.epoch1", ek, 32);
    chp_ks_epoch_next(ek, ek);
    add(s, "contact.epoch2", ek, 32);

    /* First contact. */
    uint64_t epoch = chp_epoch_of(1800000000u);
    add_u64(s, "intro.epoch", epoch);
    chp_ks_intro_tag(pb, epoch, t16);
    add(s, "intro.tag_to_bob", t16, 16);
    assert_int_equal(chp_ks_intro_key_send(ea_sk, ea_pk, pb, k), CHP_OK);
    add(s, "intro.key_alice_eph_to_bob", k, 32);
    uint8_t k2[32];
    assert_int_equal(chp_ks_intro_key_recv(b, ea_pk, k2), CHP_OK);
    assert_memory_equal(k, k2, 32);

    /* Rooms. */
    uint8_t room[32];
    assert_int_equal(chp_ks_room_public("#LAN", 4, room), CHP_OK);
    add(s, "room.#lan.key", room, 32);
    chp_ks_room_tag(room, epoch, t16);
    add(s, "room.#lan.tag", t16, 16);
    chp_ks_room_msg_key(room, epoch, k);
    add(s, "room.#lan.msg_key", k, 32);
    char rf[CHP_FPR_STR_LEN + 1];
    chp_ks_room_fingerprint(room, rf);
    add_str(s, "room.#lan.fingerprint", rf);
    assert_int_equal(chp_ks_room_passphrase("#secret", 7, "hunter2", 7, room), CHP_OK);
    add(s, "room.#secret.hunter2.key", room, 32);
    chp_ks_room_fingerprint(room, rf);
    add_str(s, "room.#secret.hunter2.fingerprint", rf);

    /* Proof of work. */
    add_u64(s, "pow.target.1113.86400.16", chp_pow_target(1113, 86400, 16));
    uint8_t zero[32] = {0};
    add_u64(s, "pow.trial.zero.0", chp_pow_trial(zero, 0));

    /* A room post from Alice in #lan: the complete envelope. */
    struct det_rng dr = {0};
    chp_rng rng = {det_fill, &dr};
    chp_ks_room_tag(room, epoch, t16); /* #secret's tag: any tag will do */
    chp_ks_room_msg_key(room, epoch, k);
    static const char text[] = "salam \xd8\xb3\xd9\x84\xd8\xa7\xd9\x85";
    chp_env_seal_args sa = {.created = 1800000000u,
                            .expiry = 1800000000u + 86400u,
                            .tag = t16,
                            .key = k,
                            .type = CHP_CT_ROOM,
                            .payload = (const uint8_t *)text,
                            .len = sizeof text - 1};
    uint8_t env[CHP_ENV_MAX_BYTES], eid[32];
    size_t n = 0;
    assert_int_equal(chp_envelope_seal(&sa, a, &rng, env, sizeof env, &n), CHP_OK);
    add(s, "envelope.key", k, 32);
    add(s, "envelope.bytes", env, n);
    chp_envelope_id(env, n, eid);
    add(s, "envelope.id", eid, 32);
    assert_int_equal(chp_envelope_check(env, n, 1800000000u, NULL, NULL, NULL), CHP_OK);
    /* ... and in a PUSHES frame (PROTOCOL.md §15), on its own. */
    uint8_t pf[2 + 2 + CHP_ENV_MAX_BYTES];
    size_t pl = 0;
    assert_int_equal(chp_wire_pushes_add(pf, sizeof pf, &pl, env, n), CHP_OK);
    add(s, "wire.pushes.envelope", pf, pl);

    /* Sealed identity files. */
    uint8_t kf[CHP_KEYFILE_BYTES];
    seq_bytes(k, 32, 0xa0);
    dr.counter = 1000;
    assert_int_equal(chp_identity_seal_key(a, k, &rng, kf), CHP_OK);
    add(s, "keyfile.key", k, 32);
    add(s, "keyfile.alice.key_mode", kf, sizeof kf);
    dr.counter = 2000;
    assert_int_equal(chp_identity_seal_passphrase(a, "correct horse", 13, 1, 8, &rng, kf), CHP_OK);
    add(s, "keyfile.alice.passphrase_mode.correct horse", kf, sizeof kf);

    chp_identity_destroy(&a);
    chp_identity_destroy(&b);
}

static void free_set(struct vecset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].hex);
}

static void test_vectors_match(void **state)
{
    (void)state;
    const char *dir = getenv("CHP_VECTORS");
    assert_non_null(dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/proto.exp", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct vecset s = {0};
    compute(&s);
    static char line[65536];
    size_t i = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = 0;
        char *sp = strrchr(line, ' ');
        assert_non_null(sp);
        *sp = 0;
        assert_true(i < s.n);
        assert_string_equal(line, s.v[i].name);
        assert_string_equal(sp + 1, s.v[i].hex);
        i++;
    }
    assert_int_equal(i, s.n);
    fclose(f);
    free_set(&s);
}

int main(int argc, char **argv)
{
    if (chp_crypto_init() != CHP_OK)
        return 1;
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        struct vecset s = {0};
        compute(&s);
        FILE *f = fopen(argv[2], "w");
        if (!f)
            return 1;
        fprintf(f, "# Chapar protocol v1 known-answer vectors (docs/PROTOCOL.md).\n"
                   "# Format: NAME HEX. Strings (ids, safety numbers) are hex of their "
                   "ASCII.\n");
        for (size_t i = 0; i < s.n; i++)
            fprintf(f, "%s %s\n", s.v[i].name, s.v[i].hex);
        fclose(f);
        free_set(&s);
        return 0;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_vectors_match)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
