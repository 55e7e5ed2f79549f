/* fuzz_id.c - the Bech32m identity string: parsing arbitrary text, and
 * encoding arbitrary keys; both directions must round-trip. */
#include "fuzz.h"

#include "proto/id.h"

#include <string.h>

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* The input as text: on success it is the encoding of the key it names,
 * in one case throughout. */
static void fuzz_parse(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    uint8_t pk[32], again[32];
    char enc[CHP_ID_STR_LEN + 1];
    int rc = chp_id_parse(s, size, pk);
    if (size != CHP_ID_STR_LEN)
        FUZZ_CHECK(rc == CHP_E_ID_LENGTH);
    if (rc != CHP_OK) {
        FUZZ_CHECK(rc == CHP_E_ID_LENGTH || rc == CHP_E_ID_PREFIX || rc == CHP_E_ID_CHARSET ||
                   rc == CHP_E_ID_CHECKSUM || rc == CHP_E_ID_KEY);
        return;
    }
    FUZZ_CHECK(chp_sign_pk_valid(pk));
    chp_id_encode(pk, enc);
    FUZZ_CHECK(enc[CHP_ID_STR_LEN] == '\0' && strlen(enc) == CHP_ID_STR_LEN);
    int is_lower = 1, is_upper = 1;
    for (size_t i = 0; i < CHP_ID_STR_LEN; i++) {
        FUZZ_CHECK(lower(s[i]) == enc[i]);
        is_lower &= s[i] == enc[i];
        is_upper &= s[i] == upper(enc[i]);
    }
    FUZZ_CHECK(is_lower || is_upper);
    FUZZ_CHECK(chp_id_parse(enc, CHP_ID_STR_LEN, again) == CHP_OK);
    FUZZ_CHECK(memcmp(pk, again, 32) == 0);
}

/* The first 32 bytes as a key: its ID parses back to it, in either case,
 * exactly when it is a usable key; a changed character is refused. */
static void fuzz_encode(const uint8_t *data, size_t size)
{
    uint8_t pk[32], back[32];
    char enc[CHP_ID_STR_LEN + 1], up[CHP_ID_STR_LEN];
    if (size < 32)
        return;
    memcpy(pk, data, 32);
    chp_id_encode(pk, enc);
    FUZZ_CHECK(strlen(enc) == CHP_ID_STR_LEN && memcmp(enc, "chp1", 4) == 0);
    int rc = chp_id_parse(enc, CHP_ID_STR_LEN, back);
    FUZZ_CHECK(rc == (chp_sign_pk_valid(pk) ? CHP_OK : CHP_E_ID_KEY));
    if (rc == CHP_OK)
        FUZZ_CHECK(memcmp(pk, back, 32) == 0);
    for (size_t i = 0; i < CHP_ID_STR_LEN; i++)
        up[i] = upper(enc[i]);
    FUZZ_CHECK(chp_id_parse(up, sizeof up, back) == rc);
    if (size > 32) {
        /* One substituted data or checksum character: Bech32m detects it. */
        static const char alphabet[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        size_t pos = 4 + data[32] % (CHP_ID_STR_LEN - 4);
        char c = alphabet[(size > 33 ? data[33] : 1) % 32];
        if (c != enc[pos]) {
            enc[pos] = c;
            FUZZ_CHECK(chp_id_parse(enc, CHP_ID_STR_LEN, back) == CHP_E_ID_CHECKSUM);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    fuzz_init();
    if (!data)
        data = none;
    fuzz_parse(data, size);
    fuzz_encode(data, size);
    return 0;
}
