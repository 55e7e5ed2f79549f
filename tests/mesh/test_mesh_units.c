/* test_mesh_units.c - the mesh's pure parts on a chp_mesh calloc'd here
 * and a clock the test turns by hand: misbehaviour scores and bans, the
 * allow-list, the rate buckets, NEG fragment reassembly, the missing,
 * recent and moved tables, the flow window, the walk budget, the passive
 * view (which addresses it takes, which it evicts, how fast PEERS fill
 * it), the link table, the loop's deadline and the connection table (on
 * real loopback TCP sockets). No ZeroMQ, no store, nothing on the network
 * but 127.0.0.1. */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"
#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/id.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/testutil.h"

/* ---- fixture: a mesh with a hand-turned clock ---- */

struct ut {
    chp_mesh *n;
    uint64_t ms, unix_s;
    chp_clock clock;
};

static uint64_t ut_ms(void *ctx)
{
    return ((struct ut *)ctx)->ms;
}

static uint64_t ut_unix(void *ctx)
{
    return ((struct ut *)ctx)->unix_s;
}

static int setup(void **state)
{
    if (chp_crypto_init() != CHP_OK)
        return -1;
    struct ut *u = calloc(1, sizeof *u);
    if (!u)
        return -1;
    u->n = calloc(1, sizeof *u->n);
    if (!u->n) {
        free(u);
        return -1;
    }
    u->ms = 1000000; /* 0 means "never" in several tables */
    u->unix_s = 1700000000;
    u->clock = (chp_clock){.ctx = u, .mono_ms = ut_ms, .unix_s = ut_unix};
    u->n->clock = &u->clock;
    u->n->disc_fd = u->n->disc6_fd = -1;
    u->n->active_max = CHP_MESH_ACTIVE_MAX;
    snprintf(u->n->listen_host, sizeof u->n->listen_host, "0.0.0.0");
    chp_rng_fill(chp_rng_system(), u->n->tsk, 32);
    chp_x25519_base(u->n->tpk, u->n->tsk);
    *state = u;
    return 0;
}

static int teardown(void **state)
{
    struct ut *u = *state;
    chp_link_close_all(u->n);
    chp_view_free(u->n);
    free(u->n->conns);
    free(u->n);
    free(u);
    return 0;
}

static void rand_key(uint8_t k[32])
{
    chp_rng_fill(chp_rng_system(), k, 32);
}

/* "HOST:PORT/chpn1..." of key, canonical. */
static void mkaddr(char *out, size_t cap, const char *host, int ipv6, uint16_t port,
                   const uint8_t key[32])
{
    chp_addr a;
    memset(&a, 0, sizeof a);
    snprintf(a.host, sizeof a.host, "%s", host);
    a.ipv6 = ipv6;
    a.port = port;
    memcpy(a.key, key, 32);
    assert_rc(chp_addr_format(&a, out, cap), CHP_OK);
}

/* ---- scores and bans (admit.c, table.c) ---- */

static void test_score_decay(void **state)
{
    (void)state;
    double s = 0;
    uint64_t ms = 1000;
    assert_true(chp_score_add(&s, &ms, 1.0, 1000) == 1.0);
    /* 0.1 a second is forgiven: 5 s later 0.5 of it is gone */
    double v = chp_score_add(&s, &ms, 1.0, 6000);
    assert_true(v > 1.49 && v < 1.51);
    assert_int_equal(ms, 6000);
    /* never below zero, however long it waited */
    assert_true(chp_score_add(&s, &ms, 0.0, 6000 + 3600 * 1000) == 0.0);
    /* a clock that reads earlier forgives nothing */
    assert_true(chp_score_add(&s, &ms, 2.0, 100) == 2.0);
    assert_int_equal(ms, 100);
}

/* A ban used to cost the banned nothing: a fresh key linked again at
 * once (bench/lab's flood came back with a new key after every ban). Now
 * the second key banned from one address within a day bans the address
 * too, 30 s the first time and four times longer at each repeat; this
 * machine's own addresses (loopback: local tools, transports' proxies)
 * never. */
static void test_ban_address_after_two_keys(void **state)
{
    struct ut *u = *state;
    uint8_t ip[16], other[16], lo[16];
    assert_true(inet_pton(AF_INET6, "::ffff:10.9.8.7", ip) == 1);
    assert_true(inet_pton(AF_INET6, "::ffff:10.9.8.8", other) == 1);
    assert_true(inet_pton(AF_INET6, "::ffff:127.0.0.1", lo) == 1);
    assert_int_equal(chp_admit_ban_ip(u->n, ip, u->ms), 0); /* one key: not yet */
    assert_false(chp_admit_host_banned(u->n, "10.9.8.7", u->ms));
    u->ms += 60000;
    uint64_t ms = chp_admit_ban_ip(u->n, ip, u->ms); /* a second key from there */
    assert_int_equal(ms, 30000);
    assert_true(chp_admit_host_banned(u->n, "10.9.8.7", u->ms));
    assert_true(chp_admit_host_banned(u->n, "::ffff:10.9.8.7", u->ms));
    assert_false(chp_admit_host_banned(u->n, "10.9.8.8", u->ms));
    assert_false(chp_admit_host_banned(u->n, "garbage", u->ms));
    u->ms += ms;
    assert_false(chp_admit_host_banned(u->n, "10.9.8.7", u->ms));
    assert_int_equal(chp_admit_ban_ip(u->n, ip, u->ms), 120000); /* again: longer */
    /* loopback is never banned by address, however many keys */
    for (int i = 0; i < 5; i++)
        assert_int_equal(chp_admit_ban_ip(u->n, lo, u->ms), 0);
    assert_false(chp_admit_host_banned(u->n, "127.0.0.1", u->ms));
    assert_false(chp_admit_host_banned(u->n, "::1", u->ms));
    /* a day later the address's record is forgotten */
    u->ms += 24u * 3600u * 1000u + 1;
    assert_int_equal(chp_admit_ban_ip(u->n, ip, u->ms), 0);
    assert_int_equal(chp_admit_ban_ip(u->n, other, u->ms), 0);
}

/* A source (address) whose link pushed posts we refused keeps its next
 * links out of the push tree for 10 minutes, whatever key they use; the
 * sync sessions one source opens come 4 at once, then one per 15 s. */
static void test_source_memory(void **state)
{
    struct ut *u = *state;
    uint8_t ip[16], other[16];
    assert_true(inet_pton(AF_INET6, "::ffff:10.9.8.7", ip) == 1);
    assert_true(inet_pton(AF_INET6, "::ffff:10.9.8.8", other) == 1);
    u->ms += 1000;
    assert_false(chp_source_pruned(u->n, ip, u->ms));
    chp_source_refused(u->n, ip, u->ms);
    assert_true(chp_source_pruned(u->n, ip, u->ms));
    assert_false(chp_source_pruned(u->n, other, u->ms));
    u->ms += CHP_SOURCE_PRUNED_MS - 1;
    assert_true(chp_source_pruned(u->n, ip, u->ms));
    u->ms += 1;
    assert_false(chp_source_pruned(u->n, ip, u->ms));
    for (int i = 0; i < 4; i++)
        assert_true(chp_source_take_session(u->n, ip, u->ms));
    assert_false(chp_source_take_session(u->n, ip, u->ms));
    assert_true(chp_source_take_session(u->n, other, u->ms)); /* its own bucket */
    u->ms += 14999;
    assert_false(chp_source_take_session(u->n, ip, u->ms));
    u->ms += 1;
    assert_true(chp_source_take_session(u->n, ip, u->ms));
    assert_false(chp_source_take_session(u->n, ip, u->ms));
    /* a table full of other sources forgets the least recently used */
    for (uint8_t i = 0; i < CHP_MESH_SOURCES_MAX; i++) {
        uint8_t x[16] = {0xfd, i};
        u->ms += 1;
        chp_source_refused(u->n, x, u->ms);
    }
    assert_true(chp_source_take_session(u->n, ip, u->ms)); /* a new record: a full bucket */
    uint8_t last[16] = {0xfd, CHP_MESH_SOURCES_MAX - 1};
    assert_true(chp_source_pruned(u->n, last, u->ms));
}

static void test_misbehave_bans_at_threshold(void **state)
{
    struct ut *u = *state;
    uint8_t k[32];
    char addr[CHP_ADDR_STR_MAX + 1];
    rand_key(k);
    mkaddr(addr, sizeof addr, "10.1.2.3", 0, 7667, k);
    struct chp_link *l = chp_link_create(u->n, k);
    assert_non_null(l);
    snprintf(l->addr, sizeof l->addr, "%s", addr);
    /* 9.9 points at once: not yet */
    chp_link_misbehave(u->n, l, 9.9, "test");
    assert_true(l->used);
    assert_false(chp_admit_banned(u->n, k, u->ms));
    /* ten seconds later a point has been forgiven: 9.9 - 1.0 + 1.0 < 10 */
    u->ms += 10000;
    chp_link_misbehave(u->n, l, 1.0, "test");
    assert_true(l->used);
    /* the threshold (CHP_BAN_SCORE) reached: banned and dropped */
    chp_link_misbehave(u->n, l, 0.2, "test");
    assert_false(l->used);
    assert_true(chp_admit_banned(u->n, k, u->ms));
    assert_int_equal(u->n->ctr.bans, 1);
    assert_null(chp_link_find(u->n, k));
    /* a neighbour the user gave by address is remembered for the redial */
    int found = 0;
    for (size_t i = 0; i < CHP_MESH_BANS_MAX; i++)
        if (!memcmp(u->n->bans[i].key, k, 32)) {
            assert_string_equal(u->n->bans[i].addr, addr);
            found = 1;
        }
    assert_true(found);

    /* one found by its beacon is not dialled again */
    uint8_t k2[32];
    rand_key(k2);
    l = chp_link_create(u->n, k2);
    snprintf(l->addr, sizeof l->addr, "%s", addr);
    l->discovered = 1;
    chp_link_ban(u->n, l, "test");
    for (size_t i = 0; i < CHP_MESH_BANS_MAX; i++)
        if (!memcmp(u->n->bans[i].key, k2, 32))
            assert_string_equal(u->n->bans[i].addr, "");
}

static void test_ban_escalation(void **state)
{
    struct ut *u = *state;
    uint8_t k[32], other[32];
    rand_key(k);
    rand_key(other);
    uint64_t t = 5000000;
    static const uint64_t want[] = {30000, 120000, 480000, 1920000, 3600000, 3600000};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        uint64_t ms = chp_admit_ban(u->n, k, NULL, t);
        assert_int_equal(ms, want[i]);
        assert_true(chp_admit_banned(u->n, k, t));
        assert_true(chp_admit_banned(u->n, k, t + ms - 1));
        assert_false(chp_admit_banned(u->n, k, t + ms)); /* over when it ends */
        assert_false(chp_admit_banned(u->n, other, t));
        t += ms + 1000;
    }
    assert_int_equal(u->n->ctr.bans, 6);
    /* strikes are forgotten a day after the last ban: 30 s again, and
     * the count starts over from there */
    t += 24ull * 3600 * 1000;
    assert_int_equal(chp_admit_ban(u->n, k, "", t), 30000);
    assert_int_equal(chp_admit_ban(u->n, k, "", t + 31000), 120000);
}

static void test_ban_table_full(void **state)
{
    struct ut *u = *state;
    static uint8_t keys[CHP_MESH_BANS_MAX + 2][32];
    uint64_t t = 1000000;
    for (size_t i = 0; i < CHP_MESH_BANS_MAX; i++) {
        rand_key(keys[i]);
        (void)chp_admit_ban(u->n, keys[i], NULL, t + i);
    }
    /* every slot holds a live ban: a newcomer takes the first */
    rand_key(keys[CHP_MESH_BANS_MAX]);
    (void)chp_admit_ban(u->n, keys[CHP_MESH_BANS_MAX], NULL, t + 1000);
    assert_true(chp_admit_banned(u->n, keys[CHP_MESH_BANS_MAX], t + 1000));
    assert_false(chp_admit_banned(u->n, keys[0], t + 1000));
    assert_true(chp_admit_banned(u->n, keys[1], t + 1000));
    /* once they ended, the one banned longest ago makes room (slot 1 now,
     * keys[1]), and the others stay on record */
    uint64_t later = t + 40000;
    rand_key(keys[CHP_MESH_BANS_MAX + 1]);
    (void)chp_admit_ban(u->n, keys[CHP_MESH_BANS_MAX + 1], NULL, later);
    assert_true(chp_admit_banned(u->n, keys[CHP_MESH_BANS_MAX + 1], later));
    size_t k1 = 0, k2 = 0;
    for (size_t i = 0; i < CHP_MESH_BANS_MAX; i++) {
        k1 += !memcmp(u->n->bans[i].key, keys[1], 32);
        k2 += !memcmp(u->n->bans[i].key, keys[2], 32);
    }
    assert_int_equal(k1, 0);
    assert_int_equal(k2, 1);
}

static void test_admit_allowed(void **state)
{
    struct ut *u = *state;
    uint8_t a[32], b[32], c[32];
    rand_key(a);
    rand_key(b);
    rand_key(c);
    assert_true(chp_admit_allowed(u->n, a)); /* no list: anyone */
    memcpy(u->n->allow[0], a, 32);
    memcpy(u->n->allow[1], b, 32);
    u->n->nallow = 2;
    assert_true(chp_admit_allowed(u->n, a));
    assert_true(chp_admit_allowed(u->n, b));
    assert_false(chp_admit_allowed(u->n, c));
}

/* ---- rate buckets ---- */

static void test_rate_env(void **state)
{
    (void)state;
    struct chp_link l;
    memset(&l, 0, sizeof l);
    chp_rate_init(&l, 1000);
    /* a burst of 10000 envelopes, then nothing */
    for (int i = 0; i < 10000; i++)
        assert_true(chp_rate_take_env(&l, 1000));
    assert_false(chp_rate_take_env(&l, 1000));
    /* 5000 a second: 1 ms later five more */
    for (int i = 0; i < 5; i++)
        assert_true(chp_rate_take_env(&l, 1001));
    assert_false(chp_rate_take_env(&l, 1001));
    /* an hour later the bucket holds the burst, not more */
    uint64_t t = 1001 + 3600 * 1000;
    for (int i = 0; i < 10000; i++)
        assert_true(chp_rate_take_env(&l, t));
    assert_false(chp_rate_take_env(&l, t));
}

static void test_rate_bytes(void **state)
{
    (void)state;
    struct chp_link l;
    memset(&l, 0, sizeof l);
    chp_rate_init(&l, 0);
    const size_t burst = 32u << 20, per_ms = (16u << 20) / 1000; /* 16777 (and a fraction) */
    assert_true(chp_rate_take_bytes(&l, 0, burst));
    assert_false(chp_rate_take_bytes(&l, 0, 1));
    assert_true(chp_rate_take_bytes(&l, 1, per_ms));
    assert_false(chp_rate_take_bytes(&l, 1, 1)); /* the fraction is not a byte */
    /* refills to the burst, never above it */
    assert_false(chp_rate_take_bytes(&l, 10000000, burst + 1));
    assert_true(chp_rate_take_bytes(&l, 10000000, burst));
}

/* ---- NEG fragments (sync.c) ---- */

static chp_wire_msg neg_msg(uint32_t session, int initiator, int more, const uint8_t *p, size_t len)
{
    chp_wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = CHP_WIRE_NEG;
    m.u.neg.session = session;
    m.u.neg.initiator = (uint8_t)initiator;
    m.u.neg.more = (uint8_t)more;
    m.u.neg.msg = p;
    m.u.neg.len = len;
    return m;
}

static void test_neg_single_and_fragments(void **state)
{
    (void)state;
    struct chp_link l;
    memset(&l, 0, sizeof l);
    l.caps = CHP_CAP_NEG | CHP_CAP_NEG_FRAG;
    uint8_t a[100], b[50];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    const uint8_t *msg;
    size_t len;
    /* a whole message in one frame: the frame itself, no copy */
    chp_wire_msg m = neg_msg(7, 1, 0, a, sizeof a);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 1);
    assert_ptr_equal(msg, a);
    assert_int_equal(len, sizeof a);
    /* two fragments: nothing until the last, then both in order */
    m = neg_msg(8, 1, 1, a, sizeof a);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 0);
    /* the other direction is collected apart and does not disturb it */
    chp_wire_msg o = neg_msg(3, 0, 0, b, 10);
    assert_int_equal(chp_neg_assemble(&l, &o, &msg, &len), 1);
    assert_ptr_equal(msg, b);
    m = neg_msg(8, 1, 0, b, sizeof b);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 1);
    assert_int_equal(len, sizeof a + sizeof b);
    assert_memory_equal(msg, a, sizeof a);
    assert_memory_equal(msg + sizeof a, b, sizeof b);
    /* the buffer starts over: the next single frame is itself again */
    m = neg_msg(9, 1, 0, b, 5);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 1);
    assert_ptr_equal(msg, b);
    chp_link_drop(&l);
}

static void test_neg_session_change(void **state)
{
    (void)state;
    struct chp_link l;
    memset(&l, 0, sizeof l);
    l.caps = CHP_CAP_NEG_FRAG;
    uint8_t a[64], b[32], c[16];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    memset(c, 'c', sizeof c);
    const uint8_t *msg;
    size_t len;
    chp_wire_msg m = neg_msg(1, 0, 1, a, sizeof a);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 0);
    /* another session: the abandoned part is dropped */
    m = neg_msg(2, 0, 1, b, sizeof b);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 0);
    m = neg_msg(2, 0, 0, c, sizeof c);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 1);
    assert_int_equal(len, sizeof b + sizeof c);
    assert_memory_equal(msg, b, sizeof b);
    assert_memory_equal(msg + sizeof b, c, sizeof c);
    /* a single frame of a new session after a partial one: the partial
     * goes, the frame is whole */
    m = neg_msg(3, 0, 1, a, sizeof a);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 0);
    m = neg_msg(4, 0, 0, c, sizeof c);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 1);
    assert_ptr_equal(msg, c);
    assert_int_equal(len, sizeof c);
    chp_link_drop(&l);
}

static void test_neg_too_large(void **state)
{
    (void)state;
    struct chp_link l;
    memset(&l, 0, sizeof l);
    l.caps = CHP_CAP_NEG_FRAG;
    uint8_t *frag = calloc(1, CHP_NEG_FRAG_MAX);
    assert_non_null(frag);
    const uint8_t *msg;
    size_t len, total = 0;
    int rc = 0;
    while (rc == 0) {
        chp_wire_msg m = neg_msg(5, 1, 1, frag, CHP_NEG_FRAG_MAX);
        rc = chp_neg_assemble(&l, &m, &msg, &len);
        total += CHP_NEG_FRAG_MAX;
        assert_true(total <= CHP_NEG_MSG_MAX + CHP_NEG_FRAG_MAX);
    }
    /* refused at the fragment that would pass CHP_NEG_MSG_MAX, and the
     * partial message freed */
    assert_int_equal(rc, -1);
    assert_true(total > CHP_NEG_MSG_MAX);
    assert_null(l.neg_rx[1].p);
    assert_int_equal(l.neg_rx[1].len, 0);
    /* exactly CHP_NEG_MSG_MAX is still whole */
    size_t left = CHP_NEG_MSG_MAX;
    while (left > CHP_NEG_FRAG_MAX) {
        chp_wire_msg m = neg_msg(6, 1, 1, frag, CHP_NEG_FRAG_MAX);
        assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 0);
        left -= CHP_NEG_FRAG_MAX;
    }
    chp_wire_msg m = neg_msg(6, 1, 0, frag, left);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 1);
    assert_int_equal(len, CHP_NEG_MSG_MAX);
    free(frag);
    chp_link_drop(&l);
}

static void test_neg_no_frag_cap(void **state)
{
    (void)state;
    struct chp_link l;
    memset(&l, 0, sizeof l);
    l.caps = CHP_CAP_NEG; /* never said it sends fragments */
    uint8_t a[10] = {0};
    const uint8_t *msg;
    size_t len;
    chp_wire_msg m = neg_msg(1, 1, 0, a, sizeof a);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), 1);
    m = neg_msg(1, 1, 1, a, sizeof a);
    assert_int_equal(chp_neg_assemble(&l, &m, &msg, &len), -1);
    assert_null(l.neg_rx[1].p);
    chp_link_drop(&l);
}

/* ---- missing, recent, moved (gossip.c, send.c) ---- */

static void test_missing_table(void **state)
{
    struct ut *u = *state;
    uint8_t id[32];
    rand_key(id);
    chp_missing_forget(u->n, id); /* an empty table: nothing happens */
    chp_missing_note(u->n, id, 7, 5000);
    assert_int_equal(u->n->nmissing, 1);
    chp_missing_note(u->n, id, 9, 6000); /* already waiting: kept as it was */
    assert_int_equal(u->n->nmissing, 1);
    int seen = 0;
    for (size_t i = 0; i < CHP_MESH_MISSING_MAX; i++)
        if (u->n->missing[i].due_ms) {
            assert_memory_equal(u->n->missing[i].id, id, 32);
            assert_int_equal(u->n->missing[i].link, 7);
            assert_int_equal(u->n->missing[i].due_ms, 5000 + 500); /* GRAFT after 500 ms */
            seen++;
        }
    assert_int_equal(seen, 1);
    /* the loop wakes when it is due */
    assert_int_equal(chp_recv_deadline(u->n, 5000, 9000), 500);
    chp_missing_forget(u->n, id);
    assert_int_equal(u->n->nmissing, 0);
    /* a full table takes no more (the periodic sync fetches those) */
    for (size_t i = 0; i < CHP_MESH_MISSING_MAX; i++) {
        uint8_t x[32] = {0};
        memcpy(x, &i, sizeof i);
        x[31] = 1;
        chp_missing_note(u->n, x, 1, 100);
    }
    assert_int_equal(u->n->nmissing, CHP_MESH_MISSING_MAX);
    chp_missing_note(u->n, id, 1, 100);
    assert_int_equal(u->n->nmissing, CHP_MESH_MISSING_MAX);
    for (size_t i = 0; i < CHP_MESH_MISSING_MAX; i++)
        assert_memory_not_equal(u->n->missing[i].id, id, 32);
}

static void test_recent_ring(void **state)
{
    struct ut *u = *state;
    uint8_t id[32], other[32];
    rand_key(id);
    rand_key(other);
    assert_int_equal(chp_recent_age(u->n, id, 100), UINT64_MAX);
    chp_recent_add(u->n, id, 100);
    assert_int_equal(chp_recent_age(u->n, id, 350), 250);
    assert_int_equal(chp_recent_age(u->n, other, 350), UINT64_MAX);
    /* CHP_MESH_RECENT_MAX - 1 more ids: still there; one more: overwritten */
    for (size_t i = 0; i < CHP_MESH_RECENT_MAX - 1; i++) {
        uint8_t x[32] = {0xee};
        memcpy(x + 1, &i, sizeof i);
        chp_recent_add(u->n, x, 200);
    }
    assert_int_equal(chp_recent_age(u->n, id, 400), 300);
    chp_recent_add(u->n, other, 300);
    assert_int_equal(chp_recent_age(u->n, id, 400), UINT64_MAX);
    assert_int_equal(chp_recent_age(u->n, other, 400), 100);
    assert_int_equal(u->n->recent_next, 1);
}

static void test_moved_expiry(void **state)
{
    (void)state;
    struct chp_link l;
    memset(&l, 0, sizeof l);
    uint8_t id[32], other[32];
    rand_key(id);
    rand_key(other);
    assert_false(chp_moved_lately(&l, id, 5000)); /* no table yet */
    chp_moved_add(&l, id, 5000);
    assert_non_null(l.moved);
    assert_true(chp_moved_lately(&l, id, 5000));
    assert_false(chp_moved_lately(&l, other, 5000));
    /* MOVED_S = 600 s, counted in whole seconds of the clock */
    assert_true(chp_moved_lately(&l, id, 5000 + 599 * 1000));
    assert_false(chp_moved_lately(&l, id, 5000 + 600 * 1000));
    /* a connection that closed forgets them */
    chp_link_reset(&l);
    assert_null(l.moved);
    assert_false(chp_moved_lately(&l, id, 5000));
}

static void test_moved_set_eviction(void **state)
{
    (void)state;
    struct chp_link l;
    memset(&l, 0, sizeof l);
    /* 17 ids whose first 8 bytes share the upper word: one set of 16 ways */
    uint8_t ids[17][32];
    memset(ids, 0, sizeof ids);
    for (int i = 0; i < 17; i++) {
        uint64_t w = (uint64_t)(i + 1); /* upper 32 bits 0: set 0 */
        memcpy(ids[i], &w, 8);
        ids[i][31] = (uint8_t)i;
    }
    for (int i = 0; i < 16; i++)
        chp_moved_add(&l, ids[i], 1000 + 1000 * (uint64_t)i);
    /* moving one again refreshes its entry instead of taking another */
    chp_moved_add(&l, ids[0], 20000);
    for (int i = 0; i < 16; i++)
        assert_true(chp_moved_lately(&l, ids[i], 20000));
    /* the seventeenth evicts the oldest entry of the set: ids[1] now */
    chp_moved_add(&l, ids[16], 21000);
    assert_true(chp_moved_lately(&l, ids[16], 21000));
    assert_false(chp_moved_lately(&l, ids[1], 21000));
    assert_true(chp_moved_lately(&l, ids[0], 21000));
    assert_true(chp_moved_lately(&l, ids[2], 21000));
    chp_link_drop(&l);
}

/* ---- flow window, walk budget ---- */

static void test_flow_window(void **state)
{
    struct ut *u = *state;
    const uint64_t tag = 1ull << 63, window = 768u << 10;
    uint8_t k[32];
    rand_key(k);
    struct chp_link *l = chp_link_create(u->n, k);
    assert_true(chp_flow_open(l));
    /* bytes sent: a PING would go out every 192 KiB (the link has no
     * socket here, so it is not marked sent) */
    chp_flow_sent(u->n, l, window - 1);
    assert_int_equal(l->flow_tx, window - 1);
    assert_int_equal(l->flow_pinged, 0);
    assert_true(chp_flow_open(l));
    chp_flow_sent(u->n, l, 1);
    assert_false(chp_flow_open(l)); /* a window outstanding */
    /* PONGs: only a flow PING's answer counts, and only forward */
    chp_flow_pong(u->n, l, 4096); /* an ordinary PING's nonce */
    assert_int_equal(l->flow_acked, 0);
    chp_flow_pong(u->n, l, tag | (window + 1)); /* more than was sent */
    assert_int_equal(l->flow_acked, 0);
    chp_flow_pong(u->n, l, tag | 1000);
    assert_int_equal(l->flow_acked, 1000);
    assert_true(chp_flow_open(l));
    chp_flow_pong(u->n, l, tag | 500); /* older */
    assert_int_equal(l->flow_acked, 1000);
    /* a push that does not fit the window is owed, not dropped, and so is
     * every one after it while anything is owed */
    uint8_t env[256] = {1};
    chp_flow_sent(u->n, l, window);
    assert_false(chp_flow_open(l));
    assert_null(l->owed);
    assert_rc(chp_link_send_push(u->n, l, env, sizeof env), CHP_OK);
    assert_non_null(l->owed);
    assert_int_equal(l->tx_env, 0); /* nothing went out */
    /* a closed connection starts over, owing nothing */
    chp_link_reset(l);
    assert_int_equal(l->flow_tx, 0);
    assert_int_equal(l->flow_acked, 0);
    assert_null(l->owed);
    assert_true(chp_flow_open(l));
    chp_link_drop(l);
}

static void test_walk_refill(void **state)
{
    (void)state;
    struct chp_link l;
    memset(&l, 0, sizeof l);
    /* a small store: WALK_MIN 8192 items/s, burst 32/4 of that */
    chp_walk_refill(&l, 10, 1000);
    assert_true(l.walk_tokens == 65536.0);
    assert_int_equal(l.walk_ms, 1000);
    l.walk_tokens = -100.0; /* overspent by a message */
    chp_walk_refill(&l, 10, 2000);
    assert_true(l.walk_tokens == 8092.0);
    chp_walk_refill(&l, 10, 2000); /* no time passed: nothing */
    assert_true(l.walk_tokens == 8092.0);
    chp_walk_refill(&l, 10, 1500); /* a clock that reads earlier: nothing */
    assert_true(l.walk_tokens == 8092.0);
    assert_int_equal(l.walk_ms, 1500);
    chp_walk_refill(&l, 10, 1000000); /* capped at the burst */
    assert_true(l.walk_tokens == 65536.0);
    /* a large store: 4 items per stored envelope a second */
    l.walk_tokens = 0;
    chp_walk_refill(&l, 100000, 1000500);
    assert_true(l.walk_tokens == 200000.0);
    chp_walk_refill(&l, 100000, 9000000);
    assert_true(l.walk_tokens == 3200000.0);
}

/* ---- the passive view ---- */

/* Two live links that share nothing (not relays, not discovered): the
 * view then never dials, and its shuffle sends nothing. */
static void view_two_live_links(struct ut *u)
{
    for (int i = 0; i < 2; i++) {
        uint8_t k[32];
        rand_key(k);
        struct chp_link *l = chp_link_create(u->n, k);
        l->hello_rx = 1;
        l->dealer_up = 1;
    }
    assert_int_equal(chp_link_connected(u->n), 2);
}

static int heard(struct ut *u, const char *host, int ipv6, const uint8_t key[32])
{
    char a[CHP_ADDR_STR_MAX + 1];
    size_t before = chp_view_size(u->n);
    mkaddr(a, sizeof a, host, ipv6, 7667, key);
    chp_view_heard(u->n, a, strlen(a));
    return chp_view_size(u->n) > before;
}

static void test_view_dialable(void **state)
{
    struct ut *u = *state;
    uint8_t k[32];
    static const struct {
        const char *host;
        int ipv6, ok;
    } cases[] = {
        {"10.0.0.5", 0, 1},
        {"192.0.2.1", 0, 1},
        {"127.0.0.1", 0, 0},
        {"0.0.0.0", 0, 0},
        {"0.1.2.3", 0, 0},
        {"224.0.0.1", 0, 0},
        {"239.255.255.250", 0, 0},
        {"255.255.255.255", 0, 0},
        {"2001:db8::1", 1, 1},
        {"::1", 1, 0},
        {"::", 1, 0},
        {"ff02::1", 1, 0},
        {"::ffff:10.0.0.1", 1, 1},
        {"::ffff:224.0.0.1", 1, 0},
        {"::ffff:127.0.0.1", 1, 0},
        {"::ffff:0.0.0.1", 1, 0},
        {"fe80::1%eth0", 1, 1},
        {"2001:db8::1%eth0", 1, 0},
        {"node.example.org", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rand_key(k);
        if (heard(u, cases[i].host, cases[i].ipv6, k) != cases[i].ok)
            fail_msg("%s: expected %s", cases[i].host, cases[i].ok ? "taken" : "refused");
    }
    /* loopback is fine when this node itself listens on loopback */
    snprintf(u->n->listen_host, sizeof u->n->listen_host, "127.0.0.1");
    rand_key(k);
    assert_true(heard(u, "127.0.0.1", 0, k));
    rand_key(k);
    assert_true(heard(u, "::1", 1, k));
    rand_key(k);
    assert_true(heard(u, "::ffff:127.0.0.1", 1, k));
    snprintf(u->n->listen_host, sizeof u->n->listen_host, "::1");
    rand_key(k);
    assert_true(heard(u, "127.0.0.2", 0, k));
}

static void test_view_refusals(void **state)
{
    struct ut *u = *state;
    uint8_t k[32];
    /* this node's own key */
    assert_false(heard(u, "10.0.0.1", 0, u->n->tpk));
    /* a neighbour it has a link with already */
    rand_key(k);
    assert_non_null(chp_link_create(u->n, k));
    assert_false(heard(u, "10.0.0.2", 0, k));
    /* a banned key, until its ban ends */
    rand_key(k);
    uint64_t ms = chp_admit_ban(u->n, k, NULL, u->ms);
    assert_false(heard(u, "10.0.0.3", 0, k));
    u->ms += ms;
    assert_true(heard(u, "10.0.0.3", 0, k));
    /* the same key again: its newer address replaces the entry */
    assert_false(heard(u, "10.0.0.4", 0, k));
    assert_int_equal(chp_view_size(u->n), 1);
    /* a friends-only node takes only friends */
    uint8_t friend[32];
    rand_key(friend);
    memcpy(u->n->allow[0], friend, 32);
    u->n->nallow = 1;
    rand_key(k);
    assert_false(heard(u, "10.0.0.5", 0, k));
    assert_true(heard(u, "10.0.0.6", 0, friend));
    /* bytes that are no address */
    chp_view_heard(u->n, "garbage", 7);
    assert_int_equal(chp_view_size(u->n), 2);
}

static void test_view_lru(void **state)
{
    struct ut *u = *state;
    view_two_live_links(u);
    uint8_t k[32];
    char host[32];
    const uint64_t t0 = u->ms;
    /* 32 addresses (the view's size); the 11th is heard first */
    for (int i = 0; i < 32; i++) {
        u->ms = i == 10 ? t0 : t0 + 300000;
        snprintf(host, sizeof host, "10.0.1.%d", i + 1);
        rand_key(k);
        assert_true(heard(u, host, 0, k));
    }
    assert_int_equal(chp_view_size(u->n), 32);
    /* full: a newcomer replaces the one heard of longest ago */
    rand_key(k);
    heard(u, "10.0.2.1", 0, k);
    assert_int_equal(chp_view_size(u->n), 32);
    /* the 11th was the one that went: when it would have expired (10
     * minutes unheard) nothing expires */
    chp_view_periodic(u->n, t0 + 600001);
    assert_int_equal(chp_view_size(u->n), 32);
    /* and the rest expire 10 minutes after they were heard */
    chp_view_periodic(u->n, t0 + 300000 + 600001);
    assert_int_equal(chp_view_size(u->n), 0);
    assert_int_equal(chp_link_connected(u->n), 2); /* nothing was dialled */
}

/* A PEERS message of n addresses, decoded (borrows buf). */
static chp_wire_msg peers_msg(uint8_t *buf, size_t cap, char (*addrs)[CHP_ADDR_STR_MAX + 1],
                              uint8_t n)
{
    const char *p[CHP_WIRE_MAX_PEERS];
    size_t len;
    chp_wire_msg m;
    for (uint8_t i = 0; i < n; i++)
        p[i] = addrs[i];
    assert_rc(chp_wire_peers(buf, cap, &len, p, n), CHP_OK);
    assert_rc(chp_wire_decode(buf, len, &m), CHP_OK);
    return m;
}

static void test_view_peers_rate(void **state)
{
    struct ut *u = *state;
    static char addrs[8][CHP_ADDR_STR_MAX + 1];
    static uint8_t f[2 + 8 * (1 + CHP_WIRE_MAX_ADDR)];
    uint8_t k[32];
    /* 32 entries (the burst) that are refused still count against it */
    for (int i = 0; i < 8; i++) {
        rand_key(k);
        mkaddr(addrs[i], sizeof addrs[i], "peer.example.org", 0, 7667, k);
    }
    chp_wire_msg m = peers_msg(f, sizeof f, addrs, 8);
    for (int r = 0; r < 4; r++)
        chp_view_on_peers(u->n, &m);
    assert_int_equal(chp_view_size(u->n), 0);
    /* so eight good ones at once get nowhere */
    for (int i = 0; i < 8; i++) {
        rand_key(k);
        char host[32];
        snprintf(host, sizeof host, "10.0.3.%d", i + 1);
        mkaddr(addrs[i], sizeof addrs[i], host, 0, 7667, k);
    }
    m = peers_msg(f, sizeof f, addrs, 8);
    chp_view_on_peers(u->n, &m);
    assert_int_equal(chp_view_size(u->n), 0);
    /* one a second comes back */
    u->ms += 3000;
    chp_view_on_peers(u->n, &m);
    assert_int_equal(chp_view_size(u->n), 3);
    /* after a long quiet the burst is back, but no more than it */
    u->ms += 3600 * 1000;
    chp_view_on_peers(u->n, &m);
    assert_int_equal(chp_view_size(u->n), 8);
}

/* One machine with many keys (a sybil on the LAN, bench/lab's `sybil`):
 * its PEERS and beacons name dozens of listeners on one address. They
 * used to take the whole passive view, so a node whose links died dialled
 * only them; now one address holds at most two entries, its own oldest
 * making room, and the entries of other machines stay. */
static void test_view_per_host(void **state)
{
    struct ut *u = *state;
    uint8_t k[32];
    char a[CHP_ADDR_STR_MAX + 1], host[32];
    for (int i = 0; i < 3; i++) { /* three honest machines heard first */
        snprintf(host, sizeof host, "10.0.4.%d", i + 1);
        rand_key(k);
        assert_true(heard(u, host, 0, k));
    }
    for (int i = 0; i < 64; i++) {
        u->ms += 10;
        rand_key(k);
        mkaddr(a, sizeof a, "10.0.4.99", 0, (uint16_t)(21000 + i), k);
        chp_view_heard(u->n, a, strlen(a));
    }
    assert_int_equal(chp_view_size(u->n), 3 + 2);
    /* the newest of that machine is one of the two kept */
    assert_false(heard(u, "10.0.4.99", 0, k));
    assert_int_equal(chp_view_size(u->n), 3 + 2);
    /* and another machine still gets in */
    rand_key(k);
    assert_true(heard(u, "10.0.4.4", 0, k));
    assert_int_equal(chp_view_size(u->n), 6);
}

/* ---- the link table ---- */

static void test_link_table(void **state)
{
    struct ut *u = *state;
    static uint8_t keys[CHP_MESH_LINKS_MAX + 1][32];
    char ks[CHP_KEY_NAME_MAX], want[CHP_KEY_NAME_MAX];
    uint8_t k[32] = {0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xff};
    chp_key_name(k, ks); /* as `peer list` names it */
    chp_b32key_encode(CHP_NODEKEY_HRP, k, want);
    assert_string_equal(ks, want);
    assert_memory_equal(ks, "chpn1", 5);
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        rand_key(keys[i]);
        struct chp_link *l = chp_link_create(u->n, keys[i]);
        assert_non_null(l);
        assert_int_equal(l->id, i + 1);
        assert_int_equal(l->router_fd, -1);
        l->router_seen = 1; /* not lingering */
        l->last_rx_ms = 1000 + i;
    }
    assert_true(chp_link_known(u->n, keys[5]));
    rand_key(keys[CHP_MESH_LINKS_MAX]);
    /* every slot holds a link that may still speak: no room */
    assert_null(chp_link_create(u->n, keys[CHP_MESH_LINKS_MAX]));
    /* two lingering ones: the longest silent goes */
    chp_link_find(u->n, keys[7])->router_seen = 0;
    chp_link_find(u->n, keys[3])->router_seen = 0;
    assert_true(chp_link_lingering(chp_link_find(u->n, keys[3])));
    struct chp_link *l = chp_link_create(u->n, keys[CHP_MESH_LINKS_MAX]);
    assert_non_null(l);
    assert_false(chp_link_known(u->n, keys[3]));
    assert_true(chp_link_known(u->n, keys[7]));
    assert_int_equal(l->id, CHP_MESH_LINKS_MAX + 1);
    /* marks */
    chp_link_mark_promoted(u->n, keys[8], 4242);
    chp_link_mark_discovered(u->n, keys[9]);
    assert_true(chp_link_find(u->n, keys[8])->promoted);
    assert_int_equal(chp_link_find(u->n, keys[8])->promoted_ms, 4242);
    assert_true(chp_link_find(u->n, keys[9])->discovered);
    chp_link_mark_promoted(u->n, keys[3], 1); /* not there: nothing */
    chp_link_mark_discovered(u->n, keys[3]);
    /* up = HELLO and a connection */
    assert_false(chp_link_up(l));
    l->hello_rx = 1;
    assert_false(chp_link_up(l));
    l->dealer_up = 1;
    assert_true(chp_link_up(l));
    assert_int_equal(chp_link_connected(u->n), 1);
    /* the words `peer list` shows */
    assert_string_equal(chp_link_fail_state(CHP_LINK_OK), "connecting");
    assert_string_equal(chp_link_fail_state(CHP_LINK_UNREACHABLE), "unreachable");
    assert_string_equal(chp_link_fail_state(CHP_LINK_HANDSHAKE), "handshake-failed");
    assert_string_equal(chp_link_fail_state(CHP_LINK_REFUSED), "refused");
    assert_string_equal(chp_link_fail_reason(CHP_LINK_OK), "-");
    assert_non_null(strstr(chp_link_fail_reason(CHP_LINK_UNREACHABLE), "no answer"));
    assert_non_null(strstr(chp_link_fail_reason(CHP_LINK_HANDSHAKE), "CURVE"));
    assert_non_null(strstr(chp_link_fail_reason(CHP_LINK_REFUSED), "refused"));
    chp_link_close_all(u->n);
    assert_int_equal(chp_link_connected(u->n), 0);
    assert_null(chp_link_find(u->n, keys[7]));
}

static void test_lan_links(void **state)
{
    struct ut *u = *state;
    int sock_a, sock_b; /* stand-ins for two listeners' sockets */
    uint8_t k1[32], k2[32], k3[32];
    rand_key(k1);
    rand_key(k2);
    rand_key(k3);
    struct chp_link *l1 = chp_link_create(u->n, k1); /* dialled as LAN gen 1 */
    struct chp_link *l2 = chp_link_create(u->n, k2); /* reached us on gen 1's socket */
    struct chp_link *l3 = chp_link_create(u->n, k3); /* elsewhere */
    l1->lan_gen = 1;
    l2->router_seen = 1;
    l2->rsock = &sock_a;
    l2->router_fd = 9;
    l3->router_seen = 1;
    l3->rsock = &sock_b;
    assert_true(chp_link_lan_used(u->n, &sock_a, 1));
    assert_true(chp_link_lan_used(u->n, &sock_b, 5));
    assert_false(chp_link_lan_used(u->n, &l3, 2));
    /* the listener of gen 1 closes: its own links go, the others lose
     * that connection only */
    chp_link_lan_closed(u->n, &sock_a, 1);
    assert_false(l1->used);
    assert_true(l2->used);
    assert_false(l2->router_seen);
    assert_null(l2->rsock);
    assert_int_equal(l2->router_fd, -1);
    assert_true(l3->router_seen);
    assert_false(chp_link_lan_used(u->n, &sock_a, 1));
    /* no LAN listener is open */
    assert_null(chp_mesh_lan_of(u->n, 1));
    assert_null(chp_mesh_lan_of(u->n, 0));
    u->n->lan[1].router = &sock_b;
    u->n->lan[1].gen = 4;
    assert_ptr_equal(chp_mesh_lan_of(u->n, 4), &u->n->lan[1]);
    u->n->lan[1].router = NULL;
}

/* ---- the loop's deadline (recv.c) ---- */

static void test_recv_deadline(void **state)
{
    struct ut *u = *state;
    const uint64_t t = 50000;
    assert_int_equal(chp_recv_deadline(u->n, t, t + 5000), 1000); /* a second at most */
    assert_int_equal(chp_recv_deadline(u->n, t, t + 300), 300);
    assert_int_equal(chp_recv_deadline(u->n, t, t), 0);
    uint8_t k[32];
    rand_key(k);
    struct chp_link *l = chp_link_create(u->n, k);
    /* A dialled link that is up but never said HELLO (bench/lab's sybil
     * completes the handshake and answers nothing) has no sync scheduled:
     * its next_sync_ms of 0 made the loop poll with no timeout, and the
     * node spun at 15-45% of a core while such a link lived. */
    l->dealer_up = 1;
    assert_int_equal(chp_recv_deadline(u->n, t, t + 300), 300);
    l->dealer_up = 0;
    l->next_sync_ms = t + 200; /* only a dialled, up link syncs */
    assert_int_equal(chp_recv_deadline(u->n, t, t + 300), 300);
    l->dealer_up = 1;
    assert_int_equal(chp_recv_deadline(u->n, t, t + 300), 200);
    l->neg_waiting[1] = 1; /* a sync message waits for its budget */
    assert_int_equal(chp_recv_deadline(u->n, t, t + 300), 50);
    l->neg_waiting[1] = 0;
    /* a ban whose end dials a neighbour again */
    (void)chp_admit_ban(u->n, k, "1.2.3.4:5/x", t - 31000);
    assert_int_equal(chp_recv_deadline(u->n, t, t + 300), 0);
}

/* ---- counters, words ---- */

static void test_count_reject(void **state)
{
    struct ut *u = *state;
    static const int rcs[] = {CHP_E_ENV_SIZE,    CHP_E_ENV_VERSION, CHP_E_ENV_TTL,
                              CHP_E_ENV_EXPIRED, CHP_E_ENV_FUTURE,  CHP_E_ENV_POW,
                              CHP_E_STORE_FULL,  CHP_E_MALFORMED,   CHP_E_TRUNCATED};
    for (size_t i = 0; i < sizeof rcs / sizeof *rcs; i++)
        chp_ingest_count_reject(u->n, rcs[i]);
    const chp_mesh_counters *c = &u->n->ctr;
    assert_int_equal(c->rej_size, 1);
    assert_int_equal(c->rej_version, 1);
    assert_int_equal(c->rej_ttl, 1);
    assert_int_equal(c->rej_expired, 1);
    assert_int_equal(c->rej_future, 1);
    assert_int_equal(c->rej_pow, 1);
    assert_int_equal(c->rej_full, 1);
    assert_int_equal(c->rej_malformed, 2);
}

static void test_listen_problem(void **state)
{
    (void)state;
    assert_null(chp_mesh_listen_problem("127.0.0.1:0"));
    assert_null(chp_mesh_listen_problem("0.0.0.0:7667"));
    assert_null(chp_mesh_listen_problem("[::1]:65535"));
    assert_non_null(strstr(chp_mesh_listen_problem("127.0.0.1:65536"), "0 to 65535"));
    assert_non_null(strstr(chp_mesh_listen_problem("127.0.0.1:"), "0 to 65535"));
    assert_non_null(strstr(chp_mesh_listen_problem("127.0.0.1:7x"), "0 to 65535"));
    assert_non_null(strstr(chp_mesh_listen_problem("[::1:7667"), "brackets"));
    assert_non_null(strstr(chp_mesh_listen_problem("[]:7667"), "brackets"));
    assert_non_null(strstr(chp_mesh_listen_problem("7667"), "HOST:PORT"));
}

static void test_mesh_address(void **state)
{
    struct ut *u = *state;
    char out[CHP_ADDR_STR_MAX + 1];
    chp_addr a;
    u->n->port = 7667;
    snprintf(u->n->listen_host, sizeof u->n->listen_host, "192.0.2.7");
    chp_mesh_address(u->n, out, sizeof out);
    assert_rc(chp_addr_parse(out, strlen(out), &a), CHP_OK);
    assert_string_equal(a.host, "192.0.2.7");
    assert_int_equal(a.port, 7667);
    assert_memory_equal(a.key, u->n->tpk, 32);
    snprintf(u->n->listen_host, sizeof u->n->listen_host, "::1");
    chp_mesh_address(u->n, out, sizeof out);
    assert_rc(chp_addr_parse(out, strlen(out), &a), CHP_OK);
    assert_true(a.ipv6);
    /* a wildcard: some address of this machine that is not loopback, or
     * loopback when it has none */
    static const char *wild[] = {"0.0.0.0", "::", "*", ""};
    for (size_t i = 0; i < sizeof wild / sizeof *wild; i++) {
        snprintf(u->n->listen_host, sizeof u->n->listen_host, "%s", wild[i]);
        chp_mesh_address(u->n, out, sizeof out);
        assert_rc(chp_addr_parse(out, strlen(out), &a), CHP_OK);
        assert_string_not_equal(a.host, "0.0.0.0");
        assert_string_not_equal(a.host, "::");
        assert_int_equal(a.port, 7667);
    }
    /* too small a buffer: empty, not cut */
    chp_mesh_address(u->n, out, 10);
    assert_string_equal(out, "");
}

/* ---- the connection table, on real loopback sockets (admit.c) ---- */

struct tcp {
    int lfd;
    struct sockaddr_in sa;
};

static void tcp_listen(struct tcp *t)
{
    socklen_t sl = sizeof t->sa;
    t->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(t->lfd >= 0);
    memset(&t->sa, 0, sizeof t->sa);
    t->sa.sin_family = AF_INET;
    t->sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(t->lfd, (struct sockaddr *)&t->sa, sizeof t->sa), 0);
    assert_int_equal(listen(t->lfd, 64), 0);
    assert_int_equal(getsockname(t->lfd, (struct sockaddr *)&t->sa, &sl), 0);
}

/* One connection to t: the accepted end in *srv, the client end returned. */
static int tcp_pair(struct tcp *t, int *srv)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&t->sa, sizeof t->sa), 0);
    *srv = accept(t->lfd, NULL, NULL);
    assert_true(*srv >= 0);
    return c;
}

static void test_conns(void **state)
{
    struct ut *u = *state;
    struct tcp t;
    int cli[40], srv[40];
    uint8_t k1[32], k2[32];
    rand_key(k1);
    rand_key(k2);
    assert_rc(chp_conns_init(u->n), CHP_OK);
    tcp_listen(&t);
    const uint64_t t0 = u->ms;
    for (int i = 0; i < 33; i++)
        cli[i] = tcp_pair(&t, &srv[i]);
    /* 32 from one address, CONN_PER_IP_USER: the 33rd is shut at once */
    for (int i = 0; i < 33; i++)
        chp_conn_accepted(u->n, srv[i]);
    assert_int_equal(u->n->ctr.conns_refused, 1);
    assert_int_equal(chp_conns_open(u->n), 33); /* until its DISCONNECTED */
    assert_int_equal(chp_conn_age(u->n, srv[32], t0), -1);
    char b;
    assert_int_equal(recv(cli[32], &b, 1, 0), 0); /* the client sees it closed */
    chp_conn_closed(u->n, srv[32]);
    assert_int_equal(chp_conns_open(u->n), 32);
    /* ZAP's OK names the address: the oldest unkeyed connection from it */
    chp_conn_authenticated(u->n, "127.0.0.1", k1);
    chp_conn_authenticated(u->n, "not an address", k1);
    assert_int_equal(chp_conns_of_key(u->n, k1), 1);
    /* the first message tells which connection it really is */
    chp_conn_spoke(u->n, srv[1], k2);
    chp_conn_spoke(u->n, 9999, k2); /* unknown: nothing */
    assert_int_equal(chp_conns_of_key(u->n, k2), 1);
    assert_int_equal(chp_conn_age(u->n, srv[1], t0 + 1234), 1234);
    assert_int_equal(chp_conn_age(u->n, 9999, t0), -1);
    /* a second later nothing is due */
    chp_conns_check(u->n, t0 + 1000);
    assert_int_equal(u->n->ctr.conns_timedout, 0);
    /* a key banned since: its connection is shut down */
    (void)chp_admit_ban(u->n, k2, NULL, t0 + 2000);
    chp_conns_check(u->n, t0 + 2000);
    assert_int_equal(recv(cli[1], &b, 1, 0), 0);
    assert_int_equal(chp_conns_of_key(u->n, k2), 0);
    assert_int_equal(chp_conn_age(u->n, srv[1], t0 + 2000), -1);
    /* one whose peer left without an event is forgotten at the check */
    close(cli[2]);
    shutdown(srv[2], SHUT_RDWR);
    close(srv[2]);
    int fd2 = srv[2];
    chp_conns_check(u->n, t0 + 3000);
    assert_int_equal(chp_conn_age(u->n, fd2, t0 + 3000), -1);
    assert_int_equal(chp_conns_open(u->n), 31);
    /* silent 10 s after it was accepted: shut down and counted, except
     * the one that spoke */
    chp_conns_check(u->n, t0 + 10001);
    assert_int_equal(u->n->ctr.conns_timedout, 30);
    assert_int_equal(recv(cli[0], &b, 1, 0), 0);
    /* the table closes a descriptor on request */
    int n3 = srv[3];
    chp_conn_close_fd(u->n, n3); /* already closing: nothing more */
    assert_int_equal(chp_conn_age(u->n, n3, t0), -1);
    for (int i = 0; i < 33; i++) {
        close(cli[i]);
        if (i != 2)
            close(srv[i]);
    }
    close(t.lfd);
}

int main(void)
{
    chp_log_set_level(CHP_LOG_ERROR);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_score_decay),
        T(test_misbehave_bans_at_threshold),
        T(test_ban_escalation),
        T(test_ban_table_full),
        T(test_admit_allowed),
        T(test_rate_env),
        T(test_rate_bytes),
        T(test_neg_single_and_fragments),
        T(test_neg_session_change),
        T(test_neg_too_large),
        T(test_neg_no_frag_cap),
        T(test_missing_table),
        T(test_recent_ring),
        T(test_moved_expiry),
        T(test_moved_set_eviction),
        T(test_flow_window),
        T(test_walk_refill),
        T(test_view_dialable),
        T(test_view_refusals),
        T(test_view_lru),
        T(test_view_peers_rate),
        T(test_view_per_host),
        T(test_ban_address_after_two_keys),
        T(test_source_memory),
        T(test_link_table),
        T(test_lan_links),
        T(test_recv_deadline),
        T(test_count_reject),
        T(test_listen_problem),
        T(test_mesh_address),
        T(test_conns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
