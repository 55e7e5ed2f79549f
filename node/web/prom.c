/* prom.c - status lines to Prometheus text exposition: a table of the
 * known keys (name, type, help), a rule for the others. */
#include "node/web/prom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_ 600 /* bytes of one status line looked at */

static const struct metric {
    const char *key;  /* as `status` spells it */
    const char *name; /* without the chapar_ prefix */
    int counter;      /* 1: counter (grows since start), 0: gauge */
    const char *help;
} metrics[] = {
    {"peers connected", "peers_connected", 0, "Neighbours with a live link and a HELLO exchanged."},
    {"relays connected", "relays_connected", 0, "Connected neighbours that run as relays."},
    {"passive peers", "passive_peers", 0, "Addresses in the passive view, not linked."},
    {"envelopes stored", "envelopes_stored", 0, "Envelopes in the store now."},
    {"bytes stored", "stored_bytes", 0, "Total size of the envelopes in the store."},
    {"quota", "quota_bytes", 0, "Bytes of envelopes the store may hold."},
    {"store full", "store_full", 0, "1 while the store refuses foreign envelopes."},
    {"accepted", "accepted_total", 1, "New envelopes stored since start."},
    {"duplicates", "duplicates_total", 1, "Envelopes received again since start."},
    {"rejected", "rejected_total", 1, "Envelopes and frames rejected, all reasons."},
    {"rejected size", "rejected_size_total", 1, "Envelopes rejected: too large."},
    {"rejected version", "rejected_version_total", 1, "Envelopes rejected: unknown version."},
    {"rejected ttl", "rejected_ttl_total", 1, "Envelopes rejected: lifetime too long."},
    {"rejected expired", "rejected_expired_total", 1, "Envelopes rejected: expired."},
    {"rejected future", "rejected_future_total", 1, "Envelopes rejected: created in the future."},
    {"rejected pow", "rejected_pow_total", 1, "Envelopes rejected: proof of work."},
    {"rejected full", "rejected_full_total", 1, "Envelopes rejected: store full."},
    {"rejected malformed", "rejected_malformed_total", 1, "Frames that do not parse."},
    {"rejected sync", "rejected_sync_total", 1, "Bad Negentropy sync messages."},
    {"rejected rate", "rejected_rate_total", 1, "Frames dropped by the rate limits."},
    {"rejected banned", "rejected_banned_total", 1, "Connections refused from banned keys."},
    {"rejected not allowed", "rejected_not_allowed_total", 1,
     "Connections refused by the allow-list."},
    {"rejected view full", "rejected_view_full_total", 1,
     "New neighbours declined: active view full."},
    {"connections open", "connections_open", 0, "Incoming TCP connections open now."},
    {"rejected connections", "rejected_connections_total", 1,
     "Incoming connections refused for a limit."},
    {"connections timed out", "connections_timed_out_total", 1,
     "Incoming connections closed for silence."},
    {"evictions", "evictions_total", 1, "Neighbours dropped to make room for a newcomer."},
    {"bans", "bans_total", 1, "Neighbours banned since start."},
    {"sync rounds", "sync_rounds_total", 1, "Negentropy messages sent or answered."},
    {"syncs completed", "syncs_completed_total", 1, "Reconciliations run to the end."},
    {"sync fetched", "sync_fetched_total", 1, "Envelopes requested after a sync."},
    {"beacons received", "beacons_received_total", 1, "LAN discovery beacons heard."},
    {"bytes received", "received_bytes_total", 1, "Node-link frame bytes received."},
    {"bytes sent", "sent_bytes_total", 1, "Node-link frame bytes sent."},
    {"prunes", "prunes_total", 1, "Links moved out of the push tree."},
    {"grafts", "grafts_total", 1, "Links moved back into the push tree."},
    {"ids announced", "ids_announced_total", 1, "Envelope ids sent lazily (IHAVE)."},
    {"uptime", "uptime_seconds", 0, "Seconds since the node started."},
};

/* Text keys that become labels of chapar_info. */
static const char *const info_keys[] = {"mode", "identity", "version"};

/* One parsed line: key and value, NUL-terminated copies. */
struct kv {
    char key[128], val[LINE_MAX_];
};

static int split(const char *l, size_t n, struct kv *kv)
{
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l || (size_t)(colon - l) >= sizeof kv->key || colon + 1 >= l + n ||
        colon[1] != ' ')
        return 0;
    size_t kl = (size_t)(colon - l), vl = n - kl - 2;
    if (vl >= sizeof kv->val)
        vl = sizeof kv->val - 1;
    memcpy(kv->key, l, kl);
    kv->key[kl] = '\0';
    memcpy(kv->val, colon + 2, vl);
    kv->val[vl] = '\0';
    return 1;
}

/* The value as a number: a decimal integer, or yes/no as 1/0. */
static int number(const char *v, unsigned long long *out)
{
    if (!strcmp(v, "yes") || !strcmp(v, "no")) {
        *out = v[0] == 'y';
        return 1;
    }
    if (!v[0] || strspn(v, "0123456789") != strlen(v) || strlen(v) > 20)
        return 0;
    *out = strtoull(v, NULL, 10);
    return 1;
}

/* chapar_ + key with every byte outside [a-z0-9] as '_'. */
static void generic_name(const char *key, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = key; *p && o + 1 < cap; p++)
        out[o++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_';
    out[o] = '\0';
}

static int put_metric(chp_buf *out, const struct kv *kv, unsigned long long v)
{
    const struct metric *m = NULL;
    for (size_t i = 0; i < sizeof metrics / sizeof *metrics && !m; i++)
        if (!strcmp(kv->key, metrics[i].key))
            m = &metrics[i];
    char gen[sizeof kv->key];
    if (!m)
        generic_name(kv->key, gen, sizeof gen);
    const char *name = m ? m->name : gen;
    int rc = chp_buf_printf(out, "# HELP chapar_%s %s\n# TYPE chapar_%s %s\nchapar_%s %llu\n", name,
                            m ? m->help : "A chapar status value.", name,
                            m && m->counter ? "counter" : "gauge", name, v);
    return rc;
}

/* A label value with \, " and newline escaped. */
static int put_label(chp_buf *out, const char *name, const char *v, int first)
{
    int rc = chp_buf_printf(out, "%s%s=\"", first ? "" : ",", name);
    for (const char *p = v; rc == CHP_OK && *p; p++)
        rc = *p == '\\' || *p == '"' ? chp_buf_printf(out, "\\%c", *p) : chp_buf_put(out, p, 1);
    return rc == CHP_OK ? chp_buf_put(out, "\"", 1) : rc;
}

static int is_info_key(const char *k)
{
    for (size_t i = 0; i < sizeof info_keys / sizeof *info_keys; i++)
        if (!strcmp(k, info_keys[i]))
            return 1;
    return 0;
}

int chp_prom_render(const char *status, size_t len, chp_buf *out)
{
    struct kv kv;
    int rc = CHP_OK, labels = 0;
    for (size_t i = 0; rc == CHP_OK && i < len;) {
        const char *e = memchr(status + i, '\n', len - i);
        size_t n = e ? (size_t)(e - (status + i)) : len - i;
        unsigned long long v;
        if (split(status + i, n, &kv) && !is_info_key(kv.key) && number(kv.val, &v))
            rc = put_metric(out, &kv, v);
        i += n + 1;
    }
    if (rc != CHP_OK)
        return rc;
    rc = chp_buf_printf(out, "# HELP chapar_info The node's mode, identity state and version.\n"
                             "# TYPE chapar_info gauge\nchapar_info{");
    for (size_t i = 0; rc == CHP_OK && i < len;) {
        const char *e = memchr(status + i, '\n', len - i);
        size_t n = e ? (size_t)(e - (status + i)) : len - i;
        if (split(status + i, n, &kv) && is_info_key(kv.key))
            rc = put_label(out, kv.key, kv.val, !labels++);
        i += n + 1;
    }
    return rc == CHP_OK ? chp_buf_printf(out, "} 1\n") : rc;
}
