/* The audit trail: MAC-chained rows in the catalog, and a group-commit
 * writer for the mount. */
#include "callvault/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callvault/bytes.h"
#include "callvault/clock.h"
#include "callvault/log.h"

void audit_roles_string(unsigned roles, char *out, size_t len)
{
	static const enum role order[] = { ROLE_AGENT, ROLE_SUPERVISOR,
					   ROLE_ADMIN, ROLE_BACKUP,
					   ROLE_RECORDER };
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		if (!(roles & order[i]) || used >= len)
			continue;
		used += (size_t)snprintf(out + used, len - used, "%s%s",
					 used ? "+" : "", role_name(order[i]));
	}
	if (!out[0])
		snprintf(out, len, "none");
}

/* MAC of row `a` chained to the previous MAC. Every field counts, the
 * sequence number included, so that rows cannot be moved. */
static void row_mac(const struct keyring *ring, const unsigned char prev[32],
		    const struct catalog_audit *a, unsigned char out[32])
{
	unsigned char seq[8], at[8], uid[8], call[8];
	const struct keys_part parts[] = {
		{ "callvault audit v1", 18 },
		{ prev, 32 },
		{ seq, 8 },
		{ at, 8 },
		{ uid, 8 },
		{ a->login, strlen(a->login) },
		{ a->roles, strlen(a->roles) },
		{ a->action, strlen(a->action) },
		{ call, 8 },
		{ a->outcome, strlen(a->outcome) },
		{ a->detail, strlen(a->detail) },
	};

	le64_put(seq, a->seq);
	le64_put(at, (uint64_t)a->at_ms);
	le64_put(uid, a->uid);
	le64_put(call, a->call_num);
	keys_mac(keys_subkey(ring, KEYS_AUDIT), parts,
		 sizeof parts / sizeof parts[0], out);
}

static void fill_row(struct catalog_audit *a, const struct audit_event *ev,
		     int64_t now)
{
	memset(a, 0, sizeof *a);
	a->at_ms = now;
	a->uid = ev->uid;
	snprintf(a->login, sizeof a->login, "%s", ev->login ? ev->login : "");
	audit_roles_string(ev->roles, a->roles, sizeof a->roles);
	snprintf(a->action, sizeof a->action, "%s", ev->action);
	a->call_num = ev->call_num;
	snprintf(a->outcome, sizeof a->outcome, "%s", ev->outcome);
	snprintf(a->detail, sizeof a->detail, "%s",
		 ev->detail ? ev->detail : "");
}

/* Appends rows in the caller's open transaction. */
static int append_rows(struct catalog *c, const struct keyring *ring,
		       struct catalog_audit *rows, size_t n)
{
	unsigned char mac[32];
	uint64_t seq;
	int rc = catalog_audit_head(c, &seq, mac);

	for (size_t i = 0; !rc && i < n; i++) {
		rows[i].seq = ++seq;
		row_mac(ring, mac, &rows[i], rows[i].mac);
		memcpy(mac, rows[i].mac, sizeof mac);
		rc = catalog_audit_insert(c, &rows[i]);
	}
	return rc;
}

int audit_append_in(struct catalog *c, const struct keyring *ring,
		    const struct audit_event *ev, size_t n)
{
	struct catalog_audit *rows = calloc(n ? n : 1, sizeof *rows);
	int64_t now = clock_now_ms();
	int rc;

	if (!rows)
		return ENOMEM;
	for (size_t i = 0; i < n; i++)
		fill_row(&rows[i], &ev[i], now);
	rc = append_rows(c, ring, rows, n);
	free(rows);
	return rc;
}

int audit_append(struct catalog *c, const struct keyring *ring,
		 const struct audit_event *ev, size_t n)
{
	struct catalog_audit *rows = calloc(n ? n : 1, sizeof *rows);
	int64_t now = clock_now_ms();
	int rc;

	if (!rows)
		return ENOMEM;
	for (size_t i = 0; i < n; i++)
		fill_row(&rows[i], &ev[i], now);
	rc = catalog_begin(c);
	if (!rc) {
		rc = append_rows(c, ring, rows, n);
		if (rc)
			catalog_rollback(c);
		else
			rc = catalog_commit(c);
	}
	if (rc)
		log_warnx("audit: cannot append: %s", strerror(rc));
	free(rows);
	return rc;
}

/* --- verification ----------------------------------------------------- */

struct verify_ctx {
	const struct keyring *ring;
	unsigned char mac[32];
	uint64_t seq;
	int bad;
	void (*report)(void *ctx, uint64_t seq, const char *why);
	void *ctx;
};

static int verify_row(void *ctx, const struct catalog_audit *a)
{
	struct verify_ctx *v = ctx;
	unsigned char want[32];

	if (a->seq != v->seq + 1) {
		v->bad = 1;
		if (v->report)
			v->report(v->ctx, a->seq < v->seq + 1 ? a->seq : v->seq + 1,
				  "entry missing or out of order");
		return 1;
	}
	row_mac(v->ring, v->mac, a, want);
	if (!keys_mac_equal(want, a->mac)) {
		v->bad = 1;
		if (v->report)
			v->report(v->ctx, a->seq,
				  "entry altered, inserted or moved");
		return 1;
	}
	memcpy(v->mac, a->mac, sizeof v->mac);
	v->seq = a->seq;
	return 0;
}

int audit_verify(struct catalog *c, const struct keyring *ring,
		 void (*bad)(void *ctx, uint64_t seq, const char *why),
		 void *ctx)
{
	struct verify_ctx v = { .ring = ring, .report = bad, .ctx = ctx };
	unsigned char head_mac[32];
	uint64_t head_seq;
	int rc;

	rc = catalog_audit_list(c, NULL, verify_row, &v);
	if (v.bad)
		return EBADMSG;
	if (rc)
		return rc;
	rc = catalog_audit_head(c, &head_seq, head_mac);
	if (rc)
		return rc;
	if (head_seq != v.seq || !keys_mac_equal(head_mac, v.mac)) {
		if (bad)
			bad(ctx, head_seq > v.seq ? v.seq + 1 : 0,
			    head_seq > v.seq ? "newest entries removed" :
					       "chain head does not match");
		return EBADMSG;
	}
	return 0;
}

/* --- group commit ----------------------------------------------------- */

struct pending {
	struct catalog_audit row;
	int waited;   /* a writer waits for `done` */
	int done, rc;
	struct pending *next;
};

struct audit_log {
	struct catalog *c;           /* the writer thread's own */
	const struct keyring *ring;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;         /* work queued or stopping */
	pthread_cond_t done;         /* a batch was written */
	struct pending *head, *tail; /* protected by lock */
	int stopping;                /* protected by lock */
	uint64_t written;            /* rows since the last head log line */
};

static void write_batch(struct audit_log *al, struct pending *batch)
{
	struct catalog_audit *rows;
	size_t n = 0, i = 0;
	int rc;

	for (struct pending *p = batch; p; p = p->next)
		n++;
	rows = calloc(n, sizeof *rows);
	if (!rows) {
		rc = ENOMEM;
		goto report;
	}
	for (struct pending *p = batch; p; p = p->next)
		rows[i++] = p->row;
	rc = catalog_begin(al->c);
	if (!rc) {
		rc = append_rows(al->c, al->ring, rows, n);
		if (rc)
			catalog_rollback(al->c);
		else
			rc = catalog_commit(al->c);
	}
	if (rc) {
		log_warnx("audit: cannot write %zu entries: %s", n,
			  strerror(rc));
	} else {
		al->written += n;
		/* The head in syslog lets an outside copy detect a trail
		 * cut back to an earlier state. */
		if (al->written >= 1000) {
			char hex[17];
			for (int b = 0; b < 8; b++)
				snprintf(hex + 2 * b, 3, "%02x",
					 rows[n - 1].mac[b]);
			log_info("audit head: entry %" PRIu64 " mac %s",
				 rows[n - 1].seq, hex);
			al->written = 0;
		}
	}
	free(rows);
report:
	pthread_mutex_lock(&al->lock);
	for (struct pending *p = batch, *next; p; p = next) {
		next = p->next;
		if (p->waited) {
			p->rc = rc;
			p->done = 1;
		} else {
			free(p);
		}
	}
	pthread_cond_broadcast(&al->done);
	pthread_mutex_unlock(&al->lock);
}

static void *writer_main(void *arg)
{
	struct audit_log *al = arg;

	pthread_mutex_lock(&al->lock);
	for (;;) {
		struct pending *batch;

		while (!al->head && !al->stopping)
			pthread_cond_wait(&al->wake, &al->lock);
		if (!al->head && al->stopping)
			break;
		batch = al->head;
		al->head = al->tail = NULL;
		pthread_mutex_unlock(&al->lock);
		write_batch(al, batch);
		pthread_mutex_lock(&al->lock);
	}
	pthread_mutex_unlock(&al->lock);
	return NULL;
}

int audit_log_start(const char *catalog_path, const struct keyring *ring,
		    struct audit_log **out)
{
	struct audit_log *al = calloc(1, sizeof *al);
	int rc;

	*out = NULL;
	if (!al)
		return ENOMEM;
	rc = catalog_open(catalog_path, 0, &al->c);
	if (rc) {
		free(al);
		return rc;
	}
	al->ring = ring;
	pthread_mutex_init(&al->lock, NULL);
	pthread_cond_init(&al->wake, NULL);
	pthread_cond_init(&al->done, NULL);
	rc = pthread_create(&al->thread, NULL, writer_main, al);
	if (rc) {
		catalog_close(al->c);
		pthread_mutex_destroy(&al->lock);
		pthread_cond_destroy(&al->wake);
		pthread_cond_destroy(&al->done);
		free(al);
		return rc;
	}
	*out = al;
	return 0;
}

static struct pending *enqueue(struct audit_log *al,
			       const struct audit_event *ev, int waited)
{
	struct pending *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	fill_row(&p->row, ev, clock_now_ms());
	p->waited = waited;
	pthread_mutex_lock(&al->lock);
	if (al->tail)
		al->tail->next = p;
	else
		al->head = p;
	al->tail = p;
	pthread_cond_signal(&al->wake);
	return p; /* lock held */
}

int audit_log_write(struct audit_log *al, const struct audit_event *ev)
{
	struct pending *p = enqueue(al, ev, 1);
	int rc;

	if (!p)
		return ENOMEM;
	while (!p->done)
		pthread_cond_wait(&al->done, &al->lock);
	pthread_mutex_unlock(&al->lock);
	rc = p->rc;
	free(p);
	return rc;
}

void audit_log_post(struct audit_log *al, const struct audit_event *ev)
{
	struct pending *p = enqueue(al, ev, 0);

	if (!p) {
		log_warnx("audit: out of memory; entry for uid %u (%s) lost",
			  (unsigned)ev->uid, ev->action);
		return;
	}
	pthread_mutex_unlock(&al->lock);
}

void audit_log_stop(struct audit_log *al)
{
	if (!al)
		return;
	pthread_mutex_lock(&al->lock);
	al->stopping = 1;
	pthread_cond_signal(&al->wake);
	pthread_mutex_unlock(&al->lock);
	pthread_join(al->thread, NULL);
	catalog_close(al->c);
	pthread_mutex_destroy(&al->lock);
	pthread_cond_destroy(&al->wake);
	pthread_cond_destroy(&al->done);
	free(al);
}
