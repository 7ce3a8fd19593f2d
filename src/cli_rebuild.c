/* callvault rebuild: brings a vault back after a restore or the loss of
 * its catalog (rebuild.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "callvault/rebuild.h"
#include "callvault/snapshot.h"

#include "cli.h"

static void progress(void *ctx, unsigned done, unsigned total)
{
	(void)ctx;
	cli_progress("rebuild: blobs", done, total);
}

static void report(void *ctx, uint64_t num, const char *what)
{
	char id[CALL_ID_LEN];

	(void)ctx;
	call_id_format(num, id);
	printf("%s: %s\n", id, what);
}

int cmd_rebuild(int argc, char **argv)
{
	struct rebuild_ops ops = { .progress = progress, .report = report };
	struct rebuild_stats st;
	struct vault *v = NULL;
	const char *key_file = NULL;
	char err[512] = "", detail[CATALOG_AUDIT_DETAIL_LEN];
	char *pos[1];
	unsigned what = 0;
	int rc;

	rc = cli_parse_exact(argc, argv, NULL, &key_file, pos, 1);
	if (rc)
		return rc;
	rc = vault_prepare_rebuild(pos[0], key_file, &what, err, sizeof err);
	if (rc) {
		cli_error("%s", err);
		return 1;
	}
	if (what & VAULT_REBUILD_DAMAGED)
		printf("catalog.db did not open or failed its check: moved "
		       "aside as catalog.db.damaged-*\n");
	if (what & VAULT_REBUILD_FROM_SNAPSHOT)
		printf("restored from the vault's encrypted snapshot: "
		       "directory, grants, key store, restrictions, notes, "
		       "audit trail\n");
	if (what & VAULT_REBUILD_NEW_CATALOG)
		printf("no snapshot: a new catalog is made from the blobs "
		       "(users, teams and grants must be added again)\n");
	if (what & VAULT_REBUILD_DEFAULT_CONFIG)
		printf("callvault.conf was missing: written with defaults; "
		       "check retention and timezone\n");
	rc = cli_open_vault(pos[0], key_file, 0, &v);
	if (rc)
		return rc;
	/* A mount holds this lock while it serves. */
	rc = store_claim_spool(vault_store(v));
	if (rc) {
		cli_error("%s", rc == EBUSY ? "the vault is mounted; unmount "
					     "it first" : strerror(rc));
		vault_close(v);
		return 1;
	}
	rc = rebuild_run(v, &ops, &st);
	cli_progress_end();
	if (st.replayed)
		printf("%u erasures newer than the key store taken from %s\n",
		       st.replayed, vault_erasure_log(v));
	printf("%u blobs: %u calls kept, %u recovered from their blobs; "
	       "removed: %u erased, %u with destroyed keys, %u expired; "
	       "%u quarantined, %u lost, %u errors\n",
	       st.blobs, st.kept, st.recovered, st.erased, st.destroyed,
	       st.expired, st.quarantined, st.lost, st.errors);
	snprintf(detail, sizeof detail, "%u kept, %u recovered, %u erased, "
		 "%u destroyed, %u expired, %u quarantined, %u lost",
		 st.kept, st.recovered, st.erased, st.destroyed, st.expired,
		 st.quarantined, st.lost);
	if (cli_audit(v, "rebuild", 0, rc ? "error" : "ok", detail) != 0)
		rc = rc ? rc : EIO;
	vault_close(v);
	if (rc) {
		cli_error("%s", strerror(rc));
		return 1;
	}
	/* A restored backup's snapshot holds the key store of its time:
	 * once rebuilt from, it must not stay in the vault and outlive the
	 * keys it holds (the backup still has it). */
	if (what & VAULT_REBUILD_FROM_SNAPSHOT) {
		char snap[4096];

		snprintf(snap, sizeof snap, "%s/" SNAPSHOT_NAME, pos[0]);
		if (unlink(snap) == 0)
			printf("%s: removed (the backup keeps it)\n", snap);
	}
	if (st.lost || st.quarantined || st.errors) {
		cli_error("not every call came back (see above)");
		return 1;
	}
	return 0;
}
