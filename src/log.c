#include "config.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <syslog.h>

#include "dotstub/log.h"

/* Set by the main thread (reload), read by every worker. */
static _Atomic log_level_t max_level = LOG_LVL_INFO;
static int to_syslog;

void log_set_level(log_level_t level)
{
	max_level = level;
}

log_level_t log_get_level(void)
{
	return max_level;
}

void log_use_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	to_syslog = 1;
}

void log_msg(log_level_t level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[1024];
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (to_syslog)
		syslog(prio[level], "%s", line);
	else
		fprintf(stderr, "dotstub: %s: %s\n", names[level], line);
}
