/* The catalog: SQLite database VAULT/catalog.db holding the directory
 * (teams, users, grants), the call index and the audit trail, and beside it
 * the key store VAULT/keystore.db (attached to every connection) holding
 * what rebuild needs besides the blobs: the wrapped nodes of each day's key
 * tree, keys of calls wrapped on their own, restrictions, erasure
 * tombstones and notes. Every SQL statement of callvault lives in catalog.c.
 *
 * A write that touches both files is atomic in each file but not across
 * them (SQLite WAL): callers order such writes so that a crash between the
 * two leaves a state the next sweep completes (see rights.c).
 *
 * A `struct catalog` is one connection and is not thread-safe: use one per
 * thread (vault_catalog() hands out per-thread connections). WAL mode,
 * synchronous=FULL, foreign keys on, secure_delete on, busy timeout set, so
 * that the CLI and a mount can use a vault at the same time.
 *
 * Rows that decide who sees what (calls, users, agent ids, supervised
 * teams, grants, restrictions, tombstones) are authenticated: each carries
 * a keyed MAC (catalog MAC subkey of the master key) over its fields, so
 * that nobody who can write the files but lacks the key can make a call
 * visible to someone else, undo a restriction or plant a tombstone
 * (docs/format.md, "Catalog rows"). A connection opened with
 * catalog_open_keyed() signs what it writes and checks what it reads: a
 * row that fails is refused with a log line (lookups return EBADMSG,
 * listings leave it out). One opened with catalog_open() cannot touch
 * those rows (EPERM); it serves the audit trail, snapshots and checks.
 *
 * Functions return 0 or a positive errno: ENOENT (no such row), EEXIST
 * (duplicate), EINVAL (bad argument), EBUSY (locked past the timeout),
 * EBADMSG (a row failed authentication), EPERM (no key), EIO (anything
 * else, logged with SQLite's message). */
#ifndef CALLVAULT_CATALOG_H
#define CALLVAULT_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "callvault/call.h"
#include "callvault/keys.h"

#define CATALOG_TEAM_LEN 64
#define CATALOG_MAX_TEAMS 32 /* teams one supervisor may supervise */
#define CATALOG_VAULT_ID_LEN 16

enum role {
	ROLE_AGENT = 1 << 0,
	ROLE_SUPERVISOR = 1 << 1,
	ROLE_ADMIN = 1 << 2,
	ROLE_BACKUP = 1 << 3,    /* by grant only */
	ROLE_RECORDER = 1 << 4,  /* by grant only */
};

/* "agent" <-> ROLE_AGENT ...; role_parse returns 0 for unknown names. */
const char *role_name(enum role r);
enum role role_parse(const char *name);

struct catalog_user {
	char login[CALL_LOGIN_LEN];
	uint32_t uid;
	char name[CALL_NAME_LEN];
	enum role role;                   /* agent, supervisor or admin */
	char team[CATALOG_TEAM_LEN];      /* an agent's team; "" if none */
	int32_t trained_until;            /* day number; -1 = never */
	uint32_t agent_id;                /* stable id of this login */
	/* teams a supervisor supervises */
	char supervises[CATALOG_MAX_TEAMS][CATALOG_TEAM_LEN];
	int nsupervises;
};

struct catalog;

/* Creates catalog.db with the current schema and the identity of the
 * vault whose keys are `ring` (keys_check_value), and the key store beside
 * it unless one of the same vault is there. EEXIST if the catalog
 * exists. */
int catalog_create(const char *path, const struct keyring *ring);

#define CATALOG_READONLY 1
/* Without the key: no authenticated rows, and no schema upgrade (EINVAL,
 * logged, for an older schema). */
int catalog_open(const char *path, int flags, struct catalog **out);
/* With the vault's keys: EACCES if `ring` is not the vault's (checked
 * before anything is written); upgrades an older schema, signing its
 * rows, unless CATALOG_READONLY. `ring` must outlive the connection. */
int catalog_open_keyed(const char *path, int flags,
		       const struct keyring *ring, struct catalog **out);
void catalog_close(struct catalog *c);

/* Checks the MAC of every authenticated row, calling `fn` for each that
 * fails ("calls", "c-000184"); `checked` counts the rows. A non-zero
 * return of `fn` stops the walk and is returned. */
int catalog_verify_rows(struct catalog *c,
			int (*fn)(void *ctx, const char *table,
				  const char *row),
			void *ctx, uint64_t *checked);

/* The key check value stored at creation (see keys_check_value). */
int catalog_key_check(struct catalog *c, unsigned char out[KEYS_CHECK_LEN]);

/* SQLite's integrity_check of the catalog and the key store: 0, or
 * EBADMSG (with log lines saying what is wrong). Reads every page: for
 * rebuild, not for every open. */
int catalog_integrity_check(struct catalog *c);

/* The connection's page cache, in MiB (SQLite's default is 2): for bulk
 * loads (rebuild, synthetic catalogs) that fill large indexes. */
void catalog_set_cache(struct catalog *c, unsigned mib);

/* Transactions (BEGIN IMMEDIATE). Nesting is not supported. */
int catalog_begin(struct catalog *c);
int catalog_commit(struct catalog *c);
void catalog_rollback(struct catalog *c);

/* A read snapshot over several queries (BEGIN DEFERRED ... COMMIT): one
 * set of file locks for a whole FUSE request instead of one per statement.
 * Only for reading; read_end is safe to call when begin failed. */
int catalog_read_begin(struct catalog *c);
void catalog_read_end(struct catalog *c);

/* A counter bumped by every change of the directory (users, teams,
 * grants), so that a mount can tell cheaply whether what it derived from
 * the directory is still current. */
int catalog_directory_version(struct catalog *c, int64_t *out);

/* Teams. */
int catalog_team_add(struct catalog *c, const char *name);
int catalog_team_exists(struct catalog *c, const char *name);  /* 0/ENOENT */
int catalog_team_list(struct catalog *c,
		      int (*fn)(void *ctx, const char *name, int members),
		      void *ctx);

/* Users. add: EEXIST if the login or uid is taken, ENOENT if a team does
 * not exist. The agent id is assigned by the catalog and kept for the
 * login forever (a deleted and re-added login gets the same id). */
int catalog_user_add(struct catalog *c, const struct catalog_user *u);
/* Replaces every field of the user `u->login` but its agent id. */
int catalog_user_update(struct catalog *c, const struct catalog_user *u);
int catalog_user_del(struct catalog *c, const char *login);
int catalog_user_get(struct catalog *c, const char *login,
		     struct catalog_user *out);
int catalog_user_by_uid(struct catalog *c, uint32_t uid,
			struct catalog_user *out);
int catalog_user_list(struct catalog *c,
		      int (*fn)(void *ctx, const struct catalog_user *u),
		      void *ctx);

/* Agent ids: the stable number behind an agent directory. Logins of deleted
 * users keep theirs. ensure: the id of `login`, made if it has none
 * (rebuild of calls whose agent the directory lost). */
int catalog_agent_ensure(struct catalog *c, const char *login, uint32_t *id);
int catalog_agent_id(struct catalog *c, const char *login, uint32_t *id);
int catalog_agent_login(struct catalog *c, uint32_t id,
			char out[CALL_LOGIN_LEN]);
/* The uid of the user whose agent id is `id`: the owner of that agent's
 * directories. One query, for listings. ENOENT if the agent has no user
 * (deleted) or there is no such agent. */
int catalog_agent_uid(struct catalog *c, uint32_t id, uint32_t *uid);
/* Agent ids of the current members of `team`. */
int catalog_team_agents(struct catalog *c, const char *team,
			int (*fn)(void *ctx, uint32_t agent_id), void *ctx);

/* Grants: a role for every member of a Unix group. */
int catalog_grant_add(struct catalog *c, enum role role, uint32_t gid);
int catalog_grant_del(struct catalog *c, enum role role, uint32_t gid);
/* OR of the roles granted to any of `gids`. */
int catalog_grant_roles(struct catalog *c, const uint32_t *gids, size_t n,
			unsigned *roles);
int catalog_grant_list(struct catalog *c,
		       int (*fn)(void *ctx, enum role role, uint32_t gid),
		       void *ctx);

/* Key trees (keys.h). ensure: stores `root` as the day's tree if the day
 * has no node yet (else keeps what is there). node: the node of `day` that
 * covers call `num`; ENOENT if none does (destroyed or punctured).
 * replace: swaps node `old` for `n` nodes, atomically (puncture). destroy:
 * removes every node of the day (ENOENT if it had none). needs_epoch: 1
 * if a call of the day still depends on the day's tree (has no key of its
 * own). */
int catalog_epoch_ensure(struct catalog *c, int32_t day,
			 const struct keys_node *root);
int catalog_epoch_node(struct catalog *c, int32_t day, uint64_t num,
		       struct keys_node *out);
int catalog_epoch_replace(struct catalog *c, int32_t day,
			  const struct keys_node *old,
			  const struct keys_node *repl, size_t n);
int catalog_day_needs_epoch(struct catalog *c, int32_t day, int *needed);
/* Up to `cap` days before `day` that still have a key tree, ascending. */
int catalog_epoch_days_before(struct catalog *c, int32_t day,
			      int32_t *days, size_t cap, size_t *n);

/* Keys of calls wrapped on their own (keys_call_wrap): put keeps an
 * existing one; get: ENOENT if the call has none. Deleted with the call. */
int catalog_call_key_put(struct catalog *c, uint64_t num, int32_t day,
			 const unsigned char wrapped[KEYS_WRAPPED_LEN]);
int catalog_call_key_get(struct catalog *c, uint64_t num, int32_t *day,
			 unsigned char wrapped[KEYS_WRAPPED_LEN]);
int catalog_call_key_del(struct catalog *c, uint64_t num);

/* Restrictions (legal hold), as kept in the key store: who, why, since
 * and until when (until_ms 0: until lifted), for rebuild and display. What
 * decides visibility is the call row's restricted_until, which rights.c
 * sets in the same transaction (catalog_call_restrict). put replaces an
 * earlier restriction of the call; del: ENOENT if none. */
#define CATALOG_REASON_LEN 256
struct catalog_restriction {
	uint64_t num;
	int64_t since_ms;
	int64_t until_ms;
	char by[CALL_LOGIN_LEN];
	char reason[CATALOG_REASON_LEN];
};
int catalog_restriction_put(struct catalog *c,
			    const struct catalog_restriction *r);
int catalog_restriction_get(struct catalog *c, uint64_t num,
			    struct catalog_restriction *out);
int catalog_restriction_del(struct catalog *c, uint64_t num);

/* Tombstones of erased calls, kept forever: rebuild never brings a
 * tombstoned call back. tombstoned: 0 if `num` has one, else ENOENT.
 * calls_tombstoned: calls whose row outlived their erasure (a crash in
 * the middle of erase), for the sweep to finish. */
int catalog_tombstone_put(struct catalog *c, uint64_t num, int32_t day,
			  int64_t at_ms);
int catalog_tombstoned(struct catalog *c, uint64_t num);
int catalog_calls_tombstoned(struct catalog *c,
			     int (*fn)(void *ctx,
				       const struct call_record *rec),
			     void *ctx);

/* Notes appended to a call (amend), oldest first. Deleted with the call. */
#define CATALOG_NOTE_LEN 4096
int catalog_note_add(struct catalog *c, uint64_t num, int64_t at_ms,
		     const char *login, const char *text);
int catalog_notes_of(struct catalog *c, uint64_t num,
		     int (*fn)(void *ctx, int64_t at_ms, const char *login,
			       const char *text),
		     void *ctx);

/* Call numbers come from a counter that never goes back, also across
 * erasures and rebuilds. */
int catalog_call_num_next(struct catalog *c, uint64_t *num);
/* Raises the counter to at least `num` + 1 (rebuild). */
int catalog_call_num_seen(struct catalog *c, uint64_t num);

int catalog_call_insert(struct catalog *c, const struct call_record *rec);
/* Replaces every field of the existing row of `rec->num` and signs it
 * (rebuild, from the blob's sealed metadata); ENOENT if there is none. */
int catalog_call_rewrite(struct catalog *c, const struct call_record *rec);
int catalog_call_get(struct catalog *c, uint64_t num, struct call_record *out);
/* Sets a call's restricted_until (call_record) and re-signs its row: the
 * state that decides visibility, in the same row and transaction as the
 * MAC that covers it. The key store's restriction row (below) is the
 * copy that rebuild restores from. */
int catalog_call_restrict(struct catalog *c, uint64_t num, int64_t until_ms);

/* Days that have calls, ascending; agents (ids) that have calls on a day,
 * ascending; calls of one agent on one day, by start time. With
 * `agent_filter` non-NULL, only agents for which it returns 1 count. */
int catalog_days(struct catalog *c, int (*fn)(void *ctx, int32_t day),
		 void *ctx);
int catalog_day_agents(struct catalog *c, int32_t day,
		       int (*fn)(void *ctx, uint32_t agent_id), void *ctx);
int catalog_calls_of(struct catalog *c, int32_t day, uint32_t agent_id,
		     int (*fn)(void *ctx, const struct call_record *rec),
		     void *ctx);

/* Calls filtered for the admin listing; day < 0 / agent NULL: any. */
int catalog_calls_list(struct catalog *c, int32_t day, const char *agent,
		       int (*fn)(void *ctx, const struct call_record *rec),
		       void *ctx);
/* Calls whose customer number hash equals `hash`. */
int catalog_calls_by_number(struct catalog *c,
			    const unsigned char hash[CALL_NUMBER_HASH_LEN],
			    int (*fn)(void *ctx,
				      const struct call_record *rec),
			    void *ctx);

/* The audit trail's rows (the chain itself is the audit module's). */
#define CATALOG_AUDIT_ROLES_LEN 64
#define CATALOG_AUDIT_ACTION_LEN 32
#define CATALOG_AUDIT_OUTCOME_LEN 16
#define CATALOG_AUDIT_DETAIL_LEN 256
struct catalog_audit {
	uint64_t seq;              /* 1, 2, ... */
	int64_t at_ms;
	uint32_t uid;
	char login[CALL_LOGIN_LEN];
	char roles[CATALOG_AUDIT_ROLES_LEN];
	char action[CATALOG_AUDIT_ACTION_LEN];
	uint64_t call_num;         /* 0: none */
	char outcome[CATALOG_AUDIT_OUTCOME_LEN];
	char detail[CATALOG_AUDIT_DETAIL_LEN];
	unsigned char mac[32];
};

/* The chain head: last seq and its MAC; seq 0 and a zero MAC when the
 * trail is empty. */
int catalog_audit_head(struct catalog *c, uint64_t *seq,
		       unsigned char mac[32]);
/* Inserts the row and moves the head to it. Call inside a transaction. */
int catalog_audit_insert(struct catalog *c, const struct catalog_audit *a);

struct catalog_audit_filter {
	int64_t since_ms;   /* 0: from the start */
	const char *login;  /* NULL: anyone */
	uint64_t call_num;  /* 0: any */
};
/* Rows in seq order (all of them with a NULL filter). */
int catalog_audit_list(struct catalog *c,
		       const struct catalog_audit_filter *f,
		       int (*fn)(void *ctx, const struct catalog_audit *a),
		       void *ctx);

/* Retention. Calls that started at or before start_ms, oldest first (the
 * sweeper's candidates); delete one call's row (with its own key,
 * restriction and notes); destroy a day's key tree (secure_delete
 * overwrites it in the database file); a TRUNCATE checkpoint of both files
 * so that no copy of a destroyed key lingers in a WAL (EBUSY if a reader
 * kept part of it: try again later). ENOENT if nothing was deleted. */
int catalog_calls_started_by(struct catalog *c, int64_t start_ms,
			     int (*fn)(void *ctx, const struct call_record *rec),
			     void *ctx);
int catalog_call_delete(struct catalog *c, uint64_t num);
/* Deletes only the key store's rows of a call (own key, restriction,
 * notes): callers that must not leave key material behind if a crash
 * splits a two-file commit do this first, in its own transaction. */
int catalog_call_purge_ks(struct catalog *c, uint64_t num);
int catalog_epoch_destroy(struct catalog *c, int32_t day);
int catalog_checkpoint(struct catalog *c);

/* Counts for statfs: calls and days. */
int catalog_counts(struct catalog *c, uint64_t *calls, uint64_t *bytes);

/* What `callvault status` reports, read in one snapshot. */
struct catalog_summary {
	uint64_t calls;            /* rows in calls */
	uint64_t bytes;            /* their decrypted audio, in bytes */
	uint64_t days;             /* distinct days that have calls */
	uint64_t restricted;       /* calls under a restriction in force */
	int64_t oldest_start_ms;   /* start of the oldest call; -1 if none */
	/* Start of the oldest call that no restriction holds now (the next
	 * to expire, since expiry grows with the start); -1 if none. */
	int64_t oldest_free_start_ms;
};
/* Fills `out` as of now_ms (restrictions whose end has passed do not
 * count). Returns 0 or an errno. */
int catalog_summary(struct catalog *c, int64_t now_ms,
		    struct catalog_summary *out);

/* The newest audit entry whose action is one of `actions` (NULL-ended).
 * ENOENT if there is none. */
int catalog_audit_last(struct catalog *c, const char *const *actions,
		       struct catalog_audit *out);

#endif
