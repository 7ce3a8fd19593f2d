/* VAULT/callvault.conf: one [vault] section of key = value lines, read
 * with inih. Every key is checked against its range: a typo or a value out
 * of range is an error naming the line, never a silent default. */
#include "callvault/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "callvault/log.h"


enum config_key {
	KEY_TIMEZONE,
	KEY_RETENTION_MONTHS,
	KEY_BITRATE,
	KEY_COMPLEXITY,
	KEY_COUNTRY_CODE,
	KEY_TRUNK_PREFIX,
	KEY_GRACE_PERIOD,
	KEY_SWEEP_INTERVAL,
	KEY_LOG_LEVEL,
	KEY_CIPHER,
	KEY_COUNT
};

/* Names and ranges of the integer keys; the string keys have min = max =
 * 0 and are checked by hand. */
static const struct {
	const char *name;
	long min, max;
} config_keys[KEY_COUNT] = {
	[KEY_TIMEZONE] = { "timezone", 0, 0 },
	[KEY_RETENTION_MONTHS] = { "retention_months", 1, 120 },
	[KEY_BITRATE] = { "bitrate", 6000, 128000 },
	[KEY_COMPLEXITY] = { "complexity", 0, 10 },
	[KEY_COUNTRY_CODE] = { "country_code", 0, 0 },
	[KEY_TRUNK_PREFIX] = { "trunk_prefix", 0, 0 },
	[KEY_GRACE_PERIOD] = { "grace_period", 10, 86400 },
	[KEY_SWEEP_INTERVAL] = { "sweep_interval", 1, 3600 },
	[KEY_LOG_LEVEL] = { "log_level", 0, 0 },
	[KEY_CIPHER] = { "cipher", 0, 0 },
};

/* Indexed by enum log_level. */
static const char *const log_level_names[] = {
	[LOG_LEVEL_ERR] = "error",
	[LOG_LEVEL_WARN] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

const char *config_log_level_name(int level)
{
	if (level < 0 || level > LOG_LEVEL_DEBUG)
		return "?";
	return log_level_names[level];
}

/* Indexed by enum config_cipher. */
static const char *const cipher_names[] = {
	[CONFIG_CIPHER_AUTO] = "auto",
	[CONFIG_CIPHER_XCHACHA20POLY1305] = "xchacha20poly1305",
	[CONFIG_CIPHER_AES256GCM] = "aes256gcm",
};

const char *config_cipher_name(int cipher)
{
	if (cipher < CONFIG_CIPHER_AUTO || cipher > CONFIG_CIPHER_AES256GCM)
		return "?";
	return cipher_names[cipher];
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->timezone[0] = '\0';
	cfg->retention_months = 6;
	cfg->bitrate = 16000;
	/* 3: 0.28x the CPU of opusenc at 8 kHz (5: 0.37x), about 0.15 dB
	 * of spectral distance worse than 5 on speech (docs/architecture.md). */
	cfg->complexity = 3;
	snprintf(cfg->country_code, sizeof cfg->country_code, "358");
	snprintf(cfg->trunk_prefix, sizeof cfg->trunk_prefix, "0");
	cfg->grace_period_s = 600;
	cfg->sweep_interval_s = 60;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->cipher = CONFIG_CIPHER_AUTO;
}

/* inih does not tell its handler the line number, so the reader counts
 * lines: inih reads one line, then handles it. */
struct config_parse {
	struct config *cfg;
	FILE *f;
	int line;          /* lines read so far */
	int err_line;      /* first error the handler found, 0 if none */
	char reason[160];
	unsigned seen;     /* bit per key: a key given twice is an error */
};

static char *config_reader(char *str, int num, void *stream)
{
	struct config_parse *p = stream;
	size_t n;
	int ch;

	if (!fgets(str, num, p->f))
		return NULL;
	p->line++;
	n = strlen(str);
	if (n > 0 && str[n - 1] != '\n' && !feof(p->f)) {
		/* Longer than inih's line buffer: inih would handle the rest
		 * as a line of its own. Drop it; a long comment is fine, a
		 * long setting is reported. */
		const char *t = str + strspn(str, " \t");
		while ((ch = fgetc(p->f)) != EOF && ch != '\n')
			;
		if (*t == '#' || *t == ';')
			return str;
		if (!p->err_line) {
			p->err_line = p->line;
			snprintf(p->reason, sizeof p->reason, "line too long");
		}
		str[0] = '\n';
		str[1] = '\0';
	}
	/* inih takes an indented line for the continuation of the value
	 * above; an operator indenting a key means the key. */
	n = strspn(str, " \t");
	if (n > 0)
		memmove(str, str + n, strlen(str + n) + 1);
	return str;
}

static void parse_fail(struct config_parse *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void parse_fail(struct config_parse *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err_line)
		return;
	p->err_line = p->line;
	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof p->reason, fmt, ap);
	va_end(ap);
}

/* A decimal integer in [min, max], nothing else on the line. */
static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s == '\0' || *s == '+' || *s == ' ')
		return EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return EINVAL;
	*out = v;
	return 0;
}

/* A value that is one of names[0..n): *out = its index, 1; else the
 * error `expect`, 0 (inih's handler convention). */
static int parse_named(struct config_parse *p, const char *value,
		       const char *const *names, int n, int *out,
		       const char *expect)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(value, names[i]) == 0) {
			*out = i;
			return 1;
		}
	}
	parse_fail(p, "%s", expect);
	return 0;
}

static int only_digits(const char *s)
{
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* A tzdata name: "Europe/Helsinki", "UTC", "America/Argentina/Salta". The
 * clock module checks that tzdata knows it; here only its shape. */
static int timezone_plausible(const char *s)
{
	if (strstr(s, "..") || s[0] == '/')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '/' || *s == '_' ||
		      *s == '-' || *s == '+'))
			return 0;
	return 1;
}

static int config_handler(void *user, const char *section, const char *name,
			  const char *value)
{
	struct config_parse *p = user;
	struct config *cfg = p->cfg;
	int k;
	long v = 0;

	if (strcmp(section, "vault") != 0) {
		if (section[0])
			parse_fail(p, "unknown section [%.40s]", section);
		else
			parse_fail(p, "\"%.40s\" outside the [vault] section",
				   name);
		return 0;
	}
	for (k = 0; k < KEY_COUNT; k++)
		if (strcmp(name, config_keys[k].name) == 0)
			break;
	if (k == KEY_COUNT) {
		parse_fail(p, "unknown key \"%.40s\"", name);
		return 0;
	}
	if (p->seen & 1u << k) {
		parse_fail(p, "%s is set twice", name);
		return 0;
	}
	p->seen |= 1u << k;

	switch (k) {
	case KEY_TIMEZONE:
		if (strlen(value) >= sizeof cfg->timezone ||
		    !timezone_plausible(value))
			goto bad;
		snprintf(cfg->timezone, sizeof cfg->timezone, "%s", value);
		return 1;
	case KEY_COUNTRY_CODE:
		/* Country codes have 1..3 digits and none starts with 0. */
		if (strlen(value) < 1 || strlen(value) > 3 ||
		    !only_digits(value) || value[0] == '0') {
			parse_fail(p, "country_code must be 1 to 3 digits, "
				   "not starting with 0");
			return 0;
		}
		snprintf(cfg->country_code, sizeof cfg->country_code, "%s",
			 value);
		return 1;
	case KEY_TRUNK_PREFIX:
		if (strlen(value) > 2 || !only_digits(value)) {
			parse_fail(p, "trunk_prefix must be empty or 1 to 2 "
				   "digits");
			return 0;
		}
		snprintf(cfg->trunk_prefix, sizeof cfg->trunk_prefix, "%s",
			 value);
		return 1;
	case KEY_LOG_LEVEL:
		return parse_named(p, value, log_level_names,
				   LOG_LEVEL_DEBUG + 1, &cfg->log_level,
				   "log_level must be error, warning, info or "
				   "debug");
	case KEY_CIPHER:
		return parse_named(p, value, cipher_names,
				   CONFIG_CIPHER_AES256GCM + 1, &cfg->cipher,
				   "cipher must be auto, aes256gcm or "
				   "xchacha20poly1305");
	}

	if (parse_long(value, config_keys[k].min, config_keys[k].max, &v)) {
		parse_fail(p, "%s must be an integer from %ld to %ld", name,
			   config_keys[k].min, config_keys[k].max);
		return 0;
	}
	switch (k) {
	case KEY_RETENTION_MONTHS:
		cfg->retention_months = (int)v;
		break;
	case KEY_BITRATE:
		cfg->bitrate = (int)v;
		break;
	case KEY_COMPLEXITY:
		cfg->complexity = (int)v;
		break;
	case KEY_GRACE_PERIOD:
		cfg->grace_period_s = (int)v;
		break;
	case KEY_SWEEP_INTERVAL:
		cfg->sweep_interval_s = (int)v;
		break;
	}
	return 1;
bad:
	parse_fail(p, "bad value for %s", name);
	return 0;
}

int config_load(struct config *cfg, const char *path, char *err,
		size_t errlen)
{
	struct config_parse p;
	/* Errors name the file as an operator knows it: callvault.conf of
	 * the vault, or the file given with --config. */
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	struct config c;
	int rc = 0, line;

	config_defaults(&c);
	memset(&p, 0, sizeof p);
	p.cfg = &c;
	p.f = fopen(path, "re");
	if (!p.f) {
		if (errno == ENOENT) {
			*cfg = c;
			return 0;
		}
		rc = errno;
		snprintf(err, errlen, "%s: %s", name, strerror(rc));
		return rc;
	}
	line = ini_parse_stream(config_reader, &p, config_handler, &p);
	if (ferror(p.f)) {
		rc = EIO;
		snprintf(err, errlen, "%s: read error", name);
		goto out;
	}
	if (line < 0) {
		rc = ENOMEM;
		snprintf(err, errlen, "%s: out of memory", name);
		goto out;
	}
	/* inih returns the first line it or the handler refused. */
	if (p.err_line && (line == 0 || p.err_line <= line)) {
		snprintf(err, errlen, "%s:%d: %s", name, p.err_line,
			 p.reason);
		rc = EINVAL;
	} else if (line > 0) {
		snprintf(err, errlen,
			 "%s:%d: expected \"key = value\" or \"[vault]\"",
			 name, line);
		rc = EINVAL;
	}
	if (rc == 0)
		*cfg = c;
out:
	fclose(p.f);
	return rc;
}

int config_write(const struct config *cfg, const char *path)
{
	char *text = NULL;
	size_t len = 0, off = 0;
	FILE *m;
	int fd = -1, rc = 0;

	m = open_memstream(&text, &len);
	if (!m)
		return errno;
	fprintf(m,
		"# callvault vault configuration. '#' starts a comment.\n"
		"# Every key is shown with its current value; an unknown key\n"
		"# or a value out of range stops the vault from opening.\n"
		"# Changes take effect at the next mount (log_level also on\n"
		"# SIGHUP).\n"
		"\n"
		"[vault]\n"
		"# Time zone of day directories and HHMMSS in names, as a\n"
		"# tzdata name (Europe/Helsinki). Empty: the system's zone.\n"
		"timezone =%s%s\n"
		"\n"
		"# Calendar months a call is kept after its start (1..120).\n"
		"retention_months = %d\n"
		"\n"
		"# Opus bit rate per channel in bits/s (6000..128000).\n"
		"bitrate = %d\n"
		"\n"
		"# Opus encoder complexity (0..10): higher is slower and\n"
		"# a little better.\n"
		"complexity = %d\n"
		"\n"
		"# Used to turn national numbers (040 123 45xx) into E.164\n"
		"# (+358 40 123 45xx): the country calling code (1..3 digits)\n"
		"# and the national trunk prefix (0..2 digits, may be empty).\n"
		"country_code = %s\n"
		"trunk_prefix =%s%s\n"
		"\n"
		"# Seconds an audio file in incoming/ waits for its metadata\n"
		"# before it is committed without it (10..86400).\n"
		"grace_period = %d\n"
		"\n"
		"# Seconds between retention sweeps (1..3600).\n"
		"sweep_interval = %d\n"
		"\n"
		"# What the mounted daemon logs: error, warning, info or\n"
		"# debug. The one key a running mount re-reads on SIGHUP\n"
		"# (systemctl reload).\n"
		"log_level = %s\n"
		"\n"
		"# Cipher of new recordings: aes256gcm (needs AES-NI, 1.5x\n"
		"# faster), xchacha20poly1305 (any CPU), or auto: aes256gcm\n"
		"# where this CPU has AES-NI. A recording keeps its cipher;\n"
		"# reading aes256gcm ones needs a CPU with AES-NI too.\n"
		"cipher = %s\n",
		/* no trailing blank after an empty value */
		cfg->timezone[0] ? " " : "", cfg->timezone,
		cfg->retention_months, cfg->bitrate, cfg->complexity,
		cfg->country_code, cfg->trunk_prefix[0] ? " " : "",
		cfg->trunk_prefix, cfg->grace_period_s, cfg->sweep_interval_s,
		config_log_level_name(cfg->log_level),
		config_cipher_name(cfg->cipher));
	if (fclose(m) != 0) {
		rc = errno ? errno : ENOMEM;
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd == -1) {
		rc = errno;
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = errno;
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		rc = errno;
		goto out;
	}
out:
	if (fd != -1 && close(fd) != 0 && rc == 0)
		rc = errno;
	if (rc && fd != -1)
		unlink(path);
	free(text);
	return rc;
}
