/* dtest.c - a chp_node in a thread and a control client for it (dtest.h). */
#include "dtest.h"
#include "harness.h"

#include "node/client/ctl.h"
#include "node/common/clock.h"
#include "node/msg/account.h"
#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/hex.h"
#include "proto/id.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#define MAX_ARGS 8

void dt_opts(chp_node_opts *o, const char *home, int relay)
{
    memset(o, 0, sizeof *o);
    o->home = home;
    o->listen = DT_LOOPBACK;
    o->discovery = 0;
    o->relay = relay;
    o->quota = relay ? CHP_NODE_QUOTA_RELAY : CHP_NODE_QUOTA_USER;
}

static void *run_thread(void *arg)
{
    dt_node *t = arg;
    t->run_rc = chp_node_run(t->node, &t->stop);
    atomic_store(&t->done, 1);
    return NULL;
}

/* SIGUSR1 interrupts the node's zmq_poll (EINTR) as SIGTERM does in
 * chapard, so a stop takes effect at once instead of at the next timer. */
static void on_wake(int sig)
{
    (void)sig;
}

int dt_open(dt_node *t, const chp_node_opts *o)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake; /* no SA_RESTART: the poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    memset(t, 0, sizeof *t);
    snprintf(t->home, sizeof t->home, "%s", o->home);
    atomic_init(&t->done, 0);
    int rc = chp_node_new(o, &t->node);
    if (rc != CHP_OK)
        return rc;
    assert_int_equal(pthread_create(&t->thread, NULL, run_thread, t), 0);
    /* The one control-API client (node/client), subscribed to every
     * event topic. */
    assert_int_equal(chp_ctl_open(t->home, NULL, &t->ctl), CHP_OK);
    assert_int_equal(chp_ctl_subscribe(t->ctl, ""), CHP_OK);
    /* One round trip, then a moment: the subscription reaches the
     * daemon's PUB socket before the test makes anything happen. */
    free(dt_ok(t, "address", DT_END));
    h_sleep_ms(50);
    return CHP_OK;
}

void dt_start(dt_node *t, const char *home, int relay, chp_identity *id)
{
    chp_node_opts o;
    dt_opts(&o, home, relay);
    o.identity = id;
    int rc = dt_open(t, &o);
    if (rc != CHP_OK)
        fail_msg("chp_node_new(%s): %s", home, chp_strerror(rc));
}

int dt_ended(dt_node *t, int ms)
{
    uint64_t end = chp_mono_ms() + (uint64_t)ms;
    while (!atomic_load(&t->done) && chp_mono_ms() < end)
        h_sleep_ms(10);
    return atomic_load(&t->done);
}

int dt_stop(dt_node *t)
{
    if (!t->node)
        return CHP_OK;
    t->stop = 1;
    uint64_t end = chp_mono_ms() + DT_WAIT_MS;
    while (!atomic_load(&t->done) && chp_mono_ms() < end) {
        pthread_kill(t->thread, SIGUSR1);
        dt_ended(t, 20);
    }
    if (!atomic_load(&t->done))
        fail_msg("the node in %s did not stop within %d ms", t->home, DT_WAIT_MS);
    pthread_join(t->thread, NULL);
    t->wiped = chp_node_wiped(t->node);
    chp_node_destroy(&t->node);
    assert_null(t->node);
    chp_ctl_destroy(&t->ctl);
    return t->run_rc;
}

int dt_call(dt_node *t, char **payload, size_t *len, const char *cmd, int nargs,
            const void *const *args, const size_t *lens)
{
    chp_ctl_answer ans;
    int rc = chp_ctl_call(t->ctl, DT_REPLY_MS, cmd, nargs, (const char *const *)args, lens, &ans);
    if (rc == 0)
        fail_msg("%s: no reply from the node in %s within %d ms", cmd, t->home, DT_REPLY_MS);
    if (rc != 1)
        fail_msg("%s: %s (a reply must be two frames, ok or error)", cmd, chp_strerror(rc));
    if (len)
        *len = ans.len;
    if (payload)
        *payload = ans.body;
    else
        free(ans.body);
    return ans.ok;
}

static char *call_strs(dt_node *t, int want_ok, const char *cmd, va_list ap)
{
    const void *args[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int n = 0;
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        assert_true(n < MAX_ARGS);
        args[n] = a;
        lens[n++] = strlen(a);
    }
    char *body = NULL;
    int ok = dt_call(t, &body, NULL, cmd, n, args, lens);
    if (ok != want_ok)
        fail_msg("%s: %s '%s', want %s", cmd, ok ? "ok" : "error", body, want_ok ? "ok" : "error");
    return body;
}

char *dt_ok(dt_node *t, const char *cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    char *body = call_strs(t, 1, cmd, ap);
    va_end(ap);
    return body;
}

char *dt_error(dt_node *t, const char *cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    char *body = call_strs(t, 0, cmd, ap);
    va_end(ap);
    return body;
}

char *dt_status(dt_node *t, const char *key)
{
    char *s = dt_ok(t, "status", DT_END), *val = NULL;
    size_t kl = strlen(key);
    for (char *line = s; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (!strncmp(line, key, kl) && !strncmp(line + kl, ": ", 2)) {
            val = strdup(line + kl + 2);
            break;
        }
        line = end ? end + 1 : NULL;
    }
    free(s);
    return val;
}

long long dt_status_num(dt_node *t, const char *key)
{
    char *v = dt_status(t, key);
    long long n = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

long long dt_await_status(dt_node *t, const char *key, long long min)
{
    uint64_t end = chp_mono_ms() + DT_WAIT_MS;
    long long v;
    while ((v = dt_status_num(t, key)) < min && chp_mono_ms() < end)
        h_sleep_ms(20);
    if (v < min)
        fail_msg("status '%s' of %s is %lld after %d ms, want >= %lld", key, t->home, v, DT_WAIT_MS,
                 min);
    return v;
}

char *dt_event(dt_node *t, const char *topic, const char *prefix, int ms)
{
    uint64_t end = chp_mono_ms() + (uint64_t)ms;
    for (;;) {
        char *top = NULL, *body = NULL;
        size_t bl = 0;
        while (chp_ctl_event(t->ctl, &top, &body, &bl) == 1) {
            int match = !strcmp(top, topic) && (!prefix || !strncmp(body, prefix, strlen(prefix)));
            free(top);
            if (match)
                return body;
            free(body);
        }
        uint64_t now = chp_mono_ms();
        if (now >= end)
            return NULL;
        (void)chp_ctl_poll(t->ctl, (long)(end - now));
    }
}

size_t dt_envelope(uint8_t *out, size_t cap)
{
    static const char text[] = "a test envelope for node/daemon";
    uint8_t tag[16], key[32];
    chp_rng_fill(chp_rng_system(), tag, sizeof tag);
    chp_rng_fill(chp_rng_system(), key, sizeof key);
    chp_identity *me = NULL;
    assert_int_equal(chp_identity_generate(chp_rng_system(), &me), CHP_OK);
    uint64_t now = (uint64_t)time(NULL);
    chp_env_seal_args a = {.created = now,
                           .expiry = now + 3600,
                           .tag = tag,
                           .key = key,
                           .type = CHP_CT_TEXT,
                           .payload = (const uint8_t *)text,
                           .len = sizeof text - 1};
    size_t n = 0;
    assert_int_equal(chp_envelope_seal(&a, me, chp_rng_system(), out, cap, &n), CHP_OK);
    chp_identity_destroy(&me);
    return n;
}

void dt_envelope_hex(const uint8_t *env, size_t len, char hex[65])
{
    uint8_t id[CHP_ENV_ID_BYTES];
    chp_envelope_id(env, len, id);
    chp_hex_encode(id, sizeof id, hex);
}

void dt_random_key(char key[80])
{
    uint8_t k[32];
    chp_rng_fill(chp_rng_system(), k, sizeof k);
    chp_b32key_encode(CHP_NODEKEY_HRP, k, key);
}

chp_identity *dt_identity(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", dir, strerror(errno));
    chp_identity *id = NULL;
    assert_int_equal(chp_account_create(dir, NULL, 0, &id), CHP_OK);
    assert_non_null(id);
    return id;
}
