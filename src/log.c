/* One logger: stderr or syslog. */
#include "callvault/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const char *log_ident = "callvault";
static int log_to_syslog;
/* Atomic: SIGHUP changes it while every thread logs. */
static _Atomic int log_max = LOG_LEVEL_INFO;

void log_init(const char *ident, int to_syslog, enum log_level max_level)
{
	log_ident = ident;
	log_to_syslog = to_syslog;
	atomic_store_explicit(&log_max, (int)max_level,
			      memory_order_relaxed);
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level max_level)
{
	atomic_store_explicit(&log_max, (int)max_level,
			      memory_order_relaxed);
}

void log_vmsg(enum log_level level, int with_errno, const char *fmt,
	      va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	int saved = errno;
	char msg[1024];
	char ebuf[128];

	if ((int)level > atomic_load_explicit(&log_max, memory_order_relaxed))
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (with_errno) {
		size_t len = strlen(msg);
		const char *es = strerror_r(saved, ebuf, sizeof ebuf);
		snprintf(msg + len, sizeof msg - len, ": %s", es);
	}
	if (log_to_syslog)
		syslog(prio[level], "%s", msg);
	else
		fprintf(stderr, "%s: %s: %s\n", log_ident, tag[level], msg);
	errno = saved;
}

void log_msg(enum log_level level, int with_errno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, with_errno, fmt, ap);
	va_end(ap);
}
