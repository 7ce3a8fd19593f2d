/* Policy: who the caller is and what it may see. Resolution reads the
 * directory through the catalog; the decisions are pure functions of the
 * resolved principal and the object, unit-tested as a table.
 *
 *   agent       its own calls
 *   supervisor  its own calls and those of the agents of every team it
 *               supervises
 *   admin       every call
 *   backup      encrypted/ only          (by group grant)
 *   recorder    incoming/ only           (by group grant)
 *
 * Roles add up. Supervisor and admin rights need a trained-until date not in
 * the past. Unknown uids, root included, get nothing. */
#ifndef CALLVAULT_POLICY_H
#define CALLVAULT_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "callvault/call.h"
#include "callvault/catalog.h"

struct principal {
	uint32_t uid;
	char login[CALL_LOGIN_LEN]; /* "" if not in the directory */
	unsigned roles;             /* usable now: enum role bits */
	unsigned untrained;         /* roles held but unusable (training) */
	uint32_t own_agent_id;      /* 0 if none */
	uint32_t *agents;           /* sorted ids of supervised agents */
	size_t nagents;
};

/* The usable roles of a directory user (NULL if the uid is unknown) with
 * `granted` roles from group grants, on local day `today`. Roles that need
 * training and lack it are put in *untrained. Pure. */
unsigned policy_effective_roles(const struct catalog_user *u, unsigned granted,
				int32_t today, unsigned *untrained);

/* Resolves a caller. `gids` are its primary and supplementary groups. A
 * failure to read the directory yields a principal with no rights and the
 * errno. Release with policy_release(). */
int policy_resolve(struct catalog *c, uint32_t uid, const uint32_t *gids,
		   size_t ngids, int32_t today, struct principal *out);
void policy_release(struct principal *p);

/* Pure decisions. */
int policy_sees_calls(const struct principal *p);   /* any call at all */
int policy_sees_agent(const struct principal *p, uint32_t agent_id);
int policy_sees_call(const struct principal *p, const struct call_record *rec);
int policy_sees_incoming(const struct principal *p);
int policy_sees_encrypted(const struct principal *p);

#endif
