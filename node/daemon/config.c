/* config.c - chapard's flags and DIR/chapard.conf, parsed into a
 * chp_config: a table of flags and one of file keys, each row carrying its
 * handler. Errors are one line in c->err; nothing here prints or exits. */
#include "node/daemon/config.h"
#include "node/common/home.h"
#include "node/common/log.h"
#include "proto/addr.h"
#include "proto/id.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 2, 3))) static int config_error(chp_config *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return CHP_E_ARG;
}

void chp_config_init(chp_config *c)
{
    memset(c, 0, sizeof *c);
    c->discovery = 1;
    c->log_level = CHP_LOG_INFO;
    c->summary_ms = CHP_CONFIG_SUMMARY_DEFAULT_MS;
}

void chp_config_fini(chp_config *c)
{
    free(c->text);
    c->text = NULL;
}

/* ---- one setting each, shared by the flags and the file ---- */

static int set_listen(chp_config *c, const char *v)
{
    size_t l = strlen(v);
    if (l == 0 || l >= sizeof c->listen)
        return config_error(c, "listen address '%.40s' is empty or too long", v);
    memcpy(c->listen, v, l + 1);
    return CHP_OK;
}

static int add_peer(chp_config *c, const char *a)
{
    chp_addr ad;
    int rc = chp_addr_parse(a, strlen(a), &ad);
    if (rc != CHP_OK)
        return config_error(c, "peer %s: %s", a, chp_strerror(rc));
    if (c->npeers == CHP_NODE_MAX_PEERS)
        return config_error(c, "too many peers (at most %d)", CHP_NODE_MAX_PEERS);
    c->peers[c->npeers++] = a;
    return CHP_OK;
}

/* --spool DIR / spool = DIR: a directory where media appear (absolute:
 * the daemon's working directory is nobody's business). */
static int add_spool(chp_config *c, const char *v)
{
    if (v[0] != '/')
        return config_error(c, "spool %s: the directory must be an absolute path", v);
    if (c->nspools == CHP_NODE_SPOOLS_MAX)
        return config_error(c, "too many spool directories (at most %d)", CHP_NODE_SPOOLS_MAX);
    c->spools[c->nspools++] = v;
    return CHP_OK;
}

/* A node key (chpn1...) or a whole ADDRESS whose key is taken. */
static int add_allow(chp_config *c, const char *v)
{
    chp_addr a;
    int rc = strchr(v, '/') ? chp_addr_parse(v, strlen(v), &a)
                            : chp_b32key_parse(CHP_NODEKEY_HRP, v, strlen(v), a.key);
    if (rc != CHP_OK)
        return config_error(c, "allow %s: not a node key or address (%s)", v, chp_strerror(rc));
    if (c->nallow == CHP_NODE_MAX_PEERS)
        return config_error(c, "too many allowed keys (at most %d)", CHP_NODE_MAX_PEERS);
    memcpy(c->allow[c->nallow++], a.key, 32);
    return CHP_OK;
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

static int quota_parse(const char *v, uint64_t *q)
{
    return chp_parse_size(v, q) == 0 && *q >= CHP_CONFIG_QUOTA_MIN && *q <= CHP_CONFIG_QUOTA_MAX
               ? 0
               : -1;
}

/* ---- the flags ---- */

static int f_help(chp_config *c, const char *v)
{
    (void)v;
    c->action = CHP_CONFIG_HELP;
    return CHP_OK;
}

static int f_version(chp_config *c, const char *v)
{
    (void)v;
    c->action = CHP_CONFIG_VERSION;
    return CHP_OK;
}

static int f_home(chp_config *c, const char *v)
{
    c->home_arg = v;
    return CHP_OK;
}

static int f_listen(chp_config *c, const char *v)
{
    c->have_listen = 1;
    return set_listen(c, v);
}

static int f_peer(chp_config *c, const char *v)
{
    return add_peer(c, v);
}

static int f_allow(chp_config *c, const char *v)
{
    return add_allow(c, v);
}

static int f_passfile(chp_config *c, const char *v)
{
    c->passfile = v;
    return CHP_OK;
}

static int f_no_discovery(chp_config *c, const char *v)
{
    (void)v;
    c->discovery = 0;
    c->have_discovery = 1;
    return CHP_OK;
}

static int f_relay(chp_config *c, const char *v)
{
    (void)v;
    c->relay = 1;
    c->have_relay = 1;
    return CHP_OK;
}

static int f_quota(chp_config *c, const char *v)
{
    if (quota_parse(v, &c->quota) != 0)
        return config_error(c, "--quota %s: expected a size from 1M to 64T, like 512M or 8G", v);
    c->have_quota = 1;
    return CHP_OK;
}

static int f_log_max(chp_config *c, const char *v)
{
    if (chp_parse_size(v, &c->log_max) || c->log_max < CHP_CONFIG_LOG_MAX_MIN ||
        c->log_max > CHP_CONFIG_LOG_MAX_MAX)
        return config_error(c, "--log-max %s: expected a size from 4K to 1G", v);
    return CHP_OK;
}

static int f_log_level(chp_config *c, const char *v)
{
    if ((c->log_level = chp_log_parse_level(v)) < 0)
        return config_error(c, "--log-level %s: expected error, warn, info or debug", v);
    c->have_log = 1;
    return CHP_OK;
}

static int f_metrics(chp_config *c, const char *v)
{
    if (chp_config_set_metrics(c, v) != CHP_OK)
        return config_error(c, "--metrics %s: expected HOST:PORT (a numeric address) or PORT", v);
    c->have_metrics = 1;
    return CHP_OK;
}

static int f_summary(chp_config *c, const char *v)
{
    if (chp_config_set_summary(c, v) != CHP_OK)
        return config_error(c,
                            "--summary-every %s: expected minutes or a time like 30s, 10m, 1h "
                            "(0 = off)",
                            v);
    c->have_summary = 1;
    return CHP_OK;
}

static int f_listen_obfs4(chp_config *c, const char *v)
{
    c->have_listen_obfs4 = 1;
    return chp_config_set_listen_obfs4(c, v);
}

static int set_max_file(chp_config *c, const char *v, int flag)
{
    uint64_t n;
    if (chp_parse_size(v, &n) || n < 1 || n > (64ull << 30))
        return flag ? config_error(c, "--max-file %s: expected a size from 1 to 64G, like 16M", v)
                    : 1; /* BAD_VALUE: the file's reader names the line */
    if (flag || !c->have_max_file)
        c->max_file = n;
    c->have_max_file |= flag;
    return CHP_OK;
}

static int set_save_dir(chp_config *c, const char *v, int flag)
{
    if (v[0] != '/' || strlen(v) >= sizeof c->save_dir)
        return flag ? config_error(c, "--save-dir %s: expected an absolute directory", v)
                    : 1; /* BAD_VALUE: the file's reader names the line */
    if (flag || !c->have_save_dir)
        snprintf(c->save_dir, sizeof c->save_dir, "%s", v);
    c->have_save_dir |= flag;
    return CHP_OK;
}

static int f_max_file(chp_config *c, const char *v)
{
    return set_max_file(c, v, 1);
}

static int f_save_dir(chp_config *c, const char *v)
{
    return set_save_dir(c, v, 1);
}

static const struct flag {
    const char *name;
    int takes_value;
    int (*fn)(chp_config *c, const char *v);
} flags[] = {
    {"--help", 0, f_help},
    {"-h", 0, f_help},
    {"--version", 0, f_version},
    {"--home", 1, f_home},
    {"--listen", 1, f_listen},
    {"--peer", 1, f_peer},
    {"--allow", 1, f_allow},
    {"--spool", 1, add_spool},
    {"--passphrase-file", 1, f_passfile},
    {"--no-discovery", 0, f_no_discovery},
    {"--relay", 0, f_relay},
    {"--quota", 1, f_quota},
    {"--log-max", 1, f_log_max},
    {"--log-level", 1, f_log_level},
    {"--metrics", 1, f_metrics},
    {"--summary-every", 1, f_summary},
    {"--listen-obfs4", 1, f_listen_obfs4},
    {"--max-file", 1, f_max_file},
    {"--save-dir", 1, f_save_dir},
};

int chp_config_parse_args(chp_config *c, int argc, char **argv)
{
    for (int i = 1; i < argc && c->action == CHP_CONFIG_RUN; i++) {
        const struct flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof *flags && !f; k++)
            if (!strcmp(argv[i], flags[k].name))
                f = &flags[k];
        if (!f)
            return config_error(c, "unknown option '%s' (try --help)", argv[i]);
        if (f->takes_value && i + 1 >= argc)
            return config_error(c, "%s needs a value (try --help)", argv[i]);
        int rc = f->fn(c, f->takes_value ? argv[++i] : NULL);
        if (rc != CHP_OK)
            return rc;
    }
    return CHP_OK;
}

/* ---- the file ---- */

/* A file key's handler: CHP_OK, CHP_E_ARG with err set, or BAD_VALUE for
 * the file's generic "unknown setting or bad value" line. */
#define BAD_VALUE 1

static int k_listen(chp_config *c, const char *v)
{
    return c->have_listen ? CHP_OK : set_listen(c, v);
}

static int k_relay(chp_config *c, const char *v)
{
    int b;
    if (yes_no(v, &b) != 0)
        return BAD_VALUE;
    if (!c->have_relay)
        c->relay = b;
    return CHP_OK;
}

static int k_discovery(chp_config *c, const char *v)
{
    int b;
    if (yes_no(v, &b) != 0)
        return BAD_VALUE;
    if (!c->have_discovery)
        c->discovery = b;
    return CHP_OK;
}

static int k_quota(chp_config *c, const char *v)
{
    uint64_t q;
    if (quota_parse(v, &q) != 0)
        return BAD_VALUE;
    if (!c->have_quota)
        c->quota = q;
    return CHP_OK;
}

static int k_log_level(chp_config *c, const char *v)
{
    int level = chp_log_parse_level(v);
    if (level < 0)
        return BAD_VALUE;
    if (!c->have_log)
        c->log_level = level;
    return CHP_OK;
}

static int k_metrics(chp_config *c, const char *v)
{
    return c->have_metrics || chp_config_set_metrics(c, v) == CHP_OK ? CHP_OK : BAD_VALUE;
}

static int k_summary(chp_config *c, const char *v)
{
    return c->have_summary || chp_config_set_summary(c, v) == CHP_OK ? CHP_OK : BAD_VALUE;
}

static int k_listen_obfs4(chp_config *c, const char *v)
{
    return c->have_listen_obfs4 ? CHP_OK : chp_config_set_listen_obfs4(c, v);
}

static int k_max_file(chp_config *c, const char *v)
{
    return set_max_file(c, v, 0);
}

static int k_save_dir(chp_config *c, const char *v)
{
    return set_save_dir(c, v, 0);
}

static const struct key {
    const char *name;
    int (*fn)(chp_config *c, const char *v);
} keys[] = {
    {"listen", k_listen},
    {"peer", add_peer},
    {"allow", add_allow},
    {"relay", k_relay},
    {"discovery", k_discovery},
    {"quota", k_quota},
    {"log-level", k_log_level},
    {"metrics", k_metrics},
    {"summary-every", k_summary},
    {"spool", add_spool},
    {"listen-obfs4", k_listen_obfs4},
    {"transport obfs4", chp_config_set_obfs4_bin},
    {"max-file", k_max_file},
    {"save-dir", k_save_dir},
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r'))
        s[--l] = '\0';
    return s;
}

/* One line (NUL-terminated, no line end, trimmed, not blank, no comment). */
static int parse_line(chp_config *c, const char *path, int lineno, char *p)
{
    char *eq = strchr(p, '=');
    if (!eq)
        return config_error(c, "%s:%d: expected key = value", path, lineno);
    *eq = '\0';
    char *k = trim(p), *v = trim(eq + 1);
    const struct key *key = NULL;
    for (size_t i = 0; i < sizeof keys / sizeof *keys && !key; i++)
        if (!strcmp(k, keys[i].name))
            key = &keys[i];
    int rc = key ? key->fn(c, v) : BAD_VALUE;
    if (rc == BAD_VALUE)
        return config_error(c, "%s:%d: unknown setting or bad value: %s = %s", path, lineno, k, v);
    return rc;
}

int chp_config_parse_text(chp_config *c, const char *path, const char *text, size_t len)
{
    if (c->text) /* peers[] may point into the first copy */
        return config_error(c, "%s: read twice", path);
    if (!(c->text = malloc(len + 1))) {
        config_error(c, "%s: out of memory", path);
        return CHP_E_NOMEM;
    }
    memcpy(c->text, text, len);
    c->text[len] = '\0';
    char *line = c->text;
    int lineno = 0;
    while (line && line < c->text + len) {
        char *end = memchr(line, '\n', (size_t)(c->text + len - line));
        if (end)
            *end = '\0';
        lineno++;
        char *p = trim(line);
        line = end ? end + 1 : NULL;
        if (!*p || *p == '#')
            continue;
        int rc = parse_line(c, path, lineno, p);
        if (rc != CHP_OK)
            return rc;
    }
    return CHP_OK;
}

int chp_config_read_file(chp_config *c)
{
    char path[sizeof c->home + sizeof CHP_CONFIG_FILE + 1];
    snprintf(path, sizeof path, "%s/%s", c->home, CHP_CONFIG_FILE);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return CHP_OK;
        config_error(c, "%s: %s", path, strerror(errno));
        return CHP_E_IO;
    }
    int rc = CHP_E_NOMEM;
    char *buf = malloc(CHP_CONFIG_FILE_MAX + 1);
    if (!buf) {
        config_error(c, "%s: out of memory", path);
        goto out;
    }
    size_t len = fread(buf, 1, CHP_CONFIG_FILE_MAX + 1, f);
    rc = CHP_E_IO;
    if (ferror(f))
        config_error(c, "%s: %s", path, strerror(errno));
    else if (len > CHP_CONFIG_FILE_MAX)
        config_error(c, "%s: larger than %d bytes", path, CHP_CONFIG_FILE_MAX);
    else
        rc = chp_config_parse_text(c, path, buf, len);
out:
    free(buf);
    fclose(f);
    return rc;
}

int chp_config_finish(chp_config *c, int ipv6)
{
    if (!c->listen[0])
        snprintf(c->listen, sizeof c->listen, ipv6 ? "[::]:%d" : "0.0.0.0:%d",
                 CHP_NODE_PORT_DEFAULT);
    if (!c->quota)
        c->quota = c->relay ? CHP_NODE_QUOTA_RELAY : CHP_NODE_QUOTA_USER;
    if (!c->log_max)
        c->log_max = CHP_CONFIG_LOG_MAX_DEFAULT;
    const char *bad = chp_mesh_listen_problem(c->listen);
    if (bad)
        return config_error(c, "--listen %s: %s", c->listen, bad);
    return CHP_OK;
}

void chp_config_node_opts(const chp_config *c, chp_node_opts *o)
{
    memset(o, 0, sizeof *o);
    o->home = c->home;
    o->listen = c->listen;
    for (size_t i = 0; i < c->npeers; i++)
        o->peers[i] = c->peers[i];
    o->npeers = c->npeers;
    o->discovery = c->discovery;
    o->relay = c->relay;
    o->quota = c->quota;
    memcpy(o->allow, c->allow, sizeof o->allow);
    o->nallow = c->nallow;
    o->metrics = c->metrics;
    o->summary_ms = c->summary_ms;
    memcpy(o->spools, c->spools, sizeof o->spools);
    o->nspools = c->nspools;
    o->listen_obfs4 = c->listen_obfs4;
    o->obfs4_bin = c->obfs4_bin;
    o->max_file = c->max_file;
    o->save_dir = c->save_dir;
}
