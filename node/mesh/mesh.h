/* mesh.h - the node's network: CURVE links to neighbours (ZeroMQ), the
 * gossip that spreads envelopes (Plumtree), Negentropy sync, admission
 * (allow-list, bans, connection limits, ZAP), group-committed ingest into
 * the store, the passive view and LAN discovery (PROTOCOL.md §14-§17).
 *
 * The mesh knows nothing of the messaging layer or the control socket: the
 * daemon that owns it hands it hooks (chp_mesh_hooks) and drives it from
 * its zmq_poll loop: chp_mesh_poll_items fills the mesh's part of the
 * poll set, chp_mesh_poll_done handles what the poll found, and
 * chp_mesh_periodic runs the timers. Single-threaded: every function is
 * called from the loop's thread (the store's writer thread commits the
 * batches the mesh hands it). */
#ifndef CHP_MESH_H
#define CHP_MESH_H

#include "node/common/clock.h"
#include "node/store/store.h"
#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define CHP_MESH_PORT_DEFAULT 7667
#define CHP_MESH_PEERS_MAX    64  /* --peer and --allow entries */
#define CHP_MESH_LINKS_MAX    128 /* neighbours known at once (in + out) */
#define CHP_DISCOVERY_PORT    7668
/* Poll items the mesh may need at most (chp_mesh_poll_items). */
#define CHP_MESH_POLL_MAX (11 + 2 * CHP_MESH_LINKS_MAX)

typedef struct chp_mesh chp_mesh;

/* What the mesh tells the layer above. Every function may be NULL (a
 * relay has no messaging layer). Called from the loop's thread, never
 * re-entrantly into the mesh. */
typedef struct chp_mesh_hooks {
    void *ctx;
    /* An envelope is durably committed (new to this node), in commit
     * order; seq is its store sequence. env is valid during the call. */
    void (*committed)(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32],
                      uint64_t seq);
    /* 1 if envelopes with this tag are addressed to the user (kept by the
     * store's quota like own ones). */
    int (*tag_mine)(void *ctx, const uint8_t *tag);
    /* Up to cap ids (32 bytes each) of own envelopes that no neighbour
     * has confirmed holding yet; returns how many. */
    size_t (*unconfirmed)(void *ctx, uint8_t (*ids)[32], size_t cap);
    /* A neighbour confirmed that it durably holds own envelope id. */
    void (*held)(void *ctx, const uint8_t id[32]);
    /* 1 if the layer above refuses to keep (and so to forward) this new
     * envelope: a room post by a stranger over its rate (RESILIENCE.md,
     * "Flood"). src (16 bytes) names the neighbour it came from (its
     * address, or its key where the address says nothing), NULL for the
     * node's own and imported ones. Asked before the envelope is queued
     * for the store; a refused id is not fetched again for a while. id:
     * the envelope's, from the check (BLAKE2b of all its bytes). */
    int (*refuse)(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32],
                  const uint8_t *src);
    /* An event for the control API's event socket (CONTROL.md): topic and
     * body ("peer" "up"/"down", "envelope" <hex id>). */
    void (*event)(void *ctx, const char *topic, const char *body, size_t len);
} chp_mesh_hooks;

typedef struct chp_mesh_opts {
    const char *listen; /* "HOST:PORT"; port 0 = any free port */
    const char *peers[CHP_MESH_PEERS_MAX];
    size_t npeers;                         /* addresses to dial at start */
    int discovery;                         /* LAN beacons on/off */
    uint16_t discovery_port;               /* UDP port of beacons, 0 = CHP_DISCOVERY_PORT */
    int relay;                             /* a relay: public, large view, no LAN key */
    uint8_t allow[CHP_MESH_PEERS_MAX][32]; /* transport keys allowed in; */
    size_t nallow;                         /* 0 = anyone (not banned) */
    void *zctx;                            /* the daemon's ZeroMQ context */
    chp_store *store;                      /* open, borrowed for the mesh's life */
    const chp_clock *clock;                /* NULL = the real clocks; borrowed */
    chp_mesh_hooks hooks;
} chp_mesh_opts;

/* Loads or creates the node's transport key (in the store), binds the
 * listen socket and the ZAP handler, dials the given and remembered peers,
 * opens discovery. Errors are logged with the reason. */
CHP_WUR int chp_mesh_new(const chp_mesh_opts *o, chp_mesh **out);
/* Commits what is pending, closes every link and socket. Accepts NULL. */
void chp_mesh_destroy(chp_mesh **mp);
/* What is wrong with a --listen HOST:PORT, in words, or NULL if nothing. */
const char *chp_mesh_listen_problem(const char *spec);

/* ---- the loop ---- */

/* Fills items (room for CHP_MESH_POLL_MAX) with the mesh's sockets and
 * descriptors and returns how many; *deadline is lowered to when the mesh
 * next needs the loop (ms of the mesh's clock; t or less: do not sleep). */
size_t chp_mesh_poll_items(chp_mesh *m, zmq_pollitem_t *items, uint64_t t, uint64_t *deadline);
/* Handles what the poll found on the items chp_mesh_poll_items gave. */
void chp_mesh_poll_done(chp_mesh *m, const zmq_pollitem_t *items, size_t count);
/* Timers: sync, grafts, bans, liveness, the passive view, LAN key
 * rotation, confirmation queries. */
void chp_mesh_periodic(chp_mesh *m, uint64_t t);

/* ---- envelopes ---- */

/* Stores an envelope of this node's user (never evicted, PROTOCOL.md
 * §9) and spreads it; returns once it is committed. CHP_OK, CHP_E_DUP
 * (already held), or the envelope check's or the store's error. */
CHP_WUR int chp_mesh_publish(chp_mesh *m, const uint8_t *env, size_t len);
/* Queues an own envelope for the next commit (chp_mesh_flush commits). */
CHP_WUR int chp_mesh_publish_later(chp_mesh *m, const uint8_t *env, size_t len);
/* An envelope carried in by hand (a bundle): checked exactly as a
 * neighbour's push (size, version, times, PoW, id, duplicates) and queued
 * as foreign for the next group commit; once committed it is forwarded to
 * every neighbour and handed to the hooks like one that came by a link.
 * CHP_OK (queued), CHP_E_DUP (held or queued), or the check's error; with
 * the first two its id goes to id (may be NULL). The store's quota
 * decides at the commit (chp_store_has tells). */
CHP_WUR int chp_mesh_ingest(chp_mesh *m, const uint8_t *env, size_t len, uint8_t id[32]);
/* Commits everything received so far and forwards it. */
int chp_mesh_flush(chp_mesh *m);

/* ---- neighbours (the control API's peer commands) ---- */

/* `peer add`: dials addr and remembers it. CHP_OK; CHP_E_ARG (this
 * node's own address); CHP_E_DUP (linked to that key at another address);
 * CHP_E_ADDR_RESOLVE; an address parse error. */
CHP_WUR int chp_mesh_peer_add(chp_mesh *m, const char *addr, size_t len);
/* `peer remove`: CHP_OK or CHP_E_NOT_FOUND (or a parse error). */
CHP_WUR int chp_mesh_peer_remove(chp_mesh *m, const char *addr, size_t len);

/* One neighbour as `peer list` shows it. */
typedef struct chp_mesh_peer {
    uint8_t key[32];
    const char *state;     /* "connected", "connecting", "unreachable", ... */
    const char *dir;       /* "out", "in", "both" */
    const char *addr;      /* dial address or "-"; valid until the next mesh call */
    const char *reason;    /* why dialling fails, or "-" */
    uint64_t rx, tx;       /* envelopes received from / sent to it */
    const char *transport; /* "tcp", "obfs4" or "socks5" (static) */
} chp_mesh_peer;
/* Calls fn for every known neighbour, in table order. */
void chp_mesh_peers(chp_mesh *m, void (*fn)(void *ctx, const chp_mesh_peer *p), void *ctx);

/* The address others dial this node at: "HOST:PORT/chpn1...". */
void chp_mesh_address(const chp_mesh *m, char *out, size_t cap);

/* Replaces the allow-list (n keys of 32 bytes; 0 = anyone not banned)
 * for connections from now on, and cuts the neighbours that connected to
 * us and are not on the new list; links this node dials stay. Returns how
 * many were cut. */
size_t chp_mesh_allow_set(chp_mesh *m, const uint8_t (*keys)[32], size_t n);

/* ---- transports (transport.c, issue 17) ---- */

/* The obfs4 PT client's SOCKS listener ("127.0.0.1:PORT"), or NULL when
 * none runs (its links then wait); every obfs4 link is dialled anew.
 * The string is copied. CHP_OK or CHP_E_ARG (too long). */
CHP_WUR int chp_mesh_obfs4_socks(chp_mesh *m, const char *socks);
/* How many links are to be dialled through obfs4 (the PT client is
 * started when this is above 0). */
size_t chp_mesh_obfs4_wanted(const chp_mesh *m);
/* Opens (once) a loopback port of the listen socket for the PT server to
 * forward to, and writes it as "127.0.0.1:PORT". CHP_OK or CHP_E_IO. */
CHP_WUR int chp_mesh_pt_orport(chp_mesh *m, char *out, size_t cap);
/* "tcp", "obfs4", "socks5" */
const char *chp_mesh_transport_name(int via);

/* LAN discovery now: on 1 opens the beacon sockets, 0 closes them.
 * CHP_OK or CHP_E_IO (the port cannot be opened). */
CHP_WUR int chp_mesh_discovery(chp_mesh *m, int on);
int chp_mesh_discovery_on(const chp_mesh *m);

/* Counters shown by `chapar status` (since start). */
typedef struct chp_mesh_counters {
    uint64_t accepted, duplicates;
    uint64_t rej_size, rej_version, rej_ttl, rej_expired, rej_future, rej_pow, rej_full;
    uint64_t rej_malformed;  /* frames that do not parse */
    uint64_t rej_author;     /* refused by the layer above: a poster over its rate */
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
    uint64_t conns_refused;  /* connections closed at once: over a limit */
    uint64_t conns_timedout; /* connections closed for saying nothing in time */
    uint64_t evictions;      /* idle neighbours dropped to make room for a newcomer */
} chp_mesh_counters;

/* The state `status` reports. */
typedef struct chp_mesh_stats {
    chp_mesh_counters ctr;
    size_t connected;                            /* live neighbours */
    size_t relays;                               /* of which relays */
    size_t passive;                              /* addresses in the passive view */
    size_t connections;                          /* incoming connections open */
    size_t links_tcp, links_obfs4, links_socks5; /* live neighbours by transport */
} chp_mesh_stats;
void chp_mesh_stats_get(const chp_mesh *m, chp_mesh_stats *out);

#endif
