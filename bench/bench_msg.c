/* bench_msg.c - the recipient side of the messaging layer, each figure
 * beside the raw primitive it is built on, measured in the same run:
 *
 *   bench-msg [-c CONTACTS] [-n MESSAGES] [-t SECONDS]
 *
 * - Recognising one's own envelopes among everything a node carries: the
 *   full chp_msg_on_envelope of envelopes that are not ours (parse + one
 *   tag lookup in a table holding CONTACTS x 9 epochs x 64 tags, the rooms
 *   and the intro tags), beside raw BLAKE2b-256 of 1 KiB (what a relay
 *   pays per envelope anyway). Target: >= 1M/s.
 * - Handling one's own: chp_msg_on_envelope of MESSAGES distinct #lan posts
 *   and DMs (decrypt, inner signature verify, parse, history record
 *   written to LMDB without fsync, event), beside raw Ed25519 verify.
 *   Target: >= 15k/s per core. */
#include "bench/benchlib.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "node/msg/msg.h"
#include "node/store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct user {
    char dir[64];
    chp_store *s;
    chp_msg *m;
    char id[128];
};

static int ctl(struct user *u, char *out, size_t cap, const char *cmd, const char *a, const char *b)
{
    const uint8_t *args[2] = {(const uint8_t *)a, (const uint8_t *)b};
    size_t lens[2] = {a ? strlen(a) : 0, b ? strlen(b) : 0};
    int ok = 0, wiped = 0;
    char *p = NULL;
    size_t pl = 0;
    chp_msg_control(u->m, cmd, a ? (b ? 2 : 1) : 0, args, lens, &ok, &p, &pl, &wiped);
    if (out && p) {
        size_t k = pl < cap - 1 ? pl : cap - 1;
        memcpy(out, p, k);
        out[k] = '\0';
    }
    free(p);
    return ok;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-msg: %s\n", what);
    exit(1);
}

static void open_user(struct user *u, const char *nick)
{
    snprintf(u->dir, sizeof u->dir, "/tmp/chp-bench-msg-XXXXXX");
    if (!mkdtemp(u->dir))
        die("mkdtemp");
    chp_store_opts so = {.nosync = 1};
    chp_msg_host h = {.pow_ntpb = 1, .seal_inline = 1};
    if (chp_store_open(u->dir, &so, &u->s, NULL) != CHP_OK ||
        chp_msg_new(u->s, u->dir, &h, &u->m) != CHP_OK)
        die("cannot open a store");
    if (!ctl(u, u->id, sizeof u->id, "init", nick, "none"))
        die("init failed");
}

static void close_user(struct user *u)
{
    char cmd[128];
    chp_msg_free(&u->m);
    chp_store_close(&u->s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", u->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench-msg: could not remove %s\n", u->dir);
}

/* Envelopes `from` wants out: delivered to `to` (if any), or kept. */
static size_t carry(struct user *from, struct user *to, uint8_t **keep, size_t *keeplen, size_t cap)
{
    uint8_t *env, id[32];
    size_t len, n = 0;
    while (chp_msg_take(from->m, &env, &len)) {
        chp_envelope_id(env, len, id);
        chp_msg_on_held(from->m, id);
        if (to)
            chp_msg_on_envelope(to->m, env, len, id, 0);
        if (keep && n < cap) {
            keep[n] = env;
            keeplen[n] = len;
        } else {
            free(env);
        }
        n++;
    }
    return n;
}

static uint8_t kib[1024], h32[32];

int main(int argc, char **argv)
{
    int contacts = 20, nmsg = 4000;
    double secs = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-c"))
            contacts = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-n"))
            nmsg = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t"))
            secs = atof(argv[i + 1]);
    }
    if (contacts < 1 || nmsg < 1 || chp_crypto_init() != CHP_OK)
        die("usage: bench-msg [-c CONTACTS] [-n MESSAGES] [-t SECONDS]");

    struct user me, *peer = calloc((size_t)contacts, sizeof *peer);
    if (!peer)
        die("out of memory");
    open_user(&me, "me");
    for (int i = 0; i < contacts; i++) {
        char nick[32], name[32];
        snprintf(nick, sizeof nick, "p%d", i);
        snprintf(name, sizeof name, "c%d", i);
        open_user(&peer[i], nick);
        ctl(&peer[i], NULL, 0, "contact-add", me.id, "me");
        ctl(&me, NULL, 0, "contact-add", peer[i].id, name);
        for (int r = 0; r < 3; r++) {
            carry(&peer[i], &me, NULL, NULL, 0);
            carry(&me, &peer[i], NULL, NULL, 0);
        }
    }

    /* envelopes that are not ours: random tags */
    enum { NFOREIGN = 4096 };
    static uint8_t *foreign[NFOREIGN];
    static size_t flen[NFOREIGN];
    chp_identity *stranger = NULL;
    if (chp_identity_generate(chp_rng_system(), &stranger) != CHP_OK)
        die("identity");
    for (int i = 0; i < NFOREIGN; i++) {
        uint8_t tag[16], key[32], payload[900];
        chp_rng_fill(chp_rng_system(), tag, sizeof tag);
        chp_rng_fill(chp_rng_system(), key, sizeof key);
        chp_rng_fill(chp_rng_system(), payload, sizeof payload);
        chp_env_seal_args a = {.created = (uint64_t)time(NULL),
                               .expiry = (uint64_t)time(NULL) + 3600,
                               .tag = tag,
                               .key = key,
                               .type = CHP_CT_TEXT,
                               .payload = payload,
                               .len = sizeof payload,
                               .pow_ntpb = 1};
        flen[i] = chp_envelope_size(sizeof payload);
        foreign[i] = malloc(flen[i]);
        if (!foreign[i] || chp_envelope_seal(&a, stranger, chp_rng_system(), foreign[i], flen[i],
                                             &flen[i]) != CHP_OK)
            die("seal");
    }
    uint8_t zid[32] = {0};
    uint64_t n = 0;
    double t0 = bench_now_s(), t;
    do {
        for (int i = 0; i < NFOREIGN; i++)
            chp_msg_on_envelope(me.m, foreign[i], flen[i], zid, 0);
        n += NFOREIGN;
        t = bench_now_s();
    } while (t - t0 < secs);
    double miss_rate = (double)n / (t - t0);
    n = 0;
    t0 = bench_now_s();
    do {
        for (int i = 0; i < 64; i++)
            chp_hash(h32, 32, kib, sizeof kib, NULL, 0);
        n += 64;
        t = bench_now_s();
    } while (t - t0 < secs);
    double blake_rate = (double)n / (t - t0);

    /* our own: room posts and DMs from the contacts, each new */
    uint8_t **own = calloc((size_t)nmsg, sizeof *own);
    size_t *ownlen = calloc((size_t)nmsg, sizeof *ownlen), nown = 0;
    if (!own || !ownlen)
        die("out of memory");
    for (int i = 0; nown < (size_t)nmsg; i++) {
        struct user *p = &peer[i % contacts];
        char text[200];
        snprintf(text, sizeof text, "message %d: the quick brown fox jumps over the lazy dog", i);
        ctl(p, NULL, 0, "send", i % 2 ? "#lan" : "me", text);
        nown += carry(p, NULL, own + nown, ownlen + nown, (size_t)nmsg - nown);
    }
    t0 = bench_now_s();
    for (size_t i = 0; i < nown; i++)
        chp_msg_on_envelope(me.m, own[i], ownlen[i], zid, 0);
    t = bench_now_s();
    double own_rate = (double)nown / (t - t0);
    char inbox[64];
    ctl(&me, inbox, sizeof inbox, "conversations", NULL, NULL);
    uint8_t pk[32], sk[64], sig[64], msg[200] = {1};
    chp_sign_seed_keypair(kib, pk, sk);
    chp_sign(sig, msg, sizeof msg, sk);
    n = 0;
    t0 = bench_now_s();
    do {
        for (int i = 0; i < 16; i++)
            n += chp_sign_verify(sig, msg, sizeof msg, pk) == CHP_OK;
        t = bench_now_s();
    } while (t - t0 < secs);
    double verify_rate = (double)n / (t - t0);

    printf("contacts %d, tag table ~%d entries\n", contacts, contacts * 9 * 64 + 2 * 9);
    printf("not ours (parse + tag lookup)  %12.0f /s   raw BLAKE2b-256 1 KiB %10.0f /s   "
           "ratio %.2f   (target >= 1,000,000 /s)\n",
           miss_rate, blake_rate, miss_rate / blake_rate);
    printf("ours (open + verify + record)  %12.0f /s   raw Ed25519 verify    %10.0f /s   "
           "ratio %.2f   (target >= 15,000 /s; %zu envelopes)\n",
           own_rate, verify_rate, own_rate / verify_rate, nown);

    for (int i = 0; i < NFOREIGN; i++)
        free(foreign[i]);
    for (size_t i = 0; i < nown; i++)
        free(own[i]);
    free(own);
    free(ownlen);
    chp_identity_destroy(&stranger);
    close_user(&me);
    for (int i = 0; i < contacts; i++)
        close_user(&peer[i]);
    free(peer);
    return 0;
}
