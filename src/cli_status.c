/* callvault status: what an operator or a monitoring probe asks of a
 * vault, mounted or not. Reads only; the audit chain check is the one
 * part that costs time on a long trail. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "callvault/audit.h"
#include "callvault/clock.h"
#include "callvault/retention.h"
#include "callvault/store.h"

/* The sweep leaves these in the audit trail when it removes something; a
 * sweep with nothing to do leaves no entry. */
static const char *const sweep_actions[] = { "expire", "destroy-key", NULL };

struct status {
	const char *dir;
	char mounted_at[4096];     /* "" if not mounted */
	struct catalog_summary sum;
	int retention_months;
	const char *cipher;        /* of new recordings */
	int64_t next_expiry_ms;    /* -1: nothing will expire */
	uint64_t pending;          /* spool files of incoming/ */
	uint64_t quarantined;
	int have_sweep;
	struct catalog_audit sweep;
	uint64_t audit_entries;
	int audit_intact;
	uint64_t audit_bad_seq;
	char audit_why[160];
};

static int count_spool(void *ctx, const char *name)
{
	(void)name;
	(*(uint64_t *)ctx)++;
	return 0;
}

static int count_quarantined(void *ctx, const char *name, const char *reason)
{
	(void)name;
	(void)reason;
	(*(uint64_t *)ctx)++;
	return 0;
}

static void audit_bad(void *ctx, uint64_t seq, const char *why)
{
	struct status *s = ctx;

	s->audit_bad_seq = seq;
	snprintf(s->audit_why, sizeof s->audit_why, "%s", why);
}

/* The mount point of the vault if it is mounted: libfuse puts
 * "callvault:VAULT" (fs.c's fsname) in the source field. */
static void find_mount(struct status *s)
{
	char want[4200], src[4200], mnt[4096];
	FILE *f = fopen("/proc/self/mounts", "re");

	s->mounted_at[0] = '\0';
	if (!f)
		return;
	snprintf(want, sizeof want, "callvault:%s", s->dir);
	while (fscanf(f, "%4199s %4095s %*[^\n]", src, mnt) == 2) {
		if (strcmp(src, want) == 0) {
			snprintf(s->mounted_at, sizeof s->mounted_at, "%s",
				 mnt);
			break;
		}
	}
	fclose(f);
}

static int gather(struct vault *v, struct status *s)
{
	struct catalog *c = cli_catalog(v);
	unsigned char mac[32];
	int rc;

	if (!c)
		return 1;
	s->dir = vault_dir(v);
	find_mount(s);
	s->retention_months = vault_config(v)->retention_months;
	s->cipher = blob_alg_name(vault_blob_alg(v));
	rc = catalog_summary(c, clock_now_ms(), &s->sum);
	if (rc) {
		cli_error("catalog: %s", strerror(rc));
		return 1;
	}
	s->next_expiry_ms = s->sum.oldest_free_start_ms < 0 ? -1 :
		retention_expiry_ms(s->sum.oldest_free_start_ms,
				    s->retention_months);
	rc = store_spool_foreach(vault_store(v), count_spool, &s->pending);
	if (!rc)
		rc = store_quarantine_foreach(vault_store(v),
					      count_quarantined,
					      &s->quarantined);
	if (rc) {
		cli_error("%s: %s", s->dir, strerror(rc));
		return 1;
	}
	rc = catalog_audit_last(c, sweep_actions, &s->sweep);
	if (rc && rc != ENOENT) {
		cli_error("audit trail: %s", strerror(rc));
		return 1;
	}
	s->have_sweep = rc == 0;
	rc = catalog_audit_head(c, &s->audit_entries, mac);
	if (!rc)
		rc = audit_verify(c, vault_keys(v), audit_bad, s);
	if (rc && rc != EBADMSG) {
		cli_error("audit trail: %s", strerror(rc));
		return 1;
	}
	s->audit_intact = rc == 0;
	return 0;
}

static void time_or_none(int64_t ms, char out[CLOCK_RFC3339_LEN])
{
	if (ms < 0)
		snprintf(out, CLOCK_RFC3339_LEN, "-");
	else
		clock_format_rfc3339(ms, out);
}

static void print_text(const struct status *s)
{
	char t[CLOCK_RFC3339_LEN], id[CALL_ID_LEN];

	printf("vault:        %s\n", s->dir);
	printf("mounted:      %s\n", *s->mounted_at ? s->mounted_at : "no");
	printf("calls:        %" PRIu64 " on %" PRIu64 " days, %" PRIu64
	       " MiB of audio\n", s->sum.calls, s->sum.days,
	       s->sum.bytes >> 20);
	printf("restricted:   %" PRIu64 "\n", s->sum.restricted);
	time_or_none(s->sum.oldest_start_ms, t);
	printf("oldest call:  %s\n", t);
	time_or_none(s->next_expiry_ms, t);
	printf("next expiry:  %s (retention %d months)\n", t,
	       s->retention_months);
	printf("pending:      %" PRIu64 " spool files of incoming/\n",
	       s->pending);
	printf("quarantine:   %" PRIu64 "\n", s->quarantined);
	printf("cipher:       %s (new recordings)\n", s->cipher);
	if (s->have_sweep) {
		clock_format_rfc3339(s->sweep.at_ms, t);
		if (s->sweep.call_num) {
			call_id_format(s->sweep.call_num, id);
			printf("last sweep:   %s (%s %s)\n", t,
			       s->sweep.action, id);
		} else {
			printf("last sweep:   %s (%s)\n", t, s->sweep.action);
		}
	} else {
		printf("last sweep:   none recorded\n");
	}
	if (s->audit_intact)
		printf("audit trail:  intact, %" PRIu64 " entries\n",
		       s->audit_entries);
	else
		printf("audit trail:  BROKEN at entry %" PRIu64 ": %s\n",
		       s->audit_bad_seq, s->audit_why);
}

/* A time as RFC 3339, or JSON null. */
static json_t *json_time(int64_t ms)
{
	char t[CLOCK_RFC3339_LEN];

	if (ms < 0)
		return json_null();
	clock_format_rfc3339(ms, t);
	return json_string(t);
}

static int print_json(const struct status *s)
{
	json_t *o, *sweep = json_null(), *audit;
	char id[CALL_ID_LEN];
	char *text;

	if (s->have_sweep) {
		call_id_format(s->sweep.call_num, id);
		sweep = json_pack("{s:o, s:s, s:s?}", "at",
				  json_time(s->sweep.at_ms), "action",
				  s->sweep.action, "call",
				  s->sweep.call_num ? id : NULL);
	}
	audit = json_pack("{s:I, s:b}", "entries",
			  (json_int_t)s->audit_entries, "intact",
			  s->audit_intact);
	if (audit && !s->audit_intact) {
		json_object_set_new(audit, "first_bad_entry",
				    json_integer((json_int_t)s->audit_bad_seq));
		json_object_set_new(audit, "reason",
				    json_string(s->audit_why));
	}
	o = json_pack("{s:s, s:s?, s:I, s:I, s:I, s:I, s:o, s:o, s:i, s:I,"
		      " s:I, s:s, s:o, s:o}",
		      "vault", s->dir,
		      "mounted_at", *s->mounted_at ? s->mounted_at : NULL,
		      "calls", (json_int_t)s->sum.calls,
		      "audio_bytes", (json_int_t)s->sum.bytes,
		      "days", (json_int_t)s->sum.days,
		      "restricted", (json_int_t)s->sum.restricted,
		      "oldest_call", json_time(s->sum.oldest_start_ms),
		      "next_expiry", json_time(s->next_expiry_ms),
		      "retention_months", s->retention_months,
		      "pending", (json_int_t)s->pending,
		      "quarantined", (json_int_t)s->quarantined,
		      "cipher", s->cipher,
		      "last_sweep", sweep ? sweep : json_null(),
		      "audit", audit ? audit : json_null());
	if (!o) {
		cli_error("out of memory");
		return 1;
	}
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text) {
		cli_error("out of memory");
		return 1;
	}
	printf("%s\n", text);
	free(text);
	return 0;
}

static int status_opt(void *ctx, int opt, const char *arg)
{
	(void)arg;
	if (opt != 'j')
		return EXIT_USAGE;
	*(int *)ctx = 1;
	return 0;
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	const char *key_file = NULL;
	int json = 0;
	struct cli_opts o = { NULL, longopts, status_opt, &json };
	struct status s;
	struct vault *v = NULL;
	char *pos[1];
	int rc;

	memset(&s, 0, sizeof s);
	rc = cli_parse_exact(argc, argv, &o, &key_file, pos, 1);
	if (rc)
		return rc;
	rc = cli_open_vault(pos[0], key_file, VAULT_READONLY, &v);
	if (rc)
		return rc;
	rc = gather(v, &s);
	if (!rc)
		rc = json ? print_json(&s) : (print_text(&s), 0);
	if (!rc && !s.audit_intact) {
		/* Monitoring reads the exit status: a broken chain fails. */
		cli_error("the audit trail is broken at entry %" PRIu64 ": %s",
			  s.audit_bad_seq, s.audit_why);
		rc = 1;
	}
	vault_close(v);
	return rc;
}
