/* Vault configuration: defaults, parsing, errors with line numbers, and
 * the commented file `init` writes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "callvault/config.h"
#include "test.h"

static char dir[64];
static char path[128];

static void setup(void)
{
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/cvtest-config-XXXXXX");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(1);
		}
		snprintf(path, sizeof path, "%s/callvault.conf", dir);
	}
	unlink(path);
}

static void write_file(const char *text)
{
	FILE *f;

	setup();
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static void check_defaults(const struct config *c)
{
	CHECK_STR(c->timezone, "");
	CHECK_INT(c->retention_months, 6);
	CHECK_INT(c->bitrate, 16000);
	CHECK_INT(c->complexity, 3);
	CHECK_STR(c->country_code, "358");
	CHECK_STR(c->trunk_prefix, "0");
	CHECK_INT(c->grace_period_s, 600);
	CHECK_INT(c->sweep_interval_s, 60);
	CHECK_INT(c->cipher, CONFIG_CIPHER_AUTO);
}

static void defaults(void)
{
	struct config c;

	memset(&c, 0x55, sizeof c);
	config_defaults(&c);
	check_defaults(&c);
}

static void missing_file(void)
{
	struct config c;
	char err[256] = "";

	setup();
	memset(&c, 0x55, sizeof c);
	CHECK_INT(config_load(&c, path, err, sizeof err), 0);
	CHECK_STR(err, "");
	check_defaults(&c);
}

static void full_file(void)
{
	struct config c;
	char err[256] = "";

	write_file("; a comment\n"
		   "# another\n"
		   "\n"
		   "[vault]\n"
		   "timezone = Europe/Helsinki\n"
		   "retention_months=12\n"
		   "  bitrate = 24000   ; inline comment\n"
		   "complexity = 10\n"
		   "country_code = 46\n"
		   "trunk_prefix =\n"
		   "grace_period = 86400\n"
		   "sweep_interval = 1\n"
		   "cipher = xchacha20poly1305\n");
	config_defaults(&c);
	CHECK_INT(config_load(&c, path, err, sizeof err), 0);
	CHECK_STR(err, "");
	CHECK_STR(c.timezone, "Europe/Helsinki");
	CHECK_INT(c.retention_months, 12);
	CHECK_INT(c.bitrate, 24000);
	CHECK_INT(c.complexity, 10);
	CHECK_STR(c.country_code, "46");
	CHECK_STR(c.trunk_prefix, "");
	CHECK_INT(c.grace_period_s, 86400);
	CHECK_INT(c.sweep_interval_s, 1);
	CHECK_INT(c.cipher, CONFIG_CIPHER_XCHACHA20POLY1305);
}

/* Keys not in the file keep their defaults. */
static void partial_file(void)
{
	struct config c;
	char err[256];

	write_file("[vault]\ncomplexity = 0\n");
	config_defaults(&c);
	c.bitrate = 1; /* load starts from the defaults, not from c */
	CHECK_INT(config_load(&c, path, err, sizeof err), 0);
	CHECK_INT(c.complexity, 0);
	CHECK_INT(c.bitrate, 16000);
	CHECK_INT(c.retention_months, 6);

	write_file("");
	CHECK_INT(config_load(&c, path, err, sizeof err), 0);
	check_defaults(&c);
}

static void bad_values(void)
{
	static const struct {
		const char *line, *keyword;
	} cases[] = {
		{ "retention_months = 0", "retention_months" },
		{ "retention_months = 121", "retention_months" },
		{ "retention_months = six", "retention_months" },
		{ "retention_months = 6 months", "retention_months" },
		{ "retention_months =", "retention_months" },
		{ "retention_months = 6.5", "retention_months" },
		{ "retention_months = 99999999999999999999",
		  "retention_months" },
		{ "bitrate = 5999", "bitrate" },
		{ "bitrate = 128001", "bitrate" },
		{ "bitrate = 0x4000", "bitrate" },
		{ "bitrate = +16000", "bitrate" },
		{ "complexity = -1", "complexity" },
		{ "complexity = 11", "complexity" },
		{ "country_code = ", "country_code" },
		{ "country_code = 1234", "country_code" },
		{ "country_code = +358", "country_code" },
		{ "country_code = 035", "country_code" },
		{ "country_code = FI", "country_code" },
		{ "trunk_prefix = 000", "trunk_prefix" },
		{ "trunk_prefix = O", "trunk_prefix" },
		{ "grace_period = 9", "grace_period" },
		{ "grace_period = 86401", "grace_period" },
		{ "sweep_interval = 0", "sweep_interval" },
		{ "sweep_interval = 3601", "sweep_interval" },
		{ "cipher = aes", "cipher" },
		{ "cipher = AES256GCM", "cipher" },
		{ "cipher = ", "cipher" },
		{ "timezone = Europe/../../etc/passwd", "timezone" },
		{ "timezone = /etc/localtime", "timezone" },
		{ "timezone = Europe Helsinki", "timezone" },
		{ "timezone = Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaa",
		  "timezone" },
		{ "retention = 6", "unknown key \"retention\"" },
		{ "Bitrate = 16000", "unknown key" },
		{ "bitrate = 16000\nbitrate = 24000", "twice" },
	};
	char text[512], err[256], prefix[64];
	struct config c, before;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* The bad line is line 3; a repeated key fails on line 4. */
		int line = strchr(cases[i].line, '\n') ? 4 : 3;
		snprintf(text, sizeof text, "# vault\n[vault]\n%s\n",
			 cases[i].line);
		write_file(text);
		config_defaults(&c);
		c.bitrate = 12345;
		before = c;
		err[0] = '\0';
		CHECK_INT(config_load(&c, path, err, sizeof err), EINVAL);
		snprintf(prefix, sizeof prefix, "callvault.conf:%d: ", line);
		if (strncmp(err, prefix, strlen(prefix)) != 0 ||
		    !strstr(err, cases[i].keyword)) {
			fprintf(stderr, "  \"%s\": \"%s\"\n", cases[i].line,
				err);
			CHECK(0);
		}
		/* A refused file changes nothing. */
		CHECK(memcmp(&c, &before, sizeof c) == 0);
	}
}

static void bad_structure(void)
{
	static const struct {
		const char *text, *expected;
	} cases[] = {
		{ "bitrate = 16000\n",
		  "callvault.conf:1: \"bitrate\" outside the [vault] section" },
		{ "[vault]\n[audio]\nbitrate = 16000\n",
		  "callvault.conf:3: unknown section [audio]" },
		{ "[vault]\n\n\nbitrate 16000\n",
		  "callvault.conf:4: expected \"key = value\" or \"[vault]\"" },
		{ "[vault\nbitrate = 16000\n",
		  "callvault.conf:1: expected \"key = value\" or \"[vault]\"" },
		/* The first error wins, whichever kind it is. */
		{ "[vault]\njunk\nbitrate = 1\n",
		  "callvault.conf:2: expected \"key = value\" or \"[vault]\"" },
		{ "[vault]\nbitrate = 1\njunk\n",
		  "callvault.conf:2: bitrate must be an integer from 6000 to "
		  "128000" },
	};
	struct config c;
	char err[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_file(cases[i].text);
		CHECK_INT(config_load(&c, path, err, sizeof err), EINVAL);
		CHECK_STR(err, cases[i].expected);
	}
}

static void long_line(void)
{
	char text[1024], err[256];
	struct config c;

	snprintf(text, sizeof text, "[vault]\n# %0500d\ntimezone = %0300d\n",
		 0, 0);
	write_file(text);
	CHECK_INT(config_load(&c, path, err, sizeof err), EINVAL);
	CHECK_STR(err, "callvault.conf:3: line too long");
}

static void unreadable(void)
{
	struct config c;
	char err[256] = "";

	setup();
	/* A directory where the file should be: an error, not defaults. */
	CHECK_INT(mkdir(path, 0700), 0);
	CHECK(config_load(&c, path, err, sizeof err) != 0);
	CHECK(strstr(err, "callvault.conf") != NULL);
	rmdir(path);
}

static void write_then_load(void)
{
	struct config c, back;
	struct stat st;
	char err[256] = "";
	char buf[4096];
	size_t n;
	FILE *f;

	setup();
	config_defaults(&c);
	snprintf(c.timezone, sizeof c.timezone, "America/Argentina/Salta");
	c.retention_months = 120;
	c.bitrate = 6000;
	c.complexity = 0;
	snprintf(c.country_code, sizeof c.country_code, "1");
	snprintf(c.trunk_prefix, sizeof c.trunk_prefix, "%s", "");
	c.grace_period_s = 10;
	c.sweep_interval_s = 3600;
	c.cipher = CONFIG_CIPHER_AES256GCM;
	umask(022);
	CHECK_INT(config_write(&c, path), 0);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0644);
	memset(&back, 0x55, sizeof back);
	CHECK_INT(config_load(&back, path, err, sizeof err), 0);
	CHECK_STR(err, "");
	CHECK(memcmp(&c, &back, sizeof c) == 0);

	/* An operator reading the file sees every key and its value. */
	f = fopen(path, "r");
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	CHECK(strstr(buf, "\n[vault]\n") != NULL);
	CHECK(strstr(buf, "\ntimezone = America/Argentina/Salta\n") != NULL);
	CHECK(strstr(buf, "\nretention_months = 120\n") != NULL);
	CHECK(strstr(buf, "\nbitrate = 6000\n") != NULL);
	CHECK(strstr(buf, "\ncomplexity = 0\n") != NULL);
	CHECK(strstr(buf, "\ncountry_code = 1\n") != NULL);
	CHECK(strstr(buf, "\ntrunk_prefix =\n") != NULL);
	CHECK(strstr(buf, "\ngrace_period = 10\n") != NULL);
	CHECK(strstr(buf, "\nsweep_interval = 3600\n") != NULL);
	CHECK(strstr(buf, "\ncipher = aes256gcm\n") != NULL);
	CHECK(strstr(buf, "\n# ") != NULL);

	/* Never overwrites. */
	CHECK_INT(config_write(&c, path), EEXIST);
	memset(&back, 0, sizeof back);
	CHECK_INT(config_load(&back, path, err, sizeof err), 0);
	CHECK_INT(back.bitrate, 6000);
	unlink(path);
}

static void write_defaults(void)
{
	struct config c, back;
	char err[256] = "";

	setup();
	config_defaults(&c);
	CHECK_INT(config_write(&c, path), 0);
	CHECK_INT(config_load(&back, path, err, sizeof err), 0);
	CHECK_STR(err, "");
	check_defaults(&back);
	unlink(path);
	rmdir(dir);
}

/* log_level (SIGHUP can change it at run time), and errors that name the
 * file they come from. */
static void log_level_and_file_names(void)
{
	struct config c;
	char err[256] = "", other[160];
	FILE *f;

	write_file("[vault]\nlog_level = debug\n");
	CHECK_INT(config_load(&c, path, err, sizeof err), 0);
	CHECK_STR(config_log_level_name(c.log_level), "debug");
	write_file("[vault]\nlog_level = chatty\n");
	CHECK_INT(config_load(&c, path, err, sizeof err), EINVAL);
	CHECK(strncmp(err, "callvault.conf:2: log_level", 27) == 0);

	snprintf(other, sizeof other, "%s/site.conf", dir);
	f = fopen(other, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs("[vault]\nretention_months = 0\n", f);
	fclose(f);
	CHECK_INT(config_load(&c, other, err, sizeof err), EINVAL);
	CHECK(strncmp(err, "site.conf:2: ", 13) == 0);
	unlink(other);
}

TEST_MAIN("config", T(defaults), T(missing_file), T(full_file),
	  T(partial_file), T(bad_values), T(log_level_and_file_names),
	  T(bad_structure), T(long_line), T(unreadable), T(write_then_load),
	  T(write_defaults))
