/* audio.h - how long a voice note plays, read from its container: Ogg
 * Opus, Ogg Vorbis and MP4/M4A. The bytes come through a read callback,
 * a few bounded ranges of the file (the first and last 64 KiB of an Ogg
 * stream; box headers and the header box of an MP4), never the whole
 * file. Pure: no files here; whoever holds the bytes reads them. Every
 * field is untrusted: anything unexpected gives CHP_AUDIO_UNKNOWN. */
#ifndef CHP_AUDIO_H
#define CHP_AUDIO_H

#include <stddef.h>
#include <stdint.h>

typedef enum chp_audio_kind {
    CHP_AUDIO_UNKNOWN = 0, /* not a container we read, or it does not say */
    CHP_AUDIO_OPUS,
    CHP_AUDIO_VORBIS,
    CHP_AUDIO_MP4,
} chp_audio_kind;

/* The bytes of an Ogg stream read at its start and at its end: a page is
 * at most 65307 bytes, so the last one always lies in the last window. */
#define CHP_AUDIO_WINDOW 65536u
/* Reads of one probe at most (MP4 box headers); past it: unknown. */
#define CHP_AUDIO_READS_MAX 256u

/* Copies up to len bytes at offset off of the file into buf; returns how
 * many (fewer only at the end of the file or on an error, -1 on error). */
typedef long (*chp_audio_read_fn)(void *ctx, uint64_t off, uint8_t *buf, size_t len);

typedef struct chp_audio_src {
    chp_audio_read_fn read;
    void *ctx;     /* passed to read; borrowed for the call */
    uint64_t size; /* the file's length in bytes */
} chp_audio_src;

/* The container's kind and, when it is not CHP_AUDIO_UNKNOWN, the
 * duration in milliseconds (rounded down, below 2^32) into *ms (0
 * otherwise). Ogg: the last page of the first stream with a granule
 * position, less the Opus pre-skip, at 48 kHz (Opus) or the rate of the
 * Vorbis identification header; every page read must carry its CRC.
 * MP4: moov/mvhd, else the first trak/mdia/mdhd, versions 0 and 1.
 * Allocates one CHP_AUDIO_WINDOW buffer for the call. */
chp_audio_kind chp_audio_duration(const chp_audio_src *src, uint32_t *ms);

/* The same over len bytes in memory (a whole small file). */
chp_audio_kind chp_audio_duration_mem(const uint8_t *p, size_t len, uint32_t *ms);

/* 1 when a file of this name or media type (either may be NULL) is one
 * shown as a voice note: .opus, .ogg, .oga, .m4a; audio/ogg, audio/opus,
 * audio/mp4, audio/x-m4a. */
int chp_audio_is_voice(const char *name, const char *mime);

/* "M:SS" (or "H:MM:SS" from an hour) of ms into out (16 bytes do). */
void chp_audio_fmt(uint32_t ms, char *out, size_t cap);

#endif
