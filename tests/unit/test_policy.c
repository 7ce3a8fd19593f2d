/* The policy decision table: roles, training, and what each caller sees. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "callvault/catalog.h"
#include "callvault/keys.h"
#include "callvault/policy.h"

#define TODAY 20419

static struct catalog_user user(enum role role, int32_t trained)
{
	struct catalog_user u;

	memset(&u, 0, sizeof u);
	u.role = role;
	u.trained_until = trained;
	return u;
}

static void training_gates_supervisors_and_admins(void)
{
	struct {
		enum role role;
		int32_t trained;
		unsigned granted;
		unsigned want, want_untrained;
	} t[] = {
		{ ROLE_AGENT, -1, 0, ROLE_AGENT, 0 },
		{ ROLE_AGENT, TODAY - 1, 0, ROLE_AGENT, 0 },
		{ ROLE_SUPERVISOR, TODAY, 0, ROLE_SUPERVISOR, 0 },
		{ ROLE_SUPERVISOR, TODAY + 300, 0, ROLE_SUPERVISOR, 0 },
		{ ROLE_SUPERVISOR, TODAY - 1, 0, 0, ROLE_SUPERVISOR },
		{ ROLE_SUPERVISOR, -1, 0, 0, ROLE_SUPERVISOR },
		{ ROLE_ADMIN, TODAY, 0, ROLE_ADMIN, 0 },
		{ ROLE_ADMIN, TODAY - 1, 0, 0, ROLE_ADMIN },
		{ ROLE_ADMIN, -1, 0, 0, ROLE_ADMIN },
		/* grants add up; training still applies to admin grants */
		{ ROLE_AGENT, -1, ROLE_RECORDER, ROLE_AGENT | ROLE_RECORDER, 0 },
		{ ROLE_AGENT, -1, ROLE_ADMIN, ROLE_AGENT, ROLE_ADMIN },
		{ ROLE_AGENT, TODAY, ROLE_ADMIN, ROLE_AGENT | ROLE_ADMIN, 0 },
		{ ROLE_SUPERVISOR, TODAY, ROLE_BACKUP,
		  ROLE_SUPERVISOR | ROLE_BACKUP, 0 },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct catalog_user u = user(t[i].role, t[i].trained);
		unsigned untrained = 99;
		unsigned r = policy_effective_roles(&u, t[i].granted, TODAY,
						    &untrained);
		if (r != t[i].want || untrained != t[i].want_untrained) {
			fprintf(stderr, "  row %zu: roles %#x untrained %#x\n",
				i, r, untrained);
			test_case_failed = 1;
		}
	}
}

static void unknown_callers_get_grants_only(void)
{
	unsigned untrained;

	CHECK_INT(policy_effective_roles(NULL, 0, TODAY, &untrained), 0);
	CHECK_INT(policy_effective_roles(NULL, ROLE_BACKUP, TODAY, &untrained),
		  ROLE_BACKUP);
	CHECK_INT(policy_effective_roles(NULL, ROLE_RECORDER, TODAY,
					 &untrained),
		  ROLE_RECORDER);
	/* An admin grant to a group does not make an unknown uid an admin:
	 * nobody vouches for its training. */
	CHECK_INT(policy_effective_roles(NULL, ROLE_ADMIN, TODAY, &untrained),
		  0);
	CHECK_INT(untrained, ROLE_ADMIN);
}

/* Agents 1 and 2 are in team A (supervised), 3 in team B. */
static uint32_t team_a[] = { 1, 2 };

static void who_sees_which_call(void)
{
	struct principal agent1 = { .roles = ROLE_AGENT, .own_agent_id = 1 };
	struct principal sup = { .roles = ROLE_SUPERVISOR, .own_agent_id = 9,
				 .agents = team_a, .nagents = 2 };
	struct principal admin = { .roles = ROLE_ADMIN, .own_agent_id = 10 };
	struct principal backup = { .roles = ROLE_BACKUP };
	struct principal recorder = { .roles = ROLE_RECORDER };
	struct principal nobody = { 0 };
	struct principal untrained_sup = { .roles = 0, .own_agent_id = 9,
					   .untrained = ROLE_SUPERVISOR };
	struct {
		const struct principal *p;
		uint32_t agent;
		int restricted;
		int want;
	} t[] = {
		{ &agent1, 1, 0, 1 },   { &agent1, 2, 0, 0 },
		{ &agent1, 3, 0, 0 },   { &agent1, 0, 0, 0 },
		{ &agent1, 1, 1, 0 },   { &sup, 1, 0, 1 },
		{ &sup, 2, 0, 1 },      { &sup, 3, 0, 0 },
		{ &sup, 9, 0, 1 },      { &sup, 0, 0, 0 },
		{ &sup, 1, 1, 0 },      { &admin, 1, 0, 1 },
		{ &admin, 3, 0, 1 },    { &admin, 0, 0, 1 },
		{ &admin, 3, 1, 1 },    { &backup, 1, 0, 0 },
		{ &recorder, 1, 0, 0 }, { &nobody, 1, 0, 0 },
		{ &nobody, 0, 0, 0 },   { &untrained_sup, 1, 0, 0 },
		{ &untrained_sup, 9, 0, 0 },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct call_record rec = { .agent_id = t[i].agent,
					   .restricted = t[i].restricted };
		if (policy_sees_call(t[i].p, &rec) != t[i].want) {
			fprintf(stderr, "  row %zu: sees %d\n", i, !t[i].want);
			test_case_failed = 1;
		}
	}
	CHECK(!policy_sees_calls(&nobody));
	CHECK(!policy_sees_calls(&backup));
	CHECK(!policy_sees_calls(&untrained_sup));
	CHECK(policy_sees_calls(&agent1));
	CHECK(policy_sees_encrypted(&backup) && !policy_sees_incoming(&backup));
	CHECK(policy_sees_incoming(&recorder) &&
	      !policy_sees_encrypted(&recorder));
	CHECK(!policy_sees_incoming(&admin) && !policy_sees_encrypted(&admin));
}

/* A supervisor of teams that have no agents yet: sees its own calls only
 * (and the empty agent list is never handed to bsearch). */
static void supervisor_of_empty_teams(void)
{
	struct principal sup = { .roles = ROLE_SUPERVISOR, .own_agent_id = 9 };
	struct call_record own = { .agent_id = 9 }, other = { .agent_id = 1 };

	CHECK(policy_sees_call(&sup, &own));
	CHECK(!policy_sees_call(&sup, &other));
}

/* policy_resolve against a real catalog: directory users, teams, grants. */
static void resolve_from_the_directory(void)
{
	char dir[] = "/tmp/cv-policy-XXXXXX", path[64];
	unsigned char master[KEYS_KEY_LEN] = { 1 };
	struct keyring *ring = NULL;
	struct catalog *c = NULL;
	struct catalog_user u;
	struct principal p;
	uint32_t gids[] = { 5000, 7000 };

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/catalog.db", dir);
	CHECK_INT(keys_init(), 0);
	CHECK_INT(keys_ring_new(master, &ring), 0);
	CHECK_INT(catalog_create(path, ring), 0);
	CHECK_INT(catalog_open_keyed(path, 0, ring, &c), 0);
	if (!c)
		return;
	CHECK_INT(catalog_team_add(c, "a"), 0);
	CHECK_INT(catalog_team_add(c, "b"), 0);

	u = user(ROLE_AGENT, -1);
	snprintf(u.login, sizeof u.login, "ann");
	u.uid = 1001;
	snprintf(u.team, sizeof u.team, "a");
	CHECK_INT(catalog_user_add(c, &u), 0);
	snprintf(u.login, sizeof u.login, "bob");
	u.uid = 1002;
	snprintf(u.team, sizeof u.team, "b");
	CHECK_INT(catalog_user_add(c, &u), 0);
	u = user(ROLE_SUPERVISOR, TODAY + 10);
	snprintf(u.login, sizeof u.login, "sue");
	u.uid = 1003;
	snprintf(u.supervises[0], CATALOG_TEAM_LEN, "a");
	u.nsupervises = 1;
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_grant_add(c, ROLE_RECORDER, 7000), 0);

	uint32_t ann, bob;
	CHECK_INT(catalog_agent_id(c, "ann", &ann), 0);
	CHECK_INT(catalog_agent_id(c, "bob", &bob), 0);

	CHECK_INT(policy_resolve(c, 1003, gids, 1, TODAY, &p), 0);
	CHECK_INT(p.roles, ROLE_SUPERVISOR);
	CHECK(policy_sees_agent(&p, ann));
	CHECK(!policy_sees_agent(&p, bob));
	policy_release(&p);

	/* Past the training date the supervisor sees nothing. */
	CHECK_INT(policy_resolve(c, 1003, gids, 1, TODAY + 11, &p), 0);
	CHECK_INT(p.roles, 0);
	CHECK_INT(p.untrained, ROLE_SUPERVISOR);
	CHECK(!policy_sees_agent(&p, ann));
	policy_release(&p);

	/* A group grant adds the recorder role to an agent. */
	CHECK_INT(policy_resolve(c, 1001, gids, 2, TODAY, &p), 0);
	CHECK_INT(p.roles, ROLE_AGENT | ROLE_RECORDER);
	CHECK(policy_sees_agent(&p, ann));
	CHECK(!policy_sees_agent(&p, bob));
	policy_release(&p);

	/* Root is nobody unless the directory says otherwise. */
	CHECK_INT(policy_resolve(c, 0, gids, 1, TODAY, &p), 0);
	CHECK_INT(p.roles, 0);
	CHECK(!policy_sees_calls(&p));
	policy_release(&p);

	catalog_close(c);
	keys_ring_free(ring);
	snprintf(path, sizeof path, "rm -rf %s", dir);
	CHECK_INT(system(path), 0);
}

TEST_MAIN("policy", T(training_gates_supervisors_and_admins),
	  T(unknown_callers_get_grants_only), T(who_sees_which_call),
	  T(supervisor_of_empty_teams),
	  T(resolve_from_the_directory))
