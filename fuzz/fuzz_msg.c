/* fuzz_msg.c - the messaging layer's parsers behind the tag lookup: two
 * users (real LMDB stores in a temp dir) who are contacts and share #lan.
 * The first input byte picks a path:
 *   0: a control request to the recipient (command chosen by byte 1, then
 *      arguments as u8 length + bytes), as a local client could send;
 *   1: a DM of content type byte 1 with the rest as its payload;
 *   2: a #lan post of that type and payload;
 *   3: a contact request/answer with that payload.
 * Envelopes are sealed for real by the sender's layer, so the fuzzer
 * reaches the payload parsers (text, post, receipt, chunk, handshake)
 * that the AEAD otherwise shields; whatever the recipient answers
 * (receipts, handshakes) goes back to the sender. Must never crash, leak
 * or hang; the recipient must stay unlocked and answer `id`. */
#include "fuzz.h"

#include "node/msg/account.h"
#include "proto/envelope.h"
#include "node/msg/msg.h"
#include "node/store/store.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct side {
    char dir[64];
    chp_store *s;
    chp_msg *m;
    char id[128];
};

static struct side A, B;
static int ready;

static uint64_t fixed_now(void *ctx)
{
    (void)ctx;
    return FUZZ_NOW;
}

static int control(struct side *u, const char *cmd, int n, const uint8_t *const *args,
                   const size_t *lens, char *out, size_t cap)
{
    int ok = 0, wiped = 0;
    char *p = NULL;
    size_t pl = 0;
    FUZZ_CHECK(chp_msg_control(u->m, cmd, n, args, lens, &ok, &p, &pl, &wiped) == 1);
    FUZZ_CHECK(p != NULL && !wiped);
    if (out) {
        size_t k = pl < cap - 1 ? pl : cap - 1;
        memcpy(out, p, k);
        out[k] = '\0';
    }
    free(p);
    return ok;
}

static int control2(struct side *u, const char *cmd, const char *a, const char *b)
{
    const uint8_t *args[2] = {(const uint8_t *)a, (const uint8_t *)b};
    size_t lens[2] = {a ? strlen(a) : 0, b ? strlen(b) : 0};
    return control(u, cmd, a ? (b ? 2 : 1) : 0, args, lens, NULL, 0);
}

/* Moves everything from wants to publish to to. */
static void carry(struct side *from, struct side *to)
{
    uint8_t *env, id[32];
    size_t len;
    while (chp_msg_take(from->m, &env, &len)) {
        chp_envelope_id(env, len, id);
        chp_msg_on_held(from->m, id);
        chp_msg_on_envelope(to->m, env, len, id, 0);
        free(env);
    }
}

static void open_side(struct side *u, const char *nick)
{
    strcpy(u->dir, "/tmp/chp-fuzz-msg-XXXXXX");
    FUZZ_CHECK(mkdtemp(u->dir) != NULL);
    chp_msg_host h = {.now = fixed_now, .pow_ntpb = 1, .seal_inline = 1};
    chp_store_opts so = {.nosync = 1}; /* fsync is not what is fuzzed */
    FUZZ_CHECK(chp_store_open(u->dir, &so, &u->s, NULL) == CHP_OK);
    FUZZ_CHECK(chp_msg_new(u->s, u->dir, &h, &u->m) == CHP_OK);
    const uint8_t *args[2] = {(const uint8_t *)nick, (const uint8_t *)"none"};
    size_t lens[2] = {strlen(nick), 4};
    FUZZ_CHECK(control(u, "init", 2, args, lens, u->id, sizeof u->id));
}

static void close_side(struct side *u)
{
    chp_msg_free(&u->m);
    chp_store_close(&u->s);
    FUZZ_CHECK(chp_account_wipe(u->dir) == CHP_OK);
}

static void teardown(void)
{
    if (!ready)
        return;
    close_side(&A);
    close_side(&B);
    ready = 0;
}

static void setup(void)
{
    open_side(&A, "ali");
    open_side(&B, "bahar");
    FUZZ_CHECK(control2(&A, "contact-add", B.id, "bob"));
    FUZZ_CHECK(control2(&B, "contact-add", A.id, "alice"));
    for (int i = 0; i < 3; i++) {
        carry(&A, &B);
        carry(&B, &A);
    }
    ready = 1;
    static int registered;
    if (!registered++)
        atexit(teardown);
}

static void fuzz_control(const uint8_t *d, size_t n)
{
    size_t ncmd = 0;
    while (chp_msg_command(ncmd))
        ncmd++;
    const char *cmd = chp_msg_command(d[0] % ncmd);
    if (!strcmp(cmd, "wipe"))
        cmd = "id"; /* would end the run's identity */
    const uint8_t *args[4];
    size_t lens[4];
    int na = 0;
    size_t off = 1;
    while (na < 4 && off < n) {
        size_t l = d[off++];
        if (l > n - off)
            l = n - off;
        args[na] = d + off;
        lens[na++] = l;
        off += l;
    }
    char out[256];
    (void)control(&B, cmd, na, args, lens, out, sizeof out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    fuzz_init();
    if (size < 2)
        return 0;
    if (!ready)
        setup();
    uint8_t type = data[1];
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    switch (data[0] % 4) {
    case 0:
        fuzz_control(data + 1, size - 1);
        break;
    case 1:
        if (chp_msg_queue_raw(A.m, "bob", type, p, n) == CHP_OK)
            carry(&A, &B);
        break;
    case 2:
        if (chp_msg_queue_raw(A.m, "#lan", type, p, n) == CHP_OK)
            carry(&A, &B);
        break;
    default:
        if (chp_msg_queue_raw(A.m, B.id, type & 1 ? CHP_CT_INTRO : CHP_CT_ACCEPT, p, n) == CHP_OK)
            carry(&A, &B);
        break;
    }
    carry(&B, &A);
    char out[256];
    const uint8_t *none[1] = {NULL};
    size_t zero[1] = {0};
    FUZZ_CHECK(control(&B, "id", 0, none, zero, out, sizeof out));
    FUZZ_CHECK(!strncmp(out, B.id, strlen(B.id)));
    /* History grows with every accepted text: start over now and then. */
    if (++runs % 2000 == 0) {
        teardown();
        setup();
    }
    return 0;
}
