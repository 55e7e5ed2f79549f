/* reload.c - SIGHUP: chapard.conf read again and what changed applied to
 * the running node (reload.h). */
#include "node/daemon/reload.h"
#include "node/common/log.h"
#include "node/daemon/node_int.h"
#include "proto/addr.h"
#include "proto/id.h"

#include <stdlib.h>
#include <string.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Logged while the more talkative of the two levels is on, so the line
 * shows under either. */
static void apply_log_level(int from, int to)
{
    if (to > from)
        chp_log_set_level(to);
    chp_info("reload: log-level %s -> %s", level_names[from], level_names[to]);
    chp_log_set_level(to);
}

static int has_key(const uint8_t (*keys)[32], size_t n, const uint8_t key[32])
{
    for (size_t i = 0; i < n; i++)
        if (!memcmp(keys[i], key, 32))
            return 1;
    return 0;
}

/* Keys of a not in b, as " chpn1..." each, into out. */
static size_t keys_missing(const chp_config *a, const chp_config *b, char *out, size_t cap)
{
    size_t count = 0, used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < a->nallow; i++) {
        if (has_key(b->allow, b->nallow, a->allow[i]))
            continue;
        char k[CHP_B32KEY_HRP_MAX + 64];
        chp_b32key_encode(CHP_NODEKEY_HRP, a->allow[i], k);
        if (used + strlen(k) + 2 < cap)
            used += (size_t)snprintf(out + used, cap - used, " %s", k);
        count++;
    }
    return count;
}

static int apply_allow(chp_node *n, const chp_config *cur, const chp_config *next)
{
    char added[CHP_NODE_MAX_PEERS * 70], removed[CHP_NODE_MAX_PEERS * 70];
    size_t na = keys_missing(next, cur, added, sizeof added);
    size_t nr = keys_missing(cur, next, removed, sizeof removed);
    if (!na && !nr)
        return 0;
    size_t cut = chp_mesh_allow_set(n->mesh, (const uint8_t(*)[32])next->allow, next->nallow);
    chp_info("reload: allow-list %zu -> %zu keys%s%s%s%s%s; links cut: %zu", cur->nallow,
             next->nallow, na ? ", added" : "", added, nr ? ", removed" : "", removed,
             next->nallow ? "" : " (anyone may connect)", cut);
    return 1;
}

static int has_peer(const chp_config *c, const char *a)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (!strcmp(c->peers[i], a))
            return 1;
    return 0;
}

/* The peers of from that to lacks: removed from the mesh (add 0) or
 * added to it (add 1), one line each. */
static int peers_missing(chp_node *n, const chp_config *from, const chp_config *to, int add)
{
    int changes = 0;
    for (size_t i = 0; i < from->npeers; i++) {
        const char *a = from->peers[i];
        if (has_peer(to, a))
            continue;
        int rc = add ? chp_mesh_peer_add(n->mesh, a, strlen(a))
                     : chp_mesh_peer_remove(n->mesh, a, strlen(a));
        if (rc == CHP_OK || rc == (add ? CHP_E_DUP : CHP_E_NOT_FOUND))
            chp_info("reload: peer %s: %s", add ? "added" : "removed", a);
        else
            chp_warn("reload: peer %s: cannot %s: %s", a, add ? "add" : "remove", chp_strerror(rc));
        changes++;
    }
    return changes;
}

/* Listen and relay mode are bound at start: the new value waits for the
 * next start, and next keeps the running one so the line comes once. */
static int restart_only(const chp_config *cur, chp_config *next)
{
    int changes = 0;
    if (strcmp(cur->listen, next->listen)) {
        chp_warn("reload: listen %s -> %s takes effect at the next start", cur->listen,
                 next->listen);
        memcpy(next->listen, cur->listen, sizeof next->listen);
        changes++;
    }
    if (cur->relay != next->relay) {
        chp_warn("reload: relay %s -> %s takes effect at the next start", cur->relay ? "yes" : "no",
                 next->relay ? "yes" : "no");
        next->relay = cur->relay;
        changes++;
    }
    return changes;
}

int chp_reload_apply(chp_node *n, const chp_config *cur, chp_config *next)
{
    int changes = restart_only(cur, next);
    if (cur->log_level != next->log_level) {
        apply_log_level(cur->log_level, next->log_level);
        changes++;
    }
    if (cur->quota != next->quota) {
        chp_store_set_quota(n->store, next->quota);
        chp_info("reload: quota %llu -> %llu bytes", (unsigned long long)cur->quota,
                 (unsigned long long)next->quota);
        changes++;
    }
    changes += apply_allow(n, cur, next);
    changes += chp_metrics_reload(n, cur, next);
    changes += peers_missing(n, cur, next, 0) + peers_missing(n, next, cur, 1);
    if (cur->discovery != next->discovery) {
        int rc = chp_mesh_discovery(n->mesh, next->discovery);
        if (rc == CHP_OK)
            chp_info("reload: discovery %s", next->discovery ? "on" : "off");
        else
            chp_warn("reload: discovery on: %s", chp_strerror(rc));
        changes++;
    }
    return changes;
}

/* The flags and the file parsed as at start, into next. */
static int parse_again(const chp_reload_ctx *r, chp_config *next)
{
    chp_config_init(next);
    if (chp_config_parse_args(next, r->argc, r->argv) != CHP_OK)
        return -1;
    memcpy(next->home, r->cur->home, sizeof next->home);
    if (chp_config_read_file(next) != CHP_OK)
        return -1;
    return chp_config_finish(next, !next->listen[0] && r->ipv6()) == CHP_OK ? 0 : -1;
}

void chp_reload(void *ctx)
{
    chp_reload_ctx *r = ctx;
    chp_config *next = malloc(sizeof *next);
    if (!next) {
        chp_err_log("reload: out of memory; the running settings stay");
        return;
    }
    if (parse_again(r, next) != 0) {
        chp_err_log("reload: %s; the running settings stay", next->err);
        chp_config_fini(next);
        free(next);
        return;
    }
    int changes = chp_reload_apply(r->node, r->cur, next);
    if (!changes)
        chp_info("reload: %s/%s unchanged", r->cur->home, CHP_CONFIG_FILE);
    chp_config_fini(r->cur); /* the running peers' strings go with it */
    *r->cur = *next;         /* next->text moves to cur */
    free(next);
}
