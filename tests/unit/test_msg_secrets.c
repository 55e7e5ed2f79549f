/* test_msg_secrets.c - no block the messaging layer frees still holds one
 * of its secrets (CONVENTIONS, "Secrets"): the contacts' ephemeral
 * handshake secrets and epoch base keys, and the room keys.
 *
 * malloc, calloc, realloc and free of everything linked in statically
 * (the layer, the store, proto, this file) are wrapped at link time
 * (-Wl,--wrap, see store.cmake), which works in the ASan build as well:
 * __real_malloc is whatever malloc the process has. The wrappers keep the
 * size of every live block, and search each block that is freed for the
 * secrets the layer holds or once held. realloc is treated as an
 * allocator that always moves: the old block is freed, so growing an
 * array of secrets with realloc leaves them in freed memory, whichever
 * way a given allocator happens to behave. The secrets are read from the
 * layer's arrays (msg_int.h) after every step and at every allocation
 * call of the test's thread, and the room keys are also derived here from
 * the room names. The users are driven through enough contacts, rooms,
 * epochs and a restart that every array of secrets grows several times. */
#define _GNU_SOURCE /* memmem */
#include "node/msg/account.h"
#include "node/msg/msg_int.h"
#include "proto/crypto.h"
#include "proto/envelope.h"
#include "proto/id.h"
#include "proto/identity.h"
#include "proto/keys.h"

#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- the interposer ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

enum kind { K_TEST = 1, K_ESK, K_BASE, K_ROOM };
static const char *const kind_name[] = {"", "a test pattern", "an ephemeral handshake secret",
                                        "an epoch base key", "a room key"};

#define LIVE_SLOTS   (1u << 20) /* live blocks, open addressing */
#define SECRET_SLOTS (1u << 14)
#define WATCH_MAX    8
#define BAD_MAX      16

static struct live {
    void *p;
    size_t n;
} g_live[LIVE_SLOTS];
static struct secret {
    uint8_t s[32];
    uint8_t kind; /* 0 = empty slot */
} g_secret[SECRET_SLOTS];
static size_t g_nsecret;
static size_t g_kinds[K_ROOM + 1]; /* secrets known, by kind */
/* The freed blocks found holding a secret. */
static struct bad {
    size_t size, off;
    int kind;
    void *caller;
} g_bad[BAD_MAX];
static size_t g_nbad;
static size_t g_freed_scanned; /* blocks searched, to show the wrappers ran */
static chp_msg **g_watch[WATCH_MAX];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t g_main;

static size_t live_slot(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull >> 40) & (LIVE_SLOTS - 1);
}

static void live_put(void *p, size_t n)
{
    size_t i = live_slot(p);
    while (g_live[i].p && g_live[i].p != p)
        i = (i + 1) & (LIVE_SLOTS - 1);
    g_live[i].p = p;
    g_live[i].n = n;
}

/* The size of live block p, which is forgotten; 0 if p is not one of ours
 * (libc's strdup and the like allocate out of our sight). */
static int live_take(void *p, size_t *n)
{
    size_t i = live_slot(p);
    while (g_live[i].p && g_live[i].p != p)
        i = (i + 1) & (LIVE_SLOTS - 1);
    if (!g_live[i].p)
        return 0;
    *n = g_live[i].n;
    g_live[i].p = NULL;
    /* backward-shift deletion keeps every probe chain unbroken */
    for (size_t j = (i + 1) & (LIVE_SLOTS - 1); g_live[j].p; j = (j + 1) & (LIVE_SLOTS - 1)) {
        size_t home = live_slot(g_live[j].p);
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            g_live[i] = g_live[j];
            g_live[j].p = NULL;
            i = j;
        }
    }
    return 1;
}

static size_t secret_slot(const uint8_t *s)
{
    uint64_t v;
    memcpy(&v, s, 8);
    return (size_t)(v * 0x9e3779b97f4a7c15ull >> 40) & (SECRET_SLOTS - 1);
}

static const struct secret *secret_find(const uint8_t *s)
{
    for (size_t i = secret_slot(s); g_secret[i].kind; i = (i + 1) & (SECRET_SLOTS - 1))
        if (!memcmp(g_secret[i].s, s, 32))
            return &g_secret[i];
    return NULL;
}

/* Remembers secret s (all zero: none) of the given kind; g_mu held. */
static void secret_add_locked(const uint8_t s[32], int kind)
{
    static const uint8_t zero[32];
    if (!memcmp(s, zero, 32) || secret_find(s) || g_nsecret * 2 >= SECRET_SLOTS)
        return;
    size_t i = secret_slot(s);
    while (g_secret[i].kind)
        i = (i + 1) & (SECRET_SLOTS - 1);
    memcpy(g_secret[i].s, s, 32);
    g_secret[i].kind = (uint8_t)kind;
    g_nsecret++;
    g_kinds[kind]++;
}

static void secret_add(const uint8_t s[32], int kind)
{
    pthread_mutex_lock(&g_mu);
    secret_add_locked(s, kind);
    pthread_mutex_unlock(&g_mu);
}

/* Every secret the watched layers hold now; g_mu held. Only the test's
 * own thread reads them: it is the one that changes them. */
static void harvest_locked(void)
{
    if (!pthread_equal(pthread_self(), g_main))
        return;
    for (size_t w = 0; w < WATCH_MAX; w++) {
        const chp_msg *m = g_watch[w] ? *g_watch[w] : NULL;
        if (!m)
            continue;
        for (size_t i = 0; m->c && i < m->nc; i++) {
            secret_add_locked(m->c[i].my_esk, K_ESK);
            secret_add_locked(m->c[i].base_key, K_BASE);
        }
        for (size_t i = 0; m->r && i < m->nr; i++)
            secret_add_locked(m->r[i].key, K_ROOM);
    }
}

static void harvest(void)
{
    pthread_mutex_lock(&g_mu);
    harvest_locked();
    pthread_mutex_unlock(&g_mu);
}

/* Block p of n bytes is being freed: does it hold a secret? g_mu held. */
static void check_freed_locked(const uint8_t *p, size_t n, void *caller)
{
    harvest_locked();
    g_freed_scanned++;
    for (size_t off = 0; n >= 32 && off <= n - 32; off++) {
        const struct secret *s = secret_find(p + off);
        if (!s)
            continue;
        if (g_nbad < BAD_MAX)
            g_bad[g_nbad] = (struct bad){n, off, s->kind, caller};
        g_nbad++;
        return;
    }
}

static void freed(void *p, void *caller)
{
    size_t n;
    pthread_mutex_lock(&g_mu);
    if (live_take(p, &n))
        check_freed_locked(p, n, caller);
    pthread_mutex_unlock(&g_mu);
}

/* A block was allocated; harvest: whether the watched arrays may be read
 * (not between a realloc's free and its caller's new pointer). */
static void born(void *p, size_t n, int harvest)
{
    if (!p)
        return;
    pthread_mutex_lock(&g_mu);
    if (harvest)
        harvest_locked();
    live_put(p, n);
    pthread_mutex_unlock(&g_mu);
}

/* New bytes are filled: a block reusing freed memory would otherwise
 * carry what was left there into the next block searched, and the secret
 * would be found again where it was never put. */
#define FILL 0xa5

void *__wrap_malloc(size_t n)
{
    void *p = __real_malloc(n);
    if (p)
        memset(p, FILL, n);
    born(p, n, 1);
    return p;
}

void *__wrap_calloc(size_t k, size_t n)
{
    void *p = __real_calloc(k, n);
    born(p, k * n, 1); /* calloc returned NULL on overflow */
    return p;
}

void __wrap_free(void *p)
{
    if (!p)
        return;
    freed(p, __builtin_return_address(0));
    __real_free(p);
}

/* Always a new block: the old one is freed (and searched). */
void *__wrap_realloc(void *p, size_t n)
{
    if (!p)
        return __wrap_malloc(n);
    if (!n) {
        __wrap_free(p);
        return NULL;
    }
    size_t old;
    pthread_mutex_lock(&g_mu);
    int ours = live_take(p, &old);
    if (ours)
        live_put(p, old); /* still live until it is copied */
    pthread_mutex_unlock(&g_mu);
    if (!ours)
        return __real_realloc(p, n);
    void *q = __real_malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    if (n > old)
        memset((uint8_t *)q + old, FILL, n - old);
    freed(p, __builtin_return_address(0));
    __real_free(p);
    born(q, n, 0);
    return q;
}

static void watch(chp_msg **mp)
{
    pthread_mutex_lock(&g_mu);
    for (size_t w = 0; w < WATCH_MAX; w++)
        if (!g_watch[w]) {
            g_watch[w] = mp;
            break;
        }
    pthread_mutex_unlock(&g_mu);
}

static void unwatch_all(void)
{
    pthread_mutex_lock(&g_mu);
    memset(g_watch, 0, sizeof g_watch);
    pthread_mutex_unlock(&g_mu);
}

static size_t bad_count(void)
{
    pthread_mutex_lock(&g_mu);
    size_t n = g_nbad;
    pthread_mutex_unlock(&g_mu);
    return n;
}

static void bad_report(void)
{
    for (size_t i = 0; i < g_nbad && i < BAD_MAX; i++) {
        /* where: for addr2line -e FILE OFFSET */
        Dl_info di = {0};
        uintptr_t at = (uintptr_t)g_bad[i].caller;
        if (dladdr(g_bad[i].caller, &di) && di.dli_fbase)
            at -= (uintptr_t)di.dli_fbase;
        print_message("a freed block of %zu bytes held %s at offset %zu (freed from %s+0x%zx)\n",
                      g_bad[i].size, kind_name[g_bad[i].kind], g_bad[i].off,
                      di.dli_fname ? di.dli_fname : "?", (size_t)at);
    }
    if (g_nbad > BAD_MAX)
        print_message("... and %zu more\n", g_nbad - BAD_MAX);
}

/* ---- driving the layer ---- */

static uint64_t g_now = 1790000000; /* the tests' clock */

static uint64_t fake_now(void *ctx)
{
    (void)ctx;
    return g_now;
}

struct user {
    char dir[256];
    chp_store *s;
    chp_msg *m;
    char id[CHP_ID_STR_LEN + 1];
};

static void open_user(struct user *u)
{
    assert_int_equal(chp_store_open(u->dir, NULL, &u->s, NULL), CHP_OK);
    chp_msg_host h = {.ctx = u, .now = fake_now, .pow_ntpb = 1, .seal_inline = 1};
    assert_int_equal(chp_msg_new(u->s, u->dir, &h, &u->m), CHP_OK);
}

/* One control request; whether it answered ok. *out: its payload (a
 * static buffer, valid until the next call). */
static int ctl(struct user *u, char **out, const char *cmd, ...)
{
    static char buf[1 << 16];
    const uint8_t *args[4];
    size_t lens[4];
    int n = 0, ok = 0, wiped = 0;
    va_list ap;
    va_start(ap, cmd);
    const char *a;
    while (n < 4 && (a = va_arg(ap, const char *))) {
        args[n] = (const uint8_t *)a;
        lens[n++] = strlen(a);
    }
    va_end(ap);
    char *p = NULL;
    size_t pl = 0;
    assert_int_equal(chp_msg_control(u->m, cmd, n, args, lens, &ok, &p, &pl, &wiped), 1);
    assert_non_null(p);
    assert_true(pl < sizeof buf);
    memcpy(buf, p, pl);
    buf[pl] = '\0';
    free(p);
    harvest();
    if (out)
        *out = buf;
    return ok;
}

static void new_user(struct user *u, const char *nick)
{
    char *out;
    snprintf(u->dir, sizeof u->dir, "/tmp/chp-msgsec-XXXXXX");
    assert_non_null(mkdtemp(u->dir));
    u->m = NULL;
    watch(&u->m);
    open_user(u);
    assert_true(ctl(u, &out, "init", nick, "none", NULL));
    snprintf(u->id, sizeof u->id, "%s", out);
}

static void close_user(struct user *u)
{
    chp_msg_free(&u->m);
    chp_store_close(&u->s);
}

/* Carries what from publishes to to (and back) until nothing moves. */
static void settle(struct user *a, struct user *b)
{
    for (int round = 0, moved = 1; moved && round < 10; round++) {
        moved = 0;
        for (int dir = 0; dir < 2; dir++) {
            struct user *from = dir ? b : a, *to = dir ? a : b;
            uint8_t *env, id[32];
            size_t len;
            while (chp_msg_take(from->m, &env, &len)) {
                chp_envelope_id(env, len, id);
                chp_msg_on_held(from->m, id);
                chp_msg_on_envelope(to->m, env, len, id, 0);
                free(env);
                moved = 1;
            }
        }
    }
    harvest();
}

static void tick(struct user *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        chp_msg_tick(u[i].m);
    harvest();
}

/* u adds a new identity as contact name: pending, with a handshake
 * secret, as nobody answers. */
static void add_pending(struct user *u, const char *name)
{
    chp_identity *id = NULL;
    char ids[CHP_ID_STR_LEN + 1], *out;
    assert_int_equal(chp_identity_generate(chp_rng_system(), &id), CHP_OK);
    chp_id_encode(chp_identity_pk(id), ids);
    chp_identity_destroy(&id);
    assert_true(ctl(u, &out, "contact-add", ids, name, NULL));
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- tests ---- */

/* The wrappers see the frees of this file and find a secret in them. */
static void test_interposer_sees_secrets(void **st)
{
    (void)st;
    /* through volatile pointers, so the compiler keeps the blocks */
    void *(*volatile alloc)(size_t) = malloc;
    void *(*volatile grow)(void *, size_t) = realloc;
    void (*volatile release)(void *) = free;
    uint8_t s[32];
    chp_rng_fill(chp_rng_system(), s, sizeof s);
    secret_add(s, K_TEST);
    size_t before = bad_count();
    uint8_t *b = alloc(100);
    assert_non_null(b);
    memcpy(b + 37, s, 32);
    release(b);
    assert_int_equal(bad_count(), before + 1);
    assert_int_equal(g_bad[before].off, 37);
    b = alloc(64);
    assert_non_null(b);
    memcpy(b, s, 32);
    b = grow(b, 4096); /* a realloc leaves the old block behind */
    assert_int_equal(bad_count(), before + 2);
    chp_memzero(b, 4096);
    release(b); /* wiped: nothing found */
    assert_int_equal(bad_count(), before + 2);
    pthread_mutex_lock(&g_mu);
    g_nbad = before;
    pthread_mutex_unlock(&g_mu);
}

#define PARTNERS     3
#define STRANGER_AT  64 /* contacts when a stranger's request comes in */
#define PENDING_MORE 10
#define ROOMS        40

static void test_no_secret_in_freed_memory(void **st)
{
    (void)st;
    struct user a, p[PARTNERS], stranger;
    char *out, name[32];
    new_user(&a, "alice");
    /* established contacts: epoch base keys */
    for (size_t i = 0; i < PARTNERS; i++) {
        snprintf(name, sizeof name, "p%zu", i);
        new_user(&p[i], name);
        assert_true(ctl(&a, &out, "contact-add", p[i].id, name, NULL));
        assert_true(ctl(&p[i], &out, "contact-add", a.id, "alice", NULL));
        settle(&a, &p[i]);
    }
    /* rooms: the array of room keys grows; their keys are known here too */
    for (size_t i = 0; i < ROOMS; i++) {
        uint8_t key[32];
        snprintf(name, sizeof name, "#room%02zu", i);
        assert_true(ctl(&a, &out, "join", name, NULL));
        assert_int_equal(chp_ks_room_public(name, strlen(name), key), CHP_OK);
        secret_add(key, K_ROOM);
    }
    assert_true(ctl(&a, &out, "join", "#vault", "open sesame", NULL));
    assert_true(ctl(&a, &out, "rooms", NULL));
    assert_int_equal(lines(out), ROOMS + 2); /* and #lan */
    /* pending contacts: each holds an ephemeral handshake secret, until
     * the array is full */
    for (size_t i = PARTNERS; i < STRANGER_AT; i++) {
        snprintf(name, sizeof name, "q%02zu", i);
        add_pending(&a, name);
    }
    assert_int_equal(a.m->nc, STRANGER_AT);
    assert_int_equal(a.m->capc, STRANGER_AT); /* full: the next one grows it */
    /* a stranger's request grows it as it arrives */
    new_user(&stranger, "stranger");
    assert_true(ctl(&stranger, &out, "contact-add", a.id, "alice", NULL));
    settle(&stranger, &a);
    assert_int_equal(a.m->nc, STRANGER_AT + 1);
    assert_true(ctl(&a, &out, "contact-requests", NULL));
    assert_int_equal(lines(out), 1);
    for (size_t i = 0; i < PENDING_MORE; i++) {
        snprintf(name, sizeof name, "r%02zu", i);
        add_pending(&a, name);
    }
    /* days pass: base keys move on, pending requests are renewed under
     * new handshake secrets */
    for (int day = 0; day < 9; day++) {
        g_now += 86400;
        tick(&a, 1);
        tick(p, PARTNERS);
    }
    for (size_t i = 0; i < PARTNERS; i++) {
        snprintf(name, sizeof name, "p%zu", i);
        assert_true(ctl(&a, &out, "send", name, "still there?", NULL));
        settle(&a, &p[i]);
        assert_true(ctl(&p[i], &out, "inbox", NULL));
        assert_non_null(strstr(out, "\talice\talice\tstill there?\t"));
    }
    /* a restart: every array is loaded, and grown, again */
    close_user(&a);
    open_user(&a);
    chp_identity *me = NULL;
    assert_int_equal(chp_account_load(a.dir, NULL, 0, &me), CHP_OK);
    assert_int_equal(chp_msg_unlock(a.m, me), CHP_OK);
    harvest();
    assert_true(ctl(&a, &out, "contact-list", NULL));
    assert_int_equal(lines(out), STRANGER_AT + PENDING_MORE);
    assert_true(ctl(&a, &out, "rooms", NULL));
    assert_int_equal(lines(out), ROOMS + 2);
    assert_true(ctl(&a, &out, "send", "p0", "after the restart", NULL));
    settle(&a, &p[0]);
    assert_true(ctl(&p[0], &out, "inbox", NULL));
    assert_non_null(strstr(out, "\talice\talice\tafter the restart\t"));
    assert_true(ctl(&a, &out, "contact-remove", "q10", NULL));
    assert_true(ctl(&a, &out, "leave", "#room07", NULL));

    close_user(&a);
    close_user(&stranger);
    for (size_t i = 0; i < PARTNERS; i++)
        close_user(&p[i]);
    unwatch_all();
    assert_int_equal(chp_account_wipe(a.dir), CHP_OK);
    assert_int_equal(chp_account_wipe(stranger.dir), CHP_OK);
    for (size_t i = 0; i < PARTNERS; i++)
        assert_int_equal(chp_account_wipe(p[i].dir), CHP_OK);

    /* the secrets were seen, of every kind, and looked for in every block */
    print_message("%zu secrets known (%zu handshake, %zu base, %zu room), %zu freed blocks "
                  "searched\n",
                  g_nsecret, g_kinds[K_ESK], g_kinds[K_BASE], g_kinds[K_ROOM], g_freed_scanned);
    assert_true(g_kinds[K_ESK] >= 2 * (STRANGER_AT + PENDING_MORE - PARTNERS));
    assert_true(g_kinds[K_BASE] >= 2 * PARTNERS);
    assert_true(g_kinds[K_ROOM] >= ROOMS + 2);
    assert_true(g_freed_scanned > 1000);
    bad_report();
    assert_int_equal(bad_count(), 0);
}

int main(void)
{
    g_main = pthread_self();
    if (chp_crypto_init() != CHP_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interposer_sees_secrets),
        cmocka_unit_test(test_no_secret_in_freed_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
