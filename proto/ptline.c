/* ptline.c - parsing one line of a pluggable transport's stdout. */
#include "proto/ptline.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define MAX_WORDS 8

struct words {
    const char *w[MAX_WORDS];
    size_t n[MAX_WORDS];
    size_t count;
    const char *rest[MAX_WORDS]; /* the line from word i on */
    size_t rest_n[MAX_WORDS];
};

/* Splits at spaces (runs of them count as one); words past MAX_WORDS
 * stay in the last one's rest. */
static void split(const char *s, size_t len, struct words *w)
{
    memset(w, 0, sizeof *w);
    size_t i = 0;
    while (i < len && w->count < MAX_WORDS) {
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            break;
        size_t st = i;
        while (i < len && s[i] != ' ')
            i++;
        w->w[w->count] = s + st;
        w->n[w->count] = i - st;
        w->rest[w->count] = s + st;
        w->rest_n[w->count] = len - st;
        w->count++;
    }
}

static int word_is(const struct words *w, size_t i, const char *s)
{
    return i < w->count && w->n[i] == strlen(s) && !memcmp(w->w[i], s, w->n[i]);
}

static void copy_cut(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* A transport name: letters, digits, '_' (C identifier), 1-32. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 32 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static int take_addr(const struct words *w, size_t i, chp_ptline *out)
{
    return i < w->count && chp_addr_parse_hostport(w->w[i], w->n[i], out->host, &out->ipv6,
                                                   &out->port) == CHP_OK
               ? CHP_OK
               : CHP_E_MALFORMED;
}

/* One K=V of ARGS (unescaped into k and v): the two obfs4 keeps. */
static int take_arg(chp_ptline *out, const char *k, size_t kl, const char *v, size_t vl)
{
    if (kl == 4 && !memcmp(k, "cert", 4)) {
        if (!chp_obfs4_cert_ok(v, vl))
            return CHP_E_MALFORMED;
        memcpy(out->cert, v, vl);
        out->cert[vl] = '\0';
    } else if (kl == 8 && !memcmp(k, "iat-mode", 8)) {
        if (vl != 1 || v[0] < '0' || v[0] > '2')
            return CHP_E_MALFORMED;
        out->iat_mode = v[0] - '0';
    }
    return CHP_OK;
}

/* "K=V,K=V" with '\' escapes, n bytes. */
static int parse_args(chp_ptline *out, const char *s, size_t n)
{
    char k[64], v[512];
    size_t kl = 0, vl = 0;
    int in_v = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? s[i] : ',';
        if (c == '\\') {
            if (++i >= n)
                return CHP_E_MALFORMED;
            c = s[i];
        } else if (c == ',') {
            if (!in_v || kl == 0 || take_arg(out, k, kl, v, vl) != CHP_OK)
                return CHP_E_MALFORMED;
            kl = vl = 0;
            in_v = 0;
            continue;
        } else if (c == '=' && !in_v) {
            in_v = 1;
            continue;
        }
        if (in_v ? vl >= sizeof v : kl >= sizeof k)
            return CHP_E_MALFORMED;
        if (in_v)
            v[vl++] = c;
        else
            k[kl++] = c;
    }
    return CHP_OK;
}

static int parse_smethod(const struct words *w, chp_ptline *out)
{
    if (w->count < 3 || !name_ok(w->w[1], w->n[1]) || take_addr(w, 2, out) != CHP_OK)
        return CHP_E_MALFORMED;
    copy_cut(out->method, sizeof out->method, w->w[1], w->n[1]);
    for (size_t i = 3; i < w->count; i++)
        if (w->n[i] >= 5 && !memcmp(w->w[i], "ARGS:", 5) &&
            parse_args(out, w->w[i] + 5, w->n[i] - 5) != CHP_OK)
            return CHP_E_MALFORMED;
    return CHP_OK;
}

static int parse_cmethod(const struct words *w, chp_ptline *out)
{
    if (w->count != 4 || !name_ok(w->w[1], w->n[1]) ||
        !(word_is(w, 2, "socks5") || word_is(w, 2, "socks4")) || take_addr(w, 3, out) != CHP_OK)
        return CHP_E_MALFORMED;
    copy_cut(out->method, sizeof out->method, w->w[1], w->n[1]);
    copy_cut(out->proto, sizeof out->proto, w->w[2], w->n[2]);
    return CHP_OK;
}

/* "*METHOD-ERROR NAME MSG" */
static int parse_method_error(const struct words *w, chp_ptline *out)
{
    if (w->count < 2 || !name_ok(w->w[1], w->n[1]))
        return CHP_E_MALFORMED;
    copy_cut(out->method, sizeof out->method, w->w[1], w->n[1]);
    if (w->count >= 3)
        copy_cut(out->msg, sizeof out->msg, w->rest[2], w->rest_n[2]);
    return CHP_OK;
}

static int parse_words(const struct words *w, chp_ptline *out)
{
    static const struct {
        const char *kw;
        int kind;
    } msg_lines[] = {{"VERSION-ERROR", CHP_PT_VERSION_ERROR},
                     {"ENV-ERROR", CHP_PT_ENV_ERROR},
                     {"PROXY-ERROR", CHP_PT_PROXY_ERROR},
                     {"LOG", CHP_PT_LOG},
                     {"STATUS", CHP_PT_LOG}};
    if (w->count == 0)
        return CHP_OK;
    for (size_t i = 0; i < sizeof msg_lines / sizeof *msg_lines; i++)
        if (word_is(w, 0, msg_lines[i].kw)) {
            out->kind = msg_lines[i].kind;
            if (w->count >= 2)
                copy_cut(out->msg, sizeof out->msg, w->rest[1], w->rest_n[1]);
            return CHP_OK;
        }
    if (word_is(w, 0, "VERSION")) {
        out->kind = CHP_PT_VERSION;
        if (w->count != 2)
            return CHP_E_MALFORMED;
        copy_cut(out->msg, sizeof out->msg, w->w[1], w->n[1]);
        return CHP_OK;
    }
    int done = w->count == 2 && word_is(w, 1, "DONE");
    if (word_is(w, 0, "CMETHODS") || word_is(w, 0, "SMETHODS") || word_is(w, 0, "PROXY")) {
        out->kind = word_is(w, 0, "CMETHODS")   ? CHP_PT_CMETHODS_DONE
                    : word_is(w, 0, "SMETHODS") ? CHP_PT_SMETHODS_DONE
                                                : CHP_PT_PROXY_DONE;
        return done ? CHP_OK : CHP_E_MALFORMED;
    }
    if (word_is(w, 0, "CMETHOD")) {
        out->kind = CHP_PT_CMETHOD;
        return parse_cmethod(w, out);
    }
    if (word_is(w, 0, "SMETHOD")) {
        out->kind = CHP_PT_SMETHOD;
        return parse_smethod(w, out);
    }
    if (word_is(w, 0, "CMETHOD-ERROR") || word_is(w, 0, "SMETHOD-ERROR")) {
        out->kind = word_is(w, 0, "CMETHOD-ERROR") ? CHP_PT_CMETHOD_ERROR : CHP_PT_SMETHOD_ERROR;
        return parse_method_error(w, out);
    }
    return CHP_OK; /* unknown keyword */
}

int chp_ptline_parse(const char *line, size_t len, chp_ptline *out)
{
    assert((line || len == 0) && out);
    memset(out, 0, sizeof *out);
    out->iat_mode = -1;
    if (len && line[len - 1] == '\r')
        len--;
    if (len > CHP_PTLINE_MAX)
        goto malformed;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            goto malformed;
    struct words w;
    split(line, len, &w);
    if (parse_words(&w, out) != CHP_OK)
        goto malformed;
    return CHP_OK;
malformed:
    memset(out, 0, sizeof *out);
    out->iat_mode = -1;
    return CHP_E_MALFORMED;
}
