/* fuzz_audio.c - voice-note durations (proto/audio.h): any bytes as a
 * whole file, and again through a reader that stops short. Never a crash
 * or a read outside the file; at most CHP_AUDIO_READS_MAX reads of a few
 * bounded ranges; unknown means ms 0; the answer does not depend on how
 * the bytes are handed over. */
#include "fuzz.h"

#include "proto/audio.h"

#include <string.h>

struct rd {
    const uint8_t *p;
    size_t len, stop; /* bytes past stop fail to read */
    unsigned reads;
    size_t bytes;
};

static long rd_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    struct rd *r = ctx;
    FUZZ_CHECK(off <= r->len && len <= r->len - off); /* never asks past the end */
    r->reads++;
    r->bytes += len;
    if (off + len > r->stop)
        return off >= r->stop ? -1 : (long)(r->stop - off);
    memcpy(buf, r->p + off, len);
    return (long)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    if (!data)
        data = none;
    uint32_t ms = 1, ms2 = 1;
    struct rd r = {data, size, size, 0, 0};
    chp_audio_src src = {rd_read, &r, size};
    chp_audio_kind k = chp_audio_duration(&src, &ms);
    FUZZ_CHECK(k >= CHP_AUDIO_UNKNOWN && k <= CHP_AUDIO_MP4);
    FUZZ_CHECK(k != CHP_AUDIO_UNKNOWN || ms == 0);
    FUZZ_CHECK(r.reads <= CHP_AUDIO_READS_MAX);
    FUZZ_CHECK(r.bytes <= 8 + 2 * (size_t)CHP_AUDIO_WINDOW + 32 * (size_t)CHP_AUDIO_READS_MAX);
    /* the convenience form agrees */
    FUZZ_CHECK(chp_audio_duration_mem(data, size, &ms2) == k && ms2 == ms);
    /* a reader that fails halfway: an answer only from what it could read */
    struct rd h = {data, size, size / 2, 0, 0};
    chp_audio_src half = {rd_read, &h, size};
    k = chp_audio_duration(&half, &ms2);
    FUZZ_CHECK(k != CHP_AUDIO_UNKNOWN || ms2 == 0);
    char t[16];
    chp_audio_fmt(ms, t, sizeof t);
    FUZZ_CHECK(strlen(t) >= 4);
    return 0;
}
