/* incoming/: pending files written by recorders, and their commit. */
#include "callvault/incoming.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callvault/clock.h"
#include "callvault/ingest.h"
#include "callvault/log.h"
#include "callvault/spool.h"
#include "ingest_int.h"

#define BUCKETS 1024
#define META_MAX (64 * 1024)
/* A daemon crash loses at most this much of what is being written
 * (docs/recorders.md, "Crashes"). */
#define FLUSH_MS 100

/* A pending file or directory. Tree links, opens and refs are protected by
 * incoming->lock; the spool and mtime by the node's own lock, so that
 * writes to different files never wait for each other. Lock order:
 * incoming->lock, then a node's lock. */
struct node {
	uint64_t id;
	struct node *parent;
	char *name;
	int is_dir;
	struct node *children, *sibling; /* a directory's entries */
	struct node *hnext;              /* id hash chain */
	uint32_t uid, gid;
	int linked;  /* reachable from the root */
	int opens;   /* open handles */
	int refs;    /* 1 while linked + 1 per handle + 1 while committing */
	int busy;    /* being committed */
	int closed;  /* its writer closed it after the last write */
	pthread_mutex_t lock;
	struct spool *spool;             /* files; NULL once finished */
	char spool_name[SPOOL_NAME_LEN];
	int64_t mtime_ms;
	int64_t created_ms;
	int64_t flushed_ms; /* the spool's tail was last sealed then */
	/* Committed (as call `num`) or quarantined: handles still open on
	 * it (copies of a descriptor whose close committed it) get ESTALE. */
	int finished;
	uint64_t num;
	/* Being committed as call `commit_num` of `commit_day` (0: not):
	 * written to the label before the commit point, so that recovery
	 * after a crash knows whether the call was stored. Protected by the
	 * node's lock. */
	uint64_t commit_num;
	int32_t commit_day;
	/* Streaming encode of a .wav while it is written (audio_wavstream):
	 * the Ogg Opus made so far goes to a second, derived spool. All
	 * protected by the node's lock. */
	struct incoming *owner;
	struct audio_wavstream *ws;
	int ws_abandoned;  /* not sequential: the commit transcodes */
	int committing;    /* the commit owns ws and out now */
	struct spool *out;
	char out_name[SPOOL_NAME_LEN];
};

struct incoming_handle {
	struct node *n;
	int wrote;   /* written through since opened or last flushed */
	int refused; /* a write after the commit was logged */
};

enum { FINISHED_COMMITTED = 1, FINISHED_QUARANTINED };

struct incoming {
	struct vault *v;
	pthread_mutex_t lock;
	struct node root;
	struct node *hash[BUCKETS];
	uint64_t next_id;
};

static int label_write(struct incoming *in, struct node *n, int durable);
static void stream_drop(struct incoming *in, struct node *n);
static void stream_after_write(struct incoming *in, struct node *n,
			       uint64_t off, size_t len);
static void stream_after_truncate(struct incoming *in, struct node *n,
				  uint64_t size);

static int name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 255 || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch < 0x20 || ch == 0x7f || ch == '/')
			return 0;
	}
	return 1;
}

static struct node *by_id(struct incoming *in, uint64_t id)
{
	if (id == INCOMING_ROOT)
		return &in->root;
	for (struct node *n = in->hash[id % BUCKETS]; n; n = n->hnext)
		if (n->id == id)
			return n->linked ? n : NULL;
	return NULL;
}

static struct node *child(struct node *dir, const char *name)
{
	for (struct node *c = dir->children; c; c = c->sibling)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void attr_of(struct node *n, struct incoming_attr *a)
{
	memset(a, 0, sizeof *a);
	a->id = n->id;
	a->is_dir = n->is_dir;
	a->uid = n->uid;
	a->gid = n->gid;
	pthread_mutex_lock(&n->lock);
	a->mtime_ms = n->mtime_ms;
	if (n->spool)
		a->size = spool_size(n->spool);
	pthread_mutex_unlock(&n->lock);
}

static struct node *node_new(struct incoming *in, struct node *dir,
			     const char *name, int is_dir, uint32_t uid,
			     uint32_t gid)
{
	struct node *n = calloc(1, sizeof *n);

	if (!n)
		return NULL;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return NULL;
	}
	pthread_mutex_init(&n->lock, NULL);
	n->id = ++in->next_id;
	n->parent = dir;
	n->is_dir = is_dir;
	n->uid = uid;
	n->gid = gid;
	n->mtime_ms = clock_now_ms();
	n->created_ms = n->mtime_ms;
	n->owner = in;
	n->linked = 1;
	n->refs = 1;
	n->sibling = dir->children;
	dir->children = n;
	n->hnext = in->hash[n->id % BUCKETS];
	in->hash[n->id % BUCKETS] = n;
	return n;
}

static void node_free(struct incoming *in, struct node *n)
{
	struct node **p = &in->hash[n->id % BUCKETS];

	while (*p && *p != n)
		p = &(*p)->hnext;
	if (*p)
		*p = n->hnext;
	spool_close(n->spool);
	audio_wavstream_free(n->ws);
	spool_close(n->out); /* derived: recovery deletes it */
	pthread_mutex_destroy(&n->lock);
	free(n->name);
	free(n);
}

/* Drops one reference; frees the node when none is left. Called with
 * in->lock held. */
static void node_put(struct incoming *in, struct node *n)
{
	if (--n->refs == 0)
		node_free(in, n);
}

/* Takes the node out of the tree (its data stays until the last handle
 * goes). Called with in->lock held. */
static void node_unlink(struct incoming *in, struct node *n)
{
	struct node **p = &n->parent->children;

	while (*p && *p != n)
		p = &(*p)->sibling;
	if (*p)
		*p = n->sibling;
	n->linked = 0;
	node_put(in, n);
}

/* The file's data went into call `num` (or to quarantine, num 0): later
 * writes through copies of its descriptors are refused. */
static void mark_finished(struct node *n, int how, uint64_t num)
{
	pthread_mutex_lock(&n->lock);
	n->finished = how;
	n->num = num;
	pthread_mutex_unlock(&n->lock);
}

/* Removes a file's spool from disk (discard or commit). */
static void discard_data(struct incoming *in, struct node *n)
{
	pthread_mutex_lock(&n->lock);
	spool_close(n->spool);
	n->spool = NULL;
	if (n->spool_name[0]) {
		int rc = spool_unlink(store_spool_dirfd(vault_store(in->v)),
				      n->spool_name);
		if (rc && rc != ENOENT)
			log_warnx("incoming: %s: cannot remove spool %s: %s",
				  n->name, n->spool_name, strerror(rc));
		store_label_remove(vault_store(in->v), n->spool_name);
		n->spool_name[0] = '\0';
	}
	stream_drop(in, n);
	pthread_mutex_unlock(&n->lock);
}

int incoming_new(struct vault *v, struct incoming **out)
{
	struct incoming *in = calloc(1, sizeof *in);

	if (!in)
		return ENOMEM;
	in->v = v;
	pthread_mutex_init(&in->lock, NULL);
	pthread_mutex_init(&in->root.lock, NULL);
	in->root.id = INCOMING_ROOT;
	in->root.is_dir = 1;
	in->root.linked = 1;
	in->root.refs = 1;
	in->root.name = NULL;
	in->root.mtime_ms = clock_now_ms();
	*out = in;
	return 0;
}

static void free_subtree(struct incoming *in, struct node *dir)
{
	struct node *c = dir->children, *next;

	for (; c; c = next) {
		next = c->sibling;
		if (c->is_dir)
			free_subtree(in, c);
		node_free(in, c);
	}
	dir->children = NULL;
}

void incoming_free(struct incoming *in)
{
	if (!in)
		return;
	/* Pending data stays on disk, sealed; handles that the kernel never
	 * released are the caller's (fs frees them first). */
	free_subtree(in, &in->root);
	for (size_t i = 0; i < BUCKETS; i++) {
		while (in->hash[i]) {
			struct node *n = in->hash[i];
			in->hash[i] = n->hnext;
			spool_close(n->spool);
			pthread_mutex_destroy(&n->lock);
			free(n->name);
			free(n);
		}
	}
	pthread_mutex_destroy(&in->root.lock);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

int incoming_lookup(struct incoming *in, uint64_t dir, const char *name,
		    struct incoming_attr *out)
{
	struct node *d, *n = NULL;

	pthread_mutex_lock(&in->lock);
	d = by_id(in, dir);
	if (d && d->is_dir)
		n = child(d, name);
	if (n)
		attr_of(n, out);
	pthread_mutex_unlock(&in->lock);
	return n ? 0 : ENOENT;
}

int incoming_getattr(struct incoming *in, uint64_t id,
		     struct incoming_attr *out)
{
	struct node *n;

	pthread_mutex_lock(&in->lock);
	n = by_id(in, id);
	if (n)
		attr_of(n, out);
	pthread_mutex_unlock(&in->lock);
	return n ? 0 : ENOENT;
}

/* How deep and how long a path below incoming/ may be: recovery labels
 * and log lines carry the whole path (path_of). */
#define INCOMING_MAX_DEPTH 32
#define INCOMING_PATH_MAX 1024

/* 0 if NAME fits below directory d, else ENAMETOOLONG. */
static int fits_below(const struct node *d, const char *name)
{
	size_t len = strlen(name) + 1;
	int depth = 1;

	for (const struct node *p = d; p && p->name; p = p->parent) {
		len += strlen(p->name) + 1;
		depth++;
	}
	return depth > INCOMING_MAX_DEPTH || len > INCOMING_PATH_MAX ?
		       ENAMETOOLONG : 0;
}

int incoming_mkdir(struct incoming *in, uint64_t dir, const char *name,
		   uint32_t uid, uint32_t gid, struct incoming_attr *out)
{
	struct node *d, *n;
	int rc = 0;

	if (!name_valid(name))
		return EINVAL;
	pthread_mutex_lock(&in->lock);
	d = by_id(in, dir);
	if (!d || !d->is_dir)
		rc = ENOENT;
	else if (child(d, name))
		rc = EEXIST;
	else
		rc = fits_below(d, name);
	if (!rc) {
		n = node_new(in, d, name, 1, uid, gid);
		if (n)
			attr_of(n, out);
		else
			rc = ENOMEM;
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

int incoming_rmdir(struct incoming *in, uint64_t dir, const char *name)
{
	struct node *d, *n = NULL;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	d = by_id(in, dir);
	if (d && d->is_dir)
		n = child(d, name);
	if (!n)
		rc = ENOENT;
	else if (!n->is_dir)
		rc = ENOTDIR;
	else if (n->children)
		rc = ENOTEMPTY;
	else
		node_unlink(in, n);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static struct incoming_handle *handle_new(struct node *n)
{
	struct incoming_handle *h = calloc(1, sizeof *h);

	if (h) {
		h->n = n;
		n->opens++;
		n->refs++;
	}
	return h;
}

int incoming_create(struct incoming *in, uint64_t dir, const char *name,
		    uint32_t uid, uint32_t gid, struct incoming_attr *out,
		    struct incoming_handle **h)
{
	struct node *d, *n = NULL;
	struct spool *sp = NULL;
	char sname[SPOOL_NAME_LEN];
	int rc;

	*h = NULL;
	if (!name_valid(name))
		return EINVAL;
	/* The spool file first, outside the tree lock: it does I/O. */
	rc = spool_create(store_spool_dirfd(vault_store(in->v)),
			  vault_keys(in->v), &sp, sname);
	if (rc) {
		log_warnx("incoming: %s: cannot create a spool file: %s", name,
			  strerror(rc));
		return rc;
	}
	pthread_mutex_lock(&in->lock);
	d = by_id(in, dir);
	if (!d || !d->is_dir)
		rc = ENOENT;
	else if (child(d, name))
		rc = EEXIST;
	else
		rc = fits_below(d, name);
	if (!rc && !(n = node_new(in, d, name, 0, uid, gid)))
		rc = ENOMEM;
	if (!rc) {
		n->spool = sp;
		memcpy(n->spool_name, sname, sizeof sname);
		sp = NULL;
		pthread_mutex_lock(&n->lock);
		label_write(in, n, 0);
		pthread_mutex_unlock(&n->lock);
		*h = handle_new(n);
		if (!*h)
			rc = ENOMEM;
		else
			attr_of(n, out);
	}
	pthread_mutex_unlock(&in->lock);
	if (sp) {
		spool_close(sp);
		spool_unlink(store_spool_dirfd(vault_store(in->v)), sname);
	}
	return rc;
}

int incoming_open(struct incoming *in, uint64_t id, int truncate,
		  struct incoming_handle **h)
{
	struct node *n;
	int rc = 0;

	*h = NULL;
	pthread_mutex_lock(&in->lock);
	n = by_id(in, id);
	if (!n)
		rc = ENOENT;
	else if (n->is_dir)
		rc = EISDIR;
	else if (n->busy || !n->spool)
		rc = EBUSY;
	if (!rc && truncate) {
		pthread_mutex_lock(&n->lock);
		rc = spool_truncate(n->spool, 0);
		if (!rc)
			stream_after_truncate(in, n, 0);
		n->mtime_ms = clock_now_ms();
		pthread_mutex_unlock(&n->lock);
	}
	if (!rc && !(*h = handle_new(n)))
		rc = ENOMEM;
	pthread_mutex_unlock(&in->lock);
	return rc;
}

ssize_t incoming_write(struct incoming *in, struct incoming_handle *h,
		       const void *buf, size_t len, uint64_t off)
{
	struct node *n = h->n;
	ssize_t r;

	pthread_mutex_lock(&n->lock);
	if (n->finished || n->committing) {
		/* Another copy of this descriptor (dup, fork) was closed and
		 * its close committed or rejected the file, or is doing so
		 * now: these bytes have nowhere to go, and the writer must
		 * know. */
		if (!h->refused) {
			if (!n->finished)
				log_warnx("incoming: %s: write refused: the "
					  "close of another copy of the "
					  "descriptor is committing it", n->name);
			else if (n->finished == FINISHED_COMMITTED)
				log_warnx("incoming: %s: write refused: the call "
					  "was committed as c-%06" PRIu64 " at "
					  "the close of another copy of the "
					  "descriptor", n->name, n->num);
			else
				log_warnx("incoming: %s: write refused: the file "
					  "was quarantined at the close of "
					  "another copy of the descriptor",
					  n->name);
			h->refused = 1;
		}
		r = -ESTALE;
	} else if (!n->spool) {
		r = -EIO; /* discarded (unlinked) while open */
	} else {
		if (n->closed) {
			/* Written again: until the next close, recovery must
			 * not take it as complete. */
			n->closed = 0;
			label_write(in, n, 0);
		}
		r = spool_pwrite(n->spool, buf, len, off);
		n->mtime_ms = clock_now_ms();
		/* What was written should outlive a crash of the daemon
		 * (recovery quarantines it, sealed), but sealing the spool's
		 * tail block and header on every 20 ms write of a live
		 * recorder costs more than the rest of the write: seal at
		 * most every FLUSH_MS. Full blocks are sealed as the writer
		 * moves on; close() syncs everything. */
		if (r > 0 && n->mtime_ms - n->flushed_ms >= FLUSH_MS) {
			int err = spool_flush(n->spool);
			if (err)
				r = -err;
			else
				n->flushed_ms = n->mtime_ms;
		}
		if (r > 0)
			stream_after_write(in, n, off, (size_t)r);
		if (r >= 0)
			h->wrote = 1;
	}
	pthread_mutex_unlock(&n->lock);
	return r;
}

ssize_t incoming_read(struct incoming *in, struct incoming_handle *h,
		      void *buf, size_t len, uint64_t off)
{
	struct node *n = h->n;
	ssize_t r;

	(void)in;
	pthread_mutex_lock(&n->lock);
	if (n->finished)
		r = -ESTALE;
	else
		r = n->spool ? spool_pread(n->spool, buf, len, off) : -EIO;
	pthread_mutex_unlock(&n->lock);
	return r;
}

int incoming_truncate(struct incoming *in, uint64_t id, uint64_t size)
{
	struct node *n;
	int rc;

	pthread_mutex_lock(&in->lock);
	n = by_id(in, id);
	if (!n) {
		rc = ENOENT;
	} else if (n->is_dir) {
		rc = EISDIR;
	} else {
		pthread_mutex_lock(&n->lock);
		rc = n->spool ? spool_truncate(n->spool, size) : EBUSY;
		if (!rc)
			stream_after_truncate(in, n, size);
		n->mtime_ms = clock_now_ms();
		pthread_mutex_unlock(&n->lock);
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

/* --- pairing and commit ----------------------------------------------- */

enum part { PART_NONE, PART_AUDIO, PART_META };

/* "x.wav" -> PART_AUDIO, stem length 1. */
static enum part part_of(const char *name, size_t *stem)
{
	const char *dot = strrchr(name, '.');

	if (!dot || dot == name)
		return PART_NONE;
	*stem = (size_t)(dot - name);
	if (strcmp(dot, ".wav") == 0 || strcmp(dot, ".opus") == 0)
		return PART_AUDIO;
	if (strcmp(dot, ".json") == 0)
		return PART_META;
	return PART_NONE;
}

/* The other half of n's pair, if present in the same directory. */
static struct node *partner(struct node *n, enum part *which)
{
	size_t stem, cstem;
	enum part p = part_of(n->name, &stem);

	*which = p;
	if (p == PART_NONE)
		return NULL;
	for (struct node *c = n->parent->children; c; c = c->sibling) {
		enum part cp;
		if (c == n || c->is_dir)
			continue;
		cp = part_of(c->name, &cstem);
		if (cp != PART_NONE && cp != p && cstem == stem &&
		    strncmp(c->name, n->name, stem) == 0)
			return c;
	}
	return NULL;
}

/* "incoming/a/b/x.wav" for log lines. */
static void path_of(const struct node *n, char *out, size_t len)
{
	const struct node *chain[64];
	int depth = 0;
	size_t used;

	for (const struct node *p = n; p && p->name && depth < 64; p = p->parent)
		chain[depth++] = p;
	used = (size_t)snprintf(out, len, "incoming");
	while (depth-- > 0 && used < len)
		used += (size_t)snprintf(out + used, len - used, "/%s",
					 chain[depth]->name);
}

/* --- labels: what recovery needs to know of a spool file -------------- */

#define LABEL_MAX 8192
#define LABEL_MAGIC "cvlabel1"

/* "a/b/x.wav": the path below incoming/. */
static void rel_path(const struct node *n, char *out, size_t len)
{
	char full[4096];
	const char *p;

	path_of(n, full, sizeof full);
	p = strchr(full, '/');
	snprintf(out, len, "%s", p ? p + 1 : "");
}

static void label_ad(const char *spool_name, unsigned char *ad, size_t *len)
{
	*len = strlen(spool_name);
	memcpy(ad, spool_name, *len);
}

/* `closed` in a label: 0 being written, 1 closed by its writer,
 * LABEL_DERIVED made by callvault from another spool (recovery deletes
 * it: the source is still there). */
#define LABEL_DERIVED 2

static int label_write_raw(struct incoming *in, const char *spool_name,
			   uint32_t uid, uint32_t gid, int closed,
			   int64_t created_ms, uint64_t commit_num,
			   int32_t commit_day, const char *path, int durable)
{
	char text[LABEL_MAX / 2], commit[48] = "";
	unsigned char *sealed, ad[SPOOL_NAME_LEN];
	size_t len, adlen;
	int rc;

	/* Labels without a commit in progress keep the first format. */
	if (commit_num)
		snprintf(commit, sizeof commit, " %" PRIu64 " %" PRId32,
			 commit_num, commit_day);
	len = (size_t)snprintf(text, sizeof text, LABEL_MAGIC "\n%u %u %d %lld%s\n%s",
			       (unsigned)uid, (unsigned)gid, closed,
			       (long long)created_ms, commit, path);
	if (len >= sizeof text)
		return ENAMETOOLONG;
	sealed = malloc(len + KEYS_SEAL_OVERHEAD);
	if (!sealed)
		return ENOMEM;
	label_ad(spool_name, ad, &adlen);
	rc = keys_seal(keys_subkey(vault_keys(in->v), KEYS_SPOOL), ad, adlen,
		       text, len, sealed);
	if (!rc)
		rc = store_label_write(vault_store(in->v), spool_name, sealed,
				       len + KEYS_SEAL_OVERHEAD, durable);
	explicit_bzero(text, sizeof text);
	free(sealed);
	if (rc)
		log_warnx("incoming: cannot write the label of %s: %s",
			  spool_name, strerror(rc));
	return rc;
}

/* Seals and writes n's label. Called with n's lock held. */
static int label_write(struct incoming *in, struct node *n, int durable)
{
	char path[4096];

	if (!n->spool_name[0])
		return 0;
	rel_path(n, path, sizeof path);
	return label_write_raw(in, n->spool_name, n->uid, n->gid, n->closed,
			       n->created_ms, n->commit_num, n->commit_day,
			       path, durable);
}

struct label {
	uint32_t uid, gid;
	int closed;
	int64_t created_ms;
	uint64_t commit_num; /* 0: no commit was in progress */
	int32_t commit_day;
	char path[4096];
};

static int label_read(struct incoming *in, const char *spool_name,
		      struct label *l)
{
	unsigned char sealed[LABEL_MAX], ad[SPOOL_NAME_LEN];
	char text[LABEL_MAX];
	unsigned uid, gid;
	int closed, used = 0, used2 = 0, day = 0;
	long long created;
	unsigned long long num = 0;
	size_t len, adlen;
	int rc;

	rc = store_label_read(vault_store(in->v), spool_name, sealed,
			      sizeof sealed, &len);
	if (rc)
		return rc;
	if (len <= KEYS_SEAL_OVERHEAD)
		return EBADMSG;
	label_ad(spool_name, ad, &adlen);
	rc = keys_open(keys_subkey(vault_keys(in->v), KEYS_SPOOL), ad, adlen,
		       sealed, len, text);
	if (rc)
		return rc;
	text[len - KEYS_SEAL_OVERHEAD] = '\0';
	if (sscanf(text, LABEL_MAGIC "\n%u %u %d %lld%n", &uid, &gid,
		   &closed, &created, &used) != 4 || used == 0)
		return EBADMSG;
	/* Optional: " NUM DAY" of a commit in progress, then the newline. */
	if (text[used] == ' ') {
		if (sscanf(text + used + 1, "%llu %d%n", &num, &day,
			   &used2) != 2 || used2 == 0 || num == 0)
			return EBADMSG;
		used += 1 + used2;
	}
	if (text[used] != '\n')
		return EBADMSG;
	used++;
	l->uid = uid;
	l->gid = gid;
	l->closed = closed;
	l->created_ms = created;
	l->commit_num = num;
	l->commit_day = day;
	snprintf(l->path, sizeof l->path, "%s", text + used);
	return 0;
}

/* --- encoding while the recorder writes -------------------------------- */

/* Bytes behind the end of the file that are not yet encoded: writers patch
 * the header and append chunks (LIST) at the end, and the commit's finish()
 * takes the rest. The encoder is fed whole spool blocks (one read back and
 * decrypted per block, not per 20 ms write, and 128 ms of 8 kHz audio to
 * encode at a time, so no single write waits long), up to STREAM_STEP at
 * once. */
#define STREAM_LAG (64 * 1024)
#define STREAM_STEP (64 * 1024)

static int is_wav(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && strcmp(name + n - 4, ".wav") == 0;
}

/* The encoder's output, into the derived spool. n's lock is held (or the
 * commit owns the node). */
static int out_sink(void *ctx, const void *buf, size_t len)
{
	struct node *n = ctx;
	struct incoming *in = n->owner;
	ssize_t w;
	int rc;

	if (!n->out) {
		rc = spool_create(store_spool_dirfd(vault_store(in->v)),
				  vault_keys(in->v), &n->out, n->out_name);
		if (rc)
			return rc;
		label_write_raw(in, n->out_name, n->uid, n->gid, LABEL_DERIVED,
				n->created_ms, 0, 0, "", 0);
	}
	w = spool_pwrite(n->out, buf, len, spool_size(n->out));
	if (w < 0)
		return (int)-w;
	return (size_t)w == len ? 0 : EIO;
}

/* Forgets the stream and its output. n's lock held. */
static void stream_drop(struct incoming *in, struct node *n)
{
	audio_wavstream_free(n->ws);
	n->ws = NULL;
	if (n->out) {
		spool_close(n->out);
		n->out = NULL;
		spool_unlink(store_spool_dirfd(vault_store(in->v)), n->out_name);
		store_label_remove(vault_store(in->v), n->out_name);
		n->out_name[0] = '\0';
	}
}

static void stream_abandon(struct incoming *in, struct node *n,
			   const char *why)
{
	log_debug("incoming: %s: encoding at commit instead: %s", n->name,
		  why);
	stream_drop(in, n);
	n->ws_abandoned = 1;
}

/* After a write of [off, off + len): keeps the stream consistent with the
 * file and encodes what is far enough behind its end. n's lock held. */
static void stream_after_write(struct incoming *in, struct node *n,
			       uint64_t off, size_t len)
{
	const struct config *cfg = vault_config(in->v);
	const struct audio_params params = { cfg->bitrate, cfg->complexity };
	unsigned char *buf;
	uint64_t pushed, doff, size;
	size_t used = 0;
	char err[160];

	if (n->ws_abandoned || n->committing || !is_wav(n->name))
		return;
	if (!n->ws) {
		if (off != 0) {
			stream_abandon(in, n, "not written from the start");
			return;
		}
		if (audio_wavstream_new(&params, out_sink, n, &n->ws) != 0) {
			stream_abandon(in, n, "cannot start the encoder");
			return;
		}
	}
	pushed = audio_wavstream_pushed(n->ws);
	doff = audio_wavstream_data_offset(n->ws);
	if (off < pushed && doff && off + len > doff) {
		stream_abandon(in, n, "audio already encoded was rewritten");
		return;
	}
	/* Whole blocks only: a 320-byte write must not cost a block read
	 * back and decrypted, and 64 KiB wiped, every 20 ms. */
	size = spool_size(n->spool);
	if (size < pushed + STREAM_LAG + SPOOL_BLOCK)
		return;
	buf = malloc(STREAM_STEP);
	if (!buf) {
		stream_abandon(in, n, "out of memory");
		return;
	}
	while (size >= pushed + STREAM_LAG + SPOOL_BLOCK) {
		uint64_t want = size - STREAM_LAG - pushed;
		size_t step = want < STREAM_STEP ? (size_t)want : STREAM_STEP;
		ssize_t r;

		step -= step % SPOOL_BLOCK;
		r = spool_pread(n->spool, buf, step, pushed);

		if (r <= 0) {
			stream_abandon(in, n, "cannot read back");
			break;
		}
		if ((size_t)r > used)
			used = (size_t)r;
		if (audio_wavstream_push(n->ws, buf, (size_t)r, err,
					 sizeof err) != 0) {
			/* The commit transcodes and gives the reason. */
			stream_abandon(in, n, err);
			break;
		}
		pushed += (uint64_t)r;
	}
	explicit_bzero(buf, used);
	free(buf);
}

/* After the file was cut to `size`: a fresh start (O_TRUNC) restarts the
 * stream; anything else that cuts encoded audio abandons it. n's lock
 * held. */
static void stream_after_truncate(struct incoming *in, struct node *n,
				  uint64_t size)
{
	if (size == 0) {
		stream_drop(in, n);
		n->ws_abandoned = 0;
	} else if (n->ws && size < audio_wavstream_pushed(n->ws)) {
		stream_abandon(in, n, "truncated below what was encoded");
	}
}

struct spool_source {
	struct node *n;
};

static ssize_t spool_source_pread(void *ctx, void *buf, size_t len,
				  uint64_t off)
{
	struct node *n = ctx;
	ssize_t r;

	pthread_mutex_lock(&n->lock);
	r = spool_pread(n->spool, buf, len, off);
	pthread_mutex_unlock(&n->lock);
	return r;
}

static ssize_t out_source_pread(void *ctx, void *buf, size_t len,
				uint64_t off)
{
	struct node *n = ctx;

	/* Only the commit, which owns the node, reads this. */
	return spool_pread(n->out, buf, len, off);
}

/* Reads the metadata file whole. */
static int read_meta(struct node *m, char **out, size_t *len, char *err,
		     size_t errlen)
{
	uint64_t size;
	char *buf;
	ssize_t r;

	/* From here on, what the commit reads is what it stores: a write
	 * through another copy of a descriptor is refused, not lost. */
	pthread_mutex_lock(&m->lock);
	size = spool_size(m->spool);
	m->committing = 1;
	pthread_mutex_unlock(&m->lock);
	if (size > META_MAX) {
		snprintf(err, errlen, "metadata larger than 64 KiB");
		return EINVAL;
	}
	buf = malloc(size + 1);
	if (!buf)
		return ENOMEM;
	r = spool_source_pread(m, buf, size, 0);
	if (r < 0 || (uint64_t)r != size) {
		free(buf);
		snprintf(err, errlen, "cannot read the metadata back");
		return r < 0 ? (int)-r : EIO;
	}
	buf[size] = '\0';
	*out = buf;
	*len = size;
	return 0;
}

/* Commits the pair (audio a, metadata m), both held busy by the caller. */
/* The files a commit turns into a call: its audio, and its metadata or
 * NULL (audio alone after the grace period). */
struct commit_files {
	struct incoming *in;
	struct node *a, *m;
};

/* ingest's hook before the commit point: each file's label says, durably,
 * which call it is becoming. Recovery then discards files whose call was
 * stored instead of committing them a second time. */
static int commit_mark(void *ctx, uint64_t num, int32_t day)
{
	struct commit_files *f = ctx;
	struct node *v[2] = { f->a, f->m };
	int rc = 0;

	for (int i = 0; i < 2 && !rc; i++) {
		if (!v[i])
			continue;
		pthread_mutex_lock(&v[i]->lock);
		v[i]->commit_num = num;
		v[i]->commit_day = day;
		rc = label_write(f->in, v[i], 1);
		pthread_mutex_unlock(&v[i]->lock);
	}
	return rc;
}

static int commit_pair(struct incoming *in, struct node *a, struct node *m,
		       struct call_record *rec, char *err, size_t errlen)
{
	struct commit_files files = { in, a, m };
	struct audio_source src;
	char *meta = NULL;
	size_t meta_len = 0;
	uint64_t size;
	int rc;

	rc = read_meta(m, &meta, &meta_len, err, errlen);
	if (rc) {
		pthread_mutex_lock(&m->lock);
		m->committing = 0;
		pthread_mutex_unlock(&m->lock);
		return rc;
	}
	pthread_mutex_lock(&a->lock);
	size = spool_size(a->spool);
	a->committing = 1;
	pthread_mutex_unlock(&a->lock);
	src = (struct audio_source){ a, spool_source_pread, size };
	/* Most of the audio was encoded while it was written: finish the
	 * stream and store its Ogg Opus. If the file ended up other than it
	 * began, transcode it whole instead: same result, more work. */
	rc = EAGAIN;
	if (a->ws && !a->ws_abandoned) {
		struct audio_result res;
		char serr[160];
		rc = audio_wavstream_finish(a->ws, &src, &res, serr,
					    sizeof serr);
		if (rc == 0 && a->out) {
			struct audio_source osrc = { a, out_source_pread,
						     spool_size(a->out) };
			rc = ingest_call_hooked(in->v, &osrc, meta, meta_len,
						a->mtime_ms, rec, err, errlen,
						commit_mark, &files);
			/* Bad metadata is bad either way; anything else the
			 * full transcode below may still get right. */
			if (rc && rc != EINVAL)
				rc = EAGAIN;
		} else {
			rc = EAGAIN;
		}
	}
	if (rc == EAGAIN) {
		*err = '\0';
		rc = ingest_call_hooked(in->v, &src, meta, meta_len,
					a->mtime_ms, rec, err, errlen,
					commit_mark, &files);
	}
	pthread_mutex_lock(&a->lock);
	stream_drop(in, a);
	a->committing = 0;
	pthread_mutex_unlock(&a->lock);
	pthread_mutex_lock(&m->lock);
	m->committing = 0;
	pthread_mutex_unlock(&m->lock);
	explicit_bzero(meta, meta_len);
	free(meta);
	return rc;
}

/* Seals a file's data and moves it to quarantine/ with the reason. */
static void quarantine(struct incoming *in, struct node *n, const char *why)
{
	char path[512], reason[1024];
	int rc;

	path_of(n, path, sizeof path);
	snprintf(reason, sizeof reason, "%s: %s", path, why);
	pthread_mutex_lock(&n->lock);
	n->finished = FINISHED_QUARANTINED;
	if (n->spool) {
		spool_sync(n->spool);
		spool_close(n->spool);
		n->spool = NULL;
	}
	rc = store_quarantine(vault_store(in->v), n->spool_name, reason);
	if (rc)
		log_warnx("incoming: %s: cannot quarantine %s: %s", path,
			  n->spool_name, strerror(rc));
	else
		n->spool_name[0] = '\0';
	pthread_mutex_unlock(&n->lock);
}

/* Commits n's pair if it is complete: both files present, none open but
 * by `own` handles of n itself, audio not empty. Returns 0 when there is
 * nothing to do. */
static int try_commit(struct incoming *in, struct node *n, int own,
		      uint64_t *committed)
{
	struct node *a, *m, *p;
	struct call_record rec;
	enum part which;
	char err[512] = "", path[512];
	uint64_t asize = 0;
	int rc;

	*committed = 0;
	pthread_mutex_lock(&in->lock);
	if (!n->linked || n->is_dir || n->busy || n->opens > own ||
	    !(p = partner(n, &which)) || p->opens > 0 || p->busy) {
		pthread_mutex_unlock(&in->lock);
		return 0;
	}
	a = which == PART_AUDIO ? n : p;
	m = which == PART_AUDIO ? p : n;
	pthread_mutex_lock(&a->lock);
	if (a->spool)
		asize = spool_size(a->spool);
	pthread_mutex_unlock(&a->lock);
	if (asize == 0 || !a->spool || !m->spool) {
		pthread_mutex_unlock(&in->lock);
		return 0;
	}
	a->busy = m->busy = 1;
	a->refs++;
	m->refs++;
	path_of(a, path, sizeof path);
	pthread_mutex_unlock(&in->lock);

	/* A flush is the close of one descriptor, not necessarily the last
	 * (a forked child's copy): it commits only audio that looks fully
	 * written; otherwise a later flush or the last release does. */
	if (own) {
		struct audio_source src = { a, spool_source_pread, asize };
		if (!audio_looks_complete(&src)) {
			log_debug("incoming: %s: not complete yet", path);
			rc = 0;
			goto release;
		}
	}

	/* The commit runs without the tree lock: other recorders go on
	 * writing while this call is encoded and stored. */
	rc = commit_pair(in, a, m, &rec, err, sizeof err);
	if (rc == 0) {
		log_info("incoming: %s: committed as c-%06" PRIu64, path,
			 rec.num);
		mark_finished(a, FINISHED_COMMITTED, rec.num);
		mark_finished(m, FINISHED_COMMITTED, rec.num);
		discard_data(in, a);
		discard_data(in, m);
		*committed = rec.num;
	} else if (rc == EINVAL) {
		log_warnx("incoming: %s: rejected: %s", path, err);
		quarantine(in, a, err);
		quarantine(in, m, err);
	} else {
		log_warnx("incoming: %s: cannot commit: %s", path,
			  *err ? err : strerror(rc));
	}

	if (rc == 0 || rc == EINVAL) {
		pthread_mutex_lock(&in->lock);
		if (a->linked)
			node_unlink(in, a);
		if (m->linked)
			node_unlink(in, m);
		pthread_mutex_unlock(&in->lock);
	}
release:
	pthread_mutex_lock(&in->lock);
	a->busy = m->busy = 0;
	node_put(in, a);
	node_put(in, m);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

int incoming_flush(struct incoming *in, struct incoming_handle *h,
		   uint64_t *committed)
{
	struct node *n = h->n;
	int rc = 0, wrote;

	*committed = 0;
	pthread_mutex_lock(&n->lock);
	wrote = h->wrote;
	if (wrote && n->spool && !n->finished) {
		/* What a recorder closed is on disk, sealed, before close()
		 * returns. */
		rc = spool_sync(n->spool);
		if (!rc) {
			n->closed = 1;
			n->flushed_ms = clock_now_ms();
			rc = label_write(in, n, 1);
		}
	}
	if (!rc)
		h->wrote = 0;
	pthread_mutex_unlock(&n->lock);
	if (rc) {
		log_warnx("incoming: %s: cannot store: %s", n->spool_name,
			  strerror(rc));
		return rc;
	}
	if (!wrote) {
		/* Nothing written through this handle since it was opened or
		 * last flushed: not the close that ends a recording (a shell
		 * closing its descriptor after dup2() and before writing, a
		 * second copy of a descriptor already flushed, a reader). It
		 * commits nothing; the last release does, if anything is
		 * left to commit. An empty file closed as such is complete
		 * as it is, for the grace period. */
		pthread_mutex_lock(&in->lock);
		pthread_mutex_lock(&n->lock);
		if (n->opens == 1 && !n->is_dir && !n->finished)
			n->closed = 1;
		pthread_mutex_unlock(&n->lock);
		pthread_mutex_unlock(&in->lock);
		return 0;
	}
	/* Only the close of the last open handle completes a file. */
	return try_commit(in, n, 1, committed);
}

int incoming_settle(struct incoming *in, uint64_t dir, const char *name,
		    uint64_t *committed)
{
	struct node *d, *n = NULL;
	int rc;

	*committed = 0;
	pthread_mutex_lock(&in->lock);
	d = by_id(in, dir);
	if (d && d->is_dir)
		n = child(d, name);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&in->lock);
	if (!n)
		return 0;
	rc = try_commit(in, n, 0, committed);
	pthread_mutex_lock(&in->lock);
	node_put(in, n);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

int incoming_release(struct incoming *in, struct incoming_handle *h,
		     int may_commit, uint64_t *committed)
{
	struct node *n = h->n;
	int rc = 0, last;

	*committed = 0;
	pthread_mutex_lock(&in->lock);
	n->opens--;
	last = n->opens == 0;
	if (!n->linked && last)
		discard_data(in, n);
	pthread_mutex_unlock(&in->lock);
	/* The kernel sends RELEASE after close() has returned, so the flush
	 * of the other half of a pair may have come while this file was
	 * still open: the last release completes the pair then. */
	if (last && may_commit)
		rc = try_commit(in, n, 0, committed);
	pthread_mutex_lock(&in->lock);
	node_put(in, n);
	pthread_mutex_unlock(&in->lock);
	free(h);
	return rc;
}

int incoming_unlink(struct incoming *in, uint64_t dir, const char *name)
{
	struct node *d, *n = NULL;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	d = by_id(in, dir);
	if (d && d->is_dir)
		n = child(d, name);
	if (!n)
		rc = ENOENT;
	else if (n->is_dir)
		rc = EISDIR;
	else if (n->busy)
		rc = EBUSY;
	if (!rc) {
		/* Discarded: a recorder dropping a call that was too short. */
		if (n->opens == 0)
			discard_data(in, n);
		node_unlink(in, n);
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

/* Rewrites the labels of n and, for a directory, of every file below it.
 * Called with in->lock held. */
static void relabel(struct incoming *in, struct node *n)
{
	if (n->is_dir) {
		for (struct node *c = n->children; c; c = c->sibling)
			relabel(in, c);
		return;
	}
	pthread_mutex_lock(&n->lock);
	label_write(in, n, 1);
	pthread_mutex_unlock(&n->lock);
}

static int is_ancestor(const struct node *a, const struct node *n)
{
	for (; n; n = n->parent)
		if (n == a)
			return 1;
	return 0;
}

int incoming_rename(struct incoming *in, uint64_t dir, const char *name,
		    uint64_t newdir, const char *newname, int noreplace)
{
	struct node *d, *nd, *n = NULL, *old = NULL;
	char *copy;
	int rc = 0;

	if (!name_valid(newname))
		return EINVAL;
	copy = strdup(newname);
	if (!copy)
		return ENOMEM;
	pthread_mutex_lock(&in->lock);
	d = by_id(in, dir);
	nd = by_id(in, newdir);
	if (d && d->is_dir)
		n = child(d, name);
	if (!n || !nd || !nd->is_dir) {
		rc = ENOENT;
		goto out;
	}
	if (n->busy) {
		rc = EBUSY;
		goto out;
	}
	if (n->is_dir && is_ancestor(n, nd)) {
		rc = EINVAL;
		goto out;
	}
	rc = fits_below(nd, newname);
	if (rc)
		goto out;
	old = child(nd, newname);
	if (old == n)
		goto out;
	if (old) {
		if (noreplace)
			rc = EEXIST;
		else if (old->is_dir || n->is_dir)
			rc = old->is_dir ? EISDIR : ENOTDIR;
		else if (old->busy)
			rc = EBUSY;
		if (rc)
			goto out;
		if (old->opens == 0)
			discard_data(in, old);
		node_unlink(in, old);
	}
	/* Move: out of the old directory, into the new one. */
	{
		struct node **p = &n->parent->children;
		while (*p && *p != n)
			p = &(*p)->sibling;
		if (*p)
			*p = n->sibling;
	}
	n->parent = nd;
	n->sibling = nd->children;
	nd->children = n;
	/* Writers read the name under the node's lock (is it a .wav?). */
	pthread_mutex_lock(&n->lock);
	free(n->name);
	n->name = copy;
	pthread_mutex_unlock(&n->lock);
	copy = NULL;
	/* Recovery must find the files at their new paths. */
	relabel(in, n);
out:
	pthread_mutex_unlock(&in->lock);
	free(copy);
	return rc;
}

struct dirent_pair {
	char *name;
	struct incoming_attr a;
};

static int cmp_dirent(const void *x, const void *y)
{
	return strcmp(((const struct dirent_pair *)x)->name,
		      ((const struct dirent_pair *)y)->name);
}

int incoming_readdir(struct incoming *in, uint64_t dir,
		     int (*fn)(void *ctx, const char *name,
			       const struct incoming_attr *a),
		     void *ctx)
{
	struct dirent_pair *e = NULL;
	struct node *d;
	size_t n = 0, cap = 0;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	d = by_id(in, dir);
	if (!d || !d->is_dir) {
		pthread_mutex_unlock(&in->lock);
		return ENOENT;
	}
	for (struct node *c = d->children; c && !rc; c = c->sibling) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct dirent_pair *ne = realloc(e, ncap * sizeof *e);
			if (!ne) {
				rc = ENOMEM;
				break;
			}
			e = ne;
			cap = ncap;
		}
		e[n].name = strdup(c->name);
		if (!e[n].name) {
			rc = ENOMEM;
			break;
		}
		attr_of(c, &e[n].a);
		n++;
	}
	pthread_mutex_unlock(&in->lock);
	if (!rc && n)
		qsort(e, n, sizeof *e, cmp_dirent);
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = fn(ctx, e[i].name, &e[i].a);
		free(e[i].name);
	}
	free(e);
	return rc;
}

/* --- recovery and the grace period ------------------------------------ */

struct recovery {
	struct incoming *in;
	unsigned recovered, quarantined;
};

/* Finds or makes the directories of `path` ("a/b/x.wav"); returns the
 * directory for the last component, whose name goes to *base. */
static struct node *make_dirs(struct incoming *in, char *path, uint32_t uid,
			      uint32_t gid, char **base)
{
	struct node *d = &in->root;
	char *p = path, *slash;

	while ((slash = strchr(p, '/'))) {
		struct node *c;
		*slash = '\0';
		if (!name_valid(p))
			return NULL;
		c = child(d, p);
		if (!c)
			c = node_new(in, d, p, 1, uid, gid);
		if (!c || !c->is_dir)
			return NULL;
		d = c;
		p = slash + 1;
	}
	*base = p;
	return name_valid(p) ? d : NULL;
}

static void recover_quarantine(struct recovery *r, const char *name,
			       const char *why)
{
	int rc = store_quarantine(vault_store(r->in->v), name, why);

	if (rc)
		log_warnx("incoming: recovery: cannot quarantine %s: %s", name,
			  strerror(rc));
	else
		log_warnx("incoming: recovery: %s quarantined: %s", name, why);
	r->quarantined++;
}

static int recover_one(void *ctx, const char *name)
{
	struct recovery *r = ctx;
	struct incoming *in = r->in;
	struct label l;
	struct spool *sp = NULL;
	struct node *d, *n;
	char why[4200], *base;
	int rc;

	if (strncmp(name, "in-", 3) != 0)
		return 0; /* a blob being written by an ingest, not ours */
	rc = label_read(in, name, &l);
	if (rc == ENOENT &&
	    spool_open(store_spool_dirfd(vault_store(in->v)), name,
		       vault_keys(in->v), &sp) == 0) {
		uint64_t size = spool_size(sp);

		spool_close(sp);
		sp = NULL;
		/* A spool file is labelled before anything is written into
		 * it: one without a label and without data was made just
		 * before the crash, and holds nothing anyone sent. */
		if (size == 0) {
			log_info("incoming: recovery: %s: empty and unlabelled "
				 "(made just before the crash): removed", name);
			spool_unlink(store_spool_dirfd(vault_store(in->v)),
				     name);
			return 0;
		}
	}
	if (rc) {
		recover_quarantine(r, name, "left by a crash, without a "
					    "readable name");
		return 0;
	}
	if (l.closed == LABEL_DERIVED) {
		spool_unlink(store_spool_dirfd(vault_store(in->v)), name);
		store_label_remove(vault_store(in->v), name);
		return 0;
	}
	if (l.commit_num) {
		/* The crash came during this file's commit: after the commit
		 * point it is part of a stored call and goes; before, it is
		 * pending still (and the blob that commit left is gone). */
		int done;
		rc = ingest_was_committed(in->v, l.commit_num, l.commit_day,
					  &done);
		if (rc) {
			snprintf(why, sizeof why, "incoming/%s: cannot tell "
				 "whether it was committed as c-%06" PRIu64
				 " (%s)", l.path, l.commit_num, strerror(rc));
			recover_quarantine(r, name, why);
			return 0;
		}
		if (done) {
			log_info("incoming: recovery: incoming/%s had been "
				 "committed as c-%06" PRIu64, l.path,
				 l.commit_num);
			spool_unlink(store_spool_dirfd(vault_store(in->v)),
				     name);
			store_label_remove(vault_store(in->v), name);
			return 0;
		}
	}
	if (!l.closed) {
		snprintf(why, sizeof why, "incoming/%s: its writer had not "
			 "closed it when the daemon stopped", l.path);
		recover_quarantine(r, name, why);
		return 0;
	}
	rc = spool_open(store_spool_dirfd(vault_store(in->v)), name,
			vault_keys(in->v), &sp);
	if (rc) {
		snprintf(why, sizeof why, "incoming/%s: cannot be read back "
			 "(%s)", l.path, strerror(rc));
		recover_quarantine(r, name, why);
		return 0;
	}
	pthread_mutex_lock(&in->lock);
	d = make_dirs(in, l.path, l.uid, l.gid, &base);
	n = d && !child(d, base) ? node_new(in, d, base, 0, l.uid, l.gid) :
				   NULL;
	if (n) {
		n->spool = sp;
		snprintf(n->spool_name, sizeof n->spool_name, "%s", name);
		n->closed = 1;
		n->created_ms = l.created_ms;
		sp = NULL;
		r->recovered++;
	}
	pthread_mutex_unlock(&in->lock);
	if (sp) {
		spool_close(sp);
		snprintf(why, sizeof why, "incoming/%s: its path is taken or "
			 "invalid", l.path);
		recover_quarantine(r, name, why);
	}
	return 0;
}

/* Files of the tree, with a reference each, for work outside the lock. */
static struct node **collect_files(struct incoming *in, size_t *count)
{
	struct node **v = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&in->lock);
	for (size_t b = 0; b < BUCKETS; b++) {
		for (struct node *x = in->hash[b]; x; x = x->hnext) {
			if (!x->linked || x->is_dir)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct node **nv = realloc(v, ncap * sizeof *nv);
				if (!nv)
					goto out;
				v = nv;
				cap = ncap;
			}
			x->refs++;
			v[n++] = x;
		}
	}
out:
	pthread_mutex_unlock(&in->lock);
	*count = n;
	return v;
}

static void put_files(struct incoming *in, struct node **v, size_t n)
{
	pthread_mutex_lock(&in->lock);
	for (size_t i = 0; i < n; i++)
		node_put(in, v[i]);
	pthread_mutex_unlock(&in->lock);
	free(v);
}

static void report_commit(struct incoming *in, struct node *n, int rc,
			  uint64_t num, incoming_report_fn report, void *ctx)
{
	char path[512];

	(void)in;
	if (!report || (rc == 0 && num == 0))
		return;
	path_of(n, path, sizeof path);
	report(ctx, rc, num, path);
}

int incoming_recover(struct incoming *in, incoming_report_fn report,
		     void *ctx, unsigned *recovered, unsigned *quarantined)
{
	struct recovery r = { .in = in };
	struct node **files;
	size_t n;
	int rc;

	rc = store_spool_foreach(vault_store(in->v), recover_one, &r);
	if (!rc) {
		unsigned pruned;
		rc = store_label_prune(vault_store(in->v), &pruned);
		if (pruned)
			log_info("incoming: recovery: %u labels without a "
				 "spool file removed", pruned);
	}
	files = collect_files(in, &n);
	for (size_t i = 0; i < n; i++) {
		uint64_t num;
		int crc = try_commit(in, files[i], 0, &num);
		report_commit(in, files[i], crc, num, report, ctx);
	}
	put_files(in, files, n);
	*recovered = r.recovered;
	*quarantined = r.quarantined;
	return rc;
}

/* Audio alone after the grace period: a call of no agent. */
static int commit_alone(struct incoming *in, struct node *a,
			uint64_t *committed)
{
	struct audio_source src;
	struct call_record rec;
	char err[512] = "", path[512];
	uint64_t size;
	struct commit_files files = { in, a, NULL };
	int rc;

	*committed = 0;
	pthread_mutex_lock(&in->lock);
	if (!a->linked || a->busy || a->opens || !a->spool) {
		pthread_mutex_unlock(&in->lock);
		return 0;
	}
	a->busy = 1;
	a->refs++;
	path_of(a, path, sizeof path);
	pthread_mutex_unlock(&in->lock);

	pthread_mutex_lock(&a->lock);
	size = spool_size(a->spool);
	pthread_mutex_unlock(&a->lock);
	src = (struct audio_source){ a, spool_source_pread, size };
	rc = ingest_call_hooked(in->v, &src, NULL, 0, a->created_ms, &rec, err,
				sizeof err, commit_mark, &files);
	if (rc == 0) {
		log_info("incoming: %s: no metadata after the grace period; "
			 "committed as c-%06" PRIu64 " without an agent",
			 path, rec.num);
		mark_finished(a, FINISHED_COMMITTED, rec.num);
		discard_data(in, a);
		*committed = rec.num;
	} else if (rc == EINVAL) {
		log_warnx("incoming: %s: rejected: %s", path, err);
		quarantine(in, a, err);
	} else {
		log_warnx("incoming: %s: cannot commit: %s", path,
			  *err ? err : strerror(rc));
	}
	pthread_mutex_lock(&in->lock);
	a->busy = 0;
	if ((rc == 0 || rc == EINVAL) && a->linked)
		node_unlink(in, a);
	node_put(in, a);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

void incoming_sweep(struct incoming *in, int64_t now_ms, int64_t grace_ms,
		    incoming_report_fn report, void *ctx)
{
	struct node **files;
	size_t n;

	files = collect_files(in, &n);
	for (size_t i = 0; i < n; i++) {
		struct node *f = files[i], *p;
		enum part which;
		uint64_t num = 0;
		int stale, rc;

		/* A writer that went quiet without closing: seal what the
		 * last write left in memory (writes seal at most every
		 * FLUSH_MS, and only when they come). */
		pthread_mutex_lock(&f->lock);
		if (f->spool && now_ms - f->flushed_ms >= FLUSH_MS &&
		    spool_flush(f->spool) == 0)
			f->flushed_ms = now_ms;
		pthread_mutex_unlock(&f->lock);
		pthread_mutex_lock(&in->lock);
		stale = f->linked && f->closed && !f->opens && !f->busy &&
			now_ms - f->mtime_ms >= grace_ms;
		p = stale ? partner(f, &which) : NULL;
		if (!stale) {
			pthread_mutex_unlock(&in->lock);
			continue;
		}
		pthread_mutex_unlock(&in->lock);
		if (p) {
			/* A pair that missed its commit (an error): retry. If
			 * there is still nothing to commit (empty audio), it
			 * goes to quarantine. */
			rc = try_commit(in, f, 0, &num);
			if (rc == 0 && num == 0) {
				pthread_mutex_lock(&in->lock);
				p = f->linked ? partner(f, &which) : NULL;
				stale = p && !f->busy && p->closed &&
					!p->opens;
				pthread_mutex_unlock(&in->lock);
				if (stale) {
					quarantine(in, f, "incomplete call "
						   "after the grace period");
					pthread_mutex_lock(&in->lock);
					if (f->linked)
						node_unlink(in, f);
					pthread_mutex_unlock(&in->lock);
					rc = EINVAL;
				}
			}
		} else if (which == PART_AUDIO) {
			rc = commit_alone(in, f, &num);
		} else {
			char why[600], path[512];
			path_of(f, path, sizeof path);
			snprintf(why, sizeof why, "%s", which == PART_META ?
				 "metadata without audio after the grace "
				 "period" : "not part of a call (name) after "
				 "the grace period");
			log_warnx("incoming: %s: %s", path, why);
			quarantine(in, f, why);
			pthread_mutex_lock(&in->lock);
			if (f->linked)
				node_unlink(in, f);
			pthread_mutex_unlock(&in->lock);
			rc = EINVAL;
		}
		report_commit(in, f, rc, num, report, ctx);
	}
	put_files(in, files, n);
}
