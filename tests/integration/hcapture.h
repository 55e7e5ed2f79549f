/* hcapture.h - reading a packet capture of Chapar links (issue 17): the
 * TCP payloads tshark prints, the first bytes of each direction of each
 * connection, whether a ZMTP greeting or "CURVE" shows, and a byte
 * frequency chi-square test of randomness. */
#ifndef CHP_HCAPTURE_H
#define CHP_HCAPTURE_H

#include "harness.h"

#include <stddef.h>
#include <stdint.h>

#define H_FLOW_HEAD 200  /* bytes of each direction that are tested */
#define H_CHI_LIMIT 37.7 /* chi-square, 15 degrees of freedom, p = 0.001 */

/* One direction of one TCP connection, named by its ports. */
struct h_flow {
    uint16_t from, to;
    uint8_t head[H_FLOW_HEAD];
    size_t n; /* bytes in head */
};

/* "srcport\tdstport\thexpayload" lines of every TCP segment with data in
 * pcap, as tshark prints them (malloc'd; fails the test when tshark
 * fails). */
char *h_tshark_payloads(h_ctx *h, const char *pcap);

/* The flows of text (h_tshark_payloads; strtok'd, so used up) whose
 * source or destination port is port: at most cap into f, the count
 * returned. *zmtp and *curve are set when any of their payloads holds a
 * ZMTP 3 signature (FF 00*7 01 7F) or "CURVE". */
size_t h_flows(char *text, struct h_flow *f, size_t cap, uint16_t port, int *zmtp, int *curve);

/* The conversation of the transport tests: a writes to b, b answers, b
 * posts to #lan; each waits until the other's inbox shows it. a and b
 * are friends (names "alice" and "bob" in each other's contacts). */
void h_talk(h_ctx *h, const h_node *a, const h_node *b, const char *what);

/* Byte-frequency chi-square of p[0..n) in 16 classes (the high nibble),
 * each expected n/16: below H_CHI_LIMIT looks random. */
double h_chi_square(const uint8_t *p, size_t n);

#endif
