/* chapar_share.c - `chapar share-app`: serves this machine's Chapar (the
 * .deb for its architecture and the source tarball of this version) on
 * the LAN with a page in Persian and English and a manifest of their
 * SHA-256 sums signed with the user's identity key: by the running
 * chapard (the `app-sign` control command: no key leaves the daemon), or,
 * when none runs, here after opening the identity as chapard would. The
 * server (node/web/httpd.c) is read-only, knows exactly four paths, and
 * stops on Ctrl-C or after --idle seconds without a request. */
#define _DEFAULT_SOURCE /* getifaddrs, dirent's d_type */
#include "node/cli/chapar_int.h"
#include "node/common/clock.h"
#include "node/common/version.h"
#include "node/web/httpd.h"
#include "node/msg/account.h"
#include "proto/crypto.h"
#include "proto/hex.h"
#include "proto/id.h"
#include "proto/manifest.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARE_PORT      7680 /* the default port: one a user can type */
#define SHARE_IDLE_S    1800 /* stop after this long without a request */
#define SHARE_CONNS     64
#define SHARE_PER_IP    8
#define SHARE_TIMEOUT   30 /* s of silence before a connection is closed */
#define SHARE_HEADER_S  10 /* s for a request's headers to arrive */
#define SHARE_HEADERS   (16 << 10)
#define SHARE_INSTALLED "/usr/share/chapar/dist" /* where a package may put them */

/* The architecture Debian calls this machine's (dpkg --print-architecture). */
#if defined(__x86_64__)
#define DEB_ARCH "amd64"
#elif defined(__aarch64__)
#define DEB_ARCH "arm64"
#elif defined(__arm__)
#define DEB_ARCH "armhf"
#elif defined(__i386__)
#define DEB_ARCH "i386"
#elif defined(__riscv) && __riscv_xlen == 64
#define DEB_ARCH "riscv64"
#else
#define DEB_ARCH "unknown"
#endif

enum { F_DEB, F_SRC, NFILES };

struct shared {
    char name[CHP_MANIFEST_NAME_MAX + 1];
    uint64_t size;
    uint8_t sha[32];
    struct stat st; /* as hashed: a file changed since is not served */
};

struct share {
    int dirfd;
    char dir[4096];
    struct shared f[NFILES];
    char id[CHP_ID_STR_LEN + 1];
    char manifest_name[64];
    chp_buf manifest, page;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* ---- the files ---- */

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* Which kind of file name is (F_DEB, F_SRC), whether it is this very
 * version (2) or another (1), or not ours (0). */
static int classify(const char *name, int *kind)
{
    char exact[200];
    if (!chp_manifest_name_ok(name, strlen(name)))
        return 0;
    if (!strncmp(name, "chapar_", 7) && ends_with(name, "_" DEB_ARCH ".deb")) {
        *kind = F_DEB;
        snprintf(exact, sizeof exact, "chapar_%s_%s.deb", CHP_VERSION, DEB_ARCH);
        return strcmp(name, exact) ? 1 : 2;
    }
    if (!strncmp(name, "chapar-", 7) &&
        (ends_with(name, ".tar.xz") || ends_with(name, ".tar.gz"))) {
        *kind = F_SRC;
        snprintf(exact, sizeof exact, "chapar-%s.tar", CHP_VERSION);
        return strncmp(name, exact, strlen(exact)) ? 1 : 2;
    }
    return 0;
}

/* Picks, for each kind, this version's file, else the newest. */
static void pick(struct share *s)
{
    int best[NFILES] = {0};
    struct timespec when[NFILES];
    DIR *d = fdopendir(dup(s->dirfd));
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int kind, q = classify(e->d_name, &kind);
        struct stat st;
        if (!q || fstatat(s->dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
            continue;
        int newer = !best[kind] || st.st_mtim.tv_sec > when[kind].tv_sec;
        if (q > best[kind] || (q == best[kind] && newer)) {
            best[kind] = q;
            when[kind] = st.st_mtim;
            size_t l = strlen(e->d_name); /* at most CHP_MANIFEST_NAME_MAX: classify said so */
            assert(l < sizeof s->f[kind].name);
            memcpy(s->f[kind].name, e->d_name, l + 1);
        }
    }
    if (d)
        closedir(d);
}

static int hash_one(struct share *s, struct shared *f)
{
    int fd = openat(s->dirfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &f->st) != 0 || cli_hash_fd(fd, f->sha, &f->size) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return cli_fail(1, "%s/%s: %s", s->dir, f->name, strerror(e));
    }
    close(fd);
    return 0;
}

/* dist/ of the source tree when this chapar runs from a build tree
 * (BUILD/bin/chapar, BUILD/CMakeCache.txt naming the source): found at
 * run time, so no path of the build machine is compiled in (a .deb built
 * twice in two places stays the same bytes). 0 with out set, or -1. */
static int build_tree_dist(char *out, size_t cap)
{
    char exe[2048], line[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = n > 0 ? (exe[n] = '\0', strrchr(exe, '/')) : NULL;
    if (!slash)
        return -1;
    *slash = '\0';
    snprintf(line, sizeof line, "%s/../CMakeCache.txt", exe);
    FILE *f = fopen(line, "r");
    static const char key[] = "CMAKE_HOME_DIRECTORY:INTERNAL=";
    int rc = -1;
    while (f && rc && fgets(line, sizeof line, f))
        if (!strncmp(line, key, sizeof key - 1)) {
            line[strcspn(line, "\n")] = '\0';
            rc = snprintf(out, cap, "%s/dist", line + sizeof key - 1) < (int)cap ? 0 : -1;
        }
    if (f)
        fclose(f);
    return rc;
}

/* The folder to share from: --files, else $CHAPAR_DIST, else the build
 * tree's dist/, else the installed one. */
static int open_dir(struct share *s, const char *files)
{
    char tree[4096];
    if (!files && getenv("CHAPAR_DIST") && *getenv("CHAPAR_DIST"))
        files = getenv("CHAPAR_DIST");
    if (!files && build_tree_dist(tree, sizeof tree) == 0 && access(tree, R_OK | X_OK) == 0)
        files = tree;
    if (!files && access(SHARE_INSTALLED, R_OK | X_OK) == 0)
        files = SHARE_INSTALLED;
    if (!files)
        return cli_fail(1,
                        _("no .deb to share: run `make deb` in the source tree, or give "
                          "--files DIR with chapar_*_%s.deb and chapar-*.tar.xz"),
                        DEB_ARCH);
    snprintf(s->dir, sizeof s->dir, "%s", files);
    s->dirfd = open(files, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0)
        return cli_fail(1, _("--files %s: %s"), files, strerror(errno));
    pick(s);
    if (!s->f[F_DEB].name[0])
        return cli_fail(1, _("no chapar_*_%s.deb in %s: run `make deb`, or give --files DIR"),
                        DEB_ARCH, files);
    if (!s->f[F_SRC].name[0])
        return cli_fail(
            1, _("no chapar-*.tar.xz or .tar.gz in %s: run `make deb`, or give --files DIR"),
            files);
    return hash_one(s, &s->f[F_DEB]) || hash_one(s, &s->f[F_SRC]);
}

/* ---- the signed manifest ---- */

/* The manifest's body with this user as signer, signed by the running
 * chapard (`app-sign`: the key stays in the daemon). 0 or 1 after a line. */
static int sign_by_daemon(const char *home, chp_manifest *m, chp_buf *out)
{
    chp_ctl *c = NULL;
    chp_ctl_answer r = {0};
    chp_buf body = {0};
    int rc = cli_open(home, &c);
    if (!rc && !(rc = cli_call(c, &r, "id", 0, NULL, NULL)) && !r.ok)
        rc = cli_reply_error(&r);
    if (!rc && (r.len < CHP_ID_STR_LEN || chp_id_parse(r.body, CHP_ID_STR_LEN, m->signer)))
        rc = cli_fail(1, _("malformed reply from chapard"));
    chp_ctl_answer_free(&r);
    if (!rc && chp_manifest_write_body(m, &body) != CHP_OK)
        rc = cli_fail(1, _("cannot write the manifest"));
    const char *args[1] = {(const char *)body.p};
    size_t lens[1] = {body.len};
    if (!rc && !(rc = cli_call(c, &r, "app-sign", 1, args, lens)) && !r.ok)
        rc = cli_reply_error(&r);
    if (!rc && chp_buf_put(out, r.body, r.len) != CHP_OK)
        rc = cli_fail(1, _("out of memory"));
    chp_ctl_answer_free(&r);
    chp_buf_free(&body);
    chp_ctl_destroy(&c);
    return rc;
}

/* No daemon runs: the identity is opened here (key-file mode needs
 * nothing; a passphrase comes from passfile or the terminal), signs, and
 * is wiped at once. 0 or an exit code after a line. */
static int sign_here(const char *home, const char *passfile, chp_manifest *m, chp_buf *out)
{
    int need = chp_account_needs_passphrase(home);
    if (need == CHP_E_NOT_FOUND)
        return cli_fail(1, _("no identity in %s to sign with: run chapar init"), home);
    if (need < 0)
        return cli_fail(1, "%s/%s: %s", home, CHP_ACCOUNT_FILE, chp_strerror(need));
    char pass[CHP_PASS_MAX + 1];
    size_t plen = 0;
    int rc = need ? cli_get_passphrase(passfile, "passphrase (to sign the manifest): ", 0, pass,
                                       sizeof pass, &plen, "--passphrase-file F")
                  : 0;
    chp_identity *id = NULL;
    if (!rc && (rc = chp_account_load(home, need ? pass : NULL, plen, &id)) != CHP_OK)
        rc = cli_fail(1, _("cannot open the identity in %s: %s"), home,
                      rc == CHP_E_PASSPHRASE ? "wrong passphrase" : chp_strerror(rc));
    chp_memzero(pass, sizeof pass);
    chp_buf msg = {0};
    uint8_t sig[64];
    char hex[129];
    if (!rc) {
        memcpy(m->signer, chp_identity_pk(id), 32);
        if (chp_manifest_write_body(m, out) != CHP_OK ||
            chp_manifest_sig_msg(out->p, out->len, &msg) != CHP_OK)
            rc = cli_fail(1, _("out of memory"));
    }
    if (!rc) {
        chp_identity_sign(id, msg.p, msg.len, sig);
        chp_hex_encode(sig, 64, hex);
        if (chp_buf_printf(out, "# signature %s\n", hex) != CHP_OK)
            rc = cli_fail(1, _("out of memory"));
    }
    chp_buf_free(&msg);
    chp_identity_destroy(&id);
    return rc;
}

static int sign_manifest(struct share *s, const char *home, const char *passfile)
{
    chp_manifest m = {.nfiles = NFILES};
    for (int i = 0; i < NFILES; i++) {
        memcpy(m.files[i].name, s->f[i].name, sizeof m.files[i].name);
        memcpy(m.files[i].sha256, s->f[i].sha, 32);
    }
    int rc = chp_ctl_daemon_running(home) ? sign_by_daemon(home, &m, &s->manifest)
                                          : sign_here(home, passfile, &m, &s->manifest);
    chp_id_encode(m.signer, s->id);
    snprintf(s->manifest_name, sizeof s->manifest_name, "chapar-%s-MANIFEST.txt", CHP_VERSION);
    return rc;
}

/* ---- serving ---- */

static void serve(void *ctx, const char *path, chp_httpd_reply *r)
{
    struct share *s = ctx;
    if (!strcmp(path, "/") || !strcmp(path, "/index.html")) {
        *r = (chp_httpd_reply){.status = 200,
                               .type = "text/html; charset=utf-8",
                               .fd = -1,
                               .body = s->page.p,
                               .len = s->page.len};
        return;
    }
    if (path[0] != '/')
        return;
    if (!strcmp(path + 1, s->manifest_name)) {
        *r = (chp_httpd_reply){.status = 200,
                               .type = "text/plain; charset=utf-8",
                               .fd = -1,
                               .body = s->manifest.p,
                               .len = s->manifest.len};
        return;
    }
    for (int i = 0; i < NFILES; i++) {
        struct shared *f = &s->f[i];
        if (strcmp(path + 1, f->name))
            continue;
        struct stat st;
        int fd = openat(s->dirfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) || st.st_size != f->st.st_size ||
            st.st_mtim.tv_sec != f->st.st_mtim.tv_sec || st.st_ino != f->st.st_ino) {
            if (fd >= 0)
                close(fd);
            *r = (chp_httpd_reply){
                .status = 410, .fd = -1, .body = "changed since shared\n", .len = 21};
            return;
        }
        *r = (chp_httpd_reply){.status = 200,
                               .type = i == F_DEB ? "application/vnd.debian.binary-package"
                                                  : "application/octet-stream",
                               .fd = fd,
                               .size = f->size};
        return;
    }
}

/* A LAN address of this machine (the first IPv4 of an interface that is
 * up and not loopback), else 127.0.0.1. */
static void lan_address(char *out, size_t cap)
{
    struct ifaddrs *ifs = NULL;
    snprintf(out, cap, "127.0.0.1");
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
            !(i->ifa_flags & IFF_LOOPBACK)) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, (socklen_t)cap);
            break;
        }
    freeifaddrs(ifs);
}

static int run_server(struct share *s, const char *listen, long idle_s)
{
    chp_httpd_opts o = {.listen = listen,
                        .max_conns = SHARE_CONNS,
                        .per_ip = SHARE_PER_IP,
                        .idle_s = SHARE_TIMEOUT,
                        .header_s = SHARE_HEADER_S,
                        .header_bytes = SHARE_HEADERS,
                        .fn = serve,
                        .ctx = s};
    chp_httpd *h = NULL;
    char err[400];
    if (chp_httpd_new(&o, &h, err, sizeof err) != CHP_OK)
        return cli_fail(1, "%s", err);
    printf("http://%s/\n", chp_httpd_addr(h));
    fflush(stdout);
    fprintf(stderr, _("chapar: sharing %s and %s from %s, signed by %s; Ctrl-C stops%s\n"),
            s->f[F_DEB].name, s->f[F_SRC].name, s->dir, s->id,
            idle_s ? " (or no request for a while)" : "");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    uint64_t seen = 0, last = chp_mono_ms();
    while (!stop_flag) {
        long t = chp_httpd_timeout_ms(h);
        struct pollfd p = {.fd = chp_httpd_fd(h), .events = POLLIN};
        poll(&p, 1, t < 0 || t > 1000 ? 1000 : (int)t);
        chp_httpd_run(h);
        uint64_t now = chp_mono_ms();
        if (chp_httpd_requests(h) != seen || chp_httpd_open(h)) {
            seen = chp_httpd_requests(h);
            last = now;
        }
        if (idle_s && now - last >= (uint64_t)idle_s * 1000) {
            fprintf(stderr, _("chapar: share-app stopped: no request for %ld s\n"), idle_s);
            break;
        }
    }
    chp_httpd_destroy(&h);
    return 0;
}

int cli_cmd_share_app(const char *home, int argc, char **argv)
{
    static const char use[] = "share-app [--listen HOST:PORT] [--files DIR] [--idle SECONDS] "
                              "[--passphrase-file F]";
    const char *listen = NULL, *files = NULL, *idle = NULL, *passfile = NULL;
    char *pos[1], dflt[80];
    int npos;
    cli_opt o[] = {{"--listen", &listen, NULL},
                   {"--files", &files, NULL},
                   {"--idle", &idle, NULL},
                   {"--passphrase-file", &passfile, NULL}};
    int rc = cli_parse_opts(argc, argv, o, 4, pos, 0, &npos, use);
    if (rc)
        return rc;
    char *end = NULL;
    long idle_s = idle ? strtol(idle, &end, 10) : SHARE_IDLE_S;
    if (idle && (!*idle || *end || idle_s < 0 || idle_s > 7 * 86400))
        return cli_fail(2, _("--idle %s: expected seconds from 0 (never) to 604800"), idle);
    char host[64];
    uint16_t port;
    if (listen && chp_httpd_parse_addr(listen, host, sizeof host, &port) != CHP_OK)
        return cli_fail(2, _("--listen %s: expected HOST:PORT with a numeric host (port 0 = any)"),
                        listen);
    if (!listen) {
        lan_address(host, sizeof host);
        snprintf(dflt, sizeof dflt, "%s:%d", host, SHARE_PORT);
        listen = dflt;
    }
    struct share s = {.dirfd = -1};
    rc = open_dir(&s, files);
    if (!rc)
        rc = sign_manifest(&s, home, passfile);
    if (!rc)
        rc = cli_share_page(&s.page, s.id, s.f[F_DEB].name, s.f[F_DEB].size, s.f[F_SRC].name,
                            s.f[F_SRC].size, s.manifest_name, DEB_ARCH);
    if (!rc)
        rc = run_server(&s, listen, idle_s);
    if (s.dirfd >= 0)
        close(s.dirfd);
    chp_buf_free(&s.manifest);
    chp_buf_free(&s.page);
    return rc;
}
