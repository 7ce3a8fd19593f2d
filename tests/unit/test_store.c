/* store: directories and modes, the spool life cycle, commit without
 * replacement, ordered listing, deletion and crash leftovers. */
#include "callvault/call.h"
#include "callvault/clock.h"
#include "callvault/store.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char vault[256];

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_vault(void)
{
	if (vault[0])
		nftw(vault, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A fresh vault directory with a store in it. */
static struct store *new_store(void)
{
	struct store *s = NULL;

	rm_vault();
	snprintf(vault, sizeof vault, "/tmp/test_store.XXXXXX");
	if (!mkdtemp(vault))
		abort();
	CHECK(store_create(vault) == 0);
	CHECK(store_open(vault, &s) == 0);
	return s;
}

static const char *vpath(const char *rel)
{
	static char p[512];
	snprintf(p, sizeof p, "%s/%s", vault, rel);
	return p;
}

static const char *blob_rel(int32_t day, uint64_t num)
{
	static char p[64];
	char d[CLOCK_DAY_LEN], id[CALL_ID_LEN];

	clock_format_day(day, d);
	call_id_format(num, id);
	snprintf(p, sizeof p, "blobs/%s/%s.cvb", d, id);
	return p;
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static int commit_text(struct store *s, int32_t day, uint64_t num,
		       const char *text)
{
	struct store_spool sp;
	int err = store_spool_create(s, &sp);

	if (err)
		return err;
	if (write(sp.fd, text, strlen(text)) != (ssize_t)strlen(text))
		err = EIO;
	if (!err)
		err = store_spool_commit(s, &sp, day, num);
	if (err)
		store_spool_abort(s, &sp);
	return err;
}

static void test_create_modes(void)
{
	static const char *const dirs[] = { "blobs", "spool", "quarantine" };
	struct store *s = new_store();
	struct store *s2 = NULL;
	struct stat st;

	for (size_t i = 0; i < 3; i++) {
		CHECK(stat(vpath(dirs[i]), &st) == 0);
		CHECK(S_ISDIR(st.st_mode));
		CHECK_INT(st.st_mode & 07777, 0700);
	}
	CHECK_STR(store_dir(s), vault);
	/* Creating again over an existing store is harmless. */
	CHECK(store_create(vault) == 0);
	CHECK(store_open(vault, &s2) == 0);
	store_close(s2);
	store_close(s);
	CHECK_INT(store_open("/nonexistent/vault", &s2), ENOENT);
	CHECK(s2 == NULL);
}

static void test_spool_commit(void)
{
	struct store *s = new_store();
	struct store_spool sp, sp2;
	struct stat st;
	char spool_path[512], buf[64] = "", d[CLOCK_DAY_LEN];
	int fd = -1;
	ssize_t n;

	CHECK(store_spool_create(s, &sp) == 0);
	CHECK(sp.fd >= 0);
	CHECK(strlen(sp.name) > 6 &&
	      strcmp(sp.name + strlen(sp.name) - 6, ".spool") == 0);
	snprintf(spool_path, sizeof spool_path, "%s/spool/%s", vault,
		 sp.name);
	CHECK(stat(spool_path, &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0600);
	CHECK(write(sp.fd, "first", 5) == 5);

	CHECK(store_spool_commit(s, &sp, 20000, 184) == 0);
	CHECK_INT(sp.fd, -1);
	CHECK(!exists(spool_path));
	CHECK(exists(vpath(blob_rel(20000, 184))));
	clock_format_day(20000, d);
	CHECK_STR(d, "2024-10-04");
	CHECK(exists(vpath("blobs/2024-10-04/c-000184.cvb")));
	CHECK(stat(vpath("blobs/2024-10-04"), &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0700);

	CHECK(store_blob_open(s, 20000, 184, &fd) == 0);
	n = read(fd, buf, sizeof buf - 1);
	CHECK_INT(n, 5);
	CHECK_STR(buf, "first");
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);

	/* A second commit of the same call replaces nothing. */
	CHECK(store_spool_create(s, &sp2) == 0);
	CHECK(write(sp2.fd, "second", 6) == 6);
	CHECK_INT(store_spool_commit(s, &sp2, 20000, 184), EEXIST);
	CHECK(store_blob_open(s, 20000, 184, &fd) == 0);
	memset(buf, 0, sizeof buf);
	CHECK_INT(read(fd, buf, sizeof buf - 1), 5);
	CHECK_STR(buf, "first");
	close(fd);
	/* The failed spool is still there until aborted. */
	snprintf(spool_path, sizeof spool_path, "%s/spool/%s", vault,
		 sp2.name);
	CHECK(exists(spool_path));
	store_spool_abort(s, &sp2);
	CHECK(!exists(spool_path));
	CHECK_INT(sp2.fd, -1);
	store_spool_abort(s, &sp2); /* twice is harmless */

	CHECK_INT(store_blob_open(s, 20000, 185, &fd), ENOENT);
	CHECK_INT(store_blob_open(s, 20001, 184, &fd), ENOENT);
	store_close(s);
}

static void test_abort(void)
{
	struct store *s = new_store();
	struct store_spool sp, failed = { .fd = -1, .name = "" };
	char path[512];

	CHECK(store_spool_create(s, &sp) == 0);
	CHECK(write(sp.fd, "x", 1) == 1);
	snprintf(path, sizeof path, "%s/spool/%s", vault, sp.name);
	CHECK(exists(path));
	store_spool_abort(s, &sp);
	CHECK(!exists(path));
	store_spool_abort(s, &failed);
	store_close(s);
}

struct seen {
	int32_t day[16];
	uint64_t num[16];
	int n, stop_at;
};

static int record(void *ctx, int32_t day, uint64_t num)
{
	struct seen *sn = ctx;

	if (sn->n < 16) {
		sn->day[sn->n] = day;
		sn->num[sn->n] = num;
	}
	sn->n++;
	return sn->n == sn->stop_at ? 42 : 0;
}

static void test_foreach_order(void)
{
	struct store *s = new_store();
	struct seen sn = { .n = 0 };
	static const int32_t want_day[] = { 19000, 20000, 20000, 20000, 20001,
					    20002 };
	static const uint64_t want_num[] = { 3, 7, 184, 1000, 5, 1000000 };
	FILE *f;

	CHECK(commit_text(s, 20001, 5, "a") == 0);
	CHECK(commit_text(s, 20000, 184, "b") == 0);
	CHECK(commit_text(s, 20000, 1000, "c") == 0);
	CHECK(commit_text(s, 20002, 1000000, "d") == 0);
	CHECK(commit_text(s, 20000, 7, "e") == 0);
	CHECK(commit_text(s, 19000, 3, "f") == 0);
	/* Names that are not blobs are skipped. */
	CHECK(mkdir(vpath("blobs/junk"), 0700) == 0);
	CHECK(mkdir(vpath("blobs/2024-13-01"), 0700) == 0);
	f = fopen(vpath("blobs/notes.txt"), "w");
	if (f)
		fclose(f);
	f = fopen(vpath("blobs/2024-10-04/c-12.cvb"), "w");
	if (f)
		fclose(f);
	f = fopen(vpath("blobs/2024-10-04/c-000013.cvb.tmp"), "w");
	if (f)
		fclose(f);

	CHECK_INT(store_blob_foreach(s, record, &sn), 0);
	CHECK_INT(sn.n, 6);
	for (int i = 0; i < 6 && i < sn.n; i++) {
		CHECK_INT(sn.day[i], want_day[i]);
		CHECK_INT(sn.num[i], want_num[i]);
	}

	/* A non-zero return stops the walk and is passed through. */
	memset(&sn, 0, sizeof sn);
	sn.stop_at = 2;
	CHECK_INT(store_blob_foreach(s, record, &sn), 42);
	CHECK_INT(sn.n, 2);
	store_close(s);
}

static void test_unlink(void)
{
	struct store *s = new_store();
	struct seen sn = { .n = 0 };
	char d[CLOCK_DAY_LEN], dir[64];
	int fd;

	CHECK(commit_text(s, 20001, 5, "a") == 0);
	CHECK(commit_text(s, 20000, 1, "b") == 0);
	CHECK(commit_text(s, 20000, 2, "c") == 0);
	clock_format_day(20001, d);
	snprintf(dir, sizeof dir, "blobs/%s", d);
	CHECK(exists(vpath(dir)));

	CHECK(store_blob_unlink(s, 20001, 5) == 0);
	CHECK(!exists(vpath(blob_rel(20001, 5))));
	CHECK(!exists(vpath(dir))); /* the empty day is gone */
	CHECK_INT(store_blob_unlink(s, 20001, 5), ENOENT);
	CHECK_INT(store_blob_open(s, 20001, 5, &fd), ENOENT);

	CHECK(store_blob_unlink(s, 20000, 1) == 0);
	CHECK(exists(vpath(blob_rel(20000, 2)))); /* the day stays */
	CHECK_INT(store_blob_unlink(s, 20000, 1), ENOENT);

	CHECK_INT(store_blob_foreach(s, record, &sn), 0);
	CHECK_INT(sn.n, 1);
	CHECK_INT(sn.num[0], 2);

	/* The day can be reused after it was removed. */
	CHECK(commit_text(s, 20001, 5, "again") == 0);
	CHECK(exists(vpath(blob_rel(20001, 5))));
	store_close(s);
}

struct names {
	char name[8][64];
	int n;
};

static int collect(void *ctx, const char *name)
{
	struct names *nm = ctx;

	if (nm->n < 8)
		snprintf(nm->name[nm->n], 64, "%s", name);
	nm->n++;
	return 0;
}

/* The sweep's batch delete: per-blob results, empty days removed. */
static void test_unlink_many(void)
{
	struct store *s = new_store();
	const struct store_blob_ref v[] = {
		{ 20000, 1 }, { 20000, 3 }, { 20000, 2 }, { 20001, 5 },
	};
	char d[CLOCK_DAY_LEN], dir[64];
	int errs[4] = { -1, -1, -1, -1 };

	CHECK(commit_text(s, 20000, 1, "a") == 0);
	CHECK(commit_text(s, 20000, 2, "b") == 0);
	CHECK(commit_text(s, 20000, 4, "c") == 0);
	CHECK(commit_text(s, 20001, 5, "d") == 0);
	/* 20000/3 does not exist: ENOENT for it alone, not a failure. */
	CHECK_INT(store_blobs_unlink(s, v, 4, errs), 0);
	CHECK_INT(errs[0], 0);
	CHECK_INT(errs[1], ENOENT);
	CHECK_INT(errs[2], 0);
	CHECK_INT(errs[3], 0);
	CHECK(!exists(vpath(blob_rel(20000, 1))));
	CHECK(!exists(vpath(blob_rel(20000, 2))));
	CHECK(exists(vpath(blob_rel(20000, 4))));
	clock_format_day(20001, d);
	snprintf(dir, sizeof dir, "blobs/%s", d);
	CHECK(!exists(vpath(dir)));
	store_close(s);
}

static void test_spool_leftovers(void)
{
	struct store *s = new_store();
	struct store_spool a, b;
	struct names nm = { .n = 0 };
	FILE *f;

	CHECK(store_spool_create(s, &a) == 0);
	CHECK(store_spool_create(s, &b) == 0);
	CHECK(strcmp(a.name, b.name) != 0);
	/* A crash: the files stay, the descriptors go. */
	close(a.fd);
	close(b.fd);
	f = fopen(vpath("spool/README"), "w");
	if (f)
		fclose(f);

	CHECK_INT(store_spool_foreach(s, collect, &nm), 0);
	CHECK_INT(nm.n, 2);
	if (nm.n == 2) {
		const char *lo = strcmp(a.name, b.name) < 0 ? a.name : b.name;
		const char *hi = lo == a.name ? b.name : a.name;
		CHECK_STR(nm.name[0], lo);
		CHECK_STR(nm.name[1], hi);
	}
	CHECK(store_spool_remove(s, a.name) == 0);
	CHECK(store_spool_remove(s, b.name) == 0);
	CHECK_INT(store_spool_remove(s, b.name), ENOENT);
	CHECK_INT(store_spool_remove(s, "../blobs"), EINVAL);
	CHECK_INT(store_spool_remove(s, ".."), EINVAL);
	nm.n = 0;
	CHECK_INT(store_spool_foreach(s, collect, &nm), 0);
	CHECK_INT(nm.n, 0);
	store_close(s);
	rm_vault();
	vault[0] = '\0';
}

TEST_MAIN("store", T(test_create_modes), T(test_spool_commit),
	  T(test_abort), T(test_foreach_order), T(test_unlink), T(test_unlink_many),
	  T(test_spool_leftovers))
