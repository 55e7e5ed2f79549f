/* allow.c - the allow-list replaced while the node runs (chapard reloads
 * chapard.conf on SIGHUP). It decides who may connect from then on; a
 * neighbour that reached us and is no longer on it is cut at once, as
 * the ZAP check would have refused it. Links this node dials (a --peer,
 * `peer add`) are the operator's own choice and stay, as at start. */
#include "node/mesh/mesh_int.h"

#include <assert.h>
#include <string.h>

size_t chp_mesh_allow_set(chp_mesh *m, const uint8_t (*keys)[32], size_t n)
{
    assert(m && (keys || n == 0) && n <= CHP_MESH_PEERS_MAX);
    memcpy(m->allow, keys, n * 32);
    m->nallow = n;
    size_t cut = 0;
    for (size_t i = 0; n && i < CHP_MESH_LINKS_MAX; i++) {
        struct chp_link *l = &m->links[i];
        if (!l->used || l->dealer || chp_admit_allowed(m, l->key))
            continue;
        int was_up = chp_link_up(l);
        if (l->router_fd >= 0)
            chp_conn_close_fd(m, l->router_fd);
        chp_link_drop(l);
        if (was_up)
            chp_mesh_event(m, "peer", "down");
        cut++;
    }
    return cut;
}
