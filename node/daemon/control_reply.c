/* control_reply.c - one reply on the control socket (CONTROL.md
 * "Requests"), for control.c and the requests answered elsewhere
 * (bundle_ctl.c); an event on the event socket from work that holds the
 * loop (a bundle export's progress). */
#include "node/daemon/node_int.h"

#include <string.h>
#include <zmq.h>

void chp_control_reply(chp_node *n, const void *rid, size_t ridlen, const char *status,
                       const char *body, size_t len)
{
    zmq_send(n->control, rid, ridlen, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->control, status, strlen(status), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->control, body, len, ZMQ_DONTWAIT);
}

void chp_control_event(chp_node *n, const char *topic, const char *body)
{
    zmq_send(n->events, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(n->events, body, strlen(body), ZMQ_DONTWAIT);
}
