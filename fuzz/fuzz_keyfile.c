/* fuzz_keyfile.c - the sealed identity file: mode detection and unsealing
 * with a fixed 32-byte key. Never the passphrase mode: Argon2id costs
 * milliseconds to seconds per input, which would starve the fuzzer. */
#include "fuzz.h"

#include "proto/identity.h"

#include <string.h>

/* Hands out a fixed byte string: re-sealing with the input's own nonce
 * must give back the input exactly. */
struct replay_rng {
    const uint8_t *p;
    size_t left;
};

static void replay_fill(void *ctx, uint8_t *buf, size_t n)
{
    struct replay_rng *r = ctx;
    FUZZ_CHECK(n <= r->left);
    memcpy(buf, r->p, n);
    r->p += n;
    r->left -= n;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    static char sentinel;
    uint8_t key[32];
    int mode = -1;
    /* Not NULL, so the check below sees that a failed unseal clears it. */
    chp_identity *id = (chp_identity *)(void *)&sentinel;
    fuzz_init();
    if (!data)
        data = none;
    fuzz_keyfile_key(key);

    /* The header rules of PROTOCOL.md section 5, restated. */
    int want_mode = 0;
    if (size == CHP_KEYFILE_BYTES && memcmp(data, "CHAPARK1", 8) == 0) {
        static const uint8_t zero[16];
        uint32_t ops = be32(data + 9), mem_kib = be32(data + 13);
        if (data[8] == CHP_KEYFILE_MODE_KEY && ops == 0 && mem_kib == 0 &&
            memcmp(data + 17, zero, 16) == 0)
            want_mode = CHP_KEYFILE_MODE_KEY;
        if (data[8] == CHP_KEYFILE_MODE_PASSPHRASE && ops >= 1 && ops <= CHP_KEYFILE_OPS_MAX &&
            mem_kib >= 8 && mem_kib <= CHP_KEYFILE_MEM_MAX_KIB)
            want_mode = CHP_KEYFILE_MODE_PASSPHRASE;
    }
    int mrc = chp_keyfile_mode(data, size, &mode);
    if (want_mode)
        FUZZ_CHECK(mrc == CHP_OK && mode == want_mode);
    else
        FUZZ_CHECK(mrc == CHP_E_KEYFILE && mode == -1);

    int rc = chp_identity_unseal_key(data, size, key, &id);
    if (rc != CHP_OK) {
        FUZZ_CHECK(id == NULL);
        if (mrc != CHP_OK || mode != CHP_KEYFILE_MODE_KEY)
            FUZZ_CHECK(rc == CHP_E_KEYFILE);
        else
            FUZZ_CHECK(rc == CHP_E_PASSPHRASE);
        return 0;
    }
    FUZZ_CHECK(mrc == CHP_OK && mode == CHP_KEYFILE_MODE_KEY && id != NULL);
    /* One valid file per (seed, key, nonce): sealing again reproduces it. */
    uint8_t out[CHP_KEYFILE_BYTES];
    struct replay_rng nonce = {data + 33, 24};
    chp_rng rng = {replay_fill, &nonce};
    FUZZ_CHECK(chp_identity_seal_key(id, key, &rng, out) == CHP_OK);
    FUZZ_CHECK(memcmp(out, data, CHP_KEYFILE_BYTES) == 0);
    FUZZ_CHECK(chp_sign_pk_valid(chp_identity_pk(id)));
    chp_identity_destroy(&id);
    FUZZ_CHECK(id == NULL);
    return 0;
}
