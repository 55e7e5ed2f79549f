/* bundle.c - `bundle-want`, `bundle-export`, `bundle-import` and
 * `bundle-status` (CONTROL.md): a want summary of the store, a bundle of
 * what a want lacks (or a bounded blind one), and the import that feeds a
 * bundle's envelopes through the mesh's ingest exactly as a neighbour's
 * pushes, in slices between the loop's rounds. */
#include "node/daemon/bundles.h"

#include "node/common/clock.h"
#include "node/common/i18n.h"
#include "node/common/log.h"
#include "proto/envelope.h"
#include "proto/want.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLICE_ENVS    4096         /* envelopes one loop round imports at most (a */
#define SLICE_MS      50           /* whole ingest batch), and milliseconds */
#define READ_BYTES    (256u << 10) /* bytes of an open file read at a time */
#define WANT_FILE_MAX (4u << 20)   /* bytes of a want file read at most */
#define OUT_FLUSH     (1u << 20)   /* bytes of a bundle buffered before writing */
#define PROGRESS_MS   250          /* between two bundle-progress events of an export */

/* Why an envelope was refused, for the summary. */
static const struct reason {
    int rc;
    const char *word;
} reasons[] = {
    {CHP_E_ENV_SIZE, "size"},     {CHP_E_ENV_VERSION, "version"},
    {CHP_E_ENV_TTL, "ttl"},       {CHP_E_ENV_EXPIRED, "expired"},
    {CHP_E_ENV_FUTURE, "future"}, {CHP_E_ENV_POW, "pow"},
    {CHP_E_STORE_FULL, "full"},   {0, "malformed"},
};
#define NREASONS (sizeof reasons / sizeof *reasons)

enum { JOB_NONE, JOB_RUNNING, JOB_DONE, JOB_FAILED };

struct job {
    uint32_t id;
    int state;
    void (*done)(void *ctx, int ok, const char *line); /* hears the outcome, or NULL */
    void *done_ctx;
    chp_bfile_in f;
    chp_bundle_rd rd;
    uint64_t held, rej[NREASONS];
    uint8_t (*q)[32]; /* ids queued for commit: new unless the quota refused them */
    size_t nq, capq;
    char line[600];
};

struct chp_bundles {
    chp_node *n;
    struct job job;
    uint32_t next_id;
};

int chp_bundles_new(chp_node *n, chp_bundles **out)
{
    chp_bundles *b = calloc(1, sizeof *b);
    if (!b)
        return CHP_E_NOMEM;
    b->n = n;
    b->job.f.fd = -1;
    *out = b;
    return CHP_OK;
}

void chp_bundles_destroy(chp_bundles **bp)
{
    if (!bp || !*bp)
        return;
    chp_bundles *b = *bp;
    chp_bfile_close(&b->job.f);
    free(b->job.q);
    free(b);
    *bp = NULL;
}

int chp_bundles_busy(const chp_bundles *b)
{
    return b && b->job.state == JOB_RUNNING;
}

/* ---- import ---- */

static int reason_index(int rc)
{
    size_t i = 0;
    while (reasons[i].rc && reasons[i].rc != rc)
        i++;
    return (int)i;
}

/* "imported N new, M already held, K rejected (reason: count ...)". */
static void summary(const struct job *j, uint64_t fresh, char *out, size_t cap)
{
    uint64_t k = 0;
    for (size_t i = 0; i < NREASONS; i++)
        k += j->rej[i];
    int o = snprintf(out, cap, "imported %llu new, %llu already held, %llu rejected",
                     (unsigned long long)fresh, (unsigned long long)j->held, (unsigned long long)k);
    const char *sep = " (";
    for (size_t i = 0; i < NREASONS && o > 0 && (size_t)o < cap; i++) {
        if (!j->rej[i])
            continue;
        o += snprintf(out + o, cap - (size_t)o, "%s%s: %llu", sep, reasons[i].word,
                      (unsigned long long)j->rej[i]);
        sep = ", ";
    }
    if (k && o > 0 && (size_t)o < cap)
        snprintf(out + o, cap - (size_t)o, ")");
}

/* Ends the job: commits what is queued, counts what the store kept. */
static void job_end(chp_bundles *b, const char *failure)
{
    struct job *j = &b->job;
    (void)chp_mesh_flush(b->n->mesh);
    uint64_t fresh = 0;
    for (size_t i = 0; i < j->nq; i++) {
        if (chp_store_has(b->n->store, j->q[i]) == 1)
            fresh++;
        else
            j->rej[reason_index(CHP_E_STORE_FULL)]++;
    }
    char sum[400];
    summary(j, fresh, sum, sizeof sum);
    if (failure)
        snprintf(j->line, sizeof j->line, "%s; %s, nothing after it", failure, sum);
    else
        snprintf(j->line, sizeof j->line, "%s", sum);
    j->state = failure ? JOB_FAILED : JOB_DONE;
    chp_info("bundle import %s", j->line);
    chp_bfile_close(&j->f);
    free(j->q);
    j->q = NULL;
    j->nq = j->capq = 0;
    if (j->done)
        j->done(j->done_ctx, !failure, j->line);
}

static void import_env(chp_bundles *b, const chp_bundle_rec *rec)
{
    struct job *j = &b->job;
    uint8_t id[32];
    int rc = chp_mesh_ingest(b->n->mesh, rec->p, rec->len, id);
    if (rc == CHP_E_DUP) {
        j->held++;
    } else if (rc != CHP_OK) {
        j->rej[reason_index(rc)]++;
    } else if (chp_grow(&j->q, &j->capq, j->nq + 1, sizeof *j->q) == CHP_OK) {
        memcpy(j->q[j->nq++], id, 32);
    }
}

/* The padding after END in a sealed file is zeros. */
static int tail_zero(const chp_bfile_in *f)
{
    for (size_t i = f->pos; i < f->plain.len; i++)
        if (f->plain.p[i])
            return 0;
    return 1;
}

static const char *rd_failure(int rc, uint64_t count, char *buf, size_t cap)
{
    const char *why = rc == CHP_E_CORRUPT   ? "fails its check (damaged)"
                      : rc == CHP_E_TOO_BIG ? "claims a length over the limit"
                                            : "is not a bundle record";
    snprintf(buf, cap, "bundle damaged: record %llu %s", (unsigned long long)count + 1, why);
    return buf;
}

/* One record: 1 to go on, 0 when the job ended. */
static int job_record(chp_bundles *b, int *envs)
{
    struct job *j = &b->job;
    chp_bfile_in *f = &j->f;
    char why[CHP_BFILE_ERR + 64];
    if (j->rd.ended) {
        job_end(b, f->sealed && !tail_zero(f) ? "bundle damaged: bytes after its end" : NULL);
        return 0;
    }
    chp_bundle_rec rec;
    size_t used;
    int rc = chp_bundle_rd_next(&j->rd, f->plain.p + f->pos, f->plain.len - f->pos, &used, &rec);
    if (rc == CHP_E_TRUNCATED) {
        char err[CHP_BFILE_ERR];
        int m = chp_bfile_more(f, READ_BYTES, err);
        if (m == 1)
            return 1;
        if (m == 0)
            snprintf(why, sizeof why, "bundle cut short after record %llu",
                     (unsigned long long)j->rd.count);
        else
            snprintf(why, sizeof why, "bundle damaged: %s", err);
        job_end(b, why);
        return 0;
    }
    if (rc != CHP_OK) {
        job_end(b, rd_failure(rc, j->rd.count, why, sizeof why));
        return 0;
    }
    chp_bfile_take(f, used);
    if (rec.type == 0 && j->rd.kind != CHP_BUNDLE_KIND_ENVELOPES) {
        job_end(b, "this is a want file, not a bundle (give it to export --for)");
        return 0;
    }
    if (rec.type == CHP_REC_ENVELOPE) {
        import_env(b, &rec);
        ++*envs;
    } else if (rec.type == CHP_REC_WANT) {
        job_end(b, "bundle damaged: a want record in a bundle");
        return 0;
    }
    return 1;
}

static void job_step(chp_bundles *b)
{
    uint64_t t0 = chp_mono_ms();
    int envs = 0;
    while (b->job.state == JOB_RUNNING && envs < SLICE_ENVS && chp_mono_ms() - t0 < SLICE_MS)
        if (!job_record(b, &envs))
            break;
}

void chp_bundles_step(chp_bundles *b)
{
    if (b->job.state == JOB_RUNNING)
        job_step(b);
}

int chp_bundle_import_start(chp_bundles *b, const chp_bundle_opts *o, uint32_t *job, char *out,
                            size_t cap)
{
    struct job *j = &b->job;
    if (j->state == JOB_RUNNING) {
        snprintf(out, cap, N_("another bundle import is running; try again when it is done"));
        return 0;
    }
    chp_bfile_in f;
    char err[CHP_BFILE_ERR];
    if (chp_bfile_open(&f, o->path, o->pass, o->passlen, err) != CHP_OK) {
        chp_bfile_close(&f);
        snprintf(out, cap, "%s", err);
        return 0;
    }
    memset(j, 0, sizeof *j);
    j->f = f;
    chp_bundle_rd_init(&j->rd);
    j->id = ++b->next_id;
    j->state = JOB_RUNNING;
    *job = j->id;
    snprintf(out, cap, "%u", j->id);
    return 1;
}

int chp_bundle_import_status(const chp_bundles *b, uint32_t job, char *out, size_t cap)
{
    const struct job *j = &b->job;
    if (!job || job != j->id || j->state == JOB_NONE) {
        snprintf(out, cap, N_("no such import (another one started since?)"));
        return -2;
    }
    if (j->state == JOB_RUNNING) {
        uint64_t k = 0;
        for (size_t i = 0; i < NREASONS; i++)
            k += j->rej[i];
        snprintf(out, cap, "running %llu %llu %llu %llu %llu", (unsigned long long)j->f.off,
                 (unsigned long long)j->f.size, (unsigned long long)j->nq,
                 (unsigned long long)j->held, (unsigned long long)k);
        return 0;
    }
    snprintf(out, cap, "%s", j->line);
    return j->state == JOB_DONE ? 1 : -1;
}

int chp_bundle_import_then(chp_bundles *b, const chp_bundle_opts *o,
                           void (*done)(void *ctx, int ok, const char *line), void *ctx, char *out,
                           size_t cap)
{
    uint32_t id;
    if (!chp_bundle_import_start(b, o, &id, out, cap))
        return 0;
    b->job.done = done;
    b->job.done_ctx = ctx;
    return 1;
}

/* ---- the store's items ---- */

struct item {
    uint64_t created;
    uint8_t id[32];
};

struct items {
    struct item *v;
    size_t n, cap;
    uint64_t since; /* created at or after, 0 = all */
};

static int collect(void *ctx, uint64_t created, const uint8_t id[32])
{
    struct items *it = ctx;
    if (created < it->since)
        return 0;
    if (chp_grow(&it->v, &it->cap, it->n + 1, sizeof *it->v) != CHP_OK)
        return CHP_E_NOMEM;
    it->v[it->n].created = created;
    memcpy(it->v[it->n++].id, id, 32);
    return 0;
}

static int all_items(chp_node *n, struct items *it)
{
    chp_store_bound lo = chp_store_bound_min(), hi = chp_store_bound_max();
    int rc = chp_store_range(n->store, &lo, &hi, collect, it);
    return rc < 0 ? rc : CHP_OK;
}

/* ---- want ---- */

static int write_want(chp_node *n, const struct items *it, chp_bfile_out *f, char *err)
{
    chp_want w;
    uint8_t salt[CHP_WANT_SALT];
    chp_rng_fill(chp_rng_system(), salt, sizeof salt);
    if (chp_want_init(&w, it->n, salt) != CHP_OK)
        return CHP_E_NOMEM;
    (void)n;
    for (size_t i = 0; i < it->n; i++)
        chp_want_add(&w, it->v[i].created, it->v[i].id);
    chp_buf body = {0};
    chp_bundle_wr wr;
    int rc = chp_want_encode(&w, &body);
    if (rc == CHP_OK)
        rc = chp_bundle_wr_begin(&wr, CHP_BUNDLE_KIND_WANT, &f->buf);
    if (rc == CHP_OK)
        rc = chp_bundle_wr_rec(&wr, CHP_REC_WANT, body.p, body.len, &f->buf);
    if (rc == CHP_OK)
        rc = chp_bundle_wr_end(&wr, &f->buf);
    chp_buf_free(&body);
    chp_want_fini(&w);
    if (rc != CHP_OK)
        snprintf(err, CHP_BFILE_ERR, "%s", chp_strerror(rc));
    return rc == CHP_OK ? chp_bfile_finish(f, err) : rc;
}

int chp_bundle_want(chp_node *n, const chp_bundle_opts *o, char *out, size_t cap)
{
    struct items it = {0};
    chp_bfile_out f = {.fd = -1};
    char err[CHP_BFILE_ERR] = "out of memory";
    int rc = all_items(n, &it);
    if (rc == CHP_OK)
        rc = chp_bfile_create(&f, o->path, o->pass, o->passlen, err);
    if (rc == CHP_OK)
        rc = write_want(n, &it, &f, err);
    if (rc == CHP_OK)
        snprintf(out, cap, "want summary of %zu envelopes, %llu bytes, written to %s", it.n,
                 (unsigned long long)f.bytes, o->path);
    else
        snprintf(out, cap, "%s", err);
    chp_bfile_abort(&f);
    free(it.v);
    return rc == CHP_OK;
}

/* Reads a want file whole (it is small) into w. */
static int read_want(const chp_bundle_opts *o, chp_want *w, char *err)
{
    chp_bfile_in f;
    int rc = chp_bfile_open(&f, o->want, o->pass, o->passlen, err);
    if (rc != CHP_OK) { /* err says why */
        chp_bfile_close(&f);
        return rc;
    }
    while (rc == CHP_OK && f.plain.len < WANT_FILE_MAX) {
        int m = chp_bfile_more(&f, READ_BYTES, err);
        if (m <= 0) {
            rc = m;
            break;
        }
    }
    if (rc != CHP_OK) {
        chp_bfile_close(&f);
        return rc;
    }
    chp_bundle_rd rd;
    chp_bundle_rd_init(&rd);
    int got = 0;
    while (rc == CHP_OK && !rd.ended) {
        chp_bundle_rec rec;
        size_t used;
        rc = chp_bundle_rd_next(&rd, f.plain.p + f.pos, f.plain.len - f.pos, &used, &rec);
        if (rc == CHP_OK && rec.type == 0 && rd.kind != CHP_BUNDLE_KIND_WANT)
            rc = CHP_E_ARG;
        if (rc == CHP_OK && rec.type == CHP_REC_WANT && !got)
            rc = chp_want_decode(rec.p, rec.len, w), got = rc == CHP_OK;
        chp_bfile_take(&f, used);
    }
    if (rc == CHP_OK && !got)
        rc = CHP_E_MALFORMED;
    if (rc != CHP_OK && got)
        chp_want_fini(w);
    if (rc == CHP_E_ARG)
        snprintf(err, CHP_BFILE_ERR, N_("%.200s is a bundle, not a want file"), o->want);
    else if (rc != CHP_OK)
        snprintf(err, CHP_BFILE_ERR, N_("want file %.200s is damaged (%s)"), o->want,
                 chp_strerror(rc));
    chp_bfile_close(&f);
    return rc;
}

/* ---- export ---- */

struct pick {
    chp_want_cmp *cmp;
    uint64_t unproven;
};

static int cmp_add(void *ctx, uint64_t created, const uint8_t id[32])
{
    chp_want_cmp_add(ctx, created, id);
    return 0;
}

/* Keeps the items the want lacks, in order. */
static void pick_missing(struct items *it, struct pick *p)
{
    size_t k = 0;
    for (size_t i = 0; i < it->n; i++) {
        int proven;
        if (chp_want_cmp_missing(p->cmp, it->v[i].created, it->v[i].id, &proven)) {
            it->v[k++] = it->v[i];
            p->unproven += !proven;
        }
    }
    it->n = k;
}

/* The file size once plain bytes of records are in it. */
static uint64_t file_size(const chp_bfile_out *f, uint64_t plain)
{
    return f->key ? CHP_SEAL_SALT + chp_seal_chunks(plain) * (uint64_t)CHP_SEAL_CT : plain;
}

/* "export N TOTAL BYTES" on the event socket, at most every PROGRESS_MS:
 * the CLI's progress line while the export holds the loop. */
static void progress(chp_node *n, uint64_t *next, size_t done, size_t total, uint64_t bytes)
{
    uint64_t t = chp_mono_ms();
    if (t < *next)
        return;
    char b[96];
    snprintf(b, sizeof b, "export %zu %zu %llu", done, total, (unsigned long long)bytes);
    chp_control_event(n, "bundle-progress", b);
    *next = t + PROGRESS_MS;
}

static int write_bundle(chp_node *n, const struct items *it, int newest_first, uint64_t max,
                        chp_bfile_out *f, size_t *written, char *err)
{
    chp_bundle_wr wr;
    uint64_t next = chp_mono_ms() + PROGRESS_MS;
    uint8_t *env = malloc(CHP_ENV_MAX_BYTES);
    uint64_t plain = CHP_BUNDLE_HDR_BYTES + chp_bundle_rec_size(8);
    int rc = env ? chp_bundle_wr_begin(&wr, CHP_BUNDLE_KIND_ENVELOPES, &f->buf) : CHP_E_NOMEM;
    for (size_t i = 0; rc == CHP_OK && i < it->n; i++) {
        const struct item *t = &it->v[newest_first ? it->n - 1 - i : i];
        size_t len;
        if (chp_store_get(n->store, t->id, env, CHP_ENV_MAX_BYTES, &len, NULL) != CHP_OK)
            continue; /* evicted or expired meanwhile */
        if (max && file_size(f, plain + chp_bundle_rec_size(len)) > max)
            break;
        plain += chp_bundle_rec_size(len);
        rc = chp_bundle_wr_rec(&wr, CHP_REC_ENVELOPE, env, len, &f->buf);
        ++*written;
        if (rc == CHP_OK && f->buf.len >= OUT_FLUSH && (rc = chp_bfile_flush(f, err)) != CHP_OK)
            break;
        progress(n, &next, i + 1, it->n, plain);
    }
    free(env);
    if (rc == CHP_OK)
        rc = chp_bundle_wr_end(&wr, &f->buf);
    if (rc != CHP_OK && !err[0])
        snprintf(err, CHP_BFILE_ERR, "%s", chp_strerror(rc));
    return rc == CHP_OK ? chp_bfile_finish(f, err) : rc;
}

/* What export --for says of the want it answered. */
static void want_note(const chp_want_result *r, const struct pick *p, const chp_want *w, char *out,
                      size_t cap)
{
    if (r->decoded)
        snprintf(out, cap,
                 "; want of %llu envelopes: %u of %u ranges held alike, the rest "
                 "decoded exactly (nothing sent that it holds)",
                 (unsigned long long)w->total, r->ranges_equal, w->nranges);
    else
        snprintf(out, cap,
                 "; want of %llu envelopes: %u of %u ranges held alike, too many "
                 "differences to decode: %llu sent without proof they are missing",
                 (unsigned long long)w->total, r->ranges_equal, w->nranges,
                 (unsigned long long)p->unproven);
}

static int select_for(chp_node *n, const chp_bundle_opts *o, struct items *it, char *note,
                      size_t cap, char *err)
{
    chp_want w;
    struct pick p = {0};
    chp_want_result res;
    int rc = read_want(o, &w, err);
    if (rc != CHP_OK)
        return rc;
    uint64_t since = it->since;
    it->since = 0; /* the comparison needs every item */
    rc = chp_want_cmp_new(&w, &p.cmp);
    if (rc == CHP_OK) {
        chp_store_bound lo = chp_store_bound_min(), hi = chp_store_bound_max();
        int r = chp_store_range(n->store, &lo, &hi, cmp_add, p.cmp);
        rc = r < 0 ? r : chp_want_cmp_finish(p.cmp, &res);
    }
    if (rc == CHP_OK)
        rc = all_items(n, it);
    if (rc == CHP_OK) {
        pick_missing(it, &p);
        want_note(&res, &p, &w, note, cap);
        size_t k = 0;
        for (size_t i = 0; i < it->n; i++)
            if (it->v[i].created >= since)
                it->v[k++] = it->v[i];
        it->n = k;
    } else {
        snprintf(err, CHP_BFILE_ERR, "%s", chp_strerror(rc));
    }
    chp_want_cmp_destroy(&p.cmp);
    chp_want_fini(&w);
    return rc;
}

int chp_bundle_export(chp_node *n, const chp_bundle_opts *o, char *out, size_t cap)
{
    struct items it = {0};
    chp_bfile_out f = {.fd = -1};
    char err[CHP_BFILE_ERR] = "", note[300] = "";
    size_t written = 0;
    uint64_t now = chp_unix_s();
    it.since = o->since && o->since < now ? now - o->since : 0;
    uint64_t least = o->pass ? CHP_SEAL_SALT + (uint64_t)CHP_SEAL_CT : 64;
    if (o->max && o->max < least) {
        snprintf(out, cap, N_("--max-size %llu is below the smallest %s bundle (%llu bytes)"),
                 (unsigned long long)o->max, o->pass ? "sealed" : "open",
                 (unsigned long long)least);
        return 0;
    }
    int rc = o->want ? select_for(n, o, &it, note, sizeof note, err) : all_items(n, &it);
    if (rc == CHP_OK)
        rc = chp_bfile_create(&f, o->path, o->pass, o->passlen, err);
    if (rc == CHP_OK)
        rc = write_bundle(n, &it, !o->want, o->max, &f, &written, err);
    if (rc == CHP_OK)
        snprintf(out, cap, "exported %zu envelopes, %llu bytes, to %s%s%s", written,
                 (unsigned long long)f.bytes, o->path,
                 written < it.n ? " (stopped at --max-size)" : "", note);
    else
        snprintf(out, cap, "%s", err[0] ? err : chp_strerror(rc));
    chp_bfile_abort(&f);
    free(it.v);
    return rc == CHP_OK;
}
