/* wire.c - node-to-node message encoding and strict decoding. */
#include "proto/wire.h"

#include "proto/cursor.h"
#include "proto/envelope.h"
#include "proto/keys.h"

#include <assert.h>
#include <string.h>

static int printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return 0;
    return 1;
}

static int decode_ids(chp_rd *r, chp_wire_msg *m, int allow_empty)
{
    uint16_t n;
    if (chp_rd_u16(r, &n) != CHP_OK || n > CHP_WIRE_MAX_IDS || (n == 0 && !allow_empty))
        return CHP_E_MALFORMED;
    m->u.ids.n = n;
    return chp_rd_ref(r, &m->u.ids.ids, (size_t)n * 32) == CHP_OK ? CHP_OK : CHP_E_MALFORMED;
}

/* PUSHES body: n u8 (1..255), then n x (len u16 · envelope of a PUSH's
 * size); the whole frame within CHP_WIRE_MAX_FRAME. */
static int decode_pushes(chp_rd *r, size_t framelen, chp_wire_msg *m)
{
    if (chp_rd_u8(r, &m->u.pushes.n) != CHP_OK || m->u.pushes.n == 0 ||
        framelen > CHP_WIRE_MAX_FRAME)
        return CHP_E_MALFORMED;
    m->u.pushes.raw = r->p + r->off;
    for (uint8_t i = 0; i < m->u.pushes.n; i++) {
        uint16_t l;
        const uint8_t *e;
        if (chp_rd_u16(r, &l) != CHP_OK || l < CHP_ENV_OVERHEAD || l > CHP_ENV_MAX_BYTES ||
            chp_rd_ref(r, &e, l) != CHP_OK)
            return CHP_E_MALFORMED;
    }
    m->u.pushes.rawlen = (size_t)(r->p + r->off - m->u.pushes.raw);
    return CHP_OK;
}

int chp_wire_decode(const uint8_t *frame, size_t len, chp_wire_msg *m)
{
    assert((frame || len == 0) && m);
    memset(m, 0, sizeof *m);
    chp_rd r;
    chp_rd_init(&r, frame, len);
    if (chp_rd_u8(&r, &m->type) != CHP_OK)
        goto malformed;
    switch (m->type) {
    case CHP_WIRE_HELLO:
        chp_rd_u8(&r, &m->u.hello.version);
        if (r.err)
            goto malformed;
        if (m->u.hello.version != CHP_WIRE_VERSION)
            return CHP_E_VERSION; /* the rest may have another layout */
        chp_rd_u32(&r, &m->u.hello.caps);
        chp_rd_u16(&r, &m->u.hello.listen_port);
        chp_rd_u32(&r, &m->u.hello.max_frame);
        if (r.err || m->u.hello.max_frame < 4096)
            goto malformed;
        break;
    case CHP_WIRE_PUSH:
        m->u.push.len = chp_rd_left(&r);
        if (m->u.push.len < CHP_ENV_OVERHEAD || m->u.push.len > CHP_ENV_MAX_BYTES)
            goto malformed;
        chp_rd_ref(&r, &m->u.push.env, m->u.push.len);
        break;
    case CHP_WIRE_IHAVE:
    case CHP_WIRE_IWANT:
    case CHP_WIRE_QUERY:
        if (decode_ids(&r, m, 0) != CHP_OK)
            goto malformed;
        break;
    case CHP_WIRE_GRAFT:
    case CHP_WIRE_HELD:
        if (decode_ids(&r, m, 1) != CHP_OK)
            goto malformed;
        break;
    case CHP_WIRE_PRUNE:
        break;
    case CHP_WIRE_PUSHES:
        if (decode_pushes(&r, len, m) != CHP_OK)
            goto malformed;
        break;
    case CHP_WIRE_NEG:
        chp_rd_u32(&r, &m->u.neg.session);
        chp_rd_u8(&r, &m->u.neg.initiator);
        m->u.neg.len = chp_rd_left(&r);
        if (r.err || m->u.neg.initiator > (CHP_NEG_FROM_INITIATOR | CHP_NEG_MORE) ||
            m->u.neg.len == 0)
            goto malformed;
        m->u.neg.more = (m->u.neg.initiator & CHP_NEG_MORE) != 0;
        m->u.neg.initiator &= CHP_NEG_FROM_INITIATOR;
        chp_rd_ref(&r, &m->u.neg.msg, m->u.neg.len);
        break;
    case CHP_WIRE_PING:
    case CHP_WIRE_PONG:
        chp_rd_u64(&r, &m->u.nonce);
        break;
    case CHP_WIRE_PEERS: {
        chp_rd_u8(&r, &m->u.peers.n);
        if (r.err || m->u.peers.n > CHP_WIRE_MAX_PEERS)
            goto malformed;
        m->u.peers.raw = frame + r.off;
        for (uint8_t i = 0; i < m->u.peers.n; i++) {
            uint8_t l;
            const uint8_t *a;
            if (chp_rd_u8(&r, &l) != CHP_OK || l == 0 || l > CHP_WIRE_MAX_ADDR ||
                chp_rd_ref(&r, &a, l) != CHP_OK || !printable(a, l))
                goto malformed;
        }
        m->u.peers.rawlen = (size_t)(frame + r.off - m->u.peers.raw);
        break;
    }
    case CHP_WIRE_BYE: {
        const uint8_t *t;
        chp_rd_u16(&r, &m->u.bye.code);
        chp_rd_u8(&r, &m->u.bye.len);
        if (r.err || m->u.bye.len > CHP_WIRE_MAX_TEXT ||
            chp_rd_ref(&r, &t, m->u.bye.len) != CHP_OK ||
            !chp_utf8_valid((const char *)t, m->u.bye.len) || memchr(t, 0, m->u.bye.len))
            goto malformed;
        m->u.bye.text = (const char *)t;
        break;
    }
    default:
        goto malformed;
    }
    if (r.err)
        goto malformed;
    if (chp_rd_left(&r)) {
        memset(m, 0, sizeof *m);
        return CHP_E_TRAILING;
    }
    return CHP_OK;
malformed:
    memset(m, 0, sizeof *m);
    return CHP_E_MALFORMED;
}

int chp_wire_peer_at(const chp_wire_msg *m, uint8_t i, const char **addr, size_t *len)
{
    assert(m && addr && len);
    if (m->type != CHP_WIRE_PEERS || i >= m->u.peers.n)
        return CHP_E_ARG;
    const uint8_t *p = m->u.peers.raw;
    for (uint8_t k = 0; k < i; k++)
        p += 1 + p[0];
    *len = p[0];
    *addr = (const char *)p + 1;
    return CHP_OK;
}

int chp_wire_pushes_next(const chp_wire_msg *m, size_t *off, const uint8_t **env, size_t *len)
{
    assert(m && off && env && len);
    if (m->type != CHP_WIRE_PUSHES || *off + 2 > m->u.pushes.rawlen)
        return CHP_E_NOT_FOUND;
    const uint8_t *p = m->u.pushes.raw + *off;
    *len = (size_t)p[0] << 8 | p[1];
    *env = p + 2;
    *off += 2 + *len; /* the decoder checked every length */
    return CHP_OK;
}

/* Finishes an encoding: the writer's error or the length. */
static int done(const chp_wr *w, size_t *len)
{
    if (w->err)
        return w->err;
    *len = w->off;
    return CHP_OK;
}

int chp_wire_hello(uint8_t *buf, size_t cap, size_t *len, uint32_t caps, uint16_t listen_port,
                   uint32_t max_frame)
{
    if (max_frame < 4096)
        return CHP_E_ARG;
    chp_wr w;
    chp_wr_init(&w, buf, cap);
    chp_wr_u8(&w, CHP_WIRE_HELLO);
    chp_wr_u8(&w, CHP_WIRE_VERSION);
    chp_wr_u32(&w, caps);
    chp_wr_u16(&w, listen_port);
    chp_wr_u32(&w, max_frame);
    return done(&w, len);
}

int chp_wire_push(uint8_t *buf, size_t cap, size_t *len, const uint8_t *env, size_t envlen)
{
    if (envlen < CHP_ENV_OVERHEAD || envlen > CHP_ENV_MAX_BYTES)
        return CHP_E_ARG;
    chp_wr w;
    chp_wr_init(&w, buf, cap);
    chp_wr_u8(&w, CHP_WIRE_PUSH);
    chp_wr_bytes(&w, env, envlen);
    return done(&w, len);
}

int chp_wire_pushes_add(uint8_t *buf, size_t cap, size_t *len, const uint8_t *env, size_t envlen)
{
    assert(len && (buf || cap == 0) && (*len == 0 || *len >= CHP_WIRE_PUSHES_HDR));
    if (!env || envlen < CHP_ENV_OVERHEAD || envlen > CHP_ENV_MAX_BYTES)
        return CHP_E_ARG;
    size_t at = *len ? *len : CHP_WIRE_PUSHES_HDR, end = at + 2 + envlen;
    if (end > cap || end > CHP_WIRE_MAX_FRAME || (*len && buf[1] == CHP_WIRE_MAX_PUSHES))
        return CHP_E_OVERFLOW;
    if (!*len) {
        buf[0] = CHP_WIRE_PUSHES;
        buf[1] = 0;
    }
    buf[at] = (uint8_t)(envlen >> 8);
    buf[at + 1] = (uint8_t)envlen;
    memcpy(buf + at + 2, env, envlen);
    buf[1]++;
    *len = end;
    return CHP_OK;
}

int chp_wire_ids(uint8_t *buf, size_t cap, size_t *len, uint8_t type, const uint8_t *ids,
                 uint16_t n)
{
    int empty_ok = type == CHP_WIRE_GRAFT || type == CHP_WIRE_HELD;
    if ((type != CHP_WIRE_IHAVE && type != CHP_WIRE_IWANT && type != CHP_WIRE_GRAFT &&
         type != CHP_WIRE_QUERY && type != CHP_WIRE_HELD) ||
        n > CHP_WIRE_MAX_IDS || (n == 0 && !empty_ok) || (n && !ids))
        return CHP_E_ARG;
    chp_wr w;
    chp_wr_init(&w, buf, cap);
    chp_wr_u8(&w, type);
    chp_wr_u16(&w, n);
    chp_wr_bytes(&w, ids, (size_t)n * 32);
    return done(&w, len);
}

int chp_wire_prune(uint8_t *buf, size_t cap, size_t *len)
{
    chp_wr w;
    chp_wr_init(&w, buf, cap);
    chp_wr_u8(&w, CHP_WIRE_PRUNE);
    return done(&w, len);
}

int chp_wire_neg(uint8_t *buf, size_t cap, size_t *len, uint32_t session, uint8_t flags,
                 const uint8_t *msg, size_t msglen)
{
    if (flags > (CHP_NEG_FROM_INITIATOR | CHP_NEG_MORE) || msglen == 0 ||
        msglen > CHP_NEG_FRAG_MAX || !msg)
        return CHP_E_ARG;
    chp_wr w;
    chp_wr_init(&w, buf, cap);
    chp_wr_u8(&w, CHP_WIRE_NEG);
    chp_wr_u32(&w, session);
    chp_wr_u8(&w, flags);
    chp_wr_bytes(&w, msg, msglen);
    return done(&w, len);
}

int chp_wire_ping(uint8_t *buf, size_t cap, size_t *len, uint8_t type, uint64_t nonce)
{
    if (type != CHP_WIRE_PING && type != CHP_WIRE_PONG)
        return CHP_E_ARG;
    chp_wr w;
    chp_wr_init(&w, buf, cap);
    chp_wr_u8(&w, type);
    chp_wr_u64(&w, nonce);
    return done(&w, len);
}

int chp_wire_peers(uint8_t *buf, size_t cap, size_t *len, const char *const *addrs, uint8_t n)
{
    if (n > CHP_WIRE_MAX_PEERS || (n && !addrs))
        return CHP_E_ARG;
    chp_wr w;
    chp_wr_init(&w, buf, cap);
    chp_wr_u8(&w, CHP_WIRE_PEERS);
    chp_wr_u8(&w, n);
    for (uint8_t i = 0; i < n; i++) {
        size_t l = strlen(addrs[i]);
        if (l == 0 || l > CHP_WIRE_MAX_ADDR || !printable((const uint8_t *)addrs[i], l))
            return CHP_E_ARG;
        chp_wr_u8(&w, (uint8_t)l);
        chp_wr_bytes(&w, addrs[i], l);
    }
    return done(&w, len);
}

int chp_wire_bye(uint8_t *buf, size_t cap, size_t *len, uint16_t code, const char *text)
{
    size_t l = text ? strlen(text) : 0;
    if (l > CHP_WIRE_MAX_TEXT || !chp_utf8_valid(text ? text : "", l))
        return CHP_E_ARG;
    chp_wr w;
    chp_wr_init(&w, buf, cap);
    chp_wr_u8(&w, CHP_WIRE_BYE);
    chp_wr_u16(&w, code);
    chp_wr_u8(&w, (uint8_t)l);
    chp_wr_bytes(&w, text ? text : "", l);
    return done(&w, len);
}
