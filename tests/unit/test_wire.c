/* test_wire.c - node-to-node frames (proto/wire.c, PROTOCOL.md §15): the
 * exact bytes of every message type both ways, every decode error with the
 * message left all zero, every proper prefix and every extra byte, the PEERS
 * lookup, encoder limits and overflow, and a seeded random sweep checking
 * that whatever decodes re-encodes to the very same bytes. */
#include "proto/envelope.h"
#include "proto/err.h"
#include "proto/wire.h"
#include "tests/unit/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Scratch large enough for any frame these tests build. */
#define SCRATCH (2 * CHP_WIRE_MAX_FRAME)

/* Largest frames of each open or counted body. */
#define PUSH_MAX_FRAME  (1 + CHP_ENV_MAX_BYTES)
#define IDS_MAX_FRAME   (3 + CHP_WIRE_MAX_IDS * 32)
#define PEERS_MAX_FRAME (2 + CHP_WIRE_MAX_PEERS * (1 + CHP_WIRE_MAX_ADDR))

/* ---- helpers ---- */

static void seq(uint8_t *b, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(start + i);
}

/* A heap copy of exactly len bytes, so ASan sees any read past the frame. */
static uint8_t *dup_frame(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    assert_non_null(c);
    if (len)
        memcpy(c, p, len);
    return c;
}

static int all_zero(const chp_wire_msg *m)
{
    static const chp_wire_msg zero;
    return memcmp(m, &zero, sizeof zero) == 0;
}

/* Decodes a heap copy of f into a poisoned message. The message borrows
 * from *copy, which the caller frees. */
static int decode_copy(const uint8_t *f, size_t len, chp_wire_msg *m, uint8_t **copy)
{
    *copy = dup_frame(f, len);
    memset(m, 0xa5, sizeof *m);
    return chp_wire_decode(*copy, len, m);
}

/* The decode of f must fail with err and leave the message all zero. */
static void reject_at(const uint8_t *f, size_t len, int err, int line)
{
    chp_wire_msg m;
    uint8_t *c;
    int rc = decode_copy(f, len, &m, &c);
    int zero = all_zero(&m);
    free(c);
    if (rc != err || !zero)
        fail_msg("line %d: decode of %zu bytes (type %02x) = %s, %s; want %s, zeroed", line, len,
                 len ? f[0] : 0, chp_errname(rc), zero ? "zeroed" : "NOT zeroed", chp_errname(err));
}
#define REJECT(f, len, err) reject_at((f), (len), (err), __LINE__)

/* The decode of f must succeed; returns the message type. */
static uint8_t accept_at(const uint8_t *f, size_t len, int line)
{
    chp_wire_msg m;
    uint8_t *c;
    int rc = decode_copy(f, len, &m, &c);
    free(c);
    if (rc != CHP_OK)
        fail_msg("line %d: decode of %zu bytes (type %02x) = %s, want CHP_OK", line, len,
                 len ? f[0] : 0, chp_errname(rc));
    return m.type;
}
#define ACCEPT(f, len) accept_at((f), (len), __LINE__)

/* Encodes m again with the encoder of its type. */
static int reencode(const chp_wire_msg *m, uint8_t *buf, size_t cap, size_t *len)
{
    switch (m->type) {
    case CHP_WIRE_HELLO:
        return chp_wire_hello(buf, cap, len, m->u.hello.caps, m->u.hello.listen_port,
                              m->u.hello.max_frame);
    case CHP_WIRE_PUSH:
        return chp_wire_push(buf, cap, len, m->u.push.env, m->u.push.len);
    case CHP_WIRE_PUSHES: {
        const uint8_t *env;
        size_t off = 0, elen;
        int rc = CHP_OK;
        *len = 0;
        while (rc == CHP_OK && chp_wire_pushes_next(m, &off, &env, &elen) == CHP_OK)
            rc = chp_wire_pushes_add(buf, cap, len, env, elen);
        return rc;
    }
    case CHP_WIRE_IHAVE:
    case CHP_WIRE_IWANT:
    case CHP_WIRE_GRAFT:
    case CHP_WIRE_QUERY:
    case CHP_WIRE_HELD:
        return chp_wire_ids(buf, cap, len, m->type, m->u.ids.ids, m->u.ids.n);
    case CHP_WIRE_PRUNE:
        return chp_wire_prune(buf, cap, len);
    case CHP_WIRE_NEG:
        return chp_wire_neg(buf, cap, len, m->u.neg.session,
                            (uint8_t)(m->u.neg.initiator | (m->u.neg.more ? CHP_NEG_MORE : 0)),
                            m->u.neg.msg, m->u.neg.len);
    case CHP_WIRE_PING:
    case CHP_WIRE_PONG:
        return chp_wire_ping(buf, cap, len, m->type, m->u.nonce);
    case CHP_WIRE_PEERS: {
        char addr[CHP_WIRE_MAX_PEERS][CHP_WIRE_MAX_ADDR + 1];
        const char *ptrs[CHP_WIRE_MAX_PEERS];
        for (uint8_t i = 0; i < m->u.peers.n; i++) {
            const char *a = NULL;
            size_t l = 0;
            assert_rc(chp_wire_peer_at(m, i, &a, &l), CHP_OK);
            assert_true(l >= 1 && l <= CHP_WIRE_MAX_ADDR);
            memcpy(addr[i], a, l);
            addr[i][l] = '\0';
            ptrs[i] = addr[i];
        }
        return chp_wire_peers(buf, cap, len, ptrs, m->u.peers.n);
    }
    case CHP_WIRE_BYE: {
        char text[CHP_WIRE_MAX_TEXT + 1];
        assert_true(m->u.bye.len <= CHP_WIRE_MAX_TEXT);
        if (m->u.bye.len)
            memcpy(text, m->u.bye.text, m->u.bye.len);
        text[m->u.bye.len] = '\0';
        return chp_wire_bye(buf, cap, len, m->u.bye.code, text);
    }
    default:
        fail_msg("reencode: type %u", m->type);
        return CHP_E_ARG;
    }
}

/* m re-encodes to exactly want[0..wantlen). */
static void assert_reencodes(const chp_wire_msg *m, const uint8_t *want, size_t wantlen)
{
    uint8_t *buf = malloc(SCRATCH);
    size_t len = 0;
    assert_non_null(buf);
    assert_rc(reencode(m, buf, SCRATCH, &len), CHP_OK);
    assert_int_equal(len, wantlen);
    assert_memory_equal(buf, want, wantlen);
    free(buf);
}

/* An encoder wrote exactly want[] into buf (prefilled with 0xee) and
 * nothing after it. */
static void assert_encoded(const uint8_t *buf, size_t len, const uint8_t *want, size_t wantlen)
{
    assert_int_equal(len, wantlen);
    assert_memory_equal(buf, want, wantlen);
    assert_int_equal(buf[len], 0xee);
}

/* ---- the vectors, written by hand from the layouts ---- */

static const uint8_t v_hello[] = {0x01, 0x01, 0x80, 0x00, 0x00, 0x05,
                                  0xab, 0xcd, 0x00, 0x01, 0x00, 0x00};
static const uint8_t v_hello_min[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
                                      0x00, 0x00, 0x00, 0x00, 0x10, 0x00};
static const uint8_t v_hello_max[] = {0x01, 0x01, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t v_prune[] = {0x05};
static const uint8_t v_graft0[] = {0x06, 0x00, 0x00};
static const uint8_t v_neg[] = {0x07, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x61, 0x00, 0xff};
static const uint8_t v_neg0[] = {0x07, 0x00, 0x00, 0x00, 0x01, 0x00, 0x42};
static const uint8_t v_ping[] = {0x08, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
static const uint8_t v_pong[] = {0x09, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
static const uint8_t v_ping0[] = {0x08, 0, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t v_pongmax[] = {0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t v_peers[] = {0x0a, 0x03, 0x01, 'a', 0x13, '1', '.',  '2', '.',
                                  '3',  '.',  '4',  ':', '7',  '6', '6',  '7', '/',
                                  'c',  'h',  'p',  'n', '1',  'x', 0x02, '!', '~'};
static const uint8_t v_peers0[] = {0x0a, 0x00};
static const uint8_t v_bye[] = {0x0b, 0x01, 0xf4, 0x03, 'b', 'y', 'e'};
static const uint8_t v_bye0[] = {0x0b, 0x00, 0x00, 0x00};
/* "خدا 👋": three 2-byte letters, a space, a 4-byte emoji. */
static const uint8_t v_bye_fa[] = {0x0b, 0xff, 0xff, 0x0b, 0xd8, 0xae, 0xd8, 0xaf,
                                   0xd8, 0xa7, 0x20, 0xf0, 0x9f, 0x91, 0x8b};

/* Every small valid vector, the built ones included, for the prefix,
 * trailing and overflow sweeps. */
typedef struct vectors {
    uint8_t push[1 + CHP_ENV_OVERHEAD + 7];
    uint8_t ihave[3 + 2 * 32];
    uint8_t iwant[3 + 1 * 32];
    uint8_t graft[3 + 3 * 32];
    uint8_t pushes[2 + 2 + CHP_ENV_OVERHEAD + 2 + CHP_ENV_OVERHEAD + 1];
    struct {
        const uint8_t *b;
        size_t len;
    } v[24];
    size_t n;
} vectors;

static void add(vectors *vs, const uint8_t *b, size_t len)
{
    assert_true(vs->n < sizeof vs->v / sizeof vs->v[0]);
    vs->v[vs->n].b = b;
    vs->v[vs->n].len = len;
    vs->n++;
}
#define ADD(vs, arr) add((vs), (arr), sizeof(arr))

static void vectors_init(vectors *vs)
{
    memset(vs, 0, sizeof *vs);
    vs->push[0] = 0x02;
    seq(vs->push + 1, sizeof vs->push - 1, 0x40);
    memcpy(vs->ihave, (const uint8_t[]){0x03, 0x00, 0x02}, 3);
    seq(vs->ihave + 3, 64, 0x00);
    memcpy(vs->iwant, (const uint8_t[]){0x04, 0x00, 0x01}, 3);
    seq(vs->iwant + 3, 32, 0xc0);
    memcpy(vs->graft, (const uint8_t[]){0x06, 0x00, 0x03}, 3);
    seq(vs->graft + 3, 96, 0x80);
    /* PUSHES of two envelopes, 89 and 90 bytes */
    memcpy(vs->pushes, (const uint8_t[]){0x0e, 0x02, 0x00, 0x59}, 4);
    seq(vs->pushes + 4, CHP_ENV_OVERHEAD, 0x10);
    memcpy(vs->pushes + 4 + CHP_ENV_OVERHEAD, (const uint8_t[]){0x00, 0x5a}, 2);
    seq(vs->pushes + 6 + CHP_ENV_OVERHEAD, CHP_ENV_OVERHEAD + 1, 0x20);
    ADD(vs, v_hello);
    ADD(vs, v_hello_min);
    ADD(vs, v_hello_max);
    ADD(vs, vs->push);
    ADD(vs, vs->ihave);
    ADD(vs, vs->iwant);
    ADD(vs, v_prune);
    ADD(vs, vs->graft);
    ADD(vs, v_graft0);
    ADD(vs, v_neg);
    ADD(vs, v_neg0);
    ADD(vs, v_ping);
    ADD(vs, v_pong);
    ADD(vs, v_ping0);
    ADD(vs, v_pongmax);
    ADD(vs, v_peers);
    ADD(vs, v_peers0);
    ADD(vs, v_bye);
    ADD(vs, v_bye0);
    ADD(vs, v_bye_fa);
    ADD(vs, vs->pushes);
}

/* ---- round trips with exact bytes ---- */

static void test_hello_roundtrip(void **state)
{
    (void)state;
    static const struct {
        uint32_t caps;
        uint16_t port;
        uint32_t max_frame;
        const uint8_t *want;
    } cases[] = {
        {0x80000005u, 0xabcd, 0x00010000u, v_hello},
        {0, 0, 4096, v_hello_min},
        {UINT32_MAX, UINT16_MAX, UINT32_MAX, v_hello_max},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[32];
        size_t len = 0;
        memset(buf, 0xee, sizeof buf);
        assert_rc(
            chp_wire_hello(buf, sizeof buf, &len, cases[i].caps, cases[i].port, cases[i].max_frame),
            CHP_OK);
        assert_encoded(buf, len, cases[i].want, 12);

        chp_wire_msg m;
        uint8_t *c;
        assert_rc(decode_copy(cases[i].want, 12, &m, &c), CHP_OK);
        assert_int_equal(m.type, CHP_WIRE_HELLO);
        assert_int_equal(m.u.hello.version, CHP_WIRE_VERSION);
        assert_int_equal(m.u.hello.caps, cases[i].caps);
        assert_int_equal(m.u.hello.listen_port, cases[i].port);
        assert_int_equal(m.u.hello.max_frame, cases[i].max_frame);
        assert_reencodes(&m, cases[i].want, 12);
        free(c);
    }
}

static void push_case(size_t envlen)
{
    uint8_t *env = malloc(envlen);
    uint8_t *want = malloc(1 + envlen);
    uint8_t *buf = malloc(envlen + 2);
    size_t len = 0;
    assert_true(env && want && buf);
    seq(env, envlen, 0x40);
    want[0] = 0x02;
    seq(want + 1, envlen, 0x40);
    memset(buf, 0xee, envlen + 2);
    assert_rc(chp_wire_push(buf, envlen + 2, &len, env, envlen), CHP_OK);
    assert_encoded(buf, len, want, 1 + envlen);

    chp_wire_msg m;
    uint8_t *c;
    assert_rc(decode_copy(want, 1 + envlen, &m, &c), CHP_OK);
    assert_int_equal(m.type, CHP_WIRE_PUSH);
    assert_int_equal(m.u.push.len, envlen);
    assert_ptr_equal(m.u.push.env, c + 1); /* borrowed, not copied */
    assert_reencodes(&m, want, 1 + envlen);
    free(c);
    free(buf);
    free(want);
    free(env);
}

static void test_push_roundtrip(void **state)
{
    (void)state;
    push_case(CHP_ENV_OVERHEAD);
    push_case(chp_env_buckets[0] + CHP_ENV_OVERHEAD);
    push_case(CHP_ENV_MAX_BYTES);
}

static void ids_case(uint8_t type, uint16_t n, uint8_t hi, uint8_t lo)
{
    size_t flen = 3 + (size_t)n * 32;
    uint8_t *ids = malloc(n ? (size_t)n * 32 : 1);
    uint8_t *want = malloc(flen);
    uint8_t *buf = malloc(flen + 1);
    size_t len = 0;
    assert_true(ids && want && buf);
    seq(ids, (size_t)n * 32, (uint8_t)(type * 16));
    want[0] = type;
    want[1] = hi; /* the count, big-endian, as the caller wrote it by hand */
    want[2] = lo;
    seq(want + 3, (size_t)n * 32, (uint8_t)(type * 16));
    memset(buf, 0xee, flen + 1);
    assert_rc(chp_wire_ids(buf, flen + 1, &len, type, n ? ids : NULL, n), CHP_OK);
    assert_encoded(buf, len, want, flen);

    chp_wire_msg m;
    uint8_t *c;
    assert_rc(decode_copy(want, flen, &m, &c), CHP_OK);
    assert_int_equal(m.type, type);
    assert_int_equal(m.u.ids.n, n);
    if (n)
        assert_ptr_equal(m.u.ids.ids, c + 3);
    assert_reencodes(&m, want, flen);
    free(c);
    free(buf);
    free(want);
    free(ids);
}

static void test_ids_roundtrip(void **state)
{
    (void)state;
    ids_case(CHP_WIRE_IHAVE, 1, 0x00, 0x01);
    ids_case(CHP_WIRE_IHAVE, 2, 0x00, 0x02);
    ids_case(CHP_WIRE_IHAVE, 258, 0x01, 0x02);
    ids_case(CHP_WIRE_IWANT, 1, 0x00, 0x01);
    ids_case(CHP_WIRE_IWANT, 1024, 0x04, 0x00);
    ids_case(CHP_WIRE_GRAFT, 0, 0x00, 0x00);
    ids_case(CHP_WIRE_GRAFT, 3, 0x00, 0x03);
    ids_case(CHP_WIRE_GRAFT, 1024, 0x04, 0x00);
    ids_case(CHP_WIRE_IHAVE, 1024, 0x04, 0x00);
    ids_case(CHP_WIRE_QUERY, 1, 0x00, 0x01);
    ids_case(CHP_WIRE_QUERY, 1024, 0x04, 0x00);
    ids_case(CHP_WIRE_HELD, 0, 0x00, 0x00);
    ids_case(CHP_WIRE_HELD, 2, 0x00, 0x02);
}

static void test_prune_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[4];
    size_t len = 0;
    memset(buf, 0xee, sizeof buf);
    assert_rc(chp_wire_prune(buf, sizeof buf, &len), CHP_OK);
    assert_encoded(buf, len, v_prune, sizeof v_prune);

    chp_wire_msg m;
    uint8_t *c;
    assert_rc(decode_copy(v_prune, sizeof v_prune, &m, &c), CHP_OK);
    assert_int_equal(m.type, CHP_WIRE_PRUNE);
    chp_wire_msg z;
    memset(&z, 0, sizeof z);
    z.type = CHP_WIRE_PRUNE;
    assert_memory_equal(&m, &z, sizeof z); /* no body, nothing else set */
    assert_reencodes(&m, v_prune, sizeof v_prune);
    free(c);
}

static void test_neg_roundtrip(void **state)
{
    (void)state;
    static const struct {
        uint32_t session;
        uint8_t initiator;
        const uint8_t *msg;
        size_t msglen;
        const uint8_t *want;
        size_t wantlen;
    } cases[] = {
        {0xdeadbeefu, 1, (const uint8_t *)"\x61\x00\xff", 3, v_neg, sizeof v_neg},
        {1, 0, (const uint8_t *)"\x42", 1, v_neg0, sizeof v_neg0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[32];
        size_t len = 0;
        memset(buf, 0xee, sizeof buf);
        assert_rc(chp_wire_neg(buf, sizeof buf, &len, cases[i].session, cases[i].initiator,
                               cases[i].msg, cases[i].msglen),
                  CHP_OK);
        assert_encoded(buf, len, cases[i].want, cases[i].wantlen);

        chp_wire_msg m;
        uint8_t *c;
        assert_rc(decode_copy(cases[i].want, cases[i].wantlen, &m, &c), CHP_OK);
        assert_int_equal(m.type, CHP_WIRE_NEG);
        assert_int_equal(m.u.neg.session, cases[i].session);
        assert_int_equal(m.u.neg.initiator, cases[i].initiator);
        assert_int_equal(m.u.neg.len, cases[i].msglen);
        assert_ptr_equal(m.u.neg.msg, c + 6);
        assert_memory_equal(m.u.neg.msg, cases[i].msg, cases[i].msglen);
        assert_reencodes(&m, cases[i].want, cases[i].wantlen);
        free(c);
    }

    /* A large Negentropy message: the body is everything after the header. */
    size_t big = 60000;
    uint8_t *msg = malloc(big), *want = malloc(6 + big), *buf = malloc(6 + big);
    size_t len = 0;
    assert_true(msg && want && buf);
    seq(msg, big, 7);
    memcpy(want, (const uint8_t[]){0x07, 0x00, 0x00, 0x01, 0x00, 0x00}, 6);
    seq(want + 6, big, 7);
    assert_rc(chp_wire_neg(buf, 6 + big, &len, 256, 0, msg, big), CHP_OK);
    assert_int_equal(len, 6 + big);
    assert_memory_equal(buf, want, 6 + big);
    chp_wire_msg m;
    uint8_t *c;
    assert_rc(decode_copy(want, 6 + big, &m, &c), CHP_OK);
    assert_int_equal(m.u.neg.session, 256);
    assert_int_equal(m.u.neg.len, big);
    free(c);
    free(buf);
    free(want);
    free(msg);
}

static void test_ping_pong_roundtrip(void **state)
{
    (void)state;
    static const struct {
        uint8_t type;
        uint64_t nonce;
        const uint8_t *want;
    } cases[] = {
        {CHP_WIRE_PING, 0x0123456789abcdefull, v_ping},
        {CHP_WIRE_PONG, 0xfedcba9876543210ull, v_pong},
        {CHP_WIRE_PING, 0, v_ping0},
        {CHP_WIRE_PONG, UINT64_MAX, v_pongmax},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[16];
        size_t len = 0;
        memset(buf, 0xee, sizeof buf);
        assert_rc(chp_wire_ping(buf, sizeof buf, &len, cases[i].type, cases[i].nonce), CHP_OK);
        assert_encoded(buf, len, cases[i].want, 9);

        chp_wire_msg m;
        uint8_t *c;
        assert_rc(decode_copy(cases[i].want, 9, &m, &c), CHP_OK);
        assert_int_equal(m.type, cases[i].type);
        assert_true(m.u.nonce == cases[i].nonce);
        assert_reencodes(&m, cases[i].want, 9);
        free(c);
    }
}

static void test_peers_roundtrip(void **state)
{
    (void)state;
    static const char *const addrs[] = {"a", "1.2.3.4:7667/chpn1x", "!~"};
    uint8_t buf[64];
    size_t len = 0;
    memset(buf, 0xee, sizeof buf);
    assert_rc(chp_wire_peers(buf, sizeof buf, &len, addrs, 3), CHP_OK);
    assert_encoded(buf, len, v_peers, sizeof v_peers);

    chp_wire_msg m;
    uint8_t *c;
    assert_rc(decode_copy(v_peers, sizeof v_peers, &m, &c), CHP_OK);
    assert_int_equal(m.type, CHP_WIRE_PEERS);
    assert_int_equal(m.u.peers.n, 3);
    assert_ptr_equal(m.u.peers.raw, c + 2);
    assert_int_equal(m.u.peers.rawlen, sizeof v_peers - 2);
    for (uint8_t i = 0; i < 3; i++) {
        const char *a = NULL;
        size_t l = 0;
        assert_rc(chp_wire_peer_at(&m, i, &a, &l), CHP_OK);
        assert_int_equal(l, strlen(addrs[i]));
        assert_memory_equal(a, addrs[i], l);
        assert_true((const uint8_t *)a > c && (const uint8_t *)a + l <= c + sizeof v_peers);
    }
    assert_reencodes(&m, v_peers, sizeof v_peers);
    free(c);

    /* None at all: NULL list allowed. */
    memset(buf, 0xee, sizeof buf);
    assert_rc(chp_wire_peers(buf, sizeof buf, &len, NULL, 0), CHP_OK);
    assert_encoded(buf, len, v_peers0, sizeof v_peers0);
    assert_rc(decode_copy(v_peers0, sizeof v_peers0, &m, &c), CHP_OK);
    assert_int_equal(m.type, CHP_WIRE_PEERS);
    assert_int_equal(m.u.peers.n, 0);
    assert_int_equal(m.u.peers.rawlen, 0);
    assert_reencodes(&m, v_peers0, sizeof v_peers0);
    free(c);
}

/* 32 addresses of 200 bytes, each of one printable character. */
static void test_peers_roundtrip_max(void **state)
{
    (void)state;
    char addr[CHP_WIRE_MAX_PEERS][CHP_WIRE_MAX_ADDR + 1];
    const char *ptrs[CHP_WIRE_MAX_PEERS];
    uint8_t *want = malloc(PEERS_MAX_FRAME), *buf = malloc(PEERS_MAX_FRAME + 1);
    size_t len = 0;
    assert_true(want && buf);
    want[0] = 0x0a;
    want[1] = 0x20;
    for (int i = 0; i < CHP_WIRE_MAX_PEERS; i++) {
        char ch = (char)(0x21 + i * 3);
        memset(addr[i], ch, CHP_WIRE_MAX_ADDR);
        addr[i][CHP_WIRE_MAX_ADDR] = '\0';
        ptrs[i] = addr[i];
        want[2 + i * 201] = 0xc8;
        memset(want + 3 + i * 201, ch, CHP_WIRE_MAX_ADDR);
    }
    memset(buf, 0xee, PEERS_MAX_FRAME + 1);
    assert_rc(chp_wire_peers(buf, PEERS_MAX_FRAME + 1, &len, ptrs, CHP_WIRE_MAX_PEERS), CHP_OK);
    assert_encoded(buf, len, want, PEERS_MAX_FRAME);

    chp_wire_msg m;
    uint8_t *c;
    assert_rc(decode_copy(want, PEERS_MAX_FRAME, &m, &c), CHP_OK);
    assert_int_equal(m.u.peers.n, CHP_WIRE_MAX_PEERS);
    for (uint8_t i = 0; i < CHP_WIRE_MAX_PEERS; i++) {
        const char *a = NULL;
        size_t l = 0;
        assert_rc(chp_wire_peer_at(&m, i, &a, &l), CHP_OK);
        assert_int_equal(l, CHP_WIRE_MAX_ADDR);
        assert_memory_equal(a, addr[i], l);
    }
    assert_reencodes(&m, want, PEERS_MAX_FRAME);
    free(c);
    free(buf);
    free(want);
}

static void test_bye_roundtrip(void **state)
{
    (void)state;
    static const struct {
        uint16_t code;
        const char *text;
        const uint8_t *want;
        size_t wantlen;
    } cases[] = {
        {500, "bye", v_bye, sizeof v_bye},
        {0, "", v_bye0, sizeof v_bye0},
        {0, NULL, v_bye0, sizeof v_bye0}, /* NULL text = no reason */
        {0xffff, "\xd8\xae\xd8\xaf\xd8\xa7 \xf0\x9f\x91\x8b", v_bye_fa, sizeof v_bye_fa},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[32];
        size_t len = 0;
        memset(buf, 0xee, sizeof buf);
        assert_rc(chp_wire_bye(buf, sizeof buf, &len, cases[i].code, cases[i].text), CHP_OK);
        assert_encoded(buf, len, cases[i].want, cases[i].wantlen);

        chp_wire_msg m;
        uint8_t *c;
        assert_rc(decode_copy(cases[i].want, cases[i].wantlen, &m, &c), CHP_OK);
        assert_int_equal(m.type, CHP_WIRE_BYE);
        assert_int_equal(m.u.bye.code, cases[i].code);
        assert_int_equal(m.u.bye.len, cases[i].wantlen - 4);
        if (m.u.bye.len) {
            assert_ptr_equal(m.u.bye.text, (const char *)c + 4);
            assert_memory_equal(m.u.bye.text, cases[i].text, m.u.bye.len);
        }
        assert_reencodes(&m, cases[i].want, cases[i].wantlen);
        free(c);
    }

    /* The longest reason: 200 bytes, here 100 two-byte letters. */
    char text[CHP_WIRE_MAX_TEXT + 1];
    uint8_t want[4 + CHP_WIRE_MAX_TEXT], buf[4 + CHP_WIRE_MAX_TEXT + 1];
    size_t len = 0;
    for (int i = 0; i < CHP_WIRE_MAX_TEXT; i += 2) {
        text[i] = (char)0xd8;
        text[i + 1] = (char)0xb3;
    }
    text[CHP_WIRE_MAX_TEXT] = '\0';
    memcpy(want, (const uint8_t[]){0x0b, 0x12, 0x34, 0xc8}, 4);
    memcpy(want + 4, text, CHP_WIRE_MAX_TEXT);
    memset(buf, 0xee, sizeof buf);
    assert_rc(chp_wire_bye(buf, sizeof buf, &len, 0x1234, text), CHP_OK);
    assert_encoded(buf, len, want, sizeof want);
    chp_wire_msg m;
    uint8_t *c;
    assert_rc(decode_copy(want, sizeof want, &m, &c), CHP_OK);
    assert_int_equal(m.u.bye.len, CHP_WIRE_MAX_TEXT);
    assert_reencodes(&m, want, sizeof want);
    free(c);
}

/* PUSHES: the exact bytes built envelope by envelope, each envelope
 * borrowed from the frame in order, and the frame re-encoded. */
static void test_pushes_roundtrip(void **state)
{
    (void)state;
    vectors vs;
    vectors_init(&vs);
    uint8_t e1[CHP_ENV_OVERHEAD], e2[CHP_ENV_OVERHEAD + 1], buf[sizeof vs.pushes + 1];
    seq(e1, sizeof e1, 0x10);
    seq(e2, sizeof e2, 0x20);
    size_t len = 0;
    memset(buf, 0xee, sizeof buf);
    assert_rc(chp_wire_pushes_add(buf, sizeof buf, &len, e1, sizeof e1), CHP_OK);
    assert_int_equal(len, 2 + 2 + sizeof e1);
    assert_rc(chp_wire_pushes_add(buf, sizeof buf, &len, e2, sizeof e2), CHP_OK);
    assert_encoded(buf, len, vs.pushes, sizeof vs.pushes);

    chp_wire_msg m;
    uint8_t *c;
    assert_rc(decode_copy(vs.pushes, sizeof vs.pushes, &m, &c), CHP_OK);
    assert_int_equal(m.type, CHP_WIRE_PUSHES);
    assert_int_equal(m.u.pushes.n, 2);
    const uint8_t *env;
    size_t off = 0, elen;
    assert_rc(chp_wire_pushes_next(&m, &off, &env, &elen), CHP_OK);
    assert_ptr_equal(env, c + 4); /* borrowed, not copied */
    assert_int_equal(elen, sizeof e1);
    assert_rc(chp_wire_pushes_next(&m, &off, &env, &elen), CHP_OK);
    assert_ptr_equal(env, c + 6 + sizeof e1);
    assert_memory_equal(env, e2, sizeof e2);
    assert_rc(chp_wire_pushes_next(&m, &off, &env, &elen), CHP_E_NOT_FOUND);
    assert_reencodes(&m, vs.pushes, sizeof vs.pushes);
    free(c);
}

/* PUSHES limits: at least one envelope, each of a PUSH's size, 255 at
 * most, 64 KiB at most; the encoder says when the frame is full. */
static void test_pushes_bounds(void **state)
{
    (void)state;
    uint8_t *f = malloc(SCRATCH), *env = malloc(CHP_ENV_MAX_BYTES + 1);
    assert_true(f && env);
    seq(env, CHP_ENV_MAX_BYTES + 1, 0x33);
    static const uint8_t empty[] = {0x0e, 0x00};
    REJECT(empty, 2, CHP_E_MALFORMED); /* no envelope */
    REJECT(empty, 1, CHP_E_MALFORMED);
    /* a length below an envelope's least, or above its most */
    memcpy(f, (const uint8_t[]){0x0e, 0x01, 0x00, 0x58}, 4);
    memcpy(f + 4, env, CHP_ENV_OVERHEAD - 1);
    REJECT(f, 4 + CHP_ENV_OVERHEAD - 1, CHP_E_MALFORMED);
    size_t big = CHP_ENV_MAX_BYTES + 1;
    f[2] = (uint8_t)(big >> 8);
    f[3] = (uint8_t)big;
    memcpy(f + 4, env, big);
    REJECT(f, 4 + big, CHP_E_MALFORMED);
    /* a count that promises more envelopes than the frame holds */
    size_t len = 0;
    assert_rc(chp_wire_pushes_add(f, SCRATCH, &len, env, CHP_ENV_OVERHEAD), CHP_OK);
    f[1] = 2;
    REJECT(f, len, CHP_E_MALFORMED);
    f[1] = 1;
    assert_int_equal(ACCEPT(f, len), CHP_WIRE_PUSHES);
    REJECT(f, len + 1, CHP_E_TRAILING);

    /* 255 envelopes fit, the 256th is refused; the frame still decodes */
    len = 0;
    for (int i = 0; i < CHP_WIRE_MAX_PUSHES; i++)
        assert_rc(chp_wire_pushes_add(f, SCRATCH, &len, env, CHP_ENV_OVERHEAD), CHP_OK);
    assert_rc(chp_wire_pushes_add(f, SCRATCH, &len, env, CHP_ENV_OVERHEAD), CHP_E_OVERFLOW);
    assert_int_equal(len, 2 + CHP_WIRE_MAX_PUSHES * (2 + CHP_ENV_OVERHEAD));
    assert_int_equal(ACCEPT(f, len), CHP_WIRE_PUSHES);

    /* 64 KiB: three largest envelopes fit, a fourth does not */
    len = 0;
    for (int i = 0; i < 3; i++)
        assert_rc(chp_wire_pushes_add(f, SCRATCH, &len, env, CHP_ENV_MAX_BYTES), CHP_OK);
    size_t three = len;
    assert_rc(chp_wire_pushes_add(f, SCRATCH, &len, env, CHP_ENV_MAX_BYTES), CHP_E_OVERFLOW);
    assert_int_equal(len, three);
    /* by hand, a frame over 64 KiB is malformed even when its lengths add up */
    memcpy(f + len, (const uint8_t[]){0x40, 0x59}, 2);
    memcpy(f + len + 2, env, CHP_ENV_MAX_BYTES);
    f[1] = 4;
    REJECT(f, len + 2 + CHP_ENV_MAX_BYTES, CHP_E_MALFORMED);
    /* and the encoder keeps to the caller's buffer */
    len = 0;
    assert_rc(chp_wire_pushes_add(f, 2 + 2 + CHP_ENV_OVERHEAD - 1, &len, env, CHP_ENV_OVERHEAD),
              CHP_E_OVERFLOW);
    assert_int_equal(len, 0);
    assert_rc(chp_wire_pushes_add(f, SCRATCH, &len, env, CHP_ENV_OVERHEAD - 1), CHP_E_ARG);
    assert_rc(chp_wire_pushes_add(f, SCRATCH, &len, env, CHP_ENV_MAX_BYTES + 1), CHP_E_ARG);
    free(env);
    free(f);
}

/* ---- decode errors ---- */

static void test_decode_empty_and_unknown_types(void **state)
{
    (void)state;
    chp_wire_msg m;
    memset(&m, 0xa5, sizeof m);
    assert_rc(chp_wire_decode(NULL, 0, &m), CHP_E_MALFORMED);
    assert_true(all_zero(&m));
    REJECT((const uint8_t *)"", 0, CHP_E_MALFORMED);

    static const uint8_t unknown[] = {0x00, 0x0f, 0x10, 0x7f, 0x80, 0xff};
    uint8_t f[16];
    for (size_t i = 0; i < sizeof unknown; i++) {
        memset(f, 0, sizeof f);
        f[0] = unknown[i];
        for (size_t len = 1; len <= sizeof f; len++)
            REJECT(f, len, CHP_E_MALFORMED);
        /* Also with a body that is valid for some known type. */
        memcpy(f, v_hello, sizeof v_hello);
        f[0] = unknown[i];
        REJECT(f, sizeof v_hello, CHP_E_MALFORMED);
    }
}

/* Every proper prefix of a valid frame: MALFORMED with the message zeroed,
 * except that PUSH and NEG bodies run to the end of the frame, so a prefix
 * still long enough (envelope >= CHP_ENV_OVERHEAD, Negentropy message >= 1
 * byte) decodes as the shorter message. */
static void check_prefixes(const uint8_t *f, size_t flen)
{
    chp_wire_msg full;
    uint8_t *fc;
    assert_rc(decode_copy(f, flen, &full, &fc), CHP_OK);
    for (size_t l = 0; l < flen; l++) {
        chp_wire_msg m;
        uint8_t *c;
        int rc = decode_copy(f, l, &m, &c);
        if (f[0] == CHP_WIRE_PUSH && l >= 1 + CHP_ENV_OVERHEAD) {
            if (rc != CHP_OK)
                fail_msg("PUSH prefix %zu of %zu = %s, want CHP_OK", l, flen, chp_errname(rc));
            assert_int_equal(m.type, CHP_WIRE_PUSH);
            assert_int_equal(m.u.push.len, l - 1);
            assert_ptr_equal(m.u.push.env, c + 1);
        } else if (f[0] == CHP_WIRE_NEG && l >= 7) {
            if (rc != CHP_OK)
                fail_msg("NEG prefix %zu of %zu = %s, want CHP_OK", l, flen, chp_errname(rc));
            assert_int_equal(m.type, CHP_WIRE_NEG);
            assert_int_equal(m.u.neg.session, full.u.neg.session);
            assert_int_equal(m.u.neg.initiator, full.u.neg.initiator);
            assert_int_equal(m.u.neg.len, l - 6);
            assert_ptr_equal(m.u.neg.msg, c + 6);
        } else if (rc != CHP_E_MALFORMED || !all_zero(&m)) {
            fail_msg("type %02x prefix %zu of %zu = %s (%s), want CHP_E_MALFORMED, zeroed", f[0], l,
                     flen, chp_errname(rc), all_zero(&m) ? "zeroed" : "NOT zeroed");
        }
        free(c);
    }
    free(fc);
}

static void test_decode_every_prefix(void **state)
{
    (void)state;
    vectors vs;
    vectors_init(&vs);
    for (size_t i = 0; i < vs.n; i++)
        check_prefixes(vs.v[i].b, vs.v[i].len);

    /* The largest PUSH, IHAVE and PEERS frames too. */
    uint8_t *f = malloc(IDS_MAX_FRAME);
    assert_non_null(f);
    seq(f, IDS_MAX_FRAME, 3);
    f[0] = 0x02;
    check_prefixes(f, PUSH_MAX_FRAME);
    f[0] = 0x03;
    f[1] = 0x04;
    f[2] = 0x00;
    check_prefixes(f, IDS_MAX_FRAME);
    f[0] = 0x0a;
    f[1] = CHP_WIRE_MAX_PEERS;
    for (int i = 0; i < CHP_WIRE_MAX_PEERS; i++) {
        f[2 + i * 201] = 200;
        memset(f + 3 + i * 201, 'p', 200);
    }
    check_prefixes(f, PEERS_MAX_FRAME);
    free(f);
}

/* Extra bytes: CHP_E_TRAILING for every self-delimiting body; PUSH and NEG
 * bodies simply grow. */
static void test_decode_trailing(void **state)
{
    (void)state;
    vectors vs;
    vectors_init(&vs);
    static const uint8_t tails[][3] = {{0x00}, {0xff}, {0x01, 0x01, 0x01}};
    static const size_t tail_len[] = {1, 1, 3};
    for (size_t i = 0; i < vs.n; i++) {
        for (size_t t = 0; t < 3; t++) {
            uint8_t f[256];
            size_t flen = vs.v[i].len + tail_len[t];
            assert_true(flen <= sizeof f);
            memcpy(f, vs.v[i].b, vs.v[i].len);
            memcpy(f + vs.v[i].len, tails[t], tail_len[t]);
            if (f[0] == CHP_WIRE_PUSH || f[0] == CHP_WIRE_NEG) {
                chp_wire_msg m;
                uint8_t *c;
                assert_rc(decode_copy(f, flen, &m, &c), CHP_OK);
                if (f[0] == CHP_WIRE_PUSH)
                    assert_int_equal(m.u.push.len, flen - 1);
                else
                    assert_int_equal(m.u.neg.len, flen - 6);
                assert_reencodes(&m, f, flen);
                free(c);
            } else {
                REJECT(f, flen, CHP_E_TRAILING);
            }
        }
    }
}

static void test_decode_hello_version(void **state)
{
    (void)state;
    static const uint8_t versions[] = {0, 2, 0xff};
    for (size_t i = 0; i < sizeof versions; i++) {
        uint8_t f[16];
        memcpy(f, v_hello, sizeof v_hello);
        f[1] = versions[i];
        chp_wire_msg want;
        memset(&want, 0, sizeof want);
        want.type = CHP_WIRE_HELLO;
        want.u.hello.version = versions[i];
        /* Whatever follows the version (another version's layout): the full
         * v1 body, nothing, a short body, a body with extra bytes. */
        static const size_t lens[] = {12, 2, 5, 16};
        for (size_t k = 0; k < 4; k++) {
            chp_wire_msg m;
            uint8_t *c;
            assert_rc(decode_copy(f, lens[k], &m, &c), CHP_E_VERSION);
            assert_memory_equal(&m, &want, sizeof want);
            free(c);
        }
    }
    /* Not even a version byte. */
    REJECT(v_hello, 1, CHP_E_MALFORMED);
}

static void test_decode_hello_max_frame(void **state)
{
    (void)state;
    uint8_t f[12];
    memcpy(f, v_hello, sizeof f);
    static const uint32_t bad[] = {0, 1, 4095};
    for (size_t i = 0; i < 3; i++) {
        f[8] = (uint8_t)(bad[i] >> 24);
        f[9] = (uint8_t)(bad[i] >> 16);
        f[10] = (uint8_t)(bad[i] >> 8);
        f[11] = (uint8_t)bad[i];
        REJECT(f, sizeof f, CHP_E_MALFORMED);
    }
    memcpy(f + 8, (const uint8_t[]){0x00, 0x00, 0x10, 0x00}, 4); /* 4096 */
    assert_int_equal(ACCEPT(f, sizeof f), CHP_WIRE_HELLO);
}

static void test_decode_push_bounds(void **state)
{
    (void)state;
    uint8_t *f = malloc(PUSH_MAX_FRAME + 1);
    assert_non_null(f);
    f[0] = 0x02;
    seq(f + 1, PUSH_MAX_FRAME, 9);
    REJECT(f, 1, CHP_E_MALFORMED);
    REJECT(f, CHP_ENV_OVERHEAD, CHP_E_MALFORMED); /* envelope of 88 */
    assert_int_equal(ACCEPT(f, 1 + CHP_ENV_OVERHEAD), CHP_WIRE_PUSH);
    assert_int_equal(ACCEPT(f, PUSH_MAX_FRAME), CHP_WIRE_PUSH);
    REJECT(f, PUSH_MAX_FRAME + 1, CHP_E_MALFORMED); /* envelope of max + 1 */
    free(f);
}

static void test_decode_ids_counts(void **state)
{
    (void)state;
    size_t cap = 3 + 0x0401 * 32 + 32;
    uint8_t *f = malloc(cap);
    assert_non_null(f);
    seq(f, cap, 0);
    static const uint8_t types[] = {CHP_WIRE_IHAVE, CHP_WIRE_IWANT, CHP_WIRE_GRAFT, CHP_WIRE_QUERY,
                                    CHP_WIRE_HELD};
    for (size_t i = 0; i < sizeof types; i++) {
        f[0] = types[i];
        /* n = 0: an empty announcement or request is malformed; an empty
         * GRAFT ("eager again, nothing missing") is fine. */
        f[1] = 0;
        f[2] = 0;
        if (types[i] == CHP_WIRE_GRAFT || types[i] == CHP_WIRE_HELD)
            assert_int_equal(ACCEPT(f, 3), types[i]);
        else
            REJECT(f, 3, CHP_E_MALFORMED);
        /* n = 1025 with every byte present. */
        f[1] = 0x04;
        f[2] = 0x01;
        REJECT(f, 3 + 1025 * 32, CHP_E_MALFORMED);
        /* n = 1024 is the limit. */
        f[2] = 0x00;
        assert_int_equal(ACCEPT(f, 3 + 1024 * 32), types[i]);
        REJECT(f, 3 + 1024 * 32 + 1, CHP_E_TRAILING);
        /* n = 65535, far past the data. */
        f[1] = 0xff;
        f[2] = 0xff;
        REJECT(f, cap, CHP_E_MALFORMED);
        /* n = 2: one byte short, exact, one byte over. */
        f[1] = 0x00;
        f[2] = 0x02;
        REJECT(f, 3 + 63, CHP_E_MALFORMED);
        assert_int_equal(ACCEPT(f, 3 + 64), types[i]);
        REJECT(f, 3 + 65, CHP_E_TRAILING);
        /* A half count. */
        REJECT(f, 2, CHP_E_MALFORMED);
    }
    free(f);
}

static void test_decode_neg_fields(void **state)
{
    (void)state;
    uint8_t f[sizeof v_neg];
    memcpy(f, v_neg, sizeof f);
    static const uint8_t bad[] = {4, 5, 0x80, 0xff};
    for (size_t i = 0; i < sizeof bad; i++) {
        f[5] = bad[i];
        REJECT(f, sizeof f, CHP_E_MALFORMED);
    }
    /* Bit 0: from the initiator; bit 1: more fragments follow. */
    for (uint8_t flags = 0; flags < 4; flags++) {
        f[5] = flags;
        chp_wire_msg m;
        assert_rc(chp_wire_decode(f, sizeof f, &m), CHP_OK);
        assert_int_equal(m.type, CHP_WIRE_NEG);
        assert_int_equal(m.u.neg.initiator, flags & 1);
        assert_int_equal(m.u.neg.more, flags >> 1);
    }
    REJECT(f, 6, CHP_E_MALFORMED); /* no Negentropy message */
    f[5] = 2;
    REJECT(f, 6, CHP_E_MALFORMED);
}

static void test_decode_peers_limits(void **state)
{
    (void)state;
    size_t cap = 2 + 33 * 202;
    uint8_t *f = malloc(cap);
    assert_non_null(f);

    /* 33 short addresses, every one fine: too many. 32 is the limit. */
    f[0] = 0x0a;
    f[1] = 33;
    for (int i = 0; i < 33; i++) {
        f[2 + i * 3] = 2;
        f[3 + i * 3] = 'h';
        f[4 + i * 3] = (uint8_t)('0' + i % 10);
    }
    REJECT(f, 2 + 33 * 3, CHP_E_MALFORMED);
    f[1] = 32;
    assert_int_equal(ACCEPT(f, 2 + 32 * 3), CHP_WIRE_PEERS);
    REJECT(f, 2 + 32 * 3 + 1, CHP_E_TRAILING);
    f[1] = 0xff;
    REJECT(f, 2 + 33 * 3, CHP_E_MALFORMED);

    /* Address lengths: 0 and 201 are refused, 1 and 200 fine. */
    f[1] = 1;
    f[2] = 0;
    REJECT(f, 3, CHP_E_MALFORMED);
    f[2] = 201;
    memset(f + 3, 'x', 201);
    REJECT(f, 3 + 201, CHP_E_MALFORMED);
    f[2] = 200;
    assert_int_equal(ACCEPT(f, 3 + 200), CHP_WIRE_PEERS);
    f[2] = 0xff;
    memset(f + 3, 'x', 255);
    REJECT(f, 3 + 255, CHP_E_MALFORMED);

    /* Characters: only 0x21..0x7e, at any position of any address. */
    static const uint8_t ok_addr[] = {0x0a, 0x02, 0x03, 'a', 'b', 'c', 0x02, 0x21, 0x7e};
    assert_int_equal(ACCEPT(ok_addr, sizeof ok_addr), CHP_WIRE_PEERS);
    static const uint8_t bad_ch[] = {0x20, 0x7f, 0x80, 0x00, 0x09, 0xff};
    static const size_t pos[] = {3, 4, 5, 7, 8};
    for (size_t i = 0; i < sizeof bad_ch; i++) {
        for (size_t p = 0; p < 5; p++) {
            uint8_t g[sizeof ok_addr];
            memcpy(g, ok_addr, sizeof g);
            g[pos[p]] = bad_ch[i];
            REJECT(g, sizeof g, CHP_E_MALFORMED);
        }
    }
    /* A second address with length 0 after a good one. */
    static const uint8_t second_empty[] = {0x0a, 0x02, 0x01, 'a', 0x00};
    REJECT(second_empty, sizeof second_empty, CHP_E_MALFORMED);
    free(f);
}

static void test_decode_bye_limits(void **state)
{
    (void)state;
    uint8_t f[4 + 255];
    f[0] = 0x0b;
    f[1] = 0x00;
    f[2] = 0x01;
    memset(f + 4, 'r', 255);
    f[3] = 201;
    REJECT(f, 4 + 201, CHP_E_MALFORMED);
    f[3] = 255;
    REJECT(f, 4 + 255, CHP_E_MALFORMED);
    f[3] = 200;
    assert_int_equal(ACCEPT(f, 4 + 200), CHP_WIRE_BYE);
    REJECT(f, 4 + 201, CHP_E_TRAILING);
    REJECT(f, 4 + 199, CHP_E_MALFORMED);

    static const struct {
        const char *s;
        uint8_t len;
    } bad[] = {
        {"\x80", 1},                 /* lone continuation */
        {"\xbf", 1},                 /* lone continuation */
        {"a\xc3", 2},                /* lead byte at the end */
        {"\xe2\x82", 2},             /* 3-byte form cut short */
        {"\xf0\x9f\x91", 3},         /* 4-byte form cut short */
        {"\xc0\x80", 2},             /* overlong NUL */
        {"\xc1\xbf", 2},             /* overlong */
        {"\xe0\x80\xaf", 3},         /* overlong '/' */
        {"\xf0\x8f\xbf\xbf", 4},     /* overlong U+FFFF */
        {"\xed\xa0\x80", 3},         /* surrogate U+D800 */
        {"\xed\xbf\xbf", 3},         /* surrogate U+DFFF */
        {"\xf4\x90\x80\x80", 4},     /* U+110000 */
        {"\xf5\x80\x80\x80", 4},     /* lead byte past U+10FFFF */
        {"\xfe", 1},                 /* never in UTF-8 */
        {"\xff", 1},                 /* never in UTF-8 */
        {"\xc3\x28", 2},             /* bad continuation */
        {"ok \xe2\x28\xa1 ok", 9},   /* bad continuation mid-text */
        {"\xf8\x88\x80\x80\x80", 5}, /* 5-byte form */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f[3] = bad[i].len;
        memcpy(f + 4, bad[i].s, bad[i].len);
        REJECT(f, 4u + bad[i].len, CHP_E_MALFORMED);
    }
    static const struct {
        const char *s;
        uint8_t len;
    } good[] = {
        {"\xc2\x80", 2},         /* U+0080 */
        {"\xdf\xbf", 2},         /* U+07FF */
        {"\xe0\xa0\x80", 3},     /* U+0800 */
        {"\xed\x9f\xbf", 3},     /* U+D7FF */
        {"\xee\x80\x80", 3},     /* U+E000 */
        {"\xef\xbf\xbf", 3},     /* U+FFFF */
        {"\xf0\x90\x80\x80", 4}, /* U+10000 */
        {"\xf4\x8f\xbf\xbf", 4}, /* U+10FFFF */
        {"\x7f", 1},             /* DEL is valid UTF-8 */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        f[3] = good[i].len;
        memcpy(f + 4, good[i].s, good[i].len);
        chp_wire_msg m;
        uint8_t *c;
        assert_rc(decode_copy(f, 4u + good[i].len, &m, &c), CHP_OK);
        assert_int_equal(m.u.bye.len, good[i].len);
        assert_reencodes(&m, f, 4u + good[i].len);
        free(c);
    }
}

/* A BYE whose reason holds a NUL byte is "valid UTF-8", but chp_wire_bye
 * takes a C string and can never produce it: the reason would be cut at
 * the NUL by every consumer that prints it, and re-encoding gives other
 * bytes. One encoding per value means the decoder must refuse it. */
static void test_decode_bye_text_nul(void **state)
{
    (void)state;
    static const uint8_t f[] = {0x0b, 0x00, 0x01, 0x03, 'a', 0x00, 'b'};
    REJECT(f, sizeof f, CHP_E_MALFORMED);
    static const uint8_t only_nul[] = {0x0b, 0x00, 0x01, 0x01, 0x00};
    REJECT(only_nul, sizeof only_nul, CHP_E_MALFORMED);
}

/* ---- PEERS lookup ---- */

static void test_peer_at(void **state)
{
    (void)state;
    static const char *const want[] = {"a", "1.2.3.4:7667/chpn1x", "!~"};
    chp_wire_msg m;
    uint8_t *c;
    const char *a;
    size_t l;
    assert_rc(decode_copy(v_peers, sizeof v_peers, &m, &c), CHP_OK);
    /* Any order, repeatedly: the lookup does not consume anything. */
    for (int round = 0; round < 2; round++) {
        for (int i = 2; i >= 0; i--) {
            a = NULL;
            l = 0;
            assert_rc(chp_wire_peer_at(&m, (uint8_t)i, &a, &l), CHP_OK);
            assert_int_equal(l, strlen(want[i]));
            assert_memory_equal(a, want[i], l);
        }
    }
    for (unsigned i = 3; i <= 255; i++)
        assert_rc(chp_wire_peer_at(&m, (uint8_t)i, &a, &l), CHP_E_ARG);
    free(c);

    /* An empty list has no index 0. */
    assert_rc(decode_copy(v_peers0, sizeof v_peers0, &m, &c), CHP_OK);
    assert_rc(chp_wire_peer_at(&m, 0, &a, &l), CHP_E_ARG);
    free(c);

    /* Not a PEERS message: every other type, and a zeroed (failed) decode. */
    vectors vs;
    vectors_init(&vs);
    for (size_t i = 0; i < vs.n; i++) {
        if (vs.v[i].b[0] == CHP_WIRE_PEERS)
            continue;
        assert_rc(decode_copy(vs.v[i].b, vs.v[i].len, &m, &c), CHP_OK);
        assert_rc(chp_wire_peer_at(&m, 0, &a, &l), CHP_E_ARG);
        free(c);
    }
    assert_rc(decode_copy(v_peers, sizeof v_peers - 1, &m, &c), CHP_E_MALFORMED);
    assert_rc(chp_wire_peer_at(&m, 0, &a, &l), CHP_E_ARG);
    free(c);
}

/* ---- encoder errors ---- */

/* Every valid vector: each cap below the frame size overflows (into a heap
 * buffer of exactly cap bytes, so ASan sees any write past it); the exact
 * size works. */
static void check_overflow(const uint8_t *f, size_t flen, int every_cap)
{
    chp_wire_msg m;
    uint8_t *c;
    assert_rc(decode_copy(f, flen, &m, &c), CHP_OK);
    for (size_t cap = 0; cap < flen; cap++) {
        if (!every_cap && cap != 0 && cap != 1 && cap != flen - 1)
            continue;
        uint8_t *buf = malloc(cap ? cap : 1);
        size_t len = 12345;
        assert_non_null(buf);
        int rc = reencode(&m, cap ? buf : NULL, cap, &len);
        if (rc != CHP_E_OVERFLOW)
            fail_msg("type %02x: cap %zu of %zu = %s, want CHP_E_OVERFLOW", f[0], cap, flen,
                     chp_errname(rc));
        free(buf);
    }
    uint8_t *buf = malloc(flen);
    size_t len = 0;
    assert_non_null(buf);
    assert_rc(reencode(&m, buf, flen, &len), CHP_OK);
    assert_int_equal(len, flen);
    assert_memory_equal(buf, f, flen);
    free(buf);
    free(c);
}

static void test_encode_overflow(void **state)
{
    (void)state;
    vectors vs;
    vectors_init(&vs);
    for (size_t i = 0; i < vs.n; i++)
        check_overflow(vs.v[i].b, vs.v[i].len, 1);

    uint8_t *f = malloc(IDS_MAX_FRAME);
    assert_non_null(f);
    seq(f, IDS_MAX_FRAME, 3);
    f[0] = 0x02;
    check_overflow(f, PUSH_MAX_FRAME, 0);
    f[0] = 0x06;
    f[1] = 0x04;
    f[2] = 0x00;
    check_overflow(f, IDS_MAX_FRAME, 0);
    f[0] = 0x0a;
    f[1] = CHP_WIRE_MAX_PEERS;
    for (int i = 0; i < CHP_WIRE_MAX_PEERS; i++) {
        f[2 + i * 201] = 200;
        memset(f + 3 + i * 201, 'p', 200);
    }
    check_overflow(f, PEERS_MAX_FRAME, 0);
    free(f);
}

static void test_encode_arg(void **state)
{
    (void)state;
    uint8_t *buf = malloc(SCRATCH);
    uint8_t *src = calloc(1, SCRATCH);
    size_t len = 0;
    assert_true(buf && src);
    memset(src, 'a', SCRATCH - 1);

    /* HELLO: max_frame below 4096, with room to spare or none. */
    assert_rc(chp_wire_hello(buf, SCRATCH, &len, 0, 0, 4095), CHP_E_ARG);
    assert_rc(chp_wire_hello(buf, SCRATCH, &len, 0, 0, 0), CHP_E_ARG);
    assert_rc(chp_wire_hello(buf, SCRATCH, &len, 0, 0, 4096), CHP_OK);

    /* PUSH: an envelope shorter than its overhead or longer than the max. */
    assert_rc(chp_wire_push(buf, SCRATCH, &len, src, 0), CHP_E_ARG);
    assert_rc(chp_wire_push(buf, SCRATCH, &len, src, CHP_ENV_OVERHEAD - 1), CHP_E_ARG);
    assert_rc(chp_wire_push(buf, SCRATCH, &len, src, CHP_ENV_MAX_BYTES + 1), CHP_E_ARG);
    assert_rc(chp_wire_push(buf, SCRATCH, &len, src, CHP_ENV_OVERHEAD), CHP_OK);
    assert_rc(chp_wire_push(buf, SCRATCH, &len, src, CHP_ENV_MAX_BYTES), CHP_OK);

    /* IHAVE / IWANT / GRAFT. */
    static const uint8_t bad_types[] = {0,
                                        CHP_WIRE_HELLO,
                                        CHP_WIRE_PUSH,
                                        CHP_WIRE_PRUNE,
                                        CHP_WIRE_NEG,
                                        CHP_WIRE_PING,
                                        CHP_WIRE_PEERS,
                                        CHP_WIRE_BYE,
                                        14,
                                        0xff};
    for (size_t i = 0; i < sizeof bad_types; i++)
        assert_rc(chp_wire_ids(buf, SCRATCH, &len, bad_types[i], src, 1), CHP_E_ARG);
    static const uint8_t id_types[] = {CHP_WIRE_IHAVE, CHP_WIRE_IWANT, CHP_WIRE_GRAFT};
    for (size_t i = 0; i < 3; i++) {
        assert_rc(chp_wire_ids(buf, SCRATCH, &len, id_types[i], src, CHP_WIRE_MAX_IDS + 1),
                  CHP_E_ARG);
        assert_rc(chp_wire_ids(buf, SCRATCH, &len, id_types[i], src, UINT16_MAX), CHP_E_ARG);
        assert_rc(chp_wire_ids(buf, SCRATCH, &len, id_types[i], NULL, 1), CHP_E_ARG);
        assert_rc(chp_wire_ids(buf, SCRATCH, &len, id_types[i], src, CHP_WIRE_MAX_IDS), CHP_OK);
        assert_rc(chp_wire_ids(buf, SCRATCH, &len, id_types[i], src, 0),
                  id_types[i] == CHP_WIRE_GRAFT ? CHP_OK : CHP_E_ARG);
    }
    assert_rc(chp_wire_ids(buf, SCRATCH, &len, CHP_WIRE_GRAFT, NULL, 0), CHP_OK);

    /* NEG. */
    assert_rc(chp_wire_neg(buf, SCRATCH, &len, 1, 4, src, 1), CHP_E_ARG);
    assert_rc(chp_wire_neg(buf, SCRATCH, &len, 1, 0xff, src, 1), CHP_E_ARG);
    assert_rc(chp_wire_neg(buf, SCRATCH, &len, 1, CHP_NEG_MORE | 1, src, 1), CHP_OK);
    assert_rc(chp_wire_neg(buf, SCRATCH, &len, 1, 0, src, 0), CHP_E_ARG);
    assert_rc(chp_wire_neg(buf, SCRATCH, &len, 1, 0, NULL, 1), CHP_E_ARG);
    assert_rc(chp_wire_neg(buf, SCRATCH, &len, 1, 1, src, 1), CHP_OK);

    /* PING / PONG. */
    for (unsigned t = 0; t <= 255; t++) {
        int want = (t == CHP_WIRE_PING || t == CHP_WIRE_PONG) ? CHP_OK : CHP_E_ARG;
        assert_rc(chp_wire_ping(buf, SCRATCH, &len, (uint8_t)t, 7), want);
    }

    /* PEERS: too many, a missing list, bad addresses anywhere in the list. */
    const char *many[CHP_WIRE_MAX_PEERS + 1];
    for (int i = 0; i <= CHP_WIRE_MAX_PEERS; i++)
        many[i] = "h:1/k";
    assert_rc(chp_wire_peers(buf, SCRATCH, &len, many, CHP_WIRE_MAX_PEERS + 1), CHP_E_ARG);
    assert_rc(chp_wire_peers(buf, SCRATCH, &len, many, 0xff), CHP_E_ARG);
    assert_rc(chp_wire_peers(buf, SCRATCH, &len, NULL, 1), CHP_E_ARG);
    assert_rc(chp_wire_peers(buf, SCRATCH, &len, many, CHP_WIRE_MAX_PEERS), CHP_OK);
    char a200[CHP_WIRE_MAX_ADDR + 1], a201[CHP_WIRE_MAX_ADDR + 2];
    memset(a200, 'z', sizeof a200 - 1);
    a200[sizeof a200 - 1] = '\0';
    memset(a201, 'z', sizeof a201 - 1);
    a201[sizeof a201 - 1] = '\0';
    const char *bad_addrs[] = {"", a201, "h 1", " h", "h\x7f", "h\x80", "\xd8\xae", "h\t1", "h\n"};
    for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
        for (int at = 0; at < 3; at++) {
            const char *list[3] = {"ok:1/k", "!~", "ok:2/k"};
            list[at] = bad_addrs[i];
            int rc = chp_wire_peers(buf, SCRATCH, &len, list, 3);
            if (rc != CHP_E_ARG)
                fail_msg("bad address %zu at %d = %s, want CHP_E_ARG", i, at, chp_errname(rc));
        }
    }
    const char *edge[] = {a200, "\x21", "\x7e"};
    assert_rc(chp_wire_peers(buf, SCRATCH, &len, edge, 3), CHP_OK);

    /* BYE: a reason over 200 bytes or not UTF-8. */
    char t201[CHP_WIRE_MAX_TEXT + 2], t200[CHP_WIRE_MAX_TEXT + 1];
    memset(t201, 'x', sizeof t201 - 1);
    t201[sizeof t201 - 1] = '\0';
    memset(t200, 'x', sizeof t200 - 1);
    t200[sizeof t200 - 1] = '\0';
    assert_rc(chp_wire_bye(buf, SCRATCH, &len, 1, t201), CHP_E_ARG);
    assert_rc(chp_wire_bye(buf, SCRATCH, &len, 1, (const char *)src), CHP_E_ARG); /* huge */
    assert_rc(chp_wire_bye(buf, SCRATCH, &len, 1, t200), CHP_OK);
    static const char *const bad_text[] = {
        "\x80", "a\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "ok\xe2\x82"};
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++)
        assert_rc(chp_wire_bye(buf, SCRATCH, &len, 1, bad_text[i]), CHP_E_ARG);
    /* 99 two-byte letters and a cut third byte: 200 bytes, invalid. */
    for (int i = 0; i < 198; i += 2) {
        t200[i] = (char)0xd8;
        t200[i + 1] = (char)0xb3;
    }
    t200[198] = 'x';
    t200[199] = (char)0xd8;
    assert_rc(chp_wire_bye(buf, SCRATCH, &len, 1, t200), CHP_E_ARG);

    free(src);
    free(buf);
}

/* PROTOCOL.md §15: a frame is at most CHP_WIRE_MAX_FRAME bytes (the link's
 * ZMQ_MAXMSGSIZE, which drops anything larger). NEG is the one encoder
 * whose body has no bound of its own, so it must check the frame limit. */
static void test_encode_neg_frame_limit(void **state)
{
    (void)state;
    size_t cap = CHP_WIRE_MAX_FRAME + 64;
    uint8_t *buf = malloc(cap), *msg = calloc(1, cap);
    size_t len = 0;
    assert_true(buf && msg);
    int at_limit = chp_wire_neg(buf, cap, &len, 1, 1, msg, CHP_WIRE_MAX_FRAME - 6);
    size_t at_limit_len = len;
    int over = chp_wire_neg(buf, cap, &len, 1, 1, msg, CHP_WIRE_MAX_FRAME - 5);
    free(msg);
    free(buf);
    assert_rc(at_limit, CHP_OK);
    assert_int_equal(at_limit_len, CHP_WIRE_MAX_FRAME);
    if (over != CHP_E_ARG)
        fail_msg("chp_wire_neg of a %d-byte frame = %s, want CHP_E_ARG", CHP_WIRE_MAX_FRAME + 1,
                 chp_errname(over));
}

/* ---- random frames ---- */

typedef struct prng {
    uint64_t s;
} prng;

static uint64_t rnd(prng *r)
{
    return tu_splitmix(&r->s);
}

static uint32_t below(prng *r, uint32_t n)
{
    return (uint32_t)(rnd(r) % n);
}

static void fill(prng *r, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd(r);
}

/* Mostly small, now and then anything up to max. */
static uint32_t some(prng *r, uint32_t small, uint32_t max)
{
    return below(r, 8) ? below(r, small + 1) : below(r, max + 1);
}

static size_t put_utf8(char *p, uint32_t cp)
{
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xc0 | (cp >> 6));
        p[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (char)(0xe0 | (cp >> 12));
        p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        p[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    p[0] = (char)(0xf0 | (cp >> 18));
    p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    p[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A random valid reason of at most 200 bytes, no NUL. */
static void random_text(prng *r, char *t)
{
    size_t target = some(r, 20, CHP_WIRE_MAX_TEXT), n = 0;
    for (;;) {
        uint32_t cp;
        switch (below(r, 4)) {
        case 0:
            cp = 1 + below(r, 0x7f);
            break;
        case 1:
            cp = 0x80 + below(r, 0x800 - 0x80);
            break;
        case 2:
            cp = 0x800 + below(r, 0x10000 - 0x800 - 0x800);
            if (cp >= 0xd800)
                cp += 0x800; /* skip the surrogates */
            break;
        default:
            cp = 0x10000 + below(r, 0x110000 - 0x10000);
            break;
        }
        char tmp[4];
        size_t k = put_utf8(tmp, cp);
        if (n + k > target)
            break;
        memcpy(t + n, tmp, k);
        n += k;
    }
    t[n] = '\0';
}

/* A random valid frame of a random type, through the encoders. */
static size_t random_valid(prng *r, uint8_t *buf, size_t cap, uint8_t *src)
{
    size_t len = 0;
    int rc;
    uint8_t type = (uint8_t)(1 + below(r, 14));
    switch (type) {
    case CHP_WIRE_HELLO:
        rc = chp_wire_hello(buf, cap, &len, (uint32_t)rnd(r), (uint16_t)rnd(r),
                            below(r, 4) ? 4096 + below(r, 1u << 20) : (uint32_t)rnd(r) | 0x1000);
        break;
    case CHP_WIRE_PUSH: {
        size_t n = CHP_ENV_OVERHEAD + some(r, 64, CHP_ENV_BUCKET_MAX);
        fill(r, src, n);
        rc = chp_wire_push(buf, cap, &len, src, n);
        break;
    }
    case CHP_WIRE_IHAVE:
    case CHP_WIRE_IWANT:
    case CHP_WIRE_GRAFT:
    case CHP_WIRE_QUERY:
    case CHP_WIRE_HELD: {
        uint16_t n = (uint16_t)some(r, 4, CHP_WIRE_MAX_IDS);
        if (n == 0 && type != CHP_WIRE_GRAFT && type != CHP_WIRE_HELD)
            n = 1;
        fill(r, src, (size_t)n * 32);
        rc = chp_wire_ids(buf, cap, &len, type, src, n);
        break;
    }
    case CHP_WIRE_PRUNE:
        rc = chp_wire_prune(buf, cap, &len);
        break;
    case CHP_WIRE_PUSHES: {
        uint32_t k = 1 + (uint32_t)some(r, 3, 40);
        rc = CHP_OK;
        for (uint32_t i = 0; i < k && rc == CHP_OK; i++) {
            size_t n = CHP_ENV_OVERHEAD + some(r, 64, 3000);
            fill(r, src, n);
            rc = chp_wire_pushes_add(buf, cap, &len, src, n);
        }
        if (rc == CHP_E_OVERFLOW) /* full at 64 KiB: the frame so far */
            rc = CHP_OK;
        break;
    }
    case CHP_WIRE_NEG: {
        size_t n = 1 + some(r, 40, 4000);
        fill(r, src, n);
        rc = chp_wire_neg(buf, cap, &len, (uint32_t)rnd(r), (uint8_t)below(r, 2), src, n);
        break;
    }
    case CHP_WIRE_PING:
    case CHP_WIRE_PONG:
        rc = chp_wire_ping(buf, cap, &len, type, rnd(r));
        break;
    case CHP_WIRE_PEERS: {
        char addr[CHP_WIRE_MAX_PEERS][CHP_WIRE_MAX_ADDR + 1];
        const char *ptrs[CHP_WIRE_MAX_PEERS];
        uint8_t n = (uint8_t)some(r, 3, CHP_WIRE_MAX_PEERS);
        for (uint8_t i = 0; i < n; i++) {
            size_t l = 1 + some(r, 30, CHP_WIRE_MAX_ADDR - 1);
            for (size_t k = 0; k < l; k++)
                addr[i][k] = (char)(0x21 + below(r, 0x7e - 0x21 + 1));
            addr[i][l] = '\0';
            ptrs[i] = addr[i];
        }
        rc = chp_wire_peers(buf, cap, &len, ptrs, n);
        break;
    }
    default: {
        char text[CHP_WIRE_MAX_TEXT + 1];
        random_text(r, text);
        rc = chp_wire_bye(buf, cap, &len, (uint16_t)rnd(r), text);
        break;
    }
    }
    assert_rc(rc, CHP_OK);
    return len;
}

/* Damages a frame the way a broken or hostile peer might. */
static size_t mutate(prng *r, uint8_t *f, size_t len)
{
    switch (below(r, 9)) {
    case 0: /* as is */
        return len;
    case 1: /* flip a few bytes anywhere */
        for (uint32_t k = 1 + below(r, 3); k > 0; k--)
            f[below(r, (uint32_t)len)] ^= (uint8_t)(1 + below(r, 255));
        return len;
    case 2: /* overwrite a header byte (counts, lengths, flags) */
        if (len > 1)
            f[1 + below(r, (uint32_t)(len - 1 < 8 ? len - 1 : 8))] = (uint8_t)rnd(r);
        return len;
    case 3: /* truncate */
        return below(r, (uint32_t)len);
    case 4: { /* append */
        size_t k = 1 + below(r, 8);
        fill(r, f + len, k);
        return len + k;
    }
    case 5: /* another type byte */
        f[0] = (uint8_t)below(r, 16);
        return len;
    case 6: { /* small random frame of a known-ish type */
        size_t n = below(r, 48);
        fill(r, f, n);
        if (n)
            f[0] = (uint8_t)below(r, 15);
        return n;
    }
    case 7: { /* anything at all */
        size_t n = below(r, 300);
        fill(r, f, n);
        return n;
    }
    default: { /* a byte of a small alphabet, so counts and lengths match more often */
        size_t n = 1 + below(r, 40);
        for (size_t i = 0; i < n; i++)
            f[i] = (uint8_t)below(r, 4);
        f[0] = (uint8_t)(1 + below(r, 14));
        return n;
    }
    }
}

static void test_random_frames(void **state)
{
    (void)state;
    prng r = {0x43686170617221ull}; /* fixed seed: failures reproduce */
    uint8_t *f = malloc(SCRATCH), *src = malloc(SCRATCH), *out = malloc(SCRATCH);
    assert_true(f && src && out);
    unsigned ok[16] = {0}, malformed = 0, trailing = 0, version = 0, bye_nul = 0;
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = random_valid(&r, f, SCRATCH - 16, src);
        len = mutate(&r, f, len);

        chp_wire_msg m;
        uint8_t *c;
        int rc = decode_copy(f, len, &m, &c);
        if (rc == CHP_E_MALFORMED || rc == CHP_E_TRAILING) {
            if (!all_zero(&m))
                fail_msg("iter %d: %s left the message non-zero", iter, chp_errname(rc));
            if (rc == CHP_E_MALFORMED)
                malformed++;
            else
                trailing++;
        } else if (rc == CHP_E_VERSION) {
            chp_wire_msg want;
            memset(&want, 0, sizeof want);
            want.type = CHP_WIRE_HELLO;
            want.u.hello.version = f[1];
            assert_int_equal(f[0], CHP_WIRE_HELLO);
            assert_int_not_equal(f[1], CHP_WIRE_VERSION);
            assert_memory_equal(&m, &want, sizeof want);
            version++;
        } else if (rc == CHP_OK) {
            assert_true(m.type >= CHP_WIRE_HELLO && m.type <= CHP_WIRE_PUSHES);
            assert_int_equal(m.type, f[0]);
            if (m.type == CHP_WIRE_BYE && m.u.bye.len && memchr(m.u.bye.text, 0, m.u.bye.len)) {
                bye_nul++; /* cannot be re-encoded: test_decode_bye_text_nul */
            } else {
                size_t olen = 0;
                int erc = reencode(&m, out, SCRATCH, &olen);
                if (erc != CHP_OK || olen != len || memcmp(out, f, len) != 0)
                    fail_msg("iter %d: type %u decoded (%zu bytes) but re-encodes to %s, "
                             "%zu bytes",
                             iter, m.type, len, chp_errname(erc), olen);
                ok[m.type]++;
            }
        } else {
            fail_msg("iter %d: unexpected %s", iter, chp_errname(rc));
        }
        free(c);
    }
    /* The sweep reached every type and every outcome. */
    for (int t = CHP_WIRE_HELLO; t <= CHP_WIRE_PUSHES; t++)
        if (ok[t] < 200)
            fail_msg("only %u valid frames of type %d", ok[t], t);
    assert_true(malformed > 1000 && trailing > 1000 && version > 100);
    print_message("random: ok %u/%u/%u/%u/%u/%u/%u/%u/%u/%u/%u/%u/%u/%u, malformed %u, "
                  "trailing %u, version %u, BYE with NUL %u\n",
                  ok[1], ok[2], ok[3], ok[4], ok[5], ok[6], ok[7], ok[8], ok[9], ok[10], ok[11],
                  ok[12], ok[13], ok[14], malformed, trailing, version, bye_nul);
    free(out);
    free(src);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_roundtrip),
        cmocka_unit_test(test_push_roundtrip),
        cmocka_unit_test(test_pushes_roundtrip),
        cmocka_unit_test(test_pushes_bounds),
        cmocka_unit_test(test_ids_roundtrip),
        cmocka_unit_test(test_prune_roundtrip),
        cmocka_unit_test(test_neg_roundtrip),
        cmocka_unit_test(test_ping_pong_roundtrip),
        cmocka_unit_test(test_peers_roundtrip),
        cmocka_unit_test(test_peers_roundtrip_max),
        cmocka_unit_test(test_bye_roundtrip),
        cmocka_unit_test(test_decode_empty_and_unknown_types),
        cmocka_unit_test(test_decode_every_prefix),
        cmocka_unit_test(test_decode_trailing),
        cmocka_unit_test(test_decode_hello_version),
        cmocka_unit_test(test_decode_hello_max_frame),
        cmocka_unit_test(test_decode_push_bounds),
        cmocka_unit_test(test_decode_ids_counts),
        cmocka_unit_test(test_decode_neg_fields),
        cmocka_unit_test(test_decode_peers_limits),
        cmocka_unit_test(test_decode_bye_limits),
        cmocka_unit_test(test_decode_bye_text_nul),
        cmocka_unit_test(test_peer_at),
        cmocka_unit_test(test_encode_overflow),
        cmocka_unit_test(test_encode_arg),
        cmocka_unit_test(test_encode_neg_frame_limit),
        cmocka_unit_test(test_random_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
