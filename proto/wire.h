/* wire.h - node-to-node messages: one ZeroMQ frame each, a type byte then
 * a strictly parsed body (docs/PROTOCOL.md §15). Decoding never copies
 * large bodies: envelopes, id lists and Negentropy payloads point into the
 * frame, valid as long as the frame is. */
#ifndef CHP_WIRE_H
#define CHP_WIRE_H

#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_WIRE_VERSION   1
#define CHP_WIRE_MAX_IDS   1024        /* ids per IHAVE / IWANT / GRAFT / QUERY / HELD */
#define CHP_WIRE_MAX_PEERS 32          /* addresses per PEERS */
#define CHP_WIRE_MAX_ADDR  200         /* bytes of one address string */
#define CHP_WIRE_MAX_TEXT  200         /* bytes of a BYE reason */
#define CHP_WIRE_MAX_FRAME (64 * 1024) /* largest node-link message */
/* ZMQ_MAXMSGSIZE of node links: libzmq checks it against the ZMTP frame as
 * it arrives, which under CURVE is the MESSAGE command (8-byte name, 8-byte
 * nonce, 16-byte MAC, 1 flags byte) around the message. */
#define CHP_WIRE_ZMQ_MAXMSG (CHP_WIRE_MAX_FRAME + 64)

/* Capability bits in HELLO. */
#define CHP_CAP_RELAY    0x1u  /* runs as a relay (large store, headless) */
#define CHP_CAP_NEG      0x2u  /* answers Negentropy sync */
#define CHP_CAP_LAZY     0x4u  /* understands IHAVE/IWANT/PRUNE/GRAFT */
#define CHP_CAP_NEG_FRAG 0x8u  /* takes a Negentropy message in several NEG frames */
#define CHP_CAP_HELD     0x10u /* answers QUERY with HELD (durably stored ids) */
#define CHP_CAP_PUSHES   0x20u /* takes PUSHES (several envelopes in one frame) */

/* PUSHES: 1..CHP_WIRE_MAX_PUSHES envelopes, each behind its u16 length, in
 * one frame of at most CHP_WIRE_MAX_FRAME bytes. */
#define CHP_WIRE_MAX_PUSHES 255
#define CHP_WIRE_PUSHES_HDR 2 /* type u8 · n u8 */

/* NEG flags byte: bit 0 from the initiator, bit 1 the Negentropy message
 * continues in the next NEG frame of the same session and direction. A
 * message reassembled from fragments is at most CHP_NEG_MSG_MAX bytes. */
#define CHP_NEG_FROM_INITIATOR 0x1u
#define CHP_NEG_MORE           0x2u
#define CHP_NEG_MSG_MAX        (512 * 1024)
#define CHP_NEG_FRAG_MAX       (CHP_WIRE_MAX_FRAME - 6) /* message bytes per frame */

enum chp_wire_type {
    CHP_WIRE_HELLO = 1,
    CHP_WIRE_PUSH = 2,  /* a full envelope */
    CHP_WIRE_IHAVE = 3, /* ids announced lazily */
    CHP_WIRE_IWANT = 4, /* ids requested */
    CHP_WIRE_PRUNE = 5, /* move me to your lazy set */
    CHP_WIRE_GRAFT = 6, /* move me to your eager set (and send these ids) */
    CHP_WIRE_NEG = 7,   /* Negentropy message of sync session `session` */
    CHP_WIRE_PING = 8,
    CHP_WIRE_PONG = 9,
    CHP_WIRE_PEERS = 10,  /* addresses for the passive view */
    CHP_WIRE_BYE = 11,    /* closing, with a reason */
    CHP_WIRE_QUERY = 12,  /* which of these ids do you hold (committed)? */
    CHP_WIRE_HELD = 13,   /* the answer: the ids of a QUERY that are stored */
    CHP_WIRE_PUSHES = 14, /* several envelopes (to a neighbour with CHP_CAP_PUSHES) */
};

typedef struct chp_wire_msg {
    uint8_t type;
    union {
        struct {
            uint8_t version;
            uint32_t caps;
            uint16_t listen_port; /* 0 = not listening */
            uint32_t max_frame;
        } hello;
        struct {
            const uint8_t *env;
            size_t len;
        } push;
        struct {
            const uint8_t *raw; /* n x (len u16 · envelope), for chp_wire_pushes_next */
            size_t rawlen;
            uint8_t n;
        } pushes;
        struct {
            const uint8_t *ids; /* n * 32 bytes, borrowed */
            uint16_t n;
        } ids; /* IHAVE, IWANT, GRAFT, QUERY, HELD */
        struct {
            uint32_t session;
            uint8_t initiator; /* 1 = from the side that initiated */
            uint8_t more;      /* 1 = the message continues in the next NEG */
            const uint8_t *msg;
            size_t len;
        } neg;
        uint64_t nonce; /* PING, PONG */
        struct {
            const uint8_t *raw; /* the encoded list, for chp_wire_peer_at */
            size_t rawlen;
            uint8_t n;
        } peers;
        struct {
            uint16_t code;
            const char *text; /* not NUL-terminated */
            uint8_t len;
        } bye;
    } u;
} chp_wire_msg;

/* Parses one frame. CHP_E_MALFORMED for unknown types, bad lengths, counts
 * over the limits or non-canonical bodies; CHP_E_TRAILING for extra bytes;
 * CHP_E_VERSION for a HELLO of another version (type and u.hello.version
 * are set so the caller can answer politely). BYE reasons are UTF-8
 * without NUL bytes; callers still sanitise them before display. */
CHP_WUR int chp_wire_decode(const uint8_t *frame, size_t len, chp_wire_msg *out);

/* The i-th address of a decoded PEERS message (borrowed, not
 * NUL-terminated). */
CHP_WUR int chp_wire_peer_at(const chp_wire_msg *m, uint8_t i, const char **addr, size_t *len);

/* The next envelope of a decoded PUSHES: *off starts at 0 and is moved
 * past it. CHP_OK, or CHP_E_NOT_FOUND after the last one. */
CHP_WUR int chp_wire_pushes_next(const chp_wire_msg *m, size_t *off, const uint8_t **env,
                                 size_t *len);

/* Encoders write into buf (cap bytes), set *len. CHP_E_OVERFLOW if cap is
 * too small, CHP_E_ARG for values out of the limits above. */
CHP_WUR int chp_wire_hello(uint8_t *buf, size_t cap, size_t *len, uint32_t caps,
                           uint16_t listen_port, uint32_t max_frame);
CHP_WUR int chp_wire_push(uint8_t *buf, size_t cap, size_t *len, const uint8_t *env, size_t envlen);
/* Appends env to the PUSHES frame in buf[0..*len) (*len = 0: a new frame
 * of one envelope). CHP_E_OVERFLOW when it would pass cap, CHP_WIRE_MAX_FRAME
 * or CHP_WIRE_MAX_PUSHES envelopes: send the frame and start another. */
CHP_WUR int chp_wire_pushes_add(uint8_t *buf, size_t cap, size_t *len, const uint8_t *env,
                                size_t envlen);
/* type is CHP_WIRE_IHAVE, CHP_WIRE_IWANT, CHP_WIRE_GRAFT, CHP_WIRE_QUERY or
 * CHP_WIRE_HELD (GRAFT and HELD may be empty). */
CHP_WUR int chp_wire_ids(uint8_t *buf, size_t cap, size_t *len, uint8_t type, const uint8_t *ids,
                         uint16_t n);
CHP_WUR int chp_wire_prune(uint8_t *buf, size_t cap, size_t *len);
/* flags: CHP_NEG_FROM_INITIATOR | CHP_NEG_MORE (a fragment, §15). */
CHP_WUR int chp_wire_neg(uint8_t *buf, size_t cap, size_t *len, uint32_t session, uint8_t flags,
                         const uint8_t *msg, size_t msglen);
CHP_WUR int chp_wire_ping(uint8_t *buf, size_t cap, size_t *len, uint8_t type, uint64_t nonce);
CHP_WUR int chp_wire_peers(uint8_t *buf, size_t cap, size_t *len, const char *const *addrs,
                           uint8_t n);
CHP_WUR int chp_wire_bye(uint8_t *buf, size_t cap, size_t *len, uint16_t code, const char *text);

#endif
