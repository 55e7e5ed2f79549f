/* audio_build.h - real Ogg pages (with their CRC) and MP4 boxes built
 * for tests of proto/audio.h: the unit test, its seed corpus for
 * fuzz_audio and the integration test's voice note. */
#ifndef CHP_TEST_AUDIO_BUILD_H
#define CHP_TEST_AUDIO_BUILD_H

#include <stddef.h>
#include <stdint.h>

/* One Ogg page (RFC 3533) of body (blen <= 255 * 255 - 1) into out:
 * lacing values for one packet, version 0, CRC filled in. Returns its
 * length (27 + segments + blen). */
size_t ab_ogg_page(uint8_t *out, uint8_t type, uint64_t granule, uint32_t serial, uint32_t seq,
                   const uint8_t *body, size_t blen);

/* An Ogg Opus file: OpusHead (pre-skip) and OpusTags pages, then pages
 * pages of audio bytes (each page_bytes long, granules rising evenly to
 * final_granule, the last one with EOS). out needs about
 * 200 + pages * (page_bytes + 300) bytes. Returns the length. */
size_t ab_opus(uint8_t *out, uint16_t preskip, uint64_t final_granule, unsigned pages,
               size_t page_bytes);

/* An Ogg Vorbis file: identification header (rate), then one audio page
 * with granule. */
size_t ab_vorbis(uint8_t *out, uint32_t rate, uint64_t granule);

/* A box header into out: size 32-bit (large = 0) or size 1 with a 64-bit
 * size after the type (large = 1). Returns 8 or 16. */
size_t ab_box_hdr(uint8_t *out, uint64_t size, const char type[4], int large);

/* An mvhd or mdhd box (type) of version 0 or 1 into out; returns its length. */
size_t ab_mvhd(uint8_t *out, const char type[4], int version, uint32_t timescale,
               uint64_t duration);

/* An M4A: ftyp, moov (mvhd of version, timescale, duration; a trak/mdia
 * with an mdhd of mdhd_ts/mdhd_dur when mdhd_ts), then an mdat of
 * mdat_bytes (before moov when moov_last). Returns the length. */
size_t ab_m4a(uint8_t *out, int version, uint32_t timescale, uint64_t duration, uint32_t mdhd_ts,
              uint64_t mdhd_dur, size_t mdat_bytes, int moov_last);

#endif
