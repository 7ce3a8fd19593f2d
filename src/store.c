/* The local-directory blob store. Every operation works relative to
 * directory descriptors opened once (openat and friends), so no path is
 * built by concatenation beyond "YYYY-MM-DD/c-NNNNNN.cvb", and durability
 * is explicit: a rename is followed by an fsync of each directory whose
 * entries changed. */
#include "callvault/store.h"
#include "callvault/call.h"
#include "callvault/clock.h"
#include "callvault/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOBS_DIR "blobs"
#define SPOOL_DIR "spool"
#define QUARANTINE_DIR "quarantine"
#define BLOB_SUFFIX ".cvb"
#define SPOOL_SUFFIX ".spool"
#define SPOOL_RANDOM 16
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)

_Static_assert(2 * SPOOL_RANDOM + sizeof SPOOL_SUFFIX <=
		       sizeof(((struct store_spool *)0)->name),
	       "spool name fits");

/* Immutable after store_open(), hence safe to share between threads. */
struct store {
	char *dir;
	int vault_fd;
	int blobs_fd;
	int spool_fd;
	int quarantine_fd;
};

static int mkdir_0700(int dirfd, const char *name)
{
	struct stat st;

	if (mkdirat(dirfd, name, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return errno;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno;
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static int fsync_dir(int fd)
{
	return fsync(fd) == 0 ? 0 : errno;
}

int store_create(const char *vault_dir)
{
	static const char *const dirs[] = { BLOBS_DIR, SPOOL_DIR,
					    QUARANTINE_DIR };
	int fd, err = 0;

	fd = open(vault_dir, DIR_FLAGS);
	if (fd < 0)
		return errno;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && !err; i++)
		err = mkdir_0700(fd, dirs[i]);
	if (!err)
		err = fsync_dir(fd);
	close(fd);
	return err;
}

int store_open(const char *vault_dir, struct store **out)
{
	struct store *s;
	int err = 0;

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return ENOMEM;
	s->vault_fd = s->blobs_fd = s->spool_fd = s->quarantine_fd = -1;
	s->dir = strdup(vault_dir);
	if (!s->dir) {
		err = ENOMEM;
		goto out;
	}
	s->vault_fd = open(vault_dir, DIR_FLAGS);
	if (s->vault_fd < 0) {
		err = errno;
		goto out;
	}
	s->blobs_fd = openat(s->vault_fd, BLOBS_DIR, DIR_FLAGS | O_NOFOLLOW);
	if (s->blobs_fd < 0) {
		err = errno;
		goto out;
	}
	s->spool_fd = openat(s->vault_fd, SPOOL_DIR, DIR_FLAGS | O_NOFOLLOW);
	if (s->spool_fd < 0) {
		err = errno;
		goto out;
	}
	s->quarantine_fd = openat(s->vault_fd, QUARANTINE_DIR,
				  DIR_FLAGS | O_NOFOLLOW);
	if (s->quarantine_fd < 0) {
		err = errno;
		goto out;
	}
	*out = s;
	s = NULL;
out:
	store_close(s);
	return err;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->spool_fd != -1)
		close(s->spool_fd);
	if (s->quarantine_fd != -1)
		close(s->quarantine_fd);
	if (s->blobs_fd != -1)
		close(s->blobs_fd);
	if (s->vault_fd != -1)
		close(s->vault_fd);
	free(s->dir);
	free(s);
}

const char *store_dir(const struct store *s)
{
	return s->dir;
}

int store_spool_create(struct store *s, struct store_spool *sp)
{
	static const char hexdig[] = "0123456789abcdef";
	unsigned char rnd[SPOOL_RANDOM];
	int err = EEXIST;

	sp->fd = -1;
	sp->name[0] = '\0';
	for (int attempt = 0; attempt < 4; attempt++) {
		size_t i;

		if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
			return EIO;
		for (i = 0; i < sizeof rnd; i++) {
			sp->name[2 * i] = hexdig[rnd[i] >> 4];
			sp->name[2 * i + 1] = hexdig[rnd[i] & 15];
		}
		memcpy(sp->name + 2 * i, SPOOL_SUFFIX, sizeof SPOOL_SUFFIX);
		sp->fd = openat(s->spool_fd, sp->name,
				O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (sp->fd >= 0)
			return 0;
		err = errno;
		if (err != EEXIST)
			break;
	}
	sp->name[0] = '\0';
	return err;
}

static void blob_name(int32_t day, uint64_t num, char *out, size_t len)
{
	char d[CLOCK_DAY_LEN], id[CALL_ID_LEN];

	clock_format_day(day, d);
	call_id_format(num, id);
	snprintf(out, len, "%s/%s" BLOB_SUFFIX, d, id);
}

/* Moves spool `name` to `dayfd`/`target` without replacing anything. */
static int rename_noreplace(int spool_fd, const char *name, int dayfd,
			    const char *target)
{
	if (renameat2(spool_fd, name, dayfd, target, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return errno;
	/* File systems without RENAME_NOREPLACE: link refuses to replace. */
	if (linkat(spool_fd, name, dayfd, target, 0) != 0)
		return errno;
	if (unlinkat(spool_fd, name, 0) != 0)
		log_warn("store: spool %s committed but not removed", name);
	return 0;
}

int store_spool_commit(struct store *s, struct store_spool *sp, int32_t day,
		       uint64_t num)
{
	char d[CLOCK_DAY_LEN], id[CALL_ID_LEN], target[CALL_ID_LEN + 8];
	int dayfd = -1, err = 0;

	if (sp->fd < 0 || !sp->name[0])
		return EINVAL;
	if (fsync(sp->fd) != 0)
		return errno;
	clock_format_day(day, d);
	call_id_format(num, id);
	snprintf(target, sizeof target, "%s" BLOB_SUFFIX, id);
	/* A concurrent unlink may remove an empty day directory between our
	 * mkdir and the rename: try again then. */
	for (int attempt = 0; attempt < 3; attempt++) {
		if (mkdirat(s->blobs_fd, d, 0700) == 0) {
			err = fsync_dir(s->blobs_fd);
			if (err)
				goto out;
		} else if (errno != EEXIST) {
			err = errno;
			goto out;
		}
		dayfd = openat(s->blobs_fd, d, DIR_FLAGS | O_NOFOLLOW);
		if (dayfd < 0) {
			err = errno;
			if (err == ENOENT)
				continue;
			goto out;
		}
		err = rename_noreplace(s->spool_fd, sp->name, dayfd, target);
		if (err != ENOENT)
			break;
		close(dayfd);
		dayfd = -1;
	}
	if (err)
		goto out;
	err = fsync_dir(dayfd);
	if (!err)
		err = fsync_dir(s->spool_fd);
	/* A commit that may not survive a crash is no commit: take the blob
	 * back so that the caller's view (failed) matches the disk's. */
	if (err)
		unlinkat(dayfd, target, 0);
	close(sp->fd);
	sp->fd = -1;
	sp->name[0] = '\0';
out:
	if (dayfd != -1)
		close(dayfd);
	return err;
}

void store_spool_abort(struct store *s, struct store_spool *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	if (sp->name[0] && unlinkat(s->spool_fd, sp->name, 0) == 0)
		fsync_dir(s->spool_fd);
	sp->name[0] = '\0';
}

int store_blob_open(struct store *s, int32_t day, uint64_t num, int *fd_out)
{
	char rel[CLOCK_DAY_LEN + CALL_ID_LEN + 8];
	int fd;

	blob_name(day, num, rel, sizeof rel);
	fd = openat(s->blobs_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno;
	*fd_out = fd;
	return 0;
}

int store_blob_unlink(struct store *s, int32_t day, uint64_t num)
{
	char d[CLOCK_DAY_LEN], id[CALL_ID_LEN], target[CALL_ID_LEN + 8];
	int dayfd, err = 0;

	clock_format_day(day, d);
	call_id_format(num, id);
	snprintf(target, sizeof target, "%s" BLOB_SUFFIX, id);
	dayfd = openat(s->blobs_fd, d, DIR_FLAGS | O_NOFOLLOW);
	if (dayfd < 0)
		return errno;
	if (unlinkat(dayfd, target, 0) != 0) {
		err = errno;
		close(dayfd);
		return err;
	}
	err = fsync_dir(dayfd);
	close(dayfd);
	if (unlinkat(s->blobs_fd, d, AT_REMOVEDIR) == 0) {
		int e2 = fsync_dir(s->blobs_fd);
		if (!err)
			err = e2;
	} else if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT) {
		log_warn("store: removing empty day directory %s", d);
	}
	return err;
}

int store_blobs_unlink(struct store *s, const struct store_blob_ref *v,
		       size_t n, int *errs)
{
	char d[CLOCK_DAY_LEN], id[CALL_ID_LEN], target[CALL_ID_LEN + 8];
	size_t first = 0;
	int failed = 0;

	/* One day directory at a time: unlink its blobs, fsync it once. */
	while (first < n) {
		size_t end = first;
		int dayfd, err = 0;

		while (end < n && v[end].day == v[first].day)
			end++;
		clock_format_day(v[first].day, d);
		dayfd = openat(s->blobs_fd, d, DIR_FLAGS | O_NOFOLLOW);
		if (dayfd < 0)
			err = errno;
		for (size_t i = first; i < end; i++) {
			errs[i] = err;
			if (err)
				continue;
			call_id_format(v[i].num, id);
			snprintf(target, sizeof target, "%s" BLOB_SUFFIX, id);
			if (unlinkat(dayfd, target, 0) != 0)
				errs[i] = errno;
		}
		if (dayfd >= 0) {
			err = fsync_dir(dayfd);
			close(dayfd);
			/* Not durable: report every unlink of the day. */
			for (size_t i = first; err && i < end; i++)
				if (errs[i] == 0)
					errs[i] = err;
			if (unlinkat(s->blobs_fd, d, AT_REMOVEDIR) == 0)
				fsync_dir(s->blobs_fd);
		}
		for (size_t i = first; i < end; i++)
			if (errs[i] && errs[i] != ENOENT)
				failed = 1;
		first = end;
	}
	return failed ? EIO : 0;
}

/* A growable list of names or numbers. */
struct list {
	void *v;
	size_t n, cap, size;
};

static int list_push(struct list *l, const void *item)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		void *v = reallocarray(l->v, cap, l->size);
		if (!v)
			return ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy((char *)l->v + l->n * l->size, item, l->size);
	l->n++;
	return 0;
}

/* Reads the names in directory `name` under `dirfd` (a fresh descriptor,
 * so concurrent listings do not share a directory offset) and hands each
 * to `take`. */
static int scan_dir(int dirfd, const char *name,
		    int (*take)(void *ctx, const char *entry), void *ctx)
{
	struct dirent *de;
	DIR *dir;
	int fd, err = 0;

	fd = openat(dirfd, name, DIR_FLAGS | O_NOFOLLOW);
	if (fd < 0)
		return errno;
	dir = fdopendir(fd);
	if (!dir) {
		err = errno;
		close(fd);
		return err;
	}
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de) {
			err = errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		err = take(ctx, de->d_name);
		if (err)
			break;
	}
	closedir(dir);
	return err;
}

static int take_day(void *ctx, const char *entry)
{
	int32_t day;

	if (clock_parse_day(entry, &day) != 0) {
		log_warnx("store: skipping blobs/%s: not a day directory",
			  entry);
		return 0;
	}
	return list_push(ctx, &day);
}

struct day_scan {
	struct list nums;
	const char *day;
};

static int take_blob(void *ctx, const char *entry)
{
	struct day_scan *ds = ctx;
	char id[CALL_ID_LEN];
	size_t len = strlen(entry), sl = strlen(BLOB_SUFFIX);
	uint64_t num;

	if (len <= sl || len - sl >= sizeof id ||
	    strcmp(entry + len - sl, BLOB_SUFFIX) != 0)
		goto skip;
	memcpy(id, entry, len - sl);
	id[len - sl] = '\0';
	if (call_id_parse(id, &num) != 0)
		goto skip;
	return list_push(&ds->nums, &num);
skip:
	log_warnx("store: skipping blobs/%s/%s: not a blob name", ds->day,
		  entry);
	return 0;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int store_blob_foreach(struct store *s,
		       int (*fn)(void *ctx, int32_t day, uint64_t num),
		       void *ctx)
{
	struct list days = { NULL, 0, 0, sizeof(int32_t) };
	int err;

	err = scan_dir(s->blobs_fd, ".", take_day, &days);
	if (err)
		goto out;
	if (days.n)
		qsort(days.v, days.n, days.size, cmp_i32);
	for (size_t i = 0; i < days.n && !err; i++) {
		int32_t day = ((int32_t *)days.v)[i];
		char d[CLOCK_DAY_LEN];
		struct day_scan ds = { { NULL, 0, 0, sizeof(uint64_t) }, d };

		clock_format_day(day, d);
		err = scan_dir(s->blobs_fd, d, take_blob, &ds);
		if (err == ENOENT) /* removed since we listed it */
			err = 0;
		if (!err && ds.nums.n)
			qsort(ds.nums.v, ds.nums.n, ds.nums.size, cmp_u64);
		for (size_t j = 0; j < ds.nums.n && !err; j++)
			err = fn(ctx, day, ((uint64_t *)ds.nums.v)[j]);
		free(ds.nums.v);
	}
out:
	free(days.v);
	return err;
}

static int take_spool(void *ctx, const char *entry)
{
	size_t len = strlen(entry), sl = strlen(SPOOL_SUFFIX);
	char *copy;
	int err;

	if (len <= sl || strcmp(entry + len - sl, SPOOL_SUFFIX) != 0) {
		/* Labels of incoming/ spool files live beside them. */
		if (!strstr(entry, ".label"))
			log_warnx("store: skipping spool/%s: not a spool file",
				  entry);
		return 0;
	}
	copy = strdup(entry);
	if (!copy)
		return ENOMEM;
	err = list_push(ctx, &copy);
	if (err)
		free(copy);
	return err;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_spool_foreach(struct store *s,
			int (*fn)(void *ctx, const char *name), void *ctx)
{
	struct list names = { NULL, 0, 0, sizeof(char *) };
	char **v;
	int err;

	/* Collected first, so that fn may remove what it is given. */
	err = scan_dir(s->spool_fd, ".", take_spool, &names);
	v = names.v;
	if (!err && names.n)
		qsort(v, names.n, names.size, cmp_str);
	for (size_t i = 0; i < names.n && !err; i++)
		err = fn(ctx, v[i]);
	for (size_t i = 0; i < names.n; i++)
		free(v[i]);
	free(v);
	return err;
}

int store_spool_remove(struct store *s, const char *name)
{
	if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return EINVAL;
	if (unlinkat(s->spool_fd, name, 0) != 0)
		return errno;
	return fsync_dir(s->spool_fd);
}

int store_spool_dirfd(const struct store *s)
{
	return s->spool_fd;
}

/* Moves `name` from directory `from_fd` into quarantine/ as `qname` and
 * writes QNAME.reason beside it; fsyncs both directories. */
static int quarantine_move(struct store *s, int from_fd, const char *name,
			   const char *qname, const char *reason)
{
	char rname[NAME_MAX + 1];
	int fd, err = 0;
	size_t len = strlen(reason);

	if (!*qname || strchr(qname, '/') || qname[0] == '.' ||
	    snprintf(rname, sizeof rname, "%s.reason", qname) >=
		    (int)sizeof rname)
		return EINVAL;
	if (renameat(from_fd, name, s->quarantine_fd, qname) != 0)
		return errno;
	fd = openat(s->quarantine_fd, rname,
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = errno;
	} else {
		if (write(fd, reason, len) != (ssize_t)len ||
		    write(fd, "\n", 1) != 1 || fsync(fd) != 0)
			err = errno ? errno : EIO;
		close(fd);
	}
	if (fsync(s->quarantine_fd) != 0 && !err)
		err = errno;
	if (fsync(from_fd) != 0 && !err)
		err = errno;
	return err;
}

int store_quarantine(struct store *s, const char *name, const char *reason)
{
	int err;

	if (!*name || strchr(name, '/') || name[0] == '.')
		return EINVAL;
	err = quarantine_move(s, s->spool_fd, name, name, reason);
	if (!err)
		store_label_remove(s, name);
	return err;
}

int store_blob_quarantine(struct store *s, int32_t day, uint64_t num,
			  const char *reason)
{
	char d[CLOCK_DAY_LEN], id[CALL_ID_LEN], name[CALL_ID_LEN + 8];
	char qname[CLOCK_DAY_LEN + CALL_ID_LEN + 16];
	int dayfd, err;

	clock_format_day(day, d);
	call_id_format(num, id);
	snprintf(name, sizeof name, "%s" BLOB_SUFFIX, id);
	snprintf(qname, sizeof qname, "blob-%s-%s" BLOB_SUFFIX, d, id);
	dayfd = openat(s->blobs_fd, d, DIR_FLAGS | O_NOFOLLOW);
	if (dayfd < 0)
		return errno;
	err = quarantine_move(s, dayfd, name, qname, reason);
	close(dayfd);
	return err;
}

int store_quarantine_dirfd(const struct store *s)
{
	return s->quarantine_fd;
}

static void read_reason(int dirfd, const char *name, char *out, size_t len)
{
	char rname[NAME_MAX + 1];
	ssize_t n;
	int fd;

	out[0] = '\0';
	if (snprintf(rname, sizeof rname, "%s.reason", name) >=
	    (int)sizeof rname)
		return;
	fd = openat(dirfd, rname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	n = read(fd, out, len - 1);
	close(fd);
	if (n < 0)
		n = 0;
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

/* Quarantined spool files; their .reason files are read with them. */
static int take_quarantined(void *ctx, const char *entry)
{
	size_t len = strlen(entry), sl = strlen(SPOOL_SUFFIX),
	       bl = strlen(BLOB_SUFFIX);
	char *copy;
	int err;

	/* Sealed spool files of recorders, and blobs rebuild refused. */
	if (!(len > sl && strcmp(entry + len - sl, SPOOL_SUFFIX) == 0) &&
	    !(len > bl && strcmp(entry + len - bl, BLOB_SUFFIX) == 0))
		return 0;
	copy = strdup(entry);
	if (!copy)
		return ENOMEM;
	err = list_push(ctx, &copy);
	if (err)
		free(copy);
	return err;
}

int store_quarantine_foreach(struct store *s,
			     int (*fn)(void *ctx, const char *name,
				       const char *reason),
			     void *ctx)
{
	struct list names = { NULL, 0, 0, sizeof(char *) };
	char **v, reason[1024];
	int err;

	err = scan_dir(s->quarantine_fd, ".", take_quarantined, &names);
	v = names.v;
	if (!err && names.n)
		qsort(v, names.n, names.size, cmp_str);
	for (size_t i = 0; i < names.n && !err; i++) {
		read_reason(s->quarantine_fd, v[i], reason, sizeof reason);
		err = fn(ctx, v[i], reason);
	}
	for (size_t i = 0; i < names.n; i++)
		free(v[i]);
	free(v);
	return err;
}

int store_quarantine_drop(struct store *s, const char *name)
{
	char rname[NAME_MAX + 1];

	if (!*name || strchr(name, '/') || name[0] == '.' ||
	    snprintf(rname, sizeof rname, "%s.reason", name) >=
		    (int)sizeof rname)
		return EINVAL;
	if (unlinkat(s->quarantine_fd, name, 0) != 0)
		return errno;
	unlinkat(s->quarantine_fd, rname, 0);
	if (fsync(s->quarantine_fd) != 0)
		return errno;
	return 0;
}

/* "in-abc.spool" -> "in-abc.label" (or ".label.tmp"). */
static int label_name(const char *spool_name, const char *suffix, char *out,
		      size_t len)
{
	size_t n = strlen(spool_name), sl = strlen(SPOOL_SUFFIX);

	if (n <= sl || strcmp(spool_name + n - sl, SPOOL_SUFFIX) != 0 ||
	    strchr(spool_name, '/') || spool_name[0] == '.')
		return EINVAL;
	if (snprintf(out, len, "%.*s%s", (int)(n - sl), spool_name, suffix) >=
	    (int)len)
		return EINVAL;
	return 0;
}

int store_label_write(struct store *s, const char *spool_name,
		      const void *buf, size_t len, int durable)
{
	char tmp[NAME_MAX + 1], name[NAME_MAX + 1];
	int fd, err = 0;

	if (label_name(spool_name, ".label.tmp", tmp, sizeof tmp) ||
	    label_name(spool_name, ".label", name, sizeof name))
		return EINVAL;
	fd = openat(s->spool_fd, tmp,
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno;
	if (write(fd, buf, len) != (ssize_t)len)
		err = errno ? errno : EIO;
	if (!err && durable && fsync(fd) != 0)
		err = errno;
	close(fd);
	if (!err && renameat(s->spool_fd, tmp, s->spool_fd, name) != 0)
		err = errno;
	if (!err && durable && fsync(s->spool_fd) != 0)
		err = errno;
	if (err)
		unlinkat(s->spool_fd, tmp, 0);
	return err;
}

int store_label_read(struct store *s, const char *spool_name, void *buf,
		     size_t cap, size_t *len)
{
	char name[NAME_MAX + 1];
	ssize_t n;
	int fd, err = 0;

	if (label_name(spool_name, ".label", name, sizeof name))
		return EINVAL;
	fd = openat(s->spool_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno;
	n = read(fd, buf, cap);
	if (n < 0)
		err = errno;
	else if ((size_t)n == cap)
		err = EFBIG;
	else
		*len = (size_t)n;
	close(fd);
	return err;
}

void store_label_remove(struct store *s, const char *spool_name)
{
	char name[NAME_MAX + 1];

	if (label_name(spool_name, ".label", name, sizeof name) == 0)
		unlinkat(s->spool_fd, name, 0);
}

static int take_label(void *ctx, const char *entry)
{
	size_t n = strlen(entry);
	char *copy;
	int err;

	if (!((n > 6 && strcmp(entry + n - 6, ".label") == 0) ||
	      (n > 10 && strcmp(entry + n - 10, ".label.tmp") == 0)))
		return 0;
	copy = strdup(entry);
	if (!copy)
		return ENOMEM;
	err = list_push(ctx, &copy);
	if (err)
		free(copy);
	return err;
}

int store_label_prune(struct store *s, unsigned *removed)
{
	struct list names = { NULL, 0, 0, sizeof(char *) };
	char **v, spool[NAME_MAX + 1];
	int err;

	*removed = 0;
	err = scan_dir(s->spool_fd, ".", take_label, &names);
	v = names.v;
	for (size_t i = 0; i < names.n && !err; i++) {
		size_t n = strlen(v[i]);
		int tmp = n > 10 && strcmp(v[i] + n - 10, ".label.tmp") == 0;

		if (!tmp) {
			/* A label whose spool file is there is in use. */
			if (snprintf(spool, sizeof spool, "%.*s%s",
				     (int)(n - 6), v[i], SPOOL_SUFFIX) >=
			    (int)sizeof spool)
				continue;
			if (faccessat(s->spool_fd, spool, F_OK,
				      AT_SYMLINK_NOFOLLOW) == 0 ||
			    errno != ENOENT)
				continue;
		}
		if (unlinkat(s->spool_fd, v[i], 0) == 0)
			(*removed)++;
		else if (errno != ENOENT)
			err = errno;
	}
	if (!err && *removed)
		err = fsync_dir(s->spool_fd);
	for (size_t i = 0; i < names.n; i++)
		free(v[i]);
	free(v);
	return err;
}

int store_claim_spool(struct store *s)
{
	if (flock(s->spool_fd, LOCK_EX | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? EBUSY : errno;
	return 0;
}
