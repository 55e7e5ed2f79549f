/* node_int.h - the node's internal state, shared by node.c (loop, ingest),
 * link.c (neighbours, gossip, sync) and control.c (control API). Nothing
 * outside node/ includes it. */
#ifndef CHP_NODE_INT_H
#define CHP_NODE_INT_H

#include "proto/addr.h"
#include "node/msg/msg.h"
#include "proto/negentropy.h"
#include "node/daemon/node.h"
#include "node/store/store.h"
#include "proto/wire.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_NODE_LINKS_MAX  128 /* neighbours known at once (in + out) */
#define CHP_NODE_BANS_MAX   256
#define CHP_NODE_ACTIVE_MAX 12   /* live links of a user node (relays: all) */
#define CHP_NODE_BATCH_MAX  1024 /* envelopes per group commit */

/* Counters shown by `chapar status` (since start). */
struct chp_node_counters {
    uint64_t accepted, duplicates;
    uint64_t rej_size, rej_version, rej_ttl, rej_expired, rej_future, rej_pow, rej_full;
    uint64_t rej_malformed;  /* frames that do not parse */
    uint64_t rej_sync;       /* sync messages that do not parse, or too large */
    uint64_t refused_banned; /* connections refused by the ban list */
    uint64_t sync_rounds;    /* Negentropy messages answered or sent */
    uint64_t syncs_done;     /* reconciliations completed as initiator */
    uint64_t sync_fetched;   /* envelopes requested because a sync said so */
    uint64_t bans;
    uint64_t beacons_rx, beacons_bad;  /* LAN discovery */
    uint64_t prunes, grafts, ihave_tx; /* Plumtree */
    uint64_t rx_bytes, tx_bytes;       /* node-link frames, payload bytes */
    uint64_t refused_allow, refused_full_view, rate_dropped;
    uint64_t conns_refused;  /* connections closed at once: over a limit (node.c) */
    uint64_t conns_timedout; /* connections closed for saying nothing in time */
    uint64_t evictions;      /* idle neighbours dropped to make room for a newcomer */
};

/* One neighbour, identified by its CURVE transport key. */
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
    struct chp_link_moved *moved;      /* ids pushed to / asked of this link lately (link.c) */
    chp_neg *neg_server;               /* their sync session with us */
    uint32_t neg_server_session;
    chp_buf neg_rx[2];          /* a fragmented NEG message being reassembled, */
    uint32_t neg_rx_session[2]; /* per direction: [1] = from their initiator */
    uint64_t rx_env, tx_env;
    uint64_t neg_ms; /* last sync message either way: a sync's copies prune nothing */
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
    double score;      /* misbehaviour (decays); a ban at BAN_SCORE (link.c) */
    uint64_t score_ms; /* when score last decayed */
    double tokens;     /* envelope token bucket */
    double btokens;    /* byte token bucket (all frames) */
    uint64_t tokens_ms, btokens_ms;
    int discovered; /* dialled because of a LAN beacon */
    int promoted;   /* dialled from the passive view (view.c) */
    uint64_t promoted_ms;
    uint16_t listen_port; /* from their HELLO, 0 = none */
    int lazy;             /* Plumtree: announce ids (IHAVE) instead of pushing */
    uint16_t nihave;
    uint8_t ihave[64 * 32]; /* ids waiting to be announced to this link */
};

/* An id announced by a lazy link that has not arrived yet: GRAFT when due. */
struct chp_missing {
    uint8_t id[32];
    uint32_t link;
    uint64_t due_ms; /* 0 = free slot */
};
#define CHP_NODE_MISSING_MAX 1024

/* When this node first had a recent id: a duplicate prunes its link only
 * if it arrives soon after (a parallel tree path), not when it is a late
 * copy sent to mend the tree (GRAFT responses, backlogs). */
struct chp_recent {
    uint8_t id[8];
    uint64_t ms;
};
#define CHP_NODE_RECENT_MAX 4096

struct chp_ban {
    uint8_t key[32];
    uint64_t until_ms;
    uint64_t last_ms;                /* when it was last banned (0 = free slot) */
    uint32_t strikes;                /* bans of this key lately: each lasts longer */
    char addr[CHP_ADDR_STR_MAX + 1]; /* dialled there before the ban: dial again after */
};

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

/* node.c: the envelopes being received into one batch while the previous
 * batch commits in the store's writer thread. */
struct chp_ingest;
/* node.c: the ROUTER's accepted connections, counted against limits. */
struct chp_conns;

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

struct chp_node {
    char home[4096];
    int relay;
    chp_store *store;
    uint8_t tsk[32], tpk[32]; /* transport key pair (CURVE) */
    void *zctx, *router, *control, *events, *zap;
    void *router_mon; /* PAIR: the ROUTER's disconnect events */
    char listen_host[CHP_ADDR_HOST_MAX + 1];
    uint16_t port;
    uint16_t port_moved; /* the --listen port that was busy (we took another), 0 = none */
    uint64_t started_ms, next_sweep;
    struct chp_link links[CHP_NODE_LINKS_MAX];
    uint32_t next_link_id;
    struct chp_ban bans[CHP_NODE_BANS_MAX];
    struct chp_ingest *ingest;
    struct chp_conns *conns;
    struct chp_view *view; /* view.c: the passive view, NULL until used */
    struct chp_disc *disc; /* discovery.c: beacons heard, NULL until used */
    struct chp_node_counters ctr;
    struct chp_missing missing[CHP_NODE_MISSING_MAX];
    size_t nmissing; /* used slots of missing[] */
    struct chp_recent recent[CHP_NODE_RECENT_MAX];
    size_t recent_next;
    size_t active_max;
    uint8_t allow[CHP_NODE_MAX_PEERS][32];
    size_t nallow;
    int disc_fd;  /* IPv4 UDP beacon socket, -1 when off */
    int disc6_fd; /* IPv6 UDP beacon socket (multicast), -1 when off */
    uint16_t disc_port;
    uint64_t next_beacon;
    chp_msg *msg;           /* messaging layer; NULL on a relay */
    uint64_t lazy_rng;      /* picks the lazy links an id is announced to */
    int dup_in_flight;      /* the last CHP_E_DUP of chp_node_ingest was of an
                               envelope not committed yet: a simultaneous copy */
    int wiped;              /* the user pressed the panic button: exit */
    uint64_t msg_tick_ms;   /* next chp_msg_tick */
    uint64_t held_query_ms; /* next QUERY for own envelopes not confirmed held */
    int stop_asked;         /* `chapar stop`: leave the loop as on SIGTERM */
    struct chp_lan lan[2];  /* [0] current, [1] previous (open until its links go) */
    uint32_t lan_gen;       /* generations handed out so far */
    uint64_t lan_period_ms; /* rotation period */
    uint64_t lan_net;       /* a hash of this machine's addresses (discovery.c) */
    int lan_moved;          /* they changed (another LAN?): rotate now */
};

/* node.c */
/* 1 if the node with this key may link with us: there is no allow-list
 * (--allow), or the key is on it. */
int chp_node_allowed(const chp_node *n, const uint8_t key[32]);
int chp_node_ingest(chp_node *n, const uint8_t *env, size_t len, uint32_t link, int own);
/* Commits everything received so far and forwards it; returns when done. */
int chp_node_flush(chp_node *n);
void chp_node_count_reject(chp_node *n, int rc);
void chp_node_address(const chp_node *n, char *out, size_t cap);
/* Incoming connections open now (accepted, not yet closed). */
size_t chp_node_conns_open(const chp_node *n);
/* The ROUTER connection on socket fd carried a message from key: it is
 * no longer silent (link.c calls this when a link's connection changes). */
void chp_node_conn_spoke(chp_node *n, int fd, const uint8_t key[32]);
/* Opens a new LAN listener (a user node with discovery): the current one
 * becomes the previous, and a previous one still open is closed with its
 * links. CHP_OK or CHP_E_IO. */
int chp_node_lan_rotate(chp_node *n);
/* Closes the previous LAN listener once no link uses it. */
void chp_node_lan_tidy(chp_node *n);
/* The LAN listener of generation gen, or NULL. */
struct chp_lan *chp_node_lan_of(chp_node *n, uint32_t gen);

/* link.c */
int chp_link_banned(chp_node *n, const uint8_t key[32], uint64_t t);
/* Pushes or announces a committed envelope to every live neighbour but src;
 * returns how many it went to. */
int chp_link_forward(chp_node *n, const uint8_t *env, size_t len, const uint8_t id[32],
                     uint32_t src);
void chp_link_flush_lazy(chp_node *n);
/* Asks every live neighbour that answers QUERY whether it holds the own
 * envelopes the messaging layer has no confirmation for yet. */
void chp_link_query_held(chp_node *n);
int chp_link_add_address(chp_node *n, const char *s, size_t len, int remember);
/* Dials a node found by its beacon; a user node dials with its current
 * LAN key as CURVE client key, never its transport key. */
int chp_link_add_discovered(chp_node *n, const char *s, size_t len);
int chp_link_remove_address(chp_node *n, const char *s, size_t len);
void chp_link_restore_known(chp_node *n);
void chp_link_close_all(chp_node *n);
void chp_link_periodic(chp_node *n, uint64_t t, uint64_t sync_ms);
size_t chp_link_pollitems(chp_node *n, void *items);
uint64_t chp_link_next_deadline(chp_node *n, uint64_t t, uint64_t other);
/* Reads what arrived on sock: our ROUTER or a LAN listener's. */
void chp_link_recv_router(chp_node *n, void *sock, int max);
/* The LAN listener of generation gen (socket sock) closes: its links go. */
void chp_link_lan_closed(chp_node *n, void *sock, uint32_t gen);
/* 1 if a link still uses the LAN listener of generation gen. */
int chp_link_lan_used(const chp_node *n, void *sock, uint32_t gen);
void chp_link_poll_done(chp_node *n, const void *items, size_t count, int max);
size_t chp_link_connected(const chp_node *n);
int chp_link_known(chp_node *n, const uint8_t key[32]);
void chp_link_mark_discovered(chp_node *n, const uint8_t key[32]);
void chp_link_mark_promoted(chp_node *n, const uint8_t key[32], uint64_t t);
void chp_link_drop(chp_node *n, struct chp_link *l);
int chp_link_send(chp_node *n, struct chp_link *l, const uint8_t *frame, size_t len);
void chp_key_short(const uint8_t k[32], char out[17]);

/* view.c: the passive view. */
void chp_view_heard(chp_node *n, const char *addr, size_t len);
void chp_view_on_peers(chp_node *n, const chp_msg *m);
void chp_view_send_peers(chp_node *n, struct chp_link *to);
void chp_view_periodic(chp_node *n, uint64_t t);
size_t chp_view_size(const chp_node *n);
void chp_view_free(chp_node *n);
/* The ROUTER's connection on socket fd closed. */
void chp_link_router_closed(chp_node *n, int fd);

/* discovery.c */
#define CHP_DISCOVERY_PORT 7668
int chp_discovery_open(chp_node *n, uint16_t port);
void chp_discovery_close(chp_node *n);
void chp_discovery_free(chp_node *n);
void chp_discovery_recv(chp_node *n);
/* Sends a beacon when due; returns the next due time (ms). */
uint64_t chp_discovery_due(chp_node *n, uint64_t t);
/* The `discovery` control command: arg NULL asks ("on" or "off" in out);
 * "on"/"off" opens or closes the beacon sockets now and saves the choice
 * as `discovery = yes|no` in DIR/chapard.conf. Returns 1 for ok, 0 for an
 * error; out gets the one-line answer either way. */
int chp_discovery_control(chp_node *n, const char *arg, size_t len, char *out, size_t cap);

/* control.c */
void chp_control_handle(chp_node *n);

#endif
