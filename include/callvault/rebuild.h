/* Rebuild: makes the catalog agree with the blobs and the key store again,
 * after a restore from backup (blobs and a snapshot copied back), a lost
 * or damaged catalog (vault_prepare_rebuild() first), or old blob files
 * copied into a live vault.
 *
 * The blobs are the truth for what was recorded, the key store for what
 * may still be read, and the erasure log beside the key file (rights.h)
 * for erasures newer than a restored key store:
 *  - a blob whose call is tombstoned (erased) is deleted, never restored;
 *  - a blob whose key is destroyed (expired, erased) is deleted: nothing
 *    can read it;
 *  - a blob without a catalog row whose key is present is authenticated in
 *    full and its row recreated from its sealed metadata (identical
 *    metadata, identical audio);
 *  - a blob that fails authentication is moved to quarantine/;
 *  - a row whose blob is missing is a lost call: reported and removed;
 *  - finally the retention sweep runs, so that calls past their expiry in
 *    an old backup are removed before anything could serve them.
 * Do not run it while the vault is mounted. */
#ifndef CALLVAULT_REBUILD_H
#define CALLVAULT_REBUILD_H

#include "callvault/vault.h"

struct rebuild_stats {
	unsigned replayed;    /* erasures taken from the erasure log */
	unsigned blobs;       /* blob files examined */
	unsigned kept;        /* calls whose row and blob agree */
	unsigned recovered;   /* rows recreated from their blob */
	unsigned erased;      /* erased calls' leftovers removed */
	unsigned destroyed;   /* blobs whose key is destroyed, removed */
	unsigned expired;     /* calls past their expiry, removed */
	unsigned quarantined; /* blobs that fail authentication */
	unsigned lost;        /* rows whose blob is missing, removed */
	unsigned errors;      /* steps that failed (logged) */
};

struct rebuild_ops {
	/* Called every so often with blobs done / total (may be NULL). */
	void (*progress)(void *ctx, unsigned done, unsigned total);
	/* One line per call that did not simply come back (may be NULL). */
	void (*report)(void *ctx, uint64_t num, const char *what);
	void *ctx;
};

/* Runs the rebuild on an opened vault. Returns 0 or an errno for a
 * failure that stopped it; what it found is in *st. */
int rebuild_run(struct vault *v, const struct rebuild_ops *ops,
		struct rebuild_stats *st);

#endif
