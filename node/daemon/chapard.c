/* chapard.c - the Chapar node daemon: flags and config file (config.c),
 * the data dir, the identity, then the node's event loop until SIGTERM,
 * SIGINT or `chapar stop`. */
#include "node/msg/account.h"
#include "proto/crypto.h"
#include "node/common/version.h"
#include "node/common/home.h"
#include "node/common/i18n.h"
#include "node/common/log.h"
#include "node/daemon/config.h"
#include "node/daemon/node.h"
#include "node/daemon/reload.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag, hup_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        hup_flag = 1;
    else
        stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            _("usage: chapard [options]\n"
              "Runs a Chapar node: keeps envelopes until they expire and passes them on to\n"
              "its neighbours over CURVE-encrypted links.\n"
              "\n"
              "  --home DIR          data dir (default $CHAPAR_HOME, $XDG_DATA_HOME/chapar,\n"
              "                      ~/.local/share/chapar); created mode 0700\n"
              "  --listen HOST:PORT  where neighbours connect (default [::]:%d, IPv6 and\n"
              "                      IPv4; 0.0.0.0 where the kernel has no IPv6;\n"
              "                      port 0 picks a free port: see `chapar address`)\n"
              "  --peer ADDRESS      connect to this node (repeatable); ADDRESS is what\n"
              "                      `chapar address` prints there: HOST:PORT/chpn1...\n"
              "  --listen-obfs4 HOST:PORT  also serve links through obfs4proxy (a pluggable\n"
              "                      transport that hides them) there; port 0 = any;\n"
              "                      `chapar address` prints the obfs4:... address\n"
              "  --no-discovery      do not look for nodes on the LAN\n"
              "  --relay             relay mode: headless, no user identity, quota 4G\n"
              "  --quota SIZE        bytes of envelopes to keep, 1M to 64T, e.g. 512M\n"
              "                      (default 256M, relay 4G)\n"
              "  --allow KEY         accept links only from these nodes (repeatable; a\n"
              "                      node key chpn1... or an ADDRESS): a friends-only relay\n"
              "  --spool DIR         import bundles from media that appear in DIR and\n"
              "                      answer them (repeatable; absolute path; spool = DIR)\n"
              "  --log-level LEVEL   error, warn, info (default) or debug\n"
              "  --log-max SIZE      when stderr is DIR/chapard.log (as chapar-tui starts\n"
              "                      chapard), move it to chapard.log.1 at this size\n"
              "                      (default 4M, 4K to 1G)\n"
              "  --metrics HOST:PORT serve the status counters at http://HOST:PORT/metrics\n"
              "                      (Prometheus text); a bare PORT means 127.0.0.1\n"
              "  --summary-every T   a relay logs a summary line every T: minutes, or\n"
              "                      30s, 10m, 1h (default 10m; 0 = never)\n"
              "  --max-file SIZE     largest file sent or accepted (default 16M)\n"
              "  --save-dir DIR      where files from contacts are saved, a directory per\n"
              "                      conversation (default DIR/files; absolute path)\n"
              "  --passphrase-file F unlock the identity with the first line of F\n"
              "                      (else $CHAPAR_PASSPHRASE, else a prompt on the\n"
              "                      terminal, 3 tries, Ctrl-C cancels; with none of\n"
              "                      them chapard starts locked and relays until\n"
              "                      `chapar unlock`)\n"
              "  --help, --version\n"
              "\n"
              "DIR/chapard.conf may hold the same settings, one per line (listen = ...,\n"
              "peer = ..., allow = ..., relay = yes, discovery = no, quota = ...,\n"
              "log-level = ..., metrics = ..., summary-every = ..., spool = ...,\n"
              "listen-obfs4 = ..., transport obfs4 = PATH, max-file = ..., save-dir = ...);\n"
              "flags win over the file; peers and allowed keys from both are used.\n"
              "SIGHUP: read chapard.conf again (peers, allow, quota, log-level, discovery).\n"
              "SIGTERM, SIGINT or `chapar stop`: commit, close, exit 0.\n"),
            7667);
}

#define PROMPT_TRIES 3   /* wrong passphrases typed on a terminal before chapard gives up */
#define EXIT_CANCEL  130 /* Ctrl-C at the prompt, as a shell reports an interrupted program */

/* The passphrase typed on the terminal, PROMPT_TRIES times at most while
 * it is wrong. 0 with *out set (or not: an empty line starts locked), -1
 * after one line on stderr, EXIT_CANCEL when the user pressed Ctrl-C. */
static int prompt_identity(const char *home, struct chp_identity **out)
{
    char pass[CHP_PASS_MAX + 1];
    size_t plen = 0;
    for (int tries = 1;; tries++) {
        int rc = chp_passphrase_read(NULL, _("passphrase: "), 0, pass, sizeof pass, &plen);
        if (rc == CHP_E_IO && errno == ECANCELED) {
            fprintf(stderr, _("chapard: cancelled at the passphrase prompt: not started\n"));
            return EXIT_CANCEL;
        }
        if (rc != CHP_OK) { /* an empty line: start locked, as with no terminal */
            chp_info("identity locked: unlock it with `chapar --home %s unlock`", home);
            return 0;
        }
        rc = chp_account_load(home, pass, plen, out);
        chp_memzero(pass, sizeof pass);
        if (rc == CHP_E_PASSPHRASE && tries < PROMPT_TRIES) {
            fprintf(stderr, _("wrong passphrase, try again (%d more)\n"), PROMPT_TRIES - tries);
            continue;
        }
        if (rc == CHP_E_PASSPHRASE) {
            fprintf(stderr, _("chapard: wrong passphrase %d times for %s/%s: not started\n"),
                    PROMPT_TRIES, home, CHP_ACCOUNT_FILE);
            return -1;
        }
        if (rc != CHP_OK) {
            fprintf(stderr, _("chapard: cannot open the identity in %s: %s\n"), home,
                    chp_strerror(rc));
            return -1;
        }
        return 0;
    }
}

/* Unlocks the user identity of home if there is one: key-file mode needs
 * nothing; passphrase mode takes --passphrase-file, $CHAPAR_PASSPHRASE or
 * the terminal, and starts locked when none is there. A wrong passphrase
 * from a file or the environment is one line and exit 1; on the terminal
 * it is asked again (prompt_identity). 0, -1 or EXIT_CANCEL. */
static int load_identity(const char *home, const char *passfile, struct chp_identity **out)
{
    *out = NULL;
    int need = chp_account_needs_passphrase(home);
    if (need == CHP_E_NOT_FOUND)
        return 0; /* no identity yet: `chapar init` or the TUI creates one */
    if (need < 0) {
        fprintf(stderr, "chapard: %s/%s: %s\n", home, CHP_ACCOUNT_FILE, chp_strerror(need));
        return -1;
    }
    char pass[CHP_PASS_MAX + 1];
    size_t plen = 0;
    const char *env = getenv("CHAPAR_PASSPHRASE");
    int rc = CHP_OK, have = 0;
    if (need && passfile) {
        rc = chp_passphrase_read(passfile, NULL, 0, pass, sizeof pass, &plen);
        if (rc != CHP_OK) {
            fprintf(stderr, _("chapard: cannot read a passphrase from %s\n"), passfile);
            return -1;
        }
        have = 1;
    } else if (need && env && *env) {
        plen = strlen(env) < CHP_PASS_MAX ? strlen(env) : CHP_PASS_MAX;
        memcpy(pass, env, plen);
        pass[plen] = '\0';
        have = 1;
    } else if (need && isatty(0)) {
        return prompt_identity(home, out);
    }
    if (need && !have) {
        chp_info("identity locked: unlock it with `chapar --home %s unlock`", home);
        return 0;
    }
    rc = chp_account_load(home, have ? pass : NULL, plen, out);
    chp_memzero(pass, sizeof pass);
    if (rc == CHP_E_PASSPHRASE) {
        fprintf(stderr, _("chapard: wrong passphrase for %s/%s (or the file is damaged)\n"), home,
                CHP_ACCOUNT_FILE);
        return -1;
    }
    if (rc != CHP_OK) {
        fprintf(stderr, _("chapard: cannot open the identity in %s: %s\n"), home, chp_strerror(rc));
        return -1;
    }
    return 0;
}

/* Whether this kernel speaks IPv6: then the default listen address is
 * [::] (dual-stack: IPv4 peers still connect), so a LAN with no DHCP
 * server, where only link-local IPv6 addresses exist, still works. */
static int have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), zero = 0;
    if (fd < 0)
        return 0;
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_any; /* port 0: only asks whether [::] binds */
    int ok = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) == 0 &&
             bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* ---- the steps of main: each returns GO to carry on, else the exit code ---- */

#define GO -1

/* Flags and DIR/chapard.conf, all checked before the data dir is created
 * or locked; --help and --version end here (exit 0). */
static int configure(chp_config *c, int argc, char **argv)
{
    if (chp_config_parse_args(c, argc, argv) != CHP_OK) {
        fprintf(stderr, "chapard: %s\n", c->err);
        return 2;
    }
    if (c->action == CHP_CONFIG_HELP) {
        usage(stdout);
        return 0;
    }
    if (c->action == CHP_CONFIG_VERSION) {
        printf("chapard %s\n", CHP_VERSION);
        return 0;
    }
    if (c->home_arg)
        snprintf(c->home, sizeof c->home, "%s", c->home_arg);
    else if (chp_home_default(c->home, sizeof c->home) != 0) {
        fprintf(stderr, _("chapard: no data dir: set --home, CHAPAR_HOME or HOME\n"));
        return 2;
    }
    char why[4400];
    if (chp_home_problem(c->home, why, sizeof why)) {
        fprintf(stderr, "chapard: %s\n", why);
        return 1;
    }
    if (chp_config_read_file(c) != CHP_OK ||
        chp_config_finish(c, !c->listen[0] && have_ipv6()) != CHP_OK) {
        fprintf(stderr, "chapard: %s\n", c->err);
        return 2;
    }
    return GO;
}

/* One daemon per data dir: a second one would take the control socket
 * from the first and share its store. The lock lives until exit. */
static int take_home(const chp_config *c)
{
    if (chp_home_make(c->home) != 0) {
        fprintf(stderr, _("chapard: cannot create %s: %s\n"), c->home, strerror(errno));
        return 1;
    }
    if (chp_home_lock(c->home) < 0) {
        if (errno == EWOULDBLOCK)
            fprintf(stderr, _("chapard: a chapard is already running for %s\n"), c->home);
        else
            fprintf(stderr, _("chapard: cannot lock %s/chapard.lock: %s\n"), c->home,
                    strerror(errno));
        return 1;
    }
    return GO;
}

/* The log, libsodium, the signals, the identity, then the node. */
static int start(const chp_config *c, chp_node **np)
{
    chp_log_set_level(c->log_level);
    char logpath[4200];
    snprintf(logpath, sizeof logpath, "%s/chapard.log", c->home);
    (void)chp_log_rotate(logpath, c->log_max);
    if (chp_crypto_init() != CHP_OK) {
        fprintf(stderr, _("chapard: libsodium failed to initialise\n"));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    chp_node_opts o;
    chp_config_node_opts(c, &o);
    int rc;
    if (!c->relay && (rc = load_identity(c->home, c->passfile, &o.identity)) != 0)
        return rc == EXIT_CANCEL ? EXIT_CANCEL : 1;
    unsigned errors = chp_log_errors();
    rc = chp_node_new(&o, np);
    if (rc != CHP_OK) {
        if (chp_log_errors() == errors) /* else the log line said why */
            fprintf(stderr, _("chapard: cannot start: %s\n"), chp_strerror(rc));
        return 1;
    }
    chp_info("chapard %s running in %s (%s)", CHP_VERSION, c->home, c->relay ? "relay" : "node");
    return GO;
}

/* The loop until a signal, `chapar stop` or a wipe (SIGHUP reloads c
 * from argv and the file); the node is destroyed here, as a wipe deletes
 * its store. */
static int run_node(chp_config *c, chp_node **np, int argc, char **argv)
{
    chp_reload_ctx reload = {.node = *np, .cur = c, .argc = argc, .argv = argv, .ipv6 = have_ipv6};
    chp_node_on_hup(*np, &hup_flag, chp_reload, &reload);
    int rc = chp_node_run(*np, &stop_flag);
    int wiped = chp_node_wiped(*np);
    chp_node_destroy(np);
    if (wiped) {
        rc = chp_account_wipe(c->home);
        fprintf(stderr, _("chapard: identity and data in %s wiped%s\n"), c->home,
                rc == CHP_OK ? "" : _(" (some files could not be removed)"));
        return rc == CHP_OK ? 0 : 1;
    }
    if (rc != CHP_OK) {
        fprintf(stderr, _("chapard: stopped on error: %s\n"), chp_strerror(rc));
        return 1;
    }
    return 0;
}

/* Frames of up to 64 KiB are allocated by ZeroMQ's I/O thread and freed by
 * the loop, and commits allocate and free LMDB pages by the thousand: with
 * glibc's default 128 KiB trim threshold each batch handed memory back to
 * the kernel (madvise, munmap) and faulted it in again, a fifth of the
 * loop's CPU under a relay's load (perf, bench-ingest). Keeping up to
 * 32 MiB free per arena costs that much RSS at most. */
static void tune_malloc(void)
{
    (void)mallopt(M_TRIM_THRESHOLD, 32 << 20);
    (void)mallopt(M_TOP_PAD, 4 << 20);
}

int main(int argc, char **argv)
{
    chp_config c;
    chp_node *n = NULL;
    int code;
    chp_i18n_init(); /* messages to people only: logs and the control API stay as they are */
    tune_malloc();
    chp_config_init(&c);
    if ((code = configure(&c, argc, argv)) != GO || (code = take_home(&c)) != GO ||
        (code = start(&c, &n)) != GO)
        goto out;
    code = run_node(&c, &n, argc, argv);
out:
    chp_node_destroy(&n);
    chp_config_fini(&c);
    return code;
}
