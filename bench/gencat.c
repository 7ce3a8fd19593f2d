/* gencat: a real vault with a large synthetic catalog, for benchmarks of
 * what reads the catalog (subject find, listings).
 *
 *   gencat [-n CALLS] [-p POOL] [-d DAYS] [-a AGENTS] VAULT
 *
 * Creates VAULT (and VAULT.key beside it) with vault_create(), AGENTS
 * agents in teams of ten, and CALLS call rows spread evenly over the DAYS
 * days before now, with customer numbers drawn from a pool of POOL
 * numbers: pool member k is +35840 followed by the seven digits of
 * 1000000 + k, so a bench can name numbers that have calls (k < POOL).
 * number_hash is the real keyed hash (keys_number_hash), so `callvault
 * subject find` works on the vault as on a real one.
 *
 * Rows only: no blobs and no epoch keys, so nothing can be decrypted
 * (customer_sealed is zero); the rows are inserted through
 * catalog_call_insert() in transactions of BATCH rows. The numbers are
 * drawn from a fixed seed, so every run makes the same catalog. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "callvault/catalog.h"
#include "callvault/clock.h"
#include "callvault/keys.h"
#include "callvault/log.h"
#include "callvault/meta.h"
#include "callvault/vault.h"

#define BATCH 50000
#define TEAM_SIZE 10
#define MAX_AGENTS 10000
#define UID_AGENT0 40000
#define DAY_MS 86400000LL

struct agent {
	uint32_t id, uid;
	char login[CALL_LOGIN_LEN];
	char name[CALL_NAME_LEN];
};

/* xorshift64*: fast, and the same sequence on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_count(const char *s, long max, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || end == s || *end || n < 1 || n > max)
		return EINVAL;
	*out = n;
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: gencat [-n CALLS] [-p POOL] [-d DAYS] "
			"[-a AGENTS] VAULT\n");
	return 2;
}

/* Teams team01.., agents agent0001.. (uids from UID_AGENT0). */
static int make_agents(struct catalog *c, struct agent *ag, long n)
{
	struct catalog_user u;
	char team[CATALOG_TEAM_LEN];
	int rc = catalog_begin(c);

	if (rc)
		return rc;
	for (long i = 0; i < n && !rc; i++) {
		snprintf(team, sizeof team, "team%02ld", i / TEAM_SIZE + 1);
		if (i % TEAM_SIZE == 0)
			rc = catalog_team_add(c, team);
		memset(&u, 0, sizeof u);
		snprintf(u.login, sizeof u.login, "agent%04ld", i + 1);
		snprintf(u.name, sizeof u.name, "Bench Agent %ld", i + 1);
		u.uid = (uint32_t)(UID_AGENT0 + i);
		u.role = ROLE_AGENT;
		snprintf(u.team, sizeof u.team, "%s", team);
		u.trained_until = -1;
		if (!rc)
			rc = catalog_user_add(c, &u);
		if (!rc)
			rc = catalog_user_get(c, u.login, &u);
		ag[i].id = u.agent_id;
		ag[i].uid = u.uid;
		memcpy(ag[i].login, u.login, sizeof ag[i].login);
		memcpy(ag[i].name, u.name, sizeof ag[i].name);
	}
	if (rc) {
		catalog_rollback(c);
		return rc;
	}
	return catalog_commit(c);
}

/* Call `num` of `calls`: in call-number order over the span, as a real
 * register fills up; a random agent and a number from the pool. */
static void make_call(struct call_record *rec, uint64_t num, long calls,
		      int64_t t0, int64_t span, const struct agent *ag,
		      long nagents, long pool, const struct keyring *ring)
{
	const struct agent *a = &ag[rng() % (uint64_t)nagents];
	uint64_t k = rng() % (uint64_t)pool;
	char e164[CALL_NUMBER_LEN], last3[4];

	memset(rec, 0, sizeof *rec);
	rec->num = num;
	rec->start_ms = t0 + (int64_t)((double)span * (double)(num - 1) /
				       (double)calls) +
			(int64_t)(rng() % 1000);
	rec->duration_ms = 30000 + (int64_t)(rng() % 870000);
	rec->end_ms = rec->start_ms + rec->duration_ms;
	rec->day = clock_local_day(rec->start_ms);
	snprintf(rec->direction, sizeof rec->direction, "%s",
		 rng() % 5 ? "inbound" : "outbound");
	snprintf(rec->service_number, sizeof rec->service_number,
		 "+35860094320");
	snprintf(e164, sizeof e164, "+35840%07" PRIu64, 1000000 + k);
	meta_number_mask(e164, rec->customer_masked, last3);
	keys_number_hash(ring, e164, rec->number_hash);
	rec->agent_id = a->id;
	memcpy(rec->agent, a->login, sizeof rec->agent);
	memcpy(rec->agent_name, a->name, sizeof rec->agent_name);
	rec->agent_uid = a->uid;
	rec->channels = 1;
	rec->source_rate = 8000;
	rec->size = (uint64_t)rec->duration_ms * 2; /* ~16 kbit/s */
	rec->ingested_ms = rec->end_ms + 1000;
}

int main(int argc, char **argv)
{
	long calls = 1000000, pool = 200000, days = 180, nagents = 200;
	const struct keyring *ring;
	struct vault *v = NULL;
	struct catalog *c;
	struct agent *ag = NULL;
	struct call_record *batch = NULL;
	char err[512] = "";
	int64_t t0, span;
	double start;
	int opt, rc = 0;

	while ((opt = getopt(argc, argv, "n:p:d:a:")) != -1) {
		long *dst = opt == 'n' ? &calls : opt == 'p' ? &pool :
			    opt == 'd' ? &days : opt == 'a' ? &nagents : NULL;
		long max = opt == 'n' ? 100000000L : opt == 'p' ? 9000000L :
			   opt == 'd' ? 3650L : MAX_AGENTS;
		if (!dst || parse_count(optarg, max, dst) != 0)
			return usage();
	}
	if (optind != argc - 1)
		return usage();
	log_init("gencat", 0, LOG_LEVEL_WARN);
	if (keys_init() != 0) {
		fprintf(stderr, "gencat: cannot initialise libsodium\n");
		return 1;
	}
	start = now_s();
	rc = vault_create(argv[optind], NULL, NULL, err, sizeof err);
	if (!rc)
		rc = vault_open(argv[optind], NULL, 0, &v, err, sizeof err);
	if (rc) {
		fprintf(stderr, "gencat: %s\n", *err ? err : strerror(rc));
		return 1;
	}
	c = vault_catalog(v);
	ag = calloc((size_t)nagents, sizeof *ag);
	batch = calloc(BATCH, sizeof *batch);
	if (!c || !ag || !batch) {
		fprintf(stderr, "gencat: cannot open the catalog\n");
		rc = 1;
		goto out;
	}
	/* Bulk load: a page cache that holds the indexes being filled. */
	catalog_set_cache(c, 256);
	rc = make_agents(c, ag, nagents);
	if (rc) {
		fprintf(stderr, "gencat: agents: %s\n", strerror(rc));
		goto out;
	}

	ring = vault_keys(v);
	/* Calls end an hour before now, so none is in the future. */
	span = days * DAY_MS;
	t0 = clock_now_ms() - span - 3600000;
	for (long i = 0; i < calls && !rc; i += BATCH) {
		size_t n = (size_t)(calls - i < BATCH ? calls - i : BATCH);

		for (size_t j = 0; j < n; j++)
			make_call(&batch[j], (uint64_t)i + j + 1, calls, t0,
				  span, ag, nagents, pool, ring);
		/* In call-number order: sorting a batch by number hash
		 * (for the number index) made the table's inserts random
		 * and the whole run twice as slow. */
		rc = catalog_begin(c);
		for (size_t j = 0; j < n && !rc; j++)
			rc = catalog_call_insert(c, &batch[j]);
		if (rc)
			catalog_rollback(c);
		else
			rc = catalog_commit(c);
		if (!rc && (i / BATCH + 1) % 4 == 0)
			fprintf(stderr, "gencat: %ld calls, %.1f s\n",
				i + (long)n, now_s() - start);
	}
	if (!rc)
		rc = catalog_call_num_seen(c, (uint64_t)calls);
	if (rc) {
		fprintf(stderr, "gencat: catalog: %s\n", strerror(rc));
		goto out;
	}
	printf("%ld calls, %ld agents, %ld numbers, %ld days in %.1f s\n",
	       calls, nagents, pool, days, now_s() - start);
out:
	free(batch);
	free(ag);
	vault_close(v);
	return rc ? 1 : 0;
}
