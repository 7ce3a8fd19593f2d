/* Images of SQLite databases through the online backup API. */
#include "callvault/catalog_backup.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "callvault/log.h"

/* Pages copied per backup step: SQLite's memory for one step stays small,
 * and a step is short. */
#define BACKUP_PAGES_PER_STEP 256
#define BACKUP_BUSY_MS 5000
#define BACKUP_MAX_DBS 8

static int sql_err(sqlite3 *db, int rc, const char *what)
{
	log_warnx("catalog backup: %s: %s", what,
		  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return (rc & 0xff) == SQLITE_NOMEM ? ENOMEM : EIO;
}

/* Copies schema `schema` of `src` into a fresh in-memory database and
 * serializes it. `src` has a read transaction open on that schema, so
 * every step reads the same committed state. */
static int image_of(sqlite3 *src, const char *schema,
		    struct catalog_image *out)
{
	sqlite3 *mem = NULL;
	sqlite3_backup *bk = NULL;
	sqlite3_int64 size = 0;
	unsigned char *buf = NULL;
	int rc, err = 0;

	rc = sqlite3_open_v2(":memory:", &mem,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX |
				     SQLITE_OPEN_PRIVATECACHE,
			     NULL);
	if (rc != SQLITE_OK) {
		err = sql_err(mem, rc, "in-memory copy");
		goto out;
	}
	bk = sqlite3_backup_init(mem, "main", src, schema);
	if (!bk) {
		err = sql_err(mem, sqlite3_errcode(mem), schema);
		goto out;
	}
	do {
		rc = sqlite3_backup_step(bk, BACKUP_PAGES_PER_STEP);
		/* The source is read inside our own transaction: BUSY and
		 * LOCKED can only come from the destination, which no one
		 * else knows of. */
	} while (rc == SQLITE_OK);
	if (rc != SQLITE_DONE) {
		sqlite3_backup_finish(bk);
		bk = NULL;
		err = sql_err(NULL, rc, schema);
		goto out;
	}
	rc = sqlite3_backup_finish(bk);
	bk = NULL;
	if (rc != SQLITE_OK) {
		err = sql_err(mem, rc, schema);
		goto out;
	}
	buf = sqlite3_serialize(mem, "main", &size, 0);
	if (!buf || size <= 0) {
		err = buf ? EIO : ENOMEM;
		log_warnx("catalog backup: %s: cannot serialize the copy",
			  schema);
		sqlite3_free(buf);
		goto out;
	}
	out->buf = buf;
	out->len = (size_t)size;
out:
	sqlite3_close(mem);
	return err;
}

static int exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_err(db, rc, sql);
}

/* Starts the read transaction of `schema` now (BEGIN alone is deferred
 * until the first read). */
static int touch(sqlite3 *db, const char *schema)
{
	char sql[192];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".sqlite_master",
		 schema);
	return exec(db, sql);
}

static int attach(sqlite3 *db, const char *path, const char *schema)
{
	sqlite3_stmt *st = NULL;
	char sql[192];
	int rc, err = 0;

	snprintf(sql, sizeof sql, "ATTACH DATABASE ?1 AS \"%s\"", schema);
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		err = sql_err(db, rc, path);
	sqlite3_finalize(st);
	return err;
}

int catalog_backup_images(const char *const *paths, size_t n,
			  struct catalog_image *out)
{
	sqlite3 *db = NULL;
	char schema[BACKUP_MAX_DBS][16];
	int present[BACKUP_MAX_DBS] = { 0 };
	int rc, err = 0, nopen = 0, in_txn = 0;
	struct stat sb;

	if (n > BACKUP_MAX_DBS)
		return EINVAL;
	memset(out, 0, n * sizeof *out);
	for (size_t i = 0; i < n; i++) {
		if (!paths[i])
			continue;
		/* SQLite would create a missing file, even read-only when
		 * attaching: absent stays absent. */
		if (stat(paths[i], &sb) == -1) {
			if (errno == ENOENT)
				continue;
			err = errno;
			log_warn("catalog backup: %s", paths[i]);
			goto out;
		}
		present[i] = 1;
		if (nopen == 0) {
			rc = sqlite3_open_v2(paths[i], &db,
					     SQLITE_OPEN_READONLY |
						     SQLITE_OPEN_NOMUTEX |
						     SQLITE_OPEN_PRIVATECACHE,
					     NULL);
			if (rc != SQLITE_OK) {
				err = sql_err(db, rc, paths[i]);
				goto out;
			}
			sqlite3_busy_timeout(db, BACKUP_BUSY_MS);
			snprintf(schema[i], sizeof schema[i], "main");
		} else {
			snprintf(schema[i], sizeof schema[i], "db%zu", i);
			err = attach(db, paths[i], schema[i]);
			if (err)
				goto out;
		}
		nopen++;
	}
	if (nopen == 0)
		goto out;

	err = exec(db, "BEGIN");
	if (err)
		goto out;
	in_txn = 1;
	for (size_t i = 0; i < n && !err; i++)
		if (present[i])
			err = touch(db, schema[i]);
	for (size_t i = 0; i < n && !err; i++)
		if (present[i])
			err = image_of(db, schema[i], &out[i]);
out:
	if (in_txn)
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	if (err)
		for (size_t i = 0; i < n; i++)
			catalog_image_free(&out[i]);
	return err;
}

void catalog_image_free(struct catalog_image *img)
{
	if (!img || !img->buf)
		return;
	/* The images hold the directory and the call index: no keys in
	 * clear, but nothing to leave lying in freed memory either. */
	explicit_bzero(img->buf, img->len);
	sqlite3_free(img->buf);
	img->buf = NULL;
	img->len = 0;
}
