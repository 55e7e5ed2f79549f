/* hcapture.c - reading packet captures of Chapar links (hcapture.h). */
#include "hcapture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Byte-frequency chi-square of n bytes in 16 classes (the high nibble):
 * each expects n/16; 15 degrees of freedom, p = 0.001 at 37.7. */
double h_chi_square(const uint8_t *p, size_t n)
{
    double c[16] = {0}, e = (double)n / 16.0, x = 0;
    for (size_t i = 0; i < n; i++)
        c[p[i] >> 4]++;
    for (int i = 0; i < 16; i++)
        x += (c[i] - e) * (c[i] - e) / e;
    return x;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* tshark's "srcport\tdstport\thex" lines: the first HEAD bytes of each
 * direction of each connection (ports name it), and whether any payload
 * holds a ZMTP greeting or "CURVE". */
size_t h_flows(char *text, struct h_flow *f, size_t cap, uint16_t port, int *zmtp, int *curve)
{
    size_t nf = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        unsigned s, d;
        char hex[70000];
        if (sscanf(l, "%u\t%u\t%69999s", &s, &d, hex) != 3 || (s != port && d != port))
            continue;
        size_t hl = strlen(hex) / 2, k;
        uint8_t *bytes = malloc(hl + 1);
        for (size_t i = 0; i < hl; i++)
            bytes[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        static const uint8_t greet[10] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f};
        for (size_t i = 0; i + 10 <= hl; i++)
            *zmtp |= !memcmp(bytes + i, greet, 10);
        for (size_t i = 0; i + 5 <= hl; i++)
            *curve |= !memcmp(bytes + i, "CURVE", 5);
        for (k = 0; k < nf && !(f[k].from == s && f[k].to == d); k++)
            ;
        if (k == nf && nf < cap) {
            f[nf] = (struct h_flow){.from = (uint16_t)s, .to = (uint16_t)d};
            nf++;
        }
        if (k < cap) {
            size_t take = hl < H_FLOW_HEAD - f[k].n ? hl : H_FLOW_HEAD - f[k].n;
            memcpy(f[k].head + f[k].n, bytes, take);
            f[k].n += take;
        }
        free(bytes);
    }
    return nf;
}

char *h_tshark_payloads(h_ctx *h, const char *pcap)
{
    char *out = NULL, *err = NULL;
    int rc = h_run(h, &out, &err, "/usr/bin/tshark", "-r", pcap, "-Y", "tcp.len > 0", "-T",
                   "fields", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.payload", H_END);
    if (rc != 0)
        fail_msg("tshark: %s", err);
    free(err);
    return out;
}

void h_talk(h_ctx *h, const h_node *a, const h_node *b, const char *what)
{
    char t[3][200];
    snprintf(t[0], sizeof t[0], "%s: a DM to bob", what);
    snprintf(t[1], sizeof t[1], "%s: bob answers", what);
    snprintf(t[2], sizeof t[2], "%s: a post to #lan", what);
    h_send(h, a, "bob", t[0], NULL);
    free(h_await(h, b, t[0], "inbox", "--tsv", H_END));
    h_send(h, b, "alice", t[1], NULL);
    free(h_await(h, a, t[1], "inbox", "--tsv", H_END));
    h_send(h, b, "#lan", t[2], NULL);
    free(h_await(h, a, t[2], "inbox", "--tsv", H_END));
}
