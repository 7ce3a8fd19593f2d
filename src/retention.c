/* When calls expire. */
#include "callvault/retention.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callvault/audit.h"
#include "callvault/clock.h"
#include "callvault/log.h"
#include "callvault/vault.h"

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
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct call_record *v = realloc(c->v, cap * sizeof *v);
		if (!v)
			return ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *rec;
	return 0;
}

static int stop_at_first(void *ctx, uint32_t agent_id)
{
	(void)agent_id;
	*(int *)ctx = 1;
	return 1;
}

static int audited(struct vault *v, struct catalog *c, const char *action,
		   uint64_t num, const char *detail,
		   int (*act)(struct catalog *c, int64_t key), int64_t key)
{
	struct audit_event ev = { .uid = (uint32_t)getuid(),
				  .login = "",
				  .action = action,
				  .call_num = num,
				  .outcome = "ok",
				  .detail = detail };
	int rc = catalog_begin(c);

	if (rc)
		return rc;
	rc = act(c, key);
	if (!rc)
		rc = audit_append_in(c, vault_keys(v), &ev, 1);
	if (rc)
		catalog_rollback(c);
	else
		rc = catalog_commit(c);
	return rc;
}

static int delete_call(struct catalog *c, int64_t num)
{
	return catalog_call_delete(c, (uint64_t)num);
}

static int destroy_key(struct catalog *c, int64_t day)
{
	return catalog_epoch_destroy(c, (int32_t)day);
}

int retention_sweep(struct vault *v, int64_t now_ms,
		    void (*gone)(void *ctx, const struct call_record *rec),
		    void *ctx, struct retention_stats *st)
{
	const int months = vault_config(v)->retention_months;
	struct candidates cand = { .months = months, .now_ms = now_ms };
	struct catalog *c = vault_catalog(v);
	int rc;

	memset(st, 0, sizeof *st);
	if (!c)
		return EIO;
	/* Every month has at least 28 days: nothing that started later can
	 * have expired. Collected first: no writes while a query walks. */
	rc = catalog_calls_started_by(c, now_ms - (int64_t)months * 28 *
						  86400000, take_expired, &cand);
	for (size_t i = 0; !rc && i < cand.n; i++) {
		const struct call_record *r = &cand.v[i];
		char detail[64], day[CLOCK_DAY_LEN];
		int left = 0, e;

		/* Blob first: if we stop here, the row is still there and
		 * the next sweep finishes the job. */
		e = store_blob_unlink(vault_store(v), r->day, r->num);
		if (e && e != ENOENT) {
			log_warnx("sweep: c-%06" PRIu64 ": cannot delete the "
				  "blob: %s", r->num, strerror(e));
			st->errors++;
			continue;
		}
		e = audited(v, c, "expire", r->num, "retention period over",
			    delete_call, (int64_t)r->num);
		if (e && e != ENOENT) {
			log_warnx("sweep: c-%06" PRIu64 ": %s", r->num,
				  strerror(e));
			st->errors++;
			continue;
		}
		st->calls++;
		if (gone)
			gone(ctx, r);
		catalog_day_agents(c, r->day, stop_at_first, &left);
		if (left)
			continue;
		clock_format_day(r->day, day);
		snprintf(detail, sizeof detail, "epoch key of %s destroyed", day);
		e = audited(v, c, "destroy-key", 0, detail, destroy_key, r->day);
		if (e == 0)
			st->keys++;
		else if (e != ENOENT)
			st->errors++;
	}
	if (st->keys && catalog_checkpoint(c) != 0)
		log_warnx("sweep: the WAL still holds pages; the next sweep "
			  "checkpoints again");
	if (st->calls)
		log_info("sweep: %u expired calls removed, %u day keys "
			 "destroyed", st->calls, st->keys);
	free(cand.v);
	return rc;
}
