/* fuzz_filepiece.c - file pieces (proto/file.h, PROTOCOL.md §18.8):
 * chp_file_piece_decode never crashes or reads past the input; an accepted
 * piece holds 1..CHP_FILE_PIECE bytes, encodes back to the same bytes, and
 * fits a manifest only at its index with its exact length. */
#include "fuzz.h"

#include "proto/file.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    static uint8_t out[CHP_FILE_PIECE_HDR + CHP_FILE_PIECE];
    fuzz_init();
    if (!data)
        data = none;
    chp_file_piece pc;
    if (chp_file_piece_decode(data, size, &pc) != CHP_OK)
        return 0;
    FUZZ_CHECK(pc.len >= 1 && pc.len <= CHP_FILE_PIECE && pc.data == data + CHP_FILE_PIECE_HDR);
    size_t len = 0;
    FUZZ_CHECK(chp_file_piece_encode(&pc, out, sizeof out, &len) == CHP_OK);
    FUZZ_CHECK(len == size && !memcmp(out, data, size));
    /* a manifest of a 3-piece file with this id */
    chp_file_manifest m = {.size = 2u * CHP_FILE_PIECE + 100u, .piece_size = CHP_FILE_PIECE};
    m.count = chp_file_count(m.size);
    memcpy(m.id, pc.id, CHP_FILE_ID_BYTES);
    int fits = chp_file_piece_fits(&m, &pc);
    FUZZ_CHECK(fits == (pc.index < 3 && pc.len == chp_file_piece_len(m.size, pc.index)));
    return 0;
}
