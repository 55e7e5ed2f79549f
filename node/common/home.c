/* home.c - data dir resolution and size parsing shared by the programs. */
#include "node/common/home.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int chp_home_default(char *out, size_t cap)
{
    const char *v = getenv("CHAPAR_HOME");
    int n;
    if (v && *v)
        n = snprintf(out, cap, "%s", v);
    else if ((v = getenv("XDG_DATA_HOME")) && *v)
        n = snprintf(out, cap, "%s/chapar", v);
    else if ((v = getenv("HOME")) && *v)
        n = snprintf(out, cap, "%s/.local/share/chapar", v);
    else
        return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int chp_home_owns(const char *name)
{
    static const char *const own[] = {
        "identity",     "identity.key",  "data.mdb",          "lock.mdb",
        "control",      "events",        "chapard.conf",      "chapard.log",
        "chapard.lock", ".identity.tmp", ".identity.key.tmp", ".chapard.conf.tmp",
        "vault",
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(name, own[i]))
            return 1;
    return 0;
}

int chp_home_is_data_dir(const char *home)
{
    static const char *const marks[] = {"identity", "identity.key", "data.mdb"};
    char p[4200];
    struct stat st;
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", home, marks[i]);
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
    }
    return 0;
}

int chp_home_check(const char *home, char *what, size_t cap)
{
    struct stat st;
    if (what && cap)
        what[0] = '\0';
    if (strlen(home) > CHP_HOME_PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (stat(home, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    if (chp_home_is_data_dir(home))
        return 0;
    DIR *d = opendir(home);
    if (!d)
        return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || chp_home_owns(e->d_name))
            continue;
        if (what && cap)
            snprintf(what, cap, "%s", e->d_name);
        errno = EEXIST;
        rc = -1;
        break;
    }
    closedir(d);
    return rc;
}

const char *chp_home_problem(const char *home, char *buf, size_t cap)
{
    char what[256];
    if (chp_home_check(home, what, sizeof what) == 0)
        return NULL;
    if (errno == ENOTDIR)
        snprintf(buf, cap, "%s is not a directory (--home names a Chapar data dir)", home);
    else if (errno == ENAMETOOLONG)
        snprintf(buf, cap,
                 "data dir path too long: %zu bytes, at most %d (its control socket must fit "
                 "a Unix socket address)",
                 strlen(home), CHP_HOME_PATH_MAX);
    else if (errno == EEXIST)
        snprintf(buf, cap,
                 "%s holds other files (%s) and no Chapar data: use a new or empty directory", home,
                 what);
    else
        snprintf(buf, cap, "%s: %s", home, strerror(errno));
    return buf;
}

int chp_home_make(const char *home)
{
    char p[4096];
    if (!home[0] || snprintf(p, sizeof p, "%s", home) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    struct stat st;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s)
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        if (stat(p, &st) != 0)
            return -1;
        if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
        *s = c;
        if (!c)
            return 0;
    }
}

int chp_home_lock(const char *home)
{
    char p[4200];
    if (snprintf(p, sizeof p, "%s/chapard.lock", home) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        errno = e == EINTR ? EWOULDBLOCK : e;
        return -1;
    }
    return fd;
}

int chp_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0':
        break;
    case 'K':
    case 'k':
        shift = 10;
        break;
    case 'M':
    case 'm':
        shift = 20;
        break;
    case 'G':
    case 'g':
        shift = 30;
        break;
    case 'T':
    case 't':
        shift = 40;
        break;
    default:
        return -1;
    }
    if (*end && end[1] && strcmp(end + 1, "B") && strcmp(end + 1, "iB"))
        return -1;
    if (v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}
