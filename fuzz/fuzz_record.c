/* fuzz_record.c - the messaging layer's local-table records (history
 * messages and contacts, node/msg/msg_rec.c): they are encrypted and
 * authenticated at rest, but a damaged or hand-edited data.mdb reaches
 * these decoders, which must refuse it (CHP_E_CORRUPT) and never crash or
 * read out of bounds. The first byte picks the decoder: even = a history
 * message (49-byte key: msgid, direction, sender; then the value), odd = a
 * contact (32-byte key, then the value). */
#include "fuzz.h"
#include "node/msg/msg_int.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int contact = data[0] & 1;
    data++;
    size--;
    size_t kl = contact ? 32 : MSGID_BYTES + 33;
    if (size < kl)
        return 0;
    const uint8_t *key = data, *v = data + kl;
    size_t vl = size - kl;
    if (contact) {
        struct contact c;
        if (chp_msgi_contact_load(&c, key, v, vl) == CHP_OK) {
            FUZZ_CHECK(c.state >= CS_PENDING && c.state <= CS_REQUEST);
            FUZZ_CHECK(strlen(c.name) <= NAME_MAX_ && strlen(c.nick) <= CHP_NICK_MAX);
            for (size_t i = 0; i < RECV_SLOTS; i++) /* a rebuild computes this many tags */
                FUZZ_CHECK(c.recv_next[i] <= RECV_MAX &&
                           (!c.recv_next[i] || c.recv_epoch[i] % RECV_SLOTS == i));
        }
        return 0;
    }
    struct hmsg h;
    if (chp_msgi_hmsg_load(&h, key, kl, v, vl) == CHP_OK) {
        FUZZ_CHECK(h.text && h.textlen <= TEXT_MAX && h.text[h.textlen] == '\0');
        FUZZ_CHECK(strlen(h.room) <= CHP_ROOM_NAME_MAX && strlen(h.nick) <= CHP_NICK_MAX);
        FUZZ_CHECK(strlen(h.rfpr) <= CHP_FPR_STR_LEN);
        free(h.text);
    } else {
        FUZZ_CHECK(h.text == NULL); /* nothing leaks on a refusal */
    }
    return 0;
}
