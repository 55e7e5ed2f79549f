/* manifest.c - the app manifest (manifest.h): writer, strict parser,
 * signature check. */
#include "proto/manifest.h"
#include "proto/crypto.h"
#include "proto/hex.h"
#include "proto/id.h"

#include <stdio.h>
#include <string.h>

#define SIGNER_PREFIX "# signer "
#define SIG_PREFIX    "# signature "
#define HEXLOW        "0123456789abcdef"

int chp_manifest_name_ok(const char *name, size_t len)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+~-";
    if (len == 0 || len > CHP_MANIFEST_NAME_MAX || name[0] == '.' || name[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name[i] || !strchr(ok, name[i]))
            return 0;
    return 1;
}

const chp_manifest_file *chp_manifest_find(const chp_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (!strcmp(m->files[i].name, name))
            return &m->files[i];
    return NULL;
}

/* Files 1..MAX, names valid and unique. */
static int files_ok(const chp_manifest *m)
{
    if (m->nfiles == 0 || m->nfiles > CHP_MANIFEST_FILES_MAX)
        return 0;
    for (size_t i = 0; i < m->nfiles; i++) {
        if (!chp_manifest_name_ok(m->files[i].name,
                                  strnlen(m->files[i].name, sizeof m->files[i].name)))
            return 0;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(m->files[i].name, m->files[k].name))
                return 0;
    }
    return 1;
}

int chp_manifest_write_body(const chp_manifest *m, chp_buf *out)
{
    if (!files_ok(m))
        return CHP_E_ARG;
    char id[CHP_ID_STR_LEN + 1], hex[65];
    chp_id_encode(m->signer, id);
    int rc = chp_buf_put(out, CHP_MANIFEST_HEADER, strlen(CHP_MANIFEST_HEADER));
    if (rc == CHP_OK)
        rc = chp_buf_put(out, SIGNER_PREFIX, strlen(SIGNER_PREFIX));
    if (rc == CHP_OK)
        rc = chp_buf_put(out, id, strlen(id));
    if (rc == CHP_OK)
        rc = chp_buf_put(out, "\n", 1);
    for (size_t i = 0; rc == CHP_OK && i < m->nfiles; i++) {
        chp_hex_encode(m->files[i].sha256, 32, hex);
        rc = chp_buf_put(out, hex, 64);
        if (rc == CHP_OK)
            rc = chp_buf_put(out, "  ", 2);
        if (rc == CHP_OK)
            rc = chp_buf_put(out, m->files[i].name, strlen(m->files[i].name));
        if (rc == CHP_OK)
            rc = chp_buf_put(out, "\n", 1);
    }
    return rc;
}

int chp_manifest_sig_msg(const uint8_t *body, size_t len, chp_buf *out)
{
    int rc = chp_buf_put(out, CHP_MANIFEST_CONTEXT, sizeof CHP_MANIFEST_CONTEXT);
    return rc == CHP_OK ? chp_buf_put(out, body, len) : rc;
}

/* The line at *off (its bytes without the newline in *line, *n); moves
 * *off past the newline. 0 when the input ends without one. */
static int next_line(const uint8_t *p, size_t len, size_t *off, const char **line, size_t *n)
{
    if (*off >= len)
        return 0;
    const uint8_t *e = memchr(p + *off, '\n', len - *off);
    if (!e)
        return 0;
    *line = (const char *)p + *off;
    *n = (size_t)(e - (p + *off));
    *off += *n + 1;
    return 1;
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(HEXLOW, s[i]))
            return 0;
    return 1;
}

static int file_line(const char *l, size_t n, chp_manifest *m)
{
    if (n < 67 || l[64] != ' ' || l[65] != ' ' || !is_lower_hex(l, 64) ||
        !chp_manifest_name_ok(l + 66, n - 66) || m->nfiles == CHP_MANIFEST_FILES_MAX)
        return CHP_E_MALFORMED;
    chp_manifest_file *f = &m->files[m->nfiles];
    if (chp_hex_decode(l, 64, f->sha256, 32) != CHP_OK)
        return CHP_E_MALFORMED;
    memcpy(f->name, l + 66, n - 66);
    f->name[n - 66] = '\0';
    if (chp_manifest_find(m, f->name))
        return CHP_E_MALFORMED; /* the same name twice */
    m->nfiles++;
    return CHP_OK;
}

int chp_manifest_parse(const uint8_t *p, size_t len, int need_sig, chp_manifest *m)
{
    memset(m, 0, sizeof *m);
    if (len > CHP_MANIFEST_BYTES_MAX)
        return CHP_E_TOO_BIG;
    size_t off = 0, n, hl = strlen(CHP_MANIFEST_HEADER), sl = strlen(SIGNER_PREFIX);
    const char *l;
    if (len < hl || memcmp(p, CHP_MANIFEST_HEADER, hl))
        return len < hl ? CHP_E_TRUNCATED : CHP_E_MALFORMED;
    off = hl;
    if (!next_line(p, len, &off, &l, &n))
        return CHP_E_TRUNCATED;
    if (n != sl + CHP_ID_STR_LEN || memcmp(l, SIGNER_PREFIX, sl))
        return CHP_E_MALFORMED;
    int rc = chp_id_parse(l + sl, CHP_ID_STR_LEN, m->signer);
    if (rc != CHP_OK)
        return rc;
    if (memchr(l + sl, 'C', 4)) /* upper case: one spelling only */
        return CHP_E_MALFORMED;
    size_t body_end = off;
    while (next_line(p, len, &off, &l, &n)) {
        if (n >= strlen(SIG_PREFIX) && !memcmp(l, SIG_PREFIX, strlen(SIG_PREFIX))) {
            if (!need_sig || n != strlen(SIG_PREFIX) + 128 || off != len ||
                !is_lower_hex(l + strlen(SIG_PREFIX), 128) ||
                chp_hex_decode(l + strlen(SIG_PREFIX), 128, m->sig, 64) != CHP_OK)
                return CHP_E_MALFORMED;
            m->has_sig = 1;
            break;
        }
        if ((rc = file_line(l, n, m)) != CHP_OK)
            return rc;
        body_end = off;
    }
    m->body_len = body_end;
    if (off != len)
        return CHP_E_TRUNCATED; /* a last line without its newline */
    if (!m->nfiles || (need_sig && !m->has_sig))
        return CHP_E_TRUNCATED;
    return CHP_OK;
}

int chp_manifest_verify(const uint8_t *p, size_t len, const chp_manifest *m)
{
    if (!m->has_sig || m->body_len > len)
        return CHP_E_SIGNATURE;
    chp_buf msg = {0};
    int rc = chp_manifest_sig_msg(p, m->body_len, &msg);
    if (rc == CHP_OK)
        rc = chp_sign_verify(m->sig, msg.p, msg.len, m->signer);
    chp_buf_free(&msg);
    return rc;
}
