/* log.c - leveled stderr logging with timestamps: escaped, rate-limited
 * per call site, and rotated when chapard owns its log file. */
#define _DEFAULT_SOURCE
#include "node/common/log.h"
#include "node/common/clock.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at s (1..4), 0 if there is none. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t k;
    uint32_t c = s[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, c &= 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, c &= 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, c &= 0x07, min = 0x10000;
    else
        return 0;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return k;
}

/* Code points a terminal acts on or that reorder what is shown. */
static int unsafe(uint32_t c)
{
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f;
}

size_t chp_log_escape(const char *s_, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)s_;
    size_t o = 0;
    if (!cap)
        return 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = utf8_len(s + i, len - i, &cp);
        if (k && !unsafe(cp)) {
            if (o + k >= cap)
                break;
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        if (!k)
            k = 1; /* not UTF-8: this byte alone */
        if (o + 4 * k >= cap)
            break;
        for (size_t j = 0; j < k; j++) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[s[i + j] >> 4];
            out[o++] = hex[s[i + j] & 15];
        }
        i += k;
    }
    out[o] = '\0';
    return o;
}

/* ---- rate limits ---- */

#define SITES 64

struct site {
    const char *fmt; /* the call site: its format string's address */
    int level;
    double tokens;
    uint64_t ms;
    unsigned long long suppressed;
    uint64_t suppressed_ms; /* when the last line was held back */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct site sites[SITES];
static double all_tokens = CHP_LOG_BURST;
static uint64_t all_ms;
static unsigned long long all_suppressed;

/* rotation */
static char rot_path[4096];
static uint64_t rot_max, rot_size;

static void refill(double *tokens, uint64_t *ms, uint64_t t, double rate, double burst)
{
    if (*ms)
        *tokens += (double)(t - *ms) * rate / 1000.0;
    if (*tokens > burst)
        *tokens = burst;
    *ms = t;
}

static struct site *site_of(const char *fmt, int level, uint64_t t)
{
    struct site *free_ = NULL, *stalest = NULL;
    for (size_t i = 0; i < SITES; i++) {
        struct site *s = &sites[i];
        if (s->fmt == fmt)
            return s;
        if (!s->fmt && !free_)
            free_ = s;
        if (s->fmt && !s->suppressed && (!stalest || s->ms < stalest->ms))
            stalest = s;
    }
    struct site *s = free_ ? free_ : stalest;
    if (!s)
        return NULL; /* every site is holding lines back: only the total limit applies */
    memset(s, 0, sizeof *s);
    s->fmt = fmt;
    s->level = level;
    s->tokens = CHP_LOG_SITE_BURST;
    s->ms = t;
    return s;
}

static void maybe_rotate(void);

/* One finished line: stamp (ISO 8601, UTC, milliseconds:
 * 2026-12-02T14:03:07.250Z), level, text. */
static void emit(int level, const char *text)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    int k = fprintf(stderr, "%s.%03ldZ %-5s %s\n", stamp, ts.tv_nsec / 1000000, names[level], text);
    if (k > 0)
        rot_size += (uint64_t)k;
    maybe_rotate();
}

static void summary(struct site *s)
{
    char f[160], line[256];
    chp_log_escape(s->fmt, strlen(s->fmt) < 100 ? strlen(s->fmt) : 100, f, sizeof f);
    snprintf(line, sizeof line, "suppressed %llu more lines like \"%s\"", s->suppressed, f);
    emit(s->level, line);
    s->suppressed = 0;
}

/* Summaries of sites that went quiet for a second after holding lines back. */
static void flush_summaries(uint64_t t, const struct site *except)
{
    for (size_t i = 0; i < SITES; i++)
        if (&sites[i] != except && sites[i].suppressed && t - sites[i].suppressed_ms >= 1000)
            summary(&sites[i]);
    if (all_suppressed && t - all_ms >= 1000 && all_tokens >= 1.0) {
        char line[96];
        snprintf(line, sizeof line, "suppressed %llu more lines (over %.0f lines/s)",
                 all_suppressed, CHP_LOG_RATE);
        all_suppressed = 0;
        emit(CHP_LOG_WARN, line);
    }
}

void chp_log(int level, const char *fmt, ...)
{
    if (level == CHP_LOG_ERROR)
        __atomic_add_fetch(&errors_logged, 1, __ATOMIC_RELAXED);
    if (level > current)
        return;
    char raw[CHP_LOG_LINE_MAX + 1], text[4 * CHP_LOG_LINE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int rl = vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (rl < 0)
        return;
    size_t len = (size_t)rl < sizeof raw ? (size_t)rl : sizeof raw - 1;
    chp_log_escape(raw, len, text, sizeof text);

    pthread_mutex_lock(&lock);
    uint64_t t = chp_mono_ms();
    struct site *s = site_of(fmt, level, t);
    flush_summaries(t, s);
    refill(&all_tokens, &all_ms, t, CHP_LOG_RATE, CHP_LOG_BURST);
    if (s)
        refill(&s->tokens, &s->ms, t, CHP_LOG_SITE_RATE, CHP_LOG_SITE_BURST);
    if (s && s->tokens < 1.0) {
        s->suppressed++;
        s->suppressed_ms = t;
    } else if (all_tokens < 1.0) {
        all_suppressed++;
    } else {
        all_tokens -= 1.0;
        if (s) {
            s->tokens -= 1.0;
            if (s->suppressed)
                summary(s);
        }
        emit(level, text);
    }
    pthread_mutex_unlock(&lock);
}

/* ---- rotation ---- */

static void maybe_rotate(void)
{
    if (!rot_max || rot_size < rot_max)
        return;
    struct stat st;
    if (fstat(2, &st) == 0 && (uint64_t)st.st_size < rot_max) {
        rot_size = (uint64_t)st.st_size; /* someone truncated it */
        return;
    }
    char old[4100];
    snprintf(old, sizeof old, "%s.1", rot_path);
    int fd = -1;
    if (rename(rot_path, old) == 0)
        fd = open(rot_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        rot_max = 0; /* cannot rotate: keep writing where we are */
        fprintf(stderr, "log: cannot rotate %s; the log grows from here\n", rot_path);
        return;
    }
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    rot_size = 0;
}

int chp_log_rotate(const char *path, uint64_t max_bytes)
{
    struct stat e, f;
    if (!path || !max_bytes || fstat(2, &e) != 0 || !S_ISREG(e.st_mode) || stat(path, &f) != 0 ||
        e.st_dev != f.st_dev || e.st_ino != f.st_ino || strlen(path) >= sizeof rot_path)
        return 0;
    pthread_mutex_lock(&lock);
    snprintf(rot_path, sizeof rot_path, "%s", path);
    rot_max = max_bytes;
    rot_size = (uint64_t)e.st_size;
    maybe_rotate();
    pthread_mutex_unlock(&lock);
    return 1;
}
