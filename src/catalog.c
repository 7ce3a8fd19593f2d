/* The catalog on SQLite: schema, migrations and every SQL statement of
 * callvault.
 *
 * Statements are prepared on first use and cached in the connection. A
 * cached statement that is already running (a callback re-entering the
 * catalog with the same query) is not touched: the nested call prepares a
 * private copy and finalizes it. Every statement is reset and its bindings
 * cleared before the function that used it returns, on every path, so that
 * no read transaction outlives a call and WAL checkpoints are never held
 * back by an idle connection.
 *
 * Writes of more than one statement run in a transaction: BEGIN IMMEDIATE
 * when the caller has none (so the write lock is taken up front and the
 * busy timeout applies), a savepoint inside the caller's. */
#include "callvault/catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "callvault/call.h"
#include "callvault/clock.h"
#include "callvault/log.h"

/* 'CVLT', in PRAGMA application_id of every catalog. */
#define CATALOG_APP_ID 0x43564c54
#define CATALOG_APP_ID_SQL "1129729108"
#define CATALOG_SCHEMA_VERSION 2
/* 'CVKS', in PRAGMA application_id of every key store. */
#define KS_APP_ID 0x43564b53
#define KS_APP_ID_SQL "1129728851"
#define KS_SCHEMA_VERSION 2
#define KS_FILE "keystore.db"
#define CATALOG_BUSY_MS 5000
#define CATALOG_CHECKPOINT_BUSY_MS 100

/* calls.restricted_until, as in call_record: 0 none, CALL_UNTIL_LIFTED
 * until lifted, else the end (ms). */
#define ROW_UNTIL_LIFTED_SQL "9223372036854775807"
#define CALL_SEALED_LEN_SQL "43"
#define CALL_HASH_LEN_SQL "32"

_Static_assert(CATALOG_APP_ID == 1129729108, "application id literal");
_Static_assert(CALL_UNTIL_LIFTED == INT64_C(9223372036854775807),
	       "until-lifted literal");
_Static_assert(CALL_DIGITS_SEALED_LEN == 43 && CALL_NUMBER_HASH_LEN == 32,
	       "blob length literals");
_Static_assert(KS_APP_ID == 1129728851, "application id literal");

/* cv_row_mac() over each authenticated table's row, in SQL: the same
 * fields, in the same order, as the row_mac_*() functions compute in C
 * (the migration signs with these, verify checks with them). */
#define CALL_MAC_SQL                                                    \
	"cv_row_mac('calls', num, day, start_ms, end_ms, duration_ms,"  \
	" direction, service_number, customer_masked,"                  \
	" coalesce(customer_sealed, zeroblob(" CALL_SEALED_LEN_SQL ")),"  \
	" coalesce(number_hash, zeroblob(" CALL_HASH_LEN_SQL ")), agent_id," \
	" agent, agent_name, agent_uid, channels, source_rate, size,"   \
	" ingested_ms, restricted_until)"
#define USER_MAC_SQL                                                    \
	"cv_row_mac('users', login, uid, name, role, coalesce(team, ''),"  \
	" coalesce(trained_until, -1))"
#define AGENT_MAC_SQL "cv_row_mac('agents', id, login)"
#define SUPERVISES_MAC_SQL "cv_row_mac('supervises', login, team)"
#define GRANT_MAC_SQL "cv_row_mac('grants', role, gid)"
#define RESTRICTION_MAC_SQL                                             \
	"cv_row_mac('restrictions', num, since_ms, until_ms, by_login,"   \
	" reason)"
#define TOMBSTONE_MAC_SQL "cv_row_mac('tombstones', num, day, erased_ms)"

/* Schema migrations: migrations[v] takes a catalog from user_version v to
 * v + 1 and ends by setting user_version. Creation is migration from 0. A
 * later schema appends a step here and bumps CATALOG_SCHEMA_VERSION; open
 * applies the missing steps in one write transaction. */
static const char *const migrations[CATALOG_SCHEMA_VERSION] = {
	/* 0 -> 1 */
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY NOT NULL,"
	"  value"
	");"
	/* Named counters: next_call never goes back; directory_version is
	 * bumped by the triggers below; calls/bytes follow the calls table
	 * so that statfs need not scan it. */
	"CREATE TABLE counters ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  value INTEGER NOT NULL"
	");"
	"INSERT INTO counters (name, value) VALUES"
	"  ('next_call', 1), ('directory_version', 0),"
	"  ('calls', 0), ('bytes', 0);"
	"CREATE TABLE teams ("
	"  name TEXT PRIMARY KEY NOT NULL"
	");"
	/* A login's agent id is kept after the user is deleted: its calls
	 * still live under that id. AUTOINCREMENT: never reused. */
	"CREATE TABLE agents ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  login TEXT NOT NULL UNIQUE"
	");"
	"CREATE TABLE users ("
	"  login TEXT PRIMARY KEY NOT NULL REFERENCES agents (login),"
	"  uid INTEGER NOT NULL UNIQUE,"
	"  name TEXT NOT NULL,"
	"  role TEXT NOT NULL"
	"    CHECK (role IN ('agent', 'supervisor', 'admin')),"
	"  team TEXT REFERENCES teams (name),"
	"  trained_until INTEGER"
	");"
	"CREATE INDEX users_team ON users (team);"
	"CREATE TABLE supervises ("
	"  login TEXT NOT NULL REFERENCES users (login)"
	"    ON DELETE CASCADE ON UPDATE CASCADE,"
	"  team TEXT NOT NULL REFERENCES teams (name),"
	"  PRIMARY KEY (login, team)"
	") WITHOUT ROWID;"
	"CREATE INDEX supervises_team ON supervises (team);"
	/* Keyed by gid first: the lookup is "roles of these groups". */
	"CREATE TABLE grants ("
	"  role TEXT NOT NULL CHECK (role IN"
	"    ('agent', 'supervisor', 'admin', 'backup', 'recorder')),"
	"  gid INTEGER NOT NULL,"
	"  PRIMARY KEY (gid, role)"
	") WITHOUT ROWID;"
	"CREATE TABLE calls ("
	"  num INTEGER PRIMARY KEY,"
	"  day INTEGER NOT NULL,"
	"  start_ms INTEGER NOT NULL,"
	"  end_ms INTEGER NOT NULL,"
	"  duration_ms INTEGER NOT NULL,"
	"  direction TEXT NOT NULL,"
	"  service_number TEXT NOT NULL,"
	"  customer_masked TEXT NOT NULL,"
	"  customer_sealed BLOB,"
	"  number_hash BLOB,"
	"  agent_id INTEGER NOT NULL,"
	"  agent TEXT NOT NULL,"
	"  agent_name TEXT NOT NULL,"
	"  agent_uid INTEGER NOT NULL,"
	"  channels INTEGER NOT NULL,"
	"  source_rate INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  ingested_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX calls_day_agent ON calls (day, agent_id, start_ms);"
	"CREATE INDEX calls_number ON calls (number_hash);"
	/* The sweeper walks calls by start time. */
	"CREATE INDEX calls_start ON calls (start_ms);"
	"CREATE TRIGGER calls_ins AFTER INSERT ON calls BEGIN"
	"  UPDATE counters SET value = value + 1 WHERE name = 'calls';"
	"  UPDATE counters SET value = value + NEW.size WHERE name = 'bytes';"
	" END;"
	"CREATE TRIGGER calls_del AFTER DELETE ON calls BEGIN"
	"  UPDATE counters SET value = value - 1 WHERE name = 'calls';"
	"  UPDATE counters SET value = value - OLD.size WHERE name = 'bytes';"
	" END;"
	"CREATE TRIGGER calls_size AFTER UPDATE OF size ON calls BEGIN"
	"  UPDATE counters SET value = value - OLD.size + NEW.size"
	"    WHERE name = 'bytes';"
	" END;"
	/* The audit trail; each row's MAC chains it to the one before
	 * (audit.c). The head moves with every insert. */
	"CREATE TABLE audit ("
	"  seq INTEGER PRIMARY KEY,"
	"  at_ms INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  login TEXT NOT NULL,"
	"  roles TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  call_num INTEGER NOT NULL,"
	"  outcome TEXT NOT NULL,"
	"  detail TEXT NOT NULL,"
	"  mac BLOB NOT NULL"
	");"
	"CREATE INDEX audit_call ON audit (call_num);"
	"CREATE TABLE audit_head ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  seq INTEGER NOT NULL,"
	"  mac BLOB NOT NULL"
	");"
	"INSERT INTO audit_head (id, seq, mac) VALUES (1, 0, zeroblob(32));"
#define DIR_TRIGGER(table, op)                                          \
	"CREATE TRIGGER " #table "_" #op " AFTER " #op " ON " #table    \
	" BEGIN UPDATE counters SET value = value + 1"                  \
	" WHERE name = 'directory_version'; END;"
#define DIR_TRIGGERS(table)                                             \
	DIR_TRIGGER(table, INSERT) DIR_TRIGGER(table, UPDATE)           \
	DIR_TRIGGER(table, DELETE)
	DIR_TRIGGERS(teams)
	DIR_TRIGGERS(users)
	DIR_TRIGGERS(supervises)
	DIR_TRIGGERS(grants)
#undef DIR_TRIGGERS
#undef DIR_TRIGGER
	"PRAGMA application_id = " CATALOG_APP_ID_SQL ";"
	"PRAGMA user_version = 1;",
	/* 1 -> 2: row authentication (docs/format.md, "Catalog rows").
	 * A call's restriction moves into its row, beside the MAC that
	 * covers it (the key store keeps its copy for rebuild); every row
	 * that decides who sees what gets a MAC, computed here by
	 * cv_row_mac(), which only a connection holding the vault's key
	 * has. The column lists match the row_mac_*() functions. */
	"ALTER TABLE calls ADD COLUMN restricted_until INTEGER NOT NULL"
	"  DEFAULT 0;"
	"UPDATE calls SET restricted_until = (SELECT CASE r.until_ms"
	"  WHEN 0 THEN " ROW_UNTIL_LIFTED_SQL " ELSE r.until_ms END"
	"  FROM ks.restrictions r WHERE r.num = calls.num)"
	"  WHERE num IN (SELECT num FROM ks.restrictions);"
	"ALTER TABLE calls ADD COLUMN mac BLOB;"
	"ALTER TABLE users ADD COLUMN mac BLOB;"
	"ALTER TABLE agents ADD COLUMN mac BLOB;"
	"ALTER TABLE supervises ADD COLUMN mac BLOB;"
	"ALTER TABLE grants ADD COLUMN mac BLOB;"
	"UPDATE calls SET mac = " CALL_MAC_SQL ";"
	"UPDATE users SET mac = " USER_MAC_SQL ";"
	"UPDATE agents SET mac = " AGENT_MAC_SQL ";"
	"UPDATE supervises SET mac = " SUPERVISES_MAC_SQL ";"
	"UPDATE grants SET mac = " GRANT_MAC_SQL ";"
	"PRAGMA user_version = 2;",
};

/* The key store's schema (keystore.db, attached as "ks"): what rebuild
 * needs besides the blobs. Nodes of each day's key tree (keys.h), keys of
 * calls wrapped on their own, restrictions, erasure tombstones and notes.
 * Versioned on its own, like the catalog. */
static const char *const ks_migrations[KS_SCHEMA_VERSION] = {
	/* 0 -> 1 */
	"CREATE TABLE ks.meta ("
	"  key TEXT PRIMARY KEY NOT NULL,"
	"  value"
	");"
	/* A day's nodes cover disjoint ranges of call numbers: the one
	 * covering n is the one with the greatest lo <= n. */
	"CREATE TABLE ks.epoch_nodes ("
	"  day INTEGER NOT NULL,"
	"  lo INTEGER NOT NULL,"
	"  depth INTEGER NOT NULL,"
	"  wrapped BLOB NOT NULL,"
	"  PRIMARY KEY (day, lo)"
	") WITHOUT ROWID;"
	"CREATE TABLE ks.call_keys ("
	"  num INTEGER PRIMARY KEY,"
	"  day INTEGER NOT NULL,"
	"  wrapped BLOB NOT NULL"
	");"
	/* until_ms 0: until lifted. */
	"CREATE TABLE ks.restrictions ("
	"  num INTEGER PRIMARY KEY,"
	"  since_ms INTEGER NOT NULL,"
	"  until_ms INTEGER NOT NULL,"
	"  by_login TEXT NOT NULL,"
	"  reason TEXT NOT NULL"
	");"
	"CREATE TABLE ks.tombstones ("
	"  num INTEGER PRIMARY KEY,"
	"  day INTEGER NOT NULL,"
	"  erased_ms INTEGER NOT NULL"
	");"
	"CREATE TABLE ks.notes ("
	"  id INTEGER PRIMARY KEY,"
	"  num INTEGER NOT NULL,"
	"  at_ms INTEGER NOT NULL,"
	"  login TEXT NOT NULL,"
	"  text TEXT NOT NULL"
	");"
	"CREATE INDEX ks.notes_num ON notes (num);"
	"PRAGMA ks.application_id = " KS_APP_ID_SQL ";"
	"PRAGMA ks.user_version = 1;",
	/* 1 -> 2: row authentication, as in the catalog. */
	"ALTER TABLE ks.restrictions ADD COLUMN mac BLOB;"
	"ALTER TABLE ks.tombstones ADD COLUMN mac BLOB;"
	"UPDATE ks.restrictions SET mac = " RESTRICTION_MAC_SQL ";"
	"UPDATE ks.tombstones SET mac = " TOMBSTONE_MAC_SQL ";"
	"PRAGMA ks.user_version = 2;",
};

/* Columns of a call, in the order of ST_CALL_INSERT and read_call(). */
#define CALL_COLS                                                       \
	"num, day, start_ms, end_ms, duration_ms, direction,"           \
	" service_number, customer_masked, customer_sealed, number_hash," \
	" agent_id, agent, agent_name, agent_uid, channels, source_rate," \
	" size, ingested_ms, restricted_until, mac"
/* A user's row, its agent id and both rows' MACs (read_user_row()). */
#define USER_COLS                                                       \
	"u.login, u.uid, u.name, u.role, u.team, u.trained_until, a.id,"  \
	" u.mac, a.mac"
#define USER_FROM " FROM users u JOIN agents a ON a.login = u.login"

enum stmt_id {
	ST_BEGIN,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_SAVEPOINT_UNDO,
	ST_SAVEPOINT_RELEASE,
	ST_APP_ID,
	ST_USER_VERSION,
	ST_JOURNAL_WAL,
	ST_META_PUT,
	ST_META_GET,
	ST_COUNTER_GET,
	ST_COUNTS,
	ST_CALL_NUM_NEXT,
	ST_CALL_NUM_SEEN,
	ST_TEAM_ADD,
	ST_TEAM_EXISTS,
	ST_TEAM_LIST,
	ST_TEAM_AGENTS,
	ST_AGENT_ENSURE,
	ST_AGENT_SIGN,
	ST_AGENT_ID,
	ST_AGENT_LOGIN,
	ST_AGENT_UID,
	ST_USER_ADD,
	ST_USER_UPDATE,
	ST_USER_DEL,
	ST_USER_GET,
	ST_USER_BY_UID,
	ST_USER_LIST,
	ST_SUPERVISES_ADD,
	ST_SUPERVISES_CLEAR,
	ST_SUPERVISES_GET,
	ST_GRANT_ADD,
	ST_GRANT_DEL,
	ST_GRANT_ROLES,
	ST_GRANT_LIST,
	ST_ATTACH,
	ST_KS_APP_ID,
	ST_KS_USER_VERSION,
	ST_KS_JOURNAL_WAL,
	ST_KS_META_PUT,
	ST_KS_META_GET,
	ST_EPOCH_ENSURE,
	ST_EPOCH_NODE,
	ST_EPOCH_NODE_ADD,
	ST_EPOCH_NODE_DEL,
	ST_DAY_NEEDS_EPOCH,
	ST_EPOCH_DAYS_BEFORE,
	ST_CALL_KEY_PUT,
	ST_CALL_KEY_GET,
	ST_CALL_KEY_DEL,
	ST_RESTRICT_PUT,
	ST_RESTRICT_GET,
	ST_RESTRICT_DEL,
	ST_TOMB_PUT,
	ST_TOMB_GET,
	ST_CALLS_TOMBSTONED,
	ST_NOTE_ADD,
	ST_NOTES_OF,
	ST_NOTES_DEL,
	ST_CALL_INSERT,
	ST_CALL_REWRITE,
	ST_CALL_GET,
	ST_CALL_RESTRICT,
	ST_DAY_NEXT,
	ST_DAY_AGENT_NEXT,
	ST_CALLS_OF,
	ST_CALLS_ALL,
	ST_CALLS_DAY,
	ST_CALLS_AGENT,
	ST_CALLS_DAY_AGENT,
	ST_CALLS_BY_NUMBER,
	ST_CALLS_BEFORE,
	ST_CALL_DELETE,
	ST_EPOCH_DESTROY,
	ST_CHECKPOINT,
	ST_AUDIT_HEAD,
	ST_AUDIT_HEAD_SET,
	ST_AUDIT_INSERT,
	ST_AUDIT_LIST,
	ST_COUNT,
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN DEFERRED",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT catalog_op",
	[ST_SAVEPOINT_UNDO] = "ROLLBACK TO catalog_op",
	[ST_SAVEPOINT_RELEASE] = "RELEASE catalog_op",
	[ST_APP_ID] = "PRAGMA application_id",
	[ST_USER_VERSION] = "PRAGMA user_version",
	[ST_JOURNAL_WAL] = "PRAGMA journal_mode = WAL",
	[ST_META_PUT] = "INSERT INTO meta (key, value) VALUES (?1, ?2)",
	[ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[ST_COUNTER_GET] = "SELECT value FROM counters WHERE name = ?1",
	[ST_COUNTS] =
		"SELECT (SELECT value FROM counters WHERE name = 'calls'),"
		" (SELECT value FROM counters WHERE name = 'bytes')",
	[ST_CALL_NUM_NEXT] =
		"UPDATE counters SET value = value + 1"
		" WHERE name = 'next_call' RETURNING value - 1",
	[ST_CALL_NUM_SEEN] =
		"UPDATE counters SET value = max(value, ?1 + 1)"
		" WHERE name = 'next_call'",
	[ST_TEAM_ADD] = "INSERT INTO teams (name) VALUES (?1)",
	[ST_TEAM_EXISTS] = "SELECT 1 FROM teams WHERE name = ?1",
	[ST_TEAM_LIST] =
		"SELECT t.name, (SELECT count(*) FROM users u"
		" WHERE u.team = t.name) FROM teams t ORDER BY t.name",
	[ST_TEAM_AGENTS] =
		"SELECT " USER_COLS USER_FROM " WHERE u.team = ?1"
		" ORDER BY a.id",
	/* Returns the id of a new row only: an existing row is never
	 * signed again (it may have been planted). */
	[ST_AGENT_ENSURE] =
		"INSERT INTO agents (login) VALUES (?1)"
		" ON CONFLICT (login) DO NOTHING RETURNING id",
	[ST_AGENT_SIGN] = "UPDATE agents SET mac = ?2 WHERE id = ?1",
	[ST_AGENT_ID] = "SELECT id, mac FROM agents WHERE login = ?1",
	[ST_AGENT_LOGIN] = "SELECT login, mac FROM agents WHERE id = ?1",
	[ST_AGENT_UID] = "SELECT " USER_COLS USER_FROM " WHERE a.id = ?1",
	[ST_USER_ADD] =
		"INSERT INTO users (login, uid, name, role, team,"
		" trained_until, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_USER_UPDATE] =
		"UPDATE users SET uid = ?2, name = ?3, role = ?4, team = ?5,"
		" trained_until = ?6, mac = ?7 WHERE login = ?1",
	[ST_USER_DEL] = "DELETE FROM users WHERE login = ?1",
	[ST_USER_GET] = "SELECT " USER_COLS USER_FROM " WHERE u.login = ?1",
	[ST_USER_BY_UID] = "SELECT " USER_COLS USER_FROM " WHERE u.uid = ?1",
	[ST_USER_LIST] = "SELECT " USER_COLS USER_FROM " ORDER BY u.login",
	[ST_SUPERVISES_ADD] =
		"INSERT INTO supervises (login, team, mac) VALUES (?1, ?2, ?3)"
		" ON CONFLICT DO NOTHING",
	[ST_SUPERVISES_CLEAR] = "DELETE FROM supervises WHERE login = ?1",
	[ST_SUPERVISES_GET] =
		"SELECT team, mac FROM supervises WHERE login = ?1"
		" ORDER BY team",
	[ST_GRANT_ADD] =
		"INSERT INTO grants (role, gid, mac) VALUES (?1, ?2, ?3)",
	[ST_GRANT_DEL] = "DELETE FROM grants WHERE role = ?1 AND gid = ?2",
	[ST_GRANT_ROLES] = "SELECT role, mac FROM grants WHERE gid = ?1",
	[ST_GRANT_LIST] =
		"SELECT role, gid, mac FROM grants ORDER BY role, gid",
	[ST_ATTACH] = "ATTACH DATABASE ?1 AS ks",
	[ST_KS_APP_ID] = "PRAGMA ks.application_id",
	[ST_KS_USER_VERSION] = "PRAGMA ks.user_version",
	[ST_KS_JOURNAL_WAL] = "PRAGMA ks.journal_mode = WAL",
	[ST_KS_META_PUT] = "INSERT INTO ks.meta (key, value) VALUES (?1, ?2)",
	[ST_KS_META_GET] = "SELECT value FROM ks.meta WHERE key = ?1",
	/* A day gets a root only while it has no node at all: concurrent
	 * creators end up using the one stored first. */
	[ST_EPOCH_ENSURE] =
		"INSERT INTO ks.epoch_nodes (day, lo, depth, wrapped)"
		" SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS"
		" (SELECT 1 FROM ks.epoch_nodes WHERE day = ?1)",
	[ST_EPOCH_NODE] =
		"SELECT lo, depth, wrapped FROM ks.epoch_nodes"
		" WHERE day = ?1 AND lo <= ?2 ORDER BY lo DESC LIMIT 1",
	[ST_EPOCH_NODE_ADD] =
		"INSERT INTO ks.epoch_nodes (day, lo, depth, wrapped)"
		" VALUES (?1, ?2, ?3, ?4)",
	[ST_EPOCH_NODE_DEL] =
		"DELETE FROM ks.epoch_nodes WHERE day = ?1 AND lo = ?2"
		" AND depth = ?3",
	[ST_DAY_NEEDS_EPOCH] =
		"SELECT " CALL_COLS " FROM calls WHERE day = ?1 AND NOT EXISTS"
		" (SELECT 1 FROM ks.call_keys k WHERE k.num = calls.num)",
	[ST_EPOCH_DAYS_BEFORE] =
		"SELECT DISTINCT day FROM ks.epoch_nodes WHERE day < ?1"
		" ORDER BY day",
	[ST_CALL_KEY_PUT] =
		"INSERT INTO ks.call_keys (num, day, wrapped)"
		" VALUES (?1, ?2, ?3) ON CONFLICT (num) DO NOTHING",
	[ST_CALL_KEY_GET] =
		"SELECT day, wrapped FROM ks.call_keys WHERE num = ?1",
	[ST_CALL_KEY_DEL] = "DELETE FROM ks.call_keys WHERE num = ?1",
	[ST_RESTRICT_PUT] =
		"INSERT INTO ks.restrictions (num, since_ms, until_ms,"
		" by_login, reason, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (num) DO UPDATE SET since_ms = excluded.since_ms,"
		" until_ms = excluded.until_ms, by_login = excluded.by_login,"
		" reason = excluded.reason, mac = excluded.mac",
	[ST_RESTRICT_GET] =
		"SELECT since_ms, until_ms, by_login, reason, mac"
		" FROM ks.restrictions WHERE num = ?1",
	[ST_RESTRICT_DEL] = "DELETE FROM ks.restrictions WHERE num = ?1",
	[ST_TOMB_PUT] =
		"INSERT INTO ks.tombstones (num, day, erased_ms, mac)"
		" VALUES (?1, ?2, ?3, ?4) ON CONFLICT (num) DO NOTHING",
	[ST_TOMB_GET] =
		"SELECT day, erased_ms, mac FROM ks.tombstones WHERE num = ?1",
	[ST_CALLS_TOMBSTONED] =
		"SELECT " CALL_COLS " FROM calls WHERE num IN"
		" (SELECT num FROM ks.tombstones) ORDER BY num",
	[ST_NOTE_ADD] =
		"INSERT INTO ks.notes (num, at_ms, login, text)"
		" VALUES (?1, ?2, ?3, ?4)",
	[ST_NOTES_OF] =
		"SELECT at_ms, login, text FROM ks.notes WHERE num = ?1"
		" ORDER BY id",
	[ST_NOTES_DEL] = "DELETE FROM ks.notes WHERE num = ?1",
	[ST_CALL_INSERT] =
		"INSERT INTO calls (" CALL_COLS ") VALUES (?1, ?2, ?3, ?4,"
		" ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
		" ?18, ?19, ?20)",
	[ST_CALL_REWRITE] =
		"UPDATE calls SET day = ?2, start_ms = ?3, end_ms = ?4,"
		" duration_ms = ?5, direction = ?6, service_number = ?7,"
		" customer_masked = ?8, customer_sealed = ?9,"
		" number_hash = ?10, agent_id = ?11, agent = ?12,"
		" agent_name = ?13, agent_uid = ?14, channels = ?15,"
		" source_rate = ?16,"
		" size = ?17, ingested_ms = ?18, restricted_until = ?19,"
		" mac = ?20 WHERE num = ?1",
	[ST_CALL_GET] = "SELECT " CALL_COLS " FROM calls WHERE num = ?1",
	[ST_CALL_RESTRICT] =
		"UPDATE calls SET restricted_until = ?2, mac = ?3"
		" WHERE num = ?1",
	/* Distinct values by seeking the index once per value instead of
	 * walking every call of every day. */
	[ST_DAY_NEXT] =
		"SELECT day FROM calls WHERE day > ?1 ORDER BY day LIMIT 1",
	[ST_DAY_AGENT_NEXT] =
		"SELECT agent_id FROM calls WHERE day = ?1 AND agent_id > ?2"
		" ORDER BY agent_id LIMIT 1",
	[ST_CALLS_OF] =
		"SELECT " CALL_COLS " FROM calls WHERE day = ?1"
		" AND agent_id = ?2 ORDER BY start_ms, num",
	[ST_CALLS_ALL] =
		"SELECT " CALL_COLS " FROM calls ORDER BY start_ms, num",
	[ST_CALLS_DAY] =
		"SELECT " CALL_COLS " FROM calls WHERE day = ?1"
		" ORDER BY start_ms, num",
	[ST_CALLS_AGENT] =
		"SELECT " CALL_COLS " FROM calls WHERE agent = ?2"
		" ORDER BY start_ms, num",
	[ST_CALLS_DAY_AGENT] =
		"SELECT " CALL_COLS " FROM calls WHERE day = ?1"
		" AND agent = ?2 ORDER BY start_ms, num",
	[ST_CALLS_BY_NUMBER] =
		"SELECT " CALL_COLS " FROM calls WHERE number_hash = ?1"
		" ORDER BY start_ms, num",
	[ST_CALLS_BEFORE] =
		"SELECT " CALL_COLS " FROM calls WHERE start_ms <= ?1"
		" ORDER BY start_ms, num",
	[ST_CALL_DELETE] = "DELETE FROM calls WHERE num = ?1",
	[ST_EPOCH_DESTROY] = "DELETE FROM ks.epoch_nodes WHERE day = ?1",
	[ST_CHECKPOINT] = "PRAGMA wal_checkpoint(TRUNCATE)",
	[ST_AUDIT_HEAD] = "SELECT seq, mac FROM audit_head WHERE id = 1",
	[ST_AUDIT_HEAD_SET] =
		"UPDATE audit_head SET seq = ?1, mac = ?2 WHERE id = 1",
	[ST_AUDIT_INSERT] =
		"INSERT INTO audit (seq, at_ms, uid, login, roles, action,"
		" call_num, outcome, detail, mac) VALUES (?1, ?2, ?3, ?4, ?5,"
		" ?6, ?7, ?8, ?9, ?10)",
	[ST_AUDIT_LIST] =
		"SELECT seq, at_ms, uid, login, roles, action, call_num,"
		" outcome, detail, mac FROM audit WHERE at_ms >= ?1"
		" AND (?2 IS NULL OR login = ?2) AND (?3 = 0 OR call_num = ?3)"
		" ORDER BY seq",
};

struct catalog {
	sqlite3 *db;
	/* The row MAC key (keys_subkey(KEYS_CATALOG_MAC)), owned by the
	 * caller's keyring; NULL on a connection opened without the key,
	 * which can neither read nor write authenticated rows. */
	const unsigned char *row_key;
	int busy_ms;                 /* how long busy_poll() keeps trying */
	sqlite3_stmt *st[ST_COUNT];  /* prepared on first use */
	unsigned char busy[ST_COUNT]; /* st[i] is between get and put */
};

static const struct {
	enum role role;
	const char *name;
} role_names[] = {
	{ ROLE_AGENT, "agent" },
	{ ROLE_SUPERVISOR, "supervisor" },
	{ ROLE_ADMIN, "admin" },
	{ ROLE_BACKUP, "backup" },
	{ ROLE_RECORDER, "recorder" },
};

const char *role_name(enum role r)
{
	size_t i;

	for (i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
		if (role_names[i].role == r)
			return role_names[i].name;
	return NULL;
}

enum role role_parse(const char *name)
{
	size_t i;

	if (!name)
		return 0;
	for (i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
		if (strcmp(role_names[i].name, name) == 0)
			return role_names[i].role;
	return 0;
}

/* Waiting for a lock another connection holds. SQLite's own busy timeout
 * sleeps ever longer (up to 100 ms between tries), so a waiter can sleep
 * through the short gaps between a sweep's transactions and starve;
 * audited opens wait on such a waiter. Trying every millisecond takes the
 * lock within a millisecond of its release. */
static int busy_poll(void *ctx, int tries)
{
	const struct catalog *c = ctx;
	struct timespec ms = { 0, 1000000 };

	if (tries >= c->busy_ms)
		return 0;
	nanosleep(&ms, NULL);
	return 1;
}

static void set_busy(struct catalog *c, int ms)
{
	c->busy_ms = ms;
	sqlite3_busy_handler(c->db, busy_poll, c);
}

/* Maps an SQLite result code to the errno of the contract. */
static int db_err(sqlite3 *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return EBUSY;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE ||
		    rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return EEXIST;
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
			return ENOENT;
		break;
	case SQLITE_NOTADB:
		/* Not a foreign file's I/O error: a foreign file. */
		log_warnx("catalog: %s", sqlite3_errstr(rc));
		return EINVAL;
	case SQLITE_FULL:
		log_warnx("catalog: %s", sqlite3_errstr(rc));
		return ENOSPC;
	case SQLITE_IOERR:
		/* A full disk often shows as an I/O error (the -shm file
		 * cannot grow): say what it is. */
		if (db && sqlite3_system_errno(db) == ENOSPC) {
			log_warnx("catalog: %s", strerror(ENOSPC));
			return ENOSPC;
		}
		break;
	}
	log_warnx("catalog: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return EIO;
}

static int cat_err(struct catalog *c, int rc)
{
	return db_err(c->db, rc);
}

/* Hands out statement `id`, ready to bind. Pair with stmt_put(). */
static int stmt_get(struct catalog *c, enum stmt_id id, sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	if (c->st[id] && !c->busy[id]) {
		c->busy[id] = 1;
		*out = c->st[id];
		return 0;
	}
	rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1,
				c->busy[id] ? 0 : SQLITE_PREPARE_PERSISTENT,
				&st, NULL);
	if (rc != SQLITE_OK)
		return cat_err(c, rc);
	if (!c->busy[id]) {
		c->st[id] = st;
		c->busy[id] = 1;
	}
	*out = st;
	return 0;
}

/* Resets and unbinds (or, for a nested copy, finalizes) a statement. NULL
 * is a no-op so that cleanup paths can call it unconditionally. */
static void stmt_put(struct catalog *c, enum stmt_id id, sqlite3_stmt *st)
{
	if (!st)
		return;
	if (st == c->st[id]) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		c->busy[id] = 0;
	} else {
		sqlite3_finalize(st);
	}
}

/* Binding helpers: the first failure sticks in *rc so that a statement's
 * bindings are checked once. Text and blobs are bound SQLITE_STATIC: every
 * statement is unbound before its caller's buffers go away. */
static void bind_i64(sqlite3_stmt *st, int i, int64_t v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(st, i, v);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s, int *rc)
{
	if (*rc != SQLITE_OK)
		return;
	if (s)
		*rc = sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		*rc = sqlite3_bind_null(st, i);
}

static void bind_blob(sqlite3_stmt *st, int i, const void *b, size_t len,
		      int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_blob(st, i, b, (int)len, SQLITE_STATIC);
}

/* Copies a text column; NULL reads as "". A value that does not fit was
 * not written by callvault: EIO. */
static int col_text(sqlite3_stmt *st, int i, char *buf, size_t size)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	size_t len = (size_t)sqlite3_column_bytes(st, i);

	if (!s) {
		buf[0] = '\0';
		return 0;
	}
	if (len >= size) {
		log_warnx("catalog: stored %s is too long",
			  sqlite3_column_name(st, i));
		return EIO;
	}
	memcpy(buf, s, len + 1);
	return 0;
}

/* Copies a blob column of exactly `len` bytes; NULL reads as zeros. */
static int col_blob(sqlite3_stmt *st, int i, unsigned char *buf, size_t len)
{
	const void *b = sqlite3_column_blob(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);

	if (!b && n == 0) {
		memset(buf, 0, len);
		return 0;
	}
	if (n != len) {
		log_warnx("catalog: stored %s has %zu bytes, expected %zu",
			  sqlite3_column_name(st, i), n, len);
		return EIO;
	}
	memcpy(buf, b, len);
	return 0;
}

/* Steps a statement that returns no row. */
static int step_done(struct catalog *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return cat_err(c, rc);
}

/* Steps a statement that must return a row: ENOENT if it has none. */
static int step_row(struct catalog *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return ENOENT;
	return cat_err(c, rc);
}

/* Runs a statement without parameters or rows. */
static int exec_id(struct catalog *c, enum stmt_id id)
{
	sqlite3_stmt *st = NULL;
	int err;

	err = stmt_get(c, id, &st);
	if (!err)
		err = step_done(c, st);
	stmt_put(c, id, st);
	return err;
}

/* Runs a statement with one text or integer parameter and no rows,
 * returning ENOENT if it changed nothing (`need_change`). */
static int exec_key(struct catalog *c, enum stmt_id id, const char *text,
		    int64_t num, int need_change)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, id, &st);
	if (err)
		goto out;
	if (text)
		bind_text(st, 1, text, &rc);
	else
		bind_i64(st, 1, num, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_done(c, st);
	if (!err && need_change && sqlite3_changes(c->db) == 0)
		err = ENOENT;
out:
	stmt_put(c, id, st);
	return err;
}

/* --- row authentication ------------------------------------------------ */

/* A row's MAC is keyed BLAKE2b (keys_mac, catalog MAC subkey) over its
 * table's name and its fields in schema order: integers as 8 bytes little
 * endian, text and blobs as their bytes, each part length-prefixed by
 * keys_mac. cv_row_mac() computes the same in SQL (*_MAC_SQL). Without
 * the master key nobody can write a row that callvault will read. */
#define ROW_MAX_PARTS 24

struct row_mac {
	struct keys_part part[ROW_MAX_PARTS];
	unsigned char ints[ROW_MAX_PARTS][8];
	size_t n;
	int overflow;
};

static void rm_bytes(struct row_mac *m, const void *p, size_t len)
{
	if (m->n == ROW_MAX_PARTS) {
		m->overflow = 1;
		return;
	}
	m->part[m->n++] = (struct keys_part){ p, len };
}

static void rm_text(struct row_mac *m, const char *s)
{
	rm_bytes(m, s, strlen(s));
}

static void rm_int(struct row_mac *m, int64_t v)
{
	uint64_t u = (uint64_t)v;

	if (m->n == ROW_MAX_PARTS) {
		m->overflow = 1;
		return;
	}
	for (int i = 0; i < 8; i++)
		m->ints[m->n][i] = (unsigned char)(u >> (8 * i));
	rm_bytes(m, m->ints[m->n], 8);
}

static void rm_start(struct row_mac *m, const char *table)
{
	m->n = 0;
	m->overflow = 0;
	rm_text(m, table);
}

static void rm_call(struct row_mac *m, const struct call_record *r)
{
	rm_start(m, "calls");
	rm_int(m, (int64_t)r->num);
	rm_int(m, r->day);
	rm_int(m, r->start_ms);
	rm_int(m, r->end_ms);
	rm_int(m, r->duration_ms);
	rm_text(m, r->direction);
	rm_text(m, r->service_number);
	rm_text(m, r->customer_masked);
	rm_bytes(m, r->customer_sealed, sizeof r->customer_sealed);
	rm_bytes(m, r->number_hash, sizeof r->number_hash);
	rm_int(m, r->agent_id);
	rm_text(m, r->agent);
	rm_text(m, r->agent_name);
	rm_int(m, r->agent_uid);
	rm_int(m, r->channels);
	rm_int(m, r->source_rate);
	rm_int(m, (int64_t)r->size);
	rm_int(m, r->ingested_ms);
	rm_int(m, r->restricted_until);
}

static void rm_user(struct row_mac *m, const struct catalog_user *u)
{
	rm_start(m, "users");
	rm_text(m, u->login);
	rm_int(m, u->uid);
	rm_text(m, u->name);
	rm_text(m, role_name(u->role));
	rm_text(m, u->team);
	rm_int(m, u->trained_until);
}

static void rm_agent(struct row_mac *m, uint32_t id, const char *login)
{
	rm_start(m, "agents");
	rm_int(m, id);
	rm_text(m, login);
}

static void rm_supervises(struct row_mac *m, const char *login,
			  const char *team)
{
	rm_start(m, "supervises");
	rm_text(m, login);
	rm_text(m, team);
}

static void rm_grant(struct row_mac *m, enum role role, uint32_t gid)
{
	rm_start(m, "grants");
	rm_text(m, role_name(role));
	rm_int(m, gid);
}

static void rm_restriction(struct row_mac *m,
			   const struct catalog_restriction *r)
{
	rm_start(m, "restrictions");
	rm_int(m, (int64_t)r->num);
	rm_int(m, r->since_ms);
	rm_int(m, r->until_ms);
	rm_text(m, r->by);
	rm_text(m, r->reason);
}

static void rm_tombstone(struct row_mac *m, uint64_t num, int32_t day,
			 int64_t at_ms)
{
	rm_start(m, "tombstones");
	rm_int(m, (int64_t)num);
	rm_int(m, day);
	rm_int(m, at_ms);
}

/* 0 if the connection can authenticate rows; EPERM (logged) if it was
 * opened without the vault's key. */
static int row_key_ok(struct catalog *c)
{
	if (c->row_key)
		return 0;
	log_warnx("catalog: authenticated rows need the vault's key "
		  "(catalog_open_keyed)");
	return EPERM;
}

static int rm_finish(struct catalog *c, const struct row_mac *m,
		     unsigned char out[32])
{
	int err = row_key_ok(c);

	if (err)
		return err;
	if (m->overflow)
		return EINVAL;
	keys_mac(c->row_key, m->part, m->n, out);
	return 0;
}

/* 0 if column `i` of `st` holds the MAC of `m`; EBADMSG if not; EPERM
 * without the key. */
static int rm_check(struct catalog *c, const struct row_mac *m,
		    sqlite3_stmt *st, int i)
{
	unsigned char want[32];
	const unsigned char *have = sqlite3_column_blob(st, i);
	int err = rm_finish(c, m, want);

	if (err)
		return err;
	if (!have || sqlite3_column_bytes(st, i) != (int)sizeof want ||
	    !keys_mac_equal(want, have))
		return EBADMSG;
	return 0;
}

/* Says that a row failed authentication: someone wrote the catalog
 * without callvault (sqlite3, a restored file of another vault). The row
 * is refused: lookups report EBADMSG, listings leave it out. Rate-limited,
 * since a listing may meet the same row many times. */
static void row_forged(const char *table, const char *row)
{
	static _Atomic unsigned long lines;
	unsigned long n = lines++;

	if (n < 100 || n % 1000 == 0)
		log_warnx("catalog: %s row %s fails authentication (changed "
			  "outside callvault): refused; run callvault verify"
			  "%s", table, row, n >= 100 ? " (repeated)" : "");
}

static void call_forged(uint64_t num)
{
	char id[CALL_ID_LEN];

	call_id_format(num, id);
	row_forged("calls", id);
}

/* cv_row_mac(table, field...) for the schema migration and verify:
 * integers and text/blobs as in C. A NULL or REAL field gives NULL, a MAC
 * no row matches. */
static void sql_row_mac(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	struct catalog *c = sqlite3_user_data(cx);
	struct row_mac m = { .n = 0 };
	unsigned char mac[32];

	if (argc < 1 || argc > ROW_MAX_PARTS) {
		sqlite3_result_error(cx, "cv_row_mac: wrong argument count",
				     -1);
		return;
	}
	for (int i = 0; i < argc; i++) {
		sqlite3_value *v = argv[i];

		switch (sqlite3_value_type(v)) {
		case SQLITE_INTEGER:
			rm_int(&m, sqlite3_value_int64(v));
			break;
		case SQLITE_TEXT: {
			const unsigned char *t = sqlite3_value_text(v);

			rm_bytes(&m, t, (size_t)sqlite3_value_bytes(v));
			break;
		}
		case SQLITE_BLOB: {
			const void *b = sqlite3_value_blob(v);

			rm_bytes(&m, b, (size_t)sqlite3_value_bytes(v));
			break;
		}
		default:
			/* No MAC: such a row fails authentication. */
			sqlite3_result_null(cx);
			return;
		}
	}
	if (rm_finish(c, &m, mac) != 0) {
		sqlite3_result_error(cx, "cv_row_mac: no key", -1);
		return;
	}
	sqlite3_result_blob(cx, mac, sizeof mac, SQLITE_TRANSIENT);
}

/* Gives the connection the row key and cv_row_mac(). DIRECTONLY: the
 * function cannot be reached from a trigger or view someone planted. */
static int row_key_set(struct catalog *c, const struct keyring *ring)
{
	int rc;

	c->row_key = keys_subkey(ring, KEYS_CATALOG_MAC);
	rc = sqlite3_create_function_v2(c->db, "cv_row_mac", -1,
					SQLITE_UTF8 | SQLITE_DETERMINISTIC |
						SQLITE_DIRECTONLY,
					c, sql_row_mac, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : cat_err(c, rc);
}

/* Atomic section for a multi-statement write: its own BEGIN IMMEDIATE, or a
 * savepoint inside the caller's transaction. */
static int op_begin(struct catalog *c, int *own)
{
	*own = sqlite3_get_autocommit(c->db);
	return exec_id(c, *own ? ST_BEGIN : ST_SAVEPOINT);
}

static int op_end(struct catalog *c, int own, int err)
{
	if (own) {
		if (!err)
			err = exec_id(c, ST_COMMIT);
		if (err && !sqlite3_get_autocommit(c->db))
			exec_id(c, ST_ROLLBACK);
	} else {
		if (err)
			exec_id(c, ST_SAVEPOINT_UNDO);
		exec_id(c, ST_SAVEPOINT_RELEASE);
	}
	return err;
}

static int pragma_int(struct catalog *c, enum stmt_id id, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int err;

	err = stmt_get(c, id, &st);
	if (!err)
		err = step_row(c, st);
	if (!err)
		*out = sqlite3_column_int64(st, 0);
	stmt_put(c, id, st);
	return err;
}

/* Applies the schema steps from user_version `from` on, inside the
 * caller's write transaction. */
static int apply_migrations(struct catalog *c, int64_t from)
{
	char *msg = NULL;
	int rc;

	for (; from < CATALOG_SCHEMA_VERSION; from++) {
		rc = sqlite3_exec(c->db, migrations[from], NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			log_warnx("catalog: schema version %d: %s",
				  (int)from + 1, msg ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			rc &= 0xff;
			return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? EBUSY
									: EIO;
		}
	}
	return 0;
}

/* Brings an older schema up to CATALOG_SCHEMA_VERSION. The version is read
 * again under the write lock: another process may have migrated first. */
static int migrate(struct catalog *c)
{
	int64_t v;
	int err;

	err = exec_id(c, ST_BEGIN);
	if (err)
		return err;
	err = pragma_int(c, ST_USER_VERSION, &v);
	if (!err)
		err = apply_migrations(c, v);
	if (!err)
		err = exec_id(c, ST_COMMIT);
	if (err && !sqlite3_get_autocommit(c->db))
		exec_id(c, ST_ROLLBACK);
	return err;
}

static void cat_free(struct catalog *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close_v2(c->db);
	free(c);
}

/* Per-connection settings. `rw`: also make sure of WAL mode. */
static int cat_setup(struct catalog *c, int rw)
{
	static const char settings[] =
		"PRAGMA synchronous = FULL;"
		"PRAGMA foreign_keys = ON;"
		"PRAGMA secure_delete = ON;"
		"PRAGMA trusted_schema = OFF;";
	sqlite3_stmt *st = NULL;
	const char *mode;
	int err = 0, rc;

	sqlite3_extended_result_codes(c->db, 1);
	set_busy(c, CATALOG_BUSY_MS);
	/* The schema is ours: refuse writes to sqlite_master and friends. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	rc = sqlite3_exec(c->db, settings, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return cat_err(c, rc);
	if (!rw)
		return 0;
	err = stmt_get(c, ST_JOURNAL_WAL, &st);
	if (!err)
		err = step_row(c, st);
	if (!err) {
		mode = (const char *)sqlite3_column_text(st, 0);
		if (!mode || strcmp(mode, "wal") != 0) {
			log_warnx("catalog: cannot use WAL mode (%s)",
				  mode ? mode : "?");
			err = EIO;
		}
	}
	stmt_put(c, ST_JOURNAL_WAL, st);
	return err;
}

static int cat_connect(const char *path, int flags, struct catalog **out)
{
	struct catalog *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return ENOMEM;
	flags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE |
		 SQLITE_OPEN_EXRESCODE;
	rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		log_warnx("catalog: %s: %s", path,
			  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		cat_free(c);
		return (rc & 0xff) == SQLITE_CANTOPEN ? EACCES : EIO;
	}
	/* Before the first statement: even reading the identity waits for a
	 * writer in another process rather than failing with EBUSY. */
	set_busy(c, CATALOG_BUSY_MS);
	*out = c;
	return 0;
}

static void unlink_with_suffix(const char *path, const char *suffix)
{
	char p[PATH_MAX];

	if (snprintf(p, sizeof p, "%s%s", path, suffix) < (int)sizeof p)
		unlink(p);
}

/* Makes the new directory entry durable. */
static void sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t len;
	int fd;

	if (!slash) {
		dir[0] = '.';
		len = 1;
	} else {
		len = slash == path ? 1 : (size_t)(slash - path);
		if (len >= sizeof dir)
			return;
		memcpy(dir, path, len);
	}
	dir[len] = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return;
	if (fsync(fd) == -1)
		log_warn("catalog: fsync %s", dir);
	close(fd);
}

/* The key store's path: keystore.db in the catalog's directory. */
static int ks_path(const char *catalog_path, char out[PATH_MAX])
{
	const char *slash = strrchr(catalog_path, '/');
	int dirlen = slash ? (int)(slash - catalog_path + 1) : 0;
	int n = snprintf(out, PATH_MAX, "%.*s%s", dirlen, catalog_path,
			 KS_FILE);

	return n < 0 || n >= PATH_MAX ? ENAMETOOLONG : 0;
}

static int ks_meta_check(struct catalog *c, unsigned char out[KEYS_CHECK_LEN])
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_KS_META_GET, &st);
	if (err)
		goto out;
	bind_text(st, 1, "key_check", &rc);
	err = rc == SQLITE_OK ? step_row(c, st) : cat_err(c, rc);
	if (!err)
		err = col_blob(st, 0, out, KEYS_CHECK_LEN);
out:
	stmt_put(c, ST_KS_META_GET, st);
	return err;
}

/* Creates the key store's tables, or brings an older schema up to date,
 * in one write transaction; a new key store records `check`. */
static int ks_migrate(struct catalog *c, const unsigned char *check)
{
	sqlite3_stmt *st = NULL;
	char *msg = NULL;
	int64_t v = 0;
	int err, rc = SQLITE_OK;

	err = exec_id(c, ST_BEGIN);
	if (err)
		return err;
	err = pragma_int(c, ST_KS_USER_VERSION, &v);
	for (; !err && v < KS_SCHEMA_VERSION; v++) {
		rc = sqlite3_exec(c->db, ks_migrations[v], NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			log_warnx("catalog: key store schema version %d: %s",
				  (int)v + 1, msg ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			err = EIO;
		}
		if (!err && v == 0 && check) {
			err = stmt_get(c, ST_KS_META_PUT, &st);
			if (err)
				break;
			bind_text(st, 1, "key_check", &rc);
			bind_blob(st, 2, check, KEYS_CHECK_LEN, &rc);
			err = rc == SQLITE_OK ? step_done(c, st)
					      : cat_err(c, rc);
			stmt_put(c, ST_KS_META_PUT, st);
		}
	}
	if (!err)
		err = exec_id(c, ST_COMMIT);
	if (err && !sqlite3_get_autocommit(c->db))
		exec_id(c, ST_ROLLBACK);
	return err;
}

/* Attaches the key store as "ks". It must exist unless `create`; it must
 * belong to the same vault as the catalog (key check `check`). */
static int ks_attach(struct catalog *c, const char *catalog_path, int rw,
		     int create, const unsigned char check[KEYS_CHECK_LEN])
{
	unsigned char stored[KEYS_CHECK_LEN];
	char path[PATH_MAX];
	sqlite3_stmt *st = NULL;
	struct stat sb;
	int64_t app_id = 0, version = 0;
	int err, rc = SQLITE_OK;

	err = ks_path(catalog_path, path);
	if (err)
		return err;
	if (stat(path, &sb) == -1) {
		int fd = -1;

		/* Connections never create files (no SQLITE_OPEN_CREATE);
		 * an empty file is a new database to SQLite. */
		if (errno == ENOENT && create)
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				  0600);
		if (fd == -1) {
			err = errno;
			log_warnx("catalog: key store %s: %s%s", path,
				  strerror(err), err == ENOENT ?
				  " (restore it, or run callvault rebuild)"
				  : "");
			return err;
		}
		close(fd);
		sync_parent(path);
	} else if (!S_ISREG(sb.st_mode)) {
		log_warnx("catalog: %s: not a regular file", path);
		return EINVAL;
	}
	err = stmt_get(c, ST_ATTACH, &st);
	if (!err) {
		bind_text(st, 1, path, &rc);
		err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
	}
	stmt_put(c, ST_ATTACH, st);
	if (!err)
		err = pragma_int(c, ST_KS_APP_ID, &app_id);
	if (!err)
		err = pragma_int(c, ST_KS_USER_VERSION, &version);
	if (err)
		return err;
	if ((version > 0 && app_id != KS_APP_ID) ||
	    version > KS_SCHEMA_VERSION) {
		log_warnx("catalog: %s: not a callvault key store of schema "
			  "version %d or older", path, KS_SCHEMA_VERSION);
		return EINVAL;
	}
	if (rw) {
		rc = sqlite3_exec(c->db, "PRAGMA ks.synchronous = FULL",
				  NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return cat_err(c, rc);
		err = stmt_get(c, ST_KS_JOURNAL_WAL, &st);
		if (!err)
			err = step_row(c, st);
		stmt_put(c, ST_KS_JOURNAL_WAL, st);
		if (err)
			return err;
	}
	if (version < KS_SCHEMA_VERSION) {
		/* A new key store has no rows to sign; an older one needs
		 * the key. */
		if (!rw || !c->row_key) {
			log_warnx("catalog: %s: key store needs an upgrade; "
				  "run any callvault command on the vault "
				  "once, with its key and write access", path);
			return EINVAL;
		}
		err = ks_migrate(c, check);
		if (err)
			return err;
	}
	err = ks_meta_check(c, stored);
	if (!err && !keys_check_equal(stored, check)) {
		log_warnx("catalog: %s belongs to another vault", path);
		err = EINVAL;
	}
	return err;
}

int catalog_create(const char *path, const struct keyring *ring)
{
	unsigned char check[KEYS_CHECK_LEN];
	struct catalog *c = NULL;
	sqlite3_stmt *st = NULL;
	int err, fd, rc = SQLITE_OK;

	keys_check_value(ring, check);
	/* O_EXCL decides EEXIST; SQLite takes an empty file as a new
	 * database. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		return errno;
	close(fd);

	err = cat_connect(path, SQLITE_OPEN_READWRITE, &c);
	if (err)
		goto out;
	err = cat_setup(c, 1);
	if (!err)
		err = row_key_set(c, ring);
	/* An existing key store (a rebuild after the catalog was lost) is
	 * kept if it belongs to this vault. Attached first: the schema's
	 * steps read it. */
	if (!err)
		err = ks_attach(c, path, 1, 1, check);
	if (!err)
		err = exec_id(c, ST_BEGIN);
	if (err)
		goto out;
	err = apply_migrations(c, 0);
	if (err)
		goto out;
	err = stmt_get(c, ST_META_PUT, &st);
	if (err)
		goto out;
	bind_text(st, 1, "key_check", &rc);
	bind_blob(st, 2, check, KEYS_CHECK_LEN, &rc);
	if (rc == SQLITE_OK)
		err = step_done(c, st);
	else
		err = cat_err(c, rc);
	stmt_put(c, ST_META_PUT, st);
	st = NULL;
	if (err)
		goto out;
	/* The creation time is a fact about the file, not a policy input:
	 * SQLite's clock is good enough. */
	rc = sqlite3_exec(c->db,
			  "INSERT INTO meta (key, value) VALUES ('created_ms',"
			  " CAST((julianday('now') - 2440587.5) * 86400000.0"
			  " AS INTEGER))",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = exec_id(c, ST_COMMIT);
out:
	if (c && err && !sqlite3_get_autocommit(c->db))
		exec_id(c, ST_ROLLBACK);
	cat_free(c);
	if (err) {
		unlink(path);
		unlink_with_suffix(path, "-wal");
		unlink_with_suffix(path, "-shm");
	} else {
		sync_parent(path);
	}
	return err;
}

/* catalog_open() and catalog_open_keyed(); `ring` may be NULL. */
static int cat_open(const char *path, int flags, const struct keyring *ring,
		    struct catalog **out)
{
	unsigned char check[KEYS_CHECK_LEN], have[KEYS_CHECK_LEN];
	struct catalog *c = NULL;
	struct stat sb;
	int64_t app_id = 0, version = 0;
	int err, rw = !(flags & CATALOG_READONLY);

	*out = NULL;
	/* SQLite would create a missing file; a missing catalog is an
	 * error. */
	if (stat(path, &sb) == -1)
		return errno;
	if (!S_ISREG(sb.st_mode)) {
		log_warnx("catalog: %s: not a regular file", path);
		return EINVAL;
	}
	err = cat_connect(path, rw ? SQLITE_OPEN_READWRITE :
				     SQLITE_OPEN_READONLY, &c);
	if (err)
		goto out;
	/* The identity first: a foreign file must not be switched to WAL. */
	err = pragma_int(c, ST_APP_ID, &app_id);
	if (!err)
		err = pragma_int(c, ST_USER_VERSION, &version);
	if (err == EINVAL || (!err && app_id != CATALOG_APP_ID)) {
		log_warnx("catalog: %s: not a callvault catalog", path);
		err = EINVAL;
		goto out;
	}
	if (err)
		goto out;
	if (version > CATALOG_SCHEMA_VERSION || version < 1) {
		log_warnx("catalog: %s: schema version %lld, this program "
			  "knows %d", path, (long long)version,
			  CATALOG_SCHEMA_VERSION);
		err = EINVAL;
		goto out;
	}
	err = cat_setup(c, rw);
	if (err)
		goto out;
	if (version < CATALOG_SCHEMA_VERSION && (!rw || !ring)) {
		log_warnx("catalog: %s: schema version %lld needs an upgrade; "
			  "run any callvault command on the vault once, with "
			  "its key and write access", path, (long long)version);
		err = EINVAL;
		goto out;
	}
	err = catalog_key_check(c, check);
	if (err)
		goto out;
	if (ring) {
		/* Prove the key before it signs anything. */
		keys_check_value(ring, have);
		if (!keys_check_equal(check, have)) {
			err = EACCES;
			goto out;
		}
		err = row_key_set(c, ring);
		if (err)
			goto out;
	}
	/* The key store first: the catalog's schema steps read it. */
	err = ks_attach(c, path, rw, 0, check);
	if (!err && version < CATALOG_SCHEMA_VERSION)
		err = migrate(c);
	if (err)
		goto out;
	*out = c;
	c = NULL;
out:
	cat_free(c);
	return err;
}

int catalog_open(const char *path, int flags, struct catalog **out)
{
	return cat_open(path, flags, NULL, out);
}

int catalog_open_keyed(const char *path, int flags,
		       const struct keyring *ring, struct catalog **out)
{
	return cat_open(path, flags, ring, out);
}

void catalog_close(struct catalog *c)
{
	cat_free(c);
}

int catalog_key_check(struct catalog *c, unsigned char out[KEYS_CHECK_LEN])
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_META_GET, &st);
	if (err)
		goto out;
	bind_text(st, 1, "key_check", &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_row(c, st);
	if (!err)
		err = col_blob(st, 0, out, KEYS_CHECK_LEN);
out:
	stmt_put(c, ST_META_GET, st);
	return err;
}

int catalog_integrity_check(struct catalog *c)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *v;
	int rc, bad = 0;

	/* Both files: the catalog and the attached key store. Not
	 * quick_check: SQLite 3.40's reports a NULL in every row of a
	 * WITHOUT ROWID table whose key columns are not declared first
	 * (grants), which integrity_check does not. */
	rc = sqlite3_prepare_v2(c->db, "PRAGMA integrity_check(100)", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return cat_err(c, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = sqlite3_column_text(st, 0);
		if (!v || strcmp((const char *)v, "ok") != 0) {
			log_warnx("catalog: integrity: %s",
				  v ? (const char *)v : "?");
			bad = 1;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return (rc & 0xff) == SQLITE_CORRUPT ? EBADMSG : cat_err(c, rc);
	return bad ? EBADMSG : 0;
}

void catalog_set_cache(struct catalog *c, unsigned mib)
{
	char sql[64];

	snprintf(sql, sizeof sql, "PRAGMA cache_size = -%u", mib * 1024);
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		log_warnx("catalog: cannot set the cache size");
}

int catalog_read_begin(struct catalog *c)
{
	if (!sqlite3_get_autocommit(c->db))
		return EINVAL;
	return exec_id(c, ST_BEGIN_READ);
}

void catalog_read_end(struct catalog *c)
{
	if (!sqlite3_get_autocommit(c->db))
		exec_id(c, ST_COMMIT);
}

int catalog_begin(struct catalog *c)
{
	if (!sqlite3_get_autocommit(c->db)) {
		log_warnx("catalog: nested transaction");
		return EINVAL;
	}
	return exec_id(c, ST_BEGIN);
}

int catalog_commit(struct catalog *c)
{
	return exec_id(c, ST_COMMIT);
}

void catalog_rollback(struct catalog *c)
{
	if (!sqlite3_get_autocommit(c->db))
		exec_id(c, ST_ROLLBACK);
}

static int counter_get(struct catalog *c, const char *name, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_COUNTER_GET, &st);
	if (err)
		goto out;
	bind_text(st, 1, name, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_row(c, st);
	if (!err)
		*out = sqlite3_column_int64(st, 0);
out:
	stmt_put(c, ST_COUNTER_GET, st);
	return err;
}

int catalog_directory_version(struct catalog *c, int64_t *out)
{
	return counter_get(c, "directory_version", out);
}

/* 1 if `s` is a non-empty string shorter than `size`. */
static int str_ok(const char *s, size_t size)
{
	size_t len;

	if (!s)
		return 0;
	len = strnlen(s, size);
	return len > 0 && len < size;
}

/* 1 if `s` is NUL-terminated within `size` (may be empty). */
static int str_fits(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

int catalog_team_add(struct catalog *c, const char *name)
{
	if (!str_ok(name, CATALOG_TEAM_LEN))
		return EINVAL;
	return exec_key(c, ST_TEAM_ADD, name, 0, 0);
}

int catalog_team_exists(struct catalog *c, const char *name)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (!str_ok(name, CATALOG_TEAM_LEN))
		return ENOENT;
	err = stmt_get(c, ST_TEAM_EXISTS, &st);
	if (err)
		goto out;
	bind_text(st, 1, name, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_row(c, st);
out:
	stmt_put(c, ST_TEAM_EXISTS, st);
	return err;
}

int catalog_team_list(struct catalog *c,
		      int (*fn)(void *ctx, const char *name, int members),
		      void *ctx)
{
	char name[CATALOG_TEAM_LEN];
	sqlite3_stmt *st = NULL;
	int err, rc;

	err = stmt_get(c, ST_TEAM_LIST, &st);
	if (err)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = col_text(st, 0, name, sizeof name);
		if (err)
			goto out;
		err = fn(ctx, name, sqlite3_column_int(st, 1));
		if (err)
			goto out;
	}
	err = cat_err(c, rc);
out:
	stmt_put(c, ST_TEAM_LIST, st);
	return err;
}

/* The agent id of `login`, made and signed if it has none; an existing
 * row is authenticated, never signed again. Inside op_begin(). */
static int agent_make(struct catalog *c, const char *login, uint32_t *id)
{
	unsigned char mac[32];
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, made = 0, rc = SQLITE_OK;

	err = row_key_ok(c);
	if (!err)
		err = stmt_get(c, ST_AGENT_ENSURE, &st);
	if (err)
		return err;
	bind_text(st, 1, login, &rc);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*id = (uint32_t)sqlite3_column_int64(st, 0);
			made = 1;
			rc = sqlite3_step(st);
		}
	}
	err = rc == SQLITE_DONE ? 0 : cat_err(c, rc);
	stmt_put(c, ST_AGENT_ENSURE, st);
	if (err)
		return err;
	if (!made)
		return catalog_agent_id(c, login, id);
	rm_agent(&m, *id, login);
	err = rm_finish(c, &m, mac);
	if (err)
		return err;
	err = stmt_get(c, ST_AGENT_SIGN, &st);
	if (err)
		return err;
	rc = SQLITE_OK;
	bind_i64(st, 1, *id, &rc);
	bind_blob(st, 2, mac, sizeof mac, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
	stmt_put(c, ST_AGENT_SIGN, st);
	return err;
}

static int user_valid(const struct catalog_user *u)
{
	int i;

	if (!call_login_valid(u->login) || !str_fits(u->name, CALL_NAME_LEN) ||
	    !str_fits(u->team, CATALOG_TEAM_LEN))
		return 0;
	if (u->role != ROLE_AGENT && u->role != ROLE_SUPERVISOR &&
	    u->role != ROLE_ADMIN)
		return 0;
	if (u->trained_until < -1 || u->nsupervises < 0 ||
	    u->nsupervises > CATALOG_MAX_TEAMS)
		return 0;
	for (i = 0; i < u->nsupervises; i++)
		if (!str_ok(u->supervises[i], CATALOG_TEAM_LEN))
			return 0;
	return 1;
}

/* Writes the user row (insert or update) and its supervised teams. Runs
 * inside op_begin(). */
static int user_write(struct catalog *c, const struct catalog_user *u,
		      enum stmt_id id)
{
	unsigned char mac[32];
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, i, rc = SQLITE_OK;

	rm_user(&m, u);
	err = rm_finish(c, &m, mac);
	if (err)
		return err;
	err = stmt_get(c, id, &st);
	if (err)
		goto out;
	bind_text(st, 1, u->login, &rc);
	bind_i64(st, 2, u->uid, &rc);
	bind_text(st, 3, u->name, &rc);
	bind_text(st, 4, role_name(u->role), &rc);
	bind_text(st, 5, u->team[0] ? u->team : NULL, &rc);
	if (u->trained_until == -1) {
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_null(st, 6);
	} else {
		bind_i64(st, 6, u->trained_until, &rc);
	}
	bind_blob(st, 7, mac, sizeof mac, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_done(c, st);
	if (!err && sqlite3_changes(c->db) == 0)
		err = ENOENT;
	stmt_put(c, id, st);
	st = NULL;
	if (err)
		goto out;

	err = exec_key(c, ST_SUPERVISES_CLEAR, u->login, 0, 0);
	if (err)
		goto out;
	id = ST_SUPERVISES_ADD;
	for (i = 0; i < u->nsupervises && !err; i++) {
		rm_supervises(&m, u->login, u->supervises[i]);
		err = rm_finish(c, &m, mac);
		if (err)
			goto out;
		err = stmt_get(c, id, &st);
		if (err)
			goto out;
		bind_text(st, 1, u->login, &rc);
		bind_text(st, 2, u->supervises[i], &rc);
		bind_blob(st, 3, mac, sizeof mac, &rc);
		err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
		stmt_put(c, id, st);
		st = NULL;
	}
out:
	stmt_put(c, id, st);
	return err;
}

int catalog_user_add(struct catalog *c, const struct catalog_user *u)
{
	uint32_t id;
	int err, own;

	if (!user_valid(u))
		return EINVAL;
	err = op_begin(c, &own);
	if (err)
		return err;
	err = agent_make(c, u->login, &id);
	if (!err)
		err = user_write(c, u, ST_USER_ADD);
	return op_end(c, own, err);
}

int catalog_user_update(struct catalog *c, const struct catalog_user *u)
{
	int err, own;

	if (!user_valid(u))
		return EINVAL;
	err = op_begin(c, &own);
	if (err)
		return err;
	err = user_write(c, u, ST_USER_UPDATE);
	return op_end(c, own, err);
}

int catalog_user_del(struct catalog *c, const char *login)
{
	if (!str_ok(login, CALL_LOGIN_LEN))
		return ENOENT;
	/* supervises rows go with it (ON DELETE CASCADE); the agent id
	 * stays. */
	return exec_key(c, ST_USER_DEL, login, 0, 1);
}

/* Fills `u` from a row of USER_COLS (not its supervised teams) and
 * authenticates the user's row and its agent id's: EBADMSG (logged) if
 * either was changed outside callvault. */
static int read_user_row(struct catalog *c, sqlite3_stmt *row,
			 struct catalog_user *u)
{
	struct row_mac m;
	int err;

	memset(u, 0, sizeof *u);
	err = col_text(row, 0, u->login, sizeof u->login);
	if (!err)
		err = col_text(row, 2, u->name, sizeof u->name);
	if (!err)
		err = col_text(row, 4, u->team, sizeof u->team);
	if (err)
		return err;
	u->uid = (uint32_t)sqlite3_column_int64(row, 1);
	u->role = role_parse((const char *)sqlite3_column_text(row, 3));
	if (sqlite3_column_type(row, 5) == SQLITE_NULL)
		u->trained_until = -1;
	else
		u->trained_until = (int32_t)sqlite3_column_int64(row, 5);
	u->agent_id = (uint32_t)sqlite3_column_int64(row, 6);

	rm_user(&m, u);
	err = rm_check(c, &m, row, 7);
	if (!err) {
		rm_agent(&m, u->agent_id, u->login);
		err = rm_check(c, &m, row, 8);
	}
	if (err == EBADMSG)
		row_forged("users", u->login);
	return err;
}

/* read_user_row() and the teams the user supervises; a supervises row
 * that fails authentication is left out. */
static int read_user(struct catalog *c, sqlite3_stmt *row,
		     struct catalog_user *u)
{
	char what[CALL_LOGIN_LEN + CATALOG_TEAM_LEN + 16];
	sqlite3_stmt *st = NULL;
	struct row_mac m;
	int err, rc = SQLITE_OK;

	err = read_user_row(c, row, u);
	if (err)
		return err;
	err = stmt_get(c, ST_SUPERVISES_GET, &st);
	if (err)
		goto out;
	bind_text(st, 1, u->login, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (u->nsupervises == CATALOG_MAX_TEAMS) {
			log_warnx("catalog: %s supervises more than %d teams",
				  u->login, CATALOG_MAX_TEAMS);
			err = EIO;
			goto out;
		}
		err = col_text(st, 0, u->supervises[u->nsupervises],
			       CATALOG_TEAM_LEN);
		if (err)
			goto out;
		rm_supervises(&m, u->login, u->supervises[u->nsupervises]);
		err = rm_check(c, &m, st, 1);
		if (err == EBADMSG) {
			snprintf(what, sizeof what, "%s supervises %s",
				 u->login, u->supervises[u->nsupervises]);
			row_forged("supervises", what);
			err = 0;
			continue;
		}
		if (err)
			goto out;
		u->nsupervises++;
	}
	err = cat_err(c, rc);
out:
	stmt_put(c, ST_SUPERVISES_GET, st);
	return err;
}

static int user_lookup(struct catalog *c, enum stmt_id id, const char *login,
		       uint32_t uid, struct catalog_user *out)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, id, &st);
	if (err)
		goto out;
	if (login)
		bind_text(st, 1, login, &rc);
	else
		bind_i64(st, 1, uid, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_row(c, st);
	if (!err)
		err = read_user(c, st, out);
out:
	stmt_put(c, id, st);
	return err;
}

int catalog_user_get(struct catalog *c, const char *login,
		     struct catalog_user *out)
{
	if (!str_ok(login, CALL_LOGIN_LEN))
		return ENOENT;
	return user_lookup(c, ST_USER_GET, login, 0, out);
}

int catalog_user_by_uid(struct catalog *c, uint32_t uid,
			struct catalog_user *out)
{
	return user_lookup(c, ST_USER_BY_UID, NULL, uid, out);
}

int catalog_user_list(struct catalog *c,
		      int (*fn)(void *ctx, const struct catalog_user *u),
		      void *ctx)
{
	struct catalog_user u;
	sqlite3_stmt *st = NULL;
	int err, rc;

	err = stmt_get(c, ST_USER_LIST, &st);
	if (err)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = read_user(c, st, &u);
		if (err == EBADMSG)
			continue; /* logged */
		if (!err)
			err = fn(ctx, &u);
		if (err)
			goto out;
	}
	err = cat_err(c, rc);
out:
	stmt_put(c, ST_USER_LIST, st);
	return err;
}

int catalog_agent_ensure(struct catalog *c, const char *login, uint32_t *id)
{
	int err, own;

	if (!str_ok(login, CALL_LOGIN_LEN))
		return EINVAL;
	err = op_begin(c, &own);
	if (err)
		return err;
	err = agent_make(c, login, id);
	return op_end(c, own, err);
}

int catalog_agent_id(struct catalog *c, const char *login, uint32_t *id)
{
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (!str_ok(login, CALL_LOGIN_LEN))
		return ENOENT;
	err = stmt_get(c, ST_AGENT_ID, &st);
	if (err)
		goto out;
	bind_text(st, 1, login, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_row(c, st);
	if (!err) {
		*id = (uint32_t)sqlite3_column_int64(st, 0);
		rm_agent(&m, *id, login);
		err = rm_check(c, &m, st, 1);
		if (err == EBADMSG)
			row_forged("agents", login);
	}
out:
	stmt_put(c, ST_AGENT_ID, st);
	return err;
}

int catalog_agent_login(struct catalog *c, uint32_t id,
			char out[CALL_LOGIN_LEN])
{
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_AGENT_LOGIN, &st);
	if (err)
		goto out;
	bind_i64(st, 1, id, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_row(c, st);
	if (!err)
		err = col_text(st, 0, out, CALL_LOGIN_LEN);
	if (!err) {
		rm_agent(&m, id, out);
		err = rm_check(c, &m, st, 1);
		if (err == EBADMSG)
			row_forged("agents", out);
	}
out:
	stmt_put(c, ST_AGENT_LOGIN, st);
	return err;
}

int catalog_agent_uid(struct catalog *c, uint32_t id, uint32_t *uid)
{
	struct catalog_user u;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_AGENT_UID, &st);
	if (err)
		goto out;
	bind_i64(st, 1, id, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_row(c, st);
	if (!err)
		err = read_user_row(c, st, &u);
	if (!err)
		*uid = u.uid;
out:
	stmt_put(c, ST_AGENT_UID, st);
	return err;
}

int catalog_team_agents(struct catalog *c, const char *team,
			int (*fn)(void *ctx, uint32_t agent_id), void *ctx)
{
	struct catalog_user u;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_TEAM_AGENTS, &st);
	if (err)
		goto out;
	bind_text(st, 1, team, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = read_user_row(c, st, &u);
		if (err == EBADMSG)
			continue; /* logged; a forged member sees nothing */
		if (!err)
			err = fn(ctx, u.agent_id);
		if (err)
			goto out;
	}
	err = cat_err(c, rc);
out:
	stmt_put(c, ST_TEAM_AGENTS, st);
	return err;
}

static int grant_write(struct catalog *c, enum stmt_id id, enum role role,
		       uint32_t gid)
{
	unsigned char mac[32];
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	const char *name = role_name(role);
	int err, rc = SQLITE_OK;

	if (!name)
		return EINVAL;
	rm_grant(&m, role, gid);
	err = rm_finish(c, &m, mac);
	if (err)
		return err;
	err = stmt_get(c, id, &st);
	if (err)
		goto out;
	bind_text(st, 1, name, &rc);
	bind_i64(st, 2, gid, &rc);
	if (id == ST_GRANT_ADD)
		bind_blob(st, 3, mac, sizeof mac, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_done(c, st);
	if (!err && id == ST_GRANT_DEL && sqlite3_changes(c->db) == 0)
		err = ENOENT;
out:
	stmt_put(c, id, st);
	return err;
}

int catalog_grant_add(struct catalog *c, enum role role, uint32_t gid)
{
	return grant_write(c, ST_GRANT_ADD, role, gid);
}

int catalog_grant_del(struct catalog *c, enum role role, uint32_t gid)
{
	return grant_write(c, ST_GRANT_DEL, role, gid);
}

/* The role of a grant row (role, gid, mac at `col`), 0 if its MAC does
 * not match (logged) or the role is unknown. */
static int grant_row(struct catalog *c, sqlite3_stmt *st, int col,
		     uint32_t gid, enum role *role)
{
	char what[64];
	struct row_mac m;
	int err;

	*role = role_parse((const char *)sqlite3_column_text(st, 0));
	rm_grant(&m, *role, gid);
	err = *role ? rm_check(c, &m, st, col) : EBADMSG;
	if (err == EBADMSG) {
		snprintf(what, sizeof what, "%s to gid %" PRIu32,
			 role_name(*role) ? role_name(*role) : "?", gid);
		row_forged("grants", what);
		*role = 0;
		err = 0;
	}
	return err;
}

int catalog_grant_roles(struct catalog *c, const uint32_t *gids, size_t n,
			unsigned *roles)
{
	sqlite3_stmt *st = NULL;
	enum role role;
	unsigned acc = 0;
	size_t i;
	int err = 0, rc;

	/* One indexed lookup per group: a caller has a handful. */
	for (i = 0; i < n && !err; i++) {
		err = stmt_get(c, ST_GRANT_ROLES, &st);
		if (err)
			break;
		rc = sqlite3_bind_int64(st, 1, gids[i]);
		if (rc == SQLITE_OK) {
			while (!err &&
			       (rc = sqlite3_step(st)) == SQLITE_ROW) {
				err = grant_row(c, st, 1, gids[i], &role);
				acc |= (unsigned)role;
			}
		}
		if (!err)
			err = cat_err(c, rc);
		stmt_put(c, ST_GRANT_ROLES, st);
	}
	if (!err)
		*roles = acc;
	return err;
}

int catalog_grant_list(struct catalog *c,
		       int (*fn)(void *ctx, enum role role, uint32_t gid),
		       void *ctx)
{
	sqlite3_stmt *st = NULL;
	enum role role;
	int err, rc;

	err = stmt_get(c, ST_GRANT_LIST, &st);
	if (err)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t gid = (uint32_t)sqlite3_column_int64(st, 1);

		err = grant_row(c, st, 2, gid, &role);
		if (!err && role)
			err = fn(ctx, role, gid);
		if (err)
			goto out;
	}
	err = cat_err(c, rc);
out:
	stmt_put(c, ST_GRANT_LIST, st);
	return err;
}

static int calls_iter(struct catalog *c, sqlite3_stmt *st,
		      int (*fn)(void *ctx, const struct call_record *rec),
		      void *ctx);
static int read_call(struct catalog *c, sqlite3_stmt *st,
		     struct call_record *r);

static void bind_node(sqlite3_stmt *st, int32_t day,
		      const struct keys_node *n, int *rc)
{
	bind_i64(st, 1, day, rc);
	bind_i64(st, 2, (int64_t)n->lo, rc);
	bind_i64(st, 3, n->depth, rc);
	bind_blob(st, 4, n->wrapped, KEYS_WRAPPED_LEN, rc);
}

int catalog_epoch_ensure(struct catalog *c, int32_t day,
			 const struct keys_node *root)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_EPOCH_ENSURE, &st);
	if (err)
		goto out;
	bind_node(st, day, root, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
out:
	stmt_put(c, ST_EPOCH_ENSURE, st);
	return err;
}

int catalog_epoch_node(struct catalog *c, int32_t day, uint64_t num,
		       struct keys_node *out)
{
	sqlite3_stmt *st = NULL;
	int64_t lo, depth;
	int err, rc = SQLITE_OK;

	if (num > KEYS_CALL_NUM_MAX)
		return EINVAL;
	err = stmt_get(c, ST_EPOCH_NODE, &st);
	if (err)
		goto out;
	bind_i64(st, 1, day, &rc);
	bind_i64(st, 2, (int64_t)num, &rc);
	err = rc == SQLITE_OK ? step_row(c, st) : cat_err(c, rc);
	if (err)
		goto out;
	lo = sqlite3_column_int64(st, 0);
	depth = sqlite3_column_int64(st, 1);
	if (lo < 0 || depth < 0 || depth > KEYS_TREE_DEPTH) {
		log_warnx("catalog: day %d: malformed key node", (int)day);
		err = EIO;
		goto out;
	}
	out->lo = (uint64_t)lo;
	out->depth = (int)depth;
	err = col_blob(st, 2, out->wrapped, KEYS_WRAPPED_LEN);
	/* The nearest node below may end before `num`: then a puncture
	 * removed the key of `num`. */
	if (!err && (num - out->lo) >> (KEYS_TREE_DEPTH - out->depth) != 0)
		err = ENOENT;
out:
	stmt_put(c, ST_EPOCH_NODE, st);
	return err;
}

int catalog_epoch_replace(struct catalog *c, int32_t day,
			  const struct keys_node *old,
			  const struct keys_node *repl, size_t n)
{
	sqlite3_stmt *st = NULL;
	int err, own, rc = SQLITE_OK;

	err = op_begin(c, &own);
	if (err)
		return err;
	err = stmt_get(c, ST_EPOCH_NODE_DEL, &st);
	if (!err) {
		bind_i64(st, 1, day, &rc);
		bind_i64(st, 2, (int64_t)old->lo, &rc);
		bind_i64(st, 3, old->depth, &rc);
		err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
		if (!err && sqlite3_changes(c->db) != 1)
			err = ENOENT;
	}
	stmt_put(c, ST_EPOCH_NODE_DEL, st);
	for (size_t i = 0; !err && i < n; i++) {
		st = NULL;
		err = stmt_get(c, ST_EPOCH_NODE_ADD, &st);
		if (!err) {
			bind_node(st, day, &repl[i], &rc);
			err = rc == SQLITE_OK ? step_done(c, st)
					      : cat_err(c, rc);
		}
		stmt_put(c, ST_EPOCH_NODE_ADD, st);
	}
	return op_end(c, own, err);
}

int catalog_day_needs_epoch(struct catalog *c, int32_t day, int *needed)
{
	struct call_record rec;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	*needed = 0;
	err = stmt_get(c, ST_DAY_NEEDS_EPOCH, &st);
	if (err)
		goto out;
	bind_i64(st, 1, day, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	/* Only an authentic row keeps the tree: a forged one (its start
	 * moved so that the sweep passes it by) must not keep its day's
	 * key alive past the retention period. */
	while (!*needed && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = read_call(c, st, &rec);
		if (err == EBADMSG)
			err = 0;
		else if (!err)
			*needed = 1;
		if (err)
			goto out;
	}
	if (!*needed)
		err = cat_err(c, rc);
out:
	stmt_put(c, ST_DAY_NEEDS_EPOCH, st);
	return err;
}

int catalog_epoch_days_before(struct catalog *c, int32_t day,
			      int32_t *days, size_t cap, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	*n = 0;
	err = stmt_get(c, ST_EPOCH_DAYS_BEFORE, &st);
	if (err)
		goto out;
	bind_i64(st, 1, day, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	while (*n < cap && (rc = sqlite3_step(st)) == SQLITE_ROW)
		days[(*n)++] = (int32_t)sqlite3_column_int64(st, 0);
	if (*n < cap)
		err = cat_err(c, rc);
out:
	stmt_put(c, ST_EPOCH_DAYS_BEFORE, st);
	return err;
}

int catalog_call_key_put(struct catalog *c, uint64_t num, int32_t day,
			 const unsigned char wrapped[KEYS_WRAPPED_LEN])
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (num == 0 || num > KEYS_CALL_NUM_MAX)
		return EINVAL;
	err = stmt_get(c, ST_CALL_KEY_PUT, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)num, &rc);
	bind_i64(st, 2, day, &rc);
	bind_blob(st, 3, wrapped, KEYS_WRAPPED_LEN, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
out:
	stmt_put(c, ST_CALL_KEY_PUT, st);
	return err;
}

int catalog_call_key_get(struct catalog *c, uint64_t num, int32_t *day,
			 unsigned char wrapped[KEYS_WRAPPED_LEN])
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (num == 0 || num > KEYS_CALL_NUM_MAX)
		return ENOENT;
	err = stmt_get(c, ST_CALL_KEY_GET, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)num, &rc);
	err = rc == SQLITE_OK ? step_row(c, st) : cat_err(c, rc);
	if (!err) {
		*day = (int32_t)sqlite3_column_int64(st, 0);
		err = col_blob(st, 1, wrapped, KEYS_WRAPPED_LEN);
	}
out:
	stmt_put(c, ST_CALL_KEY_GET, st);
	return err;
}

int catalog_call_key_del(struct catalog *c, uint64_t num)
{
	if (num == 0 || num > INT64_MAX)
		return ENOENT;
	return exec_key(c, ST_CALL_KEY_DEL, NULL, (int64_t)num, 1);
}

int catalog_restriction_put(struct catalog *c,
			    const struct catalog_restriction *r)
{
	unsigned char mac[32];
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (r->num == 0 || r->num > INT64_MAX || r->until_ms < 0 ||
	    !str_fits(r->by, sizeof r->by) ||
	    !str_fits(r->reason, sizeof r->reason))
		return EINVAL;
	rm_restriction(&m, r);
	err = rm_finish(c, &m, mac);
	if (err)
		return err;
	err = stmt_get(c, ST_RESTRICT_PUT, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)r->num, &rc);
	bind_i64(st, 2, r->since_ms, &rc);
	bind_i64(st, 3, r->until_ms, &rc);
	bind_text(st, 4, r->by, &rc);
	bind_text(st, 5, r->reason, &rc);
	bind_blob(st, 6, mac, sizeof mac, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
out:
	stmt_put(c, ST_RESTRICT_PUT, st);
	return err;
}

int catalog_restriction_get(struct catalog *c, uint64_t num,
			    struct catalog_restriction *out)
{
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	memset(out, 0, sizeof *out);
	if (num == 0 || num > INT64_MAX)
		return ENOENT;
	err = stmt_get(c, ST_RESTRICT_GET, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)num, &rc);
	err = rc == SQLITE_OK ? step_row(c, st) : cat_err(c, rc);
	if (err)
		goto out;
	out->num = num;
	out->since_ms = sqlite3_column_int64(st, 0);
	out->until_ms = sqlite3_column_int64(st, 1);
	err = col_text(st, 2, out->by, sizeof out->by);
	if (!err)
		err = col_text(st, 3, out->reason, sizeof out->reason);
	if (!err) {
		char id[CALL_ID_LEN];

		rm_restriction(&m, out);
		err = rm_check(c, &m, st, 4);
		call_id_format(num, id);
		if (err == EBADMSG)
			row_forged("restrictions", id);
	}
out:
	stmt_put(c, ST_RESTRICT_GET, st);
	return err;
}

int catalog_restriction_del(struct catalog *c, uint64_t num)
{
	if (num == 0 || num > INT64_MAX)
		return ENOENT;
	return exec_key(c, ST_RESTRICT_DEL, NULL, (int64_t)num, 1);
}

int catalog_tombstone_put(struct catalog *c, uint64_t num, int32_t day,
			  int64_t at_ms)
{
	unsigned char mac[32];
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (num == 0 || num > INT64_MAX)
		return EINVAL;
	rm_tombstone(&m, num, day, at_ms);
	err = rm_finish(c, &m, mac);
	if (err)
		return err;
	err = stmt_get(c, ST_TOMB_PUT, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)num, &rc);
	bind_i64(st, 2, day, &rc);
	bind_i64(st, 3, at_ms, &rc);
	bind_blob(st, 4, mac, sizeof mac, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
out:
	stmt_put(c, ST_TOMB_PUT, st);
	return err;
}

int catalog_tombstoned(struct catalog *c, uint64_t num)
{
	char id[CALL_ID_LEN];
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (num == 0 || num > INT64_MAX)
		return ENOENT;
	err = stmt_get(c, ST_TOMB_GET, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)num, &rc);
	err = rc == SQLITE_OK ? step_row(c, st) : cat_err(c, rc);
	if (err)
		goto out;
	/* A planted tombstone would make rebuild and the sweep delete a
	 * call: it counts for nothing. */
	rm_tombstone(&m, num, (int32_t)sqlite3_column_int64(st, 0),
		     sqlite3_column_int64(st, 1));
	err = rm_check(c, &m, st, 2);
	if (err == EBADMSG) {
		call_id_format(num, id);
		row_forged("tombstones", id);
		err = ENOENT;
	}
out:
	stmt_put(c, ST_TOMB_GET, st);
	return err;
}

struct tombstoned_ctx {
	struct catalog *c;
	int (*fn)(void *ctx, const struct call_record *rec);
	void *ctx;
};

/* Passes on the calls whose tombstone is authentic. */
static int take_if_tombstoned(void *ctx, const struct call_record *rec)
{
	struct tombstoned_ctx *t = ctx;
	int err = catalog_tombstoned(t->c, rec->num);

	if (err == ENOENT)
		return 0;
	return err ? err : t->fn(t->ctx, rec);
}

int catalog_calls_tombstoned(struct catalog *c,
			     int (*fn)(void *ctx,
				       const struct call_record *rec),
			     void *ctx)
{
	struct tombstoned_ctx t = { c, fn, ctx };
	sqlite3_stmt *st = NULL;
	int err;

	err = stmt_get(c, ST_CALLS_TOMBSTONED, &st);
	if (!err)
		err = calls_iter(c, st, take_if_tombstoned, &t);
	stmt_put(c, ST_CALLS_TOMBSTONED, st);
	return err;
}

int catalog_note_add(struct catalog *c, uint64_t num, int64_t at_ms,
		     const char *login, const char *text)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (num == 0 || num > INT64_MAX || !str_fits(login, CALL_LOGIN_LEN) ||
	    !str_ok(text, CATALOG_NOTE_LEN))
		return EINVAL;
	err = stmt_get(c, ST_NOTE_ADD, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)num, &rc);
	bind_i64(st, 2, at_ms, &rc);
	bind_text(st, 3, login, &rc);
	bind_text(st, 4, text, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
out:
	stmt_put(c, ST_NOTE_ADD, st);
	return err;
}

int catalog_notes_of(struct catalog *c, uint64_t num,
		     int (*fn)(void *ctx, int64_t at_ms, const char *login,
			       const char *text),
		     void *ctx)
{
	sqlite3_stmt *st = NULL;
	char login[CALL_LOGIN_LEN];
	int err, rc = SQLITE_OK;

	if (num == 0 || num > INT64_MAX)
		return 0;
	err = stmt_get(c, ST_NOTES_OF, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)num, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 2);

		err = col_text(st, 1, login, sizeof login);
		if (!err)
			err = fn(ctx, sqlite3_column_int64(st, 0), login,
				 text ? text : "");
		if (err)
			goto out;
	}
	err = cat_err(c, rc);
out:
	stmt_put(c, ST_NOTES_OF, st);
	return err;
}

int catalog_call_num_next(struct catalog *c, uint64_t *num)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	int err;

	/* One statement: atomic on its own, and part of the caller's
	 * transaction if there is one. */
	err = stmt_get(c, ST_CALL_NUM_NEXT, &st);
	if (err)
		goto out;
	err = step_row(c, st);
	if (err)
		goto out;
	v = sqlite3_column_int64(st, 0);
	err = step_done(c, st);
out:
	stmt_put(c, ST_CALL_NUM_NEXT, st);
	if (!err) {
		if (v < 1) {
			log_warnx("catalog: bad call number counter");
			return EIO;
		}
		*num = (uint64_t)v;
	}
	return err;
}

int catalog_call_num_seen(struct catalog *c, uint64_t num)
{
	if (num >= INT64_MAX)
		return EINVAL;
	return exec_key(c, ST_CALL_NUM_SEEN, NULL, (int64_t)num, 0);
}

/* Writes a whole call row: ST_CALL_INSERT or ST_CALL_REWRITE (same
 * parameters). */
static int call_write(struct catalog *c, enum stmt_id id,
		      const struct call_record *r)
{
	unsigned char mac[32];
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (r->num == 0 || r->num > INT64_MAX || r->size > INT64_MAX ||
	    !str_fits(r->direction, sizeof r->direction) ||
	    !str_fits(r->service_number, sizeof r->service_number) ||
	    !str_fits(r->customer_masked, sizeof r->customer_masked) ||
	    !str_fits(r->agent, sizeof r->agent) ||
	    !str_fits(r->agent_name, sizeof r->agent_name) ||
	    r->restricted_until < 0)
		return EINVAL;
	rm_call(&m, r);
	err = rm_finish(c, &m, mac);
	if (err)
		return err;
	err = stmt_get(c, id, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)r->num, &rc);
	bind_i64(st, 2, r->day, &rc);
	bind_i64(st, 3, r->start_ms, &rc);
	bind_i64(st, 4, r->end_ms, &rc);
	bind_i64(st, 5, r->duration_ms, &rc);
	bind_text(st, 6, r->direction, &rc);
	bind_text(st, 7, r->service_number, &rc);
	bind_text(st, 8, r->customer_masked, &rc);
	bind_blob(st, 9, r->customer_sealed, sizeof r->customer_sealed, &rc);
	bind_blob(st, 10, r->number_hash, sizeof r->number_hash, &rc);
	bind_i64(st, 11, r->agent_id, &rc);
	bind_text(st, 12, r->agent, &rc);
	bind_text(st, 13, r->agent_name, &rc);
	bind_i64(st, 14, r->agent_uid, &rc);
	bind_i64(st, 15, r->channels, &rc);
	bind_i64(st, 16, r->source_rate, &rc);
	bind_i64(st, 17, (int64_t)r->size, &rc);
	bind_i64(st, 18, r->ingested_ms, &rc);
	bind_i64(st, 19, r->restricted_until, &rc);
	bind_blob(st, 20, mac, sizeof mac, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
	if (!err && id == ST_CALL_REWRITE && sqlite3_changes(c->db) == 0)
		err = ENOENT;
out:
	stmt_put(c, id, st);
	return err;
}

int catalog_call_insert(struct catalog *c, const struct call_record *r)
{
	return call_write(c, ST_CALL_INSERT, r);
}

int catalog_call_rewrite(struct catalog *c, const struct call_record *r)
{
	return call_write(c, ST_CALL_REWRITE, r);
}

/* Fills `r` from a row of CALL_COLS and authenticates it: EBADMSG
 * (logged) if the row was changed outside callvault. */
static int read_call(struct catalog *c, sqlite3_stmt *st,
		     struct call_record *r)
{
	struct row_mac m;
	int err;

	memset(r, 0, sizeof *r);
	r->num = (uint64_t)sqlite3_column_int64(st, 0);
	r->day = (int32_t)sqlite3_column_int64(st, 1);
	r->start_ms = sqlite3_column_int64(st, 2);
	r->end_ms = sqlite3_column_int64(st, 3);
	r->duration_ms = sqlite3_column_int64(st, 4);
	err = col_text(st, 5, r->direction, sizeof r->direction);
	if (!err)
		err = col_text(st, 6, r->service_number,
			       sizeof r->service_number);
	if (!err)
		err = col_text(st, 7, r->customer_masked,
			       sizeof r->customer_masked);
	if (!err)
		err = col_blob(st, 8, r->customer_sealed,
			       sizeof r->customer_sealed);
	if (!err)
		err = col_blob(st, 9, r->number_hash, sizeof r->number_hash);
	if (!err)
		err = col_text(st, 11, r->agent, sizeof r->agent);
	if (!err)
		err = col_text(st, 12, r->agent_name, sizeof r->agent_name);
	r->agent_id = (uint32_t)sqlite3_column_int64(st, 10);
	r->agent_uid = (uint32_t)sqlite3_column_int64(st, 13);
	r->channels = sqlite3_column_int(st, 14);
	r->source_rate = (uint32_t)sqlite3_column_int64(st, 15);
	r->size = (uint64_t)sqlite3_column_int64(st, 16);
	r->ingested_ms = sqlite3_column_int64(st, 17);
	r->restricted_until = sqlite3_column_int64(st, 18);
	r->restricted = r->restricted_until != 0 &&
			clock_now_ms() < r->restricted_until;
	if (err)
		return err;
	rm_call(&m, r);
	err = rm_check(c, &m, st, 19);
	if (err == EBADMSG)
		call_forged(r->num);
	return err;
}

int catalog_call_get(struct catalog *c, uint64_t num, struct call_record *out)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (num == 0 || num > INT64_MAX)
		return ENOENT;
	err = stmt_get(c, ST_CALL_GET, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)num, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	err = step_row(c, st);
	if (!err)
		err = read_call(c, st, out);
out:
	stmt_put(c, ST_CALL_GET, st);
	return err;
}

int catalog_call_restrict(struct catalog *c, uint64_t num, int64_t until_ms)
{
	struct call_record r;
	unsigned char mac[32];
	struct row_mac m;
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (until_ms < 0)
		return EINVAL;
	err = catalog_call_get(c, num, &r);
	if (err)
		return err;
	r.restricted_until = until_ms;
	rm_call(&m, &r);
	err = rm_finish(c, &m, mac);
	if (!err)
		err = stmt_get(c, ST_CALL_RESTRICT, &st);
	if (err)
		return err;
	bind_i64(st, 1, (int64_t)num, &rc);
	bind_i64(st, 2, until_ms, &rc);
	bind_blob(st, 3, mac, sizeof mac, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
	if (!err && sqlite3_changes(c->db) == 0)
		err = ENOENT;
	stmt_put(c, ST_CALL_RESTRICT, st);
	return err;
}

/* Runs a bound call query, handing each row to fn. */
static int calls_iter(struct catalog *c, sqlite3_stmt *st,
		      int (*fn)(void *ctx, const struct call_record *rec),
		      void *ctx)
{
	struct call_record rec;
	int err, rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = read_call(c, st, &rec);
		if (err == EBADMSG)
			continue; /* logged; nobody is shown a forged row */
		if (!err)
			err = fn(ctx, &rec);
		if (err)
			return err;
	}
	return cat_err(c, rc);
}

/* Walks the distinct values of an index column by seeking past the last
 * value each time. The statement is reset before every callback, so none
 * is running while `fn` runs. */
static int distinct_walk(struct catalog *c, enum stmt_id id, int64_t day,
			 int (*fn)(void *ctx, int64_t v), void *ctx)
{
	sqlite3_stmt *st = NULL;
	int64_t after = id == ST_DAY_NEXT ? INT64_MIN : -1, v;
	int err, rc;

	for (;;) {
		rc = SQLITE_OK;
		err = stmt_get(c, id, &st);
		if (err)
			return err;
		if (id == ST_DAY_NEXT) {
			bind_i64(st, 1, after, &rc);
		} else {
			bind_i64(st, 1, day, &rc);
			bind_i64(st, 2, after, &rc);
		}
		err = rc == SQLITE_OK ? step_row(c, st) : cat_err(c, rc);
		v = err ? 0 : sqlite3_column_int64(st, 0);
		stmt_put(c, id, st);
		if (err == ENOENT)
			return 0;
		if (!err)
			err = fn(ctx, v);
		if (err)
			return err;
		after = v;
	}
}

struct walk_day {
	int (*fn)(void *ctx, int32_t day);
	void *ctx;
};

static int walk_day_cb(void *ctx, int64_t v)
{
	struct walk_day *w = ctx;

	return w->fn(w->ctx, (int32_t)v);
}

int catalog_days(struct catalog *c, int (*fn)(void *ctx, int32_t day),
		 void *ctx)
{
	struct walk_day w = { fn, ctx };

	return distinct_walk(c, ST_DAY_NEXT, 0, walk_day_cb, &w);
}

struct walk_agent {
	int (*fn)(void *ctx, uint32_t agent_id);
	void *ctx;
};

static int walk_agent_cb(void *ctx, int64_t v)
{
	struct walk_agent *w = ctx;

	return w->fn(w->ctx, (uint32_t)v);
}

int catalog_day_agents(struct catalog *c, int32_t day,
		       int (*fn)(void *ctx, uint32_t agent_id), void *ctx)
{
	struct walk_agent w = { fn, ctx };

	return distinct_walk(c, ST_DAY_AGENT_NEXT, day, walk_agent_cb, &w);
}

int catalog_calls_of(struct catalog *c, int32_t day, uint32_t agent_id,
		     int (*fn)(void *ctx, const struct call_record *rec),
		     void *ctx)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_CALLS_OF, &st);
	if (err)
		goto out;
	bind_i64(st, 1, day, &rc);
	bind_i64(st, 2, agent_id, &rc);
	err = rc == SQLITE_OK ? calls_iter(c, st, fn, ctx) : cat_err(c, rc);
out:
	stmt_put(c, ST_CALLS_OF, st);
	return err;
}

int catalog_calls_list(struct catalog *c, int32_t day, const char *agent,
		       int (*fn)(void *ctx, const struct call_record *rec),
		       void *ctx)
{
	sqlite3_stmt *st = NULL;
	enum stmt_id id;
	int err, rc = SQLITE_OK;

	/* One statement per filter combination, so each can use its index
	 * rather than an OR that defeats the planner. */
	if (day >= 0)
		id = agent ? ST_CALLS_DAY_AGENT : ST_CALLS_DAY;
	else
		id = agent ? ST_CALLS_AGENT : ST_CALLS_ALL;
	err = stmt_get(c, id, &st);
	if (err)
		goto out;
	if (day >= 0)
		bind_i64(st, 1, day, &rc);
	if (agent)
		bind_text(st, 2, agent, &rc);
	err = rc == SQLITE_OK ? calls_iter(c, st, fn, ctx) : cat_err(c, rc);
out:
	stmt_put(c, id, st);
	return err;
}

int catalog_calls_by_number(struct catalog *c,
			    const unsigned char hash[CALL_NUMBER_HASH_LEN],
			    int (*fn)(void *ctx,
				      const struct call_record *rec),
			    void *ctx)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_CALLS_BY_NUMBER, &st);
	if (err)
		goto out;
	bind_blob(st, 1, hash, CALL_NUMBER_HASH_LEN, &rc);
	err = rc == SQLITE_OK ? calls_iter(c, st, fn, ctx) : cat_err(c, rc);
out:
	stmt_put(c, ST_CALLS_BY_NUMBER, st);
	return err;
}

int catalog_counts(struct catalog *c, uint64_t *calls, uint64_t *bytes)
{
	sqlite3_stmt *st = NULL;
	int64_t n, b;
	int err;

	/* Kept by triggers on calls, so statfs does not scan the table; one
	 * statement reads both from one snapshot. */
	err = stmt_get(c, ST_COUNTS, &st);
	if (!err)
		err = step_row(c, st);
	if (!err) {
		n = sqlite3_column_int64(st, 0);
		b = sqlite3_column_int64(st, 1);
		*calls = n < 0 ? 0 : (uint64_t)n;
		*bytes = b < 0 ? 0 : (uint64_t)b;
	}
	stmt_put(c, ST_COUNTS, st);
	return err;
}

/* --- audit trail ------------------------------------------------------- */

int catalog_audit_head(struct catalog *c, uint64_t *seq,
		       unsigned char mac[32])
{
	sqlite3_stmt *st = NULL;
	int64_t v;
	int err;

	err = stmt_get(c, ST_AUDIT_HEAD, &st);
	if (!err)
		err = step_row(c, st);
	if (!err) {
		v = sqlite3_column_int64(st, 0);
		err = v < 0 ? EIO : col_blob(st, 1, mac, 32);
		*seq = (uint64_t)v;
	}
	stmt_put(c, ST_AUDIT_HEAD, st);
	/* A missing head row is damage, not an empty trail. */
	return err == ENOENT ? EIO : err;
}

int catalog_audit_insert(struct catalog *c, const struct catalog_audit *a)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	if (a->seq == 0 || a->seq >= INT64_MAX || a->call_num >= INT64_MAX ||
	    !str_fits(a->login, sizeof a->login) ||
	    !str_ok(a->roles, sizeof a->roles) ||
	    !str_ok(a->action, sizeof a->action) ||
	    !str_ok(a->outcome, sizeof a->outcome) ||
	    !str_fits(a->detail, sizeof a->detail))
		return EINVAL;
	err = stmt_get(c, ST_AUDIT_INSERT, &st);
	if (err)
		goto out;
	bind_i64(st, 1, (int64_t)a->seq, &rc);
	bind_i64(st, 2, a->at_ms, &rc);
	bind_i64(st, 3, a->uid, &rc);
	bind_text(st, 4, a->login, &rc);
	bind_text(st, 5, a->roles, &rc);
	bind_text(st, 6, a->action, &rc);
	bind_i64(st, 7, (int64_t)a->call_num, &rc);
	bind_text(st, 8, a->outcome, &rc);
	bind_text(st, 9, a->detail, &rc);
	bind_blob(st, 10, a->mac, sizeof a->mac, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
out:
	stmt_put(c, ST_AUDIT_INSERT, st);
	if (err)
		return err;

	rc = SQLITE_OK;
	err = stmt_get(c, ST_AUDIT_HEAD_SET, &st);
	if (err)
		return err;
	bind_i64(st, 1, (int64_t)a->seq, &rc);
	bind_blob(st, 2, a->mac, sizeof a->mac, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
	stmt_put(c, ST_AUDIT_HEAD_SET, st);
	return err;
}

int catalog_audit_list(struct catalog *c,
		       const struct catalog_audit_filter *f,
		       int (*fn)(void *ctx, const struct catalog_audit *a),
		       void *ctx)
{
	sqlite3_stmt *st = NULL;
	struct catalog_audit a;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_AUDIT_LIST, &st);
	if (err)
		return err;
	bind_i64(st, 1, f ? f->since_ms : INT64_MIN, &rc);
	if (f && f->login)
		bind_text(st, 2, f->login, &rc);
	bind_i64(st, 3, f ? (int64_t)f->call_num : 0, &rc);
	if (rc != SQLITE_OK) {
		err = cat_err(c, rc);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		int64_t call = sqlite3_column_int64(st, 6);

		memset(&a, 0, sizeof a);
		a.seq = seq < 0 ? 0 : (uint64_t)seq;
		a.at_ms = sqlite3_column_int64(st, 1);
		a.uid = (uint32_t)sqlite3_column_int64(st, 2);
		a.call_num = call < 0 ? 0 : (uint64_t)call;
		/* A damaged row is handed on as it is (truncated text, zero
		 * MAC): verification then reports it rather than stopping. */
		col_text(st, 3, a.login, sizeof a.login);
		col_text(st, 4, a.roles, sizeof a.roles);
		col_text(st, 5, a.action, sizeof a.action);
		col_text(st, 7, a.outcome, sizeof a.outcome);
		col_text(st, 8, a.detail, sizeof a.detail);
		col_blob(st, 9, a.mac, sizeof a.mac);
		err = fn(ctx, &a);
		if (err)
			goto out;
	}
	err = cat_err(c, rc);
out:
	stmt_put(c, ST_AUDIT_LIST, st);
	return err;
}

/* --- retention ---------------------------------------------------------- */

int catalog_calls_started_by(struct catalog *c, int64_t start_ms,
			     int (*fn)(void *ctx, const struct call_record *rec),
			     void *ctx)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, ST_CALLS_BEFORE, &st);
	if (err)
		return err;
	bind_i64(st, 1, start_ms, &rc);
	err = rc == SQLITE_OK ? calls_iter(c, st, fn, ctx) : cat_err(c, rc);
	stmt_put(c, ST_CALLS_BEFORE, st);
	return err;
}

static int delete_by_key(struct catalog *c, enum stmt_id id, int64_t key)
{
	sqlite3_stmt *st = NULL;
	int err, rc = SQLITE_OK;

	err = stmt_get(c, id, &st);
	if (err)
		return err;
	bind_i64(st, 1, key, &rc);
	err = rc == SQLITE_OK ? step_done(c, st) : cat_err(c, rc);
	if (!err && sqlite3_changes(c->db) == 0)
		err = ENOENT;
	stmt_put(c, id, st);
	return err;
}

int catalog_call_purge_ks(struct catalog *c, uint64_t num)
{
	int err, own;

	if (num == 0 || num >= INT64_MAX)
		return EINVAL;
	err = op_begin(c, &own);
	if (err)
		return err;
	/* Most calls have none of these rows. */
	err = exec_key(c, ST_CALL_KEY_DEL, NULL, (int64_t)num, 0);
	if (!err)
		err = exec_key(c, ST_RESTRICT_DEL, NULL, (int64_t)num, 0);
	if (!err)
		err = exec_key(c, ST_NOTES_DEL, NULL, (int64_t)num, 0);
	return op_end(c, own, err);
}

int catalog_call_delete(struct catalog *c, uint64_t num)
{
	int err, own;

	if (num == 0 || num >= INT64_MAX)
		return EINVAL;
	err = op_begin(c, &own);
	if (err)
		return err;
	err = delete_by_key(c, ST_CALL_DELETE, (int64_t)num);
	if (!err)
		err = catalog_call_purge_ks(c, num);
	return op_end(c, own, err);
}

int catalog_epoch_destroy(struct catalog *c, int32_t day)
{
	return delete_by_key(c, ST_EPOCH_DESTROY, day);
}

int catalog_checkpoint(struct catalog *c)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	err = stmt_get(c, ST_CHECKPOINT, &st);
	if (err)
		return err;
	/* The checkpoint holds the write lock while it waits for readers to
	 * leave the WAL: with the usual 5 s wait, every audited open of the
	 * mount would stall behind it. Give up soon instead (EBUSY); the
	 * caller tries again later. */
	set_busy(c, CATALOG_CHECKPOINT_BUSY_MS);
	rc = sqlite3_step(st);
	set_busy(c, CATALOG_BUSY_MS);
	/* busy = 1 in the first column: a reader kept part of the WAL. */
	if (rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0)
		err = EBUSY;
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = cat_err(c, rc);
	stmt_put(c, ST_CHECKPOINT, st);
	return err;
}

/* --- status ------------------------------------------------------------ */

/* One-shot queries of `callvault status`, prepared per call rather than
 * cached: a status run issues each once. */
static int summary_int(struct catalog *c, const char *sql, int64_t now_ms,
		       int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc, err;

	rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return cat_err(c, rc);
	/* Only the queries that speak of restrictions have a parameter. */
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, now_ms);
	err = step_row(c, st);
	if (err == ENOENT) {
		*out = -1;
		err = 0;
	} else if (!err) {
		*out = sqlite3_column_type(st, 0) == SQLITE_NULL ?
			       -1 : sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return err;
}

int catalog_summary(struct catalog *c, int64_t now_ms,
		    struct catalog_summary *out)
{
	int64_t days = 0, held = 0;
	int err;

	memset(out, 0, sizeof *out);
	err = catalog_read_begin(c);
	if (err)
		return err;
	err = catalog_counts(c, &out->calls, &out->bytes);
	if (!err)
		err = summary_int(c, "SELECT COUNT(DISTINCT day) FROM calls",
				  now_ms, &days);
	if (!err)
		err = summary_int(c, "SELECT COUNT(*) FROM calls"
				  " WHERE restricted_until > ?1", now_ms,
				  &held);
	if (!err)
		err = summary_int(c, "SELECT start_ms FROM calls"
				  " ORDER BY start_ms LIMIT 1", now_ms,
				  &out->oldest_start_ms);
	if (!err)
		err = summary_int(c, "SELECT start_ms FROM calls"
				  " WHERE restricted_until <= ?1"
				  " ORDER BY start_ms LIMIT 1",
				  now_ms, &out->oldest_free_start_ms);
	catalog_read_end(c);
	out->days = days < 0 ? 0 : (uint64_t)days;
	out->restricted = held < 0 ? 0 : (uint64_t)held;
	return err;
}

int catalog_audit_last(struct catalog *c, const char *const *actions,
		       struct catalog_audit *out)
{
	char sql[512];
	sqlite3_stmt *st = NULL;
	size_t n = 0, off;
	int rc, err;

	off = (size_t)snprintf(sql, sizeof sql,
			       "SELECT seq, at_ms, uid, login, roles, action,"
			       " call_num, outcome, detail FROM audit"
			       " WHERE action IN (");
	for (; actions[n]; n++) {
		if (off + 8 >= sizeof sql)
			return EINVAL;
		off += (size_t)snprintf(sql + off, sizeof sql - off, "%s?%zu",
					n ? ", " : "", n + 1);
	}
	if (n == 0 || off + 40 >= sizeof sql)
		return EINVAL;
	snprintf(sql + off, sizeof sql - off, ") ORDER BY seq DESC LIMIT 1");
	rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return cat_err(c, rc);
	for (size_t i = 0; i < n; i++)
		sqlite3_bind_text(st, (int)i + 1, actions[i], -1,
				  SQLITE_STATIC);
	memset(out, 0, sizeof *out);
	err = step_row(c, st);
	if (!err) {
		out->seq = (uint64_t)sqlite3_column_int64(st, 0);
		out->at_ms = sqlite3_column_int64(st, 1);
		out->uid = (uint32_t)sqlite3_column_int64(st, 2);
		col_text(st, 3, out->login, sizeof out->login);
		col_text(st, 4, out->roles, sizeof out->roles);
		col_text(st, 5, out->action, sizeof out->action);
		out->call_num = (uint64_t)sqlite3_column_int64(st, 6);
		col_text(st, 7, out->outcome, sizeof out->outcome);
		col_text(st, 8, out->detail, sizeof out->detail);
	}
	sqlite3_finalize(st);
	return err;
}

/* --- verify ------------------------------------------------------------ */

static const struct {
	const char *table;
	const char *sql; /* rows as (name, 1 if the MAC matches) */
} row_checks[] = {
	{ "calls", "SELECT printf('c-%06d', num), mac IS " CALL_MAC_SQL
		   " FROM calls ORDER BY num" },
	{ "users", "SELECT login, mac IS " USER_MAC_SQL
		   " FROM users ORDER BY login" },
	{ "agents", "SELECT id || ' ' || login, mac IS " AGENT_MAC_SQL
		    " FROM agents ORDER BY id" },
	{ "supervises", "SELECT login || ' supervises ' || team, mac IS "
			SUPERVISES_MAC_SQL " FROM supervises" },
	{ "grants", "SELECT role || ' to gid ' || gid, mac IS " GRANT_MAC_SQL
		    " FROM grants" },
	{ "restrictions", "SELECT printf('c-%06d', num), mac IS "
			  RESTRICTION_MAC_SQL " FROM ks.restrictions" },
	{ "tombstones", "SELECT printf('c-%06d', num), mac IS "
			TOMBSTONE_MAC_SQL " FROM ks.tombstones" },
};

int catalog_verify_rows(struct catalog *c,
			int (*fn)(void *ctx, const char *table,
				  const char *row),
			void *ctx, uint64_t *checked)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	int err, rc;

	*checked = 0;
	err = row_key_ok(c);
	if (!err)
		err = catalog_read_begin(c);
	if (err)
		return err;
	for (i = 0; !err && i < sizeof row_checks / sizeof *row_checks; i++) {
		rc = sqlite3_prepare_v2(c->db, row_checks[i].sql, -1, &st,
					NULL);
		if (rc != SQLITE_OK) {
			err = cat_err(c, rc);
			break;
		}
		while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *row = (const char *)
				sqlite3_column_text(st, 0);

			(*checked)++;
			if (!sqlite3_column_int(st, 1))
				err = fn(ctx, row_checks[i].table,
					 row ? row : "?");
		}
		if (!err)
			err = cat_err(c, rc);
		sqlite3_finalize(st);
	}
	catalog_read_end(c);
	return err;
}
