/* chapard.c - the Chapar node daemon: flags and config file, then the
 * node's event loop until SIGTERM/SIGINT. */
#include "node/msg/account.h"
#include "proto/addr.h"
#include "proto/crypto.h"
#include "node/common/version.h"
#include "proto/id.h"
#include "node/common/home.h"
#include "node/common/log.h"
#include "node/daemon/node.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define QUOTA_MIN (1ull << 20) /* below this not even one day of a busy room fits */
#define QUOTA_MAX (1ull << 46) /* 64 TiB: beyond any disk this runs on */

#define LOG_MAX_DEFAULT (4ull << 20) /* DIR/chapard.log, and as much in chapard.log.1 */
#define LOG_MAX_MIN     (4ull << 10)
#define LOG_MAX_MAX     (1ull << 30)

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: chapard [options]\n"
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
            "  --no-discovery      do not look for nodes on the LAN\n"
            "  --relay             relay mode: headless, no user identity, quota 4G\n"
            "  --quota SIZE        bytes of envelopes to keep, 1M to 64T, e.g. 512M\n"
            "                      (default 256M, relay 4G)\n"
            "  --allow KEY         accept links only from these nodes (repeatable; a\n"
            "                      node key chpn1... or an ADDRESS): a friends-only relay\n"
            "  --log-level LEVEL   error, warn, info (default) or debug\n"
            "  --log-max SIZE      when stderr is DIR/chapard.log (as chapar-tui starts\n"
            "                      chapard), move it to chapard.log.1 at this size\n"
            "                      (default 4M, 4K to 1G)\n"
            "  --passphrase-file F unlock the identity with the first line of F\n"
            "                      (else $CHAPAR_PASSPHRASE, else a prompt on the\n"
            "                      terminal, 3 tries, Ctrl-C cancels; with none of\n"
            "                      them chapard starts locked and relays until\n"
            "                      `chapar unlock`)\n"
            "  --help, --version\n"
            "\n"
            "DIR/chapard.conf may hold the same settings, one per line (listen = ...,\n"
            "peer = ..., allow = ..., relay = yes, discovery = no, quota = ...,\n"
            "log-level = ...); flags win over the file; peers and allowed keys from\n"
            "both are used.\n"
            "SIGTERM, SIGINT or `chapar stop`: commit, close, exit 0.\n",
            7667);
}

struct settings {
    char home[4096];
    char listen[300];
    const char *peers[CHP_NODE_MAX_PEERS];
    size_t npeers;
    int discovery, relay, log_level;
    uint64_t quota, log_max;
    uint8_t allow[CHP_NODE_MAX_PEERS][32];
    size_t nallow;
    int have_listen, have_discovery, have_relay, have_quota, have_log;
    char *conf_buf; /* owns the strings taken from the config file */
};

static int set_listen(struct settings *s, const char *v)
{
    size_t l = strlen(v);
    if (l == 0 || l >= sizeof s->listen) {
        fprintf(stderr, "chapard: listen address '%.40s' is empty or too long\n", v);
        return -1;
    }
    memcpy(s->listen, v, l + 1);
    return 0;
}

static int add_peer(struct settings *s, const char *a)
{
    chp_addr ad;
    int rc = chp_addr_parse(a, strlen(a), &ad);
    if (rc != CHP_OK) {
        fprintf(stderr, "chapard: peer %s: %s\n", a, chp_strerror(rc));
        return -1;
    }
    if (s->npeers == CHP_NODE_MAX_PEERS) {
        fprintf(stderr, "chapard: too many peers (at most %d)\n", CHP_NODE_MAX_PEERS);
        return -1;
    }
    s->peers[s->npeers++] = a;
    return 0;
}

/* A node key (chpn1...) or a whole ADDRESS whose key is taken. */
static int add_allow(struct settings *s, const char *v)
{
    chp_addr a;
    int rc = strchr(v, '/') ? chp_addr_parse(v, strlen(v), &a)
                            : chp_b32key_parse(CHP_NODEKEY_HRP, v, strlen(v), a.key);
    if (rc != CHP_OK) {
        fprintf(stderr, "chapard: allow %s: not a node key or address (%s)\n", v, chp_strerror(rc));
        return -1;
    }
    if (s->nallow == CHP_NODE_MAX_PEERS) {
        fprintf(stderr, "chapard: too many allowed keys (at most %d)\n", CHP_NODE_MAX_PEERS);
        return -1;
    }
    memcpy(s->allow[s->nallow++], a.key, 32);
    return 0;
}

static int yes_no(const char *v, int *out)
{
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
        *out = 1;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
        *out = 0;
    else
        return -1;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r'))
        s[--l] = '\0';
    return s;
}

/* Reads DIR/chapard.conf; settings already given as flags are kept. */
static int read_config(struct settings *s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/chapard.conf", s->home);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0
                               : (fprintf(stderr, "chapard: %s: %s\n", path, strerror(errno)), -1);
    s->conf_buf = calloc(1, 65536);
    if (!s->conf_buf) {
        fclose(f);
        return -1;
    }
    size_t used = 0;
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = trim(line), *eq;
        p[strcspn(p, "\n")] = '\0';
        if (!*p || *p == '#')
            continue;
        if (!(eq = strchr(p, '='))) {
            fprintf(stderr, "chapard: %s:%d: expected key = value\n", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *k = trim(p), *v = trim(eq + 1);
        size_t vl = strlen(v);
        if (used + vl + 1 > 65536) {
            rc = -1;
            break;
        }
        char *vv = memcpy(s->conf_buf + used, v, vl + 1);
        used += vl + 1;
        int b;
        uint64_t q;
        if (!strcmp(k, "listen")) {
            if (!s->have_listen)
                rc = set_listen(s, vv);
        } else if (!strcmp(k, "peer")) {
            rc = add_peer(s, vv);
        } else if (!strcmp(k, "allow")) {
            rc = add_allow(s, vv);
        } else if (!strcmp(k, "relay") && yes_no(vv, &b) == 0) {
            if (!s->have_relay)
                s->relay = b;
        } else if (!strcmp(k, "discovery") && yes_no(vv, &b) == 0) {
            if (!s->have_discovery)
                s->discovery = b;
        } else if (!strcmp(k, "quota") && chp_parse_size(vv, &q) == 0 && q >= QUOTA_MIN &&
                   q <= QUOTA_MAX) {
            if (!s->have_quota)
                s->quota = q;
        } else if (!strcmp(k, "log-level") && chp_log_parse_level(vv) >= 0) {
            if (!s->have_log)
                s->log_level = chp_log_parse_level(vv);
        } else {
            fprintf(stderr, "chapard: %s:%d: unknown setting or bad value: %s = %s\n", path, lineno,
                    k, vv);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
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
        int rc = chp_passphrase_read(NULL, "passphrase: ", 0, pass, sizeof pass, &plen);
        if (rc == CHP_E_IO && errno == ECANCELED) {
            fprintf(stderr, "chapard: cancelled at the passphrase prompt: not started\n");
            return EXIT_CANCEL;
        }
        if (rc != CHP_OK) { /* an empty line: start locked, as with no terminal */
            chp_info("identity locked: unlock it with `chapar --home %s unlock`", home);
            return 0;
        }
        rc = chp_account_load(home, pass, plen, out);
        chp_memzero(pass, sizeof pass);
        if (rc == CHP_E_PASSPHRASE && tries < PROMPT_TRIES) {
            fprintf(stderr, "wrong passphrase, try again (%d more)\n", PROMPT_TRIES - tries);
            continue;
        }
        if (rc == CHP_E_PASSPHRASE) {
            fprintf(stderr, "chapard: wrong passphrase %d times for %s/%s: not started\n",
                    PROMPT_TRIES, home, CHP_ACCOUNT_FILE);
            return -1;
        }
        if (rc != CHP_OK) {
            fprintf(stderr, "chapard: cannot open the identity in %s: %s\n", home,
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
            fprintf(stderr, "chapard: cannot read a passphrase from %s\n", passfile);
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
        fprintf(stderr, "chapard: wrong passphrase for %s/%s (or the file is damaged)\n", home,
                CHP_ACCOUNT_FILE);
        return -1;
    }
    if (rc != CHP_OK) {
        fprintf(stderr, "chapard: cannot open the identity in %s: %s\n", home, chp_strerror(rc));
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

static const char *need_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "chapard: %s needs a value (try --help)\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int main(int argc, char **argv)
{
    struct settings s;
    memset(&s, 0, sizeof s);
    s.discovery = 1;
    s.log_level = CHP_LOG_INFO;
    const char *home = NULL, *passfile = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("chapard %s\n", CHP_VERSION);
            return 0;
        } else if (!strcmp(a, "--home")) {
            if (!(home = need_arg(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--listen")) {
            if (!(v = need_arg(argc, argv, &i)))
                return 2;
            if (set_listen(&s, v))
                return 2;
            s.have_listen = 1;
        } else if (!strcmp(a, "--peer")) {
            if (!(v = need_arg(argc, argv, &i)) || add_peer(&s, v))
                return 2;
        } else if (!strcmp(a, "--allow")) {
            if (!(v = need_arg(argc, argv, &i)) || add_allow(&s, v))
                return 2;
        } else if (!strcmp(a, "--passphrase-file")) {
            if (!(passfile = need_arg(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--no-discovery")) {
            s.discovery = 0;
            s.have_discovery = 1;
        } else if (!strcmp(a, "--relay")) {
            s.relay = 1;
            s.have_relay = 1;
        } else if (!strcmp(a, "--quota")) {
            if (!(v = need_arg(argc, argv, &i)))
                return 2;
            if (chp_parse_size(v, &s.quota) || s.quota < QUOTA_MIN || s.quota > QUOTA_MAX) {
                fprintf(stderr,
                        "chapard: --quota %s: expected a size from 1M to 64T, like 512M "
                        "or 8G\n",
                        v);
                return 2;
            }
            s.have_quota = 1;
        } else if (!strcmp(a, "--log-max")) {
            if (!(v = need_arg(argc, argv, &i)))
                return 2;
            if (chp_parse_size(v, &s.log_max) || s.log_max < LOG_MAX_MIN ||
                s.log_max > LOG_MAX_MAX) {
                fprintf(stderr, "chapard: --log-max %s: expected a size from 4K to 1G\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--log-level")) {
            if (!(v = need_arg(argc, argv, &i)))
                return 2;
            if ((s.log_level = chp_log_parse_level(v)) < 0) {
                fprintf(stderr, "chapard: --log-level %s: expected error, warn, info or debug\n",
                        v);
                return 2;
            }
            s.have_log = 1;
        } else {
            fprintf(stderr, "chapard: unknown option '%s' (try --help)\n", a);
            return 2;
        }
    }
    if (home)
        snprintf(s.home, sizeof s.home, "%s", home);
    else if (chp_home_default(s.home, sizeof s.home) != 0) {
        fprintf(stderr, "chapard: no data dir: set --home, CHAPAR_HOME or HOME\n");
        return 2;
    }
    char why[4400];
    if (chp_home_problem(s.home, why, sizeof why)) {
        fprintf(stderr, "chapard: %s\n", why);
        return 1;
    }
    if (read_config(&s) != 0)
        return 2;
    if (!s.listen[0])
        snprintf(s.listen, sizeof s.listen, have_ipv6() ? "[::]:%d" : "0.0.0.0:%d",
                 CHP_NODE_PORT_DEFAULT);
    if (!s.quota)
        s.quota = s.relay ? CHP_NODE_QUOTA_RELAY : CHP_NODE_QUOTA_USER;
    /* Checked before the data dir is created or locked (flag or config). */
    const char *bad = chp_mesh_listen_problem(s.listen);
    if (bad) {
        fprintf(stderr, "chapard: --listen %s: %s\n", s.listen, bad);
        free(s.conf_buf);
        return 2;
    }
    /* One daemon per data dir: a second one would take the control socket
     * from the first and share its store. The lock lives until exit. */
    if (chp_home_make(s.home) != 0) {
        fprintf(stderr, "chapard: cannot create %s: %s\n", s.home, strerror(errno));
        free(s.conf_buf);
        return 1;
    }
    if (chp_home_lock(s.home) < 0) {
        if (errno == EWOULDBLOCK)
            fprintf(stderr, "chapard: a chapard is already running for %s\n", s.home);
        else
            fprintf(stderr, "chapard: cannot lock %s/chapard.lock: %s\n", s.home, strerror(errno));
        free(s.conf_buf);
        return 1;
    }
    chp_log_set_level(s.log_level);
    char logpath[4200];
    snprintf(logpath, sizeof logpath, "%s/chapard.log", s.home);
    (void)chp_log_rotate(logpath, s.log_max ? s.log_max : LOG_MAX_DEFAULT);
    if (chp_crypto_init() != CHP_OK) {
        fprintf(stderr, "chapard: libsodium failed to initialise\n");
        return 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    chp_node_opts o;
    int rc;
    memset(&o, 0, sizeof o);
    o.home = s.home;
    o.listen = s.listen;
    for (size_t i = 0; i < s.npeers; i++)
        o.peers[i] = s.peers[i];
    o.npeers = s.npeers;
    o.discovery = s.discovery;
    o.relay = s.relay;
    o.quota = s.quota;
    memcpy(o.allow, s.allow, sizeof o.allow);
    o.nallow = s.nallow;
    if (!s.relay && (rc = load_identity(s.home, passfile, &o.identity)) != 0) {
        free(s.conf_buf);
        return rc == EXIT_CANCEL ? EXIT_CANCEL : 1;
    }
    chp_node *n = NULL;
    unsigned errors = chp_log_errors();
    rc = chp_node_new(&o, &n);
    if (rc != CHP_OK) {
        if (chp_log_errors() == errors) /* else the log line said why */
            fprintf(stderr, "chapard: cannot start: %s\n", chp_strerror(rc));
        free(s.conf_buf);
        return 1;
    }
    chp_info("chapard %s running in %s (%s)", CHP_VERSION, s.home, s.relay ? "relay" : "node");
    rc = chp_node_run(n, &stop_flag);
    int wiped = chp_node_wiped(n);
    chp_node_destroy(&n);
    if (wiped) {
        rc = chp_account_wipe(s.home);
        fprintf(stderr, "chapard: identity and data in %s wiped%s\n", s.home,
                rc == CHP_OK ? "" : " (some files could not be removed)");
        free(s.conf_buf);
        return rc == CHP_OK ? 0 : 1;
    }
    free(s.conf_buf);
    if (rc != CHP_OK) {
        fprintf(stderr, "chapard: stopped on error: %s\n", chp_strerror(rc));
        return 1;
    }
    return 0;
}
