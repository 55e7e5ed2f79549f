/* test_store_crash.c - durability under kill -9.
 *
 * A child process opens the store with full durability and ingests batches
 * of 20 random envelopes (every other batch through the background commit,
 * chp_store_put_start/put_wait); after each commit returns it writes
 * the ids of the accepted envelopes to a pipe (one write() per batch, small
 * enough to be atomic). The parent collects those ids and kills the child
 * with SIGKILL after a random 1-30 ms, counted from the fork in even rounds
 * (the kill may land inside the open) and from the child's "opened" report
 * in odd rounds (it lands among the commits even on a loaded machine). After every kill the parent
 * reopens the store itself and checks that it opens, that every id ever reported committed is there
 * with intact bytes, and that the counters equal what the index holds. Rounds repeat on the same
 * store, each with a fresh child.
 *
 * The seed is fixed and printed; the kill moments still depend on timing. */
#include "proto/crypto.h"
#include "proto/cursor.h"
#include "proto/err.h"
#include "node/common/clock.h"
#include "node/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define SEED        20240611u
#define ROUNDS      150
#define BATCH       20
#define ENV_LEN     1113
#define MAX_BATCHES 300 /* per child: bounds the store's size if commits are fast */
#define DELAY_MIN   1   /* ms */
#define DELAY_MAX   30

static uint64_t xs(uint64_t *st)
{
    uint64_t x = *st ? *st : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *st = x;
    return x;
}

static chp_store_opts durable(void)
{
    /* The quota is far above what the rounds write: nothing is evicted, so
     * every reported id must still be there. */
    chp_store_opts o = {1ull << 30, 0, 0};
    return o;
}

/* The child: ingest until killed. Exit codes say what went wrong if it
 * ever gets to exit on its own. */
static void child_main(const char *dir, unsigned round, int fd)
{
    chp_store *s = NULL;
    chp_store_opts o = durable();
    if (chp_store_open(dir, &o, &s, NULL) != CHP_OK)
        _exit(2);
    static const uint8_t ready[32]; /* all zero: "opened", never an id */
    if (write(fd, ready, 32) != 32)
        _exit(5);
    uint64_t st = ((uint64_t)SEED << 20) ^ (round + 1) * 0x9e3779b97f4a7c15ull;
    static uint8_t env[BATCH][ENV_LEN], ids[BATCH][32], out[BATCH * 32];
    chp_store_item it[BATCH];
    for (uint64_t b = 0; b < MAX_BATCHES; b++) {
        for (size_t i = 0; i < BATCH; i++) {
            for (size_t j = 0; j < ENV_LEN; j++)
                env[i][j] = (uint8_t)(xs(&st) >> 29);
            /* Unique across rounds whatever the stream does. */
            chp_put_be32(env[i], round);
            chp_put_be64(env[i] + 4, b * BATCH + i);
            chp_hash(ids[i], 32, env[i], ENV_LEN, NULL, 0);
            memset(&it[i], 0, sizeof it[i]);
            it[i].env = env[i];
            it[i].len = ENV_LEN;
            it[i].id = ids[i];
            it[i].created = 1700000000 + xs(&st) % 100000;
            it[i].expiry = it[i].created + 86400 * 365;
            it[i].received = 1700000000;
            it[i].link = round;
            it[i].own = (int)(xs(&st) % 4 == 0);
        }
        /* Every other batch through the writer thread, as the daemon does. */
        int rc = b % 2                                         ? chp_store_put_batch(s, it, BATCH)
                 : chp_store_put_start(s, it, BATCH) == CHP_OK ? chp_store_put_wait(s)
                                                               : CHP_E_IO;
        if (rc != CHP_OK)
            _exit(3);
        size_t k = 0;
        for (size_t i = 0; i < BATCH; i++) {
            if (it[i].result != CHP_OK)
                _exit(4);
            memcpy(out + 32 * k++, ids[i], 32);
        }
        /* Only now, after the commit returned, is the batch "committed". */
        if (write(fd, out, 32 * k) != (ssize_t)(32 * k))
            _exit(5);
    }
    for (;;)
        pause(); /* wait for the kill */
}

struct idset {
    uint8_t (*id)[32];
    size_t n, cap;
};

static void idset_add(struct idset *s, const uint8_t *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->id = realloc(s->id, s->cap * 32);
        assert_non_null(s->id);
    }
    memcpy(s->id[s->n++], id, 32);
}

/* Moves whole ids out of buf[0..*len) into the set; keeps a partial tail.
 * The all-zero block is the child's "opened" marker: sets *ready. */
static void take_ids(struct idset *s, uint8_t *buf, size_t *len, int *ready)
{
    static const uint8_t zero[32];
    size_t whole = *len / 32 * 32;
    for (size_t off = 0; off < whole; off += 32) {
        if (memcmp(buf + off, zero, 32) == 0)
            *ready = 1;
        else
            idset_add(s, buf + off);
    }
    memmove(buf, buf + whole, *len - whole);
    *len -= whole;
}

static int count_fn(void *ctx, uint64_t created, const uint8_t id[32])
{
    (void)created;
    (void)id;
    (*(uint64_t *)ctx)++;
    return 0;
}

static void rm_store(const char *root, const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
    rmdir(root);
}

/* The temp dir, removed by the teardown even when the test fails. */
struct fx {
    char root[64], dir[128];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->root, sizeof f->root, "/tmp/chp-test-crash-XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/s", f->root);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    rm_store(f->root, f->dir);
    free(f);
    return 0;
}

static void test_store_survives_sigkill(void **state)
{
    struct fx *f = *state;
    const char *dir = f->dir;
    print_message("seed %u, %d rounds, kill after %d-%d ms\n", SEED, ROUNDS, DELAY_MIN, DELAY_MAX);
    srand(SEED);

    struct idset rep = {NULL, 0, 0};
    unsigned killed_mid = 0, empty_rounds = 0;
    uint64_t t0 = chp_mono_ms();
    uint8_t *buf = malloc(1 << 16);
    assert_non_null(buf);
    for (unsigned r = 0; r < ROUNDS; r++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        unsigned delay = DELAY_MIN + (unsigned)rand() % (DELAY_MAX - DELAY_MIN + 1);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child_main(dir, r, p[1]);
            _exit(6);
        }
        close(p[1]);
        assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);

        /* Collect while the child runs, then kill it. */
        size_t before = rep.n, len = 0;
        /* Even rounds count the delay from the fork (kills land in open too),
         * odd ones from the child's "opened" (kills land among commits even
         * on a loaded machine where opening takes longer than 30 ms). */
        const int from_ready = r % 2;
        int ready = 0;
        uint64_t deadline = chp_mono_ms() + (from_ready ? 10000 : delay);
        for (;;) {
            uint64_t t = chp_mono_ms();
            if (t >= deadline)
                break;
            struct pollfd pf = {p[0], POLLIN, 0};
            int pr = poll(&pf, 1, (int)(deadline - t));
            if (pr <= 0)
                continue;
            ssize_t n = read(p[0], buf + len, (1 << 16) - len);
            if (n > 0) {
                len += (size_t)n;
                int was = ready;
                take_ids(&rep, buf, &len, &ready);
                if (from_ready && ready && !was)
                    deadline = chp_mono_ms() + delay;
            } else if (n == 0) {
                break; /* the child exited on its own: checked below */
            }
        }
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status))
            fail_msg("round %u: the child exited with %d instead of being killed", r,
                     WEXITSTATUS(status));
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        /* Drain what it wrote before dying. */
        assert_int_equal(fcntl(p[0], F_SETFL, 0), 0);
        for (;;) {
            ssize_t n = read(p[0], buf + len, (1 << 16) - len);
            if (n < 0 && errno == EINTR)
                continue;
            assert_true(n >= 0);
            if (n == 0)
                break;
            len += (size_t)n;
            take_ids(&rep, buf, &len, &ready);
        }
        close(p[0]);
        assert_int_equal(len, 0); /* every report arrived whole */
        assert_int_equal((rep.n - before) % BATCH, 0);
        if (rep.n == before)
            empty_rounds++;
        else
            killed_mid++;

        /* The store always reopens, and holds everything reported. */
        chp_store *s = NULL;
        chp_store_opts o = durable();
        uint32_t found = 0;
        int rc = chp_store_open(dir, &o, &s, &found);
        if (rc != CHP_OK)
            fail_msg("round %u (killed after %u ms): reopen failed: %s", r, delay, chp_errname(rc));
        assert_int_equal(found, CHP_STORE_SCHEMA);
        uint8_t env[ENV_LEN + 1], h[32];
        for (size_t i = 0; i < rep.n; i++) {
            if (chp_store_has(s, rep.id[i]) != 1)
                fail_msg("round %u: reported id %zu of %zu is missing", r, i, rep.n);
            if (i < before && i % 16)
                continue; /* older rounds: bytes of a sample, presence of all */
            size_t elen = 0;
            chp_store_meta m;
            assert_int_equal(chp_store_get(s, rep.id[i], env, sizeof env, &elen, &m), CHP_OK);
            assert_int_equal(elen, ENV_LEN);
            chp_hash(h, 32, env, elen, NULL, 0);
            assert_memory_equal(h, rep.id[i], 32);
            assert_int_equal(m.expiry, m.created + 86400 * 365);
        }
        chp_store_stats st;
        chp_store_stats_get(s, &st);
        chp_store_bound lo = chp_store_bound_min(), hi = chp_store_bound_max();
        uint64_t n = 0;
        assert_int_equal(chp_store_range(s, &lo, &hi, count_fn, &n), 0);
        assert_int_equal(st.envelopes, n);
        assert_int_equal(st.bytes, n * ENV_LEN);
        assert_true(st.own <= n);
        assert_true(n >= rep.n);
        /* Committed but killed before reporting: at most one batch. */
        assert_true(n - rep.n <= (uint64_t)BATCH * (r + 1));
        uint64_t swept = 1;
        assert_int_equal(chp_store_sweep(s, 1, &swept), CHP_OK); /* a write works */
        assert_int_equal(swept, 0);
        chp_store_close(&s);
    }
    print_message("%u rounds in %llu ms: %zu envelopes reported committed, %u rounds killed "
                  "after commits, %u before the first one\n",
                  ROUNDS, (unsigned long long)(chp_mono_ms() - t0), rep.n, killed_mid,
                  empty_rounds);
    /* Some kills did land among commits, not all before the first. */
    assert_true(killed_mid > 0);
    free(buf);
    free(rep.id);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return chp_crypto_init() == CHP_OK ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_survives_sigkill, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
