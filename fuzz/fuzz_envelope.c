/* fuzz_envelope.c - the relay's view of an envelope: structural parse,
 * policy check under the network's and a lowered proof of work, and
 * opening with a fixed key, cross-checked against each other. */
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

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static int hdr_equal(const chp_env_hdr *a, const chp_env_hdr *b)
{
    return a->version == b->version && a->created == b->created && a->expiry == b->expiry &&
           memcmp(a->tag, b->tag, sizeof a->tag) == 0 && memcmp(a->key, b->key, sizeof a->key) == 0;
}

/* Parse: succeeds exactly for a bucket-sized body with version 1, and then
 * every output is the plain decoding of its bytes. */
static int fuzz_parse(const uint8_t *data, size_t size, chp_env_hdr *hdr, size_t *ctlen)
{
    const uint8_t *ct = NULL;
    uint64_t nonce = 0;
    int rc = chp_envelope_parse(data, size, hdr, &ct, ctlen, &nonce);
    int sized = size >= CHP_ENV_OVERHEAD && is_bucket(size - CHP_ENV_OVERHEAD);
    if (!sized) {
        FUZZ_CHECK(rc == CHP_E_ENV_SIZE);
    } else if (data[0] != CHP_ENV_VERSION) {
        FUZZ_CHECK(rc == CHP_E_ENV_VERSION);
    } else {
        FUZZ_CHECK(rc == CHP_OK);
        FUZZ_CHECK(hdr->version == CHP_ENV_VERSION);
        FUZZ_CHECK(hdr->created == be64(data + 1) && hdr->expiry == be64(data + 9));
        FUZZ_CHECK(memcmp(hdr->tag, data + 17, CHP_ENV_TAG_BYTES) == 0);
        FUZZ_CHECK(memcmp(hdr->key, data + 33, 32) == 0);
        FUZZ_CHECK(ct == data + CHP_ENV_HDR_BYTES);
        FUZZ_CHECK(*ctlen == size - CHP_ENV_HDR_BYTES - CHP_ENV_POW_NONCE_BYTES);
        FUZZ_CHECK(is_bucket(*ctlen - CHP_AEAD_TAG_BYTES));
        FUZZ_CHECK(nonce == be64(data + size - CHP_ENV_POW_NONCE_BYTES));
        /* Every output may be NULL. */
        FUZZ_CHECK(chp_envelope_parse(data, size, NULL, NULL, NULL, NULL) == CHP_OK);
    }
    return rc;
}

/* Check: success implies a clean parse, the same header, the id of the
 * bytes and the lifetime rules; failure passes a parse error through. */
static int fuzz_check(const uint8_t *data, size_t size, const chp_env_params *p, int parse_rc,
                      const chp_env_hdr *parsed)
{
    chp_env_hdr hdr;
    uint8_t id[CHP_ENV_ID_BYTES], want[CHP_ENV_ID_BYTES];
    int rc = chp_envelope_check(data, size, FUZZ_NOW, p, &hdr, id);
    if (parse_rc != CHP_OK) {
        FUZZ_CHECK(rc == parse_rc);
        return rc;
    }
    if (rc != CHP_OK) {
        FUZZ_CHECK(rc == CHP_E_ENV_TTL || rc == CHP_E_ENV_EXPIRED || rc == CHP_E_ENV_FUTURE ||
                   rc == CHP_E_ENV_POW);
        return rc;
    }
    chp_env_params def = chp_env_params_default();
    const chp_env_params *pp = p ? p : &def;
    FUZZ_CHECK(hdr_equal(&hdr, parsed));
    chp_envelope_id(data, size, want);
    FUZZ_CHECK(memcmp(id, want, sizeof id) == 0);
    FUZZ_CHECK(hdr.expiry > hdr.created && hdr.expiry - hdr.created <= pp->max_ttl);
    FUZZ_CHECK(FUZZ_NOW < hdr.expiry);
    FUZZ_CHECK(hdr.created <= FUZZ_NOW || hdr.created - FUZZ_NOW <= pp->clock_skew);
    /* The outputs are optional. */
    FUZZ_CHECK(chp_envelope_check(data, size, FUZZ_NOW, p, NULL, NULL) == CHP_OK);
    return rc;
}

/* Open: success means a parsed envelope whose payload lies inside the
 * plaintext, a valid inner plaintext; failure wipes the plaintext. */
static void fuzz_open(const uint8_t *data, size_t size, int parse_rc, const chp_env_hdr *parsed,
                      size_t ctlen)
{
    static uint8_t pt[CHP_ENV_BUCKET_MAX];
    uint8_t key[32];
    chp_env_hdr hdr;
    chp_inner in;
    fuzz_env_key(key);
    memset(pt, 0xa5, sizeof pt);
    int rc = chp_envelope_open(data, size, key, pt, sizeof pt, &hdr, &in);
    if (parse_rc != CHP_OK) {
        FUZZ_CHECK(rc == parse_rc);
        return;
    }
    size_t ptlen = ctlen - CHP_AEAD_TAG_BYTES;
    if (rc != CHP_OK) {
        FUZZ_CHECK(rc == CHP_E_DECRYPT || rc == CHP_E_PADDING || rc == CHP_E_MALFORMED ||
                   rc == CHP_E_SIGNATURE);
        FUZZ_CHECK(all_zero(pt, ptlen));
    } else {
        FUZZ_CHECK(hdr_equal(&hdr, parsed));
        FUZZ_CHECK(in.type != 0);
        FUZZ_CHECK(in.payload >= pt && in.payload <= pt + ptlen);
        FUZZ_CHECK(in.len <= ptlen - CHP_INNER_OVERHEAD);
        FUZZ_CHECK((size_t)(in.payload - pt) + in.len <= ptlen);
        FUZZ_CHECK(in.payload == pt + CHP_INNER_OVERHEAD);
        FUZZ_CHECK(all_zero(in.payload + in.len, ptlen - CHP_INNER_OVERHEAD - in.len));
        chp_inner again;
        FUZZ_CHECK(chp_inner_parse(pt, ptlen, &again) == CHP_OK);
        FUZZ_CHECK(again.payload == in.payload && again.len == in.len && again.type == in.type);
        FUZZ_CHECK(memcmp(again.sender, in.sender, 32) == 0);
    }
    /* A plaintext buffer one byte short is refused before decrypting. */
    rc = chp_envelope_open(data, size, key, pt, ptlen - 1, NULL, &in);
    FUZZ_CHECK(rc == CHP_E_OVERFLOW);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    chp_env_hdr parsed;
    size_t ctlen = 0;
    fuzz_init();
    if (!data)
        data = none;
    memset(&parsed, 0, sizeof parsed);
    int prc = fuzz_parse(data, size, &parsed, &ctlen);

    chp_env_params def = chp_env_params_default();
    chp_env_params easy = def;
    easy.pow_ntpb = 1;
    int rc_null = fuzz_check(data, size, NULL, prc, &parsed);
    int rc_def = fuzz_check(data, size, &def, prc, &parsed);
    int rc_easy = fuzz_check(data, size, &easy, prc, &parsed);
    /* NULL means the defaults, and lowering the work never rejects more. */
    FUZZ_CHECK(rc_null == rc_def);
    FUZZ_CHECK(rc_def != CHP_OK || rc_easy == CHP_OK);
    FUZZ_CHECK(rc_easy != CHP_E_ENV_POW || rc_def == CHP_E_ENV_POW);

    fuzz_open(data, size, prc, &parsed, ctlen);
    return 0;
}
