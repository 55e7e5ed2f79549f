/* home.c - data dir resolution and size parsing shared by the programs. */
#include "home.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
