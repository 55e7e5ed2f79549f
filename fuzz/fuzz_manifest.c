/* fuzz_manifest.c - app manifests (proto/manifest.h): chp_manifest_parse
 * never crashes or reads past the input; whatever it accepts is canonical
 * (writing the parsed manifest back gives the very bytes the signature
 * covers), and checking the signature of an accepted one never crashes. */
#include "fuzz.h"

#include "proto/manifest.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    chp_manifest m;
    fuzz_init();
    if (!data)
        data = none;
    for (int need_sig = 0; need_sig < 2; need_sig++) {
        if (chp_manifest_parse(data, size, need_sig, &m) != CHP_OK)
            continue;
        FUZZ_CHECK(m.nfiles >= 1 && m.nfiles <= CHP_MANIFEST_FILES_MAX);
        FUZZ_CHECK(m.has_sig == need_sig && m.body_len <= size);
        chp_buf b = {0};
        FUZZ_CHECK(chp_manifest_write_body(&m, &b) == CHP_OK);
        FUZZ_CHECK(b.len == m.body_len && !memcmp(b.p, data, b.len));
        chp_buf_free(&b);
        int rc = chp_manifest_verify(data, size, &m);
        FUZZ_CHECK(rc == CHP_OK || rc == CHP_E_SIGNATURE);
    }
    return 0;
}
