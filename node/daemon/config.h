/* config.h - chapard's settings: its flags and DIR/chapard.conf turned into
 * one struct, or one line saying what is wrong. Parsing never prints and
 * never exits: chapard.c says the line and picks the exit code. */
#ifndef CHP_CONFIG_H
#define CHP_CONFIG_H

#include "node/daemon/node.h"
#include "proto/err.h"

#include <stddef.h>
#include <stdint.h>

#define CHP_CONFIG_QUOTA_MIN (1ull << 20) /* below this not even one day of a busy room fits */
#define CHP_CONFIG_QUOTA_MAX (1ull << 46) /* 64 TiB: beyond any disk this runs on */

#define CHP_CONFIG_LOG_MAX_DEFAULT (4ull << 20) /* DIR/chapard.log, as much in chapard.log.1 */
#define CHP_CONFIG_LOG_MAX_MIN     (4ull << 10)
#define CHP_CONFIG_LOG_MAX_MAX     (1ull << 30)

#define CHP_CONFIG_SUMMARY_DEFAULT_MS (10 * 60 * 1000ull) /* a relay's summary log line */

#define CHP_CONFIG_FILE     "chapard.conf" /* in the data dir */
#define CHP_CONFIG_FILE_MAX (1 << 20)      /* bytes of chapard.conf read at most */

/* What the flags ask for: run the node, or print --help or --version. */
enum { CHP_CONFIG_RUN, CHP_CONFIG_HELP, CHP_CONFIG_VERSION };

typedef struct chp_config {
    int action;                            /* CHP_CONFIG_RUN, _HELP or _VERSION */
    const char *home_arg;                  /* --home as given (argv's string), NULL if not */
    const char *passfile;                  /* --passphrase-file (argv's string), NULL if not */
    char home[4096];                       /* the data dir: the caller sets it from home_arg or
                                              chp_home_default before reading the file */
    char listen[300];                      /* HOST:PORT; "" until a flag, the file or finish */
    const char *peers[CHP_NODE_MAX_PEERS]; /* argv's strings, then the file's */
    size_t npeers;
    int discovery;                         /* LAN beacons (default on) */
    int relay;                             /* --relay / relay = yes */
    int log_level;                         /* CHP_LOG_* */
    uint64_t quota;                        /* bytes of envelopes; 0 until finish sets the default */
    uint64_t log_max;                      /* --log-max; 0 until finish sets the default */
    char metrics[300];                     /* --metrics HOST:PORT, "" = off */
    uint64_t summary_ms;                   /* --summary-every (relay log line), 0 = off */
    uint8_t allow[CHP_NODE_MAX_PEERS][32]; /* transport keys of --allow */
    size_t nallow;
    const char *spools[CHP_NODE_SPOOLS_MAX]; /* --spool DIR and spool = DIR */
    size_t nspools;
    char listen_obfs4[300]; /* --listen-obfs4 / listen-obfs4 = HOST:PORT, "" = none */
    char obfs4_bin[4096];   /* transport obfs4 = PATH, "" = obfs4proxy on PATH */
    int have_listen_obfs4;
    uint64_t max_file;   /* --max-file / max-file =, 0 = the default (16 MiB) */
    char save_dir[4096]; /* --save-dir / save-dir =, "" = HOME/files */
    int have_max_file, have_save_dir;
    /* Set by a flag: the file's setting of the same name is then ignored
     * (peers and allowed keys add up instead). */
    int have_listen, have_discovery, have_relay, have_quota, have_log, have_metrics, have_summary;
    char *text;     /* owns the copy of chapard.conf that peers[] point into */
    char err[8192]; /* after an error: one line, no "chapard: " and no newline */
} chp_config;

/* Defaults before any flag: discovery on, log level info, nothing else
 * set. Allocates nothing. */
void chp_config_init(chp_config *c);
/* Frees the copy of the file; the strings in peers[] taken from it die
 * here. Accepts a config that parsed nothing. */
void chp_config_fini(chp_config *c);

/* The flags (argv[1..argc-1]). Stops at the first --help/-h or --version
 * (action says which; flags after it are not looked at). argv's strings
 * are borrowed: they must outlive c. CHP_OK, or CHP_E_ARG with err set
 * (a missing or bad value, an unknown option: chapard exits 2). */
CHP_WUR int chp_config_parse_args(chp_config *c, int argc, char **argv);

/* The text of chapard.conf (len bytes; need not end in NUL): "key = value"
 * lines; blank lines and lines starting with '#' are skipped; spaces
 * around key and value do not count. Keys: listen, peer, allow, relay,
 * discovery, quota, log-level; a setting a flag gave is ignored, peers and
 * allowed keys add to the flags'. path only names the file in err. Copies
 * the text (freed by fini); call it at most once per config. CHP_OK,
 * CHP_E_ARG with err set ("PATH:LINE: ..."), or CHP_E_NOMEM. */
CHP_WUR int chp_config_parse_text(chp_config *c, const char *path, const char *text, size_t len);

/* Reads DIR/chapard.conf (c->home) and parses it as above; no file is
 * fine. CHP_OK, CHP_E_IO (unreadable, or larger than CHP_CONFIG_FILE_MAX)
 * or what chp_config_parse_text returns, with err set. */
CHP_WUR int chp_config_read_file(chp_config *c);

/* Fills what neither flags nor file set: listen [::]:7667 if ipv6 else
 * 0.0.0.0:7667, the quota of the mode, the log size; then checks the
 * listen address (CHP_E_ARG with err "--listen X: why"). */
CHP_WUR int chp_config_finish(chp_config *c, int ipv6);

/* config_web.c: --metrics / metrics = HOST:PORT or PORT (numeric), and
 * --summary-every / summary-every = N (minutes), Ns, Nm or Nh, 0 = off.
 * CHP_OK, or CHP_E_ARG with c unchanged (the caller words the error). */
CHP_WUR int chp_config_set_metrics(chp_config *c, const char *v);
CHP_WUR int chp_config_set_summary(chp_config *c, const char *v);

/* config_pt.c: --listen-obfs4 / listen-obfs4 = HOST:PORT (port 0 = any)
 * and transport obfs4 = PATH. CHP_OK, or CHP_E_ARG with err set. */
CHP_WUR int chp_config_set_listen_obfs4(chp_config *c, const char *v);
CHP_WUR int chp_config_set_obfs4_bin(chp_config *c, const char *v);

/* The node's options from a finished config: o's strings point into c
 * (and argv), valid while c lives; o->identity is left NULL. */
void chp_config_node_opts(const chp_config *c, chp_node_opts *o);

#endif
