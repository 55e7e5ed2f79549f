/* test_config.c - chapard's flags and chapard.conf (node/daemon/config.c):
 * every flag and file key, the defaults, and the one line each bad value
 * gets (the texts docs/man/chapard.8 and `chapard --help` promise). */
#include "harness.h"

#include "node/common/log.h"
#include "node/daemon/config.h"
#include "proto/addr.h"
#include "proto/id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARGV_MAX 160

static char key1[80], key2[80], addr1[200], addr2[200];
static uint8_t raw1[32], raw2[32];

static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < 32; i++) {
        raw1[i] = (uint8_t)(i + 1);
        raw2[i] = (uint8_t)(0x80 + i);
    }
    chp_b32key_encode(CHP_NODEKEY_HRP, raw1, key1);
    chp_b32key_encode(CHP_NODEKEY_HRP, raw2, key2);
    snprintf(addr1, sizeof addr1, "192.0.2.1:7667/%s", key1);
    snprintf(addr2, sizeof addr2, "[2001:db8::2]:9000/%s", key2);
    return 0;
}

/* Parses "chapard" + the NULL-terminated flags into a fresh *c. */
static int parse(chp_config *c, ...)
{
    static char *argv[ARGV_MAX];
    int argc = 0;
    argv[argc++] = "chapard";
    va_list ap;
    va_start(ap, c);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        assert_true(argc < ARGV_MAX);
        argv[argc++] = a;
    }
    va_end(ap);
    chp_config_init(c);
    return chp_config_parse_args(c, argc, argv);
}

/* Parses text as chapard.conf (path "D/chapard.conf") into c. */
static int text(chp_config *c, const char *t)
{
    return chp_config_parse_text(c, "D/chapard.conf", t, strlen(t));
}

/* Asserts a flag set is refused with exactly the line want. */
#define assert_refused(want, ...)                                                                  \
    do {                                                                                           \
        chp_config c_;                                                                             \
        assert_int_equal(parse(&c_, __VA_ARGS__, (char *)NULL), CHP_E_ARG);                        \
        assert_string_equal(c_.err, (want));                                                       \
        chp_config_fini(&c_);                                                                      \
    } while (0)

/* Asserts a chapard.conf text is refused with exactly the line want. */
static void assert_file_refused(const char *t, const char *want)
{
    chp_config c;
    chp_config_init(&c);
    int rc = text(&c, t);
    if (rc != CHP_E_ARG || strcmp(c.err, want) != 0)
        fail_msg("chapard.conf '%s': rc %d, err '%s'; want CHP_E_ARG and '%s'", t, rc, c.err, want);
    chp_config_fini(&c);
}

static void test_defaults(void **state)
{
    (void)state;
    chp_config c;
    assert_int_equal(parse(&c, (char *)NULL), CHP_OK);
    assert_int_equal(c.action, CHP_CONFIG_RUN);
    assert_null(c.home_arg);
    assert_null(c.passfile);
    assert_int_equal(c.discovery, 1);
    assert_int_equal(c.relay, 0);
    assert_int_equal(c.log_level, CHP_LOG_INFO);
    assert_int_equal(c.npeers, 0);
    assert_int_equal(c.nallow, 0);
    assert_string_equal(c.listen, "");
    assert_int_equal(chp_config_finish(&c, 1), CHP_OK);
    assert_string_equal(c.listen, "[::]:7667");
    assert_int_equal(c.quota, 256ull << 20);
    assert_int_equal(c.log_max, 4ull << 20);
    chp_config_fini(&c);

    /* No IPv6 in the kernel: IPv4 only. A relay keeps 4 GiB. */
    assert_int_equal(parse(&c, "--relay", (char *)NULL), CHP_OK);
    assert_int_equal(chp_config_finish(&c, 0), CHP_OK);
    assert_string_equal(c.listen, "0.0.0.0:7667");
    assert_int_equal(c.quota, 4ull << 30);
    chp_config_fini(&c);
}

static void test_every_flag(void **state)
{
    (void)state;
    chp_config c;
    assert_int_equal(parse(&c, "--home", "/tmp/x", "--listen", "127.0.0.1:0", "--peer", addr1,
                           "--peer", addr2, "--allow", key2, "--allow", addr1, "--passphrase-file",
                           "/tmp/pass", "--no-discovery", "--relay", "--quota", "512M", "--log-max",
                           "8K", "--log-level", "debug", (char *)NULL),
                     CHP_OK);
    assert_int_equal(c.action, CHP_CONFIG_RUN);
    assert_string_equal(c.home_arg, "/tmp/x");
    assert_string_equal(c.listen, "127.0.0.1:0");
    assert_int_equal(c.npeers, 2);
    assert_string_equal(c.peers[0], addr1);
    assert_string_equal(c.peers[1], addr2);
    assert_int_equal(c.nallow, 2);
    assert_memory_equal(c.allow[0], raw2, 32); /* a key */
    assert_memory_equal(c.allow[1], raw1, 32); /* an address: its key */
    assert_string_equal(c.passfile, "/tmp/pass");
    assert_int_equal(c.discovery, 0);
    assert_int_equal(c.relay, 1);
    assert_int_equal(c.quota, 512ull << 20);
    assert_int_equal(c.log_max, 8ull << 10);
    assert_int_equal(c.log_level, CHP_LOG_DEBUG);
    assert_true(c.have_listen && c.have_discovery && c.have_relay && c.have_quota && c.have_log);

    /* finish keeps what was given; the node's options are a copy. */
    snprintf(c.home, sizeof c.home, "%s", c.home_arg);
    assert_int_equal(chp_config_finish(&c, 1), CHP_OK);
    assert_string_equal(c.listen, "127.0.0.1:0");
    assert_int_equal(c.quota, 512ull << 20);
    assert_int_equal(c.log_max, 8ull << 10);
    chp_node_opts o;
    memset(&o, 0xa5, sizeof o);
    chp_config_node_opts(&c, &o);
    assert_string_equal(o.home, "/tmp/x");
    assert_string_equal(o.listen, "127.0.0.1:0");
    assert_int_equal(o.npeers, 2);
    assert_string_equal(o.peers[0], addr1);
    assert_string_equal(o.peers[1], addr2);
    assert_null(o.peers[2]);
    assert_int_equal(o.discovery, 0);
    assert_int_equal(o.discovery_port, 0);
    assert_int_equal(o.relay, 1);
    assert_int_equal(o.quota, 512ull << 20);
    assert_int_equal(o.nallow, 2);
    assert_memory_equal(o.allow[0], raw2, 32);
    assert_memory_equal(o.allow[1], raw1, 32);
    assert_null(o.identity);
    chp_config_fini(&c);
}

/* Sizes at both ends of their ranges, and the other log levels. */
static void test_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *value;
        uint64_t want;
    } ok[] = {
        {"--quota", "1M", 1ull << 20},         {"--quota", "64T", 1ull << 46},
        {"--quota", "1048576", 1ull << 20},    {"--log-max", "4K", 4ull << 10},
        {"--log-max", "1G", 1ull << 30},       {"--log-level", "error", CHP_LOG_ERROR},
        {"--log-level", "warn", CHP_LOG_WARN}, {"--log-level", "info", CHP_LOG_INFO},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        chp_config c;
        if (parse(&c, ok[i].flag, ok[i].value, (char *)NULL) != CHP_OK)
            fail_msg("%s %s refused: %s", ok[i].flag, ok[i].value, c.err);
        uint64_t got = !strcmp(ok[i].flag, "--quota")     ? c.quota
                       : !strcmp(ok[i].flag, "--log-max") ? c.log_max
                                                          : (uint64_t)c.log_level;
        assert_int_equal(got, ok[i].want);
        chp_config_fini(&c);
    }
}

/* --metrics and --summary-every, as flags and in chapard.conf (metrics.c). */
static void test_metrics_settings(void **state)
{
    (void)state;
    chp_config c;
    assert_int_equal(parse(&c, (char *)NULL), CHP_OK);
    assert_int_equal(c.summary_ms, 600000); /* 10 minutes */
    assert_string_equal(c.metrics, "");
    chp_config_fini(&c);
    assert_int_equal(parse(&c, "--metrics", "9467", "--summary-every", "30s", (char *)NULL),
                     CHP_OK);
    assert_string_equal(c.metrics, "9467");
    assert_int_equal(c.summary_ms, 30000);
    /* the flag wins over the file */
    assert_int_equal(text(&c, "metrics = [::1]:1\nsummary-every = 2h\n"), CHP_OK);
    assert_string_equal(c.metrics, "9467");
    assert_int_equal(c.summary_ms, 30000);
    chp_node_opts o;
    chp_config_node_opts(&c, &o);
    assert_string_equal(o.metrics, "9467");
    assert_int_equal(o.summary_ms, 30000);
    chp_config_fini(&c);
    chp_config_init(&c);
    assert_int_equal(text(&c, "metrics = [::1]:1\nsummary-every = 2\n"), CHP_OK);
    assert_string_equal(c.metrics, "[::1]:1");
    assert_int_equal(c.summary_ms, 120000); /* a bare number is minutes */
    chp_config_fini(&c);
    assert_int_equal(parse(&c, "--summary-every", "0", (char *)NULL), CHP_OK);
    assert_int_equal(c.summary_ms, 0);
    chp_config_fini(&c);
    assert_refused("--metrics localhost:9: expected HOST:PORT (a numeric address) or PORT",
                   "--metrics", "localhost:9");
    assert_refused("--metrics 1.2.3.4:99999: expected HOST:PORT (a numeric address) or PORT",
                   "--metrics", "1.2.3.4:99999");
    assert_refused("--summary-every 5d: expected minutes or a time like 30s, 10m, 1h (0 = off)",
                   "--summary-every", "5d");
    assert_file_refused("summary-every = soon\n",
                        "D/chapard.conf:1: unknown setting or bad value: summary-every = soon");
    assert_file_refused("metrics = :\n",
                        "D/chapard.conf:1: unknown setting or bad value: metrics = :");
}

static void test_help_and_version(void **state)
{
    (void)state;
    chp_config c;
    /* --help and -h stop the parse: what follows is not looked at. */
    assert_int_equal(parse(&c, "--help", "--frobnicate", (char *)NULL), CHP_OK);
    assert_int_equal(c.action, CHP_CONFIG_HELP);
    assert_int_equal(parse(&c, "--relay", "-h", "--quota", "lots", (char *)NULL), CHP_OK);
    assert_int_equal(c.action, CHP_CONFIG_HELP);
    assert_int_equal(parse(&c, "--version", "--listen", (char *)NULL), CHP_OK);
    assert_int_equal(c.action, CHP_CONFIG_VERSION);
    /* ...but a bad flag before them is refused. */
    assert_refused("unknown option '--frob' (try --help)", "--frob", "--help");
    assert_refused("--quota lots: expected a size from 1M to 64T, like 512M or 8G", "--quota",
                   "lots", "--version");
}

static void test_missing_values(void **state)
{
    (void)state;
    static const char *const need[] = {"--home",  "--listen",  "--peer",      "--allow",
                                       "--quota", "--log-max", "--log-level", "--passphrase-file"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        char want[100];
        snprintf(want, sizeof want, "%s needs a value (try --help)", need[i]);
        assert_refused(want, "--relay", (char *)need[i]);
    }
}

static void test_bad_values(void **state)
{
    (void)state;
    char want[400], longest[400];
    assert_refused("unknown option '--frobnicate' (try --help)", "--frobnicate");
    assert_refused("unknown option 'status' (try --help)", "status");
    assert_refused("unknown option '--relay=yes' (try --help)", "--relay=yes");
    static const char *const quotas[] = {"lots", "1023K", "65T", "0", "-1", "1X", ""};
    for (size_t i = 0; i < sizeof quotas / sizeof quotas[0]; i++) {
        snprintf(want, sizeof want, "--quota %s: expected a size from 1M to 64T, like 512M or 8G",
                 quotas[i]);
        assert_refused(want, "--quota", (char *)quotas[i]);
    }
    static const char *const logs[] = {"3K", "2G", "big", "0"};
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
        snprintf(want, sizeof want, "--log-max %s: expected a size from 4K to 1G", logs[i]);
        assert_refused(want, "--log-max", (char *)logs[i]);
    }
    assert_refused("--log-level loud: expected error, warn, info or debug", "--log-level", "loud");
    assert_refused("--log-level INFO: expected error, warn, info or debug", "--log-level", "INFO");

    /* --listen: empty or longer than 299 bytes here; its form is checked
     * by finish (below), after chapard.conf. */
    assert_refused("listen address '' is empty or too long", "--listen", "");
    memset(longest, 'a', 300);
    longest[300] = '\0';
    snprintf(want, sizeof want, "listen address '%.40s' is empty or too long", longest);
    assert_refused(want, "--listen", longest);

    /* --peer and --allow name what is wrong. */
    snprintf(want, sizeof want, "peer nonsense: %s", chp_strerror(CHP_E_ADDR_FORMAT));
    assert_refused(want, "--peer", "nonsense");
    snprintf(want, sizeof want, "peer 1.2.3.4:0/%s: %s", key1, chp_strerror(CHP_E_ADDR_PORT));
    char badport[200];
    snprintf(badport, sizeof badport, "1.2.3.4:0/%s", key1);
    assert_refused(want, "--peer", badport);
    snprintf(want, sizeof want, "allow nonsense: not a node key or address (%s)",
             chp_strerror(CHP_E_ID_LENGTH));
    assert_refused(want, "--allow", "nonsense");
    char mistyped[200];
    snprintf(mistyped, sizeof mistyped, "192.0.2.1:1/%s", key1);
    char *typo = mistyped + strlen(mistyped) - 1;
    *typo = *typo == 'q' ? 'p' : 'q'; /* a typo in the key's checksum */
    snprintf(want, sizeof want, "allow %s: not a node key or address (%s)", mistyped,
             chp_strerror(CHP_E_ADDR_KEY));
    assert_refused(want, "--allow", mistyped);
    /* A user ID (chp1...) is not a node key (chpn1..., one longer). */
    char uid[80];
    chp_b32key_encode("chp", raw1, uid);
    snprintf(want, sizeof want, "allow %s: not a node key or address (%s)", uid,
             chp_strerror(CHP_E_ID_LENGTH));
    assert_refused(want, "--allow", uid);
}

static void test_too_many(void **state)
{
    (void)state;
    static char addrs[CHP_NODE_MAX_PEERS + 1][200];
    static char *argv[2 * (CHP_NODE_MAX_PEERS + 1) + 1];
    for (int flag = 0; flag < 2; flag++) {
        int argc = 0;
        argv[argc++] = "chapard";
        for (int i = 0; i <= CHP_NODE_MAX_PEERS; i++) {
            snprintf(addrs[i], sizeof addrs[i], "10.0.%d.%d:7667/%s", i / 250, i % 250 + 1, key1);
            argv[argc++] = flag ? "--allow" : "--peer";
            argv[argc++] = addrs[i];
        }
        chp_config c;
        chp_config_init(&c);
        /* 64 fit... */
        assert_int_equal(chp_config_parse_args(&c, argc - 2, argv), CHP_OK);
        assert_int_equal(flag ? c.nallow : c.npeers, CHP_NODE_MAX_PEERS);
        chp_config_fini(&c);
        /* ...the 65th does not. */
        chp_config_init(&c);
        assert_int_equal(chp_config_parse_args(&c, argc, argv), CHP_E_ARG);
        assert_string_equal(c.err, flag ? "too many allowed keys (at most 64)"
                                        : "too many peers (at most 64)");
        chp_config_fini(&c);
    }
}

static void test_file_settings(void **state)
{
    (void)state;
    char t[2000];
    snprintf(t, sizeof t,
             "# chapard.conf\n"
             "\n"
             "   \t\n"
             "  # an indented comment = with an equals sign\n"
             "listen = 127.0.0.1:7777\n"
             "peer=%s\n"
             "\tpeer   =   %s  \t\n"
             "allow = %s\r\n"
             "\r\n"
             "relay = yes\n"
             "discovery = off\n"
             "quota = 2G\n"
             "log-level = warn",
             addr1, addr2, key2);
    chp_config c;
    chp_config_init(&c);
    assert_int_equal(text(&c, t), CHP_OK);
    assert_string_equal(c.listen, "127.0.0.1:7777");
    assert_int_equal(c.npeers, 2);
    assert_string_equal(c.peers[0], addr1);
    assert_string_equal(c.peers[1], addr2);
    assert_int_equal(c.nallow, 1);
    assert_memory_equal(c.allow[0], raw2, 32);
    assert_int_equal(c.relay, 1);
    assert_int_equal(c.discovery, 0);
    assert_int_equal(c.quota, 2ull << 30);
    assert_int_equal(c.log_level, CHP_LOG_WARN);
    /* The strings live in the config's copy: the text may go. */
    memset(t, 0, sizeof t);
    assert_string_equal(c.peers[1], addr2);
    chp_config_fini(&c);
    assert_null(c.text);

    /* Every spelling of yes and no. */
    static const char *const yes[] = {"yes", "true", "1", "on"}, *const no[] = {"no", "false", "0",
                                                                                "off"};
    for (size_t i = 0; i < 4; i++)
        for (int on = 0; on < 2; on++) {
            snprintf(t, sizeof t, "relay = %s\ndiscovery = %s\n", on ? yes[i] : no[i],
                     on ? no[i] : yes[i]);
            chp_config_init(&c);
            assert_int_equal(text(&c, t), CHP_OK);
            assert_int_equal(c.relay, on);
            assert_int_equal(c.discovery, !on);
            chp_config_fini(&c);
        }

    /* An empty file, and one of comments only, change nothing. */
    chp_config_init(&c);
    assert_int_equal(text(&c, ""), CHP_OK);
    assert_int_equal(c.discovery, 1);
    chp_config_fini(&c);
    chp_config_init(&c);
    assert_int_equal(text(&c, "#\n# listen = garbage\n"), CHP_OK);
    assert_string_equal(c.listen, "");
    chp_config_fini(&c);

    /* The text need not end in NUL: only len bytes are read. */
    static const char cut[] = "quota = 8Mquota = 9M";
    chp_config_init(&c);
    assert_int_equal(chp_config_parse_text(&c, "D/chapard.conf", cut, 10), CHP_OK);
    assert_int_equal(c.quota, 8ull << 20);
    chp_config_fini(&c);
}

/* Flags win over the file; peers and allowed keys from both are used. */
static void test_flags_win(void **state)
{
    (void)state;
    char t[1000];
    snprintf(t, sizeof t,
             "listen = 127.0.0.1:1\nrelay = no\ndiscovery = yes\nquota = 2G\n"
             "log-level = error\npeer = %s\nallow = %s\n",
             addr2, key2);
    chp_config c;
    assert_int_equal(parse(&c, "--listen", "127.0.0.1:2", "--relay", "--no-discovery", "--quota",
                           "8M", "--log-level", "debug", "--peer", addr1, "--allow", key1,
                           (char *)NULL),
                     CHP_OK);
    assert_int_equal(text(&c, t), CHP_OK);
    assert_string_equal(c.listen, "127.0.0.1:2");
    assert_int_equal(c.relay, 1);
    assert_int_equal(c.discovery, 0);
    assert_int_equal(c.quota, 8ull << 20);
    assert_int_equal(c.log_level, CHP_LOG_DEBUG);
    assert_int_equal(c.npeers, 2);
    assert_string_equal(c.peers[0], addr1);
    assert_string_equal(c.peers[1], addr2);
    assert_int_equal(c.nallow, 2);
    assert_memory_equal(c.allow[0], raw1, 32);
    assert_memory_equal(c.allow[1], raw2, 32);
    chp_config_fini(&c);

    /* With --listen given, the file's listen line is not even read; the
     * other keys' values are still checked. */
    assert_int_equal(parse(&c, "--listen", "127.0.0.1:2", (char *)NULL), CHP_OK);
    assert_int_equal(text(&c, "listen = \n"), CHP_OK);
    assert_string_equal(c.listen, "127.0.0.1:2");
    chp_config_fini(&c);
    assert_int_equal(parse(&c, "--relay", (char *)NULL), CHP_OK);
    assert_int_equal(text(&c, "relay = maybe\n"), CHP_E_ARG);
    assert_string_equal(c.err, "D/chapard.conf:1: unknown setting or bad value: relay = maybe");
    chp_config_fini(&c);

    /* A file is read once per config. */
    chp_config_init(&c);
    assert_int_equal(text(&c, "quota = 8M\n"), CHP_OK);
    assert_int_equal(text(&c, "quota = 9M\n"), CHP_E_ARG);
    assert_string_equal(c.err, "D/chapard.conf: read twice");
    assert_int_equal(c.quota, 8ull << 20);
    chp_config_fini(&c);
}

static void test_file_errors(void **state)
{
    (void)state;
    char want[400], t[400];
    assert_file_refused("bogus\n", "D/chapard.conf:1: expected key = value");
    assert_file_refused("# one\n\nquota = 8M\n  junk  \n",
                        "D/chapard.conf:4: expected key = value");
    assert_file_refused("frobnicate = 1\n",
                        "D/chapard.conf:1: unknown setting or bad value: frobnicate = 1");
    /* Keys are exact: a flag's spelling, a case change, or a flag that has
     * no file key are unknown. */
    assert_file_refused("--relay = yes\n",
                        "D/chapard.conf:1: unknown setting or bad value: --relay = yes");
    assert_file_refused("Relay = yes\n",
                        "D/chapard.conf:1: unknown setting or bad value: Relay = yes");
    assert_file_refused("log-max = 8K\n",
                        "D/chapard.conf:1: unknown setting or bad value: log-max = 8K");
    assert_file_refused("passphrase-file = /tmp/p\n",
                        "D/chapard.conf:1: unknown setting or bad value: passphrase-file = /tmp/p");
    assert_file_refused("= 5\n", "D/chapard.conf:1: unknown setting or bad value:  = 5");
    /* Bad values. */
    assert_file_refused("\n\nrelay = maybe\n",
                        "D/chapard.conf:3: unknown setting or bad value: relay = maybe");
    assert_file_refused("discovery = YES\n",
                        "D/chapard.conf:1: unknown setting or bad value: discovery = YES");
    assert_file_refused("quota = 1K\n",
                        "D/chapard.conf:1: unknown setting or bad value: quota = 1K");
    assert_file_refused("quota = 65T\n",
                        "D/chapard.conf:1: unknown setting or bad value: quota = 65T");
    assert_file_refused("quota =\n", "D/chapard.conf:1: unknown setting or bad value: quota = ");
    assert_file_refused("log-level = loud\n",
                        "D/chapard.conf:1: unknown setting or bad value: log-level = loud");
    /* A value keeps its inner '=' and '#': no inline comments. */
    assert_file_refused("quota = 8M # small\n",
                        "D/chapard.conf:1: unknown setting or bad value: quota = 8M # small");
    assert_file_refused("relay = yes = no\n",
                        "D/chapard.conf:1: unknown setting or bad value: relay = yes = no");
    /* listen, peer and allow say what is wrong as their flags do. */
    assert_file_refused("listen = \n", "listen address '' is empty or too long");
    snprintf(want, sizeof want, "peer nonsense: %s", chp_strerror(CHP_E_ADDR_FORMAT));
    assert_file_refused("peer = nonsense\n", want);
    snprintf(want, sizeof want, "allow nonsense: not a node key or address (%s)",
             chp_strerror(CHP_E_ID_LENGTH));
    assert_file_refused("allow = nonsense\n", want);
    snprintf(t, sizeof t, "peer = 192.0.2.1:7667/%s\nquota = 8M\nquota = lots\n", key1);
    assert_file_refused(t, "D/chapard.conf:3: unknown setting or bad value: quota = lots");
}

/* The --listen form is checked after the file, by finish: the flag's or
 * the file's value, with the flag's name. */
static void test_listen_checked(void **state)
{
    (void)state;
    static const char *const bad[] = {"garbage", "127.0.0.1:70000", "127.0.0.1", "[::1:5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = chp_mesh_listen_problem(bad[i]);
        assert_non_null(why);
        char want[400];
        snprintf(want, sizeof want, "--listen %s: %s", bad[i], why);
        chp_config c;
        assert_int_equal(parse(&c, "--listen", (char *)bad[i], (char *)NULL), CHP_OK);
        assert_int_equal(chp_config_finish(&c, 1), CHP_E_ARG);
        assert_string_equal(c.err, want);
        chp_config_fini(&c);
        char t[100];
        snprintf(t, sizeof t, "listen = %s\n", bad[i]);
        chp_config_init(&c);
        assert_int_equal(text(&c, t), CHP_OK);
        assert_int_equal(chp_config_finish(&c, 1), CHP_E_ARG);
        assert_string_equal(c.err, want);
        chp_config_fini(&c);
    }
    assert_non_null(strstr(chp_mesh_listen_problem("garbage"), "expected HOST:PORT"));
    assert_non_null(strstr(chp_mesh_listen_problem("127.0.0.1:70000"), "0 to 65535"));
    static const char *const good[] = {"127.0.0.1:0", "[::]:7667", "0.0.0.0:1", "[::1]:65535"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        chp_config c;
        assert_int_equal(parse(&c, "--listen", (char *)good[i], (char *)NULL), CHP_OK);
        if (chp_config_finish(&c, 1) != CHP_OK)
            fail_msg("--listen %s refused: %s", good[i], c.err);
        chp_config_fini(&c);
    }
}

/* --spool DIR (repeatable, absolute) and spool = DIR add up, and reach
 * the node's options. */
static void test_spool(void **state)
{
    (void)state;
    chp_config c;
    assert_int_equal(parse(&c, "--spool", "/media", "--spool", "/mnt/sticks", (char *)NULL),
                     CHP_OK);
    assert_int_equal(text(&c, "spool = /run/media\n"), CHP_OK);
    assert_int_equal(c.nspools, 3);
    assert_string_equal(c.spools[2], "/run/media");
    chp_node_opts o;
    chp_config_node_opts(&c, &o);
    assert_int_equal(o.nspools, 3);
    assert_string_equal(o.spools[1], "/mnt/sticks");
    chp_config_fini(&c);
    assert_refused("spool media: the directory must be an absolute path", "--spool", "media");
    assert_file_refused("spool = sticks", "spool sticks: the directory must be an absolute path");
}

static void test_read_file(void **state)
{
    h_ctx *h = *state;
    chp_config c;
    chp_config_init(&c);
    snprintf(c.home, sizeof c.home, "%s", h->dir);
    /* No file: nothing changes. */
    assert_int_equal(chp_config_read_file(&c), CHP_OK);
    assert_null(c.text);
    assert_int_equal(c.quota, 0);

    static const char conf[] = "# mine\nquota = 16M\nrelay = yes\n";
    h_write_file(h, "chapard.conf", conf, sizeof conf - 1);
    assert_int_equal(chp_config_read_file(&c), CHP_OK);
    assert_int_equal(c.quota, 16ull << 20);
    assert_int_equal(c.relay, 1);
    chp_config_fini(&c);

    /* Errors name the file and the line. */
    char want[5000], path[300];
    h_path(h, path, sizeof path, "chapard.conf");
    static const char bad[] = "quota = 16M\nquota = lots\n";
    h_write_file(h, "chapard.conf", bad, sizeof bad - 1);
    chp_config_init(&c);
    snprintf(c.home, sizeof c.home, "%s", h->dir);
    assert_int_equal(chp_config_read_file(&c), CHP_E_ARG);
    snprintf(want, sizeof want, "%s:2: unknown setting or bad value: quota = lots", path);
    assert_string_equal(c.err, want);
    chp_config_fini(&c);

    /* Larger than 1 MiB: refused, not cut. */
    char *big = malloc(CHP_CONFIG_FILE_MAX + 1);
    assert_non_null(big);
    memset(big, '#', CHP_CONFIG_FILE_MAX + 1);
    h_write_file(h, "chapard.conf", big, CHP_CONFIG_FILE_MAX + 1);
    chp_config_init(&c);
    snprintf(c.home, sizeof c.home, "%s", h->dir);
    assert_int_equal(chp_config_read_file(&c), CHP_E_IO);
    snprintf(want, sizeof want, "%s: larger than 1048576 bytes", path);
    assert_string_equal(c.err, want);
    chp_config_fini(&c);
    /* Exactly 1 MiB of comments is fine. */
    h_write_file(h, "chapard.conf", big, CHP_CONFIG_FILE_MAX);
    free(big);
    chp_config_init(&c);
    snprintf(c.home, sizeof c.home, "%s", h->dir);
    assert_int_equal(chp_config_read_file(&c), CHP_OK);
    chp_config_fini(&c);

    /* A chapard.conf that cannot be read is an error, not skipped. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    chp_config_init(&c);
    snprintf(c.home, sizeof c.home, "%s", h->dir);
    assert_int_equal(chp_config_read_file(&c), CHP_E_IO);
    snprintf(want, sizeof want, "%s: Is a directory", path);
    assert_string_equal(c.err, want);
    chp_config_fini(&c);
    assert_int_equal(rmdir(path), 0);
    /* A data dir that is not a directory. */
    h_write_file(h, "plain", "x", 1);
    chp_config_init(&c);
    h_path(h, c.home, sizeof c.home, "plain");
    assert_int_equal(chp_config_read_file(&c), CHP_E_IO);
    snprintf(want, sizeof want, "%s/chapard.conf: Not a directory", c.home);
    assert_string_equal(c.err, want);
    chp_config_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_flag),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_metrics_settings),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_missing_values),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_too_many),
        cmocka_unit_test(test_file_settings),
        cmocka_unit_test(test_flags_win),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_listen_checked),
        cmocka_unit_test(test_spool),
        cmocka_unit_test_setup_teardown(test_read_file, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
