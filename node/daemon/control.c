/* control.c - the control API on ipc://<home>/control (docs/CONTROL.md):
 * a request is a multipart message [command, args...]; the reply is
 * ["ok", payload...] or ["error", one line]. */
#include "node/common/clock.h"
#include "node/common/i18n.h"
#include "node/common/log.h"
#include "node/common/version.h"
#include "node/daemon/bundles.h"
#include "node/daemon/node_int.h"
#include "proto/addr.h"
#include "proto/envelope.h"
#include "proto/hex.h"
#include "proto/id.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_FRAMES 8

static void reply(chp_node *n, zmq_msg_t *rid, const char *status, const char *body, size_t len)
{
    chp_control_reply(n, zmq_msg_data(rid), zmq_msg_size(rid), status, body, len);
}

static void reply_str(chp_node *n, zmq_msg_t *rid, const char *status, const char *body)
{
    reply(n, rid, status, body, strlen(body));
}

/* Appends "key: value\n". */
static size_t kv(char *buf, size_t cap, size_t off, const char *key, unsigned long long v)
{
    int k = snprintf(buf + off, off < cap ? cap - off : 0, "%s: %llu\n", key, v);
    return k > 0 ? off + (size_t)k : off;
}

size_t chp_node_status_text(chp_node *n, char *b, size_t cap)
{
    char addr[CHP_ADDR_STR_MAX + 1];
    size_t o = 0;
    chp_store_stats st;
    chp_store_stats_get(n->store, &st);
    chp_mesh_stats ms;
    chp_mesh_stats_get(n->mesh, &ms);
    const chp_mesh_counters *c = &ms.ctr;
    uint64_t rejected = c->rej_size + c->rej_version + c->rej_ttl + c->rej_expired + c->rej_future +
                        c->rej_pow + c->rej_full + c->rej_author + c->rej_malformed + c->rej_sync +
                        c->rate_dropped;
    chp_mesh_address(n->mesh, addr, sizeof addr);
    o += (size_t)snprintf(b + o, cap - o, "mode: %s\naddress: %s\n", n->relay ? "relay" : "node",
                          addr);
    o = kv(b, cap, o, "peers connected", ms.connected);
    o = kv(b, cap, o, "relays connected", ms.relays);
    o = kv(b, cap, o, "links tcp", ms.links_tcp);
    o = kv(b, cap, o, "links obfs4", ms.links_obfs4);
    o = kv(b, cap, o, "links socks5", ms.links_socks5);
    o = kv(b, cap, o, "passive peers", ms.passive);
    o = kv(b, cap, o, "envelopes stored", st.envelopes);
    o = kv(b, cap, o, "bytes stored", st.bytes);
    o = kv(b, cap, o, "quota", st.quota);
    o += (size_t)snprintf(b + o, cap - o, "store full: %s\n", st.full ? "yes" : "no");
    o = kv(b, cap, o, "accepted", c->accepted);
    o = kv(b, cap, o, "duplicates", c->duplicates);
    o = kv(b, cap, o, "rejected", rejected);
    o = kv(b, cap, o, "rejected size", c->rej_size);
    o = kv(b, cap, o, "rejected version", c->rej_version);
    o = kv(b, cap, o, "rejected ttl", c->rej_ttl);
    o = kv(b, cap, o, "rejected expired", c->rej_expired);
    o = kv(b, cap, o, "rejected future", c->rej_future);
    o = kv(b, cap, o, "rejected pow", c->rej_pow);
    o = kv(b, cap, o, "rejected full", c->rej_full);
    o = kv(b, cap, o, "rejected malformed", c->rej_malformed);
    o = kv(b, cap, o, "rejected author rate", c->rej_author);
    o = kv(b, cap, o, "rejected sync", c->rej_sync);
    o = kv(b, cap, o, "rejected rate", c->rate_dropped);
    o = kv(b, cap, o, "rejected banned", c->refused_banned);
    o = kv(b, cap, o, "rejected not allowed", c->refused_allow);
    o = kv(b, cap, o, "rejected view full", c->refused_full_view);
    o = kv(b, cap, o, "connections open", ms.connections);
    o = kv(b, cap, o, "rejected connections", c->conns_refused);
    o = kv(b, cap, o, "connections timed out", c->conns_timedout);
    o = kv(b, cap, o, "evictions", c->evictions);
    o = kv(b, cap, o, "bans", c->bans);
    o = kv(b, cap, o, "sync rounds", c->sync_rounds);
    o = kv(b, cap, o, "syncs completed", c->syncs_done);
    o = kv(b, cap, o, "sync fetched", c->sync_fetched);
    o = kv(b, cap, o, "beacons received", c->beacons_rx);
    o = kv(b, cap, o, "bytes received", c->rx_bytes);
    o = kv(b, cap, o, "bytes sent", c->tx_bytes);
    o = kv(b, cap, o, "prunes", c->prunes);
    o = kv(b, cap, o, "grafts", c->grafts);
    o = kv(b, cap, o, "ids announced", c->ihave_tx);
    o = kv(b, cap, o, "uptime", (chp_mono_ms() - n->started_ms) / 1000);
    if (o < cap)
        o += chp_pt_status(n, b + o, cap - o);
    int lock = n->msg ? chp_msg_lock_state(n->msg) : CHP_MSG_NO_IDENTITY;
    const char *nick = n->msg && lock == CHP_MSG_READY ? chp_msg_nick(n->msg) : "";
    o += (size_t)snprintf(b + o, o < cap ? cap - o : 0, "identity: %s\nnick: %s\nversion: %s\n",
                          lock == CHP_MSG_READY    ? "unlocked"
                          : lock == CHP_MSG_LOCKED ? "locked"
                                                   : "none",
                          nick[0] ? nick : "-", CHP_VERSION);
    return o < cap ? o : cap - 1;
}

static void status(chp_node *n, zmq_msg_t *rid)
{
    char b[4096];
    reply(n, rid, "ok", b, chp_node_status_text(n, b, sizeof b));
}

/* `peers`: one line per neighbour: key, state, direction, address, rx,
 * tx, why dialling fails. */
struct peers_out {
    char *b;
    size_t o, cap;
};

static void peer_line(void *ctx, const chp_mesh_peer *p)
{
    struct peers_out *po = ctx;
    char key[80]; /* chpn1..., as in ADDRESS */
    chp_b32key_encode(CHP_NODEKEY_HRP, p->key, key);
    int k = snprintf(po->b + po->o, po->cap - po->o, "%s\t%s\t%s\t%s\t%llu\t%llu\t%s\t%s\n", key,
                     p->state, p->dir, p->addr, (unsigned long long)p->rx,
                     (unsigned long long)p->tx, p->reason, p->transport);
    if (k > 0 && (size_t)k < po->cap - po->o)
        po->o += (size_t)k;
}

static void peers(chp_node *n, zmq_msg_t *rid)
{
    struct peers_out po = {.cap = 256 + CHP_MESH_LINKS_MAX * (CHP_ADDR_STR_MAX + 320)};
    if (!(po.b = malloc(po.cap))) {
        reply_str(n, rid, "error", N_("out of memory"));
        return;
    }
    po.b[0] = '\0';
    chp_mesh_peers(n->mesh, peer_line, &po);
    reply(n, rid, "ok", po.b, po.o);
    free(po.b);
}

static void publish(chp_node *n, zmq_msg_t *rid, zmq_msg_t *env)
{
    uint8_t id[32];
    const uint8_t *e = zmq_msg_data(env);
    size_t len = zmq_msg_size(env);
    int rc = chp_mesh_publish(n->mesh, e, len);
    if (rc != CHP_OK && rc != CHP_E_DUP) {
        reply_str(n, rid, "error", chp_strerror(rc));
        return;
    }
    chp_envelope_id(e, len, id);
    char hex[65];
    chp_hex_encode(id, 32, hex);
    reply(n, rid, "ok", hex, 64);
}

/* Hands a request to the messaging layer; 0 if it is not one of its. */
static int messaging(chp_node *n, zmq_msg_t *rid, const char *cmd, zmq_msg_t *argv, int nargs)
{
    int known = 0;
    for (size_t i = 0; chp_msg_command(i); i++)
        known |= !strcmp(cmd, chp_msg_command(i));
    if (!known)
        return 0;
    if (!n->msg) {
        reply_str(n, rid, "error", N_("relay nodes have no user identity"));
        return 1;
    }
    const uint8_t *a[MAX_FRAMES];
    size_t al[MAX_FRAMES];
    for (int i = 0; i < nargs; i++) {
        a[i] = zmq_msg_data(&argv[i]);
        al[i] = zmq_msg_size(&argv[i]);
    }
    int ok = 0, wiped = 0;
    char *out = NULL;
    size_t outlen = 0;
    if (!chp_msg_control(n->msg, cmd, nargs, a, al, &ok, &out, &outlen, &wiped))
        return 0;
    if (out)
        reply(n, rid, ok ? "ok" : "error", out, outlen);
    else
        reply_str(n, rid, "error", N_("out of memory"));
    free(out);
    if (wiped)
        n->wiped = 1;
    return 1;
}

/* ---- the node's own commands (CONTROL.md "Requests") ---- */

/* A request's arguments: f[0] is the client's routing id, f[2..] the
 * arguments after the command. */
static void c_status(chp_node *n, zmq_msg_t *f)
{
    status(n, &f[0]);
}

/* One address per line: the plain one, then the obfs4 one while its
 * server runs (pt.c). */
static void c_address(chp_node *n, zmq_msg_t *f)
{
    char addr[2 * CHP_ADDR_STR_MAX + 4];
    chp_mesh_address(n->mesh, addr, sizeof addr);
    size_t o = strlen(addr);
    addr[o++] = '\n';
    o += chp_pt_addresses(n, addr + o, sizeof addr - o);
    addr[o] = '\0';
    if (addr[o - 1] == '\n')
        addr[o - 1] = '\0';
    reply_str(n, &f[0], "ok", addr);
}

static void c_peers(chp_node *n, zmq_msg_t *f)
{
    peers(n, &f[0]);
}

/* The host of a peer-add that does not resolve, named in the error. */
static void peer_unresolved(chp_node *n, zmq_msg_t *f)
{
    chp_addr a;
    char msg[CHP_ADDR_HOST_MAX + 96];
    if (chp_addr_parse(zmq_msg_data(&f[2]), zmq_msg_size(&f[2]), &a) == CHP_OK)
        snprintf(msg, sizeof msg, N_("host %s does not resolve (a typo, or no name service here?)"),
                 a.host);
    else
        snprintf(msg, sizeof msg, "%s", chp_strerror(CHP_E_ADDR_RESOLVE));
    reply_str(n, &f[0], "error", msg);
}

static void c_peer_add(chp_node *n, zmq_msg_t *f)
{
    int rc = chp_mesh_peer_add(n->mesh, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]));
    if (rc == CHP_E_ARG)
        reply_str(n, &f[0], "error", N_("that is this node's own address"));
    else if (rc == CHP_E_NOT_FOUND)
        reply_str(n, &f[0], "error", N_("no such peer"));
    else if (rc == CHP_E_DUP)
        reply_str(n, &f[0], "error",
                  N_("already linked to that node at another address (see peer list); "
                     "peer remove that one first"));
    else if (rc == CHP_E_ADDR_RESOLVE)
        peer_unresolved(n, f);
    else
        reply_str(n, &f[0], rc == CHP_OK ? "ok" : "error", rc == CHP_OK ? "" : chp_strerror(rc));
}

static void c_peer_remove(chp_node *n, zmq_msg_t *f)
{
    int rc = chp_mesh_peer_remove(n->mesh, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]));
    if (rc == CHP_E_NOT_FOUND)
        reply_str(n, &f[0], "error", N_("no such peer"));
    else
        reply_str(n, &f[0], rc == CHP_OK ? "ok" : "error", rc == CHP_OK ? "" : chp_strerror(rc));
}

static void c_publish(chp_node *n, zmq_msg_t *f)
{
    publish(n, &f[0], &f[2]);
}

/* `chapar stop`: the reply goes out first, then the loop ends as on
 * SIGTERM (everything committed, the store closed, exit 0). */
static void c_stop(chp_node *n, zmq_msg_t *f)
{
    reply_str(n, &f[0], "ok", "");
    chp_info("stop requested over the control socket");
    n->stop_asked = 1;
}

/* ---- discovery on or off, saved in chapard.conf ---- */

/* Rewrites DIR/chapard.conf with `discovery = yes|no` in place of any
 * discovery line, keeping every other line (comments too); through a
 * temporary file and a rename, so a crash leaves the old file or the new
 * one, never half of one. */
static int save_setting(const chp_node *n, int on)
{
    char path[4200], tmp[4200], line[1024];
    snprintf(path, sizeof path, "%s/chapard.conf", n->home);
    snprintf(tmp, sizeof tmp, "%s/.chapard.conf.tmp", n->home);
    FILE *in = fopen(path, "r");
    if (!in && errno != ENOENT)
        return -1;
    FILE *out = fopen(tmp, "w");
    if (!out) {
        if (in)
            fclose(in);
        return -1;
    }
    int rc = 0;
    while (in && fgets(line, sizeof line, in)) {
        const char *k = line + strspn(line, " \t");
        size_t kl = strcspn(k, " \t=");
        if (kl == 9 && !strncmp(k, "discovery", 9) && strchr(k, '='))
            continue;
        rc |= fputs(line, out) < 0;
        if (!strchr(line, '\n'))
            rc |= fputc('\n', out) == EOF;
    }
    rc |= fprintf(out, "discovery = %s\n", on ? "yes" : "no") < 0;
    if (in)
        fclose(in);
    rc |= fflush(out) != 0 || fsync(fileno(out)) != 0;
    rc |= fclose(out) != 0;
    if (rc || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* The `discovery` command: arg NULL asks ("on" or "off" in out); "on" or
 * "off" opens or closes the beacon sockets now and saves the choice as
 * `discovery = yes|no` in DIR/chapard.conf. Returns 1 for ok, 0 for an
 * error; out gets the one-line answer either way. */
static int discovery(chp_node *n, const char *arg, size_t len, char *out, size_t cap)
{
    int on = chp_mesh_discovery_on(n->mesh);
    if (!arg) {
        snprintf(out, cap, "%s", on ? "on" : "off");
        return 1;
    }
    int want;
    if (len == 2 && !memcmp(arg, "on", 2))
        want = 1;
    else if (len == 3 && !memcmp(arg, "off", 3))
        want = 0;
    else {
        snprintf(out, cap, N_("usage: discovery [on|off]"));
        return 0;
    }
    if (want != on && chp_mesh_discovery(n->mesh, want) != CHP_OK) {
        snprintf(out, cap, N_("cannot open the discovery port (see the log)"));
        return 0;
    }
    if (save_setting(n, want) != 0) {
        chp_warn("cannot save discovery = %s in %s/chapard.conf: %s", want ? "yes" : "no", n->home,
                 strerror(errno));
        snprintf(out, cap,
                 N_("discovery %s until chapard stops (cannot write %s/chapard.conf: %s)"),
                 want ? "on" : "off", n->home, strerror(errno));
        return 1;
    }
    snprintf(out, cap, N_("discovery %s, saved in %s/chapard.conf"), want ? "on" : "off", n->home);
    return 1;
}

/* `discovery [on|off]`: LAN beacons at runtime (the TUI's /discovery). */
static void c_discovery(chp_node *n, zmq_msg_t *f)
{
    char ans[4400];
    int has = zmq_msg_more(&f[1]) != 0;
    int ok = discovery(n, has ? zmq_msg_data(&f[2]) : NULL, has ? zmq_msg_size(&f[2]) : 0, ans,
                       sizeof ans);
    reply_str(n, &f[0], ok ? "ok" : "error", ans);
}

static const struct node_cmd {
    const char *name;
    int nargs;
    void (*fn)(chp_node *n, zmq_msg_t *f);
} node_cmds[] = {
    /* clang-format off */
    {"status", 0, c_status},     {"address", 0, c_address},         {"peers", 0, c_peers},
    {"peer-add", 1, c_peer_add}, {"peer-remove", 1, c_peer_remove}, {"publish", 1, c_publish},
    {"stop", 0, c_stop},         {"discovery", 0, c_discovery},     {"discovery", 1, c_discovery},
    {"bundle-want", 2, chp_bundle_c_want},     {"bundle-export", 5, chp_bundle_c_export},
    {"bundle-export", 1, chp_bundle_c_export_blind},
    {"bundle-import", 2, chp_bundle_c_import}, {"bundle-status", 1, chp_bundle_c_status},
    /* clang-format on */
};

void chp_control_handle(chp_node *n)
{
    for (int round = 0; round < 64; round++) {
        zmq_msg_t f[MAX_FRAMES];
        int nf = 0, more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, n->control, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (nf < MAX_FRAMES)
                f[nf++] = m;
            else
                zmq_msg_close(&m);
        }
        if (nf == 0)
            return;
        if (nf < 2) {
            for (int i = 0; i < nf; i++)
                zmq_msg_close(&f[i]);
            continue;
        }
        char cmd[32] = "";
        size_t cl = zmq_msg_size(&f[1]);
        if (cl < sizeof cmd) {
            memcpy(cmd, zmq_msg_data(&f[1]), cl);
            cmd[cl] = '\0';
        }
        int args = nf - 2;
        const struct node_cmd *nc = NULL;
        for (size_t k = 0; k < sizeof node_cmds / sizeof *node_cmds && !nc; k++)
            if (!strcmp(cmd, node_cmds[k].name) && args == node_cmds[k].nargs)
                nc = &node_cmds[k];
        if (nc) {
            nc->fn(n, f);
        } else if (!messaging(n, &f[0], cmd, f + 2, args)) {
            reply_str(n, &f[0], "error", N_("unknown command or wrong arguments"));
        }
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
    }
}
