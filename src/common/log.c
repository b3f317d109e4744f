#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

/* Written by log_init before threads start, then only read: no lock needed. */
static struct {
	const char *prog;
	enum log_level level;
	bool syslog;
} log_cfg = { "vufs", LOG_LVL_INFO, false };

void log_init(const char *prog, enum log_level level, bool use_syslog)
{
	log_cfg.prog = prog;
	log_cfg.level = level;
	log_cfg.syslog = use_syslog;
	if (use_syslog)
		openlog(prog, LOG_PID | LOG_NDELAY, LOG_DAEMON); /* connect now: /dev/log is gone after the sandbox */
}

int log_parse_level(const char *name, enum log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(name, names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (!strcasecmp(name, "off")) {
		*out = LOG_LVL_ERROR;
		return 0;
	}
	return -1;
}

bool log_enabled(enum log_level level)
{
	return level <= log_cfg.level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	char buf[1024];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_cfg.syslog)
		syslog(prio[level], "%s", buf);
	else
		dprintf(STDERR_FILENO, "%s: %s: %s\n", log_cfg.prog, tag[level], buf);
}
