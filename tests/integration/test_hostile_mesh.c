/* test_hostile_mesh.c - what a neighbour, hostile or merely different, can
 * make a node do through sync, gossip and bans (issue 13, findings 1, 2, 4
 * and 5). Real chapard processes; the other side is either another
 * chapard or a raw libzmq CURVE peer written here: a client that dials the
 * node, or a server the node dials. */
#include "harness.h"

#include "proto/addr.h"
#include "proto/envelope.h"
#include "proto/wire.h"

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

extern char **environ;

#define RECV_MS 10000
#define NSMALL  2120 /* more than one sync session moves (2048) */

static void *zctx;
static char gen_dir[64];     /* envelopes made once for the whole group */
static void *open_socks[16]; /* closed by teardown after a failed assertion */

/* ---- a raw peer: a CURVE DEALER that dials, or a ROUTER that is dialled ---- */

typedef struct peer {
    void *s, *mon;
    uint8_t pk[32], sk[32];
    int server;
    uint8_t rid[256]; /* server: the routing id of the node's latest connection */
    size_t ridlen;
    char addr[CHP_ADDR_STR_MAX + 1]; /* server: its address for --peer */
} peer;

/* Remembers p's sockets for the teardown after a failed assertion. */
static void track(peer *p)
{
    for (size_t i = 0, k = 0; i < sizeof open_socks / sizeof open_socks[0] && k < 2; i++)
        if (!open_socks[i])
            open_socks[i] = k++ ? p->mon : p->s;
}

/* A client that dials node n. */
static void client_open(peer *p, const h_node *n)
{
    memset(p, 0, sizeof *p);
    h_curve_keys(p->pk, p->sk);
    p->s = h_raw_dial(zctx, n, p->pk, p->sk, p->pk, NULL, &p->mon);
    track(p);
}

/* A server on a free loopback port, for a node's --peer or `peer add`. */
static void server_open(peer *p)
{
    char ep[256];
    size_t el = sizeof ep;
    int one = 1;
    int zero = 0, tmo = RECV_MS;
    memset(p, 0, sizeof *p);
    h_curve_keys(p->pk, p->sk);
    p->server = 1;
    p->s = zmq_socket(zctx, ZMQ_ROUTER);
    assert_non_null(p->s);
    assert_int_equal(zmq_setsockopt(p->s, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    assert_int_equal(zmq_setsockopt(p->s, ZMQ_CURVE_SECRETKEY, p->sk, 32), 0);
    assert_int_equal(zmq_setsockopt(p->s, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(p->s, ZMQ_SNDTIMEO, &tmo, sizeof tmo), 0);
    p->mon = h_zmq_monitor(zctx, p->s);
    track(p);
    assert_int_equal(zmq_bind(p->s, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(zmq_getsockopt(p->s, ZMQ_LAST_ENDPOINT, ep, &el), 0);
    chp_addr a = {0};
    snprintf(a.host, sizeof a.host, "127.0.0.1");
    a.port = (uint16_t)atoi(strrchr(ep, ':') + 1);
    memcpy(a.key, p->pk, 32);
    assert_int_equal(chp_addr_format(&a, p->addr, sizeof p->addr), CHP_OK);
}

static void peer_close(peer *p)
{
    h_raw_close(p->s, p->mon);
    for (size_t i = 0; i < sizeof open_socks / sizeof open_socks[0]; i++)
        if (open_socks[i] && (open_socks[i] == p->s || open_socks[i] == p->mon))
            open_socks[i] = NULL;
    p->s = p->mon = NULL;
}

/* Waits for a monitor event of the given kind; 1 when seen. */
static int peer_event(peer *p, int want, int deadline_ms)
{
    return h_zmq_event(p->mon, want, deadline_ms);
}

static void peer_send(peer *p, const uint8_t *f, size_t len)
{
    if (p->server && zmq_send(p->s, p->rid, p->ridlen, ZMQ_SNDMORE) != (int)p->ridlen)
        fail_msg("server send: %s", zmq_strerror(zmq_errno()));
    if (zmq_send(p->s, f, len, 0) != (int)len)
        fail_msg("send of %zu bytes: %s", len, zmq_strerror(zmq_errno()));
}

/* One frame from the node within ms (0 = do not wait), into buf; its
 * length, or -1. A server remembers the connection it came on. */
static int peer_recv(peer *p, uint8_t *buf, size_t cap, int ms)
{
    zmq_pollitem_t pi = {p->s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&pi, 1, ms) <= 0)
        return -1;
    if (p->server) {
        int r = zmq_recv(p->s, p->rid, sizeof p->rid, 0);
        if (r <= 0)
            return -1;
        p->ridlen = (size_t)r;
    }
    int n = zmq_recv(p->s, buf, cap, 0);
    return n > (int)cap ? -1 : n;
}

static void send_hello(peer *p, uint32_t caps)
{
    uint8_t f[16];
    size_t fl;
    assert_int_equal(chp_wire_hello(f, sizeof f, &fl, caps, 0, CHP_WIRE_MAX_FRAME), CHP_OK);
    peer_send(p, f, fl);
}

/* The PONG of a PING: what a node sends a peer to learn it reads. */
static void answer_ping(peer *p, const chp_wire_msg *m)
{
    uint8_t f[16];
    size_t fl;
    assert_int_equal(chp_wire_ping(f, sizeof f, &fl, CHP_WIRE_PONG, m->u.nonce), CHP_OK);
    peer_send(p, f, fl);
}

/* What a peer counts while it reads. */
typedef struct tally {
    long push, neg, hello;
} tally;

static void tally_frame(peer *p, const uint8_t *f, int n, tally *t)
{
    chp_wire_msg m;
    if (n < 0 || chp_wire_decode(f, (size_t)n, &m) != CHP_OK)
        return;
    if (m.type == CHP_WIRE_PUSH)
        t->push++;
    else if (m.type == CHP_WIRE_NEG)
        t->neg++;
    else if (m.type == CHP_WIRE_HELLO)
        t->hello++;
    else if (m.type == CHP_WIRE_PING)
        answer_ping(p, &m);
}

/* PING, then read (and count) until the matching PONG: the node handles
 * one link's frames in order, so everything sent before is dealt with. */
static void barrier(peer *p, tally *t)
{
    static uint64_t nonce = 1000;
    uint8_t f[16];
    size_t fl;
    nonce++;
    assert_int_equal(chp_wire_ping(f, sizeof f, &fl, CHP_WIRE_PING, nonce), CHP_OK);
    peer_send(p, f, fl);
    static uint8_t in[CHP_WIRE_MAX_FRAME];
    uint64_t end = chp_mono_ms() + RECV_MS;
    while (chp_mono_ms() < end) {
        int n = peer_recv(p, in, sizeof in, 100);
        chp_wire_msg m;
        if (n > 0 && chp_wire_decode(in, (size_t)n, &m) == CHP_OK && m.type == CHP_WIRE_PONG &&
            m.u.nonce == nonce)
            return;
        if (t)
            tally_frame(p, in, n, t);
    }
    fail_msg("no PONG from the node within %d ms", RECV_MS);
}

/* ---- envelopes made once (proofs of work take a while) ---- */

static uint8_t *gen_env(const char *name, size_t *len)
{
    char p[300];
    snprintf(p, sizeof p, "%s/%s", gen_dir, name);
    uint8_t *b = h_read_file(p, len);
    if (!b || *len == 0)
        fail_msg("%s is missing or empty", p);
    return b;
}

/* Pushes the small envelopes made by the group setup into node n through
 * a client, and waits until n stores them. */
static void fill_node(h_ctx *h, const h_node *n)
{
    peer c;
    client_open(&c, n);
    assert_true(peer_event(&c, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, RECV_MS));
    send_hello(&c, 0);
    for (int i = 0; i < NSMALL; i++) {
        char name[32];
        size_t len;
        snprintf(name, sizeof name, "%c%d", i < NSMALL / 2 ? 'a' : 'b', i % (NSMALL / 2));
        uint8_t *e = gen_env(name, &len), f[1 + CHP_ENV_MAX_BYTES];
        size_t fl;
        assert_int_equal(chp_wire_push(f, sizeof f, &fl, e, len), CHP_OK);
        peer_send(&c, f, fl);
        free(e);
    }
    barrier(&c, NULL);
    h_expect(h, n, "envelopes stored", H_EQ, NSMALL);
    peer_close(&c);
}

static pid_t spawn_mkenv(const char *const *argv)
{
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ) != 0)
        return -1;
    return pid;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(gen_dir, sizeof gen_dir, "/tmp/chp-hmesh-XXXXXX");
    if (!mkdtemp(gen_dir))
        return -1;
    const char *mk = getenv("CHAPAR_MKENV");
    if (!mk)
        return -1;
    char half[16], pa[128], pb[128], pg[128];
    snprintf(half, sizeof half, "%d", NSMALL / 2);
    snprintf(pa, sizeof pa, "%s/a", gen_dir);
    snprintf(pb, sizeof pb, "%s/b", gen_dir);
    snprintf(pg, sizeof pg, "%s/big", gen_dir);
    const char *a[] = {mk, "-n", half, "-t", "3600", pa, NULL};
    const char *b[] = {mk, "-n", half, "-t", "3600", pb, NULL};
    const char *g[] = {mk, "-n", "1", "-t", "3600", "-s", "16000", pg, NULL};
    pid_t pids[] = {spawn_mkenv(a), spawn_mkenv(b), spawn_mkenv(g)};
    int ok = 1;
    for (size_t i = 0; i < 3; i++) {
        int st = 0;
        ok &= pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i] && WIFEXITED(st) &&
              WEXITSTATUS(st) == 0;
    }
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", gen_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    zctx = zmq_ctx_new();
    int rc = zctx ? h_setup(state) : -1;
    alarm(H_WATCHDOG_S); /* the harness's watchdog, for each test of this long group */
    return rc;
}

static int teardown(void **state)
{
    int rc = h_teardown(state);
    for (size_t i = 0; i < sizeof open_socks / sizeof open_socks[0]; i++)
        if (open_socks[i]) {
            zmq_close(open_socks[i]);
            open_socks[i] = NULL;
        }
    if (zctx) {
        zmq_ctx_shutdown(zctx); /* monitors of sockets left open do not block it */
        zmq_ctx_term(zctx);
    }
    zctx = NULL;
    return rc;
}

/* ---- finding 1: honest nodes must not ban each other ---- */

/* Envelopes that expired while A held them (its hourly sweep has not run)
 * are neither fetched from A by a new neighbour's sync (B dials A) nor
 * pushed by A's own sync to another (A dials C): before, each came as an
 * expired envelope scored 0.2 and 60 of them banned A, so two honest
 * nodes lost their link for good. */
static void test_expired_not_served(void **state)
{
    h_ctx *h = *state;
    enum { N = 60, TTL = 25 };
    h_node *a = h_start(h, "a", H_END);
    h_node *c = h_start(h, "c", H_END);
    h_mkenv(h, "x", N, "-t", "25", H_END);
    time_t made = time(NULL);
    h_publish_range(h, a, "x", 0, N);
    h_expect(h, a, "envelopes stored", H_EQ, N);
    while (time(NULL) <= made + TTL + 1) /* all of them expired, none swept */
        h_sleep_ms(200);
    h_node *b = h_start(h, "b", "--peer", a->addr, H_END);
    free(h_ok(h, a, "peer", "add", c->addr, H_END));
    h_expect(h, b, "syncs completed", H_GE, 1);
    h_expect(h, a, "syncs completed", H_GE, 1);
    h_sleep_ms(1000); /* what those syncs moved has arrived */
    assert_int_equal(h_status(h, b, "rejected expired"), 0);
    assert_int_equal(h_status(h, c, "rejected expired"), 0);
    assert_int_equal(h_status(h, a, "bans"), 0);
    assert_int_equal(h_status(h, b, "bans"), 0);
    assert_int_equal(h_status(h, c, "bans"), 0);
    h_expect(h, a, "peers connected", H_EQ, 2);
    /* and the links carry what is fresh */
    h_mkenv(h, "y", 1, H_END);
    h_publish(h, a, "y", 0, NULL);
    h_expect(h, b, "envelopes stored", H_EQ, 1);
    h_expect(h, c, "envelopes stored", H_EQ, 1);
    h_stop(h, b);
    h_stop(h, c);
    h_stop(h, a);
}

static void send_junk(peer *p, int count)
{
    static const uint8_t junk[] = {0xee, 0x01, 0x02, 0x03};
    for (int i = 0; i < count; i++)
        peer_send(p, junk, sizeof junk);
}

/* A score decays: 9 points, 6 s, 1 more point is no ban (it was). A
 * ban of a peer given by --peer ends after 30 s the first time, and the
 * node dials it again (it never did: the address was forgotten). */
static void test_score_decays_ban_ends(void **state)
{
    h_ctx *h = *state;
    peer s;
    server_open(&s);
    h_node *n = h_start(h, "n", "--peer", s.addr, H_END);
    static uint8_t in[CHP_WIRE_MAX_FRAME];
    tally t = {0};
    uint64_t end = chp_mono_ms() + RECV_MS;
    while (!t.hello && chp_mono_ms() < end)
        tally_frame(&s, in, peer_recv(&s, in, sizeof in, 100), &t);
    assert_int_equal(t.hello, 1);
    send_hello(&s, 0);
    h_expect(h, n, "peers connected", H_EQ, 1);

    send_junk(&s, 9); /* 1 point each */
    barrier(&s, NULL);
    assert_int_equal(h_status(h, n, "rejected malformed"), 9);
    h_sleep_ms(6000); /* 0.1 point a second forgiven */
    send_junk(&s, 1);
    barrier(&s, NULL);
    assert_int_equal(h_status(h, n, "rejected malformed"), 10);
    assert_int_equal(h_status(h, n, "bans"), 0);
    h_expect(h, n, "peers connected", H_EQ, 1);

    send_junk(&s, 3);
    h_expect(h, n, "bans", H_EQ, 1);
    uint64_t banned = chp_mono_ms();
    h_expect(h, n, "peers connected", H_EQ, 0);

    /* The node dials its --peer again when the ban ends, and says HELLO. */
    t.hello = 0;
    end = banned + 45000;
    while (!t.hello && chp_mono_ms() < end)
        tally_frame(&s, in, peer_recv(&s, in, sizeof in, 100), &t);
    h_note(h, "dialled again %llu ms after the ban", (unsigned long long)(chp_mono_ms() - banned));
    assert_int_equal(t.hello, 1);
    assert_true(chp_mono_ms() - banned >= 25000);
    send_hello(&s, 0);
    h_expect(h, n, "peers connected", H_EQ, 1);
    peer_close(&s);
    h_stop(h, n);
}

/* ---- finding 2: a neighbour that cannot keep what a sync sends ---- */

/* The node dials a peer that takes every envelope and keeps none, as a
 * neighbour with a small quota does: its sync answers "I have nothing"
 * each time. The node pushes each envelope once and stops; before, a
 * difference over one session's 2048 envelopes made it sync again every
 * 500 ms and push them all again, for ever. */
static void test_sync_converges_with_small_quota(void **state)
{
    h_ctx *h = *state;
    h_node *b = h_start(h, "b", H_END);
    fill_node(h, b);
    peer s;
    server_open(&s);
    free(h_ok(h, b, "peer", "add", s.addr, H_END));
    static uint8_t in[CHP_WIRE_MAX_FRAME];
    static const uint8_t nothing[] = {0x61, 0x00, 0x00, 0x02, 0x00}; /* [0, inf): no ids */
    tally t = {0};
    long sessions = 0;
    uint64_t end = chp_mono_ms() + 10000;
    while (chp_mono_ms() < end) {
        int k = peer_recv(&s, in, sizeof in, 100);
        chp_wire_msg m;
        if (k <= 0 || chp_wire_decode(in, (size_t)k, &m) != CHP_OK)
            continue;
        if (m.type == CHP_WIRE_HELLO) {
            send_hello(&s, CHP_CAP_NEG);
        } else if (m.type == CHP_WIRE_NEG && m.u.neg.initiator && !m.u.neg.more) {
            uint8_t f[64];
            size_t fl;
            assert_int_equal(
                chp_wire_neg(f, sizeof f, &fl, m.u.neg.session, 0, nothing, sizeof nothing),
                CHP_OK);
            peer_send(&s, f, fl);
            sessions++;
        } else {
            tally_frame(&s, in, k, &t);
        }
    }
    h_note(h, "%ld sync sessions pushed %ld envelopes in 10 s", sessions, t.push);
    assert_true(t.push >= 2048);   /* a whole session's worth offered */
    assert_true(t.push <= NSMALL); /* and nothing twice */
    assert_true(sessions <= 3);
    assert_int_equal(h_status(h, b, "bans"), 0);
    peer_close(&s);
    h_stop(h, b);
}

/* ---- finding 4: Negentropy CPU amplification ---- */

/* 26-byte NEG frames, each a whole-range fingerprint that matches nothing,
 * sent as fast as they go: each would make the node walk its index of
 * 2120 items three times. The node answers a few (its walk budget), bans
 * the sender for asking faster than it is answered, stays responsive,
 * and an honest neighbour still syncs the whole store. */
static void test_neg_walk_bounded(void **state)
{
    h_ctx *h = *state;
    h_node *b = h_start(h, "b", H_END);
    fill_node(h, b);
    h_node *good = h_start(h, "good", "--peer", b->addr, H_END);
    h_expect(h, good, "envelopes stored", H_EQ, NSMALL);

    peer c;
    client_open(&c, b);
    assert_true(peer_event(&c, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, RECV_MS));
    send_hello(&c, CHP_CAP_NEG);
    barrier(&c, NULL);
    uint8_t msg[20] = {0x61, 0x00, 0x00, 0x01}; /* [0, inf), fingerprint */
    memset(msg + 4, 0xa5, 16);
    static uint8_t in[CHP_WIRE_MAX_FRAME];
    tally t = {0};
    long sent = 0;
    uint64_t t0 = chp_mono_ms(), worst = 0;
    for (uint32_t session = 1; chp_mono_ms() - t0 < 5000; session++) {
        uint8_t f[64];
        size_t fl;
        assert_int_equal(
            chp_wire_neg(f, sizeof f, &fl, session, CHP_NEG_FROM_INITIATOR, msg, sizeof msg),
            CHP_OK);
        if (zmq_send(c.s, f, fl, ZMQ_DONTWAIT) == (int)fl)
            sent++;
        for (int k; (k = peer_recv(&c, in, sizeof in, 0)) > 0;)
            tally_frame(&c, in, k, &t);
        if (session % 500 == 0) { /* the node answers its user meanwhile */
            uint64_t q = chp_mono_ms();
            assert_true(h_status(h, b, "envelopes stored") == NSMALL);
            if (chp_mono_ms() - q > worst)
                worst = chp_mono_ms() - q;
        }
    }
    for (int k; (k = peer_recv(&c, in, sizeof in, 500)) > 0;)
        tally_frame(&c, in, k, &t);
    h_note(h, "%ld NEG frames sent, %ld answered; status took %llu ms at worst", sent, t.neg,
           (unsigned long long)worst);
    assert_true(sent > 1000);
    assert_true(t.neg <= 40);
    h_expect(h, b, "bans", H_EQ, 1);
    assert_true(worst < 2000);
    /* the honest neighbour is served as before */
    h_mkenv(h, "y", 1, H_END);
    h_publish(h, b, "y", 0, NULL);
    h_expect(h, good, "envelopes stored", H_EQ, NSMALL + 1);
    peer_close(&c);
    h_stop(h, good);
    h_stop(h, b);
}

/* ---- finding 5: IWANT amplification ---- */

/* IWANT frames listing one 16 KiB envelope's id 1024 times each: the node
 * sends the envelope once, not 8192 times (512 x the bytes asked with). */
static void test_iwant_answered_once(void **state)
{
    h_ctx *h = *state;
    h_node *b = h_start(h, "b", H_END);
    size_t len;
    uint8_t *e = gen_env("big0", &len), id[32];
    chp_envelope_id(e, len, id);
    peer c;
    client_open(&c, b);
    assert_true(peer_event(&c, ZMQ_EVENT_HANDSHAKE_SUCCEEDED, RECV_MS));
    send_hello(&c, CHP_CAP_NEG);
    {
        uint8_t f[1 + CHP_ENV_MAX_BYTES];
        size_t fl;
        assert_int_equal(chp_wire_push(f, sizeof f, &fl, e, len), CHP_OK);
        peer_send(&c, f, fl);
    }
    barrier(&c, NULL);
    h_expect(h, b, "envelopes stored", H_EQ, 1);

    static uint8_t ids[CHP_WIRE_MAX_IDS * 32], f[3 + CHP_WIRE_MAX_IDS * 32];
    for (int i = 0; i < CHP_WIRE_MAX_IDS; i++)
        memcpy(ids + 32 * i, id, 32);
    size_t fl;
    assert_int_equal(chp_wire_ids(f, sizeof f, &fl, CHP_WIRE_IWANT, ids, CHP_WIRE_MAX_IDS), CHP_OK);
    uint64_t tx0 = (uint64_t)h_status(h, b, "bytes sent");
    tally t = {0};
    for (int i = 0; i < 8; i++)
        peer_send(&c, f, fl);
    barrier(&c, &t);
    uint64_t tx = (uint64_t)h_status(h, b, "bytes sent") - tx0;
    h_note(h, "8 x %zu bytes of IWANT: %ld pushes, %llu bytes sent", fl, t.push,
           (unsigned long long)tx);
    assert_int_equal(t.push, 1);
    assert_true(tx < 2 * len + 4096);
    free(e);
    peer_close(&c);
    h_stop(h, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_expired_not_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_score_decays_ban_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_converges_with_small_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_neg_walk_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iwant_answered_once, setup, teardown),
    };
    if (getenv("CHP_IT_ONLY")) /* one scenario, e.g. CHP_IT_ONLY=test_iwant* */
        cmocka_set_test_filter(getenv("CHP_IT_ONLY"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
