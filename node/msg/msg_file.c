/* msg_file.c - files (PROTOCOL.md §18.8): a signed manifest and pieces,
 * each an ordinary envelope. Out: the file is read once, streamed into
 * the encrypted piece table with its whole-file hash, and its envelopes
 * fed to the job queue a few at a time, so neither memory nor a restart
 * depends on its size. In: pieces are kept in the same table until every
 * one is there; the file is then checked from its pieces' digests
 * (msg_fdig.c; or streamed out and hashed) and saved (from a contact) or
 * kept for `file save` (from a stranger; msg_filectl.c has the commands).
 * Between msg_out.c and msg_in.c in the layer's order; msg_out.c reaches
 * it only through the hooks chp_msgi_files_init sets. */
#include "node/msg/msg_int.h"
#include "node/msg/msg_fdig.h"
#include "node/msg/msg_voice.h"

#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/file.h"
#include "proto/hex.h"
#include "node/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_REC_VERSION 1u
#define FILE_KEY         (1u + 32u + 16u)
#define PIECE_KEY        (FILE_KEY + 4u)
#define FEED_AHEAD       4u  /* a file's envelopes in the job queue at once */
#define READ_BATCH       64u /* pieces per write transaction when queueing */
#define STRANGER_FILES   8u  /* incomplete files from strangers kept at once */
#define PEND_MAX         32u /* received pieces handed to the store at once */
/* A contact's tags computed ahead for the pieces a manifest announces
 * (beyond, the usual window follows the pieces as they come). */
#define WINDOW_FILE_MAX 8192u

/* A received piece waiting to be written (chp_msgi_files_flush). */
struct fpend {
    uint8_t key[PIECE_KEY];
    uint8_t *data;
    size_t len;
};

static uint64_t max_file(const chp_msg *m)
{
    return m->host.max_file ? m->host.max_file : CHP_MSG_MAX_FILE;
}

static void file_key(const struct xfile *x, uint8_t k[FILE_KEY])
{
    k[0] = (uint8_t)x->out;
    memcpy(k + 1, x->sender, 32);
    memcpy(k + 33, x->id, 16);
}

static void piece_key(const struct xfile *x, uint32_t i, uint8_t k[PIECE_KEY])
{
    file_key(x, k);
    chp_put_be32(k + FILE_KEY, i);
}

static void fmt_size(uint64_t n, char *out, size_t cap)
{
    if (n < 1024)
        snprintf(out, cap, "%llu B", (unsigned long long)n);
    else if (n < (1u << 20))
        snprintf(out, cap, "%.1f KiB", (double)n / 1024.0);
    else
        snprintf(out, cap, "%.1f MiB", (double)n / 1048576.0);
}

/* ---- records ---- */

static void str_put(chp_wr *w, const char *s, int wide)
{
    size_t l = s ? strlen(s) : 0;
    if (wide)
        chp_wr_u16(w, (uint16_t)l);
    else
        chp_wr_u8(w, (uint8_t)l);
    chp_wr_bytes(w, s, l);
}

int chp_msgi_file_save_rec(chp_msg *m, const struct xfile *x)
{
    size_t cap = 512 + (x->caption ? strlen(x->caption) : 0) + (x->path ? strlen(x->path) : 0);
    uint8_t *b = malloc(cap), k[FILE_KEY];
    if (!b)
        return CHP_E_NOMEM;
    chp_wr w;
    chp_wr_init(&w, b, cap);
    chp_wr_u8(&w, FILE_REC_VERSION);
    chp_wr_u8(&w, (uint8_t)x->kind);
    chp_wr_u8(&w, (uint8_t)x->state);
    chp_wr_u8(&w, (uint8_t)x->have_manifest);
    chp_wr_bytes(&w, x->peer, 32);
    str_put(&w, x->room, 0);
    chp_wr_u64(&w, x->size);
    chp_wr_u32(&w, x->count);
    chp_wr_bytes(&w, x->hash, 32);
    str_put(&w, x->name, 0);
    str_put(&w, x->mime, 0);
    chp_wr_u32(&w, x->sent);
    chp_wr_u64(&w, x->time);
    str_put(&w, x->caption, 1);
    str_put(&w, x->path, 1);
    file_key(x, k);
    int rc = w.err ? w.err : chp_store_local_put(m->store, CHP_TABLE_FILES, k, sizeof k, b, w.off);
    free(b);
    if (rc != CHP_OK)
        chp_warn("cannot save a file's record: %s", chp_strerror(rc));
    return rc;
}

static int str_get(chp_rd *r, char *out, size_t cap, char **dup, int wide)
{
    uint16_t l16 = 0;
    uint8_t l8 = 0;
    const uint8_t *p = NULL;
    if (wide)
        chp_rd_u16(r, &l16);
    else
        chp_rd_u8(r, &l8);
    size_t l = wide ? l16 : l8;
    if (chp_rd_ref(r, &p, l) != CHP_OK)
        return CHP_E_TRUNCATED;
    if (dup) {
        *dup = l ? strndup((const char *)p, l) : NULL;
        return l && !*dup ? CHP_E_NOMEM : CHP_OK;
    }
    chp_msgi_copy_str(out, cap, p, l);
    return CHP_OK;
}

static int file_parse_rec(struct xfile *x, const uint8_t *key, const uint8_t *v, size_t vl)
{
    chp_rd r;
    uint8_t ver = 0, kind = 0, st = 0, hm = 0;
    memset(x, 0, sizeof *x);
    x->out = key[0];
    memcpy(x->sender, key + 1, 32);
    memcpy(x->id, key + 33, 16);
    chp_rd_init(&r, v, vl);
    chp_rd_u8(&r, &ver);
    chp_rd_u8(&r, &kind);
    chp_rd_u8(&r, &st);
    chp_rd_u8(&r, &hm);
    chp_rd_bytes(&r, x->peer, 32);
    str_get(&r, x->room, sizeof x->room, NULL, 0);
    chp_rd_u64(&r, &x->size);
    chp_rd_u32(&r, &x->count);
    chp_rd_bytes(&r, x->hash, 32);
    str_get(&r, x->name, sizeof x->name, NULL, 0);
    str_get(&r, x->mime, sizeof x->mime, NULL, 0);
    chp_rd_u32(&r, &x->sent);
    chp_rd_u64(&r, &x->time);
    int rc = str_get(&r, NULL, 0, &x->caption, 1);
    if (rc == CHP_OK)
        rc = str_get(&r, NULL, 0, &x->path, 1);
    if (rc == CHP_OK)
        rc = chp_rd_done(&r);
    x->kind = kind;
    x->state = st;
    x->have_manifest = hm;
    if (rc == CHP_OK && (ver != FILE_REC_VERSION || x->count != chp_file_count(x->size)))
        rc = CHP_E_CORRUPT;
    return rc;
}

static void xfile_clear(struct xfile *x)
{
    free(x->caption);
    free(x->path);
    free(x->bits);
    chp_msgi_fdig_free(x);
    memset(x, 0, sizeof *x);
}

static struct xfile *xfile_add(chp_msg *m)
{
    if (chp_grow(&m->files, &m->capfiles, m->nfiles + 1, sizeof *m->files) != CHP_OK)
        return NULL;
    memset(&m->files[m->nfiles], 0, sizeof *m->files);
    return &m->files[m->nfiles++];
}

static struct xfile *xfile_find(chp_msg *m, int out, const uint8_t sender[32], const uint8_t id[16])
{
    for (size_t i = 0; i < m->nfiles; i++) {
        struct xfile *x = &m->files[i];
        if (x->out == out && !memcmp(x->id, id, 16) && !memcmp(x->sender, sender, 32))
            return x;
    }
    return NULL;
}

const struct xfile *chp_msgi_file_out(const chp_msg *m, const uint8_t msgid[16])
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i].out && !memcmp(m->files[i].id, msgid, 16))
            return &m->files[i];
    return NULL;
}

/* Pieces of x held, and the bitmap (nbits) of which. */
static int bits_ensure(struct xfile *x, uint32_t n)
{
    if (n <= x->nbits)
        return CHP_OK;
    size_t old = (x->nbits + 7) / 8, want = ((size_t)n + 7) / 8;
    uint8_t *b = realloc(x->bits, want);
    if (!b)
        return CHP_E_NOMEM;
    memset(b + old, 0, want - old);
    x->bits = b;
    x->nbits = n;
    return CHP_OK;
}

static int bit_get(const struct xfile *x, uint32_t i)
{
    return i < x->nbits && (x->bits[i / 8] >> (i % 8)) & 1;
}

/* Which pieces of incoming x are in the table (after a restart). */
static void bits_rebuild(chp_msg *m, struct xfile *x)
{
    uint32_t n = x->have_manifest ? x->count : (uint32_t)chp_file_count(max_file(m));
    if (bits_ensure(x, n) != CHP_OK)
        return;
    x->have = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t k[PIECE_KEY], *v;
        size_t vl;
        piece_key(x, i, k);
        if (chp_store_local_get(m->store, CHP_TABLE_PIECES, k, sizeof k, &v, &vl) == CHP_OK) {
            x->bits[i / 8] |= (uint8_t)(1u << (i % 8));
            x->have++;
            chp_store_local_free(v, vl);
        }
    }
}

static int load_one(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    chp_msg *m = ctx;
    struct xfile tmp = {0};
    if (klen != FILE_KEY || file_parse_rec(&tmp, key, val, vlen) != CHP_OK) {
        xfile_clear(&tmp);
        chp_warn("a damaged file record was skipped");
        return 0;
    }
    struct xfile *x = xfile_add(m);
    if (!x) {
        xfile_clear(&tmp);
        return CHP_E_NOMEM;
    }
    *x = tmp;
    x->next = x->sent; /* what was queued but not published goes again */
    return 0;
}

int chp_msgi_files_load(chp_msg *m)
{
    int rc = chp_store_local_each(m->store, CHP_TABLE_FILES, load_one, m);
    for (size_t i = 0; i < m->nfiles; i++)
        if (!m->files[i].out && m->files[i].state == FS_INCOMING) {
            bits_rebuild(m, &m->files[i]);
            m->files[i].dg_off = 1; /* the digests of what it held were in memory */
        }
    return rc;
}

int chp_msgi_files_incomplete(const chp_msg *m)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (!m->files[i].out && m->files[i].state == FS_INCOMING)
            return 1;
    return 0;
}

void chp_msgi_files_free(chp_msg *m)
{
    for (size_t i = 0; i < m->npend; i++) {
        chp_memzero(m->pend[i].data, m->pend[i].len);
        free(m->pend[i].data);
    }
    free(m->pend);
    m->pend = NULL;
    m->npend = 0; /* chp_msg_free wrote them (chp_msgi_examined_save); a wipe drops them */
    for (size_t i = 0; i < m->nfiles; i++)
        xfile_clear(&m->files[i]);
    free(m->files);
    m->files = NULL;
    m->nfiles = m->capfiles = 0;
}

/* Deletes pieces 0..n-1 of x from the table. */
void chp_msgi_pieces_drop(chp_msg *m, const struct xfile *x, uint32_t n)
{
    uint8_t(*keys)[PIECE_KEY] = malloc(READ_BATCH * sizeof *keys);
    chp_store_lkey lk[READ_BATCH];
    for (uint32_t i = 0; keys && i < n; i += READ_BATCH) {
        uint32_t k = n - i < READ_BATCH ? n - i : READ_BATCH;
        for (uint32_t j = 0; j < k; j++) {
            piece_key(x, i + j, keys[j]);
            lk[j] = (chp_store_lkey){keys[j], PIECE_KEY};
        }
        if (chp_store_local_del_many(m->store, CHP_TABLE_PIECES, lk, k, NULL) != CHP_OK)
            chp_warn("cannot delete a file's pieces");
    }
    free(keys);
}

/* Pieces that may not have been written (some write failed): every
 * incoming file is read back when complete, and found short if so. */
static void pieces_maybe_lost(chp_msg *m, int rc)
{
    chp_warn("cannot store received file pieces: %s", chp_strerror(rc));
    for (size_t i = 0; i < m->nfiles; i++)
        if (!m->files[i].out && m->files[i].state == FS_INCOMING)
            chp_msgi_fdig_drop(&m->files[i]);
}

/* Received pieces held in memory, PEND_MAX at a time, handed to the
 * store sealed: the next store batch's commit writes them (one
 * transaction and one fsync for the envelopes and the pieces they
 * brought), else chp_msgi_files_sync. */
void chp_msgi_files_flush(chp_msg *m)
{
    if (!m->npend)
        return;
    chp_store_lrec recs[PEND_MAX];
    for (size_t i = 0; i < m->npend; i++)
        recs[i] = (chp_store_lrec){m->pend[i].key, m->pend[i].data, PIECE_KEY, m->pend[i].len};
    int rc = chp_store_local_put_later(m->store, CHP_TABLE_PIECES, recs, m->npend);
    if (rc != CHP_OK)
        pieces_maybe_lost(m, rc);
    for (size_t i = 0; i < m->npend; i++) {
        chp_memzero(m->pend[i].data, m->pend[i].len);
        free(m->pend[i].data);
    }
    m->npend = 0;
}

/* Every received piece written: before the layer saves how far it
 * examined the store (so a crash loses none: their envelopes are
 * examined again), and before a file's pieces are read or deleted. */
void chp_msgi_files_sync(chp_msg *m)
{
    chp_msgi_files_flush(m);
    int rc = chp_store_local_flush(m->store);
    if (rc != CHP_OK)
        pieces_maybe_lost(m, rc);
}

static int pend_add(chp_msg *m, const struct xfile *x, const chp_file_piece *pc)
{
    if (!m->pend && !(m->pend = calloc(PEND_MAX, sizeof *m->pend)))
        return CHP_E_NOMEM;
    struct fpend *p = &m->pend[m->npend];
    if (!(p->data = malloc(pc->len)))
        return CHP_E_NOMEM;
    memcpy(p->data, pc->data, pc->len);
    p->len = pc->len;
    piece_key(x, pc->index, p->key);
    if (++m->npend == PEND_MAX)
        chp_msgi_files_flush(m);
    return CHP_OK;
}

/* ---- out ---- */

/* The payload of x's manifest into out (CHP_FILE_MANIFEST_MAX bytes). */
static int manifest_payload(const struct xfile *x, uint8_t *out, size_t *len)
{
    chp_file_manifest mf = {.size = x->size,
                            .piece_size = CHP_FILE_PIECE,
                            .count = x->count,
                            .name = (const uint8_t *)x->name,
                            .name_len = strlen(x->name),
                            .mime = x->mime,
                            .mime_len = strlen(x->mime),
                            .caption = (const uint8_t *)x->caption,
                            .caption_len = x->caption ? strlen(x->caption) : 0};
    memcpy(mf.id, x->id, 16);
    memcpy(mf.hash, x->hash, 32);
    return chp_file_manifest_encode(&mf, out, CHP_FILE_MANIFEST_MAX, len);
}

/* Whether x's conversation can take envelopes now. */
static int can_send(chp_msg *m, const struct xfile *x)
{
    if (x->kind == CONV_ROOM)
        return chp_msgi_room_by_name(m, x->room) != NULL;
    const struct contact *c = chp_msgi_contact_by_pk(m, x->peer);
    return c && c->state == CS_ESTABLISHED;
}

/* Item k of x's envelopes as a job: 0 the manifest, i + 1 piece i. */
static int feed_one(chp_msg *m, struct xfile *x, uint8_t *buf)
{
    size_t len = 0;
    uint8_t type = CHP_CT_FILE, hash[32];
    int rc, has_hash = 0;
    if (x->next == 0) {
        rc = manifest_payload(x, buf, &len);
    } else {
        uint8_t k[PIECE_KEY], *v = NULL;
        size_t vl = 0;
        piece_key(x, x->next - 1, k);
        rc = chp_store_local_get(m->store, CHP_TABLE_PIECES, k, sizeof k, &v, &vl);
        /* data | digest (copy_in); a row of data only is hashed at sealing */
        size_t plen = chp_file_piece_len(x->size, x->next - 1);
        if (rc == CHP_OK && vl != plen && vl != plen + 32)
            rc = CHP_E_CORRUPT;
        if ((has_hash = rc == CHP_OK && vl == plen + 32))
            memcpy(hash, v + plen, 32);
        chp_file_piece pc = {.index = x->next - 1, .data = v, .len = plen};
        memcpy(pc.id, x->id, 16);
        if (rc == CHP_OK)
            rc = chp_file_piece_encode(&pc, buf, CHP_PAYLOAD_MAX, &len);
        chp_store_local_free(v, vl);
        type = CHP_CT_PIECE;
    }
    if (rc == CHP_OK)
        rc = chp_msgi_job_add(m, x->kind == CONV_ROOM ? JOB_ROOM : JOB_DM, x->peer, x->room, type,
                              buf, len, x->id, x->next == x->count);
    if (rc != CHP_OK)
        return rc;
    if (has_hash) { /* chp_msgi_job_add appended it */
        m->jobs_tail->has_hash = 1;
        memcpy(m->jobs_tail->hash, hash, 32);
    }
    x->next++;
    x->inflight++;
    return CHP_OK;
}

static void files_feed(chp_msg *m)
{
    uint8_t *buf = NULL;
    for (size_t i = 0; i < m->nfiles; i++) {
        struct xfile *x = &m->files[i];
        if (!x->out || x->next > x->count || x->inflight >= FEED_AHEAD || !can_send(m, x))
            continue;
        if (!buf && !(buf = malloc(CHP_PAYLOAD_MAX)))
            return;
        while (x->next <= x->count && x->inflight < FEED_AHEAD) {
            int rc = feed_one(m, x, buf);
            if (rc != CHP_OK) {
                chp_warn("a file's piece cannot be read: %s", chp_strerror(rc));
                x->next = x->count + 1; /* stop; its state stays "queued" */
                break;
            }
        }
    }
    free(buf);
}

static void files_published(chp_msg *m, const struct job *j)
{
    if (j->type != CHP_CT_FILE && j->type != CHP_CT_PIECE)
        return;
    struct xfile *x = xfile_find(m, 1, chp_identity_pk(m->me), j->msgid);
    if (!x)
        return;
    if (x->inflight)
        x->inflight--;
    x->sent++;
    if (x->sent % 8 == 0 || x->sent > x->count) { /* progress, for a bar */
        char id[33];
        chp_hex_encode(x->id, 16, id);
        chp_msgi_emit(m, "file", "%s\t%u\t%u", id, x->sent - 1, x->count);
    }
    if (x->sent % 16 == 0 || x->sent > x->count)
        (void)chp_msgi_file_save_rec(m, x);
}

static int files_requeue(chp_msg *m, const struct hmsg *h)
{
    struct xfile *x = xfile_find(m, 1, chp_identity_pk(m->me), h->msgid);
    if (!x)
        return 0;
    if (x->sent > x->count && !h->published) { /* sent in full, then reset: again */
        x->sent = x->next = 0;
        (void)chp_msgi_file_save_rec(m, x);
    }
    return 1;
}

void chp_msgi_files_init(chp_msg *m)
{
    m->fh.feed = files_feed;
    m->fh.published = files_published;
    m->fh.requeue = files_requeue;
}

/* A media type from the name's extension (only the common ones). */
static const char *guess_mime(const char *name)
{
    static const char *const map[][2] = {
        {".jpg", "image/jpeg"},      {".jpeg", "image/jpeg"}, {".png", "image/png"},
        {".gif", "image/gif"},       {".webp", "image/webp"}, {".pdf", "application/pdf"},
        {".txt", "text/plain"},      {".opus", "audio/opus"}, {".ogg", "audio/ogg"},
        {".m4a", "audio/mp4"},       {".mp3", "audio/mpeg"},  {".mp4", "video/mp4"},
        {".zip", "application/zip"}, {".webm", "video/webm"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof *map; i++)
        if (!strcasecmp(dot, map[i][0]))
            return map[i][1];
    return "application/octet-stream";
}

/* Reads fd into the piece table of x (count pieces), hashing it. */
static int copy_in(chp_msg *m, struct xfile *x, int fd, char *err, size_t errcap)
{
    /* An outgoing piece's row is its data and then its digest (the file
     * hash's and its envelope's signed statement's, file.h): hashed once
     * here, not again when it is sealed. */
    const size_t stride = CHP_FILE_PIECE + 32;
    uint8_t *buf = malloc((size_t)READ_BATCH * stride);
    uint8_t(*keys)[PIECE_KEY] = malloc(READ_BATCH * sizeof *keys);
    chp_store_lrec recs[READ_BATCH];
    chp_file_hash_ctx h;
    chp_file_hash_init(&h, x->id);
    int rc = buf && keys ? CHP_OK : CHP_E_NOMEM;
    for (uint32_t i = 0; rc == CHP_OK && i < x->count; i += READ_BATCH) {
        uint32_t n = x->count - i < READ_BATCH ? x->count - i : READ_BATCH;
        for (uint32_t j = 0; j < n && rc == CHP_OK; j++) {
            size_t want = chp_file_piece_len(x->size, i + j), got = 0;
            uint8_t *p = buf + (size_t)j * stride;
            while (got < want) {
                ssize_t r = read(fd, p + got, want - got);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0) {
                    snprintf(err, errcap, "cannot read the file: %s",
                             r < 0 ? strerror(errno) : "it got shorter while being read");
                    rc = CHP_E_IO;
                    break;
                }
                got += (size_t)r;
            }
            chp_file_piece_digest(x->id, i + j, p, got, p + want);
            chp_file_hash_digest(&h, p + want);
            piece_key(x, i + j, keys[j]);
            recs[j] = (chp_store_lrec){keys[j], p, PIECE_KEY, want + 32};
        }
        if (rc == CHP_OK && (rc = chp_store_local_put_many(m->store, CHP_TABLE_PIECES, recs, n)))
            snprintf(err, errcap, "cannot store the file: %s", chp_strerror(rc));
    }
    chp_file_hash_final(&h, x->hash);
    if (buf)
        chp_memzero(buf, (size_t)READ_BATCH * stride);
    free(buf);
    free(keys);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int new_out_hmsg(chp_msg *m, const struct xfile *x)
{
    char sz[32], text[512], vn[40];
    fmt_size(x->size, sz, sizeof sz);
    chp_msgi_voice_text(m, x, vn, sizeof vn);
    snprintf(text, sizeof text, "[file] %s (%s)%s%s%s", x->name, sz, vn, x->caption ? " " : "",
             x->caption ? x->caption : "");
    struct hmsg *h = chp_msgi_hmsg_add(m);
    if (!h || !(h->text = strdup(text))) {
        if (h)
            m->nh--;
        return CHP_E_NOMEM;
    }
    h->textlen = strlen(text);
    h->kind = x->kind;
    memcpy(h->peer, x->peer, 32);
    snprintf(h->room, sizeof h->room, "%s", x->room);
    h->dir_out = 1;
    h->state = MS_QUEUED;
    h->read = 1;
    h->time = x->time;
    memcpy(h->msgid, x->id, 16);
    memcpy(h->sender, x->sender, 32);
    snprintf(h->nick, sizeof h->nick, "%s", m->nick);
    int rc = chp_msgi_hmsg_save(m, h);
    if (rc == CHP_OK) {
        (void)chp_msgi_hindex_put(m, (size_t)(h - m->h));
        chp_msgi_emit_queued(m, h);
    }
    return rc;
}

int chp_msgi_file_send(chp_msg *m, const struct contact *c, const char *room, const char *path,
                       const char *caption, uint8_t id[16], char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errcap, "cannot open %.200s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CHP_E_IO;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max_file(m)) {
        snprintf(err, errcap,
                 S_ISREG(st.st_mode) ? "%.200s is larger than max-file (%llu bytes)"
                                     : "%.200s is not a regular file",
                 path, (unsigned long long)max_file(m));
        close(fd);
        return CHP_E_ARG;
    }
    struct xfile x = {.out = 1, .kind = room ? CONV_ROOM : CONV_DM, .size = (uint64_t)st.st_size};
    chp_rng_fill(chp_rng_system(), x.id, 16);
    memcpy(x.sender, chp_identity_pk(m->me), 32);
    if (c)
        memcpy(x.peer, c->pk, 32);
    snprintf(x.room, sizeof x.room, "%s", room ? room : "");
    x.count = chp_file_count(x.size);
    const char *bn = base_name(path);
    chp_file_name_clean((const uint8_t *)bn, strlen(bn), x.name);
    snprintf(x.mime, sizeof x.mime, "%s", guess_mime(x.name));
    x.time = chp_msgi_now(m);
    if (caption && caption[0] && !(x.caption = strdup(caption))) {
        close(fd);
        return CHP_E_NOMEM;
    }
    int rc = copy_in(m, &x, fd, err, errcap);
    close(fd);
    if (rc == CHP_OK && (rc = chp_msgi_file_save_rec(m, &x)) == CHP_OK &&
        (rc = new_out_hmsg(m, &x)) != CHP_OK)
        snprintf(err, errcap, "cannot queue the file: %s", chp_strerror(rc));
    struct xfile *slot = rc == CHP_OK ? xfile_add(m) : NULL;
    if (!slot) {
        if (rc == CHP_OK)
            snprintf(err, errcap, "out of memory");
        chp_msgi_pieces_drop(m, &x, x.count);
        xfile_clear(&x);
        return rc == CHP_OK ? CHP_E_NOMEM : rc;
    }
    *slot = x;
    memcpy(id, x.id, 16);
    return CHP_OK;
}

/* ---- in ---- */

/* mkdir -p path, each new directory 0700; 0 or -1 (errno set). */
static int mkdir_p(const char *path)
{
    char p[4200];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* The directory files of x's conversation go to (made if missing, with
 * its parents, as mkdir -p). */
static int conv_dir(chp_msg *m, const struct xfile *x, char *out, size_t cap)
{
    char label[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], safe[CHP_FILE_SAFE_NAME], base[4200];
    chp_msgi_file_labels(m, x, label, sizeof label, NULL, 0);
    chp_file_name_clean((const uint8_t *)label, strlen(label), safe);
    if (m->host.save_dir && m->host.save_dir[0])
        snprintf(base, sizeof base, "%s", m->host.save_dir);
    else
        snprintf(base, sizeof base, "%s/files", m->home);
    if (mkdir_p(base) != 0) {
        if (!m->save_dir_warned)
            chp_err_log("cannot create the save directory %s: %s", base, strerror(errno));
        m->save_dir_warned = 1;
        return CHP_E_IO;
    }
    if ((size_t)snprintf(out, cap, "%s/%s", base, safe) >= cap)
        return CHP_E_OVERFLOW;
    return mkdir(out, 0700) != 0 && errno != EEXIST ? CHP_E_IO : CHP_OK;
}

/* Streams x's pieces in order to fd (-1: hash only); CHP_OK only when
 * every piece is there with its length and the whole hash matches. */
static int stream_out(chp_msg *m, const struct xfile *x, int fd)
{
    chp_file_hash_ctx h;
    chp_file_hash_init(&h, x->id);
    int rc = CHP_OK;
    for (uint32_t i = 0; rc == CHP_OK && i < x->count; i++) {
        uint8_t k[PIECE_KEY], *v = NULL;
        size_t vl = 0;
        piece_key(x, i, k);
        rc = chp_store_local_get(m->store, CHP_TABLE_PIECES, k, sizeof k, &v, &vl);
        if (rc == CHP_OK && vl != chp_file_piece_len(x->size, i))
            rc = CHP_E_MALFORMED;
        if (rc == CHP_OK)
            chp_file_hash_update(&h, v, vl);
        for (size_t off = 0; rc == CHP_OK && fd >= 0 && off < vl;) {
            ssize_t w = write(fd, v + off, vl - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                rc = CHP_E_IO;
            else
                off += (size_t)w;
        }
        chp_store_local_free(v, vl);
    }
    uint8_t got[32];
    chp_file_hash_final(&h, got);
    if (rc == CHP_OK && !chp_memeq(got, x->hash, 32))
        rc = CHP_E_CORRUPT;
    if (rc == CHP_OK && fd >= 0 && fsync(fd) != 0)
        rc = CHP_E_IO;
    return rc;
}

/* dir/name, or "stem (N).ext" when taken: linked from tmp, never over
 * an existing file. The final path into out. */
static int link_free_name(const char *tmp, const char *dir, const char *name, char *out, size_t cap)
{
    const char *dot = strrchr(name, '.');
    size_t stem = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    for (unsigned n = 0; n < 1000; n++) {
        if (n == 0)
            snprintf(out, cap, "%s/%s", dir, name);
        else
            snprintf(out, cap, "%s/%.*s (%u)%s", dir, (int)stem, name, n, name + stem);
        if (link(tmp, out) == 0)
            return CHP_OK;
        if (errno != EEXIST)
            return CHP_E_IO;
    }
    return CHP_E_IO;
}

/* Writes x to a temporary file in dir, checks it, then gives it its name
 * (exact: path itself; else a free name in dir). *final: malloc'ed. */
int chp_msgi_file_write_out(chp_msg *m, const struct xfile *x, const char *dir, const char *exact,
                            char **final)
{
    char tmp[4300], out[4300];
    char idh[33];
    chp_hex_encode(x->id, 16, idh);
    snprintf(tmp, sizeof tmp, "%s/.chapar-%s.part", dir, idh);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return CHP_E_IO;
    int rc = stream_out(m, x, fd);
    if (close(fd) != 0 && rc == CHP_OK)
        rc = CHP_E_IO;
    if (rc == CHP_OK && exact) {
        snprintf(out, sizeof out, "%s", exact);
        if (rename(tmp, exact) != 0)
            rc = CHP_E_IO;
    } else if (rc == CHP_OK) {
        rc = link_free_name(tmp, dir, x->name, out, sizeof out);
    }
    unlink(tmp);
    if (rc == CHP_OK && !(* final = strdup(out)))
        rc = CHP_E_NOMEM;
    return rc;
}

static void in_hmsg(chp_msg *m, const struct xfile *x)
{
    char sz[32], text[4800], idh[33], vn[40];
    fmt_size(x->size, sz, sizeof sz);
    chp_hex_encode(x->id, 16, idh);
    chp_msgi_voice_text(m, x, vn, sizeof vn);
    if (x->state == FS_SAVED)
        snprintf(text, sizeof text, "[file] %s (%s)%s saved to %s", x->name, sz, vn, x->path);
    else if (x->unsaved)
        snprintf(text, sizeof text,
                 "[file] %s (%s)%s not saved, the save directory cannot be written (see the "
                 "log) (kept: chapar file save %s PATH)",
                 x->name, sz, vn, idh);
    else
        snprintf(text, sizeof text, "[file] %s (%s)%s (kept: chapar file save %s PATH)", x->name,
                 sz, vn, idh);
    if (x->caption) {
        size_t l = strlen(text);
        snprintf(text + l, sizeof text - l, " — %s", x->caption);
    }
    struct hmsg *h = chp_msgi_hmsg_add(m);
    if (!h || !(h->text = strdup(text))) {
        if (h)
            m->nh--;
        return;
    }
    h->textlen = strlen(text);
    h->kind = x->kind;
    memcpy(h->peer, x->peer, 32);
    snprintf(h->room, sizeof h->room, "%s", x->room);
    if (x->kind == CONV_ROOM) {
        const struct room *r = chp_msgi_room_by_name(m, x->room);
        if (r)
            memcpy(h->rfpr, r->fpr, sizeof h->rfpr);
    }
    memcpy(h->msgid, x->id, 16);
    memcpy(h->sender, x->sender, 32);
    if (x->kind == CONV_ROOM) /* shown as their posts are */
        snprintf(h->nick, sizeof h->nick, "%s", chp_msgi_seen_nick(m, x->room, x->sender));
    h->time = x->time;
    (void)chp_msgi_hmsg_save(m, h);
    (void)chp_msgi_hindex_put(m, (size_t)(h - m->h));
    chp_msgi_emit_message(m, h);
}

static void receipt(chp_msg *m, const struct xfile *x)
{
    uint8_t p[1 + 16];
    p[0] = 1;
    memcpy(p + 1, x->id, 16);
    if (x->kind == CONV_DM)
        (void)chp_msgi_job_add(m, JOB_DM, x->sender, NULL, CHP_CT_RECEIPT, p, sizeof p, NULL, 1);
}

/* Every piece of x is here: check it; from a contact, save it. */
static void complete(chp_msg *m, struct xfile *x)
{
    chp_msgi_files_sync(m);
    char dir[4200] = "";
    int known = chp_msgi_fdig_known(x);
    /* from the digests, before anything is written; not known: checked
     * as it is read back (written out, or below) */
    int rc = known ? chp_msgi_fdig_check(x) : CHP_OK;
    int keep = !chp_msgi_named_contact(m, x->sender); /* a stranger's: for `file save` */
    if (rc == CHP_OK && !keep) {
        rc = conv_dir(m, x, dir, sizeof dir);
        if (rc == CHP_OK)
            rc = chp_msgi_file_write_out(m, x, dir, NULL, &x->path);
        x->state = rc == CHP_OK ? FS_SAVED : FS_COMPLETE;
        if (rc == CHP_E_IO || rc == CHP_E_OVERFLOW) { /* keep it for `file save` */
            chp_warn("a file from a contact could not be saved to %s: kept for `file save`",
                     dir[0] ? dir : "the save directory");
            x->unsaved = keep = 1;
            rc = CHP_OK;
        }
    }
    if (rc == CHP_OK && keep) {
        rc = known ? CHP_OK : stream_out(m, x, -1);
        x->state = FS_COMPLETE;
    }
    chp_msgi_fdig_free(x);
    if (rc != CHP_OK) {
        chp_warn("a received file failed its check and was dropped: %s",
                 rc == CHP_E_CORRUPT ? "its pieces do not make the hash its manifest names"
                                     : chp_strerror(rc));
        chp_msgi_pieces_drop(m, x, x->nbits);
        x->state = FS_REFUSED;
        (void)chp_msgi_file_save_rec(m, x);
        return;
    }
    if (x->state == FS_SAVED)
        chp_msgi_pieces_drop(m, x, x->count);
    (void)chp_msgi_file_save_rec(m, x);
    in_hmsg(m, x);
    receipt(m, x);
}

static int strangers_pending(const chp_msg *m)
{
    int n = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        n += !m->files[i].out && m->files[i].state == FS_INCOMING;
    return n;
}

/* The record of an incoming file (made on its first manifest or piece). */
static struct xfile *in_file(chp_msg *m, const struct tagent *te, const uint8_t sender[32],
                             const uint8_t id[16], uint64_t created)
{
    struct xfile *x = xfile_find(m, 0, sender, id);
    if (x)
        return x;
    if (!chp_msgi_named_contact(m, sender) && strangers_pending(m) >= (int)STRANGER_FILES)
        return NULL;
    if (!(x = xfile_add(m)))
        return NULL;
    memcpy(x->id, id, 16);
    memcpy(x->sender, sender, 32);
    x->kind = te->kind == TK_ROOM ? CONV_ROOM : CONV_DM;
    if (x->kind == CONV_ROOM)
        snprintf(x->room, sizeof x->room, "%s", m->r[te->idx].name);
    else
        memcpy(x->peer, sender, 32);
    x->state = FS_INCOMING;
    x->time = created;
    return x;
}

static void on_manifest(chp_msg *m, struct xfile *x, const chp_file_manifest *mf)
{
    if (x->have_manifest || x->state != FS_INCOMING)
        return;
    if (mf->size > max_file(m)) {
        chp_msgi_files_sync(m);
        chp_info("a file of %llu bytes was refused (max-file %llu)", (unsigned long long)mf->size,
                 (unsigned long long)max_file(m));
        chp_msgi_pieces_drop(m, x, x->nbits);
        x->state = FS_REFUSED;
        chp_msgi_fdig_drop(x);
        (void)chp_msgi_file_save_rec(m, x);
        return;
    }
    chp_msgi_files_sync(m);
    x->have_manifest = 1;
    x->size = mf->size;
    x->count = mf->count;
    memcpy(x->hash, mf->hash, 32);
    chp_file_name_clean(mf->name, mf->name_len, x->name);
    chp_msgi_copy_str(x->mime, sizeof x->mime, mf->mime, mf->mime_len);
    free(x->caption);
    x->caption = mf->caption_len ? strndup((const char *)mf->caption, mf->caption_len) : NULL;
    if (x->nbits > x->count) { /* pieces past the end came first: not this file's */
        for (uint32_t i = x->count; i < x->nbits; i++)
            if (bit_get(x, i))
                x->have--;
        chp_msgi_pieces_drop(m, x, x->nbits);
        x->have = 0;
        x->got = 0;
        x->dg_short = 0;
        memset(x->bits, 0, (x->nbits + 7) / 8);
    }
    if (bits_ensure(x, x->count) != CHP_OK)
        return;
    (void)chp_msgi_file_save_rec(m, x);
    chp_msgi_voice_in_progress(m, x, 1);
    if (x->have == x->count)
        complete(m, x);
}

static void on_piece(chp_msg *m, struct xfile *x, const chp_file_piece *pc,
                     const uint8_t digest[32])
{
    if (x->state != FS_INCOMING || bit_get(x, pc->index))
        return;
    uint32_t lim = x->have_manifest ? x->count : chp_file_count(max_file(m));
    if (pc->index >= lim || (x->have_manifest && pc->len != chp_file_piece_len(x->size, pc->index)))
        return;
    if (!x->have_manifest && !x->nbits)
        (void)chp_msgi_file_save_rec(m, x);
    if (bits_ensure(x, pc->index + 1) != CHP_OK || pend_add(m, x, pc) != CHP_OK)
        return;
    x->bits[pc->index / 8] |= (uint8_t)(1u << (pc->index % 8));
    x->have++;
    chp_msgi_fdig_put(x, pc->index, digest, pc->len);
    chp_msgi_voice_in_progress(m, x, 0);
    if (x->have_manifest && x->have == x->count)
        complete(m, x);
}

void chp_msgi_file_in(chp_msg *m, const struct tagent *te, const chp_inner *in, uint64_t created,
                      const uint8_t digest[32])
{
    if (te->kind == TK_INTRO)
        return;
    const struct contact *bc = chp_msgi_contact_by_pk(m, in->sender);
    if (bc && bc->state == CS_BLOCKED)
        return;
    if (in->type == CHP_CT_FILE) {
        chp_file_manifest mf;
        if (chp_file_manifest_decode(in->payload, in->len, &mf) != CHP_OK) {
            chp_debug("a file manifest was malformed");
            return;
        }
        if (te->kind == TK_CONTACT) { /* its pieces follow it, sync brings them in any order */
            uint32_t n = mf.count < WINDOW_FILE_MAX ? mf.count : WINDOW_FILE_MAX;
            chp_msgi_tags_extend_by(m, te->idx, te->epoch, te->seq, n + 1u + TAG_WINDOW);
        }
        struct xfile *x = in_file(m, te, in->sender, mf.id, created);
        if (x) {
            x->time = created;
            on_manifest(m, x, &mf);
        }
        return;
    }
    chp_file_piece pc;
    if (chp_file_piece_decode(in->payload, in->len, &pc) != CHP_OK)
        return;
    struct xfile *x = in_file(m, te, in->sender, pc.id, created);
    if (x)
        on_piece(m, x, &pc, digest);
}
