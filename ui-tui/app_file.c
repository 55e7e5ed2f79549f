/* app_file.c - files in the TUI (PROTOCOL.md §18.8): /file PATH sends one
 * to the open conversation, /files lists the received ones numbered (the
 * daemon's `files`), /save N [PATH] writes number N, /open N hands a
 * saved one to xdg-open, or plays a voice note with the first player
 * found; an audio file shows as a voice note with its duration. The
 * numbers are those of the last /files. An incoming file's `file`
 * events draw its line with a bar before its message comes. No curses. */
#include "ui-tui/app_file.h"

#include "node/common/i18n.h"
#include "proto/audio.h"
#include "ui-tui/app_int.h"
#include "ui-tui/input.h"
#include "ui-tui/wtext.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FILES_MAX 64

/* The last /files answer: id and state of each line. */
static struct {
    char id[33];
    char name[128];
    int voice;       /* the node worked out a voice note's duration */
    char state[600]; /* "incoming N/M", "complete", "saved PATH" */
} g_files[FILES_MAX];
static size_t g_nfiles;
/* What the next CHP_R_FILES answer is for. */
static struct {
    int what; /* 0 list, 1 save, 2 open */
    size_t n;
    char path[4200];
} g_pending;

int chp_app_file_voice(const char *name)
{
    return chp_audio_is_voice(name, NULL);
}

/* in with a leading "~/" (or "~" alone) made $HOME's, as a shell does. */
static void tilde(const char *in, char *out, size_t cap)
{
    const char *home = getenv("HOME");
    if (in[0] == '~' && (in[1] == '/' || !in[1]) && home && home[0])
        snprintf(out, cap, "%s%s", home, in + 1);
    else
        snprintf(out, cap, "%s", in);
}

static void abs_path(const char *path, char *out, size_t cap)
{
    char cwd[4000], in[4200];
    tilde(path, in, sizeof in);
    if (in[0] == '/' || !getcwd(cwd, sizeof cwd))
        snprintf(out, cap, "%s", in);
    else if ((size_t)snprintf(out, cap, "%s/%s", cwd, in) >= cap)
        out[0] = '\0'; /* too long: the node refuses "" */
}

void chp_app_cmd_file(chp_app *a, const chp_cmd *c, const char *conv)
{
    char path[4200];
    if (!conv) {
        chp_app_notice(a, _("open a conversation first (a contact or a #room)"));
        return;
    }
    abs_path(c->argv[0], path, sizeof path);
    chp_app_notice(a, _("sending %s to %s"), path, conv);
    REQ2(a, CHP_R_DONE, _("file queued: /files at the other end shows it"), "send-file", conv,
         path);
}

/* Splits one `files` line (ID CONV SENDER NAME SIZE STATE TIME [MS])
 * into g_files[i] (f gets the fields, f[7] "" when there is no MS); 0, or
 * -1 when it is not such a line. */
static int split_line(char *line, size_t i, char *f[8])
{
    int n = 0;
    f[7] = "";
    for (char *s = line; s && n < 8; n++) {
        f[n] = s;
        char *t = strchr(s, '\t');
        if (t)
            *t++ = '\0';
        s = t;
    }
    if (n < 7)
        return -1;
    snprintf(g_files[i].id, sizeof g_files[i].id, "%s", f[0]);
    snprintf(g_files[i].name, sizeof g_files[i].name, "%s", f[3]);
    snprintf(g_files[i].state, sizeof g_files[i].state, "%s", f[5]);
    g_files[i].voice = f[7][0] != '\0';
    return 0;
}

/* The program called name in $PATH into out; 0, or -1 when none. */
static int in_path(const char *name, char *out, size_t cap)
{
    const char *p = getenv("PATH");
    for (const char *s = p ? p : "/usr/bin:/bin"; *s;) {
        size_t l = strcspn(s, ":");
        if (l && (size_t)snprintf(out, cap, "%.*s/%s", (int)l, s, name) < cap &&
            access(out, X_OK) == 0)
            return 0;
        s += l + (s[l] == ':');
    }
    return -1;
}

/* Starts argv[0] (a full path) with argv, no shell, output to /dev/null,
 * detached: the child forks the program and exits at once, so the UI
 * loop only reaps a process that already ended. 0 once the program runs
 * (its exec went through: a close-on-exec pipe stays silent), or -1 with
 * errno. */
static int spawn_detached(char *const argv[])
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    (void)fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        setsid();
        pid_t g = fork();
        if (g > 0)
            _exit(0);
        if (g == 0) {
            int fd = open("/dev/null", O_RDWR);
            if (fd >= 0) {
                dup2(fd, 0);
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execv(argv[0], argv);
        }
        int e = errno;
        if (write(pfd[1], &e, sizeof e) != (ssize_t)sizeof e)
            _exit(126);
        _exit(127);
    }
    int e = errno;
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        errno = e;
        return -1;
    }
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    ssize_t r;
    while ((r = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    if (r == (ssize_t)sizeof e) {
        errno = e;
        return -1;
    }
    return 0;
}

/* /open: xdg-open when there is one; a voice note else with the first
 * player found. The path is one argument, never read by a shell. */
static void run_open(chp_app *a, const char *path, int voice)
{
    static const char *const players[][4] = {
        {"xdg-open"}, {"mpv", "--no-video"}, {"ffplay", "-nodisp", "-autoexit"}, {"paplay"},
        {"ogg123"},
    };
    size_t np = voice ? sizeof players / sizeof *players : 1;
    char prog[4200];
    for (size_t i = 0; i < np; i++) {
        if (in_path(players[i][0], prog, sizeof prog))
            continue;
        char *argv[5] = {prog};
        int k = 1;
        for (int j = 1; j < 4 && players[i][j]; j++)
            argv[k++] = (char *)players[i][j];
        argv[k++] = (char *)path;
        argv[k] = NULL;
        if (spawn_detached(argv)) {
            chp_app_notice(a, _("cannot start %s: %s"), players[i][0], strerror(errno));
            return;
        }
        chp_app_notice(a, voice ? _("playing %s with %s") : _("opening %s with %s"), path,
                       players[i][0]);
        return;
    }
    chp_app_notice(a,
                   voice ? _("no player found (xdg-open, mpv, ffplay, paplay, ogg123): the voice "
                             "note is saved at %s")
                         : _("no xdg-open found: the file is saved at %s"),
                   path);
}

/* /save or /open of number g_pending.n, now that the list is fresh. */
static void act(chp_app *a)
{
    if (g_pending.n < 1 || g_pending.n > g_nfiles) {
        chp_app_notice(a, _("no file %zu: /files lists them"), g_pending.n);
        return;
    }
    const char *st = g_files[g_pending.n - 1].state;
    if (g_pending.what == 2) {
        if (strncmp(st, "saved ", 6))
            chp_app_notice(a, _("file %zu is not saved yet: /save %zu first"), g_pending.n,
                           g_pending.n);
        else
            run_open(a, st + 6,
                     g_files[g_pending.n - 1].voice ||
                         chp_app_file_voice(g_files[g_pending.n - 1].name));
        return;
    }
    if (!g_pending.path[0]) {
        char cwd[4000];
        snprintf(g_pending.path, sizeof g_pending.path, "%s/%s",
                 getcwd(cwd, sizeof cwd) ? cwd : ".", g_files[g_pending.n - 1].name);
    }
    REQ2(a, CHP_R_FILES, "save", "file-save", g_files[g_pending.n - 1].id, g_pending.path);
}

/* The answer to /save's file-save: the path the node wrote. */
static void saved_reply(chp_app *a, int ok, char *p, size_t len)
{
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\0'))
        p[--len] = '\0';
    if (!ok)
        chp_app_notice(a, _("error: %s"), p);
    else
        chp_app_notice(a, _("saved to %s"), len ? p : g_pending.path);
}

static void files_reply(chp_app *a, const char *tag, int ok, char *p, size_t len)
{
    if (!strcmp(tag, "save")) {
        saved_reply(a, ok, p, len);
        return;
    }
    if (!ok) {
        chp_app_notice(a, _("error: %s"), p);
        return;
    }
    int list = g_pending.what == 0;
    if (list)
        chp_app_notice(a, _("received files (/save N [PATH], /open N):"));
    g_nfiles = 0;
    /* the node lists them by time, the newest last, as history */
    char *save = NULL;
    for (char *line = strtok_r(p, "\n", &save); line && g_nfiles < FILES_MAX;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[8], vn[48] = "", dur[16];
        if (split_line(line, g_nfiles, f))
            continue;
        g_nfiles++;
        if (f[7][0]) { /* the node read its duration from the file's bytes */
            chp_audio_fmt((uint32_t)strtoul(f[7], NULL, 10), dur, sizeof dur);
            snprintf(vn, sizeof vn, _("[voice note %s] "), dur);
        } else if (chp_app_file_voice(f[3])) {
            snprintf(vn, sizeof vn, "%s", _("[voice note] "));
        }
        if (list)
            chp_app_notice(a, _("  %zu. %s%s (%s B) from %s in %s: %s"), g_nfiles, vn, f[3], f[4],
                           f[2], f[1], f[5]);
    }
    if (list && !g_nfiles)
        chp_app_notice(a, _("  (none)"));
    if (!list)
        act(a);
}

static void ask(chp_app *a, int what, size_t n, const char *path)
{
    g_pending.what = what;
    g_pending.n = n;
    g_pending.path[0] = '\0';
    if (path)
        abs_path(path, g_pending.path, sizeof g_pending.path);
    a->files_reply = files_reply;
    REQ0(a, CHP_R_FILES, "", "files");
}

void chp_app_cmd_files(chp_app *a, const chp_cmd *c)
{
    (void)c;
    ask(a, 0, 0, NULL);
}

/* N of /save and /open: 1.., else 0 after saying so. */
static size_t number(chp_app *a, const char *s)
{
    char *end = NULL;
    unsigned long n = strtoul(s, &end, 10);
    if (!s[0] || *end || n < 1 || n > FILES_MAX) {
        chp_app_notice(a, _("N is the number /files shows (1 to %d)"), FILES_MAX);
        return 0;
    }
    return n;
}

void chp_app_cmd_save(chp_app *a, const chp_cmd *c)
{
    size_t n = number(a, c->argv[0]);
    if (n)
        ask(a, 1, n, c->argc > 1 ? c->argv[1] : NULL);
}

void chp_app_cmd_open(chp_app *a, const chp_cmd *c)
{
    size_t n = number(a, c->argv[0]);
    if (n)
        ask(a, 2, n, NULL);
}

static int str_order(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The longest common start of the names in dir that start with base;
 * "/" after a directory that is the only match. n: how many match; list
 * (when more than one) the first few of them in order, "…" for more. */
static void dir_matches(const char *dir, const char *base, char *out, size_t cap, int *n,
                        char *list, size_t lcap)
{
    enum { SHOW = 6, KEEP = 256 };
    char *names[KEEP];
    size_t nn = 0;
    DIR *d = opendir(dir[0] ? dir : ".");
    size_t bl = strlen(base);
    *n = 0;
    out[0] = '\0';
    list[0] = '\0';
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, base, bl) || (e->d_name[0] == '.' && base[0] != '.') ||
            !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (nn < KEEP && (names[nn] = strdup(e->d_name)))
            nn++;
        if ((*n)++ == 0) {
            snprintf(out, cap, "%s", e->d_name);
            continue;
        }
        size_t k = 0;
        while (out[k] && out[k] == e->d_name[k])
            k++;
        out[k] = '\0';
    }
    if (d)
        closedir(d);
    qsort(names, nn, sizeof *names, str_order);
    for (size_t i = 0; i < nn; i++) {
        size_t l = strlen(list);
        if (*n > 1 && i < SHOW)
            snprintf(list + l, lcap - l, "%s%s", i ? "  " : "", names[i]);
        free(names[i]);
    }
    if (*n > SHOW) {
        size_t l = strlen(list);
        snprintf(list + l, lcap - l, "  …");
    }
    if (*n == 1) {
        char full[4400];
        struct stat st;
        snprintf(full, sizeof full, "%s%s", dir, out);
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode) && strlen(out) + 1 < cap)
            strcat(out, "/");
    }
}

int chp_app_file_complete(chp_app *a)
{
    size_t len = 0, n = chp_input_len(a->in);
    if (chp_input_cursor(a->in) != n)
        return 0;
    char *line = chp_wt_encode(chp_input_text(a->in), n, &len);
    if (!line || strncmp(line, "/file ", 6)) {
        free(line);
        return 0;
    }
    const char *word = line + 6, *slash = strrchr(word, '/');
    char typed[4096], dir[4200], match[1024];
    snprintf(typed, sizeof typed, "%.*s", slash ? (int)(slash - word + 1) : 0, word);
    tilde(typed, dir, sizeof dir); /* "~/" is $HOME's; the line keeps the "~" */
    const char *base = slash ? slash + 1 : word;
    int count = 0;
    dir_matches(dir, base, match, sizeof match, &count, a->hint, sizeof a->hint);
    if (count && strlen(match) > strlen(base))
        chp_input_insert_utf8(a->in, match + strlen(base));
    a->dirty = 1;
    free(line);
    return 1;
}
