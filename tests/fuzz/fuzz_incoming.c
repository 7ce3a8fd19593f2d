/* Names under incoming/: a script of tree operations (mkdir, create,
 * lookup, rename, unlink, rmdir, settle, readdir) on names taken from the
 * input, against a real incoming tree of a scratch vault made under /tmp
 * once per process. Everything is removed again after each input.
 *
 * Input: records separated by NUL bytes; a record's first byte is the
 * operation, the rest the name (so names may hold any byte but NUL).
 *
 * Properties: exactly the names incoming.h allows (1..255 bytes, no '/',
 * no control characters, not "." or "..") are accepted by mkdir, create
 * and rename; every name readdir lists is such a name and can be looked
 * up; after removing what readdir lists, the tree is empty. */
#include "fuzz.h"

#include <sodium.h>
#include <sys/stat.h>

#include "callvault/incoming.h"
#include "callvault/vault.h"

#define MAX_OPS 48
#define MAX_DEPTH 8

static char fuzz_dir[] = "/tmp/callvault-fuzz-incoming-XXXXXX";
static struct vault *vault;
static struct incoming *in;

static void teardown(void)
{
	char cmd[sizeof fuzz_dir + 16];

	incoming_free(in);
	vault_close(vault);
	/* The scratch vault: a fixed /tmp path of our own. */
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char vdir[sizeof fuzz_dir + 8], key[sizeof fuzz_dir + 8], err[256];

	(void)argc;
	(void)argv;
	fuzz_quiet();
	if (sodium_init() < 0 || !mkdtemp(fuzz_dir))
		abort();
	snprintf(vdir, sizeof vdir, "%s/v", fuzz_dir);
	snprintf(key, sizeof key, "%s/v.key", fuzz_dir);
	if (vault_create(vdir, key, NULL, err, sizeof err) != 0 ||
	    vault_open(vdir, key, 0, &vault, err, sizeof err) != 0 ||
	    incoming_new(vault, &in) != 0) {
		fprintf(stderr, "scratch vault: %s\n", err);
		abort();
	}
	atexit(teardown);
	return 0;
}

/* incoming.h's rule, written independently of incoming.c. */
static int allowed(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 255 || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/')
			return 0;
	return 1;
}

struct listing {
	char **names;
	int *is_dir;
	uint64_t *ids;
	size_t n;
};

static int collect(void *ctx, const char *name, const struct incoming_attr *a)
{
	struct listing *l = ctx;
	char **nn = realloc(l->names, (l->n + 1) * sizeof *nn);
	int *nd;
	uint64_t *ni;

	if (!nn)
		return ENOMEM;
	l->names = nn;
	nd = realloc(l->is_dir, (l->n + 1) * sizeof *nd);
	if (!nd)
		return ENOMEM;
	l->is_dir = nd;
	ni = realloc(l->ids, (l->n + 1) * sizeof *ni);
	if (!ni)
		return ENOMEM;
	l->ids = ni;
	if (!(l->names[l->n] = strdup(name)))
		return ENOMEM;
	l->is_dir[l->n] = a->is_dir;
	l->ids[l->n] = a->id;
	l->n++;
	return 0;
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->is_dir);
	free(l->ids);
	memset(l, 0, sizeof *l);
}

/* Lists dir, checks every name, and if `remove`, empties it. */
static void sweep(uint64_t dir, int remove)
{
	struct listing l = { 0 };
	struct incoming_attr a;

	FUZZ_ASSERT(incoming_readdir(in, dir, collect, &l) == 0);
	for (size_t i = 0; i < l.n; i++) {
		FUZZ_ASSERT(allowed(l.names[i]));
		FUZZ_ASSERT(incoming_lookup(in, dir, l.names[i], &a) == 0);
		FUZZ_ASSERT(a.id == l.ids[i] && a.is_dir == l.is_dir[i]);
		if (i > 0)
			FUZZ_ASSERT(strcmp(l.names[i - 1], l.names[i]) < 0);
		if (!remove)
			continue;
		if (l.is_dir[i]) {
			sweep(l.ids[i], 1);
			FUZZ_ASSERT(incoming_rmdir(in, dir, l.names[i]) == 0);
		} else {
			FUZZ_ASSERT(incoming_unlink(in, dir, l.names[i]) == 0);
		}
	}
	listing_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t dirs[MAX_DEPTH] = { INCOMING_ROOT }, committed;
	size_t depth = 1, off = 0, ops = 0;
	const char *prev = "";
	struct incoming_attr a;
	struct incoming_handle *h;
	struct listing l = { 0 };
	char *buf;
	int rc;

	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	while (off < size && ops++ < MAX_OPS) {
		char *rec = buf + off, *name = rec + 1;
		uint64_t dir = dirs[depth - 1];
		unsigned op = (unsigned char)rec[0];

		off += strlen(rec) + 1;
		if (op == 0) /* an empty record */
			continue;
		switch (op % 10) {
		case 0:
			rc = incoming_mkdir(in, dir, name, 1000, 1000, &a);
			FUZZ_ASSERT(allowed(name) ? rc != EINVAL : rc == EINVAL);
			if (rc == 0 && depth < MAX_DEPTH && op & 0x10)
				dirs[depth++] = a.id;
			break;
		case 1:
			rc = incoming_create(in, dir, name, 1000, 1000, &a, &h);
			FUZZ_ASSERT(allowed(name) ? rc != EINVAL : rc == EINVAL);
			if (rc == 0) {
				FUZZ_ASSERT(!a.is_dir && a.size == 0);
				(void)incoming_release(in, h, op & 0x10 ? 1 : 0,
						       &committed);
				FUZZ_ASSERT(committed == 0);
			} else {
				FUZZ_ASSERT(h == NULL);
			}
			break;
		case 2:
			if (incoming_lookup(in, dir, name, &a) == 0)
				FUZZ_ASSERT(allowed(name));
			break;
		case 3:
			(void)incoming_unlink(in, dir, name);
			break;
		case 4:
			(void)incoming_rmdir(in, dir, name);
			break;
		case 5:
			/* prev -> name, maybe into the parent directory. */
			rc = incoming_rename(in, dir, prev,
					     op & 0x10 && depth > 1 ?
						     dirs[depth - 2] : dir,
					     name, op & 0x20 ? 1 : 0);
			if (!allowed(name))
				FUZZ_ASSERT(rc == EINVAL);
			break;
		case 6:
			(void)incoming_settle(in, dir, name, &committed);
			FUZZ_ASSERT(committed == 0);
			break;
		case 7:
			if (depth > 1)
				depth--;
			break;
		case 8:
			sweep(dir, 0);
			break;
		case 9:
			if (incoming_lookup(in, dir, name, &a) == 0 &&
			    a.is_dir && depth < MAX_DEPTH)
				dirs[depth++] = a.id;
			break;
		}
		prev = name;
	}

	/* Leave nothing for the next input. A directory renamed into
	 * itself or lost would show here. */
	sweep(INCOMING_ROOT, 1);
	FUZZ_ASSERT(incoming_readdir(in, INCOMING_ROOT, collect, &l) == 0);
	FUZZ_ASSERT(l.n == 0);
	listing_free(&l);
	free(buf);
	return 0;
}
