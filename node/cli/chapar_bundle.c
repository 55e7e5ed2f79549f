/* chapar_bundle.c - `chapar bundle want|export|import`: envelopes on a USB
 * stick (CONTROL.md "Bundles"). The daemon reads and writes the files, so
 * paths go to it absolute; a passphrase comes only from
 * --passphrase-file and travels in a frame that is wiped. An import runs
 * in the daemon's loop; this command follows it with bundle-status and,
 * on a terminal, shows a progress line once it takes over a second. */
#include "node/cli/chapar_int.h"
#include "node/msg/account.h"
#include "node/common/clock.h"
#include "node/common/home.h"
#include "proto/crypto.h"
#include "proto/keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUNDLE_TIMEOUT_MS (30 * 60 * 1000) /* a want or export of a large store */
#define POLL_MS           200
#define PROGRESS_AFTER_MS 1000

static const char use_want[] = "bundle want FILE [--passphrase-file F]";
static const char use_export[] = "bundle export FILE [--for WANTFILE] [--since DURATION] "
                                 "[--max-size SIZE] [--passphrase-file F] [--quiet]";
static const char use_import[] = "bundle import FILE [--passphrase-file F] [--quiet]";

struct bargs {
    char path[4096], want[4096];
    char since[24], max[24];
    char pass[CHP_PASS_MAX + 1];
    size_t passlen;
    int quiet;
};

/* FILE as an absolute path: the daemon's working directory is not ours. */
static int absolute(const char *in, char *out, size_t cap)
{
    char cwd[4096];
    if (in[0] == '/') {
        if (strlen(in) >= cap)
            return cli_fail(2, _("path too long: %s"), in);
        snprintf(out, cap, "%s", in);
        return 0;
    }
    if (!getcwd(cwd, sizeof cwd))
        return cli_fail(1, _("cannot tell the current directory: %s"), strerror(errno));
    if ((size_t)snprintf(out, cap, "%s/%s", cwd, in) >= cap)
        return cli_fail(2, _("path too long: %s"), in);
    return 0;
}

/* DURATION: seconds, or a number with s, m, h, d or w. */
static int duration(const char *s, char *out, size_t cap)
{
    char *end;
    if (!s[0] || s[0] < '0' || s[0] > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    const char *units = "smhdw";
    static const unsigned long long mult[] = {1, 60, 3600, 86400, 604800};
    const char *u = *end ? strchr(units, *end) : units;
    if (!u || (*end && end[1]) || v > UINT32_MAX)
        return -1;
    snprintf(out, cap, "%llu", v * mult[u - units]);
    return 0;
}

static int parse(int argc, char **argv, const char *use, int export, struct bargs *a)
{
    const char *file = NULL, *want = NULL, *since = NULL, *max = NULL;
    char *pos[1];
    int npos;
    cli_opt o[] = {{"--passphrase-file", &file, NULL},
                   {"--quiet", NULL, &a->quiet},
                   {"--for", &want, NULL},
                   {"--since", &since, NULL},
                   {"--max-size", &max, NULL}};
    int rc = cli_parse_opts(argc, argv, o, export ? 5 : 2, pos, 1, &npos, use);
    if (!rc && npos != 1)
        rc = cli_fail(2, _("usage: chapar %s"), use);
    if (!rc)
        rc = absolute(pos[0], a->path, sizeof a->path);
    if (!rc && want)
        rc = absolute(want, a->want, sizeof a->want);
    if (!rc && since && duration(since, a->since, sizeof a->since) != 0)
        rc = cli_fail(2, _("--since %s: expected a duration like 3600, 90m, 12h, 7d or 2w"), since);
    uint64_t m;
    if (!rc && max && (chp_parse_size(max, &m) != 0 || m < 4096))
        rc = cli_fail(2, _("--max-size %s: expected a size of at least 4K, like 64M or 2G"), max);
    if (!rc && max)
        snprintf(a->max, sizeof a->max, "%llu", (unsigned long long)m);
    if (!rc && file)
        rc = cli_get_passphrase(file, NULL, 0, a->pass, sizeof a->pass, &a->passlen,
                                "--passphrase-file F");
    return rc;
}

/* One request whose last argument is the passphrase frame. */
static int call(const char *home, const char *cmd, int n, const char *const *args,
                const size_t *lens, chp_ctl **c, chp_ctl_answer *r)
{
    int rc = cli_open(home, c);
    if (rc)
        return rc;
    if (chp_ctl_send(*c, NULL, chp_ctl_now_ms(), cmd, n, args, lens, 1) != CHP_OK) {
        chp_ctl_destroy(c);
        return cli_fail(1, _("cannot send to chapard: %s"), chp_ctl_io_reason());
    }
    int got = chp_ctl_recv(*c, BUNDLE_TIMEOUT_MS, r);
    if (got != 1) {
        chp_ctl_destroy(c);
        return cli_fail(1, _("no answer from chapard (is it running? see its log)"));
    }
    return 0;
}

/* An export's "bundle-progress" event ("export N TOTAL BYTES") as the
 * progress line. */
static void export_progress(const char *body, uint64_t ms)
{
    unsigned long long done, total, bytes;
    if (sscanf(body, "export %llu %llu %llu", &done, &total, &bytes) != 3 || !total)
        return;
    double rate = ms ? (double)done * 1000.0 / (double)ms : 0;
    fputs("\r\033[K", stderr); /* back to the line start, cleared */
    fprintf(stderr, _("exporting: %llu of %llu envelopes, %.1f MB, %.0f env/s, ETA %.0f s"), done,
            total, (double)bytes / 1e6, rate, rate > 0 ? (double)(total - done) / rate : 0);
}

/* want and export: one request, one line; meanwhile the daemon's progress
 * events make a progress line on a terminal after a second. */
static int one_shot(const char *home, const char *cmd, int n, const char *const *args,
                    const size_t *lens, int quiet)
{
    chp_ctl *c;
    chp_ctl_answer r;
    int show = !quiet && isatty(STDERR_FILENO), shown = 0, rc = cli_open(home, &c);
    if (rc)
        return rc;
    if (show && chp_ctl_subscribe(c, "bundle-progress") != CHP_OK)
        show = 0;
    if (chp_ctl_send(c, NULL, chp_ctl_now_ms(), cmd, n, args, lens, 1) != CHP_OK) {
        chp_ctl_destroy(&c);
        return cli_fail(1, _("cannot send to chapard: %s"), chp_ctl_io_reason());
    }
    uint64_t t0 = chp_ctl_now_ms();
    int got = 0;
    while (!got && chp_ctl_now_ms() - t0 < BUNDLE_TIMEOUT_MS) {
        char *topic, *body;
        size_t len;
        while (show && chp_ctl_event(c, &topic, &body, &len) == 1) {
            if (chp_ctl_now_ms() - t0 >= PROGRESS_AFTER_MS)
                export_progress(body, chp_ctl_now_ms() - t0), shown = 1;
            free(topic);
            free(body);
        }
        got = chp_ctl_recv(c, POLL_MS, &r);
        if (got < 0)
            break;
    }
    if (shown)
        fprintf(stderr, "\r\033[K");
    if (got != 1) {
        chp_ctl_destroy(&c);
        return cli_fail(1, _("no answer from chapard (is it running? see its log)"));
    }
    if (r.ok)
        cli_print_payload(r.body, r.len);
    else
        rc = cli_reply_error(&r);
    chp_ctl_answer_free(&r);
    chp_ctl_destroy(&c);
    return rc;
}

static int cmd_want(const char *home, int argc, char **argv)
{
    struct bargs a = {0};
    int rc = parse(argc, argv, use_want, 0, &a);
    if (!rc) {
        const char *v[2] = {a.path, a.pass};
        size_t l[2] = {strlen(a.path), a.passlen};
        rc = one_shot(home, "bundle-want", 2, v, l, a.quiet);
    }
    chp_memzero(a.pass, sizeof a.pass);
    return rc;
}

static int cmd_export(const char *home, int argc, char **argv)
{
    struct bargs a = {0};
    int rc = parse(argc, argv, use_export, 1, &a);
    if (!rc) {
        const char *v[5] = {a.path, a.want, a.since, a.max, a.pass};
        size_t l[5] = {strlen(a.path), strlen(a.want), strlen(a.since), strlen(a.max), a.passlen};
        rc = one_shot(home, "bundle-export", 5, v, l, a.quiet);
    }
    chp_memzero(a.pass, sizeof a.pass);
    return rc;
}

/* "running BYTES TOTAL NEW HELD REJECTED" as a progress line. */
static void progress(const char *body, uint64_t ms)
{
    unsigned long long off, size, fresh, held, rej;
    if (sscanf(body, "running %llu %llu %llu %llu %llu", &off, &size, &fresh, &held, &rej) != 5)
        return;
    double rate = ms ? (double)off * 1000.0 / (double)ms : 0;
    double eta = rate > 0 ? (double)(size - off) / rate : 0;
    fputs("\r\033[K", stderr);
    fprintf(stderr, _("importing: %llu envelopes, %.1f of %.1f MB, %.1f MB/s, ETA %.0f s"),
            fresh + held + rej, (double)off / 1e6, (double)size / 1e6, rate / 1e6, eta);
}

/* Follows import job until it ends: 0 after the summary, or 1. */
static int follow(chp_ctl *c, const char *job, int quiet)
{
    uint64_t t0 = chp_ctl_now_ms();
    int shown = 0, show = !quiet && isatty(STDERR_FILENO);
    for (;;) {
        chp_ctl_answer r;
        const char *v[1] = {job};
        size_t l[1] = {strlen(job)};
        if (chp_ctl_call(c, REPLY_TIMEOUT_MS, "bundle-status", 1, v, l, &r) != 1)
            return cli_fail(1, _("chapard stopped answering during the import (see its log)"));
        uint64_t ms = chp_ctl_now_ms() - t0;
        int running = r.ok && !strncmp(r.body, "running ", 8);
        if (running && show && ms >= PROGRESS_AFTER_MS) {
            progress(r.body, ms);
            shown = 1;
        }
        if (!running && shown)
            fprintf(stderr, "\r\033[K");
        int rc = 0;
        if (!running && r.ok)
            cli_print_payload(r.body + 5, r.len - 5); /* after "done " */
        else if (!running)
            rc = cli_reply_error(&r);
        chp_ctl_answer_free(&r);
        if (!running)
            return rc;
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int cmd_import(const char *home, int argc, char **argv)
{
    struct bargs a = {0};
    int rc = parse(argc, argv, use_import, 0, &a);
    chp_ctl *c = NULL;
    chp_ctl_answer r = {0};
    if (!rc) {
        const char *v[2] = {a.path, a.pass};
        size_t l[2] = {strlen(a.path), a.passlen};
        rc = call(home, "bundle-import", 2, v, l, &c, &r);
    }
    chp_memzero(a.pass, sizeof a.pass);
    if (rc)
        return rc;
    rc = r.ok ? follow(c, r.body, a.quiet) : cli_reply_error(&r);
    chp_ctl_answer_free(&r);
    chp_ctl_destroy(&c);
    return rc;
}

int cli_cmd_bundle(const char *home, int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "want"))
        return cmd_want(home, argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "export"))
        return cmd_export(home, argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "import"))
        return cmd_import(home, argc - 1, argv + 1);
    return cli_fail(2, _("usage: chapar %s | %s | %s"), use_want, use_export, use_import);
}
