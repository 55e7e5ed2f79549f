/* file.c - file manifests and pieces (file.h, PROTOCOL.md §18.8). */
#include "proto/file.h"

#include "proto/cursor.h"
#include "proto/keys.h"

#include <string.h>

uint32_t chp_file_count(uint64_t size)
{
    return (uint32_t)((size + CHP_FILE_PIECE - 1) / CHP_FILE_PIECE);
}

size_t chp_file_piece_len(uint64_t size, uint32_t index)
{
    uint64_t off = (uint64_t)index * CHP_FILE_PIECE;
    if (off >= size)
        return 0;
    return size - off < CHP_FILE_PIECE ? (size_t)(size - off) : CHP_FILE_PIECE;
}

static void piece_begin(chp_b2_ctx *h, const uint8_t id[CHP_FILE_ID_BYTES], uint32_t index)
{
    uint8_t hdr[CHP_FILE_PIECE_HDR];
    memcpy(hdr, id, CHP_FILE_ID_BYTES);
    chp_put_be32(hdr + CHP_FILE_ID_BYTES, index);
    chp_b2_init(h);
    chp_b2_update(h, hdr, sizeof hdr);
}

void chp_file_piece_digest(const uint8_t id[CHP_FILE_ID_BYTES], uint32_t index, const uint8_t *data,
                           size_t len, uint8_t out[32])
{
    chp_b2_ctx h;
    piece_begin(&h, id, index);
    chp_b2_update(&h, data, len);
    chp_b2_final(&h, out);
}

void chp_file_hash_init(chp_file_hash_ctx *c, const uint8_t id[CHP_FILE_ID_BYTES])
{
    memset(c, 0, sizeof *c);
    memcpy(c->id, id, CHP_FILE_ID_BYTES);
    chp_b2_init(&c->all);
}

void chp_file_hash_digest(chp_file_hash_ctx *c, const uint8_t digest[32])
{
    chp_b2_update(&c->all, digest, 32);
    c->index++;
}

/* Closes the piece being read into the list of digests. */
static void piece_end(chp_file_hash_ctx *c)
{
    uint8_t d[32];
    chp_b2_final(&c->piece, d);
    chp_file_hash_digest(c, d);
    c->fill = 0;
}

void chp_file_hash_update(chp_file_hash_ctx *c, const uint8_t *data, size_t len)
{
    while (len) {
        if (c->fill == 0)
            piece_begin(&c->piece, c->id, c->index);
        size_t n = CHP_FILE_PIECE - c->fill < len ? CHP_FILE_PIECE - c->fill : len;
        chp_b2_update(&c->piece, data, n);
        c->fill += n;
        data += n;
        len -= n;
        if (c->fill == CHP_FILE_PIECE)
            piece_end(c);
    }
}

void chp_file_hash_final(chp_file_hash_ctx *c, uint8_t out[32])
{
    if (c->fill)
        piece_end(c);
    chp_b2_final(&c->all, out);
    chp_memzero(c, sizeof *c);
}

void chp_file_hash(const uint8_t id[CHP_FILE_ID_BYTES], const uint8_t *data, uint64_t size,
                   uint8_t out[32])
{
    chp_file_hash_ctx c;
    chp_file_hash_init(&c, id);
    chp_file_hash_update(&c, data, (size_t)size);
    chp_file_hash_final(&c, out);
}

/* A media type as "type/subtype": printable ASCII, no space, one '/'
 * neither first nor last; or empty. */
static int mime_ok(const char *s, size_t len)
{
    size_t slash = 0, at = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return 0;
        if (s[i] == '/')
            slash++, at = i;
    }
    return len == 0 || (slash == 1 && at > 0 && at + 1 < len);
}

static int manifest_ok(const chp_file_manifest *m)
{
    if (m->size > CHP_FILE_SIZE_MAX || m->piece_size != CHP_FILE_PIECE ||
        m->count != chp_file_count(m->size))
        return CHP_E_MALFORMED;
    if (m->name_len == 0 || m->name_len > CHP_FILE_NAME_MAX || m->mime_len > CHP_FILE_MIME_MAX ||
        m->caption_len > CHP_FILE_CAPTION_MAX || memchr(m->name, 0, m->name_len) ||
        !mime_ok(m->mime, m->mime_len))
        return CHP_E_MALFORMED;
    if (!chp_utf8_valid((const char *)m->name, m->name_len) ||
        !chp_utf8_valid((const char *)m->caption, m->caption_len))
        return CHP_E_UTF8;
    return CHP_OK;
}

int chp_file_manifest_encode(const chp_file_manifest *m, uint8_t *out, size_t cap, size_t *len)
{
    if (manifest_ok(m) != CHP_OK)
        return CHP_E_ARG;
    chp_wr w;
    chp_wr_init(&w, out, cap);
    chp_wr_bytes(&w, m->id, CHP_FILE_ID_BYTES);
    chp_wr_u64(&w, m->size);
    chp_wr_u32(&w, m->piece_size);
    chp_wr_u32(&w, m->count);
    chp_wr_bytes(&w, m->hash, 32);
    chp_wr_u8(&w, (uint8_t)m->name_len);
    chp_wr_bytes(&w, m->name, m->name_len);
    chp_wr_u8(&w, (uint8_t)m->mime_len);
    chp_wr_bytes(&w, m->mime, m->mime_len);
    chp_wr_u16(&w, (uint16_t)m->caption_len);
    chp_wr_bytes(&w, m->caption, m->caption_len);
    if (w.err)
        return w.err;
    *len = w.off;
    return CHP_OK;
}

int chp_file_manifest_decode(const uint8_t *p, size_t len, chp_file_manifest *m)
{
    chp_rd r;
    uint8_t nl = 0, ml = 0;
    uint16_t cl = 0;
    const uint8_t *mime = NULL;
    memset(m, 0, sizeof *m);
    chp_rd_init(&r, p, len);
    chp_rd_bytes(&r, m->id, CHP_FILE_ID_BYTES);
    chp_rd_u64(&r, &m->size);
    chp_rd_u32(&r, &m->piece_size);
    chp_rd_u32(&r, &m->count);
    chp_rd_bytes(&r, m->hash, 32);
    chp_rd_u8(&r, &nl);
    chp_rd_ref(&r, &m->name, nl);
    chp_rd_u8(&r, &ml);
    chp_rd_ref(&r, &mime, ml);
    chp_rd_u16(&r, &cl);
    chp_rd_ref(&r, &m->caption, cl);
    int rc = chp_rd_done(&r);
    if (rc != CHP_OK)
        return rc;
    m->name_len = nl;
    m->mime = (const char *)mime;
    m->mime_len = ml;
    m->caption_len = cl;
    return manifest_ok(m);
}

int chp_file_piece_encode(const chp_file_piece *pc, uint8_t *out, size_t cap, size_t *len)
{
    if (pc->len == 0 || pc->len > CHP_FILE_PIECE)
        return CHP_E_ARG;
    chp_wr w;
    chp_wr_init(&w, out, cap);
    chp_wr_bytes(&w, pc->id, CHP_FILE_ID_BYTES);
    chp_wr_u32(&w, pc->index);
    chp_wr_bytes(&w, pc->data, pc->len);
    if (w.err)
        return w.err;
    *len = w.off;
    return CHP_OK;
}

int chp_file_piece_decode(const uint8_t *p, size_t len, chp_file_piece *pc)
{
    memset(pc, 0, sizeof *pc);
    if (len < CHP_FILE_PIECE_HDR)
        return CHP_E_TRUNCATED;
    if (len == CHP_FILE_PIECE_HDR || len - CHP_FILE_PIECE_HDR > CHP_FILE_PIECE)
        return CHP_E_MALFORMED;
    memcpy(pc->id, p, CHP_FILE_ID_BYTES);
    pc->index = chp_be32(p + CHP_FILE_ID_BYTES);
    pc->data = p + CHP_FILE_PIECE_HDR;
    pc->len = len - CHP_FILE_PIECE_HDR;
    return CHP_OK;
}

int chp_file_piece_fits(const chp_file_manifest *m, const chp_file_piece *pc)
{
    return !memcmp(m->id, pc->id, CHP_FILE_ID_BYTES) && pc->index < m->count &&
           pc->len == chp_file_piece_len(m->size, pc->index);
}

/* Length of the UTF-8 sequence at s[0..left) that is valid, else 0. */
static size_t seq_len(const uint8_t *s, size_t left)
{
    size_t n = s[0] < 0x80 ? 1 : s[0] < 0xc2 ? 0 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    if (!n || n > left || !chp_utf8_valid((const char *)s, n))
        return 0;
    return n;
}

/* The first stage: every character kept or made '_'; returns the length
 * (at most len). */
static size_t clean_chars(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = seq_len(in + i, len - i), k;
        uint32_t cp = n ? chp_utf8_cp((const char *)in + i, &k) : 0;
        if (!n || chp_cp_hidden(cp) || cp == '/' || cp == '\\' || cp == ':') {
            out[o++] = '_';
            i += n ? n : 1;
            continue;
        }
        memcpy(out + o, in + i, n);
        o += n;
        i += n;
    }
    return o;
}

/* Where a cut at most at max bytes of s (valid UTF-8) may fall. */
static size_t char_floor(const char *s, size_t max)
{
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

void chp_file_name_clean(const uint8_t *name, size_t len, char out[CHP_FILE_SAFE_NAME])
{
    char tmp[4 * CHP_FILE_NAME_MAX + 1];
    if (len > CHP_FILE_NAME_MAX)
        len = CHP_FILE_NAME_MAX;
    size_t n = name ? clean_chars(name, len, tmp) : 0, a = 0;
    tmp[n] = '\0';
    while (a < n && (tmp[a] == '.' || tmp[a] == ' '))
        a++;
    while (n > a && (tmp[n - 1] == '.' || tmp[n - 1] == ' '))
        n--;
    /* never an option to a shell tool (`rm -rf`) */
    if (a < n && tmp[a] == '-')
        tmp[a] = '_';
    const char *s = tmp + a;
    n -= a;
    if (n == 0) {
        strcpy(out, "file");
        return;
    }
    if (n < CHP_FILE_SAFE_NAME) {
        memcpy(out, s, n);
        out[n] = '\0';
        return;
    }
    const char *dot = NULL;
    for (size_t i = n; i-- > 0 && n - i <= 17;)
        if (s[i] == '.') {
            dot = s + i;
            break;
        }
    size_t ext = dot ? (size_t)(s + n - dot) : 0;
    size_t stem = char_floor(s, CHP_FILE_SAFE_NAME - 1 - ext);
    memcpy(out, s, stem);
    memcpy(out + stem, s + n - ext, ext);
    out[stem + ext] = '\0';
}
