/* Rebuild of the catalog from the blobs and the key store (rebuild.h). */
#include "callvault/rebuild.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callvault/audit.h"
#include "callvault/blob.h"
#include "callvault/clock.h"
#include "callvault/log.h"
#include "callvault/meta.h"
#include "callvault/retention.h"
#include "callvault/rights.h"
#include "callvault/vec.h"

/* Rows recreated per transaction: one fsync per batch, not per call. */
#define INSERT_BATCH 256

struct blob_ref {
	uint64_t num;
	int32_t day;
};

struct blob_list {
	struct blob_ref *v;
	size_t n, cap;
};

struct run {
	struct vault *v;
	struct catalog *c;
	const struct rebuild_ops *ops;
	struct rebuild_stats *st;
	int open;         /* a batch transaction is open */
	unsigned pending; /* rows inserted in it */
};

static void report(struct run *r, uint64_t num, const char *what)
{
	char id[CALL_ID_LEN];

	call_id_format(num, id);
	log_info("rebuild: %s: %s", id, what);
	if (r->ops && r->ops->report)
		r->ops->report(r->ops->ctx, num, what);
}

static int take_blob(void *ctx, int32_t day, uint64_t num)
{
	struct blob_list *l = ctx;
	struct blob_ref *nv = vec_reserve(l->v, &l->cap, l->n, sizeof *nv);

	if (!nv)
		return ENOMEM;
	l->v = nv;
	l->v[l->n++] = (struct blob_ref){ .num = num, .day = day };
	return 0;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct blob_ref *x = a, *y = b;

	return x->num < y->num ? -1 : x->num > y->num;
}

static void quarantine(struct run *r, const struct blob_ref *b,
		       const char *why)
{
	char reason[160];
	int rc;

	snprintf(reason, sizeof reason, "rebuild: %s", why);
	rc = store_blob_quarantine(vault_store(r->v), b->day, b->num, reason);
	if (rc) {
		log_warnx("rebuild: cannot quarantine a blob: %s",
			  strerror(rc));
		r->st->errors++;
		return;
	}
	r->st->quarantined++;
	report(r, b->num, why);
}

static void remove_blob(struct run *r, const struct blob_ref *b)
{
	int rc = store_blob_unlink(vault_store(r->v), b->day, b->num);

	if (rc && rc != ENOENT) {
		log_warnx("rebuild: cannot delete a blob: %s", strerror(rc));
		r->st->errors++;
	}
}

/* Commits the open batch of recreated rows. */
static int flush_inserts(struct run *r)
{
	int rc = 0;

	if (!r->open)
		return 0;
	rc = catalog_commit(r->c);
	if (rc) {
		catalog_rollback(r->c);
		r->st->recovered -= r->pending;
		r->st->errors += r->pending;
	}
	r->pending = 0;
	r->open = 0;
	return rc;
}

#define HOLD_REASON "rebuild: its catalog row was changed outside " \
		    "callvault; held for review"

/* A recreated row whose old row was forged is held (restricted until an
 * admin lifts it): the forged row may have lifted a restriction, and what
 * it said cannot be trusted either way. Audited, in the batch. */
static int hold_for_review(struct run *r, struct call_record *rec)
{
	struct catalog_restriction hold = { .num = rec->num };
	struct audit_event ev = { .uid = (uint32_t)getuid(),
				  .login = "",
				  .action = "restrict",
				  .call_num = rec->num,
				  .outcome = "ok",
				  .detail = HOLD_REASON };
	int rc;

	rec->restricted_until = CALL_UNTIL_LIFTED;
	hold.since_ms = clock_now_ms();
	snprintf(hold.by, sizeof hold.by, "rebuild");
	snprintf(hold.reason, sizeof hold.reason, "%s", HOLD_REASON);
	rc = catalog_restriction_put(r->c, &hold);
	if (!rc)
		rc = audit_append_in(r->c, vault_keys(r->v), &ev, 1);
	return rc;
}

/* Recreates the row of a blob from its sealed metadata, after
 * authenticating every chunk: a new row for a blob that has none, or, with
 * `forged`, a rewrite of a row that fails authentication. */
static int recover(struct run *r, const struct blob_ref *b, int forged)
{
	struct call_record rec = { .num = b->num, .day = b->day };
	struct catalog_restriction hold;
	struct secret key = keys_secret_new();
	struct blob_reader *br = NULL;
	char *meta = NULL, err[128] = "";
	size_t meta_len = 0;
	int fd = -1, rc;

	if (!key.b)
		return ENOMEM;
	rc = vault_call_key(r->v, &rec, &key);
	if (rc == ENOENT) {
		remove_blob(r, b);
		if (forged) {
			rc = catalog_call_delete(r->c, b->num);
			if (rc && rc != ENOENT)
				goto out;
		}
		r->st->destroyed++;
		report(r, b->num, "its key is destroyed (expired or erased): "
				  "blob removed, not restored");
		rc = 0;
		goto out;
	}
	if (rc == EBADMSG) {
		quarantine(r, b, "the key store entry for it does not "
				 "authenticate");
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	rc = store_blob_open(vault_store(r->v), b->day, b->num, &fd);
	if (!rc)
		rc = blob_open(fd, key.b, &br, &meta, &meta_len);
	if (rc == EBADMSG || rc == EINVAL) {
		quarantine(r, b, "header or metadata fails authentication");
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	if (meta_blob_decode(meta, meta_len, &rec, err, sizeof err) != 0 ||
	    rec.num != b->num || rec.day != b->day) {
		quarantine(r, b, "sealed metadata does not match the file");
		goto out;
	}
	if (blob_verify(br, NULL, NULL) != 0) {
		quarantine(r, b, "a chunk fails authentication");
		goto out;
	}
	rec.size = blob_plain_size(br);
	rec.restricted = 0;
	rec.restricted_until = 0;
	/* The key store's copy of a restriction (authenticated: a planted
	 * one is refused) puts the hold back on the row. */
	rc = catalog_restriction_get(r->c, rec.num, &hold);
	if (!rc)
		rec.restricted_until = hold.until_ms ? hold.until_ms
						     : CALL_UNTIL_LIFTED;
	else if (rc != ENOENT && rc != EBADMSG)
		goto out;
	rec.restricted = rec.restricted_until > clock_now_ms();
	rc = 0;
	if (!r->open) {
		rc = catalog_begin(r->c);
		if (rc)
			goto out;
		r->open = 1;
	}
	r->pending++;
	rec.agent_id = 0;
	if (rec.agent[0])
		rc = catalog_agent_ensure(r->c, rec.agent, &rec.agent_id);
	if (rc == EBADMSG) {
		/* The login's agent id was forged: the call is left to
		 * admins until the directory is repaired. */
		rec.agent_id = 0;
		rc = 0;
		report(r, b->num, "its agent's id fails authentication: "
				  "shown to admins only");
	}
	/* A call past its expiry is not held: the sweep after the rebuild
	 * removes it, as it would have. */
	if (!rc && forged &&
	    !retention_expired(&rec, vault_config(r->v)->retention_months,
			       clock_now_ms()))
		rc = hold_for_review(r, &rec);
	if (!rc)
		rc = forged ? catalog_call_rewrite(r->c, &rec)
			    : catalog_call_insert(r->c, &rec);
	if (!rc)
		rc = catalog_call_num_seen(r->c, rec.num);
	if (rc) {
		/* A failed statement leaves the batch's transaction open
		 * and the rows before it in place; a second rebuild retries
		 * this blob. */
		r->pending--;
		goto out;
	}
	r->st->recovered++;
	if (forged)
		report(r, b->num, "its row was changed outside callvault: "
				  "recreated from the blob and restricted "
				  "until an admin lifts it");
	if (r->pending >= INSERT_BATCH)
		rc = flush_inserts(r);
out:
	blob_close(br);
	free(meta);
	keys_secret_free(&key);
	return rc;
}

/* A blob that has a row: its key must still be there and its header and
 * trailer authenticate (chunks are `verify`'s work). */
static int check_kept(struct run *r, const struct blob_ref *b,
		      const struct call_record *rec)
{
	struct blob_reader *br = NULL;
	int rc;

	if (rec->day != b->day) {
		quarantine(r, b, "its row names another day");
		return 0;
	}
	rc = vault_blob_open(r->v, rec, &br);
	blob_close(br);
	if (rc == ENOENT) {
		/* No key: expired or erased after the row was saved. The
		 * row goes too (the sweep's helper keeps the key store
		 * consistent). */
		remove_blob(r, b);
		rc = catalog_call_delete(r->c, rec->num);
		if (rc && rc != ENOENT)
			return rc;
		r->st->destroyed++;
		report(r, b->num, "its key is destroyed: removed");
		return 0;
	}
	if (rc == EBADMSG || rc == EINVAL) {
		quarantine(r, b, "header or metadata fails authentication");
		return 0;
	}
	if (rc == 0)
		r->st->kept++;
	return rc;
}

static int one_blob(struct run *r, const struct blob_ref *b)
{
	struct call_record rec;
	int rc;

	if (catalog_tombstoned(r->c, b->num) == 0) {
		/* The row, if any, goes with the next step's sweep. */
		remove_blob(r, b);
		r->st->erased++;
		report(r, b->num, "erased: blob removed, not restored");
		return 0;
	}
	rc = catalog_call_get(r->c, b->num, &rec);
	if (rc == ENOENT)
		return recover(r, b, 0);
	if (rc == EBADMSG)
		return recover(r, b, 1);
	if (rc)
		return rc;
	return check_kept(r, b, &rec);
}

struct rows {
	struct run *r;
	const struct blob_list *blobs;
	uint64_t *lost;
	size_t nlost, cap;
};

static int take_row(void *ctx, const struct call_record *rec)
{
	struct rows *rw = ctx;
	struct blob_ref key = { .num = rec->num };
	uint64_t *nv;

	if (bsearch(&key, rw->blobs->v, rw->blobs->n, sizeof key, cmp_ref))
		return 0;
	nv = vec_reserve(rw->lost, &rw->cap, rw->nlost, sizeof *nv);
	if (!nv)
		return ENOMEM;
	rw->lost = nv;
	rw->lost[rw->nlost++] = rec->num;
	return 0;
}

/* Rows whose blob is gone: erased calls (tombstone) are finished by the
 * sweep; any other is a lost call. */
static int lost_rows(struct run *r, const struct blob_list *blobs)
{
	struct rows rw = { .r = r, .blobs = blobs };
	int rc;

	rc = catalog_calls_list(r->c, -1, NULL, take_row, &rw);
	for (size_t i = 0; !rc && i < rw.nlost; i++) {
		if (catalog_tombstoned(r->c, rw.lost[i]) == 0)
			continue;
		rc = catalog_call_delete(r->c, rw.lost[i]);
		if (rc == ENOENT)
			rc = 0;
		if (!rc) {
			r->st->lost++;
			report(r, rw.lost[i], "its blob is missing: the call "
					     "is lost");
		}
	}
	free(rw.lost);
	return rc;
}

int rebuild_run(struct vault *v, const struct rebuild_ops *ops,
		struct rebuild_stats *st)
{
	struct run r = { .v = v, .ops = ops, .st = st };
	struct blob_list blobs = { 0 };
	struct retention_stats rs;
	unsigned bad = 0;
	int rc;

	memset(st, 0, sizeof *st);
	r.c = vault_catalog(v);
	if (!r.c)
		return EIO;
	catalog_set_cache(r.c, 64);
	/* Erasures newer than a restored backup. */
	rc = rights_replay_erasures(v, &st->replayed, &bad);
	if (rc)
		goto out;
	st->errors += bad;
	rc = store_blob_foreach(vault_store(v), take_blob, &blobs);
	if (rc)
		goto out;
	st->blobs = (unsigned)blobs.n;
	for (size_t i = 0; i < blobs.n; i++) {
		rc = one_blob(&r, &blobs.v[i]);
		if (rc) {
			log_warnx("rebuild: c-%06" PRIu64 ": %s",
				  blobs.v[i].num, strerror(rc));
			st->errors++;
			rc = 0;
		}
		if (ops && ops->progress && (i % 256 == 255 ||
					     i + 1 == blobs.n))
			ops->progress(ops->ctx, (unsigned)i + 1,
				      (unsigned)blobs.n);
	}
	rc = flush_inserts(&r);
	if (rc)
		goto out;
	qsort(blobs.v, blobs.n, sizeof *blobs.v, cmp_ref);
	rc = lost_rows(&r, &blobs);
	if (rc)
		goto out;
	/* What an old backup brought back past its expiry, and erasures
	 * whose row came back, go now, before anything can serve them. */
	rc = retention_sweep(v, clock_now_ms(), NULL, NULL, &rs);
	st->expired = rs.calls;
	st->errors += rs.errors;
out:
	if (r.open)
		catalog_rollback(r.c);
	free(blobs.v);
	return rc;
}
