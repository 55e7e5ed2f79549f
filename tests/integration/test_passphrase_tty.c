/* test_passphrase_tty.c - the passphrase prompts of chapard and `chapar
 * unlock` on a real terminal (a pseudo-terminal made here): Ctrl-C
 * cancels at once (it used to be ignored by chapard, and the next line
 * was taken as the passphrase), a wrong passphrase is asked again up to 3
 * times, and input that is no terminal (--passphrase-file) keeps its one
 * try. */
#define _XOPEN_SOURCE 700
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define PASS "the right passphrase"

/* A program on a new pseudo-terminal, its controlling terminal. */
typedef struct pty_proc {
    int fd; /* the master side */
    pid_t pid;
    char out[16384]; /* everything it printed so far */
    size_t len;
} pty_proc;

static void pty_spawn(h_ctx *h, pty_proc *p, const char *const *argv)
{
    memset(p, 0, sizeof *p);
    p->fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(p->fd >= 0);
    assert_int_equal(grantpt(p->fd), 0);
    assert_int_equal(unlockpt(p->fd), 0);
    const char *slave = ptsname(p->fd);
    assert_non_null(slave);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        setsid();
        int s = open(slave, O_RDWR);
        if (s < 0 || ioctl(s, TIOCSCTTY, 0) != 0)
            _exit(126);
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        if (s > 2)
            close(s);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    assert_true(h->naux < H_MAX_AUX);
    h->aux[h->naux++] = p->pid; /* killed in teardown if still there */
}

/* Reads what is there (waiting up to ms): 1 if it read something, 0 at
 * the end of output, -1 if nothing came. */
static int pty_read(pty_proc *p, int ms)
{
    struct pollfd pf = {p->fd, POLLIN, 0};
    if (poll(&pf, 1, ms) <= 0)
        return -1;
    ssize_t n = read(p->fd, p->out + p->len, sizeof p->out - 1 - p->len);
    if (n <= 0)
        return 0; /* EIO: the other side is closed */
    p->len += (size_t)n;
    p->out[p->len] = '\0';
    return 1;
}

/* Waits until the output holds needle the k-th time (k from 1). */
static void pty_expect(pty_proc *p, const char *needle, int k)
{
    uint64_t end = chp_mono_ms() + H_DEADLINE_MS;
    for (;;) {
        int seen = 0;
        for (const char *s = p->out; (s = strstr(s, needle)); s += strlen(needle))
            seen++;
        if (seen >= k)
            return;
        if (chp_mono_ms() > end || pty_read(p, 100) == 0)
            fail_msg("waited for '%s' (%d times); the terminal shows:\n%s", needle, k, p->out);
    }
}

static void pty_type(pty_proc *p, const char *keys)
{
    assert_int_equal(write(p->fd, keys, strlen(keys)), (ssize_t)strlen(keys));
}

/* Waits up to ms for the program to exit; its exit code, or -1. */
static int pty_wait(h_ctx *h, pty_proc *p, int ms)
{
    uint64_t end = chp_mono_ms() + (uint64_t)ms;
    for (;;) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            for (size_t i = 0; i < h->naux; i++)
                if (h->aux[i] == p->pid)
                    h->aux[i] = h->aux[--h->naux];
            while (p->len < sizeof p->out - 1 && pty_read(p, 10) == 1)
                ;
            close(p->fd);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (chp_mono_ms() > end)
            return -1;
        pty_read(p, 20); /* keep the terminal drained */
    }
}

/* A passphrase identity in DIR/n, made without a daemon. */
static h_node *locked_user(h_ctx *h)
{
    static const char pass[] = PASS "\n";
    char *pf = h_write_file(h, "pass", pass, sizeof pass - 1);
    h_node *n = h_node_get(h, "n");
    h_init(h, n, "nina", NULL, "--passphrase-file", pf, H_END);
    return n;
}

static void spawn_chapard(h_ctx *h, pty_proc *p, const h_node *n)
{
    const char *argv[] = {h_bin("CHAPARD"), "--home",         n->home, "--listen",
                          "127.0.0.1:0",    "--no-discovery", NULL};
    pty_spawn(h, p, argv);
}

static void test_chapard_ctrl_c(void **state)
{
    h_ctx *h = *state;
    h_node *n = locked_user(h);
    pty_proc p;
    spawn_chapard(h, &p, n);
    pty_expect(&p, "passphrase: ", 1);
    uint64_t t0 = chp_mono_ms();
    pty_type(&p, "\x03");
    int rc = pty_wait(h, &p, 3000);
    if (rc == -1)
        fail_msg("chapard still runs 3 s after Ctrl-C at its prompt:\n%s", p.out);
    assert_int_equal(rc, 130);
    assert_true(chp_mono_ms() - t0 < 3000);
    assert_non_null(strstr(p.out, "cancelled"));
    /* Nothing was started: no daemon answers there. */
    char *out = NULL;
    assert_int_equal(h_chapar(h, n, &out, NULL, "status", H_END), 1);
    free(out);
}

static void test_chapard_asks_again(void **state)
{
    h_ctx *h = *state;
    h_node *n = locked_user(h);
    pty_proc p;
    spawn_chapard(h, &p, n);
    pty_expect(&p, "passphrase: ", 1);
    pty_type(&p, "wrong one\r");
    pty_expect(&p, "wrong passphrase, try again", 1);
    pty_expect(&p, "passphrase: ", 2);
    /* Erase works: "X" then backspace. */
    pty_type(&p, PASS "X\x7f\r");
    free(h_await(h, n, "identity: unlocked", "status", H_END));
    kill(p.pid, SIGTERM);
    assert_int_equal(pty_wait(h, &p, 10000), 0);
    assert_null(strstr(p.out, PASS)); /* never echoed */

    /* Three wrong ones: exit 1, and nothing runs. */
    spawn_chapard(h, &p, n);
    for (int k = 1; k <= 3; k++) {
        pty_expect(&p, "passphrase: ", k);
        pty_type(&p, "wrong\r");
    }
    assert_int_equal(pty_wait(h, &p, 20000), 1);
    assert_non_null(strstr(p.out, "wrong passphrase 3 times"));
    char *out = NULL;
    assert_int_equal(h_chapar(h, n, &out, NULL, "status", H_END), 1);
    free(out);
}

static void spawn_unlock(h_ctx *h, pty_proc *p, const h_node *n)
{
    const char *argv[] = {h_bin("CHAPAR"), "--home", n->home, "unlock", NULL};
    pty_spawn(h, p, argv);
}

static void test_unlock_prompt(void **state)
{
    h_ctx *h = *state;
    h_node *n = locked_user(h);
    h_start(h, "n", H_END); /* no terminal: starts locked */
    free(h_await(h, n, "identity: locked", "status", H_END));

    /* Ctrl-C: at once, nothing sent, still locked. */
    pty_proc p;
    spawn_unlock(h, &p, n);
    pty_expect(&p, "passphrase: ", 1);
    pty_type(&p, "\x03");
    assert_int_equal(pty_wait(h, &p, 3000), 130);
    free(h_await(h, n, "identity: locked", "status", H_END));

    /* Wrong, then right: asked again, unlocked. */
    spawn_unlock(h, &p, n);
    pty_expect(&p, "passphrase: ", 1);
    pty_type(&p, "wrong\r");
    pty_expect(&p, "wrong passphrase, try again", 1);
    pty_expect(&p, "passphrase: ", 2);
    pty_type(&p, PASS "\r");
    int rc = pty_wait(h, &p, 20000);
    if (rc != 0)
        fail_msg("chapar unlock: exit %d:\n%s", rc, p.out);
    assert_non_null(strstr(p.out, "chp1"));
    free(h_await(h, n, "identity: unlocked", "status", H_END));
    h_stop(h, n);

    /* Three wrong: exit 1, still locked. */
    h_start(h, "n", H_END);
    spawn_unlock(h, &p, n);
    for (int k = 1; k <= 3; k++) {
        pty_expect(&p, "passphrase: ", k);
        pty_type(&p, "wrong\r");
    }
    assert_int_equal(pty_wait(h, &p, 20000), 1);
    free(h_await(h, n, "identity: locked", "status", H_END));

    /* From a file: one try, one line. */
    static const char bad[] = "wrong\n";
    char *pf = h_write_file(h, "bad", bad, sizeof bad - 1);
    char *out = NULL, *err = NULL;
    assert_int_equal(h_chapar(h, n, &out, &err, "unlock", "--passphrase-file", pf, H_END), 1);
    assert_int_equal(h_lines(err), 1);
    assert_non_null(strstr(err, "wrong passphrase"));
    free(out);
    free(err);
    h_stop(h, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chapard_ctrl_c, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_chapard_asks_again, h_setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_unlock_prompt, h_setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
