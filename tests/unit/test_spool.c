/* Spool files: content equals what was written (checked against a plain
 * in-memory model), survives sync/close and reopen, never shows plaintext
 * on disk, and any tampering is an error rather than silent garbage. */
#include "callvault/keys.h"
#include "callvault/spool.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 128
#define SLOT (SPOOL_BLOCK + 40)

struct env {
	char dir[64];
	int dirfd;
	struct keyring *ring;
};

static void env_init(struct env *e)
{
	unsigned char master[KEYS_KEY_LEN];

	CHECK_INT(keys_init(), 0);
	snprintf(e->dir, sizeof e->dir, "/tmp/spool-test-XXXXXX");
	if (!mkdtemp(e->dir)) {
		perror("mkdtemp");
		exit(2);
	}
	e->dirfd = open(e->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->dirfd < 0) {
		perror("open");
		exit(2);
	}
	memset(master, 0x42, sizeof master);
	CHECK_INT(keys_ring_new(master, &e->ring), 0);
}

static void env_done(struct env *e)
{
	DIR *d = fdopendir(dup(e->dirfd));
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(e->dirfd, de->d_name, 0);
	if (d)
		closedir(d);
	close(e->dirfd);
	rmdir(e->dir);
	keys_ring_free(e->ring);
}

/* Deterministic PRNG so that a failure can be replayed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint64_t rng_below(uint64_t n)
{
	return rng() % n;
}

static void fill_pattern(unsigned char *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((seed + i) * 131 + (seed >> 3));
}

/* Compares the whole logical content of `s` with model[0..size). */
static int content_equals(struct spool *s, const unsigned char *model,
			  uint64_t size)
{
	unsigned char *buf = malloc(size + 1);
	ssize_t n;
	int ok;

	if (!buf)
		return 0;
	n = spool_pread(s, buf, size + 1, 0);
	ok = spool_size(s) == size && n == (ssize_t)size &&
	     memcmp(buf, model, size) == 0;
	if (!ok)
		fprintf(stderr, "  content: size %llu/%llu read %zd\n",
			(unsigned long long)spool_size(s),
			(unsigned long long)size, n);
	free(buf);
	return ok;
}

static int raw_read(struct env *e, const char *name, unsigned char **out,
		    size_t *len)
{
	struct stat st;
	int fd = openat(e->dirfd, name, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0 || fstat(fd, &st) != 0)
		return -1;
	*len = (size_t)st.st_size;
	*out = malloc(*len + 1);
	if (!*out || pread(fd, *out, *len, 0) != (ssize_t)*len) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int raw_write(struct env *e, const char *name, const void *p,
		     size_t len, off_t off)
{
	int fd = openat(e->dirfd, name, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pwrite(fd, p, len, off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static void test_sequential_320(void)
{
	struct env e;
	struct spool *s, *r;
	char name[SPOOL_NAME_LEN];
	size_t total = 1 << 20;
	unsigned char *model = malloc(total), *back = malloc(total);

	env_init(&e);
	fill_pattern(model, total, 7);
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	CHECK(strncmp(name, "in-", 3) == 0 && strlen(name) == 41);
	for (size_t off = 0; off < total; off += 320) {
		size_t n = total - off < 320 ? total - off : 320;
		CHECK_INT(spool_pwrite(s, model + off, n, off), (ssize_t)n);
	}
	CHECK_INT(spool_size(s), total);
	CHECK_INT(spool_pread(s, back, total, 0), (ssize_t)total);
	CHECK(memcmp(back, model, total) == 0);
	CHECK_INT(spool_sync(s), 0);
	spool_close(s);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &r), 0);
	CHECK(r && content_equals(r, model, total));
	spool_close(r);
	env_done(&e);
	free(model);
	free(back);
}

/* Thousands of random writes, truncates and reads against a plain buffer,
 * with the occasional sync+reopen or close+reopen in between. */
static void test_random_model(void)
{
	enum { MAXSZ = 80 * 1024, OPS = 4000 };
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char *model = calloc(1, MAXSZ + 3 * SPOOL_BLOCK);
	unsigned char *buf = malloc(MAXSZ + 3 * SPOOL_BLOCK);
	uint64_t size = 0;
	int bad = 0;

	env_init(&e);
	rng_state = 0x1234567887654321ULL;
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	for (int op = 0; op < OPS && !bad; op++) {
		uint64_t r = rng_below(100);
		if (r < 50) {
			uint64_t off = rng_below(MAXSZ);
			size_t len = 1 + (size_t)rng_below(
					 rng_below(4) ? 700 : 3 * SPOOL_BLOCK);
			if (rng_below(4) == 0)
				off -= off % SPOOL_BLOCK;
			fill_pattern(buf, len, rng());
			if (spool_pwrite(s, buf, len, off) != (ssize_t)len)
				bad = 1;
			memcpy(model + off, buf, len);
			if (off + len > size)
				size = off + len;
		} else if (r < 62) {
			uint64_t ns = rng_below(MAXSZ);
			if (rng_below(4) == 0)
				ns -= ns % SPOOL_BLOCK;
			if (spool_truncate(s, ns) != 0)
				bad = 1;
			if (ns < size)
				memset(model + ns, 0, size - ns);
			size = ns;
		} else if (r < 97) {
			uint64_t off = rng_below(MAXSZ);
			size_t len = (size_t)rng_below(3 * SPOOL_BLOCK);
			size_t want = off >= size ? 0 :
				      (size - off < len ? size - off : len);
			ssize_t n = spool_pread(s, buf, len, off);
			if (n != (ssize_t)want ||
			    memcmp(buf, model + off, want) != 0)
				bad = 1;
		} else if (r < 99) {
			if (spool_sync(s) != 0)
				bad = 1;
			if (rng_below(2)) {
				spool_close(s);
				s = NULL;
				if (spool_open(e.dirfd, name, e.ring, &s) != 0)
					bad = 1;
			}
		} else {
			spool_close(s);
			s = NULL;
			if (spool_open(e.dirfd, name, e.ring, &s) != 0)
				bad = 1;
		}
		if (bad || !content_equals(s, model, size)) {
			fprintf(stderr, "  diverged at op %d (kind %llu)\n",
				op, (unsigned long long)r);
			bad = 1;
		}
	}
	CHECK(!bad);
	spool_close(s);
	env_done(&e);
	free(model);
	free(buf);
}

/* How WAV recorders write: header of zeros, audio, sizes patched at 4 and
 * 40, a pad byte, a LIST chunk, then the header rewritten from offset 0. */
static void test_wav_writer(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char model[44 + 100 * 320 + 1 + 64], hdr[44], pcm[320];
	unsigned char list[32], sz[4];
	uint64_t size = 0;

	env_init(&e);
	memset(model, 0, sizeof model);
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	memset(hdr, 0, sizeof hdr);
	CHECK_INT(spool_pwrite(s, hdr, 44, 0), 44);
	size = 44;
	for (int i = 0; i < 100; i++) {
		fill_pattern(pcm, sizeof pcm, (uint64_t)i);
		CHECK_INT(spool_pwrite(s, pcm, sizeof pcm, size), 320);
		memcpy(model + size, pcm, sizeof pcm);
		size += sizeof pcm;
	}
	memcpy(sz, "\x24\x7d\x00\x00", 4);
	CHECK_INT(spool_pwrite(s, sz, 4, 4), 4);
	memcpy(model + 4, sz, 4);
	memcpy(sz, "\x00\x7d\x00\x00", 4);
	CHECK_INT(spool_pwrite(s, sz, 4, 40), 4);
	memcpy(model + 40, sz, 4);
	CHECK_INT(spool_pwrite(s, "", 1, size), 1);
	size += 1;
	CHECK(content_equals(s, model, size));

	memcpy(list, "LIST\x18\x00\x00\x00INFOISFT\x0c\x00\x00\x00"
		     "callvault\0\0\0", sizeof list);
	CHECK_INT(spool_pwrite(s, list, sizeof list, size), sizeof list);
	memcpy(model + size, list, sizeof list);
	size += sizeof list;
	memcpy(hdr, "RIFF....WAVEfmt ", 16);
	fill_pattern(hdr + 16, 28, 99);
	CHECK_INT(spool_pwrite(s, hdr, sizeof hdr, 0), 44);
	memcpy(model, hdr, sizeof hdr);
	CHECK(content_equals(s, model, size));

	spool_close(s);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK(s && content_equals(s, model, size));
	spool_close(s);
	env_done(&e);
}

/* After spool_sync, a second open of the same file (what recovery does
 * after a crash) sees exactly the content, while the writer still holds
 * its spool open. */
static void test_sync_then_open(void)
{
	struct env e;
	struct spool *s, *r;
	char name[SPOOL_NAME_LEN];
	unsigned char model[3 * SPOOL_BLOCK + 100];

	env_init(&e);
	fill_pattern(model, sizeof model, 3);
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	CHECK_INT(spool_pwrite(s, model, 1000, 0), 1000);
	CHECK_INT(spool_pwrite(s, model + 1000, sizeof model - 1000, 1000),
		  sizeof model - 1000);
	CHECK_INT(spool_sync(s), 0);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &r), 0);
	CHECK(r && content_equals(r, model, sizeof model));
	spool_close(r);
	spool_close(s);
	env_done(&e);
}

/* Close without sync still seals the cached block and the header. */
static void test_close_then_open(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char model[5000];

	env_init(&e);
	fill_pattern(model, sizeof model, 11);
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	for (size_t off = 0; off < sizeof model; off += 500)
		CHECK_INT(spool_pwrite(s, model + off, 500, off), 500);
	spool_close(s);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK(s && content_equals(s, model, sizeof model));
	spool_close(s);

	/* An empty spool reopens as empty. */
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	spool_close(s);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK(s && spool_size(s) == 0);
	spool_close(s);
	env_done(&e);
}

static void test_no_plaintext_on_disk(void)
{
	static const char pat[] = "PLAINTEXTPATTERN";
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char data[20000], *raw;
	size_t rawlen;

	env_init(&e);
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)pat[i % 16];
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	for (size_t off = 0; off < sizeof data; off += 320) {
		size_t n = sizeof data - off < 320 ? sizeof data - off : 320;
		CHECK_INT(spool_pwrite(s, data + off, n, off), (ssize_t)n);
	}
	CHECK_INT(spool_pwrite(s, data, 9000, 30000), 9000);
	CHECK_INT(spool_sync(s), 0);
	spool_close(s);
	CHECK_INT(raw_read(&e, name, &raw, &rawlen), 0);
	CHECK(raw && memmem(raw, rawlen, "PLAINTEXT", 9) == NULL);
	CHECK(raw && memmem(raw, rawlen, "PATTERN", 7) == NULL);
	/* 39000 bytes = 10 blocks: 128-byte header + 40 bytes per block. */
	CHECK_INT(rawlen, HDR + 10 * SLOT);
	free(raw);
	env_done(&e);
}

/* Writes three blocks of data and closes; returns the model in `model`. */
static void three_blocks(struct env *e, char name[SPOOL_NAME_LEN],
			 unsigned char model[3 * SPOOL_BLOCK])
{
	struct spool *s;

	fill_pattern(model, 3 * SPOOL_BLOCK, 5);
	CHECK_INT(spool_create(e->dirfd, e->ring, &s, name), 0);
	CHECK_INT(spool_pwrite(s, model, 3 * SPOOL_BLOCK, 0),
		  3 * SPOOL_BLOCK);
	spool_close(s);
}

static void test_tamper_block(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char model[3 * SPOOL_BLOCK], buf[SPOOL_BLOCK], *raw;
	size_t rawlen;
	static const size_t where[] = { 0, 23, 24, 2000, SLOT - 1 };

	env_init(&e);
	three_blocks(&e, name, model);
	CHECK_INT(raw_read(&e, name, &raw, &rawlen), 0);
	for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
		unsigned char b = raw[HDR + SLOT + where[i]] ^ 0x01;
		CHECK_INT(raw_write(&e, name, &b, 1,
				    HDR + SLOT + (off_t)where[i]), 0);
		CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
		CHECK_INT(spool_pread(s, buf, SPOOL_BLOCK, SPOOL_BLOCK), -EIO);
		/* Its neighbours are intact and still readable. */
		CHECK_INT(spool_pread(s, buf, SPOOL_BLOCK, 0), SPOOL_BLOCK);
		CHECK(memcmp(buf, model, SPOOL_BLOCK) == 0);
		CHECK_INT(spool_pread(s, buf, SPOOL_BLOCK, 2 * SPOOL_BLOCK),
			  SPOOL_BLOCK);
		CHECK(memcmp(buf, model + 2 * SPOOL_BLOCK, SPOOL_BLOCK) == 0);
		/* A write into the bad block cannot load it either. */
		CHECK_INT(spool_pwrite(s, "x", 1, SPOOL_BLOCK + 5), -EIO);
		spool_close(s);
		CHECK_INT(raw_write(&e, name, raw + HDR + SLOT + where[i], 1,
				    HDR + SLOT + (off_t)where[i]), 0);
	}
	free(raw);
	env_done(&e);
}

static void test_swap_blocks(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char model[3 * SPOOL_BLOCK], buf[SPOOL_BLOCK], *raw;
	size_t rawlen;

	env_init(&e);
	three_blocks(&e, name, model);
	CHECK_INT(raw_read(&e, name, &raw, &rawlen), 0);
	CHECK_INT(raw_write(&e, name, raw + HDR, SLOT, HDR + SLOT), 0);
	CHECK_INT(raw_write(&e, name, raw + HDR + SLOT, SLOT, HDR), 0);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK_INT(spool_pread(s, buf, SPOOL_BLOCK, 0), -EIO);
	CHECK_INT(spool_pread(s, buf, SPOOL_BLOCK, SPOOL_BLOCK), -EIO);
	CHECK_INT(spool_pread(s, buf, 10, 2 * SPOOL_BLOCK), 10);
	spool_close(s);
	free(raw);
	env_done(&e);
}

/* A block slot from another spool file (same key, same index) fails too. */
static void test_block_from_other_file(void)
{
	struct env e;
	struct spool *s;
	char a[SPOOL_NAME_LEN], b[SPOOL_NAME_LEN];
	unsigned char model[3 * SPOOL_BLOCK], buf[16], *raw;
	size_t rawlen;

	env_init(&e);
	three_blocks(&e, a, model);
	three_blocks(&e, b, model);
	CHECK_INT(raw_read(&e, a, &raw, &rawlen), 0);
	CHECK_INT(raw_write(&e, b, raw + HDR, SLOT, HDR), 0);
	CHECK_INT(spool_open(e.dirfd, b, e.ring, &s), 0);
	CHECK_INT(spool_pread(s, buf, sizeof buf, 0), -EIO);
	spool_close(s);
	/* A whole file copied over another's name does not open. */
	CHECK_INT(raw_write(&e, b, raw, HDR, 0), 0);
	CHECK_INT(spool_open(e.dirfd, b, e.ring, &s), EBADMSG);
	free(raw);
	env_done(&e);
}

static void test_tamper_header(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char model[3 * SPOOL_BLOCK], *raw;
	size_t rawlen;
	/* magic, version, algorithm, block size, id, nonce, sealed size,
	 * tag, reserved */
	static const int where[] = { 0, 8, 10, 13, 20, 40, 58, 70, 100, 127 };

	env_init(&e);
	three_blocks(&e, name, model);
	CHECK_INT(raw_read(&e, name, &raw, &rawlen), 0);
	for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
		unsigned char b = raw[where[i]] ^ 0x80;
		s = NULL;
		CHECK_INT(raw_write(&e, name, &b, 1, where[i]), 0);
		CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), EBADMSG);
		CHECK(s == NULL);
		spool_close(s);
		CHECK_INT(raw_write(&e, name, raw + where[i], 1, where[i]), 0);
	}
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK(s && content_equals(s, model, sizeof model));
	spool_close(s);

	/* A header cut short is not a spool either. */
	{
		int fd = openat(e.dirfd, name, O_WRONLY | O_CLOEXEC);
		CHECK(fd >= 0 && ftruncate(fd, 60) == 0);
		close(fd);
	}
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), EBADMSG);
	free(raw);
	env_done(&e);
}

static void test_wrong_key(void)
{
	struct env e;
	struct spool *s;
	struct keyring *other;
	char name[SPOOL_NAME_LEN];
	unsigned char model[3 * SPOOL_BLOCK], master[KEYS_KEY_LEN];

	env_init(&e);
	three_blocks(&e, name, model);
	memset(master, 0x43, sizeof master);
	CHECK_INT(keys_ring_new(master, &other), 0);
	CHECK_INT(spool_open(e.dirfd, name, other, &s), EBADMSG);
	keys_ring_free(other);
	env_done(&e);
}

/* The file ends in the middle of a slot (torn write, cut file): that block
 * is EIO; a block wholly past the end of the file is a hole. */
static void test_cut_file(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char model[3 * SPOOL_BLOCK], buf[SPOOL_BLOCK];
	int fd;

	env_init(&e);
	three_blocks(&e, name, model);
	fd = openat(e.dirfd, name, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0 && ftruncate(fd, HDR + SLOT + 100) == 0);
	close(fd);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK_INT(spool_size(s), 3 * SPOOL_BLOCK);
	CHECK_INT(spool_pread(s, buf, SPOOL_BLOCK, 0), SPOOL_BLOCK);
	CHECK(memcmp(buf, model, SPOOL_BLOCK) == 0);
	CHECK_INT(spool_pread(s, buf, SPOOL_BLOCK, SPOOL_BLOCK), -EIO);
	memset(buf, 0xff, sizeof buf);
	CHECK_INT(spool_pread(s, buf, SPOOL_BLOCK, 2 * SPOOL_BLOCK),
		  SPOOL_BLOCK);
	CHECK(buf[0] == 0 && buf[SPOOL_BLOCK - 1] == 0);
	spool_close(s);
	env_done(&e);
}

/* Shrinking and growing again shows zeros, not the old bytes, also when
 * the shrunk block is not cached and across reopen. */
static void test_truncate_zeroes(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char model[3 * SPOOL_BLOCK], buf[3 * SPOOL_BLOCK];
	unsigned char *raw;
	size_t rawlen;

	env_init(&e);
	memset(model, 0xaa, sizeof model);
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	CHECK_INT(spool_pwrite(s, model, 10000, 0), 10000);
	CHECK_INT(spool_truncate(s, 5000), 0);
	CHECK_INT(spool_size(s), 5000);
	CHECK_INT(spool_pread(s, buf, sizeof buf, 0), 5000);
	CHECK_INT(spool_truncate(s, 12000), 0);
	memset(model + 5000, 0, 7000);
	CHECK(content_equals(s, model, 12000));
	CHECK_INT(spool_sync(s), 0);
	spool_close(s);

	/* The freed slots are given back to the file system. */
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK(s && content_equals(s, model, 12000));
	CHECK_INT(spool_truncate(s, 100), 0);
	CHECK_INT(spool_sync(s), 0);
	CHECK_INT(raw_read(&e, name, &raw, &rawlen), 0);
	CHECK_INT(rawlen, HDR + SLOT);
	free(raw);
	/* Growing by a write past the end leaves a gap of zeros. */
	CHECK_INT(spool_pwrite(s, "end", 3, 9000), 3);
	memset(model + 100, 0, 9000 - 100);
	memcpy(model + 9000, "end", 3);
	CHECK(content_equals(s, model, 9003));
	spool_close(s);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK(s && content_equals(s, model, 9003));
	CHECK_INT(spool_truncate(s, 0), 0);
	CHECK_INT(spool_pread(s, buf, 10, 0), 0);

	/* A cut on a block boundary while a later block is cached. */
	memset(model, 0xbb, sizeof model);
	for (size_t off = 0; off < 3 * SPOOL_BLOCK - 320; off += 320)
		CHECK_INT(spool_pwrite(s, model, 320, off), 320);
	CHECK_INT(spool_truncate(s, SPOOL_BLOCK), 0);
	CHECK_INT(spool_truncate(s, 3 * SPOOL_BLOCK), 0);
	memset(model + SPOOL_BLOCK, 0, 2 * SPOOL_BLOCK);
	CHECK(content_equals(s, model, 3 * SPOOL_BLOCK));
	spool_close(s);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK(s && content_equals(s, model, 3 * SPOOL_BLOCK));
	spool_close(s);
	env_done(&e);
}

/* A crash after blocks were written but before the header was: the next
 * open trusts the sealed size, and growing shows zeros past it, not the
 * unsynced bytes. */
static void test_crash_before_header(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char model[4 * SPOOL_BLOCK], old_hdr[HDR], *raw;
	size_t rawlen;
	int fd;

	env_init(&e);
	fill_pattern(model, sizeof model, 21);
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	CHECK_INT(spool_pwrite(s, model, 5000, 0), 5000);
	CHECK_INT(spool_sync(s), 0);
	fd = openat(e.dirfd, name, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && pread(fd, old_hdr, HDR, 0) == HDR);
	close(fd);
	CHECK_INT(spool_pwrite(s, model + 5000, sizeof model - 5000, 5000),
		  sizeof model - 5000);
	spool_close(s);
	CHECK_INT(raw_write(&e, name, old_hdr, HDR, 0), 0);

	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK(s && content_equals(s, model, 5000));
	CHECK_INT(spool_truncate(s, sizeof model), 0);
	memset(model + 5000, 0, sizeof model - 5000);
	CHECK(content_equals(s, model, sizeof model));
	spool_close(s);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), 0);
	CHECK(s && content_equals(s, model, sizeof model));
	spool_close(s);
	CHECK_INT(raw_read(&e, name, &raw, &rawlen), 0);
	CHECK(rawlen <= HDR + 4 * SLOT);
	free(raw);
	env_done(&e);
}

static void test_unlink_names(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	struct stat st;
	static const char *const bad[] = {
		"", "..", "../in-00000000000000000000000000000000.spool",
		"in-0000000000000000000000000000000/.spool",
		"in-00000000000000000000000000000000.spool/",
		"in-0000000000000000000000000000000..spool",
		"in-0000000000000000000000000000000G.spool",
		"in-0000000000000000000000000000000A.spool",
		"in-00000000000000000000000000000000.spoo",
		"in-000000000000000000000000000000000.spool",
		"x/in-00000000000000000000000000000000.spool",
	};

	env_init(&e);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(spool_unlink(e.dirfd, bad[i]), EINVAL);
		CHECK_INT(spool_open(e.dirfd, bad[i], e.ring, &s), EINVAL);
	}
	CHECK_INT(spool_unlink(e.dirfd,
			       "in-00000000000000000000000000000000.spool"),
		  ENOENT);
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	CHECK_INT(fstatat(e.dirfd, name, &st, 0), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	spool_close(s);
	CHECK_INT(spool_unlink(e.dirfd, name), 0);
	CHECK(fstatat(e.dirfd, name, &st, 0) != 0 && errno == ENOENT);
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &s), ENOENT);
	env_done(&e);
}

static void test_too_big(void)
{
	struct env e;
	struct spool *s;
	char name[SPOOL_NAME_LEN];
	unsigned char buf[8];

	env_init(&e);
	CHECK_INT(spool_create(e.dirfd, e.ring, &s, name), 0);
	CHECK_INT(spool_pwrite(s, "ab", 2, SPOOL_MAX_SIZE - 1), -EFBIG);
	CHECK_INT(spool_pwrite(s, "a", 1, SPOOL_MAX_SIZE), -EFBIG);
	CHECK_INT(spool_pwrite(s, "a", 1, UINT64_MAX), -EFBIG);
	CHECK_INT(spool_truncate(s, SPOOL_MAX_SIZE + 1), EFBIG);
	CHECK_INT(spool_size(s), 0);
	/* The last byte allowed works, and the 1 TiB gap is holes. */
	CHECK_INT(spool_pwrite(s, "z", 1, SPOOL_MAX_SIZE - 1), 1);
	CHECK_INT(spool_size(s), SPOOL_MAX_SIZE);
	memset(buf, 0xff, sizeof buf);
	CHECK_INT(spool_pread(s, buf, sizeof buf, SPOOL_MAX_SIZE / 2),
		  sizeof buf);
	CHECK(buf[0] == 0 && buf[7] == 0);
	CHECK_INT(spool_pread(s, buf, sizeof buf, SPOOL_MAX_SIZE - 1), 1);
	CHECK(buf[0] == 'z');
	CHECK_INT(spool_pread(s, buf, sizeof buf, SPOOL_MAX_SIZE), 0);
	CHECK_INT(spool_sync(s), 0);
	CHECK_INT(spool_truncate(s, 0), 0);
	spool_close(s);
	env_done(&e);
}

/* spool_flush: everything written so far, the partial last block too, is
 * read back by another opener while the writer is still open (as after
 * the death of the process that wrote it), without fsync. */
static void test_flush_then_open(void)
{
	struct env e;
	struct spool *w, *r;
	char name[SPOOL_NAME_LEN];
	unsigned char data[10000], back[10000];

	env_init(&e);
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 7 + 3);
	CHECK_INT(spool_create(e.dirfd, e.ring, &w, name), 0);
	for (size_t off = 0; off < sizeof data; off += 320) {
		size_t n = sizeof data - off < 320 ? sizeof data - off : 320;
		CHECK_INT(spool_pwrite(w, data + off, n, off), (long long)n);
		CHECK_INT(spool_flush(w), 0);
	}
	CHECK_INT(spool_open(e.dirfd, name, e.ring, &r), 0);
	if (r) {
		CHECK_INT(spool_size(r), sizeof data);
		CHECK_INT(spool_pread(r, back, sizeof back, 0), sizeof back);
		CHECK(memcmp(back, data, sizeof data) == 0);
		spool_close(r);
	}
	spool_close(w);
	env_done(&e);
}

TEST_MAIN("spool", T(test_sequential_320), T(test_flush_then_open), T(test_random_model),
	  T(test_wav_writer), T(test_sync_then_open), T(test_close_then_open),
	  T(test_no_plaintext_on_disk), T(test_tamper_block),
	  T(test_swap_blocks), T(test_block_from_other_file),
	  T(test_tamper_header), T(test_wrong_key), T(test_cut_file),
	  T(test_truncate_zeroes), T(test_crash_before_header),
	  T(test_unlink_names), T(test_too_big))
