/*
 * Stand-in for src/common/log.c in the fuzz harnesses: every message is still formatted (so a bad argument is
 * caught by the sanitizers) but printed only with VUFS_FUZZ_LOG=1, to keep libFuzzer's output readable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"

static int fuzz_log_on = -1;

void log_init(const char *prog, enum log_level level, bool use_syslog)
{
	(void)prog;
	(void)level;
	(void)use_syslog;
}

int log_parse_level(const char *name, enum log_level *out)
{
	(void)name;
	*out = LOG_LVL_ERROR;
	return 0;
}

bool log_enabled(enum log_level level)
{
	(void)level;
	return true; /* format debug messages too: their arguments are fuzzed as well */
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (fuzz_log_on < 0) {
		const char *e = getenv("VUFS_FUZZ_LOG");
		fuzz_log_on = e && *e == '1';
	}
	if (fuzz_log_on)
		dprintf(STDERR_FILENO, "vufs[%d]: %s\n", (int)level, buf);
}
