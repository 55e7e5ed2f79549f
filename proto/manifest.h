/* manifest.h - the app manifest: the SHA-256 sums of the files `chapar
 * share-app` serves (the .deb, the source tarball), signed with the
 * sharer's identity key, so a receiver who knows the sharer's user ID
 * can tell a true copy from a trojaned one (`chapar verify-app`). The
 * format is byte-exact, docs/SHARE.md "The manifest":
 *
 *   # chapar app manifest v1\n
 *   # signer chp1...\n                     (the sharer's user ID)
 *   <64 lower-case hex>  <name>\n           (1 to CHP_MANIFEST_FILES_MAX, as sha256sum)
 *   # signature <128 lower-case hex>\n     (Ed25519 over CONTEXT || all lines above)
 *
 * Pure: no files; the caller hashes them. */
#ifndef CHP_MANIFEST_H
#define CHP_MANIFEST_H

#include "proto/buf.h"
#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_MANIFEST_FILES_MAX 16
#define CHP_MANIFEST_NAME_MAX  128  /* bytes of a file name */
#define CHP_MANIFEST_BYTES_MAX 8192 /* a whole manifest, signature line included */
#define CHP_MANIFEST_HEADER    "# chapar app manifest v1\n"
/* What the signature covers comes after these bytes (NUL included), so
 * no other message the identity key signs can pass for a manifest. */
#define CHP_MANIFEST_CONTEXT "chapar-app-manifest-v1"

typedef struct chp_manifest_file {
    char name[CHP_MANIFEST_NAME_MAX + 1];
    uint8_t sha256[32];
} chp_manifest_file;

typedef struct chp_manifest {
    uint8_t signer[32]; /* Ed25519 public key of the user ID */
    size_t nfiles;
    chp_manifest_file files[CHP_MANIFEST_FILES_MAX];
    int has_sig; /* parsed a signature line */
    uint8_t sig[64];
    size_t body_len; /* bytes of the manifest the signature covers */
} chp_manifest;

/* Whether name (len bytes) may be listed: 1 to CHP_MANIFEST_NAME_MAX
 * bytes of A-Z a-z 0-9 . _ + ~ -, not starting with '.' or '-' (no path,
 * no hidden file, nothing a shell or a URL must escape). */
int chp_manifest_name_ok(const char *name, size_t len);

/* The unsigned lines (header, signer, files in the order given) of m
 * appended to out. CHP_OK, CHP_E_ARG (no files, too many, a bad or
 * repeated name), CHP_E_NOMEM. */
CHP_WUR int chp_manifest_write_body(const chp_manifest *m, chp_buf *out);

/* The bytes Ed25519 signs for a body: CONTEXT, a NUL, the body. */
CHP_WUR int chp_manifest_sig_msg(const uint8_t *body, size_t len, chp_buf *out);

/* Parses p (len bytes) strictly: every rule above, nothing before,
 * between or after. With need_sig the signature line must end it; without,
 * there must be none (a body to be signed). Does not check the signature.
 * CHP_OK, CHP_E_MALFORMED, CHP_E_TRUNCATED, CHP_E_TOO_BIG, or the ID's
 * parse error for a bad signer. */
CHP_WUR int chp_manifest_parse(const uint8_t *p, size_t len, int need_sig, chp_manifest *m);

/* Whether m's signature (parsed from p, len bytes, with need_sig) is the
 * signer's over its body. CHP_OK, CHP_E_SIGNATURE or CHP_E_NOMEM. */
CHP_WUR int chp_manifest_verify(const uint8_t *p, size_t len, const chp_manifest *m);

/* The file called name, or NULL. Borrowed from m. */
const chp_manifest_file *chp_manifest_find(const chp_manifest *m, const char *name);

#endif
