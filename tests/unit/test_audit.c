/* The audit chain: appends, verification, and every kind of tampering. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#include "test.h"
#include "callvault/audit.h"
#include "callvault/keys.h"

struct env {
	char dir[64];
	char path[96];
	struct keyring *ring;
	struct catalog *c;
};

static void env_open(struct env *e, int entries)
{
	unsigned char master[KEYS_KEY_LEN], check[KEYS_CHECK_LEN];

	memset(e, 0, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "/tmp/cv-audit-XXXXXX");
	CHECK(mkdtemp(e->dir) != NULL);
	snprintf(e->path, sizeof e->path, "%s/catalog.db", e->dir);
	for (int i = 0; i < KEYS_KEY_LEN; i++)
		master[i] = (unsigned char)i;
	CHECK_INT(keys_ring_new(master, &e->ring), 0);
	keys_check_value(e->ring, check);
	CHECK_INT(catalog_create(e->path, e->ring), 0);
	CHECK_INT(catalog_open(e->path, 0, &e->c), 0);
	for (int i = 0; i < entries; i++) {
		struct audit_event ev = { .uid = 1000 + (uint32_t)i,
					  .login = "aino",
					  .roles = ROLE_AGENT,
					  .action = "open-opus",
					  .call_num = (uint64_t)i + 1,
					  .outcome = "ok" };
		CHECK_INT(audit_append(e->c, e->ring, &ev, 1), 0);
	}
}

static void env_close(struct env *e)
{
	char cmd[128];

	catalog_close(e->c);
	keys_ring_free(e->ring);
	snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
	CHECK_INT(system(cmd), 0);
}

/* Changes the catalog behind the module's back, as sqlite3(1) would. */
static void tamper(struct env *e, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	CHECK_INT(sqlite3_open(e->path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "  tamper: %s: %s\n", sql, msg);
		test_case_failed = 1;
	}
	sqlite3_free(msg);
	sqlite3_close(db);
}

struct first_bad {
	uint64_t seq;
	int calls;
};

static void on_bad(void *ctx, uint64_t seq, const char *why)
{
	struct first_bad *b = ctx;

	(void)why;
	b->seq = seq;
	b->calls++;
}

static void expect_bad(struct env *e, uint64_t seq)
{
	struct first_bad b = { 0 };

	CHECK_INT(audit_verify(e->c, e->ring, on_bad, &b), EBADMSG);
	CHECK_INT(b.calls, 1);
	CHECK_INT(b.seq, seq);
}

static void intact_trail_verifies(void)
{
	struct env e;
	struct first_bad b = { 0 };

	env_open(&e, 10);
	CHECK_INT(audit_verify(e.c, e.ring, on_bad, &b), 0);
	CHECK_INT(b.calls, 0);
	env_close(&e);
}

static void empty_trail_verifies(void)
{
	struct env e;

	env_open(&e, 0);
	CHECK_INT(audit_verify(e.c, e.ring, NULL, NULL), 0);
	env_close(&e);
}

static void altered_entry_is_found(void)
{
	struct env e;

	env_open(&e, 10);
	tamper(&e, "UPDATE audit SET outcome = 'denied' WHERE seq = 4");
	expect_bad(&e, 4);
	env_close(&e);

	env_open(&e, 10);
	tamper(&e, "UPDATE audit SET uid = 0 WHERE seq = 7");
	expect_bad(&e, 7);
	env_close(&e);
}

static void removed_entry_is_found(void)
{
	struct env e;

	env_open(&e, 10);
	tamper(&e, "DELETE FROM audit WHERE seq = 5");
	expect_bad(&e, 5);
	env_close(&e);

	/* The newest entry: the head still names it. */
	env_open(&e, 10);
	tamper(&e, "DELETE FROM audit WHERE seq = 10");
	expect_bad(&e, 10);
	env_close(&e);
}

static void inserted_entry_is_found(void)
{
	struct env e;

	env_open(&e, 10);
	tamper(&e, "UPDATE audit SET seq = seq + 1000 WHERE seq >= 6;"
		   "UPDATE audit SET seq = seq - 999 WHERE seq >= 1000;"
		   "INSERT INTO audit SELECT 6, at_ms, 4242, 'mallory', 'admin',"
		   " 'open-opus', 3, 'ok', '', mac FROM audit WHERE seq = 5");
	expect_bad(&e, 6);
	env_close(&e);
}

static void reordered_entries_are_found(void)
{
	struct env e;

	env_open(&e, 10);
	tamper(&e, "UPDATE audit SET seq = -1 WHERE seq = 3;"
		   "UPDATE audit SET seq = 3 WHERE seq = 4;"
		   "UPDATE audit SET seq = 4 WHERE seq = -1");
	expect_bad(&e, 3);
	env_close(&e);
}

static void recomputed_chain_needs_the_key(void)
{
	struct env e, other;

	/* Whoever rewrites the chain with another key (they lack ours) is
	 * caught at the first entry. */
	env_open(&e, 5);
	env_open(&other, 0);
	{
		unsigned char master[KEYS_KEY_LEN];
		struct keyring *ring;
		struct audit_event ev = { .uid = 1, .login = "x",
					  .action = "open-opus",
					  .outcome = "ok" };
		keys_random(master, sizeof master);
		CHECK_INT(keys_ring_new(master, &ring), 0);
		tamper(&e, "DELETE FROM audit; UPDATE audit_head SET seq = 0,"
			   " mac = zeroblob(32)");
		CHECK_INT(audit_append(e.c, ring, &ev, 1), 0);
		keys_ring_free(ring);
	}
	expect_bad(&e, 1);
	env_close(&other);
	env_close(&e);
}

static void batch_append_chains(void)
{
	struct env e;
	struct audit_event ev[3] = {
		{ .uid = 1, .action = "open-opus", .outcome = "ok" },
		{ .uid = 2, .action = "lookup-day", .outcome = "denied",
		  .detail = "2026-11-27" },
		{ .uid = 3, .action = "mount", .outcome = "ok" },
	};
	uint64_t seq;
	unsigned char mac[32];

	env_open(&e, 2);
	CHECK_INT(audit_append(e.c, e.ring, ev, 3), 0);
	CHECK_INT(catalog_audit_head(e.c, &seq, mac), 0);
	CHECK_INT(seq, 5);
	CHECK_INT(audit_verify(e.c, e.ring, NULL, NULL), 0);
	env_close(&e);
}

static void group_commit_writer(void)
{
	struct env e;
	struct audit_log *al = NULL;
	struct audit_event ev = { .uid = 7, .login = "sanna",
				  .roles = ROLE_SUPERVISOR,
				  .action = "open-json",
				  .call_num = 9,
				  .outcome = "ok" };
	uint64_t seq;
	unsigned char mac[32];

	env_open(&e, 1);
	CHECK_INT(audit_log_start(e.path, e.ring, &al), 0);
	for (int i = 0; i < 20; i++)
		CHECK_INT(audit_log_write(al, &ev), 0);
	ev.outcome = "denied";
	for (int i = 0; i < 5; i++)
		audit_log_post(al, &ev);
	audit_log_stop(al); /* writes what is queued */
	CHECK_INT(catalog_audit_head(e.c, &seq, mac), 0);
	CHECK_INT(seq, 26);
	CHECK_INT(audit_verify(e.c, e.ring, NULL, NULL), 0);
	env_close(&e);
}

static void roles_string(void)
{
	char buf[64];

	audit_roles_string(0, buf, sizeof buf);
	CHECK_STR(buf, "none");
	audit_roles_string(ROLE_AGENT | ROLE_RECORDER, buf, sizeof buf);
	CHECK_STR(buf, "agent+recorder");
	audit_roles_string(ROLE_ADMIN, buf, sizeof buf);
	CHECK_STR(buf, "admin");
}

int main(void)
{
	static const struct test_case cases[] = {
		T(intact_trail_verifies), T(empty_trail_verifies),
		T(altered_entry_is_found), T(removed_entry_is_found),
		T(inserted_entry_is_found), T(reordered_entries_are_found),
		T(recomputed_chain_needs_the_key), T(batch_append_chains),
		T(group_commit_writer), T(roles_string),
	};

	if (keys_init() != 0)
		return 1;
	return test_run("audit", cases, sizeof cases / sizeof cases[0]);
}
