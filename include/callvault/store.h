/* The blob store: where blob files live. Local directory backend:
 *
 *   VAULT/blobs/YYYY-MM-DD/c-000184.cvb   committed blobs
 *   VAULT/spool/                          blobs being written
 *   VAULT/quarantine/                     rejected input, sealed
 *
 * The store knows paths and durability, never keys or formats. One day a
 * second backend (an object store) will sit behind the same functions.
 * Thread-safe. Functions return 0 or a positive errno. */
#ifndef CALLVAULT_STORE_H
#define CALLVAULT_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* Creates the store's directories inside the (existing) vault directory. */
int store_create(const char *vault_dir);
int store_open(const char *vault_dir, struct store **out);
void store_close(struct store *s);

/* A spool file being written. */
struct store_spool {
	int fd;
	char name[64];
};

/* Creates a new, empty spool file open for reading and writing. */
int store_spool_create(struct store *s, struct store_spool *sp);

/* Makes a finished spool file the blob of call `num` of `day`: fsyncs the
 * file, renames it into place, fsyncs the directories. Closes sp->fd.
 * EEXIST if that blob already exists (nothing is replaced). On failure the
 * spool file and sp->fd are left for store_spool_abort(). */
int store_spool_commit(struct store *s, struct store_spool *sp, int32_t day,
		       uint64_t num);

/* Discards a spool file (closes and unlinks). Safe on a failed create. */
void store_spool_abort(struct store *s, struct store_spool *sp);

/* Opens blob `num` of `day` read-only (O_CLOEXEC). ENOENT if absent. */
int store_blob_open(struct store *s, int32_t day, uint64_t num, int *fd_out);

/* Deletes blob `num` of `day` and fsyncs its directory; removes the day
 * directory when it becomes empty. ENOENT if absent. */
int store_blob_unlink(struct store *s, int32_t day, uint64_t num);

/* Deletes many blobs: v sorted (or at least grouped) by day; each day
 * directory is fsynced once, not once per blob. errs[i] gets 0 or the
 * errno of v[i] (ENOENT: it was not there). Returns EIO if any failed
 * otherwise than with ENOENT. */
struct store_blob_ref {
	int32_t day;
	uint64_t num;
};
int store_blobs_unlink(struct store *s, const struct store_blob_ref *v,
		       size_t n, int *errs);

/* Calls fn for every committed blob, in day then call order. Stops and
 * returns fn's value when it is not 0. Names that are not blobs are
 * skipped with a log line. */
int store_blob_foreach(struct store *s,
		       int (*fn)(void *ctx, int32_t day, uint64_t num),
		       void *ctx);

/* Spool files left by a crash: calls fn with each name; the caller decides
 * (recover or quarantine) and then unlinks with store_spool_remove(). */
int store_spool_foreach(struct store *s,
			int (*fn)(void *ctx, const char *name), void *ctx);
int store_spool_remove(struct store *s, const char *name);

/* The spool directory, for the sealed spool files of incoming/ (spool.h).
 * Owned by the store; do not close. */
int store_spool_dirfd(const struct store *s);

/* Moves spool file `name` into quarantine/ (it stays sealed) and writes
 * NAME.reason beside it: `reason`, one line, for an admin. fsyncs both
 * directories. */
int store_quarantine(struct store *s, const char *name, const char *reason);

/* Moves blob `num` of `day` into quarantine/ as blob-DAY-c-N.cvb (still
 * encrypted), with a .reason beside it: a blob that fails authentication,
 * kept for an admin rather than deleted. */
int store_blob_quarantine(struct store *s, int32_t day, uint64_t num,
			  const char *reason);

/* Claims the spool directory for this process (flock, released when the
 * store is closed or the process dies): a mount holds it while it serves,
 * so that a second mount or `callvault recover` cannot take its pending
 * files for a crash's leftovers. EBUSY if another process holds it. */
int store_claim_spool(struct store *s);

/* Labels of spool files: a small sealed record beside spool file NAME
 * (what incoming/ needs to recover it after a crash). The store keeps the
 * bytes; sealing is the caller's. write replaces atomically (temporary
 * file and rename); `durable` fsyncs file and directory. read: ENOENT if
 * there is none; EFBIG if it is larger than `cap`. */
int store_label_write(struct store *s, const char *spool_name,
		      const void *buf, size_t len, int durable);
int store_label_read(struct store *s, const char *spool_name, void *buf,
		     size_t cap, size_t *len);
void store_label_remove(struct store *s, const char *spool_name);
/* After a crash, by the holder of store_claim_spool() only (no label is
 * being written): removes labels whose spool file is gone (a crash between
 * the two unlinks of a commit or a discard) and temporary labels (a crash
 * inside store_label_write()). *removed counts them. */
int store_label_prune(struct store *s, unsigned *removed);

/* The quarantine directory (spool.h can open its files). Owned by the
 * store. */
int store_quarantine_dirfd(const struct store *s);

/* Calls fn(name, reason) for each quarantined spool file, in name order
 * (reason "" if its .reason file is missing). Stops on fn's non-zero. */
int store_quarantine_foreach(struct store *s,
			     int (*fn)(void *ctx, const char *name,
				       const char *reason),
			     void *ctx);

/* Deletes a quarantined file and its .reason. ENOENT if absent. */
int store_quarantine_drop(struct store *s, const char *name);

/* Path of the vault directory the store lives in. */
const char *store_dir(const struct store *s);

#endif
