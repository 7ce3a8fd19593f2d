/* gencat: a real vault with a large synthetic catalog, for benchmarks of
 * what reads the catalog (subject find, listings) and of the sweep.
 *
 *   gencat [-n CALLS] [-p POOL] [-d DAYS] [-s DAYS_AGO] [-a AGENTS] [-k]
 *          VAULT
 *
 *   -n, --calls N            call rows (1,000,000)
 *   -p, --pool N             customer numbers they are drawn from (200,000)
 *   -d, --span-days N        days the calls are spread over (180)
 *   -s, --start-days-ago N   the first call starts N days ago (default:
 *                            the calls end an hour before now); more
 *                            than the span, so that all are in the past
 *   -a, --agents N           agents, in teams of ten (200)
 *   -k, --with-keys          each day's key tree, as ingest makes it
 *
 * Creates VAULT (and VAULT.key beside it) with vault_create(), AGENTS
 * agents in teams of ten, and CALLS call rows spread evenly over the span,
 * with customer numbers drawn from a pool of POOL numbers: pool member k
 * is +35840 followed by the seven digits of 1000000 + k, so a bench can
 * name numbers that have calls (k < POOL). number_hash is the real keyed
 * hash (keys_number_hash), so `callvault subject find` works on the vault
 * as on a real one. Calls are numbered 1..CALLS and the vault's next call
 * number follows them, so calls imported later get their own numbers.
 *
 * Rows only: no blobs, and customer_sealed is zero. Without -k there are
 * no epoch keys either, so nothing can be decrypted; with -k each call
 * gets its key with vault_call_key_new() as ingest does, which stores the
 * day's key tree on its first call (so that a sweep has keys to destroy).
 * The rows are inserted through catalog_call_insert() in transactions of
 * BATCH rows. The numbers are drawn from a fixed seed, so every run makes
 * the same catalog. */
#include <errno.h>
#include <getopt.h>
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
			"[-s DAYS_AGO] [-a AGENTS] [-k] VAULT\n");
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

/* With -k: the call's key, as ingest gets it, inside the batch's
 * transaction (the day's tree is stored with the day's first call). The
 * key itself is not needed: there is no blob to seal. */
static int make_key(struct vault *v, struct catalog *c,
		    const struct call_record *rec, struct secret *key)
{
	int rc = vault_call_key_new(v, c, rec, key);

	if (rc)
		fprintf(stderr, "gencat: key of call %" PRIu64 ": %s\n",
			rec->num, strerror(rc));
	return rc;
}

static const struct option long_opts[] = {
	{ "calls", required_argument, NULL, 'n' },
	{ "pool", required_argument, NULL, 'p' },
	{ "span-days", required_argument, NULL, 'd' },
	{ "start-days-ago", required_argument, NULL, 's' },
	{ "agents", required_argument, NULL, 'a' },
	{ "with-keys", no_argument, NULL, 'k' },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	long calls = 1000000, pool = 200000, days = 180, nagents = 200;
	long ago = 0;
	int with_keys = 0;
	struct secret key = { 0 };
	const struct keyring *ring;
	struct vault *v = NULL;
	struct catalog *c;
	struct agent *ag = NULL;
	struct call_record *batch = NULL;
	char err[512] = "";
	int64_t t0, span;
	double start;
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "n:p:d:s:a:k", long_opts,
				  NULL)) != -1) {
		long *dst = opt == 'n' ? &calls : opt == 'p' ? &pool :
			    opt == 'd' ? &days : opt == 's' ? &ago :
			    opt == 'a' ? &nagents : NULL;
		long max = opt == 'n' ? 100000000L : opt == 'p' ? 9000000L :
			   opt == 'd' || opt == 's' ? 3650L : MAX_AGENTS;
		if (opt == 'k') {
			with_keys = 1;
			continue;
		}
		if (!dst || parse_count(optarg, max, dst) != 0)
			return usage();
	}
	if (optind != argc - 1)
		return usage();
	/* Calls of up to 15 minutes that start at most `days` after the
	 * first: with a whole day to spare, none ends in the future. */
	if (ago && ago <= days) {
		fprintf(stderr, "gencat: --start-days-ago must be more than "
				"--span-days\n");
		return usage();
	}
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
	if (with_keys)
		key = keys_secret_new();
	if (!c || !ag || !batch || (with_keys && !key.b)) {
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
	/* By default calls end an hour before now, so none is in the
	 * future. */
	span = days * DAY_MS;
	t0 = ago ? clock_now_ms() - ago * DAY_MS
		 : clock_now_ms() - span - 3600000;
	for (long i = 0; i < calls && !rc; i += BATCH) {
		size_t n = (size_t)(calls - i < BATCH ? calls - i : BATCH);

		for (size_t j = 0; j < n; j++)
			make_call(&batch[j], (uint64_t)i + j + 1, calls, t0,
				  span, ag, nagents, pool, ring);
		/* In call-number order: sorting a batch by number hash
		 * (for the number index) made the table's inserts random
		 * and the whole run twice as slow. */
		rc = catalog_begin(c);
		for (size_t j = 0; j < n && !rc; j++) {
			if (with_keys)
				rc = make_key(v, c, &batch[j], &key);
			if (!rc)
				rc = catalog_call_insert(c, &batch[j]);
		}
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
	printf("%ld calls, %ld agents, %ld numbers, %ld days%s in %.1f s\n",
	       calls, nagents, pool, days, with_keys ? " with key trees" : "",
	       now_s() - start);
out:
	keys_secret_free(&key);
	free(batch);
	free(ag);
	vault_close(v);
	return rc ? 1 : 0;
}
