/* Directory commands: teams, users, grants. */
#include <errno.h>
#include <stdarg.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "callvault/clock.h"

/* Opens VAULT from pos[0] and returns its catalog, or NULL after saying
 * why. */
static struct catalog *open_catalog(const char *dir, const char *key_file,
				    struct vault **v)
{
	struct catalog *c;

	if (cli_open_vault(dir, key_file, 0, v) != 0)
		return NULL;
	c = cli_catalog(*v);
	if (!c) {
		vault_close(*v);
		*v = NULL;
	}
	return c;
}

static int report(int rc, const char *what)
{
	if (!rc)
		return 0;
	cli_error("%s: %s", what, strerror(rc));
	return 1;
}

/* Audits a directory act with its outcome; returns the exit status. */
static int audited(struct vault *v, int status, const char *action,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int audited(struct vault *v, int status, const char *action,
		   const char *fmt, ...)
{
	char detail[CATALOG_AUDIT_DETAIL_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if (cli_audit(v, action, 0, status ? "error" : "ok", detail) != 0)
		return 1;
	return status;
}

/* --- teams ------------------------------------------------------------ */

static int valid_team(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n >= CATALOG_TEAM_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = t[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return 0;
	}
	return 1;
}

int cmd_team_add(int argc, char **argv)
{
	struct vault *v = NULL;
	struct catalog *c;
	const char *key_file = NULL;
	char *pos[2];
	int rc;

	rc = cli_parse_exact(argc, argv, NULL, &key_file, pos, 2);
	if (rc)
		return rc;
	if (!valid_team(pos[1])) {
		cli_error("\"%s\": a team name is 1-63 letters, digits, '.', "
			  "'_' or '-'", pos[1]);
		return 1;
	}
	c = open_catalog(pos[0], key_file, &v);
	if (!c)
		return 1;
	rc = catalog_team_add(c, pos[1]);
	if (rc == EEXIST) {
		cli_error("team \"%s\" already exists", pos[1]);
		rc = 1;
	} else {
		rc = report(rc, pos[1]);
	}
	rc = audited(v, rc, "team-add", "team %s", pos[1]);
	vault_close(v);
	return rc;
}

static int print_team(void *ctx, const char *name, int members)
{
	(void)ctx;
	printf("%-24s %d\n", name, members);
	return 0;
}

int cmd_team_list(int argc, char **argv)
{
	struct vault *v = NULL;
	struct catalog *c;
	const char *key_file = NULL;
	char *pos[1];
	int rc;

	rc = cli_parse_exact(argc, argv, NULL, &key_file, pos, 1);
	if (rc)
		return rc;
	c = open_catalog(pos[0], key_file, &v);
	if (!c)
		return 1;
	printf("%-24s %s\n", "TEAM", "AGENTS");
	rc = report(catalog_team_list(c, print_team, NULL), "team list");
	vault_close(v);
	return rc;
}

/* --- users ------------------------------------------------------------ */

/* What `user add` / `user set` were told; unset fields keep -1/NULL. */
struct user_opts {
	long long uid;
	const char *name;
	const char *role;
	const char *teams[CATALOG_MAX_TEAMS];
	int nteams;
	const char *trained;
};

static int user_opt(void *ctx, int opt, const char *arg)
{
	struct user_opts *u = ctx;
	char *end;

	switch (opt) {
	case 'u':
		errno = 0;
		u->uid = strtoll(arg, &end, 10);
		if (errno || *end || end == arg || u->uid < 0 ||
		    u->uid > 0xfffffffeLL) {
			cli_error("--uid: \"%s\" is not a uid", arg);
			return EXIT_USAGE;
		}
		return 0;
	case 'n':
		u->name = arg;
		return 0;
	case 'r':
		u->role = arg;
		return 0;
	case 't':
		if (u->nteams == CATALOG_MAX_TEAMS) {
			cli_error("at most %d teams", CATALOG_MAX_TEAMS);
			return EXIT_USAGE;
		}
		u->teams[u->nteams++] = arg;
		return 0;
	case 'T':
		u->trained = arg;
		return 0;
	default:
		return EXIT_USAGE;
	}
}

static const struct option user_longopts[] = {
	{ "uid", required_argument, NULL, 'u' },
	{ "name", required_argument, NULL, 'n' },
	{ "role", required_argument, NULL, 'r' },
	{ "team", required_argument, NULL, 't' },
	{ "trained-until", required_argument, NULL, 'T' },
	{ 0 },
};

/* Applies the options to `u` and checks the result is a valid user. */
static int user_apply(struct catalog_user *u, const struct user_opts *o)
{
	if (o->uid >= 0)
		u->uid = (uint32_t)o->uid;
	if (o->name) {
		if (!*o->name || strlen(o->name) >= sizeof u->name ||
		    strpbrk(o->name, "\n\r\t")) {
			cli_error("--name: must be 1-127 bytes on one line");
			return 1;
		}
		snprintf(u->name, sizeof u->name, "%s", o->name);
	}
	if (o->role) {
		enum role r = role_parse(o->role);
		if (r != ROLE_AGENT && r != ROLE_SUPERVISOR && r != ROLE_ADMIN) {
			cli_error("--role: \"%s\" is not agent, supervisor or "
				  "admin (backup and recorder are given to "
				  "groups with grant)", o->role);
			return 1;
		}
		u->role = r;
	}
	if (o->trained) {
		if (strcmp(o->trained, "never") == 0) {
			u->trained_until = -1;
		} else if (clock_parse_day(o->trained, &u->trained_until)) {
			cli_error("--trained-until: \"%s\" is not a date "
				  "(YYYY-MM-DD)", o->trained);
			return 1;
		}
	}
	if (o->nteams || o->role) {
		u->team[0] = '\0';
		u->nsupervises = 0;
		for (int i = 0; i < o->nteams; i++) {
			if (u->role == ROLE_SUPERVISOR)
				snprintf(u->supervises[u->nsupervises++],
					 CATALOG_TEAM_LEN, "%s", o->teams[i]);
			else
				snprintf(u->team, sizeof u->team, "%s",
					 o->teams[i]);
		}
	}
	if (u->role == ROLE_AGENT && (o->nteams > 1 || !u->team[0])) {
		cli_error("an agent belongs to exactly one team (--team)");
		return 1;
	}
	if (u->role == ROLE_SUPERVISOR && u->nsupervises == 0) {
		cli_error("a supervisor supervises one or more teams (--team)");
		return 1;
	}
	if (u->role == ROLE_ADMIN && o->nteams) {
		cli_error("an admin has no team");
		return 1;
	}
	return 0;
}

static int user_write_error(int rc, const struct catalog_user *u)
{
	if (rc == EEXIST)
		cli_error("login \"%s\" or uid %" PRIu32 " is already taken",
			  u->login, u->uid);
	else if (rc == ENOENT)
		cli_error("no such team (create it with team add)");
	else
		cli_error("%s: %s", u->login, strerror(rc));
	return 1;
}

int cmd_user_add(int argc, char **argv)
{
	struct user_opts uo = { .uid = -1 };
	struct cli_opts o = { NULL, user_longopts, user_opt, &uo };
	struct catalog_user u;
	struct vault *v = NULL;
	struct catalog *c;
	const char *key_file = NULL;
	char *pos[2];
	int npos, rc;

	rc = cli_parse(argc, argv, &o, &key_file, pos, 2, &npos);
	if (rc)
		return rc;
	if (npos != 2 || uo.uid < 0 || !uo.name || !uo.role)
		return cli_usage();
	if (!call_login_valid(pos[1])) {
		cli_error("\"%s\": a login is 1-63 of a-z, 0-9, '.', '_', '-', "
			  "starting with a letter or digit", pos[1]);
		return 1;
	}
	memset(&u, 0, sizeof u);
	snprintf(u.login, sizeof u.login, "%s", pos[1]);
	u.trained_until = -1;
	if (user_apply(&u, &uo))
		return 1;
	c = open_catalog(pos[0], key_file, &v);
	if (!c)
		return 1;
	rc = catalog_user_add(c, &u);
	rc = rc ? user_write_error(rc, &u) : 0;
	rc = audited(v, rc, "user-add", "user %s uid %" PRIu32 " role %s",
		     u.login, u.uid, role_name(u.role));
	vault_close(v);
	return rc;
}

int cmd_user_set(int argc, char **argv)
{
	struct user_opts uo = { .uid = -1 };
	struct cli_opts o = { NULL, user_longopts, user_opt, &uo };
	struct catalog_user u;
	struct vault *v = NULL;
	struct catalog *c;
	const char *key_file = NULL;
	char *pos[2];
	int rc;

	rc = cli_parse_exact(argc, argv, &o, &key_file, pos, 2);
	if (rc)
		return rc;
	c = open_catalog(pos[0], key_file, &v);
	if (!c)
		return 1;
	rc = catalog_user_get(c, pos[1], &u);
	if (rc == ENOENT) {
		cli_error("no user \"%s\"", pos[1]);
		rc = 1;
	} else if (rc) {
		rc = report(rc, pos[1]);
	} else if (user_apply(&u, &uo)) {
		rc = 1;
	} else {
		rc = catalog_user_update(c, &u);
		rc = rc ? user_write_error(rc, &u) : 0;
	}
	rc = audited(v, rc, "user-set", "user %s", pos[1]);
	vault_close(v);
	return rc;
}

int cmd_user_del(int argc, char **argv)
{
	struct vault *v = NULL;
	struct catalog *c;
	const char *key_file = NULL;
	char *pos[2];
	int rc;

	rc = cli_parse_exact(argc, argv, NULL, &key_file, pos, 2);
	if (rc)
		return rc;
	c = open_catalog(pos[0], key_file, &v);
	if (!c)
		return 1;
	rc = catalog_user_del(c, pos[1]);
	if (rc == ENOENT) {
		cli_error("no user \"%s\"", pos[1]);
		rc = 1;
	} else {
		rc = report(rc, pos[1]);
	}
	rc = audited(v, rc, "user-del", "user %s", pos[1]);
	vault_close(v);
	return rc;
}

static int print_user(void *ctx, const struct catalog_user *u)
{
	char trained[CLOCK_DAY_LEN] = "-", teams[512] = "";
	size_t len = 0;

	(void)ctx;
	if (u->trained_until >= 0)
		clock_format_day(u->trained_until, trained);
	if (u->role == ROLE_SUPERVISOR) {
		for (int i = 0; i < u->nsupervises && len < sizeof teams; i++)
			len += (size_t)snprintf(teams + len, sizeof teams - len,
						"%s%s", i ? "," : "",
						u->supervises[i]);
	} else {
		snprintf(teams, sizeof teams, "%s", u->team[0] ? u->team : "-");
	}
	printf("%-20s %-8" PRIu32 " %-10s %-20s %-13s %s\n", u->login, u->uid,
	       role_name(u->role), teams, trained, u->name);
	return 0;
}

int cmd_user_list(int argc, char **argv)
{
	struct vault *v = NULL;
	struct catalog *c;
	const char *key_file = NULL;
	char *pos[1];
	int rc;

	rc = cli_parse_exact(argc, argv, NULL, &key_file, pos, 1);
	if (rc)
		return rc;
	c = open_catalog(pos[0], key_file, &v);
	if (!c)
		return 1;
	printf("%-20s %-8s %-10s %-20s %-13s %s\n", "LOGIN", "UID", "ROLE",
	       "TEAMS", "TRAINED-UNTIL", "NAME");
	rc = report(catalog_user_list(c, print_user, NULL), "user list");
	vault_close(v);
	return rc;
}

/* --- grants ----------------------------------------------------------- */

static const struct option group_longopts[] = {
	{ "group", required_argument, NULL, 'g' },
	{ 0 },
};

static int parse_gid(const char *s, uint32_t *gid)
{
	struct group *g;
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (*s && !*end && !errno && n < 0xffffffffULL) {
		*gid = (uint32_t)n;
		return 0;
	}
	g = getgrnam(s);
	if (!g) {
		cli_error("no group \"%s\"", s);
		return 1;
	}
	*gid = (uint32_t)g->gr_gid;
	return 0;
}

static int grant_role(const char *s, enum role *r)
{
	*r = role_parse(s);
	if (*r == ROLE_BACKUP || *r == ROLE_RECORDER || *r == ROLE_ADMIN)
		return 0;
	cli_error("\"%s\": a group can be granted backup, recorder or admin",
		  s);
	return 1;
}

static int print_grant(void *ctx, enum role role, uint32_t gid)
{
	struct group *g = getgrgid((gid_t)gid);

	(void)ctx;
	printf("%-10s %-8" PRIu32 " %s\n", role_name(role), gid,
	       g ? g->gr_name : "-");
	return 0;
}

static int grant_or_revoke(int argc, char **argv, int grant)
{
	const char *group = NULL, *key_file = NULL;
	struct cli_opts o = { NULL, group_longopts, cli_opt_string, &group };
	struct vault *v = NULL;
	struct catalog *c;
	enum role role;
	uint32_t gid;
	char *pos[2];
	int npos, rc;

	rc = cli_parse(argc, argv, &o, &key_file, pos, 2, &npos);
	if (rc)
		return rc;
	if (grant && npos == 1 && !group) {
		c = open_catalog(pos[0], key_file, &v);
		if (!c)
			return 1;
		printf("%-10s %-8s %s\n", "ROLE", "GID", "GROUP");
		rc = report(catalog_grant_list(c, print_grant, NULL), "grant");
		vault_close(v);
		return rc;
	}
	if (npos != 2 || !group)
		return cli_usage();
	if (grant_role(pos[1], &role) || parse_gid(group, &gid))
		return 1;
	c = open_catalog(pos[0], key_file, &v);
	if (!c)
		return 1;
	rc = grant ? catalog_grant_add(c, role, gid) :
		     catalog_grant_del(c, role, gid);
	if (rc == EEXIST) {
		cli_error("group %s already has role %s", group, pos[1]);
		rc = 1;
	} else if (rc == ENOENT) {
		cli_error("group %s does not have role %s", group, pos[1]);
		rc = 1;
	} else {
		rc = report(rc, group);
	}
	rc = audited(v, rc, grant ? "grant" : "revoke", "role %s gid %" PRIu32,
		     role_name(role), gid);
	vault_close(v);
	return rc;
}

int cmd_grant(int argc, char **argv)
{
	return grant_or_revoke(argc, argv, 1);
}

int cmd_revoke(int argc, char **argv)
{
	return grant_or_revoke(argc, argv, 0);
}
