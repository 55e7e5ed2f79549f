/* share.c - the `chapar share-app` child of chapar-tui (share.h). */
#define _GNU_SOURCE /* pipe2 */
#include "ui-tui/share.h"
#include "node/client/ctl.h"
#include "node/common/clock.h"
#include "node/common/i18n.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define STOP_WAIT_MS 2000 /* a child asked to stop gets this long */

void chp_share_child_init(chp_share_child *s, const char *home)
{
    memset(s, 0, sizeof *s);
    s->home = home;
    s->fd = -1;
}

int chp_share_child_fd(const chp_share_child *s)
{
    return s->fd;
}

static int start(chp_share_child *s, const char *listen)
{
    char path[4096];
    int p[2];
    chp_ctl_find_program("chapar", path, sizeof path);
    if (s->pid > 0 || pipe2(p, O_CLOEXEC) != 0)
        return CHP_E_IO;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return CHP_E_IO;
    }
    if (pid == 0) { /* its own session: no signal from the terminal reaches it */
        int null = open("/dev/null", O_RDONLY);
        setsid();
        dup2(null, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        if (listen)
            execlp(path, path, "--home", s->home, "share-app", "--listen", listen, (char *)NULL);
        else
            execlp(path, path, "--home", s->home, "share-app", (char *)NULL);
        dprintf(2, "cannot run %s: %s\n", path, strerror(errno)); /* after fork: no gettext */
        _exit(127);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    s->pid = pid;
    s->fd = p[0];
    s->len = 0;
    return CHP_OK;
}

int chp_share_child_ctl(void *ctx, int start_, const char *listen)
{
    chp_share_child *s = ctx;
    if (start_)
        return start(s, listen);
    return s->pid > 0 && kill(s->pid, SIGINT) == 0 ? CHP_OK : CHP_E_IO;
}

/* Its exit status in words. */
static void reap(chp_share_child *s, char *how, size_t cap)
{
    int st = 0;
    uint64_t end = chp_mono_ms() + STOP_WAIT_MS;
    pid_t r;
    while ((r = waitpid(s->pid, &st, WNOHANG)) == 0 && chp_mono_ms() < end)
        usleep(10000);
    if (r == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
    }
    if (WIFEXITED(st))
        snprintf(how, cap, _("exit %d"), WEXITSTATUS(st));
    else
        snprintf(how, cap, _("signal %d"), WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    s->pid = 0;
}

void chp_share_child_read(chp_share_child *s, chp_app *a)
{
    if (s->fd < 0)
        return;
    for (;;) {
        ssize_t k = read(s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return; /* nothing more now */
        s->len += (size_t)k;
        char *nl;
        while ((nl = memchr(s->buf, '\n', s->len)) || s->len == sizeof s->buf - 1 ||
               (!k && s->len)) {
            size_t l = nl ? (size_t)(nl - s->buf) : s->len;
            s->buf[l] = '\0';
            chp_app_share_line(a, s->buf);
            size_t used = nl ? l + 1 : l;
            memmove(s->buf, s->buf + used, s->len - used);
            s->len -= used;
        }
        if (k == 0) { /* the child closed its output: it is ending */
            char how[64];
            close(s->fd);
            s->fd = -1;
            reap(s, how, sizeof how);
            chp_app_share_ended(a, how);
            return;
        }
    }
}

void chp_share_child_stop(chp_share_child *s)
{
    if (s->pid <= 0)
        return;
    char how[64];
    kill(s->pid, SIGINT);
    reap(s, how, sizeof how);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
