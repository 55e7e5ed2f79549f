/* mesh_int.h - the mesh's internal state and the functions its files
 * share; visible to node/mesh only (nothing outside includes it).
 *
 * The files call each other one way only, lowest first (ARCHITECTURE.md):
 *   admit.c   allow-list, bans, scores, rate buckets, connection table
 *   allow.c   the allow-list replaced while the node runs (a reload)
 *   transport.c  SOCKS and obfs4 options of a dealer, a link's transport
 *   table.c   the link table, dialling, the remembered peer list
 *   send.c    what goes out on a link: frames, flow window, moved ids
 *   view.c    the passive view (HyParView)
 *   ingest.c  group-committed ingest into the store
 *   sync.c    Negentropy sessions
 *   gossip.c  Plumtree: forward, announce, graft, prune; QUERY/HELD
 *   recv.c    frames in, link monitors, per-link timers
 *   lan.c     the LAN listener, the listeners' connection monitors
 *   discovery.c  LAN beacons
 *   mesh.c    lifecycle, the listen socket, ZAP, the loop's entry points
 * A lower file that must reach a higher one goes through a hook set by
 * mesh.c (chp_mesh.stored). */
#ifndef CHP_MESH_INT_H
#define CHP_MESH_INT_H

#include "node/common/clock.h"
#include "node/mesh/mesh.h"
#include "node/store/store.h"
#include "proto/addr.h"
#include "proto/buf.h"
#include "proto/negentropy.h"
#include "proto/wire.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CHP_MESH_BANS_MAX   256
#define CHP_MESH_ACTIVE_MAX 12   /* live links of a user node (relays: all) */
#define CHP_MESH_BATCH_MAX  1024 /* frames read from one socket per poll round */

/* One neighbour, identified by its CURVE transport key. */
/* An envelope just committed to the store, as ingest.c hands it on. */
struct chp_stored {
    const uint8_t *env;
    size_t len;
    const uint8_t *id; /* 32 bytes */
    uint64_t seq;      /* the store's insertion sequence */
    uint64_t expiry;   /* from its header */
    uint32_t link;     /* where it came from, 0 = made here */
    int own;
};

struct chp_link {
    int used;
    uint8_t key[32];
    uint32_t id;                     /* link number stored with envelopes (never 0) */
    char addr[CHP_ADDR_STR_MAX + 1]; /* dial address, "" for incoming only */
    void *dealer;                    /* our outgoing socket, or NULL */
    void *monitor;                   /* PAIR receiving the dealer's events */
    int dealer_up;                   /* handshake done on the dealer */
    int tcp_up;                      /* the dealer's TCP connection is up (no handshake yet) */
    int fail;                        /* why dialling fails: enum chp_link_fail, 0 = it does not */
    uint64_t redial_ms;              /* ZAP refused us: dial anew then (0 = no) */
    uint64_t redial_wait_ms;         /* and the wait before that, doubling */
    int router_seen;                 /* they reached us on our ROUTER */
    int router_fd;                   /* the socket of that connection, -1 unknown */
    int hello_rx;                    /* their HELLO arrived */
    int hello_ever;                  /* a HELLO came on some connection of this key */
    uint32_t caps;
    uint64_t last_rx_ms;
    uint64_t ping_ms; /* last PING sent on an incoming-only link */
    uint8_t rid[255]; /* ROUTER routing id of their latest connection */
    size_t ridlen;
    void *rsock;      /* the ROUTER that connection came in on (ours or a LAN one) */
    uint32_t lan_gen; /* a link of our LAN listener of this generation (its key
                         is our dealer's client key, its port our HELLO's): 0 none */
    uint64_t next_sync_ms;
    chp_neg *neg_client; /* our sync session with them */
    uint32_t neg_session;
    uint32_t sync_pushed, sync_wanted; /* this session's transfers so far */
    uint32_t sync_repeat;              /* differences skipped: moved on this link lately */
    int sync_more;                     /* budget ran out: sync again soon */
    struct chp_link_moved *moved;      /* ids pushed to / asked of this link lately (send.c) */
    chp_neg *neg_server;               /* their sync session with us */
    uint32_t neg_server_session;
    int sync_useful;            /* their session moved envelopes: their next one is free */
    chp_buf neg_rx[2];          /* a fragmented NEG message being reassembled, */
    uint32_t neg_rx_session[2]; /* per direction: [1] = from their initiator */
    uint64_t rx_env, tx_env;
    uint64_t neg_ms; /* last sync message sent or handled: a sync's copies prune nothing */
    /* Negentropy work: index items our sync answers may still walk (a
     * token bucket), and a whole message that waits for them, per
     * direction as neg_rx. */
    double walk_tokens;
    uint64_t walk_ms;
    chp_neg_storage walk_st; /* the store's index, which our sessions walk through us */
    uint64_t walked;         /* items the current sync message walked */
    chp_buf neg_wait[2];
    uint32_t neg_wait_session[2];
    int neg_waiting[2];
    /* Outgoing PUSH bytes queued to this link, and how many of them its
     * PONGs have acknowledged: at most a window is ever outstanding. */
    uint64_t flow_tx, flow_acked, flow_pinged;
    struct chp_link_owed *owed; /* envelopes owed beyond the window (send.c), or NULL */
    /* Their flow PINGs not answered yet: each waits until the envelopes
     * that came before it are stored (mark: chp_ingest_queued then) and
     * our byte bucket for them holds what its PONG lets them send. */
    struct {
        uint64_t nonce, mark;
    } pong[8];
    uint8_t npong;
    uint64_t pong_sent; /* the count our last flow PONG acknowledged */
    double score;       /* misbehaviour (decays); a ban at CHP_BAN_SCORE (admit.c) */
    uint64_t score_ms;  /* when score last decayed */
    double tokens;      /* envelope token bucket */
    double btokens;     /* byte token bucket (all frames) */
    uint64_t tokens_ms, btokens_ms;
    int discovered;          /* dialled because of a LAN beacon */
    int via;                 /* how we dial it: CHP_VIA_* (transport.c) */
    int pt_wait;             /* an obfs4 dealer not connected: no PT client yet */
    int route;               /* its route through the SOCKS relay (socks.c), 0 = none */
    struct chp_socks *relay; /* that route's relay */
    char proxy_err[160];     /* what the relay said last, for `peer list` */
    int promoted;            /* dialled from the passive view (view.c) */
    uint64_t promoted_ms;
    uint16_t listen_port; /* from their HELLO, 0 = none */
    int lazy;             /* Plumtree: announce ids (IHAVE) instead of pushing */
    int refuser;          /* it, or its source lately, pushed posts we refuse */
    uint16_t nihave;
    uint8_t ihave[64 * 32]; /* ids waiting to be announced to this link */
    chp_buf pushq;          /* a PUSHES frame being filled for this link (send.c) */
};

/* An id announced by a lazy link that has not arrived yet: GRAFT when due. */
struct chp_missing {
    uint8_t id[32];
    uint32_t link;
    uint64_t due_ms; /* 0 = free slot */
};
#define CHP_MESH_MISSING_MAX 1024

/* When this node first had a recent id: a duplicate prunes its link only
 * if it arrives soon after (a parallel tree path), not when it is a late
 * copy sent to mend the tree (GRAFT responses, backlogs). */
struct chp_recent {
    uint8_t id[8];
    uint64_t ms;
};
#define CHP_MESH_RECENT_MAX 4096

struct chp_ban {
    uint8_t key[32];
    uint64_t until_ms;
    uint64_t last_ms;                /* when it was last banned (0 = free slot) */
    uint32_t strikes;                /* bans of this key lately: each lasts longer */
    char addr[CHP_ADDR_STR_MAX + 1]; /* dialled there before the ban: dial again after */
};

#define CHP_MESH_HOST_BANS_MAX 64

/* What a node remembers of a neighbour's source (chp_link_source: its
 * address, or its key where no address tells) across its links and keys:
 * that it pushed posts we refuse, and the sync sessions it may open. */
struct chp_source {
    uint8_t src[16];
    uint64_t used_ms;    /* 0 = free slot */
    uint64_t refused_ms; /* last push of a post we refused, 0 = none */
    double sess_tokens;  /* new sync sessions it may open now, x SESS_MS (admit.c) */
    uint64_t sess_ms;
};
#define CHP_MESH_SOURCES_MAX 64

struct chp_ingest; /* ingest.c: the batch being received and the one committing */
struct chp_conns;  /* admit.c: the ROUTER's accepted connections */
struct chp_view;   /* view.c */
struct chp_disc;   /* discovery.c */

/* A user node's LAN listener (PROTOCOL.md §17): a second CURVE ROUTER on
 * an ephemeral port with a key pair that is random per start and rotated
 * (CHP_LAN_KEY_SECONDS); beacons announce it, never the transport key. */
struct chp_lan {
    void *router, *mon; /* NULL when not open */
    uint8_t sk[32], pk[32];
    uint16_t port;
    uint32_t gen; /* never 0 */
    uint64_t born_ms;
};
#define CHP_LAN_KEY_SECONDS 3600 /* CHAPAR_LAN_KEY_SECONDS overrides, for tests */

struct chp_mesh {
    int relay;
    chp_store *store; /* borrowed */
    const chp_clock *clock;
    chp_mesh_hooks hooks;
    uint8_t tsk[32], tpk[32]; /* transport key pair (CURVE) */
    void *zctx, *router, *zap;
    void *router_mon; /* PAIR: the ROUTER's connection events */
    char listen_host[CHP_ADDR_HOST_MAX + 1];
    uint16_t port;
    uint16_t port_moved; /* the --listen port that was busy (we took another), 0 = none */
    struct chp_link links[CHP_MESH_LINKS_MAX];
    uint32_t next_link_id;
    /* links[] slots in use are all below this (slots are taken lowest
     * first): the forwarding loop, run for every envelope, stops here
     * instead of looking at all 128 (each a cache miss) */
    size_t links_hw;
    uint32_t dials; /* DEALERs opened so far (names their monitors) */
    struct chp_ban bans[CHP_MESH_BANS_MAX];
    /* addresses keys were banned from (key: the IPv6 or mapped IPv4
     * address, then zeros; strikes: keys banned from it lately) */
    struct chp_ban host_bans[CHP_MESH_HOST_BANS_MAX];
    struct chp_source sources[CHP_MESH_SOURCES_MAX];
    struct chp_ingest *ingest;
    /* ingest.c hands every committed envelope to mesh.c through this */
    void (*stored)(chp_mesh *n, const struct chp_stored *e);
    struct chp_conns *conns;
    struct chp_view *view; /* NULL until used */
    struct chp_disc *disc; /* beacons heard, NULL until used */
    chp_mesh_counters ctr;
    struct chp_missing missing[CHP_MESH_MISSING_MAX];
    size_t nmissing; /* used slots of missing[] */
    struct chp_recent recent[CHP_MESH_RECENT_MAX];
    size_t recent_next;
    size_t active_max;
    uint8_t allow[CHP_MESH_PEERS_MAX][32];
    size_t nallow;
    int disc_fd;  /* IPv4 UDP beacon socket, -1 when off */
    int disc6_fd; /* IPv6 UDP beacon socket (multicast), -1 when off */
    uint16_t disc_port;
    uint64_t next_beacon;
    uint64_t lazy_rng;       /* picks the lazy links an id is announced to */
    int dup_in_flight;       /* the last CHP_E_DUP of chp_ingest_add was of an
                                envelope not committed yet: a simultaneous copy */
    uint64_t held_query_ms;  /* next QUERY for own envelopes not confirmed held */
    uint64_t evict_ms;       /* the last eviction from a full active view */
    uint64_t bans_until_ms;  /* when the last ban in bans[] ends: none is on after it */
    struct chp_lan lan[2];   /* [0] current, [1] previous (open until its links go) */
    uint32_t lan_gen;        /* generations handed out so far */
    uint64_t lan_period_ms;  /* rotation period */
    uint64_t lan_net;        /* a hash of this machine's addresses (discovery.c) */
    int lan_moved;           /* they changed (another LAN?): rotate now */
    char obfs4_socks[80];    /* the obfs4 PT client's SOCKS listener, "" = none yet */
    uint16_t pt_orport;      /* our loopback listener behind the PT server, 0 = none */
    struct chp_socks *socks; /* socks.c: the SOCKS relay, NULL until used */
    uint64_t trim_settled;   /* chp_ingest_settled at the last malloc_trim (mesh.c) */
    uint64_t recv_mark;      /* chp_ingest_queued when reading a socket began (recv.c) */
    int recv_cut;            /* 1: a flow PING ended that read */
    uint64_t recv_cuts;      /* reads a flow PING ended, ever (tests) */
};

/* The mesh's clocks: ms of the monotonic one, s of the wall one. */
static inline uint64_t mesh_ms(const chp_mesh *n)
{
    return chp_clock_ms(n->clock);
}
static inline uint64_t mesh_unix(const chp_mesh *n)
{
    return chp_clock_unix(n->clock);
}
/* An event for the daemon's event socket. */
static inline void chp_mesh_event(chp_mesh *n, const char *topic, const char *body)
{
    if (n->hooks.event)
        n->hooks.event(n->hooks.ctx, topic, body, strlen(body));
}
/* A neighbour's transport key as the log names it: chpn1..., as `peer
 * list` and an ADDRESS show it, so a log line can be matched to both. */
#define CHP_KEY_NAME_MAX 64
void chp_key_name(const uint8_t k[32], char out[CHP_KEY_NAME_MAX]);

/* ---- admit.c: who may link, at what rate; misbehaviour ---- */
#define CHP_BAN_SCORE 10.0
int chp_admit_allowed(const chp_mesh *n, const uint8_t key[32]);
int chp_admit_banned(const chp_mesh *n, const uint8_t key[32], uint64_t t);
/* Records a ban of key at time t (with addr, the address the user gave,
 * to dial again when it ends; NULL or "" for none); returns its length in
 * ms: 30 s, four times longer at each repeat within a day, 1 h at most. */
uint64_t chp_admit_ban(chp_mesh *n, const uint8_t key[32], const char *addr, uint64_t t);
/* A key banned on a connection from ip (16 bytes, IPv4 mapped): the
 * address's record; the second key within a day bans the address for
 * 30 s, four times longer at each further one (1 h at most). Returns the
 * length of the address ban in ms, 0 when none (loopback never). */
uint64_t chp_admit_ban_ip(chp_mesh *n, const uint8_t ip[16], uint64_t t);
/* 1 while the address host (as ZAP names it: IPv4 or IPv6 text) is banned. */
int chp_admit_host_banned(const chp_mesh *n, const char *host, uint64_t t);
/* The peer address of incoming connection fd into ip; 0 if unknown. */
int chp_conn_ip(const chp_mesh *n, int fd, uint8_t ip[16]);
/* Who a new envelope from l is counted against (hooks.refuse): the
 * address its connection to us came from, or (a link we dialled, or one
 * over loopback, where tools and proxies share one address) its key. */
void chp_link_source(const chp_mesh *n, const struct chp_link *l, uint8_t src[16]);
/* A link from src pushed a post we refuse at t (a flood): its next links
 * start out of the push tree, for CHP_SOURCE_PRUNED_MS. */
#define CHP_SOURCE_PRUNED_MS (10u * 60u * 1000u)
void chp_source_refused(chp_mesh *n, const uint8_t src[16], uint64_t t);
/* 1 while src's links stay out of the push tree and get no PEERS. */
int chp_source_pruned(const chp_mesh *n, const uint8_t src[16], uint64_t t);
/* Takes one of the new sync sessions src may open with us (4 at once,
 * then one per 15 s, whatever its keys): 1 if there was one. */
int chp_source_take_session(chp_mesh *n, const uint8_t src[16], uint64_t t);
/* Adds points to a score that decays by 0.1 a second since *ms; returns
 * the new score (a ban is due at CHP_BAN_SCORE). */
double chp_score_add(double *score, uint64_t *ms, double points, uint64_t t);
/* Token buckets of a link: 1 if len bytes / one envelope may pass at t. */
int chp_rate_take_bytes(struct chp_link *l, uint64_t t, size_t len);
int chp_rate_take_env(struct chp_link *l, uint64_t t);
/* 1 if l's byte bucket holds len bytes at t (nothing is taken). */
int chp_rate_has_bytes(struct chp_link *l, uint64_t t, uint64_t len);
void chp_rate_init(struct chp_link *l, uint64_t t);
/* The connection table (see admit.c for the limits). */
int chp_conns_init(chp_mesh *n);
/* A socket the ROUTER accepted: counted, or shut down over a limit. */
void chp_conn_accepted(chp_mesh *n, int fd);
/* The ROUTER's connection on fd closed. */
void chp_conn_closed(chp_mesh *n, int fd);
/* ZAP said OK to key on a connection from host. */
void chp_conn_authenticated(chp_mesh *n, const char *host, const uint8_t key[32]);
/* The connection on fd carried a message from key. */
void chp_conn_spoke(chp_mesh *n, int fd, const uint8_t key[32]);
size_t chp_conns_of_key(const chp_mesh *n, const uint8_t key[32]);
size_t chp_conns_open(const chp_mesh *n);
/* The connection on fd: how long it has been open (ms) at t, or -1 when
 * it is unknown or closing. */
int64_t chp_conn_age(const chp_mesh *n, int fd, uint64_t t);
/* Shuts the connection on fd down (the link goes with its DISCONNECTED). */
void chp_conn_close_fd(chp_mesh *n, int fd);
/* Closes connections silent too long and those of keys banned since. */
void chp_conns_check(chp_mesh *n, uint64_t t);

/* ---- table.c: the link table, dialling, the remembered peers ---- */
struct chp_link *chp_link_find(chp_mesh *n, const uint8_t key[32]);
/* A new link for key, in a free slot or the longest-silent lingering one. */
struct chp_link *chp_link_create(chp_mesh *n, const uint8_t key[32]);
/* Handshake done and HELLO received on some connection. */
static inline int chp_link_up(const struct chp_link *l)
{
    /* inline: the forwarding loop asks it of every slot for every envelope */
    return l->used && l->hello_rx && (l->dealer_up || l->router_seen);
}
/* A link kept only in case its silent neighbour speaks again. */
int chp_link_lingering(const struct chp_link *l);
int chp_link_known(chp_mesh *n, const uint8_t key[32]);
void chp_link_mark_promoted(chp_mesh *n, const uint8_t key[32], uint64_t t);
void chp_link_mark_discovered(chp_mesh *n, const uint8_t key[32]);
void chp_link_drop(struct chp_link *l);
void chp_link_close_all(chp_mesh *n);
size_t chp_link_connected(const chp_mesh *n);
/* A connection of l closed: its flow window and moved ids start over. */
void chp_link_reset(struct chp_link *l);
/* Bans l's key and drops the link. */
void chp_link_ban(chp_mesh *n, struct chp_link *l, const char *why);
/* Adds misbehaviour points; l may be dropped on return (check l->used). */
void chp_link_misbehave(chp_mesh *n, struct chp_link *l, double points, const char *why);
int chp_link_add_address(chp_mesh *n, const char *s, size_t len, int remember);
/* Dials a node found by its beacon; a user node dials with its current
 * LAN key as CURVE client key, never its transport key. */
int chp_link_add_discovered(chp_mesh *n, const char *s, size_t len);
int chp_link_remove_address(chp_mesh *n, const char *s, size_t len);
/* Dials l's address anew with a fresh DEALER (libzmq does not redial a
 * connection ZAP refused). CHP_OK, or an error and l is dropped. */
int chp_link_redial(chp_mesh *n, struct chp_link *l);
void chp_link_restore_known(chp_mesh *n);
/* 1 if addr (canonical) is a line of the remembered peer list. */
int chp_link_remembered(chp_mesh *n, const char *addr);
/* The LAN listener of generation gen, or NULL. */
struct chp_lan *chp_mesh_lan_of(chp_mesh *n, uint32_t gen);
/* The LAN listener of generation gen (socket sock) closes: its links go. */
void chp_link_lan_closed(chp_mesh *n, void *sock, uint32_t gen);
/* 1 if a link still uses the LAN listener of generation gen. */
int chp_link_lan_used(const chp_mesh *n, void *sock, uint32_t gen);
/* Why dialling a neighbour fails, for `peer list` and the log. */
enum chp_link_fail {
    CHP_LINK_OK = 0,
    CHP_LINK_UNREACHABLE = 1, /* TCP connect refused, timed out or no route */
    CHP_LINK_HANDSHAKE = 2,   /* TCP up, CURVE handshake failed: wrong key, not a chapard */
    CHP_LINK_REFUSED = 3,     /* the peer's ZAP said no: banned or not on its allow-list */
};
/* "unreachable" ... for the state column, and a sentence for the reason. */
const char *chp_link_fail_state(int fail);
const char *chp_link_fail_reason(int fail);

/* ---- socks.c: the SOCKS5 relay (a thread) ---- */
/* A loopback port (*port) whose connections are carried through the SOCKS5
 * proxy proxy:proxy_port ([v6] bracketed) to host:host_port, with
 * username/password when user is not NULL or "". *id names the route.
 * CHP_OK, CHP_E_IO or CHP_E_NOMEM. */
int chp_socks_route(chp_mesh *n, const char *proxy, uint16_t proxy_port, const char *host,
                    uint16_t host_port, const char *user, const char *pass, int *id,
                    uint16_t *port);
/* Closes route id of relay s and its connections (NULL or 0: nothing). */
void chp_socks_unroute(struct chp_socks *s, int id);
/* The last failure of route id in words into out; 0 if none. */
int chp_socks_error(chp_mesh *n, int id, char *out, size_t cap);
/* Stops the relay's thread and closes everything. */
void chp_socks_destroy(chp_mesh *n);

/* ---- transport.c: links through SOCKS proxies and pluggable transports ---- */
enum { CHP_VIA_TCP = 0, CHP_VIA_OBFS4 = 1, CHP_VIA_SOCKS5 = 2, CHP_VIA_COUNT = 3 };
/* The endpoint a new DEALER of l dials for address a: the address
 * itself, or for a proxied one the loopback port of a route through the
 * SOCKS relay. CHP_OK, or an error; *connect_now is 0 for obfs4 while no
 * PT client runs (ep is then empty). */
int chp_transport_endpoint(chp_mesh *n, struct chp_link *l, const chp_addr *a, char *ep, size_t cap,
                           int *connect_now);
/* Closes l's route, if any (its DEALER closes). */
void chp_transport_release(struct chp_link *l);
/* CHP_VIA_* of a link: how it was dialled, or for a link that dialled
 * us, whether it came through our PT server. */
int chp_transport_of(const chp_mesh *n, const struct chp_link *l);

/* ---- send.c: what goes out on a link ---- */
/* CHP_OK, or CHP_E_IO: its queue is full or the connection gone. */
/* Sends one frame to l, after the envelopes queued for it (pushq). */
int chp_link_send(chp_mesh *n, struct chp_link *l, const uint8_t *frame, size_t len);
void chp_link_flush_pushes(chp_mesh *n, struct chp_link *l);
void chp_link_send_hello(chp_mesh *n, struct chp_link *l);
/* Our HELLO over the ROUTER connection theirs came in on. */
void chp_link_send_hello_router(chp_mesh *n, struct chp_link *l);
void chp_link_send_ids(chp_mesh *n, struct chp_link *l, uint8_t type, const uint8_t *ids,
                       uint16_t cnt);
/* 1 while less than the flow window of PUSH and NEG bytes to l wait for
 * its PONG. */
int chp_flow_open(const struct chp_link *l);
void chp_flow_sent(chp_mesh *n, struct chp_link *l, size_t len);
/* A PONG from l: a flow PONG opens the window and sends what is owed. */
void chp_flow_pong(chp_mesh *n, struct chp_link *l, uint64_t nonce);
#define CHP_FLOW_TAG (1ull << 63) /* a flow PING's nonce: this bit | bytes queued */
/* Ids pushed to or fetched from l lately (t: ms of the mesh clock). */
int chp_moved_lately(const struct chp_link *l, const uint8_t id[32], uint64_t t);
void chp_moved_add(struct chp_link *l, const uint8_t id[32], uint64_t t);
/* Pushes an envelope within l's flow window; CHP_OK if queued. */
int chp_link_send_push(chp_mesh *n, struct chp_link *l, const uint8_t *env, size_t len);
/* Serves a stored envelope to l: not one about to expire, not one moved
 * on l lately. CHP_OK if queued or owed (the window is full: it goes out
 * as the window opens), CHP_E_IO (queue full, or as much owed as we
 * keep), CHP_E_NOT_FOUND. */
int chp_link_serve(chp_mesh *n, struct chp_link *l, const uint8_t id[32]);
/* Never served or forwarded: envelopes expiring within this many s. */
#define CHP_SERVE_MARGIN_S 30

/* ---- view.c: the passive view ---- */
void chp_view_heard(chp_mesh *n, const char *addr, size_t len);
void chp_view_on_peers(chp_mesh *n, const chp_wire_msg *m);
void chp_view_send_peers(chp_mesh *n, struct chp_link *to);
void chp_view_periodic(chp_mesh *n, uint64_t t);
size_t chp_view_size(const chp_mesh *n);
void chp_view_free(chp_mesh *n);

/* ---- ingest.c ---- */
int chp_ingest_init(chp_mesh *n);
void chp_ingest_fini(chp_mesh *n);
/* Queues one envelope for the next group commit after the cheap checks:
 * CHP_OK, CHP_E_DUP, or why it was refused (counted). With the first two
 * the envelope's id (hashed by the check) is in id. from: the link it
 * came on, NULL for one made or imported here. */
int chp_ingest_add(chp_mesh *n, const uint8_t *env, size_t len, const struct chp_link *from,
                   int own, uint8_t id[32]);
/* Commits everything received so far and forwards it; returns when done. */
int chp_ingest_flush(chp_mesh *n);
/* The pipeline, once a loop round: the batch whose commit is done goes
 * out (forwarded, handed to the layer above) and the next one goes to
 * the writer. */
void chp_ingest_pump(chp_mesh *n);
/* The store's commit descriptor while a batch commits, else -1. */
int chp_ingest_fd(const chp_mesh *n);
/* 1 when a commit is done and waits to be handled. */
int chp_ingest_ready(const chp_mesh *n);
void chp_ingest_count_reject(chp_mesh *n, int rc);
/* Envelopes queued for a commit so far, and how many of them are done
 * (stored, or their commit failed): equal when nothing is pending. */
uint64_t chp_ingest_queued(const chp_mesh *n);
uint64_t chp_ingest_settled(const chp_mesh *n);
/* 1 while id is one the layer above refused lately: not to be fetched. */
int chp_ingest_refused(const chp_mesh *n, const uint8_t id[32]);

/* ---- sync.c ---- */
void chp_sync_start(chp_mesh *n, struct chp_link *l);
void chp_sync_on_neg(chp_mesh *n, struct chp_link *l, const chp_wire_msg *m, uint64_t t);
/* Handles sync messages that waited for l's walk budget, once it allows. */
void chp_sync_resume(chp_mesh *n, struct chp_link *l, uint64_t t);
/* Collects the fragments of one NEG message (see sync.c). */
int chp_neg_assemble(struct chp_link *l, const chp_wire_msg *m, const uint8_t **msg, size_t *len);
/* Refills l's Negentropy walk budget for a store of items envelopes. */
void chp_walk_refill(struct chp_link *l, uint64_t items, uint64_t t);

/* ---- gossip.c ---- */
/* Pushes or announces a committed envelope to every live neighbour but
 * src; returns how many it went to. */
int chp_gossip_forward(chp_mesh *n, const struct chp_stored *e);
/* Sends what waits for the end of a loop round: queued pushes and ids. */
void chp_gossip_flush_out(chp_mesh *n);
void chp_gossip_on_push(chp_mesh *n, struct chp_link *l, const uint8_t *env, size_t len,
                        uint64_t t);
void chp_gossip_on_ids(chp_mesh *n, struct chp_link *l, const chp_wire_msg *m, uint64_t t);
void chp_gossip_on_query(chp_mesh *n, struct chp_link *l, const chp_wire_msg *m);
void chp_gossip_on_held(chp_mesh *n, const chp_wire_msg *m);
/* Asks every live neighbour that answers QUERY whether it holds the own
 * envelopes the layer above has no confirmation for yet. */
void chp_gossip_query_held(chp_mesh *n);
/* Announced ids that did not arrive in time: GRAFT. */
void chp_gossip_graft_due(chp_mesh *n, uint64_t t);
/* A neighbour of the push tree is gone. */
void chp_gossip_tree_repair(chp_mesh *n, const struct chp_link *gone, uint64_t t);
/* The missing and recent tables. */
void chp_missing_note(chp_mesh *n, const uint8_t id[32], uint32_t link, uint64_t t);
void chp_missing_forget(chp_mesh *n, const uint8_t id[32]);
void chp_recent_add(chp_mesh *n, const uint8_t id[32], uint64_t t);
/* ms since this node first had id, or UINT64_MAX when not recently. */
uint64_t chp_recent_age(const chp_mesh *n, const uint8_t id[32], uint64_t t);
/* A cheap generator for picks (not for anything secret). */
uint64_t chp_mesh_rand(chp_mesh *n);

/* ---- recv.c ---- */
/* Reads what arrived on sock: our ROUTER or a LAN listener's. */
void chp_recv_router(chp_mesh *n, void *sock, int max);
size_t chp_recv_pollitems(chp_mesh *n, zmq_pollitem_t *items);
void chp_recv_poll_done(chp_mesh *n, const zmq_pollitem_t *items, size_t count, int max);
/* The ROUTER's connection on socket fd closed. */
void chp_recv_router_closed(chp_mesh *n, int fd);
/* When the links next need the loop (ms), no later than other. */
uint64_t chp_recv_deadline(chp_mesh *n, uint64_t t, uint64_t other);
void chp_recv_periodic(chp_mesh *n, uint64_t t, uint64_t sync_ms);
/* Flow PONGs whose envelopes are stored and whose bytes our buckets take. */
void chp_recv_pongs(chp_mesh *n, uint64_t t);

/* ---- lan.c ---- */
/* Options every link socket gets (bounded frames and queues, heartbeats). */
int chp_mesh_sock_opts(void *s);
/* Opens a new LAN listener; the current one becomes the previous. */
int chp_lan_rotate(chp_mesh *n);
/* Closes the previous LAN listener once no link uses it. */
void chp_lan_tidy(chp_mesh *n);
void chp_lan_close_all(chp_mesh *n);
/* Connection events of our ROUTER and the LAN listeners. */
void chp_lan_router_events(chp_mesh *n);

/* ---- discovery.c ---- */
int chp_discovery_open(chp_mesh *n, uint16_t port);
void chp_discovery_close(chp_mesh *n);
void chp_discovery_free(chp_mesh *n);
void chp_discovery_recv(chp_mesh *n);
/* Sends a beacon when due; returns the next due time (ms). */
uint64_t chp_discovery_due(chp_mesh *n, uint64_t t);

#endif
