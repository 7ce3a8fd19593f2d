/* The encrypted catalog snapshot: format in docs/format.md ("Catalog
 * snapshot"). Sealing goes through keys_seal/keys_open (XChaCha20-Poly1305
 * with a random nonce per chunk); the database images come from the
 * catalog module's online backup. */
#include "callvault/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "callvault/bytes.h"
#include "callvault/catalog_backup.h"
#include "callvault/clock.h"
#include "callvault/fdio.h"
#include "callvault/log.h"

#define MAGIC "CVSNAP\r\n"
#define MAGIC_LEN 8
#define VERSION 1
#define ALGORITHM 1 /* XChaCha20-Poly1305-IETF through keys_seal */
#define HEADER_LEN 128
#define CHUNK_SIZE 65536
#define CHUNK_MIN 1024
#define CHUNK_MAX (16U << 20)
#define CHUNK_AD_LEN (HEADER_LEN + 9)
#define FILE_ID_LEN 16
#define MAC_LEN 32
#define RECORD_LEN 12 /* le32 part, le64 length */
/* A vault's databases are far smaller; a forged size must not make a
 * reader allocate the machine away. */
#define PLAIN_MAX (1ULL << 36)
#define CONFIG_MAX (1U << 20)
#define CACHE_DIR "snapshot"

/* Header fields. */
#define H_VERSION 8
#define H_ALGORITHM 10
#define H_CHUNK 12
#define H_GENERATION 16
#define H_CREATED 24
#define H_SIZE 32
#define H_FILE_ID 40
#define H_CHECK 56
#define H_MAC 88
#define H_RESERVED 120

_Static_assert(H_CHECK + KEYS_CHECK_LEN == H_MAC, "header layout");
_Static_assert(H_MAC + MAC_LEN == H_RESERVED, "header layout");
_Static_assert(H_RESERVED + 8 == HEADER_LEN, "header layout");

static const char *const part_files[SNAPSHOT_NPARTS + 1] = {
	[SNAPSHOT_CATALOG] = "catalog.db",
	[SNAPSHOT_KEYSTORE] = "keystore.db",
	[SNAPSHOT_CONFIG] = "callvault.conf",
};

const char *snapshot_part_file(enum snapshot_part part)
{
	if (part < SNAPSHOT_CATALOG || part > SNAPSHOT_NPARTS)
		return NULL;
	return part_files[part];
}

/* --- keys -------------------------------------------------------------- */

/* The sealing key and the content-hash key, two keys derived from the
 * snapshot subkey, so that one key is never used with two primitives. */
struct snap_keys {
	struct secret enc, mac;
};

static void snap_keys_free(struct snap_keys *k)
{
	keys_secret_free(&k->enc);
	keys_secret_free(&k->mac);
}

static int snap_keys_new(const struct keyring *ring, struct snap_keys *k)
{
	const unsigned char *sub = keys_subkey(ring, KEYS_SNAPSHOT);
	static const char enc_label[] = "cvsnap-seal-v1";
	static const char mac_label[] = "cvsnap-hash-v1";
	struct keys_part p;

	k->enc = keys_secret_new();
	k->mac = keys_secret_new();
	if (!sub || !k->enc.b || !k->mac.b) {
		snap_keys_free(k);
		return ENOMEM;
	}
	p = (struct keys_part){ enc_label, sizeof enc_label - 1 };
	keys_mac(sub, &p, 1, k->enc.b);
	p = (struct keys_part){ mac_label, sizeof mac_label - 1 };
	keys_mac(sub, &p, 1, k->mac.b);
	return 0;
}

/* --- chunks ------------------------------------------------------------ */

static uint64_t chunk_count(uint64_t plain, uint32_t chunk)
{
	uint64_t n = (plain + chunk - 1) / chunk;

	return n ? n : 1;
}

static void chunk_ad(const unsigned char header[HEADER_LEN], uint64_t i,
		     int last, unsigned char ad[CHUNK_AD_LEN])
{
	memcpy(ad, header, HEADER_LEN);
	le64_put(ad + HEADER_LEN, i);
	ad[HEADER_LEN + 8] = last ? 1 : 0;
}

/* --- plaintext --------------------------------------------------------- */

struct payload {
	unsigned char *b;
	size_t len;
};

static void payload_free(struct payload *p)
{
	if (p->b) {
		explicit_bzero(p->b, p->len);
		free(p->b);
	}
	p->b = NULL;
	p->len = 0;
}

static int read_small_file(const char *path, unsigned char **buf, size_t *len)
{
	struct stat sb;
	unsigned char *b = NULL;
	int fd, err = 0;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return errno;
	if (fstat(fd, &sb) == -1) {
		err = errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > CONFIG_MAX) {
		err = EFBIG;
		goto out;
	}
	b = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!b) {
		err = ENOMEM;
		goto out;
	}
	err = fdio_pread_all(fd, b, (size_t)sb.st_size, 0);
	if (err)
		goto out;
	*buf = b;
	*len = (size_t)sb.st_size;
	b = NULL;
out:
	free(b);
	close(fd);
	return err;
}

static int join(char *out, size_t cap, const char *dir, const char *name)
{
	return snprintf(out, cap, "%s/%s", dir, name) < (int)cap ? 0
								 : ENAMETOOLONG;
}

/* The plaintext of a snapshot: one record per part present, in part
 * order, then an end record. */
static int payload_build(const char *vault_dir, struct payload *p)
{
	char db_path[2][PATH_MAX], conf_path[PATH_MAX];
	const char *paths[2] = { db_path[0], db_path[1] };
	struct catalog_image img[2] = { { 0 } };
	unsigned char *conf = NULL;
	size_t conf_len = 0, total = RECORD_LEN, off = 0;
	const unsigned char *data[SNAPSHOT_NPARTS + 1] = { 0 };
	size_t len[SNAPSHOT_NPARTS + 1] = { 0 };
	int err;

	memset(p, 0, sizeof *p);
	err = join(db_path[0], PATH_MAX, vault_dir,
		   part_files[SNAPSHOT_CATALOG]);
	if (!err)
		err = join(db_path[1], PATH_MAX, vault_dir,
			   part_files[SNAPSHOT_KEYSTORE]);
	if (!err)
		err = join(conf_path, sizeof conf_path, vault_dir,
			   part_files[SNAPSHOT_CONFIG]);
	if (err)
		return err;
	err = catalog_backup_images(paths, 2, img);
	if (err)
		return err;
	if (!img[0].buf) {
		/* A vault without its catalog has nothing to snapshot;
		 * serving an empty one would look like a valid backup. */
		log_warnx("snapshot: %s: no catalog", vault_dir);
		err = ENOENT;
		goto out;
	}
	err = read_small_file(conf_path, &conf, &conf_len);
	if (err == ENOENT) {
		err = 0;
	} else if (err) {
		log_warnx("snapshot: %s: %s", conf_path, strerror(err));
		goto out;
	}
	data[SNAPSHOT_CATALOG] = img[0].buf;
	len[SNAPSHOT_CATALOG] = img[0].len;
	data[SNAPSHOT_KEYSTORE] = img[1].buf;
	len[SNAPSHOT_KEYSTORE] = img[1].len;
	data[SNAPSHOT_CONFIG] = conf;
	len[SNAPSHOT_CONFIG] = conf_len;
	for (int i = 1; i <= SNAPSHOT_NPARTS; i++)
		if (data[i])
			total += RECORD_LEN + len[i];
	if (total > PLAIN_MAX) {
		err = EFBIG;
		goto out;
	}
	p->b = malloc(total);
	if (!p->b) {
		err = ENOMEM;
		goto out;
	}
	for (int i = 1; i <= SNAPSHOT_NPARTS; i++) {
		if (!data[i])
			continue;
		le32_put(p->b + off, (uint32_t)i);
		le64_put(p->b + off + 4, len[i]);
		memcpy(p->b + off + RECORD_LEN, data[i], len[i]);
		off += RECORD_LEN + len[i];
	}
	memset(p->b + off, 0, RECORD_LEN); /* end: part 0, length 0 */
	p->len = total;
out:
	catalog_image_free(&img[0]);
	catalog_image_free(&img[1]);
	free(conf);
	return err;
}

static void payload_mac(const struct snap_keys *k, const struct payload *p,
			unsigned char mac[MAC_LEN])
{
	struct keys_part part = { p->b, p->len };

	keys_mac(k->mac.b, &part, 1, mac);
}

/* --- header ------------------------------------------------------------ */

struct header_info {
	uint32_t chunk;
	uint64_t generation, size;
	int64_t created_ms;
	unsigned char mac[MAC_LEN];
};

/* Checks what can be checked without decrypting: EINVAL for a file that
 * is not a snapshot, EBADMSG for a damaged header, EACCES for another
 * vault's key. The rest of the header is authenticated by every chunk. */
static int header_parse(const unsigned char h[HEADER_LEN],
			const struct keyring *ring, struct header_info *hi)
{
	unsigned char check[KEYS_CHECK_LEN];
	static const unsigned char zero[8];

	if (memcmp(h, MAGIC, MAGIC_LEN) != 0 ||
	    le16_get(h + H_VERSION) != VERSION)
		return EINVAL;
	hi->chunk = le32_get(h + H_CHUNK);
	hi->generation = le64_get(h + H_GENERATION);
	hi->created_ms = (int64_t)le64_get(h + H_CREATED);
	hi->size = le64_get(h + H_SIZE);
	memcpy(hi->mac, h + H_MAC, MAC_LEN);
	if (le16_get(h + H_ALGORITHM) != ALGORITHM || hi->chunk < CHUNK_MIN ||
	    hi->chunk > CHUNK_MAX || hi->size > PLAIN_MAX ||
	    memcmp(h + H_RESERVED, zero, sizeof zero) != 0)
		return EBADMSG;
	keys_check_value(ring, check);
	if (!keys_check_equal(check, h + H_CHECK))
		return EACCES;
	return 0;
}

/* The header of the file at `path`, if it is a snapshot of this key. */
static int header_read(const char *path, const struct keyring *ring,
		       struct header_info *hi)
{
	unsigned char h[HEADER_LEN];
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return errno;
	err = fdio_pread_all(fd, h, sizeof h, 0);
	close(fd);
	if (err)
		return err == EIO ? EINVAL : err;
	return header_parse(h, ring, hi);
}

/* --- writing ----------------------------------------------------------- */

static int fsync_dir(const char *dir)
{
	int fd, err = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return errno;
	if (fsync(fd) == -1)
		err = errno;
	close(fd);
	return err;
}

/* Makes a new directory entry for `path` durable. */
static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;

	if (!slash)
		return fsync_dir(".");
	if (len == 0)
		len = 1;
	if (len >= sizeof dir)
		return ENAMETOOLONG;
	memcpy(dir, path, len);
	dir[len] = '\0';
	return fsync_dir(dir);
}

/* Writes the sealed snapshot of `p` to `fd`. */
static int seal_to(int fd, const struct snap_keys *k,
		   const struct keyring *ring, const struct payload *p,
		   uint64_t generation, const unsigned char mac[MAC_LEN])
{
	unsigned char h[HEADER_LEN], ad[CHUNK_AD_LEN], *out = NULL;
	uint64_t n = chunk_count(p->len, CHUNK_SIZE), off = HEADER_LEN;
	int err;

	memset(h, 0, sizeof h);
	memcpy(h, MAGIC, MAGIC_LEN);
	le16_put(h + H_VERSION, VERSION);
	le16_put(h + H_ALGORITHM, ALGORITHM);
	le32_put(h + H_CHUNK, CHUNK_SIZE);
	le64_put(h + H_GENERATION, generation);
	le64_put(h + H_CREATED, (uint64_t)clock_now_ms());
	le64_put(h + H_SIZE, p->len);
	keys_random(h + H_FILE_ID, FILE_ID_LEN);
	keys_check_value(ring, h + H_CHECK);
	memcpy(h + H_MAC, mac, MAC_LEN);
	err = fdio_pwrite_all(fd, h, sizeof h, 0);
	if (err)
		return err;
	out = malloc(CHUNK_SIZE + KEYS_SEAL_OVERHEAD);
	if (!out)
		return ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		size_t from = (size_t)(i * CHUNK_SIZE);
		size_t len = p->len - from < CHUNK_SIZE ? p->len - from
							: CHUNK_SIZE;

		chunk_ad(h, i, i == n - 1, ad);
		err = keys_seal(k->enc.b, ad, sizeof ad, p->b + from, len, out);
		if (!err)
			err = fdio_pwrite_all(fd, out, len + KEYS_SEAL_OVERHEAD,
					      off);
		if (err)
			break;
		off += len + KEYS_SEAL_OVERHEAD;
	}
	free(out);
	return err;
}

/* Writes `p` as a new snapshot at `path`: a temporary file beside it,
 * fsynced, renamed over it, and the directory fsynced. */
static int write_file(const char *path, const struct snap_keys *k,
		      const struct keyring *ring, const struct payload *p,
		      uint64_t generation, const unsigned char mac[MAC_LEN])
{
	char tmp[PATH_MAX];
	unsigned char rnd[8];
	int fd = -1, err = 0;

	keys_random(rnd, sizeof rnd);
	if (snprintf(tmp, sizeof tmp, "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x",
		     path, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
		     rnd[6], rnd[7]) >= (int)sizeof tmp)
		return ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		return errno;
	err = seal_to(fd, k, ring, p, generation, mac);
	if (!err && fsync(fd) == -1)
		err = errno;
	if (close(fd) == -1 && !err)
		err = errno;
	if (!err && rename(tmp, path) == -1)
		err = errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	return fsync_dir_of(path);
}

int snapshot_update(const char *vault_dir, const struct keyring *ring,
		    const char *path, int *changed)
{
	struct snap_keys k = { { NULL }, { NULL } };
	struct payload p = { NULL, 0 };
	struct header_info old;
	unsigned char mac[MAC_LEN];
	uint64_t generation = 1;
	int err;

	if (changed)
		*changed = 0;
	err = snap_keys_new(ring, &k);
	if (err)
		return err;
	err = payload_build(vault_dir, &p);
	if (err)
		goto out;
	payload_mac(&k, &p, mac);
	if (header_read(path, ring, &old) == 0) {
		if (keys_mac_equal(old.mac, mac))
			goto out; /* same content: keep the file as it is */
		generation = old.generation + 1;
	}
	err = write_file(path, &k, ring, &p, generation, mac);
	if (!err && changed)
		*changed = 1;
out:
	payload_free(&p);
	snap_keys_free(&k);
	return err;
}

/* --- the mount's cache ------------------------------------------------- */

struct snapshot_cache {
	pthread_mutex_t lock; /* serialises updates; protects last_ms */
	char *vault_dir;
	char dir[PATH_MAX];
	char path[PATH_MAX];
	const struct keyring *ring;
	int64_t interval_ms;
	int64_t last_ms; /* last look at the catalog; -1: never */
};

int snapshot_cache_new(const char *vault_dir, const struct keyring *ring,
		       int interval_s, struct snapshot_cache **out)
{
	struct snapshot_cache *c;

	*out = NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return ENOMEM;
	if (join(c->dir, sizeof c->dir, vault_dir, CACHE_DIR) ||
	    join(c->path, sizeof c->path, c->dir, SNAPSHOT_NAME)) {
		free(c);
		return ENAMETOOLONG;
	}
	c->vault_dir = strdup(vault_dir);
	if (!c->vault_dir) {
		free(c);
		return ENOMEM;
	}
	c->ring = ring;
	c->interval_ms = (int64_t)(interval_s > 0 ? interval_s : 0) * 1000;
	c->last_ms = -1;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void snapshot_cache_free(struct snapshot_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->vault_dir);
	free(c);
}

static void cache_refresh(struct snapshot_cache *c, int64_t now_ms)
{
	int err, changed = 0;

	/* A clock that jumps back also counts as due. */
	if (c->last_ms >= 0 && now_ms >= c->last_ms &&
	    now_ms - c->last_ms < c->interval_ms)
		return;
	c->last_ms = now_ms;
	if (mkdir(c->dir, 0700) == -1 && errno != EEXIST) {
		log_warn("snapshot: %s", c->dir);
		return;
	}
	err = snapshot_update(c->vault_dir, c->ring, c->path, &changed);
	if (err)
		log_warnx("snapshot: cannot update %s: %s", c->path,
			  strerror(err));
	else if (changed)
		log_info("snapshot: %s updated", c->path);
}

int snapshot_cache_stat(struct snapshot_cache *c, int64_t now_ms,
			struct stat *st)
{
	int err = 0;

	pthread_mutex_lock(&c->lock);
	cache_refresh(c, now_ms);
	if (stat(c->path, st) == -1)
		err = errno;
	pthread_mutex_unlock(&c->lock);
	return err;
}

int snapshot_cache_open(struct snapshot_cache *c, int *fd)
{
	*fd = open(c->path, O_RDONLY | O_CLOEXEC);
	return *fd == -1 ? errno : 0;
}

/* --- reading ----------------------------------------------------------- */

struct snapshot {
	struct payload plain;
	uint64_t generation;
	int64_t created_ms;
	const unsigned char *part[SNAPSHOT_NPARTS + 1];
	size_t len[SNAPSHOT_NPARTS + 1];
};

/* Splits the authenticated plaintext into its parts: each known part at
 * most once, in order, then the end record exactly at the end. */
static int parts_parse(struct snapshot *s)
{
	const unsigned char *b = s->plain.b;
	size_t off = 0, size = s->plain.len;
	uint32_t prev = 0;

	for (;;) {
		uint32_t part;
		uint64_t len;

		if (size - off < RECORD_LEN)
			return EBADMSG;
		part = le32_get(b + off);
		len = le64_get(b + off + 4);
		off += RECORD_LEN;
		if (part == 0)
			return len == 0 && off == size ? 0 : EBADMSG;
		if (part <= prev || part > SNAPSHOT_NPARTS ||
		    len > size - off)
			return EBADMSG;
		s->part[part] = b + off;
		s->len[part] = (size_t)len;
		off += (size_t)len;
		prev = part;
	}
}

int snapshot_open(const char *path, const struct keyring *ring,
		  struct snapshot **out)
{
	struct snap_keys k = { { NULL }, { NULL } };
	struct snapshot *s = NULL;
	struct header_info hi;
	struct stat sb;
	unsigned char h[HEADER_LEN], ad[CHUNK_AD_LEN], mac[MAC_LEN];
	unsigned char *in = NULL;
	uint64_t n, off = HEADER_LEN;
	int fd, err;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return errno;
	if (fstat(fd, &sb) == -1) {
		err = errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size < HEADER_LEN) {
		err = EINVAL;
		goto out;
	}
	err = fdio_pread_all(fd, h, sizeof h, 0);
	if (!err)
		err = header_parse(h, ring, &hi);
	if (err)
		goto out;
	/* The size must be exactly what the authenticated header says:
	 * truncation and extension fail before any decryption. */
	n = chunk_count(hi.size, hi.chunk);
	if ((uint64_t)sb.st_size !=
	    HEADER_LEN + n * KEYS_SEAL_OVERHEAD + hi.size) {
		err = EBADMSG;
		goto out;
	}
	err = snap_keys_new(ring, &k);
	if (err)
		goto out;
	s = calloc(1, sizeof *s);
	in = malloc(hi.chunk + KEYS_SEAL_OVERHEAD);
	if (!s || !in || !(s->plain.b = malloc(hi.size ? hi.size : 1))) {
		err = ENOMEM;
		goto out;
	}
	s->plain.len = hi.size;
	for (uint64_t i = 0; i < n; i++) {
		size_t from = (size_t)(i * hi.chunk);
		size_t len = hi.size - from < hi.chunk ? hi.size - from
						      : hi.chunk;

		err = fdio_pread_all(fd, in, len + KEYS_SEAL_OVERHEAD, off);
		if (err)
			goto out;
		chunk_ad(h, i, i == n - 1, ad);
		if (keys_open(k.enc.b, ad, sizeof ad, in,
			      len + KEYS_SEAL_OVERHEAD,
			      s->plain.b + from) != 0) {
			err = EBADMSG;
			goto out;
		}
		off += len + KEYS_SEAL_OVERHEAD;
	}
	payload_mac(&k, &s->plain, mac);
	if (!keys_mac_equal(mac, hi.mac) || parts_parse(s) != 0) {
		err = EBADMSG;
		goto out;
	}
	s->generation = hi.generation;
	s->created_ms = hi.created_ms;
	*out = s;
	s = NULL;
out:
	if (err == EBADMSG)
		log_warnx("snapshot: %s: does not authenticate (damaged or "
			  "altered)", path);
	free(in);
	snapshot_close(s);
	snap_keys_free(&k);
	close(fd);
	return err;
}

void snapshot_close(struct snapshot *s)
{
	if (!s)
		return;
	payload_free(&s->plain);
	free(s);
}

const unsigned char *snapshot_part(const struct snapshot *s,
				   enum snapshot_part part, size_t *len)
{
	if (part < SNAPSHOT_CATALOG || part > SNAPSHOT_NPARTS ||
	    !s->part[part]) {
		*len = 0;
		return NULL;
	}
	*len = s->len[part];
	return s->part[part];
}

uint64_t snapshot_generation(const struct snapshot *s)
{
	return s->generation;
}

int64_t snapshot_created_ms(const struct snapshot *s)
{
	return s->created_ms;
}

int snapshot_write_parts(const struct snapshot *s, const char *dir)
{
	char path[SNAPSHOT_NPARTS + 1][PATH_MAX], wal[PATH_MAX];
	int written[SNAPSHOT_NPARTS + 1] = { 0 };
	struct stat sb;
	int err = 0;

	for (int i = 1; i <= SNAPSHOT_NPARTS; i++) {
		if (!s->part[i])
			continue;
		err = join(path[i], PATH_MAX, dir, part_files[i]);
		if (err)
			return err;
		if (lstat(path[i], &sb) == 0)
			return EEXIST;
		if (i == SNAPSHOT_CONFIG)
			continue;
		if (snprintf(wal, sizeof wal, "%s-wal", path[i]) >=
		    (int)sizeof wal)
			return ENAMETOOLONG;
		if (lstat(wal, &sb) == 0)
			return EEXIST;
	}
	for (int i = 1; i <= SNAPSHOT_NPARTS && !err; i++) {
		int fd;

		if (!s->part[i])
			continue;
		fd = open(path[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			  0600);
		if (fd == -1) {
			err = errno;
			break;
		}
		written[i] = 1;
		err = fdio_pwrite_all(fd, s->part[i], s->len[i], 0);
		if (!err && fsync(fd) == -1)
			err = errno;
		if (close(fd) == -1 && !err)
			err = errno;
	}
	if (!err)
		err = fsync_dir(dir);
	if (err)
		for (int i = 1; i <= SNAPSHOT_NPARTS; i++)
			if (written[i])
				unlink(path[i]);
	return err;
}

int snapshot_read(const char *path, const struct keyring *ring,
		  const char *dir)
{
	struct snapshot *s = NULL;
	int err = snapshot_open(path, ring, &s);

	if (!err)
		err = snapshot_write_parts(s, dir);
	snapshot_close(s);
	return err;
}
