/* log.c - leveled stderr logging with timestamps. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int current = CHP_LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

void chp_log_set_level(int level)
{
    current = level;
}

int chp_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

static unsigned errors_logged;

unsigned chp_log_errors(void)
{
    return errors_logged;
}

void chp_log(int level, const char *fmt, ...)
{
    if (level == CHP_LOG_ERROR)
        errors_logged++;
    if (level > current)
        return;
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld %-5s ", stamp, ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
