/* msg_filectl.c - the file commands (CONTROL.md): `files` and `file-save`,
 * over the records msg_file.c keeps. Above msg_file.c in the layer's
 * order. */
#include "node/msg/msg_int.h"
#include "node/msg/msg_voice.h"

#include "proto/crypto.h"
#include "proto/file.h"
#include "proto/hex.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct xfile *in_by_hex(chp_msg *m, const char *idhex)
{
    uint8_t id[16];
    if (strlen(idhex) != 32 || chp_hex_decode(idhex, 32, id, sizeof id) != CHP_OK)
        return NULL;
    for (size_t i = 0; i < m->nfiles; i++)
        if (!m->files[i].out && !memcmp(m->files[i].id, id, 16) && m->files[i].have_manifest &&
            m->files[i].state != FS_REFUSED)
            return &m->files[i];
    return NULL;
}

/* A received file in the order `files` lists them. */
struct by_time {
    uint64_t time;
    size_t i;
};

static int by_time_order(const void *p, const void *q)
{
    const struct by_time *a = p, *b = q;
    if (a->time != b->time)
        return a->time < b->time ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

static void files_line(chp_msg *m, const struct xfile *x, struct msg_buf *out)
{
    char idh[33], conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], who[CHP_NICK_MAX + 32];
    chp_msgi_file_labels(m, x, conv, sizeof conv, who, sizeof who);
    chp_hex_encode(x->id, 16, idh);
    chp_msgi_bprintf(out, "%s\t", idh);
    chp_msgi_bescaped(out, conv, strlen(conv));
    chp_msgi_bput(out, "\t", 1);
    chp_msgi_bescaped(out, who, strlen(who));
    chp_msgi_bput(out, "\t", 1);
    chp_msgi_bescaped(out, x->name, strlen(x->name));
    chp_msgi_bprintf(out, "\t%llu\t", (unsigned long long)x->size);
    if (x->state == FS_INCOMING)
        chp_msgi_bprintf(out, "incoming %u/%u", x->have, x->count);
    else if (x->state == FS_COMPLETE)
        chp_msgi_bput(out, "complete", 8);
    else {
        chp_msgi_bput(out, "saved ", 6);
        chp_msgi_bescaped(out, x->path, strlen(x->path));
    }
    uint32_t ms; /* not a TSV column of `chapar files`: its human form's voice note */
    chp_msgi_bprintf(out, "\t%llu\t", (unsigned long long)x->time);
    if (chp_msgi_voice_ms(m, x, &ms))
        chp_msgi_bprintf(out, "%u", ms);
    chp_msgi_bput(out, "\n", 1);
}

/* By TIME, the newest last (same TIME: in the table's order), as history. */
void chp_msgi_files_list(chp_msg *m, struct msg_buf *out)
{
    if (!m->nfiles)
        return;
    struct by_time *v = malloc(m->nfiles * sizeof *v);
    if (!v) {
        out->oom = 1;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct xfile *x = &m->files[i];
        if (!x->out && x->have_manifest && x->state != FS_REFUSED)
            v[n++] = (struct by_time){x->time, i};
    }
    qsort(v, n, sizeof *v, by_time_order);
    for (size_t k = 0; k < n; k++)
        files_line(m, &m->files[v[k].i], out);
    free(v);
}

/* A file already saved, written again to path: copied through a
 * temporary name beside it, its hash checked again. */
static int copy_saved(const struct xfile *x, const char *path, char *err, size_t errcap)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.chapar-part", path);
    int in = open(x->path, O_RDONLY | O_CLOEXEC), rc = CHP_OK, in_err = in < 0 ? errno : 0;
    int out = in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    chp_file_hash_ctx h;
    chp_file_hash_init(&h, x->id);
    static uint8_t buf[1 << 16];
    ssize_t r = 0;
    while (out >= 0 && rc == CHP_OK && (r = read(in, buf, sizeof buf)) > 0) {
        chp_file_hash_update(&h, buf, (size_t)r);
        if (write(out, buf, (size_t)r) != r)
            rc = CHP_E_IO;
    }
    uint8_t got[32];
    chp_file_hash_final(&h, got);
    if (out < 0 || r < 0 || fsync(out) != 0)
        rc = CHP_E_IO;
    else if (rc == CHP_OK && !chp_memeq(got, x->hash, 32))
        rc = CHP_E_CORRUPT;
    if (out >= 0 && close(out) != 0 && rc == CHP_OK)
        rc = CHP_E_IO;
    if (in >= 0)
        close(in);
    if (rc == CHP_OK && rename(tmp, path) != 0)
        rc = CHP_E_IO;
    unlink(tmp);
    if (rc != CHP_OK && in < 0) /* the node keeps no copy once it saved one */
        snprintf(err, errcap,
                 "the file was saved to %.200s and its pieces were then deleted; %.200s is gone "
                 "(%s)",
                 x->path, x->path, strerror(in_err));
    else if (rc == CHP_E_CORRUPT)
        snprintf(err, errcap,
                 "the file was saved to %.200s and its pieces were then deleted; %.200s changed "
                 "since",
                 x->path, x->path);
    else if (rc != CHP_OK)
        snprintf(err, errcap, "cannot copy %.200s to %.200s: %s", x->path, path, strerror(errno));
    return rc;
}

int chp_msgi_file_save(chp_msg *m, const char *idhex, const char *path, char *err, size_t errcap)
{
    struct xfile *x = (struct xfile *)in_by_hex(m, idhex);
    if (!x) {
        snprintf(err, errcap, "no file %.40s", idhex);
        return CHP_E_NOT_FOUND;
    }
    if (x->state == FS_INCOMING) {
        snprintf(err, errcap, "file %s is not complete yet (%u of %u pieces)", idhex, x->have,
                 x->count);
        return CHP_E_ARG;
    }
    if (x->state == FS_SAVED)
        return copy_saved(x, path, err, errcap);
    char dir[4300];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if (!slash || !dir[0])
        snprintf(dir, sizeof dir, "%s", slash ? "/" : ".");
    char *final = NULL;
    int rc = chp_msgi_file_write_out(m, x, dir, path, &final);
    if (rc != CHP_OK) {
        snprintf(err, errcap, "cannot save to %.200s: %s", path,
                 rc == CHP_E_CORRUPT ? "the file failed its check" : strerror(errno));
        return rc;
    }
    chp_msgi_pieces_drop(m, x, x->count);
    free(x->path);
    x->path = final;
    x->state = FS_SAVED;
    (void)chp_msgi_file_save_rec(m, x);
    return CHP_OK;
}
