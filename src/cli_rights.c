/* Commands that act on one call for its data subject: erase, restrict,
 * unrestrict, amend (rights.h does the work and the auditing). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "callvault/clock.h"
#include "callvault/rights.h"

#include "cli.h"

/* Options of these commands: --reason, --note, --until. */
struct rights_opts {
	const char *reason;
	const char *note;
	const char *until;
};

enum { OPT_REASON = 0x100, OPT_NOTE, OPT_UNTIL };

static int rights_opt(void *ctx, int opt, const char *arg)
{
	struct rights_opts *o = ctx;

	switch (opt) {
	case OPT_REASON:
		o->reason = arg;
		return 0;
	case OPT_NOTE:
		o->note = arg;
		return 0;
	case OPT_UNTIL:
		o->until = arg;
		return 0;
	}
	return EXIT_USAGE;
}

/* Parses VAULT CALL_ID and the options in `allowed`; opens the vault.
 * Returns 0, 1 or EXIT_USAGE. */
static int rights_setup(int argc, char **argv, const struct option *allowed,
			struct rights_opts *o, uint64_t *num,
			struct vault **v, struct rights_actor *who,
			struct cli_actor *actor)
{
	struct cli_opts co = { NULL, allowed, rights_opt, o };
	const char *key_file = NULL;
	char *pos[2];
	int rc;

	rc = cli_parse_exact(argc, argv, &co, &key_file, pos, 2);
	if (rc)
		return rc;
	if (call_id_parse(pos[1], num) != 0) {
		cli_error("\"%s\" is not a call id (c-000184)", pos[1]);
		return EXIT_USAGE;
	}
	rc = cli_open_vault(pos[0], key_file, 0, v);
	if (rc)
		return rc;
	cli_actor(*v, actor);
	*who = (struct rights_actor){ .uid = actor->uid,
				      .login = actor->login,
				      .roles = actor->roles };
	return 0;
}

/* Exit status of a rights act, after saying why it failed. */
static int finish(struct vault *v, int rc, const char *err, const char *done,
		  uint64_t num)
{
	char id[CALL_ID_LEN];

	call_id_format(num, id);
	if (rc == EALREADY) {
		printf("%s\n", err);
		rc = 0;
	} else if (rc) {
		cli_error("%s", err);
		rc = 1;
	} else {
		printf("%s %s\n", id, done);
	}
	vault_close(v);
	return rc;
}

/* One rights act: the command's options, what it does with them, and
 * the word that reports success. */
struct act {
	const struct option *opts;
	int (*run)(struct vault *v, uint64_t num,
		   const struct rights_actor *who,
		   const struct rights_opts *o, char *err, size_t errlen);
	const char *done;
};

static int run_act(int argc, char **argv, const struct act *a)
{
	struct rights_opts o = { 0 };
	struct rights_actor who;
	struct cli_actor actor;
	struct vault *v = NULL;
	char err[256] = "";
	uint64_t num;
	int rc;

	rc = rights_setup(argc, argv, a->opts, &o, &num, &v, &who, &actor);
	if (rc)
		return rc;
	rc = a->run(v, num, &who, &o, err, sizeof err);
	return finish(v, rc, err, a->done, num);
}

static int do_erase(struct vault *v, uint64_t num,
		    const struct rights_actor *who, const struct rights_opts *o,
		    char *err, size_t errlen)
{
	return rights_erase(v, num, who, o->reason, err, errlen);
}

int cmd_erase(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, OPT_REASON },
		{ 0 },
	};
	static const struct act a = { opts, do_erase, "erased" };

	return run_act(argc, argv, &a);
}

/* --until: a date (restricted until local midnight starting it) or an
 * RFC 3339 instant. */
static int parse_until(const char *s, int64_t *ms)
{
	int32_t day;

	if (clock_parse_day(s, &day) == 0) {
		*ms = clock_local_midnight_ms(day);
		return 0;
	}
	return clock_parse_rfc3339(s, ms);
}

static int do_restrict(struct vault *v, uint64_t num,
		       const struct rights_actor *who,
		       const struct rights_opts *o, char *err, size_t errlen)
{
	int64_t until = 0;

	if (o->until && parse_until(o->until, &until) != 0) {
		snprintf(err, errlen, "--until \"%s\": expected YYYY-MM-DD or "
			 "RFC 3339", o->until);
		return EINVAL;
	}
	return rights_restrict(v, num, until, who, o->reason, err, errlen);
}

int cmd_restrict(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ 0 },
	};
	static const struct act a = { opts, do_restrict, "restricted" };

	return run_act(argc, argv, &a);
}

static int do_unrestrict(struct vault *v, uint64_t num,
			 const struct rights_actor *who,
			 const struct rights_opts *o, char *err, size_t errlen)
{
	return rights_unrestrict(v, num, who, o->reason, err, errlen);
}

int cmd_unrestrict(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, OPT_REASON },
		{ 0 },
	};
	static const struct act a = { opts, do_unrestrict, "unrestricted" };

	return run_act(argc, argv, &a);
}

static int do_amend(struct vault *v, uint64_t num,
		    const struct rights_actor *who, const struct rights_opts *o,
		    char *err, size_t errlen)
{
	return rights_amend(v, num, who, o->note, err, errlen);
}

int cmd_amend(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "note", required_argument, NULL, OPT_NOTE },
		{ 0 },
	};
	static const struct act a = { opts, do_amend, "amended" };

	return run_act(argc, argv, &a);
}
