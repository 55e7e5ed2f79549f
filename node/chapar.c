/* chapar.c - the scriptable command-line client of a running chapard,
 * over its control socket (docs/CONTROL.md). */
#include "addr.h"
#include "crypto.h"
#include "home.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#define VERSION          "0.1.0"
#define REPLY_TIMEOUT_MS 5000

static const char *prog = "chapar";

static void usage(FILE *f)
{
    fprintf(f, "usage: chapar [--home DIR] COMMAND [ARGS]\n"
               "Talks to the chapard of DIR (default $CHAPAR_HOME, $XDG_DATA_HOME/chapar,\n"
               "~/.local/share/chapar).\n"
               "\n"
               "commands:\n"
               "  status                 node counters as `key: value` lines\n"
               "  address                this node's address, for others' `peer add`\n"
               "  peer add ADDRESS       connect to a node and remember it\n"
               "  peer list              neighbours: key, state, direction, address,\n"
               "                         envelopes received, sent (tab-separated)\n"
               "  peer remove ADDRESS    disconnect and forget\n"
               "  debug publish FILE     inject a raw envelope (for tests)\n"
               "\n"
               "  --help, --version      COMMAND --help describes one command\n"
               "Exit 0 on success; otherwise 1 (or 2 for bad usage) with one line on stderr.\n");
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* Whether something accepts connections on the control socket: a socket
 * file left by a killed daemon refuses at once, instead of making us wait
 * for a reply that never comes. */
static int daemon_listening(const char *path)
{
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof sa.sun_path)
        return 1; /* cannot tell: let ZeroMQ try */
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return 1;
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Sends [cmd, arg?] and prints the reply's payload (with a final newline
 * when add_nl). Returns the exit code. */
static int request(const char *home, const char *cmd, const void *arg, size_t arglen, int has_arg,
                   int add_nl)
{
    char sock[4200], ep[4300];
    struct stat st;
    snprintf(sock, sizeof sock, "%s/control", home);
    if (stat(sock, &st) != 0 || !daemon_listening(sock))
        return fail(1, "chapard is not running for %s (start it with: chapard --home %s)", home,
                    home);
    snprintf(ep, sizeof ep, "ipc://%s", sock);
    void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int zero = 0, rc = 1;
    if (!s) {
        rc = fail(1, "cannot create a socket: %s", zmq_strerror(errno));
        goto out;
    }
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(s, ep) != 0 || zmq_send(s, cmd, strlen(cmd), has_arg ? ZMQ_SNDMORE : 0) < 0 ||
        (has_arg && zmq_send(s, arg, arglen, 0) < 0)) {
        rc = fail(1, "cannot reach chapard at %s: %s", sock, zmq_strerror(errno));
        goto out;
    }
    zmq_pollitem_t pi = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&pi, 1, REPLY_TIMEOUT_MS) <= 0) {
        rc =
            fail(1, "chapard is not running for %s (start it with: chapard --home %s)", home, home);
        goto out;
    }
    zmq_msg_t status, body;
    zmq_msg_init(&status);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&status, s, 0) < 0 || !zmq_msg_more(&status) ||
        zmq_msg_recv(&body, s, 0) < 0) {
        rc = fail(1, "malformed reply from chapard");
    } else if (zmq_msg_size(&status) == 2 && !memcmp(zmq_msg_data(&status), "ok", 2)) {
        fwrite(zmq_msg_data(&body), 1, zmq_msg_size(&body), stdout);
        if (add_nl && zmq_msg_size(&body))
            fputc('\n', stdout);
        rc = 0;
    } else {
        fprintf(stderr, "%s: %.*s\n", prog, (int)zmq_msg_size(&body),
                (const char *)zmq_msg_data(&body));
        rc = 1;
    }
    zmq_msg_close(&status);
    zmq_msg_close(&body);
out:
    if (s)
        zmq_close(s);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

static int check_address(const char *a)
{
    chp_addr ad;
    int rc = chp_addr_parse(a, strlen(a), &ad);
    if (rc != CHP_OK)
        return fail(2, "bad address '%s': %s", a, chp_strerror(rc));
    return 0;
}

static int cmd_publish(const char *home, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(1, "%s: %s", path, strerror(errno));
    static uint8_t buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    int big = fgetc(f) != EOF;
    fclose(f);
    if (big)
        return fail(1, "%s: %s", path, "too large for an envelope");
    return request(home, "publish", buf, n, 1, 1);
}

int main(int argc, char **argv)
{
    char home[4096] = "";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("chapar %s\n", VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--home")) {
            if (i + 1 >= argc)
                return fail(2, "--home needs a directory");
            snprintf(home, sizeof home, "%s", argv[++i]);
        } else {
            return fail(2, "unknown option '%s' (try --help)", argv[i]);
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (!home[0] && chp_home_default(home, sizeof home) != 0)
        return fail(2, "no data dir: set --home, CHAPAR_HOME or HOME");
    if (chp_crypto_init() != CHP_OK)
        return fail(1, "libsodium failed to initialise");
    const char *cmd = argv[i++];
    int nargs = argc - i;
    char **args = argv + i;
    if (nargs >= 1 && !strcmp(args[nargs - 1], "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "status") && nargs == 0)
        return request(home, "status", NULL, 0, 0, 0);
    if (!strcmp(cmd, "address") && nargs == 0)
        return request(home, "address", NULL, 0, 0, 1);
    if (!strcmp(cmd, "peer") && nargs >= 1) {
        if (!strcmp(args[0], "list") && nargs == 1)
            return request(home, "peers", NULL, 0, 0, 0);
        if ((!strcmp(args[0], "add") || !strcmp(args[0], "remove")) && nargs == 2) {
            int rc = check_address(args[1]);
            if (rc)
                return rc;
            return request(home, args[0][0] == 'a' ? "peer-add" : "peer-remove", args[1],
                           strlen(args[1]), 1, 1);
        }
        return fail(2, "usage: chapar peer add ADDRESS | peer list | peer remove ADDRESS");
    }
    if (!strcmp(cmd, "debug") && nargs == 2 && !strcmp(args[0], "publish"))
        return cmd_publish(home, args[1]);
    return fail(2, "unknown command or wrong arguments: '%s' (try --help)", cmd);
}
