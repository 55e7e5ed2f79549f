/* file.h - files as messages (PROTOCOL.md §18.8): a manifest (content
 * type 7) that names, sizes and hashes the file, and its pieces (content
 * type 8), each an ordinary envelope of the usual buckets. Both travel
 * inside the encryption and under the sender's inner signature, so the
 * manifest is signed and a relay sees only envelopes. Pure: encoders,
 * strict decoders and the name sanitiser; no files here.
 *
 *   manifest (7): fileid[16] | size u64 | piece_size u32 | count u32 |
 *                 hash[32] | name_len u8 | name | mime_len u8 | mime |
 *                 caption_len u16 | caption
 *   piece (8):    fileid[16] | index u32 | data
 *
 * The manifest's hash is BLAKE2b-256 over the pieces' digests in index
 * order, a piece's digest being BLAKE2b-256 of its payload (the bytes
 * above): the very digest its envelope's signed statement commits to, so
 * the sender hashes each piece once, for both.
 */
#ifndef CHP_FILE_H
#define CHP_FILE_H

#include "proto/crypto.h"
#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_FILE_ID_BYTES    16
#define CHP_FILE_PIECE       16256u /* piece_size: every piece but the last holds this */
#define CHP_FILE_PIECE_HDR   20u    /* fileid + index */
#define CHP_FILE_SIZE_MAX    ((uint64_t)CHP_FILE_PIECE * 0xffffffu) /* ~254 GiB: count < 2^24 */
#define CHP_FILE_NAME_MAX    255u
#define CHP_FILE_MIME_MAX    127u
#define CHP_FILE_CAPTION_MAX 4096u
#define CHP_FILE_MANIFEST_MAX                                                                      \
    (16u + 8u + 4u + 4u + 32u + 1u + CHP_FILE_NAME_MAX + 1u + CHP_FILE_MIME_MAX + 2u +             \
     CHP_FILE_CAPTION_MAX)
/* The streaming form of a file's hash: init, then the file's bytes in
 * order (update, cut anywhere) or its pieces' digests in order (digest),
 * not both; final. */
typedef struct chp_file_hash_ctx {
    chp_b2_ctx all;   /* over the digests */
    chp_b2_ctx piece; /* the piece being read */
    uint8_t id[CHP_FILE_ID_BYTES];
    uint32_t index; /* of the piece being read */
    size_t fill;    /* its data bytes so far */
} chp_file_hash_ctx;

/* A sanitised name, NUL included (chp_file_name_clean). */
#define CHP_FILE_SAFE_NAME 128u

typedef struct chp_file_manifest {
    uint8_t id[CHP_FILE_ID_BYTES];
    uint64_t size;
    uint32_t piece_size; /* CHP_FILE_PIECE */
    uint32_t count;      /* ceil(size / piece_size) */
    uint8_t hash[32];    /* chp_file_hash of the file */
    const uint8_t *name; /* decode: borrowed from the input */
    size_t name_len;     /* 1..CHP_FILE_NAME_MAX, UTF-8, no NUL */
    const char *mime;    /* 0..CHP_FILE_MIME_MAX bytes of type/subtype */
    size_t mime_len;
    const uint8_t *caption; /* 0..CHP_FILE_CAPTION_MAX bytes of UTF-8 */
    size_t caption_len;
} chp_file_manifest;

typedef struct chp_file_piece {
    uint8_t id[CHP_FILE_ID_BYTES];
    uint32_t index;
    const uint8_t *data; /* borrowed */
    size_t len;          /* 1..CHP_FILE_PIECE */
} chp_file_piece;

/* Pieces of a file of size bytes. */
uint32_t chp_file_count(uint64_t size);
/* Bytes of piece index of a file of size bytes (0 past the last). */
size_t chp_file_piece_len(uint64_t size, uint32_t index);

/* Encodes m into out (cap bytes, CHP_FILE_MANIFEST_MAX is always
 * enough); *len gets its length. CHP_E_ARG when m breaks a rule the
 * decoder checks. */
CHP_WUR int chp_file_manifest_encode(const chp_file_manifest *m, uint8_t *out, size_t cap,
                                     size_t *len);
/* Strict: every field within its bounds, piece_size = CHP_FILE_PIECE,
 * count = chp_file_count(size), size <= CHP_FILE_SIZE_MAX, the name
 * valid UTF-8 without NUL, the type printable ASCII with one '/', the
 * caption valid UTF-8, nothing after. CHP_E_TRUNCATED, CHP_E_TRAILING,
 * CHP_E_MALFORMED, CHP_E_UTF8. */
CHP_WUR int chp_file_manifest_decode(const uint8_t *p, size_t len, chp_file_manifest *m);

/* Piece encoding: out needs CHP_FILE_PIECE_HDR + len bytes. */
CHP_WUR int chp_file_piece_encode(const chp_file_piece *pc, uint8_t *out, size_t cap, size_t *len);
/* Strict: 1..CHP_FILE_PIECE bytes of data. Whether index and length fit
 * a manifest is chp_file_piece_fits. */
CHP_WUR int chp_file_piece_decode(const uint8_t *p, size_t len, chp_file_piece *pc);
/* 1 when piece pc belongs in the file m describes (same id, index below
 * count, exactly the length of that piece), else 0. */
int chp_file_piece_fits(const chp_file_manifest *m, const chp_file_piece *pc);

/* BLAKE2b-256 of the payload of piece index of file id holding data
 * (what chp_file_piece_encode writes), without building it. */
void chp_file_piece_digest(const uint8_t id[CHP_FILE_ID_BYTES], uint32_t index, const uint8_t *data,
                           size_t len, uint8_t out[32]);
void chp_file_hash_init(chp_file_hash_ctx *c, const uint8_t id[CHP_FILE_ID_BYTES]);
void chp_file_hash_update(chp_file_hash_ctx *c, const uint8_t *data, size_t len);
void chp_file_hash_digest(chp_file_hash_ctx *c, const uint8_t digest[32]);
void chp_file_hash_final(chp_file_hash_ctx *c, uint8_t out[32]);
/* The manifest hash of the file id of size bytes at data. */
void chp_file_hash(const uint8_t id[CHP_FILE_ID_BYTES], const uint8_t *data, uint64_t size,
                   uint8_t out[32]);

/* A name safe to create in a directory from any name a sender chose:
 * invalid UTF-8, control, invisible and bidi characters, '/', '\\' and
 * ':' become '_'; leading dots and spaces, trailing dots and spaces go;
 * a '-' left in front becomes '_' (never read as an option);
 * at most CHP_FILE_SAFE_NAME - 1 bytes (cut at a character, the
 * extension of up to 16 bytes kept); empty or nothing left: "file".
 * Never "", ".", ".." or a path. */
void chp_file_name_clean(const uint8_t *name, size_t len, char out[CHP_FILE_SAFE_NAME]);

#endif
