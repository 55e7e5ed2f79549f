/* audio_build.c - Ogg pages and MP4 boxes for the tests (audio_build.h). */
#include "tests/unit/audio_build.h"

#include <string.h>

static void le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Bitwise, independent of proto/audio.c's table. */
static uint32_t crc(const uint8_t *p, size_t n)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c ^= (uint32_t)p[i] << 24;
        for (int k = 0; k < 8; k++)
            c = c & 0x80000000u ? c << 1 ^ 0x04c11db7u : c << 1;
    }
    return c;
}

size_t ab_ogg_page(uint8_t *out, uint8_t type, uint64_t granule, uint32_t serial, uint32_t seq,
                   const uint8_t *body, size_t blen)
{
    size_t segs = blen / 255 + 1;
    memcpy(out, "OggS", 4);
    out[4] = 0;
    out[5] = type;
    le(out + 6, granule, 8);
    le(out + 14, serial, 4);
    le(out + 18, seq, 4);
    memset(out + 22, 0, 4);
    out[26] = (uint8_t)segs;
    for (size_t i = 0; i < segs; i++)
        out[27 + i] = i + 1 < segs ? 255 : (uint8_t)(blen % 255);
    memcpy(out + 27 + segs, body, blen);
    size_t len = 27 + segs + blen;
    le(out + 22, crc(out, len), 4);
    return len;
}

size_t ab_opus(uint8_t *out, uint16_t preskip, uint64_t final_granule, unsigned pages,
               size_t page_bytes)
{
    uint8_t head[19] = {'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 1};
    le(head + 10, preskip, 2);
    le(head + 12, 48000, 4);
    static const uint8_t tags[] = "OpusTags\x06\0\0\0chapar\0\0\0\0";
    const uint32_t serial = 0x1234abcdu;
    size_t n = ab_ogg_page(out, 0x02, 0, serial, 0, head, sizeof head);
    n += ab_ogg_page(out + n, 0, 0, serial, 1, tags, sizeof tags - 1);
    static uint8_t audio[255 * 255];
    for (size_t i = 0; i < page_bytes && i < sizeof audio; i++)
        audio[i] = (uint8_t)(i * 131 + 7); /* any bytes, "OggS" among them now and then */
    for (unsigned p = 1; p <= pages; p++)
        n += ab_ogg_page(out + n, p == pages ? 0x04 : 0, final_granule * p / pages, serial, 1 + p,
                         audio, page_bytes);
    return n;
}

size_t ab_vorbis(uint8_t *out, uint32_t rate, uint64_t granule)
{
    uint8_t id[30] = {1, 'v', 'o', 'r', 'b', 'i', 's', 0, 0, 0, 0, 2};
    le(id + 12, rate, 4);
    id[29] = 1; /* framing */
    uint8_t audio[100] = {0};
    size_t n = ab_ogg_page(out, 0x02, 0, 7, 0, id, sizeof id);
    return n + ab_ogg_page(out + n, 0x04, granule, 7, 1, audio, sizeof audio);
}

size_t ab_box_hdr(uint8_t *out, uint64_t size, const char type[4], int large)
{
    be(out, large ? 1 : size, 4);
    memcpy(out + 4, type, 4);
    if (!large)
        return 8;
    be(out + 8, size, 8);
    return 16;
}

size_t ab_mvhd(uint8_t *out, const char type[4], int version, uint32_t timescale, uint64_t duration)
{
    size_t body = version == 1 ? 32 : 20, n = ab_box_hdr(out, 8 + body + 8, type, 0);
    uint8_t *b = out + n;
    memset(b, 0, body + 8);
    b[0] = (uint8_t)version;
    if (version == 1) {
        be(b + 20, timescale, 4);
        be(b + 24, duration, 8);
    } else {
        be(b + 12, timescale, 4);
        be(b + 16, duration, 4);
    }
    return n + body + 8; /* 8 bytes of the rest of the header (rate, volume) */
}

size_t ab_m4a(uint8_t *out, int version, uint32_t timescale, uint64_t duration, uint32_t mdhd_ts,
              uint64_t mdhd_dur, size_t mdat_bytes, int moov_last)
{
    size_t n = ab_box_hdr(out, 20, "ftyp", 0);
    memcpy(out + n, "M4A \0\0\0\0M4A ", 12);
    n += 12;
    uint8_t moov[512];
    size_t m = 8;
    m += ab_mvhd(moov + m, "mvhd", version, timescale, duration);
    if (mdhd_ts) {
        uint8_t md[128];
        size_t k = ab_mvhd(md, "mdhd", version, mdhd_ts, mdhd_dur);
        m += ab_box_hdr(moov + m, 8 + 8 + k, "trak", 0);
        m += ab_box_hdr(moov + m, 8 + k, "mdia", 0);
        memcpy(moov + m, md, k);
        m += k;
    }
    ab_box_hdr(moov, m, "moov", 0);
    if (!moov_last) {
        memcpy(out + n, moov, m);
        n += m;
    }
    n += ab_box_hdr(out + n, 8 + mdat_bytes, "mdat", 0);
    memset(out + n, 0x5a, mdat_bytes);
    n += mdat_bytes;
    if (moov_last) {
        memcpy(out + n, moov, m);
        n += m;
    }
    return n;
}
