/* log.h - leveled logging to stderr for the daemon and tools. Never pass a
 * secret: keys, passphrases and plaintext have no business in a log.
 * A line is "2026-12-02T14:03:07.250Z info  text": the date and time in
 * UTC (ISO 8601), the level padded to 5, the text.
 *
 * Every line is made safe to print whatever a peer put into it: control
 * characters (newline, ESC...), C1 controls, direction overrides and bytes
 * that are not UTF-8 are written as \xNN, so no peer can forge a line or
 * drive the terminal that shows the log. Lines are rate-limited per call
 * site (the format string): a burst of CHP_LOG_SITE_BURST, then
 * CHP_LOG_SITE_RATE a second, and CHP_LOG_RATE a second over all sites;
 * what is held back is counted and summed up in one line ("suppressed N
 * lines like ..."). */
#ifndef CHP_LOG_H
#define CHP_LOG_H

#include <stddef.h>
#include <stdint.h>

enum chp_log_level { CHP_LOG_ERROR = 0, CHP_LOG_WARN, CHP_LOG_INFO, CHP_LOG_DEBUG };

#define CHP_LOG_SITE_BURST 100  /* lines one call site may write at once */
#define CHP_LOG_SITE_RATE  10.0 /* then per second */
#define CHP_LOG_BURST      1000 /* all sites together */
#define CHP_LOG_RATE       100.0
#define CHP_LOG_LINE_MAX   1024 /* bytes of a message before escaping; longer is cut */

/* The one process-wide setting, chosen once at start-up from --log-level
 * (logging is the exception to "no global state": it is per process). */
void chp_log_set_level(int level);
/* "error", "warn", "info", "debug" -> level, or -1. */
int chp_log_parse_level(const char *name);
/* How many errors were logged so far (so a caller need not repeat one). */
unsigned chp_log_errors(void);
void chp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Rotation: when stderr is the regular file at path (chapar-tui starts
 * chapard with its stderr appended to DIR/chapard.log), the log owns that
 * file: once it holds max_bytes it is renamed to path.1 (replacing the
 * one before) and a new path is opened as stderr, so the log never takes
 * more than about 2 * max_bytes. Returns 1 when rotation is on, 0 when
 * stderr is something else (a terminal, a pipe, another file: whoever
 * opened it owns it). path is copied. */
int chp_log_rotate(const char *path, uint64_t max_bytes);

/* s (len bytes) escaped as described above into out (cap bytes, always
 * NUL-terminated, cut at cap); returns the length written. */
size_t chp_log_escape(const char *s, size_t len, char *out, size_t cap);

#define chp_err_log(...) chp_log(CHP_LOG_ERROR, __VA_ARGS__)
#define chp_warn(...)    chp_log(CHP_LOG_WARN, __VA_ARGS__)
#define chp_info(...)    chp_log(CHP_LOG_INFO, __VA_ARGS__)
#define chp_debug(...)   chp_log(CHP_LOG_DEBUG, __VA_ARGS__)

#endif
