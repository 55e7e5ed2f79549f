/* mkenv.c - test tool: writes valid (or deliberately bad) envelopes to
 * files, for integration tests that drive real daemons.
 *
 *   chapar-mkenv [-n COUNT] [-t TTL] [-a AGE] [-k KIND] [-s SIZE] PREFIX
 *
 * Writes PREFIX0 ... PREFIX<COUNT-1>. TTL (default 86400) and AGE (created =
 * now - AGE, default 0; negative = in the future) in seconds; SIZE = payload
 * bytes (default 100). KIND: ok (default), badpow (a proof of work that
 * fails), badver (version 2), trunc (one byte short). */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/envelope.h"
#include "proto/identity.h"
#include "proto/pow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long count = 1, ttl = 86400, age = 0, size = 100;
    const char *kind = "ok";
    int opt;
    while ((opt = getopt(argc, argv, "n:t:a:k:s:")) != -1) {
        switch (opt) {
        case 'n':
            count = atol(optarg);
            break;
        case 't':
            ttl = atol(optarg);
            break;
        case 'a':
            age = atol(optarg);
            break;
        case 'k':
            kind = optarg;
            break;
        case 's':
            size = atol(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: chapar-mkenv [-n N] [-t TTL] [-a AGE] [-k KIND] [-s SIZE] PREFIX\n");
            return 2;
        }
    }
    if (optind != argc - 1 || count < 1 || size < 0 || size > CHP_PAYLOAD_MAX ||
        chp_crypto_init() != CHP_OK) {
        fprintf(stderr, "chapar-mkenv: bad arguments\n");
        return 2;
    }
    chp_identity *me = NULL;
    if (chp_identity_generate(chp_rng_system(), &me) != CHP_OK)
        return 1;
    uint8_t *payload = calloc(1, (size_t)size + 1), env[CHP_ENV_MAX_BYTES], tag[16], key[32];
    if (!payload)
        return 1;
    uint64_t now = (uint64_t)time(NULL);
    for (long i = 0; i < count; i++) {
        chp_rng_fill(chp_rng_system(), tag, sizeof tag);
        chp_rng_fill(chp_rng_system(), key, sizeof key);
        snprintf((char *)payload, (size_t)size + 1, "chapar-test-payload-%ld", i);
        uint64_t created = (uint64_t)((int64_t)now - age);
        /* Expired envelopes cannot be sealed "in the past" with a valid
         * lifetime otherwise: seal with the given times directly. */
        chp_env_seal_args a = {.created = created,
                               .expiry = created + (uint64_t)ttl,
                               .tag = tag,
                               .key = key,
                               .type = CHP_CT_TEXT,
                               .payload = payload,
                               .len = (size_t)size};
        size_t n = 0;
        int rc = chp_envelope_seal(&a, me, chp_rng_system(), env, sizeof env, &n);
        if (rc != CHP_OK) {
            fprintf(stderr, "chapar-mkenv: %s\n", chp_strerror(rc));
            return 1;
        }
        if (!strcmp(kind, "badpow")) {
            /* Search for a nonce that fails the default target. */
            uint8_t initial[32];
            chp_hash(initial, 32, env, n - 8, NULL, 0);
            uint64_t target = chp_pow_target(n, (uint64_t)ttl, CHP_POW_NTPB_DEFAULT), nonce = 0;
            while (chp_pow_trial(initial, nonce) <= target)
                nonce++;
            chp_put_be64(env + n - 8, nonce);
        } else if (!strcmp(kind, "badver")) {
            env[0] = 2;
        } else if (!strcmp(kind, "trunc")) {
            n--;
        } else if (strcmp(kind, "ok")) {
            fprintf(stderr, "chapar-mkenv: unknown kind %s\n", kind);
            return 2;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s%ld", argv[optind], i);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(env, 1, n, f) != n || fclose(f) != 0) {
            perror(path);
            return 1;
        }
    }
    free(payload);
    chp_identity_destroy(&me);
    return 0;
}
