/* Call commands: import, calls, verify. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "callvault/audit.h"
#include "callvault/clock.h"
#include "callvault/incoming.h"
#include "callvault/ingest.h"
#include "callvault/retention.h"
#include "callvault/spool.h"

#define META_MAX (64 * 1024)

/* --- import ----------------------------------------------------------- */

static ssize_t fd_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	do
		n = pread(*(int *)ctx, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Reads a whole small file. Returns 0 or an errno; EFBIG past `max`. */
static int read_small(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t have = 0;
	ssize_t n;
	int rc = 0;

	if (fd < 0)
		return errno;
	buf = malloc(max + 1);
	if (!buf) {
		rc = ENOMEM;
		goto out;
	}
	while ((n = read(fd, buf + have, max + 1 - have)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = errno;
			goto out;
		}
		have += (size_t)n;
		if (have > max) {
			rc = EFBIG;
			goto out;
		}
	}
	buf[have] = '\0';
	*out = buf;
	*len = have;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

int cmd_import(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "meta", required_argument, NULL, 'm' },
		{ 0 },
	};
	const char *meta_path = NULL, *key_file = NULL;
	struct cli_opts o = { NULL, longopts, cli_opt_string, &meta_path };
	struct vault *v = NULL;
	struct audio_source src;
	struct call_record rec;
	struct stat st;
	char *pos[2], *meta = NULL, err[512] = "", id[CALL_ID_LEN];
	size_t meta_len = 0;
	int npos, rc, fd = -1;

	rc = cli_parse(argc, argv, &o, &key_file, pos, 2, &npos);
	if (rc)
		return rc;
	if (npos != 2 || !meta_path)
		return cli_usage();

	rc = read_small(meta_path, META_MAX, &meta, &meta_len);
	if (rc) {
		cli_error("%s: %s", meta_path,
			  rc == EFBIG ? "metadata larger than 64 KiB" :
					strerror(rc));
		rc = 1;
		goto out;
	}
	fd = open(pos[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		cli_error("%s: %s", pos[1], strerror(errno));
		rc = 1;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		cli_error("%s: not a regular file", pos[1]);
		rc = 1;
		goto out;
	}
	rc = cli_open_vault(pos[0], key_file, 0, &v);
	if (rc)
		goto out;
	src = (struct audio_source){ &fd, fd_pread, (uint64_t)st.st_size };
	rc = ingest_call(v, &src, meta, meta_len, 0, &rec, err, sizeof err);
	if (rc) {
		cli_error("%s: %s", pos[1], *err ? err : strerror(rc));
		cli_audit(v, "ingest", 0, "error", *err ? err : strerror(rc));
		rc = 1;
		goto out;
	}
	/* The call is committed; an audit failure is reported but does not
	 * undo it. */
	rc = cli_audit(v, "ingest", rec.num, "ok", "import");
	call_id_format(rec.num, id);
	printf("%s\n", id);
out:
	if (fd >= 0)
		close(fd);
	if (meta) {
		explicit_bzero(meta, meta_len);
		free(meta);
	}
	vault_close(v);
	return rc;
}

/* --- calls ------------------------------------------------------------ */

struct calls_opts {
	const char *date;
	const char *agent;
};

static int calls_opt(void *ctx, int opt, const char *arg)
{
	struct calls_opts *c = ctx;

	if (opt == 'd')
		c->date = arg;
	else if (opt == 'a')
		c->agent = arg;
	else
		return EXIT_USAGE;
	return 0;
}

static int print_call(void *ctx, const struct call_record *r)
{
	char id[CALL_ID_LEN], start[CLOCK_RFC3339_LEN], day[CLOCK_DAY_LEN],
		hhmmss[CLOCK_HHMMSS_LEN];

	(void)ctx;
	call_id_format(r->num, id);
	clock_format_rfc3339(r->start_ms, start);
	clock_format_day(r->day, day);
	clock_local_hhmmss(r->start_ms, hhmmss);
	printf("%-10s %s %.6s %-21s %8.2f %-8s %-20s %-15s %-15s %s%s\n", id,
	       day, hhmmss, start, (double)r->duration_ms / 1000.0,
	       r->direction[0] ? r->direction : "-",
	       r->agent[0] ? r->agent : CALL_UNASSIGNED_DIR,
	       r->customer_masked[0] ? r->customer_masked : "-",
	       r->service_number[0] ? r->service_number : "-",
	       r->channels == 2 ? "stereo" : "mono",
	       r->restricted ? " restricted" : "");
	return 0;
}

int cmd_calls(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "date", required_argument, NULL, 'd' },
		{ "agent", required_argument, NULL, 'a' },
		{ 0 },
	};
	struct calls_opts co = { 0 };
	struct cli_opts o = { NULL, longopts, calls_opt, &co };
	struct vault *v = NULL;
	struct catalog *c;
	const char *key_file = NULL;
	char *pos[1];
	int32_t day = -1;
	int rc;

	rc = cli_parse_exact(argc, argv, &o, &key_file, pos, 1);
	if (rc)
		return rc;
	if (co.date && clock_parse_day(co.date, &day) != 0) {
		cli_error("--date: \"%s\" is not a date (YYYY-MM-DD)", co.date);
		return EXIT_USAGE;
	}
	rc = cli_open_vault(pos[0], key_file, 0, &v);
	if (rc)
		return rc;
	c = cli_catalog(v);
	if (!c) {
		vault_close(v);
		return 1;
	}
	printf("%-10s %-10s %-6s %-21s %8s %-8s %-20s %-15s %-15s %s\n", "CALL",
	       "DAY", "TIME", "START (UTC)", "SECONDS", "DIR", "AGENT",
	       "CUSTOMER", "SERVICE", "AUDIO");
	rc = catalog_calls_list(c, day, co.agent, print_call, NULL);
	if (rc) {
		cli_error("%s", strerror(rc));
		rc = 1;
	}
	vault_close(v);
	return rc;
}

/* --- verify ----------------------------------------------------------- */

struct verify_ctx {
	struct vault *v;
	struct catalog *c;
	uint64_t ok, bad, total;
	uint64_t rows, bad_rows;
	const char *id;
};

static void bad_chunk(void *ctx, uint64_t chunk)
{
	struct verify_ctx *vc = ctx;

	printf("%s: chunk %" PRIu64 " fails authentication\n", vc->id, chunk);
}

static int verify_blob(void *ctx, int32_t day, uint64_t num)
{
	struct verify_ctx *vc = ctx;
	struct blob_reader *r = NULL;
	struct call_record rec;
	char id[CALL_ID_LEN];
	int rc;

	call_id_format(num, id);
	vc->id = id;
	cli_progress("verify", vc->ok + vc->bad + 1, vc->total);
	rc = catalog_call_get(vc->c, num, &rec);
	if (rc == ENOENT) {
		struct secret key = keys_secret_new();

		/* A blob without a row: a leftover of an erasure or expiry
		 * (its key is destroyed, nothing can read it), or a call the
		 * catalog lost (rebuild brings it back). */
		memset(&rec, 0, sizeof rec);
		rec.num = num;
		rec.day = day;
		if (catalog_tombstoned(vc->c, num) == 0)
			printf("%s: erased call; its key is destroyed and the "
			       "file can be deleted\n", id);
		else if (key.b && vault_call_key(vc->v, &rec, &key) == ENOENT)
			printf("%s: its key is destroyed (expired); the file "
			       "can be deleted\n", id);
		else
			printf("%s: blob has no catalog entry (run "
			       "rebuild)\n", id);
		keys_secret_free(&key);
		vc->bad++;
		return 0;
	}
	if (rc == EBADMSG)
		return 0; /* a forged row: reported by the row check */
	if (rc || rec.day != day) {
		printf("%s: catalog entry does not match the blob\n", id);
		vc->bad++;
		return 0;
	}
	rc = vault_blob_open(vc->v, &rec, &r);
	if (rc) {
		printf("%s: cannot open: %s\n", id,
		       rc == EBADMSG ? "header or trailer fails authentication" :
				       strerror(rc));
		vc->bad++;
		return 0;
	}
	if (blob_verify(r, bad_chunk, vc) != 0)
		vc->bad++;
	else
		vc->ok++;
	blob_close(r);
	return 0;
}

static int check_blob_present(void *ctx, const struct call_record *rec)
{
	struct verify_ctx *vc = ctx;
	char id[CALL_ID_LEN];
	int fd, rc;

	rc = store_blob_open(vault_store(vc->v), rec->day, rec->num, &fd);
	if (rc == 0) {
		close(fd);
		return 0;
	}
	call_id_format(rec->num, id);
	printf("%s: blob missing: %s\n", id, strerror(rc));
	vc->bad++;
	return 0;
}

static int bad_row(void *ctx, const char *table, const char *row)
{
	struct verify_ctx *vc = ctx;

	printf("catalog: %s row %s fails authentication (changed outside "
	       "callvault)\n", table, row);
	vc->bad_rows++;
	return 0;
}

int cmd_verify(int argc, char **argv)
{
	struct verify_ctx vc = { 0 };
	uint64_t bytes;
	const char *key_file = NULL;
	char *pos[1];
	int rc;

	rc = cli_parse_exact(argc, argv, NULL, &key_file, pos, 1);
	if (rc)
		return rc;
	rc = cli_open_vault(pos[0], key_file, 0, &vc.v);
	if (rc)
		return rc;
	vc.c = cli_catalog(vc.v);
	if (!vc.c) {
		vault_close(vc.v);
		return 1;
	}
	if (catalog_counts(vc.c, &vc.total, &bytes) != 0)
		vc.total = 0;
	rc = store_blob_foreach(vault_store(vc.v), verify_blob, &vc);
	cli_progress_end();
	if (!rc)
		rc = catalog_calls_list(vc.c, -1, NULL, check_blob_present, &vc);
	if (!rc)
		rc = catalog_verify_rows(vc.c, bad_row, &vc, &vc.rows);
	if (rc) {
		cli_error("%s", strerror(rc));
		vault_close(vc.v);
		return 1;
	}
	printf("%" PRIu64 " calls verified, %" PRIu64 " bad\n", vc.ok, vc.bad);
	printf("%" PRIu64 " catalog rows authenticated, %" PRIu64 " forged\n",
	       vc.rows - vc.bad_rows, vc.bad_rows);
	if (vc.bad)
		cli_error("%" PRIu64 " damaged or inconsistent call%s (listed "
			  "above)", vc.bad, vc.bad == 1 ? "" : "s");
	if (vc.bad_rows)
		cli_error("%" PRIu64 " catalog row%s changed outside callvault "
			  "(listed above; they are refused)", vc.bad_rows,
			  vc.bad_rows == 1 ? "" : "s");
	vault_close(vc.v);
	return vc.bad || vc.bad_rows ? 1 : 0;
}

/* --- audit ------------------------------------------------------------ */

struct audit_opts {
	const char *since;
	const char *user;
	const char *call;
	int verify;
};

static int audit_opt(void *ctx, int opt, const char *arg)
{
	struct audit_opts *a = ctx;

	switch (opt) {
	case 's':
		a->since = arg;
		return 0;
	case 'u':
		a->user = arg;
		return 0;
	case 'c':
		a->call = arg;
		return 0;
	case 'V':
		a->verify = 1;
		return 0;
	default:
		return EXIT_USAGE;
	}
}

static int print_audit(void *ctx, const struct catalog_audit *a)
{
	char at[CLOCK_RFC3339_LEN], id[CALL_ID_LEN] = "-";

	(void)ctx;
	clock_format_rfc3339(a->at_ms, at);
	if (a->call_num)
		call_id_format(a->call_num, id);
	printf("%-7" PRIu64 " %-24s %-7" PRIu32 " %-16s %-18s %-12s %-10s %-7s "
	       "%s\n",
	       a->seq, at, a->uid, a->login[0] ? a->login : "-", a->roles,
	       a->action, id, a->outcome, a->detail);
	return 0;
}

static void audit_bad(void *ctx, uint64_t seq, const char *why)
{
	(void)ctx;
	if (seq)
		printf("audit trail damaged at entry %" PRIu64 ": %s\n", seq,
		       why);
	else
		printf("audit trail damaged: %s\n", why);
}

int cmd_audit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "user", required_argument, NULL, 'u' },
		{ "call", required_argument, NULL, 'c' },
		{ "verify", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct audit_opts ao = { 0 };
	struct cli_opts o = { NULL, longopts, audit_opt, &ao };
	struct catalog_audit_filter f = { 0 };
	struct vault *v = NULL;
	struct catalog *c;
	const char *key_file = NULL;
	char *pos[1];
	int rc;

	rc = cli_parse_exact(argc, argv, &o, &key_file, pos, 1);
	if (rc)
		return rc;
	if (ao.since) {
		int32_t day;
		if (clock_parse_day(ao.since, &day) == 0) {
			/* A date means its start in the vault's zone; the
			 * zone is only known once the vault is open. */
			f.since_ms = -1 - (int64_t)day;
		} else if (clock_parse_rfc3339(ao.since, &f.since_ms) != 0) {
			cli_error("--since: \"%s\" is neither a date nor an "
				  "RFC 3339 time", ao.since);
			return EXIT_USAGE;
		}
	}
	if (ao.call && call_id_parse(ao.call, &f.call_num) != 0) {
		cli_error("--call: \"%s\" is not a call id (c-NNNNNN)", ao.call);
		return EXIT_USAGE;
	}
	f.login = ao.user;
	rc = cli_open_vault(pos[0], key_file, 0, &v);
	if (rc)
		return rc;
	c = cli_catalog(v);
	if (!c) {
		vault_close(v);
		return 1;
	}
	if (f.since_ms < 0)
		f.since_ms = clock_local_midnight_ms((int32_t)(-1 - f.since_ms));
	if (ao.verify) {
		rc = audit_verify(c, vault_keys(v), audit_bad, NULL);
		if (rc == 0)
			printf("audit trail intact\n");
		else if (rc != EBADMSG)
			cli_error("%s", strerror(rc));
		rc = rc ? 1 : 0;
	} else {
		printf("%-7s %-24s %-7s %-16s %-18s %-12s %-10s %-7s %s\n",
		       "SEQ", "TIME (UTC)", "UID", "LOGIN", "ROLES", "ACTION",
		       "CALL", "OUTCOME", "DETAIL");
		rc = catalog_audit_list(c, &f, print_audit, NULL);
		if (rc) {
			cli_error("%s", strerror(rc));
			rc = 1;
		}
	}
	vault_close(v);
	return rc;
}

/* --- quarantine ------------------------------------------------------- */

/* Quarantine ids are file names without their suffix: "in-abc" for a
 * recorder's sealed spool file, "blob-2026-11-27-c-000184" for a blob that
 * failed authentication at rebuild. */
#define QUARANTINED_BLOB "blob-"

static int print_quarantined(void *ctx, const char *name, const char *reason)
{
	const char *dot = strrchr(name, '.');
	size_t len = dot ? (size_t)(dot - name) : strlen(name);

	(void)ctx;
	printf("%-40.*s %s\n", (int)len, name, reason);
	return 0;
}

/* "in-abc" or "in-abc.spool" -> "in-abc.spool"; "blob-..." -> "blob-...cvb". */
static int quarantine_name(const char *id, char *out, size_t len)
{
	int blob = strncmp(id, QUARANTINED_BLOB, strlen(QUARANTINED_BLOB)) == 0;
	const char *sfx = blob ? ".cvb" : ".spool";
	size_t n = strlen(id), sl = strlen(sfx);

	if (n == 0 || strchr(id, '/') || id[0] == '.')
		return EINVAL;
	if (n > sl && strcmp(id + n - sl, sfx) == 0)
		n -= sl;
	if (snprintf(out, len, "%.*s%s", (int)n, id, sfx) >= (int)len)
		return EINVAL;
	return 0;
}

/* Writes the clear bytes of a quarantined file to `out` (new, 0600). */
static int quarantine_export(struct vault *v, const char *name,
			     const char *out)
{
	struct spool *sp = NULL;
	char buf[65536];
	uint64_t off = 0;
	int fd = -1, rc;

	if (strncmp(name, QUARANTINED_BLOB, strlen(QUARANTINED_BLOB)) == 0) {
		cli_error("%s: a blob that failed authentication has no clear "
			  "bytes to give; copy the file from quarantine/ for "
			  "analysis", name);
		return 1;
	}
	rc = spool_open(store_quarantine_dirfd(vault_store(v)), name,
			vault_keys(v), &sp);
	if (rc) {
		cli_error("%s: %s", name,
			  rc == EBADMSG ? "does not authenticate" :
					  strerror(rc));
		return 1;
	}
	fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		cli_error("%s: %s", out, strerror(errno));
		rc = 1;
		goto done;
	}
	for (;;) {
		ssize_t n = spool_pread(sp, buf, sizeof buf, off);
		if (n < 0) {
			cli_error("%s: %s", name, strerror((int)-n));
			rc = 1;
			break;
		}
		if (n == 0)
			break;
		if (write(fd, buf, (size_t)n) != n) {
			cli_error("%s: %s", out, strerror(errno));
			rc = 1;
			break;
		}
		off += (uint64_t)n;
	}
	if (!rc && fsync(fd) != 0) {
		cli_error("%s: %s", out, strerror(errno));
		rc = 1;
	}
	if (!rc)
		printf("%" PRIu64 " bytes written to %s\n", off, out);
done:
	explicit_bzero(buf, sizeof buf);
	if (fd >= 0)
		close(fd);
	if (rc && fd >= 0)
		unlink(out);
	spool_close(sp);
	return rc;
}

int cmd_quarantine(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ 0 },
	};
	const char *out = NULL, *key_file = NULL, *verb;
	struct cli_opts o = { NULL, longopts, cli_opt_string, &out };
	struct vault *v = NULL;
	char *pos[3], name[256];
	int npos, rc;

	rc = cli_parse(argc, argv, &o, &key_file, pos, 3, &npos);
	if (rc)
		return rc;
	if (npos < 1)
		return cli_usage();
	verb = npos >= 2 ? pos[1] : "list";
	if (strcmp(verb, "list") == 0 ? npos > 2 :
	    strcmp(verb, "export") == 0 ? npos != 3 || !out :
	    strcmp(verb, "drop") == 0 ? npos != 3 : 1)
		return cli_usage();
	if (npos == 3 && quarantine_name(pos[2], name, sizeof name) != 0) {
		cli_error("\"%s\" is not a quarantine id", pos[2]);
		return EXIT_USAGE;
	}
	rc = cli_open_vault(pos[0], key_file, 0, &v);
	if (rc)
		return rc;
	if (strcmp(verb, "list") == 0) {
		printf("%-40s %s\n", "ID", "REASON");
		rc = store_quarantine_foreach(vault_store(v),
					      print_quarantined, NULL);
		if (rc) {
			cli_error("%s", strerror(rc));
			rc = 1;
		}
	} else if (strcmp(verb, "export") == 0) {
		rc = quarantine_export(v, name, out);
		if (cli_audit(v, "quarantine-export", 0, rc ? "error" : "ok",
			      name) != 0)
			rc = 1;
	} else {
		rc = store_quarantine_drop(vault_store(v), name);
		if (rc)
			cli_error("%s: %s", pos[2], strerror(rc));
		rc = rc ? 1 : 0;
		if (cli_audit(v, "quarantine-drop", 0, rc ? "error" : "ok",
			      name) != 0)
			rc = 1;
	}
	vault_close(v);
	return rc;
}

/* --- recover ---------------------------------------------------------- */

struct recover_ctx {
	struct vault *v;
	unsigned committed, rejected;
	int audit_failed;
};

static void recover_report(void *ctx, int rc, uint64_t num, const char *path)
{
	struct recover_ctx *r = ctx;
	char id[CALL_ID_LEN];

	if (rc == 0) {
		call_id_format(num, id);
		printf("%s: committed as %s\n", path, id);
		r->committed++;
	} else {
		printf("%s: refused, quarantined\n", path);
		r->rejected++;
	}
	/* Not the path in the trail: recorders choose names. */
	if (cli_audit(r->v, "ingest", num, rc ? "error" : "ok",
		      rc ? "rejected: quarantined" : "recovered") != 0)
		r->audit_failed = 1;
}

int cmd_recover(int argc, char **argv)
{
	struct recover_ctx r = { 0 };
	struct incoming *in = NULL;
	const char *key_file = NULL;
	unsigned recovered = 0, quarantined = 0;
	char *pos[1];
	int rc;

	rc = cli_parse_exact(argc, argv, NULL, &key_file, pos, 1);
	if (rc)
		return rc;
	rc = cli_open_vault(pos[0], key_file, 0, &r.v);
	if (rc)
		return rc;
	if (store_claim_spool(vault_store(r.v)) != 0) {
		cli_error("%s is mounted: its mount recovers by itself",
			  pos[0]);
		vault_close(r.v);
		return 1;
	}
	rc = incoming_new(r.v, &in);
	if (!rc)
		rc = incoming_recover(in, recover_report, &r, &recovered,
				      &quarantined);
	/* Closed files whose other half has not come stay in the spool for
	 * the next mount, which puts them back in incoming/. */
	incoming_free(in);
	if (rc) {
		cli_error("%s", strerror(rc));
		rc = 1;
	} else {
		printf("%u pending files found, %u quarantined; %u calls "
		       "committed, %u refused\n", recovered, quarantined,
		       r.committed, r.rejected);
	}
	vault_close(r.v);
	return rc || r.audit_failed ? 1 : 0;
}

/* --- sweep ------------------------------------------------------------ */

static void sweep_progress(void *ctx, const struct call_record *rec)
{
	uint64_t *removed = ctx;

	(void)rec;
	cli_progress("sweep: calls removed", ++*removed, 0);
}

int cmd_sweep(int argc, char **argv)
{
	uint64_t removed = 0;
	struct retention_stats st;
	struct vault *v = NULL;
	const char *key_file = NULL;
	char *pos[1];
	int rc;

	rc = cli_parse_exact(argc, argv, NULL, &key_file, pos, 1);
	if (rc)
		return rc;
	rc = cli_open_vault(pos[0], key_file, 0, &v);
	if (rc)
		return rc;
	rc = retention_sweep(v, clock_now_ms(), sweep_progress, &removed, &st);
	cli_progress_end();
	if (rc) {
		cli_error("%s", strerror(rc));
		rc = 1;
	} else {
		printf("%u expired calls removed, %u day keys destroyed\n",
		       st.calls, st.keys);
		if (st.errors) {
			cli_error("%u steps failed (see above); the next sweep "
				  "retries them", st.errors);
			rc = 1;
		}
	}
	vault_close(v);
	return rc;
}
