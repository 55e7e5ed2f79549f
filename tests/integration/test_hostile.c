/* test_hostile.c - a hostile neighbour, written directly against libzmq
 * with its own CURVE key, throws garbage, oversized frames, every kind of
 * bad envelope and a flood at a real chapard. The node must stay up, count
 * each reason, ban the peer, and keep serving an honest chapard neighbour.
 * Clients whose routing id is not their CURVE key must get nowhere. */
#include "harness.h"

#include "proto/addr.h"
#include "proto/envelope.h"
#include "proto/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define RECV_MS 10000

/* A raw node-link client: a CURVE DEALER and a monitor of its events. */
typedef struct client {
    void *s, *mon;
    uint8_t pk[32], sk[32];
} client;

static void *zctx;

/* Connects to node n with c's keys; routing id rid (32 bytes), or c's own
 * public key when NULL. */
static void client_open(client *c, const h_node *n, const uint8_t *rid)
{
    c->s = h_raw_dial(zctx, n, c->pk, c->sk, rid ? rid : c->pk, NULL, &c->mon);
}

static void client_close(client *c)
{
    h_raw_close(c->s, c->mon);
    c->s = c->mon = NULL;
}

static void send_push(client *c, const uint8_t *env, size_t len)
{
    uint8_t f[1 + CHP_ENV_MAX_BYTES];
    size_t fl;
    assert_int_equal(chp_wire_push(f, sizeof f, &fl, env, len), CHP_OK);
    h_raw_send(c->s, f, fl);
}

static uint8_t *env_file(h_ctx *h, const char *name, size_t *len)
{
    char p[300];
    uint8_t *b = h_read_file(h_path(h, p, sizeof p, name), len);
    if (*len == 0)
        fail_msg("%s is empty", p);
    return b;
}

/* The node's counter `key` must equal want right now. */
#define assert_counter(h, n, key, want) assert_int_equal(h_status((h), (n), (key)), (want))

/* Pushes env through c and, once n has handled it, asserts its counter
 * key is want. */
static void push_counted(h_ctx *h, const h_node *n, client *c, const uint8_t *env, size_t len,
                         const char *key, long long want)
{
    send_push(c, env, len);
    h_raw_barrier(c->s, RECV_MS);
    assert_counter(h, n, key, want);
}

/* The same with the envelope in DIR/name. */
static void push_file_counted(h_ctx *h, const h_node *n, client *c, const char *name,
                              const char *key, long long want)
{
    size_t len;
    uint8_t *e = env_file(h, name, &len);
    push_counted(h, n, c, e, len, key, want);
    free(e);
}

static void test_hostile_peer(void **state)
{
    h_ctx *h = *state;
    pid_t mk[] = {
        h_mkenv_async(h, "ok", 8, H_END),
        h_mkenv_async(h, "old", 1, "-a", "200000", "-t", "86400", H_END),
        h_mkenv_async(h, "fut", 1, "-a", "-100000", H_END),
        h_mkenv_async(h, "badpow", 1, "-k", "badpow", H_END),
        h_mkenv_async(h, "badver", 1, "-k", "badver", H_END),
        h_mkenv_async(h, "trunc", 1, "-k", "trunc", H_END),
    };
    h_node *n = h_start(h, "n", H_END);
    h_node *good = h_start(h, "good", "--peer", n->addr, H_END);
    h_expect(h, n, "peers connected", H_EQ, 1);
    for (size_t i = 0; i < sizeof mk / sizeof mk[0]; i++)
        h_wait_exit0(h, mk[i], "chapar-mkenv");
    zctx = zmq_ctx_new();
    assert_non_null(zctx);

    size_t vlen, len;
    uint8_t *v0 = env_file(h, "ok0", &vlen), *v1 = env_file(h, "ok1", &len);

    /* A well-behaved start: handshake, HELLO, one valid envelope. */
    client bad = {0};
    h_curve_keys(bad.pk, bad.sk);
    client_open(&bad, n, NULL);
    assert_true(h_zmq_event(bad.mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, RECV_MS));
    h_raw_hello(bad.s, CHP_CAP_NEG);
    h_raw_barrier(bad.s, RECV_MS);
    h_expect(h, n, "peers connected", H_EQ, 2);
    send_push(&bad, v0, vlen);
    h_raw_barrier(bad.s, RECV_MS);
    assert_counter(h, n, "accepted", 1);
    h_expect(h, good, "envelopes stored", H_EQ, 1); /* passed on */

    /* One of each bad envelope, each counted under its reason. */
    push_file_counted(h, n, &bad, "old0", "rejected expired", 1);
    push_file_counted(h, n, &bad, "fut0", "rejected future", 1);
    v1[len / 2] ^= 0x01; /* one flipped byte: the proof of work no longer holds */
    push_counted(h, n, &bad, v1, len, "rejected pow", 1);
    push_file_counted(h, n, &bad, "badpow0", "rejected pow", 2);
    push_file_counted(h, n, &bad, "badver0", "rejected version", 1);
    push_file_counted(h, n, &bad, "trunc0", "rejected size", 1);

    /* Frames that are not messages: an unknown type, an empty frame, a
     * HELLO cut short. */
    static const uint8_t junk[] = {0xee, 0x01, 0x02, 0x03};
    h_raw_send(bad.s, junk, sizeof junk);
    h_raw_send(bad.s, junk, 0);
    h_raw_send(bad.s, (const uint8_t[]){CHP_WIRE_HELLO}, 1);
    h_raw_barrier(bad.s, RECV_MS);
    assert_counter(h, n, "rejected malformed", 3);
    assert_counter(h, n, "bans", 0);
    assert_counter(h, n, "envelopes stored", 1);

    /* A frame over 64 KiB: libzmq drops the connection before the node
     * sees it; the client reconnects and is still heard. */
    size_t big = CHP_WIRE_MAX_FRAME + 4096;
    uint8_t *huge = calloc(1, big);
    assert_non_null(huge);
    huge[0] = CHP_WIRE_PUSH;
    h_raw_send(bad.s, huge, big);
    free(huge);
    assert_true(h_zmq_event(bad.mon, ZMQ_EVENT_DISCONNECTED, RECV_MS));
    assert_true(h_zmq_event(bad.mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, RECV_MS));
    h_raw_barrier(bad.s, RECV_MS);
    assert_counter(h, n, "rejected malformed", 3);

    /* A flood of copies of one envelope: a neighbour that pushes the same
     * envelope again outside a sync is scored (and one faster than the
     * 5000/s a neighbour may push has the surplus dropped and counted);
     * the misbehaviour adds up to a ban. The node answers `status` all
     * along. */
    uint8_t frame[1 + CHP_ENV_MAX_BYTES];
    size_t fl;
    assert_int_equal(chp_wire_push(frame, sizeof frame, &fl, v0, vlen), CHP_OK);
    uint64_t t0 = chp_mono_ms();
    int sent = 0;
    while (h_status(h, n, "bans") < 1) {
        if (chp_mono_ms() - t0 > 30000) {
            h_dump_logs(h);
            fail_msg("no ban after %d copies in 30 s", sent);
        }
        /* (once banned, the node closes this connection: sends stop) */
        for (int i = 0; i < 5000; i++, sent++)
            if (zmq_send(bad.s, frame, fl, ZMQ_DONTWAIT) != (int)fl)
                break;
    }
    h_note(h, "banned after %d copies in %llu ms", sent, (unsigned long long)(chp_mono_ms() - t0));
    /* Banned for the copies themselves, however slowly they come (a
     * sanitizer build's client stays under the 5000/s rate), or for the
     * rate when it is exceeded first. */
    size_t loglen;
    char *log = (char *)h_read_file(n->log, &loglen);
    assert_non_null(log);
    assert_true(strstr(log, "pushes the same envelope again") ||
                h_status(h, n, "rejected rate") > 0);
    free(log);
    assert_counter(h, n, "bans", 1);
    assert_counter(h, n, "envelopes stored", 1);
    assert_counter(h, n, "rejected expired", 1);
    assert_counter(h, n, "rejected future", 1);
    assert_counter(h, n, "rejected pow", 2);
    assert_counter(h, n, "rejected version", 1);
    assert_counter(h, n, "rejected size", 1);

    /* Banned: forgotten as a neighbour, and a new connection with the
     * same key is refused at the handshake. */
    char *out = NULL;
    assert_int_equal(h_chapar(h, n, &out, NULL, "peer", "list", H_END), 0);
    char hex[65];
    for (int k = 0; k < 32; k++)
        sprintf(hex + (size_t)2 * k, "%02x", bad.pk[k]);
    assert_null(strstr(out, hex));
    free(out);
    client again = bad;
    client_open(&again, n, NULL);
    h_expect(h, n, "rejected banned", H_GE, 1);
    client_close(&again);
    client_close(&bad);

    /* The honest neighbour is still served, both ways. */
    h_expect(h, n, "peers connected", H_EQ, 1);
    h_publish(h, good, "ok", 2, NULL);
    h_expect(h, n, "envelopes stored", H_EQ, 2);
    h_publish(h, n, "ok", 3, NULL);
    h_expect(h, good, "envelopes stored", H_EQ, 3);

    /* A client whose routing id is not its CURVE key is known by its
     * CURVE key alone: what it sends counts as its own, under its key. */
    client other = {0};
    uint8_t rid[32];
    h_curve_keys(other.pk, other.sk);
    h_curve_keys(again.pk, again.sk); /* just for 32 random-looking bytes */
    memcpy(rid, again.pk, 32);
    client_open(&other, n, rid);
    assert_true(h_zmq_event(other.mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, RECV_MS));
    h_raw_hello(other.s, CHP_CAP_NEG);
    uint8_t *e = env_file(h, "ok4", &len);
    send_push(&other, e, len);
    free(e);
    h_expect(h, n, "envelopes stored", H_EQ, 2 + 1 + 1);
    h_expect(h, n, "peers connected", H_EQ, 2);
    client_close(&other);

    h_stop(h, good);
    h_stop(h, n); /* still up, and it shuts down cleanly */
    free(v0);
    free(v1);
    zmq_ctx_term(zctx);
    zctx = NULL;
}

/* A client that claims an honest neighbour's key as its routing id (the
 * key is public: it is in the address) must not take over that
 * neighbour's link: the honest node keeps receiving what the node
 * passes on, and keeps being heard. */
static void test_routing_id_hijack(void **state)
{
    h_ctx *h = *state;
    pid_t mk = h_mkenv_async(h, "ok", 2, H_END);
    h_node *n = h_start(h, "n", H_END);
    h_node *good = h_start(h, "good", "--peer", n->addr, H_END);
    h_expect(h, n, "peers connected", H_EQ, 1);
    h_wait_exit0(h, mk, "chapar-mkenv");
    zctx = zmq_ctx_new();
    assert_non_null(zctx);

    client thief = {0};
    chp_addr ga;
    assert_int_equal(chp_addr_parse(good->addr, strlen(good->addr), &ga), CHP_OK);
    h_curve_keys(thief.pk, thief.sk);
    client_open(&thief, n, ga.key);
    assert_true(h_zmq_event(thief.mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, RECV_MS));

    /* Presenting another node's key as the routing id takes nothing over:
     * the node knows its neighbours by their CURVE keys. */
    h_publish(h, good, "ok", 0, NULL);
    h_expect_(h, n, "envelopes stored", H_EQ, 1, 3000, __FILE__, __LINE__);
    h_publish(h, n, "ok", 1, NULL);
    h_expect_(h, good, "envelopes stored", H_EQ, 2, 3000, __FILE__, __LINE__);
    client_close(&thief);
    h_stop(h, good);
    h_stop(h, n);
    zmq_ctx_term(zctx);
    zctx = NULL;
}

static void send_neg_frag(client *c, uint32_t session, uint8_t flags, const uint8_t *msg,
                          size_t len)
{
    uint8_t *f = malloc(CHP_WIRE_MAX_FRAME);
    size_t fl;
    assert_non_null(f);
    assert_int_equal(chp_wire_neg(f, CHP_WIRE_MAX_FRAME, &fl, session, flags, msg, len), CHP_OK);
    h_raw_send(c->s, f, fl);
    free(f);
}

/* Reads frames until a NEG reply of the session; returns its message
 * length and copies it to out. */
static size_t recv_neg_reply(client *c, uint32_t session, uint8_t *out, size_t cap)
{
    uint8_t in[CHP_WIRE_MAX_FRAME];
    uint64_t end = chp_mono_ms() + RECV_MS;
    while (chp_mono_ms() < end) {
        int n = zmq_recv(c->s, in, sizeof in, 0);
        if (n < 0)
            break;
        chp_wire_msg m;
        if (n <= (int)sizeof in && chp_wire_decode(in, (size_t)n, &m) == CHP_OK &&
            m.type == CHP_WIRE_NEG && m.u.neg.session == session && !m.u.neg.initiator) {
            assert_false(m.u.neg.more);
            assert_true(m.u.neg.len <= cap);
            memcpy(out, m.u.neg.msg, m.u.neg.len);
            return m.u.neg.len;
        }
    }
    fail_msg("no NEG reply for session %u within %d ms", session, RECV_MS);
    return 0;
}

/* A Negentropy message in several NEG frames (PROTOCOL.md §15): a peer
 * that announced fragments is answered once the last one arrives; one over
 * 512 KiB, or fragments from a peer that never announced them, are
 * refused and counted as `rejected sync`, and the node stays up. */
static void test_neg_fragments(void **state)
{
    h_ctx *h = *state;
    h_mkenv(h, "ok", 3, H_END);
    h_node *n = h_start(h, "n", H_END);
    for (int i = 0; i < 3; i++)
        h_publish(h, n, "ok", i, NULL);
    zctx = zmq_ctx_new();
    assert_non_null(zctx);

    client c = {0};
    h_curve_keys(c.pk, c.sk);
    client_open(&c, n, NULL);
    assert_true(h_zmq_event(c.mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, RECV_MS));
    h_raw_hello(c.s, CHP_CAP_NEG | CHP_CAP_NEG_FRAG);
    h_raw_barrier(c.s, RECV_MS);

    /* An empty client's first message: v1, one range to infinity listing no
     * ids, cut after the version byte. The node answers with its 3 ids. */
    static const uint8_t init[] = {0x61, 0x00, 0x00, 0x02, 0x00};
    send_neg_frag(&c, 7, CHP_NEG_FROM_INITIATOR | CHP_NEG_MORE, init, 1);
    send_neg_frag(&c, 7, CHP_NEG_FROM_INITIATOR, init + 1, sizeof init - 1);
    uint8_t reply[4096];
    size_t rl = recv_neg_reply(&c, 7, reply, sizeof reply);
    assert_true(rl == 5 + 3 * 32);
    assert_int_equal(reply[0], 0x61);
    assert_int_equal(reply[3], 0x02); /* IdList */
    assert_int_equal(reply[4], 3);    /* of the 3 stored envelopes */
    assert_counter(h, n, "rejected sync", 0);

    /* Nine full fragments of one message: over 512 KiB. */
    uint8_t *junk = calloc(1, CHP_NEG_FRAG_MAX);
    assert_non_null(junk);
    junk[0] = 0x61;
    for (int i = 0; i < 9; i++)
        send_neg_frag(&c, 8, CHP_NEG_FROM_INITIATOR | CHP_NEG_MORE, junk, CHP_NEG_FRAG_MAX);
    h_raw_barrier(c.s, RECV_MS);
    assert_counter(h, n, "rejected sync", 1);
    assert_counter(h, n, "bans", 0);

    /* A peer that did not announce fragments cannot send them. */
    client d = {0};
    h_curve_keys(d.pk, d.sk);
    client_open(&d, n, NULL);
    assert_true(h_zmq_event(d.mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, RECV_MS));
    h_raw_hello(d.s, CHP_CAP_NEG);
    h_raw_barrier(d.s, RECV_MS);
    send_neg_frag(&d, 9, CHP_NEG_FROM_INITIATOR | CHP_NEG_MORE, init, 1);
    h_raw_barrier(d.s, RECV_MS);
    assert_counter(h, n, "rejected sync", 2);

    /* A fragment of another session discards a half-received message:
     * the new one is answered whole. */
    send_neg_frag(&c, 10, CHP_NEG_FROM_INITIATOR | CHP_NEG_MORE, junk, 100);
    send_neg_frag(&c, 11, CHP_NEG_FROM_INITIATOR, init, sizeof init);
    rl = recv_neg_reply(&c, 11, reply, sizeof reply);
    assert_true(rl == 5 + 3 * 32);
    assert_counter(h, n, "rejected sync", 2);

    /* Big both ways: 20,000 fingerprinted ranges (timestamps 1..20000, none
     * matching) are 380 KB in 6 fragments; the node's reply, an empty id
     * list for each, is over one frame and comes back in fragments too. */
    enum { RANGES = 20000 };
    size_t bl = 1 + (size_t)RANGES * 19;
    uint8_t *big = malloc(bl);
    assert_non_null(big);
    big[0] = 0x61;
    for (size_t i = 0; i < RANGES; i++) {
        uint8_t *r = big + 1 + i * 19;
        r[0] = 0x02; /* timestamp: 1 + delta of 1 */
        r[1] = 0x00; /* no id prefix */
        r[2] = 0x01; /* Fingerprint */
        memset(r + 3, 0xaa, 16);
    }
    size_t frags = 0;
    for (size_t off = 0; off < bl; off += CHP_NEG_FRAG_MAX, frags++) {
        size_t k = bl - off > CHP_NEG_FRAG_MAX ? CHP_NEG_FRAG_MAX : bl - off;
        send_neg_frag(&c, 12, CHP_NEG_FROM_INITIATOR | (off + k < bl ? CHP_NEG_MORE : 0), big + off,
                      k);
    }
    assert_int_equal(frags, 6);
    size_t got = 0, parts = 0;
    uint8_t *in = malloc(CHP_WIRE_MAX_FRAME);
    assert_non_null(in);
    for (int more = 1; more;) {
        int k = zmq_recv(c.s, in, CHP_WIRE_MAX_FRAME, 0);
        assert_true(k > 0);
        chp_wire_msg m;
        if (chp_wire_decode(in, (size_t)k, &m) != CHP_OK || m.type != CHP_WIRE_NEG)
            continue;
        assert_int_equal(m.u.neg.session, 12);
        if (parts == 0)
            assert_int_equal(m.u.neg.msg[0], 0x61);
        got += m.u.neg.len;
        parts++;
        more = m.u.neg.more;
    }
    h_note(h, "a %zu-byte sync message answered with %zu bytes in %zu fragments", bl, got, parts);
    assert_true(parts >= 2);
    assert_true(got > CHP_NEG_FRAG_MAX);
    free(in);
    free(big);
    assert_counter(h, n, "rejected sync", 2);
    assert_counter(h, n, "envelopes stored", 3);
    free(junk);
    client_close(&c);
    client_close(&d);
    h_stop(h, n); /* still up, and it shuts down cleanly */
    zmq_ctx_term(zctx);
    zctx = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_peer, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_routing_id_hijack, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_neg_fragments, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
