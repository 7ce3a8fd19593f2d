/* Catalog: schema creation and opening, directory, grants, epoch keys, call
 * numbers, call rows and listings, concurrency between two connections. */
#include "callvault/catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static char tmpdir[64];
static char dbpath[128];
static unsigned char check_value[KEYS_CHECK_LEN];
static struct keyring *ring;

/* A fresh catalog in a fresh temporary directory, opened read-write. */
static struct catalog *fresh(void)
{
	struct catalog *c = NULL;

	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_catalog.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(dbpath, sizeof dbpath, "%s/catalog.db", tmpdir);
	if (!ring) {
		unsigned char master[KEYS_KEY_LEN];

		for (size_t i = 0; i < sizeof master; i++)
			master[i] = (unsigned char)(0xa0 + i);
		CHECK_INT(keys_init(), 0);
		CHECK_INT(keys_ring_new(master, &ring), 0);
		keys_check_value(ring, check_value);
	}
	CHECK_INT(catalog_create(dbpath, ring), 0);
	CHECK_INT(catalog_open_keyed(dbpath, 0, ring, &c), 0);
	CHECK(c != NULL);
	return c;
}

static void rm_suffix(const char *suffix)
{
	char p[160];

	snprintf(p, sizeof p, "%s%s", dbpath, suffix);
	unlink(p);
}

static void cleanup(struct catalog *c)
{
	static const char *const ks[] = { "keystore.db", "keystore.db-wal",
					  "keystore.db-shm" };
	char p[160];

	catalog_close(c);
	rm_suffix("");
	rm_suffix("-wal");
	rm_suffix("-shm");
	for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", tmpdir, ks[i]);
		unlink(p);
	}
	rmdir(tmpdir);
}

static void make_user(struct catalog_user *u, const char *login, uint32_t uid,
		      enum role role, const char *team)
{
	memset(u, 0, sizeof *u);
	snprintf(u->login, sizeof u->login, "%s", login);
	snprintf(u->name, sizeof u->name, "Name of %s", login);
	snprintf(u->team, sizeof u->team, "%s", team);
	u->uid = uid;
	u->role = role;
	u->trained_until = -1;
}

static void make_call(struct call_record *r, uint64_t num, int32_t day,
		      uint32_t agent_id, int64_t start_ms)
{
	memset(r, 0, sizeof *r);
	r->num = num;
	r->day = day;
	r->start_ms = start_ms;
	r->end_ms = start_ms + 60000;
	r->duration_ms = 59990;
	snprintf(r->direction, sizeof r->direction, "inbound");
	snprintf(r->service_number, sizeof r->service_number, "+35860094320");
	snprintf(r->customer_masked, sizeof r->customer_masked,
		 "+358401234***");
	for (size_t i = 0; i < sizeof r->customer_sealed; i++)
		r->customer_sealed[i] = (unsigned char)(num + i);
	for (size_t i = 0; i < sizeof r->number_hash; i++)
		r->number_hash[i] = (unsigned char)(0x11 * (num % 3) + i);
	r->agent_id = agent_id;
	snprintf(r->agent, sizeof r->agent, "agent%u", agent_id);
	snprintf(r->agent_name, sizeof r->agent_name, "Agent Number %u",
		 agent_id);
	r->agent_uid = 1000 + agent_id;
	r->channels = 2;
	r->source_rate = 8000;
	r->size = 1000 * num + 7;
	r->ingested_ms = start_ms + 120000;
}

/* Collectors for the listing callbacks. */
struct ints {
	int64_t v[64];
	int n;
	int stop_after; /* return 42 after this many; 0: never */
};

static int collect(struct ints *s, int64_t v)
{
	if (s->n < 64)
		s->v[s->n++] = v;
	return s->stop_after && s->n >= s->stop_after ? 42 : 0;
}

static int day_cb(void *ctx, int32_t day)
{
	return collect(ctx, day);
}

static int id_cb(void *ctx, uint32_t id)
{
	return collect(ctx, id);
}

static int call_cb(void *ctx, const struct call_record *r)
{
	return collect(ctx, (int64_t)r->num);
}

static void test_create_open(void)
{
	struct catalog *c = fresh(), *ro = NULL;
	unsigned char got[KEYS_CHECK_LEN];
	struct stat sb;
	int64_t v = -1;

	CHECK_INT(catalog_key_check(c, got), 0);
	CHECK(memcmp(got, check_value, sizeof got) == 0);
	CHECK_INT(catalog_directory_version(c, &v), 0);
	CHECK_INT(v, 0);
	/* Owner-only file: it holds wrapped keys and the directory. */
	CHECK_INT(stat(dbpath, &sb), 0);
	CHECK_INT(sb.st_mode & 0777, 0600);
	/* Never recreated over an existing vault. */
	CHECK_INT(catalog_create(dbpath, ring), EEXIST);
	CHECK_INT(catalog_team_add(c, "north"), 0);
	catalog_close(c);

	/* Reopen: data persisted; read-only connections can read but not
	 * write. */
	CHECK_INT(catalog_open_keyed(dbpath, 0, ring, &c), 0);
	CHECK_INT(catalog_team_exists(c, "north"), 0);
	CHECK_INT(catalog_open_keyed(dbpath, CATALOG_READONLY, ring, &ro), 0);
	CHECK_INT(catalog_team_exists(ro, "north"), 0);
	CHECK_INT(catalog_key_check(ro, got), 0);
	CHECK(memcmp(got, check_value, sizeof got) == 0);
	CHECK(catalog_team_add(ro, "south") != 0);
	CHECK_INT(catalog_team_exists(c, "south"), ENOENT);
	catalog_close(ro);
	ro = NULL;
	/* Read-only with no other connection open (no -wal, no -shm). */
	catalog_close(c);
	c = NULL;
	CHECK_INT(catalog_open_keyed(dbpath, CATALOG_READONLY, ring, &ro), 0);
	CHECK_INT(catalog_team_exists(ro, "north"), 0);
	cleanup(ro);
}

static void test_open_refuses(void)
{
	struct catalog *c = fresh(), *x = (struct catalog *)&x;
	char path[160];
	int fd;

	/* Missing: ENOENT and nothing created. */
	snprintf(path, sizeof path, "%s/missing.db", tmpdir);
	CHECK_INT(catalog_open_keyed(path, 0, ring, &x), ENOENT);
	CHECK(x == NULL);
	CHECK(access(path, F_OK) == -1);

	/* Not an SQLite file at all. */
	snprintf(path, sizeof path, "%s/junk.db", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, "this is not a database, just some text bytes....",
		    48) == 48);
	for (int i = 0; i < 100; i++)
		CHECK(write(fd, "0123456789abcdef0123456789abcdef", 32) == 32);
	close(fd);
	CHECK_INT(catalog_open_keyed(path, 0, ring, &x), EINVAL);
	CHECK(x == NULL);
	unlink(path);

	/* An SQLite database of another application. */
	snprintf(path, sizeof path, "%s/other.db", tmpdir);
	{
		char cmd[256];

		snprintf(cmd, sizeof cmd,
			 "sqlite3 '%s' 'CREATE TABLE t(x)' 2>/dev/null", path);
		if (system(cmd) == 0) {
			CHECK_INT(catalog_open_keyed(path, 0, ring, &x), EINVAL);
			CHECK(x == NULL);
		}
		unlink(path);
	}

	/* A catalog from a newer callvault. */
	catalog_close(c);
	c = NULL;
	{
		char cmd[256];

		snprintf(cmd, sizeof cmd,
			 "sqlite3 '%s' 'PRAGMA user_version = 99' >/dev/null",
			 dbpath);
		CHECK_INT(system(cmd), 0);
		CHECK_INT(catalog_open_keyed(dbpath, 0, ring, &x), EINVAL);
		CHECK(x == NULL);
	}
	cleanup(c);
}

struct team_row {
	char names[8][CATALOG_TEAM_LEN];
	int members[8];
	int n;
};

static int team_cb(void *ctx, const char *name, int members)
{
	struct team_row *t = ctx;

	if (t->n < 8) {
		snprintf(t->names[t->n], CATALOG_TEAM_LEN, "%s", name);
		t->members[t->n++] = members;
	}
	return 0;
}

static void test_teams(void)
{
	struct catalog *c = fresh();
	struct catalog_user u;
	struct team_row t = { 0 };

	CHECK_INT(catalog_team_add(c, "south"), 0);
	CHECK_INT(catalog_team_add(c, "north"), 0);
	CHECK_INT(catalog_team_add(c, "north"), EEXIST);
	CHECK_INT(catalog_team_add(c, ""), EINVAL);
	CHECK_INT(catalog_team_exists(c, "north"), 0);
	CHECK_INT(catalog_team_exists(c, "west"), ENOENT);
	make_user(&u, "aino", 1001, ROLE_AGENT, "north");
	CHECK_INT(catalog_user_add(c, &u), 0);
	make_user(&u, "bo", 1002, ROLE_AGENT, "north");
	CHECK_INT(catalog_user_add(c, &u), 0);
	make_user(&u, "cy", 1003, ROLE_AGENT, "south");
	CHECK_INT(catalog_user_add(c, &u), 0);

	CHECK_INT(catalog_team_list(c, team_cb, &t), 0);
	CHECK_INT(t.n, 2);
	CHECK_STR(t.names[0], "north");
	CHECK_INT(t.members[0], 2);
	CHECK_STR(t.names[1], "south");
	CHECK_INT(t.members[1], 1);
	cleanup(c);
}

static void test_users(void)
{
	struct catalog *c = fresh();
	struct catalog_user u, got;

	CHECK_INT(catalog_team_add(c, "north"), 0);
	CHECK_INT(catalog_team_add(c, "south"), 0);
	make_user(&u, "aino.virtanen", 1001, ROLE_AGENT, "north");
	u.trained_until = 20000;
	CHECK_INT(catalog_user_add(c, &u), 0);

	CHECK_INT(catalog_user_get(c, "aino.virtanen", &got), 0);
	CHECK_STR(got.login, "aino.virtanen");
	CHECK_INT(got.uid, 1001);
	CHECK_STR(got.name, "Name of aino.virtanen");
	CHECK_INT(got.role, ROLE_AGENT);
	CHECK_STR(got.team, "north");
	CHECK_INT(got.trained_until, 20000);
	CHECK(got.agent_id >= 1);
	CHECK_INT(got.nsupervises, 0);

	memset(&got, 0, sizeof got);
	CHECK_INT(catalog_user_by_uid(c, 1001, &got), 0);
	CHECK_STR(got.login, "aino.virtanen");
	CHECK_INT(catalog_user_by_uid(c, 4242, &got), ENOENT);
	CHECK_INT(catalog_user_get(c, "nobody", &got), ENOENT);

	/* Duplicates and bad references. */
	make_user(&u, "aino.virtanen", 1005, ROLE_AGENT, "north");
	CHECK_INT(catalog_user_add(c, &u), EEXIST);
	make_user(&u, "other", 1001, ROLE_AGENT, "north");
	CHECK_INT(catalog_user_add(c, &u), EEXIST);
	make_user(&u, "other", 1006, ROLE_AGENT, "nowhere");
	CHECK_INT(catalog_user_add(c, &u), ENOENT);
	/* Nothing of the refused adds is left behind. */
	CHECK_INT(catalog_user_get(c, "other", &got), ENOENT);
	make_user(&u, "_bad", 1007, ROLE_AGENT, "");
	CHECK_INT(catalog_user_add(c, &u), EINVAL);
	make_user(&u, "badrole", 1007, ROLE_BACKUP, "");
	CHECK_INT(catalog_user_add(c, &u), EINVAL);

	/* An agent without a team is allowed at this layer. */
	make_user(&u, "loner", 1008, ROLE_AGENT, "");
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_user_get(c, "loner", &got), 0);
	CHECK_STR(got.team, "");
	CHECK_INT(got.trained_until, -1);

	/* Update replaces every field but the agent id. */
	CHECK_INT(catalog_user_get(c, "aino.virtanen", &got), 0);
	{
		uint32_t id = got.agent_id;

		make_user(&u, "aino.virtanen", 2001, ROLE_ADMIN, "south");
		snprintf(u.name, sizeof u.name, "Aino Korhonen");
		u.trained_until = -1;
		u.agent_id = 999;
		CHECK_INT(catalog_user_update(c, &u), 0);
		CHECK_INT(catalog_user_get(c, "aino.virtanen", &got), 0);
		CHECK_INT(got.uid, 2001);
		CHECK_STR(got.name, "Aino Korhonen");
		CHECK_INT(got.role, ROLE_ADMIN);
		CHECK_STR(got.team, "south");
		CHECK_INT(got.trained_until, -1);
		CHECK_INT(got.agent_id, id);
	}
	CHECK_INT(catalog_user_by_uid(c, 1001, &got), ENOENT);
	make_user(&u, "ghost", 3000, ROLE_AGENT, "");
	CHECK_INT(catalog_user_update(c, &u), ENOENT);
	make_user(&u, "aino.virtanen", 1008, ROLE_ADMIN, "");
	CHECK_INT(catalog_user_update(c, &u), EEXIST); /* loner's uid */
	make_user(&u, "aino.virtanen", 2001, ROLE_ADMIN, "nowhere");
	CHECK_INT(catalog_user_update(c, &u), ENOENT);
	CHECK_INT(catalog_user_get(c, "aino.virtanen", &got), 0);
	CHECK_STR(got.team, "south");

	/* Delete. */
	CHECK_INT(catalog_user_del(c, "aino.virtanen"), 0);
	CHECK_INT(catalog_user_get(c, "aino.virtanen", &got), ENOENT);
	CHECK_INT(catalog_user_by_uid(c, 2001, &got), ENOENT);
	CHECK_INT(catalog_user_del(c, "aino.virtanen"), ENOENT);
	cleanup(c);
}

static void test_agent_ids(void)
{
	struct catalog *c = fresh();
	struct catalog_user u, got;
	uint32_t a = 0, b = 0, again = 0, uid = 0;
	char login[CALL_LOGIN_LEN];

	make_user(&u, "aino", 1001, ROLE_AGENT, "");
	CHECK_INT(catalog_user_add(c, &u), 0);
	make_user(&u, "bo", 1002, ROLE_SUPERVISOR, "");
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_agent_id(c, "aino", &a), 0);
	CHECK_INT(catalog_agent_id(c, "bo", &b), 0);
	CHECK(a >= 1 && b >= 1);
	CHECK(a != b);
	CHECK_INT(catalog_agent_id(c, "nobody", &again), ENOENT);
	CHECK_INT(catalog_agent_login(c, b, login), 0);
	CHECK_STR(login, "bo");
	CHECK_INT(catalog_agent_login(c, 9999, login), ENOENT);
	/* The owner of an agent's directories. */
	CHECK_INT(catalog_agent_uid(c, b, &uid), 0);
	CHECK_INT(uid, 1002);
	CHECK_INT(catalog_agent_uid(c, a, &uid), 0);
	CHECK_INT(uid, 1001);
	CHECK_INT(catalog_agent_uid(c, 9999, &uid), ENOENT);

	/* A deleted login keeps its id, and gets it back when re-added. */
	CHECK_INT(catalog_user_del(c, "aino"), 0);
	CHECK_INT(catalog_agent_uid(c, a, &uid), ENOENT);
	CHECK_INT(catalog_agent_id(c, "aino", &again), 0);
	CHECK_INT(again, a);
	CHECK_INT(catalog_agent_login(c, a, login), 0);
	CHECK_STR(login, "aino");
	make_user(&u, "cy", 1003, ROLE_AGENT, "");
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_user_get(c, "cy", &got), 0);
	CHECK(got.agent_id != a && got.agent_id != b);
	make_user(&u, "aino", 1009, ROLE_AGENT, "");
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_user_get(c, "aino", &got), 0);
	CHECK_INT(got.agent_id, a);
	CHECK_INT(catalog_agent_uid(c, a, &uid), 0);
	CHECK_INT(uid, 1009); /* the new uid */
	cleanup(c);
}

static int user_count_cb(void *ctx, const struct catalog_user *u)
{
	struct ints *s = ctx;

	return collect(s, u->uid);
}

static void test_supervises(void)
{
	struct catalog *c = fresh();
	struct catalog_user u, got;
	struct ints ids = { 0 }, uids = { 0 };
	uint32_t aino = 0, bo = 0;

	CHECK_INT(catalog_team_add(c, "north"), 0);
	CHECK_INT(catalog_team_add(c, "south"), 0);
	CHECK_INT(catalog_team_add(c, "east"), 0);
	make_user(&u, "sara", 1500, ROLE_SUPERVISOR, "");
	snprintf(u.supervises[0], CATALOG_TEAM_LEN, "south");
	snprintf(u.supervises[1], CATALOG_TEAM_LEN, "north");
	u.nsupervises = 2;
	u.trained_until = 20400;
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_user_get(c, "sara", &got), 0);
	CHECK_INT(got.nsupervises, 2);
	CHECK_STR(got.supervises[0], "north");
	CHECK_STR(got.supervises[1], "south");

	/* Update replaces the set; a team named twice counts once. */
	snprintf(u.supervises[0], CATALOG_TEAM_LEN, "east");
	snprintf(u.supervises[1], CATALOG_TEAM_LEN, "east");
	u.nsupervises = 2;
	CHECK_INT(catalog_user_update(c, &u), 0);
	CHECK_INT(catalog_user_get(c, "sara", &got), 0);
	CHECK_INT(got.nsupervises, 1);
	CHECK_STR(got.supervises[0], "east");

	/* Unknown supervised team: refused, previous set kept. */
	snprintf(u.supervises[1], CATALOG_TEAM_LEN, "nowhere");
	u.nsupervises = 2;
	CHECK_INT(catalog_user_update(c, &u), ENOENT);
	CHECK_INT(catalog_user_get(c, "sara", &got), 0);
	CHECK_INT(got.nsupervises, 1);
	make_user(&u, "tom", 1501, ROLE_SUPERVISOR, "");
	snprintf(u.supervises[0], CATALOG_TEAM_LEN, "nowhere");
	u.nsupervises = 1;
	CHECK_INT(catalog_user_add(c, &u), ENOENT);
	CHECK_INT(catalog_user_get(c, "tom", &got), ENOENT);

	/* Members of a team. */
	make_user(&u, "aino", 1001, ROLE_AGENT, "east");
	CHECK_INT(catalog_user_add(c, &u), 0);
	make_user(&u, "bo", 1002, ROLE_AGENT, "east");
	CHECK_INT(catalog_user_add(c, &u), 0);
	make_user(&u, "cy", 1003, ROLE_AGENT, "north");
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_agent_id(c, "aino", &aino), 0);
	CHECK_INT(catalog_agent_id(c, "bo", &bo), 0);
	CHECK_INT(catalog_team_agents(c, "east", id_cb, &ids), 0);
	CHECK_INT(ids.n, 2);
	CHECK_INT(ids.v[0], aino < bo ? aino : bo);
	CHECK_INT(ids.v[1], aino < bo ? bo : aino);

	CHECK_INT(catalog_user_list(c, user_count_cb, &uids), 0);
	CHECK_INT(uids.n, 4);
	CHECK_INT(uids.v[0], 1001); /* by login: aino bo cy sara */
	CHECK_INT(uids.v[3], 1500);

	/* Deleting a supervisor removes its set (no dangling rows that a
	 * re-added login would inherit). */
	CHECK_INT(catalog_user_del(c, "sara"), 0);
	make_user(&u, "sara", 1500, ROLE_SUPERVISOR, "");
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_user_get(c, "sara", &got), 0);
	CHECK_INT(got.nsupervises, 0);
	cleanup(c);
}

struct grant_rows {
	int n;
	enum role role[8];
	uint32_t gid[8];
};

static int grant_cb(void *ctx, enum role role, uint32_t gid)
{
	struct grant_rows *g = ctx;

	if (g->n < 8) {
		g->role[g->n] = role;
		g->gid[g->n++] = gid;
	}
	return 0;
}

static void test_grants(void)
{
	struct catalog *c = fresh();
	uint32_t gids[] = { 100, 200, 300 };
	unsigned roles = 12345;
	struct grant_rows g = { 0 };

	CHECK_INT(catalog_grant_roles(c, gids, 0, &roles), 0);
	CHECK_INT(roles, 0);
	CHECK_INT(catalog_grant_add(c, ROLE_BACKUP, 100), 0);
	CHECK_INT(catalog_grant_add(c, ROLE_RECORDER, 200), 0);
	CHECK_INT(catalog_grant_add(c, ROLE_ADMIN, 200), 0);
	CHECK_INT(catalog_grant_add(c, ROLE_ADMIN, 200), EEXIST);
	CHECK_INT(catalog_grant_add(c, (enum role)3, 200), EINVAL);
	CHECK_INT(catalog_grant_roles(c, gids, 3, &roles), 0);
	CHECK_INT(roles, ROLE_BACKUP | ROLE_RECORDER | ROLE_ADMIN);
	CHECK_INT(catalog_grant_roles(c, gids + 2, 1, &roles), 0);
	CHECK_INT(roles, 0);
	CHECK_INT(catalog_grant_roles(c, gids, 1, &roles), 0);
	CHECK_INT(roles, ROLE_BACKUP);

	CHECK_INT(catalog_grant_list(c, grant_cb, &g), 0);
	CHECK_INT(g.n, 3);

	CHECK_INT(catalog_grant_del(c, ROLE_ADMIN, 200), 0);
	CHECK_INT(catalog_grant_del(c, ROLE_ADMIN, 200), ENOENT);
	CHECK_INT(catalog_grant_roles(c, gids, 3, &roles), 0);
	CHECK_INT(roles, ROLE_BACKUP | ROLE_RECORDER);
	cleanup(c);
}

static void test_roles(void)
{
	CHECK_STR(role_name(ROLE_AGENT), "agent");
	CHECK_STR(role_name(ROLE_SUPERVISOR), "supervisor");
	CHECK_STR(role_name(ROLE_ADMIN), "admin");
	CHECK_STR(role_name(ROLE_BACKUP), "backup");
	CHECK_STR(role_name(ROLE_RECORDER), "recorder");
	CHECK(role_name((enum role)3) == NULL);
	CHECK_INT(role_parse("supervisor"), ROLE_SUPERVISOR);
	CHECK_INT(role_parse("recorder"), ROLE_RECORDER);
	CHECK_INT(role_parse("root"), 0);
	CHECK_INT(role_parse("Admin"), 0);
}

static struct keys_node node_of(uint64_t lo, int depth, unsigned char fill)
{
	struct keys_node n = { .lo = lo, .depth = depth };

	memset(n.wrapped, fill, sizeof n.wrapped);
	return n;
}

static void test_epochs(void)
{
	struct catalog *c = fresh();
	struct keys_node r1 = node_of(0, 0, 0x5a), r2 = node_of(0, 0, 0xc3);
	struct keys_node got, halves[2];
	int needed = 1;

	CHECK_INT(catalog_epoch_node(c, 20419, 5, &got), ENOENT);
	CHECK_INT(catalog_epoch_ensure(c, 20419, &r1), 0);
	CHECK_INT(catalog_epoch_node(c, 20419, 5, &got), 0);
	CHECK(memcmp(got.wrapped, r1.wrapped, sizeof got.wrapped) == 0);
	/* A second writer for the same day keeps the first root. */
	CHECK_INT(catalog_epoch_ensure(c, 20419, &r2), 0);
	CHECK_INT(catalog_epoch_node(c, 20419, 5, &got), 0);
	CHECK(memcmp(got.wrapped, r1.wrapped, sizeof got.wrapped) == 0);
	CHECK_INT(catalog_epoch_ensure(c, 20420, &r2), 0);
	CHECK_INT(catalog_epoch_node(c, 20420, 5, &got), 0);
	CHECK(memcmp(got.wrapped, r2.wrapped, sizeof got.wrapped) == 0);

	/* Replace the root by its right half only: numbers in the left
	 * half have no key any more. */
	halves[0] = node_of(UINT64_C(1) << 47, 1, 0x11);
	CHECK_INT(catalog_epoch_replace(c, 20419, &r1, halves, 1), 0);
	CHECK_INT(catalog_epoch_node(c, 20419, 5, &got), ENOENT);
	CHECK_INT(catalog_epoch_node(c, 20419, (UINT64_C(1) << 47) + 5, &got),
		  0);
	CHECK_INT(got.depth, 1);
	/* Replacing a node that is not there changes nothing. */
	CHECK_INT(catalog_epoch_replace(c, 20419, &r1, halves, 1), ENOENT);

	CHECK_INT(catalog_day_needs_epoch(c, 20419, &needed), 0);
	CHECK_INT(needed, 0);
	CHECK_INT(catalog_epoch_destroy(c, 20419), 0);
	CHECK_INT(catalog_epoch_node(c, 20419, (UINT64_C(1) << 47) + 5, &got),
		  ENOENT);
	CHECK_INT(catalog_epoch_destroy(c, 20419), ENOENT);
	cleanup(c);
}

/* What the key store keeps per call goes with the call's row; the
 * tombstone stays for ever. */
static void test_key_store_rows(void)
{
	struct catalog *c = fresh();
	struct catalog_restriction r = { .num = 0 }, back;
	unsigned char w[KEYS_WRAPPED_LEN], got[KEYS_WRAPPED_LEN];
	struct call_record rec, out;
	int32_t day = 0;
	int needed = 0;
	uint64_t num = 0;

	CHECK_INT(catalog_call_num_next(c, &num), 0);
	make_call(&rec, num, 20419, 1, 1000);
	CHECK_INT(catalog_call_insert(c, &rec), 0);
	CHECK_INT(catalog_day_needs_epoch(c, 20419, &needed), 0);
	CHECK_INT(needed, 1);

	memset(w, 0x77, sizeof w);
	CHECK_INT(catalog_call_key_get(c, num, &day, got), ENOENT);
	CHECK_INT(catalog_call_key_put(c, num, 20419, w), 0);
	CHECK_INT(catalog_call_key_get(c, num, &day, got), 0);
	CHECK_INT(day, 20419);
	CHECK(memcmp(got, w, sizeof w) == 0);
	/* A call with its own key no longer needs its day's tree. */
	CHECK_INT(catalog_day_needs_epoch(c, 20419, &needed), 0);
	CHECK_INT(needed, 0);

	CHECK_INT(catalog_call_get(c, num, &out), 0);
	CHECK_INT(out.restricted, 0);
	r.num = num;
	r.since_ms = 1;
	snprintf(r.by, sizeof r.by, "admin");
	snprintf(r.reason, sizeof r.reason, "court order 12/2026");
	CHECK_INT(catalog_restriction_put(c, &r), 0);
	/* The key store's row is the record; the call row decides. */
	CHECK_INT(catalog_call_get(c, num, &out), 0);
	CHECK_INT(out.restricted, 0);
	CHECK_INT(catalog_call_restrict(c, num, CALL_UNTIL_LIFTED), 0);
	CHECK_INT(catalog_call_get(c, num, &out), 0);
	CHECK_INT(out.restricted, 1);
	CHECK(out.restricted_until == CALL_UNTIL_LIFTED);
	CHECK_INT(catalog_restriction_get(c, num, &back), 0);
	CHECK_STR(back.reason, "court order 12/2026");
	CHECK(back.until_ms == 0);
	/* A restriction whose end has passed no longer holds. */
	r.until_ms = 1000;
	CHECK_INT(catalog_restriction_put(c, &r), 0);
	CHECK_INT(catalog_call_restrict(c, num, 1000), 0);
	CHECK_INT(catalog_call_get(c, num, &out), 0);
	CHECK_INT(out.restricted, 0);
	CHECK_INT(catalog_call_restrict(c, num + 1000, 0), ENOENT);
	CHECK_INT(catalog_restriction_del(c, num), 0);
	CHECK_INT(catalog_restriction_del(c, num), ENOENT);

	CHECK_INT(catalog_note_add(c, num, 5, "admin", "caller's name is Ann"),
		  0);
	CHECK_INT(catalog_note_add(c, num, 6, "admin", ""), EINVAL);
	CHECK_INT(catalog_restriction_put(c, &r), 0);

	CHECK_INT(catalog_tombstoned(c, num), ENOENT);
	CHECK_INT(catalog_tombstone_put(c, num, 20419, 7), 0);
	CHECK_INT(catalog_tombstoned(c, num), 0);
	CHECK_INT(catalog_call_delete(c, num), 0);
	CHECK_INT(catalog_call_key_get(c, num, &day, got), ENOENT);
	CHECK_INT(catalog_restriction_get(c, num, &back), ENOENT);
	CHECK_INT(catalog_tombstoned(c, num), 0);
	cleanup(c);
}

static void test_call_numbers(void)
{
	struct catalog *c = fresh();
	uint64_t a = 0, b = 0, n = 0;

	CHECK_INT(catalog_call_num_next(c, &a), 0);
	CHECK_INT(a, 1);
	CHECK_INT(catalog_call_num_next(c, &b), 0);
	CHECK(b > a);
	CHECK_INT(catalog_call_num_seen(c, 500), 0);
	CHECK_INT(catalog_call_num_next(c, &n), 0);
	CHECK_INT(n, 501);
	/* Never goes back. */
	CHECK_INT(catalog_call_num_seen(c, 10), 0);
	CHECK_INT(catalog_call_num_next(c, &n), 0);
	CHECK_INT(n, 502);
	/* Inside a caller's transaction; a rollback gives the number
	 * back, a commit keeps it. */
	CHECK_INT(catalog_begin(c), 0);
	CHECK_INT(catalog_begin(c), EINVAL);
	CHECK_INT(catalog_call_num_next(c, &n), 0);
	CHECK_INT(n, 503);
	catalog_rollback(c);
	CHECK_INT(catalog_call_num_next(c, &n), 0);
	CHECK_INT(n, 503);
	catalog_close(c);
	CHECK_INT(catalog_open_keyed(dbpath, 0, ring, &c), 0);
	CHECK_INT(catalog_call_num_next(c, &n), 0);
	CHECK_INT(n, 504);
	cleanup(c);
}

static void test_call_roundtrip(void)
{
	struct catalog *c = fresh();
	struct call_record r, got;
	uint64_t calls = 9, bytes = 9;

	CHECK_INT(catalog_counts(c, &calls, &bytes), 0);
	CHECK_INT(calls, 0);
	CHECK_INT(bytes, 0);
	make_call(&r, 184, 20419, 3, 1795771815000LL);
	r.restricted = 0; /* the key store decides, not the row */
	snprintf(r.agent_name, sizeof r.agent_name, "Aino Virtanen \xc3\xa4");
	r.customer_sealed[0] = 0; /* embedded zero bytes survive */
	r.number_hash[5] = 0;
	CHECK_INT(catalog_call_insert(c, &r), 0);
	CHECK_INT(catalog_call_insert(c, &r), EEXIST);
	memset(&got, 0xee, sizeof got);
	CHECK_INT(catalog_call_get(c, 184, &got), 0);
	CHECK_INT(got.num, 184);
	CHECK_INT(got.day, 20419);
	CHECK_INT(got.start_ms, 1795771815000LL);
	CHECK_INT(got.end_ms, r.end_ms);
	CHECK_INT(got.duration_ms, r.duration_ms);
	CHECK_STR(got.direction, "inbound");
	CHECK_STR(got.service_number, "+35860094320");
	CHECK_STR(got.customer_masked, "+358401234***");
	CHECK(memcmp(got.customer_sealed, r.customer_sealed,
		     sizeof r.customer_sealed) == 0);
	CHECK(memcmp(got.number_hash, r.number_hash, sizeof r.number_hash) ==
	      0);
	CHECK_INT(got.agent_id, 3);
	CHECK_STR(got.agent, "agent3");
	CHECK_STR(got.agent_name, "Aino Virtanen \xc3\xa4");
	CHECK_INT(got.agent_uid, 1003);
	CHECK_INT(got.channels, 2);
	CHECK_INT(got.source_rate, 8000);
	CHECK_INT(got.size, 184007);
	CHECK_INT(got.ingested_ms, r.ingested_ms);
	CHECK_INT(got.restricted, 0);
	/* Whole-struct equality: no field is lost or left stale (both
	 * structs were zeroed before being filled). */
	CHECK(memcmp(&got, &r, sizeof r) == 0);
	CHECK_INT(catalog_call_get(c, 185, &got), ENOENT);
	r.num = 0;
	CHECK_INT(catalog_call_insert(c, &r), EINVAL);

	make_call(&r, 185, 20419, 0, 1795771816000LL);
	r.agent[0] = '\0';
	CHECK_INT(catalog_call_insert(c, &r), 0);
	CHECK_INT(catalog_call_get(c, 185, &got), 0);
	CHECK_INT(got.restricted, 0);
	CHECK_INT(got.agent_id, 0);
	CHECK_STR(got.agent, "");
	CHECK_INT(catalog_counts(c, &calls, &bytes), 0);
	CHECK_INT(calls, 2);
	CHECK_INT(bytes, 184007 + 185007);
	cleanup(c);
}

static void test_listings(void)
{
	struct catalog *c = fresh();
	struct call_record r;
	struct ints s;
	unsigned char hash[CALL_NUMBER_HASH_LEN];
	/* num, day, agent, start (s); inserted out of order on purpose */
	static const struct {
		uint64_t num;
		int32_t day;
		uint32_t agent;
		int64_t start;
	} rows[] = {
		{ 10, 20420, 5, 300 }, { 11, 20419, 7, 100 },
		{ 12, 20420, 2, 200 }, { 13, 20420, 5, 100 },
		{ 14, 20418, 5, 50 },  { 15, 20420, 5, 200 },
		{ 16, 20420, 0, 250 }, { 17, 20420, 5, 200 },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		make_call(&r, rows[i].num, rows[i].day, rows[i].agent,
			  rows[i].start * 1000);
		CHECK_INT(catalog_call_insert(c, &r), 0);
	}

	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_days(c, day_cb, &s), 0);
	CHECK_INT(s.n, 3);
	CHECK_INT(s.v[0], 20418);
	CHECK_INT(s.v[1], 20419);
	CHECK_INT(s.v[2], 20420);

	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_day_agents(c, 20420, id_cb, &s), 0);
	CHECK_INT(s.n, 3);
	CHECK_INT(s.v[0], 0);
	CHECK_INT(s.v[1], 2);
	CHECK_INT(s.v[2], 5);
	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_day_agents(c, 20000, id_cb, &s), 0);
	CHECK_INT(s.n, 0);

	/* By start time; equal starts by call number. */
	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_calls_of(c, 20420, 5, call_cb, &s), 0);
	CHECK_INT(s.n, 4);
	CHECK_INT(s.v[0], 13);
	CHECK_INT(s.v[1], 15);
	CHECK_INT(s.v[2], 17);
	CHECK_INT(s.v[3], 10);

	/* A callback stops the walk with its value. */
	memset(&s, 0, sizeof s);
	s.stop_after = 2;
	CHECK_INT(catalog_days(c, day_cb, &s), 42);
	CHECK_INT(s.n, 2);
	memset(&s, 0, sizeof s);
	s.stop_after = 1;
	CHECK_INT(catalog_calls_of(c, 20420, 5, call_cb, &s), 42);
	CHECK_INT(s.n, 1);
	memset(&s, 0, sizeof s);
	s.stop_after = 1;
	CHECK_INT(catalog_day_agents(c, 20420, id_cb, &s), 42);

	/* Admin listing. */
	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_calls_list(c, -1, NULL, call_cb, &s), 0);
	CHECK_INT(s.n, 8);
	CHECK_INT(s.v[0], 14);
	CHECK_INT(s.v[7], 10);
	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_calls_list(c, 20420, NULL, call_cb, &s), 0);
	CHECK_INT(s.n, 6);
	CHECK_INT(s.v[0], 13);
	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_calls_list(c, -1, "agent5", call_cb, &s), 0);
	CHECK_INT(s.n, 5);
	CHECK_INT(s.v[0], 14);
	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_calls_list(c, 20420, "agent5", call_cb, &s), 0);
	CHECK_INT(s.n, 4);
	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_calls_list(c, 20419, "agent5", call_cb, &s), 0);
	CHECK_INT(s.n, 0);

	/* By number hash: make_call() gives nums with equal num % 3 the
	 * same hash: 10, 13, 16 (num % 3 == 1). */
	make_call(&r, 10, 0, 0, 0);
	memcpy(hash, r.number_hash, sizeof hash);
	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_calls_by_number(c, hash, call_cb, &s), 0);
	CHECK_INT(s.n, 3);
	CHECK_INT(s.v[0], 13);
	CHECK_INT(s.v[1], 16);
	CHECK_INT(s.v[2], 10);
	memset(hash, 0xff, sizeof hash);
	memset(&s, 0, sizeof s);
	CHECK_INT(catalog_calls_by_number(c, hash, call_cb, &s), 0);
	CHECK_INT(s.n, 0);
	cleanup(c);
}

/* A callback that re-enters the catalog with the same query must not
 * disturb the outer walk. */
struct nest {
	struct catalog *c;
	int outer, inner;
};

static int nest_inner_cb(void *ctx, const struct call_record *r)
{
	struct nest *n = ctx;

	(void)r;
	n->inner++;
	return 0;
}

static int nest_outer_cb(void *ctx, const struct call_record *r)
{
	struct nest *n = ctx;
	struct call_record got;

	if (++n->outer > 3)
		return 1; /* the outer walk restarted: stop, and fail */
	if (catalog_call_get(n->c, r->num, &got) != 0 || got.num != r->num)
		return 1;
	return catalog_calls_list(n->c, -1, NULL, nest_inner_cb, n);
}

static void test_reentrant(void)
{
	struct catalog *c = fresh();
	struct call_record r;
	struct nest n = { c, 0, 0 };

	for (uint64_t i = 1; i <= 3; i++) {
		make_call(&r, i, 20419, 1, (int64_t)i * 1000);
		CHECK_INT(catalog_call_insert(c, &r), 0);
	}
	CHECK_INT(catalog_calls_list(c, -1, NULL, nest_outer_cb, &n), 0);
	CHECK_INT(n.outer, 3);
	CHECK_INT(n.inner, 9);
	cleanup(c);
}

static void test_directory_version(void)
{
	struct catalog *c = fresh();
	struct catalog_user u;
	struct call_record r;
	uint64_t num;
	struct keys_node k = { 0 };
	int64_t v0 = 0, v = 0;

#define BUMPED()                                                         \
	do {                                                             \
		CHECK_INT(catalog_directory_version(c, &v), 0);          \
		CHECK(v > v0);                                           \
		v0 = v;                                                  \
	} while (0)
#define SAME()                                                           \
	do {                                                             \
		CHECK_INT(catalog_directory_version(c, &v), 0);          \
		CHECK_INT(v, v0);                                        \
	} while (0)

	CHECK_INT(catalog_directory_version(c, &v0), 0);
	CHECK_INT(catalog_team_add(c, "north"), 0);
	BUMPED();
	CHECK_INT(catalog_team_add(c, "north"), EEXIST);
	SAME();
	make_user(&u, "aino", 1001, ROLE_AGENT, "north");
	CHECK_INT(catalog_user_add(c, &u), 0);
	BUMPED();
	u.uid = 1002;
	CHECK_INT(catalog_user_update(c, &u), 0);
	BUMPED();
	CHECK_INT(catalog_grant_add(c, ROLE_BACKUP, 34), 0);
	BUMPED();
	CHECK_INT(catalog_grant_del(c, ROLE_BACKUP, 34), 0);
	BUMPED();
	CHECK_INT(catalog_user_del(c, "aino"), 0);
	BUMPED();
	/* Not directory changes. */
	CHECK_INT(catalog_call_num_next(c, &num), 0);
	make_call(&r, num, 20419, 1, 1000);
	CHECK_INT(catalog_call_insert(c, &r), 0);
	CHECK_INT(catalog_epoch_ensure(c, 20419, &k), 0);
	SAME();
	/* A rolled-back change leaves no trace. */
	CHECK_INT(catalog_begin(c), 0);
	CHECK_INT(catalog_team_add(c, "south"), 0);
	catalog_rollback(c);
	SAME();
	CHECK_INT(catalog_team_exists(c, "south"), ENOENT);
#undef BUMPED
#undef SAME
	cleanup(c);
}

/* One connection holds a write transaction; a second reads meanwhile (WAL:
 * readers are not blocked, and see the last committed state), then sees
 * the commit. A writer on the second connection waits for the busy timeout
 * and gets EBUSY, not EIO. */
static void test_two_connections(void)
{
	struct catalog *w = fresh(), *r2 = NULL;
	struct catalog_user u, got;
	struct call_record rec;
	uint64_t n1 = 0, n2 = 0;
	int64_t v = 0;

	CHECK_INT(catalog_open_keyed(dbpath, 0, ring, &r2), 0);
	CHECK_INT(catalog_team_add(w, "north"), 0);
	CHECK_INT(catalog_team_exists(r2, "north"), 0);

	CHECK_INT(catalog_begin(w), 0);
	make_user(&u, "aino", 1001, ROLE_AGENT, "north");
	CHECK_INT(catalog_user_add(w, &u), 0);
	CHECK_INT(catalog_call_num_next(w, &n1), 0);
	make_call(&rec, n1, 20419, 1, 5000);
	CHECK_INT(catalog_call_insert(w, &rec), 0);
	/* The reader is not blocked and does not see uncommitted rows. */
	CHECK_INT(catalog_user_get(r2, "aino", &got), ENOENT);
	CHECK_INT(catalog_call_get(r2, n1, &rec), ENOENT);
	CHECK_INT(catalog_directory_version(r2, &v), 0);
	CHECK_INT(catalog_commit(w), 0);
	CHECK_INT(catalog_user_get(r2, "aino", &got), 0);
	CHECK_INT(catalog_call_get(r2, n1, &rec), 0);
	CHECK_INT(catalog_call_num_next(r2, &n2), 0);
	CHECK(n2 > n1);
	cleanup(w);
	catalog_close(r2);
}

/* Kept apart: it waits for the busy timeout. */
static void test_busy_writer(void)
{
	struct catalog *w = fresh(), *w2 = NULL;
	uint64_t n;

	CHECK_INT(catalog_open_keyed(dbpath, 0, ring, &w2), 0);
	CHECK_INT(catalog_begin(w), 0);
	CHECK_INT(catalog_call_num_next(w, &n), 0);
	CHECK_INT(catalog_team_add(w2, "blocked"), EBUSY);
	CHECK_INT(catalog_commit(w), 0);
	CHECK_INT(catalog_team_add(w2, "blocked"), 0);
	catalog_close(w2);
	cleanup(w);
}

/* --- row authentication ------------------------------------------------ */

/* Runs SQL with the sqlite3 tool on the catalog (or, with `ks`, the key
 * store): what someone with write access to the vault directory can do. */
static void tamper(int ks, const char *sql)
{
	char cmd[1024];

	snprintf(cmd, sizeof cmd, "sqlite3 '%s/%s' \"%s\" >/dev/null", tmpdir,
		 ks ? "keystore.db" : "catalog.db", sql);
	CHECK_INT(system(cmd), 0);
}

static int forged_cb(void *ctx, const char *table, const char *row)
{
	(void)table;
	(void)row;
	return collect(ctx, 0);
}

/* The directory and calls of the tamper tests: agents aino (1001, team
 * t) and eve (1002), supervisor sam of t, supervisor sid of nothing,
 * admin grant to gid 5000; calls 1 (aino's) and 2 (aino's, restricted),
 * day 20419. */
static struct catalog *tamper_fixture(uint32_t *aino, uint32_t *eve)
{
	struct catalog *c = fresh();
	struct catalog_user u;
	struct call_record rec;
	uint64_t num;

	CHECK_INT(catalog_team_add(c, "t"), 0);
	make_user(&u, "aino", 1001, ROLE_AGENT, "t");
	CHECK_INT(catalog_user_add(c, &u), 0);
	make_user(&u, "eve", 1002, ROLE_AGENT, "");
	CHECK_INT(catalog_user_add(c, &u), 0);
	make_user(&u, "sam", 1003, ROLE_SUPERVISOR, "");
	snprintf(u.supervises[0], sizeof u.supervises[0], "t");
	u.nsupervises = 1;
	CHECK_INT(catalog_user_add(c, &u), 0);
	make_user(&u, "sid", 1004, ROLE_SUPERVISOR, "");
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_grant_add(c, ROLE_ADMIN, 5000), 0);
	CHECK_INT(catalog_agent_id(c, "aino", aino), 0);
	CHECK_INT(catalog_agent_id(c, "eve", eve), 0);
	for (int i = 0; i < 2; i++) {
		CHECK_INT(catalog_call_num_next(c, &num), 0);
		make_call(&rec, num, 20419, *aino, 1000 + i);
		CHECK_INT(catalog_call_insert(c, &rec), 0);
	}
	CHECK_INT(catalog_call_restrict(c, 2, CALL_UNTIL_LIFTED), 0);
	return c;
}

/* Every kind of edit of a row that decides who sees what is refused, and
 * verify lists it; untouched rows still read. */
static void test_forged_rows(void)
{
	struct ints found = { .n = 0 }, bad = { .n = 0 };
	struct call_record out;
	struct catalog_user got;
	uint32_t aino = 0, eve = 0, gid = 6000;
	unsigned roles = 0;
	uint64_t checked = 0;
	int needed = 0;
	char sql[256];
	struct catalog *c = tamper_fixture(&aino, &eve);

	CHECK_INT(catalog_verify_rows(c, forged_cb, &bad, &checked), 0);
	CHECK_INT(bad.n, 0);
	CHECK(checked >= 2 + 4 + 4 + 1 + 1);

	/* A call moved to another agent: nobody is shown it. */
	snprintf(sql, sizeof sql, "UPDATE calls SET agent_id = %u,"
		 " agent = 'eve' WHERE num = 1", eve);
	tamper(0, sql);
	CHECK_INT(catalog_call_get(c, 1, &out), EBADMSG);
	CHECK_INT(catalog_calls_of(c, 20419, eve, call_cb, &found), 0);
	CHECK_INT(found.n, 0);

	/* Its start moved so that the sweep passes it by: the day's key
	 * tree is not kept for it (call 2 has no own key here either, but
	 * is forged below). */
	tamper(0, "UPDATE calls SET mac = (SELECT mac FROM calls"
		  " WHERE num = 2) WHERE num = 1");
	CHECK_INT(catalog_call_get(c, 1, &out), EBADMSG);

	/* A restriction lifted by hand, in the row or the key store. */
	tamper(1, "DELETE FROM restrictions");
	CHECK_INT(catalog_call_get(c, 2, &out), 0);
	CHECK_INT(out.restricted, 1);
	tamper(0, "UPDATE calls SET restricted_until = 0 WHERE num = 2");
	CHECK_INT(catalog_call_get(c, 2, &out), EBADMSG);
	CHECK_INT(catalog_day_needs_epoch(c, 20419, &needed), 0);
	CHECK_INT(needed, 0);

	/* A user made admin, or given another's uid. */
	tamper(0, "UPDATE users SET role = 'admin' WHERE login = 'eve'");
	CHECK_INT(catalog_user_by_uid(c, 1002, &got), EBADMSG);
	tamper(0, "UPDATE users SET uid = 1009 WHERE login = 'aino';"
		  " UPDATE users SET uid = 1001 WHERE login = 'sam'");
	CHECK_INT(catalog_user_by_uid(c, 1001, &got), EBADMSG);
	CHECK_INT(catalog_user_get(c, "aino", &got), EBADMSG);

	/* An agent id handed to another login. */
	tamper(0, "PRAGMA foreign_keys = OFF;"
		  " DELETE FROM agents WHERE login = 'eve';"
		  " UPDATE agents SET login = 'eve' WHERE login = 'aino'");
	CHECK_INT(catalog_agent_id(c, "eve", &gid), EBADMSG);
	CHECK_INT(catalog_agent_login(c, aino, sql), EBADMSG);

	/* A supervisor given a team, and a group given a role. */
	tamper(0, "INSERT INTO supervises (login, team) VALUES ('sid', 't')");
	CHECK_INT(catalog_user_get(c, "sid", &got), 0);
	CHECK_INT(got.nsupervises, 0);
	tamper(0, "INSERT INTO grants (role, gid) VALUES ('admin', 6000)");
	gid = 6000;
	CHECK_INT(catalog_grant_roles(c, &gid, 1, &roles), 0);
	CHECK_INT(roles, 0);
	gid = 5000;
	CHECK_INT(catalog_grant_roles(c, &gid, 1, &roles), 0);
	CHECK_INT(roles, ROLE_ADMIN);

	/* A planted tombstone would make the sweep erase call 1. */
	tamper(1, "INSERT INTO tombstones (num, day, erased_ms)"
		  " VALUES (1, 20419, 5)");
	CHECK_INT(catalog_tombstoned(c, 1), ENOENT);

	bad.n = 0;
	CHECK_INT(catalog_verify_rows(c, forged_cb, &bad, &checked), 0);
	/* calls 1 and 2, users aino/eve/sam, agents (1 'eve'), supervises
	 * sid, grant 6000, tombstone 1. */
	CHECK_INT(bad.n, 9);
	cleanup(c);
}

/* Without the key a connection can neither read nor write those rows. */
static void test_rows_need_key(void)
{
	struct catalog *c = fresh(), *plain = NULL;
	struct call_record rec, out;
	struct catalog_user u;
	uint64_t num = 0, checked;
	struct ints bad = { .n = 0 };

	CHECK_INT(catalog_call_num_next(c, &num), 0);
	make_call(&rec, num, 20419, 1, 1000);
	CHECK_INT(catalog_call_insert(c, &rec), 0);
	CHECK_INT(catalog_open(dbpath, 0, &plain), 0);
	if (plain) {
		CHECK_INT(catalog_call_get(plain, num, &out), EPERM);
		make_user(&u, "aino", 1001, ROLE_AGENT, "");
		CHECK_INT(catalog_user_add(plain, &u), EPERM);
		CHECK_INT(catalog_grant_add(plain, ROLE_ADMIN, 1), EPERM);
		CHECK_INT(catalog_verify_rows(plain, forged_cb, &bad, &checked),
			  EPERM);
		/* What it is for still works. */
		CHECK_INT(catalog_team_add(plain, "t"), 0);
	}
	catalog_close(plain);
	cleanup(c);
}

/* A catalog of schema 1 (before row authentication) is upgraded by the
 * first keyed read-write open, which signs its rows and moves its
 * restrictions into them; nothing else may upgrade it. */
static void test_upgrade_signs_rows(void)
{
	struct catalog *c = fresh(), *x = NULL;
	struct catalog_restriction r = { .num = 2, .since_ms = 1 };
	struct catalog_user u, got;
	struct keyring *other = NULL;
	unsigned char master[KEYS_KEY_LEN];
	struct call_record rec, out;
	struct ints bad = { .n = 0 };
	uint64_t num, checked = 0;
	uint32_t aino = 0;

	make_user(&u, "aino", 1001, ROLE_AGENT, "");
	CHECK_INT(catalog_user_add(c, &u), 0);
	CHECK_INT(catalog_agent_id(c, "aino", &aino), 0);
	CHECK_INT(catalog_grant_add(c, ROLE_BACKUP, 7000), 0);
	for (int i = 0; i < 2; i++) {
		CHECK_INT(catalog_call_num_next(c, &num), 0);
		make_call(&rec, num, 20419, aino, 1000 + i);
		CHECK_INT(catalog_call_insert(c, &rec), 0);
	}
	snprintf(r.by, sizeof r.by, "admin");
	snprintf(r.reason, sizeof r.reason, "hold");
	CHECK_INT(catalog_restriction_put(c, &r), 0);
	CHECK_INT(catalog_tombstone_put(c, 9, 20419, 5), 0);
	catalog_close(c);
	c = NULL;
	/* Back to schema 1, as session 2's callvault wrote it. */
	tamper(0, "ALTER TABLE calls DROP COLUMN mac;"
		  " ALTER TABLE calls DROP COLUMN restricted_until;"
		  " ALTER TABLE users DROP COLUMN mac;"
		  " ALTER TABLE agents DROP COLUMN mac;"
		  " ALTER TABLE supervises DROP COLUMN mac;"
		  " ALTER TABLE grants DROP COLUMN mac;"
		  " PRAGMA user_version = 1");
	tamper(1, "ALTER TABLE restrictions DROP COLUMN mac;"
		  " ALTER TABLE tombstones DROP COLUMN mac;"
		  " PRAGMA user_version = 1");

	CHECK_INT(catalog_open(dbpath, 0, &x), EINVAL);
	CHECK_INT(catalog_open_keyed(dbpath, CATALOG_READONLY, ring, &x),
		  EINVAL);
	memset(master, 0x5a, sizeof master);
	CHECK_INT(keys_ring_new(master, &other), 0);
	CHECK_INT(catalog_open_keyed(dbpath, 0, other, &x), EACCES);
	keys_ring_free(other);
	CHECK(x == NULL);

	CHECK_INT(catalog_open_keyed(dbpath, 0, ring, &c), 0);
	if (!c)
		return;
	CHECK_INT(catalog_verify_rows(c, forged_cb, &bad, &checked), 0);
	CHECK_INT(bad.n, 0);
	CHECK(checked >= 2 + 1 + 1 + 1 + 1 + 1);
	CHECK_INT(catalog_user_by_uid(c, 1001, &got), 0);
	CHECK_INT(catalog_call_get(c, 1, &out), 0);
	CHECK_INT(out.restricted, 0);
	CHECK_INT(catalog_call_get(c, 2, &out), 0);
	CHECK_INT(out.restricted, 1);
	CHECK(out.restricted_until == CALL_UNTIL_LIFTED);
	CHECK_INT(catalog_tombstoned(c, 9), 0);
	cleanup(c);
}

TEST_MAIN("catalog", T(test_create_open), T(test_open_refuses),
	  T(test_teams), T(test_users), T(test_agent_ids),
	  T(test_supervises), T(test_grants), T(test_roles), T(test_epochs), T(test_key_store_rows),
	  T(test_call_numbers), T(test_call_roundtrip), T(test_listings),
	  T(test_reentrant), T(test_directory_version),
	  T(test_two_connections), T(test_busy_writer),
	  T(test_forged_rows), T(test_rows_need_key),
	  T(test_upgrade_signs_rows))
