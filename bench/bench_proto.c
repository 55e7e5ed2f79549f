/* bench_proto.c - what the proto library costs on this machine, each figure
 * beside the raw primitive it is built on, measured in the same run (these
 * VMs drift 30-40% between runs; only same-run ratios mean anything).
 *
 *   bench-proto [-t SECONDS] [-n SEALS]
 *
 * Reports: raw BLAKE2b-256 over 1 KiB, raw Ed25519 verify, raw
 * XChaCha20-Poly1305 1 KiB decrypt; chp_envelope_check (the relay path: size,
 * version, times, proof of work, id) and chp_envelope_open (decrypt + inner
 * verify) on a 1 KiB-bucket envelope; proof-of-work solving time for a
 * 1 KiB, 1-day envelope at the network default difficulty. */
#include "bench/benchlib.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/identity.h"
#include "proto/keys.h"
#include "proto/pow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double secs = 1.0;
static volatile uint8_t sink;

/* Runs fn in batches until `secs` elapsed; returns calls per second. */
static double rate(void (*fn)(void *), void *arg)
{
    uint64_t n = 0;
    double t0 = bench_now_s(), t;
    do {
        for (int i = 0; i < 64; i++)
            fn(arg);
        n += 64;
        t = bench_now_s();
    } while (t - t0 < secs);
    return (double)n / (t - t0);
}

static uint8_t kib[1024], h32[32];
static void do_blake(void *a)
{
    (void)a;
    chp_hash(h32, 32, kib, sizeof kib, NULL, 0);
    sink ^= h32[0];
}

static uint8_t vpk[32], vsig[64], vmsg[121];
static void do_verify(void *a)
{
    (void)a;
    sink ^= (uint8_t)chp_sign_verify(vsig, vmsg, sizeof vmsg, vpk);
}

static uint8_t aead_key[32], aead_nonce[24], aead_ct[1024 + 16], aead_pt[1024];
static void do_aead(void *a)
{
    (void)a;
    sink ^=
        (uint8_t)chp_aead_decrypt(aead_pt, aead_ct, sizeof aead_ct, NULL, 0, aead_nonce, aead_key);
}

struct envctx {
    uint8_t env[CHP_ENV_MAX_BYTES];
    size_t n;
    uint64_t now;
    uint8_t key[32];
    uint8_t pt[CHP_ENV_BUCKET_MAX];
    int fails;
};
static void do_check(void *a)
{
    struct envctx *e = a;
    uint8_t id[32];
    if (chp_envelope_check(e->env, e->n, e->now, NULL, NULL, id) != CHP_OK)
        e->fails++;
    sink ^= id[0];
}
static void do_open(void *a)
{
    struct envctx *e = a;
    chp_inner in;
    if (chp_envelope_open(e->env, e->n, e->key, e->pt, sizeof e->pt, NULL, &in) != CHP_OK)
        e->fails++;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int seals = 40, opt;
    while ((opt = getopt(argc, argv, "t:n:h")) != -1) {
        if (opt == 't')
            secs = atof(optarg);
        else if (opt == 'n')
            seals = atoi(optarg);
        else {
            fprintf(stderr, "usage: bench-proto [-t SECONDS] [-n SEALS]\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (secs <= 0 || seals <= 0 || chp_crypto_init() != CHP_OK)
        return 2;
    chp_identity *me = NULL;
    if (chp_identity_generate(chp_rng_system(), &me) != CHP_OK)
        return 1;
    chp_rng_fill(chp_rng_system(), kib, sizeof kib);
    memcpy(vpk, chp_identity_pk(me), 32);
    chp_identity_sign(me, vmsg, sizeof vmsg, vsig);
    chp_aead_encrypt(aead_ct, aead_pt, sizeof aead_pt, NULL, 0, aead_nonce, aead_key);

    static struct envctx e;
    uint8_t room[32], tag[16], payload[1024 - CHP_INNER_OVERHEAD];
    memset(payload, 'x', sizeof payload);
    e.now = (uint64_t)time(NULL);
    if (chp_ks_room_public("#bench", 6, room) != CHP_OK)
        return 1;
    chp_ks_room_tag(room, chp_epoch_of(e.now), tag);
    chp_ks_room_msg_key(room, chp_epoch_of(e.now), e.key);
    chp_env_seal_args a = {.created = e.now,
                           .expiry = e.now + 86400,
                           .tag = tag,
                           .key = e.key,
                           .type = CHP_CT_ROOM,
                           .payload = payload,
                           .len = sizeof payload};

    /* Proof-of-work cost: the expected number of trials is fixed by the
     * formula; the time is what this core pays. */
    double *ms = calloc((size_t)seals, sizeof *ms);
    if (!ms)
        return 1;
    for (int i = 0; i < seals; i++) {
        double t0 = bench_now_s();
        if (chp_envelope_seal(&a, me, chp_rng_system(), e.env, sizeof e.env, &e.n) != CHP_OK)
            return 1;
        ms[i] = (bench_now_s() - t0) * 1e3;
    }
    double sum = 0;
    for (int i = 0; i < seals; i++)
        sum += ms[i];
    qsort(ms, (size_t)seals, sizeof *ms, cmp_d);
    uint64_t target = chp_pow_target(e.n, 86400, CHP_POW_NTPB_DEFAULT);
    double trials = 18446744073709551615.0 / (double)target;

    uint8_t init[32] = {0};
    uint64_t tn = 0;
    double t0 = bench_now_s(), t1;
    do {
        for (int i = 0; i < 1024; i++)
            sink ^= (uint8_t)chp_pow_trial(init, tn++);
        t1 = bench_now_s();
    } while (t1 - t0 < secs);
    double trial_rate = (double)tn / (t1 - t0);

    double r_blake = rate(do_blake, NULL);
    double r_verify = rate(do_verify, NULL);
    double r_aead = rate(do_aead, NULL);
    double r_check = rate(do_check, &e);
    double r_open = rate(do_open, &e);

    printf("# bench-proto: %zu-byte envelope (1 KiB bucket), 1-day TTL, one core\n", e.n);
    printf("raw blake2b-256 1KiB      %10.0f /s\n", r_blake);
    printf("raw ed25519 verify        %10.0f /s\n", r_verify);
    printf("raw xchacha20poly1305 1KiB%10.0f /s\n", r_aead);
    printf("envelope check            %10.0f /s   ratio to blake2b 1KiB: %.2f\n", r_check,
           r_check / r_blake);
    printf("envelope open             %10.0f /s   ratio to ed25519 verify: %.2f\n", r_open,
           r_open / r_verify);
    printf("pow trials                %10.0f /s\n", trial_rate);
    printf("pow expected trials       %10.0f   (ntpb %d) => expected %.1f ms\n", trials,
           CHP_POW_NTPB_DEFAULT, trials / trial_rate * 1e3);
    printf("pow seal time (n=%d)      mean %.1f ms  p50 %.1f ms  p90 %.1f ms\n", seals, sum / seals,
           ms[seals / 2], ms[seals * 9 / 10]);
    free(ms);
    chp_identity_destroy(&me);
    if (e.fails) {
        fprintf(stderr, "bench-proto: %d envelope operations failed\n", e.fails);
        return 1;
    }
    return 0;
}
