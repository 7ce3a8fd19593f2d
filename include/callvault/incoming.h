/* incoming/: where recorders write new calls. This module owns the tree of
 * pending files and directories, their sealed spool files, the pairing of
 * audio (NAME.wav, NAME.opus) with metadata (NAME.json), and the commit of
 * a complete pair through ingest, or its quarantine. It knows nothing of
 * FUSE: fs.c translates requests into these calls.
 *
 * Pending nodes are numbered `id` (fs builds inode numbers from them).
 * Directory id 0 is incoming/ itself.
 *
 * A pair is committed by the flush of the last open handle of either of
 * its files, once both exist, neither is open elsewhere and the audio is
 * not empty: that close() returns only when the call is durable, with
 * EINVAL if the input was rejected (the bytes then go to quarantine/,
 * sealed, with the reason), or EIO/ENOSPC if storing failed (the files
 * stay pending). Committed and quarantined files leave the tree.
 *
 * A flush may be the close of one copy of a descriptor (dup, fork), not
 * the last: it commits only if the handle was written through since it
 * was opened or last flushed and the audio looks fully written
 * (audio_looks_complete()); otherwise the last release commits. Writes
 * through a handle whose file was committed or quarantined, or is being
 * committed, fail with ESTALE (logged once per handle).
 *
 * Writes seal the spool's tail block at most every 100 ms (full blocks as
 * the writer moves on); flush syncs, incoming_sweep() seals what idle
 * writers left, incoming_free() seals everything.
 *
 * Thread-safe. Functions return 0 or a positive errno; ssize_t ones
 * return -errno. */
#ifndef CALLVAULT_INCOMING_H
#define CALLVAULT_INCOMING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "callvault/vault.h"

#define INCOMING_ROOT 0

struct incoming;
struct incoming_handle;

struct incoming_attr {
	uint64_t id;
	int is_dir;
	uint64_t size;
	int64_t mtime_ms;
	uint32_t uid, gid;
};

int incoming_new(struct vault *v, struct incoming **out);
/* Closes every spool (pending data stays on disk, sealed). */
void incoming_free(struct incoming *in);

int incoming_lookup(struct incoming *in, uint64_t dir, const char *name,
		    struct incoming_attr *out);
int incoming_getattr(struct incoming *in, uint64_t id,
		     struct incoming_attr *out);

/* Names: 1..255 bytes, no '/', no control characters, not "." or "..";
 * EINVAL otherwise. */
int incoming_mkdir(struct incoming *in, uint64_t dir, const char *name,
		   uint32_t uid, uint32_t gid, struct incoming_attr *out);
int incoming_rmdir(struct incoming *in, uint64_t dir, const char *name);

/* Creates a file (EEXIST if the name exists) and opens it. */
int incoming_create(struct incoming *in, uint64_t dir, const char *name,
		    uint32_t uid, uint32_t gid, struct incoming_attr *out,
		    struct incoming_handle **h);
/* Opens an existing file; `truncate` empties it first (O_TRUNC). */
int incoming_open(struct incoming *in, uint64_t id, int truncate,
		  struct incoming_handle **h);

ssize_t incoming_write(struct incoming *in, struct incoming_handle *h,
		       const void *buf, size_t len, uint64_t off);
ssize_t incoming_read(struct incoming *in, struct incoming_handle *h,
		      void *buf, size_t len, uint64_t off);
int incoming_truncate(struct incoming *in, uint64_t id, uint64_t size);

/* The close() of a descriptor: may commit the pair (see above). On a
 * commit, *committed gets the new call's number (0 otherwise). */
int incoming_flush(struct incoming *in, struct incoming_handle *h,
		   uint64_t *committed);
/* After a rename: commits the pair that `name` completes, if any (a
 * recorder wrote NAME.tmp and renamed it). Same results as a flush. */
int incoming_settle(struct incoming *in, uint64_t dir, const char *name,
		    uint64_t *committed);

/* The last close of an open file: frees the handle. If this was the
 * file's last handle and `may_commit`, the pair it completes is committed
 * (flush may have come while the other half was still open); the result
 * is returned as by incoming_flush, for logging: nobody waits for it. */
int incoming_release(struct incoming *in, struct incoming_handle *h,
		     int may_commit, uint64_t *committed);

/* Unlink discards a pending file and its data. */
int incoming_unlink(struct incoming *in, uint64_t dir, const char *name);
/* Rename within incoming/. Replaces an existing file unless `noreplace`
 * (EEXIST then); refuses to replace a directory. */
int incoming_rename(struct incoming *in, uint64_t dir, const char *name,
		    uint64_t newdir, const char *newname, int noreplace);

/* Lists a directory: fn(name, attr) for each child, in name order. */
int incoming_readdir(struct incoming *in, uint64_t dir,
		     int (*fn)(void *ctx, const char *name,
			       const struct incoming_attr *a),
		     void *ctx);

/* Told about each call committed or rejected outside a request (recovery,
 * grace period), for the audit trail. rc is 0 or EINVAL (quarantined). */
typedef void (*incoming_report_fn)(void *ctx, int rc, uint64_t num,
				   const char *path);

/* Crash recovery, before the mount serves requests: every spool file left
 * in the spool directory is put back at its path if its writer had closed
 * it (its label says so), and complete pairs are committed; files whose
 * writer had not closed them, or without a readable label, go to
 * quarantine with the reason. Counts go to *recovered / *quarantined. */
int incoming_recover(struct incoming *in, incoming_report_fn report,
		     void *ctx, unsigned *recovered, unsigned *quarantined);

/* The grace period: closed files untouched for `grace_ms` whose pair never
 * completed. Audio is committed attributed to no agent; metadata without
 * audio and files that are not part of a call are quarantined. */
void incoming_sweep(struct incoming *in, int64_t now_ms, int64_t grace_ms,
		    incoming_report_fn report, void *ctx);

#endif
