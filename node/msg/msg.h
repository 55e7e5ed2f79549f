/* msg.h - the messaging layer of a user node: contacts and their
 * handshake, direct messages under per-epoch keys and tags, rooms,
 * receipts, chunking, inbox/outbox. PROTOCOL.md §18-22 defines the
 * payloads; CONTROL.md the commands. No sockets here: chapard feeds it
 * committed envelopes and control requests, and publishes what it queues,
 * so the whole layer runs in unit tests with two stores side by side. */
#ifndef CHP_MSG_H
#define CHP_MSG_H

#include "proto/err.h"
#include "proto/identity.h"
#include "node/store/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct chp_msg chp_msg;

/* What the layer needs from its host. */
typedef struct chp_msg_host {
    void *ctx;
    /* A notification for the event socket (CONTROL.md, Events). */
    void (*event)(void *ctx, const char *topic, const char *body, size_t len);
    /* Seconds since the epoch; NULL = the real clock (tests move time). */
    uint64_t (*now)(void *ctx);
    uint32_t pow_ntpb; /* 0 = network default */
    int seal_inline;   /* 1: no worker thread, chp_msg_take seals (tests) */
    uint64_t max_file; /* largest file sent or accepted; 0 = CHP_MSG_MAX_FILE */
    /* Where files from contacts are saved (a directory per conversation
     * in it); NULL or "" = HOME/files. */
    const char *save_dir;
} chp_msg_host;

#define CHP_MSG_MAX_FILE (16u << 20) /* default max-file: 16 MiB */

enum chp_msg_lock {
    CHP_MSG_NO_IDENTITY = 0,
    CHP_MSG_LOCKED = 1,
    CHP_MSG_READY = 2,
};

/* A layer over store s for the data dir home; starts without an identity
 * (LOCKED if home has one, NO_IDENTITY if not). */
CHP_WUR int chp_msg_new(chp_store *s, const char *home, const chp_msg_host *host, chp_msg **out);
void chp_msg_free(chp_msg **mp);
int chp_msg_lock_state(const chp_msg *m);
/* The user's nick; "" while no identity is unlocked. Valid until the next
 * command that changes it. */
const char *chp_msg_nick(const chp_msg *m);
/* Takes ownership of id: unlocks the store's local tables with its
 * storage key, loads contacts and rooms, joins #lan on first start. */
CHP_WUR int chp_msg_unlock(chp_msg *m, chp_identity *id);

/* An envelope was just committed to the store with insertion sequence seq
 * (0: unknown, tests): if its tag is one of ours (one table lookup), open
 * and handle it. While locked nothing is examined; chp_msg_unlock then
 * examines every envelope stored after the last one examined, so nothing
 * that reached the store is ever skipped. */
void chp_msg_on_envelope(chp_msg *m, const uint8_t *env, size_t len, const uint8_t id[32],
                         uint64_t seq);
/* 1 when a new envelope should not be kept nor forwarded: a post (or a
 * file's manifest) in a room we are in, by a stranger (not a contact, not
 * us) who posts over the rate one person types, or a new poster beyond
 * what the neighbour src (16 bytes, the mesh's name for it; NULL: our own
 * or imported) may bring (RESILIENCE.md, "Flood"; msg_flood.c). Called by
 * the mesh before the store; 0 while locked and for anything else. id:
 * the envelope's (its BLAKE2b, as the mesh's check made it): a post that
 * opened here is not verified again when it is examined after the store
 * commit (chp_msg_on_envelope with the same id). */
int chp_msg_refuse(chp_msg *m, const uint8_t *env, size_t len, const uint8_t id[32],
                   const uint8_t *src);
/* A neighbour said it durably holds envelope id (HELD, PROTOCOL.md §15):
 * if it is one of ours, its message is "sent" once every envelope of it
 * is held somewhere. */
void chp_msg_on_held(chp_msg *m, const uint8_t id[32]);
/* Up to cap ids of own envelopes no neighbour has confirmed yet, for a
 * QUERY; successive calls rotate through them all. */
size_t chp_msg_unconfirmed(chp_msg *m, uint8_t (*ids)[32], size_t cap);
/* Timers: key rotation and deletion; saves how far envelopes were
 * examined. Call about once a second. */
void chp_msg_tick(chp_msg *m);
/* 1 if tag is one of a contact's tags for us in the current table (one
 * hash lookup, before the envelope is stored): such mail is kept by the
 * store's quota (STORAGE.md). Room and contact-request tags are not:
 * anyone who knows a room's name or our ID can make those. 0 while
 * locked (the table is empty) and for m NULL. */
int chp_msg_tag_mine(const chp_msg *m, const uint8_t tag[16]);
/* The next envelope the layer wants published (malloc'ed, caller frees);
 * 0 when none is ready. Proof of work runs on a worker thread: a message
 * just queued comes out of a later call, after chp_msg_fd turned readable
 * (with seal_inline, at once). */
int chp_msg_take(chp_msg *m, uint8_t **env, size_t *len);
/* Whether chp_msg_take would do something now (the loop must not sleep
 * then): messages to prepare, or sealed envelopes waiting. */
int chp_msg_has_outgoing(chp_msg *m);
/* Whether anything is queued, being sealed or sealed and not yet taken
 * (tests wait on chp_msg_fd while this holds). */
int chp_msg_pending(chp_msg *m);
/* Readable when the worker finished an envelope; -1 with seal_inline. */
int chp_msg_fd(const chp_msg *m);

/* Tests and fuzzing only: queues an envelope carrying an arbitrary payload
 * of content type `type`, addressed like a DM to contact `to` (name), like
 * a post to room `to` ("#name"), or like a contact request/answer to the
 * identity `to` (an ID string) when type is CHP_CT_INTRO/CHP_CT_ACCEPT.
 * The next chp_msg_take seals it. CHP_E_NOT_FOUND, CHP_E_ARG. */
CHP_WUR int chp_msg_queue_raw(chp_msg *m, const char *to, uint8_t type, const uint8_t *payload,
                              size_t len);

/* The name of messaging command i (CONTROL.md), NULL past the last: the
 * node tells a relay's caller these need an identity. */
const char *chp_msg_command(size_t i);

/* One control request (CONTROL.md "Messaging commands"). Returns 1 if cmd
 * is a messaging command (then *out is a malloc'ed payload of *outlen bytes
 * and *ok says whether it is an ok or an error line), 0 if not ours.
 * After a successful "wipe" *wiped is set: the host must close the store,
 * call chp_account_wipe and exit. */
int chp_msg_control(chp_msg *m, const char *cmd, int nargs, const uint8_t *const *args,
                    const size_t *arglens, int *ok, char **out, size_t *outlen, int *wiped);

#endif
