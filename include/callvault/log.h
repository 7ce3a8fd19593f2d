/* One logger for the whole program: stderr in the foreground (and for CLI
 * commands), syslog when the daemon runs in the background.
 *
 * log_warn() appends ": strerror(errno)"; log_warnx() does not (OpenSMTPD's
 * convention). Messages never contain keys, full phone numbers or audio. */
#ifndef CALLVAULT_LOG_H
#define CALLVAULT_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* `ident` prefixes every line ("callvault"). `to_syslog` selects syslog
 * instead of stderr. Messages above `max_level` are dropped. Safe to call
 * again (e.g. after daemonizing). */
void log_init(const char *ident, int to_syslog, enum log_level max_level);
void log_set_level(enum log_level max_level);

void log_msg(enum log_level level, int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, int with_errno, const char *fmt,
	      va_list ap) __attribute__((format(printf, 3, 0)));

#define log_err(...) log_msg(LOG_LEVEL_ERR, 0, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, 1, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LEVEL_WARN, 0, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)

#endif
