/* Who the caller is and what it may see. */
#include "callvault/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "callvault/log.h"
#include "callvault/vec.h"

unsigned policy_effective_roles(const struct catalog_user *u, unsigned granted,
				int32_t today, unsigned *untrained)
{
	const unsigned need_training = ROLE_SUPERVISOR | ROLE_ADMIN;
	unsigned roles = granted;
	int trained = 0;

	if (u) {
		roles |= u->role;
		trained = u->trained_until >= 0 && u->trained_until >= today;
	}
	/* An admin grant through a group also needs the person's training,
	 * so it only counts for directory users. */
	if (!trained) {
		*untrained = roles & need_training;
		roles &= ~need_training;
	} else {
		*untrained = 0;
	}
	return roles;
}

struct agent_set {
	uint32_t *ids;
	size_t n, cap;
};

static int agent_set_add(void *ctx, uint32_t id)
{
	struct agent_set *s = ctx;
	uint32_t *ids = vec_reserve(s->ids, &s->cap, s->n, sizeof *ids);

	if (!ids)
		return ENOMEM;
	s->ids = ids;
	s->ids[s->n++] = id;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

int policy_resolve(struct catalog *c, uint32_t uid, const uint32_t *gids,
		   size_t ngids, int32_t today, struct principal *out)
{
	struct catalog_user u;
	struct agent_set set = { 0 };
	unsigned granted = 0;
	int err, known;

	memset(out, 0, sizeof *out);
	out->uid = uid;

	err = catalog_user_by_uid(c, uid, &u);
	if (err && err != ENOENT)
		goto fail;
	known = err == 0;
	err = catalog_grant_roles(c, gids, ngids, &granted);
	if (err)
		goto fail;

	out->roles = policy_effective_roles(known ? &u : NULL, granted, today,
					    &out->untrained);
	if (!known)
		return 0;

	memcpy(out->login, u.login, sizeof out->login);
	/* Only an agent has calls of its own; an admin or supervisor who also
	 * takes calls is an agent of the directory as well. */
	out->own_agent_id = u.agent_id;
	if (out->roles & ROLE_SUPERVISOR) {
		for (int i = 0; i < u.nsupervises; i++) {
			err = catalog_team_agents(c, u.supervises[i],
						  agent_set_add, &set);
			if (err)
				goto fail;
		}
		if (set.n)
			qsort(set.ids, set.n, sizeof *set.ids, cmp_u32);
		out->agents = set.ids;
		out->nagents = set.n;
	}
	return 0;

fail:
	/* Fewer rights, never more: a caller whose identity cannot be read
	 * gets nothing. */
	free(set.ids);
	memset(out, 0, sizeof *out);
	out->uid = uid;
	return err;
}

void policy_release(struct principal *p)
{
	free(p->agents);
	p->agents = NULL;
	p->nagents = 0;
}

int policy_sees_calls(const struct principal *p)
{
	return (p->roles & (ROLE_ADMIN | ROLE_SUPERVISOR)) != 0 ||
	       ((p->roles & ROLE_AGENT) && p->own_agent_id != 0);
}

int policy_sees_agent(const struct principal *p, uint32_t agent_id)
{
	if (p->roles & ROLE_ADMIN)
		return 1;
	if (agent_id == 0) /* unassigned calls: admins only */
		return 0;
	if ((p->roles & (ROLE_AGENT | ROLE_SUPERVISOR)) &&
	    agent_id == p->own_agent_id)
		return 1;
	if ((p->roles & ROLE_SUPERVISOR) && p->nagents)
		return bsearch(&agent_id, p->agents, p->nagents,
			       sizeof *p->agents, cmp_u32) != NULL;
	return 0;
}

int policy_sees_call(const struct principal *p, const struct call_record *rec)
{
	if (rec->restricted)
		return (p->roles & ROLE_ADMIN) != 0;
	return policy_sees_agent(p, rec->agent_id);
}

int policy_sees_incoming(const struct principal *p)
{
	return (p->roles & ROLE_RECORDER) != 0;
}

int policy_sees_encrypted(const struct principal *p)
{
	return (p->roles & ROLE_BACKUP) != 0;
}
