/* bundles.h - bundles on removable media, the daemon's side (node/daemon
 * only): reading and writing bundle and want files, open or sealed
 * (bundle_io.c); `bundle-want`, `bundle-export`, `bundle-import` and
 * `bundle-status` (bundle.c); spool directories (spool.c). The formats are
 * proto/bundle.h and proto/want.h; PROTOCOL.md §19 has the bytes. */
#ifndef CHP_DAEMON_BUNDLES_H
#define CHP_DAEMON_BUNDLES_H

#include "node/daemon/node_int.h"
#include "proto/buf.h"
#include "proto/bundle.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* ---- bundle_io.c: files ---- */

#define CHP_BFILE_ERR 256 /* bytes of an error line */

/* A bundle or want file being read: open (the header's magic) or sealed
 * (any other bytes, with a passphrase). Plaintext comes out in order. */
typedef struct chp_bfile_in {
    int fd;
    uint64_t size, off; /* file bytes, and read so far */
    int sealed;
    uint8_t *key;           /* sealed: the file key (guarded memory) */
    uint64_t chunks, chunk; /* sealed: chunks in the file, next to read */
    int cut;                /* sealed: the size is no sealed file's: cut short */
    chp_buf plain;          /* plaintext read and not taken yet, from pos */
    size_t pos;
} chp_bfile_in;

/* Opens path (absolute) for reading; pass may be NULL (open files only).
 * The first sealed chunk is opened before this returns, so a wrong
 * passphrase fails here. CHP_OK, or an error with one line in err:
 * CHP_E_IO, CHP_E_PASSPHRASE (wrong passphrase, or not a bundle),
 * CHP_E_MALFORMED (not a bundle and no passphrase), CHP_E_KDF. */
CHP_WUR int chp_bfile_open(chp_bfile_in *f, const char *path, const char *pass, size_t passlen,
                           char *err);
/* Reads more plaintext (up to about want bytes) onto f->plain. 1 when some
 * came, 0 at the end of the file, or an error with err set (CHP_E_IO,
 * CHP_E_DECRYPT: a sealed chunk is damaged or missing). */
CHP_WUR int chp_bfile_more(chp_bfile_in *f, size_t want, char *err);
/* Drops the first n bytes of what is waiting. */
void chp_bfile_take(chp_bfile_in *f, size_t n);
void chp_bfile_close(chp_bfile_in *f);

/* A bundle or want file being written to path.tmp, renamed to path when
 * finished, so a reader never sees half of one. */
typedef struct chp_bfile_out {
    int fd;
    char path[4096], tmp[4200];
    uint8_t *key; /* sealed: the file key (guarded memory), else NULL */
    uint64_t chunk, plain;
    chp_buf buf;    /* plaintext not written yet */
    uint64_t bytes; /* file bytes written */
} chp_bfile_out;

/* CHP_OK, or CHP_E_IO / CHP_E_KDF with err set. pass NULL: open file. */
CHP_WUR int chp_bfile_create(chp_bfile_out *f, const char *path, const char *pass, size_t passlen,
                             char *err);
/* Writes what f->buf holds (whole chunks when sealed). */
CHP_WUR int chp_bfile_flush(chp_bfile_out *f, char *err);
/* Pads (sealed), fsyncs, renames into place. */
CHP_WUR int chp_bfile_finish(chp_bfile_out *f, char *err);
/* Removes the temporary file unless finished; releases everything. */
void chp_bfile_abort(chp_bfile_out *f);

/* ---- bundle.c: the commands and the import job ---- */

typedef struct chp_bundles chp_bundles;

CHP_WUR int chp_bundles_new(chp_node *n, chp_bundles **out);
void chp_bundles_destroy(chp_bundles **bp);
/* 1 while an import wants the loop back at once (poll timeout 0). */
int chp_bundles_busy(const chp_bundles *b);
/* One slice of the running import. */
void chp_bundles_step(chp_bundles *b);

/* The outcome of a want, export or import, for the control API and the
 * spool's log line. */
typedef struct chp_bundle_opts {
    const char *path;
    const char *pass; /* NULL: open */
    size_t passlen;
    const char *want; /* export: the want file's path, NULL: blind */
    uint64_t since;   /* export: seconds back from now, 0 = all */
    uint64_t max;     /* export: bytes of the file at most, 0 = no bound */
} chp_bundle_opts;

/* Writes a want summary of the store. 1 and a summary line in out, or 0
 * and the one-line reason. */
int chp_bundle_want(chp_node *n, const chp_bundle_opts *o, char *out, size_t cap);
/* Writes a bundle. The same. */
int chp_bundle_export(chp_node *n, const chp_bundle_opts *o, char *out, size_t cap);
/* Starts an import (one at a time). 1 and the job number in *job, or 0
 * and the reason. */
int chp_bundle_import_start(chp_bundles *b, const chp_bundle_opts *o, uint32_t *job, char *out,
                            size_t cap);
/* chp_bundle_import_start whose outcome done(ctx, ok, line) hears (the
 * spool's). */
int chp_bundle_import_then(chp_bundles *b, const chp_bundle_opts *o,
                           void (*done)(void *ctx, int ok, const char *line), void *ctx, char *out,
                           size_t cap);
/* Job state: 0 running (out: progress "running BYTES TOTAL NEW HELD
 * REJECTED"), 1 done (out: the summary line), -1 failed (out: the reason),
 * -2 no such job. */
int chp_bundle_import_status(const chp_bundles *b, uint32_t job, char *out, size_t cap);

/* control.c's command handlers. */
void chp_bundle_c_want(chp_node *n, zmq_msg_t *f);
void chp_bundle_c_export(chp_node *n, zmq_msg_t *f);
void chp_bundle_c_export_blind(chp_node *n, zmq_msg_t *f); /* PATH only: open, no bounds */
void chp_bundle_c_import(chp_node *n, zmq_msg_t *f);
void chp_bundle_c_status(chp_node *n, zmq_msg_t *f);

/* ---- spool.c ---- */

typedef struct chp_spool chp_spool;
CHP_WUR int chp_spool_new(chp_node *n, chp_bundles *b, const char *const *dirs, size_t ndirs,
                          chp_spool **out);
void chp_spool_destroy(chp_spool **sp);
/* Looks at the directories when due; imports and answers new media. */
void chp_spool_step(chp_spool *s, uint64_t t);

#endif
