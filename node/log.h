/* log.h - leveled logging to stderr for the daemon and tools. Never pass a
 * secret: keys, passphrases and plaintext have no business in a log. */
#ifndef CHP_LOG_H
#define CHP_LOG_H

enum chp_log_level { CHP_LOG_ERROR = 0, CHP_LOG_WARN, CHP_LOG_INFO, CHP_LOG_DEBUG };

/* The one process-wide setting, chosen once at start-up from --log-level
 * (logging is the exception to "no global state": it is per process). */
void chp_log_set_level(int level);
/* "error", "warn", "info", "debug" -> level, or -1. */
int chp_log_parse_level(const char *name);
/* How many errors were logged so far (so a caller need not repeat one). */
unsigned chp_log_errors(void);
void chp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define chp_err_log(...) chp_log(CHP_LOG_ERROR, __VA_ARGS__)
#define chp_warn(...)    chp_log(CHP_LOG_WARN, __VA_ARGS__)
#define chp_info(...)    chp_log(CHP_LOG_INFO, __VA_ARGS__)
#define chp_debug(...)   chp_log(CHP_LOG_DEBUG, __VA_ARGS__)

#endif
