/* Erasure, restriction and amendment of calls (rights.h). */
#include "callvault/rights.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callvault/audit.h"
#include "callvault/bytes.h"
#include "callvault/clock.h"
#include "callvault/log.h"
#include "callvault/meta.h"
#include "callvault/retention.h"
#include "callvault/vec.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A reason is one line of printable text: it ends up in the audit trail. */
static int reason_ok(const char *reason, char *err, size_t errlen)
{
	size_t len = reason ? strlen(reason) : 0;

	if (len == 0 || len > RIGHTS_REASON_MAX) {
		set_err(err, errlen, "a reason of 1 to %d characters is "
			"required", RIGHTS_REASON_MAX);
		return EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)reason[i] < 0x20 || reason[i] == 0x7f) {
			set_err(err, errlen, "the reason must be one line "
				"of printable text");
			return EINVAL;
		}
	return 0;
}

static struct audit_event event(const struct rights_actor *who,
				const char *action, uint64_t num,
				const char *outcome, const char *detail)
{
	return (struct audit_event){ .uid = who->uid,
				     .login = who->login ? who->login : "",
				     .roles = who->roles,
				     .action = action,
				     .call_num = num,
				     .outcome = outcome,
				     .detail = detail };
}

/* Records a refused act; the refusal itself is what the caller reports. */
static void audit_refusal(struct vault *v, struct catalog *c,
			  const struct rights_actor *who, const char *action,
			  uint64_t num, const char *why)
{
	struct audit_event ev = event(who, action, num, "denied", why);
	int rc = audit_append(c, vault_keys(v), &ev, 1);

	if (rc)
		log_warnx("audit: %s of c-%06" PRIu64 ": %s", action, num,
			  strerror(rc));
}

/* Ends the transaction of an act whose outcome is `rc`: on success the
 * act's audit entry joins it and both commit together; on failure
 * neither is kept. */
static int end_audited(struct vault *v, struct catalog *c,
		       const struct audit_event *ev, int rc)
{
	if (!rc)
		rc = audit_append_in(c, vault_keys(v), ev, 1);
	if (rc)
		catalog_rollback(c);
	else
		rc = catalog_commit(c);
	return rc;
}

/* Loads a live call: ENOENT with a reason if there is none or it has
 * expired. */
static int live_call(struct vault *v, struct catalog *c, uint64_t num,
		     struct call_record *rec, char *err, size_t errlen)
{
	char id[CALL_ID_LEN];
	int rc = catalog_call_get(c, num, rec);

	call_id_format(num, id);
	if (rc == 0 &&
	    retention_expired(rec, vault_config(v)->retention_months,
			      clock_now_ms()))
		rc = ENOENT;
	if (rc == ENOENT)
		set_err(err, errlen, "%s: no such call", id);
	else if (rc)
		set_err(err, errlen, "catalog: %s", strerror(rc));
	return rc;
}

/* --- the erasure log ------------------------------------------------- */

/* One line per erasure: "c-000184 20419 1795771815000 MAC\n", MAC = hex
 * keyed BLAKE2b (catalog MAC subkey) over "cverase1", number, day and
 * time, so that nobody without the master key can add (or alter) a line
 * to make rebuild delete a call. */
#define ERASE_LINE_MAX 160

static void erasure_mac(struct vault *v, uint64_t num, int32_t day,
			int64_t at_ms, char hex[65])
{
	unsigned char n[8], d[4], t[8], mac[32];
	const struct keys_part parts[] = {
		{ "cverase1", 8 }, { n, 8 }, { d, 4 }, { t, 8 },
	};

	le64_put(n, num);
	le32_put(d, (uint32_t)day);
	le64_put(t, (uint64_t)at_ms);
	keys_mac(keys_subkey(vault_keys(v), KEYS_CATALOG_MAC), parts,
		 sizeof parts / sizeof parts[0], mac);
	for (size_t i = 0; i < sizeof mac; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

/* Appends the erasure of `rec` to the log, durably, before anything is
 * destroyed: a restore of a backup older than the erasure would otherwise
 * bring the call back, since the backup holds its key. */
static int log_erasure(struct vault *v, const struct call_record *rec,
		       int64_t at_ms)
{
	char line[ERASE_LINE_MAX], id[CALL_ID_LEN], mac[65];
	int fd, n, rc = 0;

	call_id_format(rec->num, id);
	erasure_mac(v, rec->num, rec->day, at_ms, mac);
	n = snprintf(line, sizeof line, "%s %d %" PRId64 " %s\n", id,
		     (int)rec->day, at_ms, mac);
	fd = open(vault_erasure_log(v),
		  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return errno;
	if (write(fd, line, (size_t)n) != n || fsync(fd) != 0)
		rc = errno ? errno : EIO;
	close(fd);
	return rc;
}

int rights_replay_erasures(struct vault *v, unsigned *added,
			   unsigned *bad)
{
	struct catalog *c = vault_catalog(v);
	char line[ERASE_LINE_MAX], id[CALL_ID_LEN], mac[65], want[65];
	FILE *f;
	int rc = 0;

	*added = *bad = 0;
	if (!c)
		return EIO;
	f = fopen(vault_erasure_log(v), "re");
	if (!f)
		return errno == ENOENT ? 0 : errno;
	while (!rc && fgets(line, sizeof line, f)) {
		long long day, at;
		uint64_t num;

		if (sscanf(line, "%23s %lld %lld %64s", id, &day, &at, mac) !=
			    4 ||
		    call_id_parse(id, &num) != 0 || day < INT32_MIN ||
		    day > INT32_MAX) {
			(*bad)++;
			continue;
		}
		erasure_mac(v, num, (int32_t)day, at, want);
		if (strcmp(mac, want) != 0) {
			log_warnx("%s: a line for %s does not authenticate; "
				  "ignored", vault_erasure_log(v), id);
			(*bad)++;
			continue;
		}
		if (catalog_tombstoned(c, num) == 0)
			continue;
		rc = catalog_tombstone_put(c, num, (int32_t)day, at);
		if (!rc)
			(*added)++;
	}
	fclose(f);
	return rc;
}

/* Makes the key store forget call `rec`'s key: punctures its day's tree,
 * deletes its own key, restriction and notes, and writes the tombstone.
 * One transaction in one file. */
static int shred_call_key(struct vault *v, struct catalog *c,
			  const struct call_record *rec)
{
	struct keys_node node, repl[KEYS_TREE_DEPTH];
	size_t n = 0;
	int rc;

	rc = catalog_begin(c);
	if (rc)
		return rc;
	rc = catalog_tombstone_put(c, rec->num, rec->day, clock_now_ms());
	if (!rc)
		rc = catalog_call_purge_ks(c, rec->num);
	if (!rc) {
		rc = catalog_epoch_node(c, rec->day, rec->num, &node);
		if (rc == 0)
			rc = keys_puncture(vault_keys(v), rec->day, &node,
					   rec->num, repl, &n);
		if (rc == 0)
			rc = catalog_epoch_replace(c, rec->day, &node, repl,
						   n);
		else if (rc == ENOENT)
			rc = 0; /* the day's key is gone already */
	}
	if (rc)
		catalog_rollback(c);
	else
		rc = catalog_commit(c);
	return rc;
}

/* Deletes a tombstoned call's row (with `ev` in the audit trail, in the
 * same transaction) and its blob. */
static int remove_call(struct vault *v, struct catalog *c,
		       const struct call_record *rec,
		       const struct audit_event *ev)
{
	int rc = catalog_begin(c);

	if (rc)
		return rc;
	rc = end_audited(v, c, ev, catalog_call_delete(c, rec->num));
	if (rc)
		return rc;
	rc = store_blob_unlink(vault_store(v), rec->day, rec->num);
	if (rc == ENOENT)
		rc = 0;
	if (rc)
		log_warnx("erase: c-%06" PRIu64 ": cannot delete the blob "
			  "(its key is destroyed): %s", rec->num, strerror(rc));
	return 0;
}

/* The catalog connection for an act that needs a reason: checks both.
 * NULL with *rc and err set if either is missing. */
static struct catalog *act_catalog(struct vault *v, const char *reason,
				   char *err, size_t errlen, int *rc)
{
	struct catalog *c = vault_catalog(v);

	if (!c) {
		set_err(err, errlen, "cannot open the catalog");
		*rc = EIO;
		return NULL;
	}
	*rc = reason_ok(reason, err, errlen);
	return *rc ? NULL : c;
}

int rights_erase(struct vault *v, uint64_t num, const struct rights_actor *who,
		 const char *reason, char *err, size_t errlen)
{
	struct call_record rec;
	struct audit_event ev;
	char detail[CATALOG_AUDIT_DETAIL_LEN];
	int rc;
	struct catalog *c = act_catalog(v, reason, err, errlen, &rc);

	if (!c)
		return rc;
	rc = catalog_call_get(c, num, &rec);
	if (rc == ENOENT && catalog_tombstoned(c, num) == 0) {
		set_err(err, errlen, "c-%06" PRIu64 " was erased before", num);
		return EALREADY;
	}
	if (rc) {
		rc = live_call(v, c, num, &rec, err, errlen);
		if (rc == ENOENT)
			audit_refusal(v, c, who, "erase", num, "no such call");
		return rc;
	}
	if (rec.restricted) {
		set_err(err, errlen, "c-%06" PRIu64 " is restricted (legal "
			"hold); lift the restriction first", num);
		audit_refusal(v, c, who, "erase", num, "restricted");
		return EBUSY;
	}
	/* The log first, then the key: once both are durable, nothing
	 * brings the call back, whatever happens to the rest of this
	 * function or to the vault directory. */
	rc = log_erasure(v, &rec, clock_now_ms());
	if (rc) {
		set_err(err, errlen, "%s: %s", vault_erasure_log(v),
			strerror(rc));
		return rc;
	}
	rc = shred_call_key(v, c, &rec);
	if (rc) {
		set_err(err, errlen, "key store: %s", strerror(rc));
		return rc;
	}
	snprintf(detail, sizeof detail, "reason: %s", reason);
	ev = event(who, "erase", num, "ok", detail);
	rc = remove_call(v, c, &rec, &ev);
	if (rc) {
		set_err(err, errlen, "the key is destroyed, but the catalog "
			"row stays until the next sweep: %s", strerror(rc));
		return rc;
	}
	if (catalog_checkpoint(c) != 0)
		log_warnx("erase: a reader holds the WAL; the next sweep "
			  "checkpoints it");
	log_info("erase: c-%06" PRIu64 " erased", num);
	return 0;
}

int rights_restrict(struct vault *v, uint64_t num, int64_t until_ms,
		    const struct rights_actor *who, const char *reason,
		    char *err, size_t errlen)
{
	struct catalog *c;
	struct catalog_restriction r = { .num = num };
	unsigned char wrapped[KEYS_WRAPPED_LEN];
	struct secret key = keys_secret_new();
	struct call_record rec;
	struct audit_event ev;
	char detail[CATALOG_AUDIT_DETAIL_LEN], until[CLOCK_RFC3339_LEN];
	int rc;

	if (!key.b) {
		set_err(err, errlen, "out of memory");
		return ENOMEM;
	}
	c = act_catalog(v, reason, err, errlen, &rc);
	if (!c)
		goto out;
	r.since_ms = clock_now_ms();
	if (until_ms != 0 && until_ms <= r.since_ms) {
		set_err(err, errlen, "--until must be in the future");
		rc = EINVAL;
		goto out;
	}
	r.until_ms = until_ms;
	snprintf(r.by, sizeof r.by, "%s", who->login ? who->login : "");
	snprintf(r.reason, sizeof r.reason, "%s", reason);
	rc = live_call(v, c, num, &rec, err, errlen);
	if (rc) {
		if (rc == ENOENT)
			audit_refusal(v, c, who, "restrict", num,
				      "no such call");
		goto out;
	}
	/* The call's own key, so that it outlives its day's tree. */
	rc = vault_call_key(v, &rec, &key);
	if (!rc)
		rc = keys_call_wrap(vault_keys(v), rec.day, num, &key, wrapped);
	if (rc) {
		set_err(err, errlen, "the call's key: %s", strerror(rc));
		goto out;
	}
	if (until_ms)
		clock_format_rfc3339(until_ms, until);
	snprintf(detail, sizeof detail, "until %s; reason: %s",
		 until_ms ? until : "lifted", reason);
	ev = event(who, "restrict", num, "ok", detail);
	rc = catalog_begin(c);
	if (rc)
		goto db_err;
	/* The row's restricted_until decides; the key store keeps the
	 * details for rebuild. */
	rc = catalog_call_key_put(c, num, rec.day, wrapped);
	if (!rc)
		rc = catalog_restriction_put(c, &r);
	if (!rc)
		rc = catalog_call_restrict(c, num, until_ms ? until_ms
							     : CALL_UNTIL_LIFTED);
	rc = end_audited(v, c, &ev, rc);
db_err:
	if (rc)
		set_err(err, errlen, "catalog: %s", strerror(rc));
out:
	keys_secret_free(&key);
	return rc;
}

int rights_unrestrict(struct vault *v, uint64_t num,
		      const struct rights_actor *who, const char *reason,
		      char *err, size_t errlen)
{
	struct audit_event ev;
	char detail[CATALOG_AUDIT_DETAIL_LEN];
	int rc;
	struct catalog *c = act_catalog(v, reason, err, errlen, &rc);

	if (!c)
		return rc;
	snprintf(detail, sizeof detail, "reason: %s", reason);
	ev = event(who, "unrestrict", num, "ok", detail);
	rc = catalog_begin(c);
	if (rc)
		goto out;
	/* The call keeps its own key: its day's tree may be gone. */
	rc = catalog_restriction_del(c, num);
	if (!rc)
		rc = catalog_call_restrict(c, num, 0);
	rc = end_audited(v, c, &ev, rc);
out:
	if (rc == ENOENT) {
		set_err(err, errlen, "c-%06" PRIu64 " is not restricted", num);
		audit_refusal(v, c, who, "unrestrict", num, "not restricted");
	} else if (rc) {
		set_err(err, errlen, "catalog: %s", strerror(rc));
	}
	return rc;
}

int rights_amend(struct vault *v, uint64_t num, const struct rights_actor *who,
		 const char *note, char *err, size_t errlen)
{
	struct catalog *c = vault_catalog(v);
	struct call_record rec;
	struct audit_event ev;
	int rc;

	if (!c) {
		set_err(err, errlen, "cannot open the catalog");
		return EIO;
	}
	if (!note || !*note || strlen(note) >= CATALOG_NOTE_LEN ||
	    !meta_text_valid(note)) {
		set_err(err, errlen, "a note is 1 to %d bytes of UTF-8 text",
			CATALOG_NOTE_LEN - 1);
		return EINVAL;
	}
	rc = live_call(v, c, num, &rec, err, errlen);
	if (rc) {
		if (rc == ENOENT)
			audit_refusal(v, c, who, "amend", num, "no such call");
		return rc;
	}
	/* The note's text stays out of the trail: it may hold personal
	 * data, and the note itself is the record. */
	ev = event(who, "amend", num, "ok", "note appended");
	rc = catalog_begin(c);
	if (rc)
		goto out;
	rc = catalog_note_add(c, num, clock_now_ms(),
			      who->login ? who->login : "", note);
	rc = end_audited(v, c, &ev, rc);
out:
	if (rc)
		set_err(err, errlen, "catalog: %s", strerror(rc));
	return rc;
}

struct tombstoned {
	struct call_record *v;
	size_t n, cap;
};

static int take_tombstoned(void *ctx, const struct call_record *rec)
{
	struct tombstoned *t = ctx;
	struct call_record *nv = vec_reserve(t->v, &t->cap, t->n, sizeof *nv);

	if (!nv)
		return ENOMEM;
	t->v = nv;
	t->v[t->n++] = *rec;
	return 0;
}

int rights_finish_erasures(struct vault *v,
			   void (*gone)(void *ctx,
					const struct call_record *rec),
			   void *ctx, unsigned *n)
{
	const struct rights_actor sweeper = { .uid = 0, .login = "" };
	struct catalog *c = vault_catalog(v);
	struct tombstoned t = { 0 };
	int rc;

	*n = 0;
	if (!c)
		return EIO;
	rc = catalog_calls_tombstoned(c, take_tombstoned, &t);
	for (size_t i = 0; !rc && i < t.n; i++) {
		struct audit_event ev = event(&sweeper, "erase", t.v[i].num,
					      "ok", "interrupted erasure "
					      "completed");

		/* The tombstone is there; make sure the key is gone too. */
		rc = shred_call_key(v, c, &t.v[i]);
		if (!rc)
			rc = remove_call(v, c, &t.v[i], &ev);
		if (rc) {
			log_warnx("erase: c-%06" PRIu64 ": %s", t.v[i].num,
				  strerror(rc));
			continue;
		}
		(*n)++;
		if (gone)
			gone(ctx, &t.v[i]);
	}
	free(t.v);
	return rc;
}

struct notes {
	struct meta_note *v;
	size_t n, cap;
};

static int take_note(void *ctx, int64_t at_ms, const char *login,
		     const char *text)
{
	struct notes *ns = ctx;
	struct meta_note *note;
	struct meta_note *nv = vec_reserve(ns->v, &ns->cap, ns->n, sizeof *nv);

	if (!nv)
		return ENOMEM;
	ns->v = nv;
	note = &ns->v[ns->n];
	note->at_ms = at_ms;
	snprintf(note->author, sizeof note->author, "%s", login);
	note->text = strdup(text);
	if (!note->text)
		return ENOMEM;
	ns->n++;
	return 0;
}

char *rights_render_json(struct catalog *c, const struct call_record *rec,
			 size_t *len)
{
	struct notes ns = { 0 };
	char *out = NULL;

	if (catalog_notes_of(c, rec->num, take_note, &ns) == 0)
		out = meta_render(rec, ns.v, ns.n, len);
	for (size_t i = 0; i < ns.n; i++)
		free((char *)ns.v[i].text);
	free(ns.v);
	return out;
}
