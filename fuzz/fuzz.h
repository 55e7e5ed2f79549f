/* fuzz.h - what the fuzz targets, their replay driver and the corpus
 * generator share: the libFuzzer entry point, the fixed keys the seeds are
 * sealed with, and an invariant check that stays on under NDEBUG. */
#ifndef CHP_FUZZ_H
#define CHP_FUZZ_H

#include "proto/crypto.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* libFuzzer's entry point; each fuzz_<name>.c defines it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The clock fuzz_envelope checks against; gen_corpus seals around it. */
#define FUZZ_NOW 1800000000u

/* A violated invariant must crash, so libFuzzer (or the replay ctest)
 * reports it together with the input, whatever NDEBUG says. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The AEAD key fuzz_envelope opens every input with. Seeds sealed under it
 * get past the decryption, which random mutations never would. */
static inline void fuzz_env_key(uint8_t k[32])
{
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)(0x40 + i);
}

/* The 32-byte key fuzz_keyfile unseals every input with. */
static inline void fuzz_keyfile_key(uint8_t k[32])
{
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)(0x80 + 3 * i);
}

/* libsodium once per process; a target that cannot have it is useless. */
static inline void fuzz_init(void)
{
    static int done;
    if (!done) {
        if (chp_crypto_init() != CHP_OK)
            abort();
        done = 1;
    }
}

#endif
