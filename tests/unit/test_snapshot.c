/* The encrypted catalog snapshot: a round trip gives back databases that
 * open with their content; an unchanged vault leaves the file untouched;
 * any flipped bit, truncation, extension or chunk from another snapshot
 * is EBADMSG; another master key is EACCES; restoring never overwrites. */
#include "callvault/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "callvault/catalog.h"
#include "callvault/fdio.h"
#include "callvault/keys.h"

/* Three 64 KiB chunks and a bit: enough to cut, swap and reorder. */
#define BIG_CONFIG (3 * 65536 + 1000)

struct fixture {
	char dir[64];      /* the vault directory */
	char out[80];      /* where parts are restored */
	char snap[128];    /* the snapshot file */
	char path[128];
	struct keyring *ring, *other;
	unsigned char check[KEYS_CHECK_LEN];
};

static void path_in(const char *dir, const char *name, char *out,
		    size_t len)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_INT(fdio_pwrite_all(fd, buf, len, 0), 0);
	close(fd);
}

static unsigned char *read_file(const char *path, size_t *len)
{
	struct stat sb;
	unsigned char *b;
	int fd = open(path, O_RDONLY);

	*len = 0;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	b = malloc((size_t)sb.st_size + 1);
	if (b && fdio_pread_all(fd, b, (size_t)sb.st_size, 0) == 0)
		*len = (size_t)sb.st_size;
	close(fd);
	return b;
}

static struct keyring *ring_of(unsigned char seed)
{
	unsigned char master[KEYS_KEY_LEN];
	struct keyring *r = NULL;

	memset(master, seed, sizeof master);
	CHECK_INT(keys_ring_new(master, &r), 0);
	return r;
}

/* A vault directory with catalog.db (team "t1"), keystore.db (a note on
 * call KS_MARK) and a configuration of `config_len` bytes. */
#define KS_MARK 77
static void setup(struct fixture *f, size_t config_len)
{
	struct catalog *c = NULL;
	char p[128];
	char *conf;

	memset(f, 0, sizeof *f);
	CHECK_INT(keys_init(), 0);
	snprintf(f->dir, sizeof f->dir, "/tmp/test_snapshot.XXXXXX");
	if (!mkdtemp(f->dir)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(f->out, sizeof f->out, "%s/restored", f->dir);
	CHECK_INT(mkdir(f->out, 0700), 0);
	snprintf(f->snap, sizeof f->snap, "%s/x.snapshot", f->dir);
	f->ring = ring_of(1);
	f->other = ring_of(2);
	keys_check_value(f->ring, f->check);

	path_in(f->dir, "catalog.db", p, sizeof p);
	CHECK_INT(catalog_create(p, f->ring), 0);
	CHECK_INT(catalog_open(p, 0, &c), 0);
	if (c) {
		CHECK_INT(catalog_team_add(c, "t1"), 0);
		/* Only the key store changes. */
		CHECK_INT(catalog_note_add(c, KS_MARK, 1, "admin", "ks"), 0);
	}
	catalog_close(c);

	conf = malloc(config_len + 1);
	for (size_t i = 0; i < config_len; i++)
		conf[i] = (char)('a' + (i * 7 + i / 13) % 26);
	path_in(f->dir, "callvault.conf", p, sizeof p);
	write_file(p, conf, config_len);
	free(conf);
}

static void rm_rf(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "  cannot remove %s\n", dir);
}

static void teardown(struct fixture *f)
{
	keys_ring_free(f->ring);
	keys_ring_free(f->other);
	rm_rf(f->dir);
}

static int count_note(void *ctx, int64_t at_ms, const char *login,
		      const char *text)
{
	(void)at_ms;
	(void)login;
	(void)text;
	(*(int *)ctx)++;
	return 0;
}

/* Notes of call `num` in the key store beside catalog `db`; -1 if it
 * does not open. */
static int notes_of(const char *db, uint64_t num)
{
	struct catalog *c = NULL;
	int n = 0;

	if (catalog_open(db, CATALOG_READONLY, &c) != 0)
		return -1;
	if (catalog_notes_of(c, num, count_note, &n) != 0)
		n = -1;
	catalog_close(c);
	return n;
}

static int has_team(const char *db, const char *team)
{
	struct catalog *c = NULL;
	int found;

	if (catalog_open(db, CATALOG_READONLY, &c) != 0)
		return -1;
	found = catalog_team_exists(c, team) == 0;
	catalog_close(c);
	return found;
}

static void round_trip(void)
{
	struct fixture f;
	struct snapshot *s = NULL;
	const unsigned char *part;
	unsigned char *conf;
	size_t len, conf_len;
	char p[128];
	int changed = -1;

	setup(&f, 100);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, &changed), 0);
	CHECK_INT(changed, 1);
	CHECK_INT(snapshot_open(f.snap, f.ring, &s), 0);
	if (!s)
		goto out;
	CHECK_INT(snapshot_generation(s), 1);
	CHECK(snapshot_created_ms(s) > 0);
	part = snapshot_part(s, SNAPSHOT_CATALOG, &len);
	CHECK(part != NULL && len > 0 && len % 512 == 0);
	CHECK(part && memcmp(part, "SQLite format 3", 15) == 0);
	CHECK(snapshot_part(s, SNAPSHOT_KEYSTORE, &len) != NULL);
	path_in(f.dir, "callvault.conf", p, sizeof p);
	conf = read_file(p, &conf_len);
	part = snapshot_part(s, SNAPSHOT_CONFIG, &len);
	CHECK_INT(len, conf_len);
	CHECK(part && conf && memcmp(part, conf, len) == 0);
	free(conf);

	/* Restored, the databases open and hold what was committed. */
	CHECK_INT(snapshot_write_parts(s, f.out), 0);
	path_in(f.out, "catalog.db", p, sizeof p);
	CHECK_INT(has_team(p, "t1"), 1);
	CHECK_INT(notes_of(p, KS_MARK), 1);
	path_in(f.out, "callvault.conf", p, sizeof p);
	conf = read_file(p, &conf_len);
	CHECK_INT(conf_len, 100);
	free(conf);
	/* Nothing is ever written over. */
	CHECK_INT(snapshot_write_parts(s, f.out), EEXIST);
	CHECK_INT(snapshot_read(f.snap, f.ring, f.out), EEXIST);
out:
	snapshot_close(s);
	teardown(&f);
}

/* A stale WAL beside a restored database would be replayed onto it. */
static void restore_refuses_stale_wal(void)
{
	struct fixture f;
	char p[128];

	setup(&f, 10);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, NULL), 0);
	path_in(f.out, "keystore.db-wal", p, sizeof p);
	write_file(p, "x", 1);
	CHECK_INT(snapshot_read(f.snap, f.ring, f.out), EEXIST);
	path_in(f.out, "catalog.db", p, sizeof p);
	CHECK(access(p, F_OK) != 0);
	teardown(&f);
}

static void missing_parts_are_absent(void)
{
	struct fixture f;
	struct snapshot *s = NULL;
	size_t len = 1;
	char p[128];

	setup(&f, 10);
	path_in(f.dir, "keystore.db", p, sizeof p);
	unlink(p);
	path_in(f.dir, "callvault.conf", p, sizeof p);
	unlink(p);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, NULL), 0);
	CHECK_INT(snapshot_open(f.snap, f.ring, &s), 0);
	if (s) {
		CHECK(snapshot_part(s, SNAPSHOT_KEYSTORE, &len) == NULL);
		CHECK_INT(len, 0);
		CHECK(snapshot_part(s, SNAPSHOT_CONFIG, &len) == NULL);
		CHECK(snapshot_part(s, SNAPSHOT_CATALOG, &len) != NULL);
		CHECK_INT(snapshot_write_parts(s, f.out), 0);
	}
	path_in(f.out, "keystore.db", p, sizeof p);
	CHECK(access(p, F_OK) != 0);
	/* The keystore is not created by taking a snapshot either. */
	path_in(f.dir, "keystore.db", p, sizeof p);
	CHECK(access(p, F_OK) != 0);
	snapshot_close(s);
	/* No catalog, no snapshot. */
	path_in(f.dir, "catalog.db", p, sizeof p);
	unlink(p);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, NULL), ENOENT);
	teardown(&f);
}

/* What incremental backup tools compare stays the same while nothing
 * changes, and the file is replaced when something does. */
static void unchanged_vault_keeps_the_file(void)
{
	struct fixture f;
	struct catalog *c = NULL;
	struct snapshot *s = NULL;
	struct stat a, b;
	char p[128];
	int changed = -1;

	setup(&f, 100);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, &changed), 0);
	CHECK_INT(stat(f.snap, &a), 0);
	usleep(20000);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, &changed), 0);
	CHECK_INT(changed, 0);
	CHECK_INT(stat(f.snap, &b), 0);
	CHECK_INT(a.st_ino, b.st_ino);
	CHECK_INT(a.st_size, b.st_size);
	CHECK_INT(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
	CHECK_INT(a.st_ctim.tv_nsec, b.st_ctim.tv_nsec);

	path_in(f.dir, "catalog.db", p, sizeof p);
	CHECK_INT(catalog_open(p, 0, &c), 0);
	if (c)
		CHECK_INT(catalog_team_add(c, "t2"), 0);
	catalog_close(c);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, &changed), 0);
	CHECK_INT(changed, 1);
	CHECK_INT(stat(f.snap, &b), 0);
	CHECK(a.st_ino != b.st_ino);
	CHECK_INT(snapshot_open(f.snap, f.ring, &s), 0);
	if (s)
		CHECK_INT(snapshot_generation(s), 2);
	snapshot_close(s);
	/* A change of the key store alone counts too. */
	path_in(f.dir, "catalog.db", p, sizeof p);
	CHECK_INT(catalog_open(p, 0, &c), 0);
	if (c)
		CHECK_INT(catalog_note_add(c, KS_MARK + 1, 2, "admin", "ks2"),
			  0);
	catalog_close(c);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, &changed), 0);
	CHECK_INT(changed, 1);
	teardown(&f);
}

/* A writer in the middle of a transaction neither blocks the snapshot nor
 * shows in it. */
static void open_writer_is_not_seen(void)
{
	struct fixture f;
	struct catalog *c = NULL;
	char p[128];

	setup(&f, 10);
	path_in(f.dir, "catalog.db", p, sizeof p);
	CHECK_INT(catalog_open(p, 0, &c), 0);
	if (!c)
		goto out;
	CHECK_INT(catalog_begin(c), 0);
	CHECK_INT(catalog_team_add(c, "uncommitted"), 0);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, NULL), 0);
	catalog_rollback(c);
	catalog_close(c);
	CHECK_INT(snapshot_read(f.snap, f.ring, f.out), 0);
	path_in(f.out, "catalog.db", p, sizeof p);
	CHECK_INT(has_team(p, "t1"), 1);
	CHECK_INT(has_team(p, "uncommitted"), 0);
out:
	teardown(&f);
}

static int open_err(const struct fixture *f, const struct keyring *ring)
{
	struct snapshot *s = NULL;
	int err = snapshot_open(f->snap, ring, &s);

	snapshot_close(s);
	if (err == 0 && s == NULL)
		return -1;
	return err;
}

static void flip(const char *path, size_t off)
{
	unsigned char b;
	int fd = open(path, O_RDWR);

	CHECK(fd >= 0);
	CHECK_INT(fdio_pread_all(fd, &b, 1, off), 0);
	b ^= 0x01;
	CHECK_INT(fdio_pwrite_all(fd, &b, 1, off), 0);
	close(fd);
}

static void every_flipped_bit_is_detected(void)
{
	struct fixture f;
	unsigned char *orig;
	size_t len, offs[8];
	struct stat sb;

	setup(&f, BIG_CONFIG);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, NULL), 0);
	CHECK_INT(open_err(&f, f.ring), 0);
	orig = read_file(f.snap, &len);
	CHECK(len > 4 * 65536);
	/* Header fields past magic and version (generation, time, size,
	 * file id, content hash), a nonce, ciphertext of the first and of
	 * a middle chunk, and the very last tag byte. */
	offs[0] = 16;
	offs[1] = 24;
	offs[2] = 40;
	offs[3] = 100;
	offs[4] = 128;
	offs[5] = 128 + 24 + 5;
	offs[6] = 128 + 65536 + 40 + 30000;
	offs[7] = len - 1;
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		write_file(f.snap, orig, len);
		flip(f.snap, offs[i]);
		if (open_err(&f, f.ring) != EBADMSG) {
			fprintf(stderr, "  flip at %zu not detected\n",
				offs[i]);
			test_case_failed = 1;
		}
	}
	/* Not a snapshot at all. */
	write_file(f.snap, orig, len);
	flip(f.snap, 0);
	CHECK_INT(open_err(&f, f.ring), EINVAL);
	/* The key check value names another vault: "wrong key". */
	write_file(f.snap, orig, len);
	flip(f.snap, 60);
	CHECK_INT(open_err(&f, f.ring), EACCES);
	write_file(f.snap, orig, len);
	CHECK_INT(open_err(&f, f.ring), 0);
	CHECK_INT(stat(f.snap, &sb), 0);
	free(orig);
	teardown(&f);
}

static void wrong_key_is_refused(void)
{
	struct fixture f;

	setup(&f, 100);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, NULL), 0);
	CHECK_INT(open_err(&f, f.other), EACCES);
	CHECK_INT(snapshot_read(f.snap, f.other, f.out), EACCES);
	teardown(&f);
}

static void truncation_and_extension(void)
{
	struct fixture f;
	unsigned char *orig;
	size_t len;

	setup(&f, BIG_CONFIG);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, NULL), 0);
	orig = read_file(f.snap, &len);
	/* One byte, a whole last chunk, all chunks. */
	write_file(f.snap, orig, len - 1);
	CHECK_INT(open_err(&f, f.ring), EBADMSG);
	write_file(f.snap, orig, 128 + 3 * (65536 + 40));
	CHECK_INT(open_err(&f, f.ring), EBADMSG);
	write_file(f.snap, orig, 128);
	CHECK_INT(open_err(&f, f.ring), EBADMSG);
	write_file(f.snap, orig, 100);
	CHECK_INT(open_err(&f, f.ring), EINVAL);
	/* Bytes appended. */
	{
		unsigned char *longer = malloc(len + 40);
		memcpy(longer, orig, len);
		memset(longer + len, 0, 40);
		write_file(f.snap, longer, len + 40);
		CHECK_INT(open_err(&f, f.ring), EBADMSG);
		free(longer);
	}
	free(orig);
	teardown(&f);
}

/* Chunks swapped within a snapshot, or taken from another snapshot of the
 * same vault and key (same sizes), do not authenticate. */
static void swapped_chunks_are_detected(void)
{
	struct fixture f;
	struct catalog *c = NULL;
	unsigned char *a, *b, *mix;
	size_t alen, blen, cs = 65536 + 40;
	char p[128];

	setup(&f, BIG_CONFIG);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, NULL), 0);
	a = read_file(f.snap, &alen);
	path_in(f.dir, "catalog.db", p, sizeof p);
	CHECK_INT(catalog_open(p, 0, &c), 0);
	if (c)
		CHECK_INT(catalog_team_add(c, "t2"), 0);
	catalog_close(c);
	CHECK_INT(snapshot_update(f.dir, f.ring, f.snap, NULL), 0);
	b = read_file(f.snap, &blen);
	CHECK_INT(alen, blen); /* same page count: same size */
	mix = malloc(blen);
	/* Chunks 1 and 2 of b exchanged. */
	memcpy(mix, b, blen);
	memcpy(mix + 128 + cs, b + 128 + 2 * cs, cs);
	memcpy(mix + 128 + 2 * cs, b + 128 + cs, cs);
	write_file(f.snap, mix, blen);
	CHECK_INT(open_err(&f, f.ring), EBADMSG);
	/* Chunk 2 of a in b: the same key, another file id. */
	memcpy(mix, b, blen);
	memcpy(mix + 128 + 2 * cs, a + 128 + 2 * cs, cs);
	write_file(f.snap, mix, blen);
	CHECK_INT(open_err(&f, f.ring), EBADMSG);
	/* a's header on b's chunks. */
	memcpy(mix, b, blen);
	memcpy(mix, a, 128);
	write_file(f.snap, mix, blen);
	CHECK_INT(open_err(&f, f.ring), EBADMSG);
	write_file(f.snap, b, blen);
	CHECK_INT(open_err(&f, f.ring), 0);
	free(a);
	free(b);
	free(mix);
	teardown(&f);
}

/* The mount's cache: one look per interval, and the served file stays
 * the same while nothing changes. */
static void cache_is_lazy_and_stable(void)
{
	struct fixture f;
	struct snapshot_cache *sc = NULL;
	struct catalog *c = NULL;
	struct stat a, b;
	char p[128];
	int fd = -1;

	setup(&f, 100);
	CHECK_INT(snapshot_cache_new(f.dir, f.ring, 30, &sc), 0);
	if (!sc)
		goto out;
	path_in(f.dir, "snapshot/catalog.snapshot", p, sizeof p);
	CHECK(access(p, F_OK) != 0); /* nothing until someone looks */
	CHECK_INT(snapshot_cache_stat(sc, 1000000, &a), 0);
	CHECK_INT(access(p, F_OK), 0);
	CHECK_INT(snapshot_cache_open(sc, &fd), 0);
	if (fd >= 0)
		close(fd);

	path_in(f.dir, "catalog.db", p, sizeof p);
	CHECK_INT(catalog_open(p, 0, &c), 0);
	if (c)
		CHECK_INT(catalog_team_add(c, "t2"), 0);
	catalog_close(c);
	/* Within the interval: not looked at again. */
	CHECK_INT(snapshot_cache_stat(sc, 1000000 + 29000, &b), 0);
	CHECK_INT(a.st_ino, b.st_ino);
	/* After it: the change is taken. */
	CHECK_INT(snapshot_cache_stat(sc, 1000000 + 31000, &b), 0);
	CHECK(a.st_ino != b.st_ino);
	a = b;
	CHECK_INT(snapshot_cache_stat(sc, 1000000 + 62000, &b), 0);
	CHECK_INT(a.st_ino, b.st_ino);
	CHECK_INT(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
	/* A new cache (a remount) reuses the file of the same content. */
	snapshot_cache_free(sc);
	CHECK_INT(snapshot_cache_new(f.dir, f.ring, 30, &sc), 0);
	CHECK_INT(snapshot_cache_stat(sc, 5000, &b), 0);
	CHECK_INT(a.st_ino, b.st_ino);
	CHECK_INT(a.st_ctim.tv_nsec, b.st_ctim.tv_nsec);
out:
	snapshot_cache_free(sc);
	teardown(&f);
}

TEST_MAIN("snapshot", T(round_trip), T(restore_refuses_stale_wal),
	  T(missing_parts_are_absent), T(unchanged_vault_keeps_the_file),
	  T(open_writer_is_not_seen), T(every_flipped_bit_is_detected),
	  T(wrong_key_is_refused), T(truncation_and_extension),
	  T(swapped_chunks_are_detected), T(cache_is_lazy_and_stable))
