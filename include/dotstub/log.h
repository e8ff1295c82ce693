/* log: one line per event, to stderr (foreground) or syslog (daemon).
 * Lines name the peer and the cause; the level filters what is written. */
#ifndef DOTSTUB_LOG_H
#define DOTSTUB_LOG_H

typedef enum {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
} log_level_t;

/* Messages above `level` are discarded. Default: LOG_LVL_INFO, stderr. */
void log_set_level(log_level_t level);
log_level_t log_get_level(void);

/* Send further lines to syslog (daemon mode) instead of stderr. */
void log_use_syslog(const char *ident);

void log_msg(log_level_t level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
/* Debug lines are often on the per-query path: test the level first so the
 * arguments are not formatted for nothing. */
#define log_debug(...) do { \
		if (log_get_level() >= LOG_LVL_DEBUG) \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
