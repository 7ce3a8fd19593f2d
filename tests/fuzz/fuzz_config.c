/* Configuration parser: config_load() on any bytes, read through a memfd
 * (/proc/self/fd/N, since config_load takes a path).
 *
 * Property: a configuration that loads, written back with config_write()
 * (to a private directory under /tmp) and loaded again, is the same. */
#include "fuzz.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "callvault/config.h"

static char fuzz_dir[] = "/tmp/callvault-fuzz-config-XXXXXX";

static void remove_dir(void)
{
	rmdir(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	if (!mkdtemp(fuzz_dir))
		abort();
	atexit(remove_dir);
	return 0;
}

static int same(const struct config *a, const struct config *b)
{
	return strcmp(a->timezone, b->timezone) == 0 &&
	       a->retention_months == b->retention_months &&
	       a->bitrate == b->bitrate && a->complexity == b->complexity &&
	       strcmp(a->country_code, b->country_code) == 0 &&
	       strcmp(a->trunk_prefix, b->trunk_prefix) == 0 &&
	       a->grace_period_s == b->grace_period_s &&
	       a->sweep_interval_s == b->sweep_interval_s &&
	       a->log_level == b->log_level;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg, again, def;
	char path[64], out[sizeof fuzz_dir + 16], err[256];
	int fd, rc;

	fd = fuzz_memfd(data, size);
	if (fd < 0)
		return 0;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	err[0] = '\0';
	rc = config_load(&cfg, path, err, sizeof err);
	close(fd);
	if (rc != 0) {
		FUZZ_ASSERT(rc == EINVAL || rc == ENOMEM);
		FUZZ_ASSERT(err[0] != '\0');
		return 0;
	}
	/* Writing costs an fsync: only for configurations that say
	 * something. */
	config_defaults(&def);
	if (same(&cfg, &def))
		return 0;
	snprintf(out, sizeof out, "%s/callvault.conf", fuzz_dir);
	FUZZ_ASSERT(config_write(&cfg, out) == 0);
	rc = config_load(&again, out, err, sizeof err);
	unlink(out);
	if (rc != 0)
		fprintf(stderr, "reload: %s\n", err);
	FUZZ_ASSERT(rc == 0);
	FUZZ_ASSERT(same(&cfg, &again));
	return 0;
}
