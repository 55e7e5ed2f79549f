/* bundle.h - bundles: envelopes carried on removable media (PROTOCOL.md
 * §19). Three layers, all pure (the caller reads and writes the files):
 *
 * - records: an 8-byte header, then records `type u8 | len u32 |
 *   payload | check[16]`, where check chains a keyed BLAKE2b over every
 *   record before it, and an END record that counts them. A reader proves
 *   each record before handing it out, so a damaged file yields its valid
 *   prefix and a clear error, never a record that was not written.
 * - sealing: the record stream cut into chunks of 64 KiB - 32, each sealed with
 *   XChaCha20-Poly1305 under a key Argon2id derives from a passphrase and
 *   a random salt; the file is `salt | chunks`, padded to a Padmé number of
 *   chunks. No magic, no version, no count, no length is in the clear.
 * - want summaries (want.c): what a node holds, for `export --for`.
 *
 * Bundles and want files share the record layer; they differ in the
 * header's kind byte. */
#ifndef CHP_BUNDLE_H
#define CHP_BUNDLE_H

#include "proto/buf.h"
#include "proto/crypto.h"
#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_BUNDLE_HDR_BYTES 8          /* "CHPBNDL" | kind */
#define CHP_BUNDLE_CHECK     16         /* bytes of a record's check */
#define CHP_BUNDLE_REC_HDR   5          /* type u8 | len u32 */
#define CHP_BUNDLE_REC_MAX   (1u << 20) /* largest payload a reader accepts */

/* The header's kind byte. */
#define CHP_BUNDLE_KIND_ENVELOPES 1 /* a bundle of envelopes */
#define CHP_BUNDLE_KIND_WANT      2 /* a want summary */

/* Record types. */
#define CHP_REC_ENVELOPE 1 /* payload: one envelope, as on the wire */
#define CHP_REC_WANT     2 /* payload: a want summary (want.h) */
#define CHP_REC_END      3 /* payload: u64 number of records before it */

/* ---- records ---- */

/* Writes a record stream into a chp_buf the caller owns and drains. */
typedef struct chp_bundle_wr {
    uint8_t chain[CHP_BUNDLE_CHECK]; /* the last record's check */
    uint64_t count;                  /* records written, END excluded */
    int ended;
} chp_bundle_wr;

/* Appends the header of the given kind to out. CHP_OK or CHP_E_NOMEM. */
CHP_WUR int chp_bundle_wr_begin(chp_bundle_wr *w, uint8_t kind, chp_buf *out);
/* Appends one record (len <= CHP_BUNDLE_REC_MAX, else CHP_E_TOO_BIG). */
CHP_WUR int chp_bundle_wr_rec(chp_bundle_wr *w, uint8_t type, const uint8_t *p, size_t len,
                              chp_buf *out);
/* Appends the END record; nothing may follow. */
CHP_WUR int chp_bundle_wr_end(chp_bundle_wr *w, chp_buf *out);
/* Bytes a record of payload len takes in the stream. */
static inline size_t chp_bundle_rec_size(size_t len)
{
    return CHP_BUNDLE_REC_HDR + len + CHP_BUNDLE_CHECK;
}

/* Reads a record stream fed in pieces. */
typedef struct chp_bundle_rd {
    uint8_t chain[CHP_BUNDLE_CHECK];
    uint64_t count; /* records proven so far, END excluded */
    uint8_t kind;   /* from the header, 0 before it */
    int ended;      /* the END record was proven: the stream is complete */
} chp_bundle_rd;

/* One record, borrowed from the buffer given to chp_bundle_rd_next. */
typedef struct chp_bundle_rec {
    uint8_t type;
    const uint8_t *p;
    size_t len;
} chp_bundle_rec;

void chp_bundle_rd_init(chp_bundle_rd *r);
/* Takes the next item from buf[0..len), the bytes after what was taken
 * before. On CHP_OK *used bytes were taken and rec (type 0 for the header)
 * is proven. CHP_E_TRUNCATED: buf holds no whole item yet (nothing taken;
 * at the end of the input it means the file is cut short). Errors, after
 * which the reader takes nothing more: CHP_E_MALFORMED (not a bundle
 * header, an unknown record type, END with a wrong count or anything
 * after END), CHP_E_TOO_BIG (a length over CHP_BUNDLE_REC_MAX: checked
 * before any byte of the payload is awaited), CHP_E_CORRUPT (a check does
 * not match: the record was damaged). */
CHP_WUR int chp_bundle_rd_next(chp_bundle_rd *r, const uint8_t *buf, size_t len, size_t *used,
                               chp_bundle_rec *rec);
/* 1 when p[0..len) may be the start of an open bundle or want file (the
 * magic of the header, any kind). */
int chp_bundle_is_open(const uint8_t *p, size_t len);

/* ---- sealing ---- */

#define CHP_SEAL_SALT  16
#define CHP_SEAL_CHUNK 65504 /* plaintext bytes per chunk: salt and one chunk make 64 KiB */
#define CHP_SEAL_CT    (CHP_SEAL_CHUNK + CHP_AEAD_TAG_BYTES) /* bytes per sealed chunk */
#define CHP_SEAL_OPS   2                                     /* Argon2id passes */
#define CHP_SEAL_MEM   (64ull << 20)                         /* Argon2id memory, bytes */

/* The file key from a passphrase and the file's salt (Argon2id with
 * CHP_SEAL_OPS, CHP_SEAL_MEM). CHP_OK or CHP_E_KDF. key is secret: the
 * caller wipes it. */
CHP_WUR int chp_seal_key(const char *pass, size_t passlen, const uint8_t salt[CHP_SEAL_SALT],
                         uint8_t key[32]);
/* Seals chunk number index of CHP_SEAL_CHUNK bytes pt into ct
 * (CHP_SEAL_CT bytes); last is 1 for the file's last chunk. */
void chp_seal_chunk(const uint8_t key[32], uint64_t index, int last, const uint8_t *pt,
                    uint8_t *ct);
/* Opens one; CHP_OK or CHP_E_DECRYPT (wrong key, damaged, or a chunk that
 * is not where it was sealed: reordered, or the last of a cut file). */
CHP_WUR int chp_open_chunk(const uint8_t key[32], uint64_t index, int last, const uint8_t *ct,
                           uint8_t *pt);
/* The number of chunks a sealed file of plain plaintext bytes has: the
 * chunks needed, rounded up by Padmé (leaks O(log log) bits of the size,
 * overhead under 12 %). */
uint64_t chp_seal_chunks(uint64_t plain);
/* The number of chunks in a sealed file of size bytes, or 0 when no sealed
 * file has that size. */
uint64_t chp_seal_file_chunks(uint64_t size);

#endif
