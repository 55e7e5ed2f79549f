/* audio.c - voice-note durations from Ogg and MP4 containers (audio.h).
 * Ogg (RFC 3533): the first page holds the identification header (Opus:
 * RFC 7845 §5.1, pre-skip; Vorbis I §4.2.2, sample rate); the last page
 * of that stream with a granule position says how many samples there
 * are. MP4 (ISO/IEC 14496-12): a walk over boxes by their sizes to
 * moov, then mvhd (or trak/mdia/mdhd): timescale and duration. */
#include "proto/audio.h"

#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>

#define OGG_HDR   27u /* "OggS" version type granule[8] serial[4] seq[4] crc[4] nsegs */
#define OGG_TRIES 64u /* pages whose CRC the tail scan checks at most */
#define MP4_HEAD  32u /* bytes of an mvhd/mdhd body read (version 1 needs 32) */
#define MP4_BOXES 64u /* children looked at in one box */

struct probe {
    const chp_audio_src *src;
    unsigned reads;
    uint8_t *win;
};

/* Exactly len bytes at off, or -1 (past the end, an error, the budget). */
static int get(struct probe *p, uint64_t off, uint8_t *buf, size_t len)
{
    if (p->reads >= CHP_AUDIO_READS_MAX || off > p->src->size || len > p->src->size - off)
        return -1;
    p->reads++;
    long got = p->src->read(p->src->ctx, off, buf, len);
    return got >= 0 && (size_t)got == len ? 0 : -1;
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t le64(const uint8_t *b)
{
    return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t be64(const uint8_t *b)
{
    return (uint64_t)be32(b) << 32 | be32(b + 4);
}

/* units / rate in milliseconds, rounded down; 0 with *ok = 0 past 2^32. */
static uint32_t to_ms(uint64_t units, uint64_t rate, int *ok)
{
    uint64_t ms = units / rate * 1000u + units % rate * 1000u / rate;
    *ok = rate && units / rate < UINT32_MAX / 1000u && ms <= UINT32_MAX;
    return *ok ? (uint32_t)ms : 0;
}

/* ---- Ogg ---- */

/* The Ogg CRC-32: polynomial 0x04c11db7, not reflected, no final xor;
 * the table is crc_table[i] = CRC of the byte i (generated once). */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x04c11db7u, 0x09823b6eu, 0x0d4326d9u, 0x130476dcu, 0x17c56b6bu, 0x1a864db2u,
    0x1e475005u, 0x2608edb8u, 0x22c9f00fu, 0x2f8ad6d6u, 0x2b4bcb61u, 0x350c9b64u, 0x31cd86d3u,
    0x3c8ea00au, 0x384fbdbdu, 0x4c11db70u, 0x48d0c6c7u, 0x4593e01eu, 0x4152fda9u, 0x5f15adacu,
    0x5bd4b01bu, 0x569796c2u, 0x52568b75u, 0x6a1936c8u, 0x6ed82b7fu, 0x639b0da6u, 0x675a1011u,
    0x791d4014u, 0x7ddc5da3u, 0x709f7b7au, 0x745e66cdu, 0x9823b6e0u, 0x9ce2ab57u, 0x91a18d8eu,
    0x95609039u, 0x8b27c03cu, 0x8fe6dd8bu, 0x82a5fb52u, 0x8664e6e5u, 0xbe2b5b58u, 0xbaea46efu,
    0xb7a96036u, 0xb3687d81u, 0xad2f2d84u, 0xa9ee3033u, 0xa4ad16eau, 0xa06c0b5du, 0xd4326d90u,
    0xd0f37027u, 0xddb056feu, 0xd9714b49u, 0xc7361b4cu, 0xc3f706fbu, 0xceb42022u, 0xca753d95u,
    0xf23a8028u, 0xf6fb9d9fu, 0xfbb8bb46u, 0xff79a6f1u, 0xe13ef6f4u, 0xe5ffeb43u, 0xe8bccd9au,
    0xec7dd02du, 0x34867077u, 0x30476dc0u, 0x3d044b19u, 0x39c556aeu, 0x278206abu, 0x23431b1cu,
    0x2e003dc5u, 0x2ac12072u, 0x128e9dcfu, 0x164f8078u, 0x1b0ca6a1u, 0x1fcdbb16u, 0x018aeb13u,
    0x054bf6a4u, 0x0808d07du, 0x0cc9cdcau, 0x7897ab07u, 0x7c56b6b0u, 0x71159069u, 0x75d48ddeu,
    0x6b93dddbu, 0x6f52c06cu, 0x6211e6b5u, 0x66d0fb02u, 0x5e9f46bfu, 0x5a5e5b08u, 0x571d7dd1u,
    0x53dc6066u, 0x4d9b3063u, 0x495a2dd4u, 0x44190b0du, 0x40d816bau, 0xaca5c697u, 0xa864db20u,
    0xa527fdf9u, 0xa1e6e04eu, 0xbfa1b04bu, 0xbb60adfcu, 0xb6238b25u, 0xb2e29692u, 0x8aad2b2fu,
    0x8e6c3698u, 0x832f1041u, 0x87ee0df6u, 0x99a95df3u, 0x9d684044u, 0x902b669du, 0x94ea7b2au,
    0xe0b41de7u, 0xe4750050u, 0xe9362689u, 0xedf73b3eu, 0xf3b06b3bu, 0xf771768cu, 0xfa325055u,
    0xfef34de2u, 0xc6bcf05fu, 0xc27dede8u, 0xcf3ecb31u, 0xcbffd686u, 0xd5b88683u, 0xd1799b34u,
    0xdc3abdedu, 0xd8fba05au, 0x690ce0eeu, 0x6dcdfd59u, 0x608edb80u, 0x644fc637u, 0x7a089632u,
    0x7ec98b85u, 0x738aad5cu, 0x774bb0ebu, 0x4f040d56u, 0x4bc510e1u, 0x46863638u, 0x42472b8fu,
    0x5c007b8au, 0x58c1663du, 0x558240e4u, 0x51435d53u, 0x251d3b9eu, 0x21dc2629u, 0x2c9f00f0u,
    0x285e1d47u, 0x36194d42u, 0x32d850f5u, 0x3f9b762cu, 0x3b5a6b9bu, 0x0315d626u, 0x07d4cb91u,
    0x0a97ed48u, 0x0e56f0ffu, 0x1011a0fau, 0x14d0bd4du, 0x19939b94u, 0x1d528623u, 0xf12f560eu,
    0xf5ee4bb9u, 0xf8ad6d60u, 0xfc6c70d7u, 0xe22b20d2u, 0xe6ea3d65u, 0xeba91bbcu, 0xef68060bu,
    0xd727bbb6u, 0xd3e6a601u, 0xdea580d8u, 0xda649d6fu, 0xc423cd6au, 0xc0e2d0ddu, 0xcda1f604u,
    0xc960ebb3u, 0xbd3e8d7eu, 0xb9ff90c9u, 0xb4bcb610u, 0xb07daba7u, 0xae3afba2u, 0xaafbe615u,
    0xa7b8c0ccu, 0xa379dd7bu, 0x9b3660c6u, 0x9ff77d71u, 0x92b45ba8u, 0x9675461fu, 0x8832161au,
    0x8cf30badu, 0x81b02d74u, 0x857130c3u, 0x5d8a9099u, 0x594b8d2eu, 0x5408abf7u, 0x50c9b640u,
    0x4e8ee645u, 0x4a4ffbf2u, 0x470cdd2bu, 0x43cdc09cu, 0x7b827d21u, 0x7f436096u, 0x7200464fu,
    0x76c15bf8u, 0x68860bfdu, 0x6c47164au, 0x61043093u, 0x65c52d24u, 0x119b4be9u, 0x155a565eu,
    0x18197087u, 0x1cd86d30u, 0x029f3d35u, 0x065e2082u, 0x0b1d065bu, 0x0fdc1becu, 0x3793a651u,
    0x3352bbe6u, 0x3e119d3fu, 0x3ad08088u, 0x2497d08du, 0x2056cd3au, 0x2d15ebe3u, 0x29d4f654u,
    0xc5a92679u, 0xc1683bceu, 0xcc2b1d17u, 0xc8ea00a0u, 0xd6ad50a5u, 0xd26c4d12u, 0xdf2f6bcbu,
    0xdbee767cu, 0xe3a1cbc1u, 0xe760d676u, 0xea23f0afu, 0xeee2ed18u, 0xf0a5bd1du, 0xf464a0aau,
    0xf9278673u, 0xfde69bc4u, 0x89b8fd09u, 0x8d79e0beu, 0x803ac667u, 0x84fbdbd0u, 0x9abc8bd5u,
    0x9e7d9662u, 0x933eb0bbu, 0x97ffad0cu, 0xafb010b1u, 0xab710d06u, 0xa6322bdfu, 0xa2f33668u,
    0xbcb4666du, 0xb8757bdau, 0xb5365d03u, 0xb1f740b4u,
};

static uint32_t ogg_crc(const uint8_t *p, size_t n, size_t crc_at)
{
    uint32_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = i >= crc_at && i < crc_at + 4 ? 0 : p[i];
        crc = crc << 8 ^ crc_table[(crc >> 24 ^ b) & 0xffu];
    }
    return crc;
}

/* The length of the page at p (n bytes left), 0 when it is not a whole
 * page of version 0 with a good CRC. */
static size_t ogg_page(const uint8_t *p, size_t n)
{
    if (n < OGG_HDR || memcmp(p, "OggS", 4) || p[4] != 0 || n < OGG_HDR + (size_t)p[26])
        return 0;
    size_t len = OGG_HDR + p[26];
    for (unsigned i = 0; i < p[26]; i++)
        len += p[OGG_HDR + i];
    if (len > n || ogg_crc(p, len, 22) != le32(p + 22))
        return 0;
    return len;
}

static chp_audio_kind ogg(struct probe *pr, uint32_t *ms)
{
    uint64_t size = pr->src->size;
    size_t w = size < CHP_AUDIO_WINDOW ? (size_t)size : CHP_AUDIO_WINDOW;
    if (get(pr, 0, pr->win, w))
        return CHP_AUDIO_UNKNOWN;
    const uint8_t *p = pr->win;
    size_t plen = ogg_page(p, w);
    if (!plen || !(p[5] & 0x02)) /* the first page begins its stream */
        return CHP_AUDIO_UNKNOWN;
    uint32_t serial = le32(p + 14);
    /* The identification packet: the first lacing run, ended by a value below 255. */
    size_t pk = 0, segs = p[26], s = 0;
    while (s < segs && p[OGG_HDR + s] == 255)
        pk += p[OGG_HDR + s++];
    if (s == segs)
        return CHP_AUDIO_UNKNOWN;
    pk += p[OGG_HDR + s];
    const uint8_t *b = p + OGG_HDR + segs;
    chp_audio_kind kind;
    uint64_t rate, skip = 0;
    if (pk >= 19 && !memcmp(b, "OpusHead", 8) && (b[8] & 0xf0) == 0 && b[9]) {
        kind = CHP_AUDIO_OPUS;
        rate = 48000;
        skip = (uint64_t)b[10] | (uint64_t)b[11] << 8;
    } else if (pk >= 30 && b[0] == 1 && !memcmp(b + 1, "vorbis", 6) && !le32(b + 7) && b[11] &&
               le32(b + 12)) {
        kind = CHP_AUDIO_VORBIS;
        rate = le32(b + 12);
    } else {
        return CHP_AUDIO_UNKNOWN;
    }
    uint64_t at = size - w; /* the last window */
    if (at && get(pr, at, pr->win, w))
        return CHP_AUDIO_UNKNOWN;
    unsigned tries = 0;
    for (size_t i = w >= OGG_HDR ? w - OGG_HDR + 1 : 0; i-- > 0;) {
        if (p[i] != 'O' || w - i < OGG_HDR || memcmp(p + i, "OggS", 4) ||
            le32(p + i + 14) != serial || ++tries > OGG_TRIES || !ogg_page(p + i, w - i))
            continue;
        uint64_t g = le64(p + i + 6);
        if (g == UINT64_MAX) /* no packet ends on this page */
            continue;
        int ok = 0;
        if (g >= (1ull << 63) || g < skip) /* negative, or ends before it starts */
            return CHP_AUDIO_UNKNOWN;
        *ms = to_ms(g - skip, rate, &ok);
        return ok ? kind : CHP_AUDIO_UNKNOWN;
    }
    return CHP_AUDIO_UNKNOWN;
}

/* ---- MP4 ---- */

struct box {
    uint64_t off, body, end; /* where it starts, its contents, its end */
    char type[4];
};

/* The box at off within [off, end): its header checked, its size within. */
static int box_at(struct probe *pr, uint64_t off, uint64_t end, struct box *bx)
{
    uint8_t h[16];
    if (off > end || end - off < 8 || get(pr, off, h, 8))
        return -1;
    uint64_t size = be32(h), hdr = 8;
    if (size == 1) {
        if (end - off < 16 || get(pr, off + 8, h + 8, 8))
            return -1;
        size = be64(h + 8);
        hdr = 16;
    } else if (size == 0) { /* to the end of the file (or of its parent) */
        size = end - off;
    }
    if (size < hdr || size > end - off)
        return -1;
    memcpy(bx->type, h + 4, 4);
    bx->off = off;
    bx->body = off + hdr;
    bx->end = off + size;
    return 0;
}

/* The first child of parent called type. */
static int child(struct probe *pr, const struct box *parent, const char *type, struct box *out)
{
    uint64_t off = parent->body;
    for (unsigned n = 0; n < MP4_BOXES && off < parent->end; n++) {
        if (box_at(pr, off, parent->end, out))
            return -1;
        if (!memcmp(out->type, type, 4))
            return 0;
        off = out->end;
    }
    return -1;
}

/* mvhd and mdhd share their first fields: version, flags, two times,
 * timescale, duration (32 or 64 bits). */
static int header_ms(struct probe *pr, const struct box *bx, uint32_t *ms)
{
    uint8_t b[MP4_HEAD];
    uint64_t have = bx->end - bx->body;
    if (have < 4 || get(pr, bx->body, b, 4))
        return -1;
    size_t need = b[0] == 1 ? 32 : 20;
    if (b[0] > 1 || have < need || get(pr, bx->body + 4, b + 4, need - 4))
        return -1;
    uint64_t ts = b[0] == 1 ? be32(b + 20) : be32(b + 12);
    uint64_t d = b[0] == 1 ? be64(b + 24) : be32(b + 16);
    if (!ts || d == (b[0] == 1 ? UINT64_MAX : UINT32_MAX)) /* all ones: not known */
        return -1;
    int ok = 0;
    *ms = to_ms(d, ts, &ok);
    return ok ? 0 : -1;
}

static chp_audio_kind mp4(struct probe *pr, uint32_t *ms)
{
    struct box file = {.off = 0, .body = 0, .end = pr->src->size}, bx, moov, x;
    if (box_at(pr, 0, file.end, &bx) || memcmp(bx.type, "ftyp", 4))
        return CHP_AUDIO_UNKNOWN;
    if (child(pr, &file, "moov", &moov))
        return CHP_AUDIO_UNKNOWN;
    if (!child(pr, &moov, "mvhd", &x) && !header_ms(pr, &x, ms))
        return CHP_AUDIO_MP4;
    /* mvhd missing or without a duration: the tracks' own */
    uint64_t off = moov.body;
    for (unsigned n = 0; n < MP4_BOXES && off < moov.end; n++) {
        struct box trak, mdia;
        if (box_at(pr, off, moov.end, &trak))
            break;
        off = trak.end;
        if (memcmp(trak.type, "trak", 4) || child(pr, &trak, "mdia", &mdia) ||
            child(pr, &mdia, "mdhd", &x))
            continue;
        if (!header_ms(pr, &x, ms))
            return CHP_AUDIO_MP4;
    }
    *ms = 0;
    return CHP_AUDIO_UNKNOWN;
}

chp_audio_kind chp_audio_duration(const chp_audio_src *src, uint32_t *ms)
{
    *ms = 0;
    if (!src || !src->read || src->size < 8)
        return CHP_AUDIO_UNKNOWN;
    struct probe pr = {.src = src};
    uint8_t magic[8];
    if (get(&pr, 0, magic, 8))
        return CHP_AUDIO_UNKNOWN;
    chp_audio_kind k = CHP_AUDIO_UNKNOWN;
    if (!memcmp(magic, "OggS", 4)) {
        if (!(pr.win = malloc(CHP_AUDIO_WINDOW)))
            return CHP_AUDIO_UNKNOWN;
        k = ogg(&pr, ms);
        free(pr.win);
    } else if (!memcmp(magic + 4, "ftyp", 4)) {
        k = mp4(&pr, ms);
    }
    if (k == CHP_AUDIO_UNKNOWN)
        *ms = 0;
    return k;
}

struct mem {
    const uint8_t *p;
    size_t len;
};

static long mem_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    const struct mem *m = ctx;
    if (off >= m->len)
        return 0;
    size_t n = m->len - off < len ? m->len - (size_t)off : len;
    memcpy(buf, m->p + off, n);
    return (long)n;
}

chp_audio_kind chp_audio_duration_mem(const uint8_t *p, size_t len, uint32_t *ms)
{
    struct mem m = {p, p ? len : 0};
    chp_audio_src src = {mem_read, &m, m.len};
    return chp_audio_duration(&src, ms);
}

int chp_audio_is_voice(const char *name, const char *mime)
{
    static const char *const ext[] = {".opus", ".ogg", ".oga", ".m4a"};
    static const char *const types[] = {"audio/ogg", "audio/opus", "audio/mp4", "audio/x-m4a"};
    const char *dot = name ? strrchr(name, '.') : NULL;
    for (size_t i = 0; dot && i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot, ext[i]))
            return 1;
    for (size_t i = 0; mime && i < sizeof types / sizeof *types; i++)
        if (!strcasecmp(mime, types[i]))
            return 1;
    return 0;
}

void chp_audio_fmt(uint32_t ms, char *out, size_t cap)
{
    uint32_t s = ms / 1000u;
    if (s >= 3600u)
        snprintf(out, cap, "%u:%02u:%02u", s / 3600u, s / 60u % 60u, s % 60u);
    else
        snprintf(out, cap, "%u:%02u", s / 60u, s % 60u);
}
