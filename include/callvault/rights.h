/* The data subject's rights that change the register: erasure,
 * restriction (legal hold), lifting a restriction, and completion by an
 * appended note. Each is one audited act, named after who did it and why;
 * the CLI and tests call these, the mount sees their effect at the next
 * request (every request reads the catalog).
 *
 * Erasure destroys the call's key at once, without touching the rest of its
 * day: the day's key tree is punctured at the call (keys.h), the call's own
 * key (if it was ever restricted) is deleted, a tombstone is written to the
 * key store, then the row and the blob go. A crash in between leaves a
 * tombstoned row that rights_finish_erasures() (run by every sweep)
 * completes; the tombstone keeps rebuild from ever bringing the call back.
 *
 * Restriction gives the call a key wrapped on its own, so that its day's
 * key tree can be destroyed when the rest of the day expires while the
 * restricted call is kept. Functions return 0 or a positive errno, with a
 * one-line reason in err for the user. */
#ifndef CALLVAULT_RIGHTS_H
#define CALLVAULT_RIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "callvault/catalog.h"
#include "callvault/vault.h"

/* Who acts: the invoking Unix user, its login and roles if the directory
 * knows it. */
struct rights_actor {
	uint32_t uid;
	const char *login;  /* "" if unknown */
	unsigned roles;
};

/* Limits of what the caller types. */
#define RIGHTS_REASON_MAX 200

/* Erases call `num`. EBUSY "restricted" if a restriction holds (lift it
 * first); ENOENT if there is no such call; EALREADY if it was erased
 * before. */
int rights_erase(struct vault *v, uint64_t num, const struct rights_actor *who,
		 const char *reason, char *err, size_t errlen);

/* Restricts call `num` until until_ms (0: until lifted), replacing an
 * earlier restriction. ENOENT for a call that does not exist or has
 * expired. */
int rights_restrict(struct vault *v, uint64_t num, int64_t until_ms,
		    const struct rights_actor *who, const char *reason,
		    char *err, size_t errlen);

/* Lifts the restriction of `num`. ENOENT if it has none. A call whose
 * expiry has passed vanishes at once and is deleted by the next sweep. */
int rights_unrestrict(struct vault *v, uint64_t num,
		      const struct rights_actor *who, const char *reason,
		      char *err, size_t errlen);

/* Appends a note to call `num`. EINVAL for an empty note, one longer than
 * CATALOG_NOTE_LEN - 1 bytes, or one that is not printable UTF-8. */
int rights_amend(struct vault *v, uint64_t num, const struct rights_actor *who,
		 const char *note, char *err, size_t errlen);

/* Erasures are also appended to an authenticated log beside the key file
 * (vault_erasure_log()), which lives outside the vault directory: after a
 * restore from a backup older than an erasure, the restored key store
 * lacks the tombstone but the log still has it. replay: tombstones every
 * call the log names (rebuild does this first). *added counts new
 * tombstones, *bad lines that do not authenticate (ignored, logged). */
int rights_replay_erasures(struct vault *v, unsigned *added, unsigned *bad);

/* Completes erasures interrupted by a crash (blob and row of tombstoned
 * calls). `gone` (may be NULL) is told of each call removed. Returns the
 * count in *n. */
int rights_finish_erasures(struct vault *v,
			   void (*gone)(void *ctx,
					const struct call_record *rec),
			   void *ctx, unsigned *n);

/* The .json view of a call with its notes (meta_render), using connection
 * `c`. malloc()ed; NULL on error. */
char *rights_render_json(struct catalog *c, const struct call_record *rec,
			 size_t *len);

#endif
