/* lab_hostile.c - the hostile node of bench/lab (issue 19), run inside one
 * network namespace of the lab's LAN. It finds its victims the way a node
 * does, by the LAN beacons it hears, and dials them as a raw CURVE
 * neighbour (the integration harness's h_raw_dial).
 *
 *   chapar-lab-hostile flood SECONDS IDSFILE [fresh]
 *       valid-PoW #lan posts (by one author key, or with "fresh" a new
 *       author key for every post) sealed as fast as one core allows, each pushed
 *       to every node heard, with a malformed frame after every 16 posts
 *       and a Negentropy frame asking for a whole-range walk after every
 *       8; a refused or dropped key is replaced by a fresh one (a ban
 *       costs the attacker nothing). Appends "ID LEN" (hex, decimal) of
 *       every post made to IDSFILE.
 *   chapar-lab-hostile sybil SECONDS KEYS BCAST
 *       KEYS listeners, each with a key of its own, beaconed to BCAST as
 *       KEYS nodes; dials every node heard with each key, says HELLO and a
 *       PEERS naming its own listeners, then answers nothing at all.
 *   chapar-lab-hostile count IDSFILE HOME...
 *       after a run, with the nodes stopped: per HOME one line
 *       "HOME\tHOSTILE\tHOSTILE_BYTES\tSTORED\tSTORED_BYTES" from its store.
 *
 * Prints one progress line a second; exit 0 at the end, 1 when it cannot
 * run, 2 on bad usage. */
#define _DEFAULT_SOURCE
#include "bench/benchlib.h"
#include "node/mesh/beacon.h"
#include "node/store/store.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/hex.h"
#include "proto/identity.h"
#include "proto/wire.h"
#include "tests/integration/harness.h" /* h_raw_dial, h_curve_keys, h_zmq_monitor */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define BEACON_PORT   7668
#define TARGETS_MAX   64
#define SYBIL_MAX     256
#define SYBIL_PORT0   21000
#define POST_TTL      (3u * 86400u)
#define MALFORM_EVERY 16
#define NEG_EVERY     8

/* A node heard on the LAN, and our link to it. */
struct target {
    char host[64];
    uint16_t port;
    uint8_t key[32];
    void *s, *mon;
    uint64_t redial_ms; /* 0: linked (or dialling) */
    long dials;
    int greeted; /* sybil: HELLO and PEERS sent on this link */
};

struct hostile {
    void *zctx;
    int udp;
    struct target t[TARGETS_MAX];
    size_t nt;
    uint64_t end_ms;
    struct in_addr self; /* beacons from here are our own (sybil) */
};

static int udp_listen(void)
{
    int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(BEACON_PORT)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "chapar-lab-hostile: UDP port %d: %s\n", BEACON_PORT, strerror(errno));
        return -1;
    }
    return fd;
}

/* Dials t with a fresh key and says HELLO (queued until the handshake). */
static void dial(struct hostile *x, struct target *t)
{
    chp_addr a = {0};
    h_node n = {0};
    snprintf(a.host, sizeof a.host, "%s", t->host);
    a.port = t->port;
    memcpy(a.key, t->key, 32);
    if (chp_addr_format(&a, n.addr, sizeof n.addr) != CHP_OK)
        return;
    t->s = h_raw_dial(x->zctx, &n, NULL, NULL, NULL, NULL, &t->mon);
    int hwm = 64, tmo = 0;
    zmq_setsockopt(t->s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(t->s, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    uint8_t f[16];
    size_t fl;
    if (chp_wire_hello(f, sizeof f, &fl, CHP_CAP_NEG, 0, CHP_WIRE_MAX_FRAME) == CHP_OK)
        (void)zmq_send(t->s, f, fl, ZMQ_DONTWAIT);
    t->redial_ms = 0;
    t->dials++;
}

/* Every beacon waiting on the UDP socket: a node not known yet becomes a
 * target (the same node under a rotated key is a new one, as for a node). */
static void hear(struct hostile *x, int dial_new)
{
    uint8_t b[64];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t r;
    while ((r = recvfrom(x->udp, b, sizeof b, 0, (struct sockaddr *)&from, &fl)) > 0) {
        chp_beacon bc;
        if (chp_beacon_parse(b, (size_t)r, &bc) != 0 || !bc.port ||
            from.sin_addr.s_addr == x->self.s_addr)
            continue;
        int known = 0;
        for (size_t i = 0; i < x->nt && !known; i++)
            known = !memcmp(x->t[i].key, bc.key, 32);
        if (known || x->nt == TARGETS_MAX)
            continue;
        struct target *t = &x->t[x->nt++];
        memset(t, 0, sizeof *t);
        inet_ntop(AF_INET, &from.sin_addr, t->host, sizeof t->host);
        t->port = bc.port;
        memcpy(t->key, bc.key, 32);
        if (dial_new)
            dial(x, t);
        printf("heard %s:%u\n", t->host, (unsigned)t->port);
    }
}

/* Closes a link the node dropped or refused; it is dialled again with a
 * fresh key a second later. */
static void watch(struct target *t, uint64_t now)
{
    if (!t->s) {
        if (t->redial_ms && now >= t->redial_ms)
            t->redial_ms = 0; /* the caller dials */
        return;
    }
    zmq_pollitem_t pi = {t->mon, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&pi, 1, 0) > 0) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        zmq_msg_init(&addr);
        uint16_t e = 0;
        if (zmq_msg_recv(&ev, t->mon, 0) >= 2 && zmq_msg_recv(&addr, t->mon, 0) >= 0)
            memcpy(&e, zmq_msg_data(&ev), 2);
        zmq_msg_close(&ev);
        zmq_msg_close(&addr);
        if (e == ZMQ_EVENT_DISCONNECTED || e == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
            e == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || e == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            h_raw_close(t->s, t->mon);
            t->s = t->mon = NULL;
            t->greeted = 0;
            t->redial_ms = now + 1000;
            return;
        }
    }
}

/* Reads what the node sent; a flooder answers PINGs (so the link looks
 * alive), a sybil nothing. */
/* Bytes the honest nodes sent us, by frame type (0: what does not parse):
 * the upstream bandwidth the attack gets from them directly. */
static uint64_t rx_bytes[16];
/* Of the envelopes pushed to us: our own posts coming back, and the bytes
 * of those (the rest is the honest nodes' own traffic). */
static uint64_t rx_own, rx_own_bytes, rx_env;
#define OWN_SLOTS 65536
static uint64_t own_ids[OWN_SLOTS]; /* first 8 bytes of our posts' ids, 0 = free */

static uint64_t id_word(const uint8_t id[32])
{
    uint64_t w;
    memcpy(&w, id, 8);
    return w ? w : 1;
}

static void own_add(const uint8_t id[32])
{
    uint64_t w = id_word(id);
    for (size_t i = 0, k = (size_t)(w % OWN_SLOTS); i < OWN_SLOTS; i++, k = (k + 1) % OWN_SLOTS)
        if (!own_ids[k] || own_ids[k] == w) {
            own_ids[k] = w;
            return;
        }
}

static int own_has(const uint8_t id[32])
{
    uint64_t w = id_word(id);
    for (size_t i = 0, k = (size_t)(w % OWN_SLOTS); i < OWN_SLOTS && own_ids[k];
         i++, k = (k + 1) % OWN_SLOTS)
        if (own_ids[k] == w)
            return 1;
    return 0;
}

static void tally_env(const uint8_t *env, size_t len)
{
    uint8_t id[32];
    chp_envelope_id(env, len, id);
    rx_env++;
    if (own_has(id)) {
        rx_own++;
        rx_own_bytes += len;
    }
}

static void drain(void *s, int pong)
{
    static uint8_t in[CHP_WIRE_MAX_FRAME];
    int n;
    while ((n = zmq_recv(s, in, sizeof in, ZMQ_DONTWAIT)) >= 0) {
        chp_wire_msg m;
        int ok = n <= (int)sizeof in && chp_wire_decode(in, (size_t)n, &m) == CHP_OK;
        rx_bytes[ok && m.type < 16 ? m.type : 0] += (uint64_t)n;
        if (ok && m.type == CHP_WIRE_PUSH)
            tally_env(m.u.push.env, m.u.push.len);
        if (ok && m.type == CHP_WIRE_PUSHES) {
            const uint8_t *env;
            size_t off = 0, elen;
            while (chp_wire_pushes_next(&m, &off, &env, &elen) == CHP_OK)
                tally_env(env, elen);
        }
        if (!pong || !ok || m.type != CHP_WIRE_PING)
            continue;
        uint8_t f[16];
        size_t fl;
        if (chp_wire_ping(f, sizeof f, &fl, CHP_WIRE_PONG, m.u.nonce) == CHP_OK)
            (void)zmq_send(s, f, fl, ZMQ_DONTWAIT);
    }
}

/* ---- flood ---- */

/* One #lan post from me, sealed with its proof of work as a node's
 * messaging layer makes it (h_room_post). */
static int seal_post(const chp_identity *me, long seq, uint8_t *env, size_t cap, size_t *len)
{
    char text[96];
    snprintf(text, sizeof text, "buy cheap followers now, offer %ld, reply fast!", seq);
    return h_room_post(me, "#lan", "mallory", text, POST_TTL, env, cap, len);
}

static void send_all(struct hostile *x, const uint8_t *f, size_t fl, long *sent)
{
    for (size_t i = 0; i < x->nt; i++)
        if (x->t[i].s && zmq_send(x->t[i].s, f, fl, ZMQ_DONTWAIT) == (int)fl)
            (*sent)++;
}

/* The abuse frames between posts: junk that parses as nothing, and a
 * Negentropy opening whose fingerprint matches nothing (a walk of the
 * node's whole index for 26 bytes). */
static void abuse(struct hostile *x, long seq, long *sent)
{
    static const uint8_t junk[] = {0xee, 0x01, 0x02, 0x03};
    if (seq % MALFORM_EVERY == 0)
        send_all(x, junk, sizeof junk, sent);
    if (seq % NEG_EVERY == 0) {
        uint8_t msg[20] = {0x61, 0x00, 0x00, 0x01}, f[64];
        size_t fl;
        memset(msg + 4, 0xa5, 16);
        if (chp_wire_neg(f, sizeof f, &fl, (uint32_t)seq, CHP_NEG_FROM_INITIATOR, msg,
                         sizeof msg) == CHP_OK)
            send_all(x, f, fl, sent);
    }
}

static void tend(struct hostile *x, int dial_new, int pong)
{
    uint64_t now = chp_mono_ms();
    hear(x, dial_new);
    for (size_t i = 0; i < x->nt; i++) {
        watch(&x->t[i], now);
        if (!x->t[i].s && !x->t[i].redial_ms && dial_new)
            dial(x, &x->t[i]);
        if (x->t[i].s)
            drain(x->t[i].s, pong);
    }
}

/* fresh: a new author key for every post (keys cost nothing to make). */
static int flood(struct hostile *x, const char *idsfile, int fresh)
{
    FILE *ids = fopen(idsfile, "a");
    chp_identity *me = NULL;
    if (!ids || chp_identity_generate(chp_rng_system(), &me) != CHP_OK) {
        fprintf(stderr, "chapar-lab-hostile: cannot start the flood (%s)\n", idsfile);
        return 1;
    }
    static uint8_t env[CHP_ENV_MAX_BYTES], f[1 + CHP_ENV_MAX_BYTES];
    long seq = 0, sent = 0, last_seq = 0;
    uint64_t tick = chp_mono_ms();
    while (chp_mono_ms() < x->end_ms && !bench_stopped()) {
        size_t len, fl;
        uint8_t id[32];
        char hex[65];
        if (fresh) {
            chp_identity_destroy(&me);
            if (chp_identity_generate(chp_rng_system(), &me) != CHP_OK)
                break;
        }
        if (seal_post(me, ++seq, env, sizeof env, &len) != CHP_OK ||
            chp_wire_push(f, sizeof f, &fl, env, len) != CHP_OK)
            break;
        chp_envelope_id(env, len, id);
        own_add(id);
        chp_hex_encode(id, 32, hex);
        fprintf(ids, "%s %zu\n", hex, len);
        send_all(x, f, fl, &sent);
        abuse(x, seq, &sent);
        tend(x, 1, 1);
        if (chp_mono_ms() - tick >= 1000) {
            long dials = 0;
            for (size_t i = 0; i < x->nt; i++)
                dials += x->t[i].dials;
            uint64_t rx = 0;
            for (size_t i = 0; i < 16; i++)
                rx += rx_bytes[i];
            printf("flood: %ld posts (%ld/s), %ld frames sent, %zu nodes heard, %ld dials; "
                   "received %llu bytes (push %llu, neg %llu, ihave %llu, peers %llu); "
                   "pushed to us %llu envelopes, %llu of them our own posts (%llu bytes)\n",
                   seq, seq - last_seq, sent, x->nt, dials, (unsigned long long)rx,
                   (unsigned long long)(rx_bytes[CHP_WIRE_PUSH] + rx_bytes[CHP_WIRE_PUSHES]),
                   (unsigned long long)rx_bytes[CHP_WIRE_NEG],
                   (unsigned long long)rx_bytes[CHP_WIRE_IHAVE],
                   (unsigned long long)rx_bytes[CHP_WIRE_PEERS], (unsigned long long)rx_env,
                   (unsigned long long)rx_own, (unsigned long long)rx_own_bytes);
            fflush(stdout);
            last_seq = seq;
            tick = chp_mono_ms();
        }
    }
    fclose(ids);
    chp_identity_destroy(&me);
    return 0;
}

/* ---- sybil ---- */

struct sybil {
    void *srv[SYBIL_MAX];
    uint8_t pk[SYBIL_MAX][32], sk[SYBIL_MAX][32];
    char addr[SYBIL_MAX][CHP_ADDR_STR_MAX + 1];
    int n;
};

/* Listener i: a CURVE server on SYBIL_PORT0 + i with a key of its own;
 * libzmq completes every handshake, and nothing is ever answered. */
static int sybil_listen(struct hostile *x, struct sybil *y, int i, const char *myip)
{
    int one = 1, zero = 0;
    char ep[64];
    h_curve_keys(y->pk[i], y->sk[i]);
    y->srv[i] = zmq_socket(x->zctx, ZMQ_ROUTER);
    snprintf(ep, sizeof ep, "tcp://0.0.0.0:%d", SYBIL_PORT0 + i);
    if (!y->srv[i] || zmq_setsockopt(y->srv[i], ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(y->srv[i], ZMQ_CURVE_SECRETKEY, y->sk[i], 32) ||
        zmq_setsockopt(y->srv[i], ZMQ_LINGER, &zero, sizeof zero) || zmq_bind(y->srv[i], ep))
        return -1;
    chp_addr a = {0};
    snprintf(a.host, sizeof a.host, "%s", myip);
    a.port = (uint16_t)(SYBIL_PORT0 + i);
    memcpy(a.key, y->pk[i], 32);
    return chp_addr_format(&a, y->addr[i], sizeof y->addr[i]) == CHP_OK ? 0 : -1;
}

static void sybil_beacons(int fd, const struct sybil *y, const struct sockaddr_in *to)
{
    for (int i = 0; i < y->n; i++) {
        chp_beacon bc = {.relay = 0, .port = (uint16_t)(SYBIL_PORT0 + i)};
        uint8_t b[CHP_BEACON_LEN];
        memcpy(bc.key, y->pk[i], 32);
        chp_beacon_build(&bc, b);
        (void)sendto(fd, b, sizeof b, 0, (const struct sockaddr *)to, sizeof *to);
    }
}

/* A PEERS of up to 32 of our listeners on a new link (dial() said HELLO). */
static void sybil_greet(struct target *t, const struct sybil *y, int first)
{
    t->greeted = 1;
    const char *addrs[CHP_WIRE_MAX_PEERS];
    uint8_t n = 0, f[CHP_WIRE_MAX_PEERS * (CHP_ADDR_STR_MAX + 2) + 8];
    size_t fl;
    for (int i = 0; i < CHP_WIRE_MAX_PEERS && n < y->n; i++)
        addrs[n++] = y->addr[(first + i) % y->n];
    if (chp_wire_peers(f, sizeof f, &fl, addrs, n) == CHP_OK)
        (void)zmq_send(t->s, f, fl, ZMQ_DONTWAIT);
}

/* The IPv4 address the kernel would send to bcast from (our address on
 * the LAN), for the addresses our listeners are announced at. */
static int my_ip(const char *bcast, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)}, me;
    socklen_t ml = sizeof me;
    inet_pton(AF_INET, bcast, &to.sin_addr);
    to.sin_addr.s_addr = htonl((ntohl(to.sin_addr.s_addr) & 0xffffff00u) | 1u);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&to, sizeof to) == 0 &&
             getsockname(fd, (struct sockaddr *)&me, &ml) == 0 &&
             inet_ntop(AF_INET, &me.sin_addr, out, (socklen_t)cap);
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

static int sybil(struct hostile *x, int keys, const char *bcast)
{
    static struct sybil y;
    char ip[64];
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(BEACON_PORT)};
    if (keys < 1 || keys > SYBIL_MAX || inet_pton(AF_INET, bcast, &to.sin_addr) != 1 ||
        my_ip(bcast, ip, sizeof ip) != 0 || inet_pton(AF_INET, ip, &x->self) != 1) {
        fprintf(stderr, "chapar-lab-hostile: sybil needs 1..%d keys and a broadcast address\n",
                SYBIL_MAX);
        return 2;
    }
    for (y.n = 0; y.n < keys; y.n++)
        if (sybil_listen(x, &y, y.n, ip) != 0) {
            fprintf(stderr, "chapar-lab-hostile: cannot listen on port %d\n", SYBIL_PORT0 + y.n);
            return 1;
        }
    uint64_t beacon = 0, tick = chp_mono_ms();
    static uint8_t in[CHP_WIRE_MAX_FRAME];
    long frames = 0;
    while (chp_mono_ms() < x->end_ms && !bench_stopped()) {
        if (chp_mono_ms() >= beacon) {
            sybil_beacons(x->udp, &y, &to);
            beacon = chp_mono_ms() + 1000;
        }
        tend(x, 1, 0);
        for (size_t i = 0; i < x->nt; i++) /* every new link: its PEERS */
            if (x->t[i].s && !x->t[i].greeted)
                sybil_greet(&x->t[i], &y, (int)(x->t[i].dials + (long)i));
        for (int i = 0; i < y.n; i++) /* swallow what the nodes say */
            while (zmq_recv(y.srv[i], in, sizeof in, ZMQ_DONTWAIT) >= 0)
                frames++;
        if (chp_mono_ms() - tick >= 1000) {
            printf("sybil: %d keys beaconed, %zu nodes heard, %ld frames swallowed\n", y.n, x->nt,
                   frames);
            fflush(stdout);
            tick = chp_mono_ms();
        }
        h_sleep_ms(20);
    }
    for (int i = 0; i < y.n; i++)
        zmq_close(y.srv[i]);
    return 0;
}

/* ---- count ---- */

static int count(const char *idsfile, int nhomes, char **homes)
{
    FILE *f = fopen(idsfile, "r");
    size_t n = 0, cap = 0;
    struct rec {
        uint8_t id[32];
        size_t len;
    } *r = NULL;
    char hex[80];
    size_t len;
    while (f && fscanf(f, "%79s %zu", hex, &len) == 2) {
        if (n == cap && !(r = realloc(r, (cap = cap ? 2 * cap : 4096) * sizeof *r)))
            return 1;
        if (strlen(hex) == 64 && chp_hex_decode(hex, 64, r[n].id, 32) == CHP_OK)
            r[n++].len = len;
    }
    if (f)
        fclose(f);
    for (int h = 0; h < nhomes; h++) {
        chp_store *s = NULL;
        chp_store_opts so = {0};
        if (chp_store_open(homes[h], &so, &s, NULL) != CHP_OK) {
            printf("%s\t-\t-\t-\t-\n", homes[h]);
            continue;
        }
        long hits = 0;
        unsigned long long bytes = 0;
        for (size_t i = 0; i < n; i++)
            if (chp_store_has(s, r[i].id) == 1) {
                hits++;
                bytes += r[i].len;
            }
        chp_store_stats st;
        chp_store_stats_get(s, &st);
        printf("%s\t%ld\t%llu\t%llu\t%llu\n", homes[h], hits, bytes,
               (unsigned long long)st.envelopes, (unsigned long long)st.bytes);
        chp_store_close(&s);
    }
    free(r);
    return 0;
}

int main(int argc, char **argv)
{
    bench_init("chapar-lab-hostile");
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3 ||
        (strcmp(argv[1], "flood") && strcmp(argv[1], "sybil") && strcmp(argv[1], "count"))) {
        fprintf(stderr,
                "usage: chapar-lab-hostile flood SECONDS IDSFILE [fresh] | sybil SECONDS KEYS "
                "BCAST | count IDSFILE HOME...\n");
        return 2;
    }
    if (bench_setup() != 0 || chp_crypto_init() != CHP_OK)
        return 1;
    if (!strcmp(argv[1], "count"))
        return count(argv[2], argc - 3, argv + 3);
    struct hostile *x = calloc(1, sizeof *x);
    if (!x || (x->zctx = zmq_ctx_new()) == NULL || (x->udp = udp_listen()) < 0)
        return 1;
    x->end_ms = chp_mono_ms() + 1000u * (uint64_t)atol(argv[2]);
    int rc = 2;
    if (!strcmp(argv[1], "flood") && (argc == 4 || (argc == 5 && !strcmp(argv[4], "fresh"))))
        rc = flood(x, argv[3], argc == 5);
    else if (!strcmp(argv[1], "sybil") && argc == 5)
        rc = sybil(x, atoi(argv[3]), argv[4]);
    for (size_t i = 0; i < x->nt; i++)
        h_raw_close(x->t[i].s, x->t[i].mon);
    close(x->udp);
    zmq_ctx_shutdown(x->zctx);
    zmq_ctx_term(x->zctx);
    free(x);
    return rc;
}
