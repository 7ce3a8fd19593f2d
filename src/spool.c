/* Spool files: random-access storage of the bytes a recorder is writing,
 * sealed block by block (docs/format.md, "Spool files (incoming/)").
 *
 *   header   128 bytes: magic, version, algorithm, block size, file id in
 *            clear, then keys_seal(le64 logical size), AD = bytes 0..31
 *   slot k   at 128 + k * 4136: keys_seal(block k), AD = id || le64(k),
 *            i.e. nonce (24) || ciphertext (4096) || tag (16)
 *
 * An all-zero slot, or a slot wholly past the end of the file, is a hole
 * and reads as zeros; anything else must authenticate. Each seal uses a
 * fresh random nonce under a key of this file alone (keys_spool_key).
 *
 * Invariants that keep "a gap reads as zeros" true:
 *   - the bytes of the last block past the logical size are zero, in the
 *     cache or on disk (truncate zeroes them; open repairs a crashed file);
 *   - no slot at or past nblocks(size) holds data: truncate and open cut
 *     the file there, and loading such a block never reads the disk. */
#include "callvault/fdio.h"
#include "callvault/bytes.h"
#include "callvault/spool.h"
#include "callvault/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "CVSPOOL1"
#define MAGIC_LEN 8
#define VERSION 1
#define ALG_XCHACHA20POLY1305 1
#define ID_LEN 16
#define HDR_LEN 128
#define HDR_AD_LEN 32 /* magic, version, algorithm, block size, id */
#define SIZE_LEN 8
#define SLOT_LEN (SPOOL_BLOCK + KEYS_SEAL_OVERHEAD)
#define BLOCK_AD_LEN (ID_LEN + 8)
#define NO_BLOCK UINT64_MAX
#define NAME_PREFIX "in-"
#define NAME_SUFFIX ".spool"
#define NAME_HEX (2 * ID_LEN)

/* Header offsets. */
#define H_MAGIC 0
#define H_VERSION 8
#define H_ALG 10
#define H_BLOCK 12
#define H_ID 16
#define H_SEALED 32
#define H_RESERVED (H_SEALED + SIZE_LEN + KEYS_SEAL_OVERHEAD)

_Static_assert(H_ID + ID_LEN == HDR_AD_LEN, "header AD layout");
_Static_assert(H_RESERVED == 80 && H_RESERVED <= HDR_LEN, "header layout");
_Static_assert(SLOT_LEN == 4136, "slot layout");
_Static_assert(sizeof(NAME_PREFIX) - 1 + NAME_HEX + sizeof(NAME_SUFFIX) <=
		       SPOOL_NAME_LEN,
	       "name layout");

struct spool {
	int fd;
	char name[SPOOL_NAME_LEN];
	unsigned char id[ID_LEN];
	struct secret key;
	uint64_t size;          /* logical size */
	int hdr_dirty;          /* size differs from the sealed header */
	unsigned char *mem;     /* guarded: cache block, then the I/O slot */
	unsigned char *cache;   /* plaintext of block cache_idx */
	unsigned char *io;      /* one slot; plaintext only while reading */
	uint64_t cache_idx;     /* NO_BLOCK = empty */
	int cache_dirty;
	int warned;             /* one log line per spool is enough */
};

static int all_zero(const unsigned char *p, size_t len)
{
	unsigned char acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

/* Reads up to `len` bytes; *got < len means the file ends there. */
static int pread_upto(int fd, unsigned char *p, size_t len, uint64_t off,
		      size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = pread(fd, p + *got, len - *got, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0)
			break;
		*got += (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static uint64_t nblocks(uint64_t size)
{
	return (size + SPOOL_BLOCK - 1) / SPOOL_BLOCK;
}

static uint64_t slot_off(uint64_t k)
{
	return HDR_LEN + k * SLOT_LEN;
}

static void block_ad(const struct spool *s, uint64_t k,
		     unsigned char ad[BLOCK_AD_LEN])
{
	memcpy(ad, s->id, ID_LEN);
	le64_put(ad + ID_LEN, k);
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Accepts exactly "in-" + 32 lowercase hex + ".spool" (so no '/', no "..")
 * and returns the id it names. */
static int name_parse(const char *name, unsigned char id[ID_LEN])
{
	size_t plen = sizeof(NAME_PREFIX) - 1, slen = sizeof(NAME_SUFFIX) - 1;

	if (!name || strlen(name) != plen + NAME_HEX + slen ||
	    memcmp(name, NAME_PREFIX, plen) != 0 ||
	    strcmp(name + plen + NAME_HEX, NAME_SUFFIX) != 0)
		return EINVAL;
	for (size_t i = 0; i < ID_LEN; i++) {
		int hi = hex_digit(name[plen + 2 * i]);
		int lo = hex_digit(name[plen + 2 * i + 1]);
		if (hi < 0 || lo < 0)
			return EINVAL;
		id[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static void name_format(const unsigned char id[ID_LEN],
			char name[SPOOL_NAME_LEN])
{
	size_t plen = sizeof(NAME_PREFIX) - 1;

	memset(name, 0, SPOOL_NAME_LEN);
	memcpy(name, NAME_PREFIX, plen);
	hex_encode(id, ID_LEN, name + plen);
	memcpy(name + plen + NAME_HEX, NAME_SUFFIX, sizeof(NAME_SUFFIX));
}

static void spool_free(struct spool *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	keys_secret_free(&s->key);
	if (s->mem)
		sodium_free(s->mem); /* wipes */
	sodium_memzero(s, sizeof *s);
	free(s);
}

static int spool_alloc(const struct keyring *ring,
		       const unsigned char id[ID_LEN], struct spool **out)
{
	struct spool *s = calloc(1, sizeof *s);
	int err;

	*out = NULL;
	if (!s)
		return ENOMEM;
	s->fd = -1;
	s->cache_idx = NO_BLOCK;
	memcpy(s->id, id, ID_LEN);
	name_format(id, s->name);
	s->key = keys_secret_new();
	s->mem = sodium_malloc(SPOOL_BLOCK + SLOT_LEN);
	if (!s->key.b || !s->mem) {
		spool_free(s);
		return ENOMEM;
	}
	sodium_memzero(s->mem, SPOOL_BLOCK + SLOT_LEN);
	s->cache = s->mem;
	s->io = s->mem + SPOOL_BLOCK;
	err = keys_spool_key(ring, id, &s->key);
	if (err) {
		spool_free(s);
		return err;
	}
	*out = s;
	return 0;
}

/* Seals the current size into the header and writes it with one pwrite of
 * 128 bytes at offset 0 (within one sector, so not torn in practice). */
static int header_write(struct spool *s)
{
	unsigned char hdr[HDR_LEN], size[SIZE_LEN];
	int err;

	memset(hdr, 0, sizeof hdr);
	memcpy(hdr + H_MAGIC, MAGIC, MAGIC_LEN);
	le16_put(hdr + H_VERSION, VERSION);
	le16_put(hdr + H_ALG, ALG_XCHACHA20POLY1305);
	le32_put(hdr + H_BLOCK, SPOOL_BLOCK);
	memcpy(hdr + H_ID, s->id, ID_LEN);
	le64_put(size, s->size);
	err = keys_seal(s->key.b, hdr, HDR_AD_LEN, size, SIZE_LEN,
			hdr + H_SEALED);
	if (!err)
		err = fdio_pwrite_all(s->fd, hdr, HDR_LEN, 0);
	if (!err)
		s->hdr_dirty = 0;
	return err;
}

static void warn_block(struct spool *s, uint64_t k, const char *why)
{
	if (s->warned)
		return;
	s->warned = 1;
	log_warnx("spool %s: block %llu %s", s->name, (unsigned long long)k,
		  why);
}

/* Reads slot k into s->io and decrypts it in place: on success the block's
 * plaintext is at s->io + KEYS_NONCE_LEN (*hole = 0), or the slot is a hole
 * (*hole = 1). EIO for a slot cut in the middle or one that does not
 * authenticate. Callers wipe s->io after use. */
static int slot_read(struct spool *s, uint64_t k, int *hole)
{
	unsigned char ad[BLOCK_AD_LEN];
	size_t got;
	int err;

	*hole = 0;
	err = pread_upto(s->fd, s->io, SLOT_LEN, slot_off(k), &got);
	if (err)
		return err;
	if (got == 0 || (got == SLOT_LEN && all_zero(s->io, SLOT_LEN))) {
		*hole = 1;
		return 0;
	}
	if (got < SLOT_LEN) {
		warn_block(s, k, "is cut short");
		return EIO;
	}
	block_ad(s, k, ad);
	if (keys_open(s->key.b, ad, sizeof ad, s->io, SLOT_LEN,
		      s->io + KEYS_NONCE_LEN) != 0) {
		sodium_memzero(s->io, SLOT_LEN);
		warn_block(s, k, "fails to authenticate");
		return EIO;
	}
	return 0;
}

/* Seals one block of plaintext into slot k with a fresh nonce. */
static int slot_write(struct spool *s, uint64_t k, const unsigned char *plain)
{
	unsigned char ad[BLOCK_AD_LEN];
	int err;

	block_ad(s, k, ad);
	err = keys_seal(s->key.b, ad, sizeof ad, plain, SPOOL_BLOCK, s->io);
	if (!err)
		err = fdio_pwrite_all(s->fd, s->io, SLOT_LEN, slot_off(k));
	return err;
}

static int cache_flush(struct spool *s)
{
	int err;

	if (s->cache_idx == NO_BLOCK || !s->cache_dirty)
		return 0;
	err = slot_write(s, s->cache_idx, s->cache);
	if (!err)
		s->cache_dirty = 0;
	return err;
}

static void cache_drop(struct spool *s)
{
	sodium_memzero(s->cache, SPOOL_BLOCK);
	s->cache_idx = NO_BLOCK;
	s->cache_dirty = 0;
}

/* Makes block k the cached one, sealing the previous one first if dirty.
 * Blocks at or past the end start as zeros without touching the disk;
 * bytes of the last block past the size are zeroed. */
static int cache_load(struct spool *s, uint64_t k)
{
	uint64_t start = k * SPOOL_BLOCK;
	int err, hole;

	if (s->cache_idx == k)
		return 0;
	err = cache_flush(s);
	if (err)
		return err;
	cache_drop(s);
	if (start < s->size) {
		err = slot_read(s, k, &hole);
		if (err)
			return err;
		if (!hole) {
			memcpy(s->cache, s->io + KEYS_NONCE_LEN, SPOOL_BLOCK);
			sodium_memzero(s->io, SLOT_LEN);
		}
		if (s->size - start < SPOOL_BLOCK)
			memset(s->cache + (s->size - start), 0,
			       SPOOL_BLOCK - (size_t)(s->size - start));
	}
	s->cache_idx = k;
	return 0;
}

/* Cuts the file after the slots of the current size, so that no stale
 * slot can reappear when the size grows again. Never extends it: a file
 * cut inside a slot stays cut, and that block reads as EIO. */
static int cut_file(struct spool *s)
{
	uint64_t end = slot_off(nblocks(s->size));
	struct stat st;

	if (fstat(s->fd, &st) != 0)
		return errno;
	if ((uint64_t)st.st_size > end && ftruncate(s->fd, (off_t)end) != 0)
		return errno;
	return 0;
}

int spool_create(int dirfd, const struct keyring *ring, struct spool **out,
		 char name[SPOOL_NAME_LEN])
{
	unsigned char id[ID_LEN];
	struct spool *s = NULL;
	int err;

	*out = NULL;
	keys_random(id, sizeof id);
	err = spool_alloc(ring, id, &s);
	if (err)
		return err;
	s->fd = openat(dirfd, s->name,
		       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		       0600);
	if (s->fd < 0) {
		err = errno;
		goto out;
	}
	err = header_write(s);
	if (err) {
		unlinkat(dirfd, s->name, 0);
		goto out;
	}
	memcpy(name, s->name, SPOOL_NAME_LEN);
	*out = s;
	s = NULL;
out:
	spool_free(s);
	return err;
}

/* Checks the clear part of the header and opens the sealed size. */
static int header_check(struct spool *s, const unsigned char hdr[HDR_LEN])
{
	unsigned char size[SIZE_LEN];

	if (memcmp(hdr + H_MAGIC, MAGIC, MAGIC_LEN) != 0 ||
	    le16_get(hdr + H_VERSION) != VERSION ||
	    le16_get(hdr + H_ALG) != ALG_XCHACHA20POLY1305 ||
	    le32_get(hdr + H_BLOCK) != SPOOL_BLOCK ||
	    !all_zero(hdr + H_RESERVED, HDR_LEN - H_RESERVED))
		return EBADMSG;
	/* The name is the id: a spool copied over another's name fails. */
	if (memcmp(hdr + H_ID, s->id, ID_LEN) != 0)
		return EBADMSG;
	if (keys_open(s->key.b, hdr, HDR_AD_LEN, hdr + H_SEALED,
		      SIZE_LEN + KEYS_SEAL_OVERHEAD, size) != 0)
		return EBADMSG;
	s->size = le64_get(size);
	if (s->size > SPOOL_MAX_SIZE)
		return EBADMSG;
	return 0;
}

/* After a crash, blocks written after the last sync may lie past the
 * sealed size: cut them off and zero the tail of the last block. */
static int repair_tail(struct spool *s)
{
	uint64_t k = s->size / SPOOL_BLOCK;
	size_t keep = (size_t)(s->size % SPOOL_BLOCK);
	int err, hole;

	err = cut_file(s);
	if (err || keep == 0)
		return err;
	/* A last block that fails to authenticate stays as it is: reading
	 * it gives EIO, which is the truth. */
	if (slot_read(s, k, &hole) != 0 || hole)
		return 0;
	if (!all_zero(s->io + KEYS_NONCE_LEN + keep, SPOOL_BLOCK - keep)) {
		memcpy(s->cache, s->io + KEYS_NONCE_LEN, keep);
		s->cache_idx = k;
		s->cache_dirty = 1;
	}
	sodium_memzero(s->io, SLOT_LEN);
	return 0;
}

int spool_open(int dirfd, const char *name, const struct keyring *ring,
	       struct spool **out)
{
	unsigned char id[ID_LEN], hdr[HDR_LEN];
	struct spool *s = NULL;
	size_t got;
	int err;

	*out = NULL;
	err = name_parse(name, id);
	if (err)
		return err;
	err = spool_alloc(ring, id, &s);
	if (err)
		return err;
	s->fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (s->fd < 0) {
		err = errno;
		goto out;
	}
	err = pread_upto(s->fd, hdr, HDR_LEN, 0, &got);
	if (err)
		goto out;
	if (got < HDR_LEN) {
		err = EBADMSG;
		goto out;
	}
	err = header_check(s, hdr);
	if (err) {
		log_warnx("spool %s: header does not authenticate", name);
		goto out;
	}
	err = repair_tail(s);
	if (err)
		goto out;
	*out = s;
	s = NULL;
out:
	spool_free(s);
	return err;
}

ssize_t spool_pwrite(struct spool *s, const void *buf, size_t len,
		     uint64_t off)
{
	const unsigned char *p = buf;
	size_t done = 0;
	int err = 0;

	if (len == 0)
		return 0;
	if (off > SPOOL_MAX_SIZE || len > SPOOL_MAX_SIZE - off)
		return -EFBIG;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (done < len) {
		uint64_t pos = off + done, k = pos / SPOOL_BLOCK;
		size_t in = (size_t)(pos % SPOOL_BLOCK);
		size_t n = SPOOL_BLOCK - in;

		if (n > len - done)
			n = len - done;
		if (n == SPOOL_BLOCK && k != s->cache_idx) {
			/* A whole block: no need to read what it replaces. */
			err = slot_write(s, k, p + done);
		} else {
			err = cache_load(s, k);
			if (!err) {
				memcpy(s->cache + in, p + done, n);
				s->cache_dirty = 1;
			}
		}
		if (err)
			break;
		done += n;
	}
	if (done > 0 && off + done > s->size) {
		s->size = off + done;
		s->hdr_dirty = 1;
	}
	return done > 0 ? (ssize_t)done : -err;
}

ssize_t spool_pread(struct spool *s, void *buf, size_t len, uint64_t off)
{
	unsigned char *p = buf;
	size_t done = 0;
	int err = 0, hole;

	if (off >= s->size)
		return 0;
	if (len > s->size - off)
		len = (size_t)(s->size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (done < len) {
		uint64_t pos = off + done, k = pos / SPOOL_BLOCK;
		size_t in = (size_t)(pos % SPOOL_BLOCK);
		size_t n = SPOOL_BLOCK - in;

		if (n > len - done)
			n = len - done;
		if (k == s->cache_idx) {
			memcpy(p + done, s->cache + in, n);
		} else {
			/* Read around the cache so that a reader does not
			 * force the writer's block to be sealed early. */
			err = slot_read(s, k, &hole);
			if (err)
				break;
			if (hole) {
				memset(p + done, 0, n);
			} else {
				memcpy(p + done, s->io + KEYS_NONCE_LEN + in,
				       n);
				sodium_memzero(s->io, SLOT_LEN);
			}
		}
		done += n;
	}
	return done > 0 ? (ssize_t)done : -err;
}

int spool_truncate(struct spool *s, uint64_t size)
{
	uint64_t k = size / SPOOL_BLOCK;
	size_t keep = (size_t)(size % SPOOL_BLOCK);

	if (size > SPOOL_MAX_SIZE)
		return EFBIG;
	if (size >= s->size) {
		/* Past the old size everything already reads as zeros. */
		if (size > s->size) {
			s->size = size;
			s->hdr_dirty = 1;
		}
		return 0;
	}
	if (s->cache_idx != NO_BLOCK && s->cache_idx >= nblocks(size))
		cache_drop(s);
	if (keep != 0) {
		/* Zero the tail of the new last block, so that growing again
		 * shows zeros there, not the old bytes. */
		int err = cache_load(s, k);
		if (err)
			return err;
		memset(s->cache + keep, 0, SPOOL_BLOCK - keep);
		s->cache_dirty = 1;
	}
	s->size = size;
	s->hdr_dirty = 1;
	return cut_file(s);
}

uint64_t spool_size(const struct spool *s)
{
	return s->size;
}

int spool_sync(struct spool *s)
{
	int err = cache_flush(s);

	if (!err)
		err = header_write(s);
	if (!err && fsync(s->fd) != 0)
		err = errno;
	return err;
}

int spool_flush(struct spool *s)
{
	int err = cache_flush(s);

	if (!err && s->hdr_dirty)
		err = header_write(s);
	return err;
}

void spool_close(struct spool *s)
{
	int err;

	if (!s)
		return;
	err = cache_flush(s);
	if (!err && s->hdr_dirty)
		err = header_write(s);
	if (err)
		log_warnx("spool %s: closing: %s", s->name, strerror(err));
	spool_free(s);
}

int spool_unlink(int dirfd, const char *name)
{
	unsigned char id[ID_LEN];

	if (name_parse(name, id) != 0)
		return EINVAL;
	if (unlinkat(dirfd, name, 0) != 0)
		return errno;
	return 0;
}
