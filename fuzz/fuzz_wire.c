/* fuzz_wire.c - node-to-node frames: chp_wire_decode must never crash, and
 * whatever it accepts must re-encode to exactly the same bytes (one valid
 * encoding per message). */
#include "fuzz.h"

#include "proto/wire.h"

#include <string.h>

static uint8_t out[CHP_WIRE_MAX_FRAME + 64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    chp_wire_msg m;
    size_t len = 0;
    int rc;
    fuzz_init();
    if (!data)
        data = none;
    if (chp_wire_decode(data, size, &m) != CHP_OK)
        return 0;
    switch (m.type) {
    case CHP_WIRE_HELLO:
        rc = chp_wire_hello(out, sizeof out, &len, m.u.hello.caps, m.u.hello.listen_port,
                            m.u.hello.max_frame);
        break;
    case CHP_WIRE_PUSH:
        FUZZ_CHECK(m.u.push.env >= data && m.u.push.env + m.u.push.len <= data + size);
        rc = chp_wire_push(out, sizeof out, &len, m.u.push.env, m.u.push.len);
        break;
    case CHP_WIRE_PUSHES: {
        const uint8_t *env;
        size_t off = 0, elen, k = 0;
        rc = CHP_OK;
        while (rc == CHP_OK && chp_wire_pushes_next(&m, &off, &env, &elen) == CHP_OK) {
            FUZZ_CHECK(env >= data && env + elen <= data + size);
            rc = chp_wire_pushes_add(out, sizeof out, &len, env, elen);
            k++;
        }
        FUZZ_CHECK(k == m.u.pushes.n);
        break;
    }
    case CHP_WIRE_IHAVE:
    case CHP_WIRE_IWANT:
    case CHP_WIRE_GRAFT:
    case CHP_WIRE_QUERY:
    case CHP_WIRE_HELD:
        rc = chp_wire_ids(out, sizeof out, &len, m.type, m.u.ids.ids, m.u.ids.n);
        break;
    case CHP_WIRE_PRUNE:
        rc = chp_wire_prune(out, sizeof out, &len);
        break;
    case CHP_WIRE_NEG:
        rc = chp_wire_neg(out, sizeof out, &len, m.u.neg.session,
                          (uint8_t)(m.u.neg.initiator | (m.u.neg.more ? CHP_NEG_MORE : 0)),
                          m.u.neg.msg, m.u.neg.len);
        break;
    case CHP_WIRE_PING:
    case CHP_WIRE_PONG:
        rc = chp_wire_ping(out, sizeof out, &len, m.type, m.u.nonce);
        break;
    case CHP_WIRE_PEERS: {
        static char addrs[CHP_WIRE_MAX_PEERS][CHP_WIRE_MAX_ADDR + 1];
        const char *ptrs[CHP_WIRE_MAX_PEERS];
        for (uint8_t i = 0; i < m.u.peers.n; i++) {
            const char *a;
            size_t al;
            FUZZ_CHECK(chp_wire_peer_at(&m, i, &a, &al) == CHP_OK);
            FUZZ_CHECK(al >= 1 && al <= CHP_WIRE_MAX_ADDR);
            memcpy(addrs[i], a, al);
            addrs[i][al] = '\0';
            ptrs[i] = addrs[i];
        }
        rc = chp_wire_peers(out, sizeof out, &len, ptrs, m.u.peers.n);
        break;
    }
    case CHP_WIRE_BYE: {
        char text[CHP_WIRE_MAX_TEXT + 1];
        memcpy(text, m.u.bye.text, m.u.bye.len);
        text[m.u.bye.len] = '\0';
        rc = chp_wire_bye(out, sizeof out, &len, m.u.bye.code, text);
        break;
    }
    default:
        FUZZ_CHECK(0 && "decoded an unknown type");
        return 0;
    }
    FUZZ_CHECK(rc == CHP_OK);
    FUZZ_CHECK(len == size && memcmp(out, data, size) == 0);
    return 0;
}
