/* msg_voice.c - voice notes and incoming progress for msg_file.c: the
 * duration of an audio file worked out from the bytes this node holds
 * (proto/audio.h), and the `file` event as pieces of an incoming file
 * arrive. Between msg_rec.c and msg_file.c in the layer's order.
 *
 * The duration is worked out once where a message's text is written (the
 * file complete here, or queued to send), and kept in that text; `files`
 * asks again on demand, since a probe reads at most the first and last
 * 64 KiB (or a few MP4 box headers) and the file record stays as it is. */
#include "node/msg/msg_voice.h"

#include "proto/audio.h"
#include "proto/cursor.h"
#include "proto/file.h"
#include "proto/hex.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The key of piece i of x in CHP_TABLE_PIECES: out | sender | id | index,
 * the layout msg_file.c writes. */
#define VPIECE_KEY (1u + 32u + 16u + 4u)

struct store_rd {
    chp_msg *m;
    const struct xfile *x;
    uint8_t *v; /* the last piece read, kept for the next read */
    size_t vl;
    uint32_t vi;
};

static long store_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    struct store_rd *r = ctx;
    size_t done = 0;
    while (done < len && off + done < r->x->size) {
        uint64_t at = off + done;
        uint32_t i = (uint32_t)(at / CHP_FILE_PIECE);
        if (!r->v || r->vi != i) {
            uint8_t k[VPIECE_KEY];
            chp_store_local_free(r->v, r->vl);
            r->v = NULL;
            k[0] = (uint8_t)r->x->out;
            memcpy(k + 1, r->x->sender, 32);
            memcpy(k + 33, r->x->id, 16);
            chp_put_be32(k + 49, i);
            if (chp_store_local_get(r->m->store, CHP_TABLE_PIECES, k, sizeof k, &r->v, &r->vl))
                return -1;
            r->vi = i;
        }
        size_t in = (size_t)(at % CHP_FILE_PIECE);
        if (in >= r->vl)
            return -1;
        size_t n = r->vl - in < len - done ? r->vl - in : len - done;
        memcpy(buf + done, r->v + in, n);
        done += n;
    }
    return (long)done;
}

static long fd_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(*(int *)ctx, buf + done, len - done, (off_t)(off + done));
        if (n <= 0)
            return n < 0 ? -1 : (long)done;
        done += (size_t)n;
    }
    return (long)done;
}

int chp_msgi_voice_ms(chp_msg *m, const struct xfile *x, uint32_t *ms)
{
    *ms = 0;
    if (!chp_audio_is_voice(x->name, x->mime) || (!x->out && !x->have_manifest) ||
        (!x->out && x->state == FS_INCOMING) || x->state == FS_REFUSED)
        return 0;
    chp_audio_kind k;
    if (!x->out && x->state == FS_SAVED) {
        int fd = x->path ? open(x->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) : -1;
        if (fd < 0)
            return 0;
        struct stat st;
        chp_audio_src src = {fd_read, &fd, 0};
        k = CHP_AUDIO_UNKNOWN;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            src.size = (uint64_t)st.st_size;
            k = chp_audio_duration(&src, ms);
        }
        close(fd);
    } else {
        struct store_rd r = {.m = m, .x = x};
        chp_audio_src src = {store_read, &r, x->size};
        k = chp_audio_duration(&src, ms);
        chp_store_local_free(r.v, r.vl);
    }
    return k != CHP_AUDIO_UNKNOWN;
}

void chp_msgi_voice_text(chp_msg *m, const struct xfile *x, char *out, size_t cap)
{
    uint32_t ms;
    out[0] = '\0';
    if (chp_msgi_voice_ms(m, x, &ms)) {
        char t[16];
        chp_audio_fmt(ms, t, sizeof t);
        snprintf(out, cap, " voice note %s", t);
    }
}

void chp_msgi_voice_in_progress(chp_msg *m, const struct xfile *x, int force)
{
    if (x->out || !x->have_manifest || !m->host.event ||
        (!force && x->have % 8 && x->have != x->count))
        return;
    char idh[33], conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], who[CHP_NICK_MAX + 32];
    chp_msgi_file_labels(m, x, conv, sizeof conv, who, sizeof who);
    chp_hex_encode(x->id, 16, idh);
    struct msg_buf ev = {0};
    chp_msgi_bprintf(&ev, "%s\t%u\t%u\tin\t", idh, x->have, x->count);
    chp_msgi_bescaped(&ev, conv, strlen(conv));
    chp_msgi_bput(&ev, "\t", 1);
    chp_msgi_bescaped(&ev, who, strlen(who));
    chp_msgi_bput(&ev, "\t", 1);
    chp_msgi_bescaped(&ev, x->name, strlen(x->name));
    chp_msgi_bprintf(&ev, "\t%llu", (unsigned long long)x->size);
    if (!ev.oom)
        m->host.event(m->host.ctx, "file", (const char *)ev.b.p, ev.b.len);
    chp_buf_free(&ev.b);
}
