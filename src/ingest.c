/* Ingest: audio + metadata -> committed call. */
#include "callvault/ingest.h"
#include "ingest_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callvault/bytes.h"
#include "callvault/clock.h"
#include "callvault/log.h"
#include "callvault/meta.h"

static int sink_to_blob(void *ctx, const void *buf, size_t len)
{
	return blob_writer_write(ctx, buf, len);
}

/* Fills the directory-derived fields of `rec` for agent `login`. */
static int resolve_agent(struct catalog *c, const char *login,
			 struct call_record *rec, char *err, size_t errlen)
{
	struct catalog_user u;
	int rc = catalog_user_get(c, login, &u);

	if (rc == ENOENT) {
		snprintf(err, errlen, "unknown agent \"%s\"", login);
		return EINVAL;
	}
	if (rc) {
		snprintf(err, errlen, "cannot read the directory: %s",
			 strerror(rc));
		return rc;
	}
	snprintf(rec->agent, sizeof rec->agent, "%s", u.login);
	snprintf(rec->agent_name, sizeof rec->agent_name, "%s", u.name);
	rec->agent_uid = u.uid;
	rec->agent_id = u.agent_id;
	return 0;
}

/* Inserts the row, the commit point, in the same transaction as a check
 * that the day's key tree still covers the call: a sweep that retires the
 * day (every other call of it expired while this one was being encoded)
 * checks for rows in its own transaction, so exactly one of the two
 * wins, and a call is never stored without its key. */
static int insert_row(struct catalog *c, const struct call_record *rec,
		      char *err, size_t errlen)
{
	struct keys_node node;
	int rc = catalog_begin(c);

	if (!rc) {
		rc = catalog_epoch_node(c, rec->day, rec->num, &node);
		if (rc == ENOENT)
			snprintf(err, errlen, "the key of the call's day was "
				 "destroyed while it was stored (the day has "
				 "expired)");
	}
	if (!rc) {
		rc = catalog_call_insert(c, rec);
		if (rc)
			snprintf(err, errlen, "catalog: %s", strerror(rc));
	}
	if (!rc) {
		rc = catalog_commit(c);
		if (rc)
			snprintf(err, errlen, "catalog: %s", strerror(rc));
	}
	if (rc)
		catalog_rollback(c);
	if (rc && !*err)
		snprintf(err, errlen, "catalog: %s", strerror(rc));
	return rc;
}

int ingest_call(struct vault *v, const struct audio_source *audio,
		const char *meta_json, size_t meta_len,
		int64_t fallback_start_ms, struct call_record *out, char *err,
		size_t errlen)
{
	return ingest_call_hooked(v, audio, meta_json, meta_len,
				  fallback_start_ms, out, err, errlen, NULL,
				  NULL);
}

int ingest_was_committed(struct vault *v, uint64_t num, int32_t day,
			 int *committed)
{
	struct catalog *c = vault_catalog(v);
	struct call_record rec;
	int rc;

	*committed = 0;
	if (!c)
		return EIO;
	rc = catalog_call_get(c, num, &rec);
	if (rc == ENOENT)
		rc = catalog_tombstoned(c, num);
	if (rc == 0) {
		*committed = 1;
		return 0;
	}
	if (rc != ENOENT)
		return rc;
	rc = store_blob_unlink(vault_store(v), day, num);
	return rc == ENOENT ? 0 : rc;
}

int ingest_call_hooked(struct vault *v, const struct audio_source *audio,
		       const char *meta_json, size_t meta_len,
		       int64_t fallback_start_ms, struct call_record *out,
		       char *err, size_t errlen, ingest_hook_fn hook,
		       void *hook_ctx)
{
	const struct config *cfg = vault_config(v);
	const struct meta_number_rules rules = { cfg->country_code,
						 cfg->trunk_prefix };
	const struct audio_params params = { cfg->bitrate, cfg->complexity };
	unsigned char ad[16];
	struct meta_recorder m;
	struct call_record rec;
	struct audio_result res;
	struct store_spool sp = { .fd = -1 };
	struct blob_writer *w = NULL;
	struct secret key = { NULL };
	struct catalog *c = vault_catalog(v);
	char *blob_meta = NULL, last3[4];
	int rc, committed = 0;

	memset(&rec, 0, sizeof rec);
	memset(&m, 0, sizeof m);
	if (!c) {
		snprintf(err, errlen, "cannot open the catalog");
		return EIO;
	}

	if (meta_json) {
		rc = meta_parse_recorder(meta_json, meta_len, &rules,
					 clock_now_ms(), &m, err, errlen);
		if (rc)
			goto out;
		rc = resolve_agent(c, m.agent, &rec, err, errlen);
		if (rc)
			goto out;
		rec.start_ms = m.start_ms;
		rec.end_ms = m.end_ms;
		memcpy(rec.direction, m.direction, sizeof rec.direction);
		memcpy(rec.service_number, m.service_number,
		       sizeof rec.service_number);
	} else {
		rec.start_ms = fallback_start_ms;
	}
	rec.day = clock_local_day(rec.start_ms);

	rc = catalog_call_num_next(c, &rec.num);
	if (!rc && rec.num > KEYS_CALL_NUM_MAX)
		rc = EOVERFLOW;
	if (rc) {
		snprintf(err, errlen, "catalog: %s", strerror(rc));
		goto out;
	}
	key = keys_secret_new();
	if (!key.b) {
		rc = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = vault_call_key_new(v, c, &rec, &key);
	if (rc) {
		snprintf(err, errlen, "epoch key of the day: %s",
			 strerror(rc));
		goto out;
	}

	rc = store_spool_create(vault_store(v), &sp);
	if (!rc)
		rc = blob_writer_new(sp.fd, key.b, rec.num, rec.day,
				     vault_blob_alg(v), &w);
	if (rc) {
		snprintf(err, errlen, "spool: %s", strerror(rc));
		goto out;
	}
	rc = audio_transcode(audio, &params, sink_to_blob, w, &res, err,
			     errlen);
	if (rc) {
		if (rc != EINVAL && !*err)
			snprintf(err, errlen, "writing the blob: %s",
				 strerror(rc));
		goto out;
	}

	rec.duration_ms = (int64_t)res.duration_ms;
	if (!meta_json)
		rec.end_ms = rec.start_ms + rec.duration_ms;
	rec.channels = res.channels;
	rec.source_rate = res.source_rate;
	rec.size = res.out_bytes;
	rec.ingested_ms = clock_now_ms();
	if (m.customer_number[0]) {
		meta_number_mask(m.customer_number, rec.customer_masked, last3);
		keys_number_hash(vault_keys(v), m.customer_number,
				 rec.number_hash);
		/* The masked digits are bound to this call. */
		memcpy(ad, "cvdigits", 8);
		le64_put(ad + 8, rec.num);
		rc = keys_seal(key.b, ad, sizeof ad, last3, 3,
			       rec.customer_sealed);
		explicit_bzero(last3, sizeof last3);
		if (rc) {
			snprintf(err, errlen, "sealing: %s", strerror(rc));
			goto out;
		}
	}

	blob_meta = meta_blob_encode(&rec);
	if (!blob_meta) {
		rc = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = blob_writer_finish(w, blob_meta, strlen(blob_meta));
	if (rc) {
		snprintf(err, errlen, "writing the blob: %s", strerror(rc));
		goto out;
	}
	if (hook) {
		rc = hook(hook_ctx, rec.num, rec.day);
		if (rc) {
			snprintf(err, errlen, "recording the commit: %s",
				 strerror(rc));
			goto out;
		}
	}
	rc = store_spool_commit(vault_store(v), &sp, rec.day, rec.num);
	if (rc) {
		snprintf(err, errlen, "committing the blob: %s",
			 strerror(rc));
		goto out;
	}
	committed = 1;
	rc = insert_row(c, &rec, err, errlen);
	if (rc)
		goto out;
	*out = rec;
	log_info("ingested call c-%06" PRIu64 " (%" PRId64 " ms, agent %s)",
		 rec.num, rec.duration_ms, rec.agent[0] ? rec.agent : "none");
out:
	/* The catalog row is the commit point: a blob without one is taken
	 * back so that a failed ingest leaves nothing behind. */
	if (rc && committed)
		store_blob_unlink(vault_store(v), rec.day, rec.num);
	if (rc && !committed && sp.fd >= 0)
		store_spool_abort(vault_store(v), &sp);
	blob_writer_free(w);
	keys_secret_free(&key);
	free(blob_meta);
	explicit_bzero(&m, sizeof m);
	return rc;
}
