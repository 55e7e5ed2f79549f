/* spool.c - spool directories for removable media, as NNCP's for mounted
 * sticks (CONTROL.md "Spool directories"): every SPOOL_MS the node looks
 * into each `--spool DIR`; a directory that appeared in it (a stick
 * mounted there) has its `*.bundle` files imported, one by one, then gets
 * an answer: a bundle for the `*.want` file on it (else a bounded blind
 * export) and this node's own want, for the next trip. One log line per
 * medium; a read-only or full medium is a log line too. */
#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/daemon/bundles.h"
#include "proto/crypto.h"
#include "proto/hex.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define SPOOL_MS       2000
#define SPOOL_DIRS_MAX 16
#define MEDIA_MAX      32
#define BLIND_SINCE    (7u * 86400u) /* a blind answer: the last week, */
#define BLIND_MAX      (64ull << 20) /* at most this, and half the free room */
#define NAME_MAX_      256

struct medium {
    int used, present, phase; /* phase: 0 importing, 1 answered */
    dev_t dev;
    ino_t ino;
    char path[4096];
    char done[64][NAME_MAX_]; /* bundles imported or written here */
    size_t ndone;
    char mine_want[NAME_MAX_]; /* the want this node left here */
    char log[900];
};

struct chp_spool {
    chp_node *n;
    chp_bundles *b;
    const char *dirs[SPOOL_DIRS_MAX];
    size_t ndirs;
    uint64_t next_ms;
    struct medium m[MEDIA_MAX];
    struct medium *importing; /* the medium whose bundle is being imported */
};

int chp_spool_new(chp_node *n, chp_bundles *b, const char *const *dirs, size_t ndirs,
                  chp_spool **out)
{
    chp_spool *s = calloc(1, sizeof *s);
    if (!s)
        return CHP_E_NOMEM;
    s->n = n;
    s->b = b;
    for (size_t i = 0; i < ndirs && i < SPOOL_DIRS_MAX; i++) {
        s->dirs[s->ndirs++] = dirs[i];
        chp_info("spool: watching %s", dirs[i]);
    }
    *out = s;
    return CHP_OK;
}

void chp_spool_destroy(chp_spool **sp)
{
    if (sp && *sp) {
        free(*sp);
        *sp = NULL;
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && !strcmp(s + a - b, suffix);
}

static int is_done(const struct medium *m, const char *name)
{
    for (size_t i = 0; i < m->ndone; i++)
        if (!strcmp(m->done[i], name))
            return 1;
    return 0;
}

static void mark_done(struct medium *m, const char *name)
{
    if (m->ndone < sizeof m->done / sizeof *m->done)
        snprintf(m->done[m->ndone++], NAME_MAX_, "%s", name);
}

/* Appends pre then a to the medium's log line. */
static void log_add(struct medium *m, const char *pre, const char *a)
{
    size_t l = strlen(m->log);
    snprintf(m->log + l, sizeof m->log - l, "%s%s", pre, a);
}

/* The first file of m ending in suffix that is not done (and not this
 * node's own want); 1 with its name. */
static int next_file(struct medium *m, const char *suffix, char name[NAME_MAX_])
{
    DIR *d = opendir(m->path);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, suffix) || is_done(m, e->d_name) ||
            !strcmp(e->d_name, m->mine_want) || strlen(e->d_name) >= NAME_MAX_)
            continue;
        snprintf(name, NAME_MAX_, "%s", e->d_name);
        found = 1;
    }
    if (d)
        closedir(d);
    return found;
}

static void random_name(char out[NAME_MAX_], const char *suffix)
{
    uint8_t r[8];
    char hex[17];
    chp_rng_fill(chp_rng_system(), r, sizeof r);
    chp_hex_encode(r, sizeof r, hex);
    snprintf(out, NAME_MAX_, "%s%s", hex, suffix);
}

/* The answer: a bundle for the medium's want (else a blind one bounded by
 * the room left), then this node's own want. */
static void answer(chp_spool *s, struct medium *m)
{
    char want[NAME_MAX_], name[NAME_MAX_], path[4400], wpath[4400], out[900];
    int has_want = next_file(m, ".want", want);
    struct statvfs vf;
    uint64_t room = statvfs(m->path, &vf) == 0 ? (uint64_t)vf.f_bavail * vf.f_frsize : 0;
    random_name(name, ".bundle");
    snprintf(path, sizeof path, "%s/%s", m->path, name);
    snprintf(wpath, sizeof wpath, "%s/%s", m->path, want);
    chp_bundle_opts o = {.path = path, .want = has_want ? wpath : NULL};
    if (!has_want) {
        o.since = BLIND_SINCE;
        o.max = room / 2 < BLIND_MAX ? room / 2 : BLIND_MAX;
    }
    int ok = o.want || o.max > 4096 ? chp_bundle_export(s->n, &o, out, sizeof out) : 0;
    if (!o.want && o.max <= 4096)
        snprintf(out, sizeof out, "no room on the medium for an answer");
    log_add(m, ok ? "; " : "; cannot write the answer: ", out);
    if (ok)
        mark_done(m, name);
    char mine[NAME_MAX_];
    random_name(mine, ".want");
    snprintf(path, sizeof path, "%s/%s", m->path, mine);
    o = (chp_bundle_opts){.path = path};
    if (ok && chp_bundle_want(s->n, &o, out, sizeof out)) {
        if (m->mine_want[0]) {
            snprintf(wpath, sizeof wpath, "%s/%s", m->path, m->mine_want);
            remove(wpath);
        }
        snprintf(m->mine_want, NAME_MAX_, "%s", mine);
        log_add(m, "; left our want ", mine);
    }
    m->phase = 1;
    chp_info("spool %s", m->log);
}

static void import_done(void *ctx, int ok, const char *line);

/* Imports the next bundle of m, or answers when none is left. */
static void advance(chp_spool *s, struct medium *m)
{
    char name[NAME_MAX_], path[4400], out[600];
    while (next_file(m, ".bundle", name)) {
        mark_done(m, name);
        snprintf(path, sizeof path, "%s/%s", m->path, name);
        chp_bundle_opts o = {.path = path};
        if (chp_bundle_import_then(s->b, &o, import_done, s, out, sizeof out)) {
            s->importing = m;
            log_add(m, "; ", name);
            log_add(m, ": ", "");
            return;
        }
        log_add(m, "; ", name);
        log_add(m, ": ", out);
    }
    answer(s, m);
}

static void import_done(void *ctx, int ok, const char *line)
{
    (void)ok;
    chp_spool *s = ctx;
    struct medium *m = s->importing;
    s->importing = NULL;
    if (m) {
        log_add(m, "", line);
        advance(s, m);
    }
}

static struct medium *medium_for(chp_spool *s, const char *path, const struct stat *st)
{
    struct medium *free_slot = NULL;
    for (size_t i = 0; i < MEDIA_MAX; i++) {
        struct medium *m = &s->m[i];
        if (m->used && m->dev == st->st_dev && m->ino == st->st_ino && !strcmp(m->path, path))
            return m;
        if (!m->used && !free_slot)
            free_slot = m;
    }
    if (!free_slot)
        return NULL;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->used = 1;
    free_slot->dev = st->st_dev;
    free_slot->ino = st->st_ino;
    snprintf(free_slot->path, sizeof free_slot->path, "%s", path);
    snprintf(free_slot->log, sizeof free_slot->log, "%.300s: new medium", path);
    return free_slot;
}

static void scan_dir(chp_spool *s, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] == '.' ||
            (size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path ||
            stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        struct medium *m = medium_for(s, path, &st);
        if (m)
            m->present = 1;
    }
    closedir(d);
}

void chp_spool_step(chp_spool *s, uint64_t t)
{
    if (t < s->next_ms || s->importing)
        return;
    s->next_ms = t + SPOOL_MS;
    for (size_t i = 0; i < MEDIA_MAX; i++)
        s->m[i].present = 0;
    for (size_t i = 0; i < s->ndirs; i++)
        scan_dir(s, s->dirs[i]);
    for (size_t i = 0; i < MEDIA_MAX; i++) {
        struct medium *m = &s->m[i];
        if (m->used && !m->present) {
            m->used = 0; /* unplugged: a return is a new visit */
            continue;
        }
        if (m->used && m->phase == 0 && !chp_bundles_busy(s->b)) {
            advance(s, m);
            if (s->importing)
                return;
        }
    }
}
