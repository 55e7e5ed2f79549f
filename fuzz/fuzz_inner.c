/* fuzz_inner.c - the strict parser of a decrypted inner plaintext, fed
 * directly (the AEAD keeps mutated bytes from ever reaching it through an
 * envelope), checked against the byte layout it documents. */
#include "fuzz.h"

#include "proto/envelope.h"

#include <string.h>

static int is_bucket(size_t n)
{
    for (int i = 0; i < CHP_ENV_NBUCKETS; i++)
        if (n == chp_env_buckets[i])
            return 1;
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    chp_inner in;
    fuzz_init();
    if (!data)
        data = none;
    memset(&in, 0, sizeof in);
    int rc = chp_inner_parse(data, size, &in);

    /* What the layout says the answer must be:
     * sender[32] | sig[64] | type u8 | len u32 | payload | zeros. */
    int want;
    if (!is_bucket(size) || data[96] == 0 || be32(data + 97) > size - CHP_INNER_OVERHEAD)
        want = CHP_E_MALFORMED;
    else if (!all_zero(data + CHP_INNER_OVERHEAD + be32(data + 97),
                       size - CHP_INNER_OVERHEAD - be32(data + 97)))
        want = CHP_E_PADDING;
    else
        want = CHP_OK;
    FUZZ_CHECK(rc == want);
    if (rc != CHP_OK)
        return 0;

    FUZZ_CHECK(memcmp(in.sender, data, 32) == 0);
    FUZZ_CHECK(memcmp(in.sig, data + 32, 64) == 0);
    FUZZ_CHECK(in.type == data[96] && in.type != 0);
    FUZZ_CHECK(in.len == be32(data + 97) && in.len <= size - CHP_INNER_OVERHEAD);
    FUZZ_CHECK(in.payload == data + CHP_INNER_OVERHEAD);
    FUZZ_CHECK(in.payload >= data && in.payload + in.len <= data + size);
    FUZZ_CHECK(all_zero(in.payload + in.len, size - CHP_INNER_OVERHEAD - in.len));
    FUZZ_CHECK(size >= chp_inner_bucket(in.len) && chp_inner_bucket(in.len) != 0);
    return 0;
}
