/* allow.c - the allow-list replaced while the node runs (chapard reloads
 * chapard.conf on SIGHUP). Links already up stay up, whatever the new list
 * says; it decides who may connect or be dialled from now on. */
#include "node/mesh/mesh_int.h"

#include <assert.h>
#include <string.h>

void chp_mesh_allow_set(chp_mesh *m, const uint8_t (*keys)[32], size_t n)
{
    assert(m && (keys || n == 0) && n <= CHP_MESH_PEERS_MAX);
    memcpy(m->allow, keys, n * 32);
    m->nallow = n;
}
