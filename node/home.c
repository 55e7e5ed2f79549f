/* home.c - data dir resolution and size parsing shared by the programs. */
#include "home.h"

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
