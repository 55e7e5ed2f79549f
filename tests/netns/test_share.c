/* test_share.c - `chapar share-app` as a person nearby meets it: headless
 * Chromium loads the page from a node in a network namespace (on
 * loopback, said so, where namespaces cannot be made), a screenshot is
 * taken, the DOM is right to left Persian with the sharer's ID, the
 * .deb and tarball are downloaded through the page's links and match the
 * signed manifest; verify-app accepts them and refuses a tampered file
 * and a manifest signed by another ID. Hostile clients (climbing paths,
 * 1 MB of headers, 1000 connections, slowloris) are refused or bounded
 * while the server and the node keep answering. */
#include "tests/integration/harness.h"
#include "tests/integration/hhttp.h"
#include "proto/crypto.h"
#include "proto/id.h"
#include "proto/identity.h"
#include "proto/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#define FLOOD      1000
#define SHARE_CONN 64 /* share-app's connection limit (chapar_share.c) */
#define PER_IP     8
#define HEADER_S   10 /* its deadline for a request's headers */

/* The network the page is served on: a namespace, or loopback. */
static struct net {
    int ns;
    char name[32], veth[16];
    char server[32], client[32], other[32]; /* server's address; two client sources */
} net;

/* A namespace with a veth pair to this one: the server at .2 inside, the
 * clients at .1 and .3 outside. Loopback where that is impossible. */
static void net_up(void)
{
    int v = (int)(getpid() % 10000);
    snprintf(net.name, sizeof net.name, "chshare%d", v);
    snprintf(net.veth, sizeof net.veth, "shr%d", v);
    /* CHP_TEST_NO_NETNS=1 tries the loopback way where namespaces work too */
    net.ns = !getenv("CHP_TEST_NO_NETNS") && getuid() == 0 &&
             h_sh("command -v ip >/dev/null") == 0 &&
             h_sh("ip netns add %s 2>/dev/null", net.name) == 0;
    if (!net.ns) {
        print_message("network namespaces cannot be created here (needs root and iproute2): the "
                      "page is served on 127.0.0.1 instead\n");
        snprintf(net.server, sizeof net.server, "127.0.0.1");
        snprintf(net.client, sizeof net.client, "127.0.0.1");
        snprintf(net.other, sizeof net.other, "127.0.0.2");
        return;
    }
    int n = 80 + v % 100;
    assert_int_equal(
        h_sh("ip link add %sa type veth peer name %sb && ip link set %sb netns %s && "
             "ip addr add 10.79.%d.1/24 dev %sa && ip addr add 10.79.%d.3/24 dev %sa && "
             "ip link set %sa up && ip -n %s addr add 10.79.%d.2/24 dev %sb && "
             "ip -n %s link set %sb up && ip -n %s link set lo up",
             net.veth, net.veth, net.veth, net.name, n, net.veth, n, net.veth, net.veth, net.name,
             n, net.veth, net.name, net.veth, net.name),
        0);
    snprintf(net.server, sizeof net.server, "10.79.%d.2", n);
    snprintf(net.client, sizeof net.client, "10.79.%d.1", n);
    snprintf(net.other, sizeof net.other, "10.79.%d.3", n);
}

static int teardown(void **state)
{
    if (net.ns)
        h_sh("ip link del %sa 2>/dev/null; ip netns del %s 2>/dev/null", net.veth, net.name);
    memset(&net, 0, sizeof net);
    return h_teardown(state);
}

/* argv prefixed with `ip netns exec NAME` when serving from the namespace. */
static void in_net(const char **argv, const char *const *cmd, char *ip, size_t cap)
{
    size_t k = 0;
    if (net.ns) {
        argv[k++] = h_which("ip", ip, cap);
        argv[k++] = "netns";
        argv[k++] = "exec";
        argv[k++] = net.name;
    }
    for (size_t i = 0; cmd[i]; i++)
        argv[k++] = cmd[i];
    argv[k] = NULL;
}

/* Sara's node: an identity, chapard listening in the namespace. */
static h_node *start_node(h_ctx *h, char id[H_ID_LEN + 1])
{
    h_node *n = h_node_get(h, "sara");
    h_init(h, n, "sara", id, "--no-passphrase", H_END);
    char listen[64], ip[256], log[64];
    snprintf(listen, sizeof listen, "%s:0", net.server);
    const char *cmd[] = {h_bin("CHAPARD"), "--home",         n->home, "--listen",
                         listen,           "--no-discovery", NULL};
    const char *argv[16];
    in_net(argv, cmd, ip, sizeof ip);
    snprintf(log, sizeof log, "%s.log", n->name);
    n->pid = h_spawn_aux(h, log, argv);
    for (size_t i = 0; i < h->naux; i++) /* the node's slot owns it now (teardown kills it) */
        if (h->aux[i] == n->pid)
            h->aux[i] = 0;
    h_await_up(h, n);
    return n;
}

/* dist/ with a .deb for this architecture and a tarball of made-up bytes. */
static void make_dist(h_ctx *h, char *deb, char *src, size_t cap)
{
    char dir[300], *arch = NULL;
    assert_int_equal(h_run(h, &arch, NULL, "/usr/bin/dpkg", "--print-architecture", H_END), 0);
    arch[strcspn(arch, "\n")] = '\0';
    h_path(h, dir, sizeof dir, "dist");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(deb, cap, "chapar_0.1.0_%s.deb", arch);
    snprintf(src, cap, "chapar-0.1.0.tar.xz");
    static uint8_t bytes[300000];
    char p[600];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 131 + (i >> 9));
    snprintf(p, sizeof p, "dist/%s", deb);
    h_write_file(h, p, bytes, sizeof bytes);
    snprintf(p, sizeof p, "dist/%s", src);
    h_write_file(h, p, bytes, sizeof bytes / 2);
    free(arch);
}

/* share-app in the namespace: its pid; its URL (first stdout line). */
struct server {
    pid_t pid;
    char url[128], host[64], out[300], err[300];
    uint16_t port;
};

static void start_share(h_ctx *h, const h_node *n, struct server *s)
{
    char listen[64], ip[256], dist[300], script[2048];
    snprintf(listen, sizeof listen, "%s:0", net.server);
    h_path(h, s->out, sizeof s->out, "share.out");
    h_path(h, s->err, sizeof s->err, "share.err");
    h_path(h, dist, sizeof dist, "dist");
    const char *cmd[] = {h_bin("CHAPAR"), "--home", n->home,  "share-app", "--listen", listen,
                         "--files",       dist,     "--idle", "0",         NULL};
    const char *argv[20];
    in_net(argv, cmd, ip, sizeof ip);
    /* stdout and stderr apart: the URL must be stdout's first line */
    size_t o = (size_t)snprintf(script, sizeof script, "exec");
    for (size_t i = 0; argv[i]; i++)
        o += (size_t)snprintf(script + o, sizeof script - o, " '%s'", argv[i]);
    snprintf(script + o, sizeof script - o, " >'%s' 2>'%s'", s->out, s->err);
    const char *shv[] = {"/bin/sh", "-c", script, NULL};
    s->pid = h_spawn_aux(h, "share.log", shv);
    uint64_t end = chp_mono_ms() + 10000;
    size_t len = 0;
    char *text = NULL;
    while (chp_mono_ms() < end) {
        free(text);
        text = (char *)h_read_file(s->out, &len);
        if (text && strchr(text, '\n'))
            break;
        h_sleep_ms(25);
    }
    if (!text || !strchr(text, '\n'))
        fail_msg("share-app printed no URL; stderr: %s", h_read_file(s->err, &len));
    size_t l = strcspn(text, "\n");
    assert_true(l < sizeof s->url);
    memcpy(s->url, text, l);
    s->url[l] = '\0';
    free(text);
    assert_int_equal(hh_parse_url(s->url, s->host, sizeof s->host, &s->port), 0);
    assert_string_equal(s->host, net.server);
}

/* Headless Chromium with a profile of its own in the test dir. */
static int chromium(h_ctx *h, char **out, const char *what, const char *url)
{
    char bin[256], prof[300], flag[340];
    h_path(h, prof, sizeof prof, "chromium");
    snprintf(flag, sizeof flag, "--user-data-dir=%s", prof);
    const char *argv[] = {h_which("chromium", bin, sizeof bin),
                          "--headless=new",
                          "--no-sandbox",
                          "--disable-gpu",
                          "--no-first-run",
                          "--hide-scrollbars",
                          "--window-size=900,1300",
                          flag,
                          what,
                          url,
                          NULL};
    char *err = NULL;
    int rc = h_runv(h, out, &err, argv);
    if (rc != 0)
        print_message("chromium %s: exit %d: %s\n", what, rc, err);
    free(err);
    return rc;
}

/* The href values of the page's links, in order (at most max). */
static size_t hrefs(const char *dom, char (*out)[200], size_t max)
{
    size_t n = 0;
    for (const char *p = dom; n < max && (p = strstr(p, "href=\"")); n++) {
        p += 6;
        size_t l = strcspn(p, "\"");
        assert_true(l < 200);
        memcpy(out[n], p, l);
        out[n][l] = '\0';
        p += l;
    }
    return n;
}

static void download(h_ctx *h, const struct server *s, const char *name, const char *dir)
{
    char path[300], *body = NULL, rel[400];
    size_t len = 0;
    snprintf(path, sizeof path, "/%s", name);
    assert_int_equal(hh_get_from(net.client, s->host, s->port, path, NULL, &body, &len), 200);
    snprintf(rel, sizeof rel, "%s/%s", dir, name);
    h_write_file(h, rel, body, len);
    free(body);
}

/* verify-app ARGS: its exit code; its stderr in *err (caller frees). */
static int verify(h_ctx *h, char **out, char **err, const char *m, const char *f1, const char *f2,
                  const char *from)
{
    const char *argv[] = {h_bin("CHAPAR"), "verify-app", m, f1, f2, "--from", from, NULL};
    return h_runv(h, out, err, argv);
}

static char *path_of(h_ctx *h, const char *dir, const char *name)
{
    static char p[4][600];
    static int k;
    char rel[300];
    if (snprintf(rel, sizeof rel, "%s/%s", dir, name) >= (int)sizeof rel)
        fail_msg("path too long: %s/%s", dir, name);
    return h_path(h, p[k++ % 4], sizeof p[0], rel);
}

/* One line on stderr that names what failed. */
static void one_line_naming(const char *err, const char *what)
{
    if (!strstr(err, what) || h_lines(err) != 1)
        fail_msg("expected one line naming %s, got: %s", what, err);
}

/* A manifest of deb and src (from dir) signed by the identity of seed. */
static void forge(h_ctx *h, const char *dir, const char *deb, const char *src, uint8_t seed,
                  const char *out_name, char other_id[H_ID_LEN + 1])
{
    uint8_t s[32];
    memset(s, seed, sizeof s);
    chp_identity *id = NULL;
    assert_int_equal(chp_identity_from_seed(s, &id), CHP_OK);
    chp_manifest m = {.nfiles = 2};
    memcpy(m.signer, chp_identity_pk(id), 32);
    const char *names[2] = {deb, src};
    for (int i = 0; i < 2; i++) {
        size_t len;
        uint8_t *b = h_read_file(path_of(h, dir, names[i]), &len);
        snprintf(m.files[i].name, sizeof m.files[i].name, "%s", names[i]);
        chp_sha256(m.files[i].sha256, b, len);
        free(b);
    }
    chp_buf body = {0}, msg = {0};
    assert_int_equal(chp_manifest_write_body(&m, &body), CHP_OK);
    assert_int_equal(chp_manifest_sig_msg(body.p, body.len, &msg), CHP_OK);
    uint8_t sig[64];
    char line[160];
    chp_identity_sign(id, msg.p, msg.len, sig);
    int k = snprintf(line, sizeof line, "# signature ");
    for (int i = 0; i < 64; i++)
        k += snprintf(line + k, sizeof line - (size_t)k, "%02x", sig[i]);
    snprintf(line + k, sizeof line - (size_t)k, "\n");
    assert_int_equal(chp_buf_put(&body, line, strlen(line)), CHP_OK);
    char rel[300];
    snprintf(rel, sizeof rel, "%s/%s", dir, out_name);
    h_write_file(h, rel, body.p, body.len);
    chp_id_encode(chp_identity_pk(id), other_id);
    chp_buf_free(&body);
    chp_buf_free(&msg);
    chp_identity_destroy(&id);
}

static void check_png(const char *path)
{
    size_t len;
    uint8_t *png = h_read_file(path, &len);
    assert_non_null(png);
    assert_true(len > 20000); /* a page of text, not a blank one (a few hundred bytes) */
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    uint32_t w = (uint32_t)png[16] << 24 | (uint32_t)png[17] << 16 | png[18] << 8 | png[19];
    assert_int_equal(w, 900);
    free(png);
}

static void test_page_in_browser(void **state)
{
    h_ctx *h = *state;
    char id[H_ID_LEN + 1], deb[128], src[128], dir[300];
    net_up();
    h_node *n = start_node(h, id);
    make_dist(h, deb, src, sizeof deb);
    struct server s;
    start_share(h, n, &s);
    h_note(h, "page at %s", s.url);

    char *dom = NULL, shot[300], flag[340];
    snprintf(flag, sizeof flag, "--screenshot=%s", h_path(h, shot, sizeof shot, "page.png"));
    assert_int_equal(chromium(h, NULL, flag, s.url), 0);
    check_png(shot);
    assert_int_equal(chromium(h, &dom, "--dump-dom", s.url), 0);
    assert_non_null(strstr(dom, "<html lang=\"fa\" dir=\"rtl\">"));
    assert_non_null(strstr(dom, "چاپار: پیام‌رسان بدون اینترنت"));
    char sharer[128];
    snprintf(sharer, sizeof sharer, "id=\"sharer\">%s<", id);
    assert_non_null(strstr(dom, sharer));

    char links[8][200];
    size_t nl = hrefs(dom, links, 8);
    assert_true(nl >= 3);
    const char *manifest = NULL;
    int have_deb = 0, have_src = 0;
    for (size_t i = 0; i < nl; i++) {
        assert_null(strstr(links[i], "://")); /* relative, as the contract says */
        assert_true(links[i][0] != '/');
        have_deb |= !strcmp(links[i], deb);
        have_src |= !strcmp(links[i], src);
        if (strstr(links[i], "MANIFEST"))
            manifest = links[i];
    }
    assert_true(have_deb && have_src && manifest);
    h_path(h, dir, sizeof dir, "dl");
    assert_int_equal(mkdir(dir, 0700), 0);
    download(h, &s, deb, "dl");
    download(h, &s, src, "dl");
    download(h, &s, manifest, "dl");

    /* the sums in the signed manifest are those of the files downloaded */
    size_t ml, len;
    uint8_t *mb = h_read_file(path_of(h, "dl", manifest), &ml), sum[32], pk[32];
    chp_manifest m;
    assert_int_equal(chp_manifest_parse(mb, ml, 1, &m), CHP_OK);
    assert_int_equal(chp_manifest_verify(mb, ml, &m), CHP_OK);
    assert_int_equal(chp_id_parse(id, H_ID_LEN, pk), CHP_OK);
    assert_memory_equal(m.signer, pk, 32);
    const char *both[2] = {deb, src};
    for (int i = 0; i < 2; i++) {
        uint8_t *b = h_read_file(path_of(h, "dl", both[i]), &len);
        chp_sha256(sum, b, len);
        assert_memory_equal(chp_manifest_find(&m, both[i])->sha256, sum, 32);
        free(b);
    }
    free(mb);

    char *out = NULL, *err = NULL;
    char mp[400], dp[400], sp[400];
    snprintf(mp, sizeof mp, "%s", path_of(h, "dl", manifest));
    snprintf(dp, sizeof dp, "%s", path_of(h, "dl", deb));
    snprintf(sp, sizeof sp, "%s", path_of(h, "dl", src));
    assert_int_equal(verify(h, &out, &err, mp, dp, sp, id), 0);
    assert_non_null(strstr(out, "verified: 2 files"));
    free(out);
    free(err);
    /* a download the browser renamed is still the signed bytes; a file
     * whose sum is not listed is named */
    uint8_t *copy = h_read_file(dp, &len);
    char *renamed = h_write_file(h, "dl/chapar(1).deb", copy, len);
    char *stray = h_write_file(h, "dl/stray.bin", copy, len / 3); /* (half is the tarball) */
    free(copy);
    assert_int_equal(verify(h, &out, &err, mp, renamed, sp, id), 0);
    free(out);
    free(err);
    assert_int_equal(verify(h, &out, &err, mp, stray, sp, id), 1);
    one_line_naming(err, stray);
    assert_non_null(strstr(err, "not in"));
    free(out);
    free(err);

    /* a tampered .deb: one byte changed */
    uint8_t *b = h_read_file(dp, &len);
    b[len / 2] ^= 1;
    h_write_file(h, "dl/tampered.tmp", b, len);
    free(b);
    assert_int_equal(rename(path_of(h, "dl", "tampered.tmp"), dp) == 0 ? 0 : errno, 0);
    assert_int_equal(verify(h, &out, &err, mp, dp, sp, id), 1);
    one_line_naming(err, dp);
    free(out);
    free(err);
    download(h, &s, deb, "dl"); /* the true one again */

    /* a manifest signed by another ID, and the true one checked against it */
    char other[H_ID_LEN + 1];
    forge(h, "dl", deb, src, 0x5a, "forged-MANIFEST.txt", other);
    assert_int_equal(verify(h, &out, &err, path_of(h, "dl", "forged-MANIFEST.txt"), dp, sp, id), 1);
    one_line_naming(err, other);
    free(out);
    free(err);
    assert_int_equal(verify(h, &out, &err, mp, dp, sp, other), 1);
    one_line_naming(err, "signature");
    free(out);
    free(err);
    /* the true manifest with one sum changed: its signature fails */
    mb = h_read_file(mp, &ml);
    char *line = strstr((char *)mb, "\n# signer ");
    line = strchr(line + 1, '\n') + 1;
    line[0] = line[0] == '0' ? '1' : '0';
    h_write_file(h, "dl/altered-MANIFEST.txt", mb, ml);
    free(mb);
    assert_int_equal(verify(h, &out, &err, path_of(h, "dl", "altered-MANIFEST.txt"), dp, sp, id),
                     1);
    one_line_naming(err, "bad signature");
    free(out);
    free(err);

    /* no .deb to share: one line saying what to do */
    char empty[300];
    assert_int_equal(mkdir(h_path(h, empty, sizeof empty, "empty"), 0700), 0);
    assert_int_equal(
        h_chapar(h, n, &out, &err, "share-app", "--listen", "127.0.0.1:0", "--files", empty, H_END),
        1);
    one_line_naming(err, "make deb");
    assert_string_equal(out, "");
    free(out);
    free(err);

    /* Ctrl-C stops it cleanly */
    assert_int_equal(kill(s.pid, SIGINT), 0);
    int st = h_reap(h, s.pid, 5000);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* with no chapard running, share-app signs with the identity itself;
     * --idle ends it */
    h_stop(h, n);
    char dist[300], signed_by[128];
    h_path(h, dist, sizeof dist, "dist");
    assert_int_equal(h_chapar(h, n, &out, &err, "share-app", "--listen", "127.0.0.1:0", "--files",
                              dist, "--idle", "1", H_END),
                     0);
    assert_memory_equal(out, "http://127.0.0.1:", 17);
    snprintf(signed_by, sizeof signed_by, "signed by %s", id);
    assert_non_null(strstr(err, signed_by));
    assert_non_null(strstr(err, "no request for 1 s"));
    free(out);
    free(err);
    free(dom);
}

/* A page request from the other client address answers 200. */
static void page_answers(const struct server *s, const char *from)
{
    char *body = NULL;
    assert_int_equal(hh_get_from(from, s->host, s->port, "/", NULL, &body, NULL), 200);
    assert_non_null(strstr(body, "dir=\"rtl\""));
    free(body);
}

static int nonblocking_connect(const char *src, const struct server *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s->port)}, b = a;
    inet_pton(AF_INET, s->host, &a.sin_addr);
    b.sin_port = 0;
    inet_pton(AF_INET, src, &b.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&b, sizeof b) != 0 ||
        (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS))
        fail_msg("connect: %s", strerror(errno));
    return fd;
}

/* How many of fds the server still holds open: connected, not closed. */
static int held(const int *fds, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN | POLLOUT};
        int e = 0;
        socklen_t el = sizeof e;
        char c;
        if (poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) && !(p.revents & (POLLHUP | POLLERR)) &&
            getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &e, &el) == 0 && !e &&
            !((p.revents & POLLIN) && recv(fds[i], &c, 1, MSG_PEEK) <= 0))
            k++;
    }
    return k;
}

/* Sockets the process pid holds (its listening one included). */
static int sockets_of(pid_t pid)
{
    char dir[64], link[400], target[128];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    struct dirent *e;
    int k = 0;
    while (d && (e = readdir(d))) {
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t l = readlink(link, target, sizeof target - 1);
        if (l > 0 && (target[l] = '\0', !strncmp(target, "socket:", 7)))
            k++;
    }
    if (d)
        closedir(d);
    return k;
}

static void flood(h_ctx *h, const h_node *n, const struct server *s)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = FLOOD + 200;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int count = (int)rl.rlim_cur - 100 < FLOOD ? (int)rl.rlim_cur - 100 : FLOOD;
    if (count < FLOOD)
        print_message("ulimit -n allows %d connections, not %d\n", count, FLOOD);
    static int fds[FLOOD];
    for (int i = 0; i < count; i++)
        fds[i] = nonblocking_connect(net.client, s);
    int most = 0;
    for (int i = 0; i < 15; i++) { /* what the server holds, while they come in */
        int k = sockets_of(s->pid);
        most = k > most ? k : most;
        h_sleep_ms(100);
    }
    int k = held(fds, count);
    print_message("flood: the server held %d sockets at most; %d of %d connections still look "
                  "open to the client (the kernel's queues)\n",
                  most, k, count);
    /* its listening socket, one address's share, one earlier request still closing */
    assert_true(most >= 1 && most <= PER_IP + 2);
    page_answers(s, net.other); /* another address is served meanwhile */
    assert_true(h_status(h, n, "uptime") >= 0);
    for (int i = 0; i < count; i++)
        close(fds[i]);
    h_sleep_ms(200);
    page_answers(s, net.client);
}

/* Clients that send a header line a second: cut after HEADER_S. */
static void slowloris(const struct server *s)
{
    enum { SLOW = 6 };
    int fds[SLOW], open_ = SLOW;
    uint64_t t0 = chp_mono_ms(), closed_at = 0;
    for (int i = 0; i < SLOW; i++) {
        fds[i] = hh_connect_from(net.client, s->host, s->port);
        assert_true(fds[i] >= 0);
        assert_true(send(fds[i], "GET / HTTP/1.1\r\nHost: x\r\n", 25, MSG_NOSIGNAL) == 25);
    }
    while (open_ && chp_mono_ms() - t0 < (HEADER_S + 6) * 1000u) {
        h_sleep_ms(1000);
        for (int i = 0; i < SLOW; i++) {
            if (fds[i] < 0)
                continue;
            char c;
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (send(fds[i], "X-a: b\r\n", 8, MSG_NOSIGNAL) != 8 ||
                (poll(&p, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0)) {
                close(fds[i]);
                fds[i] = -1;
                open_--;
                closed_at = chp_mono_ms() - t0;
            }
        }
        if (chp_mono_ms() - t0 < 3000)
            page_answers(s, net.other); /* served while they trickle */
    }
    print_message("slowloris: %d of %d still open; the last cut after %llu ms\n", open_, SLOW,
                  (unsigned long long)closed_at);
    for (int i = 0; i < SLOW; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    assert_int_equal(open_, 0);
    assert_true(closed_at >= (HEADER_S - 1) * 1000u);
}

static void test_hostile_clients(void **state)
{
    h_ctx *h = *state;
    char id[H_ID_LEN + 1], deb[128], src[128];
    net_up();
    h_node *n = start_node(h, id);
    make_dist(h, deb, src, sizeof deb);
    struct server s;
    start_share(h, n, &s);

    static const char *const climb[] = {"/../../../../etc/passwd",
                                        "/%2e%2e/%2e%2e/etc/passwd",
                                        "/..%2f..%2fetc%2fpasswd",
                                        "//etc/passwd",
                                        "/dist/../../etc/passwd",
                                        "/./chapar-0.1.0.tar.xz",
                                        "/chapar-0.1.0.tar.xz/..",
                                        "/identity",
                                        "/chapard.conf"};
    for (size_t i = 0; i < sizeof climb / sizeof *climb; i++) {
        char *body = NULL;
        int st = hh_get_from(net.client, s.host, s.port, climb[i], NULL, &body, NULL);
        if (st != 404 && st != 400)
            fail_msg("%s: status %d", climb[i], st);
        assert_null(strstr(body, "root:"));
        free(body);
    }
    static const char post[] = "PUT /x HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(hh_request(s.host, s.port, post, sizeof post - 1, NULL, NULL, NULL), 405);

    size_t big = 1 << 20;
    char *req = malloc(big + 64);
    int k = snprintf(req, 64, "GET / HTTP/1.0\r\nX-Big: ");
    memset(req + k, 'a', big);
    memcpy(req + k + big, "\r\n\r\n", 4);
    int st = hh_request(s.host, s.port, req, (size_t)k + big + 4, NULL, NULL, NULL);
    print_message("1 MB of headers: status %d\n", st);
    assert_true(st == 0 || st == 431 || st == 413);
    free(req);
    page_answers(&s, net.client);

    flood(h, n, &s);
    slowloris(&s);
    assert_int_equal(kill(s.pid, 0), 0); /* still serving */
    page_answers(&s, net.client);
    assert_int_equal(kill(s.pid, SIGTERM), 0);
    st = h_reap(h, s.pid, 5000);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(h_status(h, n, "uptime") >= 0); /* the node never noticed */
}

int main(void)
{
    assert_int_equal(chp_crypto_init(), CHP_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_page_in_browser, h_setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_clients, h_setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
