/* bundle_io.c - bundle and want files on disk, open or sealed: a reader
 * that yields plaintext in order and a writer that seals as it goes
 * (PROTOCOL.md §19.2). */
#include "node/daemon/bundles.h"

#include "node/common/i18n.h"
#include "proto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reading ---- */

static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int sealed_chunk(chp_bfile_in *f, char *err)
{
    uint8_t *ct = malloc(CHP_SEAL_CT);
    int rc = CHP_E_NOMEM;
    if (!ct || chp_buf_reserve(&f->plain, CHP_SEAL_CHUNK) != CHP_OK)
        goto out;
    rc = CHP_E_IO;
    if (read_full(f->fd, ct, CHP_SEAL_CT) != 0) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot read: %s"), errno ? strerror(errno) : "cut short");
        goto out;
    }
    f->off += CHP_SEAL_CT;
    int last = !f->cut && f->chunk + 1 == f->chunks;
    rc = chp_open_chunk(f->key, f->chunk, last, ct, f->plain.p + f->plain.len);
    if (rc != CHP_OK) {
        snprintf(err, CHP_BFILE_ERR, N_("sealed chunk %llu of %llu is damaged"),
                 (unsigned long long)f->chunk + 1, (unsigned long long)f->chunks);
        goto out;
    }
    f->chunk++;
    f->plain.len += CHP_SEAL_CHUNK;
out:
    free(ct);
    return rc;
}

static int open_sealed(chp_bfile_in *f, const char *pass, size_t passlen, char *err)
{
    uint8_t salt[CHP_SEAL_SALT];
    f->sealed = 1;
    f->chunks = chp_seal_file_chunks(f->size);
    if (!f->chunks) { /* no sealed file has this size: read what is whole */
        f->cut = 1;
        f->chunks = f->size < CHP_SEAL_SALT ? 0 : (f->size - CHP_SEAL_SALT) / CHP_SEAL_CT;
    }
    if (!f->chunks || read_full(f->fd, salt, sizeof salt) != 0) {
        snprintf(err, CHP_BFILE_ERR, N_("not a bundle, or cut short"));
        return CHP_E_MALFORMED;
    }
    f->off = sizeof salt;
    if (!(f->key = chp_secure_alloc(32)))
        return CHP_E_NOMEM;
    if (chp_seal_key(pass, passlen, salt, f->key) != CHP_OK) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot derive the key (out of memory?)"));
        return CHP_E_KDF;
    }
    char e2[CHP_BFILE_ERR];
    int rc = sealed_chunk(f, e2);
    if (rc == CHP_E_DECRYPT) {
        snprintf(err, CHP_BFILE_ERR, N_("wrong passphrase, or not a bundle"));
        return CHP_E_PASSPHRASE;
    }
    if (rc != CHP_OK)
        snprintf(err, CHP_BFILE_ERR, "%s", e2);
    return rc;
}

int chp_bfile_open(chp_bfile_in *f, const char *path, const char *pass, size_t passlen, char *err)
{
    memset(f, 0, sizeof *f);
    struct stat st;
    uint8_t head[CHP_BUNDLE_HDR_BYTES];
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0 || fstat(f->fd, &st) != 0) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot read %.200s: %s"), path, strerror(errno));
        return CHP_E_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot read %.200s: not a regular file"), path);
        return CHP_E_IO;
    }
    f->size = (uint64_t)st.st_size;
    size_t hl = f->size < sizeof head ? (size_t)f->size : sizeof head;
    if (read_full(f->fd, head, hl) != 0) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot read %.200s: %s"), path, strerror(errno));
        return CHP_E_IO;
    }
    if (chp_bundle_is_open(head, hl)) {
        f->off = hl;
        return chp_buf_put(&f->plain, head, hl);
    }
    if (!pass) {
        snprintf(err, CHP_BFILE_ERR, N_("not a bundle (a sealed one needs --passphrase-file)"));
        return CHP_E_MALFORMED;
    }
    if (lseek(f->fd, 0, SEEK_SET) != 0) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot read %.200s: %s"), path, strerror(errno));
        return CHP_E_IO;
    }
    return open_sealed(f, pass, passlen, err);
}

int chp_bfile_more(chp_bfile_in *f, size_t want, char *err)
{
    if (f->pos > (1u << 20) || (f->pos && f->pos == f->plain.len)) {
        memmove(f->plain.p, f->plain.p + f->pos, f->plain.len - f->pos);
        f->plain.len -= f->pos;
        f->pos = 0;
    }
    if (f->sealed) {
        if (f->chunk >= f->chunks)
            return 0;
        int rc = sealed_chunk(f, err);
        return rc == CHP_OK ? 1 : rc;
    }
    if (f->off >= f->size)
        return 0;
    if (chp_buf_reserve(&f->plain, want) != CHP_OK)
        return CHP_E_NOMEM;
    ssize_t k;
    do
        k = read(f->fd, f->plain.p + f->plain.len, want);
    while (k < 0 && errno == EINTR);
    if (k < 0) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot read: %s"), strerror(errno));
        return CHP_E_IO;
    }
    f->plain.len += (size_t)k;
    f->off += (uint64_t)k;
    return k > 0;
}

void chp_bfile_take(chp_bfile_in *f, size_t n)
{
    f->pos += n;
}

void chp_bfile_close(chp_bfile_in *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->plain.p)
        chp_memzero(f->plain.p, f->plain.cap);
    chp_buf_free(&f->plain);
    if (f->key)
        chp_secure_free(f->key);
    f->key = NULL;
}

/* ---- writing ---- */

static int write_full(chp_bfile_out *f, const uint8_t *p, size_t n, char *err)
{
    while (n) {
        ssize_t k = write(f->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(err, CHP_BFILE_ERR, N_("cannot write %.200s: %s"), f->path, strerror(errno));
            return CHP_E_IO;
        }
        p += k;
        n -= (size_t)k;
        f->bytes += (uint64_t)k;
    }
    return CHP_OK;
}

int chp_bfile_create(chp_bfile_out *f, const char *path, const char *pass, size_t passlen,
                     char *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (strlen(path) >= sizeof f->path) {
        snprintf(err, CHP_BFILE_ERR, N_("path too long"));
        return CHP_E_IO;
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp", path);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot write %.200s: %s"), f->tmp, strerror(errno));
        return CHP_E_IO;
    }
    if (!pass)
        return CHP_OK;
    uint8_t salt[CHP_SEAL_SALT];
    chp_rng_fill(chp_rng_system(), salt, sizeof salt);
    if (!(f->key = chp_secure_alloc(32)))
        return CHP_E_NOMEM;
    if (chp_seal_key(pass, passlen, salt, f->key) != CHP_OK) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot derive the key (out of memory?)"));
        return CHP_E_KDF;
    }
    return write_full(f, salt, sizeof salt, err);
}

/* Seals and writes one chunk of f->buf (zero-padded when short). */
static int seal_one(chp_bfile_out *f, int last, char *err)
{
    uint8_t *ct = malloc(CHP_SEAL_CT);
    if (!ct || chp_buf_reserve(&f->buf, CHP_SEAL_CHUNK) != CHP_OK) {
        free(ct);
        return CHP_E_NOMEM;
    }
    size_t n = f->buf.len < CHP_SEAL_CHUNK ? f->buf.len : CHP_SEAL_CHUNK;
    memset(f->buf.p + n, 0, CHP_SEAL_CHUNK - n);
    chp_seal_chunk(f->key, f->chunk++, last, f->buf.p, ct);
    memmove(f->buf.p, f->buf.p + n, f->buf.len - n);
    f->buf.len -= n;
    f->plain += n;
    int rc = write_full(f, ct, CHP_SEAL_CT, err);
    free(ct);
    return rc;
}

int chp_bfile_flush(chp_bfile_out *f, char *err)
{
    if (!f->key) {
        int rc = write_full(f, f->buf.p, f->buf.len, err);
        f->buf.len = 0;
        return rc;
    }
    /* keep the last whole chunk back: only the end knows it is the last */
    while (f->buf.len > CHP_SEAL_CHUNK) {
        int rc = seal_one(f, 0, err);
        if (rc != CHP_OK)
            return rc;
    }
    return CHP_OK;
}

int chp_bfile_finish(chp_bfile_out *f, char *err)
{
    int rc = chp_bfile_flush(f, err);
    if (rc == CHP_OK && f->key) {
        uint64_t total = chp_seal_chunks(f->plain + f->buf.len);
        while (rc == CHP_OK && f->chunk < total)
            rc = seal_one(f, f->chunk + 1 == total, err);
    }
    if (rc != CHP_OK)
        return rc;
    if (fsync(f->fd) != 0 || close(f->fd) != 0) {
        f->fd = -1;
        snprintf(err, CHP_BFILE_ERR, N_("cannot write %.200s: %s"), f->path, strerror(errno));
        return CHP_E_IO;
    }
    f->fd = -1;
    if (rename(f->tmp, f->path) != 0) {
        snprintf(err, CHP_BFILE_ERR, N_("cannot rename to %.200s: %s"), f->path, strerror(errno));
        return CHP_E_IO;
    }
    f->tmp[0] = '\0';
    chp_bfile_abort(f);
    return CHP_OK;
}

void chp_bfile_abort(chp_bfile_out *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->tmp[0])
        unlink(f->tmp);
    f->tmp[0] = '\0';
    chp_buf_free(&f->buf);
    if (f->key)
        chp_secure_free(f->key);
    f->key = NULL;
}
