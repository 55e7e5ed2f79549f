/* test_audio.c - voice-note durations (proto/audio.h) from real Ogg
 * pages with their CRC and real MP4 boxes, and hostile containers:
 * truncated, bad CRC, granule -1, box sizes 0, 1, too small and past the
 * end, a 64-bit size that wraps. A counting reader checks that a probe
 * reads a few bounded ranges, never the whole file. `test_audio --corpus
 * DIR` writes the seeds of fuzz/corpus/audio. */
#include "proto/audio.h"
#include "tests/unit/audio_build.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define BIG (2u << 20)

static uint8_t buf[BIG], cut[BIG];

/* A reader over memory that counts what it hands out. */
struct counted {
    const uint8_t *p;
    size_t len, bytes;
    unsigned reads;
};

static long counted_read(void *ctx, uint64_t off, uint8_t *out, size_t len)
{
    struct counted *c = ctx;
    c->reads++;
    if (off >= c->len)
        return 0;
    size_t n = c->len - off < len ? c->len - (size_t)off : len;
    memcpy(out, c->p + off, n);
    c->bytes += n;
    return (long)n;
}

static chp_audio_kind probe(const uint8_t *p, size_t len, uint32_t *ms, struct counted *c)
{
    *c = (struct counted){.p = p, .len = len};
    chp_audio_src src = {counted_read, c, len};
    return chp_audio_duration(&src, ms);
}

static void test_opus(void **state)
{
    (void)state;
    uint32_t ms = 7;
    /* 42.5 s at 48 kHz plus a pre-skip of 312 */
    size_t n = ab_opus(buf, 312, 42500u * 48 + 312, 20, 400);
    assert_int_equal(chp_audio_duration_mem(buf, n, &ms), CHP_AUDIO_OPUS);
    assert_int_equal(ms, 42500);
    /* 1 MiB and more: the probe reads the first and last window only */
    n = ab_opus(buf, 3840, 3600u * 48000u + 3840, 64, 20000);
    assert_true(n > (1u << 20));
    struct counted c;
    assert_int_equal(probe(buf, n, &ms, &c), CHP_AUDIO_OPUS);
    assert_int_equal(ms, 3600000);
    assert_true(c.bytes <= 8 + 2 * CHP_AUDIO_WINDOW);
    assert_true(c.reads <= 3);
    char t[16];
    chp_audio_fmt(ms, t, sizeof t);
    assert_string_equal(t, "1:00:00");
    chp_audio_fmt(42999, t, sizeof t);
    assert_string_equal(t, "0:42");
    chp_audio_fmt(61000, t, sizeof t);
    assert_string_equal(t, "1:01");
}

static void test_vorbis(void **state)
{
    (void)state;
    uint32_t ms = 0;
    size_t n = ab_vorbis(buf, 44100, 44100u * 75 + 22050);
    assert_int_equal(chp_audio_duration_mem(buf, n, &ms), CHP_AUDIO_VORBIS);
    assert_int_equal(ms, 75500);
    n = ab_vorbis(buf, 0, 1000); /* rate 0: no header */
    assert_int_equal(chp_audio_duration_mem(buf, n, &ms), CHP_AUDIO_UNKNOWN);
    assert_int_equal(ms, 0);
}

static void test_mp4(void **state)
{
    (void)state;
    uint32_t ms = 0;
    size_t n = ab_m4a(buf, 0, 1000, 12345, 0, 0, 300, 0);
    assert_int_equal(chp_audio_duration_mem(buf, n, &ms), CHP_AUDIO_MP4);
    assert_int_equal(ms, 12345);
    /* version 1, 44.1 kHz, moov after a large mdat: read by box headers */
    n = ab_m4a(buf, 1, 44100, 44100ull * 90, 0, 0, BIG - 4096, 1);
    struct counted c;
    assert_int_equal(probe(buf, n, &ms, &c), CHP_AUDIO_MP4);
    assert_int_equal(ms, 90000);
    assert_true(c.bytes < 512);
    /* mvhd says "not known" (all ones): the track's mdhd answers */
    n = ab_m4a(buf, 0, 600, 0xffffffffu, 48000, 48000u * 7, 10, 0);
    assert_int_equal(chp_audio_duration_mem(buf, n, &ms), CHP_AUDIO_MP4);
    assert_int_equal(ms, 7000);
    n = ab_m4a(buf, 1, 600, UINT64_MAX, 8000, 8000u * 3, 10, 1);
    assert_int_equal(chp_audio_duration_mem(buf, n, &ms), CHP_AUDIO_MP4);
    assert_int_equal(ms, 3000);
    /* a largesize (size 1) mdat in front of moov */
    size_t k = ab_box_hdr(buf, 20, "ftyp", 0);
    memset(buf + k, 0, 12);
    k += 12;
    k += ab_box_hdr(buf + k, 16 + 100, "mdat", 1);
    memset(buf + k, 0, 100);
    k += 100;
    size_t mv = ab_mvhd(buf + k + 8, "mvhd", 0, 10, 25);
    k += ab_box_hdr(buf + k, 8 + mv, "moov", 0) + mv;
    assert_int_equal(chp_audio_duration_mem(buf, k, &ms), CHP_AUDIO_MP4);
    assert_int_equal(ms, 2500);
}

static void test_hostile_ogg(void **state)
{
    (void)state;
    uint32_t ms = 0;
    size_t n = ab_opus(buf, 312, 48000u * 10 + 312, 10, 300), last = n;
    const uint32_t ninth = (uint32_t)(((48000u * 10 + 312) * 9 / 10 - 312) * 1000 / 48000);
    /* every prefix: unknown, or what the last whole page says (never more) */
    for (size_t l = 0; l <= n; l++) {
        chp_audio_kind k = chp_audio_duration_mem(buf, l, &ms);
        assert_true(k == CHP_AUDIO_UNKNOWN || k == CHP_AUDIO_OPUS);
        assert_true(ms <= 10000);
        if (k == CHP_AUDIO_UNKNOWN)
            assert_int_equal(ms, 0);
    }
    assert_int_equal(chp_audio_duration_mem(buf, n - 1, &ms), CHP_AUDIO_OPUS);
    assert_int_equal(ms, ninth); /* the page before the cut one */
    /* the last page's CRC broken: the page before it */
    memcpy(cut, buf, n);
    cut[n - 1] ^= 1;
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_OPUS);
    assert_int_equal(ms, ninth);
    /* the first page's CRC broken: not Ogg we trust */
    memcpy(cut, buf, n);
    cut[30] ^= 1;
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    /* granule -1 on the last page (no packet ends there): the one before */
    uint8_t body[300];
    memcpy(cut, buf, n);
    memset(body, 0, sizeof body);
    n += ab_ogg_page(cut + n, 0, UINT64_MAX, 0x1234abcdu, 99, body, sizeof body);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_OPUS);
    assert_int_equal(ms, 10000);
    /* only granule -1 after the headers: unknown */
    uint8_t head[19] = {'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2};
    n = ab_ogg_page(cut, 2, UINT64_MAX, 5, 0, head, sizeof head);
    n += ab_ogg_page(cut + n, 4, UINT64_MAX, 5, 1, body, sizeof body);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    /* a granule below the pre-skip, or negative */
    n = ab_opus(cut, 1000, 999, 1, 10);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    n = ab_opus(cut, 0, 1ull << 63, 1, 10);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    /* huge but positive: past 2^32 ms, unknown rather than wrapped */
    n = ab_opus(cut, 0, (1ull << 62), 1, 10);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    /* another stream's page at the end is not this one's */
    memcpy(cut, buf, last);
    n = last + ab_ogg_page(cut + last, 4, 48000u * 500, 0x999u, 0, body, sizeof body);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_OPUS);
    assert_int_equal(ms, 10000);
    /* a first page that is not a stream's first (no BOS), or no OpusHead */
    memcpy(cut, buf, last);
    n = ab_ogg_page(cut, 0, 0, 0x1234abcdu, 0, head, sizeof head);
    assert_int_equal(chp_audio_duration_mem(cut, last, &ms), CHP_AUDIO_UNKNOWN);
    memcpy(head, "OpusHeaX", 8);
    n = ab_ogg_page(cut, 2, 0, 5, 0, head, sizeof head);
    n += ab_ogg_page(cut + n, 4, 48000, 5, 1, body, sizeof body);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    /* a page of many fake headers with the right serial: bounded work */
    n = ab_opus(cut, 0, 48000, 1, 10);
    for (size_t i = n; i + 27 < BIG && i < n + 3 * CHP_AUDIO_WINDOW; i += 27) {
        memcpy(cut + i, cut + 28 + 19, 27); /* the second page's header, segments wrong */
        cut[i + 26] = 255;
    }
    assert_int_equal(chp_audio_duration_mem(cut, n + 3 * CHP_AUDIO_WINDOW, &ms), CHP_AUDIO_UNKNOWN);
}

static void test_hostile_mp4(void **state)
{
    (void)state;
    uint32_t ms = 0;
    /* ftyp at 0 (20 bytes), moov at 20, its mvhd at 28 */
    size_t n = ab_m4a(buf, 0, 1000, 5000, 0, 0, 64, 0);
    /* every prefix: unknown or the whole answer, never a crash */
    for (size_t l = 0; l <= n; l++) {
        chp_audio_kind k = chp_audio_duration_mem(buf, l, &ms);
        assert_true(k == CHP_AUDIO_UNKNOWN || (k == CHP_AUDIO_MP4 && ms == 5000));
    }
    static const struct {
        size_t at;
        uint32_t size;
    } sizes[] = {
        {0, 0},  {0, 7},  {0, 0xffffffffu},  {20, 0}, {20, 4}, {20, 0xfffffff0u},
        {28, 0}, {28, 3}, {28, 0xffffffffu},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        memcpy(cut, buf, n);
        cut[sizes[i].at] = (uint8_t)(sizes[i].size >> 24);
        cut[sizes[i].at + 1] = (uint8_t)(sizes[i].size >> 16);
        cut[sizes[i].at + 2] = (uint8_t)(sizes[i].size >> 8);
        cut[sizes[i].at + 3] = (uint8_t)sizes[i].size;
        chp_audio_kind k = chp_audio_duration_mem(cut, n, &ms);
        /* size 0 of moov or mvhd: "to the end of the parent", still whole */
        assert_true(k == CHP_AUDIO_UNKNOWN || (k == CHP_AUDIO_MP4 && ms == 5000));
        if (sizes[i].size != 0)
            assert_int_equal(k, CHP_AUDIO_UNKNOWN);
    }
    /* size 1 with a 64-bit size that wraps the offset, or is below 16 */
    uint64_t big[] = {UINT64_MAX, UINT64_MAX - 10, 15, 0};
    for (size_t i = 0; i < 4; i++) {
        size_t k = ab_box_hdr(cut, 20, "ftyp", 0);
        memset(cut + k, 0, 12);
        k += 12;
        k += ab_box_hdr(cut + k, big[i], "mdat", 1);
        memset(cut + k, 0, 200);
        assert_int_equal(chp_audio_duration_mem(cut, k + 200, &ms), CHP_AUDIO_UNKNOWN);
    }
    /* timescale 0; a 64-bit duration past 2^32 ms; version 2 */
    n = ab_m4a(cut, 0, 0, 5000, 0, 0, 8, 0);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    n = ab_m4a(cut, 1, 1, UINT64_MAX - 1, 0, 0, 8, 0);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    n = ab_m4a(cut, 2, 1000, 5000, 0, 0, 8, 0);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    /* no ftyp first; thousands of empty boxes before moov: bounded */
    n = ab_m4a(cut, 0, 1000, 5000, 0, 0, 8, 0);
    memcpy(cut + 4, "free", 4);
    assert_int_equal(chp_audio_duration_mem(cut, n, &ms), CHP_AUDIO_UNKNOWN);
    n = ab_box_hdr(cut, 20, "ftyp", 0);
    memset(cut + n, 0, 12);
    n += 12;
    for (int i = 0; i < 10000; i++)
        n += ab_box_hdr(cut + n, 8, "free", 0);
    n += ab_m4a(cut + n, 0, 1000, 5000, 0, 0, 8, 0);
    struct counted c;
    assert_int_equal(probe(cut, n, &ms, &c), CHP_AUDIO_UNKNOWN);
    assert_true(c.reads <= CHP_AUDIO_READS_MAX);
}

static void test_other(void **state)
{
    (void)state;
    uint32_t ms = 9;
    assert_int_equal(chp_audio_duration_mem(NULL, 0, &ms), CHP_AUDIO_UNKNOWN);
    assert_int_equal(ms, 0);
    assert_int_equal(chp_audio_duration_mem((const uint8_t *)"ID3\3\0\0\0\0\0\0", 10, &ms),
                     CHP_AUDIO_UNKNOWN);
    assert_int_equal(chp_audio_duration_mem((const uint8_t *)"OggS", 4, &ms), CHP_AUDIO_UNKNOWN);
    assert_true(chp_audio_is_voice("voice.OPUS", NULL));
    assert_true(chp_audio_is_voice("a.m4a", NULL));
    assert_true(chp_audio_is_voice("x", "audio/ogg"));
    assert_false(chp_audio_is_voice("a.mp3", "audio/mpeg"));
    assert_false(chp_audio_is_voice(NULL, NULL));
}

/* The seeds of fuzz/corpus/audio, from the builders above. */
static int corpus(const char *dir)
{
    struct {
        const char *name;
        size_t len;
    } s[16];
    static uint8_t out[16][70000];
    size_t k = 0;
    s[k].name = "opus-42s";
    s[k].len = ab_opus(out[k], 312, 42500u * 48 + 312, 4, 300);
    k++;
    s[k].name = "opus-granule-minus-1";
    s[k].len = ab_opus(out[k], 312, UINT64_MAX, 1, 50);
    k++;
    s[k].name = "opus-truncated";
    s[k].len = ab_opus(out[k], 312, 48000u * 3, 3, 200) - 10;
    k++;
    s[k].name = "vorbis-75s";
    s[k].len = ab_vorbis(out[k], 44100, 44100u * 75);
    k++;
    s[k].name = "m4a-v0";
    s[k].len = ab_m4a(out[k], 0, 1000, 12345, 0, 0, 40, 0);
    k++;
    s[k].name = "m4a-v1-moov-last";
    s[k].len = ab_m4a(out[k], 1, 44100, 44100u * 9, 0, 0, 40, 1);
    k++;
    s[k].name = "m4a-mdhd-only";
    s[k].len = ab_m4a(out[k], 0, 600, 0xffffffffu, 48000, 48000u * 7, 10, 0);
    k++;
    s[k].name = "m4a-size0-moov";
    s[k].len = ab_m4a(out[k], 0, 1000, 5000, 0, 0, 0, 1);
    memset(out[k] + s[k].len - 44, 0, 4); /* moov (44 bytes, last) runs to the end */
    k++;
    s[k].name = "m4a-largesize";
    s[k].len = ab_box_hdr(out[k], 20, "ftyp", 0) + 12;
    s[k].len += ab_box_hdr(out[k] + s[k].len, 1ull << 40, "mdat", 1);
    k++;
    for (size_t i = 0; i < k; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/seed-%03zu-%s", dir, i + 1, s[i].name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(out[i], 1, s[i].len, f) != s[i].len || fclose(f) != 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--corpus"))
        return corpus(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opus),        cmocka_unit_test(test_vorbis),
        cmocka_unit_test(test_mp4),         cmocka_unit_test(test_hostile_ogg),
        cmocka_unit_test(test_hostile_mp4), cmocka_unit_test(test_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
