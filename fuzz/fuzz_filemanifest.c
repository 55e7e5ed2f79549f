/* fuzz_filemanifest.c - file manifests (proto/file.h, PROTOCOL.md §18.8):
 * chp_file_manifest_decode never crashes or reads past the input; what it
 * accepts keeps every rule (count matches size, the name has no NUL) and
 * encodes back to the very bytes; the name it gives always cleans to a
 * safe name (no '/', not "." or "..", no leading dot). */
#include "fuzz.h"

#include "proto/file.h"

#include <string.h>

static void check_clean(const uint8_t *name, size_t len)
{
    char safe[CHP_FILE_SAFE_NAME];
    chp_file_name_clean(name, len, safe);
    size_t l = strlen(safe);
    FUZZ_CHECK(l > 0 && l < CHP_FILE_SAFE_NAME && !strchr(safe, '/') && safe[0] != '.' &&
               safe[0] != ' ' && strcmp(safe, "..") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    static uint8_t out[CHP_FILE_MANIFEST_MAX];
    fuzz_init();
    if (!data)
        data = none;
    check_clean(data, size);
    chp_file_manifest m;
    if (chp_file_manifest_decode(data, size, &m) != CHP_OK)
        return 0;
    FUZZ_CHECK(m.count == chp_file_count(m.size) && m.piece_size == CHP_FILE_PIECE);
    FUZZ_CHECK(m.name_len >= 1 && !memchr(m.name, 0, m.name_len));
    size_t len = 0;
    FUZZ_CHECK(chp_file_manifest_encode(&m, out, sizeof out, &len) == CHP_OK);
    FUZZ_CHECK(len == size && !memcmp(out, data, size));
    check_clean(m.name, m.name_len);
    return 0;
}
