/* When calls expire. */
#include "callvault/retention.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "callvault/audit.h"
#include "callvault/clock.h"
#include "callvault/log.h"
#include "callvault/rights.h"
#include "callvault/vault.h"
#include "callvault/vec.h"

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static unsigned days_in_month(int y, unsigned m)
{
	static const unsigned char dim[] = { 31, 28, 31, 30, 31, 30,
					     31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dim[m - 1];
}

int64_t retention_expiry_ms(int64_t start_ms, int months)
{
	const int64_t day_ms = 86400000;
	int64_t days = floor_div(start_ms, day_ms);
	int64_t in_day = start_ms - days * day_ms;
	int y, total;
	unsigned m, d, last;

	clock_civil_from_days((int32_t)days, &y, &m, &d);
	total = y * 12 + (int)m - 1 + months;
	y = (int)floor_div(total, 12);
	m = (unsigned)(total - y * 12) + 1;
	last = days_in_month(y, m);
	if (d > last)
		d = last;
	return (int64_t)clock_days_from_civil(y, m, d) * day_ms + in_day;
}

int retention_expired(const struct call_record *rec, int months,
		      int64_t now_ms)
{
	return !rec->restricted &&
	       now_ms >= retention_expiry_ms(rec->start_ms, months);
}

/* --- the sweep -------------------------------------------------------- */

struct candidates {
	struct call_record *v;
	size_t n, cap;
	int months;
	int64_t now_ms;
};

static int take_expired(void *ctx, const struct call_record *rec)
{
	struct candidates *c = ctx;

	if (!retention_expired(rec, c->months, c->now_ms))
		return 0;
	struct call_record *v = vec_reserve(c->v, &c->cap, c->n, sizeof *v);

	if (!v)
		return ENOMEM;
	c->v = v;
	c->v[c->n++] = *rec;
	return 0;
}

/* Calls are removed in batches: one transaction per file per batch, not
 * one per call, so that a day of expiries costs seconds, not minutes of
 * fsyncs. */
#define BATCH 128

/* Removes the calls v[0..n): blobs, then what the key store holds for
 * them (own keys: key material goes before anything else can fail), then
 * rows with their audit entries. Calls whose blob cannot be deleted stay
 * for the next sweep. */
static int expire_batch(struct vault *v, struct catalog *c,
			struct call_record *calls, size_t n,
			struct retention_stats *st)
{
	struct audit_event ev[BATCH];
	struct store_blob_ref refs[BATCH];
	int errs[BATCH];
	size_t ok = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		refs[i] = (struct store_blob_ref){ calls[i].day, calls[i].num };
	store_blobs_unlink(vault_store(v), refs, n, errs);
	for (size_t i = 0; i < n; i++) {
		rc = errs[i];
		if (rc && rc != ENOENT) {
			log_warnx("sweep: c-%06" PRIu64 ": cannot delete the "
				  "blob: %s", calls[i].num, strerror(rc));
			st->errors++;
			continue;
		}
		calls[ok] = calls[i];
		ev[ok] = (struct audit_event){ .uid = (uint32_t)getuid(),
					       .login = "",
					       .action = "expire",
					       .call_num = calls[i].num,
					       .outcome = "ok",
					       .detail = "retention period over" };
		ok++;
	}
	if (!ok)
		return 0;
	rc = catalog_begin(c);
	for (size_t i = 0; !rc && i < ok; i++)
		rc = catalog_call_purge_ks(c, calls[i].num);
	if (!rc)
		rc = catalog_commit(c);
	else
		catalog_rollback(c);
	if (!rc)
		rc = catalog_begin(c);
	for (size_t i = 0; !rc && i < ok; i++) {
		rc = catalog_call_delete(c, calls[i].num);
		if (rc == ENOENT)
			rc = 0; /* a concurrent sweep got there first */
	}
	if (!rc)
		rc = audit_append_in(c, vault_keys(v), ev, ok);
	if (!rc) {
		rc = catalog_commit(c);
	} else {
		catalog_rollback(c);
	}
	if (rc) {
		log_warnx("sweep: %s", strerror(rc));
		st->errors++;
		return rc;
	}
	st->calls += (unsigned)ok;
	return 0;
}

/* Destroys the key tree of `day` if no call left on it needs it. The check
 * and the destruction are one transaction, so that an ingest storing a
 * call of that day (ingest.c, insert_row) either comes first and keeps the
 * tree, or finds it gone and fails. */
static void retire_day(struct vault *v, struct catalog *c, int32_t day,
		       struct retention_stats *st)
{
	char detail[64], name[CLOCK_DAY_LEN];
	struct audit_event ev = { .uid = (uint32_t)getuid(),
				  .login = "",
				  .action = "destroy-key",
				  .outcome = "ok",
				  .detail = detail };
	int needed = 1, e;

	clock_format_day(day, name);
	snprintf(detail, sizeof detail, "epoch key of %s destroyed", name);
	e = catalog_begin(c);
	if (e) {
		st->errors++;
		return;
	}
	e = catalog_day_needs_epoch(c, day, &needed);
	if (!e && !needed)
		e = catalog_epoch_destroy(c, day);
	if (!e && !needed)
		e = audit_append_in(c, vault_keys(v), &ev, 1);
	if (e || needed) {
		catalog_rollback(c);
		if (e && e != ENOENT)
			st->errors++;
		return;
	}
	if (catalog_commit(c) == 0)
		st->keys++;
	else
		st->errors++;
}

int retention_sweep(struct vault *v, int64_t now_ms,
		    void (*gone)(void *ctx, const struct call_record *rec),
		    void *ctx, struct retention_stats *st)
{
	const int months = vault_config(v)->retention_months;
	struct candidates cand = { .months = months, .now_ms = now_ms };
	struct catalog *c = vault_catalog(v);
	unsigned erased = 0;
	int rc;

	memset(st, 0, sizeof *st);
	if (!c)
		return EIO;
	/* Erasures a crash interrupted. */
	if (rights_finish_erasures(v, gone, ctx, &erased) != 0)
		st->errors++;
	/* Every month has at least 28 days: nothing that started later can
	 * have expired. Collected first: no writes while a query walks. */
	rc = catalog_calls_started_by(c, now_ms - (int64_t)months * 28 *
						  86400000, take_expired, &cand);
	for (size_t i = 0; !rc && i < cand.n; i += BATCH) {
		size_t n = cand.n - i < BATCH ? cand.n - i : BATCH;
		unsigned before = st->calls;

		if (expire_batch(v, c, cand.v + i, n, st) != 0)
			continue;
		/* Between batches the write lock is free for a moment:
		 * writers waiting on it (the audit of opens) get in. */
		nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
		/* expire_batch moved the removed calls to the front. */
		for (size_t j = 0; gone && j < st->calls - before; j++)
			gone(ctx, &cand.v[i + j]);
		for (size_t j = 0; j < st->calls - before; j++)
			if (j == 0 || cand.v[i + j].day !=
					      cand.v[i + j - 1].day)
				retire_day(v, c, cand.v[i + j].day, st);
	}
	/* Days whose calls all went another way (erased, or removed by a
	 * sweep that stopped before retiring the day): once a day lies
	 * wholly beyond the retention period, nothing new can need it. */
	if (!rc) {
		int32_t days[64];
		size_t n = 0;
		int32_t limit = clock_local_day(now_ms - (int64_t)months * 31 *
							 86400000) - 1;

		if (catalog_epoch_days_before(c, limit, days, 64, &n) == 0)
			for (size_t i = 0; i < n; i++)
				retire_day(v, c, days[i], st);
	}
	/* Every sweep, not only one that destroyed keys: an erasure by the
	 * CLI, or an earlier sweep whose checkpoint readers kept from
	 * finishing, may have left destroyed key bytes in a WAL. */
	if (catalog_checkpoint(c) != 0 && (st->keys || erased))
		log_info("sweep: readers keep the WAL busy; the next sweep "
			 "truncates it");
	if (st->calls)
		log_info("sweep: %u expired calls removed, %u day keys "
			 "destroyed", st->calls, st->keys);
	free(cand.v);
	return rc;
}
