/* gossip.c - Plumtree (PROTOCOL.md §15.3): full envelopes along a
 * spanning tree of eager links, ids announced to a few lazy ones, GRAFT
 * for an announced id that did not come, PRUNE for a second copy; and
 * QUERY/HELD, which tell the layer above that a neighbour holds its mail. */
#include "node/common/log.h"
#include "node/mesh/mesh_int.h"
#include "proto/envelope.h"

#include <string.h>

/* After a sync message either way, the neighbour's frames over its rate
 * are dropped but not scored: they are answers to the sync. */
#define SYNC_GRACE_MS 10000
/* sync messages to a peer that takes no fragments */
#define SYNC_QUIET_MS 300 /* after a sync message, duplicates prune nothing */
/* after a sync message, duplicates prune nothing */
#define LAZY_FANOUT 3 /* lazy links each id is announced to */
/* lazy links each id is announced to */
#define REPAIR_SYNC_MS 2000 /* after losing a tree neighbour, reconcile */
#define REPAIR_GRAFTS  0    /* lazy links grafted at once then (bench-mesh: 2 churn) */

/* An announced id we lack: wait GRAFT_MS for the tree to deliver it. */
#define GRAFT_MS        500
#define PRUNE_WINDOW_MS (GRAFT_MS / 2) /* later copies mend; they prune nothing */

static void flush_ihave(chp_mesh *n, struct chp_link *l)
{
    chp_link_send_ids(n, l, CHP_WIRE_IHAVE, l->ihave, l->nihave);
    n->ctr.ihave_tx += l->nihave;
    l->nihave = 0;
}

/* QUERY: answered only after everything this link sent before it is
 * committed, so HELD means "durably stored here" (PROTOCOL.md §15). */
void chp_gossip_on_query(chp_mesh *n, struct chp_link *l, const chp_wire_msg *m)
{
    uint8_t held[CHP_WIRE_MAX_IDS * 32];
    uint16_t nh = 0;
    (void)chp_ingest_flush(n);
    for (uint16_t i = 0; i < m->u.ids.n; i++) {
        const uint8_t *id = m->u.ids.ids + 32 * i;
        if (chp_store_has(n->store, id) == 1)
            memcpy(held + 32 * nh++, id, 32);
    }
    chp_link_send_ids(n, l, CHP_WIRE_HELD, held, nh);
}

void chp_gossip_query_held(chp_mesh *n)
{
    uint8_t ids[256][32];
    size_t k = n->hooks.unconfirmed ? n->hooks.unconfirmed(n->hooks.ctx, ids, 256) : 0;
    for (size_t i = 0; k && i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (chp_link_up(l) && (l->caps & CHP_CAP_HELD))
            chp_link_send_ids(n, l, CHP_WIRE_QUERY, ids[0], (uint16_t)k);
    }
}

void chp_gossip_flush_out(chp_mesh *n)
{
    for (size_t i = 0; i < n->links_hw; i++) {
        struct chp_link *l = &n->links[i];
        if (!l->used)
            continue;
        chp_link_flush_pushes(n, l);
        if (l->nihave)
            flush_ihave(n, l);
    }
}

void chp_missing_forget(chp_mesh *n, const uint8_t id[32])
{
    /* Every forwarded envelope passes here: an empty table costs nothing. */
    for (size_t i = 0; n->nmissing && i < CHP_MESH_MISSING_MAX; i++)
        if (n->missing[i].due_ms && !memcmp(n->missing[i].id, id, 32)) {
            n->missing[i].due_ms = 0;
            n->nmissing--;
        }
}

/* Queues id for l's next IHAVE. */
static void announce(chp_mesh *n, struct chp_link *l, const uint8_t id[32])
{
    memcpy(l->ihave + 32 * l->nihave++, id, 32);
    if (l->nihave == sizeof l->ihave / 32)
        flush_ihave(n, l);
}

/* Plumtree: the full envelope goes to eager links (the spanning tree), its
 * id to lazy ones; never back to the link it came from. */
/* ms since this node first had id, or UINT64_MAX when not recently. */
uint64_t chp_recent_age(const chp_mesh *n, const uint8_t id[32], uint64_t t)
{
    for (size_t i = 0; i < CHP_MESH_RECENT_MAX; i++)
        if (n->recent[i].ms && !memcmp(n->recent[i].id, id, 8))
            return t - n->recent[i].ms;
    return UINT64_MAX;
}

/* A cheap generator for choosing lazy links (not for anything secret). */
static uint64_t next_rand(chp_mesh *n)
{
    uint64_t x = n->lazy_rng ? n->lazy_rng : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return n->lazy_rng = x;
}

void chp_recent_add(chp_mesh *n, const uint8_t id[32], uint64_t t)
{
    struct chp_recent *r = &n->recent[n->recent_next];
    memcpy(r->id, id, 8);
    r->ms = t;
    n->recent_next = (n->recent_next + 1) % CHP_MESH_RECENT_MAX;
}

int chp_gossip_forward(chp_mesh *n, const struct chp_stored *e)
{
    int sent = 0;
    if (e->expiry <= mesh_unix(n) + CHP_SERVE_MARGIN_S)
        return 0; /* about to expire: neighbours would only refuse it */
    const uint8_t *id = e->id;
    chp_recent_add(n, id, mesh_ms(n));
    chp_missing_forget(n, id);
    /* Push along the tree; announce the id to LAZY_FANOUT of the lazy links
     * only, chosen at random for each envelope (reservoir sampling): every
     * node still hears of it from a few neighbours, for a fraction of the
     * bytes of announcing to all of them. */
    struct chp_link *pick[LAZY_FANOUT];
    size_t seen = 0;
    for (size_t i = 0; i < n->links_hw; i++) {
        struct chp_link *l = &n->links[i];
        if (!chp_link_up(l) || l->id == e->link)
            continue;
        sent++;
        if (!l->lazy) {
            chp_link_send_push(n, l, e->env, e->len);
            continue;
        }
        if (e->own && !l->refuser) {
            /* Our own envelope is announced to every lazy link: each
             * neighbour then GRAFTs it within GRAFT_MS however thin the
             * tree (refused posts prune honest links too), not a minute
             * later by sync; they are few, and 32 bytes each. (Not to a
             * flood's link: it may hear of it as of any other.) */
            announce(n, l, id);
            continue;
        }
        if (seen < LAZY_FANOUT)
            pick[seen] = l;
        else if (next_rand(n) % (seen + 1) < LAZY_FANOUT)
            pick[next_rand(n) % LAZY_FANOUT] = l;
        seen++;
    }
    for (size_t k = 0; k < seen && k < LAZY_FANOUT; k++)
        announce(n, pick[k], id);
    return sent;
}

void chp_missing_note(chp_mesh *n, const uint8_t id[32], uint32_t link, uint64_t t)
{
    struct chp_missing *free_slot = NULL;
    for (size_t i = 0; i < CHP_MESH_MISSING_MAX; i++) {
        struct chp_missing *m = &n->missing[i];
        if (m->due_ms && !memcmp(m->id, id, 32))
            return; /* already waiting for it */
        if (!m->due_ms && !free_slot)
            free_slot = m;
    }
    if (!free_slot)
        return; /* table full: the periodic sync will fetch it */
    memcpy(free_slot->id, id, 32);
    free_slot->link = link;
    free_slot->due_ms = t + GRAFT_MS;
    n->nmissing++;
}

void chp_gossip_on_ids(chp_mesh *n, struct chp_link *l, const chp_wire_msg *m, uint64_t t)
{
    if (m->type == CHP_WIRE_GRAFT) {
        l->lazy = 0; /* back into the tree */
        n->ctr.grafts++;
    }
    for (uint16_t i = 0; i < m->u.ids.n; i++) {
        const uint8_t *id = m->u.ids.ids + 32 * i;
        if (m->type == CHP_WIRE_IHAVE) {
            if (chp_store_has(n->store, id) == 0 && !chp_ingest_refused(n, id))
                chp_missing_note(n, id, l->id, t);
            continue;
        }
        /* IWANT or GRAFT: send what we have, each id once per MOVED_S
         * (an id asked for again, even 1024 times in one frame, is sent
         * once); past the flow window it is owed, sent as it opens. */
        if (chp_link_serve(n, l, id) == CHP_OK && m->type == CHP_WIRE_IWANT)
            l->sync_useful = 1; /* a sync that fetches: its next session is free */
    }
}

/* Announced ids that did not arrive in time: GRAFT the announcing link
 * back into the tree and ask it for them. */
void chp_gossip_graft_due(chp_mesh *n, uint64_t t)
{
    for (size_t i = 0; i < CHP_MESH_MISSING_MAX; i++) {
        struct chp_missing *m = &n->missing[i];
        if (!m->due_ms || m->due_ms > t)
            continue;
        m->due_ms = 0;
        n->nmissing--;
        if (chp_store_has(n->store, m->id) != 0)
            continue;
        struct chp_link *l = NULL;
        for (size_t k = 0; k < CHP_MESH_LINKS_MAX && !l; k++)
            if (n->links[k].used && n->links[k].id == m->link)
                l = &n->links[k];
        if (!l || !chp_link_up(l))
            continue;
        chp_link_send_ids(n, l, CHP_WIRE_GRAFT, m->id, 1);
        l->lazy = 0;
        n->ctr.grafts++;
    }
}

void chp_gossip_on_push(chp_mesh *n, struct chp_link *l, const uint8_t *env, size_t len, uint64_t t)
{
    int syncing = t - l->neg_ms < SYNC_GRACE_MS;
    if (!chp_rate_take_env(l, t)) {
        n->ctr.rate_dropped++;
        if (!syncing) /* answers to a sync are dropped, never scored */
            chp_link_misbehave(n, l, 0.01, "flooding");
        return;
    }
    l->rx_env++;
    uint8_t id[32];
    int rc = chp_ingest_add(n, env, len, l, 0, id);
    if (syncing && rc != CHP_OK && rc != CHP_E_DUP) /* refused by the check: not hashed yet */
        chp_envelope_id(env, len, id);
    if (!syncing && rc == CHP_E_DUP && chp_moved_lately(l, id, t))
        /* The same envelope again from the same neighbour, outside a sync:
         * no honest node does that (never back to the source, a sync
         * moves an id once per link); a copy flood, however slow. */
        chp_link_misbehave(n, l, 0.05, "pushes the same envelope again");
    else if (syncing || rc == CHP_E_DUP || rc == CHP_E_REFUSED)
        chp_moved_add(l, id, t); /* (in a sync: it finds it missing again, we did not keep it) */
    if (syncing && rc == CHP_OK)
        l->sync_useful = 1; /* its sync moves envelopes: its next session is free */
    if (rc == CHP_E_REFUSED) {
        /* Its source's next links start out of the tree (recv.c), even
         * with a fresh key; a sync does not hide a flood (a flooder opens
         * sessions to look busy). */
        uint8_t src[16];
        chp_link_source(n, l, src);
        chp_source_refused(n, src, t);
        l->refuser = 1;
    }
    if (!l->lazy && ((rc == CHP_E_DUP && t - l->neg_ms > SYNC_QUIET_MS &&
                      (n->dup_in_flight || chp_recent_age(n, id, t) < PRUNE_WINDOW_MS)) ||
                     rc == CHP_E_REFUSED)) {
        /* A second copy over the tree: this link is redundant for pushes.
         * (Copies during a sync are expected and prune nothing.) Or it
         * pushes posts we refuse (a flood): it brings nothing we keep, so
         * it gets announcements, not our pushes (never a score: an honest
         * neighbour forwards what its own limits let through, which ours
         * may refuse; a GRAFT brings it back into the tree). */
        uint8_t f[4];
        size_t fl;
        if (chp_wire_prune(f, sizeof f, &fl) == CHP_OK)
            chp_link_send(n, l, f, fl);
        l->lazy = 1;
        n->ctr.prunes++;
    }
    /* Expired or not yet valid by our clock is not scored: an honest
     * neighbour's clock differs a little from ours, and such envelopes
     * cost one header check (the token bucket bounds how many). */
    if (rc == CHP_E_ENV_SIZE || rc == CHP_E_ENV_VERSION || rc == CHP_E_ENV_TTL ||
        rc == CHP_E_ENV_POW)
        chp_link_misbehave(n, l, 1.0, "invalid envelopes");
}

/* A neighbour of the push tree is gone: graft up to two random lazy links
 * into the tree at once (an empty GRAFT), so what is published next
 * reaches us without waiting for announcements to reveal the gap, and
 * reconcile with one of them for what we missed meanwhile. Extra copies
 * this causes are pruned again as usual. */
void chp_gossip_tree_repair(chp_mesh *n, const struct chp_link *gone, uint64_t t)
{
    struct chp_link *cand[CHP_MESH_LINKS_MAX], *dial[CHP_MESH_LINKS_MAX];
    size_t nc = 0, nd = 0;
    for (size_t i = 0; i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &n->links[i];
        if (l == gone || !chp_link_up(l))
            continue;
        if (l->lazy)
            cand[nc++] = l;
        if (l->dealer_up)
            dial[nd++] = l;
    }
    for (int k = 0; k < REPAIR_GRAFTS && nc; k++) {
        size_t j = (size_t)(next_rand(n) % nc);
        struct chp_link *l = cand[j];
        cand[j] = cand[--nc];
        l->lazy = 0;
        chp_link_send_ids(n, l, CHP_WIRE_GRAFT, NULL, 0);
        n->ctr.grafts++;
    }
    /* What went missing while the tree mends (announcements reach only a
     * few neighbours) comes with a reconciliation a little later. */
    if (nd) {
        struct chp_link *l = dial[next_rand(n) % nd];
        uint64_t due = t + REPAIR_SYNC_MS;
        if (!l->next_sync_ms || l->next_sync_ms > due)
            l->next_sync_ms = due;
    }
}

void chp_gossip_on_held(chp_mesh *n, const chp_wire_msg *m)
{
    for (uint16_t i = 0; n->hooks.held && i < m->u.ids.n; i++)
        n->hooks.held(n->hooks.ctx, m->u.ids.ids + 32 * i);
}
