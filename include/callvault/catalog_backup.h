/* Consistent images of the vault's SQLite databases, for the backup
 * snapshot (snapshot.h). Part of the catalog module: every sqlite3 call of
 * callvault lives in catalog*.c.
 *
 * An image is the database file a reader would see at one instant,
 * committed WAL frames included, as one byte buffer: what
 * sqlite3_serialize() gives of an in-memory copy made with SQLite's online
 * backup API. The same logical content gives the same bytes, so a caller
 * can tell by comparing images (or a hash of them) whether anything
 * changed. Functions return 0 or a positive errno. */
#ifndef CALLVAULT_CATALOG_BACKUP_H
#define CALLVAULT_CATALOG_BACKUP_H

#include <stddef.h>

struct catalog_image {
	unsigned char *buf; /* NULL: the database does not exist */
	size_t len;
};

/* Takes images of the `n` database files `paths` (a NULL path, or a path
 * that does not exist, gives an absent image). All of them are read in
 * one read transaction of one read-only connection (the others ATTACHed),
 * so writers in WAL mode are never blocked and every image is of one
 * committed state; a TRUNCATE checkpoint that needs the pages being read
 * gets EBUSY meanwhile and is retried by its caller. The copy runs in
 * steps, so a large database does not hold SQLite's memory for long.
 * EIO (logged with SQLite's message) or ENOMEM; on failure nothing is
 * left allocated in `out`. */
int catalog_backup_images(const char *const *paths, size_t n,
			  struct catalog_image *out);

/* Wipes and frees an image; NULL-safe, idempotent. */
void catalog_image_free(struct catalog_image *img);

#endif
