/* The audit trail: append-only and tamper-evident, in the catalog.
 *
 * Every entry carries a MAC: keyed BLAKE2b-256 under the audit subkey of
 * the master key over the previous entry's MAC and this entry's canonical
 * encoding. The chain's head (last sequence number and MAC) is kept beside
 * the entries and updated in the same transaction. Editing, inserting,
 * deleting or reordering entries with the sqlite3 tool breaks the chain,
 * and it cannot be recomputed without the master key. (Cutting off the
 * newest entries together with the head is a rollback that nothing inside
 * the database can detect; the daemon logs the head to syslog so that an
 * external copy can; docs/access.md.)
 *
 * Entries never hold audio or full phone numbers. */
#ifndef CALLVAULT_AUDIT_H
#define CALLVAULT_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "callvault/catalog.h"
#include "callvault/keys.h"

/* What happened. The strings are short, fixed vocabularies: action such
 * as "open", "lookup", "ingest", "user-add", "mount"; outcome "ok",
 * "denied" or "error". detail is free text (a reason), never personal data
 * beyond logins and call ids. */
struct audit_event {
	uint32_t uid;
	const char *login;   /* "" or NULL if not in the directory */
	unsigned roles;      /* enum role bits in effect */
	const char *action;
	uint64_t call_num;   /* 0: no call */
	const char *outcome;
	const char *detail;  /* may be NULL */
};

/* Appends events in one transaction on `c` (the caller's connection).
 * Returns 0 once they are durable, or an errno (nothing is appended). */
int audit_append(struct catalog *c, const struct keyring *ring,
		 const struct audit_event *ev, size_t n);

/* The same inside the caller's open transaction (catalog_begin), so that
 * an act and its entry commit together. */
int audit_append_in(struct catalog *c, const struct keyring *ring,
		    const struct audit_event *ev, size_t n);

/* A background writer for the mount: appends from many threads are
 * batched into one transaction (group commit), so that audited opens do
 * not each pay for an fsync. */
struct audit_log;

/* `open_catalog` gives the writer thread its own connection. */
int audit_log_start(const char *catalog_path, const struct keyring *ring,
		    struct audit_log **out);
/* Waits until the event is durable; returns 0 or an errno. An open must
 * not succeed unless this returned 0. */
int audit_log_write(struct audit_log *al, const struct audit_event *ev);
/* Queues the event without waiting (refusals: their reply must not take
 * longer than that of a name that does not exist). */
void audit_log_post(struct audit_log *al, const struct audit_event *ev);
/* Writes what is queued and stops the thread. NULL-safe. */
void audit_log_stop(struct audit_log *al);

/* Checks the whole chain. Returns 0 if intact; EBADMSG otherwise, after
 * calling bad(ctx, seq, why) for the first entry that fails (seq 0 when
 * the head itself does not match). */
int audit_verify(struct catalog *c, const struct keyring *ring,
		 void (*bad)(void *ctx, uint64_t seq, const char *why),
		 void *ctx);

/* "agent+recorder", "none". */
void audit_roles_string(unsigned roles, char *out, size_t len);

#endif
