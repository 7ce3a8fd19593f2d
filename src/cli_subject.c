/* Rights of the data subject: subject find (access) and subject export
 * (a copy of the recordings and their metadata for the person).
 *
 * A customer number is found through its keyed hash (the calls_number
 * index), so no call is decrypted to look for it. The number itself never
 * reaches the audit trail, a log line or any file but the export. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "callvault/bytes.h"
#include "callvault/fdio.h"
#include "callvault/clock.h"
#include "callvault/meta.h"
#include "callvault/retention.h"
#include "callvault/vec.h"

/* Longest --reason: the audit detail holds 255 bytes, with the count. */
#define REASON_MAX 200
/* A number is recognised in a --reason by this many trailing digits. */
#define REASON_NUMBER_DIGITS 7
#define SUMS_NAME "SHA256SUMS"
#define NAME_LEN (CALL_ID_LEN + 16)

struct subject_opts {
	const char *number;
	const char *reason;
	const char *out;
};

static int subject_opt(void *ctx, int opt, const char *arg)
{
	struct subject_opts *so = ctx;

	switch (opt) {
	case 'n':
		so->number = arg;
		return 0;
	case 'r':
		so->reason = arg;
		return 0;
	case 'o':
		so->out = arg;
		return 0;
	default:
		return EXIT_USAGE;
	}
}

/* The calls of one subject that have not expired, by start time. */
struct subject {
	struct call_record *calls;
	size_t n, cap;
	int64_t now_ms;
	int months;
};

static int collect(void *ctx, const struct call_record *rec)
{
	struct subject *s = ctx;
	struct call_record *p;

	/* Expired calls are gone for every view, even before the sweeper
	 * deletes them; restricted ones are kept (retention_expired). */
	if (retention_expired(rec, s->months, s->now_ms))
		return 0;
	p = vec_reserve(s->calls, &s->cap, s->n, sizeof *p);
	if (!p)
		return ENOMEM;
	s->calls = p;
	s->calls[s->n++] = *rec;
	return 0;
}

/* 1 if the digits of `reason` hold the last REASON_NUMBER_DIGITS digits of
 * `e164`: the trail must not hold the number, not even by accident. */
static int reason_holds_number(const char *reason, const char *e164)
{
	char digits[REASON_MAX + 1];
	size_t n = 0, len = strlen(e164);

	for (const char *p = reason; *p && n < sizeof digits - 1; p++)
		if (*p >= '0' && *p <= '9')
			digits[n++] = *p;
	digits[n] = '\0';
	return len > REASON_NUMBER_DIGITS &&
	       strstr(digits, e164 + len - REASON_NUMBER_DIGITS) != NULL;
}

/* Checks --reason: short, one line, without the number. Returns 0 or
 * EXIT_USAGE after saying why. */
static int check_reason(const char *reason, const char *e164)
{
	if (!reason)
		return 0;
	if (strlen(reason) > REASON_MAX) {
		cli_error("--reason: longer than %d bytes", REASON_MAX);
		return EXIT_USAGE;
	}
	for (const unsigned char *p = (const unsigned char *)reason; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			cli_error("--reason: control characters are not "
				  "allowed");
			return EXIT_USAGE;
		}
	}
	if (reason_holds_number(reason, e164)) {
		cli_error("--reason must not contain the customer number (the "
			  "audit trail never holds it)");
		return EXIT_USAGE;
	}
	return 0;
}

/* The audit detail: how many calls, what failed, why it was done. Never
 * the number or a path (a path may be named after the person). */
static void audit_detail(char *out, size_t len, size_t ncalls,
			 const char *failure, const char *reason)
{
	snprintf(out, len, "%zu call%s%s%s%s%s", ncalls, ncalls == 1 ? "" : "s",
		 failure ? "; failed: " : "", failure ? failure : "",
		 reason ? "; reason: " : "", reason ? reason : "");
}

/* Parses the command line, opens the vault and turns --number into its
 * E.164 form. Returns 0, EXIT_USAGE or 1 (said why). */
static int subject_start(int argc, char **argv, struct subject_opts *so,
			 int need_out, struct vault **v,
			 char e164[CALL_NUMBER_LEN])
{
	static const struct option longopts[] = {
		{ "number", required_argument, NULL, 'n' },
		{ "reason", required_argument, NULL, 'r' },
		{ "out", required_argument, NULL, 'o' },
		{ 0 },
	};
	struct cli_opts o = { NULL, longopts, subject_opt, so };
	struct meta_number_rules rules;
	const char *key_file = NULL;
	char *pos[1];
	int rc;

	rc = cli_parse_exact(argc, argv, &o, &key_file, pos, 1);
	if (rc)
		return rc;
	if (!so->number || !*so->number || (need_out && !so->out) ||
	    (!need_out && so->out))
		return cli_usage();
	if (need_out && !*so->out)
		return cli_usage();
	rc = cli_open_vault(pos[0], key_file, 0, v);
	if (rc)
		return rc;
	/* National numbers follow the vault's own dialling rules, as the
	 * recorders' metadata did at ingest. */
	rules.country_code = vault_config(*v)->country_code;
	rules.trunk_prefix = vault_config(*v)->trunk_prefix;
	if (meta_number_normalize(so->number, &rules, e164) != 0) {
		/* Not quoted back: it may well be a real number, mistyped. */
		cli_error("--number: not a phone number (7 to 15 digits, "
			  "E.164 or national)");
		rc = EXIT_USAGE;
		goto fail;
	}
	rc = check_reason(so->reason, e164);
	if (rc)
		goto fail;
	return 0;
fail:
	explicit_bzero(e164, CALL_NUMBER_LEN);
	vault_close(*v);
	*v = NULL;
	return rc;
}

/* Collects the subject's calls. Returns 0 or an errno (said why). */
static int subject_lookup(struct vault *v, const char *e164,
			  struct subject *s)
{
	unsigned char hash[CALL_NUMBER_HASH_LEN];
	struct catalog *c = cli_catalog(v);
	int rc;

	if (!c)
		return EIO;
	s->now_ms = clock_now_ms();
	s->months = vault_config(v)->retention_months;
	keys_number_hash(vault_keys(v), e164, hash);
	rc = catalog_calls_by_number(c, hash, collect, s);
	explicit_bzero(hash, sizeof hash);
	if (rc)
		cli_error("cannot read the catalog: %s", strerror(rc));
	return rc;
}

static void subject_free(struct subject *s)
{
	free(s->calls);
	s->calls = NULL;
	s->n = s->cap = 0;
}

/* --- find ------------------------------------------------------------- */

static void print_call(const struct call_record *r)
{
	char id[CALL_ID_LEN], day[CLOCK_DAY_LEN], hms[CLOCK_HHMMSS_LEN];

	call_id_format(r->num, id);
	clock_format_day(clock_local_day(r->start_ms), day);
	clock_local_hhmmss(r->start_ms, hms);
	printf("%-10s %s %.2s:%.2s:%.2s %-20s %8.2f %s%s\n", id, day, hms,
	       hms + 2, hms + 4, r->agent[0] ? r->agent : CALL_UNASSIGNED_DIR,
	       (double)r->duration_ms / 1000.0,
	       r->direction[0] ? r->direction : "-",
	       r->restricted ? " restricted" : "");
}

int cmd_subject_find(int argc, char **argv)
{
	struct subject_opts so = { 0 };
	struct subject s = { 0 };
	struct vault *v = NULL;
	char e164[CALL_NUMBER_LEN], detail[CATALOG_AUDIT_DETAIL_LEN];
	int rc;

	rc = subject_start(argc, argv, &so, 0, &v, e164);
	if (rc)
		return rc;
	rc = subject_lookup(v, e164, &s);
	explicit_bzero(e164, sizeof e164);
	audit_detail(detail, sizeof detail, s.n, rc ? strerror(rc) : NULL,
		     so.reason);
	/* Nothing is shown unless the search is on the record. */
	if (cli_audit(v, "subject-find", 0, rc ? "error" : "ok", detail) ||
	    rc) {
		rc = 1;
		goto out;
	}
	printf("%-10s %-19s %-20s %8s %s\n", "CALL", "START (LOCAL)",
	       "AGENT", "SECONDS", "DIRECTION");
	for (size_t i = 0; i < s.n; i++)
		print_call(&s.calls[i]);
	printf("%zu call%s\n", s.n, s.n == 1 ? "" : "s");
out:
	subject_free(&s);
	vault_close(v);
	return rc;
}

/* --- export ----------------------------------------------------------- */

/* One export in progress: the output directory and what was written to it,
 * so that a failure can take all of it back. */
struct export {
	struct vault *v;
	const char *dir;
	int dirfd;
	int made_dir;            /* we created dir: remove it on failure */
	char tmp[NAME_LEN + 8];  /* temp file being written; "" if none */
	char (*names)[NAME_LEN]; /* files renamed into place */
	size_t nnames;
	char *sums;              /* SHA256SUMS being built */
	size_t sums_len;
	unsigned char *buf;      /* decrypted audio passing through */
	char err[512];           /* why it failed */
};

/* Creates `dir` (0700) or accepts it if it is an empty directory. */
static int export_dir(struct export *ex)
{
	struct dirent *de;
	DIR *d = NULL;
	int fd;

	if (mkdir(ex->dir, 0700) == 0) {
		ex->made_dir = 1;
	} else if (errno != EEXIST) {
		snprintf(ex->err, sizeof ex->err, "%s: %s", ex->dir,
			 strerror(errno));
		return errno;
	}
	ex->dirfd = open(ex->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ex->dirfd < 0) {
		snprintf(ex->err, sizeof ex->err, "%s: %s", ex->dir,
			 strerror(errno));
		return errno;
	}
	if (ex->made_dir)
		return 0;
	fd = dup(ex->dirfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		snprintf(ex->err, sizeof ex->err, "%s: %s", ex->dir,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return EIO;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			closedir(d);
			snprintf(ex->err, sizeof ex->err,
				 "%s is not empty: an export goes into a new "
				 "or empty directory", ex->dir);
			return ENOTEMPTY;
		}
	}
	closedir(d);
	return 0;
}

/* Starts `name` as a temp file in the output directory: decrypted audio
 * goes nowhere else, not even for a moment. */
static int file_begin(struct export *ex, const char *name, int *fd)
{
	snprintf(ex->tmp, sizeof ex->tmp, ".%s.tmp", name);
	*fd = openat(ex->dirfd, ex->tmp,
		     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0) {
		int rc = errno;
		snprintf(ex->err, sizeof ex->err, "%s/%s: %s", ex->dir,
			 ex->tmp, strerror(rc));
		ex->tmp[0] = '\0';
		return rc;
	}
	return 0;
}

/* Adds "HASH  NAME" to SHA256SUMS: sha256sum's own format, text mode. */
static int sums_add(struct export *ex, const char *hex, const char *name)
{
	size_t add = strlen(hex) + 2 + strlen(name) + 1;
	char *s = realloc(ex->sums, ex->sums_len + add + 1);

	if (!s) {
		snprintf(ex->err, sizeof ex->err, "out of memory");
		return ENOMEM;
	}
	ex->sums = s;
	snprintf(s + ex->sums_len, add + 1, "%s  %s\n", hex, name);
	ex->sums_len += add;
	return 0;
}

/* Makes the temp file durable, renames it to `name` and, unless it is
 * SHA256SUMS itself, adds its line to SHA256SUMS. Closes fd. */
static int file_commit(struct export *ex, int fd, const char *name,
		       crypto_hash_sha256_state *h)
{
	unsigned char md[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1], (*names)[NAME_LEN];
	int rc = 0;

	if (fsync(fd) != 0)
		rc = errno;
	if (close(fd) != 0 && !rc)
		rc = errno;
	if (!rc && renameat2(ex->dirfd, ex->tmp, ex->dirfd, name,
			     RENAME_NOREPLACE) != 0)
		rc = errno;
	if (rc) {
		snprintf(ex->err, sizeof ex->err, "%s/%s: %s", ex->dir, name,
			 strerror(rc));
		return rc;
	}
	ex->tmp[0] = '\0';
	names = reallocarray(ex->names, ex->nnames + 1, sizeof *names);
	if (!names) {
		/* Renamed but not tracked: remove it now. */
		unlinkat(ex->dirfd, name, 0);
		snprintf(ex->err, sizeof ex->err, "out of memory");
		return ENOMEM;
	}
	ex->names = names;
	snprintf(ex->names[ex->nnames++], NAME_LEN, "%s", name);
	if (!h)
		return 0;
	crypto_hash_sha256_final(h, md);
	sodium_bin2hex(hex, sizeof hex, md, sizeof md);
	return sums_add(ex, hex, name);
}

/* Writes a file of `len` bytes from memory. */
static int file_write_buf(struct export *ex, const char *name,
			  const void *buf, size_t len, int sum)
{
	crypto_hash_sha256_state h;
	int fd, rc;

	rc = file_begin(ex, name, &fd);
	if (rc)
		return rc;
	rc = fdio_write_all(fd, buf, len);
	if (rc) {
		snprintf(ex->err, sizeof ex->err, "%s/%s: %s", ex->dir,
			 ex->tmp, strerror(rc));
		close(fd);
		return rc;
	}
	crypto_hash_sha256_init(&h);
	crypto_hash_sha256_update(&h, buf, len);
	return file_commit(ex, fd, name, sum ? &h : NULL);
}

/* c-NNNNNN.opus: the recording, decrypted chunk by chunk. */
static int export_audio(struct export *ex, const struct call_record *rec,
			const char *id)
{
	crypto_hash_sha256_state h;
	struct blob_reader *r = NULL;
	char name[NAME_LEN];
	uint64_t off = 0;
	int fd = -1, rc;

	snprintf(name, sizeof name, "%s.opus", id);
	rc = vault_blob_open(ex->v, rec, &r);
	if (rc) {
		snprintf(ex->err, sizeof ex->err, "%s: cannot open the "
			 "recording: %s", id,
			 rc == EBADMSG ? "it fails authentication" :
			 rc == ENOENT ? "its blob or key is missing" :
					strerror(rc));
		return rc;
	}
	rc = file_begin(ex, name, &fd);
	if (rc)
		goto out;
	crypto_hash_sha256_init(&h);
	for (;;) {
		ssize_t n = blob_pread(r, ex->buf, BLOB_CHUNK_SIZE, off);
		if (n < 0) {
			rc = (int)-n;
			snprintf(ex->err, sizeof ex->err, "%s: reading the "
				 "recording: %s", id,
				 rc == EIO ? "a chunk fails authentication" :
					     strerror(rc));
			break;
		}
		if (n == 0)
			break;
		rc = fdio_write_all(fd, ex->buf, (size_t)n);
		if (rc) {
			snprintf(ex->err, sizeof ex->err, "%s/%s: %s",
				 ex->dir, ex->tmp, strerror(rc));
			break;
		}
		crypto_hash_sha256_update(&h, ex->buf, (size_t)n);
		off += (uint64_t)n;
	}
	explicit_bzero(ex->buf, BLOB_CHUNK_SIZE);
	if (!rc && off != blob_plain_size(r)) {
		rc = EIO;
		snprintf(ex->err, sizeof ex->err, "%s: short recording", id);
	}
	if (rc) {
		close(fd);
		goto out;
	}
	rc = file_commit(ex, fd, name, &h);
out:
	blob_close(r);
	return rc;
}

/* The full number of a call: its masked form with the last three digits
 * unsealed with the call key (as ingest sealed them), checked against the
 * number searched for. */
static int full_number(struct export *ex, const struct call_record *rec,
		       const char *id, const char *e164,
		       char out[CALL_NUMBER_LEN])
{
	struct secret key = keys_secret_new();
	unsigned char ad[16];
	char last3[4] = "";
	size_t len = strnlen(rec->customer_masked, CALL_NUMBER_LEN);
	int rc;

	if (!key.b) {
		snprintf(ex->err, sizeof ex->err, "out of memory");
		return ENOMEM;
	}
	rc = vault_call_key(ex->v, rec, &key);
	if (rc) {
		snprintf(ex->err, sizeof ex->err, "%s: no key: %s", id,
			 rc == ENOENT ? "its day key is gone" :
			 rc == EBADMSG ? "its day key does not authenticate" :
					 strerror(rc));
		goto out;
	}
	memcpy(ad, "cvdigits", 8);
	le64_put(ad + 8, rec->num);
	rc = keys_open(key.b, ad, sizeof ad, rec->customer_sealed,
		       sizeof rec->customer_sealed, last3);
	last3[3] = '\0';
	if (rc || len < 4 || strcmp(rec->customer_masked + len - 3, "***")) {
		rc = EBADMSG;
		snprintf(ex->err, sizeof ex->err, "%s: the sealed digits of "
			 "the customer number do not authenticate", id);
		goto out;
	}
	snprintf(out, CALL_NUMBER_LEN, "%.*s%s", (int)(len - 3),
		 rec->customer_masked, last3);
	/* The index found it by hash; a row whose hash was copied from
	 * another call must not pass for this person's. */
	if (strcmp(out, e164) != 0) {
		rc = EBADMSG;
		snprintf(ex->err, sizeof ex->err, "%s: the catalog row does "
			 "not belong to this number (damaged catalog?)", id);
		explicit_bzero(out, CALL_NUMBER_LEN);
	}
out:
	explicit_bzero(last3, sizeof last3);
	keys_secret_free(&key);
	return rc;
}

/* c-NNNNNN.json: the metadata as the mount shows it, with the full
 * customer number. */
static int export_meta(struct export *ex, const struct call_record *rec,
		       const char *id, const char *e164)
{
	struct call_record full = *rec;
	char name[NAME_LEN], *json = NULL;
	size_t len = 0;
	int rc;

	snprintf(name, sizeof name, "%s.json", id);
	rc = full_number(ex, rec, id, e164, full.customer_masked);
	if (rc)
		goto out;
	json = meta_render(&full, NULL, 0, &len);
	if (!json) {
		rc = ENOMEM;
		snprintf(ex->err, sizeof ex->err, "%s: cannot render the "
			 "metadata", id);
		goto out;
	}
	rc = file_write_buf(ex, name, json, len, 1);
out:
	if (json) {
		explicit_bzero(json, len);
		free(json);
	}
	explicit_bzero(&full, sizeof full);
	return rc;
}

/* Takes back everything a failed export wrote. */
static void export_undo(struct export *ex)
{
	if (ex->dirfd >= 0) {
		if (ex->tmp[0])
			unlinkat(ex->dirfd, ex->tmp, 0);
		for (size_t i = 0; i < ex->nnames; i++)
			unlinkat(ex->dirfd, ex->names[i], 0);
		fsync(ex->dirfd);
		close(ex->dirfd);
		ex->dirfd = -1;
	}
	ex->tmp[0] = '\0';
	ex->nnames = 0;
	if (ex->made_dir)
		rmdir(ex->dir);
	ex->made_dir = 0;
}

static int export_calls(struct export *ex, const struct subject *s,
			const char *e164)
{
	char id[CALL_ID_LEN];
	int rc = 0;

	for (size_t i = 0; i < s->n && !rc; i++) {
		call_id_format(s->calls[i].num, id);
		cli_progress("export: calls", i + 1, s->n);
		rc = export_audio(ex, &s->calls[i], id);
		if (!rc)
			rc = export_meta(ex, &s->calls[i], id, e164);
	}
	cli_progress_end();
	if (!rc && s->n > 0)
		rc = file_write_buf(ex, SUMS_NAME, ex->sums ? ex->sums : "",
				    ex->sums_len, 0);
	if (!rc && fsync(ex->dirfd) != 0) {
		rc = errno;
		snprintf(ex->err, sizeof ex->err, "%s: fsync: %s", ex->dir,
			 strerror(rc));
	}
	return rc;
}

int cmd_subject_export(int argc, char **argv)
{
	struct subject_opts so = { 0 };
	struct subject s = { 0 };
	struct export ex = { .dirfd = -1 };
	char e164[CALL_NUMBER_LEN], detail[CATALOG_AUDIT_DETAIL_LEN];
	const char *failure = NULL;
	int rc;

	rc = subject_start(argc, argv, &so, 1, &ex.v, e164);
	if (rc)
		return rc;
	ex.dir = so.out;
	ex.buf = malloc(BLOB_CHUNK_SIZE);
	if (!ex.buf) {
		rc = ENOMEM;
		snprintf(ex.err, sizeof ex.err, "out of memory");
		failure = strerror(rc);
		goto done;
	}
	rc = export_dir(&ex);
	if (rc) {
		failure = rc == ENOTEMPTY ? "output directory not empty" :
					    "cannot create the output "
					    "directory";
		goto done;
	}
	rc = subject_lookup(ex.v, e164, &s);
	if (rc) {
		ex.err[0] = '\0'; /* already said */
		failure = strerror(rc);
		goto done;
	}
	rc = export_calls(&ex, &s, e164);
	if (rc)
		failure = strerror(rc);
done:
	explicit_bzero(e164, sizeof e164);
	if (rc) {
		export_undo(&ex);
		if (ex.err[0])
			cli_error("%s", ex.err);
	}
	audit_detail(detail, sizeof detail, s.n, failure, so.reason);
	if (cli_audit(ex.v, "subject-export", 0, rc ? "error" : "ok",
		      detail) != 0 && !rc) {
		/* An export that is not on the record does not happen. */
		export_undo(&ex);
		rc = 1;
	}
	if (!rc)
		printf("%zu call%s exported to %s\n", s.n, s.n == 1 ? "" : "s",
		       ex.dir);
	if (ex.dirfd >= 0)
		close(ex.dirfd);
	if (ex.sums) {
		explicit_bzero(ex.sums, ex.sums_len);
		free(ex.sums);
	}
	free(ex.names);
	free(ex.buf);
	subject_free(&s);
	vault_close(ex.v);
	return rc ? 1 : 0;
}
