/* harness.c - negentropy-harness: the stdin/stdout line protocol of
 * hoytech/negentropy's conformance harnesses (test/cpp/harness.cpp), over
 * Chapar's engine and a sorted-array store, so the reference's drivers
 * (test/fuzz.pl) and ours (drive.py) can pit it against any implementation.
 *
 *   item,TIMESTAMP,IDHEX   add an item (before seal)
 *   seal                   sort; start a session (FRAMESIZELIMIT from env)
 *   initiate               -> msg,HEX
 *   msg,HEX                initiator: -> have,ID* need,ID* then done|msg,HEX
 *                          otherwise: -> msg,HEX
 *
 * Any malformed line or protocol error: one line on stderr, exit 1. */
#include "proto/crypto.h"
#include "proto/err.h"
#include "proto/hex.h"
#include "proto/negentropy.h"
#include "vecstore.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct harness {
    vecstore *store;
    chp_neg *neg;
    uint64_t limit;
    int initiator;
    size_t lineno;
};

static void die(const struct harness *h, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

static void die(const struct harness *h, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "negentropy-harness: line %zu: ", h->lineno);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Digits only, no sign, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Prints the n bytes at p in hex. */
static void put_hex(const struct harness *h, const uint8_t *p, size_t n)
{
    char *hex = malloc(2 * n + 1);
    if (!hex)
        die(h, "out of memory");
    chp_hex_encode(p, n, hex);
    fputs(hex, stdout);
    free(hex);
}

static void put_line(const struct harness *h, const char *tag, const uint8_t *p, size_t n)
{
    fputs(tag, stdout);
    if (p) {
        putchar(',');
        put_hex(h, p, n);
    }
    putchar('\n');
    if (fflush(stdout) != 0)
        die(h, "stdout: %s", strerror(errno));
}

static void put_msg(const struct harness *h, const chp_buf *msg)
{
    if (h->limit && msg->len > h->limit)
        die(h, "frameSizeLimit exceeded: %zu > %llu: from %s", msg->len,
            (unsigned long long)h->limit, h->initiator ? "initiator" : "non-initiator");
    put_line(h, "msg", msg->p ? msg->p : (const uint8_t *)"", msg->len);
}

/* have/need are collected and printed after the call, haves first, as the
 * reference harness does. */
struct idvec {
    uint8_t (*ids)[32];
    size_t n, cap;
    int oom;
};

static int idvec_push(struct idvec *v, const uint8_t id[32])
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint8_t(*p)[32] = realloc(v->ids, cap * 32);
        if (!p) {
            v->oom = 1;
            return 1;
        }
        v->ids = p;
        v->cap = cap;
    }
    memcpy(v->ids[v->n++], id, 32);
    return 0;
}

struct haveneed {
    struct idvec have, need;
};

static int on_have(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    return idvec_push(&((struct haveneed *)ctx)->have, id);
}

static int on_need(void *ctx, uint64_t ts, const uint8_t id[32])
{
    (void)ts;
    return idvec_push(&((struct haveneed *)ctx)->need, id);
}

static void cmd_item(struct harness *h, char *args)
{
    char *comma = args ? strchr(args, ',') : NULL;
    if (!comma)
        die(h, "wrong num of fields");
    *comma = '\0';
    const char *ts_s = args, *id_s = comma + 1;
    uint64_t ts;
    uint8_t id[32];
    if (strchr(id_s, ','))
        die(h, "wrong num of fields");
    if (parse_u64(ts_s, &ts) != 0)
        die(h, "bad timestamp '%s'", ts_s);
    if (strlen(id_s) != 64 || chp_hex_decode(id_s, 64, id, 32) != CHP_OK)
        die(h, "id must be 64 hex digits");
    if (h->neg)
        die(h, "item after seal");
    int rc = vecstore_add(h->store, ts, id);
    if (rc != CHP_OK)
        die(h, "item: %s", chp_strerror(rc));
}

static void cmd_seal(struct harness *h)
{
    if (h->neg)
        die(h, "already sealed");
    int rc = vecstore_seal(h->store);
    if (rc != CHP_OK)
        die(h, "seal: %s", rc == CHP_E_DUP ? "duplicate item inserted" : chp_strerror(rc));
    chp_neg_storage st = vecstore_storage(h->store, 1);
    if ((rc = chp_neg_new(&st, h->limit, &h->neg)) != CHP_OK)
        die(h, "seal: %s", chp_strerror(rc));
}

static void cmd_initiate(struct harness *h, chp_buf *out)
{
    if (!h->neg)
        die(h, "initiate before seal");
    int rc = chp_neg_initiate(h->neg, out);
    if (rc != CHP_OK)
        die(h, "initiate: %s", chp_strerror(rc));
    h->initiator = 1;
    put_msg(h, out);
}

static void cmd_msg(struct harness *h, const char *hex, chp_buf *out)
{
    if (!h->neg)
        die(h, "msg before seal");
    size_t hexlen = hex ? strlen(hex) : 0;
    uint8_t *msg = malloc(hexlen / 2 + 1);
    if (!msg)
        die(h, "out of memory");
    if (chp_hex_decode(hex ? hex : "", hexlen, msg, hexlen / 2) != CHP_OK)
        die(h, "bad hex in msg");
    int rc;
    if (h->initiator) {
        struct haveneed hn;
        memset(&hn, 0, sizeof hn);
        rc = chp_neg_reconcile(h->neg, msg, hexlen / 2, out, on_have, on_need, &hn);
        if (rc == CHP_OK && (hn.have.oom || hn.need.oom))
            rc = CHP_E_NOMEM;
        if (rc != CHP_OK)
            die(h, "reconcile: %s", chp_strerror(rc));
        for (size_t i = 0; i < hn.have.n; i++)
            put_line(h, "have", hn.have.ids[i], 32);
        for (size_t i = 0; i < hn.need.n; i++)
            put_line(h, "need", hn.need.ids[i], 32);
        free(hn.have.ids);
        free(hn.need.ids);
        if (out->len == 0)
            put_line(h, "done", NULL, 0);
        else
            put_msg(h, out);
    } else {
        rc = chp_neg_respond(h->neg, msg, hexlen / 2, out);
        if (rc != CHP_OK)
            die(h, "respond: %s", chp_strerror(rc));
        put_msg(h, out);
    }
    free(msg);
}

int main(void)
{
    struct harness h;
    memset(&h, 0, sizeof h);
    const char *env = getenv("FRAMESIZELIMIT");
    if (env && *env && parse_u64(env, &h.limit) != 0)
        die(&h, "FRAMESIZELIMIT is not a number: '%s'", env);
    if (chp_crypto_init() != CHP_OK)
        die(&h, "crypto init failed");
    if (!(h.store = vecstore_new()))
        die(&h, "out of memory");

    chp_buf out = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        h.lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (memchr(line, '\0', len))
            die(&h, "NUL byte in line");
        char *args = strchr(line, ',');
        if (args)
            *args++ = '\0';
        if (strcmp(line, "item") == 0) {
            cmd_item(&h, args);
        } else if (strcmp(line, "seal") == 0 && !args) {
            cmd_seal(&h);
        } else if (strcmp(line, "initiate") == 0 && !args) {
            cmd_initiate(&h, &out);
        } else if (strcmp(line, "msg") == 0) {
            if (args && strchr(args, ','))
                die(&h, "wrong num of fields");
            cmd_msg(&h, args, &out);
        } else {
            die(&h, "unknown cmd: %s", line);
        }
    }
    if (ferror(stdin))
        die(&h, "stdin: %s", strerror(errno));
    free(line);
    chp_buf_free(&out);
    chp_neg_destroy(&h.neg);
    vecstore_destroy(&h.store);
    return 0;
}
