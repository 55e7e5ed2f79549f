/* bundle_ctl.c - the control API's bundle requests (CONTROL.md "Bundles"):
 * their frames into chp_bundle_opts, the answer back. Paths are absolute
 * (the daemon's working directory is not the client's); an empty
 * passphrase frame means an open file, and is wiped after use. */
#include "node/daemon/bundles.h"

#include "node/common/i18n.h"
#include "proto/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_ 4096

struct args {
    char path[PATH_MAX_], want[PATH_MAX_];
    char pass[1025];
    size_t passlen;
    uint64_t since, max;
};

static void answer(chp_node *n, zmq_msg_t *f, int ok, const char *line)
{
    chp_control_reply(n, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), ok ? "ok" : "error", line,
                      strlen(line));
}

/* Frame i as a string; 0, or -1 when too long or holding a NUL. */
static int frame_str(zmq_msg_t *f, int i, char *out, size_t cap)
{
    size_t l = zmq_msg_size(&f[i]);
    if (l >= cap || memchr(zmq_msg_data(&f[i]), 0, l))
        return -1;
    memcpy(out, zmq_msg_data(&f[i]), l);
    out[l] = '\0';
    return 0;
}

static int frame_u64(zmq_msg_t *f, int i, uint64_t *v)
{
    char s[24], *end;
    if (frame_str(f, i, s, sizeof s) != 0)
        return -1;
    if (!s[0]) {
        *v = 0;
        return 0;
    }
    if (s[0] < '0' || s[0] > '9')
        return -1;
    *v = strtoull(s, &end, 10);
    return *end ? -1 : 0;
}

/* The path in frame 2 and the passphrase in frame last (0: none). */
static const char *parse(zmq_msg_t *f, int last, struct args *a, chp_bundle_opts *o)
{
    memset(o, 0, sizeof *o);
    a->passlen = 0;
    a->want[0] = '\0';
    size_t pl = last ? zmq_msg_size(&f[last]) : 0;
    int fits = pl < sizeof a->pass;
    if (pl && fits)
        memcpy(a->pass, zmq_msg_data(&f[last]), pl);
    if (pl) /* the frame's copy goes at once, whatever follows */
        chp_memzero(zmq_msg_data(&f[last]), pl);
    if (!fits)
        return N_("passphrase too long");
    a->passlen = pl;
    if (frame_str(f, 2, a->path, sizeof a->path) != 0 || a->path[0] != '/')
        return N_("the bundle path must be absolute");
    o->path = a->path;
    o->pass = pl ? a->pass : NULL;
    o->passlen = pl;
    return NULL;
}

static void done(struct args *a)
{
    chp_memzero(a->pass, sizeof a->pass);
}

typedef int bundle_op(chp_node *n, const chp_bundle_opts *o, char *out, size_t cap);

/* Answers bad, or what op says; then wipes the passphrase. */
static void run(chp_node *n, zmq_msg_t *f, struct args *a, const chp_bundle_opts *o,
                const char *bad, bundle_op *op)
{
    char out[900];
    if (bad)
        answer(n, f, 0, bad);
    else
        answer(n, f, op(n, o, out, sizeof out), out);
    done(a);
}

/* bundle-want PATH PASS */
void chp_bundle_c_want(chp_node *n, zmq_msg_t *f)
{
    struct args a;
    chp_bundle_opts o;
    run(n, f, &a, &o, parse(f, 3, &a, &o), chp_bundle_want);
}

/* bundle-export PATH WANT SINCE MAX PASS (WANT, SINCE, MAX may be empty) */
void chp_bundle_c_export(chp_node *n, zmq_msg_t *f)
{
    struct args a;
    chp_bundle_opts o;
    const char *bad = parse(f, 6, &a, &o);
    if (!bad && frame_str(f, 3, a.want, sizeof a.want) != 0)
        bad = N_("want path too long");
    if (!bad && a.want[0] && a.want[0] != '/')
        bad = N_("the want file's path must be absolute");
    if (!bad && (frame_u64(f, 4, &o.since) != 0 || frame_u64(f, 5, &o.max) != 0))
        bad = N_("since and max-size must be numbers (seconds, bytes)");
    o.want = a.want[0] ? a.want : NULL;
    run(n, f, &a, &o, bad, chp_bundle_export);
}

/* bundle-export PATH: a blind open export without bounds (the TUI's). */
void chp_bundle_c_export_blind(chp_node *n, zmq_msg_t *f)
{
    struct args a;
    chp_bundle_opts o;
    run(n, f, &a, &o, parse(f, 0, &a, &o), chp_bundle_export);
}

/* bundle-import PATH PASS: answers the job number at once (after the
 * passphrase is proven); bundle-status JOB follows it. */
void chp_bundle_c_import(chp_node *n, zmq_msg_t *f)
{
    struct args a;
    chp_bundle_opts o;
    char out[600];
    uint32_t job;
    const char *bad = parse(f, 3, &a, &o);
    if (bad)
        answer(n, f, 0, bad);
    else
        answer(n, f, chp_bundle_import_start(n->bundles, &o, &job, out, sizeof out), out);
    done(&a);
}

/* bundle-status JOB: "running BYTES TOTAL NEW HELD REJECTED", or "done
 * SUMMARY"; an error line when the import failed. */
void chp_bundle_c_status(chp_node *n, zmq_msg_t *f)
{
    uint64_t job;
    char out[700], line[720];
    if (frame_u64(f, 2, &job) != 0 || job > UINT32_MAX) {
        answer(n, f, 0, N_("bundle-status wants a job number"));
        return;
    }
    int st = chp_bundle_import_status(n->bundles, (uint32_t)job, out, sizeof out);
    if (st == 1)
        snprintf(line, sizeof line, "done %s", out);
    else
        snprintf(line, sizeof line, "%s", out);
    answer(n, f, st >= 0, line);
}
