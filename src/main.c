/* callvault: the command-line front end. One binary, subcommands; also
 * started as mount.callvault by mount(8). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "callvault/audit.h"
#include "callvault/clock.h"
#include "callvault/fs.h"
#include "callvault/log.h"
#include "callvault/policy.h"

const char *cli_cmd = "";
static const struct cli_command *current;

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "callvault: %s%s", cli_cmd, *cli_cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage(void)
{
	if (current)
		fprintf(stderr, "usage: callvault %s", current->usage);
	return EXIT_USAGE;
}

int cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			printf("usage: callvault %s", current->usage);
			return 1;
		}
	}
	return 0;
}

int cli_parse(int argc, char **argv, const struct cli_opts *o,
	      const char **key_file, char **pos, int maxpos, int *npos)
{
	struct option all[32];
	char shorts[32];
	int n = 0, opt;

	all[n++] = (struct option){ "key-file", required_argument, NULL, 'K' };
	all[n++] = (struct option){ "config", required_argument, NULL, 'G' };
	for (const struct option *p = o ? o->longopts : NULL; p && p->name;
	     p++)
		all[n++] = *p;
	all[n] = (struct option){ 0 };
	snprintf(shorts, sizeof shorts, "+%s", o && o->shortopts ? o->shortopts : "");
	/* '+' stops at the first positional; we loop to allow options after
	 * positionals too, as users expect from GNU tools. */
	*npos = 0;
	optind = 1;
	opterr = 0;
	for (;;) {
		opt = getopt_long(argc, argv, shorts, all, NULL);
		if (opt == -1) {
			if (optind >= argc)
				break;
			if (strcmp(argv[optind - 1], "--") == 0) {
				while (optind < argc) {
					if (*npos >= maxpos)
						goto too_many;
					pos[(*npos)++] = argv[optind++];
				}
				break;
			}
			if (*npos >= maxpos)
				goto too_many;
			pos[(*npos)++] = argv[optind++];
			continue;
		}
		if (opt == 'K') {
			*key_file = optarg;
		} else if (opt == 'G') {
			cli_config_file = optarg;
		} else if (opt == '?' || opt == ':') {
			cli_error("unknown or incomplete option \"%s\"",
				  argv[optind - 1]);
			return cli_usage();
		} else if (!o || !o->on_opt ||
			   o->on_opt(o->ctx, opt, optarg) != 0) {
			return cli_usage();
		}
	}
	return 0;
too_many:
	cli_error("unexpected argument \"%s\"", argv[optind]);
	return cli_usage();
}

int cli_parse_exact(int argc, char **argv, const struct cli_opts *o,
		    const char **key_file, char **pos, int n)
{
	int npos, rc = cli_parse(argc, argv, o, key_file, pos, n, &npos);

	if (rc)
		return rc;
	return npos == n ? 0 : cli_usage();
}

int cli_opt_string(void *ctx, int opt, const char *arg)
{
	(void)opt;
	*(const char **)ctx = arg;
	return 0;
}

static int progress_shown;

void cli_progress(const char *what, uint64_t done, uint64_t total)
{
	static int64_t last_ms;
	int64_t now = clock_now_ms();

	if (!isatty(STDERR_FILENO))
		return;
	if (progress_shown && now - last_ms < 200 && done != total)
		return;
	last_ms = now;
	progress_shown = 1;
	if (total)
		fprintf(stderr, "\r%s: %" PRIu64 "/%" PRIu64, what, done, total);
	else
		fprintf(stderr, "\r%s: %" PRIu64, what, done);
}

void cli_progress_end(void)
{
	if (progress_shown)
		fputc('\n', stderr);
	progress_shown = 0;
}

const char *cli_config_file;

int cli_open_vault(const char *dir, const char *key_file, int flags,
		   struct vault **out)
{
	char err[512] = "";
	int rc = vault_open_config(dir, key_file, cli_config_file, flags, out,
				   err, sizeof err);

	if (rc) {
		cli_error("%s", *err ? err : strerror(rc));
		return 1;
	}
	return 0;
}

struct catalog *cli_catalog(struct vault *v)
{
	struct catalog *c = vault_catalog(v);

	if (!c)
		cli_error("cannot open the catalog of %s", vault_dir(v));
	return c;
}

void cli_actor(struct vault *v, struct cli_actor *a)
{
	struct catalog *c = vault_catalog(v);
	unsigned untrained;

	memset(a, 0, sizeof *a);
	a->uid = (uint32_t)getuid();
	if (c && catalog_user_by_uid(c, a->uid, &a->user) == 0) {
		a->login = a->user.login;
		a->roles = policy_effective_roles(
			&a->user, 0, clock_local_day(clock_now_ms()),
			&untrained);
	} else {
		a->login = "";
	}
}

int cli_audit(struct vault *v, const char *action, uint64_t call_num,
	      const char *outcome, const char *detail)
{
	struct catalog *c = vault_catalog(v);
	struct cli_actor a;
	struct audit_event ev;
	int rc;

	if (!c)
		return 1;
	cli_actor(v, &a);
	ev = (struct audit_event){ .uid = a.uid,
				   .login = a.login,
				   .roles = a.roles,
				   .action = action,
				   .call_num = call_num,
				   .outcome = outcome,
				   .detail = detail };
	rc = audit_append(c, vault_keys(v), &ev, 1);
	if (rc) {
		cli_error("cannot write the audit trail: %s", strerror(rc));
		return 1;
	}
	return 0;
}

/* --- init ------------------------------------------------------------- */

struct init_opts {
	int passphrase;
};

static int init_opt(void *ctx, int opt, const char *arg)
{
	struct init_opts *o = ctx;

	(void)arg;
	if (opt == 'P') {
		o->passphrase = 1;
		return 0;
	}
	return EXIT_USAGE;
}

static int cmd_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "passphrase", no_argument, NULL, 'P' },
		{ 0 },
	};
	struct init_opts io = { 0 };
	struct cli_opts o = { NULL, longopts, init_opt, &io };
	const char *key_file = NULL;
	char *pos[1], err[512] = "", *key_path;
	const char *pass = NULL;
	int rc;

	rc = cli_parse_exact(argc, argv, &o, &key_file, pos, 1);
	if (rc)
		return rc;
	if (io.passphrase) {
		pass = getenv("CALLVAULT_PASSPHRASE");
		if (!pass || !*pass) {
			cli_error("--passphrase needs the passphrase in "
				  "$CALLVAULT_PASSPHRASE");
			return 1;
		}
	}
	rc = vault_create(pos[0], key_file, pass, err, sizeof err);
	if (rc) {
		cli_error("%s", *err ? err : strerror(rc));
		return 1;
	}
	key_path = key_file ? strdup(key_file) : vault_default_key_path(pos[0]);
	printf("created vault %s\nmaster key: %s\n", pos[0],
	       key_path ? key_path : "?");
	printf("Keep the key away from copies of the vault: without it "
	       "nothing in the vault can be read.\n");
	free(key_path);
	return 0;
}

/* --- mount ------------------------------------------------------------ */

struct mount_opts {
	struct fs_options fs;
	const char *key_file;
	char *key_file_buf;
	char *config_buf;
};

/* -o takes a comma-separated list. Options mount(8) passes that are not
 * ours (rw, dev, suid, _netdev, nofail, ...) are ignored, so that fstab
 * lines work. */
static int mount_o(struct mount_opts *m, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;

	if (!copy)
		return EXIT_USAGE;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (strncmp(tok, "key_file=", 9) == 0) {
			free(m->key_file_buf);
			m->key_file_buf = strdup(tok + 9);
			m->key_file = m->key_file_buf;
		} else if (strncmp(tok, "config=", 7) == 0) {
			free(m->config_buf);
			m->config_buf = strdup(tok + 7);
			cli_config_file = m->config_buf;
		} else if (strcmp(tok, "allow_other") == 0) {
			m->fs.allow_other = 1;
		} else if (strcmp(tok, "debug") == 0) {
			m->fs.debug = 1;
		} else if (strcmp(tok, "single_thread") == 0) {
			m->fs.single_thread = 1;
		}
	}
	free(copy);
	return 0;
}

static int mount_opt(void *ctx, int opt, const char *arg)
{
	struct mount_opts *m = ctx;

	switch (opt) {
	case 'f':
		m->fs.foreground = 1;
		return 0;
	case 'o':
		return mount_o(m, arg);
	case 'd':
		m->fs.debug = 1;
		return 0;
	case 'n':
	case 's':
	case 'v':
		return 0; /* from mount(8): no mtab, sloppy, verbose */
	default:
		return EXIT_USAGE;
	}
}

static int cmd_mount(int argc, char **argv)
{
	struct mount_opts m = { .fs = { .allow_other = geteuid() == 0 } };
	struct cli_opts o = { "fo:dnsv", NULL, mount_opt, &m };
	struct vault *v = NULL;
	const char *key_file = NULL;
	char *pos[2];
	int npos, rc;

	rc = cli_parse(argc, argv, &o, &key_file, pos, 2, &npos);
	if (rc)
		goto out;
	if (npos != 2) {
		rc = cli_usage();
		goto out;
	}
	if (!key_file)
		key_file = m.key_file;
	if (access(pos[1], F_OK) != 0) {
		cli_error("%s: %s", pos[1], strerror(errno));
		rc = 1;
		goto out;
	}
	rc = cli_open_vault(pos[0], key_file, 0, &v);
	if (rc)
		goto out;
	log_set_level(m.fs.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	rc = fs_main(v, pos[1], &m.fs);
out:
	vault_close(v);
	free(m.key_file_buf);
	free(m.config_buf);
	return rc;
}

/* --- dispatch --------------------------------------------------------- */

static const struct cli_command commands[] = {
	{ "init", cmd_init,
	  "init VAULT [--key-file FILE] [--passphrase]\n"
	  "Creates a vault directory and its master key (default VAULT.key\n"
	  "beside the vault, mode 0400). With --key-file naming an existing\n"
	  "key, that key is used. --passphrase wraps a new key with the\n"
	  "passphrase in $CALLVAULT_PASSPHRASE (Argon2id).\n" },
	{ "mount", cmd_mount,
	  "mount VAULT MOUNTPOINT [-f] [-o OPT[,OPT...]] [--key-file FILE]\n"
	  "Serves the vault at MOUNTPOINT. -f stays in the foreground.\n"
	  "Options: key_file=FILE, config=FILE (default VAULT/callvault.conf),\n"
	  "allow_other (default when run as root), debug. Unmount with\n"
	  "fusermount3 -u MOUNTPOINT or umount.\n" },
	{ "team add", cmd_team_add,
	  "team add VAULT TEAM [--key-file FILE]\n" },
	{ "team list", cmd_team_list,
	  "team list VAULT [--key-file FILE]\n" },
	{ "user add", cmd_user_add,
	  "user add VAULT LOGIN --uid UID --name \"Full Name\" --role ROLE\n"
	  "         [--team TEAM]... [--trained-until YYYY-MM-DD]\n"
	  "ROLE is agent (exactly one --team), supervisor (one or more\n"
	  "--team it supervises) or admin. Supervisors and admins need a\n"
	  "trained-until date that is not in the past to see anything.\n" },
	{ "user set", cmd_user_set,
	  "user set VAULT LOGIN [--uid UID] [--name NAME] [--role ROLE]\n"
	  "         [--team TEAM]... [--trained-until YYYY-MM-DD|never]\n"
	  "Changes the given fields; --team replaces the team(s).\n" },
	{ "user del", cmd_user_del,
	  "user del VAULT LOGIN\n"
	  "Removes a user. Its calls stay (admins still see them).\n" },
	{ "user list", cmd_user_list, "user list VAULT\n" },
	{ "grant", cmd_grant,
	  "grant VAULT [ROLE --group GROUP]\n"
	  "Gives ROLE (backup, recorder or admin) to every member of the Unix\n"
	  "group GROUP (name or gid). Without ROLE, lists the grants.\n" },
	{ "revoke", cmd_revoke, "revoke VAULT ROLE --group GROUP\n" },
	{ "import", cmd_import,
	  "import VAULT AUDIO --meta META.json [--key-file FILE]\n"
	  "Ingests one call (WAV or Ogg Opus) with its metadata; prints the\n"
	  "new call id.\n" },
	{ "calls", cmd_calls,
	  "calls VAULT [--date YYYY-MM-DD] [--agent LOGIN]\n"
	  "Lists calls with their metadata.\n" },
	{ "audit", cmd_audit,
	  "audit VAULT [--since YYYY-MM-DD|RFC3339] [--user LOGIN] [--call ID]\n"
	  "            [--verify]\n"
	  "Prints the audit trail. --verify checks that no entry was altered,\n"
	  "removed, inserted or reordered, and names the first bad entry.\n" },
	{ "quarantine", cmd_quarantine,
	  "quarantine VAULT [list | export ID --out FILE | drop ID]\n"
	  "Input that recorders sent and that was rejected, kept sealed with\n"
	  "the reason. export writes its clear bytes to a new FILE (0600) for\n"
	  "inspection; drop deletes it. Both are audited.\n" },
	{ "recover", cmd_recover,
	  "recover VAULT\n"
	  "What a mount does at start after a crash, without mounting: calls\n"
	  "whose audio and metadata were both received are committed, files\n"
	  "whose writer had not closed them are quarantined. Do not run it\n"
	  "while the vault is mounted.\n" },
	{ "sweep", cmd_sweep,
	  "sweep VAULT\n"
	  "Makes expiry final now (a mount does it every sweep_interval):\n"
	  "deletes the blobs and rows of expired calls and destroys the key\n"
	  "of every day none of whose calls is left. Audited.\n" },
	{ "erase", cmd_erase,
	  "erase VAULT CALL_ID --reason TEXT\n"
	  "Erasure on request: the call is gone at once from every view, its\n"
	  "key is destroyed (its day's other calls keep theirs) and its blob\n"
	  "deleted; a tombstone keeps rebuild from ever restoring it. A\n"
	  "restricted call must be unrestricted first. Audited.\n" },
	{ "restrict", cmd_restrict,
	  "restrict VAULT CALL_ID --reason TEXT [--until YYYY-MM-DD|RFC3339]\n"
	  "Restriction of processing / legal hold: agents and supervisors no\n"
	  "longer see the call, admins see it marked \"restricted\"; it is\n"
	  "kept past its expiry until the restriction ends (--until, local\n"
	  "midnight starting that day) or is lifted. Audited.\n" },
	{ "unrestrict", cmd_unrestrict,
	  "unrestrict VAULT CALL_ID --reason TEXT\n"
	  "Lifts a restriction. A call past its expiry vanishes at once and\n"
	  "is deleted by the next sweep. Audited.\n" },
	{ "amend", cmd_amend,
	  "amend VAULT CALL_ID --note TEXT\n"
	  "Appends a dated note, signed with your login, to the call's\n"
	  "\"notes\" in its .json; recorded facts are never rewritten.\n"
	  "Audited.\n" },
	{ "subject find", cmd_subject_find,
	  "subject find VAULT --number NUMBER [--reason TEXT]\n"
	  "Lists every call of a customer number (right of access), in any\n"
	  "format: +358 40 123 4567, 00358401234567, or national 0401234567\n"
	  "(country_code and trunk_prefix of callvault.conf). Found through\n"
	  "the keyed number hash, without decrypting calls. Expired calls are\n"
	  "left out; restricted ones are shown and marked. Audited with the\n"
	  "count and the reason, never the number.\n" },
	{ "subject export", cmd_subject_export,
	  "subject export VAULT --number NUMBER --out DIR [--reason TEXT]\n"
	  "Writes the calls of a customer number for the data subject into\n"
	  "DIR (created 0700; an existing DIR must be empty): per call\n"
	  "c-NNNNNN.opus (decrypted audio) and c-NNNNNN.json (metadata with\n"
	  "the full customer number), and SHA256SUMS (check with\n"
	  "cd DIR && sha256sum -c SHA256SUMS). Files are 0600. On any error\n"
	  "nothing is left behind. Audited like subject find.\n" },
	{ "rebuild", cmd_rebuild,
	  "rebuild VAULT\n"
	  "After a restore (a backup of encrypted/ copied back as VAULT, the\n"
	  "key beside it) or the loss of catalog.db: restores the catalog and\n"
	  "key store from the vault's encrypted snapshot, recreates the row\n"
	  "of every blob whose key is present from its sealed metadata, and\n"
	  "removes what must not come back (erased calls, destroyed keys,\n"
	  "calls past their expiry). Blobs that fail authentication go to\n"
	  "quarantine/. Exit 1 if any call was lost. Not while mounted.\n" },
	{ "status", cmd_status,
	  "status VAULT [--json]\n"
	  "What an operator or a monitoring probe asks: calls, days, audio\n"
	  "size, restricted calls, the oldest call and the next expiry,\n"
	  "pending spool files of incoming/, quarantine, the last sweep that\n"
	  "removed something (from the audit trail), whether the vault is\n"
	  "mounted and where, and the audit chain (checked in full). --json\n"
	  "for monitoring. Exit 1 if the audit trail is broken.\n" },
	{ "verify", cmd_verify,
	  "verify VAULT\n"
	  "Authenticates every chunk of every blob and every catalog row\n"
	  "that decides who sees what; exit 1 if any is bad.\n" },
};

static void usage_all(FILE *f)
{
	fprintf(f, "usage: callvault COMMAND VAULT [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		const char *u = commands[i].usage;
		fprintf(f, "  %.*s\n", (int)strcspn(u, "\n"), u);
	}
	fprintf(f, "\nEvery command takes --help. Commands read the master "
		   "key from --key-file FILE,\ndefault VAULT.key beside the "
		   "vault directory, and the configuration from\n--config FILE "
		   "(mount: -o config=FILE), default VAULT/callvault.conf.\n");
}

static const struct cli_command *find_command(int argc, char **argv,
					      int *nwords)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		const char *w = commands[i].words;
		const char *sp = strchr(w, ' ');
		if (!sp) {
			if (argc > 1 && strcmp(argv[1], w) == 0) {
				*nwords = 1;
				return &commands[i];
			}
		} else if (argc > 2 &&
			   strncmp(argv[1], w, (size_t)(sp - w)) == 0 &&
			   argv[1][sp - w] == '\0' &&
			   strcmp(argv[2], sp + 1) == 0) {
			*nwords = 2;
			return &commands[i];
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	int nwords = 0;

	base = base ? base + 1 : argv[0];
	log_init("callvault", 0, LOG_LEVEL_INFO);
	if (keys_init() != 0) {
		fprintf(stderr, "callvault: cannot initialise libsodium\n");
		return 1;
	}

	/* mount(8) runs "mount.callvault SOURCE DIR -o OPTS". */
	if (strcmp(base, "mount.callvault") == 0) {
		current = &commands[1];
		cli_cmd = "mount";
		if (cli_wants_help(argc, argv))
			return 0;
		return cmd_mount(argc, argv);
	}

	if (argc < 2) {
		usage_all(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage_all(stdout);
		return 0;
	}
	current = find_command(argc, argv, &nwords);
	if (!current) {
		fprintf(stderr, "callvault: unknown command \"%s%s%s\"\n",
			argv[1], argc > 2 && argv[2][0] != '-' ? " " : "",
			argc > 2 && argv[2][0] != '-' ? argv[2] : "");
		usage_all(stderr);
		return EXIT_USAGE;
	}
	cli_cmd = current->words;
	/* The handler's argv[0] is the command's last word. */
	argv += nwords;
	argc -= nwords;
	if (cli_wants_help(argc, argv))
		return 0;
	/* CLI commands log to stderr and only say more when asked. */
	log_set_level(LOG_LEVEL_WARN);
	return current->run(argc, argv);
}
