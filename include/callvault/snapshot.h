/* The encrypted snapshot of everything a vault's blobs do not carry: the
 * catalog (directory, grants, wrapped epoch keys, call index, audit
 * trail), the key store (wrapped key material, tombstones, restrictions,
 * notes) and the configuration, as one file sealed under the master key's
 * snapshot subkey (docs/format.md, "Catalog snapshot").
 *
 * The backup role reads it as encrypted/catalog.snapshot; `callvault
 * rebuild` turns it back into the files it was taken from. Any flipped
 * bit, truncation, extension, reordering or splice of chunks from another
 * snapshot is detected; nothing in it is readable without the master key.
 *
 * Functions return 0 or a positive errno. */
#ifndef CALLVAULT_SNAPSHOT_H
#define CALLVAULT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "callvault/keys.h"

/* The parts of a snapshot and the vault files they are images of. */
enum snapshot_part {
	SNAPSHOT_CATALOG = 1,  /* catalog.db */
	SNAPSHOT_KEYSTORE = 2, /* keystore.db */
	SNAPSHOT_CONFIG = 3,   /* callvault.conf */
};
#define SNAPSHOT_NPARTS 3

/* The file name of a part inside a vault directory ("catalog.db"); NULL
 * for an unknown part. */
const char *snapshot_part_file(enum snapshot_part part);

/* Where a restored vault has its snapshot: the name of the file in
 * encrypted/ and so in a backup copied back as the vault directory. */
#define SNAPSHOT_NAME "catalog.snapshot"

/* --- writing ----------------------------------------------------------- */

/* Takes a consistent image of the vault's parts (catalog.db and
 * keystore.db through SQLite's online backup API, in one read
 * transaction; callvault.conf as it is; each if present) and, unless the
 * file at `path` already holds exactly that content for this key, writes
 * a new sealed snapshot there: temporary file, fsync, rename, fsync of
 * the directory, so that `path` is always a whole snapshot. *changed (may
 * be NULL) says whether it was written. Content is compared by a keyed
 * hash kept in the file's header, so an unchanged vault leaves the file
 * untouched: same inode, size, mtime and ctime. */
int snapshot_update(const char *vault_dir, const struct keyring *ring,
		    const char *path, int *changed);

/* The cached snapshot the mount serves in encrypted/, kept in
 * VAULT/snapshot/catalog.snapshot. Thread-safe. */
struct snapshot_cache;

/* interval_s: the least time between two looks at the catalog. */
int snapshot_cache_new(const char *vault_dir, const struct keyring *ring,
		       int interval_s, struct snapshot_cache **out);
void snapshot_cache_free(struct snapshot_cache *c); /* NULL-safe */

/* Brings the cached file up to date if it has not been looked at for the
 * interval (or never), then stats it. Called lazily when the backup role
 * lists encrypted/ or looks the snapshot up, so a mount that is never
 * backed up never takes one. A failed update is logged and the previous
 * file, if any, is served; ENOENT if there is none. */
int snapshot_cache_stat(struct snapshot_cache *c, int64_t now_ms,
			struct stat *st);

/* Opens the current cached file read-only (O_CLOEXEC); the descriptor
 * keeps reading that version even if a newer one replaces it. */
int snapshot_cache_open(struct snapshot_cache *c, int *fd);

/* --- reading (rebuild) ------------------------------------------------- */

struct snapshot;

/* Reads and authenticates a whole snapshot file into memory. EACCES if
 * it was sealed under another master key (its key check value differs:
 * "wrong key"); EBADMSG if it does not authenticate or is malformed
 * inside (flipped bits, truncation, extension, reordered or foreign
 * chunks); EINVAL if it is not a snapshot file at all (wrong magic or
 * version, or shorter than a header); errnos of the file system. */
int snapshot_open(const char *path, const struct keyring *ring,
		  struct snapshot **out);
void snapshot_close(struct snapshot *s); /* wipes; NULL-safe */

/* A part's bytes, or NULL (and *len 0) if the snapshot has none. The
 * memory belongs to the snapshot. */
const unsigned char *snapshot_part(const struct snapshot *s,
				   enum snapshot_part part, size_t *len);
/* Counter of the snapshot's content versions (1, 2, ...) and the time it
 * was taken (ms since the epoch). */
uint64_t snapshot_generation(const struct snapshot *s);
int64_t snapshot_created_ms(const struct snapshot *s);

/* Writes every part present as DIR/<snapshot_part_file()> (mode 0600,
 * fsynced, directory fsynced). Refuses with EEXIST, writing nothing, if
 * any of those files, or a catalog.db-wal / keystore.db-wal beside them,
 * exists: a stale WAL would be replayed onto the restored database. */
int snapshot_write_parts(const struct snapshot *s, const char *dir);

/* snapshot_open + snapshot_write_parts + snapshot_close. */
int snapshot_read(const char *path, const struct keyring *ring,
		  const char *dir);

#endif
