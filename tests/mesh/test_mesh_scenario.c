/* test_mesh_scenario.c - several meshes in one process, each with its own
 * LMDB store in a temp dir and its own ZeroMQ context (each binds the ZAP
 * endpoint and fixed inproc names), listening on 127.0.0.1 with discovery
 * off, driven by this test's loop on a clock the test turns: dialling and
 * HELLO, publishing along a chain, sync of what was stored before a link
 * came up, PRUNE in a triangle, QUERY/HELD, a raw CURVE client that
 * speaks the wire protocol (IHAVE -> GRAFT, IWANT -> PUSH, QUERY -> HELD)
 * and one that misbehaves until it is banned and refused by ZAP, peer
 * removal and bans with their redial, remembered peers after a restart, a
 * full store, a relay's pipeline and the passive view it feeds, LAN
 * listener rotation, beacons heard over loopback, the active view's
 * eviction and the allow-list.
 *
 * Nothing here leaves 127.0.0.1 (and ::1): no mesh ever opens its beacon
 * sockets; where a test hands one a UDP socket of its own on loopback, the
 * mesh's next beacon is pushed to the end of time first. */
#include "node/common/log.h"
#include "node/mesh/beacon.h"
#include "node/mesh/mesh_int.h"
#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/identity.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "tests/unit/testutil.h"

#define NODES   5
#define NENV    16
#define WAIT_MS 10000 /* real time any one condition may take */

/* ---- envelopes, made once (proof of work at the network's default) ---- */

struct env {
    uint8_t b[512];
    size_t len;
    uint8_t id[32];
    uint8_t tag[16];
};

static struct env envs[NENV];
static struct env badpow; /* a valid envelope whose proof of work fails */
static uint64_t unix0;    /* the wall clock when they were made */

static void make_env(struct env *e, const chp_identity *me, int i)
{
    uint8_t key[32], payload[64];
    chp_rng_fill(chp_rng_system(), e->tag, sizeof e->tag);
    chp_rng_fill(chp_rng_system(), key, sizeof key);
    int pl = snprintf((char *)payload, sizeof payload, "mesh scenario envelope %d", i);
    chp_env_seal_args a = {.created = unix0,
                           .expiry = unix0 + 7200,
                           .tag = e->tag,
                           .key = key,
                           .type = CHP_CT_TEXT,
                           .payload = payload,
                           .len = (size_t)pl};
    assert_rc(chp_envelope_seal(&a, me, chp_rng_system(), e->b, sizeof e->b, &e->len), CHP_OK);
    chp_envelope_id(e->b, e->len, e->id);
}

static int group_setup(void **state)
{
    (void)state;
    chp_identity *me = NULL;
    if (chp_crypto_init() != CHP_OK || chp_identity_generate(chp_rng_system(), &me) != CHP_OK)
        return -1;
    unix0 = chp_unix_s();
    for (int i = 0; i < NENV; i++)
        make_env(&envs[i], me, i);
    make_env(&badpow, me, 99);
    /* change the nonce until the proof of work fails */
    for (uint8_t x = 1;; x++) {
        badpow.b[badpow.len - 1] ^= x;
        if (chp_envelope_check(badpow.b, badpow.len, unix0, NULL, NULL, NULL) == CHP_E_ENV_POW)
            break;
        badpow.b[badpow.len - 1] ^= x;
    }
    chp_identity_destroy(&me);
    return 0;
}

/* ---- nodes and the loop ---- */

struct world;

struct node {
    struct world *w;
    char dir[64];
    chp_store *store;
    void *zctx;
    chp_mesh *m;
    /* options for the next start */
    int relay;
    uint64_t quota;
    uint8_t allow[2][32];
    size_t nallow;
    const char *peers[2];
    size_t npeers;
    const char *listen;
    /* what the hooks saw */
    uint8_t committed[64][32];
    size_t ncommitted;
    uint64_t last_seq; /* of the last envelope committed */
    uint8_t held[16][32];
    size_t nheld;
    uint8_t unconf[16][32];
    size_t nunconf;
    const uint8_t *mine_tag; /* tag_mine says 1 for this tag */
    int ups, downs, env_events;
    char addr[CHP_ADDR_STR_MAX + 1];
};

struct world {
    uint64_t ms;   /* the meshes' monotonic clock */
    uint64_t step; /* ms it moves per loop round */
    chp_clock clock;
    struct node n[NODES];
    zmq_pollitem_t items[NODES * CHP_MESH_POLL_MAX];
};

static uint64_t w_ms(void *ctx)
{
    return ((struct world *)ctx)->ms;
}

/* The wall clock runs with the monotonic one, from when the envelopes
 * were made. */
static uint64_t w_unix(void *ctx)
{
    return unix0 + (((struct world *)ctx)->ms - 1000000) / 1000;
}

static uint64_t real_ms(void)
{
    return chp_mono_ms();
}

static void h_committed(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32],
                        uint64_t seq)
{
    struct node *nd = ctx;
    uint8_t check[32];
    chp_envelope_id(env, len, check);
    assert_memory_equal(check, id, 32);
    assert_true(seq > nd->last_seq); /* in the order of the store, once */
    nd->last_seq = seq;
    if (nd->ncommitted < 64)
        memcpy(nd->committed[nd->ncommitted++], id, 32);
}

static int h_tag_mine(void *ctx, const uint8_t *tag)
{
    struct node *nd = ctx;
    return nd->mine_tag && !memcmp(tag, nd->mine_tag, 16);
}

static size_t h_unconfirmed(void *ctx, uint8_t (*ids)[32], size_t cap)
{
    struct node *nd = ctx;
    size_t k = nd->nunconf < cap ? nd->nunconf : cap;
    memcpy(ids, nd->unconf, k * 32);
    return k;
}

static void h_held(void *ctx, const uint8_t id[32])
{
    struct node *nd = ctx;
    if (nd->nheld < 16)
        memcpy(nd->held[nd->nheld++], id, 32);
    for (size_t i = 0; i < nd->nunconf; i++)
        if (!memcmp(nd->unconf[i], id, 32))
            memcpy(nd->unconf[i], nd->unconf[--nd->nunconf], 32);
}

static void h_event(void *ctx, const char *topic, const char *body, size_t len)
{
    struct node *nd = ctx;
    if (!strcmp(topic, "peer") && len == 2 && !memcmp(body, "up", 2))
        nd->ups++;
    else if (!strcmp(topic, "peer") && len == 4 && !memcmp(body, "down", 4))
        nd->downs++;
    else if (!strcmp(topic, "envelope") && len == 64)
        nd->env_events++;
}

static int has_committed(const struct node *nd, const uint8_t id[32])
{
    for (size_t i = 0; i < nd->ncommitted; i++)
        if (!memcmp(nd->committed[i], id, 32))
            return 1;
    return 0;
}

static int stored(const struct node *nd, const struct env *e)
{
    return chp_store_has(nd->store, e->id) == 1;
}

static chp_mesh_opts node_opts(struct node *nd)
{
    chp_mesh_opts o;
    memset(&o, 0, sizeof o);
    o.listen = nd->listen ? nd->listen : "127.0.0.1:0";
    o.relay = nd->relay;
    o.zctx = nd->zctx;
    o.store = nd->store;
    o.clock = &nd->w->clock;
    for (size_t i = 0; i < nd->npeers; i++)
        o.peers[i] = nd->peers[i];
    o.npeers = nd->npeers;
    memcpy(o.allow, nd->allow, sizeof nd->allow);
    o.nallow = nd->nallow;
    o.hooks = (chp_mesh_hooks){.ctx = nd,
                               .committed = h_committed,
                               .tag_mine = h_tag_mine,
                               .unconfirmed = h_unconfirmed,
                               .held = h_held,
                               .event = h_event};
    return o;
}

/* Opens the node's store (made on the first start) and context; the mesh
 * is started with its options. Returns what chp_mesh_new said. */
static int node_try_start(struct node *nd)
{
    if (!nd->dir[0]) {
        snprintf(nd->dir, sizeof nd->dir, "/tmp/chp-test-mesh-XXXXXX");
        assert_non_null(mkdtemp(nd->dir));
    }
    chp_store_opts so = {.quota = nd->quota};
    assert_rc(chp_store_open(nd->dir, &so, &nd->store, NULL), CHP_OK);
    nd->zctx = zmq_ctx_new();
    assert_non_null(nd->zctx);
    chp_mesh_opts o = node_opts(nd);
    int rc = chp_mesh_new(&o, &nd->m);
    if (rc != CHP_OK) {
        assert_null(nd->m);
        zmq_ctx_term(nd->zctx);
        nd->zctx = NULL;
        chp_store_close(&nd->store);
        return rc;
    }
    chp_mesh_address(nd->m, nd->addr, sizeof nd->addr);
    return rc;
}

static struct node *node_start(struct world *w, int i)
{
    struct node *nd = &w->n[i];
    assert_rc(node_try_start(nd), CHP_OK);
    return nd;
}

static void node_stop(struct node *nd)
{
    if (!nd->m)
        return;
    chp_mesh_destroy(&nd->m);
    assert_null(nd->m);
    zmq_ctx_term(nd->zctx);
    nd->zctx = NULL;
    chp_store_close(&nd->store);
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char sub[512];
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                unlink(sub);
            }
        }
        closedir(d);
    }
    rmdir(path);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->ms = 1000000; /* 0 means "never" in several of the mesh's tables */
    w->step = 10;
    w->clock = (chp_clock){.ctx = w, .mono_ms = w_ms, .unix_s = w_unix};
    for (int i = 0; i < NODES; i++)
        w->n[i].w = w;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    for (int i = 0; i < NODES; i++) {
        node_stop(&w->n[i]);
        if (w->n[i].dir[0])
            rm_rf(w->n[i].dir);
    }
    free(w);
    return 0;
}

/* One round of the loop every running mesh: its poll set, one zmq_poll
 * over all of them, what the poll found, the timers; then the clock. */
static void step(struct world *w)
{
    size_t off[NODES], cnt[NODES], total = 0;
    for (int i = 0; i < NODES; i++) {
        uint64_t deadline = UINT64_MAX;
        off[i] = total;
        cnt[i] = w->n[i].m ? chp_mesh_poll_items(w->n[i].m, w->items + total, w->ms, &deadline) : 0;
        total += cnt[i];
    }
    if (zmq_poll(w->items, (int)total, 2) < 0)
        fail_msg("zmq_poll: %s", zmq_strerror(zmq_errno()));
    for (int i = 0; i < NODES; i++)
        if (w->n[i].m)
            chp_mesh_poll_done(w->n[i].m, w->items + off[i], cnt[i]);
    for (int i = 0; i < NODES; i++)
        if (w->n[i].m)
            chp_mesh_periodic(w->n[i].m, w->ms);
    w->ms += w->step;
}

/* Runs the loop until expr holds; fails after WAIT_MS of real time. */
#define UNTIL(w, expr)                                                                             \
    do {                                                                                           \
        uint64_t end_ = real_ms() + WAIT_MS;                                                       \
        while (!(expr)) {                                                                          \
            if (real_ms() > end_)                                                                  \
                fail_msg("%s:%d: timed out waiting for %s", __FILE__, __LINE__, #expr);            \
            step(w);                                                                               \
        }                                                                                          \
    } while (0)

/* Runs the loop for ms of the mesh clock. */
static void run_for(struct world *w, uint64_t ms)
{
    uint64_t end = w->ms + ms;
    while (w->ms < end)
        step(w);
}

static size_t connected(const struct node *nd)
{
    chp_mesh_stats st;
    chp_mesh_stats_get(nd->m, &st);
    return st.connected;
}

static struct chp_link *link_of(struct node *nd, const uint8_t key[32])
{
    return chp_link_find(nd->m, key);
}

static int link_up(struct node *nd, const uint8_t key[32])
{
    struct chp_link *l = link_of(nd, key);
    return l && chp_link_up(l);
}

/* What `peer list` shows of one key. */
struct peer_row {
    const uint8_t *key;
    int found;
    char state[32], dir[8], addr[CHP_ADDR_STR_MAX + 1], reason[128];
    uint64_t rx, tx;
    int rows;
};

static void peer_cb(void *ctx, const chp_mesh_peer *p)
{
    struct peer_row *r = ctx;
    r->rows++;
    if (memcmp(p->key, r->key, 32))
        return;
    r->found = 1;
    snprintf(r->state, sizeof r->state, "%s", p->state);
    snprintf(r->dir, sizeof r->dir, "%s", p->dir);
    snprintf(r->addr, sizeof r->addr, "%s", p->addr);
    snprintf(r->reason, sizeof r->reason, "%s", p->reason);
    r->rx = p->rx;
    r->tx = p->tx;
}

static struct peer_row peer_of(struct node *nd, const uint8_t key[32])
{
    struct peer_row r;
    memset(&r, 0, sizeof r);
    r.key = key;
    chp_mesh_peers(nd->m, peer_cb, &r);
    return r;
}

static const char *peer_state(struct node *nd, const uint8_t key[32])
{
    static struct peer_row r;
    r = peer_of(nd, key);
    return r.found ? r.state : "";
}

/* A TCP port on loopback where nothing listens (bound, never listening:
 * connections are refused). */
static int dead_port(uint16_t *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void fmt_addr(char *out, size_t cap, const char *host, uint16_t port, const uint8_t key[32])
{
    chp_addr a;
    memset(&a, 0, sizeof a);
    snprintf(a.host, sizeof a.host, "%s", host);
    a.ipv6 = strchr(host, ':') != NULL;
    a.port = port;
    memcpy(a.key, key, 32);
    assert_rc(chp_addr_format(&a, out, cap), CHP_OK);
}

/* ---- a raw node-link client: libzmq and the wire encoders only ---- */

struct raw {
    void *ctx, *s;
    uint8_t pk[32], sk[32];
    uint8_t last[CHP_WIRE_MAX_FRAME]; /* the frame raw_got matched */
    size_t lastlen;
    chp_wire_msg m; /* decoded from last */
};

static void raw_open(struct raw *r, const struct node *to, int new_key)
{
    chp_addr a;
    char ep[300];
    int zero = 0;
    if (new_key) {
        chp_rng_fill(chp_rng_system(), r->sk, 32);
        chp_x25519_base(r->pk, r->sk);
    }
    assert_rc(chp_addr_parse(to->addr, strlen(to->addr), &a), CHP_OK);
    assert_rc(chp_addr_endpoint(&a, ep, sizeof ep), CHP_OK);
    if (!r->ctx)
        r->ctx = zmq_ctx_new();
    r->s = zmq_socket(r->ctx, ZMQ_DEALER);
    assert_non_null(r->s);
    assert_int_equal(zmq_setsockopt(r->s, ZMQ_CURVE_SERVERKEY, a.key, 32), 0);
    assert_int_equal(zmq_setsockopt(r->s, ZMQ_CURVE_PUBLICKEY, r->pk, 32), 0);
    assert_int_equal(zmq_setsockopt(r->s, ZMQ_CURVE_SECRETKEY, r->sk, 32), 0);
    assert_int_equal(zmq_setsockopt(r->s, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_connect(r->s, ep), 0);
}

static void raw_close(struct raw *r)
{
    if (r->s)
        zmq_close(r->s);
    r->s = NULL;
    if (r->ctx)
        zmq_ctx_term(r->ctx);
    r->ctx = NULL;
}

static void raw_send(struct raw *r, const uint8_t *f, size_t len)
{
    if (zmq_send(r->s, f, len, ZMQ_DONTWAIT) != (int)len)
        fail_msg("raw send: %s", zmq_strerror(zmq_errno()));
}

static void raw_hello(struct raw *r, uint32_t caps)
{
    uint8_t f[16];
    size_t fl;
    assert_rc(chp_wire_hello(f, sizeof f, &fl, caps, 0, CHP_WIRE_MAX_FRAME), CHP_OK);
    raw_send(r, f, fl);
}

static void raw_ids(struct raw *r, uint8_t type, const uint8_t *ids, uint16_t n)
{
    static uint8_t f[3 + 16 * 32];
    size_t fl;
    assert_rc(chp_wire_ids(f, sizeof f, &fl, type, ids, n), CHP_OK);
    raw_send(r, f, fl);
}

static void raw_ping(struct raw *r, uint64_t nonce)
{
    uint8_t f[16];
    size_t fl;
    assert_rc(chp_wire_ping(f, sizeof f, &fl, CHP_WIRE_PING, nonce), CHP_OK);
    raw_send(r, f, fl);
}

static void raw_push(struct raw *r, const uint8_t *env, size_t len)
{
    static uint8_t f[1 + CHP_ENV_MAX_BYTES];
    size_t fl;
    assert_rc(chp_wire_push(f, sizeof f, &fl, env, len), CHP_OK);
    raw_send(r, f, fl);
}

/* Reads what has arrived; 1 when a frame of type came (kept in r->last,
 * decoded in r->m), with the given nonce for PONG. */
static int raw_got(struct raw *r, uint8_t type, uint64_t nonce)
{
    for (;;) {
        int n = zmq_recv(r->s, r->last, sizeof r->last, ZMQ_DONTWAIT);
        if (n < 0)
            return 0;
        r->lastlen = (size_t)n;
        if (chp_wire_decode(r->last, r->lastlen, &r->m) == CHP_OK && r->m.type == type &&
            (type != CHP_WIRE_PONG || r->m.u.nonce == nonce))
            return 1;
    }
}

/* Everything r sent before has been handled once the PONG is back. */
static void raw_barrier(struct world *w, struct raw *r)
{
    static uint64_t nonce = 5000;
    raw_ping(r, ++nonce);
    UNTIL(w, raw_got(r, CHP_WIRE_PONG, nonce));
}

/* ================= the scenarios ================= */

/* Dialling: a dead port is "unreachable", a wrong key "handshake-failed";
 * the right address brings both sides up with a HELLO each, a "peer up"
 * event each, and the peer list and status say so. */
static void test_dial_hello(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1);
    const uint8_t *bk = b->m->tpk;
    char wrong[CHP_ADDR_STR_MAX + 1], badkey[CHP_ADDR_STR_MAX + 1];
    uint16_t port;
    int dfd = dead_port(&port);
    fmt_addr(wrong, sizeof wrong, "127.0.0.1", port, bk);
    assert_rc(chp_mesh_peer_add(a->m, wrong, strlen(wrong)), CHP_OK);
    UNTIL(w, !strcmp(peer_state(a, bk), "unreachable"));
    assert_non_null(strstr(peer_of(a, bk).reason, "no answer"));
    /* the user gives the node a new address while the old one is dead */
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    UNTIL(w, a->ups == 1 && b->ups == 1);
    assert_int_equal(connected(a), 1);
    assert_int_equal(connected(b), 1);
    struct peer_row r = peer_of(a, bk);
    assert_true(r.found);
    assert_int_equal(r.rows, 1);
    assert_string_equal(r.state, "connected");
    assert_string_equal(r.dir, "out");
    assert_string_equal(r.addr, b->addr);
    assert_string_equal(r.reason, "-");
    r = peer_of(b, a->m->tpk);
    assert_string_equal(r.state, "connected");
    assert_string_equal(r.dir, "in");
    assert_string_equal(r.addr, "-");
    /* only the right address is remembered */
    assert_true(chp_link_remembered(a->m, b->addr));
    assert_false(chp_link_remembered(a->m, wrong));
    chp_mesh_stats st;
    chp_mesh_stats_get(b->m, &st);
    assert_int_equal(st.connected, 1);
    assert_int_equal(st.relays, 0);
    assert_int_equal(st.connections, 1);
    assert_int_equal(st.ctr.bans, 0);
    assert_true(st.ctr.rx_bytes > 0);

    /* what `peer add` refuses */
    char self[CHP_ADDR_STR_MAX + 1], other[CHP_ADDR_STR_MAX + 1];
    chp_mesh_address(a->m, self, sizeof self);
    assert_rc(chp_mesh_peer_add(a->m, self, strlen(self)), CHP_E_ARG);
    assert_rc(chp_mesh_peer_add(a->m, "junk", 4), CHP_E_ADDR_FORMAT);
    fmt_addr(other, sizeof other, "127.0.0.2", port, bk);
    assert_rc(chp_mesh_peer_add(a->m, other, strlen(other)), CHP_E_DUP);
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK); /* again */
    /* heard of (not given) at another address: the one dialled stays */
    assert_rc(chp_link_add_discovered(a->m, other, strlen(other)), CHP_OK);
    assert_string_equal(peer_of(a, bk).addr, b->addr);
    assert_int_equal(connected(a), 1);

    /* a wrong key at a live port: TCP comes up, CURVE does not */
    uint8_t k[32];
    chp_rng_fill(chp_rng_system(), k, 32);
    char bport[8];
    snprintf(bport, sizeof bport, "%s", strrchr(b->addr, ':') + 1);
    *strchr(bport, '/') = '\0';
    fmt_addr(badkey, sizeof badkey, "127.0.0.1", (uint16_t)atoi(bport), k);
    assert_rc(chp_mesh_peer_add(a->m, badkey, strlen(badkey)), CHP_OK);
    UNTIL(w, !strcmp(peer_state(a, k), "handshake-failed"));
    assert_non_null(strstr(peer_of(a, k).reason, "CURVE"));
    assert_rc(chp_mesh_peer_remove(a->m, badkey, strlen(badkey)), CHP_OK);
    assert_false(peer_of(a, k).found);
    assert_rc(chp_mesh_peer_remove(a->m, badkey, strlen(badkey)), CHP_E_NOT_FOUND);
    assert_rc(chp_mesh_peer_remove(a->m, "junk", 4), CHP_E_ADDR_FORMAT);
    close(dfd);
}

/* A publishes on a chain A - B - C: both commit it, with its id. */
static void test_publish_chain(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1), *c = node_start(w, 2);
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    assert_rc(chp_mesh_peer_add(c->m, b->addr, strlen(b->addr)), CHP_OK);
    UNTIL(w, connected(b) == 2 && connected(a) == 1 && connected(c) == 1);
    run_for(w, 1000); /* the first syncs are over */
    assert_rc(chp_mesh_publish(a->m, envs[0].b, envs[0].len), CHP_OK);
    assert_true(has_committed(a, envs[0].id)); /* own: committed before it returns */
    assert_int_equal(a->env_events, 1);
    UNTIL(w, has_committed(b, envs[0].id) && has_committed(c, envs[0].id));
    assert_int_equal(b->ncommitted, 1);
    assert_int_equal(c->ncommitted, 1);
    assert_int_equal(c->env_events, 1);
    /* the same again: already held */
    assert_rc(chp_mesh_publish(a->m, envs[0].b, envs[0].len), CHP_E_DUP);
    /* not an envelope */
    assert_rc(chp_mesh_publish(a->m, envs[0].b, envs[0].len - 1), CHP_E_ENV_SIZE);
    assert_rc(chp_mesh_publish(a->m, badpow.b, badpow.len), CHP_E_ENV_POW);
    /* two at once: queued, committed by the flush */
    assert_rc(chp_mesh_publish_later(a->m, envs[1].b, envs[1].len), CHP_OK);
    assert_rc(chp_mesh_publish_later(a->m, envs[2].b, envs[2].len), CHP_OK);
    assert_rc(chp_mesh_publish_later(a->m, envs[2].b, envs[2].len), CHP_E_DUP);
    assert_false(has_committed(a, envs[1].id));
    assert_rc(chp_mesh_flush(a->m), CHP_OK);
    assert_true(has_committed(a, envs[2].id));
    UNTIL(w, has_committed(c, envs[1].id) && has_committed(c, envs[2].id));
    struct peer_row r = peer_of(b, a->m->tpk);
    assert_int_equal(r.rx, 3);
    r = peer_of(b, c->m->tpk);
    assert_int_equal(r.tx, 3);
    chp_mesh_stats st;
    chp_mesh_stats_get(c->m, &st);
    assert_int_equal(st.ctr.accepted, 3);
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(st.ctr.rej_size, 1);
    assert_int_equal(st.ctr.rej_pow, 1);
}

/* What each side stored before the link came up arrives by sync. */
static void test_sync_before_link(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1);
    for (int i = 0; i < 3; i++)
        assert_rc(chp_mesh_publish(a->m, envs[i].b, envs[i].len), CHP_OK);
    assert_rc(chp_mesh_publish(b->m, envs[3].b, envs[3].len), CHP_OK);
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    UNTIL(w,
          stored(b, &envs[0]) && stored(b, &envs[1]) && stored(b, &envs[2]) && stored(a, &envs[3]));
    UNTIL(w, has_committed(a, envs[3].id) && has_committed(b, envs[2].id));
    chp_mesh_stats st;
    UNTIL(w, (chp_mesh_stats_get(a->m, &st), st.ctr.syncs_done >= 1));
    assert_int_equal(st.ctr.sync_fetched, 1);
    assert_true(st.ctr.sync_rounds >= 2);
    chp_mesh_stats_get(b->m, &st);
    assert_int_equal(st.ctr.accepted, 4); /* 1 own + 3 synced */
    /* A minute later A syncs again: nothing to move, still a round */
    chp_mesh_stats_get(a->m, &st);
    uint64_t done = st.ctr.syncs_done;
    w->ms += 60000;
    UNTIL(w, (chp_mesh_stats_get(a->m, &st), st.ctr.syncs_done > done));
    assert_int_equal(st.ctr.sync_fetched, 1);
}

/* A sync whose IWANT asks for more than the flow window (768 KiB, send.c)
 * gets every envelope in that one session: what does not fit is owed and
 * goes out as B's PONGs (each once the envelopes before it are stored)
 * open the window; nothing is dropped to be asked again. */
#define BIG_ENV 64
static int all_stored(const struct node *nd, uint8_t (*ids)[32], int n)
{
    for (int i = 0; i < n; i++)
        if (chp_store_has(nd->store, ids[i]) != 1)
            return 0;
    return 1;
}

/* BIG_ENV envelopes of the largest bucket (a file's pieces), together
 * more than one flow window (PROTOCOL.md §15). */
static uint8_t big[BIG_ENV][CHP_ENV_MAX_BYTES], big_ids[BIG_ENV][32];
static size_t big_len[BIG_ENV];

static void make_big(void)
{
    static uint8_t payload[CHP_PAYLOAD_MAX - 64];
    size_t total = 0;
    chp_identity *me = NULL;
    assert_rc(chp_identity_generate(chp_rng_system(), &me), CHP_OK);
    for (int i = 0; i < BIG_ENV; i++) {
        uint8_t tag[16], key[32];
        chp_rng_fill(chp_rng_system(), tag, sizeof tag);
        chp_rng_fill(chp_rng_system(), key, sizeof key);
        chp_rng_fill(chp_rng_system(), payload, sizeof payload);
        chp_env_seal_args a = {.created = unix0,
                               .expiry = unix0 + 7200,
                               .tag = tag,
                               .key = key,
                               .type = CHP_CT_PIECE,
                               .payload = payload,
                               .len = sizeof payload};
        assert_rc(chp_envelope_seal(&a, me, chp_rng_system(), big[i], sizeof big[i], &big_len[i]),
                  CHP_OK);
        chp_envelope_id(big[i], big_len[i], big_ids[i]);
        total += big_len[i];
    }
    chp_identity_destroy(&me);
    assert_true(total > (768u << 10)); /* more than one window */
}

/* Node A holds the BIG_ENV envelopes (its own), node B dials it. */
static void big_pair(struct world *w, struct node **a, struct node **b)
{
    make_big();
    *a = node_start(w, 0);
    *b = node_start(w, 1);
    for (int i = 0; i < BIG_ENV; i++)
        assert_rc(chp_mesh_publish((*a)->m, big[i], big_len[i]), CHP_OK);
    assert_rc(chp_mesh_peer_add((*b)->m, (*a)->addr, strlen((*a)->addr)), CHP_OK);
}

static void test_sync_beyond_window(void **state)
{
    struct world *w = *state;
    struct node *a, *b;
    big_pair(w, &a, &b);
    UNTIL(w, all_stored(b, big_ids, BIG_ENV));
    chp_mesh_stats st;
    chp_mesh_stats_get(b->m, &st);
    assert_int_equal(st.ctr.sync_fetched, BIG_ENV); /* each asked once */
    assert_int_equal(st.ctr.accepted, BIG_ENV);
    assert_int_equal(st.ctr.duplicates, 0);
    assert_int_equal(st.ctr.rate_dropped, 0);
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(st.ctr.syncs_done, 0); /* A dialled nobody: B ran the session */
}

/* The flow window refills by steps, not by windows (PROTOCOL.md §15): B,
 * a user node, ends a read at a flow PING that follows new envelopes, so
 * what came before that PING commits (in the store's writer thread,
 * while B reads on) and its PONG goes in the loop round whose commit
 * settled it, never a round later; the layer above still gets every
 * envelope once, in the order of the store (h_committed). */
static void test_flow_pong_per_step(void **state)
{
    struct world *w = *state;
    struct node *a, *b;
    big_pair(w, &a, &b);
    uint64_t end = real_ms() + WAIT_MS, rounds = 0, waited = 0;
    while (!all_stored(b, big_ids, BIG_ENV) || b->ncommitted < BIG_ENV) {
        assert_true(real_ms() < end);
        step(w);
        rounds++;
        struct chp_link *l = link_of(b, a->m->tpk);
        if (!l || !l->npong)
            continue;
        waited++;
        /* the bucket holds 32 MiB: only what is not stored yet may wait */
        assert_true(l->pong[0].mark > chp_ingest_settled(b->m));
    }
    assert_int_equal(b->ncommitted, BIG_ENV);
    for (int i = 0; i < BIG_ENV; i++)
        assert_true(has_committed(b, big_ids[i]));
    assert_true(waited > 0);          /* PONGs did wait for their commits */
    assert_true(b->m->recv_cuts > 0); /* and reads ended at flow PINGs */
    struct chp_link *la = link_of(a, b->m->tpk);
    assert_non_null(la);
    assert_true(la->flow_pinged > (768u << 10)); /* a window and more went */
    UNTIL(w, la->flow_acked == la->flow_pinged); /* and every flow PING was answered */
    chp_mesh_stats st;
    chp_mesh_stats_get(b->m, &st);
    assert_int_equal(st.ctr.accepted, BIG_ENV);
    assert_int_equal(st.ctr.rate_dropped, 0);
    print_message("flow: %llu rounds, %llu reads ended at a flow PING\n",
                  (unsigned long long)rounds, (unsigned long long)b->m->recv_cuts);
}

/* B's answers wait for its walk budget when A's sync finds it spent. */
static void test_sync_walk_budget(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1);
    assert_rc(chp_mesh_publish(b->m, envs[4].b, envs[4].len), CHP_OK);
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    UNTIL(w, stored(a, &envs[4]));
    struct chp_link *l = link_of(b, a->m->tpk);
    assert_non_null(l);
    /* spent: 1000 items over, 122 ms to refill at 8192 a second */
    l->walk_tokens = -1000.0;
    l->walk_ms = w->ms;
    assert_rc(chp_mesh_publish(b->m, envs[5].b, envs[5].len), CHP_OK);
    UNTIL(w, stored(a, &envs[5])); /* pushed, not synced */
    chp_mesh_stats st;
    chp_mesh_stats_get(a->m, &st);
    uint64_t done = st.ctr.syncs_done;
    w->ms += 60000; /* A's next sync */
    l->walk_tokens = -1000.0;
    l->walk_ms = w->ms;
    UNTIL(w, l->neg_waiting[1]);
    /* the loop comes back for it within 50 ms */
    uint64_t d = UINT64_MAX;
    (void)chp_mesh_poll_items(b->m, w->items, w->ms, &d);
    assert_true(d <= w->ms + 50);
    UNTIL(w, (chp_mesh_stats_get(a->m, &st), st.ctr.syncs_done > done));
    assert_false(l->neg_waiting[1]);
}

/* Three nodes in a triangle: a second copy over the tree prunes a link,
 * and what goes out over a pruned link is an IHAVE. */
static void test_triangle_prune(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1), *c = node_start(w, 2);
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    assert_rc(chp_mesh_peer_add(b->m, c->addr, strlen(c->addr)), CHP_OK);
    assert_rc(chp_mesh_peer_add(c->m, a->addr, strlen(a->addr)), CHP_OK);
    UNTIL(w, connected(a) == 2 && connected(b) == 2 && connected(c) == 2);
    run_for(w, 1000);
    chp_mesh_stats sa, sb, sc;
    assert_rc(chp_mesh_publish(a->m, envs[0].b, envs[0].len), CHP_OK);
    UNTIL(w, has_committed(b, envs[0].id) && has_committed(c, envs[0].id));
    UNTIL(w, (chp_mesh_stats_get(b->m, &sb), chp_mesh_stats_get(c->m, &sc),
              sb.ctr.prunes + sc.ctr.prunes >= 1));
    assert_true(sb.ctr.duplicates + sc.ctr.duplicates >= 1);
    /* the pruned side now announces instead of pushing */
    run_for(w, 1000);
    assert_rc(chp_mesh_publish(a->m, envs[1].b, envs[1].len), CHP_OK);
    UNTIL(w, has_committed(b, envs[1].id) && has_committed(c, envs[1].id));
    UNTIL(w, (chp_mesh_stats_get(b->m, &sb), chp_mesh_stats_get(c->m, &sc),
              sb.ctr.ihave_tx + sc.ctr.ihave_tx >= 1));
    chp_mesh_stats_get(a->m, &sa);
    assert_int_equal(sa.ctr.prunes, 0); /* A pushed first: it saw no copy */
    /* C goes: A lost a neighbour of the tree (whichever copy came
     * second, A's link to C is made a tree link here) and reconciles with
     * B (the one it dials) within 2 s instead of a minute */
    link_of(a, c->m->tpk)->lazy = 0;
    node_stop(c);
    UNTIL(w, connected(a) == 1 && connected(b) == 1);
    struct chp_link *ab = link_of(a, b->m->tpk);
    assert_true(ab->next_sync_ms <= w->ms + 2000);
}

/* A's own envelope reaches every neighbour however thin the push tree:
 * with all four of A's links lazy (pruned: in a flood, a post one node
 * forwards and the next refuses prunes honest links too), an envelope
 * forwarded is announced to only 3 lazy links, but A announces its own
 * to all of them, and each GRAFTs it within half a second instead of
 * waiting a minute for the periodic sync (bench/lab: a DM 44 s late). */
static void test_own_announced_to_all(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *x[4];
    for (int i = 0; i < 4; i++) {
        x[i] = node_start(w, i + 1);
        assert_rc(chp_mesh_peer_add(x[i]->m, a->addr, strlen(a->addr)), CHP_OK);
    }
    UNTIL(w, connected(a) == 4);
    run_for(w, 1000); /* the first syncs are over */
    for (int i = 0; i < 4; i++)
        link_of(a, x[i]->m->tpk)->lazy = 1;
    assert_rc(chp_mesh_publish(a->m, envs[3].b, envs[3].len), CHP_OK);
    run_for(w, 3000); /* well before the next periodic sync (60 s) */
    for (int i = 0; i < 4; i++)
        assert_true(has_committed(x[i], envs[3].id));
}

/* QUERY/HELD: A asks whether B holds the envelope it published; the held
 * hook says so. */
static void test_query_held(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1);
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    UNTIL(w, connected(a) == 1 && connected(b) == 1);
    memcpy(a->unconf[a->nunconf++], envs[6].id, 32);
    assert_rc(chp_mesh_publish(a->m, envs[6].b, envs[6].len), CHP_OK);
    UNTIL(w, a->nheld == 1);
    assert_memory_equal(a->held[0], envs[6].id, 32);
    assert_int_equal(a->nunconf, 0);
    assert_true(stored(b, &envs[6]));
}

/* A raw client speaks the wire protocol to A: PING, IWANT, IHAVE (A
 * GRAFTs what does not come), QUERY, PRUNE (A announces to it), PEERS,
 * BYE, a bad envelope, NEG it may not send. */
static void test_wire_peer(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0);
    struct raw p;
    memset(&p, 0, sizeof p);
    assert_rc(chp_mesh_publish(a->m, envs[0].b, envs[0].len), CHP_OK);
    raw_open(&p, a, 1);
    raw_hello(&p, CHP_CAP_NEG | CHP_CAP_HELD);
    UNTIL(w, raw_got(&p, CHP_WIRE_HELLO, 0));
    assert_true(p.m.u.hello.caps & CHP_CAP_NEG_FRAG);
    assert_int_equal(p.m.u.hello.listen_port, a->m->port);
    UNTIL(w, connected(a) == 1 && a->ups == 1);
    struct chp_link *l = link_of(a, p.pk);
    assert_non_null(l);
    assert_false(l->caps & CHP_CAP_NEG_FRAG);

    /* IWANT: the envelope comes as a PUSH, once */
    raw_ids(&p, CHP_WIRE_IWANT, envs[0].id, 1);
    UNTIL(w, raw_got(&p, CHP_WIRE_PUSH, 0));
    assert_int_equal(p.m.u.push.len, envs[0].len);
    assert_memory_equal(p.m.u.push.env, envs[0].b, envs[0].len);
    raw_ids(&p, CHP_WIRE_IWANT, envs[0].id, 1);
    raw_barrier(w, &p);
    assert_int_equal(l->tx_env, 1);

    /* IHAVE of an id A lacks: half a second later A grafts it */
    raw_ids(&p, CHP_WIRE_IHAVE, envs[1].id, 1);
    raw_barrier(w, &p);
    assert_int_equal(a->m->nmissing, 1);
    UNTIL(w, raw_got(&p, CHP_WIRE_GRAFT, 0));
    assert_int_equal(p.m.u.ids.n, 1);
    assert_memory_equal(p.m.u.ids.ids, envs[1].id, 32);
    raw_push(&p, envs[1].b, envs[1].len);
    UNTIL(w, has_committed(a, envs[1].id));
    assert_int_equal(l->rx_env, 1);
    /* an IHAVE of what A has notes nothing */
    raw_ids(&p, CHP_WIRE_IHAVE, envs[1].id, 1);
    raw_barrier(w, &p);
    assert_int_equal(a->m->nmissing, 0);

    /* QUERY: HELD names what is stored, nothing else */
    uint8_t q[2][32];
    memcpy(q[0], envs[5].id, 32);
    memcpy(q[1], envs[0].id, 32);
    raw_ids(&p, CHP_WIRE_QUERY, q[0], 2);
    UNTIL(w, raw_got(&p, CHP_WIRE_HELD, 0));
    assert_int_equal(p.m.u.ids.n, 1);
    assert_memory_equal(p.m.u.ids.ids, envs[0].id, 32);

    /* HELD from it goes to the hook */
    raw_ids(&p, CHP_WIRE_HELD, envs[0].id, 1);
    raw_barrier(w, &p);
    assert_int_equal(a->nheld, 1);

    /* PRUNE: A announces new envelopes to it instead of pushing them;
     * GRAFT puts it back into the tree */
    uint8_t f[64];
    size_t fl;
    assert_rc(chp_wire_prune(f, sizeof f, &fl), CHP_OK);
    raw_send(&p, f, fl);
    raw_barrier(w, &p);
    assert_true(l->lazy);
    assert_rc(chp_mesh_publish(a->m, envs[2].b, envs[2].len), CHP_OK);
    UNTIL(w, raw_got(&p, CHP_WIRE_IHAVE, 0));
    assert_memory_equal(p.m.u.ids.ids, envs[2].id, 32);
    raw_ids(&p, CHP_WIRE_GRAFT, envs[2].id, 1);
    UNTIL(w, raw_got(&p, CHP_WIRE_PUSH, 0));
    assert_memory_equal(p.m.u.push.env, envs[2].b, envs[2].len);
    assert_false(l->lazy);
    chp_mesh_stats st;
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(st.ctr.grafts, 2); /* its GRAFT and ours */
    assert_int_equal(st.ctr.ihave_tx, 1);
    /* copies of what A just had come over the tree: PRUNE; and A sent
     * this one to it itself (the GRAFT): each copy back is a copy flood,
     * 0.05 points */
    for (int i = 0; i < 3; i++)
        raw_push(&p, envs[2].b, envs[2].len);
    UNTIL(w, raw_got(&p, CHP_WIRE_PRUNE, 0));
    raw_barrier(w, &p);
    assert_true(l->lazy);
    assert_true(l->score > 0.14 && l->score < 0.16);

    /* PEERS: loopback addresses are dialable for a loopback node */
    char addrs[2][CHP_ADDR_STR_MAX + 1];
    const char *pa[2] = {addrs[0], addrs[1]};
    uint8_t pk[2][32];
    uint16_t port;
    int dfd = dead_port(&port);
    for (int i = 0; i < 2; i++) {
        chp_rng_fill(chp_rng_system(), pk[i], 32);
        fmt_addr(addrs[i], sizeof addrs[i], "127.0.0.1", port, pk[i]);
    }
    uint8_t pf[512];
    assert_rc(chp_wire_peers(pf, sizeof pf, &fl, pa, 2), CHP_OK);
    raw_send(&p, pf, fl);
    raw_barrier(w, &p);
    /* with one live link (fewer than two) A dials one of them at once */
    size_t promoted = 0;
    for (int i = 0; i < 2; i++) {
        struct chp_link *pl = link_of(a, pk[i]);
        if (pl) {
            assert_true(pl->promoted);
            assert_string_equal(pl->addr, addrs[i]);
            promoted++;
        }
    }
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(promoted, 1);
    assert_int_equal(st.passive, 1);

    /* BYE is only logged */
    assert_rc(chp_wire_bye(f, sizeof f, &fl, 0, "see you"), CHP_OK);
    raw_send(&p, f, fl);

    /* misbehaviour short of a ban: a bad proof of work (1 point), a NEG
     * fragment from a peer that never said it sends them (2), a NEG that
     * is no Negentropy message (2) */
    raw_push(&p, badpow.b, badpow.len);
    uint8_t junk[8] = {0x42, 1, 2, 3}; /* 0x42: no Negentropy version */
    assert_rc(chp_wire_neg(pf, sizeof pf, &fl, 9, CHP_NEG_FROM_INITIATOR | CHP_NEG_MORE, junk,
                           sizeof junk),
              CHP_OK);
    raw_send(&p, pf, fl);
    assert_rc(chp_wire_neg(pf, sizeof pf, &fl, 10, CHP_NEG_FROM_INITIATOR, junk, sizeof junk),
              CHP_OK);
    raw_send(&p, pf, fl);
    raw_barrier(w, &p);
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(st.ctr.rej_pow, 1);
    assert_int_equal(st.ctr.rej_sync, 2);
    assert_true(l->used);
    assert_true(l->score > 5.0 && l->score < 5.2);
    assert_int_equal(st.ctr.bans, 0);

    /* A pings a neighbour that only dialled it, every 2 s */
    UNTIL(w, raw_got(&p, CHP_WIRE_PING, 0));
    /* and forgets it after 15 s of silence (out of the view, link kept) */
    w->ms += 16000;
    UNTIL(w, connected(a) == 0);
    assert_true(l->used);
    /* what it says next takes it back, with a HELLO from A */
    raw_ping(&p, 1);
    UNTIL(w, raw_got(&p, CHP_WIRE_HELLO, 0));
    UNTIL(w, connected(a) == 1);
    raw_close(&p);
    UNTIL(w, connected(a) == 0);
    /* a link that stays silent 10 minutes is forgotten */
    w->ms += 600001;
    UNTIL(w, !link_of(a, p.pk));
    close(dfd);
}

/* Envelopes r receives from now on, in PUSH and PUSHES frames alike;
 * counts the frames of each type. */
static size_t raw_take_pushes(struct raw *r, size_t *push_frames, size_t *pushes_frames,
                              size_t *most)
{
    size_t envs_got = 0;
    for (;;) {
        int n = zmq_recv(r->s, r->last, sizeof r->last, ZMQ_DONTWAIT);
        if (n < 0)
            return envs_got;
        if (chp_wire_decode(r->last, (size_t)n, &r->m) != CHP_OK)
            continue;
        if (r->m.type == CHP_WIRE_PUSH) {
            (*push_frames)++;
            envs_got++;
        } else if (r->m.type == CHP_WIRE_PUSHES) {
            (*pushes_frames)++;
            envs_got += r->m.u.pushes.n;
            if (r->m.u.pushes.n > *most)
                *most = r->m.u.pushes.n;
        }
    }
}

/* PUSHES (PROTOCOL.md §15.3): several envelopes in one frame, each
 * handled as its own PUSH (a bad one scored alone, the rest stored); a
 * node forwards in PUSHES only to a neighbour whose HELLO has bit 5, and
 * in single PUSH frames to one without it. */
static void test_wire_pushes(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0);
    struct raw src, neu, old;
    memset(&src, 0, sizeof src);
    memset(&neu, 0, sizeof neu);
    memset(&old, 0, sizeof old);
    raw_open(&src, a, 1);
    raw_open(&neu, a, 1);
    raw_open(&old, a, 1);
    raw_hello(&src, CHP_CAP_PUSHES);
    raw_hello(&neu, CHP_CAP_PUSHES);
    raw_hello(&old, CHP_CAP_NEG | CHP_CAP_HELD);
    UNTIL(w, raw_got(&src, CHP_WIRE_HELLO, 0));
    assert_true(src.m.u.hello.caps & CHP_CAP_PUSHES); /* A announces it */
    UNTIL(w, connected(a) == 3);

    /* five envelopes and one with a bad proof of work, in one frame */
    static uint8_t f[CHP_WIRE_MAX_FRAME];
    size_t fl = 0;
    for (int i = 0; i < 6; i++) {
        const struct env *e = i == 3 ? &badpow : &envs[i < 3 ? i : i - 1];
        assert_rc(chp_wire_pushes_add(f, sizeof f, &fl, e->b, e->len), CHP_OK);
    }
    raw_send(&src, f, fl);
    raw_barrier(w, &src);
    /* a user node's commit runs while its loop goes on: the PONG of a
     * plain PING may come first */
    UNTIL(w, chp_ingest_settled(a->m) == chp_ingest_queued(a->m));
    for (int i = 0; i < 5; i++)
        assert_true(has_committed(a, envs[i].id));
    chp_mesh_stats st;
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(st.ctr.rej_pow, 1);
    struct chp_link *l = link_of(a, src.pk);
    assert_int_equal(l->rx_env, 6);
    assert_true(l->score > 0.9 && l->score < 1.1); /* the bad one, once */

    /* forwarded: one PUSHES to the new neighbour, five PUSH to the old */
    size_t np_new = 0, nps_new = 0, most = 0, np_old = 0, nps_old = 0, most_old = 0;
    size_t got_new = 0, got_old = 0;
    UNTIL(w, (got_new += raw_take_pushes(&neu, &np_new, &nps_new, &most)) == 5 &&
                 (got_old += raw_take_pushes(&old, &np_old, &nps_old, &most_old)) == 5);
    assert_int_equal(np_new, 0);
    assert_int_equal(nps_new, 1);
    assert_int_equal(most, 5);
    assert_int_equal(np_old, 5);
    assert_int_equal(nps_old, 0);
    assert_int_equal(link_of(a, neu.pk)->tx_env, 5);
    assert_int_equal(link_of(a, old.pk)->tx_env, 5);

    /* a frame to the new neighbour never overtakes its queued pushes */
    struct chp_link *ln = link_of(a, neu.pk);
    assert_rc(chp_link_send_push(a->m, ln, envs[6].b, envs[6].len), CHP_OK);
    assert_true(ln->pushq.len > 0); /* waits for the end of the round */
    uint8_t pf[16];
    assert_rc(chp_wire_ping(pf, sizeof pf, &fl, CHP_WIRE_PONG, 77), CHP_OK);
    assert_rc(chp_link_send(a->m, ln, pf, fl), CHP_OK);
    assert_int_equal(ln->pushq.len, 0);
    uint8_t types[2];
    for (int k = 0; k < 2; k++) {
        int n;
        uint64_t t0 = real_ms();
        while ((n = zmq_recv(neu.s, neu.last, sizeof neu.last, ZMQ_DONTWAIT)) < 0)
            assert_true(real_ms() - t0 < WAIT_MS);
        types[k] = neu.last[0];
    }
    assert_int_equal(types[0], CHP_WIRE_PUSHES);
    assert_int_equal(types[1], CHP_WIRE_PONG);
    raw_close(&src);
    raw_close(&neu);
    raw_close(&old);
}

/* A client that sends junk and no HELLO is banned at 10 points, and ZAP
 * refuses its key from then on; a HELLO of another version is answered
 * with our HELLO and a BYE. */
static void test_hostile_banned(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0);
    struct raw h;
    memset(&h, 0, sizeof h);
    raw_open(&h, a, 1);
    uint8_t v2[12] = {CHP_WIRE_HELLO, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
    raw_send(&h, v2, sizeof v2);
    UNTIL(w, raw_got(&h, CHP_WIRE_BYE, 0));
    assert_int_equal(h.m.u.bye.code, 1);
    chp_mesh_stats st;
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(st.connected, 0);
    /* five frames that are not HELLO, five that are no frames */
    for (int i = 0; i < 5; i++)
        raw_ping(&h, (uint64_t)i);
    /* (two spare: the score decays a little between poll rounds) */
    uint8_t junk[3] = {0xee, 1, 2};
    for (int i = 0; i < 7; i++)
        raw_send(&h, junk, sizeof junk);
    UNTIL(w, (chp_mesh_stats_get(a->m, &st), st.ctr.bans == 1));
    assert_true(st.ctr.rej_malformed >= 10 && st.ctr.rej_malformed <= 12);
    assert_true(chp_admit_banned(a->m, h.pk, w->ms));
    assert_null(link_of(a, h.pk));
    /* its connection is shut at the next check; its reconnects are refused */
    UNTIL(w, (chp_mesh_stats_get(a->m, &st), st.ctr.refused_banned >= 1));
    assert_null(link_of(a, h.pk));
    raw_close(&h);
    /* the ban lasts 30 s: then the key may come back */
    w->ms += 31000;
    raw_open(&h, a, 0);
    raw_hello(&h, 0);
    UNTIL(w, connected(a) == 1);
    raw_close(&h);
}

/* The user removes a neighbour: gone on both sides, and forgotten. */
static void test_peer_remove(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1);
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    UNTIL(w, connected(a) == 1 && connected(b) == 1);
    /* the key with another address is not that neighbour */
    char other[CHP_ADDR_STR_MAX + 1];
    fmt_addr(other, sizeof other, "127.0.0.9", 9, b->m->tpk);
    assert_rc(chp_mesh_peer_remove(a->m, other, strlen(other)), CHP_E_NOT_FOUND);
    int downs = a->downs;
    assert_rc(chp_mesh_peer_remove(a->m, b->addr, strlen(b->addr)), CHP_OK);
    assert_int_equal(connected(a), 0);
    /* the remover's own UI hears of it too (CONTROL.md "Events") */
    assert_int_equal(a->downs, downs + 1);
    assert_false(chp_link_remembered(a->m, b->addr));
    UNTIL(w, b->downs == 1 && connected(b) == 0);
    assert_rc(chp_mesh_peer_remove(a->m, b->addr, strlen(b->addr)), CHP_E_NOT_FOUND);
    /* a neighbour that only dialled us goes by its key with any host */
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    UNTIL(w, connected(a) == 1 && connected(b) == 1);
    char any[CHP_ADDR_STR_MAX + 1];
    fmt_addr(any, sizeof any, "127.0.0.9", 9, a->m->tpk);
    assert_rc(chp_mesh_peer_remove(b->m, any, strlen(any)), CHP_OK);
    assert_null(link_of(b, a->m->tpk));
}

/* A restarted node dials the neighbours it remembers; a ban ends with a
 * redial unless the user removed the neighbour meanwhile. */
static void test_restart_and_ban_redial(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1);
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    UNTIL(w, connected(a) == 1 && connected(b) == 1);
    uint8_t akey[32];
    memcpy(akey, a->m->tpk, 32);
    node_stop(a);
    UNTIL(w, connected(b) == 0);
    node_start(w, 0);
    assert_memory_equal(a->m->tpk, akey, 32); /* the same transport key */
    UNTIL(w, connected(a) == 1 && connected(b) == 1);
    assert_string_equal(peer_of(a, b->m->tpk).addr, b->addr);

    /* banned: dropped, and dialled again when the ban ends (30 s) */
    chp_link_ban(a->m, link_of(a, b->m->tpk), "test");
    assert_int_equal(connected(a), 0);
    assert_true(chp_admit_banned(a->m, b->m->tpk, w->ms));
    int ups = a->ups;
    run_for(w, 1000);
    assert_null(link_of(a, b->m->tpk));
    w->ms += 30000;
    UNTIL(w, a->ups == ups + 1 && connected(a) == 1);
    /* banned again (2 min now) and removed meanwhile: not dialled again */
    chp_link_ban(a->m, link_of(a, b->m->tpk), "test");
    assert_rc(chp_mesh_peer_remove(a->m, b->addr, strlen(b->addr)), CHP_OK);
    assert_false(chp_link_remembered(a->m, b->addr));
    w->ms += 121000;
    run_for(w, 1000);
    assert_null(link_of(a, b->m->tpk));
    assert_int_equal(a->m->ctr.bans, 2);
}

/* A full store refuses foreign envelopes (counted, logged once), but takes
 * one addressed to its user. */
static void test_store_full(void **state)
{
    struct world *w = *state;
    w->n[1].quota = 1; /* nothing foreign fits */
    w->n[1].mine_tag = envs[3].tag;
    struct node *a = node_start(w, 0), *b = node_start(w, 1);
    assert_rc(chp_mesh_peer_add(a->m, b->addr, strlen(b->addr)), CHP_OK);
    UNTIL(w, connected(a) == 1 && connected(b) == 1);
    run_for(w, 1000); /* the first sync is over */
    for (int i = 0; i < 4; i++)
        assert_rc(chp_mesh_publish(a->m, envs[i].b, envs[i].len), CHP_OK);
    chp_mesh_stats st;
    UNTIL(w, (chp_mesh_stats_get(b->m, &st), st.ctr.rej_full == 3 && stored(b, &envs[3])));
    assert_true(has_committed(b, envs[3].id));
    assert_false(stored(b, &envs[0]));
    chp_store_stats ss;
    chp_store_stats_get(b->store, &ss);
    assert_true(ss.full);
    assert_int_equal(ss.mine, 1);
    /* refusing is no misbehaviour */
    assert_true(link_of(b, a->m->tpk)->score == 0.0);
    /* A's sync a minute later offers them again, once; the one after
     * that skips what B did not keep lately */
    chp_mesh_stats sa;
    chp_mesh_stats_get(a->m, &sa);
    uint64_t done = sa.ctr.syncs_done, full = st.ctr.rej_full;
    w->ms += 60000;
    UNTIL(w, (chp_mesh_stats_get(a->m, &sa), sa.ctr.syncs_done == done + 1));
    UNTIL(w, (chp_mesh_stats_get(b->m, &st), st.ctr.rej_full == full + 3));
    w->ms += 60000;
    UNTIL(w, (chp_mesh_stats_get(a->m, &sa), sa.ctr.syncs_done == done + 2));
    run_for(w, 200);
    chp_mesh_stats_get(b->m, &st);
    assert_int_equal(st.ctr.rej_full, full + 3);
}

/* A relay commits in its pipeline; what A publishes reaches B through it,
 * and A finds a second relay through the first one's PEERS. */
static void test_relay_and_view(void **state)
{
    struct world *w = *state;
    w->n[2].relay = w->n[3].relay = 1;
    struct node *a = node_start(w, 0), *b = node_start(w, 1), *r = node_start(w, 2),
                *r2 = node_start(w, 3);
    assert_rc(chp_mesh_peer_add(r->m, r2->addr, strlen(r2->addr)), CHP_OK);
    UNTIL(w, connected(r) == 1 && connected(r2) == 1);
    assert_rc(chp_mesh_peer_add(a->m, r->addr, strlen(r->addr)), CHP_OK);
    assert_rc(chp_mesh_peer_add(b->m, r->addr, strlen(r->addr)), CHP_OK);
    /* R tells A of R2 (a relay), A has one live link: it dials R2 */
    UNTIL(w, link_up(a, r2->m->tpk) && link_up(b, r->m->tpk));
    assert_true(link_of(a, r2->m->tpk)->promoted);
    chp_mesh_stats st;
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(st.connected, 2);
    assert_int_equal(st.relays, 2);
    for (int i = 0; i < 5; i++)
        assert_rc(chp_mesh_publish(a->m, envs[i].b, envs[i].len), CHP_OK);
    UNTIL(w, b->ncommitted >= 5 && r->ncommitted >= 5 && r2->ncommitted >= 5);
    for (int i = 0; i < 5; i++)
        assert_true(has_committed(b, envs[i].id));
    chp_mesh_stats_get(r->m, &st);
    assert_int_equal(st.ctr.accepted, 5);
}

/* A user node's LAN listener: a neighbour dials it with its own LAN key,
 * the listener is replaced on a timer, the previous one stays while a
 * link uses it and goes (with its links) at the next rotation. */
static void test_lan_rotation(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1);
    assert_rc(chp_lan_rotate(a->m), CHP_OK);
    assert_rc(chp_lan_rotate(b->m), CHP_OK);
    struct chp_lan *al = &a->m->lan[0];
    assert_non_null(al->router);
    assert_true(al->port > 0);
    assert_int_equal(al->gen, 1);
    assert_int_equal(a->m->lan_period_ms, (uint64_t)CHP_LAN_KEY_SECONDS * 1000);
    char lan_addr[CHP_ADDR_STR_MAX + 1];
    fmt_addr(lan_addr, sizeof lan_addr, "127.0.0.1", al->port, al->pk);
    /* its own LAN listener is this node */
    assert_rc(chp_mesh_peer_add(a->m, lan_addr, strlen(lan_addr)), CHP_E_ARG);
    uint8_t blan[32];
    memcpy(blan, b->m->lan[0].pk, 32);
    assert_rc(chp_link_add_discovered(b->m, lan_addr, strlen(lan_addr)), CHP_OK);
    UNTIL(w, link_up(a, blan) && connected(b) == 1);
    struct chp_link *la = link_of(a, blan);
    assert_int_equal(la->lan_gen, 1);
    assert_int_equal(la->listen_port, b->m->lan[0].port); /* B's HELLO names its listener */
    assert_int_equal(link_of(b, al->pk)->lan_gen, b->m->lan[0].gen);
    assert_null(link_of(a, b->m->tpk)); /* nothing names B's transport key */
    /* the period is over: a new listener, the old one kept for the link */
    a->m->lan_period_ms = 1000;
    w->ms += 1000;
    UNTIL(w, a->m->lan[0].gen == 2);
    assert_int_equal(a->m->lan[1].gen, 1);
    run_for(w, 100);
    assert_non_null(a->m->lan[1].router);
    assert_true(link_up(a, blan));
    /* the next one closes generation 1 and its link */
    a->m->lan_moved = 1; /* as when this machine's addresses change */
    UNTIL(w, a->m->lan[0].gen == 3);
    assert_int_equal(a->m->lan_moved, 0);
    assert_null(link_of(a, blan));
    UNTIL(w, connected(b) == 0);
    /* a previous listener nobody uses is closed by the loop */
    UNTIL(w, a->m->lan[1].router == NULL);
    chp_lan_close_all(a->m);
    assert_null(a->m->lan[0].router);
}

/* Beacons heard over loopback: a UDP socket of the test's on 127.0.0.1
 * stands in for A's beacon socket (A never sends a beacon: its next one is
 * due at the end of time). A candidate heard twice is dialled with A's
 * LAN key; when it stops beaconing and goes down, its place is freed. */
static void beacon_to(int fd, const struct sockaddr_in *to, uint16_t port, const uint8_t key[32])
{
    uint8_t b[CHP_BEACON_LEN];
    chp_beacon bc = {.relay = 0, .port = port};
    memcpy(bc.key, key, 32);
    chp_beacon_build(&bc, b);
    assert_int_equal(sendto(fd, b, sizeof b, 0, (const struct sockaddr *)to, sizeof *to),
                     CHP_BEACON_LEN);
}

/* A UDP socket on host (loopback), port 0; its address in *sa. */
static int udp_on(const char *host, struct sockaddr_in *sa)
{
    socklen_t sl = sizeof *sa;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, host, &sa->sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &sl), 0);
    return fd;
}

static void test_discovery_loopback(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0), *b = node_start(w, 1);
    assert_rc(chp_lan_rotate(a->m), CHP_OK);
    assert_rc(chp_lan_rotate(b->m), CHP_OK);
    struct sockaddr_in sa, sa_tx, sa_tx2;
    int rx = udp_on("127.0.0.1", &sa), tx = udp_on("127.0.0.1", &sa_tx),
        tx2 = udp_on("127.0.0.2", &sa_tx2);
    a->m->next_beacon = UINT64_MAX; /* first: no beacon, ever */
    a->m->disc_fd = rx;
    assert_true(chp_mesh_discovery_on(a->m));

    uint8_t bk[32]; /* (a copy: B's mesh goes below) */
    memcpy(bk, b->m->lan[0].pk, 32);
    uint16_t bport = b->m->lan[0].port;
    beacon_to(tx, &sa, a->m->lan[0].port, a->m->lan[0].pk); /* our own: ignored */
    uint8_t bad[CHP_BEACON_LEN] = "XHPB";
    assert_int_equal(sendto(tx, bad, sizeof bad, 0, (struct sockaddr *)&sa, sizeof sa),
                     CHP_BEACON_LEN);
    beacon_to(tx, &sa, 0, bk); /* not listening: ignored */
    beacon_to(tx, &sa, bport, bk);
    beacon_to(tx, &sa, bport, bk); /* heard twice: a candidate to dial */
    UNTIL(w, link_up(a, bk));
    assert_true(link_of(a, bk)->discovered);
    assert_int_equal(link_of(a, bk)->lan_gen, a->m->lan[0].gen); /* dialled with A's LAN key */
    assert_true(link_up(b, a->m->lan[0].pk));
    chp_mesh_stats st;
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(st.ctr.beacons_rx, 2);
    assert_int_equal(st.ctr.beacons_bad, 1);

    /* a beacon naming a port where nobody answers: probed, dropped 5 s on */
    uint8_t dk[32];
    uint16_t dport;
    int dfd = dead_port(&dport);
    chp_rng_fill(chp_rng_system(), dk, 32);
    beacon_to(tx, &sa, dport, dk);
    beacon_to(tx, &sa, dport, dk);
    UNTIL(w, link_of(a, dk) != NULL);
    assert_false(link_up(a, dk));
    w->ms += 5000;
    UNTIL(w, link_of(a, dk) == NULL);
    /* one heard from another host */
    uint8_t k2[32];
    chp_rng_fill(chp_rng_system(), k2, 32);
    beacon_to(tx2, &sa, 1, k2);
    UNTIL(w, (chp_mesh_stats_get(a->m, &st), st.ctr.beacons_rx == 5));

    /* B goes down but still beacons: 30 s later its place is freed (and
     * it is probed again, with a fresh link) */
    uint32_t old_id = link_of(a, bk)->id;
    node_stop(b);
    UNTIL(w, !link_up(a, bk));
    w->step = 1000;
    for (int k = 0; k < 60; k++) {
        beacon_to(tx, &sa, bport, bk);
        step(w);
        step(w);
        if (!link_of(a, bk) || link_of(a, bk)->id != old_id)
            break;
    }
    assert_true(!link_of(a, bk) || link_of(a, bk)->id != old_id);
    /* its beacons stop: the probe fails, the candidate expires */
    UNTIL(w, !link_of(a, bk));
    w->step = 10;
    /* four candidates per host at most: a fifth takes the oldest's place */
    run_for(w, 100);
    chp_mesh_stats_get(a->m, &st);
    uint64_t heard = st.ctr.beacons_rx;
    for (int i = 0; i < 5; i++) {
        uint8_t k[32];
        chp_rng_fill(chp_rng_system(), k, 32);
        beacon_to(tx, &sa, 1, k);
    }
    UNTIL(w, (chp_mesh_stats_get(a->m, &st), st.ctr.beacons_rx == heard + 5));

    /* over IPv6 loopback too, where there is one */
    int rx6 = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in6 s6;
    socklen_t sl6 = sizeof s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    s6.sin6_addr = in6addr_loopback;
    if (rx6 >= 0 && bind(rx6, (struct sockaddr *)&s6, sizeof s6) == 0 &&
        getsockname(rx6, (struct sockaddr *)&s6, &sl6) == 0) {
        int tx6 = socket(AF_INET6, SOCK_DGRAM, 0);
        uint8_t b6[CHP_BEACON_LEN];
        chp_beacon bc = {.relay = 1, .port = 1};
        memcpy(bc.key, k2, 32);
        chp_beacon_build(&bc, b6);
        assert_true(tx6 >= 0);
        uint64_t before = st.ctr.beacons_rx;
        a->m->disc6_fd = rx6;
        rx6 = -1;
        assert_int_equal(sendto(tx6, b6, sizeof b6, 0, (struct sockaddr *)&s6, sizeof s6),
                         CHP_BEACON_LEN);
        UNTIL(w, (chp_mesh_stats_get(a->m, &st), st.ctr.beacons_rx == before + 1));
        close(tx6);
    }
    if (rx6 >= 0)
        close(rx6);
    /* off: the sockets are closed (they were the test's) */
    assert_rc(chp_mesh_discovery(a->m, 0), CHP_OK);
    assert_false(chp_mesh_discovery_on(a->m));
    assert_int_equal(a->m->disc_fd, -1);
    assert_int_equal(a->m->disc6_fd, -1);
    close(tx);
    close(tx2);
    close(dfd);
}

/* A with room for one neighbour, B dialled it, C dialled it and was
 * refused: the three of them. */
static void full_view(struct world *w, struct node **a, struct node **b, struct node **c)
{
    *a = node_start(w, 0);
    *b = node_start(w, 1);
    *c = node_start(w, 2);
    (*a)->m->active_max = 1;
    assert_rc(chp_mesh_peer_add((*b)->m, (*a)->addr, strlen((*a)->addr)), CHP_OK);
    UNTIL(w, connected(*a) == 1 && connected(*b) == 1);
    assert_rc(chp_mesh_peer_add((*c)->m, (*a)->addr, strlen((*a)->addr)), CHP_OK);
    UNTIL(w, !strcmp(peer_state(*c, (*a)->m->tpk), "refused"));
}

/* A full active view declines a newcomer until its idle neighbour is old
 * enough to make room; a friends-only node declines strangers. */
static void test_active_view_and_allow(void **state)
{
    struct world *w = *state;
    struct node *a, *b, *c;
    full_view(w, &a, &b, &c);
    assert_non_null(strstr(peer_of(c, a->m->tpk).reason, "refused"));
    chp_mesh_stats st;
    chp_mesh_stats_get(a->m, &st);
    assert_true(st.ctr.refused_full_view >= 1);
    assert_int_equal(st.ctr.evictions, 0);
    /* (libzmq gives up a connection ZAP refused: C dials anew) */
    assert_rc(chp_mesh_peer_remove(c->m, a->addr, strlen(a->addr)), CHP_OK);
    /* B has brought nothing for 10 s: it makes room for C */
    w->ms += 11000;
    run_for(w, 100);
    assert_rc(chp_mesh_peer_add(c->m, a->addr, strlen(a->addr)), CHP_OK);
    UNTIL(w, link_up(a, c->m->tpk));
    chp_mesh_stats_get(a->m, &st);
    assert_int_equal(st.ctr.evictions, 1);
    assert_null(link_of(a, b->m->tpk));
    assert_true(a->downs >= 1);

    /* D takes only a key it does not know */
    w->n[3].nallow = 1;
    chp_rng_fill(chp_rng_system(), w->n[3].allow[0], 32);
    struct node *d = node_start(w, 3);
    assert_rc(chp_mesh_peer_add(b->m, d->addr, strlen(d->addr)), CHP_OK);
    UNTIL(w, !strcmp(peer_state(b, d->m->tpk), "refused"));
    chp_mesh_stats_get(d->m, &st);
    assert_true(st.ctr.refused_allow >= 1);
    assert_int_equal(st.connected, 0);
}

/* A node whose dial a full active view refused dials again by itself,
 * backing off: once the view has room it links, with no restart and no
 * new peer add. (libzmq gives a connection up for good once ZAP refuses
 * it; the mesh must not.) */
static void test_refused_redials(void **state)
{
    struct world *w = *state;
    struct node *a, *b, *c;
    full_view(w, &a, &b, &c);
    /* B has brought nothing for 10 s: A's view has room for C now */
    w->ms += 11000;
    UNTIL(w, link_up(a, c->m->tpk) && link_up(c, a->m->tpk));
    assert_string_equal(peer_state(c, a->m->tpk), "connected");
}

/* What chp_mesh_new refuses, and what it does with a busy port. */
static void test_mesh_new(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0);
    char spec[64];
    snprintf(spec, sizeof spec, "127.0.0.1:%u", (unsigned)a->m->port);
    w->n[1].listen = "nonsense";
    assert_rc(node_try_start(&w->n[1]), CHP_E_ADDR_FORMAT);
    /* a relay's address is published: it does not move */
    w->n[1].listen = spec;
    w->n[1].relay = 1;
    assert_rc(node_try_start(&w->n[1]), CHP_E_IO);
    /* a user node takes another port and says which */
    w->n[1].relay = 0;
    struct node *b = node_start(w, 1);
    assert_int_equal(b->m->port_moved, a->m->port);
    assert_true(b->m->port != a->m->port);
    /* --peer: a bad one fails the start, a good one is dialled */
    w->n[2].peers[0] = "127.0.0.1:1/notakey";
    w->n[2].npeers = 1;
    assert_rc(node_try_start(&w->n[2]), CHP_E_ADDR_KEY);
    w->n[2].peers[0] = a->addr;
    struct node *c = node_start(w, 2);
    UNTIL(w, link_up(c, a->m->tpk));
    assert_true(chp_link_remembered(c->m, a->addr));
    /* a remembered line that is no address is skipped at the start */
    node_stop(c);
    chp_store *s = NULL;
    char list[2 * CHP_ADDR_STR_MAX + 16];
    int ll = snprintf(list, sizeof list, "junk\n%s\n", a->addr);
    assert_rc(chp_store_open(c->dir, NULL, &s, NULL), CHP_OK);
    assert_rc(chp_store_setting_put(s, "peers", list, (size_t)ll), CHP_OK);
    chp_store_close(&s);
    w->n[2].npeers = 0;
    node_start(w, 2);
    UNTIL(w, link_up(c, a->m->tpk));
}

/* One key gets three connections at once, not a fourth. */
static void test_conns_per_key(void **state)
{
    struct world *w = *state;
    struct node *a = node_start(w, 0);
    struct raw r[4];
    memset(r, 0, sizeof r);
    raw_open(&r[0], a, 1);
    raw_hello(&r[0], 0);
    UNTIL(w, connected(a) == 1);
    chp_mesh_stats st;
    for (int i = 1; i < 4; i++) {
        memcpy(r[i].pk, r[0].pk, 32);
        memcpy(r[i].sk, r[0].sk, 32);
        raw_open(&r[i], a, 0);
        raw_hello(&r[i], 0);
        if (i < 3)
            UNTIL(w, chp_conns_of_key(a->m, r[0].pk) == (size_t)i + 1);
    }
    UNTIL(w, (chp_mesh_stats_get(a->m, &st), st.ctr.conns_refused == 1));
    assert_int_equal(chp_conns_of_key(a->m, r[0].pk), 3);
    assert_int_equal(st.connected, 1); /* one neighbour, whatever its connections */
    for (int i = 0; i < 4; i++)
        raw_close(&r[i]);
}

int main(void)
{
    chp_log_set_level(CHP_LOG_ERROR);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_dial_hello),
        T(test_publish_chain),
        T(test_sync_before_link),
        T(test_sync_walk_budget),
        T(test_sync_beyond_window),
        T(test_flow_pong_per_step),
        T(test_triangle_prune),
        T(test_own_announced_to_all),
        T(test_query_held),
        T(test_wire_peer),
        T(test_wire_pushes),
        T(test_hostile_banned),
        T(test_peer_remove),
        T(test_restart_and_ban_redial),
        T(test_store_full),
        T(test_relay_and_view),
        T(test_lan_rotation),
        T(test_discovery_loopback),
        T(test_active_view_and_allow),
        T(test_refused_redials),
        T(test_mesh_new),
        T(test_conns_per_key),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
